//! The HTTP request for a validated call: always `POST {base}{method}` with a JSON body
//! (`Content-Type: application/json`, which the portal's CORS allows), the access
//! token as the `auth` body parameter for OAuth, nothing secret in a query string.

use serde_json::Value;

use crate::auth::Auth;
use crate::params::Prepared;

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
    let mut params = prepared.params.clone();
    if let Auth::Token { access_token, .. } = auth {
        params.insert("auth".to_owned(), Value::String(access_token.clone()));
    }
    HttpRequest {
        url: auth.url(&prepared.method),
        body: Value::Object(params).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Webhook;
    use crate::params;
    use serde_json::json;

    fn seed() -> Prepared {
        params::message_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": "Привет & \"hi\""}))
            .expect("valid")
    }

    #[test]
    fn webhook_requests_carry_the_secret_only_in_the_path() {
        let auth = Auth::Webhook(Webhook::parse("https://p.example/rest/1/sec/").expect("ok"));
        let req = encode(&auth, &seed());
        assert_eq!(req.url, "https://p.example/rest/1/sec/imopenlines.crm.message.add");
        let body: Value = serde_json::from_str(&req.body).expect("json");
        assert_eq!(
            body,
            json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12, "CHAT_ID": 8773, "MESSAGE": "Привет & \"hi\""})
        );
        assert!(!format!("{req:?}").contains("sec/"));
    }

    #[test]
    fn token_requests_send_auth_in_the_body_not_the_url() {
        let auth = Auth::token(Some("p.example"), None, "tok123").expect("ok");
        let req = encode(&auth, &seed());
        assert_eq!(req.url, "https://p.example/rest/imopenlines.crm.message.add");
        assert!(!req.url.contains("tok123"));
        let body: Value = serde_json::from_str(&req.body).expect("json");
        assert_eq!(body["auth"], "tok123");
        assert!(!format!("{req:?}").contains("tok123"));
    }
}
