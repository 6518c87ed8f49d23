//! Diesel's view of `migrations/postgres`. Kept by hand: update it with every migration.

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        plan -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    projects (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        project_id -> Nullable<Uuid>,
        name -> Text,
        key_hash -> Text,
        permissions -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    repo_connections (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        project_id -> Uuid,
        platform -> Text,
        credential_kind -> Text,
        credential_hint -> Nullable<Text>,
        base_url -> Nullable<Text>,
        credential_key_id -> Text,
        credential_ciphertext -> Bytea,
        credentials_updated_at -> Timestamptz,
        lookback_days -> Integer,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    connection_repositories (connection_id, position) {
        connection_id -> Uuid,
        project_id -> Uuid,
        position -> Integer,
        name -> Text,
        name_key -> Text,
        sync_state -> Text,
        last_synced_at -> Nullable<Timestamptz>,
        sync_error -> Nullable<Text>,
        default_branch -> Nullable<Text>,
        lease_token -> Nullable<Uuid>,
        lease_until -> Nullable<Timestamptz>,
        next_attempt_at -> Nullable<Timestamptz>,
        attempts -> Integer,
        updated_since -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    service_mappings (connection_id, position) {
        connection_id -> Uuid,
        project_id -> Uuid,
        position -> Integer,
        service_name -> Text,
        repo -> Text,
        path_prefix -> Text,
        default_branch -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (project_id, key) {
        project_id -> Uuid,
        key -> Text,
        fingerprint -> Text,
        state -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        response_location -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    pull_requests (connection_id, repository_key, number) {
        connection_id -> Uuid,
        repository_key -> Text,
        repository -> Text,
        number -> BigInt,
        title -> Text,
        author -> Nullable<Text>,
        url -> Text,
        merged_at -> Timestamptz,
        merge_commit_sha -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    pull_request_files (connection_id, repository_key, number, path) {
        connection_id -> Uuid,
        repository_key -> Text,
        number -> BigInt,
        path -> Text,
    }
}

diesel::joinable!(projects -> tenants (tenant_id));
diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(repo_connections -> projects (project_id));
diesel::joinable!(connection_repositories -> repo_connections (connection_id));
diesel::joinable!(service_mappings -> repo_connections (connection_id));
diesel::joinable!(pull_requests -> repo_connections (connection_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    projects,
    api_keys,
    repo_connections,
    connection_repositories,
    service_mappings,
    idempotency_keys,
    pull_requests,
    pull_request_files,
);
