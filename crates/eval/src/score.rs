//! Scoring one answer against a case's truth, and the two naive baselines.

use chrono::TimeDelta;
use serde_json::Value;

use crate::dataset::Case;

/// How one case went.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The language group.
    pub group: String,
    /// Suspect file first is the fixed file.
    pub file_first: bool,
    /// ... and its function is the fixed one.
    pub function_first: bool,
    /// The first suspect PR is a culprit.
    pub culprit_first: bool,
    /// A culprit is among the first three.
    pub culprit_top3: bool,
    /// A culprit merged inside the lookback window (else no ranking can find it).
    pub culprit_reachable: bool,
    /// Frames of the truth.
    pub frames: usize,
    /// Of those, mapped (or left unmapped) as the truth says.
    pub frames_right: usize,
    /// Baseline: the first in-app frame's file is the fixed file.
    pub naive_file_first: bool,
    /// Baseline: the latest PR touching that file is a culprit.
    pub naive_culprit_first: bool,
    /// Baseline: a culprit is among the latest three PRs touching it.
    pub naive_culprit_top3: bool,
    /// The service did not answer the case.
    pub failed: Option<String>,
    /// What was expected and what came first, for `--details`.
    pub detail: serde_json::Value,
}

/// The last identifier of a function as printed (`Cart.total`, `(*Cart).Total`,
/// `Cart#total`, `cart::total`, `total(args)` all give the name).
fn function_name(text: &str) -> String {
    // An argument list at the end goes (`Total(Decimal x)`); a receiver in
    // the middle stays (`(*Cart).Total`).
    let mut text = text.trim();
    if text.ends_with(')')
        && let Some(open) = matching_open(text)
    {
        text = &text[..open];
    }
    text.rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .find(|part| !part.is_empty())
        .unwrap_or("")
        .to_owned()
}

/// Where the parenthesis that the final `)` closes opens.
fn matching_open(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn same_function(a: &str, b: &str) -> bool {
    let (a, b) = (function_name(a), function_name(b));
    !a.is_empty() && a.eq_ignore_ascii_case(&b)
}

/// Scores `answer` (the `data` of a correlation) for `case`.
pub fn score(case: &Case, answer: &Value, lookback: TimeDelta) -> Outcome {
    let data = case.data();
    let truth = &data.truth;
    let mut outcome = Outcome { group: case.doc.group.clone(), ..Outcome::default() };

    let files = answer["suspectFiles"].as_array().cloned().unwrap_or_default();
    if let Some(first) = files.first() {
        outcome.file_first = first["path"].as_str() == Some(truth.file.as_str());
        let expected = truth.frames.get(truth.fixed_frame_index).and_then(|f| f.function.as_deref());
        let found = first["function"].as_str();
        outcome.function_first = outcome.file_first
            && match (expected, found) {
                (Some(expected), Some(found)) => {
                    same_function(expected, found) || same_function(&truth.function, found)
                }
                _ => false,
            };
    }
    let prs: Vec<u64> = answer["suspectPullRequests"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["number"].as_u64()).collect())
        .unwrap_or_default();
    outcome.culprit_first = prs.first().is_some_and(|n| truth.culprit_prs.contains(n));
    outcome.culprit_top3 = prs.iter().take(3).any(|n| truth.culprit_prs.contains(n));
    let window_start = data.occurred_at - lookback;
    let history = case.pull_requests();
    outcome.culprit_reachable = history.iter().any(|p| {
        truth.culprit_prs.contains(&p.number) && p.merged_at >= window_start && p.merged_at <= data.occurred_at
    });

    outcome.detail = serde_json::json!({
        "id": data.id,
        "expected": {"file": truth.file, "function": truth.frames.get(truth.fixed_frame_index).and_then(|f| f.function.clone()), "culprits": truth.culprit_prs},
        "first": {"files": files.iter().take(3).map(|f| serde_json::json!([f["path"], f["function"], f["score"]])).collect::<Vec<_>>(),
                  "prs": answer["suspectPullRequests"].as_array().map(|a| a.iter().take(3).map(|p| serde_json::json!([p["number"], p["score"], p["reasons"]])).collect::<Vec<_>>())},
    });

    // Frames: by position when the counts agree, else by function and line.
    let frames = answer["frames"].as_array().cloned().unwrap_or_default();
    outcome.frames = truth.frames.len();
    for (i, expected) in truth.frames.iter().enumerate() {
        let found = if frames.len() == truth.frames.len() {
            frames.get(i)
        } else {
            frames.iter().find(|f| {
                f["line"].as_u64() == expected.line.map(u64::from)
                    && match (expected.function.as_deref(), f["function"].as_str()) {
                        (Some(a), Some(b)) => same_function(a, b),
                        (None, None) => true,
                        _ => false,
                    }
            })
        };
        let mapped = found.and_then(|f| f["mapping"]["path"].as_str());
        let right = match (&expected.path, found) {
            (Some(path), Some(_)) => mapped == Some(path.as_str()),
            (None, Some(_)) => mapped.is_none(),
            (_, None) => false,
        };
        outcome.frames_right += usize::from(right);
    }

    // Baselines: the first in-app mapped frame's file, and the latest PRs that touched it.
    let naive_file = frames
        .iter()
        .find(|f| f["inApp"].as_bool() == Some(true) && f["mapping"].is_object())
        .and_then(|f| f["mapping"]["path"].as_str());
    if let Some(file) = naive_file {
        outcome.naive_file_first = file == truth.file;
        let latest: Vec<u64> = history
            .iter()
            .filter(|p| p.merged_at >= window_start && p.merged_at <= data.occurred_at)
            .filter(|p| p.files.iter().any(|f| f.path == file || f.previous_path.as_deref() == Some(file)))
            .take(3)
            .map(|p| p.number)
            .collect();
        outcome.naive_culprit_first = latest.first().is_some_and(|n| truth.culprit_prs.contains(n));
        outcome.naive_culprit_top3 = latest.iter().any(|n| truth.culprit_prs.contains(n));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_as_each_language_prints_them() {
        for (printed, name) in [
            ("total", "total"),
            ("com.acme.Cart.total", "total"),
            ("(*Cart).Total", "Total"),
            ("Cart#total", "total"),
            ("acme::cart::total", "total"),
            ("Acme.Cart.Total(Decimal x)", "Total"),
            ("block in total", "total"),
            ("github.com/gin-gonic/gin.(*RouterGroup).createStaticHandler", "createStaticHandler"),
            (
                "AutoMapper.ConfigurationStore.IncludeBaseMappings(TypePair types, TypeMap typeMap)",
                "IncludeBaseMappings",
            ),
            ("(*Cart).Total", "Total"),
        ] {
            assert_eq!(function_name(printed), name, "{printed}");
        }
    }
}
