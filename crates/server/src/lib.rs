//! The `sigsentry` binary's library: configuration, wiring, CLI commands.
//! The binary itself only parses arguments and calls [`commands::run`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod master_key;
pub mod startup;
pub mod telemetry;
