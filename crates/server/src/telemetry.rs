//! Logs: tracing to stderr (stdout is for the CLI's output), filtered by
//! `RUST_LOG`. Never a secret: handlers log ids, never bodies or headers.

pub use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber writing to `writer`. Safe to call twice
/// (the second call does nothing), so tests can set up freely.
pub fn init<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    init_with(writer, filter);
}

/// Installs the global subscriber with an explicit filter (tests capture
/// everything down to `trace` to prove no secret is ever logged).
pub fn init_with<W>(writer: W, filter: EnvFilter)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let json = std::env::var("SIGSENTRY_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    // Already installed: keep the first.
    drop(result);
    install_panic_hook();
}

/// A panic's message may quote user input; log where it happened only.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(%location, "panic");
    }));
}
