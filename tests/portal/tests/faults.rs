//! Scripted faults: each kind, matching, and the fault log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{assert_answer, error, request, seed_example, Portal};
use serde_json::json;

const METHOD: &str = "imopenlines.crm.message.add";

fn fault_log(portal: &Portal) -> Vec<serde_json::Value> {
    portal.admin_get("faults/log").as_array().unwrap().clone()
}

#[test]
fn delay_sleeps_then_handles_normally() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "delay", "delayMs": 300}]));
    let started = Instant::now();
    assert_eq!(
        portal.call(METHOD, seed_example()).result(),
        json!(19880117)
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let log = fault_log(&portal);
    assert_eq!(
        (log[0]["kind"].clone(), log[0]["executed"].clone()),
        (json!("delay"), json!(true))
    );
}

#[test]
fn a_request_whose_client_gave_up_still_executes() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "delay", "delayMs": 400}]));
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(100)))
        .build()
        .into();
    let body = seed_example().to_string();
    let sent = impatient
        .post(portal.hook(METHOD))
        .header("Content-Type", "application/json")
        .send(body.as_str());
    assert!(sent.is_err(), "the client timed out");
    assert!(portal.messages().is_empty(), "not yet executed");
    std::thread::sleep(Duration::from_millis(600));
    let messages = portal.messages();
    assert_eq!(
        messages.len(),
        1,
        "executed once although nobody read the answer"
    );
    assert_eq!(messages[0]["id"], json!(19880117));
}

#[test]
fn status500_after_executes_then_answers_500() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "status500_after"}]));
    let answer = portal.call(METHOD, seed_example());
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.json(),
        json!({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"})
    );
    assert_eq!(
        portal.messages().len(),
        1,
        "the message was stored before the 500"
    );
    assert_eq!(fault_log(&portal)[0]["executed"], json!(true));
}

#[test]
fn html_answers_502_without_executing() {
    let portal = Portal::start();
    portal.add_faults(json!([{"method": "imopenlines.crm.message.add", "kind": "html"}]));
    let resp = portal.call(METHOD, seed_example());
    assert_eq!(resp.status, 502);
    assert_eq!(
        resp.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(resp.text.contains("502 Bad Gateway"));
    assert!(serde_json::from_str::<serde_json::Value>(&resp.text).is_err());
    assert!(portal.messages().is_empty());
    assert_eq!(fault_log(&portal)[0]["executed"], json!(false));
    // Consumed: the next call goes through.
    assert_eq!(
        portal.call(METHOD, seed_example()).result(),
        json!(19880117)
    );
}

#[test]
fn truncated_executes_and_cuts_the_body_in_half() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "truncated"}]));
    let resp = portal.call(METHOD, seed_example());
    assert_eq!(resp.status, 200);
    assert!(
        resp.text.starts_with("{\"result\":19880117"),
        "{}",
        resp.text
    );
    assert!(serde_json::from_str::<serde_json::Value>(&resp.text).is_err());
    assert_eq!(portal.messages().len(), 1, "the message was delivered");
    // The intact body is about twice as long.
    let whole = portal.call(METHOD, seed_example());
    let ratio = whole.text.len() as f64 / resp.text.len() as f64;
    assert!((1.8..2.2).contains(&ratio), "{ratio}");
}

#[test]
fn status500_before_does_not_execute() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "status500_before"}]));
    let resp = portal.call(METHOD, seed_example());
    assert_answer(
        &resp,
        500,
        &error("INTERNAL_SERVER_ERROR", "Internal server error"),
    );
    assert!(portal.messages().is_empty());
}

#[test]
fn drop_after_store_delivers_then_closes_without_answer() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "drop_after_store"}]));
    let req = request("POST", &portal.hook(METHOD))
        .header("Content-Type", "application/json")
        .body(seed_example().to_string())
        .unwrap();
    let outcome = portal.try_send(req);
    assert!(
        outcome.is_err(),
        "expected a transport error, got status {:?}",
        outcome.ok().map(|r| r.status)
    );
    let messages = portal.messages();
    assert_eq!(messages.len(), 1, "stored before the drop");
    assert_eq!(messages[0]["id"], json!(19880117));
    let log = fault_log(&portal);
    assert_eq!(
        (
            log[0]["kind"].clone(),
            log[0]["executed"].clone(),
            log[0]["status"].clone()
        ),
        (json!("drop_after_store"), json!(true), json!(200))
    );
    // The portal keeps serving.
    assert_eq!(
        portal.call(METHOD, seed_example()).result(),
        json!(19880118)
    );
}

#[test]
fn expired_token_and_message_add_error_do_not_execute() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "expired_token"}, {"kind": "message_add_error"}]));
    assert_answer(
        &portal.call(METHOD, seed_example()),
        401,
        &error("expired_token", "The access token provided has expired"),
    );
    assert_answer(
        &portal.call(METHOD, seed_example()),
        400,
        &error("MESSAGE_ADD_ERROR", "Message isn't added"),
    );
    assert!(portal.messages().is_empty());
    assert_eq!(
        portal.call(METHOD, seed_example()).result(),
        json!(19880117)
    );
}

#[test]
fn faults_match_methods_case_insensitively_and_count_down() {
    let portal = Portal::start();
    portal.add_faults(
        json!([{"method": "IMOPENLINES.CRM.MESSAGE.ADD", "kind": "status500_before", "count": 2}]),
    );
    assert_eq!(
        portal.call("profile", json!({})).status,
        200,
        "other methods are unaffected"
    );
    assert_eq!(portal.call(METHOD, seed_example()).status, 500);
    assert_eq!(
        portal
            .call(&format!("{METHOD}.json"), seed_example())
            .status,
        500
    );
    assert_eq!(portal.call(METHOD, seed_example()).status, 200);
    let faults: Vec<_> = portal
        .requests()
        .iter()
        .map(|r| r["fault"].clone())
        .collect();
    assert_eq!(
        faults,
        [
            json!(null),
            json!("status500_before"),
            json!("status500_before"),
            json!(null)
        ]
    );
    let log = fault_log(&portal);
    assert_eq!(
        (log[0]["request"].clone(), log[1]["request"].clone()),
        (json!(2), json!(3))
    );
}

#[test]
fn pending_faults_can_be_listed_and_cleared() {
    let portal = Portal::start();
    portal.add_faults(
        json!([{"kind": "html", "count": 3}, {"method": "profile", "kind": "delay", "delayMs": 5}]),
    );
    assert_eq!(
        portal.admin_get("faults"),
        json!([
            {"method": null, "kind": "html", "remaining": 3, "delayMs": 0},
            {"method": "profile", "kind": "delay", "remaining": 1, "delayMs": 5}
        ])
    );
    assert_eq!(portal.admin_delete("faults"), json!({"cleared": 2}));
    assert_eq!(portal.call(METHOD, seed_example()).status, 200);
}

#[test]
fn invalid_fault_requests_are_rejected() {
    let portal = Portal::start();
    let unknown_kind = portal.admin_post("faults", json!({"faults": [{"kind": "explode"}]}));
    assert_eq!(
        (unknown_kind.status, unknown_kind.json()["error"].clone()),
        (400, json!("INVALID_BODY"))
    );
    let zero = portal.admin_post("faults", json!({"faults": [{"kind": "html", "count": 0}]}));
    assert_eq!(
        (zero.status, zero.json()["error"].clone()),
        (400, json!("INVALID_FAULT"))
    );
    assert_eq!(portal.admin_get("faults"), json!([]));
}

#[test]
fn a_fault_naming_a_method_also_takes_a_batch_that_carries_it() {
    let portal = Portal::start();
    portal.add_faults(json!([{"method": METHOD, "kind": "status500_before"}]));
    let reads =
        json!({"cmd": {"a": "imopenlines.crm.chat.get?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288"}});
    assert_eq!(
        portal.call("batch", reads).status,
        200,
        "a batch without the method passes"
    );
    let sends = json!({"cmd": {
        "a": "imopenlines.crm.chat.get?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288",
        "b": "IMOPENLINES.CRM.MESSAGE.ADD?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE=x"
    }});
    assert_eq!(portal.call("batch", sends.clone()).status, 500);
    assert!(portal.messages().is_empty(), "not executed");
    assert_eq!(portal.call("batch", sends).status, 200, "used up");
    assert_eq!(portal.messages().len(), 1);
}
