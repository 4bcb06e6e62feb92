//! A deterministic simulation: the client's state machine ([`b24_openlines::machine`])
//! against the local portal's own request logic in-process, on a virtual clock, with
//! seeded faults, latencies, token expiries, aborts and concurrent calls.
//!
//! A seed fixes everything. On every schedule the invariants below are checked; a
//! failing seed is printed with its trace. `SIM_SEEDS` (default 300) and `SIM_FIRST`
//! choose the range; `scripts/sim.sh` runs millions.
//!
//! Invariants:
//! - every call ends, exactly once, and a call bounded as a whole ends by its bound;
//! - nothing is sent for a call after its deadline or its abort;
//! - one token request at a time, however many calls wait;
//! - a message is stored at most once (a write of unknown outcome is never sent again
//!   except after verified delivery proved it absent);
//! - an id a call resolves to is the stored id of its own message; an error that says
//!   "not executed" or "failed" means its message was not stored;
//! - the limiter never makes the portal (with no other client) answer 503;
//! - a request answered after its call ended changes nothing.
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::result_large_err
)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use b24_openlines::auth::{Auth, Webhook};
use b24_openlines::error::Outcome;
use b24_openlines::json::Json;
use b24_openlines::machine::{
    Action, Answer, Bounds, Call, Config, Input, Machine, NoAnswer, OpId, ReqId, Source,
    TokenAnswer,
};
use b24_openlines::params;
use b24_portal::sim::InProcess;
use serde_json::json;

/// The portal's clock at the simulation's time 0 (Unix seconds).
const EPOCH: f64 = 1_700_000_000.0;

/// xorshift64*: the one source of randomness of a schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn ms(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Answered normally.
    None,
    /// The connection is refused: nothing reaches the portal.
    Refused,
    /// The portal stores, the connection drops before the answer.
    LostAfter,
    /// The portal stores, a gateway answers 502 with an HTML page.
    Gateway,
    /// The portal answers late (after any deadline of the call).
    Slow,
}

#[derive(Debug)]
enum Event {
    Start(usize),
    /// A request reaches the portal.
    Arrive(ReqId),
    /// Its answer (or failure) reaches the client.
    Answer(ReqId, Input),
    Token(u32, TokenAnswer),
    Abort(usize),
    Tick,
}

#[derive(Debug, Clone)]
struct Planned {
    at: f64,
    abort_at: Option<f64>,
}

#[derive(Debug, Clone)]
enum Kind {
    Single(String),
    Verified(String),
    Mass(Vec<String>, bool),
    /// A message to a CRM item (chat and sender found by the machine); verified or not.
    ToItem(String, bool),
    /// Messages to CRM items, in batches; verified or not.
    ToItems(Vec<String>, bool),
}

struct Request {
    url: String,
    body: String,
    fault: Fault,
    cancelled: bool,
}

struct CallState {
    op: Option<OpId>,
    kind: Kind,
    started: f64,
    bounds: Bounds,
    aborted_at: Option<f64>,
    result: Option<Result<Answer, b24_openlines::Error>>,
    ended_at: f64,
}

struct World {
    seed: u64,
    rng: Rng,
    now: f64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    machine: Machine,
    portal: InProcess,
    chats: Vec<(u64, String, u64, u64)>,
    calls: Vec<CallState>,
    requests: HashMap<ReqId, Request>,
    op_of_req: HashMap<ReqId, OpId>,
    refresh_token: Option<String>,
    /// Token requests not answered yet: their id and when they were made.
    asked: Vec<(u32, f64)>,
    refresh_ms: f64,
    wake: Option<f64>,
    trace: Vec<String>,
    token_auth: bool,
    injected_limits: u32,
    steps: u32,
}

fn time_key(t: f64) -> u64 {
    (t * 1000.0).round().max(0.0) as u64
}

impl World {
    fn at(&mut self, t: f64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((time_key(t), self.seq)));
        self.events.insert(self.seq, e);
    }

    fn fail(&self, why: &str) -> ! {
        let tail: Vec<&String> = self.trace.iter().rev().take(60).collect();
        let tail: Vec<&&String> = tail.iter().rev().collect();
        panic!(
            "seed {}: {why}\ntrace (last {} of {}):\n{}",
            self.seed,
            tail.len(),
            self.trace.len(),
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    fn message(&self, text: &str) -> params::Prepared {
        let chat = &self.chats[(text.len() + self.seed as usize) % self.chats.len()];
        params::message_add(&json!({"crmEntityType": chat.1, "crmEntity": chat.2, "userId": chat.3, "chatId": chat.0, "message": text}))
            .expect("valid")
    }

    fn start(&mut self, i: usize) {
        let kind = self.calls[i].kind.clone();
        let timeout_ms = 300 + self.rng.below(2_000) as u32;
        let (call, whole) = match &kind {
            Kind::Single(text) => (Call::Single(self.message(text)), true),
            Kind::Verified(text) => (
                Call::Verified {
                    prepared: self.message(text),
                    settle_ms: 50 + self.rng.below(800) as u32,
                },
                false,
            ),
            Kind::Mass(texts, verify) => (
                Call::Mass {
                    items: texts.iter().map(|t| Ok(self.message(t))).collect(),
                    halt: self.rng.chance(20),
                    settle_ms: verify.then(|| 50 + self.rng.below(800) as u32),
                },
                false,
            ),
            Kind::ToItem(text, verify) => {
                let chat = &self.chats[(text.len() + self.seed as usize) % self.chats.len()];
                let to = params::to_item(
                    &json!({"crmEntityType": chat.1, "crmEntity": chat.2, "message": text}),
                )
                .expect("valid");
                let settle_ms = verify.then(|| 50 + self.rng.below(800) as u32);
                let call = Call::ToItem {
                    to,
                    join: self.rng.chance(80),
                    leave: self.rng.chance(30),
                    settle_ms,
                };
                (call, settle_ms.is_none())
            }
            Kind::ToItems(texts, verify) => {
                let items = texts
                    .iter()
                    .map(|text| {
                        let chat =
                            &self.chats[(text.len() + self.seed as usize) % self.chats.len()];
                        params::to_item(
                            &json!({"crmEntityType": chat.1, "crmEntity": chat.2, "message": text}),
                        )
                    })
                    .collect();
                let call = Call::ToItems {
                    items,
                    join: self.rng.chance(80),
                    halt: self.rng.chance(20),
                    settle_ms: verify.then(|| 50 + self.rng.below(800) as u32),
                };
                (call, false)
            }
        };
        let bounds = Bounds { timeout_ms, whole };
        let aborted = self.calls[i].aborted_at.is_some();
        let op = self.machine.start(call, bounds, aborted, self.now);
        self.trace.push(format!(
            "{:.1} start call {i} as op {op}: {kind:?} {bounds:?}",
            self.now
        ));
        self.calls[i].op = Some(op);
        self.calls[i].started = self.now;
        self.calls[i].bounds = bounds;
        self.drain();
    }

    fn call_of(&self, op: OpId) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.op == Some(op) && c.result.is_none())
    }

    /// Carries out every action, as the JS driver does; then re-arms the wake timer.
    fn drain(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Store { .. } => self.fail("a store action, and this client has no store"),
                Action::Send { req, op, url, body } => {
                    let Some(i) = self.call_of(op) else {
                        self.fail(&format!("a request for op {op}, which has ended"));
                    };
                    let c = &self.calls[i];
                    if c.bounds.whole && self.now > c.started + f64::from(c.bounds.timeout_ms) {
                        self.fail(&format!("call {i} sent after its deadline"));
                    }
                    if c.aborted_at.is_some_and(|a| self.now >= a) {
                        self.fail(&format!("call {i} sent after its abort"));
                    }
                    let r = self.rng.below(100);
                    let fault = match r {
                        0..=59 => Fault::None,
                        60..=66 => Fault::Refused,
                        67..=74 => Fault::LostAfter,
                        75..=81 => Fault::Gateway,
                        82..=89 => Fault::Slow,
                        _ => Fault::None,
                    };
                    let method = url.rsplit('/').next().unwrap_or("").to_owned();
                    self.trace.push(format!(
                        "{:.1} send req {req} op {op} {method} {fault:?}",
                        self.now
                    ));
                    self.requests.insert(
                        req,
                        Request {
                            url,
                            body,
                            fault,
                            cancelled: false,
                        },
                    );
                    self.op_of_req.insert(req, op);
                    let latency = self.rng.ms(1.0, 120.0);
                    if fault == Fault::Refused {
                        let input = Input::NoResponse {
                            req,
                            why: NoAnswer::Network,
                            sent: true,
                            cause: "connect ECONNREFUSED 127.0.0.1:443".to_owned(),
                        };
                        self.at(self.now + latency, Event::Answer(req, input));
                    } else {
                        self.at(self.now + latency, Event::Arrive(req));
                    }
                }
                Action::Cancel { req } => {
                    self.trace.push(format!("{:.1} cancel req {req}", self.now));
                    if let Some(r) = self.requests.get_mut(&req) {
                        r.cancelled = true;
                    }
                    // fetch rejects with an AbortError at once.
                    let input = Input::NoResponse {
                        req,
                        why: NoAnswer::Cancelled,
                        sent: true,
                        cause: "aborted".to_owned(),
                    };
                    self.at(self.now, Event::Answer(req, input));
                }
                Action::AskToken { ask, .. } => {
                    // A refresh that timed out no longer counts as one in progress.
                    let pending = self
                        .asked
                        .iter()
                        .any(|(_, t)| self.now < t + self.refresh_ms);
                    if pending {
                        self.fail("a second token request while one is pending");
                    }
                    self.asked.push((ask, self.now));
                    self.trace.push(format!("{:.1} ask token", self.now));
                    let delay = self.rng.ms(5.0, 405.0);
                    let answer = if self.rng.chance(10) {
                        TokenAnswer::Rejected("the OAuth server is down".to_owned())
                    } else {
                        // Exchanged when the answer is produced (below), single use.
                        TokenAnswer::Value(Json::null())
                    };
                    self.at(self.now + delay, Event::Token(ask, answer));
                }
                Action::Report(_) | Action::Progress { .. } => {}
                Action::Done { op, result } => {
                    let Some(i) = self.call_of(op) else {
                        self.fail(&format!("op {op} ended twice"));
                    };
                    self.trace.push(format!(
                        "{:.1} done call {i}: {}",
                        self.now,
                        match &result {
                            Ok(a) => format!("{a:?}").chars().take(120).collect(),
                            Err(e) => format!("{} {:?}", e.code(), e.outcome()),
                        }
                    ));
                    let c = &mut self.calls[i];
                    c.ended_at = self.now;
                    c.result = Some(result);
                    if c.bounds.whole {
                        let bound = c.started + f64::from(c.bounds.timeout_ms) + 2.0;
                        if self.now > bound {
                            self.fail(&format!("call {i} ended after its bound"));
                        }
                    }
                }
            }
        }
        // One wake timer: rounded up plus 1 ms, as the driver arms it, and now and
        // then fired early, as real timers are.
        if let Some(at) = self.machine.poll_timeout() {
            if self.wake != Some(at) {
                self.wake = Some(at);
                let mut fire = (at.max(self.now)).ceil() + 1.0;
                if self.rng.chance(10) {
                    fire = (at - 0.5).max(self.now);
                }
                self.at(fire, Event::Tick);
            }
        } else {
            self.wake = None;
        }
    }

    fn arrive(&mut self, req: ReqId) {
        let Some(r) = self.requests.get(&req) else {
            return;
        };
        if r.cancelled && self.rng.chance(50) {
            return; // aborted before it left
        }
        self.portal.set_time(EPOCH + self.now / 1000.0);
        let reply =
            self.portal
                .handle("POST", &r.url, "application/x-www-form-urlencoded", &r.body);
        if reply.status == 503 && reply.body.contains("QUERY_LIMIT_EXCEEDED") {
            self.injected_limits += 1;
        }
        let fault = r.fault;
        let latency = self.rng.ms(1.0, 120.0);
        let input = match fault {
            Fault::LostAfter => Input::NoResponse {
                req,
                why: NoAnswer::Network,
                sent: true,
                cause: "socket hang up".to_owned(),
            },
            Fault::Gateway => Input::Response {
                req,
                status: 502,
                body: "<html>Bad Gateway</html>".to_owned(),
                content_type: "text/html".to_owned(),
            },
            _ => Input::Response {
                req,
                status: reply.status,
                body: reply.body,
                content_type: reply.content_type,
            },
        };
        let delay = if fault == Fault::Slow {
            2_500.0 + latency
        } else {
            latency
        };
        self.trace.push(format!(
            "{:.1} portal ran req {req}: {}",
            self.now, reply.status
        ));
        self.at(self.now + delay, Event::Answer(req, input));
    }

    fn token(&mut self, ask: u32, answer: TokenAnswer) {
        self.asked.retain(|(a, _)| *a != ask);
        let answer = match answer {
            TokenAnswer::Value(_) => {
                self.portal.set_time(EPOCH + self.now / 1000.0);
                match self
                    .portal
                    .refresh(self.refresh_token.as_deref().unwrap_or(""))
                {
                    Ok((access, refresh, expires_in)) => {
                        self.refresh_token = Some(refresh);
                        let v = json!({"access_token": access, "expires_in": expires_in});
                        TokenAnswer::Value(Json::parse(v.to_string()).expect("json"))
                    }
                    Err(code) => TokenAnswer::Rejected(code),
                }
            }
            other => other,
        };
        self.trace.push(format!(
            "{:.1} token answer {}",
            self.now,
            matches!(answer, TokenAnswer::Value(_))
        ));
        self.machine.handle(Input::Token { ask, answer }, self.now);
        self.drain();
    }

    fn run(&mut self) {
        while let Some(Reverse((t, seq))) = self.queue.pop() {
            self.steps += 1;
            if self.steps > 200_000 {
                self.fail("the schedule does not end (a wake that never moves anything?)");
            }
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            self.now = self.now.max(t as f64 / 1000.0);
            match event {
                Event::Start(i) => self.start(i),
                Event::Arrive(req) => self.arrive(req),
                Event::Answer(req, input) => {
                    if let Some(op) = self.op_of_req.get(&req) {
                        if self.call_of(*op).is_none() {
                            self.trace
                                .push(format!("{:.1} late answer to req {req}", self.now));
                        }
                    }
                    self.machine.handle(input, self.now);
                    self.drain();
                }
                Event::Token(ask, answer) => self.token(ask, answer),
                Event::Abort(i) => {
                    if let Some(op) = self.calls[i].op {
                        self.trace.push(format!("{:.1} abort call {i}", self.now));
                        self.calls[i].aborted_at = Some(self.now);
                        self.machine.handle(Input::Abort(op), self.now);
                        self.drain();
                    }
                }
                Event::Tick => {
                    self.wake = None;
                    self.machine.handle(Input::Tick, self.now);
                    self.drain();
                }
            }
        }
    }

    fn check(&self) {
        for (i, c) in self.calls.iter().enumerate() {
            if c.result.is_none() {
                self.fail(&format!("call {i} never ended"));
            }
        }
        if self.machine.running() != 0 {
            self.fail("the machine still runs calls");
        }
        let stored = self.portal.messages();
        let mut count: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for m in &stored {
            count.entry(m.sent.as_str()).or_default().push(m.id);
        }
        for (text, ids) in &count {
            if ids.len() > 1 {
                self.fail(&format!("{text:?} stored {} times: {ids:?}", ids.len()));
            }
        }
        let id_of = |text: &str| count.get(text).and_then(|ids| ids.first().copied());
        let check_one =
            |i: usize, text: &str, outcome: Result<u64, &b24_openlines::Error>| match outcome {
                Ok(id) => {
                    if id_of(text) != Some(id) {
                        self.fail(&format!(
                            "call {i} resolved to id {id}, but {text:?} is stored as {:?}",
                            id_of(text)
                        ));
                    }
                }
                Err(e) => {
                    if e.outcome() != Outcome::Unknown && id_of(text).is_some() {
                        self.fail(&format!(
                            "call {i} says {:?} ({}) but {text:?} was stored",
                            e.outcome(),
                            e.code()
                        ));
                    }
                }
            };
        for (i, c) in self.calls.iter().enumerate() {
            let Some(result) = &c.result else { continue };
            match (&c.kind, result) {
                (Kind::Single(t) | Kind::Verified(t), Ok(Answer::Text(id))) => {
                    check_one(i, t, Ok(id.parse().expect("an id")));
                }
                (Kind::Single(t) | Kind::Verified(t), Err(e)) => check_one(i, t, Err(e)),
                (Kind::ToItem(t, _), Ok(Answer::Item(d))) => check_one(i, t, Ok(d.id)),
                (Kind::ToItem(t, _), Err(e)) => check_one(i, t, Err(e)),
                (Kind::ToItems(texts, _), Ok(Answer::Items(entries))) => {
                    let ids = entries.iter().map(|e| e.as_ref().map(|d| d.id));
                    self.check_entries(i, texts, ids.collect(), &check_one);
                }
                (Kind::Mass(texts, _), Ok(Answer::Mass(entries))) => {
                    let ids = entries.iter().map(|e| e.as_ref().map(|(id, _)| *id));
                    self.check_entries(i, texts, ids.collect(), &check_one);
                }
                (_, other) => self.fail(&format!("call {i}: unexpected result {other:?}")),
            }
        }
        if self.injected_limits > 0 {
            self.fail(&format!(
                "the portal answered QUERY_LIMIT_EXCEEDED {} times",
                self.injected_limits
            ));
        }
    }
}

/// What a call or entry gave for one message: its id or its error.
type Got<'a> = Result<u64, &'a b24_openlines::Error>;

impl World {
    /// A mass send's entries: one per message, each checked.
    fn check_entries<'a>(
        &self,
        i: usize,
        texts: &[String],
        ids: Vec<Got<'a>>,
        check_one: &dyn Fn(usize, &str, Got<'a>),
    ) {
        if ids.len() != texts.len() {
            self.fail(&format!(
                "call {i}: {} entries for {} messages",
                ids.len(),
                texts.len()
            ));
        }
        for (t, id) in texts.iter().zip(ids) {
            check_one(i, t, id);
        }
    }
}

/// Texts with links, entities and signs, as apps send them, unique per schedule.
fn text(seed: u64, i: usize, k: usize) -> String {
    match (seed as usize + i + k) % 4 {
        0 => format!("Order {seed}-{i}-{k} https://shop.example/o/{i}?k={k}&x=1"),
        1 => format!("Paid {seed}-{i}-{k} &amp; thanks (C)"),
        2 => format!("Hi {seed}-{i}-{k} 👋 see [URL=https://x.example/{k}]here[/URL]"),
        _ => format!("Plain {seed}-{i}-{k}"),
    }
}

fn schedule(seed: u64) -> World {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let portal = InProcess::new(b24_portal::Config::default(), EPOCH);
    let chats: Vec<(u64, String, u64, u64)> = portal
        .writable_chats()
        .into_iter()
        .map(|c| (c.chat_id, c.crm_entity_type, c.crm_entity, c.user_id))
        .collect();
    let token_auth = rng.chance(50);
    let mut refresh_token = None;
    let auth = if token_auth {
        let ttl = rng.ms(0.05, 3.0);
        let (access, refresh, _) = portal.issue_token(12, ttl);
        refresh_token = Some(refresh);
        Auth::token(Some(b24_portal::sim::BASE_URL), None, &access, false).expect("token auth")
    } else {
        Auth::Webhook(Webhook::parse(&portal.webhook_url(), false).expect("webhook"))
    };
    let mut config = Config::new(auth);
    if token_auth {
        config.source = Source::Refresh;
        config.refresh_ms = 200 + rng.below(600) as u32;
    }
    let refresh_ms = f64::from(config.refresh_ms);
    config.observe = true;
    let machine = Machine::new(config, 0.0);
    let n = 1 + rng.below(8) as usize;
    let mut calls = Vec::new();
    let mut plans = Vec::new();
    for i in 0..n {
        let kind = match rng.below(13) {
            0..=3 => Kind::Single(text(seed, i, 0)),
            4..=7 => Kind::Verified(text(seed, i, 0)),
            8..=9 => Kind::ToItem(text(seed, i, 0), rng.chance(50)),
            10 => {
                let m = 1 + rng.below(70) as usize;
                Kind::ToItems((0..m).map(|k| text(seed, i, k)).collect(), rng.chance(50))
            }
            _ => {
                let m = 1 + rng.below(70) as usize;
                Kind::Mass((0..m).map(|k| text(seed, i, k)).collect(), rng.chance(50))
            }
        };
        let at = rng.ms(0.0, 2_000.0);
        let abort_at = rng.chance(15).then(|| at + rng.ms(0.0, 1_500.0));
        plans.push(Planned { at, abort_at });
        calls.push(CallState {
            op: None,
            kind,
            started: 0.0,
            bounds: Bounds {
                timeout_ms: 0,
                whole: true,
            },
            aborted_at: None,
            result: None,
            ended_at: 0.0,
        });
    }
    let mut world = World {
        seed,
        rng,
        now: 0.0,
        seq: 0,
        queue: BinaryHeap::new(),
        events: HashMap::new(),
        machine,
        portal,
        chats,
        calls,
        requests: HashMap::new(),
        op_of_req: HashMap::new(),
        refresh_token,
        asked: Vec::new(),
        refresh_ms,
        wake: None,
        trace: Vec::new(),
        token_auth,
        injected_limits: 0,
        steps: 0,
    };
    for (i, p) in plans.iter().enumerate() {
        world.at(p.at, Event::Start(i));
        if let Some(a) = p.abort_at {
            world.at(a, Event::Abort(i));
        }
    }
    world
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn seeded_schedules_keep_every_invariant() {
    let first = env("SIM_FIRST", 1);
    let count = env("SIM_SEEDS", 300);
    let (mut calls, mut sends, mut refreshes, mut unknown) = (0, 0, 0, 0);
    for seed in first..first + count {
        let mut world = schedule(seed);
        world.run();
        world.check();
        calls += world.calls.len();
        sends += world.requests.len();
        refreshes += world.machine.refreshes();
        unknown += world
            .calls
            .iter()
            .filter(|c| matches!(&c.result, Some(Err(e)) if e.outcome() == Outcome::Unknown))
            .count();
        let _ = world.token_auth;
    }
    println!("{count} schedules from seed {first}: {calls} calls, {sends} requests, {refreshes} refreshes, {unknown} calls left unknown; 0 invariant violations");
}
