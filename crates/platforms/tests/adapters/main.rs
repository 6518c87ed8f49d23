//! The platform adapters against local stub servers that speak each
//! platform's REST API: one test binary (one link), a module per platform.

mod common;

mod answers_not_echoed;
mod bitbucket;
mod credentials;
mod github;
mod gitlab;
mod outbound_safety;
