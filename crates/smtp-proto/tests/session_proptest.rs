//! The server session under random splits, random decisions (misuse and
//! forgotten tokens included) and random time: no panic, held input within
//! its bound, every pending decision resolved by its deadline, and the same
//! output for every split.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use smtp_proto::server::{Config, Event, Output, Session, Token};
use smtp_proto::{Domain, replies};

const CONVERSATION: &[&[u8]] = &[
    b"EHLO client.example\r\n",
    b"MAIL FROM:<a@example.org> SIZE=100\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
    b"Subject: x\r\n\r\n..dotted\r\nbody\r\n.\r\n",
    b"MAIL FROM:<>\r\nRCPT TO:<d@example.org>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\n",
    b"RSET\r\nNOOP\r\nVRFY x\r\nBOGUS\r\nRCPT TO:<e@example.org>\r\n",
    b"AUTH PLAIN AGJvYgBwdw==\r\n",
    b"MAIL FROM:<f@example.org>\r\nRCPT TO:<g@example.org>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
];

/// How the test application answers the n-th decision.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Accept,
    Reject,
    /// A wrong answer first (the token comes back), then accept.
    MisuseThenAccept,
    /// Forget the token: the session's decision timeout answers.
    Forget,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Accept),
        2 => Just(Answer::Reject),
        2 => Just(Answer::MisuseThenAccept),
        1 => Just(Answer::Forget),
    ]
}

struct Run {
    session: Session,
    now: Instant,
    answers: Vec<Answer>,
    decided: usize,
    wire: Vec<u8>,
    closed: bool,
}

impl Run {
    fn new(answers: Vec<Answer>) -> Run {
        let mut cfg = Config::new(Domain::new("mx.example.org").unwrap());
        cfg.auth_mechanisms = vec![sasl::Mechanism::Plain];
        cfg.allow_plaintext_auth = true;
        cfg.limits.max_buffered_input = 256;
        let now = Instant::now();
        let mut r = Run {
            session: Session::new(Arc::new(cfg), now, [9; 16]),
            now,
            answers,
            decided: 0,
            wire: Vec::new(),
            closed: false,
        };
        r.pump();
        r
    }

    fn decide(&mut self, token: Token) {
        let a = self
            .answers
            .get(self.decided)
            .copied()
            .unwrap_or(Answer::Accept);
        self.decided += 1;
        let s = &mut self.session;
        let result = match a {
            Answer::Accept => s.accept(token),
            Answer::Reject => s.reject(token, replies::NO_SUCH_USER),
            Answer::MisuseThenAccept => {
                let e = s.scram_credentials(token, None);
                let e = match e {
                    // A SCRAM lookup takes this answer: fine.
                    Ok(()) => return,
                    Err(e) => e,
                };
                let e = s.respond_each(e.token, Vec::new()).unwrap_err();
                s.accept(e.into_token())
            }
            Answer::Forget => return,
        };
        result.expect("a right answer to a pending decision is taken");
    }

    fn pump(&mut self) {
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Transmit(b) => {
                    assert!(!self.closed, "nothing after the close");
                    self.wire.extend_from_slice(&b);
                }
                Output::Event(e @ (Event::MessageData(_) | Event::MessageAborted)) => drop(e),
                Output::Event(e) => {
                    let token = e.into_token().expect("a decision");
                    self.decide(token);
                }
                Output::StartTls => panic!("no STARTTLS sent"),
                Output::Compress => panic!("SMTP never compresses"),
                Output::Closed => self.closed = true,
            }
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.session.handle_input(self.now, chunk);
        self.pump();
        assert!(self.session.buffered_input() <= 256.max(chunk.len()));
        assert!(
            !self.session.is_waiting_for_decision() || self.session.poll_timeout().is_some(),
            "a pending decision always has a deadline"
        );
    }

    /// Lets time run until nothing is pending (bounded).
    fn settle(&mut self) {
        for _ in 0..64 {
            if !self.session.is_waiting_for_decision() {
                return;
            }
            let t = self.session.poll_timeout().expect("deadline");
            self.now = self.now.max(t);
            self.session.handle_timeout(self.now);
            self.pump();
        }
        panic!("a decision was never resolved");
    }
}

fn input() -> Vec<u8> {
    CONVERSATION.concat()
}

/// Feeds the conversation cut at `cuts`, settling pending decisions at the
/// end of each chunk when `settle`.
fn run(cuts: &[usize], answers: &[Answer], waits: &[u16]) -> (Vec<u8>, bool) {
    let input = input();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut r = Run::new(answers.to_vec());
    let mut last = 0;
    for (i, c) in cuts.into_iter().enumerate() {
        if c > last {
            r.feed(&input[last..c]);
            last = c;
        }
        if let Some(&w) = waits.get(i) {
            r.now += Duration::from_secs(u64::from(w));
            r.session.handle_timeout(r.now);
            r.pump();
        }
        // Whatever is still pending is answered by the session in time.
        r.settle();
    }
    (r.wire, r.closed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn same_output_for_every_split(
        cuts in proptest::collection::vec(0usize..400, 0..24),
        answers in proptest::collection::vec(answer(), 0..24),
    ) {
        let whole = run(&[], &answers, &[]);
        prop_assert_eq!(run(&cuts, &answers, &[]), whole);
    }

    #[test]
    fn random_time_never_breaks_the_session(
        cuts in proptest::collection::vec(0usize..400, 0..24),
        answers in proptest::collection::vec(answer(), 0..24),
        waits in proptest::collection::vec(0u16..400, 0..24),
    ) {
        let (wire, _) = run(&cuts, &answers, &waits);
        // Every reply line is a well-formed reply line.
        for line in wire.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            prop_assert!(line.ends_with(b"\r") && line.len() >= 4, "{:?}", String::from_utf8_lossy(line));
            prop_assert!(line[..3].iter().all(u8::is_ascii_digit));
        }
    }
}

/// The conversation the properties run is really served (so "the same
/// output for every split" compares something): with every decision
/// accepted, both DATA messages and the BDAT one are accepted, AUTH
/// succeeds, and QUIT closes.
#[test]
fn the_conversation_is_served() {
    let (wire, closed) = run(&[], &[], &[]);
    let wire = String::from_utf8(wire).unwrap();
    assert_eq!(
        wire.matches("250 2.0.0 Message accepted").count(),
        3,
        "{wire}"
    );
    assert!(wire.contains("235 2.7.0"), "{wire}");
    assert!(wire.contains("500 5.5.1 Command unrecognized"), "{wire}");
    assert!(
        wire.ends_with("221 2.0.0 mx.example.org closing connection\r\n"),
        "{wire}"
    );
    assert!(closed);
    // A forgotten decision is answered by the session with 451.
    let (wire, _) = run(&[], &[Answer::Forget], &[]);
    assert!(String::from_utf8(wire).unwrap().contains("451 4.3.0"));
}
