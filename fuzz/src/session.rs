//! The session targets: a script of peer bytes, decisions, time, the TLS
//! handshake and the end of the stream, played against a sans-IO session.
//!
//! The harness models the socket: what the peer sends is queued and read
//! only while the session [wants input](session_core::Session::wants_input),
//! a read at a time. Every script is played twice, once with reads as large
//! as the session's input limit and once in reads of 1 to 19 octets, and the
//! two conversations must be the same: the same bytes out, the same events
//! (body data compared as one stream), the same close — unless a deadline
//! passed during the script (see [`both_ways`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use smtp_proto::BareLineEnding;

/// One step of a scripted conversation with a server session.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum SessionStep {
    /// Bytes from the client.
    Input(Vec<u8>),
    /// Bytes from a small dictionary of protocol phrases, to reach deep
    /// states quickly.
    Phrase(u8),
    /// The oldest pending decision is answered.
    Decide(Decision),
    /// Time passes.
    Wait(u16),
    /// The TLS handshake finishes (if one was asked for).
    TlsDone,
    /// The client closes.
    Eof,
}

/// How a decision is answered.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum Decision {
    /// Accept.
    Accept,
    /// Reject with a 550.
    Reject,
    /// Accept with a custom 250.
    AcceptWith,
    /// SCRAM keys (or none).
    Scram(bool),
    /// Per-recipient replies (LMTP), `n` of them.
    Each(u8),
}

/// A whole scripted conversation.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub struct SessionScript {
    /// Configuration switches.
    pub switches: u16,
    /// What happens, in order.
    pub steps: Vec<SessionStep>,
}

const PHRASES: &[&[u8]] = &[
    b"EHLO c.example\r\n",
    b"LHLO c.example\r\n",
    b"MAIL FROM:<a@b.example> SIZE=100\r\n",
    b"RCPT TO:<c@d.example>\r\n",
    b"DATA\r\n",
    b"Subject: x\r\n\r\nbody\r\n.\r\n",
    b"BDAT 5\r\nhello",
    b"BDAT 3 LAST\r\nxyz",
    b"RSET\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN AHRpbQB0YW5zdGFhZg==\r\n",
    b"AUTH SCRAM-SHA-256 bixuPXRpbSxyPWFiY2RlZmdo\r\n",
    b"AUTH LOGIN\r\n",
    b"dGlt\r\n",
    b"*\r\n",
    b"QUIT\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
];

/// What a decision of the SMTP server session is about.
#[derive(Debug, Clone, Copy)]
enum SmtpAsk {
    /// MAIL, RCPT or AUTH.
    Plain,
    /// A SCRAM key lookup.
    Scram,
    /// A whole message, for this many recipients.
    Message(usize),
}

/// The SMTP/LMTP server session, scripted. Properties: the conversation is
/// the same whether the client's bytes are read whole or in pieces; every
/// byte sent parses back, with our own reply parser, as a sequence of
/// complete replies; every answer to a decision is taken when it fits and
/// refused with the right misuse when it does not (the token comes back);
/// held input never passes the configured limit; message data and size
/// stay within the message limit; a pending decision always has a
/// deadline; nothing follows the close.
pub fn smtp_server_session(data: &[u8]) {
    let Some(t) = both_ways(data, 300, smtp_server_run) else {
        return;
    };
    smtp_replies(&t.out);
}

/// Every octet of `out` belongs to a complete, well-formed SMTP reply.
fn smtp_replies(out: &[u8]) {
    let wide = smtp_proto::ReplyLimits {
        line: usize::MAX,
        lines: usize::MAX,
    };
    let mut rest = out;
    while !rest.is_empty() {
        match smtp_proto::Reply::parse_with(rest, &wide) {
            Ok(smtp_proto::Parsed::Complete { consumed, .. }) => rest = &rest[consumed..],
            other => panic!(
                "sent bytes are not a reply: {other:?} at {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(200)])
            ),
        }
    }
}

fn smtp_data(e: &smtp_proto::server::Event) -> Option<&[u8]> {
    match e {
        smtp_proto::server::Event::MessageData(d) => Some(d),
        _ => None,
    }
}

fn imap_data(e: &imap_proto::server::Event) -> Option<&[u8]> {
    match e {
        imap_proto::server::Event::AppendData(d) => Some(d),
        _ => None,
    }
}

fn smtp_server_run(script: &SessionScript, reads: Reads, start: Instant) -> Transcript {
    use smtp_proto::server::{Config, Event, Mode, Session};
    use std::sync::Arc;

    let sw = script.switches;
    let mut config = Config::new(smtp_proto::Domain::new("mx.example.org").expect("valid"));
    let lmtp = sw & 1 != 0;
    if lmtp {
        config.mode = Mode::Lmtp;
    }
    config.implicit_tls = sw & 2 != 0;
    config.allow_plaintext_auth = sw & 4 != 0;
    config.require_auth = sw & 8 != 0;
    config.extensions.pipelining = sw & 16 == 0;
    config.extensions.chunking = sw & 32 == 0;
    config.extensions.enhanced_status_codes = sw & 64 == 0;
    if sw & 128 != 0 {
        config.line_ending = BareLineEnding::Normalize;
    }
    if sw & 256 != 0 {
        config.body_line_ending = BareLineEnding::Normalize;
    }
    config.auth_mechanisms = sasl::Mechanism::ALL.to_vec();
    config.limits.max_message_size = 200;
    config.limits.max_buffered_input = 300;
    config.limits.max_recipients = 3;
    let limits = config.limits.clone();
    let mut now = start;
    let mut session = Session::new(Arc::new(config), now, [1; 16]);
    let mut asks = VecDeque::new();
    let mut t = Transport::new(reads);
    for step in script.steps.iter().cloned() {
        if let Some(d) = t.step(&mut session, &mut now, PHRASES, step)
            && let Some((token, ask)) = asks.pop_front()
        {
            let reply = |code: u16| {
                smtp_proto::Reply::new(
                    smtp_proto::ReplyCode::new(code).expect("valid"),
                    None,
                    "fuzz",
                )
                .expect("valid")
            };
            use session_core::ApiMisuse::{ReplyCount, WrongAnswer};
            let (r, expect) = match d {
                Decision::Accept => (session.accept(token), Ok(())),
                Decision::Reject => (session.reject(token, reply(550)), Ok(())),
                Decision::AcceptWith => (
                    session.accept_with(token, reply(250)),
                    match ask {
                        SmtpAsk::Scram => Err(WrongAnswer),
                        _ => Ok(()),
                    },
                ),
                Decision::Scram(some) => (
                    session.scram_credentials(
                        token,
                        some.then(|| sasl::ScramCredentials::derive("tanstaaf", b"s", 1)),
                    ),
                    match ask {
                        SmtpAsk::Scram => Ok(()),
                        _ => Err(WrongAnswer),
                    },
                ),
                Decision::Each(n) => {
                    let n = usize::from(n % 5);
                    (
                        session.respond_each(token, (0..n).map(|_| reply(250)).collect()),
                        match ask {
                            SmtpAsk::Message(k) if lmtp && k == n => Ok(()),
                            SmtpAsk::Message(_) if lmtp => Err(ReplyCount),
                            _ => Err(WrongAnswer),
                        },
                    )
                }
            };
            // A misused answer gives the token back: answer again later.
            if let Some(token) = checked(r, expect) {
                asks.push_front((token, ask));
            }
        }
        for e in t.pump(&mut session, now, smtp_data) {
            match e {
                Event::Message(m) => {
                    assert!(m.size <= limits.max_message_size);
                    asks.push_back((m.token, SmtpAsk::Message(m.recipients.len())));
                }
                Event::MessageData(d) => assert!(d.len() as u64 <= limits.max_message_size),
                Event::ScramLookup(l) => asks.push_back((l.token, SmtpAsk::Scram)),
                other => asks.extend(other.into_token().map(|t| (t, SmtpAsk::Plain))),
            }
        }
        assert!(
            session.buffered_input() <= limits.max_buffered_input,
            "{} octets held",
            session.buffered_input()
        );
        // A pending decision always has a deadline, so it cannot hang.
        assert!(!session.is_waiting_for_decision() || session.poll_timeout().is_some());
    }
    assert!(
        t.finish(&mut session, now, smtp_data),
        "the session never ended"
    );
    t.log
}

/// How the harness reads what the peer sent.
#[derive(Debug, Clone, Copy)]
enum Reads {
    /// Reads of up to this many octets (the session's input limit).
    Whole(usize),
    /// Reads of 1 to 19 octets, sizes drawn from the seed.
    Split(u8),
}

/// What a conversation looked like from outside the session.
#[derive(Debug, Default, PartialEq)]
struct Transcript {
    /// Every octet transmitted, in order.
    out: Vec<u8>,
    /// The events and transport steps, in order.
    seen: Vec<Seen>,
    /// Whether a deadline passed during the script (not after it).
    timed_out: bool,
}

/// One thing a session handed out, other than bytes.
#[derive(Debug, PartialEq)]
enum Seen {
    /// An application event (its `Debug` text).
    Event(String),
    /// Body or literal data, consecutive pieces joined.
    Data(Vec<u8>),
    StartTls,
    Compress,
    Closed,
    /// A script step began. (Not with the bytes sent so far: a pipelining
    /// server may hold replies while it holds input, so when bytes go out
    /// depends on the reads; what goes out does not.)
    Step,
}

/// The harness's side of one connection: the peer's unread bytes, the
/// transport state the outputs set, and the transcript.
struct Transport {
    reads: Reads,
    queued: VecDeque<u8>,
    turn: usize,
    closed: bool,
    starttls: bool,
    log: Transcript,
}

impl Transport {
    fn new(reads: Reads) -> Transport {
        Transport {
            reads,
            queued: VecDeque::new(),
            turn: 0,
            closed: false,
            starttls: false,
            log: Transcript::default(),
        }
    }

    /// Runs a step every session takes the same way; returns the decision
    /// of a `Decide` step, which the target makes itself.
    fn step<S: session_core::Session>(
        &mut self,
        s: &mut S,
        now: &mut Instant,
        phrases: &[&[u8]],
        step: SessionStep,
    ) -> Option<Decision> {
        self.log.seen.push(Seen::Step);
        match step {
            SessionStep::Phrase(i) => self.queued.extend(phrases[usize::from(i) % phrases.len()]),
            SessionStep::Input(b) => self.queued.extend(b),
            SessionStep::Wait(secs) => {
                *now += Duration::from_secs(u64::from(secs));
                if s.poll_timeout().is_some_and(|t| t <= *now) {
                    self.log.timed_out = true;
                    s.handle_timeout(*now);
                }
            }
            SessionStep::TlsDone => {
                if self.starttls {
                    self.starttls = false;
                    assert!(s.tls_established(*now).is_ok());
                }
            }
            SessionStep::Eof => s.handle_eof(*now),
            SessionStep::Decide(d) => return Some(d),
        }
        None
    }

    /// Drains the session's outputs, then reads queued peer bytes while it
    /// wants them, draining after each read. Returns the events.
    fn pump<S: session_core::Session>(
        &mut self,
        s: &mut S,
        now: Instant,
        data: fn(&S::Event) -> Option<&[u8]>,
    ) -> Vec<S::Event>
    where
        S::Event: std::fmt::Debug,
    {
        let mut events = self.drain(s, data);
        while s.wants_input() && !self.queued.is_empty() {
            let n = match self.reads {
                Reads::Whole(max) => max,
                Reads::Split(seed) => {
                    self.turn += 1;
                    1 + (usize::from(seed) + self.turn * 7) % 19
                }
            };
            let n = n.min(self.queued.len());
            let read: Vec<u8> = self.queued.drain(..n).collect();
            s.handle_input(now, &read);
            events.extend(self.drain(s, data));
        }
        events
    }

    /// After the script: time passes until the session closes (pending
    /// decisions time out, held input is read, the idle timeout ends it),
    /// so that what a batching session still held goes out too. Returns
    /// whether it closed.
    fn finish<S: session_core::Session>(
        &mut self,
        s: &mut S,
        mut now: Instant,
        data: fn(&S::Event) -> Option<&[u8]>,
    ) -> bool
    where
        S::Event: std::fmt::Debug,
    {
        self.log.seen.push(Seen::Step);
        for _ in 0..256 {
            let Some(t) = s.poll_timeout() else {
                break;
            };
            now = now.max(t);
            s.handle_timeout(now);
            self.pump(s, now, data);
        }
        s.is_closed()
    }

    /// Drains `s`: nothing may follow the close, and the close comes once.
    fn drain<S: session_core::Session>(
        &mut self,
        s: &mut S,
        data: fn(&S::Event) -> Option<&[u8]>,
    ) -> Vec<S::Event>
    where
        S::Event: std::fmt::Debug,
    {
        let mut events = Vec::new();
        while let Some(out) = s.poll_output() {
            match out {
                session_core::Output::Transmit(b) => {
                    assert!(!self.closed, "transmitted after close");
                    assert!(!b.is_empty());
                    self.log.out.extend_from_slice(&b);
                }
                session_core::Output::Closed => {
                    assert!(!self.closed, "closed twice");
                    self.closed = true;
                    self.starttls = false;
                    self.log.seen.push(Seen::Closed);
                }
                session_core::Output::StartTls => {
                    // What the peer sent after STARTTLS was plaintext: a
                    // TLS layer never hands it to the session.
                    self.queued.clear();
                    self.starttls = true;
                    self.log.seen.push(Seen::StartTls);
                }
                session_core::Output::Compress => {
                    assert!(!self.closed, "compress after close");
                    // Sent before the peer saw the OK: not compressed.
                    self.queued.clear();
                    self.log.seen.push(Seen::Compress);
                }
                session_core::Output::Event(e) => {
                    assert!(!self.closed, "event after close");
                    match (data(&e), self.log.seen.last_mut()) {
                        (Some(d), Some(Seen::Data(all))) => all.extend_from_slice(d),
                        (Some(d), _) => self.log.seen.push(Seen::Data(d.to_vec())),
                        (None, _) => self.log.seen.push(Seen::Event(format!("{e:?}"))),
                    }
                    events.push(e);
                }
            }
        }
        assert_eq!(
            s.is_closed(),
            self.closed,
            "is_closed agrees with the outputs"
        );
        // A closed session has no deadline.
        assert!(!self.closed || s.poll_timeout().is_none());
        events
    }
}

/// A script decoded from fuzz data, and the seed of its split reads.
fn script(data: &[u8]) -> Option<(SessionScript, u8)> {
    let mut u = arbitrary::Unstructured::new(data);
    let script = <SessionScript as arbitrary::Arbitrary>::arbitrary(&mut u).ok()?;
    let seed = data
        .iter()
        .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(*b));
    Some((script, seed))
}

/// Plays `script` with whole reads and with split ones through `run`, and
/// checks the two conversations are the same; returns the first.
fn both_ways(
    data: &[u8],
    whole: usize,
    run: impl Fn(&SessionScript, Reads, Instant) -> Transcript,
) -> Option<Transcript> {
    let (script, seed) = script(data)?;
    let start = Instant::now();
    let a = run(&script, Reads::Whole(whole), start);
    let b = run(&script, Reads::Split(seed), start);
    // A session stamps what it does with the time of its last input or
    // timeout call (answers to decisions take no clock), and input held
    // while a decision waits is read later in small reads than in large
    // ones: the deadlines of the two runs may differ, so a script in which
    // one passed is not compared.
    if !a.timed_out && !b.timed_out {
        assert_eq!(a, b, "reading in pieces changed the conversation");
    }
    Some(a)
}

/// An answer refused only because its decision is gone: answered by the
/// session's timeout, or forgotten when the connection closed.
fn gone(e: session_core::ApiMisuse) -> bool {
    matches!(
        e,
        session_core::ApiMisuse::Expired | session_core::ApiMisuse::UnknownToken
    )
}

/// Checks an answer's result against what the harness expects of it:
/// `Ok`, or the misuse it made on purpose; a decision that is gone may fail
/// either way. Returns the token of a refused answer whose decision is
/// still pending.
fn checked(
    r: Result<(), session_core::AnswerError>,
    expect: Result<(), session_core::ApiMisuse>,
) -> Option<session_core::Token> {
    match r {
        Ok(()) => {
            assert_eq!(expect, Ok(()), "a wrong answer was taken");
            None
        }
        Err(e) if gone(e.error) => None,
        Err(e) => {
            assert_eq!(Err(e.error), expect, "a right answer was refused");
            Some(e.into_token())
        }
    }
}

/// What a decision of the POP3 server session is about.
#[derive(Debug, Clone, Copy)]
enum Pop3Ask {
    Login,
    Scram,
    Retrieve,
    Commit,
}

impl Pop3Ask {
    fn of(e: &pop3_proto::server::Event) -> Pop3Ask {
        use pop3_proto::server::Event;
        match e {
            Event::Login { .. } => Pop3Ask::Login,
            Event::ScramLookup { .. } => Pop3Ask::Scram,
            Event::Retrieve { .. } => Pop3Ask::Retrieve,
            _ => Pop3Ask::Commit,
        }
    }
}

/// The POP3 server session, scripted. Properties: the conversation is the
/// same whether the client's bytes are read whole or in pieces; what it
/// sends is well-formed POP3 (every line ends in CRLF; status lines parse
/// with our own parser; a multi-line block follows only a `+OK`, is
/// dot-stuffed and ends with `.`); every answer to a decision is taken when
/// it fits and refused with `WrongAnswer` when it does not; held input
/// never passes the configured limit (`buffered_input`); a pending decision
/// always has a deadline; nothing follows the close.
pub fn pop3_server_session(data: &[u8]) {
    let Some(t) = both_ways(data, 256, pop3_server_run) else {
        return;
    };
    pop3_responses(&t.out);
}

/// Every line of `out` is a status line, a SASL continuation, or a line of
/// a multi-line block opened by `+OK` and closed by `.`.
fn pop3_responses(out: &[u8]) {
    use pop3_proto::response::Status;
    let mut in_block = false;
    let mut rest = out;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("a line without CRLF: {rest:?}"));
        let line = &rest[..end];
        rest = &rest[end + 2..];
        assert!(
            !line.iter().any(|b| matches!(b, b'\r' | b'\n')),
            "bare CR or LF in {line:?}"
        );
        if in_block {
            match line {
                b"." => in_block = false,
                [b'.', b'.', ..] | [] => {}
                [b'.', ..] => panic!("a block line not dot-stuffed: {line:?}"),
                _ => {}
            }
            continue;
        }
        if line == b"+" || line.starts_with(b"+ ") && !line.starts_with(b"+OK") {
            continue; // a SASL challenge
        }
        let status = Status::parse(line)
            .unwrap_or_else(|_| panic!("not a status line: {:?}", String::from_utf8_lossy(line)));
        assert!(line.len() <= 510, "status line of {} octets", line.len());
        // The harness's blocks (listings, capabilities, messages) never hold
        // a line starting with + or -, so a line after +OK that is not a
        // status opens a block.
        if status.is_ok() && rest.first().is_some_and(|b| !matches!(b, b'+' | b'-')) {
            in_block = true;
        }
    }
    assert!(!in_block, "a multi-line block was not closed");
}

fn pop3_server_run(script: &SessionScript, reads: Reads, start: Instant) -> Transcript {
    use pop3_proto::response::Status;
    use pop3_proto::server::{Config, DropEntry, Session};
    use session_core::ApiMisuse::WrongAnswer;
    use std::sync::Arc;

    const POP: &[&[u8]] = &[
        b"USER bob\r\n",
        b"PASS pw\r\n",
        b"STAT\r\n",
        b"LIST\r\n",
        b"RETR 1\r\n",
        b"DELE 1\r\n",
        b"TOP 2 0\r\n",
        b"UIDL\r\n",
        b"RSET\r\n",
        b"QUIT\r\n",
        b"CAPA\r\n",
        b"STLS\r\n",
        b"AUTH PLAIN AGJvYgBwdw==\r\n",
        b"AUTH PLAIN\r\n",
        b"*\r\n",
        b"APOP bob 0123456789abcdef0123456789abcdef\r\n",
    ];
    let mut config = Config::new("pop.example.org");
    config.allow_plaintext_auth = script.switches & 1 != 0;
    config.apop = script.switches & 2 != 0;
    config.implicit_tls = script.switches & 4 != 0;
    config.limits.max_buffered_input = 256;
    let limit = config.limits.max_buffered_input;
    let mut now = start;
    let mut s = Session::new(Arc::new(config), now, [5; 16]);
    let mut t = Transport::new(reads);
    let mut pending = VecDeque::new();
    for step in script.steps.iter().cloned() {
        if let Some(d) = t.step(&mut s, &mut now, POP, step)
            && let Some((token, ask)) = pending.pop_front()
        {
            let (r, expect) = match (ask, d) {
                (Pop3Ask::Login, Decision::Accept) => (
                    s.open_maildrop(
                        token,
                        (0..3)
                            .filter_map(|i| DropEntry::new(10, format!("u{i}")).ok())
                            .collect(),
                    ),
                    Ok(()),
                ),
                (Pop3Ask::Retrieve, Decision::Accept | Decision::AcceptWith) => {
                    (s.send_message(token, b"Subject: x\n\n.body\nline"), Ok(()))
                }
                (Pop3Ask::Commit, Decision::Accept) => (s.accept(token), Ok(())),
                (Pop3Ask::Scram, Decision::Scram(some)) => (
                    s.scram_credentials(
                        token,
                        some.then(|| sasl::ScramCredentials::derive("pw", b"s", 1)),
                    ),
                    Ok(()),
                ),
                // Wrong answers on purpose: each gives the token back.
                (Pop3Ask::Login, Decision::Each(_)) => (s.accept(token), Err(WrongAnswer)),
                (Pop3Ask::Retrieve | Pop3Ask::Commit, Decision::Scram(_)) => {
                    (s.scram_credentials(token, None), Err(WrongAnswer))
                }
                (Pop3Ask::Scram, Decision::Each(_)) => {
                    (s.send_message(token, b"x"), Err(WrongAnswer))
                }
                // Anything else is refused.
                _ => (s.reject(token, Status::err("no")), Ok(())),
            };
            // A refused answer is answered again by a later step (or the
            // decision timeout).
            if let Some(token) = checked(r, expect) {
                pending.push_front((token, ask));
            }
        }
        for e in t.pump(&mut s, now, |_| None) {
            let ask = Pop3Ask::of(&e);
            pending.extend(e.into_token().map(|t| (t, ask)));
        }
        assert!(
            s.buffered_input() <= limit,
            "{} octets held",
            s.buffered_input()
        );
        assert!(!s.is_waiting_for_decision() || s.poll_timeout().is_some());
    }
    assert!(t.finish(&mut s, now, |_| None), "the session never ended");
    t.log
}

/// The POP3 client session fed what a (hostile) server might send, with
/// commands and time in between. Properties: the conversation is the same
/// whether the server's bytes are read whole or in pieces; what it sends is
/// the commands it was given, each a line that parses back to the command;
/// it reports one greeting at most and never more responses than commands
/// sent; an unreadable server closes the session; nothing follows the close.
pub fn pop3_client_session(data: &[u8]) {
    let Some(t) = both_ways(data, 4096, pop3_client_run) else {
        return;
    };
    for line in t.out.split_inclusive(|b| *b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .expect("a command line ends in CRLF");
        assert!(
            pop3_proto::Command::parse_line(line).is_ok(),
            "sent a line that is not a command: {line:?}"
        );
    }
}

fn pop3_client_run(script: &SessionScript, reads: Reads, start: Instant) -> Transcript {
    use pop3_proto::Command;
    use pop3_proto::client::{Config, Event, Session};
    use std::sync::Arc;

    const SERVER: &[&[u8]] = &[
        b"+OK ready\r\n",
        b"+OK 2 320\r\n",
        b"-ERR [IN-USE] locked\r\n",
        b"+OK\r\n1 120\r\n2 200\r\n.\r\n",
        b"+OK follows\r\n..dot\r\nline\n.\r\n",
        b"+ c2VydmVy\r\n",
        b"+OK begin TLS\r\n",
    ];
    let commands = [
        Command::Stat,
        Command::List(None),
        Command::Retr(1),
        Command::Capa,
        Command::Stls,
        Command::Noop,
        Command::Quit,
    ];
    let mut now = start;
    let mut c = Session::new(Arc::new(Config::default()), now);
    let mut t = Transport::new(reads);
    let (mut sent, mut answered, mut greeted) = (0, 0, 0);
    for step in script.steps.iter().cloned() {
        if let Some(d) = t.step(&mut c, &mut now, SERVER, step) {
            let i = match d {
                Decision::Each(n) => usize::from(n),
                Decision::Scram(b) => usize::from(b),
                _ => 2,
            };
            if !c.is_closed() {
                sent += 1;
            }
            c.send(now, &commands[i % commands.len()]);
        }
        for e in t.pump(&mut c, now, |_| None) {
            match e {
                Event::Error(_) => {
                    assert!(c.is_closed(), "an unreadable server closes the session")
                }
                Event::Greeting(_) => greeted += 1,
                Event::Response { .. } | Event::Continue(_) => answered += 1,
                _ => {}
            }
        }
        assert!(greeted <= 1, "two greetings");
        assert!(answered <= sent, "{answered} responses to {sent} commands");
    }
    t.finish(&mut c, now, |_| None);
    t.log
}

/// An answer refused only because its decision is gone: answered by the
/// session's timeout, or forgotten when the connection closed.
fn lost<T>(r: &Result<T, session_core::ApiMisuse>) -> bool {
    r.as_ref().is_err_and(|e| gone(*e))
}

/// The IMAP server session driven by a script of client bytes (raw and from
/// a phrase book that reaches every state), decisions, mailbox changes and
/// time. Properties: the conversation is the same whether the client's
/// bytes are read whole or in pieces; every byte sent frames and parses, with
/// our own framer and response parser, as complete responses; answers of
/// the right kind are taken (and one of the wrong kind refused with
/// `WrongAnswer`) unless the decision is gone; held input stays bounded;
/// every pending decision has a deadline; APPEND data never exceeds the
/// size that was accepted; nothing follows the close.
pub fn imap_server_session(data: &[u8]) {
    let Some(t) = both_ways(data, 4096, imap_server_run) else {
        return;
    };
    imap_responses(&t.out);
}

/// Every octet of `out` belongs to a complete IMAP response that parses.
fn imap_responses(out: &[u8]) {
    use imap_proto::{Frame, Framer, FramerLimits, Response};
    let mut f = Framer::new(FramerLimits::new(1 << 20, 1 << 20));
    let mut rest = out;
    while !rest.is_empty() {
        let (used, frame) = f.push(rest);
        rest = &rest[used..];
        match frame {
            Some(Frame::Command(bytes)) => {
                if let Err(e) = Response::parse(&bytes, true) {
                    panic!(
                        "sent a response that does not parse ({e:?}): {:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
            Some(other) => panic!("sent bytes that do not frame: {other:?}"),
            None => assert!(used > 0, "no progress"),
        }
    }
    assert_eq!(f.buffered(), 0, "a response was left unfinished");
}

fn imap_server_run(script: &SessionScript, reads: Reads, start: Instant) -> Transcript {
    use imap_proto::server::{Completion, Config, Event, Request, Selected, Session};
    use imap_proto::{Code, FetchValue, Flag};
    use session_core::ApiMisuse::WrongAnswer;
    use std::sync::Arc;

    const IMAP: &[&[u8]] = &[
        b"a LOGIN bob pw\r\n",
        b"b SELECT INBOX\r\n",
        b"c FETCH 1:* (FLAGS UID)\r\n",
        b"d UID FETCH 1:* (BODY.PEEK[HEADER] ENVELOPE)\r\n",
        b"e STORE 1 +FLAGS (\\Seen)\r\n",
        b"f SEARCH UNSEEN\r\n",
        b"g APPEND INBOX (\\Seen) {5}\r\n",
        b"hello\r\n",
        b"h APPEND INBOX {3+}\r\nabc {2+}\r\nde\r\n",
        b"i IDLE\r\n",
        b"DONE\r\n",
        b"j EXPUNGE\r\n",
        b"k UID MOVE 1:2 Trash\r\n",
        b"l STARTTLS\r\n",
        b"m AUTHENTICATE PLAIN AGJvYgBwdw==\r\n",
        b"n LOGOUT\r\n",
        b"o ENABLE QRESYNC CONDSTORE\r\n",
        b"p SELECT INBOX (QRESYNC (7 3 1:9 (1:3 1:3)))\r\n",
        b"q UID FETCH 1:* (FLAGS) (CHANGEDSINCE 2 VANISHED)\r\n",
        b"r STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Seen)\r\n",
        b"s SEARCH RETURN (MIN MAX) MODSEQ 3\r\n",
        b"t APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" TEXT {3+}\r\nabc) {2}\r\n",
        b"u COMPRESS DEFLATE\r\n",
        b"v UID THREAD REFERENCES UTF-8 ALL\r\n",
    ];
    let mut config = Config::new("imap.example.org");
    if script.switches & 8 != 0 {
        config.capabilities = vec!["CONDSTORE".into(), "QRESYNC".into(), "CATENATE".into()];
        config.compress = true;
    }
    config.allow_plaintext_auth = script.switches & 1 != 0;
    config.starttls = script.switches & 2 != 0;
    config.implicit_tls = script.switches & 4 != 0;
    config.limits.max_append = 1 + u64::from(script.switches >> 8) * 16;
    config.limits.max_buffered_input = 4096;
    let max_input = config.limits.max_buffered_input + config.limits.max_command;
    let mut now = start;
    let mut s = Session::new(Arc::new(config), now, [9; 16]);
    let mut t = Transport::new(reads);
    let mut pending = std::collections::VecDeque::new();
    let mut append_left: u64 = 0;
    let mut next_uid = 10;
    for step in script.steps.iter().cloned() {
        if let Some(d) = t.step(&mut s, &mut now, IMAP, step)
            && let Some(ev) = pending.pop_front()
        {
            let ok = Completion::ok("done");
            let r = match (ev, d) {
                (Event::Login { token, .. }, Decision::Accept) => s.accept_login(token),
                (Event::ScramLookup { token, .. }, Decision::Scram(some)) => s.scram_credentials(
                    token,
                    some.then(|| sasl::ScramCredentials::derive("pw", b"s", 1)),
                ),
                (Event::Request { token, request }, Decision::Accept | Decision::AcceptWith) => {
                    match request {
                        Request::Select { qresync, .. } => {
                            let mut sel = Selected::new(7, 6, vec![1, 2, 3, 4, 5]);
                            sel.highest_modseq = Some(9);
                            if qresync.is_some() {
                                sel.changed = vec![imap_proto::server::FlagState {
                                    uid: 2,
                                    flags: vec![Flag::Seen],
                                    modseq: 8,
                                }];
                                sel.expunged_since = (next_uid % 2 == 0).then(|| vec![6, 7]);
                            }
                            s.selected(token, sel)
                        }
                        Request::Fetch { ref messages, .. }
                        | Request::Store { ref messages, .. } => {
                            // Each answers only its own kind of request.
                            let fetch = matches!(request, Request::Fetch { .. });
                            let v = s.fetch_vanished(&token, Some(&[3, 40]));
                            let m = s.store_modified(&token, &[1]);
                            let (right, wrong) = if fetch { (v, m) } else { (m, v) };
                            assert!(right.is_ok() || lost(&right), "{right:?}");
                            assert!(wrong == Err(WrongAnswer) || lost(&wrong), "{wrong:?}");
                            for m in messages {
                                let r = s.fetched(
                                    &token,
                                    m.uid,
                                    vec![
                                        FetchValue::Flags(vec![Flag::Seen]),
                                        FetchValue::ModSeq(u64::from(m.uid) + 9),
                                    ],
                                );
                                // The decision is gone only when its time ran
                                // out or the connection closed meanwhile.
                                if lost(&r) {
                                    break;
                                }
                                assert!(r.is_ok(), "{r:?}");
                                assert!(s.view().seq_of(m.uid) == Some(m.seq));
                            }
                            s.complete(token, ok)
                        }
                        Request::Search { .. } => s.searched_with_modseq(
                            token,
                            s.view()
                                .uids()
                                .iter()
                                .map(|u| (*u, u64::from(*u)))
                                .collect(),
                        ),
                        Request::Append { size, .. } => {
                            append_left = size;
                            s.accept(token)
                        }
                        Request::Catenate { .. } => s.accept(token),
                        Request::Expunge { .. } | Request::Copy { moving: true, .. } => {
                            let first = s.view().uids().first().copied();
                            let r = s.expunged(&token, &first.into_iter().collect::<Vec<_>>());
                            assert!(r.is_ok() || lost(&r), "{r:?}");
                            s.complete(token, ok)
                        }
                        _ => s.complete(token, ok),
                    }
                }
                (Event::AppendCommit { token }, Decision::Accept) => s.complete(
                    token,
                    Completion::ok_code(
                        Code::AppendUid(
                            7,
                            imap_proto::SequenceSet::range(
                                imap_proto::SeqNumber::Value(9),
                                imap_proto::SeqNumber::Value(9),
                            ),
                        ),
                        "ok",
                    ),
                ),
                (ev, Decision::Each(n)) => {
                    // Someone else changes the mailbox meanwhile.
                    match n % 3 {
                        0 => {
                            next_uid += 1;
                            s.push_new(next_uid, n & 4 != 0);
                        }
                        1 => s.push_expunge(u32::from(n % 7)),
                        _ => {
                            s.push_flags(u32::from(n % 7), vec![Flag::Flagged], Some(u64::from(n)))
                        }
                    }
                    pending.push_front(ev);
                    Ok(())
                }
                // A wrong answer gives the token back; then refuse.
                (Event::Login { token, .. }, Decision::Scram(_)) => {
                    match s.complete(token, Completion::ok("x")) {
                        Err(e) => s.reject(e.into_token(), Completion::no("no")),
                        Ok(()) => panic!("a login was completed as a request"),
                    }
                }
                (other, _) => match event_token(other) {
                    Some(token) => s.reject(token, Completion::no("no")),
                    None => Ok(()),
                },
            };
            // An answer of the right kind fails only when its decision is
            // gone: answered by the session's timeout, or the session closed.
            if let Err(e) = r {
                assert!(
                    matches!(
                        e.error,
                        session_core::ApiMisuse::Expired | session_core::ApiMisuse::UnknownToken
                    ),
                    "answer refused: {e:?}"
                );
            }
        }
        for e in t.pump(&mut s, now, imap_data) {
            match e {
                Event::AppendData(b) => {
                    assert!(
                        b.len() as u64 <= append_left,
                        "more APPEND data than accepted"
                    );
                    append_left -= b.len() as u64;
                }
                Event::AppendAbort => append_left = 0,
                other => pending.push_back(other),
            }
        }
        assert!(
            s.buffered_input() <= max_input,
            "{} octets held",
            s.buffered_input()
        );
        assert!(!s.is_waiting_for_decision() || s.poll_timeout().is_some());
    }
    assert!(t.finish(&mut s, now, imap_data), "the session never ended");
    t.log
}

fn event_token(e: imap_proto::server::Event) -> Option<session_core::Token> {
    use imap_proto::server::Event;
    match e {
        Event::Login { token, .. }
        | Event::ScramLookup { token, .. }
        | Event::Request { token, .. }
        | Event::AppendCommit { token } => Some(token),
        _ => None,
    }
}

/// The SMTP client session against a scripted server: replies from a set
/// of real ones and raw bytes, with the caller's actions (send a
/// transaction, body, STARTTLS, AUTH, QUIT) at any point. Properties: the
/// conversation is the same whether the server's bytes are read whole or in
/// pieces; every byte it sends is a command that our own parser reads back
/// (or the body of a DATA or BDAT it sent); every transaction it starts ends
/// in one `Completed` with one reply per recipient; a failure closes the
/// session; a closed session has no deadline and nothing follows the close.
pub fn smtp_client_session(data: &[u8]) {
    let Some(t) = both_ways(data, 4096, smtp_client_run) else {
        return;
    };
    smtp_commands(&t.out);
}

/// Every octet of `out` is a command line, a dot-stuffed DATA body ended by
/// `CRLF.CRLF`, or a BDAT chunk of the size its command gave.
fn smtp_commands(out: &[u8]) {
    use smtp_proto::{Command, CommandOptions, Parsed};
    let opts = CommandOptions {
        max_line: usize::MAX,
        line_ending: BareLineEnding::Reject,
        smtputf8: true,
    };
    let mut rest = out;
    while !rest.is_empty() {
        // The harness's body: sent after DATA once the server said 354.
        if rest.starts_with(b"Subject: x") {
            let end = rest
                .windows(5)
                .position(|w| w == b"\r\n.\r\n")
                .expect("a DATA body ends with CRLF.CRLF");
            rest = &rest[end + 5..];
            continue;
        }
        match Command::parse_with(rest, &opts) {
            Ok(Parsed::Complete { value, consumed }) => {
                rest = &rest[consumed..];
                if let Command::Bdat { size, .. } = value {
                    let n = usize::try_from(size).unwrap_or(usize::MAX).min(rest.len());
                    rest = &rest[n..];
                }
            }
            other => panic!(
                "sent bytes are not a command: {other:?} at {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(200)])
            ),
        }
    }
}

fn smtp_client_run(script: &SessionScript, reads: Reads, start: Instant) -> Transcript {
    use smtp_proto::client::{Config, Envelope, Event, Session};
    use smtp_proto::{Domain, ForwardPath, Host, MailParameters, Mailbox, ReversePath};
    use std::sync::Arc;

    const SERVER: &[&[u8]] = &[
        b"220 mx.example ESMTP\r\n",
        b"250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-SIZE 1000\r\n250-STARTTLS\r\n250-DSN\r\n250 AUTH PLAIN SCRAM-SHA-256\r\n",
        b"250 mx.example\r\n",
        b"250 2.1.0 OK\r\n",
        b"550 5.1.1 no such user\r\n",
        b"354 go ahead\r\n",
        b"220 2.0.0 ready for TLS\r\n",
        b"334 \r\n",
        b"235 2.7.0 ok\r\n",
        b"421 4.3.2 closing\r\n",
        b"502 what\r\n",
        b"250-a\r\n251 b\r\n",
        b"452 4.2.2 full\r\n",
    ];
    let mut config = Config::new(Host::Domain(
        Domain::new("c.example").unwrap_or_else(|_| unreachable!()),
    ));
    if script.switches & 1 != 0 {
        config.mode = smtp_proto::server::Mode::Lmtp;
    }
    config.pipelining = script.switches & 2 == 0;
    config.chunking = script.switches & 4 == 0;
    config.allow_plaintext_auth = script.switches & 8 != 0;
    let mut now = start;
    let mut c = Session::new(Arc::new(config), now);
    let mut t = Transport::new(reads);
    let mut open: Option<usize> = None;
    let mailbox = |s: &str| Mailbox::parse(s).map(|m| m.into_owned()).ok();
    for step in script.steps.iter().cloned() {
        if let Some(d) = t.step(&mut c, &mut now, SERVER, step) {
            let pick = match d {
                Decision::Each(n) => usize::from(n),
                Decision::Scram(b) => usize::from(b),
                Decision::Accept => 0,
                Decision::Reject => 1,
                Decision::AcceptWith => 2,
            };
            match pick % 6 {
                0 | 1 => {
                    let n = pick % 4;
                    let (Some(from), Some(to)) = (mailbox("a@b.example"), mailbox("c@d.example"))
                    else {
                        continue;
                    };
                    let env = Envelope {
                        from: ReversePath::Mailbox(from),
                        params: MailParameters {
                            size: Some(pick as u64 * 300),
                            ..MailParameters::default()
                        },
                        recipients: (0..n)
                            .map(|_| ForwardPath::Mailbox(to.clone()).into())
                            .collect(),
                    };
                    if c.send(now, env).is_ok() {
                        assert!(open.is_none(), "one transaction at a time");
                        open = Some(n);
                    }
                }
                2 => {
                    let _ = c.send_body(now, b"Subject: x\r\n\r\n.dot\r\n");
                }
                3 => {
                    let _ = c.finish_body(now);
                }
                4 => {
                    let _ = c.start_tls(now);
                }
                _ => {
                    let mech = if pick & 8 != 0 {
                        sasl::Mechanism::Plain
                    } else {
                        sasl::Mechanism::ScramSha256
                    };
                    let x = sasl::client::ClientExchange::new(
                        mech,
                        "tim",
                        sasl::Secret::new("pw".into()),
                        None,
                        &[7; 16],
                    );
                    let _ = c.authenticate(now, x);
                }
            }
        }
        for e in t.pump(&mut c, now, |_| None) {
            match e {
                Event::Completed(r) => {
                    let n = open.take();
                    assert_eq!(
                        n,
                        Some(r.len()),
                        "one Completed per transaction, a reply per recipient"
                    );
                }
                Event::Failed(_) => assert!(c.is_closed(), "a failure closes the session"),
                _ => {}
            }
        }
        if c.is_closed() {
            assert!(open.is_none(), "a closed session ended its transaction");
        }
    }
    t.finish(&mut c, now, |_| None);
    t.log
}
