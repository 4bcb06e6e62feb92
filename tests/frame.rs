//! A BX24.js client's portal, from `getAuth()` and the page's `window.name` as the JS
//! layer hands them over. The frame protocol itself runs in the package's JS layer and
//! is tested there (tests/js/browser.test.mjs, frame*.test.mjs).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use b24_openlines::abi::{last_error, Core};
use wasm_bindgen_test::*;

const AUTH: &str = r#"{"access_token":"t","expires_in":4102444800000,"domain":"portal.example"}"#;

#[wasm_bindgen_test]
fn from_bx24_follows_the_scheme_of_the_portal_frame() {
    // An on-premise portal served over http names itself so in the frame name.
    for (name, options, expected) in [
        ("portal.example|0|SID1", "null", "http://portal.example"),
        ("portal.example|1|SID1", "null", "https://portal.example"),
        ("", "null", "https://portal.example"),
        ("", r#"{"protocol":"http"}"#, "http://portal.example"),
    ] {
        let core = Core::bx24(AUTH, name, options, "Client.fromBx24").expect("opens");
        assert_eq!(core.portal(), expected, "{name}");
    }
    assert!(Core::bx24("false", "", "null", "Client.fromBx24").is_none());
    assert!(last_error().contains("BX24.getAuth() gave no access token"));
}
