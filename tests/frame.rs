//! The frame protocol from inside a window, in headless Chromium only (it needs
//! `window.name`, `postMessage` and message events): this page plays the portal's
//! parent window.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use b24_openlines::exports::Client;
use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = "
// Plays the parent window: this page is its own parent (a top-level window), so the
// client's commands arrive here. Answers getInitData, first with forged replies that
// must be ignored, then from the right origin.
export function act_as_parent(init, answered) {
  const sid = 'SID' + Math.random().toString(36).slice(2);
  window.name = location.host + '|0|' + sid;
  window.addEventListener('message', function onCommand(e) {
    if (typeof e.data !== 'string' || !e.data.startsWith('getInitData:')) return;
    window.removeEventListener('message', onCommand);
    const parts = e.data.split(':');
    const id = parts[parts.length - 2];
    answered.sid = parts[parts.length - 1] === sid;
    const forged = JSON.stringify({ ...JSON.parse(init), DOMAIN: 'evil.example', AUTH_ID: 'forged-token' });
    window.dispatchEvent(new MessageEvent('message', { data: id + ':' + forged, origin: 'http://evil.example' }));
    window.dispatchEvent(new MessageEvent('message', { data: { id }, origin: location.origin }));
    setTimeout(() => window.dispatchEvent(new MessageEvent('message', { data: id + ':' + init, origin: location.origin })), 20);
  });
}
")]
extern "C" {
    fn act_as_parent(init: &str, answered: &JsValue);
}

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
async fn a_frame_client_takes_answers_only_from_the_portal_origin() {
    let answered: JsValue = Object::new().into();
    let init = r#"{"DOMAIN":"portal.example","PROTOCOL":1,"PATH":"/rest","AUTH_ID":"frame-token","AUTH_EXPIRES":"3600","PLACEMENT":"CRM_DEAL_DETAIL_TAB","PLACEMENT_OPTIONS":{"ID":"288"}}"#;
    act_as_parent(init, &answered);
    let client = settle(Client::from_frame(JsValue::UNDEFINED))
        .await
        .expect("opens");
    assert_eq!(
        get(&answered, "sid").as_bool(),
        Some(true),
        "commands carry the APP_SID"
    );
    // The forged reply named evil.example: had it been taken, the portal would differ.
    assert_eq!(
        get(&client, "portal").as_string().as_deref(),
        Some("https://portal.example")
    );
    let placement = get(&client, "placement");
    assert_eq!(
        get(&placement, "placement").as_string().as_deref(),
        Some("CRM_DEAL_DETAIL_TAB")
    );
    assert_eq!(
        get(&get(&placement, "options"), "ID")
            .as_string()
            .as_deref(),
        Some("288")
    );
}

#[wasm_bindgen_test]
async fn outside_a_portal_frame_from_frame_is_no_auth() {
    let _ = Reflect::set(
        &js_sys::global(),
        &JsValue::from_str("name"),
        &JsValue::from_str(""),
    );
    let e = settle(Client::from_frame(JsValue::UNDEFINED))
        .await
        .expect_err("not framed");
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("NO_AUTH"));
    assert_eq!(
        get(&e, "outcome").as_string().as_deref(),
        Some("notExecuted")
    );
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

#[wasm_bindgen_test]
async fn set_title_is_refused_at_once_outside_the_apps_own_page() {
    let answered: JsValue = Object::new().into();
    let init = r#"{"DOMAIN":"portal.example","PROTOCOL":1,"PATH":"/rest","AUTH_ID":"frame-token","AUTH_EXPIRES":"3600","PLACEMENT":"CRM_DEAL_DETAIL_TAB","PLACEMENT_OPTIONS":[]}"#;
    act_as_parent(init, &answered);
    let client = settle(Client::from_frame(JsValue::UNDEFINED))
        .await
        .expect("opens");
    let options = get(&get(&client, "placement"), "options");
    assert!(
        options.is_object() && !js_sys::Array::is_array(&options),
        "empty options are an object"
    );
    let set_title: js_sys::Function = get(&client, "setTitle").into();
    let denied: Promise = set_title
        .call1(&client, &"x".into())
        .expect("a promise")
        .into();
    let e = settle(denied).await.expect_err("denied");
    assert_eq!(
        get(&e, "code").as_string().as_deref(),
        Some("COMMAND_DENIED")
    );
    assert_eq!(
        get(&e, "outcome").as_string().as_deref(),
        Some("notExecuted")
    );
}
