//! The admin API: ledger, request log (without secrets), counters, reset,
//! extra webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use b24_portal::Config;
use common::{seed_example, Portal};
use serde_json::json;

const METHOD: &str = "imopenlines.crm.message.add";

#[test]
fn ledger_records_webhook_and_token_deliveries_in_order() {
    let portal = Portal::start();
    portal.call(METHOD, seed_example()).result();
    let mut body = seed_example();
    body["auth"] = json!(portal.token());
    body["USER_ID"] = json!(16);
    portal.post_json(&portal.rest(METHOD), &body).result();
    let messages = portal.messages();
    let summary: Vec<_> = messages
        .iter()
        .map(|m| (m["id"].clone(), m["userId"].clone(), m["auth"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!(19880117), json!(12), json!("webhook")),
            (json!(19880118), json!(16), json!("token"))
        ]
    );
}

#[test]
fn request_log_never_contains_secrets_or_tokens() {
    let secret = "VerySecretHook123";
    let token = "VerySecretToken456";
    let portal = Portal::with(Config {
        secret: Some(secret.to_owned()),
        token: Some(token.to_owned()),
        ..Config::default()
    });
    portal.call(METHOD, seed_example()).result();
    portal
        .get(&format!("{}?auth={token}", portal.rest("profile")))
        .result();
    portal.get(&format!("{}/rest/1/{secret}", portal.url()));
    let issued = portal.admin_post("tokens", json!({})).json()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    portal
        .get(&format!("{}?access_token={issued}", portal.rest("profile")))
        .result();

    let requests = portal.requests();
    let text = serde_json::to_string(&requests).unwrap();
    for needle in [secret, token, issued.as_str()] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
    let first = &requests[0];
    assert_eq!(first["path"], json!(format!("/rest/1/***/{METHOD}")));
    assert_eq!(first["httpMethod"], json!("POST"));
    assert_eq!(first["method"], json!(METHOD));
    assert_eq!(
        (first["status"].clone(), first["error"].clone()),
        (json!(200), json!(null))
    );
    assert_eq!(
        (first["auth"].clone(), first["userId"].clone()),
        (json!("webhook"), json!(1))
    );
    assert_eq!(requests[1]["auth"], json!("token"));
    assert_eq!(requests[2]["path"], json!("/rest/***"));
}

#[test]
fn counters_count_by_method_and_status() {
    let portal = Portal::start();
    portal.call(METHOD, seed_example());
    portal.call(METHOD, json!({}));
    portal.get(&portal.rest("profile"));
    assert_eq!(
        portal.admin_get("counters"),
        json!({
            "total": 3,
            "byMethod": {METHOD: 2, "profile": 1},
            "byStatus": {"200": 1, "400": 1, "401": 1},
            "queryLimitExceeded": {"total": 0, "byMethod": {}},
            "operationTimeLimit": {"total": 0, "byMethod": {}},
            "batchCommands": {"total": 0, "byMethod": {}},
            "refreshes": 0,
            "refreshErrors": 0,
            "preflights": 0
        })
    );
}

#[test]
fn reset_restores_the_seed_and_keeps_default_credentials() {
    let portal = Portal::start();
    let extra = portal.new_webhook(1, None);
    portal.call(
        "imopenlines.crm.chat.user.delete",
        json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12}),
    );
    portal
        .call("imopenlines.crm.lead.create", json!({"CHAT_ID": 8900}))
        .result();
    portal.admin_post("tokens/expire", json!({}));
    portal.add_faults(json!([{"kind": "html"}]));

    assert_eq!(
        portal.admin_post("reset", json!({})).json(),
        json!({"reset": true})
    );

    assert!(portal.messages().is_empty());
    assert_eq!(portal.admin_get("counters")["total"], json!(0));
    assert_eq!(portal.admin_get("faults"), json!([]));
    assert_eq!(
        portal.call(METHOD, seed_example()).result(),
        json!(19880117)
    );
    let url = format!("{}?auth={}", portal.rest("profile"), portal.token());
    assert_eq!(portal.get(&url).status, 200);
    assert_eq!(
        portal.get(&format!("{extra}profile")).json()["error"],
        json!("INVALID_CREDENTIALS")
    );
    let chats = portal.admin_get("chats");
    let chat8900 = chats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(8900))
        .unwrap()
        .clone();
    assert_eq!(chat8900["openLine"]["crm"], json!(null));
}

#[test]
fn new_webhooks_act_for_their_user() {
    let portal = Portal::start();
    let hook = portal.new_webhook(12, None);
    assert!(hook.starts_with(&format!("{}/rest/12/", portal.url())) && hook.ends_with('/'));
    assert_eq!(
        portal.get(&format!("{hook}profile")).result()["ID"],
        json!("12")
    );
    portal.call_via(&hook, METHOD, seed_example()).result();
    assert_eq!(portal.messages()[0]["callerUserId"], json!(12));
}

#[test]
fn admin_rejects_unknown_users_and_bad_bodies() {
    let portal = Portal::start();
    let unknown = portal.admin_post("webhooks", json!({"userId": 999}));
    assert_eq!(
        (unknown.status, unknown.json()["error"].clone()),
        (400, json!("UNKNOWN_USER"))
    );
    let typo = portal.admin_post("tokens", json!({"user_id": 12}));
    assert_eq!(
        (typo.status, typo.json()["error"].clone()),
        (400, json!("INVALID_BODY"))
    );
    let garbage = portal.post(
        &format!("{}/_portal/tokens", portal.url()),
        Some("application/json"),
        "{",
    );
    assert_eq!(garbage.status, 400);
}

#[test]
fn debug_output_hides_credentials() {
    let config = Config {
        secret: Some("DebugSecret1".to_owned()),
        token: Some("DebugToken1".to_owned()),
        ..Config::default()
    };
    let config_text = format!("{config:?}");
    let portal = Portal::with(config);
    let info_text = format!("{:?} {:?}", portal.thread.info(), portal.thread);
    for text in [config_text, info_text] {
        assert!(
            !text.contains("DebugSecret1") && !text.contains("DebugToken1"),
            "{text}"
        );
    }
}
