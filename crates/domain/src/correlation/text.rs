//! Small byte-safe string helpers shared by the parsers.
//!
//! Every index handed to a slice here comes from an ASCII needle or from
//! [`floor_boundary`], so slicing never splits a character.

/// The largest index `<= max` that is a character boundary of `s`.
pub(crate) fn floor_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    s.get(..floor_boundary(s, max)).unwrap_or("")
}

/// `s` trimmed and cut to at most `max` bytes, as an owned string.
pub(crate) fn owned(s: &str, max: usize) -> String {
    clip(s.trim(), max).to_owned()
}

/// Longest file path kept in a frame, in bytes.
pub(crate) const MAX_PATH: usize = 1024;
/// Longest function or module name kept in a frame, in bytes.
pub(crate) const MAX_NAME: usize = 512;
/// Longest exception message kept, in bytes.
pub(crate) const MAX_MESSAGE: usize = 1024;

/// `s` as a line or column number: 1 to 10 ASCII digits that fit a `u32`.
pub(crate) fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The run of ASCII digits at the start of `s` and what follows it.
pub(crate) fn leading_digits(s: &str) -> (&str, &str) {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Splits `file:line:col`, `file:line` or `file` from the end. Numbers that
/// are not there stay `None`; the file part may itself contain colons
/// (`file:///x`, `C:\x`).
pub(crate) fn split_line_col(loc: &str) -> (&str, Option<u32>, Option<u32>) {
    let Some((head, last)) = loc.rsplit_once(':') else {
        return (loc, None, None);
    };
    let Some(last_num) = number(last) else {
        return (loc, None, None);
    };
    match head.rsplit_once(':') {
        Some((file, mid)) => match number(mid) {
            Some(line) => (file, Some(line), Some(last_num)),
            None => (head, Some(last_num), None),
        },
        None => (head, Some(last_num), None),
    }
}

/// Byte offsets of `needle` in `hay`, at most `limit` of them. Bounding the
/// count keeps per-line work linear whatever the line holds.
pub(crate) fn find_all<'a>(hay: &'a str, needle: &'a str, limit: usize) -> impl Iterator<Item = usize> + 'a {
    hay.match_indices(needle).map(|(i, _)| i).take(limit)
}

/// True when `hay[..at]` is empty or ends in whitespace: `at` starts a word.
pub(crate) fn word_start(hay: &str, at: usize) -> bool {
    hay.get(..at).is_none_or(|before| before.is_empty() || before.ends_with(char::is_whitespace))
}

/// Position of the `(` that opens the parenthesis closed by the last byte of
/// `s` (which must be `)`), counting nesting.
pub(crate) fn matching_open(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.last() != Some(&b')') {
        return None;
    }
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Position of the `)` that closes the `(` at `open`, counting nesting.
pub(crate) fn matching_close(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &b) in s.as_bytes().iter().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Log levels that prefix lines and are never exception types.
pub(crate) const LEVELS: [&str; 14] = [
    "ERROR", "ERR", "WARN", "WARNING", "INFO", "DEBUG", "TRACE", "FATAL", "CRITICAL", "SEVERE", "NOTICE", "ALERT",
    "EMERG", "CRIT",
];

/// Whether `s` looks like an exception type name: dotted (or `::`) segments
/// of identifier characters whose last segment starts with an upper-case
/// letter (`KeyError`, `java.lang.IllegalStateException`,
/// `ActiveRecord::RecordNotFound`, `Cart$Error`).
pub(crate) fn is_type_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 200 || LEVELS.contains(&s) {
        return false;
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$' | b':')) {
        return false;
    }
    let last = s.rsplit(['.', ':']).next().unwrap_or("");
    last.starts_with(|c: char| c.is_ascii_uppercase()) && !s.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// Endings that make a type name more likely to be the exception than some
/// other capitalised word of a log prefix.
fn exceptional(kind: &str) -> bool {
    ["Error", "Exception", "Warning", "Fault", "Failure", "Exit", "Interrupt", "Iteration", "Throwable"]
        .iter()
        .any(|end| kind.ends_with(end))
}

/// Reads `Type: message` out of a line that may still carry some log prefix:
/// the type is the word just before one of the line's first `": "`
/// separators. A type ending in `Error`, `Exception`... is preferred over
/// another capitalised word. With `bare`, a line that is only a type name
/// (`StopIteration`) is accepted too.
pub(crate) fn exception_in(line: &str, bare: bool) -> Option<(String, String)> {
    let line = line.trim();
    let mut first: Option<(usize, usize)> = None;
    for at in find_all(line, ": ", 8) {
        let before = line.get(..at).unwrap_or("");
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let kind = before.get(start..).unwrap_or("");
        if is_type_name(kind) {
            if exceptional(kind) {
                return Some(split_exception(line, start, at));
            }
            first.get_or_insert((start, at));
        }
    }
    if let Some((start, at)) = first {
        return Some(split_exception(line, start, at));
    }
    let kind = line.strip_suffix(':').unwrap_or(line);
    (bare && is_type_name(kind) && !kind.contains("::")).then(|| (owned(kind, MAX_NAME), String::new()))
}

fn split_exception(line: &str, start: usize, at: usize) -> (String, String) {
    let kind = line.get(start..at).unwrap_or("");
    let message = line.get(at + 2..).unwrap_or("");
    (owned(kind, MAX_NAME), owned(message, MAX_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("héllo", 3), "hé");
        assert_eq!(clip("abc", 10), "abc");
    }

    #[test]
    fn line_and_column_from_the_end() {
        assert_eq!(split_line_col("/a/b.js:42:7"), ("/a/b.js", Some(42), Some(7)));
        assert_eq!(split_line_col("file:///a/b.js:42:7"), ("file:///a/b.js", Some(42), Some(7)));
        assert_eq!(split_line_col("Cart.java:42"), ("Cart.java", Some(42), None));
        assert_eq!(split_line_col("Cart.java"), ("Cart.java", None, None));
        assert_eq!(split_line_col("C:\\x\\y.cs"), ("C:\\x\\y.cs", None, None));
        assert_eq!(split_line_col("x:99999999999"), ("x:99999999999", None, None));
    }

    #[test]
    fn exception_lines() {
        assert_eq!(exception_in("KeyError: 'currency'", false), Some(("KeyError".into(), "'currency'".into())));
        assert_eq!(
            exception_in("host app[12]: CheckoutService: ValueError: a: b", false),
            Some(("ValueError".into(), "a: b".into()))
        );
        assert_eq!(exception_in("StopIteration", true), Some(("StopIteration".into(), String::new())));
        assert_eq!(exception_in("ERROR: boom", false), None);
        assert_eq!(exception_in("return x['y']", true), None);
    }

    #[test]
    fn parentheses() {
        assert_eq!(matching_open("f (a (b) c)"), Some(2));
        assert_eq!(matching_open("f a)"), None);
        assert_eq!(matching_close("f(a(b))x", 1), Some(6));
    }
}
