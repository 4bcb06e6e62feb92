//! Reading a REST request: which method the URL names, which parameters the
//! query string and body carry, and which credentials were presented.

use axum::http::{header, HeaderMap, Method, Uri};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::list::Start;
use crate::php;

/// Request parameters after merging query string and body.
pub type Params = Map<String, Value>;

/// Parameter names the server consumes itself and removes before the method
/// sees the rest (SRV-RESTSERVER, SRV-OAUTH, SRV-APAUTH).
pub const RESERVED_PARAMS: [&str; 8] = [
    "start",
    "state",
    "auth",
    "access_token",
    "auth_connector",
    "aplogin",
    "ap",
    "token",
];

/// Answer format chosen by the method's suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// No suffix or `.json`.
    Json,
    /// `.xml` (not served by this portal).
    Xml,
}

/// Webhook credentials taken from the URL path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookPath {
    /// User id (or login) segment.
    pub user: String,
    /// Secret segment.
    pub secret: String,
}

/// What a `/rest/…` URL asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestTarget {
    /// Method name as spelled, without the transport suffix.
    pub method: String,
    /// Transport suffix.
    pub transport: Transport,
    /// Webhook segments, for `/rest/{user}/{secret}/{method}`.
    pub webhook: Option<WebhookPath>,
}

/// A `/rest/…` request as the server reads it, before any method runs.
#[derive(Clone, Debug, PartialEq)]
pub struct RestRequest {
    /// What the URL asks for; `None` when the path after `/rest/` has no valid shape.
    pub target: Option<RestTarget>,
    /// Query string and body merged, reserved names (`auth`, `start`, …) still in.
    pub params: Params,
    /// The credentials the request presents.
    pub presented: Presented,
}

/// Reads a request the way the `/rest/` endpoint does: the URL's target, the
/// merged parameters and the presented credentials; `None` for a path outside
/// `/rest`.
pub fn read(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<RestRequest> {
    let target = parse_target(rest_tail(uri.path())?);
    let params = parse_params(method, uri.query(), headers, body);
    let presented = presented(
        headers,
        target.as_ref().and_then(|t| t.webhook.as_ref()),
        &params,
    );
    Some(RestRequest {
        target,
        params,
        presented,
    })
}

/// The part of `path` after `/rest/`, or `None` for paths outside `/rest`.
pub fn rest_tail(path: &str) -> Option<&str> {
    if path == "/rest" {
        Some("")
    } else {
        path.strip_prefix("/rest/")
    }
}

/// Parses the part after `/rest/`: `method`, `method/`,
/// `user/secret/method`, `user/secret/method/`, each with an optional
/// `.json` or `.xml` suffix. `None` for any other shape.
pub fn parse_target(tail: &str) -> Option<RestTarget> {
    let tail = tail.strip_suffix('/').unwrap_or(tail);
    let segments: Vec<String> = tail
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let (webhook, method) = match segments.as_slice() {
        [method] => (None, method),
        [user, secret, method] => (
            Some(WebhookPath {
                user: user.clone(),
                secret: secret.clone(),
            }),
            method,
        ),
        _ => return None,
    };
    let (method, transport) = split_transport(method);
    if method.is_empty() {
        return None;
    }
    Some(RestTarget {
        method: method.to_owned(),
        transport,
        webhook,
    })
}

fn split_transport(method: &str) -> (&str, Transport) {
    match method.rsplit_once('.') {
        Some((base, ext)) if ext.eq_ignore_ascii_case("json") => (base, Transport::Json),
        Some((base, ext)) if ext.eq_ignore_ascii_case("xml") => (base, Transport::Xml),
        _ => (method, Transport::Json),
    }
}

/// The path safe to log: the webhook secret becomes `***`; a path of any
/// other shape is reduced to `/rest/***`.
pub fn redacted_path(path: &str) -> String {
    let Some(tail) = rest_tail(path) else {
        return path.to_owned();
    };
    let trimmed = tail.strip_suffix('/').unwrap_or(tail);
    let segments: Vec<&str> = trimmed.split('/').collect();
    match segments.as_slice() {
        [_] => path.to_owned(),
        [user, _, method] => {
            let slash = if tail.ends_with('/') { "/" } else { "" };
            format!("/rest/{user}/***/{method}{slash}")
        }
        _ => "/rest/***".to_owned(),
    }
}

/// Merges parameters the way the server does: the query string first, then,
/// for POST, the raw body on top (top-level keys override). A body sent as
/// `application/json` (any `; charset=…` ignored) is decoded as JSON, and
/// invalid JSON yields no parameters; any other body is a PHP query string.
pub fn parse_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Params {
    let mut params = query.map(|q| php_query(q.as_bytes())).unwrap_or_default();
    if method == Method::POST && !body.is_empty() {
        let body_params = if is_json(headers) {
            json_params(body)
        } else {
            php_query(body)
        };
        params.extend(body_params);
    }
    params
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn json_params(body: &[u8]) -> Params {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Params::new(),
    }
}

/// Parses a PHP-style query string (`fields[PHONE][0][VALUE]=x`,
/// `select[]=ID`) as PHP's `parse_str` would: a repeated key keeps its last
/// value, a key without `=` gets `""`, a pair with an empty key is dropped,
/// and pairs that cannot be read are skipped rather than failing the request.
pub fn php_query(input: &[u8]) -> Params {
    let pairs = normalized_pairs(input);
    let config = serde_qs::Config::new().use_form_encoding(true);
    let joined = pairs.join(&b'&');
    if let Ok(params) = config.deserialize_bytes::<Params>(&joined) {
        return params;
    }
    // Conflicting or malformed keys: read pair by pair and merge like PHP.
    let mut params = Params::new();
    for pair in &pairs {
        if let Ok(single) = config.deserialize_bytes::<Params>(pair) {
            merge(&mut params, single);
        }
    }
    params
}

/// Raw `key=value` pairs, each with an `=`, without empty keys, and with
/// earlier duplicates of the same scalar key removed (and of a name that a later
/// pair replaces as a whole, as PHP does).
fn normalized_pairs(input: &[u8]) -> Vec<Vec<u8>> {
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for raw in input.split(|&b| b == b'&') {
        let key_raw = raw.split(|&b| b == b'=').next().unwrap_or_default();
        let key: String = form_urlencoded::parse(key_raw)
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        if key.is_empty() || key.starts_with('[') {
            continue;
        }
        let mut pair = raw.to_vec();
        if !raw.contains(&b'=') {
            pair.push(b'=');
        }
        if !key.contains("[]") {
            pairs.retain(|(k, _)| *k != key);
        }
        // PHP replaces a whole name: a scalar `a=` after `a[0]=` drops the array,
        // and `a[0]=` after a scalar `a=` drops the scalar.
        let base = key.split('[').next().unwrap_or_default().to_owned();
        if key == base {
            pairs.retain(|(k, _)| k.split('[').next() != Some(base.as_str()));
        } else {
            pairs.retain(|(k, _)| *k != base);
        }
        pairs.push((key, pair));
    }
    pairs.into_iter().map(|(_, pair)| pair).collect()
}

fn merge(into: &mut Params, from: Params) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(nested)) => merge(existing, nested),
            (Some(Value::Array(existing)), Value::Array(items)) => existing.extend(items),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Names of a `batch` call's commands in the order the request sends them
/// (the parameter map itself is sorted by name). The server reads `cmd`
/// case-insensitively, and a body overrides the query string; a list of
/// commands gives `0`, `1`, … Commands missing here run after these, by name.
pub fn batch_order(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Vec<String> {
    let from_body = (method == Method::POST && !body.is_empty()).then(|| {
        if is_json(headers) {
            json_cmd_order(body)
        } else {
            query_cmd_order(body)
        }
    });
    match from_body {
        Some(order) if !order.is_empty() => order,
        _ => query
            .map(|q| query_cmd_order(q.as_bytes()))
            .unwrap_or_default(),
    }
}

/// `cmd[NAME]=…` keys in order of first appearance; `cmd[]` counts up.
fn query_cmd_order(input: &[u8]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut next_index = 0usize;
    for (key, _) in form_urlencoded::parse(input) {
        let Some((head, rest)) = key.split_once('[') else {
            continue;
        };
        let Some((name, _)) = rest.split_once(']') else {
            continue;
        };
        if !head.eq_ignore_ascii_case("cmd") {
            continue;
        }
        let name = if name.is_empty() {
            next_index += 1;
            (next_index - 1).to_string()
        } else {
            name.to_owned()
        };
        if !order.contains(&name) {
            order.push(name);
        }
    }
    order
}

/// The keys of the top-level `cmd` member of a JSON body (the last `cmd` in
/// any letter case), in document order; `0..n` for a list.
fn json_cmd_order(body: &[u8]) -> Vec<String> {
    let Ok(top) = serde_json::from_slice::<OrderedMap>(body) else {
        return Vec::new();
    };
    let Some((_, cmd)) = top
        .0
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("cmd"))
    else {
        return Vec::new();
    };
    if let Ok(map) = serde_json::from_str::<OrderedMap>(cmd.get()) {
        return map.0.into_iter().map(|(k, _)| k).collect();
    }
    serde_json::from_str::<Vec<serde::de::IgnoredAny>>(cmd.get())
        .map(|items| (0..items.len()).map(|i| i.to_string()).collect())
        .unwrap_or_default()
}

/// A JSON object's members in document order, values left undecoded.
struct OrderedMap(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> serde::de::Visitor<'de> for MapVisitor {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedMap, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(OrderedMap(members))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

/// Credentials a request presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// An OAuth access token.
    Token(String),
    /// Webhook user (id or login) and secret.
    Webhook {
        /// User id or login.
        user: String,
        /// Secret.
        secret: String,
    },
    /// Nothing usable.
    Nothing,
}

impl Presented {
    /// `token`, `webhook` or `none`, for the request log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::Webhook { .. } => "webhook",
            Self::Nothing => "none",
        }
    }
}

/// Finds the credentials, in the server's order: an access token from the
/// `Authorization: Bearer` header, else the first of the `auth` and
/// `access_token` parameters that is present (used only if PHP-truthy); then
/// a webhook from the URL path, else from the `aplogin`/`ap` parameters.
pub fn presented(headers: &HeaderMap, webhook: Option<&WebhookPath>, params: &Params) -> Presented {
    let token = bearer(headers).map(Value::String).or_else(|| {
        ["auth", "access_token"]
            .iter()
            .find_map(|key| params.get(*key).filter(|v| !v.is_array() && !v.is_object()))
            .cloned()
    });
    if let Some(token) = token.filter(|t| !php::is_empty(Some(t))) {
        return Presented::Token(php::to_string(Some(&token)).unwrap_or_default());
    }
    if let Some(path) = webhook {
        return Presented::Webhook {
            user: path.user.clone(),
            secret: path.secret.clone(),
        };
    }
    match (params.get("aplogin"), params.get("ap")) {
        (Some(user), Some(secret)) => Presented::Webhook {
            user: php::to_string(Some(user)).unwrap_or_default(),
            secret: php::to_string(Some(secret)).unwrap_or_default(),
        },
        _ => Presented::Nothing,
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.trim_start().to_owned())
}

/// Removes [`RESERVED_PARAMS`], reading the list offset from `start` first
/// (as the server does before handing the rest to the method).
pub fn strip_reserved(params: &mut Params) -> Start {
    let start = Start::from_param(params.get("start"));
    for name in RESERVED_PARAMS {
        params.remove(name);
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_forms() {
        let plain = parse_target("imopenlines.crm.message.add.json/");
        assert_eq!(
            plain,
            Some(RestTarget {
                method: "imopenlines.crm.message.add".to_owned(),
                transport: Transport::Json,
                webhook: None
            })
        );
        let hook = parse_target("1/s3cr3t/profile");
        assert_eq!(
            hook.and_then(|t| t.webhook),
            Some(WebhookPath {
                user: "1".to_owned(),
                secret: "s3cr3t".to_owned()
            })
        );
        assert_eq!(
            parse_target("server.time").map(|t| t.method),
            Some("server.time".to_owned())
        );
        assert_eq!(
            parse_target("profile.XML").map(|t| t.transport),
            Some(Transport::Xml)
        );
        assert_eq!(parse_target("1/secret"), None);
        assert_eq!(parse_target(""), None);
        assert_eq!(parse_target("a/b/c/d"), None);
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redacted_path("/rest/1/abc/profile/"),
            "/rest/1/***/profile/"
        );
        assert_eq!(redacted_path("/rest/1/abc"), "/rest/***");
        assert_eq!(redacted_path("/rest/profile"), "/rest/profile");
    }

    #[test]
    fn php_query_strings() {
        assert_eq!(
            Value::Object(php_query(
                b"fields[PHONE][0][VALUE]=x&select[]=ID&select[]=NAME&a=1&a=2&b&=z"
            )),
            json!({"fields": {"PHONE": [{"VALUE": "x"}]}, "select": ["ID", "NAME"], "a": "2", "b": ""})
        );
        assert_eq!(
            Value::Object(php_query(b"fields%5BTITLE%5D=T+1&MESSAGE=a%26b")),
            json!({"fields": {"TITLE": "T 1"}, "MESSAGE": "a&b"})
        );
        assert_eq!(
            Value::Object(php_query(b"a=1&a[x]=2&c=%FF&d=ok")),
            json!({"a": {"x": "2"}, "d": "ok"})
        );
    }

    #[test]
    fn token_sources_in_server_order() {
        let mut headers = HeaderMap::new();
        let params: Params =
            serde_json::from_value(json!({"auth": "p", "access_token": "q"})).unwrap_or_default();
        assert_eq!(
            presented(&headers, None, &params),
            Presented::Token("p".to_owned())
        );
        headers.insert(
            header::AUTHORIZATION,
            "bearer   h"
                .parse()
                .unwrap_or(header::HeaderValue::from_static("")),
        );
        assert_eq!(
            presented(&headers, None, &params),
            Presented::Token("h".to_owned())
        );
        let empty_auth: Params =
            serde_json::from_value(json!({"auth": "", "access_token": "q"})).unwrap_or_default();
        assert_eq!(
            presented(&HeaderMap::new(), None, &empty_auth),
            Presented::Nothing
        );
    }
}
