-- Ids are hyphenated UUID text; times are RFC 3339 UTC text with millisecond
-- precision ("2026-11-22T10:00:00.123Z"), so they compare correctly as text;
-- booleans are 0/1.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX projects_tenant_id ON projects (tenant_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    -- Comma-separated permission names, e.g. "config:read,config:write".
    permissions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id);
CREATE INDEX api_keys_project_id ON api_keys (project_id);

CREATE TABLE repo_connections (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    credential_kind TEXT NOT NULL,
    credential_hint TEXT,
    base_url TEXT,
    credential_key_id TEXT NOT NULL,
    credential_ciphertext BLOB NOT NULL,
    credentials_updated_at TEXT NOT NULL,
    lookback_days INTEGER NOT NULL,
    is_active INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX repo_connections_project_id_id ON repo_connections (project_id, id);
-- Finds rows still sealed under an old key during key rotation.
CREATE INDEX repo_connections_credential_key_id ON repo_connections (credential_key_id);

CREATE TABLE connection_repositories (
    connection_id TEXT NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    -- Copied from the connection so the UNIQUE below can span the project.
    project_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    -- The name folded for comparison (RepoName::key).
    name_key TEXT NOT NULL,
    sync_state TEXT NOT NULL,
    last_synced_at TEXT,
    sync_error TEXT,
    PRIMARY KEY (connection_id, position),
    -- A repository is attached at most once in a project.
    UNIQUE (project_id, name_key)
);

CREATE TABLE service_mappings (
    connection_id TEXT NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    service_name TEXT NOT NULL,
    repo TEXT NOT NULL,
    path_prefix TEXT NOT NULL,
    default_branch TEXT,
    PRIMARY KEY (connection_id, position),
    -- A service name is mapped at most once in a project.
    UNIQUE (project_id, service_name)
);

CREATE TABLE idempotency_keys (
    project_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    response_status INTEGER,
    response_body TEXT,
    response_location TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, key)
);

-- Lets expired records be purged without a full scan.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
