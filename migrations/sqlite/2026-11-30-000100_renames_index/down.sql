DELETE FROM sqlite_stat1 WHERE tbl IN ('pull_request_files', 'pull_requests', 'repository_files');
DROP INDEX pull_request_files_connection_id_previous_path;
CREATE INDEX pull_request_files_connection_id_previous_path ON pull_request_files (connection_id, previous_path);
