//! Tenants, projects and API keys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sigsentry_domain::{ApiKeyId, ProjectId, TenantId};
use sigsentry_ports::{AccountStore, ApiKeyGrant, NewApiKey, Project, StoreError, Tenant};
use uuid::Uuid;

use super::PgStore;
use super::rows::{ApiKeyRow, ProjectRow, TenantRow, parse, stored_time};
use super::schema::{api_keys, projects, tenants};

impl AccountStore for PgStore {
    async fn create_tenant(&self, tenant: Tenant) -> Result<(), StoreError> {
        let row = TenantRow::from_domain(&tenant);
        self.run(move |c| {
            Box::pin(async move {
                diesel::insert_into(tenants::table).values(&row).execute(c).await?;
                Ok(())
            })
        })
        .await
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let row =
                    tenants::table.find(*id.as_uuid()).select(TenantRow::as_select()).first(c).await.optional()?;
                Ok(row.map(TenantRow::into_domain).transpose()?)
            })
        })
        .await
    }

    async fn create_project(&self, project: Project) -> Result<(), StoreError> {
        let row = ProjectRow::from_domain(&project);
        self.run(move |c| {
            Box::pin(async move {
                diesel::insert_into(projects::table).values(&row).execute(c).await?;
                Ok(())
            })
        })
        .await
    }

    async fn get_project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let row =
                    projects::table.find(*id.as_uuid()).select(ProjectRow::as_select()).first(c).await.optional()?;
                Ok(row.map(ProjectRow::into_domain))
            })
        })
        .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<(), StoreError> {
        let row = ApiKeyRow {
            id: *key.id.as_uuid(),
            tenant_id: *key.tenant_id.as_uuid(),
            project_id: key.project_id.map(|p| *p.as_uuid()),
            name: key.name,
            key_hash: key.key_hash,
            permissions: key.permissions.to_list(),
            created_at: stored_time(key.created_at),
            revoked_at: None,
        };
        self.run(move |c| {
            Box::pin(async move {
                diesel::insert_into(api_keys::table).values(&row).execute(c).await?;
                Ok(())
            })
        })
        .await
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let id = *id.as_uuid();
        let at = stored_time(at);
        self.run(move |c| {
            Box::pin(async move {
                // The first revocation time is kept, so revoking again only reports existence.
                let revoked = diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
                    .set(api_keys::revoked_at.eq(at))
                    .execute(c)
                    .await?;
                if revoked > 0 {
                    return Ok(true);
                }
                let exists = api_keys::table.find(id).select(api_keys::id).first::<Uuid>(c).await.optional()?;
                Ok(exists.is_some())
            })
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyGrant>, StoreError> {
        let key_hash = key_hash.to_owned();
        self.run(move |c| {
            Box::pin(async move {
                let found = api_keys::table
                    .inner_join(tenants::table)
                    .filter(api_keys::key_hash.eq(&key_hash))
                    .filter(api_keys::revoked_at.is_null())
                    .select((ApiKeyRow::as_select(), tenants::plan))
                    .first::<(ApiKeyRow, String)>(c)
                    .await
                    .optional()?;
                let Some((row, plan)) = found else {
                    return Ok(None);
                };
                Ok(Some(ApiKeyGrant { key: row.into_domain()?, plan: parse(&plan, "tenant plan")? }))
            })
        })
        .await
    }

    async fn has_no_tenants(&self) -> Result<bool, StoreError> {
        self.run(|c| {
            Box::pin(async move {
                let any = tenants::table.select(tenants::id).first::<Uuid>(c).await.optional()?;
                Ok(any.is_none())
            })
        })
        .await
    }
}
