//! The one seam to the network: `POST` a prepared request with the global `fetch`
//! (Node 18+, workers, browsers; never `window`) and read the whole answer.
//!
//! A call's bounds live here and nowhere else: [`Bounds`] holds one `AbortController`
//! that the call's timer and the caller's `AbortSignal` both abort. Every attempt's
//! `fetch` carries its signal, and every wait between attempts (a token refresh,
//! `BX24.init`) races [`Bounds::stopped`], so `timeoutMs` and `signal` bound the whole
//! call and nothing is sent after either fired. The request is a plain
//! `fetch(url, init)`; the response is read structurally (`status`, `headers.get`,
//! `text()`), so a non-native `fetch` replacement cannot make the module trap.

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

use crate::client::{Transport, TransportError};
use crate::envelope::{Body, HttpResponse};
use crate::interop::{self, Timer};
use crate::json::Json;
use crate::wire::{HttpRequest, CONTENT_TYPE};

/// The bounds of one call: its timeout and the caller's signal, joined in one
/// controller. Created when the call starts; dropping it clears the timer and the
/// listener on the caller's signal.
pub struct Bounds {
    controller: AbortController,
    /// The caller's signal, when given (also its `abort` listener's target).
    caller: Option<JsValue>,
    /// `controller.abort` bound to it: the timer's and the listener's callback, so
    /// that no Rust closure is made per call.
    abort: js_sys::Function,
    timeout_ms: u32,
    /// Resolves when the controller aborts; made on first use (only waits need it).
    stopped: std::cell::OnceCell<Promise>,
    _timer: Option<Timer>,
}

impl Drop for Bounds {
    fn drop(&mut self) {
        if let Some(signal) = &self.caller {
            let _ = interop::call_method(
                signal,
                "removeEventListener",
                &[&"abort".into(), &self.abort],
            );
        }
    }
}

impl Bounds {
    /// Starts the clock of a call: `timeout_ms`, and `signal` when given (an
    /// `AbortSignal`, already checked with `instanceof`). Errors say what was wrong
    /// with the signal or the runtime.
    pub fn start(signal: Option<JsValue>, timeout_ms: u32) -> Result<Bounds, String> {
        let controller = AbortController::new()
            .map_err(|e| format!("AbortController: {}", interop::text(&e)))?;
        let abort = interop::function(&controller, "abort")
            .ok_or("AbortController has no abort")?
            .bind0(&controller);
        let caller = match signal {
            None => None,
            Some(signal) => {
                if signal_aborted(&signal)? {
                    controller.abort();
                } else {
                    interop::call_method(&signal, "addEventListener", &[&"abort".into(), &abort])
                        .map_err(|e| format!("options.signal is not a usable AbortSignal ({e})"))?;
                }
                Some(signal)
            }
        };
        let timer = Timer::call(timeout_ms, &abort)
            .ok_or_else(|| "the runtime's setTimeout failed".to_owned())?;
        Ok(Bounds {
            controller,
            caller,
            abort,
            timeout_ms,
            stopped: std::cell::OnceCell::new(),
            _timer: Some(timer),
        })
    }

    /// Why the call stopped, if it did: the caller's signal, or else its timeout (the
    /// controller aborts for nothing else).
    pub fn stop(&self, sent: bool) -> Option<TransportError> {
        if !self.controller.signal().aborted() {
            return None;
        }
        let caller_aborted = self
            .caller
            .as_ref()
            .and_then(|s| interop::get(s, "aborted"))
            .and_then(|a| a.as_bool())
            == Some(true);
        Some(if caller_aborted {
            TransportError::Aborted { sent }
        } else {
            TransportError::Timeout {
                ms: self.timeout_ms,
                sent,
            }
        })
    }

    /// The same bounds reporting a timeout as `ms` (a call that already spent part of
    /// its time elsewhere keeps its own timeout in its error).
    pub fn labelled(mut self, ms: u32) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// Resolves when the call's timeout passes or its signal fires.
    pub async fn stopped(&self) -> TransportError {
        let stopped = self.stopped.get_or_init(|| {
            let signal = self.controller.signal();
            Promise::new(&mut |resolve, _| {
                if signal.aborted() {
                    let _ = interop::call(&resolve, &JsValue::UNDEFINED, &[]);
                } else {
                    let _ = interop::call_method(
                        &signal,
                        "addEventListener",
                        &[&"abort".into(), &resolve],
                    );
                }
            })
        });
        let _ = JsFuture::from(stopped.clone()).await;
        self.stop(false)
            .unwrap_or(TransportError::Aborted { sent: false })
    }

    /// Runs `future` unless the call stops first.
    pub async fn bound<F: std::future::Future>(
        &self,
        future: F,
    ) -> Result<F::Output, TransportError> {
        let future = std::pin::pin!(future);
        let stopped = std::pin::pin!(self.stopped());
        match futures::future::select(future, stopped).await {
            futures::future::Either::Left((out, _)) => Ok(out),
            futures::future::Either::Right((stop, _)) => Err(stop),
        }
    }
}

/// Whether the caller's `signal` (an `AbortSignal` by `instanceof`) has fired; an
/// error when it cannot be read (a lookalike or a proxy failing the brand check).
pub fn signal_aborted(signal: &JsValue) -> Result<bool, String> {
    interop::try_get(signal, "aborted")
        .map(|a| a.and_then(|a| a.as_bool()) == Some(true))
        .map_err(|e| format!("options.signal is not a usable AbortSignal ({e})"))
}

/// Sends requests with the global `fetch`.
pub struct Fetch;

impl Transport for Fetch {
    type Options = Bounds;
    type Json = Json;

    fn now_ms(&self) -> f64 {
        interop::now_ms()
    }

    fn send<'a>(
        &'a self,
        request: &'a HttpRequest,
        bounds: &'a Bounds,
    ) -> LocalBoxFuture<'a, Result<HttpResponse<Json>, TransportError>> {
        send(request, bounds).boxed_local()
    }

    fn stopped<'a>(&'a self, bounds: &'a Bounds) -> LocalBoxFuture<'a, TransportError> {
        bounds.stopped().boxed_local()
    }

    fn sleep<'a>(
        &'a self,
        ms: f64,
        bounds: &'a Bounds,
    ) -> LocalBoxFuture<'a, Result<(), TransportError>> {
        let ms = ms.clamp(0.0, 2_147_483_647.0).ceil() as u32;
        bounds.bound(interop::sleep(ms)).boxed_local()
    }
}

/// The `fetch` init: POST, the body, its content type, the call's signal.
fn init(request: &HttpRequest, bounds: &Bounds) -> JsValue {
    let headers = interop::object();
    interop::set(&headers, "Content-Type", CONTENT_TYPE.into());
    interop::set(&headers, "Accept", "application/json".into());
    let init = interop::object();
    interop::set(&init, "method", "POST".into());
    interop::set(&init, "headers", headers);
    interop::set(&init, "body", request.body.as_str().into());
    interop::set(&init, "signal", bounds.controller.signal().into());
    init
}

async fn send(
    request: &HttpRequest,
    bounds: &Bounds,
) -> Result<HttpResponse<Json>, TransportError> {
    if let Some(stop) = bounds.stop(false) {
        return Err(stop);
    }
    let promise = interop::fetch(&request.url, &init(request, bounds)).map_err(|e| {
        TransportError::Network {
            cause: interop::text(&e),
            sent: false,
        }
    })?;
    exchange(promise).await.map_err(|e| {
        bounds
            .stop(true)
            .unwrap_or_else(|| TransportError::Network {
                cause: interop::text(&e),
                sent: true,
            })
    })
}

/// A response's `Content-Type` header (read structurally: `headers.get`).
pub fn content_type(response: &JsValue) -> Option<String> {
    interop::get(response, "headers")
        .and_then(|h| interop::call_method(&h, "get", &[&"content-type".into()]).ok())
        .and_then(|v| v.as_string())
}

/// Awaits the `fetch` Promise and reads status and the whole body (and the content
/// type when the body is not JSON).
async fn exchange(promise: Promise) -> Result<HttpResponse<Json>, JsValue> {
    let response = JsFuture::from(promise).await?;
    if !response.is_object() {
        return Err(JsValue::from_str(
            "fetch resolved to something that is not a Response",
        ));
    }
    let status = interop::get(&response, "status")
        .and_then(|s| s.as_f64())
        .filter(|s| (0.0..=999.0).contains(s))
        .map_or(0, |s| s as u16);
    let text = interop::call_method(&response, "text", &[]).map_err(|e| JsValue::from_str(&e))?;
    let text = interop::settle(&text)
        .await?
        .as_string()
        .unwrap_or_default();
    let body = Body::read(text, || content_type(&response));
    Ok(HttpResponse { status, body })
}
