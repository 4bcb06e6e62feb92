//! The portal's request-rate limit, mirrored by the client so that it does not send
//! what the portal would refuse.
//!
//! The portal keeps a leaky bucket per portal (fact sheet §5.1): every request raises
//! a level by one, the level drains at `drain_per_second`, and a request that would
//! lift it above `burst` is refused with `503 QUERY_LIMIT_EXCEEDED`. A [`Limiter`] keeps
//! the same level for the requests of one client and says how long each must wait.
//! Waits are reservations: each request takes the next free place at once, so
//! concurrent calls are spread out in the order they asked, without polling.
//!
//! The client cannot see requests of other apps on the same portal; when the portal
//! still answers 503, [`Limiter::saturate`] takes the bucket as full, so the next
//! request waits for one place to drain.
//!
//! Times are milliseconds on the client's clock; nothing here sleeps.

/// A bucket's size and drain rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests the bucket holds (the burst sent without waiting).
    pub burst: f64,
    /// Requests drained per second.
    pub drain_per_second: f64,
}

impl Limits {
    /// Every plan but Enterprise: 50 requests, 2 per second.
    pub const STANDARD: Limits = Limits {
        burst: 50.0,
        drain_per_second: 2.0,
    };
    /// Enterprise plans: 250 requests, 5 per second.
    pub const ENTERPRISE: Limits = Limits {
        burst: 250.0,
        drain_per_second: 5.0,
    };

    /// Limits from a caller's numbers; `None` unless both are finite and the burst is
    /// at least 1 and the drain positive.
    pub fn new(burst: f64, drain_per_second: f64) -> Option<Limits> {
        (burst.is_finite()
            && drain_per_second.is_finite()
            && burst >= 1.0
            && drain_per_second > 0.0)
            .then_some(Limits {
                burst,
                drain_per_second,
            })
    }

    /// The smallest time in which `requests` requests pass through an empty bucket of
    /// these limits, in milliseconds: the burst at once, the rest at the drain rate.
    pub fn minimum_ms(&self, requests: f64) -> f64 {
        ((requests - self.burst).max(0.0) / self.drain_per_second) * 1000.0
    }
}

/// Places kept free below the portal's burst: the portal measures drain from when a
/// request arrives, which jitters with the network; a full bucket plus a little jitter
/// would be a 503.
const SPARE: f64 = 1.0;

/// One client's view of the portal's bucket.
#[derive(Debug, Clone)]
pub struct Limiter {
    limits: Limits,
    /// The level at `at_ms`, reservations included (may exceed the burst: the excess
    /// is the queue of requests waiting for a place).
    level: f64,
    at_ms: f64,
}

impl Limiter {
    /// An empty bucket of `limits`.
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            level: 0.0,
            at_ms: 0.0,
        }
    }

    /// The bucket's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn capacity(&self) -> f64 {
        (self.limits.burst - SPARE).max(1.0)
    }

    /// The level at `now_ms`, drained since the last change (a clock that went back
    /// drains nothing).
    pub fn level_at(&self, now_ms: f64) -> f64 {
        let elapsed = (now_ms - self.at_ms).max(0.0);
        (self.level - elapsed * self.limits.drain_per_second / 1000.0).max(0.0)
    }

    fn set(&mut self, level: f64, now_ms: f64) {
        self.level = level;
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// Reserves a place for one request asked for at `now_ms`; returns how many
    /// milliseconds it must wait before it is sent (0: at once).
    pub fn reserve(&mut self, now_ms: f64) -> f64 {
        let level = self.level_at(now_ms) + 1.0;
        self.set(level, now_ms);
        let excess = level - self.capacity();
        if excess <= 0.0 {
            0.0
        } else {
            excess / self.limits.drain_per_second * 1000.0
        }
    }

    /// Reserves a place for a request at `now_ms` only when it may go at once.
    pub fn try_reserve(&mut self, now_ms: f64) -> bool {
        let level = self.level_at(now_ms) + 1.0;
        if level > self.capacity() {
            return false;
        }
        self.set(level, now_ms);
        true
    }

    /// Gives back a reservation whose request was never sent (its call stopped while
    /// waiting).
    pub fn release(&mut self, now_ms: f64) {
        let level = (self.level_at(now_ms) - 1.0).max(0.0);
        self.set(level, now_ms);
    }

    /// The portal answered `QUERY_LIMIT_EXCEEDED` at `now_ms`: its bucket is fuller
    /// than this client knew (other apps, an earlier run), so take it as full.
    pub fn saturate(&mut self, now_ms: f64) {
        let level = self.level_at(now_ms).max(self.capacity());
        self.set(level, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` requests asked for at once at `t`; returns their send times.
    fn schedule(l: &mut Limiter, t: f64, n: usize) -> Vec<f64> {
        (0..n).map(|_| t + l.reserve(t)).collect()
    }

    #[test]
    fn a_burst_goes_at_once_then_the_drain_rate_paces() {
        let mut l = Limiter::new(Limits::STANDARD);
        let times = schedule(&mut l, 1000.0, 60);
        let at_once = times.iter().filter(|&&t| t == 1000.0).count();
        assert_eq!(at_once, 49, "the burst less one spare place");
        // Then one every 500 ms (2 per second).
        for pair in times.windows(2).skip(at_once) {
            if let [a, b] = pair {
                assert!((b - a - 500.0).abs() < 1e-6, "{a} -> {b}");
            }
        }
    }

    #[test]
    fn try_reserve_takes_a_place_only_when_one_is_free_now() {
        let mut l = Limiter::new(Limits::new(5.0, 2.0).expect("valid"));
        assert!(
            (0..4).all(|_| l.try_reserve(0.0)),
            "the burst less the spare"
        );
        assert!(!l.try_reserve(0.0), "full: the caller must wait instead");
        assert_eq!(l.reserve(0.0), 500.0, "a refused try reserved nothing");
        assert!(l.try_reserve(1500.0), "free again once drained");
    }

    #[test]
    fn the_bucket_drains_while_idle() {
        let mut l = Limiter::new(Limits::new(5.0, 2.0).expect("valid"));
        schedule(&mut l, 0.0, 4);
        assert!(l.reserve(0.0) > 0.0, "full");
        l.release(0.0);
        // Two seconds later four places drained.
        assert_eq!(schedule(&mut l, 2000.0, 4), vec![2000.0; 4]);
        assert!(
            l.level_at(6000.0) < 1e-9,
            "empty again after four more seconds"
        );
    }

    #[test]
    fn a_refusal_from_a_busy_portal_makes_the_next_request_wait() {
        let mut l = Limiter::new(Limits::STANDARD);
        assert_eq!(l.reserve(0.0), 0.0, "the client thinks the bucket is empty");
        l.saturate(10.0);
        let wait = l.reserve(10.0);
        assert!((wait - 500.0).abs() < 1e-6, "one place must drain: {wait}");
        // And it recovers at the drain rate: a minute later the burst is back.
        assert_eq!(l.reserve(60_000.0), 0.0);
    }

    #[test]
    fn released_places_are_given_to_the_next_request() {
        let mut l = Limiter::new(Limits::new(2.0, 1.0).expect("valid"));
        assert_eq!(l.reserve(0.0), 0.0);
        let second = l.reserve(0.0);
        assert!((second - 1000.0).abs() < 1e-6);
        l.release(0.0);
        let third = l.reserve(0.0);
        assert!(
            (third - 1000.0).abs() < 1e-6,
            "the released place is reused"
        );
    }

    #[test]
    fn limits_are_checked_and_give_the_theoretical_minimum() {
        assert!(Limits::new(0.0, 2.0).is_none());
        assert!(Limits::new(50.0, 0.0).is_none());
        assert!(Limits::new(f64::NAN, 2.0).is_none());
        assert_eq!(Limits::STANDARD.minimum_ms(200.0), 75_000.0);
        assert_eq!(Limits::ENTERPRISE.minimum_ms(100.0), 0.0);
        let mut l = Limiter::new(Limits::STANDARD);
        let last = schedule(&mut l, 0.0, 200).last().copied().unwrap_or(0.0);
        assert!(
            last <= Limits::STANDARD.minimum_ms(200.0) + 1000.0,
            "the limiter loses at most the spare place: {last}"
        );
    }
}
