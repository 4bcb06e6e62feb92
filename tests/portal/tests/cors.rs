//! CORS headers on every answer, and preflights.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{request, seed_example, Portal, Resp};
use serde_json::json;

#[track_caller]
fn assert_cors(resp: &Resp) {
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("origin, content-type, accept")
    );
}

#[test]
fn success_and_error_answers_carry_cors_headers() {
    let portal = Portal::start();
    let ok = portal.call("imopenlines.crm.message.add", seed_example());
    assert_eq!(ok.status, 200);
    assert_cors(&ok);
    let bad = portal.call("imopenlines.crm.message.add", json!({}));
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_cors(&bad);
    let unauthorized = portal.get(&portal.rest("profile"));
    assert_eq!(unauthorized.status, 401);
    assert_cors(&unauthorized);
    let not_found = portal.get(&portal.rest("nope"));
    assert_eq!(not_found.status, 404);
    assert_cors(&not_found);
    assert_cors(&portal.get(&format!("{}/_portal/messages", portal.url())));
}

#[test]
fn preflights_are_answered_without_touching_the_ledger_or_faults() {
    let portal = Portal::start();
    portal.add_faults(json!([{"kind": "status500_before"}]));
    for url in [
        portal.rest("imopenlines.crm.message.add"),
        format!("{}/_portal/faults", portal.url()),
    ] {
        let preflight = request("OPTIONS", &url)
            .header("Origin", "http://example.test")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .body(String::new())
            .unwrap();
        let resp = portal.send(preflight);
        assert_eq!(resp.status, 200);
        assert!(resp.text.is_empty());
        assert_cors(&resp);
        assert_eq!(
            resp.header("access-control-allow-methods"),
            Some("GET, POST, DELETE, OPTIONS")
        );
    }
    assert!(portal.requests().is_empty());
    assert_eq!(
        portal.admin_get("faults").as_array().unwrap().len(),
        1,
        "fault not consumed"
    );
    assert_eq!(
        portal.admin_get("counters")["preflights"],
        1,
        "the REST preflight is counted, the admin one is not"
    );
}
