//! Parameter decoding: JSON vs form vs text/plain bodies, invalid JSON,
//! query + body merging, reserved names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{arg_null, assert_answer, error, seed_example, Portal};
use serde_json::json;

const METHOD: &str = "imopenlines.crm.message.add";
const FORM: &str =
    "CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE=Tom+%26+Jerry%3D1";

#[test]
fn form_urlencoded_body_is_a_php_query_string() {
    let portal = Portal::start();
    let resp = portal.post(
        &portal.hook(METHOD),
        Some("application/x-www-form-urlencoded"),
        FORM,
    );
    assert_eq!(resp.result(), json!(19880117));
    assert_eq!(portal.messages()[0]["message"], json!("Tom & Jerry=1"));
}

#[test]
fn text_plain_body_with_auth_is_parsed_like_bx24js_sends_it() {
    let portal = Portal::start();
    let body = format!("auth={}&{FORM}", portal.token());
    let resp = portal.post(
        &portal.rest(&format!("{METHOD}.json")),
        Some("text/plain;charset=UTF-8"),
        &body,
    );
    assert_eq!(resp.result(), json!(19880117));
    assert_eq!(portal.messages()[0]["auth"], json!("token"));
}

#[test]
fn body_without_content_type_is_a_query_string() {
    let portal = Portal::start();
    let resp = portal.post(&portal.hook(METHOD), None, FORM);
    assert_eq!(resp.result(), json!(19880117));
}

#[test]
fn json_needs_the_json_content_type() {
    let portal = Portal::start();
    let body = seed_example().to_string();
    let as_text = portal.post(&portal.hook(METHOD), Some("text/plain"), &body);
    assert_answer(&as_text, 400, &arg_null("CRM_ENTITY_TYPE"));
    let with_charset = portal.post(
        &portal.hook(METHOD),
        Some("application/json; charset=utf-8"),
        &body,
    );
    assert_eq!(with_charset.result(), json!(19880117));
}

#[test]
fn invalid_json_yields_no_parameters() {
    let portal = Portal::start();
    let resp = portal.post(
        &portal.hook(METHOD),
        Some("application/json"),
        "{\"CRM_ENTITY_TYPE\": \"deal\",",
    );
    assert_answer(&resp, 400, &arg_null("CRM_ENTITY_TYPE"));
    // Query-string parameters still count.
    let url = format!("{}?{FORM}", portal.hook(METHOD));
    assert_eq!(
        portal
            .post(&url, Some("application/json"), "not json")
            .result(),
        json!(19880117)
    );
    // A token inside invalid JSON is lost too.
    let oauth = portal.post(
        &portal.rest(METHOD),
        Some("application/json"),
        &format!("{{\"auth\":\"{}\"", portal.token()),
    );
    assert_answer(
        &oauth,
        401,
        &error("NO_AUTH_FOUND", "Wrong authorization data"),
    );
}

#[test]
fn body_values_override_query_values() {
    let portal = Portal::start();
    let not_in_crm = error(
        "CHAT_NOT_IN_CRM",
        "Chat does not belong to the CRM entity being checked",
    );
    let query_closed = format!("{}?CHAT_ID=8772", portal.hook(METHOD));
    assert_eq!(
        portal.post_json(&query_closed, &seed_example()).result(),
        json!(19880117)
    );
    let mut body = seed_example();
    body["CHAT_ID"] = json!(8772);
    let query_active = format!("{}?CHAT_ID=8773", portal.hook(METHOD));
    assert_answer(&portal.post_json(&query_active, &body), 400, &not_in_crm);
}

#[test]
fn get_takes_parameters_from_the_query_string() {
    let portal = Portal::start();
    let resp = portal.get(&format!("{}?{FORM}", portal.hook(METHOD)));
    assert_eq!(resp.result(), json!(19880117));
}

#[test]
fn bracketed_and_numeric_string_values_are_accepted() {
    let portal = Portal::start();
    let body = "CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773&MESSAGE=x&fields%5BTITLE%5D=t&select[]=ID";
    assert_eq!(
        portal.post(&portal.hook(METHOD), None, body).result(),
        json!(19880117)
    );
    let names = portal.requests()[0]["paramNames"].clone();
    assert_eq!(
        names,
        json!([
            "CHAT_ID",
            "CRM_ENTITY",
            "CRM_ENTITY_TYPE",
            "MESSAGE",
            "USER_ID",
            "fields",
            "select"
        ])
    );
}

#[test]
fn reserved_parameters_are_removed_before_the_method() {
    let portal = Portal::start();
    let url = format!(
        "{}?start=0&state=s&auth_connector=c&token=t&auth={}",
        portal.rest(METHOD),
        portal.token()
    );
    let mut body = seed_example();
    body["access_token"] = json!("ignored");
    assert_eq!(portal.post_json(&url, &body).result(), json!(19880117));
    let names = portal.requests()[0]["paramNames"].clone();
    assert_eq!(
        names,
        json!([
            "CHAT_ID",
            "CRM_ENTITY",
            "CRM_ENTITY_TYPE",
            "MESSAGE",
            "USER_ID"
        ])
    );
}

#[test]
fn parameter_names_are_case_sensitive() {
    let portal = Portal::start();
    let resp = portal.call(
        METHOD,
        json!({"crm_entity_type": "deal", "CRM_ENTITY": 288}),
    );
    assert_answer(&resp, 400, &arg_null("CRM_ENTITY_TYPE"));
    // The old documentation's CRM_ENTITY_ID is not read either.
    let old = portal.call(
        METHOD,
        json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY_ID": 288}),
    );
    assert_answer(&old, 400, &arg_null("CRM_ENTITY"));
}
