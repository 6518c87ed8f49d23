//! Reading a JSON request body: media type, size, syntax, types, then rules.

use actix_web::HttpRequest;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use std::time::Duration;

use actix_web::web;

use crate::HttpSettings;
use crate::error::{ApiError, Detail, body_timeout, hook_payload_too_large, payload_too_large, unsupported_media_type};
use crate::strict_json::{self, StrictJsonError};

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Reads the body as JSON: 415 for another media type, 413 past 1 MiB, 400
/// for malformed JSON or a body that is not an object.
///
/// # Errors
/// [`ApiError`] in the envelope.
pub async fn read_json_object(req: &HttpRequest, mut payload: Payload) -> Result<Value, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let declared_len =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if content_type.is_some_and(|ct| !is_json(ct)) {
        return Err(unsupported_media_type());
    }
    if declared_len.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(payload_too_large());
    }
    // A client that trickles its body must not hold a connection and a
    // worker for minutes: the whole body has a deadline.
    let deadline = req.app_data::<web::Data<HttpSettings>>().map_or(Duration::from_secs(10), |s| s.body_timeout);
    let read = async {
        let mut bytes = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ApiError::invalid_field("/", "the request body could not be read"))?;
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(payload_too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    let bytes = tokio::time::timeout(deadline, read).await.map_err(|_| body_timeout(deadline.as_secs()))??;
    if content_type.is_none() && !bytes.is_empty() {
        return Err(unsupported_media_type());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_field("/", "a JSON object body is required"));
    }
    let value = strict_json::parse(&bytes).map_err(|error| match error {
        StrictJsonError::Syntax { line, column } => {
            ApiError::invalid_field("/", format!("the body is not valid JSON (line {line}, column {column})"))
        }
        StrictJsonError::DuplicateKey(pointer) => {
            ApiError::invalid_field(pointer, "appears twice in one object; send each field once")
        }
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid_field("/", "the body must be a JSON object"));
    }
    Ok(value)
}

/// Reads a webhook delivery's body as it was sent (its signature covers
/// the exact bytes): 413 past `limit`, 408 past the body deadline. Nothing
/// here looks inside it.
///
/// # Errors
/// [`ApiError`] in the envelope.
pub async fn read_raw(req: &HttpRequest, mut payload: Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared_len =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|len| len > limit) {
        return Err(hook_payload_too_large());
    }
    let deadline = req.app_data::<web::Data<HttpSettings>>().map_or(Duration::from_secs(10), |s| s.body_timeout);
    let read = async {
        let mut bytes = Vec::with_capacity(declared_len.unwrap_or(0).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ApiError::invalid_field("/", "the request body could not be read"))?;
            if bytes.len() + chunk.len() > limit {
                return Err(hook_payload_too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| body_timeout(deadline.as_secs()))?
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Every `null` in the body, except at the pointers where `null` means
/// something: a left-out field and a `null` one must not differ silently.
pub fn refuse_nulls(value: &Value, allowed: &[&str]) -> Vec<Detail> {
    let mut found = Vec::new();
    walk_nulls(value, String::new(), allowed, &mut found);
    found
}

fn walk_nulls(value: &Value, at: String, allowed: &[&str], found: &mut Vec<Detail>) {
    match value {
        Value::Null if !allowed.contains(&at.as_str()) => {
            found.push(Detail::at(at, "must not be null; leave the field out instead"));
        }
        Value::Object(map) => {
            for (key, child) in map {
                walk_nulls(child, format!("{at}/{}", escape_pointer(key)), allowed, found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk_nulls(child, format!("{at}/{i}"), allowed, found);
            }
        }
        _ => {}
    }
}

/// RFC 6901 escaping of one pointer segment.
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Deserializes a DTO from the body, reporting the first type error or
/// unknown field at its JSON pointer. Values are never echoed back: a
/// misplaced secret must not come back in an error.
///
/// # Errors
/// A 400 naming the field.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let pointer = to_pointer(error.path());
        let message = error.inner().to_string();
        if let Some(field) = unknown_field_name(&message) {
            let known = expected_fields(&message);
            let hint = suggestion(&field, &known).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
            // The path may or may not already end at the unknown key.
            let tail = format!("/{}", escape_pointer(&field));
            let at = if pointer.ends_with(&tail) { pointer } else { format!("{pointer}{tail}") };
            return ApiError::invalid_field(at, format!("is not a known field{hint}"));
        }
        let at = if pointer.is_empty() { "/".to_owned() } else { pointer };
        ApiError::invalid_field(at, describe_type_error(&message))
    })
}

fn to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape_pointer(key))),
            Segment::Enum { variant } => out.push_str(&format!("/{}", escape_pointer(variant))),
            Segment::Unknown => {}
        }
    }
    out
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

/// The fields serde lists after an unknown one ("expected one of `a`, `b`"
/// or "expected `a`"): the known fields at that level, from the type itself.
fn expected_fields(message: &str) -> Vec<&str> {
    let Some((_, list)) = message.split_once("expected ") else { return Vec::new() };
    list.split('`').skip(1).step_by(2).collect()
}

/// `lookback_days` → `lookbackDays`: compare with case and separators ignored.
fn suggestion<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let folded = fold(field);
    known.iter().copied().find(|k| fold(k) == folded)
}

/// serde says "invalid type: string \"x\", expected i64"; we say what is
/// expected and drop the value.
fn describe_type_error(message: &str) -> String {
    if let Some((_, expected)) = message.split_once(", expected ") {
        let expected = expected.split(" at line").next().unwrap_or(expected);
        let expected = match expected {
            "i64" | "u32" | "u16" | "i32" => "an integer",
            "a boolean" | "bool" => "a boolean (true or false)",
            "a string" => "a string",
            "a sequence" => "an array",
            other => other,
        };
        return format!("must be {expected}");
    }
    if message.starts_with("invalid value") || message.starts_with("invalid type") {
        return "has the wrong type".to_owned();
    }
    "is malformed".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escaping() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn known_fields_come_from_serde() {
        let message = "unknown field `lookback_days`, expected one of `platform`, `lookbackDays`";
        assert_eq!(expected_fields(message), ["platform", "lookbackDays"]);
        assert_eq!(expected_fields("unknown field `x`, expected `token`"), ["token"]);
        assert!(expected_fields("unknown field `x`, there are no fields").is_empty());
    }

    #[test]
    fn suggestions_fold_case_and_separators() {
        assert_eq!(suggestion("lookback_days", &["lookbackDays", "isActive"]), Some("lookbackDays"));
        assert_eq!(suggestion("nope", &["lookbackDays"]), None);
    }

    #[test]
    fn type_errors_never_echo_values() {
        let text = describe_type_error("invalid type: string \"ghp_secret\", expected i64");
        assert_eq!(text, "must be an integer");
    }

    #[test]
    fn nulls_are_found_with_pointers() {
        let body = serde_json::json!({"a": null, "credentials": {"baseUrl": null}, "list": [1, null]});
        let found: Vec<String> =
            refuse_nulls(&body, &["/credentials/baseUrl"]).into_iter().filter_map(|d| d.field).collect();
        assert_eq!(found, ["/a", "/list/1"]);
    }
}
