//! The unauthenticated admin API under `/_portal/`: the ledger, counters,
//! reset, extra tokens and webhooks, scripted faults, run-time settings
//! (limits, token lifetimes, what history returns as text), the portal clock
//! and fixtures.

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
use crate::config::HistoryText;
use crate::envelope::iso8601;
use crate::faults::FaultSpec;
use crate::fixtures::{self, Fixtures};
use crate::limits::LeakyBucket;
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
        .route("/_portal/settings", get(settings).post(change_settings))
        .route("/_portal/clock", get(clock).post(change_clock))
        .route("/_portal/fixtures", post(load_fixtures))
        .merge(crate::parent::routes())
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
    app.reset();
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
    let scope = req.scope.unwrap_or_else(|| app.config.scope.clone());
    let issued = app.issue_token(user_id, scope.clone(), req.ttl_seconds.map(|s| s as f64));
    Ok(Json(json!({
        "accessToken": issued.access_token,
        "expiresIn": issued.ttl.round() as u64,
        "expires": issued.expires.floor() as i64,
        "userId": user_id,
        "scope": scope.join(","),
        "refreshToken": issued.refresh_token,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpireRequest {
    access_token: Option<String>,
}

async fn expire_tokens(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: ExpireRequest = body(&bytes)?;
    let mut store = app.lock();
    let now = store.clock.now();
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
    // A `session_after` fault must name an open-line chat that exists now.
    for chat_id in req.faults.iter().filter_map(|f| f.chat_id) {
        let line = store.directory.chats.get(&chat_id).map(|c| &c.open_line);
        if !matches!(line, Some(Some(_))) {
            return Err(AdminError::bad_request(
                "INVALID_FAULT",
                format!("no open-line chat {chat_id}"),
            ));
        }
    }
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

/// Deserializes a present field, `null` included, as `Some(…)`; with
/// `#[serde(default)]` an absent field stays `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateLimitChange {
    enabled: Option<bool>,
    burst: Option<f64>,
    drain_per_second: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OperatingLimitChange {
    enabled: Option<bool>,
    limit_seconds: Option<f64>,
    /// Absent: unchanged; `null`: measured time again.
    #[serde(default, deserialize_with = "present")]
    cost_seconds: Option<Option<f64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsChange {
    rate_limit: Option<RateLimitChange>,
    operating_limit: Option<OperatingLimitChange>,
    token_ttl_seconds: Option<f64>,
    refresh_ttl_seconds: Option<f64>,
    history_text: Option<HistoryText>,
}

fn settings_view(app: &App) -> Json<Value> {
    let mut store = app.lock();
    let now = store.clock.now();
    let limit = store.settings.rate_limit;
    store.bucket.drain(&limit, now);
    let mut view = serde_json::to_value(store.settings).unwrap_or_default();
    view["bucketLevel"] = json!(store.bucket.level);
    Json(view)
}

async fn settings(State(app): State<Arc<App>>) -> Response {
    settings_view(&app).into_response()
}

/// Changes the given settings only; any change to the rate limit empties
/// the bucket.
async fn change_settings(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: SettingsChange = body(&bytes)?;
    let numbers = [
        req.rate_limit.as_ref().and_then(|r| r.burst),
        req.rate_limit.as_ref().and_then(|r| r.drain_per_second),
        req.operating_limit.as_ref().and_then(|o| o.limit_seconds),
        req.operating_limit
            .as_ref()
            .and_then(|o| o.cost_seconds.flatten()),
        req.token_ttl_seconds,
        req.refresh_ttl_seconds,
    ];
    if numbers
        .into_iter()
        .flatten()
        .any(|n| !n.is_finite() || n < 0.0)
    {
        return Err(AdminError::bad_request(
            "INVALID_BODY",
            "numbers must be finite and not negative",
        ));
    }
    {
        let mut store = app.lock();
        let settings = &mut store.settings;
        if let Some(change) = &req.rate_limit {
            let rate = &mut settings.rate_limit;
            rate.enabled = change.enabled.unwrap_or(rate.enabled);
            rate.burst = change.burst.unwrap_or(rate.burst);
            rate.drain_per_second = change.drain_per_second.unwrap_or(rate.drain_per_second);
        }
        if let Some(change) = &req.operating_limit {
            let op = &mut settings.operating_limit;
            op.enabled = change.enabled.unwrap_or(op.enabled);
            op.limit_seconds = change.limit_seconds.unwrap_or(op.limit_seconds);
            op.cost_seconds = change.cost_seconds.unwrap_or(op.cost_seconds);
        }
        settings.token_ttl_seconds = req.token_ttl_seconds.unwrap_or(settings.token_ttl_seconds);
        settings.refresh_ttl_seconds = req
            .refresh_ttl_seconds
            .unwrap_or(settings.refresh_ttl_seconds);
        settings.history_text = req.history_text.unwrap_or(settings.history_text);
        if req.rate_limit.is_some() {
            store.bucket = LeakyBucket::default();
        }
    }
    Ok(settings_view(&app))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockChange {
    /// Sets the portal time (Unix seconds).
    set: Option<f64>,
    /// Moves the portal time by this many seconds (after `set`).
    advance_seconds: Option<f64>,
    /// Portal seconds per real second from now on.
    scale: Option<f64>,
}

fn clock_view(app: &App) -> Json<Value> {
    let store = app.lock();
    let now = store.clock.now();
    Json(json!({"now": now, "date": iso8601(now), "scale": store.clock.scale()}))
}

async fn clock(State(app): State<Arc<App>>) -> Response {
    clock_view(&app).into_response()
}

async fn change_clock(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: ClockChange = body(&bytes)?;
    let numbers = [req.set, req.advance_seconds, req.scale];
    let scale_ok = req.scale.is_none_or(|s| s >= 0.0);
    if !scale_ok || numbers.into_iter().flatten().any(|n| !n.is_finite()) {
        return Err(AdminError::bad_request(
            "INVALID_BODY",
            "numbers must be finite and the scale not negative",
        ));
    }
    {
        let mut store = app.lock();
        if let Some(unix) = req.set {
            store.clock.set(unix);
        }
        if let Some(seconds) = req.advance_seconds {
            store.clock.advance(seconds);
        }
        if let Some(scale) = req.scale {
            store.clock.set_scale(scale);
        }
    }
    Ok(clock_view(&app))
}

async fn load_fixtures(State(app): State<Arc<App>>, bytes: Bytes) -> AdminResult {
    let req: Fixtures = body(&bytes)?;
    let mut store = app.lock();
    match fixtures::load(&mut store.directory, req) {
        Ok(loaded) => Ok(Json(serde_json::to_value(loaded).unwrap_or_default())),
        Err(message) => Err(AdminError::bad_request("INVALID_FIXTURE", message)),
    }
}
