//! The HTTP adapter's integration tests, in one binary (one link).
#![allow(clippy::unwrap_used)]

mod handlers;
mod openapi_document;
