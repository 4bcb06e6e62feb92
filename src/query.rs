//! PHP-style query strings: how a request body (and each command of a `batch`) reaches
//! the portal without a JSON content type.
//!
//! A body of `application/x-www-form-urlencoded` is a CORS "simple request": a browser
//! sends it without a preflight, so a call from an iframe app costs one round trip, as
//! BX24.js's calls do. The portal reads it with PHP's query parser: nested keys
//! `fields[PHONE][0][VALUE]=...`, values percent-encoded.
//!
//! Values follow BX24.js, the portal's own browser client: a string as is, a number
//! as its runtime prints it (JS `String(n)`), `true`/`false` as those words, `null` left out, an
//! empty array as `key=` (PHP then sees an empty string), an empty object left out,
//! arrays by index (`key[0]`, `key[1]`).

use crate::json::{JsonView, Shape};

/// How deep parameters may nest (PHP's own `max_input_nesting_level` is 64).
pub const MAX_DEPTH: usize = 32;

/// Appends `s` percent-encoded as `encodeURIComponent` does: letters, digits and
/// `-_.!~*'()` stay, every other byte of its UTF-8 becomes `%XX`.
pub fn component(out: &mut String, s: &str) {
    let hex = |n: u8| {
        let n = usize::from(n);
        "0123456789ABCDEF".get(n..n + 1).unwrap_or_default()
    };
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            // An ASCII byte is a whole character.
            out.push_str(s.get(i..i + 1).unwrap_or_default());
        } else {
            out.push('%');
            out.push_str(hex(b >> 4));
            out.push_str(hex(b & 15));
        }
    }
}

/// Appends `&key=value` (no `&` first), with `value` percent-encoded; `key` is already
/// encoded.
pub fn pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(key);
    out.push('=');
    component(out, value);
}

/// Appends `value` under `key` (already encoded), recursing into arrays and objects.
/// Errors name what cannot be encoded.
fn value<J: JsonView>(out: &mut String, key: &str, v: &J, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err([
            "params nest deeper than ",
            &crate::text::decimal(MAX_DEPTH as u64),
            " levels",
        ]
        .concat());
    }
    let nested = |out: &mut String, name: &str, item: &J| {
        let mut k = String::with_capacity(key.len() + name.len() + 2);
        k.push_str(key);
        k.push('[');
        component(&mut k, name);
        k.push(']');
        value(out, &k, item, depth + 1)
    };
    match v.shape() {
        Shape::Null => Ok(()),
        Shape::Bool(b) => {
            pair(out, key, if b { "true" } else { "false" });
            Ok(())
        }
        Shape::Number(n) if n.is_finite() => {
            pair(out, key, &v.number_text().unwrap_or_default());
            Ok(())
        }
        Shape::Number(_) => Err("params hold a number that is not finite".to_owned()),
        Shape::String(s) => {
            pair(out, key, &s);
            Ok(())
        }
        Shape::Array(0) => {
            pair(out, key, "");
            Ok(())
        }
        Shape::Array(n) => (0..n).try_for_each(|i| match v.at(i) {
            Some(item) => nested(out, &crate::text::decimal(u64::from(i)), &item),
            None => Ok(()),
        }),
        Shape::Object => v.keys().iter().try_for_each(|k| match v.get(k) {
            Some(item) => nested(out, k, &item),
            None => Ok(()),
        }),
        Shape::Other => Err("params hold a value that is not JSON".to_owned()),
    }
}

/// Encodes an object of parameters (`{fields: {TITLE: 'x'}, select: ['ID']}`) as a
/// query string. Anything but an object is refused.
pub fn encode<J: JsonView>(params: &J) -> Result<String, String> {
    if params.shape() != Shape::Object {
        return Err("params must be an object".to_owned());
    }
    let mut out = String::new();
    for k in params.keys() {
        if let Some(item) = params.get(&k) {
            let mut key = String::with_capacity(k.len());
            component(&mut key, &k);
            value(&mut out, &key, &item, 1)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_lists_and_values_as_the_portal_reads_them() {
        let q = encode(&json!({
            "fields": {"TITLE": "John&Martin", "PHONE": [{"VALUE": "+7 (999) 1", "VALUE_TYPE": "WORK"}]},
            "select": ["ID", "TITLE"],
            "flag": true, "off": false, "none": null, "empty": [], "nothing": {},
            "n": 12, "x": 1.5, "text": "Привет = ?"
        }))
        .expect("encodes");
        // Keys in the view's order (sorted, for this native view; a JS object's own order).
        assert_eq!(
            q,
            "empty=&fields[PHONE][0][VALUE]=%2B7%20(999)%201&fields[PHONE][0][VALUE_TYPE]=WORK\
             &fields[TITLE]=John%26Martin&flag=true&n=12&off=false&select[0]=ID&select[1]=TITLE\
             &text=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%20%3D%20%3F&x=1.5"
        );
    }

    #[test]
    fn keys_are_encoded_and_depth_is_bounded() {
        assert_eq!(
            encode(&json!({"a b": {"c&d": 1}})).expect("ok"),
            "a%20b[c%26d]=1"
        );
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({ "k": deep });
        }
        assert!(encode(&deep).is_err());
        assert!(encode(&json!([1])).is_err());
        assert_eq!(encode(&json!({})).expect("ok"), "");
    }

    #[test]
    fn component_agrees_with_the_char_version() {
        fn reference(out: &mut String, s: &str) {
            let hex = |n: u8| char::from_digit(u32::from(n), 16).map(|c| c.to_ascii_uppercase());
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push('%');
                    out.extend(hex(b >> 4));
                    out.extend(hex(b & 15));
                }
            }
        }
        let all: String = (0..0x800)
            .filter_map(char::from_u32)
            .chain(['😀', '日'])
            .collect();
        for t in ["", "a", "-_.!~*'()", "a b&c=d", "Привет", all.as_str()] {
            let (mut ours, mut std) = (String::from("k="), String::from("k="));
            component(&mut ours, t);
            reference(&mut std, t);
            assert_eq!(ours, std, "{t}");
        }
    }
}
