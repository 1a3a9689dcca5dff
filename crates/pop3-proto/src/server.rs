//! The POP3 server side as a sans-IO state machine, with the session API
//! of `smtp_proto::server::Session`: `handle_input`, `handle_eof`,
//! `handle_timeout`, `poll_output`, `poll_timeout`, and decisions answered
//! with tokens.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sasl::server::{ServerExchange, ServerStep};
use sasl::{Identity, Mechanism, Response, ScramCredentials, Secret};
use smtp_proto::{LineEnding, LineFramer};

use crate::command::{Command, CommandError, MAX_COMMAND_LINE};
use crate::response::{RespCode, Status, encode_multiline, top};

/// Server settings; share one between sessions with an `Arc`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host name for the APOP timestamp.
    pub hostname: String,
    /// Whether the link is secure from the start (port 995).
    pub implicit_tls: bool,
    /// Whether STLS is offered.
    pub stls: bool,
    /// Whether USER/PASS and plaintext SASL work before TLS.
    pub allow_plaintext_auth: bool,
    /// Whether APOP is offered (needs the plain password on the server).
    pub apop: bool,
    /// SASL mechanisms for AUTH.
    pub auth_mechanisms: Vec<Mechanism>,
    /// Longest command line (RFC 2449: 255).
    pub max_line: usize,
    /// Bad commands before the session closes.
    pub max_errors: u32,
    /// Failed logins before the session closes.
    pub max_login_failures: u32,
    /// Inactivity autologout (RFC 1939: at least 10 minutes).
    pub autologout: Duration,
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
            max_line: MAX_COMMAND_LINE,
            max_errors: 10,
            max_login_failures: 3,
            autologout: Duration::from_secs(600),
        }
    }
}

/// A message of the maildrop, as the application lists it at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropEntry {
    /// Size as RETR sends it (CRLF line ends, before byte-stuffing).
    pub size: u64,
    /// The unique id for UIDL (printable ASCII 0x21–0x7E, 1–70 octets).
    pub uidl: String,
}

/// What the session hands out.
#[derive(Debug)]
pub enum Output {
    /// Bytes to write.
    Transmit(Bytes),
    /// Something to act on.
    Event(Event),
}

/// A decision owed to the session.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a decision must be answered or the session waits forever"]
pub struct Token {
    id: u64,
}

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

/// Events, in order.
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
    /// Flush, start TLS, then call [`Session::tls_established`].
    StartTls,
    /// Flush and close.
    Closed,
}

/// The caller used the session wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// Not the pending decision's token, or the wrong kind of answer.
    #[error("token does not match the pending decision")]
    WrongToken,
    /// No STARTTLS in progress.
    #[error("no STLS in progress")]
    NoStartTls,
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
    inbox: BytesMut,
    out: BytesMut,
    queue: VecDeque<Output>,
    pending: Option<(u64, Pending)>,
    next_token: u64,
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
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session; the greeting (with the APOP timestamp) is queued.
    /// `entropy`: 16 random bytes (APOP timestamp, SASL nonces).
    pub fn new(config: Arc<Config>, now: Instant, entropy: [u8; 16]) -> Session {
        let stamp: String = entropy[..8].iter().map(|b| format!("{b:02x}")).collect();
        let timestamp = format!("<{stamp}@{}>", config.hostname);
        let mut s = Session {
            tls: config.implicit_tls,
            framer: LineFramer::new(config.max_line, LineEnding::Strict),
            deadline: now + config.autologout,
            config,
            state: State::Authorization { user: None },
            auth: None,
            inbox: BytesMut::new(),
            out: BytesMut::new(),
            queue: VecDeque::new(),
            pending: None,
            next_token: 1,
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

    /// Whether the link is secure.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Who logged in.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether to keep reading (false while a decision holds input back
    /// beyond 64 KiB, or once closed).
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && self.inbox.len() < 64 * 1024
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.now = now;
        if matches!(self.state, State::Closed | State::AwaitTls) {
            return;
        }
        self.deadline = now + self.config.autologout;
        self.inbox.extend_from_slice(bytes);
        self.run();
    }

    /// The client went away: nothing is deleted (RFC 1939 §6).
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        if !self.is_closed() {
            self.close();
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() || self.pending.is_some() || now < self.deadline {
            return;
        }
        // Autologout: no UPDATE state, nothing deleted.
        self.status(Status::err("autologout; idle for too long"));
        self.close();
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When to call `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_closed() && self.pending.is_none()).then_some(self.deadline)
    }

    /// TLS is up after [`Event::StartTls`].
    pub fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        if !matches!(self.state, State::AwaitTls) {
            return Err(ApiMisuse::NoStartTls);
        }
        self.tls = true;
        self.now = now;
        self.state = State::Authorization { user: None };
        self.framer.reset();
        self.inbox.clear();
        Ok(())
    }

    // ---------------------------------------------------------- decisions

    fn take(&mut self, token: &Token) -> Result<Pending, ApiMisuse> {
        match self.pending.take() {
            Some((id, p)) if id == token.id => Ok(p),
            other => {
                self.pending = other;
                Err(ApiMisuse::WrongToken)
            }
        }
    }

    /// Login accepted: the maildrop as it is now (a snapshot; later
    /// deliveries do not show).
    pub fn open_maildrop(
        &mut self,
        token: Token,
        maildrop: Vec<DropEntry>,
    ) -> Result<(), ApiMisuse> {
        let user = match self.take(&token)? {
            Pending::Login(u) => u,
            other => {
                self.pending = Some((token.id, other));
                return Err(ApiMisuse::WrongToken);
            }
        };
        if !self.is_closed() {
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

    /// A positive answer to a [`Event::Commit`].
    pub fn accept(&mut self, token: Token) -> Result<(), ApiMisuse> {
        match self.take(&token)? {
            Pending::Commit if self.is_closed() => Ok(()),
            Pending::Commit => {
                self.status(Status::ok("bye"));
                self.close();
                Ok(())
            }
            other => {
                self.pending = Some((token.id, other));
                Err(ApiMisuse::WrongToken)
            }
        }
    }

    /// A negative answer to any decision: a failed login (`[AUTH]`), a
    /// maildrop in use (`[IN-USE]`), a vanished message, a failed commit.
    pub fn reject(
        &mut self,
        token: Token,
        code: Option<RespCode>,
        text: &str,
    ) -> Result<(), ApiMisuse> {
        let pending = self.take(&token)?;
        if self.is_closed() {
            return Ok(());
        }
        let status = Status {
            ok: false,
            code,
            text: text.chars().filter(|c| !c.is_control()).collect(),
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
    pub fn send_message(&mut self, token: Token, message: &[u8]) -> Result<(), ApiMisuse> {
        let lines = match self.take(&token)? {
            Pending::Retrieve(lines) => lines,
            other => {
                self.pending = Some((token.id, other));
                return Err(ApiMisuse::WrongToken);
            }
        };
        if self.is_closed() {
            return Ok(());
        }
        let body = match lines {
            Some(n) => top(message, n),
            None => message,
        };
        self.status(Status::ok("message follows"));
        encode_multiline(body, &mut self.out);
        self.resume();
        Ok(())
    }

    /// The stored keys for [`Event::ScramLookup`] (`None`: no such user).
    pub fn scram_credentials(
        &mut self,
        token: Token,
        creds: Option<ScramCredentials>,
    ) -> Result<(), ApiMisuse> {
        let mut exchange = match self.take(&token)? {
            Pending::Scram(e) => e,
            other => {
                self.pending = Some((token.id, other));
                return Err(ApiMisuse::WrongToken);
            }
        };
        if self.is_closed() {
            return Ok(());
        }
        let step = exchange.scram_credentials(creds);
        self.sasl_step(exchange, step);
        self.resume();
        Ok(())
    }

    // ---------------------------------------------------------- internals

    fn resume(&mut self) {
        if self.pending.is_none() && !self.is_closed() {
            self.run();
        } else {
            self.flush();
        }
    }

    fn token(&mut self, p: Pending) -> Token {
        let id = self.next_token;
        self.next_token += 1;
        self.pending = Some((id, p));
        Token { id }
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
        self.inbox = BytesMut::new();
        self.flush();
        self.queue.push_back(Output::Event(Event::Closed));
    }

    fn bad(&mut self, text: &str) {
        self.status(Status::err(text));
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.status(Status::err("too many errors"));
            self.close();
        }
    }

    fn login_failed(&mut self) {
        self.login_failures += 1;
        if self.login_failures >= self.config.max_login_failures {
            self.status(Status::err_code(RespCode::Auth, "too many failed logins"));
            self.close();
        }
    }

    fn plaintext_ok(&self) -> bool {
        self.tls || self.config.allow_plaintext_auth
    }

    fn run(&mut self) {
        let input = std::mem::take(&mut self.inbox);
        let mut pos = 0;
        while pos < input.len()
            && self.pending.is_none()
            && !matches!(self.state, State::Closed | State::AwaitTls)
        {
            let mut framer =
                std::mem::replace(&mut self.framer, LineFramer::new(2, LineEnding::Strict));
            let (used, line) = framer.push(&input[pos..]);
            pos += used;
            if let Some(line) = line {
                match line {
                    Ok(l) => self.line(l),
                    Err(e) => {
                        self.auth = None;
                        self.bad(match CommandError::from(e) {
                            CommandError::LineTooLong => "line too long",
                            _ => "invalid characters in command",
                        });
                    }
                }
            }
            self.framer = framer;
        }
        if matches!(self.state, State::AwaitTls) {
            self.framer.reset();
            pos = input.len();
        }
        if !self.is_closed() && !matches!(self.state, State::AwaitTls) {
            self.inbox = BytesMut::from(&input[pos..]);
        }
        if self.pending.is_none() || self.out.len() > 16 * 1024 {
            self.flush();
        }
    }

    fn line(&mut self, line: &[u8]) {
        if let Some(mut exchange) = self.auth.take() {
            match sasl::decode_response(line) {
                Ok(Response::Cancel) => self.status(Status::err("authentication cancelled")),
                Err(_) => self.status(Status::err("invalid base64")),
                Ok(Response::Data(d)) => {
                    let step = exchange.respond(&d);
                    self.sasl_step(exchange, step);
                }
            }
            return;
        }
        match Command::parse_line(line) {
            Ok(cmd) => self.command(cmd),
            Err(CommandError::Unknown) => self.bad("unknown command"),
            Err(_) => self.bad("syntax error"),
        }
    }

    fn command(&mut self, cmd: Command) {
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
                    self.queue
                        .push_back(Output::Event(Event::Commit { token, deleted }));
                }
            }
            Command::Stls => {
                if !authorization || self.tls || !self.config.stls {
                    self.status(Status::err("STLS not available now"));
                    return;
                }
                self.status(Status::ok("begin TLS negotiation"));
                self.flush();
                self.state = State::AwaitTls;
                self.queue.push_back(Output::Event(Event::StartTls));
            }
            Command::Utf8 => {
                self.utf8 = true;
                self.status(Status::ok("UTF8 enabled"));
            }
            Command::User(name) if authorization => {
                if !self.plaintext_ok() {
                    self.status(Status::err("USER/PASS need TLS; use STLS first"));
                    return;
                }
                self.state = State::Authorization { user: Some(name) };
                self.status(Status::ok("send PASS"));
            }
            Command::Pass(pw) if authorization => {
                let State::Authorization { user: Some(user) } =
                    std::mem::replace(&mut self.state, State::Authorization { user: None })
                else {
                    self.bad("USER first");
                    return;
                };
                let token = self.token(Pending::Login(user.clone()));
                self.queue.push_back(Output::Event(Event::Login {
                    token,
                    username: user,
                    check: LoginCheck::Password(Secret::new(pw)),
                }));
            }
            Command::Apop { name, digest } if authorization => {
                if !self.config.apop {
                    self.bad("APOP not available");
                    return;
                }
                let token = self.token(Pending::Login(name.clone()));
                let timestamp = self.timestamp.clone();
                self.queue.push_back(Output::Event(Event::Login {
                    token,
                    username: name,
                    check: LoginCheck::Apop { timestamp, digest },
                }));
            }
            Command::Auth {
                mechanism,
                initial_response,
            } if authorization => self.auth_command(mechanism, initial_response),
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
                        None => self.status(Status::err("no such message")),
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
                        self.queue
                            .push_back(Output::Event(Event::Retrieve { token, index }));
                    }
                    None => self.status(Status::err("no such message")),
                }
            }
            Command::Dele(n) if !authorization => match self.message(n) {
                Some(i) => {
                    self.maildrop[i].1 = true;
                    self.status(Status::ok(format!("message {n} deleted")));
                }
                None => self.status(Status::err("no such message")),
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
            _ => self.bad("command not valid in this state"),
        }
    }

    /// The index of live message `n` (1-based), if any.
    fn message(&self, n: u32) -> Option<usize> {
        let i = (n as usize).checked_sub(1)?;
        self.maildrop.get(i).filter(|(_, d)| !*d).map(|_| i)
    }

    fn auth_command(&mut self, mechanism: Option<String>, initial: Option<String>) {
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
            Mechanism::from_name(&name).filter(|m| self.config.auth_mechanisms.contains(m))
        else {
            self.status(Status::err("unsupported mechanism"));
            return;
        };
        if mech.is_plaintext() && !self.plaintext_ok() {
            self.status(Status::err("mechanism needs TLS; use STLS first"));
            return;
        }
        let initial = match initial.as_deref() {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(t) => match sasl::decode_base64(t) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.status(Status::err("invalid base64"));
                    return;
                }
            },
        };
        let mut nonce = self.entropy.to_vec();
        nonce.extend_from_slice(&self.next_token.to_be_bytes());
        self.next_token += 1;
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
                self.queue.push_back(Output::Event(Event::Login {
                    token,
                    username,
                    check,
                }));
            }
            ServerStep::LookupScram { username, .. } => {
                let token = self.token(Pending::Scram(exchange));
                self.queue
                    .push_back(Output::Event(Event::ScramLookup { token, username }));
            }
            ServerStep::Success(id) => {
                let token = self.token(Pending::Login(id.username.clone()));
                self.queue.push_back(Output::Event(Event::Login {
                    token,
                    username: id.username,
                    check: LoginCheck::Verified,
                }));
            }
            _ => {
                self.status(Status::err_code(RespCode::Auth, "authentication failed"));
                self.login_failed();
            }
        }
    }
}
