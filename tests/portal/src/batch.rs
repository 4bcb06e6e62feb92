//! `batch` (§6): up to 50 commands, each a `method?query` string, run one
//! after another as separate server calls with the outer request's
//! credentials; later commands may refer to earlier results with
//! `$result[cmd][field]…` (and `$next`, `$total`, `$time`, `$error`).
//!
//! After SRV-PROVIDER `methodsBatch` and SRV-UTIL `ParseBatchQuery` /
//! `processBatchElement`.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::envelope::{RestError, TimeInfo};
use crate::methods::{self, Output};
use crate::php;
use crate::request::{self, Params, Presented};
use crate::rest::{self, Incoming};
use crate::state::{App, Store};

/// Commands run per batch (`CRestUtil::BATCH_MAX_LENGTH`); the rest get
/// `ERROR_BATCH_LENGTH_EXCEEDED`.
pub const MAX_COMMANDS: usize = 50;

/// Names `$…[` references may start with, in the server's order.
const REFERENCE_SECTIONS: [&str; 5] = ["result", "next", "total", "time", "error"];

/// Runs the commands of an authenticated `batch` call and builds its result.
pub fn run(app: &App, store: &mut Store, incoming: &Incoming<'_>) -> Result<Output, RestError> {
    let params = incoming.params;
    let halt = !php::is_empty(param_ci(params, "halt"));
    let commands = commands(param_ci(params, "cmd"), incoming.cmd_order);
    let mut sections = Sections::default();
    for (index, (name, command)) in commands.into_iter().enumerate() {
        if index >= MAX_COMMANDS {
            sections.fail(name, &length_exceeded());
            continue;
        }
        let start = store.clock.now();
        match run_command(
            app,
            store,
            incoming.presented,
            command,
            &sections.refs,
            start,
        ) {
            Ok((output, time)) => sections.succeed(name, output, &time)?,
            Err(err) => {
                sections.fail(name, &err);
                if halt {
                    break;
                }
            }
        }
    }
    sections.into_output()
}

/// The lower-cased methods of a `batch` call's commands, for faults that name
/// the method a batch carries.
pub fn command_methods(params: &Params) -> Vec<String> {
    let Some(Value::Object(cmd)) = param_ci(params, "cmd") else {
        return Vec::new();
    };
    cmd.values()
        .filter_map(|c| php::to_string(Some(c)))
        .map(|text| {
            let path = text.split_once('?').map_or(text.as_str(), |(p, _)| p);
            let name = path.trim().to_lowercase();
            name.strip_suffix(".json").unwrap_or(&name).to_owned()
        })
        .collect()
}

/// A top-level parameter in any letter case (the server upper-cases them).
fn param_ci<'a>(params: &'a Params, name: &str) -> Option<&'a Value> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `(name, command)` pairs: a list's indices, or an object's names in the
/// order the request sent them.
fn commands<'a>(cmd: Option<&'a Value>, order: &[String]) -> Vec<(String, &'a Value)> {
    match cmd {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        Some(Value::Object(map)) => {
            let mut names: Vec<&String> = order
                .iter()
                .filter_map(|name| map.get_key_value(name).map(|(k, _)| k))
                .collect();
            names.dedup();
            let rest: Vec<&String> = map.keys().filter(|k| !names.contains(k)).collect();
            names
                .into_iter()
                .chain(rest)
                .filter_map(|k| map.get(k).map(|v| (k.clone(), v)))
                .collect()
        }
        _ => Vec::new(),
    }
}

fn length_exceeded() -> RestError {
    RestError::bad_request("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
}

fn method_not_allowed() -> RestError {
    RestError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "Method is not allowed for batch usage",
    )
}

/// Parses one `method?query` command (a `.json` suffix on the method is
/// dropped), resolves its references, reads its own `start` and runs it as
/// its own call with the outer credentials.
fn run_command(
    app: &App,
    store: &mut Store,
    presented: &Presented,
    command: &Value,
    refs: &Map<String, Value>,
    start: f64,
) -> Result<(Output, TimeInfo), RestError> {
    let text = php::to_string(Some(command)).unwrap_or_default();
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    let query = query.split('#').next().unwrap_or_default();
    let name = path.trim().to_lowercase();
    let name = name.strip_suffix(".json").unwrap_or(&name);
    if name == methods::BATCH {
        return Err(method_not_allowed());
    }
    let spec = methods::lookup(name).ok_or_else(RestError::method_not_found)?;
    let mut params = request::php_query(query.as_bytes());
    for value in params.values_mut() {
        substitute(value, refs);
    }
    let list_start = request::strip_reserved(&mut params);
    store.ledger.counters.batch_commands.add(spec.name);
    let incoming = Incoming {
        params: &params,
        list_start,
        presented,
        start,
        cmd_order: &[],
    };
    rest::call(app, store, spec, &incoming).result
}

/// Replaces references in every string inside `value`.
fn substitute(value: &mut Value, refs: &Map<String, Value>) {
    match value {
        Value::String(text) => {
            if let Some(replaced) = substitute_text(text, refs) {
                *value = replaced;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, refs)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, refs)),
        _ => {}
    }
}

/// `processBatchElement`: each `$section…` run up to the next whitespace is
/// a reference. One that is the whole value becomes the raw resolved value
/// (possibly an array); one inside a longer string is replaced only when
/// the resolved value is a string or a number. `None` when nothing changes.
fn substitute_text(text: &str, refs: &Map<String, Value>) -> Option<Value> {
    let references = find_references(text);
    if references.is_empty() {
        return None;
    }
    let mut out = text.to_owned();
    for reference in references {
        let Some(resolved) = resolve(reference, refs) else {
            continue;
        };
        if reference == text {
            return Some(resolved);
        }
        let replacement = match resolved {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        out = out.replace(reference, &replacement);
    }
    Some(Value::String(out))
}

/// Matches of `\$(result|next|total|time|error)[^\s]*` (case-insensitive),
/// left to right, not overlapping.
fn find_references(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find('$') {
        let at = from + offset;
        let after = &text[at + 1..];
        let named = REFERENCE_SECTIONS.iter().any(|s| {
            after
                .get(..s.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(s))
        });
        if !named {
            from = at + 1;
            continue;
        }
        let end = after
            .find(char::is_whitespace)
            .map_or(text.len(), |i| at + 1 + i);
        found.push(&text[at..end]);
        from = end;
    }
    found
}

/// Follows `[key]` steps from the named section; a missing key stops the
/// walk where it is (as the server does). `None` when there are no steps.
fn resolve(reference: &str, refs: &Map<String, Value>) -> Option<Value> {
    let body = &reference[1..];
    let name_len = REFERENCE_SECTIONS
        .iter()
        .find(|s| {
            body.get(..s.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(s))
        })
        .map_or(0, |s| s.len());
    let keys = bracket_keys(&body[name_len..]);
    if keys.is_empty() {
        return None;
    }
    // The sections are looked up by the name as written: only lower case
    // finds one.
    let mut current = refs.get(&body[..name_len]).unwrap_or(&Value::Null);
    for key in keys {
        let next = match current {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key
                .parse::<usize>()
                .ok()
                .filter(|i| i.to_string() == key)
                .and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(value) if !value.is_null() => current = value,
            _ => break,
        }
    }
    Some(current.clone())
}

/// The contents of `[…]` groups (`\[([^\]]+)\]`).
fn bracket_keys(path: &str) -> Vec<&str> {
    let mut keys = Vec::new();
    let mut from = 0;
    while let Some(open) = path[from..].find('[').map(|i| from + i) {
        match path[open + 1..].find(']') {
            Some(len) if len > 0 => {
                keys.push(&path[open + 1..open + 1 + len]);
                from = open + 1 + len + 1;
            }
            Some(_) => from = open + 1,
            None => break,
        }
    }
    keys
}

/// A PHP array as `json_encode` writes it: a list when its keys are
/// `0, 1, …, n-1` in order (so an empty one is `[]`), an object otherwise.
#[derive(Default)]
struct PhpArray(Vec<(String, Box<RawValue>)>);

impl PhpArray {
    fn is_list(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(i, (k, _))| *k == i.to_string())
    }
}

impl Serialize for PhpArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_list() {
            let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
            for (_, value) in &self.0 {
                seq.serialize_element(value)?;
            }
            seq.end()
        } else {
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (key, value) in &self.0 {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }
}

/// The five sections of a batch result, plus their decoded form for
/// references.
#[derive(Default, serde::Serialize)]
struct Sections {
    result: PhpArray,
    result_error: PhpArray,
    result_total: PhpArray,
    result_next: PhpArray,
    result_time: PhpArray,
    /// `result`, `next`, `total`, `time` and `error` by command name.
    #[serde(skip)]
    refs: Map<String, Value>,
}

fn to_raw<T: Serialize>(value: &T) -> Result<Box<RawValue>, RestError> {
    serde_json::value::to_raw_value(value).map_err(|_| RestError::internal())
}

impl Sections {
    fn remember(&mut self, section: &str, name: &str, raw: &RawValue) {
        let value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        if let Value::Object(map) = self
            .refs
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            map.insert(name.to_owned(), value);
        }
    }

    /// Files a command's result and `time`, and a list command's `next`
    /// (when more pages exist) and `total`.
    fn succeed(&mut self, name: String, output: Output, time: &TimeInfo) -> Result<(), RestError> {
        let time = to_raw(time)?;
        if let Some(page) = output.page {
            if let Some(next) = page.next {
                let next = to_raw(&next)?;
                self.remember("next", &name, &next);
                self.result_next.0.push((name.clone(), next));
            }
            let total = to_raw(&page.total)?;
            self.remember("total", &name, &total);
            self.result_total.0.push((name.clone(), total));
        }
        self.remember("result", &name, &output.result);
        self.remember("time", &name, &time);
        self.result.0.push((name.clone(), output.result));
        self.result_time.0.push((name, time));
        Ok(())
    }

    fn fail(&mut self, name: String, err: &RestError) {
        let body = String::from_utf8_lossy(&err.body()).into_owned();
        if let Ok(raw) = RawValue::from_string(body) {
            self.remember("error", &name, &raw);
            self.result_error.0.push((name, raw));
        }
    }

    fn into_output(self) -> Result<Output, RestError> {
        to_raw(&self).map(Output::plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refs() -> Map<String, Value> {
        let refs = json!({
            "result": {"a": {"ID": 7, "NAME": "Ann", "LIST": [1, 2]}, "b": "text"},
            "time": {"a": {"start": 100}}
        });
        match refs {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn whole_references_take_the_raw_value() {
        let refs = refs();
        assert_eq!(
            substitute_text("$result[a][LIST]", &refs),
            Some(json!([1, 2]))
        );
        assert_eq!(substitute_text("$result[a][ID]", &refs), Some(json!(7)));
        assert_eq!(substitute_text("$time[a][start]", &refs), Some(json!(100)));
        // A missing key stops the walk where it is.
        assert_eq!(
            substitute_text("$result[a][MISSING]", &refs),
            Some(json!({"ID": 7, "NAME": "Ann", "LIST": [1, 2]}))
        );
        assert_eq!(substitute_text("$RESULT[a]", &refs), Some(json!(null)));
    }

    #[test]
    fn embedded_references_replace_only_strings_and_numbers() {
        let refs = refs();
        assert_eq!(
            substitute_text("id $result[a][ID] by $result[a][NAME]", &refs),
            Some(json!("id 7 by Ann"))
        );
        assert_eq!(
            substitute_text("list $result[a][LIST]", &refs),
            Some(json!("list $result[a][LIST]"))
        );
        assert_eq!(substitute_text("no reference $x", &refs), None);
        assert_eq!(
            substitute_text("x:$result[b],y", &refs),
            Some(json!("x:text"))
        );
    }

    #[test]
    fn php_arrays_are_lists_only_with_keys_in_order() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap_or_default();
        let list = PhpArray(vec![("0".to_owned(), raw("1")), ("1".to_owned(), raw("2"))]);
        let map = PhpArray(vec![("1".to_owned(), raw("2"))]);
        assert_eq!(serde_json::to_string(&list).ok(), Some("[1,2]".to_owned()));
        assert_eq!(
            serde_json::to_string(&map).ok(),
            Some(r#"{"1":2}"#.to_owned())
        );
        assert_eq!(
            serde_json::to_string(&PhpArray::default()).ok(),
            Some("[]".to_owned())
        );
    }
}
