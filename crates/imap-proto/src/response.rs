//! Server responses: status responses with response codes, continuation
//! requests, and the untagged data responses (CAPABILITY, ENABLED, FLAGS,
//! EXISTS, RECENT, EXPUNGE, VANISHED, LIST, LSUB, STATUS, SEARCH, ESEARCH,
//! ID, NAMESPACE, and FETCH with flags, UID, dates, sizes, MODSEQ,
//! ENVELOPE, BODY/BODYSTRUCTURE and body sections). Parsed responses
//! borrow their input; [`Quirks`] lets a client tolerate known server
//! deviations.

use std::borrow::Cow;

use crate::command::{Mailbox, StatusItem, encode_mailbox, mailbox, status_item, status_item_name};
use crate::core::{
    Encoder, PResult, SyntaxError, Tag, atom, encode_paren, number, number64, sp, string, tag,
    upper,
};
use crate::items::{self, Flag, Section};
use crate::seq::{self, SequenceSet};

/// Deviations of real servers that a client may choose to tolerate
/// ([`Response::parse_with`]); all off by default, which is RFC 9051 as
/// written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quirks {
    /// 8-bit bytes outside literals (raw UTF-8 or Latin-1 in quoted
    /// strings and text) without UTF8=ACCEPT.
    pub eight_bit: bool,
    /// Spaces before the final CRLF (`* SEARCH 2 5 \r\n`).
    pub trailing_space: bool,
    /// NIL for a body part's type, subtype or encoding (read as empty).
    pub nil_body_fields: bool,
}

impl Quirks {
    /// Every tolerance on.
    pub fn lenient() -> Quirks {
        Quirks {
            eight_bit: true,
            trailing_space: true,
            nil_body_fields: true,
        }
    }
}

/// OK, NO, BAD, PREAUTH or BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (untagged greeting)
    PreAuth,
    /// `BYE`
    Bye,
}

const STATUS_KINDS: [(StatusKind, &str); 5] = [
    (StatusKind::Ok, "OK"),
    (StatusKind::No, "NO"),
    (StatusKind::Bad, "BAD"),
    (StatusKind::PreAuth, "PREAUTH"),
    (StatusKind::Bye, "BYE"),
];

/// A response code in `[…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `PARSE`
    Parse,
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `CLOSED` (QRESYNC)
    Closed,
    /// `NOMODSEQ`
    NoModSeq,
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n`
    Unseen(u32),
    /// `HIGHESTMODSEQ n` (up to 2^63-1)
    HighestModSeq(u64),
    /// `MAILBOXID (id)` (RFC 8474), after SELECT and CREATE.
    MailboxId(String),
    /// `PERMANENTFLAGS (…)`; `\*` as `Flag::Extension("*")`.
    PermanentFlags(Vec<Flag>),
    /// `CAPABILITY …`
    Capability(Vec<String>),
    /// `APPENDUID validity uids`
    AppendUid(u32, SequenceSet),
    /// `COPYUID validity source-uids dest-uids`
    CopyUid(u32, SequenceSet, SequenceSet),
    /// `MODIFIED set` (CONDSTORE)
    Modified(SequenceSet),
    /// Any other code: name and the raw text after it.
    Other(String, Option<String>),
}

/// What a FETCH response carries for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchValue<'a> {
    /// `FLAGS (…)`
    Flags(Vec<Flag>),
    /// `UID n`
    Uid(u32),
    /// `INTERNALDATE "…"`
    InternalDate(Cow<'a, str>),
    /// `RFC822.SIZE n`
    Rfc822Size(u32),
    /// `MODSEQ (n)` (up to 2^63-1)
    ModSeq(u64),
    /// `EMAILID (id)` (RFC 8474): an objectid.
    EmailId(String),
    /// `THREADID (id)`, or `THREADID NIL` from a server that does not
    /// thread (RFC 8474).
    ThreadId(Option<String>),
    /// `ENVELOPE (…)`
    Envelope(Box<Envelope<'a>>),
    /// `BODY (…)`: the structure without extension data.
    Body(Box<BodyStructure<'a>>),
    /// `BODYSTRUCTURE (…)`: with extension data.
    BodyStructure(Box<BodyStructure<'a>>),
    /// `BODY[section]<origin> data` (data `None` for NIL)
    BodySection {
        /// The section.
        section: Section<'a>,
        /// The partial origin, if a partial was asked.
        origin: Option<u32>,
        /// The bytes.
        data: Option<Cow<'a, [u8]>>,
    },
    /// `BINARY[part]<origin>` (RFC 3516): a part with its content transfer
    /// encoding undone; sent as `~{n}` when it holds NUL.
    Binary {
        /// Part numbers (empty: the whole message).
        part: Vec<u32>,
        /// The partial's origin.
        origin: Option<u32>,
        /// The decoded bytes (`NIL` when `None`).
        data: Option<Cow<'a, [u8]>>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516): the decoded size.
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
        /// Octets.
        size: u32,
    },
    /// `RFC822`, `RFC822.HEADER` or `RFC822.TEXT` (IMAP4rev1): the
    /// message, its header or its text.
    Rfc822 {
        /// Which.
        part: Rfc822Part,
        /// The bytes (`NIL` when `None`).
        data: Option<Cow<'a, [u8]>>,
    },
}

/// Which `RFC822` item a FETCH response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rfc822Part {
    /// `RFC822`: the whole message (as `BODY[]`).
    Full,
    /// `RFC822.HEADER` (as `BODY.PEEK[HEADER]`).
    Header,
    /// `RFC822.TEXT` (as `BODY[TEXT]`).
    Text,
}

impl Rfc822Part {
    /// The item's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Rfc822Part::Full => "RFC822",
            Rfc822Part::Header => "RFC822.HEADER",
            Rfc822Part::Text => "RFC822.TEXT",
        }
    }
}

/// A body parameter (`"CHARSET" "UTF-8"`): name and value.
pub type Param<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// A NAMESPACE response extension: name and values.
pub type NamespaceExtension<'a> = (Cow<'a, [u8]>, Vec<Cow<'a, [u8]>>);

/// One ID field: name and value (NIL as `None`).
pub type IdField<'a> = (Cow<'a, [u8]>, Option<Cow<'a, [u8]>>);

/// One namespace of a NAMESPACE response (RFC 2342 §5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceEntry<'a> {
    /// The prefix, e.g. `#shared/`.
    pub prefix: Cow<'a, [u8]>,
    /// The hierarchy delimiter, `None` for a flat namespace.
    pub delimiter: Option<char>,
    /// Response extensions: name and values, e.g.
    /// `"X-PARAM" ("FLAG1" "FLAG2")` or RFC 5255 `TRANSLATION`.
    pub extensions: Vec<NamespaceExtension<'a>>,
}

/// A response line (with its literals).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response<'a> {
    /// `tag OK …`, `* OK …`, `* BYE …` …
    Status {
        /// The tag, `None` for untagged.
        tag: Option<Tag>,
        /// The kind.
        kind: StatusKind,
        /// The response code.
        code: Option<Code>,
        /// Human-readable text.
        text: String,
    },
    /// `+ text` (a continuation request; SASL challenges are base64 text).
    Continue(String),
    /// `* CAPABILITY …`
    Capability(Vec<String>),
    /// `* ENABLED …`
    Enabled(Vec<String>),
    /// `* FLAGS (…)`
    Flags(Vec<Flag>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids`
    Vanished {
        /// `(EARLIER)`
        earlier: bool,
        /// The UIDs.
        uids: SequenceSet,
    },
    /// `* LIST (attrs) "/" mailbox` (or LSUB)
    List {
        /// LSUB rather than LIST.
        lsub: bool,
        /// Name attributes (`\Noselect`, `\HasChildren`, `\Sent` …).
        attributes: Vec<String>,
        /// The hierarchy delimiter, `None` for NIL.
        delimiter: Option<char>,
        /// The mailbox.
        mailbox: Mailbox,
        /// LIST-EXTENDED data (RFC 5258 §9, `mbox-list-extended`): each
        /// item's tag and values, e.g. `CHILDINFO ("SUBSCRIBED")` or
        /// `OLDNAME ("old")`; empty for none.
        extended: Vec<(String, Vec<String>)>,
    },
    /// `* STATUS mailbox (items)`
    MailboxStatus {
        /// The mailbox.
        mailbox: Mailbox,
        /// Item values.
        items: Vec<(StatusItem, u64)>,
        /// `MAILBOXID (id)` (RFC 8474), written after the items.
        mailbox_id: Option<String>,
    },
    /// `* QUOTA root (resource usage limit …)` (RFC 9208).
    Quota {
        /// The quota root.
        root: String,
        /// Resource name (`STORAGE` in KiB, `MESSAGE`, …), usage, limit.
        resources: Vec<(String, u64, u64)>,
    },
    /// `* QUOTAROOT mailbox root…` (RFC 9208).
    QuotaRoot {
        /// The mailbox asked about.
        mailbox: Mailbox,
        /// Its quota roots (often one, `""`).
        roots: Vec<String>,
    },
    /// `* SEARCH n…` with the optional `(MODSEQ n)`
    Search(Vec<u32>, Option<u64>),
    /// `* SORT n…` (RFC 5256): numbers in the sorted order.
    Sort(Vec<u32>),
    /// `* THREAD (…)…` (RFC 5256): the threads, in order.
    Thread(Vec<Thread>),
    /// `* n FETCH (…)`
    Fetch(u32, Vec<FetchValue<'a>>),
    /// `* ID (…)` / `* ID NIL` (RFC 2971): field/value pairs.
    Id(Option<Vec<IdField<'a>>>),
    /// `* NAMESPACE personal other shared` (RFC 2342): each a list of
    /// namespaces, empty for NIL.
    Namespace([Vec<NamespaceEntry<'a>>; 3]),
    /// `* ESEARCH [(TAG "t")] [UID] name value …` (RFC 4731)
    ESearch {
        /// The tag of the SEARCH it answers.
        tag: Option<Cow<'a, [u8]>>,
        /// UIDs rather than message numbers.
        uid: bool,
        /// `MIN`, `MAX`, `COUNT`, `ALL`, `MODSEQ` … with their value text.
        items: Vec<(String, String)>,
    },
}

/// `tag value *(SP tag value) ")"` after `(`: LIST-EXTENDED data, each
/// value a string or a parenthesised list of strings.
fn list_extended(mut r: &[u8]) -> PResult<'_, Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    let text = |v: Cow<'_, [u8]>| String::from_utf8_lossy(&v).into_owned();
    while r.first() != Some(&b')') {
        if !out.is_empty() {
            r = sp(r)?.0;
        }
        let (r2, tag) = atom(r)?;
        let (r2, _) = sp(r2)?;
        let mut values = Vec::new();
        let r3 = if let Some(mut l) = r2.strip_prefix(b"(") {
            while l.first() != Some(&b')') {
                if !values.is_empty() {
                    l = sp(l)?.0;
                }
                let (l2, v) = crate::core::astring(l)?;
                values.push(text(v));
                l = l2;
            }
            &l[1..]
        } else {
            let (r3, v) = crate::core::astring(r2)?;
            values.push(text(v));
            r3
        };
        out.push((tag.to_owned(), values));
        r = r3;
    }
    Ok((&r[1..], out))
}

fn text_to_end(i: &[u8]) -> Result<String, SyntaxError> {
    let body = i
        .strip_suffix(b"\r\n")
        .ok_or(SyntaxError::Invalid("expected CRLF"))?;
    if body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(SyntaxError::Invalid("control in text"));
    }
    Ok(String::from_utf8_lossy(body).into_owned())
}

fn words_to_end(i: &[u8]) -> Result<Vec<String>, SyntaxError> {
    let t = text_to_end(i)?;
    Ok(t.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect())
}

fn code(i: &[u8]) -> PResult<'_, Code> {
    let close = memchr::memchr(b']', i).ok_or(SyntaxError::Invalid("response code"))?;
    let inner = &i[..close];
    if inner.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(SyntaxError::Invalid("control in response code"));
    }
    let rest = &i[close + 1..];
    let (args, name) = match memchr::memchr(b' ', inner) {
        Some(s) => (Some(&inner[s + 1..]), &inner[..s]),
        None => (None, inner),
    };
    let name = std::str::from_utf8(name)
        .map_err(|_| SyntaxError::Invalid("response code"))?
        .to_ascii_uppercase();
    let num = |a: Option<&[u8]>| -> Result<u32, SyntaxError> {
        match a.map(number) {
            Some(Ok(([], n))) => Ok(n),
            _ => Err(SyntaxError::Invalid("response code number")),
        }
    };
    let c = match (name.as_str(), args) {
        ("ALERT", None) => Code::Alert,
        ("PARSE", None) => Code::Parse,
        ("READ-ONLY", None) => Code::ReadOnly,
        ("READ-WRITE", None) => Code::ReadWrite,
        ("TRYCREATE", None) => Code::TryCreate,
        ("CLOSED", None) => Code::Closed,
        ("NOMODSEQ", None) => Code::NoModSeq,
        ("UIDNEXT", a) => Code::UidNext(num(a)?),
        ("UIDVALIDITY", a) => Code::UidValidity(num(a)?),
        ("UNSEEN", a) => Code::Unseen(num(a)?),
        ("HIGHESTMODSEQ", Some(a)) => match number64(a)? {
            ([], n) => Code::HighestModSeq(n),
            _ => return Err(SyntaxError::Invalid("HIGHESTMODSEQ")),
        },
        ("MAILBOXID", Some(a)) => match objectid_paren(a)? {
            ([], id) => Code::MailboxId(id),
            _ => return Err(SyntaxError::Invalid("MAILBOXID")),
        },
        ("PERMANENTFLAGS", Some(a)) => {
            let (r, flags) = items::flag_list(a)?;
            if !r.is_empty() {
                return Err(SyntaxError::Invalid("PERMANENTFLAGS"));
            }
            Code::PermanentFlags(flags)
        }
        ("CAPABILITY", Some(a)) => Code::Capability(
            String::from_utf8_lossy(a)
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        ("APPENDUID", Some(a)) => {
            let (r, v) = number(a)?;
            let (r, _) = sp(r)?;
            let (r, s) = seq::parse(r)?;
            if !r.is_empty() {
                return Err(SyntaxError::Invalid("APPENDUID"));
            }
            Code::AppendUid(v, s)
        }
        ("COPYUID", Some(a)) => {
            let (r, v) = number(a)?;
            let (r, _) = sp(r)?;
            let (r, s1) = seq::parse(r)?;
            let (r, _) = sp(r)?;
            let (r, s2) = seq::parse(r)?;
            if !r.is_empty() {
                return Err(SyntaxError::Invalid("COPYUID"));
            }
            Code::CopyUid(v, s1, s2)
        }
        ("MODIFIED", Some(a)) => Code::Modified(SequenceSet::parse(a)?),
        (n, a) => {
            if n.is_empty() || !n.bytes().all(crate::core::is_atom_char) {
                return Err(SyntaxError::Invalid("response code"));
            }
            Code::Other(
                n.to_owned(),
                a.map(|a| String::from_utf8_lossy(a).into_owned()),
            )
        }
    };
    Ok((rest, c))
}

fn nstring(i: &[u8]) -> PResult<'_, Option<Cow<'_, [u8]>>> {
    if i.len() >= 3 && i[..3].eq_ignore_ascii_case(b"NIL") {
        return Ok((&i[3..], None));
    }
    let (r, s) = string(i)?;
    Ok((r, Some(s)))
}

/// The optional `<origin>` after a section.
fn partial_origin(r: &[u8]) -> PResult<'_, Option<u32>> {
    let Some(o) = r.strip_prefix(b"<") else {
        return Ok((r, None));
    };
    let (o2, n) = number(o)?;
    let r = o2
        .strip_prefix(b">")
        .ok_or(SyntaxError::Invalid("origin"))?;
    Ok((r, Some(n)))
}

fn fetch_values(i: &[u8], q: Quirks) -> PResult<'_, Vec<FetchValue<'_>>> {
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("FETCH data"))?;
    let mut out = Vec::new();
    loop {
        let n = r
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'.')
            .count();
        let name = upper(&r[..n]);
        let rest = &r[n..];
        let (r2, v) = match &*name {
            b"FLAGS" => {
                let (r2, _) = sp(rest)?;
                let (r2, f) = items::flag_list(r2)?;
                (r2, FetchValue::Flags(f))
            }
            b"UID" => {
                let (r2, _) = sp(rest)?;
                let (r2, v) = crate::core::nz_number(r2)?;
                (r2, FetchValue::Uid(v))
            }
            b"RFC822.SIZE" => {
                let (r2, _) = sp(rest)?;
                let (r2, v) = number(r2)?;
                (r2, FetchValue::Rfc822Size(v))
            }
            b"BINARY" | b"BINARY.SIZE" if rest.first() == Some(&b'[') => {
                let (r2, part) = items::part_numbers(&rest[1..])?;
                let mut r2 = r2
                    .strip_prefix(b"]")
                    .ok_or(SyntaxError::Invalid("BINARY section"))?;
                if &*name == b"BINARY.SIZE" {
                    let (r3, size) = number(sp(r2)?.0)?;
                    (r3, FetchValue::BinarySize { part, size })
                } else {
                    let origin;
                    (r2, origin) = partial_origin(r2)?;
                    let (r3, data) = nstring(sp(r2)?.0)?;
                    (r3, FetchValue::Binary { part, origin, data })
                }
            }
            b"RFC822" | b"RFC822.HEADER" | b"RFC822.TEXT" => {
                let part = match &*name {
                    b"RFC822" => Rfc822Part::Full,
                    b"RFC822.HEADER" => Rfc822Part::Header,
                    _ => Rfc822Part::Text,
                };
                let (r2, _) = sp(rest)?;
                let (r2, data) = nstring(r2)?;
                (r2, FetchValue::Rfc822 { part, data })
            }
            b"INTERNALDATE" => {
                let (r2, _) = sp(rest)?;
                let (r2, d) = string(r2)?;
                (
                    r2,
                    FetchValue::InternalDate(match d {
                        Cow::Borrowed(b) => String::from_utf8_lossy(b),
                        Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
                    }),
                )
            }
            b"BODY" | b"BODYSTRUCTURE" if rest.first() == Some(&b' ') => {
                let (r2, b) = body(&rest[1..], 0, q)?;
                let b = Box::new(b);
                (
                    r2,
                    if &*name == b"BODY" {
                        FetchValue::Body(b)
                    } else {
                        FetchValue::BodyStructure(b)
                    },
                )
            }
            b"ENVELOPE" => {
                let (r2, _) = sp(rest)?;
                let (r2, env) = envelope(r2)?;
                (r2, FetchValue::Envelope(Box::new(env)))
            }
            b"MODSEQ" => {
                let (r2, _) = sp(rest)?;
                let r2 = r2
                    .strip_prefix(b"(")
                    .ok_or(SyntaxError::Invalid("MODSEQ"))?;
                let (r2, v) = number64(r2)?;
                let r2 = r2
                    .strip_prefix(b")")
                    .ok_or(SyntaxError::Invalid("MODSEQ"))?;
                (r2, FetchValue::ModSeq(v))
            }
            b"EMAILID" => {
                let (r2, _) = sp(rest)?;
                let (r2, id) = objectid_paren(r2)?;
                (r2, FetchValue::EmailId(id))
            }
            b"THREADID" => {
                let (r2, _) = sp(rest)?;
                match r2.get(..3) {
                    Some(n) if n.eq_ignore_ascii_case(b"NIL") => {
                        (&r2[3..], FetchValue::ThreadId(None))
                    }
                    _ => {
                        let (r2, id) = objectid_paren(r2)?;
                        (r2, FetchValue::ThreadId(Some(id)))
                    }
                }
            }
            b"BODY" if rest.first() == Some(&b'[') => {
                let (r2, section) = items::section_only(rest)?;
                let (r2, origin) = partial_origin(r2)?;
                let (r2, _) = sp(r2)?;
                let (r2, data) = nstring(r2)?;
                (
                    r2,
                    FetchValue::BodySection {
                        section,
                        origin,
                        data,
                    },
                )
            }
            _ => return Err(SyntaxError::Invalid("unknown FETCH data item")),
        };
        out.push(v);
        if let Some(end) = r2.strip_prefix(b")") {
            return Ok((end, out));
        }
        r = sp(r2)?.0;
    }
}

impl<'a> Response<'a> {
    /// Parses one framed response (CRLF included, literals inline),
    /// strictly: outside literals only 7-bit data, or UTF-8 when `utf8`
    /// (UTF8=ACCEPT enabled).
    pub fn parse(input: &'a [u8], utf8: bool) -> Result<Response<'a>, SyntaxError> {
        Self::parse_with(input, utf8, Quirks::default())
    }

    /// Parses one framed response, tolerating the server deviations that
    /// `quirks` switches on.
    pub fn parse_with(
        input: &'a [u8],
        utf8: bool,
        quirks: Quirks,
    ) -> Result<Response<'a>, SyntaxError> {
        if !quirks.eight_bit {
            crate::core::check_eight_bit(input, utf8)?;
        }
        if quirks.trailing_space
            && let Some(body) = input.strip_suffix(b" \r\n")
        {
            let mut trimmed = body.trim_ascii_end().to_vec();
            trimmed.extend_from_slice(b"\r\n");
            return Self::parse_inner(&trimmed, utf8, quirks).map(Response::into_owned);
        }
        Self::parse_inner(input, utf8, quirks)
    }

    fn parse_inner(input: &[u8], utf8: bool, quirks: Quirks) -> Result<Response<'_>, SyntaxError> {
        if let Some(r) = input.strip_prefix(b"+") {
            let r = r.strip_prefix(b" ").unwrap_or(r);
            return Ok(Response::Continue(text_to_end(r)?));
        }
        let (r, t) = match input.strip_prefix(b"* ") {
            Some(r) => (r, None),
            None => {
                let (r, t) = tag(input)?;
                (sp(r)?.0, Some(t))
            }
        };
        // Numbered data: "* 3 EXISTS", "* 5 FETCH (...)".
        if t.is_none() && r.first().is_some_and(u8::is_ascii_digit) {
            let (r, n) = number(r)?;
            let (r, _) = sp(r)?;
            let (r, w) = crate::core::atom_bytes(r)?;
            return match &*upper(w) {
                b"EXISTS" => end(r).map(|_| Response::Exists(n)),
                b"RECENT" => end(r).map(|_| Response::Recent(n)),
                b"EXPUNGE" => end(r).map(|_| Response::Expunge(n)),
                b"FETCH" => {
                    let (r, _) = sp(r)?;
                    let (r, v) = fetch_values(r, quirks)?;
                    end(r)?;
                    Ok(Response::Fetch(n, v))
                }
                _ => Err(SyntaxError::Invalid("unknown numbered response")),
            };
        }
        let (r, w) = atom(r)?;
        let up = upper(w.as_bytes());
        // ATOM-CHARs are ASCII; a word too long for `upper` is empty and
        // matches nothing.
        let word = std::str::from_utf8(&up).unwrap_or_default();
        if let Some((kind, _)) = STATUS_KINDS.iter().find(|(_, n)| *n == word) {
            let (r, code) = match r.strip_prefix(b" [") {
                Some(r2) => {
                    let (r3, c) = code(r2)?;
                    (r3, Some(c))
                }
                None => (r, None),
            };
            let text = match r.strip_prefix(b" ") {
                Some(r2) => text_to_end(r2)?,
                None => {
                    end(r)?;
                    String::new()
                }
            };
            return Ok(Response::Status {
                tag: t,
                kind: *kind,
                code,
                text,
            });
        }
        if t.is_some() {
            return Err(SyntaxError::Invalid("tagged data response"));
        }
        match word {
            "CAPABILITY" => Ok(Response::Capability(words_to_end(r)?)),
            "ENABLED" => Ok(Response::Enabled(words_to_end(r)?)),
            "FLAGS" => {
                let (r, _) = sp(r)?;
                let (r, f) = items::flag_list(r)?;
                end(r)?;
                Ok(Response::Flags(f))
            }
            "VANISHED" => {
                let (r, _) = sp(r)?;
                let (r, earlier) = match r.get(..10) {
                    Some(p) if p.eq_ignore_ascii_case(b"(EARLIER) ") => (&r[10..], true),
                    _ => (r, false),
                };
                let (r, uids) = seq::parse(r)?;
                end(r)?;
                Ok(Response::Vanished { earlier, uids })
            }
            "LIST" | "LSUB" => {
                let (r, _) = sp(r)?;
                let mut r = r
                    .strip_prefix(b"(")
                    .ok_or(SyntaxError::Invalid("LIST attributes"))?;
                let mut attributes = Vec::new();
                while r.first() != Some(&b')') {
                    let bs = r
                        .strip_prefix(b"\\")
                        .ok_or(SyntaxError::Invalid("LIST attribute"))?;
                    let (r2, a) = atom(bs)?;
                    attributes.push(format!("\\{a}"));
                    r = r2.strip_prefix(b" ").unwrap_or(r2);
                }
                let (r, _) = sp(&r[1..])?;
                let (r, delimiter) = match nstring(r)? {
                    (r, None) => (r, None),
                    (r, Some(d)) if d.len() == 1 && (0x20..0x7f).contains(&d[0]) => {
                        (r, Some(d[0] as char))
                    }
                    _ => return Err(SyntaxError::Invalid("delimiter")),
                };
                let (r, _) = sp(r)?;
                let (r, m) = match r.strip_prefix(b"\"\"") {
                    Some(rest) => (rest, Mailbox::list_root()),
                    None => mailbox(r, utf8)?,
                };
                let (r, extended) = match r.strip_prefix(b" (") {
                    Some(x) => list_extended(x)?,
                    None => (r, Vec::new()),
                };
                end(r)?;
                Ok(Response::List {
                    lsub: word == "LSUB",
                    attributes,
                    delimiter,
                    mailbox: m,
                    extended,
                })
            }
            "QUOTA" => {
                let (r, _) = sp(r)?;
                let (r, root) = crate::core::astring(r)?;
                let (r, _) = sp(r)?;
                let (r, resources) = crate::command::paren_list(r, true, |r| {
                    let (r, name) = atom(r)?;
                    let (r, _) = sp(r)?;
                    let (r, used) = number64(r)?;
                    let (r, _) = sp(r)?;
                    let (r, limit) = number64(r)?;
                    Ok((r, (name.to_ascii_uppercase(), used, limit)))
                })?;
                end(r)?;
                Ok(Response::Quota {
                    root: String::from_utf8_lossy(&root).into_owned(),
                    resources,
                })
            }
            "QUOTAROOT" => {
                let (r, _) = sp(r)?;
                let (mut r, m) = mailbox(r, utf8)?;
                let mut roots = Vec::new();
                while let Some(rest) = r.strip_prefix(b" ") {
                    let (r2, root) = crate::core::astring(rest)?;
                    roots.push(String::from_utf8_lossy(&root).into_owned());
                    r = r2;
                }
                end(r)?;
                Ok(Response::QuotaRoot { mailbox: m, roots })
            }
            "STATUS" => {
                let (r, _) = sp(r)?;
                let (r, m) = mailbox(r, utf8)?;
                let (r, _) = sp(r)?;
                let mut r = r.strip_prefix(b"(").ok_or(SyntaxError::Invalid("STATUS"))?;
                let mut items = Vec::new();
                let mut mailbox_id = None;
                while r.first() != Some(&b')') {
                    let (r2, a) = atom(r)?;
                    let (r2, _) = sp(r2)?;
                    let item = status_item(a).ok_or(SyntaxError::Invalid("STATUS item"))?;
                    let r2 = if item == StatusItem::MailboxId {
                        let (r2, id) = objectid_paren(r2)?;
                        mailbox_id = Some(id);
                        r2
                    } else {
                        let (r2, v) = number64(r2)?;
                        items.push((item, v));
                        r2
                    };
                    r = r2.strip_prefix(b" ").unwrap_or(r2);
                }
                end(&r[1..])?;
                Ok(Response::MailboxStatus {
                    mailbox: m,
                    items,
                    mailbox_id,
                })
            }
            "THREAD" => {
                let mut r = r.strip_prefix(b" ").unwrap_or(r);
                let mut threads = Vec::new();
                while r.first() == Some(&b'(') {
                    let (r2, t) = thread_list(r, 0)?;
                    threads.push(t);
                    r = r2;
                }
                end(r)?;
                Ok(Response::Thread(threads))
            }
            "SORT" => {
                let mut r = r;
                let mut nums = Vec::new();
                while let Some(r2) = r.strip_prefix(b" ") {
                    let (r3, n) = crate::core::nz_number(r2)?;
                    nums.push(n);
                    r = r3;
                }
                end(r)?;
                Ok(Response::Sort(nums))
            }
            "SEARCH" => {
                let mut r = r;
                let mut nums = Vec::new();
                let mut modseq = None;
                while let Ok((r2, ())) = sp(r) {
                    if let Some(m) = r2.get(..8).filter(|p| p.eq_ignore_ascii_case(b"(MODSEQ ")) {
                        let _ = m;
                        let (r3, v) = number64(&r2[8..])?;
                        r = r3
                            .strip_prefix(b")")
                            .ok_or(SyntaxError::Invalid("SEARCH MODSEQ"))?;
                        modseq = Some(v);
                        break;
                    }
                    let (r3, n) = crate::core::nz_number(r2)?;
                    nums.push(n);
                    r = r3;
                }
                end(r)?;
                Ok(Response::Search(nums, modseq))
            }
            "ID" => {
                let (r, _) = sp(r)?;
                if let (r, None) = nil_or(r)? {
                    end(r)?;
                    return Ok(Response::Id(None));
                }
                let mut r = r.strip_prefix(b"(").ok_or(SyntaxError::Invalid("ID"))?;
                let mut pairs = Vec::new();
                loop {
                    let (r2, k) = string(r)?;
                    let (r2, _) = sp(r2)?;
                    let (r2, v) = nstring(r2)?;
                    pairs.push((k, v));
                    if let Some(rest) = r2.strip_prefix(b")") {
                        end(rest)?;
                        return Ok(Response::Id(Some(pairs)));
                    }
                    r = sp(r2)?.0;
                }
            }
            "NAMESPACE" => {
                let mut lists: [Vec<NamespaceEntry<'_>>; 3] = Default::default();
                let mut r = r;
                for l in &mut lists {
                    let (r2, _) = sp(r)?;
                    r = r2;
                    if let (r3, None) = nil_or(r)? {
                        r = r3;
                        continue;
                    }
                    let mut q = r
                        .strip_prefix(b"(")
                        .ok_or(SyntaxError::Invalid("NAMESPACE"))?;
                    loop {
                        let q2 = q
                            .strip_prefix(b"(")
                            .ok_or(SyntaxError::Invalid("NAMESPACE"))?;
                        let (q2, prefix) = string(q2)?;
                        let (q2, _) = sp(q2)?;
                        let (q2, d) = nstring(q2)?;
                        let delim = match d {
                            None => None,
                            Some(d) if d.len() == 1 && (0x20..0x7f).contains(&d[0]) => {
                                Some(d[0] as char)
                            }
                            Some(_) => return Err(SyntaxError::Invalid("NAMESPACE delimiter")),
                        };
                        let mut extensions = Vec::new();
                        let mut q2 = q2;
                        while let Ok((q3, ())) = sp(q2) {
                            let (q3, name) = string(q3)?;
                            let (q3, _) = sp(q3)?;
                            let (q3, values) =
                                crate::command::paren_list(q3, false, |v| string(v))?;
                            extensions.push((name, values));
                            q2 = q3;
                        }
                        q = q2
                            .strip_prefix(b")")
                            .ok_or(SyntaxError::Invalid("NAMESPACE"))?;
                        l.push(NamespaceEntry {
                            prefix,
                            delimiter: delim,
                            extensions,
                        });
                        if let Some(rest) = q.strip_prefix(b")") {
                            r = rest;
                            break;
                        }
                    }
                }
                end(r)?;
                Ok(Response::Namespace(lists))
            }
            "ESEARCH" => {
                let mut r = r;
                let mut etag = None;
                if let Some(r2) = r
                    .get(..6)
                    .filter(|p| p.eq_ignore_ascii_case(b" (TAG "))
                    .map(|_| &r[6..])
                {
                    let (r3, t) = string(r2)?;
                    etag = Some(t);
                    r = r3
                        .strip_prefix(b")")
                        .ok_or(SyntaxError::Invalid("ESEARCH tag"))?;
                }
                let mut uid = false;
                if let Some(r2) = r
                    .get(..4)
                    .filter(|p| p.eq_ignore_ascii_case(b" UID"))
                    .map(|_| &r[4..])
                    && r2.first().is_none_or(|b| *b == b' ' || *b == b'\r')
                {
                    uid = true;
                    r = r2;
                }
                let mut items = Vec::new();
                while let Ok((r2, ())) = sp(r) {
                    let (r3, name) = atom(r2)?;
                    let (r3, _) = sp(r3)?;
                    let n = esearch_value_len(r3).ok_or(SyntaxError::Invalid("ESEARCH value"))?;
                    items.push((
                        name.to_ascii_uppercase(),
                        String::from_utf8_lossy(&r3[..n]).into_owned(),
                    ));
                    r = &r3[n..];
                }
                end(r)?;
                Ok(Response::ESearch {
                    tag: etag,
                    uid,
                    items,
                })
            }
            _ => Err(SyntaxError::Invalid("unknown response")),
        }
    }

    /// Encodes the response (literals never wait: servers send them
    /// without continuation).
    pub fn encode(&self, utf8: bool) -> Vec<u8> {
        let mut e = Encoder::for_responses().with_utf8(utf8);
        let mbox = |e: &mut Encoder, m: &Mailbox| encode_mailbox(e, m, utf8);
        match self {
            Response::Status {
                tag,
                kind,
                code,
                text,
            } => {
                match tag {
                    Some(t) => e.raw(t.as_str().as_bytes()),
                    None => e.raw(b"*"),
                };
                let name = STATUS_KINDS
                    .iter()
                    .find(|(k, _)| k == kind)
                    .map_or("OK", |(_, n)| n);
                e.raw(b" ").raw(name.as_bytes());
                if let Some(c) = code {
                    e.raw(b" [").raw(encode_code(c).as_bytes()).raw(b"]");
                }
                if !text.is_empty() {
                    e.raw(b" ").raw(clean(text).as_bytes());
                }
            }
            Response::Continue(t) => {
                e.raw(b"+ ").raw(clean(t).as_bytes());
            }
            Response::Capability(c) => {
                e.raw(format!("* CAPABILITY {}", c.join(" ")).as_bytes());
            }
            Response::Enabled(c) => {
                e.raw(b"* ENABLED");
                for w in c {
                    e.raw(b" ").raw(w.as_bytes());
                }
            }
            Response::Flags(f) => {
                e.raw(b"* FLAGS ");
                items::encode_flags(&mut e, f);
            }
            Response::Exists(n) => {
                e.raw(b"* ").number(u64::from(*n)).raw(b" EXISTS");
            }
            Response::Recent(n) => {
                e.raw(b"* ").number(u64::from(*n)).raw(b" RECENT");
            }
            Response::Expunge(n) => {
                e.raw(b"* ").number(u64::from(*n)).raw(b" EXPUNGE");
            }
            Response::Vanished { earlier, uids } => {
                e.raw(
                    format!(
                        "* VANISHED {}{uids}",
                        if *earlier { "(EARLIER) " } else { "" }
                    )
                    .as_bytes(),
                );
            }
            Response::List {
                lsub,
                attributes,
                delimiter,
                mailbox: m,
                extended,
            } => {
                e.raw(if *lsub { b"* LSUB (" } else { b"* LIST (" })
                    .raw(attributes.join(" ").as_bytes())
                    .raw(b") ");
                match delimiter {
                    Some(d) => e.string(d.to_string().as_bytes()),
                    None => e.raw(b"NIL"),
                };
                e.raw(b" ");
                mbox(&mut e, m);
                if !extended.is_empty() {
                    e.raw(b" (");
                    for (k, (tag, values)) in extended.iter().enumerate() {
                        if k > 0 {
                            e.raw(b" ");
                        }
                        e.raw(tag.as_bytes()).raw(b" (");
                        for (j, v) in values.iter().enumerate() {
                            if j > 0 {
                                e.raw(b" ");
                            }
                            e.string(v.as_bytes());
                        }
                        e.raw(b")");
                    }
                    e.raw(b")");
                }
            }
            Response::Quota { root, resources } => {
                e.raw(b"* QUOTA ").astring(root.as_bytes()).raw(b" (");
                for (k, (name, used, limit)) in resources.iter().enumerate() {
                    if k > 0 {
                        e.raw(b" ");
                    }
                    e.raw(name.as_bytes())
                        .raw(b" ")
                        .number(*used)
                        .raw(b" ")
                        .number(*limit);
                }
                e.raw(b")");
            }
            Response::QuotaRoot { mailbox: m, roots } => {
                e.raw(b"* QUOTAROOT ");
                mbox(&mut e, m);
                for r in roots {
                    e.raw(b" ").astring(r.as_bytes());
                }
            }
            Response::MailboxStatus {
                mailbox: m,
                items,
                mailbox_id,
            } => {
                e.raw(b"* STATUS ");
                mbox(&mut e, m);
                let mut parts: Vec<String> = items
                    .iter()
                    .filter(|(i, _)| *i != StatusItem::MailboxId)
                    .map(|(i, v)| format!("{} {v}", status_item_name(*i)))
                    .collect();
                if let Some(id) = mailbox_id.as_ref().filter(|id| is_objectid(id)) {
                    parts.push(format!("MAILBOXID ({id})"));
                }
                e.raw(format!(" ({})", parts.join(" ")).as_bytes());
            }
            Response::Search(nums, modseq) => {
                e.raw(b"* SEARCH");
                for n in nums {
                    e.raw(format!(" {n}").as_bytes());
                }
                if let Some(m) = modseq {
                    e.raw(format!(" (MODSEQ {m})").as_bytes());
                }
            }
            Response::Thread(threads) => {
                e.raw(b"* THREAD");
                if !threads.is_empty() {
                    e.raw(b" ");
                }
                for t in threads {
                    let mut s = String::new();
                    t.encode(&mut s);
                    e.raw(s.as_bytes());
                }
            }
            Response::Sort(nums) => {
                e.raw(b"* SORT");
                for n in nums {
                    e.raw(format!(" {n}").as_bytes());
                }
            }
            Response::Id(None) => {
                e.raw(b"* ID NIL");
            }
            Response::Id(Some(pairs)) => {
                e.raw(b"* ID (");
                for (k, (a, b)) in pairs.iter().enumerate() {
                    if k > 0 {
                        e.raw(b" ");
                    }
                    e.string(a).raw(b" ");
                    encode_nstring(&mut e, b);
                }
                e.raw(b")");
            }
            Response::Namespace(lists) => {
                e.raw(b"* NAMESPACE");
                for l in lists {
                    e.raw(b" ");
                    if l.is_empty() {
                        e.raw(b"NIL");
                        continue;
                    }
                    e.raw(b"(");
                    for ns in l {
                        e.raw(b"(").string(&ns.prefix).raw(b" ");
                        match ns.delimiter {
                            Some(d) => e.string(d.to_string().as_bytes()),
                            None => e.raw(b"NIL"),
                        };
                        for (name, values) in &ns.extensions {
                            e.raw(b" ").string(name).raw(b" ");
                            crate::core::encode_paren(&mut e, values, |e, v| {
                                e.string(v);
                            });
                        }
                        e.raw(b")");
                    }
                    e.raw(b")");
                }
            }
            Response::ESearch { tag, uid, items } => {
                e.raw(b"* ESEARCH");
                if let Some(t) = tag {
                    e.raw(b" (TAG ").string(t).raw(b")");
                }
                if *uid {
                    e.raw(b" UID");
                }
                // Only well-formed items are written: no value can break the line.
                let ok = |k: &str, v: &str| {
                    !k.is_empty()
                        && k.bytes().all(crate::core::is_atom_char)
                        && esearch_value_len(v.as_bytes()) == Some(v.len())
                };
                for (k, v) in items.iter().filter(|(k, v)| ok(k, v)) {
                    e.raw(format!(" {k} {v}").as_bytes());
                }
            }
            Response::Fetch(n, values) => {
                e.raw(b"* ").number(u64::from(*n)).raw(b" FETCH (");
                for (k, v) in values.iter().enumerate() {
                    if k > 0 {
                        e.raw(b" ");
                    }
                    encode_fetch_value(&mut e, v);
                }
                e.raw(b")");
            }
        }
        e.finish_bytes()
    }
}

/// One FETCH data item as it goes on the wire.
fn encode_fetch_value(e: &mut Encoder, v: &FetchValue<'_>) {
    match v {
        FetchValue::Flags(f) => {
            e.raw(b"FLAGS ");
            items::encode_flags(e, f);
        }
        FetchValue::Uid(u) => {
            e.raw(b"UID ").number(u64::from(*u));
        }
        FetchValue::Rfc822Size(s) => {
            e.raw(b"RFC822.SIZE ").number(u64::from(*s));
        }
        FetchValue::InternalDate(d) => {
            e.raw(b"INTERNALDATE ").string(d.as_bytes());
        }
        FetchValue::Body(b) => {
            e.raw(b"BODY ");
            encode_body(e, b);
        }
        FetchValue::BodyStructure(b) => {
            e.raw(b"BODYSTRUCTURE ");
            encode_body(e, b);
        }
        FetchValue::Envelope(env) => {
            e.raw(b"ENVELOPE ");
            encode_envelope(e, env);
        }
        FetchValue::ModSeq(m) => {
            e.raw(b"MODSEQ (").number(*m).raw(b")");
        }
        // An id that is no objectid could break the line: NIL instead.
        FetchValue::EmailId(id) if is_objectid(id) => {
            e.raw(b"EMAILID (").raw(id.as_bytes()).raw(b")");
        }
        FetchValue::EmailId(_) => {
            e.raw(b"EMAILID NIL");
        }
        FetchValue::ThreadId(Some(id)) if is_objectid(id) => {
            e.raw(b"THREADID (").raw(id.as_bytes()).raw(b")");
        }
        FetchValue::ThreadId(_) => {
            e.raw(b"THREADID NIL");
        }
        FetchValue::Binary { part, origin, data } => {
            e.raw(b"BINARY[");
            items::write_parts(e, part);
            e.raw(b"]");
            if let Some(o) = origin {
                e.raw(b"<").number(u64::from(*o)).raw(b">");
            }
            e.raw(b" ");
            match data {
                Some(d) if d.contains(&0) => e.literal8(d),
                Some(d) => e.literal(d),
                None => e.raw(b"NIL"),
            };
        }
        FetchValue::BinarySize { part, size } => {
            e.raw(b"BINARY.SIZE[");
            items::write_parts(e, part);
            e.raw(b"] ").number(u64::from(*size));
        }
        FetchValue::Rfc822 { part, data } => {
            e.raw(part.as_str().as_bytes()).raw(b" ");
            match data {
                Some(d) => e.literal(d),
                None => e.raw(b"NIL"),
            };
        }
        FetchValue::BodySection {
            section,
            origin,
            data,
        } => {
            items::encode_body_section(e, false, section);
            if let Some(o) = origin {
                e.raw(b"<").number(u64::from(*o)).raw(b">");
            }
            e.raw(b" ");
            match data {
                Some(d) => e.literal(d),
                None => e.raw(b"NIL"),
            };
        }
    }
}

/// Writes the name of a literal FETCH item (`BODY[1.TEXT]<5>`, `RFC822`).
fn encode_literal_label(e: &mut Encoder, v: &FetchValue<'_>) -> bool {
    match v {
        FetchValue::BodySection {
            section, origin, ..
        } => {
            items::encode_body_section(e, false, section);
            if let Some(o) = origin {
                e.raw(b"<").number(u64::from(*o)).raw(b">");
            }
            true
        }
        FetchValue::Rfc822 { part, .. } => {
            e.raw(part.as_str().as_bytes());
            true
        }
        _ => false,
    }
}

/// The start of a FETCH response whose last item is a literal the caller
/// sends itself, in pieces: `* seq FETCH (items LABEL {len}\r\n`. Then
/// come the `len` octets, then `)\r\n`. `last` names the item (a body
/// section or an RFC822 item; its data is ignored); `None` for any other.
///
/// ```
/// use imap_proto::{FetchValue, Response, Section, SectionText, fetch_literal_head};
///
/// let body = FetchValue::BodySection {
///     section: Section { part: vec![], text: SectionText::Full, partial: None },
///     origin: None,
///     data: None,
/// };
/// let mut wire = fetch_literal_head(3, &[FetchValue::Uid(7)], &body, 5).unwrap();
/// wire.extend_from_slice(b"hello)\r\n");
/// assert_eq!(wire, b"* 3 FETCH (UID 7 BODY[] {5}\r\nhello)\r\n");
/// assert!(Response::parse(&wire, false).is_ok());
/// ```
pub fn fetch_literal_head(
    seq: u32,
    values: &[FetchValue<'_>],
    last: &FetchValue<'_>,
    len: u64,
) -> Option<Vec<u8>> {
    let mut e = Encoder::for_responses();
    e.raw(b"* ").number(u64::from(seq)).raw(b" FETCH (");
    for v in values {
        encode_fetch_value(&mut e, v);
        e.raw(b" ");
    }
    if !encode_literal_label(&mut e, last) {
        return None;
    }
    // finish_bytes ends the line with CRLF.
    e.raw(b" {").number(len).raw(b"}");
    Some(e.finish_bytes())
}

fn end(i: &[u8]) -> Result<(), SyntaxError> {
    if i == b"\r\n" {
        Ok(())
    } else {
        Err(SyntaxError::Invalid("expected end of response"))
    }
}

/// Text may hold any CHAR but CR, LF and NUL (RFC 3501 TEXT-CHAR).
fn clean(t: &str) -> String {
    t.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

fn encode_code(c: &Code) -> String {
    match c {
        Code::Alert => "ALERT".into(),
        Code::Parse => "PARSE".into(),
        Code::ReadOnly => "READ-ONLY".into(),
        Code::ReadWrite => "READ-WRITE".into(),
        Code::TryCreate => "TRYCREATE".into(),
        Code::Closed => "CLOSED".into(),
        Code::NoModSeq => "NOMODSEQ".into(),
        Code::UidNext(n) => format!("UIDNEXT {n}"),
        Code::UidValidity(n) => format!("UIDVALIDITY {n}"),
        Code::Unseen(n) => format!("UNSEEN {n}"),
        Code::HighestModSeq(n) => format!("HIGHESTMODSEQ {n}"),
        Code::MailboxId(id) if is_objectid(id) => format!("MAILBOXID ({id})"),
        // An id that could break the response is not sent.
        Code::MailboxId(_) => "MAILBOXID".into(),
        Code::PermanentFlags(f) => {
            let mut e = Encoder::for_responses();
            items::encode_flags(&mut e, f);
            let t = crate::core::join(&e.finish());
            format!(
                "PERMANENTFLAGS {}",
                String::from_utf8_lossy(&t[..t.len() - 2])
            )
        }
        Code::Capability(c) => format!("CAPABILITY {}", c.join(" ")),
        Code::AppendUid(v, s) => format!("APPENDUID {v} {s}"),
        Code::CopyUid(v, a, b) => format!("COPYUID {v} {a} {b}"),
        Code::Modified(s) => format!("MODIFIED {s}"),
        Code::Other(n, None) => clean(n),
        Code::Other(n, Some(a)) => format!("{} {}", clean(n), clean(a).replace(']', "")),
    }
}

/// One address of an ENVELOPE (RFC 3501 §7.4.2): each field NIL or a
/// string; a group is marked by a NIL host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address<'a> {
    /// Display name.
    pub name: Option<Cow<'a, [u8]>>,
    /// Source route (obsolete).
    pub adl: Option<Cow<'a, [u8]>>,
    /// Local part (or group name).
    pub mailbox: Option<Cow<'a, [u8]>>,
    /// Domain (NIL for group syntax).
    pub host: Option<Cow<'a, [u8]>>,
}

/// One thread of a `* THREAD` answer (RFC 5256 §4): a message (or, in
/// REFERENCES, a missing parent with `None`) and its replies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Thread {
    /// The message's number (or UID), `None` for a parent that is not in
    /// the mailbox.
    pub message: Option<u32>,
    /// Its children, in order.
    pub children: Vec<Thread>,
}

/// Deepest thread nesting parsed; deeper input is a syntax error.
pub const MAX_THREAD_DEPTH: usize = 64;

/// A chain of replies is a tree as deep as the chain is long (`(1 2 3 …)`
/// on the wire, however many): dropped without recursion.
impl Drop for Thread {
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.children);
        while let Some(mut t) = stack.pop() {
            stack.append(&mut t.children);
        }
    }
}

impl Thread {
    /// A message without replies.
    pub fn leaf(message: u32) -> Thread {
        Thread {
            message: Some(message),
            children: Vec::new(),
        }
    }

    /// Writes the thread as a `thread-list`: a chain of single replies as
    /// numbers, branches as nested lists.
    pub fn encode(&self, out: &mut String) {
        out.push('(');
        let mut node = self;
        let mut first = true;
        loop {
            if let Some(m) = node.message {
                if !first {
                    out.push(' ');
                }
                out.push_str(&m.to_string());
                first = false;
            }
            match node.children.len() {
                1 if node.children[0].message.is_some() => node = &node.children[0],
                0 => break,
                _ => {
                    if !first {
                        out.push(' ');
                    }
                    for c in &node.children {
                        c.encode(out);
                    }
                    break;
                }
            }
        }
        out.push(')');
    }
}

/// Whether `s` is an RFC 8474 objectid: 1 to 255 of ALPHA, DIGIT, `_`, `-`.
pub fn is_objectid(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `"(" objectid ")"`.
fn objectid_paren(i: &[u8]) -> PResult<'_, String> {
    let r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("objectid"))?;
    let n = r
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
        .count();
    if n == 0 || n > 255 {
        return Err(SyntaxError::Invalid("objectid"));
    }
    let rest = r[n..]
        .strip_prefix(b")")
        .ok_or(SyntaxError::Invalid("objectid"))?;
    Ok((rest, String::from_utf8_lossy(&r[..n]).into_owned()))
}

/// The length of an ESEARCH return value at the start of `b`: a number or
/// sequence set (`1:3,7`, `*`), or one parenthesised list of them, signed
/// ranges and `NIL` (RFC 5267's `ADDTO (0 1:2)`, RFC 9394's `PARTIAL
/// (-5:-1 NIL)`).
fn esearch_value_len(b: &[u8]) -> Option<usize> {
    let set = |c: &u8| c.is_ascii_digit() || matches!(c, b':' | b',' | b'*');
    if b.first() == Some(&b'(') {
        let close = b.iter().position(|c| *c == b')')?;
        let inner = &b[1..close];
        let words_ok = !inner.is_empty()
            && inner.split(|c| *c == b' ').all(|w| {
                w.eq_ignore_ascii_case(b"NIL")
                    || (!w.is_empty() && w.iter().all(|c| set(c) || *c == b'-'))
            });
        return words_ok.then_some(close + 1);
    }
    let n = b.iter().take_while(|c| set(c)).count();
    (n > 0).then_some(n)
}

/// `thread-list = "(" (thread-members / thread-nested) ")"`.
fn thread_list(i: &[u8], depth: usize) -> PResult<'_, Thread> {
    if depth > MAX_THREAD_DEPTH {
        return Err(SyntaxError::Invalid("THREAD nested too deeply"));
    }
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("expected ("))?;
    // The chain of numbers, each the parent of the next.
    let mut chain: Vec<u32> = Vec::new();
    while r.first().is_some_and(u8::is_ascii_digit) {
        let (r2, n) = crate::core::nz_number(r)?;
        chain.push(n);
        r = r2.strip_prefix(b" ").unwrap_or(r2);
    }
    let mut nested = Vec::new();
    while r.first() == Some(&b'(') {
        let (r2, t) = thread_list(r, depth + 1)?;
        nested.push(t);
        r = r2;
    }
    let r = r
        .strip_prefix(b")")
        .ok_or(SyntaxError::Invalid("expected )"))?;
    if chain.is_empty() && nested.len() < 2 {
        return Err(SyntaxError::Invalid("empty thread"));
    }
    let mut node = Thread {
        message: chain.pop(),
        children: nested,
    };
    while let Some(m) = chain.pop() {
        node = Thread {
            message: Some(m),
            children: vec![node],
        };
    }
    Ok((r, node))
}

/// The ENVELOPE of a message: header fields as the server parsed them.
/// An empty address list is NIL on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope<'a> {
    /// `Date:`
    pub date: Option<Cow<'a, [u8]>>,
    /// `Subject:`
    pub subject: Option<Cow<'a, [u8]>>,
    /// `From:`
    pub from: Vec<Address<'a>>,
    /// `Sender:`
    pub sender: Vec<Address<'a>>,
    /// `Reply-To:`
    pub reply_to: Vec<Address<'a>>,
    /// `To:`
    pub to: Vec<Address<'a>>,
    /// `Cc:`
    pub cc: Vec<Address<'a>>,
    /// `Bcc:`
    pub bcc: Vec<Address<'a>>,
    /// `In-Reply-To:`
    pub in_reply_to: Option<Cow<'a, [u8]>>,
    /// `Message-ID:`
    pub message_id: Option<Cow<'a, [u8]>>,
}

fn address_list(i: &[u8]) -> PResult<'_, Vec<Address<'_>>> {
    if let (r, None) = nil_or(i)? {
        return Ok((r, Vec::new()));
    }
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("address list"))?;
    let mut out = Vec::new();
    loop {
        let a = r
            .strip_prefix(b"(")
            .ok_or(SyntaxError::Invalid("address"))?;
        let (a, name) = nstring(a)?;
        let (a, _) = sp(a)?;
        let (a, adl) = nstring(a)?;
        let (a, _) = sp(a)?;
        let (a, mailbox) = nstring(a)?;
        let (a, _) = sp(a)?;
        let (a, host) = nstring(a)?;
        r = a
            .strip_prefix(b")")
            .ok_or(SyntaxError::Invalid("address"))?;
        out.push(Address {
            name,
            adl,
            mailbox,
            host,
        });
        if let Some(end) = r.strip_prefix(b")") {
            return Ok((end, out));
        }
        // Addresses follow each other with or without a space.
        r = r.strip_prefix(b" ").unwrap_or(r);
    }
}

/// `Some(())` when the input starts with `NIL`.
fn nil_or(i: &[u8]) -> PResult<'_, Option<()>> {
    if i.len() >= 3 && i[..3].eq_ignore_ascii_case(b"NIL") {
        Ok((&i[3..], None))
    } else {
        Ok((i, Some(())))
    }
}

fn envelope(i: &[u8]) -> PResult<'_, Envelope<'_>> {
    let r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("envelope"))?;
    let (r, date) = nstring(r)?;
    let (r, _) = sp(r)?;
    let (r, subject) = nstring(r)?;
    let mut lists: [Vec<Address<'_>>; 6] = Default::default();
    let mut r = r;
    for l in &mut lists {
        let (r2, _) = sp(r)?;
        let (r2, v) = address_list(r2)?;
        *l = v;
        r = r2;
    }
    let (r, _) = sp(r)?;
    let (r, in_reply_to) = nstring(r)?;
    let (r, _) = sp(r)?;
    let (r, message_id) = nstring(r)?;
    let r = r
        .strip_prefix(b")")
        .ok_or(SyntaxError::Invalid("envelope"))?;
    let [from, sender, reply_to, to, cc, bcc] = lists;
    Ok((
        r,
        Envelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        },
    ))
}

fn encode_nstring(e: &mut Encoder, v: &Option<Cow<'_, [u8]>>) {
    match v {
        Some(v) => e.string(v),
        None => e.raw(b"NIL"),
    };
}

fn encode_envelope(e: &mut Encoder, env: &Envelope<'_>) {
    e.raw(b"(");
    encode_nstring(e, &env.date);
    e.raw(b" ");
    encode_nstring(e, &env.subject);
    for list in [
        &env.from,
        &env.sender,
        &env.reply_to,
        &env.to,
        &env.cc,
        &env.bcc,
    ] {
        e.raw(b" ");
        if list.is_empty() {
            e.raw(b"NIL");
            continue;
        }
        e.raw(b"(");
        for a in list {
            e.raw(b"(");
            encode_nstring(e, &a.name);
            e.raw(b" ");
            encode_nstring(e, &a.adl);
            e.raw(b" ");
            encode_nstring(e, &a.mailbox);
            e.raw(b" ");
            encode_nstring(e, &a.host);
            e.raw(b")");
        }
        e.raw(b")");
    }
    e.raw(b" ");
    encode_nstring(e, &env.in_reply_to);
    e.raw(b" ");
    encode_nstring(e, &env.message_id);
    e.raw(b")");
}

/// Deepest nesting of MIME parts accepted in a body structure.
pub const MAX_BODY_DEPTH: usize = 32;

/// `body-fields`: parameters, id, description, encoding, size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyFields<'a> {
    /// `(name value …)`; empty is NIL.
    pub params: Vec<Param<'a>>,
    /// Content-ID.
    pub id: Option<Cow<'a, [u8]>>,
    /// Content-Description.
    pub description: Option<Cow<'a, [u8]>>,
    /// Content-Transfer-Encoding.
    pub encoding: Cow<'a, [u8]>,
    /// Size in octets.
    pub octets: u32,
}

/// What only some single parts carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind<'a> {
    /// Any other type.
    Basic,
    /// `TEXT/*`: the line count.
    Text {
        /// Lines.
        lines: u32,
    },
    /// `MESSAGE/RFC822` (or `MESSAGE/GLOBAL`): the inner message.
    Message {
        /// Its envelope.
        envelope: Box<Envelope<'a>>,
        /// Its structure.
        body: Box<BodyStructure<'a>>,
        /// Lines.
        lines: u32,
    },
}

/// Extension data shared by single and multipart bodies, each level
/// present (outer `Some`) or not, and NIL (inner `None`) or a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extension<'a> {
    /// `(type (params))` or NIL.
    #[allow(clippy::type_complexity)]
    pub disposition: Option<Option<(Cow<'a, [u8]>, Vec<Param<'a>>)>>,
    /// Languages, or NIL.
    pub language: Option<Option<Vec<Cow<'a, [u8]>>>>,
    /// Content-Location, or NIL.
    pub location: Option<Option<Cow<'a, [u8]>>>,
    /// Extension data after the location, which later RFCs may define
    /// (RFC 3501 `body-extension`): kept so it survives a round trip.
    pub more: Vec<BodyExtension<'a>>,
}

/// One item of future body extension data (RFC 9051 `body-extension`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyExtension<'a> {
    /// A string, or NIL (`None`).
    String(Option<Cow<'a, [u8]>>),
    /// A number (up to 63 bits).
    Number(u64),
    /// A parenthesised list (never empty).
    List(Vec<BodyExtension<'a>>),
}

fn body_extension(i: &[u8], depth: usize) -> PResult<'_, BodyExtension<'_>> {
    if depth > MAX_BODY_DEPTH {
        return Err(SyntaxError::Invalid("body extension nested too deeply"));
    }
    match i.first() {
        Some(b'(') => {
            let (r, items) =
                crate::command::paren_list(i, false, |v| body_extension(v, depth + 1))?;
            Ok((r, BodyExtension::List(items)))
        }
        Some(b) if b.is_ascii_digit() => {
            let (r, n) = number64(i)?;
            Ok((r, BodyExtension::Number(n)))
        }
        _ => {
            let (r, v) = nstring(i)?;
            Ok((r, BodyExtension::String(v)))
        }
    }
}

fn encode_body_extension(e: &mut Encoder, x: &BodyExtension<'_>) {
    match x {
        BodyExtension::String(v) => encode_nstring(e, v),
        BodyExtension::Number(n) => {
            e.raw(n.to_string().as_bytes());
        }
        BodyExtension::List(items) => encode_paren(e, items, encode_body_extension),
    }
}

/// A message's MIME structure (RFC 3501 §7.4.2 BODYSTRUCTURE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure<'a> {
    /// A leaf part.
    Single {
        /// `TEXT`, `IMAGE` …
        media_type: Cow<'a, [u8]>,
        /// `PLAIN`, `JPEG` …
        subtype: Cow<'a, [u8]>,
        /// The fields.
        fields: BodyFields<'a>,
        /// Text lines or an inner message.
        kind: PartKind<'a>,
        /// `Some(md5)` when extension data is present.
        md5: Option<Option<Cow<'a, [u8]>>>,
        /// The rest of the extension data.
        ext: Extension<'a>,
    },
    /// A multipart.
    Multi {
        /// The parts.
        parts: Vec<BodyStructure<'a>>,
        /// `MIXED`, `ALTERNATIVE` …
        subtype: Cow<'a, [u8]>,
        /// `Some(params)` when extension data is present.
        params: Option<Vec<Param<'a>>>,
        /// The rest of the extension data.
        ext: Extension<'a>,
    },
}

fn params(i: &[u8]) -> PResult<'_, Vec<Param<'_>>> {
    if let (r, None) = nil_or(i)? {
        return Ok((r, Vec::new()));
    }
    crate::command::paren_list(i, false, |r| {
        let (r, k) = string(r)?;
        let (r, v) = string(sp(r)?.0)?;
        Ok((r, (k, v)))
    })
}

fn encode_params(e: &mut Encoder, p: &[Param<'_>]) {
    if p.is_empty() {
        e.raw(b"NIL");
        return;
    }
    e.raw(b"(");
    for (k, (a, b)) in p.iter().enumerate() {
        if k > 0 {
            e.raw(b" ");
        }
        e.string(a).raw(b" ").string(b);
    }
    e.raw(b")");
}

fn extension(mut i: &[u8], depth: usize) -> PResult<'_, Extension<'_>> {
    let mut ext = Extension::default();
    if let Ok((r, ())) = sp(i) {
        let (r, d) = match nil_or(r)? {
            (r, None) => (r, None),
            (r, Some(())) => {
                let r = r
                    .strip_prefix(b"(")
                    .ok_or(SyntaxError::Invalid("disposition"))?;
                let (r, t) = string(r)?;
                let (r, _) = sp(r)?;
                let (r, p) = params(r)?;
                let r = r
                    .strip_prefix(b")")
                    .ok_or(SyntaxError::Invalid("disposition"))?;
                (r, Some((t, p)))
            }
        };
        ext.disposition = Some(d);
        i = r;
        if let Ok((r, ())) = sp(i) {
            let (r, l) = if r.first() == Some(&b'(') {
                let mut r = &r[1..];
                let mut langs = Vec::new();
                loop {
                    let (r2, l) = string(r)?;
                    langs.push(l);
                    if let Some(end) = r2.strip_prefix(b")") {
                        break (end, Some(langs));
                    }
                    r = sp(r2)?.0;
                }
            } else {
                let (r, l) = nstring(r)?;
                (r, l.map(|l| vec![l]))
            };
            ext.language = Some(l);
            i = r;
            if let Ok((r, ())) = sp(i) {
                let (r, loc) = nstring(r)?;
                ext.location = Some(loc);
                i = r;
                while let Ok((r, ())) = sp(i) {
                    let (r, x) = body_extension(r, depth + 1)?;
                    ext.more.push(x);
                    i = r;
                }
            }
        }
    }
    Ok((i, ext))
}

fn encode_extension(e: &mut Encoder, ext: &Extension<'_>) {
    let Some(d) = &ext.disposition else { return };
    e.raw(b" ");
    match d {
        None => {
            e.raw(b"NIL");
        }
        Some((t, p)) => {
            e.raw(b"(").string(t).raw(b" ");
            encode_params(e, p);
            e.raw(b")");
        }
    }
    let Some(l) = &ext.language else { return };
    e.raw(b" ");
    match l {
        None => {
            e.raw(b"NIL");
        }
        Some(langs) => {
            e.raw(b"(");
            for (k, x) in langs.iter().enumerate() {
                if k > 0 {
                    e.raw(b" ");
                }
                e.string(x);
            }
            e.raw(b")");
        }
    }
    let Some(loc) = &ext.location else { return };
    e.raw(b" ");
    encode_nstring(e, loc);
    for x in &ext.more {
        e.raw(b" ");
        encode_body_extension(e, x);
    }
}

/// The optional extension data that ends a part, then its `)`: the first
/// field (multipart parameters, or a single part's MD5) and the rest.
fn extension_tail<'a, T>(
    i: &'a [u8],
    depth: usize,
    first: impl Fn(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, (Option<T>, Extension<'a>)> {
    let (r, out) = match sp(i) {
        Ok((r, ())) => {
            let (r, v) = first(r)?;
            let (r, ext) = extension(r, depth)?;
            (r, (Some(v), ext))
        }
        Err(_) => (i, (None, Extension::default())),
    };
    let r = r
        .strip_prefix(b")")
        .ok_or(SyntaxError::Invalid("body part end"))?;
    Ok((r, out))
}

/// A body field that must be a string; NIL (as empty) only as a quirk.
fn body_string(i: &[u8], q: Quirks) -> PResult<'_, Cow<'_, [u8]>> {
    match nstring(i)? {
        (r, Some(s)) => Ok((r, s)),
        (r, None) if q.nil_body_fields => Ok((r, Cow::Borrowed(&[]))),
        _ => Err(SyntaxError::Invalid("NIL where a string is required")),
    }
}

fn body(i: &[u8], depth: usize, q: Quirks) -> PResult<'_, BodyStructure<'_>> {
    if depth > MAX_BODY_DEPTH {
        return Err(SyntaxError::Invalid("body structure nested too deeply"));
    }
    let r = i.strip_prefix(b"(").ok_or(SyntaxError::Invalid("body"))?;
    if r.first() == Some(&b'(') {
        let mut parts = Vec::new();
        let mut r = r;
        while r.first() == Some(&b'(') {
            let (r2, p) = body(r, depth + 1, q)?;
            parts.push(p);
            r = r2;
        }
        let (r, _) = sp(r)?;
        let (r, subtype) = body_string(r, q)?;
        let (r, (p, ext)) = extension_tail(r, depth, params)?;
        return Ok((
            r,
            BodyStructure::Multi {
                parts,
                subtype,
                params: p,
                ext,
            },
        ));
    }
    let (r, media_type) = body_string(r, q)?;
    let (r, _) = sp(r)?;
    let (r, subtype) = body_string(r, q)?;
    let (r, _) = sp(r)?;
    let (r, p) = params(r)?;
    let (r, _) = sp(r)?;
    let (r, id) = nstring(r)?;
    let (r, _) = sp(r)?;
    let (r, description) = nstring(r)?;
    let (r, _) = sp(r)?;
    let (r, encoding) = body_string(r, q)?;
    let (r, _) = sp(r)?;
    let (r, octets) = number(r)?;
    let fields = BodyFields {
        params: p,
        id,
        description,
        encoding,
        octets,
    };
    let is = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
    let (r, kind) = if is(&media_type, b"TEXT") {
        let (r, _) = sp(r)?;
        let (r, lines) = number(r)?;
        (r, PartKind::Text { lines })
    } else if is(&media_type, b"MESSAGE") && (is(&subtype, b"RFC822") || is(&subtype, b"GLOBAL")) {
        let (r, _) = sp(r)?;
        let (r, env) = envelope(r)?;
        let (r, _) = sp(r)?;
        let (r, inner) = body(r, depth + 1, q)?;
        let (r, _) = sp(r)?;
        let (r, lines) = number(r)?;
        (
            r,
            PartKind::Message {
                envelope: Box::new(env),
                body: Box::new(inner),
                lines,
            },
        )
    } else {
        (r, PartKind::Basic)
    };
    let (r, (md5, ext)) = extension_tail(r, depth, nstring)?;
    Ok((
        r,
        BodyStructure::Single {
            media_type,
            subtype,
            fields,
            kind,
            md5,
            ext,
        },
    ))
}

fn encode_body(e: &mut Encoder, b: &BodyStructure<'_>) {
    e.raw(b"(");
    match b {
        BodyStructure::Multi {
            parts,
            subtype,
            params: p,
            ext,
        } => {
            for part in parts {
                encode_body(e, part);
            }
            e.raw(b" ").string(subtype);
            if let Some(p) = p {
                e.raw(b" ");
                encode_params(e, p);
                encode_extension(e, ext);
            }
        }
        BodyStructure::Single {
            media_type,
            subtype,
            fields,
            kind,
            md5,
            ext,
        } => {
            e.string(media_type).raw(b" ").string(subtype).raw(b" ");
            encode_params(e, &fields.params);
            e.raw(b" ");
            encode_nstring(e, &fields.id);
            e.raw(b" ");
            encode_nstring(e, &fields.description);
            e.raw(b" ")
                .string(&fields.encoding)
                .raw(b" ")
                .number(u64::from(fields.octets));
            match kind {
                PartKind::Basic => {}
                PartKind::Text { lines } => {
                    e.raw(b" ").number(u64::from(*lines));
                }
                PartKind::Message {
                    envelope: env,
                    body: inner,
                    lines,
                } => {
                    e.raw(b" ");
                    encode_envelope(e, env);
                    e.raw(b" ");
                    encode_body(e, inner);
                    e.raw(b" ").number(u64::from(*lines));
                }
            }
            if let Some(m) = md5 {
                e.raw(b" ");
                encode_nstring(e, m);
                encode_extension(e, ext);
            }
        }
    }
    e.raw(b")");
}

fn own(c: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
    Cow::Owned(c.into_owned())
}

fn own_opt(c: Option<Cow<'_, [u8]>>) -> Option<Cow<'static, [u8]>> {
    c.map(own)
}

fn own_params(p: Vec<Param<'_>>) -> Vec<Param<'static>> {
    p.into_iter().map(|(k, v)| (own(k), own(v))).collect()
}

impl Response<'_> {
    /// The same response owning all its bytes, to keep it after the
    /// input buffer is gone.
    pub fn into_owned(self) -> Response<'static> {
        match self {
            Response::Status {
                tag,
                kind,
                code,
                text,
            } => Response::Status {
                tag,
                kind,
                code,
                text,
            },
            Response::Continue(t) => Response::Continue(t),
            Response::Capability(c) => Response::Capability(c),
            Response::Enabled(c) => Response::Enabled(c),
            Response::Flags(f) => Response::Flags(f),
            Response::Exists(n) => Response::Exists(n),
            Response::Recent(n) => Response::Recent(n),
            Response::Expunge(n) => Response::Expunge(n),
            Response::Vanished { earlier, uids } => Response::Vanished { earlier, uids },
            Response::List {
                lsub,
                attributes,
                delimiter,
                mailbox,
                extended,
            } => Response::List {
                lsub,
                attributes,
                delimiter,
                mailbox,
                extended,
            },
            Response::MailboxStatus {
                mailbox,
                items,
                mailbox_id,
            } => Response::MailboxStatus {
                mailbox,
                items,
                mailbox_id,
            },
            Response::Quota { root, resources } => Response::Quota { root, resources },
            Response::QuotaRoot { mailbox, roots } => Response::QuotaRoot { mailbox, roots },
            Response::Search(n, m) => Response::Search(n, m),
            Response::Sort(n) => Response::Sort(n),
            Response::Thread(t) => Response::Thread(t),
            Response::Fetch(n, v) => {
                Response::Fetch(n, v.into_iter().map(FetchValue::into_owned).collect())
            }
            Response::Id(f) => {
                Response::Id(f.map(|f| f.into_iter().map(|(k, v)| (own(k), own_opt(v))).collect()))
            }
            Response::Namespace(lists) => Response::Namespace(
                lists.map(|l| l.into_iter().map(NamespaceEntry::into_owned).collect()),
            ),
            Response::ESearch { tag, uid, items } => Response::ESearch {
                tag: own_opt(tag),
                uid,
                items,
            },
        }
    }
}

impl NamespaceEntry<'_> {
    /// The same entry owning its bytes.
    pub fn into_owned(self) -> NamespaceEntry<'static> {
        NamespaceEntry {
            prefix: own(self.prefix),
            delimiter: self.delimiter,
            extensions: self
                .extensions
                .into_iter()
                .map(|(k, v)| (own(k), v.into_iter().map(own).collect()))
                .collect(),
        }
    }
}

impl FetchValue<'_> {
    /// The same value owning its bytes.
    pub fn into_owned(self) -> FetchValue<'static> {
        match self {
            FetchValue::Flags(f) => FetchValue::Flags(f),
            FetchValue::Uid(n) => FetchValue::Uid(n),
            FetchValue::InternalDate(d) => FetchValue::InternalDate(Cow::Owned(d.into_owned())),
            FetchValue::Rfc822Size(n) => FetchValue::Rfc822Size(n),
            FetchValue::ModSeq(n) => FetchValue::ModSeq(n),
            FetchValue::EmailId(id) => FetchValue::EmailId(id),
            FetchValue::ThreadId(id) => FetchValue::ThreadId(id),
            FetchValue::Envelope(e) => FetchValue::Envelope(Box::new(e.into_owned())),
            FetchValue::Body(b) => FetchValue::Body(Box::new(b.into_owned())),
            FetchValue::BodyStructure(b) => FetchValue::BodyStructure(Box::new(b.into_owned())),
            FetchValue::BodySection {
                section,
                origin,
                data,
            } => FetchValue::BodySection {
                section: section.into_owned(),
                origin,
                data: own_opt(data),
            },
            FetchValue::Rfc822 { part, data } => FetchValue::Rfc822 {
                part,
                data: own_opt(data),
            },
            FetchValue::Binary { part, origin, data } => FetchValue::Binary {
                part,
                origin,
                data: own_opt(data),
            },
            FetchValue::BinarySize { part, size } => FetchValue::BinarySize { part, size },
        }
    }
}

impl Address<'_> {
    /// The same address owning its bytes.
    pub fn into_owned(self) -> Address<'static> {
        Address {
            name: own_opt(self.name),
            adl: own_opt(self.adl),
            mailbox: own_opt(self.mailbox),
            host: own_opt(self.host),
        }
    }
}

impl Envelope<'_> {
    /// The same envelope owning its bytes.
    pub fn into_owned(self) -> Envelope<'static> {
        let list = |l: Vec<Address<'_>>| l.into_iter().map(Address::into_owned).collect();
        Envelope {
            date: own_opt(self.date),
            subject: own_opt(self.subject),
            from: list(self.from),
            sender: list(self.sender),
            reply_to: list(self.reply_to),
            to: list(self.to),
            cc: list(self.cc),
            bcc: list(self.bcc),
            in_reply_to: own_opt(self.in_reply_to),
            message_id: own_opt(self.message_id),
        }
    }
}

impl BodyExtension<'_> {
    /// The same data owning its bytes.
    pub fn into_owned(self) -> BodyExtension<'static> {
        match self {
            BodyExtension::String(s) => BodyExtension::String(own_opt(s)),
            BodyExtension::Number(n) => BodyExtension::Number(n),
            BodyExtension::List(l) => {
                BodyExtension::List(l.into_iter().map(BodyExtension::into_owned).collect())
            }
        }
    }
}

impl Extension<'_> {
    /// The same extension data owning its bytes.
    pub fn into_owned(self) -> Extension<'static> {
        Extension {
            disposition: self
                .disposition
                .map(|d| d.map(|(t, p)| (own(t), own_params(p)))),
            language: self
                .language
                .map(|l| l.map(|l| l.into_iter().map(own).collect())),
            location: self.location.map(own_opt),
            more: self
                .more
                .into_iter()
                .map(BodyExtension::into_owned)
                .collect(),
        }
    }
}

impl BodyStructure<'_> {
    /// The same structure owning its bytes.
    pub fn into_owned(self) -> BodyStructure<'static> {
        match self {
            BodyStructure::Single {
                media_type,
                subtype,
                fields,
                kind,
                md5,
                ext,
            } => BodyStructure::Single {
                media_type: own(media_type),
                subtype: own(subtype),
                fields: BodyFields {
                    params: own_params(fields.params),
                    id: own_opt(fields.id),
                    description: own_opt(fields.description),
                    encoding: own(fields.encoding),
                    octets: fields.octets,
                },
                kind: match kind {
                    PartKind::Basic => PartKind::Basic,
                    PartKind::Text { lines } => PartKind::Text { lines },
                    PartKind::Message {
                        envelope,
                        body,
                        lines,
                    } => PartKind::Message {
                        envelope: Box::new(envelope.into_owned()),
                        body: Box::new(body.into_owned()),
                        lines,
                    },
                },
                md5: md5.map(own_opt),
                ext: ext.into_owned(),
            },
            BodyStructure::Multi {
                parts,
                subtype,
                params,
                ext,
            } => BodyStructure::Multi {
                parts: parts.into_iter().map(BodyStructure::into_owned).collect(),
                subtype: own(subtype),
                params: params.map(own_params),
                ext: ext.into_owned(),
            },
        }
    }
}
