//! `batch` (§6): command order, references, halt, list-shaped sections,
//! the 50-command limit, nested batch, form bodies with double encoding,
//! per-command scope checks and timing, list commands' `total` and `next`,
//! `.json` suffixes on command methods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{arg_null, assert_answer, error, insufficient_scope, Portal, TIME_KEYS};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The batch result without `result_time`, which holds clock values.
fn sections(body: &Value) -> Value {
    let mut result = body["result"].clone();
    result.as_object_mut().unwrap().remove("result_time");
    result
}

#[test]
fn commands_run_in_order_with_references_and_per_command_errors() {
    let portal = Portal::start();
    // Sent as text: the commands must run in the order written, not by name.
    let body = r#"{"cmd": {
        "z_last": "imopenlines.crm.chat.getLastId?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288",
        "a_send": "imopenlines.crm.message.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=$result[z_last]&MESSAGE=chat+$result[z_last]+ok",
        "bad": "imopenlines.crm.message.add",
        "nested": "batch?cmd[x]=profile",
        "nope": "no.such.method?x=1",
        "chats": "imopenlines.crm.chat.get?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288",
        "first": "imopenlines.crm.chat.user.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=14&CHAT_ID=$result[chats][0][CHAT_ID]"
    }}"#;
    let resp = portal.post(&portal.hook("batch"), Some("application/json"), body);
    assert_eq!(resp.status, 200, "{}", resp.text);
    let body = resp.json();
    assert_eq!(
        sections(&body),
        json!({
            "result": {
                "z_last": 8773,
                "a_send": 19880117,
                "chats": [{"CHAT_ID": "8773", "CONNECTOR_ID": "telegrambot", "CONNECTOR_TITLE": "Telegram"}],
                "first": 8773
            },
            "result_error": {
                "bad": arg_null("CRM_ENTITY_TYPE"),
                "nested": error("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"),
                "nope": error("ERROR_METHOD_NOT_FOUND", "Method not found!")
            },
            "result_total": [],
            "result_next": []
        })
    );
    assert!(resp.text.find("\"z_last\"") < resp.text.find("\"a_send\""));
    let times = body["result"]["result_time"].as_object().unwrap();
    assert_eq!(
        times.keys().collect::<Vec<_>>(),
        ["a_send", "chats", "first", "z_last"]
    );
    for time in times.values() {
        let keys: Vec<&String> = time.as_object().unwrap().keys().collect();
        let mut want = TIME_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "{time}");
    }
    assert!(body["time"]["start"].is_i64());
    assert_eq!(portal.messages()[0]["message"], json!("chat 8773 ok"));
    assert_eq!(portal.messages()[0]["chatId"], json!(8773));
    let counters = portal.admin_get("counters");
    assert_eq!(counters["byMethod"], json!({"batch": 1}));
    assert_eq!(counters["batchCommands"]["total"], json!(5));
}

#[test]
fn whole_references_substitute_arrays_and_embedded_ones_only_strings() {
    let portal = Portal::start();
    let body = portal
        .call(
            "batch",
            json!({"cmd": [
                "imopenlines.crm.chat.get?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&ACTIVE_ONLY=N",
                "imopenlines.crm.message.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE=$result[0]",
                "imopenlines.crm.message.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE=list:+$result[0]+id:+$result[0][1][CHAT_ID]"
            ]}),
        )
        .json();
    // A whole reference to an array makes MESSAGE an array.
    assert_eq!(
        sections(&body),
        json!({
            "result": {"0": [
                {"CHAT_ID": "8773", "CONNECTOR_ID": "telegrambot", "CONNECTOR_TITLE": "Telegram"},
                {"CHAT_ID": "8772", "CONNECTOR_ID": "livechat", "CONNECTOR_TITLE": "Live chat"}
            ], "2": 19880117},
            "result_error": {"1": error("MESSAGE_ADD_ERROR", "Message isn't added")},
            "result_total": [],
            "result_next": []
        })
    );
    assert_eq!(
        portal.messages()[0]["message"],
        json!("list: $result[0] id: 8772")
    );
}

#[test]
fn halt_stops_after_the_first_failure_with_php_bool_semantics() {
    let portal = Portal::start();
    let url = portal.hook("batch");
    let form = |halt: &str| format!("cmd[]=imopenlines.crm.message.add&cmd[]=profile&halt={halt}");
    let failed = json!([arg_null("CRM_ENTITY_TYPE")]);
    for halt in ["1", "false", "true", "yes"] {
        let body = portal
            .post(&url, Some("application/x-www-form-urlencoded"), &form(halt))
            .json();
        assert_eq!(
            body["result"],
            json!({"result": [], "result_error": failed, "result_total": [], "result_next": [], "result_time": []}),
            "halt={halt}"
        );
    }
    for halt in ["0", ""] {
        let body = portal
            .post(&url, Some("application/x-www-form-urlencoded"), &form(halt))
            .json();
        assert_eq!(
            sections(&body),
            json!({
                "result": {"1": portal.call("profile", json!({})).result()},
                "result_error": failed,
                "result_total": [],
                "result_next": []
            }),
            "halt={halt}"
        );
    }
    let json_halt = portal
        .call(
            "batch",
            json!({"CMD": ["imopenlines.crm.message.add", "profile"], "HALT": true}),
        )
        .json();
    assert_eq!(json_halt["result"]["result"], json!([]));
    let no_halt = portal
        .call(
            "batch",
            json!({"Cmd": ["imopenlines.crm.message.add", "profile"], "halt": false}),
        )
        .json();
    assert_eq!(no_halt["result"]["result"]["1"]["ID"], json!("1"));
}

#[test]
fn form_bodies_are_double_encoded() {
    let portal = Portal::start();
    let command = format!(
        "imopenlines.crm.message.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE={}",
        encode("a&b=c d")
    );
    let form = format!("cmd[send]={}&auth=", encode(&command));
    let body = portal
        .post(
            &portal.hook("batch"),
            Some("application/x-www-form-urlencoded"),
            &form,
        )
        .json();
    assert_eq!(body["result"]["result"], json!({"send": 19880117}));
    assert_eq!(portal.messages()[0]["message"], json!("a&b=c d"));
    // The same through the query string of a GET.
    let get = portal.get(&format!(
        "{}?cmd[p]={}",
        portal.hook("batch"),
        encode("profile")
    ));
    assert_eq!(get.json()["result"]["result"]["p"]["ID"], json!("1"));
}

#[test]
fn fifty_commands_at_most() {
    let portal = Portal::start();
    let cmd: Vec<&str> = vec!["server.time"; 52];
    let body = portal.call("batch", json!({ "cmd": cmd })).json();
    let result = &body["result"];
    assert_eq!(result["result"].as_array().unwrap().len(), 50);
    assert_eq!(result["result_time"].as_array().unwrap().len(), 50);
    let exceeded = error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded");
    assert_eq!(
        result["result_error"],
        json!({"50": exceeded, "51": exceeded})
    );
    // `halt` does not stop at the first command beyond 50: each gets the error.
    let halted = portal
        .call("batch", json!({ "cmd": cmd, "halt": 1 }))
        .json();
    assert_eq!(halted["result"]["result_error"], result["result_error"]);
    assert_eq!(halted["result"]["result"].as_array().unwrap().len(), 50);
}

#[test]
fn list_commands_fill_total_and_next_and_their_references_resolve() {
    let portal = Portal::start();
    portal.load_leads(119);
    let body = portal
        .call(
            "batch",
            json!({"cmd": {
                "p1": "crm.lead.list?select[]=ID",
                "p2": "crm.lead.list.json?select[]=ID&start=$next[p1]",
                "last": "crm.lead.list?select[]=ID&start=100",
                "uncounted": "CRM.LEAD.LIST.JSON?select[]=ID&start=-1",
                "say": "imopenlines.crm.message.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE=next+$next[p2]+of+$total[p1]",
                "me": "profile.json"
            }}),
        )
        .json();
    let ids = |range: std::ops::Range<i64>| -> Value {
        range.map(|id| json!({"ID": id.to_string()})).collect()
    };
    let first_page: Vec<Value> = std::iter::once(json!({"ID": "101"}))
        .chain(ids(1001..1050).as_array().unwrap().iter().cloned())
        .collect();
    assert_eq!(
        sections(&body),
        json!({
            "result": {
                "p1": first_page,
                "p2": ids(1050..1100),
                "last": ids(1100..1120),
                "uncounted": first_page,
                "say": 19880117,
                "me": portal.call("profile", json!({})).result()
            },
            "result_error": [],
            "result_total": {"p1": 120, "p2": 120, "last": 120, "uncounted": 0},
            "result_next": {"p1": 50, "p2": 100}
        })
    );
    assert_eq!(portal.messages()[0]["message"], json!("next 100 of 120"));
    assert_eq!(
        portal.admin_get("counters")["batchCommands"]["byMethod"],
        json!({"crm.lead.list": 4, "imopenlines.crm.message.add": 1, "profile": 1})
    );
}

#[test]
fn empty_batch_has_empty_sections() {
    let portal = Portal::start();
    let resp = portal.call("batch", json!({}));
    assert_eq!(
        resp.result(),
        json!({"result": [], "result_error": [], "result_total": [], "result_next": [], "result_time": []})
    );
}

#[test]
fn outer_credentials_are_injected_and_each_command_is_scope_checked() {
    let portal = Portal::start();
    let crm_only = portal.new_webhook(1, Some(&["crm"]));
    let body = portal
        .call_via(
            &crm_only,
            "batch",
            json!({"cmd": {
                "chats": "imopenlines.crm.chat.get?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288",
                "me": "profile?auth=somebody-elses-token"
            }}),
        )
        .json();
    assert_eq!(
        sections(&body),
        json!({
            "result": {"me": portal.call("profile", json!({})).result()},
            "result_error": {"chats": insufficient_scope("webhook")},
            "result_total": [],
            "result_next": []
        })
    );
    let with_token = portal.post_json(
        &portal.rest("batch"),
        &json!({"auth": portal.token(), "cmd": {"id": "imopenlines.crm.chat.getLastId?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288"}}),
    );
    assert_eq!(with_token.result()["result"], json!({"id": 8773}));
    assert_answer(
        &portal.post_json(&portal.rest("batch"), &json!({"cmd": ["profile"]})),
        401,
        &error("NO_AUTH_FOUND", "Wrong authorization data"),
    );
    let requests = portal.requests();
    assert_eq!(requests.last().unwrap()["method"], json!("batch"));
}
