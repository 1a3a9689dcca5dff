//! The sending side of SMTP and LMTP as a sans-IO state machine.
//!
//! A [`Session`] is one connection to a server. It reads the greeting,
//! says EHLO (falling back to HELO), and then does what its caller asks:
//! [`Session::start_tls`], [`Session::authenticate`], one
//! [`Session::send`] per transaction (as many as the caller likes on one
//! connection), [`Session::quit`]. The bytes to write and the results come
//! out of [`Session::poll_output`]; the caller feeds in what the server
//! said with [`Session::handle_input`] and drives time with
//! [`Session::handle_timeout`] — the same verbs as every mailkit session
//! ([`session_core::Session`]).
//!
//! A transaction goes: [`Session::send`] with the envelope → (the session
//! sends MAIL, every RCPT and, if pipelining, DATA, and reads every reply
//! of the group) → [`Event::SendBody`] when a recipient was accepted → the
//! body with [`Session::send_body`] and [`Session::finish_body`] (dot
//! stuffing or BDAT chunks are the session's business) →
//! [`Event::Completed`] with one reply per recipient: the refusal of its
//! RCPT, or the reply to the data (in LMTP, its own). One refused
//! recipient never aborts the others.
//!
//! What the server did not offer is never used: SIZE, BODY, DSN's
//! parameters, AUTH=, MT-PRIORITY … are dropped, and what cannot be dropped
//! without changing the message (8-bit content, SMTPUTF8, REQUIRETLS) makes
//! [`Session::send`] fail with a [`SendError`] whose
//! [`SendError::reply`] is what to report to the sender.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use smtp_proto::{Domain, ForwardPath, Host, Mailbox, MailParameters, ReversePath};
//! use smtp_proto::client::{Config, Envelope, Event, Output, Session};
//!
//! let now = Instant::now();
//! let host = Host::Domain(Domain::new("client.example").unwrap());
//! let mut client = Session::new(Arc::new(Config::new(host)), now);
//! let mut wire = Vec::new();
//! let mut results = Vec::new();
//! let mut feed = |client: &mut Session, input: &[u8], wire: &mut Vec<u8>| {
//!     client.handle_input(now, input);
//!     let mut events = Vec::new();
//!     while let Some(out) = client.poll_output() {
//!         match out {
//!             Output::Transmit(b) => wire.extend_from_slice(&b),
//!             Output::Event(e) => events.push(e),
//!             Output::StartTls | Output::Compress | Output::Closed => {}
//!         }
//!     }
//!     events
//! };
//! feed(&mut client, b"220 mx.example.net ESMTP\r\n", &mut wire);
//! let events = feed(&mut client, b"250-mx.example.net\r\n250 PIPELINING\r\n", &mut wire);
//! assert!(matches!(events[..], [Event::Ready]));
//! client.send(now, Envelope {
//!     from: ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap()),
//!     params: MailParameters::default(),
//!     recipients: vec![
//!         ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap()).into(),
//!         ForwardPath::Mailbox(Mailbox::parse("nobody@example.net").unwrap()).into(),
//!     ],
//! }).unwrap();
//! // One group, one set of replies.
//! let events = feed(&mut client, b"250 OK\r\n250 OK\r\n550 No such user\r\n354 Go\r\n", &mut wire);
//! assert!(matches!(events[..], [Event::SendBody]));
//! client.send_body(now, b"Subject: hi\r\n\r\n.Hello\r\n").unwrap();
//! client.finish_body(now).unwrap();
//! for e in feed(&mut client, b"250 Queued\r\n", &mut wire) {
//!     if let Event::Completed(replies) = e { results = replies; }
//! }
//! assert_eq!(results[0].code().get(), 250);
//! assert_eq!(results[1].code().get(), 550);
//! assert_eq!(String::from_utf8(wire).unwrap(),
//!     "EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n\
//!      RCPT TO:<bob@example.net>\r\nRCPT TO:<nobody@example.net>\r\nDATA\r\n\
//!      Subject: hi\r\n\r\n..Hello\r\n.\r\n");
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use sasl::client::ClientExchange;
use session_core::{DataEncoder, deadline_after};

use crate::Parsed;
use crate::address::{ForwardPath, ReversePath};
use crate::command::{Command, InitialResponse, Mechanism as MechanismName};
use crate::ehlo::{EhloError, EhloResponse};
use crate::params::{BodyType, MailParameters, RcptParameters};
use crate::reply::{FixedReply, Reply, ReplyError};
use crate::server::Mode;

mod config;

pub use config::{Capabilities, Config, Limits, Timeouts};
pub use session_core::ApiMisuse;

/// What the session hands to its caller.
pub type Output = session_core::Output<Event>;

/// One recipient of a transaction: the same type the server session hands
/// out, so a relay passes its recipients on as they came. DSN's `NOTIFY`
/// and `ORCPT` are dropped when the next hop lacks DSN.
pub use crate::server::Recipient;

impl From<ForwardPath<'static>> for Recipient {
    fn from(to: ForwardPath<'static>) -> Self {
        Recipient {
            to,
            params: RcptParameters::default(),
        }
    }
}

/// A transaction to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (`<>` for a bounce).
    pub from: ReversePath<'static>,
    /// MAIL parameters: `size` (checked against the server's SIZE),
    /// `body` (the content's type: 8BITMIME or BINARYMIME need the server's
    /// support), `smtputf8`, DSN's `ret` and `envid`, `requiretls` …
    pub params: MailParameters<'static>,
    /// The recipients, in order; results come back in this order.
    pub recipients: Vec<Recipient>,
}

/// Why [`Session::send`] (or a body call) was refused before anything was
/// sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is not ready for this now (not greeted yet, a
    /// transaction or another command in progress, or closed).
    #[error("the session is not ready for this")]
    NotReady,
    /// An envelope without recipients.
    #[error("no recipients")]
    NoRecipients,
    /// The declared size is over the server's SIZE.
    #[error("message of {size} octets is over the server's limit of {limit}")]
    TooLarge {
        /// The declared size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// 8-bit content and the server lacks 8BITMIME: downgrade the message
    /// (see [`crate::downgrade`]) and send it as 7-bit.
    #[error("8-bit message and the server does not offer 8BITMIME")]
    EightBitMime,
    /// Binary content and the server lacks BINARYMIME with CHUNKING.
    #[error("binary message and the server does not offer BINARYMIME and CHUNKING")]
    BinaryMime,
    /// Internationalised addresses or headers and the server lacks
    /// SMTPUTF8; such mail cannot be downgraded.
    #[error("the message needs SMTPUTF8 and the server does not offer it")]
    SmtpUtf8,
    /// REQUIRETLS and the connection is not TLS or the server lacks
    /// REQUIRETLS.
    #[error("the message requires TLS and REQUIRETLS is not available")]
    RequireTls,
}

impl SendError {
    /// The reply to record for the recipients, as if the server had said
    /// it: permanent for everything the message itself causes.
    pub fn reply(&self) -> Reply<'static> {
        match self {
            SendError::NotReady | SendError::NoRecipients => replies::NOT_READY,
            SendError::TooLarge { .. } => replies::TOO_LARGE,
            SendError::EightBitMime | SendError::BinaryMime => replies::CONTENT,
            SendError::SmtpUtf8 => replies::SMTPUTF8,
            SendError::RequireTls => replies::REQUIRETLS,
        }
        .into()
    }
}

/// Why [`Session::authenticate`] was refused before anything was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not ready for a command now.
    #[error("the session is not ready for this")]
    NotReady,
    /// The server does not offer this mechanism.
    #[error("the server does not offer this mechanism")]
    NotOffered,
    /// A plaintext mechanism without TLS ([`Config::allow_plaintext_auth`]).
    #[error("the password would be sent in the clear: start TLS first")]
    NeedsTls,
}

/// Why the connection ended before its time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The greeting was not 220.
    #[error("the server refused the connection: {0}")]
    Greeting(Reply<'static>),
    /// EHLO/LHLO (and HELO) were refused.
    #[error("the server refused EHLO: {0}")]
    Hello(Reply<'static>),
    /// A 421: the server is closing the connection.
    #[error("the server is closing the connection: {0}")]
    ServiceClosing(Reply<'static>),
    /// A reply could not be read.
    #[error("malformed reply: {0}")]
    Malformed(ReplyError),
    /// An EHLO reply whose capabilities could not be read.
    #[error("malformed EHLO reply: {0}")]
    Capabilities(EhloError),
    /// The server spoke without being asked.
    #[error("unexpected reply")]
    Unexpected,
    /// No reply in time.
    #[error("the server did not answer in time")]
    TimedOut,
    /// The server closed the connection with replies outstanding.
    #[error("the server closed the connection")]
    Closed,
}

/// What the server's replies mean for the caller, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server greeted and answered EHLO/LHLO (or HELO): commands can be
    /// given. Again after STARTTLS, with the new capabilities
    /// ([`Session::capabilities`]).
    Ready,
    /// STARTTLS was refused; the session goes on in plaintext (the caller
    /// decides whether that is acceptable).
    StartTlsRefused(Reply<'static>),
    /// The AUTH exchange ended: `Ok` once the server accepted, or its
    /// refusal.
    Authenticated(Result<(), Reply<'static>>),
    /// At least one recipient was accepted: write the body with
    /// [`Session::send_body`] and [`Session::finish_body`].
    SendBody,
    /// The transaction is over: one reply per recipient, in the envelope's
    /// order (the refusal of its RCPT, or the reply to the data). A
    /// connection that failed mid-transaction gives a 4.4.2 reply to every
    /// recipient without one; a message the server may have received then
    /// can arrive twice, never not at all.
    Completed(Vec<Reply<'static>>),
    /// The connection failed; [`Output::Closed`] follows.
    Failed(ClientError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Rset,
    Mail,
    Rcpt(usize),
    Data,
    /// The `.` sent after a pipelined DATA got 354 with no recipient.
    Dot,
    Bdat,
    /// The reply to the end of data, for every accepted recipient (SMTP).
    FinalAll,
    /// One recipient's reply to the end of data (LMTP).
    Final(usize),
    Quit,
}

impl Expect {
    /// Commands that RFC 2920 lets others follow before their reply.
    fn pipelinable(self) -> bool {
        matches!(self, Expect::Rset | Expect::Mail | Expect::Rcpt(_))
    }

    fn envelope(self) -> bool {
        matches!(
            self,
            Expect::Rset | Expect::Mail | Expect::Rcpt(_) | Expect::Data
        )
    }
}

#[derive(Debug)]
struct InFlight {
    expect: Expect,
    deadline: Instant,
    len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnPhase {
    Envelope,
    Body,
    Ending,
}

#[derive(Debug)]
struct Txn {
    phase: TxnPhase,
    mail: Option<Reply<'static>>,
    rcpt: Vec<Option<Reply<'static>>>,
    data: Option<Reply<'static>>,
    data_sent: bool,
    finals: Vec<Option<Reply<'static>>>,
    bdat_failure: Option<Reply<'static>>,
    bdat: bool,
    bdat_out: usize,
    pending: BytesMut,
    encoder: DataEncoder,
}

impl Txn {
    fn accepted(&self) -> impl Iterator<Item = usize> + '_ {
        self.rcpt
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.code().is_positive()))
            .map(|(i, _)| i)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Hello,
    Ready,
    Busy,
    AwaitTls,
    Quitting,
    Closed,
}

/// One SMTP or LMTP client connection.
pub struct Session {
    config: Arc<Config>,
    phase: Phase,
    caps: Capabilities,
    tls: bool,
    rx: BytesMut,
    out: BytesMut,
    queue: VecDeque<Output>,
    to_send: VecDeque<(Expect, Bytes, Duration)>,
    inflight: VecDeque<InFlight>,
    inflight_bytes: usize,
    txn: Option<Txn>,
    auth: Option<Box<ClientExchange>>,
    need_rset: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("client::Session")
            .field("phase", &self.phase)
            .field("tls", &self.tls)
            .field("in_flight", &self.inflight.len())
            .finish_non_exhaustive()
    }
}

/// The replies the session makes up for what the server never said.
pub mod replies {
    use crate::reply::FixedReply;

    /// A reply that never came: the connection failed first.
    pub const LOST: FixedReply = FixedReply::new(
        451,
        Some((4, 4, 2)),
        "connection lost before the server replied",
    );
    /// A reply that never came in time.
    pub const TIMED_OUT: FixedReply =
        FixedReply::new(451, Some((4, 4, 2)), "timed out waiting for the server");
    /// The server closed the connection.
    pub const CLOSED: FixedReply =
        FixedReply::new(451, Some((4, 4, 2)), "connection closed by the server");
    /// The caller quit with the transaction unfinished.
    pub const QUIT: FixedReply =
        FixedReply::new(451, Some((4, 4, 2)), "transaction abandoned by the client");
    /// SCRAM: the server's final message did not prove it.
    pub const NOT_PROVEN: FixedReply = FixedReply::new(
        535,
        Some((5, 7, 8)),
        "the server did not prove it knows the password",
    );
    /// [`super::SendError::NotReady`].
    pub const NOT_READY: FixedReply = FixedReply::new(
        451,
        Some((4, 3, 0)),
        "local error: the session was not ready",
    );
    /// [`super::SendError::TooLarge`].
    pub const TOO_LARGE: FixedReply =
        FixedReply::new(552, Some((5, 3, 4)), "message too big for the next hop");
    /// [`super::SendError::EightBitMime`] and [`super::SendError::BinaryMime`].
    pub const CONTENT: FixedReply = FixedReply::new(
        554,
        Some((5, 6, 3)),
        "the next hop cannot take this message's content",
    );
    /// [`super::SendError::SmtpUtf8`].
    pub const SMTPUTF8: FixedReply = FixedReply::new(
        553,
        Some((5, 6, 7)),
        "the next hop does not support SMTPUTF8",
    );
    /// [`super::SendError::RequireTls`].
    pub const REQUIRETLS: FixedReply = FixedReply::new(
        550,
        Some((5, 7, 30)),
        "REQUIRETLS not supported by the next hop",
    );
}

impl Session {
    /// A connection that waits for the server's greeting.
    pub fn new(config: Arc<Config>, now: Instant) -> Session {
        let greeting_deadline = deadline_after(now, config.timeouts.greeting);
        let mut s = Session {
            config,
            phase: Phase::Greeting,
            caps: Capabilities::default(),
            tls: false,
            rx: BytesMut::new(),
            out: BytesMut::new(),
            queue: VecDeque::new(),
            to_send: VecDeque::new(),
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            txn: None,
            auth: None,
            need_rset: false,
        };
        s.inflight.push_back(InFlight {
            expect: Expect::Greeting,
            deadline: greeting_deadline,
            len: 0,
        });
        s
    }

    /// A connection that is TLS from its first byte (SMTPS, port 465):
    /// the handshake is done before the greeting.
    pub fn new_tls(config: Arc<Config>, now: Instant) -> Session {
        let mut s = Session::new(config, now);
        s.tls = true;
        s
    }

    /// What the server offered in its last EHLO.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Whether the connection is TLS (after a completed STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether a command can be given: greeted, nothing in progress.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the session takes more of the body now. With BDAT it waits
    /// for replies once [`Limits::bdat_in_flight`] chunks are unanswered
    /// (one without PIPELINING).
    pub fn wants_body(&self) -> bool {
        match &self.txn {
            Some(t) if t.phase == TxnPhase::Body => !t.bdat || t.bdat_out < self.bdat_window(),
            _ => false,
        }
    }

    fn bdat_window(&self) -> usize {
        if self.pipelining() {
            self.config.limits.bdat_in_flight.max(1)
        } else {
            1
        }
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining && self.caps.pipelining
    }

    fn lmtp(&self) -> bool {
        self.config.mode == Mode::Lmtp
    }

    // ------------------------------------------------------------ input

    /// Bytes the server sent.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if matches!(self.phase, Phase::Closed | Phase::AwaitTls) {
            return;
        }
        let had_line = memchr::memchr(b'\n', bytes).is_some();
        self.rx.extend_from_slice(bytes);
        if !had_line {
            // No new line end: no new reply, and the limit still holds.
            if self.rx.len() > self.config.limits.reply.line
                && memchr::memchr(b'\n', &self.rx).is_none()
            {
                let limit = self.config.limits.reply.line;
                self.fail(ClientError::Malformed(ReplyError::LineTooLong { limit }));
            }
            return;
        }
        loop {
            if matches!(self.phase, Phase::Closed | Phase::AwaitTls) {
                self.rx.clear();
                return;
            }
            let parsed = match Reply::parse_with(&self.rx, &self.config.limits.reply) {
                Ok(Parsed::Complete { value, consumed }) => {
                    Ok(Some((value.into_owned(), consumed)))
                }
                Ok(Parsed::Incomplete) => Ok(None),
                Err(e) => Err(e),
            };
            match parsed {
                Ok(Some((reply, used))) => {
                    self.rx.advance(used);
                    self.on_reply(now, reply);
                    self.flush(now);
                }
                Ok(None) => break,
                Err(e) => {
                    self.fail(ClientError::Malformed(e));
                    return;
                }
            }
        }
        if self.rx.is_empty() {
            self.rx = BytesMut::new();
        }
        self.flush(now);
    }

    /// The server closed its side.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::Quitting => self.close(),
            Phase::Ready if self.inflight.is_empty() => {
                // An idle connection the server dropped: nothing was lost.
                self.close();
            }
            _ => self.fail(ClientError::Closed),
        }
    }

    /// Time passed; call at [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.inflight.front().is_some_and(|f| now >= f.deadline) {
            self.fail(ClientError::TimedOut);
        }
    }

    /// The next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.queue.is_empty() && !self.out.is_empty() {
            return Some(Output::Transmit(self.out.split().freeze()));
        }
        self.queue.pop_front()
    }

    /// When [`Session::handle_timeout`] should be called: the deadline of
    /// the oldest reply awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        self.inflight.front().map(|f| f.deadline)
    }

    /// Whether to read from the server: false once closed and while a TLS
    /// handshake is due.
    pub fn wants_input(&self) -> bool {
        !matches!(self.phase, Phase::Closed | Phase::AwaitTls)
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The handshake after [`Output::StartTls`] completed: the session says
    /// EHLO again and forgets the old capabilities.
    pub fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        if self.phase != Phase::AwaitTls {
            return Err(ApiMisuse::NoStartTls);
        }
        self.tls = true;
        self.caps = Capabilities::default();
        self.rx.clear();
        self.phase = Phase::Hello;
        self.hello(now);
        Ok(())
    }

    // --------------------------------------------------------- commands

    /// Asks for TLS (RFC 3207). On 220 comes [`Output::StartTls`]: run the
    /// handshake and call [`Session::tls_established`]; on a refusal,
    /// [`Event::StartTlsRefused`].
    pub fn start_tls(&mut self, now: Instant) -> Result<(), SendError> {
        if self.phase != Phase::Ready || self.tls {
            return Err(SendError::NotReady);
        }
        self.phase = Phase::Busy;
        self.command(now, Expect::StartTls, &Command::StartTls);
        Ok(())
    }

    /// Authenticates with a SASL exchange (RFC 4954), with the initial
    /// response on the AUTH line when the mechanism speaks first. Ends in
    /// [`Event::Authenticated`].
    pub fn authenticate(
        &mut self,
        now: Instant,
        mut exchange: ClientExchange,
    ) -> Result<(), AuthError> {
        if self.phase != Phase::Ready {
            return Err(AuthError::NotReady);
        }
        let mech = exchange.mechanism();
        if !self.caps.offers(mech) {
            return Err(AuthError::NotOffered);
        }
        if mech.is_plaintext() && !self.tls && !self.config.allow_plaintext_auth {
            return Err(AuthError::NeedsTls);
        }
        let initial = exchange.initial_response().map(|ir| {
            if ir.is_empty() {
                InitialResponse::Empty
            } else {
                InitialResponse::base64(sasl::encode(&ir)).unwrap_or(InitialResponse::Empty)
            }
        });
        let Some(mechanism) = MechanismName::new(mech.name()) else {
            return Err(AuthError::NotOffered);
        };
        self.phase = Phase::Busy;
        self.auth = Some(Box::new(exchange));
        self.command(
            now,
            Expect::Auth,
            &Command::Auth {
                mechanism,
                initial_response: initial,
            },
        );
        Ok(())
    }

    /// Starts a transaction. Everything the server cannot take is checked
    /// first; nothing is sent on an error.
    pub fn send(&mut self, now: Instant, envelope: Envelope) -> Result<(), SendError> {
        if self.phase != Phase::Ready {
            return Err(SendError::NotReady);
        }
        if envelope.recipients.is_empty() {
            return Err(SendError::NoRecipients);
        }
        let caps = &self.caps;
        let mut p = envelope.params;
        let bdat = self.config.chunking && caps.chunking;
        if let (Some(size), Some(limit)) = (p.size, caps.max_size())
            && size > limit
        {
            return Err(SendError::TooLarge { size, limit });
        }
        if caps.size.is_none() {
            p.size = None;
        }
        match p.body {
            Some(BodyType::EightBitMime) if !caps.eight_bit_mime => {
                return Err(SendError::EightBitMime);
            }
            Some(BodyType::BinaryMime) if !(caps.binary_mime && bdat) => {
                return Err(SendError::BinaryMime);
            }
            Some(BodyType::SevenBit) if !caps.eight_bit_mime => p.body = None,
            _ => {}
        }
        let ascii = envelope.from.is_ascii() && envelope.recipients.iter().all(|r| r.to.is_ascii());
        if !ascii {
            p.smtputf8 = true;
        }
        if p.smtputf8 && !caps.smtputf8 {
            return Err(SendError::SmtpUtf8);
        }
        if p.requiretls && !(self.tls && caps.requiretls) {
            return Err(SendError::RequireTls);
        }
        if !caps.dsn {
            p.ret = None;
            p.envid = None;
        }
        if caps.auth.is_empty() {
            p.auth = None;
        }
        if !caps.mt_priority {
            p.mt_priority = None;
        }
        if !caps.deliver_by {
            p.by = None;
        }
        if !caps.future_release {
            p.hold = None;
        }
        let dsn = caps.dsn;
        let n = envelope.recipients.len();
        let pipelined_data = self.pipelining() && !bdat;
        let txn = Txn {
            phase: TxnPhase::Envelope,
            mail: None,
            rcpt: vec![None; n],
            data: None,
            data_sent: pipelined_data,
            finals: vec![None; n],
            bdat_failure: None,
            bdat,
            bdat_out: 0,
            pending: BytesMut::new(),
            encoder: DataEncoder::new(),
        };
        self.phase = Phase::Busy;
        self.txn = Some(txn);
        if std::mem::take(&mut self.need_rset) {
            self.queue_command(Expect::Rset, &Command::Rset, self.config.timeouts.command);
        }
        self.queue_command(
            Expect::Mail,
            &Command::Mail {
                from: envelope.from,
                params: p,
            },
            self.config.timeouts.mail,
        );
        for (i, mut r) in envelope.recipients.into_iter().enumerate() {
            if !dsn {
                r.params.notify = None;
                r.params.orcpt = None;
            }
            self.queue_command(
                Expect::Rcpt(i),
                &Command::Rcpt {
                    to: r.to,
                    params: r.params,
                },
                self.config.timeouts.rcpt,
            );
        }
        if pipelined_data {
            self.queue_command(Expect::Data, &Command::Data, self.config.timeouts.data_init);
        }
        self.flush(now);
        Ok(())
    }

    /// A piece of the message, after [`Event::SendBody`], while
    /// [`Session::wants_body`]. Line ends should be CRLF (a bare LF or CR
    /// becomes CRLF with DATA; BDAT sends the octets as they are).
    pub fn send_body(&mut self, now: Instant, chunk: &[u8]) -> Result<(), SendError> {
        if !self.wants_body() {
            return Err(SendError::NotReady);
        }
        const CHUNK: usize = 256 * 1024;
        let timeout = self.config.timeouts.data_block;
        let Some(t) = self.txn.as_mut() else {
            return Err(SendError::NotReady);
        };
        if !t.bdat {
            t.encoder.encode(chunk, &mut self.out);
            return Ok(());
        }
        t.pending.extend_from_slice(chunk);
        if t.pending.len() >= CHUNK {
            let data = t.pending.split();
            t.bdat_out += 1;
            self.bdat(now, &data, false, timeout);
        }
        Ok(())
    }

    /// Ends the body; [`Event::Completed`] follows with the replies.
    pub fn finish_body(&mut self, now: Instant) -> Result<(), SendError> {
        let in_body = self.txn.as_ref().is_some_and(|t| t.phase == TxnPhase::Body);
        if !in_body {
            return Err(SendError::NotReady);
        }
        let lmtp = self.lmtp();
        let timeout = self.config.timeouts.data_end;
        let Some(t) = self.txn.as_mut() else {
            return Err(SendError::NotReady);
        };
        t.phase = TxnPhase::Ending;
        let accepted: Vec<usize> = t.accepted().collect();
        let bdat = t.bdat;
        if bdat {
            let data = t.pending.split();
            self.bdat(now, &data, true, timeout);
            // The LAST chunk's reply is the first final reply.
            self.inflight.pop_back();
        } else {
            t.encoder.finish(&mut self.out);
        }
        let deadline = deadline_after(now, timeout);
        if lmtp {
            for i in accepted {
                self.inflight.push_back(InFlight {
                    expect: Expect::Final(i),
                    deadline,
                    len: 0,
                });
            }
        } else {
            self.inflight.push_back(InFlight {
                expect: Expect::FinalAll,
                deadline,
                len: 0,
            });
        }
        Ok(())
    }

    fn bdat(&mut self, now: Instant, data: &[u8], last: bool, timeout: Duration) {
        Command::Bdat {
            size: data.len() as u64,
            last,
        }
        .encode(&mut self.out);
        self.out.extend_from_slice(data);
        self.inflight.push_back(InFlight {
            expect: Expect::Bdat,
            deadline: deadline_after(now, timeout),
            len: 0,
        });
    }

    /// Ends the connection politely: QUIT, then [`Output::Closed`] on the
    /// reply. A transaction in progress ends first, with 4.4.2 for the
    /// recipients that have no reply.
    pub fn quit(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closed | Phase::Quitting) {
            return;
        }
        self.abandon_txn(replies::QUIT);
        self.to_send.clear();
        if self.phase == Phase::AwaitTls {
            self.close();
            return;
        }
        self.phase = Phase::Quitting;
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.command(now, Expect::Quit, &Command::Quit);
    }

    // -------------------------------------------------------- internals

    fn queue_command(&mut self, expect: Expect, cmd: &Command<'_>, timeout: Duration) {
        let mut b = BytesMut::new();
        cmd.encode(&mut b);
        self.to_send.push_back((expect, b.freeze(), timeout));
    }

    fn command(&mut self, now: Instant, expect: Expect, cmd: &Command<'_>) {
        let timeout = match expect {
            Expect::Mail => self.config.timeouts.mail,
            Expect::Rcpt(_) => self.config.timeouts.rcpt,
            Expect::Data => self.config.timeouts.data_init,
            _ => self.config.timeouts.command,
        };
        self.queue_command(expect, cmd, timeout);
        self.flush(now);
    }

    /// Sends queued commands as far as pipelining and its window allow.
    fn flush(&mut self, now: Instant) {
        while let Some((expect, bytes, _)) = self.to_send.front() {
            let may = self.inflight.is_empty()
                || (self.pipelining()
                    && self.inflight.iter().all(|f| f.expect.pipelinable())
                    && (expect.pipelinable() || *expect == Expect::Data)
                    && self.inflight_bytes + bytes.len() <= self.config.limits.pipeline_window);
            if !may {
                return;
            }
            let Some((expect, bytes, timeout)) = self.to_send.pop_front() else {
                return;
            };
            self.out.extend_from_slice(&bytes);
            self.inflight_bytes += bytes.len();
            self.inflight.push_back(InFlight {
                expect,
                deadline: deadline_after(now, timeout),
                len: bytes.len(),
            });
        }
    }

    fn event(&mut self, e: Event) {
        if !self.out.is_empty() {
            self.queue
                .push_back(Output::Transmit(self.out.split().freeze()));
        }
        self.queue.push_back(Output::Event(e));
    }

    fn close(&mut self) {
        if !self.out.is_empty() {
            self.queue
                .push_back(Output::Transmit(self.out.split().freeze()));
        }
        self.queue.push_back(Output::Closed);
        self.phase = Phase::Closed;
        self.inflight.clear();
        self.to_send.clear();
        self.rx = BytesMut::new();
        self.auth = None;
    }

    /// Ends the connection on an error: the transaction first, then the
    /// failure, then the close.
    fn fail(&mut self, err: ClientError) {
        if self.phase == Phase::Closed {
            return;
        }
        self.abandon_txn(match err {
            ClientError::TimedOut => replies::TIMED_OUT,
            ClientError::ServiceClosing(_) | ClientError::Closed => replies::CLOSED,
            _ => replies::LOST,
        });
        self.auth = None;
        self.event(Event::Failed(err));
        self.close();
    }

    /// Completes a transaction in progress with 4.4.2 for every recipient
    /// that has no reply yet.
    fn abandon_txn(&mut self, why: FixedReply) {
        if self.txn.is_some() {
            self.complete(Some(why.into()));
        }
    }

    fn hello(&mut self, now: Instant) {
        let host = self.config.hostname.clone();
        let cmd = if self.lmtp() {
            Command::Lhlo { host }
        } else {
            Command::Ehlo { host }
        };
        self.command(now, Expect::Ehlo, &cmd);
    }

    fn on_reply(&mut self, now: Instant, reply: Reply<'static>) {
        let Some(f) = self.inflight.pop_front() else {
            if reply.code().get() == 421 {
                self.fail(ClientError::ServiceClosing(reply));
            } else {
                self.fail(ClientError::Unexpected);
            }
            return;
        };
        self.inflight_bytes -= f.len;
        let code = reply.code().get();
        if code == 421 && f.expect != Expect::Quit {
            self.fail(ClientError::ServiceClosing(reply));
            return;
        }
        match f.expect {
            Expect::Greeting => {
                if code == 220 {
                    self.phase = Phase::Hello;
                    self.hello(now);
                } else {
                    // RFC 5321 §3.1: after a 554 greeting the client sends
                    // QUIT.
                    Command::Quit.encode(&mut self.out);
                    self.fail(ClientError::Greeting(reply));
                }
            }
            Expect::Ehlo => {
                if code == 250 {
                    match EhloResponse::from_reply(&reply) {
                        Ok(ehlo) => {
                            self.caps = Capabilities::from_ehlo(&ehlo);
                            self.phase = Phase::Ready;
                            self.event(Event::Ready);
                        }
                        Err(e) => self.fail(ClientError::Capabilities(e)),
                    }
                } else if reply.code().is_permanent() && !self.lmtp() {
                    let host = self.config.hostname.clone();
                    self.command(now, Expect::Helo, &Command::Helo { host });
                } else {
                    self.fail(ClientError::Hello(reply));
                }
            }
            Expect::Helo => {
                if code == 250 {
                    self.caps = Capabilities {
                        server_name: reply
                            .lines()
                            .first()
                            .and_then(|l| l.split(' ').next())
                            .unwrap_or("")
                            .to_owned(),
                        ..Capabilities::default()
                    };
                    self.phase = Phase::Ready;
                    self.event(Event::Ready);
                } else {
                    self.fail(ClientError::Hello(reply));
                }
            }
            Expect::StartTls => {
                if code == 220 {
                    // A clean cut: whatever came after the reply is not
                    // trusted.
                    self.rx.clear();
                    self.phase = Phase::AwaitTls;
                    if !self.out.is_empty() {
                        self.queue
                            .push_back(Output::Transmit(self.out.split().freeze()));
                    }
                    self.queue.push_back(Output::StartTls);
                } else {
                    self.phase = Phase::Ready;
                    self.event(Event::StartTlsRefused(reply));
                }
            }
            Expect::Auth => self.on_auth(now, reply),
            Expect::Rset => {}
            Expect::Mail => {
                if let Some(t) = self.txn.as_mut() {
                    t.mail = Some(reply);
                }
            }
            Expect::Rcpt(i) => {
                if let Some(slot) = self.txn.as_mut().and_then(|t| t.rcpt.get_mut(i)) {
                    *slot = Some(reply);
                }
            }
            Expect::Data => {
                if let Some(t) = self.txn.as_mut() {
                    t.data = Some(reply);
                }
            }
            Expect::Dot => {}
            Expect::Bdat => {
                if let Some(t) = self.txn.as_mut() {
                    t.bdat_out = t.bdat_out.saturating_sub(1);
                    if !reply.code().is_positive() && t.bdat_failure.is_none() {
                        t.bdat_failure = Some(reply);
                    }
                }
            }
            Expect::FinalAll => {
                if let Some(t) = self.txn.as_mut() {
                    let accepted: Vec<usize> = t.accepted().collect();
                    for i in accepted {
                        t.finals[i] = Some(reply.clone());
                    }
                }
            }
            Expect::Final(i) => {
                if let Some(slot) = self.txn.as_mut().and_then(|t| t.finals.get_mut(i)) {
                    *slot = Some(reply);
                }
            }
            Expect::Quit => {
                self.close();
                return;
            }
        }
        self.advance(now);
    }

    fn on_auth(&mut self, now: Instant, reply: Reply<'static>) {
        let code = reply.code().get();
        if code == 334 {
            let text = reply.lines().first().map(|l| l.trim()).unwrap_or("");
            let answer = match (sasl::decode_base64(text), self.auth.as_mut()) {
                (Ok(challenge), Some(x)) => x.respond(&challenge).ok(),
                _ => None,
            };
            let line = match answer {
                Some(a) => sasl::encode(&a),
                // Cancel (RFC 4954 §4): the server answers 501.
                None => {
                    self.auth = None;
                    "*".to_owned()
                }
            };
            self.out.extend_from_slice(line.as_bytes());
            self.out.extend_from_slice(b"\r\n");
            self.inflight.push_back(InFlight {
                expect: Expect::Auth,
                deadline: deadline_after(now, self.config.timeouts.command),
                len: 0,
            });
            return;
        }
        self.phase = Phase::Ready;
        let exchange = self.auth.take();
        if code == 235 {
            let proven = match exchange {
                Some(mut x) if x.mechanism() == sasl::Mechanism::ScramSha256 => {
                    if !x.is_done() {
                        // Additional data with 235 (RFC 4954 §4).
                        let text = reply.lines().first().map(|l| l.trim()).unwrap_or("");
                        if let Ok(d) = sasl::decode_base64(text) {
                            let _ = x.respond(&d);
                        }
                    }
                    x.is_done()
                }
                Some(_) => true,
                None => false,
            };
            if proven {
                self.event(Event::Authenticated(Ok(())));
            } else {
                self.event(Event::Authenticated(Err(replies::NOT_PROVEN.into())));
            }
        } else {
            self.event(Event::Authenticated(Err(reply)));
        }
    }

    /// Moves a transaction on once the replies it waits for are in.
    fn advance(&mut self, now: Instant) {
        let Some(t) = self.txn.as_ref() else {
            return;
        };
        let waiting_envelope = self.inflight.iter().any(|f| f.expect.envelope())
            || self.to_send.iter().any(|c| c.0.envelope());
        match t.phase {
            TxnPhase::Envelope if !waiting_envelope => {
                let mail_ok = t.mail.as_ref().is_some_and(|m| m.code().is_positive());
                let accepted = t.accepted().count();
                if !mail_ok {
                    // Nothing of the transaction stands on the server.
                    self.complete(None);
                    return;
                }
                if accepted == 0 {
                    if t.data.as_ref().is_some_and(|d| d.code().get() == 354) {
                        // RFC 2920 §3.1: a 354 with no recipient gets an
                        // empty message, which the server must refuse.
                        self.out.extend_from_slice(b".\r\n");
                        self.inflight.push_back(InFlight {
                            expect: Expect::Dot,
                            deadline: deadline_after(now, self.config.timeouts.data_end),
                            len: 0,
                        });
                    }
                    self.need_rset = true;
                    self.complete(None);
                    return;
                }
                if t.bdat {
                    self.start_body();
                } else if !t.data_sent {
                    if let Some(t) = self.txn.as_mut() {
                        t.data_sent = true;
                    }
                    self.command(now, Expect::Data, &Command::Data);
                } else if t.data.as_ref().is_some_and(|d| d.code().get() == 354) {
                    self.start_body();
                } else {
                    self.need_rset = true;
                    self.complete(None);
                }
            }
            TxnPhase::Ending => {
                let waiting = self.inflight.iter().any(|f| {
                    matches!(f.expect, Expect::Bdat | Expect::FinalAll | Expect::Final(_))
                });
                if !waiting {
                    self.complete(None);
                }
            }
            _ => {}
        }
    }

    fn start_body(&mut self) {
        if let Some(t) = self.txn.as_mut() {
            t.phase = TxnPhase::Body;
        }
        self.event(Event::SendBody);
    }

    /// Ends the transaction with its replies; `lost` stands in for any
    /// reply that never came.
    fn complete(&mut self, lost: Option<Reply<'static>>) {
        let Some(t) = self.txn.take() else {
            return;
        };
        let lost = lost.unwrap_or_else(|| replies::LOST.into());
        let mail_refused = t.mail.as_ref().filter(|m| !m.code().is_positive());
        let data_refused = t.data.as_ref().filter(|d| d.code().get() != 354);
        let replies = t
            .rcpt
            .iter()
            .zip(&t.finals)
            .map(|(rcpt, fin)| match (mail_refused, rcpt) {
                (Some(m), None) => m.clone(),
                (Some(m), Some(r)) if r.code().get() == 503 => m.clone(),
                (_, Some(r)) if !r.code().is_positive() => r.clone(),
                (_, None) => lost.clone(),
                (_, Some(_)) => match (&t.bdat_failure, data_refused, fin) {
                    (Some(f), _, _) => f.clone(),
                    (None, Some(d), _) => d.clone(),
                    (None, None, Some(f)) => f.clone(),
                    (None, None, None) => lost.clone(),
                },
            })
            .collect();
        // A transaction the server did not finish leaves state there.
        if t.phase != TxnPhase::Ending || t.bdat_failure.is_some() {
            self.need_rset =
                self.need_rset || t.mail.as_ref().is_some_and(|m| m.code().is_positive());
        }
        if self.phase == Phase::Busy {
            self.phase = Phase::Ready;
        }
        self.event(Event::Completed(replies));
    }
}

session_core::forward_session!(Session, Event);
