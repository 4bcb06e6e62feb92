//! A message's text on the portal: what the messenger stores for what was sent, and
//! whether a text that `im.dialog.messages.get` returned is a given stored message.
//!
//! A current portal does not return the stored text: it passes it through the
//! messenger's text parser, which wraps bare links in `[URL]…[/URL]` (or
//! `[URL=target]label[/URL]`), normalises existing `[url]` tags, turns NBSP into a
//! space, `(C)` into `(c)`, decodes some HTML entities, drops `<nomodify>` tags, gives a
//! mention `[USER=N][/USER]` the user's name and trims the result. Older portals return
//! the stored text.
//!
//! Rather than predict the parser's every choice (where a link ends, which target it
//! writes), [`canonical`] maps a text to a form that each of those steps leaves as it
//! is: link tags are dropped with their targets (the label is the text that was sent),
//! entities are decoded until none is left, NBSP, line-break codes, signs, mentions and
//! the surrounding whitespace are normalised. A stored text and the parser's output for
//! it have the same canonical form, so [`recognises`] finds a message on both kinds of
//! portal, whatever the link boundaries.
//!
//! What it cannot recognise: a `[cut]` spoiler (shown as HTML with a caption in the
//! portal's language), and the mention of a user who does not exist (the portal stores
//! only its inner text). The price of the canonical form: two texts that differ only in
//! what it normalises (`&amp;` and `&`, a link tag and its label) count as the same.

use crate::text;

/// The messenger's length limit: longer texts are cut to this many characters and
/// ` (...)`.
pub const MESSAGE_LIMIT: usize = 20_000;

/// The characters PHP's `trim` removes.
const TRIMMED: &[u8] = b" \t\n\r\0\x0b";

/// What the messenger stores for a message text: `[BR]`, `[br]` and `#BR#` become line
/// breaks, surrounding whitespace is trimmed (PHP's `trim`: not NBSP), and a text
/// longer than 20,006 characters is cut to 20,000 followed by ` (...)`. Every
/// `[DISK=N]` code is removed, and if there was one, the same steps again.
pub fn stored(raw: &str) -> String {
    let text = set_message(raw);
    if find_ci(&text, "[disk=").is_none() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = find_ci(rest, "[disk=") {
        let tail = rest.get(at + 6..).unwrap_or_default();
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let code = digits > 0 && tail.get(digits..).is_some_and(|t| t.starts_with("]"));
        // A code is dropped; anything else that starts like one is kept.
        let (kept, used) = if code {
            (at, at + 7 + digits)
        } else {
            (at + 1, at + 1)
        };
        out.push_str(rest.get(..kept).unwrap_or_default());
        rest = rest.get(used..).unwrap_or_default();
    }
    out.push_str(rest);
    set_message(&out)
}

/// Whether the messenger cuts this text (more than 20,006 characters once its
/// line-break codes are replaced and it is trimmed).
pub fn is_cut(raw: &str) -> bool {
    text::char_count(raw) > MESSAGE_LIMIT + 6
        && text::char_count(&breaks_trimmed(raw)) > MESSAGE_LIMIT + 6
}

/// Line-break codes replaced, and trimmed.
fn breaks_trimmed(raw: &str) -> String {
    let text = ["[BR]", "[br]", "#BR#"]
        .iter()
        .fold(raw.to_owned(), |t, tag| text::replace(&t, tag, "\n"));
    text::trim_set(&text, TRIMMED).to_owned()
}

/// Line-break codes, trim and the length cut.
fn set_message(raw: &str) -> String {
    let text = breaks_trimmed(raw);
    if text::char_count(&text) > MESSAGE_LIMIT + 6 {
        let mut cut = text::char_prefix(&text, MESSAGE_LIMIT).to_owned();
        cut.push_str(" (...)");
        cut
    } else {
        text
    }
}

/// Whether `shown`, a message's text as `im.dialog.messages.get` returned it, is the
/// message whose stored text is `stored` ([`stored`]), as an older portal returns it or
/// as a current portal's parser shows it. `canonical_stored` is
/// `canonical(stored)`, computed once per message.
pub fn recognises(stored: &str, canonical_stored: &str, shown: &str) -> bool {
    stored == shown || canonical(shown) == canonical_stored
}

/// The HTML entities the parser decodes (`&nbsp;` to a plain space), and the sign
/// entities `&#169;`, `&#153;` and `&#174;` (decoded to `(c)`, `(tm)`, `(r)` here so that
/// a portal that decodes them and one that does not give the same form).
const ENTITIES: [(&str, &str); 15] = [
    ("&nbsp;", " "),
    ("&quot;", "\""),
    ("&#092;", "\\"),
    ("&#036;", "$"),
    ("&#33;", "!"),
    ("&#91;", "["),
    ("&#93;", "]"),
    ("&#39;", "'"),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&#124;", "|"),
    ("&#169;", "(c)"),
    ("&#153;", "(tm)"),
    ("&#174;", "(r)"),
    ("&amp;", "&"),
];

/// A text's canonical form, the same for a stored text and for what the parser makes
/// of it: entities decoded until none is left, line-break codes and `<br />` as line
/// feeds, NBSP as a space, `<nomodify>` tags dropped, link tags dropped (their labels
/// kept), mentions without their names, `(C)`, `(TM)` and `(R)` in lower case, and the
/// surrounding whitespace trimmed.
pub fn canonical(t: &str) -> String {
    // Tags first: a link's end may split an entity (`…&#39[/URL];`).
    let mut t = tags(&text::replace(t, "\u{a0}", " "));
    // Each pass shortens the text, so this ends.
    while text::find_byte(&t, b'&').is_some() {
        let next = ENTITIES
            .iter()
            .fold(t.clone(), |s, (e, c)| text::replace(&s, e, c));
        if next == t {
            break;
        }
        t = next;
    }
    for (code, with) in [
        ("<br />", "\n"),
        ("[BR]", "\n"),
        ("[br]", "\n"),
        ("#BR#", "\n"),
        ("<nomodify>", ""),
        ("</nomodify>", ""),
    ] {
        if text::contains(&t, code) {
            t = text::replace(&t, code, with);
        }
    }
    let t = tags(&t);
    text::trim_set(&t, TRIMMED).to_owned()
}

/// `t` without link tags (`[URL]`, `[URL=…]`, `[/URL]` in any case), with mentions
/// as `[USER=N][/USER]` (a name the portal added dropped) and the signs in lower case.
fn tags(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.bytes().position(|b| b == b'[' || b == b'(') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let tail = rest.get(i..).unwrap_or_default();
        let used = if starts_with_ci(tail, "[url]") {
            5
        } else if starts_with_ci(tail, "[/url]") {
            6
        } else if starts_with_ci(tail, "[url=") {
            let end = target_end(tail);
            let label = tail.get(end..).unwrap_or_default();
            // An empty label (or PHP's falsy "0") shows the target.
            match ["[/url]", "0[/url]"]
                .into_iter()
                .find(|e| starts_with_ci(label, e))
            {
                Some(empty) => {
                    let target = text::trim(tail.get(5..end - 1).unwrap_or_default());
                    if !text::contains(target, "://") {
                        out.push_str("http://");
                    }
                    out.push_str(target);
                    end + empty.len()
                }
                None => end,
            }
        } else if let Some(n) = mention(tail) {
            out.push_str("[USER=");
            out.push_str(tail.get(6..n.0).unwrap_or_default());
            out.push_str("][/USER]");
            n.1
        } else if let Some(sign) = ["(c)", "(tm)", "(r)"]
            .into_iter()
            .find(|s| starts_with_ci(tail, s))
        {
            out.push_str(sign);
            sign.len()
        } else {
            out.push_str(tail.get(..1).unwrap_or_default());
            1
        };
        rest = tail.get(used..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The length of a `[url=target]` opening tag at the start of `t` (brackets in the
/// target balanced), or 1 when it does not close.
fn target_end(t: &str) -> usize {
    let mut depth = 0u32;
    for (i, b) in t.bytes().enumerate().skip(5) {
        match b {
            b'[' => depth += 1,
            b']' if depth == 0 => return i + 1,
            b']' => depth -= 1,
            _ => {}
        }
    }
    1
}

/// A mention whose name the portal filled in, `[USER=N REPLACE]name[/USER]`, or an
/// empty one, `[USER=N][/USER]`, at the start of `t`: the length of `[USER=N` and of the
/// whole tag.
fn mention(t: &str) -> Option<(usize, usize)> {
    if !starts_with_ci(t, "[user=") {
        return None;
    }
    let digits = t.get(6..)?.bytes().take_while(u8::is_ascii_digit).count();
    let head = 6 + digits;
    let after = t.get(head..)?;
    let body = if let Some(b) = after.strip_prefix(" REPLACE]") {
        b
    } else {
        after.strip_prefix("]")?
    };
    let end = find_ci(body, "[/user]")?;
    let name = body.get(..end)?;
    if digits == 0
        || text::find_byte(name, b'[').is_some()
        || (!name.is_empty() && !after.starts_with(" REPLACE"))
    {
        return None;
    }
    Some((head, t.len() - body.len() + end + 7))
}

/// Whether `s` starts with `prefix`, ASCII letters in any case.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The byte offset of the first `needle` (ASCII) in `s`, in any case.
fn find_ci(s: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    s.as_bytes()
        .windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(sent: &str, shown: &str) -> bool {
        let s = stored(sent);
        recognises(&s, &canonical(&s), shown)
    }

    #[test]
    fn stored_texts_follow_the_messenger() {
        assert_eq!(stored("  a[BR]b#BR#c[br]d \n"), "a\nb\nc\nd");
        assert_eq!(stored("a[Br]b"), "a[Br]b");
        assert_eq!(stored("\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
        assert_eq!(stored(" [DISK=5] see[disk=12][BR]"), "see");
        assert_eq!(stored("[DISK=] [disk=x]"), "[DISK=] [disk=x]");
        let cut = stored(&"x".repeat(20_010));
        assert!(cut.ends_with(" (...)"));
        assert_eq!(cut.chars().count(), 20_006);
        assert_eq!(stored(&"y".repeat(20_006)).chars().count(), 20_006);
    }

    #[test]
    fn the_fact_sheet_examples_are_recognised_as_a_current_portal_shows_them() {
        for (sent, returned) in [
            ("https://example.com", "[URL]https://example.com[/URL]"),
            (
                "See https://example.com/page for details",
                "See [URL]https://example.com/page[/URL] for details",
            ),
            (
                "Visit https://example.com.",
                "Visit [URL]https://example.com[/URL].",
            ),
            (
                "www.example.com",
                "[URL=http://www.example.com]www.example.com[/URL]",
            ),
            (
                "https://example.com/a[1]",
                "[URL=https://example.com/a%5B1%5D]https://example.com/a[1][/URL]",
            ),
            ("(https://example.com)", "([URL]https://example.com[/URL])"),
            ("Tom &amp; Jerry", "Tom & Jerry"),
            ("(C) 2024 (TM)", "(c) 2024 (tm)"),
            ("a\u{a0}b", "a b"),
            ("a<br />b", "a\nb"),
            ("line1[BR]line2", "line1\nline2"),
            ("Hi 😀", "Hi 😀"),
            ("[b]bold[/b]", "[b]bold[/b]"),
            (
                "[url=example.com]x[/url]",
                "[URL=http://example.com]x[/URL]",
            ),
            (
                "[URL=https://a.b]https://a.b[/URL]",
                "[URL]https://a.b[/URL]",
            ),
            ("&#169; &amp;lt; &nbsp;x", "(c) &lt;  x"),
            (
                "Hi [USER=12][/USER]!",
                "Hi [USER=12 REPLACE]Olga Ivanova[/USER]!",
            ),
            (
                "[CODE]https://a.b &amp;[/CODE]",
                "[CODE]https://a.b &amp;[/CODE]",
            ),
        ] {
            assert!(is(sent, returned), "{sent:?} as {returned:?}");
            assert!(is(sent, &stored(sent)), "{sent:?} as stored");
        }
    }

    #[test]
    fn other_texts_are_not_recognised() {
        for (sent, shown) in [
            ("Hello", "Hello!"),
            ("Hello", "hello"),
            ("Hi [USER=12][/USER]", "Hi [USER=13 REPLACE]Olga[/USER]"),
            ("Hi [USER=12]Olga[/USER]", "Hi [USER=12 REPLACE]Olga[/USER]"),
            ("a [cut]b[/cut]", "a <table>b</table>"),
            ("see https://a.b/1", "see [URL]https://a.b/2[/URL]"),
            ("a  b", "a b"),
        ] {
            assert!(!is(sent, shown), "{sent:?} as {shown:?}");
        }
        assert!(is("a [cut]b[/cut]", "a [cut]b[/cut]"), "an older portal");
    }
}
