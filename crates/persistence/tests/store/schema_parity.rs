//! The two migration folders describe one schema. Both are applied to fresh
//! databases, their catalogs read into one normalized model (tables,
//! columns and nullability, primary keys, unique constraints and indexes as
//! column lists, plain indexes, foreign keys; types are left out, as they
//! differ by dialect on purpose), and compared. Both must also be
//! reversible: up, down (all), up again.

use std::collections::BTreeSet;

use diesel::migration::MigrationSource;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;
use sigsentry_persistence::{MIGRATIONS, PG_MIGRATIONS, migrate, migrate_postgres, sqlite_path};
use sigsentry_testdb::TestDb;

/// One fact of a schema, as a readable line: "api_keys: unique (key_hash)".
type Schema = BTreeSet<String>;

const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// The names (`<date>_<what>`) of the migrations of both folders, which
/// must be the same: a migration is written once per dialect.
fn migration_names() -> Vec<String> {
    fn names<DB: diesel::backend::Backend>(source: &impl MigrationSource<DB>) -> Vec<String> {
        source.migrations().unwrap().iter().map(|m| m.name().to_string()).collect()
    }
    let sqlite = names::<diesel::sqlite::Sqlite>(&MIGRATIONS);
    assert_eq!(sqlite, names::<diesel::pg::Pg>(&PG_MIGRATIONS), "each migration is written for both dialects");
    // diesel keys a migration by the version before the first `_`: two
    // folders with one version (branches that picked the same date) would
    // silently apply only one of them.
    let mut versions = std::collections::BTreeSet::new();
    for name in &sqlite {
        let version = name.split('_').next().unwrap_or_default();
        assert!(versions.insert(version.to_owned()), "two migrations share the version {version}: rename one");
    }
    sqlite
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    notnull: i64,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    unique: i64,
    #[diesel(sql_type = Text)]
    origin: String,
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Text)]
    from_column: String,
    #[diesel(sql_type = Text)]
    to_column: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let mut facts = Schema::new();
    let tables = diesel::sql_query(format!(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '{MIGRATIONS_TABLE}'"
    ))
    .load::<Name>(conn)
    .unwrap();
    for Name { name: table } in tables {
        facts.insert(format!("table {table}"));
        let columns = diesel::sql_query(format!(
            "SELECT name, \"notnull\" AS \"notnull\", pk FROM pragma_table_info({}) ORDER BY cid",
            quote(&table)
        ))
        .load::<Column>(conn)
        .unwrap();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for column in columns {
            let null = if column.notnull == 1 { "NOT NULL" } else { "NULL" };
            facts.insert(format!("{table}: column {} {null}", column.name));
            if column.pk > 0 {
                pk.push((column.pk, column.name));
            }
        }
        pk.sort();
        if !pk.is_empty() {
            let columns: Vec<String> = pk.into_iter().map(|(_, name)| name).collect();
            facts.insert(format!("{table}: primary key ({})", columns.join(", ")));
        }
        let indexes = diesel::sql_query(format!(
            "SELECT name, \"unique\" AS \"unique\", origin FROM pragma_index_list({})",
            quote(&table)
        ))
        .load::<Index>(conn)
        .unwrap();
        for index in indexes {
            // The primary key's own index is the primary key fact above.
            if index.origin == "pk" {
                continue;
            }
            let columns: Vec<String> =
                diesel::sql_query(format!("SELECT name FROM pragma_index_info({}) ORDER BY seqno", quote(&index.name)))
                    .load::<Name>(conn)
                    .unwrap()
                    .into_iter()
                    .map(|n| n.name)
                    .collect();
            let kind = if index.unique == 1 { "unique" } else { "index" };
            facts.insert(format!("{table}: {kind} ({})", columns.join(", ")));
        }
        let keys = diesel::sql_query(format!(
            "SELECT id, \"table\" AS target, \"from\" AS from_column, \"to\" AS to_column, on_delete \
             FROM pragma_foreign_key_list({}) ORDER BY id, seq",
            quote(&table)
        ))
        .load::<ForeignKey>(conn)
        .unwrap();
        let mut by_id: std::collections::BTreeMap<i64, (String, Vec<String>, Vec<String>, String)> =
            std::collections::BTreeMap::new();
        for key in keys {
            let entry =
                by_id.entry(key.id).or_insert_with(|| (key.target.clone(), vec![], vec![], key.on_delete.clone()));
            entry.1.push(key.from_column);
            entry.2.push(key.to_column);
        }
        for (target, from, to, on_delete) in by_id.into_values() {
            facts.insert(format!(
                "{table}: foreign key ({}) -> {target} ({}) on delete {}",
                from.join(", "),
                to.join(", "),
                on_delete.to_lowercase()
            ));
        }
    }
    facts
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn pg_schema(url: &str) -> Schema {
    let client = pg_client(url).await;
    let mut facts = Schema::new();
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> $1",
            &[&MIGRATIONS_TABLE],
        )
        .await
        .unwrap();
    for row in tables {
        facts.insert(format!("table {}", row.get::<_, String>(0)));
    }
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> $1",
            &[&MIGRATIONS_TABLE],
        )
        .await
        .unwrap();
    for row in columns {
        let null = if row.get::<_, String>(2) == "YES" { "NULL" } else { "NOT NULL" };
        facts.insert(format!("{}: column {} {null}", row.get::<_, String>(0), row.get::<_, String>(1)));
    }
    // Every index, including those behind PRIMARY KEY and UNIQUE constraints,
    // with its columns in key order.
    let indexes = client
        .query(
            "SELECT t.relname::text, ix.indisprimary, ix.indisunique, \
                    ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord) \
             FROM pg_index ix \
             JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'public' AND t.relname <> $1",
            &[&MIGRATIONS_TABLE],
        )
        .await
        .unwrap();
    for row in indexes {
        let table: String = row.get(0);
        let columns: Vec<String> = row.get(3);
        let kind = match (row.get::<_, bool>(1), row.get::<_, bool>(2)) {
            (true, _) => "primary key",
            (false, true) => "unique",
            (false, false) => "index",
        };
        facts.insert(format!("{table}: {kind} ({})", columns.join(", ")));
    }
    let keys = client
        .query(
            "SELECT t.relname::text, r.relname::text, c.confdeltype::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord), \
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) \
             FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_class r ON r.oid = c.confrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE c.contype = 'f' AND n.nspname = 'public'",
            &[],
        )
        .await
        .unwrap();
    for row in keys {
        let on_delete = match row.get::<_, String>(2).as_str() {
            "c" => "cascade",
            "r" => "restrict",
            "n" => "set null",
            "d" => "set default",
            _ => "no action",
        };
        let (from, to): (Vec<String>, Vec<String>) = (row.get(3), row.get(4));
        facts.insert(format!(
            "{}: foreign key ({}) -> {} ({}) on delete {on_delete}",
            row.get::<_, String>(0),
            from.join(", "),
            row.get::<_, String>(1),
            to.join(", ")
        ));
    }
    facts
}

/// The facts only one side has, one per line, or `None` when they agree.
fn difference(sqlite: &Schema, postgres: &Schema) -> Option<String> {
    let only = |a: &Schema, b: &Schema| a.difference(b).map(|f| format!("    {f}")).collect::<Vec<_>>().join("\n");
    let (only_sqlite, only_pg) = (only(sqlite, postgres), only(postgres, sqlite));
    if only_sqlite.is_empty() && only_pg.is_empty() {
        return None;
    }
    Some(format!(
        "migrations/sqlite and migrations/postgres disagree.\n  only in SQLite:\n{only_sqlite}\n  only in PostgreSQL:\n{only_pg}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_migration_folders_give_the_same_schema() {
    let sqlite = TestDb::sqlite();
    migrate(sqlite.url()).await.unwrap();
    let mut conn = SqliteConnection::establish(sqlite_path(sqlite.url())).unwrap();
    let sqlite_facts = sqlite_schema(&mut conn);

    let pg = TestDb::postgres_unmigrated().await;
    migrate_postgres(pg.url()).await.unwrap();
    let pg_facts = pg_schema(pg.url()).await;

    // The model must have caught something, or an empty comparison would pass.
    assert!(sqlite_facts.contains("connection_repositories: unique (project_id, name_key)"), "{sqlite_facts:#?}");
    assert!(sqlite_facts.iter().any(|f| f.contains("foreign key")), "{sqlite_facts:#?}");
    // ...and the second migration's tables and columns.
    for fact in [
        "connection_repositories: column attempts NOT NULL",
        "connection_repositories: column lease_token NULL",
        "pull_requests: primary key (connection_id, repository_key, number)",
        "pull_requests: foreign key (connection_id) -> repo_connections (id) on delete cascade",
        "pull_request_files: index (connection_id, path)",
        "pull_request_files: foreign key (connection_id, repository_key, number) -> pull_requests \
         (connection_id, repository_key, number) on delete cascade",
    ] {
        assert!(sqlite_facts.contains(fact), "{fact}: {sqlite_facts:#?}");
    }
    if let Some(diff) = difference(&sqlite_facts, &pg_facts) {
        panic!("{diff}");
    }
}

#[test]
fn the_comparison_names_what_only_one_side_has() {
    let a: Schema = ["t: column a NOT NULL".to_owned(), "t: unique (a)".to_owned()].into();
    let b: Schema = ["t: column a NULL".to_owned(), "t: unique (a)".to_owned()].into();
    let diff = difference(&a, &b).unwrap();
    assert!(diff.contains("only in SQLite:\n    t: column a NOT NULL"), "{diff}");
    assert!(diff.contains("only in PostgreSQL:\n    t: column a NULL"), "{diff}");
    assert!(difference(&a, &a).is_none());
}

#[test]
fn sqlite_migrations_go_up_down_and_up_again() {
    let db = TestDb::sqlite();
    let mut conn = SqliteConnection::establish(sqlite_path(db.url())).unwrap();
    assert_eq!(conn.run_pending_migrations(MIGRATIONS).unwrap().len(), migration_names().len());
    let first = sqlite_schema(&mut conn);
    assert!(!first.is_empty());
    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(sqlite_schema(&mut conn), Schema::new(), "down drops everything up creates");
    assert_eq!(conn.run_pending_migrations(MIGRATIONS).unwrap().len(), migration_names().len());
    assert_eq!(sqlite_schema(&mut conn), first);
    assert!(conn.run_pending_migrations(MIGRATIONS).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_go_up_down_and_up_again() {
    let db = TestDb::postgres_unmigrated().await;
    let url = db.url().to_owned();
    let run = |step: fn(&mut AsyncConnectionWrapper<AsyncPgConnection>) -> usize| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
                step(&mut conn)
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(run(|c| c.run_pending_migrations(PG_MIGRATIONS).unwrap().len()).await, migration_names().len());
    let first = pg_schema(&url).await;
    assert!(!first.is_empty());
    run(|c| c.revert_all_migrations(PG_MIGRATIONS).unwrap().len()).await;
    assert_eq!(pg_schema(&url).await, Schema::new(), "down drops everything up creates");
    assert_eq!(run(|c| c.run_pending_migrations(PG_MIGRATIONS).unwrap().len()).await, migration_names().len());
    assert_eq!(pg_schema(&url).await, first);
    assert_eq!(run(|c| c.run_pending_migrations(PG_MIGRATIONS).unwrap().len()).await, 0);
}
