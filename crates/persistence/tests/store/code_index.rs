//! The correlation reads (`CodeIndexStore`): files by name and changes to
//! files, confined to one project.

use chrono::TimeDelta;
use sigsentry_domain::correlation::LineRange;
use sigsentry_ports::{
    ChangedFile, CodeIndexStore, ConnectionStore, FileRef, MergedPullRequest, SyncStore, SyncSuccess, TreeSnapshot,
};

use crate::support::*;

for_both_backends!(
    files_are_found_by_name_in_the_project_only,
    changes_are_found_by_path_or_earlier_path_in_the_window
);

/// Syncs `repository` of `id` with this tree and these PRs.
async fn synced(fx: &Fixture, id: sigsentry_domain::ConnectionId, tree: &[&str], prs: Vec<MergedPullRequest>) {
    let jobs = fx.store.claim_due(t0(), t0(), 600, 100).await.unwrap();
    let job = jobs.into_iter().find(|j| j.connection_id == id).unwrap();
    let success = SyncSuccess {
        default_branch: Some("main".into()),
        pull_requests: prs,
        window_start: t0() - TimeDelta::days(45),
        updated_since: Some(t0()),
        synced_at: t0(),
        file_tree: Some(TreeSnapshot::Listed {
            revision: "r1".into(),
            paths: tree.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    assert!(fx.store.complete_sync(&job, success).await.unwrap());
}

fn pr(number: u64, days_ago: i64, files: Vec<ChangedFile>) -> MergedPullRequest {
    let merged_at = t0() - TimeDelta::days(days_ago);
    MergedPullRequest {
        number,
        title: format!("PR {number}"),
        author: Some("jdoe".into()),
        url: format!("https://github.com/acme/a/pull/{number}"),
        merged_at,
        merge_commit_sha: None,
        updated_at: merged_at,
        files,
    }
}

async fn files_are_found_by_name_in_the_project_only(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    synced(&fx, id, &["checkout/Cart.py", "billing/cart.py", "web/views.py"], vec![]).await;
    // The same file in another project's cache must never be seen.
    let other = fx.other_project().await;
    let mut foreign = new_connection(&fx, conn_id(), &["acme/other"], &[]);
    foreign.project_id = other;
    let foreign_id = foreign.id;
    fx.store.create_connection(foreign, 100, None).await.unwrap();
    synced(&fx, foreign_id, &["secret/cart.py"], vec![]).await;

    let mut found = fx.store.files_named(fx.project, &["cart.py".into()], 100).await.unwrap();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["billing/cart.py", "checkout/Cart.py"], "matched without regard to case, this project only");
    assert!(found.iter().all(|f| f.connection_id == id && f.repository_key == "acme/a"));
    assert_eq!(fx.store.files_named(fx.project, &["cart.py".into()], 1).await.unwrap().len(), 1, "bounded");
    assert!(fx.store.files_named(fx.project, &["nothing.py".into()], 100).await.unwrap().is_empty());

    // A paused connection is not searched.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut pause = change_of(&conn, &["acme/a"]);
    pause.is_active = false;
    fx.store.update_connection(pause, 100).await.unwrap();
    assert!(fx.store.files_named(fx.project, &["cart.py".into()], 100).await.unwrap().is_empty());
}

async fn changes_are_found_by_path_or_earlier_path_in_the_window(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let near = vec![LineRange::new(38, 47)];
    let prs = vec![
        pr(1, 40, vec![ChangedFile { path: "cart.py".into(), previous_path: None, ranges: near.clone() }]),
        pr(
            2,
            10,
            vec![ChangedFile { path: "src/cart.py".into(), previous_path: Some("cart.py".into()), ranges: vec![] }],
        ),
        pr(3, 2, vec![ChangedFile { path: "src/cart.py".into(), previous_path: None, ranges: near.clone() }]),
        pr(4, 1, vec![ChangedFile::path_only("web/views.py")]),
    ];
    synced(&fx, id, &["src/cart.py", "web/views.py"], prs).await;
    let wanted = |path: &str| FileRef { connection_id: id, repository_key: "acme/a".into(), path: path.into() };

    let since = t0() - TimeDelta::days(45);
    let found = fx.store.changes_to(fx.project, &[wanted("src/cart.py")], since, t0(), 100).await.unwrap();
    let numbers: Vec<u64> = found.iter().map(|c| c.number).collect();
    assert_eq!(numbers, [3, 2], "newest first; the rename counts under its new path");
    assert_eq!(found[0].ranges, near);
    assert_eq!(found[0].title, "PR 3");
    assert_eq!(found[1].previous_path.as_deref(), Some("cart.py"));

    // Under the earlier name: the rename itself and the change before it.
    let found = fx.store.changes_to(fx.project, &[wanted("cart.py")], since, t0(), 100).await.unwrap();
    assert_eq!(found.iter().map(|c| c.number).collect::<Vec<_>>(), [2, 1]);

    // The window bounds both ends.
    let files = [wanted("src/cart.py")];
    let (from, to) = (t0() - TimeDelta::days(5), t0() - TimeDelta::days(1));
    let found = fx.store.changes_to(fx.project, &files, from, to, 100).await.unwrap();
    assert_eq!(found.iter().map(|c| c.number).collect::<Vec<_>>(), [3]);

    // Another project asking about this connection's files gets nothing.
    let other = fx.other_project().await;
    assert!(fx.store.changes_to(other, &[wanted("src/cart.py")], since, t0(), 100).await.unwrap().is_empty());
}
