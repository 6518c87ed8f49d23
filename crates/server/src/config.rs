//! Configuration from the environment. Read once at start-up and passed in:
//! no global, so tests can run many configured apps side by side.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use sigsentry_domain::QuotaTable;

/// Everything the process is told by its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH` (default `sqlite://./data/sigsentry.db`).
    pub database_url: String,
    /// Where to listen (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// A keyring (`SIGSENTRY_MASTER_KEYS`) or one key (`SIGSENTRY_MASTER_KEY`).
    pub master_keys: Option<String>,
    /// Where the embedded store keeps files (default `./data`).
    pub data_dir: PathBuf,
    /// Allow `http` and private or loopback `baseUrl`s.
    pub allow_private_base_urls: bool,
    /// Repositories per project, by plan.
    pub quotas: QuotaTable,
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
        let master_keys = get("SIGSENTRY_MASTER_KEYS").or_else(|| get("SIGSENTRY_MASTER_KEY"));
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
        Ok(Self { database_url, listen, master_keys, data_dir, allow_private_base_urls, quotas })
    }

    /// Whether the embedded store is in use.
    pub fn is_embedded(&self) -> bool {
        self.database_url.starts_with("sqlite:")
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
        assert_eq!(config.database_url, "sqlite://./data/sigsentry.db");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.allow_private_base_urls);
        assert!(config.is_embedded());
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
    }

    #[test]
    fn keyring_wins_over_single_key() {
        let config = from(&[("SIGSENTRY_MASTER_KEYS", "a"), ("SIGSENTRY_MASTER_KEY", "b")]).unwrap();
        assert_eq!(config.master_keys.as_deref(), Some("a"));
    }
}
