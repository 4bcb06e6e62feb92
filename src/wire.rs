//! The HTTP request for a validated call: always `POST {base}{method}` with the
//! parameters as a PHP-style query string in an `application/x-www-form-urlencoded`
//! body ([`crate::query`]), the access token as the `auth` body parameter for OAuth,
//! nothing secret in a query string. That content type makes the request a CORS
//! "simple request": a browser sends it without a preflight.

use crate::auth::Auth;
use crate::params::{Field, Params, Prepared};
use crate::query;

/// The `Content-Type` every request is sent with.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// A request ready for the transport.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The full URL (for a webhook it holds the secret: never show it).
    pub url: String,
    /// The form body.
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

/// The form body: the parameters, then `auth` when a token is used (last, so that it
/// wins over an `auth` among the caller's own `call()` parameters: PHP keeps the last
/// of a repeated key).
pub fn body(params: &Params, auth: Option<&str>) -> String {
    let mut out = String::new();
    match params {
        Params::Fields(fields) => {
            for (k, v) in fields {
                match v {
                    Field::Int(n) => query::pair(&mut out, k, &crate::text::decimal(*n)),
                    Field::Str(s) => query::pair(&mut out, k, s),
                }
            }
        }
        Params::Query(text) => out.push_str(text),
    }
    if let Some(token) = auth {
        query::pair(&mut out, "auth", token);
    }
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
        assert_eq!(
            req.body,
            "CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=12&CHAT_ID=8773\
             &MESSAGE=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%20%26%20%22hi%22"
        );
        assert!(!format!("{req:?}").contains("sec/"));
    }

    #[test]
    fn token_requests_send_auth_in_the_body_not_the_url() {
        let auth = Auth::token(Some("p.example"), None, "tok+123/=", false).expect("ok");
        let req = encode(&auth, &seed());
        assert_eq!(
            req.url,
            "https://p.example/rest/imopenlines.crm.message.add"
        );
        assert!(!req.url.contains("tok"));
        assert!(req.body.ends_with("&auth=tok%2B123%2F%3D"), "{}", req.body);
        assert!(!format!("{req:?}").contains("tok"));
    }

    #[test]
    fn raw_params_pass_through_and_auth_comes_last() {
        let params: Value = json!({"fields": {"TITLE": "a,b"}, "auth": "mine"});
        let p = params::raw("crm.deal.add", Some(&params)).expect("ok");
        let b = body(&p.params, Some("tok"));
        assert!(b.ends_with("&auth=tok"), "{b}");
        assert!(b.contains("fields[TITLE]=a%2Cb"), "{b}");
        let empty = params::raw("profile", Some(&json!({}))).expect("ok");
        assert_eq!(body(&empty.params, Some("t")), "auth=t");
        assert_eq!(body(&empty.params, None), "");
        let none = params::raw::<Value>("profile", None).expect("ok");
        assert_eq!(body(&none.params, None), "");
    }
}
