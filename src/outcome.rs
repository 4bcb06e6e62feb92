//! Was it executed? The facts that decide whether a failed call ran on the portal,
//! and so whether sending it again could duplicate it. Plain functions of the portal's
//! code, status and the runtime's text; [`crate::error`] records their answer in every
//! error, and [`crate::policy`] acts on it.

/// Whether a failed call was executed by the portal: the question a caller must answer
/// before sending a write again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was executed: the request never left, or the portal refused it before
    /// running the method (limits, auth, validation). Sending it again cannot duplicate.
    NotExecuted,
    /// The portal ran the method and it failed (`ACCESS_DENIED`, `CHAT_NOT_IN_CRM`, ...):
    /// nothing was stored.
    Failed,
    /// No reliable answer came back after the request left (timeout, dropped
    /// connection, 5xx, a body that is not an envelope): a write may have been executed.
    Unknown,
}

impl Outcome {
    /// The JS spelling: `notExecuted`, `failed`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotExecuted => "notExecuted",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The portal's limits: the request was refused before it ran (lower-case code).
pub fn is_limit(code: &str) -> bool {
    matches!(code, "query_limit_exceeded" | "operation_time_limit")
}

/// The REST layer's auth refusals: the request was refused before it ran.
pub fn is_auth(code: &str) -> bool {
    matches!(
        code,
        "expired_token"
            | "invalid_token"
            | "no_auth_found"
            | "invalid_credentials"
            | "insufficient_scope"
            | "invalid_request"
            | "authorization_error"
            | "user_access_error"
            | "wrong_auth_type"
            | "method_confirm_waiting"
            | "password_expired"
    )
}

/// Codes the REST layer answers before dispatching to a method.
fn is_before_dispatch(code: &str) -> bool {
    matches!(
        code,
        "error_method_not_found"
            | "wrong_encoding"
            | "error_batch_length_exceeded"
            | "error_batch_method_not_allowed"
            | "error_argument"
    )
}

/// Whether the portal ran a call it answered with error `code` (lower case), given
/// whether it named an `argument` and the HTTP `status`.
///
/// Limits, auth, dispatch errors and argument validation come before anything is
/// stored: not executed. A 5xx without such a code may come after the method stored
/// something: unknown. Any other code is the method refusing: executed and failed.
pub fn portal_outcome(code: &str, has_argument: bool, status: u16) -> Outcome {
    if is_limit(code) || is_auth(code) || is_before_dispatch(code) || has_argument {
        Outcome::NotExecuted
    } else if status >= 500 {
        Outcome::Unknown
    } else {
        Outcome::Failed
    }
}

/// Whether sending the same call again cannot deliver a message twice and may
/// succeed: a limit refusal (not executed), or an unanswered read or one that never
/// left. A refused or invalid call would fail again; an unknown write may duplicate.
pub fn retryable(outcome: Outcome, code: &str, write: bool) -> bool {
    match outcome {
        Outcome::NotExecuted => code.is_empty() || is_limit(code),
        Outcome::Unknown => !write,
        Outcome::Failed => false,
    }
}

/// Whether a runtime's network error says the connection was never made (refused,
/// unknown host), so the request cannot have reached the portal.
pub fn refused_connection(cause: &str) -> bool {
    ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ERR_INVALID_URL"]
        .iter()
        .any(|marker| crate::text::contains(cause, marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_where_the_portal_refused() {
        let cases = [
            ("query_limit_exceeded", false, 503, Outcome::NotExecuted),
            ("operation_time_limit", false, 429, Outcome::NotExecuted),
            ("expired_token", false, 401, Outcome::NotExecuted),
            ("error_method_not_found", false, 404, Outcome::NotExecuted),
            ("crm_chat_empty_crm_data", true, 400, Outcome::NotExecuted),
            ("access_denied", false, 403, Outcome::Failed),
            ("chat_not_in_crm", false, 400, Outcome::Failed),
            ("internal_server_error", false, 500, Outcome::Unknown),
            ("whatever", false, 502, Outcome::Unknown),
        ];
        for (code, arg, status, outcome) in cases {
            assert_eq!(portal_outcome(code, arg, status), outcome, "{code}");
        }
        assert!(retryable(
            Outcome::NotExecuted,
            "query_limit_exceeded",
            true
        ));
        assert!(!retryable(Outcome::NotExecuted, "error_argument", false));
        assert!(retryable(Outcome::NotExecuted, "", true), "never sent");
        assert!(!retryable(Outcome::Unknown, "", true));
        assert!(retryable(Outcome::Unknown, "", false));
        assert!(!retryable(Outcome::Failed, "access_denied", false));
    }

    #[test]
    fn refused_connections_never_reached_the_portal() {
        assert!(refused_connection(
            "TypeError: fetch failed: connect ECONNREFUSED 127.0.0.1:1"
        ));
        assert!(!refused_connection(
            "TypeError: fetch failed: other side closed"
        ));
        assert!(!refused_connection("TypeError: Failed to fetch"));
    }
}
