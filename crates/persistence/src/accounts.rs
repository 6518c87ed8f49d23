//! Tenants, projects and API keys.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use sigsentry_domain::{ApiKeyId, ProjectId, TenantId};
use sigsentry_ports::{AccountStore, ApiKeyGrant, NewApiKey, Project, StoreError, Tenant};

use crate::AnyStore;
use crate::decode::{self, parse};
use crate::dialect::db;
use crate::rows::{ApiKeyRow, ProjectRow, TenantRow};
use crate::schema::{api_keys, projects, tenants};
use crate::sql_types::{DbId, DbTime};

impl AccountStore for AnyStore {
    async fn create_tenant(&self, tenant: Tenant) -> Result<(), StoreError> {
        let row = TenantRow::from_domain(&tenant);
        self.run(async move |c| {
            db!(c, |c| diesel::insert_into(tenants::table).values(&row).execute(c))?;
            Ok(())
        })
        .await
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.run(async move |c| {
            let row =
                db!(c, |c| tenants::table.find(DbId::from(id)).select(TenantRow::as_select()).first(c)).optional()?;
            Ok(row.map(decode::tenant).transpose()?)
        })
        .await
    }

    async fn create_project(&self, project: Project) -> Result<(), StoreError> {
        let row = ProjectRow::from_domain(&project);
        self.run(async move |c| {
            db!(c, |c| diesel::insert_into(projects::table).values(&row).execute(c))?;
            Ok(())
        })
        .await
    }

    async fn get_project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.run(async move |c| {
            let row =
                db!(c, |c| projects::table.find(DbId::from(id)).select(ProjectRow::as_select()).first(c)).optional()?;
            Ok(row.map(decode::project))
        })
        .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<(), StoreError> {
        let row = ApiKeyRow::from_domain(key);
        self.run(async move |c| {
            db!(c, |c| diesel::insert_into(api_keys::table).values(&row).execute(c))?;
            Ok(())
        })
        .await
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let (id, at) = (DbId::from(id), DbTime::from(at));
        self.run(async move |c| {
            // The first revocation time is kept, so revoking again only reports existence.
            let revoke = diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
                .set(api_keys::revoked_at.eq(at));
            if db!(c, |c| revoke.execute(c))? > 0 {
                return Ok(true);
            }
            let exists = db!(c, |c| api_keys::table.find(id).select(api_keys::id).first::<DbId>(c)).optional()?;
            Ok(exists.is_some())
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyGrant>, StoreError> {
        let key_hash = key_hash.to_owned();
        self.run(async move |c| {
            let found = db!(c, |c| api_keys::table
                .inner_join(tenants::table)
                .filter(api_keys::key_hash.eq(&key_hash))
                .filter(api_keys::revoked_at.is_null())
                .select((ApiKeyRow::as_select(), tenants::plan))
                .first::<(ApiKeyRow, String)>(c))
            .optional()?;
            let Some((row, plan)) = found else {
                return Ok(None);
            };
            Ok(Some(ApiKeyGrant { key: decode::api_key(row)?, plan: parse(&plan, "tenant plan")? }))
        })
        .await
    }

    async fn has_no_tenants(&self) -> Result<bool, StoreError> {
        self.run(async |c| {
            let any = db!(c, |c| tenants::table.select(tenants::id).first::<DbId>(c)).optional()?;
            Ok(any.is_none())
        })
        .await
    }
}
