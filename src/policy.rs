//! Every decision about executing a call again: whether the portal ran it, whether it
//! is safe and useful to repeat, and whether to refresh the token and repeat it.
//!
//! A call is repeated only where the portal said it was not executed: an
//! `expired_token`/`invalid_token` answer is refused before the handler runs, so after
//! one refresh the same request is sent once more; the portal's limits
//! (`503 QUERY_LIMIT_EXCEEDED`, `429 OPERATION_TIME_LIMIT`) refuse a request before it
//! runs, so it is sent again after a wait, a bounded number of times ([`Retry`]).
//! Nothing whose outcome is unknown is ever repeated; the error's `outcome` and
//! `retryable` tell the caller what is safe.

use crate::error::{codes, Error, Outcome};
pub use crate::outcome::{is_auth, is_limit, portal_outcome, refused_connection, retryable};

/// The next step after an attempt failed with `error`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Refresh the access token (shared with every call in flight), then send again.
    RefreshAndRetry,
    /// Wait this many milliseconds (then for the limiter), then send again.
    Wait(f64),
    /// Return the error to the caller.
    Fail,
}

/// Decides the next step. `can_refresh`: the client has token auth and a way to
/// refresh it; `refreshed`: this call already refreshed once.
pub fn after_error(error: &Error, can_refresh: bool, refreshed: bool) -> Next {
    let token_refused = matches!(error, Error::Auth(_))
        && (error.code() == codes::EXPIRED_TOKEN || error.code() == codes::INVALID_TOKEN);
    if token_refused && can_refresh && !refreshed {
        Next::RefreshAndRetry
    } else {
        Next::Fail
    }
}

/// How limit refusals are retried: how many times, and the backoff between tries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Retries after the first attempt (0: never retry).
    pub retries: u32,
    /// The first backoff in milliseconds; it doubles with every retry.
    pub base_delay_ms: f64,
    /// No single wait is longer, the reset of a 429 included.
    pub max_delay_ms: f64,
}

impl Retry {
    /// 3 retries, 250 ms doubling, at most 30 s per wait.
    pub const DEFAULT: Retry = Retry {
        retries: 3,
        base_delay_ms: 250.0,
        max_delay_ms: 30_000.0,
    };
    /// Never retry: limit refusals reach the caller.
    pub const NEVER: Retry = Retry {
        retries: 0,
        base_delay_ms: 0.0,
        max_delay_ms: 0.0,
    };
}

/// What is known about a failed attempt besides its error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// Limit retries already made for this call.
    pub retried: u32,
    /// The client has token auth and a way to refresh it.
    pub can_refresh: bool,
    /// This call already refreshed once.
    pub refreshed: bool,
    /// When the method's operating budget frees up, in milliseconds from now, as the
    /// portal last reported it (`time.operating_reset_at` − `time.finish`).
    pub reset_in_ms: Option<f64>,
    /// A number in `[0, 1)` for jitter.
    pub random: f64,
}

/// The next step after a failed attempt: a token refusal refreshes once (as
/// [`after_error`]); a limit refusal, which the portal answered before running the
/// method, waits and is sent again while retries remain. A 503 backs off (the limiter
/// then waits for a place); a 429 waits for the reset the portal reported, when it
/// did. Waits are jittered (half fixed, half random) and capped. Nothing else, and
/// never an unknown outcome, is repeated.
pub fn decide(error: &Error, attempt: &Attempt, retry: &Retry) -> Next {
    if after_error(error, attempt.can_refresh, attempt.refreshed) == Next::RefreshAndRetry {
        return Next::RefreshAndRetry;
    }
    let code = error.code().to_ascii_lowercase();
    if error.outcome() != Outcome::NotExecuted || !is_limit(&code) {
        return Next::Fail;
    }
    if attempt.retried >= retry.retries {
        return Next::Fail;
    }
    let backoff = retry.base_delay_ms * 2f64.powi(attempt.retried.min(30) as i32);
    let wait = match attempt.reset_in_ms {
        Some(reset) if code == "operation_time_limit" && reset > 0.0 => reset.max(backoff),
        _ => backoff,
    };
    let wait = wait.min(retry.max_delay_ms).max(0.0);
    let random = attempt.random.clamp(0.0, 1.0);
    Next::Wait(wait / 2.0 + wait / 2.0 * random)
}

/// Whether a token with this expiry (ms since the epoch) must be refreshed before
/// sending at `now_ms`: when the source said when it expires and that time has come.
pub fn expired(expires_at_ms: Option<f64>, now_ms: f64) -> bool {
    expires_at_ms.is_some_and(|at| now_ms >= at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(retried: u32) -> Attempt {
        Attempt {
            retried,
            can_refresh: false,
            refreshed: false,
            reset_in_ms: None,
            random: 1.0,
        }
    }

    fn portal(code: &str, status: u16) -> Error {
        Error::from_portal("m", status, code.into(), String::new(), None, true)
    }

    #[test]
    fn limit_refusals_are_retried_with_growing_capped_jittered_waits() {
        let limited = portal("QUERY_LIMIT_EXCEEDED", 503);
        let r = Retry::DEFAULT;
        assert_eq!(decide(&limited, &attempt(0), &r), Next::Wait(250.0));
        assert_eq!(decide(&limited, &attempt(2), &r), Next::Wait(1000.0));
        assert_eq!(decide(&limited, &attempt(3), &r), Next::Fail, "bounded");
        let half = Attempt {
            random: 0.0,
            ..attempt(1)
        };
        assert_eq!(decide(&limited, &half, &r), Next::Wait(250.0), "jitter");
        let capped = Retry { retries: 40, ..r };
        assert_eq!(
            decide(&limited, &attempt(30), &capped),
            Next::Wait(30_000.0)
        );
        assert_eq!(decide(&limited, &attempt(0), &Retry::NEVER), Next::Fail);
    }

    #[test]
    fn an_operating_limit_waits_for_the_reported_reset() {
        let blocked = portal("OPERATION_TIME_LIMIT", 429);
        let known = Attempt {
            reset_in_ms: Some(4_000.0),
            ..attempt(0)
        };
        assert_eq!(
            decide(&blocked, &known, &Retry::DEFAULT),
            Next::Wait(4_000.0)
        );
        let far = Attempt {
            reset_in_ms: Some(600_000.0),
            ..attempt(0)
        };
        assert_eq!(
            decide(&blocked, &far, &Retry::DEFAULT),
            Next::Wait(30_000.0)
        );
        // A 503 ignores the operating reset.
        let limited = portal("QUERY_LIMIT_EXCEEDED", 503);
        assert_eq!(decide(&limited, &known, &Retry::DEFAULT), Next::Wait(250.0));
    }

    #[test]
    fn unknown_and_failed_outcomes_are_never_retried() {
        let r = Retry::DEFAULT;
        for e in [
            portal("INTERNAL_SERVER_ERROR", 500),
            portal("ACCESS_DENIED", 403),
            Error::network("m", "other side closed", true),
            Error::timeout("m", 5, true),
            Error::bad_response("m", 502, "html", true),
        ] {
            assert_eq!(decide(&e, &attempt(0), &r), Next::Fail, "{e}");
        }
        // A limit code on a 5xx that is not the limit's own answer still counts as
        // not executed (the code is authoritative).
        let odd = portal("QUERY_LIMIT_EXCEEDED", 500);
        assert!(matches!(decide(&odd, &attempt(0), &r), Next::Wait(_)));
        let expired = Attempt {
            can_refresh: true,
            ..attempt(0)
        };
        assert_eq!(
            decide(&portal("expired_token", 401), &expired, &r),
            Next::RefreshAndRetry
        );
    }

    #[test]
    fn only_token_refusals_trigger_one_refresh() {
        for code in ["expired_token", "invalid_token"] {
            assert_eq!(
                after_error(&portal(code, 401), true, false),
                Next::RefreshAndRetry
            );
            assert_eq!(
                after_error(&portal(code, 401), true, true),
                Next::Fail,
                "only once"
            );
            assert_eq!(
                after_error(&portal(code, 401), false, false),
                Next::Fail,
                "no refresher"
            );
        }
        for code in [
            "INVALID_CREDENTIALS",
            "NO_AUTH_FOUND",
            "ACCESS_DENIED",
            "QUERY_LIMIT_EXCEEDED",
            "Expired_Token_x",
        ] {
            assert_eq!(
                after_error(&portal(code, 401), true, false),
                Next::Fail,
                "{code}"
            );
        }
        assert_eq!(
            after_error(&Error::network("m", "x", true), true, false),
            Next::Fail
        );
    }
}
