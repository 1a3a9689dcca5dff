//! ESMTP parameters of `MAIL FROM` and `RCPT TO`, and the xtext encoding
//! (RFC 3461 §4) some of them use.

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;

use crate::error::CommandError;

/// A printable US-ASCII value (octets 32–126) carried in xtext on the wire:
/// ENVID, ORCPT and AUTH=. Holds the *decoded* text; encoding applies the
/// `+HH` escapes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct XText<'a>(Cow<'a, str>);

impl<'a> XText<'a> {
    /// Validates a decoded value: printable ASCII (space included), not
    /// empty.
    pub fn new(value: impl Into<Cow<'a, str>>) -> Option<Self> {
        let value = value.into();
        (!value.is_empty() && value.bytes().all(|b| (32..=126).contains(&b)))
            .then_some(XText(value))
    }

    /// Decodes xtext (`+HH` with upper-case hex digits) from the wire.
    pub fn decode(wire: &'a str) -> Option<Self> {
        if wire.is_empty() {
            return None;
        }
        if !wire.contains('+') {
            return wire
                .bytes()
                .all(is_xchar)
                .then_some(XText(Cow::Borrowed(wire)));
        }
        let b = wire.as_bytes();
        let mut out = String::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => {
                    let hi = hex_upper(*b.get(i + 1)?)?;
                    let lo = hex_upper(*b.get(i + 2)?)?;
                    let v = hi << 4 | lo;
                    if !(32..=126).contains(&v) {
                        return None;
                    }
                    out.push(v as char);
                    i += 3;
                }
                c if is_xchar(c) => {
                    out.push(c as char);
                    i += 1;
                }
                _ => return None,
            }
        }
        Some(XText(Cow::Owned(out)))
    }

    /// The decoded text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> XText<'static> {
        XText(Cow::Owned(self.0.into_owned()))
    }

    /// Writes the xtext form.
    pub fn encode(&self, dst: &mut BytesMut) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for &c in self.0.as_bytes() {
            if is_xchar(c) {
                dst.extend_from_slice(&[c]);
            } else {
                dst.extend_from_slice(&[b'+', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
            }
        }
    }
}

impl fmt::Debug for XText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XText({:?})", self.0)
    }
}

fn is_xchar(c: u8) -> bool {
    (33..=126).contains(&c) && c != b'+' && c != b'='
}

fn hex_upper(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a decimal number of at most `max_digits` digits, with overflow
/// checks: a 30-digit value is [`CommandError::NumberTooLarge`], never a wrap.
pub(crate) fn parse_number(s: &str, max_digits: usize) -> Result<u64, CommandError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax);
    }
    if s.len() > max_digits {
        return Err(CommandError::NumberTooLarge);
    }
    s.bytes().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(CommandError::NumberTooLarge)
    })
}

/// `BODY=` (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyType {
    /// `7BIT`
    SevenBit,
    /// `8BITMIME`
    EightBitMime,
    /// `BINARYMIME` (requires BDAT)
    BinaryMime,
}

impl BodyType {
    fn as_str(self) -> &'static str {
        match self {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
            BodyType::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` (RFC 3461): what a bounce should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `FULL`: the whole message.
    Full,
    /// `HDRS`: the headers only.
    Headers,
}

/// `BY=` (RFC 2852, DELIVERBY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliverBy {
    /// Seconds (may be negative), at most nine digits.
    pub time: i32,
    /// What to do when the deadline passes.
    pub mode: DeliverByMode,
    /// The `T` (trace) flag.
    pub trace: bool,
}

/// The by-mode of [`DeliverBy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliverByMode {
    /// `N`: notify.
    Notify,
    /// `R`: return.
    Return,
}

/// `HOLDFOR=` or `HOLDUNTIL=` (RFC 4865, FUTURERELEASE).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hold<'a> {
    /// Seconds to hold the message.
    For(u32),
    /// An RFC 3339 date-time, kept as text.
    Until(Cow<'a, str>),
}

/// A parameter the parser does not know, kept so the server can refuse it
/// with 555.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownParameter<'a> {
    /// The keyword as sent.
    pub keyword: Cow<'a, str>,
    /// The value after `=`, if any.
    pub value: Option<Cow<'a, str>>,
}

fn owned_unknown(list: Vec<UnknownParameter<'_>>) -> Vec<UnknownParameter<'static>> {
    list.into_iter().map(UnknownParameter::into_owned).collect()
}

impl UnknownParameter<'_> {
    fn into_owned(self) -> UnknownParameter<'static> {
        UnknownParameter {
            keyword: Cow::Owned(self.keyword.into_owned()),
            value: self.value.map(|v| Cow::Owned(v.into_owned())),
        }
    }
}

/// The parameters of `MAIL FROM`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MailParameters<'a> {
    /// `SIZE=` (RFC 1870), the declared message size.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<BodyType>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461), decoded.
    pub envid: Option<XText<'a>>,
    /// `AUTH=` (RFC 4954), decoded: `<>` or an addr-spec.
    pub auth: Option<XText<'a>>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `MT-PRIORITY=` (RFC 6710), -9 to 9.
    pub mt_priority: Option<i8>,
    /// `BY=` (RFC 2852).
    pub by: Option<DeliverBy>,
    /// `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865).
    pub hold: Option<Hold<'a>>,
    /// Parameters not known to this crate, in order.
    pub unknown: Vec<UnknownParameter<'a>>,
}

/// `NOTIFY=` (RFC 3461). All three `false` is `NOTIFY=NEVER`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Notify {
    /// `SUCCESS`
    pub success: bool,
    /// `FAILURE`
    pub failure: bool,
    /// `DELAY`
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// Whether this is `NEVER`.
    pub fn is_never(&self) -> bool {
        *self == Notify::NEVER
    }
}

/// `ORCPT=` (RFC 3461): the original recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginalRecipient<'a> {
    /// The address type, e.g. `rfc822` (an atom).
    pub addr_type: Cow<'a, str>,
    /// The decoded address.
    pub address: XText<'a>,
}

/// The parameters of `RCPT TO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RcptParameters<'a> {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<OriginalRecipient<'a>>,
    /// Parameters not known to this crate, in order.
    pub unknown: Vec<UnknownParameter<'a>>,
}

fn is_keyword(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

/// Calls `f` with each ` key[=value]` of the text after a path. Single
/// spaces only; empty input means no parameters. Keywords are
/// `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`; values are `esmtp-value`
/// (RFC 5321 §4.1.2: octets 33–126 except `=`), plus UTF-8 (RFC 6531).
fn for_each_param<'a>(
    rest: &'a str,
    mut f: impl FnMut(&'a str, Option<&'a str>) -> Result<(), CommandError>,
) -> Result<(), CommandError> {
    let b = rest.as_bytes();
    if b.is_empty() {
        return Ok(());
    }
    if b[0] != b' ' {
        return Err(CommandError::Syntax);
    }
    let mut i = 1;
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if i == start || b[start] == b'-' {
            return Err(CommandError::Syntax);
        }
        let key = &rest[start..i];
        let value = if i < b.len() && b[i] == b'=' {
            i += 1;
            let vstart = i;
            let mut non_ascii = false;
            while i < b.len() && b[i] != b' ' {
                match b[i] {
                    33..=60 | 62..=126 => {}
                    0x80.. => non_ascii = true,
                    _ => return Err(CommandError::Syntax),
                }
                i += 1;
            }
            let v = &rest[vstart..i];
            if v.is_empty() || (non_ascii && v.chars().any(char::is_control)) {
                return Err(CommandError::Syntax);
            }
            Some(v)
        } else {
            None
        };
        f(key, value)?;
        if i == b.len() {
            return Ok(());
        }
        if b[i] != b' ' || i + 1 == b.len() {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), CommandError> {
    if slot.is_some() {
        return Err(CommandError::DuplicateParameter(name.into()));
    }
    *slot = Some(value);
    Ok(())
}

fn set_flag(flag: &mut bool, value: Option<&str>, name: &'static str) -> Result<(), CommandError> {
    if value.is_some() {
        return Err(CommandError::InvalidParameter(name));
    }
    if *flag {
        return Err(CommandError::DuplicateParameter(name.into()));
    }
    *flag = true;
    Ok(())
}

fn push_unknown<'a>(
    unknown: &mut Vec<UnknownParameter<'a>>,
    keyword: &'a str,
    value: Option<&'a str>,
) -> Result<(), CommandError> {
    if unknown
        .iter()
        .any(|u| u.keyword.eq_ignore_ascii_case(keyword))
    {
        return Err(CommandError::DuplicateParameter(
            keyword.to_ascii_uppercase(),
        ));
    }
    unknown.push(UnknownParameter {
        keyword: Cow::Borrowed(keyword),
        value: value.map(Cow::Borrowed),
    });
    Ok(())
}

fn need<'v>(value: Option<&'v str>, name: &'static str) -> Result<&'v str, CommandError> {
    value.ok_or(CommandError::InvalidParameter(name))
}

fn parse_by(v: &str) -> Option<DeliverBy> {
    let (time, mode) = v.split_once(';')?;
    let (neg, digits) = match time.as_bytes().first()? {
        b'-' => (true, &time[1..]),
        b'+' => (false, &time[1..]),
        _ => (false, time),
    };
    let n = parse_number(digits, 9).ok()? as i32;
    let (mode, trace) = match Keyword::of(mode).as_str() {
        "N" => (DeliverByMode::Notify, false),
        "R" => (DeliverByMode::Return, false),
        "NT" => (DeliverByMode::Notify, true),
        "RT" => (DeliverByMode::Return, true),
        _ => return None,
    };
    Some(DeliverBy {
        time: if neg { -n } else { n },
        mode,
        trace,
    })
}

fn is_datetime(v: &str) -> bool {
    v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'+' | b'-'))
        && v.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

impl<'a> MailParameters<'a> {
    pub(crate) fn parse(rest: &'a str) -> Result<Self, CommandError> {
        let mut p = MailParameters::default();
        for_each_param(rest, |k, v| {
            match known(k) {
                Known::Size => {
                    let n = parse_number(need(v, "SIZE")?, 20)?;
                    set_once(&mut p.size, n, "SIZE")?;
                }
                Known::Body => {
                    let b = match Keyword::of(need(v, "BODY")?).as_str() {
                        "7BIT" => BodyType::SevenBit,
                        "8BITMIME" => BodyType::EightBitMime,
                        "BINARYMIME" => BodyType::BinaryMime,
                        _ => return Err(CommandError::InvalidParameter("BODY")),
                    };
                    set_once(&mut p.body, b, "BODY")?;
                }
                Known::SmtpUtf8 => set_flag(&mut p.smtputf8, v, "SMTPUTF8")?,
                Known::RequireTls => set_flag(&mut p.requiretls, v, "REQUIRETLS")?,
                Known::Ret => {
                    let r = match Keyword::of(need(v, "RET")?).as_str() {
                        "FULL" => Ret::Full,
                        "HDRS" => Ret::Headers,
                        _ => return Err(CommandError::InvalidParameter("RET")),
                    };
                    set_once(&mut p.ret, r, "RET")?;
                }
                Known::EnvId => {
                    let x = XText::decode(need(v, "ENVID")?)
                        .filter(|x| x.0.len() <= 100)
                        .ok_or(CommandError::InvalidParameter("ENVID"))?;
                    set_once(&mut p.envid, x, "ENVID")?;
                }
                Known::Auth => {
                    let x = XText::decode(need(v, "AUTH")?)
                        .ok_or(CommandError::InvalidParameter("AUTH"))?;
                    set_once(&mut p.auth, x, "AUTH")?;
                }
                Known::MtPriority => {
                    let v = need(v, "MT-PRIORITY")?;
                    let n = match v.as_bytes() {
                        [d @ b'0'..=b'9'] | [b'+', d @ b'0'..=b'9'] => (d - b'0') as i8,
                        [b'-', d @ b'0'..=b'9'] => -((d - b'0') as i8),
                        _ => return Err(CommandError::InvalidParameter("MT-PRIORITY")),
                    };
                    set_once(&mut p.mt_priority, n, "MT-PRIORITY")?;
                }
                Known::By => {
                    let by =
                        parse_by(need(v, "BY")?).ok_or(CommandError::InvalidParameter("BY"))?;
                    set_once(&mut p.by, by, "BY")?;
                }
                Known::HoldFor => {
                    let n = parse_number(need(v, "HOLDFOR")?, 9)? as u32;
                    set_once(&mut p.hold, Hold::For(n), "HOLDFOR/HOLDUNTIL")?;
                }
                Known::HoldUntil => {
                    let v = need(v, "HOLDUNTIL")?;
                    if !is_datetime(v) {
                        return Err(CommandError::InvalidParameter("HOLDUNTIL"));
                    }
                    set_once(
                        &mut p.hold,
                        Hold::Until(Cow::Borrowed(v)),
                        "HOLDFOR/HOLDUNTIL",
                    )?;
                }
                _ => push_unknown(&mut p.unknown, k, v)?,
            }
            Ok(())
        })?;
        Ok(p)
    }

    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        *self == MailParameters::default()
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> MailParameters<'static> {
        MailParameters {
            size: self.size,
            body: self.body,
            smtputf8: self.smtputf8,
            ret: self.ret,
            envid: self.envid.map(XText::into_owned),
            auth: self.auth.map(XText::into_owned),
            requiretls: self.requiretls,
            mt_priority: self.mt_priority,
            by: self.by,
            hold: self.hold.map(|h| match h {
                Hold::For(n) => Hold::For(n),
                Hold::Until(s) => Hold::Until(Cow::Owned(s.into_owned())),
            }),
            unknown: owned_unknown(self.unknown),
        }
    }

    /// Writes ` KEY=VALUE` for each parameter set (leading space included).
    pub fn encode(&self, dst: &mut BytesMut) {
        if let Some(n) = self.size {
            put(dst, &["SIZE=", &n.to_string()]);
        }
        if let Some(b) = self.body {
            put(dst, &["BODY=", b.as_str()]);
        }
        if self.smtputf8 {
            put(dst, &["SMTPUTF8"]);
        }
        if let Some(r) = self.ret {
            put(
                dst,
                &[if r == Ret::Full {
                    "RET=FULL"
                } else {
                    "RET=HDRS"
                }],
            );
        }
        if let Some(x) = &self.envid {
            put(dst, &["ENVID="]);
            x.encode(dst);
        }
        if let Some(x) = &self.auth {
            put(dst, &["AUTH="]);
            x.encode(dst);
        }
        if self.requiretls {
            put(dst, &["REQUIRETLS"]);
        }
        if let Some(n) = self.mt_priority {
            put(dst, &["MT-PRIORITY=", &n.to_string()]);
        }
        if let Some(by) = self.by {
            let mode = match (by.mode, by.trace) {
                (DeliverByMode::Notify, false) => "N",
                (DeliverByMode::Return, false) => "R",
                (DeliverByMode::Notify, true) => "NT",
                (DeliverByMode::Return, true) => "RT",
            };
            put(dst, &["BY=", &by.time.to_string(), ";", mode]);
        }
        match &self.hold {
            Some(Hold::For(n)) => put(dst, &["HOLDFOR=", &n.to_string()]),
            Some(Hold::Until(t)) => put(dst, &["HOLDUNTIL=", t]),
            None => {}
        }
        encode_unknown(&self.unknown, dst);
    }
}

impl<'a> RcptParameters<'a> {
    pub(crate) fn parse(rest: &'a str) -> Result<Self, CommandError> {
        let mut p = RcptParameters::default();
        for_each_param(rest, |k, v| {
            match known(k) {
                Known::Notify => {
                    let v = need(v, "NOTIFY")?;
                    let mut n = Notify::default();
                    let mut never = false;
                    for word in v.as_bytes().split(|&c| c == b',') {
                        let flag = if word.eq_ignore_ascii_case(b"FAILURE") {
                            &mut n.failure
                        } else if word.eq_ignore_ascii_case(b"DELAY") {
                            &mut n.delay
                        } else if word.eq_ignore_ascii_case(b"SUCCESS") {
                            &mut n.success
                        } else if word.eq_ignore_ascii_case(b"NEVER") {
                            &mut never
                        } else {
                            return Err(CommandError::InvalidParameter("NOTIFY"));
                        };
                        if *flag {
                            return Err(CommandError::InvalidParameter("NOTIFY"));
                        }
                        *flag = true;
                    }
                    if never != n.is_never() {
                        // NEVER must stand alone, and something must be listed.
                        return Err(CommandError::InvalidParameter("NOTIFY"));
                    }
                    set_once(&mut p.notify, n, "NOTIFY")?;
                }
                Known::Orcpt => {
                    let (t, a) = need(v, "ORCPT")?
                        .split_once(';')
                        .ok_or(CommandError::InvalidParameter("ORCPT"))?;
                    if !is_keyword(t) {
                        return Err(CommandError::InvalidParameter("ORCPT"));
                    }
                    let address = XText::decode(a)
                        .filter(|x| x.0.len() <= 500)
                        .ok_or(CommandError::InvalidParameter("ORCPT"))?;
                    let o = OriginalRecipient {
                        addr_type: Cow::Borrowed(t),
                        address,
                    };
                    set_once(&mut p.orcpt, o, "ORCPT")?;
                }
                _ => push_unknown(&mut p.unknown, k, v)?,
            }
            Ok(())
        })?;
        Ok(p)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> RcptParameters<'static> {
        RcptParameters {
            notify: self.notify,
            orcpt: self.orcpt.map(|o| OriginalRecipient {
                addr_type: Cow::Owned(o.addr_type.into_owned()),
                address: o.address.into_owned(),
            }),
            unknown: owned_unknown(self.unknown),
        }
    }

    /// Writes ` KEY=VALUE` for each parameter set (leading space included).
    pub fn encode(&self, dst: &mut BytesMut) {
        if let Some(n) = self.notify {
            put(dst, &["NOTIFY="]);
            if n.is_never() {
                dst.extend_from_slice(b"NEVER");
            } else {
                let words = [
                    (n.success, "SUCCESS"),
                    (n.failure, "FAILURE"),
                    (n.delay, "DELAY"),
                ];
                let mut first = true;
                for (_, w) in words.iter().filter(|(on, _)| *on) {
                    if !first {
                        dst.extend_from_slice(b",");
                    }
                    first = false;
                    dst.extend_from_slice(w.as_bytes());
                }
            }
        }
        if let Some(o) = &self.orcpt {
            put(dst, &["ORCPT=", &o.addr_type, ";"]);
            o.address.encode(dst);
        }
        encode_unknown(&self.unknown, dst);
    }
}

fn put(dst: &mut BytesMut, parts: &[&str]) {
    dst.extend_from_slice(b" ");
    for p in parts {
        dst.extend_from_slice(p.as_bytes());
    }
}

fn encode_unknown(unknown: &[UnknownParameter<'_>], dst: &mut BytesMut) {
    for u in unknown {
        put(dst, &[&u.keyword]);
        if let Some(v) = &u.value {
            put_raw(dst, &["=", v]);
        }
    }
}

fn put_raw(dst: &mut BytesMut, parts: &[&str]) {
    for p in parts {
        dst.extend_from_slice(p.as_bytes());
    }
}

/// Which known MAIL/RCPT parameter a keyword names, compared without
/// copying.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Size,
    Body,
    SmtpUtf8,
    RequireTls,
    Ret,
    EnvId,
    Auth,
    MtPriority,
    By,
    HoldFor,
    HoldUntil,
    Notify,
    Orcpt,
    Other,
}

fn known(k: &str) -> Known {
    let b = k.as_bytes();
    let is = |w: &[u8]| b.eq_ignore_ascii_case(w);
    match b.len() {
        2 if is(b"BY") => Known::By,
        3 if is(b"RET") => Known::Ret,
        4 if is(b"SIZE") => Known::Size,
        4 if is(b"BODY") => Known::Body,
        4 if is(b"AUTH") => Known::Auth,
        5 if is(b"ENVID") => Known::EnvId,
        5 if is(b"ORCPT") => Known::Orcpt,
        6 if is(b"NOTIFY") => Known::Notify,
        7 if is(b"HOLDFOR") => Known::HoldFor,
        8 if is(b"SMTPUTF8") => Known::SmtpUtf8,
        9 if is(b"HOLDUNTIL") => Known::HoldUntil,
        10 if is(b"REQUIRETLS") => Known::RequireTls,
        11 if is(b"MT-PRIORITY") => Known::MtPriority,
        _ => Known::Other,
    }
}

/// An upper-cased copy of a short ASCII keyword, on the stack (empty when
/// too long or not ASCII, so it matches no known keyword).
pub(crate) struct Keyword {
    buf: [u8; 24],
    len: usize,
}

impl Keyword {
    pub(crate) fn of(k: &str) -> Keyword {
        let mut buf = [0u8; 24];
        if k.len() > buf.len() || !k.is_ascii() {
            // Longer than any keyword we know: cannot match.
            return Keyword { buf, len: 0 };
        }
        for (d, s) in buf.iter_mut().zip(k.bytes()) {
            *d = s.to_ascii_uppercase();
        }
        Keyword { buf, len: k.len() }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Keywords are checked to be ASCII before we get here.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}
