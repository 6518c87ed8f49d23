DROP INDEX IF EXISTS connection_repositories_name_key;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS connection_webhooks;
