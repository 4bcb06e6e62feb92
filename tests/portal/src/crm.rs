//! CRM rules the imopenlines methods rely on (the server's `Crm\Common` and
//! the open-line permission checks): who may read a CRM item, which chats
//! belong to it, and who may join open-line chats.

use crate::state::{Chat, CrmType, Directory};

/// A CRM item as a request names it: the `CRM_ENTITY_TYPE` text as sent and
/// the `CRM_ENTITY` id.
#[derive(Clone, Debug)]
pub struct CrmTarget {
    /// Type code as sent (`deal`, `DEAL`, …).
    pub code: String,
    /// Item id.
    pub id: i64,
}

impl CrmTarget {
    /// The resolved type, if the code names one.
    pub fn kind(&self) -> Option<CrmType> {
        CrmType::from_code(&self.code)
    }
}

/// `hasAccessToEntity`: may `user_id` read the item? The type `NONE` is let
/// through unchecked (as the server does); an unknown type is unreadable;
/// otherwise it depends on the user's CRM rights (admins always), not on
/// whether the item exists.
pub fn can_read(dir: &Directory, user_id: i64, target: &CrmTarget) -> bool {
    if target.code == "NONE" {
        return true;
    }
    target.kind().is_some() && has_crm_access(dir, user_id)
}

/// May the user read CRM items at all (an administrator, or a user with
/// CRM read rights)?
pub fn has_crm_access(dir: &Directory, user_id: i64) -> bool {
    dir.users
        .get(&user_id)
        .is_some_and(|u| u.admin || u.crm_access)
}

/// `getChatsByCrmEntity`: open-line chats bound to the item, most recently
/// updated (by the session's last change) first; with `active_only` only
/// those whose session is active (status 10 to 49). A chat whose connector
/// was disconnected is never among them (facts §13).
pub fn chats_of<'a>(dir: &'a Directory, target: &CrmTarget, active_only: bool) -> Vec<&'a Chat> {
    let Some(kind) = target.kind() else {
        return Vec::new();
    };
    let mut chats: Vec<&Chat> = dir
        .chats
        .values()
        .filter(|c| {
            c.open_line.as_ref().is_some_and(|l| {
                l.crm == Some((kind, target.id))
                    && l.connector_active
                    && (l.is_active() || !active_only)
            })
        })
        .collect();
    chats.sort_by_key(|c| std::cmp::Reverse(c.updated));
    chats
}

/// `checkChatOfCrmEntity`: is the chat among the item's active chats, that
/// is, does it accept messages ([`crate::state::OpenLine::accepts`])? A
/// queued, closing or finished dialogue, or one whose connector was
/// disconnected, is not.
pub fn chat_belongs(dir: &Directory, target: &CrmTarget, chat_id: i64) -> bool {
    let Some(kind) = target.kind() else {
        return false;
    };
    dir.chats
        .get(&chat_id)
        .and_then(|c| c.open_line.as_ref())
        .is_some_and(|l| l.crm == Some((kind, target.id)) && l.accepts())
}

/// `getLastChatIdByCrmEntity`: the item's most recently updated chat, active
/// or not (a finished dialogue included); `0` when there is none or `caller`
/// cannot see CRM activities.
///
/// Unlike [`chats_of`], a chat whose connector was disconnected is not left
/// out: the real method takes the item's last open-line activity and the
/// chat it names, with no look at the connector, so it can answer a chat
/// that `chat.get` never lists and that refuses messages.
pub fn last_chat_id(dir: &Directory, caller: i64, target: &CrmTarget) -> i64 {
    let Some(kind) = target.kind() else {
        return 0;
    };
    if !can_read(dir, caller, target) {
        return 0;
    }
    dir.chats
        .values()
        .filter(|c| {
            c.open_line
                .as_ref()
                .is_some_and(|l| l.crm == Some((kind, target.id)))
        })
        .max_by_key(|c| c.updated)
        .map_or(0, |c| c.id)
}

/// `Config::canJoin` / `canViewHistory`: may the user join open-line chats
/// and read their history?
pub fn can_join_lines(dir: &Directory, user_id: i64) -> bool {
    dir.users
        .get(&user_id)
        .is_some_and(|u| u.admin || u.lines_access)
}

/// Does the user exist and is the account active?
pub fn is_active_user(dir: &Directory, user_id: i64) -> bool {
    dir.users.get(&user_id).is_some_and(|u| u.active)
}
