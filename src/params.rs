//! Parameters of the `imopenlines.crm.*` methods: validation in the portal's own order
//! and with its codes, the wire encoding of each call, and the decoding of its result.
//!
//! Input arrives as a JSON value shaped like the JS call (`{crmEntityType, crmEntity,
//! userId, chatId, message}`); nothing is sent when it is invalid. Validation mirrors
//! the server: PHP `empty()` semantics (`""`, `"0"`, `0`, `false`, `null`, `[]` are
//! missing), ids are positive integers or digit strings, `CRM_ENTITY_TYPE` is one of
//! `lead`, `deal`, `company`, `contact` in any case.

use serde_json::{Map, Value};

use crate::error::{codes, Error};

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
}

/// A validated call, ready for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The REST method.
    pub method: String,
    /// The body parameters in their wire spelling.
    pub params: Map<String, Value>,
    /// How to decode the result.
    pub output: Output,
    /// Whether the call changes state on the portal (never repeated blindly).
    pub write: bool,
}

/// Reads fields of the caller's params object, with errors in the portal's words.
struct Fields<'a> {
    method: &'a str,
    obj: &'a Map<String, Value>,
}

/// PHP's `empty()`: what the portal treats as a missing argument.
fn php_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty() || s == "0",
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A positive integer id from a number or a digit string.
fn positive_id(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => match n.as_u64() {
            Some(n) => n,
            None => {
                let f = n.as_f64()?;
                if f.fract() != 0.0 || !(1.0..=MAX_SAFE_INTEGER as f64).contains(&f) {
                    return None;
                }
                f as u64
            }
        },
        Value::String(s) if !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        _ => return None,
    };
    (1..=MAX_SAFE_INTEGER).contains(&n).then_some(n)
}

impl<'a> Fields<'a> {
    fn new(method: &'a str, input: &'a Value, shape: &str) -> Result<Self, Error> {
        match input {
            Value::Object(obj) => Ok(Fields { method, obj }),
            _ => Err(Error::argument(
                method,
                codes::ERROR_ARGUMENT,
                "params",
                format!("params must be an object like {shape}"),
            )),
        }
    }

    fn get(&self, js: &str) -> Option<&'a Value> {
        self.obj.get(js).filter(|v| !v.is_null())
    }

    fn empty(&self, code: &str, wire: &str, js: &str) -> Error {
        let text = if code == codes::ERROR_ARGUMENT {
            format!("Argument '{wire}' is null or empty (params.{js})")
        } else if code == EMPTY_CRM_DATA {
            format!("Empty CRM data (params.{js})")
        } else if code == EMPTY_USER {
            format!("Empty User ID (params.{js})")
        } else {
            format!("Argument '{wire}' is null or empty (params.{js})")
        };
        Error::argument(self.method, code, wire, text)
    }

    fn invalid(&self, wire: &str, js: &str, expected: &str) -> Error {
        Error::argument(
            self.method,
            codes::ERROR_ARGUMENT,
            wire,
            format!("The value of an argument '{wire}' has an invalid type (params.{js} must be {expected})"),
        )
    }

    fn entity_type(&self, empty_code: &str) -> Result<EntityType, Error> {
        const JS: &str = "crmEntityType";
        const WIRE: &str = "CRM_ENTITY_TYPE";
        let v = self.get(JS);
        if php_empty(v) {
            return Err(self.empty(empty_code, WIRE, JS));
        }
        v.and_then(Value::as_str)
            .and_then(EntityType::parse)
            .ok_or_else(|| self.invalid(WIRE, JS, "one of 'lead', 'deal', 'company', 'contact'"))
    }

    fn id(&self, js: &str, wire: &str, empty_code: &str) -> Result<u64, Error> {
        let v = self.get(js);
        if php_empty(v) {
            return Err(self.empty(empty_code, wire, js));
        }
        v.and_then(positive_id)
            .ok_or_else(|| self.invalid(wire, js, "a positive integer"))
    }

    fn optional_id(&self, js: &str, wire: &str) -> Result<Option<u64>, Error> {
        if php_empty(self.get(js)) {
            return Ok(None);
        }
        self.id(js, wire, codes::ERROR_ARGUMENT).map(Some)
    }

    fn text(&self, js: &str, wire: &str) -> Result<String, Error> {
        let v = self.get(js);
        if php_empty(v) {
            return Err(self.empty(codes::ERROR_ARGUMENT, wire, js));
        }
        v.and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.invalid(wire, js, "a string"))
    }

    fn optional_bool(&self, js: &str, wire: &str) -> Result<Option<bool>, Error> {
        match self.get(js) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(wire, js, "a boolean")),
        }
    }
}

fn prepared(method: &str, output: Output, write: bool, params: Vec<(&str, Value)>) -> Prepared {
    Prepared {
        method: method.to_owned(),
        params: params
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        output,
        write,
    }
}

const ENTITY_SHAPE: &str = "{crmEntityType: 'deal', crmEntity: 288}";

/// `crmMessageAdd(params)`: validates in the order of the server's handler.
pub fn message_add(input: &Value) -> Result<Prepared, Error> {
    let f = Fields::new(
        MESSAGE_ADD,
        input,
        "{crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'Hello'}",
    )?;
    let arg = codes::ERROR_ARGUMENT;
    let entity_type = f.entity_type(arg)?;
    let entity = f.id("crmEntity", "CRM_ENTITY", arg)?;
    let user = f.id("userId", "USER_ID", arg)?;
    let chat = f.id("chatId", "CHAT_ID", arg)?;
    let message = f.text("message", "MESSAGE")?;
    Ok(prepared(
        MESSAGE_ADD,
        Output::Id,
        true,
        vec![
            ("CRM_ENTITY_TYPE", entity_type.as_str().into()),
            ("CRM_ENTITY", entity.into()),
            ("USER_ID", user.into()),
            ("CHAT_ID", chat.into()),
            ("MESSAGE", message.into()),
        ],
    ))
}

/// `crmChatGet(params)`: `{crmEntityType, crmEntity, activeOnly?}`.
pub fn chat_get(input: &Value) -> Result<Prepared, Error> {
    let f = Fields::new(
        CHAT_GET,
        input,
        "{crmEntityType: 'deal', crmEntity: 288, activeOnly?: true}",
    )?;
    let entity_type = f.entity_type(codes::ERROR_ARGUMENT)?;
    let entity = f.id("crmEntity", "CRM_ENTITY", codes::ERROR_ARGUMENT)?;
    let mut params = vec![
        ("CRM_ENTITY_TYPE", entity_type.as_str().into()),
        ("CRM_ENTITY", entity.into()),
    ];
    if let Some(active) = f.optional_bool("activeOnly", "ACTIVE_ONLY")? {
        params.push(("ACTIVE_ONLY", if active { "Y" } else { "N" }.into()));
    }
    Ok(prepared(CHAT_GET, Output::Chats, false, params))
}

/// `crmChatGetLastId(params)`: `{crmEntityType, crmEntity}`; missing data is
/// `CRM_CHAT_EMPTY_CRM_DATA`, as the portal answers.
pub fn chat_get_last_id(input: &Value) -> Result<Prepared, Error> {
    let f = Fields::new(CHAT_GET_LAST_ID, input, ENTITY_SHAPE)?;
    let entity_type = f.entity_type(EMPTY_CRM_DATA)?;
    let entity = f.id("crmEntity", "CRM_ENTITY", EMPTY_CRM_DATA)?;
    Ok(prepared(
        CHAT_GET_LAST_ID,
        Output::Id,
        false,
        vec![
            ("CRM_ENTITY_TYPE", entity_type.as_str().into()),
            ("CRM_ENTITY", entity.into()),
        ],
    ))
}

/// `crmChatUserAdd` / `crmChatUserDelete`: `{crmEntityType, crmEntity, userId, chatId?}`.
fn chat_user(method: &str, input: &Value) -> Result<Prepared, Error> {
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
    let entity = f.id("crmEntity", "CRM_ENTITY", crm_code)?;
    let user = match user {
        Some(u) => u,
        None => f.id("userId", "USER_ID", user_code)?,
    };
    let mut params = vec![
        ("CRM_ENTITY_TYPE", entity_type.as_str().into()),
        ("CRM_ENTITY", entity.into()),
        ("USER_ID", user.into()),
    ];
    if let Some(chat) = f.optional_id("chatId", "CHAT_ID")? {
        params.push(("CHAT_ID", chat.into()));
    }
    Ok(prepared(method, Output::IdOrZero, true, params))
}

/// `crmChatUserAdd(params)`.
pub fn chat_user_add(input: &Value) -> Result<Prepared, Error> {
    chat_user(CHAT_USER_ADD, input)
}

/// `crmChatUserDelete(params)`.
pub fn chat_user_delete(input: &Value) -> Result<Prepared, Error> {
    chat_user(CHAT_USER_DELETE, input)
}

/// `crmLeadCreate(params)`: `{chatId}`; a missing chat is the portal's `CHAT_ID` code.
pub fn lead_create(input: &Value) -> Result<Prepared, Error> {
    let f = Fields::new(LEAD_CREATE, input, "{chatId: 8773}")?;
    let chat = f.id("chatId", "CHAT_ID", "CHAT_ID")?;
    Ok(prepared(
        LEAD_CREATE,
        Output::Bool,
        true,
        vec![("CHAT_ID", chat.into())],
    ))
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
    let last = m.rsplit('.').next().unwrap_or_default();
    last.starts_with("get") || last.starts_with("list") || last == "fields"
}

/// `call(method, params)`: any REST method; params pass through as given.
pub fn raw(method: &str, input: &Value) -> Result<Prepared, Error> {
    let name = method.trim();
    let valid = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && !name.starts_with('.')
        && !name.contains("..");
    if !valid {
        return Err(Error::argument(
            if name.is_empty() { "call" } else { name },
            codes::ERROR_ARGUMENT,
            "method",
            "the method name must be like 'imopenlines.crm.chat.get' (letters, digits, dots, underscores)"
                .to_owned(),
        ));
    }
    let params = match input {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => {
            return Err(Error::argument(
                name,
                codes::ERROR_ARGUMENT,
                "params",
                "params must be an object".to_owned(),
            ))
        }
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
pub fn decode(prepared: &Prepared, status: u16, result: Value) -> Result<Value, Error> {
    let bad = |what: &str| Error::bad_response(&prepared.method, status, what, prepared.write);
    match prepared.output {
        Output::Raw => Ok(result),
        Output::Id => positive_id(&result)
            .map(Value::from)
            .ok_or_else(|| bad("a result that is not a positive integer id")),
        Output::IdOrZero => match &result {
            Value::Number(n) if n.as_u64() == Some(0) => Ok(Value::from(0)),
            Value::String(s) if s == "0" => Ok(Value::from(0)),
            other => positive_id(other)
                .map(Value::from)
                .ok_or_else(|| bad("a result that is not an integer id")),
        },
        Output::Bool => match result {
            Value::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(bad("a result that is not a boolean")),
        },
        Output::Chats => {
            let list = match result {
                Value::Array(list) => list,
                // PHP encodes an empty array as `[]`, a keyed one as an object.
                Value::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
                _ => return Err(bad("a chat list that is not an array")),
            };
            list.into_iter()
                .map(|chat| {
                    let text = |k: &str| match chat.get(k) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    let id = chat
                        .get("CHAT_ID")
                        .and_then(positive_id)
                        .ok_or_else(|| bad("a chat without a valid CHAT_ID"))?;
                    let mut out = Map::new();
                    out.insert("chatId".into(), id.into());
                    out.insert("connectorId".into(), text("CONNECTOR_ID").into());
                    out.insert("connectorTitle".into(), text("CONNECTOR_TITLE").into());
                    Ok(Value::Object(out))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            Value::Object(p.params),
            json!({"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 288, "USER_ID": 12, "CHAT_ID": 8773, "MESSAGE": "Hello"})
        );
    }

    #[test]
    fn ids_may_be_digit_strings_and_types_any_case() {
        let p = message_add(&json!({"crmEntityType": "DEAL", "crmEntity": "288", "userId": "12", "chatId": 8773.0, "message": "0 "}))
            .expect("valid");
        assert_eq!(p.params["CRM_ENTITY_TYPE"], "deal");
        assert_eq!(p.params["CRM_ENTITY"], 288);
        assert_eq!(p.params["CHAT_ID"], 8773);
    }

    #[test]
    fn validation_follows_the_portal_order() {
        // Everything missing: the first argument the server checks is named.
        let (code, arg, text) = err_of(message_add(&json!({})));
        assert_eq!(code, "ERROR_ARGUMENT");
        assert_eq!(arg.as_deref(), Some("CRM_ENTITY_TYPE"));
        assert!(text.starts_with("Argument 'CRM_ENTITY_TYPE' is null or empty"), "{text}");

        let order = ["crmEntityType", "crmEntity", "userId", "chatId", "message"];
        let wire = ["CRM_ENTITY_TYPE", "CRM_ENTITY", "USER_ID", "CHAT_ID", "MESSAGE"];
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
        for empty in [json!(null), json!(""), json!("0"), json!(0), json!(false), json!([])] {
            let mut v = seed();
            v["chatId"] = empty.clone();
            let (_, arg, text) = err_of(message_add(&v));
            assert_eq!(arg.as_deref(), Some("CHAT_ID"), "{empty}");
            assert!(text.contains("is null or empty"), "{empty}: {text}");
        }
        let mut v = seed();
        v["message"] = json!("0");
        assert!(err_of(message_add(&v)).2.contains("'MESSAGE' is null or empty"));
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
        assert!(text.contains("'lead', 'deal', 'company', 'contact'"), "{text}");
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
        let (code, _, _) = err_of(chat_get_last_id(&json!({"crmEntityType": "deal", "crmEntity": "x"})));
        assert_eq!(code, "ERROR_ARGUMENT");

        let (code, arg, _) = err_of(chat_user_delete(&json!({"crmEntityType": "deal", "crmEntity": 288})));
        assert_eq!((code.as_str(), arg.as_deref()), ("CRM_CHAT_EMPTY_USER", Some("USER_ID")));
        let (code, _, _) = err_of(chat_user_delete(&json!({"userId": 3})));
        assert_eq!(code, "CRM_CHAT_EMPTY_CRM_DATA");

        let (code, arg, _) = err_of(chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288})));
        assert_eq!((code.as_str(), arg.as_deref()), ("ERROR_ARGUMENT", Some("USER_ID")));

        let (code, arg, _) = err_of(lead_create(&json!({})));
        assert_eq!((code.as_str(), arg.as_deref()), ("CHAT_ID", Some("CHAT_ID")));
    }

    #[test]
    fn optional_params_are_encoded_only_when_given() {
        let p = chat_get(&json!({"crmEntityType": "lead", "crmEntity": 1})).expect("ok");
        assert!(!p.params.contains_key("ACTIVE_ONLY"));
        assert!(!p.write);
        let p = chat_get(&json!({"crmEntityType": "lead", "crmEntity": 1, "activeOnly": false})).expect("ok");
        assert_eq!(p.params["ACTIVE_ONLY"], "N");
        assert!(chat_get(&json!({"crmEntityType": "lead", "crmEntity": 1, "activeOnly": "N"})).is_err());

        let p = chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14})).expect("ok");
        assert!(!p.params.contains_key("CHAT_ID"));
        let p = chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14, "chatId": 8773})).expect("ok");
        assert_eq!(p.params["CHAT_ID"], 8773);
        assert!(chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14, "chatId": -1})).is_err());
    }

    #[test]
    fn raw_calls_check_the_method_name_and_guess_reads() {
        assert!(raw("crm.deal.list", &Value::Null).is_ok());
        for bad in ["", "../profile", "a/b", "a..b", "x?auth=1", ".x"] {
            assert_eq!(raw(bad, &Value::Null).expect_err(bad).code(), "ERROR_ARGUMENT");
        }
        assert!(raw("m", &json!("x")).is_err());
        assert!(!raw("crm.deal.list", &Value::Null).expect("ok").write);
        assert!(!raw("imopenlines.crm.chat.getLastId", &Value::Null).expect("ok").write);
        assert!(!raw("profile", &Value::Null).expect("ok").write);
        assert!(raw("imopenlines.crm.message.add", &Value::Null).expect("ok").write);
        assert!(raw("crm.deal.update", &Value::Null).expect("ok").write);
    }

    #[test]
    fn results_are_decoded_to_their_documented_shapes() {
        let p = message_add(&seed()).expect("ok");
        assert_eq!(decode(&p, 200, json!(19880117)).expect("id"), json!(19880117));
        assert_eq!(decode(&p, 200, json!("19880117")).expect("id"), json!(19880117));
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
        assert_eq!(chats, json!([{"chatId": 8773, "connectorId": "livechat", "connectorTitle": "Live chat"}]));
        assert_eq!(decode(&p, 200, json!([])).expect("empty"), json!([]));
        assert!(decode(&p, 200, json!([{"CHAT_ID": null}])).is_err());

        let p = chat_user_add(&json!({"crmEntityType": "deal", "crmEntity": 288, "userId": 14})).expect("ok");
        assert_eq!(decode(&p, 200, json!(0)).expect("zero"), json!(0));
        let p = lead_create(&json!({"chatId": 1})).expect("ok");
        assert_eq!(decode(&p, 200, json!(true)).expect("bool"), json!(true));
    }
}
