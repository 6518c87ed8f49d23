//! The parts of the repo cache and of sync scheduling that do not depend on
//! the backend: both adapters call these, so they cannot drift apart.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::SyncState;
use sigsentry_ports::{MergedPullRequest, StoreError};

/// Rows per multi-row INSERT of PRs (10 columns), of PR files (6 columns)
/// and of tree files (4 columns): far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters, and few enough statements for a
/// first sync of thousands of PRs or of a 200,000-file tree.
pub(crate) const PULL_REQUEST_CHUNK: usize = 1_000;
pub(crate) const FILE_CHUNK: usize = 4_000;
pub(crate) const TREE_CHUNK: usize = 7_000;

/// What a repository whose stored connection no longer reads back (a corrupt
/// row, or a value a newer release wrote) is marked with instead of being
/// claimed: left as it was, it would be due again on every round and crowd
/// out the repositories that can be synced.
pub(crate) const UNREADABLE_MESSAGE: &str =
    "the stored connection could not be read; update the connection or recreate it";

/// How long such a repository waits before it is tried again.
pub(crate) const UNREADABLE_RETRY: TimeDelta = TimeDelta::hours(1);

/// The end of a lease of `secs` seconds taken at `now`; clamps instead of overflowing.
pub(crate) fn lease_end(now: DateTime<Utc>, secs: u32) -> DateTime<Utc> {
    now.checked_add_signed(TimeDelta::seconds(i64::from(secs))).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When a repository whose stored connection cannot be read is tried again.
pub(crate) fn unreadable_retry(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_add_signed(UNREADABLE_RETRY).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A PR number as stored (`bigint`). Numbers past `i64::MAX` do not occur
/// on any platform; one would be a bug upstream, so it fails the write.
pub(crate) fn stored_number(number: u64) -> Result<i64, StoreError> {
    i64::try_from(number).map_err(|_| StoreError::Unexpected(format!("PR number {number} is too large to store")))
}

/// A cursor's PR number for comparison: past `i64::MAX` no stored number is
/// greater, which `i64::MAX` says just as well.
pub(crate) fn cursor_number(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}

/// A stored PR number read back.
pub(crate) fn read_number(number: i64) -> Result<u64, StoreError> {
    u64::try_from(number).map_err(|_| StoreError::Unexpected(format!("a cached PR has a negative number ({number})")))
}

/// Failed attempts as stored, read back: a negative value (only a hand edit
/// makes one) counts as none.
pub(crate) fn read_attempts(attempts: i64) -> u32 {
    u32::try_from(attempts.max(0)).unwrap_or(u32::MAX)
}

/// The PRs of one sync, one per number, each with its paths de-duplicated
/// and sorted. A platform listing a PR twice (it changed while we paged)
/// keeps its latest update; on a tie, the later entry.
pub(crate) fn latest_by_number(pull_requests: Vec<MergedPullRequest>) -> Vec<MergedPullRequest> {
    let mut by_number: BTreeMap<u64, MergedPullRequest> = BTreeMap::new();
    for pr in pull_requests {
        match by_number.get(&pr.number) {
            Some(seen) if seen.updated_at > pr.updated_at => {}
            _ => {
                by_number.insert(pr.number, pr);
            }
        }
    }
    by_number
        .into_values()
        .map(|mut pr| {
            // A path is one row: of two entries for one path, the first is kept.
            pr.files.sort_by(|a, b| a.path.cmp(&b.path));
            pr.files.dedup_by(|later, earlier| later.path == earlier.path);
            pr
        })
        .collect()
}

/// The earliest times of one sync state over the active repositories, as
/// one aggregate row: how many repositories, and the minimum and count of
/// non-NULL values of the column that says when each becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateTimes {
    /// The state.
    pub state: SyncState,
    /// Repositories in it.
    pub rows: i64,
    /// `ready`: the oldest `last_synced_at`; `error`: the earliest
    /// `next_attempt_at`; `syncing`: the earliest `lease_until`.
    pub earliest: Option<DateTime<Utc>>,
    /// How many of them have that time set.
    pub with_time: i64,
}

/// When the first repository becomes due, from the per-state aggregates: a
/// pending one now, a ready one `refresh_interval_secs` after its last sync,
/// a failed one at its next attempt, a claimed one when its lease runs out.
/// A repository missing its time is due now, as the claim treats it.
pub(crate) fn earliest_due(
    states: &[StateTimes],
    now: DateTime<Utc>,
    refresh_interval_secs: u32,
) -> Option<DateTime<Utc>> {
    let interval = TimeDelta::seconds(i64::from(refresh_interval_secs));
    states
        .iter()
        .filter(|s| s.rows > 0)
        .filter_map(|s| {
            if s.state == SyncState::Pending || s.with_time < s.rows {
                return Some(now);
            }
            let earliest = s.earliest?;
            Some(match s.state {
                SyncState::Ready => earliest.checked_add_signed(interval).unwrap_or(DateTime::<Utc>::MAX_UTC),
                SyncState::Error | SyncState::Syncing | SyncState::Pending => earliest,
            })
        })
        .min()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sigsentry_ports::ChangedFile;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(secs)
    }

    fn pr(number: u64, updated: i64, files: &[&str]) -> MergedPullRequest {
        MergedPullRequest {
            number,
            title: format!("#{number} at {updated}"),
            author: None,
            url: String::new(),
            merged_at: at(0),
            merge_commit_sha: None,
            updated_at: at(updated),
            files: files.iter().map(|f| ChangedFile::path_only(*f)).collect(),
        }
    }

    #[test]
    fn one_pr_per_number_latest_update_wins_and_paths_are_unique_and_sorted() {
        let kept =
            latest_by_number(vec![pr(2, 5, &["b", "a", "b"]), pr(1, 1, &[]), pr(2, 3, &["old"]), pr(2, 5, &["c"])]);
        assert_eq!(kept.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(kept[1].files, [ChangedFile::path_only("c")], "a tie keeps the later entry");
        let kept = latest_by_number(vec![pr(2, 5, &["b", "a", "b"]), pr(2, 3, &["old"])]);
        assert_eq!(kept[0].files, [ChangedFile::path_only("a"), ChangedFile::path_only("b")]);
    }

    #[test]
    fn the_earliest_due_time_per_state() {
        let state = |state, rows, earliest: Option<i64>, with_time| StateTimes {
            state,
            rows,
            earliest: earliest.map(at),
            with_time,
        };
        let now = at(1_000);
        assert_eq!(earliest_due(&[], now, 60), None);
        assert_eq!(earliest_due(&[state(SyncState::Ready, 2, Some(10), 2)], now, 60), Some(at(70)));
        assert_eq!(
            earliest_due(&[state(SyncState::Ready, 1, Some(10), 1), state(SyncState::Error, 1, Some(50), 1)], now, 60),
            Some(at(50))
        );
        assert_eq!(earliest_due(&[state(SyncState::Syncing, 1, Some(5_000), 1)], now, 60), Some(at(5_000)));
        assert_eq!(earliest_due(&[state(SyncState::Pending, 1, None, 0)], now, 60), Some(now));
        assert_eq!(earliest_due(&[state(SyncState::Error, 2, Some(5_000), 1)], now, 60), Some(now), "a NULL is due");
    }

    #[test]
    fn numbers_and_attempts_convert_without_panicking() {
        assert!(stored_number(u64::MAX).is_err());
        assert_eq!(stored_number(7).ok(), Some(7));
        assert_eq!(cursor_number(u64::MAX), i64::MAX);
        assert!(read_number(-1).is_err());
        assert_eq!(read_attempts(-3), 0);
        assert_eq!(read_attempts(i64::MAX), u32::MAX);
        assert_eq!(lease_end(DateTime::<Utc>::MAX_UTC, 10), DateTime::<Utc>::MAX_UTC);
    }
}
