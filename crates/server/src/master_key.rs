//! Where the master keyring comes from.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use sigsentry_crypto::Keyring;

use crate::config::Config;

const KEY_FILE: &str = "master.key";

/// The keyring from the environment; with the embedded store and none set,
/// the one in the data directory, generated there (mode 0600) on first use.
///
/// # Errors
/// A malformed key, or no key with a server store.
pub fn load(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(spec) = &config.master_keys {
        return Keyring::parse(spec.expose()).context(
            "SIGSENTRY_MASTER_KEYS / SIGSENTRY_MASTER_KEY is malformed (comma-separated [ID:]BASE64 of 32 bytes)",
        );
    }
    if !config.is_embedded() {
        bail!(
            "no master key: set SIGSENTRY_MASTER_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) \
             or SIGSENTRY_MASTER_KEYS; with PostgreSQL every replica must share the same keys"
        );
    }
    let path = config.data_dir.join(KEY_FILE);
    if path.exists() {
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Keyring::parse(text.trim()).with_context(|| format!("{} is malformed", path.display()));
    }
    let key = Keyring::generate_key_base64().context("the system random source failed")?;
    write_private(&path, &key)?;
    tracing::warn!(path = %path.display(), "generated a master key for the embedded store; back it up with the database");
    Keyring::parse(&key).context("generated key does not parse")
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all().ok();
    Ok(())
}
