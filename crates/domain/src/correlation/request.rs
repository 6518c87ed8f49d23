//! The rules of a correlation request: what `POST /v1/code/correlate` (or an
//! embedding team) may ask, checked in one place, every broken rule at once.

use chrono::{DateTime, Utc};

use super::trace::{Frame, MAX_FRAMES, MAX_TRACE_BYTES};
use crate::{FieldError, ServiceName, ValidationErrors};

/// Suspects of each kind when the request does not say.
pub const DEFAULT_SUSPECTS: usize = 5;
/// Most suspects of each kind a request may ask for.
pub const MAX_SUSPECTS: usize = 20;
/// Longest `file`, `function` or `module` of a structured frame, in characters.
pub const MAX_FRAME_TEXT: usize = 1024;

/// A structured frame as sent, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameDraft {
    /// Required.
    pub file: Option<String>,
    /// The function or method.
    pub function: Option<String>,
    /// 1-based.
    pub line: Option<i64>,
    /// 1-based.
    pub column: Option<i64>,
    /// The class or package.
    pub module: Option<String>,
    /// Whether the frame is the application's own code; wins over the classification.
    pub in_app: Option<bool>,
}

/// A correlation request as sent, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelationDraft {
    /// The error as logged.
    pub stacktrace: Option<String>,
    /// Or its frames, innermost first.
    pub frames: Option<Vec<FrameDraft>>,
    /// The service name as logged.
    pub service: Option<String>,
    /// When the error happened, RFC 3339.
    pub occurred_at: Option<String>,
    /// Suspects of each kind, 1 to 20.
    pub limit: Option<i64>,
}

/// What to read the trace from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceInput {
    /// Log text, to parse.
    Text(String),
    /// Structured frames, innermost first.
    Frames(Vec<Frame>),
}

/// A checked correlation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationRequest {
    /// The trace.
    pub input: TraceInput,
    /// The service, when named.
    pub service: Option<ServiceName>,
    /// When the error happened; `None` means now.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Suspects of each kind.
    pub limit: usize,
}

impl CorrelationRequest {
    /// Checks a request: exactly one of `stacktrace` (1 byte to 256 KiB)
    /// and `frames` (1 to 500, each with a `file`), a valid service name,
    /// an RFC 3339 `occurredAt`, a `limit` from 1 to 20.
    ///
    /// ```
    /// use sigsentry_domain::correlation::{CorrelationDraft, CorrelationRequest};
    ///
    /// let both = CorrelationDraft { stacktrace: Some("x".into()), frames: Some(vec![]), ..Default::default() };
    /// let errors = CorrelationRequest::from_draft(both).unwrap_err();
    /// let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    /// assert_eq!(fields, ["/stacktrace", "/frames"]);
    /// ```
    ///
    /// # Errors
    /// Every rule broken, each at its JSON pointer.
    pub fn from_draft(draft: CorrelationDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let input = match (draft.stacktrace, draft.frames) {
            (Some(_), Some(_)) => {
                let message = "send either stacktrace or frames, not both";
                errors.push(FieldError::new("/stacktrace", message));
                errors.push(FieldError::new("/frames", message));
                None
            }
            (None, None) => {
                let message = "send the error's text as stacktrace, or its frames as frames";
                errors.push(FieldError::new("/stacktrace", message));
                errors.push(FieldError::new("/frames", message));
                None
            }
            (Some(text), None) => {
                if text.is_empty() || text.len() > MAX_TRACE_BYTES {
                    errors.push(FieldError::new(
                        "/stacktrace",
                        format!("must be 1 byte to {} KiB of text", MAX_TRACE_BYTES / 1024),
                    ));
                    None
                } else {
                    Some(TraceInput::Text(text))
                }
            }
            (None, Some(frames)) => frames_input(frames, &mut errors),
        };
        let service = draft.service.and_then(|name| errors.check("/service", ServiceName::new(name)));
        let occurred_at = match draft.occurred_at {
            None => Some(None),
            Some(text) => match DateTime::parse_from_rfc3339(&text) {
                Ok(at) => Some(Some(at.with_timezone(&Utc))),
                Err(_) => {
                    errors.push(FieldError::new("/occurredAt", "must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z"));
                    None
                }
            },
        };
        let limit = match draft.limit {
            None => Some(DEFAULT_SUSPECTS),
            Some(n) => match usize::try_from(n) {
                Ok(n) if (1..=MAX_SUSPECTS).contains(&n) => Some(n),
                _ => {
                    errors.push(FieldError::new("/limit", format!("must be an integer from 1 to {MAX_SUSPECTS}")));
                    None
                }
            },
        };
        match (input, occurred_at, limit) {
            (Some(input), Some(occurred_at), Some(limit)) if errors.is_empty() => {
                Ok(Self { input, service, occurred_at, limit })
            }
            _ => Err(errors),
        }
    }
}

fn frames_input(drafts: Vec<FrameDraft>, errors: &mut ValidationErrors) -> Option<TraceInput> {
    if drafts.is_empty() || drafts.len() > MAX_FRAMES {
        errors.push(FieldError::new("/frames", format!("must list 1 to {MAX_FRAMES} frames")));
        return None;
    }
    let start = errors.errors().len();
    let mut frames = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.into_iter().enumerate() {
        let at = |field: &str| format!("/frames/{i}/{field}");
        let text = |value: Option<String>, field: &str, required: bool, errors: &mut ValidationErrors| match value {
            None if required => {
                errors.push(FieldError::new(at(field), "is required"));
                None
            }
            None => None,
            Some(v) if v.is_empty() || v.chars().count() > MAX_FRAME_TEXT || v.chars().any(char::is_control) => {
                errors.push(FieldError::new(
                    at(field),
                    format!("must be 1 to {MAX_FRAME_TEXT} characters without control characters"),
                ));
                None
            }
            Some(v) => Some(v),
        };
        let number = |value: Option<i64>, field: &str, errors: &mut ValidationErrors| match value {
            None => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    errors.push(FieldError::new(at(field), "must be an integer of at least 1"));
                    None
                }
            },
        };
        let file = text(draft.file, "file", true, errors);
        let function = text(draft.function, "function", false, errors);
        let module = text(draft.module, "module", false, errors);
        let line = number(draft.line, "line", errors);
        let column = number(draft.column, "column", errors);
        frames.push(Frame { file, function, line, column, module, in_app: draft.in_app, ..Frame::default() });
    }
    (errors.errors().len() == start).then_some(TraceInput::Frames(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(draft: CorrelationDraft) -> Vec<String> {
        CorrelationRequest::from_draft(draft).unwrap_err().into_vec().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn exactly_one_input() {
        assert_eq!(fields(CorrelationDraft::default()), ["/stacktrace", "/frames"]);
        let request =
            CorrelationRequest::from_draft(CorrelationDraft { stacktrace: Some("boom".into()), ..Default::default() })
                .unwrap();
        assert_eq!(request.input, TraceInput::Text("boom".into()));
        assert_eq!(request.limit, DEFAULT_SUSPECTS);
    }

    #[test]
    fn sizes_and_ranges() {
        let big = "x".repeat(MAX_TRACE_BYTES + 1);
        assert_eq!(fields(CorrelationDraft { stacktrace: Some(big), ..Default::default() }), ["/stacktrace"]);
        assert_eq!(fields(CorrelationDraft { stacktrace: Some(String::new()), ..Default::default() }), ["/stacktrace"]);
        let ok = "x".repeat(MAX_TRACE_BYTES);
        assert!(
            CorrelationRequest::from_draft(CorrelationDraft { stacktrace: Some(ok), ..Default::default() }).is_ok()
        );
        for limit in [0, 21, -1] {
            let draft = CorrelationDraft { stacktrace: Some("x".into()), limit: Some(limit), ..Default::default() };
            assert_eq!(fields(draft), ["/limit"]);
        }
        let draft = CorrelationDraft {
            stacktrace: Some("x".into()),
            occurred_at: Some("yesterday".into()),
            service: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(fields(draft), ["/service", "/occurredAt"]);
    }

    #[test]
    fn frames_are_checked_each_at_its_pointer() {
        assert_eq!(fields(CorrelationDraft { frames: Some(vec![]), ..Default::default() }), ["/frames"]);
        let frames = vec![
            FrameDraft { file: Some("a.py".into()), line: Some(3), ..Default::default() },
            FrameDraft { file: None, line: Some(0), column: Some(-2), ..Default::default() },
            FrameDraft { file: Some("b\u{0}.py".into()), function: Some("x".repeat(1025)), ..Default::default() },
        ];
        assert_eq!(
            fields(CorrelationDraft { frames: Some(frames), ..Default::default() }),
            ["/frames/1/file", "/frames/1/line", "/frames/1/column", "/frames/2/file", "/frames/2/function"]
        );
        let too_many = vec![FrameDraft { file: Some("a.py".into()), ..Default::default() }; MAX_FRAMES + 1];
        assert_eq!(fields(CorrelationDraft { frames: Some(too_many), ..Default::default() }), ["/frames"]);
    }
}
