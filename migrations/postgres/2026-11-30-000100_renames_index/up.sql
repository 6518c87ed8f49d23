-- Only renames have a previous path. Indexing just those rows keeps the
-- index small and, on SQLite, tells the planner how selective it is: over
-- the full column (almost all NULL) it preferred to read every PR of the
-- window (90 ms instead of under 1 ms on 100,000 PR-file rows).
DROP INDEX pull_request_files_connection_id_previous_path;
CREATE INDEX pull_request_files_connection_id_previous_path ON pull_request_files (connection_id, previous_path)
    WHERE previous_path IS NOT NULL;
