//! Minting and hashing API keys.

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use sigsentry_domain::KEY_PREFIX;
use sigsentry_ports::CipherError;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 40 base62 characters: about 238 bits of randomness.
const RANDOM_CHARS: usize = 40;

/// A new key: `ss_secret_` and 40 random base62 characters.
///
/// # Errors
/// [`CipherError::Failed`] if the system random source fails.
pub fn generate_api_key() -> Result<String, CipherError> {
    let rng = SystemRandom::new();
    let mut out = String::from(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while out.len() < KEY_PREFIX.len() + RANDOM_CHARS {
        rng.fill(&mut buf).map_err(|_| CipherError::Failed)?;
        // Rejection sampling keeps every character equally likely.
        for b in buf.iter().copied().filter(|b| *b < 248) {
            if out.len() == KEY_PREFIX.len() + RANDOM_CHARS {
                break;
            }
            out.push(char::from(BASE62[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

/// SHA-256 of the key text, lowercase hex: what the store keeps. Keys carry
/// enough randomness that a fast hash is safe, and lookups stay one index probe.
pub fn hash_api_key(key: &str) -> String {
    digest(&SHA256, key.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use sigsentry_domain::ApiKeySecret;

    use super::*;

    #[test]
    fn generated_keys_have_the_documented_form_and_differ() {
        let a = generate_api_key().unwrap();
        let b = generate_api_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), KEY_PREFIX.len() + RANDOM_CHARS);
        assert!(ApiKeySecret::parse(&a).is_ok());
        assert_eq!(hash_api_key(&a).len(), 64);
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
    }
}
