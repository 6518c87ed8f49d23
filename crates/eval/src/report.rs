//! The figures, per language and overall, as a Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::score::Outcome;

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 { "-".to_owned() } else { format!("{:.0}%", 100.0 * part as f64 / whole as f64) }
}

fn row(out: &mut String, name: &str, outcomes: &[&Outcome]) {
    let n = outcomes.len();
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let frames: usize = outcomes.iter().map(|o| o.frames).sum();
    let right: usize = outcomes.iter().map(|o| o.frames_right).sum();
    let failed = count(|o| o.failed.is_some());
    let _ = writeln!(
        out,
        "| {name} | {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        pct(count(|o| o.file_first), n),
        pct(count(|o| o.function_first), n),
        pct(count(|o| o.culprit_first), n),
        pct(count(|o| o.culprit_top3), n),
        pct(right, frames),
        pct(count(|o| o.naive_file_first), n),
        pct(count(|o| o.naive_culprit_first), n),
        pct(count(|o| o.naive_culprit_top3), n),
        pct(count(|o| o.culprit_reachable), n),
        failed,
    );
}

/// The table of `outcomes`.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    out.push_str(
        "| language | cases | file first | function first | culprit PR first | culprit PR top 3 | frames mapped right \
         | naive: file first | naive: PR first | naive: PR top 3 | culprit in window | failed |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut groups: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for outcome in outcomes {
        groups.entry(outcome.group.as_str()).or_default().push(outcome);
    }
    for (group, outcomes) in &groups {
        row(&mut out, group, outcomes);
    }
    let all: Vec<&Outcome> = outcomes.iter().collect();
    row(&mut out, "**all**", &all);
    out
}
