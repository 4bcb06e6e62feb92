//! The `/rest/…` endpoint: URL → fault → method lookup → credentials →
//! handler → envelope, with every request recorded in the ledger.
//!
//! Order of checks follows SRV-RESTSERVER: the request-rate limit (an
//! infrastructure check in front of everything), transport, then method
//! existence (`ERROR_METHOD_NOT_FOUND` before any credential check), then
//! credentials and scope, then the operating-time limit, then the method's
//! own validation.
//!
//! The work is synchronous and in two halves, [`admit`] (read the request,
//! the rate limit, take a scripted fault) and [`answer`] (execute, envelope,
//! ledger), so that the HTTP handler can sleep for a fault's delay between
//! them and in-process callers ([`respond`], used by [`crate::sim`]) run
//! the same code without any I/O.

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
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Error code, for the request log.
    pub error: Option<String>,
    /// Authenticated user, for the request log.
    pub user_id: Option<i64>,
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

    /// The plain `404` for a path outside `/rest` (not in the request log).
    fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            content_type: "text/plain; charset=utf-8",
            body: b"Not found\n".to_vec(),
            error: None,
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

/// The request's work over HTTP: [`admit`] (taking a scripted fault), the
/// fault's delay, [`answer`], then what the fault does to the delivery.
/// `None` when the connection is to be dropped unanswered.
async fn process(
    app: Arc<App>,
    control: Option<Extension<ConnectionControl>>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Option<Response> {
    let arrival = Arrival {
        http_method: &http_method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    let admitted = match admit(&app, &arrival, Faults::Scripted) {
        Ok(admitted) => admitted,
        Err(reply) => return Some(reply.into_response()),
    };
    if let Some(delay) = admitted.fault_delay() {
        tokio::time::sleep(delay).await;
    }
    let Answered {
        mut reply,
        fault,
        log_line,
    } = answer(&app, &arrival, admitted);
    if let Some(line) = log_line {
        eprintln!("{line}");
    }
    match fault {
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

/// A REST request as it arrived: verb, URL, headers and raw body.
#[derive(Clone, Copy)]
pub struct Arrival<'a> {
    /// HTTP verb.
    pub http_method: &'a Method,
    /// The URL (only its path and query string are read).
    pub uri: &'a Uri,
    /// Request headers (`Content-Type`, `Authorization`).
    pub headers: &'a HeaderMap,
    /// Raw body.
    pub body: &'a [u8],
}

/// Whether a request may consume a scripted fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Faults {
    /// Take the first matching fault from the queue (the HTTP path).
    Scripted,
    /// Leave the queue alone (in-process callers inject their own).
    Ignored,
}

/// A request read and checked against the request-rate limit, waiting for
/// [`answer`].
pub struct Admitted {
    /// Real time it arrived, for the request log's duration.
    received: Instant,
    target: Option<RestTarget>,
    /// Parameters, reserved names removed.
    params: Params,
    list_start: Start,
    presented: Presented,
    /// Lower-cased method name (empty when the URL names none).
    method: String,
    /// Portal time it arrived.
    start: f64,
    /// Whether the leaky bucket let it through.
    admitted: bool,
    fault: Option<FaultHit>,
}

impl Admitted {
    /// How long the consumed fault wants the answer held back, if at all.
    pub fn fault_delay(&self) -> Option<Duration> {
        self.fault
            .as_ref()
            .filter(|f| f.delay_ms > 0)
            .map(|f| Duration::from_millis(f.delay_ms))
    }
}

/// What [`answer`] decided and recorded.
pub struct Answered {
    /// The answer, before a fault mangles its delivery.
    pub reply: Reply,
    /// The fault the request consumed, if any.
    pub fault: Option<FaultKind>,
    /// The stderr line for the request, when `config.log` asks for one.
    pub log_line: Option<String>,
}

/// First half of a REST request, synchronous: reads the URL, parameters and
/// credentials, then, under one lock, checks the request-rate limit and
/// (with [`Faults::Scripted`]) takes a scripted fault. `Err` is the final
/// answer for a path outside `/rest` (a `404`, not recorded).
pub fn admit(app: &App, arrival: &Arrival<'_>, faults: Faults) -> Result<Admitted, Reply> {
    let received = Instant::now();
    let Some(request::RestRequest {
        target,
        mut params,
        presented,
    }) = request::read(
        arrival.http_method,
        arrival.uri,
        arrival.headers,
        arrival.body,
    )
    else {
        return Err(Reply::not_found());
    };
    let method = target
        .as_ref()
        .map(|t| t.method.to_lowercase())
        .unwrap_or_default();
    let list_start = request::strip_reserved(&mut params);

    let mut store = app.lock();
    let start = store.clock.now();
    let limit = store.settings.rate_limit;
    let admitted = store.bucket.admit(&limit, start);
    let fault = if !admitted {
        store.ledger.counters.query_limit_exceeded.add(&method);
        None
    } else if faults == Faults::Scripted {
        let carried = if method == crate::methods::BATCH {
            crate::batch::command_methods(&params)
        } else {
            Vec::new()
        };
        store.faults.take(&method, &carried)
    } else {
        None
    };
    Ok(Admitted {
        received,
        target,
        params,
        list_start,
        presented,
        method,
        start,
        admitted,
        fault,
    })
}

/// Second half of a REST request, synchronous: the fault's answer or the
/// method's (lookup, credentials, limits, handler, envelope), then the
/// request log entry and the fault log entry.
pub fn answer(app: &App, arrival: &Arrival<'_>, admitted: Admitted) -> Answered {
    let Admitted {
        received,
        target,
        params,
        list_start,
        presented,
        method,
        start,
        admitted,
        fault,
    } = admitted;
    let kind = fault.map(|f| f.kind);
    let reply = match kind {
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
                request::batch_order(
                    arrival.http_method,
                    arrival.uri.query(),
                    arrival.headers,
                    arrival.body,
                )
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
            execute(app, target.as_ref(), &call)
        }
    };

    let record = RequestRecord {
        id: 0,
        at: iso8601_millis(start),
        http_method: arrival.http_method.to_string(),
        path: request::redacted_path(arrival.uri.path()),
        method: method.clone(),
        param_names: params.keys().cloned().collect(),
        status: reply.status.as_u16(),
        error: reply.error.clone(),
        auth: presented.kind(),
        user_id: reply.user_id,
        fault: kind,
        duration_ms: received.elapsed().as_secs_f64() * 1000.0,
        grant_type: None,
    };
    let log_line = app.config.log.then(|| log_line(&record));
    let mut store = app.lock();
    if let Some(change) = fault.and_then(|f| f.session) {
        // `session_after`: the request ran; now the dialogue's session
        // changes, before the answer leaves. A chat that is gone since the
        // fault was queued (a fixture replaced it) is left alone.
        let _ = store
            .directory
            .set_session(change.chat_id, Some(change.status), None);
    }
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
    Answered {
        reply,
        fault: kind,
        log_line,
    }
}

/// A whole REST request, synchronous, without scripted faults: what the
/// HTTP path answers for it, recorded the same way. For in-process callers
/// (see [`crate::sim`]); it never logs, sleeps or spawns.
pub fn respond(app: &App, arrival: &Arrival<'_>) -> Reply {
    match admit(app, arrival, Faults::Ignored) {
        Ok(admitted) => answer(app, arrival, admitted).reply,
        Err(reply) => reply,
    }
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
