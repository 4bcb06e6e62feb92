//! The portal in-process and "sans-IO": no sockets, no Tokio, no axum
//! routing, and a clock that moves only when told, so that a deterministic
//! simulation can drive the portal's own request logic on virtual time.
//!
//! [`InProcess::handle`] takes a request as the HTTP server would see it and
//! goes through the same synchronous code as the `/rest/…` endpoint
//! (reading the URL, parameters and credentials, the request-rate limit,
//! method lookup, credentials, the operating-time limit, the handler, the
//! envelope and the request log); [`InProcess::refresh`] goes through the
//! same code as `/oauth/token/`. Scripted faults are never taken (a
//! simulation injects its own), connections are never dropped, nothing is
//! written to stderr, and nothing sleeps or spawns: a request costs
//! microseconds.
//!
//! ```
//! use b24_portal::sim::InProcess;
//! use b24_portal::Config;
//!
//! let portal = InProcess::new(Config::default(), 1_700_000_000.0);
//! let chat = &portal.writable_chats()[0];
//! let body = format!(
//!     "CRM_ENTITY_TYPE={}&CRM_ENTITY={}&USER_ID={}&CHAT_ID={}&MESSAGE=Hello",
//!     chat.crm_entity_type, chat.crm_entity, chat.user_id, chat.chat_id
//! );
//! let url = format!("{}imopenlines.crm.message.add.json", portal.webhook_url());
//! let reply = portal.handle("POST", &url, "application/x-www-form-urlencoded", &body);
//! assert_eq!(reply.status, 200);
//! assert_eq!(portal.messages().len(), 1);
//! portal.set_time(1_700_000_060.0);
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::Value;

use crate::config::Config;
use crate::crm::{self, CrmTarget};
use crate::oauth;
use crate::request::Params;
use crate::rest::{self, Arrival};
use crate::server::count_preflight;
use crate::state::{App, CrmType, Secrets, DEFAULT_USER};

/// Scheme and host of an in-process portal's URLs.
pub const BASE_URL: &str = "https://portal.example";

/// A seeded portal driven by direct calls on a stopped clock.
///
/// It is `Send + Sync`; calls are serialised by the portal's own lock, as
/// concurrent HTTP requests are.
pub struct InProcess {
    app: App,
}

/// What the portal answered to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the answer (empty when the HTTP server sends none,
    /// as for a preflight).
    pub content_type: String,
    /// Body text.
    pub body: String,
}

/// A message `imopenlines.crm.message.add` delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Message id (the method's `result`).
    pub id: u64,
    /// Chat it went to.
    pub chat_id: u64,
    /// Its author, the call's `USER_ID`.
    pub author_id: u64,
    /// `MESSAGE` exactly as the portal received it.
    pub sent: String,
    /// What the messenger stored of it ([`crate::text::store`]); the
    /// history returns this, through [`crate::text::parse`] by default.
    pub stored: String,
}

/// An open-line chat that the webhook user can send to with
/// `imopenlines.crm.message.add`: the parameters of a valid call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritableChat {
    /// `CHAT_ID`.
    pub chat_id: u64,
    /// `CRM_ENTITY_TYPE`: `lead`, `deal`, `contact` or `company`.
    pub crm_entity_type: String,
    /// `CRM_ENTITY`.
    pub crm_entity: u64,
    /// `USER_ID`: a chat member who can read the CRM item, so the message
    /// is accepted.
    pub user_id: u64,
}

impl InProcess {
    /// A portal with the seed data and `config` (history text parsed by
    /// default, as over HTTP), its clock stopped at `start_seconds` (Unix
    /// seconds), advancing only through [`InProcess::set_time`].
    ///
    /// Credentials `config` leaves out are random, as for the HTTP server;
    /// given ones are used as they are. `config.log`, `host`, `port` and
    /// `time_scale` have no effect.
    pub fn new(mut config: Config, start_seconds: f64) -> InProcess {
        config.log = false;
        let secrets = Secrets::from_config(&config);
        let app = App::stopped_at(config, BASE_URL.to_owned(), secrets, start_seconds);
        InProcess { app }
    }

    /// The portal time, Unix seconds.
    pub fn now(&self) -> f64 {
        self.app.lock().clock.now()
    }

    /// Sets the portal clock to `seconds` (Unix seconds, fractional allowed).
    /// The clock never moves backwards: an earlier time leaves it where it is.
    pub fn set_time(&self, seconds: f64) {
        let mut store = self.app.lock();
        if seconds > store.clock.now() {
            store.clock.set(seconds);
        }
    }

    /// One request as the HTTP server would take it: `method` is the HTTP
    /// verb, `url` the full URL the client sent (any scheme and host, e.g.
    /// `https://portal.example/rest/1/SECRET/imopenlines.crm.message.add.json`
    /// or `https://portal.example/rest/batch.json?auth=TOKEN`), `content_type`
    /// the body's `Content-Type` (empty for none; `application/json` bodies
    /// are read as JSON, anything else as a form) and `body` the body.
    ///
    /// The answer (status, content type, body) is what the HTTP path sends,
    /// after the same request-rate limit, the same ledger records and the
    /// same envelope; but no scripted fault is taken. A preflight
    /// (`OPTIONS`) is counted and answered `200` with no body, a path outside
    /// `/rest` is `404`, and a verb or URL the HTTP server could not read is
    /// `400`, as from the server.
    pub fn handle(&self, method: &str, url: &str, content_type: &str, body: &str) -> Reply {
        let (Ok(http_method), Ok(uri)) =
            (Method::from_bytes(method.as_bytes()), url.parse::<Uri>())
        else {
            return Reply {
                status: StatusCode::BAD_REQUEST.as_u16(),
                content_type: String::new(),
                body: String::new(),
            };
        };
        if http_method == Method::OPTIONS {
            count_preflight(&self.app, uri.path());
            return Reply {
                status: StatusCode::OK.as_u16(),
                content_type: String::new(),
                body: String::new(),
            };
        }
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            if !content_type.is_empty() {
                headers.insert(header::CONTENT_TYPE, value);
            }
        }
        let arrival = Arrival {
            http_method: &http_method,
            uri: &uri,
            headers: &headers,
            body: body.as_bytes(),
        };
        let reply = rest::respond(&self.app, &arrival);
        Reply {
            status: reply.status.as_u16(),
            content_type: reply.content_type.to_owned(),
            body: String::from_utf8(reply.body)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// The default webhook, the one the HTTP server prints at start-up:
    /// `https://portal.example/rest/1/SECRET/` (user 1, an administrator).
    pub fn webhook_url(&self) -> String {
        self.app.webhook_url(DEFAULT_USER, &self.app.secrets.secret)
    }

    /// Issues an access token and a refresh token for `user_id`, as the
    /// admin API's `POST /_portal/tokens` does, with the configured scopes;
    /// the access token lives `ttl_seconds` of portal time. Returns
    /// `(access_token, refresh_token, expires_at)`, `expires_at` in Unix
    /// seconds. The user is not checked: a token for an unknown or inactive
    /// user is refused when used.
    pub fn issue_token(&self, user_id: i64, ttl_seconds: f64) -> (String, String, f64) {
        let issued =
            self.app
                .issue_token(user_id, self.app.config.scope.clone(), Some(ttl_seconds));
        (issued.access_token, issued.refresh_token, issued.expires)
    }

    /// Exchanges a refresh token as `/oauth/token/` does for a
    /// `grant_type=refresh_token` request with the portal's client
    /// credentials (the same checks, counters and request log entry). A
    /// refresh token works once. `Ok((access_token, refresh_token,
    /// expires_in))`, the new access token living `expires_in` seconds (the
    /// token TTL setting); `Err` holds the error code, e.g. `invalid_grant`.
    pub fn refresh(&self, refresh_token: &str) -> Result<(String, String, f64), String> {
        let received = Instant::now();
        let at = self.now();
        let secrets = &self.app.secrets;
        let params: Params = [
            ("grant_type", "refresh_token"),
            ("client_id", secrets.client_id.as_str()),
            ("client_secret", secrets.client_secret.as_str()),
            ("refresh_token", refresh_token),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
        let answer = oauth::answer(
            &self.app,
            &Method::POST,
            "/oauth/token/",
            &params,
            received,
            at,
        );
        answer
            .outcome
            .map(|issued| (issued.access_token, issued.refresh_token, issued.ttl))
    }

    /// Every message delivered so far, in id order, with the text as sent
    /// and as stored.
    pub fn messages(&self) -> Vec<StoredMessage> {
        let store = self.app.lock();
        let stored: BTreeMap<i64, &str> = store
            .directory
            .history
            .values()
            .flatten()
            .map(|m| (m.id, m.text.as_str()))
            .collect();
        let mut messages: Vec<StoredMessage> = store
            .ledger
            .messages
            .iter()
            .map(|m| StoredMessage {
                id: unsigned(m.id),
                chat_id: unsigned(m.chat_id),
                author_id: unsigned(m.user_id),
                sent: m.message.clone(),
                stored: stored.get(&m.id).copied().unwrap_or_default().to_owned(),
            })
            .collect();
        messages.sort_by_key(|m| m.id);
        messages
    }

    /// The chats the webhook user can send to with
    /// `imopenlines.crm.message.add` right now, by chat id, each with the
    /// CRM item it is bound to and a member to send as: those whose
    /// session is active on a connected connector. The seed has six:
    /// 8773 (deal 288), 8801 (lead 101), 8802 (contact 201), 8810 and 8811
    /// (deal 290) and 8841 (deal 294), each with user 12.
    pub fn writable_chats(&self) -> Vec<WritableChat> {
        let store = self.app.lock();
        let dir = &store.directory;
        dir.chats
            .values()
            .filter_map(|chat| {
                let (kind, id) = chat.open_line.as_ref()?.crm?;
                let target = CrmTarget {
                    code: code(kind).to_owned(),
                    id,
                };
                if !crm::can_read(dir, DEFAULT_USER, &target)
                    || !crm::chat_belongs(dir, &target, chat.id)
                {
                    return None;
                }
                let user_id = chat
                    .members
                    .iter()
                    .copied()
                    .find(|&member| crm::can_read(dir, member, &target))?;
                Some(WritableChat {
                    chat_id: unsigned(chat.id),
                    crm_entity_type: target.code,
                    crm_entity: unsigned(id),
                    user_id: unsigned(user_id),
                })
            })
            .collect()
    }
}

/// `CRM_ENTITY_TYPE` code of a CRM type, lower-case as clients send it.
fn code(kind: CrmType) -> &'static str {
    match kind {
        CrmType::Lead => "lead",
        CrmType::Deal => "deal",
        CrmType::Contact => "contact",
        CrmType::Company => "company",
    }
}

/// An id as unsigned (ids are positive; anything else becomes 0).
fn unsigned(id: i64) -> u64 {
    u64::try_from(id).unwrap_or_default()
}
