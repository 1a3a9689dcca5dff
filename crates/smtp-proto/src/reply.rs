//! Replies: a three-digit code, an optional enhanced status code
//! (RFC 2034/3463) and one or more lines of text (RFC 5321 §4.2).

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;

use crate::Parsed;

/// A reply code, 200–599 with a second digit 0–5 as RFC 5321 §4.2 defines
/// (parsing accepts any second digit so odd servers can still be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// Validates a code in 200..=599 (and 1xx-free: SMTP has none in use).
    pub const fn new(code: u16) -> Option<Self> {
        if code >= 200 && code <= 599 {
            Some(ReplyCode(code))
        } else {
            None
        }
    }

    /// `220`, the greeting.
    pub(crate) const GREETING: ReplyCode = ReplyCode(220);
    /// `250`.
    pub(crate) const OK: ReplyCode = ReplyCode(250);
    /// `334`, an AUTH challenge.
    pub(crate) const CHALLENGE: ReplyCode = ReplyCode(334);

    /// The numeric value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2 success, 3 intermediate, 4 transient, 5 permanent.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// 2xx.
    pub const fn is_positive(self) -> bool {
        self.class() == 2
    }

    /// 4xx.
    pub const fn is_transient(self) -> bool {
        self.class() == 4
    }

    /// 5xx.
    pub const fn is_permanent(self) -> bool {
        self.class() == 5
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced mail system status code `class.subject.detail` (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl EnhancedCode {
    /// Validates: class 2, 4 or 5; subject and detail 0–999.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Option<Self> {
        if (class == 2 || class == 4 || class == 5) && subject <= 999 && detail <= 999 {
            Some(EnhancedCode {
                class,
                subject,
                detail,
            })
        } else {
            None
        }
    }

    /// Class digit (2, 4 or 5).
    pub const fn class(self) -> u8 {
        self.class
    }

    /// Subject.
    pub const fn subject(self) -> u16 {
        self.subject
    }

    /// Detail.
    pub const fn detail(self) -> u16 {
        self.detail
    }

    /// Writes `class.subject.detail`.
    pub fn encode(self, dst: &mut BytesMut) {
        dst.extend_from_slice(&[b'0' + self.class, b'.']);
        push_number(dst, self.subject);
        dst.extend_from_slice(b".");
        push_number(dst, self.detail);
    }

    /// Parses `c.s.d` at the start of `s`, returning the code and the rest.
    pub(crate) fn parse_prefix(s: &str) -> Option<(EnhancedCode, &str)> {
        let b = s.as_bytes();
        let class = match b.first()? {
            c @ (b'2' | b'4' | b'5') => c - b'0',
            _ => return None,
        };
        if b.get(1) != Some(&b'.') {
            return None;
        }
        let mut i = 2;
        let mut nums = [0u16; 2];
        for (k, n) in nums.iter_mut().enumerate() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
                *n = *n * 10 + u16::from(b[i] - b'0');
                i += 1;
            }
            if i == start || (i < b.len() && b[i].is_ascii_digit()) {
                return None;
            }
            if k == 0 {
                if b.get(i) != Some(&b'.') {
                    return None;
                }
                i += 1;
            }
        }
        let rest = match b.get(i) {
            None => "",
            Some(b' ') => &s[i + 1..],
            Some(_) => return None,
        };
        Some((EnhancedCode::new(class, nums[0], nums[1])?, rest))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A reply could not be built from the given parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReply {
    /// A text line held a CR, LF or other control character.
    #[error("reply text may not contain control characters")]
    Text,
    /// No text line at all.
    #[error("a reply needs at least one line")]
    NoLines,
    /// The enhanced code's class differs from the reply code's first digit.
    #[error("enhanced status class does not match the reply code")]
    ClassMismatch,
}

/// Why a reply could not be parsed (client side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line does not start with a three-digit code and `-`, space or CRLF.
    #[error("malformed reply line")]
    Syntax,
    /// The lines of a multi-line reply disagree on the code.
    #[error("multi-line reply lines disagree on the code")]
    CodeMismatch,
    /// A reply line is longer than the limit.
    #[error("reply line longer than {limit} octets")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// More lines than the limit.
    #[error("reply has more than {limit} lines")]
    TooManyLines {
        /// The limit in force.
        limit: usize,
    },
    /// A line does not end in CRLF or holds control characters or invalid
    /// UTF-8.
    #[error("invalid characters in reply")]
    InvalidText,
}

/// Limits for [`Reply::parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest reply line including code and CRLF (RFC 5321 §4.5.3.1.5: 512).
    pub line: usize,
    /// Most lines in one multi-line reply.
    pub lines: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            line: 512,
            lines: 128,
        }
    }
}

fn is_text(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || !c.is_control())
}

/// A reply: code, optional enhanced code, and one or more text lines.
///
/// Encoding writes the enhanced code at the start of every line, as RFC
/// 2034 asks. Parsing strips it from every line that carries it.
///
/// A text line that itself starts like an enhanced code (`2.1.0 …`) on a
/// reply without one reads back as an enhanced code: avoid such text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    lines: Vec<Cow<'a, str>>,
}

impl<'a> Reply<'a> {
    /// A reply with one or more lines (a text containing `\n` is split at
    /// each `\n`). Fails if the text has other control characters, or if
    /// the enhanced code's class is not the reply code's first digit.
    pub fn new(
        code: ReplyCode,
        enhanced: Option<EnhancedCode>,
        text: impl Into<Cow<'a, str>>,
    ) -> Result<Self, InvalidReply> {
        let text = text.into();
        let lines: Vec<Cow<'a, str>> = if text.contains('\n') {
            text.split('\n').map(|l| Cow::Owned(l.to_owned())).collect()
        } else {
            vec![text]
        };
        Self::with_lines(code, enhanced, lines)
    }

    /// A reply from separate lines (at least one).
    pub fn with_lines(
        code: ReplyCode,
        enhanced: Option<EnhancedCode>,
        lines: Vec<Cow<'a, str>>,
    ) -> Result<Self, InvalidReply> {
        if lines.is_empty() {
            return Err(InvalidReply::NoLines);
        }
        if !lines.iter().all(|l| is_text(l)) {
            return Err(InvalidReply::Text);
        }
        if enhanced.is_some_and(|e| e.class() != code.class()) {
            return Err(InvalidReply::ClassMismatch);
        }
        Ok(Reply {
            code,
            enhanced,
            lines,
        })
    }

    /// A one-line reply whose text is known to be valid (a validated name
    /// and fixed words).
    pub(crate) fn trusted(
        code: ReplyCode,
        enhanced: Option<EnhancedCode>,
        text: String,
    ) -> Reply<'static> {
        Reply {
            code,
            enhanced,
            lines: vec![Cow::Owned(text)],
        }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code, if any.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The text lines, without codes.
    pub fn lines(&self) -> &[Cow<'a, str>] {
        &self.lines
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Reply<'static> {
        Reply {
            code: self.code,
            enhanced: self.enhanced,
            lines: self
                .lines
                .into_iter()
                .map(|l| Cow::Owned(l.into_owned()))
                .collect(),
        }
    }

    /// Writes the reply, every line ending in CRLF.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.encode_as(dst, true);
    }

    /// Writes the reply, with its enhanced code only if `enhanced` (a server
    /// that does not advertise ENHANCEDSTATUSCODES leaves them out).
    pub(crate) fn encode_as(&self, dst: &mut BytesMut, enhanced: bool) {
        let code = itoa3(self.code.0);
        let enhanced = self.enhanced.filter(|_| enhanced);
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            dst.extend_from_slice(&code);
            let sep: &[u8] = if i == last { b" " } else { b"-" };
            match enhanced {
                Some(e) => {
                    dst.extend_from_slice(sep);
                    e.encode(dst);
                    if !line.is_empty() {
                        dst.extend_from_slice(b" ");
                        dst.extend_from_slice(line.as_bytes());
                    }
                }
                None if line.is_empty() => {
                    if i != last {
                        dst.extend_from_slice(b"-");
                    }
                }
                None => {
                    dst.extend_from_slice(sep);
                    dst.extend_from_slice(line.as_bytes());
                }
            }
            dst.extend_from_slice(b"\r\n");
        }
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> BytesMut {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b
    }

    /// Parses one complete reply (all its lines) from the start of `input`.
    pub fn parse(input: &'a [u8]) -> Result<Parsed<Reply<'a>>, ReplyError> {
        Self::parse_with(input, &ReplyLimits::default())
    }

    /// [`Reply::parse`] with explicit limits.
    pub fn parse_with(
        input: &'a [u8],
        limits: &ReplyLimits,
    ) -> Result<Parsed<Reply<'a>>, ReplyError> {
        let mut pos = 0;
        let mut code: Option<ReplyCode> = None;
        let mut enhanced: Option<EnhancedCode> = None;
        let mut lines = Vec::new();
        loop {
            let rest = &input[pos..];
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                if rest.len() >= limits.line {
                    return Err(ReplyError::LineTooLong { limit: limits.line });
                }
                return Ok(Parsed::Incomplete);
            };
            if lf + 1 > limits.line {
                return Err(ReplyError::LineTooLong { limit: limits.line });
            }
            if lf == 0 || rest[lf - 1] != b'\r' {
                return Err(ReplyError::InvalidText);
            }
            let line = std::str::from_utf8(&rest[..lf - 1]).map_err(|_| ReplyError::InvalidText)?;
            pos += lf + 1;
            let b = line.as_bytes();
            if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
                return Err(ReplyError::Syntax);
            }
            let n =
                u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
            let this = ReplyCode::new(n).ok_or(ReplyError::Syntax)?;
            if code.is_some_and(|c| c != this) {
                return Err(ReplyError::CodeMismatch);
            }
            let (more, text) = match b.get(3) {
                None => (false, ""),
                Some(b' ') => (false, &line[4..]),
                Some(b'-') => (true, &line[4..]),
                Some(_) => return Err(ReplyError::Syntax),
            };
            if !is_text(text) {
                return Err(ReplyError::InvalidText);
            }
            let text = if code.is_none() {
                match EnhancedCode::parse_prefix(text) {
                    Some((e, rest)) if e.class() == this.class() => {
                        enhanced = Some(e);
                        rest
                    }
                    _ => text,
                }
            } else {
                match (enhanced, EnhancedCode::parse_prefix(text)) {
                    (Some(e), Some((f, rest))) if e == f => rest,
                    _ => text,
                }
            };
            code = Some(this);
            if lines.len() == limits.lines {
                return Err(ReplyError::TooManyLines {
                    limit: limits.lines,
                });
            }
            lines.push(Cow::Borrowed(text));
            if !more {
                return Ok(Parsed::Complete {
                    value: Reply {
                        code: this,
                        enhanced,
                        lines,
                    },
                    consumed: pos,
                });
            }
        }
    }
}

fn itoa3(n: u16) -> [u8; 3] {
    [
        b'0' + (n / 100) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]
}

/// Writes a number without leading zeros.
fn push_number(dst: &mut BytesMut, n: u16) {
    let d = itoa3(n);
    let start = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    dst.extend_from_slice(&d[start..]);
}

/// A one-line reply fixed at compile time: what a server writes for its own
/// errors and the common answers to decisions, with no allocation and no
/// way to fail at run time.
///
/// ```
/// use smtp_proto::{FixedReply, Reply};
///
/// const MAILBOX_FULL: FixedReply = FixedReply::new(452, Some((4, 2, 2)), "Mailbox full");
/// let reply: Reply<'static> = MAILBOX_FULL.into();
/// assert_eq!(reply.to_string(), "452 4.2.2 Mailbox full\r\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedReply {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    text: &'static str,
}

impl FixedReply {
    /// Builds a fixed reply. Meant for `const` items, where an invalid value
    /// (a code outside 200–599, an enhanced code that is invalid or whose
    /// class is not the code's first digit, a control character or an empty
    /// text) stops the build instead of failing at run time.
    #[allow(clippy::panic)] // evaluated at compile time for constants
    pub const fn new(code: u16, enhanced: Option<(u8, u16, u16)>, text: &'static str) -> Self {
        let Some(code) = ReplyCode::new(code) else {
            panic!("reply code outside 200-599");
        };
        let enhanced = match enhanced {
            None => None,
            Some((c, s, d)) => match EnhancedCode::new(c, s, d) {
                Some(e) if e.class() == code.class() => Some(e),
                _ => panic!("invalid enhanced status code for this reply code"),
            },
        };
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] < 0x20 && bytes[i] != b'\t' || bytes[i] == 0x7f {
                panic!("control character in reply text");
            }
            i += 1;
        }
        FixedReply {
            code,
            enhanced,
            text,
        }
    }

    /// The reply code.
    pub const fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code, if any.
    pub const fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The text.
    pub const fn text(&self) -> &'static str {
        self.text
    }

    /// Writes the reply line with CRLF.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.encode_as(dst, true);
    }

    /// Writes the reply line, with the enhanced code only if `enhanced`.
    pub(crate) fn encode_as(&self, dst: &mut BytesMut, enhanced: bool) {
        dst.extend_from_slice(&itoa3(self.code.0));
        dst.extend_from_slice(b" ");
        if let Some(e) = self.enhanced.filter(|_| enhanced) {
            e.encode(dst);
            if !self.text.is_empty() {
                dst.extend_from_slice(b" ");
            }
        }
        dst.extend_from_slice(self.text.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }

    /// This reply with `detail` after its text and a space (a queue id, a
    /// count). Control characters in `detail` are dropped, so the result is
    /// always one valid line.
    ///
    /// ```
    /// use smtp_proto::FixedReply;
    ///
    /// const QUEUED: FixedReply = FixedReply::new(250, Some((2, 0, 0)), "Ok: queued as");
    /// assert_eq!(QUEUED.with_detail("4F2A\r\n").to_string(), "250 2.0.0 Ok: queued as 4F2A\r\n");
    /// ```
    pub fn with_detail(&self, detail: &str) -> Reply<'static> {
        let detail: String = detail
            .chars()
            .filter(|c| *c == '\t' || !c.is_control())
            .collect();
        Reply::trusted(self.code, self.enhanced, format!("{} {detail}", self.text))
    }

    /// This reply with `prefix` and a space before its text (a server's
    /// validated host name).
    pub(crate) fn after(&self, prefix: &str) -> Reply<'static> {
        Reply::trusted(self.code, self.enhanced, format!("{prefix} {}", self.text))
    }
}

impl From<FixedReply> for Reply<'static> {
    fn from(r: FixedReply) -> Self {
        Reply {
            code: r.code,
            enhanced: r.enhanced,
            lines: vec![Cow::Borrowed(r.text)],
        }
    }
}

impl fmt::Display for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
