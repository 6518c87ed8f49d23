//! Sealing credentials at rest.

use std::fmt;

use sigsentry_domain::{BaseUrl, ConnectionId, CredentialKind, Credentials, Platform, ProjectId, TenantId};

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
/// another row, project or tenant no longer opens, and neither does one whose
/// row was changed to another platform, credential kind or `baseUrl` (the
/// row decides where the secret is sent: changing where must void it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The owning project.
    pub project_id: ProjectId,
    /// The connection the secret belongs to.
    pub connection_id: ConnectionId,
    /// Its platform.
    pub platform: Platform,
    /// How the secret authenticates.
    pub credential_kind: CredentialKind,
    /// Where it is sent, when not the platform's cloud (normalized: no
    /// trailing slash, as [`BaseUrl`] keeps it).
    pub base_url: Option<BaseUrl>,
}

/// What version 2 of the associated data starts with; version 1 (the three
/// ids alone, 48 bytes) never does, being shorter than this tag plus them.
const V2_TAG: &[u8] = b"sigsentry-credentials-aad-v2\0";

impl Aad {
    /// The associated data of `credentials` stored on connection `connection_id`.
    pub fn for_credentials(
        tenant_id: TenantId,
        project_id: ProjectId,
        connection_id: ConnectionId,
        credentials: &Credentials,
    ) -> Self {
        Self {
            tenant_id,
            project_id,
            connection_id,
            platform: credentials.platform(),
            credential_kind: credentials.kind(),
            base_url: credentials.base_url().cloned(),
        }
    }

    /// The bytes bound in (version 2): a tag, the three ids, then the
    /// platform, the kind and the `baseUrl` (a presence byte, then the
    /// URL), each text length-prefixed so no two values share an encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = V2_TAG.to_vec();
        out.extend_from_slice(&self.v1_bytes());
        let mut text = |value: &str| {
            out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        };
        text(self.platform.as_str());
        text(self.credential_kind.as_str());
        match &self.base_url {
            Some(url) => {
                out.push(1);
                out.extend_from_slice(&u32::try_from(url.as_str().len()).unwrap_or(u32::MAX).to_be_bytes());
                out.extend_from_slice(url.as_str().as_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// The bytes of version 1, which bound the three ids only: what
    /// credentials sealed before version 2 were sealed with. Only
    /// `credentials reencrypt` (and the start-up check) open with it.
    pub fn v1_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(self.tenant_id.as_uuid().as_bytes());
        out.extend_from_slice(self.project_id.as_uuid().as_bytes());
        out.extend_from_slice(self.connection_id.as_uuid().as_bytes());
        out
    }
}

/// Associated data bound into a connection's sealed webhook secret: its
/// owner's ids, under a tag of its own, so a secret moved to another row
/// does not open, and no credential ciphertext opens as a webhook secret nor
/// the reverse. It does not bind the platform, kind or `baseUrl`: the secret
/// is only compared with what platforms send, never sent anywhere, and it
/// must survive a change of credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSecretAad {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The owning project.
    pub project_id: ProjectId,
    /// The connection whose hook the secret signs.
    pub connection_id: ConnectionId,
}

/// What a webhook secret's associated data starts with.
const WEBHOOK_SECRET_TAG: &[u8] = b"sigsentry-webhook-secret-aad-v1\0";

impl WebhookSecretAad {
    /// The bytes bound in: the tag, then the three ids.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = WEBHOOK_SECRET_TAG.to_vec();
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

    /// Opens a value sealed with version 1 of the associated data
    /// ([`Aad::v1_bytes`]: the ids only). For migrating such values
    /// (`credentials reencrypt`) and checking the keyring at start-up, never
    /// for using them: a version-1 value does not bind where it is sent.
    ///
    /// # Errors
    /// As [`CredentialCipher::open`].
    fn open_v1(&self, sealed: &SealedSecret, aad: &Aad) -> Result<Vec<u8>, CipherError>;

    /// Seals a connection's webhook secret under the active key.
    ///
    /// # Errors
    /// As [`CredentialCipher::seal`].
    fn seal_webhook_secret(&self, plaintext: &[u8], aad: &WebhookSecretAad) -> Result<SealedSecret, CipherError>;

    /// Opens a sealed webhook secret.
    ///
    /// # Errors
    /// As [`CredentialCipher::open`].
    fn open_webhook_secret(&self, sealed: &SealedSecret, aad: &WebhookSecretAad) -> Result<Vec<u8>, CipherError>;

    /// The id of the key new values are sealed with.
    fn active_key_id(&self) -> &str;

    /// Whether the keyring holds a key with this id.
    fn has_key(&self, key_id: &str) -> bool;

    /// A keyed digest of `data` for `purpose` (lowercase hex): values that
    /// must be compared but never recovered, nor guessed offline by whoever
    /// copies the database (an idempotency fingerprint covers the body, and
    /// the body may hold a token). Derived from the active key, one key per
    /// purpose, so digests change when the active key does.
    fn keyed_digest(&self, purpose: &'static str, data: &[u8]) -> String;
}
