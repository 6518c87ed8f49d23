//! .NET exception traces (C#, F#, VB).
//!
//! ```text
//! System.InvalidOperationException: Checkout failed
//!  ---> System.NullReferenceException: Object reference not set to an instance of an object.
//!    at Acme.Cart.Price.Parse(String s) in /src/Acme.Cart/Price.cs:line 17
//!    --- End of inner exception stack trace ---
//!    at Acme.Cart.Cart.Total() in C:\src\Acme.Cart\Cart.cs:line 42
//!    at Acme.Api.CheckoutController.Post(Order order)
//! ```
//!
//! Headers name the exceptions outermost first (`--->` for each inner one),
//! but the stacks are printed innermost exception first, each closed by
//! `--- End of inner exception stack trace ---`: the last stack is the
//! reported exception's, the first the root cause's.

use crate::correlation::text::{
    MAX_NAME, MAX_PATH, exception_in, find_all, leading_digits, matching_close, number, owned, word_start,
};
use crate::correlation::trace::{ExceptionInfo, Frame, Parsed, cause};

/// Reads `at Ns.Class.Method(Args)` with an optional ` in path:line N`
/// anywhere in `line`.
pub(crate) fn frame(line: &str) -> Option<Frame> {
    for at in find_all(line, "at ", 4) {
        if !word_start(line, at) {
            continue;
        }
        let rest = line.get(at + 3..)?;
        let Some(open) = rest.find('(') else { continue };
        let name = rest.get(..open)?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let Some(close) = matching_close(rest, open) else { continue };
        let args = rest.get(open + 1..close)?;
        let tail = rest.get(close + 1..)?.trim();
        let (file, line_no) = match tail.strip_prefix("in ") {
            Some(location) => match location_of(location) {
                Some((file, n)) => (Some(file), Some(n)),
                None => continue,
            },
            // Without a file, tell it from a JVM or V8 frame by its
            // arguments: empty, or typed (`String s`).
            None if tail.is_empty() && (args.is_empty() || args.contains(' ')) && !args.contains(':') => (None, None),
            None => continue,
        };
        let (module, function) = match name.rsplit_once('.') {
            Some((module, function)) => (Some(owned(module, MAX_NAME)), function),
            None => (None, name),
        };
        return Some(Frame {
            file: file.map(|f| owned(f, MAX_PATH)),
            function: Some(owned(function, MAX_NAME)),
            line: line_no,
            module,
            ..Frame::default()
        });
    }
    None
}

/// `/src/Cart.cs:line 42` (or a translated `:Zeile 42`, `:ligne 42`).
fn location_of(location: &str) -> Option<(&str, u32)> {
    let (file, word_and_number) = location.rsplit_once(':')?;
    let (word, digits) = word_and_number.rsplit_once(' ')?;
    if word.is_empty() || !word.chars().all(char::is_alphabetic) {
        return None;
    }
    let (digits, _) = leading_digits(digits);
    Some((file, number(digits)?))
}

fn header_parts(line: &str) -> Vec<ExceptionInfo> {
    let line = line.trim();
    let line = ["Unhandled exception. ", "Unhandled Exception: "]
        .iter()
        .find_map(|p| line.find(p).and_then(|at| line.get(at + p.len()..)))
        .unwrap_or(line);
    line.split("--->")
        .filter_map(|part| exception_in(part, true))
        .map(|(kind, message)| ExceptionInfo { kind, message })
        .collect()
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut chain: Vec<ExceptionInfo> = Vec::new();
    let mut stacks: Vec<Vec<Frame>> = vec![Vec::new()];
    let mut started = false;
    for line in lines {
        if let Some(found) = frame(line) {
            started = true;
            if let Some(stack) = stacks.last_mut() {
                stack.push(found);
            }
            continue;
        }
        if line.contains("--- End of inner exception stack trace ---") {
            stacks.push(Vec::new());
            continue;
        }
        if line.contains("--- End of stack trace from previous location") {
            continue;
        }
        let inner = line.trim_start().starts_with("--->");
        if !started || inner {
            if !started && !inner && !line.contains("--->") {
                // A new header line before any frame replaces earlier text.
                let parts = header_parts(line);
                if !parts.is_empty() {
                    chain = parts;
                }
            } else {
                chain.extend(header_parts(line));
            }
        }
    }
    stacks.retain(|s| !s.is_empty());
    let count = stacks.len();
    let ordered = stacks.into_iter().enumerate().map(|(i, frames)| (cause(count - 1 - i), frames)).collect();
    let exception = chain.pop();
    Parsed { frames: crate::correlation::trace::assemble(ordered), exception }
}
