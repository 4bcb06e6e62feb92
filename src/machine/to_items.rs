//! Many messages to CRM items' customers, as data: [`super::to_item`]'s decisions for a
//! list, in batches.
//!
//! ```text
//!  Sender (user.current, once per client, when an item needs it)
//!    ─▶ Reads: imopenlines.crm.chat.get, one command per distinct item, 50 a request
//!    ─▶ Explain: ACTIVE_ONLY=N for the items with no chat that fits (their error)
//!    ─▶ Joins (`join`): imopenlines.crm.chat.user.add per distinct sender and chat
//!       (WRONG_REQUEST: already a member)
//!    ─▶ Sending: a mass send ([`super::mass`]: batches of 50, `halt`, `verify`)
//!    ─▶ the messages whose chat ended meanwhile (CHAT_NOT_IN_CRM, chosen here):
//!       Reads ─▶ Joins ─▶ Sending once more, those only ─▶ done
//! ```
//!
//! Joining before sending costs one command per sender and chat, and saves the round
//! of refusals and resends that joining on `CANCELED` would take for a whole batch.
//! A join the portal refuses does not stop the message (the sender may be a member all
//! the same); if the portal then refuses the message, its error is `CANNOT_JOIN` with
//! the join's reason.

use super::batch::BatchRun;
use super::to_item::{self, Delivered, ENDED};
use super::{Action, Answer, Ms, OpId, Outcome2, Shared, Step};
use crate::auth::Auth;
use crate::batch::{tally, Command, Item};
use crate::error::Error;
use crate::json::Json;
use crate::params::{self, Chat, Prepared, ToItem};
use crate::text;

#[derive(Debug)]
enum Phase {
    Sender,
    /// Reading the chats of `items` (distinct CRM items), all or active only.
    Reads {
        run: BatchRun,
        items: Vec<usize>,
        all: bool,
    },
    /// Adding senders: `(user, chat, item)` of each command.
    Joins {
        run: BatchRun,
        pairs: Vec<(u64, u64, usize)>,
    },
    /// A mass send of `round` (item indices, in order).
    Sending {
        mass: Box<super::MassSend>,
        round: Vec<usize>,
    },
    Done,
}

/// One item's state.
#[derive(Debug)]
struct Entry {
    to: Result<ToItem, Error>,
    user: u64,
    chat: u64,
    connector: Option<(String, String)>,
    chosen: bool,
    ended: Vec<u64>,
    joined: bool,
    /// Why the portal would not add the sender (kept for a refused message).
    join_error: Option<Error>,
    result: Option<Result<(u64, bool), Error>>,
}

/// Messages to CRM items in progress.
#[derive(Debug)]
pub struct ItemsSend {
    entries: Vec<Entry>,
    join: bool,
    halt: bool,
    settle_ms: Option<u32>,
    /// Items waiting for their chat in this round.
    pending: Vec<usize>,
    first_round: bool,
    phase: Phase,
}

impl ItemsSend {
    pub(crate) fn new(
        items: Vec<Result<ToItem, Error>>,
        join: bool,
        halt: bool,
        settle_ms: Option<u32>,
    ) -> ItemsSend {
        let entries = items
            .into_iter()
            .map(|to| Entry {
                user: to.as_ref().ok().and_then(|t| t.user).unwrap_or(0),
                chat: to.as_ref().ok().and_then(|t| t.chat).unwrap_or(0),
                to,
                connector: None,
                chosen: false,
                ended: Vec::new(),
                joined: false,
                join_error: None,
                result: None,
            })
            .collect();
        ItemsSend {
            entries,
            join,
            halt,
            settle_ms,
            pending: Vec::new(),
            first_round: true,
            phase: Phase::Done,
        }
    }

    fn valid(&self) -> impl Iterator<Item = (usize, &Entry, &ToItem)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.to.as_ref().ok().map(|t| (i, e, t)))
    }

    pub(crate) fn begin(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        let default = match &shared.auth {
            Auth::Webhook(w) => w.user(),
            Auth::Token { .. } => shared.current_user.unwrap_or(0),
        };
        for e in self.entries.iter_mut().filter(|e| e.user == 0) {
            e.user = default;
        }
        if self.valid().any(|(_, e, _)| e.user == 0) {
            self.phase = Phase::Sender;
            return Step::Call(to_item::user_current(), 0);
        }
        self.pending = self.valid().map(|(i, ..)| i).collect();
        self.reads(shared, id, now)
    }

    /// Reads the chats of the pending items that have none (or explains).
    fn reads(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        let need: Vec<usize> = self
            .pending
            .iter()
            .copied()
            .filter(|&i| self.entries.get(i).is_some_and(|e| e.chat == 0))
            .collect();
        self.read(need, false)
            .unwrap_or_else(|| self.joins(shared, id, now))
    }

    /// A batch of chat reads for the distinct CRM items of `items`; `None` when none.
    fn read(&mut self, items: Vec<usize>, all: bool) -> Option<Step> {
        let mut keys: Vec<(&str, u64)> = Vec::new();
        let mut commands = Vec::new();
        for &i in &items {
            let Some(Ok(to)) = self.entries.get(i).map(|e| e.to.as_ref()) else {
                continue;
            };
            let key = (to.kind.as_str(), to.entity);
            if !keys.contains(&key) {
                keys.push(key);
                commands.push(Command::from_prepared(
                    numbered("c", keys.len()),
                    &to.chats(!all),
                ));
            }
        }
        let mut run = BatchRun::new(commands, false);
        let first = run.next(&mut |_, _| {})?;
        self.phase = Phase::Reads { run, items, all };
        Some(Step::Call(first, 0))
    }

    /// The reads answered: each item's chat chosen, or its error.
    fn read_done(
        &mut self,
        items: &[usize],
        answers: Vec<Item<Json>>,
        all: bool,
        shared: &mut Shared,
        id: OpId,
        now: Ms,
    ) -> Step {
        let mut keys: Vec<(&'static str, u64)> = Vec::new();
        let mut unfit = Vec::new();
        for &i in items {
            let Some(entry) = self.entries.get_mut(i) else {
                continue;
            };
            let Ok(to) = &entry.to else { continue };
            let key = (to.kind.as_str(), to.entity);
            let k = keys.iter().position(|x| *x == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            });
            let chats = match answers.get(k) {
                Some(Item::Done { result, .. }) => {
                    to_item::chat_list(to, 200, result.clone()).map_err(Error::before_message)
                }
                Some(Item::Failed(e)) => Err(e.clone().before_message()),
                None => Err(Error::no_auth(params::CHAT_GET, "no answer").before_message()),
            };
            let chats: Vec<Chat> = match chats {
                Ok(c) => c,
                Err(e) => {
                    entry.result = Some(Err(e));
                    continue;
                }
            };
            if all {
                entry.result = Some(Err(to_item::explain(to, &chats)));
                continue;
            }
            if let Some(c) = to_item::choose(to, &entry.ended, &chats) {
                entry.chat = c.chat_id;
                entry.connector = Some((c.connector_id.clone(), c.connector_title.clone()));
                entry.chosen = true;
                continue;
            }
            let active: Vec<Chat> = chats
                .into_iter()
                .filter(|c| !entry.ended.contains(&c.chat_id))
                .collect();
            if to.connector.is_some() && !active.is_empty() {
                entry.result = Some(Err(to_item::no_chat_on_connector(to, &active)));
            } else {
                unfit.push(i);
            }
        }
        if !all {
            if let Some(step) = self.read(unfit, true) {
                return step;
            }
        }
        self.joins(shared, id, now)
    }

    /// Adds each pending item's sender to its chat, once per sender and chat.
    fn joins(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        if !self.join {
            return self.send(shared, id, now);
        }
        let mut pairs: Vec<(u64, u64, usize)> = Vec::new();
        let mut commands = Vec::new();
        for &i in &self.pending {
            let Some(e) = self.entries.get(i) else {
                continue;
            };
            let Ok(to) = &e.to else { continue };
            if e.result.is_some() || e.chat == 0 || e.joined {
                continue;
            }
            if !pairs.iter().any(|p| p.0 == e.user && p.1 == e.chat) {
                pairs.push((e.user, e.chat, i));
                commands.push(Command::from_prepared(
                    numbered("j", pairs.len()),
                    &to.member(true, e.user, e.chat),
                ));
            }
        }
        let mut run = BatchRun::new(commands, false);
        match run.next(&mut |_, _| {}) {
            Some(first) => {
                self.phase = Phase::Joins { run, pairs };
                Step::Call(first, 0)
            }
            None => self.send(shared, id, now),
        }
    }

    fn joined(&mut self, pairs: &[(u64, u64, usize)], answers: Vec<Item<Json>>) {
        for (k, (user, chat, _)) in pairs.iter().enumerate() {
            let outcome = match answers.get(k) {
                Some(Item::Done { .. }) => Ok(true),
                Some(Item::Failed(e)) if e.code() == "WRONG_REQUEST" => Ok(false),
                Some(Item::Failed(e)) => Err(e.clone()),
                None => Ok(false),
            };
            for e in self.entries.iter_mut() {
                if e.user == *user && e.chat == *chat && e.result.is_none() {
                    match &outcome {
                        Ok(added) => e.joined |= *added,
                        Err(err) => e.join_error = Some(err.clone()),
                    }
                }
            }
        }
    }

    /// Sends the round: every item the first time (those already failed count as such),
    /// the pending ones after that.
    fn send(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        let round: Vec<usize> = if self.first_round {
            (0..self.entries.len()).collect()
        } else {
            self.pending
                .iter()
                .copied()
                .filter(|&i| self.entries.get(i).is_some_and(|e| e.result.is_none()))
                .collect()
        };
        if round.is_empty() {
            return self.done(shared, id);
        }
        let items: Vec<Result<Prepared, Error>> = round
            .iter()
            .filter_map(|&i| self.entries.get(i))
            .map(|e| match (&e.result, &e.to) {
                (Some(Err(err)), _) | (_, Err(err)) => Err(err.clone()),
                (_, Ok(to)) => Ok(to.send(e.user, e.chat)),
            })
            .collect();
        let mut mass = Box::new(super::MassSend::new(items, self.halt, self.settle_ms));
        let mark = shared.out.len();
        let step = mass.begin(shared, id, now);
        self.phase = Phase::Sending { mass, round };
        self.relay(shared, id, mark, step, now)
    }

    /// A step of the mass send: its end is this program's next round or end; after the
    /// first round, its counts are not reported (they would count that round only).
    fn relay(&mut self, shared: &mut Shared, id: OpId, mark: usize, step: Step, now: Ms) -> Step {
        if !self.first_round {
            let mut k = 0;
            shared.out.retain(|a| {
                k += 1;
                k <= mark || !matches!(a, Action::Progress { op, .. } if *op == id)
            });
        }
        let Step::Done(result) = step else {
            return step;
        };
        let Phase::Sending { round, .. } = std::mem::replace(&mut self.phase, Phase::Done) else {
            return Step::Done(result);
        };
        let sent = match result {
            Ok(Answer::Mass(sent)) => sent,
            Ok(_) => Vec::new(),
            Err(e) => round.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut again = Vec::new();
        for (&i, r) in round.iter().zip(sent) {
            let Some(entry) = self.entries.get_mut(i) else {
                continue;
            };
            if entry.result.is_some() {
                continue;
            }
            entry.result = Some(match r {
                Ok(ok) => Ok(ok),
                Err(e) if e.code() == ENDED && entry.chosen && entry.ended.is_empty() => {
                    // The dialogue ended after the read: choose again, once.
                    entry.ended.push(entry.chat);
                    entry.chat = 0;
                    entry.joined = false;
                    again.push(i);
                    continue;
                }
                Err(e) if to_item::not_member(&e) => match (&entry.to, &entry.join_error) {
                    (Ok(to), Some(je)) if self.join => Err(to_item::cannot_join(
                        to,
                        entry.user,
                        entry.chat,
                        je,
                        Some(&e),
                    )),
                    _ if !self.join => Err(to_item::not_a_member(entry.user, entry.chat, &e)),
                    _ => Err(e),
                },
                Err(e) => Err(e),
            });
        }
        if again.is_empty() {
            return self.done(shared, id);
        }
        self.first_round = false;
        self.pending = again;
        self.reads(shared, id, now)
    }

    fn done(&mut self, shared: &mut Shared, id: OpId) -> Step {
        self.phase = Phase::Done;
        if !self.first_round {
            let settled: Vec<Option<crate::batch::Sent>> = self
                .entries
                .iter()
                .map(|e| match &e.result {
                    Some(Ok((id, _))) => Some(Ok(*id)),
                    Some(Err(err)) => Some(Err(err.clone())),
                    None => None,
                })
                .collect();
            shared.out.push_back(Action::Progress {
                op: id,
                counts: tally(&settled),
            });
        }
        let entries = self
            .entries
            .iter_mut()
            .map(|e| match e.result.take() {
                Some(Ok((msg, verified))) => Ok(Delivered {
                    id: msg,
                    chat: e.chat,
                    connector: e.connector.take(),
                    user: e.user,
                    joined: e.joined,
                    verified,
                    left: None,
                }),
                Some(Err(err)) => Err(err),
                None => Err(Error::no_auth(params::MESSAGE_ADD, "not sent").before_message()),
            })
            .collect();
        Step::Done(Ok(Answer::Items(entries)))
    }

    pub(crate) fn on_outcome(
        &mut self,
        shared: &mut Shared,
        id: OpId,
        outcome: Outcome2,
        now: Ms,
    ) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Sender => {
                match outcome.and_then(to_item::user_of) {
                    Ok(user) => {
                        shared.current_user = Some(user);
                        for e in self.entries.iter_mut().filter(|e| e.user == 0) {
                            e.user = user;
                        }
                    }
                    Err(err) => {
                        let err = err.before_message();
                        for e in self.entries.iter_mut().filter(|e| e.user == 0) {
                            e.result = Some(Err(err.clone()));
                        }
                    }
                }
                self.pending = self
                    .valid()
                    .filter(|(_, e, _)| e.result.is_none())
                    .map(|(i, ..)| i)
                    .collect();
                self.reads(shared, id, now)
            }
            Phase::Reads {
                mut run,
                items,
                all,
            } => match run.answered(outcome, &mut |_, _| {}) {
                Some(next) => {
                    self.phase = Phase::Reads { run, items, all };
                    Step::Call(next, 0)
                }
                None => {
                    let answers = run.take_items();
                    self.read_done(&items, answers, all, shared, id, now)
                }
            },
            Phase::Joins { mut run, pairs } => match run.answered(outcome, &mut |_, _| {}) {
                Some(next) => {
                    self.phase = Phase::Joins { run, pairs };
                    Step::Call(next, 0)
                }
                None => {
                    let answers = run.take_items();
                    self.joined(&pairs, answers);
                    self.send(shared, id, now)
                }
            },
            Phase::Sending { mut mass, round } => {
                let mark = shared.out.len();
                let step = mass.on_outcome(shared, id, outcome, now);
                self.phase = Phase::Sending { mass, round };
                self.relay(shared, id, mark, step, now)
            }
            Phase::Done => self.done(shared, id),
        }
    }

    pub(crate) fn on_wake(
        &mut self,
        shared: &mut Shared,
        id: OpId,
        on_time: bool,
        now: Ms,
    ) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Sending { mut mass, round } => {
                let mark = shared.out.len();
                let step = mass.on_wake(shared, id, on_time, now);
                self.phase = Phase::Sending { mass, round };
                self.relay(shared, id, mark, step, now)
            }
            _ => self.done(shared, id),
        }
    }
}

/// A command name: `c1`, `j2`...
fn numbered(prefix: &str, n: usize) -> String {
    let mut s = prefix.to_owned();
    text::push_decimal(&mut s, n as u64);
    s
}
