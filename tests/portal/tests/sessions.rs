//! Open-line dialogue sessions (facts §13): which chats `chat.get` lists,
//! which accept `message.add` and `chat.user.add/delete`, the seeded cases
//! (deals 290 to 294), the `sessions` fixture, the `session_after` fault,
//! and `user.current`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, error, insufficient_scope, Portal};
use serde_json::{json, Value};

const GET: &str = "imopenlines.crm.chat.get";
const LAST: &str = "imopenlines.crm.chat.getLastId";
const ADD: &str = "imopenlines.crm.chat.user.add";
const DELETE: &str = "imopenlines.crm.chat.user.delete";
const SEND: &str = "imopenlines.crm.message.add";

fn deal(id: i64, extra: Value) -> Value {
    let mut params = json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": id});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

/// The chat ids `chat.get` lists for deal `id`, active only or (`"N"`) all.
fn listed(portal: &Portal, id: i64, all: bool) -> Vec<String> {
    let extra = if all {
        json!({"ACTIVE_ONLY": "N"})
    } else {
        json!({})
    };
    portal
        .call(GET, deal(id, extra))
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CHAT_ID"].as_str().unwrap().to_owned())
        .collect()
}

fn send(deal_id: i64, chat_id: i64, user_id: i64) -> Value {
    deal(
        deal_id,
        json!({"USER_ID": user_id, "CHAT_ID": chat_id, "MESSAGE": "Hello"}),
    )
}

fn not_in_crm() -> Value {
    error(
        "CHAT_NOT_IN_CRM",
        "Chat does not belong to the CRM entity being checked",
    )
}

fn chat_view(portal: &Portal, id: i64) -> Value {
    portal
        .admin_get("chats")
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(id))
        .unwrap()
        .clone()
}

#[test]
fn two_active_chats_on_two_connectors_newest_first() {
    let portal = Portal::start();
    let both = json!([
        {"CHAT_ID": "8810", "CONNECTOR_ID": "whatsappbyedna", "CONNECTOR_TITLE": "WhatsApp"},
        {"CHAT_ID": "8811", "CONNECTOR_ID": "telegrambot", "CONNECTOR_TITLE": "Telegram"}
    ]);
    assert_eq!(portal.call(GET, deal(290, json!({}))).result(), both);
    assert_eq!(
        portal
            .call(GET, deal(290, json!({"ACTIVE_ONLY": "N"})))
            .result(),
        both
    );
    assert_eq!(
        portal.call(LAST, deal(290, json!({}))).result(),
        json!(8810)
    );
    // Status 40 (operator) and 20 (client) both accept messages.
    for chat in [8810, 8811] {
        assert_eq!(portal.call(SEND, send(290, chat, 12)).status, 200);
    }
    // A sender who is not a member: CANCELED, after the session check.
    assert_eq!(
        portal.call(SEND, send(290, 8810, 14)).json()["error"],
        json!("CANCELED")
    );
}

#[test]
fn only_finished_dialogues_are_listed_with_n_only() {
    let portal = Portal::start();
    assert!(listed(&portal, 291, false).is_empty());
    assert_eq!(listed(&portal, 291, true), ["8821", "8820"]);
    // getLastId: the latest chat even if it is over (here: closing).
    assert_eq!(
        portal.call(LAST, deal(291, json!({}))).result(),
        json!(8821)
    );
    for variant in [json!("n"), json!("false"), json!(false), json!(0)] {
        assert_eq!(
            portal
                .call(GET, deal(291, json!({"ACTIVE_ONLY": variant})))
                .result(),
            json!([]),
            "ACTIVE_ONLY {variant} still means active only"
        );
    }
}

#[test]
fn a_queued_dialogue_is_listed_with_n_only() {
    let portal = Portal::start();
    assert!(listed(&portal, 292, false).is_empty());
    assert_eq!(listed(&portal, 292, true), ["8830"]);
    assert_eq!(
        portal.call(LAST, deal(292, json!({}))).result(),
        json!(8830)
    );
    let chat = chat_view(&portal, 8830);
    assert_eq!(chat["members"], json!([]));
    assert_eq!(chat["openLine"]["operatorId"], json!(0));
    assert_eq!(chat["openLine"]["status"], json!(0));
}

#[test]
fn an_item_without_chats() {
    let portal = Portal::start();
    assert!(listed(&portal, 293, false).is_empty());
    assert!(listed(&portal, 293, true).is_empty());
    assert_answer(
        &portal.call(LAST, deal(293, json!({}))),
        400,
        &error("CRM_CHAT_EMPTY_CRM_DATA", "Could not find CRM entity"),
    );
    assert_eq!(
        portal.call(ADD, deal(293, json!({"USER_ID": 14}))).result(),
        json!(0)
    );
}

#[test]
fn a_disconnected_connectors_chat_is_never_listed_but_is_the_last_id() {
    let portal = Portal::start();
    assert_eq!(listed(&portal, 294, false), ["8841"]);
    assert_eq!(listed(&portal, 294, true), ["8841"]);
    // getLastId looks at the last open-line activity, not at the connector:
    // it answers the newer chat, which refuses messages.
    assert_eq!(
        portal.call(LAST, deal(294, json!({}))).result(),
        json!(8840)
    );
    // Without CHAT_ID, user.add acts on that last chat, and is refused.
    assert_answer(
        &portal.call(ADD, deal(294, json!({"USER_ID": 14}))),
        400,
        &not_in_crm(),
    );
    let chat = chat_view(&portal, 8840);
    assert_eq!(chat["openLine"]["connectorActive"], json!(false));
    assert_eq!(chat["openLine"]["status"], json!(40));
    assert_eq!(portal.call(SEND, send(294, 8841, 12)).status, 200);
}

#[test]
fn message_add_needs_an_active_session_on_a_connected_connector() {
    let portal = Portal::start();
    for (deal_id, chat, what) in [
        (292, 8830, "queued"),
        (291, 8821, "closing"),
        (291, 8820, "finished"),
        (294, 8840, "disconnected"),
        (288, 8772, "finished (seed)"),
    ] {
        let resp = portal.call(SEND, send(deal_id, chat, 12));
        assert_eq!(
            (resp.status, resp.json()),
            (400, not_in_crm()),
            "{what} chat {chat}"
        );
    }
    assert!(portal.messages().is_empty());
}

#[test]
fn user_add_and_delete_refuse_chats_without_an_active_session() {
    let portal = Portal::start();
    for (deal_id, chat) in [(291, 8820), (291, 8821), (292, 8830), (294, 8840)] {
        assert_answer(
            &portal.call(ADD, deal(deal_id, json!({"USER_ID": 14, "CHAT_ID": chat}))),
            400,
            &not_in_crm(),
        );
        assert_answer(
            &portal.call(
                DELETE,
                deal(deal_id, json!({"USER_ID": 12, "CHAT_ID": chat})),
            ),
            400,
            &not_in_crm(),
        );
    }
    // Without CHAT_ID the last chat is taken: a closing one here.
    assert_answer(
        &portal.call(ADD, deal(291, json!({"USER_ID": 14}))),
        400,
        &not_in_crm(),
    );
    // The caller's rights are still checked first.
    let hook13 = portal.new_webhook(13, None);
    assert_eq!(
        portal
            .call_via(
                &hook13,
                ADD,
                deal(291, json!({"USER_ID": 14, "CHAT_ID": 8820}))
            )
            .status,
        403
    );
    // An active chat: user 14 (not a member of any of them) joins and sends.
    assert_eq!(
        portal.call(ADD, deal(290, json!({"USER_ID": 14}))).result(),
        json!(8810)
    );
    assert_eq!(portal.call(SEND, send(290, 8810, 14)).status, 200);
}

#[test]
fn sessions_fixture_changes_a_chat_in_place() {
    let portal = Portal::start();
    let seed = json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12, "CHAT_ID": 8773, "MESSAGE": "hi"});
    let loaded = portal.admin_post(
        "fixtures",
        json!({"sessions": [{"chatId": 8773, "status": 60}]}),
    );
    assert_eq!(
        (loaded.status, loaded.json()),
        (
            200,
            json!({"users": 0, "crmItems": 0, "chats": 0, "memberships": 0, "sessions": 1})
        )
    );
    assert!(listed(&portal, 288, false).is_empty());
    assert_eq!(listed(&portal, 288, true), ["8773", "8772"]);
    assert_answer(&portal.call(SEND, seed.clone()), 400, &not_in_crm());

    // Reopening 8772 makes it the most recently changed chat.
    portal.admin_post(
        "fixtures",
        json!({"sessions": [{"chatId": 8772, "status": 10}]}),
    );
    assert_eq!(listed(&portal, 288, false), ["8772"]);
    assert_eq!(listed(&portal, 288, true), ["8772", "8773"]);
    assert_eq!(
        portal.call(LAST, deal(288, json!({}))).result(),
        json!(8772)
    );

    // Back to active, but the connector is gone: never listed.
    portal.admin_post(
        "fixtures",
        json!({"sessions": [{"chatId": 8773, "status": 40, "connectorActive": false}]}),
    );
    assert_eq!(listed(&portal, 288, true), ["8772"]);
    assert_answer(&portal.call(SEND, seed.clone()), 400, &not_in_crm());
    assert_eq!(chat_view(&portal, 8773)["openLine"]["status"], json!(40));

    // Errors change nothing (all or nothing).
    for bad in [
        json!({"sessions": [{"chatId": 8772, "status": 60}, {"chatId": 9000, "status": 60}]}),
        json!({"sessions": [{"chatId": 8772, "status": 60}, {"chatId": 1, "status": 60}]}),
        json!({"sessions": [{"chatId": 8772, "status": 61}]}),
        json!({"sessions": [{"chatId": 8772, "active": false}]}),
    ] {
        let resp = portal.admin_post("fixtures", bad.clone());
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
    }
    assert_eq!(listed(&portal, 288, false), ["8772"]);

    portal.admin_post("reset", json!({}));
    assert_eq!(portal.call(SEND, seed).status, 200);
}

#[test]
fn chat_fixtures_take_a_status_and_a_connector_state() {
    let portal = Portal::start();
    let line = |extra: Value| {
        let mut l = json!({"crm": {"type": "deal", "id": 600}});
        for (k, v) in extra.as_object().unwrap() {
            l[k] = v.clone();
        }
        l
    };
    let resp = portal.admin_post(
        "fixtures",
        json!({"chats": [
            {"id": 9201, "members": [12], "openLine": line(json!({"status": 0}))},
            {"id": 9202, "members": [12], "openLine": line(json!({"active": false, "status": 25}))},
            {"id": 9203, "members": [12], "openLine": line(json!({"active": false}))},
            {"id": 9204, "members": [12], "openLine": line(json!({"connectorActive": false}))},
            {"id": 9205, "members": [12], "openLine": line(json!({}))}
        ]}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(listed(&portal, 600, false), ["9205", "9202"]);
    assert_eq!(listed(&portal, 600, true), ["9205", "9203", "9202", "9201"]);
    assert_eq!(chat_view(&portal, 9203)["openLine"]["status"], json!(60));
    assert_eq!(chat_view(&portal, 9205)["openLine"]["status"], json!(40));
    assert_eq!(
        chat_view(&portal, 9205)["openLine"]["connectorActive"],
        json!(true)
    );
    assert_eq!(portal.call(SEND, send(600, 9201, 12)).status, 400);
    assert_eq!(portal.call(SEND, send(600, 9202, 12)).status, 200);
    let unknown = portal.admin_post(
        "fixtures",
        json!({"chats": [{"id": 9206, "openLine": {"status": 30}}]}),
    );
    assert_eq!(
        (unknown.status, unknown.json()["error"].clone()),
        (400, json!("INVALID_FIXTURE"))
    );
}

#[test]
fn session_after_finishes_a_dialogue_between_read_and_send() {
    let portal = Portal::start();
    portal.add_faults(
        json!([{"method": "imopenlines.crm.chat.get", "kind": "session_after", "chatId": 8773, "status": 60}]),
    );
    assert_eq!(
        portal.admin_get("faults"),
        json!([{"method": "imopenlines.crm.chat.get", "kind": "session_after", "remaining": 1, "delayMs": 0, "chatId": 8773, "status": 60}])
    );
    // The read runs normally and still sees the active chat…
    assert_eq!(listed(&portal, 288, false), ["8773"]);
    // …which is over by the time the client sends.
    let mut example = common::seed_example();
    assert_answer(&portal.call(SEND, example.clone()), 400, &not_in_crm());
    assert!(listed(&portal, 288, false).is_empty());
    let log = portal.admin_get("faults/log");
    assert_eq!(log[0]["kind"], json!("session_after"));
    assert_eq!(log[0]["executed"], json!(true));
    assert_eq!(log[0]["status"], json!(200));
    assert_eq!(portal.requests()[0]["fault"], json!("session_after"));

    // The other way round: a queued dialogue is taken after a profile call.
    portal.add_faults(
        json!([{"method": "profile", "kind": "session_after", "chatId": 8830, "status": 10}]),
    );
    assert_answer(&portal.call(SEND, send(292, 8830, 12)), 400, &not_in_crm());
    portal.call("profile", json!({})).result();
    assert_eq!(listed(&portal, 292, false), ["8830"]);
    // Now among the deal's chats; user 12 is not a member of it yet.
    assert_eq!(
        portal.call(SEND, send(292, 8830, 12)).json()["error"],
        json!("CANCELED")
    );
    example["CHAT_ID"] = json!(8773);
    assert_answer(&portal.call(SEND, example), 400, &not_in_crm());
}

#[test]
fn session_after_faults_are_checked_when_posted() {
    let portal = Portal::start();
    for bad in [
        json!({"kind": "session_after"}),
        json!({"kind": "session_after", "chatId": 8773}),
        json!({"kind": "session_after", "status": 60}),
        json!({"kind": "session_after", "chatId": 8773, "status": 61}),
        json!({"kind": "session_after", "chatId": 9000, "status": 60}),
        json!({"kind": "session_after", "chatId": 1, "status": 60}),
        json!({"kind": "html", "chatId": 8773, "status": 60}),
    ] {
        let resp = portal.admin_post("faults", json!({"faults": [bad.clone()]}));
        assert_eq!(
            (resp.status, resp.json()["error"].clone()),
            (400, json!("INVALID_FAULT")),
            "{bad}"
        );
    }
    assert_eq!(portal.admin_get("faults"), json!([]));
}

#[test]
fn user_current_answers_the_callers_own_user() {
    let portal = Portal::start();
    let clock = portal.admin_post("clock", json!({"set": 1767261600, "scale": 0}));
    assert_eq!(clock.status, 200, "{}", clock.text);
    let resp = portal.call("user.current", json!({}));
    assert_eq!(
        resp.result(),
        json!({
            "ID": "1", "XML_ID": "", "ACTIVE": true, "NAME": "John", "LAST_NAME": "Smith",
            "SECOND_NAME": "", "EMAIL": "admin@example.com",
            "LAST_LOGIN": "2026-01-01T10:00:00+00:00", "DATE_REGISTER": "2024-01-15T00:00:00+00:00",
            "TIME_ZONE": "", "IS_ONLINE": "Y", "TIME_ZONE_OFFSET": "0",
            "LAST_ACTIVITY_DATE": "2026-01-01 10:00:00", "PERSONAL_GENDER": "M",
            "PERSONAL_BIRTHDAY": "", "WORK_POSITION": "", "UF_EMPLOYMENT_DATE": "",
            "UF_DEPARTMENT": [1], "USER_TYPE": "employee"
        })
    );
    assert!(
        resp.text
            .starts_with(r#"{"result":{"ID":"1","XML_ID":"","ACTIVE":true,"NAME":"John""#),
        "{}",
        resp.text
    );

    // A token of another user: that user.
    let issued = portal.admin_post("tokens", json!({"userId": 12}));
    let token = issued.json()["accessToken"].as_str().unwrap().to_owned();
    let url = format!("{}?auth={token}", portal.rest("user.current"));
    let olga = portal.get(&url).result();
    assert_eq!(
        (
            &olga["ID"],
            &olga["NAME"],
            &olga["EMAIL"],
            &olga["PERSONAL_GENDER"]
        ),
        (
            &json!("12"),
            &json!("Olga"),
            &json!("olga@example.com"),
            &json!("F")
        )
    );

    // Scope `user`.
    let no_user = portal.new_webhook(1, Some(&["imopenlines", "crm", "im"]));
    assert_answer(
        &portal.call_via(&no_user, "user.current", json!({})),
        401,
        &insufficient_scope("webhook"),
    );
    assert_eq!(
        portal.call("methods", json!({"scope": "user"})).result(),
        json!(["user.current"])
    );
}
