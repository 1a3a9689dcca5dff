//! The POP3 server side as a sans-IO state machine, with the session API
//! every mailkit session shares ([`session_core::Session`]):
//! `handle_input`, `handle_eof`, `handle_timeout`, `poll_output`,
//! `poll_timeout`, and decisions answered with tokens (`accept`, `reject`
//! and the POP3 answers [`Session::open_maildrop`],
//! [`Session::send_message`], [`Session::scram_credentials`]).
//!
//! A decision cannot be lost: an answer that does not fit gives the token
//! back in its [`AnswerError`], and a decision left pending past
//! [`Timeouts::decision`] is answered by the session itself with
//! `-ERR [SYS/TEMP]`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sasl::server::{ServerExchange, ServerStep};
use sasl::{Identity, Mechanism, Response, ScramCredentials, Secret};
use session_core::{BareLineEnding, Consumed, Decisions, Inbox, LineFramer};

pub use session_core::{AnswerError, ApiMisuse, Token};

use crate::command::{Command, CommandError, MAX_COMMAND_LINE};
use crate::response::{RespCode, Status, encode_multiline, top};

/// What one session may cost. There is no "unlimited".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line, CRLF included. Default 255 (RFC 2449 §4).
    pub command_line: usize,
    /// Errors the client may make (unknown or malformed commands, commands
    /// out of state, missing messages) before the session closes. Default
    /// 10.
    pub max_errors: u32,
    /// Failed logins before the session closes. Default 3.
    pub max_auth_failures: u32,
    /// Unprocessed input held while the application decides: a read on
    /// top of held input that would pass it closes the session (the rest of
    /// the one read that raised the decision is held whole). Default 64 KiB.
    pub max_buffered_input: usize,
    /// Responses are handed out once this many bytes are buffered, even in
    /// the middle of a pipelined batch. Default 16 KiB.
    pub max_buffered_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_line: MAX_COMMAND_LINE,
            max_errors: 10,
            max_auth_failures: 3,
            max_buffered_input: 64 * 1024,
            max_buffered_output: 16 * 1024,
        }
    }
}

/// How long the server waits for the client and for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Inactivity autologout. Default 10 minutes (RFC 1939 §3: at least
    /// 10 minutes).
    pub command: Duration,
    /// Waiting for the application to answer a decision; then the session
    /// answers `-ERR [SYS/TEMP]` on its own and a late answer gets
    /// [`ApiMisuse::Expired`]. Default 2 minutes.
    pub decision: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(600),
            decision: Duration::from_secs(120),
        }
    }
}

/// Server settings; share one between sessions with an `Arc`. Build it with
/// [`Config::new`] and change the fields you need; the defaults are in each
/// field's documentation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Host name for the APOP timestamp and SASL.
    pub hostname: String,
    /// Whether the link is secure from the start (port 995). Default false.
    pub implicit_tls: bool,
    /// Whether STLS is offered. Default true.
    pub stls: bool,
    /// Whether USER/PASS and plaintext SASL work before TLS. Default false.
    pub allow_plaintext_auth: bool,
    /// Whether APOP is offered (needs the plain password on the server).
    /// Default false.
    pub apop: bool,
    /// SASL mechanisms for AUTH. Default SCRAM-SHA-256 and PLAIN.
    pub auth_mechanisms: Vec<Mechanism>,
    /// A command line ending in a bare LF. Default
    /// [`BareLineEnding::Reject`].
    pub line_ending: BareLineEnding,
    /// Bounds. Default [`Limits::default`].
    pub limits: Limits,
    /// Timeouts. Default [`Timeouts::default`].
    pub timeouts: Timeouts,
}

impl Config {
    /// Defaults for a server called `hostname`.
    pub fn new(hostname: impl Into<String>) -> Config {
        Config {
            hostname: hostname.into(),
            implicit_tls: false,
            stls: true,
            allow_plaintext_auth: false,
            apop: false,
            auth_mechanisms: vec![Mechanism::ScramSha256, Mechanism::Plain],
            line_ending: BareLineEnding::Reject,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// A message of the maildrop, as the application lists it at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropEntry {
    size: u64,
    uidl: String,
}

/// A unique id that UIDL cannot send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a UIDL is 1-70 printable ASCII characters (0x21-0x7E)")]
pub struct InvalidUidl;

impl DropEntry {
    /// A message of `size` octets as RETR sends it (CRLF line ends, before
    /// byte-stuffing: [`crate::response::transfer_size`]) with the unique id
    /// `uidl` (1–70 characters 0x21–0x7E, RFC 1939 §7).
    pub fn new(size: u64, uidl: impl Into<String>) -> Result<DropEntry, InvalidUidl> {
        let uidl = uidl.into();
        if uidl.is_empty() || uidl.len() > 70 || !uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(InvalidUidl);
        }
        Ok(DropEntry { size, uidl })
    }

    /// The size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The unique id.
    pub fn uidl(&self) -> &str {
        &self.uidl
    }
}

/// What the session hands out: bytes, an [`Event`], or the transport steps
/// [`Output::StartTls`] and [`Output::Closed`].
pub type Output = session_core::Output<Event>;

/// How the client proves who it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginCheck {
    /// USER/PASS, or SASL PLAIN/LOGIN.
    Password(Secret<String>),
    /// APOP: `MD5(timestamp + password)` must equal `digest`; see
    /// [`LoginCheck::verify_apop`].
    Apop {
        /// The greeting's timestamp.
        timestamp: String,
        /// The client's digest.
        digest: String,
    },
    /// SASL CRAM-MD5.
    CramMd5(sasl::server::CramMd5Proof),
    /// SCRAM: proven; just authorise.
    Verified,
}

impl LoginCheck {
    /// For APOP: whether `password` produces the client's digest.
    pub fn verify_apop(timestamp: &str, digest: &str, password: &str) -> bool {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        h.update(timestamp.as_bytes());
        h.update(password.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        hex.len() == digest.len()
            && hex
                .bytes()
                .zip(digest.bytes())
                .fold(0, |a, (x, y)| a | (x ^ y))
                == 0
    }
}

/// Events, in order. Every one is a decision; [`Event::token`] reaches
/// its token from a catch-all arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Check the login; answer with [`Session::open_maildrop`] (with the
    /// snapshot of the maildrop) or [`Session::reject`].
    Login {
        /// Answer with this.
        token: Token,
        /// The user name.
        username: String,
        /// What to check.
        check: LoginCheck,
    },
    /// SCRAM: answer with [`Session::scram_credentials`].
    ScramLookup {
        /// Answer with this.
        token: Token,
        /// The user name.
        username: String,
    },
    /// RETR or TOP: answer with [`Session::send_message`] (the whole
    /// stored message; the session cuts TOP and byte-stuffs), or
    /// [`Session::reject`] if it vanished.
    Retrieve {
        /// Answer with this.
        token: Token,
        /// Index into the maildrop given at login (0-based).
        index: usize,
    },
    /// QUIT in TRANSACTION with messages marked deleted: delete them, then
    /// [`Session::accept`]; if that fails, [`Session::reject`] (nothing may
    /// be lost, RFC 1939 §6).
    Commit {
        /// Answer with this.
        token: Token,
        /// Indexes into the maildrop (0-based).
        deleted: Vec<usize>,
    },
}

impl Event {
    /// The token of the decision.
    pub fn token(&self) -> Option<&Token> {
        match self {
            Event::Login { token, .. }
            | Event::ScramLookup { token, .. }
            | Event::Retrieve { token, .. }
            | Event::Commit { token, .. } => Some(token),
        }
    }

    /// The token of the decision, taken out: a catch-all arm can still
    /// answer what it does not know.
    pub fn into_token(self) -> Option<Token> {
        match self {
            Event::Login { token, .. }
            | Event::ScramLookup { token, .. }
            | Event::Retrieve { token, .. }
            | Event::Commit { token, .. } => Some(token),
        }
    }
}

#[derive(Debug)]
enum State {
    Authorization { user: Option<String> },
    Transaction,
    AwaitTls,
    Closed,
}

#[derive(Debug)]
enum Pending {
    Login(String),
    Scram(Box<ServerExchange>),
    Retrieve(Option<u32>),
    Commit,
}

/// One POP3 server connection.
pub struct Session {
    config: Arc<Config>,
    state: State,
    auth: Option<Box<ServerExchange>>,
    framer: LineFramer,
    inbox: Inbox,
    out: BytesMut,
    queue: VecDeque<Output>,
    decisions: Decisions<Pending>,
    nonces: u64,
    maildrop: Vec<(DropEntry, bool)>,
    identity: Option<Identity>,
    tls: bool,
    utf8: bool,
    errors: u32,
    login_failures: u32,
    timestamp: String,
    entropy: [u8; 16],
    now: Instant,
    deadline: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("tls", &self.tls)
            .field("pending", &self.decisions.is_pending())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session; the greeting (with the APOP timestamp when APOP is
    /// offered) is queued. `entropy`: 16 random bytes (APOP timestamp, SASL
    /// nonces).
    pub fn new(config: Arc<Config>, now: Instant, entropy: [u8; 16]) -> Session {
        let stamp: String = entropy[..8].iter().map(|b| format!("{b:02x}")).collect();
        let timestamp = format!("<{stamp}@{}>", config.hostname);
        let mut s = Session {
            tls: config.implicit_tls,
            framer: LineFramer::new(config.limits.command_line, config.line_ending),
            inbox: Inbox::new(config.limits.max_buffered_input),
            deadline: now + config.timeouts.command,
            config,
            state: State::Authorization { user: None },
            auth: None,
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
            maildrop: Vec::new(),
            identity: None,
            utf8: false,
            errors: 0,
            login_failures: 0,
            timestamp,
            entropy,
            now,
        };
        let text = if s.config.apop {
            format!("POP3 server ready {}", s.timestamp)
        } else {
            "POP3 server ready".to_owned()
        };
        s.status(Status::ok(text));
        s.flush();
        s
    }

    // ------------------------------------------------------------ getters

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the link is secure.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Who logged in.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether the session is over (after [`Output::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether to read more from the peer: false once closed, while TLS is
    /// being set up, and while a decision is pending with input held.
    pub fn wants_input(&self) -> bool {
        !matches!(self.state, State::Closed | State::AwaitTls)
            && (!self.decisions.is_pending() || self.inbox.is_empty())
    }

    /// Bytes of input held unprocessed (while a decision is pending).
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
        if matches!(self.state, State::Closed | State::AwaitTls) {
            return;
        }
        self.deadline = now + self.config.timeouts.command;
        let waiting = self.decisions.is_pending();
        let mut inbox = std::mem::replace(&mut self.inbox, Inbox::new(0));
        let held = inbox.feed(bytes, waiting, |b| self.consume(b));
        self.inbox = inbox;
        if held.is_err() {
            self.overflow();
        }
        self.after_run();
    }

    /// The client went away: nothing is deleted (RFC 1939 §6).
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        if !self.is_closed() {
            self.close();
        }
    }

    /// Time passed: a decision past its deadline is answered with
    /// `-ERR [SYS/TEMP]`; an idle client past its deadline is logged out
    /// (nothing deleted).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if self.decisions.is_pending() {
            if let Some(p) = self.decisions.expire(now) {
                self.decision_timed_out(p);
                self.resume();
            }
            return;
        }
        if now >= self.deadline {
            // Autologout: no UPDATE state, nothing deleted.
            self.status(Status::err("autologout; idle for too long"));
            self.close();
        }
    }

    /// The next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When to call `handle_timeout`: the pending decision's deadline, or
    /// the autologout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        Some(self.decisions.deadline().unwrap_or(self.deadline))
    }

    /// TLS is up after [`Output::StartTls`].
    pub fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        if !matches!(self.state, State::AwaitTls) {
            return Err(ApiMisuse::NoStartTls);
        }
        self.tls = true;
        self.now = now;
        self.deadline = now + self.config.timeouts.command;
        self.state = State::Authorization { user: None };
        self.framer.reset();
        self.inbox.clear();
        Ok(())
    }

    // ---------------------------------------------------------- decisions

    /// Login accepted: the maildrop as it is now (a snapshot; later
    /// deliveries do not show).
    pub fn open_maildrop(
        &mut self,
        token: Token,
        maildrop: Vec<DropEntry>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Login(_) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if let (Pending::Login(user), false) = (pending, self.is_closed()) {
            let n = maildrop.len();
            let size: u64 = maildrop.iter().map(|m| m.size).sum();
            self.maildrop = maildrop.into_iter().map(|m| (m, false)).collect();
            self.identity = Some(Identity {
                username: user,
                authzid: None,
            });
            self.state = State::Transaction;
            self.status(Status::ok(format!(
                "maildrop has {n} messages ({size} octets)"
            )));
        }
        self.resume();
        Ok(())
    }

    /// The positive answer to [`Event::Commit`]: the deletions are done.
    pub fn accept(&mut self, token: Token) -> Result<(), AnswerError> {
        self.decisions.take_if(token, |p| match p {
            Pending::Commit => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if !self.is_closed() {
            self.status(Status::ok("bye"));
            self.close();
        }
        Ok(())
    }

    /// The negative answer to any decision: a failed login (`[AUTH]`), a
    /// maildrop in use (`[IN-USE]`), a vanished message, a failed commit
    /// (the session then closes; nothing may be lost, RFC 1939 §6).
    pub fn reject(&mut self, token: Token, status: Status) -> Result<(), AnswerError> {
        let pending = self.decisions.take(token)?;
        if self.is_closed() {
            return Ok(());
        }
        let status = if status.is_ok() {
            Status::new(false, status.code().cloned(), status.text())
                .unwrap_or_else(|_| Status::err(""))
        } else {
            status
        };
        match pending {
            Pending::Login(_) | Pending::Scram(..) => {
                self.status(status);
                self.login_failed();
            }
            Pending::Retrieve(_) => self.status(status),
            Pending::Commit => {
                self.status(status);
                self.close();
            }
        }
        self.resume();
        Ok(())
    }

    /// The bytes of the message asked for by [`Event::Retrieve`].
    pub fn send_message(&mut self, token: Token, message: &[u8]) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Retrieve(_) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if let (Pending::Retrieve(lines), false) = (pending, self.is_closed()) {
            let body = match lines {
                Some(n) => top(message, n),
                None => message,
            };
            self.status(Status::ok("message follows"));
            encode_multiline(body, &mut self.out);
        }
        self.resume();
        Ok(())
    }

    /// The stored keys for [`Event::ScramLookup`] (`None`: no such user).
    pub fn scram_credentials(
        &mut self,
        token: Token,
        creds: Option<ScramCredentials>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Scram(_) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if let (Pending::Scram(mut exchange), false) = (pending, self.is_closed()) {
            let step = exchange.scram_credentials(creds);
            self.sasl_step(exchange, step);
        }
        self.resume();
        Ok(())
    }

    // ---------------------------------------------------------- internals

    fn decision_timed_out(&mut self, pending: Pending) {
        let busy = Status::err_code(RespCode::SysTemp, "server busy, try again later");
        match pending {
            Pending::Login(_) | Pending::Scram(_) | Pending::Retrieve(_) => self.status(busy),
            Pending::Commit => {
                self.status(busy);
                self.close();
            }
        }
    }

    fn run_inbox(&mut self) {
        let mut inbox = std::mem::replace(&mut self.inbox, Inbox::new(0));
        inbox.drain(|b| self.consume(b));
        self.inbox = inbox;
    }

    fn consume(&mut self, input: &[u8]) -> Consumed {
        let used = self.run(input);
        Consumed {
            used,
            keep: !matches!(self.state, State::Closed | State::AwaitTls),
        }
    }

    fn overflow(&mut self) {
        self.inbox.clear();
        self.status(Status::err("too much pipelined input"));
        self.close();
    }

    fn resume(&mut self) {
        if !self.decisions.is_pending() && !self.is_closed() && !self.inbox.is_empty() {
            self.run_inbox();
        }
        self.after_run();
    }

    fn after_run(&mut self) {
        if !self.decisions.is_pending() || self.out.len() >= self.config.limits.max_buffered_output
        {
            self.flush();
        }
    }

    fn token(&mut self, p: Pending) -> Token {
        self.decisions
            .issue(self.now, self.config.timeouts.decision, p)
    }

    fn event(&mut self, e: Event) {
        self.queue.push_back(Output::Event(e));
    }

    fn status(&mut self, s: Status) {
        s.encode(&mut self.out);
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let b = std::mem::take(&mut self.out).freeze();
            self.queue.push_back(Output::Transmit(b));
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.inbox.clear();
        self.decisions.clear();
        self.flush();
        self.queue.push_back(Output::Closed);
    }

    /// Every error the client makes goes through here: the response, then
    /// the count against [`Limits::max_errors`].
    fn peer_error(&mut self, text: &str) {
        self.status(Status::err(text));
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors && !self.is_closed() {
            self.status(Status::err("too many errors"));
            self.close();
        }
    }

    fn login_failed(&mut self) {
        self.login_failures += 1;
        if self.login_failures >= self.config.limits.max_auth_failures {
            self.status(Status::err_code(RespCode::Auth, "too many failed logins"));
            self.close();
            return;
        }
        self.count_error();
    }

    fn plaintext_ok(&self) -> bool {
        self.tls || self.config.allow_plaintext_auth
    }

    /// Processes as much of `input` as possible; returns bytes consumed.
    fn run(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len()
            && !self.decisions.is_pending()
            && !matches!(self.state, State::Closed | State::AwaitTls)
        {
            let mut framer =
                std::mem::replace(&mut self.framer, LineFramer::new(2, BareLineEnding::Reject));
            let (used, line) = framer.push(&input[pos..]);
            pos += used;
            if let Some(line) = line {
                match line {
                    Ok(l) => self.line(l),
                    Err(e) => {
                        self.auth = None;
                        self.peer_error(match CommandError::from(e) {
                            CommandError::LineTooLong => "line too long",
                            _ => "invalid characters in command",
                        });
                    }
                }
                if self.out.len() >= self.config.limits.max_buffered_output {
                    self.flush();
                }
            }
            self.framer = framer;
        }
        if matches!(self.state, State::AwaitTls) {
            self.framer.reset();
            pos = input.len();
        }
        pos
    }

    fn line(&mut self, line: &[u8]) {
        if let Some(mut exchange) = self.auth.take() {
            match sasl::decode_response(line) {
                Ok(Response::Cancel) => self.peer_error("authentication cancelled"),
                Err(_) => self.peer_error("invalid base64"),
                Ok(Response::Data(d)) => {
                    let step = exchange.respond(&d);
                    self.sasl_step(exchange, step);
                }
            }
            return;
        }
        match Command::parse_line(line) {
            Ok(cmd) => self.command(cmd),
            Err(CommandError::Unknown) => self.peer_error("unknown command"),
            Err(_) => self.peer_error("syntax error"),
        }
    }

    fn command(&mut self, cmd: Command<'_>) {
        let authorization = matches!(self.state, State::Authorization { .. });
        match cmd {
            Command::Capa => {
                let mut caps = vec![
                    "TOP".to_owned(),
                    "UIDL".to_owned(),
                    "RESP-CODES".to_owned(),
                    "PIPELINING".to_owned(),
                    "AUTH-RESP-CODE".to_owned(),
                    "UTF8".to_owned(),
                ];
                if authorization && self.plaintext_ok() {
                    caps.push("USER".into());
                }
                let mechs: Vec<&str> = self
                    .config
                    .auth_mechanisms
                    .iter()
                    .filter(|m| !m.is_plaintext() || self.plaintext_ok())
                    .map(|m| m.name())
                    .collect();
                if authorization && !mechs.is_empty() {
                    caps.push(format!("SASL {}", mechs.join(" ")));
                }
                if authorization && self.config.stls && !self.tls {
                    caps.push("STLS".into());
                }
                self.status(Status::ok("capability list follows"));
                encode_multiline(caps.join("\r\n").as_bytes(), &mut self.out);
            }
            Command::Noop if !authorization => self.status(Status::ok("")),
            Command::Quit => {
                if authorization {
                    self.status(Status::ok("bye"));
                    self.close();
                    return;
                }
                let deleted: Vec<usize> = self
                    .maildrop
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, d))| *d)
                    .map(|(i, _)| i)
                    .collect();
                if deleted.is_empty() {
                    self.status(Status::ok("bye"));
                    self.close();
                } else {
                    let token = self.token(Pending::Commit);
                    self.event(Event::Commit { token, deleted });
                }
            }
            Command::Stls => {
                if !authorization || self.tls || !self.config.stls {
                    self.peer_error("STLS not available now");
                    return;
                }
                self.status(Status::ok("begin TLS negotiation"));
                self.flush();
                self.state = State::AwaitTls;
                self.inbox.clear();
                self.queue.push_back(Output::StartTls);
            }
            Command::Utf8 => {
                self.utf8 = true;
                self.status(Status::ok("UTF8 enabled"));
            }
            Command::User(name) if authorization => {
                if !self.plaintext_ok() {
                    self.peer_error("USER/PASS need TLS; use STLS first");
                    return;
                }
                self.state = State::Authorization {
                    user: Some(name.as_str().to_owned()),
                };
                self.status(Status::ok("send PASS"));
            }
            Command::Pass(pw) if authorization => {
                let State::Authorization { user: Some(user) } =
                    std::mem::replace(&mut self.state, State::Authorization { user: None })
                else {
                    self.peer_error("USER first");
                    return;
                };
                let token = self.token(Pending::Login(user.clone()));
                self.event(Event::Login {
                    token,
                    username: user,
                    check: LoginCheck::Password(Secret::new(pw.expose().as_str().to_owned())),
                });
            }
            Command::Apop { name, digest } if authorization => {
                if !self.config.apop {
                    self.peer_error("APOP not available");
                    return;
                }
                let name = name.as_str().to_owned();
                let token = self.token(Pending::Login(name.clone()));
                let timestamp = self.timestamp.clone();
                self.event(Event::Login {
                    token,
                    username: name,
                    check: LoginCheck::Apop {
                        timestamp,
                        digest: digest.as_str().to_owned(),
                    },
                });
            }
            Command::Auth {
                mechanism,
                initial_response,
            } if authorization => self.auth_command(
                mechanism.as_ref().map(|m| m.as_str()),
                initial_response.as_ref().map(|ir| ir.expose().as_str()),
            ),
            Command::Stat if !authorization => {
                let live: Vec<&DropEntry> = self
                    .maildrop
                    .iter()
                    .filter(|(_, d)| !*d)
                    .map(|(m, _)| m)
                    .collect();
                let size: u64 = live.iter().map(|m| m.size).sum();
                self.status(Status::ok(format!("{} {size}", live.len())));
            }
            Command::List(n) | Command::Uidl(n) if !authorization => {
                let uidl = matches!(cmd, Command::Uidl(_));
                let show = |i: usize, m: &DropEntry| {
                    if uidl {
                        format!("{} {}", i + 1, m.uidl)
                    } else {
                        format!("{} {}", i + 1, m.size)
                    }
                };
                match n {
                    Some(n) => match self.message(n) {
                        Some(i) => {
                            let text = show(i, &self.maildrop[i].0);
                            self.status(Status::ok(text));
                        }
                        None => self.peer_error("no such message"),
                    },
                    None => {
                        let lines: Vec<String> = self
                            .maildrop
                            .iter()
                            .enumerate()
                            .filter(|(_, (_, d))| !*d)
                            .map(|(i, (m, _))| show(i, m))
                            .collect();
                        self.status(Status::ok(format!("{} messages", lines.len())));
                        encode_multiline(lines.join("\r\n").as_bytes(), &mut self.out);
                    }
                }
            }
            Command::Retr(n) | Command::Top(n, _) if !authorization => {
                let lines = if let Command::Top(_, m) = cmd {
                    Some(m)
                } else {
                    None
                };
                match self.message(n) {
                    Some(index) => {
                        let token = self.token(Pending::Retrieve(lines));
                        self.event(Event::Retrieve { token, index });
                    }
                    None => self.peer_error("no such message"),
                }
            }
            Command::Dele(n) if !authorization => match self.message(n) {
                Some(i) => {
                    self.maildrop[i].1 = true;
                    self.status(Status::ok(format!("message {n} deleted")));
                }
                None => self.peer_error("no such message"),
            },
            Command::Rset if !authorization => {
                for m in &mut self.maildrop {
                    m.1 = false;
                }
                self.status(Status::ok(format!(
                    "maildrop has {} messages",
                    self.maildrop.len()
                )));
            }
            _ => self.peer_error("command not valid in this state"),
        }
    }

    /// The index of live message `n` (1-based), if any.
    fn message(&self, n: u32) -> Option<usize> {
        let i = (n as usize).checked_sub(1)?;
        self.maildrop.get(i).filter(|(_, d)| !*d).map(|_| i)
    }

    fn auth_command(&mut self, mechanism: Option<&str>, initial: Option<&str>) {
        let Some(name) = mechanism else {
            self.status(Status::ok("mechanisms follow"));
            let names: Vec<&str> = self
                .config
                .auth_mechanisms
                .iter()
                .map(|m| m.name())
                .collect();
            encode_multiline(names.join("\r\n").as_bytes(), &mut self.out);
            return;
        };
        let Some(mech) =
            Mechanism::from_name(name).filter(|m| self.config.auth_mechanisms.contains(m))
        else {
            self.peer_error("unsupported mechanism");
            return;
        };
        if mech.is_plaintext() && !self.plaintext_ok() {
            self.peer_error("mechanism needs TLS; use STLS first");
            return;
        }
        let initial = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(t) => match sasl::decode_base64(t) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.peer_error("invalid base64");
                    return;
                }
            },
        };
        let mut nonce = self.entropy.to_vec();
        nonce.extend_from_slice(&self.nonces.to_be_bytes());
        self.nonces += 1;
        let mut exchange = Box::new(ServerExchange::new(mech, &nonce, &self.config.hostname));
        let step = exchange.start(initial.as_deref());
        self.sasl_step(exchange, step);
    }

    fn sasl_step(&mut self, exchange: Box<ServerExchange>, step: ServerStep) {
        match step {
            ServerStep::Challenge(c) => {
                self.out.extend_from_slice(b"+ ");
                self.out.extend_from_slice(sasl::encode(&c).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.auth = Some(exchange);
            }
            ServerStep::Verify(creds) => {
                let username = creds.username().to_owned();
                let check = match creds {
                    sasl::server::Credentials::Password { password, .. } => {
                        LoginCheck::Password(password)
                    }
                    sasl::server::Credentials::CramMd5 { proof, .. } => LoginCheck::CramMd5(proof),
                    _ => {
                        self.status(Status::err_code(RespCode::Auth, "authentication failed"));
                        return;
                    }
                };
                let token = self.token(Pending::Login(username.clone()));
                self.event(Event::Login {
                    token,
                    username,
                    check,
                });
            }
            ServerStep::LookupScram { username, .. } => {
                let token = self.token(Pending::Scram(exchange));
                self.event(Event::ScramLookup { token, username });
            }
            ServerStep::Success(id) => {
                let token = self.token(Pending::Login(id.username.clone()));
                self.event(Event::Login {
                    token,
                    username: id.username,
                    check: LoginCheck::Verified,
                });
            }
            _ => {
                self.status(Status::err_code(RespCode::Auth, "authentication failed"));
                self.login_failed();
            }
        }
    }
}

session_core::forward_session!(Session, Event);
