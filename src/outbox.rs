//! The messages a client has sent or is sending, so that verified delivery can tell
//! this client's messages in a chat from anyone else's.
//!
//! Every `imopenlines.crm.message.add` attempt and every message of a mass send is
//! entered here while it runs. An answered message leaves with its id, which is kept
//! (the last [`IDS_KEPT`]); one whose outcome is unknown stays (the last
//! [`UNKNOWN_KEPT`]), since its message may still appear in the chat. A message by the
//! same author in a chat that is neither one of these ids nor the text of one of these
//! messages is someone else's: the operator typing in the messenger, another app, or a
//! text this client cannot recognise.

use crate::message_text;
use crate::params::{Field, Params, Prepared, MESSAGE_ADD};

/// What a sent message is recognised by in the chat's history.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The chat it went to.
    pub chat_id: u64,
    /// The sender (`USER_ID`), the history's `author_id`.
    pub author: u64,
    /// The text as the messenger stores it ([`message_text::stored`]).
    pub text: String,
    /// Its canonical form ([`message_text::canonical`]), made when first compared:
    /// most messages are never looked for.
    canonical: std::cell::OnceCell<String>,
}

/// Two messages are the same by chat, author and stored text (the canonical form
/// follows from the text).
impl PartialEq for Sent {
    fn eq(&self, other: &Self) -> bool {
        self.chat_id == other.chat_id && self.author == other.author && self.text == other.text
    }
}

impl Eq for Sent {}

impl Sent {
    /// The message of a prepared `imopenlines.crm.message.add` call.
    pub fn of(prepared: &Prepared) -> Option<Sent> {
        let (chat_id, author, text) = fields(prepared)?;
        Some(Sent::new(chat_id, author, text))
    }

    /// The chat of a prepared `imopenlines.crm.message.add` call.
    pub fn chat_of(prepared: &Prepared) -> Option<u64> {
        fields(prepared).map(|(chat, _, _)| chat)
    }

    /// The message of `raw` text sent to `chat_id` as `author`.
    pub fn new(chat_id: u64, author: u64, raw: &str) -> Sent {
        let text = message_text::stored(raw);
        Sent {
            chat_id,
            author,
            text,
            canonical: std::cell::OnceCell::new(),
        }
    }

    /// Whether a history message (its author and text as shown) is this message.
    pub fn is(&self, author: u64, shown: &str) -> bool {
        author == self.author
            && message_text::recognises(
                &self.text,
                self.canonical
                    .get_or_init(|| message_text::canonical(&self.text)),
                shown,
            )
    }
}

/// `CHAT_ID`, `USER_ID` and `MESSAGE` of a prepared `imopenlines.crm.message.add`.
fn fields(prepared: &Prepared) -> Option<(u64, u64, &str)> {
    if prepared.method != MESSAGE_ADD {
        return None;
    }
    let Params::Fields(fields) = &prepared.params else {
        return None;
    };
    let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    match (field("CHAT_ID"), field("USER_ID"), field("MESSAGE")) {
        (Some(Field::Int(chat)), Some(Field::Int(author)), Some(Field::Str(text))) => {
            Some((*chat, *author, text.as_str()))
        }
        _ => None,
    }
}

/// How many ids of answered messages are kept.
pub const IDS_KEPT: usize = 4096;
/// How many messages with an unknown outcome are kept.
pub const UNKNOWN_KEPT: usize = 256;

/// A client's messages in flight or with an unknown outcome, and the ids of its
/// answered ones.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Messages in flight (`false`) or whose outcome is unknown (`true`), by key.
    open: Vec<(u64, bool, Sent)>,
    ids: Vec<u64>,
    next: u64,
}

impl Outbox {
    /// Enters a message about to be sent; the key closes it.
    pub fn enter(&mut self, sent: Sent) -> u64 {
        self.next += 1;
        self.open.push((self.next, false, sent));
        self.next
    }

    /// Closes an entry: answered with `id`, or not stored (`None`, `unknown` false),
    /// or of unknown outcome (`None`, `unknown` true: kept, it may still appear).
    pub fn close(&mut self, key: u64, id: Option<u64>, unknown: bool) {
        let Some(at) = self.open.iter().position(|(k, _, _)| *k == key) else {
            return;
        };
        if id.is_none() && unknown {
            if let Some(e) = self.open.get_mut(at) {
                e.1 = true;
            }
            let kept = self.open.iter().filter(|e| e.1).count();
            if kept > UNKNOWN_KEPT {
                if let Some(oldest) = self.open.iter().position(|e| e.1) {
                    self.open.remove(oldest);
                }
            }
            return;
        }
        self.open.remove(at);
        if let Some(id) = id {
            self.known(id);
        }
    }

    /// Records the id of a message of this client (an answer, or found by reading).
    pub fn known(&mut self, id: u64) {
        if self.ids.len() >= IDS_KEPT {
            self.ids.remove(0);
        }
        self.ids.push(id);
    }

    /// Verification settled a message of unknown outcome: found with `id`, or shown
    /// absent (`None`). One entry of that message leaves.
    pub fn settled(&mut self, sent: &Sent, id: Option<u64>) {
        if let Some(at) = self.open.iter().position(|(_, u, s)| *u && s == sent) {
            self.open.remove(at);
        }
        if let Some(id) = id {
            self.known(id);
        }
    }

    /// Whether message `id` of `author` in `chat`, shown as `text`, is this client's:
    /// an id it was answered with, or the text of a message it has in flight or of
    /// unknown outcome.
    pub fn accounts_for(&self, chat: u64, id: u64, author: u64, text: &str) -> bool {
        self.ids.contains(&id)
            || self
                .open
                .iter()
                .any(|(_, _, s)| s.chat_id == chat && s.is(author, text))
    }

    /// Whether `id` is the id of a message this client was answered with.
    pub fn has_id(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(text: &str) -> Sent {
        Sent::new(8773, 12, text)
    }

    #[test]
    fn answered_messages_are_known_by_id_and_unknown_ones_by_text() {
        let mut o = Outbox::default();
        let a = o.enter(sent("a https://x.y"));
        let b = o.enter(sent("b"));
        let c = o.enter(sent("c"));
        assert!(o.accounts_for(8773, 1, 12, "a [URL]https://x.y[/URL]"));
        assert!(
            !o.accounts_for(8774, 1, 12, "a https://x.y"),
            "another chat"
        );
        assert!(
            !o.accounts_for(8773, 1, 13, "a https://x.y"),
            "another author"
        );
        o.close(a, Some(501), false);
        o.close(b, None, false);
        o.close(c, None, true);
        assert!(o.accounts_for(8773, 501, 12, "anything"), "by its id");
        assert!(
            !o.accounts_for(8773, 502, 12, "a https://x.y"),
            "answered: only its id"
        );
        assert!(!o.accounts_for(8773, 502, 12, "b"), "not stored");
        assert!(o.accounts_for(8773, 503, 12, "c"), "unknown: kept");
        o.settled(&sent("c"), Some(503));
        assert!(o.accounts_for(8773, 503, 12, "x"));
        assert!(!o.accounts_for(8773, 504, 12, "c"));
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let mut o = Outbox::default();
        for i in 0..(UNKNOWN_KEPT as u64 + 10) {
            let k = o.enter(sent(&format!("m{i}")));
            o.close(k, None, true);
        }
        assert!(!o.accounts_for(8773, 0, 12, "m0"), "the oldest left");
        assert!(o.accounts_for(8773, 0, 12, &format!("m{}", UNKNOWN_KEPT + 9)));
        for i in 0..(IDS_KEPT as u64 + 1) {
            o.known(i);
        }
        assert!(!o.has_id(0) && o.has_id(IDS_KEPT as u64));
    }
}
