//! Which frames are the application's and which belong to a runtime, the
//! standard library or a dependency.

use super::trace::{Frame, Language};

/// What kind of code a frame points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// Application code: worth mapping to a repository.
    InApp,
    /// A runtime, standard library or dependency; the phrase says which,
    /// e.g. `a third-party package (site-packages)`.
    Library(&'static str),
    /// The frame has no path to map (`<anonymous>`, `Native Method`).
    NoFile,
}

/// Path fragments that mark library code, in every language. Checked on
/// the path with `\` turned into `/`.
const PATHS: [(&str, &str); 17] = [
    ("/site-packages/", "a third-party package (site-packages)"),
    ("/dist-packages/", "a system-installed package (dist-packages)"),
    ("<frozen ", "the Python runtime (a frozen module)"),
    ("node_modules/", "a dependency (node_modules)"),
    ("/rustc/", "the Rust standard library (/rustc/)"),
    ("cargo/registry/", "a crate from the Cargo registry (cargo/registry)"),
    (".cargo/git/", "a crate from a git dependency (.cargo/git)"),
    ("library/std/src/", "the Rust standard library (library/std)"),
    ("library/core/src/", "the Rust core library (library/core)"),
    ("library/alloc/src/", "the Rust alloc library (library/alloc)"),
    ("/usr/local/go/src/", "the Go standard library (GOROOT)"),
    ("/usr/lib/go/src/", "the Go standard library (GOROOT)"),
    ("/pkg/mod/", "a Go module dependency (pkg/mod)"),
    ("/gems/", "a gem (/gems/)"),
    ("rubygems", "RubyGems"),
    ("<internal:", "the Ruby runtime (<internal:...>)"),
    ("/vendor/bundle/", "a gem (vendor/bundle)"),
];

/// JVM packages of the runtime and the Kotlin and Scala standard libraries.
const JVM_PACKAGES: [(&str, &str); 9] = [
    ("java.", "the Java standard library (java.*)"),
    ("javax.", "the Java standard library (javax.*)"),
    ("jdk.", "the JDK (jdk.*)"),
    ("sun.", "the JDK (sun.*)"),
    ("com.sun.", "the JDK (com.sun.*)"),
    ("kotlin.", "the Kotlin standard library (kotlin.*)"),
    ("kotlinx.", "a Kotlin library (kotlinx.*)"),
    ("scala.", "the Scala standard library (scala.*)"),
    ("jakarta.", "the Jakarta EE API (jakarta.*)"),
];

/// .NET namespaces of the runtime and Microsoft's frameworks.
const DOTNET_NAMESPACES: [(&str, &str); 2] =
    [("System.", "the .NET runtime (System.*)"), ("Microsoft.", "a Microsoft framework (Microsoft.*)")];

/// Rust functions of the standard library and the runtime's entry points.
const RUST_FUNCTIONS: [&str; 11] = [
    "__rustc::",
    "core::",
    "std::",
    "alloc::",
    "<core::",
    "<std::",
    "<alloc::",
    "rust_begin_unwind",
    "__rust",
    "__libc_start",
    "_start",
];

/// Top-level packages of Go's standard library, for `-trimpath` builds
/// whose standard-library paths are relative (`runtime/panic.go`).
const GO_STD: [&str; 30] = [
    "runtime", "net", "os", "sync", "reflect", "encoding", "fmt", "io", "internal", "syscall", "testing", "context",
    "database", "crypto", "strings", "strconv", "bufio", "bytes", "errors", "log", "math", "sort", "time", "unicode",
    "path", "html", "text", "mime", "compress", "regexp",
];

/// Classifies `frame`. An explicit `in_app` wins; then paths, packages and
/// function names of runtimes and dependencies mark library code; a frame
/// with nothing to map is [`FrameClass::NoFile`].
///
/// A JVM frame without a file (`Unknown Source`) but with an application
/// class is [`FrameClass::InApp`]: its class still names its file.
///
/// ```
/// use sigsentry_domain::correlation::{classify, Frame, FrameClass, Language};
///
/// let flask = Frame {
///     file: Some("/usr/local/lib/python3.12/site-packages/flask/app.py".into()),
///     ..Frame::default()
/// };
/// assert_eq!(classify(&flask, Language::Python), FrameClass::Library("a third-party package (site-packages)"));
/// let mine = Frame { file: Some("/app/checkout/cart.py".into()), ..Frame::default() };
/// assert_eq!(classify(&mine, Language::Python), FrameClass::InApp);
/// ```
pub fn classify(frame: &Frame, language: Language) -> FrameClass {
    let file = frame.file.as_deref().filter(|f| !f.trim().is_empty());
    let has_class = language == Language::Java && frame.module.as_deref().is_some_and(|m| !m.is_empty());
    let nothing_to_map = file.is_none() && !has_class;
    match frame.in_app {
        Some(true) if nothing_to_map => return FrameClass::NoFile,
        Some(true) => return FrameClass::InApp,
        Some(false) => return FrameClass::Library("code marked as not in-app (inApp: false)"),
        None => {}
    }
    if let Some(why) = file.and_then(|f| library_path(f, language)) {
        return FrameClass::Library(why);
    }
    if let Some(why) = library_name(frame, language) {
        return FrameClass::Library(why);
    }
    if nothing_to_map
        || file.is_some_and(|f| matches!(f, "<anonymous>" | "native" | "<unknown>" | "<string>" | "<stdin>"))
    {
        return FrameClass::NoFile;
    }
    FrameClass::InApp
}

fn library_path(file: &str, language: Language) -> Option<&'static str> {
    let path = file.replace('\\', "/");
    if let Some((_, why)) = PATHS.iter().find(|(fragment, _)| path.contains(fragment)) {
        return Some(why);
    }
    if path.starts_with("node:") {
        return Some("the Node.js runtime (node:)");
    }
    if python_stdlib(&path) {
        return Some("the Python standard library");
    }
    if ruby_stdlib(&path) {
        return Some("the Ruby standard library");
    }
    match language {
        Language::JavaScript if path.starts_with("internal/") => Some("the Node.js runtime (internal/)"),
        Language::Go => go_library(&path),
        _ => None,
    }
}

/// `/usr/lib/python3.12/json/decoder.py`, `/usr/local/lib/python3.12/...`,
/// `~/.pyenv/versions/3.12.1/lib/python3.12/...`, `C:/Python312/Lib/...`.
fn python_stdlib(path: &str) -> bool {
    let unix = path.find("/lib/python").is_some_and(|at| {
        let rest = path.get(at + 11..).unwrap_or("");
        rest.starts_with(|c: char| c.is_ascii_digit())
    });
    unix || path.to_ascii_lowercase().contains("/python3") && path.contains("/Lib/")
}

/// `/usr/local/lib/ruby/3.3.0/json/common.rb`.
fn ruby_stdlib(path: &str) -> bool {
    path.find("/ruby/").is_some_and(|at| {
        let rest = path.get(at + 6..).unwrap_or("");
        let version = rest.split('/').next().unwrap_or("");
        version.ends_with(".0") && version.starts_with(|c: char| c.is_ascii_digit())
    })
}

fn go_library(path: &str) -> Option<&'static str> {
    if path.contains("/vendor/") || path.starts_with("vendor/") {
        return Some("a vendored dependency (vendor/)");
    }
    if path.split('/').any(|part| part.contains("@v")) {
        return Some("a Go module dependency (module@version)");
    }
    if path.contains("/go/src/runtime/") || path.contains("/libexec/src/") {
        return Some("the Go standard library (GOROOT)");
    }
    let first = path.split('/').next().unwrap_or("");
    (!path.starts_with('/') && GO_STD.contains(&first)).then_some("the Go standard library")
}

fn library_name(frame: &Frame, language: Language) -> Option<&'static str> {
    let module = frame.module.as_deref().unwrap_or("");
    let function = frame.function.as_deref().unwrap_or("");
    match language {
        Language::Java => JVM_PACKAGES.iter().find(|(p, _)| module.starts_with(p)).map(|(_, why)| *why),
        Language::DotNet => {
            if function.starts_with("lambda_method") {
                return Some("code generated by the .NET runtime");
            }
            let module = module.strip_prefix("at ").unwrap_or(module);
            DOTNET_NAMESPACES
                .iter()
                .find(|(p, _)| module.starts_with(p) || module == p.trim_end_matches('.'))
                .map(|(_, why)| *why)
        }
        Language::Rust => {
            RUST_FUNCTIONS.iter().any(|p| function.starts_with(p)).then_some("the Rust standard library (std::/core::)")
        }
        Language::Go => {
            let first = module.split('/').next().unwrap_or("");
            GO_STD.contains(&first).then_some("the Go standard library")
        }
        _ => None,
    }
}
