//! A driver for server sessions: feeds input, answers decisions with a
//! policy, and records what the session transmitted and reported.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sasl::ScramCredentials;
use sasl::server::Credentials;
use smtp_proto::server::{AuthCheck, Config, Event, Output, Session};
use smtp_proto::{Domain, ForwardPath, Reply, ReplyCode, ReversePath};

/// How the test application answers.
#[derive(Debug)]
pub enum Answer {
    Accept,
    AcceptWith(Reply<'static>),
    Reject(Reply<'static>),
    Each(Vec<Reply<'static>>),
    Scram(Option<ScramCredentials>),
    /// Leave the decision pending.
    Hold,
}

pub fn reply(code: u16, text: &str) -> Reply<'static> {
    Reply::new(ReplyCode::new(code).unwrap(), None, text.to_owned()).unwrap()
}

pub type Policy = Box<dyn FnMut(&Event) -> Answer>;

/// Accepts everyone except local parts starting with "nobody" or "green"
/// (550); user tim / tanstaaf authenticates.
pub fn default_policy() -> Policy {
    Box::new(|e| match e {
        Event::Rcpt(r) => match &r.to {
            ForwardPath::Mailbox(m)
                if m.local_part
                    .as_str()
                    .to_ascii_lowercase()
                    .starts_with("nobody")
                    || m.local_part.as_str().eq_ignore_ascii_case("green") =>
            {
                Answer::Reject(reply(550, "No such user here"))
            }
            _ => Answer::Accept,
        },
        Event::Auth(a) => {
            let ok = match &a.check {
                AuthCheck::Credentials(Credentials::Password {
                    username, password, ..
                }) => username == "tim" && password.expose() == "tanstaaf",
                AuthCheck::Credentials(Credentials::CramMd5 { username, proof }) => {
                    username == "tim" && proof.verify("tanstaaf")
                }
                AuthCheck::Verified(id) => id.username == "tim",
                _ => false,
            };
            if ok {
                Answer::Accept
            } else {
                Answer::Reject(smtp_proto::replies::AUTH_FAILED.into())
            }
        }
        Event::ScramLookup(l) => Answer::Scram(
            (l.username == "tim")
                .then(|| ScramCredentials::derive("tanstaaf", b"salt-of-tim", 4096)),
        ),
        _ => Answer::Accept,
    })
}

pub fn config() -> Config {
    Config::new(Domain::new("mx.example.org").unwrap())
}

pub struct Driver {
    pub session: Session,
    pub now: Instant,
    pub policy: Policy,
    /// Everything transmitted, in order.
    pub wire: Vec<u8>,
    /// Number of Transmit outputs seen.
    pub writes: usize,
    /// A line per event.
    pub log: Vec<String>,
    /// The body of the message in progress.
    pub body: Vec<u8>,
    /// Completed messages (body bytes).
    pub messages: Vec<Vec<u8>>,
    pub closed: bool,
    pub starttls: bool,
    /// Tokens held back by `Answer::Hold`.
    pub held: Vec<smtp_proto::server::Token>,
}

impl Driver {
    pub fn new(config: Config) -> Driver {
        Self::with_policy(config, default_policy())
    }

    pub fn with_policy(config: Config, policy: Policy) -> Driver {
        let now = Instant::now();
        let session = Session::new(Arc::new(config), now, *b"0123456789abcdef");
        let mut d = Driver {
            session,
            now,
            policy,
            wire: Vec::new(),
            writes: 0,
            log: Vec::new(),
            body: Vec::new(),
            messages: Vec::new(),
            closed: false,
            starttls: false,
            held: Vec::new(),
        };
        d.pump();
        d
    }

    /// Feeds bytes and returns what the session transmitted in response.
    pub fn send(&mut self, bytes: &[u8]) -> String {
        let start = self.wire.len();
        self.session.handle_input(self.now, bytes);
        self.pump();
        String::from_utf8_lossy(&self.wire[start..]).into_owned()
    }

    /// Feeds bytes in pieces of `step`.
    pub fn send_split(&mut self, bytes: &[u8], step: usize) -> String {
        let start = self.wire.len();
        for piece in bytes.chunks(step.max(1)) {
            self.session.handle_input(self.now, piece);
            self.pump();
        }
        String::from_utf8_lossy(&self.wire[start..]).into_owned()
    }

    /// The greeting and anything transmitted so far, then cleared.
    pub fn take_wire(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.wire).into_owned();
        self.wire.clear();
        s
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
        self.pump();
    }

    pub fn eof(&mut self) {
        self.session.handle_eof(self.now);
        self.pump();
    }

    pub fn pump(&mut self) {
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Transmit(b) => {
                    self.writes += 1;
                    self.wire.extend_from_slice(&b);
                }
                Output::Event(e) => self.event(e),
                Output::StartTls => {
                    self.log.push("STARTTLS".to_owned());
                    self.starttls = true;
                }
                Output::Compress => panic!("SMTP never compresses"),
                Output::Closed => {
                    self.log.push("CLOSED".to_owned());
                    self.closed = true;
                }
            }
        }
    }

    fn event(&mut self, e: Event) {
        let answer = (self.policy)(&e);
        match e {
            Event::Mail(m) => {
                let from = match &m.from {
                    ReversePath::Null => "<>".to_owned(),
                    ReversePath::Mailbox(b) => b.to_string(),
                };
                self.log.push(format!("MAIL {from}"));
                self.answer(m.token, answer);
            }
            Event::Rcpt(r) => {
                let mut b = bytes::BytesMut::new();
                r.to.encode(&mut b);
                self.log
                    .push(format!("RCPT {}", String::from_utf8_lossy(&b)));
                self.answer(r.token, answer);
            }
            Event::Auth(a) => {
                self.log.push(format!("AUTH {}", a.mechanism));
                self.answer(a.token, answer);
            }
            Event::ScramLookup(l) => {
                self.log.push(format!("SCRAM {}", l.username));
                self.answer(l.token, answer);
            }
            Event::MessageData(d) => self.body.extend_from_slice(&d),
            Event::Message(m) => {
                self.log.push(format!(
                    "MESSAGE {} bytes to {}",
                    m.size,
                    m.recipients.len()
                ));
                assert_eq!(m.size as usize, self.body.len(), "size matches data events");
                self.messages.push(std::mem::take(&mut self.body));
                self.answer(m.token, answer);
            }
            Event::MessageAborted => {
                self.log.push("ABORTED".to_owned());
                self.body.clear();
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn answer(&mut self, token: smtp_proto::server::Token, answer: Answer) {
        let r = match answer {
            Answer::Accept => self.session.accept(token),
            Answer::AcceptWith(r) => self.session.accept_with(token, r),
            Answer::Reject(r) => self.session.reject(token, r),
            Answer::Each(r) => self.session.respond_each(token, r),
            Answer::Scram(c) => self.session.scram_credentials(token, c),
            Answer::Hold => {
                self.held.push(token);
                Ok(())
            }
        };
        r.expect("decision accepted by the session");
    }

    /// Completes STARTTLS as an adapter would.
    pub fn finish_tls(&mut self) {
        assert!(self.starttls);
        self.starttls = false;
        self.session.tls_established(self.now).unwrap();
        self.pump();
    }
}
