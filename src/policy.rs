//! What to do after a failed attempt: refresh the token and repeat, or give up.
//!
//! A call is repeated only where the portal said it was not executed: an
//! `expired_token`/`invalid_token` answer is refused before the handler runs, so after
//! one refresh the same request is sent once more. Nothing else is repeated
//! automatically; the error's `retryable` flag tells the caller what is safe.

use crate::error::{codes, Error};

/// The next step after an attempt failed with `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Refresh the access token (shared with every call in flight), then send again.
    RefreshAndRetry,
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

/// Whether a token with this expiry (ms since the epoch) must be refreshed before
/// sending at `now_ms`: when the source said when it expires and that time has come.
pub fn expired(expires_at_ms: Option<f64>, now_ms: f64) -> bool {
    expires_at_ms.is_some_and(|at| now_ms >= at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(code: &str, status: u16) -> Error {
        Error::from_portal("m", status, code.into(), String::new(), None, true)
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
