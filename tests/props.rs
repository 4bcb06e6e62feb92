//! Properties of the pure core over generated inputs: parameter validation, request
//! encoding, result decoding, the envelope reader and credential parsing never panic,
//! and what they promise holds for every input, not only for the examples.
//!
//! Each property runs 256 cases by default; `PROPTEST_CASES` raises that (see
//! `scripts/fuzz.sh` for the long run).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::indexing_slicing)]

use b24_openlines::auth::{Auth, Webhook};
use b24_openlines::envelope::{self, Body, HttpResponse};
use b24_openlines::json::{Json, JsonView};
use b24_openlines::params::{self, Decoded, Field, Output, Params, Prepared};
use b24_openlines::wire;
use b24_openlines::Error;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Strings that sit on the validators' edges.
const EDGE_STRINGS: &[&str] = &[
    "",
    "0",
    "00",
    "0.0",
    "1",
    "288",
    "-1",
    "+1",
    " 12",
    "12 ",
    "1e3",
    "1.5",
    "0x1A",
    "9007199254740991",
    "9007199254740992",
    "18446744073709551616",
    "99999999999999999999999",
    "lead",
    "deal",
    "COMPANY",
    "Contact",
    "order",
    "dea l",
    "deal\u{0}",
    "\u{0}",
    "\u{feff}",
    "\u{2028}",
    "null",
    "true",
    "Y",
    "N",
    "{}",
    "[]",
    "\"",
    "\\",
    "&auth=x",
    "a[b]=c",
    "%00",
    "Привет",
    "\u{1F600}",
];

/// Member names the core looks for, so that generated objects often hold them.
const KNOWN_KEYS: &[&str] = &[
    "crmEntityType",
    "crmEntity",
    "userId",
    "chatId",
    "message",
    "activeOnly",
    "CHAT_ID",
    "CONNECTOR_ID",
    "CONNECTOR_TITLE",
    "error",
    "error_description",
    "argument",
    "result",
    "time",
    "total",
    "next",
    "start",
    "finish",
    "duration",
    "processing",
    "operating",
    "operating_reset_at",
];

/// Any string: arbitrary Unicode (control characters included), edge cases, and
/// number-like text.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        3 => select(EDGE_STRINGS).prop_map(str::to_owned),
        2 => "[0-9]{1,20}",
        1 => "[ \t\n]{0,2}[+-]?[0-9]{0,4}(\\.[0-9]{0,3})?(e[+-]?[0-9]{1,3})?[ \t\n]{0,2}",
        1 => prop::collection::vec(any::<char>(), 0..200).prop_map(|c| c.into_iter().collect()),
    ]
}

/// Any JSON number: integers of the whole 64-bit ranges, finite floats of every
/// class (huge, tiny, subnormal, negative zero), and the id range's edges.
fn any_number() -> impl Strategy<Value = serde_json::Number> {
    use prop::num::f64 as float;
    prop_oneof![
        any::<i64>().prop_map(serde_json::Number::from),
        any::<u64>().prop_map(serde_json::Number::from),
        (float::POSITIVE | float::NEGATIVE | float::NORMAL | float::SUBNORMAL | float::ZERO)
            .prop_filter_map("finite", serde_json::Number::from_f64),
        select(vec![
            0u64,
            1,
            288,
            MAX_SAFE_INTEGER,
            MAX_SAFE_INTEGER + 1,
            MAX_SAFE_INTEGER + 2,
            u64::MAX,
        ])
        .prop_map(serde_json::Number::from),
        select(vec![
            -0.0,
            0.5,
            1.0,
            1.5,
            288.0,
            -288.0,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e15,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
        ])
        .prop_filter_map("finite", serde_json::Number::from_f64),
    ]
}

fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(KNOWN_KEYS).prop_map(str::to_owned),
        1 => any_string(),
    ]
}

/// Any JSON value: scalars of every kind, nested arrays and objects.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number().prop_map(Value::Number),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((any_key(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// An entity type spelled in random letter case.
fn entity_type_any_case() -> impl Strategy<Value = (String, &'static str)> {
    (
        select(&["lead", "deal", "company", "contact"][..]),
        prop::collection::vec(any::<bool>(), 7),
    )
        .prop_map(|(t, upper)| {
            let spelled = t
                .chars()
                .zip(upper)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            (spelled, t)
        })
}

/// A valid id in one of the spellings a caller may use, with its value.
fn valid_id() -> impl Strategy<Value = (Value, u64)> {
    let n = prop_oneof![
        1u64..=100_000,
        1u64..=MAX_SAFE_INTEGER,
        Just(MAX_SAFE_INTEGER)
    ];
    (n, 0..3u8).prop_map(|(n, spelling)| {
        let v = match spelling {
            0 => json!(n),
            1 => json!(n.to_string()),
            _ => json!(n as f64),
        };
        (v, n)
    })
}

/// A value that is not a valid id: empty in PHP's sense, or of the wrong type.
fn invalid_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(vec![
            json!(null),
            json!(""),
            json!("0"),
            json!(0),
            json!(0.0),
            json!(false),
            json!([]),
            json!(-5),
            json!(1.5),
            json!("12a"),
            json!("-3"),
            json!(" 12"),
            json!("00"),
            json!(true),
            json!({}),
            json!({"a": 1}),
            json!([1]),
            json!(MAX_SAFE_INTEGER + 1),
            json!((MAX_SAFE_INTEGER + 1).to_string()),
            json!(1e300),
        ]),
        "[^0-9]{1,8}".prop_map(Value::String),
    ]
}

/// A valid message: any string that is not PHP-empty (`""`, `"0"`) and not blank once
/// the portal stores it.
fn valid_message() -> impl Strategy<Value = String> {
    any_string().prop_filter("PHP-empty or blank", |s| {
        !s.is_empty() && s != "0" && !b24_openlines::message_text::stored(s).is_empty()
    })
}

/// Values for a field of the caller's params: anything, or something close to valid.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any_json(),
        2 => valid_id().prop_map(|(v, _)| v),
        1 => invalid_id(),
        1 => entity_type_any_case().prop_map(|(s, _)| Value::String(s)),
    ]
}

/// An object with the params' member names holding arbitrary values, plus noise.
fn params_like_object() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            (
                select(
                    &[
                        "crmEntityType",
                        "crmEntity",
                        "userId",
                        "chatId",
                        "message",
                        "activeOnly",
                    ][..],
                ),
                field_value(),
            ),
            0..8,
        ),
        prop::collection::vec((any_string(), any_json()), 0..3),
    )
        .prop_map(|(known, noise)| {
            let mut m = Map::new();
            for (k, v) in noise {
                m.insert(k, v);
            }
            for (k, v) in known {
                m.insert(k.to_owned(), v);
            }
            Value::Object(m)
        })
}

// ---------------------------------------------------------------------------
// The typed methods
// ---------------------------------------------------------------------------

type Validator = fn(&Value) -> Result<Prepared, Error>;

/// One typed method: its validator, REST name, result kind, whether it writes, its
/// fields in the portal's validation order (JS name, wire name, kind), and the codes
/// its validation may answer.
struct Method {
    validate: Validator,
    name: &'static str,
    output: Output,
    write: bool,
    order: &'static [(&'static str, &'static str, Kind)],
    codes: &'static [&'static str],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    EntityType,
    Id,
    OptionalId,
    Text,
    OptionalBool,
}

const ENTITY: [(&str, &str, Kind); 2] = [
    ("crmEntityType", "CRM_ENTITY_TYPE", Kind::EntityType),
    ("crmEntity", "CRM_ENTITY", Kind::Id),
];

static METHODS: [Method; 6] = [
    Method {
        validate: params::message_add::<Value>,
        name: params::MESSAGE_ADD,
        output: Output::Id,
        write: true,
        order: &[
            ENTITY[0],
            ENTITY[1],
            ("userId", "USER_ID", Kind::Id),
            ("chatId", "CHAT_ID", Kind::Id),
            ("message", "MESSAGE", Kind::Text),
        ],
        codes: &["ERROR_ARGUMENT"],
    },
    Method {
        validate: params::chat_get::<Value>,
        name: params::CHAT_GET,
        output: Output::Chats,
        write: false,
        order: &[
            ENTITY[0],
            ENTITY[1],
            ("activeOnly", "ACTIVE_ONLY", Kind::OptionalBool),
        ],
        codes: &["ERROR_ARGUMENT"],
    },
    Method {
        validate: params::chat_get_last_id::<Value>,
        name: params::CHAT_GET_LAST_ID,
        output: Output::Id,
        write: false,
        order: &[ENTITY[0], ENTITY[1]],
        codes: &["ERROR_ARGUMENT", "CRM_CHAT_EMPTY_CRM_DATA"],
    },
    Method {
        validate: params::chat_user_add::<Value>,
        name: params::CHAT_USER_ADD,
        output: Output::IdOrZero,
        write: true,
        order: &[
            ENTITY[0],
            ENTITY[1],
            ("userId", "USER_ID", Kind::Id),
            ("chatId", "CHAT_ID", Kind::OptionalId),
        ],
        codes: &["ERROR_ARGUMENT"],
    },
    Method {
        validate: params::chat_user_delete::<Value>,
        name: params::CHAT_USER_DELETE,
        output: Output::IdOrZero,
        write: true,
        // The delete handler checks the user first.
        order: &[
            ("userId", "USER_ID", Kind::Id),
            ENTITY[0],
            ENTITY[1],
            ("chatId", "CHAT_ID", Kind::OptionalId),
        ],
        codes: &[
            "ERROR_ARGUMENT",
            "CRM_CHAT_EMPTY_CRM_DATA",
            "CRM_CHAT_EMPTY_USER",
        ],
    },
    Method {
        validate: params::lead_create::<Value>,
        name: params::LEAD_CREATE,
        output: Output::Bool,
        write: true,
        order: &[("chatId", "CHAT_ID", Kind::Id)],
        codes: &["ERROR_ARGUMENT", "CHAT_ID"],
    },
];

/// What a validator's answer must look like whatever the input.
fn check_outcome(m: &Method, r: &Result<Prepared, Error>) -> Result<(), TestCaseError> {
    match r {
        Err(e) => {
            let d = e.details();
            prop_assert_eq!(e.kind(), "invalidArgument", "{}: {:?}", m.name, d);
            prop_assert!(m.codes.contains(&d.code.as_str()), "{}: {:?}", m.name, d);
            prop_assert_eq!(d.method.as_str(), m.name);
            prop_assert_eq!(d.status, 0);
            prop_assert!(!d.retryable);
            prop_assert!(!d.description.is_empty());
            let arg = d.argument.as_deref().unwrap_or_default();
            // A parameter of the method, or a key the caller passed that it does not
            // take (named, with the param it meant when it is a wire name).
            let unknown_key = d.description.contains(" is not a parameter of ")
                || d.description.contains(" is the portal's wire name: pass ");
            prop_assert!(
                arg == "params" || unknown_key || m.order.iter().any(|(_, wire, _)| *wire == arg),
                "{}: unknown argument {:?}",
                m.name,
                arg
            );
        }
        Ok(p) => {
            prop_assert_eq!(p.method.as_str(), m.name);
            prop_assert_eq!(p.output, m.output);
            prop_assert_eq!(p.write, m.write);
            let Params::Fields(fields) = &p.params else {
                return Err(TestCaseError::fail("typed params are fields"));
            };
            // Wire names in the canonical order, required ones present, each valid.
            let mut wanted = m.order.to_vec();
            wanted.sort_by_key(|(_, wire, _)| canonical_rank(wire));
            let mut it = fields.iter().peekable();
            for (_, wire, kind) in wanted {
                let here = it.peek().filter(|(k, _)| *k == wire).is_some();
                if !here {
                    prop_assert!(
                        matches!(kind, Kind::OptionalId | Kind::OptionalBool),
                        "{}: {} missing in {:?}",
                        m.name,
                        wire,
                        fields
                    );
                    continue;
                }
                let Some((_, v)) = it.next() else { break };
                match (kind, v) {
                    (Kind::EntityType, Field::Str(s)) => {
                        prop_assert!(["lead", "deal", "company", "contact"].contains(&s.as_str()))
                    }
                    (Kind::Id | Kind::OptionalId, Field::Int(n)) => {
                        prop_assert!((1..=MAX_SAFE_INTEGER).contains(n), "{} = {}", wire, n)
                    }
                    (Kind::Text, Field::Str(s)) => prop_assert!(!s.is_empty() && s != "0"),
                    (Kind::OptionalBool, Field::Str(s)) => prop_assert!(s == "Y" || s == "N"),
                    other => prop_assert!(false, "{}: {} is {:?}", m.name, wire, other),
                }
            }
            prop_assert!(it.next().is_none(), "{}: extra fields {:?}", m.name, fields);
        }
    }
    Ok(())
}

/// The order fields appear in on the wire (CRM item first, as the portal documents).
fn canonical_rank(wire: &str) -> usize {
    [
        "CRM_ENTITY_TYPE",
        "CRM_ENTITY",
        "USER_ID",
        "CHAT_ID",
        "MESSAGE",
        "ACTIVE_ONLY",
    ]
    .iter()
    .position(|w| *w == wire)
    .unwrap_or(usize::MAX)
}

/// A valid input for `m`, with the fields it must encode to.
fn valid_input(m: &'static Method) -> impl Strategy<Value = (Value, Vec<(&'static str, Field)>)> {
    (
        entity_type_any_case(),
        valid_id(),
        valid_id(),
        valid_id(),
        valid_message(),
        prop::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            move |((t, canonical), entity, user, chat, message, active, with_optional)| {
                let mut input = Map::new();
                let mut fields = Vec::new();
                for (js, wire, kind) in m.order {
                    let (value, field) = match kind {
                        Kind::EntityType => {
                            (Value::String(t.clone()), Field::Str(canonical.to_owned()))
                        }
                        Kind::Id if *js == "crmEntity" => (entity.0.clone(), Field::Int(entity.1)),
                        Kind::Id if *js == "userId" => (user.0.clone(), Field::Int(user.1)),
                        Kind::Id | Kind::OptionalId => {
                            if *kind == Kind::OptionalId && !with_optional {
                                input.remove(*js);
                                continue;
                            }
                            (chat.0.clone(), Field::Int(chat.1))
                        }
                        Kind::Text => (Value::String(message.clone()), Field::Str(message.clone())),
                        Kind::OptionalBool => match active {
                            None => {
                                input.remove(*js);
                                continue;
                            }
                            Some(b) => (json!(b), Field::Str(if b { "Y" } else { "N" }.into())),
                        },
                    };
                    input.insert((*js).to_owned(), value);
                    fields.push((*wire, field));
                }
                fields.sort_by_key(|(wire, _)| canonical_rank(wire));
                (Value::Object(input), fields)
            },
        )
}

fn any_method() -> impl Strategy<Value = &'static Method> {
    (0..METHODS.len()).prop_map(|i| &METHODS[i])
}

/// A valid input of a random method.
fn any_valid_call() -> impl Strategy<Value = (&'static Method, Value, Vec<(&'static str, Field)>)> {
    any_method().prop_flat_map(|m| valid_input(m).prop_map(move |(v, f)| (m, v, f)))
}

/// Keeps a debug print of `Method` short in failure reports.
impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

proptest! {
    /// Whatever the caller passes as params, every validator answers: a prepared call
    /// whose fields are all valid, or an argument error naming one of its parameters.
    #[test]
    fn validators_answer_any_json(input in prop_oneof![any_json(), params_like_object()]) {
        for m in &METHODS {
            let r = (m.validate)(&input);
            check_outcome(m, &r)?;
        }
    }

    /// Valid params, in any spelling the API accepts (ids as numbers, digit strings or
    /// whole floats; the entity type in any case), are
    /// accepted and become exactly the expected wire fields.
    #[test]
    fn valid_params_validate_to_their_wire_fields((m, input, fields) in any_valid_call()) {
        let p = (m.validate)(&input);
        check_outcome(m, &p)?;
        let p = p.map_err(|e| TestCaseError::fail(format!("{}: {e} for {input}", m.name)))?;
        prop_assert_eq!(p.params, Params::Fields(fields));
    }

    /// A key a method does not take is refused by its name, whatever else is valid:
    /// nothing the caller passes is dropped.
    #[test]
    fn unknown_keys_are_refused_by_name((m, input, _) in any_valid_call(), key in "[a-zA-Z_]{1,12}", value in any_json()) {
        prop_assume!(!m.order.iter().any(|(js, _, _)| *js == key));
        let mut input = input;
        input[key.as_str()] = value;
        let e = (m.validate)(&input).err().ok_or_else(|| TestCaseError::fail(format!("{} took {key}", m.name)))?;
        prop_assert_eq!(e.code(), "ERROR_ARGUMENT");
        prop_assert!(e.message().contains(&key), "{}", e.message());
    }

    /// With any set of fields broken, the error names the first broken one in the
    /// portal's own order of checks.
    #[test]
    fn the_first_invalid_field_is_the_one_named(
        (m, input, _) in any_valid_call(),
        broken in prop::collection::vec((0..5usize, invalid_id(), any_json()), 1..4),
    ) {
        let mut input = input;
        let mut first = usize::MAX;
        for (i, bad_id, other) in broken {
            let i = i % m.order.len();
            let (js, _, kind) = m.order[i];
            let bad = match kind {
                Kind::Id => bad_id,
                // Empty is fine for an optional id; anything else must be a valid id.
                Kind::OptionalId => match bad_id {
                    v if is_php_empty(&v) => continue,
                    v => v,
                },
                Kind::EntityType => match other {
                    Value::String(s) if is_entity_type(&s) => continue,
                    v => v,
                },
                Kind::Text => match other {
                    Value::String(s) if !s.is_empty() && s != "0" => json!(null),
                    v => v,
                },
                Kind::OptionalBool => match other {
                    Value::Null | Value::Bool(_) => json!("Y"),
                    v => v,
                },
            };
            input[js] = bad;
            first = first.min(i);
        }
        prop_assume!(first != usize::MAX);
        let r = (m.validate)(&input);
        check_outcome(m, &r)?;
        let e = r.err().ok_or_else(|| TestCaseError::fail(format!("{} accepted {input}", m.name)))?;
        prop_assert_eq!(e.details().argument.as_deref(), Some(m.order[first].1), "{}", input);
    }

    /// `call()`: any method name and any params value is accepted or refused with
    /// `ERROR_ARGUMENT`, never a crash; an accepted name is trimmed and safe in a URL path.
    #[test]
    fn raw_calls_answer_any_name_and_params(
        name in prop_oneof![any_string(), "[ ]{0,2}[a-zA-Z0-9._/?&%]{0,40}[ ]{0,2}"],
        params in prop::option::of(prop_oneof![any_string().prop_map(Value::String), any_json()]),
    ) {
        match params::raw(&name, params.as_ref()) {
            Err(e) => {
                prop_assert_eq!(e.code(), "ERROR_ARGUMENT");
                prop_assert_eq!(e.kind(), "invalidArgument");
            }
            Ok(p) => {
                prop_assert_eq!(p.method.as_str(), name.trim());
                prop_assert!(p.method.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
                prop_assert!(!p.method.is_empty() && !p.method.starts_with('.') && !p.method.contains(".."));
                prop_assert_eq!(p.output, Output::Raw);
                prop_assert_eq!(p.write, !params::is_read(&p.method));
                match (params, &p.params) {
                    (None, Params::Fields(f)) => prop_assert!(f.is_empty()),
                    (Some(v), Params::Query(_)) => prop_assert!(v.is_object(), "{}", v),
                    (given, kept) => prop_assert!(false, "{:?} became {:?}", given, kept),
                }
            }
        }
    }

    /// Requests for any valid call go to the auth's base URL plus the method, and carry
    /// no token in the URL; their debug form shows neither the token nor the secret.
    #[test]
    fn requests_go_to_the_method_url(
        (m, input, _) in any_valid_call(),
        secret in "[a-z0-9]{10,32}",
        token in "[A-Za-z0-9._-]{10,64}",
    ) {
        let p = (m.validate)(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let hook = Webhook::parse(&format!("https://portal.example/rest/7/{secret}/"), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let req = wire::encode(&Auth::Webhook(hook), &p);
        prop_assert_eq!(req.url, format!("https://portal.example/rest/7/{secret}/{}", m.name));
        let auth = Auth::token(Some("portal.example"), None, &token, true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let req = wire::encode(&auth, &p);
        prop_assert_eq!(&req.url, &format!("https://portal.example/rest/{}", m.name));
        prop_assert!(!req.url.contains(&token));
        let shown = format!("{req:?} {auth:?}");
        prop_assert!(!shown.contains(&token) && !shown.contains(&secret), "{}", shown);
    }

    /// Any result the portal sends decodes to the documented shape or is a
    /// `BAD_RESPONSE` with the answer's status; it never crashes.
    #[test]
    fn results_decode_or_are_bad_responses(
        (m, input, _) in any_valid_call(),
        raw_name in "[a-z]{1,8}\\.[a-z]{1,8}",
        use_raw in any::<bool>(),
        status in any::<u16>(),
        result in prop_oneof![
            any_json(),
            prop::collection::vec(prop::collection::vec((select(KNOWN_KEYS), field_value()), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())), 0..4)
                .prop_map(Value::Array),
        ],
    ) {
        let p = if use_raw {
            params::raw::<Value>(&raw_name, None).map_err(|e| TestCaseError::fail(e.to_string()))?
        } else {
            (m.validate)(&input).map_err(|e| TestCaseError::fail(e.to_string()))?
        };
        match params::decode(&p, status, result.clone()) {
            Ok(Decoded::Raw(v)) => {
                prop_assert_eq!(p.output, Output::Raw);
                prop_assert_eq!(v, result);
            }
            Ok(Decoded::Number(n)) => match p.output {
                Output::Id => prop_assert!((1..=MAX_SAFE_INTEGER).contains(&n)),
                Output::IdOrZero => prop_assert!(n <= MAX_SAFE_INTEGER),
                other => prop_assert!(false, "a number for {:?}", other),
            },
            Ok(Decoded::Bool(b)) => {
                prop_assert_eq!(p.output, Output::Bool);
                prop_assert_eq!(result, Value::Bool(b));
            }
            Ok(Decoded::Chats(chats)) => {
                prop_assert_eq!(p.output, Output::Chats);
                let n = match &result {
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    _ => usize::MAX,
                };
                prop_assert_eq!(chats.len(), n);
                prop_assert!(chats.iter().all(|c| (1..=MAX_SAFE_INTEGER).contains(&c.chat_id)));
            }
            Err(e) => {
                prop_assert!(p.output != Output::Raw);
                prop_assert_eq!(e.code(), "BAD_RESPONSE");
                prop_assert_eq!(e.details().status, status);
                prop_assert_eq!(e.details().method.as_str(), p.method.as_str());
                prop_assert!(!(p.write && e.details().retryable));
            }
        }
    }
}

fn is_php_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn is_entity_type(s: &str) -> bool {
    ["lead", "deal", "company", "contact"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(s))
}

// ---------------------------------------------------------------------------
// The envelope reader
// ---------------------------------------------------------------------------

/// An answer body: JSON of any shape, envelope-like objects with members of any
/// type, or a body that was not JSON.
fn any_body() -> impl Strategy<Value = Body<Value>> {
    let member = prop_oneof![
        3 => any_json(),
        1 => any_string().prop_map(Value::String),
        1 => any_number().prop_map(Value::Number),
    ];
    let envelope = prop::collection::vec(
        (
            select(
                &[
                    "result",
                    "error",
                    "error_description",
                    "argument",
                    "time",
                    "total",
                    "next",
                ][..],
            ),
            member,
        ),
        0..6,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![
        2 => any_json().prop_map(Body::Json),
        3 => envelope.prop_map(Body::Json),
        1 => (any_string(), any::<usize>()).prop_map(|(content_type, len)| Body::NotJson { content_type, len }),
    ]
}

proptest! {
    /// Any status with any body reads as a success or as an error with a code; an error
    /// envelope's code, text and argument are passed through as sent.
    #[test]
    fn any_answer_reads_as_success_or_coded_error(
        status in prop_oneof![any::<u16>(), select(&[200u16, 400, 401, 403, 404, 500, 502, 503][..])],
        body in any_body(),
        write in any::<bool>(),
    ) {
        let sent = match &body { Body::Json(v) => Some(v.clone()), Body::NotJson { .. } => None };
        let r = envelope::read(params::MESSAGE_ADD, write, HttpResponse { status, body });
        match (r, sent) {
            (Ok(s), Some(v)) => {
                prop_assert_eq!(s.status, status);
                prop_assert!(v.get("error").is_none());
                prop_assert_eq!(Some(&s.result), v.get("result"));
            }
            (Ok(_), None) => prop_assert!(false, "a body that is not JSON was read as a success"),
            (Err(e), sent) => {
                let d = e.details();
                prop_assert!(!d.code.is_empty());
                prop_assert_eq!(d.status, status);
                prop_assert_eq!(d.method.as_str(), params::MESSAGE_ADD);
                prop_assert!(!(write && d.retryable), "a write is never marked safe to repeat: {:?}", d);
                if let Some(Value::String(code)) = sent.as_ref().and_then(|v| v.get("error")) {
                    if !code.is_empty() {
                        prop_assert_eq!(&d.code, code);
                        let text = sent.as_ref().and_then(|v| v.get("error_description"));
                        if let Some(Value::String(text)) = text {
                            prop_assert_eq!(&d.description, text);
                        }
                        let argument = sent.as_ref().and_then(|v| v.get("argument"));
                        if let Some(Value::String(a)) = argument {
                            prop_assert_eq!(d.argument.as_ref(), Some(a));
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------

/// A webhook URL around `secret`, well-formed or broken in one of the ways callers
/// get it wrong.
fn webhook_variant(secret: &str, variant: u8, noise: &str) -> String {
    match variant {
        0 => format!("https://portal.example/rest/1/{secret}/"),
        1 => format!("  http://127.0.0.1:8080/sub/rest/12/{secret}  "),
        2 => format!("ftp://portal.example/rest/1/{secret}/"),
        3 => format!("portal.example/rest/1/{secret}/"),
        4 => format!("https://portal.example/1/{secret}/"),
        5 => format!("https://portal.example/rest/x/{secret}/"),
        6 => format!("https://portal.example/rest/1/{secret}/?a={secret}"),
        7 => format!("https://portal.example/rest/1/{secret}/#{secret}"),
        8 => format!("https:///rest/1/{secret}/"),
        9 => format!("https://portal.example/rest/1/{secret}/extra/"),
        10 => format!("https://portal.example/rest//{secret}/"),
        11 => format!("https://portal.example/rest/1/{secret} /"),
        12 => format!("https://portal.example/rest/1/{secret}{noise}"),
        13 => format!("{noise}https://portal.example/rest/1/{secret}/"),
        14 => format!("HTTPS://portal.example/rest/1/{secret}/"),
        15 => format!("https://portal.example/rest/1/{noise}/"),
        _ => format!("https://portal.example{noise}/rest/1/{secret}/"),
    }
}

proptest! {
    /// A string written by `json::write_str` reads back as itself, by a standard JSON
    /// parser and by the module's own reader (results reach the caller through it).
    #[test]
    fn written_json_strings_read_back_as_themselves(s in any_string()) {
        let mut out = String::new();
        b24_openlines::json::write_str(&mut out, &s);
        prop_assert_eq!(serde_json::from_str::<String>(&out).ok(), Some(s.clone()));
        let ours = Json::parse(out).map(|j| match j.shape() {
            b24_openlines::json::Shape::String(s) => Some(s),
            _ => None,
        });
        prop_assert_eq!(ours, Ok(Some(s)));
    }

    /// `Webhook::parse` takes any string without crashing; refusals are `NO_AUTH`.
    #[test]
    fn webhook_parse_answers_any_string(url in any_string()) {
        match Webhook::parse(&url, true) {
            Err(e) => prop_assert_eq!(e.code(), "NO_AUTH"),
            Ok(w) => {
                prop_assert!(w.base().starts_with("https://") || w.base().starts_with("http://"));
                prop_assert!(w.base().ends_with('/'));
            }
        }
    }

    /// Whether a webhook URL is accepted or refused, nothing shown to the caller (error
    /// text, error debug form, the auth's debug form) contains its secret.
    #[test]
    fn webhook_secrets_never_appear_in_errors(
        secret in "[a-z0-9]{8,32}[0-9]",
        variant in 0..17u8,
        noise in any_string(),
    ) {
        let url = webhook_variant(&secret, variant, &noise);
        match Webhook::parse(&url, true) {
            Err(e) => {
                prop_assert_eq!(e.code(), "NO_AUTH");
                let shown = format!("{e} {e:?}");
                prop_assert!(!shown.contains(&secret), "{} -> {}", url, shown);
            }
            Ok(w) => {
                if variant <= 1 {
                    prop_assert!(w.base().ends_with(&format!("/{secret}/")), "{}", w.base());
                }
                let auth = Auth::Webhook(w);
                let shown = format!("{auth:?} {}", auth.origin());
                prop_assert!(!shown.contains(&secret), "{} -> {}", url, shown);
                if variant <= 1 {
                    prop_assert_eq!(auth.secret(), secret.as_str());
                }
            }
        }
    }

    /// `Auth::token` takes any domain, endpoint and token without crashing; refusals are
    /// `NO_AUTH` without the token, and an accepted token never shows in the URL or in
    /// the debug form.
    #[test]
    fn token_auth_answers_any_input(
        domain in prop::option::of(prop_oneof![any_string(), "(https?://)?[a-z.]{1,20}(:[0-9]{1,5})?/?"]),
        endpoint in prop::option::of(prop_oneof![any_string(), "(https?://)?[a-z.]{1,20}/rest/?"]),
        token in prop_oneof![any_string(), "[A-Za-z0-9]{8,40}[0-9]"],
    ) {
        let secret = token.trim();
        // Only a token long enough not to occur by chance in a fixed text is checked.
        let distinctive = secret.chars().count() >= 8 && secret.chars().any(|c| c.is_ascii_digit());
        match Auth::token(domain.as_deref(), endpoint.as_deref(), &token, true) {
            Err(e) => {
                prop_assert_eq!(e.code(), "NO_AUTH");
                if distinctive {
                    let shown = format!("{e} {e:?}");
                    prop_assert!(!shown.contains(secret), "{}", shown);
                }
            }
            Ok(auth) => {
                prop_assert_eq!(auth.secret(), secret);
                let url = auth.url(params::MESSAGE_ADD);
                prop_assert!(url.starts_with("https://") || url.starts_with("http://"), "{}", url);
                prop_assert!(url.ends_with(&format!("/{}", params::MESSAGE_ADD)), "{}", url);
                if distinctive && !domain.as_deref().unwrap_or_default().contains(secret)
                    && !endpoint.as_deref().unwrap_or_default().contains(secret)
                {
                    let shown = format!("{auth:?}");
                    prop_assert!(!url.contains(secret), "{}", url);
                    prop_assert!(!shown.contains(secret), "{}", shown);
                }
            }
        }
    }
}

proptest! {
    /// A password in a URL's user-info (`https://bob:pw@portal/...`) is a secret too:
    /// it never shows in an error, in the auth's debug form or in its origin.
    #[test]
    fn user_info_passwords_never_appear(
        password in "[A-Za-z0-9]{8,20}[0-9]",
        secret in "[a-z0-9]{8,32}[0-9]",
    ) {
        let webhook = Webhook::parse(&format!("https://bob:{password}@portal.example/rest/1/{secret}/"), true)
            .map(Auth::Webhook);
        let domain = format!("https://bob:{password}@portal.example");
        let endpoint = format!("https://bob:{password}@portal.example/rest/");
        let from_domain = Auth::token(Some(domain.as_str()), None, "tok", true);
        let from_endpoint = Auth::token(None, Some(endpoint.as_str()), "tok", true);
        for r in [webhook, from_domain, from_endpoint] {
            let shown = match r {
                Err(e) => format!("{e} {e:?}"),
                Ok(auth) => format!("{auth:?} {}", auth.origin()),
            };
            prop_assert!(!shown.contains(&password), "{}", shown);
        }
    }
}

/// `v` as the wasm build reads it: its JSON text, through the core's own reader.
fn as_text(v: &Value) -> Result<Json, TestCaseError> {
    let text = serde_json::to_string(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
    Json::parse(text).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The wasm build reads params and answers as JSON text with the core's reader;
    /// every decision made from it is the one made from the parsed value: validation,
    /// the encoded query of `call()`, and reading an answer's envelope.
    #[test]
    fn the_text_reader_decides_as_the_parsed_value_does(
        params in prop_oneof![any_json(), params_like_object()],
        status in any::<u16>(),
    ) {
        let text = as_text(&params)?;
        for m in &METHODS {
            let from_value = (m.validate)(&params);
            let typed = params::methods::<Json>();
            let t = typed.iter().find(|t| t.rest == m.name).ok_or_else(|| TestCaseError::fail(m.name))?;
            let from_text = (t.prepare)(&text);
            match (&from_value, &from_text) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(
                    (a.code(), &a.details().argument),
                    (b.code(), &b.details().argument)
                ),
                _ => prop_assert!(false, "{}: {:?} vs {:?} for {}", m.name, from_value, from_text, params),
            }
        }
        let raw_value = params::raw("x.y", Some(&params)).map(|p| p.params);
        let raw_text = params::raw("x.y", Some(&text)).map(|p| p.params);
        prop_assert_eq!(raw_value.map_err(|e| e.to_string()), raw_text.map_err(|e| e.to_string()));
        let read_value = envelope::read("x.y", true, HttpResponse { status, body: Body::Json(params.clone()) });
        let read_text = envelope::read("x.y", true, HttpResponse { status, body: Body::Json(text) });
        // A member that is JSON null is absent for the text reader, as for a JS value,
        // and present for serde: such envelopes are compared by the wasm tests.
        if params.as_object().is_some_and(|o| o.values().any(Value::is_null)) {
            return Ok(());
        }
        match (read_value, read_text) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(serde_json::to_string(&a.result).ok(), Some(b.result.text().to_owned()));
                prop_assert_eq!((a.total, a.next), (b.total, b.next));
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{:?} vs {:?} for {}", a.map(|s| s.result), b.map(|s| s.result.text().to_owned()), params),
        }
    }
}
