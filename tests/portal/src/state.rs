//! Everything the portal remembers: users, CRM items and chats (the
//! directory), webhooks and tokens, the ledger of delivered messages and
//! requests, counters, scripted faults and operating-time statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::config::Config;
use crate::faults::{FaultKind, FaultQueue};
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

/// CRM item types `CRM_ENTITY_TYPE` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// The session is between "answer" and "wait client" (not finished).
    pub active: bool,
    /// Operator responsible for the session.
    pub operator_id: i64,
    /// The CRM item the dialogue's activity is bound to.
    pub crm: Option<(CrmType, i64)>,
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

/// Webhooks and tokens. Deliberately not `Debug`: it holds secrets.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Webhooks.
    pub webhooks: Vec<Webhook>,
    /// Tokens.
    pub tokens: Vec<AccessToken>,
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

/// One REST request as the portal saw it. Never holds a secret or token.
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
    /// Records a request, assigning its id.
    pub fn record(&mut self, mut record: RequestRecord) -> u64 {
        record.id = self.requests.len() as u64 + 1;
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
        let id = record.id;
        self.requests.push(record);
        id
    }
}

/// Window of the operating-time budget, seconds.
pub const OPERATING_WINDOW: f64 = 600.0;

/// Execution time spent per credential and method over the last ten minutes,
/// reported as `time.operating` and `time.operating_reset_at`.
#[derive(Clone, Debug, Default)]
pub struct Operating {
    spent: HashMap<(String, String), Vec<(f64, f64)>>,
}

impl Operating {
    /// Adds `seconds` spent at `at`; returns the window total and when its
    /// oldest entry drops out.
    pub fn record(&mut self, budget: &str, method: &str, at: f64, seconds: f64) -> (f64, i64) {
        let entries = self
            .spent
            .entry((budget.to_owned(), method.to_owned()))
            .or_default();
        entries.retain(|(when, _)| at - when < OPERATING_WINDOW);
        entries.push((at, seconds));
        let total = entries.iter().map(|(_, s)| s).sum();
        let oldest = entries.first().map_or(at, |(when, _)| *when);
        (total, (oldest + OPERATING_WINDOW).floor() as i64)
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
}

/// The shared state of a running portal.
pub struct App {
    /// Configuration it was started with.
    pub config: Config,
    /// `http://host:port`.
    pub base_url: String,
    /// Secret of the default webhook.
    pub secret: String,
    /// Value of the default token.
    pub token: String,
    store: Mutex<Store>,
}

/// Owner of the default webhook and token.
pub const DEFAULT_USER: i64 = 1;

impl App {
    /// A freshly seeded portal.
    pub fn new(config: Config, base_url: String, secret: String, token: String, now: f64) -> Self {
        let store = Store {
            directory: seed::directory(),
            credentials: Credentials::default(),
            ledger: Ledger::default(),
            faults: FaultQueue::default(),
            operating: Operating::default(),
        };
        let app = Self {
            config,
            base_url,
            secret,
            token,
            store: Mutex::new(store),
        };
        app.reset(now);
        app
    }

    /// Locks the store. A panic elsewhere never makes the portal unusable.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Restores the seed, clears ledger, counters, faults and extra
    /// credentials, and makes the default webhook and token valid again.
    pub fn reset(&self, now: f64) {
        let mut store = self.lock();
        store.directory = seed::directory();
        store.ledger = Ledger::default();
        store.faults = FaultQueue::default();
        store.operating = Operating::default();
        store.credentials = Credentials::default();
        let scope = self.config.scope.clone();
        store
            .credentials
            .add_webhook(DEFAULT_USER, self.secret.clone(), scope.clone());
        store.credentials.add_token(
            self.token.clone(),
            DEFAULT_USER,
            scope,
            now + self.config.token_ttl.as_secs_f64(),
        );
    }

    /// URL of a webhook: `http://host:port/rest/USER/SECRET/`.
    pub fn webhook_url(&self, user_id: i64, secret: &str) -> String {
        format!("{}/rest/{user_id}/{secret}/", self.base_url)
    }
}
