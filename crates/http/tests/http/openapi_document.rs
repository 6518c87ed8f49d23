//! The committed `docs/openapi.json` is the document the code generates.
//! Regenerate it with `UPDATE_OPENAPI=1 cargo test -p sigsentry-http --test http`.

use std::path::PathBuf;

use sigsentry_domain::{PathPrefix, Secret, ServiceName};

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

fn document() -> serde_json::Value {
    serde_json::from_str(&sigsentry_http::openapi::document_json()).unwrap()
}

/// The characters `refused` picks, as a pattern's class body: BMP ones as
/// `\uXXXX`, the others as themselves.
fn class_of(refused: impl Fn(char) -> bool) -> String {
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|&c| refused(c)) {
        match ranges.last_mut() {
            Some((_, end)) if *end as u32 + 1 == c as u32 => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    let one = |c: char| if (c as u32) <= 0xFFFF { format!("\\u{:04x}", c as u32) } else { c.to_string() };
    ranges
        .into_iter()
        .map(|(start, end)| match end as u32 - start as u32 {
            0 => one(start),
            1 => format!("{}{}", one(start), one(end)),
            _ => format!("{}-{}", one(start), one(end)),
        })
        .collect()
}

/// The patterns spell out, as character ranges, which characters the domain
/// refuses; found here by asking the domain about every character, so the
/// two cannot drift.
#[test]
fn character_classes_are_the_domains() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let blank = class_of(|c| Secret::new(c.to_string()).is_err());
    assert_eq!(blank, r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000");
    let secret = format!("^[^{blank}]+$");
    assert_eq!(schemas["TokenCredentials"]["properties"]["token"]["pattern"], secret.as_str());
    assert_eq!(schemas["AppPasswordCredentials"]["properties"]["appPassword"]["pattern"], secret.as_str());
    assert_eq!(schemas["AppPasswordCredentials"]["properties"]["username"]["pattern"], secret.as_str());
    assert_eq!(schemas["ApiTokenCredentials"]["properties"]["apiToken"]["pattern"], secret.as_str());

    let edge = class_of(|c| ServiceName::new(c.to_string()).is_err());
    let inner = class_of(|c| ServiceName::new(format!("a{c}a")).is_err());
    let service = format!("^[^{edge}](?:[^{inner}]*[^{edge}])?$");
    assert_eq!(schemas["ServiceMappingBody"]["properties"]["serviceName"]["pattern"], service.as_str());

    let control = class_of(|c| c != '\\' && PathPrefix::new(&format!("a{c}a")).is_err());
    assert_eq!(control, class_of(char::is_control));
    let prefix = schemas["ServiceMappingBody"]["properties"]["pathPrefix"]["pattern"].as_str().unwrap();
    assert!(prefix.ends_with(&format!("[^\\\\{control}]*$")), "{prefix}");
}

/// Every operation declares its success body, and every operation on a
/// project its errors: 400, 401, 403, 404, 429, 500 and 503.
#[test]
fn every_answer_is_declared() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let success: Vec<_> = responses.keys().filter(|s| s.starts_with('2')).collect();
            assert_eq!(success.len(), 1, "{method} {path}");
            let body = &responses[success[0].as_str()]["content"]["application/json"]["schema"];
            assert!(body.is_object(), "{method} {path}: no success body");
            if path.starts_with("/v1/config/") {
                for status in ["400", "401", "403", "404", "429", "500", "503"] {
                    assert!(responses.contains_key(status), "{method} {path}: no {status}");
                }
            }
        }
    }
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
