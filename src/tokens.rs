//! Where a client's access token comes from in JS: the caller's refresh function,
//! BX24.js, or the parent window of a framed app (asked by the JS layer). Each source
//! hands its raw answers to the core ([`crate::auth`]) to read; here they are only
//! fetched, each wait bounded by a timeout.

use futures::FutureExt;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::auth::{self, Auth, Token};
use crate::client::{Current, RefreshFuture, Refresher};
use crate::error::Error;
use crate::frame::Bootstrap;
use crate::interop::{self, JsJson};

/// Awaits `value` for at most `ms` milliseconds; the error says what `what` did
/// wrong (rejected, or did not settle).
async fn settle_within(value: &JsValue, ms: u32, what: &str) -> Result<JsValue, String> {
    interop::with_timeout(interop::settle(value), ms)
        .await
        .ok_or_else(|| format!("{what} did not settle within {ms} ms"))?
        .map_err(|e| format!("{what} rejected: {}", interop::text(&e)))
}

/// The caller's refresh function: called with no arguments; its (awaited) value is
/// read by [`auth::token_from_refresh`].
pub fn refresher(f: Function, timeout_ms: u32) -> Refresher {
    reading(f, timeout_ms, "the refresh function", |v, now| {
        auth::token_from_refresh(v, now).ok_or_else(|| {
            "the refresh function must resolve to a token string or {accessToken}".to_owned()
        })
    })
}

/// The parent window's `refreshAuth`, asked by the JS layer's `f`; its answer is read
/// by [`auth::token_from_frame`].
pub fn frame_refresher(f: Function, timeout_ms: u32) -> Refresher {
    reading(f, timeout_ms, "refreshAuth", |v, now| {
        auth::token_from_frame(v, now).ok_or_else(|| "refreshAuth gave no AUTH_ID".to_owned())
    })
}

/// Calls `f` with no arguments and reads its (awaited) value with `read`.
fn reading(
    f: Function,
    timeout_ms: u32,
    what: &'static str,
    read: fn(&JsJson, f64) -> Result<Token, String>,
) -> Refresher {
    Box::new(move || -> RefreshFuture {
        let f = f.clone();
        async move {
            let value = interop::call(&f, &JsValue::UNDEFINED, &[])
                .map_err(|e| format!("{what} threw: {}", interop::text(&e)))?;
            let value = settle_within(&value, timeout_ms, what).await?;
            read(&JsJson(value), interop::now_ms())
        }
        .boxed_local()
    })
}

/// Calls `BX24[name](callback)` and waits for the callback's first argument, for at
/// most `ms` milliseconds (`BX24.init`, `BX24.refreshAuth`).
pub async fn bx24_callback(bx24: &JsValue, name: &str, ms: u32) -> Result<JsValue, String> {
    let what = format!("BX24.{name}");
    let f = interop::function(bx24, name).ok_or_else(|| format!("{what} is not a function"))?;
    let mut resolve_fn = None;
    let promise = Promise::new(&mut |resolve, _| resolve_fn = Some(resolve));
    let resolve = resolve_fn.ok_or_else(|| format!("{what}: no Promise"))?;
    interop::call(&f, bx24, &[&resolve])
        .map_err(|e| format!("{what} threw: {}", interop::text(&e)))?;
    interop::with_timeout(JsFuture::from(promise), ms)
        .await
        .ok_or_else(|| format!("{what} did not call back within {ms} ms"))?
        .map_err(|e| interop::text(&e))
}

/// The token BX24.js holds now, and the portal host it names.
pub fn bx24_token(bx24: &JsValue) -> Option<(Token, String)> {
    let auth = interop::call_method(bx24, "getAuth", &[]).ok()?;
    auth::token_from_bx24(&JsJson(auth))
}

/// What `window.name` says when this page is a portal's app frame.
pub fn frame_bootstrap() -> Option<Bootstrap> {
    let name = interop::get(&js_sys::global(), "name")?.as_string()?;
    Bootstrap::parse(&name)
}

/// Token auth from a loaded BX24.js (after `BX24.init`): the token from `getAuth()`,
/// the scheme from the frame's `window.name` when this page is one, else
/// `protocol`. Returns the auth and the source's refresh and current-token readers.
pub fn bx24_source(
    bx24: &JsValue,
    protocol: Option<&str>,
    refresh_ms: u32,
) -> Result<(Auth, Refresher, Current), Error> {
    let (token, domain) = bx24_token(bx24)
        .ok_or_else(|| Error::no_auth("", "BX24.getAuth() gave no access token"))?;
    let scheme = match (frame_bootstrap(), protocol) {
        (Some(boot), _) => {
            if boot.https {
                "https"
            } else {
                "http"
            }
        }
        (None, Some(p)) => p,
        (None, None) => "https",
    };
    // The portal's own scheme, as its frame (or the caller) says: http is followed.
    let auth = Auth::token(
        Some(&format!("{scheme}://{domain}")),
        None,
        &token.access_token,
        true,
    )?;
    let source = bx24.clone();
    let refresh: Refresher = Box::new(move || -> RefreshFuture {
        let bx24 = source.clone();
        async move {
            bx24_callback(&bx24, "refreshAuth", refresh_ms).await?;
            bx24_token(&bx24)
                .map(|(token, _)| token)
                .ok_or_else(|| "BX24.refreshAuth gave no access token".to_owned())
        }
        .boxed_local()
    });
    let reader = bx24.clone();
    let current: Current = Box::new(move || bx24_token(&reader).map(|(token, _)| token));
    Ok((auth, refresh, current))
}
