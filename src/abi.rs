//! What the package's JS driver (`src/js/api.js`) calls: strings and numbers in,
//! strings out. The module imports nothing from JS; each export takes one input to a
//! client's [`Machine`] (with the time, `performance.timeOrigin + performance.now()`)
//! and returns every action it led to, as records the driver carries out in order.
//!
//! Records are separated by `\x1e` and their fields by `\x1f` (neither can occur raw
//! in a URL, a form body or JSON text):
//!
//! | record | fields | the driver |
//! | --- | --- | --- |
//! | `O` | op | the call's id (first, from `call`) |
//! | `S` | req, url, body | POSTs the form body; answers with `response` or `failure` |
//! | `C` | req | aborts that request |
//! | `T` | ask | asks the token source; answers with `token` |
//! | `R` | event JSON | calls `onRequest` |
//! | `P` | op, counts JSON | calls the call's `onProgress` |
//! | `D` | op, result JSON | resolves the call |
//! | `E` | op (empty: refused before it began), error record JSON | rejects it |
//! | `W` | at | arms the one wake timer (none: no record) |
//!
//! Caller values come as text: params as their JSON text, options as the snapshot of
//! [`crate::options`]. Each text input is tagged by its first character: `j` JSON
//! text follows, `u` nothing was given (undefined, or JSON has no text for it), `t`
//! not an object (for `call()`), `e` serializing it threw (its text follows).

use wasm_bindgen::prelude::*;

use crate::auth::{self, Auth, Webhook};
use crate::batch::{self, Item, Progress};
use crate::error::{codes, Error};
use crate::frame::{parse_reply, Bootstrap};
use crate::json::{self, Json, JsonView, Shape};
use crate::machine::{
    Action, Answer, Bounds, Call, Config, Input, Machine, NoAnswer, OpId, Report, Source,
    StoreAnswer, StoreOp, TokenAnswer,
};
use crate::options::{self, Options, Settings};
use crate::params::{self, Output, Prepared, MESSAGE_ADD};
use crate::text;

const RS: char = '\x1e';
const US: char = '\x1f';

/// A tagged text input.
enum Text<'a> {
    Json(&'a str),
    None,
    NotObject,
    Threw(&'a str),
}

fn tagged(s: &str) -> Text<'_> {
    match s.split_at_checked(1) {
        Some(("j", rest)) => Text::Json(rest),
        Some(("t", _)) => Text::NotObject,
        Some(("e", rest)) => Text::Threw(rest),
        _ => Text::None,
    }
}

/// The record the JS layer turns into a `Bitrix24Error`, as JSON text.
pub fn error_record(e: &Error) -> String {
    let d = e.details();
    let mut o = String::from("{\"message\":");
    json::write_str(&mut o, &e.message());
    for (key, value) in [
        ("code", d.code.as_str()),
        ("kind", e.kind()),
        ("method", d.method.as_str()),
        ("description", d.description.as_str()),
        ("outcome", d.outcome.as_str()),
    ] {
        o.push_str(",\"");
        o.push_str(key);
        o.push_str("\":");
        json::write_str(&mut o, value);
    }
    for (key, value) in [("argument", d.argument.as_deref()), ("hint", d.hint.text())] {
        if let Some(v) = value {
            o.push_str(",\"");
            o.push_str(key);
            o.push_str("\":");
            json::write_str(&mut o, v);
        }
    }
    o.push_str(",\"status\":");
    text::push_decimal(&mut o, u64::from(d.status));
    o.push_str(if d.retryable {
        ",\"retryable\":true"
    } else {
        ",\"retryable\":false"
    });
    if d.verified {
        o.push_str(",\"verified\":true");
    }
    if !d.candidates.is_empty() {
        o.push_str(",\"candidates\":[");
        for (i, id) in d.candidates.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            text::push_decimal(&mut o, *id);
        }
        o.push(']');
    }
    o.push('}');
    o
}

fn report_json(r: &Report) -> String {
    let mut o = String::from("{\"method\":");
    json::write_str(&mut o, &r.method);
    o.push_str(",\"status\":");
    text::push_decimal(&mut o, u64::from(r.status));
    if !r.code.is_empty() {
        o.push_str(",\"code\":");
        json::write_str(&mut o, &r.code);
    }
    for (key, n) in [
        ("durationMs", r.duration_ms),
        ("attempt", f64::from(r.attempt)),
        ("waitedMs", r.waited_ms),
    ] {
        o.push_str(",\"");
        o.push_str(key);
        o.push_str("\":");
        o.push_str(&number(n));
    }
    o.push('}');
    o
}

/// A finite number as JSON text (integers without a fraction).
fn number(n: f64) -> String {
    if !n.is_finite() {
        return "0".to_owned();
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return text::signed_decimal(n as i64);
    }
    let micro = (n * 1000.0).round() as i64;
    let (whole, frac) = (micro / 1000, (micro % 1000).unsigned_abs());
    let mut s = if micro < 0 && whole == 0 {
        "-0".to_owned()
    } else {
        text::signed_decimal(whole)
    };
    s.push('.');
    let f = text::decimal(frac);
    for _ in f.len()..3 {
        s.push('0');
    }
    s.push_str(text::trim_end_byte(&f, b'0'));
    if s.ends_with(".") {
        s.pop();
    }
    s
}

fn progress_json(p: &Progress) -> String {
    let mut o = String::from("{");
    for (i, (key, n)) in [
        ("done", p.done),
        ("total", p.total),
        ("delivered", p.delivered),
        ("failed", p.failed),
        ("unknown", p.unknown),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            o.push(',');
        }
        o.push('"');
        o.push_str(key);
        o.push_str("\":");
        text::push_decimal(&mut o, *n as u64);
    }
    o.push('}');
    o
}

fn failure_entry(o: &mut String, e: &Error) {
    o.push_str("{\"ok\":false,\"error\":");
    o.push_str(&error_record(e));
    o.push('}');
}

fn item_json(o: &mut String, item: &Item<Json>) {
    match item {
        Item::Done {
            result,
            total,
            next,
        } => {
            o.push_str("{\"ok\":true,\"result\":");
            o.push_str(result.text());
            for (key, n) in [("total", total), ("next", next)] {
                if let Some(n) = n {
                    o.push_str(",\"");
                    o.push_str(key);
                    o.push_str("\":");
                    text::push_decimal(o, *n);
                }
            }
            o.push('}');
        }
        Item::Failed(e) => failure_entry(o, e),
    }
}

/// A message to a CRM item's fields, and the closing brace.
fn delivered_json(o: &mut String, d: &crate::machine::Delivered) {
    o.push_str("\"id\":");
    text::push_decimal(o, d.id);
    o.push_str(",\"chatId\":");
    text::push_decimal(o, d.chat);
    match &d.connector {
        Some((id, title)) => {
            o.push_str(",\"connectorId\":");
            json::write_str(o, id);
            o.push_str(",\"connectorTitle\":");
            json::write_str(o, title);
        }
        None => o.push_str(",\"connectorId\":null"),
    }
    o.push_str(",\"userId\":");
    text::push_decimal(o, d.user);
    o.push_str(if d.joined {
        ",\"joined\":true"
    } else {
        ",\"joined\":false"
    });
    if d.verified {
        o.push_str(",\"verified\":true");
    }
    match &d.left {
        Some(Ok(())) => o.push_str(",\"left\":true"),
        Some(Err(e)) => {
            o.push_str(",\"left\":false,\"leaveError\":");
            o.push_str(&error_record(e));
        }
        None => {}
    }
    o.push('}');
}

/// A batch call's keys: the commands' names, and whether they were keyed.
struct Keys {
    op: OpId,
    names: Vec<String>,
    keyed: bool,
}

fn answer_json(answer: &Answer, keys: Option<&Keys>) -> String {
    match answer {
        Answer::Text(t) => t.clone(),
        Answer::Batch(items) => {
            let keyed = keys.filter(|k| k.keyed);
            let mut o = String::from(if keyed.is_some() { "{" } else { "[" });
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                if let Some(k) = keyed {
                    json::write_str(&mut o, k.names.get(i).map_or("", String::as_str));
                    o.push(':');
                }
                item_json(&mut o, item);
            }
            o.push(if keyed.is_some() { '}' } else { ']' });
            o
        }
        Answer::Item(d) => {
            let mut o = String::from("{");
            delivered_json(&mut o, d);
            o
        }
        Answer::Items(entries) => {
            let mut o = String::from("[");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                match e {
                    Ok(d) => {
                        o.push_str("{\"ok\":true,");
                        delivered_json(&mut o, d);
                    }
                    Err(e) => failure_entry(&mut o, e),
                }
            }
            o.push(']');
            o
        }
        Answer::Mass(entries) => {
            let mut o = String::from("[");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                match e {
                    Ok((id, verified)) => {
                        o.push_str("{\"ok\":true,\"id\":");
                        text::push_decimal(&mut o, *id);
                        if *verified {
                            o.push_str(",\"verified\":true");
                        }
                        o.push('}');
                    }
                    Err(e) => failure_entry(&mut o, e),
                }
            }
            o.push(']');
            o
        }
    }
}

fn record(out: &mut String, fields: &[&str]) {
    if !out.is_empty() {
        out.push(RS);
    }
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(US);
        }
        out.push_str(f);
    }
}

/// An error refusing a call before it began, as the driver's output.
fn refused(e: &Error) -> String {
    let mut out = String::new();
    record(&mut out, &["E", "", &error_record(e)]);
    out
}

/// Why a page is not a portal's app frame.
const NOT_FRAMED: &str =
    "this page was not opened by a Bitrix24 portal (window.name has no DOMAIN|PROTOCOL|APP_SID)";

/// A Bitrix24 portal client: its machine and its defaults.
#[wasm_bindgen]
pub struct Core {
    machine: Machine,
    settings: Settings,
    keys: Vec<Keys>,
}

fn configured(
    auth: Auth,
    source: Source,
    options: &Options,
    method: &str,
    settings: Settings,
) -> Result<Core, Error> {
    configured_with(Config::new(auth), source, options, method, settings)
}

fn configured_with(
    mut config: Config,
    source: Source,
    options: &Options,
    method: &str,
    settings: Settings,
) -> Result<Core, Error> {
    config.source = source;
    config.refresh_ms = settings.refresh_ms;
    if options.given() && options.is_object() {
        config.limits = options.limits(method)?;
        config.retry = options.retry(method)?;
        config.observe = options.function("onRequest", method)?;
    }
    Ok(Core {
        machine: Machine::new(config, 0.0),
        settings,
        keys: Vec::new(),
    })
}

thread_local! {
    /// The error record of the last constructor or check that failed.
    static LAST_ERROR: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Keeps `e`'s record for [`last_error`].
fn failed(e: &Error) {
    LAST_ERROR.with(|l| *l.borrow_mut() = error_record(e));
}

/// `result`'s value, or `None` with its error kept for [`last_error`].
fn kept<T>(result: Result<T, Error>) -> Option<T> {
    result.map_err(|e| failed(&e)).ok()
}

/// The error record of the last constructor or check that returned nothing (or -1).
#[wasm_bindgen(js_name = lastError)]
pub fn last_error() -> String {
    LAST_ERROR.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

#[wasm_bindgen]
impl Core {
    /// A client for an inbound webhook URL (`None`: see [`last_error`]).
    pub fn webhook(url: Option<String>, options: &str, method: &str) -> Option<Core> {
        kept(webhook_core(url, &Options::parse(options), method))
    }

    /// A client for an OAuth token: `auth` is the snapshot of `{domain |
    /// clientEndpoint, accessToken, refresh?}`, `options` of the client options (the
    /// same object for the free `crmMessageAdd`).
    pub fn token(auth: &str, options: &str, method: &str) -> Option<Core> {
        kept(token_core(
            &Options::parse(auth),
            &Options::parse(options),
            method,
        ))
    }

    /// A client inside a portal's frame: `name` is `window.name`, `init` the JSON of
    /// the parent's `getInitData` answer.
    pub fn frame(name: &str, init: &str, options: &str, now: f64) -> Option<Core> {
        kept(frame_core(name, init, &Options::parse(options), now))
    }

    /// A client over BX24.js after `BX24.init`: `auth` is the JSON of `getAuth()`,
    /// `name` the page's `window.name`.
    pub fn bx24(auth: &str, name: &str, options: &str, method: &str) -> Option<Core> {
        kept(bx24_core(auth, name, &Options::parse(options), method))
    }

    /// The portal's origin (never the secret).
    #[wasm_bindgen(getter)]
    pub fn portal(&self) -> String {
        self.machine.origin().to_owned()
    }

    /// How many times this client has refreshed its access token.
    #[wasm_bindgen(getter)]
    pub fn refreshes(&self) -> f64 {
        self.machine.refreshes() as f64
    }

    /// Starts a call. `kind` 0: a typed method (`name` its JS name, `input` its
    /// params); 1: `call()` of any method; 2: `callPage()`; 3: `batch` (`input` the
    /// commands); 4: `crmMessageAddMany` (`input` a JSON list of tagged item texts,
    /// or `t` when the items are not a list); 5: `sendToCrmItem` (`input` its params). Returns the `O` record and the actions,
    /// or an `E` record when the call is refused before it begins.
    pub fn call(&mut self, kind: u32, name: &str, input: &str, options: &str, now: f64) -> String {
        let options = Options::parse(options);
        match self.start(kind, name, input, &options, now) {
            Ok(op) => {
                let mut out = String::new();
                record(&mut out, &["O", &text::decimal(u64::from(op))]);
                self.drain(out)
            }
            Err(e) => refused(&self.machine.redact(e)),
        }
    }

    /// The answer to request `req`.
    pub fn response(
        &mut self,
        req: u32,
        status: f64,
        body: String,
        content_type: String,
        now: f64,
    ) -> String {
        let status = if (0.0..=999.0).contains(&status) {
            status as u16
        } else {
            0
        };
        self.machine.handle(
            Input::Response {
                req,
                status,
                body,
                content_type,
            },
            now,
        );
        self.drain(String::new())
    }

    /// Request `req` got no answer: `cancelled` after a `C` record, else the network
    /// failed (`cause`, the runtime's text); `sent`: `fetch` had been called.
    pub fn failure(
        &mut self,
        req: u32,
        cancelled: bool,
        sent: bool,
        cause: String,
        now: f64,
    ) -> String {
        let why = if cancelled {
            NoAnswer::Cancelled
        } else {
            NoAnswer::Network
        };
        self.machine.handle(
            Input::NoResponse {
                req,
                why,
                sent,
                cause,
            },
            now,
        );
        self.drain(String::new())
    }

    /// The token source's answer to ask `ask`: `how` 0 its value (JSON text), 1 it
    /// threw, 2 it rejected (the text).
    pub fn token_answer(&mut self, ask: u32, how: u32, text: String, now: f64) -> String {
        let answer = match how {
            0 => TokenAnswer::Value(Json::parse(text).unwrap_or_else(|_| Json::null())),
            1 => TokenAnswer::Threw(text),
            _ => TokenAnswer::Rejected(text),
        };
        self.machine.handle(Input::Token { ask, answer }, now);
        self.drain(String::new())
    }

    /// The token store's answer to ask `ask`: `how` 0 `get()`'s value (JSON text), 1 the
    /// lock is held, 2 `set()` wrote (`text` "1") or not, 3 it failed (the text).
    pub fn store_answer(&mut self, ask: u32, how: u32, text: String, now: f64) -> String {
        let answer = match how {
            0 => StoreAnswer::Value(Json::parse(text).unwrap_or_else(|_| Json::null())),
            1 => StoreAnswer::Locked,
            2 => StoreAnswer::Saved(text == "1"),
            _ => StoreAnswer::Failed(text),
        };
        self.machine.handle(Input::Store { ask, answer }, now);
        self.drain(String::new())
    }

    /// BX24.js's current token (the JSON of `getAuth()`; empty when it has none).
    pub fn current(&mut self, auth: &str) {
        let token = Json::parse(auth.to_owned())
            .ok()
            .and_then(|v| auth::token_from_bx24(&v))
            .map(|(t, _)| t);
        self.machine.current(token);
    }

    /// The caller's signal fired for call `op`.
    pub fn abort(&mut self, op: u32, now: f64, unsent: &str) -> String {
        let unsent: Vec<u32> = text::split_byte(unsent, b',')
            .into_iter()
            .filter_map(|r| text::parse_u64(r).and_then(|r| u32::try_from(r).ok()))
            .collect();
        self.machine.abort_unsent(op, &unsent, now);
        self.drain(String::new())
    }

    /// The wake timer fired.
    pub fn tick(&mut self, now: f64) -> String {
        self.machine.handle(Input::Tick, now);
        self.drain(String::new())
    }
}

impl Core {
    fn start(
        &mut self,
        kind: u32,
        name: &str,
        input: &str,
        options: &Options,
        now: f64,
    ) -> Result<OpId, Error> {
        let (call, bounds, keys) = match kind {
            0 => {
                let prepared = typed(name, input)?;
                self.single(prepared, options)?
            }
            1 | 2 => {
                let page = kind == 2;
                let caller = match (name.is_empty(), page) {
                    (false, _) => name,
                    (true, false) => "call",
                    (true, true) => "callPage",
                };
                let mut prepared =
                    call_params(caller, input).and_then(|p| params::raw(name, p.as_ref()))?;
                if page {
                    prepared.output = Output::Page;
                }
                self.single(prepared, options)?
            }
            3 => {
                let method = "batch";
                let input = commands_json(method, input)?;
                let (commands, keyed) = batch::commands(&input)?;
                let halt = options.flag("halt", method)?;
                let (aborted, timeout_ms) =
                    options.call_limits(method, self.settings.timeout_ms)?;
                let names = commands.iter().map(|c| c.name.clone()).collect();
                let bounds = Bounds {
                    timeout_ms,
                    whole: true,
                };
                (
                    (Call::Batch { commands, halt }, aborted),
                    bounds,
                    Some((names, keyed)),
                )
            }
            5 => {
                let method = MESSAGE_ADD;
                let to = to_item(input)?;
                let (aborted, timeout_ms, settle_ms) = self.message_limits(options, method)?;
                if !options.flag("truncate", method)? {
                    params::check_length(&to.message)?;
                }
                let join = options.optional_flag("join", method)?.unwrap_or(true);
                let leave = options.flag("leave", method)?;
                let call = Call::ToItem {
                    to,
                    join,
                    leave,
                    settle_ms,
                };
                let bounds = Bounds {
                    timeout_ms,
                    whole: settle_ms.is_none(),
                };
                ((call, aborted), bounds, None)
            }
            // 4: crmMessageAddMany, 6: sendToCrmItems.
            _ => {
                let method = MESSAGE_ADD;
                let to_items = kind == 6;
                let texts = item_list(
                    input,
                    if to_items {
                        "items must be a list of sendToCrmItem params"
                    } else {
                        "items must be a list of crmMessageAdd params"
                    },
                )?;
                let halt = options.flag("halt", method)?;
                options.function("onProgress", method)?;
                let (aborted, timeout_ms, settle_ms) = self.message_limits(options, method)?;
                let cut = options.flag("truncate", method)?;
                let length = |m: &str| if cut { Ok(()) } else { params::check_length(m) };
                let call = if to_items {
                    Call::ToItems {
                        items: texts
                            .iter()
                            .map(|t| to_item(t).and_then(|to| length(&to.message).map(|()| to)))
                            .collect(),
                        join: options.optional_flag("join", method)?.unwrap_or(true),
                        halt,
                        settle_ms,
                    }
                } else {
                    Call::Mass {
                        items: texts
                            .iter()
                            .map(|t| {
                                typed("crmMessageAdd", t).and_then(|p| {
                                    length(params::message_of(&p).unwrap_or("")).map(|()| p)
                                })
                            })
                            .collect(),
                        halt,
                        settle_ms,
                    }
                };
                let bounds = Bounds {
                    timeout_ms,
                    whole: false,
                };
                ((call, aborted), bounds, None)
            }
        };
        let ((call, aborted), bounds) = (call, bounds);
        let op = self.machine.start(call, bounds, aborted, now);
        self.keys.retain(|k| k.op != op);
        if let Some((names, keyed)) = keys {
            self.keys.push(Keys { op, names, keyed });
        }
        Ok(op)
    }

    /// A message's bounds: whether the signal fired, the timeout, and the settle window
    /// of verified delivery when it is on.
    fn message_limits(
        &self,
        options: &Options,
        method: &str,
    ) -> Result<(bool, u32, Option<u32>), Error> {
        let (aborted, timeout_ms) = options.call_limits(method, self.settings.timeout_ms)?;
        let settle_ms = options.verification(
            (self.settings.verify, self.settings.settle_ms),
            timeout_ms,
            method,
        )?;
        Ok((aborted, timeout_ms, settle_ms))
    }

    /// A single call (or a verified message) with its options.
    #[allow(clippy::type_complexity)]
    fn single(
        &self,
        prepared: Prepared,
        options: &Options,
    ) -> Result<((Call, bool), Bounds, Option<(Vec<String>, bool)>), Error> {
        let method = prepared.method.clone();
        if method == MESSAGE_ADD && prepared.output != Output::Page {
            let (aborted, timeout_ms, settle_ms) = self.message_limits(options, &method)?;
            if !options.flag("truncate", &method)? {
                params::check_length(params::message_of(&prepared).unwrap_or(""))?;
            }
            let whole = settle_ms.is_none();
            let call = match settle_ms {
                Some(settle_ms) => Call::Verified {
                    prepared,
                    settle_ms,
                },
                None => Call::Single(prepared),
            };
            return Ok(((call, aborted), Bounds { timeout_ms, whole }, None));
        }
        let (aborted, timeout_ms) = options.call_limits(&method, self.settings.timeout_ms)?;
        let bounds = Bounds {
            timeout_ms,
            whole: true,
        };
        Ok(((Call::Single(prepared), aborted), bounds, None))
    }

    /// Every action so far, as records after `out`, and the wake.
    fn drain(&mut self, mut out: String) -> String {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Send { req, url, body, .. } => {
                    record(
                        &mut out,
                        &["S", &text::decimal(u64::from(req)), &url, &body],
                    );
                }
                Action::Cancel { req } => record(&mut out, &["C", &text::decimal(u64::from(req))]),
                Action::AskToken { ask, current } => {
                    record(&mut out, &["T", &text::decimal(u64::from(ask)), &current])
                }
                Action::Store { ask, op } => {
                    let ask = text::decimal(u64::from(ask));
                    match op {
                        StoreOp::Get => record(&mut out, &["G", &ask]),
                        StoreOp::Lock => record(&mut out, &["L", &ask]),
                        StoreOp::Set { next, previous } => {
                            record(&mut out, &["V", &ask, &next, &previous])
                        }
                        StoreOp::Unlock => record(&mut out, &["U", &ask]),
                    }
                }
                Action::Report(r) => record(&mut out, &["R", &report_json(&r)]),
                Action::Progress { op, counts } => {
                    record(
                        &mut out,
                        &["P", &text::decimal(u64::from(op)), &progress_json(&counts)],
                    );
                }
                Action::Done { op, result } => {
                    let keys = self
                        .keys
                        .iter()
                        .position(|k| k.op == op)
                        .map(|i| self.keys.swap_remove(i));
                    match result {
                        Ok(answer) => {
                            let text = answer_json(&answer, keys.as_ref());
                            record(&mut out, &["D", &text::decimal(u64::from(op)), &text]);
                        }
                        Err(e) => record(
                            &mut out,
                            &["E", &text::decimal(u64::from(op)), &error_record(&e)],
                        ),
                    }
                }
            }
        }
        if let Some(at) = self.machine.poll_timeout() {
            record(&mut out, &["W", &number(at)]);
        }
        out
    }
}

fn webhook_core(url: Option<String>, options: &Options, method: &str) -> Result<Core, Error> {
    let url = url.ok_or_else(|| Error::no_auth(method, "the webhook URL must be a string"))?;
    let settings = options.settings(method)?;
    let hook =
        Webhook::parse(&url, settings.allow_insecure_http).map_err(|e| e.for_method(method))?;
    configured(Auth::Webhook(hook), Source::None, options, method, settings)
}

fn token_core(auth: &Options, options: &Options, method: &str) -> Result<Core, Error> {
    let settings = options.settings(method)?;
    // A token store: the tokens are read from it (accessToken may be left out).
    let store = match auth.get("store", method)? {
        None => false,
        Some(v) if v.is_object() => true,
        Some(_) => {
            return Err(options::invalid(
                method,
                "store",
                "must be a token store {get, set, lock}",
            ))
        }
    };
    let token = auth.string("accessToken", method)?;
    if token.is_none() && !store {
        return Err(Error::no_auth(
            method,
            "token auth needs accessToken (or a store)",
        ));
    }
    let domain = auth.string("domain", method)?;
    let endpoint = auth.string("clientEndpoint", method)?;
    let refresh = auth.function("refresh", method)?;
    let refresh_token = auth.string("refreshToken", method)?;
    let mut parsed = Auth::token(
        domain.as_deref(),
        endpoint.as_deref(),
        token.as_deref().unwrap_or("none yet"),
        settings.allow_insecure_http,
    )
    .map_err(|e| e.for_method(method))?;
    let unset = token.is_none();
    if unset {
        // Nothing to send until the store gives a token.
        if let Auth::Token { access_token, .. } = &mut parsed {
            access_token.clear();
        }
    }
    let mut config = Config::new(parsed);
    if unset {
        // Due at once: the first call reads the store.
        config.expires_at = Some(0.0);
    }
    config.store = store && refresh;
    config.refresh_token = refresh_token;
    let source = if refresh {
        Source::Refresh
    } else {
        Source::None
    };
    configured_with(config, source, options, method, settings)
}

fn frame_core(name: &str, init: &str, options: &Options, now: f64) -> Result<Core, Error> {
    let method = "Client.fromFrame";
    let settings = options.settings(method)?;
    let boot = Bootstrap::parse(name).ok_or_else(|| Error::no_auth(method, NOT_FRAMED))?;
    let view = Json::parse(init.to_owned()).unwrap_or_else(|_| Json::null());
    let token = auth::token_from_frame(&view, now)
        .ok_or_else(|| Error::no_auth(method, "getInitData gave no AUTH_ID"))?;
    let endpoint = auth::frame_endpoint(&view, &boot);
    let auth = Auth::token(None, Some(&endpoint), &token.access_token, true)
        .map_err(|e| e.for_method(method))?;
    let mut core = configured(auth, Source::Frame, options, method, settings)?;
    core.machine.expire_at(token.expires_at_ms);
    Ok(core)
}

fn bx24_core(auth: &str, name: &str, options: &Options, method: &str) -> Result<Core, Error> {
    let settings = options.settings(method)?;
    let view = Json::parse(auth.to_owned()).unwrap_or_else(|_| Json::null());
    let (token, domain) = auth::token_from_bx24(&view)
        .ok_or_else(|| Error::no_auth(method, "BX24.getAuth() gave no access token"))?;
    let scheme = match (
        Bootstrap::parse(name),
        options.string("protocol", method)?.as_deref(),
    ) {
        (Some(boot), _) => {
            if boot.https {
                "https"
            } else {
                "http"
            }
        }
        (None, Some(p)) => {
            if p == "http" {
                "http"
            } else {
                "https"
            }
        }
        (None, None) => "https",
    };
    let origin = [scheme, "://", &domain].concat();
    let auth = Auth::token(Some(&origin), None, &token.access_token, true)
        .map_err(|e| e.for_method(method))?;
    let mut core = configured(auth, Source::Bx24, options, method, settings)?;
    core.machine.current(Some(token));
    Ok(core)
}

/// The client of the free `crmMessageAdd`, from its options: `webhookUrl`, else
/// `accessToken` with `domain` or `clientEndpoint`. `None` with an error record kept
/// ([`last_error`]), or with none when neither is given (the JS layer then looks for
/// BX24.js).
#[wasm_bindgen(js_name = coreFromOptions)]
pub fn core_from_options(options: &str, method: &str) -> Option<Core> {
    let options = Options::parse(options);
    let run = || -> Result<Option<Core>, Error> {
        if let Some(url) = options.string("webhookUrl", method)? {
            return webhook_core(Some(url), &options, method).map(Some);
        }
        if options.get("accessToken", method)?.is_some() {
            return token_core(&options, &options, method).map(Some);
        }
        Ok(None)
    };
    kept(run()).flatten()
}

/// The error of a call stopped before it had a client (its timeout, or its signal
/// when `aborted`): nothing was sent.
#[wasm_bindgen(js_name = stoppedError)]
pub fn stopped_error(method: &str, timeout_ms: u32, aborted: bool) -> String {
    let e = if aborted {
        Error::unanswered(method, crate::error::Unanswered::Aborted, "", false, true)
    } else {
        let ms = text::decimal(u64::from(timeout_ms));
        Error::unanswered(method, crate::error::Unanswered::Timeout, &ms, false, true)
    };
    error_record(&e)
}

/// Validates `Client.fromBx24`'s own options (and the client's): the `BX24.init`
/// timeout in milliseconds, or -1 ([`last_error`]).
#[wasm_bindgen(js_name = bx24Options)]
pub fn bx24_options(options: &str, method: &str) -> f64 {
    let options = Options::parse(options);
    let run = || -> Result<f64, Error> {
        options.settings(method)?;
        let init_ms = options.ms("initTimeoutMs", method, options::DEFAULT_REFRESH_TIMEOUT_MS)?;
        match options.string("protocol", method)?.as_deref() {
            None | Some("https") | Some("http") => {}
            Some(_) => {
                return Err(options::invalid(
                    method,
                    "protocol",
                    "must be 'https' or 'http'",
                ))
            }
        }
        options.limits(method)?;
        options.retry(method)?;
        options.function("onRequest", method)?;
        Ok(f64::from(init_ms))
    };
    kept(run()).unwrap_or(-1.0)
}

/// Validates a typed method's params (`name` its JS name): empty when they are
/// valid, else the error record's JSON (the free `crmMessageAdd` checks its params
/// before its auth, as the portal does).
#[wasm_bindgen(js_name = checkParams)]
pub fn check_params(name: &str, input: &str) -> String {
    let checked = if name == "sendToCrmItem" {
        to_item(input).map(|_| ())
    } else {
        typed(name, input).map(|_| ())
    };
    checked.err().map_or_else(String::new, |e| error_record(&e))
}

/// A mass send's items: the tagged text of each (`u` for one that is not a string).
fn item_list(input: &str, shape: &str) -> Result<Vec<String>, Error> {
    let list = match tagged(input) {
        Text::Json(t) => Json::parse(t.to_owned())
            .ok()
            .filter(|j| matches!(j.shape(), Shape::Array(_))),
        _ => None,
    };
    let Some(list) = list else {
        return Err(Error::argument(
            MESSAGE_ADD,
            codes::ERROR_ARGUMENT,
            "items",
            shape.to_owned(),
        ));
    };
    let count = match list.shape() {
        Shape::Array(n) => n,
        _ => 0,
    };
    Ok((0..count)
        .map(|i| match list.at(i).map(|t| t.shape()) {
            Some(Shape::String(s)) => s,
            _ => "u".to_owned(),
        })
        .collect())
}

/// Validates `sendToCrmItem`'s params from their tagged text.
fn to_item(input: &str) -> Result<params::ToItem, Error> {
    match tagged(input) {
        Text::Json(t) => Json::parse(t.to_owned())
            .map_err(|why| not_json("crmMessageAdd", &why))
            .and_then(|json| params::to_item(&json)),
        Text::Threw(why) => Err(not_json("crmMessageAdd", why)),
        _ => params::to_item(&Json::null()),
    }
}

/// A call's own bounds (`timeoutMs`, `signal`) for the wait before a client exists
/// (`BX24.init` for the free `crmMessageAdd`): the timeout, or -1 ([`last_error`]).
#[wasm_bindgen(js_name = callTimeout)]
pub fn call_timeout(options: &str, method: &str) -> f64 {
    let limits = Options::parse(options).call_limits(method, options::DEFAULT_TIMEOUT_MS);
    kept(limits).map_or(-1.0, |(_, ms)| f64::from(ms))
}

/// Validates a typed method's params from their tagged text.
fn typed(name: &str, input: &str) -> Result<Prepared, Error> {
    match tagged(input) {
        Text::Json(text) => match Json::parse(text.to_owned()) {
            Ok(json) => params::prepare(name, &json),
            Err(why) => Err(not_json(name, &why)),
        },
        Text::Threw(why) => Err(not_json(name, why)),
        _ => params::prepare(name, &Json::null()),
    }
}

fn not_json(name: &str, why: &str) -> Error {
    let table = params::methods::<Json>();
    let method = table.iter().find(|m| m.js == name).map_or(name, |m| m.rest);
    Error::argument(
        method,
        codes::ERROR_ARGUMENT,
        "params",
        ["params must be plain JSON data (", why, ")"].concat(),
    )
}

/// `call()` params.
fn call_params(method: &str, input: &str) -> Result<Option<Json>, Error> {
    let bad = |why: &str| {
        Error::argument(
            method,
            codes::ERROR_ARGUMENT,
            "params",
            ["params must be a plain object of JSON values (", why, ")"].concat(),
        )
    };
    match tagged(input) {
        Text::Json(text) => Json::parse(text.to_owned()).map(Some).map_err(|e| bad(&e)),
        Text::None => Ok(None),
        Text::NotObject => Err(bad("not an object")),
        Text::Threw(why) => Err(bad(why)),
    }
}

/// `batch` commands.
fn commands_json(method: &str, input: &str) -> Result<Json, Error> {
    let bad = |why: &str| {
        Error::argument(
            method,
            codes::ERROR_ARGUMENT,
            "commands",
            ["commands must be plain JSON data (", why, ")"].concat(),
        )
    };
    match tagged(input) {
        Text::Json(text) => Json::parse(text.to_owned()).map_err(|e| bad(&e)),
        Text::Threw(why) => Err(bad(why)),
        _ => Err(bad("not serializable")),
    }
}

/// The parent window's origin for a frame named `name`, or the `NO_AUTH` error
/// record's JSON (prefixed `{`) when the page is not a portal's app frame.
#[wasm_bindgen(js_name = frameOrigin)]
pub fn frame_origin(name: &str) -> String {
    match Bootstrap::parse(name) {
        Some(boot) => boot.parent_origin(),
        None => error_record(&Error::no_auth("Client.fromFrame", NOT_FRAMED)),
    }
}

/// The message that sends `command` with `params` (JSON text) and callback `id` to
/// the parent of the frame named `name` (empty when it is not a frame).
#[wasm_bindgen(js_name = frameCommand)]
pub fn frame_command(name: &str, command: &str, params: &str, id: &str) -> String {
    Bootstrap::parse(name).map_or_else(String::new, |boot| boot.command(command, params, id))
}

/// `callbackId\x1fjson` of a parent's answer, or empty when it is not one.
#[wasm_bindgen(js_name = frameReply)]
pub fn frame_reply(data: &str) -> String {
    match parse_reply(data) {
        Some((id, json)) => [id, "\x1f", json].concat(),
        None => String::new(),
    }
}

/// The frame commands' timeout from a client's options (`refreshTimeoutMs`), or -1
/// ([`last_error`]).
#[wasm_bindgen(js_name = frameTimeout)]
pub fn frame_timeout(options: &str) -> f64 {
    let settings = Options::parse(options).settings("Client.fromFrame");
    kept(settings).map_or(-1.0, |s| f64::from(s.refresh_ms))
}

/// The JS names of the typed methods, in table order, comma-separated.
#[wasm_bindgen]
pub fn methods() -> String {
    params::methods::<Json>()
        .iter()
        .map(|m| m.js)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_json_reads_them() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.125), "0.125");
        assert_eq!(number(1_700_000_000_123.25), "1700000000123.25");
    }
}
