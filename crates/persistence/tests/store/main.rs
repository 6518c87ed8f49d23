//! The persistence crate's integration tests, in one binary (one link
//! instead of one per file).
//!
//! The store contract is split by port (`accounts`, `connections`,
//! `idempotency`, `sync`): every test body is written once and runs against
//! both backends (`…::sqlite::*` and `…::postgres::*`), each test on a
//! database of its own (see `sigsentry-testdb`). Tests of one backend's own
//! machinery live in `sqlite_store`, `postgres_store` and `postgres_tls`;
//! `schema_parity` compares the two migration folders.

// clippy.toml allows unwrap in test functions only, not in these files' helpers.
#![allow(clippy::unwrap_used)]

/// Generates one `#[tokio::test]` per backend for each body named, in
/// modules `sqlite` and `postgres` of the module that names them.
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Kind::Postgres).await
                }
            )*
        }
    };
}

mod support;

mod accounts;
mod code_index;
mod connections;
mod credentials;
mod idempotency;
mod sync;
mod webhooks;

mod postgres_store;
mod postgres_tls;
mod schema_parity;
mod sqlite_store;
