//! The bodies of the fuzz targets, kept in a library so that the cargo-fuzz
//! binaries (nightly) and the corpus replay test (stable, in CI) run the same
//! code.
//!
//! Each target checks properties, not only the absence of panics: what
//! parses re-encodes to something that parses to the same value, and
//! feeding the input in pieces gives the same result as feeding it whole.

#![forbid(unsafe_code)]

use bytes::BytesMut;
use smtp_proto::{
    BareLineEnding, BodyProgress, Command, CommandError, CommandOptions, DataDecoder, EhloResponse,
    LineFramer, Parsed, Reply, ReplyLimits,
};

/// Splits `data` into pieces whose lengths come from `seed`.
fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let step = usize::from(seed % 17) + 1;
    data.chunks(step).collect()
}

fn frame(chunks: &[&[u8]], opts: &CommandOptions) -> Vec<Result<Command<'static>, CommandError>> {
    let mut framer = LineFramer::new(opts.max_line, opts.line_ending);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            let (used, line) = framer.push(rest);
            rest = &rest[used..];
            if let Some(line) = line {
                out.push(
                    line.map_err(CommandError::from)
                        .and_then(|l| Command::parse_line(l, opts).map(Command::into_owned)),
                );
            }
            assert!(framer.buffered() <= opts.max_line, "framer over its limit");
        }
    }
    out
}

/// Command framing and parsing: split invariance and re-encode round trip.
pub fn smtp_command(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let opts = CommandOptions {
        max_line: 64 + usize::from(seed & 0x3f) * 8,
        line_ending: if seed & 0x40 != 0 {
            BareLineEnding::Normalize
        } else {
            BareLineEnding::Reject
        },
        smtputf8: seed & 0x80 != 0,
    };
    let whole = frame(&[data], &opts);
    let split = frame(&pieces(data, seed), &opts);
    assert_eq!(whole, split, "split changed the result");
    let wide = CommandOptions {
        max_line: usize::MAX,
        ..opts
    };
    for cmd in whole.into_iter().flatten() {
        let bytes = cmd.to_bytes();
        match Command::parse_with(&bytes, &wide) {
            Ok(Parsed::Complete { value, consumed }) => {
                assert_eq!(value, cmd, "re-encoded command parses differently");
                assert_eq!(consumed, bytes.len());
            }
            other => panic!("re-encoded command does not parse: {other:?}"),
        }
    }
}

/// Reply and EHLO parsing: re-encode round trip.
pub fn smtp_reply(data: &[u8]) {
    let limits = ReplyLimits {
        line: 1024,
        lines: 64,
    };
    let Ok(Parsed::Complete { value, consumed }) = Reply::parse_with(data, &limits) else {
        return;
    };
    assert!(consumed <= data.len());
    let bytes = value.to_bytes();
    let wide = ReplyLimits {
        line: usize::MAX,
        lines: usize::MAX,
    };
    let again = Reply::parse_with(&bytes, &wide).map(Parsed::complete);
    assert_eq!(
        again,
        Ok(Some(value.clone())),
        "re-encoded reply parses differently"
    );
    if let Ok(ehlo) = EhloResponse::from_reply(&value) {
        let mut out = BytesMut::new();
        if ehlo.encode(&mut out) {
            let reply = Reply::parse_with(&out, &wide)
                .ok()
                .and_then(Parsed::complete)
                .expect("encoded EHLO parses");
            assert_eq!(EhloResponse::from_reply(&reply), Ok(ehlo));
        }
    }
}

fn decode(
    chunks: &[&[u8]],
    policy: BareLineEnding,
    limit: Option<u64>,
) -> (Vec<u8>, Option<(usize, bool)>) {
    let mut dec = DataDecoder::with_policy(policy, limit);
    let mut out = BytesMut::new();
    let mut offset = 0;
    for chunk in chunks {
        match dec.decode(chunk, &mut out) {
            BodyProgress::NeedMore => offset += chunk.len(),
            BodyProgress::Finished { consumed, result } => {
                return (out.to_vec(), Some((offset + consumed, result.is_ok())));
            }
        }
    }
    (out.to_vec(), None)
}

/// DATA body decoding: split invariance, bounded output, strict end.
pub fn smtp_body(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let policy = if seed & 1 == 0 {
        BareLineEnding::Reject
    } else {
        BareLineEnding::Normalize
    };
    let limit = (seed & 2 != 0).then_some(u64::from(seed));
    let whole = decode(&[data], policy, limit);
    assert_eq!(whole, decode(&pieces(data, seed), policy, limit));
    if let Some(l) = limit {
        assert!(whole.0.len() as u64 <= l, "output over the size limit");
    }
    if let Some((end, _)) = whole.1 {
        let framed = [b"\r\n".as_slice(), &data[..end]].concat();
        assert!(
            framed.ends_with(b"\r\n.\r\n"),
            "ended somewhere other than CRLF.CRLF"
        );
        assert!(
            !framed[..framed.len() - 3]
                .windows(5)
                .any(|w| w == b"\r\n.\r\n"),
            "missed an earlier end of data"
        );
    }
}

/// One step of a scripted conversation with a server session.
#[derive(Debug, arbitrary::Arbitrary)]
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
#[derive(Debug, arbitrary::Arbitrary)]
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
#[derive(Debug, arbitrary::Arbitrary)]
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

/// Drives a server session through a script; checks that nothing panics,
/// buffers stay within their limits, and nothing is sent after the close.
pub fn smtp_server_session(data: &[u8]) {
    use smtp_proto::server::{Config, Event, Mode, Session};
    use std::sync::Arc;
    use std::time::Instant;

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(script) = <SessionScript as arbitrary::Arbitrary>::arbitrary(&mut u) else {
        return;
    };
    let sw = script.switches;
    let mut config = Config::new(smtp_proto::Domain::new("mx.example.org").expect("valid"));
    if sw & 1 != 0 {
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
    let mut now = Instant::now();
    let mut session = Session::new(Arc::new(config), now, [1; 16]);
    let mut tokens = std::collections::VecDeque::new();
    let mut t = Transport {
        largest_read: 64,
        ..Transport::default()
    };
    for step in script.steps {
        if let Some(d) = t.step(&mut session, &mut now, PHRASES, step)
            && let Some(token) = tokens.pop_front()
        {
            let reply = |code: u16| {
                smtp_proto::Reply::new(
                    smtp_proto::ReplyCode::new(code).expect("valid"),
                    None,
                    "fuzz",
                )
                .expect("valid")
            };
            // A misused answer gives the token back: answer again.
            let again = match d {
                Decision::Accept => session.accept(token),
                Decision::Reject => session.reject(token, reply(550)),
                Decision::AcceptWith => session.accept_with(token, reply(250)),
                Decision::Scram(some) => session.scram_credentials(
                    token,
                    some.then(|| sasl::ScramCredentials::derive("tanstaaf", b"s", 1)),
                ),
                Decision::Each(n) => {
                    session.respond_each(token, (0..n % 5).map(|_| reply(250)).collect())
                }
            };
            if let Err(e) = again {
                tokens.push_front(e.into_token());
            }
        }
        for e in t.drain(&mut session) {
            match e {
                Event::Message(m) => {
                    assert!(m.size <= limits.max_message_size);
                    tokens.push_back(m.token);
                }
                Event::MessageData(d) => assert!(d.len() as u64 <= limits.max_message_size),
                other => tokens.extend(other.into_token()),
            }
        }
        // Held input never exceeds the larger of the limit and one read.
        assert!(session.buffered_input() <= limits.max_buffered_input.max(t.largest_read));
        // A pending decision always has a deadline, so it cannot hang.
        assert!(!session.is_waiting_for_decision() || session.poll_timeout().is_some());
    }
}

/// What a fuzz driver tracks of any session's transport outputs, and the
/// steps every session script shares (time, the TLS handshake, the end of
/// the stream).
#[derive(Debug, Default)]
struct Transport {
    closed: bool,
    starttls: bool,
    largest_read: usize,
}

impl Transport {
    /// Runs a step every session takes the same way; returns the decision
    /// of a `Decide` step, which the target makes itself.
    fn step<S: session_core::Session>(
        &mut self,
        s: &mut S,
        now: &mut std::time::Instant,
        phrases: &[&[u8]],
        step: SessionStep,
    ) -> Option<Decision> {
        match step {
            SessionStep::Phrase(i) => {
                if s.wants_input() {
                    s.handle_input(*now, phrases[usize::from(i) % phrases.len()]);
                }
            }
            SessionStep::Input(b) => {
                self.largest_read = self.largest_read.max(b.len());
                if s.wants_input() {
                    s.handle_input(*now, &b);
                }
            }
            SessionStep::Wait(secs) => {
                *now += std::time::Duration::from_secs(u64::from(secs));
                if s.poll_timeout().is_some_and(|t| t <= *now) {
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

    /// Drains `s`: nothing may follow the close, and the close comes once.
    /// Returns the events.
    fn drain<S: session_core::Session>(&mut self, s: &mut S) -> Vec<S::Event> {
        let mut events = Vec::new();
        while let Some(out) = s.poll_output() {
            match out {
                session_core::Output::Transmit(b) => {
                    assert!(!self.closed, "transmitted after close");
                    assert!(!b.is_empty());
                }
                session_core::Output::Closed => {
                    assert!(!self.closed, "closed twice");
                    self.closed = true;
                    self.starttls = false;
                }
                session_core::Output::StartTls => self.starttls = true,
                session_core::Output::Compress => assert!(!self.closed, "compress after close"),
                session_core::Output::Event(e) => {
                    assert!(!self.closed, "event after close");
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

/// POP3 command parsing: what parses re-encodes to the same command.
pub fn pop3_command(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(cmd) = pop3_proto::Command::parse_line(line) {
            let mut b = BytesMut::new();
            cmd.encode(&mut b);
            assert_eq!(
                pop3_proto::Command::parse_line(&b[..b.len() - 2]).as_ref(),
                Ok(&cmd),
                "re-encoded command parses differently"
            );
        }
    }
}

/// The POP3 server session driven by input chunks and decisions: no
/// panic, nothing sent after the close, bounded held input.
pub fn pop3_server_session(data: &[u8]) {
    use pop3_proto::response::Status;
    use pop3_proto::server::{Config, DropEntry, Event, Session};
    use std::sync::Arc;
    use std::time::Instant;

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(script) = <SessionScript as arbitrary::Arbitrary>::arbitrary(&mut u) else {
        return;
    };
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
    let mut now = Instant::now();
    let mut s = Session::new(Arc::new(config), now, [5; 16]);
    let mut t = Transport {
        largest_read: 64,
        ..Transport::default()
    };
    let mut pending = std::collections::VecDeque::new();
    for step in script.steps {
        if let Some(d) = t.step(&mut s, &mut now, POP, step)
            && let Some(ev) = pending.pop_front()
        {
            let _ = match (ev, d) {
                (Event::Login { token, .. }, Decision::Accept) => s.open_maildrop(
                    token,
                    (0..3)
                        .filter_map(|i| DropEntry::new(10, format!("u{i}")).ok())
                        .collect(),
                ),
                (Event::Retrieve { token, .. }, Decision::Accept | Decision::AcceptWith) => {
                    s.send_message(token, b"Subject: x\n\n.body\nline")
                }
                (Event::Commit { token, .. }, Decision::Accept) => s.accept(token),
                (Event::ScramLookup { token, .. }, Decision::Scram(some)) => s.scram_credentials(
                    token,
                    some.then(|| sasl::ScramCredentials::derive("pw", b"s", 1)),
                ),
                // A wrong answer: the token comes back and is
                // dropped; the decision timeout answers it.
                (Event::Login { token, .. }, Decision::Each(_)) => s.accept(token),
                // Anything else is refused.
                (other, _) => match other.into_token() {
                    Some(token) => s.reject(token, Status::err("no")),
                    None => Ok(()),
                },
            };
        }
        pending.extend(t.drain(&mut s));
        assert!(s.buffered_input() <= (64 * 1024_usize).max(t.largest_read));
        assert!(!s.is_waiting_for_decision() || s.poll_timeout().is_some());
    }
}

/// The POP3 client session fed what a (hostile) server might send, with
/// commands and time in between: no panic, nothing after the close, and
/// every response accounted for.
pub fn pop3_client_session(data: &[u8]) {
    use pop3_proto::Command;
    use pop3_proto::client::{Config, Event, Session};
    use std::sync::Arc;
    use std::time::Instant;

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(script) = <SessionScript as arbitrary::Arbitrary>::arbitrary(&mut u) else {
        return;
    };
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
    let mut now = Instant::now();
    let mut c = Session::new(Arc::new(Config::default()), now);
    let mut t = Transport::default();
    for step in script.steps {
        if let Some(d) = t.step(&mut c, &mut now, SERVER, step) {
            let i = match d {
                Decision::Each(n) => usize::from(n),
                Decision::Scram(b) => usize::from(b),
                _ => 2,
            };
            c.send(now, &commands[i % commands.len()]);
        }
        for e in t.drain(&mut c) {
            if let Event::Error(_) = e {
                assert!(c.is_closed(), "an unreadable server closes the session");
            }
        }
    }
}

/// Frames `data` as an IMAP stream (command or response side: the framing is
/// the same) and checks that the framer's buffer stays bounded and that
/// splitting the input differently yields the same frames.
fn imap_frames(data: &[u8], seed: u8) -> Vec<Vec<u8>> {
    use imap_proto::{Frame, Framer, FramerLimits};
    let limits = FramerLimits::new(256, 64);
    let run = |chunks: &[&[u8]]| {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (used, frame) = f.push(rest);
                assert!(used > 0 || frame.is_some(), "framer made no progress");
                rest = &rest[used..];
                out.extend(frame.map(Frame::into_owned));
                assert!(f.buffered() <= limits.max_command + limits.max_literal as usize);
            }
        }
        out
    };
    let whole = run(&[data]);
    assert_eq!(whole, run(&pieces(data, seed)), "split changed the frames");
    whole
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Command(bytes) => Some(bytes.to_vec()),
            _ => None,
        })
        .collect()
}

/// Feeds every framed unit of `data` to `check` with the UTF8=ACCEPT switch
/// taken from the seed byte.
fn imap_each_frame(data: &[u8], check: impl Fn(&[u8], u8, bool)) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    for bytes in imap_frames(data, seed) {
        check(&bytes, seed, seed & 0x80 != 0);
    }
}

/// IMAP framing and command parsing: the framer's buffer stays bounded,
/// split input frames the same, and what parses re-encodes to the same
/// command.
pub fn imap_command(data: &[u8]) {
    use imap_proto::Command;
    imap_each_frame(data, |bytes, seed, utf8| {
        if let Ok(cmd) = Command::parse(bytes, utf8) {
            let wire = imap_proto::join(&cmd.encode(seed & 0x40 != 0, utf8));
            let again = Command::parse(&wire, utf8);
            assert_eq!(again, Ok(cmd), "re-encoded command parses differently");
        }
    });
}

/// IMAP response parsing (the client side): what parses re-encodes to the
/// same response, and the encoding is stable.
pub fn imap_response(data: &[u8]) {
    use imap_proto::{Quirks, Response};
    imap_each_frame(data, |bytes, seed, utf8| {
        // Bit 6 of the seed switches every client-side tolerance on.
        let quirks = if seed & 0x40 != 0 {
            Quirks::lenient()
        } else {
            Quirks::default()
        };
        if let Ok(resp) = Response::parse_with(bytes, utf8, quirks) {
            let wire = resp.encode(utf8);
            let again = Response::parse_with(&wire, utf8, quirks);
            assert_eq!(again, Ok(resp), "re-encoded response parses differently");
            if let Ok(again) = again {
                assert_eq!(again.encode(utf8), wire, "encoding is not stable");
            }
        }
    });
}

/// An answer refused only because its decision is gone: answered by the
/// session's timeout, or forgotten when the connection closed.
fn gone<T>(r: &Result<T, session_core::ApiMisuse>) -> bool {
    matches!(
        r,
        Err(session_core::ApiMisuse::Expired | session_core::ApiMisuse::UnknownToken)
    )
}

/// The IMAP server session driven by a script of client bytes (raw and from
/// a phrase book that reaches every state), decisions, mailbox changes and
/// time: no panic, nothing after the close, held input bounded, every
/// pending decision has a deadline, APPEND data never exceeds the size that
/// was accepted, and wrong answers give their token back.
pub fn imap_server_session(data: &[u8]) {
    use imap_proto::server::{Completion, Config, Event, Request, Selected, Session};
    use imap_proto::{Code, FetchValue, Flag};
    use std::sync::Arc;
    use std::time::Instant;

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(script) = <SessionScript as arbitrary::Arbitrary>::arbitrary(&mut u) else {
        return;
    };
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
    let max_input = config.limits.max_buffered_input + config.limits.max_command;
    let mut now = Instant::now();
    let mut s = Session::new(Arc::new(config), now, [9; 16]);
    let mut t = Transport {
        largest_read: 64,
        ..Transport::default()
    };
    let mut pending = std::collections::VecDeque::new();
    let mut append_left: u64 = 0;
    let mut next_uid = 10;
    for step in script.steps {
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
                        Request::Fetch { messages, .. } | Request::Store { messages, .. } => {
                            // Each answers only its own kind of request.
                            let _ = s.fetch_vanished(&token, Some(&[3, 40]));
                            let _ = s.store_modified(&token, &[1]);
                            for m in &messages {
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
                                if gone(&r) {
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
                            assert!(r.is_ok() || gone(&r), "{r:?}");
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
        for e in t.drain(&mut s) {
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
        assert!(s.buffered_input() <= max_input.max(t.largest_read) + 64);
        assert!(!s.is_waiting_for_decision() || s.poll_timeout().is_some());
    }
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

/// IMAP URLs (CATENATE's URL parts): any text parses or not without
/// panicking; what parses names a UID that is not 0 and extracts from any
/// message at most the message's octets (or a derived header block).
pub fn imap_url(data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let Ok(url) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let Some(u) = imap_proto::url::ImapUrl::parse(url) else {
        return;
    };
    assert_ne!(u.uid, 0);
    assert!(u.uid_validity != Some(0));
    let message = data.get(split + 1..).unwrap_or_default();
    if let Some(part) = u.extract(message) {
        // A HEADER.FIELDS section is built, the rest are slices.
        assert!(
            part.len() <= message.len() + 2,
            "{} > {}",
            part.len(),
            message.len()
        );
    }
}

/// The MIME walker under arbitrary messages: no panic, bounded work, and
/// what it builds goes on the wire and back — BODYSTRUCTURE and ENVELOPE
/// encode to a FETCH response that parses to the same values; every
/// section it names is a slice no longer than the message (or a derived
/// header block), and BINARY never panics.
pub fn imap_mime(data: &[u8]) {
    use imap_proto::mime::Structure;
    use imap_proto::{FetchValue, Response, Section, SectionText};

    let s = Structure::parse(data);
    let b = s.body_structure(data, true);
    let plain = s.body_structure(data, false);
    let env = Structure::envelope(data);
    let r = Response::Fetch(
        1,
        vec![
            FetchValue::BodyStructure(Box::new(b)),
            FetchValue::Body(Box::new(plain)),
            FetchValue::Envelope(Box::new(env)),
        ],
    );
    let wire = r.encode(false);
    if let Ok(back) = Response::parse(&wire, false) {
        assert_eq!(back, r, "BODYSTRUCTURE/ENVELOPE do not round-trip");
    } else {
        // Nesting past the codec's parse depth is the only allowed refusal.
        assert!(wire.iter().filter(|&&c| c == b'(').count() > imap_proto::MAX_BODY_DEPTH);
    }
    for part in [
        vec![],
        vec![1],
        vec![2],
        vec![1, 1],
        vec![1, 2, 1],
        vec![3, 1],
    ] {
        for text in [
            SectionText::Full,
            SectionText::Header,
            SectionText::Text,
            SectionText::Mime,
            SectionText::HeaderFields(vec!["subject".into(), "from".into()]),
            SectionText::HeaderFieldsNot(vec!["received".into()]),
        ] {
            let sec = Section {
                part: part.clone(),
                text,
                partial: Some((3, 50)),
            };
            if let Some(bytes) = s.section(data, &sec) {
                assert!(bytes.len() <= 50);
            }
        }
        let _ = s.binary(data, &part);
    }
}

/// The SMTP client session against a scripted server: replies from a set
/// of real ones and raw bytes, split anywhere, with the caller's actions
/// (send a transaction, body, STARTTLS, AUTH, QUIT) at any point. Checks:
/// no panic, outputs consistent, every transaction it starts ends in one
/// `Completed` with one reply per recipient, and a closed session has no
/// deadline.
pub fn smtp_client_session(data: &[u8]) {
    use smtp_proto::client::{Config, Envelope, Event, Session};
    use smtp_proto::{Domain, ForwardPath, Host, MailParameters, Mailbox, ReversePath};
    use std::sync::Arc;
    use std::time::Instant;

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(script) = <SessionScript as arbitrary::Arbitrary>::arbitrary(&mut u) else {
        return;
    };
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
    let mut now = Instant::now();
    let mut c = Session::new(Arc::new(config), now);
    let mut t = Transport::default();
    let mut open: Option<usize> = None;
    let mailbox = |s: &str| Mailbox::parse(s).map(|m| m.into_owned()).ok();
    for step in script.steps {
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
        for e in t.drain(&mut c) {
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
}

/// The 8-bit downgrade: never panics; its output is 7-bit; 7-bit input
/// comes back unchanged.
pub fn smtp_downgrade(data: &[u8]) {
    match smtp_proto::downgrade::to_seven_bit(data) {
        Ok(out) => {
            assert!(out.is_ascii(), "the downgrade gives 7-bit output");
            if data.is_ascii() {
                assert_eq!(out, data);
            }
        }
        Err(_) => assert!(!data.is_ascii()),
    }
}

/// Every SASL server mechanism fed the client messages a script holds
/// (length-prefixed pieces; the first byte picks the mechanism and whether
/// an initial response is sent): no panic; an exchange that ended (Verify,
/// Success or Failure) answers anything more with a failure; challenges
/// stay small; a SCRAM lookup is answered (keys or an unknown user) and
/// the exchange goes on.
pub fn sasl_server(data: &[u8]) {
    use sasl::server::{ServerExchange, ServerStep};
    use sasl::{Mechanism, ScramCredentials};

    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let mechanism = match first % 4 {
        0 => Mechanism::Plain,
        1 => Mechanism::Login,
        2 => Mechanism::CramMd5,
        _ => Mechanism::ScramSha256,
    };
    let mut pieces = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        pieces.push(&tail[..n]);
        rest = &tail[n..];
    }
    let mut pieces = pieces.into_iter();
    let mut x = ServerExchange::with_nonce(mechanism, "fuzznonce", "mx.example.org");
    let initial = if first & 4 != 0 { pieces.next() } else { None };
    let mut step = x.start(initial);
    for _ in 0..16 {
        step = match step {
            ServerStep::Challenge(c) => {
                assert!(c.len() < 1024, "challenge of {} octets", c.len());
                match pieces.next() {
                    Some(p) => x.respond(p),
                    None => return,
                }
            }
            ServerStep::LookupScram { .. } => {
                let creds = (first & 8 != 0).then(|| ScramCredentials::derive("pw", b"salt", 1));
                x.scram_credentials(creds)
            }
            ServerStep::Verify(_) | ServerStep::Success(_) | ServerStep::Failure(_) => {
                // Nothing more is taken once it is over.
                match x.respond(pieces.next().unwrap_or(b"more")) {
                    ServerStep::Failure(_) => return,
                    other => panic!("an ended exchange went on: {other:?}"),
                }
            }
            _ => return,
        };
    }
}

/// Modified UTF-7 (RFC 3501 §5.1.3): every string encodes to ASCII that
/// decodes back to it, and what decodes re-encodes to the same bytes (one
/// canonical form).
pub fn imap_utf7(data: &[u8]) {
    use imap_proto::utf7;

    if let Ok(s) = std::str::from_utf8(data) {
        let e = utf7::encode(s);
        assert!(e.is_ascii(), "{e:?}");
        assert_eq!(utf7::decode(&e).as_deref(), Ok(s), "{e:?}");
        if let Ok(d) = utf7::decode(s) {
            assert_eq!(utf7::encode(&d), s, "not canonical: {s:?}");
        }
    }
}

/// Sequence sets: what parses is written back as text that parses to the
/// same set, and the members it names within any bound are ascending,
/// unique and within the bound.
pub fn imap_sequence_set(data: &[u8]) {
    use imap_proto::SequenceSet;

    let Some((&b, text)) = data.split_first() else {
        return;
    };
    let Ok(set) = SequenceSet::parse(text) else {
        return;
    };
    let again = set.to_string();
    assert_eq!(
        SequenceSet::parse(again.as_bytes()).as_ref(),
        Ok(&set),
        "{again}"
    );
    let largest = u32::from(b) * 3;
    let mut last = 0;
    for n in set.iter(largest).take(2048) {
        assert!(
            n > last && n <= largest,
            "{n} after {last} (largest {largest})"
        );
        last = n;
    }
}

/// POP3 status lines (`+OK`/`-ERR`, RFC 2449 response codes): what parses
/// encodes to one CRLF-ended line, without another CR or LF, that parses
/// back to the same status.
pub fn pop3_status(data: &[u8]) {
    use pop3_proto::response::Status;

    let Ok(s) = Status::parse(data) else {
        return;
    };
    let mut wire = bytes::BytesMut::new();
    s.encode(&mut wire);
    let line = wire
        .strip_suffix(b"\r\n")
        .expect("a status line ends in CRLF");
    assert!(!line.iter().any(|b| matches!(b, b'\r' | b'\n')), "{line:?}");
    assert_eq!(Status::parse(line).as_ref(), Ok(&s), "{line:?}");
}

/// The IMAP `Framer` alone, with limits the input picks: the frames are
/// the same whether the bytes come whole or split at any point; it always
/// makes progress (never takes nothing and gives nothing); what it holds
/// never passes one command's text plus its literals (the limits); every
/// command frame ends in CRLF.
pub fn imap_framer(data: &[u8]) {
    use imap_proto::{Frame, Framer, FramerLimits};

    let [a, b, c, rest @ ..] = data else {
        return;
    };
    let limits = FramerLimits::new(16 + usize::from(*a) * 8, u64::from(*b) * 4);
    let bound = limits.max_command + usize::try_from(limits.max_literal).unwrap_or(usize::MAX) + 4;
    let run = |pieces: &[&[u8]]| -> Vec<Frame<'static>> {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        for piece in pieces {
            let mut input = *piece;
            while !input.is_empty() {
                let (used, frame) = f.push(input);
                assert!(used > 0 || frame.is_some(), "no progress");
                assert!(used <= input.len());
                input = &input[used..];
                assert!(
                    f.buffered() <= bound,
                    "{} held, bound {bound}",
                    f.buffered()
                );
                if let Some(frame) = frame {
                    if let Frame::Command(cmd) = &frame {
                        assert!(cmd.ends_with(b"\r\n") || cmd.ends_with(b"\n"), "{cmd:?}");
                    }
                    out.push(frame.into_owned());
                }
            }
        }
        out
    };
    let whole = run(&[rest]);
    let at = usize::from(*c) % (rest.len() + 1);
    let split = run(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole, split, "split at {at} changes the frames");
}
