//! Everything the portal remembers: users, CRM items and chats (the
//! directory), webhooks and tokens, the ledger of delivered messages and
//! requests, counters, scripted faults and operating-time statistics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::config::{Config, HistoryText, OperatingLimit, RateLimit};
use crate::faults::{FaultKind, FaultQueue};
use crate::limits::{Clock, LeakyBucket, Operating};
use crate::seed;

/// A portal user (employee or bot).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// User id.
    pub id: i64,
    /// Login, usable instead of the id in a webhook URL.
    pub login: String,
    /// First name.
    pub name: String,
    /// Last name.
    pub last_name: String,
    /// `M`, `F` or empty.
    pub gender: String,
    /// Portal administrator.
    pub admin: bool,
    /// May read CRM items.
    pub crm_access: bool,
    /// May join open-line chats and see their history.
    pub lines_access: bool,
    /// Account is active.
    pub active: bool,
    /// Is a chat bot.
    pub bot: bool,
}

impl User {
    /// Full name as the messenger writes it: `Name Last name`, trimmed.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.name, self.last_name)
            .trim()
            .to_owned()
    }
}

/// CRM item types `CRM_ENTITY_TYPE` may name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CrmType {
    /// Lead.
    Lead,
    /// Deal.
    Deal,
    /// Contact.
    Contact,
    /// Company.
    Company,
}

impl CrmType {
    /// Resolves a type code case-insensitively (`deal`, `DEAL`, `Deal`).
    pub fn from_code(code: &str) -> Option<Self> {
        match code.to_uppercase().as_str() {
            "LEAD" => Some(Self::Lead),
            "DEAL" => Some(Self::Deal),
            "CONTACT" => Some(Self::Contact),
            "COMPANY" => Some(Self::Company),
            _ => None,
        }
    }
}

/// A CRM item.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmItem {
    /// Type.
    #[serde(rename = "type")]
    pub kind: CrmType,
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
}

/// An open-line (`LINES`) chat: a dialogue with a client through a connector.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenLine {
    /// Open line (configuration) id.
    pub line_id: i64,
    /// Connector id, e.g. `telegrambot`.
    pub connector_id: String,
    /// Connector title, e.g. `Telegram`.
    pub connector_title: String,
    /// Status of the dialogue's session (see [`session`]): queued below 10,
    /// active from 10 to 49, closing at 50, finished from 60.
    pub status: u8,
    /// Whether the line's connector is still connected; a chat of a
    /// disconnected connector is never listed among a CRM item's chats.
    pub connector_active: bool,
    /// Operator responsible for the session (0: nobody took it yet).
    pub operator_id: i64,
    /// The CRM item the dialogue's activity is bound to.
    pub crm: Option<(CrmType, i64)>,
}

/// Session statuses of an open-line dialogue, as the imopenlines module
/// numbers them (`Session::STATUS_*`).
pub mod session {
    /// New: in the queue, nobody took it.
    pub const NEW: u8 = 0;
    /// Skipped by an operator: still in the queue.
    pub const SKIP: u8 = 5;
    /// An operator answered (took) it.
    pub const ANSWER: u8 = 10;
    /// The client wrote last.
    pub const CLIENT: u8 = 20;
    /// The client wrote after the operator.
    pub const CLIENT_AFTER_OPERATOR: u8 = 25;
    /// The operator wrote last.
    pub const OPERATOR: u8 = 40;
    /// Closing: waiting for the client (to rate it, or to write again).
    pub const WAIT_CLIENT: u8 = 50;
    /// Closed.
    pub const CLOSE: u8 = 60;
    /// Closed as spam.
    pub const SPAM: u8 = 65;
    /// Closed as a duplicate.
    pub const DUPLICATE: u8 = 69;
    /// Closed silently (without notifying the client).
    pub const SILENTLY_CLOSE: u8 = 75;

    /// Every status a session can have.
    pub const ALL: [u8; 11] = [
        NEW,
        SKIP,
        ANSWER,
        CLIENT,
        CLIENT_AFTER_OPERATOR,
        OPERATOR,
        WAIT_CLIENT,
        CLOSE,
        SPAM,
        DUPLICATE,
        SILENTLY_CLOSE,
    ];

    /// `Ok` for a status a session can have, else a message naming them.
    pub fn check(status: u8) -> Result<u8, String> {
        if ALL.contains(&status) {
            Ok(status)
        } else {
            Err(format!("unknown session status {status} (one of {ALL:?})"))
        }
    }
}

impl OpenLine {
    /// The session is active: an operator took it (status ≥ 10) and it is
    /// not closing or finished (status < 50).
    pub fn is_active(&self) -> bool {
        (session::ANSWER..session::WAIT_CLIENT).contains(&self.status)
    }

    /// The chat accepts `imopenlines.crm.message.add` (and counts among its
    /// CRM item's chats for `chat.user.add/delete`): the session is active
    /// and the connector connected.
    pub fn accepts(&self) -> bool {
        self.connector_active && self.is_active()
    }
}

/// A chat.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// Chat id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Open-line details; `None` for an ordinary group chat.
    pub open_line: Option<OpenLine>,
    /// Member user ids.
    pub members: BTreeSet<i64>,
    /// Recency rank: a higher value was updated more recently.
    pub updated: u64,
}

/// Users, CRM items and chats.
#[derive(Clone, Debug)]
pub struct Directory {
    /// Users by id.
    pub users: BTreeMap<i64, User>,
    /// CRM items by type and id.
    pub crm: BTreeMap<(CrmType, i64), CrmItem>,
    /// Chats by id.
    pub chats: BTreeMap<i64, Chat>,
    /// Id of the next lead `imopenlines.crm.lead.create` makes.
    pub next_lead_id: i64,
    /// Id of the next delivered message.
    pub next_message_id: i64,
    /// Next recency rank.
    pub next_update: u64,
    /// Each chat's messages, oldest first.
    pub history: BTreeMap<i64, Vec<crate::history::ChatMessage>>,
    /// Id of the last message each member has read, by chat and user.
    pub last_read: BTreeMap<(i64, i64), i64>,
}

impl Directory {
    /// Changes the session of open-line chat `chat_id` (the status and/or
    /// whether its connector is connected) and makes the chat the most
    /// recently updated one, as a real portal orders chats by the session's
    /// last change. An error if there is no such chat or it is not an open
    /// line, or the status is unknown; nothing changes then.
    pub fn set_session(
        &mut self,
        chat_id: i64,
        status: Option<u8>,
        connector_active: Option<bool>,
    ) -> Result<(), String> {
        let status = status.map(session::check).transpose()?;
        let chat = self
            .chats
            .get_mut(&chat_id)
            .ok_or_else(|| format!("no chat {chat_id}"))?;
        let line = chat
            .open_line
            .as_mut()
            .ok_or_else(|| format!("chat {chat_id} is not an open-line chat"))?;
        if let Some(status) = status {
            line.status = status;
        }
        if let Some(connected) = connector_active {
            line.connector_active = connected;
        }
        chat.updated = self.next_update;
        self.next_update += 1;
        Ok(())
    }
}

/// How a caller authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// Inbound webhook URL.
    Webhook,
    /// OAuth access token.
    Token,
}

/// An inbound webhook.
#[derive(Clone)]
pub struct Webhook {
    /// Internal id (the server's password id).
    pub id: u64,
    /// Owner.
    pub user_id: i64,
    /// Secret path segment.
    pub secret: String,
    /// Granted scopes.
    pub scope: Vec<String>,
}

/// An OAuth access token.
#[derive(Clone)]
pub struct AccessToken {
    /// Token value.
    pub value: String,
    /// User the token acts for.
    pub user_id: i64,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Unix time it stops working.
    pub expires_at: f64,
}

/// An OAuth refresh token: single use, it yields a new access token and a
/// new refresh token.
#[derive(Clone)]
pub struct RefreshToken {
    /// Token value.
    pub value: String,
    /// User the tokens act for.
    pub user_id: i64,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Unix time it stops working.
    pub expires_at: f64,
    /// Already exchanged.
    pub used: bool,
}

/// Webhooks and tokens. Deliberately not `Debug`: it holds secrets.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Webhooks.
    pub webhooks: Vec<Webhook>,
    /// Tokens.
    pub tokens: Vec<AccessToken>,
    /// Refresh tokens.
    pub refresh_tokens: Vec<RefreshToken>,
    next_webhook_id: u64,
}

impl Credentials {
    /// Registers a webhook.
    pub fn add_webhook(&mut self, user_id: i64, secret: String, scope: Vec<String>) {
        self.next_webhook_id += 1;
        self.webhooks.push(Webhook {
            id: self.next_webhook_id,
            user_id,
            secret,
            scope,
        });
    }

    /// Registers a token.
    pub fn add_token(&mut self, value: String, user_id: i64, scope: Vec<String>, expires_at: f64) {
        self.tokens.retain(|t| t.value != value);
        self.tokens.push(AccessToken {
            value,
            user_id,
            scope,
            expires_at,
        });
    }

    /// Registers a refresh token.
    pub fn add_refresh_token(
        &mut self,
        value: String,
        user_id: i64,
        scope: Vec<String>,
        expires_at: f64,
    ) {
        self.refresh_tokens.retain(|t| t.value != value);
        self.refresh_tokens.push(RefreshToken {
            value,
            user_id,
            scope,
            expires_at,
            used: false,
        });
    }
}

/// A message delivered by `imopenlines.crm.message.add`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    /// Message id returned to the caller.
    pub id: i64,
    /// Chat it went to.
    pub chat_id: i64,
    /// Sender (`USER_ID`).
    pub user_id: i64,
    /// `CRM_ENTITY_TYPE` as sent.
    pub crm_entity_type: String,
    /// `CRM_ENTITY`.
    pub crm_entity: i64,
    /// `MESSAGE`.
    pub message: String,
    /// User the webhook or token belongs to.
    pub caller_user_id: i64,
    /// How the caller authenticated.
    pub auth: AuthKind,
    /// When, ISO-8601.
    pub at: String,
}

/// One REST request, or one exchange at the OAuth token endpoint, as the
/// portal saw it. Never holds a secret or token.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Sequence number from 1.
    pub id: u64,
    /// When it arrived, ISO-8601.
    pub at: String,
    /// HTTP verb.
    pub http_method: String,
    /// URL path with the webhook secret replaced by `***` (no query string).
    pub path: String,
    /// REST method, lower-cased, without `.json`.
    pub method: String,
    /// Names of the parameters the method received (reserved ones removed).
    pub param_names: Vec<String>,
    /// HTTP status the portal computed.
    pub status: u16,
    /// Error code, or `null` on success.
    pub error: Option<String>,
    /// Credentials presented: `webhook`, `token` or `none`.
    pub auth: &'static str,
    /// Authenticated user, if any.
    pub user_id: Option<i64>,
    /// Fault consumed, if any.
    pub fault: Option<FaultKind>,
    /// Time spent, milliseconds.
    pub duration_ms: f64,
    /// `grant_type` as sent (`""` when missing), for an OAuth token request
    /// only; absent from REST records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
}

/// A count, in total and by lower-cased method.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// All of them.
    pub total: u64,
    /// By lower-cased method.
    pub by_method: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one for `method`.
    pub fn add(&mut self, method: &str) {
        self.total += 1;
        *self.by_method.entry(method.to_owned()).or_default() += 1;
    }
}

/// Request counters.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// All REST requests.
    pub total: u64,
    /// By lower-cased method.
    pub by_method: BTreeMap<String, u64>,
    /// By HTTP status.
    pub by_status: BTreeMap<String, u64>,
    /// Requests refused with `503 QUERY_LIMIT_EXCEEDED` by the leaky bucket.
    pub query_limit_exceeded: Tally,
    /// Calls refused with `429 OPERATION_TIME_LIMIT`, batch commands included.
    pub operation_time_limit: Tally,
    /// Commands run inside `batch` calls.
    pub batch_commands: Tally,
    /// Successful refresh-token exchanges at `/oauth/token/`.
    pub refreshes: u64,
    /// Refused exchanges at `/oauth/token/`.
    pub refresh_errors: u64,
    /// CORS preflights (`OPTIONS`) a browser sent before REST calls.
    pub preflights: u64,
}

/// Messages, requests and counters.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Delivered messages, in order.
    pub messages: Vec<MessageRecord>,
    /// REST requests, in order.
    pub requests: Vec<RequestRecord>,
    /// Counters.
    pub counters: Counters,
}

impl Ledger {
    /// Records a REST request, counting it, and assigns its id.
    pub fn record(&mut self, record: RequestRecord) -> u64 {
        self.counters.total += 1;
        *self
            .counters
            .by_method
            .entry(record.method.clone())
            .or_default() += 1;
        *self
            .counters
            .by_status
            .entry(record.status.to_string())
            .or_default() += 1;
        self.log(record)
    }

    /// Adds a record to the request log without counting it (OAuth token
    /// requests, counted in `refreshes` / `refreshErrors` instead) and
    /// assigns its id.
    pub fn log(&mut self, mut record: RequestRecord) -> u64 {
        record.id = self.requests.len() as u64 + 1;
        let id = record.id;
        self.requests.push(record);
        id
    }
}

/// All mutable portal state, behind one lock.
pub struct Store {
    /// Users, CRM items and chats.
    pub directory: Directory,
    /// Webhooks and tokens.
    pub credentials: Credentials,
    /// Messages, requests and counters.
    pub ledger: Ledger,
    /// Scripted faults.
    pub faults: FaultQueue,
    /// Operating-time statistics.
    pub operating: Operating,
    /// The leaky bucket of the request-rate limit.
    pub bucket: LeakyBucket,
    /// Settings the admin API can change.
    pub settings: Settings,
    /// The portal clock.
    pub clock: Clock,
    /// App frames opened by the parent page, and what the page did with messages.
    pub frames: crate::parent::Frames,
}

/// A token pair just issued.
pub struct Issued {
    /// The access token.
    pub access_token: String,
    /// Its refresh token.
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    pub ttl: f64,
    /// Expiry of the access token (portal clock, Unix seconds).
    pub expires: f64,
}

/// Settings that start from the [`Config`] and can change at run time.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Request-rate limit.
    pub rate_limit: RateLimit,
    /// Operating-time limit.
    pub operating_limit: OperatingLimit,
    /// Lifetime of new access tokens, seconds.
    pub token_ttl_seconds: f64,
    /// Lifetime of new refresh tokens, seconds.
    pub refresh_ttl_seconds: f64,
    /// What `im.dialog.messages.get` returns as a message's `text`.
    pub history_text: HistoryText,
}

impl Settings {
    /// The settings a portal starts with.
    pub fn from_config(config: &Config) -> Self {
        Self {
            rate_limit: config.rate_limit,
            operating_limit: config.operating_limit,
            token_ttl_seconds: config.token_ttl.as_secs_f64(),
            refresh_ttl_seconds: config.refresh_ttl.as_secs_f64(),
            history_text: config.history_text,
        }
    }
}

/// The shared state of a running portal.
pub struct App {
    /// Configuration it was started with.
    pub config: Config,
    /// `http://host:port`.
    pub base_url: String,
    /// The default webhook secret, token pair and OAuth application.
    pub secrets: Secrets,
    /// Where a stopped clock starts (after every reset too); `None` for
    /// the real-time clock of `config.time_scale`.
    stopped_at: Option<f64>,
    store: Mutex<Store>,
}

/// Credentials a portal is created with.
pub struct Secrets {
    /// Secret of the default webhook.
    pub secret: String,
    /// Default access token.
    pub token: String,
    /// Default refresh token.
    pub refresh_token: String,
    /// OAuth `client_id`.
    pub client_id: String,
    /// OAuth `client_secret`.
    pub client_secret: String,
    /// `member_id`.
    pub member_id: String,
}

impl Secrets {
    /// The credentials `config` gives, random ones for those it leaves out.
    /// Given values are used as they are (`serve` checks them first).
    pub fn from_config(config: &Config) -> Self {
        let given_or_random = |value: &Option<String>, bytes| {
            value
                .clone()
                .unwrap_or_else(|| crate::auth::random_credential(bytes))
        };
        Self {
            secret: given_or_random(&config.secret, 16),
            token: given_or_random(&config.token, 24),
            refresh_token: given_or_random(&config.refresh_token, 24),
            client_id: config
                .client_id
                .clone()
                .unwrap_or_else(|| format!("local.{}", crate::auth::random_credential(8))),
            client_secret: given_or_random(&config.client_secret, 20),
            member_id: crate::auth::random_credential(16),
        }
    }
}

/// Owner of the default webhook and token.
pub const DEFAULT_USER: i64 = 1;

impl App {
    /// A freshly seeded portal.
    pub fn new(config: Config, base_url: String, secrets: Secrets) -> Self {
        Self::with_clock(config, base_url, secrets, None)
    }

    /// A freshly seeded portal whose clock stands still at `unix` and moves
    /// only when set, also after a reset (see [`Clock::stopped`]).
    pub fn stopped_at(config: Config, base_url: String, secrets: Secrets, unix: f64) -> Self {
        Self::with_clock(config, base_url, secrets, Some(unix))
    }

    fn with_clock(
        config: Config,
        base_url: String,
        secrets: Secrets,
        stopped_at: Option<f64>,
    ) -> Self {
        let store = Store {
            directory: seed::directory(),
            credentials: Credentials::default(),
            ledger: Ledger::default(),
            faults: FaultQueue::default(),
            operating: Operating::default(),
            bucket: LeakyBucket::default(),
            settings: Settings::from_config(&config),
            clock: Clock::new(config.time_scale),
            frames: crate::parent::Frames::default(),
        };
        let app = Self {
            config,
            base_url,
            secrets,
            stopped_at,
            store: Mutex::new(store),
        };
        app.reset();
        app
    }

    /// Locks the store. A panic elsewhere never makes the portal unusable.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The clock a portal starts with: real time at `config.time_scale`, or
    /// stopped at the time given to [`App::stopped_at`].
    fn fresh_clock(&self) -> Clock {
        match self.stopped_at {
            Some(unix) => Clock::stopped(unix),
            None => Clock::new(self.config.time_scale),
        }
    }

    /// Restores the seed, the start-up settings and the start-up clock;
    /// clears ledger, counters, faults, limits and extra credentials; and
    /// makes the default webhook, token and refresh token valid again.
    pub fn reset(&self) {
        let mut store = self.lock();
        store.directory = seed::directory();
        store.ledger = Ledger::default();
        store.faults = FaultQueue::default();
        store.operating = Operating::default();
        store.bucket = LeakyBucket::default();
        store.settings = Settings::from_config(&self.config);
        store.clock = self.fresh_clock();
        store.frames = crate::parent::Frames::default();
        store.credentials = Credentials::default();
        let now = store.clock.now();
        let settings = store.settings;
        let scope = self.config.scope.clone();
        let credentials = &mut store.credentials;
        credentials.add_webhook(DEFAULT_USER, self.secrets.secret.clone(), scope.clone());
        credentials.add_token(
            self.secrets.token.clone(),
            DEFAULT_USER,
            scope.clone(),
            now + settings.token_ttl_seconds,
        );
        credentials.add_refresh_token(
            self.secrets.refresh_token.clone(),
            DEFAULT_USER,
            scope,
            now + settings.refresh_ttl_seconds,
        );
    }

    /// Issues an access token and a refresh token for `user_id`, the access token
    /// living `ttl` seconds (default: the token TTL setting).
    pub fn issue_token(&self, user_id: i64, scope: Vec<String>, ttl: Option<f64>) -> Issued {
        let access_token = crate::auth::random_credential(24);
        let refresh_token = crate::auth::random_credential(24);
        let mut store = self.lock();
        let settings = store.settings;
        let ttl = ttl.unwrap_or(settings.token_ttl_seconds);
        let now = store.clock.now();
        let expires = now + ttl;
        let credentials = &mut store.credentials;
        credentials.add_token(access_token.clone(), user_id, scope.clone(), expires);
        credentials.add_refresh_token(
            refresh_token.clone(),
            user_id,
            scope,
            now + settings.refresh_ttl_seconds,
        );
        Issued {
            access_token,
            refresh_token,
            ttl,
            expires,
        }
    }

    /// URL of a webhook: `http://host:port/rest/USER/SECRET/`.
    pub fn webhook_url(&self, user_id: i64, secret: &str) -> String {
        format!("{}/rest/{user_id}/{secret}/", self.base_url)
    }
}
