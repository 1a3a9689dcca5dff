//! POP3: known answers, RFC 1939 transcript, edge cases, split invariance,
//! paired client and server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pop3_proto::client::{self, Event as Reply};
use pop3_proto::response::{RespCode, Status, top, transfer_size};
use pop3_proto::server::{Config, DropEntry, Event, LoginCheck, Output, Session};
use pop3_proto::{Command, CommandError};
use proptest::prelude::*;

const MSGS: [&[u8]; 3] = [
    b"Subject: one\r\n\r\nfirst body\r\n",
    b"Subject: two\n\n.dot line\nno final newline",
    b"No-Blank-Line: true\r\nX: y\r\n",
];

/// Drives a server session like an application with a fixed maildrop.
struct Driver {
    s: Session,
    now: Instant,
    wire: Vec<u8>,
    log: Vec<String>,
    commit_ok: bool,
}

fn config() -> Config {
    let mut c = Config::new("pop.example.org");
    c.apop = true;
    c
}

impl Driver {
    fn new(config: Config) -> Driver {
        let now = Instant::now();
        let mut d = Driver {
            s: Session::new(Arc::new(config), now, [7; 16]),
            now,
            wire: Vec::new(),
            log: Vec::new(),
            commit_ok: true,
        };
        d.pump();
        d
    }

    fn send(&mut self, b: &[u8]) -> String {
        let start = self.wire.len();
        self.s.handle_input(self.now, b);
        self.pump();
        String::from_utf8_lossy(&self.wire[start..]).into_owned()
    }

    fn pump(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::Transmit(b) => self.wire.extend_from_slice(&b),
                Output::Event(Event::Login {
                    token,
                    username,
                    check,
                }) => {
                    let ok = username == "bob"
                        && match &check {
                            LoginCheck::Password(p) => p.expose() == "tanstaaf",
                            LoginCheck::Apop { timestamp, digest } => {
                                LoginCheck::verify_apop(timestamp, digest, "tanstaaf")
                            }
                            LoginCheck::Verified => true,
                            _ => false,
                        };
                    self.log.push(format!("login {username} {ok}"));
                    if ok {
                        let drop = MSGS
                            .iter()
                            .enumerate()
                            .map(|(i, m)| {
                                DropEntry::new(transfer_size(m), format!("uid-{i}")).unwrap()
                            })
                            .collect();
                        self.s.open_maildrop(token, drop).unwrap();
                    } else {
                        self.s
                            .reject(token, Status::err_code(RespCode::Auth, "bad credentials"))
                            .unwrap();
                    }
                }
                Output::Event(Event::ScramLookup { token, username }) => {
                    let c = (username == "bob")
                        .then(|| sasl::ScramCredentials::derive("tanstaaf", b"salt", 4096));
                    self.s.scram_credentials(token, c).unwrap();
                }
                Output::Event(Event::Retrieve { token, index }) => {
                    self.log.push(format!("retrieve {index}"));
                    self.s.send_message(token, MSGS[index]).unwrap();
                }
                Output::Event(Event::Commit { token, deleted }) => {
                    self.log.push(format!("commit {deleted:?}"));
                    if self.commit_ok {
                        self.s.accept(token).unwrap();
                    } else {
                        self.s
                            .reject(
                                token,
                                Status::err_code(
                                    RespCode::SysTemp,
                                    "some deleted messages not removed",
                                ),
                            )
                            .unwrap();
                    }
                }
                Output::StartTls => self.log.push("starttls".into()),
                Output::Compress => self.log.push("compress".into()),
                Output::Closed => self.log.push("closed".into()),
                Output::Event(e) => panic!("{e:?}"),
            }
        }
    }

    fn login(&mut self) {
        assert!(
            self.send(b"USER bob\r\nPASS tanstaaf\r\n")
                .ends_with("+OK maildrop has 3 messages (100 octets)\r\n")
        );
    }
}

fn plain_config() -> Config {
    let mut c = config();
    c.allow_plaintext_auth = true;
    c
}

#[test]
fn apop_known_answer_rfc1939() {
    // RFC 1939 §7: the digest of "<1896.697170952@dbc.mtview.ca.us>tanstaaf".
    assert!(LoginCheck::verify_apop(
        "<1896.697170952@dbc.mtview.ca.us>",
        "c4c9334bac560ecc979e58001b3e22fb",
        "tanstaaf"
    ));
    assert!(!LoginCheck::verify_apop(
        "<1896.697170952@dbc.mtview.ca.us>",
        "c4c9334bac560ecc979e58001b3e22fb",
        "x"
    ));
}

#[test]
fn command_known_answers() {
    fn p(s: &[u8]) -> Result<Command<'_>, CommandError> {
        Command::parse_line(s)
    }
    assert_eq!(
        p(b"PASS my secret words"),
        Ok(Command::pass("my secret words").unwrap())
    );
    assert_eq!(p(b"user bob"), Ok(Command::user("bob").unwrap()));
    assert_eq!(p(b"TOP 1 10"), Ok(Command::Top(1, 10)));
    assert_eq!(p(b"LIST"), Ok(Command::List(None)));
    assert_eq!(p(b"LIST 0"), Ok(Command::List(Some(0))));
    assert_eq!(p(b"RETR 99999999999"), Err(CommandError::Number));
    assert_eq!(p(b"RETR 4294967296"), Err(CommandError::Number));
    assert_eq!(p(b"RETR x"), Err(CommandError::Number));
    assert_eq!(p(b"RETR"), Err(CommandError::Syntax));
    assert_eq!(p(b"STAT now"), Err(CommandError::Syntax));
    assert_eq!(p(b"XYZZY"), Err(CommandError::Unknown));
    assert_eq!(p(b"NOOP\0"), Err(CommandError::ControlCharacter));
    assert_eq!(
        p(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb")
            .map(|c| matches!(c, Command::Apop { .. })),
        Ok(true)
    );
    assert!(!format!("{:?}", Command::pass("hunter2").unwrap()).contains("hunter2"));
    assert_eq!(
        Status::parse(b"-ERR [IN-USE] locked").unwrap().code(),
        Some(&RespCode::InUse)
    );
    assert_eq!(Status::parse(b"+OK").unwrap(), Status::ok(""));
}

#[test]
fn multiline_sizes_match_and_top_cuts() {
    for m in MSGS {
        let mut out = BytesMut::new();
        pop3_proto::response::encode_multiline(m, &mut out);
        // Un-stuff and compare sizes: LIST size == bytes RETR sends.
        let mut dec = session_core::DataDecoder::new();
        let mut back = BytesMut::new();
        assert!(matches!(
            dec.decode(&out, &mut back),
            session_core::BodyProgress::Finished { result: Ok(()), .. }
        ));
        assert_eq!(back.len() as u64, transfer_size(m), "{m:?}");
    }
    assert_eq!(top(MSGS[0], 0), b"Subject: one\r\n\r\n");
    assert_eq!(top(MSGS[0], 5), MSGS[0]);
    assert_eq!(top(MSGS[1], 1), b"Subject: two\n\n.dot line\n");
    assert_eq!(top(MSGS[2], 3), MSGS[2], "no blank line: all headers");
}

#[test]
fn rfc1939_style_session() {
    let mut d = Driver::new(config());
    let greeting = String::from_utf8(d.wire.clone()).unwrap();
    let stamp = greeting.trim_end().rsplit(' ').next().unwrap().to_owned();
    assert!(
        stamp.starts_with('<') && stamp.ends_with("@pop.example.org>"),
        "{greeting}"
    );
    // APOP with the digest of this greeting's timestamp.
    use md5::{Digest, Md5};
    let digest: String = Md5::digest(format!("{stamp}tanstaaf"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        d.send(format!("APOP bob {digest}\r\n").as_bytes()),
        "+OK maildrop has 3 messages (100 octets)\r\n"
    );
    assert_eq!(d.send(b"STAT\r\n"), "+OK 3 100\r\n");
    assert_eq!(
        d.send(b"LIST\r\n"),
        "+OK 3 messages\r\n1 28\r\n2 45\r\n3 27\r\n.\r\n"
    );
    assert_eq!(
        d.send(b"RETR 1\r\n"),
        "+OK message follows\r\nSubject: one\r\n\r\nfirst body\r\n.\r\n"
    );
    assert_eq!(
        d.send(b"RETR 2\r\n"),
        "+OK message follows\r\nSubject: two\r\n\r\n..dot line\r\nno final newline\r\n.\r\n"
    );
    assert_eq!(d.send(b"DELE 1\r\n"), "+OK message 1 deleted\r\n");
    assert_eq!(d.send(b"STAT\r\n"), "+OK 2 72\r\n");
    assert_eq!(d.send(b"RETR 1\r\n"), "-ERR no such message\r\n");
    assert_eq!(d.send(b"DELE 0\r\n"), "-ERR no such message\r\n");
    assert_eq!(d.send(b"LIST 4\r\n"), "-ERR no such message\r\n");
    assert_eq!(
        d.send(b"UIDL\r\n"),
        "+OK 2 messages\r\n2 uid-1\r\n3 uid-2\r\n.\r\n"
    );
    assert_eq!(
        d.send(b"TOP 2 0\r\n"),
        "+OK message follows\r\nSubject: two\r\n\r\n.\r\n"
    );
    assert_eq!(d.send(b"RSET\r\n"), "+OK maildrop has 3 messages\r\n");
    d.send(b"DELE 2\r\nDELE 3\r\n");
    assert_eq!(d.send(b"QUIT\r\n"), "+OK bye\r\n");
    assert!(d.log.contains(&"commit [1, 2]".to_owned()), "{:?}", d.log);
    assert_eq!(d.log.last().unwrap(), "closed");
}

#[test]
fn dropped_connection_deletes_nothing_and_failed_commit_says_err() {
    let mut d = Driver::new(plain_config());
    d.login();
    d.send(b"DELE 1\r\n");
    d.s.handle_eof(d.now);
    d.pump();
    assert!(!d.log.iter().any(|l| l.starts_with("commit")));
    let mut d = Driver::new(plain_config());
    d.commit_ok = false;
    d.login();
    d.send(b"DELE 1\r\n");
    assert_eq!(
        d.send(b"QUIT\r\n"),
        "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    );
    assert_eq!(d.log.last().unwrap(), "closed");
}

#[test]
fn tls_rules() {
    let mut d = Driver::new(config());
    let capa = d.send(b"CAPA\r\n");
    assert!(
        capa.contains("STLS\r\n") && !capa.contains("USER\r\n") && !capa.contains("PLAIN"),
        "{capa}"
    );
    assert_eq!(
        d.send(b"USER bob\r\n"),
        "-ERR USER/PASS need TLS; use STLS first\r\n"
    );
    assert_eq!(
        d.send(b"AUTH PLAIN AGJvYgB0YW5zdGFhZg==\r\n"),
        "-ERR mechanism needs TLS; use STLS first\r\n"
    );
    // STLS with pipelined plaintext: the rest is dropped.
    assert_eq!(
        d.send(b"STLS\r\nUSER evil\r\nPASS x\r\n"),
        "+OK begin TLS negotiation\r\n"
    );
    assert!(d.log.contains(&"starttls".to_owned()));
    assert!(!d.log.iter().any(|l| l.contains("evil")));
    d.s.tls_established(d.now).unwrap();
    let capa = d.send(b"CAPA\r\n");
    assert!(
        !capa.contains("STLS")
            && capa.contains("USER\r\n")
            && capa.contains("SASL SCRAM-SHA-256 PLAIN"),
        "{capa}"
    );
    assert_eq!(d.send(b"STLS\r\n"), "-ERR STLS not available now\r\n");
    d.login();
    assert_eq!(d.send(b"STLS\r\n"), "-ERR STLS not available now\r\n");
}

#[test]
fn sasl_logins_and_failures() {
    let mut c = plain_config();
    c.limits.max_auth_failures = 2;
    let mut d = Driver::new(c.clone());
    assert_eq!(
        d.send(b"AUTH PLAIN AGJvYgB0YW5zdGFhZg==\r\n"),
        "+OK maildrop has 3 messages (100 octets)\r\n"
    );
    let mut d = Driver::new(c.clone());
    assert_eq!(d.send(b"AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(d.send(b"*\r\n"), "-ERR authentication cancelled\r\n");
    assert!(
        d.send(b"AUTH\r\n")
            .starts_with("+OK mechanisms follow\r\nSCRAM-SHA-256\r\nPLAIN\r\n.\r\n")
    );
    // SCRAM through our own SASL client.
    let mut cl = sasl::client::ClientExchange::new(
        sasl::Mechanism::ScramSha256,
        "bob",
        sasl::Secret::new("tanstaaf".into()),
        None,
        b"nonce-nonce-1234",
    );
    let ir = sasl::encode(&cl.initial_response().unwrap());
    let mut r = d.send(format!("AUTH SCRAM-SHA-256 {ir}\r\n").as_bytes());
    while let Some(ch) = r.strip_prefix("+ ") {
        let answer = cl
            .respond(&sasl::decode_base64(ch.trim_end()).unwrap())
            .unwrap();
        r = d.send(format!("{}\r\n", sasl::encode(&answer)).as_bytes());
    }
    assert_eq!(r, "+OK maildrop has 3 messages (100 octets)\r\n");
    // Wrong passwords: [AUTH], then the session closes.
    let mut d = Driver::new(c);
    assert_eq!(
        d.send(b"USER bob\r\nPASS nope\r\n"),
        "+OK send PASS\r\n-ERR [AUTH] bad credentials\r\n"
    );
    let last = d.send(b"USER bob\r\nPASS nope\r\n");
    assert!(
        last.ends_with("-ERR [AUTH] too many failed logins\r\n"),
        "{last}"
    );
    assert_eq!(d.log.last().unwrap(), "closed");
}

#[test]
fn limits_and_autologout() {
    let mut d = Driver::new(plain_config());
    let long = format!("USER {}\r\nNOOP\r\n", "x".repeat(400));
    assert_eq!(
        d.send(long.as_bytes()),
        "-ERR line too long\r\n-ERR command not valid in this state\r\n"
    );
    d.login();
    assert_eq!(d.send(b"NOOP\r\n"), "+OK\r\n");
    let t = d.s.poll_timeout().unwrap();
    assert!(t >= d.now + Duration::from_secs(600));
    d.now = t;
    d.s.handle_timeout(t);
    d.pump();
    assert_eq!(d.log.last().unwrap(), "closed");
    assert!(!d.log.iter().any(|l| l.starts_with("commit")));
}

/// A fixed conversation; returns everything transmitted and the log.
fn run_split(cuts: &[usize]) -> (Vec<u8>, Vec<String>) {
    let input: &[u8] = b"CAPA\r\nUSER bob\r\nPASS tanstaaf\r\nSTAT\r\nLIST\r\nRETR 2\r\nTOP 1 0\r\nDELE 2\r\nLIST 2\r\nBOGUS\r\nUIDL 1\r\nQUIT\r\n";
    let mut d = Driver::new(plain_config());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut last = 0;
    for c in cuts {
        if c > last {
            d.send(&input[last..c]);
            last = c;
        }
    }
    (d.wire, d.log)
}

proptest! {
    #[test]
    fn server_split_invariance(cuts in proptest::collection::vec(0usize..200, 0..30)) {
        prop_assert_eq!(run_split(&cuts), run_split(&[]));
    }

    #[test]
    fn command_round_trip(cmd in prop_oneof![
        "[a-z0-9.@]{1,20}".prop_map(|u| Command::user(u).unwrap()),
        "[ -~]{1,40}".prop_filter("no leading space", |s| !s.starts_with(' ')).prop_map(|p| Command::pass(p).unwrap()),
        ("[a-z0-9.@]{1,20}", "[0-9a-f]{32}").prop_map(|(n, d)| Command::apop(n, &d).unwrap()),
        ("[A-Z0-9-]{1,20}", proptest::option::of("[A-Za-z0-9+/]{1,40}={0,2}|="))
            .prop_map(|(m, ir)| Command::auth(&m, ir.as_deref()).unwrap()),
        Just(Command::Auth { mechanism: None, initial_response: None }),
        any::<Option<u32>>().prop_map(Command::List),
        any::<u32>().prop_map(Command::Retr),
        any::<u32>().prop_map(Command::Dele),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Command::Top(a, b)),
        any::<Option<u32>>().prop_map(Command::Uidl),
        Just(Command::Stat), Just(Command::Noop), Just(Command::Rset), Just(Command::Quit),
        Just(Command::Capa), Just(Command::Stls), Just(Command::Utf8),
    ]) {
        let mut b = BytesMut::new();
        cmd.encode(&mut b);
        prop_assert!(b.ends_with(b"\r\n"));
        prop_assert_eq!(Command::parse_line(&b[..b.len() - 2]), Ok(cmd));
    }

    #[test]
    fn status_round_trip(ok in any::<bool>(), code in proptest::option::of(prop_oneof![
        Just(RespCode::InUse), Just(RespCode::Auth), Just(RespCode::SysTemp), Just(RespCode::SysPerm),
        Just(RespCode::LoginDelay), Just(RespCode::Utf8),
        "[!-.0-\\\\^-~]{1,8}(/[!-.0-\\\\^-~]{1,8}){0,2}".prop_map(|c| RespCode::other(&c).unwrap()),
    ]), text in "([!-~][ -~]{0,30})?") {
        let ambiguous = code.is_none() && text.starts_with('[');
        match Status::new(ok, code, text) {
            Ok(s) => {
                prop_assert!(!ambiguous);
                let mut b = BytesMut::new();
                s.encode(&mut b);
                prop_assert_eq!(Status::parse(&b[..b.len() - 2]), Ok(s));
            }
            // Only a text that would read back as a code is refused.
            Err(_) => prop_assert!(ambiguous),
        }
    }
}

/// Drains a client session: bytes it would write, and its events.
fn drain_client(c: &mut client::Session) -> (Vec<u8>, Vec<Reply>) {
    let mut wire = Vec::new();
    let mut events = Vec::new();
    while let Some(o) = c.poll_output() {
        match o {
            client::Output::Transmit(b) => wire.extend_from_slice(&b),
            client::Output::Event(e) => events.push(e),
            client::Output::StartTls => events.push(Reply::Continue("<starttls>".into())),
            client::Output::Compress => events.push(Reply::Continue("<compress>".into())),
            client::Output::Closed => events.push(Reply::Continue("<closed>".into())),
        }
    }
    (wire, events)
}

fn new_client(now: Instant) -> client::Session {
    client::Session::new(Arc::new(client::Config::default()), now)
}

#[test]
fn paired_client_and_server() {
    let mut server = Driver::new(plain_config());
    let now = server.now;
    let mut c = new_client(now);
    c.handle_input(now, &server.wire);
    let (_, greeting) = drain_client(&mut c);
    assert!(matches!(&greeting[..], [Reply::Greeting(s)] if s.is_ok()));
    for cmd in [
        Command::user("bob").unwrap(),
        Command::pass("tanstaaf").unwrap(),
        Command::Stat,
        Command::Uidl(None),
        Command::Retr(2),
        Command::Top(1, 0),
        Command::Dele(3),
        Command::List(None),
        Command::Quit,
    ] {
        c.send(now, &cmd);
    }
    // Everything pipelined in one write; the replies byte by byte.
    let (bytes, _) = drain_client(&mut c);
    let out = server.send(&bytes);
    let mut replies = Vec::new();
    for b in out.as_bytes() {
        c.handle_input(now, std::slice::from_ref(b));
        replies.extend(drain_client(&mut c).1);
    }
    assert_eq!(replies.len(), 9, "{replies:?}");
    let body = |i: usize| match &replies[i] {
        Reply::Response { body: Some(b), .. } => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body(3), "1 uid-0\r\n2 uid-1\r\n3 uid-2\r\n");
    assert_eq!(
        body(4),
        "Subject: two\r\n\r\n.dot line\r\nno final newline\r\n"
    );
    assert_eq!(body(5), "Subject: one\r\n\r\n");
    assert_eq!(body(7), "1 28\r\n2 45\r\n");
    assert!(server.log.contains(&"commit [2]".to_owned()));
    assert_eq!(c.outstanding(), 0);
}

/// RFC 2449 §5: the CAPA example, read by the client.
#[test]
fn rfc2449_capa_example_client_side() {
    let now = Instant::now();
    let mut c = new_client(now);
    c.handle_input(now, b"+OK POP3 server ready\r\n");
    assert!(matches!(&drain_client(&mut c).1[..], [Reply::Greeting(_)]));
    c.send(now, &Command::Capa);
    assert_eq!(drain_client(&mut c).0, b"CAPA\r\n");
    let server = b"+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL CRAM-MD5 KERBEROS_V4\r\nRESP-CODES\r\n\
LOGIN-DELAY 900\r\nPIPELINING\r\nEXPIRE 60\r\nUIDL\r\nIMPLEMENTATION Shlemazle-Plotz-v302\r\n.\r\n";
    let mut events = Vec::new();
    for chunk in server.chunks(7) {
        c.handle_input(now, chunk);
        events.extend(drain_client(&mut c).1);
    }
    let [
        Reply::Response {
            status,
            body: Some(body),
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert!(status.is_ok());
    let caps: Vec<&str> = std::str::from_utf8(body).unwrap().lines().collect();
    assert_eq!(caps.len(), 9);
    assert_eq!(caps[2], "SASL CRAM-MD5 KERBEROS_V4");
    assert_eq!(caps[8], "IMPLEMENTATION Shlemazle-Plotz-v302");
}

#[test]
fn client_times_out_and_closes_on_garbage() {
    let now = Instant::now();
    let mut c = new_client(now);
    let t = c.poll_timeout().expect("waiting for the greeting");
    assert_eq!(t, now + Duration::from_secs(300));
    c.handle_timeout(t);
    let (_, events) = drain_client(&mut c);
    assert_eq!(events[0], Reply::Error(client::ClientError::TimedOut));
    assert!(c.is_closed() && c.poll_timeout().is_none());

    let mut c = new_client(now);
    c.handle_input(now, b"+OK hi\r\n");
    assert_eq!(c.poll_timeout(), None, "nothing asked, nothing awaited");
    c.send(now, &Command::Noop);
    assert!(c.poll_timeout().is_some());
    c.handle_input(now, b"what is this\r\n+OK\r\n");
    let (_, events) = drain_client(&mut c);
    assert!(
        events.contains(&Reply::Error(client::ClientError::Malformed)),
        "{events:?}"
    );
    assert!(c.is_closed());
}

#[test]
fn client_takes_a_sasl_challenge_only_while_auth_waits() {
    let now = Instant::now();
    let mut c = new_client(now);
    c.handle_input(now, b"+OK ready\r\n");
    c.send(now, &Command::auth("PLAIN", None).unwrap());
    c.handle_input(now, b"+ \r\n+OK logged in\r\n");
    let (_, events) = drain_client(&mut c);
    assert!(
        matches!(&events[..], [Reply::Greeting(_), Reply::Continue(s), Reply::Response { .. }] if s.is_empty()),
        "{events:?}"
    );
    // The AUTH is answered: a challenge now is a hostile server's.
    c.send(now, &Command::Noop);
    c.handle_input(now, b"+ c2VydmVy\r\n");
    let (_, events) = drain_client(&mut c);
    assert!(
        matches!(&events[..], [Reply::Error(client::ClientError::Unexpected), Reply::Continue(s)] if s == "<closed>"),
        "{events:?}"
    );
}

#[test]
fn client_stls_is_a_clean_cut() {
    let now = Instant::now();
    let mut c = new_client(now);
    c.handle_input(now, b"+OK hi\r\n");
    c.send(now, &Command::Stls);
    drain_client(&mut c);
    // A hostile server pipelines a fake response after +OK.
    c.handle_input(now, b"+OK begin\r\n+OK injected\r\n");
    let (_, events) = drain_client(&mut c);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1], Reply::Continue("<starttls>".into()));
    assert!(!c.wants_input());
    c.tls_established(now).unwrap();
    assert!(c.is_tls());
    c.send(now, &Command::Stat);
    c.handle_input(now, b"+OK 0 0\r\n");
    let (_, events) = drain_client(&mut c);
    assert!(matches!(&events[..], [Reply::Response { status, .. }] if status.text() == "0 0"));
}

/// Defect 4: unvalidated fields let a caller put a second line on the wire.
#[test]
fn no_injection_through_pop3_types() {
    assert!(Command::user("a\r\nDELE 1").is_err());
    assert!(Command::user("a b").is_err());
    assert!(Command::pass("x\r\nDELE 1").is_err());
    assert!(Command::pass("x\0y").is_err());
    assert!(Command::apop("bob", "not-a-digest").is_err());
    assert!(Command::auth("PLAIN", Some("AA==\r\nDELE 1")).is_err());
    assert!(pop3_proto::Word::new("a\nb").is_err());
    assert!(pop3_proto::Text::new("a\rb").is_err());
    assert!(RespCode::other("IN-USE] x").is_err());
    assert!(RespCode::other("A\r\n").is_err());
    assert!(RespCode::other("").is_err());
    assert!(RespCode::other("A//B").is_err());
    assert_eq!(RespCode::other("IN-USE"), Ok(RespCode::InUse));
    assert!(Status::new(true, None, "ok\r\n-ERR forged").is_err());
    // The sanitising constructors drop control characters.
    let mut b = BytesMut::new();
    Status::ok("a\r\n+OK b").encode(&mut b);
    assert_eq!(&b[..], b"+OK a+OK b\r\n");
    assert!(DropEntry::new(1, "u1\r\n.").is_err());
    assert!(DropEntry::new(1, "with space").is_err());
    assert!(DropEntry::new(1, "").is_err());
    assert!(DropEntry::new(1, "x".repeat(71)).is_err());
    assert_eq!(DropEntry::new(7, "x".repeat(70)).unwrap().size(), 7);
}

/// Defect 3: input held behind a pending decision had no bound and was
/// copied whole on every read.
#[test]
fn held_input_is_bounded_behind_a_decision() {
    let mut cfg = plain_config();
    cfg.limits.max_buffered_input = 64 * 1024;
    let now = Instant::now();
    let mut s = Session::new(Arc::new(cfg), now, [1; 16]);
    s.handle_input(now, b"USER bob\r\nPASS x\r\n");
    let mut token = None;
    while let Some(o) = s.poll_output() {
        if let Output::Event(e) = o {
            token = e.into_token();
        }
    }
    assert!(token.is_some() && s.is_waiting_for_decision());
    // 36 MB in 16 KiB reads while the login is pending: the session closes
    // at the limit and never holds more.
    let chunk = b"NOOP\r\n".repeat(16 * 1024 / 6);
    let mut fed = 0usize;
    let mut closed = false;
    while fed < 36 * 1024 * 1024 && !closed {
        s.handle_input(now, &chunk);
        fed += chunk.len();
        assert!(s.buffered_input() <= 64 * 1024);
        while let Some(o) = s.poll_output() {
            if let Output::Closed = o {
                closed = true;
            }
        }
    }
    assert!(closed, "closed after {fed} bytes");
    assert!(
        fed <= 128 * 1024,
        "closed at the limit, not after {fed} bytes"
    );
}

/// Defect 1, POP3 side: a dropped decision is answered at its deadline.
#[test]
fn a_dropped_pop3_decision_times_out() {
    let now = Instant::now();
    let mut s = Session::new(Arc::new(plain_config()), now, [1; 16]);
    s.handle_input(now, b"USER bob\r\nPASS x\r\nNOOP\r\n");
    let mut wire = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            Output::Transmit(b) => wire.extend_from_slice(&b),
            Output::Event(e) => {
                // The wrong answer gives the token back ...
                let err = s.accept(e.into_token().unwrap()).unwrap_err();
                assert_eq!(err.error, pop3_proto::server::ApiMisuse::WrongAnswer);
                // ... and the caller drops it.
            }
            _ => {}
        }
    }
    let t = s.poll_timeout().expect("a pending decision has a deadline");
    assert_eq!(t, now + Duration::from_secs(120));
    s.handle_timeout(t);
    while let Some(o) = s.poll_output() {
        if let Output::Transmit(b) = o {
            wire.extend_from_slice(&b);
        }
    }
    let wire = String::from_utf8(wire).unwrap();
    assert!(
        wire.ends_with("-ERR [SYS/TEMP] server busy, try again later\r\n-ERR command not valid in this state\r\n"),
        "{wire}"
    );
}

#[test]
fn pop3_errors_reach_the_limit() {
    let mut d = Driver::new(config());
    let mut n = 0;
    while !d.log.contains(&"closed".to_owned()) && n < 1000 {
        d.send(b"STAT\r\n");
        n += 1;
    }
    assert_eq!(n, 10);
    assert!(String::from_utf8_lossy(&d.wire).ends_with("-ERR too many errors\r\n"));
}

/// How the test application answers the n-th POP3 decision.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Right,
    Reject,
    MisuseThenRight,
    Forget,
}

/// The server under random splits and random answers: held input within
/// bounds, pending decisions resolved at their deadline, the same output for
/// every split.
fn pop3_random_run(cuts: &[usize], answers: &[Answer]) -> Vec<u8> {
    let input: &[u8] = b"CAPA\r\nUSER bob\r\nPASS tanstaaf\r\nSTAT\r\nRETR 2\r\nTOP 1 0\r\nDELE 2\r\nBOGUS\r\nUIDL\r\nRETR 1\r\nQUIT\r\n";
    let mut cfg = plain_config();
    cfg.limits.max_buffered_input = 64;
    let mut now = Instant::now();
    let mut s = Session::new(Arc::new(cfg), now, [3; 16]);
    let mut wire = Vec::new();
    let mut n = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut last = 0;
    let mut pump = |s: &mut Session, wire: &mut Vec<u8>| {
        while let Some(o) = s.poll_output() {
            let e = match o {
                Output::Transmit(b) => {
                    wire.extend_from_slice(&b);
                    continue;
                }
                Output::Event(e) => e,
                _ => continue,
            };
            let a = answers.get(n).copied().unwrap_or(Answer::Right);
            n += 1;
            let right = |s: &mut Session, e: Event| match e {
                Event::Login { token, .. } => {
                    s.open_maildrop(token, vec![DropEntry::new(28, "a").unwrap(); 2])
                }
                Event::Retrieve { token, .. } => s.send_message(token, MSGS[0]),
                Event::Commit { token, .. } => s.accept(token),
                other => s.reject(other.into_token().unwrap(), Status::err("no")),
            };
            let r = match a {
                Answer::Right => right(s, e),
                Answer::Reject => s.reject(e.into_token().unwrap(), Status::err("no")),
                Answer::MisuseThenRight => {
                    let is_commit = matches!(e, Event::Commit { .. });
                    if is_commit {
                        right(s, e)
                    } else {
                        let token = e.into_token().unwrap();
                        let back = s.accept(token).unwrap_err();
                        assert_eq!(back.error, pop3_proto::server::ApiMisuse::WrongAnswer);
                        s.reject(back.into_token(), Status::err("no"))
                    }
                }
                Answer::Forget => Ok(()),
            };
            r.expect("a fitting answer is taken");
        }
    };
    for c in cuts {
        if c > last {
            s.handle_input(now, &input[last..c]);
            pump(&mut s, &mut wire);
            assert!(s.buffered_input() <= 64usize.max(c - last));
            last = c;
        }
        for _ in 0..16 {
            if !s.is_waiting_for_decision() {
                break;
            }
            now = s.poll_timeout().expect("a pending decision has a deadline");
            s.handle_timeout(now);
            pump(&mut s, &mut wire);
        }
        assert!(!s.is_waiting_for_decision(), "resolved by its deadline");
    }
    wire
}

/// The client under random splits of a server's output: the same events.
fn client_events(cuts: &[usize]) -> Vec<Reply> {
    let server: &[u8] = b"+OK hi\r\n+OK 2 99\r\n+OK\r\n1 a\r\n2 b\r\n.\r\n-ERR [SYS/TEMP] busy\r\n+OK\r\nbody\r\n..dot\r\n.\r\n+ Y2hhbA==\r\n+OK bye\r\n";
    let now = Instant::now();
    let mut c = new_client(now);
    for cmd in [
        Command::Stat,
        Command::Uidl(None),
        Command::Retr(1),
        Command::Top(1, 1),
        Command::auth("PLAIN", None).unwrap(),
    ] {
        c.send(now, &cmd);
    }
    c.send(now, &Command::Quit);
    drain_client(&mut c);
    let mut cuts: Vec<usize> = cuts.iter().map(|x| x % (server.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(server.len());
    let mut last = 0;
    let mut events = Vec::new();
    for x in cuts {
        c.handle_input(now, &server[last..x.max(last)]);
        last = x.max(last);
        events.extend(drain_client(&mut c).1);
    }
    events
}

proptest! {
    #[test]
    fn server_survives_random_splits_and_answers(
        cuts in proptest::collection::vec(0usize..200, 0..24),
        answers in proptest::collection::vec(prop_oneof![
            Just(Answer::Right), Just(Answer::Reject), Just(Answer::MisuseThenRight), Just(Answer::Forget)
        ], 0..12),
    ) {
        prop_assert_eq!(pop3_random_run(&cuts, &answers), pop3_random_run(&[], &answers));
    }

    #[test]
    fn client_same_events_for_every_split(cuts in proptest::collection::vec(0usize..200, 0..24)) {
        let whole = client_events(&[]);
        prop_assert_eq!(whole.len(), 7);
        prop_assert_eq!(client_events(&cuts), whole);
    }
}

#[test]
fn huge_timeouts_do_not_panic() {
    let mut cfg = plain_config();
    cfg.timeouts.command = Duration::MAX;
    cfg.timeouts.decision = Duration::MAX;
    let now = Instant::now();
    let mut s = Session::new(Arc::new(cfg), now, [1; 16]);
    s.handle_input(now, b"USER bob\r\nPASS x\r\n");
    assert!(s.poll_timeout().is_some_and(|t| t > now));
    let mut cfg = client::Config::default();
    cfg.timeouts.response = Duration::MAX;
    let mut c = client::Session::new(Arc::new(cfg), now);
    c.send(now, &Command::Noop);
    c.handle_input(now, b"+OK hi\r\n");
    assert!(c.poll_timeout().is_some_and(|t| t > now));
}

/// The conversation the server property runs is really served.
#[test]
fn the_random_run_conversation_is_served() {
    let wire = String::from_utf8(pop3_random_run(&[], &[])).unwrap();
    assert!(wire.contains("+OK maildrop has 2 messages"), "{wire}");
    assert!(wire.contains("+OK message follows"), "{wire}");
    assert!(wire.ends_with("+OK bye\r\n"), "{wire}");
    let forgot = String::from_utf8(pop3_random_run(&[], &[Answer::Forget])).unwrap();
    assert!(forgot.contains("-ERR [SYS/TEMP]"), "{forgot}");
}
