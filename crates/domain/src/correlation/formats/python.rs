//! CPython tracebacks, chained exceptions included.
//!
//! ```text
//! Traceback (most recent call last):
//!   File "/app/web/views.py", line 12, in checkout
//!     return cart.total()
//!   File "/app/checkout/cart.py", line 42, in total
//!     rate = rates[self.currency]
//! KeyError: 'currency'
//! ```
//!
//! Python prints the outermost frame first and, in a chain, the exception
//! that started it first: reversing the whole list gives the reported
//! exception's frames innermost first, then its context or cause, and so on
//! to the first exception, which is the root cause.

use crate::correlation::text::{MAX_NAME, MAX_PATH, exception_in, find_all, number, owned};
use crate::correlation::trace::{ExceptionInfo, Frame, Parsed, cause, related};

/// Reads `File "path", line 42, in func` anywhere in `line`.
pub(crate) fn frame(line: &str) -> Option<Frame> {
    for at in find_all(line, "File \"", 4) {
        let rest = line.get(at + 6..)?;
        let Some(close) = rest.find("\", line ") else { continue };
        let file = rest.get(..close)?;
        let after = rest.get(close + 8..)?;
        let digits_end = after.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(after.len());
        let Some(line_no) = number(after.get(..digits_end)?) else { continue };
        let function = after.get(digits_end..)?.strip_prefix(", in ").map(|f| owned(f, MAX_NAME));
        return Some(Frame { file: Some(owned(file, MAX_PATH)), function, line: Some(line_no), ..Frame::default() });
    }
    None
}

const CHAIN_MARKERS: [&str; 2] = [
    "During handling of the above exception, another exception occurred",
    "The above exception was the direct cause of the following exception",
];

#[derive(Default)]
struct Block {
    /// Outermost first, as printed.
    frames: Vec<Frame>,
    exception: Option<ExceptionInfo>,
    /// Printed after a chain marker: part of the previous block's chain.
    chained: bool,
}

impl Block {
    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.exception.is_none()
    }
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut blocks: Vec<Block> = Vec::new();
    let mut current = Block::default();
    let mut after_frame = false;
    for line in lines {
        // Exception groups (3.11) draw a `|` margin in front of their lines.
        let line = match line.trim_start().strip_prefix('|') {
            Some(body) => body.strip_prefix(' ').unwrap_or(body),
            None => line,
        };
        if let Some(found) = frame(line) {
            if current.exception.is_some() {
                blocks.push(std::mem::take(&mut current));
            }
            current.frames.push(found);
            after_frame = true;
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if CHAIN_MARKERS.iter().any(|m| trimmed.contains(m)) {
            blocks.push(std::mem::take(&mut current));
            current.chained = true;
            after_frame = false;
            continue;
        }
        if trimmed.contains("Traceback (most recent call last)") {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
            after_frame = false;
            continue;
        }
        // The source line printed under a frame, and 3.11's carets.
        let code = after_frame && line.starts_with(char::is_whitespace);
        after_frame = false;
        if code || trimmed.bytes().all(|b| matches!(b, b'^' | b'~' | b' ' | b'-')) || trimmed.starts_with("[Previous") {
            continue;
        }
        if !current.frames.is_empty()
            && current.exception.is_none()
            && let Some((kind, message)) = exception_in(trimmed, true)
        {
            current.exception = Some(ExceptionInfo { kind, message });
        }
    }
    blocks.push(current);
    blocks.retain(|b| !b.frames.is_empty() || b.exception.is_some());
    assemble(blocks)
}

/// Splits the blocks into chains (blocks joined by chain markers), orders
/// each chain's frames innermost first, reported exception first.
fn assemble(blocks: Vec<Block>) -> Parsed {
    let mut chains: Vec<Vec<Block>> = Vec::new();
    for block in blocks {
        match chains.last_mut() {
            Some(chain) if block.chained => chain.push(block),
            _ => chains.push(vec![block]),
        }
    }
    let mut stacks = Vec::new();
    let mut exception = None;
    for (n, chain) in chains.into_iter().enumerate() {
        if n == 0 {
            // The first printed block that shows its exception started the chain.
            exception = chain.iter().find_map(|b| b.exception.clone());
        }
        for (depth, block) in chain.into_iter().rev().enumerate() {
            let group = if n == 0 { cause(depth) } else { related(n) };
            let mut frames = block.frames;
            frames.reverse();
            stacks.push((group, frames));
        }
    }
    Parsed { frames: crate::correlation::trace::assemble(stacks), exception }
}
