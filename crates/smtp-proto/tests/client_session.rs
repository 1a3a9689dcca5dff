//! Our client against our server, no sockets, a virtual clock: every
//! extension negotiated both ways, pipelined replies, per-recipient
//! failures, the 8-bit downgrade, the STARTTLS cut, AUTH and each timeout.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Answer, Driver, default_policy, reply};
use sasl::client::ClientExchange;
use sasl::{Mechanism, Secret};
use smtp_proto::client::{self, ClientError, Envelope, Event, Output, SendError, Session};
use smtp_proto::params::{BodyType, Notify};
use smtp_proto::server::{Event as ServerEvent, Mode};
use smtp_proto::{Domain, ForwardPath, Host, MailParameters, Mailbox, RcptParameters, ReversePath};

struct Pair {
    client: Session,
    server: Driver,
    seen: usize,
    events: Vec<Event>,
    client_tls: bool,
    client_closed: bool,
    client_writes: usize,
}

fn client_config() -> client::Config {
    client::Config::new(Host::Domain(Domain::new("client.example").unwrap()))
}

fn mailbox(s: &str) -> Mailbox<'static> {
    Mailbox::parse(s).unwrap().into_owned()
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        from: ReversePath::Mailbox(mailbox("alice@example.org")),
        params: MailParameters::default(),
        recipients: to
            .iter()
            .map(|t| ForwardPath::Mailbox(mailbox(t)).into())
            .collect(),
    }
}

impl Pair {
    fn new(server: smtp_proto::server::Config, client: client::Config) -> Pair {
        Self::with_policy(server, client, default_policy())
    }

    fn with_policy(
        server: smtp_proto::server::Config,
        client: client::Config,
        policy: common::Policy,
    ) -> Pair {
        let server = Driver::with_policy(server, policy);
        let client = Session::new(Arc::new(client), server.now);
        let mut p = Pair {
            client,
            server,
            seen: 0,
            events: Vec::new(),
            client_tls: false,
            client_closed: false,
            client_writes: 0,
        };
        p.pump();
        p
    }

    fn now(&self) -> Instant {
        self.server.now
    }

    /// Moves bytes both ways until nothing moves; TLS handshakes succeed
    /// at once (the bytes stay as they are).
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(out) = self.client.poll_output() {
                match out {
                    Output::Transmit(b) => {
                        self.client_writes += 1;
                        self.server.session.handle_input(self.server.now, &b);
                        self.server.pump();
                        moved = true;
                    }
                    Output::Event(e) => self.events.push(e),
                    Output::StartTls => self.client_tls = true,
                    Output::Compress => panic!("SMTP never compresses"),
                    Output::Closed => self.client_closed = true,
                }
            }
            if self.server.wire.len() > self.seen && !self.client_tls {
                let fresh = self.server.wire[self.seen..].to_vec();
                self.seen = self.server.wire.len();
                self.client.handle_input(self.server.now, &fresh);
                moved = true;
            }
            if self.client_tls && self.server.starttls {
                self.client_tls = false;
                self.server.finish_tls();
                self.seen = self.server.wire.len();
                self.client.tls_established(self.server.now).unwrap();
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Sends a whole transaction and returns the per-recipient codes.
    fn transact(&mut self, env: Envelope, body: &[u8]) -> Vec<u16> {
        let now = self.now();
        self.client.send(now, env).unwrap();
        self.pump();
        loop {
            let events = self.take_events();
            for e in &events {
                if let Event::Completed(r) = e {
                    return r.iter().map(|r| r.code().get()).collect();
                }
            }
            if events.iter().any(|e| matches!(e, Event::SendBody)) {
                for piece in body.chunks(7) {
                    assert!(self.client.wants_body());
                    self.client.send_body(now, piece).unwrap();
                }
                self.client.finish_body(now).unwrap();
                self.pump();
                continue;
            }
            panic!(
                "transaction stuck: {events:?}; server log {:?}",
                self.server.log
            );
        }
    }
}

fn ready(p: &mut Pair) {
    let e = p.take_events();
    assert_eq!(
        e,
        vec![Event::Ready],
        "server said {}",
        String::from_utf8_lossy(&p.server.wire)
    );
}

const BODY: &[u8] = b"Subject: test\r\n\r\n.leading dot\r\n..two\r\nend\r\n";

#[test]
fn every_combination_of_pipelining_and_chunking_delivers_the_same_bytes() {
    for (server_pipe, server_chunk, client_pipe, client_chunk) in
        (0..16).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0))
    {
        let mut s = common::config();
        s.extensions.pipelining = server_pipe;
        s.extensions.chunking = server_chunk;
        s.extensions.binary_mime = server_chunk;
        let mut c = client_config();
        c.pipelining = client_pipe;
        c.chunking = client_chunk;
        let mut p = Pair::new(s, c);
        ready(&mut p);
        assert_eq!(p.client.capabilities().pipelining, server_pipe);
        assert_eq!(p.client.capabilities().chunking, server_chunk);
        let codes = p.transact(envelope(&["bob@example.net", "carol@example.net"]), BODY);
        assert_eq!(codes, vec![250, 250]);
        assert_eq!(
            p.server.messages,
            vec![BODY.to_vec()],
            "{server_pipe} {server_chunk} {client_pipe} {client_chunk}"
        );
        let wire = String::from_utf8_lossy(&p.server.wire).into_owned();
        let bdat = server_chunk && client_chunk;
        assert!(p.server.log.iter().any(|l| l.starts_with("MESSAGE")));
        // The server's replies to a pipelined group come in one write.
        if server_pipe && client_pipe && !bdat {
            assert!(
                wire.contains("250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n354"),
                "{wire}"
            );
        }
    }
}

#[test]
fn a_pipelined_group_is_one_write_and_one_round_trip() {
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    let before = p.client_writes;
    let codes = p.transact(envelope(&["bob@example.net", "carol@example.net"]), BODY);
    assert_eq!(codes, vec![250, 250]);
    // MAIL+RCPT+RCPT in one write, then BDAT LAST with the body in another.
    assert_eq!(p.client_writes - before, 2);
}

#[test]
fn one_refused_recipient_does_not_abort_the_others() {
    for chunking in [false, true] {
        let mut c = client_config();
        c.chunking = chunking;
        let mut p = Pair::new(common::config(), c);
        ready(&mut p);
        let codes = p.transact(
            envelope(&["bob@example.net", "nobody@example.net", "carol@example.net"]),
            BODY,
        );
        assert_eq!(codes, vec![250, 550, 250]);
        assert!(
            p.server.log.contains(&"MESSAGE 43 bytes to 2".to_owned()),
            "{:?}",
            p.server.log
        );
    }
}

#[test]
fn all_recipients_refused_sends_no_body_and_the_connection_goes_on() {
    for chunking in [false, true] {
        let mut c = client_config();
        c.chunking = chunking;
        let mut p = Pair::new(common::config(), c);
        ready(&mut p);
        let codes = p.transact(
            envelope(&["nobody@example.net", "nobody2@example.net"]),
            BODY,
        );
        assert_eq!(codes, vec![550, 550]);
        assert!(p.server.messages.is_empty());
        // The next transaction on the same connection starts with RSET.
        let codes = p.transact(envelope(&["bob@example.net"]), BODY);
        assert_eq!(codes, vec![250]);
        assert_eq!(p.server.messages.len(), 1);
        let log = p.server.log.join("|");
        assert_eq!(log.matches("MAIL alice@example.org").count(), 2, "{log}");
    }
}

#[test]
fn a_refused_sender_refuses_every_recipient_with_its_reply() {
    let policy: common::Policy = Box::new(|e| match e {
        ServerEvent::Mail(_) => Answer::Reject(reply(550, "Sender blocked")),
        _ => Answer::Accept,
    });
    let mut p = Pair::with_policy(common::config(), client_config(), policy);
    ready(&mut p);
    let codes = p.transact(envelope(&["bob@example.net", "carol@example.net"]), BODY);
    assert_eq!(codes, vec![550, 550]);
    let codes = p.transact(envelope(&["bob@example.net"]), BODY);
    assert_eq!(codes, vec![550]);
}

#[test]
fn connection_reuse_many_transactions() {
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    for i in 0..20 {
        let to = format!("user{i}@example.net");
        assert_eq!(p.transact(envelope(&[&to]), BODY), vec![250]);
    }
    assert_eq!(p.server.messages.len(), 20);
    p.client.quit(p.now());
    p.pump();
    assert!(p.client_closed);
    assert!(p.server.closed);
}

#[test]
fn lmtp_gives_one_reply_per_recipient_after_the_data() {
    for chunking in [false, true] {
        let mut s = common::config();
        s.mode = Mode::Lmtp;
        let mut c = client_config();
        c.mode = Mode::Lmtp;
        c.chunking = chunking;
        let policy: common::Policy = Box::new(|e| match e {
            ServerEvent::Message(m) => Answer::Each(
                (0..m.recipients.len())
                    .map(|i| {
                        if i == 1 {
                            reply(452, "Mailbox full")
                        } else {
                            reply(250, "Delivered")
                        }
                    })
                    .collect(),
            ),
            _ => default_policy()(e),
        });
        let mut p = Pair::with_policy(s, c, policy);
        ready(&mut p);
        let codes = p.transact(
            envelope(&[
                "a@example.net",
                "nobody@example.net",
                "b@example.net",
                "c@example.net",
            ]),
            BODY,
        );
        // Accepted a, b, c get their own replies; b's mailbox was full.
        assert_eq!(codes, vec![250, 550, 452, 250]);
    }
}

#[test]
fn eight_bit_mail_is_refused_without_8bitmime_and_sent_once_downgraded() {
    let mut s = common::config();
    s.extensions.eight_bit_mime = false;
    s.extensions.binary_mime = false;
    let mut p = Pair::new(s, client_config());
    ready(&mut p);
    let msg = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCaf\xc3\xa9\r\n";
    let mut env = envelope(&["bob@example.net"]);
    env.params.body = Some(BodyType::EightBitMime);
    let err = p.client.send(p.now(), env.clone()).unwrap_err();
    assert_eq!(err, SendError::EightBitMime);
    assert_eq!(err.reply().enhanced().unwrap().to_string(), "5.6.3");
    // Nothing went out; the session is still ready.
    assert!(p.client.is_ready());
    let seven = smtp_proto::downgrade::to_seven_bit(msg).unwrap();
    env.params.body = Some(BodyType::SevenBit);
    assert_eq!(p.transact(env, &seven), vec![250]);
    assert_eq!(p.server.messages, vec![seven.clone()]);
    assert!(p.server.messages[0].is_ascii());
    // And BODY= was not sent to a server without 8BITMIME.
    assert!(p.server.log.iter().any(|l| l == "MAIL alice@example.org"));
}

#[test]
fn eight_bit_mail_goes_as_is_with_8bitmime() {
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    let msg = b"Subject: hi\r\n\r\nCaf\xc3\xa9\r\n";
    let mut env = envelope(&["bob@example.net"]);
    env.params.body = Some(BodyType::EightBitMime);
    assert_eq!(p.transact(env, msg), vec![250]);
    assert_eq!(p.server.messages, vec![msg.to_vec()]);
}

#[test]
fn smtputf8_is_needed_for_international_addresses() {
    let mut s = common::config();
    s.extensions.smtputf8 = false;
    let mut p = Pair::new(s, client_config());
    ready(&mut p);
    let env = envelope(&["josé@example.net"]);
    assert_eq!(
        p.client.send(p.now(), env.clone()).unwrap_err(),
        SendError::SmtpUtf8
    );
    // With SMTPUTF8 offered, the parameter is added for the caller.
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    assert_eq!(p.transact(env, BODY), vec![250]);
}

#[test]
fn size_is_checked_before_sending_and_declared_when_offered() {
    let mut s = common::config();
    s.limits.max_message_size = 1000;
    let mut p = Pair::new(s, client_config());
    ready(&mut p);
    assert_eq!(p.client.capabilities().max_size(), Some(1000));
    let mut env = envelope(&["bob@example.net"]);
    env.params.size = Some(5000);
    assert_eq!(
        p.client.send(p.now(), env.clone()).unwrap_err(),
        SendError::TooLarge {
            size: 5000,
            limit: 1000
        }
    );
    env.params.size = Some(BODY.len() as u64);
    assert_eq!(p.transact(env, BODY), vec![250]);
}

#[test]
fn dsn_parameters_pass_only_to_a_server_with_dsn() {
    for dsn in [true, false] {
        let mut s = common::config();
        s.extensions.dsn = dsn;
        let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let policy: common::Policy = Box::new(move |e| {
            if let ServerEvent::Rcpt(r) = e {
                log.lock().unwrap().push(format!("{:?}", r.params.notify));
            }
            default_policy()(e)
        });
        let mut p = Pair::with_policy(s, client_config(), policy);
        ready(&mut p);
        let mut env = envelope(&["bob@example.net"]);
        env.params.ret = Some(smtp_proto::params::Ret::Headers);
        env.params.envid = smtp_proto::params::XText::new("abc123");
        env.recipients[0].params = RcptParameters {
            notify: Some(Notify {
                success: true,
                failure: true,
                delay: false,
            }),
            ..RcptParameters::default()
        };
        // Without DSN, the server would refuse the parameters (555).
        assert_eq!(p.transact(env, BODY), vec![250]);
        let notify = seen.lock().unwrap().clone();
        assert_eq!(notify[0].contains("success: true"), dsn, "{notify:?}");
    }
}

#[test]
fn requiretls_needs_tls_and_the_extension() {
    let mut s = common::config();
    s.extensions.requiretls = true;
    let mut p = Pair::new(s, client_config());
    ready(&mut p);
    let mut env = envelope(&["bob@example.net"]);
    env.params.requiretls = true;
    assert_eq!(
        p.client.send(p.now(), env.clone()).unwrap_err(),
        SendError::RequireTls
    );
    p.client.start_tls(p.now()).unwrap();
    p.pump();
    ready(&mut p);
    assert!(p.client.is_tls());
    assert_eq!(p.transact(env, BODY), vec![250]);
}

#[test]
fn starttls_then_ehlo_again_with_new_capabilities() {
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    assert!(p.client.capabilities().starttls);
    p.client.start_tls(p.now()).unwrap();
    p.pump();
    ready(&mut p);
    assert!(p.client.is_tls());
    assert!(
        !p.client.capabilities().starttls,
        "the new EHLO does not offer STARTTLS"
    );
    let wire = String::from_utf8_lossy(&p.server.wire).into_owned();
    assert_eq!(wire.matches("250-mx.example.org").count(), 2);
    assert_eq!(p.client.start_tls(p.now()), Err(SendError::NotReady));
    assert_eq!(p.transact(envelope(&["bob@example.net"]), BODY), vec![250]);
}

fn scripted(input: &[&[u8]]) -> (Session, Vec<u8>, Vec<Event>, Vec<&'static str>) {
    let now = Instant::now();
    let mut c = Session::new(Arc::new(client_config()), now);
    let mut wire = Vec::new();
    let mut events = Vec::new();
    let mut marks = Vec::new();
    for i in input {
        c.handle_input(now, i);
        drain(&mut c, &mut wire, &mut events, &mut marks);
    }
    (c, wire, events, marks)
}

fn drain(
    c: &mut Session,
    wire: &mut Vec<u8>,
    events: &mut Vec<Event>,
    marks: &mut Vec<&'static str>,
) {
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit(b) => wire.extend_from_slice(&b),
            Output::Event(e) => events.push(e),
            Output::StartTls => marks.push("starttls"),
            Output::Compress => marks.push("compress"),
            Output::Closed => marks.push("closed"),
        }
    }
}

#[test]
fn starttls_is_a_clean_cut() {
    let (mut c, mut wire, mut events, mut marks) =
        scripted(&[b"220 mx ESMTP\r\n", b"250-mx\r\n250 STARTTLS\r\n"]);
    let now = Instant::now();
    c.start_tls(now).unwrap();
    // A man in the middle appends a fake EHLO reply after the 220.
    c.handle_input(now, b"220 go ahead\r\n250-mx\r\n250 AUTH PLAIN\r\n");
    drain(&mut c, &mut wire, &mut events, &mut marks);
    assert_eq!(marks, vec!["starttls"]);
    assert!(!c.wants_input());
    c.tls_established(now).unwrap();
    drain(&mut c, &mut wire, &mut events, &mut marks);
    assert!(String::from_utf8_lossy(&wire).ends_with("STARTTLS\r\nEHLO client.example\r\n"));
    // The injected lines were dropped: the session waits for the real reply.
    assert_eq!(events, vec![Event::Ready]);
    assert!(!c.is_ready());
    c.handle_input(now, b"250-mx\r\n250 PIPELINING\r\n");
    drain(&mut c, &mut wire, &mut events, &mut marks);
    assert!(c.is_ready());
    assert!(c.capabilities().auth.is_empty());
}

#[test]
fn a_refused_starttls_leaves_the_session_usable() {
    let (mut c, mut wire, mut events, mut marks) =
        scripted(&[b"220 mx\r\n", b"250-mx\r\n250 STARTTLS\r\n"]);
    c.start_tls(Instant::now()).unwrap();
    c.handle_input(Instant::now(), b"454 4.7.0 TLS not available\r\n");
    drain(&mut c, &mut wire, &mut events, &mut marks);
    assert!(matches!(&events[1], Event::StartTlsRefused(r) if r.code().get() == 454));
    assert!(c.is_ready());
    assert!(!c.is_tls());
}

#[test]
fn ehlo_refused_falls_back_to_helo() {
    let (c, wire, events, _) = scripted(&[
        b"220 old.example SMTP\r\n",
        b"502 Command not implemented\r\n",
        b"250 old.example\r\n",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&wire),
        "EHLO client.example\r\nHELO client.example\r\n"
    );
    assert_eq!(events, vec![Event::Ready]);
    assert_eq!(c.capabilities().server_name, "old.example");
    assert!(!c.capabilities().pipelining);
}

#[test]
fn helo_without_pipelining_sends_one_command_at_a_time() {
    let now = Instant::now();
    let (mut c, mut wire, mut events, mut marks) =
        scripted(&[b"220 old\r\n", b"500 what\r\n", b"250 old\r\n"]);
    wire.clear();
    c.send(now, envelope(&["a@x.example", "b@x.example"]))
        .unwrap();
    drain(&mut c, &mut wire, &mut events, &mut marks);
    assert_eq!(
        String::from_utf8_lossy(&wire),
        "MAIL FROM:<alice@example.org>\r\n"
    );
    for (reply, next) in [
        (&b"250 ok\r\n"[..], "RCPT TO:<a@x.example>\r\n"),
        (b"250 ok\r\n", "RCPT TO:<b@x.example>\r\n"),
        (b"250 ok\r\n", "DATA\r\n"),
    ] {
        wire.clear();
        c.handle_input(now, reply);
        drain(&mut c, &mut wire, &mut events, &mut marks);
        assert_eq!(String::from_utf8_lossy(&wire), next);
    }
}

#[test]
fn mixed_codes_in_a_multiline_reply_are_refused() {
    let (c, _, events, marks) = scripted(&[b"220 mx\r\n", b"250-mx\r\n251 PIPELINING\r\n"]);
    assert_eq!(
        events,
        vec![Event::Failed(ClientError::Malformed(
            smtp_proto::ReplyError::CodeMismatch
        ))]
    );
    assert_eq!(marks, vec!["closed"]);
    assert!(c.is_closed());
}

#[test]
fn a_554_greeting_is_answered_with_quit() {
    let (c, wire, events, marks) = scripted(&[b"554 5.7.1 go away\r\n"]);
    assert_eq!(wire, b"QUIT\r\n");
    assert!(matches!(&events[0], Event::Failed(ClientError::Greeting(r)) if r.code().get() == 554));
    assert_eq!(marks, vec!["closed"]);
    assert!(c.is_closed());
}

#[test]
fn a_421_mid_transaction_completes_it_as_temporary() {
    let now = Instant::now();
    let (mut c, mut wire, mut events, mut marks) =
        scripted(&[b"220 mx\r\n", b"250-mx\r\n250 PIPELINING\r\n"]);
    c.send(now, envelope(&["a@x.example", "b@x.example"]))
        .unwrap();
    c.handle_input(now, b"250 ok\r\n550 no\r\n421 4.3.2 shutting down\r\n");
    drain(&mut c, &mut wire, &mut events, &mut marks);
    let Event::Completed(r) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(r[0].code().get(), 550);
    assert_eq!(r[1].code().get(), 451);
    assert_eq!(r[1].enhanced().unwrap().to_string(), "4.4.2");
    assert!(matches!(
        &events[2],
        Event::Failed(ClientError::ServiceClosing(_))
    ));
    assert_eq!(marks, vec!["closed"]);
}

#[test]
fn a_reply_nobody_asked_for_closes_the_session() {
    let (_, _, events, marks) = scripted(&[b"220 mx\r\n", b"250 mx\r\n", b"250 surprise\r\n"]);
    assert_eq!(
        events,
        vec![Event::Ready, Event::Failed(ClientError::Unexpected)]
    );
    assert_eq!(marks, vec!["closed"]);
}

#[test]
fn an_overlong_reply_line_is_refused_however_it_arrives() {
    let long = vec![b'2'; 5000];
    let (c, _, events, _) = scripted(&[b"220 mx\r\n", &long[..2500], &long[2500..]]);
    assert!(
        matches!(&events[..], [Event::Failed(ClientError::Malformed(_))]),
        "{events:?}"
    );
    assert!(c.is_closed());
}

/// Each step's timeout, from RFC 5321 §4.5.3.2's defaults.
#[test]
fn each_step_times_out_at_its_own_deadline() {
    let t = client::Timeouts::default();
    type Setup = fn(&mut Session, Instant, &mut Vec<u8>);
    let steps: Vec<(&str, Duration, Setup)> = vec![
        ("greeting", t.greeting, |_, _, _| {}),
        ("ehlo", t.command, |c, now, _| {
            c.handle_input(now, b"220 mx\r\n")
        }),
        ("mail", t.mail, |c, now, _| {
            c.handle_input(now, b"220 mx\r\n250 mx\r\n");
            c.send(now, envelope(&["a@x.example"])).unwrap();
        }),
        ("rcpt", t.rcpt, |c, now, _| {
            c.handle_input(now, b"220 mx\r\n250 mx\r\n");
            c.send(now, envelope(&["a@x.example"])).unwrap();
            c.handle_input(now, b"250 ok\r\n");
        }),
        ("data", t.data_init, |c, now, _| {
            c.handle_input(now, b"220 mx\r\n250 mx\r\n");
            c.send(now, envelope(&["a@x.example"])).unwrap();
            c.handle_input(now, b"250 ok\r\n250 ok\r\n");
        }),
        ("data end", t.data_end, |c, now, _| {
            c.handle_input(now, b"220 mx\r\n250 mx\r\n");
            c.send(now, envelope(&["a@x.example"])).unwrap();
            c.handle_input(now, b"250 ok\r\n250 ok\r\n354 go\r\n");
            c.send_body(now, b"x\r\n").unwrap();
            c.finish_body(now).unwrap();
        }),
    ];
    for (name, timeout, setup) in steps {
        let now = Instant::now();
        let mut c = Session::new(Arc::new(client_config()), now);
        let mut wire = Vec::new();
        setup(&mut c, now, &mut wire);
        let (mut events, mut marks) = (Vec::new(), Vec::new());
        drain(&mut c, &mut wire, &mut events, &mut marks);
        events.clear();
        assert_eq!(c.poll_timeout(), Some(now + timeout), "{name}");
        c.handle_timeout(now + timeout - Duration::from_millis(1));
        drain(&mut c, &mut wire, &mut events, &mut marks);
        assert!(events.is_empty(), "{name}: too early");
        c.handle_timeout(now + timeout);
        drain(&mut c, &mut wire, &mut events, &mut marks);
        assert_eq!(
            events.last(),
            Some(&Event::Failed(ClientError::TimedOut)),
            "{name}"
        );
        if name != "greeting" && name != "ehlo" {
            let Event::Completed(r) = &events[0] else {
                panic!("{name}: {events:?}")
            };
            assert_eq!(r[0].code().get(), 451, "{name}");
        }
        assert_eq!(marks, vec!["closed"], "{name}");
        assert_eq!(c.poll_timeout(), None);
    }
}

fn auth_config() -> smtp_proto::server::Config {
    let mut s = common::config();
    s.auth_mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];
    s.allow_plaintext_auth = true;
    s
}

#[test]
fn auth_plain_login_and_scram_after_tls() {
    for (mech, password, ok) in [
        (Mechanism::Plain, "tanstaaf", true),
        (Mechanism::Login, "tanstaaf", true),
        (Mechanism::ScramSha256, "tanstaaf", true),
        (Mechanism::Plain, "wrong", false),
        (Mechanism::ScramSha256, "wrong", false),
    ] {
        let mut p = Pair::new(auth_config(), client_config());
        ready(&mut p);
        let x = ClientExchange::new(mech, "tim", Secret::new(password.into()), None, &[9; 16]);
        if mech.is_plaintext() {
            assert_eq!(
                p.client.authenticate(p.now(), x).unwrap_err(),
                client::AuthError::NeedsTls
            );
        }
        p.client.start_tls(p.now()).unwrap();
        p.pump();
        ready(&mut p);
        let x = ClientExchange::new(mech, "tim", Secret::new(password.into()), None, &[9; 16]);
        p.client.authenticate(p.now(), x).unwrap();
        p.pump();
        let events = p.take_events();
        match (&events[..], ok) {
            ([Event::Authenticated(Ok(()))], true) => {}
            ([Event::Authenticated(Err(r))], false) => assert_eq!(r.code().get(), 535, "{mech:?}"),
            other => panic!("{mech:?} {password}: {other:?}"),
        }
        assert!(p.client.is_ready());
    }
}

#[test]
fn a_mechanism_not_offered_is_not_tried() {
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    let x = ClientExchange::new(
        Mechanism::Plain,
        "tim",
        Secret::new("x".into()),
        None,
        &[1; 16],
    );
    assert_eq!(
        p.client.authenticate(p.now(), x).unwrap_err(),
        client::AuthError::NotOffered
    );
}

#[test]
fn many_recipients_stay_within_the_pipelining_window() {
    let mut c = client_config();
    c.limits.pipeline_window = 200;
    let mut s = common::config();
    s.limits.max_recipients = 1000;
    let mut p = Pair::new(s, c);
    ready(&mut p);
    let to: Vec<String> = (0..300).map(|i| format!("user{i}@example.net")).collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let codes = p.transact(envelope(&to), BODY);
    assert_eq!(codes, vec![250; 300]);
    assert!(
        p.client_writes > 300 * 25 / 200,
        "the window split the group"
    );
}

#[test]
fn a_large_body_streams_in_bdat_chunks() {
    let mut p = Pair::new(common::config(), client_config());
    ready(&mut p);
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| b"abcdefghij\r\n"[(i % 12) as usize])
        .collect();
    let now = p.now();
    p.client.send(now, envelope(&["bob@example.net"])).unwrap();
    p.pump();
    assert_eq!(p.take_events(), vec![Event::SendBody]);
    for piece in body.chunks(64 * 1024) {
        assert!(p.client.wants_body());
        p.client.send_body(now, piece).unwrap();
        p.pump();
    }
    p.client.finish_body(now).unwrap();
    p.pump();
    assert!(matches!(&p.take_events()[..], [Event::Completed(r)] if r[0].code().get() == 250));
    assert_eq!(p.server.messages[0].len(), body.len());
    assert!(p.server.messages[0] == body);
}

/// The server's side of a conversation, one entry per turn (what it sends
/// after the client's last flight).
const SERVER_TURNS: &[&[u8]] = &[
    b"220 mx.example ESMTP\r\n",
    b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 DSN\r\n",
    b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 no\r\n354 go\r\n",
    b"250 2.0.0 queued\r\n",
    b"250 2.1.0 OK\r\n452 4.2.2 full\r\n554 5.5.1 no valid recipients\r\n",
    b"221 bye\r\n",
];

/// Runs the client over `SERVER_TURNS`, each turn cut at `cuts` (modulo
/// its length); returns what it wrote and its events.
fn run_split(cuts: &[usize]) -> (Vec<u8>, Vec<Event>) {
    let now = Instant::now();
    let mut c = Session::new(Arc::new(client_config()), now);
    let (mut wire, mut events, mut marks) = (Vec::new(), Vec::new(), Vec::new());
    let mut acted = 0;
    for turn in SERVER_TURNS {
        let mut bounds: Vec<usize> = cuts.iter().map(|&k| k % turn.len()).collect();
        bounds.push(turn.len());
        bounds.sort_unstable();
        let mut at = 0;
        for end in bounds {
            if end > at {
                c.handle_input(now, &turn[at..end]);
                at = end;
                drain(&mut c, &mut wire, &mut events, &mut marks);
            }
        }
        // The caller acts on what the events said.
        while acted < events.len() {
            match &events[acted] {
                Event::Ready => c
                    .send(now, envelope(&["a@x.example", "b@x.example"]))
                    .unwrap(),
                Event::SendBody => {
                    c.send_body(now, b"Subject: s\r\n\r\n.x\r\n").unwrap();
                    c.finish_body(now).unwrap();
                }
                Event::Completed(r) if r.len() == 2 => {
                    c.send(now, envelope(&["c@x.example"])).unwrap();
                }
                Event::Completed(_) => c.quit(now),
                _ => {}
            }
            acted += 1;
            drain(&mut c, &mut wire, &mut events, &mut marks);
        }
    }
    assert_eq!(marks, vec!["closed"]);
    (wire, events)
}

proptest::proptest! {
    /// However the server's bytes are split across reads, the client writes
    /// the same bytes and reports the same events.
    #[test]
    fn client_output_does_not_depend_on_read_boundaries(cuts in proptest::collection::vec(0usize..400, 0..12)) {
        let whole = run_split(&[]);
        let split = run_split(&cuts);
        proptest::prop_assert_eq!(&split, &whole);
        let codes: Vec<Vec<u16>> = whole.1.iter().filter_map(|e| match e {
            Event::Completed(r) => Some(r.iter().map(|r| r.code().get()).collect()),
            _ => None,
        }).collect();
        proptest::prop_assert_eq!(codes, vec![vec![250, 550], vec![452]]);
    }
}
