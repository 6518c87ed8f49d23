DROP TABLE IF EXISTS pull_request_files;
DROP TABLE IF EXISTS pull_requests;
ALTER TABLE connection_repositories DROP COLUMN updated_since;
ALTER TABLE connection_repositories DROP COLUMN attempts;
ALTER TABLE connection_repositories DROP COLUMN next_attempt_at;
ALTER TABLE connection_repositories DROP COLUMN lease_until;
ALTER TABLE connection_repositories DROP COLUMN lease_token;
ALTER TABLE connection_repositories DROP COLUMN default_branch;
