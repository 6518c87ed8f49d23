//! Who is calling, and which project they act on.

use sigsentry_domain::{ApiKeyId, ApiKeySecret, Permission, PermissionSet, Plan, ProjectId, TenantId};
use sigsentry_ports::{Clock, CredentialCipher, Store, StoreError};

use crate::{CodeRepos, hash_api_key};

/// An authenticated API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id (safe to log).
    pub key_id: ApiKeyId,
    /// The tenant it acts for.
    pub tenant_id: TenantId,
    /// The one project it is limited to, if any.
    pub project_id: Option<ProjectId>,
    /// What it may do.
    pub permissions: PermissionSet,
    /// Its tenant's plan.
    pub plan: Plan,
}

/// The project a request acts on, once authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectScope {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The project.
    pub project_id: ProjectId,
    /// The tenant's plan (sets the quota).
    pub plan: Plan,
}

/// Why a presented key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key, a malformed one, an unknown or revoked one. Deliberately one case.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an authenticated caller may not act on the project asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The key lacks the permission of the endpoint.
    #[error("this API key lacks the {0} permission")]
    MissingPermission(Permission),
    /// A tenant-scoped key sent no `X-Project-Id`.
    #[error("X-Project-Id is required with a tenant-scoped API key")]
    ProjectHeaderMissing,
    /// `X-Project-Id` is not a UUID.
    #[error("X-Project-Id must be a UUID")]
    ProjectHeaderInvalid,
    /// No such project in the key's tenant.
    #[error("no project with that id in your tenant")]
    ProjectNotFound,
    /// A project-scoped key named another project.
    #[error("this API key is limited to another project")]
    OtherProject,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Finds the live key behind `Authorization: Bearer <presented>`.
    ///
    /// # Errors
    /// [`AuthError::Unauthorized`] for anything that is not a live key.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, AuthError> {
        let secret = ApiKeySecret::parse(presented).map_err(|_| AuthError::Unauthorized)?;
        let grant = self.store.find_api_key(&hash_api_key(secret.expose())).await?.ok_or(AuthError::Unauthorized)?;
        Ok(Caller {
            key_id: grant.key.id,
            tenant_id: grant.key.tenant_id,
            project_id: grant.key.project_id,
            permissions: grant.key.permissions,
            plan: grant.plan,
        })
    }

    /// Checks `needed` and resolves the project from the key's scope and the
    /// `X-Project-Id` header value, if sent.
    ///
    /// # Errors
    /// [`ScopeError`] for each row of the API's scope table.
    pub async fn authorize(
        &self,
        caller: &Caller,
        needed: Permission,
        project_header: Option<&str>,
    ) -> Result<ProjectScope, ScopeError> {
        if !caller.permissions.allows(needed) {
            return Err(ScopeError::MissingPermission(needed));
        }
        let requested = project_header
            .map(|raw| raw.trim().parse::<ProjectId>().map_err(|_| ScopeError::ProjectHeaderInvalid))
            .transpose()?;
        let project_id = match (caller.project_id, requested) {
            (Some(own), None) => own,
            (Some(own), Some(asked)) if own == asked => own,
            (Some(_), Some(_)) => return Err(ScopeError::OtherProject),
            (None, None) => return Err(ScopeError::ProjectHeaderMissing),
            (None, Some(asked)) => {
                let project = self.store.get_project(asked).await?;
                match project {
                    Some(project) if project.tenant_id == caller.tenant_id => asked,
                    _ => return Err(ScopeError::ProjectNotFound),
                }
            }
        };
        Ok(ProjectScope { tenant_id: caller.tenant_id, project_id, plan: caller.plan })
    }
}
