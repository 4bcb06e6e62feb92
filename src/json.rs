//! JSON as the core sees it: read through [`JsonView`].
//!
//! Params and answers cross into the core as JSON text (`JSON.stringify` of the
//! caller's params, a response body) and are read by [`Json`], a small reader made
//! for this: one pass into a flat list of nodes that keep their place in the text,
//! so that a value handed back to JS is its own text again ([`Json::text`]), for
//! `JSON.parse`, never rebuilt property by property. Reading text in wasm costs one
//! string crossing where reading a JS object costs several calls per value; a general
//! JSON library would be most of the binary (one measured at 29 KB). Natively,
//! `serde_json::Value` is a view too, for tests.

use std::rc::Rc;

use crate::text;

/// What a JSON value is, with its scalar payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `null`, or absent (`undefined` in JS).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (JS numbers are all `f64`).
    Number(f64),
    /// A string.
    String(String),
    /// An array of this length.
    Array(u32),
    /// An object (a map).
    Object,
    /// Anything JSON cannot hold (a JS symbol, bigint or function).
    Other,
}

/// Read access to a JSON-like value.
pub trait JsonView: Clone {
    /// The value's kind and scalar payload.
    fn shape(&self) -> Shape;
    /// An object's member; `None` when absent, `undefined` or not an object.
    fn get(&self, key: &str) -> Option<Self>;
    /// An array's element.
    fn at(&self, index: u32) -> Option<Self>;
    /// An object's keys in order (empty when not an object).
    fn keys(&self) -> Vec<String>;
    /// A number's shortest decimal text, as its own runtime prints it (JS `String(n)`);
    /// `None` when not a number. The core never formats floats itself.
    fn number_text(&self) -> Option<String>;
    /// Whether the value is a string holding a lone surrogate (JS `'\uD800'`), which
    /// its [`Shape::String`] shows as U+FFFD.
    fn lone_surrogate(&self) -> bool {
        false
    }
}

/// How deep arrays and objects may nest (PHP's `max_input_nesting_level` is 64, so
/// a deeper query could not reach a method anyway).
pub const MAX_DEPTH: u32 = 64;

/// A value in a parsed JSON text: cheap to clone (the document is shared).
#[derive(Clone)]
pub struct Json {
    doc: Rc<Doc>,
    at: u32,
}

struct Doc {
    text: String,
    nodes: Vec<Node>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Null,
    False,
    True,
    Number,
    String,
    Array,
    Object,
}

/// One value: its kind, its text `start..end`, its first child and its next sibling
/// (0: none; node 0 is the root, never a child), and for an object member its key
/// (the key string's text, quotes included).
#[derive(Clone, Copy)]
struct Node {
    kind: Kind,
    start: u32,
    end: u32,
    child: u32,
    next: u32,
    len: u32,
    key: (u32, u32),
    /// Whether the key's text holds an escape (so only its unescaped form compares).
    escaped_key: bool,
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Json {
    /// Parses `text` (a whole JSON value, whitespace around it allowed). The error
    /// says what is wrong and at which byte.
    pub fn parse(text: String) -> Result<Json, String> {
        let mut p = Parser {
            bytes: text.as_bytes(),
            pos: 0,
            // About one value per eight bytes of a portal's answer.
            nodes: Vec::with_capacity(text.len() / 8 + 1),
        };
        p.value(0)?;
        p.space();
        if p.pos != p.bytes.len() {
            return Err(p.fail("text after the value"));
        }
        let nodes = p.nodes;
        Ok(Json {
            doc: Rc::new(Doc { text, nodes }),
            at: 0,
        })
    }

    /// JSON `null`.
    pub fn null() -> Json {
        Json {
            doc: Rc::new(Doc {
                text: "null".to_owned(),
                nodes: vec![Node {
                    kind: Kind::Null,
                    start: 0,
                    end: 4,
                    child: 0,
                    next: 0,
                    len: 0,
                    key: (0, 0),
                    escaped_key: false,
                }],
            }),
            at: 0,
        }
    }

    fn node(&self) -> Node {
        // Indices come from the parser, so this never misses; a miss reads as null.
        self.doc
            .nodes
            .get(self.at as usize)
            .copied()
            .unwrap_or(Node {
                kind: Kind::Null,
                start: 0,
                end: 0,
                child: 0,
                next: 0,
                len: 0,
                key: (0, 0),
                escaped_key: false,
            })
    }

    fn slice(&self, start: u32, end: u32) -> &str {
        self.doc
            .text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// The value's own JSON text.
    pub fn text(&self) -> &str {
        let n = self.node();
        self.slice(n.start, n.end)
    }

    fn with(&self, at: u32) -> Json {
        Json {
            doc: self.doc.clone(),
            at,
        }
    }

    /// The children of an array or object, in order, with their indices.
    fn children(&self) -> impl Iterator<Item = (u32, Node)> + '_ {
        let node = self.node();
        let first = match node.kind {
            Kind::Array | Kind::Object => node.child,
            _ => 0,
        };
        let nodes = &self.doc.nodes;
        std::iter::successors((first != 0).then_some(first), move |&i| {
            let next = nodes.get(i as usize).map_or(0, |n| n.next);
            (next != 0).then_some(next)
        })
        .filter_map(move |i| nodes.get(i as usize).map(|n| (i, *n)))
    }
}

/// Unescapes a JSON string literal's text (quotes included); lone surrogates become
/// U+FFFD, as they do when JS hands such a string to wasm.
fn unescape(raw: &str) -> String {
    unescaped(raw).0
}

/// [`unescape`], and whether the text held a lone surrogate.
fn unescaped(raw: &str) -> (String, bool) {
    let inner = raw
        .strip_prefix("\"")
        .and_then(|r| r.strip_suffix("\""))
        .unwrap_or(raw);
    if text::find_byte(inner, b'\\').is_none() {
        return (inner.to_owned(), false);
    }
    let mut lone = false;
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    // Escapes are ASCII: the text between them is copied as it is.
    while let Some((plain, escape)) = text::split_once_byte(rest, b'\\') {
        out.push_str(plain);
        let (e, used) = match escape.as_bytes() {
            [] => {
                // A backslash at the end stands for nothing.
                rest = escape;
                break;
            }
            [b'n', ..] => ("\n", 1),
            [b't', ..] => ("\t", 1),
            [b'r', ..] => ("\r", 1),
            [b'b', ..] => ("\u{8}", 1),
            [b'f', ..] => ("\u{c}", 1),
            [b'u', ..] => {
                let (hi, mut next) = hex4(escape.get(1..).unwrap_or_default());
                let hi = hi.unwrap_or(0xFFFD);
                let code = if (0xD800..0xDC00).contains(&hi) {
                    match next.strip_prefix("\\u").map(hex4) {
                        Some((Some(lo), after_lo)) if (0xDC00..0xE000).contains(&lo) => {
                            next = after_lo;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        _ => {
                            lone = true;
                            0xFFFD
                        }
                    }
                } else if (0xDC00..0xE000).contains(&hi) {
                    lone = true;
                    0xFFFD
                } else {
                    hi
                };
                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                rest = next;
                continue;
            }
            // Any other character stands for itself (`\"`, `\\`, `\/`).
            [lead, ..] => {
                let n = text::char_len(*lead);
                (escape.get(..n).unwrap_or_default(), n)
            }
        };
        out.push_str(e);
        rest = escape.get(used..).unwrap_or_default();
    }
    out.push_str(rest);
    (out, lone)
}

/// The value of the four hex digits `s` starts with, and the text after them. When
/// there are not four, `None` and the text after the first character that is not a
/// hex digit (the end, when they run out).
fn hex4(s: &str) -> (Option<u32>, &str) {
    let mut v = 0;
    let mut rest = s;
    for _ in 0..4 {
        let Some(b) = rest.bytes().next() else {
            return (None, rest);
        };
        rest = rest.get(text::char_len(b)..).unwrap_or_default();
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return (None, rest),
        };
        v = v * 16 + u32::from(d);
    }
    (Some(v), rest)
}

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters
/// escaped, everything else as is (JSON text is UTF-8).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // What is escaped is ASCII: the text between is copied as it is.
    while let Some(i) = rest
        .bytes()
        .position(|b| b < 0x20 || b == b'"' || b == b'\\')
    {
        out.push_str(rest.get(..i).unwrap_or_default());
        let b = rest.as_bytes().get(i).copied().unwrap_or_default();
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                out.push_str(if b < 0x10 { "\\u000" } else { "\\u001" });
                let d = usize::from(b & 15);
                out.push_str("0123456789abcdef".get(d..d + 1).unwrap_or_default());
            }
        }
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out.push('"');
}

/// A number's value from its JSON text (already checked to be a JSON number).
///
/// The nearest double, as `JSON.parse` reads it, whenever the digits (up to 2^53) and
/// the power of ten are both exact doubles: every id, count and timing a portal
/// sends. Longer or far-off literals are within an ulp or two, and a finite literal
/// never reads as infinite. (The standard library's exact reader would add 10 KB of
/// tables to the module for digits nobody sends.)
fn number(text: &str) -> f64 {
    let (neg, t) = match text.strip_prefix("-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = text::split_once_any(t, b"eE").unwrap_or((t, "0"));
    let exp = text::trim_start_byte(exp, b'+');
    let (exp_neg, exp) = match exp.strip_prefix("-") {
        Some(rest) => (true, rest),
        None => (false, exp),
    };
    // Far-off exponents saturate (the digits cannot bring them back in range).
    let exp = exp
        .bytes()
        .fold(0i32, |e, b| (e * 10 + i32::from(b - b'0')).min(100_000));
    let (int, frac) = text::split_once_byte(mantissa, b'.').unwrap_or((mantissa, ""));
    let frac = text::trim_end_byte(frac, b'0');
    let mut digits: u64 = 0;
    let mut count = 0;
    let mut scale = if exp_neg { -exp } else { exp } - frac.len() as i32;
    for b in int.bytes().chain(frac.bytes()) {
        if count < 19 {
            digits = digits * 10 + u64::from(b - b'0');
            if digits != 0 {
                count += 1;
            }
        } else {
            scale += 1;
        }
    }
    let ten = |n: i32| 10f64.powi(n);
    let v = if digits == 0 {
        0.0
    } else if digits <= 1 << 53 && (-22..=22).contains(&scale) {
        // Both exact: one correctly rounded operation.
        if scale < 0 {
            digits as f64 / ten(-scale)
        } else {
            digits as f64 * ten(scale)
        }
    } else {
        // In two steps, so that neither power overflows or underflows on its own.
        let half = scale / 2;
        let v = digits as f64 * ten(half) * ten(scale - half);
        if v.is_infinite() && scale + count <= 309 {
            f64::MAX
        } else {
            v
        }
    };
    if neg {
        -v
    } else {
        v
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> String {
        let mut out = String::with_capacity(what.len() + 16);
        out.push_str(what);
        out.push_str(" at byte ");
        crate::text::push_decimal(&mut out, self.pos as u64);
        out
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.fail("not JSON"))
        }
    }

    /// Reads a string; whether it holds an escape.
    fn string(&mut self) -> Result<bool, String> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(self.fail("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    let hex = match self.bytes.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 0,
                        Some(b'u') => 4,
                        _ => return Err(self.fail("bad escape")),
                    };
                    self.pos += 2;
                    for _ in 0..hex {
                        if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                            return Err(self.fail("bad escape"));
                        }
                        self.pos += 1;
                    }
                }
                Some(c) if c < 0x20 => return Err(self.fail("control character in a string")),
                Some(_) => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), String> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let first = self.peek();
        match self.digits() {
            0 => return Err(self.fail("not JSON")),
            n if n > 1 && first == Some(b'0') => return Err(self.fail("bad number")),
            _ => {}
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.fail("bad number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.fail("bad number"));
            }
        }
        Ok(())
    }

    /// Parses one value into a new node; returns its index.
    fn value(&mut self, depth: u32) -> Result<u32, String> {
        self.space();
        let at = self.nodes.len() as u32;
        let start = self.pos as u32;
        self.nodes.push(Node {
            kind: Kind::Null,
            start,
            end: start,
            child: 0,
            next: 0,
            len: 0,
            key: (0, 0),
            escaped_key: false,
        });
        let kind = match self.peek() {
            Some(b'n') => self.literal(b"null").map(|_| Kind::Null)?,
            Some(b't') => self.literal(b"true").map(|_| Kind::True)?,
            Some(b'f') => self.literal(b"false").map(|_| Kind::False)?,
            Some(b'"') => self.string().map(|_| Kind::String)?,
            Some(b'[' | b'{') if depth >= MAX_DEPTH => {
                return Err([
                    "nested deeper than ",
                    &crate::text::decimal(u64::from(MAX_DEPTH)),
                    " levels",
                ]
                .concat())
            }
            Some(b'[') => self.list(at, depth, false)?,
            Some(b'{') => self.list(at, depth, true)?,
            _ => self.number().map(|_| Kind::Number)?,
        };
        let end = self.pos as u32;
        if let Some(n) = self.nodes.get_mut(at as usize) {
            n.kind = kind;
            n.end = end;
        }
        Ok(at)
    }

    /// An array's elements or an object's members, linked under node `at`.
    fn list(&mut self, at: u32, depth: u32, object: bool) -> Result<Kind, String> {
        let close = if object { b'}' } else { b']' };
        self.pos += 1;
        self.space();
        let mut last = 0u32;
        let mut len = 0u32;
        if self.peek() == Some(close) {
            self.pos += 1;
        } else {
            loop {
                let mut key = (0, 0);
                let mut escaped_key = false;
                if object {
                    self.space();
                    if self.peek() != Some(b'"') {
                        return Err(self.fail("expected a key"));
                    }
                    let k = self.pos as u32;
                    escaped_key = self.string()?;
                    key = (k, self.pos as u32);
                    self.space();
                    if self.peek() != Some(b':') {
                        return Err(self.fail("expected ':'"));
                    }
                    self.pos += 1;
                }
                let child = self.value(depth + 1)?;
                if let Some(n) = self.nodes.get_mut(child as usize) {
                    n.key = key;
                    n.escaped_key = escaped_key;
                }
                let link = if last == 0 { at } else { last };
                if let Some(n) = self.nodes.get_mut(link as usize) {
                    if last == 0 {
                        n.child = child;
                    } else {
                        n.next = child;
                    }
                }
                last = child;
                len += 1;
                self.space();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(c) if c == close => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.fail("expected ',' or a closing bracket")),
                }
            }
        }
        if let Some(n) = self.nodes.get_mut(at as usize) {
            n.len = len;
        }
        Ok(if object { Kind::Object } else { Kind::Array })
    }
}

impl JsonView for Json {
    fn shape(&self) -> Shape {
        match self.node().kind {
            Kind::Null => Shape::Null,
            Kind::False => Shape::Bool(false),
            Kind::True => Shape::Bool(true),
            Kind::Number => Shape::Number(number(self.text())),
            Kind::String => Shape::String(unescape(self.text())),
            Kind::Array => Shape::Array(self.node().len),
            Kind::Object => Shape::Object,
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        if self.node().kind != Kind::Object {
            return None;
        }
        // The last of duplicate keys wins, as in `JSON.parse`.
        let found = self
            .children()
            .filter(|(_, n)| {
                let raw = self.slice(n.key.0, n.key.1);
                if n.escaped_key {
                    unescape(raw) == key
                } else {
                    raw.get(1..raw.len().saturating_sub(1)) == Some(key)
                }
            })
            .last()?;
        (found.1.kind != Kind::Null).then(|| self.with(found.0))
    }

    fn at(&self, index: u32) -> Option<Self> {
        if self.node().kind != Kind::Array {
            return None;
        }
        let (i, _) = self.children().nth(index as usize)?;
        Some(self.with(i))
    }

    fn keys(&self) -> Vec<String> {
        if self.node().kind != Kind::Object {
            return Vec::new();
        }
        let mut keys: Vec<String> = Vec::new();
        for (_, n) in self.children() {
            let k = unescape(self.slice(n.key.0, n.key.1));
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    fn number_text(&self) -> Option<String> {
        (self.node().kind == Kind::Number).then(|| self.text().to_owned())
    }

    fn lone_surrogate(&self) -> bool {
        self.node().kind == Kind::String && unescaped(self.text()).1
    }
}

#[cfg(any(test, not(target_arch = "wasm32")))]
impl JsonView for serde_json::Value {
    fn shape(&self) -> Shape {
        use serde_json::Value;
        match self {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Shape::Other, Shape::Number),
            Value::String(s) => Shape::String(s.clone()),
            Value::Array(a) => Shape::Array(u32::try_from(a.len()).unwrap_or(u32::MAX)),
            Value::Object(_) => Shape::Object,
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        self.as_object()?.get(key).cloned()
    }

    fn at(&self, index: u32) -> Option<Self> {
        self.as_array()?.get(usize::try_from(index).ok()?).cloned()
    }

    fn keys(&self) -> Vec<String> {
        self.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn number_text(&self) -> Option<String> {
        self.as_number().map(|n| n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`unescaped`] as it was written over `char`s, before the byte-level one.
    fn reference_unescaped(raw: &str) -> (String, bool) {
        let inner = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        if !inner.contains('\\') {
            return (inner.to_owned(), false);
        }
        let mut lone = false;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        let hex4 = |chars: &mut std::str::Chars<'_>| -> Option<u32> {
            let mut v = 0;
            for _ in 0..4 {
                v = v * 16 + chars.next()?.to_digit(16)?;
            }
            Some(v)
        };
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some('u') => {
                    let hi = hex4(&mut chars).unwrap_or(0xFFFD);
                    let code = if (0xD800..0xDC00).contains(&hi) {
                        let mut look = chars.clone();
                        match (look.next(), look.next(), hex4(&mut look)) {
                            (Some('\\'), Some('u'), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                                chars = look;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            }
                            _ => {
                                lone = true;
                                0xFFFD
                            }
                        }
                    } else if (0xDC00..0xE000).contains(&hi) {
                        lone = true;
                        0xFFFD
                    } else {
                        hi
                    };
                    char::from_u32(code).unwrap_or('\u{FFFD}')
                }
                Some(other) => other,
                None => break,
            };
            out.push(e);
        }
        (out, lone)
    }

    /// [`write_str`] as it was written over `char`s, before the byte-level one.
    fn reference_write_str(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => {
                    out.push_str("\\u00");
                    let n = u32::from(c);
                    out.extend(char::from_digit(n >> 4, 16));
                    out.extend(char::from_digit(n & 15, 16));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    #[test]
    fn unescaping_and_writing_agree_with_the_char_versions() {
        let raws = [
            r#""""#,
            r#""plain""#,
            r#""a\"b\\c\/d""#,
            r#""\n\t\r\b\f""#,
            r#""\u0041\u00e9\u65E5\u0000""#,
            r#""\ud83d\ude00 ok""#,
            r#""\uD83D\uDE00\uD83D""#,
            r#""lone \ud800 x""#,
            r#""lone \udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800\\u""#,
            r#""\ud800\udc0""#,
            r#""short \u12""#,
            r#""bad \u12x4 after""#,
            r#""bad \u1é34 after""#,
            r#""bad \u😀 after""#,
            r#""\é and \😀""#,
            r#""trailing \""#,
            "\"trailing \\",
            "no quotes \\n",
            r#""мир \u043c\u0438\u0440""#,
            r#""\\\\""#,
        ];
        for raw in raws {
            assert_eq!(unescaped(raw), reference_unescaped(raw), "{raw}");
        }
        let texts = [
            "",
            "plain",
            "\"quoted\" \\ back",
            "\n\r\t\u{8}\u{c}\0\u{1}\u{1f}\u{7f}\u{80}",
            "мир 😀 日本",
            "\u{2028}\u{2029}",
        ];
        for t in texts.iter().copied().chain(raws) {
            let (mut ours, mut std) = (String::from("x"), String::from("x"));
            write_str(&mut ours, t);
            reference_write_str(&mut std, t);
            assert_eq!(ours, std, "{t:?}");
        }
        for c in (0..0x80u8).map(char::from) {
            let t = ["a", &c.to_string(), "é"].concat();
            let (mut ours, mut std) = (String::new(), String::new());
            write_str(&mut ours, &t);
            reference_write_str(&mut std, &t);
            assert_eq!(ours, std, "{t:?}");
        }
    }

    /// Everything a view shows of `v`, recursively, in one comparable form.
    fn seen<J: JsonView>(v: &J) -> serde_json::Value {
        use serde_json::Value;
        match v.shape() {
            Shape::Null => Value::Null,
            Shape::Bool(b) => Value::Bool(b),
            Shape::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9e15 {
                    Value::from(n as i64)
                } else {
                    Value::String(format!("{n:e}"))
                }
            }
            Shape::String(s) => Value::String(s),
            Shape::Array(len) => Value::Array(
                (0..len)
                    .map(|i| v.at(i).map_or(Value::Null, |x| seen(&x)))
                    .collect(),
            ),
            Shape::Object => Value::Object(
                v.keys()
                    .into_iter()
                    .map(|k| {
                        let x = v.get(&k).map_or(Value::Null, |x| seen(&x));
                        (k, x)
                    })
                    .collect(),
            ),
            Shape::Other => Value::String("other".into()),
        }
    }

    fn parsed(text: &str) -> Json {
        Json::parse(text.to_owned()).expect("valid JSON")
    }

    #[test]
    fn the_reader_sees_what_a_json_library_sees() {
        let v = serde_json::json!({
            "a": [1, "x", null, true, false, {"deep": [[[]]]}],
            "b": null,
            "c": 1.5,
            "d": -0.25e-3,
            "e": 9007199254740991u64,
            "Привет": "мир \u{1F600} \n\t\"\\ \u{0}",
            "": {},
            "n": -12
        });
        let text = serde_json::to_string(&v).expect("serializes");
        let j = parsed(&text);
        assert_eq!(seen(&j), seen(&v));
        assert_eq!(j.text(), text);
        assert_eq!(
            j.get("a")
                .and_then(|a| a.at(5))
                .map(|d| d.text().to_owned())
                .as_deref(),
            Some(r#"{"deep":[[[]]]}"#)
        );
        assert_eq!(
            j.get("e").and_then(|e| e.number_text()).as_deref(),
            Some("9007199254740991")
        );
        assert_eq!(
            j.get("b"),
            None,
            "null reads as absent, as a JS value's null does"
        );
        assert_eq!(j.get("zz"), None);
        assert_eq!(j.at(0), None, "an object has no elements");
        assert_eq!(parsed("3").get("a"), None);
        assert_eq!(
            parsed(r#"{"k":1,"k":2}"#).get("k").map(|k| k.shape()),
            Some(Shape::Number(2.0)),
            "the last duplicate wins"
        );
        assert_eq!(parsed(r#"{"k":1,"k":2}"#).keys(), vec!["k"]);
        assert_eq!(
            parsed(r#""\ud83d\ude00 \u00e9 \ud800x""#).shape(),
            Shape::String("\u{1F600} é \u{FFFD}x".into())
        );
        assert_eq!(
            parsed(r#"{"a\u0062":1}"#).get("ab").map(|v| v.shape()),
            Some(Shape::Number(1.0))
        );
        // A key compares by its value, as JSON.parse gives it, never by its escapes.
        assert_eq!(parsed(r#"{"a\u0062":1}"#).get("a\\u0062"), None);
        assert_eq!(
            parsed(r#"{"a\\b":1,"a\"b":2}"#)
                .get("a\\b")
                .map(|v| v.shape()),
            Some(Shape::Number(1.0))
        );
        assert_eq!(
            parsed(r#"{"a\\b":1,"a\"b":2}"#)
                .get("a\"b")
                .map(|v| v.shape()),
            Some(Shape::Number(2.0))
        );
        assert_eq!(parsed(" [ 1 , 2 ] ").shape(), Shape::Array(2));
        for text in [
            "0",
            "-0",
            "1e3",
            "1.5E+2",
            "2.5e-1",
            "288",
            "1773758908.1234",
            "0.12",
            "-12.5e-3",
            "9007199254740991",
            "1e22",
            "123456789012345",
            "0.000001",
        ] {
            let Shape::Number(got) = parsed(text).shape() else {
                panic!("{text}")
            };
            assert_eq!(got, text.parse::<f64>().expect("a number"), "exact: {text}");
        }
        for text in [
            "123456789012345678901",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "4.9e-324",
            "2.2250738585072014e-308",
            "1e-400",
            "0.1234567890123456789",
            "1e300",
            "12345678901234567890123456789e-10",
        ] {
            let Shape::Number(got) = parsed(text).shape() else {
                panic!("{text}")
            };
            let exact: f64 = text.parse().expect("a number");
            assert!(got.is_finite(), "{text}");
            assert!(
                (got - exact).abs() <= exact.abs() * 4.0 * f64::EPSILON || exact.abs() < 1e-300,
                "{text}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn the_reader_refuses_what_json_parse_refuses() {
        for bad in [
            "",
            " ",
            "nul",
            "tru",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "\"abc",
            "\"\\q\"",
            "\"\\u12\"",
            "\"tab\there\"",
            "{1:2}",
            "[1]]",
            "{} x",
            "NaN",
            "undefined",
        ] {
            assert!(Json::parse(bad.to_owned()).is_err(), "{bad:?} is not JSON");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad:?} (serde agrees)"
            );
        }
        let deep = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        assert!(Json::parse(deep).is_ok());
        let deeper = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
        assert!(Json::parse(deeper).is_err_and(|e| e.contains("nested deeper")));
        let hostile = "[".repeat(1_000_000);
        assert!(Json::parse(hostile).is_err(), "no stack overflow");
    }

    #[test]
    fn serde_values_are_viewed_as_json() {
        let v = serde_json::json!({"a": [1, "x"], "b": null, "c": 1.5});
        assert_eq!(v.shape(), Shape::Object);
        assert_eq!(v.keys(), vec!["a", "b", "c"]);
        assert_eq!(v.get("a").map(|a| a.shape()), Some(Shape::Array(2)));
        assert_eq!(
            v.get("a").and_then(|a| a.at(1)).map(|x| x.shape()),
            Some(Shape::String("x".into()))
        );
        assert_eq!(v.get("c").map(|c| c.shape()), Some(Shape::Number(1.5)));
        assert_eq!(v.get("b").map(|b| b.shape()), Some(Shape::Null));
        assert_eq!(v.get("zz"), None);
        assert_eq!(serde_json::json!(3).get("a"), None);
    }
}
