//! `imopenlines.crm.message.add`: the documented example, every validation
//! step in order, and what gets delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use b24_portal::{Config, NonMemberCode};
use common::{arg_null, arg_type, assert_answer, error, seed_example, Portal};
use serde_json::{json, Value};

const METHOD: &str = "imopenlines.crm.message.add";

fn with(changes: Value) -> Value {
    let mut params = seed_example();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            params.as_object_mut().unwrap().remove(k);
        } else {
            params[k] = v.clone();
        }
    }
    params
}

#[test]
fn documented_example_succeeds_with_the_documented_id() {
    let portal = Portal::start();
    let resp = portal.call(METHOD, seed_example());
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = resp.json();
    assert_eq!(body["result"], json!(19880117));
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only result and time: {}",
        resp.text
    );
    assert!(
        resp.text.starts_with("{\"result\":19880117,\"time\":{"),
        "{}",
        resp.text
    );

    let second = portal.call(METHOD, seed_example());
    assert_eq!(second.result(), json!(19880118));
}

#[test]
fn time_object_has_integer_start_and_processing_by_default() {
    let portal = Portal::start();
    let resp = portal.call(METHOD, seed_example());
    let time = resp.json()["time"].clone();
    let keys = common::TIME_KEYS;
    assert_eq!(time.as_object().unwrap().len(), keys.len());
    // Fields come in the server's order on the wire.
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            resp.text
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("no {k}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", resp.text);
    assert!(time["start"].is_i64(), "start: {}", time["start"]);
    assert!(
        time["processing"].is_i64(),
        "processing: {}",
        time["processing"]
    );
    assert!(time["finish"].is_f64());
    assert!(time["duration"].is_f64());
    assert!(time["operating"].is_f64());
    let start = time["start"].as_i64().unwrap();
    assert_eq!(time["operating_reset_at"].as_i64(), Some(start + 600));
    for key in ["date_start", "date_finish"] {
        let date = time[key].as_str().unwrap();
        assert!(
            date.ends_with("+00:00") && date.len() == 25,
            "{key}: {date}"
        );
    }
}

#[test]
fn float_time_option_sends_floats() {
    let portal = Portal::with(Config {
        float_time: true,
        ..Config::default()
    });
    let time = portal.call(METHOD, seed_example()).json()["time"].clone();
    assert!(time["start"].is_f64(), "start: {}", time["start"]);
    assert!(
        time["processing"].is_f64(),
        "processing: {}",
        time["processing"]
    );
}

#[test]
fn delivered_message_is_in_the_ledger() {
    let portal = Portal::start();
    portal.call(METHOD, seed_example()).result();
    let messages = portal.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["id"], json!(19880117));
    assert_eq!(m["chatId"], json!(8773));
    assert_eq!(m["userId"], json!(12));
    assert_eq!(m["crmEntityType"], json!("deal"));
    assert_eq!(m["crmEntity"], json!(288));
    assert_eq!(m["message"], json!("Hello from the test"));
    assert_eq!(m["callerUserId"], json!(1));
    assert_eq!(m["auth"], json!("webhook"));
    assert!(m["at"].as_str().unwrap().ends_with("+00:00"));
}

#[test]
fn arguments_are_checked_in_server_order() {
    let portal = Portal::start();
    let cases: Vec<(Value, Value)> = vec![
        (json!({}), arg_null("CRM_ENTITY_TYPE")),
        (
            with(json!({"CRM_ENTITY_TYPE": ""})),
            arg_null("CRM_ENTITY_TYPE"),
        ),
        (
            with(json!({"CRM_ENTITY_TYPE": "0"})),
            arg_null("CRM_ENTITY_TYPE"),
        ),
        // CRM_ENTITY is reported before later missing arguments.
        (json!({"CRM_ENTITY_TYPE": "deal"}), arg_null("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": null})), arg_null("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": "0"})), arg_null("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": 0})), arg_null("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": "abc"})), arg_type("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": -5})), arg_type("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": "0.5"})), arg_type("CRM_ENTITY")),
        (with(json!({"CRM_ENTITY": true})), arg_type("CRM_ENTITY")),
        (
            with(json!({"USER_ID": null, "CHAT_ID": null, "MESSAGE": null})),
            arg_null("USER_ID"),
        ),
        (with(json!({"USER_ID": "twelve"})), arg_type("USER_ID")),
        (with(json!({"USER_ID": "-12"})), arg_type("USER_ID")),
        (
            with(json!({"CHAT_ID": null, "MESSAGE": null})),
            arg_null("CHAT_ID"),
        ),
        (with(json!({"CHAT_ID": "0"})), arg_null("CHAT_ID")),
        (with(json!({"CHAT_ID": "8773abc"})), arg_type("CHAT_ID")),
        (with(json!({"MESSAGE": null})), arg_null("MESSAGE")),
        (with(json!({"MESSAGE": ""})), arg_null("MESSAGE")),
        (with(json!({"MESSAGE": "0"})), arg_null("MESSAGE")),
    ];
    for (params, expected) in cases {
        let resp = portal.call(METHOD, params.clone());
        assert_eq!(
            (resp.status, resp.json()),
            (400, expected),
            "params: {params}"
        );
    }
    assert!(portal.messages().is_empty());
}

#[test]
fn caller_without_crm_access_is_denied_before_the_sender_is_checked() {
    let portal = Portal::start();
    let hook13 = portal.new_webhook(13, None);
    let resp = portal.call_via(&hook13, METHOD, with(json!({"USER_ID": 13})));
    assert_answer(
        &resp,
        403,
        &error(
            "ACCESS_DENIED",
            "Access denied! You dont have access to this action",
        ),
    );
}

#[test]
fn sender_without_crm_access_is_denied() {
    let portal = Portal::start();
    let denied = error(
        "ACCESS_DENIED",
        "Access denied! User dont have access to this entity",
    );
    assert_answer(
        &portal.call(METHOD, with(json!({"USER_ID": 13}))),
        403,
        &denied,
    );
    assert_answer(
        &portal.call(METHOD, with(json!({"USER_ID": 999}))),
        403,
        &denied,
    );
}

#[test]
fn chat_must_be_an_active_chat_of_the_entity() {
    let portal = Portal::start();
    let not_in_crm = error(
        "CHAT_NOT_IN_CRM",
        "Chat does not belong to the CRM entity being checked",
    );
    for changes in [
        json!({"CHAT_ID": 8772}),                // finished dialogue of deal 288
        json!({"CHAT_ID": 8801}),                // chat of lead 101
        json!({"CRM_ENTITY": 999}),              // deal without chats
        json!({"CHAT_ID": 424242}),              // no such chat
        json!({"USER_ID": 14, "CHAT_ID": 8772}), // checked before membership
    ] {
        assert_answer(
            &portal.call(METHOD, with(changes.clone())),
            400,
            &not_in_crm,
        );
    }
    assert!(portal.messages().is_empty());
}

#[test]
fn non_member_sender_gets_canceled_by_default() {
    let portal = Portal::start();
    let resp = portal.call(METHOD, with(json!({"USER_ID": 14})));
    assert_answer(
        &resp,
        400,
        &error("CANCELED", "You cannot send messages to the specified chat"),
    );
    let admin_not_member = portal.call(METHOD, with(json!({"USER_ID": 1})));
    assert_eq!(admin_not_member.json()["error"], json!("CANCELED"));
    assert!(portal.messages().is_empty());
}

#[test]
fn non_member_code_can_be_message_add_error() {
    let portal = Portal::with(Config {
        non_member_code: NonMemberCode::MessageAddError,
        ..Config::default()
    });
    let resp = portal.call(METHOD, with(json!({"USER_ID": 14})));
    assert_answer(
        &resp,
        400,
        &error("MESSAGE_ADD_ERROR", "Message isn't added"),
    );
}

#[test]
fn entity_type_is_case_insensitive_and_kept_as_sent() {
    let portal = Portal::start();
    portal
        .call(METHOD, with(json!({"CRM_ENTITY_TYPE": "DEAL"})))
        .result();
    portal
        .call(METHOD, with(json!({"CRM_ENTITY_TYPE": "Deal"})))
        .result();
    let types: Vec<Value> = portal
        .messages()
        .iter()
        .map(|m| m["crmEntityType"].clone())
        .collect();
    assert_eq!(types, [json!("DEAL"), json!("Deal")]);
}

#[test]
fn unknown_entity_type_is_treated_as_unreadable() {
    let portal = Portal::start();
    let resp = portal.call(METHOD, with(json!({"CRM_ENTITY_TYPE": "invoice"})));
    assert_answer(
        &resp,
        403,
        &error(
            "ACCESS_DENIED",
            "Access denied! You dont have access to this action",
        ),
    );
    // The server lets the type NONE through its access check.
    let none = portal.call(METHOD, with(json!({"CRM_ENTITY_TYPE": "NONE"})));
    assert_eq!(
        (none.status, none.json()["error"].clone()),
        (400, json!("CHAT_NOT_IN_CRM"))
    );
}

#[test]
fn ids_may_be_numeric_strings_with_php_semantics() {
    let portal = Portal::start();
    let resp = portal.call(
        METHOD,
        with(json!({"CRM_ENTITY": "288", "USER_ID": "12.7", "CHAT_ID": " 8773"})),
    );
    assert_eq!(resp.result(), json!(19880117));
    let m = &portal.messages()[0];
    assert_eq!(
        (m["userId"].clone(), m["chatId"].clone()),
        (json!(12), json!(8773))
    );
}

#[test]
fn bot_member_can_send_and_other_entities_work() {
    let portal = Portal::start();
    portal.call(METHOD, with(json!({"USER_ID": 16}))).result();
    portal
        .call(
            METHOD,
            with(json!({"CRM_ENTITY_TYPE": "lead", "CRM_ENTITY": 101, "CHAT_ID": 8801})),
        )
        .result();
    portal
        .call(
            METHOD,
            with(json!({"CRM_ENTITY_TYPE": "contact", "CRM_ENTITY": 201, "CHAT_ID": 8802})),
        )
        .result();
    assert_eq!(portal.messages().len(), 3);
}

#[test]
fn numeric_message_is_sent_as_text_and_array_message_fails() {
    let portal = Portal::start();
    portal.call(METHOD, with(json!({"MESSAGE": 42}))).result();
    assert_eq!(portal.messages()[0]["message"], json!("42"));
    let resp = portal.call(METHOD, with(json!({"MESSAGE": ["a"]})));
    assert_answer(
        &resp,
        400,
        &error("MESSAGE_ADD_ERROR", "Message isn't added"),
    );
}
