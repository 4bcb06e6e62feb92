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

use crate::error::Error;
use crate::json::{JsonView, Shape};
#[cfg(doc)]
use crate::message_text;
use crate::params::{Field, Output, Params, Prepared};
use crate::text;

/// The method that reads a chat's history.
pub const HISTORY: &str = "im.dialog.messages.get";

/// The longest page `im.dialog.messages.get` returns.
const PAGE: u64 = 50;

pub use crate::outbox::Sent;

fn history_call(chat_id: u64, position: (&'static str, u64), limit: u64) -> Prepared {
    Prepared {
        method: HISTORY.to_owned(),
        params: Params::Fields(vec![
            (
                "DIALOG_ID",
                Field::Str(["chat", &text::decimal(chat_id)].concat()),
            ),
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
        Shape::String(s) => text::parse_u64(&s),
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

/// `v` in order without repeats. An insertion sort: the standard slice sorts (and
/// `BinaryHeap`) would add specialised code to the module for these short lists (a
/// message's chats, a batch's groups).
pub fn sorted_unique<T: Ord>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        // The first place whose item is not less than `x`: `x` goes there unless it
        // is already there.
        let at = out.iter().position(|y| *y >= x).unwrap_or(out.len());
        if out.get(at) != Some(&x) {
            out.insert(at, x);
        }
    }
    out
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

    #[test]
    fn sorted_unique_agrees_with_sort_and_dedup() {
        let lists: [Vec<u64>; 7] = [
            vec![],
            vec![7],
            vec![3, 3, 3],
            vec![1, 2, 3, 4],
            vec![4, 3, 2, 1],
            vec![5, 1, 5, 0, u64::MAX, 1, 9, 0, 2],
            (0..40).map(|i| (i * 7919) % 13).collect(),
        ];
        for v in lists {
            let mut std = v.clone();
            std.sort_unstable();
            std.dedup();
            assert_eq!(sorted_unique(v.clone()), std, "{v:?}");
            let pairs: Vec<(u64, u64)> = v.iter().map(|n| (n % 3, n / 2)).collect();
            let mut std = pairs.clone();
            std.sort_unstable();
            std.dedup();
            assert_eq!(sorted_unique(pairs), std, "{v:?}");
        }
    }
}
