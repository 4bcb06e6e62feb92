//! The exports for many calls at once: `batch` and `crmMessageAddMany`, and a
//! client's pacing options (`limits`, `retry`, `onRequest`). Like the rest of
//! [`super`], they convert and delegate: batching, pacing and retries are in the core.

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{
    bounds, call_limits, invalid_option, json_to_js, option, promise, start, to_js, typed,
    verification, Client, Core, JsSteps,
};
use crate::batch::{self, Item, Progress};
use crate::client::RequestEvent;
use crate::error::{codes, Error, Outcome};
use crate::interop::{self, set, JsJson};
use crate::json::Json;
use crate::json::{JsonView, Shape};
use crate::limiter::Limits;
use crate::params::MESSAGE_ADD;
use crate::policy::Retry;
use crate::verify::{self, Steps};

/// A whole number option within `range`, or `default` when absent.
fn number_option(
    options: &JsValue,
    key: &str,
    method: &str,
    default: f64,
    max: f64,
) -> Result<f64, Error> {
    match option(options, key, method)? {
        None => Ok(default),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && (0.0..=max).contains(&n) => Ok(n),
            _ => Err(invalid_option(
                method,
                key,
                "must be a non-negative number in range",
            )),
        },
    }
}

/// `limits`: absent (the standard plan's 50 / 2), `false` (off), `'standard'`,
/// `'enterprise'`, or `{burst, drainPerSecond}`.
fn limits_option(options: &JsValue, method: &str) -> Result<Option<Limits>, Error> {
    let Some(v) = option(options, "limits", method)? else {
        return Ok(Some(Limits::STANDARD));
    };
    if v.as_bool() == Some(false) {
        return Ok(None);
    }
    match v.as_string().as_deref() {
        Some("standard") => return Ok(Some(Limits::STANDARD)),
        Some("enterprise") => return Ok(Some(Limits::ENTERPRISE)),
        _ => {}
    }
    let what = "must be false, 'standard', 'enterprise' or {burst, drainPerSecond}";
    if !v.is_object() {
        return Err(invalid_option(method, "limits", what));
    }
    let d = Limits::STANDARD;
    let burst = number_option(&v, "burst", method, d.burst, 1e6)?;
    let drain = number_option(&v, "drainPerSecond", method, d.drain_per_second, 1e6)?;
    Limits::new(burst, drain)
        .map(Some)
        .ok_or_else(|| invalid_option(method, "limits", what))
}

/// `retry`: absent (3 retries), `false` (none), or `{retries, baseDelayMs, maxDelayMs}`.
fn retry_option(options: &JsValue, method: &str) -> Result<Retry, Error> {
    let Some(v) = option(options, "retry", method)? else {
        return Ok(Retry::DEFAULT);
    };
    if v.as_bool() == Some(false) {
        return Ok(Retry::NEVER);
    }
    if !v.is_object() {
        return Err(invalid_option(
            method,
            "retry",
            "must be false or {retries, baseDelayMs, maxDelayMs}",
        ));
    }
    let d = Retry::DEFAULT;
    Ok(Retry {
        retries: number_option(&v, "retries", method, f64::from(d.retries), 100.0)? as u32,
        base_delay_ms: number_option(&v, "baseDelayMs", method, d.base_delay_ms, 3.6e6)?,
        max_delay_ms: number_option(&v, "maxDelayMs", method, d.max_delay_ms, 3.6e6)?,
    })
}

fn function_option(options: &JsValue, key: &str, method: &str) -> Result<Option<Function>, Error> {
    match option(options, key, method)? {
        None => Ok(None),
        Some(f) if f.is_function() => Ok(Some(f.unchecked_into())),
        Some(_) => Err(invalid_option(method, key, "must be a function")),
    }
}

/// Applies a client's `limits`, `retry` and `onRequest` options to its core.
pub(super) fn configured(core: Core, options: &JsValue, method: &str) -> Result<Core, Error> {
    if !options.is_object() {
        return Ok(core);
    }
    let core = core
        .with_limits(limits_option(options, method)?)
        .with_retry(retry_option(options, method)?);
    Ok(match function_option(options, "onRequest", method)? {
        None => core,
        Some(f) => core.with_observer(Box::new(move |e: &RequestEvent<'_>| {
            let o = interop::object();
            set(&o, "method", e.method.into());
            set(&o, "status", e.status.into());
            if !e.code.is_empty() {
                set(&o, "code", e.code.into());
            }
            set(&o, "durationMs", e.duration_ms.into());
            set(&o, "attempt", e.attempt.into());
            set(&o, "waitedMs", e.waited_ms.into());
            // The caller's hook may throw: that is its own business, never the call's.
            let _ = interop::call(&f, &JsValue::UNDEFINED, &[&o]);
        })),
    })
}

/// A JSON value (object or list) as text for the core, as `call()` params are read.
fn snapshot(method: &str, value: &JsValue) -> Result<Json, Error> {
    let bad = |why: String| {
        Error::argument(
            method,
            codes::ERROR_ARGUMENT,
            "commands",
            format!("commands must be plain JSON data ({why})"),
        )
    };
    let text = js_sys::JSON::stringify(value).map_err(|e| bad(interop::text(&e)))?;
    let text = text
        .as_string()
        .ok_or_else(|| bad("not serializable".to_owned()))?;
    Json::parse(text).map_err(bad)
}

fn failure(e: Error) -> JsValue {
    let o = interop::object();
    set(&o, "ok", false.into());
    set(&o, "error", to_js(e));
    o
}

fn item_to_js(core: &Core, item: Item<Json>) -> JsValue {
    match item {
        Item::Done {
            result,
            total,
            next,
        } => {
            let o = interop::object();
            set(&o, "ok", true.into());
            set(&o, "result", json_to_js(&result));
            if let Some(t) = total {
                set(&o, "total", (t as f64).into());
            }
            if let Some(n) = next {
                set(&o, "next", (n as f64).into());
            }
            o
        }
        Item::Failed(e) => failure(core.redact(e)),
    }
}

fn unknown(e: &verify::Entry) -> bool {
    matches!(&e.outcome, Err(err) if err.outcome() == Outcome::Unknown)
}

/// The counts after verification settled what it could.
fn final_progress(entries: &[verify::Entry]) -> Progress {
    let mut p = Progress {
        total: entries.len(),
        done: entries.len(),
        ..Progress::default()
    };
    for e in entries {
        match &e.outcome {
            Ok(_) => p.delivered += 1,
            Err(err) if err.outcome() == Outcome::Unknown => p.unknown += 1,
            Err(_) => p.failed += 1,
        }
    }
    p
}

fn progress_to_js(p: &Progress) -> JsValue {
    let o = interop::object();
    set(&o, "done", (p.done as f64).into());
    set(&o, "total", (p.total as f64).into());
    set(&o, "delivered", (p.delivered as f64).into());
    set(&o, "failed", (p.failed as f64).into());
    set(&o, "unknown", (p.unknown as f64).into());
    o
}

fn halt_option(options: &JsValue, method: &str) -> Result<bool, Error> {
    match option(options, "halt", method)? {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid_option(method, "halt", "must be a boolean")),
    }
}

#[wasm_bindgen]
impl Client {
    /// `batch(commands, {halt, signal, timeoutMs})`: per-command entries, keyed like
    /// the commands (an object by name, a list by position).
    pub fn batch(&self, commands: JsValue, options: JsValue) -> js_sys::Promise {
        let (core, default_timeout) = (self.core.clone(), self.timeout_ms);
        promise(async move {
            let method = "batch";
            let input = snapshot(method, &commands)?;
            let (commands, keyed) = batch::commands(&input)?;
            let halt = halt_option(&options, method)?;
            let bounds = bounds(&options, method, default_timeout)?;
            let items = batch::send(
                &core,
                &commands,
                halt,
                &mut || Ok::<_, Error>(&bounds),
                &mut |_, _| {},
            )
            .await;
            let entries = items.into_iter().map(|i| item_to_js(&core, i));
            Ok(if keyed {
                let out = interop::object();
                for (c, entry) in commands.iter().zip(entries) {
                    set(&out, &c.name, entry);
                }
                out
            } else {
                entries.collect::<Array>().into()
            })
        })
    }

    /// `crmMessageAddMany(items, {onProgress, signal, halt, timeoutMs})`: one entry per
    /// item, `{ok: true, id}` or `{ok: false, error}`; `timeoutMs` bounds each batch
    /// request, `signal` the whole send. `items` is the list of each item's params as
    /// JSON text (see `typed`), made by the JS layer.
    #[wasm_bindgen(js_name = crmMessageAddMany)]
    pub fn crm_message_add_many(&self, items: JsValue, options: JsValue) -> js_sys::Promise {
        let (core, default_timeout, client_verify) =
            (self.core.clone(), self.timeout_ms, self.verify);
        promise(async move {
            let method = MESSAGE_ADD;
            if !interop::is_array(&items) {
                return Err(Error::argument(
                    method,
                    codes::ERROR_ARGUMENT,
                    "items",
                    "items must be a list of crmMessageAdd params".to_owned(),
                ));
            }
            let halt = halt_option(&options, method)?;
            let on_progress = function_option(&options, "onProgress", method)?;
            let (signal, timeout_ms) = call_limits(&options, method, default_timeout)?;
            // Checked once up front, so that an unusable signal is an error rather than
            // a failure of every batch.
            drop(start(signal.clone(), timeout_ms, method)?);
            let settle = verification(&options, client_verify, timeout_ms, method)?;
            let list = JsJson(items);
            let count = match list.shape() {
                Shape::Array(n) => n,
                _ => 0,
            };
            let mut prepared: Vec<_> = (0..count)
                .map(|i| {
                    typed(
                        "crmMessageAdd",
                        &list.at(i).map_or(JsValue::UNDEFINED, |t| t.0),
                    )
                })
                .collect();
            let steps = JsSteps {
                signal,
                timeout_ms,
                settle_ms: settle.unwrap_or(0),
                method,
            };
            // With verification, each chat's watermark first (in batches); a chat that
            // cannot be read gets nothing sent.
            let mut marks: Vec<(u64, Result<u64, Error>)> = Vec::new();
            if settle.is_some() {
                let chats = verify::sorted_unique(
                    prepared
                        .iter()
                        .filter_map(|p| p.as_ref().ok().and_then(verify::Sent::chat_of))
                        .collect(),
                );
                let read = verify::read_watermarks(&core, &steps, &chats).await;
                marks = chats.into_iter().zip(read).collect();
                for p in prepared.iter_mut() {
                    let chat = p.as_ref().ok().and_then(verify::Sent::chat_of);
                    if let Some((_, Err(e))) = marks.iter().find(|(c, _)| Some(*c) == chat) {
                        *p = Err(e.clone());
                    }
                }
            }
            let mut report = |p: &Progress| {
                if let Some(f) = &on_progress {
                    let _ = interop::call(f, &JsValue::UNDEFINED, &[&progress_to_js(p)]);
                }
            };
            let kept = prepared.clone();
            let sent = batch::message_add_many(
                &core,
                prepared,
                halt,
                &mut || {
                    if settle.is_some() {
                        steps.send_options()
                    } else {
                        steps.options()
                    }
                },
                &mut report,
            )
            .await;
            let mut entries: Vec<verify::Entry> = kept
                .into_iter()
                .zip(sent)
                .map(|(p, outcome)| {
                    let prepared = p.ok();
                    let chat = prepared.as_ref().and_then(verify::Sent::chat_of);
                    let mark = marks
                        .iter()
                        .find(|(c, _)| Some(*c) == chat)
                        .and_then(|(_, m)| m.as_ref().ok().copied())
                        .unwrap_or(0);
                    verify::Entry {
                        prepared,
                        mark,
                        outcome,
                        verified: false,
                    }
                })
                .collect();
            if let Some(settle_ms) = settle {
                let before = entries.iter().filter(|e| unknown(e)).count();
                verify::settle_many(&core, &steps, &mut entries, settle_ms).await;
                if before > 0 {
                    report(&final_progress(&entries));
                }
            }
            Ok(entries
                .into_iter()
                .map(|e| match e.outcome {
                    Ok(id) => {
                        let o = interop::object();
                        set(&o, "ok", true.into());
                        set(&o, "id", (id as f64).into());
                        if e.verified {
                            set(&o, "verified", true.into());
                        }
                        o
                    }
                    Err(err) => failure(err),
                })
                .collect::<Array>()
                .into())
        })
    }
}
