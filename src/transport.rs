//! The seam to the network, as the module sees it: the JS layer's `post(url, body,
//! signal)` ([`install`]), the one function that calls the global `fetch` (Node 18+,
//! workers, browsers; never `window`) and reads the whole answer. The JS layer sends a
//! call's first attempt with it too (`Client::begin` in `exports.rs`).
//!
//! The bounds of a call run here once the module carries it on: [`Bounds`] holds one
//! `AbortController` that the call's timer and the caller's `AbortSignal` both abort.
//! Every request carries its signal, and every wait between attempts (a token
//! refresh, `BX24.init`) races [`Bounds::stopped`], so `timeoutMs` and `signal` bound
//! the whole call and nothing is sent after either fired. The answer is read
//! structurally (`[status, text, response]`, `headers.get`), so a non-native `fetch`
//! replacement cannot make the module trap.

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
use crate::wire::HttpRequest;
#[cfg(doc)]
use crate::wire::CONTENT_TYPE;

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

/// Sends requests through the JS layer's `post` ([`install`]).
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

thread_local! {
    /// The JS layer's `post(url, body, signal)`: see [`install`].
    static POST: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// Installs the one `fetch` seam, the JS layer's `post(url, body, signal)`: it sends
/// `fetch(url, {method: 'POST', headers, body, signal})` with the content type of
/// [`CONTENT_TYPE`] and resolves to `[status, text, response]` once the whole body is
/// read. The JS layer sends first attempts with it directly and hands it here once,
/// at load, for every other request, so there is one place where requests are made.
pub fn install(post: js_sys::Function) {
    POST.with(|p| *p.borrow_mut() = Some(post));
}

async fn send(
    request: &HttpRequest,
    bounds: &Bounds,
) -> Result<HttpResponse<Json>, TransportError> {
    if let Some(stop) = bounds.stop(false) {
        return Err(stop);
    }
    let network = |e: &JsValue, sent| TransportError::Network {
        cause: interop::text(e),
        sent,
    };
    let post = POST.with(|p| p.borrow().clone()).ok_or_else(|| {
        network(
            &"the module has no transport: load it through the package".into(),
            false,
        )
    })?;
    let signal: JsValue = bounds.controller.signal().into();
    let pending = interop::call(
        &post,
        &JsValue::UNDEFINED,
        &[
            &request.url.as_str().into(),
            &request.body.as_str().into(),
            &signal,
        ],
    )
    .map_err(|e| network(&e, false))?;
    let answer = interop::settle(&pending)
        .await
        .map_err(|e| bounds.stop(true).unwrap_or_else(|| network(&e, true)))?;
    let part = |i: u32| interop::index(&answer, i).unwrap_or(JsValue::UNDEFINED);
    Ok(response(
        part(0).as_f64().unwrap_or(0.0),
        &part(1),
        &part(2),
    ))
}

/// What `post` read: the status (anything but 0 to 999 reads as 0), the body's text
/// as JSON, or what it was when it is not JSON (the `Response`'s content type is read
/// only then).
pub fn response(status: f64, text: &JsValue, response: &JsValue) -> HttpResponse<Json> {
    let status = if (0.0..=999.0).contains(&status) {
        status as u16
    } else {
        0
    };
    let body = Body::read(text.as_string().unwrap_or_default(), || {
        content_type(response)
    });
    HttpResponse { status, body }
}

/// A response's `Content-Type` header (read structurally: `headers.get`).
fn content_type(response: &JsValue) -> Option<String> {
    interop::get(response, "headers")
        .and_then(|h| interop::call_method(&h, "get", &[&"content-type".into()]).ok())
        .and_then(|v| v.as_string())
}
