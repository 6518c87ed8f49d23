//! Per-API-key request rates, per process: one token bucket per key. It
//! protects this process from one key's loop; what protects the platforms
//! (sync requests) holds across replicas in the store instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sigsentry_domain::ApiKeyId;

/// Buckets idle this long are forgotten (they would be full again anyway).
const IDLE: Duration = Duration::from_secs(120);
/// Past this many buckets, idle ones are swept on the next check.
const SWEEP_AT: usize = 10_000;

/// What one request's check found, for its response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateVerdict {
    /// Requests per minute allowed to the key.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u32,
    /// `None` when the request may go on; else seconds until it may be retried.
    pub retry_after_secs: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of `per_minute` requests, refilled continuously.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<ApiKeyId, Bucket>>,
}

impl RateLimiter {
    /// `per_minute` requests per key per minute (at least 1), bursts up to that many.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `key`'s bucket, if it has one.
    pub fn check(&self, key: ApiKeyId) -> RateVerdict {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: ApiKeyId, now: Instant) -> RateVerdict {
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        // A poisoned lock only means another request panicked mid-check: the map is still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: capacity, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.at = now;
        let retry_after_secs = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(secs((1.0 - bucket.tokens) / per_sec))
        };
        RateVerdict {
            limit: self.per_minute,
            remaining: bucket.tokens.floor() as u32,
            reset_secs: secs((capacity - bucket.tokens) / per_sec),
            retry_after_secs,
        }
    }
}

/// Whole seconds, rounded up, bounded.
fn secs(value: f64) -> u32 {
    value.ceil().clamp(0.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> ApiKeyId {
        ApiKeyId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_burst_up_to_the_limit_then_refusals_that_say_when() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        for i in 0..60 {
            let verdict = limiter.check_at(key(1), t0);
            assert_eq!(verdict.retry_after_secs, None, "request {i}");
            assert_eq!(verdict.remaining, 59 - i);
        }
        let refused = limiter.check_at(key(1), t0);
        assert_eq!(refused.retry_after_secs, Some(1));
        assert_eq!((refused.limit, refused.remaining, refused.reset_secs), (60, 0, 60));
        // Another key is not affected.
        assert_eq!(limiter.check_at(key(2), t0).retry_after_secs, None);
        // One request per second comes back.
        assert_eq!(limiter.check_at(key(1), t0 + Duration::from_secs(1)).retry_after_secs, None);
        assert!(limiter.check_at(key(1), t0 + Duration::from_secs(1)).retry_after_secs.is_some());
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let limiter = RateLimiter::new(10);
        let t0 = Instant::now();
        for n in 0..SWEEP_AT as u128 {
            limiter.check_at(key(n), t0);
        }
        limiter.check_at(key(u128::MAX), t0 + IDLE + Duration::from_secs(1));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
