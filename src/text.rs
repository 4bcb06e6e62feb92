//! Substring search and replace over bytes, for the short texts the core handles (URLs,
//! error descriptions, message texts). The standard library's two-way searcher is
//! built for long haystacks and adds kilobytes to the module.
//!
//! A match of a UTF-8 needle in a UTF-8 text always starts and ends on character
//! boundaries, so the byte offsets returned here slice the text safely.
//!
//! Numbers are written out here too, digit by digit: `format!`, `to_string()` and
//! `write!` bring Rust's formatting machinery (`core::fmt`) into the module.

/// The byte offset of the first `needle` in `haystack`.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    if n.is_empty() {
        return Some(0);
    }
    haystack.as_bytes().windows(n.len()).position(|w| w == n)
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &str, needle: &str) -> bool {
    find(haystack, needle).is_some()
}

/// `haystack` with every `needle` replaced by `with` (left to right, not overlapping).
pub fn replace(haystack: &str, needle: &str, with: &str) -> String {
    let mut out = String::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, needle).filter(|_| !needle.is_empty()) {
        out.push_str(rest.get(..i).unwrap_or_default());
        out.push_str(with);
        rest = rest.get(i + needle.len()..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// `s` split around the first `sep`.
pub fn split_once<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let i = find(s, sep)?;
    Some((s.get(..i)?, s.get(i + sep.len()..)?))
}

/// Appends the decimal digits of `n` to `out` (no sign, no separators).
pub fn push_decimal(out: &mut String, n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut rest = n;
    for slot in digits.iter_mut() {
        *slot = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.push(char::from(*d));
    }
}

/// The decimal text of `n`, as `n.to_string()` writes it.
pub fn decimal(n: u64) -> String {
    let mut out = String::with_capacity(20);
    push_decimal(&mut out, n);
    out
}

/// Appends the decimal text of a signed `n` to `out`: a `-` before a negative one.
pub fn push_signed_decimal(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_decimal(out, n.unsigned_abs());
}

/// The decimal text of a signed `n`, as `n.to_string()` writes it.
pub fn signed_decimal(n: i64) -> String {
    let mut out = String::with_capacity(21);
    push_signed_decimal(&mut out, n);
    out
}

/// `items` joined with `sep` between them, each as its decimal text.
pub fn decimal_list(items: &[u64], sep: &str) -> String {
    let mut out = String::new();
    for (i, n) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        push_decimal(&mut out, *n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_match_to_string() {
        let unsigned = [
            0,
            1,
            9,
            10,
            99,
            100,
            429,
            1000,
            8773,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ];
        for n in unsigned {
            assert_eq!(decimal(n), n.to_string());
            let mut out = String::from("x=");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x={n}"));
        }
        let signed = [
            0,
            1,
            -1,
            9,
            -9,
            10,
            -10,
            400,
            -32600,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        for n in signed {
            assert_eq!(signed_decimal(n), n.to_string());
            let mut out = String::from("x=");
            push_signed_decimal(&mut out, n);
            assert_eq!(out, format!("x={n}"));
        }
    }

    #[test]
    fn decimal_lists_match_join() {
        assert_eq!(decimal_list(&[], ", "), "");
        assert_eq!(decimal_list(&[5], ", "), "5");
        assert_eq!(decimal_list(&[5, 7, 1000], ", "), "5, 7, 1000");
    }

    #[test]
    fn agrees_with_the_standard_library() {
        let texts = [
            "",
            "a",
            "abc",
            "https://x/rest/",
            "Привет [BR] мир[BR]",
            "aaa",
            "::://",
        ];
        let needles = ["", "a", "aa", "://", "[BR]", "мир", "x", "abcd"];
        for t in texts {
            for n in needles {
                assert_eq!(find(t, n), t.find(n), "{t} / {n}");
                assert_eq!(contains(t, n), t.contains(n));
                assert_eq!(split_once(t, n), t.split_once(n), "{t} / {n}");
                if !n.is_empty() {
                    assert_eq!(replace(t, n, "***"), t.replace(n, "***"), "{t} / {n}");
                }
            }
        }
    }
}
