//! The credential keeper of one unit of work on stored credentials: what
//! the platform session learns of them is gathered here and recorded once
//! at the end, and an OAuth grant is renewed here under the store's claim,
//! so that one refresh token is spent once across workers and replicas.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::{CredentialUse, Credentials, OAuthTokens, RENEW_BEFORE};
use sigsentry_ports::{
    Aad, BoxFuture, Clock, CredentialCipher, CredentialKeeper, CredentialReport, CredentialStore, OAuthExchange,
    PlatformError, RefreshError, RenewalClaim, RenewalOutcome, SealedSecret, StoreError,
};

/// How long a renewal claim holds: longer than one call to a token
/// endpoint may take (its request timeout), so a claim never lapses while
/// its holder may still spend the refresh token.
const RENEWAL_LEASE: TimeDelta = TimeDelta::minutes(2);
/// How often a worker that waits for another's renewal looks again.
const RENEWAL_POLL: Duration = Duration::from_millis(200);

/// Where the credentials of a job live, and what is known of them.
#[derive(Debug, Clone)]
pub(crate) struct StoredCredentials {
    /// What is bound into them: the connection, its platform, the
    /// credential kind and the `baseUrl` (read from here, never kept twice).
    pub(crate) aad: Aad,
    /// When a user set them: what is learnt is recorded only while they are still these.
    pub(crate) set_at: DateTime<Utc>,
}

/// A [`CredentialKeeper`] over the store, the cipher and the clock.
pub(crate) struct StoreKeeper<S, C, K> {
    store: S,
    cipher: C,
    clock: K,
    stored: StoredCredentials,
    /// The sealed value the job works with: the one read, or the one it renewed.
    sealed: Mutex<SealedSecret>,
    report: Mutex<CredentialReport>,
}

impl<S: CredentialStore, C: CredentialCipher, K: Clock> StoreKeeper<S, C, K> {
    pub(crate) fn new(store: S, cipher: C, clock: K, stored: StoredCredentials, sealed: SealedSecret) -> Self {
        Self {
            store,
            cipher,
            clock,
            stored,
            sealed: Mutex::new(sealed),
            report: Mutex::new(CredentialReport::default()),
        }
    }

    /// Records what the work learnt, if anything.
    pub(crate) async fn record(&self) -> Result<(), StoreError> {
        let report = *self.report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if report == CredentialReport::default() {
            return Ok(());
        }
        let stored = &self.stored;
        self.store
            .record_credential_use(stored.aad.connection_id, stored.set_at, report, self.clock.now())
            .await
            .map(drop)
    }

    fn current_sealed(&self) -> SealedSecret {
        self.sealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_sealed(&self, sealed: SealedSecret) {
        *self.sealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = sealed;
    }

    fn platform_name(&self) -> &'static str {
        self.stored.aad.platform.display_name()
    }

    fn unexpected(&self, detail: impl Into<String>) -> PlatformError {
        PlatformError::Unexpected { platform: self.platform_name(), detail: detail.into() }
    }

    fn store_failed(&self, error: &StoreError) -> PlatformError {
        // The store's text is for logs; the sync's message says what to do.
        tracing::warn!(%error, connection_id = %self.stored.aad.connection_id, "credential renewal could not reach the store");
        PlatformError::Unavailable {
            platform: self.platform_name(),
            detail: "the credential store is unavailable".to_owned(),
        }
    }

    /// The OAuth grant sealed in `sealed`.
    fn open_grant(&self, sealed: &SealedSecret) -> Result<(Credentials, OAuthTokens), PlatformError> {
        let stored = &self.stored;
        let plaintext = self
            .cipher
            .open(sealed, &stored.aad)
            .map_err(|e| self.unexpected(format!("the stored credentials cannot be opened ({e})")))?;
        let credentials = Credentials::from_sealed_plaintext(
            stored.aad.platform,
            stored.aad.credential_kind,
            stored.aad.base_url.clone(),
            &plaintext,
        )
        .map_err(|_| self.unexpected("the stored credentials are unreadable; set them again"))?;
        let tokens = credentials.oauth().cloned().ok_or_else(|| self.unexpected("the credentials are not OAuth"))?;
        Ok((credentials, tokens))
    }

    async fn renew(&self, seen: &OAuthTokens, exchange: &dyn OAuthExchange) -> Result<OAuthTokens, PlatformError> {
        let id = self.stored.aad.connection_id;
        let rejected = PlatformError::CredentialsRejected { platform: self.platform_name(), status: 400 };
        let mut spent = seen.clone();
        // Bounded: a claim lasts RENEWAL_LEASE, and a lapsed one is free.
        let give_up = self.clock.now() + RENEWAL_LEASE + RENEWAL_LEASE;
        loop {
            let sealed = self.current_sealed();
            let holder = uuid::Uuid::now_v7();
            let now = self.clock.now();
            let claim = self
                .store
                .claim_renewal(id, &sealed, holder, now, now + RENEWAL_LEASE)
                .await
                .map_err(|e| self.store_failed(&e))?;
            match claim {
                RenewalClaim::Claimed => {
                    let (credentials, _) = self.open_grant(&sealed)?;
                    let refresh_token =
                        credentials.oauth().map(|t| t.refresh_token.clone()).unwrap_or(spent.refresh_token.clone());
                    return match exchange.exchange(&refresh_token).await {
                        Ok(tokens) => {
                            let renewed = credentials
                                .with_oauth(tokens.clone())
                                .ok_or_else(|| self.unexpected("the credentials are not OAuth"))?;
                            let new_sealed =
                                self.cipher.seal(&renewed.sealed_plaintext(), &self.stored.aad).map_err(|e| {
                                    self.unexpected(format!("the renewed credentials cannot be sealed ({e})"))
                                })?;
                            let outcome = RenewalOutcome::Renewed(new_sealed.clone());
                            let kept = self.store.finish_renewal(id, holder, outcome, self.clock.now()).await;
                            match kept {
                                Ok(true) => self.set_sealed(new_sealed),
                                // A user set new credentials meanwhile: theirs win; these still work for this job.
                                Ok(false) => {}
                                Err(error) => {
                                    // The refresh token is spent and the new one is not stored: the
                                    // connection needs a person. Say so loudly.
                                    tracing::error!(%error, connection_id = %id, "renewed OAuth credentials could not be stored");
                                    return Err(self.store_failed(&error));
                                }
                            }
                            tracing::info!(connection_id = %id, "OAuth credentials renewed");
                            Ok(tokens)
                        }
                        Err(RefreshError::Refused { reason, .. }) => {
                            tracing::warn!(connection_id = %id, %reason, "the platform refused to renew the OAuth credentials");
                            let outcome = RenewalOutcome::Refused { expires_at: spent.expires_at };
                            self.store
                                .finish_renewal(id, holder, outcome, self.clock.now())
                                .await
                                .map_err(|e| self.store_failed(&e))?;
                            self.observe(CredentialReport { outcome: Some(CredentialUse::Refused), expires_at: None });
                            Err(rejected)
                        }
                        Err(RefreshError::Failed(error)) => {
                            if let Err(store) = self.store.abandon_renewal(id, holder).await {
                                // The claim lapses by itself.
                                tracing::warn!(error = %store, connection_id = %id, "could not release a renewal claim");
                            }
                            Err(error)
                        }
                    };
                }
                RenewalClaim::Changed(newer) => {
                    let (_, tokens) = self.open_grant(&newer)?;
                    self.set_sealed(newer);
                    if tokens != spent && !tokens.due(self.clock.now(), RENEW_BEFORE) {
                        return Ok(tokens);
                    }
                    // Newer, but due as well (or the same grant resealed under a new key).
                    spent = tokens;
                }
                RenewalClaim::Busy(_) => {
                    if self.clock.now() > give_up {
                        let detail = "another worker has been renewing the credentials for too long".to_owned();
                        return Err(PlatformError::Unavailable { platform: self.platform_name(), detail });
                    }
                    tokio::time::sleep(RENEWAL_POLL).await;
                }
                RenewalClaim::Refused => return Err(rejected),
                RenewalClaim::Gone => return Err(self.unexpected("the connection was deleted")),
            }
        }
    }
}

impl<S: CredentialStore, C: CredentialCipher, K: Clock> CredentialKeeper for StoreKeeper<S, C, K> {
    fn observe(&self, report: CredentialReport) {
        self.report.lock().unwrap_or_else(std::sync::PoisonError::into_inner).merge(report);
    }

    fn renew_oauth<'a>(
        &'a self,
        seen: &'a OAuthTokens,
        exchange: &'a dyn OAuthExchange,
    ) -> BoxFuture<'a, Result<OAuthTokens, PlatformError>> {
        Box::pin(self.renew(seen, exchange))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use sigsentry_crypto::Keyring;
    use sigsentry_domain::{ConnectionId, CredentialKind, Platform};
    use sigsentry_domain::{ProjectId, Secret, TenantId};
    use sigsentry_ports::SystemClock;
    use uuid::Uuid;

    use super::*;

    /// A store whose claims are scripted, recording how renewals end.
    #[derive(Clone, Default)]
    struct Scripted {
        claims: Arc<Mutex<VecDeque<RenewalClaim>>>,
        finished: Arc<Mutex<Vec<RenewalOutcome>>>,
        abandoned: Arc<Mutex<u32>>,
    }

    impl CredentialStore for Scripted {
        async fn record_credential_use(
            &self,
            _: ConnectionId,
            _: DateTime<Utc>,
            _: CredentialReport,
            _: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            Ok(true)
        }

        async fn installation_refused(&self, _: i64, _: DateTime<Utc>) -> Result<u64, StoreError> {
            Ok(0)
        }

        async fn claim_renewal(
            &self,
            _: ConnectionId,
            _: &SealedSecret,
            _: Uuid,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<RenewalClaim, StoreError> {
            Ok(self.claims.lock().unwrap().pop_front().expect("a scripted claim"))
        }

        async fn finish_renewal(
            &self,
            _: ConnectionId,
            _: Uuid,
            outcome: RenewalOutcome,
            _: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.finished.lock().unwrap().push(outcome);
            Ok(true)
        }

        async fn abandon_renewal(&self, _: ConnectionId, _: Uuid) -> Result<(), StoreError> {
            *self.abandoned.lock().unwrap() += 1;
            Ok(())
        }
    }

    /// A token endpoint answering from a script, counting the refresh tokens it is sent.
    struct Endpoint {
        answer: Result<OAuthTokens, RefreshError>,
        spent: Mutex<Vec<String>>,
    }

    impl OAuthExchange for Endpoint {
        fn exchange<'a>(
            &'a self,
            refresh_token: &'a sigsentry_domain::Secret,
        ) -> BoxFuture<'a, Result<OAuthTokens, RefreshError>> {
            self.spent.lock().unwrap().push(refresh_token.expose().to_owned());
            Box::pin(async move { self.answer.clone() })
        }
    }

    fn grant(n: u32, expires_in: TimeDelta) -> OAuthTokens {
        OAuthTokens {
            access_token: Secret::new(format!("access-{n}")).unwrap(),
            refresh_token: Secret::new(format!("refresh-{n}")).unwrap(),
            expires_at: Utc::now() + expires_in,
        }
    }

    struct Fixture {
        store: Scripted,
        cipher: Keyring,
        keeper: StoreKeeper<Scripted, Keyring, SystemClock>,
        stored: StoredCredentials,
    }

    fn fixture(claims: Vec<RenewalClaim>, seen: &OAuthTokens) -> Fixture {
        let store = Scripted::default();
        store.claims.lock().unwrap().extend(claims);
        let cipher = Keyring::from_keys(vec![("k1".to_owned(), [7; 32])]).unwrap();
        let connection_id = ConnectionId::from_uuid(Uuid::now_v7());
        let aad = Aad {
            tenant_id: TenantId::from_uuid(Uuid::now_v7()),
            project_id: ProjectId::from_uuid(Uuid::now_v7()),
            connection_id,
            platform: Platform::GitLab,
            credential_kind: CredentialKind::OAuth,
            base_url: None,
        };
        let stored = StoredCredentials { aad, set_at: Utc::now() };
        let sealed = seal(&cipher, &stored, seen);
        let keeper = StoreKeeper::new(store.clone(), cipher.clone(), SystemClock, stored.clone(), sealed);
        Fixture { store, cipher, keeper, stored }
    }

    fn seal(cipher: &Keyring, stored: &StoredCredentials, tokens: &OAuthTokens) -> SealedSecret {
        let credentials = Credentials::GitLabOAuth { tokens: tokens.clone(), base_url: None };
        cipher.seal(&credentials.sealed_plaintext(), &stored.aad).unwrap()
    }

    fn endpoint(answer: Result<OAuthTokens, RefreshError>) -> Endpoint {
        Endpoint { answer, spent: Mutex::new(Vec::new()) }
    }

    #[tokio::test]
    async fn the_holder_spends_the_refresh_token_once_and_stores_the_rotated_grant() {
        let seen = grant(1, TimeDelta::minutes(1));
        let fx = fixture(vec![RenewalClaim::Claimed], &seen);
        let renewed = grant(2, TimeDelta::hours(2));
        let endpoint = endpoint(Ok(renewed.clone()));
        assert_eq!(fx.keeper.renew_oauth(&seen, &endpoint).await.unwrap(), renewed);
        assert_eq!(*endpoint.spent.lock().unwrap(), ["refresh-1"]);
        let finished = fx.store.finished.lock().unwrap().clone();
        let [RenewalOutcome::Renewed(sealed)] = finished.as_slice() else { panic!("{finished:?}") };
        let (_, stored) = fx.keeper.open_grant(sealed).unwrap();
        assert_eq!(stored, renewed, "the rotated refresh token replaces the spent one, sealed");
    }

    #[tokio::test]
    async fn a_waiter_uses_what_the_holder_stored_without_spending_anything() {
        let seen = grant(1, TimeDelta::minutes(1));
        let fx0 = fixture(Vec::new(), &seen);
        let newer = grant(2, TimeDelta::hours(2));
        let newer_sealed = seal(&fx0.cipher, &fx0.stored, &newer);
        fx0.store.claims.lock().unwrap().extend([RenewalClaim::Busy(Utc::now()), RenewalClaim::Changed(newer_sealed)]);
        let endpoint = endpoint(Err(RefreshError::Refused { platform: "GitLab", reason: "invalid_grant".into() }));
        assert_eq!(fx0.keeper.renew_oauth(&seen, &endpoint).await.unwrap(), newer);
        assert!(endpoint.spent.lock().unwrap().is_empty());
        assert!(fx0.store.finished.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_refresh_rejects_the_credentials_and_is_not_tried_again() {
        let seen = grant(1, TimeDelta::minutes(1));
        let fx = fixture(vec![RenewalClaim::Claimed, RenewalClaim::Refused], &seen);
        let endpoint = endpoint(Err(RefreshError::Refused { platform: "GitLab", reason: "invalid_grant".into() }));
        let rejected = PlatformError::CredentialsRejected { platform: "GitLab", status: 400 };
        assert_eq!(fx.keeper.renew_oauth(&seen, &endpoint).await.unwrap_err(), rejected);
        assert_eq!(*fx.store.finished.lock().unwrap(), [RenewalOutcome::Refused { expires_at: seen.expires_at }]);
        assert_eq!(fx.keeper.report.lock().unwrap().outcome, Some(CredentialUse::Refused));
        // The next job finds the refusal in the store: no second call.
        assert_eq!(fx.keeper.renew_oauth(&seen, &endpoint).await.unwrap_err(), rejected);
        assert_eq!(endpoint.spent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_releases_the_claim() {
        let seen = grant(1, TimeDelta::minutes(1));
        let fx = fixture(vec![RenewalClaim::Claimed], &seen);
        let down = PlatformError::Unavailable { platform: "GitLab", detail: "timed out".into() };
        let endpoint = endpoint(Err(RefreshError::Failed(down.clone())));
        assert_eq!(fx.keeper.renew_oauth(&seen, &endpoint).await.unwrap_err(), down);
        assert_eq!(*fx.store.abandoned.lock().unwrap(), 1);
        assert!(fx.store.finished.lock().unwrap().is_empty());
    }
}
