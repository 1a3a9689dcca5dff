//! POP3 commands (RFC 1939, 2449, 2595, 5034, 6856): parse and encode.

use std::fmt;

use bytes::BytesMut;

/// Longest command line, CRLF included (RFC 2449 §4).
pub const MAX_COMMAND_LINE: usize = 255;

/// A command line the client sent was refused.
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
    /// A known command with wrong arguments.
    #[error("syntax error in arguments")]
    Syntax,
    /// A message number or count out of range (or more than 10 digits).
    #[error("invalid number")]
    Number,
}

impl From<smtp_proto::CommandError> for CommandError {
    fn from(e: smtp_proto::CommandError) -> Self {
        match e {
            smtp_proto::CommandError::LineTooLong { .. } => CommandError::LineTooLong,
            _ => CommandError::ControlCharacter,
        }
    }
}

/// One POP3 command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(String),
    /// `PASS string` (may contain spaces)
    Pass(String),
    /// `APOP name digest`
    Apop {
        /// The user name.
        name: String,
        /// 32 lower-case hex digits.
        digest: String,
    },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034)
    Auth {
        /// The mechanism; `None` lists them.
        mechanism: Option<String>,
        /// SASL-IR, still base64 (`=` for empty).
        initial_response: Option<String>,
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

impl fmt::Debug for Command {
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

fn word_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(' ')
}

impl Command {
    /// Parses one command line given without its CRLF.
    pub fn parse_line(line: &[u8]) -> Result<Command, CommandError> {
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
        let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
        let upper = kw.to_ascii_uppercase();
        let none = |c: Command| {
            if rest.is_none() {
                Ok(c)
            } else {
                Err(CommandError::Syntax)
            }
        };
        match (upper.as_str(), args.as_slice()) {
            ("USER", [name]) if word_ok(name) => Ok(Command::User((*name).to_owned())),
            ("PASS", _) => match rest {
                Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_owned())),
                _ => Err(CommandError::Syntax),
            },
            ("APOP", [name, digest])
                if word_ok(name)
                    && digest.len() == 32
                    && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Command::Apop {
                    name: (*name).to_owned(),
                    digest: digest.to_ascii_lowercase(),
                })
            }
            ("AUTH", []) if rest.is_none() => Ok(Command::Auth {
                mechanism: None,
                initial_response: None,
            }),
            ("AUTH", [m]) if word_ok(m) => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial_response: None,
            }),
            ("AUTH", [m, ir]) if word_ok(m) && word_ok(ir) => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial_response: Some((*ir).to_owned()),
            }),
            ("STAT", _) => none(Command::Stat),
            ("NOOP", _) => none(Command::Noop),
            ("RSET", _) => none(Command::Rset),
            ("QUIT", _) => none(Command::Quit),
            ("CAPA", _) => none(Command::Capa),
            ("STLS", _) => none(Command::Stls),
            ("UTF8", _) => none(Command::Utf8),
            ("LIST", []) if rest.is_none() => Ok(Command::List(None)),
            ("LIST", [n]) => Ok(Command::List(Some(number(n)?))),
            ("UIDL", []) if rest.is_none() => Ok(Command::Uidl(None)),
            ("UIDL", [n]) => Ok(Command::Uidl(Some(number(n)?))),
            ("RETR", [n]) => Ok(Command::Retr(number(n)?)),
            ("DELE", [n]) => Ok(Command::Dele(number(n)?)),
            ("TOP", [n, m]) => Ok(Command::Top(number(n)?, number(m)?)),
            ("USER" | "APOP" | "AUTH" | "LIST" | "UIDL" | "RETR" | "DELE" | "TOP", _) => {
                Err(CommandError::Syntax)
            }
            _ => Err(CommandError::Unknown),
        }
    }

    /// Writes the command line with CRLF.
    pub fn encode(&self, dst: &mut BytesMut) {
        let s = match self {
            Command::User(u) => format!("USER {u}"),
            Command::Pass(p) => format!("PASS {p}"),
            Command::Apop { name, digest } => format!("APOP {name} {digest}"),
            Command::Auth {
                mechanism: None, ..
            } => "AUTH".to_owned(),
            Command::Auth {
                mechanism: Some(m),
                initial_response: None,
            } => format!("AUTH {m}"),
            Command::Auth {
                mechanism: Some(m),
                initial_response: Some(ir),
            } => format!("AUTH {m} {ir}"),
            Command::Stat => "STAT".into(),
            Command::List(None) => "LIST".into(),
            Command::List(Some(n)) => format!("LIST {n}"),
            Command::Retr(n) => format!("RETR {n}"),
            Command::Dele(n) => format!("DELE {n}"),
            Command::Noop => "NOOP".into(),
            Command::Rset => "RSET".into(),
            Command::Quit => "QUIT".into(),
            Command::Top(n, m) => format!("TOP {n} {m}"),
            Command::Uidl(None) => "UIDL".into(),
            Command::Uidl(Some(n)) => format!("UIDL {n}"),
            Command::Capa => "CAPA".into(),
            Command::Stls => "STLS".into(),
            Command::Utf8 => "UTF8".into(),
        };
        dst.extend_from_slice(s.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
}
