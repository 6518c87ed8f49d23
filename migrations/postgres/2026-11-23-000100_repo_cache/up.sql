-- The PostgreSQL dialect of migrations/sqlite/2026-11-23-000100_repo_cache:
-- the repo cache (merged PRs and the paths they touched) and the sync
-- worker's bookkeeping on each repository.
--
-- repository_key and path use the "C" collation: the PR listing pages by
-- (merged_at, repository_key, number) and filters paths by a byte range,
-- so both must compare bytewise, as SQLite does, whatever the database's
-- default collation; the indexes then serve the range scans too.

-- A claim: a worker holds the repository while lease_token is its token;
-- results carrying another token are discarded. lease_until ends a claim
-- whose worker died.
ALTER TABLE connection_repositories
    ADD COLUMN default_branch text,
    ADD COLUMN lease_token uuid,
    ADD COLUMN lease_until timestamptz,
    -- Backoff after a failure: not claimed again before this.
    ADD COLUMN next_attempt_at timestamptz,
    -- Failed attempts in a row.
    ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- High-water mark of PR updates already cached; NULL means fetch the whole window.
    ADD COLUMN updated_since timestamptz,
    -- Only a claimed repository holds a lease, and a lease always has an end.
    ADD CONSTRAINT connection_repositories_lease
        CHECK ((lease_token IS NULL) = (lease_until IS NULL) AND (lease_token IS NULL OR sync_state = 'syncing'));

CREATE TABLE pull_requests (
    connection_id uuid NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    -- RepoName::key of the repository (connection_repositories.name_key).
    repository_key text COLLATE "C" NOT NULL,
    -- The repository's name as the connection spells it.
    repository text NOT NULL,
    number bigint NOT NULL CHECK (number >= 0),
    title text NOT NULL,
    author text,
    url text NOT NULL,
    merged_at timestamptz NOT NULL,
    merge_commit_sha text,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (connection_id, repository_key, number)
);

-- The listing: a connection's PRs, newest merge first.
CREATE INDEX pull_requests_connection_id_merged_at ON pull_requests (connection_id, merged_at);

CREATE TABLE pull_request_files (
    connection_id uuid NOT NULL,
    repository_key text COLLATE "C" NOT NULL,
    number bigint NOT NULL,
    path text COLLATE "C" NOT NULL,
    PRIMARY KEY (connection_id, repository_key, number, path),
    -- A file goes with its PR: replacing, pruning or deleting a PR (or its
    -- connection, through pull_requests) removes its files.
    FOREIGN KEY (connection_id, repository_key, number)
        REFERENCES pull_requests (connection_id, repository_key, number) ON DELETE CASCADE
);

-- Which of a connection's PRs touched a path prefix (a range scan).
CREATE INDEX pull_request_files_connection_id_path ON pull_request_files (connection_id, path);
