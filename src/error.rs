//! The error model: one enum whose variants say what the caller can do about it.
//!
//! Every failure, whether the caller's input was rejected before a request, the portal
//! answered with its error envelope, or the network failed, becomes an [`Error`]
//! carrying a stable string `code` (the portal's own code as sent, or one of ours),
//! the HTTP status (0 when there was none), the REST method, a description and
//! whether repeating the same call may succeed.

use std::fmt;

use crate::outcome;
pub use crate::outcome::Outcome;
use crate::text;

/// Codes this crate produces itself (the portal's codes are passed through as sent).
pub mod codes {
    /// The request may have left, but no answer arrived (connection failed or dropped).
    pub const NETWORK_ERROR: &str = "NETWORK_ERROR";
    /// No answer within the call's `timeoutMs`.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// The caller's `AbortSignal` fired.
    pub const ABORTED: &str = "ABORTED";
    /// The answer was not a Bitrix24 envelope (HTML error page, truncated JSON, ...).
    pub const BAD_RESPONSE: &str = "BAD_RESPONSE";
    /// No usable authentication was given (webhook URL or access token).
    pub const NO_AUTH: &str = "NO_AUTH";
    /// A parameter is missing, empty or of the wrong type (same code as the portal's).
    pub const ERROR_ARGUMENT: &str = "ERROR_ARGUMENT";
    /// The portal's code for an access token past its lifetime.
    pub const EXPIRED_TOKEN: &str = "expired_token";
    /// The portal's code for an access token it does not know.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// The portal's request-rate limit (leaky bucket); the request was not executed.
    pub const QUERY_LIMIT_EXCEEDED: &str = "QUERY_LIMIT_EXCEEDED";
    /// The portal's per-method operating-time limit; the request was not executed.
    pub const OPERATION_TIME_LIMIT: &str = "OPERATION_TIME_LIMIT";
    /// The portal's parent window ignores this frame command where the app is shown.
    pub const COMMAND_DENIED: &str = "COMMAND_DENIED";
}

/// What is known about a failed call. Shared by every [`Error`] variant.
#[derive(Clone, PartialEq, Eq)]
pub struct Details {
    /// Stable code: the portal's `error` as sent (case kept), or one of [`codes`].
    pub code: String,
    /// HTTP status of the answer, or 0 when no answer was read.
    pub status: u16,
    /// The REST method that was called.
    pub method: String,
    /// Human-readable text: the portal's `error_description`, or ours.
    pub description: String,
    /// The parameter the portal or our validation named, in its wire spelling.
    pub argument: Option<String>,
    /// Whether the portal executed the call (see [`Outcome`]).
    pub outcome: Outcome,
    /// Whether repeating the same call unchanged may succeed without risking a duplicate.
    pub retryable: bool,
    /// What the outcome means for the caller, appended to the message (e.g. "a message
    /// may have been delivered").
    pub note: Note,
    /// Whether the outcome was established by reading the chat back (verified delivery).
    pub verified: bool,
    /// Verified delivery of a message of unknown outcome: the ids of messages by the
    /// same author in the chat that this client cannot account for, any of which may be
    /// this message, so its absence is not proven (empty otherwise).
    pub candidates: Box<[u64]>,
    /// What to do about it, when the client knows (also at the end of the message).
    pub hint: Hint,
}

impl fmt::Debug for Details {
    // Written out so that no future field can leak a secret through `{:?}` unnoticed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Details")
            .field("code", &self.code)
            .field("status", &self.status)
            .field("method", &self.method)
            .field("description", &self.description)
            .field("argument", &self.argument)
            .field("outcome", &self.outcome)
            .field("retryable", &self.retryable)
            .field("note", &self.note)
            .field("verified", &self.verified)
            .field("candidates", &self.candidates)
            .field("hint", &self.hint)
            .finish()
    }
}

/// A failed call, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Fix the input: a parameter is missing or invalid (`ERROR_ARGUMENT` and
    /// method-specific argument codes). Raised before any request when our
    /// validation catches it.
    InvalidArgument(Details),
    /// Re-authenticate: no auth given, bad webhook, expired or invalid token, or scope.
    Auth(Details),
    /// Wait and retry: a portal limit refused the request before executing it.
    RateLimited(Details),
    /// The portal ran the call and refused it (`ACCESS_DENIED`, `CHAT_NOT_IN_CRM`, ...).
    Rejected(Details),
    /// The portal answered 5xx with an error of its own: the call may have executed.
    ServerError(Details),
    /// No answer was read: the connection failed or dropped (`NETWORK_ERROR`).
    Network(Details),
    /// No answer within the timeout (`TIMEOUT`).
    Timeout(Details),
    /// The caller cancelled the call (`ABORTED`).
    Aborted(Details),
    /// The answer was not a Bitrix24 envelope (`BAD_RESPONSE`).
    BadResponse(Details),
}

/// Matches every variant, binding its [`Details`].
macro_rules! each_variant {
    ($e:expr, $d:ident => $body:expr) => {
        match $e {
            Error::InvalidArgument($d)
            | Error::Auth($d)
            | Error::RateLimited($d)
            | Error::Rejected($d)
            | Error::ServerError($d)
            | Error::Network($d)
            | Error::Timeout($d)
            | Error::Aborted($d)
            | Error::BadResponse($d) => $body,
        }
    };
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

fn message(d: &Details) -> String {
    let note = d.note.as_str();
    let mut out =
        String::with_capacity(d.method.len() + d.code.len() + d.description.len() + note.len() + 4);
    if !d.method.is_empty() {
        out.push_str(&d.method);
        out.push_str(": ");
    }
    out.push_str(&d.code);
    out.push_str(": ");
    out.push_str(&d.description);
    out.push_str(note);
    if let Some(hint) = d.hint.text() {
        out.push_str(". ");
        out.push_str(hint);
    }
    out
}

/// What to do about an error, when the client knows: one of a fixed set of texts (a
/// byte, so that errors stay small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hint(u8);

const HINTS: [&str; 9] = [
    "",
    "With verify: true the chat is read back with im.dialog.messages.get: give the webhook or app the im scope, or send without verify",
    "Give the webhook or app the imopenlines scope (in its settings on the portal)",
    "Give the webhook or app the user scope, or pass userId so that the current user is not read",
    "Give the webhook or app the scope of this method (in its settings on the portal)",
    "The sender (userId) must be a member of the chat: add it with crmChatUserAdd, or use sendToCrmItem, which adds it",
    "The user is already a member of the chat (nothing to do then), or you may not add users to it",
    "This client cannot refresh its access token: pass refresh (a function that resolves to a new token) to Client.fromToken, or make a client with a new accessToken",
    "A portal on this machine usually speaks plain http: write the scheme in domain, e.g. 'http://127.0.0.1:8080'",
];

impl Hint {
    /// No hint.
    pub const NONE: Hint = Hint(0);
    /// `verify` needs the `im` scope.
    pub const VERIFY_SCOPE: Hint = Hint(1);
    /// The `imopenlines` scope.
    pub const LINES_SCOPE: Hint = Hint(2);
    /// The `user` scope, for the current user.
    pub const USER_SCOPE: Hint = Hint(3);
    /// Some other scope.
    pub const SCOPE: Hint = Hint(4);
    /// The sender must be a member of the chat.
    pub const MEMBER: Hint = Hint(5);
    /// `WRONG_REQUEST` of a user add: already a member.
    pub const ALREADY_MEMBER: Hint = Hint(6);
    /// A token that expired, and no `refresh`.
    pub const REFRESH: Hint = Hint(7);
    /// https to a portal on this machine.
    pub const LOCAL_HTTP: Hint = Hint(8);

    /// The text, if any.
    pub fn text(self) -> Option<&'static str> {
        HINTS
            .get(usize::from(self.0))
            .filter(|t| !t.is_empty())
            .copied()
    }
}

/// What to do about a portal's refusal of `method`, when it is known (`code` lower
/// case). A token that expired without a way to refresh it is said by the machine.
fn hint(method: &str, code: &str) -> Hint {
    let m = method.to_ascii_lowercase();
    match code {
        "insufficient_scope" if m == "im.dialog.messages.get" => Hint::VERIFY_SCOPE,
        "insufficient_scope" if m.starts_with("imopenlines.") => Hint::LINES_SCOPE,
        "insufficient_scope" if m.starts_with("user.") => Hint::USER_SCOPE,
        "insufficient_scope" => Hint::SCOPE,
        "canceled" | "message_add_error" if m == crate::params::MESSAGE_ADD => Hint::MEMBER,
        "wrong_request" if m == crate::params::CHAT_USER_ADD => Hint::ALREADY_MEMBER,
        _ => Hint::NONE,
    }
}

/// How an error's text ends, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Note {
    /// Nothing to add.
    #[default]
    None,
    /// The request may have been executed: a message may have been delivered.
    MayHaveBeenDelivered,
    /// Nothing left the client.
    NotSent,
    /// A step before the message failed: the message itself was not sent.
    MessageNotSent,
}

impl Note {
    /// The text appended to the error's message.
    pub fn as_str(&self) -> &'static str {
        match self {
            Note::None => "",
            Note::MayHaveBeenDelivered => "; the portal may have executed it (a message may have been delivered), so it was not repeated",
            Note::NotSent => "; nothing was sent",
            Note::MessageNotSent => "; the message was not sent",
        }
    }
}

/// Why no answer was read (the transport's view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The connection failed or dropped.
    Network,
    /// The call's time ran out.
    Timeout,
    /// The caller's signal fired.
    Aborted,
}

impl Error {
    /// The fields common to all variants.
    pub fn details(&self) -> &Details {
        each_variant!(self, d => d)
    }

    fn details_mut(&mut self) -> &mut Details {
        each_variant!(self, d => d)
    }

    /// The text the error shows (its `Display`): the method when known, the code, the
    /// description and the note, e.g. `m: TIMEOUT: no answer within 1000 ms; ...`.
    pub fn message(&self) -> String {
        message(self.details())
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.details().code
    }

    /// Whether the portal executed the call.
    pub fn outcome(&self) -> Outcome {
        self.details().outcome
    }

    /// The variant's name, as the JS surface exposes it in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "invalidArgument",
            Error::Auth(_) => "auth",
            Error::RateLimited(_) => "rateLimited",
            Error::Rejected(_) => "rejected",
            Error::ServerError(_) => "serverError",
            Error::Network(_) => "network",
            Error::Timeout(_) => "timeout",
            Error::Aborted(_) => "aborted",
            Error::BadResponse(_) => "badResponse",
        }
    }

    fn local(code: &str, method: &str, description: String, argument: Option<&str>) -> Details {
        Details {
            code: code.to_owned(),
            status: 0,
            method: method.to_owned(),
            description,
            argument: argument.map(str::to_owned),
            outcome: Outcome::NotExecuted,
            retryable: false,
            note: Note::None,
            verified: false,
            candidates: Box::default(),
            hint: Hint::NONE,
        }
    }

    /// A validation error raised before any request, with the portal's code and text.
    pub fn argument(method: &str, code: &str, argument: &str, description: String) -> Self {
        Error::InvalidArgument(Self::local(code, method, description, Some(argument)))
    }

    /// `NO_AUTH`: the options held no usable authentication. Nothing was sent.
    pub fn no_auth(method: &str, description: impl Into<String>) -> Self {
        Error::Auth(Self::local(
            codes::NO_AUTH,
            method,
            description.into(),
            None,
        ))
    }

    /// A frame command the parent window would drop silently here: refused at once.
    pub fn denied(command: &str, description: impl Into<String>) -> Self {
        Error::Rejected(Self::local(
            codes::COMMAND_DENIED,
            command,
            description.into(),
            None,
        ))
    }

    /// The portal's answers left nothing to send to: refused here with `code`, nothing
    /// was sent (`NO_ACTIVE_CHAT`, `NOT_A_MEMBER`, ...). `status` is that of the answer
    /// that showed it (0: none).
    pub fn nothing_to_send(method: &str, code: &str, status: u16, description: String) -> Self {
        let mut d = Self::local(code, method, description, None);
        d.status = status;
        Error::Rejected(d)
    }

    /// This error, said of a step before the message: whatever it was, the message was
    /// not sent (the outcome is `notExecuted`, the text says so).
    pub fn before_message(mut self) -> Self {
        let d = self.details_mut();
        if d.outcome != Outcome::NotExecuted || d.note == Note::None {
            d.outcome = Outcome::NotExecuted;
            d.note = Note::MessageNotSent;
        }
        self
    }

    /// This error with what to do about it.
    pub fn with_hint(mut self, hint: Hint) -> Self {
        self.details_mut().hint = hint;
        self
    }

    /// Marks this error as one that may succeed when repeated unchanged.
    pub fn set_retryable(&mut self) {
        self.details_mut().retryable = true;
    }

    /// Marks whether reading the chat established this error's outcome.
    pub fn set_verified(&mut self, verified: bool) {
        self.details_mut().verified = verified;
    }

    /// An unknown outcome that verification could not settle because the chat holds
    /// messages by the same author that this client cannot account for (`ids`).
    pub fn with_candidates(mut self, ids: Vec<u64>) -> Self {
        let d = self.details_mut();
        d.description.push_str(
            "; the chat holds messages by the same sender that this client cannot account for (ids ",
        );
        d.description.push_str(&text::decimal_list(&ids, ", "));
        d.description
            .push_str("), so the message's absence is not proven");
        d.candidates = ids.into_boxed_slice();
        self
    }

    /// An unknown outcome whose request was still running when the call gave up: it may
    /// store its message yet.
    pub fn still_running(mut self) -> Self {
        let d = self.details_mut();
        d.description
            .push_str("; the request was still running on the portal when the call gave up");
        self
    }

    /// The same error for another method (auth errors raised before a method is known).
    pub fn for_method(mut self, method: &str) -> Self {
        method.clone_into(&mut self.details_mut().method);
        self
    }

    /// Classifies the portal's error envelope by its code (authoritative) and status;
    /// [`policy::portal_outcome`](outcome::portal_outcome) says whether it ran.
    pub fn from_portal(
        method: &str,
        status: u16,
        code: String,
        description: String,
        argument: Option<String>,
        write: bool,
    ) -> Self {
        let lower = code.to_ascii_lowercase();
        let outcome = outcome::portal_outcome(&lower, argument.is_some(), status);
        let mut d = Details {
            code,
            status,
            method: method.to_owned(),
            description,
            argument,
            outcome,
            retryable: false,
            note: Note::None,
            verified: false,
            candidates: Box::default(),
            hint: Hint::NONE,
        };
        d.retryable = outcome::retryable(outcome, &lower, write);
        if outcome == Outcome::Unknown && write {
            d.note = Note::MayHaveBeenDelivered;
        }
        d.hint = hint(method, &lower);
        if outcome::is_limit(&lower) {
            Error::RateLimited(d)
        } else if outcome::is_auth(&lower) {
            Error::Auth(d)
        } else if d.argument.is_some() || lower == "error_argument" {
            Error::InvalidArgument(d)
        } else if outcome == Outcome::Unknown {
            Error::ServerError(d)
        } else {
            Error::Rejected(d)
        }
    }

    /// No answer was read: `NETWORK_ERROR`, `TIMEOUT` or `ABORTED`. `sent` says whether
    /// the request had left when it happened; `cause` is the runtime's text (network)
    /// or the timeout in milliseconds.
    pub fn unanswered(method: &str, why: Unanswered, cause: &str, sent: bool, write: bool) -> Self {
        let outcome = if sent && !(why == Unanswered::Network && outcome::refused_connection(cause))
        {
            Outcome::Unknown
        } else {
            Outcome::NotExecuted
        };
        let (code, description) = match why {
            Unanswered::Network => (
                codes::NETWORK_ERROR,
                ["the request failed before an answer was read (", cause, ")"].concat(),
            ),
            Unanswered::Timeout => (codes::TIMEOUT, ["no answer within ", cause, " ms"].concat()),
            Unanswered::Aborted => (
                codes::ABORTED,
                "the call was aborted by its signal".to_owned(),
            ),
        };
        let mut d = Self::local(code, method, description, None);
        d.note = match outcome {
            Outcome::Unknown if write => Note::MayHaveBeenDelivered,
            Outcome::NotExecuted => Note::NotSent,
            _ => Note::None,
        };
        d.outcome = outcome;
        // An abort is the caller's own decision: never "try again".
        d.retryable = why != Unanswered::Aborted && outcome::retryable(outcome, "", write);
        match why {
            Unanswered::Network => Error::Network(d),
            Unanswered::Timeout => Error::Timeout(d),
            Unanswered::Aborted => Error::Aborted(d),
        }
    }

    /// `NETWORK_ERROR` after the request left. For a write the message may have arrived.
    pub fn network(method: &str, cause: &str, write: bool) -> Self {
        Self::unanswered(method, Unanswered::Network, cause, true, write)
    }

    /// `TIMEOUT` after `ms` milliseconds, the request sent. For a write the message may
    /// have arrived.
    pub fn timeout(method: &str, ms: u32, write: bool) -> Self {
        Self::unanswered(
            method,
            Unanswered::Timeout,
            &text::decimal(u64::from(ms)),
            true,
            write,
        )
    }

    /// `ABORTED` after the request left. For a write the message may have arrived.
    pub fn aborted(method: &str, write: bool) -> Self {
        Self::unanswered(method, Unanswered::Aborted, "", true, write)
    }

    /// `BAD_RESPONSE`: the answer was not an envelope. A write may have executed.
    pub fn bad_response(method: &str, status: u16, what: &str, write: bool) -> Self {
        let mut description = String::from("the portal answered HTTP ");
        text::push_decimal(&mut description, u64::from(status));
        description.push_str(" with ");
        description.push_str(what);
        let mut d = Self::local(codes::BAD_RESPONSE, method, description, None);
        if write {
            d.note = Note::MayHaveBeenDelivered;
        }
        d.status = status;
        d.outcome = Outcome::Unknown;
        d.retryable = outcome::retryable(Outcome::Unknown, "", write);
        Error::BadResponse(d)
    }

    /// Replaces every occurrence of each secret in the texts with `***`.
    ///
    /// Applied to every error leaving a client, so that a webhook secret or a token
    /// echoed by a runtime's network error or by a portal never reaches the caller.
    pub fn redacted(mut self, secrets: &[&str]) -> Self {
        let d = self.details_mut();
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            if text::contains(&d.description, s) {
                d.description = text::replace(&d.description, s, "***");
            }
            if let Some(a) = d.argument.as_mut() {
                if text::contains(a, s) {
                    *a = text::replace(a, s, "***");
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_codes_are_classified_by_code_not_status() {
        let e = Error::from_portal(
            "m",
            503,
            "QUERY_LIMIT_EXCEEDED".into(),
            "Too many requests".into(),
            None,
            true,
        );
        assert!(matches!(e, Error::RateLimited(_)));
        assert!(e.details().retryable, "a limit refusal was not executed");

        let e = Error::from_portal("m", 400, "expired_token".into(), "x".into(), None, true);
        assert!(matches!(e, Error::Auth(_)));
        assert!(!e.details().retryable);

        let e = Error::from_portal(
            "m",
            400,
            "ERROR_ARGUMENT".into(),
            "x".into(),
            Some("CHAT_ID".into()),
            true,
        );
        assert!(matches!(e, Error::InvalidArgument(_)));
        assert_eq!(e.details().argument.as_deref(), Some("CHAT_ID"));

        let e = Error::from_portal("m", 403, "ACCESS_DENIED".into(), "x".into(), None, true);
        assert!(matches!(e, Error::Rejected(_)));
        assert_eq!(e.code(), "ACCESS_DENIED");
    }

    #[test]
    fn server_errors_are_retryable_only_for_reads() {
        let w = Error::from_portal(
            "m",
            500,
            "INTERNAL_SERVER_ERROR".into(),
            "".into(),
            None,
            true,
        );
        let r = Error::from_portal(
            "m",
            500,
            "INTERNAL_SERVER_ERROR".into(),
            "".into(),
            None,
            false,
        );
        assert!(!w.details().retryable);
        assert!(r.details().retryable);
        assert_eq!((w.kind(), w.outcome()), ("serverError", Outcome::Unknown));
        assert!(w.to_string().contains("may have been delivered"), "{w}");
        assert!(!r.to_string().contains("delivered"), "{r}");
        let refused = Error::from_portal("m", 403, "ACCESS_DENIED".into(), "".into(), None, true);
        assert_eq!(
            (refused.kind(), refused.outcome()),
            ("rejected", Outcome::Failed)
        );
        let limited = Error::from_portal(
            "m",
            503,
            "QUERY_LIMIT_EXCEEDED".into(),
            "".into(),
            None,
            true,
        );
        assert_eq!(limited.outcome(), Outcome::NotExecuted);
        assert!(!limited.to_string().contains("delivered"));
    }

    #[test]
    fn nothing_sent_is_never_called_possibly_delivered() {
        for why in [
            Unanswered::Network,
            Unanswered::Timeout,
            Unanswered::Aborted,
        ] {
            let e = Error::unanswered("m", why, "x", false, true);
            assert_eq!(e.outcome(), Outcome::NotExecuted, "{e}");
            assert!(!e.to_string().contains("may have been"), "{e}");
            assert!(e.to_string().contains("nothing was sent"), "{e}");
        }
        let e = Error::unanswered(
            "m",
            Unanswered::Network,
            "connect ECONNREFUSED 127.0.0.1:9",
            true,
            true,
        );
        assert_eq!(e.outcome(), Outcome::NotExecuted);
        assert!(e.details().retryable);
        let e = Error::unanswered("m", Unanswered::Aborted, "", true, true);
        assert_eq!(e.outcome(), Outcome::Unknown);
        assert!(!e.details().retryable);
    }

    #[test]
    fn unanswered_writes_say_they_may_have_been_delivered() {
        let e = Error::network("imopenlines.crm.message.add", "fetch failed", true);
        assert_eq!(e.code(), "NETWORK_ERROR");
        assert!(!e.details().retryable);
        assert!(e.to_string().contains("may have been delivered"), "{e}");
        let e = Error::timeout("imopenlines.crm.chat.get", 5, false);
        assert!(e.details().retryable);
        assert!(!e.to_string().contains("delivered"));
        assert!(!Error::aborted("x", false).details().retryable);
    }

    #[test]
    fn display_names_method_code_and_text() {
        let e = Error::from_portal(
            "imopenlines.crm.message.add",
            400,
            "CHAT_NOT_IN_CRM".into(),
            "Chat does not belong to the CRM entity being checked".into(),
            None,
            true,
        );
        assert_eq!(
            e.to_string(),
            "imopenlines.crm.message.add: CHAT_NOT_IN_CRM: Chat does not belong to the CRM entity being checked"
        );
    }

    #[test]
    fn redaction_removes_secrets_from_texts() {
        let e = Error::network(
            "m",
            "connect to https://p/rest/1/s3cr3tvalue/m failed",
            true,
        )
        .redacted(&["s3cr3tvalue", ""]);
        assert!(!e.to_string().contains("s3cr3tvalue"));
        assert!(!format!("{e:?}").contains("s3cr3tvalue"));
        assert!(e.to_string().contains("/rest/1/***/m"));
    }
}
