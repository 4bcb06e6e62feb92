//! Limits (§5): the leaky bucket (`503 QUERY_LIMIT_EXCEEDED`), the
//! operating-time limit (`429 OPERATION_TIME_LIMIT`), the test clock and
//! run-time settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, error, Portal};
use serde_json::{json, Value};

fn settings(portal: &Portal, body: Value) -> Value {
    let resp = portal.admin_post("settings", body);
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()
}

fn clock(portal: &Portal, body: Value) -> Value {
    let resp = portal.admin_post("clock", body);
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()
}

fn statuses(portal: &Portal, method: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| portal.call(method, json!({})).status)
        .collect()
}

fn query_limit() -> Value {
    error("QUERY_LIMIT_EXCEEDED", "Too many requests")
}

fn operation_limit() -> Value {
    error(
        "OPERATION_TIME_LIMIT",
        "Method is blocked due to operation time limit.",
    )
}

#[test]
fn limits_are_off_by_default() {
    let portal = Portal::start();
    let defaults = portal.admin_get("settings");
    assert_eq!(
        defaults,
        json!({
            "rateLimit": {"enabled": false, "burst": 50.0, "drainPerSecond": 2.0},
            "operatingLimit": {"enabled": false, "limitSeconds": 480.0, "costSeconds": null},
            "tokenTtlSeconds": 3600.0,
            "refreshTtlSeconds": 15552000.0,
            "historyText": "parsed",
            "bucketLevel": 0.0
        })
    );
    assert!(statuses(&portal, "server.time", 70)
        .iter()
        .all(|s| *s == 200));
}

#[test]
fn leaky_bucket_refuses_beyond_the_burst_and_drains_with_the_clock() {
    let portal = Portal::start();
    clock(&portal, json!({"scale": 0}));
    settings(
        &portal,
        json!({"rateLimit": {"enabled": true, "burst": 5, "drainPerSecond": 2}}),
    );
    assert_eq!(
        statuses(&portal, "profile", 6),
        [200, 200, 200, 200, 200, 503]
    );
    assert_answer(&portal.call("profile", json!({})), 503, &query_limit());
    // A batch is one request however many commands it carries.
    clock(&portal, json!({"advanceSeconds": 1}));
    let batch = portal.call("batch", json!({"cmd": ["profile", "profile", "profile"]}));
    assert_eq!(batch.status, 200);
    assert_eq!(statuses(&portal, "server.time", 2), [200, 503]);
    let counters = portal.admin_get("counters");
    assert_eq!(
        counters["queryLimitExceeded"],
        json!({"total": 3, "byMethod": {"profile": 2, "server.time": 1}})
    );
    assert_eq!(counters["byStatus"]["503"], json!(3));
    let refused: Vec<Value> = portal
        .requests()
        .into_iter()
        .filter(|r| r["status"] == json!(503))
        .collect();
    assert_eq!(refused.len(), 3);
    assert_eq!(refused[0]["error"], json!("QUERY_LIMIT_EXCEEDED"));
    assert_eq!(refused[0]["userId"], json!(null));
    // Turning it off lets everything through again.
    settings(&portal, json!({"rateLimit": {"enabled": false}}));
    assert_eq!(statuses(&portal, "profile", 3), [200, 200, 200]);
}

#[test]
fn operating_limit_blocks_a_method_per_webhook_for_ten_minutes() {
    let portal = Portal::start();
    clock(&portal, json!({"scale": 0}));
    settings(
        &portal,
        json!({"operatingLimit": {"enabled": true, "limitSeconds": 480, "costSeconds": 100}}),
    );
    let t0 = portal.admin_get("clock")["now"].as_f64().unwrap();
    let reset_at = (t0.floor() as i64) + 600;
    for expected in [100.0, 200.0, 300.0, 400.0, 500.0] {
        let body = portal.call("profile", json!({})).json();
        assert_eq!(body["time"]["operating"], json!(expected), "{body}");
        assert_eq!(body["time"]["operating_reset_at"], json!(reset_at));
    }
    assert_answer(&portal.call("profile", json!({})), 429, &operation_limit());
    // Other methods and other webhooks keep working.
    assert_eq!(portal.call("server.time", json!({})).status, 200);
    let other = portal.new_webhook(1, None);
    assert_eq!(portal.call_via(&other, "profile", json!({})).status, 200);
    // Inside a batch the command fails on its own.
    let batch = portal
        .call(
            "batch",
            json!({"cmd": {"p": "profile", "t": "server.time"}}),
        )
        .json();
    assert_eq!(
        batch["result"]["result_error"],
        json!({"p": operation_limit()})
    );
    assert_eq!(
        batch["result"]["result_time"]["t"]["operating"],
        json!(200.0)
    );
    // Ten minutes later the oldest bucket has dropped out.
    clock(&portal, json!({"advanceSeconds": 600}));
    let body = portal.call("profile", json!({})).json();
    assert_eq!(body["time"]["operating"], json!(100.0), "{body}");
    assert_eq!(
        portal.admin_get("counters")["operationTimeLimit"],
        json!({"total": 2, "byMethod": {"profile": 2}})
    );
}

#[test]
fn the_clock_expires_tokens_and_settings_change_their_lifetime() {
    let portal = Portal::start();
    let token_url = format!("{}?auth={}", portal.rest("profile"), portal.token());
    assert_eq!(portal.get(&token_url).status, 200);
    let moved = clock(&portal, json!({"advanceSeconds": 3601}));
    assert!(moved["date"].as_str().unwrap().ends_with("+00:00"));
    assert_answer(
        &portal.get(&token_url),
        401,
        &error("expired_token", "The access token provided has expired"),
    );
    settings(&portal, json!({"tokenTtlSeconds": 10}));
    let issued = portal.admin_post("tokens", json!({})).json();
    assert_eq!(issued["expiresIn"], json!(10));
    let server_time = portal.call("server.time", json!({})).json();
    let shown = clock(&portal, json!({}));
    assert!(
        (server_time["time"]["start"].as_f64().unwrap() - shown["now"].as_f64().unwrap()).abs()
            < 5.0
    );
    // Reset restores the start-up settings and real time.
    portal.admin_post("reset", json!({}));
    assert_eq!(portal.get(&token_url).status, 200);
    assert_eq!(
        portal.admin_get("settings")["tokenTtlSeconds"],
        json!(3600.0)
    );
}

#[test]
fn invalid_settings_are_rejected() {
    let portal = Portal::start();
    for body in [
        json!({"rateLimit": {"burst": -1}}),
        json!({"rateLimit": {"size": 1}}),
        json!({"speed": 2}),
    ] {
        let resp = portal.admin_post("settings", body);
        assert_eq!(
            (resp.status, resp.json()["error"].clone()),
            (400, json!("INVALID_BODY"))
        );
    }
    let resp = portal.admin_post("clock", json!({"scale": -1}));
    assert_eq!(resp.status, 400);
}
