//! Time, as a port, so rules that depend on it can be tested.

use chrono::{DateTime, SubsecRound, Utc};

/// Tells the time.
pub trait Clock: Clone + Send + Sync + 'static {
    /// Now, in UTC, to the millisecond (what every store keeps).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }
}
