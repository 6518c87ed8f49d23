//! The one outbound path every platform call takes: timeouts, a redirect
//! policy that never leaves the host, the address rules for user-supplied
//! hosts (checked at connect time, so DNS rebinding gains nothing), bounded
//! bodies, and the retry of transient failures.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use sigsentry_domain::{BaseUrlPolicy, check_ip};
use sigsentry_ports::PlatformError;
use url::{Host, Url};

use crate::auth::AuthHeader;
use crate::{PlatformConfig, RetryConfig, backoff};

/// The largest response body we read: far above any real page of 100 items.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Redirects followed in one chain (all on the same host).
const MAX_REDIRECTS: usize = 5;

/// The two ways out: one for the operator's trusted roots, one for hosts a
/// user named (a connection's `baseUrl`), which passes the address rules.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    trusted: Lane,
    guarded: Lane,
}

/// A configured HTTP client, and the address rules it enforces, if any.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    client: reqwest::Client,
    policy: Option<BaseUrlPolicy>,
}

impl Outbound {
    /// Builds both clients.
    pub(crate) fn new(config: &PlatformConfig) -> Result<Self, reqwest::Error> {
        let trusted = builder(config).build()?;
        let guarded = builder(config).dns_resolver(Arc::new(GuardedResolver { policy: config.policy })).build()?;
        Ok(Self {
            trusted: Lane { client: trusted, policy: None },
            guarded: Lane { client: guarded, policy: Some(config.policy) },
        })
    }

    /// The lane for a call: `guarded` when the host came from a user.
    pub(crate) fn lane(&self, guarded: bool) -> &Lane {
        if guarded { &self.guarded } else { &self.trusted }
    }
}

fn builder(config: &PlatformConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(same_origin_redirects())
        // Proxies from the environment would resolve names where our
        // resolver cannot check them; an egress proxy is configured by
        // pointing the trusted roots at it instead.
        .no_proxy()
}

/// Follows a redirect only to the scheme, host and port of the original
/// request; reqwest keeps the credentials on such a redirect. Any other
/// redirect is returned as it is, and the caller refuses it.
fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let stays = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
        if stays && attempt.previous().len() <= MAX_REDIRECTS { attempt.follow() } else { attempt.stop() }
    })
}

/// Resolves a name and keeps only the addresses the policy allows; with none
/// left, the connection fails with [`RefusedAddress`].
#[derive(Debug)]
struct GuardedResolver {
    policy: BaseUrlPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut refusal = None;
            for address in resolved {
                match check_ip(address.ip(), policy) {
                    Ok(()) => allowed.push(address),
                    Err(invalid) => refusal = Some(invalid.0),
                }
            }
            if allowed.is_empty() {
                let reason = refusal.unwrap_or_else(|| "the name has no address".to_owned());
                return Err(Box::new(RefusedAddress { host, reason }) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The address rules refused a host.
#[derive(Debug, Clone)]
pub(crate) struct RefusedAddress {
    host: String,
    reason: String,
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused to connect to {}: {}", self.host, self.reason)
    }
}

impl StdError for RefusedAddress {}

/// Why a request got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SendError {
    /// The address rules refused the host.
    #[error("refused to connect to {host}: {reason}")]
    Refused { host: String, reason: String },
    /// A timeout or a network failure: worth retrying.
    #[error("{0}")]
    Transient(String),
    /// Something retrying will not fix.
    #[error("{0}")]
    Fatal(String),
}

impl SendError {
    /// Sorts a reqwest failure, without its URL or anything else it carries.
    pub(crate) fn from_reqwest(error: &reqwest::Error) -> Self {
        if let Some(refused) = find_source::<RefusedAddress>(error) {
            return Self::Refused { host: refused.host.clone(), reason: refused.reason.clone() };
        }
        if error.is_timeout() {
            Self::Transient("the request timed out".to_owned())
        } else if error.is_connect() {
            Self::Transient("could not connect".to_owned())
        } else if error.is_builder() {
            Self::Fatal("the request could not be built".to_owned())
        } else {
            Self::Transient("the connection failed".to_owned())
        }
    }
}

/// The first error of type `T` in `error`'s chain of sources.
pub(crate) fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// A response, its body read whole or up to a prefix (see [`Accept`]).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The body went on past the prefix asked for; the rest was not read.
    pub(crate) truncated: bool,
}

/// What a request asks for, and how much of the answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// JSON, read whole up to [`MAX_BODY_BYTES`]; a longer body fails.
    Json,
    /// Plain text (a raw diff), of which at most this many bytes are read:
    /// the rest is not downloaded, and the reply says it was cut.
    TextPrefix(usize),
}

impl Accept {
    fn header(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::TextPrefix(_) => "text/plain",
        }
    }

    /// The prefix to read, if only a prefix.
    pub(crate) fn prefix(self) -> Option<usize> {
        match self {
            Self::Json => None,
            Self::TextPrefix(max) => Some(max),
        }
    }
}

impl Lane {
    /// Refuses a literal-IP host the policy refuses: the resolver never sees
    /// those. Host names are left to the resolver, at connect time.
    pub(crate) fn check_literal_host(&self, url: &Url) -> Result<(), SendError> {
        let Some(policy) = self.policy else { return Ok(()) };
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(SendError::Fatal("the URL has no host".to_owned())),
        };
        check_ip(ip, policy).map_err(|invalid| SendError::Refused { host: ip.to_string(), reason: invalid.0 })
    }

    /// Sends a request through this lane's rules.
    pub(crate) async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, SendError> {
        self.check_literal_host(request.url())?;
        self.client.execute(request).await.map_err(|error| SendError::from_reqwest(&error))
    }

    /// `POST url` with `headers` and a form-encoded `form`, its JSON answer
    /// read whole. Sent once: a token endpoint spends what it is sent.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        headers: &[(http::HeaderName, http::HeaderValue)],
        form: String,
    ) -> Result<Reply, SendError> {
        let mut request = self
            .client
            .post(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        for (name, value) in headers {
            request = request.header(name.clone(), value.clone());
        }
        let request = request.build().map_err(|error| SendError::from_reqwest(&error))?;
        let response = self.execute(request).await?;
        read_reply(http::Response::from(response).map(BodyExt::boxed), None).await
    }

    /// `POST url` with `headers` and no body, its JSON answer read whole.
    pub(crate) async fn post_empty(
        &self,
        url: &Url,
        headers: &[(http::HeaderName, http::HeaderValue)],
    ) -> Result<Reply, SendError> {
        let mut request = self.client.post(url.clone());
        for (name, value) in headers {
            request = request.header(name.clone(), value.clone());
        }
        let request = request.build().map_err(|error| SendError::from_reqwest(&error))?;
        let response = self.execute(request).await?;
        read_reply(http::Response::from(response).map(BodyExt::boxed), None).await
    }

    /// `GET url` with `auth`, its body read as `accept` says.
    pub(crate) async fn get(&self, url: &Url, auth: &AuthHeader, accept: Accept) -> Result<Reply, SendError> {
        let request = self
            .client
            .get(url.clone())
            .header(http::header::ACCEPT, accept.header())
            .header(auth.name.clone(), auth.value.clone())
            .build()
            .map_err(|error| SendError::from_reqwest(&error))?;
        let response = self.execute(request).await?;
        read_reply(http::Response::from(response).map(BodyExt::boxed), accept.prefix()).await
    }
}

/// Reads a response: whole, up to [`MAX_BODY_BYTES`], or only its first
/// `prefix` bytes. reqwest's, or octocrab's over our lane (whose errors
/// carry our [`SendError`]).
pub(crate) async fn read_reply<E>(
    response: http::Response<BoxBody<Bytes, E>>,
    prefix: Option<usize>,
) -> Result<Reply, SendError>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    let (body, truncated) = match prefix {
        None => {
            let body = Limited::new(body, MAX_BODY_BYTES).collect().await.map_err(|error| {
                if error.is::<LengthLimitError>() {
                    SendError::Fatal("the response body is too large".to_owned())
                } else {
                    body_error(error.as_ref())
                }
            })?;
            (body.to_bytes(), false)
        }
        Some(max) => read_prefix(body, max.min(MAX_BODY_BYTES)).await?,
    };
    Ok(Reply { status: parts.status, headers: parts.headers, body, truncated })
}

/// The first `max` bytes of `body`, and whether there was more; what is past
/// them is not read (the connection is dropped).
async fn read_prefix<E>(mut body: BoxBody<Bytes, E>, max: usize) -> Result<(Bytes, bool), SendError>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| body_error(error.into().as_ref()))?;
        let Ok(data) = frame.into_data() else { continue };
        let room = max - read.len();
        if data.len() > room {
            read.extend_from_slice(&data[..room]);
            return Ok((read.freeze(), true));
        }
        read.extend_from_slice(&data);
    }
    Ok((read.freeze(), false))
}

/// Why a body could not be read.
fn body_error(error: &(dyn StdError + Send + Sync + 'static)) -> SendError {
    if let Some(send) = find_source::<SendError>(error) {
        send.clone()
    } else if let Some(reqwest) = find_source::<reqwest::Error>(error) {
        SendError::from_reqwest(reqwest)
    } else {
        SendError::Transient("the connection failed".to_owned())
    }
}

/// Sends with `send`, retrying timeouts, network failures and 500/502/503/504
/// on the schedule of `retry` (see [`RetryConfig`]); then `Unavailable`.
/// Any other answer, error status included, is returned for the platform
/// module to sort.
pub(crate) async fn with_retry<F, Fut>(
    platform: &'static str,
    retry: &RetryConfig,
    mut send: F,
) -> Result<Reply, PlatformError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Reply, SendError>>,
{
    let mut retries = 0;
    loop {
        let outcome = send().await;
        let transient = match &outcome {
            Ok(reply) if is_transient(reply.status) => format!("it answered {}", reply.status.as_u16()),
            Err(SendError::Transient(detail)) => detail.clone(),
            Ok(_) | Err(SendError::Refused { .. } | SendError::Fatal(_)) => {
                return outcome.map_err(|error| send_error(platform, error));
            }
        };
        if retries >= retry.attempts {
            let tries = retries + 1;
            return Err(PlatformError::Unavailable { platform, detail: format!("{transient} ({tries} tries)") });
        }
        retries += 1;
        let delay = backoff::retry_delay(retry, retries);
        tracing::debug!(platform, retry = retries, delay_ms = delay.as_millis(), "retrying after: {transient}");
        tokio::time::sleep(delay).await;
    }
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Maps a failure to send to the port's error.
pub(crate) fn send_error(platform: &'static str, error: SendError) -> PlatformError {
    match error {
        SendError::Refused { host, reason } => PlatformError::AddressRefused { host, reason },
        SendError::Transient(detail) => PlatformError::Unavailable { platform, detail },
        SendError::Fatal(detail) => PlatformError::Unexpected { platform, detail },
    }
}

/// Resolves a pagination or redirect target against `current` and refuses
/// it unless it stays on the host of `root`: credentials go nowhere else.
pub(crate) fn follow_on_same_host(
    platform: &'static str,
    root: &Url,
    current: &Url,
    next: &str,
) -> Result<Url, PlatformError> {
    let next = current
        .join(next)
        .map_err(|_| PlatformError::Unexpected { platform, detail: "a next-page link is not a URL".to_owned() })?;
    if next.origin() != root.origin() {
        return Err(PlatformError::Unexpected {
            platform,
            detail: "a next-page link points at another host; not followed".to_owned(),
        });
    }
    Ok(next)
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn link_next(headers: &HeaderMap) -> Option<String> {
    headers.get_all(http::header::LINK).iter().filter_map(|value| value.to_str().ok()).find_map(|value| {
        value.split(',').find_map(|part| {
            let part = part.trim();
            let (target, params) = part.strip_prefix('<')?.split_once('>')?;
            let is_next = params.split(';').any(|param| {
                let param: String = param.chars().filter(|c| !c.is_whitespace()).collect();
                param == "rel=\"next\"" || param == "rel=next"
            });
            is_next.then(|| target.to_owned())
        })
    })
}

/// A 3xx we did not follow: the target is on another host.
pub(crate) fn redirect_refused(platform: &'static str) -> PlatformError {
    PlatformError::Unexpected { platform, detail: "redirected to another host; not followed".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(allow_private: bool) -> Lane {
        Lane { client: reqwest::Client::new(), policy: Some(BaseUrlPolicy { allow_private }) }
    }

    #[test]
    fn literal_metadata_addresses_are_refused_even_when_private_is_allowed() {
        for url in ["http://169.254.169.254/latest", "https://[fe80::1]/", "https://[::ffff:169.254.169.254]/"] {
            let url = Url::parse(url).unwrap();
            assert!(matches!(lane(true).check_literal_host(&url), Err(SendError::Refused { .. })), "{url}");
        }
    }

    #[test]
    fn literal_private_addresses_follow_the_policy() {
        let url = Url::parse("http://127.0.0.1:8080/api/v4").unwrap();
        assert!(matches!(lane(false).check_literal_host(&url), Err(SendError::Refused { .. })));
        assert!(lane(true).check_literal_host(&url).is_ok());
        let trusted = Lane { client: reqwest::Client::new(), policy: None };
        assert!(trusted.check_literal_host(&Url::parse("http://169.254.169.254/").unwrap()).is_ok());
    }

    #[test]
    fn parses_link_next() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::LINK,
            r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=9>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(link_next(&headers).as_deref(), Some("https://api.github.com/repositories/1/pulls?page=2"));
        headers.insert(http::header::LINK, r#"<https://x/?page=1>; rel="prev""#.parse().unwrap());
        assert_eq!(link_next(&headers), None);
    }

    #[test]
    fn next_pages_must_stay_on_the_host() {
        let root = Url::parse("https://gitlab.example.com/api/v4").unwrap();
        let current = Url::parse("https://gitlab.example.com/api/v4/projects/1/merge_requests?page=1").unwrap();
        assert!(follow_on_same_host("GitLab", &root, &current, "?page=2").is_ok());
        assert!(follow_on_same_host("GitLab", &root, &current, "https://evil.example/steal").is_err());
        assert!(follow_on_same_host("GitLab", &root, &current, "http://gitlab.example.com/x").is_err());
    }
}
