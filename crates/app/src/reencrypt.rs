//! Moving every stored credential under the active master key.

use sigsentry_ports::{CipherError, Clock, CredentialCipher, Store, StoreError};

use crate::CodeRepos;

/// What a re-encryption run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Credentials and webhook secrets now sealed under the active key
    /// (credentials: those under another key, or bound with version 1 of the
    /// associated data).
    pub resealed: u64,
    /// Of those, the ones that were bound with version 1 (the ids only) and
    /// now bind their platform, credential kind and baseUrl too.
    pub rebound: u64,
    /// Credentials changed by a user while we worked (already under the active key).
    pub skipped: u64,
}

/// What the start-up check of the keyring found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyringCheck {
    /// Stored credentials sampled.
    pub sampled: u64,
    /// Of those, the ones that opened.
    pub opened: u64,
    /// Of those, the ones still bound with version 1 of the associated data
    /// (they do not sync until `sigsentry credentials reencrypt` has run).
    pub version_1: u64,
}

/// Why the keyring cannot serve the stored credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringCheckError {
    /// Credentials are sealed with keys the ring does not hold.
    #[error(
        "stored credentials are sealed with master key(s) {0} that the keyring does not hold; add them back to \
         SIGSENTRY_MASTER_KEYS (see docs/operations.md, \"Master keys and rotation\")"
    )]
    MissingKeys(String),
    /// Not one sampled credential opens: the keyring has the right ids but
    /// not the right keys.
    #[error(
        "none of the {0} stored credentials sampled opens with the master keyring: SIGSENTRY_MASTER_KEYS does \
         not hold the keys they were sealed with"
    )]
    NoneOpen(u64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why re-encryption stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReencryptError {
    /// A stored value did not open (its key is missing from the ring, or it was tampered with).
    #[error("connection {connection_id}: {source}")]
    Open {
        /// The connection whose credential failed.
        connection_id: String,
        /// Why.
        source: CipherError,
    },
    /// Sealing failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Checks, before serving, that the keyring can open the stored
    /// credentials: every key id they name is in the ring, and of up to
    /// `sample` of them at least one opens. (One row that does not open,
    /// tampered or corrupt, fails only its own connection's sync; a wrong
    /// keyring fails them all, so the process should not start with it.)
    ///
    /// # Errors
    /// [`KeyringCheckError`] naming what is wrong.
    pub async fn check_keyring(&self, sample: u32) -> Result<KeyringCheck, KeyringCheckError> {
        let missing: Vec<String> = self
            .store
            .credential_key_ids()
            .await?
            .into_iter()
            .filter(|id| !self.cipher.has_key(id))
            .map(|id| format!("{:?}", id.chars().take(64).collect::<String>()))
            .collect();
        if !missing.is_empty() {
            return Err(KeyringCheckError::MissingKeys(missing.join(", ")));
        }
        let mut check = KeyringCheck::default();
        for row in self.store.credentials_after(None, sample.max(1)).await? {
            check.sampled += 1;
            let aad = row.aad();
            if self.cipher.open(&row.sealed, &aad).is_ok() {
                check.opened += 1;
            } else if self.cipher.open_v1(&row.sealed, &aad).is_ok() {
                check.opened += 1;
                check.version_1 += 1;
            }
        }
        if check.sampled > 0 && check.opened == 0 {
            return Err(KeyringCheckError::NoneOpen(check.sampled));
        }
        Ok(check)
    }

    /// Re-seals, in batches of `batch`, every credential that is not under
    /// the active key or not bound with the current associated data, then
    /// every webhook secret not under the active key
    /// (version 2: ids, platform, credential kind and baseUrl). A version-1
    /// value (ids only) is opened as such here and nowhere else: the sync
    /// refuses it until this has run. Each row is replaced only if unchanged
    /// since read, so the run is safe to interrupt, to repeat, and to run
    /// beside live traffic.
    ///
    /// # Errors
    /// [`ReencryptError`]; rows done before the error stay done.
    pub async fn reencrypt_credentials(&self, batch: u32) -> Result<ReencryptReport, ReencryptError> {
        let mut report = ReencryptReport::default();
        let active = self.cipher.active_key_id().to_owned();
        let mut after = None;
        loop {
            let rows = self.store.credentials_after(after, batch.max(1)).await?;
            let Some(last) = rows.last() else {
                let secrets = self.reencrypt_webhook_secrets(batch).await?;
                report.resealed += secrets.resealed;
                report.skipped += secrets.skipped;
                return Ok(report);
            };
            after = Some(last.connection_id);
            for row in rows {
                let aad = row.aad();
                let opened = match self.cipher.open(&row.sealed, &aad) {
                    Ok(_) if row.sealed.key_id == active => continue,
                    Ok(plain) => Ok((plain, false)),
                    Err(current) => {
                        self.cipher.open_v1(&row.sealed, &aad).map(|plain| (plain, true)).map_err(|_| current)
                    }
                };
                let (plain, rebound) = opened
                    .map_err(|source| ReencryptError::Open { connection_id: row.connection_id.to_string(), source })?;
                let resealed = self.cipher.seal(&plain, &aad)?;
                if self.store.reseal_credentials(row.connection_id, &row.sealed, resealed).await? {
                    report.resealed += 1;
                    report.rebound += u64::from(rebound);
                } else {
                    report.skipped += 1;
                }
            }
        }
    }

    /// Re-seals every webhook secret not under the active key, as
    /// [`CodeRepos::reencrypt_credentials`] does credentials.
    async fn reencrypt_webhook_secrets(&self, batch: u32) -> Result<ReencryptReport, ReencryptError> {
        let mut report = ReencryptReport::default();
        let active = self.cipher.active_key_id().to_owned();
        loop {
            let rows = self.store.webhook_secrets_not_under(&active, batch.max(1)).await?;
            if rows.is_empty() {
                return Ok(report);
            }
            for row in rows {
                let aad = row.aad();
                let plain = self
                    .cipher
                    .open_webhook_secret(&row.sealed, &aad)
                    .map_err(|source| ReencryptError::Open { connection_id: row.connection_id.to_string(), source })?;
                let resealed = self.cipher.seal_webhook_secret(&plain, &aad)?;
                if self.store.reseal_webhook_secret(row.connection_id, &row.sealed, resealed).await? {
                    report.resealed += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
    }
}
