//! What the services report for operators' metrics. The port is
//! object-safe (`Arc<dyn Telemetry>`): a report is a plain call, never a
//! failure a caller must handle.

use std::time::Duration;

/// How a repository's sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncOutcome {
    /// The cache is current.
    Ready,
    /// The platform's rate limit put it off.
    RateLimited,
    /// The platform refused the credentials.
    CredentialsRejected,
    /// Any other failure.
    Failed,
    /// Its claim was voided meanwhile (deleted, paused, wiped): nothing written.
    Voided,
    /// It ran past its deadline.
    TimedOut,
}

impl SyncOutcome {
    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Ready => "ready",
            SyncOutcome::RateLimited => "rate_limited",
            SyncOutcome::CredentialsRejected => "credentials_rejected",
            SyncOutcome::Failed => "failed",
            SyncOutcome::Voided => "voided",
            SyncOutcome::TimedOut => "timed_out",
        }
    }
}

/// Receives what operators measure. Labels must stay few: platform names,
/// outcomes and status codes, never tenants, keys or repositories.
pub trait Telemetry: Send + Sync + 'static {
    /// A repository's sync ended.
    fn sync_job(&self, outcome: SyncOutcome, duration: Duration);

    /// A call to a platform ended with `status`, or with no answer (`None`).
    fn platform_call(&self, platform: &'static str, status: Option<u16>, latency: Duration);

    /// A platform's rate limit put work off for `wait`.
    fn rate_limit_wait(&self, platform: &'static str, wait: Duration);
}

/// Reports nowhere (tests, embedding teams that measure otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {
    fn sync_job(&self, _: SyncOutcome, _: Duration) {}
    fn platform_call(&self, _: &'static str, _: Option<u16>, _: Duration) {}
    fn rate_limit_wait(&self, _: &'static str, _: Duration) {}
}
