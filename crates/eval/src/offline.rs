//! `--offline`: the domain's correlation functions straight over a case's
//! data, no service, no sync: the same steps the service takes (parse, map
//! through an index of the tree, rank the window's pull requests), in
//! milliseconds, to try a ranking change before the full run measures it.

use chrono::TimeDelta;
use serde_json::{Value, json};
use sigsentry_domain::correlation::{
    CandidatePr, FrameMapping, MapOptions, PathIndex, PrFile, RankFrame, RankInput, RenameMap, classify,
    parse_hunk_ranges, parse_trace, rank,
};

use crate::dataset::Case;

/// The `data` the service would answer for `case`, as far as scoring reads it.
pub fn answer(case: &Case, lookback: TimeDelta) -> Value {
    let data = case.data();
    let repository = case.doc.repository.as_str();
    let trace = parse_trace(&data.stacktrace);
    let index: PathIndex = case.tree().map(|path| (repository, path)).collect();
    let mappings = index.map_trace(&trace, &MapOptions::default());
    let pull_requests = case
        .pull_requests()
        .into_iter()
        .filter(|p| p.merged_at <= data.occurred_at && p.merged_at >= data.occurred_at - lookback)
        .map(|p| CandidatePr {
            repository: repository.to_owned(),
            number: p.number,
            title: p.title.clone(),
            author: p.author.clone(),
            url: String::new(),
            merged_at: p.merged_at,
            files: p
                .files
                .iter()
                .map(|f| PrFile {
                    path: f.path.clone(),
                    previous_path: f.previous_path.clone(),
                    ranges: f.hunks.as_deref().map(parse_hunk_ranges).unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let ranking = rank(RankInput {
        frames: RankFrame::from_mappings(&trace, &mappings),
        pull_requests,
        renames: RenameMap::new(),
        occurred_at: data.occurred_at,
        lookback,
        limit: 10,
    });
    let frames: Vec<Value> = trace
        .frames
        .iter()
        .zip(&mappings)
        .map(|(frame, mapping)| {
            let path = match mapping {
                FrameMapping::Mapped(m) => json!({"path": m.file.path}),
                FrameMapping::Unmapped(_) => Value::Null,
            };
            json!({
                "function": frame.function, "line": frame.line,
                "inApp": classify(frame, trace.language) == sigsentry_domain::correlation::FrameClass::InApp,
                "mapping": path,
            })
        })
        .collect();
    json!({
        "frames": frames,
        "suspectFiles": ranking.suspect_files.iter().map(|f| json!({"path": f.path, "function": f.function, "score": f.score})).collect::<Vec<_>>(),
        "suspectPullRequests": ranking.suspect_pull_requests.iter().map(|p| json!({"number": p.number, "score": p.score, "reasons": p.reasons})).collect::<Vec<_>>(),
    })
}
