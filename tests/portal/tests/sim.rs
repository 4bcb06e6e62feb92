//! The in-process portal (`b24_portal::sim`): the same answers as over HTTP,
//! on a clock that moves only when told.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use b24_portal::sim::{InProcess, Reply, WritableChat};
use b24_portal::{Config, RateLimit, FIRST_MESSAGE_ID};
use serde_json::{json, Value};

const START: f64 = 1_700_000_000.0;
const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn json_of(reply: &Reply) -> Value {
    assert_eq!(
        reply.content_type, "application/json; charset=utf-8",
        "{reply:?}"
    );
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
}

fn result_of(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    json_of(reply)["result"].clone()
}

fn error(reply: &Reply) -> String {
    json_of(reply)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn deal_chat(portal: &InProcess) -> WritableChat {
    portal
        .writable_chats()
        .into_iter()
        .find(|c| c.crm_entity_type == "deal")
        .expect("the seed has a writable deal chat")
}

/// The form body of `imopenlines.crm.message.add` to `chat`, plus `extra`.
fn message_body(chat: &WritableChat, text: &str, extra: &[(&str, &str)]) -> String {
    let (entity, user, chat_id) = (
        chat.crm_entity.to_string(),
        chat.user_id.to_string(),
        chat.chat_id.to_string(),
    );
    let mut pairs = vec![
        ("CRM_ENTITY_TYPE", chat.crm_entity_type.as_str()),
        ("CRM_ENTITY", entity.as_str()),
        ("USER_ID", user.as_str()),
        ("CHAT_ID", chat_id.as_str()),
        ("MESSAGE", text),
    ];
    pairs.extend_from_slice(extra);
    form(&pairs)
}

fn add_via_webhook(portal: &InProcess, chat: &WritableChat, text: &str) -> Reply {
    let url = format!("{}imopenlines.crm.message.add.json", portal.webhook_url());
    portal.handle("POST", &url, FORM, &message_body(chat, text, &[]))
}

fn add_with_token(portal: &InProcess, chat: &WritableChat, token: &str, text: &str) -> Reply {
    portal.handle(
        "POST",
        "https://portal.example/rest/imopenlines.crm.message.add.json",
        FORM,
        &message_body(chat, text, &[("auth", token)]),
    )
}

#[test]
fn the_seed_offers_writable_chats() {
    let portal = InProcess::new(Config::default(), START);
    let chats: Vec<(u64, String, u64, u64)> = portal
        .writable_chats()
        .into_iter()
        .map(|c| (c.chat_id, c.crm_entity_type, c.crm_entity, c.user_id))
        .collect();
    assert_eq!(
        chats,
        [
            (8773, "deal".to_owned(), 288, 12),
            (8801, "lead".to_owned(), 101, 12),
            (8802, "contact".to_owned(), 201, 12),
            (8810, "deal".to_owned(), 290, 12),
            (8811, "deal".to_owned(), 290, 12),
            (8841, "deal".to_owned(), 294, 12),
        ]
    );
    assert!(portal
        .webhook_url()
        .starts_with("https://portal.example/rest/1/"));
    assert!(portal.webhook_url().ends_with('/'));
    for chat in portal.writable_chats() {
        assert_eq!(add_via_webhook(&portal, &chat, "hi").status, 200);
    }
}

#[test]
fn a_webhook_message_add_stores_one_message_and_answers_its_id() {
    let portal = InProcess::new(Config::default(), START);
    let chat = deal_chat(&portal);
    let reply = add_via_webhook(&portal, &chat, "  Hello[BR]world ");
    assert_eq!(result_of(&reply), json!(FIRST_MESSAGE_ID));
    let time = &json_of(&reply)["time"];
    assert_eq!(time["start"], json!(START as i64), "{time}");
    assert_eq!(time["date_start"], json!("2023-11-14T22:13:20+00:00"));
    let messages = portal.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.id, FIRST_MESSAGE_ID as u64);
    assert_eq!(message.chat_id, chat.chat_id);
    assert_eq!(message.author_id, chat.user_id);
    assert_eq!(message.sent, "  Hello[BR]world ");
    assert_eq!(message.stored, "Hello\nworld");

    let second = add_via_webhook(&portal, &chat, "again");
    assert_eq!(result_of(&second), json!(FIRST_MESSAGE_ID + 1));
    let ids: Vec<u64> = portal.messages().iter().map(|m| m.id).collect();
    assert_eq!(ids, [FIRST_MESSAGE_ID as u64, FIRST_MESSAGE_ID as u64 + 1]);
}

#[test]
fn errors_paths_and_verbs_answer_as_over_http() {
    let portal = InProcess::new(Config::default(), START);
    let chat = deal_chat(&portal);
    let wrong = portal.handle(
        "POST",
        "https://portal.example/rest/1/wrong/imopenlines.crm.message.add.json",
        FORM,
        &message_body(&chat, "x", &[]),
    );
    assert_eq!(reply_code(&wrong), (401, "INVALID_CREDENTIALS".to_owned()));
    let none = portal.handle("GET", "https://portal.example/rest/nope.json", "", "");
    assert_eq!(
        reply_code(&none),
        (404, "ERROR_METHOD_NOT_FOUND".to_owned())
    );
    let json_body = portal.handle(
        "POST",
        &format!("{}imopenlines.crm.message.add", portal.webhook_url()),
        "application/json",
        &json!({
            "CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12,
            "CHAT_ID": 8773, "MESSAGE": "as JSON"
        })
        .to_string(),
    );
    assert_eq!(result_of(&json_body), json!(FIRST_MESSAGE_ID));
    let outside = portal.handle("GET", "https://portal.example/other", "", "");
    assert_eq!(outside.status, 404);
    assert_eq!(outside.body, "Not found\n");
    let preflight = portal.handle("OPTIONS", "https://portal.example/rest/profile", "", "");
    assert_eq!((preflight.status, preflight.body.as_str()), (200, ""));
    assert_eq!(portal.handle("GET", "not a url", "", "").status, 400);
}

fn reply_code(reply: &Reply) -> (u16, String) {
    (reply.status, error(reply))
}

#[test]
fn an_expired_token_is_refused_and_a_refreshed_one_works() {
    let portal = InProcess::new(Config::default(), START);
    let chat = deal_chat(&portal);
    let (access, refresh, expires_at) = portal.issue_token(1, 60.0);
    assert_eq!(expires_at, START + 60.0);
    assert_eq!(add_with_token(&portal, &chat, &access, "one").status, 200);

    portal.set_time(START + 59.5);
    assert_eq!(add_with_token(&portal, &chat, &access, "two").status, 200);
    portal.set_time(START + 61.0);
    let expired = add_with_token(&portal, &chat, &access, "three");
    assert_eq!(reply_code(&expired), (401, "expired_token".to_owned()));
    assert_eq!(portal.messages().len(), 2);

    let (fresh, _next_refresh, expires_in) = portal.refresh(&refresh).expect("refresh works");
    assert_eq!(expires_in, 3600.0);
    assert_ne!(fresh, access);
    let reply = add_with_token(&portal, &chat, &fresh, "four");
    assert_eq!(result_of(&reply), json!(FIRST_MESSAGE_ID + 2));
    portal.set_time(START + 61.0 + 3600.0);
    let later = add_with_token(&portal, &chat, &fresh, "five");
    assert_eq!(reply_code(&later), (401, "expired_token".to_owned()));
}

#[test]
fn a_refresh_token_works_once() {
    let portal = InProcess::new(Config::default(), START);
    let (_, refresh, _) = portal.issue_token(1, 60.0);
    let (_, next, _) = portal.refresh(&refresh).expect("first exchange");
    assert_eq!(portal.refresh(&refresh), Err("invalid_grant".to_owned()));
    assert!(portal.refresh(&next).is_ok(), "the new refresh token works");
    assert_eq!(portal.refresh("unknown"), Err("invalid_grant".to_owned()));
    assert_eq!(portal.refresh(""), Err("invalid_request".to_owned()));
}

#[test]
fn the_clock_moves_only_when_set_and_never_back() {
    let portal = InProcess::new(Config::default(), START);
    assert_eq!(portal.now(), START);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(portal.now(), START);
    portal.set_time(START + 10.25);
    assert_eq!(portal.now(), START + 10.25);
    portal.set_time(START);
    assert_eq!(portal.now(), START + 10.25);
    let time = result_of(&portal.handle(
        "GET",
        &format!("{}server.time", portal.webhook_url()),
        "",
        "",
    ));
    assert_eq!(time, json!("2023-11-14T22:13:30+00:00"));
}

#[test]
fn more_than_the_burst_at_one_instant_is_query_limit_exceeded_until_time_passes() {
    let config = Config {
        rate_limit: RateLimit {
            enabled: true,
            burst: 50.0,
            drain_per_second: 2.0,
        },
        ..Config::default()
    };
    let portal = InProcess::new(config, START);
    let url = format!("{}profile", portal.webhook_url());
    for i in 0..50 {
        assert_eq!(
            portal.handle("GET", &url, "", "").status,
            200,
            "request {i}"
        );
    }
    let refused = portal.handle("GET", &url, "", "");
    assert_eq!(
        reply_code(&refused),
        (503, "QUERY_LIMIT_EXCEEDED".to_owned())
    );
    portal.set_time(START + 1.0);
    let admitted: Vec<u16> = (0..3)
        .map(|_| portal.handle("GET", &url, "", "").status)
        .collect();
    assert_eq!(admitted, [200, 200, 503], "one second drains two requests");
    portal.set_time(START + 100.0);
    assert_eq!(portal.handle("GET", &url, "", "").status, 200);
}

#[test]
fn batch_runs_its_commands() {
    let portal = InProcess::new(Config::default(), START);
    let chat = deal_chat(&portal);
    let add = format!(
        "imopenlines.crm.message.add?{}",
        message_body(&chat, "from batch", &[])
    );
    let read = format!("im.dialog.messages.get?DIALOG_ID=chat{}", chat.chat_id);
    let (token, _, _) = portal.issue_token(1, 3600.0);
    let body = form(&[
        ("halt", "0"),
        ("cmd[send]", &add),
        ("cmd[read]", &read),
        ("auth", &token),
    ]);
    let reply = portal.handle(
        "POST",
        "https://portal.example/rest/batch.json",
        FORM,
        &body,
    );
    let result = result_of(&reply);
    assert_eq!(
        result["result"]["send"],
        json!(FIRST_MESSAGE_ID),
        "{result}"
    );
    assert_eq!(
        result["result"]["read"]["messages"][0]["text"],
        json!("from batch"),
        "{result}"
    );
    assert_eq!(result["result_error"], json!([]), "{result}");
    assert_eq!(portal.messages().len(), 1);

    let via_webhook = portal.handle(
        "POST",
        &format!("{}batch", portal.webhook_url()),
        FORM,
        &form(&[("cmd[0]", "server.time"), ("cmd[1]", "nope.method")]),
    );
    let result = json_of(&via_webhook)["result"].clone();
    assert_eq!(
        result["result"][0],
        json!("2023-11-14T22:13:20+00:00"),
        "{result}"
    );
    assert_eq!(
        result["result_error"]["1"]["error"],
        json!("ERROR_METHOD_NOT_FOUND"),
        "{result}"
    );
}

#[test]
fn dialog_messages_get_returns_the_stored_messages_parsed() {
    let portal = InProcess::new(Config::default(), START);
    let chat = deal_chat(&portal);
    let texts = ["plain text", "See https://example.com/page for details"];
    for text in texts {
        assert_eq!(add_via_webhook(&portal, &chat, text).status, 200);
    }
    let url = format!(
        "{}im.dialog.messages.get.json?DIALOG_ID=chat{}",
        portal.webhook_url(),
        chat.chat_id
    );
    let result = result_of(&portal.handle("GET", &url, "", ""));
    let got: Vec<(u64, String)> = result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let users = b24_portal::text::seeded_users();
    let mut expected: Vec<(u64, String)> = portal
        .messages()
        .iter()
        .map(|m| (m.id, b24_portal::text::parse(&m.stored, &users)))
        .collect();
    expected.reverse();
    assert_eq!(got, expected, "newest first, parsed");
    assert_eq!(
        got[0].1,
        "See [URL]https://example.com/page[/URL] for details"
    );

    let stored_mode = Config {
        history_text: b24_portal::HistoryText::Stored,
        ..Config::default()
    };
    let old = InProcess::new(stored_mode, START);
    assert_eq!(add_via_webhook(&old, &chat, texts[1]).status, 200);
    let old_url = url.replace(&portal.webhook_url(), &old.webhook_url());
    let old_result = result_of(&old.handle("GET", &old_url, "", ""));
    assert_eq!(old_result["messages"][0]["text"], json!(texts[1]));
}

/// Prints the in-process cost of a request (nothing is asserted on time).
/// Run with `cargo test -p b24-portal --release --test sim -- --nocapture
/// requests_per_second` for optimised numbers; `B24_SIM_REQUESTS` sets how
/// many requests (default 20 000).
#[test]
fn requests_per_second() {
    let portal = InProcess::new(Config::default(), START);
    let chat = deal_chat(&portal);
    let add_url = format!("{}imopenlines.crm.message.add.json", portal.webhook_url());
    let body = message_body(&chat, "Hello, this is a simulated message", &[]);
    let profile_url = format!("{}profile.json", portal.webhook_url());
    let count: u32 = std::env::var("B24_SIM_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let began = Instant::now();
    for i in 0..count {
        portal.set_time(START + f64::from(i) * 0.01);
        let reply = if i % 4 == 3 {
            portal.handle("GET", &profile_url, "", "")
        } else {
            portal.handle("POST", &add_url, FORM, &body)
        };
        assert_eq!(reply.status, 200);
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "sim: {count} requests in {:.3} s: {:.0} requests/s, {:.2} µs/request",
        elapsed,
        f64::from(count) / elapsed,
        elapsed * 1e6 / f64::from(count)
    );
    assert_eq!(portal.messages().len(), (count - count / 4) as usize);
}
