//! POP3 commands (RFC 1939, 2449, 2595, 5034, 6856): parse and encode.
//!
//! Every argument is a validated type ([`Word`], [`Text`]) that cannot hold
//! CR, LF, NUL or another control character, so no command can carry a
//! second one inside it.

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;
use sasl::Secret;
use session_core::LineError;

/// Longest command line, CRLF included (RFC 2449 §4).
pub const MAX_COMMAND_LINE: usize = 255;

/// A command line the client sent was refused, or a command could not be
/// built from the given parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Over the line limit.
    #[error("command line too long")]
    LineTooLong,
    /// Bare LF, NUL or another control character.
    #[error("control character in command")]
    ControlCharacter,
    /// Not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// Unknown keyword.
    #[error("unknown command")]
    Unknown,
    /// A known command with wrong arguments (an empty argument, a space in a
    /// word, an APOP digest that is not 32 hex digits).
    #[error("syntax error in arguments")]
    Syntax,
    /// A message number or count out of range (or more than 10 digits).
    #[error("invalid number")]
    Number,
}

impl From<LineError> for CommandError {
    fn from(e: LineError) -> Self {
        match e {
            LineError::TooLong { .. } => CommandError::LineTooLong,
            _ => CommandError::ControlCharacter,
        }
    }
}

fn has_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// One argument word: not empty, no space, no control character.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Word<'a>(Cow<'a, str>);

impl<'a> Word<'a> {
    /// Validates a word.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, CommandError> {
        let s = s.into();
        if s.is_empty() || s.contains(' ') {
            return Err(CommandError::Syntax);
        }
        if has_control(&s) {
            return Err(CommandError::ControlCharacter);
        }
        Ok(Word(s))
    }

    /// The word.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Word<'static> {
        Word(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The rest of a line (PASS): not empty, spaces allowed, no control
/// character.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    /// Validates a text.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, CommandError> {
        let s = s.into();
        if s.is_empty() {
            return Err(CommandError::Syntax);
        }
        if has_control(&s) {
            return Err(CommandError::ControlCharacter);
        }
        Ok(Text(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One POP3 command. Parsed commands borrow the line
/// ([`Command::into_owned`] detaches them); build them with the validated
/// argument types or the constructors ([`Command::user`], [`Command::pass`]
/// …).
///
/// ```
/// use pop3_proto::Command;
///
/// assert!(Command::user("a\r\nDELE 1").is_err()); // no second command inside
/// let mut wire = bytes::BytesMut::new();
/// Command::pass("correct horse battery").unwrap().encode(&mut wire);
/// assert_eq!(&wire[..], b"PASS correct horse battery\r\n");
/// assert_eq!(format!("{:?}", Command::parse_line(b"PASS hunter2").unwrap()), "Pass(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `USER name`
    User(Word<'a>),
    /// `PASS string` (may contain spaces)
    Pass(Secret<Text<'a>>),
    /// `APOP name digest`
    Apop {
        /// The user name.
        name: Word<'a>,
        /// 32 lower-case hex digits.
        digest: Word<'a>,
    },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034)
    Auth {
        /// The mechanism, upper-cased; `None` lists them.
        mechanism: Option<Word<'a>>,
        /// SASL-IR, still base64 (`=` for empty).
        initial_response: Option<Secret<Word<'a>>>,
    },
    /// `STAT`
    Stat,
    /// `LIST [msg]`
    List(Option<u32>),
    /// `RETR msg`
    Retr(u32),
    /// `DELE msg`
    Dele(u32),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `QUIT`
    Quit,
    /// `TOP msg n`
    Top(u32, u32),
    /// `UIDL [msg]`
    Uidl(Option<u32>),
    /// `CAPA` (RFC 2449)
    Capa,
    /// `STLS` (RFC 2595)
    Stls,
    /// `UTF8` (RFC 6856)
    Utf8,
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never print a password.
            Command::Pass(_) => f.write_str("Pass(<redacted>)"),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Command::User(u) => f.debug_tuple("User").field(u).finish(),
            Command::Apop { name, .. } => f
                .debug_struct("Apop")
                .field("name", name)
                .finish_non_exhaustive(),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Quit => f.write_str("Quit"),
            Command::Top(n, m) => f.debug_tuple("Top").field(n).field(m).finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            Command::Capa => f.write_str("Capa"),
            Command::Stls => f.write_str("Stls"),
            Command::Utf8 => f.write_str("Utf8"),
        }
    }
}

fn number(s: &str) -> Result<u32, CommandError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Number);
    }
    s.parse().map_err(|_| CommandError::Number)
}

fn digest(s: &str) -> Result<Word<'static>, CommandError> {
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Word::new(s.to_ascii_lowercase())
    } else {
        Err(CommandError::Syntax)
    }
}

impl<'a> Command<'a> {
    /// `USER name`.
    pub fn user(name: impl Into<Cow<'a, str>>) -> Result<Self, CommandError> {
        Ok(Command::User(Word::new(name)?))
    }

    /// `PASS password`.
    pub fn pass(password: impl Into<Cow<'a, str>>) -> Result<Self, CommandError> {
        Ok(Command::Pass(Secret::new(Text::new(password)?)))
    }

    /// `APOP name digest` (the digest: 32 hex digits).
    pub fn apop(name: impl Into<Cow<'a, str>>, digest_hex: &str) -> Result<Self, CommandError> {
        Ok(Command::Apop {
            name: Word::new(name)?,
            digest: digest(digest_hex)?,
        })
    }

    /// `AUTH mechanism [initial-response]` (the response already base64,
    /// `=` for empty).
    pub fn auth(mechanism: &str, initial_response: Option<&str>) -> Result<Self, CommandError> {
        Ok(Command::Auth {
            mechanism: Some(Word::new(mechanism.to_ascii_uppercase())?),
            initial_response: match initial_response {
                None => None,
                Some(ir) => Some(Secret::new(Word::new(ir.to_owned())?)),
            },
        })
    }

    /// Parses one command line given without its CRLF.
    pub fn parse_line(line: &'a [u8]) -> Result<Command<'a>, CommandError> {
        if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(CommandError::ControlCharacter);
        }
        let line = std::str::from_utf8(line).map_err(|_| CommandError::InvalidUtf8)?;
        let (kw, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, Some(r)),
            None => (line, None),
        };
        if !(3..=4).contains(&kw.len()) || !kw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CommandError::Unknown);
        }
        let mut upper = [0u8; 4];
        for (u, b) in upper.iter_mut().zip(kw.bytes()) {
            *u = b.to_ascii_uppercase();
        }
        let upper = &upper[..kw.len()];
        let mut args = rest.map(|r| r.split(' '));
        let mut arg = || args.as_mut().and_then(Iterator::next);
        let (a1, a2, a3) = (arg(), arg(), arg());
        let none = |c: Command<'a>| {
            if rest.is_none() {
                Ok(c)
            } else {
                Err(CommandError::Syntax)
            }
        };
        let word = |s: &'a str| Word::new(s);
        match (upper, a1, a2, a3) {
            (b"USER", Some(name), None, _) => Ok(Command::User(word(name)?)),
            (b"PASS", ..) => match rest {
                Some(p) => Ok(Command::Pass(Secret::new(Text::new(p)?))),
                None => Err(CommandError::Syntax),
            },
            (b"APOP", Some(name), Some(d), None) => Ok(Command::Apop {
                name: word(name)?,
                digest: digest(d)?,
            }),
            (b"AUTH", None, ..) => Ok(Command::Auth {
                mechanism: None,
                initial_response: None,
            }),
            (b"AUTH", Some(m), ir, None) => Ok(Command::Auth {
                mechanism: Some(Word::new(m.to_ascii_uppercase())?),
                initial_response: match ir {
                    None => None,
                    Some(ir) => Some(Secret::new(word(ir)?)),
                },
            }),
            (b"STAT", ..) => none(Command::Stat),
            (b"NOOP", ..) => none(Command::Noop),
            (b"RSET", ..) => none(Command::Rset),
            (b"QUIT", ..) => none(Command::Quit),
            (b"CAPA", ..) => none(Command::Capa),
            (b"STLS", ..) => none(Command::Stls),
            (b"UTF8", ..) => none(Command::Utf8),
            (b"LIST", None, ..) => Ok(Command::List(None)),
            (b"LIST", Some(n), None, _) => Ok(Command::List(Some(number(n)?))),
            (b"UIDL", None, ..) => Ok(Command::Uidl(None)),
            (b"UIDL", Some(n), None, _) => Ok(Command::Uidl(Some(number(n)?))),
            (b"RETR", Some(n), None, _) => Ok(Command::Retr(number(n)?)),
            (b"DELE", Some(n), None, _) => Ok(Command::Dele(number(n)?)),
            (b"TOP", Some(n), Some(m), None) => Ok(Command::Top(number(n)?, number(m)?)),
            (b"USER" | b"APOP" | b"AUTH" | b"LIST" | b"UIDL" | b"RETR" | b"DELE" | b"TOP", ..) => {
                Err(CommandError::Syntax)
            }
            _ => Err(CommandError::Unknown),
        }
    }

    /// Whether the server answers this command with a multi-line body when
    /// it succeeds.
    pub fn is_multiline(&self) -> bool {
        matches!(
            self,
            Command::List(None)
                | Command::Uidl(None)
                | Command::Retr(_)
                | Command::Top(..)
                | Command::Capa
                | Command::Auth {
                    mechanism: None,
                    ..
                }
        )
    }

    /// Writes the command line with CRLF.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut put = |parts: &[&str]| {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    dst.extend_from_slice(b" ");
                }
                dst.extend_from_slice(p.as_bytes());
            }
        };
        let n;
        let m;
        match self {
            Command::User(u) => put(&["USER", u.as_str()]),
            Command::Pass(p) => put(&["PASS", p.expose().as_str()]),
            Command::Apop { name, digest } => put(&["APOP", name.as_str(), digest.as_str()]),
            Command::Auth {
                mechanism: None, ..
            } => put(&["AUTH"]),
            Command::Auth {
                mechanism: Some(mech),
                initial_response: None,
            } => put(&["AUTH", mech.as_str()]),
            Command::Auth {
                mechanism: Some(mech),
                initial_response: Some(ir),
            } => put(&["AUTH", mech.as_str(), ir.expose().as_str()]),
            Command::Stat => put(&["STAT"]),
            Command::List(None) => put(&["LIST"]),
            Command::List(Some(k)) => {
                n = k.to_string();
                put(&["LIST", &n]);
            }
            Command::Retr(k) => {
                n = k.to_string();
                put(&["RETR", &n]);
            }
            Command::Dele(k) => {
                n = k.to_string();
                put(&["DELE", &n]);
            }
            Command::Noop => put(&["NOOP"]),
            Command::Rset => put(&["RSET"]),
            Command::Quit => put(&["QUIT"]),
            Command::Top(k, l) => {
                n = k.to_string();
                m = l.to_string();
                put(&["TOP", &n, &m]);
            }
            Command::Uidl(None) => put(&["UIDL"]),
            Command::Uidl(Some(k)) => {
                n = k.to_string();
                put(&["UIDL", &n]);
            }
            Command::Capa => put(&["CAPA"]),
            Command::Stls => put(&["STLS"]),
            Command::Utf8 => put(&["UTF8"]),
        }
        dst.extend_from_slice(b"\r\n");
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Command<'static> {
        match self {
            Command::User(u) => Command::User(u.into_owned()),
            Command::Pass(p) => Command::Pass(Secret::new(p.into_inner().into_owned())),
            Command::Apop { name, digest } => Command::Apop {
                name: name.into_owned(),
                digest: digest.into_owned(),
            },
            Command::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism: mechanism.map(Word::into_owned),
                initial_response: initial_response
                    .map(|s| Secret::new(s.into_inner().into_owned())),
            },
            Command::Stat => Command::Stat,
            Command::List(n) => Command::List(n),
            Command::Retr(n) => Command::Retr(n),
            Command::Dele(n) => Command::Dele(n),
            Command::Noop => Command::Noop,
            Command::Rset => Command::Rset,
            Command::Quit => Command::Quit,
            Command::Top(n, m) => Command::Top(n, m),
            Command::Uidl(n) => Command::Uidl(n),
            Command::Capa => Command::Capa,
            Command::Stls => Command::Stls,
            Command::Utf8 => Command::Utf8,
        }
    }
}
