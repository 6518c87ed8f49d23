//! Field errors that point into the request body.

use std::fmt;

/// One rule a field broke. `field` is a JSON pointer (RFC 6901) into the
/// request body, such as `/serviceMappings/0/repo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the offending field.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl FieldError {
    /// A field error at `field` (a JSON pointer).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Why a single value was refused, before it is placed at a pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    /// A refusal with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// Places this refusal at a JSON pointer.
    pub fn at(self, field: impl Into<String>) -> FieldError {
        FieldError::new(field, self.0)
    }
}

/// Every rule a request broke, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one error.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Records the error of `result`, if any, at `field`, and hands back its value.
    pub fn check<T>(&mut self, field: impl Into<String>, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.push(invalid.at(field));
                None
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Takes the recorded errors.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded, the errors otherwise.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.is_empty() { Ok(value()) } else { Err(self) }
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

/// True when `c` may appear in a user-visible name: no control characters
/// and no Unicode format characters (zero-width spaces and joiners,
/// direction overrides, the byte-order mark, tag characters), which make
/// two names that look the same differ, or a name read backwards.
pub(crate) fn is_printable(c: char) -> bool {
    !c.is_control() && !is_format(c)
}

/// Unicode's general category Cf (format), as of Unicode 16.
pub(crate) fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}
