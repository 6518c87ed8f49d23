//! What the platforms teach about a connection's credentials (their expiry,
//! whether they were accepted), and renewing the OAuth grants the service
//! keeps for users: the store's side and the platform session's side.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use sigsentry_domain::{ConnectionId, CredentialUse, OAuthTokens, Secret};
use uuid::Uuid;

use crate::{PlatformError, SealedSecret, StoreError};

/// A boxed future, for the object-safe traits a platform session holds.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one unit of work (a sync, a check) learnt about the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CredentialReport {
    /// `Accepted` after a call that worked, `Refused` after a 401, a refused
    /// refresh or a removed App installation; `None` when nothing was called.
    pub outcome: Option<CredentialUse>,
    /// `Some(expiry)` when the platform said when the credentials stop
    /// working (`Some(None)`: they do not expire); `None` when it did not say.
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

impl CredentialReport {
    /// Folds a later observation into this one: the last outcome wins,
    /// except that a refusal is kept (a later call may not touch the
    /// credentials at all); the last expiry told wins.
    pub fn merge(&mut self, later: CredentialReport) {
        self.outcome = match (self.outcome, later.outcome) {
            (Some(CredentialUse::Refused), _) => Some(CredentialUse::Refused),
            (earlier, None) => earlier,
            (_, later) => later,
        };
        if later.expires_at.is_some() {
            self.expires_at = later.expires_at;
        }
    }
}

/// The outcome of [`CredentialStore::claim_renewal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalClaim {
    /// The caller holds the renewal until the given time: it may spend the
    /// refresh token of the credentials it saw, then must call
    /// [`CredentialStore::finish_renewal`] or [`CredentialStore::abandon_renewal`].
    Claimed,
    /// The credentials are no longer the ones seen (another worker or
    /// replica renewed them, or a user set new ones): use these.
    Changed(SealedSecret),
    /// Another holder is renewing them now, until this time: wait for
    /// [`RenewalClaim::Changed`].
    Busy(DateTime<Utc>),
    /// The platform already refused these credentials' renewal: do not try
    /// again until a user sets new ones.
    Refused,
    /// The connection is gone.
    Gone,
}

/// How a renewal ended, as [`CredentialStore::finish_renewal`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalOutcome {
    /// The new credentials, sealed, replacing the spent ones.
    Renewed(SealedSecret),
    /// The platform refused the renewal: the credentials are kept, marked
    /// refused, and their expiry is now the one the user must act before.
    Refused {
        /// When the last access token stops (stopped) working.
        expires_at: DateTime<Utc>,
    },
}

/// The credentials' bookkeeping in the store.
pub trait CredentialStore: Clone + Send + Sync + 'static {
    /// Records what a use of the credentials taught, if they are still the
    /// ones a user set at `credentials_set_at` (new credentials start
    /// afresh). `false` when they changed or the connection is gone.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn record_credential_use(
        &self,
        connection_id: ConnectionId,
        credentials_set_at: DateTime<Utc>,
        report: CredentialReport,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks the credentials of every connection made through GitHub App
    /// installation `installation_id` as refused at `at` (the App's hook
    /// said the installation was deleted or suspended): they show
    /// `rejected` until a use works again. How many connections.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn installation_refused(
        &self,
        installation_id: i64,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Claims the renewal of the connection's credentials for `holder`
    /// until `until`, if they are still `seen` and no live claim holds
    /// them: one atomic compare-and-set, so across workers, processes and
    /// replicas on one database at most one holder spends a refresh token.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn claim_renewal(
        &self,
        connection_id: ConnectionId,
        seen: &SealedSecret,
        holder: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<RenewalClaim, StoreError>> + Send;

    /// Ends `holder`'s claim with its outcome: renewed credentials replace
    /// the spent ones and count as accepted; a refusal marks them refused.
    /// `false` when the claim was lost (it lapsed and another took it, or
    /// a user set new credentials): nothing is written.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn finish_renewal(
        &self,
        connection_id: ConnectionId,
        holder: Uuid,
        outcome: RenewalOutcome,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Drops `holder`'s claim without a change (the token endpoint could
    /// not be reached: the refresh token was not spent).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn abandon_renewal(
        &self,
        connection_id: ConnectionId,
        holder: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why an OAuth token endpoint did not renew a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The endpoint refused the refresh token (`400 invalid_grant`, a
    /// revoked authorization): it will not work again.
    #[error("{platform} refused to refresh the OAuth grant ({reason})")]
    Refused {
        /// The platform.
        platform: &'static str,
        /// The OAuth error code, never a token.
        reason: String,
    },
    /// The endpoint could not be reached or failed; the refresh token may
    /// not have been spent.
    #[error(transparent)]
    Failed(PlatformError),
}

/// Exchanges a refresh token for a new grant at the platform's token
/// endpoint (implemented by the platform adapter).
pub trait OAuthExchange: Send + Sync {
    /// Spends `refresh_token`.
    ///
    /// # Errors
    /// [`RefreshError`].
    fn exchange<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<OAuthTokens, RefreshError>>;
}

/// What a platform session is given to keep its credentials in step with
/// the store: where it reports what it learns, and who renews an OAuth
/// grant under the store's lock. Object-safe: the session holds an
/// `Arc<dyn CredentialKeeper>`.
pub trait CredentialKeeper: Send + Sync {
    /// Notes what a call taught (kept in memory; recorded when the unit of
    /// work ends).
    fn observe(&self, report: CredentialReport);

    /// The grant to use instead of `seen`, which is due or was refused:
    /// renewed through `exchange` by exactly one holder (this one, or
    /// another worker or replica whose result is read back).
    ///
    /// # Errors
    /// [`PlatformError::CredentialsRejected`] when the renewal was refused
    /// (now or before); others when it could not be done now.
    fn renew_oauth<'a>(
        &'a self,
        seen: &'a OAuthTokens,
        exchange: &'a dyn OAuthExchange,
    ) -> BoxFuture<'a, Result<OAuthTokens, PlatformError>>;
}

/// A keeper for work whose credentials live nowhere (a check of new
/// credentials before they are stored): nothing is recorded, and an OAuth
/// grant is renewed in memory only.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetachedKeeper;

impl CredentialKeeper for DetachedKeeper {
    fn observe(&self, _report: CredentialReport) {}

    fn renew_oauth<'a>(
        &'a self,
        seen: &'a OAuthTokens,
        exchange: &'a dyn OAuthExchange,
    ) -> BoxFuture<'a, Result<OAuthTokens, PlatformError>> {
        Box::pin(async move {
            exchange.exchange(&seen.refresh_token).await.map_err(|error| match error {
                RefreshError::Refused { platform, .. } => PlatformError::CredentialsRejected { platform, status: 400 },
                RefreshError::Failed(error) => error,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_outlives_later_successes_and_the_last_expiry_wins() {
        let mut report = CredentialReport::default();
        let t = DateTime::<Utc>::UNIX_EPOCH;
        report.merge(CredentialReport { outcome: Some(CredentialUse::Accepted), expires_at: Some(Some(t)) });
        report.merge(CredentialReport { outcome: None, expires_at: None });
        assert_eq!(report, CredentialReport { outcome: Some(CredentialUse::Accepted), expires_at: Some(Some(t)) });
        report.merge(CredentialReport { outcome: Some(CredentialUse::Refused), expires_at: Some(None) });
        report.merge(CredentialReport { outcome: Some(CredentialUse::Accepted), expires_at: None });
        assert_eq!(report, CredentialReport { outcome: Some(CredentialUse::Refused), expires_at: Some(None) });
    }
}
