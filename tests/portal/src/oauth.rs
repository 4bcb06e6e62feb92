//! The OAuth server's token endpoint (§7) at `/oauth/token/`: exchanges a
//! refresh token for a new access token and a new refresh token.
//!
//! GET with a query string (as the docs show) and POST with a form body (as
//! some SDKs send) are both accepted. Refresh tokens are single use; the
//! access token issued before keeps working until it expires. Every request
//! is in the request log with its grant type and outcome, but never a
//! parameter value such as the client secret or a token.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::auth::random_credential;
use crate::envelope::{iso8601_millis, RestError, JSON_CONTENT_TYPE};
use crate::php;
use crate::request::{self, Params};
use crate::rest;
use crate::state::{App, Issued, RequestRecord};

/// Routes of the token endpoint, with and without the trailing slash.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/oauth/token/", get(token).post(token))
        .route("/oauth/token", get(token).post(token))
}

/// A successful exchange, fields in the order the docs show them.
#[derive(Serialize)]
struct Grant<'a> {
    access_token: &'a str,
    expires: i64,
    expires_in: i64,
    scope: String,
    domain: &'a str,
    server_endpoint: String,
    status: &'static str,
    client_endpoint: String,
    member_id: &'a str,
    user_id: i64,
    refresh_token: &'a str,
}

fn invalid_request() -> RestError {
    RestError::bad_request(
        "invalid_request",
        "The request is missing a required parameter or has an unsupported grant_type",
    )
}

fn invalid_client() -> RestError {
    RestError::unauthorized("invalid_client", "Invalid client credentials")
}

fn invalid_grant() -> RestError {
    RestError::bad_request("invalid_grant", "Invalid refresh token")
}

/// Path and method name of token requests in the request log.
const LOG_METHOD: &str = "oauth/token";

async fn token(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let at = app.lock().clock.now();
    let params = request::parse_params(&method, uri.query(), &headers, &body);
    let answer = answer(&app, &method, uri.path(), &params, received, at);
    if let Some(line) = &answer.log_line {
        eprintln!("{line}");
    }
    let mut response = (answer.status, answer.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// What the token endpoint answers, as [`answer`] decided and recorded it.
pub struct TokenAnswer {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body: the grant, or `{error, error_description}`.
    pub body: Vec<u8>,
    /// The tokens issued, or the error code.
    pub outcome: Result<Issued, String>,
    /// The stderr line for the request, when `config.log` asks for one.
    pub log_line: Option<String>,
}

/// One request at the token endpoint, synchronous: [`exchange`], then the
/// request log entry (grant type and outcome, never a parameter value).
/// `received` is the real time the request arrived (for its duration) and
/// `at` the portal time.
pub fn answer(
    app: &App,
    method: &Method,
    path: &str,
    params: &Params,
    received: Instant,
    at: f64,
) -> TokenAnswer {
    let (status, body, outcome, user_id) = match exchange(app, params) {
        Ok((body, user_id, issued)) => (StatusCode::OK, body, Ok(issued), Some(user_id)),
        Err(err) => (err.status, err.body(), Err(err.code), None),
    };
    let client = !php::is_empty(params.get("client_id"));
    let record = RequestRecord {
        id: 0,
        at: iso8601_millis(at),
        http_method: method.to_string(),
        path: path.to_owned(),
        method: LOG_METHOD.to_owned(),
        param_names: params.keys().cloned().collect(),
        status: status.as_u16(),
        error: outcome.as_ref().err().cloned(),
        auth: if client { "client" } else { "none" },
        user_id,
        fault: None,
        duration_ms: received.elapsed().as_secs_f64() * 1000.0,
        grant_type: Some(php::to_string(params.get("grant_type")).unwrap_or_default()),
    };
    let log_line = app.config.log.then(|| rest::log_line(&record));
    app.lock().ledger.log(record);
    TokenAnswer {
        status,
        body,
        outcome,
        log_line,
    }
}

/// Checks the grant, the client and the refresh token, in that order, and
/// counts the outcome. On success: the answer, the tokens' user and the
/// tokens.
fn exchange(app: &App, params: &Params) -> Result<(Vec<u8>, i64, Issued), RestError> {
    let text = |name: &str| php::to_string(params.get(name)).unwrap_or_default();
    let mut store = app.lock();
    let outcome = (|| {
        if text("grant_type") != "refresh_token" || text("refresh_token").is_empty() {
            return Err(invalid_request());
        }
        if text("client_id") != app.secrets.client_id
            || text("client_secret") != app.secrets.client_secret
        {
            return Err(invalid_client());
        }
        let now = store.clock.now();
        let presented = text("refresh_token");
        let old = store
            .credentials
            .refresh_tokens
            .iter_mut()
            .find(|t| t.value == presented && !t.used && t.expires_at > now)
            .ok_or_else(invalid_grant)?;
        old.used = true;
        let (user_id, scope) = (old.user_id, old.scope.clone());
        let settings = store.settings;
        let access_token = random_credential(24);
        let refresh_token = random_credential(24);
        let expires = now + settings.token_ttl_seconds;
        let credentials = &mut store.credentials;
        credentials.add_token(access_token.clone(), user_id, scope.clone(), expires);
        credentials.add_refresh_token(
            refresh_token.clone(),
            user_id,
            scope.clone(),
            now + settings.refresh_ttl_seconds,
        );
        let domain = app
            .base_url
            .split_once("://")
            .map_or(app.base_url.as_str(), |(_, host)| host);
        let grant = Grant {
            access_token: &access_token,
            expires: expires.floor() as i64,
            expires_in: settings.token_ttl_seconds.round() as i64,
            scope: scope.join(","),
            domain,
            server_endpoint: format!("{}/rest/", app.base_url),
            status: "L",
            client_endpoint: format!("{}/rest/", app.base_url),
            member_id: &app.secrets.member_id,
            user_id,
            refresh_token: &refresh_token,
        };
        let body = serde_json::to_vec(&grant).map_err(|_| RestError::internal())?;
        let issued = Issued {
            access_token,
            refresh_token,
            ttl: settings.token_ttl_seconds,
            expires,
        };
        Ok((body, user_id, issued))
    })();
    match outcome {
        Ok(_) => store.ledger.counters.refreshes += 1,
        Err(_) => store.ledger.counters.refresh_errors += 1,
    }
    outcome
}
