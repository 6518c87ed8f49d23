DROP INDEX repo_connections_github_installation_id;
ALTER TABLE repo_connections DROP COLUMN github_installation_id;
DROP TABLE credential_states;
