//! V8 stack traces: Node.js, Chrome, Deno, Bun; JavaScript and TypeScript.
//!
//! ```text
//! TypeError: Cannot read properties of undefined (reading 'rate')
//!     at Cart.total (/app/src/cart.js:42:13)
//!     at async checkout (file:///app/src/checkout.mjs:10:5)
//!     at new Order (webpack:///./src/order.ts:5:3)
//!     at /app/src/index.js:3:1
//!     at Module._compile (node:internal/modules/cjs/loader:1256:14)
//! ```
//!
//! Printed innermost first. Node's `[cause]: Error: ...` starts a cause.

use crate::correlation::text::{
    MAX_NAME, MAX_PATH, exception_in, find_all, matching_open, owned, split_line_col, word_start,
};
use crate::correlation::trace::{ExceptionInfo, Frame, Parsed, cause};

/// Reads `at fn (location)` or `at location` anywhere in `line`.
pub(crate) fn frame(line: &str) -> Option<Frame> {
    for at in find_all(line, "at ", 4) {
        if !word_start(line, at) {
            continue;
        }
        // Node's inspect output ends the last frame with ` {`; a trace logged
        // inside JSON ends with `"}` or `",`.
        let rest = line.get(at + 3..)?.trim().trim_end_matches(['"', '{', '}', ',', ' ', ']']);
        let (function, location) = match matching_open(rest) {
            Some(open) if open > 0 => (Some(rest.get(..open)?.trim()), rest.get(open + 1..rest.len() - 1)?),
            _ => (None, rest),
        };
        // `eval at <anonymous> (file.js:1:1), <anonymous>:1:1`: the last part.
        let location = location.rsplit(", ").next().unwrap_or(location);
        let Some((file, line_no, column)) = location_of(location) else { continue };
        let function = function
            .map(|f| f.strip_prefix("async ").unwrap_or(f))
            .filter(|f| !f.is_empty() && !f.contains("://"))
            .map(|f| owned(f, MAX_NAME));
        return Some(Frame {
            file: file.map(|f| owned(f, MAX_PATH)),
            function,
            line: line_no,
            column,
            ..Frame::default()
        });
    }
    None
}

type Location<'a> = (Option<&'a str>, Option<u32>, Option<u32>);

/// `file:line:col` (or `file:line`), or a location without a file.
fn location_of(location: &str) -> Option<Location<'_>> {
    match location {
        "native" | "<anonymous>" | "unknown location" => return Some((None, None, None)),
        _ => {}
    }
    if location.starts_with("index ") {
        return Some((None, None, None)); // `Promise.all (index 0)`
    }
    let (file, line_no, column) = split_line_col(location);
    line_no?;
    if file.is_empty() || file.contains(char::is_whitespace) && !file.contains('/') {
        return None;
    }
    let file = (file != "<anonymous>").then_some(file);
    Some((file, line_no, column))
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut stacks: Vec<(Option<ExceptionInfo>, Vec<Frame>)> = vec![(None, Vec::new())];
    for line in lines {
        if let Some(found) = frame(line) {
            if let Some((_, frames)) = stacks.last_mut() {
                frames.push(found);
            }
            continue;
        }
        let trimmed = line.trim();
        let (is_cause, text) = match trimmed.find("[cause]: ") {
            Some(at) => (true, trimmed.get(at + 9..).unwrap_or("")),
            None => (false, trimmed.strip_prefix("Uncaught ").unwrap_or(trimmed)),
        };
        let exception = exception_in(text, true).map(|(kind, message)| ExceptionInfo { kind, message });
        if is_cause {
            stacks.push((exception, Vec::new()));
        } else if let Some(found) = exception
            && let Some(last) = stacks.last_mut().filter(|(_, frames)| frames.is_empty())
        {
            last.0 = Some(found);
        }
    }
    let exception = stacks.iter().rev().find_map(|(e, _)| e.clone());
    let ordered = stacks.into_iter().enumerate().map(|(depth, (_, frames))| (cause(depth), frames)).collect();
    Parsed { frames: crate::correlation::trace::assemble(ordered), exception }
}
