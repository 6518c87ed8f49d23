//! Diesel's view of both migration folders: one schema, with the column
//! types that differ by dialect (`Id`, `UtcTime`) defined in [`crate::sql_types`].
//! Kept by hand: update it with every migration pair. Integers are
//! `Integer` where PostgreSQL has `integer` (SQLite's INTEGER reads as one).

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    tenants (id) {
        id -> Id,
        name -> Text,
        plan -> Text,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    projects (id) {
        id -> Id,
        tenant_id -> Id,
        name -> Text,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    api_keys (id) {
        id -> Id,
        tenant_id -> Id,
        project_id -> Nullable<Id>,
        name -> Text,
        key_hash -> Text,
        permissions -> Text,
        created_at -> UtcTime,
        revoked_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    repo_connections (id) {
        id -> Id,
        tenant_id -> Id,
        project_id -> Id,
        platform -> Text,
        credential_kind -> Text,
        credential_hint -> Nullable<Text>,
        base_url -> Nullable<Text>,
        credential_key_id -> Text,
        credential_ciphertext -> Binary,
        credentials_updated_at -> UtcTime,
        lookback_days -> Integer,
        is_active -> Bool,
        version -> BigInt,
        created_at -> UtcTime,
        updated_at -> UtcTime,
        github_installation_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    credential_states (connection_id) {
        connection_id -> Id,
        expires_at -> Nullable<UtcTime>,
        last_use -> Text,
        last_use_at -> Nullable<UtcTime>,
        renewal_holder -> Nullable<Id>,
        renewal_until -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    connection_repositories (connection_id, position) {
        connection_id -> Id,
        project_id -> Id,
        position -> Integer,
        name -> Text,
        name_key -> Text,
        sync_state -> Text,
        last_synced_at -> Nullable<UtcTime>,
        sync_error -> Nullable<Text>,
        default_branch -> Nullable<Text>,
        lease_token -> Nullable<Id>,
        lease_until -> Nullable<UtcTime>,
        next_attempt_at -> Nullable<UtcTime>,
        attempts -> Integer,
        updated_since -> Nullable<UtcTime>,
        tree_revision -> Nullable<Text>,
        sync_again -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    service_mappings (connection_id, position) {
        connection_id -> Id,
        project_id -> Id,
        position -> Integer,
        service_name -> Text,
        repo -> Text,
        path_prefix -> Text,
        default_branch -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    idempotency_keys (project_id, key) {
        project_id -> Id,
        key -> Text,
        fingerprint -> Text,
        state -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        response_location -> Nullable<Text>,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    pull_requests (connection_id, repository_key, number) {
        connection_id -> Id,
        repository_key -> Text,
        repository -> Text,
        number -> BigInt,
        title -> Text,
        author -> Nullable<Text>,
        url -> Text,
        merged_at -> UtcTime,
        merge_commit_sha -> Nullable<Text>,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    pull_request_files (connection_id, repository_key, number, path) {
        connection_id -> Id,
        repository_key -> Text,
        number -> BigInt,
        path -> Text,
        previous_path -> Nullable<Text>,
        ranges -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::Id;

    repository_files (connection_id, repository_key, path) {
        connection_id -> Id,
        repository_key -> Text,
        path -> Text,
        name_key -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{Id, UtcTime};

    connection_webhooks (connection_id) {
        connection_id -> Id,
        secret_key_id -> Text,
        secret_ciphertext -> Binary,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    webhook_deliveries (source, delivery) {
        source -> Text,
        delivery -> Text,
        expires_at -> UtcTime,
    }
}

diesel::joinable!(projects -> tenants (tenant_id));
diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(repo_connections -> projects (project_id));
diesel::joinable!(connection_repositories -> repo_connections (connection_id));
diesel::joinable!(service_mappings -> repo_connections (connection_id));
diesel::joinable!(pull_requests -> repo_connections (connection_id));
diesel::joinable!(repository_files -> repo_connections (connection_id));
diesel::joinable!(connection_webhooks -> repo_connections (connection_id));
diesel::joinable!(credential_states -> repo_connections (connection_id));

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
    repository_files,
    connection_webhooks,
    webhook_deliveries,
    credential_states,
);
