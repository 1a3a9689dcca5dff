//! What every mailkit sans-IO session shares, written once.
//!
//! - **Lines**: [`LineFramer`] cuts a byte stream into command or reply
//!   lines with a bounded buffer, however the bytes are split;
//!   [`BareLineEnding`] is the one policy for a CR or LF that is not part of
//!   a CRLF pair, in command lines and in bodies alike.
//! - **Dot-stuffed bodies** (SMTP DATA, POP3 multi-line responses):
//!   [`DataDecoder`] (strict end of data: only `CRLF . CRLF`) and
//!   [`DataEncoder`]; [`CrlfSize`] / [`crlf_size`], the size of a message once
//!   its line ends are CRLF.
//! - **Session plumbing**: [`Output`], decisions by [`Token`] that cannot be
//!   lost ([`Decisions`]: a wrong answer gives the token back in an
//!   [`AnswerError`]; a pending decision has a deadline), the input held
//!   while a decision is pending ([`Inbox`], bounded), and the [`Session`]
//!   trait that `smtp-proto`, `pop3-proto` and `imap-proto` sessions
//!   implement, so one adapter drives any of them.
//!
//! Nothing here touches a socket, a clock or a file.
//!
//! # Driving any session
//!
//! The loop an adapter runs, written once for every protocol (here over an
//! in-memory peer; a real adapter reads and writes a socket and sleeps until
//! `poll_timeout`):
//!
//! ```
//! use std::time::Instant;
//! use session_core::{Output, Session};
//!
//! /// Feeds `reads` to `session`, answering events with `on_event`;
//! /// returns what the session wrote.
//! fn run<S: Session>(
//!     session: &mut S,
//!     reads: &[&[u8]],
//!     mut on_event: impl FnMut(&mut S, S::Event),
//! ) -> Vec<u8> {
//!     let now = Instant::now();
//!     let mut wire = Vec::new();
//!     let mut reads = reads.iter();
//!     loop {
//!         while let Some(out) = session.poll_output() {
//!             match out {
//!                 Output::Transmit(bytes) => wire.extend_from_slice(&bytes),
//!                 Output::Event(event) => on_event(session, event),
//!                 Output::StartTls | Output::Compress => unimplemented!("not in this example"),
//!                 Output::Closed => return wire,
//!             }
//!         }
//!         match reads.next() {
//!             Some(read) if session.wants_input() => session.handle_input(now, read),
//!             Some(_) => session.handle_timeout(now),
//!             None => session.handle_eof(now),
//!         }
//!     }
//! }
//! # struct Echo(Vec<Output<()>>, bool);
//! # impl Session for Echo {
//! #     type Event = ();
//! #     fn handle_input(&mut self, _: Instant, b: &[u8]) {
//! #         self.0.push(Output::Transmit(bytes::Bytes::copy_from_slice(b)));
//! #     }
//! #     fn handle_eof(&mut self, _: Instant) { self.0.push(Output::Closed); self.1 = true; }
//! #     fn handle_timeout(&mut self, _: Instant) {}
//! #     fn poll_output(&mut self) -> Option<Output<()>> {
//! #         if self.0.is_empty() { None } else { Some(self.0.remove(0)) }
//! #     }
//! #     fn poll_timeout(&self) -> Option<Instant> { None }
//! #     fn wants_input(&self) -> bool { !self.1 }
//! #     fn is_closed(&self) -> bool { self.1 }
//! #     fn tls_established(&mut self, _: Instant) -> Result<(), session_core::ApiMisuse> {
//! #         Err(session_core::ApiMisuse::NoStartTls)
//! #     }
//! # }
//! let wire = run(&mut Echo(Vec::new(), false), &[b"hello ", b"world"], |_, _| {});
//! assert_eq!(wire, b"hello world");
//! ```
//!
//! The protocol crates show the same loop with their own events:
//! `smtp_proto::server`, `pop3_proto::server`, `pop3_proto::client`.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod body;
mod crlf;
mod line;
mod session;
pub mod transfer;

pub use body::{BodyError, BodyProgress, DataDecoder, DataEncoder};
pub use crlf::{CrlfSize, crlf_size};
pub use line::{BareLineEnding, LineError, LineFramer, line_content};
pub use session::{
    AnswerError, ApiMisuse, Consumed, Decisions, Inbox, Output, Overflow, Session, Token,
    deadline_after,
};
