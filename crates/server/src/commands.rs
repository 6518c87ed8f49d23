//! What each subcommand does.

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use sigsentry_domain::{ApiKeyId, PermissionSet, Plan, ProjectId, TenantId};
use sigsentry_telemetry::Metrics;

use crate::cli::{Command, CredentialsCommand, KeyCommand, ProjectCommand, TenantCommand};
use crate::config::Config;
use crate::startup::{Application, Services, WorkerHandle, services, worker, worker_reporting};

/// Runs `command` (`serve` when `None`).
///
/// # Errors
/// Whatever stopped the command, in words for the operator.
pub async fn run(command: Option<Command>, config: Config) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Worker => run_worker(config).await,
        Command::Migrate => {
            sigsentry_persistence::AnyStore::migrate(config.database_url.as_str()).await.context("migration failed")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant(TenantCommand::Create { name, plan, output }) => {
            let plan: Plan = plan.parse().map_err(|e| anyhow!("--plan {e}"))?;
            let tenant = services(&config).await?.create_tenant(&name, plan).await?;
            emit(output.json, json!({"id": tenant.id.to_string(), "name": tenant.name, "plan": plan.as_str()}), || {
                format!("tenant {} created (plan {plan})", tenant.id)
            });
            Ok(())
        }
        Command::Project(ProjectCommand::Create { tenant, name, output }) => {
            let tenant: TenantId = tenant.parse().map_err(|_| anyhow!("--tenant must be a tenant id (UUID)"))?;
            let project = services(&config).await?.create_project(tenant, &name).await?;
            emit(
                output.json,
                json!({"id": project.id.to_string(), "tenantId": tenant.to_string(), "name": project.name}),
                || format!("project {} created in tenant {tenant}", project.id),
            );
            Ok(())
        }
        Command::Key(KeyCommand::Create { tenant, project, permissions, name, output }) => {
            let tenant: TenantId = tenant.parse().map_err(|_| anyhow!("--tenant must be a tenant id (UUID)"))?;
            let project: Option<ProjectId> =
                project.map(|p| p.parse().map_err(|_| anyhow!("--project must be a project id (UUID)"))).transpose()?;
            let permissions = PermissionSet::parse_list(&permissions).map_err(|e| anyhow!("--permissions: {e}"))?;
            let key = services(&config).await?.create_api_key(tenant, project, permissions.clone(), &name).await?;
            emit(
                output.json,
                json!({"id": key.id.to_string(), "key": key.secret, "tenantId": tenant.to_string(),
                       "projectId": project.map(|p| p.to_string()), "permissions": permissions.to_list()}),
                || format!("key {} created; it is shown only now:\n{}", key.id, key.secret),
            );
            Ok(())
        }
        Command::Key(KeyCommand::Revoke { id, output }) => {
            let id: ApiKeyId = id.parse().map_err(|_| anyhow!("the key id must be a UUID"))?;
            if !services(&config).await?.revoke_api_key(id).await? {
                bail!("no API key with id {id}");
            }
            emit(output.json, json!({"id": id.to_string(), "revoked": true}), || format!("key {id} revoked"));
            Ok(())
        }
        Command::Credentials(CredentialsCommand::Reencrypt { batch, output }) => {
            let report = services(&config).await?.reencrypt_credentials(batch).await?;
            let json = json!({"resealed": report.resealed, "rebound": report.rebound, "skipped": report.skipped});
            emit(output.json, json, || {
                format!(
                    "{} credentials re-sealed under the active key ({} of them newly bound to their platform, kind \
                     and baseUrl; {} changed meanwhile)",
                    report.resealed, report.rebound, report.skipped
                )
            });
            Ok(())
        }
    }
}

fn emit(json: bool, value: serde_json::Value, human: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let services = services(&config).await?;
    check_keyring(&services).await?;
    if let Some(first) = services.first_run().await? {
        let base = format!("http://{}", config.listen);
        println!(
            "\nFirst run: created tenant 'default' (plan team), project 'default' ({project}) and an API key.\n\
             The key is shown only this once; store it now:\n\n    {key}\n\n\
             Try it:\n\n    curl -s {base}/v1/config/repos -H 'Authorization: Bearer {key}'\n",
            project = first.project_id,
            key = first.key.secret,
        );
    }
    let metrics = Metrics::new();
    let worker = if config.sync_worker {
        Some(WorkerHandle::spawn(worker_reporting(&config, &services, Arc::new(metrics.clone()))?))
    } else {
        tracing::info!("sync worker disabled (SIGSENTRY_SYNC_WORKER=false): API only");
        None
    };
    let app = Application::build(&config, services, metrics)?;
    tracing::info!(listen = %config.listen, port = app.port(), metrics_port = ?app.metrics_port(), "serving the Code Repos API");
    let served = app.run_until_stopped().await.context("the HTTP server failed");
    if let Some(worker) = worker {
        worker.stop().await;
    }
    served
}

/// `sigsentry worker`: only the sync worker, until SIGTERM or Ctrl-C.
async fn run_worker(config: Config) -> anyhow::Result<()> {
    let services = services(&config).await?;
    check_keyring(&services).await?;
    let handle = WorkerHandle::spawn(worker(&config, &services)?);
    tracing::info!("sync worker running");
    shutdown_signal().await;
    tracing::info!("stopping the sync worker");
    handle.stop().await;
    Ok(())
}

/// Refuses to serve with a keyring that cannot open the stored credentials:
/// every sync would fail later, one by one, instead of the start now.
async fn check_keyring(services: &Services) -> anyhow::Result<()> {
    let check = services.check_keyring(KEYRING_SAMPLE).await.context("refusing to start")?;
    if check.version_1 > 0 {
        tracing::warn!(
            sampled = check.sampled,
            version_1 = check.version_1,
            "stored credentials predate the binding of platform, kind and baseUrl: they do not sync until \
             `sigsentry credentials reencrypt` has run"
        );
    }
    Ok(())
}

/// Stored credentials tried at start-up.
const KEYRING_SAMPLE: u32 = 50;

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
