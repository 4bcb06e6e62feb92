//! A message with verified delivery, as data (the rules are [`crate::verify`]'s).
//!
//! ```text
//!  Mark ─▶ Send ─▶ id ─────────────────────────────────────────────▶ delivered
//!           │ ▲     other error ───────────────────────────────────▶ failed
//!           │ │
//!           │ └─ proven absent (at most 3 sends) ◀─┐
//!           ▼ unknown                               │
//!         Read 0 ─ found ─▶ delivered               │
//!           │ not ended (timeout, abort) ──────────────────────────▶ unknown, still running
//!           ▼                                       │
//!         Settle (settleMs) ─▶ Read 1 ─ found ─▶ delivered
//!                                │ other messages by the author ───▶ unknown, candidates
//!                                └─ absent ─────────┘
//! ```
//!
//! Any read that fails, or the signal during the settle window, leaves the outcome
//! unknown with the send's own error.

use super::{Ms, Outcome2, Shared, Step};
use crate::error::{Error, Outcome};
use crate::outbox::Sent;
use crate::params::{self, Decoded, Prepared};
use crate::verify::{self, Look};

/// A sub-program's next move: an exchange, a wait, or its end.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Run this exchange (its deadline extended by the `u32` milliseconds).
    Call(Prepared, u32),
    /// Wake at this time.
    Wait(Ms),
    /// Ended: the id and whether reading the chat established it, or the error.
    End(Result<(u64, bool), Error>),
}

impl Flow {
    pub(crate) fn into_step(self, end: impl FnOnce(Result<(u64, bool), Error>) -> Step) -> Step {
        match self {
            Flow::Call(p, watch) => Step::Call(p, watch),
            Flow::Wait(at) => Step::Wait(at),
            Flow::End(r) => end(r),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Mark,
    Send,
    Read { pass: u8, from: u64 },
    Settle,
}

/// A verified send in progress.
#[derive(Debug)]
pub struct VerifySend {
    prepared: Prepared,
    sent: Option<Sent>,
    settle_ms: u32,
    mark: u64,
    claimed: Vec<u64>,
    sends: u32,
    phase: Phase,
    unknown: Option<Error>,
    history: Vec<(u64, u64, String)>,
}

impl VerifySend {
    /// A single verified send: the chat's watermark first.
    pub(crate) fn single(prepared: Prepared, settle_ms: u32) -> VerifySend {
        VerifySend {
            sent: Sent::of(&prepared),
            prepared,
            settle_ms,
            mark: 0,
            claimed: Vec::new(),
            sends: 0,
            phase: Phase::Mark,
            unknown: None,
            history: Vec::new(),
        }
    }

    /// The first move (of a single send: its result as the call's answer).
    pub(crate) fn begin(&mut self, _shared: &mut Shared, _now: Ms) -> Step {
        self.start().into_step(single_end)
    }

    pub(crate) fn start(&mut self) -> Flow {
        let Some(sent) = &self.sent else {
            let method = &self.prepared.method;
            return Flow::End(Err(Error::no_auth(method, "not a message to verify")));
        };
        match self.phase {
            Phase::Mark => Flow::Call(verify::watermark_call(sent.chat_id), 0),
            _ => self.send(),
        }
    }

    fn send(&mut self) -> Flow {
        self.sends += 1;
        self.phase = Phase::Send;
        Flow::Call(self.prepared.clone(), self.settle_ms)
    }

    fn read(&mut self, pass: u8, from: u64) -> Flow {
        if from == self.mark {
            self.history.clear();
        }
        self.phase = Phase::Read { pass, from };
        let chat = self.sent.as_ref().map_or(0, |s| s.chat_id);
        Flow::Call(verify::after_call(chat, from), 0)
    }

    fn unknown(&mut self) -> Error {
        self.unknown
            .take()
            .unwrap_or_else(|| Error::no_auth(&self.prepared.method, "no outcome"))
    }

    pub(crate) fn on_outcome(&mut self, shared: &mut Shared, outcome: Outcome2, now: Ms) -> Step {
        self.next(shared, outcome, now).into_step(single_end)
    }

    pub(crate) fn on_wake(&mut self, _shared: &mut Shared, on_time: bool, _now: Ms) -> Step {
        self.woke(on_time).into_step(single_end)
    }

    /// The settle window ended (`on_time`) or the signal cut it short.
    pub(crate) fn woke(&mut self, on_time: bool) -> Flow {
        if !on_time || self.phase != Phase::Settle {
            return Flow::End(Err(self.unknown()));
        }
        self.read(1, self.mark)
    }

    /// The next move after an exchange ended.
    pub(crate) fn next(&mut self, shared: &mut Shared, outcome: Outcome2, now: Ms) -> Flow {
        match self.phase {
            Phase::Mark => Flow::End(match outcome {
                Ok(success) => match verify::watermark(&success.result) {
                    Some(mark) => {
                        self.mark = mark;
                        return self.send();
                    }
                    None => Err(Error::bad_response(
                        verify::HISTORY,
                        200,
                        "a history without a message list",
                        false,
                    )),
                },
                Err(e) => Err(e),
            }),
            Phase::Send => {
                let verified = self.sends > 1;
                let answer = outcome.and_then(|success| {
                    params::decode(&self.prepared, success.status, success.result)
                });
                let e = match answer {
                    Ok(Decoded::Number(id)) => return Flow::End(Ok((id, verified))),
                    Ok(_) => Error::bad_response(
                        &self.prepared.method,
                        200,
                        "a result that is not an id",
                        true,
                    ),
                    Err(e) => e,
                };
                if e.outcome() != Outcome::Unknown {
                    return Flow::End(Err(verify::with_verified(e, verified)));
                }
                self.unknown = Some(e);
                self.read(0, self.mark)
            }
            Phase::Read { pass, from } => {
                let Ok(success) = outcome else {
                    return Flow::End(Err(self.unknown()));
                };
                let (list, next) = verify::page(&success.result, from);
                self.history.extend(list);
                if let Some(from) = next {
                    return self.read(pass, from);
                }
                self.judged(shared, pass, now)
            }
            Phase::Settle => Flow::End(Err(self.unknown())),
        }
    }

    fn judged(&mut self, shared: &mut Shared, pass: u8, now: Ms) -> Flow {
        let Some(sent) = &self.sent else {
            return Flow::End(Err(self.unknown()));
        };
        let look = verify::judge(&self.history, sent, &self.claimed, &shared.outbox);
        if let Look::Found(id) = look {
            shared.outbox.settled(sent, Some(id));
            return Flow::End(Ok((id, true)));
        }
        if pass == 0 {
            let unknown = self.unknown();
            // Still running when the call gave up: it may store its message yet.
            if !verify::ended(&unknown) {
                return Flow::End(Err(unknown.still_running()));
            }
            self.unknown = Some(unknown);
            self.phase = Phase::Settle;
            return Flow::Wait(now + f64::from(self.settle_ms.max(1)));
        }
        match look {
            Look::Unproven(others) => Flow::End(Err(self.unknown().with_candidates(others))),
            _ if self.sends >= verify::MAX_SENDS => Flow::End(Err(self.unknown())),
            _ => {
                // Proven absent: sending again cannot duplicate it.
                shared.outbox.settled(sent, None);
                self.unknown = None;
                self.send()
            }
        }
    }
}

/// A single verified send's end as the call's answer: the id's text.
fn single_end(result: Result<(u64, bool), Error>) -> Step {
    Step::Done(result.map(|(id, _)| super::Answer::Text(crate::text::decimal(id))))
}
