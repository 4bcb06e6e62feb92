//! The module's boundary (`src/abi.rs`), compiled to wasm32 and run in Node
//! (`wasm-pack test --node`) and in headless Chromium (the same file, with
//! `WASM_BINDGEN_USE_BROWSER=1`): strings and numbers in, records out. When the test
//! script provides a running local portal (`B24_PORTAL_WEBHOOK`, `B24_PORTAL_URL` at
//! build time), the requests the module asks for are sent over real HTTP; in Chromium
//! that crosses origins, so the portal's CORS answer is exercised too.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use b24_openlines::abi::{check_params, last_error, Core};
use b24_openlines::json::{Json, JsonView, Shape};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

const WEBHOOK: Option<&str> = option_env!("B24_PORTAL_WEBHOOK");
const PORTAL: Option<&str> = option_env!("B24_PORTAL_URL");

#[wasm_bindgen(inline_js = "
export async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
  return [res.status, await res.text(), res.headers.get('content-type') ?? ''].join('\\x1f');
}
export async function ledger(url) {
  return (await fetch(url + '/_portal/messages')).text();
}
")]
extern "C" {
    async fn post(url: &str, body: &str) -> JsValue;
    async fn ledger(url: &str) -> JsValue;
}

const SEED: &str = r#"j{"crmEntityType":"deal","crmEntity":288,"userId":12,"chatId":8773,"message":"Hello from wasm"}"#;

fn json(text: &str) -> Json {
    Json::parse(text.to_owned()).expect("JSON")
}

fn field(v: &Json, k: &str) -> String {
    match v.get(k).map(|f| f.shape()) {
        Some(Shape::String(s)) => s,
        Some(Shape::Number(n)) => n.to_string(),
        Some(Shape::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// An error record as the JS layer turns it into a `Bitrix24Error`.
fn assert_error(record: &str, code: &str, argument: Option<&str>) -> Json {
    let e = json(record);
    assert!(field(&e, "message").contains(code), "{record}");
    assert_eq!(field(&e, "code"), code);
    assert!(!field(&e, "kind").is_empty());
    assert!(!field(&e, "outcome").is_empty());
    assert_eq!(
        e.get("argument").map(|_| field(&e, "argument")).as_deref(),
        argument
    );
    assert!(matches!(
        e.get("retryable").map(|r| r.shape()),
        Some(Shape::Bool(_))
    ));
    assert!(matches!(
        e.get("status").map(|r| r.shape()),
        Some(Shape::Number(_))
    ));
    e
}

/// A step's records, each split into its fields.
fn records(out: &str) -> Vec<Vec<String>> {
    out.split('\x1e')
        .filter(|r| !r.is_empty())
        .map(|r| r.split('\x1f').map(str::to_owned).collect())
        .collect()
}

fn first<'a>(records: &'a [Vec<String>], kind: &str) -> Option<&'a Vec<String>> {
    records.iter().find(|r| r[0] == kind)
}

#[wasm_bindgen_test]
fn validation_errors_are_records_with_the_portal_code() {
    let e = assert_error(
        &check_params("crmMessageAdd", r#"j{"crmEntityType":"deal"}"#),
        "ERROR_ARGUMENT",
        Some("CRM_ENTITY"),
    );
    assert_eq!(field(&e, "method"), "imopenlines.crm.message.add");
    assert_eq!(check_params("crmMessageAdd", SEED), "");
}

/// Params reach the module as the JS layer tags them: JSON text (where a value JSON
/// would drop or change is `{}`), nothing, or what serializing threw.
#[wasm_bindgen_test]
fn params_of_any_shape_are_rejected_not_panicked_on() {
    let replaced =
        r#"j{"crmEntityType":"deal","crmEntity":288,"userId":12,"chatId":8773,"message":{}}"#;
    let big = r#"j{"crmEntityType":"deal","crmEntity":{},"userId":12,"chatId":8773,"message":"x"}"#;
    for (params, argument) in [
        (replaced, "MESSAGE"),
        (big, "CRM_ENTITY"),
        ("j{not json", "params"),
        ("j\"a string\"", "params"),
        ("eTypeError: cyclic object value", "params"),
        ("u", "params"),
        ("", "params"),
        ("j{}", "CRM_ENTITY_TYPE"),
    ] {
        assert_error(
            &check_params("crmMessageAdd", params),
            "ERROR_ARGUMENT",
            Some(argument),
        );
    }
}

#[wasm_bindgen_test]
fn bad_webhooks_make_no_client_and_their_error_hides_the_secret() {
    let core = Core::webhook(
        Some("https://p.example/rest/x/verysecret1/".to_owned()),
        "null",
        "Client.fromWebhook",
    );
    assert!(core.is_none());
    let record = last_error();
    assert_error(&record, "NO_AUTH", None);
    assert!(!record.contains("verysecret1"));
}

#[wasm_bindgen_test]
fn a_call_is_a_send_and_its_answer_a_result_and_a_deadline_cancels() {
    let mut core = Core::webhook(
        Some("https://p.example/rest/1/s3cret/".to_owned()),
        "null",
        "m",
    )
    .expect("a client");
    let out = records(&core.call(0, "crmMessageAdd", SEED, r#"{"timeoutMs":100}"#, 1_000.0));
    assert_eq!(out[0][0], "O");
    let send = first(&out, "S").expect("a send");
    assert!(
        send[2].ends_with("/rest/1/s3cret/imopenlines.crm.message.add"),
        "{send:?}"
    );
    assert!(send[3].contains("CHAT_ID=8773"));
    let done = records(&core.response(
        send[1].parse().unwrap(),
        200.0,
        r#"{"result":77}"#.to_owned(),
        "application/json".to_owned(),
        1_050.0,
    ));
    assert_eq!(first(&done, "D").expect("done")[2], "77");
    // Another call gets no answer within its 100 ms: cancelled at the deadline.
    let out = records(&core.call(0, "crmMessageAdd", SEED, r#"{"timeoutMs":100}"#, 2_000.0));
    let req = first(&out, "S").expect("a send")[1].clone();
    assert_eq!(first(&out, "W").expect("a wake")[1], "2100");
    let out = records(&core.tick(2_101.0));
    assert_eq!(first(&out, "C").expect("cancelled")[1], req);
    let e = assert_error(&first(&out, "E").expect("failed")[2], "TIMEOUT", None);
    assert_eq!(field(&e, "outcome"), "unknown");
    assert!(!e.text().contains("s3cret"));
}

#[wasm_bindgen_test]
async fn the_seed_example_reaches_the_local_portal() {
    let (Some(webhook), Some(url)) = (WEBHOOK, PORTAL) else {
        return; // built without a portal: the boundary tests above still ran
    };
    let mut core = Core::webhook(Some(webhook.to_owned()), "null", "m").expect("a client");
    let out = records(&core.call(0, "crmMessageAdd", SEED, "null", 0.0));
    let send = first(&out, "S").expect("a send");
    let answer = post(&send[2], &send[3]).await.as_string().expect("text");
    let parts: Vec<&str> = answer.splitn(3, '\x1f').collect();
    let done = records(&core.response(
        send[1].parse().unwrap(),
        parts[0].parse().unwrap(),
        parts[1].to_owned(),
        parts[2].to_owned(),
        10.0,
    ));
    let id = first(&done, "D").expect("delivered")[2].clone();
    let ledger = json(&ledger(url).await.as_string().expect("text"));
    let Shape::Array(n) = ledger.shape() else {
        panic!("a list")
    };
    let found = (0..n)
        .filter_map(|i| ledger.at(i))
        .any(|m| field(&m, "id") == id && field(&m, "message") == "Hello from wasm");
    assert!(found, "the ledger holds message {id}");
}
