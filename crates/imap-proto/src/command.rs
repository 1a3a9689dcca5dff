//! Client commands: the session and mailbox commands of RFC 3501/9051
//! (FETCH, STORE, SEARCH and APPEND follow in the next step of this crate).

use crate::core::{Encoder, PResult, SyntaxError, Tag, astring, atom, sp, string, tag};
use crate::items::{self, FetchItem, Flag, SearchKey};
use crate::seq::{self, SequenceSet};
use crate::utf7;

/// A mailbox name as a value (UTF-8); `INBOX` in any case is the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox(String);

impl Mailbox {
    /// A mailbox name; `inbox` (any case) becomes `INBOX`.
    pub fn new(name: impl Into<String>) -> Option<Mailbox> {
        let name = name.into();
        if name.is_empty() || name.chars().any(|c| c.is_control()) {
            return None;
        }
        Some(if name.eq_ignore_ascii_case("INBOX") {
            Mailbox("INBOX".into())
        } else {
            Mailbox(name)
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `STATUS` data items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `DELETED` (IMAP4rev2)
    Deleted,
    /// `SIZE` (IMAP4rev2)
    Size,
    /// `HIGHESTMODSEQ` (CONDSTORE)
    HighestModSeq,
}

const STATUS_ITEMS: [(StatusItem, &str); 8] = [
    (StatusItem::Messages, "MESSAGES"),
    (StatusItem::Recent, "RECENT"),
    (StatusItem::UidNext, "UIDNEXT"),
    (StatusItem::UidValidity, "UIDVALIDITY"),
    (StatusItem::Unseen, "UNSEEN"),
    (StatusItem::Deleted, "DELETED"),
    (StatusItem::Size, "SIZE"),
    (StatusItem::HighestModSeq, "HIGHESTMODSEQ"),
];

pub(crate) fn status_item_name(i: StatusItem) -> &'static str {
    STATUS_ITEMS
        .iter()
        .find(|(x, _)| *x == i)
        .map_or("MESSAGES", |(_, n)| n)
}

pub(crate) fn status_item(name: &str) -> Option<StatusItem> {
    STATUS_ITEMS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(i, _)| *i)
}

/// Writes a mailbox name: modified UTF-7 unless UTF8=ACCEPT is on.
pub(crate) fn encode_mailbox(e: &mut Encoder, m: &Mailbox, utf8: bool) {
    let name = if utf8 || m.as_str() == "INBOX" {
        m.as_str().to_owned()
    } else {
        utf7::encode(m.as_str())
    };
    e.astring(name.as_bytes());
}

/// What a tagged command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandBody {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `STARTTLS`
    StartTls,
    /// `LOGIN user password`
    Login {
        /// The user name.
        username: Vec<u8>,
        /// The password.
        password: Vec<u8>,
    },
    /// `AUTHENTICATE mechanism [initial-response]` (SASL-IR, RFC 4959)
    Authenticate {
        /// Mechanism name, upper case.
        mechanism: String,
        /// Base64 initial response (`=` for empty).
        initial_response: Option<String>,
    },
    /// `ENABLE capability...` (RFC 5161)
    Enable(Vec<String>),
    /// `SELECT mailbox [(CONDSTORE)]`
    Select {
        /// The mailbox.
        mailbox: Mailbox,
        /// `(CONDSTORE)` given.
        condstore: bool,
    },
    /// `EXAMINE mailbox [(CONDSTORE)]`
    Examine {
        /// The mailbox.
        mailbox: Mailbox,
        /// `(CONDSTORE)` given.
        condstore: bool,
    },
    /// `CREATE mailbox`
    Create(Mailbox),
    /// `DELETE mailbox`
    Delete(Mailbox),
    /// `RENAME from to`
    Rename(Mailbox, Mailbox),
    /// `SUBSCRIBE mailbox`
    Subscribe(Mailbox),
    /// `UNSUBSCRIBE mailbox`
    Unsubscribe(Mailbox),
    /// `LIST reference pattern`
    List {
        /// The reference name.
        reference: String,
        /// The pattern (`*` and `%` wildcards).
        pattern: String,
    },
    /// `LSUB reference pattern`
    Lsub {
        /// The reference name.
        reference: String,
        /// The pattern.
        pattern: String,
    },
    /// `NAMESPACE` (RFC 2342)
    Namespace,
    /// `STATUS mailbox (items)`
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// The items.
        items: Vec<StatusItem>,
    },
    /// `IDLE` (RFC 2177)
    Idle,
    /// `CHECK`
    Check,
    /// `CLOSE`
    Close,
    /// `UNSELECT` (RFC 3691)
    Unselect,
    /// `EXPUNGE`, or `UID EXPUNGE set` (RFC 4315)
    Expunge(Option<SequenceSet>),
    /// `[UID] COPY set mailbox`
    Copy {
        /// UIDs rather than message numbers.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// The target.
        mailbox: Mailbox,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] (flags)`
    Store {
        /// UIDs rather than message numbers.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// CONDSTORE `UNCHANGEDSINCE`.
        unchanged_since: Option<u64>,
        /// Replace (`FLAGS`), add (`+FLAGS`) or remove (`-FLAGS`).
        op: StoreOp,
        /// `.SILENT`
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
    },
    /// `[UID] FETCH set items [(CHANGEDSINCE n [VANISHED])]`
    Fetch {
        /// UIDs rather than message numbers.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// What to fetch (macros expanded).
        items: Vec<FetchItem>,
        /// CONDSTORE `CHANGEDSINCE`.
        changed_since: Option<u64>,
        /// QRESYNC `VANISHED` (UID FETCH only).
        vanished: bool,
    },
    /// `[UID] SEARCH [RETURN (opt…)] [CHARSET c] key…`
    Search {
        /// UIDs rather than message numbers in the answer.
        uid: bool,
        /// RFC 4731 `RETURN` options: `None` asks for the classic `* SEARCH`
        /// answer, `Some` for `* ESEARCH` (an empty list means `ALL`).
        ret: Option<Vec<SearchReturn>>,
        /// `CHARSET`
        charset: Option<String>,
        /// The keys (all must match).
        keys: Vec<SearchKey>,
    },
    /// `APPEND mailbox [(flags)] [date-time] literal [SP …]`: one message,
    /// or several with MULTIAPPEND (RFC 3502), appended all or none.
    Append {
        /// The target.
        mailbox: Mailbox,
        /// The messages, in order; never empty.
        messages: Vec<AppendMessage>,
    },
    /// `ID (…)` / `ID NIL` (RFC 2971): the client's field/value pairs.
    Id(Option<Vec<crate::response::IdField>>),
    /// `[UID] MOVE set mailbox` (RFC 6851)
    Move {
        /// UIDs rather than message numbers.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// The target.
        mailbox: Mailbox,
    },
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

fn modseq_value(i: &[u8]) -> PResult<'_, u64> {
    let n = i.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return Err(SyntaxError::Number);
    }
    let v = std::str::from_utf8(&i[..n])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(SyntaxError::Number)?;
    Ok((&i[n..], v))
}

/// One or more `item`s separated by single spaces.
fn sp_separated<'a, T>(
    i: &'a [u8],
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut r, first) = item(i)?;
    let mut out = vec![first];
    while let Ok((r2, ())) = sp(r) {
        let (r3, next) = item(r2)?;
        out.push(next);
        r = r3;
    }
    Ok((r, out))
}

/// One message of an `APPEND` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Initial flags.
    pub flags: Vec<Flag>,
    /// Internal date, as sent (`"dd-Mon-yyyy hh:mm:ss +zzzz"`).
    pub date: Option<String>,
    /// The message.
    pub message: Vec<u8>,
}

impl AppendMessage {
    /// A message with no flags and no date (the server picks the time).
    pub fn new(message: impl Into<Vec<u8>>) -> Self {
        Self {
            flags: Vec::new(),
            date: None,
            message: message.into(),
        }
    }
}

/// `[(flags) SP] [date-time SP] literal`
fn append_message(i: &[u8]) -> PResult<'_, AppendMessage> {
    let mut r = i;
    let mut flags = Vec::new();
    if r.first() == Some(&b'(') {
        let (r2, f) = items::flag_list(r)?;
        flags = f;
        r = sp(r2)?.0;
    }
    let mut date = None;
    if r.first() == Some(&b'"') {
        let (r2, d) = string(r)?;
        let d = String::from_utf8(d.into_owned()).map_err(|_| SyntaxError::Invalid("date-time"))?;
        if d.len() != 26 {
            return Err(SyntaxError::Invalid("date-time"));
        }
        date = Some(d);
        r = sp(r2)?.0;
    }
    if !(r.first() == Some(&b'{') || r.starts_with(b"~{")) {
        return Err(SyntaxError::Invalid("APPEND needs a literal"));
    }
    let (r, message) = string(r)?;
    Ok((
        r,
        AppendMessage {
            flags,
            date,
            message: message.into_owned(),
        },
    ))
}

/// A `SEARCH RETURN` option (RFC 4731 §3.1, `SAVE` from RFC 5182).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    /// `MIN`: the lowest matching number.
    Min,
    /// `MAX`: the highest matching number.
    Max,
    /// `ALL`: every match, as a sequence set.
    All,
    /// `COUNT`: how many matched.
    Count,
    /// `SAVE`: keep the result as `$` (RFC 5182).
    Save,
}

impl SearchReturn {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "MIN",
            Self::Max => "MAX",
            Self::All => "ALL",
            Self::Count => "COUNT",
            Self::Save => "SAVE",
        }
    }

    fn from_keyword(w: &[u8]) -> Option<Self> {
        [Self::Min, Self::Max, Self::All, Self::Count, Self::Save]
            .into_iter()
            .find(|o| o.as_str().as_bytes().eq_ignore_ascii_case(w))
    }
}

/// `RETURN (opt opt …)` after `SEARCH `; the rest follows a space.
fn search_return(i: &[u8]) -> PResult<'_, Vec<SearchReturn>> {
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("expected ( after RETURN"))?;
    let mut out: Vec<SearchReturn> = Vec::new();
    while r.first() != Some(&b')') {
        if !out.is_empty() {
            r = sp(r)?.0;
        }
        let n = r
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(r.len());
        let opt = SearchReturn::from_keyword(&r[..n])
            .ok_or(SyntaxError::Invalid("search return option"))?;
        if out.contains(&opt) {
            return Err(SyntaxError::Invalid("repeated search return option"));
        }
        out.push(opt);
        r = &r[n..];
    }
    Ok((&r[1..], out))
}

fn prefix_ci<'a>(i: &'a [u8], p: &[u8]) -> Option<&'a [u8]> {
    (i.len() >= p.len() && i[..p.len()].eq_ignore_ascii_case(p)).then(|| &i[p.len()..])
}

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The tag.
    pub tag: Tag,
    /// What it asks.
    pub body: CommandBody,
}

/// Why a framed command could not be parsed. `tag` is set when the tag
/// was read, so the server can answer tagged `BAD`, else untagged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct CommandError {
    /// The tag, if valid.
    pub tag: Option<Tag>,
    /// What was wrong.
    pub error: SyntaxError,
}

pub(crate) fn mailbox(i: &[u8], utf8: bool) -> PResult<'_, Mailbox> {
    let (r, raw) = astring(i)?;
    let s = std::str::from_utf8(&raw).map_err(|_| SyntaxError::Invalid("mailbox name"))?;
    let name = if utf8 || s.eq_ignore_ascii_case("INBOX") {
        s.to_owned()
    } else {
        utf7::decode(s).map_err(|_| SyntaxError::Invalid("mailbox name is not modified UTF-7"))?
    };
    Ok((
        r,
        Mailbox::new(name).ok_or(SyntaxError::Invalid("mailbox name"))?,
    ))
}

fn text_arg(i: &[u8]) -> PResult<'_, String> {
    // list-mailbox allows the wildcards in atoms.
    let n = i
        .iter()
        .take_while(|&&b| crate::core::is_astring_char(b) || b == b'%' || b == b'*')
        .count();
    if n > 0 && !crate::core::starts_string(i) {
        let s = std::str::from_utf8(&i[..n]).map_err(|_| SyntaxError::Invalid("list pattern"))?;
        return Ok((&i[n..], s.to_owned()));
    }
    let (r, raw) = astring(i)?;
    Ok((
        r,
        String::from_utf8(raw.into_owned()).map_err(|_| SyntaxError::Invalid("UTF-8"))?,
    ))
}

fn condstore(i: &[u8]) -> PResult<'_, bool> {
    match i.get(..12) {
        Some(p) if p.eq_ignore_ascii_case(b" (CONDSTORE)") => Ok((&i[12..], true)),
        _ => Ok((i, false)),
    }
}

fn end(i: &[u8]) -> Result<(), SyntaxError> {
    if i == b"\r\n" {
        Ok(())
    } else {
        Err(SyntaxError::Invalid("expected end of command"))
    }
}

impl Command {
    /// Parses one framed command (CRLF included), e.g. from
    /// [`crate::Framer`]. `utf8` when UTF8=ACCEPT is enabled (mailbox
    /// names are then UTF-8, not modified UTF-7).
    pub fn parse(input: &[u8], utf8: bool) -> Result<Command, CommandError> {
        let (i, t) = tag(input).map_err(|error| CommandError { tag: None, error })?;
        let err = |error| CommandError {
            tag: Some(t.clone()),
            error,
        };
        let body = Self::body(i, utf8).map_err(err)?;
        Ok(Command { tag: t, body })
    }

    fn body(i: &[u8], utf8: bool) -> Result<CommandBody, SyntaxError> {
        let (i, _) = sp(i)?;
        let (mut i, word) = atom(i)?;
        let mut uid = false;
        let mut word = word.to_ascii_uppercase();
        if word == "UID" {
            uid = true;
            let (r, _) = sp(i)?;
            let (r, w) = atom(r)?;
            word = w.to_ascii_uppercase();
            i = r;
        }
        let simple = |b: CommandBody| end(i).map(|_| b);
        let body = match (uid, word.as_str()) {
            (false, "CAPABILITY") => simple(CommandBody::Capability)?,
            (false, "NOOP") => simple(CommandBody::Noop)?,
            (false, "LOGOUT") => simple(CommandBody::Logout)?,
            (false, "STARTTLS") => simple(CommandBody::StartTls)?,
            (false, "NAMESPACE") => simple(CommandBody::Namespace)?,
            (false, "IDLE") => simple(CommandBody::Idle)?,
            (false, "CHECK") => simple(CommandBody::Check)?,
            (false, "CLOSE") => simple(CommandBody::Close)?,
            (false, "UNSELECT") => simple(CommandBody::Unselect)?,
            (false, "EXPUNGE") => simple(CommandBody::Expunge(None))?,
            (true, "EXPUNGE") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                end(r)?;
                CommandBody::Expunge(Some(set))
            }
            (false, "LOGIN") => {
                let (r, _) = sp(i)?;
                let (r, u) = astring(r)?;
                let (r, _) = sp(r)?;
                let (r, p) = astring(r)?;
                end(r)?;
                CommandBody::Login {
                    username: u.into_owned(),
                    password: p.into_owned(),
                }
            }
            (false, "AUTHENTICATE") => {
                let (r, _) = sp(i)?;
                let (r, m) = atom(r)?;
                let (r, ir) = match sp(r) {
                    Ok((r, ())) => {
                        let n = r
                            .iter()
                            .take_while(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
                            })
                            .count();
                        if n == 0 {
                            return Err(SyntaxError::Invalid("initial response"));
                        }
                        (&r[n..], Some(String::from_utf8_lossy(&r[..n]).into_owned()))
                    }
                    Err(_) => (r, None),
                };
                end(r)?;
                CommandBody::Authenticate {
                    mechanism: m.to_ascii_uppercase(),
                    initial_response: ir,
                }
            }
            (false, "ENABLE") => {
                let mut caps = Vec::new();
                let mut r = i;
                while let Ok((r2, ())) = sp(r) {
                    let (r3, a) = atom(r2)?;
                    caps.push(a.to_ascii_uppercase());
                    r = r3;
                }
                end(r)?;
                if caps.is_empty() {
                    return Err(SyntaxError::Invalid("ENABLE needs a capability"));
                }
                CommandBody::Enable(caps)
            }
            (false, "SELECT" | "EXAMINE") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, cs) = condstore(r)?;
                end(r)?;
                if word == "SELECT" {
                    CommandBody::Select {
                        mailbox: m,
                        condstore: cs,
                    }
                } else {
                    CommandBody::Examine {
                        mailbox: m,
                        condstore: cs,
                    }
                }
            }
            (false, "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                end(r)?;
                match word.as_str() {
                    "CREATE" => CommandBody::Create(m),
                    "DELETE" => CommandBody::Delete(m),
                    "SUBSCRIBE" => CommandBody::Subscribe(m),
                    _ => CommandBody::Unsubscribe(m),
                }
            }
            (false, "RENAME") => {
                let (r, _) = sp(i)?;
                let (r, a) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let (r, b) = mailbox(r, utf8)?;
                end(r)?;
                CommandBody::Rename(a, b)
            }
            (false, "LIST" | "LSUB") => {
                let (r, _) = sp(i)?;
                let (r, reference) = text_arg(r)?;
                let (r, _) = sp(r)?;
                let (r, pattern) = text_arg(r)?;
                end(r)?;
                if word == "LIST" {
                    CommandBody::List { reference, pattern }
                } else {
                    CommandBody::Lsub { reference, pattern }
                }
            }
            (false, "STATUS") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let mut r = r
                    .strip_prefix(b"(")
                    .ok_or(SyntaxError::Invalid("STATUS items"))?;
                let mut items = Vec::new();
                loop {
                    let (r2, a) = atom(r)?;
                    let item = STATUS_ITEMS
                        .iter()
                        .find(|(_, n)| n.eq_ignore_ascii_case(a))
                        .ok_or(SyntaxError::Invalid("unknown STATUS item"))?
                        .0;
                    items.push(item);
                    if let Some(r3) = r2.strip_prefix(b")") {
                        r = r3;
                        break;
                    }
                    r = sp(r2)?.0;
                }
                end(r)?;
                CommandBody::Status { mailbox: m, items }
            }
            (_, "COPY" | "MOVE") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                let (r, _) = sp(r)?;
                let (r, m) = mailbox(r, utf8)?;
                end(r)?;
                if word == "COPY" {
                    CommandBody::Copy {
                        uid,
                        set,
                        mailbox: m,
                    }
                } else {
                    CommandBody::Move {
                        uid,
                        set,
                        mailbox: m,
                    }
                }
            }
            (_, "STORE") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                let (r, _) = sp(r)?;
                let (r, unchanged_since) = match prefix_ci(r, b"(UNCHANGEDSINCE ") {
                    Some(r2) => {
                        let (r3, n) = modseq_value(r2)?;
                        let r3 = r3
                            .strip_prefix(b") ")
                            .ok_or(SyntaxError::Invalid("UNCHANGEDSINCE"))?;
                        (r3, Some(n))
                    }
                    None => (r, None),
                };
                let (r, op) = match r.first() {
                    Some(b'+') => (&r[1..], StoreOp::Add),
                    Some(b'-') => (&r[1..], StoreOp::Remove),
                    _ => (r, StoreOp::Replace),
                };
                let r = prefix_ci(r, b"FLAGS").ok_or(SyntaxError::Invalid("STORE item"))?;
                let (r, silent) = match prefix_ci(r, b".SILENT") {
                    Some(r2) => (r2, true),
                    None => (r, false),
                };
                let (r, _) = sp(r)?;
                let (r, flags) = if r.first() == Some(&b'(') {
                    items::flag_list(r)?
                } else {
                    let mut flags = Vec::new();
                    let mut r = r;
                    loop {
                        let (r2, f) = items::flag(r)?;
                        flags.push(f);
                        match sp(r2) {
                            Ok((r3, ())) => r = r3,
                            Err(_) => break (r2, flags),
                        }
                    }
                };
                end(r)?;
                CommandBody::Store {
                    uid,
                    set,
                    unchanged_since,
                    op,
                    silent,
                    flags,
                }
            }
            (_, "FETCH") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                let (r, _) = sp(r)?;
                let (r, items) = items::fetch_items(r)?;
                let (r, changed_since, vanished) = match prefix_ci(r, b" (CHANGEDSINCE ") {
                    Some(r2) => {
                        let (r3, n) = modseq_value(r2)?;
                        let (r3, v) = match prefix_ci(r3, b" VANISHED") {
                            Some(r4) => (r4, true),
                            None => (r3, false),
                        };
                        (
                            r3.strip_prefix(b")")
                                .ok_or(SyntaxError::Invalid("CHANGEDSINCE"))?,
                            Some(n),
                            v,
                        )
                    }
                    None => (r, None, false),
                };
                end(r)?;
                CommandBody::Fetch {
                    uid,
                    set,
                    items,
                    changed_since,
                    vanished,
                }
            }
            (_, "SEARCH") => {
                let (mut r, _) = sp(i)?;
                let mut ret = None;
                if let Some(r2) = prefix_ci(r, b"RETURN ") {
                    let (r3, opts) = search_return(r2)?;
                    ret = Some(opts);
                    r = sp(r3)?.0;
                }
                let mut charset = None;
                if let Some(r2) = prefix_ci(r, b"CHARSET ") {
                    let (r3, c) = astring(r2)?;
                    charset = Some(
                        String::from_utf8(c.into_owned())
                            .map_err(|_| SyntaxError::Invalid("charset"))?,
                    );
                    r = sp(r3)?.0;
                }
                let (r, keys) = sp_separated(r, |r| items::search_key(r, 0))?;
                end(r)?;
                CommandBody::Search {
                    uid,
                    ret,
                    charset,
                    keys,
                }
            }
            (false, "APPEND") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let (r, messages) = sp_separated(r, append_message)?;
                end(r)?;
                CommandBody::Append {
                    mailbox: m,
                    messages,
                }
            }
            (false, "ID") => {
                let (r, _) = sp(i)?;
                if r.len() >= 3 && r[..3].eq_ignore_ascii_case(b"NIL") {
                    end(&r[3..])?;
                    return Ok(CommandBody::Id(None));
                }
                let mut r = r.strip_prefix(b"(").ok_or(SyntaxError::Invalid("ID"))?;
                let mut pairs = Vec::new();
                if let Some(rest) = r.strip_prefix(b")") {
                    end(rest)?;
                    return Ok(CommandBody::Id(Some(pairs)));
                }
                loop {
                    let (r2, k) = string(r)?;
                    let (r2, _) = sp(r2)?;
                    let (r2, v) = if r2.len() >= 3 && r2[..3].eq_ignore_ascii_case(b"NIL") {
                        (&r2[3..], None)
                    } else {
                        let (r3, v) = string(r2)?;
                        (r3, Some(v.into_owned()))
                    };
                    pairs.push((k.into_owned(), v));
                    if pairs.len() > 30 {
                        return Err(SyntaxError::Invalid("ID: at most 30 fields"));
                    }
                    if let Some(rest) = r2.strip_prefix(b")") {
                        end(rest)?;
                        break CommandBody::Id(Some(pairs));
                    }
                    r = sp(r2)?.0;
                }
            }
            _ => return Err(SyntaxError::Invalid("unknown command")),
        };
        Ok(body)
    }

    /// Encodes the command into chunks (literals may need continuations).
    pub fn encode(&self, non_sync_literals: bool, utf8: bool) -> Vec<crate::core::Chunk> {
        let mut e = Encoder::new(non_sync_literals);
        e.raw(self.tag.as_str().as_bytes()).raw(b" ");
        let mbox = |e: &mut Encoder, m: &Mailbox| encode_mailbox(e, m, utf8);
        match &self.body {
            CommandBody::Capability => {
                e.raw(b"CAPABILITY");
            }
            CommandBody::Noop => {
                e.raw(b"NOOP");
            }
            CommandBody::Logout => {
                e.raw(b"LOGOUT");
            }
            CommandBody::StartTls => {
                e.raw(b"STARTTLS");
            }
            CommandBody::Namespace => {
                e.raw(b"NAMESPACE");
            }
            CommandBody::Idle => {
                e.raw(b"IDLE");
            }
            CommandBody::Check => {
                e.raw(b"CHECK");
            }
            CommandBody::Close => {
                e.raw(b"CLOSE");
            }
            CommandBody::Unselect => {
                e.raw(b"UNSELECT");
            }
            CommandBody::Expunge(None) => {
                e.raw(b"EXPUNGE");
            }
            CommandBody::Expunge(Some(set)) => {
                e.raw(format!("UID EXPUNGE {set}").as_bytes());
            }
            CommandBody::Login { username, password } => {
                e.raw(b"LOGIN ")
                    .astring(username)
                    .raw(b" ")
                    .astring(password);
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                e.raw(b"AUTHENTICATE ").raw(mechanism.as_bytes());
                if let Some(ir) = initial_response {
                    e.raw(b" ").raw(ir.as_bytes());
                }
            }
            CommandBody::Enable(caps) => {
                e.raw(b"ENABLE");
                for c in caps {
                    e.raw(b" ").raw(c.as_bytes());
                }
            }
            CommandBody::Select {
                mailbox: m,
                condstore,
            }
            | CommandBody::Examine {
                mailbox: m,
                condstore,
            } => {
                let w: &[u8] = if matches!(self.body, CommandBody::Select { .. }) {
                    b"SELECT "
                } else {
                    b"EXAMINE "
                };
                e.raw(w);
                mbox(&mut e, m);
                if *condstore {
                    e.raw(b" (CONDSTORE)");
                }
            }
            CommandBody::Create(m)
            | CommandBody::Delete(m)
            | CommandBody::Subscribe(m)
            | CommandBody::Unsubscribe(m) => {
                let w: &[u8] = match self.body {
                    CommandBody::Create(_) => b"CREATE ",
                    CommandBody::Delete(_) => b"DELETE ",
                    CommandBody::Subscribe(_) => b"SUBSCRIBE ",
                    _ => b"UNSUBSCRIBE ",
                };
                e.raw(w);
                mbox(&mut e, m);
            }
            CommandBody::Rename(a, b) => {
                e.raw(b"RENAME ");
                mbox(&mut e, a);
                e.raw(b" ");
                mbox(&mut e, b);
            }
            CommandBody::List { reference, pattern } | CommandBody::Lsub { reference, pattern } => {
                let w: &[u8] = if matches!(self.body, CommandBody::List { .. }) {
                    b"LIST "
                } else {
                    b"LSUB "
                };
                e.raw(w)
                    .string(reference.as_bytes())
                    .raw(b" ")
                    .string(pattern.as_bytes());
            }
            CommandBody::Status { mailbox: m, items } => {
                e.raw(b"STATUS ");
                mbox(&mut e, m);
                let names: Vec<&str> = items
                    .iter()
                    .filter_map(|it| STATUS_ITEMS.iter().find(|(x, _)| x == it).map(|(_, n)| *n))
                    .collect();
                e.raw(format!(" ({})", names.join(" ")).as_bytes());
            }
            CommandBody::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            } => {
                if *uid {
                    e.raw(b"UID ");
                }
                e.raw(format!("STORE {set} ").as_bytes());
                if let Some(n) = unchanged_since {
                    e.raw(format!("(UNCHANGEDSINCE {n}) ").as_bytes());
                }
                let op: &[u8] = match op {
                    StoreOp::Replace => b"",
                    StoreOp::Add => b"+",
                    StoreOp::Remove => b"-",
                };
                e.raw(op)
                    .raw(b"FLAGS")
                    .raw(if *silent { b".SILENT " } else { b" " });
                items::encode_flags(&mut e, flags);
            }
            CommandBody::Fetch {
                uid,
                set,
                items: its,
                changed_since,
                vanished,
            } => {
                if *uid {
                    e.raw(b"UID ");
                }
                e.raw(format!("FETCH {set} ").as_bytes());
                items::encode_fetch_items(&mut e, its);
                if let Some(n) = changed_since {
                    e.raw(
                        format!(
                            " (CHANGEDSINCE {n}{})",
                            if *vanished { " VANISHED" } else { "" }
                        )
                        .as_bytes(),
                    );
                }
            }
            CommandBody::Search {
                uid,
                ret,
                charset,
                keys,
            } => {
                if *uid {
                    e.raw(b"UID ");
                }
                e.raw(b"SEARCH");
                if let Some(opts) = ret {
                    e.raw(b" RETURN (");
                    for (n, o) in opts.iter().enumerate() {
                        if n > 0 {
                            e.raw(b" ");
                        }
                        e.raw(o.as_str().as_bytes());
                    }
                    e.raw(b")");
                }
                if let Some(c) = charset {
                    e.raw(b" CHARSET ").astring(c.as_bytes());
                }
                for k in keys {
                    e.raw(b" ");
                    items::encode_search_key(&mut e, k);
                }
            }
            CommandBody::Append {
                mailbox: m,
                messages,
            } => {
                e.raw(b"APPEND ");
                mbox(&mut e, m);
                for msg in messages {
                    if !msg.flags.is_empty() {
                        e.raw(b" ");
                        items::encode_flags(&mut e, &msg.flags);
                    }
                    if let Some(d) = &msg.date {
                        e.raw(b" ").string(d.as_bytes());
                    }
                    e.raw(b" ").literal(&msg.message);
                }
            }
            CommandBody::Id(None) => {
                e.raw(b"ID NIL");
            }
            CommandBody::Id(Some(pairs)) => {
                e.raw(b"ID (");
                for (k, (a, b)) in pairs.iter().enumerate() {
                    if k > 0 {
                        e.raw(b" ");
                    }
                    e.string(a).raw(b" ");
                    match b {
                        Some(v) => e.string(v),
                        None => e.raw(b"NIL"),
                    };
                }
                e.raw(b")");
            }
            CommandBody::Copy {
                uid,
                set,
                mailbox: m,
            }
            | CommandBody::Move {
                uid,
                set,
                mailbox: m,
            } => {
                if *uid {
                    e.raw(b"UID ");
                }
                let w = if matches!(self.body, CommandBody::Copy { .. }) {
                    "COPY"
                } else {
                    "MOVE"
                };
                e.raw(format!("{w} {set} ").as_bytes());
                mbox(&mut e, m);
            }
        }
        e.finish()
    }
}
