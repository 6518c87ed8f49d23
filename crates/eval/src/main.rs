//! `just eval`: how well correlation points at the right file, function and
//! pull request, measured on real repositories' history (`eval/`).
//!
//! Each case's repository, as it was when its error happened, is served by
//! a GitHub API stub (`stub.rs`); the real service (SQLite, its own sync
//! worker, its HTTP API) connects to it, syncs, and answers
//! `POST /v1/code/correlate` with the case's error text. The answers are
//! scored against the truth the dataset found by SZZ (`score.rs`), beside
//! two naive baselines, and written as a table (`report.rs`) to stdout and,
//! with `--write`, into `docs/correlation.md`.
//!
//! ```sh
//! cargo run --release -p sigsentry-eval -- [--only python|pallets/flask]... [--lookback-days 365] [--write]
//! ```

mod dataset;
mod offline;
mod report;
mod score;
mod stub;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, TimeDelta, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sigsentry_domain::{Permission, PermissionSet, Plan};
use sigsentry_server::config::Config;
use sigsentry_server::startup::{Application, WorkerHandle, services, worker};

use crate::score::Outcome;

const BEGIN: &str = "<!-- eval:begin -->";
const END: &str = "<!-- eval:end -->";

struct Args {
    cases: PathBuf,
    only: Vec<String>,
    lookback_days: u16,
    write: bool,
    offline: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args =
        Args { cases: PathBuf::from("eval/cases"), only: Vec::new(), lookback_days: 365, write: false, offline: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--cases" => args.cases = PathBuf::from(it.next().context("--cases needs a directory")?),
            "--only" => args.only.push(it.next().context("--only needs a language or owner/name")?),
            "--lookback-days" => args.lookback_days = it.next().context("--lookback-days needs a number")?.parse()?,
            "--write" => args.write = true,
            "--offline" => args.offline = true,
            other => bail!("unknown argument {other}; see the comment at the top of crates/eval/src/main.rs"),
        }
    }
    Ok(args)
}

/// The real service on a free port, syncing from `github_api`: its URL, a
/// tenant-scoped key, and one project per case (each case's repository is
/// alone in its project, as a real team's would be).
async fn start_service(
    dir: &tempfile::TempDir,
    github_api: &str,
    cases: usize,
) -> anyhow::Result<(String, String, Vec<String>, WorkerHandle)> {
    let vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", format!("sqlite://{}", dir.path().join("eval.db").display())),
        ("SIGSENTRY_LISTEN", "127.0.0.1:0".to_owned()),
        ("SIGSENTRY_DATA_DIR", dir.path().display().to_string()),
        ("SIGSENTRY_GITHUB_API_URL", github_api.to_owned()),
        ("SIGSENTRY_QUOTAS", "enterprise=1000000".to_owned()),
        ("SIGSENTRY_RATE_LIMIT", "1000000000".to_owned()),
        ("SIGSENTRY_SYNC_INTERVAL_SECS", "86400".to_owned()),
        // A year of a large repository's PRs from the stub takes minutes on
        // two cores; the production deadline (300 s) would cut it and retry.
        ("SIGSENTRY_SYNC_JOB_TIMEOUT_SECS", "3600".to_owned()),
    ];
    let config = Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))?;
    let services = services(&config).await?;
    let tenant = services.create_tenant("eval", Plan::Enterprise).await?;
    let mut projects = Vec::with_capacity(cases);
    for i in 0..cases {
        projects.push(services.create_project(tenant.id, &format!("case-{i}")).await?.id.to_string());
    }
    let key =
        services.create_api_key(tenant.id, None, PermissionSet::new([Permission::ConfigWrite]), "eval").await?.secret;
    let handle = WorkerHandle::spawn(worker(&config, &services)?);
    let app = Application::build(&config, services, sigsentry_telemetry::Metrics::new())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Ok((base, key, projects, handle))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let cases = dataset::load(&args.cases, &args.only)?;
    if cases.is_empty() {
        bail!("no case under {} matches", args.cases.display());
    }
    eprintln!("eval: {} cases", cases.len());
    if args.offline {
        let lookback = TimeDelta::days(i64::from(args.lookback_days));
        let answers: Vec<Outcome> =
            cases.iter().map(|case| score::score(case, &offline::answer(case, lookback), lookback)).collect();
        write_details(&answers)?;
        println!("{}", report::table(&answers));
        return Ok(());
    }
    let now = Utc::now();
    let stub = stub::start(&cases, now)?;
    let dir = tempfile::tempdir()?;
    let (base, key, projects, worker) = start_service(&dir, &stub.base, cases.len()).await?;
    let client = reqwest::Client::new();
    let auth = format!("Bearer {key}");

    let started = Instant::now();
    let mut ids = Vec::with_capacity(cases.len());
    for (case, project) in cases.iter().zip(&projects) {
        let body = json!({
            "platform": "github",
            "credentials": {"token": "ghp_evaluation0000000000000000"},
            "repositories": [case.stub_repository()],
            "lookbackDays": args.lookback_days,
        });
        let response = client
            .post(format!("{base}/v1/config/repos"))
            .header("authorization", &auth)
            .header("x-project-id", project)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let created: Value = response.json().await?;
        if status != 201 {
            bail!("creating the connection of {} failed: {status} {created}", case.data().id);
        }
        ids.push(created["data"]["id"].as_str().unwrap_or_default().to_owned());
    }
    let sync_errors = wait_for_syncs(&client, &base, &auth, &projects, &ids).await?;
    eprintln!("eval: synced in {:.0} s ({} failed)", started.elapsed().as_secs_f64(), sync_errors.len());

    let lookback = TimeDelta::days(i64::from(args.lookback_days));
    let answers = futures_util::stream::iter(cases.iter().zip(&ids).zip(&projects))
        .map(|((case, id), project)| {
            let (client, base, auth) = (&client, &base, &auth);
            let failed = sync_errors.iter().find(|(i, _)| i == id).map(|(_, e)| e.clone());
            async move {
                let occurred_at = case.data().occurred_at + stub::shift_for(case, now);
                let body = json!({
                    "stacktrace": case.data().stacktrace,
                    "occurredAt": occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "limit": 10,
                });
                let answer: anyhow::Result<Value> = async {
                    let response = client
                        .post(format!("{base}/v1/code/correlate"))
                        .header("authorization", auth)
                        .header("x-project-id", project)
                        .json(&body)
                        .send()
                        .await?;
                    let status = response.status();
                    let value: Value = response.json().await?;
                    if status != 200 {
                        bail!("{status} {value}");
                    }
                    Ok(value["data"].clone())
                }
                .await;
                if std::env::var("EVAL_DUMP").is_ok_and(|id| id == case.data().id) {
                    eprintln!("{}", serde_json::to_string_pretty(&answer.as_ref().ok()).unwrap_or_default());
                }
                let mut outcome = match &answer {
                    Ok(data) => score::score(case, data, lookback),
                    Err(e) => {
                        Outcome { group: case.doc.group.clone(), failed: Some(e.to_string()), ..Outcome::default() }
                    }
                };
                if let Some(error) = failed {
                    outcome.failed.get_or_insert(format!("sync failed: {error}"));
                }
                outcome
            }
        })
        .buffered(4)
        .collect::<Vec<Outcome>>()
        .await;
    worker.stop().await;

    for (case, outcome) in cases.iter().zip(&answers) {
        if let Some(error) = &outcome.failed {
            eprintln!("eval: {} failed: {error}", case.data().id);
        }
    }
    write_details(&answers)?;
    let table = report::table(&answers);
    println!("{table}");
    if args.write {
        write_doc(&table, args.lookback_days, cases.len())?;
    }
    Ok(())
}

/// Waits until every connection's repository is `ready` or `error`; the
/// failed ones, with their errors.
async fn wait_for_syncs(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    projects: &[String],
    ids: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let mut pending = 0;
        let mut failed = Vec::new();
        for (project, id) in projects.iter().zip(ids) {
            let url = format!("{base}/v1/config/repos/{id}");
            let connection: Value = client
                .get(url)
                .header("authorization", auth)
                .header("x-project-id", project)
                .send()
                .await?
                .json()
                .await?;
            let connection = &connection["data"];
            {
                for sync in connection["sync"].as_array().into_iter().flatten() {
                    match sync["state"].as_str() {
                        Some("ready") => {}
                        Some("error") => failed.push((
                            connection["id"].as_str().unwrap_or_default().to_owned(),
                            sync["error"].as_str().unwrap_or_default().to_owned(),
                        )),
                        _ => pending += 1,
                    }
                }
            }
        }
        if pending == 0 {
            return Ok(failed);
        }
        if Instant::now() > deadline {
            bail!("{pending} of {} repositories still not synced after an hour", ids.len());
        }
        eprintln!("eval: {pending} repositories syncing");
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// With `EVAL_DETAILS=FILE`: one JSON line per case, what was expected and what came first.
fn write_details(answers: &[Outcome]) -> anyhow::Result<()> {
    let Ok(path) = std::env::var("EVAL_DETAILS") else { return Ok(()) };
    let lines: Vec<String> = answers
        .iter()
        .map(|o| {
            let mut d = o.detail.clone();
            d["ok"] = json!({"file": o.file_first, "function": o.function_first, "pr1": o.culprit_first, "pr3": o.culprit_top3});
            d.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n"))?;
    Ok(())
}

fn write_doc(table: &str, lookback_days: u16, cases: usize) -> anyhow::Result<()> {
    let path = PathBuf::from("docs/correlation.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} has no {BEGIN} ... {END} section", path.display());
    };
    let section = format!(
        "{BEGIN}\n_{cases} cases, lookback {lookback_days} days, measured {} with `just eval`._\n\n{table}{END}",
        Utc::now().format("%Y-%m-%d")
    );
    let updated = format!("{}{section}{}", &text[..start], &text[end + END.len()..]);
    std::fs::write(&path, updated)?;
    Ok(())
}
