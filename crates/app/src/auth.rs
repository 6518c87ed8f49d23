//! Who is calling, and which project they act on.

use sigsentry_domain::{ApiKeyId, ApiKeySecret, Permission, PermissionSet, Plan, ProjectId, TenantId};
use sigsentry_ports::{Clock, CredentialCipher, Store};

use crate::{AccessError, CodeRepos, hash_api_key};

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
    /// The API key acting (what per-key limits count).
    pub key_id: ApiKeyId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The project.
    pub project_id: ProjectId,
    /// The tenant's plan (sets the quota).
    pub plan: Plan,
}

/// What a request presents to act on a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRequest<'a> {
    /// The token of `Authorization: Bearer ...`, if the request sent one in that scheme.
    pub bearer: Option<&'a str>,
    /// The raw `X-Project-Id` header, if sent.
    pub project_header: Option<&'a [u8]>,
    /// The permission the endpoint needs.
    pub needed: Permission,
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Authenticates the key, checks the permission and resolves the
    /// project, in the order of the API's scope table.
    ///
    /// # Errors
    /// [`AccessError`], one variant per row of that table.
    pub async fn access(&self, request: AccessRequest<'_>) -> Result<ProjectScope, AccessError> {
        let caller = self.authenticate(request.bearer.ok_or(AccessError::Unauthorized)?).await?;
        let header = request
            .project_header
            .map(|raw| std::str::from_utf8(raw).map_err(|_| AccessError::ProjectHeaderInvalid))
            .transpose()?;
        self.authorize(&caller, request.needed, header).await
    }

    /// Finds the live key behind `Authorization: Bearer <presented>`.
    ///
    /// # Errors
    /// [`AccessError::Unauthorized`] for anything that is not a live key.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, AccessError> {
        let secret = ApiKeySecret::parse(presented).map_err(|_| AccessError::Unauthorized)?;
        let grant = self.store.find_api_key(&hash_api_key(secret.expose())).await?.ok_or(AccessError::Unauthorized)?;
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
    /// [`AccessError`] for each row of the API's scope table.
    pub async fn authorize(
        &self,
        caller: &Caller,
        needed: Permission,
        project_header: Option<&str>,
    ) -> Result<ProjectScope, AccessError> {
        if !caller.permissions.allows(needed) {
            return Err(AccessError::MissingPermission(needed));
        }
        let requested = project_header
            .map(|raw| raw.trim().parse::<ProjectId>().map_err(|_| AccessError::ProjectHeaderInvalid))
            .transpose()?;
        let project_id = match (caller.project_id, requested) {
            (Some(own), None) => own,
            (Some(own), Some(asked)) if own == asked => own,
            (Some(_), Some(_)) => return Err(AccessError::OtherProject),
            (None, None) => return Err(AccessError::ProjectHeaderMissing),
            (None, Some(asked)) => {
                let project = self.store.get_project(asked).await?;
                match project {
                    Some(project) if project.tenant_id == caller.tenant_id => asked,
                    _ => return Err(AccessError::ProjectNotFound),
                }
            }
        };
        Ok(ProjectScope { key_id: caller.key_id, tenant_id: caller.tenant_id, project_id, plan: caller.plan })
    }
}
