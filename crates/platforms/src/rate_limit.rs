//! The rate-limit state last seen per (platform, host), and the headers that
//! carry it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use http::HeaderMap;
use sigsentry_ports::RateLimitState;

use crate::backoff;

/// What we know of one host's limits. Shared by every clone of the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateLimitBook {
    hosts: Arc<Mutex<HashMap<(&'static str, String), HostLimits>>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct HostLimits {
    seen: RateLimitState,
    /// Rate limits in a row that named no time to come back (drives the
    /// exponential wait); a success resets it.
    unnamed_in_a_row: u32,
}

impl RateLimitBook {
    fn with<T>(&self, platform: &'static str, origin: &str, f: impl FnOnce(&mut HostLimits) -> T) -> T {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        f(hosts.entry((platform, origin.to_owned())).or_default())
    }

    /// Records the limit headers of a response, if it has any.
    pub(crate) fn observe(&self, platform: &'static str, origin: &str, headers: &HeaderMap) {
        let limit = header_u32(headers, &["x-ratelimit-limit", "ratelimit-limit"]);
        let remaining = header_u32(headers, &["x-ratelimit-remaining", "ratelimit-remaining"]);
        let reset_at = header_epoch(headers, &["x-ratelimit-reset", "ratelimit-reset"]);
        if limit.is_none() && remaining.is_none() && reset_at.is_none() {
            return;
        }
        self.with(platform, origin, |host| {
            host.seen = RateLimitState { limit: limit.or(host.seen.limit), remaining, reset_at };
        });
    }

    /// A call went through: the run of unnamed limits is over.
    pub(crate) fn succeeded(&self, platform: &'static str, origin: &str) {
        self.with(platform, origin, |host| host.unnamed_in_a_row = 0);
    }

    /// The host said to stay away until `until`.
    pub(crate) fn limited_until(&self, platform: &'static str, origin: &str, until: DateTime<Utc>) {
        self.with(platform, origin, |host| {
            host.seen.remaining = Some(0);
            host.seen.reset_at = Some(until);
        });
    }

    /// The host limited us without saying for how long: wait exponentially
    /// longer each time in a row (see [`backoff::rate_limit_wait`]).
    pub(crate) fn limited_without_time(&self, platform: &'static str, origin: &str) -> DateTime<Utc> {
        let consecutive = self.with(platform, origin, |host| {
            host.unnamed_in_a_row = host.unnamed_in_a_row.saturating_add(1);
            host.unnamed_in_a_row
        });
        let wait = TimeDelta::from_std(backoff::rate_limit_wait(consecutive)).unwrap_or(TimeDelta::hours(1));
        let until = Utc::now() + wait;
        self.limited_until(platform, origin, until);
        until
    }

    /// The state last seen for this host.
    pub(crate) fn get(&self, platform: &'static str, origin: &str) -> RateLimitState {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts.get(&(platform, origin.to_owned())).map(|host| host.seen).unwrap_or_default()
    }
}

fn header_str<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| headers.get(*name)).and_then(|value| value.to_str().ok()).map(str::trim)
}

fn header_u32(headers: &HeaderMap, names: &[&str]) -> Option<u32> {
    header_str(headers, names)?.parse().ok()
}

/// An epoch-seconds header (`x-ratelimit-reset`, `RateLimit-Reset`).
pub(crate) fn header_epoch(headers: &HeaderMap, names: &[&str]) -> Option<DateTime<Utc>> {
    let seconds: i64 = header_str(headers, names)?.parse().ok()?;
    DateTime::from_timestamp(seconds, 0)
}

/// `Retry-After`, in seconds or as an HTTP date, as the time to come back.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let value = header_str(headers, &["retry-after"])?;
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(Utc::now() + TimeDelta::seconds(i64::from(seconds)));
    }
    DateTime::parse_from_rfc2822(value).ok().map(|at| at.with_timezone(&Utc))
}

/// `x-ratelimit-remaining: 0` (GitHub's primary limit is spent).
pub(crate) fn remaining_is_zero(headers: &HeaderMap) -> bool {
    header_u32(headers, &["x-ratelimit-remaining", "ratelimit-remaining"]) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn keeps_the_last_headers_per_host() {
        let book = RateLimitBook::default();
        book.observe(
            "GitHub",
            "https://api.github.com",
            &headers(&[
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "42"),
                ("x-ratelimit-reset", "1700000000"),
            ]),
        );
        let seen = book.get("GitHub", "https://api.github.com");
        assert_eq!(seen.limit, Some(5000));
        assert_eq!(seen.remaining, Some(42));
        assert_eq!(seen.reset_at, DateTime::from_timestamp(1_700_000_000, 0));
        assert_eq!(book.get("GitHub", "https://ghe.example.com/api/v3"), RateLimitState::default());
        assert_eq!(book.get("GitLab", "https://api.github.com"), RateLimitState::default());
    }

    #[test]
    fn unnamed_limits_back_off_longer_each_time() {
        let book = RateLimitBook::default();
        let first = book.limited_without_time("Bitbucket", "x");
        let second = book.limited_without_time("Bitbucket", "x");
        assert!(second - first >= TimeDelta::seconds(50), "{first} {second}");
        book.succeeded("Bitbucket", "x");
        let again = book.limited_without_time("Bitbucket", "x");
        assert!(again - Utc::now() <= TimeDelta::seconds(67));
    }

    #[test]
    fn retry_after_in_seconds() {
        let at = retry_after(&headers(&[("retry-after", "30")])).unwrap();
        let wait = at - Utc::now();
        assert!(wait > TimeDelta::seconds(28) && wait <= TimeDelta::seconds(30));
    }
}
