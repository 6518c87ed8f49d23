//! The cases of `eval/cases`, as `eval/README.md` describes them: one file
//! per repository holding its paths and pull requests once, each case
//! naming its tree (ranges into the paths) and its history (a window).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One repository's file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoDoc {
    /// `owner/name` on GitHub.
    pub repository: String,
    /// The language group (`python`, `java`, ...).
    pub group: String,
    /// Its default branch.
    pub default_branch: String,
    /// Every path any case's tree holds.
    pub paths: Vec<String>,
    /// Every pull request any case's history holds.
    pub pull_requests: Vec<PullRequest>,
    /// The cases.
    pub cases: Vec<CaseDoc>,
}

/// A pull request of the history.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its author.
    pub author: Option<String>,
    /// When it merged.
    pub merged_at: DateTime<Utc>,
    /// The files it changed.
    pub files: Vec<PullRequestFile>,
}

/// A file a pull request changed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestFile {
    /// Its path after the change.
    pub path: String,
    /// Its path before, when renamed.
    pub previous_path: Option<String>,
    /// `added`, `modified`, `removed`, `renamed`.
    pub status: String,
    /// The diff's hunk headers (`@@ -a,b +c,d @@`), one per line.
    pub hunks: Option<String>,
}

/// One case as stored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseDoc {
    /// `flask-fix-751`.
    pub id: String,
    /// When the error happened.
    pub occurred_at: DateTime<Utc>,
    /// The tree at the fix's parent.
    pub tree: TreeRef,
    /// The history the case sees.
    pub pull_request_window: Window,
    /// The error as logged.
    pub stacktrace: String,
    /// What the answer should be.
    pub truth: Truth,
}

/// Ranges into the repository's `paths`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeRef {
    /// `[start, end)` index ranges.
    pub path_ranges: Vec<(usize, usize)>,
}

/// A closed time window.
#[derive(Debug, Deserialize)]
pub struct Window {
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
}

/// The known answer of a case.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Truth {
    /// The file the fix changed.
    pub file: String,
    /// The function it changed.
    pub function: String,
    /// The pull requests that introduced the changed lines (SZZ), most lines first.
    pub culprit_prs: Vec<u64>,
    /// Where the fixed function is in the trace.
    pub fixed_frame_index: usize,
    /// Every printed frame, innermost first: its repository path, or none.
    pub frames: Vec<TruthFrame>,
}

/// A frame as it should map.
#[derive(Debug, Deserialize)]
pub struct TruthFrame {
    /// The repository path, `None` for a library or native frame.
    pub path: Option<String>,
    /// The function as printed.
    pub function: Option<String>,
    /// The line as printed.
    pub line: Option<u32>,
}

/// A case with its repository's data.
#[derive(Debug, Clone)]
pub struct Case {
    /// The repository's file.
    pub doc: Arc<RepoDoc>,
    /// The case's index in it.
    pub index: usize,
}

impl Case {
    /// The case as stored.
    pub fn data(&self) -> &CaseDoc {
        &self.doc.cases[self.index]
    }

    /// The repository the stub serves this case as: one per case, since
    /// each case sees the repository as it was at its own time.
    pub fn stub_repository(&self) -> String {
        let id: String =
            self.data().id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
        format!("eval/{id}")
    }

    /// The case's tree.
    pub fn tree(&self) -> impl Iterator<Item = &str> {
        self.data().tree.path_ranges.iter().flat_map(|(a, b)| self.doc.paths[*a..*b].iter().map(String::as_str))
    }

    /// The case's history, newest merge first.
    pub fn pull_requests(&self) -> Vec<&PullRequest> {
        let window = &self.data().pull_request_window;
        let mut prs: Vec<&PullRequest> =
            self.doc.pull_requests.iter().filter(|p| p.merged_at >= window.from && p.merged_at <= window.to).collect();
        prs.sort_by(|a, b| b.merged_at.cmp(&a.merged_at).then(b.number.cmp(&a.number)));
        prs
    }
}

/// Every case under `dir` (`<group>/<owner>__<name>.json[.gz]`), those of
/// repositories or groups named in `only` when given.
///
/// # Errors
/// A file that cannot be read or parsed.
pub fn load(dir: &Path, only: &[String]) -> anyhow::Result<Vec<Case>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for group in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let group = group?.path();
        if group.is_dir() {
            for file in std::fs::read_dir(&group)? {
                files.push(file?.path());
            }
        }
    }
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !(name.ends_with(".json") || name.ends_with(".json.gz")) {
            continue;
        }
        let mut text = String::new();
        let raw = std::fs::File::open(&file)?;
        if name.ends_with(".gz") {
            flate2::read::GzDecoder::new(raw).read_to_string(&mut text)?;
        } else {
            std::io::BufReader::new(raw).read_to_string(&mut text)?;
        }
        let doc: RepoDoc = serde_json::from_str(&text).with_context(|| format!("cannot parse {}", file.display()))?;
        if !only.is_empty() && !only.iter().any(|o| *o == doc.repository || *o == doc.group) {
            continue;
        }
        let doc = Arc::new(doc);
        cases.extend((0..doc.cases.len()).map(|index| Case { doc: doc.clone(), index }));
    }
    Ok(cases)
}
