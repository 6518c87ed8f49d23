//! Reading platform answers: JSON bodies, error messages, and the limits that
//! keep a misbehaving server from paging us forever.

use serde::de::DeserializeOwned;
use sigsentry_ports::PlatformError;

/// The most pages one listing follows. A year of a busy repository is a few
/// hundred pages of PRs; a server that links on past this is broken.
pub(crate) const MAX_PAGES: usize = 1000;

/// Longest platform message we pass on in an error.
const MESSAGE_MAX_CHARS: usize = 200;

/// Parses a JSON body.
pub(crate) fn json<T: DeserializeOwned>(platform: &'static str, body: &[u8]) -> Result<T, PlatformError> {
    serde_json::from_slice(body)
        .map_err(|error| PlatformError::Unexpected { platform, detail: format!("unreadable response body: {error}") })
}

/// The platform's own explanation in an error body, shortened: GitHub and
/// GitLab `{"message": ..}` (GitLab also `{"error": ..}`), Bitbucket
/// `{"error": {"message": ..}}`. Empty when there is none.
pub(crate) fn message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return String::new() };
    let text = value
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| value.pointer("/error/message").and_then(serde_json::Value::as_str))
        .or_else(|| value.get("error").and_then(serde_json::Value::as_str))
        .unwrap_or_default();
    text.chars().take(MESSAGE_MAX_CHARS).collect()
}

/// An answer we did not expect, with its status and the platform's message.
pub(crate) fn unexpected_status(platform: &'static str, status: u16, body: &[u8]) -> PlatformError {
    let message = message(body);
    let detail = if message.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {message}") };
    PlatformError::Unexpected { platform, detail }
}

/// A 403 that is not a rate limit: the platform's message, or the bare status.
pub(crate) fn permission_missing(platform: &'static str, message: String) -> PlatformError {
    let detail = if message.is_empty() { "403 Forbidden".to_owned() } else { message };
    PlatformError::PermissionMissing { platform, detail }
}

/// Guards a pagination loop.
pub(crate) fn count_page(platform: &'static str, pages: &mut usize) -> Result<(), PlatformError> {
    *pages += 1;
    if *pages > MAX_PAGES {
        return Err(PlatformError::Unexpected {
            platform,
            detail: format!("more than {MAX_PAGES} pages in one listing; stopped"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_messages_of_each_platform() {
        assert_eq!(message(br#"{"message":"Bad credentials"}"#), "Bad credentials");
        assert_eq!(message(br#"{"type":"error","error":{"message":"Forbidden"}}"#), "Forbidden");
        assert_eq!(message(br#"{"error":"insufficient_scope"}"#), "insufficient_scope");
        assert_eq!(message(b"Retry later"), "");
    }
}
