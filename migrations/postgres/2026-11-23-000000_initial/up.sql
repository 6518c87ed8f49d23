-- The PostgreSQL dialect of migrations/sqlite/2026-11-23-000000_initial: the
-- same tables, columns, nullability, keys and indexes (tests/schema_parity.rs
-- compares them), with native types: uuid ids, timestamptz times (stored
-- truncated to milliseconds, as SQLite keeps them), boolean, bytea.
--
-- CHECKs hold the invariants the store relies on. Platform, credential kind
-- and plan are left unchecked on purpose: the domain owns those lists, and a
-- new variant should not need a migration to be stored.

CREATE TABLE tenants (
    id uuid PRIMARY KEY NOT NULL,
    name text NOT NULL,
    plan text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE projects (
    id uuid PRIMARY KEY NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX projects_tenant_id ON projects (tenant_id);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    -- Comma-separated permission names, e.g. "config:read,config:write".
    permissions text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id);
CREATE INDEX api_keys_project_id ON api_keys (project_id);

CREATE TABLE repo_connections (
    id uuid PRIMARY KEY NOT NULL,
    tenant_id uuid NOT NULL,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    platform text NOT NULL,
    credential_kind text NOT NULL,
    credential_hint text,
    base_url text,
    credential_key_id text NOT NULL,
    credential_ciphertext bytea NOT NULL,
    credentials_updated_at timestamptz NOT NULL,
    lookback_days integer NOT NULL CHECK (lookback_days > 0),
    is_active boolean NOT NULL,
    version bigint NOT NULL CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX repo_connections_project_id_id ON repo_connections (project_id, id);
-- Finds rows still sealed under an old key during key rotation.
CREATE INDEX repo_connections_credential_key_id ON repo_connections (credential_key_id);

CREATE TABLE connection_repositories (
    connection_id uuid NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    -- Copied from the connection so the UNIQUE below can span the project.
    project_id uuid NOT NULL,
    position integer NOT NULL CHECK (position >= 0),
    name text NOT NULL,
    -- The name folded for comparison (RepoName::key).
    name_key text NOT NULL,
    sync_state text NOT NULL CHECK (sync_state IN ('pending', 'syncing', 'ready', 'error')),
    last_synced_at timestamptz,
    sync_error text,
    PRIMARY KEY (connection_id, position),
    -- A repository is attached at most once in a project.
    CONSTRAINT connection_repositories_project_id_name_key UNIQUE (project_id, name_key)
);

CREATE TABLE service_mappings (
    connection_id uuid NOT NULL REFERENCES repo_connections (id) ON DELETE CASCADE,
    project_id uuid NOT NULL,
    position integer NOT NULL CHECK (position >= 0),
    service_name text NOT NULL,
    repo text NOT NULL,
    path_prefix text NOT NULL,
    default_branch text,
    PRIMARY KEY (connection_id, position),
    -- A service name is mapped at most once in a project.
    CONSTRAINT service_mappings_project_id_service_name UNIQUE (project_id, service_name)
);

CREATE TABLE idempotency_keys (
    project_id uuid NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
    response_status integer CHECK (response_status BETWEEN 100 AND 599),
    response_body text,
    response_location text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, key),
    -- A completed record can always be replayed.
    CHECK (state <> 'completed' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- Lets expired records be purged without a full scan.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
