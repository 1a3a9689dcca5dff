//! Sans-IO SMTP and LMTP: the wire codec.
//!
//! This crate parses and encodes what travels over an SMTP (RFC 5321) or
//! LMTP (RFC 2033) connection, and never touches a socket, a clock or a
//! file. You feed it bytes and get typed values back; you give it values and
//! get bytes to write.
//!
//! - [`Command`]: every command of RFC 5321 §4.1 plus LHLO, BDAT (RFC
//!   3030), STARTTLS (RFC 3207) and AUTH (RFC 4954), with typed paths
//!   ([`ReversePath`], [`ForwardPath`], [`Mailbox`]) and ESMTP parameters
//!   ([`MailParameters`], [`RcptParameters`]: SIZE, BODY, SMTPUTF8, RET,
//!   ENVID, AUTH, REQUIRETLS, MT-PRIORITY, BY, HOLDFOR/HOLDUNTIL, NOTIFY,
//!   ORCPT; unknown ones are kept so a server can refuse them with 555).
//! - [`Reply`]: codes, enhanced status codes (RFC 2034/3463) and multi-line
//!   text; [`EhloResponse`] reads and writes the capability list.
//! - [`LineFramer`]: cuts a stream into command lines with a bounded buffer,
//!   however the bytes are split across reads.
//! - [`DataDecoder`], [`DataEncoder`], [`BdatDecoder`]: message bodies,
//!   streamed, with a strict end of data so no message can be smuggled.
//!   The framer and the DATA codecs come from `session-core` (POP3 uses the
//!   same ones) and are re-exported here.
//! - [`server::Session`]: the receiving side (SMTP MX, submission, LMTP) as
//!   a sans-IO state machine with decisions by token, pipelining, STARTTLS,
//!   AUTH (through the `sasl` crate), BDAT and per-recipient LMTP replies.
//!   Its module documentation shows the run loop driving a transaction.
//!
//! Every peer mistake is a [`CommandError`] whose `reply()` is the answer a
//! server sends (a [`BodyError`]'s is [`replies::body_error`]); the
//! [`replies`] module holds every fixed reply; nothing here panics on
//! input.
//!
//! # Example: a server reading a pipelined envelope and a body
//!
//! ```
//! use bytes::BytesMut;
//! use smtp_proto::*;
//!
//! let opts = CommandOptions::default();
//! let mut framer = LineFramer::new(opts.max_line, opts.line_ending);
//! let mut input: &[u8] =
//!     b"MAIL FROM:<alice@example.org> SIZE=42\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n";
//! let mut replies = BytesMut::new();
//! while !input.is_empty() {
//!     let (used, line) = framer.push(input);
//!     input = &input[used..];
//!     let Some(line) = line else { break };
//!     let parsed = line.map_err(CommandError::from).and_then(|l| Command::parse_line(l, &opts));
//!     let reply = match parsed {
//!         Ok(Command::Mail { from: ReversePath::Mailbox(m), params }) => {
//!             assert_eq!(m.to_string(), "alice@example.org");
//!             assert_eq!(params.size, Some(42));
//!             Reply::from(FixedReply::new(250, None, "OK"))
//!         }
//!         Ok(Command::Rcpt { .. }) => FixedReply::new(250, None, "OK").into(),
//!         Ok(Command::Data) => FixedReply::new(354, None, "End data with <CR><LF>.<CR><LF>").into(),
//!         Ok(_) => Command::unrecognised_reply(),
//!         Err(e) => e.reply(),
//!     };
//!     reply.encode(&mut replies);
//! }
//! assert_eq!(&replies[..], &b"250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"[..]);
//!
//! // The body arrives in pieces; the decoder finds the end of data.
//! let mut body = DataDecoder::new();
//! let mut message = BytesMut::new();
//! assert_eq!(body.decode(b"Subject: hi\r\n\r\nHello\r", &mut message), BodyProgress::NeedMore);
//! let rest = b"\n.\r\nQUIT\r\n";
//! let BodyProgress::Finished { consumed, result } = body.decode(rest, &mut message) else {
//!     unreachable!()
//! };
//! assert_eq!(result, Ok(()));
//! assert_eq!(&message[..], b"Subject: hi\r\n\r\nHello\r\n");
//! assert_eq!(Command::parse(&rest[consumed..]).unwrap(),
//!            Parsed::Complete { value: Command::Quit, consumed: 6 });
//! ```
//!
//! # Limits and policies
//! Command lines are limited to 512 octets by default ([`CommandOptions`]);
//! a longer line is refused with 500 however it is split across reads. Bare
//! LF line ends in commands and bare CR or LF in a DATA body are refused
//! unless [`BareLineEnding::Normalize`] is chosen (one policy type for
//! both: [`CommandOptions::line_ending`] and the server's
//! `Config::body_line_ending`). The end of data is only ever the
//! exact bytes `CRLF . CRLF`.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod address;
mod bdat;
pub mod client;
mod command;
pub mod delivery;
/// The 8-bit downgrade for servers without 8BITMIME (shared with IMAP's
/// binary APPEND, so it lives in the session core).
pub mod downgrade {
    pub use session_core::transfer::{DowngradeError, is_eight_bit, to_seven_bit};
}
mod ehlo;
mod error;
pub mod params;
pub mod replies;
mod reply;
pub mod server;

pub use address::{AddressLiteral, Domain, ForwardPath, Host, LocalPart, Mailbox, ReversePath};
pub use bdat::BdatDecoder;
pub use command::{
    Argument, Command, CommandOptions, DEFAULT_MAX_LINE, InitialResponse, Mechanism, UnknownCommand,
};
pub use ehlo::{Capability, EhloError, EhloResponse};
pub use error::CommandError;
pub use params::{MailParameters, RcptParameters};
pub use reply::{
    EnhancedCode, FixedReply, InvalidReply, Reply, ReplyCode, ReplyError, ReplyLimits,
};
pub use session_core::{
    BareLineEnding, BodyError, BodyProgress, CrlfSize, DataDecoder, DataEncoder, LineError,
    LineFramer, crlf_size,
};

/// The result of parsing from the start of a buffer that may not hold a
/// whole item yet. Needing more bytes is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A whole item was parsed from the first `consumed` bytes.
    Complete {
        /// The item.
        value: T,
        /// How many bytes it took.
        consumed: usize,
    },
    /// More bytes are needed.
    Incomplete,
}

impl<T> Parsed<T> {
    /// The value, if complete.
    pub fn complete(self) -> Option<T> {
        match self {
            Parsed::Complete { value, .. } => Some(value),
            Parsed::Incomplete => None,
        }
    }
}

/// The README's code examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
