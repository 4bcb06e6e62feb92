//! `batch` (fact sheet §6): many calls in one request, which the portal's bucket counts
//! once.
//!
//! A command is `method?query`, its query in the same PHP form as a call's body
//! ([`crate::query`]); the request's body is `halt=0|1&cmd[name]=method%3Fquery...`,
//! the command strings encoded once more as form values. `$result[name]...`
//! references in parameter values are sent as written, for the portal to resolve. The
//! portal runs at most 50 commands per request, so longer lists are split into
//! requests of 50 (references work within one of them).
//!
//! Each command ends as an [`Item`]: its result, or an [`Error`] with the command's
//! method and an outcome. A request whose answer was lost makes every command in it
//! unknown; such a request is never sent again (the client never repeats an unknown
//! outcome). With `halt`, the portal stops at the first failing command; the commands
//! after it, and those of later requests, were not executed (`HALTED`).

use crate::envelope::{self, Body, HttpResponse};
use crate::error::{codes, Details, Error, Outcome, Unanswered};
use crate::json::{JsonView, Shape};
use crate::params::{self, Output, Params, Prepared};
use crate::query;
use crate::text;

/// Commands the portal runs per request. A list of commands is numbered from 0 in each
/// request, so `$result[0]` is the first command of the same request.
pub const MAX_COMMANDS: usize = 50;

/// The code of a command that was not executed because an earlier one failed under
/// `halt`.
pub const HALTED: &str = "HALTED";

/// One command of a batch, validated and encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Its name in `cmd[...]` (a list's index for a list).
    pub name: String,
    /// The REST method.
    pub method: String,
    /// Its parameters as a PHP query string.
    pub query: String,
    /// Whether it changes state.
    pub write: bool,
}

impl Command {
    /// A command from a validated call.
    pub fn from_prepared(name: String, prepared: &Prepared) -> Command {
        Command {
            name,
            method: prepared.method.clone(),
            query: crate::wire::body(&prepared.params, None),
            write: prepared.write,
        }
    }
}

/// What became of one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<J> {
    /// It ran: its result, with `total`/`next` of a list method.
    Done {
        /// The command's result.
        result: J,
        /// `total` of a list method.
        total: Option<u64>,
        /// `next` of a list method with more pages.
        next: Option<u64>,
    },
    /// It failed, was not executed, or its outcome is unknown.
    Failed(Error),
}

fn invalid(why: String) -> Error {
    Error::argument("batch", codes::ERROR_ARGUMENT, "commands", why)
}

/// A command name usable in `cmd[name]` and in `$result[name]`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// One `[method, params]` pair.
fn command<J: JsonView>(name: String, pair: &J) -> Result<Command, Error> {
    let shape = "[method, params], e.g. ['crm.lead.list', {select: ['ID']}]";
    let (method, params) = match pair.shape() {
        Shape::Array(1 | 2) => (pair.at(0), pair.at(1)),
        _ => return Err(invalid(["command ", &name, " must be ", shape].concat())),
    };
    let Some(Shape::String(method)) = method.map(|m| m.shape()) else {
        return Err(invalid(["command ", &name, " must be ", shape].concat()));
    };
    let params = params.filter(|p| p.shape() != Shape::Null);
    let prepared = params::raw(&method, params.as_ref())?;
    Ok(Command::from_prepared(name, &prepared))
}

/// Reads the caller's commands: an object `{name: [method, params]}` or a list of
/// `[method, params]`. Returns them in order, and whether they were named (an object).
pub fn commands<J: JsonView>(input: &J) -> Result<(Vec<Command>, bool), Error> {
    match input.shape() {
        Shape::Array(n) => (0..n)
            // Named by position within their request of 50, as the portal numbers a
            // list of commands.
            .map(|i| match input.at(i) {
                Some(pair) => {
                    let name = text::decimal(u64::from(i) % MAX_COMMANDS as u64);
                    command(name, &pair)
                }
                None => Err(invalid(
                    ["command ", &text::decimal(u64::from(i)), " is missing"].concat(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|c| (c, false)),
        Shape::Object => input
            .keys()
            .into_iter()
            .map(|name| {
                if !valid_name(&name) {
                    return Err(invalid(
                        [
                            "command names are letters, digits, '_', '-' or '.' (got '",
                            &name,
                            "')",
                        ]
                        .concat(),
                    ));
                }
                match input.get(&name) {
                    Some(pair) => command(name, &pair),
                    None => Err(invalid(["command ", &name, " is missing"].concat())),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|c| (c, true)),
        _ => Err(invalid(
            "commands must be an object {name: [method, params]} or a list of [method, params]"
                .to_owned(),
        )),
    }
}

/// The `batch` request for up to [`MAX_COMMANDS`] commands.
pub fn request(chunk: &[Command], halt: bool) -> Prepared {
    let mut body = String::new();
    query::pair(&mut body, "halt", if halt { "1" } else { "0" });
    for c in chunk {
        let mut key = String::from("cmd[");
        query::component(&mut key, &c.name);
        key.push(']');
        let mut command = String::with_capacity(c.method.len() + c.query.len() + 1);
        command.push_str(&c.method);
        command.push('?');
        command.push_str(&c.query);
        query::pair(&mut body, &key, &command);
    }
    Prepared {
        method: "batch".to_owned(),
        params: Params::Query(body),
        output: Output::Raw,
        write: chunk.iter().any(|c| c.write),
    }
}

/// A section's entry for `name`: by key in an object, by index in a list (the portal
/// sends a section whose keys are 0, 1, ... as a list).
fn entry<J: JsonView>(section: Option<&J>, name: &str) -> Option<J> {
    let section = section?;
    let found = match section.shape() {
        Shape::Object => section.get(name),
        Shape::Array(_) => text::parse_u64(name)
            .and_then(|i| u32::try_from(i).ok())
            .and_then(|i| section.at(i)),
        _ => None,
    };
    found.filter(|v| v.shape() != Shape::Null)
}

fn count<J: JsonView>(v: Option<J>) -> Option<u64> {
    match v?.shape() {
        Shape::Number(n) if n >= 0.0 && n.fract() == 0.0 => Some(n as u64),
        Shape::String(s) => text::parse_u64(text::trim(&s)),
        _ => None,
    }
}

/// A command not executed because an earlier one failed under `halt`.
pub fn halted(method: &str) -> Error {
    Error::Aborted(Details {
        code: HALTED.to_owned(),
        status: 0,
        method: method.to_owned(),
        description: "not executed: an earlier command failed and halt stopped the batch"
            .to_owned(),
        argument: None,
        outcome: Outcome::NotExecuted,
        retryable: crate::policy::retryable(Outcome::NotExecuted, "", true),
        note: crate::error::Note::None,
        verified: false,
        candidates: Box::default(),
        hint: crate::error::Hint::NONE,
    })
}

/// A command never sent because the caller's signal fired before its request.
pub fn not_sent(method: &str, write: bool) -> Error {
    Error::unanswered(method, Unanswered::Aborted, "", false, write)
}

/// The items of `chunk` from the batch's `result` (answered with HTTP `status`).
pub fn decode<J: JsonView>(chunk: &[Command], status: u16, result: &J) -> Vec<Item<J>> {
    let results = result.get("result");
    let errors = result.get("result_error");
    if result.shape() != Shape::Object || results.is_none() && errors.is_none() {
        let write = chunk.iter().any(|c| c.write);
        let e = Error::bad_response("batch", status, "a batch result without sections", write);
        return lost(chunk, &e);
    }
    let totals = result.get("result_total");
    let nexts = result.get("result_next");
    chunk
        .iter()
        .map(|c| {
            if let Some(value) = entry(results.as_ref(), &c.name) {
                return Item::Done {
                    result: value,
                    total: count(entry(totals.as_ref(), &c.name)),
                    next: count(entry(nexts.as_ref(), &c.name)),
                };
            }
            match entry(errors.as_ref(), &c.name) {
                Some(err) => {
                    let response = HttpResponse {
                        status,
                        body: Body::Json(err),
                    };
                    Item::Failed(match envelope::read(&c.method, c.write, response) {
                        Err(e) => e,
                        Ok(_) => Error::bad_response(
                            &c.method,
                            status,
                            "a command error without a code",
                            c.write,
                        ),
                    })
                }
                None => Item::Failed(halted(&c.method)),
            }
        })
        .collect()
}

/// Every command of a request that failed as a whole gets its error, under its own
/// method and with the request's outcome (an unknown outcome stays unknown).
pub fn lost<J>(chunk: &[Command], error: &Error) -> Vec<Item<J>> {
    chunk
        .iter()
        .map(|c| Item::Failed(error.clone().for_method(&c.method)))
        .collect()
}

/// Counts of a mass send, as `onProgress` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Items with a final state.
    pub done: usize,
    /// All items.
    pub total: usize,
    /// Delivered: the portal answered with the message's id.
    pub delivered: usize,
    /// Not delivered, surely: refused, invalid, or not executed (safe to send again
    /// when not executed).
    pub failed: usize,
    /// May have been delivered: the answer was lost.
    pub unknown: usize,
}

/// What became of one message of a mass send.
pub type Sent = Result<u64, Error>;

/// The counts of a mass send's entries so far (`None`: not yet settled).
pub fn tally(entries: &[Option<Sent>]) -> Progress {
    let mut p = Progress {
        total: entries.len(),
        ..Progress::default()
    };
    for e in entries.iter().flatten() {
        p.done += 1;
        match e {
            Ok(_) => p.delivered += 1,
            Err(e) if e.outcome() == Outcome::Unknown => p.unknown += 1,
            Err(_) => p.failed += 1,
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn named(n: usize) -> Vec<Command> {
        (0..n)
            .map(|i| Command {
                name: i.to_string(),
                method: params::MESSAGE_ADD.to_owned(),
                query: format!("MESSAGE=m{i}"),
                write: true,
            })
            .collect()
    }

    #[test]
    fn commands_are_read_from_an_object_or_a_list_and_encoded_as_php_forms() {
        let (list, keyed) = commands(&json!([
            ["crm.lead.list", {"select": ["ID"], "start": 50}],
            ["profile"]
        ]))
        .expect("valid");
        assert!(!keyed);
        assert_eq!(list[0].name, "0");
        assert_eq!(list[0].query, "select[0]=ID&start=50");
        assert!(!list[0].write && !list[1].write);
        let (named, keyed) = commands(&json!({
            "a": ["crm.lead.add", {"fields": {"TITLE": "a&b"}}],
            "b": ["imopenlines.crm.chat.get", {"CRM_ENTITY_TYPE": "lead", "CRM_ENTITY": "$result[a]"}]
        }))
        .expect("valid");
        assert!(keyed);
        assert!(named[0].write);
        let body = match request(&named, true).params {
            Params::Query(q) => q,
            Params::Fields(_) => String::new(),
        };
        // The command string is a form value: its own query is encoded once more, and
        // the reference reaches the portal as written once decoded.
        assert_eq!(
            body,
            "halt=1&cmd[a]=crm.lead.add%3Ffields%5BTITLE%5D%3Da%2526b\
             &cmd[b]=imopenlines.crm.chat.get%3FCRM_ENTITY%3D%2524result%255Ba%255D%26CRM_ENTITY_TYPE%3Dlead"
        );
        assert!(request(&named, true).write);
    }

    #[test]
    fn bad_commands_are_refused_before_anything_is_sent() {
        for bad in [
            json!("x"),
            json!([["crm.lead.list", {}, 3]]),
            json!([[12]]),
            json!({"a b": ["profile"]}),
            json!([["bad method!"]]),
            json!([["crm.lead.list", [1]]]),
        ] {
            let e = commands(&bad).expect_err("refused");
            assert_eq!(e.outcome(), Outcome::NotExecuted, "{bad}");
        }
    }

    #[test]
    fn per_command_results_errors_and_halted_commands() {
        let chunk = named(4);
        let answer = json!({
            "result": {"0": 19880117, "1": "19880118"},
            "result_error": {"2": {"error": "CHAT_NOT_IN_CRM", "error_description": "Chat does not belong"}},
            "result_total": [], "result_next": [], "result_time": {}
        });
        let items = decode(&chunk, 200, &answer);
        assert!(matches!(&items[0], Item::Done { result, .. } if *result == json!(19880117)));
        let Item::Failed(e) = &items[2] else {
            panic!("an error")
        };
        assert_eq!(
            (e.code(), e.outcome(), e.details().method.as_str()),
            ("CHAT_NOT_IN_CRM", Outcome::Failed, params::MESSAGE_ADD)
        );
        let Item::Failed(e) = &items[3] else {
            panic!("halted")
        };
        assert_eq!((e.code(), e.outcome()), (HALTED, Outcome::NotExecuted));
    }

    #[test]
    fn list_shaped_sections_and_paging_counts_are_read() {
        let chunk = named(2);
        let answer = json!({
            "result": [[{"ID": "1"}], [{"ID": "51"}]],
            "result_error": [],
            "result_total": [120, 120],
            "result_next": {"0": 50}
        });
        let items: Vec<Item<Value>> = decode(&chunk, 200, &answer);
        assert!(matches!(
            &items[0],
            Item::Done {
                total: Some(120),
                next: Some(50),
                ..
            }
        ));
        assert!(matches!(
            &items[1],
            Item::Done {
                total: Some(120),
                next: None,
                ..
            }
        ));
    }

    #[test]
    fn a_lost_answer_makes_every_command_unknown_and_a_malformed_one_too() {
        let chunk = named(3);
        let e = Error::network("batch", "other side closed", true);
        for item in lost::<Value>(&chunk, &e) {
            let Item::Failed(e) = item else {
                panic!("failed")
            };
            assert_eq!(e.outcome(), Outcome::Unknown);
            assert_eq!(e.details().method, params::MESSAGE_ADD);
            assert!(e.to_string().contains("may have been delivered"), "{e}");
        }
        for item in decode(&chunk, 200, &json!([1, 2])) {
            assert!(
                matches!(item, Item::Failed(ref e) if e.outcome() == Outcome::Unknown),
                "{item:?}"
            );
        }
    }

    #[test]
    fn progress_counts_delivered_failed_and_unknown() {
        let entries = vec![
            Some(Ok(1)),
            Some(Err(Error::network("m", "x", true))),
            Some(Err(halted("m"))),
            None,
        ];
        assert_eq!(
            tally(&entries),
            Progress {
                done: 3,
                total: 4,
                delivered: 1,
                failed: 1,
                unknown: 1
            }
        );
    }
}
