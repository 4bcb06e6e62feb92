//! A message to a CRM item's customer, as data: who sends, into which chat, joining
//! the sender when the portal says it is not a member, and, when nothing can be sent,
//! why.
//!
//! ```text
//!  Sender ─ userId │ the webhook's user │ user.current (once per client)
//!    ▼
//!  Chats ─ chatId │ imopenlines.crm.chat.get (active only; of connectorId), newest
//!    │ none ─▶ Explain (ACTIVE_ONLY=N) ─▶ NO_CHAT │ NO_ACTIVE_CHAT │ NO_CHAT_ON_CONNECTOR
//!    ▼
//!  Send (verified when `verify`) ─ id ─▶ Leave (`leave`, a sender this call added) ─▶ done
//!    │ CANCELED/MESSAGE_ADD_ERROR (nothing stored), `join`, not joined yet
//!    │     ─▶ Join (imopenlines.crm.chat.user.add) ─▶ Send
//!    │     (already a member: the send's own error; refused: CANNOT_JOIN)
//!    │ CHAT_NOT_IN_CRM, the chat chosen here, once ─▶ Chats again, without that chat
//!    └ any other error ─▶ failed as the send says
//! ```
//!
//! Every error before the send says that the message was not sent. The send itself is
//! a plain exchange, or a verified send ([`super::verify`]) with its rules.

use super::verify::{Flow, VerifySend};
use super::{Answer, Ms, Outcome2, Shared, Step};
use crate::auth::Auth;
use crate::envelope::Success;
use crate::error::Error;
use crate::json::{Json, JsonView};
use crate::params::{self, Chat, Decoded, Prepared, ToItem, CHAT_GET, MESSAGE_ADD};
use crate::text;

/// Codes of what stood in the way of a message to a CRM item (nothing was sent).
pub mod refusals {
    /// The item has no open-line chat at all.
    pub const NO_CHAT: &str = "NO_CHAT";
    /// The item's dialogues are finished, closing or still queued.
    pub const NO_ACTIVE_CHAT: &str = "NO_ACTIVE_CHAT";
    /// No active chat of the item is on the connector asked for.
    pub const NO_CHAT_ON_CONNECTOR: &str = "NO_CHAT_ON_CONNECTOR";
    /// The sender is not a member of the chat and `join` is off.
    pub const NOT_A_MEMBER: &str = "NOT_A_MEMBER";
    /// The sender could not be added to the chat.
    pub const CANNOT_JOIN: &str = "CANNOT_JOIN";
}

/// `user.current`, the caller's own user.
const USER_CURRENT: &str = "user.current";

/// What a message to a CRM item resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The message id.
    pub id: u64,
    /// The chat it went to.
    pub chat: u64,
    /// That chat's connector id and title (unknown when the caller named the chat).
    pub connector: Option<(String, String)>,
    /// The sender.
    pub user: u64,
    /// Whether this call added the sender to the chat.
    pub joined: bool,
    /// Whether reading the chat established the id.
    pub verified: bool,
    /// With `leave`, after joining: whether the sender was removed again, or why not.
    pub left: Option<Result<(), Error>>,
}

#[derive(Debug)]
enum Phase {
    Sender,
    Chats,
    Explain,
    Send,
    Join,
    Leave,
}

/// A message to a CRM item in progress.
#[derive(Debug)]
pub struct ItemSend {
    to: ToItem,
    join: bool,
    leave: bool,
    settle_ms: Option<u32>,
    user: u64,
    chat: u64,
    connector: Option<(String, String)>,
    /// Whether this call chose the chat (it may then choose another one).
    chosen: bool,
    /// Chats that answered `CHAT_NOT_IN_CRM` to this call.
    ended: Vec<u64>,
    joined: bool,
    /// The send's refusal while the sender is being added.
    refusal: Option<Error>,
    verify: Option<Box<VerifySend>>,
    delivered: Option<Delivered>,
    phase: Phase,
}

impl ItemSend {
    pub(crate) fn new(to: ToItem, join: bool, leave: bool, settle_ms: Option<u32>) -> ItemSend {
        ItemSend {
            user: to.user.unwrap_or(0),
            chat: to.chat.unwrap_or(0),
            to,
            join,
            leave,
            settle_ms,
            connector: None,
            chosen: false,
            ended: Vec::new(),
            joined: false,
            refusal: None,
            verify: None,
            delivered: None,
            phase: Phase::Sender,
        }
    }

    pub(crate) fn begin(&mut self, shared: &Shared) -> Step {
        if self.user == 0 {
            self.user = match &shared.auth {
                Auth::Webhook(w) => w.user(),
                Auth::Token { .. } => shared.current_user.unwrap_or(0),
            };
        }
        if self.user == 0 {
            self.phase = Phase::Sender;
            return Step::Call(user_current(), 0);
        }
        self.pick()
    }

    /// The chat: the caller's, or the item's active ones to choose from.
    fn pick(&mut self) -> Step {
        if self.chat != 0 {
            return self.send();
        }
        self.read_chats()
    }

    fn read_chats(&mut self) -> Step {
        self.phase = Phase::Chats;
        Step::Call(self.to.chats(true), 0)
    }

    fn send(&mut self) -> Step {
        self.phase = Phase::Send;
        let prepared = self.to.send(self.user, self.chat);
        match self.settle_ms {
            None => Step::Call(prepared, 0),
            Some(settle) => {
                let mut v = Box::new(VerifySend::single(prepared, settle));
                let flow = v.start();
                self.verify = Some(v);
                self.flow(flow)
            }
        }
    }

    /// A verified send's move: its exchanges and waits are this program's.
    fn flow(&mut self, flow: Flow) -> Step {
        match flow {
            Flow::Call(p, watch) => Step::Call(p, watch),
            Flow::Wait(at) => Step::Wait(at),
            Flow::End(result) => {
                self.verify = None;
                self.sent(result)
            }
        }
    }

    pub(crate) fn on_wake(&mut self, on_time: bool) -> Step {
        match self.verify.as_mut() {
            Some(v) => {
                let flow = v.woke(on_time);
                self.flow(flow)
            }
            None => Step::Done(Err(Error::no_auth(MESSAGE_ADD, "nothing to wait for"))),
        }
    }

    pub(crate) fn on_outcome(&mut self, shared: &mut Shared, outcome: Outcome2, now: Ms) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Send) {
            Phase::Sender => match outcome.and_then(user_of) {
                Ok(user) => {
                    shared.current_user = Some(user);
                    self.user = user;
                    self.pick()
                }
                Err(e) => fail(e),
            },
            Phase::Chats => match self.chat_list(outcome) {
                Err(e) => fail(e),
                Ok(chats) => {
                    if let Some(c) = choose(&self.to, &self.ended, &chats) {
                        self.chat = c.chat_id;
                        self.connector = Some((c.connector_id.clone(), c.connector_title.clone()));
                        self.chosen = true;
                        return self.send();
                    }
                    let active: Vec<Chat> = chats
                        .into_iter()
                        .filter(|c| !self.ended.contains(&c.chat_id))
                        .collect();
                    if self.to.connector.is_some() && !active.is_empty() {
                        return fail(no_chat_on_connector(&self.to, &active));
                    }
                    self.phase = Phase::Explain;
                    Step::Call(self.to.chats(false), 0)
                }
            },
            Phase::Explain => match self.chat_list(outcome) {
                Err(e) => fail(e),
                Ok(all) => fail(explain(&self.to, &all)),
            },
            Phase::Send => match self.verify.as_mut() {
                Some(v) => {
                    let flow = v.next(shared, outcome, now);
                    self.phase = Phase::Send;
                    self.flow(flow)
                }
                None => {
                    let prepared = self.to.send(self.user, self.chat);
                    let result = outcome
                        .and_then(|s| params::decode(&prepared, s.status, s.result))
                        .and_then(|d| match d {
                            Decoded::Number(id) => Ok((id, false)),
                            _ => Err(Error::bad_response(
                                MESSAGE_ADD,
                                200,
                                "a result that is not an id",
                                true,
                            )),
                        });
                    self.sent(result)
                }
            },
            Phase::Join => {
                let refusal = self.refusal.take();
                match outcome {
                    Ok(_) => {
                        self.joined = true;
                        self.send()
                    }
                    // Already a member: the refusal was not about membership.
                    Err(e) if e.code() == "WRONG_REQUEST" => Step::Done(Err(refusal.unwrap_or(e))),
                    Err(e) => Step::Done(Err(cannot_join(
                        &self.to,
                        self.user,
                        self.chat,
                        &e,
                        refusal.as_ref(),
                    ))),
                }
            }
            Phase::Leave => {
                let left = outcome.map(|_| ());
                let mut delivered = self.delivered.take();
                if let Some(d) = delivered.as_mut() {
                    d.left = Some(left);
                }
                done(delivered)
            }
        }
    }

    /// The send ended: delivered, or refused for a reason this program can remove.
    fn sent(&mut self, result: Result<(u64, bool), Error>) -> Step {
        let e = match result {
            Ok((id, verified)) => {
                let delivered = Delivered {
                    id,
                    chat: self.chat,
                    connector: self.connector.clone(),
                    user: self.user,
                    joined: self.joined,
                    verified,
                    left: None,
                };
                if self.leave && self.joined {
                    self.delivered = Some(delivered);
                    self.phase = Phase::Leave;
                    return Step::Call(self.to.member(false, self.user, self.chat), 0);
                }
                return done(Some(delivered));
            }
            Err(e) => e,
        };
        let code = e.code();
        // The sender is not a member (nothing was stored): add it, once.
        if not_member(&e) {
            if !self.join {
                return Step::Done(Err(not_a_member(self.user, self.chat, &e)));
            }
            if !self.joined {
                self.refusal = Some(e);
                self.phase = Phase::Join;
                return Step::Call(self.to.member(true, self.user, self.chat), 0);
            }
        }
        // The dialogue ended after the chat was chosen: choose again, once.
        if code == ENDED && self.chosen && self.ended.is_empty() {
            self.ended.push(self.chat);
            self.chat = 0;
            self.joined = false;
            return self.read_chats();
        }
        Step::Done(Err(e))
    }

    fn chat_list(&self, outcome: Outcome2) -> Result<Vec<Chat>, Error> {
        outcome.and_then(|s| chat_list(&self.to, s.status, s.result))
    }
}

/// `user.current`: who the credentials act for.
pub(super) fn user_current() -> Prepared {
    Prepared {
        method: USER_CURRENT.to_owned(),
        params: params::Params::Fields(Vec::new()),
        output: params::Output::Raw,
        write: false,
    }
}

/// The user id in `user.current`'s answer.
pub(super) fn user_of(success: Success<Json>) -> Result<u64, Error> {
    success
        .result
        .get("ID")
        .and_then(|v| params::positive_id(&v.shape()))
        .ok_or_else(|| Error::bad_response(USER_CURRENT, 200, "a user without a valid ID", false))
}

/// The portal's refusal of a sender that is not a member (nothing was stored).
pub(super) fn not_member(e: &Error) -> bool {
    e.code() == "CANCELED" || e.code() == "MESSAGE_ADD_ERROR"
}

/// The refusal of a chat whose dialogue is not active.
pub(super) const ENDED: &str = "CHAT_NOT_IN_CRM";

/// Whether `chat` is on the connector `to` asks for (any, when none).
pub(super) fn on_connector(to: &ToItem, chat: &Chat) -> bool {
    to.connector
        .as_deref()
        .is_none_or(|c| chat.connector_id.eq_ignore_ascii_case(c))
}

/// The chats of an `imopenlines.crm.chat.get` result.
pub(super) fn chat_list(to: &ToItem, status: u16, result: Json) -> Result<Vec<Chat>, Error> {
    match params::decode(&to.chats(true), status, result)? {
        Decoded::Chats(chats) => Ok(chats),
        _ => Err(Error::bad_response(CHAT_GET, 200, "not a chat list", false)),
    }
}

/// The item's newest chat that fits: on its connector, not among `ended`.
pub(super) fn choose<'a>(to: &ToItem, ended: &[u64], chats: &'a [Chat]) -> Option<&'a Chat> {
    chats
        .iter()
        .find(|c| !ended.contains(&c.chat_id) && on_connector(to, c))
}

/// Active chats, but none on the connector asked for.
pub(super) fn no_chat_on_connector(to: &ToItem, active: &[Chat]) -> Error {
    let mut d = to.item();
    d.push_str(" has no active open-line chat on connector '");
    d.push_str(to.connector.as_deref().unwrap_or(""));
    d.push_str("'; its active chats are on: ");
    list(&mut d, active);
    d.push_str("; pass one of those connectorIds, or none for the newest chat");
    Error::nothing_to_send(CHAT_GET, refusals::NO_CHAT_ON_CONNECTOR, 200, d)
}

/// Why no active chat fits, from all the item's chats (`ACTIVE_ONLY=N`).
pub(super) fn explain(to: &ToItem, all: &[Chat]) -> Error {
    let mut d = to.item();
    let all: Vec<Chat> = all
        .iter()
        .filter(|c| on_connector(to, c))
        .cloned()
        .collect();
    if all.is_empty() {
        let code = match &to.connector {
            Some(c) => {
                d.push_str(" has no open-line chat on connector '");
                d.push_str(c);
                d.push('\'');
                refusals::NO_CHAT_ON_CONNECTOR
            }
            None => {
                d.push_str(
                    " has no open-line chat: the customer has not written to an open line linked to it",
                );
                refusals::NO_CHAT
            }
        };
        return Error::nothing_to_send(CHAT_GET, code, 200, d);
    }
    d.push_str(" has no active open-line dialogue; its chats: ");
    list(&mut d, &all);
    d.push_str(
        " are finished, closing, or waiting in the queue for an operator. \
         A message can be sent once an operator has taken the dialogue (or the customer \
         writes again and it is taken); taking a queued one \
         (imopenlines.operator.answer) removes the other operators from the chat",
    );
    Error::nothing_to_send(CHAT_GET, refusals::NO_ACTIVE_CHAT, 200, d)
}

/// `join: false` and the portal refused the sender.
pub(super) fn not_a_member(user: u64, chat: u64, e: &Error) -> Error {
    let mut d = String::from("user ");
    text::push_decimal(&mut d, user);
    d.push_str(" is not a member of chat ");
    text::push_decimal(&mut d, chat);
    d.push_str(" (");
    d.push_str(e.code());
    d.push_str(": ");
    d.push_str(&e.details().description);
    d.push_str("); pass join: true, or add the user with crmChatUserAdd first");
    Error::nothing_to_send(MESSAGE_ADD, refusals::NOT_A_MEMBER, e.details().status, d)
}

/// The sender was refused and could not be added (`e`: the portal's answer to the join).
pub(super) fn cannot_join(
    to: &ToItem,
    user: u64,
    chat: u64,
    e: &Error,
    refusal: Option<&Error>,
) -> Error {
    let mut d = String::from("user ");
    text::push_decimal(&mut d, user);
    d.push_str(" may not write to chat ");
    text::push_decimal(&mut d, chat);
    d.push_str(" of ");
    d.push_str(&to.item());
    if let Some(r) = refusal {
        d.push_str(" (");
        d.push_str(r.code());
        d.push(')');
    }
    d.push_str(" and could not be added to it: ");
    d.push_str(e.code());
    d.push_str(": ");
    d.push_str(&e.details().description);
    let mut err = Error::nothing_to_send(
        params::CHAT_USER_ADD,
        refusals::CANNOT_JOIN,
        e.details().status,
        d,
    );
    if e.details().retryable {
        err.set_retryable();
    }
    err
}

/// `deal 290`'s chats as `8810 (WhatsApp), 8811 (Telegram)`.
fn list(d: &mut String, chats: &[Chat]) {
    for (i, c) in chats.iter().enumerate() {
        if i > 0 {
            d.push_str(", ");
        }
        d.push_str("chat ");
        text::push_decimal(d, c.chat_id);
        d.push_str(" (");
        d.push_str(if c.connector_id.is_empty() {
            "no connector"
        } else {
            &c.connector_id
        });
        d.push(')');
    }
}

/// A step before the message failed: the message was not sent.
pub(super) fn fail(e: Error) -> Step {
    Step::Done(Err(e.before_message()))
}

fn done(delivered: Option<Delivered>) -> Step {
    match delivered {
        Some(d) => Step::Done(Ok(Answer::Item(Box::new(d)))),
        None => Step::Done(Err(Error::no_auth(MESSAGE_ADD, "no message"))),
    }
}
