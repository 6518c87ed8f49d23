//! Idempotency keys for safe retries of POST.

use crate::Invalid;

/// A client-chosen key: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest accepted key.
    pub const MAX: usize = 255;

    /// Checks `value`.
    ///
    /// # Errors
    /// [`Invalid`] when empty, too long or not printable ASCII.
    pub fn new(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() || value.len() > Self::MAX {
            return Err(Invalid::new("must be 1 to 255 characters"));
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Invalid::new("must be printable ASCII"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(IdempotencyKey::new("create-checkout-2026-11-23").is_ok());
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::new("naïve").is_err());
        assert!(IdempotencyKey::new("tab\tkey").is_err());
    }
}
