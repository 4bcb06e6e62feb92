//! The life of every call as a state machine that does no I/O and reads no clock.
//!
//! One [`Machine`] per client holds the auth (and its token generations), the one
//! refresh in progress, the limiter, the operating budgets, this client's outbox and
//! the calls in flight ("ops", by [`OpId`]). The host (the JS driver, or a simulation
//! in the native tests) feeds it inputs, each with the current time in milliseconds
//! of one monotonic clock, and carries out the actions it returns:
//!
//! ```text
//!   start(call, now) ─┐                         ┌─ Send { req, url, body }
//!   handle(input, now)├─▶ Machine ─▶ actions ──▶├─ Cancel { req }
//!   current(token)   ─┘      │                  ├─ AskToken
//!                            │                  ├─ Report / Progress (hooks)
//!                            └─ poll_timeout()  └─ Done { op, result }
//! ```
//!
//! Rules the host keeps: drain every action after every input before the next input;
//! answer every `Send` exactly once (a response or why there was none); arm one wake
//! timer at [`Machine::poll_timeout`] and feed [`Input::Tick`] when it fires (a tick
//! too early or too late is harmless: the machine compares times, it never trusts the
//! timer). Inputs that name a request or call that has ended are ignored.
//!
//! A call is a program ([`Program`]) of one or more exchanges ([`exchange`]): an
//! exchange is one logical REST call with its waits (limiter, backoff), its shared
//! refresh and its limit retries, exactly as [`crate::policy`] decides. Programs:
//! a single call, a verified message ([`verify`]), a batch run ([`batch`]) and a mass
//! send ([`mass`]).

mod batch;
mod exchange;
mod mass;
mod to_item;
mod to_items;
mod verify;

use std::collections::VecDeque;

pub use batch::BatchRun;
use exchange::{Exchange, Poll};
pub use mass::MassSend;
pub use to_item::{refusals, Delivered, ItemSend};
pub use to_items::ItemsSend;
pub use verify::VerifySend;

use crate::auth::{self, Auth, Token};
use crate::envelope::{HttpResponse, Success};
use crate::error::{codes, Details, Error, Hint, Outcome};
use crate::json::Json;
use crate::limiter::{Limiter, Limits};
use crate::outbox::Outbox;
use crate::params::{self, Decoded, Prepared};
use crate::policy::Retry;

/// Milliseconds on the host's one monotonic clock.
pub type Ms = f64;

/// A call of a machine.
pub type OpId = u32;

/// A request of a machine, answered exactly once.
pub type ReqId = u32;

/// Where a token comes from when the portal refuses the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// None: a webhook, or a token without a refresh function.
    None,
    /// The caller's refresh function: its value is read by [`auth::token_from_refresh`].
    Refresh,
    /// The parent window's `refreshAuth`: read by [`auth::token_from_frame`].
    Frame,
    /// BX24.js: `refreshAuth`, then `getAuth()`, read by [`auth::token_from_bx24`].
    Bx24,
}

impl Source {
    fn what(self) -> &'static str {
        match self {
            Source::Refresh => "the refresh function",
            Source::Frame => "refreshAuth",
            _ => "BX24.refreshAuth",
        }
    }

    /// The token in a source's answer, or why there is none.
    fn read(self, value: &Json, now: Ms) -> Result<Token, String> {
        if let Some(refusal) = auth::oauth_refusal(value).filter(|_| self == Source::Refresh) {
            return Err(refusal);
        }
        let token = match self {
            Source::Refresh => auth::token_from_refresh(value, now).ok_or(
                "the refresh function must resolve to a token string, {accessToken} or the OAuth server's answer {access_token, refresh_token, expires_in}",
            ),
            Source::Frame => {
                auth::token_from_frame(value, now).ok_or("refreshAuth gave no AUTH_ID")
            }
            _ => auth::token_from_bx24(value)
                .map(|(t, _)| t)
                .ok_or("BX24.refreshAuth gave no access token"),
        }
        .map_err(str::to_owned)?;
        if crate::text::trim(&token.access_token).is_empty() {
            return Err("the refresh function returned no access token".to_owned());
        }
        Ok(token)
    }
}

/// A client's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The portal and the credentials.
    pub auth: Auth,
    /// Where a new token comes from.
    pub source: Source,
    /// When the first token expires.
    pub expires_at: Option<Ms>,
    /// The portal's request-rate limit to pace to (`None`: off).
    pub limits: Option<Limits>,
    /// How limit refusals are retried.
    pub retry: Retry,
    /// How long a token source may take.
    pub refresh_ms: u32,
    /// Whether every exchange is reported ([`Action::Report`]).
    pub observe: bool,
    /// Whether the tokens live in a token store shared with other clients (see
    /// [`Action::Store`]): a refresh then reads it first and refreshes under its lock.
    pub store: bool,
    /// The refresh token given with the first access token.
    pub refresh_token: Option<String>,
}

impl Config {
    /// A client of `auth` with the defaults: no refresh, standard limits and retries,
    /// 10 s for a refresh, no reports.
    pub fn new(auth: Auth) -> Config {
        Config {
            auth,
            source: Source::None,
            expires_at: None,
            limits: Some(Limits::STANDARD),
            retry: Retry::DEFAULT,
            refresh_ms: 10_000,
            observe: false,
            store: false,
            refresh_token: None,
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// The network failed (the runtime's text comes with it).
    Network,
    /// The request was cancelled on the machine's [`Action::Cancel`].
    Cancelled,
}

/// What a token source gave.
#[derive(Debug, Clone)]
pub enum TokenAnswer {
    /// Its value (a refresh function's resolved value, a frame's answer, `getAuth()`).
    Value(Json),
    /// It threw (the text of what it threw).
    Threw(String),
    /// It rejected (the text of the reason).
    Rejected(String),
}

/// What a token store did.
#[derive(Debug, Clone)]
pub enum StoreAnswer {
    /// `get()` resolved: the tokens it holds (`null` when none).
    Value(Json),
    /// `lock()` is held: the machine releases it with [`StoreOp::Unlock`].
    Locked,
    /// `set()` resolved: whether it wrote.
    Saved(bool),
    /// It threw or rejected (the text of the reason).
    Failed(String),
}

/// What the host does with the token store.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// `get()`; answer with [`StoreAnswer::Value`].
    Get,
    /// `lock(name, fn)`; answer [`StoreAnswer::Locked`] from inside `fn`, and keep `fn`
    /// pending until [`StoreOp::Unlock`].
    Lock,
    /// `set(next, previous)` (JSON texts of tokens); answer [`StoreAnswer::Saved`].
    Set {
        /// The new tokens.
        next: String,
        /// What the store held when they were asked for.
        previous: String,
    },
    /// Let the lock's `fn` resolve: the lock is released. No answer.
    Unlock,
}

/// Something that happened, for the machine to decide on.
#[derive(Debug)]
pub enum Input {
    /// The answer to a request: its status, body text and content type.
    Response {
        /// The request.
        req: ReqId,
        /// The HTTP status (0 when unknown).
        status: u16,
        /// The whole body.
        body: String,
        /// The `Content-Type` header.
        content_type: String,
    },
    /// A request ended without an answer. `sent`: it had been handed to the network.
    NoResponse {
        /// The request.
        req: ReqId,
        /// Why.
        why: NoAnswer,
        /// Whether it had left.
        sent: bool,
        /// The runtime's text.
        cause: String,
    },
    /// The token source answered [`Action::AskToken`] number `ask`.
    Token {
        /// The request for a token this answers.
        ask: u32,
        /// What the source gave.
        answer: TokenAnswer,
    },
    /// The token store answered [`Action::Store`] number `ask`.
    Store {
        /// The request for a token this belongs to.
        ask: u32,
        /// What the store did.
        answer: StoreAnswer,
    },
    /// The caller's signal fired for this call.
    Abort(OpId),
    /// The wake timer fired.
    Tick,
}

/// One exchange as `onRequest` reports it: no parameter value, no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The REST method (`batch` for a batch).
    pub method: String,
    /// The HTTP status, or 0 when no answer was read.
    pub status: u16,
    /// The error code, or empty on success.
    pub code: String,
    /// Milliseconds from sending to the answer (or the failure).
    pub duration_ms: f64,
    /// 1 for the first attempt of the call, 2 for its first repeat...
    pub attempt: u32,
    /// Milliseconds this attempt waited before it was sent.
    pub waited_ms: f64,
}

/// Counts of a mass send, as `onProgress` reports them.
pub use crate::batch::Progress;

/// What a call resolves to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The result's JSON text (typed calls, `call`, `callPage`, verified sends).
    Text(String),
    /// One entry per batch command, in order.
    Batch(Vec<crate::batch::Item<Json>>),
    /// One entry per message of a mass send: the id (and whether reading the chat
    /// established it) or the error.
    Mass(Vec<Result<(u64, bool), Error>>),
    /// A message to a CRM item: where it went, as whom.
    Item(Box<Delivered>),
    /// One entry per message to a CRM item, in order.
    Items(Vec<Result<Delivered, Error>>),
}

/// What the host does next.
#[derive(Debug)]
pub enum Action {
    /// Send this request (POST, form body) and answer it with `Response` or
    /// `NoResponse`.
    Send {
        /// The request's id.
        req: ReqId,
        /// The call it belongs to.
        op: OpId,
        /// The URL.
        url: String,
        /// The form body.
        body: String,
    },
    /// Abort this request now; answer it with `NoResponse { why: Cancelled }`.
    Cancel {
        /// The request.
        req: ReqId,
    },
    /// Ask the token source for a new token; answer with `Input::Token` and the same
    /// `ask` (an answer to an earlier ask, which timed out, is ignored).
    AskToken {
        /// This request for a token.
        ask: u32,
        /// The tokens the source is asked to replace (`{accessToken, refreshToken?,
        /// expiresAt?}` as JSON; a refresh function receives them).
        current: String,
    },
    /// Do this with the token store, for request for a token `ask`.
    Store {
        /// The request for a token.
        ask: u32,
        /// What to do.
        op: StoreOp,
    },
    /// Report an exchange (`onRequest`).
    Report(Report),
    /// A mass send's counts (`onProgress`).
    Progress {
        /// The call.
        op: OpId,
        /// The counts.
        counts: Progress,
    },
    /// The call ended.
    Done {
        /// The call.
        op: OpId,
        /// Its result, every error redacted.
        result: Result<Answer, Error>,
    },
}

/// How long each request of a call may take, and what its errors say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// The call's timeout in milliseconds.
    pub timeout_ms: u32,
    /// Whether the timeout bounds the whole call (single calls, batch) or each request
    /// afresh (verified and mass sends).
    pub whole: bool,
}

/// A call to start.
#[derive(Debug)]
pub enum Call {
    /// One validated call; its result decoded as the prepared call says.
    Single(Prepared),
    /// A message with verified delivery: watermark, send, settle by reading the chat.
    Verified {
        /// The message.
        prepared: Prepared,
        /// The settle window.
        settle_ms: u32,
    },
    /// Batch commands.
    Batch {
        /// The commands.
        commands: Vec<crate::batch::Command>,
        /// Stop at the first failed command.
        halt: bool,
    },
    /// A message to a CRM item's customer: sender and chat found, the sender joined.
    ToItem {
        /// What to send to which item.
        to: crate::params::ToItem,
        /// Add the sender to the chat when the portal says it is not a member.
        join: bool,
        /// Remove a sender this call added once the message is sent.
        leave: bool,
        /// The settle window of verified delivery, if on.
        settle_ms: Option<u32>,
    },
    /// Many messages to CRM items.
    ToItems {
        /// Each item, validated or its error.
        items: Vec<Result<crate::params::ToItem, Error>>,
        /// Add senders to chats.
        join: bool,
        /// Stop at the first failed message.
        halt: bool,
        /// The settle window of verified delivery, if on.
        settle_ms: Option<u32>,
    },
    /// Many messages.
    Mass {
        /// Each item, validated or its error.
        items: Vec<Result<Prepared, Error>>,
        /// Stop at the first failed message.
        halt: bool,
        /// The settle window of verified delivery, if on.
        settle_ms: Option<u32>,
    },
}

/// A program's next move.
#[derive(Debug)]
pub(crate) enum Step {
    /// Run this exchange; `watch_ms` extends the request's own deadline (a verified
    /// message is watched past its timeout, not aborted).
    Call(Prepared, u32),
    /// Wake the program at this time.
    Wait(Ms),
    /// The call ended.
    Done(Result<Answer, Error>),
}

/// What an exchange gave its program.
pub(crate) type Outcome2 = Result<Success<Json>, Error>;

/// A running call.
#[derive(Debug)]
enum Program {
    Single(Prepared),
    Verified(Box<VerifySend>),
    Batch(BatchRun),
    Mass(Box<MassSend>),
    ToItem(Box<ItemSend>),
    ToItems(Box<ItemsSend>),
}

#[derive(Debug)]
struct Op {
    program: Program,
    bounds: Bounds,
    /// When a whole-call timeout passes.
    deadline: Ms,
    aborted: bool,
    exchange: Option<Exchange>,
    /// A program's own wait (settle windows).
    wait: Option<Ms>,
}

/// The one refresh of a client.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refresh {
    Idle,
    Asked { until: Ms, ask: u32, step: Acquire },
}

/// Where a request for a token is. Without a store it is `Token` throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acquire {
    /// Reading the store: another client may have refreshed already.
    Read,
    /// Waiting for the store's lock.
    Lock,
    /// Reading the store again, holding the lock.
    Reread,
    /// The token source (the refresh function) was asked.
    Token,
    /// Saving the new tokens (compare and set), holding the lock.
    Save,
    /// The refresh was refused: reading the store once more, holding the lock.
    Recheck,
}

impl Acquire {
    /// Whether the store's lock is held at this step (with a store).
    fn locked(self) -> bool {
        matches!(
            self,
            Acquire::Reread | Acquire::Token | Acquire::Save | Acquire::Recheck
        )
    }
}

/// Everything of a client but its calls: what programs and exchanges share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) auth: Auth,
    source: Source,
    pub(crate) generation: u64,
    expires_at: Option<Ms>,
    old_secrets: Vec<String>,
    refreshes: u64,
    refresh: Refresh,
    /// Requests for a token so far.
    asks: u32,
    refresh_ms: u32,
    /// A refresh that just failed, for the waiters of its generation.
    failed: Option<(u64, String)>,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) retry: Retry,
    resets: Vec<(String, f64)>,
    rng: u64,
    pub(crate) outbox: Outbox,
    /// A token store holds the tokens.
    store: bool,
    /// The current refresh token, when known.
    refresh_token: Option<String>,
    /// New tokens being saved.
    saving: Option<Token>,
    /// What the store held when this refresh began (`refresh(current)` gets it).
    stored: Option<Token>,
    /// The refusal of the refresh being rechecked.
    refusal: Option<String>,
    /// The token generation last taken from the store rather than refreshed here.
    pub(crate) adopted: Option<u64>,
    /// The current user (`user.current`), once read.
    pub(crate) current_user: Option<u64>,
    observe: bool,
    /// The request being stopped by the machine, whose report waits for the host.
    pub(crate) holding: Option<ReqId>,
    /// Reports of cancelled requests, until the host says whether they had left: a
    /// request cancelled before the host sent it was never an exchange.
    pub(crate) held: Vec<(ReqId, Report)>,
    /// During [`Machine::abort_unsent`]: requests the host has not sent yet.
    pub(crate) unsent: Vec<ReqId>,
    next_req: ReqId,
    pub(crate) out: VecDeque<Action>,
}

impl Shared {
    fn install(&mut self, token: Token) {
        if let Auth::Token { access_token, .. } = &mut self.auth {
            let old = std::mem::replace(
                access_token,
                crate::text::trim(&token.access_token).to_owned(),
            );
            self.old_secrets.push(old);
            if self.old_secrets.len() > 4 {
                self.old_secrets.remove(0);
            }
        }
        self.expires_at = token.expires_at_ms;
        if let Some(r) = token.refresh_token {
            if let Some(old) = self.refresh_token.replace(r) {
                self.old_secrets.push(old);
            }
        }
        self.generation += 1;
    }

    /// The current tokens, as a refresh function or a store gets them.
    fn current_token(&self) -> Token {
        Token {
            access_token: self.auth.secret().to_owned(),
            expires_at_ms: self.expires_at,
            refresh_token: self.refresh_token.clone(),
        }
    }

    fn store_op(&mut self, ask: u32, op: StoreOp) {
        self.out.push_back(Action::Store { ask, op });
    }

    pub(crate) fn can_refresh(&self) -> bool {
        self.source != Source::None && matches!(self.auth, Auth::Token { .. })
    }

    pub(crate) fn refresh_due(&self, now: Ms) -> bool {
        self.can_refresh() && crate::policy::expired(self.expires_at, now)
    }

    /// Asks for a token unless a refresh is under way.
    pub(crate) fn ask_token(&mut self, now: Ms) {
        if self.refresh == Refresh::Idle {
            self.asks = self.asks.wrapping_add(1);
            let ask = self.asks;
            let step = if self.store {
                Acquire::Read
            } else {
                Acquire::Token
            };
            self.refresh = Refresh::Asked {
                until: now + f64::from(self.refresh_ms),
                ask,
                step,
            };
            if self.store {
                self.store_op(ask, StoreOp::Get);
            } else {
                let current = crate::auth::store_json(Some(&self.current_token()));
                self.out.push_back(Action::AskToken { ask, current });
            }
        }
    }

    /// Why the refresh of generation `seen` failed, if it just did.
    pub(crate) fn refresh_failed(&self, seen: u64) -> Option<&str> {
        match &self.failed {
            Some((g, cause)) if *g == seen => Some(cause),
            _ => None,
        }
    }

    pub(crate) fn random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn reset_in_ms(&self, method: &str) -> Option<f64> {
        self.resets
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))
            .map(|(_, ms)| *ms)
    }

    /// Keeps what the portal said about `method`'s operating budget.
    pub(crate) fn note_time(&mut self, method: &str, success: &Success<Json>) {
        let Some(time) = success.time() else { return };
        let (Some(reset), Some(finish)) = (time.operating_reset_at, time.finish) else {
            return;
        };
        let ms = ((reset - finish) * 1000.0).max(0.0);
        if let Some(known) = self
            .resets
            .iter_mut()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))
        {
            known.1 = ms;
            return;
        }
        if self.resets.len() >= 16 {
            self.resets.remove(0);
        }
        self.resets.push((method.to_owned(), ms));
    }

    pub(crate) fn report(&mut self, report: impl FnOnce() -> Report) {
        if !self.observe {
            return;
        }
        match self.holding {
            Some(req) => self.held.push((req, report())),
            None => self.out.push_back(Action::Report(report())),
        }
    }

    /// The host answered cancelled request `req`: its report is made if it had left.
    fn release_report(&mut self, req: ReqId, sent: bool) {
        if let Some(i) = self.held.iter().position(|(r, _)| *r == req) {
            let (_, report) = self.held.swap_remove(i);
            if sent {
                self.out.push_back(Action::Report(report));
            }
        }
    }

    pub(crate) fn new_req(&mut self) -> ReqId {
        self.next_req = self.next_req.wrapping_add(1);
        self.next_req
    }

    /// A call's error as the caller gets it: secrets replaced, and for a token the
    /// portal refused that this client cannot refresh, what to do.
    fn finish(&self, e: Error) -> Error {
        let e = self.redact(e);
        let code = e.code();
        let refused = code == codes::EXPIRED_TOKEN || code == codes::INVALID_TOKEN;
        if code == codes::NETWORK_ERROR && e.details().hint == Hint::NONE {
            if let Auth::Token { endpoint, .. } = &self.auth {
                let host = crate::text::before_byte(endpoint.get(8..).unwrap_or(""), b'/');
                let local = ["127.", "localhost", "[::1]"]
                    .iter()
                    .any(|h| host.starts_with(h));
                if endpoint.starts_with("https://") && local {
                    return e.with_hint(Hint::LOCAL_HTTP);
                }
            }
        }
        if refused && !self.can_refresh() && matches!(self.auth, Auth::Token { .. }) {
            return e.with_hint(Hint::REFRESH);
        }
        e
    }

    /// Replaces the current and earlier secrets in `e`'s texts.
    pub(crate) fn redact(&self, e: Error) -> Error {
        let mut secrets: Vec<&str> = vec![self.auth.secret()];
        secrets.extend(self.old_secrets.iter().map(String::as_str));
        secrets.extend(self.refresh_token.as_deref());
        e.redacted(&secrets)
    }
}

/// A client's decisions. See the module documentation.
#[derive(Debug)]
pub struct Machine {
    shared: Shared,
    ops: Vec<Option<Op>>,
    /// The op of each request in flight, by request id.
    reqs: Vec<(ReqId, OpId)>,
}

impl Machine {
    /// A client of `config`, made at `now`.
    pub fn new(config: Config, now: Ms) -> Machine {
        Machine {
            shared: Shared {
                auth: config.auth,
                source: config.source,
                generation: 0,
                expires_at: config.expires_at,
                old_secrets: Vec::new(),
                refreshes: 0,
                refresh: Refresh::Idle,
                asks: 0,
                refresh_ms: config.refresh_ms,
                failed: None,
                limiter: config.limits.map(Limiter::new),
                retry: config.retry,
                resets: Vec::new(),
                rng: now.to_bits() | 1,
                outbox: Outbox::default(),
                current_user: None,
                store: config.store,
                refresh_token: config.refresh_token,
                saving: None,
                stored: None,
                refusal: None,
                adopted: None,
                observe: config.observe,
                holding: None,
                held: Vec::new(),
                unsent: Vec::new(),
                next_req: 0,
                out: VecDeque::new(),
            },
            ops: Vec::new(),
            reqs: Vec::new(),
        }
    }

    /// The portal's origin (no secret in it).
    pub fn origin(&self) -> &str {
        self.shared.auth.origin()
    }

    /// How many token refreshes this client has completed.
    pub fn refreshes(&self) -> u64 {
        self.shared.refreshes
    }

    /// How many calls are running.
    pub fn running(&self) -> usize {
        self.ops.iter().flatten().count()
    }

    /// Replaces secrets in `e` (for errors made outside the machine).
    pub fn redact(&self, e: Error) -> Error {
        self.shared.redact(e)
    }

    /// Sets when the current token expires (a frame's `AUTH_EXPIRES`).
    pub fn expire_at(&mut self, at: Option<Ms>) {
        self.shared.expires_at = at;
    }

    /// The token source's current token (BX24.js: `getAuth()` before every input):
    /// adopted when it changed; `None` (it has none) makes the next attempt refresh.
    pub fn current(&mut self, token: Option<Token>) {
        let s = &mut self.shared;
        match token {
            None => s.expires_at = Some(0.0),
            Some(token) => {
                if s.auth.secret() != token.access_token {
                    s.install(token);
                } else {
                    s.expires_at = token.expires_at_ms;
                }
            }
        }
    }

    /// Starts `call` bounded by `bounds` (and aborted already when the caller's signal
    /// has fired). Returns its id; its actions are queued.
    pub fn start(&mut self, call: Call, bounds: Bounds, aborted: bool, now: Ms) -> OpId {
        // Each call's start time stirs the jitter, so that clients made at the same
        // moment (or with no clock at hand) do not back off in step.
        self.shared.rng = (self.shared.rng ^ now.to_bits()).rotate_left(17) | 1;
        let program = match call {
            Call::Single(p) => Program::Single(p),
            Call::Verified {
                prepared,
                settle_ms,
            } => Program::Verified(Box::new(VerifySend::single(prepared, settle_ms))),
            Call::Batch { commands, halt } => Program::Batch(BatchRun::new(commands, halt)),
            Call::Mass {
                items,
                halt,
                settle_ms,
            } => Program::Mass(Box::new(MassSend::new(items, halt, settle_ms))),
            Call::ToItem {
                to,
                join,
                leave,
                settle_ms,
            } => Program::ToItem(Box::new(ItemSend::new(to, join, leave, settle_ms))),
            Call::ToItems {
                items,
                join,
                halt,
                settle_ms,
            } => Program::ToItems(Box::new(ItemsSend::new(items, join, halt, settle_ms))),
        };
        let op = Op {
            program,
            bounds,
            deadline: now + f64::from(bounds.timeout_ms),
            aborted,
            exchange: None,
            wait: None,
        };
        let id = match self.ops.iter().position(Option::is_none) {
            Some(free) => {
                if let Some(slot) = self.ops.get_mut(free) {
                    *slot = Some(op);
                }
                free
            }
            None => {
                self.ops.push(Some(op));
                self.ops.len() - 1
            }
        } as OpId;
        self.begin(id, now);
        id
    }

    /// Takes in an input at `now`.
    pub fn handle(&mut self, input: Input, now: Ms) {
        match input {
            Input::Response {
                req,
                status,
                body,
                content_type,
            } => {
                self.shared.release_report(req, true);
                let Some(op) = self.take_req(req) else { return };
                let body = crate::envelope::Body::read(body, || Some(content_type));
                self.answer(op, req, Ok(HttpResponse { status, body }), now);
            }
            Input::NoResponse {
                req,
                why,
                sent,
                cause,
            } => {
                self.shared.release_report(req, sent);
                let Some(op) = self.take_req(req) else { return };
                // A cancelled request was the machine's own doing: it ended there.
                if why == NoAnswer::Network {
                    self.answer(op, req, Err((cause, sent)), now);
                }
            }
            Input::Token { ask, answer } => self.token(ask, answer, now),
            Input::Store { ask, answer } => self.stored(ask, answer, now),
            Input::Abort(op) => self.abort(op, now),
            Input::Tick => self.tick(now),
        }
    }

    /// The caller's signal fired for call `op` ([`Input::Abort`]); `unsent`: requests
    /// the host was asked to send and has not handed to the network yet (a hook that
    /// aborts runs before them), which are stopped as never sent.
    pub fn abort_unsent(&mut self, op: OpId, unsent: &[ReqId], now: Ms) {
        self.shared.unsent = unsent.to_vec();
        self.handle(Input::Abort(op), now);
        self.shared.unsent.clear();
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.shared.out.pop_front()
    }

    /// When the machine wants a [`Input::Tick`]: the earliest wait, deadline or
    /// refresh bound of anything running.
    pub fn poll_timeout(&self) -> Option<Ms> {
        let mut at: Option<Ms> = None;
        let mut earliest = |t: Ms| at = Some(at.map_or(t, |a: Ms| a.min(t)));
        if let Refresh::Asked { until, .. } = self.shared.refresh {
            earliest(until);
        }
        for op in self.ops.iter().flatten() {
            if let Some(ex) = &op.exchange {
                earliest(ex.wake());
            }
            if let Some(w) = op.wait {
                earliest(w);
            }
        }
        at
    }

    fn take_req(&mut self, req: ReqId) -> Option<OpId> {
        let i = self.reqs.iter().position(|(r, _)| *r == req)?;
        Some(self.reqs.swap_remove(i).1)
    }

    /// Runs a new call's program to its first wait.
    fn begin(&mut self, id: OpId, now: Ms) {
        let Some(op) = op_mut(&mut self.ops, id) else {
            return;
        };
        let step = match &mut op.program {
            Program::Single(p) => Step::Call(p.clone(), 0),
            Program::Verified(v) => v.begin(&mut self.shared, now),
            Program::Batch(b) => b.begin(),
            Program::Mass(m) => m.begin(&mut self.shared, id, now),
            Program::ToItem(t) => t.begin(&self.shared),
            Program::ToItems(t) => t.begin(&mut self.shared, id, now),
        };
        self.step(id, step, now);
    }

    /// Carries out a program's step, and the steps that follow at once.
    fn step(&mut self, id: OpId, mut step: Step, now: Ms) {
        loop {
            let Some(op) = self.ops.get_mut(id as usize).and_then(Option::as_mut) else {
                return;
            };
            match step {
                Step::Done(result) => {
                    let shared = &self.shared;
                    let result = match result {
                        Ok(Answer::Batch(items)) => Ok(Answer::Batch(
                            items
                                .into_iter()
                                .map(|i| match i {
                                    crate::batch::Item::Failed(e) => {
                                        crate::batch::Item::Failed(shared.finish(e))
                                    }
                                    done => done,
                                })
                                .collect(),
                        )),
                        Ok(Answer::Item(mut d)) => {
                            d.left = d.left.map(|l| l.map_err(|e| shared.finish(e)));
                            Ok(Answer::Item(d))
                        }
                        Ok(Answer::Items(entries)) => Ok(Answer::Items(
                            entries
                                .into_iter()
                                .map(|e| e.map_err(|e| shared.finish(e)))
                                .collect(),
                        )),
                        Ok(Answer::Mass(entries)) => Ok(Answer::Mass(
                            entries
                                .into_iter()
                                .map(|e| e.map_err(|e| shared.finish(e)))
                                .collect(),
                        )),
                        other => other.map_err(|e| shared.finish(e)),
                    };
                    self.shared.out.push_back(Action::Done { op: id, result });
                    if let Some(slot) = self.ops.get_mut(id as usize) {
                        *slot = None;
                    }
                    return;
                }
                Step::Wait(until) => {
                    op.wait = Some(until);
                    if op.aborted {
                        op.wait = None;
                        step = program_wake(&mut op.program, &mut self.shared, id, false, now);
                        continue;
                    }
                    return;
                }
                Step::Call(prepared, watch_ms) => {
                    let (deadline, timeout_ms) = if op.bounds.whole {
                        (op.deadline, op.bounds.timeout_ms)
                    } else {
                        let ms = op.bounds.timeout_ms.saturating_add(watch_ms);
                        (now + f64::from(ms), ms)
                    };
                    op.exchange = Some(Exchange::new(id, prepared, deadline, timeout_ms, now));
                }
            }
            match self.drive(id, now) {
                Some(next) => step = next,
                None => return,
            }
        }
    }

    /// Moves the exchange of call `id` on; the program's next step when it ended.
    fn drive(&mut self, id: OpId, now: Ms) -> Option<Step> {
        let op = self.ops.get_mut(id as usize).and_then(Option::as_mut)?;
        let ex = op.exchange.as_mut()?;
        match ex.poll(&mut self.shared, op.aborted, now) {
            Poll::Pending => None,
            Poll::Sent(req) => {
                self.reqs.push((req, id));
                None
            }
            Poll::Ended(outcome) => {
                op.exchange = None;
                Some(program_outcome(
                    &mut op.program,
                    &mut self.shared,
                    id,
                    outcome,
                    now,
                ))
            }
        }
    }

    fn answer(
        &mut self,
        id: OpId,
        req: ReqId,
        answer: Result<HttpResponse<Json>, (String, bool)>,
        now: Ms,
    ) {
        let Some(op) = op_mut(&mut self.ops, id) else {
            return;
        };
        let Some(ex) = op.exchange.as_mut() else {
            return;
        };
        let answer = answer.map_err(|(cause, sent)| ex.network_error(&cause, sent));
        if !ex.settle(&mut self.shared, req, answer, now) {
            return;
        }
        if let Some(step) = self.drive(id, now) {
            self.step(id, step, now);
        }
    }

    fn abort(&mut self, id: OpId, now: Ms) {
        let Some(op) = op_mut(&mut self.ops, id) else {
            return;
        };
        if op.aborted {
            return;
        }
        op.aborted = true;
        if let Some(req) = op.exchange.as_ref().and_then(Exchange::in_flight) {
            self.shared.out.push_back(Action::Cancel { req });
            self.reqs.retain(|(r, _)| *r != req);
            if let Some(ex) = op_mut(&mut self.ops, id).and_then(|op| op.exchange.as_mut()) {
                ex.stop_in_flight(&mut self.shared, false, now);
            }
        }
        self.wake_op(id, now);
    }

    /// Moves call `id` on after time passed or something it waits for changed.
    fn wake_op(&mut self, id: OpId, now: Ms) {
        let Some(op) = op_mut(&mut self.ops, id) else {
            return;
        };
        if let Some(until) = op.wait {
            if op.aborted || now >= until {
                let on_time = !op.aborted;
                op.wait = None;
                let step = program_wake(&mut op.program, &mut self.shared, id, on_time, now);
                self.step(id, step, now);
            }
            return;
        }
        if op.exchange.is_some() {
            // A request in flight past its deadline is cancelled: it is stopped here
            // and its late answer ignored.
            if let Some(req) = op.exchange.as_ref().and_then(|ex| ex.overdue(now)) {
                self.shared.out.push_back(Action::Cancel { req });
                self.reqs.retain(|(r, _)| *r != req);
                if let Some(ex) = op_mut(&mut self.ops, id).and_then(|op| op.exchange.as_mut()) {
                    ex.stop_in_flight(&mut self.shared, true, now);
                }
            }
            if let Some(step) = self.drive(id, now) {
                self.step(id, step, now);
            }
        }
    }

    fn each_op(&mut self, now: Ms) {
        for id in 0..self.ops.len() {
            self.wake_op(id as OpId, now);
        }
    }

    fn tick(&mut self, now: Ms) {
        if let Refresh::Asked { until, ask, step } = self.shared.refresh {
            if now >= until {
                let s = &self.shared;
                let how = if s.source == Source::Bx24 {
                    "did not call back"
                } else {
                    "did not settle"
                };
                let what = if step == Acquire::Token {
                    s.source.what()
                } else {
                    "the token store"
                };
                let cause = [
                    what,
                    " ",
                    how,
                    " within ",
                    &crate::text::decimal(u64::from(s.refresh_ms)),
                    " ms",
                ]
                .concat();
                self.release(ask, step);
                self.refresh_done(Err(cause), now);
            }
        }
        self.each_op(now);
    }

    /// Releases the store's lock if `step` holds it.
    fn release(&mut self, ask: u32, step: Acquire) {
        if self.shared.store && step.locked() {
            self.shared.store_op(ask, StoreOp::Unlock);
        }
    }

    fn set_step(&mut self, next: Acquire) {
        if let Refresh::Asked { step, .. } = &mut self.shared.refresh {
            *step = next;
        }
    }

    /// The token store answered: the next step of the request for a token (see
    /// [`Acquire`]). An answer to a request that ended is ignored, but a lock it got
    /// is released at once.
    fn stored(&mut self, ask: u32, answer: StoreAnswer, now: Ms) {
        let step = match self.shared.refresh {
            Refresh::Asked {
                ask: current, step, ..
            } if current == ask => step,
            _ => {
                if matches!(answer, StoreAnswer::Locked) {
                    self.shared.store_op(ask, StoreOp::Unlock);
                }
                return;
            }
        };
        match (step, answer) {
            (Acquire::Read | Acquire::Reread | Acquire::Recheck, StoreAnswer::Value(v)) => {
                let held = auth::token_from_store(&v);
                // Another client refreshed already: its tokens, without a refresh.
                let newer = held.as_ref().filter(|t| {
                    t.access_token != self.shared.auth.secret()
                        && !crate::policy::expired(t.expires_at_ms, now)
                });
                if let Some(t) = newer.cloned() {
                    self.release(ask, step);
                    self.adopt(t, now);
                    return;
                }
                match step {
                    Acquire::Read => {
                        self.set_step(Acquire::Lock);
                        self.shared.store_op(ask, StoreOp::Lock);
                    }
                    Acquire::Reread => {
                        self.set_step(Acquire::Token);
                        let current = match &held {
                            Some(t) => auth::store_json(Some(t)),
                            None => auth::store_json(Some(&self.shared.current_token())),
                        };
                        self.shared.stored = held;
                        self.shared.out.push_back(Action::AskToken { ask, current });
                    }
                    _ => {
                        self.release(ask, step);
                        let cause = self.shared.refusal.take().unwrap_or_default();
                        self.refresh_done(Err(cause), now);
                    }
                }
            }
            (Acquire::Lock, StoreAnswer::Locked) => {
                self.set_step(Acquire::Reread);
                self.shared.store_op(ask, StoreOp::Get);
            }
            (Acquire::Save, StoreAnswer::Saved(_)) => {
                // Written; or the store holds tokens another client saved meanwhile,
                // which are kept: this client uses the ones the portal just gave it.
                self.release(ask, step);
                match self.shared.saving.take() {
                    Some(t) => self.refresh_done(Ok(t), now),
                    None => self.refresh_done(Err("no tokens to save".to_owned()), now),
                }
            }
            (Acquire::Save, StoreAnswer::Failed(e)) => {
                self.release(ask, step);
                let saving = self.shared.saving.take();
                let cause = [
                    "the token store could not save the new tokens (",
                    &e,
                    "); this client keeps them for its next calls",
                ]
                .concat();
                self.refresh_done(Err(cause), now);
                // Never lose a refresh token: the portal has rotated the old one.
                if let Some(t) = saving {
                    self.shared.install(t);
                }
            }
            (_, StoreAnswer::Failed(e)) => {
                self.release(ask, step);
                let what = if step == Acquire::Lock { "lock" } else { "get" };
                let cause = ["the token store's ", what, " failed: ", &e].concat();
                self.refresh_done(Err(cause), now);
            }
            // An answer that does not fit the step changes nothing.
            _ => {}
        }
    }

    /// Tokens another client refreshed, taken from the store (not a refresh here).
    fn adopt(&mut self, token: Token, now: Ms) {
        self.shared.refresh = Refresh::Idle;
        self.shared.install(token);
        self.shared.adopted = Some(self.shared.generation);
        self.each_op(now);
    }

    fn token(&mut self, ask: u32, answer: TokenAnswer, now: Ms) {
        if !matches!(self.shared.refresh, Refresh::Asked { ask: current, step: Acquire::Token, .. } if current == ask)
        {
            return; // late: that refresh already timed out
        }
        let what = self.shared.source.what();
        let token = match answer {
            TokenAnswer::Value(v) => self.shared.source.read(&v, now),
            TokenAnswer::Threw(e) => Err([what, " threw: ", &e].concat()),
            TokenAnswer::Rejected(e) => Err(if self.shared.source == Source::Bx24 {
                e
            } else {
                [what, " rejected: ", &e].concat()
            }),
        };
        if !self.shared.store {
            self.refresh_done(token, now);
            return;
        }
        match token {
            Ok(mut t) => {
                // An answer without a new refresh token keeps the one it replaced.
                let previous = self.shared.stored.take();
                if t.refresh_token.is_none() {
                    t.refresh_token = previous
                        .as_ref()
                        .and_then(|p| p.refresh_token.clone())
                        .or_else(|| self.shared.refresh_token.clone());
                }
                let next = auth::store_json(Some(&t));
                let prev = auth::store_json(previous.as_ref());
                self.shared.saving = Some(t);
                self.set_step(Acquire::Save);
                self.shared.store_op(
                    ask,
                    StoreOp::Set {
                        next,
                        previous: prev,
                    },
                );
            }
            Err(cause) => {
                // Refused (a concurrent refresh may have rotated the token): the
                // store once more before failing.
                self.shared.refusal = Some(cause);
                self.set_step(Acquire::Recheck);
                self.shared.store_op(ask, StoreOp::Get);
            }
        }
    }

    fn refresh_done(&mut self, token: Result<Token, String>, now: Ms) {
        self.shared.refresh = Refresh::Idle;
        match token {
            Ok(token) => {
                self.shared.install(token);
                self.shared.refreshes += 1;
                self.each_op(now);
            }
            Err(cause) => {
                self.shared.failed = Some((self.shared.generation, cause));
                self.each_op(now);
                self.shared.failed = None;
            }
        }
    }
}

fn op_mut(ops: &mut [Option<Op>], id: OpId) -> Option<&mut Op> {
    ops.get_mut(id as usize).and_then(Option::as_mut)
}

/// A program's next step after its exchange ended.
fn program_outcome(
    program: &mut Program,
    shared: &mut Shared,
    id: OpId,
    outcome: Outcome2,
    now: Ms,
) -> Step {
    match program {
        Program::Single(p) => Step::Done(
            outcome
                .and_then(|success| params::answer_text(p, success))
                .map(Answer::Text),
        ),
        Program::Verified(v) => v.on_outcome(shared, outcome, now),
        Program::Batch(b) => b.on_outcome(outcome, &mut |_, _| {}),
        Program::Mass(m) => m.on_outcome(shared, id, outcome, now),
        Program::ToItem(t) => t.on_outcome(shared, outcome, now),
        Program::ToItems(t) => t.on_outcome(shared, id, outcome, now),
    }
}

/// A program's next step when its own wait ended (`on_time`) or was cut short by the
/// caller's signal.
fn program_wake(
    program: &mut Program,
    shared: &mut Shared,
    id: OpId,
    on_time: bool,
    now: Ms,
) -> Step {
    match program {
        Program::Verified(v) => v.on_wake(shared, on_time, now),
        Program::Mass(m) => m.on_wake(shared, id, on_time, now),
        Program::ToItem(t) => t.on_wake(on_time),
        Program::ToItems(t) => t.on_wake(shared, id, on_time, now),
        // Single calls and batches never wait on their own.
        _ => Step::Done(Err(Error::no_auth("call", "nothing to wait for"))),
    }
}

/// The id a message call's success carries, if it is one.
pub(crate) fn id_of(prepared: &Prepared, success: &Success<Json>) -> Option<u64> {
    match params::decode(prepared, success.status, success.result.clone()) {
        Ok(Decoded::Number(id)) => Some(id),
        _ => None,
    }
}

/// The call's error for a refresh that failed: the portal's refusal with the cause,
/// or, for a token that expired before sending, `expired_token` (nothing was sent).
pub(crate) fn refresh_error(prepared: &Prepared, refusal: Option<&Error>, cause: &str) -> Error {
    match refusal {
        Some(error) => {
            let d = error.details();
            Error::Auth(Details {
                description: [
                    &d.description,
                    "; refreshing the access token failed: ",
                    cause,
                ]
                .concat(),
                ..d.clone()
            })
        }
        None => Error::Auth(Details {
            code: codes::EXPIRED_TOKEN.to_owned(),
            status: 0,
            method: prepared.method.clone(),
            description: [
                "the access token expired and refreshing it failed: ",
                cause,
                "; nothing was sent",
            ]
            .concat(),
            argument: None,
            outcome: Outcome::NotExecuted,
            retryable: false,
            note: crate::error::Note::None,
            verified: false,
            candidates: Box::default(),
            hint: crate::error::Hint::NONE,
        }),
    }
}

#[cfg(test)]
mod tests;
