-- Only renames have a previous path. Indexing just those rows keeps the
-- index small and, on SQLite, tells the planner how selective it is: over
-- the full column (almost all NULL) it preferred to read every PR of the
-- window (90 ms instead of under 1 ms on 100,000 PR-file rows).
DROP INDEX pull_request_files_connection_id_previous_path;
CREATE INDEX pull_request_files_connection_id_previous_path ON pull_request_files (connection_id, previous_path)
    WHERE previous_path IS NOT NULL;

-- Planner statistics for correlation's lookups, fixed rather than measured.
-- SQLite has none until ANALYZE runs, and a connection keeps the ones it
-- read when it opened: a service that started on an empty database planned
-- "the changes to these 46 files" through the merged_at index (every PR of
-- the window, 240 ms on 100,000 PR-file rows) for as long as it ran. These
-- describe one large repository (the figures ANALYZE measured on the
-- bench's 200,000 paths and 100,000 PR-file rows), so every connection
-- plans by path and by name from the start.
-- ANALYZE of a tiny table is only there to create sqlite_stat1.
ANALYZE __diesel_schema_migrations;
DELETE FROM sqlite_stat1 WHERE tbl IN ('pull_request_files', 'pull_requests', 'repository_files');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('pull_request_files', 'pull_request_files_connection_id_path', '100000 100000 2'),
    ('pull_request_files', 'pull_request_files_connection_id_previous_path', '1000 1000 1'),
    ('pull_request_files', 'sqlite_autoindex_pull_request_files_1', '100000 100000 100000 10 1'),
    ('pull_requests', 'pull_requests_connection_id_merged_at', '10000 10000 1'),
    ('pull_requests', 'sqlite_autoindex_pull_requests_1', '10000 10000 10000 1'),
    ('repository_files', 'repository_files_connection_id_name_key', '200000 200000 2'),
    ('repository_files', 'sqlite_autoindex_repository_files_1', '200000 200000 200000 1');
