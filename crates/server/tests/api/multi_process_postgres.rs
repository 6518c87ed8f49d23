//! Two `sigsentry serve` processes on one PostgreSQL database, hit at once.
#![allow(clippy::unwrap_used)]

use crate::processes::{Cluster, SHARED_KEY, Store};
use sigsentry_testdb::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_database_keep_every_invariant() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        Cluster::start(Store { url: db.url().to_owned(), master_key: Some(SHARED_KEY.to_owned()) }, dir.path()).await;
    cluster.assert_invariants().await;
}
