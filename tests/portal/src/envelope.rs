//! What goes back over the wire: the `{result, time}` success envelope, the
//! `{error, error_description[, argument]}` error body, and the clock helpers
//! the `time` object needs.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Number;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::list::Page;

/// `Content-Type` of every JSON answer, success or error.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A REST error as the server reports it: HTTP status, code, description and,
/// for `ERROR_ARGUMENT`, the offending argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// The `error` field.
    pub code: String,
    /// The `error_description` field.
    pub description: String,
    /// The `argument` field (REST argument exceptions only).
    pub argument: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    argument: Option<&'a str>,
}

impl RestError {
    /// An error with any status, code and description.
    pub fn new(status: StatusCode, code: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            description: description.into(),
            argument: None,
        }
    }

    /// A `400` error (the server's `STATUS_WRONG_REQUEST`).
    pub fn bad_request(code: &str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// A `401` error, as raised by the OAuth and webhook token checks.
    pub fn unauthorized(code: &str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, description)
    }

    /// `ArgumentNullException`: `Argument 'NAME' is null or empty`.
    pub fn argument_null(name: &str) -> Self {
        Self {
            argument: Some(name.to_owned()),
            ..Self::bad_request(
                "ERROR_ARGUMENT",
                format!("Argument '{name}' is null or empty"),
            )
        }
    }

    /// `ArgumentTypeException`: `The value of an argument 'NAME' has an invalid type`.
    pub fn argument_type(name: &str) -> Self {
        Self {
            argument: Some(name.to_owned()),
            ..Self::bad_request(
                "ERROR_ARGUMENT",
                format!("The value of an argument '{name}' has an invalid type"),
            )
        }
    }

    /// `AccessException`: `403 ACCESS_DENIED`, `Access denied! DETAIL`.
    pub fn access_denied(detail: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            format!("Access denied! {detail}"),
        )
    }

    /// `404 ERROR_METHOD_NOT_FOUND`, checked before authorization.
    pub fn method_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ERROR_METHOD_NOT_FOUND",
            "Method not found!",
        )
    }

    /// `401 expired_token`.
    pub fn expired_token() -> Self {
        Self::unauthorized("expired_token", "The access token provided has expired")
    }

    /// `400 MESSAGE_ADD_ERROR`.
    pub fn message_add_error() -> Self {
        Self::bad_request("MESSAGE_ADD_ERROR", "Message isn't added")
    }

    /// `503 QUERY_LIMIT_EXCEEDED`: the leaky bucket is full (§5.1).
    pub fn query_limit_exceeded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "QUERY_LIMIT_EXCEEDED",
            "Too many requests",
        )
    }

    /// `429 OPERATION_TIME_LIMIT`: the method's operating budget is spent (§5.2).
    pub fn operation_time_limit() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "OPERATION_TIME_LIMIT",
            "Method is blocked due to operation time limit.",
        )
    }

    /// `500 INTERNAL_SERVER_ERROR`.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "Internal server error",
        )
    }

    /// The JSON error body (no `time` key).
    pub fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            error: &self.code,
            error_description: &self.description,
            argument: self.argument.as_deref(),
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| WRONG_ENCODING.to_vec())
    }
}

/// What the server sends when the answer cannot be JSON-encoded.
const WRONG_ENCODING: &[u8] =
    br#"{"error":"WRONG_ENCODING","error_description":"Wrong request encoding"}"#;

/// Unix timestamps (seconds, fractional) taken while serving one call.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// When the request arrived.
    pub start: f64,
    /// When the method handler started.
    pub handler_start: f64,
    /// When the method handler returned.
    pub handler_end: f64,
    /// When the answer was assembled.
    pub finish: f64,
}

/// The `time` object of a success envelope, fields in server order.
#[derive(Serialize, Debug)]
pub struct TimeInfo {
    start: Number,
    finish: f64,
    duration: f64,
    processing: Number,
    date_start: String,
    date_finish: String,
    operating_reset_at: i64,
    operating: f64,
}

impl TimeInfo {
    /// Builds the `time` object. With `float_time` false, `start` and
    /// `processing` are integers and `duration` is measured from the integer
    /// start, as the newest server code does.
    pub fn new(timing: &Timing, operating: f64, operating_reset_at: i64, float_time: bool) -> Self {
        let finish = round_micros(timing.finish);
        let (start, duration, processing) = if float_time {
            (
                float_number(round_micros(timing.start)),
                timing.finish - timing.start,
                float_number(timing.handler_end - timing.handler_start),
            )
        } else {
            let start = timing.start.floor();
            (
                Number::from(start as i64),
                timing.finish - start,
                Number::from(
                    timing.handler_end.floor() as i64 - timing.handler_start.floor() as i64,
                ),
            )
        };
        Self {
            start,
            finish,
            duration,
            processing,
            date_start: iso8601(timing.start),
            date_finish: iso8601(timing.finish),
            operating_reset_at,
            operating,
        }
    }
}

#[derive(Serialize)]
struct SuccessBody<'a> {
    result: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    time: &'a TimeInfo,
}

/// The JSON success body `{"result": …, "time": {…}}`; a list method's page
/// adds `"next"` (when more pages exist) and `"total"` after `result`.
pub fn success_body(result: &RawValue, page: Option<&Page>, time: &TimeInfo) -> Vec<u8> {
    let body = SuccessBody {
        result,
        next: page.and_then(|p| p.next),
        total: page.map(|p| p.total),
        time,
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| WRONG_ENCODING.to_vec())
}

/// Seconds since the Unix epoch, with microseconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// PHP `date('c')` in UTC: `2024-10-11T10:00:00+00:00`.
pub fn iso8601(unix: f64) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    datetime(unix)
        .format(format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00+00:00".to_owned())
}

/// Like [`iso8601`] with milliseconds, for ledger entries.
pub fn iso8601_millis(unix: f64) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
    );
    datetime(unix)
        .format(format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000+00:00".to_owned())
}

fn datetime(unix: f64) -> OffsetDateTime {
    let nanos = (unix * 1e9) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn round_micros(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn float_number(x: f64) -> Number {
    Number::from_f64(x).unwrap_or_else(|| Number::from(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_errors_carry_the_argument() {
        let body: serde_json::Value =
            serde_json::from_slice(&RestError::argument_null("CRM_ENTITY").body())
                .unwrap_or_default();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "ERROR_ARGUMENT",
                "error_description": "Argument 'CRM_ENTITY' is null or empty",
                "argument": "CRM_ENTITY"
            })
        );
    }

    #[test]
    fn dates_have_an_explicit_offset() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(1_728_640_800.5), "2024-10-11T10:00:00+00:00");
        assert_eq!(iso8601_millis(1.25), "1970-01-01T00:00:01.250+00:00");
    }

    #[test]
    fn integer_time_measures_duration_from_the_integer_start() {
        let timing = Timing {
            start: 100.7,
            handler_start: 100.8,
            handler_end: 101.1,
            finish: 101.2,
        };
        let t = serde_json::to_value(TimeInfo::new(&timing, 0.3, 700, false)).unwrap_or_default();
        assert_eq!(t["start"], serde_json::json!(100));
        assert_eq!(t["processing"], serde_json::json!(1));
        assert!((t["duration"].as_f64().unwrap_or_default() - 1.2).abs() < 1e-9);
        let t = serde_json::to_value(TimeInfo::new(&timing, 0.3, 700, true)).unwrap_or_default();
        assert!(t["start"].is_f64());
        assert!(t["processing"].is_f64());
    }
}
