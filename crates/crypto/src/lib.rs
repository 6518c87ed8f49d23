//! Credential sealing: AES-256-GCM (ring) with a keyring for rotation.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag (16 bytes)`,
//! stored next to the id of the key that sealed it. The tenant, project and
//! connection ids are bound in as associated data, so a ciphertext copied to
//! another row does not open. New values are sealed with the first (active)
//! key; older keys stay in the ring only to open what they sealed until
//! `sigsentry credentials reencrypt` has moved everything to the active key.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad as RingAad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use sigsentry_ports::{Aad, CipherError, CredentialCipher, SealedSecret, WebhookSecretAad};

/// Bytes in a master key.
pub const KEY_LEN: usize = 32;

/// Why a keyring could not be built. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// A key is not valid base64.
    #[error("key {position} is not valid base64")]
    NotBase64 {
        /// 1-based position in the list.
        position: usize,
    },
    /// A key does not decode to 32 bytes.
    #[error("key {position} decodes to {len} bytes; a master key is 32 bytes (base64 of 32 random bytes)")]
    WrongLength {
        /// 1-based position in the list.
        position: usize,
        /// What it decoded to.
        len: usize,
    },
    /// A key id is empty or not `[A-Za-z0-9_.-]{1,64}`.
    #[error("key {position} has an invalid id (use 1 to 64 of A-Z a-z 0-9 _ . -)")]
    BadId {
        /// 1-based position in the list.
        position: usize,
    },
    /// Two keys share an id.
    #[error("key id '{0}' appears twice")]
    DuplicateId(String),
    /// No key at all.
    #[error("the keyring is empty")]
    Empty,
}

struct RingKey {
    id: String,
    key: LessSafeKey,
    /// The root of the keys derived for keyed digests, one per purpose.
    digest_root: hkdf::Prk,
}

/// Salt of the HKDF that derives digest keys from a master key: fixed, so
/// the same master key always gives the same digests.
const DIGEST_SALT: &[u8] = b"sigsentry keyed digests v1";

/// The master keys. The first one is active.
#[derive(Clone)]
pub struct Keyring {
    keys: std::sync::Arc<Vec<RingKey>>,
    rng: SystemRandom,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// A keyring from raw 32-byte keys with explicit ids; the first is active.
    ///
    /// # Errors
    /// [`KeyringError`] for an empty list, a bad id or a duplicate id.
    pub fn from_keys(keys: Vec<(String, [u8; KEY_LEN])>) -> Result<Self, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut ring_keys: Vec<RingKey> = Vec::with_capacity(keys.len());
        for (i, (id, bytes)) in keys.into_iter().enumerate() {
            let valid_id = (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid_id {
                return Err(KeyringError::BadId { position: i + 1 });
            }
            if ring_keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::DuplicateId(id));
            }
            // A 32-byte slice is always a valid AES-256 key.
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyringError::Empty)?;
            let digest_root = hkdf::Salt::new(hkdf::HKDF_SHA256, DIGEST_SALT).extract(&bytes);
            ring_keys.push(RingKey { id, key: LessSafeKey::new(unbound), digest_root });
        }
        Ok(Self { keys: std::sync::Arc::new(ring_keys), rng: SystemRandom::new() })
    }

    /// Parses the keyring format: comma-separated entries, each `ID:BASE64`
    /// or just `BASE64` (the id is then derived from the key). The first
    /// entry is the active key.
    ///
    /// # Errors
    /// [`KeyringError`] naming the position of the bad entry.
    pub fn parse(spec: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let position = i + 1;
            let (id, encoded) = match entry.split_once(':') {
                Some((id, encoded)) => (Some(id.trim().to_owned()), encoded.trim()),
                None => (None, entry),
            };
            let bytes = STANDARD.decode(encoded).map_err(|_| KeyringError::NotBase64 { position })?;
            let key: [u8; KEY_LEN] =
                bytes.as_slice().try_into().map_err(|_| KeyringError::WrongLength { position, len: bytes.len() })?;
            keys.push((id.unwrap_or_else(|| derived_id(&key)), key));
        }
        Self::from_keys(keys)
    }

    /// A fresh random key, base64-encoded, for a first run.
    ///
    /// # Errors
    /// [`CipherError::Failed`] if the system random source fails.
    pub fn generate_key_base64() -> Result<String, CipherError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut key).map_err(|_| CipherError::Failed)?;
        Ok(STANDARD.encode(key))
    }

    /// The ids, active first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    fn active(&self) -> Result<&RingKey, CipherError> {
        self.keys.first().ok_or(CipherError::Failed)
    }
}

/// A short id derived from the key, so a single-key setup needs no naming
/// and the same key always gets the same id. Reveals nothing usable.
fn derived_id(key: &[u8; KEY_LEN]) -> String {
    let mut input = b"sigsentry-key-id:".to_vec();
    input.extend_from_slice(key);
    let hash = digest(&SHA256, &input);
    let hex: String = hash.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("k{hex}")
}

impl Keyring {
    /// Seals as releases before version 2 of the associated data did (the
    /// ids only): for tests of the migration (`credentials reencrypt`), never
    /// for new values.
    ///
    /// # Errors
    /// As [`CredentialCipher::seal`].
    #[doc(hidden)]
    pub fn seal_v1_for_tests(&self, plaintext: &[u8], aad: &Aad) -> Result<SealedSecret, CipherError> {
        self.seal_with(plaintext, aad.v1_bytes())
    }

    /// Seals `plaintext` under the active key with a fresh nonce and the associated data `aad`.
    fn seal_with(&self, plaintext: &[u8], aad: Vec<u8>) -> Result<SealedSecret, CipherError> {
        let active = self.active()?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce_bytes).map_err(|_| CipherError::Failed)?;
        let mut in_out = plaintext.to_vec();
        active
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), RingAad::from(aad), &mut in_out)
            .map_err(|_| CipherError::Failed)?;
        let mut ciphertext = nonce_bytes.to_vec();
        ciphertext.extend_from_slice(&in_out);
        Ok(SealedSecret { key_id: active.id.clone(), ciphertext })
    }

    /// Opens `sealed` with its key and the associated data `aad`.
    fn open_with(&self, sealed: &SealedSecret, aad: Vec<u8>) -> Result<Vec<u8>, CipherError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| CipherError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.ciphertext.len() < NONCE_LEN {
            return Err(CipherError::Tampered);
        }
        let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CipherError::Tampered)?;
        let mut in_out = body.to_vec();
        let plain = key.key.open_in_place(nonce, RingAad::from(aad), &mut in_out).map_err(|_| CipherError::Tampered)?;
        Ok(plain.to_vec())
    }
}

impl CredentialCipher for Keyring {
    fn seal(&self, plaintext: &[u8], aad: &Aad) -> Result<SealedSecret, CipherError> {
        self.seal_with(plaintext, aad.to_bytes())
    }

    fn open(&self, sealed: &SealedSecret, aad: &Aad) -> Result<Vec<u8>, CipherError> {
        self.open_with(sealed, aad.to_bytes())
    }

    fn seal_webhook_secret(&self, plaintext: &[u8], aad: &WebhookSecretAad) -> Result<SealedSecret, CipherError> {
        self.seal_with(plaintext, aad.to_bytes())
    }

    fn open_webhook_secret(&self, sealed: &SealedSecret, aad: &WebhookSecretAad) -> Result<Vec<u8>, CipherError> {
        self.open_with(sealed, aad.to_bytes())
    }

    fn open_v1(&self, sealed: &SealedSecret, aad: &Aad) -> Result<Vec<u8>, CipherError> {
        self.open_with(sealed, aad.v1_bytes())
    }

    fn active_key_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    fn has_key(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    fn keyed_digest(&self, purpose: &'static str, data: &[u8]) -> String {
        let Some(active) = self.keys.first() else { return String::new() };
        let info = [purpose.as_bytes()];
        // Expanding 32 bytes of HMAC key material cannot fail.
        let key: hmac::Key = match active.digest_root.expand(&info, hmac::HMAC_SHA256) {
            Ok(okm) => okm.into(),
            Err(_) => return String::new(),
        };
        hmac::sign(&key, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use sigsentry_domain::{BaseUrl, BaseUrlPolicy, ConnectionId, CredentialKind, Platform, ProjectId, TenantId};
    use uuid::Uuid;

    use super::*;

    fn aad(n: u128) -> Aad {
        Aad {
            tenant_id: TenantId::from_uuid(Uuid::from_u128(1)),
            project_id: ProjectId::from_uuid(Uuid::from_u128(2)),
            connection_id: ConnectionId::from_uuid(Uuid::from_u128(n)),
            platform: Platform::GitLab,
            credential_kind: CredentialKind::Token,
            base_url: Some(BaseUrl::parse("https://gitlab.example.com", BaseUrlPolicy::default()).unwrap()),
        }
    }

    #[test]
    fn the_platform_kind_and_base_url_are_bound() {
        let keys = ring(&[("a", 1)]);
        let sealed = keys.seal(b"token", &aad(3)).unwrap();
        let elsewhere = BaseUrl::parse("https://evil.example.com", BaseUrlPolicy::default()).unwrap();
        for changed in [
            Aad { base_url: Some(elsewhere), ..aad(3) },
            Aad { base_url: None, ..aad(3) },
            Aad { platform: Platform::GitHub, ..aad(3) },
            Aad { credential_kind: CredentialKind::AppPassword, ..aad(3) },
        ] {
            assert_eq!(keys.open(&sealed, &changed), Err(CipherError::Tampered), "{changed:?}");
        }
        assert_eq!(keys.open_v1(&sealed, &aad(3)), Err(CipherError::Tampered), "version 2 is not version 1");
    }

    #[test]
    fn values_sealed_with_version_1_open_only_as_such() {
        let keys = ring(&[("a", 1)]);
        let v1 = seal_v1(&keys, b"token", &aad(3));
        assert_eq!(keys.open(&v1, &aad(3)), Err(CipherError::Tampered));
        assert_eq!(keys.open_v1(&v1, &aad(3)).unwrap(), b"token");
    }

    fn seal_v1(keys: &Keyring, plaintext: &[u8], aad: &Aad) -> SealedSecret {
        keys.seal_v1_for_tests(plaintext, aad).unwrap()
    }

    fn ring(ids: &[(&str, u8)]) -> Keyring {
        Keyring::from_keys(ids.iter().map(|(id, b)| ((*id).to_owned(), [*b; KEY_LEN])).collect()).unwrap()
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let keys = ring(&[("a", 1)]);
        let one = keys.seal(b"ghp_secret", &aad(3)).unwrap();
        let two = keys.seal(b"ghp_secret", &aad(3)).unwrap();
        assert_ne!(one.ciphertext, two.ciphertext, "a fresh nonce per encryption");
        assert!(!one.ciphertext.windows(10).any(|w| w == b"ghp_secret"));
        assert_eq!(keys.open(&one, &aad(3)).unwrap(), b"ghp_secret");
    }

    #[test]
    fn moved_or_tampered_values_do_not_open() {
        let keys = ring(&[("a", 1)]);
        let mut sealed = keys.seal(b"token", &aad(3)).unwrap();
        assert_eq!(keys.open(&sealed, &aad(4)), Err(CipherError::Tampered));
        sealed.ciphertext[14] ^= 1;
        assert_eq!(keys.open(&sealed, &aad(3)), Err(CipherError::Tampered));
        sealed.ciphertext.truncate(5);
        assert_eq!(keys.open(&sealed, &aad(3)), Err(CipherError::Tampered));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_first_key() {
        let old = ring(&[("old", 1)]);
        let sealed = old.seal(b"token", &aad(3)).unwrap();
        let rotated = ring(&[("new", 2), ("old", 1)]);
        assert_eq!(rotated.open(&sealed, &aad(3)).unwrap(), b"token");
        assert_eq!(rotated.seal(b"token", &aad(3)).unwrap().key_id, "new");
        let only_new = ring(&[("new", 2)]);
        assert_eq!(only_new.open(&sealed, &aad(3)), Err(CipherError::UnknownKey("old".into())));
    }

    #[test]
    fn keyed_digests_need_the_key_and_differ_by_purpose() {
        let keys = ring(&[("a", 1)]);
        let one = keys.keyed_digest("idempotency", b"POST /v1/config/repos {\"token\":\"ghp_x\"}");
        assert_eq!(one.len(), 64);
        assert_eq!(one, keys.keyed_digest("idempotency", b"POST /v1/config/repos {\"token\":\"ghp_x\"}"));
        assert_ne!(one, keys.keyed_digest("webhook", b"POST /v1/config/repos {\"token\":\"ghp_x\"}"));
        assert_ne!(one, ring(&[("a", 2)]).keyed_digest("idempotency", b"POST /v1/config/repos {\"token\":\"ghp_x\"}"));
        let plain: String = digest(&SHA256, b"POST /v1/config/repos {\"token\":\"ghp_x\"}")
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(one, plain, "an unkeyed hash would let a database copy test guesses");
    }

    #[test]
    fn parse_the_keyring_format() {
        let k1 = STANDARD.encode([7u8; 32]);
        let k2 = STANDARD.encode([8u8; 32]);
        let keys = Keyring::parse(&format!("2026-11:{k1}, {k2}")).unwrap();
        let ids = keys.key_ids();
        assert_eq!(ids[0], "2026-11");
        assert!(ids[1].starts_with('k') && ids[1].len() == 13);
        assert_eq!(Keyring::parse(&k2).unwrap().key_ids(), vec![ids[1].clone()], "derived ids are stable");
        assert!(matches!(Keyring::parse("not base64!"), Err(KeyringError::NotBase64 { position: 1 })));
        let short = STANDARD.encode([1u8; 16]);
        assert!(matches!(Keyring::parse(&short), Err(KeyringError::WrongLength { len: 16, .. })));
        assert!(matches!(Keyring::parse(&format!("a:{k1},a:{k2}")), Err(KeyringError::DuplicateId(_))));
        assert!(matches!(Keyring::parse(""), Err(KeyringError::Empty)));
        let printed = format!("{keys:?}");
        assert!(!printed.contains(&k1));
    }
}
