//! The credential keeper of one unit of work on stored credentials: what
//! the platform session learns of them is gathered here and recorded once
//! at the end, and an OAuth grant is renewed here under the store's claim,
//! so that one refresh token is spent once across workers and replicas.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::{
    BaseUrl, ConnectionId, CredentialKind, CredentialUse, Credentials, OAuthTokens, Platform, RENEW_BEFORE,
};
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
    pub(crate) connection_id: ConnectionId,
    pub(crate) aad: Aad,
    pub(crate) platform: Platform,
    pub(crate) kind: CredentialKind,
    pub(crate) base_url: Option<BaseUrl>,
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
        self.store.record_credential_use(stored.connection_id, stored.set_at, report, self.clock.now()).await.map(drop)
    }

    fn current_sealed(&self) -> SealedSecret {
        self.sealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_sealed(&self, sealed: SealedSecret) {
        *self.sealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = sealed;
    }

    fn platform_name(&self) -> &'static str {
        self.stored.platform.display_name()
    }

    fn unexpected(&self, detail: impl Into<String>) -> PlatformError {
        PlatformError::Unexpected { platform: self.platform_name(), detail: detail.into() }
    }

    fn store_failed(&self, error: &StoreError) -> PlatformError {
        // The store's text is for logs; the sync's message says what to do.
        tracing::warn!(%error, connection_id = %self.stored.connection_id, "credential renewal could not reach the store");
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
        let credentials =
            Credentials::from_sealed_plaintext(stored.platform, stored.kind, stored.base_url.clone(), &plaintext)
                .map_err(|_| self.unexpected("the stored credentials are unreadable; set them again"))?;
        let tokens = credentials.oauth().cloned().ok_or_else(|| self.unexpected("the credentials are not OAuth"))?;
        Ok((credentials, tokens))
    }

    async fn renew(&self, seen: &OAuthTokens, exchange: &dyn OAuthExchange) -> Result<OAuthTokens, PlatformError> {
        let id = self.stored.connection_id;
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
