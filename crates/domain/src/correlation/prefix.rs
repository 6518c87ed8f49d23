//! Log prefixes: what a log pipeline puts in front of each line of a trace.
//!
//! Two passes. First, tokens that are recognisably log decoration are taken
//! off the start of each line: ISO 8601 and syslog timestamps, bare times,
//! `[bracketed]` fields, upper-case levels, kubectl's `pod/name`, CRI's
//! `stdout F`, docker-compose's `web-1  | `, syslog's `app[123]:`. Second, a
//! prefix that every remaining line shares (`checkout-api `, a logger name)
//! is taken off too, unless it looks like part of a trace. Frame parsers
//! still search for their markers anywhere in a line, so what survives both
//! passes rarely matters.

use super::text::{LEVELS, clip};
use super::trace::MAX_LINE_BYTES;

/// The lines of `text` with their log prefixes stripped, each at most
/// [`MAX_LINE_BYTES`].
pub(crate) fn clean_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|line| {
            let line = clip(line, MAX_LINE_BYTES);
            strip_tokens(line.strip_suffix('\r').unwrap_or(line))
        })
        .collect();
    let common = common_prefix(&lines);
    if !common.is_empty() {
        for line in &mut lines {
            *line = line.strip_prefix(common).unwrap_or(line);
        }
    }
    lines
}

/// True for a trace logged as a single JSON string: hardly any real line
/// breaks but several `\n` escapes.
pub(crate) fn looks_json_escaped(text: &str) -> bool {
    text.bytes().filter(|&b| b == b'\n').take(3).count() < 3 && text.matches("\\n").take(3).count() >= 2
}

/// Undoes JSON string escapes (`\n`, `\t`, `\"`, `\\`, `\/`, `\r`, `\uXXXX`).
pub(crate) fn unescape_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => {}
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push('\u{fffd}'),
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Takes recognisable log tokens off the start of `line`; at most eight, so
/// the work stays linear.
fn strip_tokens(line: &str) -> &str {
    let mut rest = line;
    let mut stripped = false;
    for _ in 0..8 {
        let candidate = if stripped { rest.trim_start() } else { rest };
        match token(candidate) {
            Some(after) => {
                // One separator belongs to the prefix; further indentation
                // belongs to the trace (Go's tab, Python's code lines).
                rest = after.strip_prefix([' ', '\t']).unwrap_or(after);
                stripped = true;
            }
            None => break,
        }
    }
    rest
}

/// The rest of `s` after one log token at its start, if it starts with one.
fn token(s: &str) -> Option<&str> {
    timestamp(s)
        .or_else(|| syslog_date(s))
        .or_else(|| bracketed(s))
        .or_else(|| level(s))
        .or_else(|| kubectl_pod(s))
        .or_else(|| cri_stream(s))
        .or_else(|| compose_service(s))
        .or_else(|| syslog_tag(s))
        .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Consumes exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<&str> {
    let head = s.get(..n)?;
    head.bytes().all(|b| b.is_ascii_digit()).then(|| s.get(n..)).flatten()
}

/// `2026-11-22`, `2026/11/22` then optionally `T` or a space and a time;
/// or a time alone.
fn timestamp(s: &str) -> Option<&str> {
    if let Some(rest) = date(s) {
        let timed = rest.strip_prefix(['T', ' ']).and_then(time);
        return Some(timed.unwrap_or(rest));
    }
    time(s)
}

fn date(s: &str) -> Option<&str> {
    let rest = digits(s, 4)?;
    let rest = rest.strip_prefix(['-', '/'])?;
    let rest = digits(rest, 2)?;
    let rest = rest.strip_prefix(['-', '/'])?;
    digits(rest, 2)
}

/// `10:00:00`, `10:00:00.123`, `10:00:00,123`, with an optional zone
/// (`Z`, `+02:00`, `+0200`, ` UTC`).
fn time(s: &str) -> Option<&str> {
    let rest = digits(s, 2)?;
    let rest = rest.strip_prefix(':')?;
    let mut rest = digits(rest, 2)?;
    if let Some(secs) = rest.strip_prefix(':').and_then(|r| digits(r, 2)) {
        rest = secs;
        if let Some(frac) = rest.strip_prefix(['.', ',']) {
            let (run, after) = super::text::leading_digits(frac);
            if !run.is_empty() {
                rest = after;
            }
        }
    }
    if let Some(after) = rest.strip_prefix('Z') {
        return Some(after);
    }
    if let Some(zone) = rest.strip_prefix(['+', '-'])
        && let Some(after) = digits(zone, 2)
    {
        let after = after.strip_prefix(':').unwrap_or(after);
        return Some(digits(after, 2).unwrap_or(after));
    }
    Some(rest.strip_prefix(" UTC").unwrap_or(rest))
}

/// `Nov 29 10:00:00` (syslog): a month, a day, a time.
fn syslog_date(s: &str) -> Option<&str> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = s.get(..3)?;
    if !MONTHS.contains(&month) {
        return None;
    }
    let rest = s.get(3..)?.trim_start_matches(' ');
    let (day, rest) = super::text::leading_digits(rest);
    if day.is_empty() || day.len() > 2 {
        return None;
    }
    time(rest.strip_prefix(' ')?)
}

/// `[anything]` of at most 128 bytes without a nested `[`; not Node's
/// `[cause]`, which is part of the trace.
fn bracketed(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.get(..inner.len().min(128))?.find([']', '['])?;
    if inner.as_bytes().get(end) != Some(&b']') || inner.get(..end) == Some("cause") {
        return None;
    }
    let rest = inner.get(end + 1..)?;
    Some(rest.strip_prefix(':').unwrap_or(rest))
}

/// An upper-case level word, optionally followed by `:`.
fn level(s: &str) -> Option<&str> {
    let end = s.find([' ', '\t', ':']).unwrap_or(s.len());
    let word = s.get(..end)?;
    if !LEVELS.contains(&word) {
        return None;
    }
    let rest = s.get(end..)?;
    Some(rest.strip_prefix(':').unwrap_or(rest))
}

/// kubectl's `pod/checkout-7d9f-x2` (the container name after it, being
/// the same on every line, goes with the common prefix).
fn kubectl_pod(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("pod/")?;
    let end = rest.find([' ', '\t']).unwrap_or(rest.len());
    (end > 0).then(|| rest.get(end..)).flatten()
}

/// CRI log lines: `stdout F ` or `stderr P `.
fn cri_stream(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("stdout ").or_else(|| s.strip_prefix("stderr "))?;
    rest.strip_prefix("F").or_else(|| rest.strip_prefix("P"))
}

/// docker compose's `web-1  | `.
fn compose_service(s: &str) -> Option<&str> {
    let end = s.find([' ', '\t'])?;
    if end == 0 || end > 64 {
        return None;
    }
    let after = s.get(end..)?.trim_start_matches(' ');
    let rest = after.strip_prefix('|')?;
    Some(rest)
}

/// syslog's `app[123]:` tag.
fn syslog_tag(s: &str) -> Option<&str> {
    let end = s.find("]:")?;
    let head = s.get(..end)?;
    let (name, pid) = head.split_once('[')?;
    let ok = !name.is_empty()
        && !name.contains(char::is_whitespace)
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.get(end + 2..)).flatten()
}

/// Words that start trace lines: a shared prefix made of them is the trace,
/// not decoration.
const TRACE_WORDS: [&str; 10] =
    ["at", "File", "from", "in", "Traceback", "Caused", "goroutine", "panic:", "thread", "---"];

/// The prefix every non-blank line shares, cut back to a word boundary:
/// starts with a non-blank character, ends with whitespace, holds none of
/// [`TRACE_WORDS`]. Empty when there is none or fewer than two lines.
fn common_prefix<'a>(lines: &[&'a str]) -> &'a str {
    let mut non_blank = lines.iter().copied().filter(|l| !l.trim().is_empty());
    let Some(first) = non_blank.next() else {
        return "";
    };
    let mut len = first.len();
    let mut count = 1;
    for line in non_blank {
        count += 1;
        len = first.bytes().zip(line.bytes()).take(len).take_while(|(a, b)| a == b).count();
        if len == 0 {
            return "";
        }
    }
    if count < 2 {
        return "";
    }
    let shared = first.get(..super::text::floor_boundary(first, len)).unwrap_or("");
    let Some(cut) = shared.rfind([' ', '\t']) else {
        return "";
    };
    let prefix = first.get(..=cut).unwrap_or("");
    let starts_blank = prefix.starts_with(char::is_whitespace);
    if starts_blank || prefix.split_whitespace().any(|word| TRACE_WORDS.contains(&word)) {
        return "";
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_known_tokens() {
        assert_eq!(strip_tokens("2026-11-22T10:00:00.123Z ERROR boom"), "boom");
        assert_eq!(strip_tokens("2026-11-22 10:00:00,123 [main] ERROR: boom"), "boom");
        assert_eq!(strip_tokens("Nov 29 10:00:00 KeyError: x"), "KeyError: x");
        assert_eq!(strip_tokens("[pod-7d9f] [error] \tat x"), "\tat x");
        assert_eq!(strip_tokens("web-1  | Traceback"), "Traceback");
        assert_eq!(strip_tokens("2026-11-22T10:00:00+02:00 stdout F panic: x"), "panic: x");
        assert_eq!(strip_tokens("pod/checkout-7d9f app x"), "app x");
        assert_eq!(strip_tokens("app[123]: x"), "x");
        assert_eq!(strip_tokens("KeyError: 'x'"), "KeyError: 'x'");
        assert_eq!(strip_tokens("[cause]: Error: x"), "[cause]: Error: x");
        assert_eq!(strip_tokens("\tat com.acme.Cart.total(Cart.java:42)"), "\tat com.acme.Cart.total(Cart.java:42)");
        assert_eq!(strip_tokens("Error: boom"), "Error: boom");
    }

    #[test]
    fn common_prefix_is_decoration_only() {
        assert_eq!(common_prefix(&["app Traceback", "app   File \"x\"", "app KeyError"]), "app ");
        assert_eq!(common_prefix(&["at a.b(C.java:1)", "at a.c(C.java:2)"]), "");
        assert_eq!(common_prefix(&["    at a", "    at b"]), "");
        assert_eq!(common_prefix(&["only one line"]), "");
    }

    #[test]
    fn json_escapes() {
        assert!(looks_json_escaped("Error: x\\n    at f (a.js:1:2)\\n    at g (a.js:3:4)"));
        assert_eq!(unescape_json("a\\nb\\t\\\"c\\u0041\\"), "a\nb\t\"cA\\");
        assert!(!looks_json_escaped("a\nb\nc\nd\\n\\n"));
    }
}
