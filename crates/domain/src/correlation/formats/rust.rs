//! Rust panics, with or without a `RUST_BACKTRACE=1` backtrace.
//!
//! ```text
//! thread 'main' panicked at src/cart.rs:42:18:
//! called `Option::unwrap()` on a `None` value
//! stack backtrace:
//!    0: rust_begin_unwind
//!              at /rustc/90b35a.../library/std/src/panicking.rs:645:5
//!    3: myapp::cart::total
//!              at ./src/cart.rs:42:18
//! ```
//!
//! Before Rust 1.73 the message came first: `panicked at 'msg', src/x.rs:1:5`.
//! Without a backtrace the panic's location is the only frame.

use crate::correlation::text::{MAX_MESSAGE, MAX_NAME, MAX_PATH, leading_digits, owned, split_line_col};
use crate::correlation::trace::{ExceptionInfo, Frame, Parsed};

/// `at ./src/x.rs:10:5` (after trimming): the file, line and column.
pub(crate) fn location_line(line: &str) -> Option<(&str, Option<u32>, Option<u32>)> {
    let rest = line.trim().strip_prefix("at ")?;
    let (file, line_no, column) = split_line_col(rest);
    (file.ends_with(".rs") && line_no.is_some()).then_some((file, line_no, column))
}

/// `  12: myapp::cart::total` or, with `RUST_BACKTRACE=full`,
/// `  12:     0x55f1c3a0 - myapp::cart::total::h3b7c0d2e1f4a5b6c`.
fn frame_line(line: &str) -> Option<&str> {
    let (digits, rest) = leading_digits(line.trim_start());
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    let mut symbol = rest.strip_prefix(':')?.trim_start();
    if symbol.starts_with("0x") {
        symbol = symbol.split_once(" - ").map_or("", |(_, s)| s);
    }
    (!symbol.is_empty()).then_some(strip_hash(symbol.trim()))
}

/// `name::h0123456789abcdef` without its hash.
fn strip_hash(symbol: &str) -> &str {
    match symbol.rsplit_once("::h") {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => symbol,
    }
}

/// The panic's message and location from a `panicked at` line (and the
/// next line, which holds the message since Rust 1.73).
fn panic_of(line: &str, next: Option<&str>) -> Option<(String, Option<Frame>)> {
    let at = line.find("panicked at ")?;
    let rest = line.get(at + 12..)?.trim();
    let (message, location) = if let Some(quoted) = rest.strip_prefix('\'') {
        // Old form: 'message', src/main.rs:10:5
        let (message, location) = quoted.rsplit_once("', ")?;
        (message.to_owned(), location)
    } else {
        let location = rest.strip_suffix(':').unwrap_or(rest);
        (next.map(str::trim).unwrap_or("").to_owned(), location)
    };
    let (file, line_no, column) = split_line_col(location);
    let frame = line_no.map(|_| Frame { file: Some(owned(file, MAX_PATH)), line: line_no, column, ..Frame::default() });
    Some((owned(&message, MAX_MESSAGE), frame))
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut exception = None;
    let mut panic_frame = None;
    let mut frames: Vec<Frame> = Vec::new();
    let mut in_backtrace = false;
    for (i, line) in lines.iter().enumerate() {
        let lower_marker = line.contains("tack backtrace:");
        if lower_marker {
            in_backtrace = true;
            continue;
        }
        if line.trim() == "Caused by:" {
            in_backtrace = false; // anyhow's numbered causes are not frames
            continue;
        }
        if exception.is_none()
            && let Some((message, frame)) = panic_of(line, lines.get(i + 1).copied())
        {
            exception = Some(ExceptionInfo { kind: "panic".to_owned(), message });
            panic_frame = frame;
            continue;
        }
        if let Some((file, line_no, column)) = location_line(line) {
            if let Some(last) = frames.last_mut().filter(|f| f.file.is_none()) {
                last.file = Some(owned(file, MAX_PATH));
                last.line = line_no;
                last.column = column;
            }
            continue;
        }
        if let Some(symbol) = frame_line(line)
            && (in_backtrace || symbol.contains("::"))
        {
            frames.push(Frame { function: Some(owned(symbol, MAX_NAME)), ..Frame::default() });
        }
    }
    if frames.is_empty() {
        frames.extend(panic_frame);
    }
    Parsed { frames, exception }
}
