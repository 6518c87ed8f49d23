DROP INDEX IF EXISTS pull_request_files_connection_id_previous_path;
ALTER TABLE pull_request_files DROP COLUMN ranges, DROP COLUMN previous_path;
ALTER TABLE connection_repositories DROP COLUMN tree_revision;
DROP TABLE IF EXISTS repository_files;
