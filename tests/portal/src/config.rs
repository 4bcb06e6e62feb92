//! Portal configuration: everything the command line can change.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Scopes given to the default webhook and token, and to new ones unless a
/// scope list is passed to the admin API.
pub const DEFAULT_SCOPE: [&str; 4] = ["imopenlines", "crm", "im", "user"];

/// The error `imopenlines.crm.message.add` returns when the sender (`USER_ID`)
/// is not a member of the chat.
///
/// The server code raises `MESSAGE_ADD_ERROR` when sending fails, but the im
/// module's application exception replaces it; for a non-member sender that is
/// `CANCELED` (what DOCS-EN lists). DOCS-RU and TRAINING list only
/// `MESSAGE_ADD_ERROR`, so both are selectable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NonMemberCode {
    /// `400 CANCELED` / `You cannot send messages to the specified chat`.
    #[default]
    #[value(name = "CANCELED")]
    Canceled,
    /// `400 MESSAGE_ADD_ERROR` / `Message isn't added`.
    #[value(name = "MESSAGE_ADD_ERROR")]
    MessageAddError,
}

/// What `im.dialog.messages.get` returns as a message's `text` (§12 of the
/// fact sheet).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HistoryText {
    /// The stored text through the messenger's text parser
    /// (`\Bitrix\Im\Text::parse`, see [`crate::text::parse`]): links
    /// become `[URL]` BB-code, entities are decoded, … (current portals).
    #[default]
    Parsed,
    /// The text as stored (see [`crate::text::store`]): portals from before
    /// ~2023 and old on-premise installs.
    Stored,
}

/// How to run a portal. `Config::default()` is what the CLI uses without flags.
/// Its `Debug` output hides the secret and the token.
#[derive(Clone)]
pub struct Config {
    /// Address to bind; loopback unless changed.
    pub host: IpAddr,
    /// Port to bind; `0` picks a free one.
    pub port: u16,
    /// Secret of the default webhook (user 1); random when `None`.
    pub secret: Option<String>,
    /// Value of the default access token (user 1); random when `None`.
    pub token: Option<String>,
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// Emit `time.start` and `time.processing` as floats (older servers)
    /// instead of integers (newest server code).
    pub float_time: bool,
    /// Error for a sender that is not a chat member.
    pub non_member_code: NonMemberCode,
    /// Scopes of the default webhook and token.
    pub scope: Vec<String>,
    /// Write one line per REST request to stderr.
    pub log: bool,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Value of the default refresh token (user 1); random when `None`.
    pub refresh_token: Option<String>,
    /// OAuth `client_id` of the portal's one application; random when `None`.
    pub client_id: Option<String>,
    /// OAuth `client_secret` of that application; random when `None`.
    pub client_secret: Option<String>,
    /// The per-portal request-rate limit (leaky bucket).
    pub rate_limit: RateLimit,
    /// The per-method operating-time limit.
    pub operating_limit: OperatingLimit,
    /// Speed of the portal clock relative to real time (`60.0`: a real
    /// second is a portal minute). The clock drives token expiry, the
    /// leaky bucket, the operating window and every `time` field.
    pub time_scale: f64,
    /// What `im.dialog.messages.get` returns as a message's `text`.
    pub history_text: HistoryText,
}

/// The request-rate limit of §5.1: a counter per portal that each REST
/// request raises by one and that drains continuously; a request that would
/// lift it above `burst` is refused with `503 QUERY_LIMIT_EXCEEDED`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Whether requests are refused at all.
    pub enabled: bool,
    /// Counter value above which requests are refused (`X`; 50, Enterprise 250).
    pub burst: f64,
    /// How much the counter drains per second (`Y`; 2, Enterprise 5).
    pub drain_per_second: f64,
}

impl Default for RateLimit {
    /// Off, with the values of non-Enterprise plans ready for when it is on.
    fn default() -> Self {
        Self {
            enabled: false,
            burst: 50.0,
            drain_per_second: 2.0,
        }
    }
}

/// The operating-time limit of §5.2: execution time per method and per
/// application or webhook, summed over ten one-minute buckets; once the sum
/// exceeds `limit_seconds`, calls of that method get `429 OPERATION_TIME_LIMIT`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatingLimit {
    /// Whether calls are refused at all (`operating` is reported regardless).
    pub enabled: bool,
    /// Seconds of execution per method per ten minutes (480 in the docs).
    pub limit_seconds: f64,
    /// Seconds each call counts instead of its measured execution time, so
    /// a test can reach the limit with a few calls; `None` = measured.
    pub cost_seconds: Option<f64>,
}

impl Default for OperatingLimit {
    /// Off (as on-premise portals ship), with the documented 480 s ready.
    fn default() -> Self {
        Self {
            enabled: false,
            limit_seconds: 480.0,
            cost_seconds: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            secret: None,
            token: None,
            token_ttl: Duration::from_secs(3600),
            float_time: false,
            non_member_code: NonMemberCode::default(),
            scope: DEFAULT_SCOPE.iter().map(|s| (*s).to_owned()).collect(),
            log: false,
            refresh_ttl: Duration::from_secs(180 * 24 * 3600),
            refresh_token: None,
            client_id: None,
            client_secret: None,
            rate_limit: RateLimit::default(),
            operating_limit: OperatingLimit::default(),
            time_scale: 1.0,
            history_text: HistoryText::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &hidden(&self.secret))
            .field("token", &hidden(&self.token))
            .field("token_ttl", &self.token_ttl)
            .field("float_time", &self.float_time)
            .field("non_member_code", &self.non_member_code)
            .field("scope", &self.scope)
            .field("log", &self.log)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("refresh_token", &hidden(&self.refresh_token))
            .field("client_id", &self.client_id)
            .field("client_secret", &hidden(&self.client_secret))
            .field("rate_limit", &self.rate_limit)
            .field("operating_limit", &self.operating_limit)
            .field("time_scale", &self.time_scale)
            .field("history_text", &self.history_text)
            .finish()
    }
}

/// True when `value` can be used as a webhook secret or token: non-empty and
/// made only of URL-safe characters, so it survives a URL path unchanged.
pub fn is_url_safe_credential(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}
