-- The PostgreSQL dialect of migrations/sqlite/2026-11-29-000000_code_index:
-- each repository's file list at its default branch, and per file a merged
-- PR changed, its previous path and changed line ranges. Paths compare
-- bytewise ("C"), as in SQLite.

CREATE TABLE repository_files (
    connection_id uuid NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    repository_key text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    -- The lower-cased file name: correlation looks frames up by it.
    name_key text COLLATE "C" NOT NULL,
    PRIMARY KEY (connection_id, repository_key, path)
);

CREATE INDEX repository_files_connection_id_name_key ON repository_files (connection_id, name_key);

-- The tree revision the file list was taken at.
ALTER TABLE connection_repositories ADD COLUMN tree_revision text;

ALTER TABLE pull_request_files
    ADD COLUMN previous_path text COLLATE "C",
    -- The changed lines ("38-47,100"; '' when unknown).
    ADD COLUMN ranges text NOT NULL DEFAULT '';

CREATE INDEX pull_request_files_connection_id_previous_path ON pull_request_files (connection_id, previous_path);

-- Caches synced before this hold neither: every repository syncs whole again.
DELETE FROM pull_requests;
UPDATE connection_repositories
SET sync_state = 'pending', last_synced_at = NULL, updated_since = NULL, lease_token = NULL, lease_until = NULL,
    next_attempt_at = NULL, attempts = 0;
