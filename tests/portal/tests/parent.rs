//! The parent page that opens an app in an iframe the way Bitrix24 does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Portal;
use serde_json::{json, Value};

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .map(|i| i + start.len())
        .unwrap_or_else(|| panic!("no {start} in page"));
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap()]
}

#[test]
fn the_page_names_the_frame_and_posts_the_auth_into_it() {
    let portal = Portal::start();
    let page = portal.get(&format!(
        "{}/_portal/frame?app=http%3A%2F%2Flocalhost%3A9%2Fapp%2F&placement=CRM_DEAL_DETAIL_TAB&options=%7B%22ID%22%3A%22288%22%7D&userId=12",
        portal.url()
    ));
    assert_eq!(page.status, 200);
    let host = portal.url().trim_start_matches("http://").to_owned();
    let name = between(&page.text, r#"<iframe id="b24-app" name=""#, "\"");
    let parts: Vec<&str> = name.split('|').collect();
    assert_eq!(parts[..2], [host.as_str(), "0"], "DOMAIN|PROTOCOL|APP_SID");
    assert_eq!(parts[2].len(), 32);
    let action = between(&page.text, r#"action=""#, "\"");
    assert!(
        action.starts_with("http://localhost:9/app/?DOMAIN="),
        "{action}"
    );
    assert!(action.contains(&format!("APP_SID={}", parts[2])));
    for field in [
        "AUTH_ID",
        "AUTH_EXPIRES",
        "REFRESH_ID",
        "PLACEMENT",
        "PLACEMENT_OPTIONS",
        "member_id",
    ] {
        assert!(page.text.contains(&format!(r#"name="{field}""#)), "{field}");
    }
    let token = between(&page.text, r#"name="AUTH_ID" value=""#, "\"");
    // The token works for REST calls as user 12.
    let profile = portal.post_json(&portal.rest("profile"), &json!({ "auth": token }));
    assert_eq!(profile.result()["ID"], json!("12"));
    assert!(page
        .text
        .contains(r#"const APP_ORIGIN = "http://localhost:9";"#));
}

#[test]
fn a_static_host_gets_everything_in_the_query() {
    let portal = Portal::start();
    let page = portal.get(&format!(
        "{}/_portal/frame?app=http%3A%2F%2Flocalhost%3A9%2F&transport=get",
        portal.url()
    ));
    let src = between(&page.text, r#"src=""#, "\"");
    assert!(src.starts_with("http://localhost:9/?DOMAIN="), "{src}");
    assert!(
        src.contains("&amp;AUTH_ID=") && src.contains("&amp;PLACEMENT=DEFAULT"),
        "{src}"
    );
    assert!(!page.text.contains("<form"));
}

#[test]
fn refresh_gives_a_new_token_with_the_frame_lifetime() {
    let portal = Portal::start();
    let page = portal.get(&format!(
        "{}/_portal/frame?app=http%3A%2F%2Flocalhost%3A9%2F&ttl=5&userId=12",
        portal.url()
    ));
    assert!(page.text.contains(r#"name="AUTH_EXPIRES" value="5""#));
    let sid = between(&page.text, "const SID = \"", "\"").to_owned();
    let answer = portal
        .post_json(
            &format!("{}/_portal/frame/refresh", portal.url()),
            &json!({ "sid": sid }),
        )
        .json();
    // Seconds as text, as the portal's refresh action writes them.
    assert_eq!(answer["AUTH_EXPIRES"], json!("5"));
    let token = answer["AUTH_ID"].as_str().unwrap();
    let profile = portal.post_json(&portal.rest("profile"), &json!({ "auth": token }));
    assert_eq!(profile.result()["ID"], json!("12"));
    let unknown = portal.post_json(
        &format!("{}/_portal/frame/refresh", portal.url()),
        &json!({ "sid": "nope" }),
    );
    assert_eq!(unknown.status, 404);
}

#[test]
fn bad_frame_requests_are_refused() {
    let portal = Portal::start();
    for query in [
        "app=javascript%3Aalert(1)",
        "app=http%3A%2F%2Fx%2F&userId=999",
        "app=http%3A%2F%2Fx%2F&options=%5B1%5D",
    ] {
        let page = portal.get(&format!("{}/_portal/frame?{query}", portal.url()));
        assert_eq!(page.status, 400, "{query}");
    }
}

/// The page for `query` and the `getInitData` answer its script holds.
fn open(portal: &Portal, query: &str) -> (String, Value) {
    let page = portal.get(&format!("{}/_portal/frame?{query}", portal.url()));
    assert_eq!(page.status, 200, "{query}");
    let init = serde_json::from_str(between(&page.text, "let init = ", ";\n")).unwrap();
    (page.text, init)
}

const DEAL_TAB: &str = "app=http%3A%2F%2Flocalhost%3A9%2F&placement=CRM_DEAL_DETAIL_TAB&userId=12";

#[test]
fn get_init_data_gives_the_placement_options_as_an_object_in_both_transports() {
    let portal = Portal::start();
    // The options as a portal module hands them over: an integer, a flag, a null, a list.
    let options = "%7B%22ID%22%3A288%2C%22flag%22%3Atrue%2C%22none%22%3Anull%2C%22list%22%3A%5B1%2C%22a%22%5D%7D";
    for transport in ["post", "get"] {
        let (_, init) = open(
            &portal,
            &format!("{DEAL_TAB}&options={options}&transport={transport}"),
        );
        assert_eq!(
            init["PLACEMENT_OPTIONS"],
            json!({"ID": "288", "flag": true, "none": "", "list": ["1", "a"]}),
            "{transport}"
        );
        assert_eq!(init["PLACEMENT"], json!("CRM_DEAL_DETAIL_TAB"));
        // The layout writes the token lifetime as text; an app multiplies it by 1000.
        assert_eq!(init["AUTH_EXPIRES"], json!("3600"));
        assert_eq!(init["PROTOCOL"], json!(0));
        assert_eq!(init["PATH"], json!("/rest"));
    }
    // No options (the main app page): an empty PHP array, which the encoder writes as [].
    let (_, init) = open(&portal, "app=http%3A%2F%2Flocalhost%3A9%2F");
    assert_eq!(init["PLACEMENT_OPTIONS"], json!([]));
    assert_eq!(init["USER_OPTIONS"], json!([]));
    assert_eq!(init["APP_OPTIONS"], json!([]));
}

#[test]
fn the_launch_request_carries_the_options_as_json_text_only_when_there_are_some() {
    let portal = Portal::start();
    let (page, _) = open(
        &portal,
        &format!("{DEAL_TAB}&options=%7B%22ID%22%3A%22288%22%7D"),
    );
    assert_eq!(
        between(&page, r#"name="PLACEMENT_OPTIONS" value=""#, "\""),
        "{&quot;ID&quot;:&quot;288&quot;}"
    );
    let (page, _) = open(&portal, "app=http%3A%2F%2Flocalhost%3A9%2F");
    assert!(
        !page.contains("PLACEMENT_OPTIONS\" value"),
        "no options, no field"
    );
    let (page, _) = open(&portal, "app=http%3A%2F%2Flocalhost%3A9%2F&transport=get");
    assert!(!page.contains("PLACEMENT_OPTIONS="));
}

#[test]
fn every_placement_but_default_denies_set_title_set_scroll_and_reload_window() {
    let portal = Portal::start();
    let denied = |query: &str| -> Value {
        let (page, _) = open(&portal, query);
        serde_json::from_str(between(&page, "const DENIED = ", ";\n")).unwrap()
    };
    assert_eq!(
        denied(DEAL_TAB),
        json!(["setTitle", "setScroll", "reloadWindow"])
    );
    assert_eq!(denied("app=http%3A%2F%2Flocalhost%3A9%2F"), json!([]));
    // Configurable: a popup layout also denies resizeWindow; an empty list denies nothing.
    assert_eq!(
        denied(&format!(
            "{DEAL_TAB}&deny=setTitle,setScroll,reloadWindow,resizeWindow"
        )),
        json!(["setTitle", "setScroll", "reloadWindow", "resizeWindow"])
    );
    assert_eq!(denied(&format!("{DEAL_TAB}&deny=")), json!([]));
}
