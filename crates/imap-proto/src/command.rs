//! Client commands: the session and mailbox commands of RFC 3501/9051
//! (FETCH, STORE, SEARCH and APPEND follow in the next step of this crate).

use std::borrow::Cow;

use crate::core::{
    Encoder, PResult, SyntaxError, Tag, astring, atom, atom_bytes, encode_paren, number64, sp,
    string, tag, upper,
};
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

    /// The empty name: only in the `LIST` reply that tells the hierarchy
    /// delimiter (`* LIST (\\Noselect) "/" ""`, RFC 9051 §6.3.9); no
    /// command takes it.
    pub fn list_root() -> Mailbox {
        Mailbox(String::new())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is [`Mailbox::list_root`].
    pub fn is_list_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `line` (CRLF included) is the `DONE` that ends IDLE (RFC 2177,
/// RFC 9051 §6.3.13), in any case.
///
/// ```
/// assert!(imap_proto::is_idle_done(b"done\r\n"));
/// assert!(!imap_proto::is_idle_done(b"DONE \r\n"));
/// ```
pub fn is_idle_done(line: &[u8]) -> bool {
    line.len() == 6 && line[..4].eq_ignore_ascii_case(b"DONE") && &line[4..] == b"\r\n"
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
    /// `MAILBOXID` (RFC 8474 OBJECTID): answered in
    /// `Response::MailboxStatus::mailbox_id`, not as a number.
    MailboxId,
}

const STATUS_ITEMS: [(StatusItem, &str); 9] = [
    (StatusItem::Messages, "MESSAGES"),
    (StatusItem::Recent, "RECENT"),
    (StatusItem::UidNext, "UIDNEXT"),
    (StatusItem::UidValidity, "UIDVALIDITY"),
    (StatusItem::Unseen, "UNSEEN"),
    (StatusItem::Deleted, "DELETED"),
    (StatusItem::Size, "SIZE"),
    (StatusItem::HighestModSeq, "HIGHESTMODSEQ"),
    (StatusItem::MailboxId, "MAILBOXID"),
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
pub enum CommandBody<'a> {
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
        username: Cow<'a, [u8]>,
        /// The password.
        password: Cow<'a, [u8]>,
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
    /// `SELECT mailbox [(CONDSTORE QRESYNC (…))]`
    Select {
        /// The mailbox.
        mailbox: Mailbox,
        /// `CONDSTORE` given.
        condstore: bool,
        /// `QRESYNC (…)` given (RFC 7162 §3.2.5).
        qresync: Option<QResync>,
    },
    /// `EXAMINE mailbox [(CONDSTORE QRESYNC (…))]`
    Examine {
        /// The mailbox.
        mailbox: Mailbox,
        /// `CONDSTORE` given.
        condstore: bool,
        /// `QRESYNC (…)` given (RFC 7162 §3.2.5).
        qresync: Option<QResync>,
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
    /// `LIST [(select-opts)] reference pattern [RETURN (return-opts)]`, with
    /// the LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE
    /// (RFC 6154) options.
    List {
        /// Selection options; empty for a plain LIST.
        select: Vec<ListSelect>,
        /// The reference name.
        reference: String,
        /// The patterns (`*` and `%` wildcards): one, or several in
        /// parentheses (LIST-EXTENDED).
        patterns: Vec<String>,
        /// Return options; empty for a plain LIST.
        ret: Vec<ListReturn>,
    },
    /// `LSUB reference pattern`
    Lsub {
        /// The reference name.
        reference: String,
        /// The pattern.
        pattern: String,
    },
    /// `GETQUOTA root` (RFC 9208).
    GetQuota(String),
    /// `GETQUOTAROOT mailbox` (RFC 9208).
    GetQuotaRoot(Mailbox),
    /// `SETQUOTA root (resource limit …)` (RFC 9208).
    SetQuota {
        /// The quota root.
        root: String,
        /// Resource names (`STORAGE`, `MESSAGE`, …) and limits.
        limits: Vec<(String, u64)>,
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
    /// `COMPRESS mechanism` (RFC 4978), the mechanism upper-cased.
    Compress(String),
    /// `CANCELUPDATE "tag" …` (RFC 5267): stop updating those searches.
    CancelUpdate(Vec<String>),
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
        /// CONDSTORE `UNCHANGEDSINCE` (0 to 2^63-1, as every mod-sequence).
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
        items: Vec<FetchItem<'a>>,
        /// CONDSTORE `CHANGEDSINCE` (up to 2^63-1).
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
        keys: Vec<SearchKey<'a>>,
    },
    /// `[UID] SORT [RETURN (opt…)] (criteria) charset key…` (RFC 5256;
    /// `RETURN` is ESORT, RFC 5267).
    Sort {
        /// UIDs rather than message numbers in the answer.
        uid: bool,
        /// ESORT `RETURN` options: `None` asks for `* SORT`, `Some` for
        /// `* ESEARCH` (MIN/MAX the first/last in sort order, ALL in sort
        /// order).
        ret: Option<Vec<SearchReturn>>,
        /// The order, most significant first (at least one).
        criteria: Vec<SortCriterion>,
        /// The charset of the search keys' strings.
        charset: String,
        /// Which messages (all keys must match).
        keys: Vec<SearchKey<'a>>,
    },
    /// `[UID] THREAD algorithm charset key…` (RFC 5256).
    Thread {
        /// UIDs rather than message numbers in the answer.
        uid: bool,
        /// How messages are threaded.
        algorithm: ThreadAlgorithm,
        /// The charset of the search keys' strings.
        charset: String,
        /// Which messages (all keys must match).
        keys: Vec<SearchKey<'a>>,
    },
    /// `APPEND mailbox [(flags)] [date-time] literal [SP …]`: one message,
    /// or several with MULTIAPPEND (RFC 3502), appended all or none.
    Append {
        /// The target.
        mailbox: Mailbox,
        /// The messages, in order; never empty.
        messages: Vec<AppendMessage<'a>>,
    },
    /// `ID (…)` / `ID NIL` (RFC 2971): the client's field/value pairs.
    Id(Option<Vec<crate::response::IdField<'static>>>),
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

/// A LIST selection option (RFC 5258 §3.1, RFC 6154 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListSelect {
    /// `SUBSCRIBED`: only subscribed names.
    Subscribed,
    /// `REMOTE`: include remote mailboxes.
    Remote,
    /// `RECURSIVEMATCH`: report parents of matches (needs another option).
    RecursiveMatch,
    /// `SPECIAL-USE`: only mailboxes with a special-use attribute.
    SpecialUse,
}

impl ListSelect {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        LIST_SELECT
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("", |(_, name)| name)
    }
}

/// A LIST return option (RFC 5258 §3.2, RFC 5819, RFC 6154 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListReturn {
    /// `SUBSCRIBED`: add `\Subscribed` where it applies.
    Subscribed,
    /// `CHILDREN`: add `\HasChildren` / `\HasNoChildren`.
    Children,
    /// `SPECIAL-USE`: add the special-use attributes.
    SpecialUse,
    /// `STATUS (items)` (LIST-STATUS): a STATUS response per listed mailbox.
    Status(Vec<StatusItem>),
}

/// `(` item *(SP item) `)`, or `()` when `empty_ok`.
pub(crate) fn paren_list<'a, T>(
    i: &'a [u8],
    empty_ok: bool,
    item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("expected ("))?;
    if empty_ok && let Some(r) = r.strip_prefix(b")") {
        return Ok((r, Vec::new()));
    }
    let (r, out) = sp_separated(r, item)?;
    let r = r
        .strip_prefix(b")")
        .ok_or(SyntaxError::Invalid("expected )"))?;
    Ok((r, out))
}

/// A keyword from `table`, matched case-insensitively; no repeats allowed
/// in one list, which the caller checks.
fn keyword<'a, T: Copy>(i: &'a [u8], table: &[(T, &str)], what: &'static str) -> PResult<'a, T> {
    let n = i
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))
        .unwrap_or(i.len());
    table
        .iter()
        .find(|(_, name)| name.as_bytes().eq_ignore_ascii_case(&i[..n]))
        .map(|(v, _)| (&i[n..], *v))
        .ok_or(SyntaxError::Invalid(what))
}

/// `(att att …)` of STATUS items.
fn status_items(i: &[u8]) -> PResult<'_, Vec<StatusItem>> {
    paren_list(i, false, |r| {
        keyword(r, &STATUS_ITEMS, "unknown STATUS item")
    })
}

fn encode_status_items(e: &mut Encoder, items: &[StatusItem]) {
    encode_paren(e, items, |e, it| {
        e.raw(status_item_name(*it).as_bytes());
    });
}

const LIST_SELECT: &[(ListSelect, &str)] = &[
    (ListSelect::Subscribed, "SUBSCRIBED"),
    (ListSelect::Remote, "REMOTE"),
    (ListSelect::RecursiveMatch, "RECURSIVEMATCH"),
    (ListSelect::SpecialUse, "SPECIAL-USE"),
];

fn list_return(i: &[u8]) -> PResult<'_, ListReturn> {
    if let Some(r) = prefix_ci(i, b"STATUS ") {
        let (r, items) = status_items(r)?;
        return Ok((r, ListReturn::Status(items)));
    }
    let (r, n) = keyword(
        i,
        &[(0, "SUBSCRIBED"), (1, "CHILDREN"), (2, "SPECIAL-USE")],
        "unknown LIST return option",
    )?;
    let opt = match n {
        0 => ListReturn::Subscribed,
        1 => ListReturn::Children,
        _ => ListReturn::SpecialUse,
    };
    Ok((r, opt))
}

fn has_repeats<T: PartialEq>(v: &[T]) -> bool {
    v.iter().enumerate().any(|(n, a)| v[..n].contains(a))
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
pub struct AppendMessage<'a> {
    /// Initial flags.
    pub flags: Vec<Flag>,
    /// Internal date, as sent: exactly `dd-Mon-yyyy hh:mm:ss +zzzz` (day
    /// space- or zero-padded); the parser refuses anything else, and an
    /// encoder given anything else produces a command servers refuse.
    pub date: Option<String>,
    /// The message.
    pub message: Cow<'a, [u8]>,
    /// Sent as `UTF8 (~{n})` (RFC 6855 §4): the message may carry UTF-8
    /// header fields. Parsed only once UTF8=ACCEPT is enabled.
    pub utf8: bool,
    /// `CATENATE (…)` (RFC 4469): the message is these parts joined, and
    /// `message` is empty.
    pub catenate: Option<Vec<CatenatePart<'a>>>,
}

/// One part of a `CATENATE` message (RFC 4469).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatenatePart<'a> {
    /// `URL "…"`: a message or a section of one, by IMAP URL (RFC 5092).
    Url(String),
    /// `TEXT literal`: octets as they are.
    Text(Cow<'a, [u8]>),
}

impl CatenatePart<'_> {
    /// The same part owning its bytes.
    pub fn into_owned(self) -> CatenatePart<'static> {
        match self {
            CatenatePart::Url(u) => CatenatePart::Url(u),
            CatenatePart::Text(t) => CatenatePart::Text(Cow::Owned(t.into_owned())),
        }
    }
}

/// `"CATENATE" SP "(" cat-part *(SP cat-part) ")"`, after the keyword.
fn catenate(i: &[u8]) -> PResult<'_, Vec<CatenatePart<'_>>> {
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("CATENATE needs ("))?;
    let mut parts = Vec::new();
    loop {
        let (r2, word) = atom(r)?;
        let (r2, _) = sp(r2)?;
        let (r2, part) = if word.eq_ignore_ascii_case("URL") {
            let (r3, u) = astring(r2)?;
            let u = String::from_utf8(u.into_owned())
                .map_err(|_| SyntaxError::Invalid("URL is not UTF-8"))?;
            (r3, CatenatePart::Url(u))
        } else if word.eq_ignore_ascii_case("TEXT") {
            if !(r2.first() == Some(&b'{') || r2.starts_with(b"~{")) {
                return Err(SyntaxError::Invalid("TEXT needs a literal"));
            }
            let (r3, t) = string(r2)?;
            (r3, CatenatePart::Text(t))
        } else {
            return Err(SyntaxError::Invalid("CATENATE parts are URL or TEXT"));
        };
        parts.push(part);
        match r2.first() {
            Some(b')') => return Ok((&r2[1..], parts)),
            Some(b' ') => r = &r2[1..],
            _ => return Err(SyntaxError::Invalid("CATENATE part list")),
        }
    }
}

impl<'a> AppendMessage<'a> {
    /// A message with no flags and no date (the server picks the time).
    pub fn new(message: impl Into<Cow<'a, [u8]>>) -> Self {
        Self {
            flags: Vec::new(),
            date: None,
            message: message.into(),
            utf8: false,
            catenate: None,
        }
    }
}

impl AppendMessage<'_> {
    /// The same message owning its bytes.
    pub fn into_owned(self) -> AppendMessage<'static> {
        AppendMessage {
            flags: self.flags,
            date: self.date,
            message: Cow::Owned(self.message.into_owned()),
            utf8: self.utf8,
            catenate: self
                .catenate
                .map(|v| v.into_iter().map(CatenatePart::into_owned).collect()),
        }
    }
}

/// `[(flags) SP] [date-time SP] literal`
fn append_message(i: &[u8], utf8_accept: bool) -> PResult<'_, AppendMessage<'_>> {
    let mut r = i;
    let mut flags = Vec::new();
    if r.first() == Some(&b'(') {
        let (r2, f) = items::flag_list(r)?;
        flags = f;
        r = sp(r2)?.0;
    }
    let mut date = None;
    if r.first() == Some(&b'"') {
        let (r2, d) = items::date_time(r)?;
        date = Some(d);
        r = sp(r2)?.0;
    }
    if utf8_accept
        && r.get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"UTF8 ("))
    {
        // RFC 6855 §4: `UTF8 (literal8)`.
        if !r[6..].starts_with(b"~{") {
            return Err(SyntaxError::Invalid("UTF8 needs a literal8"));
        }
        let (r, message) = string(&r[6..])?;
        let r = r
            .strip_prefix(b")")
            .ok_or(SyntaxError::Invalid("UTF8 data end"))?;
        return Ok((
            r,
            AppendMessage {
                flags,
                date,
                message,
                utf8: true,
                catenate: None,
            },
        ));
    }
    if r.get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"CATENATE "))
    {
        let (r, parts) = catenate(&r[9..])?;
        return Ok((
            r,
            AppendMessage {
                flags,
                date,
                message: Cow::Borrowed(b""),
                utf8: false,
                catenate: Some(parts),
            },
        ));
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
            message,
            utf8: false,
            catenate: None,
        },
    ))
}

/// What a `SORT` orders by (RFC 5256 §3; `DISPLAYFROM`/`DISPLAYTO` from
/// RFC 5957).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// `ARRIVAL`: the internal date.
    Arrival,
    /// `CC`: the first Cc address's mailbox (local part).
    Cc,
    /// `DATE`: the Date header (the internal date when it has none).
    Date,
    /// `FROM`: the first From address's mailbox (local part).
    From,
    /// `SIZE`: RFC822.SIZE.
    Size,
    /// `SUBJECT`: the base subject (RFC 5256 §2.1).
    Subject,
    /// `TO`: the first To address's mailbox (local part).
    To,
    /// `DISPLAYFROM`: the first From address's display name, else its
    /// address.
    DisplayFrom,
    /// `DISPLAYTO`: the same for To.
    DisplayTo,
}

impl SortKey {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        name_in(SORT_KEYS, self)
    }
}

const SORT_KEYS: &[(SortKey, &str)] = &[
    (SortKey::Arrival, "ARRIVAL"),
    (SortKey::Cc, "CC"),
    (SortKey::Date, "DATE"),
    (SortKey::From, "FROM"),
    (SortKey::Size, "SIZE"),
    (SortKey::Subject, "SUBJECT"),
    (SortKey::To, "TO"),
    (SortKey::DisplayFrom, "DISPLAYFROM"),
    (SortKey::DisplayTo, "DISPLAYTO"),
];

/// A THREAD algorithm (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    /// `ORDEREDSUBJECT`: by base subject, then date ("poor man's threading").
    OrderedSubject,
    /// `REFERENCES`: by Message-ID, In-Reply-To and References.
    References,
}

impl ThreadAlgorithm {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        name_in(THREAD_ALGORITHMS, self)
    }
}

const THREAD_ALGORITHMS: &[(ThreadAlgorithm, &str)] = &[
    (ThreadAlgorithm::OrderedSubject, "ORDEREDSUBJECT"),
    (ThreadAlgorithm::References, "REFERENCES"),
];

/// The wire name of `value` in a keyword table (the same tables parse).
fn name_in<T: Copy + PartialEq>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("", |(_, name)| name)
}

/// One sort criterion: a key, optionally `REVERSE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    /// Descending instead of ascending.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// ` charset key…` to the end of a SORT or THREAD command.
fn charset_and_keys(r: &[u8]) -> Result<(String, Vec<SearchKey<'_>>), SyntaxError> {
    let (r, _) = sp(r)?;
    let (r, c) = astring(r)?;
    let charset = String::from_utf8(c.into_owned()).map_err(|_| SyntaxError::Invalid("charset"))?;
    let (r, _) = sp(r)?;
    let (r, keys) = sp_separated(r, |r| items::search_key(r, 0))?;
    end(r)?;
    Ok((charset, keys))
}

fn encode_charset_and_keys(e: &mut Encoder, charset: &str, keys: &[SearchKey<'_>]) {
    e.raw(b" ").astring(charset.as_bytes());
    for k in keys {
        e.raw(b" ");
        items::encode_search_key(e, k);
    }
}

/// `(criterion …)` after `SORT `.
fn sort_criteria(i: &[u8]) -> PResult<'_, Vec<SortCriterion>> {
    let (r, words) = paren_list(i, false, |r| {
        if let Some(rest) = prefix_ci(r, b"REVERSE ") {
            let (r2, key) = keyword(rest, SORT_KEYS, "sort key")?;
            return Ok((r2, SortCriterion { reverse: true, key }));
        }
        let (r2, key) = keyword(r, SORT_KEYS, "sort key")?;
        Ok((
            r2,
            SortCriterion {
                reverse: false,
                key,
            },
        ))
    })?;
    Ok((r, words))
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
    /// `UPDATE`: keep the result current, telling the client what enters
    /// and leaves it (RFC 5267 CONTEXT=SEARCH).
    Update,
    /// `PARTIAL first:last`: only these positions of the result, 1-based;
    /// negative ones count from the end, `-1` the last (RFC 9394, RFC
    /// 5267). Both have the same sign; the order as sent.
    Partial(i32, i32),
}

impl SearchReturn {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchReturn::Partial(..) => "PARTIAL",
            other => name_in(SEARCH_RETURNS, other),
        }
    }

    fn encode(self, e: &mut Encoder) {
        e.raw(self.as_str().as_bytes());
        if let SearchReturn::Partial(a, b) = self {
            e.raw(format!(" {a}:{b}").as_bytes());
        }
    }
}

/// `partial-range`: `n:m` with both positive or both negative, never 0.
fn partial_range(i: &[u8]) -> PResult<'_, (i32, i32)> {
    fn one(i: &[u8]) -> PResult<'_, i32> {
        let (neg, r) = match i.strip_prefix(b"-") {
            Some(r) => (true, r),
            None => (false, i),
        };
        let (r, n) = crate::core::nz_number(r)?;
        let n = i32::try_from(n).map_err(|_| SyntaxError::Invalid("PARTIAL range"))?;
        Ok((r, if neg { -n } else { n }))
    }
    let (r, a) = one(i)?;
    let r = r
        .strip_prefix(b":")
        .ok_or(SyntaxError::Invalid("PARTIAL range"))?;
    let (r, b) = one(r)?;
    if (a < 0) != (b < 0) {
        return Err(SyntaxError::Invalid("PARTIAL range mixes signs"));
    }
    Ok((r, (a, b)))
}

const SEARCH_RETURNS: &[(SearchReturn, &str)] = &[
    (SearchReturn::Min, "MIN"),
    (SearchReturn::Max, "MAX"),
    (SearchReturn::All, "ALL"),
    (SearchReturn::Count, "COUNT"),
    (SearchReturn::Save, "SAVE"),
    (SearchReturn::Update, "UPDATE"),
];

/// An optional `RETURN (opt …) ` at the start of a SEARCH or SORT.
fn return_options(r: &[u8]) -> PResult<'_, Option<Vec<SearchReturn>>> {
    match prefix_ci(r, b"RETURN ") {
        Some(r2) => {
            let (r3, opts) = search_return(r2)?;
            Ok((sp(r3)?.0, Some(opts)))
        }
        None => Ok((r, None)),
    }
}

/// `RETURN (opt opt …)` after `SEARCH `; the rest follows a space.
fn search_return(i: &[u8]) -> PResult<'_, Vec<SearchReturn>> {
    let (r, opts) = paren_list(i, true, |r| match prefix_ci(r, b"PARTIAL ") {
        Some(r2) => partial_range(r2).map(|(r3, (a, b))| (r3, SearchReturn::Partial(a, b))),
        None => keyword(r, SEARCH_RETURNS, "search return option"),
    })?;
    let partials = opts
        .iter()
        .filter(|o| matches!(o, SearchReturn::Partial(..)))
        .count();
    if has_repeats(&opts) || partials > 1 {
        return Err(SyntaxError::Invalid("repeated search return option"));
    }
    Ok((r, opts))
}

fn prefix_ci<'a>(i: &'a [u8], p: &[u8]) -> Option<&'a [u8]> {
    (i.len() >= p.len() && i[..p.len()].eq_ignore_ascii_case(p)).then(|| &i[p.len()..])
}

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// The tag.
    pub tag: Tag,
    /// What it asks.
    pub body: CommandBody<'a>,
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

/// What a client remembers of a mailbox when it selects it with QRESYNC
/// (RFC 7162 §3.2.5), so the server can send only what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResync {
    /// The UIDVALIDITY the client knows.
    pub uid_validity: u32,
    /// The last HIGHESTMODSEQ the client saw (1 to 2^63-1).
    pub mod_seq: u64,
    /// The UIDs the client knows, if it says.
    pub known_uids: Option<SequenceSet>,
    /// Message numbers and the UIDs they had (`seq-match-data`), to find
    /// where the client's view went stale.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

fn qresync(i: &[u8]) -> PResult<'_, QResync> {
    let r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("QRESYNC"))?;
    let (r, uid_validity) = crate::core::nz_number(r)?;
    let (r, _) = sp(r)?;
    // `mod-sequence-value`: not 0.
    let (mut r, mod_seq) = number64(r)?;
    if mod_seq == 0 {
        return Err(SyntaxError::Number);
    }
    let mut known_uids = None;
    let mut seq_match = None;
    if let Some(r2) = r.strip_prefix(b" ")
        && r2.first().is_some_and(u8::is_ascii_digit)
    {
        let (r3, s) = seq::parse(r2)?;
        known_uids = Some(s);
        r = r3;
    }
    if let Some(r2) = r.strip_prefix(b" (") {
        let (r3, a) = seq::parse(r2)?;
        let (r3, _) = sp(r3)?;
        let (r3, b) = seq::parse(r3)?;
        r = r3
            .strip_prefix(b")")
            .ok_or(SyntaxError::Invalid("QRESYNC seq-match-data"))?;
        seq_match = Some((a, b));
    }
    let r = r
        .strip_prefix(b")")
        .ok_or(SyntaxError::Invalid("QRESYNC"))?;
    Ok((
        r,
        QResync {
            uid_validity,
            mod_seq,
            known_uids,
            seq_match,
        },
    ))
}

/// `[SP "(" select-param *(SP select-param) ")"]`: CONDSTORE and QRESYNC,
/// each at most once.
fn select_params(i: &[u8]) -> PResult<'_, (bool, Option<QResync>)> {
    let Some(mut r) = i.strip_prefix(b" (") else {
        return Ok((i, (false, None)));
    };
    let (mut condstore, mut q) = (false, None);
    loop {
        let (r2, w) = atom_bytes(r)?;
        match &*upper(w) {
            b"CONDSTORE" if !condstore => {
                condstore = true;
                r = r2;
            }
            b"QRESYNC" if q.is_none() => {
                let (r3, v) = qresync(sp(r2)?.0)?;
                q = Some(v);
                r = r3;
            }
            _ => return Err(SyntaxError::Invalid("SELECT parameter")),
        }
        if let Some(rest) = r.strip_prefix(b")") {
            return Ok((rest, (condstore, q)));
        }
        r = sp(r)?.0;
    }
}

fn encode_select_params(e: &mut Encoder, condstore: bool, q: &Option<QResync>) {
    match (condstore, q) {
        (false, None) => return,
        (true, None) => {
            e.raw(b" (CONDSTORE)");
            return;
        }
        (true, Some(_)) => e.raw(b" (CONDSTORE QRESYNC ("),
        (false, Some(_)) => e.raw(b" (QRESYNC ("),
    };
    let Some(q) = q else { return };
    e.number(u64::from(q.uid_validity))
        .raw(b" ")
        .number(q.mod_seq);
    if let Some(k) = &q.known_uids {
        e.raw(b" ").raw(k.to_string().as_bytes());
    }
    if let Some((a, b)) = &q.seq_match {
        e.raw(b" (")
            .raw(a.to_string().as_bytes())
            .raw(b" ")
            .raw(b.to_string().as_bytes())
            .raw(b")");
    }
    e.raw(b"))");
}

fn end(i: &[u8]) -> Result<(), SyntaxError> {
    if i == b"\r\n" {
        Ok(())
    } else {
        Err(SyntaxError::Invalid("expected end of command"))
    }
}

impl Command<'_> {
    /// The same command owning its bytes, to keep it after the input
    /// buffer is gone.
    pub fn into_owned(self) -> Command<'static> {
        Command {
            tag: self.tag,
            body: self.body.into_owned(),
        }
    }
}

impl CommandBody<'_> {
    /// The same command body owning its bytes.
    pub fn into_owned(self) -> CommandBody<'static> {
        use CommandBody as C;
        let own = |b: Cow<'_, [u8]>| Cow::Owned(b.into_owned());
        match self {
            C::Capability => C::Capability,
            C::Noop => C::Noop,
            C::Logout => C::Logout,
            C::StartTls => C::StartTls,
            C::Login { username, password } => C::Login {
                username: own(username),
                password: own(password),
            },
            C::Authenticate {
                mechanism,
                initial_response,
            } => C::Authenticate {
                mechanism,
                initial_response,
            },
            C::Enable(c) => C::Enable(c),
            C::Select {
                mailbox,
                condstore,
                qresync,
            } => C::Select {
                mailbox,
                condstore,
                qresync,
            },
            C::Examine {
                mailbox,
                condstore,
                qresync,
            } => C::Examine {
                mailbox,
                condstore,
                qresync,
            },
            C::Create(m) => C::Create(m),
            C::Delete(m) => C::Delete(m),
            C::Rename(a, b) => C::Rename(a, b),
            C::Subscribe(m) => C::Subscribe(m),
            C::Unsubscribe(m) => C::Unsubscribe(m),
            C::List {
                select,
                reference,
                patterns,
                ret,
            } => C::List {
                select,
                reference,
                patterns,
                ret,
            },
            C::Lsub { reference, pattern } => C::Lsub { reference, pattern },
            C::Namespace => C::Namespace,
            C::GetQuota(r) => C::GetQuota(r),
            C::GetQuotaRoot(m) => C::GetQuotaRoot(m),
            C::SetQuota { root, limits } => C::SetQuota { root, limits },
            C::Status { mailbox, items } => C::Status { mailbox, items },
            C::Idle => C::Idle,
            C::Check => C::Check,
            C::Close => C::Close,
            C::Unselect => C::Unselect,
            C::Compress(m) => C::Compress(m),
            C::CancelUpdate(t) => C::CancelUpdate(t),
            C::Expunge(s) => C::Expunge(s),
            C::Copy { uid, set, mailbox } => C::Copy { uid, set, mailbox },
            C::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            } => C::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            },
            C::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => C::Fetch {
                uid,
                set,
                items: items.into_iter().map(FetchItem::into_owned).collect(),
                changed_since,
                vanished,
            },
            C::Search {
                uid,
                ret,
                charset,
                keys,
            } => C::Search {
                uid,
                ret,
                charset,
                keys: keys.into_iter().map(SearchKey::into_owned).collect(),
            },
            C::Sort {
                uid,
                ret,
                criteria,
                charset,
                keys,
            } => C::Sort {
                uid,
                ret,
                criteria,
                charset,
                keys: keys.into_iter().map(SearchKey::into_owned).collect(),
            },
            C::Thread {
                uid,
                algorithm,
                charset,
                keys,
            } => C::Thread {
                uid,
                algorithm,
                charset,
                keys: keys.into_iter().map(SearchKey::into_owned).collect(),
            },
            C::Append { mailbox, messages } => C::Append {
                mailbox,
                messages: messages
                    .into_iter()
                    .map(AppendMessage::into_owned)
                    .collect(),
            },
            C::Id(f) => C::Id(f),
            C::Move { uid, set, mailbox } => C::Move { uid, set, mailbox },
        }
    }
}

impl<'a> Command<'a> {
    /// Parses one framed command (CRLF included), e.g. from
    /// [`crate::Framer`]. `utf8` when UTF8=ACCEPT is enabled (mailbox
    /// names are then UTF-8, not modified UTF-7, and `APPEND … UTF8 (…)`
    /// is allowed).
    ///
    /// Unlike [`crate::Response::parse`], 8-bit bytes in quoted strings
    /// are accepted even without UTF8=ACCEPT: deployed clients send UTF-8
    /// passwords in `LOGIN` that way, and refusing them would lock users
    /// out. Mailbox names stay strict.
    pub fn parse(input: &'a [u8], utf8: bool) -> Result<Command<'a>, CommandError> {
        let (i, t) = tag(input).map_err(|error| CommandError { tag: None, error })?;
        let err = |error| CommandError {
            tag: Some(t.clone()),
            error,
        };
        let body = Self::body(i, utf8).map_err(err)?;
        Ok(Command { tag: t, body })
    }

    fn body(i: &'a [u8], utf8: bool) -> Result<CommandBody<'a>, SyntaxError> {
        let (i, _) = sp(i)?;
        let (mut i, word) = atom_bytes(i)?;
        let mut uid = false;
        let mut word = upper(word);
        if &*word == b"UID" {
            uid = true;
            let (r, _) = sp(i)?;
            let (r, w) = atom_bytes(r)?;
            word = upper(w);
            i = r;
        }
        let simple = |b: CommandBody<'a>| end(i).map(|_| b);
        let body = match (uid, &*word) {
            (false, b"CAPABILITY") => simple(CommandBody::Capability)?,
            (false, b"NOOP") => simple(CommandBody::Noop)?,
            (false, b"LOGOUT") => simple(CommandBody::Logout)?,
            (false, b"STARTTLS") => simple(CommandBody::StartTls)?,
            (false, b"NAMESPACE") => simple(CommandBody::Namespace)?,
            (false, b"IDLE") => simple(CommandBody::Idle)?,
            (false, b"CHECK") => simple(CommandBody::Check)?,
            (false, b"CLOSE") => simple(CommandBody::Close)?,
            (false, b"UNSELECT") => simple(CommandBody::Unselect)?,
            (false, b"CANCELUPDATE") => {
                let mut tags = Vec::new();
                let mut r = i;
                while let Ok((r2, ())) = sp(r) {
                    let (r3, t) = string(r2)?;
                    tags.push(
                        String::from_utf8(t.into_owned())
                            .map_err(|_| SyntaxError::Invalid("CANCELUPDATE tag"))?,
                    );
                    r = r3;
                }
                end(r)?;
                if tags.is_empty() {
                    return Err(SyntaxError::Invalid("CANCELUPDATE needs a tag"));
                }
                CommandBody::CancelUpdate(tags)
            }
            (false, b"COMPRESS") => {
                let (r, _) = sp(i)?;
                let (r, m) = atom(r)?;
                end(r)?;
                CommandBody::Compress(m.to_ascii_uppercase())
            }
            (false, b"EXPUNGE") => simple(CommandBody::Expunge(None))?,
            (true, b"EXPUNGE") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                end(r)?;
                CommandBody::Expunge(Some(set))
            }
            (false, b"LOGIN") => {
                let (r, _) = sp(i)?;
                let (r, u) = astring(r)?;
                let (r, _) = sp(r)?;
                let (r, p) = astring(r)?;
                end(r)?;
                CommandBody::Login {
                    username: u,
                    password: p,
                }
            }
            (false, b"AUTHENTICATE") => {
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
            (false, b"ENABLE") => {
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
            (false, b"SELECT" | b"EXAMINE") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, (cs, q)) = select_params(r)?;
                end(r)?;
                if &*word == b"SELECT" {
                    CommandBody::Select {
                        mailbox: m,
                        condstore: cs,
                        qresync: q,
                    }
                } else {
                    CommandBody::Examine {
                        mailbox: m,
                        condstore: cs,
                        qresync: q,
                    }
                }
            }
            (false, b"CREATE" | b"DELETE" | b"SUBSCRIBE" | b"UNSUBSCRIBE") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                end(r)?;
                match &*word {
                    b"CREATE" => CommandBody::Create(m),
                    b"DELETE" => CommandBody::Delete(m),
                    b"SUBSCRIBE" => CommandBody::Subscribe(m),
                    _ => CommandBody::Unsubscribe(m),
                }
            }
            (false, b"RENAME") => {
                let (r, _) = sp(i)?;
                let (r, a) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let (r, b) = mailbox(r, utf8)?;
                end(r)?;
                CommandBody::Rename(a, b)
            }
            (false, b"LIST") => {
                let (mut r, _) = sp(i)?;
                let mut select = Vec::new();
                if r.first() == Some(&b'(') {
                    let (r2, opts) = paren_list(r, true, |r| {
                        keyword(r, LIST_SELECT, "unknown LIST selection option")
                    })?;
                    // RFC 5258 §3.1: RECURSIVEMATCH alone is an error.
                    if has_repeats(&opts)
                        || (opts.contains(&ListSelect::RecursiveMatch)
                            && !opts.iter().any(|o| {
                                !matches!(o, ListSelect::RecursiveMatch | ListSelect::Remote)
                            }))
                    {
                        return Err(SyntaxError::Invalid("LIST selection options"));
                    }
                    select = opts;
                    r = sp(r2)?.0;
                }
                let (r, reference) = text_arg(r)?;
                let (r, _) = sp(r)?;
                let (mut r, patterns) = if r.first() == Some(&b'(') {
                    paren_list(r, false, text_arg)?
                } else {
                    let (r, p) = text_arg(r)?;
                    (r, vec![p])
                };
                let mut ret = Vec::new();
                if let Some(r2) = prefix_ci(r, b" RETURN ") {
                    let (r3, opts) = paren_list(r2, true, list_return)?;
                    if has_repeats(&opts) {
                        return Err(SyntaxError::Invalid("repeated LIST return option"));
                    }
                    ret = opts;
                    r = r3;
                }
                end(r)?;
                CommandBody::List {
                    select,
                    reference,
                    patterns,
                    ret,
                }
            }
            (false, b"LSUB") => {
                let (r, _) = sp(i)?;
                let (r, reference) = text_arg(r)?;
                let (r, _) = sp(r)?;
                let (r, pattern) = text_arg(r)?;
                end(r)?;
                CommandBody::Lsub { reference, pattern }
            }
            (false, b"GETQUOTA") => {
                let (r, _) = sp(i)?;
                let (r, root) = astring(r)?;
                end(r)?;
                CommandBody::GetQuota(String::from_utf8_lossy(&root).into_owned())
            }
            (false, b"GETQUOTAROOT") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                end(r)?;
                CommandBody::GetQuotaRoot(m)
            }
            (false, b"SETQUOTA") => {
                let (r, _) = sp(i)?;
                let (r, root) = astring(r)?;
                let (r, _) = sp(r)?;
                let (r, pairs) = paren_list(r, true, |r| {
                    let (r, name) = atom(r)?;
                    let (r, _) = sp(r)?;
                    let (r, n) = number64(r)?;
                    Ok((r, (name.to_ascii_uppercase(), n)))
                })?;
                end(r)?;
                CommandBody::SetQuota {
                    root: String::from_utf8_lossy(&root).into_owned(),
                    limits: pairs,
                }
            }
            (false, b"STATUS") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let (r, items) = status_items(r)?;
                end(r)?;
                CommandBody::Status { mailbox: m, items }
            }
            (_, b"COPY" | b"MOVE") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                let (r, _) = sp(r)?;
                let (r, m) = mailbox(r, utf8)?;
                end(r)?;
                if &*word == b"COPY" {
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
            (_, b"STORE") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                let (r, _) = sp(r)?;
                let (r, unchanged_since) = match prefix_ci(r, b"(UNCHANGEDSINCE ") {
                    Some(r2) => {
                        let (r3, n) = number64(r2)?;
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
            (_, b"FETCH") => {
                let (r, _) = sp(i)?;
                let (r, set) = seq::parse(r)?;
                let (r, _) = sp(r)?;
                let (r, items) = items::fetch_items(r)?;
                let (r, changed_since, vanished) = match prefix_ci(r, b" (CHANGEDSINCE ") {
                    Some(r2) => {
                        let (r3, n) = number64(r2)?;
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
            (_, b"SEARCH") => {
                let (r, _) = sp(i)?;
                let (mut r, ret) = return_options(r)?;
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
            (_, b"SORT") => {
                let (r, _) = sp(i)?;
                let (r, ret) = return_options(r)?;
                let (r, criteria) = sort_criteria(r)?;
                let (charset, keys) = charset_and_keys(r)?;
                CommandBody::Sort {
                    uid,
                    ret,
                    criteria,
                    charset,
                    keys,
                }
            }
            (_, b"THREAD") => {
                let (r, _) = sp(i)?;
                let (r, algorithm) = keyword(r, THREAD_ALGORITHMS, "thread algorithm")?;
                let (charset, keys) = charset_and_keys(r)?;
                CommandBody::Thread {
                    uid,
                    algorithm,
                    charset,
                    keys,
                }
            }
            (false, b"APPEND") => {
                let (r, _) = sp(i)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let (r, messages) = sp_separated(r, |r| append_message(r, utf8))?;
                end(r)?;
                CommandBody::Append {
                    mailbox: m,
                    messages,
                }
            }
            (false, b"ID") => {
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
                    pairs.push((Cow::Owned(k.into_owned()), v.map(Cow::Owned)));
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
        let mut e = Encoder::new(non_sync_literals).with_utf8(utf8);
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
            CommandBody::Compress(m) => {
                e.raw(b"COMPRESS ").raw(m.as_bytes());
            }
            CommandBody::CancelUpdate(tags) => {
                e.raw(b"CANCELUPDATE");
                for t in tags {
                    e.raw(b" ").string(t.as_bytes());
                }
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
                qresync,
            }
            | CommandBody::Examine {
                mailbox: m,
                condstore,
                qresync,
            } => {
                let w: &[u8] = if matches!(self.body, CommandBody::Select { .. }) {
                    b"SELECT "
                } else {
                    b"EXAMINE "
                };
                e.raw(w);
                mbox(&mut e, m);
                encode_select_params(&mut e, *condstore, qresync);
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
            CommandBody::List {
                select,
                reference,
                patterns,
                ret,
            } => {
                e.raw(b"LIST ");
                if !select.is_empty() {
                    encode_paren(&mut e, select, |e, o| {
                        e.raw(o.as_str().as_bytes());
                    });
                    e.raw(b" ");
                }
                e.string(reference.as_bytes()).raw(b" ");
                match &patterns[..] {
                    [one] => {
                        e.string(one.as_bytes());
                    }
                    many => encode_paren(&mut e, many, |e, p| {
                        e.string(p.as_bytes());
                    }),
                }
                if !ret.is_empty() {
                    e.raw(b" RETURN ");
                    encode_paren(&mut e, ret, |e, o| {
                        let word: &[u8] = match o {
                            ListReturn::Subscribed => b"SUBSCRIBED",
                            ListReturn::Children => b"CHILDREN",
                            ListReturn::SpecialUse => b"SPECIAL-USE",
                            ListReturn::Status(items) => {
                                e.raw(b"STATUS ");
                                return encode_status_items(e, items);
                            }
                        };
                        e.raw(word);
                    });
                }
            }
            CommandBody::Lsub { reference, pattern } => {
                e.raw(b"LSUB ")
                    .string(reference.as_bytes())
                    .raw(b" ")
                    .string(pattern.as_bytes());
            }
            CommandBody::GetQuota(root) => {
                e.raw(b"GETQUOTA ").astring(root.as_bytes());
            }
            CommandBody::GetQuotaRoot(m) => {
                e.raw(b"GETQUOTAROOT ");
                mbox(&mut e, m);
            }
            CommandBody::SetQuota { root, limits } => {
                e.raw(b"SETQUOTA ").astring(root.as_bytes()).raw(b" (");
                for (k, (name, n)) in limits.iter().enumerate() {
                    if k > 0 {
                        e.raw(b" ");
                    }
                    e.raw(name.as_bytes()).raw(b" ").number(*n);
                }
                e.raw(b")");
            }
            CommandBody::Status { mailbox: m, items } => {
                e.raw(b"STATUS ");
                mbox(&mut e, m);
                e.raw(b" ");
                encode_status_items(&mut e, items);
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
                    e.raw(b" RETURN ");
                    encode_paren(&mut e, opts, |e, o| o.encode(e));
                }
                if let Some(c) = charset {
                    e.raw(b" CHARSET ").astring(c.as_bytes());
                }
                for k in keys {
                    e.raw(b" ");
                    items::encode_search_key(&mut e, k);
                }
            }
            CommandBody::Sort {
                uid,
                ret,
                criteria,
                charset,
                keys,
            } => {
                if *uid {
                    e.raw(b"UID ");
                }
                e.raw(b"SORT ");
                if let Some(opts) = ret {
                    e.raw(b"RETURN ");
                    encode_paren(&mut e, opts, |e, o| o.encode(e));
                    e.raw(b" ");
                }
                encode_paren(&mut e, criteria, |e, c| {
                    if c.reverse {
                        e.raw(b"REVERSE ");
                    }
                    e.raw(c.key.as_str().as_bytes());
                });
                encode_charset_and_keys(&mut e, charset, keys);
            }
            CommandBody::Thread {
                uid,
                algorithm,
                charset,
                keys,
            } => {
                if *uid {
                    e.raw(b"UID ");
                }
                e.raw(b"THREAD ");
                e.raw(algorithm.as_str().as_bytes());
                encode_charset_and_keys(&mut e, charset, keys);
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
                    if let Some(parts) = &msg.catenate {
                        e.raw(b" CATENATE (");
                        for (k, part) in parts.iter().enumerate() {
                            if k > 0 {
                                e.raw(b" ");
                            }
                            match part {
                                CatenatePart::Url(u) => e.raw(b"URL ").string(u.as_bytes()),
                                CatenatePart::Text(t) => e.raw(b"TEXT ").literal(t),
                            };
                        }
                        e.raw(b")");
                    } else if msg.utf8 {
                        e.raw(b" UTF8 (").literal8(&msg.message).raw(b")");
                    } else {
                        e.raw(b" ").literal(&msg.message);
                    }
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
