//! Credentials: webhooks, access tokens from every source, expiry, scopes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use b24_portal::Config;
use common::{assert_answer, error, insufficient_scope, request, seed_example, Portal};
use serde_json::json;

const METHOD: &str = "imopenlines.crm.message.add";

fn invalid_token() -> serde_json::Value {
    error("invalid_token", "The access token provided is invalid")
}

fn expired_token() -> serde_json::Value {
    error("expired_token", "The access token provided has expired")
}

#[test]
fn no_credentials_is_401_no_auth_found() {
    let portal = Portal::start();
    let resp = portal.post_json(&portal.rest(METHOD), &seed_example());
    assert_answer(
        &resp,
        401,
        &error("NO_AUTH_FOUND", "Wrong authorization data"),
    );
    // An empty or "0" token counts as none.
    let empty = portal.get(&format!(
        "{}?auth=&access_token={}",
        portal.rest("profile"),
        portal.token()
    ));
    assert_answer(
        &empty,
        401,
        &error("NO_AUTH_FOUND", "Wrong authorization data"),
    );
    let zero = portal.get(&format!("{}?auth=0", portal.rest("profile")));
    assert_eq!(zero.json()["error"], json!("NO_AUTH_FOUND"));
}

#[test]
fn wrong_webhook_secret_or_user_is_401_invalid_credentials() {
    let portal = Portal::start();
    let invalid = error("INVALID_CREDENTIALS", "Invalid request credentials");
    let secret = portal.secret();
    for path in [
        "1/wrong",
        &format!("12/{secret}"),
        &format!("01/{secret}"),
        &format!("olga/{secret}"),
    ] {
        let url = format!("{}/rest/{path}/{METHOD}", portal.url());
        assert_answer(&portal.post_json(&url, &seed_example()), 401, &invalid);
    }
    assert!(portal.messages().is_empty());
    // The owner's login works in place of the id.
    let by_login = format!("{}/rest/admin/{secret}/profile", portal.url());
    assert_eq!(portal.get(&by_login).result()["ID"], json!("1"));
}

#[test]
fn token_is_read_from_auth_access_token_or_bearer_header() {
    let portal = Portal::start();
    let token = portal.token().to_owned();
    let mut body = seed_example();
    body["auth"] = json!(token);
    assert_eq!(
        portal.post_json(&portal.rest(METHOD), &body).result(),
        json!(19880117)
    );

    let via_access_token = format!("{}?access_token={token}", portal.rest("profile"));
    assert_eq!(portal.get(&via_access_token).result()["ID"], json!("1"));

    let bearer = request("POST", &portal.rest(METHOD))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {token}"))
        .body(seed_example().to_string())
        .unwrap();
    assert_eq!(portal.send(bearer).result(), json!(19880118));
    assert_eq!(portal.messages()[1]["auth"], json!("token"));
}

#[test]
fn bearer_header_wins_over_parameters() {
    let portal = Portal::start();
    let good_header = request("GET", &format!("{}?auth=bogus", portal.rest("profile")))
        .header("Authorization", format!("bearer {}", portal.token()))
        .body(String::new())
        .unwrap();
    assert_eq!(portal.send(good_header).result()["ID"], json!("1"));
    let bad_header = request(
        "GET",
        &format!("{}?auth={}", portal.rest("profile"), portal.token()),
    )
    .header("Authorization", "Bearer bogus")
    .body(String::new())
    .unwrap();
    assert_answer(&portal.send(bad_header), 401, &invalid_token());
}

#[test]
fn a_token_is_checked_before_the_webhook_path() {
    let portal = Portal::start();
    let url = format!("{}?auth=bogus", portal.hook("profile"));
    assert_answer(&portal.get(&url), 401, &invalid_token());
}

#[test]
fn unknown_token_is_401_invalid_token() {
    let portal = Portal::start();
    let url = format!("{}?auth=not-a-token", portal.rest("profile"));
    assert_answer(&portal.get(&url), 401, &invalid_token());
}

#[test]
fn expired_token_is_401_until_reset() {
    let portal = Portal::start();
    let url = format!("{}?auth={}", portal.rest("profile"), portal.token());
    assert_eq!(portal.get(&url).status, 200);
    let expired = portal.admin_post("tokens/expire", json!({"accessToken": portal.token()}));
    assert_eq!(expired.json(), json!({"expired": 1}));
    assert_answer(&portal.get(&url), 401, &expired_token());
    // Webhooks are unaffected.
    assert_eq!(portal.get(&portal.hook("profile")).status, 200);
    portal.admin_post("reset", json!({}));
    assert_eq!(portal.get(&url).status, 200);
}

#[test]
fn tokens_expire_after_their_ttl() {
    let portal = Portal::with(Config {
        token_ttl: Duration::from_secs(1),
        ..Config::default()
    });
    let url = format!("{}?auth={}", portal.rest("profile"), portal.token());
    assert_eq!(portal.get(&url).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_answer(&portal.get(&url), 401, &expired_token());
}

#[test]
fn issued_tokens_act_for_their_user_and_can_expire_at_once() {
    let portal = Portal::start();
    let issued = portal.admin_post("tokens", json!({"userId": 12})).json();
    assert_eq!(
        (issued["userId"].clone(), issued["expiresIn"].clone()),
        (json!(12), json!(3600))
    );
    let url = format!(
        "{}?auth={}",
        portal.rest("profile"),
        issued["accessToken"].as_str().unwrap()
    );
    assert_eq!(portal.get(&url).result()["ID"], json!("12"));

    let dead = portal.admin_post("tokens", json!({"ttlSeconds": 0})).json();
    let dead_url = format!(
        "{}?auth={}",
        portal.rest("profile"),
        dead["accessToken"].as_str().unwrap()
    );
    assert_answer(&portal.get(&dead_url), 401, &expired_token());

    portal.admin_post("tokens/expire", json!({}));
    assert_answer(&portal.get(&url), 401, &expired_token());
}

#[test]
fn insufficient_scope_names_the_credential_kind() {
    let portal = Portal::start();
    let crm_only = portal.new_webhook(1, Some(&["crm"]));
    let resp = portal.call_via(&crm_only, METHOD, seed_example());
    assert_answer(&resp, 401, &insufficient_scope("webhook"));
    let token = portal
        .admin_post("tokens", json!({"scope": ["crm"]}))
        .json();
    let url = format!(
        "{}?auth={}",
        portal.rest(METHOD),
        token["accessToken"].as_str().unwrap()
    );
    assert_answer(
        &portal.post_json(&url, &seed_example()),
        401,
        &insufficient_scope("access"),
    );
    // Global-scope methods need no scope.
    assert_eq!(portal.get(&format!("{crm_only}profile")).status, 200);
    assert!(portal.messages().is_empty());
}

#[test]
fn default_scope_can_be_configured() {
    let portal = Portal::with(Config {
        scope: vec!["crm".to_owned()],
        ..Config::default()
    });
    assert_eq!(
        portal.call(METHOD, seed_example()).json()["error"],
        json!("insufficient_scope")
    );
}

#[test]
fn inactive_user_cannot_authorize() {
    let portal = Portal::start();
    let hook15 = portal.new_webhook(15, None);
    let resp = portal.get(&format!("{hook15}profile"));
    assert_answer(
        &resp,
        401,
        &error("authorization_error", "Unable to authorize user"),
    );
}

#[test]
fn aplogin_and_ap_parameters_work_like_a_webhook_path() {
    let portal = Portal::start();
    let url = format!(
        "{}?aplogin=1&ap={}",
        portal.rest("profile"),
        portal.secret()
    );
    assert_eq!(portal.get(&url).result()["ID"], json!("1"));
    assert_eq!(portal.requests()[0]["auth"], json!("webhook"));
}
