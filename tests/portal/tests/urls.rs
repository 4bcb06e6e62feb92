//! URL forms: `.json` suffix, trailing slash, webhook and OAuth paths,
//! case-insensitive method names, unknown methods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, error, Portal};
use serde_json::json;

#[test]
fn webhook_url_forms_all_reach_the_method() {
    let portal = Portal::start();
    for method in [
        "profile",
        "profile/",
        "profile.json",
        "profile.json/",
        "profile.JSON",
    ] {
        let resp = portal.get(&portal.hook(method));
        assert_eq!(resp.result()["ID"], json!("1"), "form {method}");
    }
    // Without the trailing slash after the secret.
    let base = portal.webhook().trim_end_matches('/');
    assert_eq!(
        portal.get(&format!("{base}/profile.json")).result()["ID"],
        json!("1")
    );
}

#[test]
fn oauth_url_forms_all_reach_the_method() {
    let portal = Portal::start();
    for method in ["profile", "profile/", "profile.json", "profile.json/"] {
        let url = format!("{}?auth={}", portal.rest(method), portal.token());
        assert_eq!(portal.get(&url).result()["ID"], json!("1"), "form {method}");
    }
}

#[test]
fn method_names_are_case_insensitive() {
    let portal = Portal::start();
    let params = json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288});
    for name in [
        "imopenlines.crm.chat.getLastId",
        "IMOPENLINES.CRM.CHAT.GETLASTID",
        "imopenlines.crm.chat.getlastid.json",
    ] {
        assert_eq!(
            portal.call(name, params.clone()).result(),
            json!(8773),
            "{name}"
        );
    }
    let logged: Vec<_> = portal
        .requests()
        .iter()
        .map(|r| r["method"].clone())
        .collect();
    assert_eq!(logged, vec![json!("imopenlines.crm.chat.getlastid"); 3]);
}

#[test]
fn unknown_method_is_404_even_without_credentials() {
    let portal = Portal::start();
    let not_found = error("ERROR_METHOD_NOT_FOUND", "Method not found!");
    assert_answer(&portal.get(&portal.rest("no.such.method")), 404, &not_found);
    let wrong_secret = format!("{}/rest/1/wrong/no.such.method", portal.url());
    assert_answer(&portal.get(&wrong_secret), 404, &not_found);
    // Known method, no credentials: now the credential check answers.
    assert_eq!(portal.get(&portal.rest("profile")).status, 401);
}

#[test]
fn malformed_rest_paths_are_method_not_found() {
    let portal = Portal::start();
    let not_found = error("ERROR_METHOD_NOT_FOUND", "Method not found!");
    for path in ["/rest/", "/rest", "/rest/1/secret", "/rest/a/b/c/d"] {
        assert_answer(
            &portal.get(&format!("{}{path}", portal.url())),
            404,
            &not_found,
        );
    }
}

#[test]
fn xml_transport_is_refused() {
    let portal = Portal::start();
    let resp = portal.get(&portal.hook("profile.xml"));
    assert_answer(
        &resp,
        400,
        &error(
            "ERROR_UNSUPPORTED_TRANSPORT",
            "This portal answers in JSON only",
        ),
    );
}

#[test]
fn paths_outside_rest_are_plain_404() {
    let portal = Portal::start();
    let resp = portal.get(&format!("{}/index.php", portal.url()));
    assert_eq!(resp.status, 404);
    assert!(portal.requests().is_empty(), "not a REST request");
}
