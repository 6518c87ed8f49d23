DROP TABLE IF EXISTS pull_request_files;
DROP TABLE IF EXISTS pull_requests;
ALTER TABLE connection_repositories
    DROP CONSTRAINT IF EXISTS connection_repositories_lease,
    DROP COLUMN IF EXISTS updated_since,
    DROP COLUMN IF EXISTS attempts,
    DROP COLUMN IF EXISTS next_attempt_at,
    DROP COLUMN IF EXISTS lease_until,
    DROP COLUMN IF EXISTS lease_token,
    DROP COLUMN IF EXISTS default_branch;
