use std::process::ExitCode;

use clap::Parser;
use sigsentry_server::cli::Cli;
use sigsentry_server::config::Config;
use sigsentry_server::{commands, telemetry};

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(std::io::stderr);
    let result = match Config::from_env() {
        Ok(config) => commands::run(cli.command, config).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
