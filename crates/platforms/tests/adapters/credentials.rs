//! Credentials that renew themselves and credentials that tell their
//! expiry, against stubs that check what the real endpoints check: the
//! GitHub App's JWT verified with the App's public key, GitLab's
//! form-encoded refresh, Bitbucket's client in Basic auth on another host
//! than its API, refresh tokens that rotate and cannot be spent twice.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sigsentry_domain::{
    BaseUrl, BaseUrlPolicy, CredentialUse, Credentials, InstallationId, OAuthTokens, Platform, Secret,
};
use sigsentry_platforms::{ClientSecret, GitHubAppConfig, OAuthClientConfig, PlatformClients, PlatformConfig};
use sigsentry_ports::{
    BoxFuture, CredentialKeeper, CredentialReport, OAuthExchange, PlatformClient, PlatformError, PlatformSession,
    RefreshError,
};

use crate::common::{Reply, Seen, Stub, config, repo};

const APP_ID: &str = "424242";
const APP_KEY: &str = include_str!("../fixtures/test-only-github-app-key.pem");
const APP_PUBLIC_KEY: &[u8] = include_bytes!("../fixtures/test-only-github-app-key.public.der");

/// A keeper that remembers what it was told and renews grants in memory,
/// counting the renewals.
#[derive(Default)]
struct Recorder {
    reports: Mutex<Vec<CredentialReport>>,
    renewals: Mutex<u32>,
}

impl Recorder {
    fn outcomes(&self) -> Vec<Option<CredentialUse>> {
        self.reports.lock().unwrap().iter().map(|r| r.outcome).collect()
    }

    fn expiries(&self) -> Vec<Option<DateTime<Utc>>> {
        self.reports.lock().unwrap().iter().filter_map(|r| r.expires_at).collect()
    }
}

impl CredentialKeeper for Recorder {
    fn observe(&self, report: CredentialReport) {
        self.reports.lock().unwrap().push(report);
    }

    fn renew_oauth<'a>(
        &'a self,
        seen: &'a OAuthTokens,
        exchange: &'a dyn OAuthExchange,
    ) -> BoxFuture<'a, Result<OAuthTokens, PlatformError>> {
        Box::pin(async move {
            *self.renewals.lock().unwrap() += 1;
            exchange.exchange(&seen.refresh_token).await.map_err(|error| match error {
                RefreshError::Refused { platform, .. } => PlatformError::CredentialsRejected { platform, status: 400 },
                RefreshError::Failed(error) => error,
            })
        })
    }
}

fn bearer(seen: &Seen) -> Option<&str> {
    seen.header("authorization").and_then(|v| v.strip_prefix("Bearer "))
}

/// Checks a GitHub App JWT as GitHub does: RS256 over the App's public key,
/// `iss` the App's id, `iat` in the past, `exp` at most 10 minutes ahead.
fn jwt_is_valid(jwt: &str) -> Result<(), String> {
    let (input, signature) = jwt.rsplit_once('.').ok_or("no signature")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "signature not base64url")?;
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, APP_PUBLIC_KEY);
    public.verify(input.as_bytes(), &signature).map_err(|_| "bad signature")?;
    let (header, claims) = input.split_once('.').ok_or("no claims")?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| "header")?).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|_| "claims")?).unwrap();
    let now = Utc::now().timestamp();
    if header["alg"] != "RS256" {
        return Err(format!("alg {header}"));
    }
    if claims["iss"] != APP_ID {
        return Err(format!("iss {claims}"));
    }
    let (iat, exp) = (claims["iat"].as_i64().ok_or("iat")?, claims["exp"].as_i64().ok_or("exp")?);
    if iat > now || exp <= now || exp > now + 600 || exp <= iat {
        return Err(format!("iat/exp {claims} at {now}"));
    }
    Ok(())
}

fn app_clients(root: &str) -> PlatformClients {
    let app = GitHubAppConfig { app_id: APP_ID.into(), private_key_pem: ClientSecret::new(APP_KEY) };
    PlatformClients::new(PlatformConfig { github_app: Some(app), ..config(root, false) }).unwrap()
}

fn installation(id: i64) -> Credentials {
    Credentials::GitHubApp { installation_id: InstallationId::new(id).unwrap(), base_url: None }
}

/// GitHub with installations 7 (live) and 8 (removed): tokens minted only
/// for a valid JWT, and the API taking only the tokens minted last.
fn github_app_stub(minted: Arc<Mutex<Vec<String>>>, revoke_first: bool) -> Stub {
    Stub::start(move |seen, _| {
        if seen.method == "POST" {
            let jwt = bearer(seen).unwrap_or_default();
            if let Err(why) = jwt_is_valid(jwt) {
                return Reply::json(401, json!({"message": format!("A JSON web token could not be decoded: {why}")}));
            }
            return match seen.path.as_str() {
                "/app/installations/7/access_tokens" => {
                    let mut minted = minted.lock().unwrap();
                    let token = format!("ghs_installationtoken{:04}", minted.len() + 1);
                    minted.push(token.clone());
                    let expires_at = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
                    Reply::json(201, json!({"token": token, "expires_at": expires_at}))
                }
                _ => Reply::json(404, json!({"message": "Not Found"})),
            };
        }
        let minted = minted.lock().unwrap();
        let token = bearer(seen).unwrap_or_default();
        // The first token is revoked before its time when asked to: a 401.
        let live = minted.last().is_some_and(|last| last == token) && !(revoke_first && minted.len() == 1);
        if !live {
            return Reply::json(401, json!({"message": "Bad credentials"}));
        }
        match seen.path.as_str() {
            "/installation/repositories" => Reply::json(200, json!({"total_count": 1, "repositories": []})),
            "/repos/acme/api" => Reply::json(200, json!({"default_branch": "main", "private": true}))
                // Installation tokens carry an expiry header too; it is not the user's concern.
                .header("github-authentication-token-expiration", "2026-12-02 10:00:00 UTC"),
            _ => Reply::json(404, json!({"message": "Not Found"})),
        }
    })
}

#[actix_web::test]
async fn app_installation_tokens_are_minted_with_a_verified_jwt_and_shared() {
    let minted = Arc::new(Mutex::new(Vec::new()));
    let stub = github_app_stub(minted.clone(), false);
    let clients = app_clients(&stub.url);
    let keeper = Arc::new(Recorder::default());
    let session = clients.open_kept(installation(7), keeper.clone()).await.unwrap();
    session.verify().await.unwrap();
    assert_eq!(stub.seen_at("/installation/repositories").len(), 1, "an installation token cannot call /user");
    assert!(stub.seen_at("/user").is_empty());
    let info = session.repository(&repo(Platform::GitHub, "acme/api")).await.unwrap();
    assert_eq!(info.default_branch.as_deref(), Some("main"));
    // A second session (another repository's sync) uses the same token.
    let other = clients.open_kept(installation(7), keeper.clone()).await.unwrap();
    other.repository(&repo(Platform::GitHub, "acme/api")).await.unwrap();
    assert_eq!(minted.lock().unwrap().len(), 1, "one mint for the process");
    assert_eq!(stub.seen().iter().filter(|s| s.method == "POST").count(), 1);
    assert!(keeper.expiries().is_empty(), "an App's expiry is the service's concern: {:?}", keeper.expiries());
    assert_eq!(keeper.outcomes(), vec![Some(CredentialUse::Accepted); 3]);
}

#[actix_web::test]
async fn a_refused_installation_token_is_replaced_at_once() {
    let minted = Arc::new(Mutex::new(Vec::new()));
    let stub = github_app_stub(minted.clone(), true);
    let clients = app_clients(&stub.url);
    let session = clients.open(installation(7)).await.unwrap();
    session.repository(&repo(Platform::GitHub, "acme/api")).await.unwrap();
    assert_eq!(minted.lock().unwrap().len(), 2, "the 401 made a new token");
    let tokens: Vec<String> = stub.seen_at("/repos/acme/api").iter().map(|s| bearer(s).unwrap().to_owned()).collect();
    assert_eq!(tokens, ["ghs_installationtoken0001", "ghs_installationtoken0002"]);
}

#[actix_web::test]
async fn a_removed_installation_is_rejected_without_a_retry_loop() {
    let stub = github_app_stub(Arc::default(), false);
    let clients = app_clients(&stub.url);
    let keeper = Arc::new(Recorder::default());
    let session = clients.open_kept(installation(8), keeper.clone()).await.unwrap();
    let error = session.repository(&repo(Platform::GitHub, "acme/api")).await.unwrap_err();
    assert_eq!(error, PlatformError::CredentialsRejected { platform: "GitHub", status: 404 });
    assert_eq!(keeper.outcomes(), [Some(CredentialUse::Refused)]);
    assert_eq!(stub.seen().len(), 1, "one mint, no API call, no retry: {:?}", stub.seen());
}

#[actix_web::test]
async fn a_wrong_app_key_is_the_operators_problem_and_says_so() {
    // An App id GitHub does not know for this key (the PKCS#8 form of it): the JWT is refused.
    let stub = github_app_stub(Arc::default(), false);
    let pkcs8 = include_str!("../fixtures/test-only-github-app-key.pkcs8.pem");
    let app = GitHubAppConfig { app_id: "999".into(), private_key_pem: ClientSecret::new(pkcs8) };
    let clients = PlatformClients::new(PlatformConfig { github_app: Some(app), ..config(&stub.url, false) }).unwrap();
    let error = clients.open(installation(7)).await.unwrap().verify().await.unwrap_err();
    assert!(error.to_string().contains("SIGSENTRY_GITHUB_APP_ID"), "{error}");
}

#[actix_web::test]
async fn personal_tokens_tell_their_expiry() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/user" => Reply::json(200, json!({"login": "dev"}))
            .header("github-authentication-token-expiration", "2026-12-02 10:00:00 UTC"),
        "/api/v4/user" => Reply::json(200, json!({"username": "dev"})),
        "/api/v4/personal_access_tokens/self" => Reply::json(200, json!({"id": 1, "expires_at": "2026-12-24"})),
        "/api/v4/projects/acme%2Fapi" => Reply::json(200, json!({"default_branch": "main", "visibility": "private"})),
        "/2.0/user" => Reply::json(200, json!({"username": "dev"})),
        _ => Reply::json(404, json!({"message": "404 Not Found"})),
    });
    let clients = crate::common::clients(&stub.url);
    let keeper = Arc::new(Recorder::default());
    clients.open_kept(crate::common::github(None), keeper.clone()).await.unwrap().verify().await.unwrap();
    let expected: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
    assert_eq!(keeper.expiries(), [Some(expected)]);

    let keeper = Arc::new(Recorder::default());
    let session = clients.open_kept(crate::common::gitlab(None), keeper.clone()).await.unwrap();
    session.repository(&repo(Platform::GitLab, "acme/api")).await.unwrap();
    session.repository(&repo(Platform::GitLab, "acme/api")).await.unwrap();
    let midnight: DateTime<Utc> = "2026-12-24T00:00:00Z".parse().unwrap();
    assert_eq!(keeper.expiries(), [Some(midnight)], "the day it stops working, at 00:00 UTC; asked once");
    assert_eq!(stub.seen_at("/api/v4/personal_access_tokens/self").len(), 1);

    // Bitbucket does not tell.
    let keeper = Arc::new(Recorder::default());
    clients.open_kept(crate::common::bitbucket(), keeper.clone()).await.unwrap().verify().await.unwrap();
    assert!(keeper.expiries().is_empty());
    assert_eq!(keeper.outcomes(), [Some(CredentialUse::Accepted)]);
}

/// An OAuth token endpoint that rotates refresh tokens: each is good once.
#[derive(Default)]
struct Grants {
    /// Refresh tokens that may still be spent.
    live: HashSet<String>,
    /// Access tokens the API takes.
    access: HashSet<String>,
    spent: Vec<String>,
    issued: u32,
}

impl Grants {
    fn with(refresh: &str) -> Arc<Mutex<Self>> {
        let mut grants = Grants::default();
        grants.live.insert(refresh.to_owned());
        Arc::new(Mutex::new(grants))
    }

    /// `grant_type=refresh_token&refresh_token=…`: a new access token and a
    /// new refresh token, the spent one dead; `invalid_grant` for a dead one.
    fn refresh(&mut self, form: &[(String, String)]) -> Reply {
        let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        if field("grant_type").as_deref() != Some("refresh_token") {
            return Reply::json(400, json!({"error": "unsupported_grant_type"}));
        }
        let Some(refresh) = field("refresh_token").filter(|r| self.live.remove(r)) else {
            return Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": "The provided authorization grant is invalid"}),
            );
        };
        self.spent.push(refresh);
        self.issued += 1;
        let (access, next) = (format!("oauth-access-{:04}", self.issued), format!("oauth-refresh-{:04}", self.issued));
        self.access.insert(access.clone());
        self.live.insert(next.clone());
        Reply::json(
            200,
            json!({"access_token": access, "token_type": "bearer", "expires_in": 7200, "refresh_token": next}),
        )
    }
}

fn form(seen: &Seen) -> Vec<(String, String)> {
    url::form_urlencoded::parse(seen.body.as_bytes()).into_owned().collect()
}

fn oauth(access: &str, refresh: &str, expires_in: TimeDelta) -> OAuthTokens {
    OAuthTokens {
        access_token: Secret::new(access.into()).unwrap(),
        refresh_token: Secret::new(refresh.into()).unwrap(),
        expires_at: Utc::now() + expires_in,
    }
}

fn gitlab_oauth_client(redirect: Option<&str>) -> OAuthClientConfig {
    OAuthClientConfig {
        client_id: "gitlab-app-id".into(),
        client_secret: ClientSecret::new("gitlab-app-secret"),
        redirect_uri: redirect.map(str::to_owned),
    }
}

fn gitlab_oauth_stub(grants: Arc<Mutex<Grants>>) -> Stub {
    Stub::start(move |seen, _| {
        let mut grants = grants.lock().unwrap();
        if seen.path == "/oauth/token" {
            let form = form(seen);
            let content_type = seen.header("content-type").unwrap_or_default();
            let client = |name: &str, value: &str| form.iter().any(|(n, v)| n == name && v == value);
            if !content_type.starts_with("application/x-www-form-urlencoded")
                || !client("client_id", "gitlab-app-id")
                || !client("client_secret", "gitlab-app-secret")
                || !client("redirect_uri", "https://sentry.acme.io/oauth/gitlab")
            {
                return Reply::json(401, json!({"error": "invalid_client"}));
            }
            return grants.refresh(&form);
        }
        // GitLab takes OAuth tokens only as Bearer, never as PRIVATE-TOKEN.
        let access = bearer(seen).filter(|_| seen.header("private-token").is_none());
        if !access.is_some_and(|a| grants.access.contains(a)) {
            return Reply::json(401, json!({"message": "401 Unauthorized"}));
        }
        match seen.path.as_str() {
            "/api/v4/projects/acme%2Fapi" => {
                Reply::json(200, json!({"default_branch": "main", "visibility": "private"}))
            }
            _ => Reply::json(404, json!({"message": "404 Not Found"})),
        }
    })
}

#[actix_web::test]
async fn gitlab_grants_are_refreshed_before_expiry_and_rotated_tokens_are_spent_once() {
    let grants = Grants::with("oauth-refresh-start");
    let stub = gitlab_oauth_stub(grants.clone());
    let client = gitlab_oauth_client(Some("https://sentry.acme.io/oauth/gitlab"));
    let clients =
        PlatformClients::new(PlatformConfig { gitlab_oauth: Some(client), ..config(&stub.url, false) }).unwrap();
    // Expiring in a minute: refreshed before the first call.
    let tokens = oauth("oauth-access-start", "oauth-refresh-start", TimeDelta::minutes(1));
    let credentials = Credentials::GitLabOAuth { tokens: tokens.clone(), base_url: None };
    let keeper = Arc::new(Recorder::default());
    let session = clients.open_kept(credentials.clone(), keeper.clone()).await.unwrap();
    session.repository(&repo(Platform::GitLab, "acme/api")).await.unwrap();
    session.repository(&repo(Platform::GitLab, "acme/api")).await.unwrap();
    assert_eq!(*keeper.renewals.lock().unwrap(), 1);
    let api_calls = stub.seen_at("/api/v4/projects/acme%2Fapi");
    assert!(api_calls.iter().all(|s| bearer(s) == Some("oauth-access-0001")), "{api_calls:?}");
    assert!(stub.seen_at("/api/v4/personal_access_tokens/self").is_empty(), "OAuth grants renew themselves");
    assert_eq!(grants.lock().unwrap().spent, ["oauth-refresh-start"]);

    // The spent refresh token is dead: a second use is refused, and says so.
    let keeper = Arc::new(Recorder::default());
    let stale = clients.open_kept(credentials, keeper.clone()).await.unwrap();
    let error = stale.repository(&repo(Platform::GitLab, "acme/api")).await.unwrap_err();
    assert_eq!(error, PlatformError::CredentialsRejected { platform: "GitLab", status: 400 });
    assert_eq!(grants.lock().unwrap().spent, ["oauth-refresh-start"], "nothing spent twice");
}

#[actix_web::test]
async fn gitlab_refreshes_on_a_self_managed_root_and_refuses_an_unknown_client() {
    let grants = Grants::with("oauth-refresh-start");
    let stub = gitlab_oauth_stub(grants);
    let client = gitlab_oauth_client(None);
    let config = PlatformConfig { gitlab_oauth: Some(client), ..config("https://gitlab.invalid", true) };
    let clients = PlatformClients::new(config).unwrap();
    let base_url = BaseUrl::parse(&stub.url, BaseUrlPolicy { allow_private: true }).unwrap();
    let tokens = oauth("oauth-access-start", "oauth-refresh-start", TimeDelta::minutes(1));
    let session = clients.open(Credentials::GitLabOAuth { tokens, base_url: Some(base_url) }).await.unwrap();
    // The stub wants the redirect URI this server was not configured with.
    let error = session.repository(&repo(Platform::GitLab, "acme/api")).await.unwrap_err();
    assert!(matches!(error, PlatformError::PermissionMissing { .. }), "{error:?}");
    assert_eq!(stub.seen_at("/oauth/token").len(), 1, "the token endpoint of the connection's own GitLab");
}

#[actix_web::test]
async fn bitbucket_refreshes_with_its_client_in_basic_auth_on_another_host() {
    let grants = Grants::with("oauth-refresh-start");
    let token_grants = grants.clone();
    let tokens_host = Stub::start(move |seen, _| {
        let basic = format!("Basic {}", STANDARD.encode("bitbucket-key:bitbucket-secret"));
        if seen.path != "/site/oauth2/access_token" || seen.header("authorization") != Some(basic.as_str()) {
            return Reply::json(401, json!({"error": "invalid_client"}));
        }
        token_grants.lock().unwrap().refresh(&form(seen))
    });
    let api_grants = grants.clone();
    let api = Stub::start(move |seen, _| {
        if !bearer(seen).is_some_and(|a| api_grants.lock().unwrap().access.contains(a)) {
            return Reply::json(401, json!({"type": "error", "error": {"message": "Access token expired."}}));
        }
        Reply::json(200, json!({"mainbranch": {"name": "main"}, "is_private": true}))
    });
    let client = OAuthClientConfig {
        client_id: "bitbucket-key".into(),
        client_secret: ClientSecret::new("bitbucket-secret"),
        redirect_uri: None,
    };
    let clients = PlatformClients::new(PlatformConfig {
        bitbucket_oauth: Some(client),
        bitbucket_token_url: format!("{}/site/oauth2/access_token", tokens_host.url),
        ..config(&api.url, false)
    })
    .unwrap();
    // Not due yet, but revoked early: the 401 makes it refresh once and try again.
    let tokens = oauth("oauth-access-start", "oauth-refresh-start", TimeDelta::hours(1));
    let keeper = Arc::new(Recorder::default());
    let session = clients.open_kept(Credentials::BitbucketOAuth { tokens }, keeper.clone()).await.unwrap();
    let info = session.repository(&repo(Platform::Bitbucket, "acme/api")).await.unwrap();
    assert_eq!(info.default_branch.as_deref(), Some("main"));
    let used: Vec<_> = api.seen().iter().map(|s| bearer(s).unwrap_or_default().to_owned()).collect();
    assert_eq!(used, ["oauth-access-start", "oauth-access-0001"]);
    assert_eq!(*keeper.renewals.lock().unwrap(), 1);
    assert_eq!(keeper.outcomes(), [Some(CredentialUse::Accepted)]);
    let refresh = &tokens_host.seen()[0];
    assert!(!form(refresh).iter().any(|(n, _)| n == "client_secret"), "the client goes in Basic auth only");
    assert!(!refresh.headers.iter().any(|(_, v)| v.contains("oauth-access")), "no access token to the token host");
}
