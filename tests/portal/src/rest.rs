//! The `/rest/…` endpoint: URL → fault → method lookup → credentials →
//! handler → envelope, with every request recorded in the ledger.
//!
//! Order of checks follows SRV-RESTSERVER: the request-rate limit (an
//! infrastructure check in front of everything), transport, then method
//! existence (`ERROR_METHOD_NOT_FOUND` before any credential check), then
//! credentials and scope, then the operating-time limit, then the method's
//! own validation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::auth;
use crate::batch;
use crate::envelope::{
    iso8601_millis, success_body, RestError, TimeInfo, Timing, JSON_CONTENT_TYPE,
};
use crate::faults::{self, FaultHit, FaultKind, FaultRecord};
use crate::list::Start;
use crate::methods::{self, MethodSpec, Output};
use crate::request::{self, Params, Presented, RestTarget, Transport};
use crate::server::ConnectionControl;
use crate::state::{App, RequestRecord, Store};

/// What the portal decided to answer, before faults that mangle delivery.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    error: Option<String>,
    user_id: Option<i64>,
}

impl Reply {
    fn error(err: RestError) -> Self {
        Self {
            status: err.status,
            content_type: JSON_CONTENT_TYPE,
            body: err.body(),
            error: Some(err.code),
            user_id: None,
        }
    }

    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        response
    }
}

/// Handles every request outside `/_portal/`; anything not under `/rest`
/// is a plain 404.
///
/// The work runs in its own task, so that a request whose client went away
/// (a timeout, an abort) still executes to the end, as on a PHP server: the
/// ledger then shows what a client that gave up may have caused.
pub async fn handle(
    State(app): State<Arc<App>>,
    control: Option<Extension<ConnectionControl>>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let task = tokio::spawn(process(app, control, http_method, uri, headers, body));
    match task.await {
        Ok(Some(response)) => response,
        // The connection is being dropped: never answer.
        Ok(None) => std::future::pending().await,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The request's work; `None` when the connection is to be dropped unanswered.
async fn process(
    app: Arc<App>,
    control: Option<Extension<ConnectionControl>>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Option<Response> {
    let clock = Instant::now();
    let Some(request::RestRequest {
        target,
        mut params,
        presented,
    }) = request::read(&http_method, &uri, &headers, &body)
    else {
        return Some((StatusCode::NOT_FOUND, "Not found\n").into_response());
    };
    let method = target
        .as_ref()
        .map(|t| t.method.to_lowercase())
        .unwrap_or_default();
    let list_start = request::strip_reserved(&mut params);

    let (start, admitted, fault) = {
        let mut store = app.lock();
        let start = store.clock.now();
        let limit = store.settings.rate_limit;
        let admitted = store.bucket.admit(&limit, start);
        let fault = if admitted {
            store.faults.take(&method)
        } else {
            store.ledger.counters.query_limit_exceeded.add(&method);
            None
        };
        (start, admitted, fault)
    };
    if let Some(FaultHit { delay_ms, .. }) = fault.filter(|f| f.delay_ms > 0) {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let kind = fault.map(|f| f.kind);
    let mut reply = match kind {
        _ if !admitted => Reply::error(RestError::query_limit_exceeded()),
        Some(FaultKind::Html) => Reply {
            status: StatusCode::BAD_GATEWAY,
            content_type: "text/html; charset=utf-8",
            body: faults::BAD_GATEWAY_PAGE.as_bytes().to_vec(),
            error: None,
            user_id: None,
        },
        Some(FaultKind::Status500Before) => Reply::error(RestError::internal()),
        Some(FaultKind::ExpiredToken) => Reply::error(RestError::expired_token()),
        Some(FaultKind::MessageAddError) => Reply::error(RestError::message_add_error()),
        Some(FaultKind::QueryLimitExceeded) => Reply::error(RestError::query_limit_exceeded()),
        Some(FaultKind::OperationTimeLimit) => Reply::error(RestError::operation_time_limit()),
        _ => {
            let cmd_order = if method == methods::BATCH {
                request::batch_order(&http_method, uri.query(), &headers, &body)
            } else {
                Vec::new()
            };
            let call = Incoming {
                params: &params,
                list_start,
                presented: &presented,
                start,
                cmd_order: &cmd_order,
            };
            execute(&app, target.as_ref(), &call)
        }
    };

    let record = RequestRecord {
        id: 0,
        at: iso8601_millis(start),
        http_method: http_method.to_string(),
        path: request::redacted_path(uri.path()),
        method: method.clone(),
        param_names: params.keys().cloned().collect(),
        status: reply.status.as_u16(),
        error: reply.error.clone(),
        auth: presented.kind(),
        user_id: reply.user_id,
        fault: kind,
        duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
        grant_type: None,
    };
    if app.config.log {
        eprintln!("{}", log_line(&record));
    }
    {
        let mut store = app.lock();
        let request_id = store.ledger.record(record);
        if let Some(kind) = kind {
            let at = iso8601_millis(store.clock.now());
            store.faults.log.push(FaultRecord {
                request: request_id,
                method,
                kind,
                executed: kind.executes(),
                status: reply.status.as_u16(),
                at,
            });
        }
    }

    match kind {
        Some(FaultKind::Truncated) => reply.body = faults::truncate(reply.body),
        Some(FaultKind::Status500After) => {
            let error = RestError::internal();
            reply.status = error.status;
            reply.body = error.body();
        }
        Some(FaultKind::DropAfterStore) => {
            if let Some(Extension(control)) = control {
                control.drop_connection();
                return None;
            }
            reply.body.clear();
            reply.status = StatusCode::OK;
        }
        _ => {}
    }
    Some(reply.into_response())
}

/// What a call brings besides its method: parameters, credentials, when it
/// started and, for `batch`, the order of its commands.
pub struct Incoming<'a> {
    /// Parameters, reserved names removed.
    pub params: &'a Params,
    /// Where a list method starts, from the reserved `start` parameter.
    pub list_start: Start,
    /// Credentials presented.
    pub presented: &'a Presented,
    /// Portal time the request (or batch command) started.
    pub start: f64,
    /// `batch` command names in the order sent (empty for other methods).
    pub cmd_order: &'a [String],
}

/// Runs the request: method lookup, then [`call`], then the envelope.
fn execute(app: &App, target: Option<&RestTarget>, incoming: &Incoming<'_>) -> Reply {
    let Some(target) = target else {
        return Reply::error(RestError::method_not_found());
    };
    if target.transport == Transport::Xml {
        return Reply::error(RestError::bad_request(
            "ERROR_UNSUPPORTED_TRANSPORT",
            "This portal answers in JSON only",
        ));
    }
    let Some(spec) = methods::lookup(&target.method) else {
        return Reply::error(RestError::method_not_found());
    };
    let outcome = call(app, &mut app.lock(), spec, incoming);
    let mut reply = match outcome.result {
        Ok((output, time)) => Reply {
            status: StatusCode::OK,
            content_type: JSON_CONTENT_TYPE,
            body: success_body(&output.result, output.page.as_ref(), &time),
            error: None,
            user_id: None,
        },
        Err(err) => Reply::error(err),
    };
    reply.user_id = outcome.user_id;
    reply
}

/// The outcome of one call: the result with its `time`, or the error; and
/// the authenticated user, if credentials were accepted.
pub struct Outcome {
    /// Authenticated user.
    pub user_id: Option<i64>,
    /// Result and `time`, or the error.
    pub result: Result<(Output, TimeInfo), RestError>,
}

/// One server call, standalone or inside `batch`: credentials and scope,
/// the operating-time limit, the handler, and the operating-time record
/// that feeds `time`. The outer `batch` call is not counted against the
/// operating limit; its commands are, each against its own method.
pub fn call(app: &App, store: &mut Store, spec: &MethodSpec, incoming: &Incoming<'_>) -> Outcome {
    let now = store.clock.now();
    let caller = match auth::authenticate(store, incoming.presented, spec.scope, now) {
        Ok(caller) => caller,
        Err(err) => {
            return Outcome {
                user_id: None,
                result: Err(err),
            }
        }
    };
    let is_batch = spec.name == methods::BATCH;
    let limit = store.settings.operating_limit;
    if !is_batch
        && store
            .operating
            .blocked(&limit, &caller.budget, spec.name, now)
    {
        store.ledger.counters.operation_time_limit.add(spec.name);
        return Outcome {
            user_id: Some(caller.user_id),
            result: Err(RestError::operation_time_limit()),
        };
    }
    let handler_start = store.clock.now();
    let result = if is_batch {
        batch::run(app, store, incoming)
    } else {
        methods::run(
            spec,
            store,
            &caller,
            incoming.params,
            incoming.list_start,
            &app.config,
            handler_start,
        )
    };
    let handler_end = store.clock.now();
    let spent = match (is_batch, limit.cost_seconds) {
        (true, _) => 0.0,
        (false, Some(cost)) => cost,
        (false, None) => handler_end - handler_start,
    };
    let usage = store
        .operating
        .record(&caller.budget, spec.name, handler_start, spent);
    let result = result.map(|output| {
        let timing = Timing {
            start: incoming.start,
            handler_start,
            handler_end,
            finish: store.clock.now(),
        };
        let time = TimeInfo::new(
            &timing,
            usage.operating,
            usage.reset_at,
            app.config.float_time,
        );
        (output, time)
    });
    Outcome {
        user_id: Some(caller.user_id),
        result,
    }
}

/// One stderr line per request; built only from the redacted record.
pub fn log_line(r: &RequestRecord) -> String {
    let method = if r.method.is_empty() { "-" } else { &r.method };
    let fault = r
        .fault
        .and_then(|f| serde_json::to_value(f).ok())
        .and_then(|v| v.as_str().map(|s| format!(" fault={s}")))
        .unwrap_or_default();
    format!(
        "b24-portal: {} {} {} {} {:.1}ms auth={}{}",
        r.http_method,
        method,
        r.status,
        r.error.as_deref().unwrap_or("-"),
        r.duration_ms,
        r.auth,
        fault
    )
}
