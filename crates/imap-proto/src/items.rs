//! Flags, FETCH data items with sections, and SEARCH keys.

use std::borrow::Cow;

use crate::core::{
    Encoder, PResult, SyntaxError, astring, atom, atom_bytes, is_atom_char, number, sp, upper,
};
use crate::seq::{self, SequenceSet};

/// A message flag: a system flag (`\Seen` …) or a keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword (an atom without `\`).
    Keyword(String),
    /// Another `\Something` flag.
    Extension(String),
}

impl Flag {
    /// A keyword flag, validated as an atom.
    pub fn keyword(k: &str) -> Option<Flag> {
        (!k.is_empty() && k.bytes().all(is_atom_char) && !k.starts_with('\\'))
            .then(|| Flag::Keyword(k.to_owned()))
    }

    /// The flag as written on the wire.
    fn write(&self, e: &mut Encoder) {
        match self {
            Flag::Seen => e.raw(b"\\Seen"),
            Flag::Answered => e.raw(b"\\Answered"),
            Flag::Flagged => e.raw(b"\\Flagged"),
            Flag::Deleted => e.raw(b"\\Deleted"),
            Flag::Draft => e.raw(b"\\Draft"),
            Flag::Keyword(k) => atom_only(e, k),
            Flag::Extension(x) => atom_only(e.raw(b"\\"), x),
        };
    }
}

pub(crate) fn flag(i: &[u8]) -> PResult<'_, Flag> {
    if let Some(r) = i.strip_prefix(b"\\*") {
        // `\*` in PERMANENTFLAGS: new keywords may be created.
        return Ok((r, Flag::Extension("*".into())));
    }
    // ATOM-CHARs are ASCII: no UTF-8 check needed to make a String.
    let text = |a: &[u8]| a.iter().map(|&b| char::from(b)).collect::<String>();
    if let Some(r) = i.strip_prefix(b"\\") {
        let (r, a) = atom_bytes(r)?;
        let f = match &*upper(a) {
            b"SEEN" => Flag::Seen,
            b"ANSWERED" => Flag::Answered,
            b"FLAGGED" => Flag::Flagged,
            b"DELETED" => Flag::Deleted,
            b"DRAFT" => Flag::Draft,
            _ => Flag::Extension(text(a)),
        };
        return Ok((r, f));
    }
    let (r, a) = atom_bytes(i)?;
    Ok((r, Flag::Keyword(text(a))))
}

/// Writes only the ATOM-CHARs of a keyword built by hand (the variants
/// are public), so no flag can inject a line or a new argument.
fn atom_only<'e>(e: &'e mut Encoder, v: &str) -> &'e mut Encoder {
    if v.bytes().all(|b| is_atom_char(b) || b == b'*') {
        return e.raw(v.as_bytes());
    }
    let kept: Vec<u8> = v.bytes().filter(|&b| is_atom_char(b)).collect();
    e.raw(&kept)
}

/// `(flag flag …)`, possibly empty.
pub(crate) fn flag_list(i: &[u8]) -> PResult<'_, Vec<Flag>> {
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("flag list"))?;
    let mut flags = Vec::new();
    if let Some(rest) = r.strip_prefix(b")") {
        return Ok((rest, flags));
    }
    loop {
        let (r2, f) = flag(r)?;
        flags.push(f);
        if let Some(rest) = r2.strip_prefix(b")") {
            return Ok((rest, flags));
        }
        r = sp(r2)?.0;
    }
}

pub(crate) fn encode_flags(e: &mut Encoder, flags: &[Flag]) {
    crate::core::encode_paren(e, flags, |e, f| f.write(e));
}

/// Which part of a message `BODY[…]` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText<'a> {
    /// The whole part.
    Full,
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (…)`
    HeaderFields(Vec<Cow<'a, str>>),
    /// `HEADER.FIELDS.NOT (…)`
    HeaderFieldsNot(Vec<Cow<'a, str>>),
    /// `TEXT`
    Text,
    /// `MIME` (only with a part number)
    Mime,
}

/// `[part.part…][.text]` with an optional `<offset.count>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Section<'a> {
    /// MIME part numbers (1-based), empty for the whole message.
    pub part: Vec<u32>,
    /// What of that part.
    pub text: SectionText<'a>,
    /// `<offset.count>`
    pub partial: Option<(u32, u32)>,
}

/// A FETCH data item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchItem<'a> {
    /// `FLAGS`
    Flags,
    /// `UID`
    Uid,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822`
    Rfc822,
    /// `RFC822.HEADER`
    Rfc822Header,
    /// `RFC822.TEXT`
    Rfc822Text,
    /// `ENVELOPE`
    Envelope,
    /// `BODY` (structure without extension data)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `MODSEQ` (CONDSTORE)
    ModSeq,
    /// `EMAILID` (RFC 8474 OBJECTID)
    EmailId,
    /// `THREADID` (RFC 8474 OBJECTID)
    ThreadId,
    /// `BODY[…]` or `BODY.PEEK[…]`
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section<'a>,
    },
    /// `BINARY[…]` / `BINARY.PEEK[…]` (RFC 3516)
    Binary {
        /// `.PEEK`
        peek: bool,
        /// Part numbers.
        part: Vec<u32>,
        /// `<offset.count>`
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[…]`
    BinarySize(Vec<u32>),
}

pub(crate) fn part_numbers(i: &[u8]) -> PResult<'_, Vec<u32>> {
    let mut parts = Vec::new();
    let mut r = i;
    while r.first().is_some_and(u8::is_ascii_digit) {
        let (r2, n) = crate::core::nz_number(r)?;
        parts.push(n);
        r = match r2.strip_prefix(b".") {
            Some(r3) if r3.first().is_some_and(u8::is_ascii_digit) => r3,
            Some(_) => return Ok((r2, parts)), // "1.HEADER": keep the dot for the text
            None => r2,
        };
    }
    Ok((r, parts))
}

/// Bytes that must be UTF-8, still borrowed when they were.
pub(crate) fn utf8<'a>(b: Cow<'a, [u8]>, what: &'static str) -> Result<Cow<'a, str>, SyntaxError> {
    match b {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|_| SyntaxError::Invalid(what))
}

fn header_list(i: &[u8]) -> PResult<'_, Vec<Cow<'_, str>>> {
    let (i, _) = sp(i)?;
    let mut r = i
        .strip_prefix(b"(")
        .ok_or(SyntaxError::Invalid("header list"))?;
    let mut names = Vec::with_capacity(8);
    loop {
        let (r2, n) = astring(r)?;
        names.push(utf8(n, "header name")?);
        if let Some(rest) = r2.strip_prefix(b")") {
            return Ok((rest, names));
        }
        r = sp(r2)?.0;
    }
}

fn partial(i: &[u8]) -> PResult<'_, Option<(u32, u32)>> {
    let Some(r) = i.strip_prefix(b"<") else {
        return Ok((i, None));
    };
    let (r, a) = number(r)?;
    let r = r
        .strip_prefix(b".")
        .ok_or(SyntaxError::Invalid("partial"))?;
    let (r, b) = crate::core::nz_number(r)?;
    let r = r
        .strip_prefix(b">")
        .ok_or(SyntaxError::Invalid("partial"))?;
    Ok((r, Some((a, b))))
}

/// `[section]` without the `<partial>`.
pub(crate) fn section_only(i: &[u8]) -> PResult<'_, Section<'_>> {
    let i = i
        .strip_prefix(b"[")
        .ok_or(SyntaxError::Invalid("section"))?;
    let (i, part) = part_numbers(i)?;
    let i = if part.is_empty() {
        i
    } else {
        i.strip_prefix(b".").unwrap_or(i)
    };
    let upper = upper(&i[..i.len().min(17)]);
    let (i, text) = if upper.starts_with(b"HEADER.FIELDS.NOT") {
        let (r, l) = header_list(&i[17..])?;
        (r, SectionText::HeaderFieldsNot(l))
    } else if upper.starts_with(b"HEADER.FIELDS") {
        let (r, l) = header_list(&i[13..])?;
        (r, SectionText::HeaderFields(l))
    } else if upper.starts_with(b"HEADER") {
        (&i[6..], SectionText::Header)
    } else if upper.starts_with(b"TEXT") {
        (&i[4..], SectionText::Text)
    } else if upper.starts_with(b"MIME") && !part.is_empty() {
        (&i[4..], SectionText::Mime)
    } else {
        (i, SectionText::Full)
    };
    let i = i
        .strip_prefix(b"]")
        .ok_or(SyntaxError::Invalid("section end"))?;
    Ok((
        i,
        Section {
            part,
            text,
            partial: None,
        },
    ))
}

fn section(i: &[u8]) -> PResult<'_, Section<'_>> {
    let (i, mut s) = section_only(i)?;
    let (i, p) = partial(i)?;
    s.partial = p;
    Ok((i, s))
}

fn fetch_item(i: &[u8]) -> PResult<'_, FetchItem<'_>> {
    let n = i
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'.')
        .count();
    let word = upper(&i[..n]);
    let r = &i[n..];
    let item = match &*word {
        b"FLAGS" => FetchItem::Flags,
        b"UID" => FetchItem::Uid,
        b"INTERNALDATE" => FetchItem::InternalDate,
        b"RFC822.SIZE" => FetchItem::Rfc822Size,
        b"RFC822" => FetchItem::Rfc822,
        b"RFC822.HEADER" => FetchItem::Rfc822Header,
        b"RFC822.TEXT" => FetchItem::Rfc822Text,
        b"ENVELOPE" => FetchItem::Envelope,
        b"BODYSTRUCTURE" => FetchItem::BodyStructure,
        b"MODSEQ" => FetchItem::ModSeq,
        b"EMAILID" => FetchItem::EmailId,
        b"THREADID" => FetchItem::ThreadId,
        b"BODY" | b"BODY.PEEK" if r.first() == Some(&b'[') => {
            let (r, section) = section(r)?;
            return Ok((
                r,
                FetchItem::BodySection {
                    peek: &*word == b"BODY.PEEK",
                    section,
                },
            ));
        }
        b"BODY" => FetchItem::Body,
        b"BINARY" | b"BINARY.PEEK" => {
            let r = r
                .strip_prefix(b"[")
                .ok_or(SyntaxError::Invalid("BINARY section"))?;
            let (r, part) = part_numbers(r)?;
            let r = r
                .strip_prefix(b"]")
                .ok_or(SyntaxError::Invalid("BINARY section"))?;
            let (r, p) = partial(r)?;
            return Ok((
                r,
                FetchItem::Binary {
                    peek: &*word == b"BINARY.PEEK",
                    part,
                    partial: p,
                },
            ));
        }
        b"BINARY.SIZE" => {
            let r = r
                .strip_prefix(b"[")
                .ok_or(SyntaxError::Invalid("BINARY.SIZE section"))?;
            let (r, part) = part_numbers(r)?;
            let r = r
                .strip_prefix(b"]")
                .ok_or(SyntaxError::Invalid("BINARY.SIZE section"))?;
            return Ok((r, FetchItem::BinarySize(part)));
        }
        _ => return Err(SyntaxError::Invalid("unknown fetch item")),
    };
    Ok((r, item))
}

/// `ALL`, `FAST`, `FULL`, one item, or a parenthesised list.
pub(crate) fn fetch_items(i: &[u8]) -> PResult<'_, Vec<FetchItem<'_>>> {
    use FetchItem::*;
    const MACROS: [(&[u8], &[FetchItem<'static>]); 3] = [
        (b"ALL", &[Flags, InternalDate, Rfc822Size, Envelope]),
        (b"FAST", &[Flags, InternalDate, Rfc822Size]),
        (b"FULL", &[Flags, InternalDate, Rfc822Size, Envelope, Body]),
    ];
    if i.first() != Some(&b'(') {
        for (name, items) in MACROS {
            if i.len() >= name.len()
                && i[..name.len()].eq_ignore_ascii_case(name)
                && i.get(name.len())
                    .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'.')
            {
                return Ok((&i[name.len()..], items.to_vec()));
            }
        }
    }
    if let Some(mut r) = i.strip_prefix(b"(") {
        let mut items = Vec::with_capacity(8);
        loop {
            let (r2, it) = fetch_item(r)?;
            items.push(it);
            if let Some(rest) = r2.strip_prefix(b")") {
                return Ok((rest, items));
            }
            r = sp(r2)?.0;
        }
    }
    let (r, it) = fetch_item(i)?;
    Ok((r, vec![it]))
}

pub(crate) fn encode_fetch_items(e: &mut Encoder, items: &[FetchItem<'_>]) {
    crate::core::encode_paren(e, items, |e, it| {
        let word: &[u8] = match it {
            FetchItem::Flags => b"FLAGS",
            FetchItem::Uid => b"UID",
            FetchItem::InternalDate => b"INTERNALDATE",
            FetchItem::Rfc822Size => b"RFC822.SIZE",
            FetchItem::Rfc822 => b"RFC822",
            FetchItem::Rfc822Header => b"RFC822.HEADER",
            FetchItem::Rfc822Text => b"RFC822.TEXT",
            FetchItem::Envelope => b"ENVELOPE",
            FetchItem::Body => b"BODY",
            FetchItem::BodyStructure => b"BODYSTRUCTURE",
            FetchItem::ModSeq => b"MODSEQ",
            FetchItem::EmailId => b"EMAILID",
            FetchItem::ThreadId => b"THREADID",
            FetchItem::BinarySize(p) => {
                e.raw(b"BINARY.SIZE[");
                write_parts(e, p);
                e.raw(b"]");
                return;
            }
            FetchItem::Binary {
                peek,
                part,
                partial,
            } => {
                e.raw(if *peek { b"BINARY.PEEK[" } else { b"BINARY[" });
                write_parts(e, part);
                e.raw(b"]");
                write_partial(e, *partial);
                return;
            }
            FetchItem::BodySection { peek, section } => {
                encode_body_section(e, *peek, section);
                return;
            }
        };
        e.raw(word);
    });
}

/// Writes `BODY[section]<partial>` (or `BODY.PEEK[…]`).
pub(crate) fn encode_body_section(e: &mut Encoder, peek: bool, section: &Section<'_>) {
    e.raw(if peek { b"BODY.PEEK[" } else { b"BODY[" });
    write_parts(e, &section.part);
    if !section.part.is_empty() && section.text != SectionText::Full {
        e.raw(b".");
    }
    let (word, names): (&[u8], _) = match &section.text {
        SectionText::Full => (b"", None),
        SectionText::Header => (b"HEADER", None),
        SectionText::Text => (b"TEXT", None),
        SectionText::Mime => (b"MIME", None),
        SectionText::HeaderFields(l) => (b"HEADER.FIELDS ", Some(l)),
        SectionText::HeaderFieldsNot(l) => (b"HEADER.FIELDS.NOT ", Some(l)),
    };
    e.raw(word);
    if let Some(l) = names {
        crate::core::encode_paren(e, l, |e, h| {
            e.astring(h.as_bytes());
        });
    }
    e.raw(b"]");
    write_partial(e, section.partial);
}

pub(crate) fn write_parts(e: &mut Encoder, part: &[u32]) {
    for (k, p) in part.iter().enumerate() {
        if k > 0 {
            e.raw(b".");
        }
        e.number(u64::from(*p));
    }
}

fn write_partial(e: &mut Encoder, p: Option<(u32, u32)>) {
    if let Some((a, b)) = p {
        e.raw(b"<")
            .number(u64::from(a))
            .raw(b".")
            .number(u64::from(b))
            .raw(b">");
    }
}

/// A SEARCH key (RFC 9051 §6.4.4, plus MODSEQ from RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SearchKey<'a> {
    /// `ALL`
    All,
    /// `ANSWERED`, `DELETED`, `DRAFT`, `FLAGGED`, `SEEN`, `RECENT`, `NEW`,
    /// `OLD`, and their `UN…` forms, by name.
    Flag(&'static str),
    /// `KEYWORD k`
    Keyword(String),
    /// `UNKEYWORD k`
    Unkeyword(String),
    /// `BCC`, `BODY`, `CC`, `FROM`, `SUBJECT`, `TEXT`, `TO` with a string.
    Text(&'static str, Cow<'a, [u8]>),
    /// `HEADER field value`
    Header(Cow<'a, str>, Cow<'a, [u8]>),
    /// `BEFORE`, `ON`, `SINCE`, `SENTBEFORE`, `SENTON`, `SENTSINCE` with a
    /// date `d-Mon-yyyy`.
    Date(&'static str, String),
    /// `LARGER n`
    Larger(u32),
    /// `SMALLER n`
    Smaller(u32),
    /// `UID set`
    Uid(SequenceSet),
    /// A sequence set.
    Seq(SequenceSet),
    /// `MODSEQ n` (up to 2^63-1)
    ModSeq(u64),
    /// `NOT key`
    Not(Box<SearchKey<'a>>),
    /// `OR key key`
    Or(Box<SearchKey<'a>>, Box<SearchKey<'a>>),
    /// `(key …)`: all of them.
    And(Vec<SearchKey<'a>>),
}

const FLAG_KEYS: [&str; 16] = [
    "ANSWERED",
    "DELETED",
    "DRAFT",
    "FLAGGED",
    "SEEN",
    "RECENT",
    "NEW",
    "OLD",
    "UNANSWERED",
    "UNDELETED",
    "UNDRAFT",
    "UNFLAGGED",
    "UNSEEN",
    "ALL",
    "",
    "",
];
const TEXT_KEYS: [&str; 7] = ["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"];
const DATE_KEYS: [&str; 6] = ["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"];

/// Deepest nesting of parentheses, NOT and OR accepted.
pub const MAX_SEARCH_DEPTH: usize = 32;

fn is_month(m: &[u8]) -> bool {
    [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .any(|x| x.as_bytes().eq_ignore_ascii_case(m))
}

/// `date-time` (RFC 3501 §9): `"dd-Mon-yyyy hh:mm:ss +zzzz"`, the day
/// space-padded or zero-padded to two places; always a quoted string.
pub(crate) fn date_time(i: &[u8]) -> PResult<'_, String> {
    let bad = SyntaxError::Invalid("date-time");
    if i.first() != Some(&b'"') {
        return Err(bad);
    }
    let (r, raw) = crate::core::string(i)?;
    let d = &raw[..];
    let digits = |range: std::ops::Range<usize>| d[range].iter().all(u8::is_ascii_digit);
    let ok = d.len() == 26
        && (d[0] == b' ' || d[0].is_ascii_digit())
        && digits(1..2)
        && d[2] == b'-'
        && is_month(&d[3..6])
        && d[6] == b'-'
        && digits(7..11)
        && d[11] == b' '
        && digits(12..14)
        && d[14] == b':'
        && digits(15..17)
        && d[17] == b':'
        && digits(18..20)
        && d[20] == b' '
        && (d[21] == b'+' || d[21] == b'-')
        && digits(22..26);
    if !ok {
        return Err(bad);
    }
    Ok((r, String::from_utf8_lossy(d).into_owned()))
}

fn date(i: &[u8]) -> PResult<'_, String> {
    let (r, raw) = if i.first() == Some(&b'"') {
        astring(i)?
    } else {
        let n = i
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        (&i[n..], std::borrow::Cow::Borrowed(&i[..n]))
    };
    let s = std::str::from_utf8(&raw).map_err(|_| SyntaxError::Invalid("date"))?;
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() == 3
        && (1..=2).contains(&parts[0].len())
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && is_month(parts[1].as_bytes())
        && parts[2].len() == 4
        && parts[2].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(SyntaxError::Invalid("date"));
    }
    Ok((r, s.to_owned()))
}

pub(crate) fn search_key(i: &[u8], depth: usize) -> PResult<'_, SearchKey<'_>> {
    if depth > MAX_SEARCH_DEPTH {
        return Err(SyntaxError::Invalid("search keys nested too deeply"));
    }
    if let Some(mut r) = i.strip_prefix(b"(") {
        let mut keys = Vec::new();
        loop {
            let (r2, k) = search_key(r, depth + 1)?;
            keys.push(k);
            if let Some(rest) = r2.strip_prefix(b")") {
                return Ok((rest, SearchKey::And(keys)));
            }
            r = sp(r2)?.0;
        }
    }
    if i.first()
        .is_some_and(|b| b.is_ascii_digit() || *b == b'*' || *b == b'$')
    {
        let (r, s) = seq::parse(i)?;
        return Ok((r, SearchKey::Seq(s)));
    }
    let (r, word) = atom(i)?;
    let w = upper(word.as_bytes());
    let w = std::str::from_utf8(&w).unwrap_or_default();
    if let Some(f) = FLAG_KEYS.iter().find(|f| !f.is_empty() && **f == w) {
        return Ok((
            r,
            if *f == "ALL" {
                SearchKey::All
            } else {
                SearchKey::Flag(f)
            },
        ));
    }
    if let Some(t) = TEXT_KEYS.iter().find(|t| **t == w) {
        let (r, _) = sp(r)?;
        let (r, s) = astring(r)?;
        return Ok((r, SearchKey::Text(t, s)));
    }
    if let Some(d) = DATE_KEYS.iter().find(|d| **d == w) {
        let (r, _) = sp(r)?;
        let (r, s) = date(r)?;
        return Ok((r, SearchKey::Date(d, s)));
    }
    match w {
        "KEYWORD" | "UNKEYWORD" => {
            let (r, _) = sp(r)?;
            let (r, k) = atom(r)?;
            Ok((
                r,
                if w == "KEYWORD" {
                    SearchKey::Keyword(k.to_owned())
                } else {
                    SearchKey::Unkeyword(k.to_owned())
                },
            ))
        }
        "HEADER" => {
            let (r, _) = sp(r)?;
            let (r, f) = astring(r)?;
            let (r, _) = sp(r)?;
            let (r, v) = astring(r)?;
            Ok((r, SearchKey::Header(utf8(f, "header name")?, v)))
        }
        "LARGER" | "SMALLER" => {
            let (r, _) = sp(r)?;
            let (r, n) = number(r)?;
            Ok((
                r,
                if w == "LARGER" {
                    SearchKey::Larger(n)
                } else {
                    SearchKey::Smaller(n)
                },
            ))
        }
        "UID" => {
            let (r, _) = sp(r)?;
            let (r, s) = seq::parse(r)?;
            Ok((r, SearchKey::Uid(s)))
        }
        "MODSEQ" => {
            let (mut r, _) = sp(r)?;
            // `MODSEQ "/flags/\\seen" all n` (RFC 7162 §3.1.5): the store
            // keeps one MODSEQ per message, which is never below a flag's,
            // so the entry is read and the message's MODSEQ compared.
            if r.first() == Some(&b'"') {
                let (r2, _entry) = crate::core::string(r)?;
                let (r2, _) = sp(r2)?;
                let (r2, kind) = crate::core::atom(r2)?;
                if !["priv", "shared", "all"]
                    .iter()
                    .any(|k| kind.eq_ignore_ascii_case(k))
                {
                    return Err(SyntaxError::Invalid("MODSEQ entry type"));
                }
                r = sp(r2)?.0;
            }
            let (r, v) = crate::core::number64(r)?;
            Ok((r, SearchKey::ModSeq(v)))
        }
        "NOT" => {
            let (r, _) = sp(r)?;
            let (r, k) = search_key(r, depth + 1)?;
            Ok((r, SearchKey::Not(Box::new(k))))
        }
        "OR" => {
            let (r, _) = sp(r)?;
            let (r, a) = search_key(r, depth + 1)?;
            let (r, _) = sp(r)?;
            let (r, b) = search_key(r, depth + 1)?;
            Ok((r, SearchKey::Or(Box::new(a), Box::new(b))))
        }
        _ => Err(SyntaxError::Invalid("unknown search key")),
    }
}

pub(crate) fn encode_search_key(e: &mut Encoder, k: &SearchKey<'_>) {
    match k {
        SearchKey::All => {
            e.raw(b"ALL");
        }
        SearchKey::Flag(f) => {
            e.raw(f.as_bytes());
        }
        SearchKey::Keyword(k) => {
            e.raw(format!("KEYWORD {k}").as_bytes());
        }
        SearchKey::Unkeyword(k) => {
            e.raw(format!("UNKEYWORD {k}").as_bytes());
        }
        SearchKey::Text(t, s) => {
            e.raw(t.as_bytes()).raw(b" ").astring(s);
        }
        SearchKey::Header(f, v) => {
            e.raw(b"HEADER ").astring(f.as_bytes()).raw(b" ").astring(v);
        }
        SearchKey::Date(d, s) => {
            e.raw(format!("{d} {s}").as_bytes());
        }
        SearchKey::Larger(n) => {
            e.raw(format!("LARGER {n}").as_bytes());
        }
        SearchKey::Smaller(n) => {
            e.raw(format!("SMALLER {n}").as_bytes());
        }
        SearchKey::Uid(s) => {
            e.raw(format!("UID {s}").as_bytes());
        }
        SearchKey::Seq(s) => {
            e.raw(s.to_string().as_bytes());
        }
        SearchKey::ModSeq(n) => {
            e.raw(format!("MODSEQ {n}").as_bytes());
        }
        SearchKey::Not(k) => {
            e.raw(b"NOT ");
            encode_search_key(e, k);
        }
        SearchKey::Or(a, b) => {
            e.raw(b"OR ");
            encode_search_key(e, a);
            e.raw(b" ");
            encode_search_key(e, b);
        }
        SearchKey::And(keys) => crate::core::encode_paren(e, keys, encode_search_key),
    }
}

fn own_str(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

impl SectionText<'_> {
    /// The same section text owning its header names.
    pub fn into_owned(self) -> SectionText<'static> {
        let names = |l: Vec<Cow<'_, str>>| l.into_iter().map(own_str).collect();
        match self {
            SectionText::Full => SectionText::Full,
            SectionText::Header => SectionText::Header,
            SectionText::HeaderFields(l) => SectionText::HeaderFields(names(l)),
            SectionText::HeaderFieldsNot(l) => SectionText::HeaderFieldsNot(names(l)),
            SectionText::Text => SectionText::Text,
            SectionText::Mime => SectionText::Mime,
        }
    }
}

impl Section<'_> {
    /// The same section owning its header names.
    pub fn into_owned(self) -> Section<'static> {
        Section {
            part: self.part,
            text: self.text.into_owned(),
            partial: self.partial,
        }
    }
}

impl FetchItem<'_> {
    /// The same item owning its bytes.
    pub fn into_owned(self) -> FetchItem<'static> {
        use FetchItem::*;
        match self {
            Flags => Flags,
            Uid => Uid,
            InternalDate => InternalDate,
            Rfc822Size => Rfc822Size,
            Rfc822 => Rfc822,
            Rfc822Header => Rfc822Header,
            Rfc822Text => Rfc822Text,
            Envelope => Envelope,
            Body => Body,
            BodyStructure => BodyStructure,
            ModSeq => ModSeq,
            EmailId => EmailId,
            ThreadId => ThreadId,
            BodySection { peek, section } => BodySection {
                peek,
                section: section.into_owned(),
            },
            Binary {
                peek,
                part,
                partial,
            } => Binary {
                peek,
                part,
                partial,
            },
            BinarySize(p) => BinarySize(p),
        }
    }
}

impl SearchKey<'_> {
    /// The same key owning its bytes.
    pub fn into_owned(self) -> SearchKey<'static> {
        use SearchKey::*;
        let own = |k: Box<SearchKey<'_>>| Box::new(k.into_owned());
        match self {
            All => All,
            Flag(f) => Flag(f),
            Keyword(k) => Keyword(k),
            Unkeyword(k) => Unkeyword(k),
            Text(t, v) => Text(t, Cow::Owned(v.into_owned())),
            Header(f, v) => Header(own_str(f), Cow::Owned(v.into_owned())),
            Date(d, s) => Date(d, s),
            Larger(n) => Larger(n),
            Smaller(n) => Smaller(n),
            Uid(s) => Uid(s),
            Seq(s) => Seq(s),
            ModSeq(n) => ModSeq(n),
            Not(k) => Not(own(k)),
            Or(a, b) => Or(own(a), own(b)),
            And(l) => And(l.into_iter().map(SearchKey::into_owned).collect()),
        }
    }
}
