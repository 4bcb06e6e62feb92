//! A caller's options, read from the snapshot the JS layer makes of them.
//!
//! The JS layer reads each option it knows once (a throwing getter or proxy trap is
//! caught there) and hands over JSON: plain values as they are, and markers for what
//! JSON cannot hold, `{"$": kind}`:
//!
//! | kind | what the caller passed |
//! | --- | --- |
//! | `fn` | a function |
//! | `signal` (`aborted`: bool) | an `AbortSignal` |
//! | `badSignal` (`text`) | an object that claims to be one and cannot be read |
//! | `threw` (`text`) | reading it threw |
//! | `other` | a symbol, a BigInt, `NaN` or an infinite number |
//! | `object` | another object (not read further) |
//! | `scalar` | (the whole options) not an object |
//!
//! `undefined` and `null` options are left out. Here each option is checked in the
//! order and with the words the portal's client always used.

use crate::error::{codes, Error};
use crate::json::{Json, JsonView, Shape};
use crate::limiter::Limits;
use crate::policy::Retry;

/// The default call timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;
/// The default timeout of a token source.
pub const DEFAULT_REFRESH_TIMEOUT_MS: u32 = 10_000;

/// `options.{name} {what}`, an invalid option.
pub fn invalid(method: &str, name: &str, what: &str) -> Error {
    Error::argument(
        method,
        codes::ERROR_ARGUMENT,
        name,
        ["options.", name, " ", what].concat(),
    )
}

/// One option's value.
#[derive(Debug, Clone)]
pub struct Value(Json);

impl Value {
    fn marker(&self) -> Option<String> {
        match self.0.get("$")?.shape() {
            Shape::String(s) => Some(s),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match self.0.get("text").map(|t| t.shape()) {
            Some(Shape::String(s)) => s,
            _ => String::new(),
        }
    }

    /// A finite number.
    pub fn number(&self) -> Option<f64> {
        match self.0.shape() {
            Shape::Number(n) => Some(n),
            _ => None,
        }
    }

    /// A boolean.
    pub fn boolean(&self) -> Option<bool> {
        match self.0.shape() {
            Shape::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A string.
    pub fn string(&self) -> Option<String> {
        match self.0.shape() {
            Shape::String(s) => Some(s),
            _ => None,
        }
    }

    /// A function.
    pub fn is_function(&self) -> bool {
        self.marker().as_deref() == Some("fn")
    }

    /// An object (not a function, not a signal).
    pub fn is_object(&self) -> bool {
        match self.marker().as_deref() {
            None => matches!(self.0.shape(), Shape::Object | Shape::Array(_)),
            Some(m) => m == "object",
        }
    }

    /// The options inside an object option (`limits`, `retry`).
    pub fn nested(&self) -> Options {
        Options(self.0.clone())
    }
}

/// A caller's options.
#[derive(Debug, Clone)]
pub struct Options(Json);

impl Options {
    /// The options from their snapshot's JSON text (anything unreadable: none).
    pub fn parse(text: &str) -> Options {
        Options(Json::parse(text.to_owned()).unwrap_or_else(|_| Json::null()))
    }

    /// No options.
    pub fn none() -> Options {
        Options(Json::null())
    }

    /// Whether options were given (an object, or not one).
    pub fn given(&self) -> bool {
        !matches!(self.0.shape(), Shape::Null)
    }

    /// Whether the options are an object (or none).
    pub fn is_object(&self) -> bool {
        match self.0.get("$").map(|m| m.shape()) {
            Some(Shape::String(m)) => m != "scalar",
            _ => true,
        }
    }

    /// Refuses options that are not an object.
    pub fn check(&self, method: &str) -> Result<(), Error> {
        if self.is_object() {
            Ok(())
        } else {
            Err(invalid(method, "options", "must be an object"))
        }
    }

    /// `options[key]`, with a read that threw reported as an invalid option.
    pub fn get(&self, key: &str, method: &str) -> Result<Option<Value>, Error> {
        if !self.is_object() {
            return Ok(None);
        }
        let Some(v) = self
            .0
            .get(key)
            .filter(|v| !matches!(v.shape(), Shape::Null))
        else {
            return Ok(None);
        };
        let v = Value(v);
        if v.marker().as_deref() == Some("threw") {
            let why = ["could not be read (", &v.text(), ")"].concat();
            return Err(invalid(method, key, &why));
        }
        Ok(Some(v))
    }

    /// A string option.
    pub fn string(&self, key: &str, method: &str) -> Result<Option<String>, Error> {
        match self.get(key, method)? {
            None => Ok(None),
            Some(v) => v
                .string()
                .map(Some)
                .ok_or_else(|| invalid(method, key, "must be a string")),
        }
    }

    /// A boolean option (absent: `false`).
    pub fn flag(&self, key: &str, method: &str) -> Result<bool, Error> {
        Ok(self.optional_flag(key, method)?.unwrap_or(false))
    }

    /// A boolean option, when given.
    pub fn optional_flag(&self, key: &str, method: &str) -> Result<Option<bool>, Error> {
        match self.get(key, method)? {
            None => Ok(None),
            Some(v) => v
                .boolean()
                .map(Some)
                .ok_or_else(|| invalid(method, key, "must be a boolean")),
        }
    }

    /// Milliseconds, when given.
    pub fn optional_ms(&self, key: &str, method: &str) -> Result<Option<u32>, Error> {
        match self.get(key, method)? {
            None => Ok(None),
            Some(v) => match v.number() {
                Some(ms) if ms.fract() == 0.0 && (1.0..=2_147_483_647.0).contains(&ms) => {
                    Ok(Some(ms as u32))
                }
                _ => Err(invalid(
                    method,
                    key,
                    "must be a whole number of milliseconds from 1 to 2147483647",
                )),
            },
        }
    }

    /// Milliseconds, `default` when absent.
    pub fn ms(&self, key: &str, method: &str, default: u32) -> Result<u32, Error> {
        Ok(self.optional_ms(key, method)?.unwrap_or(default))
    }

    /// Whether a function was given for `key` (an error when something else was).
    pub fn function(&self, key: &str, method: &str) -> Result<bool, Error> {
        match self.get(key, method)? {
            None => Ok(false),
            Some(v) if v.is_function() => Ok(true),
            Some(_) => Err(invalid(method, key, "must be a function")),
        }
    }

    /// A non-negative number up to `max`, `default` when absent.
    fn number(&self, key: &str, method: &str, default: f64, max: f64) -> Result<f64, Error> {
        match self.get(key, method)? {
            None => Ok(default),
            Some(v) => match v.number() {
                Some(n) if n.is_finite() && (0.0..=max).contains(&n) => Ok(n),
                _ => Err(invalid(
                    method,
                    key,
                    "must be a non-negative number in range",
                )),
            },
        }
    }

    /// A call's `signal` (whether it fired) and `timeoutMs`.
    pub fn call_limits(&self, method: &str, default_timeout: u32) -> Result<(bool, u32), Error> {
        self.check(method)?;
        let aborted = match self.get("signal", method)? {
            None => false,
            Some(s) => match s.marker().as_deref() {
                Some("signal") => {
                    matches!(
                        s.0.get("aborted").map(|a| a.shape()),
                        Some(Shape::Bool(true))
                    )
                }
                Some("badSignal") => {
                    let why = ["is not a usable AbortSignal (", &s.text(), ")"].concat();
                    return Err(invalid(method, "signal", &why));
                }
                _ => return Err(invalid(method, "signal", "must be an AbortSignal")),
            },
        };
        Ok((aborted, self.ms("timeoutMs", method, default_timeout)?))
    }

    /// A client's settings.
    pub fn settings(&self, method: &str) -> Result<Settings, Error> {
        self.check(method)?;
        Ok(Settings {
            timeout_ms: self.ms("timeoutMs", method, DEFAULT_TIMEOUT_MS)?,
            refresh_ms: self.ms("refreshTimeoutMs", method, DEFAULT_REFRESH_TIMEOUT_MS)?,
            allow_insecure_http: self.flag("allowInsecureHttp", method)?,
            verify: self.flag("verify", method)?,
            settle_ms: self.optional_ms("settleMs", method)?,
        })
    }

    /// `limits`: absent (the standard plan's 50 / 2), `false` (off), `'standard'`,
    /// `'enterprise'`, or `{burst, drainPerSecond}`.
    pub fn limits(&self, method: &str) -> Result<Option<Limits>, Error> {
        let Some(v) = self.get("limits", method)? else {
            return Ok(Some(Limits::STANDARD));
        };
        if v.boolean() == Some(false) {
            return Ok(None);
        }
        match v.string().as_deref() {
            Some("standard") => return Ok(Some(Limits::STANDARD)),
            Some("enterprise") => return Ok(Some(Limits::ENTERPRISE)),
            _ => {}
        }
        let what = "must be false, 'standard', 'enterprise' or {burst, drainPerSecond}";
        if !v.is_object() {
            return Err(invalid(method, "limits", what));
        }
        let (o, d) = (v.nested(), Limits::STANDARD);
        let burst = o.number("burst", method, d.burst, 1e6)?;
        let drain = o.number("drainPerSecond", method, d.drain_per_second, 1e6)?;
        Limits::new(burst, drain)
            .map(Some)
            .ok_or_else(|| invalid(method, "limits", what))
    }

    /// `retry`: absent (3 retries), `false` (none), or `{retries, baseDelayMs,
    /// maxDelayMs}`.
    pub fn retry(&self, method: &str) -> Result<Retry, Error> {
        let Some(v) = self.get("retry", method)? else {
            return Ok(Retry::DEFAULT);
        };
        if v.boolean() == Some(false) {
            return Ok(Retry::NEVER);
        }
        if !v.is_object() {
            return Err(invalid(
                method,
                "retry",
                "must be false or {retries, baseDelayMs, maxDelayMs}",
            ));
        }
        let (o, d) = (v.nested(), Retry::DEFAULT);
        Ok(Retry {
            retries: o.number("retries", method, f64::from(d.retries), 100.0)? as u32,
            base_delay_ms: o.number("baseDelayMs", method, d.base_delay_ms, 3.6e6)?,
            max_delay_ms: o.number("maxDelayMs", method, d.max_delay_ms, 3.6e6)?,
        })
    }

    /// Whether a call verifies delivery, and its settle window: the call's `verify`
    /// and `settleMs`, else the client's; the window defaults to the call's timeout.
    pub fn verification(
        &self,
        client: (bool, Option<u32>),
        timeout_ms: u32,
        method: &str,
    ) -> Result<Option<u32>, Error> {
        let on = self.optional_flag("verify", method)?.unwrap_or(client.0);
        let settle = self.optional_ms("settleMs", method)?.or(client.1);
        Ok(on.then(|| settle.unwrap_or(timeout_ms)))
    }
}

/// A client's options: default call timeout, refresh timeout, the plain-http opt-in,
/// verified delivery by default and its settle window.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The default call timeout.
    pub timeout_ms: u32,
    /// Verified delivery for messages by default (`verify`).
    pub verify: bool,
    /// Its settle window.
    pub settle_ms: Option<u32>,
    /// How long a token source may take.
    pub refresh_ms: u32,
    /// Whether plain http is allowed for a remote host.
    pub allow_insecure_http: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn options_are_checked_in_order_with_their_words() {
        let o =
            Options::parse(r#"{"signal":{"$":"threw","text":"Error: trap get"},"timeoutMs":-1}"#);
        let e = o.call_limits("m", 1).unwrap_err();
        assert_eq!(
            e.details().description,
            "options.signal could not be read (Error: trap get)"
        );
        let o = Options::parse(r#"{"signal":{"$":"object"}}"#);
        assert!(o
            .call_limits("m", 1)
            .unwrap_err()
            .to_string()
            .contains("must be an AbortSignal"));
        let o = Options::parse(r#"{"timeoutMs":{"$":"other"}}"#);
        assert!(o
            .call_limits("m", 1)
            .unwrap_err()
            .to_string()
            .contains("whole number of milliseconds"));
        let o = Options::parse(r#"{"$":"scalar"}"#);
        assert!(o
            .call_limits("m", 1)
            .unwrap_err()
            .to_string()
            .contains("options.options must be an object"));
        let o = Options::parse(r#"{"signal":{"$":"signal","aborted":true},"timeoutMs":250}"#);
        assert_eq!(o.call_limits("m", 1).unwrap(), (true, 250));
        assert_eq!(Options::none().call_limits("m", 7).unwrap(), (false, 7));
        let o = Options::parse(r#"{"limits":{"burst":10,"drainPerSecond":1},"retry":false}"#);
        assert_eq!(o.limits("m").unwrap(), Limits::new(10.0, 1.0));
        assert_eq!(o.retry("m").unwrap(), Retry::NEVER);
        let o = Options::parse(r#"{"onRequest":{"$":"fn"},"onProgress":3}"#);
        assert!(o.function("onRequest", "m").unwrap());
        assert!(o.function("onProgress", "m").is_err());
    }
}
