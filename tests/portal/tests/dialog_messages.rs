//! `im.dialog.messages.get`: messages sent by `imopenlines.crm.message.add`
//! in the chat's history, paging by `LIMIT`, `FIRST_ID` and `LAST_ID`, the
//! order of each direction, the unread-first read, field names, who may
//! read an open-line chat, the method's errors, its scope and faults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_answer, error, insufficient_scope, seed_example, Portal, Resp};
use serde_json::{json, Value};

const METHOD: &str = "imopenlines.crm.message.add";
const READ: &str = "im.dialog.messages.get";
const FIRST: i64 = 19_880_117;

/// Sends `text` to chat 8773 (deal 288) as `user`; returns the message id.
fn send(portal: &Portal, user: i64, text: &str) -> i64 {
    let mut params = seed_example();
    params["USER_ID"] = json!(user);
    params["MESSAGE"] = json!(text);
    portal.call(METHOD, params).result().as_i64().unwrap()
}

/// Sends `count` messages `m1`, `m2`, … from user 12; returns their ids.
fn send_many(portal: &Portal, count: usize) -> Vec<i64> {
    (1..=count)
        .map(|n| send(portal, 12, &format!("m{n}")))
        .collect()
}

fn read(portal: &Portal, params: Value) -> Resp {
    portal.call(READ, params)
}

fn ids(result: &Value) -> Vec<i64> {
    result["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {result}"))
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

fn ids_of(portal: &Portal, params: Value) -> Vec<i64> {
    ids(&read(portal, params).result())
}

fn is_iso8601_with_offset(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() == 25
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16, 22].iter().all(|&i| b[i] == b':')
        && (b[19] == b'+' || b[19] == b'-')
        && [
            0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24,
        ]
        .iter()
        .all(|&i| b[i].is_ascii_digit())
}

#[test]
fn a_sent_message_is_in_the_history_with_its_author_text_and_id() {
    let portal = Portal::start();
    let id = send(&portal, 12, "Hello from the test");
    assert_eq!(id, FIRST);
    let result = read(&portal, json!({"DIALOG_ID": "chat8773"})).result();
    assert_eq!(result["chat_id"], json!(8773));
    assert_eq!(result["files"], json!([]));
    let messages = result["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{result}");
    let message = &messages[0];
    let keys: Vec<&str> = message
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "id",
        "chat_id",
        "author_id",
        "date",
        "text",
        "unread",
        "uuid",
        "replaces",
        "params",
        "disappearing_date",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(message["id"], json!(FIRST));
    assert_eq!(message["chat_id"], json!(8773));
    assert_eq!(message["author_id"], json!(12));
    assert_eq!(message["text"], json!("Hello from the test"));
    assert_eq!(message["unread"], json!(false), "user 1 is not a member");
    let date = message["date"].as_str().unwrap();
    assert!(is_iso8601_with_offset(date), "{date}");
    let ledger_at = portal.messages()[0]["at"].as_str().unwrap().to_owned();
    assert_eq!(&date[..19], &ledger_at[..19], "stored when delivered");
    let attach = &message["params"]["ATTACH"];
    assert_eq!(attach.as_array().map(Vec::len), Some(1), "{message}");
    assert!(attach[0]["BLOCKS"][0]["MESSAGE"].is_string(), "{attach}");
    let users = result["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], json!(12));
    assert_eq!(users[0]["name"], json!("Olga Ivanova"));
    assert_eq!(users[0]["first_name"], json!("Olga"));
    assert_eq!(users[0]["last_name"], json!("Ivanova"));
    assert_eq!(users[0]["bot"], json!(false));
}

#[test]
fn the_text_is_what_the_messenger_stores() {
    let portal = Portal::start();
    send(&portal, 12, "  first line[BR]second line#BR#third \n");
    let result = read(&portal, json!({"DIALOG_ID": "chat8773"})).result();
    assert_eq!(
        result["messages"][0]["text"],
        json!("first line\nsecond line\nthird")
    );
    assert_eq!(
        portal.messages()[0]["message"],
        json!("  first line[BR]second line#BR#third \n"),
        "the ledger keeps what was sent"
    );
}

#[test]
fn an_empty_chat_answers_empty_lists() {
    let portal = Portal::start();
    let resp = read(&portal, json!({"DIALOG_ID": "chat8801"}));
    assert_eq!(
        resp.result(),
        json!({"chat_id": 8801, "messages": [], "users": [], "files": []})
    );
}

#[test]
fn the_newest_come_first_twenty_by_default_and_never_more_than_fifty() {
    let portal = Portal::start();
    let sent = send_many(&portal, 55);
    let newest_first: Vec<i64> = sent.iter().rev().copied().collect();
    assert_eq!(
        ids_of(&portal, json!({"DIALOG_ID": "chat8773"})),
        newest_first[..20]
    );
    assert_eq!(
        ids_of(&portal, json!({"DIALOG_ID": "chat8773", "LIMIT": 3})),
        newest_first[..3]
    );
    assert_eq!(
        ids_of(&portal, json!({"DIALOG_ID": "chat8773", "LIMIT": "100"})),
        newest_first[..50]
    );
}

#[test]
fn a_limit_of_zero_or_garbage_returns_the_whole_history() {
    let portal = Portal::start();
    let sent = send_many(&portal, 55);
    let newest_first: Vec<i64> = sent.iter().rev().copied().collect();
    for limit in [json!(0), json!("-5"), json!("abc")] {
        assert_eq!(
            ids_of(&portal, json!({"DIALOG_ID": "chat8773", "LIMIT": limit})),
            newest_first,
            "LIMIT {limit}"
        );
    }
}

#[test]
fn last_id_pages_backwards_to_an_empty_page() {
    let portal = Portal::start();
    let sent = send_many(&portal, 7);
    let mut seen = Vec::new();
    let mut last_id = json!(0);
    loop {
        let page = ids_of(
            &portal,
            json!({"DIALOG_ID": "chat8773", "LIMIT": 3, "LAST_ID": last_id}),
        );
        if page.is_empty() {
            break;
        }
        assert!(
            page.windows(2).all(|w| w[0] > w[1]),
            "newest first: {page:?}"
        );
        last_id = json!(page.iter().min().unwrap());
        seen.extend(page);
        assert!(seen.len() <= 7, "{seen:?}");
    }
    let expected: Vec<i64> = sent.iter().rev().copied().collect();
    assert_eq!(seen, expected);
    let result = read(
        &portal,
        json!({"DIALOG_ID": "chat8773", "LAST_ID": sent[0]}),
    )
    .result();
    assert_eq!(
        result,
        json!({"chat_id": 8773, "messages": [], "users": [], "files": []})
    );
}

#[test]
fn first_id_reads_forwards_oldest_first() {
    let portal = Portal::start();
    let sent = send_many(&portal, 7);
    assert_eq!(
        ids_of(
            &portal,
            json!({"DIALOG_ID": "chat8773", "FIRST_ID": 0, "LIMIT": 3})
        ),
        sent[..3],
        "FIRST_ID 0: from the very first message"
    );
    assert_eq!(
        ids_of(
            &portal,
            json!({"DIALOG_ID": "chat8773", "FIRST_ID": sent[2], "LIMIT": 3})
        ),
        sent[3..6]
    );
    assert_eq!(
        ids_of(
            &portal,
            json!({"DIALOG_ID": "chat8773", "FIRST_ID": sent[5]})
        ),
        sent[6..]
    );
    assert_eq!(
        ids_of(
            &portal,
            json!({"DIALOG_ID": "chat8773", "FIRST_ID": sent[6]})
        ),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids_of(
            &portal,
            json!({"DIALOG_ID": "chat8773", "FIRST_ID": sent[4], "LAST_ID": "not checked"})
        ),
        sent[5..],
        "FIRST_ID wins; LAST_ID is then not even validated"
    );
}

#[test]
fn only_the_read_chat_is_listed() {
    let portal = Portal::start();
    send(&portal, 12, "to 8773");
    let mut other = seed_example();
    other["CRM_ENTITY_TYPE"] = json!("lead");
    other["CRM_ENTITY"] = json!(101);
    other["CHAT_ID"] = json!(8801);
    other["MESSAGE"] = json!("to 8801");
    portal.call(METHOD, other).result();
    let result = read(&portal, json!({"DIALOG_ID": "chat8801"})).result();
    assert_eq!(ids(&result), vec![FIRST + 1]);
    assert_eq!(result["messages"][0]["text"], json!("to 8801"));
}

#[test]
fn chat_id_and_parameter_names_in_any_case_are_accepted() {
    let portal = Portal::start();
    let sent = send_many(&portal, 3);
    let newest_first: Vec<i64> = sent.iter().rev().copied().collect();
    assert_eq!(ids_of(&portal, json!({"CHAT_ID": 8773})), newest_first);
    assert_eq!(ids_of(&portal, json!({"CHAT_ID": "8773"})), newest_first);
    assert_eq!(
        ids_of(&portal, json!({"CHAT_ID": 8773, "DIALOG_ID": "chat8801"})),
        newest_first,
        "CHAT_ID overrides DIALOG_ID"
    );
    assert_eq!(
        ids_of(&portal, json!({"dialog_id": "CHAT8773", "limit": 1})),
        newest_first[..1]
    );
}

#[test]
fn a_private_dialogue_the_portal_does_not_have_is_false() {
    let portal = Portal::start();
    assert_eq!(
        read(&portal, json!({"DIALOG_ID": "12"})).result(),
        json!(false)
    );
    assert_eq!(
        read(&portal, json!({"DIALOG_ID": 12})).result(),
        json!(false)
    );
}

#[test]
fn invalid_dialog_ids_are_dialog_id_empty() {
    let portal = Portal::start();
    let empty = error("DIALOG_ID_EMPTY", "Dialog ID can't be empty");
    for params in [
        json!({}),
        json!({"DIALOG_ID": ""}),
        json!({"DIALOG_ID": "0"}),
        json!({"DIALOG_ID": "chat"}),
        json!({"DIALOG_ID": "chat 8773"}),
        json!({"DIALOG_ID": "room8773"}),
        json!({"DIALOG_ID": 8773.5}),
        json!({"DIALOG_ID": ["chat8773"]}),
        json!({"CHAT_ID": "8773x"}),
    ] {
        let resp = read(&portal, params.clone());
        assert_eq!((resp.status, resp.json()), (400, empty.clone()), "{params}");
    }
}

#[test]
fn chats_the_caller_cannot_see_are_access_error() {
    let portal = Portal::start();
    let denied = error(
        "ACCESS_ERROR",
        "You do not have access to the specified dialog",
    );
    for dialog in ["chat424242", "chat0", "sg5", "crm5", "424242"] {
        let resp = read(&portal, json!({"DIALOG_ID": dialog}));
        assert_answer(&resp, 403, &denied);
    }
    let pavel = portal.new_webhook(13, None);
    let resp = portal.call_via(
        &pavel,
        READ,
        json!({"DIALOG_ID": "chat8773", "FIRST_ID": "x"}),
    );
    assert_answer(&resp, 403, &denied);
}

#[test]
fn who_may_read_an_open_line_chat() {
    let portal = Portal::start();
    send(&portal, 12, "hello");
    let denied = error(
        "ACCESS_ERROR",
        "You do not have access to the specified dialog",
    );
    // (user, chat, may read)
    let cases = [
        (12, "chat8773", true),  // operator, member
        (16, "chat8773", true),  // bot, member
        (1, "chat8773", true),   // administrator with open-line rights
        (14, "chat8773", true),  // open-line rights, not a member
        (17, "chat8773", true),  // no open-line rights, reads the deal
        (17, "chat8900", false), // no open-line rights, no CRM binding
        (13, "chat8773", false), // neither rights
        (14, "chat8900", true),  // open-line rights
        (14, "chat9000", false), // group chat: members only
        (12, "chat9000", true),  // member of the group chat
    ];
    for (user, dialog, allowed) in cases {
        let hook = portal.new_webhook(user, None);
        let resp = portal.call_via(&hook, READ, json!({"DIALOG_ID": dialog}));
        if allowed {
            assert_eq!(resp.status, 200, "user {user} {dialog}: {}", resp.text);
        } else {
            assert_answer(&resp, 403, &denied);
        }
    }
}

#[test]
fn malformed_first_and_last_ids_are_refused() {
    let portal = Portal::start();
    let first = error("FIRST_ID_STRING", "First ID can't be string");
    let last = error("LAST_ID_STRING", "Last ID can't be string");
    for value in [
        json!("abc"),
        json!("-1"),
        json!(""),
        json!("1.5"),
        json!(" 7"),
    ] {
        let resp = read(&portal, json!({"DIALOG_ID": "chat8773", "FIRST_ID": value}));
        assert_answer(&resp, 400, &first);
        let resp = read(&portal, json!({"DIALOG_ID": "chat8773", "LAST_ID": value}));
        assert_answer(&resp, 400, &last);
    }
    for value in [json!("12"), json!(12), json!(null)] {
        let resp = read(&portal, json!({"DIALOG_ID": "chat8773", "LAST_ID": value}));
        assert_eq!(resp.status, 200, "{value}: {}", resp.text);
    }
}

#[test]
fn a_member_with_unread_messages_gets_them_first_unless_an_id_is_given() {
    let portal = Portal::start();
    let own: Vec<i64> = (1..=2)
        .map(|n| send(&portal, 12, &format!("a{n}")))
        .collect();
    let bot: Vec<i64> = (1..=3)
        .map(|n| send(&portal, 16, &format!("b{n}")))
        .collect();
    let olga = portal.new_webhook(12, None);
    let read_as = |hook: &str, params: Value| portal.call_via(hook, READ, params).result();
    // Three unread, more than LIMIT 2: the two oldest unread (newest of them
    // first), then two messages before the first unread one.
    let result = read_as(&olga, json!({"DIALOG_ID": "chat8773", "LIMIT": 2}));
    assert_eq!(ids(&result), vec![bot[1], bot[0], own[1], own[0]]);
    let unread: Vec<&Value> = result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["unread"])
        .collect();
    assert_eq!(
        unread,
        [&json!(true), &json!(true), &json!(false), &json!(false)]
    );
    let users: Vec<&Value> = result["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["id"])
        .collect();
    assert_eq!(users, [&json!(16)], "authors of the unread part only");
    let result = read_as(&olga, json!({"DIALOG_ID": "chat8773", "LIMIT": 1}));
    assert_eq!(ids(&result), vec![bot[0], own[1]]);
    // The unread fit into LIMIT 3: the limit grows by their number.
    let result = read_as(&olga, json!({"DIALOG_ID": "chat8773", "LIMIT": 3}));
    assert_eq!(ids(&result), vec![bot[2], bot[1], bot[0], own[1], own[0]]);
    // LAST_ID 0 reads from the newest, whatever is unread.
    let result = read_as(
        &olga,
        json!({"DIALOG_ID": "chat8773", "LIMIT": 2, "LAST_ID": 0}),
    );
    assert_eq!(ids(&result), vec![bot[2], bot[1]]);
    // A reader who is not a member has nothing unread.
    let result = read(&portal, json!({"DIALOG_ID": "chat8773", "LIMIT": 2}));
    assert_eq!(ids(&result.result()), vec![bot[2], bot[1]]);
    // Writing reads the chat: after Olga's reply nothing is unread for her.
    let reply = send(&portal, 12, "a3");
    let result = read_as(&olga, json!({"DIALOG_ID": "chat8773", "LIMIT": 2}));
    assert_eq!(ids(&result), vec![reply, bot[2]]);
}

#[test]
fn the_method_needs_the_im_scope() {
    let portal = Portal::start();
    let hook = portal.new_webhook(1, Some(&["imopenlines", "crm"]));
    let resp = portal.call_via(&hook, READ, json!({"DIALOG_ID": "chat8773"}));
    assert_answer(&resp, 401, &insufficient_scope("webhook"));
    let token = portal
        .admin_post("tokens", json!({"scope": ["imopenlines"]}))
        .json()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = portal.post_json(
        &portal.rest(READ),
        &json!({"DIALOG_ID": "chat8773", "auth": token}),
    );
    assert_answer(&resp, 401, &insufficient_scope("access"));
    let im_only = portal.new_webhook(1, Some(&["im"]));
    let resp = portal.call_via(&im_only, READ, json!({"DIALOG_ID": "chat8773"}));
    assert_eq!(resp.status, 200, "{}", resp.text);
}

#[test]
fn it_runs_inside_batch() {
    let portal = Portal::start();
    let id = send(&portal, 12, "in batch");
    let resp = portal.call(
        "batch",
        json!({"halt": 0, "cmd": {"h": "im.dialog.messages.get?DIALOG_ID=chat8773&LIMIT=1"}}),
    );
    let result = resp.result();
    assert_eq!(ids(&result["result"]["h"]), vec![id]);
}

#[test]
fn a_slow_send_appears_in_the_history_only_once_stored() {
    let portal = Portal::start();
    portal.add_faults(json!([{"method": METHOD, "kind": "delay", "delayMs": 500}]));
    let hook = portal.hook(METHOD);
    let body = seed_example().to_string();
    let slow = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&hook)
            .header("Content-Type", "application/json")
            .send(body.as_str())
            .map(|mut r| r.body_mut().read_to_string().unwrap_or_default())
    });
    std::thread::sleep(Duration::from_millis(150));
    let during = read(&portal, json!({"DIALOG_ID": "chat8773", "LAST_ID": 0})).result();
    assert_eq!(ids(&during), Vec::<i64>::new(), "not stored yet");
    let answer = slow.join().unwrap().unwrap();
    assert!(answer.contains(&FIRST.to_string()), "{answer}");
    let after = read(&portal, json!({"DIALOG_ID": "chat8773", "LAST_ID": 0})).result();
    assert_eq!(ids(&after), vec![FIRST]);
}

#[test]
fn faults_apply_to_reads_too() {
    let portal = Portal::start();
    send(&portal, 12, "x");
    portal.add_faults(json!([
        {"method": READ, "kind": "status500_before"},
        {"method": READ, "kind": "delay", "delayMs": 300},
    ]));
    let resp = read(&portal, json!({"DIALOG_ID": "chat8773"}));
    assert_answer(
        &resp,
        500,
        &error("INTERNAL_SERVER_ERROR", "Internal server error"),
    );
    let started = std::time::Instant::now();
    let resp = read(&portal, json!({"DIALOG_ID": "chat8773"}));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(ids(&resp.result()), vec![FIRST]);
}

#[test]
fn reset_empties_the_history() {
    let portal = Portal::start();
    send(&portal, 12, "x");
    assert_eq!(portal.admin_post("reset", json!({})).status, 200);
    let result = read(&portal, json!({"DIALOG_ID": "chat8773"})).result();
    assert_eq!(ids(&result), Vec::<i64>::new());
}
