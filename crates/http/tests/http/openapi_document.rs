//! The committed `docs/openapi.json` is the document the code generates.
//! Regenerate it with `UPDATE_OPENAPI=1 cargo test -p sigsentry-http --test http`.

use std::path::PathBuf;

#[test]
fn committed_document_matches_the_code() {
    let generated = sigsentry_http::openapi::document_json();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "docs/openapi.json is out of date; run: UPDATE_OPENAPI=1 cargo test -p sigsentry-http --test http"
    );
}

#[test]
fn document_is_openapi_3_1_and_covers_every_endpoint() {
    let doc: serde_json::Value = serde_json::from_str(&sigsentry_http::openapi::document_json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/config/repos", "get"),
        ("/v1/config/repos", "post"),
        ("/v1/config/repos/{id}", "get"),
        ("/v1/config/repos/{id}", "put"),
        ("/v1/config/repos/{id}", "delete"),
        ("/v1/config/repos/{id}/cache", "delete"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
}
