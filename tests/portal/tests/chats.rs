//! The other `imopenlines.crm.*` methods and the global helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{arg_null, arg_type, assert_answer, error, seed_example, Portal};
use serde_json::{json, Value};

const GET: &str = "imopenlines.crm.chat.get";
const LAST: &str = "imopenlines.crm.chat.getLastId";
const ADD: &str = "imopenlines.crm.chat.user.add";
const DELETE: &str = "imopenlines.crm.chat.user.delete";
const LEAD: &str = "imopenlines.crm.lead.create";
const SEND: &str = "imopenlines.crm.message.add";

fn deal(extra: Value) -> Value {
    let mut params = json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

fn chat(id: &str, connector: &str, title: &str) -> Value {
    json!({"CHAT_ID": id, "CONNECTOR_ID": connector, "CONNECTOR_TITLE": title})
}

fn denied(detail: &str) -> Value {
    error("ACCESS_DENIED", &format!("Access denied! {detail}"))
}

fn not_in_crm() -> Value {
    error(
        "CHAT_NOT_IN_CRM",
        "Chat does not belong to the CRM entity being checked",
    )
}

#[test]
fn chat_get_lists_active_chats_with_string_ids() {
    let portal = Portal::start();
    assert_eq!(
        portal.call(GET, deal(json!({}))).result(),
        json!([chat("8773", "telegrambot", "Telegram")])
    );
    assert_eq!(
        portal.call(GET, deal(json!({"ACTIVE_ONLY": "N"}))).result(),
        json!([
            chat("8773", "telegrambot", "Telegram"),
            chat("8772", "livechat", "Live chat")
        ])
    );
    // Only exactly "N" turns the filter off.
    assert_eq!(
        portal
            .call(GET, deal(json!({"ACTIVE_ONLY": "n"})))
            .result()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        portal
            .call(GET, json!({"CRM_ENTITY_TYPE": "LEAD", "CRM_ENTITY": "101"}))
            .result(),
        json!([chat("8801", "livechat", "Live chat")])
    );
    assert_eq!(
        portal
            .call(
                GET,
                json!({"CRM_ENTITY_TYPE": "company", "CRM_ENTITY": 301})
            )
            .result(),
        json!([])
    );
    assert_eq!(
        portal.call(GET, deal(json!({"CRM_ENTITY": 999}))).result(),
        json!([])
    );
}

#[test]
fn chat_get_errors() {
    let portal = Portal::start();
    assert_answer(
        &portal.call(GET, json!({"CRM_ENTITY": 288})),
        400,
        &arg_null("CRM_ENTITY_TYPE"),
    );
    assert_answer(
        &portal.call(GET, json!({"CRM_ENTITY_TYPE": "deal"})),
        400,
        &arg_null("CRM_ENTITY"),
    );
    assert_answer(
        &portal.call(GET, deal(json!({"CRM_ENTITY": "x"}))),
        400,
        &arg_type("CRM_ENTITY"),
    );
    let hook13 = portal.new_webhook(13, None);
    assert_answer(
        &portal.call_via(&hook13, GET, deal(json!({}))),
        403,
        &denied("You dont have access to this action"),
    );
}

#[test]
fn get_last_id_returns_the_latest_chat_active_or_not() {
    let portal = Portal::start();
    assert_eq!(portal.call(LAST, deal(json!({}))).result(), json!(8773));
    assert_eq!(
        portal
            .call(
                LAST,
                json!({"CRM_ENTITY_TYPE": "contact", "CRM_ENTITY": 201})
            )
            .result(),
        json!(8802)
    );
    let not_found = error("CRM_CHAT_EMPTY_CRM_DATA", "Could not find CRM entity");
    assert_answer(
        &portal.call(
            LAST,
            json!({"CRM_ENTITY_TYPE": "company", "CRM_ENTITY": 301}),
        ),
        400,
        &not_found,
    );
    assert_answer(
        &portal.call(LAST, deal(json!({"CRM_ENTITY_TYPE": "invoice"}))),
        400,
        &not_found,
    );
    let hook13 = portal.new_webhook(13, None);
    assert_answer(
        &portal.call_via(&hook13, LAST, deal(json!({}))),
        400,
        &not_found,
    );
}

#[test]
fn get_last_id_errors() {
    let portal = Portal::start();
    let empty = error("CRM_CHAT_EMPTY_CRM_DATA", "Empty CRM data");
    assert_answer(&portal.call(LAST, json!({})), 400, &empty);
    assert_answer(
        &portal.call(LAST, json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": "0"})),
        400,
        &empty,
    );
    assert_answer(
        &portal.call(LAST, deal(json!({"CRM_ENTITY": "abc"}))),
        400,
        &arg_type("CRM_ENTITY"),
    );
}

#[test]
fn user_add_joins_the_last_chat_and_lets_the_user_send() {
    let portal = Portal::start();
    let mut send = seed_example();
    send["USER_ID"] = json!(14);
    assert_eq!(
        portal.call(SEND, send.clone()).json()["error"],
        json!("CANCELED")
    );
    assert_eq!(
        portal.call(ADD, deal(json!({"USER_ID": 14}))).result(),
        json!(8773)
    );
    assert_eq!(portal.call(SEND, send).result(), json!(19880117));
    assert_answer(
        &portal.call(ADD, deal(json!({"USER_ID": 14, "CHAT_ID": 8773}))),
        400,
        &error(
            "WRONG_REQUEST",
            "You don't have access or user already member in chat",
        ),
    );
    let chats = portal.admin_get("chats");
    let members = chats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(8773))
        .unwrap()["members"]
        .clone();
    assert_eq!(members, json!([12, 14, 16]));
}

#[test]
fn user_add_errors_in_server_order() {
    let portal = Portal::start();
    let cases = [
        (json!({"CRM_ENTITY": 288}), 400, arg_null("CRM_ENTITY_TYPE")),
        (json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": -1}), 400, arg_type("CRM_ENTITY")),
        (deal(json!({"CHAT_ID": 8772, "USER_ID": 14})), 400, not_in_crm()),
        (deal(json!({})), 400, arg_null("Empty USER_ID")),
        (deal(json!({"USER_ID": 15})), 400, error("CRM_CHAT_USER_NOT_ACTIVE", "User not active")),
        (deal(json!({"USER_ID": 999})), 400, error("CRM_CHAT_USER_NOT_ACTIVE", "User not active")),
        (
            deal(json!({"USER_ID": 13})),
            403,
            denied("This user does not have access to the chat because he does not have access to this CRM entity"),
        ),
        (
            deal(json!({"USER_ID": 17})),
            403,
            denied("This user does not have access to the chat because he does not have access to this view chat history"),
        ),
    ];
    for (params, status, body) in cases {
        assert_answer(&portal.call(ADD, params.clone()), status, &body);
    }
    // No chat to join: 0, and USER_ID is never looked at.
    assert_eq!(
        portal
            .call(
                ADD,
                json!({"CRM_ENTITY_TYPE": "company", "CRM_ENTITY": 301})
            )
            .result(),
        json!(0)
    );
    // CHAT_ID that is not a number becomes 0 as well.
    assert_eq!(
        portal.call(ADD, deal(json!({"CHAT_ID": "abc"}))).result(),
        json!(0)
    );
}

#[test]
fn user_add_checks_the_callers_rights() {
    let portal = Portal::start();
    let hook13 = portal.new_webhook(13, None);
    let join = denied("You don't have access to join user to chat");
    assert_answer(
        &portal.call_via(&hook13, ADD, deal(json!({"USER_ID": 14}))),
        403,
        &join,
    );
    let hook17 = portal.new_webhook(17, None);
    assert_answer(
        &portal.call_via(&hook17, ADD, deal(json!({"USER_ID": 14}))),
        403,
        &join,
    );
}

#[test]
fn user_delete_removes_a_member() {
    let portal = Portal::start();
    assert_eq!(
        portal
            .call(DELETE, deal(json!({"USER_ID": 12, "CHAT_ID": 8773})))
            .result(),
        json!(8773)
    );
    assert_eq!(
        portal.call(SEND, seed_example()).json()["error"],
        json!("CANCELED")
    );
    assert_answer(
        &portal.call(DELETE, deal(json!({"USER_ID": 12}))),
        400,
        &error(
            "WRONG_REQUEST",
            "You don't have access or user already not in chat",
        ),
    );
}

#[test]
fn user_delete_errors_in_server_order() {
    let portal = Portal::start();
    let cases = [
        (
            json!({}),
            400,
            error("CRM_CHAT_EMPTY_USER", "Empty User ID"),
        ),
        (
            json!({"USER_ID": 12}),
            400,
            error("CRM_CHAT_EMPTY_CRM_DATA", "Empty CRM data"),
        ),
        (
            deal(json!({"USER_ID": 12, "CRM_ENTITY": "x"})),
            400,
            arg_type("CRM_ENTITY"),
        ),
        (
            deal(json!({"USER_ID": 12, "CHAT_ID": 8772})),
            400,
            not_in_crm(),
        ),
        (
            deal(json!({"USER_ID": 15})),
            400,
            error("CRM_CHAT_USER_NOT_ACTIVE", "User not active"),
        ),
    ];
    for (params, status, body) in cases {
        assert_answer(&portal.call(DELETE, params.clone()), status, &body);
    }
    let hook13 = portal.new_webhook(13, None);
    assert_answer(
        &portal.call_via(&hook13, DELETE, deal(json!({"USER_ID": 12}))),
        403,
        &denied("You don't have access to join user to chat"),
    );
    let hook17 = portal.new_webhook(17, None);
    assert_answer(
        &portal.call_via(&hook17, DELETE, deal(json!({"USER_ID": 12}))),
        403,
        &error(
            "CHAT_DELETE_USER_PERMISSION_DENIED",
            "You don't have access to delete a user from this chat",
        ),
    );
}

#[test]
fn lead_create_binds_a_new_lead_to_the_chat() {
    let portal = Portal::start();
    let lead102 = json!({"CRM_ENTITY_TYPE": "lead", "CRM_ENTITY": 102});
    assert_eq!(portal.call(GET, lead102.clone()).result(), json!([]));
    assert_eq!(
        portal.call(LEAD, json!({"CHAT_ID": 8900})).result(),
        json!(true)
    );
    assert_eq!(
        portal.call(GET, lead102.clone()).result(),
        json!([chat("8900", "livechat", "Live chat")])
    );
    assert_eq!(portal.call(LAST, lead102).result(), json!(8900));
    // Again, or for a chat already bound: true, and no new lead.
    assert_eq!(
        portal.call(LEAD, json!({"CHAT_ID": "8900"})).result(),
        json!(true)
    );
    assert_eq!(
        portal.call(LEAD, json!({"CHAT_ID": 8773})).result(),
        json!(true)
    );
    assert_eq!(
        portal
            .call(GET, json!({"CRM_ENTITY_TYPE": "lead", "CRM_ENTITY": 103}))
            .result(),
        json!([])
    );
}

#[test]
fn lead_create_errors() {
    let portal = Portal::start();
    let wrong_chat = error("CHAT_ID", "The specified chat identifier is incorrect");
    assert_answer(&portal.call(LEAD, json!({})), 400, &wrong_chat);
    assert_answer(
        &portal.call(LEAD, json!({"CHAT_ID": 424242})),
        400,
        &wrong_chat,
    );
    assert_answer(
        &portal.call(LEAD, json!({"CHAT_ID": 9000})),
        400,
        &error("CHAT_TYPE", "The specified chat is not an Open Channel"),
    );
    let hook12 = portal.new_webhook(12, None);
    assert_answer(
        &portal.call_via(&hook12, LEAD, json!({"CHAT_ID": 8900})),
        400,
        &error(
            "ERROR_USER_NOT_OPERATOR",
            "Attempt to save a CRM object by a user who is not an operator",
        ),
    );
    let hook13 = portal.new_webhook(13, None);
    assert_answer(
        &portal.call_via(&hook13, LEAD, json!({"CHAT_ID": 8900})),
        400,
        &error(
            "ACCESS_DENIED",
            "You cannot open this conversation as you do not have sufficient rights",
        ),
    );
}

#[test]
fn profile_server_time_methods_and_scope() {
    let portal = Portal::start();
    assert_eq!(
        portal.call("profile", json!({})).result(),
        json!({"ID": "1", "ADMIN": true, "NAME": "John", "LAST_NAME": "Smith", "PERSONAL_GENDER": "M", "TIME_ZONE": "", "TIME_ZONE_OFFSET": 0})
    );
    let hook12 = portal.new_webhook(12, None);
    assert_eq!(
        portal.call_via(&hook12, "profile", json!({})).result()["ADMIN"],
        json!(false)
    );
    let time = portal.call("server.time", json!({})).result();
    assert!(time.as_str().unwrap().ends_with("+00:00"), "{time}");
    let methods = portal.call("methods", json!({})).result();
    assert!(methods
        .as_array()
        .unwrap()
        .contains(&json!("imopenlines.crm.message.add")));
    assert!(methods
        .as_array()
        .unwrap()
        .contains(&json!("imopenlines.crm.chat.getlastid")));
    let crm_only = portal.new_webhook(1, Some(&["crm"]));
    let limited = portal.call_via(&crm_only, "methods", json!({})).result();
    assert!(!limited
        .as_array()
        .unwrap()
        .contains(&json!("imopenlines.crm.message.add")));
    assert_eq!(
        portal.call("scope", json!({})).result(),
        json!(["imopenlines", "crm", "im", "user"])
    );
}
