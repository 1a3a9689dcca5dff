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
use std::time::Instant;

use bytes::BytesMut;
use sasl::server::ServerExchange;
use sasl::{Identity, ScramCredentials};
use session_core::{BareLineEnding, Consumed, Decisions, Inbox, LineFramer};

pub use session_core::{AnswerError, ApiMisuse, Token};

use crate::command::CommandError;
use crate::response::{RespCode, Status, encode_multiline, top};

mod commands;
mod config;
mod events;

pub use config::{Config, Limits, Timeouts};
pub use events::{DropEntry, Event, InvalidUidl, LoginCheck, Output};

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
            deadline: session_core::deadline_after(now, config.timeouts.command),
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
        self.deadline = session_core::deadline_after(now, self.config.timeouts.command);
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
        self.deadline = session_core::deadline_after(now, self.config.timeouts.command);
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
            let size: u64 = maildrop.iter().map(|m| m.size()).sum();
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
}

session_core::forward_session!(Session, Event);
