//! Substring search and replace over bytes, for the short texts the core handles (URLs,
//! error descriptions, message texts). The standard library's two-way searcher is
//! built for long haystacks and adds kilobytes to the module.
//!
//! A match of a UTF-8 needle in a UTF-8 text always starts and ends on character
//! boundaries, so the byte offsets returned here slice the text safely.

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

#[cfg(test)]
mod tests {
    use super::*;

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
