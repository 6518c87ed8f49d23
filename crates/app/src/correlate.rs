//! Code correlation: from an error's text to the suspect files, functions
//! and pull requests of the project's repositories.
//!
//! The rules are the domain's (`sigsentry_domain::correlation`); this
//! service only fetches what they need from the cache, in a few queries
//! whose size follows the trace, not the repositories: the files named like
//! the trace's frames (not every path of a 200,000-file repository), then
//! the changes merged to the files the frames map to.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::correlation::{
    CandidatePr, CorrelationDraft, CorrelationRequest, ExceptionInfo, Frame, FrameClass, FrameMapping, Language,
    MapOptions, MappingScope, ParsedTrace, PathIndex, PrFile, RankFrame, RankInput, RenameMap, SuspectFile,
    SuspectPullRequest, TraceInput, Unmapped, classify, line_url, parse_trace, rank,
};
use sigsentry_domain::{ConnectionId, Platform, RepoConnection, RepoName, ValidationErrors};
use sigsentry_ports::{Clock, CredentialCipher, FileChange, FileRef, ListQuery, Store, StoreError};

use crate::{CodeRepos, ProjectScope};

/// Most file rows one correlation reads: far above what the names of 500
/// frames match in any real project, and a bound for a hostile one.
const MAX_FILE_ROWS: u32 = 50_000;
/// Most change rows one correlation reads.
const MAX_CHANGE_ROWS: u32 = 20_000;
/// Rounds of following renames back (a file renamed, then renamed again...).
const RENAME_ROUNDS: usize = 3;
/// Connections read per page while gathering the project's repositories.
const CONNECTION_PAGE: u32 = 100;

/// Why a correlation failed. A trace that cannot be read is not a failure:
/// it answers `unknown` with a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrelateError {
    /// The request broke rules.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a frame was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameLink {
    /// The connection holding the repository.
    pub connection_id: ConnectionId,
    /// The repository, as the connection names it.
    pub repository: String,
    /// The file's path in it.
    pub path: String,
    /// The line on the platform's web UI, at the branch analyses reason about.
    pub url: String,
}

/// One frame of the trace and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelatedFrame {
    /// Its position, 0 = where the error was raised.
    pub index: usize,
    /// The frame as read.
    pub frame: Frame,
    /// Whether it is the application's own code.
    pub in_app: bool,
    /// The file it maps to, or why it does not.
    pub mapping: Result<FrameLink, Unmapped>,
}

/// A suspect file, with its link.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectFileLink {
    /// The suspect (its `repository` as the connection names it).
    pub suspect: SuspectFile,
    /// The line on the platform's web UI.
    pub url: String,
}

/// The answer to a correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// The trace's format.
    pub language: Language,
    /// The root cause, when the format shows it.
    pub exception: Option<ExceptionInfo>,
    /// Every frame, innermost first.
    pub frames: Vec<CorrelatedFrame>,
    /// Suspect files, best first.
    pub suspect_files: Vec<SuspectFileLink>,
    /// Suspect pull requests, best first.
    pub suspect_pull_requests: Vec<SuspectPullRequest>,
    /// What a person should know about how the answer was reached.
    pub notes: Vec<String>,
}

/// A repository of the project, as correlation sees it.
#[derive(Debug, Clone)]
struct Repo {
    connection_id: ConnectionId,
    platform: Platform,
    name: RepoName,
    web_root: String,
    branch: String,
    /// Its file list is known (a sync succeeded since it was attached or wiped).
    synced: bool,
    lookback: TimeDelta,
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Correlates an error with the project's repositories.
    ///
    /// # Errors
    /// [`CorrelateError::Validation`] for a request that breaks the rules;
    /// [`CorrelateError::Store`] when the store fails.
    pub async fn correlate(&self, scope: ProjectScope, draft: CorrelationDraft) -> Result<Correlation, CorrelateError> {
        let request = CorrelationRequest::from_draft(draft).map_err(CorrelateError::Validation)?;
        let occurred_at = request.occurred_at.unwrap_or_else(|| self.clock.now());
        let trace = match request.input {
            TraceInput::Text(text) => parse_trace(&text),
            TraceInput::Frames(frames) => ParsedTrace::from_frames(frames),
        };
        let mut notes = Vec::new();
        if trace.frames.is_empty() {
            notes.push(
                "No stack frame could be read from the text; send the error's full stack trace as logged, or its \
                 frames."
                    .to_owned(),
            );
        } else if trace.truncated {
            notes.push("The trace is longer than 500 frames or 256 KiB; only its beginning was read.".to_owned());
        }

        let connections = self.active_connections(scope).await?;
        let repos = repositories(&connections, request.service.as_ref().map(|s| s.as_str()));
        if connections.is_empty() {
            notes.push("The project has no active repository connection, so no frame can be mapped.".to_owned());
        }
        let scope_of_service = match &request.service {
            None => None,
            Some(service) => {
                let found = service_scope(&connections, service.as_str());
                if found.is_none() {
                    notes.push(format!(
                        "Service '{service}' matches no service mapping of this project; every connected \
                         repository was searched."
                    ));
                }
                found
            }
        };
        let not_synced: Vec<String> = repos.iter().filter(|(_, r)| !r.synced).map(|(key, _)| key.clone()).collect();
        if !not_synced.is_empty() {
            let mut names: Vec<&str> = repos.values().filter(|r| !r.synced).map(|r| r.name.as_str()).collect();
            names.sort_unstable();
            notes.push(format!(
                "The file lists of {} are not known yet (sync pending or failed); frames in them cannot be mapped.",
                names.join(", ")
            ));
        }

        let index = self.candidate_index(scope, &trace, &repos).await?;
        let options = MapOptions { scope: scope_of_service, not_synced };
        let mappings = index.map_trace(&trace, &options);

        let mapped: BTreeSet<FileRef> = mappings
            .iter()
            .filter_map(FrameMapping::mapped)
            .filter_map(|m| {
                repos.get(&m.file.repository).map(|repo| FileRef {
                    connection_id: repo.connection_id,
                    repository_key: m.file.repository.clone(),
                    path: m.file.path.clone(),
                })
            })
            .collect();
        let longest = repos.values().map(|r| r.lookback).max().unwrap_or_else(|| TimeDelta::days(30));
        let (pull_requests, renames) = self.candidates(scope, mapped, &repos, occurred_at, longest).await?;

        let ranking = rank(RankInput {
            frames: RankFrame::from_mappings(&trace, &mappings),
            pull_requests,
            renames,
            occurred_at,
            lookback: longest,
            limit: request.limit,
        });
        Ok(assemble(trace, mappings, ranking, &repos, notes))
    }

    /// Every active connection of the project.
    async fn active_connections(&self, scope: ProjectScope) -> Result<Vec<RepoConnection>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let query = ListQuery {
                platform: None,
                is_active: Some(true),
                credential_status: Vec::new(),
                now: self.clock.now(),
                after,
                limit: CONNECTION_PAGE,
            };
            let page = self.store.list_connections(scope.project_id, query).await?;
            let full = page.len() == CONNECTION_PAGE as usize;
            after = page.last().map(|c| c.id);
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// An index of just the files named like the trace's frames.
    async fn candidate_index(
        &self,
        scope: ProjectScope,
        trace: &ParsedTrace,
        repos: &HashMap<String, Repo>,
    ) -> Result<PathIndex, StoreError> {
        let names: BTreeSet<String> =
            trace.frames.iter().flat_map(|f| PathIndex::lookup_names(f, trace.language)).collect();
        let mut index = PathIndex::new();
        if names.is_empty() || repos.is_empty() {
            return Ok(index);
        }
        let names: Vec<String> = names.into_iter().collect();
        for file in self.store.files_named(scope.project_id, &names, MAX_FILE_ROWS).await? {
            if repos.contains_key(&file.repository_key) {
                index.insert(&file.repository_key, &file.path);
            }
        }
        Ok(index)
    }

    /// The pull requests that changed the mapped files (under their current
    /// or an earlier name) inside each connection's window, and the renames
    /// they record.
    async fn candidates(
        &self,
        scope: ProjectScope,
        mapped: BTreeSet<FileRef>,
        repos: &HashMap<String, Repo>,
        occurred_at: DateTime<Utc>,
        longest: TimeDelta,
    ) -> Result<(Vec<CandidatePr>, RenameMap), StoreError> {
        let since = occurred_at.checked_sub_signed(longest).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut seen: BTreeSet<FileRef> = BTreeSet::new();
        let mut wanted = mapped;
        let mut changes: Vec<FileChange> = Vec::new();
        for _ in 0..RENAME_ROUNDS {
            wanted.retain(|f| !seen.contains(f));
            if wanted.is_empty() {
                break;
            }
            let files: Vec<FileRef> = wanted.iter().cloned().collect();
            let found = self.store.changes_to(scope.project_id, &files, since, occurred_at, MAX_CHANGE_ROWS).await?;
            seen.extend(std::mem::take(&mut wanted));
            // A file renamed by one of these changes had another name
            // before: changes under that name count too.
            for change in &found {
                if let Some(previous) = &change.previous_path {
                    wanted.insert(FileRef {
                        connection_id: change.connection_id,
                        repository_key: change.repository_key.clone(),
                        path: previous.clone(),
                    });
                }
            }
            changes.extend(found);
        }

        let mut renames = RenameMap::new();
        let mut by_pr: HashMap<(String, u64), CandidatePr> = HashMap::new();
        for change in changes {
            let Some(repo) = repos.get(&change.repository_key) else { continue };
            // Each connection has its own window.
            if change.merged_at < occurred_at - repo.lookback {
                continue;
            }
            if let Some(previous) = &change.previous_path {
                renames.insert(&change.repository_key, previous, &change.path, change.merged_at);
            }
            let pr = by_pr.entry((change.repository_key.clone(), change.number)).or_insert_with(|| CandidatePr {
                repository: change.repository_key.clone(),
                number: change.number,
                title: change.title.clone(),
                author: change.author.clone(),
                url: change.url.clone(),
                merged_at: change.merged_at,
                files: Vec::new(),
            });
            if !pr.files.iter().any(|f| f.path == change.path) {
                pr.files.push(PrFile { path: change.path, previous_path: change.previous_path, ranges: change.ranges });
            }
        }
        Ok((by_pr.into_values().collect(), renames))
    }
}

/// The repositories of the connections, by key.
fn repositories(connections: &[RepoConnection], service: Option<&str>) -> HashMap<String, Repo> {
    let mut repos = HashMap::new();
    for connection in connections {
        let web_root = connection.platform.web_root(connection.credentials.base_url.as_ref());
        for status in &connection.sync {
            let key = status.repository.key();
            // The branch analyses reason about: the mapping's (the service's
            // own first), else the one learned at sync.
            let mappings = connection.service_mappings.iter().filter(|m| m.repo.key() == key);
            let mut branches = mappings
                .clone()
                .filter(|m| service.is_some_and(|s| m.service_name.as_str() == s))
                .chain(mappings)
                .filter_map(|m| m.default_branch.as_ref().map(|b| b.as_str().to_owned()));
            let branch = branches.next().or_else(|| status.default_branch.clone()).unwrap_or_else(|| "HEAD".to_owned());
            repos.insert(
                key,
                Repo {
                    connection_id: connection.id,
                    platform: connection.platform,
                    name: status.repository.clone(),
                    web_root: web_root.clone(),
                    branch,
                    synced: status.last_synced_at.is_some(),
                    lookback: TimeDelta::days(i64::from(connection.lookback_days.get())),
                },
            );
        }
    }
    repos
}

/// The repository and directory a service name maps to.
fn service_scope(connections: &[RepoConnection], service: &str) -> Option<MappingScope> {
    connections
        .iter()
        .flat_map(|c| &c.service_mappings)
        .find(|m| m.service_name.as_str() == service)
        .map(|m| MappingScope { repository: m.repo.key(), path_prefix: m.path_prefix.clone() })
}

fn assemble(
    trace: ParsedTrace,
    mappings: Vec<FrameMapping>,
    ranking: sigsentry_domain::correlation::Ranking,
    repos: &HashMap<String, Repo>,
    notes: Vec<String>,
) -> Correlation {
    let link = |key: &str, path: &str, line: Option<u32>| {
        repos
            .get(key)
            .map(|repo| (repo, line_url(repo.platform, &repo.web_root, repo.name.as_str(), &repo.branch, path, line)))
    };
    let language = trace.language;
    let frames = trace
        .frames
        .into_iter()
        .zip(mappings)
        .enumerate()
        .map(|(index, (frame, mapping))| {
            let in_app = classify(&frame, language) == FrameClass::InApp;
            let mapping = match mapping {
                FrameMapping::Mapped(mapped) => match link(&mapped.file.repository, &mapped.file.path, frame.line) {
                    Some((repo, url)) => Ok(FrameLink {
                        connection_id: repo.connection_id,
                        repository: repo.name.as_str().to_owned(),
                        path: mapped.file.path,
                        url,
                    }),
                    None => Err(Unmapped::NotInRepository { suffix: mapped.file.path }),
                },
                FrameMapping::Unmapped(Unmapped::NotSynced { repositories }) => {
                    // Keys are lower-cased; people read the names as connected.
                    let mut names: Vec<String> = repositories
                        .iter()
                        .map(|key| repos.get(key).map_or_else(|| key.clone(), |r| r.name.as_str().to_owned()))
                        .collect();
                    names.sort();
                    Err(Unmapped::NotSynced { repositories: names })
                }
                FrameMapping::Unmapped(why) => Err(why),
            };
            CorrelatedFrame { index, frame, in_app, mapping }
        })
        .collect();
    let suspect_files = ranking
        .suspect_files
        .into_iter()
        .filter_map(|mut suspect| {
            let (repo, url) = link(&suspect.repository, &suspect.path, suspect.line)?;
            suspect.repository = repo.name.as_str().to_owned();
            Some(SuspectFileLink { suspect, url })
        })
        .collect();
    let suspect_pull_requests = ranking
        .suspect_pull_requests
        .into_iter()
        .map(|mut pr| {
            if let Some(repo) = repos.get(&pr.repository) {
                pr.repository = repo.name.as_str().to_owned();
            }
            pr
        })
        .collect();
    Correlation { language, exception: trace.exception, frames, suspect_files, suspect_pull_requests, notes }
}
