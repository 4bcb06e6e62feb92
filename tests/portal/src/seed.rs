//! The seeded portal: the users, CRM items and chats every portal starts
//! with and `POST /_portal/reset` restores. The crate README has the same
//! data as a table; keep them in step.

use std::collections::{BTreeMap, BTreeSet};

use crate::state::{session, Chat, CrmItem, CrmType, Directory, OpenLine, User};

/// Id of the first message `imopenlines.crm.message.add` delivers (the value
/// of the documentation's example answer).
pub const FIRST_MESSAGE_ID: i64 = 19_880_117;

struct UserRow {
    id: i64,
    login: &'static str,
    name: &'static str,
    last_name: &'static str,
    gender: &'static str,
    admin: bool,
    crm: bool,
    lines: bool,
    active: bool,
    bot: bool,
}

#[rustfmt::skip]
const USERS: [UserRow; 7] = [
    UserRow { id: 1, login: "admin", name: "John", last_name: "Smith", gender: "M", admin: true, crm: true, lines: true, active: true, bot: false },
    UserRow { id: 12, login: "olga", name: "Olga", last_name: "Ivanova", gender: "F", admin: false, crm: true, lines: true, active: true, bot: false },
    UserRow { id: 13, login: "pavel", name: "Pavel", last_name: "Sidorov", gender: "M", admin: false, crm: false, lines: false, active: true, bot: false },
    UserRow { id: 14, login: "maria", name: "Maria", last_name: "Kuznetsova", gender: "F", admin: false, crm: true, lines: true, active: true, bot: false },
    UserRow { id: 15, login: "igor", name: "Igor", last_name: "Volkov", gender: "M", admin: false, crm: true, lines: true, active: false, bot: false },
    UserRow { id: 16, login: "helper_bot", name: "Helper", last_name: "Bot", gender: "", admin: false, crm: true, lines: true, active: true, bot: true },
    UserRow { id: 17, login: "elena", name: "Elena", last_name: "Orlova", gender: "F", admin: false, crm: true, lines: false, active: true, bot: false },
];

const CRM_ITEMS: [(CrmType, i64, &str); 9] = [
    (CrmType::Deal, 288, "Website redesign"),
    (CrmType::Lead, 101, "Request from the website"),
    (CrmType::Contact, 201, "Alex Brown"),
    (CrmType::Company, 301, "Northwind LLC"),
    // Dialogue sessions in their states (facts §13), one case per deal.
    (CrmType::Deal, 290, "Spare parts order"),
    (CrmType::Deal, 291, "Support contract renewal"),
    (CrmType::Deal, 292, "Delivery question"),
    (CrmType::Deal, 293, "Office furniture"),
    (CrmType::Deal, 294, "Conference booking"),
];

struct LineRow {
    connector_id: &'static str,
    connector_title: &'static str,
    status: u8,
    connector_active: bool,
    operator_id: i64,
    crm: Option<(CrmType, i64)>,
}

/// An open-line dialogue on a connected connector: connector id and title,
/// the session's status, its operator (0: nobody took it), and the CRM item
/// it is bound to.
const fn open_line(
    connector_id: &'static str,
    connector_title: &'static str,
    status: u8,
    operator_id: i64,
    crm: Option<(CrmType, i64)>,
) -> Option<LineRow> {
    Some(LineRow {
        connector_id,
        connector_title,
        status,
        connector_active: true,
        operator_id,
        crm,
    })
}

/// Like [`open_line`], on a connector that was disconnected since.
const fn disconnected(
    connector_id: &'static str,
    connector_title: &'static str,
    status: u8,
    operator_id: i64,
    crm: Option<(CrmType, i64)>,
) -> Option<LineRow> {
    match open_line(connector_id, connector_title, status, operator_id, crm) {
        Some(mut row) => {
            row.connector_active = false;
            Some(row)
        }
        None => None,
    }
}

const ACTIVE: u8 = session::OPERATOR;
const CLOSED: u8 = session::CLOSE;

struct ChatRow {
    id: i64,
    title: &'static str,
    /// `None` for a group chat.
    line: Option<LineRow>,
    members: &'static [i64],
    updated: u64,
}

/// WhatsApp as Bitrix24 connects it through Edna (imconnector's
/// `whatsappbyedna`; the other WhatsApp connector is `whatsappbytwilio`).
const WHATSAPP: &str = "whatsappbyedna";

#[rustfmt::skip]
const CHATS: [ChatRow; 13] = [
    ChatRow { id: 8773, title: "Alex Brown - Telegram", line: open_line("telegrambot", "Telegram", ACTIVE, 12, Some((CrmType::Deal, 288))), members: &[12, 16], updated: 6 },
    ChatRow { id: 8772, title: "Alex Brown - Live chat", line: open_line("livechat", "Live chat", CLOSED, 12, Some((CrmType::Deal, 288))), members: &[12], updated: 1 },
    ChatRow { id: 8801, title: "Website visitor - Live chat", line: open_line("livechat", "Live chat", ACTIVE, 12, Some((CrmType::Lead, 101))), members: &[12], updated: 3 },
    ChatRow { id: 8802, title: "Alex Brown - Live chat", line: open_line("livechat", "Live chat", ACTIVE, 12, Some((CrmType::Contact, 201))), members: &[12], updated: 4 },
    ChatRow { id: 8900, title: "New visitor - Live chat", line: open_line("livechat", "Live chat", ACTIVE, 1, None), members: &[1], updated: 5 },
    ChatRow { id: 9000, title: "Sales team", line: None, members: &[1, 12], updated: 2 },
    // Deal 290: two active dialogues on two connectors, the newer first.
    ChatRow { id: 8810, title: "Alex Brown - WhatsApp", line: open_line(WHATSAPP, "WhatsApp", session::OPERATOR, 12, Some((CrmType::Deal, 290))), members: &[12], updated: 8 },
    ChatRow { id: 8811, title: "Alex Brown - Telegram", line: open_line("telegrambot", "Telegram", session::CLIENT, 12, Some((CrmType::Deal, 290))), members: &[12], updated: 7 },
    // Deal 291: only dialogues that are over (closed; closing).
    ChatRow { id: 8820, title: "Sam Lee - Live chat", line: open_line("livechat", "Live chat", session::CLOSE, 12, Some((CrmType::Deal, 291))), members: &[12], updated: 9 },
    ChatRow { id: 8821, title: "Sam Lee - Telegram", line: open_line("telegrambot", "Telegram", session::WAIT_CLIENT, 12, Some((CrmType::Deal, 291))), members: &[12], updated: 10 },
    // Deal 292: a dialogue still in the queue: no operator took it.
    ChatRow { id: 8830, title: "Chris Green - Live chat", line: open_line("livechat", "Live chat", session::NEW, 0, Some((CrmType::Deal, 292))), members: &[], updated: 11 },
    // Deal 293 has no chat. Deal 294: an active dialogue on a connector
    // that was disconnected since (never listed), and an older active one.
    ChatRow { id: 8840, title: "Dana White - VK", line: disconnected("vkgroup", "VK", session::OPERATOR, 12, Some((CrmType::Deal, 294))), members: &[12], updated: 13 },
    ChatRow { id: 8841, title: "Dana White - Live chat", line: open_line("livechat", "Live chat", session::OPERATOR, 12, Some((CrmType::Deal, 294))), members: &[12], updated: 12 },
];

/// The open line every seeded dialogue belongs to.
const LINE_ID: i64 = 1;

/// A fresh copy of the seeded directory.
pub fn directory() -> Directory {
    let users = USERS
        .iter()
        .map(|u| {
            let user = User {
                id: u.id,
                login: u.login.to_owned(),
                name: u.name.to_owned(),
                last_name: u.last_name.to_owned(),
                gender: u.gender.to_owned(),
                admin: u.admin,
                crm_access: u.crm,
                lines_access: u.lines,
                active: u.active,
                bot: u.bot,
            };
            (u.id, user)
        })
        .collect();
    let crm = CRM_ITEMS
        .iter()
        .map(|&(kind, id, title)| {
            let item = CrmItem {
                kind,
                id,
                title: title.to_owned(),
            };
            ((kind, id), item)
        })
        .collect();
    let chats: BTreeMap<i64, Chat> = CHATS
        .iter()
        .map(|c| {
            let open_line = c.line.as_ref().map(|l| OpenLine {
                line_id: LINE_ID,
                connector_id: l.connector_id.to_owned(),
                connector_title: l.connector_title.to_owned(),
                status: l.status,
                connector_active: l.connector_active,
                operator_id: l.operator_id,
                crm: l.crm,
            });
            let chat = Chat {
                id: c.id,
                title: c.title.to_owned(),
                open_line,
                members: c.members.iter().copied().collect::<BTreeSet<_>>(),
                updated: c.updated,
            };
            (c.id, chat)
        })
        .collect();
    let next_update = chats.values().map(|c| c.updated).max().unwrap_or(0) + 1;
    Directory {
        users,
        crm,
        chats,
        next_lead_id: 102,
        next_message_id: FIRST_MESSAGE_ID,
        next_update,
        history: BTreeMap::new(),
        last_read: BTreeMap::new(),
    }
}
