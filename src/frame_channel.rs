//! The `postMessage` channel to the parent window of a Bitrix24 iframe app: sends the
//! commands built by [`crate::frame`] and matches the answers by callback id.
//!
//! Only messages whose `origin` is the portal's (from `window.name`) are read; every
//! other message is ignored. Every pending command is bounded by a timeout and removed
//! when it settles or times out, so nothing waits forever and nothing leaks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use crate::frame::{parse_reply, Bootstrap};
use crate::interop::{self, call_method, get};

/// Commands waiting for an answer: callback id and the resolve function (a handful
/// at most, so a list).
type Pending = Rc<RefCell<Vec<(String, Function)>>>;

fn take(pending: &Pending, id: &str) -> Option<Function> {
    let mut list = pending.borrow_mut();
    let at = list.iter().position(|(k, _)| k == id)?;
    Some(list.swap_remove(at).1)
}

/// An open channel to the parent window.
pub struct Channel {
    /// What `window.name` said.
    pub boot: Bootstrap,
    parent: JsValue,
    pending: Pending,
    next_id: Cell<u32>,
    listener: Closure<dyn FnMut(JsValue)>,
}

impl Channel {
    /// Opens the channel when this window is a portal's app frame.
    pub fn open() -> Result<Rc<Channel>, String> {
        let global = js_sys::global();
        let name = get(&global, "name")
            .and_then(|n| n.as_string())
            .unwrap_or_default();
        let boot = Bootstrap::parse(&name)
            .ok_or("this page was not opened by a Bitrix24 portal (window.name has no DOMAIN|PROTOCOL|APP_SID)")?;
        let parent = get(&global, "parent").ok_or("there is no parent window")?;
        let pending: Pending = Rc::default();
        let origin = boot.parent_origin();
        let inbox = pending.clone();
        let listener = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let from_parent =
                get(&event, "origin").and_then(|o| o.as_string()) == Some(origin.clone());
            let Some(data) = get(&event, "data").and_then(|d| d.as_string()) else {
                return;
            };
            if !from_parent {
                return;
            }
            let Some((id, json)) = parse_reply(&data) else {
                return;
            };
            let Some(resolve) = take(&inbox, id) else {
                return;
            };
            let value = js_sys::JSON::parse(json).unwrap_or(JsValue::NULL);
            let _ = interop::call(&resolve, &JsValue::UNDEFINED, &[&value]);
        });
        call_method(
            &global,
            "addEventListener",
            &[&"message".into(), listener.as_ref()],
        )?;
        Ok(Rc::new(Channel {
            boot,
            parent,
            pending,
            next_id: Cell::new(0),
            listener,
        }))
    }

    /// Sends `command` with `params_json` and waits at most `timeout_ms` for the answer.
    pub async fn send(
        &self,
        command: &str,
        params_json: &str,
        timeout_ms: u32,
    ) -> Result<JsValue, String> {
        let n = self.next_id.get().wrapping_add(1);
        self.next_id.set(n);
        let id = format!("b24{n}x{}", (js_sys::Math::random() * 1e9) as u32);
        let pending = self.pending.clone();
        let key = id.clone();
        let promise = Promise::new(&mut |resolve, _reject| {
            pending.borrow_mut().push((key.clone(), resolve));
        });
        let message = JsValue::from_str(&self.boot.command(command, params_json, &id));
        let origin = JsValue::from_str(&self.boot.parent_origin());
        let sent = call_method(&self.parent, "postMessage", &[&message, &origin]);
        let outcome = match sent {
            Ok(_) => {
                match interop::with_timeout(
                    wasm_bindgen_futures::JsFuture::from(promise),
                    timeout_ms,
                )
                .await
                {
                    Some(answer) => answer.map_err(|e| interop::text(&e)),
                    None => Err(format!(
                        "the portal did not answer {command} within {timeout_ms} ms"
                    )),
                }
            }
            Err(e) => Err(e),
        };
        take(&self.pending, &id);
        outcome
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = call_method(
            &js_sys::global(),
            "removeEventListener",
            &[&"message".into(), self.listener.as_ref()],
        );
    }
}
