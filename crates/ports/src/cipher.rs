//! Sealing credentials at rest.

use std::fmt;

use sigsentry_domain::{ConnectionId, ProjectId, TenantId};

/// A sealed secret and the id of the key that sealed it, stored side by side
/// so the master key can rotate.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Which key of the keyring sealed it.
    pub key_id: String,
    /// `nonce || ciphertext || tag`.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret").field("key_id", &self.key_id).field("len", &self.ciphertext.len()).finish()
    }
}

/// Associated data bound into every sealed credential: a ciphertext moved to
/// another row, project or tenant no longer opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The owning project.
    pub project_id: ProjectId,
    /// The connection the secret belongs to.
    pub connection_id: ConnectionId,
}

impl Aad {
    /// The bytes bound in: the three ids, in a fixed order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(self.tenant_id.as_uuid().as_bytes());
        out.extend_from_slice(self.project_id.as_uuid().as_bytes());
        out.extend_from_slice(self.connection_id.as_uuid().as_bytes());
        out
    }
}

/// Why sealing or opening failed. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The sealing key id is not in the keyring.
    #[error("no key with id '{0}' in the keyring")]
    UnknownKey(String),
    /// Authentication failed: wrong key, tampered bytes or wrong associated data.
    #[error("the sealed value does not open with its key and ids")]
    Tampered,
    /// The random source or the cipher failed.
    #[error("the cipher failed")]
    Failed,
}

/// Seals and opens credential bytes.
pub trait CredentialCipher: Clone + Send + Sync + 'static {
    /// Seals `plaintext` under the active key with a fresh nonce.
    ///
    /// # Errors
    /// [`CipherError::Failed`] if the system random source fails.
    fn seal(&self, plaintext: &[u8], aad: &Aad) -> Result<SealedSecret, CipherError>;

    /// Opens a sealed value.
    ///
    /// # Errors
    /// [`CipherError::UnknownKey`] when its key is not configured;
    /// [`CipherError::Tampered`] when it does not authenticate.
    fn open(&self, sealed: &SealedSecret, aad: &Aad) -> Result<Vec<u8>, CipherError>;

    /// The id of the key new values are sealed with.
    fn active_key_id(&self) -> &str;

    /// A keyed digest of `data` for `purpose` (lowercase hex): values that
    /// must be compared but never recovered, nor guessed offline by whoever
    /// copies the database (an idempotency fingerprint covers the body, and
    /// the body may hold a token). Derived from the active key, one key per
    /// purpose, so digests change when the active key does.
    fn keyed_digest(&self, purpose: &'static str, data: &[u8]) -> String;
}
