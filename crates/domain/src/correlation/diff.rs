//! A whole `git diff` (Bitbucket's raw pull-request diff) split per file.

use super::hunks::{LineRange, MAX_RANGES, hunk_header, merge};

/// The most files read out of one diff.
pub const MAX_DIFF_FILES: usize = 10_000;

/// One file of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDiff {
    /// The path before the change; `None` for an added file.
    pub old_path: Option<String>,
    /// The path after the change; `None` for a deleted file.
    pub new_path: Option<String>,
    /// New-side changed line ranges (see
    /// [`parse_hunk_ranges`](super::parse_hunk_ranges)); empty for binary
    /// files and pure renames.
    pub ranges: Vec<LineRange>,
    /// Git said `Binary files ... differ` or carried a binary patch.
    pub binary: bool,
}

impl FileDiff {
    /// True when the file was renamed (both paths known and different).
    pub fn is_rename(&self) -> bool {
        matches!((&self.old_path, &self.new_path), (Some(a), Some(b)) if a != b)
    }
}

/// Splits a unified diff into files: `diff --git a/x b/y` sections with
/// `rename from`/`rename to`, `--- a/x` / `+++ b/y` (`/dev/null` for added
/// and deleted files), `Binary files ... differ`, and `\ No newline at end
/// of file` markers. A diff of bare `---`/`+++`/`@@` sections without
/// `diff --git` lines works too. One pass; at most [`MAX_DIFF_FILES`] files
/// and [`MAX_RANGES`] ranges per file.
///
/// ```
/// use sigsentry_domain::correlation::{LineRange, split_unified_diff};
///
/// let diff = "diff --git a/old/cart.py b/checkout/cart.py\n\
///             similarity index 90%\n\
///             rename from old/cart.py\n\
///             rename to checkout/cart.py\n\
///             --- a/old/cart.py\n\
///             +++ b/checkout/cart.py\n\
///             @@ -40,3 +40,4 @@ def total(self):\n\
///             +    rate = rates[self.currency]\n";
/// let files = split_unified_diff(diff);
/// assert_eq!(files[0].old_path.as_deref(), Some("old/cart.py"));
/// assert_eq!(files[0].new_path.as_deref(), Some("checkout/cart.py"));
/// assert_eq!(files[0].ranges, vec![LineRange::new(40, 43)]);
/// ```
pub fn split_unified_diff(diff: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut current: Option<FileDiff> = None;
    // Inside a hunk, lines start with ' ', '+', '-' or '\'; a `--- ` line
    // there is content, not a header.
    let mut in_hunk = false;
    for line in diff.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line.strip_prefix("diff --git ") {
            finish(&mut files, current.take());
            if files.len() >= MAX_DIFF_FILES {
                return files;
            }
            let (old, new) = git_header_paths(rest);
            current = Some(FileDiff { old_path: old, new_path: new, ..FileDiff::default() });
            in_hunk = false;
            continue;
        }
        if let Some(range) = hunk_header(line) {
            let file = current.get_or_insert_with(FileDiff::default);
            if file.ranges.len() < MAX_RANGES * 2 {
                file.ranges.push(range);
            }
            in_hunk = true;
            continue;
        }
        if in_hunk && line.starts_with([' ', '+', '-', '\\']) && !is_file_header(line) {
            continue;
        }
        in_hunk = false;
        if let Some(path) = line.strip_prefix("--- ") {
            // A `---` after hunks without a `diff --git` line starts a file.
            if current.as_ref().is_some_and(|f| !f.ranges.is_empty()) {
                finish(&mut files, current.take());
            }
            current.get_or_insert_with(FileDiff::default).old_path = side_path(path, "a/");
        } else if let Some(path) = line.strip_prefix("+++ ") {
            current.get_or_insert_with(FileDiff::default).new_path = side_path(path, "b/");
        } else if let Some(path) = line.strip_prefix("rename from ") {
            current.get_or_insert_with(FileDiff::default).old_path = Some(unquote(path));
        } else if let Some(path) = line.strip_prefix("rename to ") {
            current.get_or_insert_with(FileDiff::default).new_path = Some(unquote(path));
        } else if line.starts_with("new file mode") {
            if let Some(file) = current.as_mut() {
                file.old_path = None;
            }
        } else if line.starts_with("deleted file mode") {
            if let Some(file) = current.as_mut() {
                file.new_path = None;
            }
        } else if (line.starts_with("Binary files ") || line == "GIT binary patch")
            && let Some(file) = current.as_mut()
        {
            file.binary = true;
        }
        if files.len() >= MAX_DIFF_FILES {
            break;
        }
    }
    finish(&mut files, current);
    files
}

/// A `--- ` or `+++ ` line inside what looked like a hunk: a new file's
/// header when followed by a path with the side's prefix or `/dev/null`.
fn is_file_header(line: &str) -> bool {
    line.strip_prefix("--- ").is_some_and(|p| p.starts_with("a/") || p.starts_with("/dev/null"))
        || line.strip_prefix("+++ ").is_some_and(|p| p.starts_with("b/") || p.starts_with("/dev/null"))
}

fn finish(files: &mut Vec<FileDiff>, file: Option<FileDiff>) {
    if let Some(mut file) = file
        && (file.old_path.is_some() || file.new_path.is_some())
    {
        file.ranges = merge(std::mem::take(&mut file.ranges));
        files.push(file);
    }
}

/// The path of a `---`/`+++` line: `/dev/null` is none; the side's prefix
/// and a trailing tab-separated timestamp are dropped.
fn side_path(raw: &str, prefix: &str) -> Option<String> {
    let raw = raw.split('\t').next().unwrap_or(raw).trim_end();
    if raw == "/dev/null" {
        return None;
    }
    let path = unquote(raw);
    Some(path.strip_prefix(prefix).map(str::to_owned).unwrap_or(path))
}

/// The paths of `diff --git a/x b/y`. Paths with spaces are ambiguous
/// there; `---`/`+++` or `rename` lines, which follow, fix them up.
fn git_header_paths(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('"') {
        let mut parts = rest.splitn(2, "\" ");
        let old = parts.next().map(|p| unquote(&format!("{p}\"")));
        let new = parts.next().map(unquote);
        return (old.map(|p| strip(&p, "a/")), new.map(|p| strip(&p, "b/")));
    }
    // Same path on both sides is the common case: split in the middle.
    if let Some(old) = rest.strip_prefix("a/") {
        if old.len() >= 3 && (old.len() - 3) % 2 == 0 {
            let n = (old.len() - 3) / 2;
            if let (Some(a), Some(" b/"), Some(b)) = (old.get(..n), old.get(n..n + 3), old.get(n + 3..))
                && a == b
            {
                return (Some(a.to_owned()), Some(b.to_owned()));
            }
        }
        if let Some((a, b)) = old.split_once(" b/") {
            return (Some(a.to_owned()), Some(b.to_owned()));
        }
    }
    (None, None)
}

fn strip(path: &str, prefix: &str) -> String {
    path.strip_prefix(prefix).unwrap_or(path).to_owned()
}

/// Git quotes paths with unusual characters: `"a/x\ty"` with C escapes.
fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_owned();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut iter = inner.bytes().peekable();
    while let Some(b) = iter.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match iter.next() {
            Some(b't') => bytes.push(b'\t'),
            Some(b'n') => bytes.push(b'\n'),
            Some(d @ b'0'..=b'7') => {
                // Up to three octal digits: one byte of a UTF-8 sequence.
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    match iter.peek() {
                        Some(&n @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(n - b'0');
                            iter.next();
                        }
                        _ => break,
                    }
                }
                bytes.push(u8::try_from(value).unwrap_or(b'?'));
            }
            Some(other) => bytes.push(other),
            None => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_paths() {
        assert_eq!(git_header_paths("a/x.py b/x.py"), (Some("x.py".into()), Some("x.py".into())));
        assert_eq!(git_header_paths("a/a b.py b/a b.py"), (Some("a b.py".into()), Some("a b.py".into())));
        assert_eq!(git_header_paths("a/old.py b/new/x.py"), (Some("old.py".into()), Some("new/x.py".into())));
        assert_eq!(git_header_paths("\"a/x\\ty\" \"b/x\\ty\""), (Some("x\ty".into()), Some("x\ty".into())));
        assert_eq!(unquote("\"caf\\303\\251.py\""), "café.py");
    }
}
