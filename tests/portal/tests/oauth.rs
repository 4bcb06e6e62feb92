//! The OAuth token endpoint (§7): refresh by GET or form POST, rotation,
//! single use, client checks, token lifetime, the redacted request log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_answer, error, Portal};
use serde_json::{json, Value};

fn oauth(portal: &Portal) -> String {
    format!("{}/oauth/token/", portal.url())
}

fn refresh_query(portal: &Portal, refresh: &str) -> String {
    let info = portal.thread.info();
    format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={refresh}",
        info.client_id, info.client_secret
    )
}

#[test]
fn refresh_by_get_rotates_the_pair() {
    let portal = Portal::start();
    let first = portal.thread.info().refresh_token.clone();
    let resp = portal.get(&format!(
        "{}?{}",
        oauth(&portal),
        refresh_query(&portal, &first)
    ));
    assert_eq!(resp.status, 200, "{}", resp.text);
    let body = resp.json();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, first);
    let url = portal.url();
    let expires = body["expires"].as_i64().unwrap();
    assert_eq!(
        body,
        json!({
            "access_token": access,
            "expires": expires,
            "expires_in": 3600,
            "scope": "imopenlines,crm,im,user",
            "domain": url.trim_start_matches("http://"),
            "server_endpoint": format!("{url}/rest/"),
            "status": "L",
            "client_endpoint": format!("{url}/rest/"),
            "member_id": body["member_id"],
            "user_id": 1,
            "refresh_token": refresh
        })
    );
    assert_eq!(body["member_id"].as_str().unwrap().len(), 32);
    assert_eq!(
        portal
            .get(&format!("{}?auth={access}", portal.rest("profile")))
            .result()["ID"],
        json!("1")
    );
    // The used refresh token is gone; the new one works once, by form POST.
    assert_answer(
        &portal.get(&format!(
            "{}?{}",
            oauth(&portal),
            refresh_query(&portal, &first)
        )),
        400,
        &error("invalid_grant", "Invalid refresh token"),
    );
    let form = refresh_query(&portal, &refresh);
    let url = format!("{}/oauth/token", portal.url());
    let second = portal.post(&url, Some("application/x-www-form-urlencoded"), &form);
    assert_eq!(second.status, 200, "{}", second.text);
    let again = portal.post(&url, Some("application/x-www-form-urlencoded"), &form);
    assert_eq!(again.json()["error"], json!("invalid_grant"));
    let counters = portal.admin_get("counters");
    assert_eq!(
        (&counters["refreshes"], &counters["refreshErrors"]),
        (&json!(2), &json!(2))
    );
}

#[test]
fn client_and_grant_are_checked() {
    let portal = Portal::start();
    let info = portal.thread.info();
    let base = oauth(&portal);
    assert_answer(
        &portal.get(&format!(
            "{base}?grant_type=refresh_token&client_id={}&client_secret=wrong&refresh_token={}",
            info.client_id, info.refresh_token
        )),
        401,
        &error("invalid_client", "Invalid client credentials"),
    );
    let invalid_request = error(
        "invalid_request",
        "The request is missing a required parameter or has an unsupported grant_type",
    );
    assert_answer(
        &portal.get(&format!(
            "{base}?grant_type=authorization_code&client_id={}&client_secret={}&code=x",
            info.client_id, info.client_secret
        )),
        400,
        &invalid_request,
    );
    assert_answer(&portal.get(&base), 400, &invalid_request);
    // The failed attempts did not use up the refresh token.
    let ok = portal.get(&format!(
        "{base}?{}",
        refresh_query(&portal, &info.refresh_token)
    ));
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[test]
fn refreshed_tokens_expire_after_the_configured_lifetime() {
    let portal = Portal::start();
    portal.admin_post("settings", json!({"tokenTtlSeconds": 60}));
    let issued = portal.admin_post("tokens", json!({"userId": 12})).json();
    let refresh = issued["refreshToken"].as_str().unwrap();
    let body: Value = portal
        .get(&format!(
            "{}?{}",
            oauth(&portal),
            refresh_query(&portal, refresh)
        ))
        .json();
    assert_eq!(
        (&body["expires_in"], &body["user_id"]),
        (&json!(60), &json!(12))
    );
    let url = format!(
        "{}?auth={}",
        portal.rest("profile"),
        body["access_token"].as_str().unwrap()
    );
    assert_eq!(portal.get(&url).status, 200);
    portal.admin_post("clock", json!({"advanceSeconds": 61}));
    assert_answer(
        &portal.get(&url),
        401,
        &error("expired_token", "The access token provided has expired"),
    );
}

#[test]
fn token_requests_are_logged_with_grant_and_outcome_without_secrets() {
    let portal = Portal::start();
    let info = portal.thread.info();
    let first = info.refresh_token.clone();
    let ok = portal.post(
        &oauth(&portal),
        Some("application/x-www-form-urlencoded"),
        &refresh_query(&portal, &first),
    );
    assert_eq!(ok.status, 200, "{}", ok.text);
    let issued = ok.json();
    portal.get(&format!(
        "{}?grant_type=refresh_token&client_id={}&client_secret=not-it&refresh_token={first}",
        oauth(&portal),
        info.client_id
    ));
    portal.get(&format!(
        "{}/oauth/token?{}",
        portal.url(),
        refresh_query(&portal, &first)
    ));
    portal.get(&oauth(&portal));
    portal.call("profile", json!({})).result();

    let requests = portal.requests();
    let text = serde_json::to_string(&requests).unwrap();
    for secret in [
        info.client_secret.as_str(),
        first.as_str(),
        issued["refresh_token"].as_str().unwrap(),
        issued["access_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let logged: Vec<Value> = requests
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let fields = r.as_object_mut().unwrap();
            assert!(fields
                .remove("at")
                .unwrap()
                .as_str()
                .unwrap()
                .ends_with("+00:00"));
            assert!(fields.remove("durationMs").unwrap().is_f64());
            r
        })
        .collect();
    let names = json!(["client_id", "client_secret", "grant_type", "refresh_token"]);
    let record = |id: u16, verb: &str, path: &str, status: u16, error: Value, user: Value| {
        json!({
            "id": id, "httpMethod": verb, "path": path, "method": "oauth/token",
            "paramNames": names, "status": status, "error": error, "auth": "client",
            "userId": user, "fault": null, "grantType": "refresh_token"
        })
    };
    assert_eq!(
        logged,
        [
            record(1, "POST", "/oauth/token/", 200, json!(null), json!(1)),
            record(
                2,
                "GET",
                "/oauth/token/",
                401,
                json!("invalid_client"),
                json!(null)
            ),
            record(
                3,
                "GET",
                "/oauth/token",
                400,
                json!("invalid_grant"),
                json!(null)
            ),
            json!({
                "id": 4, "httpMethod": "GET", "path": "/oauth/token/", "method": "oauth/token",
                "paramNames": [], "status": 400, "error": "invalid_request", "auth": "none",
                "userId": null, "fault": null, "grantType": ""
            }),
            json!({
                "id": 5, "httpMethod": "POST", "path": "/rest/1/***/profile",
                "method": "profile", "paramNames": [], "status": 200, "error": null,
                "auth": "webhook", "userId": 1, "fault": null
            }),
        ]
    );
    // Token requests are counted as exchanges, not as REST requests.
    let counters = portal.admin_get("counters");
    assert_eq!(
        (
            &counters["total"],
            &counters["refreshes"],
            &counters["refreshErrors"]
        ),
        (&json!(1), &json!(1), &json!(3))
    );
}
