//! The portal clock and the two limits of §5: the per-portal leaky bucket
//! (`503 QUERY_LIMIT_EXCEEDED`) and the per-method operating-time budget over
//! ten one-minute buckets (`429 OPERATION_TIME_LIMIT`).

use std::collections::HashMap;

use serde::Serialize;

use crate::config::{OperatingLimit, RateLimit};
use crate::envelope::unix_now;

/// The portal's notion of "now": real time, optionally sped up and shifted,
/// so that token lifetimes and ten-minute windows can be tested in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Real time at which `virtual_base` was the portal time.
    real_base: f64,
    /// Portal time at `real_base`.
    virtual_base: f64,
    /// Portal seconds per real second.
    scale: f64,
}

impl Clock {
    /// A clock that shows real time running at `scale`.
    pub fn new(scale: f64) -> Self {
        let now = unix_now();
        Self {
            real_base: now,
            virtual_base: now,
            scale: sane_scale(scale),
        }
    }

    /// A clock standing still at `unix`: it moves only when set or
    /// advanced (for in-process simulations, see [`crate::sim`]).
    pub fn stopped(unix: f64) -> Self {
        Self {
            real_base: 0.0,
            virtual_base: unix,
            scale: 0.0,
        }
    }

    /// Portal time, Unix seconds with microseconds.
    pub fn now(&self) -> f64 {
        if self.scale == 0.0 {
            // A stopped clock never reads the system time.
            return self.virtual_base;
        }
        self.virtual_base + (unix_now() - self.real_base) * self.scale
    }

    /// Current speed.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Moves the clock by `seconds` (negative moves it back).
    pub fn advance(&mut self, seconds: f64) {
        self.rebase();
        self.virtual_base += seconds;
    }

    /// Sets the portal time to `unix`.
    pub fn set(&mut self, unix: f64) {
        self.rebase();
        self.virtual_base = unix;
    }

    /// Changes the speed from now on; time already passed is kept.
    pub fn set_scale(&mut self, scale: f64) {
        self.rebase();
        self.scale = sane_scale(scale);
    }

    fn rebase(&mut self) {
        let now = self.now();
        self.real_base = unix_now();
        self.virtual_base = now;
    }
}

fn sane_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale >= 0.0 {
        scale
    } else {
        1.0
    }
}

/// The leaky bucket: a level raised by one per request and drained at
/// `drain_per_second`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeakyBucket {
    /// Counter value at `at`.
    pub level: f64,
    /// Portal time of the last update.
    #[serde(skip)]
    at: f64,
}

impl LeakyBucket {
    /// Drains the bucket up to `now`, then admits the request (raising the
    /// level by one) unless that would lift the level above the burst.
    /// A disabled limit admits everything and keeps the level at zero.
    pub fn admit(&mut self, limit: &RateLimit, now: f64) -> bool {
        self.drain(limit, now);
        if !limit.enabled {
            return true;
        }
        if self.level + 1.0 > limit.burst {
            return false;
        }
        self.level += 1.0;
        true
    }

    /// The level after draining up to `now`.
    pub fn drain(&mut self, limit: &RateLimit, now: f64) {
        let elapsed = (now - self.at).max(0.0);
        self.level = if limit.enabled {
            (self.level - elapsed * limit.drain_per_second).max(0.0)
        } else {
            0.0
        };
        self.at = now;
    }
}

/// Length of one operating bucket, seconds.
const BUCKET_SECONDS: f64 = 60.0;
/// Buckets in the window (ten minutes).
const BUCKETS: f64 = 10.0;
/// Window of the operating-time budget, seconds.
pub const OPERATING_WINDOW: f64 = BUCKET_SECONDS * BUCKETS;

/// One minute of a method's execution time.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Minute number (`floor(time / 60)`).
    minute: i64,
    /// First call in that minute; the bucket drops out ten minutes later.
    first_at: f64,
    /// Seconds spent.
    spent: f64,
}

/// What the window holds for one method and one application or webhook.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    /// Seconds spent in the window (`time.operating`).
    pub operating: f64,
    /// When the oldest bucket drops out (`time.operating_reset_at`).
    pub reset_at: i64,
}

/// Execution time per application-or-webhook and method.
#[derive(Clone, Debug, Default)]
pub struct Operating {
    buckets: HashMap<(String, String), Vec<Bucket>>,
}

impl Operating {
    /// The window at `now`, dropping buckets that have aged out; `None` if
    /// nothing is left.
    pub fn usage(&mut self, budget: &str, method: &str, now: f64) -> Option<Usage> {
        let key = (budget.to_owned(), method.to_owned());
        let buckets = self.buckets.get_mut(&key)?;
        buckets.retain(|b| now - b.first_at < OPERATING_WINDOW);
        let oldest = buckets.first()?;
        Some(Usage {
            operating: buckets.iter().map(|b| b.spent).sum(),
            reset_at: (oldest.first_at + OPERATING_WINDOW).floor() as i64,
        })
    }

    /// Adds `seconds` spent at `at` and returns the window afterwards.
    pub fn record(&mut self, budget: &str, method: &str, at: f64, seconds: f64) -> Usage {
        let buckets = self
            .buckets
            .entry((budget.to_owned(), method.to_owned()))
            .or_default();
        buckets.retain(|b| at - b.first_at < OPERATING_WINDOW);
        let minute = (at / BUCKET_SECONDS).floor() as i64;
        match buckets.last_mut() {
            Some(last) if last.minute == minute => last.spent += seconds,
            _ => buckets.push(Bucket {
                minute,
                first_at: at,
                spent: seconds,
            }),
        }
        let oldest = buckets.first().map_or(at, |b| b.first_at);
        Usage {
            operating: buckets.iter().map(|b| b.spent).sum(),
            reset_at: (oldest + OPERATING_WINDOW).floor() as i64,
        }
    }

    /// Whether the next call of `method` must be refused: the limit is on
    /// and the window's sum already exceeds it.
    pub fn blocked(
        &mut self,
        limit: &OperatingLimit,
        budget: &str,
        method: &str,
        now: f64,
    ) -> bool {
        limit.enabled
            && self
                .usage(budget, method, now)
                .is_some_and(|u| u.operating > limit.limit_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_above_burst_and_drains() {
        let limit = RateLimit {
            enabled: true,
            burst: 3.0,
            drain_per_second: 2.0,
        };
        let mut bucket = LeakyBucket::default();
        let admitted: Vec<bool> = (0..4).map(|_| bucket.admit(&limit, 100.0)).collect();
        assert_eq!(admitted, [true, true, true, false]);
        assert!(bucket.admit(&limit, 100.5));
        assert!(!bucket.admit(&limit, 100.5));
        assert!(LeakyBucket::default().admit(&RateLimit::default(), 0.0));
    }

    #[test]
    fn operating_buckets_age_out_after_ten_minutes() {
        let mut op = Operating::default();
        let first = op.record("app", "m", 1000.0, 2.0);
        assert_eq!(
            first,
            Usage {
                operating: 2.0,
                reset_at: 1600
            }
        );
        op.record("app", "m", 1010.0, 1.0);
        let later = op.record("app", "m", 1130.0, 4.0);
        assert_eq!(later.operating, 7.0);
        assert_eq!(later.reset_at, 1600);
        let after = op.usage("app", "m", 1600.0);
        assert_eq!(
            after,
            Some(Usage {
                operating: 4.0,
                reset_at: 1730
            })
        );
        assert_eq!(op.usage("app", "other", 1600.0), None);
    }
}
