DROP INDEX IF EXISTS connection_repositories_name_key;
ALTER TABLE connection_repositories DROP COLUMN resync_requested;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS connection_webhooks;
