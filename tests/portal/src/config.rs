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
