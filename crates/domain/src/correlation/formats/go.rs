//! Go panics and goroutine dumps.
//!
//! ```text
//! panic: runtime error: invalid memory address or nil pointer dereference
//! [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]
//!
//! goroutine 1 [running]:
//! github.com/acme/svc/internal/cart.(*Cart).Total(0x0, {0x0, 0x0})
//!         /build/internal/cart/cart.go:42 +0x1d
//! main.main()
//!         /build/cmd/svc/main.go:15 +0x25
//! ```
//!
//! Printed innermost first; a function line, then its tab-indented file
//! line. In a dump of several goroutines, the panicking one (the first
//! `[running]` one after `panic:`) comes first and the others follow as
//! related stacks.

use crate::correlation::text::{MAX_MESSAGE, MAX_NAME, MAX_PATH, find_all, leading_digits, number, owned};
use crate::correlation::trace::{ExceptionInfo, Frame, Parsed, cause, related};

/// `/path/file.go:42` (with an optional ` +0x1d`) anywhere in `line`: the
/// path is the word before `.go:`.
pub(crate) fn file_line(line: &str) -> Option<(&str, u32)> {
    for at in find_all(line, ".go:", 4) {
        let (digits, rest) = leading_digits(line.get(at + 4..)?);
        let Some(line_no) = number(digits) else { continue };
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            continue;
        }
        let before = line.get(..at + 3)?;
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let path = before.get(start..)?;
        if path.len() > 3 {
            return Some((path, line_no));
        }
    }
    None
}

/// `goroutine 17 [chan receive, 5 minutes]:` anywhere in `line`: whether
/// it is running.
pub(crate) fn goroutine_header(line: &str) -> Option<bool> {
    let at = line.find("goroutine ")?;
    let (digits, rest) = leading_digits(line.get(at + 10..)?);
    if digits.is_empty() || !rest.starts_with(" [") {
        return None;
    }
    Some(rest.starts_with(" [running"))
}

/// `pkg/path.(*T).Method(args)` or `created by pkg.Func in goroutine 6`:
/// the package and the function.
fn function_line(line: &str) -> Option<(String, String)> {
    let trimmed = line.trim();
    let name = if let Some(created) = trimmed.strip_prefix("created by ") {
        created.split(" in goroutine ").next().unwrap_or(created)
    } else {
        let open = crate::correlation::text::matching_open(trimmed)?;
        trimmed.get(..open)?
    };
    if name.is_empty() || name.contains(char::is_whitespace) || !name.contains('.') {
        return None;
    }
    // The package ends at the first dot after the last slash.
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let dot = slash + name.get(slash..)?.find('.')?;
    let package = name.get(..dot)?;
    let function = name.get(dot + 1..)?;
    Some((owned(package, MAX_NAME), owned(function, MAX_NAME)))
}

struct Goroutine {
    running: bool,
    frames: Vec<Frame>,
}

pub(crate) fn parse(lines: &[&str]) -> Parsed {
    let mut exception = None;
    let mut goroutines: Vec<Goroutine> = vec![Goroutine { running: false, frames: Vec::new() }];
    let mut pending: Option<(String, String)> = None;
    for line in lines {
        if let Some(running) = goroutine_header(line) {
            goroutines.push(Goroutine { running, frames: Vec::new() });
            pending = None;
            continue;
        }
        if let Some((path, line_no)) = file_line(line) {
            let (module, function) = pending.take().map_or((None, None), |(m, f)| (Some(m), Some(f)));
            if let Some(goroutine) = goroutines.last_mut() {
                goroutine.frames.push(Frame {
                    file: Some(owned(path, MAX_PATH)),
                    function,
                    line: Some(line_no),
                    module,
                    ..Frame::default()
                });
            }
            continue;
        }
        if exception.is_none() {
            for kind in ["panic: ", "fatal error: "] {
                if let Some(at) = line.find(kind) {
                    let message = line.get(at + kind.len()..).unwrap_or("");
                    let message = message.strip_suffix(" [recovered]").unwrap_or(message);
                    exception = Some(ExceptionInfo {
                        kind: kind.trim_end_matches([':', ' ']).to_owned(),
                        message: owned(message, MAX_MESSAGE),
                    });
                    break;
                }
            }
        }
        pending = function_line(line);
    }
    goroutines.retain(|g| !g.frames.is_empty());
    // The panicking goroutine: the first running one, else the first.
    let first = goroutines.iter().position(|g| g.running).unwrap_or(0);
    let mut stacks = Vec::new();
    let mut others = 0;
    for (i, goroutine) in goroutines.into_iter().enumerate() {
        let group = if i == first {
            cause(0)
        } else {
            others += 1;
            related(others)
        };
        stacks.push((group, goroutine.frames));
    }
    Parsed { frames: crate::correlation::trace::assemble(stacks), exception }
}
