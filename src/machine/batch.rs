//! Batch commands in requests of up to 50, one request after the other, as data (the
//! encoding and decoding are [`crate::batch`]'s).
//!
//! A request stopped by the caller's signal ends the run: its commands are unknown if
//! it had left, the rest are not sent. With `halt`, a failed command ends it too.

use super::{Answer, Outcome2, Step};
use crate::batch::{self, Command, Item, MAX_COMMANDS};
use crate::error::{codes, Error};
use crate::json::Json;
use crate::params::Prepared;

/// Told the items of each request, with the index of its first command.
pub(crate) type OnItems<'a> = dyn FnMut(usize, &[Item<Json>]) + 'a;

/// A run of batch requests in progress.
#[derive(Debug)]
pub struct BatchRun {
    commands: Vec<Command>,
    halt: bool,
    items: Vec<Item<Json>>,
    stop: Option<fn(&Command) -> Error>,
}

impl BatchRun {
    pub(crate) fn new(commands: Vec<Command>, halt: bool) -> BatchRun {
        BatchRun {
            items: Vec::with_capacity(commands.len()),
            commands,
            halt,
            stop: None,
        }
    }

    /// The first move of a `batch` call.
    pub(crate) fn begin(&mut self) -> Step {
        self.next(&mut |_, _| {})
            .map_or_else(|| self.done(), |p| Step::Call(p, 0))
    }

    pub(crate) fn on_outcome(&mut self, outcome: Outcome2, progress: &mut OnItems<'_>) -> Step {
        self.answered(outcome, progress)
            .map_or_else(|| self.done(), |p| Step::Call(p, 0))
    }

    fn done(&mut self) -> Step {
        Step::Done(Ok(Answer::Batch(std::mem::take(&mut self.items))))
    }

    /// The items so far, taken.
    pub(crate) fn take_items(&mut self) -> Vec<Item<Json>> {
        std::mem::take(&mut self.items)
    }

    fn chunk(&self) -> &[Command] {
        let first = self.items.len();
        let end = (first + MAX_COMMANDS).min(self.commands.len());
        self.commands.get(first..end).unwrap_or_default()
    }

    fn record(&mut self, chunk_items: Vec<Item<Json>>, progress: &mut OnItems<'_>) {
        if self.halt
            && self.stop.is_none()
            && chunk_items.iter().any(|i| matches!(i, Item::Failed(_)))
        {
            self.stop = Some(|c| batch::halted(&c.method));
        }
        progress(self.items.len(), &chunk_items);
        self.items.extend(chunk_items);
    }

    /// The next request to send; `None` when every command has its item.
    pub(crate) fn next(&mut self, progress: &mut OnItems<'_>) -> Option<Prepared> {
        loop {
            if self.items.len() >= self.commands.len() {
                return None;
            }
            let Some(why) = self.stop else {
                return Some(batch::request(self.chunk(), self.halt));
            };
            let items = self.chunk().iter().map(|c| Item::Failed(why(c))).collect();
            self.record(items, progress);
        }
    }

    /// Takes in the answer to the request in flight; the next request, if any.
    pub(crate) fn answered(
        &mut self,
        outcome: Outcome2,
        progress: &mut OnItems<'_>,
    ) -> Option<Prepared> {
        let items = match outcome {
            Ok(success) => batch::decode(self.chunk(), success.status, &success.result),
            Err(e) => {
                if e.code() == codes::ABORTED {
                    self.stop = Some(|c| batch::not_sent(&c.method, c.write));
                }
                batch::lost(self.chunk(), &e)
            }
        };
        self.record(items, progress);
        self.next(progress)
    }
}
