-- What code correlation needs from the sync: each repository's file list
-- at its default branch, and, per file a merged PR changed, its previous
-- path (renames) and the new-side line ranges it changed.

-- The files of a repository as its last listing saw them. name_key is the
-- lower-cased file name: correlation looks frames up by it, so only the
-- few files named like a trace's frames are read, never a whole tree.
CREATE TABLE repository_files (
    connection_id TEXT NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    repository_key TEXT NOT NULL,
    path TEXT NOT NULL,
    name_key TEXT NOT NULL,
    PRIMARY KEY (connection_id, repository_key, path)
);

CREATE INDEX repository_files_connection_id_name_key ON repository_files (connection_id, name_key);

-- The tree revision the file list was taken at; a sync lists the tree
-- again only when the branch's tree changed.
ALTER TABLE connection_repositories ADD COLUMN tree_revision TEXT;

-- The path before a rename, and the changed lines ("38-47,100"; '' when unknown).
ALTER TABLE pull_request_files ADD COLUMN previous_path TEXT;
ALTER TABLE pull_request_files ADD COLUMN ranges TEXT NOT NULL DEFAULT '';

-- Which PRs changed a file under an earlier name.
CREATE INDEX pull_request_files_connection_id_previous_path ON pull_request_files (connection_id, previous_path);

-- Caches synced before this hold neither: every repository syncs whole again.
DELETE FROM pull_requests;
UPDATE connection_repositories
SET sync_state = 'pending', last_synced_at = NULL, updated_since = NULL, lease_token = NULL, lease_until = NULL,
    next_attempt_at = NULL, attempts = 0;
