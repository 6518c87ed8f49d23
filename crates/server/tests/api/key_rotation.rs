//! Master key rotation: a new key first in the ring, `sigsentry credentials
//! reencrypt` moves every credential under it (twice is harmless), and then
//! the old key can go. On both stores.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use crate::common::{TEST_MASTER_KEY, TestApp};
use serde_json::{Value, json};
use sigsentry_crypto::Keyring;
use sigsentry_domain::{CredentialKind, Credentials, Plan, Platform};
use sigsentry_persistence::AnyStore;
use sigsentry_ports::{ConnectionStore, CredentialCipher, WebhookStore};
use sigsentry_testdb::TestDb;

const NEW_KEY: &str = "TkVXTkVXTkVXTkVXTkVXTkVXTkVXTkVXTkVXTkVXMDA=";

fn reencrypt(url: &str, dir: &std::path::Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_sigsentry"))
        .args(["credentials", "reencrypt", "--batch", "2", "--json"])
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("SIGSENTRY_MASTER_KEYS", format!("new:{NEW_KEY},{TEST_MASTER_KEY}"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn rotate(url: &str) {
    let app = TestApp::spawn_with(Plan::Team, &[("DATABASE_URL", url)]).await;
    let tokens = ["ghp_rotationtoken00000000001", "ghp_rotationtoken00000000002", "ghp_rotationtoken00000000003"];
    for (i, token) in tokens.iter().enumerate() {
        app.create(
            &json!({"platform": "github", "credentials": {"token": token}, "repositories": [format!("acme/r{i}")]}),
        )
        .await;
    }

    // One row as the release before the platform, kind and baseUrl were
    // bound sealed it: it still opens once, here, and is bound on the way.
    let store = AnyStore::open(url).await.unwrap();
    let old_ring = Keyring::parse(TEST_MASTER_KEY).unwrap();
    let row = store.credentials_not_under("no-such-key", 1).await.unwrap().remove(0);
    let aad = row.aad();
    let plain = old_ring.open(&row.sealed, &aad).unwrap();
    let v1 = old_ring.seal_v1_for_tests(&plain, &aad).unwrap();
    assert!(old_ring.open(&v1, &aad).is_err(), "a version-1 value does not open as version 2");
    assert!(store.reseal_credentials(row.connection_id, &row.sealed, v1).await.unwrap());

    let report = reencrypt(url, app.dir.path());
    // Three credentials (one of them rebound) and the three connections' webhook secrets.
    assert_eq!((report["resealed"].as_u64(), report["rebound"].as_u64()), (Some(6), Some(1)), "{report}");
    assert_eq!(reencrypt(url, app.dir.path())["resealed"], 0, "a second run finds nothing to do");

    // Only the new key is needed now: every credential opens with it alone.
    let only_new = Keyring::parse(&format!("new:{NEW_KEY}")).unwrap();
    let rows = store.credentials_not_under("no-such-key", 100).await.unwrap();
    assert_eq!(rows.len(), 3);
    let mut opened: Vec<String> = rows
        .iter()
        .map(|row| {
            assert_eq!(row.sealed.key_id, "new");
            let aad = row.aad();
            let plain = only_new.open(&row.sealed, &aad).unwrap();
            let creds =
                Credentials::from_sealed_plaintext(Platform::GitHub, CredentialKind::Token, None, &plain).unwrap();
            creds.secret().expect("a token").expose().to_owned()
        })
        .collect();
    opened.sort();
    assert_eq!(opened, tokens);
    assert!(store.credentials_not_under("new", 100).await.unwrap().is_empty());

    // The webhook secrets moved too, and open with the new key alone.
    let secrets = store.webhook_secrets_not_under("no-such-key", 100).await.unwrap();
    assert_eq!(secrets.len(), 3);
    for row in &secrets {
        assert_eq!(row.sealed.key_id, "new");
        let aad = row.aad();
        let plain = only_new.open_webhook_secret(&row.sealed, &aad).unwrap();
        assert!(plain.starts_with(b"ss_whsec_"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_sqlite() {
    let db = TestDb::sqlite();
    rotate(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_postgres() {
    let db = TestDb::postgres().await;
    rotate(db.url()).await;
}
