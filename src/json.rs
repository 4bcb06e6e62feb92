//! JSON as the core sees it: read through [`JsonView`], written with [`write_str`].
//!
//! The core never owns a parsed JSON tree. In the wasm build the view is a JS value
//! (the caller's params object, or what `JSON.parse` made of a response), read in
//! place; natively it is a `serde_json::Value`. This keeps a JSON library out of the
//! wasm binary, where it would be most of its size.

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
}

/// Appends `s` to `out` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u32;
                out.push_str("\\u00");
                out.extend(char::from_digit(b >> 4, 16));
                out.extend(char::from_digit(b & 15, 16));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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

    #[test]
    fn strings_round_trip_through_a_json_parser() {
        for s in [
            "",
            "Hello",
            "Привет, мир",
            "quote \" backslash \\ slash /",
            "lines\n\r\ttabs",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "emoji \u{1F600} and \u{2028}",
            "[B]bold[/B] & <tag>",
        ] {
            let mut out = String::new();
            write_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON");
            assert_eq!(back, s);
        }
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
