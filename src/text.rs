//! Substring search and replace over bytes, for the short texts the core handles (URLs,
//! error descriptions, message texts). The standard library's two-way searcher is
//! built for long haystacks and adds kilobytes to the module.
//!
//! A match of a UTF-8 needle in a UTF-8 text always starts and ends on character
//! boundaries, so the byte offsets returned here slice the text safely.
//!
//! Numbers are written out here too, digit by digit: `format!`, `to_string()` and
//! `write!` bring Rust's formatting machinery (`core::fmt`) into the module.
//!
//! The byte-level helpers below stand in for the standard library's `char` patterns
//! (`split('/')`, `trim()`, `parse::<u64>()`...), whose generic searchers add their
//! own kilobyte or two. A separator byte they take is ASCII: an ASCII byte in UTF-8
//! is always a whole character, so a text split around it stays valid. Their loops
//! go by index: in the size-tuned module, iterator adapters (`position`,
//! `take_while`, `enumerate`) come out larger than the plain loop.

/// The byte offset of the first `needle` in `haystack`.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let mut i = 0;
    while let Some(w) = h.get(i..i + n.len()) {
        if w == n {
            return Some(i);
        }
        i += 1;
    }
    None
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

/// The byte offset of the first `b` (ASCII) in `s`, as `s.find(char::from(b))`.
pub fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// The byte offset of the first of the bytes in `set` (all ASCII) in `s`, as
/// `s.find(chars)`.
pub fn find_any(s: &str, set: &[u8]) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(c) = bytes.get(i) {
        if in_set(set, *c) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The byte offset of the last `b` (ASCII) in `s`, as `s.rfind(char::from(b))`.
pub fn rfind_byte(s: &str, b: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes.get(i) == Some(&b) {
            return Some(i);
        }
    }
    None
}

/// Whether `c` is one of the bytes of `set`: a plain loop, where `<[u8]>::contains`
/// would bring the standard library's `memchr` (built for long slices).
#[allow(clippy::manual_contains)]
fn in_set(set: &[u8], c: u8) -> bool {
    set.iter().any(|s| *s == c)
}

/// Whether `s` holds any of the bytes in `set` (all ASCII), as `s.contains(chars)`.
pub fn contains_any(s: &str, set: &[u8]) -> bool {
    find_any(s, set).is_some()
}

/// What comes before and after the ASCII byte at `i` in `s`.
fn around(s: &str, i: usize) -> Option<(&str, &str)> {
    let (head, tail) = s.split_at_checked(i)?;
    Some((head, tail.get(1..)?))
}

/// `s` split around the first `b` (ASCII), as `s.split_once(char::from(b))`.
pub fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    split_once_any(s, &[b])
}

/// `s` split around the first of the bytes in `set` (all ASCII), as
/// `s.split_once(chars)`.
pub fn split_once_any<'a>(s: &'a str, set: &[u8]) -> Option<(&'a str, &'a str)> {
    around(s, find_any(s, set)?)
}

/// `s` split around the last `b` (ASCII), as `s.rsplit_once(char::from(b))`.
pub fn rsplit_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    around(s, rfind_byte(s, b)?)
}

/// What comes before the first `b` (ASCII) in `s`, or all of `s`: as
/// `s.split(char::from(b)).next().unwrap_or_default()`.
pub fn before_byte(s: &str, b: u8) -> &str {
    split_once_byte(s, b).map_or(s, |(head, _)| head)
}

/// What comes after the last `b` (ASCII) in `s`, or all of `s`: as
/// `s.rsplit(char::from(b)).next().unwrap_or_default()`.
pub fn after_last_byte(s: &str, b: u8) -> &str {
    rsplit_once_byte(s, b).map_or(s, |(_, tail)| tail)
}

/// The pieces of `s` between the `b`s (ASCII), as
/// `s.split(char::from(b)).collect::<Vec<_>>()`: an empty text is one empty piece.
pub fn split_byte(s: &str, b: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some((head, tail)) = split_once_byte(rest, b) {
        parts.push(head);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// How many leading bytes of `s` are in `set` (all ASCII).
fn leading_in(s: &[u8], set: &[u8]) -> usize {
    let mut n = 0;
    while s.get(n).is_some_and(|c| in_set(set, *c)) {
        n += 1;
    }
    n
}

/// How many trailing bytes of `s` are in `set` (all ASCII).
fn trailing_in(s: &[u8], set: &[u8]) -> usize {
    let mut end = s.len();
    while end > 0 && s.get(end - 1).is_some_and(|c| in_set(set, *c)) {
        end -= 1;
    }
    s.len() - end
}

/// `s` without the bytes of `set` (all ASCII) at either end, as `s.trim_matches(chars)`.
pub fn trim_set<'a>(s: &'a str, set: &[u8]) -> &'a str {
    let start = leading_in(s.as_bytes(), set);
    let rest = s.get(start..).unwrap_or_default();
    let end = rest.len() - trailing_in(rest.as_bytes(), set);
    rest.get(..end).unwrap_or_default()
}

/// `s` without the `b`s (ASCII) it starts with, as `s.trim_start_matches(char::from(b))`.
pub fn trim_start_byte(s: &str, b: u8) -> &str {
    s.get(leading_in(s.as_bytes(), &[b])..).unwrap_or_default()
}

/// `s` without the `b`s (ASCII) it ends with, as `s.trim_end_matches(char::from(b))`.
pub fn trim_end_byte(s: &str, b: u8) -> &str {
    s.get(..s.len() - trailing_in(s.as_bytes(), &[b]))
        .unwrap_or_default()
}

/// Whether `c`, the bytes of one character, is whitespace (`char::is_whitespace`:
/// Unicode's White_Space).
fn is_space(c: &str) -> bool {
    matches!(
        c.as_bytes(),
        [b'\t'..=b'\r' | b' ']
            | [0xC2, 0x85 | 0xA0]
            | [0xE1, 0x9A, 0x80]
            | [0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF]
            | [0xE2, 0x81, 0x9F]
            | [0xE3, 0x80, 0x80]
    )
}

/// `s` without leading and trailing whitespace, exactly as `s.trim()`: Unicode's
/// White_Space (NBSP, U+2028, the ideographic space...) as well as ASCII's.
pub fn trim(s: &str) -> &str {
    let mut t = s;
    // The first character, while it is whitespace.
    while let Some((_, rest)) = t
        .split_at_checked(t.as_bytes().first().map_or(0, |b| char_len(*b)))
        .filter(|(c, _)| is_space(c))
    {
        t = rest;
    }
    // The last character (back to its first byte; 0 always is one), while it is
    // whitespace.
    loop {
        let mut last = t.len().saturating_sub(1);
        while !t.is_char_boundary(last) {
            last -= 1;
        }
        match t.split_at_checked(last) {
            Some((rest, c)) if is_space(c) => t = rest,
            _ => return t,
        }
    }
}

/// Whether `s` holds a control character (`char::is_control`: U+0000 to U+001F and
/// U+007F to U+009F), as `s.contains(char::is_control)`.
pub fn contains_control(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c < 0x20 || c == 0x7F || (c == 0xC2 && b.get(i + 1).is_some_and(|n| *n < 0xA0))
    })
}

/// Whether `b` starts a character in UTF-8 (is not a continuation byte).
fn starts_char(b: u8) -> bool {
    (b as i8) >= -0x40
}

/// The length in UTF-8 of the character whose first byte is `lead`.
pub fn char_len(lead: u8) -> usize {
    match lead {
        0..0x80 => 1,
        0x80..0xE0 => 2,
        0xE0..0xF0 => 3,
        _ => 4,
    }
}

/// How many characters `s` has, as `s.chars().count()`.
pub fn char_count(s: &str) -> usize {
    let mut count = 0;
    for b in s.as_bytes() {
        count += usize::from(starts_char(*b));
    }
    count
}

/// The first `n` characters of `s` (all of it when shorter), as the text of
/// `s.chars().take(n)`.
pub fn char_prefix(s: &str, n: usize) -> &str {
    let bytes = s.as_bytes();
    let (mut end, mut chars) = (0, 0);
    // Up to the start of character `n`, or the end.
    while let Some(b) = bytes.get(end) {
        if starts_char(*b) {
            if chars == n {
                break;
            }
            chars += 1;
        }
        end += 1;
    }
    s.get(..end).unwrap_or(s)
}

/// The number that `s` spells in decimal digits, exactly as `s.parse::<u64>().ok()`:
/// an optional `+`, then one digit or more (no spaces, no other digits), in range.
pub fn parse_u64(s: &str) -> Option<u64> {
    let digits = match s.as_bytes() {
        [b'+', rest @ ..] => rest,
        all => all,
    };
    if digits.is_empty() {
        return None;
    }
    let (mut n, mut i): (u64, usize) = (0, 0);
    while let Some(b) = digits.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
        i += 1;
    }
    Some(n)
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

    /// Texts for the byte helpers: ASCII, Cyrillic, CJK and emoji, separators at the
    /// ends, doubled and missing.
    const TEXTS: [&str; 16] = [
        "",
        "/",
        "//",
        "a",
        "a/b",
        "/a/b/",
        "https://p.example/rest/1/s//",
        "Привет/мир",
        "мир/",
        "/мир",
        "日本.語..",
        "😀;x;😀",
        ".127.0.0.1",
        "+-e.E0",
        "a|b|c|d",
        "\u{a0}/\u{2028}",
    ];

    #[test]
    fn byte_searches_agree_with_the_standard_library() {
        for t in TEXTS {
            for b in [b'/', b'.', b';', b'|', b'e', b'x', b'\0'] {
                let c = char::from(b);
                assert_eq!(find_byte(t, b), t.find(c), "{t} / {c}");
                assert_eq!(rfind_byte(t, b), t.rfind(c), "{t} / {c}");
                assert_eq!(split_once_byte(t, b), t.split_once(c), "{t} / {c}");
                assert_eq!(rsplit_once_byte(t, b), t.rsplit_once(c), "{t} / {c}");
                assert_eq!(before_byte(t, b), t.split(c).next().unwrap_or_default());
                assert_eq!(
                    after_last_byte(t, b),
                    t.rsplit(c).next().unwrap_or_default()
                );
                let std: Vec<&str> = t.split(c).collect();
                assert_eq!(split_byte(t, b), std, "{t} / {c}");
                assert_eq!(trim_start_byte(t, b), t.trim_start_matches(c), "{t} / {c}");
                assert_eq!(trim_end_byte(t, b), t.trim_end_matches(c), "{t} / {c}");
            }
            for set in [&b"?# "[..], b"/", b"./", b"", b"+-e"] {
                let chars: Vec<char> = set.iter().map(|b| char::from(*b)).collect();
                assert_eq!(contains_any(t, set), t.contains(&chars[..]), "{t}");
                assert_eq!(split_once_any(t, set), t.split_once(&chars[..]), "{t}");
                assert_eq!(find_any(t, set), t.find(&chars[..]), "{t}");
                assert_eq!(trim_set(t, set), t.trim_matches(&chars[..]), "{t}");
            }
        }
        let php = [b' ', b'\t', b'\n', b'\r', b'\0', b'\x0b'];
        let php_chars = [' ', '\t', '\n', '\r', '\0', '\x0b'];
        for t in [
            "",
            " ",
            "\0 x\x0b",
            "\t\r\n",
            " мир\u{a0}",
            "\x0c a \x0c",
            "x y",
        ] {
            assert_eq!(trim_set(t, &php), t.trim_matches(php_chars), "{t:?}");
        }
    }

    #[test]
    fn whitespace_and_control_agree_with_char_on_every_character() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let one = c.to_string();
            let wrapped = ["x", &one, &one, "y"].concat();
            let around = [one.as_str(), "é", &one].concat();
            assert_eq!(trim(&one), one.trim(), "{:x}", u32::from(c));
            assert_eq!(trim(&wrapped), wrapped.trim(), "{:x}", u32::from(c));
            assert_eq!(trim(&around), around.trim(), "{:x}", u32::from(c));
            assert_eq!(
                contains_control(&wrapped),
                wrapped.contains(char::is_control)
            );
        }
        for t in [
            "",
            " ",
            "\u{3000}\u{a0} a b \u{85}\u{2029}",
            " \x0b\x0c\x1c",
            "мир ",
        ] {
            assert_eq!(trim(t), t.trim(), "{t:?}");
            assert_eq!(contains_control(t), t.contains(char::is_control), "{t:?}");
        }
    }

    #[test]
    fn char_lengths_agree_with_len_utf8() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            assert_eq!(char_len(bytes[0]), c.len_utf8(), "{:x}", u32::from(c));
        }
    }

    #[test]
    fn char_counts_and_prefixes_agree_with_chars() {
        for t in TEXTS
            .into_iter()
            .chain(["é", "😀😀", "aé日😀", "\u{10FFFF}x"])
        {
            assert_eq!(char_count(t), t.chars().count(), "{t}");
            for n in 0..8 {
                let std: String = t.chars().take(n).collect();
                assert_eq!(char_prefix(t, n), std, "{t} / {n}");
            }
        }
    }

    #[test]
    fn parse_u64_agrees_with_the_standard_library() {
        let texts = [
            "",
            "+",
            "-",
            "-0",
            "+0",
            "++1",
            "+-1",
            "0",
            "007",
            "42",
            " 42",
            "42 ",
            "4 2",
            "1e3",
            "0x10",
            "١٢",
            "4٢",
            "９",
            "18446744073709551615",
            "+18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "000000000000000000000000018446744073709551615",
            "184467440737095516150",
        ];
        for t in texts {
            assert_eq!(parse_u64(t), t.parse::<u64>().ok(), "{t:?}");
        }
        for n in [0, 1, 9, 10, 255, 256, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(parse_u64(&decimal(n)), Some(n));
        }
    }
}
