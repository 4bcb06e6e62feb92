//! One portal's client state and the life of a call: encode, send, read the envelope,
//! decide (refresh and repeat, or fail), decode the result.
//!
//! The client is generic over a [`Transport`], so the whole flow, refresh race
//! included, runs natively in tests with a scripted transport; the wasm build plugs in
//! the `fetch` transport. Everything here is single-threaded (`Rc`/`RefCell`), as JS is.

use std::cell::RefCell;

use futures::future::{FutureExt, LocalBoxFuture, Shared};

use crate::auth::Auth;
pub use crate::auth::Token;
use crate::envelope::{self, HttpResponse, Success};
use crate::error::{codes, Details, Error, Outcome, Unanswered};
use crate::json::JsonView;
use crate::limiter::{Limiter, Limits};
use crate::outbox::{Outbox, Sent};
use crate::params::{self, Decoded, Prepared};
use crate::policy::{self, Next, Retry};
use crate::wire::{self, HttpRequest};

/// Why the transport produced no response. `sent`: the request had been handed to
/// the network when it happened (so the portal may have received it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The connection failed or dropped; the text is the runtime's.
    Network {
        /// The runtime's text.
        cause: String,
        /// Whether the request had left.
        sent: bool,
    },
    /// The call's timeout (milliseconds) passed.
    Timeout {
        /// The timeout.
        ms: u32,
        /// Whether the request had left.
        sent: bool,
    },
    /// The caller's signal fired.
    Aborted {
        /// Whether the request had left.
        sent: bool,
    },
}

impl TransportError {
    /// The error a caller sees for `method`.
    pub fn into_error(self, method: &str, write: bool) -> Error {
        match self {
            TransportError::Network { cause, sent } => {
                Error::unanswered(method, Unanswered::Network, &cause, sent, write)
            }
            TransportError::Timeout { ms, sent } => {
                Error::unanswered(method, Unanswered::Timeout, &ms.to_string(), sent, write)
            }
            TransportError::Aborted { sent } => {
                Error::unanswered(method, Unanswered::Aborted, "", sent, write)
            }
        }
    }
}

/// Sends one request and reads its answer. Timeouts and cancellation live here: the
/// options bound a whole call (every attempt and every wait in between).
pub trait Transport {
    /// Per-call options the transport understands (signal, timeout).
    type Options;
    /// How the transport hands over a parsed JSON body.
    type Json: JsonView;

    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> f64;

    /// Sends `request` and reads the whole answer.
    fn send<'a>(
        &'a self,
        request: &'a HttpRequest,
        options: &'a Self::Options,
    ) -> LocalBoxFuture<'a, Result<HttpResponse<Self::Json>, TransportError>>;

    /// Resolves when the call's timeout passes or its signal fires (with `sent: false`),
    /// so that waits outside the network (a token refresh) are bounded too.
    fn stopped<'a>(&'a self, options: &'a Self::Options) -> LocalBoxFuture<'a, TransportError>;

    /// Waits `ms` milliseconds, or less when the call stops first (then the error, with
    /// `sent: false`). The limiter's and the retries' waits go through here.
    fn sleep<'a>(
        &'a self,
        ms: f64,
        options: &'a Self::Options,
    ) -> LocalBoxFuture<'a, Result<(), TransportError>>;
}

/// Where a call stands between its attempts. [`Client::try_now`] and
/// [`Client::settle`] move it for a caller that sends the attempts itself;
/// [`Client::resume`] carries it on with the transport.
#[derive(Debug, Default)]
pub struct Run {
    refreshed: bool,
    retried: u32,
    attempt: u32,
    backoff_ms: f64,
    /// A refresh to wait for before the next attempt: the generation that was
    /// refused, and the refusal (returned, with the cause, if the refresh fails).
    refresh: Option<(u64, Error)>,
}

/// One attempt of a call, ready to send.
#[derive(Debug)]
pub struct Attempted {
    /// The request, with the auth current when it was made.
    pub request: HttpRequest,
    generation: u64,
    sent_at: f64,
    waited_ms: f64,
    /// The message's entry in the client's [`Outbox`], for a message sent.
    outbox: Option<u64>,
}

/// One HTTP exchange as `onRequest` reports it: no parameter value, no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEvent<'a> {
    /// The REST method (`batch` for a batch).
    pub method: &'a str,
    /// The HTTP status, or 0 when no answer was read.
    pub status: u16,
    /// The error code, or empty on success.
    pub code: &'a str,
    /// Milliseconds from sending to the answer (or the failure).
    pub duration_ms: f64,
    /// 1 for the first attempt of the call, 2 for its first repeat...
    pub attempt: u32,
    /// Milliseconds this attempt waited before it was sent: for the limiter and for a
    /// retry's backoff.
    pub waited_ms: f64,
}

/// The client's `onRequest` hook.
pub type Observer = Box<dyn Fn(&RequestEvent<'_>)>;

/// A refresh in progress: resolves to the new access token.
pub type RefreshFuture = LocalBoxFuture<'static, Result<Token, String>>;

/// Produces a new access token (the caller's refresh function).
pub type Refresher = Box<dyn Fn() -> RefreshFuture>;

/// Reads the auth source's current token (`None`: it has none, or it expired), so that
/// a token refreshed elsewhere (e.g. by BX24.js itself) is picked up before each call.
pub type Current = Box<dyn Fn() -> Option<Token>>;

struct State {
    auth: Auth,
    /// Bumped on every token change; a call that failed with generation `g` refreshes
    /// only if the token is still the one of generation `g`.
    generation: u64,
    inflight: Option<Shared<RefreshFuture>>,
    expires_at_ms: Option<f64>,
    /// Tokens replaced by refreshes, kept (a few) so errors can still be redacted.
    old_secrets: Vec<String>,
    refreshes: u64,
    /// The portal's request-rate limit as this client sees it (`None`: off).
    limiter: Option<Limiter>,
    retry: Retry,
    /// Per method: milliseconds from the portal's `finish` to its
    /// `operating_reset_at`, as last reported (a few methods kept).
    resets: Vec<(String, f64)>,
    /// Jitter's random state (xorshift).
    rng: u64,
    /// This client's messages in flight or of unknown outcome, and its answered ids.
    outbox: Outbox,
}

impl State {
    /// Replaces the access token, keeping the old one for redaction.
    fn install(&mut self, token: Token) {
        if let Auth::Token { access_token, .. } = &mut self.auth {
            let old = std::mem::replace(access_token, token.access_token.trim().to_owned());
            self.old_secrets.push(old);
            if self.old_secrets.len() > 4 {
                self.old_secrets.remove(0);
            }
        }
        self.expires_at_ms = token.expires_at_ms;
        self.generation += 1;
    }
}

/// A client for one portal: its auth, its refresh state and its transport.
pub struct Client<T: Transport> {
    transport: T,
    refresher: Option<Refresher>,
    current: Option<Current>,
    observer: Option<Observer>,
    state: RefCell<State>,
}

impl<T: Transport> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("Client")
            .field("auth", &s.auth)
            .field("refreshes", &s.refreshes)
            .finish()
    }
}

impl<T: Transport> Client<T> {
    /// A client with `auth`; `refresher` is used on `expired_token`/`invalid_token`
    /// answers when the auth is a token.
    pub fn new(transport: T, auth: Auth, refresher: Option<Refresher>) -> Self {
        let seed = transport.now_ms().to_bits() | 1;
        Client {
            transport,
            refresher,
            current: None,
            observer: None,
            state: RefCell::new(State {
                auth,
                generation: 0,
                inflight: None,
                expires_at_ms: None,
                old_secrets: Vec::new(),
                refreshes: 0,
                limiter: Some(Limiter::new(Limits::STANDARD)),
                retry: Retry::DEFAULT,
                resets: Vec::new(),
                rng: seed,
                outbox: Outbox::default(),
            }),
        }
    }

    /// Paces this client's requests to `limits` (`None`: no pacing, for callers with
    /// their own queue). The default is [`Limits::STANDARD`].
    pub fn with_limits(self, limits: Option<Limits>) -> Self {
        self.state.borrow_mut().limiter = limits.map(Limiter::new);
        self
    }

    /// How limit refusals are retried (default [`Retry::DEFAULT`]).
    pub fn with_retry(self, retry: Retry) -> Self {
        self.state.borrow_mut().retry = retry;
        self
    }

    /// Reports every HTTP exchange to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The limits this client paces to, if any.
    pub fn limits(&self) -> Option<Limits> {
        self.state.borrow().limiter.as_ref().map(Limiter::limits)
    }

    /// The transport (its clock, its waits).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Consults `current` before every call, and refreshes ahead of a known expiry.
    pub fn with_current(mut self, current: Current) -> Self {
        self.current = Some(current);
        self
    }

    /// Sets when the initial token expires (ms since the epoch), so that it is
    /// refreshed before the first call after that.
    pub fn with_expiry(self, expires_at_ms: Option<f64>) -> Self {
        self.state.borrow_mut().expires_at_ms = expires_at_ms;
        self
    }

    /// How many token refreshes this client has completed.
    pub fn refreshes(&self) -> u64 {
        self.state.borrow().refreshes
    }

    /// The portal's origin (no secret in it).
    pub fn origin(&self) -> String {
        self.state.borrow().auth.origin().to_owned()
    }

    fn can_refresh(&self) -> bool {
        self.refresher.is_some() && matches!(self.state.borrow().auth, Auth::Token { .. })
    }

    /// Runs a validated call to its decoded result. Every error is redacted.
    pub async fn call(
        &self,
        prepared: &Prepared,
        options: &T::Options,
    ) -> Result<Decoded<T::Json>, Error> {
        let success = self.exchange(prepared, options).await?;
        params::decode(prepared, success.status, success.result).map_err(|e| self.redact(e))
    }

    /// Runs a validated call to the portal's whole success envelope (`result` with
    /// `total`, `next` and `time`). Every error is redacted.
    pub async fn exchange(
        &self,
        prepared: &Prepared,
        options: &T::Options,
    ) -> Result<Success<T::Json>, Error> {
        self.resume(prepared, options, Run::default()).await
    }

    /// Replaces the current and earlier secrets in `e`'s texts.
    pub fn redact(&self, e: Error) -> Error {
        let s = self.state.borrow();
        let mut secrets: Vec<&str> = vec![s.auth.secret()];
        secrets.extend(s.old_secrets.iter().map(String::as_str));
        e.redacted(&secrets)
    }

    /// Waits `ms` (a retry's backoff) and then for a place in the limiter; returns the
    /// milliseconds waited. When the call stops meanwhile, its reservation is given
    /// back and nothing is sent.
    async fn pace(&self, backoff_ms: f64, options: &T::Options) -> Result<f64, TransportError> {
        let started = self.transport.now_ms();
        if backoff_ms > 0.0 {
            self.transport.sleep(backoff_ms, options).await?;
        }
        let now = self.transport.now_ms();
        let wait = match self.state.borrow_mut().limiter.as_mut() {
            Some(l) => l.reserve(now),
            None => 0.0,
        };
        if wait <= 0.0 && backoff_ms <= 0.0 {
            return Ok(0.0);
        }
        if wait > 0.0 {
            if let Err(stop) = self.transport.sleep(wait, options).await {
                let now = self.transport.now_ms();
                if let Some(l) = self.state.borrow_mut().limiter.as_mut() {
                    l.release(now);
                }
                return Err(stop);
            }
        }
        Ok((self.transport.now_ms() - started).max(0.0))
    }

    fn random(&self) -> f64 {
        let mut s = self.state.borrow_mut();
        let mut x = s.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn reset_in_ms(&self, method: &str) -> Option<f64> {
        let s = self.state.borrow();
        s.resets
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))
            .map(|(_, ms)| *ms)
    }

    /// Keeps what the portal said about `method`'s operating budget.
    fn note_time(&self, method: &str, success: &Success<T::Json>) {
        let Some(time) = success.time() else { return };
        let (Some(reset), Some(finish)) = (time.operating_reset_at, time.finish) else {
            return;
        };
        let ms = ((reset - finish) * 1000.0).max(0.0);
        let mut s = self.state.borrow_mut();
        if let Some(known) = s
            .resets
            .iter_mut()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))
        {
            known.1 = ms;
            return;
        }
        if s.resets.len() >= 16 {
            s.resets.remove(0);
        }
        s.resets.push((method.to_owned(), ms));
    }

    fn observe(&self, event: &RequestEvent<'_>) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    /// Sends a call's attempts until it succeeds or fails, continuing from `run`.
    async fn run(
        &self,
        prepared: &Prepared,
        options: &T::Options,
        mut run: Run,
    ) -> Result<Success<T::Json>, Error> {
        loop {
            if let Some((generation, error)) = run.refresh.take() {
                if let Err(cause) = self.bounded_refresh(generation, options, prepared).await? {
                    let d = error.details();
                    return Err(Error::Auth(Details {
                        description: format!(
                            "{}; refreshing the access token failed: {cause}",
                            d.description
                        ),
                        ..d.clone()
                    }));
                }
            }
            let waited_ms = self
                .pace(std::mem::take(&mut run.backoff_ms), options)
                .await
                .map_err(|stop| stop.into_error(&prepared.method, prepared.write))?;
            let generation = self.sync_token();
            if self.refresh_due(&run) {
                run.refreshed = true;
                if let Err(cause) = self.bounded_refresh(generation, options, prepared).await? {
                    return Err(Error::Auth(Details {
                        code: codes::EXPIRED_TOKEN.to_owned(),
                        status: 0,
                        method: prepared.method.clone(),
                        description: format!(
                            "the access token expired and refreshing it failed: {cause}; nothing was sent"
                        ),
                        argument: None,
                        outcome: Outcome::NotExecuted,
                        retryable: false,
                        note: crate::error::Note::None,
                        verified: false,
                        candidates: Box::default(),
                    }));
                }
            }
            let attempt = self.attempt(prepared, &mut run, waited_ms);
            let answer = self.transport.send(&attempt.request, options).await;
            if let Some(done) = self.settle(prepared, &mut run, &attempt, answer) {
                return done;
            }
        }
    }

    fn refresh_due(&self, run: &Run) -> bool {
        !run.refreshed
            && self.can_refresh()
            && policy::expired(self.state.borrow().expires_at_ms, self.transport.now_ms())
    }

    /// The next attempt's request, encoded with the current token.
    fn attempt(&self, prepared: &Prepared, run: &mut Run, waited_ms: f64) -> Attempted {
        let mut s = self.state.borrow_mut();
        run.attempt += 1;
        let outbox = Sent::of(prepared).map(|sent| s.outbox.enter(sent));
        Attempted {
            request: wire::encode(&s.auth, prepared),
            generation: s.generation,
            sent_at: self.transport.now_ms(),
            waited_ms,
            outbox,
        }
    }

    /// Runs `f` on this client's [`Outbox`].
    pub fn outbox<R>(&self, f: impl FnOnce(&mut Outbox) -> R) -> R {
        f(&mut self.state.borrow_mut().outbox)
    }

    /// The first attempt of a call when it can be sent at once: no wait for the
    /// limiter, no refresh due. `None`: the call must go through [`Self::resume`]
    /// (and nothing was reserved). For a caller that sends attempts itself and hands
    /// their answers to [`Self::settle`].
    pub fn try_now(&self, prepared: &Prepared, run: &mut Run) -> Option<Attempted> {
        if run.refresh.is_some() || run.backoff_ms > 0.0 {
            return None;
        }
        self.sync_token();
        if self.refresh_due(run) {
            return None;
        }
        let now = self.transport.now_ms();
        if let Some(l) = self.state.borrow_mut().limiter.as_mut() {
            if !l.try_reserve(now) {
                return None;
            }
        }
        Some(self.attempt(prepared, run, 0.0))
    }

    /// Runs the rest of a call begun with [`Self::try_now`] and [`Self::settle`] (or
    /// not begun: `Run::default()`) to its whole success envelope. Every error is
    /// redacted.
    pub async fn resume(
        &self,
        prepared: &Prepared,
        options: &T::Options,
        run: Run,
    ) -> Result<Success<T::Json>, Error> {
        let outcome = self.run(prepared, options, run).await;
        outcome.map_err(|e| self.redact(e))
    }

    /// Takes in the answer to `attempt` (or why there was none): reports it, keeps
    /// what it says about limits, and decides. `Some`: the call's outcome (errors not
    /// yet redacted); `None`: it goes on ([`Self::resume`] waits or refreshes as `run`
    /// now says, then sends again).
    pub fn settle(
        &self,
        prepared: &Prepared,
        run: &mut Run,
        attempt: &Attempted,
        answer: Result<HttpResponse<T::Json>, TransportError>,
    ) -> Option<Result<Success<T::Json>, Error>> {
        let method = prepared.method.as_str();
        let (answer, status) = match answer {
            Ok(response) => {
                let status = response.status;
                (envelope::read(method, prepared.write, response), status)
            }
            Err(e) => (Err(e.into_error(method, prepared.write)), 0),
        };
        let now = self.transport.now_ms();
        self.observe(&RequestEvent {
            method,
            status,
            code: answer.as_ref().err().map_or("", |e| e.code()),
            duration_ms: (now - attempt.sent_at).max(0.0),
            attempt: run.attempt,
            waited_ms: attempt.waited_ms,
        });
        let error = match answer {
            Ok(success) => {
                self.note_time(method, &success);
                if let Some(key) = attempt.outbox {
                    let id = match params::decode(prepared, success.status, success.result.clone())
                    {
                        Ok(Decoded::Number(id)) => Some(id),
                        _ => None,
                    };
                    self.outbox(|o| o.close(key, id, id.is_none()));
                }
                return Some(Ok(success));
            }
            Err(e) => e,
        };
        if let Some(key) = attempt.outbox {
            let unknown = error.outcome() == Outcome::Unknown;
            self.outbox(|o| o.close(key, None, unknown));
        }
        if error
            .code()
            .eq_ignore_ascii_case(codes::QUERY_LIMIT_EXCEEDED)
        {
            if let Some(l) = self.state.borrow_mut().limiter.as_mut() {
                l.saturate(now);
            }
        }
        let facts = policy::Attempt {
            retried: run.retried,
            can_refresh: self.can_refresh(),
            refreshed: run.refreshed,
            reset_in_ms: self.reset_in_ms(method),
            random: self.random(),
        };
        let retry = self.state.borrow().retry;
        match policy::decide(&error, &facts, &retry) {
            Next::Fail => return Some(Err(error)),
            Next::Wait(ms) => {
                run.retried += 1;
                run.backoff_ms = ms;
            }
            Next::RefreshAndRetry => {
                run.refreshed = true;
                run.refresh = Some((attempt.generation, error));
            }
        }
        None
    }

    /// [`Self::refresh`], given up when the call's timeout or signal fires first. The
    /// outer error is the call's (nothing was sent after it); the inner the refresh's.
    async fn bounded_refresh(
        &self,
        seen: u64,
        options: &T::Options,
        prepared: &Prepared,
    ) -> Result<Result<(), String>, Error> {
        let refresh = std::pin::pin!(self.refresh(seen));
        let stopped = std::pin::pin!(self.transport.stopped(options));
        match futures::future::select(refresh, stopped).await {
            futures::future::Either::Left((outcome, _)) => Ok(outcome),
            futures::future::Either::Right((stop, _)) => {
                Err(stop.into_error(&prepared.method, prepared.write))
            }
        }
    }

    /// Adopts the auth source's current token when it changed; returns the generation.
    fn sync_token(&self) -> u64 {
        let current = self.current.as_ref().map(|f| f());
        let mut s = self.state.borrow_mut();
        match current {
            None => {}
            // The source has no valid token: make the next check refresh.
            Some(None) => s.expires_at_ms = Some(0.0),
            Some(Some(token)) => {
                if s.auth.secret() != token.access_token {
                    s.install(token);
                } else {
                    s.expires_at_ms = token.expires_at_ms;
                }
            }
        }
        s.generation
    }

    /// Replaces the token of generation `seen`, sharing one refresh between every call
    /// that saw that token refused. Returns at once if the token changed meanwhile.
    async fn refresh(&self, seen: u64) -> Result<(), String> {
        let pending = {
            let mut s = self.state.borrow_mut();
            if s.generation != seen {
                return Ok(());
            }
            match &s.inflight {
                Some(f) => f.clone(),
                None => {
                    let Some(refresher) = self.refresher.as_ref() else {
                        return Err("no refresh function".to_owned());
                    };
                    let f = refresher().shared();
                    s.inflight = Some(f.clone());
                    f
                }
            }
        };
        let outcome = pending.await;
        let mut s = self.state.borrow_mut();
        // The first caller to wake installs the outcome; the others find it done.
        if s.generation == seen && s.inflight.is_some() {
            s.inflight = None;
            match &outcome {
                Ok(token) if !token.access_token.trim().is_empty() => {
                    s.install(token.clone());
                    s.refreshes += 1;
                }
                Ok(_) => return Err("the refresh function returned no access token".to_owned()),
                Err(_) => {}
            }
        } else if s.generation != seen {
            return Ok(());
        }
        outcome.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Webhook;
    use crate::envelope::Body;
    use futures::channel::oneshot;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use serde_json::{json, Value};
    use std::cell::Cell;
    use std::rc::Rc;

    type Answer = Result<HttpResponse<Value>, TransportError>;
    type Responder = Box<dyn Fn(&Value) -> Answer>;

    /// Answers from a script, recording what was sent.
    #[derive(Default)]
    struct Scripted {
        sent: RefCell<Vec<Value>>,
        urls: RefCell<Vec<String>>,
        answer: Option<Responder>,
        now: Cell<f64>,
        slept: RefCell<Vec<f64>>,
    }

    /// A flat form body as a JSON object (typed calls send flat fields only).
    fn form(body: &str) -> Value {
        let decode = |s: &str| {
            let bytes = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while let Some(&b) = bytes.get(i) {
                if b == b'%' {
                    let hex = s
                        .get(i + 1..i + 3)
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    out.push(hex.unwrap_or(b'%'));
                    i += 3;
                } else {
                    out.push(b);
                    i += 1;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        Value::Object(
            body.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), Value::String(decode(v)))
                })
                .collect(),
        )
    }

    /// A call's stop signal in tests: resolves when the sender fires or is dropped.
    #[derive(Default)]
    struct Stop(Option<Shared<LocalBoxFuture<'static, ()>>>);

    impl Transport for Scripted {
        type Json = Value;
        type Options = Stop;
        fn now_ms(&self) -> f64 {
            self.now.get()
        }
        fn send<'a>(
            &'a self,
            request: &'a HttpRequest,
            _: &'a Stop,
        ) -> LocalBoxFuture<'a, Result<HttpResponse<Value>, TransportError>> {
            let body = form(&request.body);
            self.sent.borrow_mut().push(body.clone());
            self.urls.borrow_mut().push(request.url.clone());
            let answer = self.answer.as_ref().map(|f| f(&body));
            async move {
                YieldOnce(false).await;
                answer.unwrap_or(Err(TransportError::Network {
                    cause: "no script".into(),
                    sent: true,
                }))
            }
            .boxed_local()
        }
        fn sleep<'a>(
            &'a self,
            ms: f64,
            stop: &'a Stop,
        ) -> LocalBoxFuture<'a, Result<(), TransportError>> {
            self.slept.borrow_mut().push(ms);
            let stopped = stop.0.clone();
            async move {
                if let Some(f) = stopped {
                    if f.now_or_never().is_some() {
                        return Err(TransportError::Aborted { sent: false });
                    }
                }
                YieldOnce(false).await;
                self.now.set(self.now.get() + ms);
                Ok(())
            }
            .boxed_local()
        }
        fn stopped<'a>(&'a self, stop: &'a Stop) -> LocalBoxFuture<'a, TransportError> {
            match stop.0.clone() {
                Some(f) => f
                    .map(|()| TransportError::Timeout {
                        ms: 200,
                        sent: false,
                    })
                    .boxed_local(),
                None => futures::future::pending().boxed_local(),
            }
        }
    }

    /// Pending once, then ready: lets concurrent calls interleave like real I/O.
    struct YieldOnce(bool);
    impl std::future::Future for YieldOnce {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                std::task::Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    }

    fn ok(result: Value) -> Result<HttpResponse<Value>, TransportError> {
        Ok(HttpResponse {
            status: 200,
            body: Body::Json(json!({"result": result, "time": {"start": 1, "finish": 1.5}})),
        })
    }

    fn refused(code: &str) -> Result<HttpResponse<Value>, TransportError> {
        Ok(HttpResponse {
            status: 401,
            body: Body::Json(
                json!({"error": code, "error_description": "The access token provided has expired"}),
            ),
        })
    }

    fn tok(s: &str) -> Token {
        Token {
            access_token: s.to_owned(),
            expires_at_ms: None,
        }
    }

    fn seed() -> Prepared {
        params::message_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": "Hello"}))
            .expect("valid")
    }

    fn token_client(
        answer: impl Fn(&Value) -> Result<HttpResponse<Value>, TransportError> + 'static,
        refresher: Option<Refresher>,
    ) -> Client<Scripted> {
        Client::new(
            Scripted {
                answer: Some(Box::new(answer)),
                ..Default::default()
            },
            Auth::token(None, Some("http://127.0.0.1:1/rest/"), "old-token-1", false)
                .expect("auth"),
            refresher,
        )
    }

    #[test]
    fn a_call_returns_the_decoded_result() {
        let c = Client::new(
            Scripted {
                answer: Some(Box::new(|_| ok(json!("19880117")))),
                ..Default::default()
            },
            Auth::Webhook(
                Webhook::parse("http://127.0.0.1:1/rest/1/hooksecret/", false).expect("ok"),
            ),
            None,
        );
        let id = futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        assert_eq!(id, Decoded::Number(19880117));
        assert_eq!(
            c.transport.urls.borrow()[0],
            "http://127.0.0.1:1/rest/1/hooksecret/imopenlines.crm.message.add"
        );
    }

    #[test]
    fn writes_are_sent_once_when_the_answer_is_lost() {
        for failure in [
            TransportError::Network {
                cause: "connection reset".into(),
                sent: true,
            },
            TransportError::Timeout { ms: 50, sent: true },
        ] {
            let f = failure.clone();
            let c = token_client(move |_| Err(f.clone()), None);
            let e =
                futures::executor::block_on(c.call(&seed(), &Stop::default())).expect_err("fails");
            assert_eq!(c.transport.sent.borrow().len(), 1, "sent once: {failure:?}");
            assert!(!e.details().retryable);
            assert!(e.to_string().contains("may have been delivered"));
        }
    }

    #[test]
    fn concurrent_expired_calls_share_one_refresh_and_retry_once_each() {
        let (tx, rx) = oneshot::channel::<Token>();
        let rx = RefCell::new(Some(rx));
        let started = Rc::new(Cell::new(0));
        let started2 = started.clone();
        let refresher: Refresher = Box::new(move || {
            started2.set(started2.get() + 1);
            let rx = rx.borrow_mut().take();
            async move {
                match rx {
                    Some(rx) => rx.await.map_err(|_| "cancelled".to_owned()),
                    None => Err("refresh started twice".to_owned()),
                }
            }
            .boxed_local()
        });
        let client = Rc::new(token_client(
            |body| match body["auth"].as_str() {
                Some("new-token-2") => ok(json!(19880117)),
                _ => refused("expired_token"),
            },
            Some(refresher),
        ));
        let mut pool = LocalPool::new();
        let results = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..8 {
            let (c, r) = (client.clone(), results.clone());
            pool.spawner()
                .spawn_local(async move {
                    let out = c.call(&seed(), &Stop::default()).await;
                    r.borrow_mut().push(out);
                })
                .expect("spawn");
        }
        pool.run_until_stalled();
        assert_eq!(started.get(), 1, "one refresh for all calls in flight");
        assert_eq!(
            client.transport.sent.borrow().len(),
            8,
            "all calls were refused once"
        );
        tx.send(tok("new-token-2")).expect("send");
        pool.run();
        let results = results.borrow();
        assert_eq!(results.len(), 8);
        assert!(
            results.iter().all(|r| r == &Ok(Decoded::Number(19880117))),
            "{results:?}"
        );
        assert_eq!(
            client.transport.sent.borrow().len(),
            16,
            "each call retried exactly once"
        );
        assert_eq!(client.refreshes(), 1);
    }

    #[test]
    fn a_second_refusal_after_refresh_is_returned_not_looped() {
        let client = token_client(
            |_| refused("expired_token"),
            Some(Box::new(|| {
                async { Ok(tok("another-token")) }.boxed_local()
            })),
        );
        let e =
            futures::executor::block_on(client.call(&seed(), &Stop::default())).expect_err("fails");
        assert_eq!(e.code(), "expired_token");
        assert_eq!(client.transport.sent.borrow().len(), 2);
    }

    #[test]
    fn a_failed_refresh_keeps_the_portal_code_and_hides_tokens() {
        let client = token_client(
            |_| refused("expired_token"),
            Some(Box::new(|| {
                async { Err("refresh endpoint said no for old-token-1".to_owned()) }.boxed_local()
            })),
        );
        let e =
            futures::executor::block_on(client.call(&seed(), &Stop::default())).expect_err("fails");
        assert_eq!(e.code(), "expired_token");
        assert_eq!(e.kind(), "auth");
        assert!(
            e.to_string().contains("refreshing the access token failed"),
            "{e}"
        );
        assert!(!e.to_string().contains("old-token-1"), "{e}");
        assert_eq!(
            client.transport.sent.borrow().len(),
            1,
            "not sent again after a failed refresh"
        );
    }

    #[test]
    fn webhooks_never_refresh() {
        let calls = Rc::new(Cell::new(0));
        let calls2 = calls.clone();
        let c = Client::new(
            Scripted {
                answer: Some(Box::new(|_| refused("expired_token"))),
                ..Default::default()
            },
            Auth::Webhook(Webhook::parse("http://h/rest/1/s/", true).expect("ok")),
            Some(Box::new(move || {
                calls2.set(calls2.get() + 1);
                async { Ok(tok("x")) }.boxed_local()
            })),
        );
        assert!(futures::executor::block_on(c.call(&seed(), &Stop::default())).is_err());
        assert_eq!(calls.get(), 0);
    }

    #[test]
    fn the_call_deadline_bounds_a_pending_refresh_and_nothing_is_sent_after_it() {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let stop = Stop(Some(stop_rx.map(|_| ()).boxed_local().shared()));
        // A refresh that never settles.
        let c = token_client(
            |_| refused("expired_token"),
            Some(Box::new(|| futures::future::pending().boxed_local())),
        );
        let mut pool = LocalPool::new();
        let out = Rc::new(RefCell::new(None));
        let (c, o) = (Rc::new(c), out.clone());
        let c2 = c.clone();
        pool.spawner()
            .spawn_local(async move {
                *o.borrow_mut() = Some(c2.call(&seed(), &stop).await);
            })
            .expect("spawn");
        pool.run_until_stalled();
        assert_eq!(c.transport.sent.borrow().len(), 1, "the first attempt only");
        assert!(out.borrow().is_none(), "waiting for the refresh");
        stop_tx.send(()).expect("stop");
        pool.run_until_stalled();
        let e = out
            .borrow_mut()
            .take()
            .expect("settled")
            .expect_err("timed out");
        assert_eq!(e.code(), "TIMEOUT");
        assert_eq!(e.outcome(), Outcome::NotExecuted, "{e}");
        assert!(e.details().retryable, "nothing ran: safe to send again");
        assert!(!e.to_string().contains("may have been delivered"), "{e}");
        assert_eq!(
            c.transport.sent.borrow().len(),
            1,
            "nothing sent after the deadline"
        );
    }

    #[test]
    fn errors_are_redacted_of_current_and_replaced_tokens() {
        let c = token_client(
            |body| match body["auth"].as_str() {
                Some("old-token-1") => refused("invalid_token"),
                _ => Err(TransportError::Network {
                    cause: "socket closed while sending auth=fresh-token-3 and old-token-1".into(),
                    sent: true,
                }),
            },
            Some(Box::new(|| {
                async { Ok(tok("fresh-token-3")) }.boxed_local()
            })),
        );
        let e = futures::executor::block_on(c.call(&seed(), &Stop::default())).expect_err("fails");
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("fresh-token-3") && !shown.contains("old-token-1"),
            "{shown}"
        );
        assert!(format!("{c:?}").contains("***"));
    }

    fn counting_refresher(count: Rc<Cell<u32>>, token: &'static str, expires: f64) -> Refresher {
        Box::new(move || {
            count.set(count.get() + 1);
            async move {
                Ok(Token {
                    access_token: token.to_owned(),
                    expires_at_ms: Some(expires),
                })
            }
            .boxed_local()
        })
    }

    fn answer_for(token: &'static str) -> impl Fn(&Value) -> Answer {
        move |body: &Value| {
            if body["auth"] == token {
                ok(json!(1))
            } else {
                refused("expired_token")
            }
        }
    }

    #[test]
    fn a_known_expiry_is_refreshed_before_sending() {
        let count = Rc::new(Cell::new(0));
        let c = token_client(
            answer_for("t2"),
            Some(counting_refresher(count.clone(), "t2", 5_000.0)),
        );
        c.transport.now.set(10_000.0);
        c.state.borrow_mut().expires_at_ms = Some(9_000.0);
        futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        assert_eq!(count.get(), 1);
        let sent = c.transport.sent.borrow();
        assert_eq!(sent.len(), 1, "no request went out with the expired token");
        assert_eq!(sent[0]["auth"], "t2");
    }

    #[test]
    fn the_sources_current_token_is_adopted_without_a_refresh() {
        let count = Rc::new(Cell::new(0));
        let source_token = Rc::new(RefCell::new(Some(tok("rotated-elsewhere"))));
        let reader = source_token.clone();
        let c = token_client(
            answer_for("rotated-elsewhere"),
            Some(counting_refresher(count.clone(), "x", 0.0)),
        )
        .with_current(Box::new(move || reader.borrow().clone()));
        futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        assert_eq!(count.get(), 0);
        assert_eq!(c.transport.sent.borrow()[0]["auth"], "rotated-elsewhere");

        // The source says it has no valid token: refresh before sending.
        *source_token.borrow_mut() = None;
        let c = token_client(
            answer_for("x"),
            Some(counting_refresher(count.clone(), "x", f64::MAX)),
        )
        .with_current(Box::new(move || source_token.borrow().clone()));
        futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        assert_eq!(count.get(), 1);
        assert_eq!(c.transport.sent.borrow().len(), 1);
    }

    fn limited(code: &str, status: u16) -> Answer {
        Ok(HttpResponse {
            status,
            body: Body::Json(json!({"error": code, "error_description": "Too many requests"})),
        })
    }

    /// A webhook client answering from `script` in turn (the last answer repeats).
    fn scripted(script: Vec<Answer>) -> Client<Scripted> {
        let step = Cell::new(0usize);
        Client::new(
            Scripted {
                answer: Some(Box::new(move |_| {
                    let i = step.get();
                    step.set(i + 1);
                    script
                        .get(i)
                        .or(script.last())
                        .cloned()
                        .unwrap_or_else(|| ok(json!(1)))
                })),
                ..Default::default()
            },
            Auth::Webhook(
                Webhook::parse("http://127.0.0.1:1/rest/1/hooksecret/", false).expect("ok"),
            ),
            None,
        )
    }

    #[test]
    fn limit_refusals_are_sent_again_after_a_wait_and_reported() {
        let events = Rc::new(RefCell::new(Vec::new()));
        let log = events.clone();
        let c = scripted(vec![
            limited("QUERY_LIMIT_EXCEEDED", 503),
            limited("OPERATION_TIME_LIMIT", 429),
            ok(json!(19880117)),
        ])
        .with_observer(Box::new(move |e| {
            log.borrow_mut()
                .push((e.attempt, e.status, e.code.to_owned(), e.waited_ms))
        }));
        let id = futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        assert_eq!(id, Decoded::Number(19880117));
        assert_eq!(c.transport.sent.borrow().len(), 3);
        let events = events.borrow();
        let seen: Vec<_> = events
            .iter()
            .map(|(a, s, c, _)| (*a, *s, c.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, 503, "QUERY_LIMIT_EXCEEDED"),
                (2, 429, "OPERATION_TIME_LIMIT"),
                (3, 200, "")
            ]
        );
        assert_eq!(events[0].3, 0.0, "the first attempt went at once");
        assert!(
            events[1].3 >= 500.0,
            "after a 503 the bucket counts as full: {}",
            events[1].3
        );
    }

    /// Sends the first attempt "by hand" (as the JS layer does) with `answer`, and
    /// returns what settling it decided.
    fn first_by_hand(
        c: &Client<Scripted>,
        run: &mut Run,
        answer: Answer,
    ) -> (String, Option<Result<Success<Value>, Error>>) {
        let attempt = c.try_now(&seed(), run).expect("nothing to wait for");
        (
            attempt.request.body.clone(),
            c.settle(&seed(), run, &attempt, answer),
        )
    }

    #[test]
    fn a_first_attempt_sent_by_hand_goes_on_with_the_same_retry_budget() {
        let events = Rc::new(RefCell::new(Vec::new()));
        let log = events.clone();
        // The transport answers only the resumed attempts.
        let c = scripted(vec![limited("QUERY_LIMIT_EXCEEDED", 503), ok(json!(7))])
            .with_retry(Retry {
                retries: 2,
                ..Retry::DEFAULT
            })
            .with_observer(Box::new(move |e| {
                log.borrow_mut().push((e.attempt, e.code.to_owned()))
            }));
        let mut run = Run::default();
        let (body, done) = first_by_hand(&c, &mut run, limited("QUERY_LIMIT_EXCEEDED", 503));
        assert!(body.contains("MESSAGE=Hello"), "{body}");
        assert!(done.is_none(), "a limit refusal is sent again");
        let success = futures::executor::block_on(c.resume(&seed(), &Stop::default(), run))
            .expect("third attempt succeeds");
        assert_eq!(success.result, json!(7));
        assert_eq!(c.transport.sent.borrow().len(), 2, "two more, not three");
        let codes: Vec<_> = events.borrow().iter().map(|(a, _)| *a).collect();
        assert_eq!(codes, vec![1, 2, 3], "attempts are numbered across both");
        assert!(
            c.transport
                .slept
                .borrow()
                .first()
                .is_some_and(|&ms| ms > 0.0),
            "the resumed call backs off first"
        );

        // With the budget spent by hand, resuming fails instead of sending a third time.
        let c = scripted(vec![limited("QUERY_LIMIT_EXCEEDED", 503)]).with_retry(Retry {
            retries: 1,
            ..Retry::DEFAULT
        });
        let mut run = Run::default();
        assert!(
            first_by_hand(&c, &mut run, limited("QUERY_LIMIT_EXCEEDED", 503))
                .1
                .is_none()
        );
        let e = futures::executor::block_on(c.resume(&seed(), &Stop::default(), run))
            .expect_err("out of retries");
        assert_eq!(e.code(), "QUERY_LIMIT_EXCEEDED");
        assert_eq!(c.transport.sent.borrow().len(), 1);
    }

    #[test]
    fn an_unknown_outcome_by_hand_is_final_and_a_busy_limiter_defers_to_resume() {
        let c = scripted(vec![ok(json!(1))]).with_limits(Limits::new(2.0, 1.0));
        let mut run = Run::default();
        let lost = Err(TransportError::Timeout { ms: 5, sent: true });
        let (_, done) = first_by_hand(&c, &mut run, lost);
        let e = done.expect("final").expect_err("timed out");
        assert_eq!(e.outcome(), Outcome::Unknown);
        // The bucket (capacity 1) is now taken: the next call cannot go at once, and
        // trying reserved nothing.
        let mut run = Run::default();
        assert!(c.try_now(&seed(), &mut run).is_none());
        futures::executor::block_on(c.resume(&seed(), &Stop::default(), run)).expect("sent");
        assert_eq!(c.transport.sent.borrow().len(), 1);
        assert!(
            c.transport.slept.borrow().iter().sum::<f64>() > 0.0,
            "resume waited for the limiter"
        );
    }

    #[test]
    fn a_token_refused_by_hand_is_refreshed_once_by_resume() {
        let count = Rc::new(Cell::new(0));
        let c = token_client(
            answer_for("new-token-2"),
            Some(counting_refresher(count.clone(), "new-token-2", 1e18)),
        );
        let mut run = Run::default();
        let (body, done) = first_by_hand(&c, &mut run, refused("expired_token"));
        assert!(body.contains("auth=old-token-1"));
        assert!(done.is_none(), "refresh and repeat");
        futures::executor::block_on(c.resume(&seed(), &Stop::default(), run)).expect("ok");
        assert_eq!(count.get(), 1);
        let sent = c.transport.sent.borrow();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["auth"], "new-token-2");
    }

    #[test]
    fn limit_retries_are_bounded_and_then_reach_the_caller() {
        let c = scripted(vec![limited("QUERY_LIMIT_EXCEEDED", 503)]);
        let e = futures::executor::block_on(c.call(&seed(), &Stop::default())).expect_err("fails");
        assert_eq!(e.code(), "QUERY_LIMIT_EXCEEDED");
        assert_eq!(e.outcome(), Outcome::NotExecuted);
        assert_eq!(
            c.transport.sent.borrow().len(),
            4,
            "one try and three retries"
        );
        let c = scripted(vec![limited("QUERY_LIMIT_EXCEEDED", 503)]).with_retry(Retry::NEVER);
        futures::executor::block_on(c.call(&seed(), &Stop::default())).expect_err("fails");
        assert_eq!(c.transport.sent.borrow().len(), 1);
    }

    #[test]
    fn unknown_outcomes_are_never_sent_again() {
        for lost in [
            Err(TransportError::Network {
                cause: "other side closed".into(),
                sent: true,
            }),
            limited("INTERNAL_SERVER_ERROR", 500),
            Ok(HttpResponse {
                status: 200,
                body: Body::NotJson {
                    content_type: String::new(),
                    len: 10,
                },
            }),
        ] {
            let c = scripted(vec![lost, ok(json!(1))]);
            let e =
                futures::executor::block_on(c.call(&seed(), &Stop::default())).expect_err("fails");
            assert_eq!(e.outcome(), Outcome::Unknown, "{e}");
            assert_eq!(c.transport.sent.borrow().len(), 1, "{e}");
        }
    }

    #[test]
    fn the_limiter_spaces_a_client_s_requests_and_can_be_switched_off() {
        let c =
            scripted(vec![ok(json!(1))]).with_limits(Some(Limits::new(3.0, 10.0).expect("valid")));
        for _ in 0..5 {
            futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        }
        // Two places at once (one kept spare), then one per 100 ms.
        let slept = c.transport.slept.borrow().clone();
        assert_eq!(slept.len(), 3, "{slept:?}");
        assert!(
            slept.iter().all(|ms| (*ms - 100.0).abs() < 1e-6),
            "{slept:?}"
        );
        let c = scripted(vec![ok(json!(1))]).with_limits(None);
        for _ in 0..100 {
            futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        }
        assert!(c.transport.slept.borrow().is_empty());
    }

    #[test]
    fn a_call_stopped_while_waiting_for_the_limiter_sends_nothing() {
        let c =
            scripted(vec![ok(json!(1))]).with_limits(Some(Limits::new(2.0, 1.0).expect("valid")));
        futures::executor::block_on(c.call(&seed(), &Stop::default())).expect("ok");
        let (tx, rx) = oneshot::channel::<()>();
        drop(tx);
        let stop = Stop(Some(rx.map(|_| ()).boxed_local().shared()));
        let e = futures::executor::block_on(c.call(&seed(), &stop)).expect_err("stopped");
        assert_eq!(e.outcome(), Outcome::NotExecuted);
        assert!(e.to_string().contains("nothing was sent"), "{e}");
        assert_eq!(c.transport.sent.borrow().len(), 1);
    }
}
