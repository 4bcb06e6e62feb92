//! A message's text as the messenger (im module) handles it: what it keeps
//! when a message is added ([`store`]) and what `im.dialog.messages.get`
//! shows for it on a current portal ([`parse`], the model of
//! `\Bitrix\Im\Text::parse`).
//!
//! The rules are those of the fact sheet, §12; where it is silent they follow
//! the im and main modules' PHP sources (im `lib/text.php`, im
//! `lib/V2/Message.php` `setMessage`, main `classes/general/textparser.php`
//! `CTextParser::convertText` as `Text::parse` configures it: only `HTML`,
//! `ANCHOR`, `TEXT_ANCHOR` and `EMOJI` allowed, anchors written as BB-code).
//! Each pass below names the PHP step it models, and keeps that step's
//! quirks: the placeholders the parser swaps in and out are the same strings
//! here, so text that happens to contain them behaves as on a real portal.
//!
//! Both functions are pure, so tests can use them as an oracle:
//!
//! ```
//! use b24_portal::text::{parse, seeded_users, store};
//!
//! let users = seeded_users();
//! let stored = store("  See https://example.com.[BR]", &users).unwrap_or_default();
//! assert_eq!(stored, "See https://example.com.");
//! assert_eq!(parse(&stored, &users), "See [URL]https://example.com[/URL].");
//! ```
//!
//! Not modelled: the localised `[cut]` caption (an English stand-in,
//! [`SPOILER_CAPTION`]); emoji codes (4-byte characters are kept as they
//! are, which is what a reader sees); link previews; Unicode case folding in
//! the case-insensitive patterns (ASCII letters only); a user's visibility
//! to the sender (every user of the portal counts as visible).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use crate::state::Directory;

/// Longest text the messenger stores: a text longer than this plus 6
/// characters is cut to this many characters followed by ` (...)`
/// (`\Bitrix\Im\V2\Message::MESSAGE_MAX_LENGTH`).
pub const MESSAGE_LIMIT: usize = 20_000;

/// Caption of a `[cut]` spoiler without a title. The server takes the
/// localised string `MAIN_TEXTPARSER_HIDDEN_TEXT`; this English wording
/// stands in for it.
pub const SPOILER_CAPTION: &str = "Hidden text";

/// Start of the placeholders `Text::parse` swaps in for `[CODE]`, `[PUT]`
/// and `[SEND]` blocks (`Text::setReplacement`).
pub const REPLACEMENT_MARK: &str = "####REPLACEMENT_MARK_";

/// The portal's users, as the text rules need them.
pub trait Users {
    /// The user's full name as the messenger writes it (`Name Last name`),
    /// or `None` when there is no such user.
    fn full_name(&self, id: i64) -> Option<String>;
}

impl Users for BTreeMap<i64, String> {
    fn full_name(&self, id: i64) -> Option<String> {
        self.get(&id).cloned()
    }
}

impl<S: BuildHasher> Users for HashMap<i64, String, S> {
    fn full_name(&self, id: i64) -> Option<String> {
        self.get(&id).cloned()
    }
}

impl Users for Directory {
    fn full_name(&self, id: i64) -> Option<String> {
        self.users.get(&id).map(crate::state::User::full_name)
    }
}

/// The full names of the users every portal starts with, by id (the
/// README's seeded users: 1 is `John Smith`, 12 `Olga Ivanova`, …).
pub fn seeded_users() -> BTreeMap<i64, String> {
    crate::seed::directory()
        .users
        .values()
        .map(|user| (user.id, user.full_name()))
        .collect()
}

/// Why the messenger fails to add a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The text holds `####REPLACEMENT_MARK_` together with a `[CODE]`,
    /// `[PUT]` or `[SEND]` block or a link: restoring the parser's
    /// placeholders recurses until PHP runs out of memory, the add call
    /// answers HTTP 500 and nothing is stored (§12).
    ReplacementMark,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReplacementMark => f.write_str(
                "the text holds ####REPLACEMENT_MARK_ with a block or a link: the parser recurses until PHP runs out of memory",
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// What the messenger stores for a sent text (§12, store side), in order:
///
/// 1. `[BR]`, `[br]` and `#BR#` become line feeds (case-sensitive);
/// 2. PHP `trim` (space, `\t`, `\n`, `\r`, `\0`, `\v`; not NBSP);
/// 3. a text longer than [`MESSAGE_LIMIT`] + 6 characters is cut to
///    [`MESSAGE_LIMIT`] characters followed by ` (...)`;
/// 4. `[USER=N]…[/USER]` (also `[USER=N REPLACE]…`) of a user who does not
///    exist becomes its inner text, repeatedly, so nested tags unwrap too;
/// 5. every `[DISK=N]` is removed, and if there was one, steps 1–3 again;
/// 6. emoji are kept losslessly (no visible change).
///
/// Steps 1–3 do nothing to an empty text or to `"0"` (PHP `if ($value)`).
/// A text the parser cannot handle is refused ([`Refused`]).
pub fn store(sent: &str, users: &dyn Users) -> Result<String, Refused> {
    let mut text = set_message(sent);
    text = filter_user_tags(&text, users);
    if has_match(&text, disk_tag_at) {
        text = set_message(&replace_each(&text, disk_tag_at, |_, ()| String::new()));
    }
    if overflows_the_parser(&text) {
        return Err(Refused::ReplacementMark);
    }
    Ok(text)
}

/// What `im.dialog.messages.get` on a current portal returns as `text` for
/// a stored text: `\Bitrix\Im\Text::parse` (§12, read side), in the
/// parser's order:
///
/// 1. `[CODE]…[/CODE]`, `[PUT…]…[/PUT]` and `[SEND…]…[/SEND]` blocks are set
///    aside (restored unchanged at the end);
/// 2. an empty `[USER=N][/USER]` becomes `[USER=N REPLACE]Full Name[/USER]`
///    (the name empty for an unknown user);
/// 3. the text parser (`CTextParser::convertText`): NBSP becomes a space;
///    `[url]` tags and bare links become `[URL]…[/URL]` or
///    `[URL=link]text[/URL]`; `<nomodify>` tags are dropped; `[cut]…[/cut]`
///    becomes an HTML spoiler table; `(C)`, `(TM)`, `(R)` in any case become
///    `(c)`, `(tm)`, `(r)`; the text is trimmed;
/// 4. exactly `<br />` (and `#BR#`, `[br]`) becomes a line feed, and
///    `&nbsp; &quot; &#092; &#036; &#33; &#91; &#93; &#39; &lt; &gt; &#124;
///    &amp;` are decoded, `&amp;` last (`&nbsp;` to a plain space);
/// 5. the blocks of step 1 are put back.
///
/// The trim of step 3 comes before step 4, so a text that starts with
/// `&nbsp;` or ends with `<br />` keeps the space or line feed it decodes to.
pub fn parse(stored: &str, users: &dyn Users) -> String {
    let mut blocks = Blocks::default();
    let text = blocks.set_aside(stored, code_block_at);
    let text = blocks.set_aside(&text, |t, pos| command_block_at(t, pos, "PUT"));
    let text = blocks.set_aside(&text, |t, pos| command_block_at(t, pos, "SEND"));
    let text = replace_each(&text, short_user_tag_at, |_, digits| {
        let name = users.full_name(php_int(&digits)).unwrap_or_default();
        format!("[USER={digits} REPLACE]{name}[/USER]")
    });
    let text = convert_text(&text);
    let text = decode_entities(&text);
    blocks.restore(text)
}

// ---------------------------------------------------------------------------
// Store side
// ---------------------------------------------------------------------------

/// `Message::setMessage`: line-break codes, `trim`, the length cut; a falsy
/// PHP string (`""`, `"0"`) is kept as it is.
fn set_message(value: &str) -> String {
    if php_empty(value) {
        return value.to_owned();
    }
    let text = value
        .replace("[BR]", "\n")
        .replace("[br]", "\n")
        .replace("#BR#", "\n");
    let text = php_trim(&text);
    if text.chars().count() > MESSAGE_LIMIT + 6 {
        let cut: String = text.chars().take(MESSAGE_LIMIT).collect();
        format!("{cut} (...)")
    } else {
        text.to_owned()
    }
}

/// `Text::filterUserBbCodes`: a user tag of a user the sender cannot see
/// (here: who does not exist) becomes its inner text, until nothing changes.
fn filter_user_tags(text: &str, users: &dyn Users) -> String {
    let mut text = text.to_owned();
    loop {
        let next = replace_each(&text, user_tag_at, |whole, tag| {
            if users.full_name(tag.id).is_some() {
                whole.to_owned()
            } else {
                tag.inner
            }
        });
        if next == text {
            return text;
        }
        text = next;
    }
}

/// A user tag `[USER=N]…[/USER]` or `[USER=N REPLACE]…[/USER]`.
struct UserTag {
    id: i64,
    inner: String,
}

/// `/\[USER=(\d+)(?: REPLACE)?](.*?)\[\/USER]/is` at `pos`.
fn user_tag_at(text: &str, pos: usize) -> Option<(usize, UserTag)> {
    let rest = text.get(pos..)?;
    if !starts_with_ci(rest, "[user=") {
        return None;
    }
    let digits_start = pos + 6;
    let digits_end = digits_start + ascii_digits(text.get(digits_start..)?);
    if digits_end == digits_start {
        return None;
    }
    let after_id = text.get(digits_end..)?;
    let inner_start = if starts_with_ci(after_id, " replace]") {
        digits_end + 9
    } else if after_id.starts_with(']') {
        digits_end + 1
    } else {
        return None;
    };
    let close = find_ci(text, "[/user]", inner_start)?;
    let tag = UserTag {
        id: php_int(text.get(digits_start..digits_end)?),
        inner: text.get(inner_start..close)?.to_owned(),
    };
    Some((close + 7, tag))
}

/// `/\[DISK\=([0-9]+)\]/i` at `pos`.
fn disk_tag_at(text: &str, pos: usize) -> Option<(usize, ())> {
    let rest = text.get(pos..)?;
    if !starts_with_ci(rest, "[disk=") {
        return None;
    }
    let digits = ascii_digits(rest.get(6..)?);
    (digits > 0 && rest.get(6 + digits..)?.starts_with(']')).then_some((pos + 6 + digits + 1, ()))
}

/// Whether adding the text makes the parser recurse without end: it holds
/// [`REPLACEMENT_MARK`] and something the messenger sets aside while adding
/// it (`Text::parse` sets aside `[CODE]`, `[PUT]`, `[SEND]` blocks;
/// `Text::getDateConverterParams`, run for the message's date map, also
/// `[URL=…]…[/URL]` tags and `http(s)://` links and never restores them).
fn overflows_the_parser(text: &str) -> bool {
    text.contains(REPLACEMENT_MARK)
        && (has_match(text, code_block_at)
            || has_match(text, |t, pos| command_block_at(t, pos, "PUT"))
            || has_match(text, |t, pos| command_block_at(t, pos, "SEND"))
            || has_match(text, date_map_url_tag_at)
            || has_match(text, http_link_at))
}

/// `/\[URL\=([^\]]*)\]([^\]]*)\[\/URL\]/i` at `pos`.
fn date_map_url_tag_at(text: &str, pos: usize) -> Option<(usize, ())> {
    if !starts_with_ci(text.get(pos..)?, "[url=") {
        return None;
    }
    let first = pos + 5 + text.get(pos + 5..)?.find(']')?;
    let second = first + 1 + text.get(first + 1..)?.find(']')?;
    let closing_start = second.checked_sub(5)?;
    (closing_start > first && starts_with_ci(text.get(closing_start..)?, "[/url]"))
        .then_some((second + 1, ()))
}

/// An `http://` or `https://` link with a host (simplified from the date
/// map's link pattern: the scheme, `://` and a letter or digit).
fn http_link_at(text: &str, pos: usize) -> Option<(usize, ())> {
    let rest = text.get(pos..)?;
    let after = if starts_with_ci(rest, "https://") {
        8
    } else if starts_with_ci(rest, "http://") {
        7
    } else {
        return None;
    };
    let host = rest.get(after..)?.chars().next()?;
    host.is_ascii_alphanumeric()
        .then_some((pos + after + 1, ()))
}

// ---------------------------------------------------------------------------
// Read side: the blocks Text::parse sets aside
// ---------------------------------------------------------------------------

/// The blocks `Text::parse` replaces by `####REPLACEMENT_MARK_n####` before
/// parsing and puts back after (`setReplacement`, `recoverReplacements`).
#[derive(Default)]
struct Blocks {
    /// Placeholder and original text, in the order they were made.
    kept: Vec<(String, String)>,
}

impl Blocks {
    /// Replaces every match of `pattern` by a new placeholder.
    fn set_aside<T>(
        &mut self,
        text: &str,
        pattern: impl FnMut(&str, usize) -> Option<(usize, T)>,
    ) -> String {
        replace_each(text, pattern, |whole, _| {
            let mark = format!("{REPLACEMENT_MARK}{}####", self.kept.len());
            self.kept.push((mark.clone(), whole.to_owned()));
            mark
        })
    }

    /// Puts the blocks back, each placeholder in the order made, again while
    /// the text still holds [`REPLACEMENT_MARK`] (a block set aside inside
    /// another). PHP repeats that without end when the mark is the text's
    /// own (see [`Refused`]); here it stops once a round changes nothing or
    /// after as many rounds as there are blocks.
    fn restore(&self, mut text: String) -> String {
        if self.kept.is_empty() {
            return text;
        }
        for _ in 0..=self.kept.len() {
            let before = text.clone();
            for (mark, original) in &self.kept {
                text = text.replace(mark.as_str(), original);
            }
            if !text.contains(REPLACEMENT_MARK) || text == before {
                break;
            }
        }
        text
    }
}

/// `/\[CODE\](.*?)\[\/CODE\]/si` at `pos`.
fn code_block_at(text: &str, pos: usize) -> Option<(usize, ())> {
    if !starts_with_ci(text.get(pos..)?, "[code]") {
        return None;
    }
    let close = find_ci(text, "[/code]", pos + 6)?;
    Some((close + 7, ()))
}

/// `/\[PUT(?:=(.+?))?\](.+?)?\[\/PUT\]/i` (and the same for `SEND`) at
/// `pos`, with the backtracking of the regular expression: `.` stops at a
/// line feed, the argument is the shortest one after which the rest
/// matches, and the body, when there is one, is tried before none.
fn command_block_at(text: &str, pos: usize, name: &str) -> Option<(usize, ())> {
    let open = format!("[{name}");
    let close = format!("[/{name}]");
    if !starts_with_ci(text.get(pos..)?, &open) {
        return None;
    }
    let after_name = pos + open.len();
    let body_start = after_name + 1;
    let closes = closing_tags_on_line(text, body_start, &close);
    let end = match text.get(after_name..)?.chars().next()? {
        '=' => {
            let mut chars = text.get(body_start..)?.char_indices();
            let (_, first) = chars.next()?;
            if first == '\n' {
                return None;
            }
            chars
                .take_while(|&(_, c)| c != '\n')
                .filter(|&(_, c)| c == ']')
                .find_map(|(offset, _)| {
                    command_body_end(text, body_start + offset + 1, &closes, close.len())
                })
        }
        ']' => command_body_end(text, body_start, &closes, close.len()),
        _ => None,
    }?;
    Some((end, ()))
}

/// Where `close` starts, from `start` up to the end of that line.
fn closing_tags_on_line(text: &str, start: usize, close: &str) -> Vec<usize> {
    let rest = text.get(start..).unwrap_or_default();
    let line_end = start + rest.find('\n').unwrap_or(rest.len());
    let mut found = Vec::new();
    let mut from = start;
    while let Some(at) = find_ci(text, close, from).filter(|&at| at < line_end) {
        found.push(at);
        from = at + 1;
    }
    found
}

/// `(.+?)?` then the closing tag, from `start` (on the line of `closes`,
/// where the closing tags start): the end of the match. A body of at least
/// one character is tried first, up to the first closing tag after it.
fn command_body_end(text: &str, start: usize, closes: &[usize], close_len: usize) -> Option<usize> {
    let first = text.get(start..).and_then(|rest| rest.chars().next());
    if let Some(first) = first.filter(|&c| c != '\n') {
        let after_first = start + first.len_utf8();
        let next = closes.partition_point(|&at| at < after_first);
        if let Some(at) = closes.get(next) {
            return Some(at + close_len);
        }
    }
    closes.binary_search(&start).ok().map(|_| start + close_len)
}

/// `/\[USER=([0-9]{1,})\]\[\/USER\]/i` at `pos`: the id's digits.
fn short_user_tag_at(text: &str, pos: usize) -> Option<(usize, String)> {
    let rest = text.get(pos..)?;
    if !starts_with_ci(rest, "[user=") {
        return None;
    }
    let digits = ascii_digits(rest.get(6..)?);
    if digits == 0 || !starts_with_ci(rest.get(6 + digits..)?, "][/user]") {
        return None;
    }
    Some((pos + 6 + digits + 8, rest.get(6..6 + digits)?.to_owned()))
}

// ---------------------------------------------------------------------------
// Read side: CTextParser::convertText as Text::parse configures it
// ---------------------------------------------------------------------------

/// Schemes of bare links (`~parser_anchor_schemes`, default value).
const SCHEMES: [&str; 11] = [
    "http", "https", "news", "ftp", "aim", "mailto", "file", "tel", "callto", "skype", "viber",
];

/// Characters after which a bare link may start (besides white space):
/// the parser's `wordSeparator`.
const WORD_SEPARATORS: &str = ".,;:!?#-*|[](){}";

/// Pairs around which a bare link runs to the closing one (even across
/// spaces), tried before the ordinary rule, each only when the text holds
/// its opening one.
const LINK_BOUNDARIES: [(&str, &str); 5] = [
    ("&lt;", "&gt;"),
    ("(", ")"),
    ("\u{201c}", "\u{201d}"),
    ("\u{2018}", "\u{2019}"),
    ("\u{ab}", "\u{bb}"),
];

/// `CTextParser::convertText` with only `HTML`, `ANCHOR`, `TEXT_ANCHOR` and
/// `EMOJI` allowed and BB-code anchors.
fn convert_text(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let text = replace_each(text, session_id_at, |_, lead| format!("{lead}PHPSESSID1="));
    let text = text.replace('\u{a0}', " ");
    let mut links = DefendedLinks::default();
    let text = links.defend_tags(&text);
    let text = links.defend_bare_links(&text);
    let text = replace_each(&text, nomodify_tag_at, |_, ()| String::new());
    let text = links.restore(text);
    // (Emoji codes are decoded here on a real portal; texts here hold none.)
    let text = convert_anchors(&text);
    let text = convert_cuts(&text);
    let text = text
        .replace("(C)", "(c)")
        .replace("(TM)", "(tm)")
        .replace("(Tm)", "(tm)")
        .replace("(tM)", "(tm)")
        .replace("(R)", "(r)");
    php_trim(&text).to_owned()
}

/// `/([?&;])PHPSESSID=([0-9a-zA-Z]{32})/i` at `pos` (replaced by
/// `$1PHPSESSID1=`): the leading character.
fn session_id_at(text: &str, pos: usize) -> Option<(usize, char)> {
    let rest = text.get(pos..)?;
    let lead = rest.chars().next()?;
    if !matches!(lead, '?' | '&' | ';') || !starts_with_ci(rest.get(1..)?, "PHPSESSID=") {
        return None;
    }
    let id = rest.get(11..43)?;
    id.bytes()
        .all(|b| b.is_ascii_alphanumeric())
        .then_some((pos + 43, lead))
}

/// `/<\/?nomodify>/iu` at `pos`.
fn nomodify_tag_at(text: &str, pos: usize) -> Option<(usize, ())> {
    let rest = text.get(pos..)?;
    if starts_with_ci(rest, "<nomodify>") {
        Some((pos + 10, ()))
    } else if starts_with_ci(rest, "</nomodify>") {
        Some((pos + 11, ()))
    } else {
        None
    }
}

/// The links the parser takes out of the text while it looks for more
/// (`pre_convert_anchor_tag`): each becomes a placeholder
/// `<\x18#n  >` and is put back by `post_convert_anchor_tag`.
#[derive(Default)]
struct DefendedLinks {
    /// Link tag and placeholder, in the order made.
    links: Vec<(String, String)>,
}

impl DefendedLinks {
    /// The placeholder of a link tag; the same tag gets the same one.
    fn defend(&mut self, tag: String) -> String {
        if let Some((_, placeholder)) = self.links.iter().find(|(t, _)| *t == tag) {
            return placeholder.clone();
        }
        let placeholder = format!("<\u{18}#{}  >", self.links.len());
        self.links.push((tag, placeholder.clone()));
        placeholder
    }

    /// Existing `[url]…[/url]` tags, then `[url=…]…[/url]` tags.
    fn defend_tags(&mut self, text: &str) -> String {
        let text = replace_each(text, plain_url_tag_at, |_, link| {
            self.defend(format!("[url]{link}[/url]"))
        });
        replace_each(&text, url_tag_at, |_, (link, label)| {
            if label.is_empty() {
                self.defend(format!("[url]{link}[/url]"))
            } else {
                self.defend(format!("[url={}]{label}[/url]", escape_brackets(&link)))
            }
        })
    }

    /// Bare links: first those between each pair of [`LINK_BOUNDARIES`],
    /// then those after a word separator.
    fn defend_bare_links(&mut self, text: &str) -> String {
        let mut text = text.to_owned();
        for (open, close) in LINK_BOUNDARIES {
            if text.contains(open) {
                text = replace_each(
                    &text,
                    |t, pos| bounded_link_at(t, pos, open, close),
                    |link, ()| self.defend_bare(link),
                );
            }
        }
        replace_each(&text, bare_link_at, |link, ()| self.defend_bare(link))
    }

    /// `preconvertUrl`: a bare link as `[url=link]link[/url]`, brackets
    /// percent-encoded in the link part.
    fn defend_bare(&mut self, link: &str) -> String {
        self.defend(format!("[url={}]{link}[/url]", escape_brackets(link)))
    }

    /// Puts the link tags back, the last placeholder first.
    fn restore(&self, text: String) -> String {
        self.links
            .iter()
            .rev()
            .fold(text, |text, (tag, placeholder)| {
                text.replace(placeholder.as_str(), tag)
            })
    }
}

fn escape_brackets(link: &str) -> String {
    link.replace('[', "%5B").replace(']', "%5D")
}

/// `/\[url\](.*?)\[\/url\]/iu` at `pos` (`.` stops at a line feed): the link.
fn plain_url_tag_at(text: &str, pos: usize) -> Option<(usize, String)> {
    if !starts_with_ci(text.get(pos..)?, "[url]") {
        return None;
    }
    let start = pos + 5;
    let close = find_ci(text, "[/url]", start)?;
    let link = text.get(start..close)?;
    (!link.contains('\n')).then(|| (close + 6, link.to_owned()))
}

/// `[url=LINK]TEXT[/url]` at `pos`, as the parser's pattern
/// `/\[url\s*=\s*((?:[^\[\]]++|\[ (?: (?>[^\[\]]+) | (?:\1) )* \])+)\s*\](.*?)\[\/url\]/ixsu`
/// matches it: the link is a run of characters with no brackets but whole
/// `[…]` pairs (the `\1` inside refers to an unset group, so pairs do not
/// nest), followed by `]`; when only spaces stand between `=` and `]`, the
/// link is the last of them. The text is the shortest run up to `[/url]`.
fn url_tag_at(text: &str, pos: usize) -> Option<(usize, (String, String))> {
    if !starts_with_ci(text.get(pos..)?, "[url") {
        return None;
    }
    let equals = skip_spaces(text, pos + 4);
    if !text.get(equals..)?.starts_with('=') {
        return None;
    }
    let link_start = skip_spaces(text, equals + 1);
    let (link_start, link_end) = match bracketed_run_end(text, link_start) {
        Some(end) if text.get(end..)?.starts_with(']') => (link_start, end),
        _ if link_start > equals + 1 && text.get(link_start..)?.starts_with(']') => {
            let last_space = text.get(..link_start)?.chars().next_back()?;
            (link_start - last_space.len_utf8(), link_start)
        }
        _ => return None,
    };
    let label_start = link_end + 1;
    let close = find_ci(text, "[/url]", label_start)?;
    let link = text.get(link_start..link_end)?.to_owned();
    let label = text.get(label_start..close)?.to_owned();
    Some((close + 6, (link, label)))
}

/// End of the longest run from `start` of characters other than brackets
/// and of `[…]` pairs with no bracket inside; `None` when it is empty.
fn bracketed_run_end(text: &str, start: usize) -> Option<usize> {
    let mut end = start;
    loop {
        let rest = text.get(end..)?;
        match rest.chars().next() {
            None | Some(']') => break,
            Some('[') => {
                let inside = rest.get(1..)?;
                match inside.find(['[', ']']) {
                    Some(at) if inside.get(at..)?.starts_with(']') => end += 1 + at + 1,
                    _ => break,
                }
            }
            Some(_) => end += rest.find(['[', ']']).unwrap_or(rest.len()),
        }
    }
    (end > start).then_some(end)
}

/// The start of a bare link at `pos`: a scheme of [`SCHEMES`] and `://`, or
/// `www.`, then one of `._:@-`, a letter or a digit (`/i`); where that ends.
fn link_head_end(text: &str, pos: usize) -> Option<usize> {
    let rest = text.get(pos..)?;
    let prefix = SCHEMES
        .iter()
        .find(|scheme| {
            starts_with_ci(rest, scheme)
                && rest
                    .get(scheme.len()..)
                    .is_some_and(|r| r.starts_with("://"))
        })
        .map(|scheme| scheme.len() + 3)
        .or_else(|| starts_with_ci(rest, "www.").then_some(4))?;
    let first = rest.get(prefix..)?.chars().next()?;
    let allowed = first.is_ascii_alphanumeric() || "._:@-".contains(first);
    allowed.then_some(pos + prefix + first.len_utf8())
}

/// `(?<!\[nomodify\]|<nomodify>)`: whether the text before a link ends with
/// a `nomodify` tag.
fn after_nomodify(before: &str) -> bool {
    ends_with_ci(before, "[nomodify]") || ends_with_ci(before, "<nomodify>")
}

/// A bare link right after `open` that runs (across anything) to the next
/// `close`: `/(?<=OPEN)(LINK.*?)(?=CLOSE)/isu` at `pos`.
fn bounded_link_at(text: &str, pos: usize, open: &str, close: &str) -> Option<(usize, ())> {
    let before = text.get(..pos)?;
    if !ends_with_ci(before, open) || after_nomodify(before) {
        return None;
    }
    let head_end = link_head_end(text, pos)?;
    Some((find_ci(text, close, head_end)?, ()))
}

/// A bare link at the start of the text or after white space or a word
/// separator, running to the next white space, `"`, `{`, `}`, `&quot;` or
/// the end: `/(?<=^|[SEP])(LINK.*?)(?=[\s"{}]|&quot;|$)/isu` at `pos`.
fn bare_link_at(text: &str, pos: usize) -> Option<(usize, ())> {
    let before = text.get(..pos)?;
    let separated = before
        .chars()
        .next_back()
        .is_none_or(|c| is_space(c) || WORD_SEPARATORS.contains(c));
    if !separated || after_nomodify(before) {
        return None;
    }
    let head_end = link_head_end(text, pos)?;
    let rest = text.get(head_end..)?;
    let length = rest
        .char_indices()
        .find(|&(at, c)| {
            is_space(c)
                || matches!(c, '"' | '{' | '}')
                || rest.get(at..).is_some_and(|r| starts_with_ci(r, "&quot;"))
        })
        .map_or(rest.len(), |(at, _)| at);
    Some((head_end + length, ()))
}

/// The `ANCHOR` pass: `[url]…[/url]` tags, then `[url=…]…[/url]` tags,
/// rewritten by `convert_anchor_tag`.
fn convert_anchors(text: &str) -> String {
    let text = replace_each(text, plain_url_tag_at, |_, link| {
        convert_anchor_tag(&link, &link)
    });
    replace_each(&text, url_tag_at, |_, (link, label)| {
        let label = if php_empty(&label) { &link } else { &label };
        convert_anchor_tag(&link, label)
    })
}

/// `CTextParser::convert_anchor_tag` writing BB-code: `[URL]link[/URL]`
/// when text and link are the same, else `[URL=link]text[/URL]`.
fn convert_anchor_tag(link: &str, label: &str) -> String {
    let strip_nomodify = |s: &str| s.replace("[nomodify]", "").replace("[/nomodify]", "");
    let mut link = php_trim(&strip_nomodify(link)).to_owned();
    let label = php_trim(&strip_nomodify(label)).to_owned();
    let label = if label.is_empty() {
        link.clone()
    } else {
        label
    };
    let is_text_link = label == link;
    let mut label = label.replace("\\\"", "\"");
    let mut postfix = String::new();
    if is_text_link {
        if let Some(end) = trailing_punctuation(&link) {
            postfix = link.split_off(end);
            if let Some(label_end) = trailing_punctuation(&label) {
                label.truncate(label_end);
            }
        }
    }
    let link = link.replace("&amp;", "&");
    let link = replace_ci(&link, "javascript:", "java script&#58; ");
    let link = link.replace(['\u{c}', '\''], "%27");
    let mut link = link.replace("&#91;", "[").replace("&#93;", "]");
    let has_scheme = SCHEMES.iter().any(|scheme| {
        starts_with_ci(&link, scheme)
            && link.get(scheme.len()..).is_some_and(|r| r.starts_with(':'))
    });
    if !link.starts_with('/') && !has_scheme {
        link.insert_str(0, "http://");
    }
    let label = replace_ci(&label, "&amp;", "&");
    let label = replace_ci(&label, "javascript:", "javascript&#58; ");
    if link == label {
        format!("[URL]{link}[/URL]{postfix}")
    } else {
        format!("[URL={link}]{label}[/URL]{postfix}")
    }
}

/// `/([.,?!;]|&#33;)$/u`: where a final punctuation mark starts.
fn trailing_punctuation(text: &str) -> Option<usize> {
    if let Some(start) = text.strip_suffix("&#33;").map(str::len) {
        return Some(start);
    }
    let last = text.chars().next_back()?;
    ".,?!;".contains(last).then(|| text.len() - last.len_utf8())
}

/// `[cut]…[/cut]` and `[cut=Title]…[/cut]` as spoiler tables; tags that do
/// not pair up stay (written `[cut…]`, `[/cut]`).
fn convert_cuts(text: &str) -> String {
    if find_ci(text, "[cut", 0).is_none() {
        return text.to_owned();
    }
    let text = replace_each(text, cut_open_at, |_, title| format!("\u{1}{title}\u{2}"));
    let text = replace_each(&text, cut_close_at, |_, ()| "\u{3}".to_owned());
    let text = replace_each(&text, cut_at, |_, (title, body)| {
        convert_cut_tag(&body, &title)
    });
    let text = replace_each(&text, titled_cut_left_at, |_, title| {
        format!("[cut{title}]")
    });
    text.replace("\u{1}\u{2}", "[cut]")
        .replace('\u{3}', "[/cut]")
}

/// `/\[cut(([^]])*)]/isu` at `pos`: what stands between `[cut` and `]`.
fn cut_open_at(text: &str, pos: usize) -> Option<(usize, String)> {
    if !starts_with_ci(text.get(pos..)?, "[cut") {
        return None;
    }
    let title_start = pos + 4;
    let title_end = title_start + text.get(title_start..)?.find(']')?;
    Some((title_end + 1, text.get(title_start..title_end)?.to_owned()))
}

/// `/\[\/cut]/isu` at `pos`.
fn cut_close_at(text: &str, pos: usize) -> Option<(usize, ())> {
    starts_with_ci(text.get(pos..)?, "[/cut]").then_some((pos + 6, ()))
}

/// `/\x01([^\x02]*)\x02([^\x01\x02\x03]+)\x03/isu` at `pos`: title and body.
fn cut_at(text: &str, pos: usize) -> Option<(usize, (String, String))> {
    let rest = text.get(pos..)?.strip_prefix('\u{1}')?;
    let title_end = rest.find('\u{2}')?;
    let title = rest.get(..title_end)?;
    let after_title = rest.get(title_end + 1..)?;
    let body_end = after_title
        .find(['\u{1}', '\u{2}', '\u{3}'])
        .filter(|&at| {
            at > 0
                && after_title
                    .get(at..)
                    .is_some_and(|r| r.starts_with('\u{3}'))
        })?;
    let body = after_title.get(..body_end)?;
    let end = pos + 1 + title_end + 1 + body_end + 1;
    Some((end, (title.to_owned(), body.to_owned())))
}

/// `/\x01([^\x02]+)\x02/` at `pos`: an unpaired titled opening tag.
fn titled_cut_left_at(text: &str, pos: usize) -> Option<(usize, String)> {
    let rest = text.get(pos..)?.strip_prefix('\u{1}')?;
    let title_end = rest.find('\u{2}').filter(|&at| at > 0)?;
    Some((pos + 1 + title_end + 1, rest.get(..title_end)?.to_owned()))
}

/// `convert_cut_tag` and `renderSpoiler` (without typography): an empty
/// body (`""` or `"0"`) gives nothing; the title is trimmed of spaces and
/// leading `=`; no title (or `"0"`) gives [`SPOILER_CAPTION`].
fn convert_cut_tag(body: &str, title: &str) -> String {
    if php_empty(body) {
        return String::new();
    }
    let title = php_trim(php_trim(title).trim_start_matches('='));
    let caption = if php_empty(title) {
        SPOILER_CAPTION
    } else {
        title
    };
    format!(
        "<table class=\"forum-spoiler\"><thead onclick=\"if (this.nextSibling.style.display=='none') {{ this.nextSibling.style.display=''; BX.addClass(this, 'forum-spoiler-head-open'); }} else {{ this.nextSibling.style.display='none'; BX.removeClass(this, 'forum-spoiler-head-open'); }} BX.onCustomEvent('BX.Forum.Spoiler:toggle', [{{node: this}}]); event.stopPropagation();\"><tr><th><div>{}</div></th></tr></thead><tbody class=\"forum-spoiler\" style=\"display:none;\"><tr><td>{}</td></tr></tbody></table>",
        html_special_chars(caption),
        trim_line_breaks(body)
    )
}

/// `preg_replace("/^\r?\n|\r?\n$/", '', $text)`: a line break at the start,
/// and those that end the text or stand just before its final line feed.
fn trim_line_breaks(text: &str) -> String {
    replace_each(
        text,
        |t, pos| {
            let rest = t.get(pos..)?;
            let length = if rest.starts_with("\r\n") {
                2
            } else if rest.starts_with('\n') {
                1
            } else {
                return None;
            };
            let end = pos + length;
            let at_end = end == t.len() || t.get(end..) == Some("\n");
            (pos == 0 || at_end).then_some((end, ()))
        },
        |_, ()| String::new(),
    )
}

/// What `Text::parse` does after the text parser: line-break codes, then the
/// HTML entities (not `&#169;` and the other sign entities, fact sheet §12),
/// each replacement over the whole text in this order (`&amp;` last, so
/// `&amp;lt;` gives `&lt;`).
fn decode_entities(text: &str) -> String {
    const STEPS: [(&str, &str); 15] = [
        ("<br />", "\n"),
        ("#BR#", "\n"),
        ("[br]", "\n"),
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
        ("&amp;", "&"),
    ];
    STEPS
        .iter()
        .fold(text.to_owned(), |text, (from, to)| text.replace(from, to))
}

// ---------------------------------------------------------------------------
// PHP and PCRE helpers
// ---------------------------------------------------------------------------

/// `preg_replace_callback` over a hand-written pattern: `match_at(text,
/// pos)` says whether a match starts at `pos`, where it ends and what it
/// captured; matches are found left to right, each search going on after
/// the previous match, and replaced by `replace(matched text, captures)`.
fn replace_each<T>(
    text: &str,
    mut match_at: impl FnMut(&str, usize) -> Option<(usize, T)>,
    mut replace: impl FnMut(&str, T) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut pos = 0;
    while let Some(c) = text.get(pos..).and_then(|rest| rest.chars().next()) {
        match match_at(text, pos) {
            Some((end, captures)) if end > pos => {
                out.push_str(text.get(copied..pos).unwrap_or_default());
                out.push_str(&replace(text.get(pos..end).unwrap_or_default(), captures));
                copied = end;
                pos = end;
            }
            _ => pos += c.len_utf8(),
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// Whether `pattern` matches anywhere in `text`.
fn has_match<T>(text: &str, mut pattern: impl FnMut(&str, usize) -> Option<(usize, T)>) -> bool {
    text.char_indices()
        .any(|(pos, _)| pattern(text, pos).is_some())
}

/// PHP `trim()` with its default characters.
fn php_trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r', '\0', '\u{b}'])
}

/// PHP `empty()` of a string: `""` and `"0"`.
fn php_empty(text: &str) -> bool {
    text.is_empty() || text == "0"
}

/// PHP `(int)` of a string of ASCII digits, saturating.
fn php_int(digits: &str) -> i64 {
    digits.parse().unwrap_or(i64::MAX)
}

/// `htmlspecialcharsbx` (`ENT_COMPAT`): `&`, `"`, `<`, `>`.
fn html_special_chars(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `\s` of a PCRE pattern with the `u` modifier (Unicode white space, as
/// PHP also sets `PCRE2_UCP`): the `Z` categories and `\t\n\v\f\r`.
fn is_space(c: char) -> bool {
    c.is_whitespace() && c != '\u{85}'
}

/// Position after the white space from `pos`.
fn skip_spaces(text: &str, pos: usize) -> usize {
    let rest = text.get(pos..).unwrap_or_default();
    pos + rest.find(|c: char| !is_space(c)).unwrap_or(rest.len())
}

/// Length of the run of ASCII digits at the start.
fn ascii_digits(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

/// Whether `text` starts with the ASCII `prefix`, ignoring ASCII case.
fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `text` ends with `suffix`, ignoring ASCII case.
fn ends_with_ci(text: &str, suffix: &str) -> bool {
    text.len()
        .checked_sub(suffix.len())
        .and_then(|start| text.as_bytes().get(start..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
}

/// First position at or after `from` where `needle` starts, ignoring ASCII
/// case. A match of a UTF-8 needle always starts on a character boundary.
fn find_ci(text: &str, needle: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (first, rest) = needle.as_bytes().split_first()?;
    let last = bytes.len().checked_sub(needle.len())?;
    let mut at = from;
    while at <= last {
        at += bytes
            .get(at..=last)?
            .iter()
            .position(|b| b.eq_ignore_ascii_case(first))?;
        let tail = bytes.get(at + 1..at + needle.len());
        if tail.is_some_and(|tail| tail.eq_ignore_ascii_case(rest)) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Replaces every `needle` (ignoring ASCII case) by `with`.
fn replace_ci(text: &str, needle: &str, with: &str) -> String {
    replace_each(
        text,
        |t, pos| starts_with_ci(t.get(pos..)?, needle).then_some((pos + needle.len(), ())),
        |_, ()| with.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<i64, String> {
        seeded_users()
    }

    #[test]
    fn store_trims_breaks_and_cuts() {
        let users = users();
        let stored = |s: &str| store(s, &users).unwrap_or_default();
        assert_eq!(stored("  a[BR]b#BR#c[br]d \n"), "a\nb\nc\nd");
        let long = "x".repeat(MESSAGE_LIMIT + 6);
        assert_eq!(stored(&long), long);
        let cut = stored(&"y".repeat(MESSAGE_LIMIT + 7));
        assert!(cut.ends_with("y (...)"));
        assert_eq!(cut.chars().count(), MESSAGE_LIMIT + 6);
    }

    #[test]
    fn command_blocks_backtrack_like_the_pattern() {
        let at = |t: &str| command_block_at(t, 0, "PUT").map(|(end, ())| end);
        assert_eq!(at("[PUT]a[/PUT]"), Some(12));
        assert_eq!(at("[put=x]a[/put]"), Some(14));
        assert_eq!(at("[PUT][/PUT]"), Some(11));
        assert_eq!(at("[PUT][/PUT]x[/PUT]"), Some(18));
        assert_eq!(at("[PUT=a]b]c[/PUT]"), Some(16));
        assert_eq!(at("[PUT]a\n[/PUT]"), None);
        assert_eq!(at("[PUT=]x[/PUT]"), None);
        assert_eq!(at("[PUTx]a[/PUT]"), None);
    }

    #[test]
    fn url_tags_take_bracket_pairs_and_a_last_space() {
        let at = |t: &str| url_tag_at(t, 0);
        assert_eq!(
            at("[url=a[1]b]x[/url]"),
            Some((18, ("a[1]b".to_owned(), "x".to_owned())))
        );
        assert_eq!(
            at("[url =  ]x[/url]"),
            Some((16, (" ".to_owned(), "x".to_owned())))
        );
        assert_eq!(at("[url=]x[/url]"), None);
        assert_eq!(at("[url=a[b]x"), None);
        assert_eq!(
            at("[URL=x][/URL]"),
            Some((13, ("x".to_owned(), String::new())))
        );
    }

    #[test]
    fn line_breaks_trim_like_the_pattern() {
        assert_eq!(trim_line_breaks("\nabc\n"), "abc");
        assert_eq!(trim_line_breaks("abc\r\n"), "abc");
        assert_eq!(trim_line_breaks("abc\n\n"), "abc");
        assert_eq!(trim_line_breaks("abc\n\n\n"), "abc\n");
        assert_eq!(trim_line_breaks("a\nb"), "a\nb");
    }

    #[test]
    fn placeholders_are_restored_even_when_nested() {
        let users = users();
        assert_eq!(
            parse("[PUT][CODE]https://x.com[/CODE][/PUT]", &users),
            "[PUT][CODE]https://x.com[/CODE][/PUT]"
        );
        assert_eq!(
            parse("####REPLACEMENT_MARK_ [CODE]x[/CODE]", &users),
            "####REPLACEMENT_MARK_ [CODE]x[/CODE]"
        );
    }
}
