-- What is known of each connection's credentials, one row per connection:
-- when the credentials the user gave stop working (NULL: unknown, or
-- renewed by the service itself), and the outcome of their last use with
-- the platform ('unused', 'accepted', 'refused') and when. The status the
-- API shows (valid, expiring, expired, rejected, unknown) is computed from
-- these against the clock. Beside the connection rather than in it: the
-- row is rewritten by every sync, the connection only by its users.
--
-- renewal_holder/renewal_until: a claim on renewing the credentials (an
-- OAuth refresh), so that across workers, processes and replicas one
-- holder at a time spends a refresh token. Taken with a compare-and-set on
-- the sealed value, cleared when the renewed credentials are written; a
-- crashed holder's claim lapses.
CREATE TABLE credential_states (
    connection_id uuid PRIMARY KEY NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    expires_at timestamptz,
    last_use text NOT NULL DEFAULT 'unused',
    last_use_at timestamptz,
    renewal_holder uuid,
    renewal_until timestamptz
);

INSERT INTO credential_states (connection_id) SELECT id FROM repo_connections;

-- The GitHub App installation of a githubApp connection (NULL otherwise):
-- the App's webhooks name the installation, not the connection.
ALTER TABLE repo_connections ADD COLUMN github_installation_id bigint;
CREATE INDEX repo_connections_github_installation_id ON repo_connections (github_installation_id);
