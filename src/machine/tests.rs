//! The machine on its own, against scripted answers on a hand-moved clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::auth::Webhook;
use crate::error::Outcome;
use crate::policy::Retry;
use serde_json::{json, Value};

fn prepared(text: &str) -> Prepared {
    crate::params::message_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": text}))
        .expect("valid")
}

fn webhook() -> Config {
    Config::new(Auth::Webhook(
        Webhook::parse("https://portal.example/rest/12/hooksecret/", false).expect("ok"),
    ))
}

fn token(refresh: bool) -> Config {
    let mut c = Config::new(
        Auth::token(Some("https://portal.example"), None, "old-token-1", false).expect("ok"),
    );
    if refresh {
        c.source = Source::Refresh;
    }
    c
}

const WHOLE: Bounds = Bounds {
    timeout_ms: 1_000,
    whole: true,
};

/// Long enough for every retry of a test.
const MINUTE: Bounds = Bounds {
    timeout_ms: 60_000,
    whole: true,
};

fn actions(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn sends(actions: &[Action]) -> Vec<(ReqId, String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { req, url, body, .. } => Some((*req, url.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

fn done(actions: &[Action]) -> Option<&Result<Answer, Error>> {
    actions.iter().find_map(|a| match a {
        Action::Done { result, .. } => Some(result),
        _ => None,
    })
}

fn ok(req: ReqId, result: Value) -> Input {
    Input::Response {
        req,
        status: 200,
        body: json!({"result": result, "time": {"start": 1.0, "finish": 1.1}}).to_string(),
        content_type: "application/json".to_owned(),
    }
}

fn refused(req: ReqId, status: u16, code: &str) -> Input {
    Input::Response {
        req,
        status,
        body: json!({"error": code, "error_description": "refused"}).to_string(),
        content_type: "application/json".to_owned(),
    }
}

/// A batch of messages `m{i}` for each `i` of `items`, all stored, each with id `base + i`.
fn batch_ok(req: ReqId, items: std::ops::Range<u64>, base: u64) -> Input {
    let results: serde_json::Map<String, Value> =
        items.map(|i| (format!("m{i}"), json!(base + i))).collect();
    ok(req, json!({"result": results, "result_error": []}))
}

fn lost(req: ReqId) -> Input {
    Input::NoResponse {
        req,
        why: NoAnswer::Network,
        sent: true,
        cause: "socket hang up".to_owned(),
    }
}

#[test]
fn a_call_is_one_send_and_one_done() {
    let mut m = Machine::new(webhook(), 0.0);
    let op = m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let a = actions(&mut m);
    let s = sends(&a);
    assert_eq!(s.len(), 1);
    assert!(
        s[0].1
            .ends_with("/rest/12/hooksecret/imopenlines.crm.message.add"),
        "{}",
        s[0].1
    );
    assert!(s[0].2.contains("MESSAGE=Hi"), "{}", s[0].2);
    m.handle(ok(s[0].0, json!(77)), 5.0);
    let a = actions(&mut m);
    assert!(
        matches!(a.as_slice(), [Action::Done { op: o, result: Ok(Answer::Text(t)) }] if *o == op && t == "77")
    );
    assert_eq!(m.running(), 0);
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_lost_write_is_never_sent_again_and_says_it_may_have_been_delivered() {
    let mut m = Machine::new(webhook(), 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(lost(s[0].0), 3.0);
    let a = actions(&mut m);
    assert!(sends(&a).is_empty());
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), codes::NETWORK_ERROR);
    assert_eq!(e.outcome(), Outcome::Unknown);
}

#[test]
fn the_deadline_cancels_a_request_in_flight_and_a_late_answer_changes_nothing() {
    let mut m = Machine::new(webhook(), 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    assert_eq!(m.poll_timeout(), Some(1_000.0));
    m.handle(Input::Tick, 999.0);
    assert!(actions(&mut m).is_empty(), "not yet");
    m.handle(Input::Tick, 1_000.0);
    let a = actions(&mut m);
    assert!(matches!(a[0], Action::Cancel { req } if req == s[0].0));
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), codes::TIMEOUT);
    assert!(e.to_string().contains("1000 ms"), "{e}");
    m.handle(ok(s[0].0, json!(77)), 1_200.0);
    assert!(actions(&mut m).is_empty());
}

#[test]
fn concurrent_expired_calls_share_one_refresh_and_retry_once_each() {
    let mut m = Machine::new(token(true), 0.0);
    for i in 0..3 {
        m.start(Call::Single(prepared(&format!("m{i}"))), WHOLE, false, 0.0);
    }
    let s = sends(&actions(&mut m));
    assert_eq!(s.len(), 3);
    for (req, _, body) in &s {
        assert!(body.contains("auth=old-token-1"), "{body}");
        m.handle(refused(*req, 401, "expired_token"), 10.0);
    }
    let a = actions(&mut m);
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, Action::AskToken { .. }))
            .count(),
        1,
        "{a:?}"
    );
    assert!(sends(&a).is_empty());
    m.handle(
        Input::Token {
            ask: 1,
            answer: TokenAnswer::Value(Json::parse("\"new-token-2\"".to_owned()).unwrap()),
        },
        20.0,
    );
    let s = sends(&actions(&mut m));
    assert_eq!(s.len(), 3);
    assert!(s.iter().all(|(_, _, b)| b.contains("auth=new-token-2")));
    assert_eq!(m.refreshes(), 1);
    for (i, (req, _, _)) in s.iter().enumerate() {
        m.handle(ok(*req, json!(100 + i)), 30.0);
    }
    let a = actions(&mut m);
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, Action::Done { result: Ok(_), .. }))
            .count(),
        3
    );
}

#[test]
fn a_refresh_that_never_answers_fails_its_waiters_with_the_cause_and_a_late_token_is_ignored() {
    let mut c = token(true);
    c.refresh_ms = 100;
    let mut m = Machine::new(c, 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 5.0);
    assert!(matches!(
        actions(&mut m).as_slice(),
        [Action::AskToken { .. }]
    ));
    assert_eq!(m.poll_timeout(), Some(105.0));
    m.handle(Input::Tick, 105.0);
    let a = actions(&mut m);
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), "expired_token");
    assert!(
        e.to_string()
            .contains("the refresh function did not settle within 100 ms"),
        "{e}"
    );
    m.handle(
        Input::Token {
            ask: 1,
            answer: TokenAnswer::Value(Json::parse("\"late\"".to_owned()).unwrap()),
        },
        200.0,
    );
    assert_eq!(m.refreshes(), 0);
}

#[test]
fn a_known_expiry_is_refreshed_before_sending_and_a_failure_sends_nothing() {
    let mut c = token(true);
    c.expires_at = Some(50.0);
    let mut m = Machine::new(c, 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 60.0);
    assert!(matches!(
        actions(&mut m).as_slice(),
        [Action::AskToken { .. }]
    ));
    m.handle(
        Input::Token {
            ask: 1,
            answer: TokenAnswer::Rejected("no".to_owned()),
        },
        70.0,
    );
    let a = actions(&mut m);
    assert!(sends(&a).is_empty());
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!(e.outcome(), Outcome::NotExecuted);
    assert!(e.to_string().contains("nothing was sent"), "{e}");
}

#[test]
fn limit_refusals_wait_and_go_again_with_the_wait_reported() {
    let mut c = webhook();
    c.observe = true;
    let mut m = Machine::new(c, 0.0);
    m.start(Call::Single(prepared("Hi")), MINUTE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 503, "QUERY_LIMIT_EXCEEDED"), 10.0);
    let a = actions(&mut m);
    assert!(
        matches!(&a[0], Action::Report(r) if r.code == "QUERY_LIMIT_EXCEEDED" && r.attempt == 1)
    );
    let wake = m.poll_timeout().unwrap();
    assert!(wake > 10.0);
    m.handle(Input::Tick, wake);
    let mut s = sends(&actions(&mut m));
    // The limiter was saturated by the refusal: a further wait may come first.
    if s.is_empty() {
        let wake = m.poll_timeout().unwrap();
        m.handle(Input::Tick, wake);
        s = sends(&actions(&mut m));
    }
    assert_eq!(s.len(), 1);
    m.handle(ok(s[0].0, json!(5)), 3_000.0);
    let a = actions(&mut m);
    assert!(matches!(&a[0], Action::Report(r) if r.attempt == 2 && r.waited_ms > 0.0));
    assert!(matches!(done(&a), Some(Ok(Answer::Text(t))) if t == "5"));
}

#[test]
fn an_abort_while_waiting_for_the_limiter_sends_nothing_and_gives_the_place_back() {
    let mut c = webhook();
    c.limits = Some(crate::limiter::Limits::new(2.0, 1.0).unwrap());
    let mut m = Machine::new(c, 0.0);
    let first = m.start(Call::Single(prepared("a")), WHOLE, false, 0.0);
    let second = m.start(Call::Single(prepared("b")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    assert_eq!(s.len(), 1, "the second waits for the limiter");
    m.handle(Input::Abort(second), 1.0);
    let a = actions(&mut m);
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!(
        (e.code(), e.outcome()),
        (codes::ABORTED, Outcome::NotExecuted)
    );
    m.handle(Input::Abort(first), 2.0);
    let a = actions(&mut m);
    assert!(matches!(a[0], Action::Cancel { req } if req == s[0].0));
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!((e.code(), e.outcome()), (codes::ABORTED, Outcome::Unknown));
}

/// A webhook client sending `text` with verified delivery (a 500 ms settle window):
/// the client and the requests of its first step (the watermark read).
fn verified(text: &str) -> (Machine, Vec<(ReqId, String, String)>) {
    let mut m = Machine::new(webhook(), 0.0);
    let call = Call::Verified {
        prepared: prepared(text),
        settle_ms: 500,
    };
    let bounds = Bounds {
        timeout_ms: 1_000,
        whole: false,
    };
    m.start(call, bounds, false, 0.0);
    let s = sends(&actions(&mut m));
    (m, s)
}

fn history(messages: &[(u64, u64, &str)]) -> Value {
    json!({"messages": messages.iter().map(|(id, a, t)| json!({"id": id, "author_id": a, "text": t})).collect::<Vec<_>>()})
}

#[test]
fn a_verified_send_finds_its_lost_message_in_the_parsed_history() {
    let (mut m, s) = verified("Pay https://x.y/1");
    assert!(s[0].1.ends_with("im.dialog.messages.get"));
    m.handle(ok(s[0].0, history(&[(40, 3, "old")])), 1.0);
    let s = sends(&actions(&mut m));
    assert!(s[0].1.ends_with("imopenlines.crm.message.add"));
    m.handle(
        Input::Response {
            req: s[0].0,
            status: 502,
            body: "<html>".into(),
            content_type: "text/html".into(),
        },
        2.0,
    );
    let s = sends(&actions(&mut m));
    assert!(s[0].2.contains("FIRST_ID=40"), "{}", s[0].2);
    m.handle(
        ok(s[0].0, history(&[(41, 12, "Pay [URL]https://x.y/1[/URL]")])),
        3.0,
    );
    let a = actions(&mut m);
    assert!(
        matches!(done(&a), Some(Ok(Answer::Text(t))) if t == "41"),
        "{a:?}"
    );
}

#[test]
fn a_verified_send_proven_absent_after_the_settle_window_is_sent_once_more() {
    let (mut m, s) = verified("Hi");
    m.handle(ok(s[0].0, history(&[])), 1.0);
    let s = sends(&actions(&mut m));
    m.handle(lost(s[0].0), 2.0);
    let s = sends(&actions(&mut m));
    m.handle(ok(s[0].0, history(&[])), 3.0);
    assert!(actions(&mut m).is_empty(), "the settle window");
    assert_eq!(m.poll_timeout(), Some(503.0));
    m.handle(Input::Tick, 503.0);
    let s = sends(&actions(&mut m));
    m.handle(ok(s[0].0, history(&[])), 504.0);
    let s = sends(&actions(&mut m));
    assert!(
        s[0].1.ends_with("imopenlines.crm.message.add"),
        "sent again"
    );
    m.handle(ok(s[0].0, json!(9)), 505.0);
    assert!(matches!(done(&actions(&mut m)), Some(Ok(Answer::Text(t))) if t == "9"));
}

/// A webhook client without the portal's limits.
fn unlimited() -> Machine {
    let mut c = webhook();
    c.limits = None;
    Machine::new(c, 0.0)
}

/// A mass send of 60 messages `n0`…`n59` to one chat.
fn sixty(settle_ms: Option<u32>) -> Call {
    Call::Mass {
        items: (0..60).map(|i| Ok(prepared(&format!("n{i}")))).collect(),
        halt: false,
        settle_ms,
    }
}

#[test]
fn a_mass_send_reports_progress_and_marks_a_lost_batch_unknown() {
    let mut m = unlimited();
    m.start(
        sixty(None),
        Bounds {
            timeout_ms: 1_000,
            whole: false,
        },
        false,
        0.0,
    );
    let s = sends(&actions(&mut m));
    assert!(s[0].1.ends_with("/batch"));
    m.handle(batch_ok(s[0].0, 0..50, 1000), 1.0);
    let a = actions(&mut m);
    assert!(
        matches!(
            a[0],
            Action::Progress {
                counts: Progress {
                    done: 50,
                    total: 60,
                    delivered: 50,
                    ..
                },
                ..
            }
        ),
        "{a:?}"
    );
    let s = sends(&a);
    m.handle(lost(s[0].0), 2.0);
    let a = actions(&mut m);
    let Some(Ok(Answer::Mass(entries))) = done(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(entries.iter().filter(|e| e.is_ok()).count(), 50);
    assert!(entries[50..]
        .iter()
        .all(|e| matches!(e, Err(e) if e.outcome() == Outcome::Unknown)));
}

#[test]
fn a_second_refusal_after_a_refresh_is_returned_not_looped() {
    let mut m = Machine::new(token(true), 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 1.0);
    actions(&mut m);
    let answer = TokenAnswer::Value(Json::parse("\"another-token\"".to_owned()).unwrap());
    m.handle(Input::Token { ask: 1, answer }, 2.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 3.0);
    let a = actions(&mut m);
    assert!(!a.iter().any(|a| matches!(a, Action::AskToken { .. })));
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), "expired_token");
}

#[test]
fn webhooks_never_refresh_and_errors_hide_current_and_replaced_tokens() {
    let mut m = Machine::new(webhook(), 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 1.0);
    let a = actions(&mut m);
    assert!(!a.iter().any(|a| matches!(a, Action::AskToken { .. })));
    assert!(done(&a).unwrap().is_err());

    let mut m = Machine::new(token(true), 0.0);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 1.0);
    actions(&mut m);
    let answer = TokenAnswer::Value(Json::parse("\"fresh-token-3\"".to_owned()).unwrap());
    m.handle(Input::Token { ask: 1, answer }, 2.0);
    let s = sends(&actions(&mut m));
    let cause = "connect ECONNRESET old-token-1 fresh-token-3".to_owned();
    let input = Input::NoResponse {
        req: s[0].0,
        why: NoAnswer::Network,
        sent: true,
        cause,
    };
    m.handle(input, 3.0);
    let e = done(&actions(&mut m))
        .unwrap()
        .as_ref()
        .unwrap_err()
        .to_string();
    assert!(
        !e.contains("old-token-1") && !e.contains("fresh-token-3"),
        "{e}"
    );
}

#[test]
fn the_sources_current_token_is_adopted_without_a_refresh() {
    let mut c = token(true);
    c.source = Source::Bx24;
    let mut m = Machine::new(c, 0.0);
    m.current(Some(Token {
        access_token: "bx24-token-2".to_owned(),
        expires_at_ms: Some(10_000.0),
        refresh_token: None,
    }));
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let a = actions(&mut m);
    assert!(sends(&a)[0].2.contains("auth=bx24-token-2"));
    assert_eq!(m.refreshes(), 0);
    // No token at the source: the next call refreshes before it sends.
    m.current(None);
    m.start(Call::Single(prepared("Ho")), WHOLE, false, 1.0);
    assert!(matches!(
        actions(&mut m).as_slice(),
        [Action::AskToken { .. }]
    ));
}

#[test]
fn limit_retries_are_bounded_and_then_reach_the_caller() {
    let mut c = webhook();
    c.limits = None;
    c.retry = Retry {
        retries: 2,
        base_delay_ms: 10.0,
        max_delay_ms: 10.0,
    };
    let mut m = Machine::new(c, 0.0);
    m.start(Call::Single(prepared("Hi")), MINUTE, false, 0.0);
    let mut now = 0.0;
    let mut sent = 0;
    loop {
        let a = actions(&mut m);
        if let Some(result) = done(&a) {
            assert_eq!(result.as_ref().unwrap_err().code(), "QUERY_LIMIT_EXCEEDED");
            break;
        }
        for (req, _, _) in sends(&a) {
            sent += 1;
            m.handle(refused(req, 503, "QUERY_LIMIT_EXCEEDED"), now);
        }
        now = m.poll_timeout().unwrap_or(now);
        if sends(&a).is_empty() {
            m.handle(Input::Tick, now);
        }
    }
    assert_eq!(sent, 3, "the first attempt and two retries");
}

// ---- A message to a CRM item ---------------------------------------------------------

fn to_item(extra: Value) -> crate::params::ToItem {
    let mut params = json!({"crmEntityType": "deal", "crmEntity": 290, "message": "Hi"});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    crate::params::to_item(&params).expect("valid")
}

/// Starts a message to deal 290 (`extra` params on top) and serves it with `portal`.
fn send_to(
    m: &mut Machine,
    extra: Value,
    join: bool,
    leave: bool,
    portal: impl FnMut(&str, &str) -> Result<Value, (u16, &'static str)>,
) -> (Result<Answer, Error>, Vec<String>) {
    let call = Call::ToItem {
        to: to_item(extra),
        join,
        leave,
        settle_ms: None,
    };
    let op = m.start(call, MINUTE, false, 0.0);
    serve(m, op, portal)
}

/// Runs the machine's requests through `portal` (method, body → answer) until call `op`
/// ends; its result and the requests as `method body`.
fn serve(
    m: &mut Machine,
    op: OpId,
    mut portal: impl FnMut(&str, &str) -> Result<Value, (u16, &'static str)>,
) -> (Result<Answer, Error>, Vec<String>) {
    let mut seen = Vec::new();
    let mut now = 0.0;
    for _ in 0..50 {
        let a = actions(m);
        if let Some(result) = a.iter().find_map(|a| match a {
            Action::Done { op: o, result } if *o == op => Some(result.clone()),
            _ => None,
        }) {
            return (result, seen);
        }
        for (req, url, body) in sends(&a) {
            let method = url.rsplit('/').next().unwrap_or("").to_owned();
            seen.push(format!("{method} {body}"));
            now += 1.0;
            let input = match portal(&method, &body) {
                Ok(result) => ok(req, result),
                Err((status, code)) => refused(req, status, code),
            };
            m.handle(input, now);
        }
    }
    panic!("the call did not end: {seen:?}");
}

fn chats(list: &[(u64, &str)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(id, c)| json!({"CHAT_ID": id.to_string(), "CONNECTOR_ID": c, "CONNECTOR_TITLE": c}))
            .collect(),
    )
}

fn delivered(result: &Result<Answer, Error>) -> &Delivered {
    match result {
        Ok(Answer::Item(d)) => d,
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn a_message_to_an_item_goes_to_its_newest_active_chat_as_the_webhooks_user() {
    let mut m = Machine::new(webhook(), 0.0);
    let (result, seen) = send_to(&mut m, json!({}), true, false, |method, _| match method {
        "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp"), (8811, "telegrambot")])),
        _ => Ok(json!(501)),
    });
    let d = delivered(&result);
    assert_eq!((d.id, d.chat, d.user, d.joined), (501, 8810, 12, false));
    assert_eq!(d.connector.as_ref().map(|c| c.0.as_str()), Some("whatsapp"));
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[0].contains("ACTIVE_ONLY"), "active only: {}", seen[0]);
    assert!(
        seen[1].contains("USER_ID=12&CHAT_ID=8810&MESSAGE=Hi"),
        "{}",
        seen[1]
    );

    // On a connector: that one's chat.
    let (result, _) = send_to(
        &mut m,
        json!({"connectorId": "TelegramBot"}),
        true,
        false,
        |method, _| match method {
            "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp"), (8811, "telegrambot")])),
            _ => Ok(json!(502)),
        },
    );
    assert_eq!(delivered(&result).chat, 8811);
}

#[test]
fn a_sender_that_is_not_a_member_joins_once_and_leaves_when_asked() {
    let mut m = Machine::new(webhook(), 0.0);
    let mut member = false;
    let (result, seen) = send_to(&mut m, json!({}), true, true, |method, _| match method {
        "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp")])),
        "imopenlines.crm.message.add" if !member => Err((400, "CANCELED")),
        "imopenlines.crm.message.add" => Ok(json!(7)),
        "imopenlines.crm.chat.user.add" => {
            member = true;
            Ok(json!(8810))
        }
        _ => Err((403, "CHAT_DELETE_USER_PERMISSION_DENIED")),
    });
    let d = delivered(&result);
    assert!(d.joined);
    assert_eq!(d.id, 7);
    let left = d.left.as_ref().expect("leave was tried");
    assert_eq!(
        left.as_ref().map_err(|e| e.code()),
        Err("CHAT_DELETE_USER_PERMISSION_DENIED"),
        "a failure to leave is reported, the send stands"
    );
    let methods: Vec<&str> = seen
        .iter()
        .map(|s| s.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        methods,
        [
            "imopenlines.crm.chat.get",
            "imopenlines.crm.message.add",
            "imopenlines.crm.chat.user.add",
            "imopenlines.crm.message.add",
            "imopenlines.crm.chat.user.delete"
        ]
    );

    // Refused again after joining: no second join, the portal's error.
    let (result, seen) = send_to(&mut m, json!({}), true, false, |method, _| match method {
        "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp")])),
        "imopenlines.crm.message.add" => Err((400, "CANCELED")),
        _ => Ok(json!(8810)),
    });
    assert_eq!(result.unwrap_err().code(), "CANCELED");
    assert_eq!(seen.len(), 4, "{seen:?}");

    // Already a member: the join's WRONG_REQUEST gives back the send's own refusal.
    let (result, _) = send_to(&mut m, json!({}), true, false, |method, _| match method {
        "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp")])),
        "imopenlines.crm.message.add" => Err((400, "MESSAGE_ADD_ERROR")),
        _ => Err((400, "WRONG_REQUEST")),
    });
    assert_eq!(result.unwrap_err().code(), "MESSAGE_ADD_ERROR");

    // join: false: nothing but the send.
    let (result, seen) = send_to(&mut m, json!({}), false, false, |method, _| match method {
        "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp")])),
        _ => Err((400, "CANCELED")),
    });
    let e = result.unwrap_err();
    assert_eq!(
        (e.code(), e.outcome()),
        ("NOT_A_MEMBER", Outcome::NotExecuted)
    );
    assert_eq!(seen.len(), 2);
}

#[test]
fn a_dialogue_that_ended_after_the_read_is_replaced_once() {
    let mut m = Machine::new(webhook(), 0.0);
    let mut reads = 0;
    let (result, seen) = send_to(
        &mut m,
        json!({}),
        true,
        false,
        |method, body| match method {
            "imopenlines.crm.chat.get" => {
                reads += 1;
                Ok(chats(&[(8810, "whatsapp"), (8811, "telegrambot")]))
            }
            _ if body.contains("CHAT_ID=8810") => Err((400, "CHAT_NOT_IN_CRM")),
            _ => Ok(json!(9)),
        },
    );
    assert_eq!(
        delivered(&result).chat,
        8811,
        "not the ended chat, though still listed"
    );
    assert_eq!((reads, seen.len()), (2, 4));

    // Every chat ends: one more read, then the portal's error, no loop.
    let (result, seen) = send_to(&mut m, json!({}), true, false, |method, _| match method {
        "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp"), (8811, "telegrambot")])),
        _ => Err((400, "CHAT_NOT_IN_CRM")),
    });
    assert_eq!(result.unwrap_err().code(), "CHAT_NOT_IN_CRM");
    assert_eq!(seen.len(), 4, "{seen:?}");

    // The caller's own chat is never replaced.
    let (result, seen) = send_to(&mut m, json!({"chatId": 8810}), true, false, |_, _| {
        Err((400, "CHAT_NOT_IN_CRM"))
    });
    assert_eq!(result.unwrap_err().code(), "CHAT_NOT_IN_CRM");
    assert_eq!(seen.len(), 1);
}

#[test]
fn nothing_to_send_to_says_why_and_names_the_item() {
    let mut m = Machine::new(webhook(), 0.0);
    let cases: [(Value, Value, Value, &str, &str); 4] = [
        (
            json!({}),
            chats(&[]),
            chats(&[]),
            "NO_CHAT",
            "deal 290 has no open-line chat",
        ),
        (
            json!({}),
            chats(&[]),
            chats(&[(8820, "livechat"), (8821, "telegrambot")]),
            "NO_ACTIVE_CHAT",
            "chat 8820 (livechat), chat 8821 (telegrambot)",
        ),
        (
            json!({"connectorId": "vkgroup"}),
            chats(&[(8810, "whatsapp")]),
            chats(&[]),
            "NO_CHAT_ON_CONNECTOR",
            "active chats are on: chat 8810 (whatsapp)",
        ),
        (
            json!({"connectorId": "vkgroup"}),
            chats(&[]),
            chats(&[(8830, "livechat")]),
            "NO_CHAT_ON_CONNECTOR",
            "no open-line chat on connector 'vkgroup'",
        ),
    ];
    for (extra, active, all, code, words) in cases {
        let (result, seen) = send_to(&mut m, extra, true, false, |_, body| {
            Ok(if body.contains("ACTIVE_ONLY=N") {
                all.clone()
            } else {
                active.clone()
            })
        });
        let e = result.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert_eq!(e.outcome(), Outcome::NotExecuted);
        assert!(e.message().contains(words), "{}", e.message());
        assert!(seen
            .iter()
            .all(|s| s.starts_with("imopenlines.crm.chat.get")));
    }
}

#[test]
fn a_token_client_reads_the_current_user_once_and_a_lost_send_is_not_repeated() {
    let mut m = Machine::new(token(false), 0.0);
    let mut currents = 0;
    for _ in 0..2 {
        let (result, _) = send_to(&mut m, json!({}), true, false, |method, _| match method {
            "user.current" => {
                currents += 1;
                Ok(json!({"ID": "14", "NAME": "Maria"}))
            }
            "imopenlines.crm.chat.get" => Ok(chats(&[(8810, "whatsapp")])),
            _ => Ok(json!(3)),
        });
        assert_eq!(delivered(&result).user, 14);
    }
    assert_eq!(currents, 1);

    // A lost answer to the send: unknown, never sent again, no join.
    let call = Call::ToItem {
        to: to_item(json!({})),
        join: true,
        leave: false,
        settle_ms: None,
    };
    let op = m.start(call, MINUTE, false, 0.0);
    let a = actions(&mut m);
    let s = sends(&a);
    m.handle(ok(s[0].0, chats(&[(8810, "whatsapp")])), 1.0);
    let a = actions(&mut m);
    let s = sends(&a);
    assert!(s[0].1.ends_with("imopenlines.crm.message.add"));
    m.handle(lost(s[0].0), 2.0);
    let a = actions(&mut m);
    assert!(sends(&a).is_empty());
    let e = done(&a).expect("ended").clone().unwrap_err();
    assert_eq!(e.outcome(), Outcome::Unknown);
    assert_eq!(m.running(), 0, "{op}");

    // A failed read before the send says the message was not sent.
    let (result, _) = send_to(&mut m, json!({}), true, false, |_, _| {
        Err((401, "insufficient_scope"))
    });
    let e = result.unwrap_err();
    assert_eq!(e.outcome(), Outcome::NotExecuted);
    assert!(
        e.message()
            .contains("; the message was not sent. Give the webhook or app the imopenlines scope"),
        "{}",
        e.message()
    );
}

// ---- Tokens in a shared store ----------------------------------------------------------

/// A token store as the tests keep it: the tokens' JSON, and who holds the lock.
#[derive(Default)]
struct Store {
    tokens: Option<Value>,
    holder: Option<(usize, u32)>,
    waiting: Vec<(usize, u32)>,
    exchanges: u32,
}

fn stored_client(refresh_ms: u32) -> Machine {
    let mut c = token(true);
    c.store = true;
    c.refresh_ms = refresh_ms;
    c.refresh_token = Some("refresh-1".to_owned());
    Machine::new(c, 0.0)
}

/// Runs every action of `machines` against `store` and an OAuth server that rotates
/// the refresh token (a used one is refused with `invalid_grant`), answering each
/// request with `portal`; until nothing is left to do. Returns the calls' results.
fn run_with_store(
    machines: &mut [Machine],
    store: &mut Store,
    mut portal: impl FnMut(&str) -> Input,
) -> Vec<Result<Answer, Error>> {
    let mut results = Vec::new();
    let mut queue: Vec<(usize, Action)> = Vec::new();
    let mut valid_refresh = store
        .tokens
        .as_ref()
        .and_then(|t| t["refreshToken"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "refresh-1".to_owned());
    for _ in 0..500 {
        for (i, m) in machines.iter_mut().enumerate() {
            queue.extend(std::iter::from_fn(|| m.poll_action()).map(|a| (i, a)));
        }
        if queue.is_empty() {
            return results;
        }
        let (i, action) = queue.remove(0);
        let now = 10.0;
        let input = match action {
            Action::Send { req, body, .. } => {
                let mut input = portal(&body);
                if let Input::Response { req: r, .. } = &mut input {
                    *r = req;
                }
                Some(input)
            }
            Action::Done { result, .. } => {
                results.push(result);
                None
            }
            Action::AskToken { ask, current } => {
                let current: Value = serde_json::from_str(&current).unwrap();
                let answer = if current["refreshToken"].as_str() == Some(valid_refresh.as_str()) {
                    store.exchanges += 1;
                    valid_refresh = format!("refresh-{}", store.exchanges + 1);
                    json!({"access_token": format!("new-token-{}", store.exchanges), "refresh_token": valid_refresh, "expires_in": 3600})
                } else {
                    json!({"error": "invalid_grant", "error_description": "Invalid refresh token"})
                };
                Some(Input::Token {
                    ask,
                    answer: TokenAnswer::Value(Json::parse(answer.to_string()).unwrap()),
                })
            }
            Action::Store { ask, op } => match op {
                StoreOp::Get => Some(Input::Store {
                    ask,
                    answer: StoreAnswer::Value(
                        Json::parse(store.tokens.clone().unwrap_or(Value::Null).to_string())
                            .unwrap(),
                    ),
                }),
                StoreOp::Lock => {
                    if store.holder.is_none() {
                        store.holder = Some((i, ask));
                        Some(Input::Store {
                            ask,
                            answer: StoreAnswer::Locked,
                        })
                    } else {
                        store.waiting.push((i, ask));
                        None
                    }
                }
                StoreOp::Set { next, previous } => {
                    let previous: Value = serde_json::from_str(&previous).unwrap();
                    let held = store.tokens.clone().unwrap_or(Value::Null);
                    let wrote = held.get("refreshToken") == previous.get("refreshToken");
                    if wrote {
                        store.tokens = Some(serde_json::from_str(&next).unwrap());
                    }
                    Some(Input::Store {
                        ask,
                        answer: StoreAnswer::Saved(wrote),
                    })
                }
                StoreOp::Unlock => {
                    assert_eq!(store.holder, Some((i, ask)), "unlocked by its holder");
                    store.holder = None;
                    if !store.waiting.is_empty() {
                        let (j, next) = store.waiting.remove(0);
                        store.holder = Some((j, next));
                        machines[j].handle(
                            Input::Store {
                                ask: next,
                                answer: StoreAnswer::Locked,
                            },
                            now,
                        );
                    }
                    None
                }
            },
            _ => None,
        };
        if let Some(input) = input {
            machines[i].handle(input, now);
        }
    }
    panic!("the clients did not finish");
}

/// The portal: the stored token is the only one it takes.
fn portal_of(valid: &str) -> impl FnMut(&str) -> Input + '_ {
    move |body: &str| {
        if body.contains(&format!("auth={valid}")) {
            ok(0, json!(1))
        } else {
            refused(0, 401, "expired_token")
        }
    }
}

#[test]
fn clients_sharing_a_store_refresh_once_per_expiry() {
    let mut store = Store {
        tokens: Some(json!({"accessToken": "old-token-1", "refreshToken": "refresh-1"})),
        ..Store::default()
    };
    let mut machines: Vec<Machine> = (0..3).map(|_| stored_client(10_000)).collect();
    for m in machines.iter_mut() {
        for _ in 0..4 {
            m.start(Call::Single(prepared("Hi")), MINUTE, false, 0.0);
        }
    }
    let results = run_with_store(&mut machines, &mut store, portal_of("new-token-1"));
    assert_eq!(results.len(), 12);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.exchanges, 1, "one exchange for three clients");
    assert_eq!(
        store.tokens.as_ref().unwrap()["accessToken"],
        json!("new-token-1")
    );
    assert_eq!(
        machines.iter().map(Machine::refreshes).sum::<u64>(),
        1,
        "the others took the stored tokens"
    );
    assert!(store.holder.is_none());
}

#[test]
fn without_a_store_clients_race_and_lose_their_refresh_token() {
    // The same three clients, each with its own memory of the tokens: the measure of
    // what the store prevents.
    let mut store = Store::default();
    let mut machines: Vec<Machine> = (0..3)
        .map(|_| {
            let mut c = token(true);
            c.refresh_token = Some("refresh-1".to_owned());
            Machine::new(c, 0.0)
        })
        .collect();
    for m in machines.iter_mut() {
        m.start(Call::Single(prepared("Hi")), MINUTE, false, 0.0);
    }
    let results = run_with_store(&mut machines, &mut store, |body| {
        if body.contains("auth=new-token") {
            ok(0, json!(1))
        } else {
            refused(0, 401, "expired_token")
        }
    });
    let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(store.exchanges, 1);
    assert_eq!(failed.len(), 2, "{results:?}");
    for e in failed {
        assert!(
            e.message().contains("invalid_grant")
                && e.message().contains("must be authorized again"),
            "{}",
            e.message()
        );
        assert!(
            !e.message().contains("refresh-"),
            "no secret: {}",
            e.message()
        );
    }
}

#[test]
fn a_store_that_fails_ends_each_call_within_its_bounds_and_keeps_new_tokens() {
    // The lock never comes: the refresh bound ends the calls; a late lock is released.
    let mut m = stored_client(100);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 5.0);
    let a = actions(&mut m);
    assert!(matches!(
        a.as_slice(),
        [Action::Store {
            op: StoreOp::Get,
            ..
        }]
    ));
    m.handle(
        Input::Store {
            ask: 1,
            answer: StoreAnswer::Value(Json::null()),
        },
        6.0,
    );
    assert!(matches!(
        actions(&mut m).as_slice(),
        [Action::Store {
            op: StoreOp::Lock,
            ..
        }]
    ));
    m.handle(Input::Tick, 105.0);
    let a = actions(&mut m);
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert!(
        e.message()
            .contains("the token store did not settle within 100 ms"),
        "{}",
        e.message()
    );
    m.handle(
        Input::Store {
            ask: 1,
            answer: StoreAnswer::Locked,
        },
        200.0,
    );
    assert!(
        matches!(
            actions(&mut m).as_slice(),
            [Action::Store {
                ask: 1,
                op: StoreOp::Unlock
            }]
        ),
        "a lock that came late is given back"
    );

    // get throws: the call fails with the store's words, no secret.
    let mut m = stored_client(1_000);
    m.start(Call::Single(prepared("Hi")), WHOLE, false, 0.0);
    let s = sends(&actions(&mut m));
    m.handle(refused(s[0].0, 401, "expired_token"), 5.0);
    actions(&mut m);
    m.handle(
        Input::Store {
            ask: 1,
            answer: StoreAnswer::Failed("get: Error: disk gone old-token-1".to_owned()),
        },
        6.0,
    );
    let a = actions(&mut m);
    let e = done(&a).unwrap().as_ref().unwrap_err();
    assert!(
        e.message()
            .contains("the token store's get failed: get: Error: disk gone ***"),
        "{}",
        e.message()
    );

    // set fails: the calls fail, saying so; the new tokens are kept for the next call.
    let mut store = Store {
        tokens: Some(json!({"accessToken": "old-token-1", "refreshToken": "refresh-1"})),
        ..Store::default()
    };
    let mut m = stored_client(1_000);
    m.start(Call::Single(prepared("Hi")), MINUTE, false, 0.0);
    let mut machines = [m];
    // The portal refuses the old token; the call's retry is not reached (it fails first).
    let portal = |_: &str| refused(0, 401, "expired_token");
    // Run until the Set, then answer it with a failure.
    let mut out = Vec::new();
    for _ in 0..20 {
        let a: Vec<Action> = std::iter::from_fn(|| machines[0].poll_action()).collect();
        if a.is_empty() {
            break;
        }
        for action in a {
            match action {
                Action::Store {
                    ask,
                    op: StoreOp::Set { .. },
                } => machines[0].handle(
                    Input::Store {
                        ask,
                        answer: StoreAnswer::Failed("set: Error: read-only".to_owned()),
                    },
                    10.0,
                ),
                other => out.push(other),
            }
        }
        for action in std::mem::take(&mut out) {
            match action {
                Action::Done { result, .. } => {
                    let e = result.unwrap_err();
                    assert!(e.message().contains("could not save the new tokens"), "{}", e.message());
                }
                Action::Send { req, body, .. } => {
                    let mut input = portal(&body);
                    if let Input::Response { req: r, .. } = &mut input {
                        *r = req;
                    }
                    machines[0].handle(input, 10.0);
                }
                Action::Store { ask, op: StoreOp::Get } => machines[0].handle(
                    Input::Store {
                        ask,
                        answer: StoreAnswer::Value(
                            Json::parse(store.tokens.clone().unwrap().to_string()).unwrap(),
                        ),
                    },
                    10.0,
                ),
                Action::Store { ask, op: StoreOp::Lock } => machines[0].handle(
                    Input::Store {
                        ask,
                        answer: StoreAnswer::Locked,
                    },
                    10.0,
                ),
                Action::AskToken { ask, .. } => machines[0].handle(
                    Input::Token {
                        ask,
                        answer: TokenAnswer::Value(
                            Json::parse(r#"{"access_token":"new-token-9","refresh_token":"refresh-9","expires_in":3600}"#.to_owned()).unwrap(),
                        ),
                    },
                    10.0,
                ),
                _ => {}
            }
        }
    }
    store.tokens = None;
    // The next call goes out with the kept token, without another refresh.
    machines[0].start(Call::Single(prepared("Hi")), MINUTE, false, 20.0);
    let s = sends(&actions(&mut machines[0]));
    assert!(s[0].2.contains("auth=new-token-9"), "{}", s[0].2);
}

/// A verified mass send of 60 messages to one chat whose second batch (10 messages)
/// is lost after the watermark read, up to the pass-1 read that shows the chat empty.
fn mass_with_a_lost_batch() -> (Machine, Vec<(ReqId, String, String)>) {
    let mut m = unlimited();
    m.start(sixty(Some(100)), MINUTE, false, 0.0);
    let s = sends(&actions(&mut m));
    assert!(s[0].1.ends_with("im.dialog.messages.get"), "{}", s[0].1);
    m.handle(ok(s[0].0, history(&[(40, 3, "old")])), 1.0);
    let s = sends(&actions(&mut m));
    m.handle(batch_ok(s[0].0, 0..50, 1000), 2.0);
    let s = sends(&actions(&mut m));
    m.handle(lost(s[0].0), 3.0);
    // Pass 0, the settle window, pass 1: the lost batch's messages are not there
    // (nor the answered ones: a history that leaves them out proves nothing of them).
    let shown = [(990, 3, "the customer")];
    let s = sends(&actions(&mut m));
    assert!(s[0].1.ends_with("im.dialog.messages.get"), "{}", s[0].1);
    m.handle(ok(s[0].0, history(&shown)), 4.0);
    assert!(sends(&actions(&mut m)).is_empty());
    let wake = m.poll_timeout().expect("the settle window");
    m.handle(Input::Tick, wake);
    let s = sends(&actions(&mut m));
    assert!(s[0].1.ends_with("im.dialog.messages.get"), "{}", s[0].1);
    m.handle(ok(s[0].0, history(&shown)), wake + 1.0);
    let s = sends(&actions(&mut m));
    (m, s)
}

#[test]
fn a_verified_mass_send_sends_the_messages_proven_absent_again_in_one_batch() {
    let (mut m, s) = mass_with_a_lost_batch();
    assert_eq!(s.len(), 1, "one request for the ten messages: {s:?}");
    assert!(s[0].1.ends_with("/batch"), "{}", s[0].1);
    for i in 50..60 {
        assert!(s[0].2.contains(&format!("cmd[m{i}]")), "m{i} in {}", s[0].2);
    }
    assert!(!s[0].2.contains("cmd[m49]"), "{}", s[0].2);
    m.handle(batch_ok(s[0].0, 50..60, 2000), 1_000.0);
    let a = actions(&mut m);
    let Some(Ok(Answer::Mass(entries))) = done(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(entries.len(), 60);
    assert!(entries[..50]
        .iter()
        .enumerate()
        .all(|(i, e)| matches!(e, Ok((id, false)) if *id == 1000 + i as u64)));
    // Sent again after reading proved them absent: verified.
    assert!(
        entries[50..]
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Ok((id, true)) if *id == 2050 + i as u64)),
        "{entries:?}"
    );
    assert!(
        a.iter().any(|a| matches!(
            a,
            Action::Progress {
                counts: Progress {
                    done: 60,
                    delivered: 60,
                    ..
                },
                ..
            }
        )),
        "{a:?}"
    );
}

#[test]
fn a_verified_mass_send_sends_a_message_three_times_at_most() {
    let (mut m, s) = mass_with_a_lost_batch();
    // The second send is lost too; the chat still shows nothing: a third send.
    let shown = [(990, 3, "the customer")];
    let mut s = s;
    let mut now = 1_000.0;
    for send in 2..=3 {
        assert_eq!(s.len(), 1, "send {send}: {s:?}");
        assert!(
            s[0].1.ends_with("/batch") && s[0].2.contains("cmd[m55]"),
            "send {send}"
        );
        m.handle(lost(s[0].0), now);
        let r = sends(&actions(&mut m));
        m.handle(ok(r[0].0, history(&shown)), now + 1.0);
        let _ = actions(&mut m);
        now = m.poll_timeout().expect("the settle window");
        m.handle(Input::Tick, now);
        let r = sends(&actions(&mut m));
        assert!(r[0].1.ends_with("im.dialog.messages.get"));
        m.handle(ok(r[0].0, history(&shown)), now + 1.0);
        now += 10.0;
        let a = actions(&mut m);
        s = sends(&a);
        if send == 3 {
            assert!(s.is_empty(), "no fourth send: {s:?}");
            let Some(Ok(Answer::Mass(entries))) = done(&a) else {
                panic!("{a:?}")
            };
            assert!(entries[50..]
                .iter()
                .all(|e| matches!(e, Err(e) if e.outcome() == Outcome::Unknown)));
        }
    }
}
