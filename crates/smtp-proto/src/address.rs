//! Mailboxes and paths: `local-part@domain`, address literals, the null
//! reverse-path `<>` and the special forward-path `<Postmaster>`
//! (RFC 5321 §4.1.2, SMTPUTF8 per RFC 6531).
//!
//! Every type here is valid by construction: none can hold a CR, LF or other
//! control character, so encoding one can never inject a line.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::multi::separated_list1;
use nom::sequence::{delimited, terminated};

/// A value was refused by one of the validating constructors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidAddress {
    /// Not a syntactically valid domain name.
    #[error("invalid domain")]
    Domain,
    /// Not a valid local part (control character, or empty where forbidden).
    #[error("invalid local part")]
    LocalPart,
    /// Not a valid address literal.
    #[error("invalid address literal")]
    Literal,
}

/// Maximum length of a domain name in octets (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Maximum length of one label of a domain name in octets.
pub const MAX_LABEL_LEN: usize = 63;

/// A domain name: dot-separated labels of letters, digits and hyphens, no
/// label starting or ending with a hyphen. Non-ASCII labels (U-labels) are
/// accepted; whether they may appear on the wire is decided by the parser
/// (only in SMTPUTF8 transactions).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Domain<'a>(Cow<'a, str>);

impl<'a> Domain<'a> {
    /// Validates `name` as a domain.
    pub fn new(name: impl Into<Cow<'a, str>>) -> Result<Self, InvalidAddress> {
        let name = name.into();
        if is_valid_domain(&name) {
            Ok(Domain(name))
        } else {
            Err(InvalidAddress::Domain)
        }
    }

    /// The domain as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether every label is ASCII (no SMTPUTF8 needed to send it).
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Domain<'static> {
        Domain(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Domain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({:?})", self.0)
    }
}

impl fmt::Display for Domain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> TryFrom<&'a str> for Domain<'a> {
    type Error = InvalidAddress;
    fn try_from(value: &'a str) -> Result<Self, Self::Error> {
        Domain::new(value)
    }
}

pub(crate) fn is_valid_domain(s: &str) -> bool {
    scan_dotted(s, &LDH, true) == Some(s.len())
}

const fn byte_table(extra: &[u8], dash: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b >= 0x80 || (dash && b == b'-');
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// Letters, digits, hyphen, and the bytes of non-ASCII characters.
static LDH: [bool; 256] = byte_table(b"", true);
/// `atext` of RFC 5322, and the bytes of non-ASCII characters.
static ATEXT: [bool; 256] = byte_table(b"!#$%&'*+-/=?^_`{|}~", true);

/// Scans a run of dot-separated words made of `set` bytes from the start of
/// `s`. Returns the length of the run if it is valid: no empty word, and
/// with `domain` rules, labels of at most 63 octets that neither start nor
/// end with a hyphen and a total of at most 255 octets. Non-ASCII
/// characters must not be controls or white space.
fn scan_dotted(s: &str, set: &[bool; 256], domain: bool) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut start = 0;
    let mut non_ascii = false;
    loop {
        while i < b.len() && set[b[i] as usize] {
            non_ascii |= b[i] >= 0x80;
            i += 1;
        }
        let word = &b[start..i];
        if word.is_empty() {
            return None;
        }
        if domain && (word.len() > MAX_LABEL_LEN || word[0] == b'-' || word[word.len() - 1] == b'-')
        {
            return None;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            start = i;
        } else {
            break;
        }
    }
    if domain && i > MAX_DOMAIN_LEN {
        return None;
    }
    if non_ascii {
        // `i` is at an ASCII byte or the end, so a char boundary.
        let ok = s[..i]
            .chars()
            .all(|c| c.is_ascii() || (!c.is_control() && !c.is_whitespace()));
        if !ok {
            return None;
        }
    }
    Some(i)
}

/// An address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]` or a general
/// `[tag:content]` literal (RFC 5321 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressLiteral<'a> {
    /// `[a.b.c.d]`
    Ipv4(Ipv4Addr),
    /// `[IPv6:…]`
    Ipv6(Ipv6Addr),
    /// `[tag:content]` with a standardized tag other than `IPv6`.
    General {
        /// The standardized tag (letters, digits, hyphens).
        tag: Cow<'a, str>,
        /// The content: printable ASCII except `[`, `\` and `]`.
        content: Cow<'a, str>,
    },
}

impl<'a> AddressLiteral<'a> {
    /// Builds a general address literal, validating both parts.
    pub fn general(
        tag: impl Into<Cow<'a, str>>,
        content: impl Into<Cow<'a, str>>,
    ) -> Result<Self, InvalidAddress> {
        let (tag, content) = (tag.into(), content.into());
        let tag_ok = !tag.is_empty()
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !tag.ends_with('-')
            && !tag.eq_ignore_ascii_case("IPv6");
        let content_ok = !content.is_empty() && content.bytes().all(is_dcontent);
        if tag_ok && content_ok {
            Ok(AddressLiteral::General { tag, content })
        } else {
            Err(InvalidAddress::Literal)
        }
    }

    /// Parses the text between the brackets.
    fn from_inner(inner: &'a str) -> Result<Self, InvalidAddress> {
        if inner
            .as_bytes()
            .get(..5)
            .is_some_and(|b| b.eq_ignore_ascii_case(b"IPv6:"))
        {
            return inner[5..]
                .parse()
                .map(AddressLiteral::Ipv6)
                .map_err(|_| InvalidAddress::Literal);
        }
        if let Some((tag, content)) = inner.split_once(':') {
            return AddressLiteral::general(tag, content);
        }
        inner
            .parse()
            .map(AddressLiteral::Ipv4)
            .map_err(|_| InvalidAddress::Literal)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> AddressLiteral<'static> {
        match self {
            AddressLiteral::Ipv4(a) => AddressLiteral::Ipv4(a),
            AddressLiteral::Ipv6(a) => AddressLiteral::Ipv6(a),
            AddressLiteral::General { tag, content } => AddressLiteral::General {
                tag: Cow::Owned(tag.into_owned()),
                content: Cow::Owned(content.into_owned()),
            },
        }
    }
}

fn is_dcontent(b: u8) -> bool {
    matches!(b, 33..=90 | 94..=126)
}

impl fmt::Display for AddressLiteral<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::Ipv4(a) => write!(f, "[{a}]"),
            AddressLiteral::Ipv6(a) => write!(f, "[IPv6:{a}]"),
            AddressLiteral::General { tag, content } => write!(f, "[{tag}:{content}]"),
        }
    }
}

/// What follows the `@`: a domain or an address literal. Also the argument
/// of EHLO and LHLO.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A domain name.
    Domain(Domain<'a>),
    /// An address literal in brackets.
    Literal(AddressLiteral<'a>),
}

impl Host<'_> {
    /// Whether the host is pure ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            Host::Domain(d) => d.is_ascii(),
            Host::Literal(_) => true,
        }
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Domain(d) => Host::Domain(d.into_owned()),
            Host::Literal(l) => Host::Literal(l.into_owned()),
        }
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        match self {
            Host::Domain(d) => dst.extend_from_slice(d.as_str().as_bytes()),
            Host::Literal(l) => dst.extend_from_slice(l.to_string().as_bytes()),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d.as_str()),
            Host::Literal(l) => l.fmt(f),
        }
    }
}

fn is_dot_string(s: &str) -> bool {
    scan_dotted(s, &ATEXT, false) == Some(s.len())
}

fn is_local_char(c: char) -> bool {
    // qtextSMTP and quoted-pairSMTP together cover %d32-126; UTF-8 per RFC 6531.
    (' '..='~').contains(&c) || (!c.is_ascii() && !c.is_control())
}

/// The part of a mailbox before the `@`, as a value: quoting and
/// backslash escapes removed. Encoding writes a dot-string when the value is
/// one, and a quoted string otherwise.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LocalPart<'a>(Cow<'a, str>);

impl<'a> LocalPart<'a> {
    /// Validates a local part value (printable ASCII, space, or non-control
    /// UTF-8; may be empty, as `""@example.org` is).
    pub fn new(value: impl Into<Cow<'a, str>>) -> Result<Self, InvalidAddress> {
        let value = value.into();
        if value.chars().all(is_local_char) {
            Ok(LocalPart(value))
        } else {
            Err(InvalidAddress::LocalPart)
        }
    }

    /// The unquoted value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it needs quoting on the wire.
    pub fn needs_quoting(&self) -> bool {
        !is_dot_string(&self.0)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> LocalPart<'static> {
        LocalPart(Cow::Owned(self.0.into_owned()))
    }

    fn encode(&self, dst: &mut BytesMut) {
        if !self.needs_quoting() {
            dst.extend_from_slice(self.0.as_bytes());
            return;
        }
        dst.extend_from_slice(b"\"");
        // Each piece ends in the character to escape, except maybe the
        // last, which may end in any character (a multi-octet one too).
        for chunk in self.0.split_inclusive(['"', '\\']) {
            match chunk.strip_suffix(['"', '\\']) {
                Some(body) => {
                    dst.extend_from_slice(body.as_bytes());
                    dst.extend_from_slice(b"\\");
                    dst.extend_from_slice(&chunk.as_bytes()[body.len()..]);
                }
                None => dst.extend_from_slice(chunk.as_bytes()),
            }
        }
        dst.extend_from_slice(b"\"");
    }
}

impl fmt::Debug for LocalPart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalPart({:?})", self.0)
    }
}

/// `local-part@host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox<'a> {
    /// Before the `@`.
    pub local_part: LocalPart<'a>,
    /// After the `@`.
    pub host: Host<'a>,
}

impl<'a> Mailbox<'a> {
    /// Parses `local@domain` (no angle brackets), e.g. for configuration.
    pub fn parse(s: &'a str) -> Result<Self, InvalidAddress> {
        match mailbox(s) {
            Ok(("", m)) => Ok(m),
            _ => Err(InvalidAddress::LocalPart),
        }
    }

    /// Whether the mailbox is pure ASCII (sendable without SMTPUTF8).
    pub fn is_ascii(&self) -> bool {
        self.local_part.0.is_ascii() && self.host.is_ascii()
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox {
            local_part: self.local_part.into_owned(),
            host: self.host.into_owned(),
        }
    }

    /// Writes `local@host` (without angle brackets).
    pub fn encode(&self, dst: &mut BytesMut) {
        self.local_part.encode(dst);
        dst.extend_from_slice(b"@");
        self.host.encode(dst);
    }
}

impl fmt::Display for Mailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        f.write_str(&String::from_utf8_lossy(&b))
    }
}

/// The argument of `MAIL FROM:`: a mailbox or the null path `<>` (used for
/// bounces).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath<'a> {
    /// `<>`
    Null,
    /// `<mailbox>`
    Mailbox(Mailbox<'a>),
}

impl ReversePath<'_> {
    /// Whether the path is pure ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Mailbox(m) => m.is_ascii(),
        }
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> ReversePath<'static> {
        match self {
            ReversePath::Null => ReversePath::Null,
            ReversePath::Mailbox(m) => ReversePath::Mailbox(m.into_owned()),
        }
    }

    /// Writes the path with its angle brackets.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(b"<");
        if let ReversePath::Mailbox(m) = self {
            m.encode(dst);
        }
        dst.extend_from_slice(b">");
    }
}

/// The argument of `RCPT TO:`: a mailbox, or the bare `<Postmaster>` that
/// every server must accept (RFC 5321 §4.5.1). `<>` is not a forward-path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath<'a> {
    /// `<Postmaster>` without a domain (matched case-insensitively).
    Postmaster,
    /// `<mailbox>`
    Mailbox(Mailbox<'a>),
}

impl ForwardPath<'_> {
    /// Whether the path is pure ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(m) => m.is_ascii(),
        }
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> ForwardPath<'static> {
        match self {
            ForwardPath::Postmaster => ForwardPath::Postmaster,
            ForwardPath::Mailbox(m) => ForwardPath::Mailbox(m.into_owned()),
        }
    }

    /// Writes the path with its angle brackets.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            ForwardPath::Postmaster => dst.extend_from_slice(b"<Postmaster>"),
            ForwardPath::Mailbox(m) => {
                dst.extend_from_slice(b"<");
                m.encode(dst);
                dst.extend_from_slice(b">");
            }
        }
    }
}

// ---------------------------------------------------------------- grammar

type Res<'a, T> = IResult<&'a str, T>;

fn fail<T>(i: &str) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

pub(crate) fn domain(i: &str) -> Res<'_, Domain<'_>> {
    match scan_dotted(i, &LDH, true) {
        Some(n) => Ok((&i[n..], Domain(Cow::Borrowed(&i[..n])))),
        None => fail(i),
    }
}

fn address_literal(i: &str) -> Res<'_, AddressLiteral<'_>> {
    let (rest, inner) = delimited(
        char('['),
        take_while1(|c: char| c != ']' && c != '['),
        char(']'),
    )
    .parse(i)?;
    match AddressLiteral::from_inner(inner) {
        Ok(l) => Ok((rest, l)),
        Err(_) => fail(i),
    }
}

pub(crate) fn host(i: &str) -> Res<'_, Host<'_>> {
    if i.starts_with('[') {
        let (rest, l) = address_literal(i)?;
        Ok((rest, Host::Literal(l)))
    } else {
        let (rest, d) = domain(i)?;
        Ok((rest, Host::Domain(d)))
    }
}

fn quoted_local(i: &str) -> Res<'_, Cow<'_, str>> {
    let (body, _) = char('"')(i)?;
    let mut owned: Option<String> = None;
    let mut chars = body.char_indices();
    while let Some((pos, c)) = chars.next() {
        match c {
            '"' => {
                let value = match owned {
                    Some(s) => Cow::Owned(s),
                    None => Cow::Borrowed(&body[..pos]),
                };
                return Ok((&body[pos + 1..], value));
            }
            '\\' => {
                let Some((_, escaped)) = chars.next() else {
                    return fail(i);
                };
                if !(' '..='~').contains(&escaped) {
                    return fail(i);
                }
                owned
                    .get_or_insert_with(|| body[..pos].to_owned())
                    .push(escaped);
            }
            c if is_local_char(c) => {
                if let Some(s) = owned.as_mut() {
                    s.push(c);
                }
            }
            _ => return fail(i),
        }
    }
    fail(i)
}

fn local_part(i: &str) -> Res<'_, LocalPart<'_>> {
    if i.starts_with('"') {
        let (rest, v) = quoted_local(i)?;
        return Ok((rest, LocalPart(v)));
    }
    match scan_dotted(i, &ATEXT, false) {
        Some(n) => Ok((&i[n..], LocalPart(Cow::Borrowed(&i[..n])))),
        None => fail(i),
    }
}

pub(crate) fn mailbox(i: &str) -> Res<'_, Mailbox<'_>> {
    let (i, local_part) = local_part(i)?;
    if i.as_bytes().first() != Some(&b'@') {
        return fail(i);
    }
    let (i, host) = host(&i[1..])?;
    Ok((i, Mailbox { local_part, host }))
}

/// `A-d-l ":"`, the obsolete source route, parsed and dropped.
fn source_route(i: &str) -> Res<'_, ()> {
    let (i, _) = terminated(separated_list1(char(','), (char('@'), domain)), char(':')).parse(i)?;
    Ok((i, ()))
}

/// `"<" [ A-d-l ":" ] Mailbox ">"`.
fn path(i: &str) -> Res<'_, Mailbox<'_>> {
    let Some(inner) = i.strip_prefix('<') else {
        return fail(i);
    };
    let inner = if inner.as_bytes().first() == Some(&b'@') {
        source_route(inner)?.0
    } else {
        inner
    };
    let (rest, m) = mailbox(inner)?;
    match rest.strip_prefix('>') {
        Some(rest) => Ok((rest, m)),
        None => fail(rest),
    }
}

pub(crate) fn reverse_path(i: &str) -> Res<'_, ReversePath<'_>> {
    if let Some(rest) = i.strip_prefix("<>") {
        return Ok((rest, ReversePath::Null));
    }
    let (rest, m) = path(i)?;
    Ok((rest, ReversePath::Mailbox(m)))
}

pub(crate) fn forward_path(i: &str) -> Res<'_, ForwardPath<'_>> {
    if i.as_bytes()
        .get(..12)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"<postmaster>"))
    {
        return Ok((&i[12..], ForwardPath::Postmaster));
    }
    let (rest, m) = path(i)?;
    Ok((rest, ForwardPath::Mailbox(m)))
}

impl fmt::Display for ReversePath<'_> {
    /// The path as on the wire: `<local@domain>`, or `<>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

impl fmt::Display for ForwardPath<'_> {
    /// The path as on the wire: `<local@domain>`, or `<Postmaster>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}
