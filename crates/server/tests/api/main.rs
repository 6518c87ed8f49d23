//! The service over HTTP, whole: one test binary (one link) with a module
//! per area. `common` starts the app on a free port over a fresh SQLite file;
//! `stubs` serves the three platforms' APIs; `processes` runs several server
//! processes on one database.

mod common;
mod processes;
mod stubs;

mod api_smoke;
mod auth_and_scope;
mod cache_endpoints;
mod cli;
mod correlate_e2e;
mod credentials;
mod credentials_binding;
mod envelope;
mod idempotency;
mod key_rotation;
mod limits;
mod list;
mod metrics;
mod multi_process;
mod multi_process_postgres;
mod outage_postgres;
mod quotas;
mod secrets;
mod sync_e2e;
mod sync_hardening;
mod update;
mod validation;
mod webhook_latency;
mod webhooks;
