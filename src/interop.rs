//! Every access to a JS value goes through here, and nothing here can throw into wasm.
//!
//! A JS exception that unwinds through wasm frames skips the wasm stack-pointer
//! restore and Rust's borrow guards; repeated, it corrupts the module for the whole
//! page. So every imported operation that can throw on a value the caller controls
//! (property reads, `Array.isArray`, own keys, calls into the caller's functions and
//! the JS layer's, timers) is bound with `catch` and returns a `Result` or an `Option`.
//! Type tests use `typeof` (never throws) or `instanceof` (whose generated shim
//! catches). The rest of the crate reads JS values only with these helpers.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use futures::future::{select, Either};
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::json::{JsonView, Shape};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Array, js_name = isArray, catch)]
    fn array_is_array(value: &JsValue) -> Result<bool, JsValue>;

    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(handler: &Function, ms: u32) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = clearTimeout, catch)]
    fn clear_timeout(id: &JsValue) -> Result<(), JsValue>;

    /// `JSON.parse` of a JS string, without copying it into wasm and back.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub fn parse_json(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// `target[key]`; `None` when absent, `undefined`, `null`, when `target` is not an
/// object or function, or when reading it threw.
pub fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    try_get(target, key).ok().flatten()
}

/// `target[key]` like [`get`], but a read that threw is reported with its text.
pub fn try_get(target: &JsValue, key: &str) -> Result<Option<JsValue>, String> {
    if !target.is_object() && !target.is_function() {
        return Ok(None);
    }
    Reflect::get(target, &JsValue::from_str(key))
        .map(|v| (!v.is_undefined() && !v.is_null()).then_some(v))
        .map_err(|e| text(&e))
}

/// `target[index]`; `None` when absent, `undefined`, or when reading it threw.
pub fn index(target: &JsValue, index: u32) -> Option<JsValue> {
    Reflect::get_u32(target, index)
        .ok()
        .filter(|v| !v.is_undefined())
}

/// Sets `target[key] = value`, ignoring a refusal (frozen objects, proxies).
pub fn set(target: &JsValue, key: &str, value: JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), &value);
}

/// A new plain object.
pub fn object() -> JsValue {
    Object::new().into()
}

/// `Array.isArray(value)`; false when it threw (a revoked proxy).
pub fn is_array(value: &JsValue) -> bool {
    array_is_array(value).unwrap_or(false)
}

/// `target[name]` when it is a function.
pub fn function(target: &JsValue, name: &str) -> Option<Function> {
    get(target, name)
        .filter(JsValue::is_function)
        .map(JsCast::unchecked_into)
}

/// Calls `f` with `this` and `args`; an exception is returned, not thrown.
pub fn call(f: &Function, this: &JsValue, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let args: Array = args.iter().copied().collect();
    f.apply(this, &args)
}

/// Calls `target[name](...args)`; the error says when it is not a function or threw.
pub fn call_method(target: &JsValue, name: &str, args: &[&JsValue]) -> Result<JsValue, String> {
    let f = function(target, name).ok_or_else(|| format!("{name} is not a function"))?;
    call(&f, target, args).map_err(|e| format!("{name} threw: {}", text(&e)))
}

/// A Promise that settles as `value` does (a thenable is followed, anything else
/// resolves as is). Unlike `Promise.resolve`, it cannot throw on a hostile value.
pub fn promise_of(value: &JsValue) -> Promise {
    let mut value = Some(value.clone());
    Promise::new(&mut |resolve, _| {
        if let Some(v) = value.take() {
            let _ = resolve.call1(&JsValue::UNDEFINED, &v);
        }
    })
}

/// Awaits `value` (a Promise, a thenable or a plain value). Always through a Promise
/// of our own, so a foreign `then` runs inside the engine's resolve job, never here.
pub async fn settle(value: &JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(promise_of(value)).await
}

/// The text of a JS exception or rejection, without assuming it is an `Error`.
pub fn text(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        return s;
    }
    let string = |v: &JsValue, k: &str| get(v, k).and_then(|s| s.as_string());
    match (string(value, "name"), string(value, "message")) {
        (Some(n), Some(m)) if !m.is_empty() => {
            // Node puts the useful part ("connect ECONNREFUSED ...") in `cause`.
            match get(value, "cause").and_then(|c| string(&c, "message")) {
                Some(c) => format!("{n}: {m}: {c}"),
                None => format!("{n}: {m}"),
            }
        }
        (Some(n), _) => n,
        _ => "unknown error".to_owned(),
    }
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A pending `setTimeout`, cleared when dropped. Holds its callback alive.
pub struct Timer {
    id: Option<JsValue>,
    _callback: Option<Closure<dyn FnMut()>>,
}

impl Timer {
    /// Runs `f` once after `ms` milliseconds. `None` when the runtime's `setTimeout`
    /// is missing or threw.
    pub fn new(ms: u32, f: impl FnOnce() + 'static) -> Option<Timer> {
        let callback = Closure::once(f);
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms).ok()?;
        Some(Timer {
            id: Some(id),
            _callback: Some(callback),
        })
    }

    /// Calls the JS function `f` once after `ms` milliseconds (no Rust closure).
    pub fn call(ms: u32, f: &Function) -> Option<Timer> {
        let id = set_timeout(f, ms).ok()?;
        Some(Timer {
            id: Some(id),
            _callback: None,
        })
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = clear_timeout(&id);
        }
    }
}

/// Resolves after `ms` milliseconds (never, if no timer can be set: callers race it
/// against other bounds).
pub async fn sleep(ms: u32) {
    let fired = Rc::new(Cell::new(None::<Function>));
    let slot = fired.clone();
    let promise = Promise::new(&mut |resolve, _| slot.set(Some(resolve)));
    let _timer = fired.take().and_then(|resolve| {
        Timer::new(ms, move || {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        })
    });
    let _ = JsFuture::from(promise).await;
}

/// Runs `future`, or gives up after `ms` milliseconds with `None`.
pub async fn with_timeout<F: Future>(future: F, ms: u32) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(sleep(ms));
    match select(future, timer).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// A JS value read in place as JSON: the caller's params, or a parsed response.
/// Every read goes through the helpers above, so getters, proxies and odd types
/// cannot throw into wasm; a read that throws counts as absent.
#[derive(Clone)]
pub struct JsJson(pub JsValue);

impl JsonView for JsJson {
    fn shape(&self) -> Shape {
        let v = &self.0;
        if v.is_undefined() || v.is_null() {
            Shape::Null
        } else if let Some(b) = v.as_bool() {
            Shape::Bool(b)
        } else if let Some(n) = v.as_f64() {
            Shape::Number(n)
        } else if let Some(s) = v.as_string() {
            Shape::String(s)
        } else if is_array(v) {
            let length = get(v, "length").and_then(|l| l.as_f64()).unwrap_or(0.0);
            Shape::Array(length.clamp(0.0, u32::MAX as f64) as u32)
        } else if v.is_object() {
            Shape::Object
        } else {
            Shape::Other
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        get(&self.0, key).map(JsJson)
    }

    fn at(&self, index: u32) -> Option<Self> {
        if !is_array(&self.0) {
            return None;
        }
        self::index(&self.0, index).map(JsJson)
    }

    fn number_text(&self) -> Option<String> {
        self.0.as_f64()?;
        js_sys::Number::unchecked_from_js(self.0.clone())
            .to_string_with_radix(10)
            .ok()?
            .as_string()
    }

    fn keys(&self) -> Vec<String> {
        if !self.0.is_object() {
            return Vec::new();
        }
        Reflect::own_keys(&self.0)
            .map(|keys| keys.iter().filter_map(|k| k.as_string()).collect())
            .unwrap_or_default()
    }
}
