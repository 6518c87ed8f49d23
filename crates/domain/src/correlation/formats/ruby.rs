//! Ruby backtraces.
//!
//! ```text
//! /app/lib/cart.rb:42:in `total': undefined method `+' for nil (NoMethodError)
//!         from /app/lib/checkout.rb:10:in `block in run'
//!         from app.rb:3:in `<main>'
//! ```
//!
//! Ruby 3.4 quotes with `'` only and names the class: `in 'Cart#total'`.
//! Printed innermost first, except on a terminal under Ruby 2.5 to 2.7,
//! which printed `Traceback (most recent call last):` and numbered lines
//! outermost first, the exception on the last line.

use crate::correlation::text::{MAX_MESSAGE, MAX_NAME, MAX_PATH, find_all, number, owned};
use crate::correlation::trace::{ExceptionInfo, Frame, Parsed};

/// A frame and what follows the function's closing quote on the line.
pub(crate) fn frame(line: &str) -> Option<(Frame, &str)> {
    for at in find_all(line, ":in ", 4) {
        let before = line.get(..at)?;
        let Some((path_part, digits)) = before.rsplit_once(':') else { continue };
        let Some(line_no) = number(digits) else { continue };
        let start = path_part.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let file = path_part.get(start..)?;
        if file.is_empty() {
            continue;
        }
        let after = line.get(at + 4..)?;
        let (function, rest) = match after.strip_prefix(['`', '\'']) {
            Some(quoted) => match quoted.find('\'') {
                Some(end) => (quoted.get(..end)?, quoted.get(end + 1..)?),
                None => (quoted, ""),
            },
            None => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after.get(..end)?, after.get(end..)?)
            }
        };
        let frame = Frame {
            file: Some(owned(file, MAX_PATH)),
            function: (!function.is_empty()).then(|| owned(function, MAX_NAME)),
            line: Some(line_no),
            ..Frame::default()
        };
        return Some((frame, rest));
    }
    None
}

/// `: message (NameError)` after the first frame's function.
fn exception_of(rest: &str) -> Option<ExceptionInfo> {
    let text = rest.strip_prefix(": ")?.trim_end();
    let body = text.strip_suffix(')')?;
    let (message, kind) = body.rsplit_once(" (").or_else(|| body.strip_prefix('(').map(|k| ("", k)))?;
    let kind_ok = !kind.is_empty()
        && kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_'));
    kind_ok.then(|| ExceptionInfo { kind: owned(kind, MAX_NAME), message: owned(message, MAX_MESSAGE) })
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut frames = Vec::new();
    let mut exceptions = Vec::new();
    let mut reversed = false;
    for line in lines {
        if frames.is_empty() && line.contains("Traceback (most recent call last)") {
            reversed = true;
            continue;
        }
        if let Some((found, rest)) = frame(line) {
            if let Some(exception) = exception_of(rest) {
                exceptions.push(exception);
            }
            frames.push(found);
        }
    }
    let exception = if reversed {
        frames.reverse();
        exceptions.pop()
    } else {
        exceptions.into_iter().next()
    };
    Parsed { frames, exception }
}
