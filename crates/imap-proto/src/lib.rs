//! Sans-IO IMAP (RFC 3501 IMAP4rev1, RFC 9051 IMAP4rev2): the wire codec.
//!
//! Both directions, so servers and clients can be built on it:
//! - [`Framer`]: cuts a client's stream into whole commands — lines and
//!   the literals inside them (`{n}`, `{n+}`, `~{n}`) — with limits enforced
//!   while scanning, telling when a synchronising literal needs a `+`
//!   continuation, and never taking literal bytes for commands;
//! - the string layer ([`Encoder`], [`Tag`]): atoms, quoted strings with
//!   escapes and literals, chosen so that no value can inject a line;
//! - [`SequenceSet`]: `1:5,7,10:*`, with `0` and values over 2^32-1
//!   refused and ranges never expanded into memory;
//! - [`utf7`]: modified UTF-7 mailbox names, refusing non-canonical forms;
//! - [`Command`]: the session and mailbox commands (CAPABILITY, LOGIN,
//!   AUTHENTICATE with SASL-IR, ENABLE, SELECT/EXAMINE with CONDSTORE,
//!   CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST (with LIST-EXTENDED,
//!   LIST-STATUS and SPECIAL-USE options), LSUB, NAMESPACE, STATUS,
//!   IDLE, CHECK, CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE, COPY, MOVE, and
//!   QUOTA's GETQUOTA, GETQUOTAROOT and SETQUOTA) and
//!   the message commands (STORE with UNCHANGEDSINCE, FETCH with sections,
//!   partials, BINARY and CHANGEDSINCE/VANISHED, SEARCH with the RFC 9051
//!   keys, MODSEQ and ESEARCH `RETURN` options, APPEND with MULTIAPPEND
//!   and RFC 6855 `UTF8 (~{n})` data),
//!   each with a `UID` form where one exists.
//!
//! - [`Response`]: status responses with response codes, continuation
//!   requests, CAPABILITY, ENABLED, FLAGS, EXISTS, RECENT, EXPUNGE,
//!   VANISHED, LIST/LSUB (with LIST-EXTENDED data), STATUS, QUOTA,
//!   QUOTAROOT, SEARCH and FETCH (flags, UID, dates,
//!   sizes, MODSEQ, ENVELOPE, BODY and BODYSTRUCTURE with extension data
//!   — future `body-extension` data included — and body sections).
//!
//! - ID (RFC 2971) command and response, NAMESPACE (RFC 2342, with
//!   extensions) and ESEARCH (RFC 4731) responses.
//!
//! And for servers: [`server::Session`], the sans-IO server session on the
//! shared session core, with its selected-mailbox [`server::View`]; and
//! pure helpers a server needs: [`mime`] (BODYSTRUCTURE, ENVELOPE and
//! BODY\[section\] bytes from a stored message) and [`search`] (SEARCH
//! evaluation).
//!
//! Parsing does not copy: a [`Command`] or [`Response`] borrows the bytes
//! it was parsed from (`Cow` fields; `into_owned()` keeps it longer), and
//! the [`Framer`] hands out a command that arrived in one read as a slice
//! of that read. Parsing is strict by default (RFC 9051 as written: 8-bit
//! data only inside literals, or as UTF-8 once UTF8=ACCEPT is enabled,
//! RFC 6855); a client may tolerate known server deviations with
//! [`Quirks`] and [`Response::parse_with`]:
//!
//! ```
//! use imap_proto::{Quirks, Response};
//!
//! let wire = b"* SEARCH 2 5 \r\n"; // a trailing space some servers send
//! assert!(Response::parse(wire, false).is_err());
//! let mut quirks = Quirks::default();
//! quirks.trailing_space = true;
//! assert_eq!(Response::parse_with(wire, false, quirks), Ok(Response::Search(vec![2, 5], None)));
//! ```
//!
//! Decoding a command as a server receives it:
//!
//! ```
//! use imap_proto::{Command, CommandBody, Frame, Framer, FramerLimits};
//!
//! let mut framer = Framer::new(FramerLimits::default());
//! let mut input: &[u8] = b"a1 LOGIN {5}\r\nalice \"pass word\"\r\n";
//! let mut frames = Vec::new();
//! while !input.is_empty() {
//!     let (used, frame) = framer.push(input);
//!     input = &input[used..];
//!     frames.extend(frame);
//! }
//! assert_eq!(frames[0], Frame::ContinuationNeeded); // answer "+ go ahead"
//! let Frame::Command(bytes) = &frames[1] else { panic!() };
//! let cmd = Command::parse(bytes, false).unwrap();
//! assert_eq!(cmd.body, CommandBody::Login { username: b"alice"[..].into(), password: b"pass word"[..].into() });
//! ```
//!
//! Encoding a command as a client sends it (the chunks say where to wait
//! for the server's `+`), and a response both ways:
//!
//! ```
//! use imap_proto::{Command, CommandBody, Response, Tag, join};
//!
//! let cmd = Command {
//!     tag: Tag::new("a2").unwrap(),
//!     body: CommandBody::Login { username: b"alice"[..].into(), password: b"p\r\nw"[..].into() },
//! };
//! let chunks = cmd.encode(false, false); // no LITERAL+, no UTF8=ACCEPT
//! assert!(chunks[0].wait_for_continuation);
//! assert_eq!(join(&chunks), b"a2 LOGIN alice {4}\r\np\r\nw\r\n");
//!
//! let wire = b"* 12 FETCH (FLAGS (\\Seen) UID 4827313)\r\n";
//! let resp = Response::parse(wire, false).unwrap();
//! assert!(matches!(resp, Response::Fetch(12, _)));
//! assert_eq!(resp.encode(false), wire);
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod command;
mod core;
mod framing;
mod items;
pub mod mime;
mod response;
pub mod search;
mod seq;
pub mod server;
pub mod sort;
pub mod url;
pub mod utf7;

pub use command::{
    AppendMessage, CatenatePart, Command, CommandBody, CommandError, ListReturn, ListSelect,
    Mailbox, QResync, SearchReturn, SortCriterion, SortKey, StatusItem, StoreOp, ThreadAlgorithm,
    is_idle_done,
};
pub use core::{
    Chunk, Encoder, LiteralMode, SyntaxError, Tag, is_astring_char, is_atom_char, join,
};
pub use framing::{Frame, Framer, FramerLimits};
pub use items::{FetchItem, Flag, MAX_SEARCH_DEPTH, SearchKey, Section, SectionText};
pub use response::{
    Address, BodyExtension, BodyFields, BodyStructure, Code, Envelope, Extension, FetchValue,
    IdField, MAX_BODY_DEPTH, MAX_THREAD_DEPTH, NamespaceEntry, NamespaceExtension, Param, PartKind,
    Quirks, Response, Rfc822Part, StatusKind, Thread, fetch_literal_head,
};
pub use seq::{SeqNumber, SequenceSet};
