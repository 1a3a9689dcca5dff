//! The POP3 client side, with the session API every mailkit session shares
//! ([`session_core::Session`]): queue commands with [`Session::send`], feed
//! what the server sent to [`Session::handle_input`], and take bytes to
//! write and the server's responses from [`Session::poll_output`], however
//! the bytes are split.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use pop3_proto::Command;
//! use pop3_proto::client::{Config, Event, Output, Session};
//!
//! let now = Instant::now();
//! let mut client = Session::new(Arc::new(Config::default()), now);
//! client.send(now, &Command::Stat);
//! client.send(now, &Command::Retr(1));
//! let mut wire = Vec::new();
//! let mut events = Vec::new();
//! for read in [&b"+OK ready\r\n+OK 1 5\r\n+OK\r\n..hi\r"[..], b"\n.\r\n"] {
//!     client.handle_input(now, read);
//!     while let Some(out) = client.poll_output() {
//!         match out {
//!             Output::Transmit(b) => wire.extend_from_slice(&b),
//!             Output::Event(e) => events.push(e),
//!             Output::StartTls | Output::Compress | Output::Closed => unreachable!(),
//!         }
//!     }
//! }
//! assert_eq!(wire, b"STAT\r\nRETR 1\r\n");
//! assert!(matches!(&events[0], Event::Greeting(s) if s.is_ok()));
//! assert!(matches!(&events[1], Event::Response { status, body: None } if status.text() == "1 5"));
//! assert!(matches!(&events[2], Event::Response { body: Some(b), .. } if &b[..] == b".hi\r\n"));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use session_core::{BareLineEnding, BodyProgress, DataDecoder, LineFramer};

pub use session_core::ApiMisuse;

use crate::command::{Command, CommandError, Word};
use crate::response::{ResponseError, Status};

/// What one client session may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest response line, CRLF included. Default 4096 (RFC 2449 allows
    /// 512; real servers send longer CAPA and status lines).
    pub line: usize,
    /// Largest multi-line body (RETR, LIST …) after un-stuffing. Default 64
    /// MiB.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line: 4096,
            max_body: 64 * 1024 * 1024,
        }
    }
}

/// How long the client waits for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the greeting or for the next part of a response.
    /// Default 5 minutes.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            response: Duration::from_secs(300),
        }
    }
}

/// Client settings; the defaults are in each field's documentation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// A response line or body line ending in a bare LF. Default
    /// [`BareLineEnding::Normalize`] (servers in the wild send them).
    pub line_ending: BareLineEnding,
    /// Bounds. Default [`Limits::default`].
    pub limits: Limits,
    /// Timeouts. Default [`Timeouts::default`].
    pub timeouts: Timeouts,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            line_ending: BareLineEnding::Normalize,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// What the server said, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The greeting.
    Greeting(Status),
    /// The status line, and for multi-line responses the un-stuffed body.
    Response {
        /// `+OK`/`-ERR` line.
        status: Status,
        /// The body of a multi-line `+OK` (LIST, UIDL, RETR, TOP, CAPA …).
        body: Option<Bytes>,
    },
    /// A SASL challenge (`+ base64`), still encoded: answer with
    /// [`Session::send_sasl`]. Taken only while an `AUTH` with a mechanism
    /// waits for its status; at any other time it is
    /// [`ClientError::Unexpected`].
    Continue(String),
    /// The server's output cannot be read (or it timed out); the session
    /// closes after this.
    Error(ClientError),
}

/// Why the server's output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A malformed or over-long line, or a body that cannot be read.
    #[error("malformed server response")]
    Malformed,
    /// The server spoke without being asked.
    #[error("unexpected server response")]
    Unexpected,
    /// A multi-line body over [`Limits::max_body`].
    #[error("response body over the limit")]
    TooLarge,
    /// No response within [`Timeouts::response`].
    #[error("the server did not answer in time")]
    TimedOut,
    /// The server closed the connection with responses outstanding.
    #[error("the server closed the connection")]
    Closed,
}

impl From<ResponseError> for ClientError {
    fn from(_: ResponseError) -> Self {
        ClientError::Malformed
    }
}

/// What the client bytes and events come out as.
pub type Output = session_core::Output<Event>;

#[derive(Debug)]
enum Phase {
    Line,
    Body(DataDecoder, Status, BytesMut),
    AwaitTls,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Single,
    Multi,
    Stls,
    /// An AUTH with a mechanism: SASL challenges may come before its status.
    Auth,
}

/// One POP3 client connection.
pub struct Session {
    config: Arc<Config>,
    framer: LineFramer,
    phase: Phase,
    greeted: bool,
    expect: VecDeque<Expect>,
    out: BytesMut,
    queue: VecDeque<Output>,
    tls: bool,
    deadline: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("client::Session")
            .field("phase", &self.phase)
            .field("outstanding", &self.expect.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A client connection that waits for the greeting.
    pub fn new(config: Arc<Config>, now: Instant) -> Session {
        Session {
            framer: LineFramer::new(config.limits.line, config.line_ending),
            deadline: session_core::deadline_after(now, config.timeouts.response),
            config,
            phase: Phase::Line,
            greeted: false,
            expect: VecDeque::new(),
            out: BytesMut::new(),
            queue: VecDeque::new(),
            tls: false,
        }
    }

    /// Queues a command (pipelining is fine); its bytes come out of
    /// [`Session::poll_output`]. After `STLS` is answered `+OK`, the session
    /// hands out [`Output::StartTls`].
    pub fn send(&mut self, now: Instant, cmd: &Command<'_>) {
        if self.is_closed() {
            return;
        }
        if self.expect.is_empty() && self.greeted {
            // The wait for this response starts now.
            self.deadline = session_core::deadline_after(now, self.config.timeouts.response);
        }
        let expect = match cmd {
            Command::Stls => Expect::Stls,
            Command::Auth {
                mechanism: Some(_), ..
            } => Expect::Auth,
            c if c.is_multiline() => Expect::Multi,
            _ => Expect::Single,
        };
        cmd.encode(&mut self.out);
        self.expect.push_back(expect);
        self.flush();
    }

    /// Sends a SASL response line (already base64, or `*` to cancel).
    pub fn send_sasl(&mut self, line: &str) -> Result<(), CommandError> {
        let line = Word::new(line)?;
        self.out.extend_from_slice(line.as_str().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.flush();
        Ok(())
    }

    /// Whether the link is secure (after [`Session::tls_established`]).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the session is over (after [`Output::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Responses still expected.
    pub fn outstanding(&self) -> usize {
        self.expect.len()
    }

    /// Whether to read more from the server.
    pub fn wants_input(&self) -> bool {
        !matches!(self.phase, Phase::Closed | Phase::AwaitTls)
    }

    /// The next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When to call [`Session::handle_timeout`]: while the greeting or a
    /// response is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let waiting = !self.greeted || !self.expect.is_empty();
        (waiting && self.wants_input()).then_some(self.deadline)
    }

    /// Time passed: a response overdue closes the session.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|d| now >= d) {
            self.fail(ClientError::TimedOut);
        }
    }

    /// The server closed its side.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.is_closed() {
            return;
        }
        if !self.expect.is_empty() || !matches!(self.phase, Phase::Line) {
            self.fail(ClientError::Closed);
        } else {
            self.close();
        }
    }

    /// The TLS handshake after [`Output::StartTls`] completed.
    pub fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        if !matches!(self.phase, Phase::AwaitTls) {
            return Err(ApiMisuse::NoStartTls);
        }
        self.tls = true;
        self.phase = Phase::Line;
        self.framer.reset();
        self.deadline = session_core::deadline_after(now, self.config.timeouts.response);
        Ok(())
    }

    /// Bytes from the server.
    pub fn handle_input(&mut self, now: Instant, mut input: &[u8]) {
        if !self.wants_input() {
            return;
        }
        self.deadline = session_core::deadline_after(now, self.config.timeouts.response);
        while !input.is_empty() {
            match &mut self.phase {
                Phase::Closed | Phase::AwaitTls => return,
                Phase::Body(dec, _, body) => match dec.decode(input, body) {
                    BodyProgress::NeedMore => input = &[],
                    BodyProgress::Finished { consumed, result } => {
                        input = &input[consumed..];
                        let Phase::Body(_, status, body) =
                            std::mem::replace(&mut self.phase, Phase::Line)
                        else {
                            return;
                        };
                        match result {
                            Ok(()) => self.event(Event::Response {
                                status,
                                body: Some(body.freeze()),
                            }),
                            Err(session_core::BodyError::TooLarge { .. }) => {
                                self.fail(ClientError::TooLarge)
                            }
                            Err(_) => self.fail(ClientError::Malformed),
                        }
                    }
                },
                Phase::Line => {
                    let (used, line) = self.framer.push(input);
                    input = &input[used..];
                    let Some(line) = line else { continue };
                    let result = match line {
                        Err(_) => Err(ClientError::Malformed),
                        Ok(l) => {
                            let l = l.to_vec();
                            self.status_line(&l)
                        }
                    };
                    if let Err(e) = result {
                        self.fail(e);
                    }
                }
            }
        }
    }

    fn status_line(&mut self, line: &[u8]) -> Result<(), ClientError> {
        if !self.greeted {
            self.greeted = true;
            let status = Status::parse(line)?;
            self.event(Event::Greeting(status));
            return Ok(());
        }
        if let Some(rest) = line
            .strip_prefix(b"+ ")
            .or_else(|| (line == b"+").then_some(&b""[..]))
        {
            // A challenge answers only an AUTH still waiting for its status.
            if self.expect.front() != Some(&Expect::Auth) {
                return Err(ClientError::Unexpected);
            }
            self.event(Event::Continue(String::from_utf8_lossy(rest).into_owned()));
            return Ok(());
        }
        let status = Status::parse(line)?;
        let expect = self.expect.pop_front().ok_or(ClientError::Unexpected)?;
        match expect {
            Expect::Multi if status.is_ok() => {
                let dec = DataDecoder::with_policy(
                    self.config.line_ending,
                    Some(self.config.limits.max_body),
                );
                self.phase = Phase::Body(dec, status, BytesMut::new());
            }
            Expect::Stls if status.is_ok() => {
                self.event(Event::Response { status, body: None });
                // Whatever follows in plaintext is not trusted.
                self.phase = Phase::AwaitTls;
                self.queue.push_back(Output::StartTls);
            }
            _ => self.event(Event::Response { status, body: None }),
        }
        Ok(())
    }

    fn event(&mut self, e: Event) {
        self.queue.push_back(Output::Event(e));
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let b = std::mem::take(&mut self.out).freeze();
            self.queue.push_back(Output::Transmit(b));
        }
    }

    fn fail(&mut self, e: ClientError) {
        self.event(Event::Error(e));
        self.close();
    }

    fn close(&mut self) {
        self.flush();
        self.phase = Phase::Closed;
        self.expect.clear();
        self.queue.push_back(Output::Closed);
    }
}

session_core::forward_session!(Session, Event);
