//! Two `sigsentry serve` processes on one database, hit at once: quotas stay
//! exact, one creation per idempotency key, a repository is never attached
//! twice in a project. Runs on the embedded store here; the PostgreSQL run
//! is in `multi_process_postgres.rs`.
#![allow(clippy::unwrap_used)]

use crate::processes::{Cluster, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_sqlite_file_keep_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let cluster = Cluster::start(Store { url, master_key: None }, dir.path()).await;
    cluster.assert_invariants().await;
}
