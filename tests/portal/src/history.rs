//! Chat history: the messages each chat holds, how far each member has
//! read, and `im.dialog.messages.get` over them, after the im module
//! (`CIMRestService::dialogMessagesGet` → `\Bitrix\Im\Chat::getMessages`,
//! access by `\Bitrix\Im\Dialog::hasAccess`). The crate README lists the
//! facts and their sources.

use std::borrow::Cow;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::config::HistoryText;
use crate::crm;
use crate::envelope::{iso8601, RestError};
use crate::php;
use crate::request::Params;
use crate::state::{Directory, User};
use crate::text;

/// Text of the note `imopenlines.crm.message.add` attaches to every
/// message it sends. The server takes a localised string whose English
/// wording is not public; this one stands in for it.
pub const SENT_AUTOMATICALLY: &str = "This message was sent automatically";

/// Colour of the note (one of the messenger's palette colours; the server
/// picks one at random).
const NOTE_COLOR: &str = "#29619b";

/// A message in a chat's history.
#[derive(Clone, Debug)]
pub struct ChatMessage {
    /// Message id.
    pub id: i64,
    /// Author; 0 for a system message.
    pub author_id: i64,
    /// When it was stored, `date('c')`.
    pub date: String,
    /// Text as stored (see [`text::store`]).
    pub text: String,
    /// The attachment, if any.
    pub attach: Option<Attach>,
}

/// A message attachment (`CIMMessageParamAttach`) holding text blocks.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Attach {
    /// Unix time the attachment was made.
    pub id: i64,
    /// Its blocks.
    pub blocks: Vec<AttachBlock>,
    /// Description (empty).
    pub description: String,
    /// Colour.
    pub color: String,
}

/// A text block of an attachment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AttachBlock {
    /// The text.
    pub message: String,
}

/// Stores a message sent by `imopenlines.crm.message.add` in its chat's
/// history, with the "sent automatically" note; the author has read the
/// chat up to it. `text` is what the messenger stores ([`text::store`]).
pub fn append_from_crm(
    dir: &mut Directory,
    id: i64,
    chat_id: i64,
    author_id: i64,
    text: String,
    now: f64,
) {
    let attach = Attach {
        id: now as i64,
        blocks: vec![AttachBlock {
            message: SENT_AUTOMATICALLY.to_owned(),
        }],
        description: String::new(),
        color: NOTE_COLOR.to_owned(),
    };
    dir.history.entry(chat_id).or_default().push(ChatMessage {
        id,
        author_id,
        date: iso8601(now),
        text,
        attach: Some(attach),
    });
    dir.last_read.insert((chat_id, author_id), id);
}

/// A user joins a chat: what was there before counts as read.
pub fn join(dir: &mut Directory, chat_id: i64, user_id: i64) {
    let last = dir
        .history
        .get(&chat_id)
        .and_then(|h| h.last())
        .map_or(0, |m| m.id);
    dir.last_read.insert((chat_id, user_id), last);
}

/// Whether `user_id` may read chat `chat_id`'s history: a member may; for
/// an open-line chat also a user with the right to join the line's
/// dialogues (`Config::canJoin`; administrators have it here as for
/// `imopenlines.crm.chat.user.add`), a user who can read the CRM item the
/// dialogue is bound to, and the dialogue's operator (who has it among
/// their recent sessions).
pub fn may_read(dir: &Directory, user_id: i64, chat_id: i64) -> bool {
    let Some(chat) = dir.chats.get(&chat_id) else {
        return false;
    };
    if chat.members.contains(&user_id) {
        return true;
    }
    let Some(line) = &chat.open_line else {
        return false;
    };
    let reads_item = line.crm.is_some() && crm::has_crm_access(dir, user_id);
    crm::can_join_lines(dir, user_id) || reads_item || line.operator_id == user_id
}

/// The method's parameters by upper-cased name, as the handler sees them
/// after `array_change_key_case(…, CASE_UPPER)`; an exactly upper-case
/// name wins over another spelling of it.
fn upper_params(params: &Params) -> std::collections::BTreeMap<String, &Value> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in params {
        let upper = key.to_uppercase();
        if *key == upper || !out.contains_key(&upper) {
            out.insert(upper, value);
        }
    }
    out
}

/// PHP `isset`: present and not `null`.
fn isset(value: Option<&&Value>) -> bool {
    value.is_some_and(|v| !v.is_null())
}

/// `preg_match('/^\d{1,}$/i', $value)` then `intval`: a run of digits (a
/// final line break allowed, as `$` allows it); anything else is `None`.
fn digits(value: &Value) -> Option<i64> {
    let text = php::to_string(Some(value))?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(body.parse::<i64>().unwrap_or(i64::MAX))
}

/// What a valid `DIALOG_ID` names.
enum Dialog {
    /// `chatNNN`.
    Chat(i64),
    /// `sgNNN` or `crmNNN`: a chat this portal never has.
    Other,
    /// A user id: the private dialogue with that user.
    User(i64),
}

/// `\Bitrix\Im\Common::isDialogId`: a non-empty string or an integer of the
/// form `NNN`, `chatNNN`, `sgNNN` or `crmNNN` (any letter case).
fn dialog(value: Option<&&Value>) -> Option<Dialog> {
    let text = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return None,
    };
    if text.is_empty() || text == "0" {
        return None;
    }
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lower = body.to_ascii_lowercase();
    let split = lower.find(|c: char| c.is_ascii_digit())?;
    let (prefix, number) = lower.split_at(split);
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = number.parse::<i64>().unwrap_or(i64::MAX);
    match prefix {
        "" => Some(Dialog::User(id)),
        "chat" => Some(Dialog::Chat(id)),
        "sg" | "crm" => Some(Dialog::Other),
        _ => None,
    }
}

fn access_error() -> RestError {
    RestError::new(
        StatusCode::FORBIDDEN,
        "ACCESS_ERROR",
        "You do not have access to the specified dialog",
    )
}

/// Where a read starts.
#[derive(Clone, Copy)]
enum From {
    /// `FIRST_ID`: messages after it, oldest first.
    After(i64),
    /// `LAST_ID`: messages before it (0: from the newest), newest first.
    Before(i64),
    /// Neither given: like `Before(0)`, unless the reader has unread messages.
    Default,
}

/// A message as `im.dialog.messages.get` answers it.
#[derive(Serialize)]
struct MessageOut<'a> {
    id: i64,
    chat_id: i64,
    author_id: i64,
    date: &'a str,
    text: Cow<'a, str>,
    unread: bool,
    uuid: Option<()>,
    replaces: [(); 0],
    params: MessageParams<'a>,
    disappearing_date: Option<()>,
}

/// `params`: an object of parameters, or `[]` when the message has none.
#[derive(Serialize)]
#[serde(untagged)]
enum MessageParams<'a> {
    None([(); 0]),
    Attach {
        #[serde(rename = "ATTACH")]
        attach: [&'a Attach; 1],
    },
}

/// An author as the method lists them in `users`.
#[derive(Serialize)]
struct UserOut<'a> {
    id: i64,
    active: bool,
    name: String,
    first_name: &'a str,
    last_name: &'a str,
    work_position: &'a str,
    color: &'a str,
    avatar: &'a str,
    avatar_hr: &'a str,
    gender: &'a str,
    birthday: &'a str,
    extranet: bool,
    network: bool,
    bot: bool,
    connector: bool,
    external_auth_id: &'a str,
    status: &'a str,
    idle: bool,
    last_activity_date: bool,
    mobile_last_date: bool,
    desktop_last_date: bool,
    absent: bool,
    departments: Vec<i64>,
    phones: bool,
    bot_data: Option<()>,
    #[serde(rename = "type")]
    kind: &'a str,
    website: &'a str,
    email: &'a str,
}

impl<'a> UserOut<'a> {
    fn new(user: &'a User) -> Self {
        Self {
            id: user.id,
            active: user.active,
            name: user.full_name(),
            first_name: &user.name,
            last_name: &user.last_name,
            work_position: "",
            color: if user.bot { "#8474c8" } else { "#df532d" },
            avatar: "",
            avatar_hr: "",
            gender: &user.gender,
            birthday: "",
            extranet: false,
            network: false,
            bot: user.bot,
            connector: false,
            external_auth_id: if user.bot { "bot" } else { "default" },
            status: "online",
            idle: false,
            last_activity_date: false,
            mobile_last_date: false,
            desktop_last_date: false,
            absent: false,
            departments: if user.bot { Vec::new() } else { vec![1] },
            phones: false,
            bot_data: None,
            kind: if user.bot { "bot" } else { "user" },
            website: "",
            email: "",
        }
    }
}

/// The method's `result`.
#[derive(Serialize)]
struct Answer<'a> {
    chat_id: i64,
    messages: Vec<MessageOut<'a>>,
    users: Vec<UserOut<'a>>,
    files: [(); 0],
}

/// `im.dialog.messages.get` for `reader`: the answer, or `false` for a
/// private dialogue this portal does not have. Each message's `text` is
/// what `text_mode` says: the stored text through the messenger's parser
/// ([`text::parse`], current portals, user names as they are now) or the
/// stored text itself (old portals).
pub fn dialog_messages_get(
    dir: &Directory,
    reader: i64,
    params: &Params,
    text_mode: HistoryText,
) -> Result<Box<serde_json::value::RawValue>, RestError> {
    let args = upper_params(params);
    let chat_id_text;
    let mut dialog_arg = args.get("DIALOG_ID").copied();
    if let Some(chat_id) = args.get("CHAT_ID").filter(|v| !v.is_null()) {
        if php::to_int(Some(chat_id)) > 0 {
            let raw = php::to_string(Some(chat_id)).unwrap_or_else(|| "Array".to_owned());
            chat_id_text = Value::String(format!("chat{raw}"));
            dialog_arg = Some(&chat_id_text);
        }
    }
    let target = dialog(dialog_arg.as_ref())
        .ok_or_else(|| RestError::bad_request("DIALOG_ID_EMPTY", "Dialog ID can't be empty"))?;
    let chat_id = match target {
        Dialog::Chat(id) if may_read(dir, reader, id) => Some(id),
        Dialog::User(id) if dir.users.contains_key(&id) => None,
        _ => return Err(access_error()),
    };
    let from = if isset(args.get("FIRST_ID")) {
        let id = args
            .get("FIRST_ID")
            .and_then(|v| digits(v))
            .ok_or_else(|| RestError::bad_request("FIRST_ID_STRING", "First ID can't be string"))?;
        From::After(id)
    } else if isset(args.get("LAST_ID")) {
        let id = args
            .get("LAST_ID")
            .and_then(|v| digits(v))
            .ok_or_else(|| RestError::bad_request("LAST_ID_STRING", "Last ID can't be string"))?;
        From::Before(id)
    } else {
        From::Default
    };
    let limit = match args.get("LIMIT").filter(|v| !v.is_null()) {
        Some(v) => php::to_int(Some(v)).min(50),
        None => 20,
    };
    let Some(chat_id) = chat_id else {
        return encode(&false);
    };
    let history: &[ChatMessage] = dir.history.get(&chat_id).map_or(&[], Vec::as_slice);
    let member = dir
        .chats
        .get(&chat_id)
        .is_some_and(|c| c.members.contains(&reader));
    let last_read = member.then(|| dir.last_read.get(&(chat_id, reader)).copied().unwrap_or(0));
    let (main, extra) = select(history, reader, last_read, from, limit);
    let mut users: Vec<UserOut<'_>> = Vec::new();
    for message in &main.fetched {
        if message.author_id != 0 && !users.iter().any(|u| u.id == message.author_id) {
            if let Some(user) = dir.users.get(&message.author_id) {
                users.push(UserOut::new(user));
            }
        }
    }
    let shown = main.shown().chain(extra.iter().copied());
    let messages = shown
        .map(|m| MessageOut {
            id: m.id,
            chat_id,
            author_id: m.author_id,
            date: &m.date,
            text: match text_mode {
                HistoryText::Parsed => Cow::Owned(text::parse(&m.text, dir)),
                HistoryText::Stored => Cow::Borrowed(m.text.as_str()),
            },
            unread: last_read.is_some_and(|read| read < m.id),
            uuid: None,
            replaces: [],
            params: match &m.attach {
                Some(attach) => MessageParams::Attach { attach: [attach] },
                None => MessageParams::None([]),
            },
            disappearing_date: None,
        })
        .collect();
    encode(&Answer {
        chat_id,
        messages,
        users,
        files: [],
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Box<serde_json::value::RawValue>, RestError> {
    serde_json::value::to_raw_value(value).map_err(|_| RestError::internal())
}

/// Messages in the order the database gave them, and whether the answer
/// shows them reversed (reading from the first unread message).
struct Fetched<'a> {
    fetched: Vec<&'a ChatMessage>,
    reversed: bool,
}

impl<'a> Fetched<'a> {
    fn shown(&self) -> Box<dyn Iterator<Item = &'a ChatMessage> + '_> {
        if self.reversed {
            Box::new(self.fetched.iter().rev().copied())
        } else {
            Box::new(self.fetched.iter().copied())
        }
    }
}

/// The selection of `\Bitrix\Im\Chat::getMessages`: `limit` ≤ 0 means no
/// limit. With neither `FIRST_ID` nor `LAST_ID`, a member with unread
/// messages gets more: up to `limit` + unread newest messages when the
/// unread ones fit in `limit`; otherwise the oldest `limit` unread messages
/// (newest of them first) followed by up to `limit` messages before the
/// first unread one, newest first (the second part's authors are not
/// listed in `users`).
fn select<'a>(
    history: &'a [ChatMessage],
    reader: i64,
    last_read: Option<i64>,
    from: From,
    limit: i64,
) -> (Fetched<'a>, Vec<&'a ChatMessage>) {
    let take = |n: i64| if n > 0 { n as usize } else { usize::MAX };
    let mut limit = limit.min(100);
    let mut from = from;
    let mut from_unread = None;
    if let (From::Default, Some(read)) = (from, last_read) {
        let unread: Vec<&ChatMessage> = history
            .iter()
            .filter(|m| m.id > read && m.author_id != reader)
            .collect();
        let counter = unread.len() as i64;
        if counter > 0 {
            if counter > limit {
                from = From::After(read);
                from_unread = unread.first().map(|m| m.id);
            } else {
                limit += counter;
            }
        }
    }
    let main = match from {
        From::After(first) => Fetched {
            fetched: history
                .iter()
                .filter(|m| first <= 0 || m.id > first)
                .take(take(limit))
                .collect(),
            reversed: from_unread.is_some(),
        },
        From::Before(last) => Fetched {
            fetched: history
                .iter()
                .rev()
                .filter(|m| last <= 0 || m.id < last)
                .take(take(limit))
                .collect(),
            reversed: false,
        },
        From::Default => Fetched {
            fetched: history.iter().rev().take(take(limit)).collect(),
            reversed: false,
        },
    };
    let extra = match from_unread {
        Some(unread_id) => history
            .iter()
            .rev()
            .filter(|m| m.id < unread_id)
            .take(take(limit))
            .collect(),
        None => Vec::new(),
    };
    (main, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_ids_follow_the_server_pattern() {
        let v = |s: &str| Value::String(s.to_owned());
        assert!(matches!(
            dialog(Some(&&v("chat8773"))),
            Some(Dialog::Chat(8773))
        ));
        assert!(matches!(
            dialog(Some(&&v("CHAT8773\n"))),
            Some(Dialog::Chat(8773))
        ));
        assert!(matches!(dialog(Some(&&v("12"))), Some(Dialog::User(12))));
        assert!(matches!(dialog(Some(&&v("sg5"))), Some(Dialog::Other)));
        assert!(matches!(
            dialog(Some(&&Value::from(12))),
            Some(Dialog::User(12))
        ));
        for bad in ["", "0", "chat", "chat 1", "room1", "chat1x", "-1"] {
            assert!(dialog(Some(&&v(bad))).is_none(), "{bad}");
        }
        assert!(dialog(Some(&&Value::from(1.5))).is_none());
        assert!(dialog(None).is_none());
    }
}
