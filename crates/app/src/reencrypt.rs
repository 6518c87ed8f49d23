//! Moving every stored credential under the active master key.

use sigsentry_ports::{Aad, CipherError, Clock, CredentialCipher, Store, StoreError};

use crate::CodeRepos;

/// What a re-encryption run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Credentials and webhook secrets now sealed under the active key.
    pub resealed: u64,
    /// Credentials changed by a user while we worked (already under the active key).
    pub skipped: u64,
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
    /// Re-seals, in batches of `batch`, every credential (and webhook
    /// secret) not under the active key. Each row is replaced only if unchanged since read, so the run is
    /// safe to interrupt, to repeat, and to run beside live traffic.
    ///
    /// # Errors
    /// [`ReencryptError`]; rows done before the error stay done.
    pub async fn reencrypt_credentials(&self, batch: u32) -> Result<ReencryptReport, ReencryptError> {
        let mut report = ReencryptReport::default();
        let active = self.cipher.active_key_id().to_owned();
        loop {
            let rows = self.store.credentials_not_under(&active, batch.max(1)).await?;
            if rows.is_empty() {
                let secrets = self.reencrypt_webhook_secrets(batch).await?;
                report.resealed += secrets.resealed;
                report.skipped += secrets.skipped;
                return Ok(report);
            }
            for row in rows {
                let aad =
                    Aad { tenant_id: row.tenant_id, project_id: row.project_id, connection_id: row.connection_id };
                let plain = self
                    .cipher
                    .open(&row.sealed, &aad)
                    .map_err(|source| ReencryptError::Open { connection_id: row.connection_id.to_string(), source })?;
                let resealed = self.cipher.seal(&plain, &aad)?;
                if self.store.reseal_credentials(row.connection_id, &row.sealed, resealed).await? {
                    report.resealed += 1;
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
                let aad =
                    Aad { tenant_id: row.tenant_id, project_id: row.project_id, connection_id: row.connection_id };
                let plain = self
                    .cipher
                    .open(&row.sealed, &aad)
                    .map_err(|source| ReencryptError::Open { connection_id: row.connection_id.to_string(), source })?;
                let resealed = self.cipher.seal(&plain, &aad)?;
                if self.store.reseal_webhook_secret(row.connection_id, &row.sealed, resealed).await? {
                    report.resealed += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
    }
}
