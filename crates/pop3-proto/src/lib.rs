//! Sans-IO POP3 (RFC 1939, 2449 CAPA and RESP-CODES, 2595 STLS, 5034 SASL,
//! 3206 SYS/AUTH codes, 6856 UTF8).
//!
//! [`Command`] and [`response::Status`] parse and encode the wire (every
//! argument and text is validated: no value can carry a second line);
//! [`response::encode_multiline`] byte-stuffs bodies. [`server::Session`]
//! and [`client::Session`] implement `session_core::Session`, the shape every
//! mailkit session shares (`handle_input`, `handle_eof`, `handle_timeout`,
//! `poll_output`, `poll_timeout`, decisions answered by token with
//! `accept` / `reject`), so a caller who drove the SMTP server session
//! drives these the same way.
//!
//! # The server run loop
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use pop3_proto::response::{RespCode, Status};
//! use pop3_proto::server::{Config, DropEntry, Event, LoginCheck, Output, Session};
//!
//! let mut config = Config::new("pop.example.org");
//! config.allow_plaintext_auth = true; // a test without TLS
//! let now = Instant::now();
//! let mut s = Session::new(Arc::new(config), now, [3; 16]);
//! let stored = b"Subject: hi\n\n.leading dot\n";
//! let mut wire = Vec::new();
//! for read in [&b"USER bob\r\nPASS secret words\r\n"[..], b"STAT\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n"] {
//!     s.handle_input(now, read);
//!     while let Some(out) = s.poll_output() {
//!         match out {
//!             Output::Transmit(b) => wire.extend_from_slice(&b),
//!             Output::Event(Event::Login { token, check: LoginCheck::Password(p), .. }) => {
//!                 assert_eq!(p.expose(), "secret words");
//!                 let size = pop3_proto::crlf_size(stored);
//!                 let entry = DropEntry::new(size, "u1").unwrap();
//!                 s.open_maildrop(token, vec![entry]).unwrap();
//!             }
//!             Output::Event(Event::Retrieve { token, .. }) => s.send_message(token, stored).unwrap(),
//!             Output::Event(Event::Commit { token, deleted }) => {
//!                 assert_eq!(deleted, [0]); // delete them in the store, then:
//!                 s.accept(token).unwrap();
//!             }
//!             // Never drop a decision: refuse what is not handled here.
//!             Output::Event(other) => {
//!                 if let Some(token) = other.into_token() {
//!                     let busy = Status::err_code(RespCode::SysTemp, "not now");
//!                     s.reject(token, busy).unwrap();
//!                 }
//!             }
//!             Output::StartTls | Output::Compress => unreachable!("no STLS here"),
//!             Output::Closed => {}
//!         }
//!     }
//! }
//! let wire = String::from_utf8(wire).unwrap();
//! assert!(wire.contains("+OK 1 29\r\n"));
//! assert!(wire.contains("+OK message follows\r\nSubject: hi\r\n\r\n..leading dot\r\n.\r\n"));
//! assert!(wire.ends_with("+OK message 1 deleted\r\n+OK bye\r\n"));
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod client;
mod command;
pub mod response;
pub mod server;

pub use command::{Command, CommandError, MAX_COMMAND_LINE, Text, Word};
pub use session_core::crlf_size;
