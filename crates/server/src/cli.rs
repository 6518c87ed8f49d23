//! The command line.

use clap::{Args, Parser, Subcommand};

/// SigSentry Code Repos: connect GitHub, GitLab and Bitbucket repositories to projects.
#[derive(Debug, Parser)]
#[command(name = "sigsentry", version, about)]
pub struct Cli {
    /// What to do; `serve` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (the default).
    Serve,
    /// Run only the sync worker (for deployments that split API and worker).
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage stored credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
}

/// Output switch shared by commands.
#[derive(Debug, Args)]
pub struct Output {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sigsentry tenant ...`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Plan: free, team, business or enterprise.
        #[arg(long, default_value = "free")]
        plan: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `sigsentry project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project in a tenant.
    Create {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `sigsentry key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; the secret is printed once.
    Create {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Limit the key to one project of the tenant.
        #[arg(long)]
        project: Option<String>,
        /// Comma-separated: config:read, config:write, analyses:read.
        #[arg(long)]
        permissions: String,
        /// A label.
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Revoke an API key by id.
    Revoke {
        /// The key id.
        id: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `sigsentry credentials ...`
#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Re-seal every stored credential under the active master key.
    Reencrypt {
        /// Rows per batch.
        #[arg(long, default_value_t = 100)]
        batch: u32,
        #[command(flatten)]
        output: Output,
    },
}
