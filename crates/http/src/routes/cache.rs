//! The repo cache: ask for a sync now, read the cached pull requests.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use sigsentry_app::{PullRequestFilter, decode_pr_cursor};
use sigsentry_domain::Permission;
use sigsentry_ports::{CachedPullRequest, Clock, CredentialCipher, Store};

use super::connections::path_id;
use super::query::{DEFAULT_LIMIT, parse_limit, parse_query};
use crate::AppState;
use crate::auth::scope;
use crate::dto::timestamp;
use crate::error::ApiError;

/// Ask for a sync of every repository of the connection now.
#[utoipa::path(post, path = "/v1/config/repos/{id}/sync", tag = "repos",
    params(("id" = String, Path, description = "connection id (UUID)")),
    responses((status = 202, body = crate::dto::AckEnvelope),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn request_sync<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigWrite).await?;
    let id = path_id(&req)?;
    state.services.request_sync(scope, id).await?;
    Ok(HttpResponse::Accepted().json(json!({"success": true, "data": {"syncRequested": true}})))
}

struct PrParams {
    filter: PullRequestFilter,
    after: Option<(chrono::DateTime<chrono::Utc>, String, u64)>,
}

fn pr_params(query: &str) -> Result<PrParams, ApiError> {
    let mut params = PrParams { filter: PullRequestFilter { limit: DEFAULT_LIMIT, ..Default::default() }, after: None };
    parse_query(query, "repo, path, limit, cursor", |name, value| {
        match name {
            "limit" => params.filter.limit = parse_limit(value)?,
            "cursor" => params.after = Some(decode_pr_cursor(value).map_err(|e| e.0)?),
            "repo" if !value.is_empty() && value.len() <= 1024 => params.filter.repository = Some(value.to_owned()),
            "repo" => return Err("must be a repository name of the connection".to_owned()),
            "path" if value.len() <= 1024 && !value.chars().any(char::is_control) => {
                params.filter.path_prefix = Some(value.to_owned()).filter(|p| !p.is_empty());
            }
            "path" => return Err("must be a path of at most 1024 characters".to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(params)
}

fn pull_request_json(item: &CachedPullRequest) -> Value {
    let pr = &item.pull_request;
    json!({
        "repository": item.repository.as_str(),
        "number": pr.number,
        "title": pr.title,
        "author": pr.author,
        "url": pr.url,
        "mergedAt": timestamp(&pr.merged_at),
        "mergeCommitSha": pr.merge_commit_sha,
        "files": pr.files,
    })
}

/// List the cached pull/merge requests of a connection, newest merge first.
#[utoipa::path(get, path = "/v1/config/repos/{id}/pull-requests", tag = "repos",
    params(
        ("id" = String, Path, description = "connection id (UUID)"),
        ("repo" = Option<String>, Query, description = "only this repository"),
        ("path" = Option<String>, Query, description = "only PRs that touched a path starting with this"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "meta.nextCursor of the previous page"),
    ),
    responses((status = 200, description = "Cached pull requests"),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_pull_requests<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigRead).await?;
    let id = path_id(&req)?;
    let params = pr_params(req.query_string())?;
    let page = state.services.list_pull_requests(scope, id, params.filter, params.after).await?;
    let data: Vec<Value> = page.items.iter().map(pull_request_json).collect();
    Ok(HttpResponse::Ok().json(json!({"success": true, "data": data, "meta": {"nextCursor": page.next_cursor}})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        let params = pr_params("repo=acme/api&path=src/&limit=5").unwrap();
        assert_eq!(params.filter.repository.as_deref(), Some("acme/api"));
        assert_eq!(params.filter.path_prefix.as_deref(), Some("src/"));
        assert_eq!(params.filter.limit, 5);
        for bad in ["limit=0", "limit=500", "cursor=x", "repo=", "paths=src", "repo=a&repo=b"] {
            assert!(pr_params(bad).is_err(), "{bad}");
        }
    }
}
