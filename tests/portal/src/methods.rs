//! The REST methods the portal serves: the six `imopenlines.crm.*` methods
//! with the server's validation order, codes and texts (SRV-IMOL), the list
//! method `crm.lead.list` (paged, §3.2), `user.current`, plus the global
//! `profile`, `server.time`, `methods` and `scope`.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::config::{Config, NonMemberCode, DEFAULT_SCOPE};
use crate::crm::{self, CrmTarget};
use crate::envelope::{iso8601, iso8601_millis, RestError};
use crate::history;
use crate::list::{self, Page, Start};
use crate::php;
use crate::request::Params;
use crate::state::{CrmItem, CrmType, MessageRecord, Store};
use crate::text;

/// A method's answer: its result, already encoded as JSON, and for a list
/// method the page it is (`next`, `total`).
pub struct Output {
    /// The `result` value.
    pub result: Box<RawValue>,
    /// Navigation of a list method; `None` for other methods.
    pub page: Option<Page>,
}

impl Output {
    /// A result that is not a page of a list.
    pub fn plain(result: Box<RawValue>) -> Self {
        Self { result, page: None }
    }
}

type Handler = fn(&mut Call<'_>) -> Result<Output, RestError>;

/// A REST method: lower-cased name, scope and handler.
pub struct MethodSpec {
    /// Name as registered (lower-case; lookups are case-insensitive).
    pub name: &'static str,
    /// Scope the credentials must grant; `None` for the global scope.
    pub scope: Option<&'static str>,
    handler: Handler,
}

const IMOPENLINES: Option<&str> = Some("imopenlines");
const CRM: Option<&str> = Some("crm");
const IM: Option<&str> = Some("im");
const USER: Option<&str> = Some("user");

/// Name of the `batch` method, which the REST layer runs itself.
pub const BATCH: &str = "batch";

#[rustfmt::skip]
static METHODS: [MethodSpec; 14] = [
    MethodSpec { name: BATCH, scope: None, handler: run_by_rest_layer },
    MethodSpec { name: "imopenlines.crm.message.add", scope: IMOPENLINES, handler: message_add },
    MethodSpec { name: "imopenlines.crm.chat.get", scope: IMOPENLINES, handler: chat_get },
    MethodSpec { name: "imopenlines.crm.chat.getlastid", scope: IMOPENLINES, handler: chat_get_last_id },
    MethodSpec { name: "imopenlines.crm.chat.user.add", scope: IMOPENLINES, handler: chat_user_add },
    MethodSpec { name: "imopenlines.crm.chat.user.delete", scope: IMOPENLINES, handler: chat_user_delete },
    MethodSpec { name: "imopenlines.crm.lead.create", scope: IMOPENLINES, handler: lead_create },
    MethodSpec { name: "crm.lead.list", scope: CRM, handler: lead_list },
    MethodSpec { name: "im.dialog.messages.get", scope: IM, handler: dialog_messages_get },
    MethodSpec { name: "user.current", scope: USER, handler: user_current },
    MethodSpec { name: "profile", scope: None, handler: profile },
    MethodSpec { name: "server.time", scope: None, handler: server_time },
    MethodSpec { name: "methods", scope: None, handler: methods },
    MethodSpec { name: "scope", scope: None, handler: scope },
];

/// `batch` needs the request's credentials, so the REST layer runs it
/// (see `batch::run`); this entry only lists it among the methods.
fn run_by_rest_layer(_: &mut Call<'_>) -> Result<Output, RestError> {
    Err(RestError::internal())
}

/// Finds a method by name, case-insensitively.
pub fn lookup(name: &str) -> Option<&'static MethodSpec> {
    let name = name.to_lowercase();
    METHODS.iter().find(|m| m.name == name)
}

/// Runs an authenticated call; `start` is what the reserved `start`
/// parameter said (list methods page by it).
pub fn run(
    spec: &MethodSpec,
    store: &mut Store,
    caller: &Caller,
    params: &Params,
    start: Start,
    config: &Config,
    now: f64,
) -> Result<Output, RestError> {
    let mut call = Call {
        store,
        caller,
        args: Args(params),
        start,
        config,
        now,
    };
    (spec.handler)(&mut call)
}

/// Everything a handler may use.
struct Call<'a> {
    store: &'a mut Store,
    caller: &'a Caller,
    args: Args<'a>,
    start: Start,
    config: &'a Config,
    now: f64,
}

/// Parameter checks shared by the methods, with PHP semantics.
struct Args<'a>(&'a Params);

impl<'a> Args<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name)
    }

    fn is_empty(&self, name: &str) -> bool {
        php::is_empty(self.get(name))
    }

    /// `empty()` → `ERROR_ARGUMENT` `Argument 'NAME' is null or empty`.
    fn required(&self, name: &str) -> Result<&'a Value, RestError> {
        self.get(name)
            .filter(|v| !php::is_empty(Some(v)))
            .ok_or_else(|| RestError::argument_null(name))
    }

    /// Not numeric or ≤ 0 → `ERROR_ARGUMENT` `… has an invalid type`.
    fn numeric_id(&self, name: &str) -> Result<i64, RestError> {
        let value = self.get(name);
        let id = php::to_int(value);
        if value.is_some_and(php::is_numeric) && id > 0 {
            Ok(id)
        } else {
            Err(RestError::argument_type(name))
        }
    }

    /// [`Self::required`], then [`Self::numeric_id`].
    fn positive_id(&self, name: &str) -> Result<i64, RestError> {
        self.required(name)?;
        self.numeric_id(name)
    }

    /// PHP `(int)` of the parameter (0 when absent).
    fn int(&self, name: &str) -> i64 {
        php::to_int(self.get(name))
    }

    /// `CRM_ENTITY_TYPE` and `CRM_ENTITY`, each null-or-empty checked, the id
    /// type checked.
    fn crm_target(&self) -> Result<CrmTarget, RestError> {
        let code = self.required("CRM_ENTITY_TYPE")?;
        let id = self.positive_id("CRM_ENTITY")?;
        Ok(target(code, id))
    }

    /// Like [`Self::crm_target`], but either one empty is
    /// `CRM_CHAT_EMPTY_CRM_DATA` `Empty CRM data` (getLastId, user.delete).
    fn crm_target_or_empty_data(&self) -> Result<CrmTarget, RestError> {
        if self.is_empty("CRM_ENTITY_TYPE") || self.is_empty("CRM_ENTITY") {
            return Err(RestError::bad_request(
                "CRM_CHAT_EMPTY_CRM_DATA",
                "Empty CRM data",
            ));
        }
        let id = self.numeric_id("CRM_ENTITY")?;
        let code = self.get("CRM_ENTITY_TYPE").unwrap_or(&Value::Null);
        Ok(target(code, id))
    }
}

fn target(code: &Value, id: i64) -> CrmTarget {
    CrmTarget {
        code: php::to_string(Some(code)).unwrap_or_default(),
        id,
    }
}

fn raw<T: Serialize + ?Sized>(value: &T) -> Result<Output, RestError> {
    encode(value).map(Output::plain)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, RestError> {
    serde_json::value::to_raw_value(value)
        .map_err(|_| RestError::new(StatusCode::OK, "WRONG_ENCODING", "Wrong request encoding"))
}

fn chat_not_in_crm() -> RestError {
    RestError::bad_request(
        "CHAT_NOT_IN_CRM",
        "Chat does not belong to the CRM entity being checked",
    )
}

fn user_not_active() -> RestError {
    RestError::bad_request("CRM_CHAT_USER_NOT_ACTIVE", "User not active")
}

const NO_ACCESS_TO_ACTION: &str = "You dont have access to this action";
const NO_ACCESS_TO_JOIN: &str = "You don't have access to join user to chat";

impl Call<'_> {
    fn can_read(&self, user_id: i64, target: &CrmTarget) -> bool {
        crm::can_read(&self.store.directory, user_id, target)
    }

    /// `CHAT_ID` if given (PHP `(int)`, so garbage becomes 0), else the CRM
    /// item's last chat.
    fn chat_or_last(&self, target: &CrmTarget) -> i64 {
        if self.args.is_empty("CHAT_ID") {
            crm::last_chat_id(&self.store.directory, self.caller.user_id, target)
        } else {
            self.args.int("CHAT_ID")
        }
    }
}

/// `imopenlines.crm.message.add` (SRV-IMOL `crmChatMessageAdd`).
fn message_add(call: &mut Call<'_>) -> Result<Output, RestError> {
    let target = call.args.crm_target()?;
    let user_id = call.args.positive_id("USER_ID")?;
    let chat_id = call.args.positive_id("CHAT_ID")?;
    let message = call.args.required("MESSAGE")?;
    if !call.can_read(call.caller.user_id, &target) {
        return Err(RestError::access_denied(NO_ACCESS_TO_ACTION));
    }
    if !call.can_read(user_id, &target) {
        return Err(RestError::access_denied(
            "User dont have access to this entity",
        ));
    }
    if !crm::chat_belongs(&call.store.directory, &target, chat_id) {
        return Err(chat_not_in_crm());
    }
    let text = php::to_string(Some(message)).ok_or_else(RestError::message_add_error)?;
    let is_member = call
        .store
        .directory
        .chats
        .get(&chat_id)
        .is_some_and(|c| c.members.contains(&user_id));
    if !is_member {
        return Err(match call.config.non_member_code {
            NonMemberCode::Canceled => {
                RestError::bad_request("CANCELED", "You cannot send messages to the specified chat")
            }
            NonMemberCode::MessageAddError => RestError::message_add_error(),
        });
    }
    // A text that makes the messenger's parser recurse kills the PHP
    // process (§12): the answer is a 500 and nothing is stored.
    let stored = text::store(&text, &call.store.directory).map_err(|_| RestError::internal())?;
    let id = call.store.directory.next_message_id;
    call.store.directory.next_message_id += 1;
    call.store.ledger.messages.push(MessageRecord {
        id,
        chat_id,
        user_id,
        crm_entity_type: target.code,
        crm_entity: target.id,
        message: text.clone(),
        caller_user_id: call.caller.user_id,
        auth: call.caller.kind,
        at: iso8601_millis(call.now),
    });
    history::append_from_crm(
        &mut call.store.directory,
        id,
        chat_id,
        user_id,
        stored,
        call.now,
    );
    raw(&id)
}

/// `im.dialog.messages.get` (im module `dialogMessagesGet`, see `history`).
fn dialog_messages_get(call: &mut Call<'_>) -> Result<Output, RestError> {
    history::dialog_messages_get(
        &call.store.directory,
        call.caller.user_id,
        call.args.0,
        call.store.settings.history_text,
    )
    .map(Output::plain)
}

#[derive(Serialize)]
struct ChatEntry<'a> {
    #[serde(rename = "CHAT_ID")]
    chat_id: String,
    #[serde(rename = "CONNECTOR_ID")]
    connector_id: &'a str,
    #[serde(rename = "CONNECTOR_TITLE")]
    connector_title: &'a str,
}

/// `imopenlines.crm.chat.get` (SRV-IMOL `getCrmChats`).
fn chat_get(call: &mut Call<'_>) -> Result<Output, RestError> {
    let target = call.args.crm_target()?;
    if !call.can_read(call.caller.user_id, &target) {
        return Err(RestError::access_denied(NO_ACCESS_TO_ACTION));
    }
    let active_only = call.args.get("ACTIVE_ONLY") != Some(&Value::String("N".to_owned()));
    let entries: Vec<ChatEntry<'_>> = crm::chats_of(&call.store.directory, &target, active_only)
        .into_iter()
        .filter_map(|chat| {
            let line = chat.open_line.as_ref()?;
            Some(ChatEntry {
                chat_id: chat.id.to_string(),
                connector_id: &line.connector_id,
                connector_title: &line.connector_title,
            })
        })
        .collect();
    raw(&entries)
}

/// `imopenlines.crm.chat.getLastId` (SRV-IMOL `crmLastChatIdGet`).
fn chat_get_last_id(call: &mut Call<'_>) -> Result<Output, RestError> {
    let target = call.args.crm_target_or_empty_data()?;
    match crm::last_chat_id(&call.store.directory, call.caller.user_id, &target) {
        0 => Err(RestError::bad_request(
            "CRM_CHAT_EMPTY_CRM_DATA",
            "Could not find CRM entity",
        )),
        id => raw(&id),
    }
}

/// The chat a `chat.user.*` call acts on: the caller must see the CRM item, and
/// the given chat (or the item's last one) must belong to it; 0 when there is none.
fn chat_of(call: &Call<'_>, target: &CrmTarget) -> Result<i64, RestError> {
    if !call.can_read(call.caller.user_id, target) {
        return Err(RestError::access_denied(NO_ACCESS_TO_JOIN));
    }
    let chat_id = call.chat_or_last(target);
    if chat_id > 0 && !crm::chat_belongs(&call.store.directory, target, chat_id) {
        return Err(chat_not_in_crm());
    }
    Ok(chat_id)
}

/// `imopenlines.crm.chat.user.add` (SRV-IMOL `crmChatUserAdd`).
fn chat_user_add(call: &mut Call<'_>) -> Result<Output, RestError> {
    let target = call.args.crm_target()?;
    let caller = call.caller.user_id;
    let chat_id = chat_of(call, &target)?;
    if chat_id > 0 {
        let dir = &call.store.directory;
        if !crm::can_join_lines(dir, caller) {
            return Err(RestError::access_denied(NO_ACCESS_TO_JOIN));
        }
        let user_id = call.args.int("USER_ID");
        if user_id <= 0 {
            return Err(RestError::argument_null("Empty USER_ID"));
        }
        if !crm::is_active_user(dir, user_id) {
            return Err(user_not_active());
        }
        if !call.can_read(user_id, &target) {
            return Err(RestError::access_denied(
                "This user does not have access to the chat because he does not have access to this CRM entity",
            ));
        }
        if !crm::can_join_lines(dir, user_id) {
            return Err(RestError::access_denied(
                "This user does not have access to the chat because he does not have access to this view chat history",
            ));
        }
        let added = call
            .store
            .directory
            .chats
            .get_mut(&chat_id)
            .is_some_and(|c| c.members.insert(user_id));
        if added {
            history::join(&mut call.store.directory, chat_id, user_id);
        } else {
            return Err(RestError::bad_request(
                "WRONG_REQUEST",
                "You don't have access or user already member in chat",
            ));
        }
    }
    raw(&chat_id)
}

/// `imopenlines.crm.chat.user.delete` (SRV-IMOL `crmChatUserDelete`).
fn chat_user_delete(call: &mut Call<'_>) -> Result<Output, RestError> {
    let user_id = call.args.int("USER_ID");
    if user_id <= 0 {
        return Err(RestError::bad_request(
            "CRM_CHAT_EMPTY_USER",
            "Empty User ID",
        ));
    }
    let target = call.args.crm_target_or_empty_data()?;
    let caller = call.caller.user_id;
    let chat_id = chat_of(call, &target)?;
    if chat_id > 0 {
        let dir = &call.store.directory;
        if !crm::can_join_lines(dir, caller) {
            return Err(RestError::new(
                StatusCode::FORBIDDEN,
                "CHAT_DELETE_USER_PERMISSION_DENIED",
                "You don't have access to delete a user from this chat",
            ));
        }
        if !crm::is_active_user(dir, user_id) {
            return Err(user_not_active());
        }
        let removed = call
            .store
            .directory
            .chats
            .get_mut(&chat_id)
            .is_some_and(|c| c.members.remove(&user_id));
        if !removed {
            return Err(RestError::bad_request(
                "WRONG_REQUEST",
                "You don't have access or user already not in chat",
            ));
        }
    }
    raw(&chat_id)
}

/// `imopenlines.crm.lead.create` (SRV-IMOL `crmCreateLead` →
/// `Operator::createLead`, texts from DOCS-EN).
fn lead_create(call: &mut Call<'_>) -> Result<Output, RestError> {
    let wrong_chat =
        || RestError::bad_request("CHAT_ID", "The specified chat identifier is incorrect");
    let chat_id = call.args.int("CHAT_ID");
    if chat_id <= 0 {
        return Err(wrong_chat());
    }
    let caller = call.caller.user_id;
    let dir = &mut call.store.directory;
    let can_join = crm::can_join_lines(dir, caller);
    let Some(chat) = dir.chats.get_mut(&chat_id) else {
        return Err(wrong_chat());
    };
    let Some(line) = chat.open_line.as_mut() else {
        return Err(RestError::bad_request(
            "CHAT_TYPE",
            "The specified chat is not an Open Channel",
        ));
    };
    if !chat.members.contains(&caller) && !can_join {
        return Err(RestError::bad_request(
            "ACCESS_DENIED",
            "You cannot open this conversation as you do not have sufficient rights",
        ));
    }
    if line.crm.is_none() {
        if line.operator_id != caller {
            return Err(RestError::bad_request(
                "ERROR_USER_NOT_OPERATOR",
                "Attempt to save a CRM object by a user who is not an operator",
            ));
        }
        let lead_id = dir.next_lead_id;
        line.crm = Some((CrmType::Lead, lead_id));
        chat.updated = dir.next_update;
        let title = chat.title.clone();
        dir.next_lead_id += 1;
        dir.next_update += 1;
        dir.crm.insert(
            (CrmType::Lead, lead_id),
            CrmItem {
                kind: CrmType::Lead,
                id: lead_id,
                title,
            },
        );
    }
    raw(&true)
}

/// Fields of a lead `crm.lead.list` can return, in answer order.
const LEAD_FIELDS: [&str; 2] = ["ID", "TITLE"];

/// `crm.lead.list` `{order?, select?}`: the portal's leads, 50 per page from
/// `start`, with `total` and `next`. Ordered by `ID` ascending unless
/// `order[ID]` is `DESC`; `select` keeps the named fields (`*` or none: all).
/// A caller without CRM read rights gets `403 ACCESS_DENIED`.
fn lead_list(call: &mut Call<'_>) -> Result<Output, RestError> {
    let dir = &call.store.directory;
    if !crm::has_crm_access(dir, call.caller.user_id) {
        return Err(RestError::new(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            "Access denied!",
        ));
    }
    let descending = match param_ci(call.args.0, "order") {
        Some(Value::Object(order)) => param_ci(order, "ID")
            .and_then(|v| php::to_string(Some(v)))
            .is_some_and(|v| v.eq_ignore_ascii_case("DESC")),
        _ => false,
    };
    let selected: Vec<String> = match param_ci(call.args.0, "select") {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| php::to_string(Some(n)))
            .map(|n| n.to_uppercase())
            .collect(),
        Some(Value::Object(names)) => names
            .values()
            .filter_map(|n| php::to_string(Some(n)))
            .map(|n| n.to_uppercase())
            .collect(),
        _ => Vec::new(),
    };
    let all = selected.is_empty() || selected.iter().any(|n| n == "*");
    let fields: Vec<&str> = LEAD_FIELDS
        .into_iter()
        .filter(|f| all || selected.iter().any(|n| n == f))
        .collect();
    let mut leads: Vec<&CrmItem> = dir
        .crm
        .values()
        .filter(|item| item.kind == CrmType::Lead)
        .collect();
    if descending {
        leads.reverse();
    }
    let (page, nav) = list::paginate(leads, call.start);
    let rows: Vec<Map<String, Value>> = page
        .into_iter()
        .map(|lead| {
            fields
                .iter()
                .map(|&f| {
                    let value = match f {
                        "ID" => lead.id.to_string(),
                        _ => lead.title.clone(),
                    };
                    (f.to_owned(), Value::String(value))
                })
                .collect()
        })
        .collect();
    Ok(Output {
        result: encode(&rows)?,
        page: Some(nav),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Profile<'a> {
    id: String,
    admin: bool,
    name: &'a str,
    last_name: &'a str,
    personal_gender: &'a str,
    time_zone: &'a str,
    time_zone_offset: i64,
}

/// `profile`: the caller's user.
fn profile(call: &mut Call<'_>) -> Result<Output, RestError> {
    match call.store.directory.users.get(&call.caller.user_id) {
        Some(user) if user.active => raw(&Profile {
            id: user.id.to_string(),
            admin: user.admin,
            name: &user.name,
            last_name: &user.last_name,
            personal_gender: &user.gender,
            time_zone: "",
            time_zone_offset: 0,
        }),
        _ => raw(&[(); 0]),
    }
}

/// `user.current` in scope `user`: the caller's own user (the webhook's
/// owner or the token's user) with the fields the full `user` scope shows,
/// in the order a real portal writes them (DOCS-EN `user-current.md` and
/// answers seen from portals): `ID` a string, `ACTIVE` a boolean,
/// `IS_ONLINE` `Y`/`N`, `TIME_ZONE_OFFSET` seconds as a string, dates ISO-8601
/// except `LAST_ACTIVITY_DATE` (`Y-m-d H:i:s`), `UF_DEPARTMENT` a list of ids.
#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct CurrentUser<'a> {
    id: String,
    xml_id: &'a str,
    active: bool,
    name: &'a str,
    last_name: &'a str,
    second_name: &'a str,
    email: String,
    last_login: String,
    date_register: String,
    time_zone: &'a str,
    is_online: &'a str,
    time_zone_offset: &'a str,
    last_activity_date: String,
    personal_gender: &'a str,
    personal_birthday: &'a str,
    work_position: &'a str,
    uf_employment_date: &'a str,
    uf_department: [i64; 1],
    user_type: &'a str,
}

/// When every seeded user registered: 2024-01-15, midnight UTC.
const DATE_REGISTER: f64 = 1_705_276_800.0;

/// `user.current`: the caller, who has just logged in (the portal clock)
/// and is online; e-mail `login@example.com`; all in department 1.
fn user_current(call: &mut Call<'_>) -> Result<Output, RestError> {
    let Some(user) = call
        .store
        .directory
        .users
        .get(&call.caller.user_id)
        .filter(|u| u.active)
    else {
        return raw(&[(); 0]);
    };
    let now = iso8601(call.now);
    let activity = now.replacen('T', " ", 1);
    raw(&CurrentUser {
        id: user.id.to_string(),
        xml_id: "",
        active: user.active,
        name: &user.name,
        last_name: &user.last_name,
        second_name: "",
        email: format!("{}@example.com", user.login),
        last_login: now.clone(),
        date_register: iso8601(DATE_REGISTER),
        time_zone: "",
        is_online: "Y",
        time_zone_offset: "0",
        last_activity_date: activity.trim_end_matches("+00:00").to_owned(),
        personal_gender: &user.gender,
        personal_birthday: "",
        work_position: "",
        uf_employment_date: "",
        uf_department: [1],
        user_type: "employee",
    })
}

/// `server.time`: the portal clock, `date('c')`.
fn server_time(call: &mut Call<'_>) -> Result<Output, RestError> {
    raw(&iso8601(call.now))
}

/// A parameter looked up case-insensitively (the global methods upper-case
/// their parameter names).
fn param_ci<'a>(params: &'a Params, name: &str) -> Option<&'a Value> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `methods`: names available to the caller, or those of `scope`, or all
/// with `full`.
fn methods(call: &mut Call<'_>) -> Result<Output, RestError> {
    let wanted = param_ci(call.args.0, "SCOPE").and_then(|v| php::to_string(Some(v)));
    let full = !php::is_empty(param_ci(call.args.0, "FULL"));
    let names: Vec<&str> = METHODS
        .iter()
        .filter(|m| match (&wanted, m.scope) {
            (Some(w), scope) if !w.is_empty() => scope == Some(w.as_str()),
            _ if full => true,
            (_, None) => true,
            (_, Some(s)) => call.caller.scope.iter().any(|g| g == s),
        })
        .map(|m| m.name)
        .collect();
    raw(&names)
}

/// `scope`: the caller's scopes, or every scope the portal knows with `full`.
fn scope(call: &mut Call<'_>) -> Result<Output, RestError> {
    if php::is_empty(param_ci(call.args.0, "FULL")) {
        return raw(&call.caller.scope);
    }
    let mut all: Vec<&str> = DEFAULT_SCOPE.to_vec();
    all.extend(METHODS.iter().filter_map(|m| m.scope));
    all.sort_unstable();
    all.dedup();
    raw(&all)
}
