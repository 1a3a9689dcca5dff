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
//!             Output::Event(Event::Closed) => closed = true,
//!             Output::Event(other) => panic!("not expected here: {other:?}"),
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

use bytes::{Bytes, BytesMut};
use sasl::server::{ServerExchange, ServerStep};
use sasl::{Identity, Mechanism, Response, SaslError, ScramCredentials};

use crate::address::{ForwardPath, Host, ReversePath};
use crate::body::{BdatDecoder, BodyProgress, DataDecoder};
use crate::command::{Command, CommandOptions, InitialResponse};
use crate::framing::LineFramer;
use crate::params::{BodyType, MailParameters, RcptParameters};
use crate::reply::{EnhancedCode, Reply, ReplyCode};

mod config;
mod trace;

pub use config::{Config, Extensions, Limits, Mode, Timeouts};
pub use trace::TraceInfo;

/// What the session hands to its caller.
#[derive(Debug)]
pub enum Output {
    /// Bytes to write to the client, in order.
    Transmit(Bytes),
    /// Something to act on.
    Event(Event),
}

/// A decision the application owes the session. Consumed by
/// [`Session::accept`], [`Session::reject`] and friends.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a decision must be answered or the session waits forever"]
pub struct Token {
    id: u64,
}

/// Events, in the order the client caused them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// `MAIL FROM`: accept the sender? (Default accept reply: 250 2.1.0.)
    Mail(Box<MailRequest>),
    /// `RCPT TO`: accept the recipient? (250 2.1.5.)
    Rcpt(Box<RcptRequest>),
    /// AUTH: are these credentials right? Accepting authenticates the
    /// session (235 2.7.0); reject with, say, 535 5.7.8.
    Auth(Box<AuthRequest>),
    /// AUTH SCRAM-SHA-256: pass the user's stored keys to
    /// [`Session::scram_credentials`] (or `None` for no such user).
    ScramLookup(Box<ScramLookup>),
    /// A piece of the message body, in order (dot-unstuffed for DATA).
    MessageData(Bytes),
    /// The whole message has arrived: store it durably, then accept (250)
    /// or reject. In LMTP mode answer per recipient with
    /// [`Session::respond_each`] (or accept/reject them all).
    Message(Box<MessageRequest>),
    /// The message whose data was being delivered is abandoned (error,
    /// RSET, timeout or end of stream): discard what was received.
    MessageAborted,
    /// Write everything transmitted so far, start TLS on the connection,
    /// then call [`Session::tls_established`]. Plaintext received after
    /// the STARTTLS line has been thrown away.
    StartTls,
    /// Write everything transmitted so far and close the connection.
    Closed,
}

/// A `MAIL FROM` awaiting a decision.
#[derive(Debug)]
pub struct MailRequest {
    /// Answer with this.
    pub token: Token,
    /// The sender.
    pub from: ReversePath<'static>,
    /// Its parameters (only those of enabled extensions reach here).
    pub params: MailParameters<'static>,
}

/// A `RCPT TO` awaiting a decision.
#[derive(Debug)]
pub struct RcptRequest {
    /// Answer with this.
    pub token: Token,
    /// The recipient.
    pub to: ForwardPath<'static>,
    /// Its parameters.
    pub params: RcptParameters<'static>,
}

/// What an AUTH exchange established, for the application to check.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthCheck {
    /// PLAIN, LOGIN or CRAM-MD5: verify these.
    Credentials(sasl::server::Credentials),
    /// SCRAM: the client proved knowledge of the stored keys; authorise
    /// the identity (is the account enabled? may it act as the authzid?).
    Verified(Identity),
}

/// An AUTH attempt awaiting a decision.
#[derive(Debug)]
pub struct AuthRequest {
    /// Answer with this.
    pub token: Token,
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// What to check.
    pub check: AuthCheck,
}

/// SCRAM needs the stored keys of this user.
#[derive(Debug)]
pub struct ScramLookup {
    /// Answer with [`Session::scram_credentials`].
    pub token: Token,
    /// The user name.
    pub username: String,
    /// The authorization identity, if any.
    pub authzid: Option<String>,
}

/// A complete message awaiting its verdict.
#[derive(Debug)]
pub struct MessageRequest {
    /// Answer with this.
    pub token: Token,
    /// The sender.
    pub from: ReversePath<'static>,
    /// The sender's parameters.
    pub params: MailParameters<'static>,
    /// The accepted recipients, in RCPT order.
    pub recipients: Vec<ForwardPath<'static>>,
    /// Octets received.
    pub size: u64,
}

/// The caller used the session wrongly (never caused by network data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The token does not belong to the pending decision of this session.
    #[error("token does not match the pending decision")]
    UnknownToken,
    /// This kind of answer does not fit the decision (e.g. SCRAM keys for
    /// a MAIL decision, or per-recipient replies in SMTP mode).
    #[error("this answer does not fit the pending decision")]
    WrongAnswer,
    /// `respond_each` got a different number of replies than recipients.
    #[error("expected one reply per recipient")]
    ReplyCount,
    /// `tls_established` without a STARTTLS in progress.
    #[error("no STARTTLS in progress")]
    NoStartTls,
}

/// A reply the session writes itself: code, enhanced code, text.
type OwnReply = (u16, (u8, u16, u16), &'static str);

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
    rcpts: Vec<ForwardPath<'static>>,
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
    Refuse(OwnReply),
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
    Rcpt(ForwardPath<'static>),
    Auth(Identity),
    Scram(Box<ServerExchange>),
    Message,
}

/// One SMTP/LMTP server connection. See the [module docs](self).
pub struct Session {
    config: Arc<Config>,
    phase: Phase,
    framer: LineFramer,
    inbox: BytesMut,
    out: BytesMut,
    queue: VecDeque<Output>,
    pending: Option<(u64, Pending)>,
    next_token: u64,
    helo: Option<(HeloKind, Host<'static>)>,
    transaction: Option<Box<Transaction>>,
    identity: Option<Identity>,
    tls: bool,
    errors: u32,
    auth_failures: u32,
    entropy: [u8; 16],
    now: Instant,
    deadline: Option<Instant>,
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
            .field("pending", &self.pending.as_ref().map(|p| p.0))
            .finish_non_exhaustive()
    }
}

/// The bytes of a multi-line 250 reply, one line per capability.
fn ehlo_lines(session: &Session) -> Vec<String> {
    let c = &session.config;
    let x = &c.extensions;
    let mut lines = vec![session.config.hostname.to_string()];
    let size = format!("SIZE {}", c.limits.max_message_size);
    let offered: [(bool, &str); 12] = [
        (x.pipelining, "PIPELINING"),
        (x.size, &size),
        (x.eight_bit_mime, "8BITMIME"),
        (x.enhanced_status_codes, "ENHANCEDSTATUSCODES"),
        (x.chunking, "CHUNKING"),
        (x.chunking && x.binary_mime, "BINARYMIME"),
        (x.smtputf8, "SMTPUTF8"),
        (x.dsn, "DSN"),
        (x.starttls && !session.tls, "STARTTLS"),
        (x.requiretls && session.tls, "REQUIRETLS"),
        (x.mt_priority, "MT-PRIORITY"),
        (x.deliver_by, "DELIVERBY"),
    ];
    lines.extend(
        offered
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, s)| (*s).to_owned()),
    );
    let mechs: Vec<&str> = c
        .auth_mechanisms
        .iter()
        .filter(|m| session.mechanism_allowed(**m))
        .map(|m| m.name())
        .collect();
    if !mechs.is_empty() && session.identity.is_none() {
        lines.push(format!("AUTH {}", mechs.join(" ")));
    }
    lines
}

impl Session {
    /// A new session; the 220 greeting is queued at once. `entropy` (16
    /// random bytes from a CSPRNG) seeds the SASL nonces of this session.
    pub fn new(config: Arc<Config>, now: Instant, entropy: [u8; 16]) -> Session {
        let tls = config.implicit_tls;
        let deadline = Some(now + config.timeouts.command);
        let framer = LineFramer::new(config.limits.command_line, config.line_ending);
        let mut s = Session {
            config,
            phase: Phase::Command,
            framer,
            inbox: BytesMut::new(),
            out: BytesMut::new(),
            queue: VecDeque::new(),
            pending: None,
            next_token: 1,
            helo: None,
            transaction: None,
            identity: None,
            tls,
            errors: 0,
            auth_failures: 0,
            entropy,
            now,
            deadline,
        };
        let text = format!("{} {}", s.config.hostname, s.config.greeting);
        s.raw_reply(220, None, &text);
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

    /// Whether the session is over (after [`Event::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the caller should keep reading from the socket. False while
    /// the unprocessed input (held during a pending decision) is at its
    /// limit, or once the session is closed.
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && self.inbox.len() < self.config.limits.max_buffered_input
    }

    /// Bytes of input held unprocessed (while a decision is pending).
    pub fn buffered_input(&self) -> usize {
        self.inbox.len()
    }

    /// Whether a decision is pending.
    pub fn is_waiting_for_decision(&self) -> bool {
        self.pending.is_some()
    }

    // ------------------------------------------------------------- inputs

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if matches!(self.phase, Phase::AwaitTls) {
            // Plaintext after STARTTLS, before the handshake: dropped.
            return;
        }
        self.touch();
        if self.inbox.is_empty() {
            let used = self.run(bytes);
            self.keep(&bytes[used..]);
        } else {
            self.inbox.extend_from_slice(bytes);
            self.check_inbox();
            if self.is_closed() {
                return;
            }
            let inbox = std::mem::take(&mut self.inbox);
            let used = self.run(&inbox);
            self.inbox = inbox;
            let _ = self.inbox.split_to(used);
        }
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

    /// Time passed; call when [`Session::poll_timeout`]'s instant is reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() || self.pending.is_some() {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.abort_message();
            let text = format!(
                "{} Timeout waiting for client, closing connection",
                self.config.hostname
            );
            self.raw_reply(421, Some((4, 4, 2)), &text);
            self.close();
        }
    }

    /// The next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() || self.pending.is_some() {
            None
        } else {
            self.deadline
        }
    }

    /// The TLS handshake after [`Event::StartTls`] completed: the session
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

    /// Accepts the pending decision with the default positive reply.
    pub fn accept(&mut self, token: Token) -> Result<(), ApiMisuse> {
        self.accept_inner(token, None)
    }

    /// Accepts the pending decision with a positive reply of the caller's
    /// choosing (say, with a queue id). A reply that is not 2xx rejects.
    pub fn accept_with(&mut self, token: Token, reply: Reply<'static>) -> Result<(), ApiMisuse> {
        if !reply.code().is_positive() {
            return self.reject(token, reply);
        }
        if matches!(self.pending, Some((id, Pending::Scram(_))) if id == token.id) {
            return Err(ApiMisuse::WrongAnswer);
        }
        self.accept_inner(token, Some(reply))
    }

    fn accept_inner(
        &mut self,
        token: Token,
        custom: Option<Reply<'static>>,
    ) -> Result<(), ApiMisuse> {
        let pending = self.take_pending(&token)?;
        if self.is_closed() {
            // The connection is gone; nothing more is said.
            return Ok(());
        }
        let say = |s: &mut Session, code: u16, enh: (u8, u16, u16), text: &str| match &custom {
            Some(r) => r.encode(&mut s.out),
            None => s.reply(code, enh, text),
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
                say(self, 250, (2, 1, 0), "Sender OK");
            }
            Pending::Rcpt(to) => {
                if let Some(t) = self.transaction.as_mut() {
                    t.rcpts.push(to);
                }
                say(self, 250, (2, 1, 5), "Recipient OK");
            }
            Pending::Auth(identity) => {
                self.identity = Some(identity);
                say(self, 235, (2, 7, 0), "Authentication successful");
            }
            Pending::Message => {
                for _ in 0..self.lmtp_reply_count() {
                    say(self, 250, (2, 0, 0), "Message accepted");
                }
                self.transaction = None;
            }
            Pending::Scram(exchange) => {
                // Accepting a lookup without keys: an unknown user.
                self.phase = Phase::AuthResponse(exchange);
                return self.scram_continue(None);
            }
        }
        self.resume();
        Ok(())
    }

    /// Refuses the pending decision with `reply` (4xx or 5xx).
    pub fn reject(&mut self, token: Token, reply: Reply<'static>) -> Result<(), ApiMisuse> {
        let pending = self.take_pending(&token)?;
        if self.is_closed() {
            return Ok(());
        }
        match pending {
            Pending::Mail(_) | Pending::Rcpt(_) => reply.encode(&mut self.out),
            Pending::Auth(..) => {
                reply.encode(&mut self.out);
                self.auth_failed();
            }
            Pending::Message => {
                let n = self.lmtp_reply_count();
                for _ in 0..n {
                    reply.encode(&mut self.out);
                }
                self.transaction = None;
            }
            Pending::Scram(_) => {
                reply.encode(&mut self.out);
                self.auth_failed();
            }
        }
        self.resume();
        Ok(())
    }

    /// LMTP: one reply per accepted recipient, in RCPT order.
    pub fn respond_each(
        &mut self,
        token: Token,
        replies: Vec<Reply<'static>>,
    ) -> Result<(), ApiMisuse> {
        match self.pending.as_ref() {
            Some((id, Pending::Message)) if *id == token.id => {}
            Some((id, _)) if *id == token.id => return Err(ApiMisuse::WrongAnswer),
            _ => return Err(ApiMisuse::UnknownToken),
        }
        if self.config.mode != Mode::Lmtp {
            return Err(ApiMisuse::WrongAnswer);
        }
        if replies.len() != self.lmtp_reply_count() {
            return Err(ApiMisuse::ReplyCount);
        }
        self.pending = None;
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
    ) -> Result<(), ApiMisuse> {
        match self.pending.as_ref() {
            Some((id, Pending::Scram(_))) if *id == token.id => {}
            Some((id, _)) if *id == token.id => return Err(ApiMisuse::WrongAnswer),
            _ => return Err(ApiMisuse::UnknownToken),
        }
        let Some((_, Pending::Scram(exchange))) = self.pending.take() else {
            return Err(ApiMisuse::UnknownToken);
        };
        if self.is_closed() {
            return Ok(());
        }
        self.phase = Phase::AuthResponse(exchange);
        self.scram_continue(creds)
    }

    /// Builds the `Received:` trace header (RFC 5321 §4.4) for the current
    /// transaction, with the protocol (RFC 3848: ESMTPSA …) reflecting TLS
    /// and AUTH. Ends in CRLF; long lines are folded.
    pub fn received_header(&self, info: &TraceInfo<'_>) -> String {
        trace::received(self, info)
    }

    // ----------------------------------------------------------- internals

    fn take_pending(&mut self, token: &Token) -> Result<Pending, ApiMisuse> {
        match self.pending.take() {
            Some((id, p)) if id == token.id => Ok(p),
            other => {
                self.pending = other;
                Err(ApiMisuse::UnknownToken)
            }
        }
    }

    fn lmtp_reply_count(&self) -> usize {
        if self.config.mode == Mode::Lmtp {
            self.transaction.as_ref().map_or(0, |t| t.rcpts.len())
        } else {
            1
        }
    }

    /// Continue after a decision: process held input, then flush.
    fn resume(&mut self) {
        if self.is_closed() {
            self.flush();
            return;
        }
        self.touch();
        if !self.inbox.is_empty() && self.pending.is_none() {
            let inbox = std::mem::take(&mut self.inbox);
            let used = self.run(&inbox);
            self.inbox = inbox;
            let _ = self.inbox.split_to(used);
        }
        self.after_run();
    }

    fn after_run(&mut self) {
        if self.pending.is_none() || self.out.len() >= self.config.limits.max_buffered_output {
            self.flush();
        }
        if self.inbox.is_empty() && self.inbox.capacity() > 0 {
            self.inbox = BytesMut::new();
        }
    }

    /// Holds the unprocessed rest of one read. Not checked against the
    /// limit: one read's size is the caller's choice; piling more reads on
    /// top while [`Session::wants_input`] is false is what gets refused.
    fn keep(&mut self, rest: &[u8]) {
        if !rest.is_empty() && !self.is_closed() && !matches!(self.phase, Phase::AwaitTls) {
            self.inbox.extend_from_slice(rest);
        }
    }

    fn check_inbox(&mut self) {
        if self.inbox.len() > self.config.limits.max_buffered_input {
            self.inbox = BytesMut::new();
            let text = format!(
                "{} Too much pipelined input, closing connection",
                self.config.hostname
            );
            self.raw_reply(421, Some((4, 7, 0)), &text);
            self.close();
        }
    }

    fn touch(&mut self) {
        let t = match self.phase {
            Phase::Data(_) | Phase::Bdat { .. } => self.config.timeouts.data,
            _ => self.config.timeouts.command,
        };
        self.deadline = Some(self.now + t);
    }

    fn token(&mut self, pending: Pending) -> Token {
        let id = self.next_token;
        self.next_token += 1;
        self.pending = Some((id, pending));
        Token { id }
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
        self.inbox = BytesMut::new();
        self.flush();
        self.event(Event::Closed);
    }

    /// A reply the session makes: the enhanced code only when advertised.
    fn reply(&mut self, code: u16, enhanced: (u8, u16, u16), text: &str) {
        self.raw_reply(code, Some(enhanced), text);
    }

    fn raw_reply(&mut self, code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) {
        self.out.extend_from_slice(&itoa_3(code));
        self.out.extend_from_slice(b" ");
        if let Some((c, s, d)) = enhanced.filter(|_| self.config.extensions.enhanced_status_codes) {
            self.out.extend_from_slice(&[b'0' + c, b'.']);
            push_num(&mut self.out, s);
            self.out.extend_from_slice(b".");
            push_num(&mut self.out, d);
            self.out.extend_from_slice(b" ");
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// A reply from the crate's tables (errors): enhanced code stripped
    /// when not advertised.
    fn own_reply(&mut self, r: &Reply<'_>) {
        let text = r.lines().join(" ");
        let enhanced = r
            .enhanced()
            .map(|e: EnhancedCode| (e.class(), e.subject(), e.detail()));
        self.raw_reply(r.code().get(), enhanced, &text);
    }

    fn bad_command(&mut self, r: &Reply<'_>) {
        self.own_reply(r);
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors {
            let text = format!(
                "{} Too many errors, closing connection",
                self.config.hostname
            );
            self.raw_reply(421, Some((4, 7, 0)), &text);
            self.close();
        }
    }

    fn auth_failed(&mut self) {
        self.auth_failures += 1;
        if self.auth_failures >= self.config.limits.max_auth_failures {
            let text = format!(
                "{} Too many authentication failures, closing connection",
                self.config.hostname
            );
            self.raw_reply(421, Some((4, 7, 0)), &text);
            self.close();
        }
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

    fn mechanism_allowed(&self, m: Mechanism) -> bool {
        if self.config.require_tls_for_auth && !self.tls {
            return false;
        }
        !m.is_plaintext() || self.tls || self.config.allow_plaintext_auth
    }

    /// Processes as much of `input` as possible; returns bytes consumed.
    fn run(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() && self.pending.is_none() {
            match &mut self.phase {
                Phase::Closed | Phase::AwaitTls => return input.len(),
                Phase::Data(decoder) => {
                    let mut out = BytesMut::new();
                    let progress = decoder.decode(&input[pos..], &mut out);
                    let size = decoder.size();
                    if !out.is_empty() {
                        self.event(Event::MessageData(out.freeze()));
                    }
                    match progress {
                        BodyProgress::NeedMore => pos = input.len(),
                        BodyProgress::Finished { consumed, result } => {
                            pos += consumed;
                            self.phase = Phase::Command;
                            self.touch();
                            match result {
                                Ok(()) => self.message_complete(size),
                                Err(e) => {
                                    self.event(Event::MessageAborted);
                                    self.transaction = None;
                                    self.own_reply(&e.reply());
                                }
                            }
                        }
                    }
                }
                Phase::Bdat { decoder, mode, .. } => {
                    let mut out = BytesMut::new();
                    let progress = decoder.decode(&input[pos..], &mut out);
                    let deliver = matches!(mode, BdatMode::Accept);
                    if !out.is_empty() && deliver {
                        self.event(Event::MessageData(out.freeze()));
                    }
                    match progress {
                        BodyProgress::NeedMore => pos = input.len(),
                        BodyProgress::Finished { consumed, .. } => {
                            pos += consumed;
                            self.bdat_chunk_done();
                        }
                    }
                }
                Phase::Command | Phase::AuthResponse(_) => {
                    let mut framer = std::mem::replace(
                        &mut self.framer,
                        LineFramer::new(0, self.config.line_ending),
                    );
                    let (used, line) = framer.push(&input[pos..]);
                    pos += used;
                    if let Some(line) = line {
                        match line {
                            Ok(line) => self.line(line),
                            Err(e) => {
                                if matches!(self.phase, Phase::AuthResponse(_)) {
                                    self.phase = Phase::Command;
                                }
                                self.bad_command(&e.reply());
                            }
                        }
                        if self.out.len() >= self.config.limits.max_buffered_output {
                            // A long pipelined batch: hand out what is ready.
                            self.flush();
                        }
                    }
                    if matches!(self.phase, Phase::AwaitTls) {
                        // Everything after the STARTTLS line is dropped.
                        framer.reset();
                        self.framer = framer;
                        return input.len();
                    }
                    self.framer = framer;
                }
            }
        }
        pos
    }

    fn line(&mut self, line: &[u8]) {
        if let Phase::AuthResponse(_) = self.phase {
            self.auth_line(line);
            return;
        }
        let opts = CommandOptions {
            max_line: self.config.limits.command_line,
            line_ending: self.config.line_ending,
            smtputf8: self.transaction.as_ref().is_some_and(|t| t.params.smtputf8),
        };
        match Command::parse_line(line, &opts) {
            Ok(cmd) => self.command(cmd),
            Err(e) => {
                let is_bdat = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"BDAT");
                if is_bdat && self.config.extensions.chunking {
                    // The chunk size is unknown: the stream cannot be
                    // resynchronised.
                    self.own_reply(&e.reply());
                    let text = format!(
                        "{} Invalid BDAT size, closing connection",
                        self.config.hostname
                    );
                    self.raw_reply(421, Some((4, 5, 4)), &text);
                    self.abort_message();
                    self.close();
                } else {
                    self.bad_command(&e.reply());
                }
            }
        }
    }

    fn command(&mut self, cmd: Command<'_>) {
        let lmtp = self.config.mode == Mode::Lmtp;
        match cmd {
            Command::Ehlo { host } if !lmtp => self.hello(HeloKind::Ehlo, host),
            Command::Helo { host } if !lmtp => self.hello(HeloKind::Helo, host),
            Command::Lhlo { host } if lmtp => self.hello(HeloKind::Lhlo, host),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } if self.config.extensions.chunking => {
                self.bdat(size, last)
            }
            Command::Rset => {
                self.abort_message();
                self.transaction = None;
                self.reply(250, (2, 0, 0), "OK");
            }
            Command::Noop { .. } => self.reply(250, (2, 0, 0), "OK"),
            Command::Help { .. } => self.reply(
                214,
                (2, 0, 0),
                "See RFC 5321; commands: EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT",
            ),
            Command::Vrfy { .. } => self.reply(
                252,
                (2, 1, 5),
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Expn { .. } => self.reply(502, (5, 5, 1), "EXPN not available"),
            Command::Quit => {
                self.abort_message();
                let text = format!("{} closing connection", self.config.hostname);
                self.reply(221, (2, 0, 0), &text);
                self.close();
            }
            Command::StartTls if self.config.extensions.starttls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } if !self.config.auth_mechanisms.is_empty() => {
                self.auth(mechanism.as_str(), initial_response)
            }
            _ => self.bad_command(&Command::unrecognised_reply()),
        }
    }

    fn hello(&mut self, kind: HeloKind, host: Host<'_>) {
        self.abort_message();
        self.transaction = None;
        self.helo = Some((kind, host.into_owned()));
        if kind == HeloKind::Helo {
            let text = self.config.hostname.to_string();
            self.raw_reply(250, None, &text);
            return;
        }
        let lines = ehlo_lines(self);
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            self.out
                .extend_from_slice(if i == last { b"250 " } else { b"250-" });
            self.out.extend_from_slice(l.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
    }

    fn need_hello(&mut self) -> bool {
        if self.helo.is_none() {
            let verb = if self.config.mode == Mode::Lmtp {
                "LHLO"
            } else {
                "EHLO/HELO"
            };
            self.reply(503, (5, 5, 1), &format!("Send {verb} first"));
            self.errors += 1;
            return false;
        }
        true
    }

    fn esmtp(&self) -> bool {
        self.helo.as_ref().is_some_and(|h| h.0 != HeloKind::Helo)
    }

    /// The reason a MAIL parameter is refused, if it is.
    fn refuse_mail_param(&self, p: &MailParameters<'_>) -> Option<OwnReply> {
        let x = &self.config.extensions;
        let unsupported = (555, (5, 5, 4), "Unsupported MAIL parameter");
        if !self.esmtp() && !p.is_empty() {
            return Some(unsupported);
        }
        if p.size.is_some() && !x.size
            || p.smtputf8 && !x.smtputf8
            || (p.ret.is_some() || p.envid.is_some()) && !x.dsn
            || p.auth.is_some() && self.config.auth_mechanisms.is_empty()
            || p.requiretls && !(x.requiretls && self.tls)
            || p.mt_priority.is_some() && !x.mt_priority
            || p.by.is_some() && !x.deliver_by
            || p.hold.is_some()
            || !p.unknown.is_empty()
        {
            return Some(unsupported);
        }
        match p.body {
            Some(BodyType::EightBitMime) if !x.eight_bit_mime => return Some(unsupported),
            Some(BodyType::BinaryMime) if !(x.binary_mime && x.chunking) => {
                return Some(unsupported);
            }
            _ => {}
        }
        if p.size
            .is_some_and(|s| s > self.config.limits.max_message_size)
        {
            return Some((
                552,
                (5, 3, 4),
                "Message size exceeds fixed maximum message size",
            ));
        }
        None
    }

    fn mail(&mut self, from: ReversePath<'_>, params: MailParameters<'_>) {
        if !self.need_hello() {
            return;
        }
        if self.transaction.is_some() {
            self.reply(503, (5, 5, 1), "Nested MAIL command");
            self.errors += 1;
            return;
        }
        if self.config.require_auth && self.identity.is_none() {
            self.reply(530, (5, 7, 0), "Authentication required");
            return;
        }
        if let Some((code, enh, text)) = self.refuse_mail_param(&params) {
            self.reply(code, enh, text);
            return;
        }
        let from = from.into_owned();
        let params = params.into_owned();
        let token = self.token(Pending::Mail(Box::new((from.clone(), params.clone()))));
        self.event(Event::Mail(Box::new(MailRequest {
            token,
            from,
            params,
        })));
    }

    fn rcpt(&mut self, to: ForwardPath<'_>, params: RcptParameters<'_>) {
        let Some(t) = self.transaction.as_ref() else {
            self.reply(503, (5, 5, 1), "Need MAIL before RCPT");
            self.errors += 1;
            return;
        };
        if t.bdat_started {
            self.reply(503, (5, 5, 1), "RCPT not allowed during BDAT transfer");
            return;
        }
        if t.rcpts.len() >= self.config.limits.max_recipients {
            self.reply(452, (4, 5, 3), "Too many recipients");
            return;
        }
        let dsn = params.notify.is_some() || params.orcpt.is_some();
        if dsn && !self.config.extensions.dsn || !params.unknown.is_empty() {
            self.reply(555, (5, 5, 4), "Unsupported RCPT parameter");
            return;
        }
        let to = to.into_owned();
        let token = self.token(Pending::Rcpt(to.clone()));
        self.event(Event::Rcpt(Box::new(RcptRequest {
            token,
            to,
            params: params.into_owned(),
        })));
    }

    /// Checks that a message may start now; replies and returns false if
    /// not.
    fn transaction_ready(&mut self) -> Result<(), OwnReply> {
        match self.transaction.as_ref() {
            None => Err((503, (5, 5, 1), "Need MAIL and RCPT first")),
            Some(t) if t.rcpts.is_empty() => Err((554, (5, 5, 1), "No valid recipients")),
            Some(_) => Ok(()),
        }
    }

    fn data(&mut self) {
        if let Err((code, enh, text)) = self.transaction_ready() {
            self.reply(code, enh, text);
            return;
        }
        let t = self
            .transaction
            .as_ref()
            .map(|t| (t.params.body, t.bdat_started));
        match t {
            Some((Some(BodyType::BinaryMime), _)) => {
                self.reply(503, (5, 5, 1), "BINARYMIME requires BDAT");
                return;
            }
            Some((_, true)) => {
                self.reply(503, (5, 5, 1), "DATA not allowed during BDAT transfer");
                return;
            }
            _ => {}
        }
        self.raw_reply(354, None, "Start mail input; end with <CRLF>.<CRLF>");
        self.phase = Phase::Data(DataDecoder::with_policy(
            self.config.body_line_ending,
            Some(self.config.limits.max_message_size),
        ));
        self.touch();
    }

    fn bdat(&mut self, size: u64, last: bool) {
        let refusal = match self.transaction_ready() {
            Err(why) => Some(why),
            Ok(()) => {
                let t = self.transaction.as_ref().map(|t| (t.bdat_failed, t.size));
                match t {
                    Some((true, _)) => Some((503, (5, 5, 1), "Previous BDAT failed, send RSET")),
                    Some((_, so_far))
                        if so_far.saturating_add(size) > self.config.limits.max_message_size =>
                    {
                        Some((
                            552,
                            (5, 3, 4),
                            "Message size exceeds fixed maximum message size",
                        ))
                    }
                    _ => None,
                }
            }
        };
        let mode = match refusal {
            Some(why) => {
                if let Some(t) = self.transaction.as_mut() {
                    if t.bdat_started {
                        t.bdat_started = false;
                        self.queue.push_back(Output::Event(Event::MessageAborted));
                    }
                    t.bdat_failed = true;
                }
                BdatMode::Refuse(why)
            }
            None => {
                if let Some(t) = self.transaction.as_mut() {
                    t.bdat_started = true;
                }
                BdatMode::Accept
            }
        };
        let decoder = match mode {
            BdatMode::Accept => BdatDecoder::new(size),
            BdatMode::Refuse(_) => BdatDecoder::discarding(size),
        };
        self.phase = Phase::Bdat {
            decoder,
            size,
            last,
            mode,
        };
        self.touch();
        if size == 0 {
            self.bdat_chunk_done();
        }
    }

    fn bdat_chunk_done(&mut self) {
        let Phase::Bdat {
            size, last, mode, ..
        } = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return;
        };
        self.touch();
        match mode {
            BdatMode::Refuse((code, enh, text)) => self.reply(code, enh, text),
            BdatMode::Accept => {
                let total = self.transaction.as_mut().map_or(0, |t| {
                    t.size += size;
                    t.size
                });
                if last {
                    self.message_complete(total);
                } else {
                    self.reply(250, (2, 0, 0), &format!("{size} octets received"));
                }
            }
        }
    }

    fn message_complete(&mut self, size: u64) {
        let Some(t) = self.transaction.as_mut() else {
            return;
        };
        t.size = size;
        t.bdat_started = false;
        let (from, params, recipients) = (t.from.clone(), t.params.clone(), t.rcpts.clone());
        let token = self.token(Pending::Message);
        self.event(Event::Message(Box::new(MessageRequest {
            token,
            from,
            params,
            recipients,
            size,
        })));
    }

    fn starttls(&mut self) {
        if self.tls {
            self.reply(503, (5, 5, 1), "TLS already active");
            return;
        }
        self.reply(220, (2, 0, 0), "Ready to start TLS");
        self.flush();
        self.phase = Phase::AwaitTls;
        self.inbox = BytesMut::new();
        self.event(Event::StartTls);
    }

    fn nonce(&mut self) -> Vec<u8> {
        let mut n = self.entropy.to_vec();
        n.extend_from_slice(&self.next_token.to_be_bytes());
        self.next_token += 1;
        n
    }

    fn auth(&mut self, name: &str, initial: Option<InitialResponse<'_>>) {
        if !self.esmtp() {
            self.reply(503, (5, 5, 1), "Send EHLO first");
            self.errors += 1;
            return;
        }
        if self.identity.is_some() {
            self.reply(503, (5, 5, 1), "Already authenticated");
            return;
        }
        if self.transaction.is_some() {
            self.reply(503, (5, 5, 1), "AUTH not allowed during a mail transaction");
            return;
        }
        let Some(mech) =
            Mechanism::from_name(name).filter(|m| self.config.auth_mechanisms.contains(m))
        else {
            self.reply(504, (5, 5, 4), "Unrecognized authentication type");
            return;
        };
        if !self.mechanism_allowed(mech) {
            self.reply(
                538,
                (5, 7, 11),
                "Encryption required for requested authentication mechanism",
            );
            return;
        }
        let initial = match initial {
            None => None,
            Some(InitialResponse::Empty) => Some(Vec::new()),
            Some(InitialResponse::Base64(t)) => match sasl::decode_base64(&t) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.reply(501, (5, 5, 2), "Invalid base64 in initial response");
                    return;
                }
            },
        };
        let nonce = self.nonce();
        let hostname = self.config.hostname.to_string();
        let mut exchange = Box::new(ServerExchange::new(mech, &nonce, &hostname));
        let step = exchange.start(initial.as_deref());
        self.auth_step(exchange, step);
    }

    fn auth_line(&mut self, line: &[u8]) {
        let Phase::AuthResponse(mut exchange) = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return;
        };
        let step = match sasl::decode_response(line) {
            Ok(Response::Cancel) => {
                self.reply(501, (5, 0, 0), "Authentication cancelled");
                return;
            }
            Err(_) => {
                self.reply(501, (5, 5, 2), "Invalid base64 in response");
                return;
            }
            Ok(Response::Data(d)) => exchange.respond(&d),
        };
        self.auth_step(exchange, step);
    }

    fn auth_step(&mut self, exchange: Box<ServerExchange>, step: ServerStep) {
        let mechanism = exchange.mechanism();
        match step {
            ServerStep::Challenge(c) => {
                self.out.extend_from_slice(b"334 ");
                self.out.extend_from_slice(sasl::encode(&c).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.phase = Phase::AuthResponse(exchange);
            }
            ServerStep::Verify(creds) => {
                let identity = Identity {
                    username: creds.username().to_owned(),
                    authzid: match &creds {
                        sasl::server::Credentials::Password { authzid, .. } => authzid.clone(),
                        _ => None,
                    },
                };
                let token = self.token(Pending::Auth(identity));
                self.event(Event::Auth(Box::new(AuthRequest {
                    token,
                    mechanism,
                    check: AuthCheck::Credentials(creds),
                })));
            }
            ServerStep::LookupScram { username, authzid } => {
                let token = self.token(Pending::Scram(exchange));
                self.event(Event::ScramLookup(Box::new(ScramLookup {
                    token,
                    username,
                    authzid,
                })));
            }
            ServerStep::Success(identity) => {
                let token = self.token(Pending::Auth(identity.clone()));
                self.event(Event::Auth(Box::new(AuthRequest {
                    token,
                    mechanism,
                    check: AuthCheck::Verified(identity),
                })));
            }
            ServerStep::Failure(SaslError::Malformed(_) | SaslError::Base64) => {
                self.reply(501, (5, 5, 2), "Malformed authentication response");
                self.auth_failed();
            }
            ServerStep::Failure(_) => {
                self.reply(535, (5, 7, 8), "Authentication credentials invalid");
                self.auth_failed();
            }
            _ => {
                self.reply(454, (4, 7, 0), "Temporary authentication failure");
            }
        }
    }

    fn scram_continue(&mut self, creds: Option<ScramCredentials>) -> Result<(), ApiMisuse> {
        let Phase::AuthResponse(mut exchange) = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return Err(ApiMisuse::WrongAnswer);
        };
        let step = exchange.scram_credentials(creds);
        self.auth_step(exchange, step);
        self.resume();
        Ok(())
    }
}

fn push_num(out: &mut BytesMut, n: u16) {
    if n >= 100 {
        out.extend_from_slice(&[b'0' + (n / 100 % 10) as u8]);
    }
    if n >= 10 {
        out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8]);
    }
    out.extend_from_slice(&[b'0' + (n % 10) as u8]);
}

fn itoa_3(n: u16) -> [u8; 3] {
    [
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]
}

/// Replies an application commonly chooses for its decisions.
pub mod replies {
    use super::*;

    fn r(code: u16, e: (u8, u16, u16), text: &'static str) -> Reply<'static> {
        Reply::with_lines(
            ReplyCode::new(code).unwrap_or_else(|| unreachable!("fixed codes are valid")),
            EnhancedCode::new(e.0, e.1, e.2),
            vec![text.into()],
        )
        .unwrap_or_else(|_| unreachable!("fixed replies are valid"))
    }

    /// `550 5.1.1` No such user.
    pub fn no_such_user() -> Reply<'static> {
        r(550, (5, 1, 1), "No such user here")
    }

    /// `550 5.7.1` Relaying denied.
    pub fn relay_denied() -> Reply<'static> {
        r(550, (5, 7, 1), "Relaying denied")
    }

    /// `535 5.7.8` Authentication credentials invalid.
    pub fn auth_failed() -> Reply<'static> {
        r(535, (5, 7, 8), "Authentication credentials invalid")
    }

    /// `553 5.7.1` Sender address not owned by the authenticated user.
    pub fn sender_not_owned() -> Reply<'static> {
        r(
            553,
            (5, 7, 1),
            "Sender address not owned by authenticated user",
        )
    }

    /// `451 4.3.0` Local error, try again later.
    pub fn local_error() -> Reply<'static> {
        r(451, (4, 3, 0), "Local error in processing, try again later")
    }

    /// `452 4.2.2` Mailbox full.
    pub fn mailbox_full() -> Reply<'static> {
        r(452, (4, 2, 2), "Mailbox full")
    }
}
