//! Which lines a change touched: new-side line ranges from unified-diff
//! hunk headers, and their compact text form for storage.

use std::fmt;

use super::text::{leading_digits, number};

/// The most ranges kept for one file. A file with more hunks than this is
/// a rewrite; its first ranges are kept and the rest dropped.
pub const MAX_RANGES: usize = 2000;

/// Lines `start..=end` of a file's new side (1-based, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineRange {
    /// The first line, at least 1.
    pub start: u32,
    /// The last line, at least `start`.
    pub end: u32,
}

impl LineRange {
    /// Lines `start..=end`, reordered when reversed, line 0 read as line 1.
    pub fn new(start: u32, end: u32) -> Self {
        let (start, end) = if start <= end { (start, end) } else { (end, start) };
        Self { start: start.max(1), end: end.max(1) }
    }

    /// How many lines lie between `line` and this range; 0 inside it.
    pub fn distance(&self, line: u32) -> u32 {
        if line < self.start { self.start - line } else { line.saturating_sub(self.end) }
    }

    /// The ranges as `38-47,100` (a single line as one number).
    pub fn encode_list(ranges: &[LineRange]) -> String {
        let parts: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        parts.join(",")
    }

    /// Reads [`LineRange::encode_list`]'s form back, leniently: parts that
    /// do not parse are skipped, reversed ranges reordered, overlapping ones
    /// merged, at most [`MAX_RANGES`] kept. Never fails.
    pub fn decode_list(text: &str) -> Vec<LineRange> {
        let mut ranges = Vec::new();
        for part in text.split(',').take(MAX_RANGES * 4) {
            let part = part.trim();
            let parsed = match part.split_once('-') {
                Some((a, b)) => number(a.trim()).zip(number(b.trim())).map(|(a, b)| LineRange::new(a, b)),
                None => number(part).map(|n| LineRange::new(n, n)),
            };
            ranges.extend(parsed);
        }
        merge(ranges)
    }
}

impl fmt::Display for LineRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end { write!(f, "{}", self.start) } else { write!(f, "{}-{}", self.start, self.end) }
    }
}

/// Sorts `ranges` and merges those that overlap or touch; keeps at most
/// [`MAX_RANGES`].
pub fn merge(mut ranges: Vec<LineRange>) -> Vec<LineRange> {
    ranges.sort_unstable();
    let mut out: Vec<LineRange> = Vec::with_capacity(ranges.len().min(MAX_RANGES));
    for range in ranges {
        let full = out.len() == MAX_RANGES;
        match out.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(1) => last.end = last.end.max(range.end),
            _ if full => break,
            _ => out.push(range),
        }
    }
    out
}

/// The new-side line ranges of a file's patch, from its hunk headers
/// `@@ -a,b +c,d @@`: lines `c..=c+d-1`. `+c` without `,d` is one line.
///
/// `d = 0` is a pure deletion: there is no new line, so it is recorded as
/// the line just above where the lines were removed (`c`, or 1 at the top
/// of the file); a deletion next to a frame's line then still counts as a
/// change there.
///
/// Only lines starting with `@@` are read, so the work is one pass over
/// the patch whatever its size; at most [`MAX_RANGES`] ranges are kept.
///
/// ```
/// use sigsentry_domain::correlation::{LineRange, parse_hunk_ranges};
///
/// let patch = "@@ -36,7 +38,10 @@ def total(self):\n-    a\n+    b\n@@ -90 +100 @@\n-x\n+y\n";
/// let ranges = parse_hunk_ranges(patch);
/// assert_eq!(ranges, vec![LineRange::new(38, 47), LineRange::new(100, 100)]);
/// assert_eq!(LineRange::encode_list(&ranges), "38-47,100");
/// ```
pub fn parse_hunk_ranges(patch: &str) -> Vec<LineRange> {
    let mut ranges = Vec::new();
    for line in patch.lines() {
        if let Some(range) = hunk_header(line) {
            ranges.push(range);
            if ranges.len() >= MAX_RANGES * 2 {
                ranges = merge(ranges);
                if ranges.len() >= MAX_RANGES {
                    break;
                }
            }
        }
    }
    merge(ranges)
}

/// The new-side range of one `@@ -a,b +c,d @@` header.
pub(crate) fn hunk_header(line: &str) -> Option<LineRange> {
    let rest = line.strip_prefix("@@ ")?;
    let plus = rest.find(" +")?;
    let new_side = rest.get(plus + 2..)?;
    let (start, after) = leading_digits(new_side);
    let start = number(start)?;
    let count = match after.strip_prefix(',') {
        Some(count) => number(leading_digits(count).0)?,
        None => 1,
    };
    if count == 0 {
        return Some(LineRange::new(start, start));
    }
    Some(LineRange::new(start, start.saturating_add(count - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(hunk_header("@@ -1,3 +1,4 @@"), Some(LineRange::new(1, 4)));
        assert_eq!(hunk_header("@@ -5 +7 @@ fn x()"), Some(LineRange::new(7, 7)));
        assert_eq!(hunk_header("@@ -10,3 +9,0 @@"), Some(LineRange::new(9, 9)));
        assert_eq!(hunk_header("@@ -1,3 +0,0 @@"), Some(LineRange::new(1, 1)));
        assert_eq!(hunk_header("@@ -1 +4294967295,10 @@"), Some(LineRange::new(u32::MAX, u32::MAX)));
        assert_eq!(hunk_header("@@@ -1 +1 @@@"), None);
        assert_eq!(hunk_header("@@ garbage"), None);
        assert_eq!(hunk_header(" @@ -1 +1 @@"), None);
    }

    #[test]
    fn merges_and_encodes() {
        let ranges = parse_hunk_ranges("@@ -1,2 +1,5 @@\n@@ -8 +4,4 @@\n@@ -30 +30 @@\n");
        assert_eq!(ranges, vec![LineRange::new(1, 7), LineRange::new(30, 30)]);
        assert_eq!(LineRange::encode_list(&ranges), "1-7,30");
        assert_eq!(LineRange::decode_list("1-7,30"), ranges);
        assert_eq!(LineRange::decode_list(" 9-3, x, ,5-, 4 ,99999999999"), vec![LineRange::new(3, 9)]);
        assert_eq!(LineRange::decode_list(""), vec![]);
    }

    #[test]
    fn bounded() {
        let patch: String = (1..20_000u32).map(|i| format!("@@ -{i} +{} @@\n", i * 3)).collect();
        let ranges = parse_hunk_ranges(&patch);
        assert_eq!(ranges.len(), MAX_RANGES);
        let text: String = (1..20_000u32).map(|i| format!("{},", i * 3)).collect();
        assert_eq!(LineRange::decode_list(&text).len(), MAX_RANGES);
    }

    #[test]
    fn distance() {
        let r = LineRange::new(38, 47);
        assert_eq!(r.distance(42), 0);
        assert_eq!(r.distance(30), 8);
        assert_eq!(r.distance(50), 3);
    }
}
