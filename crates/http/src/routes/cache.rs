//! The repo cache: ask for a sync now, read the cached pull requests.

use actix_web::HttpResponse;
use sigsentry_app::CodeReposApi;

use crate::dto::{PullRequestView, SyncRequested};
use crate::envelope::{Envelope, Page};
use crate::error::ApiError;
use crate::extract::{ConnectionPath, PullRequestQuery, Read, Scoped, Write};

/// Ask for a sync of every repository of the connection now.
#[utoipa::path(post, path = "/v1/config/repos/{id}/sync", tag = "repos",
    params(crate::openapi::ConnectionIdPath, crate::openapi::ProjectHeader),
    responses((status = 202, description = "Every repository of the connection is due for a sync now.", body = Envelope<SyncRequested>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn request_sync<A: CodeReposApi>(
    ctx: Scoped<A, Write>,
    id: ConnectionPath,
) -> Result<HttpResponse, ApiError> {
    ctx.service.request_sync(ctx.scope, id.0).await?;
    Ok(HttpResponse::Accepted().json(Envelope::of(SyncRequested::default())))
}

/// List the cached pull/merge requests of a connection, newest merge first.
#[utoipa::path(get, path = "/v1/config/repos/{id}/pull-requests", tag = "repos",
    params(
        crate::openapi::ConnectionIdPath,
        ("repo" = Option<String>, Query, description = "only this repository (compared without regard to case)", min_length = 1, max_length = 1024),
        ("path" = Option<String>, Query, description = "only PRs that touched a path starting with this; no control characters",
            max_length = 1024, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 50", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`meta.nextCursor` of the previous page (opaque)",
            pattern = r"^p1[A-Za-z0-9_-]+$"),
        crate::openapi::ProjectHeader,
    ),
    responses((status = 200, description = "One page of the cached pull requests, newest merge first.", body = Page<PullRequestView>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_pull_requests<A: CodeReposApi>(
    ctx: Scoped<A, Read>,
    id: ConnectionPath,
    query: PullRequestQuery,
) -> Result<HttpResponse, ApiError> {
    let page = ctx.service.list_pull_requests(ctx.scope, id.0, query.0).await?;
    let data = page.items.iter().map(PullRequestView::from).collect();
    Ok(HttpResponse::Ok().json(Page::of(data, page.next_cursor)))
}
