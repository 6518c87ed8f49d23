//! The contract of `AccountStore` and `HealthCheck`, on both backends.

use sigsentry_domain::{ApiKeyId, Permission, PermissionSet, Plan, ProjectId, TenantId};
use sigsentry_persistence::AnyStore;
use sigsentry_ports::{AccountStore, HealthCheck, NewApiKey, Project, StoreError, Tenant};
use uuid::Uuid;

use crate::support::*;

for_both_backends!(open_again_while_open, references_are_enforced, accounts_round_trip, ping_answers);

async fn open_again_while_open(kind: Kind) {
    let fx = fixture(kind).await;
    // Opening a migrated database again, while another store has it open, migrates nothing and works.
    let again = fx.second_store().await;
    again.ping().await.unwrap();
    assert!(again.get_project(fx.project).await.unwrap().is_some());
}

async fn references_are_enforced(kind: Kind) {
    let fx = fixture(kind).await;
    // A project of an unknown tenant is refused (SQLite: foreign_keys is on for pooled connections).
    let orphan = Project {
        id: ProjectId::from_uuid(Uuid::now_v7()),
        tenant_id: TenantId::from_uuid(Uuid::now_v7()),
        name: "x".into(),
        created_at: t0(),
    };
    assert!(matches!(fx.store.create_project(orphan).await, Err(StoreError::Unexpected(_))));
}

async fn accounts_round_trip(kind: Kind) {
    let db = test_db(kind).await;
    let store = AnyStore::open(db.url()).await.unwrap();
    assert!(store.has_no_tenants().await.unwrap());
    let tenant =
        Tenant { id: TenantId::from_uuid(Uuid::now_v7()), name: "Acme".into(), plan: Plan::Business, created_at: t0() };
    store.create_tenant(tenant.clone()).await.unwrap();
    assert!(!store.has_no_tenants().await.unwrap());
    assert_eq!(store.get_tenant(tenant.id).await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.get_tenant(TenantId::from_uuid(Uuid::now_v7())).await.unwrap(), None);
    let project = Project {
        id: ProjectId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant.id,
        name: "web".into(),
        created_at: t0(),
    };
    store.create_project(project.clone()).await.unwrap();
    assert_eq!(store.get_project(project.id).await.unwrap(), Some(project.clone()));
    assert_eq!(store.get_project(ProjectId::from_uuid(Uuid::now_v7())).await.unwrap(), None);

    let key = NewApiKey {
        id: ApiKeyId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant.id,
        project_id: Some(project.id),
        name: "ci".into(),
        key_hash: "ab".repeat(32),
        permissions: PermissionSet::new([Permission::ConfigWrite, Permission::ConfigRead]),
        created_at: t0(),
    };
    store.create_api_key(key.clone()).await.unwrap();
    let grant = store.find_api_key(&key.key_hash).await.unwrap().unwrap();
    assert_eq!(grant.plan, Plan::Business);
    assert_eq!(grant.key.id, key.id);
    assert_eq!(grant.key.project_id, Some(project.id));
    assert_eq!(grant.key.permissions, key.permissions);
    assert_eq!(grant.key.created_at, t0());
    assert_eq!(grant.key.revoked_at, None);
    assert!(store.find_api_key(&"cd".repeat(32)).await.unwrap().is_none());
    // The hash is unique.
    assert!(store.create_api_key(NewApiKey { id: ApiKeyId::from_uuid(Uuid::now_v7()), ..key.clone() }).await.is_err());

    assert!(store.revoke_api_key(key.id, t0() + secs(5)).await.unwrap());
    assert!(store.revoke_api_key(key.id, t0() + secs(9)).await.unwrap(), "revoking twice is fine");
    assert!(store.find_api_key(&key.key_hash).await.unwrap().is_none());
    assert!(!store.revoke_api_key(ApiKeyId::from_uuid(Uuid::now_v7()), t0()).await.unwrap());
}

async fn ping_answers(kind: Kind) {
    let fx = fixture(kind).await;
    fx.store.ping().await.unwrap();
}
