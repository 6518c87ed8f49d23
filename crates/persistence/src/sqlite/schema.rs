//! Diesel's view of `migrations/sqlite`. Kept by hand: update it with every migration.

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        plan -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    projects (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        project_id -> Nullable<Text>,
        name -> Text,
        key_hash -> Text,
        permissions -> Text,
        created_at -> Text,
        revoked_at -> Nullable<Text>,
    }
}

diesel::table! {
    repo_connections (id) {
        id -> Text,
        tenant_id -> Text,
        project_id -> Text,
        platform -> Text,
        credential_kind -> Text,
        credential_hint -> Nullable<Text>,
        base_url -> Nullable<Text>,
        credential_key_id -> Text,
        credential_ciphertext -> Binary,
        credentials_updated_at -> Text,
        lookback_days -> BigInt,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    connection_repositories (connection_id, position) {
        connection_id -> Text,
        project_id -> Text,
        position -> BigInt,
        name -> Text,
        name_key -> Text,
        sync_state -> Text,
        last_synced_at -> Nullable<Text>,
        sync_error -> Nullable<Text>,
        default_branch -> Nullable<Text>,
        lease_token -> Nullable<Text>,
        lease_until -> Nullable<Text>,
        next_attempt_at -> Nullable<Text>,
        attempts -> BigInt,
        updated_since -> Nullable<Text>,
    }
}

diesel::table! {
    service_mappings (connection_id, position) {
        connection_id -> Text,
        project_id -> Text,
        position -> BigInt,
        service_name -> Text,
        repo -> Text,
        path_prefix -> Text,
        default_branch -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (project_id, key) {
        project_id -> Text,
        key -> Text,
        fingerprint -> Text,
        state -> Text,
        response_status -> Nullable<BigInt>,
        response_body -> Nullable<Text>,
        response_location -> Nullable<Text>,
        created_at -> Text,
    }
}

diesel::table! {
    pull_requests (connection_id, repository_key, number) {
        connection_id -> Text,
        repository_key -> Text,
        repository -> Text,
        number -> BigInt,
        title -> Text,
        author -> Nullable<Text>,
        url -> Text,
        merged_at -> Text,
        merge_commit_sha -> Nullable<Text>,
        updated_at -> Text,
    }
}

diesel::table! {
    pull_request_files (connection_id, repository_key, number, path) {
        connection_id -> Text,
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
