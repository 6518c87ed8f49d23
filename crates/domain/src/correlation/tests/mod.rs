//! Behaviour tests of the correlation module, one file per concern.

mod diffs;
mod mapping;
mod parsing;
mod ranking;

use super::{Frame, ParsedTrace};

/// `(file, function, line)` of each frame, for compact assertions.
pub(super) fn summary(trace: &ParsedTrace) -> Vec<(Option<&str>, Option<&str>, Option<u32>)> {
    trace.frames.iter().map(|f: &Frame| (f.file.as_deref(), f.function.as_deref(), f.line)).collect()
}

/// Puts `prefix` in front of every line of `text`.
pub(super) fn prefixed(prefix: &str, text: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}
