//! Fixtures loaded through `POST /_portal/fixtures`: users, CRM items,
//! chats and chat memberships added to (or replacing) the directory, and
//! changes to the sessions of existing open-line chats.

use serde::{Deserialize, Serialize};

use crate::state::{session, Chat, CrmItem, CrmType, Directory, OpenLine, User};

/// The body of `POST /_portal/fixtures`. Users, items and chats with an
/// existing id replace the existing one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixtures {
    /// Empty the directory (users, CRM items, chats) first.
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    users: Vec<UserFixture>,
    #[serde(default)]
    crm_items: Vec<CrmFixture>,
    #[serde(default)]
    chats: Vec<ChatFixture>,
    #[serde(default)]
    memberships: Vec<MembershipFixture>,
    #[serde(default)]
    sessions: Vec<SessionFixture>,
}

/// A user; absent fields take the values of an ordinary active employee
/// with CRM and open-line rights.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserFixture {
    id: i64,
    login: Option<String>,
    name: Option<String>,
    last_name: Option<String>,
    gender: Option<String>,
    #[serde(default)]
    admin: bool,
    crm_access: Option<bool>,
    lines_access: Option<bool>,
    active: Option<bool>,
    #[serde(default)]
    bot: bool,
}

/// A CRM item.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrmFixture {
    #[serde(rename = "type")]
    kind: CrmType,
    id: i64,
    title: Option<String>,
}

/// A CRM binding of an open-line chat.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrmRef {
    #[serde(rename = "type")]
    kind: CrmType,
    id: i64,
}

/// Open-line details; absent fields: line 1, `livechat` / `Live chat`, an
/// active dialogue (status 40) on a connected connector, the first member
/// as operator, no CRM binding. `active` is the older spelling of the
/// status (`true` → 40, `false` → 60); `status` wins when both are given.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenLineFixture {
    line_id: Option<i64>,
    connector_id: Option<String>,
    connector_title: Option<String>,
    status: Option<u8>,
    active: Option<bool>,
    connector_active: Option<bool>,
    operator_id: Option<i64>,
    crm: Option<CrmRef>,
}

impl OpenLineFixture {
    fn status(&self) -> Result<u8, String> {
        let legacy = self.active.map(|active| {
            if active {
                session::OPERATOR
            } else {
                session::CLOSE
            }
        });
        session::check(self.status.or(legacy).unwrap_or(session::OPERATOR))
    }
}

/// A chat; it becomes the most recently updated one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChatFixture {
    id: i64,
    title: Option<String>,
    #[serde(default)]
    members: Vec<i64>,
    open_line: Option<OpenLineFixture>,
}

/// Adds (`member` true, the default) or removes a chat member.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MembershipFixture {
    chat_id: i64,
    user_id: i64,
    member: Option<bool>,
}

/// A change to the session of an existing open-line chat; absent fields
/// stay as they are. The chat becomes the most recently updated one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SessionFixture {
    chat_id: i64,
    status: Option<u8>,
    connector_active: Option<bool>,
}

/// How many of each were loaded.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loaded {
    users: usize,
    crm_items: usize,
    chats: usize,
    memberships: usize,
    sessions: usize,
}

/// Applies fixtures; nothing changes if any is invalid.
pub fn load(dir: &mut Directory, fixtures: Fixtures) -> Result<Loaded, String> {
    let mut next = dir.clone();
    if fixtures.replace {
        next.users.clear();
        next.crm.clear();
        next.chats.clear();
        next.history.clear();
        next.last_read.clear();
    }
    let ids = fixtures
        .users
        .iter()
        .map(|u| u.id)
        .chain(fixtures.crm_items.iter().map(|c| c.id))
        .chain(fixtures.chats.iter().map(|c| c.id));
    if let Some(id) = ids.into_iter().find(|id| *id <= 0) {
        return Err(format!("ids must be positive, got {id}"));
    }
    let loaded = Loaded {
        users: fixtures.users.len(),
        crm_items: fixtures.crm_items.len(),
        chats: fixtures.chats.len(),
        memberships: fixtures.memberships.len(),
        sessions: fixtures.sessions.len(),
    };
    for u in fixtures.users {
        let user = User {
            id: u.id,
            login: u.login.unwrap_or_else(|| format!("user{}", u.id)),
            name: u.name.unwrap_or_else(|| "User".to_owned()),
            last_name: u.last_name.unwrap_or_else(|| u.id.to_string()),
            gender: u.gender.unwrap_or_default(),
            admin: u.admin,
            crm_access: u.crm_access.unwrap_or(true),
            lines_access: u.lines_access.unwrap_or(true),
            active: u.active.unwrap_or(true),
            bot: u.bot,
        };
        next.users.insert(user.id, user);
    }
    for c in fixtures.crm_items {
        let title = c.title.unwrap_or_else(|| format!("Item {}", c.id));
        next.crm.insert(
            (c.kind, c.id),
            CrmItem {
                kind: c.kind,
                id: c.id,
                title,
            },
        );
    }
    for c in fixtures.chats {
        let open_line = match c.open_line {
            None => None,
            Some(l) => Some(OpenLine {
                line_id: l.line_id.unwrap_or(1),
                status: l.status().map_err(|e| format!("chat {}: {e}", c.id))?,
                connector_active: l.connector_active.unwrap_or(true),
                connector_id: l.connector_id.unwrap_or_else(|| "livechat".to_owned()),
                connector_title: l.connector_title.unwrap_or_else(|| "Live chat".to_owned()),
                operator_id: l
                    .operator_id
                    .or_else(|| c.members.first().copied())
                    .unwrap_or(0),
                crm: l.crm.map(|r| (r.kind, r.id)),
            }),
        };
        let chat = Chat {
            id: c.id,
            title: c.title.unwrap_or_else(|| format!("Chat {}", c.id)),
            open_line,
            members: c.members.into_iter().collect(),
            updated: next.next_update,
        };
        next.next_update += 1;
        next.history.remove(&chat.id);
        next.last_read.retain(|(chat_id, _), _| *chat_id != chat.id);
        next.chats.insert(chat.id, chat);
    }
    for m in fixtures.memberships {
        let chat = next
            .chats
            .get_mut(&m.chat_id)
            .ok_or_else(|| format!("no chat {}", m.chat_id))?;
        if m.member.unwrap_or(true) {
            if chat.members.insert(m.user_id) {
                crate::history::join(&mut next, m.chat_id, m.user_id);
            }
        } else {
            chat.members.remove(&m.user_id);
        }
    }
    for s in fixtures.sessions {
        next.set_session(s.chat_id, s.status, s.connector_active)?;
    }
    *dir = next;
    Ok(loaded)
}
