//! Round trip through the portal's own request reader: what the client encodes for a
//! valid call, with webhook or token auth, decodes back in the portal to the same
//! method, the same parameters and the same credentials.
//!
//! The comparison is by PHP string value (`strval`), so that it holds for any body
//! encoding the portal reads (JSON, or a PHP query string where every scalar arrives
//! as a string). Each property runs 256 cases by default; `PROPTEST_CASES` raises that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use b24_openlines::auth::{Auth, Webhook};
use b24_openlines::params::{self, Field, Params, Prepared};
use b24_openlines::wire::{self, HttpRequest};
use b24_portal::{read_rest_request, Presented, RestRequest, Transport};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Reads `req` as the portal's `/rest/` endpoint does.
fn portal_reads(req: &HttpRequest) -> Result<RestRequest, TestCaseError> {
    let uri: Uri = req
        .url
        .parse()
        .map_err(|e| TestCaseError::fail(format!("the URL is not a URI: {e}")))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(wire::CONTENT_TYPE),
    );
    read_rest_request(&Method::POST, &uri, &headers, req.body.as_bytes())
        .ok_or_else(|| TestCaseError::fail("the portal does not see a /rest/ request"))
}

/// PHP's `strval()` of a scalar; `None` for arrays and objects.
fn strval(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("1".to_owned()),
        Value::Bool(false) | Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A value as PHP sees it whatever the body encoding: scalars as strings, lists as
/// maps from index to item.
fn php_view(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Object(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (i.to_string(), php_view(item)))
                .collect(),
        ),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, item)| (k.clone(), php_view(item)))
                .collect(),
        ),
        scalar => Value::String(strval(scalar).unwrap_or_default()),
    }
}

/// Messages: any Unicode, and text that means something in a URL, a query string
/// or JSON.
fn message() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => select(&[
            "Hello",
            "Привет, мир",
            "&auth=stolen",
            "a=b&c=d",
            "fields[TITLE]=x",
            "[B]bold[/B]",
            "100%",
            "%26%3D",
            "+ plus +",
            " leading and trailing ",
            "\u{0}nul",
            "line\r\nbreak",
            "quote \" backslash \\",
            "\u{1F600}\u{2028}\u{feff}",
            "0.0",
            "00",
            " 0",
        ][..]).prop_map(str::to_owned),
        1 => prop::collection::vec(any::<char>(), 1..300).prop_map(|c| c.into_iter().collect()),
    ]
    // PHP-empty texts and blank ones (the client refuses both before sending).
    .prop_filter("PHP-empty or blank", |s| {
        !s.is_empty() && s != "0" && !b24_openlines::message_text::stored(s).is_empty()
    })
}

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..=100_000,
        1u64..=MAX_SAFE_INTEGER,
        Just(MAX_SAFE_INTEGER)
    ]
}

/// A prepared call of one of the typed methods, made by its own validator.
fn typed_call() -> impl Strategy<Value = Prepared> {
    (
        0..6usize,
        select(&["lead", "deal", "company", "contact"][..]),
        (id(), id(), id()),
        message(),
        prop::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(which, t, (entity, user, chat), message, active, with_chat)| {
                let mut input = json!({
                    "crmEntityType": t,
                    "crmEntity": entity,
                    "userId": user,
                    "message": message,
                });
                if with_chat || which == 0 || which == 5 {
                    input["chatId"] = json!(chat);
                }
                if let Some(active) = active {
                    input["activeOnly"] = json!(active);
                }
                // Each method takes its own params only.
                let keys: [&[&str]; 6] = [
                    &["crmEntityType", "crmEntity", "userId", "chatId", "message"],
                    &["crmEntityType", "crmEntity", "activeOnly"],
                    &["crmEntityType", "crmEntity"],
                    &["crmEntityType", "crmEntity", "userId", "chatId"],
                    &["crmEntityType", "crmEntity", "userId", "chatId"],
                    &["chatId"],
                ];
                if let Value::Object(o) = &mut input {
                    o.retain(|k, _| keys[which].contains(&k.as_str()));
                }
                type Validator = fn(&Value) -> Result<Prepared, b24_openlines::Error>;
                let validate: [Validator; 6] = [
                    params::message_add::<Value>,
                    params::chat_get::<Value>,
                    params::chat_get_last_id::<Value>,
                    params::chat_user_add::<Value>,
                    params::chat_user_delete::<Value>,
                    params::lead_create::<Value>,
                ];
                validate[which](&input).expect("a valid input")
            },
        )
}

/// Names of `call()` parameters: plain words (PHP rewrites `.` and spaces in
/// top-level names, and brackets are structure in a query string).
fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z_][A-Za-z0-9_]{0,12}",
        1 => select(&["fields", "filter", "select", "order", "ID", "start", "auth"][..]).prop_map(str::to_owned),
    ]
}

/// A `call()` params value: strings and integers, nested lists and maps (never empty:
/// a query string cannot carry an empty container).
fn param_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => message().prop_map(Value::String),
        1 => "[A-Za-z0-9 ]{0,10}".prop_map(Value::String),
        1 => any::<i32>().prop_map(|n| json!(n)),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..5).prop_map(Value::Array),
            prop::collection::btree_map(param_name(), inner, 1..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A `call()` of any method with arbitrary params (as `JSON.stringify` would give them).
fn raw_call() -> impl Strategy<Value = (Prepared, Map<String, Value>)> {
    (
        "[a-z]{1,8}(\\.[a-zA-Z]{1,8}){0,3}",
        prop::collection::btree_map(param_name(), param_value(), 0..6),
    )
        .prop_filter(
            "a .json or .xml suffix selects the transport",
            |(name, _)| {
                let last = name.rsplit('.').next().unwrap_or_default();
                !last.eq_ignore_ascii_case("json") && !last.eq_ignore_ascii_case("xml")
            },
        )
        .prop_map(|(name, members)| {
            let members: Map<String, Value> = members.into_iter().collect();
            let p =
                params::raw(&name, Some(&Value::Object(members.clone()))).expect("a valid call");
            (p, members)
        })
}

/// Credentials: a webhook with a random user and secret, or a token.
#[derive(Debug, Clone)]
enum Creds {
    Hook { user: u32, secret: String },
    Token(String),
}

fn creds() -> impl Strategy<Value = Creds> {
    prop_oneof![
        (1u32..1_000_000, "[a-z0-9]{1,32}").prop_map(|(user, secret)| Creds::Hook { user, secret }),
        prop_oneof![
            "[A-Za-z0-9]{10,80}",
            any::<String>().prop_map(|s| s.trim().to_owned()),
        ]
        .prop_filter("a token is not blank", |t| !t.is_empty())
        .prop_map(Creds::Token),
    ]
}

fn auth_of(c: &Creds) -> Auth {
    match c {
        Creds::Hook { user, secret } => Auth::Webhook(
            Webhook::parse(
                &format!("https://portal.example/rest/{user}/{secret}/"),
                true,
            )
            .expect("a valid webhook"),
        ),
        Creds::Token(t) => {
            Auth::token(Some("portal.example"), None, t, true).expect("a valid token")
        }
    }
}

/// Checks what the portal read against the call's method and credentials, and
/// returns its parameters without the token's `auth`.
fn check_target_and_creds(
    read: RestRequest,
    p: &Prepared,
    c: &Creds,
) -> Result<Map<String, Value>, TestCaseError> {
    let target = read
        .target
        .ok_or_else(|| TestCaseError::fail("the portal cannot read the URL's method"))?;
    prop_assert_eq!(&target.method, &p.method);
    prop_assert_eq!(target.transport, Transport::Json);
    let mut params = read.params;
    match c {
        Creds::Hook { user, secret } => {
            let hook = target
                .webhook
                .ok_or_else(|| TestCaseError::fail("no webhook in the path"))?;
            prop_assert_eq!(&hook.user, &user.to_string());
            prop_assert_eq!(&hook.secret, secret);
            if !params.contains_key("auth") && !params.contains_key("access_token") {
                prop_assert_eq!(
                    read.presented,
                    Presented::Webhook {
                        user: user.to_string(),
                        secret: secret.clone()
                    }
                );
            }
        }
        Creds::Token(token) => {
            prop_assert!(target.webhook.is_none());
            let sent = params.remove("auth").as_ref().and_then(strval);
            prop_assert_eq!(sent.as_ref(), Some(token));
            if token != "0" {
                prop_assert_eq!(read.presented, Presented::Token(token.clone()));
            }
        }
    }
    Ok(params)
}

proptest! {
    /// A typed call's fields arrive with their wire names and values, nothing else;
    /// with a token the `auth` field is the token, with a webhook the path holds the
    /// user and the secret and no `auth` field appears, whatever the message says.
    #[test]
    fn typed_calls_decode_to_the_same_params(p in typed_call(), c in creds()) {
        let req = wire::encode(&auth_of(&c), &p);
        let read = portal_reads(&req)?;
        let got = check_target_and_creds(read, &p, &c)?;
        let Params::Fields(fields) = &p.params else {
            return Err(TestCaseError::fail("typed params are fields"));
        };
        let want: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Field::Int(n) => n.to_string(),
                    Field::Str(s) => s.clone(),
                };
                ((*k).to_owned(), Value::String(v))
            })
            .collect();
        let got: Map<String, Value> = got
            .iter()
            .map(|(k, v)| (k.clone(), strval(v).map_or_else(|| v.clone(), Value::String)))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// A `call()`'s own params arrive as given (nested lists and maps included); with a
    /// token, the token wins over an `auth` among them.
    #[test]
    fn raw_calls_decode_to_the_same_params((p, sent) in raw_call(), c in creds()) {
        let req = wire::encode(&auth_of(&c), &p);
        let read = portal_reads(&req)?;
        let got = check_target_and_creds(read, &p, &c)?;
        let mut want = sent;
        if matches!(c, Creds::Token(_)) {
            want.remove("auth");
        }
        prop_assert_eq!(php_view(&Value::Object(got)), php_view(&Value::Object(want)));
    }
}
