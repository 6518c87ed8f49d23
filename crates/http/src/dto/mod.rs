//! Request and response bodies, as the API documents them: the same types
//! deserialize requests, serialize answers and generate the OpenAPI document.

mod correlate;
mod request;
mod schema;
mod view;

pub use correlate::{
    CorrelateBody, CorrelateRequest, CorrelationView, ExceptionView, FrameBody, FrameMappingView, FrameView,
    LanguageName, SuspectFileView, SuspectPullRequestView, UnmappedReason, UnmappedView,
};
pub use request::{CreateConnectionBody, CredentialsBody, OAuthBody, ServiceMappingBody, UpdateConnectionBody};
pub use schema::{
    ApiTokenCredentials, AppPasswordCredentials, BITBUCKET_REPOSITORY, BitbucketOAuthCredentials,
    CreateConnectionRequest, GITHUB_REPOSITORY, GITLAB_REPOSITORY, InstallationCredentials, OAuthCredentials,
    TokenCredentials, UpdateConnectionRequest,
};
pub use view::{
    ConnectionView, CredentialKindName, CredentialStatusName, CredentialSummaryView, Deleted, Health, HealthStatus,
    HookAccepted, HookActionName, Invalidated, PlatformName, PullRequestView, ServiceMappingView, SyncRequested,
    SyncStateName, SyncView, Timestamp, Updated, WebhookView,
};
