//! Many messages through batches, with verified delivery when asked, as data.
//!
//! ```text
//!  Marks (verify: each chat's watermark, one read or batches of reads)
//!    ─▶ Sending (batches of up to 50 messages; progress after each)
//!    ─▶ Reading pass 0 (each chat with unknown messages, after its watermark)
//!    ─▶ Settle (settleMs, when a request that ended left a message unknown)
//!    ─▶ Reading pass 1
//!    ─▶ Sending again (the messages proven absent, in batches) ─▶ Reading pass 0 …
//!    ─▶ done (progress once more when verification changed anything)
//! ```
//!
//! The rules of each step are those of a single verified send ([`super::verify`]):
//! a match not claimed by another message of the send is this one's; a message whose
//! request ended and that is proven absent after the settle window is sent again, in
//! one batch run with the other absent ones, at most [`verify::MAX_SENDS`] times in
//! all; any other stays unknown, saying why.

use super::batch::BatchRun;
use super::{Action, Answer, Ms, OpId, Outcome2, Shared, Step};
use crate::batch::{self, tally, Command, Item};
use crate::error::{Error, Outcome};
use crate::json::Json;
use crate::outbox::Sent;
use crate::params::{self, Decoded, Prepared, MESSAGE_ADD};
use crate::verify::{self, Look};

#[derive(Debug)]
enum Phase {
    /// Reading the watermarks of `chats` (one plain read when there is one chat).
    Marks {
        chats: Vec<u64>,
        run: Option<BatchRun>,
    },
    Sending(BatchRun),
    /// Reading `chat` after `mark`, from `from`, for every unknown message there.
    Reading {
        chat: u64,
        mark: u64,
        from: u64,
    },
    Settle,
    Done,
}

/// A mass send in progress.
#[derive(Debug)]
pub struct MassSend {
    halt: bool,
    settle_ms: Option<u32>,
    items: Vec<Result<Prepared, Error>>,
    marks: Vec<(u64, u64)>,
    /// The items sent, by item index.
    sendable: Vec<(usize, Prepared)>,
    /// The current batch run's messages, as positions in `sendable`, and their
    /// outbox entries while in flight.
    run: Vec<usize>,
    keys: Vec<Option<u64>>,
    /// How many times the messages of the current run have been sent, this one included.
    sends: u32,
    entries: Vec<Option<Result<u64, Error>>>,
    verified: Vec<bool>,
    // Verification.
    sents: Vec<Option<Sent>>,
    claimed: Vec<u64>,
    looks: Vec<Option<Look>>,
    groups: Vec<(u64, u64)>,
    history: Vec<(u64, u64, String)>,
    pass: u8,
    unknown_before: usize,
    phase: Phase,
}

fn unknown(e: &Option<Result<u64, Error>>) -> bool {
    matches!(e, Some(Err(err)) if err.outcome() == Outcome::Unknown)
}

impl MassSend {
    pub(crate) fn new(
        items: Vec<Result<Prepared, Error>>,
        halt: bool,
        settle_ms: Option<u32>,
    ) -> MassSend {
        let n = items.len();
        MassSend {
            halt,
            settle_ms,
            items,
            marks: Vec::new(),
            sendable: Vec::new(),
            run: Vec::new(),
            keys: Vec::new(),
            sends: 0,
            entries: vec![None; n],
            verified: vec![false; n],
            sents: Vec::new(),
            claimed: Vec::new(),
            looks: Vec::new(),
            groups: Vec::new(),
            history: Vec::new(),
            pass: 0,
            unknown_before: 0,
            phase: Phase::Done,
        }
    }

    pub(crate) fn begin(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        if self.settle_ms.is_some() {
            let chats = verify::sorted_unique(
                self.items
                    .iter()
                    .filter_map(|p| p.as_ref().ok().and_then(Sent::chat_of))
                    .collect(),
            );
            match chats.as_slice() {
                [] => {}
                [chat] => {
                    let call = verify::watermark_call(*chat);
                    self.phase = Phase::Marks { chats, run: None };
                    return Step::Call(call, 0);
                }
                _ => {
                    let commands = chats
                        .iter()
                        .map(|c| {
                            Command::from_prepared(
                                ["w", &crate::text::decimal(*c)].concat(),
                                &verify::watermark_call(*c),
                            )
                        })
                        .collect();
                    let mut run = BatchRun::new(commands, false);
                    if let Some(p) = run.next(&mut |_, _| {}) {
                        self.phase = Phase::Marks {
                            chats,
                            run: Some(run),
                        };
                        return Step::Call(p, 0);
                    }
                }
            }
        }
        self.send(shared, id, now)
    }

    /// The watermarks are read: items whose chat could not be read get its error.
    fn marked(
        &mut self,
        chats: &[u64],
        read: Vec<Result<u64, Error>>,
        shared: &mut Shared,
        id: OpId,
        now: Ms,
    ) -> Step {
        for (chat, mark) in chats.iter().zip(read) {
            match mark {
                Ok(m) => self.marks.push((*chat, m)),
                Err(e) => {
                    // The read before the message failed: the message was not sent.
                    let e = e.before_message();
                    for p in self.items.iter_mut() {
                        if p.as_ref().ok().and_then(Sent::chat_of) == Some(*chat) {
                            *p = Err(e.clone());
                        }
                    }
                }
            }
        }
        self.send(shared, id, now)
    }

    fn watch(&self) -> u32 {
        self.settle_ms.unwrap_or(0)
    }

    /// Starts sending the valid items.
    fn send(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        for (i, item) in std::mem::take(&mut self.items).into_iter().enumerate() {
            match item {
                Ok(p) => self.sendable.push((i, p)),
                Err(e) => {
                    if let Some(slot) = self.entries.get_mut(i) {
                        *slot = Some(Err(e));
                    }
                }
            }
        }
        let all = (0..self.sendable.len()).collect();
        self.start_run(shared, id, all, now)
    }

    /// Sends the messages at these positions of `sendable` in one batch run.
    fn start_run(&mut self, shared: &mut Shared, id: OpId, run: Vec<usize>, now: Ms) -> Step {
        let mut commands = Vec::new();
        self.keys.clear();
        for (index, p) in run.iter().filter_map(|&pos| self.sendable.get(pos)) {
            commands.push(Command::from_prepared(
                ["m", &crate::text::decimal(*index as u64)].concat(),
                p,
            ));
            self.keys.push(Sent::of(p).map(|s| shared.outbox.enter(s)));
        }
        self.run = run;
        self.sends += 1;
        let mut run = BatchRun::new(commands, self.halt);
        match run.next(&mut |_, _| {}) {
            Some(p) => {
                self.phase = Phase::Sending(run);
                Step::Call(p, self.watch())
            }
            None => {
                shared.out.push_back(Action::Progress {
                    op: id,
                    counts: tally(&self.entries),
                });
                self.sent(shared, id, now)
            }
        }
    }

    /// Takes in the items of one message batch.
    fn record(&mut self, shared: &mut Shared, first: usize, chunk: &[Item<Json>]) {
        for (k, item) in chunk.iter().enumerate() {
            let Some((index, prepared)) = self
                .run
                .get(first + k)
                .and_then(|&pos| self.sendable.get(pos))
            else {
                continue;
            };
            let outcome = match item {
                Item::Done { result, .. } => match params::decode(prepared, 200, result.clone()) {
                    Ok(Decoded::Number(id)) => Ok(id),
                    Ok(_) => Err(Error::bad_response(
                        &prepared.method,
                        200,
                        "a result that is not an id",
                        true,
                    )),
                    Err(e) => Err(e),
                },
                Item::Failed(e) => Err(e.clone()),
            };
            // A message sent again was proven absent first: reading the chat
            // established whatever its send answers.
            let again = self.sends > 1;
            let outcome = outcome.map_err(|e| match e.outcome() {
                Outcome::Unknown => e,
                _ => verify::with_verified(e, again),
            });
            if let Some(v) = self.verified.get_mut(*index) {
                *v = again;
            }
            if let Some(key) = self.keys.get_mut(first + k).and_then(Option::take) {
                let unknown = matches!(&outcome, Err(e) if e.outcome() == Outcome::Unknown);
                shared
                    .outbox
                    .close(key, outcome.as_ref().ok().copied(), unknown);
            }
            if let Some(slot) = self.entries.get_mut(*index) {
                *slot = Some(outcome);
            }
        }
    }

    /// Every batch is answered (or the run stopped): settle what is unknown.
    fn sent(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        // Messages never sent (the signal, or `halt`) leave the outbox; one proven
        // absent and not sent again was not executed either.
        for (k, key) in std::mem::take(&mut self.keys).into_iter().enumerate() {
            let Some(key) = key else { continue };
            shared.outbox.close(key, None, false);
            if let Some(&(i, _)) = self.run.get(k).and_then(|&pos| self.sendable.get(pos)) {
                if let Some(slot) = self.entries.get_mut(i) {
                    *slot = None;
                }
            }
        }
        for e in self.entries.iter_mut().filter(|e| e.is_none()) {
            *e = Some(Err(batch::not_sent(MESSAGE_ADD, true)));
        }
        if self.settle_ms.is_none() {
            return self.done();
        }
        self.claimed = self
            .entries
            .iter()
            .filter_map(|e| e.as_ref().and_then(|r| r.as_ref().ok().copied()))
            .collect();
        if self.sents.is_empty() {
            self.sents = vec![None; self.entries.len()];
            for (i, p) in &self.sendable {
                if let Some(slot) = self.sents.get_mut(*i) {
                    *slot = Sent::of(p);
                }
            }
        }
        self.looks = vec![None; self.entries.len()];
        self.unknown_before += self.entries.iter().filter(|e| unknown(e)).count();
        self.pass_begin(shared, id, 0, now)
    }

    fn mark_of(&self, chat: u64) -> u64 {
        self.marks
            .iter()
            .find(|(c, _)| *c == chat)
            .map_or(0, |(_, m)| *m)
    }

    fn pass_begin(&mut self, shared: &mut Shared, id: OpId, pass: u8, now: Ms) -> Step {
        self.pass = pass;
        // Only what the read after the settle window shows counts as proof.
        self.looks.iter_mut().for_each(|l| *l = None);
        if pass == 1 {
            let waiting = self
                .entries
                .iter()
                .any(|e| matches!(e, Some(Err(err)) if err.outcome() == Outcome::Unknown && verify::ended(err)));
            if !waiting {
                return self.resolve(shared, id, now);
            }
            self.phase = Phase::Settle;
            return Step::Wait(now + f64::from(self.watch().max(1)));
        }
        self.reads(shared, id, now)
    }

    fn reads(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        let groups: Vec<(u64, u64)> = self
            .entries
            .iter()
            .zip(&self.sents)
            .filter(|(e, _)| unknown(e))
            .filter_map(|(_, s)| s.as_ref().map(|s| (s.chat_id, self.mark_of(s.chat_id))))
            .collect();
        self.groups = verify::sorted_unique(groups);
        self.groups.reverse();
        self.next_group(shared, id, now)
    }

    fn next_group(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        match self.groups.pop() {
            Some((chat, mark)) => {
                self.history.clear();
                self.phase = Phase::Reading {
                    chat,
                    mark,
                    from: mark,
                };
                Step::Call(verify::after_call(chat, mark), 0)
            }
            None if self.pass == 0 => self.pass_begin(shared, id, 1, now),
            None => self.resolve(shared, id, now),
        }
    }

    /// A chat's history after its watermark is read: found messages first (so that
    /// no later item's check counts them), then what stays unfound is judged.
    fn judge_chat(&mut self, shared: &mut Shared, chat: u64, mark: u64) {
        let _ = mark;
        let here = |e: &Option<Result<u64, Error>>, s: &Sent| unknown(e) && s.chat_id == chat;
        for i in 0..self.entries.len() {
            let (Some(e), Some(s)) = (self.entries.get(i), self.sents.get(i)) else {
                continue;
            };
            let Some(sent) = s.as_ref().filter(|s| here(e, s)) else {
                continue;
            };
            if let Look::Found(found) =
                verify::judge(&self.history, sent, &self.claimed, &shared.outbox)
            {
                self.claimed.push(found);
                shared.outbox.settled(sent, Some(found));
                if let Some(slot) = self.entries.get_mut(i) {
                    *slot = Some(Ok(found));
                }
                if let Some(v) = self.verified.get_mut(i) {
                    *v = true;
                }
            }
        }
        for i in 0..self.entries.len() {
            let (Some(e), Some(s)) = (self.entries.get(i), self.sents.get(i)) else {
                continue;
            };
            if let Some(sent) = s.as_ref().filter(|s| here(e, s)) {
                let look = verify::judge(&self.history, sent, &self.claimed, &shared.outbox);
                if let Some(slot) = self.looks.get_mut(i) {
                    *slot = Some(look);
                }
            }
        }
    }

    /// Proven absent: sent again, all such messages in one batch run, while fewer than
    /// [`verify::MAX_SENDS`] sends were made; else the outcome stays unknown, saying why.
    fn resolve(&mut self, shared: &mut Shared, id: OpId, now: Ms) -> Step {
        let mut again = Vec::new();
        for i in 0..self.entries.len() {
            let Some(Some(Err(err))) = self.entries.get(i) else {
                continue;
            };
            if err.outcome() != Outcome::Unknown {
                continue;
            }
            let look = self.looks.get_mut(i).and_then(Option::take);
            let outcome = match look {
                _ if !verify::ended(err) => err.clone().still_running(),
                Some(Look::Unproven(others)) => err.clone().with_candidates(others),
                Some(Look::Absent) if self.sends < verify::MAX_SENDS => {
                    // `sendable` is in item order.
                    let pos = self.sendable.binary_search_by_key(&i, |(k, _)| *k).ok();
                    if let (Some(pos), Some(Some(sent))) = (pos, self.sents.get(i)) {
                        // Proven absent: sending it again cannot duplicate it.
                        shared.outbox.settled(sent, None);
                        again.push(pos);
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(slot) = self.entries.get_mut(i) {
                *slot = Some(Err(outcome));
            }
        }
        if !again.is_empty() {
            return self.start_run(shared, id, again, now);
        }
        if self.unknown_before > 0 {
            let mut p = tally(&self.entries);
            p.done = p.total;
            shared.out.push_back(Action::Progress { op: id, counts: p });
        }
        self.done()
    }

    fn done(&mut self) -> Step {
        self.phase = Phase::Done;
        let verified = std::mem::take(&mut self.verified);
        let entries = std::mem::take(&mut self.entries)
            .into_iter()
            .zip(verified)
            .map(|(e, v)| match e {
                Some(Ok(id)) => Ok((id, v)),
                Some(Err(e)) => Err(e),
                None => Err(batch::not_sent(MESSAGE_ADD, true)),
            })
            .collect();
        Step::Done(Ok(Answer::Mass(entries)))
    }

    pub(crate) fn on_outcome(
        &mut self,
        shared: &mut Shared,
        id: OpId,
        outcome: Outcome2,
        now: Ms,
    ) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Marks { chats, run: None } => {
                let read = outcome
                    .and_then(|success| verify::watermark(&success.result).ok_or_else(no_history));
                self.marked(&chats, vec![read], shared, id, now)
            }
            Phase::Marks {
                chats,
                run: Some(mut run),
            } => match run.answered(outcome, &mut |_, _| {}) {
                Some(p) => {
                    self.phase = Phase::Marks {
                        chats,
                        run: Some(run),
                    };
                    Step::Call(p, 0)
                }
                None => {
                    let read = run
                        .take_items()
                        .into_iter()
                        .map(|item| match item {
                            Item::Done { result, .. } => {
                                verify::watermark(&result).ok_or_else(no_history)
                            }
                            Item::Failed(e) => Err(e),
                        })
                        .collect();
                    self.marked(&chats, read, shared, id, now)
                }
            },
            Phase::Sending(mut run) => {
                let mut chunks: Vec<(usize, Vec<Item<Json>>)> = Vec::new();
                let next = run.answered(outcome, &mut |first, items| {
                    chunks.push((first, items.to_vec()))
                });
                for (first, items) in chunks {
                    self.record(shared, first, &items);
                    shared.out.push_back(Action::Progress {
                        op: id,
                        counts: tally(&self.entries),
                    });
                }
                match next {
                    Some(p) => {
                        self.phase = Phase::Sending(run);
                        Step::Call(p, self.watch())
                    }
                    None => self.sent(shared, id, now),
                }
            }
            Phase::Reading { chat, mark, from } => {
                if let Ok(success) = outcome {
                    let (list, next) = verify::page(&success.result, from);
                    self.history.extend(list);
                    if let Some(from) = next {
                        self.phase = Phase::Reading { chat, mark, from };
                        return Step::Call(verify::after_call(chat, from), 0);
                    }
                    self.judge_chat(shared, chat, mark);
                }
                // A chat that cannot be read leaves its messages as they are.
                self.next_group(shared, id, now)
            }
            Phase::Settle | Phase::Done => self.done(),
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
            Phase::Settle if on_time => self.reads(shared, id, now),
            // The signal cut the settle window short: nothing more is proven.
            Phase::Settle => self.resolve(shared, id, now),
            _ => self.done(),
        }
    }
}

fn no_history() -> Error {
    Error::bad_response(
        verify::HISTORY,
        200,
        "a history without a message list",
        false,
    )
}
