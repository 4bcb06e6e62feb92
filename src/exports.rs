//! The wasm exports: what the package's JS layer (`src/js/api.js`) calls. They read
//! options, build clients and run calls; everything they decide is in the core, and
//! every JS value they touch is read through [`crate::interop`].
//!
//! Errors leave as plain records (`{code, kind, status, method, description,
//! argument?, outcome, retryable, message}`) in rejected Promises; the JS layer turns
//! them into `Bitrix24Error` objects. The constructors (`fromWebhook`, `fromToken`,
//! `fromFrameInit`) throw their error record, which the JS layer catches; no other
//! export throws, on any input.

use std::cell::RefCell;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::auth::{self, Auth, Webhook};
use crate::client;
use crate::client::TransportError;
use crate::envelope::HttpResponse;
use crate::error::{codes, Error};
use crate::frame::{parse_reply, Bootstrap};
use crate::interop::{self, get, set, JsJson};
use crate::json::Json;
use crate::params::{self, Output, Prepared, MESSAGE_ADD};
use crate::tokens;
use crate::transport::{self, Bounds, Fetch};
use crate::verify;

mod many;

const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const DEFAULT_REFRESH_TIMEOUT_MS: u32 = 10_000;

/// The record the JS layer turns into a `Bitrix24Error`.
fn to_js(e: Error) -> JsValue {
    let d = e.details();
    let o = interop::object();
    set(&o, "message", e.to_string().into());
    set(&o, "code", d.code.as_str().into());
    set(&o, "kind", e.kind().into());
    set(&o, "status", d.status.into());
    set(&o, "method", d.method.as_str().into());
    set(&o, "description", d.description.as_str().into());
    if let Some(a) = &d.argument {
        set(&o, "argument", a.as_str().into());
    }
    set(&o, "outcome", d.outcome.as_str().into());
    set(&o, "retryable", d.retryable.into());
    if d.verified {
        set(&o, "verified", true.into());
    }
    if !d.candidates.is_empty() {
        let ids: Array = d
            .candidates
            .iter()
            .map(|id| JsValue::from(*id as f64))
            .collect();
        set(&o, "candidates", ids.into());
    }
    o
}

/// Runs `future` as a Promise. Every export goes through one boxed future type, so
/// the Promise plumbing is compiled once rather than once per export.
fn promise(future: impl std::future::Future<Output = Result<JsValue, Error>> + 'static) -> Promise {
    let boxed: LocalBoxFuture<'static, Result<JsValue, JsValue>> =
        Box::pin(future.map(|r| r.map_err(to_js)));
    future_to_promise(boxed)
}

fn invalid_option(method: &str, name: &str, what: &str) -> Error {
    Error::argument(
        method,
        codes::ERROR_ARGUMENT,
        name,
        format!("options.{name} {what}"),
    )
}

/// `options[key]`, with a read that threw reported as an invalid option.
fn option(options: &JsValue, key: &str, method: &str) -> Result<Option<JsValue>, Error> {
    interop::try_get(options, key)
        .map_err(|e| invalid_option(method, key, &format!("could not be read ({e})")))
}

fn string_option(options: &JsValue, key: &str, method: &str) -> Result<Option<String>, Error> {
    match option(options, key, method)? {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| invalid_option(method, key, "must be a string")),
    }
}

fn bool_option(options: &JsValue, key: &str, method: &str) -> Result<bool, Error> {
    match option(options, key, method)? {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid_option(method, key, "must be a boolean")),
    }
}

/// `options[key]` in milliseconds, when given.
fn optional_ms(options: &JsValue, key: &str, method: &str) -> Result<Option<u32>, Error> {
    match option(options, key, method)? {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(ms) if ms.fract() == 0.0 && (1.0..=2_147_483_647.0).contains(&ms) => {
                Ok(Some(ms as u32))
            }
            _ => Err(invalid_option(
                method,
                key,
                "must be a whole number of milliseconds from 1 to 2147483647",
            )),
        },
    }
}

fn ms_option(options: &JsValue, key: &str, method: &str, default: u32) -> Result<u32, Error> {
    Ok(optional_ms(options, key, method)?.unwrap_or(default))
}

/// A client's options: default call timeout, refresh timeout, the plain-http opt-in.
struct Settings {
    timeout_ms: u32,
    /// Verified delivery for messages by default (`verify`), and its settle window.
    verify: bool,
    settle_ms: Option<u32>,
    refresh_ms: u32,
    allow_insecure_http: bool,
}

fn settings(options: &JsValue, method: &str) -> Result<Settings, Error> {
    if !options.is_undefined() && !options.is_null() && !options.is_object() {
        return Err(invalid_option(method, "options", "must be an object"));
    }
    Ok(Settings {
        timeout_ms: ms_option(options, "timeoutMs", method, DEFAULT_TIMEOUT_MS)?,
        refresh_ms: ms_option(
            options,
            "refreshTimeoutMs",
            method,
            DEFAULT_REFRESH_TIMEOUT_MS,
        )?,
        allow_insecure_http: bool_option(options, "allowInsecureHttp", method)?,
        verify: bool_option(options, "verify", method)?,
        settle_ms: optional_ms(options, "settleMs", method)?,
    })
}

/// A call's `signal` (an `AbortSignal`, checked) and `timeoutMs`.
fn call_limits(
    options: &JsValue,
    method: &str,
    default_timeout: u32,
) -> Result<(Option<JsValue>, u32), Error> {
    if !options.is_undefined() && !options.is_null() && !options.is_object() {
        return Err(invalid_option(method, "options", "must be an object"));
    }
    let signal = match option(options, "signal", method)? {
        None => None,
        Some(s) if s.dyn_ref::<web_sys::AbortSignal>().is_some() => Some(s),
        Some(_) => return Err(invalid_option(method, "signal", "must be an AbortSignal")),
    };
    Ok((
        signal,
        ms_option(options, "timeoutMs", method, default_timeout)?,
    ))
}

fn start(signal: Option<JsValue>, timeout_ms: u32, method: &str) -> Result<Bounds, Error> {
    Bounds::start(signal, timeout_ms).map_err(|e| invalid_option(method, "signal", &e))
}

/// Starts a call's bounds from its options (`signal`, `timeoutMs`).
fn bounds(options: &JsValue, method: &str, default_timeout: u32) -> Result<Bounds, Error> {
    let (signal, timeout_ms) = call_limits(options, method, default_timeout)?;
    start(signal, timeout_ms, method)
}

/// The steps of a verified send in JS: each request gets the call's timeout afresh (a
/// message send the settle window more: it is watched, not aborted, past its timeout),
/// and the settle window ends early (unsettled) when the caller's signal fires.
struct JsSteps {
    signal: Option<JsValue>,
    timeout_ms: u32,
    settle_ms: u32,
    method: &'static str,
}

impl verify::Steps<Fetch> for JsSteps {
    fn options(&self) -> Result<Bounds, Error> {
        start(self.signal.clone(), self.timeout_ms, self.method)
    }

    fn send_options(&self) -> Result<Bounds, Error> {
        let watched = self.timeout_ms.saturating_add(self.settle_ms);
        start(self.signal.clone(), watched, self.method)
    }

    fn settle(&self, ms: u32) -> LocalBoxFuture<'_, bool> {
        async move {
            match Bounds::start(self.signal.clone(), ms.max(1)) {
                Ok(b) => matches!(b.stopped().await, TransportError::Timeout { .. }),
                Err(_) => false,
            }
        }
        .boxed_local()
    }
}

/// `crmMessageAdd` with verified delivery: reads the chat's watermark, sends, and
/// settles an unknown outcome by reading the chat back ([`verify`]).
async fn verified_add(
    core: &Core,
    prepared: &Prepared,
    steps: &JsSteps,
    settle_ms: u32,
) -> Result<JsValue, Error> {
    let sent = verify::Sent::of(prepared)
        .ok_or_else(|| Error::no_auth(MESSAGE_ADD, "not a message to verify"))?;
    let mark = verify::read_watermark(core, steps, sent.chat_id).await?;
    match verify::send(core, steps, prepared, mark, &[], settle_ms).await {
        verify::Settled::Delivered { id, .. } => Ok(id.to_string().into()),
        verify::Settled::Failed(e) => Err(e),
    }
}

/// Whether a call of `method` verifies delivery, and its settle window: the call's
/// `verify`/`settleMs` options, else the client's; the window defaults to the call's
/// timeout.
fn verification(
    options: &JsValue,
    client: (bool, Option<u32>),
    timeout_ms: u32,
    method: &str,
) -> Result<Option<u32>, Error> {
    let on = match option(options, "verify", method)? {
        None => client.0,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid_option(method, "verify", "must be a boolean"))?,
    };
    let settle = optional_ms(options, "settleMs", method)?.or(client.1);
    Ok(on.then(|| settle.unwrap_or(timeout_ms)))
}

/// A JSON value of an answer as a JS value (`JSON.parse` of its own text).
pub(crate) fn json_to_js(v: &Json) -> JsValue {
    interop::parse_json(&v.text().into()).unwrap_or(JsValue::UNDEFINED)
}

/// `call()` params as the JS layer hands them: their JSON text (`JSON.stringify` of
/// the caller's object: getters run once, `toJSON` honoured, `undefined` members and
/// functions left out, as a JSON body would have them), `undefined` for none, `true`
/// when they are not a plain object, or what serializing them threw.
fn call_params(method: &str, input: &JsValue) -> Result<Option<Json>, Error> {
    let bad = |why: &str| {
        Error::argument(
            method,
            codes::ERROR_ARGUMENT,
            "params",
            format!("params must be a plain object of JSON values ({why})"),
        )
    };
    match input.as_string() {
        Some(text) => Json::parse(text).map(Some).map_err(|e| bad(&e)),
        None if input.is_undefined() || input.is_null() => Ok(None),
        None if input.as_bool() == Some(true) => Err(bad("not an object")),
        None => Err(bad(&interop::text(input))),
    }
}

/// Validates a typed method's params (`name`: its JS name) from their JSON text as
/// the JS layer makes it (`text`: a value JSON would change or drop is `{}` there, so
/// that the error names its field). `undefined` when JSON has no text for them (no
/// params, a function); anything else is what serializing them threw.
fn typed(name: &str, text: &JsValue) -> Result<Prepared, Error> {
    let json = match text.as_string() {
        Some(text) => Some(Json::parse(text)),
        None if text.is_undefined() || text.is_null() => None,
        None => Some(Err(interop::text(text))),
    };
    match json {
        Some(Ok(json)) => params::prepare(name, &json),
        None => params::prepare(name, &Json::null()),
        Some(Err(why)) => {
            let table = params::methods::<Json>();
            let method = table.iter().find(|m| m.js == name).map_or(name, |m| m.rest);
            Err(Error::argument(
                method,
                codes::ERROR_ARGUMENT,
                "params",
                format!("params must be plain JSON data ({why})"),
            ))
        }
    }
}

type Core = client::Client<Fetch>;

/// A Bitrix24 portal client: holds the auth (and refreshes a token once for all calls
/// in flight) and the default timeout.
#[wasm_bindgen]
pub struct Client {
    core: Rc<Core>,
    timeout_ms: u32,
    verify: (bool, Option<u32>),
    /// Calls whose attempt the JS layer is sending ([`Client::begin`]), by slot.
    pending: RefCell<Vec<Option<Pending>>>,
}

/// A call between [`Client::begin`] and its end ([`Client::finish`],
/// [`Client::fail`] or [`Client::resume`]). Its timer and the caller's signal are the
/// JS layer's while it sends; [`Client::resume`] bounds the rest with what is left.
struct Pending {
    prepared: Prepared,
    run: client::Run,
    /// The attempt in flight, if one is.
    attempt: Option<client::Attempted>,
    timeout_ms: u32,
    signal: Option<JsValue>,
}

impl Client {
    fn with(core: Core, settings: &Settings) -> Client {
        Client {
            core: Rc::new(core),
            timeout_ms: settings.timeout_ms,
            verify: (settings.verify, settings.settle_ms),
            pending: RefCell::new(Vec::new()),
        }
    }

    /// Prepares a call and, when it can go at once, its first attempt for the JS
    /// layer to send (see [`Client::begin`]).
    fn start_call(
        &self,
        name: &str,
        params: &JsValue,
        options: &JsValue,
        kind: u32,
    ) -> Result<JsValue, Error> {
        let prepared = match kind {
            0 => typed(name, params)?,
            _ => {
                let page = kind == 2;
                let caller = match (name.is_empty(), page) {
                    (false, _) => name,
                    (true, false) => "call",
                    (true, true) => "callPage",
                };
                let mut prepared =
                    call_params(caller, params).and_then(|p| params::raw(name, p.as_ref()))?;
                if page {
                    prepared.output = Output::Page;
                }
                prepared
            }
        };
        let method = prepared.method.as_str();
        let (signal, timeout_ms) = call_limits(options, method, self.timeout_ms)?;
        if method == MESSAGE_ADD && prepared.output != Output::Page {
            if let Some(settle) = verification(options, self.verify, timeout_ms, method)? {
                let core = self.core.clone();
                let steps = JsSteps {
                    signal,
                    timeout_ms,
                    settle_ms: settle,
                    method: MESSAGE_ADD,
                };
                let verified =
                    promise(async move { verified_add(&core, &prepared, &steps, settle).await });
                return Ok(verified.into());
            }
        }
        if let Some(s) = &signal {
            let aborted =
                transport::signal_aborted(s).map_err(|e| invalid_option(method, "signal", &e))?;
            if aborted {
                let stop = TransportError::Aborted { sent: false };
                return Err(stop.into_error(method, prepared.write));
            }
        }
        let mut run = client::Run::default();
        let attempt = self.core.try_now(&prepared, &mut run);
        let mut pending = self.pending.borrow_mut();
        let slot = pending.iter().position(Option::is_none).unwrap_or_else(|| {
            pending.push(None);
            pending.len() - 1
        });
        let mut out = format!("{slot}\n{timeout_ms}\n{}", u8::from(signal.is_some()));
        if let Some(a) = &attempt {
            for part in [&a.request.url, &a.request.body] {
                out.push('\n');
                out.push_str(part);
            }
        }
        if let Some(place) = pending.get_mut(slot) {
            *place = Some(Pending {
                prepared,
                run,
                attempt,
                timeout_ms,
                signal,
            });
        }
        Ok(out.into())
    }

    fn take(&self, slot: u32) -> Option<Pending> {
        self.pending
            .borrow_mut()
            .get_mut(slot as usize)
            .and_then(Option::take)
    }

    /// Settles the attempt in flight in `slot` with its answer: the result's JSON text
    /// (`params::answer_text`), an error record, or `undefined` when the call goes on
    /// ([`Client::resume`]).
    fn settle(
        &self,
        slot: u32,
        answer: impl FnOnce(&Pending) -> Result<HttpResponse<Json>, TransportError>,
    ) -> JsValue {
        let Some(mut p) = self.take(slot) else {
            return to_js(Error::no_auth("call", "this call has already ended"));
        };
        let Some(attempt) = p.attempt.take() else {
            return to_js(Error::no_auth(&p.prepared.method, "no attempt in flight"));
        };
        let answer = answer(&p);
        let done = self.core.settle(&p.prepared, &mut p.run, &attempt, answer);
        let outcome = match done {
            None => {
                if let Some(place) = self.pending.borrow_mut().get_mut(slot as usize) {
                    *place = Some(p);
                }
                return JsValue::UNDEFINED;
            }
            Some(Ok(success)) => params::answer_text(&p.prepared, success).map(JsValue::from),
            Some(Err(e)) => Err(e),
        };
        match outcome {
            Ok(v) => v,
            Err(e) => to_js(self.core.redact(e)),
        }
    }
}

fn frame_client(
    name: &JsValue,
    init: &JsValue,
    refresh: &JsValue,
    options: &JsValue,
) -> Result<Client, Error> {
    let method = "Client.fromFrame";
    let settings = settings(options, method)?;
    let boot = name
        .as_string()
        .and_then(|n| Bootstrap::parse(&n))
        .ok_or_else(|| Error::no_auth(method, NOT_FRAMED))?;
    let view = JsJson(init.clone());
    let token = auth::token_from_frame(&view, interop::now_ms())
        .ok_or_else(|| Error::no_auth(method, "getInitData gave no AUTH_ID"))?;
    let endpoint = auth::frame_endpoint(&view, &boot);
    let auth = Auth::token(None, Some(&endpoint), &token.access_token, true)
        .map_err(|e| e.for_method(method))?;
    let refresh = refresh
        .dyn_ref::<Function>()
        .map(|f| tokens::frame_refresher(f.clone(), settings.refresh_ms));
    let core = Core::new(Fetch, auth, refresh).with_expiry(token.expires_at_ms);
    let core = many::configured(core, options, method)?;
    Ok(Client::with(core, &settings))
}

/// Why a page is not a portal's app frame.
const NOT_FRAMED: &str =
    "this page was not opened by a Bitrix24 portal (window.name has no DOMAIN|PROTOCOL|APP_SID)";

/// The parent window's origin for a frame named `name` (`window.name`), or the
/// `NO_AUTH` error record of `Client.fromFrame` when the page is not a portal's app
/// frame.
#[wasm_bindgen(js_name = frameOrigin)]
pub fn frame_origin(name: JsValue) -> JsValue {
    match name.as_string().and_then(|n| Bootstrap::parse(&n)) {
        Some(boot) => boot.parent_origin().into(),
        None => to_js(Error::no_auth("Client.fromFrame", NOT_FRAMED)),
    }
}

/// The message that sends `command` with `params` (JSON text) and callback `id` to
/// the parent of the frame named `name`.
#[wasm_bindgen(js_name = frameCommand)]
pub fn frame_command(
    name: JsValue,
    command: JsValue,
    params: JsValue,
    id: JsValue,
) -> Option<String> {
    let boot = Bootstrap::parse(&name.as_string()?)?;
    Some(boot.command(
        &command.as_string()?,
        &params.as_string().unwrap_or_default(),
        &id.as_string()?,
    ))
}

/// `[callbackId, json]` of a parent's answer, or `undefined` when it is not one.
#[wasm_bindgen(js_name = frameReply)]
pub fn frame_reply(data: JsValue) -> JsValue {
    let Some(data) = data.as_string() else {
        return JsValue::UNDEFINED;
    };
    match parse_reply(&data) {
        Some((id, json)) => Array::of2(&id.into(), &json.into()).into(),
        None => JsValue::UNDEFINED,
    }
}

/// The frame commands' timeout from a client's options (`refreshTimeoutMs`), or the
/// error record of an invalid option.
#[wasm_bindgen(js_name = frameTimeout)]
pub fn frame_timeout(options: JsValue) -> JsValue {
    match settings(&options, "Client.fromFrame") {
        Ok(s) => JsValue::from_f64(f64::from(s.refresh_ms)),
        Err(e) => to_js(e),
    }
}

fn webhook_client(url: &str, options: &JsValue, method: &str) -> Result<Client, Error> {
    let settings = settings(options, method)?;
    let hook =
        Webhook::parse(url, settings.allow_insecure_http).map_err(|e| e.for_method(method))?;
    let core = many::configured(Core::new(Fetch, Auth::Webhook(hook), None), options, method)?;
    Ok(Client::with(core, &settings))
}

/// `{domain | clientEndpoint, accessToken, refresh?}` plus the client options, which
/// may be the same object (the free `crmMessageAdd`).
fn token_client(auth: &JsValue, options: &JsValue, method: &str) -> Result<Client, Error> {
    let settings = settings(options, method)?;
    let token = string_option(auth, "accessToken", method)?
        .ok_or_else(|| Error::no_auth(method, "token auth needs accessToken"))?;
    let domain = string_option(auth, "domain", method)?;
    let endpoint = string_option(auth, "clientEndpoint", method)?;
    let refresh = match option(auth, "refresh", method)? {
        None => None,
        Some(f) if f.is_function() => Some(f.unchecked_into::<Function>()),
        Some(_) => return Err(invalid_option(method, "refresh", "must be a function")),
    };
    let auth = Auth::token(
        domain.as_deref(),
        endpoint.as_deref(),
        &token,
        settings.allow_insecure_http,
    )
    .map_err(|e| e.for_method(method))?;
    let refresher = refresh.map(|f| tokens::refresher(f, settings.refresh_ms));
    let core = many::configured(Core::new(Fetch, auth, refresher), options, method)?;
    Ok(Client::with(core, &settings))
}

/// A client over a loaded BX24.js: waits for `BX24.init` (at most `initTimeoutMs`),
/// then reads its token before every call.
async fn bx24_client(
    bx24: JsValue,
    options: JsValue,
    method: &'static str,
) -> Result<Client, Error> {
    let settings = settings(&options, method)?;
    let init_ms = ms_option(
        &options,
        "initTimeoutMs",
        method,
        DEFAULT_REFRESH_TIMEOUT_MS,
    )?;
    let protocol = match string_option(&options, "protocol", method)?.as_deref() {
        None => None,
        Some("https") => Some("https"),
        Some("http") => Some("http"),
        Some(_) => {
            return Err(invalid_option(
                method,
                "protocol",
                "must be 'https' or 'http'",
            ))
        }
    };
    if !bx24.is_object() {
        return Err(Error::no_auth(method, "BX24 is not loaded"));
    }
    tokens::bx24_callback(&bx24, "init", init_ms)
        .await
        .map_err(|e| Error::no_auth(method, e))?;
    let (auth, refresh, current) = tokens::bx24_source(&bx24, protocol, settings.refresh_ms)
        .map_err(|e| e.for_method(method))?;
    let core = Core::new(Fetch, auth, Some(refresh)).with_current(current);
    let core = many::configured(core, &options, method)?;
    Ok(Client::with(core, &settings))
}

#[wasm_bindgen]
impl Client {
    /// A client for an inbound webhook URL `https://{portal}/rest/{user}/{secret}/`.
    #[wasm_bindgen(js_name = fromWebhook)]
    pub fn from_webhook(url: JsValue, options: JsValue) -> Result<Client, JsValue> {
        let method = "Client.fromWebhook";
        let url = url
            .as_string()
            .ok_or_else(|| to_js(Error::no_auth(method, "the webhook URL must be a string")))?;
        webhook_client(&url, &options, method).map_err(to_js)
    }

    /// A client for an OAuth access token (`{domain | clientEndpoint, accessToken,
    /// refresh?}`).
    #[wasm_bindgen(js_name = fromToken)]
    pub fn from_token(auth: JsValue, options: JsValue) -> Result<Client, JsValue> {
        token_client(&auth, &options, "Client.fromToken").map_err(to_js)
    }

    /// A client for an app inside a Bitrix24 iframe with BX24.js loaded.
    #[wasm_bindgen(js_name = fromBx24)]
    pub fn from_bx24(bx24: JsValue, options: JsValue) -> Promise {
        promise(async move {
            bx24_client(bx24, options, "Client.fromBx24")
                .await
                .map(JsValue::from)
        })
    }

    /// A client for an app inside a Bitrix24 iframe, without BX24.js, from the
    /// parent's `getInitData` answer (`init`), the frame's `window.name` (`name`), and
    /// `refresh`, which asks the parent for `refreshAuth` and resolves to its answer.
    /// The JS layer holds the channel to the parent ([`frame_origin`],
    /// [`frame_command`], [`frame_reply`]).
    #[wasm_bindgen(js_name = fromFrameInit)]
    pub fn from_frame_init(
        name: JsValue,
        init: JsValue,
        refresh: JsValue,
        options: JsValue,
    ) -> Result<Client, JsValue> {
        frame_client(&name, &init, &refresh, &options).map_err(to_js)
    }

    /// The portal's origin (never the secret).
    #[wasm_bindgen(getter)]
    pub fn portal(&self) -> String {
        self.core.origin()
    }

    /// How many times this client has refreshed its access token.
    #[wasm_bindgen(getter)]
    pub fn refreshes(&self) -> f64 {
        self.core.refreshes() as f64
    }

    /// Starts a call. `kind` 0: a typed method (`name`, its JS name; `params`, their
    /// JSON text as `typed` reads it); 1: any REST method (`call()`, `params` as
    /// `call_params` reads them); 2: the same for one page (`callPage`: the result
    /// with `total` and `next`).
    ///
    /// Returns `"slot\ntimeoutMs\nhasSignal\nurl\nbody"` when the first attempt can
    /// be sent at once: the JS layer sends it with its `post` (see
    /// `transport.rs`) under the call's timeout and the caller's signal
    /// ([`Client::signal`]), and hands the answer to
    /// [`Client::finish`] or its failure to [`Client::fail`]. Without url and body, the
    /// call must wait first (the limiter, a due refresh): [`Client::resume`] runs it.
    /// A Promise of the result's JSON text for a message to verify (the module runs it
    /// whole, `verified_add`); an error record when the call is refused before
    /// sending.
    pub fn begin(&self, name: JsValue, params: JsValue, options: JsValue, kind: u32) -> JsValue {
        let name = name.as_string().unwrap_or_default();
        self.start_call(&name, &params, &options, kind)
            .unwrap_or_else(|e| to_js(self.core.redact(e)))
    }

    /// The caller's `AbortSignal` of the call in `slot` (checked by [`Client::begin`]).
    pub fn signal(&self, slot: u32) -> JsValue {
        self.pending
            .borrow()
            .get(slot as usize)
            .and_then(|p| p.as_ref()?.signal.clone())
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// The answer to the attempt in `slot`: its status, its body's text, and the
    /// `Response` (its content type is read only when the body is not JSON).
    /// Returns the result's JSON text, an error record, or `undefined`: call
    /// [`Client::resume`].
    pub fn finish(&self, slot: u32, status: f64, text: JsValue, response: JsValue) -> JsValue {
        self.settle(slot, |_| Ok(transport::response(status, &text, &response)))
    }

    /// The attempt in `slot` got no answer: `cause` is what `fetch` or reading the
    /// body threw; `sent`, whether `fetch` had been called; `stop`, why the JS layer
    /// aborted it: 0 it did not, 1 the timeout, 2 the caller's signal, 3 the signal
    /// could not be listened to. Returns as [`Client::finish`] does.
    pub fn fail(&self, slot: u32, sent: bool, cause: JsValue, stop: u32) -> JsValue {
        if stop == 3 {
            let method = self
                .take(slot)
                .map_or_else(String::new, |p| p.prepared.method);
            let why = format!("is not a usable AbortSignal ({})", interop::text(&cause));
            return to_js(invalid_option(&method, "signal", &why));
        }
        self.settle(slot, |p| {
            Err(match stop {
                1 => TransportError::Timeout {
                    ms: p.timeout_ms,
                    sent,
                },
                2 => TransportError::Aborted { sent },
                _ => TransportError::Network {
                    cause: interop::text(&cause),
                    sent,
                },
            })
        })
    }

    /// Runs the call in `slot` on from where it stands (waits, refreshes, attempts),
    /// within the `remaining_ms` of its timeout and the caller's signal. Resolves to the
    /// result's JSON text (`params::answer_text`).
    pub fn resume(&self, slot: u32, remaining_ms: f64) -> Promise {
        let (core, pending) = (self.core.clone(), self.take(slot));
        promise(async move {
            let p = pending.ok_or_else(|| Error::no_auth("call", "this call has already ended"))?;
            let (method, write) = (p.prepared.method.as_str(), p.prepared.write);
            let left = remaining_ms.clamp(0.0, f64::from(p.timeout_ms)) as u32;
            if left == 0 {
                let stop = TransportError::Timeout {
                    ms: p.timeout_ms,
                    sent: false,
                };
                return Err(core.redact(stop.into_error(method, write)));
            }
            let bounds = start(p.signal, left, method)?.labelled(p.timeout_ms);
            let success = core.resume(&p.prepared, &bounds, p.run).await?;
            params::answer_text(&p.prepared, success)
                .map(JsValue::from)
                .map_err(|e| core.redact(e))
        })
    }
}

/// `crmMessageAdd(params, options)` (`params` as JSON text, `typed`) with the auth in
/// `options`: `webhookUrl`, `accessToken` with `domain`/`clientEndpoint`, `bx24`, or a
/// loaded `globalThis.BX24`. `timeoutMs` and `signal` bound the whole call, the wait
/// for `BX24.init` included. Resolves to the new message id's JSON text
/// (`params::answer_text`).
#[wasm_bindgen(js_name = crmMessageAdd)]
pub fn crm_message_add(params: JsValue, options: JsValue) -> Promise {
    let method = MESSAGE_ADD;
    promise(async move {
        // Validation comes first, as on the portal: bad params are reported even when
        // the auth is also missing.
        let prepared = typed("crmMessageAdd", &params)?;
        let (signal, timeout_ms) = call_limits(&options, method, DEFAULT_TIMEOUT_MS)?;
        let bounds = start(signal.clone(), timeout_ms, method)?;
        let client = if let Some(url) = string_option(&options, "webhookUrl", method)? {
            webhook_client(&url, &options, method)?
        } else if option(&options, "accessToken", method)?.is_some() {
            token_client(&options, &options, method)?
        } else {
            let bx24 = match option(&options, "bx24", method)? {
                Some(b) => Some(b),
                None => get(&js_sys::global(), "BX24"),
            };
            let Some(bx24) = bx24 else {
                return Err(Error::no_auth(
                    method,
                    "pass options.webhookUrl, options.accessToken with domain or clientEndpoint, options.client, or load BX24.js",
                ));
            };
            bounds
                .bound(bx24_client(bx24, options.clone(), method))
                .await
                .map_err(|stop| stop.into_error(method, true))??
        };
        if let Some(settle) = verification(&options, client.verify, timeout_ms, method)? {
            drop(bounds);
            let steps = JsSteps {
                signal,
                timeout_ms,
                settle_ms: settle,
                method,
            };
            return verified_add(&client.core, &prepared, &steps, settle).await;
        }
        client
            .core
            .call(&prepared, &bounds)
            .await
            .map(|d| d.json_text().into())
    })
}

/// Installs the JS layer's `post(url, body, signal)`, the module's one way to the
/// network (`transport::install`); called once when the module is loaded.
#[wasm_bindgen]
pub fn install(post: JsValue) {
    if let Some(post) = post.dyn_ref::<Function>() {
        transport::install(post.clone());
    }
}

/// The JS names of the typed methods, in table order (the JS layer's list is checked
/// against it).
#[wasm_bindgen]
pub fn methods() -> Array {
    params::methods::<Json>()
        .iter()
        .map(|m| JsValue::from_str(m.js))
        .collect()
}
