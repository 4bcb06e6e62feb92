//! Verified delivery: when a message's outcome is unknown, read the chat back to find
//! out, and send it again only once the chat shows it was not stored.
//!
//! `imopenlines.crm.message.add` takes no idempotency key. Before sending, the client
//! reads the chat's last message id (the watermark) with `im.dialog.messages.get`
//! (`LAST_ID: 0`, scope `im`). When the answer is lost, it reads the messages after the
//! watermark (`FIRST_ID`, oldest first) and looks for one by the same author with the
//! same text as the messenger stores it. Found: delivered, with its real id. Absent: the
//! request may still be running on the portal, so the client waits a settle window and
//! reads again; absent again, it sends once more. A wait or read it cannot finish (the
//! caller's signal, a refused read) leaves the outcome unknown.

use crate::client::{Client, Transport};
use crate::error::{Error, Outcome};
use crate::json::{JsonView, Shape};
use crate::params::{Decoded, Field, Output, Params, Prepared};

/// The method that reads a chat's history.
pub const HISTORY: &str = "im.dialog.messages.get";

/// The longest page `im.dialog.messages.get` returns.
const PAGE: u64 = 50;

/// The messenger's length limit: longer texts are cut to this many characters and
/// ` (...)`.
const MESSAGE_LIMIT: usize = 20_000;

/// What a sent message is recognised by in the chat's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The chat it went to.
    pub chat_id: u64,
    /// The sender (`USER_ID`), the history's `author_id`.
    pub author: u64,
    /// The text as the messenger stores it ([`stored_text`]).
    pub text: String,
}

impl Sent {
    /// The message of a prepared `imopenlines.crm.message.add` call.
    pub fn of(prepared: &Prepared) -> Option<Sent> {
        let Params::Fields(fields) = &prepared.params else {
            return None;
        };
        let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
        match (field("CHAT_ID"), field("USER_ID"), field("MESSAGE")) {
            (Some(Field::Int(chat_id)), Some(Field::Int(author)), Some(Field::Str(text))) => {
                Some(Sent {
                    chat_id: *chat_id,
                    author: *author,
                    text: stored_text(text),
                })
            }
            _ => None,
        }
    }
}

/// What the messenger stores for a message text: `[BR]`, `[br]` and `#BR#` become line
/// breaks, surrounding whitespace is trimmed, and a text longer than 20,006 characters
/// is cut to 20,000 followed by ` (...)`.
pub fn stored_text(raw: &str) -> String {
    let text = ["[BR]", "[br]", "#BR#"]
        .iter()
        .fold(raw.to_owned(), |t, tag| crate::text::replace(&t, tag, "\n"));
    let text = text.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0b']);
    if text.chars().count() > MESSAGE_LIMIT + 6 {
        let mut cut: String = text.chars().take(MESSAGE_LIMIT).collect();
        cut.push_str(" (...)");
        cut
    } else {
        text.to_owned()
    }
}

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

/// Finds the first message matching `sent` after `mark` whose id is not `claimed` (by
/// other messages of the same send). `Ok(None)`: not there (yet).
pub async fn find<T: Transport, S: Steps<T>>(
    client: &Client<T>,
    steps: &S,
    sent: &Sent,
    mark: u64,
    claimed: &[u64],
) -> Result<Option<u64>, Error> {
    let history = read_after(client, steps, sent.chat_id, mark).await?;
    Ok(first_unclaimed(&history, sent, claimed))
}

/// The first message of `history` by `sent`'s author with its text, not `claimed`.
fn first_unclaimed(history: &[(u64, u64, String)], sent: &Sent, claimed: &[u64]) -> Option<u64> {
    history
        .iter()
        .find(|(id, author, text)| {
            *author == sent.author && *text == sent.text && !claimed.contains(id)
        })
        .map(|(id, _, _)| *id)
}

fn with_verified(mut e: Error, verified: bool) -> Error {
    e.set_verified(verified);
    e
}

/// How many times a message may be sent in all: a send is repeated only after the
/// chat showed the previous one was not stored.
const MAX_SENDS: u32 = 3;

/// Sends `prepared` (a message) after the watermark `mark` was read, and settles an
/// unknown outcome by reading the chat: found → delivered; absent after `settle_ms` →
/// not stored, so sent again (at most `MAX_SENDS` sends in all). `claimed`: ids of
/// other messages of the same send with the same author and text, never taken for this
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
        // A send after the first is verified: the chat showed the earlier one absent.
        let verified = sends > 1;
        let answer = match steps.options() {
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
        // First read: a request that ended on the portal (5xx, cut body, dropped after
        // storing) shows its message now.
        match find(client, steps, &sent, mark, claimed).await {
            Ok(Some(id)) => return Settled::Delivered { id, verified: true },
            Ok(None) => {}
            Err(_) => return Settled::Failed(unknown),
        }
        // The request may still be running: wait, then read again.
        if !steps.settle(settle_ms).await {
            return Settled::Failed(unknown);
        }
        match find(client, steps, &sent, mark, claimed).await {
            Ok(Some(id)) => return Settled::Delivered { id, verified: true },
            Ok(None) => {}
            Err(_) => return Settled::Failed(unknown),
        }
        if sends >= MAX_SENDS {
            return Settled::Failed(unknown);
        }
        // Not stored: sending again cannot duplicate it.
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
        let list = messages(&result);
        let full = list.len() as u64 >= PAGE;
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
        match last {
            Some(l) if full && l > from => from = l,
            _ => return Ok(out),
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
/// order: a match not claimed by another message of the send is this one's; those
/// still absent after `settle_ms` are sent again through [`send`].
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
    for pass in 0..2 {
        // Before the second pass, the settle window (none to wait for: done).
        if pass == 1 && (!entries.iter().any(unknown) || !steps.settle(settle_ms).await) {
            return;
        }
        // Each chat's history after its watermark is read once per pass, for all of
        // its unknown messages.
        let chats: Vec<(u64, u64)> = entries
            .iter()
            .filter(|e| unknown(e))
            .filter_map(|e| Some((e.prepared.as_ref().and_then(Sent::of)?.chat_id, e.mark)))
            .collect();
        for (chat, mark) in sorted_unique(chats) {
            let Ok(history) = read_after(client, steps, chat, mark).await else {
                continue;
            };
            for e in entries.iter_mut().filter(|e| unknown(e) && e.mark == mark) {
                let Some(sent) = e.prepared.as_ref().and_then(Sent::of) else {
                    continue;
                };
                if sent.chat_id != chat {
                    continue;
                }
                if let Some(id) = first_unclaimed(&history, &sent, &claimed) {
                    claimed.push(id);
                    e.outcome = Ok(id);
                    e.verified = true;
                }
            }
        }
    }
    // Still absent after the settle window: not stored, so sent again.
    for e in entries.iter_mut().filter(|e| unknown(e)) {
        let Some(prepared) = e.prepared.clone() else {
            continue;
        };
        match send(client, steps, &prepared, e.mark, &claimed, settle_ms).await {
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
    use serde_json::json;

    fn sent() -> Sent {
        Sent {
            chat_id: 8773,
            author: 12,
            text: "Hello".into(),
        }
    }

    #[test]
    fn texts_compare_as_the_messenger_stores_them() {
        assert_eq!(stored_text("  a[BR]b#BR#c[br]d \n"), "a\nb\nc\nd");
        let long = "x".repeat(20_010);
        let stored = stored_text(&long);
        assert!(stored.ends_with(" (...)"));
        assert_eq!(stored.chars().count(), 20_006);
        assert_eq!(stored_text(&"y".repeat(20_006)).chars().count(), 20_006);
    }

    #[test]
    fn the_sent_message_is_read_from_the_prepared_call() {
        let p = crate::params::message_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": " Hello[BR]"}))
            .expect("valid");
        assert_eq!(
            Sent::of(&p),
            Some(Sent {
                chat_id: 8773,
                author: 12,
                text: "Hello".into()
            })
        );
        let w = watermark_call(8773);
        assert_eq!(w.method, HISTORY);
        assert!(!w.write);
    }

    #[test]
    fn a_match_is_the_first_unclaimed_message_by_the_same_author_and_text() {
        let history = vec![
            (101, 12, "Hello".to_owned()),
            (102, 14, "Hello".to_owned()),
            (103, 12, "Hello again".to_owned()),
            (104, 12, "Hello".to_owned()),
        ];
        assert_eq!(first_unclaimed(&history, &sent(), &[]), Some(101));
        assert_eq!(first_unclaimed(&history, &sent(), &[101]), Some(104));
        assert_eq!(first_unclaimed(&history, &sent(), &[101, 104]), None);
        assert_eq!(watermark(&json!({"messages": [{"id": 7}]})), Some(7));
        assert_eq!(watermark(&json!({"messages": []})), Some(0));
        assert_eq!(watermark(&json!(false)), None);
    }
}
