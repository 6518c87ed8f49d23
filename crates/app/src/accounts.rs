//! Tenants, projects and API keys: the operator's side (CLI, first run).

use sigsentry_domain::{ApiKeyId, Permission, PermissionSet, Plan, ProjectId, TenantId};
use sigsentry_ports::{CipherError, Clock, CredentialCipher, NewApiKey, Project, Store, StoreError, Tenant};

use crate::{CodeRepos, generate_api_key, hash_api_key, new_uuid};

/// Why an account operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A name is empty or too long.
    #[error("{0}")]
    InvalidName(String),
    /// No such tenant.
    #[error("no tenant with id {0}")]
    TenantNotFound(TenantId),
    /// No such project in the tenant.
    #[error("no project with id {0} in that tenant")]
    ProjectNotFound(ProjectId),
    /// The random source failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key just made. The secret is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// The key's id.
    pub id: ApiKeyId,
    /// The full secret, `ss_secret_...`.
    pub secret: String,
}

/// What a first run set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstRun {
    /// The `default` tenant.
    pub tenant_id: TenantId,
    /// Its `default` project.
    pub project_id: ProjectId,
    /// A read/write key for that project.
    pub key: CreatedKey,
}

fn check_name(name: &str, what: &str) -> Result<String, AccountError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
        return Err(AccountError::InvalidName(format!("{what} name must be 1 to 200 printable characters")));
    }
    Ok(trimmed.to_owned())
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Creates a tenant on `plan`.
    ///
    /// # Errors
    /// [`AccountError::InvalidName`] or a store failure.
    pub async fn create_tenant(&self, name: &str, plan: Plan) -> Result<Tenant, AccountError> {
        let tenant = Tenant {
            id: TenantId::from_uuid(new_uuid()),
            name: check_name(name, "tenant")?,
            plan,
            created_at: self.clock.now(),
        };
        self.store.create_tenant(tenant.clone()).await?;
        Ok(tenant)
    }

    /// Creates a project in an existing tenant.
    ///
    /// # Errors
    /// [`AccountError::TenantNotFound`], `InvalidName` or a store failure.
    pub async fn create_project(&self, tenant_id: TenantId, name: &str) -> Result<Project, AccountError> {
        let name = check_name(name, "project")?;
        self.store.get_tenant(tenant_id).await?.ok_or(AccountError::TenantNotFound(tenant_id))?;
        let project = Project { id: ProjectId::from_uuid(new_uuid()), tenant_id, name, created_at: self.clock.now() };
        self.store.create_project(project.clone()).await?;
        Ok(project)
    }

    /// Creates a key for a tenant, limited to one of its projects if given.
    ///
    /// # Errors
    /// [`AccountError::TenantNotFound`], `ProjectNotFound`, `InvalidName` or a store failure.
    pub async fn create_api_key(
        &self,
        tenant_id: TenantId,
        project_id: Option<ProjectId>,
        permissions: PermissionSet,
        name: &str,
    ) -> Result<CreatedKey, AccountError> {
        let name = check_name(name, "key")?;
        self.store.get_tenant(tenant_id).await?.ok_or(AccountError::TenantNotFound(tenant_id))?;
        if let Some(project_id) = project_id {
            match self.store.get_project(project_id).await? {
                Some(project) if project.tenant_id == tenant_id => {}
                _ => return Err(AccountError::ProjectNotFound(project_id)),
            }
        }
        let secret = generate_api_key()?;
        let id = ApiKeyId::from_uuid(new_uuid());
        self.store
            .create_api_key(NewApiKey {
                id,
                tenant_id,
                project_id,
                name,
                key_hash: hash_api_key(&secret),
                permissions,
                created_at: self.clock.now(),
            })
            .await?;
        Ok(CreatedKey { id, secret })
    }

    /// Revokes a key; `false` when there is no such key.
    ///
    /// # Errors
    /// A store failure.
    pub async fn revoke_api_key(&self, id: ApiKeyId) -> Result<bool, AccountError> {
        Ok(self.store.revoke_api_key(id, self.clock.now()).await?)
    }

    /// On an empty store, creates a `default` tenant (plan `team`), a
    /// `default` project and a read/write key for it. `None` when the store
    /// already holds a tenant.
    ///
    /// # Errors
    /// A store or random-source failure.
    pub async fn first_run(&self) -> Result<Option<FirstRun>, AccountError> {
        if !self.store.has_no_tenants().await? {
            return Ok(None);
        }
        let tenant = self.create_tenant("default", Plan::Team).await?;
        let project = self.create_project(tenant.id, "default").await?;
        let permissions = PermissionSet::new([Permission::ConfigRead, Permission::ConfigWrite]);
        let key = self.create_api_key(tenant.id, Some(project.id), permissions, "first-run").await?;
        Ok(Some(FirstRun { tenant_id: tenant.id, project_id: project.id, key }))
    }
}
