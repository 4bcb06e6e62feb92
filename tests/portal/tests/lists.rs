//! List methods (§3.2): `crm.lead.list` pages of 50 from the reserved
//! `start` parameter, top-level `next` and `total`, `start=-1`, `select`,
//! `order`, rights and scope.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, error, insufficient_scope, Portal};
use serde_json::{json, Value};

const METHOD: &str = "crm.lead.list";

/// `{"ID": "…", "TITLE": "…"}` rows for the given lead ids (101 is the
/// seeded lead, the others come from `load_leads`).
fn leads(ids: impl IntoIterator<Item = i64>) -> Value {
    ids.into_iter()
        .map(|id| {
            let title = if id == 101 {
                "Request from the website".to_owned()
            } else {
                format!("Lead {id}")
            };
            json!({"ID": id.to_string(), "TITLE": title})
        })
        .collect()
}

/// The answer without `time`, which holds clock values.
fn without_time(resp: &common::Resp) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text);
    let mut body = resp.json();
    let time = body.as_object_mut().unwrap().remove("time");
    assert!(time.is_some_and(|t| t["start"].is_i64()), "{}", resp.text);
    body
}

#[test]
fn pages_of_fifty_with_next_and_total() {
    let portal = Portal::start();
    portal.load_leads(119);
    let first = portal.call(METHOD, json!({}));
    assert_eq!(
        without_time(&first),
        json!({"result": leads([101].into_iter().chain(1001..1050)), "next": 50, "total": 120})
    );
    // Keys in the server's order: result, next, total, time.
    let at = |key: &str| first.text.find(&format!("\"{key}\":")).unwrap();
    assert!(at("result") < at("next") && at("next") < at("total") && at("total") < at("time"));
    // `start` in the query string of a GET, as a string.
    let second = portal.get(&format!("{}?start=50", portal.hook(METHOD)));
    assert_eq!(
        without_time(&second),
        json!({"result": leads(1050..1100), "next": 100, "total": 120})
    );
    // The last page has no `next`.
    let last = portal.call(METHOD, json!({"start": 100}));
    assert_eq!(
        without_time(&last),
        json!({"result": leads(1100..1120), "total": 120})
    );
    // Any offset works; past the end the page is empty.
    assert_eq!(
        without_time(&portal.call(METHOD, json!({"start": "75"}))),
        json!({"result": leads(1075..1120), "total": 120})
    );
    assert_eq!(
        without_time(&portal.call(METHOD, json!({"start": 500}))),
        json!({"result": [], "total": 120})
    );
    // `start` is read, then removed like every reserved name.
    assert_eq!(portal.requests()[1]["paramNames"], json!([]));
}

#[test]
fn start_minus_one_turns_counting_off() {
    let portal = Portal::start();
    portal.load_leads(119);
    assert_eq!(
        without_time(&portal.call(METHOD, json!({"start": -1}))),
        json!({"result": leads([101].into_iter().chain(1001..1050)), "total": 0})
    );
}

#[test]
fn the_seeded_portal_has_one_lead_and_select_and_order_apply() {
    let portal = Portal::start();
    assert_eq!(
        without_time(&portal.call(METHOD, json!({}))),
        json!({"result": [{"ID": "101", "TITLE": "Request from the website"}], "total": 1})
    );
    portal.load_leads(2);
    assert_eq!(
        without_time(&portal.call(METHOD, json!({"select": ["ID"], "order": {"ID": "DESC"}}))),
        json!({"result": [{"ID": "1002"}, {"ID": "1001"}, {"ID": "101"}], "total": 3})
    );
    let form = portal.post(
        &portal.hook(METHOD),
        Some("application/x-www-form-urlencoded"),
        "select[]=title&select[]=NO_SUCH&order[id]=asc",
    );
    assert_eq!(
        without_time(&form),
        json!({"result": [{"TITLE": "Request from the website"}, {"TITLE": "Lead 1001"}, {"TITLE": "Lead 1002"}], "total": 3})
    );
    // `imopenlines.crm.lead.create` adds leads the list shows.
    portal
        .call("imopenlines.crm.lead.create", json!({"CHAT_ID": 8900}))
        .result();
    assert_eq!(
        portal.call(METHOD, json!({"select": ["*"]})).json()["total"],
        json!(4)
    );
}

#[test]
fn rights_and_scope_are_checked() {
    let portal = Portal::start();
    let no_crm_rights = portal.new_webhook(13, None);
    assert_answer(
        &portal.call_via(&no_crm_rights, METHOD, json!({})),
        403,
        &error("ACCESS_DENIED", "Access denied!"),
    );
    let lines_only = portal.new_webhook(1, Some(&["imopenlines"]));
    assert_answer(
        &portal.call_via(&lines_only, METHOD, json!({})),
        401,
        &insufficient_scope("webhook"),
    );
    let methods = portal.call("methods", json!({"scope": "crm"})).result();
    assert_eq!(methods, json!([METHOD]));
}
