//! What repository path a frame's file could be: the path components to
//! match from the end.

use super::trace::{Frame, Language};

/// The path components a frame's file may end with, in order; each
/// alternative is tried and the best match counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suffixes {
    pub alternatives: Vec<Vec<String>>,
    /// Windows paths compare without regard to ASCII case.
    pub ignore_case: bool,
}

impl Suffixes {
    /// The longest alternative joined with `/`, for messages.
    pub fn display(&self) -> String {
        self.alternatives.iter().max_by_key(|a| a.len()).map(|a| a.join("/")).unwrap_or_default()
    }
}

/// The components to look for. `None` when the frame has no usable path.
///
/// - JVM frames: the package of the class as directories plus the file name
///   (`com.acme.cart.Cart` in `Cart.java` gives `com/acme/cart/Cart.java`);
///   without a file name, `Outer.java` and `Outer.kt` from the class (and
///   `Pricing.kt` for Kotlin's `PricingKt`).
/// - Go frames: the file's path, and the package's import path plus the
///   file name (`github.com/acme/svc/internal/cart` + `cart.go`).
/// - Others: the file's path, normalised: URL schemes (`file://`,
///   `webpack://`, `http://host`) and query strings dropped, `\` read as
///   `/`, a drive letter dropped, `.` and `..` resolved.
pub(crate) fn suffixes(frame: &Frame, language: Language) -> Option<Suffixes> {
    let file = frame.file.as_deref().filter(|f| !f.trim().is_empty());
    let ignore_case = file.is_some_and(is_windows);
    let mut alternatives = Vec::new();
    let path = file.map(normalize).unwrap_or_default();
    match language {
        Language::Java => {
            let class = frame.module.as_deref().unwrap_or("");
            let (package, simple) = class.rsplit_once('.').unwrap_or(("", class));
            let outer = simple.split('$').next().unwrap_or(simple);
            let dirs: Vec<String> = package.split('.').filter(|p| !p.is_empty()).map(str::to_owned).collect();
            let names: Vec<String> = match path.last() {
                Some(name) => vec![name.clone()],
                None if !outer.is_empty() => {
                    let mut names = vec![format!("{outer}.java"), format!("{outer}.kt")];
                    // Kotlin's top-level functions live in class `FileKt`.
                    if let Some(kotlin) = outer.strip_suffix("Kt").filter(|k| !k.is_empty()) {
                        names.push(format!("{kotlin}.kt"));
                    }
                    names
                }
                None => Vec::new(),
            };
            for name in names {
                let mut alternative = dirs.clone();
                alternative.push(name);
                alternatives.push(alternative);
            }
        }
        Language::Go => {
            if let (Some(module), Some(name)) = (frame.module.as_deref(), path.last())
                && module.contains('/')
            {
                let mut alternative: Vec<String> = module.split('/').map(str::to_owned).collect();
                alternative.push(name.clone());
                alternatives.push(alternative);
            }
            if !path.is_empty() {
                alternatives.push(path);
            }
        }
        _ => {
            if !path.is_empty() {
                alternatives.push(path);
            }
        }
    }
    alternatives.retain(|a| !a.is_empty());
    (!alternatives.is_empty()).then_some(Suffixes { alternatives, ignore_case })
}

fn is_windows(file: &str) -> bool {
    let bytes = file.as_bytes();
    file.contains('\\') || (bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && bytes[2] == b'/')
}

/// A runtime path as components, without scheme, host, query, drive, `.`
/// or `..`.
pub(crate) fn normalize(file: &str) -> Vec<String> {
    let mut rest = file.trim();
    for scheme in ["webpack-internal:///", "webpack:///", "file://", "app:///"] {
        if let Some(after) = rest.strip_prefix(scheme) {
            rest = after;
            break;
        }
    }
    if let Some(after) = rest.strip_prefix("webpack://") {
        // `webpack://my-app/./src/x.ts`: the first part names the bundle.
        rest = after.split_once('/').map_or("", |(_, path)| path);
    } else if let Some(at) = rest.find("://") {
        // `https://cdn.example.com/assets/app.js?v=3`: drop the host.
        let after = rest.get(at + 3..).unwrap_or("");
        rest = after.split_once('/').map_or("", |(_, path)| path);
        rest = rest.split(['?', '#']).next().unwrap_or(rest);
    }
    let mut parts: Vec<String> = Vec::new();
    for (i, part) in rest.split(['/', '\\']).enumerate() {
        match part {
            "" | "." | "~" => {}
            ".." => {
                parts.pop();
            }
            drive if i == 0 && drive.len() == 2 && drive.ends_with(':') => {}
            part => parts.push(part.to_owned()),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: Option<&str>, module: Option<&str>) -> Frame {
        Frame { file: file.map(Into::into), module: module.map(Into::into), ..Frame::default() }
    }

    #[test]
    fn normalizes_runtime_paths() {
        assert_eq!(normalize("/app/checkout/cart.py"), ["app", "checkout", "cart.py"]);
        assert_eq!(normalize("webpack:///./src/x.ts"), ["src", "x.ts"]);
        assert_eq!(normalize("webpack://shop/./src/x.ts"), ["src", "x.ts"]);
        assert_eq!(normalize("file:///app/src/x.js"), ["app", "src", "x.js"]);
        assert_eq!(normalize("C:\\src\\App\\File.cs"), ["src", "App", "File.cs"]);
        assert_eq!(normalize("https://cdn.acme.io/assets/app.js?v=3"), ["assets", "app.js"]);
        assert_eq!(normalize("/app/src/../lib/x.py"), ["app", "lib", "x.py"]);
    }

    #[test]
    fn jvm_frames_use_the_package() {
        let s = suffixes(&frame(Some("Cart.java"), Some("com.acme.cart.Cart$Inner")), Language::Java).unwrap();
        assert_eq!(s.alternatives, vec![vec!["com", "acme", "cart", "Cart.java"]]);
        let s = suffixes(&frame(None, Some("com.acme.cart.Cart")), Language::Java).unwrap();
        assert_eq!(s.alternatives.len(), 2);
        assert_eq!(s.alternatives[1], ["com", "acme", "cart", "Cart.kt"]);
    }

    #[test]
    fn go_frames_use_the_import_path_too() {
        let f = frame(Some("/build/internal/cart/cart.go"), Some("github.com/acme/svc/internal/cart"));
        let s = suffixes(&f, Language::Go).unwrap();
        assert_eq!(s.alternatives[0], ["github.com", "acme", "svc", "internal", "cart", "cart.go"]);
        assert_eq!(s.alternatives[1], ["build", "internal", "cart", "cart.go"]);
    }
}
