//! What a peer can get wrong in a command, and the one place that maps each
//! mistake to the reply a server sends.

use crate::reply::{FixedReply, Reply};
use session_core::LineError;

/// A command line the peer sent was refused. Every variant is recoverable:
/// the server answers with [`CommandError::reply`] and reads the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line is longer than the configured limit (RFC 5321 §4.5.3.1.4).
    #[error("command line longer than {limit} octets")]
    LineTooLong {
        /// The limit in force, CRLF included.
        limit: usize,
    },
    /// The line ends in a bare LF and the configuration is strict.
    #[error("command line ends in a bare LF")]
    BareLf,
    /// NUL, a bare CR or another control character in the line.
    #[error("control character 0x{0:02x} in command line")]
    ControlCharacter(u8),
    /// The line is not valid UTF-8.
    #[error("command line is not valid UTF-8")]
    InvalidUtf8,
    /// The arguments of a known command do not follow its grammar.
    #[error("syntax error in command arguments")]
    Syntax,
    /// The MAIL FROM reverse-path is malformed.
    #[error("malformed sender address")]
    InvalidReversePath,
    /// The RCPT TO forward-path is malformed (this includes `<>`).
    #[error("malformed recipient address")]
    InvalidForwardPath,
    /// A UTF-8 address outside an SMTPUTF8 transaction (RFC 6531 §3.5).
    #[error("UTF-8 address without SMTPUTF8")]
    Utf8NotPermitted,
    /// A number has too many digits or does not fit (SIZE, BDAT, …).
    #[error("number too large")]
    NumberTooLarge,
    /// A parameter appears twice.
    #[error("parameter {0} given more than once")]
    DuplicateParameter(String),
    /// A known parameter has a missing or malformed value.
    #[error("invalid value for parameter {0}")]
    InvalidParameter(&'static str),
}

impl From<LineError> for CommandError {
    fn from(e: LineError) -> Self {
        match e {
            LineError::TooLong { limit } => CommandError::LineTooLong { limit },
            _ => CommandError::BareLf,
        }
    }
}

impl CommandError {
    /// The reply a server sends for this error.
    pub fn reply(&self) -> Reply<'static> {
        self.fixed_reply().into()
    }

    /// [`CommandError::reply`] as a constant, without allocation.
    pub fn fixed_reply(&self) -> FixedReply {
        match self {
            CommandError::LineTooLong { .. } => {
                const { FixedReply::new(500, Some((5, 5, 2)), "Line too long") }
            }
            CommandError::BareLf => {
                const {
                    FixedReply::new(
                        500,
                        Some((5, 5, 2)),
                        "Bare LF not allowed, lines end in CRLF",
                    )
                }
            }
            CommandError::ControlCharacter(_) => {
                const {
                    FixedReply::new(
                        500,
                        Some((5, 5, 2)),
                        "Control characters not allowed in commands",
                    )
                }
            }
            CommandError::InvalidUtf8 => {
                const { FixedReply::new(500, Some((5, 5, 2)), "Invalid UTF-8 in command") }
            }
            CommandError::Syntax => {
                const {
                    FixedReply::new(
                        501,
                        Some((5, 5, 4)),
                        "Syntax error in parameters or arguments",
                    )
                }
            }
            CommandError::InvalidReversePath => {
                const { FixedReply::new(501, Some((5, 1, 7)), "Bad sender address syntax") }
            }
            CommandError::InvalidForwardPath => {
                const { FixedReply::new(501, Some((5, 1, 3)), "Bad recipient address syntax") }
            }
            CommandError::Utf8NotPermitted => {
                const {
                    FixedReply::new(
                        553,
                        Some((5, 6, 7)),
                        "Non-ASCII addresses require the SMTPUTF8 parameter",
                    )
                }
            }
            CommandError::NumberTooLarge => {
                const { FixedReply::new(501, Some((5, 5, 4)), "Number too large") }
            }
            CommandError::DuplicateParameter(_) => {
                const { FixedReply::new(501, Some((5, 5, 4)), "Parameter given more than once") }
            }
            CommandError::InvalidParameter(_) => {
                const { FixedReply::new(501, Some((5, 5, 4)), "Invalid parameter value") }
            }
        }
    }
}
