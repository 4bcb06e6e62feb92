//! One logical REST call: its waits, its share of the refresh, its attempts.
//!
//! ```text
//!            ┌──────────── limit refusal (policy: wait) ────────────┐
//!            ▼                                                      │
//!  new ─▶ Backoff ─▶ (limiter) Paced ─▶ Ready ─▶ InFlight ─▶ answer ┤─▶ Settled
//!                                        │  ▲                        │
//!                      token due to expire│  │token changed           │token refused
//!                                        ▼  │                        ▼
//!                                      Refresh ◀─────────────────────┘
//! ```
//!
//! Every state but `InFlight` ends the exchange, not sent, when the call's deadline
//! passes or its signal fires; a request in flight is cancelled then and counts as
//! sent. What the answer means (refresh and repeat, wait and repeat, or an outcome) is
//! [`crate::policy::decide`]'s, as before the machine.

use super::{refresh_error, Action, Ms, Outcome2, ReqId, Shared};
use crate::envelope::{self, HttpResponse};
use crate::error::{codes, Error, Outcome, Unanswered};
use crate::json::Json;
use crate::outbox::Sent;
use crate::params::Prepared;
use crate::policy::{self, Next};
use crate::wire;

/// What an exchange did when moved on.
#[derive(Debug)]
pub(crate) enum Poll {
    /// It waits (a time, a token or an answer).
    Pending,
    /// It sent this request.
    Sent(ReqId),
    /// It ended.
    Ended(Outcome2),
}

/// What follows a refresh.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// The limiter and then the attempt (a repeat after a refused token).
    Pace,
    /// The attempt at once (a token due to expire before sending: the limiter was
    /// passed already), having waited this long.
    Send(Ms),
}

#[derive(Debug)]
enum State {
    Refresh {
        seen: u64,
        refusal: Option<Error>,
        then: Then,
    },
    Backoff {
        until: Ms,
        since: Ms,
    },
    Paced {
        until: Ms,
        since: Ms,
    },
    Ready {
        waited: Ms,
    },
    InFlight {
        req: ReqId,
        generation: u64,
        sent_at: Ms,
        waited: Ms,
        outbox: Option<u64>,
    },
    Settled(Option<Outcome2>),
}

/// One logical call in progress.
#[derive(Debug)]
pub(crate) struct Exchange {
    op: super::OpId,
    prepared: Prepared,
    deadline: Ms,
    timeout_ms: u32,
    refreshed: bool,
    /// Whether the one extra refresh after a refused stored token was used.
    second: bool,
    retried: u32,
    attempt: u32,
    state: State,
}

impl Exchange {
    /// `prepared`, to be answered by `deadline` (a timeout of `timeout_ms`, as the
    /// error says), starting at `now`.
    pub(crate) fn new(
        op: super::OpId,
        prepared: Prepared,
        deadline: Ms,
        timeout_ms: u32,
        now: Ms,
    ) -> Exchange {
        Exchange {
            op,
            prepared,
            deadline,
            timeout_ms,
            refreshed: false,
            second: false,
            retried: 0,
            attempt: 0,
            state: State::Backoff {
                until: now,
                since: now,
            },
        }
    }

    /// When this exchange wants to be moved on, at the latest.
    pub(crate) fn wake(&self) -> Ms {
        match &self.state {
            State::Backoff { until, .. } | State::Paced { until, .. } => until.min(self.deadline),
            State::Settled(_) => 0.0,
            _ => self.deadline,
        }
    }

    /// The request in flight, if one is.
    pub(crate) fn in_flight(&self) -> Option<ReqId> {
        match self.state {
            State::InFlight { req, .. } => Some(req),
            _ => None,
        }
    }

    /// The request in flight past the deadline, if there is one.
    pub(crate) fn overdue(&self, now: Ms) -> Option<ReqId> {
        self.in_flight().filter(|_| now >= self.deadline)
    }

    /// The error of a request that failed on the network (`cause`, the runtime's text).
    pub(crate) fn network_error(&self, cause: &str, sent: bool) -> Error {
        let p = &self.prepared;
        Error::unanswered(&p.method, Unanswered::Network, cause, sent, p.write)
    }

    fn stopped(&self, timeout: bool, sent: bool) -> Error {
        let p = &self.prepared;
        if timeout {
            let ms = crate::text::decimal(u64::from(self.timeout_ms));
            Error::unanswered(&p.method, Unanswered::Timeout, &ms, sent, p.write)
        } else {
            Error::unanswered(&p.method, Unanswered::Aborted, "", sent, p.write)
        }
    }

    /// Stops the request in flight: the deadline passed (`timeout`) or the signal
    /// fired. Unless the host said it has not handed it to the network yet
    /// (`Shared::unsent`), it had left, so its outcome is what the portal may have done.
    pub(crate) fn stop_in_flight(&mut self, shared: &mut Shared, timeout: bool, now: Ms) {
        if let Some(req) = self.in_flight() {
            let left = !shared.unsent.contains(&req);
            let error = self.stopped(timeout, left);
            // Reported when the host says the request had left (see `Shared::held`);
            // one that never left was never an exchange.
            shared.holding = Some(req);
            self.settle(shared, req, Err(error), now);
            shared.holding = None;
            if !left {
                shared.held.retain(|(r, _)| *r != req);
            }
        }
    }

    /// Moves the exchange on at `now`.
    pub(crate) fn poll(&mut self, shared: &mut Shared, aborted: bool, now: Ms) -> Poll {
        loop {
            match &mut self.state {
                State::Settled(outcome) => {
                    return match outcome.take() {
                        Some(o) => Poll::Ended(o),
                        None => Poll::Pending,
                    }
                }
                State::InFlight { .. } => return Poll::Pending,
                _ if aborted || now >= self.deadline => {
                    if matches!(self.state, State::Paced { .. }) {
                        // Its place in the limiter is given back: nothing is sent.
                        if let Some(l) = shared.limiter.as_mut() {
                            l.release(now);
                        }
                    }
                    let error = self.stopped(!aborted, false);
                    self.state = State::Settled(None);
                    return Poll::Ended(Err(error));
                }
                State::Refresh {
                    seen,
                    refusal,
                    then,
                } => {
                    if shared.generation != *seen {
                        self.state = match *then {
                            Then::Pace => State::Backoff {
                                until: now,
                                since: now,
                            },
                            Then::Send(waited) => State::Ready { waited },
                        };
                        // A token due before sending was just refreshed: send.
                        if let State::Ready { .. } = self.state {
                            return self.send(shared, now);
                        }
                        continue;
                    }
                    if let Some(cause) = shared.refresh_failed(*seen) {
                        let error = refresh_error(&self.prepared, refusal.as_ref(), cause);
                        self.state = State::Settled(None);
                        return Poll::Ended(Err(error));
                    }
                    shared.ask_token(now);
                    return Poll::Pending;
                }
                State::Backoff { until, since } => {
                    if now < *until {
                        return Poll::Pending;
                    }
                    let (backed_off, since) = (*until > *since, *since);
                    let wait = shared.limiter.as_mut().map_or(0.0, |l| l.reserve(now));
                    self.state = if wait > 0.0 {
                        State::Paced {
                            until: now + wait,
                            since,
                        }
                    } else {
                        State::Ready {
                            waited: if backed_off { now - since } else { 0.0 },
                        }
                    };
                }
                State::Paced { until, since } => {
                    if now < *until {
                        return Poll::Pending;
                    }
                    self.state = State::Ready {
                        waited: (now - *since).max(0.0),
                    };
                }
                State::Ready { waited } => {
                    let waited = *waited;
                    if !self.refreshed && shared.refresh_due(now) {
                        self.refreshed = true;
                        self.state = State::Refresh {
                            seen: shared.generation,
                            refusal: None,
                            then: Then::Send(waited),
                        };
                        continue;
                    }
                    return self.send(shared, now);
                }
            }
        }
    }

    /// Sends the next attempt with the current token.
    fn send(&mut self, shared: &mut Shared, now: Ms) -> Poll {
        let waited = match self.state {
            State::Ready { waited } => waited,
            _ => 0.0,
        };
        self.attempt += 1;
        let outbox = Sent::of(&self.prepared).map(|sent| shared.outbox.enter(sent));
        let request = wire::encode(&shared.auth, &self.prepared);
        let req = shared.new_req();
        shared.out.push_back(Action::Send {
            req,
            op: self.op,
            url: request.url,
            body: request.body,
        });
        self.state = State::InFlight {
            req,
            generation: shared.generation,
            sent_at: now,
            waited,
            outbox,
        };
        Poll::Sent(req)
    }

    /// Takes in the answer to request `req` (or why there was none): reports it,
    /// keeps what it says about limits, and decides. `false` when `req` is not the
    /// request in flight.
    pub(crate) fn settle(
        &mut self,
        shared: &mut Shared,
        req: ReqId,
        answer: Result<HttpResponse<Json>, Error>,
        now: Ms,
    ) -> bool {
        let State::InFlight {
            req: current,
            generation,
            sent_at,
            waited,
            outbox,
        } = self.state
        else {
            return false;
        };
        if current != req {
            return false;
        }
        let (method, write) = (self.prepared.method.as_str(), self.prepared.write);
        let (answer, status) = match answer {
            Ok(response) => {
                let status = response.status;
                (envelope::read(method, write, response), status)
            }
            Err(e) => (Err(e), 0),
        };
        let attempt = self.attempt;
        shared.report(|| super::Report {
            method: method.to_owned(),
            status,
            code: answer
                .as_ref()
                .err()
                .map_or(String::new(), |e| e.code().to_owned()),
            duration_ms: (now - sent_at).max(0.0),
            attempt,
            waited_ms: waited,
        });
        let error = match answer {
            Ok(success) => {
                shared.note_time(method, &success);
                if let Some(key) = outbox {
                    let id = super::id_of(&self.prepared, &success);
                    shared.outbox.close(key, id, id.is_none());
                }
                self.state = State::Settled(Some(Ok(success)));
                return true;
            }
            Err(e) => e,
        };
        if let Some(key) = outbox {
            shared
                .outbox
                .close(key, None, error.outcome() == Outcome::Unknown);
        }
        if error
            .code()
            .eq_ignore_ascii_case(codes::QUERY_LIMIT_EXCEEDED)
        {
            if let Some(l) = shared.limiter.as_mut() {
                l.saturate(now);
            }
        }
        // A token taken from the store (another client's refresh) that the portal
        // refuses does not use up this call's refresh, nor does one replaced while the
        // request was out: once, the call goes again with the current token (refreshing
        // only if it is still the refused one).
        let replaced = shared.adopted == Some(generation) || shared.generation != generation;
        let adopted = self.refreshed && !self.second && replaced;
        if adopted {
            self.second = true;
        }
        let facts = policy::Attempt {
            retried: self.retried,
            can_refresh: shared.can_refresh(),
            refreshed: self.refreshed && !adopted,
            reset_in_ms: shared.reset_in_ms(method),
            random: shared.random(),
        };
        self.state = match policy::decide(&error, &facts, &shared.retry) {
            Next::Fail => State::Settled(Some(Err(error))),
            Next::Wait(ms) => {
                self.retried += 1;
                State::Backoff {
                    until: now + ms,
                    since: now,
                }
            }
            Next::RefreshAndRetry => {
                self.refreshed = true;
                State::Refresh {
                    seen: generation,
                    refusal: Some(error),
                    then: Then::Pace,
                }
            }
        };
        true
    }
}
