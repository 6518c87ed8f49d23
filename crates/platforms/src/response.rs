//! Reading platform answers: JSON bodies, error messages, and the limits that
//! keep a misbehaving server from paging us forever.

use serde::de::DeserializeOwned;
use sigsentry_ports::PlatformError;

/// The most pages one listing follows. A year of a busy repository is a few
/// hundred pages of PRs; a server that links on past this is broken.
pub(crate) const MAX_PAGES: usize = 1000;

/// Longest platform message we pass on in an error: a longer one is left
/// out whole (a cut one could still carry what its author wanted shown).
const MESSAGE_MAX_CHARS: usize = 200;

/// Parses a JSON body. A body that does not parse is never quoted (serde's
/// own message would quote the offending value, of any length): the error
/// says where, in our words.
pub(crate) fn json<T: DeserializeOwned>(platform: &'static str, body: &[u8]) -> Result<T, PlatformError> {
    serde_json::from_slice(body).map_err(|error| {
        use serde_json::error::Category;
        let what = match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => "not JSON",
            Category::Data => "JSON of another shape than its API documents",
        };
        let (line, column) = (error.line(), error.column());
        PlatformError::Unexpected { platform, detail: format!("its answer was {what} (line {line}, column {column})") }
    })
}

/// Platform text fit to be shown to users and written to logs: at most
/// [`MESSAGE_MAX_CHARS`] characters, none of them a control or an invisible
/// formatting character (which could forge a log line or reverse what is
/// read). `None` otherwise: such text is left out, not cleaned up.
pub(crate) fn quotable(text: &str) -> Option<&str> {
    let text = text.trim();
    let fits = !text.is_empty()
        && text.chars().count() <= MESSAGE_MAX_CHARS
        && text.chars().all(|c| !c.is_control() && !is_format_character(c));
    fits.then_some(text)
}

/// Unicode's format characters (category Cf) and the other invisible ones
/// that matter in a message: zero-width and direction marks, embeddings,
/// isolates, the BOM, tag characters.
fn is_format_character(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// The platform's own explanation in an error body, when it is
/// [`quotable`]: GitHub and GitLab `{"message": ..}` (GitLab also
/// `{"error": ..}`), Bitbucket `{"error": {"message": ..}}`. Empty when
/// there is none, or it is too long or not printable.
pub(crate) fn message(body: &[u8]) -> String {
    quotable(&found_message(body)).unwrap_or_default().to_owned()
}

/// The platform's explanation whatever its length or characters, lower
/// case: only for telling one refusal from another ("rate limit"), never
/// to be shown or logged.
pub(crate) fn unshown_message(body: &[u8]) -> String {
    found_message(body).to_lowercase()
}

fn found_message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return String::new() };
    let text = value
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| value.pointer("/error/message").and_then(serde_json::Value::as_str))
        .or_else(|| value.get("error").and_then(serde_json::Value::as_str))
        .unwrap_or_default();
    text.to_owned()
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
        assert_eq!(message(b"Retry later"), "", "a body that is not JSON is never quoted");
    }

    #[test]
    fn long_or_unprintable_messages_are_left_out() {
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(201));
        assert_eq!(message(long.as_bytes()), "");
        let just = format!(r#"{{"message":"{}"}}"#, "x".repeat(200));
        assert_eq!(message(just.as_bytes()).len(), 200);
        assert_eq!(message(br#"{"message":"ok\nlevel=ERROR forged"}"#), "", "a newline could forge a log line");
        assert_eq!(message(br#"{"message":"evil\u202etxt.exe"}"#), "", "direction overrides");
        assert_eq!(message("{\"message\":\"zero\u{200b}width\"}".as_bytes()), "");
    }

    #[test]
    fn unreadable_bodies_are_described_never_quoted() {
        let body = format!(r#"{{"number": "{}"}}"#, "A".repeat(20_000));
        #[derive(Debug, serde::Deserialize)]
        struct Pull {
            #[allow(dead_code)]
            number: u64,
        }
        let error = json::<Pull>("GitHub", body.as_bytes()).unwrap_err().to_string();
        assert!(!error.contains("AAAA"), "{error}");
        assert!(error.len() < 200, "{error}");
        assert!(error.contains("another shape"), "{error}");
        let error = json::<Pull>("GitHub", b"<html>teapot</html>").unwrap_err().to_string();
        assert!(!error.contains("teapot") && error.contains("not JSON"), "{error}");
    }
}
