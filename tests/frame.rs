//! A BX24.js client from inside a window, in headless Chromium only (it needs
//! `window.name`). The frame protocol itself runs in the package's JS layer and is
//! tested there (tests/js/browser.test.mjs, frame*.test.mjs).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use b24_openlines::exports::Client;
use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = "
// A BX24-shaped object whose getAuth names the portal host (no scheme), as BX24.js does.
export function fake_bx24(domain) {
  return { init(cb) { cb(); }, getAuth() { return { access_token: 't', expires_in: Date.now() + 3600e3, domain }; }, refreshAuth(cb) { cb(false); } };
}
")]
extern "C" {
    fn fake_bx24(domain: &str) -> JsValue;
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen_test]
async fn from_bx24_follows_the_scheme_of_the_portal_frame() {
    // An on-premise portal served over http names itself so in the frame name.
    for (name, expected) in [
        ("portal.example|0|SID1", "http://portal.example"),
        ("portal.example|1|SID1", "https://portal.example"),
    ] {
        let _ = Reflect::set(&js_sys::global(), &"name".into(), &name.into());
        let client = settle(Client::from_bx24(
            fake_bx24("portal.example"),
            JsValue::UNDEFINED,
        ))
        .await
        .expect("opens");
        assert_eq!(
            get(&client, "portal").as_string().as_deref(),
            Some(expected),
            "{name}"
        );
    }
    let _ = Reflect::set(&js_sys::global(), &"name".into(), &"".into());
}
