//! The HTTP request for a validated call: always `POST {base}{method}` with a JSON body
//! (`Content-Type: application/json`, which the portal's CORS allows), the access
//! token as the `auth` body parameter for OAuth, nothing secret in a query string.

use crate::auth::Auth;
use crate::json::write_str;
use crate::params::{Field, Params, Prepared};

/// The `Content-Type` every request is sent with.
pub const CONTENT_TYPE: &str = "application/json";

/// A request ready for the transport.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The full URL (for a webhook it holds the secret: never show it).
    pub url: String,
    /// The JSON body.
    pub body: String,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &"<redacted>")
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Builds the request for `prepared` with `auth`.
pub fn encode(auth: &Auth, prepared: &Prepared) -> HttpRequest {
    let token = match auth {
        Auth::Token { access_token, .. } => Some(access_token.as_str()),
        Auth::Webhook(_) => None,
    };
    HttpRequest {
        url: auth.url(&prepared.method),
        body: body(&prepared.params, token),
    }
}

/// The JSON body: the parameters, then `auth` when a token is used (last, so that it
/// wins over an `auth` among the caller's own `call()` parameters).
pub fn body(params: &Params, auth: Option<&str>) -> String {
    fn key(out: &mut String, k: &str) {
        if out.len() > 1 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
    }
    let mut out = String::from("{");
    match params {
        Params::Fields(fields) => {
            for (k, v) in fields {
                key(&mut out, k);
                match v {
                    Field::Int(n) => out.push_str(&n.to_string()),
                    Field::Str(s) => write_str(&mut out, s),
                }
            }
        }
        Params::Json(text) => {
            let inner = text
                .strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .unwrap_or_default()
                .trim();
            out.push_str(inner);
        }
    }
    if let Some(token) = auth {
        key(&mut out, "auth");
        write_str(&mut out, token);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Webhook;
    use crate::params;
    use serde_json::{json, Value};

    fn seed() -> Prepared {
        params::message_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": "Привет & \"hi\""}))
            .expect("valid")
    }

    #[test]
    fn webhook_requests_carry_the_secret_only_in_the_path() {
        let auth =
            Auth::Webhook(Webhook::parse("https://p.example/rest/1/sec/", false).expect("ok"));
        let req = encode(&auth, &seed());
        assert_eq!(
            req.url,
            "https://p.example/rest/1/sec/imopenlines.crm.message.add"
        );
        let body: Value = serde_json::from_str(&req.body).expect("json");
        assert_eq!(
            body,
            json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12, "CHAT_ID": 8773, "MESSAGE": "Привет & \"hi\""})
        );
        assert!(!format!("{req:?}").contains("sec/"));
    }

    #[test]
    fn token_requests_send_auth_in_the_body_not_the_url() {
        let auth = Auth::token(Some("p.example"), None, "tok123", false).expect("ok");
        let req = encode(&auth, &seed());
        assert_eq!(
            req.url,
            "https://p.example/rest/imopenlines.crm.message.add"
        );
        assert!(!req.url.contains("tok123"));
        let body: Value = serde_json::from_str(&req.body).expect("json");
        assert_eq!(body["auth"], "tok123");
        assert!(!format!("{req:?}").contains("tok123"));
    }

    #[test]
    fn raw_params_pass_through_and_auth_comes_last() {
        let p = params::raw(
            "crm.deal.add",
            Some(r#"{"fields":{"TITLE":"a,b"},"auth":"mine"}"#.into()),
        )
        .expect("ok");
        let b = body(&p.params, Some("tok"));
        assert!(b.ends_with(r#","auth":"tok"}"#), "{b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["fields"]["TITLE"], "a,b");
        assert_eq!(
            v["auth"], "tok",
            "the last duplicate wins in a JSON decoder"
        );
        let empty = params::raw("profile", Some("{}".into())).expect("ok");
        assert_eq!(body(&empty.params, Some("t")), r#"{"auth":"t"}"#);
        assert_eq!(body(&empty.params, None), "{}");
        let none = params::raw("profile", None).expect("ok");
        assert_eq!(body(&none.params, None), "{}");
    }
}
