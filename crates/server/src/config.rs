//! Configuration from the environment. Read once at start-up and passed in:
//! no global, so tests can run many configured apps side by side.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use sigsentry_domain::QuotaTable;

/// A secret from the environment: usable, never printed. `Debug` (and so
/// any log of a `Config`) shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `DATABASE_URL`: `Debug` shows it with any password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL, password included, for opening the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                // Setting a password only fails on URLs that cannot hold one.
                let _ = url.set_password(Some("<redacted>"));
                write!(f, "{:?}", url.as_str())
            }
            Ok(_) => write!(f, "{:?}", self.0),
            Err(_) => f.write_str("<unparsable>"),
        }
    }
}

/// Everything the process is told by its environment. `Debug` never shows
/// a secret: keys are [`Sensitive`], the database password masked.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH` (default `sqlite://./data/sigsentry.db`).
    pub database_url: DatabaseUrl,
    /// Where to listen (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// A keyring (`SIGSENTRY_MASTER_KEYS`) or one key (`SIGSENTRY_MASTER_KEY`).
    pub master_keys: Option<Sensitive<String>>,
    /// Where the embedded store keeps files (default `./data`).
    pub data_dir: PathBuf,
    /// Allow `http` and private or loopback `baseUrl`s.
    pub allow_private_base_urls: bool,
    /// Repositories per project, by plan.
    pub quotas: QuotaTable,
    /// Cloud API roots (tests and egress proxies aim them elsewhere).
    pub platform_roots: PlatformRoots,
    /// Run the sync worker inside `serve` (`false`: an API-only replica).
    pub sync_worker: bool,
    /// A `ready` repository is synced again after this many seconds.
    pub sync_interval_secs: u32,
    /// Longest one repository's sync may run, in seconds (`SIGSENTRY_SYNC_JOB_TIMEOUT_SECS`).
    pub sync_job_timeout_secs: u32,
    /// Repositories one worker syncs at once (`SIGSENTRY_SYNC_CONCURRENCY`).
    pub sync_concurrency: u32,
    /// Of those, the most one tenant may have running
    /// (`SIGSENTRY_SYNC_TENANT_CONCURRENCY`; default: one less than
    /// `sync_concurrency`, at least 1).
    pub sync_tenant_concurrency: u32,
    /// Requests per minute per API key, in each process (`SIGSENTRY_RATE_LIMIT`).
    pub rate_limit_per_minute: u32,
    /// Longest wait for a request body, in seconds (`SIGSENTRY_BODY_TIMEOUT_SECS`).
    pub body_timeout_secs: u32,
    /// Serve `GET /metrics` on this address instead of on `listen` (`SIGSENTRY_METRICS_LISTEN`).
    pub metrics_listen: Option<SocketAddr>,
    /// The service's public base URL, without a trailing `/` (`SIGSENTRY_PUBLIC_URL`; may
    /// carry a path prefix). `None`: `http://` and the address actually listened on.
    pub public_url: Option<String>,
    /// The GitHub App's webhook secret (`SIGSENTRY_GITHUB_APP_WEBHOOK_SECRET`).
    pub github_app_webhook_secret: Option<Sensitive<String>>,
    /// The GitHub App and OAuth clients that self-renewing credentials need.
    pub renewal: RenewalConfig,
}

/// The operator's GitHub App and OAuth clients. A kind left unconfigured is
/// refused when a user sets it (400 at `/credentials`, naming the setting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewalConfig {
    /// `SIGSENTRY_GITHUB_APP_ID` and `SIGSENTRY_GITHUB_APP_PRIVATE_KEY` (or `..._FILE`).
    pub github_app: Option<GitHubAppConfig>,
    /// `SIGSENTRY_GITLAB_OAUTH_CLIENT_ID`, `..._SECRET`, and `SIGSENTRY_GITLAB_OAUTH_REDIRECT_URI`.
    pub gitlab_oauth: Option<OAuthClientConfig>,
    /// `SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID` and `..._SECRET`.
    pub bitbucket_oauth: Option<OAuthClientConfig>,
    /// `SIGSENTRY_BITBUCKET_OAUTH_TOKEN_URL` (default `https://bitbucket.org/site/oauth2/access_token`).
    pub bitbucket_token_url: String,
}

/// A GitHub App: its id and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubAppConfig {
    /// The App's id (or client id): the JWT's `iss`.
    pub app_id: String,
    /// The PEM text of its private key.
    pub private_key_pem: Sensitive<String>,
}

/// An OAuth client registered with a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientConfig {
    /// The client (application, consumer) id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Sensitive<String>,
    /// The redirect URI registered with the client, sent with refreshes when set (GitLab).
    pub redirect_uri: Option<String>,
}

impl RenewalConfig {
    /// Which kinds are configured, as the service checks them.
    pub fn setup(&self) -> sigsentry_domain::RenewalSetup {
        sigsentry_domain::RenewalSetup {
            github_app: self.github_app.is_some(),
            gitlab_oauth: self.gitlab_oauth.is_some(),
            bitbucket_oauth: self.bitbucket_oauth.is_some(),
        }
    }

    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        // Half a configuration is an operator's slip: say which half is missing at start-up.
        let pair = |first: &str, second: &str| -> anyhow::Result<Option<(String, String)>> {
            match (get(first), get(second)) {
                (Some(a), Some(b)) => Ok(Some((a, b))),
                (None, None) => Ok(None),
                (Some(_), None) => bail!("{first} is set but {second} is not; set both, or neither"),
                (None, Some(_)) => bail!("{second} is set but {first} is not; set both, or neither"),
            }
        };
        let key = match (get("SIGSENTRY_GITHUB_APP_PRIVATE_KEY"), get("SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE")) {
            (Some(_), Some(_)) => {
                bail!("set SIGSENTRY_GITHUB_APP_PRIVATE_KEY or SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE, not both")
            }
            (Some(pem), None) => Some(pem.replace("\\n", "\n")),
            (None, Some(path)) => Some(std::fs::read_to_string(&path).with_context(|| {
                format!("SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE names a file that cannot be read ({path})")
            })?),
            (None, None) => None,
        };
        let github_app = match (get("SIGSENTRY_GITHUB_APP_ID"), key) {
            (Some(app_id), Some(pem)) => Some(GitHubAppConfig { app_id, private_key_pem: Sensitive::new(pem) }),
            (None, None) => None,
            (Some(_), None) => bail!(
                "SIGSENTRY_GITHUB_APP_ID is set but SIGSENTRY_GITHUB_APP_PRIVATE_KEY (or ..._FILE) is not; set both, or neither"
            ),
            (None, Some(_)) => bail!(
                "SIGSENTRY_GITHUB_APP_PRIVATE_KEY is set but SIGSENTRY_GITHUB_APP_ID is not; set both, or neither"
            ),
        };
        let client = |id: &str, secret: &str, redirect: Option<&str>| -> anyhow::Result<Option<OAuthClientConfig>> {
            Ok(pair(id, secret)?.map(|(client_id, secret)| OAuthClientConfig {
                client_id,
                client_secret: Sensitive::new(secret),
                redirect_uri: redirect.and_then(get),
            }))
        };
        let gitlab_oauth = client(
            "SIGSENTRY_GITLAB_OAUTH_CLIENT_ID",
            "SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET",
            Some("SIGSENTRY_GITLAB_OAUTH_REDIRECT_URI"),
        )?;
        let bitbucket_oauth =
            client("SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID", "SIGSENTRY_BITBUCKET_OAUTH_CLIENT_SECRET", None)?;
        let bitbucket_token_url = get("SIGSENTRY_BITBUCKET_OAUTH_TOKEN_URL")
            .unwrap_or_else(|| "https://bitbucket.org/site/oauth2/access_token".to_owned());
        match url::Url::parse(&bitbucket_token_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
            _ => bail!(
                "SIGSENTRY_BITBUCKET_OAUTH_TOKEN_URL must be an http(s) URL with a host, got {bitbucket_token_url:?}"
            ),
        }
        Ok(Self { github_app, gitlab_oauth, bitbucket_oauth, bitbucket_token_url })
    }
}

/// Where the platforms' cloud APIs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformRoots {
    /// `SIGSENTRY_GITHUB_API_URL`.
    pub github_api_url: String,
    /// `SIGSENTRY_GITLAB_URL` (the instance root; the API is under `/api/v4`).
    pub gitlab_url: String,
    /// `SIGSENTRY_BITBUCKET_API_URL`.
    pub bitbucket_api_url: String,
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// Names the variable that is wrong and why.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (tests pass a map).
    ///
    /// # Errors
    /// Names the variable that is wrong and why.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let database_url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://./data/sigsentry.db".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("DATABASE_URL must start with sqlite:// (embedded) or postgres:// (got a URL of another scheme)");
        }
        let listen = get("SIGSENTRY_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("SIGSENTRY_LISTEN must be HOST:PORT such as 127.0.0.1:8080, got {listen:?}"))?;
        let master_keys = get("SIGSENTRY_MASTER_KEYS").or_else(|| get("SIGSENTRY_MASTER_KEY")).map(Sensitive::new);
        let data_dir = PathBuf::from(get("SIGSENTRY_DATA_DIR").unwrap_or_else(|| "./data".to_owned()));
        let allow_private_base_urls = match get("SIGSENTRY_ALLOW_PRIVATE_BASE_URLS").as_deref() {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => bail!("SIGSENTRY_ALLOW_PRIVATE_BASE_URLS must be true or false, got {other:?}"),
        };
        let quotas = match get("SIGSENTRY_QUOTAS") {
            None => QuotaTable::default(),
            Some(spec) => QuotaTable::default()
                .with_overrides(&spec)
                .map_err(|e| anyhow::anyhow!("SIGSENTRY_QUOTAS must look like free=5,team=50: {e}"))?,
        };
        let root = |name: &str, default: &str| -> anyhow::Result<String> {
            let value = get(name).unwrap_or_else(|| default.to_owned());
            let parsed =
                url::Url::parse(&value).with_context(|| format!("{name} must be an absolute URL, got {value:?}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                bail!("{name} must be an http(s) URL with a host, got {value:?}");
            }
            Ok(value.trim_end_matches('/').to_owned())
        };
        let platform_roots = PlatformRoots {
            github_api_url: root("SIGSENTRY_GITHUB_API_URL", "https://api.github.com")?,
            gitlab_url: root("SIGSENTRY_GITLAB_URL", "https://gitlab.com")?,
            bitbucket_api_url: root("SIGSENTRY_BITBUCKET_API_URL", "https://api.bitbucket.org/2.0")?,
        };
        let sync_worker = match get("SIGSENTRY_SYNC_WORKER").as_deref() {
            None | Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => bail!("SIGSENTRY_SYNC_WORKER must be true or false, got {other:?}"),
        };
        let sync_interval_secs = match get("SIGSENTRY_SYNC_INTERVAL_SECS") {
            None => 900,
            Some(raw) => match raw.parse::<u32>() {
                Ok(secs) if secs >= 1 => secs,
                _ => bail!("SIGSENTRY_SYNC_INTERVAL_SECS must be a whole number of seconds (at least 1), got {raw:?}"),
            },
        };
        let whole = |name: &str, default: u32, what: &str| -> anyhow::Result<u32> {
            match get(name) {
                None => Ok(default),
                Some(raw) => match raw.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => bail!("{name} must be a whole number of {what} (at least 1), got {raw:?}"),
                },
            }
        };
        let sync_job_timeout_secs = whole("SIGSENTRY_SYNC_JOB_TIMEOUT_SECS", 300, "seconds")?;
        let sync_concurrency = whole("SIGSENTRY_SYNC_CONCURRENCY", 4, "repositories")?;
        let sync_tenant_concurrency =
            whole("SIGSENTRY_SYNC_TENANT_CONCURRENCY", sync_concurrency.saturating_sub(1).max(1), "repositories")?;
        let rate_limit_per_minute = whole("SIGSENTRY_RATE_LIMIT", 1200, "requests per minute")?;
        let body_timeout_secs = whole("SIGSENTRY_BODY_TIMEOUT_SECS", 10, "seconds")?;
        let metrics_listen = get("SIGSENTRY_METRICS_LISTEN")
            .map(|raw| {
                raw.parse::<SocketAddr>().with_context(|| {
                    format!("SIGSENTRY_METRICS_LISTEN must be HOST:PORT such as 127.0.0.1:9090, got {raw:?}")
                })
            })
            .transpose()?;
        let public_url = get("SIGSENTRY_PUBLIC_URL")
            .map(|raw| {
                let parsed = url::Url::parse(&raw).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none()
                });
                match parsed {
                    Some(_) => Ok(raw.trim_end_matches('/').to_owned()),
                    None => bail!(
                        "SIGSENTRY_PUBLIC_URL must be an http(s) URL with a host and no user, query or fragment, \
                         such as https://sigsentry.example.com/code-repos, got {raw:?}"
                    ),
                }
            })
            .transpose()?;
        let github_app_webhook_secret = get("SIGSENTRY_GITHUB_APP_WEBHOOK_SECRET").map(Sensitive::new);
        let renewal = RenewalConfig::from_lookup(&get)?;
        Ok(Self {
            database_url: DatabaseUrl(database_url),
            listen,
            master_keys,
            data_dir,
            allow_private_base_urls,
            quotas,
            platform_roots,
            sync_worker,
            sync_interval_secs,
            sync_job_timeout_secs,
            sync_concurrency,
            sync_tenant_concurrency,
            rate_limit_per_minute,
            body_timeout_secs,
            metrics_listen,
            public_url,
            github_app_webhook_secret,
            renewal,
        })
    }

    /// Whether the embedded store is in use.
    pub fn is_embedded(&self) -> bool {
        self.database_url.as_str().starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let config = from(&[]).unwrap();
        assert_eq!(config.database_url.as_str(), "sqlite://./data/sigsentry.db");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.allow_private_base_urls);
        assert!(config.is_embedded());
        assert_eq!(config.platform_roots.github_api_url, "https://api.github.com");
        assert_eq!(config.platform_roots.gitlab_url, "https://gitlab.com");
        assert_eq!(config.platform_roots.bitbucket_api_url, "https://api.bitbucket.org/2.0");
        assert!(config.sync_worker);
        assert_eq!(config.sync_interval_secs, 900);
        assert_eq!(
            (config.sync_job_timeout_secs, config.sync_concurrency, config.sync_tenant_concurrency),
            (300, 4, 3)
        );
        let one = from(&[("SIGSENTRY_SYNC_CONCURRENCY", "1")]).unwrap();
        assert_eq!(one.sync_tenant_concurrency, 1, "never zero");
    }

    #[test]
    fn errors_name_the_variable() {
        let error = from(&[("SIGSENTRY_LISTEN", "nope")]).unwrap_err().to_string();
        assert!(error.contains("SIGSENTRY_LISTEN"), "{error}");
        let error = from(&[("DATABASE_URL", "mysql://x")]).unwrap_err().to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");
        let error = from(&[("SIGSENTRY_ALLOW_PRIVATE_BASE_URLS", "maybe")]).unwrap_err().to_string();
        assert!(error.contains("SIGSENTRY_ALLOW_PRIVATE_BASE_URLS"), "{error}");
        let error = from(&[("SIGSENTRY_QUOTAS", "gold=1")]).unwrap_err().to_string();
        assert!(error.contains("SIGSENTRY_QUOTAS"), "{error}");
        for (name, value) in [
            ("SIGSENTRY_GITHUB_API_URL", "api.github.com"),
            ("SIGSENTRY_SYNC_WORKER", "maybe"),
            ("SIGSENTRY_SYNC_INTERVAL_SECS", "0"),
            ("SIGSENTRY_SYNC_INTERVAL_SECS", "15m"),
            ("SIGSENTRY_SYNC_JOB_TIMEOUT_SECS", "0"),
            ("SIGSENTRY_SYNC_CONCURRENCY", "many"),
            ("SIGSENTRY_SYNC_TENANT_CONCURRENCY", "0"),
            ("SIGSENTRY_RATE_LIMIT", "0"),
            ("SIGSENTRY_RATE_LIMIT", "lots"),
            ("SIGSENTRY_BODY_TIMEOUT_SECS", "-1"),
            ("SIGSENTRY_METRICS_LISTEN", "9090"),
            ("SIGSENTRY_PUBLIC_URL", "sigsentry.example.com"),
            ("SIGSENTRY_PUBLIC_URL", "ftp://sigsentry.example.com"),
            ("SIGSENTRY_PUBLIC_URL", "https://sigsentry.example.com/?a=b"),
        ] {
            let error = from(&[(name, value)]).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn public_url_keeps_its_path_prefix_without_a_trailing_slash() {
        let config = from(&[("SIGSENTRY_PUBLIC_URL", "https://sigsentry.example.com/code-repos/")]).unwrap();
        assert_eq!(config.public_url.as_deref(), Some("https://sigsentry.example.com/code-repos"));
        assert_eq!(from(&[]).unwrap().public_url, None);
    }

    #[test]
    fn renewal_clients_come_whole_and_stay_secret() {
        let config = from(&[]).unwrap();
        assert_eq!(config.renewal.setup(), sigsentry_domain::RenewalSetup::default());
        assert_eq!(config.renewal.bitbucket_token_url, "https://bitbucket.org/site/oauth2/access_token");
        let config = from(&[
            ("SIGSENTRY_GITHUB_APP_ID", "123456"),
            (
                "SIGSENTRY_GITHUB_APP_PRIVATE_KEY",
                "-----BEGIN RSA PRIVATE KEY-----\\nTOPSECRETKEY\\n-----END RSA PRIVATE KEY-----",
            ),
            ("SIGSENTRY_GITLAB_OAUTH_CLIENT_ID", "gl-client"),
            ("SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET", "gloas-SECRETGITLAB"),
            ("SIGSENTRY_GITLAB_OAUTH_REDIRECT_URI", "https://sentry.acme.io/oauth/gitlab"),
            ("SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID", "bb-key"),
            ("SIGSENTRY_BITBUCKET_OAUTH_CLIENT_SECRET", "SECRETBITBUCKET"),
        ])
        .unwrap();
        assert_eq!(config.renewal.setup(), sigsentry_domain::RenewalSetup::ALL);
        let app = config.renewal.github_app.as_ref().unwrap();
        assert!(app.private_key_pem.expose().contains("\nTOPSECRETKEY\n"), "escaped newlines are read as newlines");
        let gitlab = config.renewal.gitlab_oauth.as_ref().unwrap();
        assert_eq!(gitlab.redirect_uri.as_deref(), Some("https://sentry.acme.io/oauth/gitlab"));
        let shown = format!("{config:?}");
        for secret in ["TOPSECRETKEY", "SECRETGITLAB", "SECRETBITBUCKET"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        for (pairs, named) in [
            (&[("SIGSENTRY_GITHUB_APP_ID", "1")][..], "SIGSENTRY_GITHUB_APP_PRIVATE_KEY"),
            (&[("SIGSENTRY_GITLAB_OAUTH_CLIENT_ID", "x")][..], "SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET"),
            (&[("SIGSENTRY_BITBUCKET_OAUTH_CLIENT_SECRET", "x")][..], "SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID"),
            (&[("SIGSENTRY_BITBUCKET_OAUTH_TOKEN_URL", "bitbucket.org")][..], "SIGSENTRY_BITBUCKET_OAUTH_TOKEN_URL"),
            (
                &[("SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent/key.pem")][..],
                "SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE",
            ),
        ] {
            let error = from(pairs).unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
    }

    #[test]
    fn keyring_wins_over_single_key() {
        let config = from(&[("SIGSENTRY_MASTER_KEYS", "a"), ("SIGSENTRY_MASTER_KEY", "b")]).unwrap();
        assert_eq!(config.master_keys.as_ref().map(|k| k.expose().as_str()), Some("a"));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let config = from(&[
            ("SIGSENTRY_MASTER_KEY", "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="),
            ("DATABASE_URL", "postgres://app:hunter2@db.internal:5432/sigsentry"),
            ("SIGSENTRY_GITHUB_APP_WEBHOOK_SECRET", "app-hook-s3cret"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("KioqKioq"), "{shown}");
        assert!(!shown.contains("app-hook-s3cret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal"), "the host helps operators: {shown}");
    }
}
