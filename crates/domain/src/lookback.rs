//! How far back pull/merge request history is searched.

use crate::Invalid;

/// A pull-request lookback window in days, 1 to 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookbackDays(u16);

impl LookbackDays {
    /// The shortest window.
    pub const MIN: u16 = 1;
    /// The longest window.
    pub const MAX: u16 = 365;
    /// The window of a connection that did not choose one.
    pub const DEFAULT: LookbackDays = LookbackDays(30);

    /// A window of `days`, refused outside 1..=365.
    ///
    /// # Errors
    /// [`Invalid`] when `days` is out of range.
    pub fn new(days: i64) -> Result<Self, Invalid> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&days) {
            // In range, so it fits.
            Ok(Self(days as u16))
        } else {
            Err(Invalid::new("must be an integer from 1 to 365"))
        }
    }

    /// The number of days.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl Default for LookbackDays {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(LookbackDays::new(0).is_err());
        assert_eq!(LookbackDays::new(1).unwrap().get(), 1);
        assert_eq!(LookbackDays::new(365).unwrap().get(), 365);
        assert!(LookbackDays::new(366).is_err());
        assert!(LookbackDays::new(-5).is_err());
        assert_eq!(LookbackDays::default().get(), 30);
    }
}
