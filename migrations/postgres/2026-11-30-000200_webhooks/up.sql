-- The PostgreSQL dialect of migrations/sqlite/2026-11-30-000200_webhooks:
-- each connection's sealed webhook secret and the deliveries already seen.
-- A merge announced while a sync runs sets `sync_again` (2026-11-30-000000).

-- A connection made before this migration has no row: its webhook answers
-- 401 until its secret is rotated (PUT {"rotateWebhookSecret": true}).
CREATE TABLE connection_webhooks (
    connection_id uuid PRIMARY KEY NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    secret_key_id text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX connection_webhooks_secret_key_id ON connection_webhooks (secret_key_id);

-- `source`: the receiving endpoint (a connection id, or `github-app`);
-- `delivery`: SHA-256 (hex) of the platform's delivery id.
CREATE TABLE webhook_deliveries (
    source text NOT NULL,
    delivery text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (source, delivery)
);

CREATE INDEX webhook_deliveries_expires_at ON webhook_deliveries (expires_at);

CREATE INDEX connection_repositories_name_key ON connection_repositories (name_key);
