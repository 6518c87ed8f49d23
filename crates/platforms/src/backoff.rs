//! Exponential waits with jitter, for transient failures and for rate limits
//! that do not say when to come back.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::RetryConfig;

/// The wait before retry `retry` (1-based) of a transient failure:
/// `base × 2^(retry-1)`, capped, plus up to half of it again as jitter.
pub(crate) fn retry_delay(config: &RetryConfig, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(20);
    let wait = config.base_delay.saturating_mul(1 << exponent).min(config.max_delay);
    wait + jitter(wait / 2)
}

/// The first wait after a rate limit that names no time (Bitbucket's bare
/// 429, GitHub's secondary limit without headers): GitHub asks for at least a
/// minute.
const RATE_LIMIT_FIRST_WAIT: Duration = Duration::from_secs(60);
/// The longest such wait: Bitbucket's window is an hour.
const RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(3600);

/// How long to stay away after the `consecutive`-th (1-based) rate limit in a
/// row that named no time: 1, 2, 4, 8, 16, 32 minutes, then 1 hour, each plus
/// up to 10 % jitter so that many connections do not come back at once.
pub(crate) fn rate_limit_wait(consecutive: u32) -> Duration {
    let exponent = consecutive.saturating_sub(1).min(16);
    let wait = RATE_LIMIT_FIRST_WAIT.saturating_mul(1 << exponent).min(RATE_LIMIT_MAX_WAIT);
    wait + jitter(wait / 10)
}

/// A random duration in `[0, max]`. Jitter only spreads retries, so the
/// process-seeded hasher keys are random enough, without another dependency.
fn jitter(max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(max_ms);
    Duration::from_millis(hasher.finish() % (max_ms + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_stay_within_jitter() {
        let config =
            RetryConfig { attempts: 3, base_delay: Duration::from_millis(100), max_delay: Duration::from_millis(350) };
        for (retry, base) in [(1, 100), (2, 200), (3, 350), (9, 350)] {
            let delay = retry_delay(&config, retry);
            assert!(delay >= Duration::from_millis(base), "{retry}: {delay:?}");
            assert!(delay <= Duration::from_millis(base + base / 2), "{retry}: {delay:?}");
        }
    }

    #[test]
    fn rate_limit_waits_grow_to_an_hour() {
        assert!(rate_limit_wait(1) >= Duration::from_secs(60));
        assert!(rate_limit_wait(1) <= Duration::from_secs(66));
        assert!(rate_limit_wait(3) >= Duration::from_secs(240));
        assert!(rate_limit_wait(50) >= Duration::from_secs(3600));
        assert!(rate_limit_wait(50) <= Duration::from_secs(3960));
    }
}
