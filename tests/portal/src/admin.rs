//! The unauthenticated admin API under `/_portal/`: the ledger, counters,
//! reset, extra tokens and webhooks, and scripted faults.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::random_credential;
use crate::envelope::unix_now;
use crate::faults::FaultSpec;
use crate::state::{App, DEFAULT_USER};

/// Routes of the admin API.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/_portal/messages", get(messages))
        .route("/_portal/requests", get(requests))
        .route("/_portal/counters", get(counters))
        .route("/_portal/chats", get(chats))
        .route("/_portal/reset", post(reset))
        .route("/_portal/tokens", post(issue_token))
        .route("/_portal/tokens/expire", post(expire_tokens))
        .route("/_portal/webhooks", post(add_webhook))
        .route(
            "/_portal/faults",
            get(pending_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_portal/faults/log", get(fault_log))
}

/// An admin API error: `{"error": CODE, "error_description": TEXT}`.
struct AdminError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl AdminError {
    fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        (self.status, Json(body)).into_response()
    }
}

type AdminResult = Result<Json<Value>, AdminError>;

/// Decodes a JSON body; an empty body is `{}`.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, AdminError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| AdminError::bad_request("INVALID_BODY", e.to_string()))
}

fn known_user(app: &App, user_id: i64) -> Result<(), AdminError> {
    if app.lock().directory.users.contains_key(&user_id) {
        Ok(())
    } else {
        Err(AdminError::bad_request(
            "UNKNOWN_USER",
            format!("No user {user_id} on this portal"),
        ))
    }
}

async fn messages(State(app): State<Arc<App>>) -> Response {
    Json(app.lock().ledger.messages.clone()).into_response()
}

async fn requests(State(app): State<Arc<App>>) -> Response {
    Json(app.lock().ledger.requests.clone()).into_response()
}

async fn counters(State(app): State<Arc<App>>) -> Response {
    Json(app.lock().ledger.counters.clone()).into_response()
}

async fn chats(State(app): State<Arc<App>>) -> Response {
    let store = app.lock();
    let chats: Vec<_> = store.directory.chats.values().cloned().collect();
    Json(chats).into_response()
}

async fn reset(State(app): State<Arc<App>>) -> Response {
    app.reset(unix_now());
    Json(json!({"reset": true})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    user_id: Option<i64>,
    ttl_seconds: Option<u64>,
    scope: Option<Vec<String>>,
}

async fn issue_token(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: TokenRequest = body(&bytes)?;
    let user_id = req.user_id.unwrap_or(DEFAULT_USER);
    known_user(&app, user_id)?;
    let ttl = req
        .ttl_seconds
        .unwrap_or_else(|| app.config.token_ttl.as_secs());
    let scope = req.scope.unwrap_or_else(|| app.config.scope.clone());
    let value = random_credential(24);
    let now = unix_now();
    let expires = now + ttl as f64;
    app.lock()
        .credentials
        .add_token(value.clone(), user_id, scope.clone(), expires);
    Ok(Json(json!({
        "accessToken": value,
        "expiresIn": ttl,
        "expires": expires.floor() as i64,
        "userId": user_id,
        "scope": scope.join(","),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpireRequest {
    access_token: Option<String>,
}

async fn expire_tokens(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: ExpireRequest = body(&bytes)?;
    let now = unix_now();
    let mut store = app.lock();
    let mut expired = 0;
    for token in &mut store.credentials.tokens {
        if req.access_token.as_ref().is_none_or(|t| *t == token.value) {
            token.expires_at = token.expires_at.min(now);
            expired += 1;
        }
    }
    Ok(Json(json!({"expired": expired})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WebhookRequest {
    user_id: i64,
    scope: Option<Vec<String>>,
}

async fn add_webhook(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: WebhookRequest = body(&bytes)?;
    known_user(&app, req.user_id)?;
    let secret = random_credential(16);
    let scope = req.scope.unwrap_or_else(|| app.config.scope.clone());
    app.lock()
        .credentials
        .add_webhook(req.user_id, secret.clone(), scope);
    Ok(Json(json!({
        "webhook": app.webhook_url(req.user_id, &secret),
        "userId": req.user_id,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    faults: Vec<FaultSpec>,
}

async fn add_faults(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: FaultsRequest = body(&bytes)?;
    let mut store = app.lock();
    match store.faults.push(req.faults) {
        Ok(queued) => Ok(Json(
            json!({"queued": queued, "pending": store.faults.pending.len()}),
        )),
        Err(message) => Err(AdminError::bad_request("INVALID_FAULT", message)),
    }
}

async fn pending_faults(State(app): State<Arc<App>>) -> Response {
    Json(app.lock().faults.pending.clone()).into_response()
}

async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    let mut store = app.lock();
    let cleared = store.faults.pending.len();
    store.faults.pending.clear();
    Json(json!({"cleared": cleared})).into_response()
}

async fn fault_log(State(app): State<Arc<App>>) -> Response {
    Json(app.lock().faults.log.clone()).into_response()
}
