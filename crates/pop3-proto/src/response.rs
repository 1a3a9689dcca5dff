//! POP3 responses: `+OK`/`-ERR` status lines with RESP-CODES (RFC 2449,
//! 3206), and byte-stuffed multi-line bodies.

use bytes::BytesMut;

/// Extended response codes (RFC 2449 §8, RFC 3206, RFC 6856).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RespCode {
    /// `[IN-USE]`: the maildrop is locked by another session.
    InUse,
    /// `[LOGIN-DELAY]`
    LoginDelay,
    /// `[SYS/TEMP]`: a temporary system problem.
    SysTemp,
    /// `[SYS/PERM]`: a permanent system problem.
    SysPerm,
    /// `[AUTH]`: the credentials were wrong.
    Auth,
    /// `[UTF8]`
    Utf8,
    /// Any other code, validated ([`RespCode::other`]).
    Other(OtherCode),
}

/// A response code outside the known ones: levels of printable characters
/// (no space, `/` or `]`) separated by `/` (RFC 2449 §8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherCode(String);

impl OtherCode {
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A response code or a status text that would not encode as one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid POP3 response code or text")]
pub struct InvalidResponse;

fn valid_code(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|level| {
            !level.is_empty()
                && level
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b']')
        })
}

impl RespCode {
    /// A code outside the known ones, validated (RFC 2449 §8 `resp-code`).
    pub fn other(code: &str) -> Result<RespCode, InvalidResponse> {
        if valid_code(code) {
            Ok(RespCode::parse(code))
        } else {
            Err(InvalidResponse)
        }
    }

    fn as_str(&self) -> &str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Auth => "AUTH",
            RespCode::Utf8 => "UTF8",
            RespCode::Other(s) => s.as_str(),
        }
    }

    /// A code already checked by `valid_code`.
    fn parse(s: &str) -> RespCode {
        match s {
            "IN-USE" => RespCode::InUse,
            "LOGIN-DELAY" => RespCode::LoginDelay,
            "SYS/TEMP" => RespCode::SysTemp,
            "SYS/PERM" => RespCode::SysPerm,
            "AUTH" => RespCode::Auth,
            "UTF8" => RespCode::Utf8,
            other => RespCode::Other(OtherCode(other.to_owned())),
        }
    }
}

/// A status line: `+OK` or `-ERR`, an optional response code, a text. No
/// value of it can hold CR, LF or another control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    ok: bool,
    code: Option<RespCode>,
    text: String,
}

/// Why a server line could not be read (client side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed POP3 response line")]
pub struct ResponseError;

impl Status {
    /// A status line from its parts; fails if the text holds a control
    /// character, or starts with `[` without a code (it would read back as
    /// a response code, RFC 2449 §8).
    pub fn new(
        ok: bool,
        code: Option<RespCode>,
        text: impl Into<String>,
    ) -> Result<Status, InvalidResponse> {
        let text = text.into();
        if text.chars().any(char::is_control) || code.is_none() && text.starts_with('[') {
            return Err(InvalidResponse);
        }
        Ok(Status { ok, code, text })
    }

    /// Whether it is `+OK`.
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The response code, if any.
    pub fn code(&self) -> Option<&RespCode> {
        self.code.as_ref()
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `+OK text` (control characters in `text` are dropped).
    pub fn ok(text: impl Into<String>) -> Status {
        Status {
            ok: true,
            code: None,
            text: clean(text.into()),
        }
    }

    /// `-ERR text` (control characters in `text` are dropped). A text
    /// starting with `[` reads back as a response code: use
    /// [`Status::err_code`] or [`Status::new`] for texts not fixed in code.
    pub fn err(text: impl Into<String>) -> Status {
        Status {
            ok: false,
            code: None,
            text: clean(text.into()),
        }
    }

    /// `-ERR [CODE] text` (control characters in `text` are dropped).
    pub fn err_code(code: RespCode, text: impl Into<String>) -> Status {
        Status {
            ok: false,
            code: Some(code),
            text: clean(text.into()),
        }
    }

    /// Writes the line with CRLF.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(if self.ok { b"+OK" } else { b"-ERR" });
        if let Some(c) = &self.code {
            dst.extend_from_slice(b" [");
            dst.extend_from_slice(c.as_str().as_bytes());
            dst.extend_from_slice(b"]");
        }
        if !self.text.is_empty() {
            dst.extend_from_slice(b" ");
            dst.extend_from_slice(self.text.as_bytes());
        }
        dst.extend_from_slice(b"\r\n");
    }

    /// Parses a status line given without its CRLF.
    pub fn parse(line: &[u8]) -> Result<Status, ResponseError> {
        let line = std::str::from_utf8(line).map_err(|_| ResponseError)?;
        let (ok, rest) = if let Some(r) = line.strip_prefix("+OK") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("-ERR") {
            (false, r)
        } else {
            return Err(ResponseError);
        };
        let rest = match rest.as_bytes().first() {
            None => "",
            Some(b' ') => &rest[1..],
            Some(_) => return Err(ResponseError),
        };
        let (code, text) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((c, t)) if valid_code(c) => {
                (Some(RespCode::parse(c)), t.strip_prefix(' ').unwrap_or(t))
            }
            _ => (None, rest),
        };
        if text.chars().any(char::is_control) {
            return Err(ResponseError);
        }
        Ok(Status {
            ok,
            code,
            text: text.to_owned(),
        })
    }
}

fn clean(s: String) -> String {
    if s.chars().any(char::is_control) {
        s.chars().filter(|c| !c.is_control()).collect()
    } else {
        s
    }
}

/// Writes a multi-line body: CRLF line ends (bare CR or LF become CRLF),
/// every line starting with `.` byte-stuffed, a final CRLF if missing, and
/// the terminating `.` line.
pub fn encode_multiline(body: &[u8], dst: &mut BytesMut) {
    let mut enc = session_core::DataEncoder::new();
    enc.encode(body, dst);
    enc.finish(dst);
}

/// The size in octets `encode_multiline` sends for `body`, before
/// byte-stuffing and without the terminator (what LIST and STAT report,
/// RFC 1939 §11): [`session_core::crlf_size`].
pub use session_core::crlf_size as transfer_size;

/// TOP: the header section, the blank line, then `lines` body lines. A
/// message without a blank line is all headers.
pub fn top(message: &[u8], lines: u32) -> &[u8] {
    let header_end = find(message, b"\r\n\r\n")
        .map(|i| i + 4)
        .into_iter()
        .chain(find(message, b"\n\n").map(|i| i + 2))
        .min();
    let Some(start) = header_end else {
        return message;
    };
    let mut end = start;
    for _ in 0..lines {
        match memchr::memchr(b'\n', &message[end..]) {
            Some(i) => end += i + 1,
            None => {
                end = message.len();
                break;
            }
        }
    }
    &message[..end]
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}
