//! Links to a line of a file on the platform's web UI.

use crate::Platform;

/// The web UI's link to `line` of `path` in `repository` at `branch`:
///
/// - GitHub: `{root}/{repo}/blob/{branch}/{path}#L42`
/// - GitLab: `{root}/{repo}/-/blob/{branch}/{path}#L42`
/// - Bitbucket: `{root}/{repo}/src/{branch}/{path}#lines-42`
///
/// `web_root` is the platform's web address (`https://github.com`, or the
/// self-hosted one); a trailing `/` is ignored. Each segment of the branch
/// and the path is percent-encoded (spaces, `#`, `?`, `%`, non-ASCII), the
/// `/` between segments kept. Without a line, the link is to the file.
///
/// ```
/// use sigsentry_domain::Platform;
/// use sigsentry_domain::correlation::line_url;
///
/// assert_eq!(
///     line_url(Platform::GitLab, "https://gitlab.com/", "acme/shop", "main", "src/a b#1.py", Some(42)),
///     "https://gitlab.com/acme/shop/-/blob/main/src/a%20b%231.py#L42",
/// );
/// ```
pub fn line_url(
    platform: Platform,
    web_root: &str,
    repository: &str,
    branch: &str,
    path: &str,
    line: Option<u32>,
) -> String {
    let root = web_root.trim_end_matches('/');
    let repository = repository.trim_matches('/');
    let branch = encode_segments(branch);
    let path = encode_segments(path.trim_start_matches('/'));
    let (middle, anchor) = match platform {
        Platform::GitHub => ("blob", "L"),
        Platform::GitLab => ("-/blob", "L"),
        Platform::Bitbucket => ("src", "lines-"),
    };
    let mut url = format!("{root}/{repository}/{middle}/{branch}/{path}");
    if let Some(line) = line {
        url.push('#');
        url.push_str(anchor);
        url.push_str(&line.to_string());
    }
    url
}

/// Percent-encodes every byte that is not an RFC 3986 `pchar`, except `/`.
fn encode_segments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform() {
        let url = |p| line_url(p, "https://x.test", "acme/shop", "release/1.2", "src/cart.py", Some(7));
        assert_eq!(url(Platform::GitHub), "https://x.test/acme/shop/blob/release/1.2/src/cart.py#L7");
        assert_eq!(url(Platform::GitLab), "https://x.test/acme/shop/-/blob/release/1.2/src/cart.py#L7");
        assert_eq!(url(Platform::Bitbucket), "https://x.test/acme/shop/src/release/1.2/src/cart.py#lines-7");
        let file = line_url(Platform::GitHub, "https://github.com", "a/b", "main", "dir/ü?.py", None);
        assert_eq!(file, "https://github.com/a/b/blob/main/dir/%C3%BC%3F.py");
        let pct = line_url(Platform::GitHub, "https://github.com", "a/b", "main", "100%.txt", Some(1));
        assert_eq!(pct, "https://github.com/a/b/blob/main/100%25.txt#L1");
    }
}
