//! What came back: the Bitrix24 envelope, read whatever the HTTP status.
//!
//! Success is `{"result": ..., "time": {...}}` (plus `total`/`next` on lists); failure
//! is `{"error": CODE, "error_description": TEXT[, "argument": NAME]}` with no `time`.
//! The code is authoritative, the status a hint. A body that is not JSON or not an
//! envelope is `BAD_RESPONSE`, never a crash.

use crate::error::Error;
use crate::json::{JsonView, Shape};
use crate::text;

/// A response body as the transport read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<J> {
    /// The body parsed as JSON.
    Json(J),
    /// The body was not JSON (an HTML error page, a truncated body, nothing).
    NotJson {
        /// The `Content-Type` header, or empty.
        content_type: String,
        /// The body length in bytes.
        len: usize,
    },
}

impl Body<crate::json::Json> {
    /// A body's text as JSON, or what it was when it is not JSON (`content_type` is
    /// asked only then).
    pub fn read(text: String, content_type: impl FnOnce() -> Option<String>) -> Self {
        let len = text.len();
        match crate::json::Json::parse(text) {
            Ok(json) => Body::Json(json),
            Err(_) => Body::NotJson {
                content_type: content_type().unwrap_or_default(),
                len,
            },
        }
    }
}

/// An HTTP answer as the transport read it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse<J> {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Body<J>,
}

/// Timing the portal reports with every success (`time`); every field may be an int
/// or a float (newer servers send integer `start` and `processing`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Time {
    /// Unix time the request started.
    pub start: Option<f64>,
    /// Unix time it finished.
    pub finish: Option<f64>,
    /// Seconds the request took.
    pub duration: Option<f64>,
    /// Seconds inside the method handler.
    pub processing: Option<f64>,
    /// Seconds of this method's operating budget used in the 10-minute window.
    pub operating: Option<f64>,
    /// Unix time the oldest minute of that budget expires.
    pub operating_reset_at: Option<f64>,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Success<J> {
    /// The HTTP status (200 in practice).
    pub status: u16,
    /// The method's result.
    pub result: J,
    /// The whole envelope, for what is read only when needed ([`Success::time`]).
    pub envelope: J,
    /// `total` on list methods.
    pub total: Option<u64>,
    /// `next` on list methods with more pages.
    pub next: Option<u64>,
}

impl<J: JsonView> Success<J> {
    /// The portal's timing, when sent (read on demand: most calls never need it).
    pub fn time(&self) -> Option<Time> {
        self.envelope.get("time").and_then(|t| Time::read(&t))
    }
}

/// A number sent as a number, or as a string of digits (PHP often sends strings).
fn number<J: JsonView>(v: Option<J>) -> Option<f64> {
    match v?.shape() {
        Shape::Number(n) => Some(n),
        Shape::String(s) => text::parse_u64(text::trim(&s)).map(|n| n as f64),
        _ => None,
    }
}

fn count<J: JsonView>(v: Option<J>) -> Option<u64> {
    number(v)
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
        .map(|n| n as u64)
}

impl Time {
    fn read<J: JsonView>(o: &J) -> Option<Time> {
        if o.shape() != Shape::Object {
            return None;
        }
        Some(Time {
            start: number(o.get("start")),
            finish: number(o.get("finish")),
            duration: number(o.get("duration")),
            processing: number(o.get("processing")),
            operating: number(o.get("operating")),
            operating_reset_at: number(o.get("operating_reset_at")),
        })
    }
}

/// Reads an answer to `method`. `write` says whether the call changes state, which
/// decides the wording and retryability of a `BAD_RESPONSE`.
pub fn read<J: JsonView>(
    method: &str,
    write: bool,
    response: HttpResponse<J>,
) -> Result<Success<J>, Error> {
    let HttpResponse { status, body } = response;
    let not_envelope = || {
        Error::bad_response(
            method,
            status,
            "JSON that is not a Bitrix24 envelope",
            write,
        )
    };
    let value = match body {
        Body::Json(v) => v,
        Body::NotJson { content_type, len } => {
            let what = if len == 0 {
                "an empty body".to_owned()
            } else {
                let mut what = String::from("a body that is not JSON (");
                if !content_type.is_empty() {
                    let ct = text::trim(text::before_byte(&content_type, b';'));
                    what.push_str(ct);
                    what.push_str(", ");
                }
                text::push_decimal(&mut what, len as u64);
                what.push_str(" bytes)");
                what
            };
            return Err(Error::bad_response(method, status, &what, write));
        }
    };
    if value.shape() != Shape::Object {
        return Err(not_envelope());
    }
    if let Some(code) = value.get("error") {
        let code = match code.shape() {
            Shape::String(s) if !s.is_empty() => s,
            Shape::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                text::signed_decimal(n as i64)
            }
            _ => {
                return Err(Error::bad_response(
                    method,
                    status,
                    "an error envelope without a code",
                    write,
                ))
            }
        };
        let text = |k: &str| match value.get(k).map(|v| v.shape()) {
            Some(Shape::String(s)) => Some(s),
            _ => None,
        };
        let description = text("error_description").unwrap_or_default();
        let argument = text("argument");
        return Err(Error::from_portal(
            method,
            status,
            code,
            description,
            argument,
            write,
        ));
    }
    let Some(result) = value.get("result") else {
        return Err(not_envelope());
    };
    Ok(Success {
        status,
        result,
        total: count(value.get("total")),
        next: count(value.get("next")),
        envelope: value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const M: &str = "imopenlines.crm.message.add";

    fn json(status: u16, v: Value) -> HttpResponse<Value> {
        HttpResponse {
            status,
            body: Body::Json(v),
        }
    }

    #[test]
    fn success_with_integer_or_float_time() {
        for time in [
            json!({"start": 1773758908, "finish": 1773758908.1234, "duration": 0.12, "processing": 0, "date_start": "2026-03-17T10:00:00+03:00", "date_finish": "2026-03-17T10:00:00+03:00", "operating_reset_at": 1773759508, "operating": 0}),
            json!({"start": 1773758908.5, "finish": 1773758908.75, "duration": 0.25, "processing": 0.01, "date_start": "x", "date_finish": "y"}),
        ] {
            let s = read(
                M,
                true,
                json(200, json!({"result": 19880117, "time": time})),
            )
            .expect("ok");
            assert_eq!(s.result, json!(19880117));
            let t = s.time().expect("time");
            assert!(t.start.expect("start") > 1.7e9);
            assert!(t.duration.is_some());
        }
    }

    #[test]
    fn list_fields_are_read() {
        let s = read(
            M,
            false,
            json(200, json!({"result": [], "total": "120", "next": 50})),
        )
        .expect("ok");
        assert_eq!((s.total, s.next), (Some(120), Some(50)));
        assert_eq!(s.time(), None);
    }

    #[test]
    fn error_envelopes_keep_code_text_argument_and_status() {
        let e = read(
            M,
            true,
            json(400, json!({"error": "ERROR_ARGUMENT", "error_description": "Argument 'CRM_ENTITY' is null or empty", "argument": "CRM_ENTITY"})),
        )
        .expect_err("error");
        let d = e.details();
        assert_eq!(d.code, "ERROR_ARGUMENT");
        assert_eq!(d.status, 400);
        assert_eq!(d.argument.as_deref(), Some("CRM_ENTITY"));
        assert_eq!(d.method, M);
        assert_eq!(d.description, "Argument 'CRM_ENTITY' is null or empty");
    }

    #[test]
    fn the_envelope_wins_over_the_status() {
        // An error body with status 200 (WRONG_ENCODING) is still an error...
        let e = read(
            M,
            true,
            json(
                200,
                json!({"error": "WRONG_ENCODING", "error_description": "Wrong request encoding"}),
            ),
        )
        .expect_err("error");
        assert_eq!(e.code(), "WRONG_ENCODING");
        // ...and a 401 expired token is an auth error.
        let e = read(M, true, json(401, json!({"error": "expired_token", "error_description": "The access token provided has expired"})))
            .expect_err("error");
        assert_eq!(
            (e.code(), e.details().status, e.kind()),
            ("expired_token", 401, "auth")
        );
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_bad_responses() {
        let cases = [
            HttpResponse {
                status: 502,
                body: Body::NotJson {
                    content_type: "text/html; charset=utf-8".into(),
                    len: 1234,
                },
            },
            HttpResponse {
                status: 200,
                body: Body::NotJson {
                    content_type: "application/json".into(),
                    len: 20,
                },
            },
            HttpResponse {
                status: 200,
                body: Body::NotJson {
                    content_type: String::new(),
                    len: 0,
                },
            },
            json(200, json!([1, 2])),
            json(200, json!({"foo": 1})),
            json(500, json!({"error": null})),
            json(200, json!("19880117")),
        ];
        for c in cases {
            let status = c.status;
            let e = read(M, true, c).expect_err("bad");
            assert_eq!(e.code(), "BAD_RESPONSE");
            assert_eq!(e.details().status, status);
            assert!(!e.details().retryable);
            assert!(e.to_string().contains("may have been delivered"), "{e}");
        }
        let e = read(
            M,
            true,
            HttpResponse::<Value> {
                status: 502,
                body: Body::NotJson {
                    content_type: "text/html".into(),
                    len: 9,
                },
            },
        )
        .expect_err("bad");
        assert!(
            e.to_string()
                .contains("HTTP 502 with a body that is not JSON (text/html, 9 bytes)"),
            "{e}"
        );
    }
}
