//! The JavaScript surface: converts JS values to the core's types and delegates.
//!
//! Nothing here decides anything; validation, encoding, envelope reading and retry
//! decisions are in the core modules. Every failure becomes a rejected Promise with a
//! real `Error` named `Bitrix24Error`; no input can make the module panic.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::AbortSignal;

use crate::auth::{Auth, Webhook};
use crate::client::{self, RefreshFuture, Refresher, Token};
use crate::error::{codes, Error};
use crate::frame::{params as frame_params, Param};
use crate::frame_channel::Channel;
use crate::json::{JsonView, Shape};
use crate::params::{self, Decoded, Prepared};
use crate::transport::{callback, js_text, settle, CallOptions, Fetch};

const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const DEFAULT_REFRESH_TIMEOUT_MS: u32 = 10_000;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** The kinds of CRM item an open-line chat can belong to (any letter case is accepted). */
export type CrmEntityType = 'lead' | 'deal' | 'company' | 'contact';

/** Parameters of `crmMessageAdd` (sent as CRM_ENTITY_TYPE, CRM_ENTITY, USER_ID, CHAT_ID, MESSAGE). */
export interface CrmMessageAddParams {
  /** The CRM item's type. */
  crmEntityType: CrmEntityType;
  /** The CRM item's id. */
  crmEntity: number | string;
  /** The sender: a user or bot that is a member of the chat. */
  userId: number | string;
  /** The open-line chat of the item. */
  chatId: number | string;
  /** The message text (BB-codes allowed). */
  message: string;
}

/** A CRM item: `{crmEntityType, crmEntity}`. */
export interface CrmEntityParams {
  crmEntityType: CrmEntityType;
  crmEntity: number | string;
}

/** Parameters of `crmChatGet`. */
export interface CrmChatGetParams extends CrmEntityParams {
  /** Only chats with an active dialog (default true). */
  activeOnly?: boolean;
}

/** Parameters of `crmChatUserAdd` and `crmChatUserDelete`. */
export interface CrmChatUserParams extends CrmEntityParams {
  userId: number | string;
  /** The chat; default: the item's last chat. */
  chatId?: number | string;
}

/** Parameters of `crmLeadCreate`. */
export interface CrmLeadCreateParams {
  chatId: number | string;
}

/** One open-line chat of a CRM item. */
export interface CrmChat {
  chatId: number;
  connectorId: string;
  connectorTitle: string;
}

/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call; it then rejects with code `ABORTED`. */
  signal?: AbortSignal;
  /** Milliseconds before the call rejects with code `TIMEOUT` (default: the client's, 30000). */
  timeoutMs?: number;
}

/** What a refresh function may resolve to: the new access token, or an object holding it. */
export type RefreshResult = string | { accessToken: string } | { access_token: string };

/** Token auth: the portal and an OAuth access token. */
export interface TokenAuth {
  /** The portal host, e.g. `portal.bitrix24.com` (https is assumed). */
  domain?: string;
  /** The REST base from the OAuth answer, e.g. `https://portal.bitrix24.com/rest/`. */
  clientEndpoint?: string;
  /** The access token, sent as `auth` in the request body. */
  accessToken: string;
  /** Called once for all calls in flight when the portal says `expired_token` or `invalid_token`. */
  refresh?: () => RefreshResult | Promise<RefreshResult>;
}

/** Options of `Client.fromWebhook` and `Client.fromToken`. */
export interface ClientOptions {
  /** Default timeout of every call, in milliseconds (default 30000). */
  timeoutMs?: number;
  /** Timeout of one token refresh, in milliseconds (default 10000). */
  refreshTimeoutMs?: number;
}

/** What `BX24.getAuth()` returns; `expires_in` is the absolute expiry in milliseconds. */
export interface Bx24Auth {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
  domain: string;
  member_id?: string;
}

/** The part of BX24.js the client uses. */
export interface Bx24Like {
  init(callback: () => void): void;
  getAuth(): Bx24Auth | false;
  refreshAuth(callback: (auth: Bx24Auth | false) => void): void;
}

/** Where a framed app is shown, from the portal's `PLACEMENT` and `PLACEMENT_OPTIONS`. */
export interface Placement {
  /** e.g. `CRM_DEAL_DETAIL_TAB`, or `DEFAULT` for the app's own page. */
  placement: string;
  /** e.g. `{ ID: '288' }` for a CRM card tab. */
  options: Record<string, unknown>;
}

/** Options of `Client.fromBx24`. */
export interface Bx24ClientOptions extends ClientOptions {
  /** The portal's scheme (default `https`). */
  protocol?: 'https' | 'http';
  /** How long to wait for `BX24.init` (default 10000 ms). */
  initTimeoutMs?: number;
}

/** Options of the free `crmMessageAdd`: one form of auth, or a client, plus call options.
 * With none, a loaded `globalThis.BX24` is used. */
export type CrmMessageAddOptions = CallOptions & (
  | { webhookUrl: string }
  | TokenAuth
  | { client: Client }
  | ({ bx24?: Bx24Like } & Bx24ClientOptions)
);

/** Stable error codes: the portal's as sent, and the client's own. */
export type Bitrix24ErrorCode =
  | 'ERROR_ARGUMENT' | 'ACCESS_DENIED' | 'CHAT_NOT_IN_CRM' | 'MESSAGE_ADD_ERROR' | 'CANCELED'
  | 'CRM_CHAT_EMPTY_CRM_DATA' | 'CRM_CHAT_EMPTY_USER' | 'CRM_CHAT_USER_NOT_ACTIVE' | 'WRONG_REQUEST'
  | 'expired_token' | 'invalid_token' | 'NO_AUTH_FOUND' | 'INVALID_CREDENTIALS' | 'insufficient_scope'
  | 'QUERY_LIMIT_EXCEEDED' | 'OPERATION_TIME_LIMIT' | 'ERROR_METHOD_NOT_FOUND' | 'INTERNAL_SERVER_ERROR'
  | 'NETWORK_ERROR' | 'TIMEOUT' | 'ABORTED' | 'BAD_RESPONSE' | 'NO_AUTH'
  | (string & {});

/** What the caller can do about an error. */
export type Bitrix24ErrorKind =
  | 'invalidArgument' | 'auth' | 'rateLimited' | 'rejected' | 'network' | 'timeout' | 'aborted' | 'badResponse';

/** Every rejection of this package is an `Error` with these fields. */
export interface Bitrix24Error extends Error {
  name: 'Bitrix24Error';
  /** The portal's code as sent (case kept), or one of the client's own. */
  code: Bitrix24ErrorCode;
  /** What the caller can do about it. */
  kind: Bitrix24ErrorKind;
  /** HTTP status of the answer, or 0 when none was read. */
  status: number;
  /** The REST method called. */
  method: string;
  /** The portal's `error_description`, or the client's text. */
  description: string;
  /** The parameter named by the portal or by validation (wire spelling, e.g. `CRM_ENTITY`). */
  argument?: string;
  /** True when repeating the same call cannot deliver a message twice and may succeed. */
  retryable: boolean;
}
"#;

/// Builds the JS `Error` for `e`: name `Bitrix24Error` plus the fields of [`Details`].
fn to_js(e: Error) -> JsValue {
    let d = e.details();
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("Bitrix24Error");
    let o: &JsValue = err.as_ref();
    set(o, "code", JsValue::from_str(&d.code));
    set(o, "kind", JsValue::from_str(e.kind()));
    set(o, "status", JsValue::from(d.status));
    set(o, "method", JsValue::from_str(&d.method));
    set(o, "description", JsValue::from_str(&d.description));
    if let Some(a) = &d.argument {
        set(o, "argument", JsValue::from_str(a));
    }
    set(o, "retryable", JsValue::from_bool(d.retryable));
    err.into()
}

fn invalid_option(method: &str, name: &str, what: &str) -> Error {
    Error::argument(
        method,
        codes::ERROR_ARGUMENT,
        name,
        format!("options.{name} {what}"),
    )
}

/// Reads `target[key]`, treating `undefined` and `null` (and a non-object target) as absent.
fn field(target: &JsValue, key: &str) -> Option<JsValue> {
    if !target.is_object() && !target.is_function() {
        return None;
    }
    Reflect::get(target, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn string_field(target: &JsValue, key: &str, method: &str) -> Result<Option<String>, Error> {
    match field(target, key) {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| invalid_option(method, key, "must be a string")),
    }
}

fn ms_field(target: &JsValue, key: &str, method: &str) -> Result<Option<u32>, Error> {
    match field(target, key) {
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

/// A JS value read in place as JSON: the caller's params, or a parsed response.
/// Reading goes through `Reflect`, so getters, proxies and odd types cannot trap.
#[derive(Clone)]
pub struct JsJson(pub JsValue);

impl JsonView for JsJson {
    fn shape(&self) -> Shape {
        let v = &self.0;
        if v.is_undefined() || v.is_null() {
            Shape::Null
        } else if let Some(b) = v.as_bool() {
            Shape::Bool(b)
        } else if let Some(n) = v.as_f64() {
            Shape::Number(n)
        } else if let Some(s) = v.as_string() {
            Shape::String(s)
        } else if Array::is_array(v) {
            Shape::Array(v.unchecked_ref::<Array>().length())
        } else if v.is_object() {
            Shape::Object
        } else {
            Shape::Other
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        field(&self.0, key).map(JsJson)
    }

    fn at(&self, index: u32) -> Option<Self> {
        if !Array::is_array(&self.0) {
            return None;
        }
        Reflect::get_u32(&self.0, index)
            .ok()
            .filter(|v| !v.is_undefined())
            .map(JsJson)
    }

    fn keys(&self) -> Vec<String> {
        if !self.0.is_object() {
            return Vec::new();
        }
        Reflect::own_keys(&self.0)
            .map(|keys| keys.iter().filter_map(|k| k.as_string()).collect())
            .unwrap_or_default()
    }
}

/// The JSON text of `call()` params; refuses what JSON cannot hold.
fn params_json(method: &str, params: &JsValue) -> Result<Option<String>, Error> {
    if params.is_undefined() || params.is_null() {
        return Ok(None);
    }
    let bad = |why: &str| {
        Error::argument(
            method,
            codes::ERROR_ARGUMENT,
            "params",
            format!("params must be a plain object of JSON values ({why})"),
        )
    };
    if !params.is_object() || Array::is_array(params) {
        return Err(bad("not an object"));
    }
    // Throws on cycles and BigInt; the text is what goes on the wire.
    let text = js_sys::JSON::stringify(params).map_err(|e| bad(&js_text(&e)))?;
    text.as_string()
        .map(Some)
        .ok_or_else(|| bad("not serializable"))
}

fn set(target: &JsValue, key: &str, value: JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), &value);
}

/// Converts a decoded result to JS: ids are numbers, chats plain objects.
fn result_to_js(v: Decoded<JsJson>) -> JsValue {
    match v {
        Decoded::Number(n) => JsValue::from_f64(n as f64),
        Decoded::Bool(b) => JsValue::from_bool(b),
        Decoded::Raw(JsJson(v)) => v,
        Decoded::Chats(chats) => chats
            .into_iter()
            .map(|c| {
                let o: JsValue = Object::new().into();
                set(&o, "chatId", JsValue::from_f64(c.chat_id as f64));
                set(&o, "connectorId", JsValue::from_str(&c.connector_id));
                set(&o, "connectorTitle", JsValue::from_str(&c.connector_title));
                o
            })
            .collect::<Array>()
            .into(),
    }
}

type Core = client::Client<Fetch>;

/// A Bitrix24 portal client: holds the auth (and refreshes a token once for all calls
/// in flight) and the default timeout. Create it with `Client.fromWebhook` or
/// `Client.fromToken`.
#[wasm_bindgen]
pub struct Client {
    core: Rc<Core>,
    timeout_ms: u32,
    frame: Option<Rc<Frame>>,
}

/// A client opened inside a portal's iframe: its channel to the parent and the
/// parent's `getInitData` answer.
struct Frame {
    channel: Rc<Channel>,
    init: JsValue,
    timeout_ms: u32,
}

/// A token and its expiry from a frame answer (`AUTH_ID`, `AUTH_EXPIRES` in seconds).
fn frame_token(answer: &JsValue) -> Option<Token> {
    let access_token = field(answer, "AUTH_ID")?.as_string()?;
    let seconds = field(answer, "AUTH_EXPIRES").and_then(|v| {
        v.as_f64().or_else(|| {
            v.as_string()
                .and_then(|s| s.trim().parse::<u32>().ok().map(f64::from))
        })
    });
    Some(Token {
        access_token,
        expires_at_ms: seconds.map(|s| js_sys::Date::now() + s * 1000.0),
    })
}

/// Auth from the parent window, without BX24.js: `getInitData`, then `refreshAuth`
/// once for all calls in flight when the token expires.
async fn frame_client(options: &JsValue) -> Result<Client, Error> {
    let method = "Client.fromFrame";
    let (timeout_ms, refresh_ms) = client_options(options, method)?;
    let channel = Channel::open().map_err(|e| Error::no_auth(method, e))?;
    let init = channel
        .send("getInitData", "", refresh_ms)
        .await
        .map_err(|e| Error::no_auth(method, e))?;
    let token =
        frame_token(&init).ok_or_else(|| Error::no_auth(method, "getInitData gave no AUTH_ID"))?;
    let https = match field(&init, "PROTOCOL") {
        Some(p) => p.as_f64() == Some(1.0) || p.as_string().as_deref() == Some("1"),
        None => channel.boot.https,
    };
    let domain = field(&init, "DOMAIN")
        .and_then(|d| d.as_string())
        .unwrap_or_else(|| channel.boot.domain.clone());
    let path = field(&init, "PATH")
        .and_then(|p| p.as_string())
        .unwrap_or_else(|| "/rest".to_owned());
    let scheme = if https { "https" } else { "http" };
    let endpoint = format!("{scheme}://{domain}{}/", path.trim_end_matches('/'));
    let auth = Auth::token(None, Some(&endpoint), &token.access_token)
        .map_err(|e| with_method(e, method))?;
    let link = channel.clone();
    let refresh: Refresher = Box::new(move || -> RefreshFuture {
        let channel = link.clone();
        async move {
            let answer = channel.send("refreshAuth", "", refresh_ms).await?;
            frame_token(&answer).ok_or_else(|| "refreshAuth gave no AUTH_ID".to_owned())
        }
        .boxed_local()
    });
    let core = client::Client::new(Fetch, auth, Some(refresh)).with_expiry(token.expires_at_ms);
    Ok(Client {
        core: Rc::new(core),
        timeout_ms,
        frame: Some(Rc::new(Frame {
            channel,
            init,
            timeout_ms: refresh_ms,
        })),
    })
}

impl Client {
    /// Sends a frame command; rejects with `NO_AUTH` outside a frame client.
    fn frame_command(
        &self,
        method: &'static str,
        command: &'static str,
        params: String,
    ) -> Promise {
        let frame = self.frame.clone();
        promise(async move {
            let frame = frame.ok_or_else(|| {
                to_js(Error::no_auth(
                    method,
                    "only a client from Client.fromFrame talks to the parent window",
                ))
            })?;
            frame
                .channel
                .send(command, &params, frame.timeout_ms)
                .await
                .map_err(|e| to_js(Error::no_auth(method, e)))
        })
    }
}

fn client_options(options: &JsValue, method: &str) -> Result<(u32, u32), Error> {
    Ok((
        ms_field(options, "timeoutMs", method)?.unwrap_or(DEFAULT_TIMEOUT_MS),
        ms_field(options, "refreshTimeoutMs", method)?.unwrap_or(DEFAULT_REFRESH_TIMEOUT_MS),
    ))
}

/// Wraps the caller's refresh function: called with no arguments, its (awaited) value
/// is a token string, or an object with `accessToken`/`access_token` and optionally
/// `expires` (Unix seconds) or `expires_in` (seconds from now), as OAuth answers.
fn refresher(f: Function, timeout_ms: u32) -> Refresher {
    Box::new(move || -> RefreshFuture {
        let f = f.clone();
        async move {
            let value = f
                .call0(&JsValue::UNDEFINED)
                .map_err(|e| format!("the refresh function threw: {}", js_text(&e)))?;
            let value = settle(value, timeout_ms, "the refresh function").await?;
            let number = |k: &str| field(&value, k).and_then(|v| v.as_f64());
            let expires_at_ms = number("expires")
                .map(|s| s * 1000.0)
                .or_else(|| number("expires_in").map(|s| js_sys::Date::now() + s * 1000.0));
            value
                .as_string()
                .or_else(|| field(&value, "accessToken").and_then(|v| v.as_string()))
                .or_else(|| field(&value, "access_token").and_then(|v| v.as_string()))
                .map(|access_token| Token {
                    access_token,
                    expires_at_ms,
                })
                .ok_or_else(|| {
                    "the refresh function must resolve to a token string or {accessToken}"
                        .to_owned()
                })
        }
        .boxed_local()
    })
}

/// The token BX24.js holds now: `getAuth()` gives `{access_token, expires_in, domain}`
/// where `expires_in` is the absolute expiry in milliseconds, or `false` once expired.
fn bx24_token(bx24: &JsValue) -> Option<(Token, String)> {
    let get_auth: Function = field(bx24, "getAuth")?.dyn_into().ok()?;
    let auth = get_auth.call0(bx24).ok()?;
    let access_token = field(&auth, "access_token")?.as_string()?;
    let domain = field(&auth, "domain")
        .and_then(|d| d.as_string())
        .unwrap_or_default();
    let expires_at_ms = field(&auth, "expires_in").and_then(|v| v.as_f64());
    Some((
        Token {
            access_token,
            expires_at_ms,
        },
        domain,
    ))
}

/// Auth from a loaded BX24.js: waits for `BX24.init`, reads `getAuth()` before every
/// call, and refreshes with `BX24.refreshAuth` (once for all calls in flight).
fn bx24_client(
    bx24: JsValue,
    options: JsValue,
    method: &'static str,
) -> LocalBoxFuture<'static, Result<Client, Error>> {
    async move { bx24_client_inner(bx24, &options, method).await }.boxed_local()
}

async fn bx24_client_inner(
    bx24: JsValue,
    options: &JsValue,
    method: &str,
) -> Result<Client, Error> {
    let (timeout_ms, refresh_ms) = client_options(options, method)?;
    let init_ms = ms_field(options, "initTimeoutMs", method)?.unwrap_or(DEFAULT_REFRESH_TIMEOUT_MS);
    let protocol = match string_field(options, "protocol", method)?.as_deref() {
        None | Some("https") => "https",
        Some("http") => "http",
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
    callback(&bx24, "init", init_ms)
        .await
        .map_err(|e| Error::no_auth(method, e))?;
    let (token, domain) = bx24_token(&bx24)
        .ok_or_else(|| Error::no_auth(method, "BX24.getAuth() gave no access token"))?;
    let auth = Auth::token(
        Some(&format!("{protocol}://{domain}")),
        None,
        &token.access_token,
    )
    .map_err(|e| with_method(e, method))?;
    let source = bx24.clone();
    let refresh: Refresher = Box::new(move || -> RefreshFuture {
        let bx24 = source.clone();
        async move {
            callback(&bx24, "refreshAuth", refresh_ms).await?;
            bx24_token(&bx24)
                .map(|(token, _)| token)
                .ok_or_else(|| "BX24.refreshAuth gave no access token".to_owned())
        }
        .boxed_local()
    });
    let core = client::Client::new(Fetch, auth, Some(refresh))
        .with_current(Box::new(move || bx24_token(&bx24).map(|(token, _)| token)));
    Ok(Client {
        core: Rc::new(core),
        timeout_ms,
        frame: None,
    })
}

fn token_auth(auth: &JsValue, method: &str) -> Result<(Auth, Option<Function>), Error> {
    let token = string_field(auth, "accessToken", method)?
        .ok_or_else(|| Error::no_auth(method, "token auth needs accessToken"))?;
    let domain = string_field(auth, "domain", method)?;
    let endpoint = string_field(auth, "clientEndpoint", method)?;
    let refresh = match field(auth, "refresh") {
        None => None,
        Some(f) => Some(
            f.dyn_into::<Function>()
                .map_err(|_| invalid_option(method, "refresh", "must be a function"))?,
        ),
    };
    let auth = Auth::token(domain.as_deref(), endpoint.as_deref(), &token)
        .map_err(|e| with_method(e, method))?;
    Ok((auth, refresh))
}

fn with_method(e: Error, method: &str) -> Error {
    let d = e.details().clone();
    Error::no_auth(method, d.description)
}

fn webhook_auth(url: &str, method: &str) -> Result<Auth, Error> {
    Webhook::parse(url)
        .map(Auth::Webhook)
        .map_err(|e| with_method(e, method))
}

impl Client {
    fn new(
        auth: Auth,
        refresh: Option<Function>,
        options: &JsValue,
        method: &str,
    ) -> Result<Client, Error> {
        let (timeout_ms, refresh_ms) = client_options(options, method)?;
        let refresher = refresh.map(|f| refresher(f, refresh_ms));
        Ok(Client {
            core: Rc::new(client::Client::new(Fetch, auth, refresher)),
            timeout_ms,
            frame: None,
        })
    }

    /// Validates, then runs the call; every failure is a rejected `Bitrix24Error`.
    fn run(&self, prepared: Result<Prepared, Error>, options: JsValue) -> Promise {
        run(self.core.clone(), self.timeout_ms, prepared, options)
    }
}

fn run(
    core: Rc<Core>,
    default_timeout: u32,
    prepared: Result<Prepared, Error>,
    options: JsValue,
) -> Promise {
    promise(async move {
        let prepared = prepared.map_err(to_js)?;
        let call = call_options(&options, &prepared.method, default_timeout).map_err(to_js)?;
        let value = core.call(&prepared, &call).await.map_err(to_js)?;
        Ok(result_to_js(value))
    })
}

fn call_options(
    options: &JsValue,
    method: &str,
    default_timeout: u32,
) -> Result<CallOptions, Error> {
    let signal = match field(options, "signal") {
        None => None,
        Some(s) => Some(
            s.dyn_into::<AbortSignal>()
                .map_err(|_| invalid_option(method, "signal", "must be an AbortSignal"))?,
        ),
    };
    Ok(CallOptions {
        signal,
        timeout_ms: ms_field(options, "timeoutMs", method)?.unwrap_or(default_timeout),
    })
}

#[wasm_bindgen]
impl Client {
    /// A client for an inbound webhook URL `https://{portal}/rest/{user}/{secret}/`.
    /// The URL is a secret: it never appears in errors.
    #[wasm_bindgen(js_name = fromWebhook)]
    pub fn from_webhook(
        #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: Option<Object>,
    ) -> Result<Client, JsValue> {
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let url = url.as_string().unwrap_or_default();
        webhook_auth(&url, "Client.fromWebhook")
            .and_then(|auth| Client::new(auth, None, &options, "Client.fromWebhook"))
            .map_err(to_js)
    }

    /// A client for an OAuth access token (`{domain | clientEndpoint, accessToken,
    /// refresh?}`); with `refresh`, an expired token is refreshed once for all calls
    /// in flight and each of them is sent again once.
    #[wasm_bindgen(js_name = fromToken)]
    pub fn from_token(
        #[wasm_bindgen(unchecked_param_type = "TokenAuth")] auth: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: Option<Object>,
    ) -> Result<Client, JsValue> {
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        token_auth(&auth, "Client.fromToken")
            .and_then(|(auth, refresh)| Client::new(auth, refresh, &options, "Client.fromToken"))
            .map_err(to_js)
    }

    /// A client for an app inside a Bitrix24 iframe with BX24.js loaded: waits for
    /// `BX24.init`, takes the token from `BX24.getAuth()` before every call, and on
    /// expiry calls `BX24.refreshAuth` once for all calls in flight.
    #[wasm_bindgen(js_name = fromBx24, unchecked_return_type = "Promise<Client>")]
    pub fn from_bx24(
        #[wasm_bindgen(unchecked_param_type = "Bx24Like")] bx24: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Bx24ClientOptions")] options: Option<
            Object,
        >,
    ) -> Promise {
        let options = opt(options);
        promise(async move {
            let client = bx24_client(bx24, options, "Client.fromBx24")
                .await
                .map_err(to_js)?;
            Ok(client.into())
        })
    }

    /// A client for an app inside a Bitrix24 iframe, without BX24.js: speaks the
    /// parent-window protocol itself (`window.name` bootstrap, `getInitData`,
    /// `refreshAuth`), accepting answers only from the portal's origin.
    #[wasm_bindgen(js_name = fromFrame, unchecked_return_type = "Promise<Client>")]
    pub fn from_frame(
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: Option<Object>,
    ) -> Promise {
        let options = opt(options);
        promise(async move {
            let client = frame_client(&options).await.map_err(to_js)?;
            Ok(client.into())
        })
    }

    /// Where a frame client's app is shown: `{placement, options}` from the portal
    /// (`PLACEMENT`, `PLACEMENT_OPTIONS`), or `undefined` for other clients.
    #[wasm_bindgen(getter, unchecked_return_type = "Placement | undefined")]
    pub fn placement(&self) -> JsValue {
        let Some(frame) = &self.frame else {
            return JsValue::UNDEFINED;
        };
        let name = field(&frame.init, "PLACEMENT").unwrap_or_else(|| JsValue::from_str("DEFAULT"));
        let options = field(&frame.init, "PLACEMENT_OPTIONS")
            .map(|o| match o.as_string() {
                Some(text) => js_sys::JSON::parse(&text).unwrap_or(o),
                None => o,
            })
            .unwrap_or_else(|| Object::new().into());
        let out: JsValue = Object::new().into();
        set(&out, "placement", name);
        set(&out, "options", options);
        out
    }

    /// Fits the iframe to the page's content height (the parent's `resizeWindow`).
    #[wasm_bindgen(js_name = fitWindow, unchecked_return_type = "Promise<{ width: number | string; height: number }>")]
    pub fn fit_window(&self) -> Promise {
        let height = field(&js_sys::global(), "document")
            .and_then(|d| field(&d, "documentElement"))
            .and_then(|e| field(&e, "scrollHeight"))
            .and_then(|h| h.as_f64())
            .unwrap_or(0.0);
        let params = frame_params(&[
            ("width", Param::Str("100%")),
            ("height", Param::Int(height as i64)),
        ]);
        self.frame_command("fitWindow", "resizeWindow", params)
    }

    /// Sets the title the portal shows above the app (the parent's `setTitle`).
    #[wasm_bindgen(js_name = setTitle, unchecked_return_type = "Promise<unknown>")]
    pub fn set_title(&self, title: &str) -> Promise {
        self.frame_command(
            "setTitle",
            "setTitle",
            frame_params(&[("title", Param::Str(title))]),
        )
    }

    /// The portal's origin, e.g. `https://portal.bitrix24.com` (never the secret).
    #[wasm_bindgen(getter)]
    pub fn portal(&self) -> String {
        self.core.origin()
    }

    /// How many times this client has refreshed its access token.
    #[wasm_bindgen(getter)]
    pub fn refreshes(&self) -> f64 {
        self.core.refreshes() as f64
    }

    /// `imopenlines.crm.message.add`: sends `message` from `userId` to the open-line
    /// chat `chatId` of a CRM item; resolves to the new message id.
    #[wasm_bindgen(js_name = crmMessageAdd, unchecked_return_type = "Promise<number>")]
    pub fn crm_message_add(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CrmMessageAddParams")] params: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        self.run(params::message_add(&JsJson(params)), opt(options))
    }

    /// `imopenlines.crm.chat.get`: the open-line chats of a CRM item.
    #[wasm_bindgen(js_name = crmChatGet, unchecked_return_type = "Promise<CrmChat[]>")]
    pub fn crm_chat_get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CrmChatGetParams")] params: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        self.run(params::chat_get(&JsJson(params)), opt(options))
    }

    /// `imopenlines.crm.chat.getLastId`: the id of the CRM item's last open-line chat.
    #[wasm_bindgen(js_name = crmChatGetLastId, unchecked_return_type = "Promise<number>")]
    pub fn crm_chat_get_last_id(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CrmEntityParams")] params: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        self.run(params::chat_get_last_id(&JsJson(params)), opt(options))
    }

    /// `imopenlines.crm.chat.user.add`: adds a user to the item's chat; resolves to
    /// the chat id (0 when no chat was given and none was found).
    #[wasm_bindgen(js_name = crmChatUserAdd, unchecked_return_type = "Promise<number>")]
    pub fn crm_chat_user_add(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CrmChatUserParams")] params: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        self.run(params::chat_user_add(&JsJson(params)), opt(options))
    }

    /// `imopenlines.crm.chat.user.delete`: removes a user from the item's chat;
    /// resolves to the chat id (0 when none was found).
    #[wasm_bindgen(js_name = crmChatUserDelete, unchecked_return_type = "Promise<number>")]
    pub fn crm_chat_user_delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CrmChatUserParams")] params: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        self.run(params::chat_user_delete(&JsJson(params)), opt(options))
    }

    /// `imopenlines.crm.lead.create`: creates a lead from an open-line chat.
    #[wasm_bindgen(js_name = crmLeadCreate, unchecked_return_type = "Promise<boolean>")]
    pub fn crm_lead_create(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CrmLeadCreateParams")] params: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        self.run(params::lead_create(&JsJson(params)), opt(options))
    }

    /// Any other REST method; resolves to its `result` as the portal sent it. Methods
    /// that are not reads are never repeated after a lost answer.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn call(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] method: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Record<string, unknown>")] params: Option<
            Object,
        >,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: Option<Object>,
    ) -> Promise {
        let name = method.as_string().unwrap_or_default();
        let params: JsValue = params.map_or(JsValue::UNDEFINED, Into::into);
        let prepared = params_json(if name.is_empty() { "call" } else { &name }, &params)
            .and_then(|p| params::raw(&name, p));
        self.run(prepared, opt(options))
    }
}

fn opt(options: Option<Object>) -> JsValue {
    options.map_or(JsValue::UNDEFINED, Into::into)
}

/// Sends a message into the open-line chat of a CRM item
/// (`imopenlines.crm.message.add`) and resolves to the new message id.
///
/// `options` holds one form of auth (`webhookUrl`; `domain`/`clientEndpoint` with
/// `accessToken`; or an existing `client`), plus `signal` and `timeoutMs`.
#[wasm_bindgen(js_name = crmMessageAdd, unchecked_return_type = "Promise<number>")]
pub fn crm_message_add(
    #[wasm_bindgen(unchecked_param_type = "CrmMessageAddParams")] params: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "CrmMessageAddOptions")] options: Option<Object>,
) -> Promise {
    let options = opt(options);
    let method = params::MESSAGE_ADD;
    let prepared = params::message_add(&JsJson(params.clone()));
    if let Some(client) = field(&options, "client") {
        return match delegate(&client, &params, &options) {
            Some(p) => p,
            None => reject(invalid_option(method, "client", "must be a Client")),
        };
    }
    let client = match string_field(&options, "webhookUrl", method) {
        Err(e) => Err(e),
        Ok(Some(url)) => {
            webhook_auth(&url, method).and_then(|a| Client::new(a, None, &options, method))
        }
        Ok(None) if field(&options, "accessToken").is_some() => {
            token_auth(&options, method).and_then(|(a, r)| Client::new(a, r, &options, method))
        }
        Ok(None) => {
            let bx24 = field(&options, "bx24").or_else(|| field(&js_sys::global(), "BX24"));
            if let (Ok(p), Some(bx24)) = (&prepared, bx24) {
                let p = p.clone();
                return promise(async move {
                    let client = bx24_client(bx24, options.clone(), method)
                        .await
                        .map_err(to_js)?;
                    JsFuture::from(client.run(Ok(p), options)).await
                });
            }
            Err(Error::no_auth(
                method,
                "pass options.webhookUrl, options.accessToken with domain or clientEndpoint, options.client, or load BX24.js",
            ))
        }
    };
    match (prepared, client) {
        // Validation comes first, as on the portal: bad params are reported even
        // when the auth is also missing.
        (Err(e), _) | (Ok(_), Err(e)) => reject(e),
        (Ok(p), Ok(c)) => c.run(Ok(p), options),
    }
}

/// Calls `client.crmMessageAdd(params, options)` on a `Client` passed in the options.
fn delegate(client: &JsValue, params: &JsValue, options: &JsValue) -> Option<Promise> {
    let f: Function = field(client, "crmMessageAdd")?.dyn_into().ok()?;
    let promise = f.call2(client, params, options).ok()?;
    promise.dyn_into::<Promise>().ok()
}

/// Runs `future` as a Promise. Every export goes through one boxed future type, so
/// the Promise plumbing is compiled once rather than once per export.
fn promise(
    future: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
) -> Promise {
    let boxed: LocalBoxFuture<'static, Result<JsValue, JsValue>> = Box::pin(future);
    future_to_promise(boxed)
}

fn reject(e: Error) -> Promise {
    Promise::reject(&to_js(e))
}

/// True for the errors this package rejects with (a TypeScript type guard).
#[wasm_bindgen(js_name = isBitrix24Error, unchecked_return_type = "error is Bitrix24Error")]
pub fn is_bitrix24_error(error: JsValue) -> bool {
    error.dyn_ref::<js_sys::Error>().is_some_and(|e| {
        e.name() == "Bitrix24Error" && field(&error, "code").is_some_and(|c| c.is_string())
    })
}
