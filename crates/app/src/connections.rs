//! Creating, reading, changing and deleting repo connections.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sigsentry_domain::{
    ConnectionId, ConnectionSpec, CredentialHealth, CredentialStatus, CredentialSummary, Credentials, FieldError,
    IdempotencyKey, Invalid, PatchDraft, Platform, RepoConnection, RepoSyncStatus, SpecDraft,
};
use sigsentry_ports::{
    Aad, CipherError, Clock, ConnectionChange, CredentialCipher, IdempotencyBegin, IdempotencyCompletion, ListQuery,
    NewConnection, NewCredentials, Store, StoreError, StoredResponse, WebhookSecretAad, WriteConnectionError,
};

use crate::{CodeRepos, CreateError, NotFoundOr, ProjectScope, UpdateError, WebhookSecret, new_uuid};

/// An idempotency key and what makes two requests with it "the same".
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprinted {
    /// The client's key.
    pub key: IdempotencyKey,
    /// The request in a canonical form (method, path, body with sorted
    /// keys). Only a keyed digest of it is stored: it may hold a token.
    pub canonical_request: String,
}

impl std::fmt::Debug for Fingerprinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The canonical request may hold a secret.
        f.debug_struct("Fingerprinted").field("key", &self.key).finish_non_exhaustive()
    }
}

/// What a create request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new connection, the response stored for replays (without the
    /// webhook secret: the database never holds it in clear), and the
    /// webhook secret, to show in this one answer.
    Created(Box<RepoConnection>, StoredResponse, WebhookSecret),
    /// A replay of an earlier success with the same key and body.
    Replayed(StoredResponse),
}

/// Which connections to list, and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFilter {
    /// Only this platform.
    pub platform: Option<Platform>,
    /// Only active (`true`) or paused (`false`) connections.
    pub is_active: Option<bool>,
    /// Only connections whose credentials have one of these statuses now
    /// (empty: any).
    pub credential_status: Vec<CredentialStatus>,
    /// The connections after this one (from a cursor).
    pub after: Option<ConnectionId>,
    /// Page size, 1..=100.
    pub limit: u32,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPage {
    /// The connections.
    pub items: Vec<RepoConnection>,
    /// The cursor of the next page, `None` on the last.
    pub next_cursor: Option<String>,
}

/// How many times an update is recomputed when a concurrent one wins.
const UPDATE_ATTEMPTS: usize = 5;
const CURSOR_PREFIX: &str = "c1";

/// An opaque cursor for the page after `id`.
pub fn encode_cursor(id: ConnectionId) -> String {
    format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(id.as_uuid().as_bytes()))
}

/// Reads a cursor back.
///
/// # Errors
/// [`Invalid`] when it is not a cursor this service gave out.
pub fn decode_cursor(cursor: &str) -> Result<ConnectionId, Invalid> {
    let invalid = || Invalid::new("is not a cursor from a previous page");
    let bytes = cursor.strip_prefix(CURSOR_PREFIX).and_then(|b| URL_SAFE_NO_PAD.decode(b).ok()).ok_or_else(invalid)?;
    let uuid = uuid::Uuid::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(ConnectionId::from_uuid(uuid))
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Creates a connection. With an idempotency key, a retry of a success
    /// replays it, and the creation and the stored response commit together.
    /// `render` builds the response to store and send.
    ///
    /// # Errors
    /// [`CreateError`].
    pub async fn create_connection(
        &self,
        scope: ProjectScope,
        draft: SpecDraft,
        idempotency: Option<Fingerprinted>,
        render: impl FnOnce(&RepoConnection) -> StoredResponse + Send,
    ) -> Result<CreateOutcome, CreateError> {
        let spec = ConnectionSpec::from_draft(draft, self.config.base_url_policy).map_err(CreateError::Validation)?;
        self.config.renewal.check(&spec.credentials).map_err(|e| CreateError::Validation(e.into()))?;
        if let Some(idem) = &idempotency {
            let fingerprint = self.cipher.keyed_digest("idempotency", idem.canonical_request.as_bytes());
            let begin = self
                .store
                .begin(
                    scope.project_id,
                    &idem.key,
                    &fingerprint,
                    self.clock.now(),
                    self.config.idempotency_lease_secs,
                    self.config.idempotency_retention_secs,
                )
                .await?;
            match begin {
                IdempotencyBegin::Claimed => {}
                IdempotencyBegin::Replay(response) => return Ok(CreateOutcome::Replayed(response)),
                IdempotencyBegin::Mismatch => return Err(CreateError::IdempotencyMismatch),
                IdempotencyBegin::InFlight { retry_after_secs } => {
                    return Err(CreateError::IdempotencyInFlight { retry_after_secs });
                }
            }
        }
        let result = self.insert_connection(scope, spec, idempotency.as_ref(), render).await;
        if result.is_err()
            && let Some(idem) = &idempotency
            && let Err(error) = self.store.release(scope.project_id, &idem.key).await
        {
            // The claim then lapses after its lease; the request's own error matters more.
            tracing::warn!(%error, "could not release an idempotency claim");
        }
        result
    }

    async fn insert_connection(
        &self,
        scope: ProjectScope,
        spec: ConnectionSpec,
        idempotency: Option<&Fingerprinted>,
        render: impl FnOnce(&RepoConnection) -> StoredResponse + Send,
    ) -> Result<CreateOutcome, CreateError> {
        let now = self.clock.now();
        let id = ConnectionId::from_uuid(new_uuid());
        let aad = Aad::for_credentials(scope.tenant_id, scope.project_id, id, &spec.credentials);
        let credentials = self.seal(&spec.credentials, &aad)?;
        let webhook_secret = WebhookSecret::generate()?;
        let hook_aad = WebhookSecretAad { tenant_id: scope.tenant_id, project_id: scope.project_id, connection_id: id };
        let sealed_webhook_secret = self.cipher.seal_webhook_secret(webhook_secret.expose().as_bytes(), &hook_aad)?;
        let connection = RepoConnection {
            id,
            tenant_id: scope.tenant_id,
            project_id: scope.project_id,
            platform: spec.platform(),
            credentials: CredentialSummary {
                kind: credentials.kind,
                hint: credentials.hint.clone(),
                base_url: credentials.base_url.clone(),
                updated_at: now,
                health: CredentialHealth::UNKNOWN,
            },
            sync: spec.repositories.iter().cloned().map(RepoSyncStatus::pending).collect(),
            repositories: spec.repositories.clone(),
            service_mappings: spec.service_mappings.clone(),
            lookback_days: spec.lookback_days,
            is_active: true,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let response = render(&connection);
        let new = NewConnection {
            id,
            tenant_id: scope.tenant_id,
            project_id: scope.project_id,
            platform: spec.platform(),
            credentials,
            repositories: spec.repositories,
            service_mappings: spec.service_mappings,
            lookback_days: spec.lookback_days,
            webhook_secret: sealed_webhook_secret,
            created_at: now,
        };
        let completion =
            idempotency.map(|idem| IdempotencyCompletion { key: idem.key.clone(), response: response.clone() });
        let limit = self.config.quotas.repositories_per_project(scope.plan);
        match self.store.create_connection(new, limit, completion).await {
            Ok(()) => {
                tracing::info!(connection_id = %id, platform = %connection.platform, repositories = connection.repositories.len(), "repo connection created");
                Ok(CreateOutcome::Created(Box::new(connection), response, webhook_secret))
            }
            Err(WriteConnectionError::Refused(refused)) => Err(CreateError::Refused(refused)),
            Err(WriteConnectionError::Store(e)) => Err(CreateError::Store(e)),
            // Only an update can find its connection gone or changed.
            Err(WriteConnectionError::NotFound | WriteConnectionError::VersionConflict) => Err(CreateError::Store(
                StoreError::Unexpected("the store answered a create as if it were an update".to_owned()),
            )),
        }
    }

    fn seal(&self, credentials: &Credentials, aad: &Aad) -> Result<NewCredentials, CipherError> {
        Ok(NewCredentials {
            kind: credentials.kind(),
            hint: credentials.hint(),
            base_url: credentials.base_url().cloned(),
            sealed: self.cipher.seal(&credentials.sealed_plaintext(), aad)?,
            installation_id: credentials.installation_id(),
        })
    }

    /// Reads one connection of the project.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    pub async fn get_connection(&self, scope: ProjectScope, id: ConnectionId) -> Result<RepoConnection, NotFoundOr> {
        self.store.get_connection(scope.project_id, id).await?.ok_or(NotFoundOr::NotFound)
    }

    /// Lists connections of the project: `filter.limit` (1..=100) per page.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn list_connections(
        &self,
        scope: ProjectScope,
        filter: ConnectionFilter,
    ) -> Result<ConnectionPage, StoreError> {
        let ConnectionFilter { platform, is_active, credential_status, after, limit } = filter;
        // One more row than asked tells whether another page exists.
        let query =
            ListQuery { platform, is_active, credential_status, now: self.clock.now(), after, limit: limit + 1 };
        let mut items = self.store.list_connections(scope.project_id, query).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|c| encode_cursor(c.id))
        } else {
            None
        };
        Ok(ConnectionPage { items, next_cursor })
    }

    /// Applies a partial update; the merged result must pass every rule.
    /// With `rotate_webhook_secret`, a new webhook secret replaces the old
    /// one in the same write and is returned, to show once.
    ///
    /// # Errors
    /// [`UpdateError`].
    pub async fn update_connection(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
        draft: PatchDraft,
        rotate_webhook_secret: bool,
    ) -> Result<Option<WebhookSecret>, UpdateError> {
        let hook_aad = WebhookSecretAad { tenant_id: scope.tenant_id, project_id: scope.project_id, connection_id: id };
        let rotated = if rotate_webhook_secret {
            let secret = WebhookSecret::generate()?;
            let sealed = self.cipher.seal_webhook_secret(secret.expose().as_bytes(), &hook_aad)?;
            Some((secret, sealed))
        } else {
            None
        };
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.store.get_connection(scope.project_id, id).await?.ok_or(UpdateError::NotFound)?;
            let update = current.apply(draft.clone(), self.config.base_url_policy).map_err(UpdateError::Validation)?;
            if let Some(credentials) = &update.credentials {
                self.config.renewal.check(credentials).map_err(|e| UpdateError::Validation(e.into()))?;
            }
            let kind = update.credentials.as_ref().map_or(current.credentials.kind, Credentials::kind);
            if rotate_webhook_secret && !kind.has_own_webhook() {
                return Err(UpdateError::Validation(
                    FieldError::new(
                        "/rotateWebhookSecret",
                        "a GitHub App connection has no webhook secret of its own: its deliveries come to \
                         /v1/hooks/github, signed with the App's secret",
                    )
                    .into(),
                ));
            }
            let now = self.clock.now();
            let credentials = match &update.credentials {
                None => None,
                Some(creds) => {
                    let aad = Aad::for_credentials(scope.tenant_id, scope.project_id, id, creds);
                    Some(self.seal(creds, &aad)?)
                }
            };
            let change = ConnectionChange {
                id,
                project_id: scope.project_id,
                expected_version: current.version,
                credentials,
                repositories: update.repositories,
                service_mappings: update.service_mappings,
                lookback_days: update.lookback_days,
                is_active: update.is_active,
                webhook_secret: rotated.as_ref().map(|(_, sealed)| sealed.clone()),
                resync_all: update.resync_all,
                at: now,
            };
            let limit = self.config.quotas.repositories_per_project(scope.plan);
            match self.store.update_connection(change, limit).await {
                Ok(()) => {
                    tracing::info!(connection_id = %id, webhook_secret_rotated = rotated.is_some(), "repo connection updated");
                    return Ok(rotated.map(|(secret, _)| secret));
                }
                Err(WriteConnectionError::VersionConflict) => continue,
                Err(WriteConnectionError::NotFound) => return Err(UpdateError::NotFound),
                Err(WriteConnectionError::Refused(refused)) => return Err(UpdateError::Refused(refused)),
                Err(WriteConnectionError::Store(e)) => return Err(UpdateError::Store(e)),
            }
        }
        Err(UpdateError::Contended)
    }

    /// Deletes a connection and its cached data.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    pub async fn delete_connection(&self, scope: ProjectScope, id: ConnectionId) -> Result<(), NotFoundOr> {
        if self.store.delete_connection(scope.project_id, id).await? {
            tracing::info!(connection_id = %id, "repo connection deleted");
            Ok(())
        } else {
            Err(NotFoundOr::NotFound)
        }
    }

    /// Wipes a connection's cache; every repository goes back to `pending`.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    pub async fn invalidate_cache(&self, scope: ProjectScope, id: ConnectionId) -> Result<(), NotFoundOr> {
        if self.store.invalidate_cache(scope.project_id, id, self.clock.now()).await? {
            tracing::info!(connection_id = %id, "repo cache invalidated");
            Ok(())
        } else {
            Err(NotFoundOr::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = ConnectionId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        assert!(decode_cursor("abc").is_err());
        assert!(decode_cursor("c1!!").is_err());
        assert!(decode_cursor("c1AAAA").is_err());
    }
}
