//! The JS boundary, compiled to wasm32 and run in Node (`wasm-pack test --node`) and in
//! headless Chromium (the same file, with `WASM_BINDGEN_USE_BROWSER=1`). When the test
//! script provides a running local portal (`B24_PORTAL_WEBHOOK`, `B24_PORTAL_URL` at
//! build time), calls go over real HTTP; in Chromium that crosses origins, so the
//! portal's CORS answer is exercised too.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use b24_openlines::exports::{crm_message_add, install, Client};
use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

const WEBHOOK: Option<&str> = option_env!("B24_PORTAL_WEBHOOK");
const PORTAL: Option<&str> = option_env!("B24_PORTAL_URL");

#[wasm_bindgen(inline_js = "
export function obj(json) { return JSON.parse(json); }
export function thrown() { try { JSON.stringify(new Proxy({}, { ownKeys() { throw new Error('trap'); } })); } catch (e) { return e; } }
export async function admin(url, path, body) {
  const res = await fetch(url + '/_portal/' + path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return res.json();
}
export function post(url, body, signal) {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body, signal })
    .then((res) => res.text().then((text) => [res.status, text, res]));
}
export function post_fn() { return post; }
export function stringify(e) { return JSON.stringify(e) + ' ' + String(e) + ' ' + e.stack; }
")]
extern "C" {
    fn obj(json: &str) -> JsValue;
    fn thrown() -> JsValue;
    async fn admin(url: &str, path: &str, body: JsValue) -> JsValue;
    fn stringify(e: &JsValue) -> String;
    fn post_fn() -> JsValue;
}

const SEED: &str = r#"{"crmEntityType":"deal","crmEntity":288,"userId":12,"chatId":8773,"message":"Hello from wasm"}"#;

fn options(json: &str) -> JsValue {
    obj(json)
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// The module rejects with error records, which the package's JS layer turns into
/// `Bitrix24Error`s.
fn assert_error(e: &JsValue, code: &str, argument: Option<&str>) {
    assert!(get(e, "message")
        .as_string()
        .is_some_and(|m| m.contains(code)));
    assert!(get(e, "kind").as_string().is_some());
    assert!(get(e, "outcome").as_string().is_some());
    assert_eq!(get(e, "code").as_string().as_deref(), Some(code));
    assert_eq!(get(e, "argument").as_string().as_deref(), argument);
    assert!(get(e, "retryable").as_bool().is_some());
    assert!(get(e, "status").as_f64().is_some());
}

#[wasm_bindgen_test]
async fn validation_errors_are_bitrix24_errors_with_the_portal_code() {
    let e = settle(crm_message_add(
        r#"{"crmEntityType":"deal"}"#.into(),
        options(r#"{"webhookUrl":"https://p.example/rest/1/s/"}"#),
    ))
    .await
    .expect_err("rejects");
    assert_error(&e, "ERROR_ARGUMENT", Some("CRM_ENTITY"));
    assert_eq!(
        get(&e, "method").as_string().as_deref(),
        Some("imopenlines.crm.message.add")
    );
}

/// Params reach the module as the JS layer serializes them: JSON text (where a value
/// JSON would drop or change is `{}`), `undefined`, or what serializing threw.
#[wasm_bindgen_test]
async fn params_of_any_shape_are_rejected_not_panicked_on() {
    let hook = r#"{"webhookUrl":"https://p.example/rest/1/s/"}"#;
    let replaced =
        r#"{"crmEntityType":"deal","crmEntity":288,"userId":12,"chatId":8773,"message":{}}"#;
    let big = r#"{"crmEntityType":"deal","crmEntity":{},"userId":12,"chatId":8773,"message":"x"}"#;
    for (params, argument) in [
        (JsValue::from_str(replaced), "MESSAGE"),
        (JsValue::from_str(big), "CRM_ENTITY"),
        (JsValue::from_str("{not json"), "params"),
        (JsValue::from_str("\"a string\""), "params"),
        (thrown(), "params"),
        (JsValue::UNDEFINED, "params"),
        (JsValue::from_f64(f64::NAN), "params"),
        (obj("{}"), "params"),
    ] {
        let e = settle(crm_message_add(params, options(hook)))
            .await
            .expect_err("rejects");
        assert_error(&e, "ERROR_ARGUMENT", Some(argument));
    }
    let e = settle(crm_message_add(SEED.into(), JsValue::UNDEFINED))
        .await
        .expect_err("no auth");
    assert_error(&e, "NO_AUTH", None);
    assert_eq!(
        get(&e, "outcome").as_string().as_deref(),
        Some("notExecuted")
    );
}

#[wasm_bindgen_test]
fn bad_webhooks_throw_without_the_secret() {
    let e = Client::from_webhook(
        JsValue::from_str("https://p.example/rest/x/verysecret1/"),
        JsValue::UNDEFINED,
    )
    .err()
    .expect("throws");
    assert_error(&e, "NO_AUTH", None);
    assert!(!stringify(&e).contains("verysecret1"));
}

#[wasm_bindgen_test]
async fn the_seed_example_reaches_the_local_portal() {
    let (Some(webhook), Some(url)) = (WEBHOOK, PORTAL) else {
        return; // built without a portal: the boundary tests above still ran
    };
    install(post_fn());
    let id = settle(crm_message_add(
        SEED.into(),
        options(&format!(r#"{{"webhookUrl":"{webhook}"}}"#)),
    ))
    .await
    .expect("delivered");
    let id: f64 = id
        .as_string()
        .and_then(|t| t.parse().ok())
        .expect("an id's JSON text");
    let ledger = admin(url, "messages", JsValue::UNDEFINED).await;
    let entries: js_sys::Array = ledger.dyn_into().expect("array");
    let found = entries.iter().any(|m| {
        get(&m, "id").as_f64() == Some(id)
            && get(&m, "message").as_string().as_deref() == Some("Hello from wasm")
    });
    assert!(found, "the ledger holds message {id}");
}

#[wasm_bindgen_test]
async fn a_timeout_rejects_and_a_portal_error_keeps_its_status() {
    let (Some(webhook), Some(url)) = (WEBHOOK, PORTAL) else {
        return;
    };
    install(post_fn());
    admin(
        url,
        "faults",
        JsValue::from_str(r#"{"faults":[{"method":"imopenlines.crm.message.add","kind":"delay","delayMs":1500}]}"#),
    )
    .await;
    let e = settle(crm_message_add(
        SEED.into(),
        options(&format!(r#"{{"webhookUrl":"{webhook}","timeoutMs":100}}"#)),
    ))
    .await
    .expect_err("times out");
    assert_error(&e, "TIMEOUT", None);
    assert_eq!(get(&e, "retryable").as_bool(), Some(false));
    assert_eq!(get(&e, "outcome").as_string().as_deref(), Some("unknown"));

    let finished = SEED.replace("8773", "8772");
    let e = settle(crm_message_add(
        finished.as_str().into(),
        options(&format!(r#"{{"webhookUrl":"{webhook}"}}"#)),
    ))
    .await
    .expect_err("rejected");
    assert_error(&e, "CHAT_NOT_IN_CRM", None);
    assert_eq!(get(&e, "outcome").as_string().as_deref(), Some("failed"));
    assert_eq!(get(&e, "status").as_f64(), Some(400.0));
    assert!(!stringify(&e).contains(webhook));
}
