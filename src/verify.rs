//! Verified delivery: when a message's outcome is unknown, read the chat back to find
//! out, and send it again only once the chat proves it was not stored.
//!
//! `imopenlines.crm.message.add` takes no idempotency key. Before sending, the client
//! reads the chat's last message id (the watermark) with `im.dialog.messages.get`
//! (`LAST_ID: 0`, scope `im`). When the answer is lost, it reads the messages after the
//! watermark and looks for one by the same author whose text is the message's, as
//! stored or as a current portal shows it ([`message_text::recognises`]). Found:
//! delivered, with its real id. Not found, the message is sent again only on proof of
//! absence, when all of these hold:
//!
//! - the request visibly ended: the portal's answer arrived (an error envelope, a body
//!   cut short, a gateway's page) or the connection closed. A send with no answer in
//!   its timeout is not aborted but watched for the settle window more; one still
//!   running when that ends may yet store its message, so its outcome stays unknown;
//! - the settle window passed since it ended, and a read after it shows the message
//!   absent;
//! - every message by the same author after the watermark is accounted for: an id this
//!   client was answered with, or the text of one of its messages in flight or of
//!   unknown outcome ([`Outbox`](crate::outbox::Outbox)). Any other (the operator
//!   typing in the messenger, another app, a text the client cannot recognise) leaves
//!   the outcome unknown, and the error names those messages (`candidates`).
//!
//! A wait or read that cannot finish (the caller's signal, a refused read) leaves the
//! outcome unknown too.

use crate::client::{Client, Transport};
use crate::error::{Error, Outcome};
use crate::json::{JsonView, Shape};
#[cfg(doc)]
use crate::message_text;
use crate::params::{Decoded, Field, Output, Params, Prepared};

/// The method that reads a chat's history.
pub const HISTORY: &str = "im.dialog.messages.get";

/// The longest page `im.dialog.messages.get` returns.
const PAGE: u64 = 50;

pub use crate::outbox::Sent;

fn history_call(chat_id: u64, position: (&'static str, u64), limit: u64) -> Prepared {
    Prepared {
        method: HISTORY.to_owned(),
        params: Params::Fields(vec![
            ("DIALOG_ID", Field::Str(format!("chat{chat_id}"))),
            (position.0, Field::Int(position.1)),
            ("LIMIT", Field::Int(limit)),
        ]),
        output: Output::Raw,
        write: false,
    }
}

/// The read of a chat's newest message (`LAST_ID: 0`, `LIMIT: 1`).
pub fn watermark_call(chat_id: u64) -> Prepared {
    history_call(chat_id, ("LAST_ID", 0), 1)
}

/// The read of up to 50 messages after `first_id`, oldest first.
pub fn after_call(chat_id: u64, first_id: u64) -> Prepared {
    history_call(chat_id, ("FIRST_ID", first_id), PAGE)
}

fn id_of<J: JsonView>(v: Option<J>) -> Option<u64> {
    match v?.shape() {
        Shape::Number(n) if n >= 0.0 && n.fract() == 0.0 => Some(n as u64),
        Shape::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn messages<J: JsonView>(result: &J) -> Vec<J> {
    let Some(list) = result.get("messages") else {
        return Vec::new();
    };
    match list.shape() {
        Shape::Array(n) => (0..n).filter_map(|i| list.at(i)).collect(),
        _ => Vec::new(),
    }
}

/// The newest message id of a watermark read (0 for an empty chat).
pub fn watermark<J: JsonView>(result: &J) -> Option<u64> {
    result.get("messages")?;
    Some(
        messages(result)
            .iter()
            .filter_map(|m| id_of(m.get("id")))
            .max()
            .unwrap_or(0),
    )
}

/// How a verified send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Delivered with this id; `verified` when the chat had to be read to know it.
    Delivered {
        /// The message id.
        id: u64,
        /// Whether the outcome was established by reading the chat.
        verified: bool,
    },
    /// Not delivered, or still unknown: the error says which (its `verified` flag says
    /// whether reading the chat established it).
    Failed(Error),
}

/// The steps of a verified send that need the outside world: a call's options, and a
/// wait for the settle window. Each returns `Err` when the caller's signal or bound
/// stops it.
pub trait Steps<T: Transport> {
    /// Fresh options (timeout and signal) for one request.
    fn options(&self) -> Result<T::Options, Error>;
    /// Options for sending the message itself: its timeout does not abort it, which is
    /// watched for the settle window more (a request still running may yet store it).
    fn send_options(&self) -> Result<T::Options, Error>;
    /// Waits `ms`, unless the caller's signal fires first (`false` then).
    fn settle(&self, ms: u32) -> futures::future::LocalBoxFuture<'_, bool>;
}

/// Reads the chat's watermark before a risky send.
pub async fn read_watermark<T: Transport, S: Steps<T>>(
    client: &Client<T>,
    steps: &S,
    chat_id: u64,
) -> Result<u64, Error> {
    let read = client
        .call(&watermark_call(chat_id), &steps.options()?)
        .await?;
    match read {
        Decoded::Raw(result) => watermark(&result),
        _ => None,
    }
    .ok_or_else(|| Error::bad_response(HISTORY, 200, "a history without a message list", false))
}

/// What a read of the chat after the watermark shows about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// It is there, with this id.
    Found(u64),
    /// It is not there, and every other message by its author is accounted for.
    Absent,
    /// It is not there, but these messages by its author are not this client's: its
    /// absence is not proven.
    Unproven(Vec<u64>),
}

/// Reads the chat after `mark` and looks for `sent` there ([`judge`]).
pub async fn look<T: Transport, S: Steps<T>>(
    client: &Client<T>,
    steps: &S,
    sent: &Sent,
    mark: u64,
    claimed: &[u64],
) -> Result<Look, Error> {
    let history = read_after(client, steps, sent.chat_id, mark).await?;
    Ok(client.outbox(|o| judge(&history, sent, claimed, o)))
}

/// What `history` (messages after the watermark, `(id, author, text)`) shows about
/// `sent`: the first message by its author with its text whose id is neither
/// `claimed` (by other messages of the same send) nor an id `outbox` was answered
/// with; else whether every message by that author is one of this client's.
pub fn judge(
    history: &[(u64, u64, String)],
    sent: &Sent,
    claimed: &[u64],
    outbox: &crate::outbox::Outbox,
) -> Look {
    let taken = |id: &u64| claimed.contains(id) || outbox.has_id(*id);
    if let Some((id, _, _)) = history
        .iter()
        .find(|(id, author, text)| !taken(id) && sent.is(*author, text))
    {
        return Look::Found(*id);
    }
    let foreign: Vec<u64> = history
        .iter()
        .filter(|(id, author, text)| {
            *author == sent.author
                && !taken(id)
                && !outbox.accounts_for(sent.chat_id, *id, *author, text)
        })
        .map(|(id, _, _)| *id)
        .collect();
    if foreign.is_empty() {
        Look::Absent
    } else {
        Look::Unproven(foreign)
    }
}

/// Whether the request behind an unknown outcome visibly ended (an answer of any kind
/// arrived, or the connection closed); a timeout or an abort leaves it running.
pub fn ended(e: &Error) -> bool {
    !matches!(e, Error::Timeout(_) | Error::Aborted(_))
}

/// `e`, saying whether reading the chat established it.
pub fn with_verified(mut e: Error, verified: bool) -> Error {
    e.set_verified(verified);
    e
}

/// How many times a message may be sent in all: a send is repeated only after the
/// chat showed the previous one was not stored.
pub const MAX_SENDS: u32 = 3;

/// Sends `prepared` (a message) after the watermark `mark` was read, and settles an
/// unknown outcome by reading the chat: found → delivered; proven absent after the
/// settle window → not stored, so sent again (at most `MAX_SENDS` sends in all); else
/// unknown. `claimed`: ids of other messages of the same send, never taken for this
/// one (empty for a single send).
pub async fn send<T: Transport, S: Steps<T>>(
    client: &Client<T>,
    steps: &S,
    prepared: &Prepared,
    mark: u64,
    claimed: &[u64],
    settle_ms: u32,
) -> Settled {
    let Some(sent) = Sent::of(prepared) else {
        return Settled::Failed(Error::no_auth(&prepared.method, "not a message to verify"));
    };
    let mut sends = 0;
    loop {
        sends += 1;
        // A send after the first is verified: the chat proved the earlier one absent.
        let verified = sends > 1;
        let answer = match steps.send_options() {
            Ok(o) => client.call(prepared, &o).await,
            Err(e) => Err(e),
        };
        let unknown = match answer {
            Ok(Decoded::Number(id)) => return Settled::Delivered { id, verified },
            Ok(_) => {
                return Settled::Failed(Error::bad_response(
                    &prepared.method,
                    200,
                    "a result that is not an id",
                    true,
                ))
            }
            Err(e) if e.outcome() == Outcome::Unknown => e,
            Err(e) => return Settled::Failed(with_verified(e, verified)),
        };
        let found = |id: u64| {
            client.outbox(|o| o.settled(&sent, Some(id)));
            Settled::Delivered { id, verified: true }
        };
        // First read: a request that ended on the portal (5xx, cut body, dropped after
        // storing) shows its message now.
        match look(client, steps, &sent, mark, claimed).await {
            Ok(Look::Found(id)) => return found(id),
            Ok(_) => {}
            Err(_) => return Settled::Failed(unknown),
        }
        // Still running when the call gave up: it may store its message yet.
        if !ended(&unknown) {
            return Settled::Failed(unknown.still_running());
        }
        // It ended: wait the settle window, then read again.
        if !steps.settle(settle_ms).await {
            return Settled::Failed(unknown);
        }
        match look(client, steps, &sent, mark, claimed).await {
            Ok(Look::Found(id)) => return found(id),
            Ok(Look::Unproven(others)) => return Settled::Failed(unknown.with_candidates(others)),
            Ok(Look::Absent) => {}
            Err(_) => return Settled::Failed(unknown),
        }
        if sends >= MAX_SENDS {
            return Settled::Failed(unknown);
        }
        // Proven absent: sending again cannot duplicate it.
        client.outbox(|o| o.settled(&sent, None));
    }
}

/// Reads the watermark of each chat of a mass send, in batches of up to 50 reads.
/// A chat whose read failed gives that error: its messages are not sent.
pub async fn read_watermarks<T, S>(
    client: &Client<T>,
    steps: &S,
    chats: &[u64],
) -> Vec<Result<u64, Error>>
where
    T: Transport,
    S: Steps<T>,
{
    use crate::batch::{self, Command, Item};
    if let [chat] = chats {
        // One chat: one plain read, no batch around it.
        return vec![read_watermark(client, steps, *chat).await];
    }
    let commands: Vec<Command> = chats
        .iter()
        .map(|c| Command::from_prepared(format!("w{c}"), &watermark_call(*c)))
        .collect();
    let items = batch::send(
        client,
        &commands,
        false,
        &mut || steps.options(),
        &mut |_, _| {},
    )
    .await;
    items
        .into_iter()
        .map(|item| match item {
            Item::Done { result, .. } => watermark(&result).ok_or_else(|| {
                Error::bad_response(HISTORY, 200, "a history without a message list", false)
            }),
            Item::Failed(e) => Err(e),
        })
        .collect()
}

/// One page of a history read: its messages as `(id, author, text)`, and the id to
/// read on from when the page was full (`None`: the last page).
pub fn page<J: JsonView>(result: &J, from: u64) -> (Vec<(u64, u64, String)>, Option<u64>) {
    let list = messages(result);
    let full = list.len() as u64 >= PAGE;
    let mut out = Vec::new();
    let mut last = None;
    for m in &list {
        let Some(id) = id_of(m.get("id")) else {
            continue;
        };
        last = Some(last.map_or(id, |l: u64| l.max(id)));
        if let (Some(author), Some(Shape::String(text))) =
            (id_of(m.get("author_id")), m.get("text").map(|t| t.shape()))
        {
            out.push((id, author, text));
        }
    }
    (out, last.filter(|l| full && *l > from))
}

/// Every message of `chat` after `mark`, oldest first, as `(id, author, text)`.
async fn read_after<T: Transport, S: Steps<T>>(
    client: &Client<T>,
    steps: &S,
    chat: u64,
    mark: u64,
) -> Result<Vec<(u64, u64, String)>, Error> {
    let mut out = Vec::new();
    let mut from = mark;
    loop {
        let read = client
            .call(&after_call(chat, from), &steps.options()?)
            .await?;
        let Decoded::Raw(result) = read else {
            return Ok(out);
        };
        let (list, next) = page(&result, from);
        out.extend(list);
        match next {
            Some(l) => from = l,
            None => return Ok(out),
        }
    }
}

/// One message of a mass send, for [`settle_many`].
pub struct Entry {
    /// The validated call (`None`: invalid, never sent).
    pub prepared: Option<Prepared>,
    /// Its chat's watermark.
    pub mark: u64,
    /// What the send gave: an id, or an error (unknown ones get settled).
    pub outcome: Result<u64, Error>,
    /// Whether reading the chat established the outcome.
    pub verified: bool,
}

/// Settles every unknown outcome of a mass send by reading the chats back, in item
/// order, by the rules of [`send`]: a match not claimed by another message of the send
/// is this one's; one whose request ended and that is proven absent after
/// `settle_ms` is sent again through [`send`]; any other stays unknown.
pub async fn settle_many<T: Transport, S: Steps<T>>(
    client: &Client<T>,
    steps: &S,
    entries: &mut [Entry],
    settle_ms: u32,
) {
    let unknown = |e: &Entry| matches!(&e.outcome, Err(err) if err.outcome() == Outcome::Unknown);
    let mut claimed: Vec<u64> = entries
        .iter()
        .filter_map(|e| e.outcome.as_ref().ok().copied())
        .collect();
    // Each entry's message, made once.
    let sents: Vec<Option<Sent>> = entries
        .iter()
        .map(|e| e.prepared.as_ref().and_then(Sent::of))
        .collect();
    // What the last read showed of each entry still unknown after it.
    let mut looks: Vec<Option<Look>> = vec![None; entries.len()];
    for pass in 0..2 {
        // Only what the read after the settle window shows counts as proof.
        looks.iter_mut().for_each(|l| *l = None);
        // Before the second pass, the settle window (none to wait for: done).
        if pass == 1 {
            let waiting = entries
                .iter()
                .any(|e| matches!(&e.outcome, Err(err) if err.outcome() == Outcome::Unknown && ended(err)));
            if !waiting || !steps.settle(settle_ms).await {
                break;
            }
        }
        // Each chat's history after its watermark is read once per pass, for all of
        // its unknown messages.
        let chats: Vec<(u64, u64)> = entries
            .iter()
            .zip(&sents)
            .filter(|(e, _)| unknown(e))
            .filter_map(|(e, s)| Some((s.as_ref()?.chat_id, e.mark)))
            .collect();
        for (chat, mark) in sorted_unique(chats) {
            let Ok(history) = read_after(client, steps, chat, mark).await else {
                continue;
            };
            let here = |e: &Entry, s: &Option<Sent>| {
                unknown(e) && e.mark == mark && s.as_ref().is_some_and(|s| s.chat_id == chat)
            };
            // Found messages first, so that no later item's check counts them.
            for (e, sent) in entries.iter_mut().zip(&sents) {
                let Some(s) = sent.as_ref().filter(|_| here(e, sent)) else {
                    continue;
                };
                if let Look::Found(id) = client.outbox(|o| judge(&history, s, &claimed, o)) {
                    claimed.push(id);
                    client.outbox(|o| o.settled(s, Some(id)));
                    e.outcome = Ok(id);
                    e.verified = true;
                }
            }
            // Then what stays unfound is judged against every message claimed.
            for ((e, sent), look) in entries.iter().zip(&sents).zip(looks.iter_mut()) {
                if let Some(s) = sent.as_ref().filter(|_| here(e, sent)) {
                    *look = Some(client.outbox(|o| judge(&history, s, &claimed, o)));
                }
            }
        }
    }
    // Proven absent: sent again; else the outcome stays unknown, saying why.
    for ((e, sent), look) in entries.iter_mut().zip(&sents).zip(looks) {
        let Err(err) = &e.outcome else {
            continue;
        };
        if err.outcome() != Outcome::Unknown {
            continue;
        }
        let err = err.clone();
        match look {
            _ if !ended(&err) => e.outcome = Err(err.still_running()),
            Some(Look::Unproven(others)) => e.outcome = Err(err.with_candidates(others)),
            Some(Look::Absent) => {
                let (Some(prepared), Some(s)) = (e.prepared.as_ref(), sent) else {
                    continue;
                };
                client.outbox(|o| o.settled(s, None));
                match send(client, steps, prepared, e.mark, &claimed, settle_ms).await {
                    Settled::Delivered { id, .. } => {
                        claimed.push(id);
                        e.outcome = Ok(id);
                        e.verified = true;
                    }
                    Settled::Failed(err) => {
                        e.verified = err.details().verified;
                        e.outcome = Err(err);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `v` in order without repeats. A heap sort: the standard slice sorts would add
/// several kilobytes of specialised code to the module for these short lists.
pub fn sorted_unique<T: Ord>(v: Vec<T>) -> Vec<T> {
    let mut v = std::collections::BinaryHeap::from(v).into_sorted_vec();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outbox;
    use serde_json::json;

    fn sent() -> Sent {
        Sent::new(8773, 12, "Hello https://x.y")
    }

    #[test]
    fn the_sent_message_is_read_from_the_prepared_call() {
        let p = crate::params::message_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": " Hello[BR]"}))
            .expect("valid");
        assert_eq!(Sent::of(&p), Some(Sent::new(8773, 12, "Hello")));
        assert_eq!(Sent::of(&p).map(|s| s.text), Some("Hello".to_owned()));
        let w = watermark_call(8773);
        assert_eq!(w.method, HISTORY);
        assert!(!w.write);
        assert_eq!(watermark(&json!({"messages": [{"id": 7}]})), Some(7));
        assert_eq!(watermark(&json!({"messages": []})), Some(0));
        assert_eq!(watermark(&json!(false)), None);
    }

    #[test]
    fn a_match_is_the_first_message_by_the_author_in_either_form_not_claimed() {
        let o = Outbox::default();
        let shown = "Hello [URL]https://x.y[/URL]".to_owned();
        let history = vec![
            (101, 12, shown.clone()),
            (102, 14, shown.clone()),
            (103, 12, "Hello https://x.y".to_owned()),
        ];
        assert_eq!(judge(&history, &sent(), &[], &o), Look::Found(101));
        assert_eq!(judge(&history, &sent(), &[101], &o), Look::Found(103));
        assert_eq!(
            judge(&history, &sent(), &[101, 103], &o),
            Look::Absent,
            "another author's message is no reason to doubt"
        );
    }

    #[test]
    fn absence_is_proven_only_when_every_message_by_the_author_is_accounted_for() {
        let mut o = Outbox::default();
        let history = vec![
            (201, 12, "Order [URL]https://x.y/1[/URL]".to_owned()),
            (202, 12, "typed by the operator".to_owned()),
            (203, 12, "answered".to_owned()),
        ];
        assert_eq!(
            judge(&history, &sent(), &[], &o),
            Look::Unproven(vec![201, 202, 203])
        );
        let other = o.enter(Sent::new(8773, 12, "Order https://x.y/1"));
        o.close(other, None, true);
        let answered = o.enter(Sent::new(8773, 12, "answered"));
        o.close(answered, Some(203), false);
        assert_eq!(judge(&history, &sent(), &[], &o), Look::Unproven(vec![202]));
        assert_eq!(judge(&history, &sent(), &[202], &o), Look::Absent);
    }

    #[test]
    fn only_an_answer_or_a_closed_connection_shows_that_a_request_ended() {
        assert!(ended(&Error::network("m", "reset", true)));
        assert!(ended(&Error::bad_response("m", 502, "an HTML page", true)));
        assert!(!ended(&Error::timeout("m", 100, true)));
        assert!(!ended(&Error::aborted("m", true)));
        let e = Error::timeout("m", 100, true).with_candidates(vec![5, 7]);
        assert_eq!(&*e.details().candidates, &[5, 7]);
        assert!(e.to_string().contains("ids 5, 7"), "{e}");
        assert!(Error::timeout("m", 100, true)
            .still_running()
            .to_string()
            .contains("still running"));
    }
}
