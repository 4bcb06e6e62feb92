//! Fixtures through the admin API, and the limit faults (with a seeded
//! probability).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, error, Portal};
use serde_json::json;

#[test]
fn fixtures_add_users_items_chats_and_memberships() {
    let portal = Portal::start();
    let resp = portal.admin_post(
        "fixtures",
        json!({
            "users": [{"id": 40, "login": "nina", "name": "Nina"}],
            "crmItems": [{"type": "deal", "id": 500, "title": "New deal"}],
            "chats": [{"id": 9100, "members": [12], "openLine": {"connectorId": "telegrambot", "connectorTitle": "Telegram", "crm": {"type": "deal", "id": 500}}}],
            "memberships": [{"chatId": 9100, "userId": 40}]
        }),
    );
    assert_eq!(
        (resp.status, resp.json()),
        (
            200,
            json!({"users": 1, "crmItems": 1, "chats": 1, "memberships": 1, "sessions": 0})
        )
    );
    let send = json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 500, "USER_ID": 40, "CHAT_ID": 9100, "MESSAGE": "hi"});
    assert_eq!(
        portal
            .call("imopenlines.crm.message.add", send.clone())
            .result(),
        json!(19880117)
    );
    assert_eq!(
        portal
            .call(
                "imopenlines.crm.chat.get",
                json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 500})
            )
            .result(),
        json!([{"CHAT_ID": "9100", "CONNECTOR_ID": "telegrambot", "CONNECTOR_TITLE": "Telegram"}])
    );
    portal.admin_post(
        "fixtures",
        json!({"memberships": [{"chatId": 9100, "userId": 40, "member": false}]}),
    );
    assert_answer(
        &portal.call("imopenlines.crm.message.add", send),
        400,
        &error("CANCELED", "You cannot send messages to the specified chat"),
    );
    let bad = portal.admin_post(
        "fixtures",
        json!({"memberships": [{"chatId": 1, "userId": 40}]}),
    );
    assert_eq!(
        (bad.status, bad.json()["error"].clone()),
        (400, json!("INVALID_FIXTURE"))
    );
    portal.admin_post("reset", json!({}));
    assert!(portal
        .admin_get("chats")
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != json!(9100)));
}

#[test]
fn limit_faults_answer_like_the_limits() {
    let portal = Portal::start();
    portal.add_faults(json!([
        {"method": "profile", "kind": "query_limit_exceeded"},
        {"method": "profile", "kind": "operation_time_limit"}
    ]));
    assert_answer(
        &portal.call("profile", json!({})),
        503,
        &error("QUERY_LIMIT_EXCEEDED", "Too many requests"),
    );
    assert_answer(
        &portal.call("profile", json!({})),
        429,
        &error(
            "OPERATION_TIME_LIMIT",
            "Method is blocked due to operation time limit.",
        ),
    );
    assert_eq!(portal.call("profile", json!({})).status, 200);
}

#[test]
fn probabilistic_faults_are_deterministic_per_seed() {
    let pattern = |seed: u64| {
        let portal = Portal::start();
        portal.add_faults(
            json!([{"kind": "status500_before", "count": 100, "probability": 0.5, "seed": seed}]),
        );
        let statuses: Vec<u16> = (0..20)
            .map(|_| portal.call("server.time", json!({})).status)
            .collect();
        let pending = portal.admin_get("faults");
        (statuses, pending)
    };
    let (a, pending) = pattern(42);
    assert_eq!(a, pattern(42).0);
    assert_ne!(a, pattern(43).0);
    let taken = a.iter().filter(|s| **s == 500).count() as u64;
    assert!((4..=16).contains(&taken), "{a:?}");
    assert_eq!(pending[0]["remaining"], json!(100 - taken));
    assert_eq!(pending[0]["probability"], json!(0.5));
}
