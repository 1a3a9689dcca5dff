//! The IMAP server session under random splits of a client conversation
//! and random (but deterministic per decision) answers: no panic, the same
//! bytes out for every split, and responses that parse back.

use std::sync::Arc;
use std::time::Instant;

use imap_proto::server::{Completion, Config, Event, Output, Request, Selected, Session};
use imap_proto::{FetchValue, Flag, Response};
use proptest::prelude::*;

const CONVERSATION: &[u8] = b"a CAPABILITY\r\n\
b LOGIN alice {6}\r\nsecret\r\n\
c SELECT INBOX\r\n\
d FETCH 1:* (FLAGS UID)\r\n\
e UID SEARCH UNSEEN\r\n\
f APPEND INBOX (\\Seen) {11}\r\nhello world\r\n\
g APPEND INBOX {3+}\r\nabc (\\Draft) {2+}\r\nde\r\n\
h STORE 2 +FLAGS (\\Flagged)\r\n\
i IDLE\r\nDONE\r\n\
j LIST \"\" *\r\n\
k BOGUS\r\n\
l NOOP\r\n\
m LOGOUT\r\n";

struct Run {
    s: Session,
    now: Instant,
    answers: Vec<bool>,
    decided: usize,
    wire: Vec<u8>,
    events: Vec<String>,
}

impl Run {
    fn new(answers: Vec<bool>) -> Run {
        let mut c = Config::new("imap.example");
        c.allow_plaintext_auth = true;
        let now = Instant::now();
        let mut r = Run {
            s: Session::new(Arc::new(c), now, [4; 16]),
            now,
            answers,
            decided: 0,
            wire: Vec::new(),
            events: Vec::new(),
        };
        r.pump();
        r
    }

    fn yes(&mut self) -> bool {
        let a = self.answers.get(self.decided).copied().unwrap_or(true);
        self.decided += 1;
        a
    }

    fn pump(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::Transmit(b) => self.wire.extend_from_slice(&b),
                Output::Event(e) => {
                    // APPEND data arrives in pieces that follow the reads:
                    // compare the bytes, not the pieces.
                    if let Event::AppendData(b) = &e {
                        let text = String::from_utf8_lossy(b).into_owned();
                        match self.events.last_mut() {
                            Some(last) if last.starts_with("data:") => last.push_str(&text),
                            _ => self.events.push(format!("data:{text}")),
                        }
                        continue;
                    }
                    self.events.push(
                        format!("{e:?}")
                            .split(" token")
                            .next()
                            .unwrap_or("")
                            .to_owned(),
                    );
                    self.answer(e);
                }
                _ => {}
            }
        }
    }

    fn answer(&mut self, e: Event) {
        let yes = self.yes();
        let no = || Completion::no("refused");
        let _ = match e {
            Event::Login { token, .. } if yes => self.s.accept_login(token),
            Event::Login { token, .. } => self.s.reject(token, no()),
            Event::Request { token, request } => match request {
                Request::Select { .. } if yes => {
                    self.s.selected(token, Selected::new(3, 4, vec![1, 2, 3]))
                }
                Request::Fetch { messages, .. } | Request::Store { messages, .. } if yes => {
                    for m in messages {
                        let _ = self.s.fetched(
                            &token,
                            m.uid,
                            vec![FetchValue::Flags(vec![Flag::Seen])],
                        );
                    }
                    self.s.complete(token, Completion::ok("done"))
                }
                Request::Search { .. } if yes => self.s.searched(token, vec![2, 3]),
                Request::Append { .. } if yes => self.s.accept(token),
                _ if yes => self.s.complete(token, Completion::ok("done")),
                _ => self.s.reject(token, no()),
            },
            Event::AppendCommit { token } if yes => {
                self.s.complete(token, Completion::ok("stored"))
            }
            Event::AppendCommit { token } => self.s.reject(token, no()),
            _ => Ok(()),
        };
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.s.handle_input(self.now, chunk);
        self.pump();
    }
}

fn run(splits: &[usize], answers: Vec<bool>) -> (Vec<u8>, Vec<String>) {
    let mut r = Run::new(answers);
    let mut rest = CONVERSATION;
    for &n in splits {
        if rest.is_empty() {
            break;
        }
        let n = n.clamp(1, rest.len());
        r.feed(&rest[..n]);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        r.feed(rest);
    }
    (r.wire, r.events)
}

proptest! {
    #[test]
    fn every_split_gives_the_same_conversation(
        splits in proptest::collection::vec(1usize..40, 0..80),
        answers in proptest::collection::vec(proptest::bool::weighted(0.8), 0..20),
    ) {
        let (whole, whole_events) = run(&[], answers.clone());
        let (split, split_events) = run(&splits, answers.clone());
        prop_assert_eq!(&whole_events, &split_events);
        prop_assert_eq!(String::from_utf8_lossy(&whole), String::from_utf8_lossy(&split));
        // The conversation was served, not refused wholesale.
        let text = String::from_utf8_lossy(&whole);
        prop_assert!(text.contains("a OK"), "{}", text);
        // Every response line parses back (literals included).
        let mut rest: &[u8] = &whole;
        while !rest.is_empty() {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").map(|p| p + 2).unwrap_or(rest.len());
            let line = &rest[..line_end];
            if !line.starts_with(b"+ ") {
                prop_assert!(Response::parse(line, false).is_ok(), "unparsable: {:?}", String::from_utf8_lossy(line));
            }
            rest = &rest[line_end..];
        }
    }
}
