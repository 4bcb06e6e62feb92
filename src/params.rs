//! Parameters of the `imopenlines.crm.*` methods: validation in the portal's own order
//! and with its codes, the wire encoding of each call, and the decoding of its result.
//!
//! Input arrives as a JSON value shaped like the JS call (`{crmEntityType, crmEntity,
//! userId, chatId, message}`); nothing is sent when it is invalid. Validation mirrors
//! the server: PHP `empty()` semantics (`""`, `"0"`, `0`, `false`, `null`, `[]` are
//! missing), ids are positive integers or digit strings, `CRM_ENTITY_TYPE` is one of
//! `lead`, `deal`, `company`, `contact` in any case.

use crate::envelope::Success;
use crate::error::{codes, Error};
use crate::json::{write_str, Json, JsonView, Shape};
use crate::text;

/// `imopenlines.crm.message.add`: sends a message to the open-line chat of a CRM item.
pub const MESSAGE_ADD: &str = "imopenlines.crm.message.add";
/// `imopenlines.crm.chat.get`: the open-line chats of a CRM item.
pub const CHAT_GET: &str = "imopenlines.crm.chat.get";
/// `imopenlines.crm.chat.getLastId`: the id of the item's last chat.
pub const CHAT_GET_LAST_ID: &str = "imopenlines.crm.chat.getLastId";
/// `imopenlines.crm.chat.user.add`: adds a user to the item's chat.
pub const CHAT_USER_ADD: &str = "imopenlines.crm.chat.user.add";
/// `imopenlines.crm.chat.user.delete`: removes a user from the item's chat.
pub const CHAT_USER_DELETE: &str = "imopenlines.crm.chat.user.delete";
/// `imopenlines.crm.lead.create`: creates a lead from an open-line chat.
pub const LEAD_CREATE: &str = "imopenlines.crm.lead.create";

const EMPTY_CRM_DATA: &str = "CRM_CHAT_EMPTY_CRM_DATA";
const EMPTY_USER: &str = "CRM_CHAT_EMPTY_USER";

/// The CRM item kinds an open-line chat can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    /// `lead`
    Lead,
    /// `deal`
    Deal,
    /// `company`
    Company,
    /// `contact`
    Contact,
}

impl EntityType {
    /// Parses the type case-insensitively, as the portal does.
    pub fn parse(s: &str) -> Option<EntityType> {
        match s.to_ascii_lowercase().as_str() {
            "lead" => Some(EntityType::Lead),
            "deal" => Some(EntityType::Deal),
            "company" => Some(EntityType::Company),
            "contact" => Some(EntityType::Contact),
            _ => None,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Lead => "lead",
            EntityType::Deal => "deal",
            EntityType::Company => "company",
            EntityType::Contact => "contact",
        }
    }
}

/// How a method's `result` is turned into what the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A positive integer id (the portal may send it as a string).
    Id,
    /// An integer id where `0` means "none" (chat user add/delete without a chat).
    IdOrZero,
    /// A boolean.
    Bool,
    /// The chat list of `imopenlines.crm.chat.get`, as `{chatId, connectorId, connectorTitle}`.
    Chats,
    /// The result as the portal sent it.
    Raw,
    /// The result as the portal sent it, with the envelope's `total` and `next`
    /// (`callPage`; the caller builds the page from the whole success).
    Page,
}

/// One body parameter of a typed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// An integer (ids).
    Int(u64),
    /// A string.
    Str(String),
}

/// The body parameters of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Params {
    /// Typed parameters in their wire spelling, in order.
    Fields(Vec<(&'static str, Field)>),
    /// The caller's own parameters of `call()`, already a PHP-style query string.
    Query(String),
}

/// A successful call's result, as the caller gets it.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<J> {
    /// An id.
    Number(u64),
    /// A flag.
    Bool(bool),
    /// The chats of `imopenlines.crm.chat.get`.
    Chats(Vec<Chat>),
    /// The result as the portal sent it.
    Raw(J),
}

/// One open-line chat of a CRM item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// `CHAT_ID` as a number.
    pub chat_id: u64,
    /// `CONNECTOR_ID`, e.g. `livechat`.
    pub connector_id: String,
    /// `CONNECTOR_TITLE`.
    pub connector_title: String,
}

/// A validated call, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The REST method.
    pub method: String,
    /// The body parameters.
    pub params: Params,
    /// How to decode the result.
    pub output: Output,
    /// Whether the call changes state on the portal (never repeated blindly).
    pub write: bool,
}

/// Reads fields of the caller's params object, with errors in the portal's words.
struct Fields<'a, J> {
    method: &'a str,
    obj: &'a J,
}

/// PHP's `empty()`: what the portal treats as a missing argument.
fn php_empty(v: &Shape) -> bool {
    match v {
        Shape::Null | Shape::Bool(false) | Shape::Array(0) => true,
        Shape::String(s) => s.is_empty() || s == "0",
        Shape::Number(n) => *n == 0.0,
        _ => false,
    }
}

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A positive integer id from a number or a digit string.
pub(crate) fn positive_id(v: &Shape) -> Option<u64> {
    let n = match v {
        Shape::Number(f) => {
            if f.fract() != 0.0 || !(1.0..=MAX_SAFE_INTEGER as f64).contains(f) {
                return None;
            }
            *f as u64
        }
        Shape::String(s)
            if !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text::parse_u64(s)?
        }
        _ => return None,
    };
    (1..=MAX_SAFE_INTEGER).contains(&n).then_some(n)
}

/// Wire names of the portal's docs, and the params that carry them here.
const WIRE_NAMES: [(&str, &str); 8] = [
    ("CRM_ENTITY_TYPE", "crmEntityType"),
    ("CRM_ENTITY", "crmEntity"),
    ("CRM_ENTITY_ID", "crmEntity"),
    ("USER_ID", "userId"),
    ("CHAT_ID", "chatId"),
    ("MESSAGE", "message"),
    ("ACTIVE_ONLY", "activeOnly"),
    ("CONNECTOR_ID", "connectorId"),
];

/// The param names of a method's shape text (`{crmEntityType: 'deal', chatId?: 1}`).
fn shape_keys(shape: &str) -> impl Iterator<Item = &str> {
    let inner = text::trim_set(shape, b"{} ");
    text::split_byte(inner, b',').into_iter().map(|part| {
        let name = text::split_once_byte(part, b':').map_or(part, |(k, _)| k);
        text::trim_set(name, b" ?")
    })
}

impl<'a, J: JsonView> Fields<'a, J> {
    /// The caller's params of `method`, shaped like `shape` (whose names are the only
    /// ones taken: any other key is refused, naming the param it meant if it is a
    /// wire name of the portal's docs).
    fn new(method: &'a str, input: &'a J, shape: &str) -> Result<Self, Error> {
        if input.shape() != Shape::Object {
            return Err(Error::argument(
                method,
                codes::ERROR_ARGUMENT,
                "params",
                ["params must be an object like ", shape].concat(),
            ));
        }
        for key in input.keys() {
            if shape_keys(shape).any(|k| k == key) {
                continue;
            }
            let wire = WIRE_NAMES
                .iter()
                .find(|(w, _)| w.eq_ignore_ascii_case(&key));
            let e = match wire {
                Some((w, js)) if shape_keys(shape).any(|k| k == *js) => Error::argument(
                    method,
                    codes::ERROR_ARGUMENT,
                    w,
                    [
                        "params.",
                        &key,
                        " is the portal's wire name: pass ",
                        js,
                        " (the client sends it as ",
                        w,
                        ")",
                    ]
                    .concat(),
                ),
                _ => Error::argument(
                    method,
                    codes::ERROR_ARGUMENT,
                    &key,
                    [
                        "params.",
                        &key,
                        " is not a parameter of ",
                        method,
                        ", which takes ",
                        shape,
                        " (client.call() sends any parameter as given)",
                    ]
                    .concat(),
                ),
            };
            return Err(e);
        }
        Ok(Fields { method, obj: input })
    }

    fn get(&self, js: &str) -> Shape {
        self.obj.get(js).map_or(Shape::Null, |v| v.shape())
    }

    fn empty(&self, code: &str, wire: &str, js: &str) -> Error {
        let text = if code == codes::ERROR_ARGUMENT {
            ["Argument '", wire, "' is null or empty (params.", js, ")"].concat()
        } else if code == EMPTY_CRM_DATA {
            ["Empty CRM data (params.", js, ")"].concat()
        } else if code == EMPTY_USER {
            ["Empty User ID (params.", js, ")"].concat()
        } else {
            ["Argument '", wire, "' is null or empty (params.", js, ")"].concat()
        };
        Error::argument(self.method, code, wire, text)
    }

    fn invalid(&self, wire: &str, js: &str, expected: &str) -> Error {
        Error::argument(
            self.method,
            codes::ERROR_ARGUMENT,
            wire,
            [
                "The value of an argument '",
                wire,
                "' has an invalid type (params.",
                js,
                " must be ",
                expected,
                ")",
            ]
            .concat(),
        )
    }

    fn entity_type(&self, empty_code: &str) -> Result<EntityType, Error> {
        const JS: &str = "crmEntityType";
        const WIRE: &str = "CRM_ENTITY_TYPE";
        let v = self.get(JS);
        if php_empty(&v) {
            return Err(self.empty(empty_code, WIRE, JS));
        }
        match v {
            Shape::String(s) => EntityType::parse(&s),
            _ => None,
        }
        .ok_or_else(|| self.invalid(WIRE, JS, "one of 'lead', 'deal', 'company', 'contact'"))
    }

    fn id(&self, js: &str, wire: &str, empty_code: &str) -> Result<u64, Error> {
        let v = self.get(js);
        if php_empty(&v) {
            return Err(self.empty(empty_code, wire, js));
        }
        positive_id(&v).ok_or_else(|| self.invalid(wire, js, "a positive integer"))
    }

    fn optional_id(&self, js: &str, wire: &str) -> Result<Option<u64>, Error> {
        if php_empty(&self.get(js)) {
            return Ok(None);
        }
        self.id(js, wire, codes::ERROR_ARGUMENT).map(Some)
    }

    fn text(&self, js: &str, wire: &str) -> Result<String, Error> {
        match self.get(js) {
            v if php_empty(&v) => Err(self.empty(codes::ERROR_ARGUMENT, wire, js)),
            // It would be sent as U+FFFD: not the text the caller passed.
            Shape::String(_) if self.obj.get(js).is_some_and(|v| v.lone_surrogate()) => {
                Err(self.invalid(wire, js, "well-formed text: it holds a lone surrogate"))
            }
            Shape::String(s) if crate::message_text::stored(&s).is_empty() => Err(Error::argument(
                self.method,
                codes::ERROR_ARGUMENT,
                wire,
                [
                    "Argument '",
                    wire,
                    "' is blank (params.",
                    js,
                    "): after the portal's line-break codes ([BR], #BR#) and trimming nothing is \
                     left, and the customer would get an empty message",
                ]
                .concat(),
            )),
            Shape::String(s) => Ok(s),
            _ => Err(self.invalid(wire, js, "a string")),
        }
    }

    fn optional_bool(&self, js: &str, wire: &str) -> Result<Option<bool>, Error> {
        match self.get(js) {
            Shape::Null => Ok(None),
            Shape::Bool(b) => Ok(Some(b)),
            _ => Err(self.invalid(wire, js, "a boolean")),
        }
    }
}

fn prepared(
    method: &str,
    output: Output,
    write: bool,
    params: Vec<(&'static str, Field)>,
) -> Prepared {
    Prepared {
        method: method.to_owned(),
        params: Params::Fields(params),
        output,
        write,
    }
}

fn entity(t: EntityType, id: u64) -> [(&'static str, Field); 2] {
    [
        ("CRM_ENTITY_TYPE", Field::Str(t.as_str().to_owned())),
        ("CRM_ENTITY", Field::Int(id)),
    ]
}

const ENTITY_SHAPE: &str = "{crmEntityType: 'deal', crmEntity: 288}";

/// `crmMessageAdd(params)`: validates in the order of the server's handler.
pub fn message_add<J: JsonView>(input: &J) -> Result<Prepared, Error> {
    let f = Fields::new(
        MESSAGE_ADD,
        input,
        "{crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'Hello'}",
    )?;
    let arg = codes::ERROR_ARGUMENT;
    let entity_type = f.entity_type(arg)?;
    let entity_id = f.id("crmEntity", "CRM_ENTITY", arg)?;
    let user = f.id("userId", "USER_ID", arg)?;
    let chat = f.id("chatId", "CHAT_ID", arg)?;
    let message = f.text("message", "MESSAGE")?;
    Ok(prepared(
        MESSAGE_ADD,
        Output::Id,
        true,
        [
            entity(entity_type, entity_id).to_vec(),
            vec![
                ("USER_ID", Field::Int(user)),
                ("CHAT_ID", Field::Int(chat)),
                ("MESSAGE", Field::Str(message)),
            ],
        ]
        .concat(),
    ))
}

/// What `sendToCrmItem` was asked: the CRM item, the text, and what the caller chose
/// of the chat, its channel and the sender (the rest is found on the portal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToItem {
    /// The item's kind.
    pub kind: EntityType,
    /// The item's id.
    pub entity: u64,
    /// The text.
    pub message: String,
    /// Only chats of this connector (`connectorId`, e.g. `telegrambot`).
    pub connector: Option<String>,
    /// This chat rather than the item's newest active one.
    pub chat: Option<u64>,
    /// This sender rather than the webhook's or the current user.
    pub user: Option<u64>,
}

impl ToItem {
    /// The item as the portal's texts name it: `deal 288`.
    pub fn item(&self) -> String {
        let mut s = String::from(self.kind.as_str());
        s.push(' ');
        text::push_decimal(&mut s, self.entity);
        s
    }

    /// `imopenlines.crm.message.add` of this text as `user` into `chat`.
    pub fn send(&self, user: u64, chat: u64) -> Prepared {
        let mut params = entity(self.kind, self.entity).to_vec();
        params.push(("USER_ID", Field::Int(user)));
        params.push(("CHAT_ID", Field::Int(chat)));
        params.push(("MESSAGE", Field::Str(self.message.clone())));
        prepared(MESSAGE_ADD, Output::Id, true, params)
    }

    /// `imopenlines.crm.chat.get` of the item: its active chats, or all of them.
    pub fn chats(&self, active_only: bool) -> Prepared {
        let mut params = entity(self.kind, self.entity).to_vec();
        if !active_only {
            params.push(("ACTIVE_ONLY", Field::Str("N".to_owned())));
        }
        prepared(CHAT_GET, Output::Chats, false, params)
    }

    /// `imopenlines.crm.chat.user.add` (or `.delete`) of `user` in `chat`.
    pub fn member(&self, add: bool, user: u64, chat: u64) -> Prepared {
        let mut params = entity(self.kind, self.entity).to_vec();
        params.push(("USER_ID", Field::Int(user)));
        params.push(("CHAT_ID", Field::Int(chat)));
        let method = if add { CHAT_USER_ADD } else { CHAT_USER_DELETE };
        prepared(method, Output::IdOrZero, true, params)
    }
}

/// `sendToCrmItem(params)`: `{crmEntityType, crmEntity, message, connectorId?, chatId?,
/// userId?}`, checked in the order and words of `imopenlines.crm.message.add`.
pub fn to_item<J: JsonView>(input: &J) -> Result<ToItem, Error> {
    let f = Fields::new(
        MESSAGE_ADD,
        input,
        "{crmEntityType: 'deal', crmEntity: 288, message: 'Hello', connectorId?: 'telegrambot', chatId?: 8773, userId?: 12}",
    )?;
    let arg = codes::ERROR_ARGUMENT;
    let kind = f.entity_type(arg)?;
    let entity = f.id("crmEntity", "CRM_ENTITY", arg)?;
    let user = f.optional_id("userId", "USER_ID")?;
    let chat = f.optional_id("chatId", "CHAT_ID")?;
    let message = f.text("message", "MESSAGE")?;
    let connector = match f.get("connectorId") {
        Shape::Null => None,
        Shape::String(s) if !text::trim(&s).is_empty() => Some(text::trim(&s).to_owned()),
        _ => {
            return Err(f.invalid(
                "CONNECTOR_ID",
                "connectorId",
                "a connector id such as 'telegrambot'",
            ))
        }
    };
    Ok(ToItem {
        kind,
        entity,
        message,
        connector,
        chat,
        user,
    })
}

/// A message longer than the portal keeps: it would store the first 20,000
/// characters and ` (...)`. Refused unless the caller accepts the cut (`truncate`).
pub const MESSAGE_TOO_LONG: &str = "MESSAGE_TOO_LONG";

/// `MESSAGE_TOO_LONG` for a message text the portal would cut.
pub fn check_length(message: &str) -> Result<(), Error> {
    if !crate::message_text::is_cut(message) {
        return Ok(());
    }
    let mut d = String::from("the message has ");
    text::push_decimal(&mut d, text::char_count(message) as u64);
    d.push_str(
        " characters; the portal keeps 20000 and replaces the rest with ' (...)': \
         shorten or split it, or pass truncate: true to accept the cut",
    );
    Err(Error::argument(MESSAGE_ADD, MESSAGE_TOO_LONG, "MESSAGE", d))
}

/// The text of a prepared `imopenlines.crm.message.add`.
pub fn message_of(prepared: &Prepared) -> Option<&str> {
    match &prepared.params {
        Params::Fields(fields) => fields.iter().find_map(|(k, v)| match (k, v) {
            (&"MESSAGE", Field::Str(s)) => Some(s.as_str()),
            _ => None,
        }),
        Params::Query(_) => None,
    }
}

/// `crmChatGet(params)`: `{crmEntityType, crmEntity, activeOnly?}`.
pub fn chat_get<J: JsonView>(input: &J) -> Result<Prepared, Error> {
    let f = Fields::new(
        CHAT_GET,
        input,
        "{crmEntityType: 'deal', crmEntity: 288, activeOnly?: true}",
    )?;
    let entity_type = f.entity_type(codes::ERROR_ARGUMENT)?;
    let entity_id = f.id("crmEntity", "CRM_ENTITY", codes::ERROR_ARGUMENT)?;
    let mut params = entity(entity_type, entity_id).to_vec();
    if let Some(active) = f.optional_bool("activeOnly", "ACTIVE_ONLY")? {
        let flag = if active { "Y" } else { "N" };
        params.push(("ACTIVE_ONLY", Field::Str(flag.to_owned())));
    }
    Ok(prepared(CHAT_GET, Output::Chats, false, params))
}

/// `crmChatGetLastId(params)`: `{crmEntityType, crmEntity}`; missing data is
/// `CRM_CHAT_EMPTY_CRM_DATA`, as the portal answers.
pub fn chat_get_last_id<J: JsonView>(input: &J) -> Result<Prepared, Error> {
    let f = Fields::new(CHAT_GET_LAST_ID, input, ENTITY_SHAPE)?;
    let entity_type = f.entity_type(EMPTY_CRM_DATA)?;
    let entity_id = f.id("crmEntity", "CRM_ENTITY", EMPTY_CRM_DATA)?;
    Ok(prepared(
        CHAT_GET_LAST_ID,
        Output::Id,
        false,
        entity(entity_type, entity_id).to_vec(),
    ))
}

/// `crmChatUserAdd` / `crmChatUserDelete`: `{crmEntityType, crmEntity, userId, chatId?}`.
fn chat_user<J: JsonView>(method: &str, input: &J) -> Result<Prepared, Error> {
    let f = Fields::new(
        method,
        input,
        "{crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId?: 8773}",
    )?;
    let (crm_code, user_code) = if method == CHAT_USER_DELETE {
        (EMPTY_CRM_DATA, EMPTY_USER)
    } else {
        (codes::ERROR_ARGUMENT, codes::ERROR_ARGUMENT)
    };
    // The delete handler checks the user before the CRM data; the add handler after.
    let user_first = method == CHAT_USER_DELETE;
    let user = if user_first {
        Some(f.id("userId", "USER_ID", user_code)?)
    } else {
        None
    };
    let entity_type = f.entity_type(crm_code)?;
    let entity_id = f.id("crmEntity", "CRM_ENTITY", crm_code)?;
    let user = match user {
        Some(u) => u,
        None => f.id("userId", "USER_ID", user_code)?,
    };
    let mut params = entity(entity_type, entity_id).to_vec();
    params.push(("USER_ID", Field::Int(user)));
    if let Some(chat) = f.optional_id("chatId", "CHAT_ID")? {
        params.push(("CHAT_ID", Field::Int(chat)));
    }
    Ok(prepared(method, Output::IdOrZero, true, params))
}

/// `crmChatUserAdd(params)`.
pub fn chat_user_add<J: JsonView>(input: &J) -> Result<Prepared, Error> {
    chat_user(CHAT_USER_ADD, input)
}

/// `crmChatUserDelete(params)`.
pub fn chat_user_delete<J: JsonView>(input: &J) -> Result<Prepared, Error> {
    chat_user(CHAT_USER_DELETE, input)
}

/// `crmLeadCreate(params)`: `{chatId}`; a missing chat is the portal's `CHAT_ID` code.
pub fn lead_create<J: JsonView>(input: &J) -> Result<Prepared, Error> {
    let f = Fields::new(LEAD_CREATE, input, "{chatId: 8773}")?;
    let chat = f.id("chatId", "CHAT_ID", "CHAT_ID")?;
    Ok(prepared(
        LEAD_CREATE,
        Output::Bool,
        true,
        vec![("CHAT_ID", Field::Int(chat))],
    ))
}

/// One typed method of the JS surface: its JS name, its REST method, and the function
/// that validates the caller's params into a [`Prepared`] call (which carries whether
/// it writes and how its result is decoded).
pub struct Method<J> {
    /// The JS method name, e.g. `crmMessageAdd`.
    pub js: &'static str,
    /// The REST method, e.g. `imopenlines.crm.message.add`.
    pub rest: &'static str,
    /// Validates and encodes the params.
    pub prepare: fn(&J) -> Result<Prepared, Error>,
}

/// The typed methods. Adding a REST method is one row here (plus its validator above
/// and its TypeScript types); the JS surface is generated from this table.
pub fn methods<J: JsonView>() -> [Method<J>; 6] {
    [
        Method {
            js: "crmMessageAdd",
            rest: MESSAGE_ADD,
            prepare: message_add::<J>,
        },
        Method {
            js: "crmChatGet",
            rest: CHAT_GET,
            prepare: chat_get::<J>,
        },
        Method {
            js: "crmChatGetLastId",
            rest: CHAT_GET_LAST_ID,
            prepare: chat_get_last_id::<J>,
        },
        Method {
            js: "crmChatUserAdd",
            rest: CHAT_USER_ADD,
            prepare: chat_user_add::<J>,
        },
        Method {
            js: "crmChatUserDelete",
            rest: CHAT_USER_DELETE,
            prepare: chat_user_delete::<J>,
        },
        Method {
            js: "crmLeadCreate",
            rest: LEAD_CREATE,
            prepare: lead_create::<J>,
        },
    ]
}

/// Validates `input` for the typed method named `js` (its JS name).
pub fn prepare<J: JsonView>(js: &str, input: &J) -> Result<Prepared, Error> {
    match methods::<J>().iter().find(|m| m.js == js) {
        Some(m) => (m.prepare)(input),
        None => Err(Error::argument(
            js,
            codes::ERROR_ARGUMENT,
            "method",
            "not a method of this client".to_owned(),
        )),
    }
}

/// Whether a method name reads only, so that repeating it after a lost answer is safe.
///
/// Known reads, plus the naming convention of the REST API (`*.get`, `*.list`,
/// `*.fields`, `*.getLastId`...). Anything else counts as a write.
pub fn is_read(method: &str) -> bool {
    let m = method.to_ascii_lowercase();
    if matches!(
        m.as_str(),
        "profile" | "methods" | "scope" | "server.time" | "user.current" | "app.info"
    ) {
        return true;
    }
    let last = text::after_last_byte(&m, b'.');
    last.starts_with("get") || last.starts_with("list") || last == "fields"
}

/// `call(method, params)`: any REST method. `params` is the caller's params object
/// (`None` for no params), sent as [`crate::query`] encodes it.
pub fn raw<J: JsonView>(method: &str, params: Option<&J>) -> Result<Prepared, Error> {
    let name = text::trim(method);
    let valid = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && !name.starts_with(".")
        && !crate::text::contains(name, "..");
    if !valid {
        return Err(Error::argument(
            if name.is_empty() { "call" } else { name },
            codes::ERROR_ARGUMENT,
            "method",
            "the method name must be like 'imopenlines.crm.chat.get' (letters, digits, dots, underscores)"
                .to_owned(),
        ));
    }
    let params = match params {
        None => Params::Fields(Vec::new()),
        Some(p) => Params::Query(
            crate::query::encode(p)
                .map_err(|why| Error::argument(name, codes::ERROR_ARGUMENT, "params", why))?,
        ),
    };
    Ok(Prepared {
        method: name.to_owned(),
        params,
        output: Output::Raw,
        write: !is_read(name),
    })
}

/// Turns the portal's `result` into what the caller gets, or `BAD_RESPONSE` when the
/// result does not have the documented shape.
pub fn decode<J: JsonView>(
    prepared: &Prepared,
    status: u16,
    result: J,
) -> Result<Decoded<J>, Error> {
    let bad = |what: &str| Error::bad_response(&prepared.method, status, what, prepared.write);
    match prepared.output {
        Output::Raw | Output::Page => Ok(Decoded::Raw(result)),
        Output::Id => positive_id(&result.shape())
            .map(Decoded::Number)
            .ok_or_else(|| bad("a result that is not a positive integer id")),
        Output::IdOrZero => match result.shape() {
            Shape::Number(0.0) => Ok(Decoded::Number(0)),
            Shape::String(s) if s == "0" => Ok(Decoded::Number(0)),
            other => positive_id(&other)
                .map(Decoded::Number)
                .ok_or_else(|| bad("a result that is not an integer id")),
        },
        Output::Bool => match result.shape() {
            Shape::Bool(b) => Ok(Decoded::Bool(b)),
            _ => Err(bad("a result that is not a boolean")),
        },
        Output::Chats => {
            // PHP encodes a list as an array, a keyed one as an object.
            let items: Vec<J> = match result.shape() {
                Shape::Array(n) => (0..n).filter_map(|i| result.at(i)).collect(),
                Shape::Object => result.keys().iter().filter_map(|k| result.get(k)).collect(),
                _ => return Err(bad("a chat list that is not an array")),
            };
            items
                .iter()
                .map(|chat| {
                    let text = |k: &str| match chat.get(k).map(|v| v.shape()) {
                        Some(Shape::String(s)) => s,
                        _ => String::new(),
                    };
                    let chat_id = chat
                        .get("CHAT_ID")
                        .and_then(|v| positive_id(&v.shape()))
                        .ok_or_else(|| bad("a chat without a valid CHAT_ID"))?;
                    Ok(Chat {
                        chat_id,
                        connector_id: text("CONNECTOR_ID"),
                        connector_title: text("CONNECTOR_TITLE"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Decoded::Chats)
        }
    }
}

/// What the caller gets from a call's success, as JSON text (the JS layer parses it
/// once): for a page (`callPage`) the result with `total` and `next`, otherwise the
/// decoded result ([`Decoded::json_text`]).
pub fn answer_text(prepared: &Prepared, success: Success<Json>) -> Result<String, Error> {
    if prepared.output != Output::Page {
        return decode(prepared, success.status, success.result).map(|d| d.json_text());
    }
    let mut out = String::from("{\"result\":");
    out.push_str(success.result.text());
    for (key, n) in [("total", success.total), ("next", success.next)] {
        if let Some(n) = n {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            text::push_decimal(&mut out, n);
        }
    }
    out.push('}');
    Ok(out)
}

impl Decoded<Json> {
    /// The JSON text of what the caller gets: ids are numbers, chats plain objects
    /// (`chatId`, `connectorId`, `connectorTitle`), a raw result the portal's own text.
    pub fn json_text(&self) -> String {
        match self {
            Decoded::Number(n) => text::decimal(*n),
            Decoded::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
            Decoded::Raw(v) => v.text().to_owned(),
            Decoded::Chats(chats) => {
                let mut out = String::from("[");
                for (i, c) in chats.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"chatId\":");
                    text::push_decimal(&mut out, c.chat_id);
                    out.push_str(",\"connectorId\":");
                    write_str(&mut out, &c.connector_id);
                    out.push_str(",\"connectorTitle\":");
                    write_str(&mut out, &c.connector_title);
                    out.push('}');
                }
                out.push(']');
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The typed params as a JSON object, to compare with expectations.
    fn body(p: &Prepared) -> Value {
        match &p.params {
            Params::Fields(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Field::Int(n) => json!(n),
                            Field::Str(s) => json!(s),
                        };
                        ((*k).to_owned(), v)
                    })
                    .collect(),
            ),
            Params::Query(text) => json!({ "query": text }),
        }
    }

    fn seed() -> Value {
        json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 12, "chatId": 8773, "message": "Hello"})
    }

    fn err_of(r: Result<Prepared, Error>) -> (String, Option<String>, String) {
        let e = r.expect_err("should fail");
        let d = e.details();
        (d.code.clone(), d.argument.clone(), d.description.clone())
    }

    #[test]
    fn the_seed_example_encodes_to_the_wire_names() {
        let p = message_add(&seed()).expect("valid");
        assert_eq!(p.method, "imopenlines.crm.message.add");
        assert!(p.write);
        assert_eq!(
            body(&p),
            json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12, "CHAT_ID": 8773, "MESSAGE": "Hello"})
        );
    }

    #[test]
    fn ids_may_be_digit_strings_and_types_any_case() {
        let p = message_add(&json!({"crmEntityType": "DEAL", "crmEntity": "288", "userId": "12", "chatId": 8773.0, "message": "0 "}))
            .expect("valid");
        assert_eq!(body(&p)["CRM_ENTITY_TYPE"], "deal");
        assert_eq!(body(&p)["CRM_ENTITY"], 288);
        assert_eq!(body(&p)["CHAT_ID"], 8773);
    }

    #[test]
    fn validation_follows_the_portal_order() {
        // Everything missing: the first argument the server checks is named.
        let (code, arg, text) = err_of(message_add(&json!({})));
        assert_eq!(code, "ERROR_ARGUMENT");
        assert_eq!(arg.as_deref(), Some("CRM_ENTITY_TYPE"));
        assert!(
            text.starts_with("Argument 'CRM_ENTITY_TYPE' is null or empty"),
            "{text}"
        );

        let order = ["crmEntityType", "crmEntity", "userId", "chatId", "message"];
        let wire = [
            "CRM_ENTITY_TYPE",
            "CRM_ENTITY",
            "USER_ID",
            "CHAT_ID",
            "MESSAGE",
        ];
        for (i, key) in order.iter().enumerate() {
            let mut v = seed();
            // Break this field and every later one: the error must name this one.
            for later in &order[i..] {
                v[*later] = json!("");
            }
            let (code, arg, _) = err_of(message_add(&v));
            assert_eq!(code, "ERROR_ARGUMENT", "{key}");
            assert_eq!(arg.as_deref(), Some(wire[i]), "{key}");
        }
    }

    #[test]
    fn php_empty_values_are_missing() {
        for empty in [
            json!(null),
            json!(""),
            json!("0"),
            json!(0),
            json!(false),
            json!([]),
        ] {
            let mut v = seed();
            v["chatId"] = empty.clone();
            let (_, arg, text) = err_of(message_add(&v));
            assert_eq!(arg.as_deref(), Some("CHAT_ID"), "{empty}");
            assert!(text.contains("is null or empty"), "{empty}: {text}");
        }
        let mut v = seed();
        v["message"] = json!("0");
        assert!(err_of(message_add(&v))
            .2
            .contains("'MESSAGE' is null or empty"));
    }

    #[test]
    fn bad_ids_have_an_invalid_type() {
        for bad in [
            json!(-5),
            json!(1.5),
            json!("12a"),
            json!("-3"),
            json!(true),
            json!({"a": 1}),
            json!([1]),
            json!(9_007_199_254_740_993u64),
            json!("00"),
            json!(1e300),
        ] {
            let mut v = seed();
            v["userId"] = bad.clone();
            let (code, arg, text) = err_of(message_add(&v));
            assert_eq!(code, "ERROR_ARGUMENT", "{bad}");
            assert_eq!(arg.as_deref(), Some("USER_ID"), "{bad}");
            assert!(text.contains("has an invalid type"), "{bad}: {text}");
        }
    }

    #[test]
    fn unknown_entity_types_and_non_string_messages_are_rejected_clearly() {
        let mut v = seed();
        v["crmEntityType"] = json!("order");
        let (_, arg, text) = err_of(message_add(&v));
        assert_eq!(arg.as_deref(), Some("CRM_ENTITY_TYPE"));
        assert!(
            text.contains("'lead', 'deal', 'company', 'contact'"),
            "{text}"
        );
        let mut v = seed();
        v["message"] = json!(42);
        assert!(err_of(message_add(&v)).2.contains("must be a string"));
    }

    #[test]
    fn params_that_are_not_objects_are_rejected() {
        for bad in [json!(null), json!("deal"), json!([1, 2]), json!(5)] {
            let (code, arg, _) = err_of(message_add(&bad));
            assert_eq!(code, "ERROR_ARGUMENT");
            assert_eq!(arg.as_deref(), Some("params"));
        }
    }

    #[test]
    fn sibling_methods_use_their_own_codes() {
        let (code, arg, _) = err_of(chat_get_last_id(&json!({"crmEntityType": "deal"})));
        assert_eq!(code, "CRM_CHAT_EMPTY_CRM_DATA");
        assert_eq!(arg.as_deref(), Some("CRM_ENTITY"));
        let (code, _, _) = err_of(chat_get_last_id(
            &json!({"crmEntityType": "deal", "crmEntity": "x"}),
        ));
        assert_eq!(code, "ERROR_ARGUMENT");

        let (code, arg, _) = err_of(chat_user_delete(
            &json!({"crmEntityType": "deal", "crmEntity": 288}),
        ));
        assert_eq!(
            (code.as_str(), arg.as_deref()),
            ("CRM_CHAT_EMPTY_USER", Some("USER_ID"))
        );
        let (code, _, _) = err_of(chat_user_delete(&json!({"userId": 3})));
        assert_eq!(code, "CRM_CHAT_EMPTY_CRM_DATA");

        let (code, arg, _) = err_of(chat_user_add(
            &json!({"crmEntityType": "deal", "crmEntity": 288}),
        ));
        assert_eq!(
            (code.as_str(), arg.as_deref()),
            ("ERROR_ARGUMENT", Some("USER_ID"))
        );

        let (code, arg, _) = err_of(lead_create(&json!({})));
        assert_eq!(
            (code.as_str(), arg.as_deref()),
            ("CHAT_ID", Some("CHAT_ID"))
        );
    }

    #[test]
    fn optional_params_are_encoded_only_when_given() {
        let p = chat_get(&json!({"crmEntityType": "lead", "crmEntity": 1})).expect("ok");
        assert!(body(&p).get("ACTIVE_ONLY").is_none());
        assert!(!p.write);
        let p = chat_get(&json!({"crmEntityType": "lead", "crmEntity": 1, "activeOnly": false}))
            .expect("ok");
        assert_eq!(body(&p)["ACTIVE_ONLY"], "N");
        assert!(
            chat_get(&json!({"crmEntityType": "lead", "crmEntity": 1, "activeOnly": "N"})).is_err()
        );

        let p = chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14}))
            .expect("ok");
        assert!(body(&p).get("CHAT_ID").is_none());
        let p = chat_user_add(
            &json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14, "chatId": 8773}),
        )
        .expect("ok");
        assert_eq!(body(&p)["CHAT_ID"], 8773);
        assert!(chat_user_add(
            &json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14, "chatId": -1})
        )
        .is_err());
    }

    #[test]
    fn raw_calls_check_the_method_name_and_guess_reads() {
        let none: Option<&Value> = None;
        assert!(raw("crm.deal.list", none).is_ok());
        for bad in ["", "../profile", "a/b", "a..b", "x?auth=1", ".x"] {
            assert_eq!(raw(bad, none).expect_err(bad).code(), "ERROR_ARGUMENT");
        }
        assert!(raw("m", Some(&json!("x"))).is_err());
        let p = raw("crm.deal.add", Some(&json!({"fields": {"TITLE": "x"}}))).expect("ok");
        assert_eq!(body(&p), json!({"query": "fields[TITLE]=x"}));
        assert!(!raw("crm.deal.list", none).expect("ok").write);
        assert!(
            !raw("imopenlines.crm.chat.getLastId", none)
                .expect("ok")
                .write
        );
        assert!(!raw("profile", none).expect("ok").write);
        assert!(raw("imopenlines.crm.message.add", none).expect("ok").write);
        assert!(raw("crm.deal.update", none).expect("ok").write);
    }

    #[test]
    fn results_are_decoded_to_their_documented_shapes() {
        let p = message_add(&seed()).expect("ok");
        assert_eq!(
            decode(&p, 200, json!(19880117)).expect("id"),
            Decoded::Number(19880117)
        );
        assert_eq!(
            decode(&p, 200, json!("19880117")).expect("id"),
            Decoded::Number(19880117)
        );
        let e = decode(&p, 200, json!(false)).expect_err("not an id");
        assert_eq!(e.code(), "BAD_RESPONSE");
        assert!(e.to_string().contains("may have been delivered"));

        let p = chat_get(&json!({"crmEntityType": "deal", "crmEntity": 288})).expect("ok");
        let chats = decode(
            &p,
            200,
            json!([{"CHAT_ID": "8773", "CONNECTOR_ID": "livechat", "CONNECTOR_TITLE": "Live chat"}]),
        )
        .expect("chats");
        assert_eq!(
            chats,
            Decoded::Chats(vec![Chat {
                chat_id: 8773,
                connector_id: "livechat".into(),
                connector_title: "Live chat".into()
            }])
        );
        assert_eq!(
            decode(&p, 200, json!([])).expect("empty"),
            Decoded::Chats(vec![])
        );
        assert_eq!(
            decode(&p, 200, json!({"0": {"CHAT_ID": 5}})).expect("keyed"),
            Decoded::Chats(vec![Chat {
                chat_id: 5,
                connector_id: String::new(),
                connector_title: String::new()
            }])
        );
        assert!(decode(&p, 200, json!([{"CHAT_ID": null}])).is_err());

        let p = chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14}))
            .expect("ok");
        assert_eq!(decode(&p, 200, json!(0)).expect("zero"), Decoded::Number(0));
        let p = lead_create(&json!({"chatId": 1})).expect("ok");
        assert_eq!(
            decode(&p, 200, json!(true)).expect("bool"),
            Decoded::Bool(true)
        );
    }

    /// A success as the portal sends it: `result` with the envelope's paging counts.
    fn success(result: &str, total: Option<u64>, next: Option<u64>) -> Success<Json> {
        let envelope = Json::parse(format!("{{\"result\":{result}}}")).expect("json");
        Success {
            status: 200,
            result: envelope.get("result").expect("result"),
            envelope,
            total,
            next,
        }
    }

    #[test]
    fn answers_reach_the_caller_as_json_text_of_what_they_decode_to() {
        let text = |p: &Prepared, s| -> Value {
            serde_json::from_str(&answer_text(p, s).expect("decodes")).expect("JSON text")
        };
        let add = prepare("crmMessageAdd", &seed()).expect("valid");
        assert_eq!(text(&add, success("\"501\"", None, None)), json!(501));
        let chats = chat_get(&json!({"crmEntityType": "deal", "crmEntity": 288})).expect("valid");
        let listed =
            r#"[{"CHAT_ID":"5","CONNECTOR_ID":"livechat","CONNECTOR_TITLE":"Say \"hi\"\n\u00e9"}]"#;
        assert_eq!(
            text(&chats, success(listed, None, None)),
            json!([{"chatId": 5, "connectorId": "livechat", "connectorTitle": "Say \"hi\"\n\u{e9}"}])
        );
        let mut page = raw("crm.lead.list", None::<&Value>).expect("valid");
        let leads = r#"[{"ID":"1"}, {"ID":"2"}]"#;
        assert_eq!(
            text(&page, success(leads, Some(120), Some(50))),
            json!([{"ID": "1"}, {"ID": "2"}])
        );
        page.output = Output::Page;
        assert_eq!(
            text(&page, success(leads, Some(120), Some(50))),
            json!({"result": [{"ID": "1"}, {"ID": "2"}], "total": 120, "next": 50})
        );
        assert_eq!(
            text(&page, success("[]", Some(0), None)),
            json!({"result": [], "total": 0})
        );
        let e = answer_text(&add, success("false", None, None)).expect_err("not an id");
        assert_eq!(e.code(), "BAD_RESPONSE");
    }
}
