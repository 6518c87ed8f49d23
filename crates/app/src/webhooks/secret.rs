//! Per-connection webhook secrets: made here, shown once, stored sealed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sigsentry_ports::CipherError;

/// What every secret starts with, so secret scanners and people recognise one.
const PREFIX: &str = "ss_whsec_";

/// A webhook secret in clear: the platform signs deliveries with it (GitHub,
/// Bitbucket) or sends it back (GitLab). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// 32 bytes from the system's random source, base64url: `ss_whsec_` and 43 characters.
    ///
    /// # Errors
    /// [`CipherError::Failed`] when the random source fails.
    pub fn generate() -> Result<Self, CipherError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| CipherError::Failed)?;
        Ok(Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// A secret an operator configured (the GitHub App's webhook secret).
    pub fn from_config(text: String) -> Self {
        Self(text)
    }

    /// The secret, for the one answer that shows it and for verification.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_never_printed() {
        let (a, b) = (WebhookSecret::generate().unwrap(), WebhookSecret::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), PREFIX.len() + 43);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        assert!(!format!("{a:?}").contains(&a.expose()[PREFIX.len()..]));
    }
}
