DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS service_mappings;
DROP TABLE IF EXISTS connection_repositories;
DROP TABLE IF EXISTS repo_connections;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS projects;
DROP TABLE IF EXISTS tenants;
