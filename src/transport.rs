//! The one seam to the network: `POST` a prepared request with the global `fetch`
//! (Node 18+, workers, browsers; never `window`) and read the whole answer.
//!
//! The call's timeout and the caller's `AbortSignal` live here and nowhere else: both
//! abort one internal `AbortController`, so a timed-out or aborted call never leaves
//! a pending Promise behind, and the body read is covered too. The response is read
//! structurally (`status`, `headers.get`, `text()`), so a non-native `fetch`
//! replacement cannot make the module trap.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use futures::future::{select, Either, LocalBoxFuture};
use futures::FutureExt;
use gloo_net::http::Request;
use gloo_timers::callback::Timeout;
use gloo_timers::future::TimeoutFuture;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal};

use crate::client::{Transport, TransportError};
use crate::envelope::{Body, HttpResponse};
use crate::js::JsJson;
use crate::wire::{HttpRequest, CONTENT_TYPE};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, bound without assuming a `Window`.
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(request: &web_sys::Request) -> Result<Promise, JsValue>;
}

/// Per-call options: the caller's signal and the timeout.
pub struct CallOptions {
    /// The caller's `AbortSignal`, if any.
    pub signal: Option<AbortSignal>,
    /// Milliseconds before the call fails with `TIMEOUT`.
    pub timeout_ms: u32,
}

/// Sends requests with the global `fetch`.
pub struct Fetch;

impl Transport for Fetch {
    type Options = CallOptions;
    type Json = JsJson;

    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    fn send<'a>(
        &'a self,
        request: &'a HttpRequest,
        options: &'a CallOptions,
    ) -> LocalBoxFuture<'a, Result<HttpResponse<JsJson>, TransportError>> {
        send(request, options).boxed_local()
    }
}

/// The text of a JS exception or rejection, without assuming it is an `Error`.
pub fn js_text(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        return s;
    }
    let field = |k: &str| {
        Reflect::get(value, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_string())
    };
    match (field("name"), field("message")) {
        (Some(n), Some(m)) if !m.is_empty() => {
            // Node puts the useful part ("connect ECONNREFUSED ...") in `cause`.
            let cause = Reflect::get(value, &JsValue::from_str("cause"))
                .ok()
                .filter(|c| c.is_object())
                .and_then(|c| Reflect::get(&c, &JsValue::from_str("message")).ok())
                .and_then(|m| m.as_string());
            match cause {
                Some(c) => format!("{n}: {m}: {c}"),
                None => format!("{n}: {m}"),
            }
        }
        (Some(n), _) => n,
        _ => "unknown error".to_owned(),
    }
}

fn get(target: &JsValue, key: &str) -> Result<JsValue, JsValue> {
    Reflect::get(target, &JsValue::from_str(key))
}

/// Calls `target[name](...args)` and awaits the Promise it returns.
async fn call_async(
    target: &JsValue,
    name: &str,
    args: &js_sys::Array,
) -> Result<JsValue, JsValue> {
    let f: Function = get(target, name)?
        .dyn_into()
        .map_err(|_| JsValue::from_str(&format!("response.{name} is not a function")))?;
    let promise = Promise::resolve(&f.apply(target, args)?);
    JsFuture::from(promise).await
}

/// Removes the `abort` listener from the caller's signal when the call ends.
struct Listener<'a> {
    signal: &'a AbortSignal,
    closure: Closure<dyn FnMut()>,
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        let _ = self
            .signal
            .remove_event_listener_with_callback("abort", self.closure.as_ref().unchecked_ref());
    }
}

async fn send(
    request: &HttpRequest,
    options: &CallOptions,
) -> Result<HttpResponse<JsJson>, TransportError> {
    let network = |e: &JsValue| TransportError::Network(js_text(e));
    if options.signal.as_ref().is_some_and(AbortSignal::aborted) {
        return Err(TransportError::Aborted);
    }
    let controller = AbortController::new().map_err(|e| network(&e))?;
    let _listener = match &options.signal {
        Some(signal) => {
            let inner = controller.clone();
            let closure = Closure::<dyn FnMut()>::new(move || inner.abort());
            signal
                .add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref())
                .map_err(|e| network(&e))?;
            Some(Listener { signal, closure })
        }
        None => None,
    };
    let timed_out = Rc::new(Cell::new(false));
    let _timer = {
        let (flag, inner) = (timed_out.clone(), controller.clone());
        Timeout::new(options.timeout_ms, move || {
            flag.set(true);
            inner.abort();
        })
    };
    let outcome = exchange(request, &controller.signal()).await;
    outcome.map_err(|e| {
        if timed_out.get() {
            TransportError::Timeout(options.timeout_ms)
        } else if options.signal.as_ref().is_some_and(AbortSignal::aborted) {
            TransportError::Aborted
        } else {
            network(&e)
        }
    })
}

async fn exchange(
    request: &HttpRequest,
    signal: &AbortSignal,
) -> Result<HttpResponse<JsJson>, JsValue> {
    let built = Request::post(&request.url)
        .header("Content-Type", CONTENT_TYPE)
        .header("Accept", "application/json")
        .abort_signal(Some(signal))
        .body(request.body.as_str())
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    let raw: web_sys::Request = built.into();
    let response = JsFuture::from(global_fetch(&raw)?).await?;
    if !response.is_object() {
        return Err(JsValue::from_str(
            "fetch resolved to something that is not a Response",
        ));
    }
    let status = get(&response, "status")?.as_f64().unwrap_or(0.0);
    let status = if (0.0..=999.0).contains(&status) {
        status as u16
    } else {
        0
    };
    let content_type = get(&response, "headers")
        .ok()
        .filter(JsValue::is_object)
        .and_then(|h| {
            let f: Function = get(&h, "get").ok()?.dyn_into().ok()?;
            f.call1(&h, &JsValue::from_str("content-type")).ok()
        })
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    let text = call_async(&response, "text", &js_sys::Array::new())
        .await?
        .as_string()
        .unwrap_or_default();
    let body = match js_sys::JSON::parse(&text) {
        Ok(value) => Body::Json(JsJson(value)),
        Err(_) => Body::NotJson {
            content_type,
            len: text.len(),
        },
    };
    Ok(HttpResponse { status, body })
}

/// Awaits `value` (a Promise or a plain value) for at most `ms` milliseconds; the error
/// says what `what` did wrong (rejected, or did not settle).
pub async fn settle(value: JsValue, ms: u32, what: &str) -> Result<JsValue, String> {
    with_timeout(JsFuture::from(Promise::resolve(&value)), ms)
        .await
        .ok_or_else(|| format!("{what} did not settle within {ms} ms"))?
        .map_err(|e| format!("{what} rejected: {}", js_text(&e)))
}

/// Calls `target[name](callback)` and waits for the callback's first argument, for
/// at most `ms` milliseconds (for callback APIs such as `BX24.init`).
pub async fn callback(target: &JsValue, name: &str, ms: u32) -> Result<JsValue, String> {
    let what = format!("BX24.{name}");
    let f: Function = get(target, name)
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("{what} is not a function"))?;
    let mut thrown = None;
    let promise = Promise::new(&mut |resolve, _reject| {
        if let Err(e) = f.call1(target, &resolve) {
            thrown = Some(js_text(&e));
        }
    });
    if let Some(e) = thrown {
        return Err(format!("{what} threw: {e}"));
    }
    settle(promise.into(), ms, &what).await
}

/// Runs `future`, or gives up after `ms` milliseconds with `None`.
pub async fn with_timeout<F: Future>(future: F, ms: u32) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    match select(future, TimeoutFuture::new(ms)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}
