//! The one seam the inbound adapters (HTTP) depend on: what a request can
//! ask of the application, with no port trait in sight. [`CodeRepos`]
//! implements it over real adapters; a handler test implements it with a fake.

use std::future::Future;

use chrono::{DateTime, Utc};
use sigsentry_domain::correlation::CorrelationDraft;
use sigsentry_domain::{ConnectionId, PatchDraft, RepoConnection, SpecDraft};
use sigsentry_ports::{Clock, CredentialCipher, Store, StoreError, StoredResponse};

use crate::{
    AccessError, AccessRequest, CodeRepos, ConnectionFilter, ConnectionPage, CorrelateError, Correlation, CreateError,
    CreateOutcome, Fingerprinted, HookAction, HookEndpoint, HookError, HookRequest, HookTarget, NotFoundOr,
    ProjectScope, PullRequestFilter, PullRequestPage, ServiceConfig, UpdateError, WebhookSecret,
};

/// The Code Repos API as the application offers it. Every method but
/// [`CodeReposApi::access`] acts within a [`ProjectScope`] that `access` gave.
pub trait CodeReposApi: Clone + Send + Sync + 'static {
    /// The settings in force (limits the adapter documents and enforces on its side).
    fn config(&self) -> &ServiceConfig;

    /// The service's time: what credential statuses are computed against.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Authenticates the request's key, checks its permission and resolves its project.
    ///
    /// # Errors
    /// [`AccessError`], one variant per row of the API's scope table.
    fn access(&self, request: AccessRequest<'_>) -> impl Future<Output = Result<ProjectScope, AccessError>> + Send;

    /// Creates a connection; `render` builds the response kept for replays.
    ///
    /// # Errors
    /// [`CreateError`].
    fn create_connection(
        &self,
        scope: ProjectScope,
        draft: SpecDraft,
        idempotency: Option<Fingerprinted>,
        render: impl FnOnce(&RepoConnection) -> StoredResponse + Send,
    ) -> impl Future<Output = Result<CreateOutcome, CreateError>> + Send;

    /// Reads one connection.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    fn get_connection(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
    ) -> impl Future<Output = Result<RepoConnection, NotFoundOr>> + Send;

    /// Lists connections, one page.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn list_connections(
        &self,
        scope: ProjectScope,
        filter: ConnectionFilter,
    ) -> impl Future<Output = Result<ConnectionPage, StoreError>> + Send;

    /// Applies a partial update; with `rotate_webhook_secret`, returns the
    /// new webhook secret (to show once).
    ///
    /// # Errors
    /// [`UpdateError`].
    fn update_connection(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
        draft: PatchDraft,
        rotate_webhook_secret: bool,
    ) -> impl Future<Output = Result<Option<WebhookSecret>, UpdateError>> + Send;

    /// Deletes a connection and its cache.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    fn delete_connection(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
    ) -> impl Future<Output = Result<(), NotFoundOr>> + Send;

    /// Wipes a connection's cache.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    fn invalidate_cache(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
    ) -> impl Future<Output = Result<(), NotFoundOr>> + Send;

    /// Asks for a sync now.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    fn request_sync(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
    ) -> impl Future<Output = Result<(), NotFoundOr>> + Send;

    /// Lists a connection's cached PRs, one page.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    fn list_pull_requests(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
        filter: PullRequestFilter,
    ) -> impl Future<Output = Result<PullRequestPage, NotFoundOr>> + Send;

    /// Correlates an error with the project's repositories.
    ///
    /// # Errors
    /// [`CorrelateError`].
    fn correlate(
        &self,
        scope: ProjectScope,
        draft: CorrelationDraft,
    ) -> impl Future<Output = Result<Correlation, CorrelateError>> + Send;

    /// Finds a webhook endpoint, before the delivery's body is read.
    ///
    /// # Errors
    /// [`HookError::NotFound`] (no such connection), [`HookError::AppNotConfigured`].
    fn webhook_target(&self, endpoint: HookEndpoint) -> impl Future<Output = Result<HookTarget, HookError>> + Send;

    /// Verifies a webhook delivery and acts on it.
    ///
    /// # Errors
    /// [`HookError`].
    fn receive_webhook(
        &self,
        target: HookTarget,
        request: HookRequest,
    ) -> impl Future<Output = Result<HookAction, HookError>> + Send;

    /// Whether the service can serve requests (its store answers).
    ///
    /// # Errors
    /// [`StoreError`] when it cannot.
    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeReposApi for CodeRepos<S, C, K> {
    fn config(&self) -> &ServiceConfig {
        CodeRepos::config(self)
    }

    async fn access(&self, request: AccessRequest<'_>) -> Result<ProjectScope, AccessError> {
        CodeRepos::access(self, request).await
    }

    async fn create_connection(
        &self,
        scope: ProjectScope,
        draft: SpecDraft,
        idempotency: Option<Fingerprinted>,
        render: impl FnOnce(&RepoConnection) -> StoredResponse + Send,
    ) -> Result<CreateOutcome, CreateError> {
        CodeRepos::create_connection(self, scope, draft, idempotency, render).await
    }

    async fn get_connection(&self, scope: ProjectScope, id: ConnectionId) -> Result<RepoConnection, NotFoundOr> {
        CodeRepos::get_connection(self, scope, id).await
    }

    async fn list_connections(
        &self,
        scope: ProjectScope,
        filter: ConnectionFilter,
    ) -> Result<ConnectionPage, StoreError> {
        CodeRepos::list_connections(self, scope, filter).await
    }

    async fn update_connection(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
        draft: PatchDraft,
        rotate_webhook_secret: bool,
    ) -> Result<Option<WebhookSecret>, UpdateError> {
        CodeRepos::update_connection(self, scope, id, draft, rotate_webhook_secret).await
    }

    async fn delete_connection(&self, scope: ProjectScope, id: ConnectionId) -> Result<(), NotFoundOr> {
        CodeRepos::delete_connection(self, scope, id).await
    }

    async fn invalidate_cache(&self, scope: ProjectScope, id: ConnectionId) -> Result<(), NotFoundOr> {
        CodeRepos::invalidate_cache(self, scope, id).await
    }

    async fn request_sync(&self, scope: ProjectScope, id: ConnectionId) -> Result<(), NotFoundOr> {
        CodeRepos::request_sync(self, scope, id).await
    }

    async fn list_pull_requests(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
        filter: PullRequestFilter,
    ) -> Result<PullRequestPage, NotFoundOr> {
        CodeRepos::list_pull_requests(self, scope, id, filter).await
    }

    async fn correlate(&self, scope: ProjectScope, draft: CorrelationDraft) -> Result<Correlation, CorrelateError> {
        CodeRepos::correlate(self, scope, draft).await
    }

    async fn webhook_target(&self, endpoint: HookEndpoint) -> Result<HookTarget, HookError> {
        CodeRepos::webhook_target(self, endpoint).await
    }

    async fn receive_webhook(&self, target: HookTarget, request: HookRequest) -> Result<HookAction, HookError> {
        CodeRepos::receive_webhook(self, target, request).await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.store().ping().await
    }
}
