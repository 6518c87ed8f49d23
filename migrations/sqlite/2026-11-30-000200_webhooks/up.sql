-- Webhooks: each connection's webhook secret, sealed like its credentials
-- (AES-256-GCM under the master key `secret_key_id`, the connection's ids
-- bound in); the deliveries already seen, so a redelivery does no work
-- twice whichever replica receives it. A merge announced while a sync runs
-- sets `sync_again` (2026-11-30-000000), so that sync is followed by one more.

-- A connection made before this migration has no row: its webhook answers
-- 401 until its secret is rotated (PUT {"rotateWebhookSecret": true}).
CREATE TABLE connection_webhooks (
    connection_id TEXT PRIMARY KEY NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    secret_key_id TEXT NOT NULL,
    secret_ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- Finds secrets still sealed under an old key during key rotation.
CREATE INDEX connection_webhooks_secret_key_id ON connection_webhooks (secret_key_id);

-- `source`: the receiving endpoint (a connection id, or `github-app`);
-- `delivery`: SHA-256 (hex) of the platform's delivery id.
CREATE TABLE webhook_deliveries (
    source TEXT NOT NULL,
    delivery TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (source, delivery)
);

CREATE INDEX webhook_deliveries_expires_at ON webhook_deliveries (expires_at);


-- The GitHub App's hook finds the connections holding a repository by name
-- across projects.
CREATE INDEX connection_repositories_name_key ON connection_repositories (name_key);
