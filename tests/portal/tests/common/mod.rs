//! Shared helpers: start a portal in-process on port 0 and talk real HTTP
//! to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use b24_portal::{serve_in_thread, Config, PortalThread};
use serde_json::{json, Value};
use ureq::http::{HeaderMap, Request};
use ureq::Agent;

/// Every field of the `time` object, in the order the server writes them.
pub const TIME_KEYS: [&str; 8] = [
    "start",
    "finish",
    "duration",
    "processing",
    "date_start",
    "date_finish",
    "operating_reset_at",
    "operating",
];

/// An HTTP answer, fully read.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `result` of a 200 answer; panics with the body otherwise.
    pub fn result(&self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.text);
        self.json()["result"].clone()
    }
}

/// A running portal plus an HTTP client that never turns statuses into errors.
pub struct Portal {
    pub thread: PortalThread,
    agent: Agent,
}

impl Portal {
    pub fn start() -> Self {
        Self::with(Config::default())
    }

    pub fn with(config: Config) -> Self {
        let thread = serve_in_thread(config).expect("portal starts");
        // No pooled connections: each request opens its own, so a connection the
        // portal closed (a dropped-connection fault) is never reused by a later test step.
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .build()
            .into();
        Self { thread, agent }
    }

    pub fn url(&self) -> &str {
        &self.thread.info().url
    }

    pub fn webhook(&self) -> &str {
        &self.thread.info().webhook
    }

    pub fn token(&self) -> &str {
        &self.thread.info().access_token
    }

    /// The webhook's secret path segment.
    pub fn secret(&self) -> String {
        let webhook = self.webhook().trim_end_matches('/');
        webhook.rsplit('/').next().unwrap().to_owned()
    }

    /// `{webhook}{method}`.
    pub fn hook(&self, method: &str) -> String {
        format!("{}{method}", self.webhook())
    }

    /// `{url}/rest/{method}` (no credentials).
    pub fn rest(&self, method: &str) -> String {
        format!("{}/rest/{method}", self.url())
    }

    pub fn get(&self, url: &str) -> Resp {
        read(self.agent.get(url).call().expect("GET answered"))
    }

    /// POST `body` with the given `Content-Type` (none when `None`).
    pub fn post(&self, url: &str, content_type: Option<&str>, body: &str) -> Resp {
        let mut req = self.agent.post(url);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        read(req.send(body).expect("POST answered"))
    }

    pub fn post_json(&self, url: &str, body: &Value) -> Resp {
        self.post(url, Some("application/json"), &body.to_string())
    }

    /// Sends any request; `Err` is a transport error (no HTTP answer).
    pub fn try_send(&self, request: Request<String>) -> Result<Resp, ureq::Error> {
        self.agent.run(request).map(read)
    }

    pub fn send(&self, request: Request<String>) -> Resp {
        self.try_send(request).expect("request answered")
    }

    /// Calls `method` through the default webhook with a JSON body.
    pub fn call(&self, method: &str, params: Value) -> Resp {
        self.post_json(&self.hook(method), &params)
    }

    /// Calls `method` through another webhook URL.
    pub fn call_via(&self, webhook: &str, method: &str, params: Value) -> Resp {
        self.post_json(&format!("{webhook}{method}"), &params)
    }

    pub fn admin_get(&self, path: &str) -> Value {
        let resp = self.get(&format!("{}/_portal/{path}", self.url()));
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json()
    }

    pub fn admin_post(&self, path: &str, body: Value) -> Resp {
        self.post_json(&format!("{}/_portal/{path}", self.url()), &body)
    }

    pub fn admin_delete(&self, path: &str) -> Value {
        let resp = read(
            self.agent
                .delete(&format!("{}/_portal/{path}", self.url()))
                .call()
                .expect("DELETE answered"),
        );
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json()
    }

    /// A new webhook URL for `user_id`, optionally with limited scopes.
    pub fn new_webhook(&self, user_id: i64, scope: Option<&[&str]>) -> String {
        let mut body = json!({ "userId": user_id });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        let resp = self.admin_post("webhooks", body);
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json()["webhook"].as_str().unwrap().to_owned()
    }

    pub fn messages(&self) -> Vec<Value> {
        self.admin_get("messages").as_array().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.admin_get("requests").as_array().unwrap().clone()
    }

    /// Loads `count` leads through fixtures: ids 1001, 1002, … titled
    /// `Lead 1001`, … (next to the seeded lead 101).
    pub fn load_leads(&self, count: i64) {
        let leads: Vec<Value> = (1001..1001 + count)
            .map(|id| json!({"type": "lead", "id": id, "title": format!("Lead {id}")}))
            .collect();
        let resp = self.admin_post("fixtures", json!({ "crmItems": leads }));
        assert_eq!(resp.status, 200, "{}", resp.text);
    }

    pub fn add_faults(&self, faults: Value) {
        let resp = self.admin_post("faults", json!({ "faults": faults }));
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        text,
    }
}

/// A request builder for methods the helpers above do not cover.
pub fn request(method: &str, url: &str) -> ureq::http::request::Builder {
    Request::builder().method(method).uri(url)
}

/// The documentation's example call.
pub fn seed_example() -> Value {
    json!({
        "CRM_ENTITY_TYPE": "deal",
        "CRM_ENTITY": 288,
        "USER_ID": 12,
        "CHAT_ID": 8773,
        "MESSAGE": "Hello from the test"
    })
}

/// `{"error": code, "error_description": description}`.
pub fn error(code: &str, description: &str) -> Value {
    json!({ "error": code, "error_description": description })
}

/// The OAuth `insufficient_scope` refusal of a `webhook` or an `access` token.
pub fn insufficient_scope(credential: &str) -> Value {
    error(
        "insufficient_scope",
        &format!("The request requires higher privileges than provided by the {credential} token"),
    )
}

/// `ERROR_ARGUMENT` for a null or empty argument.
pub fn arg_null(name: &str) -> Value {
    json!({
        "error": "ERROR_ARGUMENT",
        "error_description": format!("Argument '{name}' is null or empty"),
        "argument": name
    })
}

/// `ERROR_ARGUMENT` for an argument of the wrong type.
pub fn arg_type(name: &str) -> Value {
    json!({
        "error": "ERROR_ARGUMENT",
        "error_description": format!("The value of an argument '{name}' has an invalid type"),
        "argument": name
    })
}

/// Asserts status and exact JSON body.
#[track_caller]
pub fn assert_answer(resp: &Resp, status: u16, body: &Value) {
    assert_eq!(
        (resp.status, &resp.json()),
        (status, body),
        "raw body: {}",
        resp.text
    );
}
