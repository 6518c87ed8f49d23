//! Ranking suspect files and pull requests for an error.
//!
//! # Scoring
//!
//! **Frame weight.** Frames count by their depth among the mapped frames of
//! their stack: `max(0.2, 0.6^depth)`, so the raising frame counts most and
//! callers less but never nothing. The reported exception's stack and the
//! root cause's stack count fully, intermediate causes × 0.8, related
//! stacks (suppressed exceptions, other goroutines) × 0.3.
//!
//! **Proximity** of a pull request's change to a frame's line: changed
//! lines within 3 lines of it: 1.0; within 30 lines (the same function,
//! roughly): 0.8 falling to 0.4; elsewhere in the file, or no line
//! information (binary, too large, or changed under an earlier name): 0.25.
//!
//! **Recency**, counted back from when the error occurred:
//! `0.4 + 0.6 × 0.5^(age / 21 days)`: a change from yesterday is close to
//! 1, one from three weeks ago 0.7, one from a year ago 0.4: a recent change
//! says more, but an old one that touched the very lines around a frame
//! still says much (measured: culprits found by SZZ on real history are
//! often months old; see `docs/correlation.md`). **Size**: a pull request
//! that changed many files says less about each:
//! `1 / (1 + 0.05 × ln(files))`.
//!
//! **A pull request's score** is the noisy-or over the frames it touches
//! of `weight × proximity × recency × size`: several touched frames add
//! up, and the score stays below 1.
//!
//! **A file's score** is `weight × (0.4 + 0.6 × evidence)`, with `weight`
//! its best frame's weight and `evidence` the noisy-or over pull requests
//! of `proximity × recency × size` for the file's frames: the raising file
//! leads when nothing changed, and a caller whose lines changed recently
//! overtakes it. The function and line shown for a file are its frame's
//! with the strongest case (weight, and the changes near that frame's line).
//!
//! Ties go to the newer merge, then the higher number (pull requests), and
//! to the frame nearer the top of the trace (files). Pull requests merged
//! after the error occurred, or before the lookback window, are never
//! suspects.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::hunks::LineRange;
use super::outcome::{FrameMapping, RepoPath};
use super::renames::RenameMap;
use super::trace::{FrameGroup, ParsedTrace};

/// A mapped frame, as the ranking needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankFrame {
    /// The frame's index in the trace (0 = innermost).
    pub index: usize,
    /// The repository file it maps to.
    pub file: RepoPath,
    /// Its line.
    pub line: Option<u32>,
    /// Its function.
    pub function: Option<String>,
    /// Which stack of the trace it belongs to.
    pub group: FrameGroup,
}

impl RankFrame {
    /// The mapped frames of `trace`, given one mapping per frame (as
    /// [`PathIndex::map_trace`](super::PathIndex::map_trace) returns them).
    pub fn from_mappings(trace: &ParsedTrace, mappings: &[FrameMapping]) -> Vec<RankFrame> {
        trace
            .frames
            .iter()
            .zip(mappings)
            .enumerate()
            .filter_map(|(index, (frame, mapping))| {
                mapping.mapped().map(|mapped| RankFrame {
                    index,
                    file: mapped.file.clone(),
                    line: frame.line,
                    function: frame.function.clone(),
                    group: frame.group,
                })
            })
            .collect()
    }
}

/// One file a pull request changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrFile {
    /// The path in the pull request (after its change).
    pub path: String,
    /// The path before, when the pull request renamed the file.
    pub previous_path: Option<String>,
    /// New-side changed lines; empty when unknown (binary or large files).
    pub ranges: Vec<LineRange>,
}

/// A merged pull (merge) request that may have caused the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidatePr {
    /// The repository key.
    pub repository: String,
    /// Its number on the platform.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its author's login, when known.
    pub author: Option<String>,
    /// Its web address.
    pub url: String,
    /// When it was merged.
    pub merged_at: DateTime<Utc>,
    /// The files it changed.
    pub files: Vec<PrFile>,
}

/// Everything the ranking looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankInput {
    /// The mapped frames (unmapped frames cannot be suspects).
    pub frames: Vec<RankFrame>,
    /// Pull requests of the frames' repositories; those outside the window
    /// are ignored.
    pub pull_requests: Vec<CandidatePr>,
    /// Renames known besides those the pull requests above record.
    pub renames: RenameMap,
    /// When the error occurred.
    pub occurred_at: DateTime<Utc>,
    /// How far back pull requests count.
    pub lookback: TimeDelta,
    /// At most this many suspects of each kind.
    pub limit: usize,
}

/// A file that may hold the bug.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectFile {
    /// The repository key.
    pub repository: String,
    /// The path in the repository.
    pub path: String,
    /// The function of its most important frame.
    pub function: Option<String>,
    /// The line of its most important frame.
    pub line: Option<u32>,
    /// 0 to 1, higher is more suspect.
    pub score: f64,
    /// Indexes of the trace's frames in this file.
    pub frames: Vec<usize>,
    /// Why, in sentences a person can check.
    pub reasons: Vec<String>,
}

/// A pull request that may have caused the error.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectPullRequest {
    /// The repository key.
    pub repository: String,
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its author.
    pub author: Option<String>,
    /// Its web address.
    pub url: String,
    /// When it was merged.
    pub merged_at: DateTime<Utc>,
    /// 0 to 1, higher is more suspect.
    pub score: f64,
    /// The frames' files it changed (current paths).
    pub files: Vec<String>,
    /// Why, in sentences a person can check.
    pub reasons: Vec<String>,
}

/// The suspects, best first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ranking {
    /// At most `limit` files.
    pub suspect_files: Vec<SuspectFile>,
    /// At most `limit` pull requests.
    pub suspect_pull_requests: Vec<SuspectPullRequest>,
}

/// Half-life of a change's weight, in days.
const HALF_LIFE_DAYS: f64 = 21.0;
/// What a change counts for however old it is, within the window.
const RECENCY_FLOOR: f64 = 0.4;
/// How much each further frame of a stack counts, relative to the one above.
const DEPTH_DECAY: f64 = 0.6;
/// A file's score with no change to it, per unit of frame weight.
const FILE_BASE: f64 = 0.4;
/// Changed lines this close to a frame's line are "around" it.
const NEAR: u32 = 3;
/// Changed lines this close are in the same function, roughly.
const SAME_FUNCTION: u32 = 30;
/// Proximity of a change elsewhere in the file, or without lines.
const FILE_LEVEL: f64 = 0.25;

/// A frame with its weight.
#[derive(Debug, Clone)]
struct Weighted {
    frame: RankFrame,
    weight: f64,
    /// Innermost mapped frame of the reported stack or of the root cause.
    role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Raised,
    RootCause,
    Caller,
}

/// How one pull request's file entry bears on one frame.
#[derive(Debug, Clone)]
struct Hit {
    frame: usize,
    proximity: f64,
    /// The nearest changed range, when lines count.
    nearest: Option<(LineRange, u32)>,
    /// The path the pull request changed, when it is an earlier name.
    earlier_name: Option<String>,
    /// The pull request's file entry had changed lines.
    lines_known: bool,
}

/// Ranks suspect files and pull requests; see the module documentation for
/// the scoring.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use sigsentry_domain::correlation::{
///     CandidatePr, FrameGroup, LineRange, PrFile, RankFrame, RankInput, RenameMap, RepoPath, rank,
/// };
///
/// let occurred_at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
/// let frame = |index, path: &str, line| RankFrame {
///     index,
///     file: RepoPath { repository: "acme/shop".into(), path: path.into() },
///     line: Some(line),
///     function: None,
///     group: FrameGroup::Raised,
/// };
/// let pr = |number, days, path: &str, lines: (u32, u32)| CandidatePr {
///     repository: "acme/shop".into(),
///     number,
///     title: format!("PR {number}"),
///     author: Some("jdoe".into()),
///     url: format!("https://github.com/acme/shop/pull/{number}"),
///     merged_at: occurred_at - TimeDelta::days(days),
///     files: vec![PrFile { path: path.into(), previous_path: None, ranges: vec![LineRange::new(lines.0, lines.1)] }],
/// };
/// let ranking = rank(RankInput {
///     frames: vec![frame(0, "checkout/cart.py", 42), frame(1, "web/views.py", 12)],
///     pull_requests: vec![
///         pr(399, 25, "checkout/cart.py", (300, 310)), // far away, weeks ago
///         pr(412, 2, "checkout/cart.py", (38, 47)),    // around frame 0, two days ago
///     ],
///     renames: RenameMap::new(),
///     occurred_at,
///     lookback: TimeDelta::days(30),
///     limit: 5,
/// });
/// assert_eq!(ranking.suspect_files[0].path, "checkout/cart.py");
/// assert_eq!(ranking.suspect_files[0].reasons[0], "the error was raised here");
/// assert_eq!(ranking.suspect_pull_requests[0].number, 412);
/// assert_eq!(
///     ranking.suspect_pull_requests[0].reasons,
///     ["changed lines 38-47 of checkout/cart.py; frame 0 is at line 42", "merged 2 days before"],
/// );
/// ```
pub fn rank(input: RankInput) -> Ranking {
    let RankInput { frames, pull_requests, mut renames, occurred_at, lookback, limit } = input;
    if limit == 0 || frames.is_empty() {
        return Ranking::default();
    }
    let weighted = weigh(frames);
    let mut by_file: BTreeMap<RepoPath, Vec<usize>> = BTreeMap::new();
    for (i, w) in weighted.iter().enumerate() {
        by_file.entry(w.frame.file.clone()).or_default().push(i);
    }
    // Repository, then path: lookups per pull-request file borrow `&str`.
    let mut lookup: BTreeMap<&str, BTreeMap<&str, &RepoPath>> = BTreeMap::new();
    for file in by_file.keys() {
        lookup.entry(file.repository.as_str()).or_default().insert(file.path.as_str(), file);
    }

    let earliest = occurred_at - lookback;
    let mut seen = BTreeSet::new();
    let mut prs: Vec<CandidatePr> = pull_requests
        .into_iter()
        .filter(|pr| pr.merged_at <= occurred_at && pr.merged_at >= earliest)
        .filter(|pr| seen.insert((pr.repository.clone(), pr.number)))
        .collect();
    // Scores are products of floats: a fixed order makes them bit-for-bit
    // the same whatever order the caller listed the pull requests in.
    prs.sort_by(|a, b| a.repository.cmp(&b.repository).then(a.number.cmp(&b.number)));
    for pr in &prs {
        for file in &pr.files {
            if let Some(previous) = &file.previous_path {
                renames.insert(&pr.repository, previous, &file.path, pr.merged_at);
            }
        }
    }

    // Evidence, per pull request: its hits on frames.
    let mut evidence: Vec<(usize, Vec<(RepoPath, Hit)>)> = Vec::new();
    for (p, pr) in prs.iter().enumerate() {
        let mut hits: BTreeMap<usize, (RepoPath, Hit)> = BTreeMap::new();
        for file in &pr.files {
            let renamed = renames.renamed(&pr.repository, &file.path, pr.merged_at);
            let current = renamed.as_deref().unwrap_or(&file.path);
            let Some(key) = lookup.get(pr.repository.as_str()).and_then(|paths| paths.get(current)) else { continue };
            let Some(frame_ids) = by_file.get(*key) else { continue };
            let earlier_name = renamed.is_some().then(|| file.path.clone());
            for &f in frame_ids {
                let hit = hit_for(&weighted[f].frame, file, f, earlier_name.clone());
                let better = hits.get(&f).is_none_or(|(_, old)| old.proximity < hit.proximity);
                if better {
                    hits.insert(f, ((*key).clone(), hit));
                }
            }
        }
        if !hits.is_empty() {
            evidence.push((p, hits.into_values().collect()));
        }
    }

    let mut suspects_pr = Vec::new();
    // (file, pr index) -> best proximity × recency × size for that file.
    let mut file_evidence: BTreeMap<RepoPath, Vec<(usize, f64, Hit)>> = BTreeMap::new();
    for (p, hits) in &evidence {
        let pr = &prs[*p];
        let factor = recency(occurred_at - pr.merged_at) * size_factor(pr.files.len());
        let mut miss = 1.0;
        for (file, hit) in hits {
            miss *= 1.0 - weighted[hit.frame].weight * hit.proximity * factor;
            let entry = file_evidence.entry(file.clone()).or_default();
            let strength = hit.proximity * factor;
            match entry.iter_mut().find(|(q, _, _)| q == p) {
                Some(best) if best.1 < strength => *best = (*p, strength, hit.clone()),
                Some(_) => {}
                None => entry.push((*p, strength, hit.clone())),
            }
        }
        let score = 1.0 - miss;
        suspects_pr.push((score, *p, hits));
    }
    suspects_pr.sort_by(|a, b| {
        let (pa, pb) = (&prs[a.1], &prs[b.1]);
        b.0.total_cmp(&a.0)
            .then(pb.merged_at.cmp(&pa.merged_at))
            .then(pb.number.cmp(&pa.number))
            .then(pa.repository.cmp(&pb.repository))
    });
    let suspect_pull_requests = suspects_pr
        .into_iter()
        .take(limit)
        .map(|(score, p, hits)| pr_suspect(&prs[p], score, hits, &weighted, occurred_at))
        .collect();

    let mut files: Vec<(f64, usize, SuspectFile)> = by_file
        .into_iter()
        .map(|(file, ids)| {
            let empty = Vec::new();
            let hits = file_evidence.get(&file).unwrap_or(&empty);
            file_suspect(file, &ids, hits, &weighted, &prs, occurred_at, lookback)
        })
        .collect();
    files.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let suspect_files = files.into_iter().take(limit).map(|(_, _, s)| s).collect();
    Ranking { suspect_files, suspect_pull_requests }
}

/// Weighs frames by depth within their stack and by stack.
fn weigh(mut frames: Vec<RankFrame>) -> Vec<Weighted> {
    frames.sort_by_key(|f| f.index);
    frames.dedup_by_key(|f| f.index);
    let root = frames
        .iter()
        .filter_map(|f| match f.group {
            FrameGroup::Cause(n) => Some(n),
            _ => None,
        })
        .max();
    let mut depths: BTreeMap<FrameGroup, usize> = BTreeMap::new();
    frames
        .into_iter()
        .map(|frame| {
            let depth = depths.entry(frame.group).or_insert(0);
            let decay = DEPTH_DECAY.powi(i32::try_from(*depth).unwrap_or(i32::MAX)).max(0.2);
            let (factor, first_role) = match frame.group {
                FrameGroup::Raised => (1.0, Role::Raised),
                FrameGroup::Cause(n) if Some(n) == root => (1.0, Role::RootCause),
                FrameGroup::Cause(_) => (0.8, Role::Caller),
                FrameGroup::Related(_) => (0.3, Role::Caller),
            };
            let role = if *depth == 0 { first_role } else { Role::Caller };
            *depth += 1;
            Weighted { frame, weight: decay * factor, role }
        })
        .collect()
}

fn hit_for(frame: &RankFrame, file: &PrFile, index: usize, earlier_name: Option<String>) -> Hit {
    let lines_count = earlier_name.is_none() && !file.ranges.is_empty();
    let nearest = match (lines_count, frame.line) {
        (true, Some(line)) => file.ranges.iter().map(|r| (*r, r.distance(line))).min_by_key(|(_, d)| *d),
        _ => None,
    };
    let proximity = match nearest {
        Some((_, d)) if d <= NEAR => 1.0,
        Some((_, d)) if d <= SAME_FUNCTION => 0.8 - 0.4 * f64::from(d - NEAR) / f64::from(SAME_FUNCTION - NEAR),
        _ => FILE_LEVEL,
    };
    Hit { frame: index, proximity, nearest, earlier_name, lines_known: !file.ranges.is_empty() }
}

/// `0.4 + 0.6 × 0.5^(age / 21 days)`.
fn recency(age: TimeDelta) -> f64 {
    let days = age.num_seconds().max(0) as f64 / 86_400.0;
    RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * 0.5f64.powf(days / HALF_LIFE_DAYS)
}

/// `1 / (1 + 0.05 × ln(files))`.
fn size_factor(files: usize) -> f64 {
    1.0 / (1.0 + 0.05 * (files.max(1) as f64).ln())
}

fn round(score: f64) -> f64 {
    (score.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
}

/// `2 days before`, `5 hours before`, `1 minute before`.
fn ago(age: TimeDelta) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} before", if n == 1 { "" } else { "s" });
    let minutes = age.num_minutes().max(0);
    if minutes < 60 {
        plural(minutes.max(1), "minute")
    } else if minutes < 48 * 60 {
        plural(minutes / 60, "hour")
    } else {
        plural(minutes / (24 * 60), "day")
    }
}

fn pr_suspect(
    pr: &CandidatePr,
    score: f64,
    hits: &[(RepoPath, Hit)],
    weighted: &[Weighted],
    occurred_at: DateTime<Utc>,
) -> SuspectPullRequest {
    let mut ordered: Vec<&(RepoPath, Hit)> = hits.iter().collect();
    ordered.sort_by(|a, b| {
        let strength = |h: &Hit| weighted[h.frame].weight * h.proximity;
        strength(&b.1).total_cmp(&strength(&a.1)).then(a.1.frame.cmp(&b.1.frame))
    });
    let mut files: Vec<String> = Vec::new();
    let mut reasons = Vec::new();
    for (file, hit) in ordered {
        if files.contains(&file.path) {
            continue;
        }
        files.push(file.path.clone());
        if reasons.len() < 3 {
            reasons.push(pr_reason(&file.path, hit, &weighted[hit.frame].frame));
        }
    }
    reasons.push(format!("merged {}", ago(occurred_at - pr.merged_at)));
    if pr.files.len() > 20 {
        reasons.push(format!("a large change: {} files", pr.files.len()));
    }
    SuspectPullRequest {
        repository: pr.repository.clone(),
        number: pr.number,
        title: pr.title.clone(),
        author: pr.author.clone(),
        url: pr.url.clone(),
        merged_at: pr.merged_at,
        score: round(score),
        files,
        reasons,
    }
}

fn pr_reason(path: &str, hit: &Hit, frame: &RankFrame) -> String {
    let at = frame.line.map(|l| format!(" (line {l})")).unwrap_or_default();
    if let Some(earlier) = &hit.earlier_name {
        return format!("changed {path} under its earlier name {earlier}; frame {} is in that file", frame.index);
    }
    match (hit.nearest, frame.line) {
        (Some((range, d)), Some(line)) if d <= SAME_FUNCTION => {
            format!("changed lines {range} of {path}; frame {} is at line {line}", frame.index)
        }
        (Some((range, d)), Some(line)) => {
            format!("changed lines {range} of {path}, {d} lines from frame {} at line {line}", frame.index)
        }
        _ => format!("changed {path}, where frame {}{at} is", frame.index),
    }
}

fn file_suspect(
    file: RepoPath,
    ids: &[usize],
    hits: &[(usize, f64, Hit)],
    weighted: &[Weighted],
    prs: &[CandidatePr],
    occurred_at: DateTime<Utc>,
    lookback: TimeDelta,
) -> (f64, usize, SuspectFile) {
    // The file's most important frame: highest weight, then nearest the top.
    let main = ids
        .iter()
        .copied()
        .max_by(|&a, &b| weighted[a].weight.total_cmp(&weighted[b].weight).then(b.cmp(&a)))
        .unwrap_or(0);
    let weight = weighted.get(main).map_or(0.0, |w| w.weight);
    let miss: f64 = hits.iter().map(|(_, strength, _)| 1.0 - strength).product();
    let score = weight * (FILE_BASE + (1.0 - FILE_BASE) * (1.0 - miss));

    let mut reasons = Vec::new();
    for &i in ids {
        let w = &weighted[i];
        let index = w.frame.index;
        match w.role {
            Role::Raised if index == 0 => reasons.push("the error was raised here".to_owned()),
            Role::Raised => reasons.push(format!("the error's innermost frame in your code is here (frame {index})")),
            Role::RootCause => reasons.push(format!("the root cause was raised here (frame {index})")),
            Role::Caller => {}
        }
    }
    if reasons.is_empty() {
        let frame = &weighted[main].frame;
        let line = frame.line.map(|l| format!("line {l}"));
        let function = frame.function.as_ref().map(|f| format!("in {f}"));
        let detail: Vec<String> = line.into_iter().chain(function).collect();
        let detail = if detail.is_empty() { String::new() } else { format!(" ({})", detail.join(", ")) };
        reasons.push(format!("frame {} is here{detail}, on the error's path", frame.index));
    }
    let mut ordered: Vec<&(usize, f64, Hit)> = hits.iter().collect();
    ordered.sort_by(|a, b| b.1.total_cmp(&a.1).then(prs[b.0].merged_at.cmp(&prs[a.0].merged_at)));
    for (p, _, hit) in ordered.into_iter().take(3) {
        let pr = &prs[*p];
        let when = ago(occurred_at - pr.merged_at);
        reasons.push(match (&hit.earlier_name, hit.nearest) {
            (Some(earlier), _) => format!("changed by #{} under its earlier name {earlier}, {when}", pr.number),
            (None, Some((range, d))) if d <= SAME_FUNCTION => {
                format!("lines {range} changed by #{}, {when}", pr.number)
            }
            (None, Some((range, _))) => {
                format!("changed elsewhere in the file by #{} (lines {range}), {when}", pr.number)
            }
            (None, None) if hit.lines_known => format!("changed by #{}, {when}", pr.number),
            (None, None) => format!("changed by #{} (no line information), {when}", pr.number),
        });
    }
    if hits.is_empty() {
        let days = lookback.num_days();
        reasons.push(format!("no pull request changed it in the {days} days before the error"));
    }
    // The function shown is that of the file's frame with the strongest
    // case: its weight and the changes near its own line. A recent change
    // inside a caller's function in this file beats an old one elsewhere.
    let frame_score = |f: usize| {
        let miss: f64 = hits.iter().filter(|(_, _, h)| h.frame == f).map(|(_, s, _)| 1.0 - s).product();
        weighted[f].weight * (FILE_BASE + (1.0 - FILE_BASE) * (1.0 - miss))
    };
    let shown = ids.iter().copied().max_by(|&a, &b| frame_score(a).total_cmp(&frame_score(b)).then(b.cmp(&a)));
    let frame = &weighted[shown.unwrap_or(main)].frame;
    let suspect = SuspectFile {
        repository: file.repository,
        path: file.path,
        function: frame.function.clone(),
        line: frame.line,
        score: round(score),
        frames: ids.iter().map(|&i| weighted[i].frame.index).collect(),
        reasons,
    };
    (score, weighted[main].frame.index, suspect)
}
