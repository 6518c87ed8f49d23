use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::correlation::{
    CandidatePr, FrameGroup, LineRange, PrFile, RankFrame, RankInput, Ranking, RenameMap, RepoPath, rank,
};

const REPO: &str = "acme/shop";

fn occurred_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

fn frame(index: usize, path: &str, line: u32) -> RankFrame {
    RankFrame {
        index,
        file: RepoPath { repository: REPO.into(), path: path.into() },
        line: Some(line),
        function: Some(format!("fn{index}")),
        group: FrameGroup::Raised,
    }
}

fn pr(number: u64, age: TimeDelta, files: &[(&str, &[(u32, u32)])]) -> CandidatePr {
    CandidatePr {
        repository: REPO.into(),
        number,
        title: format!("PR {number}"),
        author: Some("jdoe".into()),
        url: format!("https://github.com/{REPO}/pull/{number}"),
        merged_at: occurred_at() - age,
        files: files
            .iter()
            .map(|(path, ranges)| PrFile {
                path: (*path).into(),
                previous_path: None,
                ranges: ranges.iter().map(|&(a, b)| LineRange::new(a, b)).collect(),
            })
            .collect(),
    }
}

fn run(frames: Vec<RankFrame>, pull_requests: Vec<CandidatePr>) -> Ranking {
    rank(RankInput {
        frames,
        pull_requests,
        renames: RenameMap::new(),
        occurred_at: occurred_at(),
        lookback: TimeDelta::days(30),
        limit: 5,
    })
}

fn numbers(ranking: &Ranking) -> Vec<u64> {
    ranking.suspect_pull_requests.iter().map(|p| p.number).collect()
}

fn paths(ranking: &Ranking) -> Vec<&str> {
    ranking.suspect_files.iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn a_recent_change_around_the_raising_line_beats_an_old_far_one() {
    let ranking = run(
        vec![frame(0, "checkout/cart.py", 42), frame(1, "web/views.py", 12)],
        vec![
            pr(399, TimeDelta::days(25), &[("checkout/cart.py", &[(300, 320)])]),
            pr(412, TimeDelta::days(2), &[("checkout/cart.py", &[(38, 47)])]),
        ],
    );
    assert_eq!(numbers(&ranking), [412, 399]);
    let top = &ranking.suspect_pull_requests[0];
    assert!(top.score > 0.7 && top.score <= 1.0, "{}", top.score);
    assert!(ranking.suspect_pull_requests[1].score < 0.25, "far from the line and weeks old says little");
    assert_eq!(top.files, ["checkout/cart.py"]);
    assert_eq!(top.reasons, ["changed lines 38-47 of checkout/cart.py; frame 0 is at line 42", "merged 2 days before"]);
    assert_eq!(
        ranking.suspect_pull_requests[1].reasons[0],
        "changed lines 300-320 of checkout/cart.py, 258 lines from frame 0 at line 42"
    );
    let file = &ranking.suspect_files[0];
    assert_eq!((file.path.as_str(), file.line, file.frames.as_slice()), ("checkout/cart.py", Some(42), &[0][..]));
    assert_eq!(file.reasons[0], "the error was raised here");
    assert_eq!(file.reasons[1], "lines 38-47 changed by #412, 2 days before");
    assert_eq!(file.reasons[2], "changed elsewhere in the file by #399 (lines 300-320), 25 days before");
    assert_eq!(
        ranking.suspect_files[1].reasons,
        [
            "frame 1 is here (line 12, in fn1), on the error's path",
            "no pull request changed it in the 30 days before the error"
        ]
    );
}

#[test]
fn merged_after_the_error_or_before_the_window_is_never_a_suspect() {
    let ranking = run(
        vec![frame(0, "checkout/cart.py", 42)],
        vec![
            pr(500, TimeDelta::hours(-1), &[("checkout/cart.py", &[(40, 44)])]),
            pr(300, TimeDelta::days(31), &[("checkout/cart.py", &[(40, 44)])]),
            pr(450, TimeDelta::hours(5), &[("checkout/cart.py", &[(400, 401)])]),
        ],
    );
    assert_eq!(numbers(&ranking), [450]);
    assert_eq!(ranking.suspect_pull_requests[0].reasons.last().unwrap(), "merged 5 hours before");
}

#[test]
fn a_changed_caller_outranks_an_unchanged_raising_frame() {
    let ranking = run(
        vec![frame(0, "checkout/money.py", 10), frame(1, "checkout/cart.py", 42), frame(2, "web/views.py", 12)],
        vec![pr(412, TimeDelta::days(1), &[("checkout/cart.py", &[(40, 43)])])],
    );
    assert_eq!(paths(&ranking), ["checkout/cart.py", "checkout/money.py", "web/views.py"]);
    assert_eq!(ranking.suspect_files[1].reasons[0], "the error was raised here");
}

#[test]
fn without_any_change_the_raising_frame_leads() {
    let ranking = run(vec![frame(0, "a.py", 1), frame(1, "b.py", 2), frame(5, "c.py", 3)], vec![]);
    assert_eq!(paths(&ranking), ["a.py", "b.py", "c.py"]);
    assert!(ranking.suspect_pull_requests.is_empty());
    let scores: Vec<f64> = ranking.suspect_files.iter().map(|f| f.score).collect();
    assert!(scores.windows(2).all(|w| w[0] > w[1]) && scores[2] > 0.0, "{scores:?}");
}

#[test]
fn a_change_under_an_earlier_name_still_counts() {
    let mut renaming = pr(420, TimeDelta::days(3), &[("checkout/cart.py", &[])]);
    renaming.files[0].previous_path = Some("cart.py".into());
    let before = pr(410, TimeDelta::days(6), &[("cart.py", &[(40, 45)])]);
    let ranking = run(vec![frame(0, "checkout/cart.py", 42)], vec![before, renaming]);
    assert_eq!(numbers(&ranking), [420, 410]);
    let old = &ranking.suspect_pull_requests[1];
    assert_eq!(old.files, ["checkout/cart.py"]);
    assert_eq!(old.reasons[0], "changed checkout/cart.py under its earlier name cart.py; frame 0 is in that file");
    assert!(
        ranking.suspect_files[0]
            .reasons
            .iter()
            .any(|r| r == "changed by #410 under its earlier name cart.py, 6 days before")
    );
}

#[test]
fn renames_given_by_the_caller_count_too() {
    let mut renames = RenameMap::new();
    renames.insert(REPO, "lib/cart.py", "checkout/cart.py", occurred_at() - TimeDelta::days(20));
    let ranking = rank(RankInput {
        frames: vec![frame(0, "checkout/cart.py", 42)],
        pull_requests: vec![pr(300, TimeDelta::days(25), &[("lib/cart.py", &[(1, 2)])])],
        renames,
        occurred_at: occurred_at(),
        lookback: TimeDelta::days(30),
        limit: 5,
    });
    assert_eq!(numbers(&ranking), [300]);
}

#[test]
fn ties_go_to_the_newer_merge_then_the_higher_number_and_limit_applies() {
    let same = |n| pr(n, TimeDelta::days(2), &[("checkout/cart.py", &[(42, 42)])]);
    let mut older = same(7);
    older.merged_at -= TimeDelta::seconds(1);
    let ranking = rank(RankInput {
        frames: vec![frame(0, "checkout/cart.py", 42)],
        pull_requests: vec![same(3), older, same(9), same(5)],
        renames: RenameMap::new(),
        occurred_at: occurred_at(),
        lookback: TimeDelta::days(30),
        limit: 3,
    });
    assert_eq!(numbers(&ranking), [9, 5, 3]);
}

#[test]
fn the_root_cause_counts_as_much_as_the_raising_frame() {
    let mut cause = frame(3, "checkout/rates.py", 7);
    cause.group = FrameGroup::Cause(1);
    let ranking = run(
        vec![frame(0, "checkout/cart.py", 44), frame(1, "web/views.py", 12), cause],
        vec![pr(412, TimeDelta::days(1), &[("checkout/rates.py", &[(5, 9)])])],
    );
    assert_eq!(paths(&ranking)[0], "checkout/rates.py");
    assert_eq!(ranking.suspect_files[0].reasons[0], "the root cause was raised here (frame 3)");
}

#[test]
fn scores_stay_in_range_and_output_is_deterministic() {
    let frames: Vec<RankFrame> = (0..50).map(|i| frame(i, &format!("f{}.py", i % 7), 10 + i as u32)).collect();
    let prs: Vec<CandidatePr> = (0..40)
        .map(|n| pr(n, TimeDelta::hours(i64::try_from(n).unwrap() * 7), &[(&format!("f{}.py", n % 9), &[(1, 100)])]))
        .collect();
    let first = run(frames.clone(), prs.clone());
    let mut reversed = prs;
    reversed.reverse();
    let second = run(frames, reversed);
    assert_eq!(first, second);
    for score in first.suspect_files.iter().map(|f| f.score).chain(first.suspect_pull_requests.iter().map(|p| p.score))
    {
        assert!((0.0..=1.0).contains(&score), "{score}");
    }
}
