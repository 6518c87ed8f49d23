-- The repo cache (merged PRs and the paths they touched) and the sync
-- worker's bookkeeping on each repository. Same conventions as the first
-- migration: uuids as hyphenated text, times as RFC 3339 UTC text with
-- milliseconds (text order is time order).

-- A claim: a worker holds the repository while lease_token is its token;
-- results carrying another token are discarded. lease_until ends a claim
-- whose worker died.
ALTER TABLE connection_repositories ADD COLUMN default_branch TEXT;
ALTER TABLE connection_repositories ADD COLUMN lease_token TEXT;
ALTER TABLE connection_repositories ADD COLUMN lease_until TEXT;
-- Backoff after a failure: not claimed again before this.
ALTER TABLE connection_repositories ADD COLUMN next_attempt_at TEXT;
-- Failed attempts in a row.
ALTER TABLE connection_repositories ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- High-water mark of PR updates already cached; NULL means fetch the whole window.
ALTER TABLE connection_repositories ADD COLUMN updated_since TEXT;

CREATE TABLE pull_requests (
    connection_id TEXT NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    -- RepoName::key of the repository (connection_repositories.name_key).
    repository_key TEXT NOT NULL,
    -- The repository's name as the connection spells it.
    repository TEXT NOT NULL,
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    author TEXT,
    url TEXT NOT NULL,
    merged_at TEXT NOT NULL,
    merge_commit_sha TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, repository_key, number)
);

-- The listing: a connection's PRs, newest merge first.
CREATE INDEX pull_requests_connection_id_merged_at ON pull_requests (connection_id, merged_at);

CREATE TABLE pull_request_files (
    connection_id TEXT NOT NULL,
    repository_key TEXT NOT NULL,
    number INTEGER NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (connection_id, repository_key, number, path),
    -- A file goes with its PR: replacing, pruning or deleting a PR (or its
    -- connection, through pull_requests) removes its files.
    FOREIGN KEY (connection_id, repository_key, number)
        REFERENCES pull_requests (connection_id, repository_key, number) ON DELETE CASCADE
);

-- Which of a connection's PRs touched a path prefix (a range scan).
CREATE INDEX pull_request_files_connection_id_path ON pull_request_files (connection_id, path);
