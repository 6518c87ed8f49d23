//! Code correlation: from the text of an error to the files and pull
//! requests that probably caused it.
//!
//! Pure functions over plain data, in the order a request uses them:
//!
//! 1. [`parse_trace`] reads a stack trace out of log text (Python, Java and
//!    Kotlin, JavaScript and TypeScript, Go, Rust, Ruby, .NET), or
//!    [`ParsedTrace::from_frames`] takes structured frames.
//! 2. [`classify`] tells application frames from library frames, and a
//!    [`PathIndex`] of the repositories' files maps each application frame
//!    to a file, or says why not ([`Unmapped`]).
//! 3. [`parse_hunk_ranges`] and [`split_unified_diff`] turn pull requests'
//!    patches into changed line ranges; [`RenameMap`] follows renames.
//! 4. [`rank`] scores suspect files and pull requests.
//! 5. [`line_url`] links a mapped frame to its line on the platform.
//!
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use sigsentry_domain::correlation::{
//!     CandidatePr, MapOptions, PathIndex, PrFile, RankFrame, RankInput, RenameMap, parse_hunk_ranges,
//!     parse_trace, rank,
//! };
//!
//! let trace = parse_trace(
//!     "java.lang.IllegalStateException: no rate for EUR\n\
//!      \tat com.acme.cart.Cart.total(Cart.java:42)\n\
//!      \tat com.acme.api.CheckoutController.post(CheckoutController.java:30)\n\
//!      \tat java.base/java.lang.Thread.run(Thread.java:1583)\n",
//! );
//! let index: PathIndex = [
//!     ("acme/shop", "src/main/java/com/acme/cart/Cart.java"),
//!     ("acme/shop", "src/main/java/com/acme/api/CheckoutController.java"),
//! ]
//! .into_iter()
//! .collect();
//! let mappings = index.map_trace(&trace, &MapOptions::default());
//! assert_eq!(mappings[2].mapped(), None); // java.lang: a library frame
//!
//! let occurred_at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
//! let ranking = rank(RankInput {
//!     frames: RankFrame::from_mappings(&trace, &mappings),
//!     pull_requests: vec![CandidatePr {
//!         repository: "acme/shop".into(),
//!         number: 412,
//!         title: "Multi-currency carts".into(),
//!         author: Some("jdoe".into()),
//!         url: "https://github.com/acme/shop/pull/412".into(),
//!         merged_at: occurred_at - TimeDelta::days(2),
//!         files: vec![PrFile {
//!             path: "src/main/java/com/acme/cart/Cart.java".into(),
//!             previous_path: None,
//!             ranges: parse_hunk_ranges("@@ -36,7 +38,10 @@ public Money total() {"),
//!         }],
//!     }],
//!     renames: RenameMap::new(),
//!     occurred_at,
//!     lookback: TimeDelta::days(30),
//!     limit: 5,
//! });
//! assert_eq!(ranking.suspect_files[0].path, "src/main/java/com/acme/cart/Cart.java");
//! assert_eq!(ranking.suspect_pull_requests[0].number, 412);
//! ```

mod classify;
mod diff;
mod formats;
mod frame_path;
mod hunks;
mod outcome;
mod path_index;
mod prefix;
mod rank;
mod renames;
mod request;
mod text;
mod trace;
mod web_url;

pub use classify::{FrameClass, classify};
pub use diff::{FileDiff, MAX_DIFF_FILES, split_unified_diff};
pub use hunks::{LineRange, MAX_RANGES, merge as merge_ranges, parse_hunk_ranges};
pub use outcome::{FrameMapping, MappedFrame, RepoPath, Unmapped};
pub use path_index::{MapOptions, MappingScope, PathIndex};
pub use rank::{CandidatePr, PrFile, RankFrame, RankInput, Ranking, SuspectFile, SuspectPullRequest, rank};
pub use renames::RenameMap;
pub use request::{
    CorrelationDraft, CorrelationRequest, DEFAULT_SUSPECTS, FrameDraft, MAX_FRAME_TEXT, MAX_SUSPECTS, TraceInput,
};
pub use trace::{
    ExceptionInfo, Frame, FrameGroup, Language, MAX_FRAMES, MAX_LINE_BYTES, MAX_TRACE_BYTES, ParsedTrace, parse_trace,
};
pub use web_url::line_url;

#[cfg(test)]
mod tests;
