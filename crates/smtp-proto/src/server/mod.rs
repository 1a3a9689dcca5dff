//! The receiving side of SMTP, submission and LMTP as a sans-IO state
//! machine.
//!
//! A [`Session`] is one connection. The caller feeds it what the socket
//! read ([`Session::handle_input`]), the end of the stream
//! ([`Session::handle_eof`]) and the passing of time
//! ([`Session::handle_timeout`]); after each call it drains
//! [`Session::poll_output`] — bytes to write and events to act on — and
//! then reads [`Session::poll_timeout`].
//!
//! Decisions (accept this sender? this recipient? these credentials? is the
//! message safely stored?) arrive as events carrying a [`Token`], answered
//! with [`Session::accept`] or [`Session::reject`]. While one is pending,
//! later pipelined commands wait, so replies stay in order. Replies to a
//! pipelined batch are handed out as one [`Output::Transmit`] once the
//! batch is processed (RFC 2920).
//!
//! A decision cannot be lost: an answer that does not fit gives the token
//! back in its [`AnswerError`], and a decision left pending past
//! [`Timeouts::decision`] is answered by the session itself (451 4.3.0, or
//! 454 4.7.0 for AUTH) at the [`Session::poll_timeout`] instant.
//!
//! The session implements [`session_core::Session`], the trait every mailkit
//! session shares, so one adapter drives it, the POP3 sessions and the rest.
//!
//! The session writes every syntax and sequencing error itself (500, 501,
//! 503, 555, 421 …); the application only ever chooses replies to its own
//! decisions.
//!
//! # The run loop, one whole transaction
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use smtp_proto::Domain;
//! use smtp_proto::server::{Config, Event, Output, Session};
//!
//! let config = Arc::new(Config::new(Domain::new("mx.example.org").unwrap()));
//! let now = Instant::now();
//! let mut session = Session::new(config, now, [7; 16]); // entropy: use a CSPRNG
//!
//! // What a client sends, as the socket might deliver it.
//! let reads: [&[u8]; 4] = [
//!     b"EHLO client.example\r\n",
//!     b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
//!     b"Subject: hi\r\n\r\nHello Bob\r\n.\r\n",
//!     b"QUIT\r\n",
//! ];
//! let mut written = Vec::new();
//! let mut message = Vec::new();
//! let mut closed = false;
//! for read in reads {
//!     session.handle_input(now, read);
//!     // After every handle_* call or decision: drain poll_output.
//!     while let Some(output) = session.poll_output() {
//!         match output {
//!             Output::Transmit(bytes) => written.extend_from_slice(&bytes),
//!             Output::Event(Event::Mail(m)) => session.accept(m.token).unwrap(),
//!             Output::Event(Event::Rcpt(r)) => session.accept(r.token).unwrap(),
//!             Output::Event(Event::MessageData(chunk)) => message.extend_from_slice(&chunk),
//!             // Store the message durably before accepting it.
//!             Output::Event(Event::Message(m)) => session.accept(m.token).unwrap(),
//!             Output::Closed => closed = true,
//!             // Any decision not handled above: refuse it, never drop it.
//!             Output::Event(other) => {
//!                 if let Some(token) = other.into_token() {
//!                     session.reject(token, smtp_proto::replies::LOCAL_ERROR).unwrap();
//!                 }
//!             }
//!             Output::StartTls | Output::Compress => unreachable!("STARTTLS is not sent here"),
//!         }
//!     }
//!     // Then sleep until session.poll_timeout() or the next read.
//! }
//! assert_eq!(message, b"Subject: hi\r\n\r\nHello Bob\r\n");
//! let written = String::from_utf8(written).unwrap();
//! assert!(written.starts_with("220 mx.example.org ESMTP mailkit\r\n250-mx.example.org\r\n"));
//! assert!(written.ends_with("354 Start mail input; end with <CRLF>.<CRLF>\r\n\
//!                            250 2.0.0 Message accepted\r\n\
//!                            221 2.0.0 mx.example.org closing connection\r\n"));
//! assert!(closed);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use sasl::server::ServerExchange;
use sasl::{Identity, ScramCredentials};
use session_core::{Decisions, Inbox, LineFramer};

use crate::address::{Host, ReversePath};
use crate::bdat::BdatDecoder;
use crate::params::MailParameters;
use crate::replies;
use crate::reply::{FixedReply, Reply};
use session_core::DataDecoder;

mod auth;
mod commands;
mod config;
mod events;
mod run;
mod trace;

pub use config::{Config, Extensions, Limits, Mode, Timeouts};
pub use events::{
    AuthCheck, AuthRequest, Event, MailRequest, MessageRequest, RcptRequest, Recipient, ScramLookup,
};
pub use session_core::{AnswerError, ApiMisuse, Token};
pub use trace::TraceInfo;

/// What the session hands to its caller: bytes to write, an [`Event`], or
/// the transport steps [`Output::StartTls`] and [`Output::Closed`].
pub type Output = session_core::Output<Event>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeloKind {
    Helo,
    Ehlo,
    Lhlo,
}

#[derive(Debug)]
struct Transaction {
    from: ReversePath<'static>,
    params: MailParameters<'static>,
    rcpts: Vec<Recipient>,
    size: u64,
    /// BDAT chunks were accepted into this transaction.
    bdat_started: bool,
    /// A BDAT chunk failed: further chunks are refused until RSET.
    bdat_failed: bool,
}

#[derive(Debug)]
enum BdatMode {
    /// Deliver the chunk's bytes.
    Accept,
    /// Drop them, then send this reply.
    Refuse(FixedReply),
}

#[derive(Debug)]
enum Phase {
    Command,
    AuthResponse(Box<ServerExchange>),
    Data(DataDecoder),
    Bdat {
        decoder: BdatDecoder,
        size: u64,
        last: bool,
        mode: BdatMode,
    },
    AwaitTls,
    Closed,
}

#[derive(Debug)]
enum Pending {
    Mail(Box<(ReversePath<'static>, MailParameters<'static>)>),
    Rcpt(Recipient),
    Auth(Identity),
    Scram(Box<ServerExchange>),
    /// The message; the number of replies it needs (LMTP: one per
    /// recipient).
    Message(usize),
}

/// One SMTP/LMTP server connection. See the [module docs](self).
pub struct Session {
    config: Arc<Config>,
    phase: Phase,
    framer: LineFramer,
    inbox: Inbox,
    out: BytesMut,
    queue: VecDeque<Output>,
    decisions: Decisions<Pending>,
    nonces: u64,
    helo: Option<(HeloKind, Host<'static>)>,
    transaction: Option<Box<Transaction>>,
    /// Whether the message awaiting its verdict was SMTPUTF8.
    message_smtputf8: bool,
    identity: Option<Identity>,
    tls: bool,
    errors: u32,
    auth_failures: u32,
    entropy: [u8; 16],
    now: Instant,
    deadline: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("tls", &self.tls)
            .field(
                "authenticated",
                &self.identity.as_ref().map(|i| &i.username),
            )
            .field("pending", &self.decisions.is_pending())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session; the 220 greeting is queued at once. `entropy` (16
    /// random bytes from a CSPRNG) seeds the SASL nonces of this session.
    pub fn new(config: Arc<Config>, now: Instant, entropy: [u8; 16]) -> Session {
        let tls = config.implicit_tls;
        let deadline = session_core::deadline_after(now, config.timeouts.command);
        let framer = LineFramer::new(config.limits.command_line, config.line_ending);
        let inbox = Inbox::new(config.limits.max_buffered_input);
        let mut s = Session {
            config,
            phase: Phase::Command,
            framer,
            inbox,
            out: BytesMut::new(),
            queue: VecDeque::new(),
            decisions: Decisions::new(u64::from_le_bytes([
                entropy[8],
                entropy[9],
                entropy[10],
                entropy[11],
                entropy[12],
                entropy[13],
                entropy[14],
                entropy[15],
            ])),
            nonces: 0,
            helo: None,
            transaction: None,
            message_smtputf8: false,
            identity: None,
            tls,
            errors: 0,
            auth_failures: 0,
            entropy,
            now,
            deadline,
        };
        // The configured text cannot break the line.
        let text: String = s
            .config
            .greeting
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let greeting = Reply::trusted(
            crate::ReplyCode::GREETING,
            None,
            format!("{} {text}", s.config.hostname),
        );
        s.say_reply(&greeting);
        s.flush();
        s
    }

    // ------------------------------------------------------------ getters

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the link is secure (implicit TLS or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Who authenticated, if anyone.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The client's HELO/EHLO/LHLO name, if it introduced itself.
    pub fn helo_name(&self) -> Option<&Host<'static>> {
        self.helo.as_ref().map(|h| &h.1)
    }

    /// Whether the session is over (after [`Output::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the caller should read more from the socket: false once
    /// closed, while TLS is being set up, and while a decision is pending
    /// with input already held (answer it first).
    pub fn wants_input(&self) -> bool {
        !self.is_closed()
            && !matches!(self.phase, Phase::AwaitTls)
            && (!self.decisions.is_pending() || self.inbox.is_empty())
    }

    /// Bytes of input held unprocessed (while a decision is pending), never
    /// more than [`Limits::max_buffered_input`].
    pub fn buffered_input(&self) -> usize {
        self.inbox.len()
    }

    /// Whether a decision is pending.
    pub fn is_waiting_for_decision(&self) -> bool {
        self.decisions.is_pending()
    }

    /// Errors counted against [`Limits::max_errors`] so far.
    pub fn error_count(&self) -> u32 {
        self.errors
    }

    // ------------------------------------------------------------- inputs

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.now = now;
        if self.is_closed() || matches!(self.phase, Phase::AwaitTls) {
            // After STARTTLS, before the handshake: plaintext is dropped.
            return;
        }
        self.touch();
        self.feed(bytes);
        self.after_run();
    }

    /// The client closed its side of the connection.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        self.abort_message();
        self.close();
    }

    /// Time passed; call when [`Session::poll_timeout`]'s instant is
    /// reached. A pending decision past its deadline is answered with a
    /// temporary failure; an idle client past its deadline gets 421.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if self.decisions.is_pending() {
            if let Some(pending) = self.decisions.expire(now) {
                self.decision_timed_out(pending);
                self.resume();
            }
            return;
        }
        if now >= self.deadline {
            self.abort_message();
            self.closing(replies::IDLE_TIMEOUT);
        }
    }

    /// The next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called: the pending
    /// decision's deadline, or the client's.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            None
        } else if let Some(d) = self.decisions.deadline() {
            Some(d)
        } else {
            Some(self.deadline)
        }
    }

    /// The TLS handshake after [`Output::StartTls`] completed: the session
    /// starts over as just greeted (no HELO, no AUTH, no transaction) on a
    /// secure link.
    pub fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        if !matches!(self.phase, Phase::AwaitTls) {
            return Err(ApiMisuse::NoStartTls);
        }
        self.now = now;
        self.tls = true;
        self.helo = None;
        self.transaction = None;
        self.identity = None;
        self.framer.reset();
        self.inbox.clear();
        self.phase = Phase::Command;
        self.touch();
        Ok(())
    }

    // ---------------------------------------------------------- decisions

    /// Accepts the pending decision with the default positive reply
    /// (a SCRAM lookup accepted this way is an unknown user).
    pub fn accept(&mut self, token: Token) -> Result<(), AnswerError> {
        self.accept_inner(token, None)
    }

    /// Accepts the pending decision with a positive reply of the caller's
    /// choosing (say, with a queue id). A reply that is not 2xx rejects.
    pub fn accept_with(
        &mut self,
        token: Token,
        reply: impl Into<Reply<'static>>,
    ) -> Result<(), AnswerError> {
        let reply = reply.into();
        if !reply.code().is_positive() {
            return self.reject(token, reply);
        }
        self.accept_inner(token, Some(reply))
    }

    fn accept_inner(
        &mut self,
        token: Token,
        custom: Option<Reply<'static>>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match (p, &custom) {
            (Pending::Scram(_), Some(_)) => Err(ApiMisuse::WrongAnswer),
            _ => Ok(()),
        })?;
        if self.is_closed() {
            // The connection is gone; nothing more is said.
            return Ok(());
        }
        let say = |s: &mut Session, default: FixedReply| match &custom {
            Some(r) => r.encode(&mut s.out),
            None => s.say(default),
        };
        match pending {
            Pending::Mail(b) => {
                let (from, params) = *b;
                self.transaction = Some(Box::new(Transaction {
                    from,
                    params,
                    rcpts: Vec::new(),
                    size: 0,
                    bdat_started: false,
                    bdat_failed: false,
                }));
                say(self, replies::SENDER_OK);
            }
            Pending::Rcpt(r) => {
                if let Some(t) = self.transaction.as_mut() {
                    t.rcpts.push(r);
                }
                say(self, replies::RECIPIENT_OK);
            }
            Pending::Auth(identity) => {
                self.identity = Some(identity);
                say(self, replies::AUTH_OK);
            }
            Pending::Message(n) => {
                for _ in 0..n {
                    say(self, replies::MESSAGE_ACCEPTED);
                }
            }
            Pending::Scram(exchange) => {
                // Accepting a lookup without keys: an unknown user.
                self.scram_continue(exchange, None);
            }
        }
        self.resume();
        Ok(())
    }

    /// Refuses the pending decision with `reply` (4xx or 5xx; for a SCRAM
    /// lookup, the AUTH fails with it).
    pub fn reject(
        &mut self,
        token: Token,
        reply: impl Into<Reply<'static>>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take(token)?;
        if self.is_closed() {
            return Ok(());
        }
        let reply = reply.into();
        match pending {
            Pending::Mail(_) | Pending::Rcpt(_) => reply.encode(&mut self.out),
            Pending::Auth(..) | Pending::Scram(_) => {
                reply.encode(&mut self.out);
                self.auth_failed();
            }
            Pending::Message(n) => {
                for _ in 0..n {
                    reply.encode(&mut self.out);
                }
            }
        }
        self.resume();
        Ok(())
    }

    /// LMTP: one reply per accepted recipient, in RCPT order. In SMTP mode,
    /// or with the wrong number of replies, the token comes back in the
    /// error and the decision stays pending.
    pub fn respond_each(
        &mut self,
        token: Token,
        replies: Vec<Reply<'static>>,
    ) -> Result<(), AnswerError> {
        let lmtp = self.config.mode == Mode::Lmtp;
        self.decisions.take_if(token, |p| match p {
            Pending::Message(_) if !lmtp => Err(ApiMisuse::WrongAnswer),
            Pending::Message(n) if replies.len() != *n => Err(ApiMisuse::ReplyCount),
            Pending::Message(_) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if self.is_closed() {
            return Ok(());
        }
        for r in &replies {
            r.encode(&mut self.out);
        }
        self.transaction = None;
        self.resume();
        Ok(())
    }

    /// Answers [`Event::ScramLookup`]: the user's stored keys, or `None`
    /// for an unknown user (the exchange then fails without telling the
    /// client which of user or password was wrong).
    pub fn scram_credentials(
        &mut self,
        token: Token,
        creds: Option<ScramCredentials>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Scram(_) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if self.is_closed() {
            return Ok(());
        }
        if let Pending::Scram(exchange) = pending {
            self.scram_continue(exchange, creds);
        }
        self.resume();
        Ok(())
    }

    /// Builds the `Received:` trace header (RFC 5321 §4.4) for the current
    /// transaction, with the protocol (RFC 3848: ESMTPSA …) reflecting TLS
    /// and AUTH. Ends in CRLF; long lines are folded.
    pub fn received_header(&self, info: &TraceInfo<'_>) -> String {
        trace::received(self, info)
    }

    // ----------------------------------------------------------- internals

    /// The session answers a decision that passed its deadline.
    fn decision_timed_out(&mut self, pending: Pending) {
        match pending {
            Pending::Mail(_) | Pending::Rcpt(_) => self.say(replies::LOCAL_ERROR),
            Pending::Auth(_) | Pending::Scram(_) => self.say(replies::AUTH_TEMPORARY),
            Pending::Message(n) => {
                for _ in 0..n {
                    self.say(replies::LOCAL_ERROR);
                }
            }
        }
    }

    /// A new decision, due after the decision timeout.
    fn token(&mut self, pending: Pending) -> Token {
        self.decisions
            .issue(self.now, self.config.timeouts.decision, pending)
    }

    fn event(&mut self, e: Event) {
        self.queue.push_back(Output::Event(e));
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let bytes = std::mem::take(&mut self.out).freeze();
            self.queue.push_back(Output::Transmit(bytes));
        }
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.inbox.clear();
        self.decisions.clear();
        self.flush();
        self.queue.push_back(Output::Closed);
    }

    /// A reply the session makes: the enhanced code only when advertised.
    fn say(&mut self, r: FixedReply) {
        r.encode_as(&mut self.out, self.config.extensions.enhanced_status_codes);
    }

    fn say_reply(&mut self, r: &Reply<'_>) {
        r.encode_as(&mut self.out, self.config.extensions.enhanced_status_codes);
    }

    /// `421`/`221` with the host name first, then the close.
    fn closing(&mut self, r: FixedReply) {
        let reply = r.after(self.config.hostname.as_str());
        self.say_reply(&reply);
        self.close();
    }

    /// Every error the client makes goes through here: the reply, then the
    /// count against [`Limits::max_errors`] (421 and close at the limit).
    fn peer_error(&mut self, r: FixedReply) {
        self.say(r);
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors && !self.is_closed() {
            self.abort_message();
            self.closing(replies::TOO_MANY_ERRORS);
        }
    }

    /// A failed AUTH (reply already written): counted against both limits.
    fn auth_failed(&mut self) {
        self.auth_failures += 1;
        if self.auth_failures >= self.config.limits.max_auth_failures {
            self.closing(replies::TOO_MANY_AUTH_FAILURES);
            return;
        }
        self.count_error();
    }

    fn abort_message(&mut self) {
        let in_body = matches!(
            self.phase,
            Phase::Data(_)
                | Phase::Bdat {
                    mode: BdatMode::Accept,
                    ..
                }
        ) || self.transaction.as_ref().is_some_and(|t| t.bdat_started);
        if in_body {
            self.event(Event::MessageAborted);
        }
    }

    fn touch(&mut self) {
        let t = match self.phase {
            Phase::Data(_) | Phase::Bdat { .. } => self.config.timeouts.data,
            _ => self.config.timeouts.command,
        };
        self.deadline = session_core::deadline_after(self.now, t);
    }
}

session_core::forward_session!(Session, Event);
