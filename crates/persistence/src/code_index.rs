//! What code correlation reads from the repo cache: files by name, and the
//! changes merged PRs made to given files. Every query is confined to one
//! project's connections (and, for files, its active ones): a correlation
//! never reads another tenant's cache.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods, ExpressionMethods, JoinOnDsl, QueryDsl};
use sigsentry_domain::ProjectId;
use sigsentry_domain::correlation::LineRange;
use sigsentry_ports::{CodeIndexStore, FileChange, FileRef, IndexedFile, StoreError};

use crate::AnyStore;
use crate::cache::read_number;
use crate::dialect::db;
use crate::schema::{
    pull_request_files as files, pull_requests as prs, repo_connections as conns, repository_files as tree_files,
};
use crate::sql_types::{DbId, DbTime};

/// Values bound in one `IN (...)`: well inside SQLite's bound-parameter limit.
const IN_CHUNK: usize = 900;

/// One change row: the file's path, previous path and ranges, then its PR.
type ChangeRow = (String, Option<String>, String, i64, String, Option<String>, String, DbTime);

impl CodeIndexStore for AnyStore {
    async fn files_named(
        &self,
        project: ProjectId,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<IndexedFile>, StoreError> {
        let (project, names) = (DbId::from(project), names.to_vec());
        self.run(async move |c| {
            let mut found = Vec::new();
            for chunk in names.chunks(IN_CHUNK) {
                let left = i64::from(limit).saturating_sub(found.len() as i64);
                if left <= 0 {
                    break;
                }
                let active = conns::table
                    .filter(conns::project_id.eq(project))
                    .filter(conns::is_active.eq(true))
                    .select(conns::id);
                let query = tree_files::table
                    .filter(tree_files::connection_id.eq_any(active))
                    .filter(tree_files::name_key.eq_any(chunk))
                    .select((tree_files::connection_id, tree_files::repository_key, tree_files::path))
                    .limit(left);
                let rows: Vec<(DbId, String, String)> = db!(c, |c| query.load(c))?;
                found.extend(rows.into_iter().map(|(connection_id, repository_key, path)| IndexedFile {
                    connection_id: connection_id.into(),
                    repository_key,
                    path,
                }));
            }
            Ok(found)
        })
        .await
    }

    async fn changes_to(
        &self,
        project: ProjectId,
        files: &[FileRef],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FileChange>, StoreError> {
        // One query per repository (a trace maps to a few), its paths in chunks.
        let mut wanted: BTreeMap<(DbId, String), Vec<String>> = BTreeMap::new();
        for file in files {
            wanted
                .entry((DbId::from(file.connection_id), file.repository_key.clone()))
                .or_default()
                .push(file.path.clone());
        }
        let project = DbId::from(project);
        let (since, until) = (DbTime(since), DbTime(until));
        self.run(async move |c| {
            let mut found: Vec<FileChange> = Vec::new();
            for ((connection_id, key), paths) in &wanted {
                for chunk in paths.chunks(IN_CHUNK) {
                    let left = i64::from(limit).saturating_sub(found.len() as i64);
                    if left <= 0 {
                        break;
                    }
                    let mine = conns::table.filter(conns::project_id.eq(project)).select(conns::id);
                    // The changes to these paths, and those that renamed a file
                    // to one of them: two queries, as `path IN (..) OR
                    // previous_path IN (..)` makes SQLite read every PR of the
                    // window instead of using either index (4 ms -> 90 ms on
                    // 100,000 rows).
                    macro_rules! changes {
                        ($matches:expr) => {
                            files::table
                                .inner_join(
                                    prs::table.on(prs::connection_id
                                        .eq(files::connection_id)
                                        .and(prs::repository_key.eq(files::repository_key))
                                        .and(prs::number.eq(files::number))),
                                )
                                .filter(files::connection_id.eq(*connection_id))
                                .filter(files::connection_id.eq_any(mine))
                                .filter(files::repository_key.eq(key))
                                .filter($matches)
                                .filter(prs::merged_at.ge(since))
                                .filter(prs::merged_at.le(until))
                                .order((prs::merged_at.desc(), prs::number.desc()))
                                .limit(left)
                                .select((
                                    files::path,
                                    files::previous_path,
                                    files::ranges,
                                    prs::number,
                                    prs::title,
                                    prs::author,
                                    prs::url,
                                    prs::merged_at,
                                ))
                        };
                    }
                    let by_path = changes!(files::path.eq_any(chunk));
                    // A row whose path is in the chunk was read by the first query.
                    let by_previous = changes!(files::previous_path.eq_any(chunk).and(files::path.ne_all(chunk)));
                    let mut rows: Vec<ChangeRow> = db!(c, |c| by_path.load(c))?;
                    rows.extend(db!(c, |c| by_previous.load(c))?);
                    // Newest first across both, as one query would have read them.
                    rows.sort_by_key(|row| std::cmp::Reverse((row.7, row.3)));
                    rows.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                    for (path, previous_path, ranges, number, title, author, url, merged_at) in rows {
                        found.push(FileChange {
                            connection_id: (*connection_id).into(),
                            repository_key: key.clone(),
                            number: read_number(number)?,
                            title,
                            author,
                            url,
                            merged_at: merged_at.into(),
                            path,
                            previous_path,
                            ranges: LineRange::decode_list(&ranges),
                        });
                    }
                }
            }
            Ok(found)
        })
        .await
    }
}
