//! JVM traces: Java, Kotlin, Scala, Groovy.
//!
//! ```text
//! Exception in thread "main" java.lang.IllegalStateException: checkout failed
//!     at com.acme.cart.Cart.total(Cart.java:42)
//!     at app//com.acme.Main.main(Main.kt:5)
//! Caused by: java.lang.NullPointerException: price is null
//!     at com.acme.cart.Price.parse(Price.java:17)
//!     ... 2 more
//! ```
//!
//! Printed innermost first, the reported exception first, then each
//! `Caused by:` (the last is the root cause). `Suppressed:` stacks are kept
//! as related stacks.

use crate::correlation::text::{MAX_NAME, MAX_PATH, exception_in, find_all, number, owned, word_start};
use crate::correlation::trace::{ExceptionInfo, Frame, FrameGroup, Parsed, cause, related};

/// Source extensions of JVM languages.
const EXTENSIONS: [&str; 6] = [".java", ".kt", ".kts", ".scala", ".groovy", ".clj"];

/// Reads `at [module/]pkg.Class.method(Source)` anywhere in `line`, where
/// Source is `File.java:42`, `File.java`, `Unknown Source` or `Native Method`.
pub(crate) fn frame(line: &str) -> Option<Frame> {
    for at in find_all(line, "at ", 4) {
        if !word_start(line, at) {
            continue;
        }
        let rest = line.get(at + 3..)?.trim_start();
        let Some(open) = rest.find('(') else { continue };
        let name = rest.get(..open)?;
        if name.is_empty() || name.contains(char::is_whitespace) || !name.contains('.') {
            continue;
        }
        let inside = rest.get(open + 1..)?;
        let Some(close) = inside.find(')') else { continue };
        let source = inside.get(..close)?;
        let Some((file, line_no)) = source_of(source) else { continue };
        // `app//com.acme.Main.main`, `java.base@17/java.lang.Thread.run`.
        let qualified = name.rsplit('/').next().unwrap_or(name);
        let (class, method) = qualified.rsplit_once('.')?;
        return Some(Frame {
            file: file.map(|f| owned(f, MAX_PATH)),
            function: Some(owned(method, MAX_NAME)),
            line: line_no,
            module: Some(owned(class, MAX_NAME)),
            ..Frame::default()
        });
    }
    None
}

/// The file and line of a JVM frame's parenthesis, `None` when it is not one.
fn source_of(source: &str) -> Option<(Option<&str>, Option<u32>)> {
    match source {
        "Native Method" | "Unknown Source" | "<generated>" | "Native method" => return Some((None, None)),
        _ => {}
    }
    if let Some(n) = source.strip_prefix("Unknown Source:") {
        return Some((None, number(n)));
    }
    let (file, line_no) = match source.rsplit_once(':') {
        Some((file, n)) => (file, Some(number(n)?)),
        None => (source, None),
    };
    let known = EXTENSIONS.iter().any(|ext| file.ends_with(ext));
    (known && !file.contains(char::is_whitespace)).then_some((Some(file), line_no))
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Reported,
    Cause,
    Suppressed,
    Other,
}

struct Stack {
    kind: Kind,
    exception: Option<ExceptionInfo>,
    frames: Vec<Frame>,
}

fn header(text: &str) -> Option<ExceptionInfo> {
    let text = match text.find("Exception in thread \"") {
        Some(at) => {
            let after = text.get(at + 21..)?;
            after.get(after.find("\" ")? + 2..)?
        }
        None => text,
    };
    let (kind, message) = exception_in(text, true)?;
    Some(ExceptionInfo { kind, message })
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut stacks: Vec<Stack> = Vec::new();
    let mut current = Stack { kind: Kind::Reported, exception: None, frames: Vec::new() };
    let mut saw_reported = false;
    for line in lines {
        if let Some(found) = frame(line) {
            current.frames.push(found);
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || (trimmed.starts_with("...") && trimmed.ends_with(" more")) {
            continue;
        }
        let chained = [("Caused by: ", Kind::Cause), ("Suppressed: ", Kind::Suppressed)]
            .into_iter()
            .find_map(|(marker, kind)| trimmed.find(marker).map(|at| (at + marker.len(), kind)));
        if let Some((start, kind)) = chained {
            let rest = trimmed.get(start..).unwrap_or("");
            let next = Stack { kind, exception: header(rest), frames: Vec::new() };
            saw_reported = true;
            stacks.push(std::mem::replace(&mut current, next));
            continue;
        }
        if let Some(exception) = header(trimmed) {
            if current.frames.is_empty() {
                // The last exception-looking line before the frames wins.
                current.exception = Some(exception);
            } else {
                let kind = if saw_reported || current.kind == Kind::Reported { Kind::Other } else { Kind::Reported };
                saw_reported = true;
                let next = Stack { kind, exception: Some(exception), frames: Vec::new() };
                stacks.push(std::mem::replace(&mut current, next));
            }
        }
    }
    stacks.push(current);
    assemble(stacks)
}

fn assemble(stacks: Vec<Stack>) -> Parsed {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut others = 0;
    let mut root: Option<ExceptionInfo> = None;
    let mut in_first_chain = true;
    for stack in stacks {
        let group: FrameGroup = match stack.kind {
            Kind::Reported => cause(0),
            Kind::Cause if in_first_chain => {
                depth += 1;
                cause(depth)
            }
            Kind::Cause | Kind::Suppressed => related(others.max(1)),
            Kind::Other => {
                in_first_chain = false;
                others += 1;
                related(others)
            }
        };
        if in_first_chain && matches!(stack.kind, Kind::Reported | Kind::Cause) && stack.exception.is_some() {
            root = stack.exception;
        }
        out.push((group, stack.frames));
    }
    Parsed { frames: crate::correlation::trace::assemble(out), exception: root }
}
