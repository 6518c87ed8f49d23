//! What a parsed stack trace holds, and the entry point that parses one.

use std::fmt;

use super::formats;
use super::prefix;
use super::text::clip;

/// The most frames a [`ParsedTrace`] keeps; the API accepts at most this
/// many structured frames too. The frames past it (the outermost ones, and
/// the stacks printed last) are dropped, and [`ParsedTrace::truncated`]
/// says so.
pub const MAX_FRAMES: usize = 500;

/// The most bytes of a trace that are read (256 KiB, the API's limit).
/// Longer input is cut on a character boundary and marked truncated.
pub const MAX_TRACE_BYTES: usize = 256 * 1024;

/// The most bytes of one line that are looked at. Real frame lines are far
/// shorter; the cap keeps a single huge line cheap.
pub const MAX_LINE_BYTES: usize = 4096;

/// The language (runtime) whose trace format was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// CPython tracebacks.
    Python,
    /// Java and Kotlin (any JVM trace of `at pkg.Class.method(File.java:42)` lines).
    Java,
    /// JavaScript and TypeScript on V8 (Node.js, Chrome, Deno, Bun).
    JavaScript,
    /// Go panics and goroutine dumps.
    Go,
    /// Rust panics and `RUST_BACKTRACE` backtraces.
    Rust,
    /// Ruby backtraces.
    Ruby,
    /// .NET (C#, F#, VB) exception traces.
    DotNet,
    /// Nothing recognisable.
    Unknown,
}

impl Language {
    /// Every language, `Unknown` last.
    pub const ALL: [Language; 8] = [
        Language::Python,
        Language::Java,
        Language::JavaScript,
        Language::Go,
        Language::Rust,
        Language::Ruby,
        Language::DotNet,
        Language::Unknown,
    ];

    /// The wire name: `python`, `java`, `javascript`, `go`, `rust`, `ruby`,
    /// `dotnet` or `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Java => "java",
            Language::JavaScript => "javascript",
            Language::Go => "go",
            Language::Rust => "rust",
            Language::Ruby => "ruby",
            Language::DotNet => "dotnet",
            Language::Unknown => "unknown",
        }
    }

    /// The language a source file's extension suggests (`cart.py` is
    /// Python), for structured frames that do not say.
    pub fn from_path(path: &str) -> Language {
        let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
        match ext.to_ascii_lowercase().as_str() {
            "py" => Language::Python,
            "java" | "kt" | "kts" | "scala" | "groovy" => Language::Java,
            "js" | "mjs" | "cjs" | "ts" | "mts" | "cts" | "tsx" | "jsx" => Language::JavaScript,
            "go" => Language::Go,
            "rs" => Language::Rust,
            "rb" | "erb" | "rake" => Language::Ruby,
            "cs" | "fs" | "vb" => Language::DotNet,
            _ => Language::Unknown,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type and message of an exception (or `panic` for Go and Rust).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionInfo {
    /// The type as printed: `KeyError`, `java.lang.IllegalStateException`,
    /// `panic`, `fatal error`.
    pub kind: String,
    /// The message, first line only, at most 1 KiB.
    pub message: String,
}

/// Which part of a trace a frame belongs to.
///
/// A trace can hold more than one stack: the exception that was reported,
/// the causes it chains to, and stacks that are only related (Java's
/// `Suppressed:`, the other goroutines of a Go dump, a second unrelated
/// traceback in the same text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum FrameGroup {
    /// The stack of the exception that was reported (Java's first exception,
    /// Python's last printed one, Go's panicking goroutine).
    #[default]
    Raised,
    /// The stack of the n-th cause (1 for the direct cause); the highest n
    /// is the root cause.
    Cause(u16),
    /// A stack that is only related: suppressed exceptions, other threads or
    /// goroutines, later unrelated errors.
    Related(u16),
}

/// One stack frame. Every field is optional because formats differ in what
/// they print.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The file as the runtime printed it (`/app/checkout/cart.py`,
    /// `Cart.java`, `webpack:///./src/x.ts`), or `None` when the frame has
    /// no path (`<anonymous>`, `Native Method`, `Unknown Source`).
    pub file: Option<String>,
    /// The function or method: `total`, `(*Cart).Total`, `Cart#total`,
    /// `myapp::cart::total`.
    pub function: Option<String>,
    /// 1-based line number.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// The class (Java, .NET: `com.acme.cart.Cart`) or package (Go:
    /// `github.com/acme/svc/internal/cart`) the function belongs to.
    pub module: Option<String>,
    /// Set only when the input says so (structured frames' `inApp`).
    pub in_app: Option<bool>,
    /// Which stack of the trace the frame belongs to.
    pub group: FrameGroup,
}

/// A stack trace read out of text or given as structured frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTrace {
    /// The recognised format, `Unknown` when nothing was recognised.
    pub language: Language,
    /// The root cause's type and message when the format shows it: the last
    /// `Caused by:` (Java), the innermost `--->` (.NET), the first printed
    /// traceback of a Python chain (the one that started it), `panic` with
    /// its message for Go and Rust.
    pub exception: Option<ExceptionInfo>,
    /// The frames, innermost first: the reported exception's frames, then
    /// its causes' frames (direct cause first, root cause last), then
    /// related stacks. At most [`MAX_FRAMES`].
    pub frames: Vec<Frame>,
    /// True when frames were dropped past [`MAX_FRAMES`] or the text was cut
    /// at [`MAX_TRACE_BYTES`].
    pub truncated: bool,
}

impl ParsedTrace {
    /// A trace from structured frames whose first frame is the innermost
    /// (where the error was raised), as the API's `frames` field gives them.
    /// The language is the one most of the frames' file extensions suggest.
    ///
    /// ```
    /// use sigsentry_domain::correlation::{Frame, Language, ParsedTrace};
    ///
    /// let trace = ParsedTrace::from_frames(vec![Frame {
    ///     file: Some("/app/checkout/cart.py".into()),
    ///     line: Some(42),
    ///     in_app: Some(true),
    ///     ..Frame::default()
    /// }]);
    /// assert_eq!(trace.language, Language::Python);
    /// assert_eq!(trace.frames.len(), 1);
    /// ```
    pub fn from_frames(mut frames: Vec<Frame>) -> ParsedTrace {
        let truncated = frames.len() > MAX_FRAMES;
        frames.truncate(MAX_FRAMES);
        let mut votes = [0usize; Language::ALL.len()];
        for file in frames.iter().filter_map(|f| f.file.as_deref()) {
            let language = Language::from_path(file);
            if language != Language::Unknown {
                votes[language as usize] += 1;
            }
        }
        let language = best(&votes).unwrap_or(Language::Unknown);
        ParsedTrace { language, exception: None, frames, truncated }
    }

    /// True when no frame could be read.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// The language with the most votes; ties go to the earlier language of
/// [`Language::ALL`]. `None` when nothing voted.
fn best(votes: &[usize; Language::ALL.len()]) -> Option<Language> {
    let (index, &top) = votes.iter().enumerate().rev().max_by_key(|&(_, v)| *v)?;
    (top > 0).then_some(Language::ALL[index])
}

/// What a format parser hands back: frames already innermost first, in
/// their final order, and the root cause when it was seen.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub frames: Vec<Frame>,
    pub exception: Option<ExceptionInfo>,
}

/// Parses the text of an error as it appears in a log.
///
/// The format is recognised by which markers score most (`File "...",
/// line`, `at ...(Cart.java:42)`, `goroutine 1 [running]:`...); log
/// prefixes on every line (timestamps, levels, `[pod]`, kubectl and
/// docker-compose prefixes, a prefix common to every line) are stripped
/// first. Text with no recognisable frame gives [`Language::Unknown`] and
/// no frames. It never panics, and its work grows linearly with the input:
/// at most [`MAX_TRACE_BYTES`] are read and [`MAX_LINE_BYTES`] of each line.
///
/// A trace logged as one JSON string (`"Traceback...\n  File..."` with
/// escaped newlines) is unescaped first.
///
/// ```
/// use sigsentry_domain::correlation::{parse_trace, Language};
///
/// let trace = parse_trace(
///     "2026-11-22T10:00:00Z ERROR Traceback (most recent call last):\n\
///      2026-11-22T10:00:00Z ERROR   File \"/app/web/views.py\", line 12, in checkout\n\
///      2026-11-22T10:00:00Z ERROR     return cart.total()\n\
///      2026-11-22T10:00:00Z ERROR   File \"/app/checkout/cart.py\", line 42, in total\n\
///      2026-11-22T10:00:00Z ERROR     rate = rates[self.currency]\n\
///      2026-11-22T10:00:00Z ERROR KeyError: 'currency'\n",
/// );
/// assert_eq!(trace.language, Language::Python);
/// let exception = trace.exception.unwrap();
/// assert_eq!((exception.kind.as_str(), exception.message.as_str()), ("KeyError", "'currency'"));
/// // Innermost first, although Python prints it last.
/// assert_eq!(trace.frames[0].file.as_deref(), Some("/app/checkout/cart.py"));
/// assert_eq!(trace.frames[0].function.as_deref(), Some("total"));
/// assert_eq!(trace.frames[0].line, Some(42));
/// assert_eq!(trace.frames[1].function.as_deref(), Some("checkout"));
/// ```
pub fn parse_trace(text: &str) -> ParsedTrace {
    let mut truncated = text.len() > MAX_TRACE_BYTES;
    let text = clip(text, MAX_TRACE_BYTES);
    let unescaped;
    let text = if prefix::looks_json_escaped(text) {
        unescaped = prefix::unescape_json(text);
        unescaped.as_str()
    } else {
        text
    };
    let lines = prefix::clean_lines(text);
    let language = formats::detect(&lines);
    let parsed = match language {
        Language::Python => formats::python::parse(&lines),
        Language::Java => formats::java::parse(&lines),
        Language::JavaScript => formats::javascript::parse(&lines),
        Language::Go => formats::go::parse(&lines),
        Language::Rust => formats::rust::parse(&lines),
        Language::Ruby => formats::ruby::parse(&lines),
        Language::DotNet => formats::dotnet::parse(&lines),
        Language::Unknown => Parsed::default(),
    };
    let Parsed { mut frames, exception } = parsed;
    if frames.is_empty() {
        return ParsedTrace { language: Language::Unknown, exception: None, frames, truncated };
    }
    if frames.len() > MAX_FRAMES {
        frames.truncate(MAX_FRAMES);
        truncated = true;
    }
    ParsedTrace { language, exception, frames, truncated }
}

/// Reorders stacks collected in printed order into the final order and sets
/// each frame's group: `stacks` is `(group, frames innermost first)`.
pub(crate) fn assemble(mut stacks: Vec<(FrameGroup, Vec<Frame>)>) -> Vec<Frame> {
    // Stable: Raised, then causes by depth, then related stacks in order.
    stacks.sort_by_key(|(group, _)| *group);
    let mut out = Vec::new();
    for (group, frames) in stacks {
        for mut frame in frames {
            frame.group = group;
            out.push(frame);
        }
    }
    out
}

/// A chain position as a group: 0 is the reported exception.
pub(crate) fn cause(depth: usize) -> FrameGroup {
    match depth {
        0 => FrameGroup::Raised,
        n => FrameGroup::Cause(u16::try_from(n).unwrap_or(u16::MAX)),
    }
}

/// The n-th related stack as a group.
pub(crate) fn related(n: usize) -> FrameGroup {
    FrameGroup::Related(u16::try_from(n).unwrap_or(u16::MAX))
}
