//! Commands (RFC 5321 §4.1 and the ESMTP extensions): parse one line, encode
//! one line.

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;

use crate::Parsed;
use crate::address::{self, ForwardPath, Host, ReversePath};
use crate::error::CommandError;
use crate::params::{MailParameters, RcptParameters, parse_number};
use crate::reply::Reply;
use session_core::{BareLineEnding, line_content};

/// Default command line limit, CRLF included (RFC 5321 §4.5.3.1.4).
pub const DEFAULT_MAX_LINE: usize = 512;

/// How commands are parsed: the line limit, the line-ending policy and
/// whether the current transaction is SMTPUTF8 (which permits UTF-8 in
/// RCPT TO addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOptions {
    /// Longest accepted command line in octets, CRLF included.
    pub max_line: usize,
    /// Bare-LF policy for the line end ([`BareLineEnding::Normalize`]:
    /// a bare LF ends a line).
    pub line_ending: BareLineEnding,
    /// Whether the current MAIL transaction declared SMTPUTF8.
    pub smtputf8: bool,
}

impl Default for CommandOptions {
    fn default() -> Self {
        CommandOptions {
            max_line: DEFAULT_MAX_LINE,
            line_ending: BareLineEnding::Reject,
            smtputf8: false,
        }
    }
}

/// A free-text argument (VRFY, EXPN, HELP, NOOP): not empty, no control
/// characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Argument<'a>(Cow<'a, str>);

impl<'a> Argument<'a> {
    /// Validates an argument.
    pub fn new(value: impl Into<Cow<'a, str>>) -> Option<Self> {
        let v = value.into();
        (!v.is_empty() && !v.chars().any(char::is_control)).then_some(Argument(v))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn into_owned(self) -> Argument<'static> {
        Argument(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Argument<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Argument({:?})", self.0)
    }
}

/// A SASL mechanism name (RFC 4422 §3.1): 1–20 of `A-Z 0-9 - _`, kept upper
/// case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mechanism<'a>(Cow<'a, str>);

impl<'a> Mechanism<'a> {
    /// Validates a mechanism name; lower-case letters are upper-cased.
    pub fn new(name: impl Into<Cow<'a, str>>) -> Option<Self> {
        let name = name.into();
        let ok = (1..=20).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
        if name.bytes().any(|b| b.is_ascii_lowercase()) {
            Some(Mechanism(Cow::Owned(name.to_ascii_uppercase())))
        } else {
            Some(Mechanism(name))
        }
    }

    /// The upper-case name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn into_owned(self) -> Mechanism<'static> {
        Mechanism(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Mechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mechanism({})", self.0)
    }
}

/// The optional initial response of AUTH (RFC 4954 §4), still base64.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum InitialResponse<'a> {
    /// `=`: an empty initial response.
    Empty,
    /// Base64 text (not yet decoded; the SASL layer decodes it).
    Base64(Cow<'a, str>),
}

impl<'a> InitialResponse<'a> {
    /// Validates base64 text (alphabet and `=` padding only).
    pub fn base64(text: impl Into<Cow<'a, str>>) -> Option<Self> {
        let t = text.into();
        (!t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
        .then_some(InitialResponse::Base64(t))
    }

    fn into_owned(self) -> InitialResponse<'static> {
        match self {
            InitialResponse::Empty => InitialResponse::Empty,
            InitialResponse::Base64(t) => InitialResponse::Base64(Cow::Owned(t.into_owned())),
        }
    }
}

impl fmt::Debug for InitialResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // May carry a password (PLAIN): never print it.
        match self {
            InitialResponse::Empty => f.write_str("InitialResponse::Empty"),
            InitialResponse::Base64(t) => write!(f, "InitialResponse::Base64(<{} bytes>)", t.len()),
        }
    }
}

/// A line whose verb is not a command this crate knows. The server answers
/// [`Command::unrecognised_reply`] and goes on.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnknownCommand<'a>(Cow<'a, [u8]>);

impl UnknownCommand<'_> {
    /// The whole line, without its line end.
    pub fn line(&self) -> &[u8] {
        &self.0
    }

    /// The first word of the line.
    pub fn verb(&self) -> &[u8] {
        let end = memchr::memchr(b' ', &self.0).unwrap_or(self.0.len());
        &self.0[..end]
    }
}

impl fmt::Debug for UnknownCommand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnknownCommand({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// One SMTP or LMTP command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command<'a> {
    /// `HELO host`
    Helo {
        /// The client's name.
        host: Host<'a>,
    },
    /// `EHLO host`
    Ehlo {
        /// The client's name.
        host: Host<'a>,
    },
    /// `LHLO host` (LMTP, RFC 2033)
    Lhlo {
        /// The client's name.
        host: Host<'a>,
    },
    /// `MAIL FROM:<path> params`
    Mail {
        /// The reverse-path, possibly null.
        from: ReversePath<'a>,
        /// ESMTP parameters.
        params: MailParameters<'a>,
    },
    /// `RCPT TO:<path> params`
    Rcpt {
        /// The forward-path.
        to: ForwardPath<'a>,
        /// ESMTP parameters.
        params: RcptParameters<'a>,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (RFC 3030)
    Bdat {
        /// Exact octet count of the chunk that follows.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `VRFY string`
    Vrfy {
        /// What to verify.
        arg: Argument<'a>,
    },
    /// `EXPN string`
    Expn {
        /// The list to expand.
        arg: Argument<'a>,
    },
    /// `HELP [string]`
    Help {
        /// The topic.
        topic: Option<Argument<'a>>,
    },
    /// `NOOP [string]`
    Noop {
        /// Ignored argument.
        arg: Option<Argument<'a>>,
    },
    /// `QUIT`
    Quit,
    /// `STARTTLS` (RFC 3207)
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954)
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism<'a>,
        /// The SASL-IR initial response.
        initial_response: Option<InitialResponse<'a>>,
    },
    /// Any other verb.
    Unknown(UnknownCommand<'a>),
}

/// Classifies a line eight bytes at a time: (any byte below 0x20 or DEL,
/// any byte above 0x7f).
#[inline]
fn classify(line: &[u8]) -> (bool, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // True iff some byte of `x` is below `n` (n <= 128), for bytes < 128;
    // bytes >= 128 are masked out by `!x & HIGH`.
    let less = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH != 0;
    let mut chunks = line.chunks_exact(8);
    let mut high = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if less(x, 0x20) || less(x ^ (ONES * 0x7f), 1) {
            return (true, true);
        }
        high |= x;
    }
    let rem = chunks.remainder();
    (
        rem.iter().any(|&b| b < 0x20 || b == 0x7f),
        high & HIGH != 0 || rem.iter().any(|&b| b >= 0x80),
    )
}

/// Verbs as upper-case ASCII packed in a u64, for a branch-free compare.
const fn verb_key(v: &[u8]) -> u64 {
    let mut k = 0u64;
    let mut i = 0;
    while i < v.len() {
        k = (k << 8) | v[i] as u64;
        i += 1;
    }
    k
}

#[inline]
fn key_of(verb: &[u8]) -> Option<u64> {
    if verb.len() > 8 {
        return None;
    }
    let mut k = 0u64;
    for &b in verb {
        k = (k << 8) | u64::from(b.to_ascii_uppercase());
    }
    Some(k)
}

impl<'a> Command<'a> {
    /// Parses one command from the start of `input` with default options.
    ///
    /// Returns [`Parsed::Incomplete`] until a line end arrives. For a stream
    /// of commands that must stay in sync after errors, use
    /// [`crate::LineFramer`] and [`Command::parse_line`].
    pub fn parse(input: &'a [u8]) -> Result<Parsed<Command<'a>>, CommandError> {
        Self::parse_with(input, &CommandOptions::default())
    }

    /// [`Command::parse`] with explicit options.
    pub fn parse_with(
        input: &'a [u8],
        opts: &CommandOptions,
    ) -> Result<Parsed<Command<'a>>, CommandError> {
        let window = &input[..input.len().min(opts.max_line)];
        match memchr::memchr(b'\n', window) {
            Some(lf) => {
                let content = line_content(&input[..=lf], opts.line_ending)?;
                Ok(Parsed::Complete {
                    value: Self::parse_line(content, opts)?,
                    consumed: lf + 1,
                })
            }
            None if input.len() >= opts.max_line => Err(CommandError::LineTooLong {
                limit: opts.max_line,
            }),
            None => Ok(Parsed::Incomplete),
        }
    }

    /// Parses one command line given without its line end.
    #[inline]
    pub fn parse_line(line: &'a [u8], opts: &CommandOptions) -> Result<Command<'a>, CommandError> {
        let (control, non_ascii) = classify(line);
        if control {
            let bad = line.iter().find(|&&b| b < 0x20 || b == 0x7f).copied();
            return Err(CommandError::ControlCharacter(bad.unwrap_or(0)));
        }
        // Verbs are short: a plain loop beats a memchr call here.
        let verb_end = line
            .iter()
            .take(9)
            .position(|&b| b == b' ')
            .unwrap_or_else(|| {
                if line.len() <= 9 {
                    line.len()
                } else {
                    memchr::memchr(b' ', line).unwrap_or(line.len())
                }
            });
        let (verb, rest) = line.split_at(verb_end);
        const HELO: u64 = verb_key(b"HELO");
        const EHLO: u64 = verb_key(b"EHLO");
        const LHLO: u64 = verb_key(b"LHLO");
        const MAIL: u64 = verb_key(b"MAIL");
        const RCPT: u64 = verb_key(b"RCPT");
        const DATA: u64 = verb_key(b"DATA");
        const BDAT: u64 = verb_key(b"BDAT");
        const RSET: u64 = verb_key(b"RSET");
        const VRFY: u64 = verb_key(b"VRFY");
        const EXPN: u64 = verb_key(b"EXPN");
        const HELP: u64 = verb_key(b"HELP");
        const NOOP: u64 = verb_key(b"NOOP");
        const QUIT: u64 = verb_key(b"QUIT");
        const STARTTLS: u64 = verb_key(b"STARTTLS");
        const AUTH: u64 = verb_key(b"AUTH");
        let key = key_of(verb);
        let known = matches!(
            key,
            Some(
                HELO | EHLO
                    | LHLO
                    | MAIL
                    | RCPT
                    | DATA
                    | BDAT
                    | RSET
                    | VRFY
                    | EXPN
                    | HELP
                    | NOOP
                    | QUIT
                    | STARTTLS
                    | AUTH
            )
        );
        if !known {
            return Ok(Command::Unknown(UnknownCommand(Cow::Borrowed(line))));
        }
        let rest = std::str::from_utf8(rest).map_err(|_| CommandError::InvalidUtf8)?;
        let cmd = match key.unwrap_or(0) {
            HELO => Command::Helo { host: hello(rest)? },
            EHLO => Command::Ehlo { host: hello(rest)? },
            LHLO => Command::Lhlo { host: hello(rest)? },
            MAIL => mail(rest, non_ascii)?,
            RCPT => rcpt(rest, opts, non_ascii)?,
            DATA => no_args(rest, Command::Data)?,
            RSET => no_args(rest, Command::Rset)?,
            QUIT => no_args(rest, Command::Quit)?,
            STARTTLS => no_args(rest, Command::StartTls)?,
            BDAT => bdat(rest)?,
            VRFY => Command::Vrfy {
                arg: required_arg(rest)?,
            },
            EXPN => Command::Expn {
                arg: required_arg(rest)?,
            },
            HELP => Command::Help {
                topic: optional_arg(rest)?,
            },
            NOOP => Command::Noop {
                arg: optional_arg(rest)?,
            },
            _ => auth(rest)?,
        };
        Ok(cmd)
    }

    /// The verb, upper case (`"UNKNOWN"` for unknown commands).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Helo { .. } => "HELO",
            Command::Ehlo { .. } => "EHLO",
            Command::Lhlo { .. } => "LHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Vrfy { .. } => "VRFY",
            Command::Expn { .. } => "EXPN",
            Command::Help { .. } => "HELP",
            Command::Noop { .. } => "NOOP",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Unknown(_) => "UNKNOWN",
        }
    }

    /// The reply for an unrecognised command (500 5.5.1).
    pub fn unrecognised_reply() -> Reply<'static> {
        crate::replies::UNRECOGNISED.into()
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Command<'static> {
        match self {
            Command::Helo { host } => Command::Helo {
                host: host.into_owned(),
            },
            Command::Ehlo { host } => Command::Ehlo {
                host: host.into_owned(),
            },
            Command::Lhlo { host } => Command::Lhlo {
                host: host.into_owned(),
            },
            Command::Mail { from, params } => Command::Mail {
                from: from.into_owned(),
                params: params.into_owned(),
            },
            Command::Rcpt { to, params } => Command::Rcpt {
                to: to.into_owned(),
                params: params.into_owned(),
            },
            Command::Data => Command::Data,
            Command::Bdat { size, last } => Command::Bdat { size, last },
            Command::Rset => Command::Rset,
            Command::Vrfy { arg } => Command::Vrfy {
                arg: arg.into_owned(),
            },
            Command::Expn { arg } => Command::Expn {
                arg: arg.into_owned(),
            },
            Command::Help { topic } => Command::Help {
                topic: topic.map(Argument::into_owned),
            },
            Command::Noop { arg } => Command::Noop {
                arg: arg.map(Argument::into_owned),
            },
            Command::Quit => Command::Quit,
            Command::StartTls => Command::StartTls,
            Command::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism: mechanism.into_owned(),
                initial_response: initial_response.map(InitialResponse::into_owned),
            },
            Command::Unknown(u) => Command::Unknown(UnknownCommand(Cow::Owned(u.0.into_owned()))),
        }
    }

    /// Writes the command line, CRLF included.
    pub fn encode(&self, dst: &mut BytesMut) {
        fn word(dst: &mut BytesMut, verb: &str, arg: Option<&str>) {
            dst.extend_from_slice(verb.as_bytes());
            if let Some(a) = arg {
                dst.extend_from_slice(b" ");
                dst.extend_from_slice(a.as_bytes());
            }
        }
        match self {
            Command::Helo { host } | Command::Ehlo { host } | Command::Lhlo { host } => {
                dst.extend_from_slice(self.verb().as_bytes());
                dst.extend_from_slice(b" ");
                host.encode(dst);
            }
            Command::Mail { from, params } => {
                dst.extend_from_slice(b"MAIL FROM:");
                from.encode(dst);
                params.encode(dst);
            }
            Command::Rcpt { to, params } => {
                dst.extend_from_slice(b"RCPT TO:");
                to.encode(dst);
                params.encode(dst);
            }
            Command::Bdat { size, last } => {
                dst.extend_from_slice(format!("BDAT {size}").as_bytes());
                if *last {
                    dst.extend_from_slice(b" LAST");
                }
            }
            Command::Vrfy { arg } | Command::Expn { arg } => {
                word(dst, self.verb(), Some(arg.as_str()))
            }
            Command::Help { topic: arg } | Command::Noop { arg } => {
                word(dst, self.verb(), arg.as_ref().map(Argument::as_str))
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let ir = initial_response.as_ref().map(|ir| match ir {
                    InitialResponse::Empty => "=",
                    InitialResponse::Base64(t) => t,
                });
                word(dst, "AUTH", Some(mechanism.as_str()));
                if let Some(ir) = ir {
                    word(dst, "", Some(ir));
                }
            }
            Command::Unknown(u) => dst.extend_from_slice(&u.0),
            Command::Data | Command::Rset | Command::Quit | Command::StartTls => {
                word(dst, self.verb(), None)
            }
        }
        dst.extend_from_slice(b"\r\n");
    }

    /// The encoded line.
    pub fn to_bytes(&self) -> BytesMut {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b
    }
}

#[inline]
fn no_args<'a>(rest: &str, cmd: Command<'a>) -> Result<Command<'a>, CommandError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(CommandError::Syntax)
    }
}

fn hello(rest: &str) -> Result<Host<'_>, CommandError> {
    let arg = rest.strip_prefix(' ').ok_or(CommandError::Syntax)?;
    match address::host(arg) {
        Ok(("", h)) if h.is_ascii() => Ok(h),
        _ => Err(CommandError::Syntax),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn mail(rest: &str, non_ascii: bool) -> Result<Command<'_>, CommandError> {
    let arg = strip_prefix_ci(rest, " FROM:").ok_or(CommandError::Syntax)?;
    let (after, from) = address::reverse_path(arg).map_err(|_| CommandError::InvalidReversePath)?;
    let params = MailParameters::parse(after)?;
    if non_ascii && !from.is_ascii() && !params.smtputf8 {
        return Err(CommandError::Utf8NotPermitted);
    }
    Ok(Command::Mail { from, params })
}

fn rcpt<'a>(
    rest: &'a str,
    opts: &CommandOptions,
    non_ascii: bool,
) -> Result<Command<'a>, CommandError> {
    let arg = strip_prefix_ci(rest, " TO:").ok_or(CommandError::Syntax)?;
    let (after, to) = address::forward_path(arg).map_err(|_| CommandError::InvalidForwardPath)?;
    let params = RcptParameters::parse(after)?;
    if non_ascii && !to.is_ascii() && !opts.smtputf8 {
        return Err(CommandError::Utf8NotPermitted);
    }
    Ok(Command::Rcpt { to, params })
}

fn bdat(rest: &str) -> Result<Command<'_>, CommandError> {
    let arg = rest.strip_prefix(' ').ok_or(CommandError::Syntax)?;
    let (num, last) = match arg.split_once(' ') {
        Some((n, l)) if l.eq_ignore_ascii_case("LAST") => (n, true),
        Some(_) => return Err(CommandError::Syntax),
        None => (arg, false),
    };
    Ok(Command::Bdat {
        size: parse_number(num, 20)?,
        last,
    })
}

fn required_arg(rest: &str) -> Result<Argument<'_>, CommandError> {
    rest.strip_prefix(' ')
        .and_then(Argument::new)
        .ok_or(CommandError::Syntax)
}

fn optional_arg(rest: &str) -> Result<Option<Argument<'_>>, CommandError> {
    if rest.is_empty() {
        return Ok(None);
    }
    required_arg(rest).map(Some)
}

fn auth(rest: &str) -> Result<Command<'_>, CommandError> {
    let arg = rest.strip_prefix(' ').ok_or(CommandError::Syntax)?;
    let (mech, ir) = match arg.split_once(' ') {
        Some((m, ir)) => (m, Some(ir)),
        None => (arg, None),
    };
    let mechanism = Mechanism::new(mech).ok_or(CommandError::Syntax)?;
    let initial_response = match ir {
        None => None,
        Some("=") => Some(InitialResponse::Empty),
        Some(t) => Some(InitialResponse::base64(t).ok_or(CommandError::Syntax)?),
    };
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}
