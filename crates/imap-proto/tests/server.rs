//! The IMAP server session driven through transcripts, no sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imap_proto::server::{
    Completion, Config, Event, LoginCheck, Output, Request, Selected, Session,
};
use imap_proto::{Code, FetchValue, Flag};

struct H {
    s: Session,
    now: Instant,
    wire: String,
    events: Vec<Event>,
    tls_asked: bool,
    compress_asked: bool,
    closed: bool,
}

impl H {
    fn with(f: impl FnOnce(&mut Config)) -> H {
        let mut c = Config::new("imap.example");
        c.allow_plaintext_auth = true;
        c.capabilities = vec!["UIDPLUS".into(), "MOVE".into()];
        f(&mut c);
        let now = Instant::now();
        let mut h = H {
            s: Session::new(Arc::new(c), now, [3; 16]),
            now,
            wire: String::new(),
            events: Vec::new(),
            tls_asked: false,
            compress_asked: false,
            closed: false,
        };
        h.pump();
        h
    }

    fn new() -> H {
        H::with(|_| {})
    }

    fn pump(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::Transmit(b) => self.wire.push_str(&String::from_utf8_lossy(&b)),
                Output::Event(e) => self.events.push(e),
                Output::StartTls => self.tls_asked = true,
                Output::Compress => self.compress_asked = true,
                Output::Closed => self.closed = true,
            }
        }
    }

    fn send(&mut self, input: &str) -> String {
        self.s.handle_input(self.now, input.as_bytes());
        self.pump();
        std::mem::take(&mut self.wire)
    }

    fn take_wire(&mut self) -> String {
        self.pump();
        std::mem::take(&mut self.wire)
    }

    fn event(&mut self) -> Event {
        self.pump();
        assert!(
            !self.events.is_empty(),
            "no event; wire so far: {}",
            self.wire
        );
        self.events.remove(0)
    }

    /// The next event, which must be a request.
    fn request(&mut self) -> (imap_proto::server::Token, Request) {
        match self.event() {
            Event::Request { token, request } => (token, request),
            e => panic!("not a request: {e:?}"),
        }
    }

    fn login(&mut self) {
        self.send("l1 LOGIN alice secret\r\n");
        let Event::Login { token, .. } = self.event() else {
            panic!("not a login")
        };
        self.s.accept_login(token).unwrap();
        let w = self.take_wire();
        assert!(w.starts_with("l1 OK [CAPABILITY "), "{w}");
    }

    fn select(&mut self, uids: Vec<u32>) {
        self.send("s1 SELECT INBOX\r\n");
        let Event::Request {
            token,
            request: Request::Select { .. },
        } = self.event()
        else {
            panic!("not a select")
        };
        let next = uids.iter().max().copied().unwrap_or(0) + 1;
        self.s
            .selected(token, Selected::new(7, next, uids))
            .unwrap();
        let w = self.take_wire();
        assert!(w.contains("s1 OK [READ-WRITE]"), "{w}");
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.pump();
    }
}

#[test]
fn the_greeting_carries_capabilities_and_login_waits_for_tls() {
    let mut h = H::with(|c| {
        c.allow_plaintext_auth = false;
        c.starttls = true;
    });
    let g = h.take_wire();
    assert!(g.starts_with("* OK [CAPABILITY IMAP4rev1 "), "{g}");
    assert!(
        g.contains(" STARTTLS") && g.contains(" LOGINDISABLED"),
        "{g}"
    );
    assert!(!g.contains("AUTH=PLAIN"), "{g}");
    assert!(g.contains("AUTH=SCRAM-SHA-256"), "{g}");
    let w = h.send("a LOGIN alice secret\r\n");
    assert_eq!(
        w,
        "a NO [PRIVACYREQUIRED] LOGIN needs TLS (STARTTLS first)\r\n"
    );
    assert!(h.events.is_empty());
}

#[test]
fn starttls_is_a_clean_cut_and_pipelined_plaintext_is_discarded() {
    let mut h = H::with(|c| {
        c.allow_plaintext_auth = false;
        c.starttls = true;
    });
    h.take_wire();
    let w = h.send("a STARTTLS\r\nb LOGIN alice secret\r\n");
    assert_eq!(w, "a OK Begin TLS negotiation now\r\n");
    assert!(h.tls_asked);
    assert!(h.events.is_empty(), "the injected LOGIN must not run");
    h.s.tls_established(h.now).unwrap();
    let w = h.send("c CAPABILITY\r\n");
    assert!(w.contains("AUTH=PLAIN") && !w.contains("STARTTLS"), "{w}");
    h.send("d LOGIN alice secret\r\n");
    assert!(matches!(h.event(), Event::Login { .. }));
}

#[test]
fn pipelined_commands_run_in_order_and_the_login_ok_has_capabilities() {
    let mut h = H::new();
    h.take_wire();
    let w = h.send("a LOGIN alice secret\r\nb SELECT INBOX\r\nc NOOP\r\n");
    assert_eq!(w, "", "nothing answered before the login decision");
    let Event::Login {
        token,
        username,
        check,
    } = h.event()
    else {
        panic!()
    };
    assert_eq!(username, "alice");
    assert!(matches!(check, LoginCheck::Password(p) if p.expose() == "secret"));
    assert!(h.events.is_empty(), "SELECT waits for the login");
    h.s.accept_login(token).unwrap();
    let w = h.take_wire();
    assert!(w.starts_with("a OK [CAPABILITY IMAP4rev1 "), "{w}");
    assert!(w.contains("UIDPLUS"), "post-login capabilities: {w}");
    let Event::Request {
        token,
        request: Request::Select {
            mailbox, read_only, ..
        },
    } = h.event()
    else {
        panic!()
    };
    assert_eq!((mailbox.as_str(), read_only), ("INBOX", false));
    let mut sel = Selected::new(9, 5, vec![4, 2, 1]);
    sel.first_unseen = Some(2);
    h.s.selected(token, sel).unwrap();
    let w = h.take_wire();
    assert!(w.starts_with("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 2]"), "{w}");
    assert!(w.contains("* OK [UIDVALIDITY 9] "), "{w}");
    assert!(w.contains("* OK [UIDNEXT 5] "), "{w}");
    assert!(w.contains("\\*)] "), "{w}");
    assert!(
        w.ends_with("b OK [READ-WRITE] SELECT completed\r\nc OK NOOP completed\r\n"),
        "{w}"
    );
}

#[test]
fn failed_logins_are_slowed_counted_and_end_in_bye() {
    let mut h = H::new();
    h.take_wire();
    for i in 1..=3u32 {
        h.send(&format!("t{i} LOGIN alice wrong\r\nn{i} NOOP\r\n"));
        let Event::Login { token, .. } = h.event() else {
            panic!()
        };
        h.s.reject(token, Completion::no("invalid credentials"))
            .unwrap();
        let w = h.take_wire();
        if i < 3 {
            assert_eq!(w, "", "the NO is held back");
            assert!(!h.s.wants_input());
            assert_eq!(
                h.s.poll_timeout(),
                Some(h.now + Duration::from_secs(u64::from(i)))
            );
            h.advance(Duration::from_secs(u64::from(i)));
            let w = h.take_wire();
            assert_eq!(
                w,
                format!(
                    "t{i} NO [AUTHENTICATIONFAILED] invalid credentials\r\nn{i} OK NOOP completed\r\n"
                )
            );
        } else {
            assert!(w.ends_with("* BYE Too many failed logins\r\n"), "{w}");
            assert!(h.closed);
        }
    }
}

#[test]
fn repeated_bad_commands_before_login_end_in_bye_and_bad_tags_are_never_echoed() {
    let mut h = H::new();
    h.take_wire();
    let w = h.send("a+b NOOP\r\n");
    assert!(w.starts_with("* BAD "), "{w}");
    let w = h.send("\"x\" NOOP\r\n");
    assert!(w.starts_with("* BAD"), "{w}");
    let mut w = String::new();
    for i in 0..8 {
        w += &h.send(&format!("x{i} FROB\r\n"));
    }
    assert!(w.ends_with("* BYE Too many invalid commands\r\n"), "{w}");
    assert!(h.closed);
}

#[test]
fn append_is_decided_before_its_literal_and_streams() {
    let mut h = H::new();
    h.login();
    let w = h.send("a APPEND INBOX (\\Seen) {11}\r\n");
    assert_eq!(w, "", "no + before the application accepted");
    let Event::Request {
        token,
        request:
            Request::Append {
                mailbox,
                flags,
                size,
                index,
                ..
            },
    } = h.event()
    else {
        panic!()
    };
    assert_eq!((mailbox.as_str(), size, index), ("INBOX", 11, 0));
    assert_eq!(flags, vec![Flag::Seen]);
    h.s.accept(token).unwrap();
    assert_eq!(h.take_wire(), "+ Ready for literal data\r\n");
    h.send("hello");
    h.send(" world\r\nb NOOP\r\n");
    let mut body = Vec::new();
    loop {
        match h.event() {
            Event::AppendData(b) => body.extend_from_slice(&b),
            Event::AppendCommit { token } => {
                assert_eq!(body, b"hello world");
                h.s.complete(
                    token,
                    Completion::ok_code(
                        Code::AppendUid(7, imap_proto::SequenceSet::parse(b"12").unwrap()),
                        "APPEND completed",
                    ),
                )
                .unwrap();
                break;
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(
        h.take_wire(),
        "a OK [APPENDUID 7 12] APPEND completed\r\nb OK NOOP completed\r\n"
    );
}

#[test]
fn a_refused_append_never_gets_its_continuation_and_the_next_command_runs() {
    let mut h = H::new();
    h.login();
    h.send("a APPEND Nowhere {11}\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    h.s.reject(
        token,
        Completion::no_code(Code::TryCreate, "no such mailbox"),
    )
    .unwrap();
    assert_eq!(h.take_wire(), "a NO [TRYCREATE] no such mailbox\r\n");
    let w = h.send("b NOOP\r\n");
    assert_eq!(w, "b OK NOOP completed\r\n");
}

#[test]
fn a_too_big_non_synchronising_append_is_skipped_never_parsed() {
    let mut h = H::with(|c| c.limits.max_append = 10);
    h.login();
    let w = h.send("a APPEND INBOX {20+}\r\nc LOGOUT\r\nd LOGOUT\r\n\r\nb NOOP\r\n");
    assert_eq!(
        w,
        "a NO [TOOBIG] message too large\r\nb OK NOOP completed\r\n"
    );
    assert!(!h.closed);
    assert!(h.events.is_empty());
}

#[test]
fn literal_lengths_past_every_limit_are_refused() {
    let mut h = H::new();
    h.take_wire();
    let w = h.send("a LOGIN {4294967296}\r\n");
    assert_eq!(w, "a BAD literal too large\r\n");
    let w = h.send("b LOGIN {99999999999999999999}\r\n");
    assert!(w.starts_with("b BAD"), "{w}");
    let w = h.send("c NOOP\r\n");
    assert_eq!(w, "c OK NOOP completed\r\n");
}

#[test]
fn a_nul_in_an_append_message_stores_nothing() {
    let mut h = H::new();
    h.login();
    h.send("a APPEND INBOX {3+}\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    h.s.accept(token).unwrap();
    let w = h.send("a\0b\r\nb NOOP\r\n");
    let mut aborted = false;
    while let Some(e) = h.events.first() {
        match e {
            Event::AppendData(_) => {}
            Event::AppendAbort => aborted = true,
            e => panic!("{e:?}"),
        }
        h.events.remove(0);
    }
    assert!(aborted);
    assert_eq!(
        w,
        "a BAD NUL is not allowed in a message\r\nb OK NOOP completed\r\n"
    );
}

#[test]
fn idle_delivers_changes_at_once_and_done_with_the_next_command_works() {
    let mut h = H::new();
    h.login();
    h.select(vec![1, 2]);
    assert_eq!(h.send("i IDLE\r\n"), "+ idling\r\n");
    h.s.push_new(3, false);
    assert_eq!(h.take_wire(), "* 3 EXISTS\r\n* 0 RECENT\r\n");
    h.s.push_expunge(1);
    assert_eq!(h.take_wire(), "* 1 EXPUNGE\r\n");
    // iOS sends DONE and the next command in one packet.
    let w = h.send("DONE\r\nn NOOP\r\n");
    assert_eq!(w, "i OK IDLE terminated\r\nn OK NOOP completed\r\n");
}

#[test]
fn idle_keepalives_and_the_idle_limit_come_from_poll_timeout() {
    let mut h = H::with(|c| {
        c.timeouts.idle_keepalive = Duration::from_secs(120);
        c.timeouts.idle = Duration::from_secs(300);
    });
    h.login();
    h.send("i IDLE\r\n");
    assert_eq!(h.s.poll_timeout(), Some(h.now + Duration::from_secs(120)));
    h.advance(Duration::from_secs(120));
    assert_eq!(h.take_wire(), "* OK Still here\r\n");
    h.advance(Duration::from_secs(120));
    h.advance(Duration::from_secs(60));
    let w = h.take_wire();
    assert!(w.ends_with("* BYE IDLE for too long\r\n"), "{w}");
    assert!(h.closed);
}

#[test]
fn no_expunge_during_a_fetch_by_number_but_flags_and_exists_go() {
    let mut h = H::new();
    h.login();
    h.select(vec![1, 2, 3]);
    h.s.push_expunge(2);
    h.s.push_flags(3, vec![Flag::Flagged], Some(12));
    h.s.push_new(4, false);
    h.send("f FETCH 1:3 (FLAGS)\r\n");
    let Event::Request {
        token,
        request: Request::Fetch { messages, .. },
    } = h.event()
    else {
        panic!()
    };
    assert_eq!(messages.len(), 3);
    for m in messages.iter().filter(|m| m.uid != 2) {
        h.s.fetched(&token, m.uid, vec![FetchValue::Flags(vec![])])
            .unwrap();
    }
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    let w = h.take_wire();
    assert_eq!(
        w,
        "* 1 FETCH (FLAGS ())\r\n* 3 FETCH (FLAGS ())\r\n* 4 EXISTS\r\n* 0 RECENT\r\nf NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
    );
    let w = h.send("n NOOP\r\n");
    assert_eq!(w, "* 2 EXPUNGE\r\nn OK NOOP completed\r\n");
}

#[test]
fn uid_fetch_carries_uids_and_may_expunge() {
    let mut h = H::new();
    h.login();
    h.select(vec![10, 20, 30]);
    h.s.push_expunge(10);
    h.send("f UID FETCH 25:* (FLAGS)\r\n");
    let Event::Request {
        token,
        request: Request::Fetch { messages, uid, .. },
    } = h.event()
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![30]);
    h.s.fetched(&token, 30, vec![FetchValue::Flags(vec![Flag::Seen])])
        .unwrap();
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    assert_eq!(
        h.take_wire(),
        "* 3 FETCH (UID 30 FLAGS (\\Seen))\r\n* 1 EXPUNGE\r\nf OK FETCH completed\r\n"
    );
}

#[test]
fn sequence_sets_out_of_range_are_bad() {
    let mut h = H::new();
    h.login();
    h.select(vec![1, 2]);
    assert!(h.send("a FETCH 0 FLAGS\r\n").starts_with("a BAD"));
    assert!(h.send("b FETCH 4294967296 FLAGS\r\n").starts_with("b BAD"));
    assert!(h.send("c FETCH 3 FLAGS\r\n").starts_with("c BAD"));
    assert_eq!(
        h.send("d UID FETCH 3 FLAGS\r\n"),
        "d OK FETCH completed\r\n"
    );
    assert!(h.events.is_empty());
}

#[test]
fn deep_nesting_in_search_is_refused_without_recursion() {
    let mut h = H::new();
    h.login();
    h.select(vec![1]);
    let deep = format!(
        "a SEARCH {}ALL{}\r\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(h.send(&deep).starts_with("a BAD"));
    let nots = format!("b SEARCH {}ALL\r\n", "NOT ".repeat(1_000));
    assert!(h.send(&nots).starts_with("b BAD"));
    assert!(h.events.is_empty());
}

#[test]
fn search_answers_numbers_or_uids_and_esearch() {
    let mut h = H::new();
    h.login();
    h.select(vec![5, 6, 7, 9]);
    h.send("a SEARCH ALL\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    h.s.searched(token, vec![9, 6, 7]).unwrap();
    assert_eq!(h.take_wire(), "* SEARCH 2 3 4\r\na OK SEARCH completed\r\n");
    h.send("b UID SEARCH RETURN (MIN COUNT ALL) ALL\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    h.s.searched(token, vec![9, 6, 7]).unwrap();
    assert_eq!(
        h.take_wire(),
        "* ESEARCH (TAG \"b\") UID MIN 6 COUNT 3 ALL 6:7,9\r\nb OK SEARCH completed\r\n"
    );
}

#[test]
fn decisions_left_pending_are_answered_by_the_session() {
    let mut h = H::new();
    h.login();
    h.send("a LIST \"\" *\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    h.advance(Duration::from_secs(120));
    assert_eq!(h.take_wire(), "a NO [UNAVAILABLE] server busy\r\n");
    let err = h.s.complete(token, Completion::ok("late")).unwrap_err();
    assert_eq!(err.error, imap_proto::server::ApiMisuse::Expired);
}

#[test]
fn sasl_plain_with_initial_response_logs_in() {
    let mut h = H::new();
    h.take_wire();
    // "\0alice\0secret"
    h.send("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    let Event::Login {
        token,
        username,
        check,
    } = h.event()
    else {
        panic!()
    };
    assert_eq!(username, "alice");
    assert!(matches!(check, LoginCheck::Password(p) if p.expose() == "secret"));
    h.s.accept_login(token).unwrap();
    assert!(h.take_wire().starts_with("a OK [CAPABILITY "));
    // Without the initial response, an empty challenge first.
    let mut h = H::new();
    h.take_wire();
    assert_eq!(h.send("a AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    h.send("AGFsaWNlAHNlY3JldA==\r\n");
    assert!(matches!(h.event(), Event::Login { .. }));
}

#[test]
fn autologout_before_login() {
    let mut h = H::new();
    h.take_wire();
    h.advance(Duration::from_secs(60));
    assert!(h.take_wire().starts_with("* BYE Autologout"));
    assert!(h.closed);
}

#[test]
fn utf8_append_streams_after_enable() {
    let mut h = H::new();
    h.login();
    h.send("e ENABLE UTF8=ACCEPT\r\n");
    let w = h.send("a APPEND INBOX UTF8 (~{6}\r\n");
    assert_eq!(w, "");
    let Event::Request {
        token,
        request: Request::Append { size, .. },
    } = h.event()
    else {
        panic!()
    };
    assert_eq!(size, 6);
    h.s.accept(token).unwrap();
    assert_eq!(h.take_wire(), "+ Ready for literal data\r\n");
    h.send("h\u{e9}llo) (\\Seen) UTF8 (~{2+}\r\nhi)\r\n");
    let mut data = Vec::new();
    let mut second = None;
    while let Some(e) = h.events.first() {
        match e {
            Event::AppendData(b) => data.extend_from_slice(b),
            Event::Request {
                request:
                    Request::Append {
                        size, index, flags, ..
                    },
                ..
            } => second = Some((*size, *index, flags.clone())),
            Event::AppendCommit { .. } => break,
            e => panic!("{e:?}"),
        }
        let e = h.events.remove(0);
        if let Event::Request { token, .. } = e {
            h.s.accept(token).unwrap();
            h.pump();
        }
    }
    assert_eq!(second, Some((2, 1, vec![Flag::Seen])));
    assert_eq!(data, "h\u{e9}llohi".as_bytes());
    let Event::AppendCommit { token } = h.event() else {
        panic!("no commit; wire: {}", h.wire)
    };
    h.s.complete(token, Completion::ok("APPEND completed"))
        .unwrap();
    assert_eq!(h.take_wire(), "a OK APPEND completed\r\n");
}

#[test]
fn a_large_body_streams_as_one_literal_in_pieces() {
    let mut h = H::new();
    h.login();
    h.select(vec![4, 9]);
    h.send("f UID FETCH 9 (FLAGS BODY.PEEK[])\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    let body = FetchValue::BodySection {
        section: imap_proto::Section {
            part: vec![],
            text: imap_proto::SectionText::Full,
            partial: None,
        },
        origin: None,
        data: None,
    };
    assert!(
        h.s.fetched_literal(&token, 9, vec![FetchValue::Flags(vec![])], &body, 10)
            .unwrap()
    );
    assert!(h.s.literal_open());
    // Nothing else may come between the pieces.
    assert!(
        h.s.fetched(&token, 4, vec![FetchValue::Flags(vec![])])
            .is_err()
    );
    h.s.literal_data(&token, b"hello").unwrap();
    assert_eq!(
        h.take_wire(),
        "* 2 FETCH (UID 9 FLAGS () BODY[] {10}\r\nhello"
    );
    let token =
        h.s.complete(token, Completion::ok("early"))
            .unwrap_err()
            .into_token();
    h.s.literal_data(&token, b" worldEXTRA").unwrap();
    assert!(!h.s.literal_open());
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    let w = h.take_wire();
    assert_eq!(w, " worl)\r\nf OK FETCH completed\r\n");
}

#[test]
fn a_literal_cut_short_closes_the_connection() {
    let mut h = H::new();
    h.login();
    h.select(vec![1]);
    h.send("f FETCH 1 RFC822\r\n");
    let Event::Request { token, .. } = h.event() else {
        panic!()
    };
    let last = FetchValue::Rfc822 {
        part: imap_proto::Rfc822Part::Full,
        data: None,
    };
    assert!(h.s.fetched_literal(&token, 1, vec![], &last, 100).unwrap());
    h.s.literal_data(&token, b"partial").unwrap();
    h.s.reject(token, Completion::no("disk error")).unwrap();
    let w = h.take_wire();
    assert!(w.ends_with("partial") && h.closed, "{w}");
}

#[test]
fn searchres_keeps_the_result_as_dollar() {
    let mut h = H::new();
    h.login();
    h.select(vec![3, 5, 8, 13]);
    assert!(h.s.capabilities().iter().any(|c| c == "SEARCHRES"));
    h.send("a UID SEARCH RETURN (SAVE) FLAGGED\r\n");
    let (token, _) = h.request();
    h.s.searched(token, vec![13, 5]).unwrap();
    // SAVE alone: no ESEARCH response.
    assert_eq!(h.take_wire(), "a OK SEARCH completed\r\n");
    h.send("b FETCH $ (FLAGS)\r\n");
    let (token, Request::Fetch { messages, .. }) = h.request() else {
        panic!()
    };
    assert_eq!(
        messages.iter().map(|m| (m.seq, m.uid)).collect::<Vec<_>>(),
        vec![(2, 5), (4, 13)]
    );
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    h.take_wire();
    h.send("c SEARCH $ SEEN\r\n");
    let (token, Request::Search { keys, .. }) = h.request() else {
        panic!()
    };
    assert_eq!(
        keys[0],
        imap_proto::SearchKey::Uid(imap_proto::SequenceSet::parse(b"5,13").unwrap())
    );
    // MIN with SAVE saves only the minimum.
    h.s.searched(token, vec![13]).unwrap();
    h.take_wire();
    h.send("d SEARCH RETURN (SAVE MIN) ALL\r\n");
    let (token, _) = h.request();
    h.s.searched(token, vec![3, 5, 8]).unwrap();
    assert_eq!(
        h.take_wire(),
        "* ESEARCH (TAG \"d\") MIN 1\r\nd OK SEARCH completed\r\n"
    );
    h.send("e UID FETCH $ UID\r\n");
    let (_, Request::Fetch { messages, .. }) = h.request() else {
        panic!()
    };
    assert_eq!(messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn binary_content_in_a_literal8_append_is_converted_or_refused_with_unknown_cte() {
    let mut h = H::new();
    h.login();
    h.send("a APPEND INBOX ~{3+}\r\n");
    let (token, _) = h.request();
    h.s.accept(token).unwrap();
    let w = h.send("x\0y\r\nb NOOP\r\n");
    assert_eq!(
        w,
        "a NO [UNKNOWN-CTE] binary content that cannot be converted\r\nb OK NOOP completed\r\n"
    );
    // A binary MIME part is converted to base64 before the application
    // sees it (RFC 3516 §4.3).
    h.events.clear();
    let msg = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\xff\r\n";
    h.send(&format!("d APPEND INBOX ~{{{}+}}\r\n", msg.len()));
    let (token, _) = h.request();
    h.s.accept(token).unwrap();
    h.s.handle_input(h.now, msg);
    h.s.handle_input(h.now, b"\r\n");
    h.pump();
    let data: Vec<u8> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AppendData(d) => Some(d.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        data,
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAP8NCg==\r\n"
    );
    let commit = h.events.drain(..).find_map(|e| match e {
        Event::AppendCommit { token } => Some(token),
        _ => None,
    });
    h.s.complete(
        commit.expect("a commit"),
        Completion::ok("APPEND completed"),
    )
    .unwrap();
    assert!(h.take_wire().contains("d OK APPEND completed"));
    // Without NUL a literal8 message is stored as any other.
    h.events.clear();
    h.send("c APPEND INBOX ~{2+}\r\nok\r\n");
    let (token, _) = h.request();
    h.s.accept(token).unwrap();
    h.pump();
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::AppendCommit { .. }))
    );
}

#[test]
fn enable_imap4rev2_switches_to_its_rules() {
    let mut h = H::new();
    h.login();
    assert!(h.s.capabilities().iter().any(|c| c == "IMAP4rev2"));
    assert_eq!(
        h.send("e ENABLE IMAP4rev2\r\n"),
        "* ENABLED IMAP4rev2\r\ne OK ENABLE completed\r\n"
    );
    assert!(h.s.utf8(), "IMAP4rev2 includes UTF8=ACCEPT");
    h.send("s1 SELECT INBOX\r\n");
    let (token, _) = h.request();
    let mut sel = Selected::new(7, 4, vec![1, 2, 3]);
    sel.recent = vec![3];
    h.s.selected(token, sel).unwrap();
    let w = h.take_wire();
    assert!(w.contains("* 3 EXISTS\r\n") && !w.contains("RECENT"), "{w}");
    // Plain SEARCH is answered with ESEARCH.
    h.send("a SEARCH ALL\r\n");
    let (token, _) = h.request();
    h.s.searched(token, vec![1, 2]).unwrap();
    assert_eq!(
        h.take_wire(),
        "* ESEARCH (TAG \"a\") ALL 1:2\r\na OK SEARCH completed\r\n"
    );
    // No \Recent in FLAGS, nor RECENT after EXISTS.
    h.send("f FETCH 3 FLAGS\r\n");
    let (token, _) = h.request();
    h.s.fetched(
        &token,
        3,
        vec![FetchValue::Flags(vec![
            Flag::Seen,
            Flag::Extension("Recent".into()),
        ])],
    )
    .unwrap();
    h.s.push_new(4, true);
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    assert_eq!(
        h.take_wire(),
        "* 3 FETCH (FLAGS (\\Seen))\r\n* 4 EXISTS\r\nf OK FETCH completed\r\n"
    );
    // Selecting another mailbox closes the first one visibly.
    let w = h.send("s2 EXAMINE Archive\r\n");
    assert_eq!(w, "* OK [CLOSED] previous mailbox closed\r\n");
}

#[test]
fn sort_answers_in_the_applications_order_as_numbers_or_uids() {
    let mut h = H::new();
    h.login();
    h.select(vec![10, 20, 30]);
    h.send("a SORT (REVERSE ARRIVAL) UTF-8 ALL\r\n");
    let (token, Request::Sort { criteria, uid, .. }) = h.request() else {
        panic!()
    };
    assert!(!uid);
    assert!(criteria[0].reverse);
    // An unknown UID (99) is left out.
    h.s.sorted(token, vec![30, 99, 10, 20]).unwrap();
    assert_eq!(h.take_wire(), "* SORT 3 1 2\r\na OK SORT completed\r\n");
    h.send("b UID SORT (SIZE) US-ASCII ALL\r\n");
    let (token, _) = h.request();
    h.s.sorted(token, vec![20, 10]).unwrap();
    assert_eq!(h.take_wire(), "* SORT 20 10\r\nb OK SORT completed\r\n");
    let w = h.send("c SORT (SIZE) KOI8-R ALL\r\n");
    assert!(w.starts_with("c NO [BADCHARSET (UTF-8 US-ASCII)]"), "{w}");
}

#[test]
fn thread_renumbers_and_leaves_unknown_uids_out() {
    let mut h = H::new();
    h.login();
    h.select(vec![10, 20, 30]);
    h.send("a THREAD ORDEREDSUBJECT UTF-8 ALL\r\n");
    let (token, Request::Thread { algorithm, .. }) = h.request() else {
        panic!()
    };
    assert_eq!(algorithm, imap_proto::ThreadAlgorithm::OrderedSubject);
    let t = |m, children| imap_proto::Thread {
        message: Some(m),
        children,
    };
    // 99 is not in the view: its reply (30) takes its place.
    h.s.threaded(
        token,
        vec![
            t(20, vec![imap_proto::Thread::leaf(10)]),
            t(99, vec![imap_proto::Thread::leaf(30)]),
        ],
    )
    .unwrap();
    assert_eq!(
        h.take_wire(),
        "* THREAD (2 1)(3)\r\na OK THREAD completed\r\n"
    );
}

#[test]
fn esort_returns_esearch_in_sort_order() {
    let mut h = H::new();
    h.login();
    h.select(vec![10, 20, 30, 40]);
    h.send("a SORT RETURN (MIN MAX COUNT ALL) (REVERSE ARRIVAL) UTF-8 ALL\r\n");
    let (token, _) = h.request();
    h.s.sorted(token, vec![40, 30, 10]).unwrap();
    assert_eq!(
        h.take_wire(),
        "* ESEARCH (TAG \"a\") MIN 4 MAX 1 COUNT 3 ALL 4,3,1\r\na OK SORT completed\r\n"
    );
    h.send("b UID SORT RETURN () (ARRIVAL) UTF-8 ALL\r\n");
    let (token, _) = h.request();
    h.s.sorted(token, vec![10, 20, 30]).unwrap();
    assert_eq!(
        h.take_wire(),
        "* ESEARCH (TAG \"b\") UID ALL 10,20,30\r\nb OK SORT completed\r\n"
    );
}

fn condstore_config(c: &mut Config) {
    c.capabilities = vec!["CONDSTORE".into(), "QRESYNC".into()];
}

#[test]
fn a_condstore_enabling_fetch_reports_highestmodseq_and_flag_updates_carry_modseq() {
    let mut h = H::with(condstore_config);
    h.login();
    h.send("s1 SELECT INBOX\r\n");
    let (token, _) = h.request();
    let mut sel = Selected::new(7, 4, vec![1, 2, 3]);
    sel.highest_modseq = Some(638435220681800000);
    h.s.selected(token, sel).unwrap();
    let w = h.take_wire();
    assert!(w.contains("* OK [HIGHESTMODSEQ 638435220681800000]"), "{w}");
    assert!(!h.s.condstore());
    // Before CONDSTORE is on, a flag update has no MODSEQ.
    h.s.push_flags(2, vec![Flag::Seen], Some(638435220681800001));
    assert_eq!(
        h.send("n NOOP\r\n"),
        "* 2 FETCH (FLAGS (\\Seen))\r\nn OK NOOP completed\r\n"
    );
    // FETCH MODSEQ switches it on: HIGHESTMODSEQ first (RFC 7162 §3.1).
    assert_eq!(
        h.send("f FETCH 1 (MODSEQ)\r\n"),
        "* OK [HIGHESTMODSEQ 638435220681800000] Highest\r\n"
    );
    let (token, _) = h.request();
    assert!(h.s.condstore());
    h.s.fetched(&token, 1, vec![FetchValue::ModSeq(5)]).unwrap();
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    assert_eq!(
        h.take_wire(),
        "* 1 FETCH (MODSEQ (5))\r\nf OK FETCH completed\r\n"
    );
    h.s.push_flags(3, vec![], Some(638435220681800002));
    assert_eq!(
        h.send("n NOOP\r\n"),
        "* 3 FETCH (FLAGS () UID 3 MODSEQ (638435220681800002))\r\nn OK NOOP completed\r\n"
    );
}

#[test]
fn changedsince_asks_for_modseq_and_unchangedsince_reports_modified() {
    let mut h = H::with(condstore_config);
    h.login();
    h.select(vec![1, 2, 3, 4]);
    h.send("f FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n");
    let (
        token,
        Request::Fetch {
            items,
            changed_since,
            ..
        },
    ) = h.request()
    else {
        panic!()
    };
    assert_eq!(changed_since, Some(12345));
    assert!(items.contains(&imap_proto::FetchItem::ModSeq), "{items:?}");
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    h.take_wire();
    // UNCHANGEDSINCE: 2 and 4 changed since; .SILENT still tells MODSEQ.
    h.send("s UID STORE 1:4 (UNCHANGEDSINCE 100) +FLAGS.SILENT (\\Deleted)\r\n");
    let (
        token,
        Request::Store {
            unchanged_since, ..
        },
    ) = h.request()
    else {
        panic!()
    };
    assert_eq!(unchanged_since, Some(100));
    h.s.store_modified(&token, &[2, 4]).unwrap();
    for uid in [1, 3] {
        h.s.fetched(
            &token,
            uid,
            vec![
                FetchValue::Flags(vec![Flag::Deleted]),
                FetchValue::ModSeq(200 + u64::from(uid)),
            ],
        )
        .unwrap();
    }
    h.s.complete(token, Completion::ok("STORE completed"))
        .unwrap();
    assert_eq!(
        h.take_wire(),
        "* 1 FETCH (UID 1 MODSEQ (201))\r\n* 3 FETCH (UID 3 MODSEQ (203))\r\ns OK [MODIFIED 2,4] Conditional STORE failed for some messages\r\n"
    );
    // By number, MODIFIED names numbers.
    h.send("t STORE 2:3 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)\r\n");
    let (token, _) = h.request();
    h.s.store_modified(&token, &[2, 3]).unwrap();
    h.s.complete(token, Completion::ok("STORE completed"))
        .unwrap();
    assert!(h.take_wire().contains("t OK [MODIFIED 2:3]"));
}

#[test]
fn search_modseq_returns_the_highest_modseq_of_the_answer() {
    let mut h = H::with(condstore_config);
    h.login();
    h.select(vec![1, 2, 3]);
    h.send("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n");
    let (token, _) = h.request();
    h.s.searched_with_modseq(token, vec![(1, 900), (3, 700)])
        .unwrap();
    let w = h.take_wire();
    assert!(
        w.starts_with("* OK [HIGHESTMODSEQ") || w.starts_with("* SEARCH"),
        "{w}"
    );
    assert!(w.contains("* SEARCH 1 3 (MODSEQ 900)\r\n"), "{w}");
    h.send("b SEARCH RETURN (MAX) MODSEQ 5\r\n");
    let (token, _) = h.request();
    h.s.searched_with_modseq(token, vec![(1, 900), (3, 700)])
        .unwrap();
    assert!(
        h.take_wire()
            .starts_with("* ESEARCH (TAG \"b\") MAX 3 MODSEQ 700\r\n")
    );
    // Without a MODSEQ key, no MODSEQ in the answer; nothing matched, none.
    h.send("c SEARCH ALL\r\n");
    let (token, _) = h.request();
    h.s.searched_with_modseq(token, vec![(2, 9)]).unwrap();
    assert!(h.take_wire().starts_with("* SEARCH 2\r\n"));
    h.send("d SEARCH MODSEQ 5000\r\n");
    let (token, _) = h.request();
    h.s.searched_with_modseq(token, vec![]).unwrap();
    assert!(h.take_wire().starts_with("* SEARCH\r\n"));
}

#[test]
fn qresync_select_reports_vanished_earlier_and_changes_since_the_clients_modseq() {
    let mut h = H::with(condstore_config);
    h.login();
    // QRESYNC without ENABLE is BAD (RFC 7162 §3.2.5).
    assert!(
        h.send("s0 SELECT INBOX (QRESYNC (7 10))\r\n")
            .starts_with("s0 BAD")
    );
    assert_eq!(
        h.send("e ENABLE QRESYNC\r\n"),
        "* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n"
    );
    assert!(h.s.qresync() && h.s.condstore());
    h.send("s1 SELECT INBOX (QRESYNC (7 10 1:20 (1:5 1:5)))\r\n");
    let (token, Request::Select { qresync, .. }) = h.request() else {
        panic!()
    };
    let q = qresync.unwrap();
    assert_eq!((q.uid_validity, q.mod_seq), (7, 10));
    let mut sel = Selected::new(7, 31, vec![1, 3, 5, 30]);
    sel.highest_modseq = Some(40);
    sel.changed = vec![
        imap_proto::server::FlagState {
            uid: 30,
            flags: vec![],
            modseq: 39,
        },
        imap_proto::server::FlagState {
            uid: 3,
            flags: vec![Flag::Seen],
            modseq: 20,
        },
    ];
    sel.expunged_since = Some(vec![2, 4, 25]);
    h.s.selected(token, sel).unwrap();
    let w = h.take_wire();
    // 25 is outside the client's known UIDs; 30 too.
    assert!(
        w.contains(
            "* OK [HIGHESTMODSEQ 40] Highest\r\n* VANISHED (EARLIER) 2,4\r\n* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (20))\r\ns1 OK [READ-WRITE]"
        ),
        "{w}"
    );
    // The log was trimmed: every known UID that is missing is reported,
    // and the previous mailbox is CLOSED first.
    assert_eq!(
        h.send("s2 EXAMINE INBOX (QRESYNC (7 10))\r\n"),
        "* OK [CLOSED] previous mailbox closed\r\n"
    );
    let (token, _) = h.request();
    let mut sel = Selected::new(7, 31, vec![1, 3, 5, 30]);
    sel.highest_modseq = Some(40);
    h.s.selected(token, sel).unwrap();
    let w = h.take_wire();
    assert!(w.contains("* VANISHED (EARLIER) 2,4,6:29\r\n"), "{w}");
    // Another UIDVALIDITY: nothing to resync.
    h.send("s3 SELECT INBOX (QRESYNC (8 10))\r\n");
    let (token, _) = h.request();
    let mut sel = Selected::new(7, 31, vec![1]);
    sel.highest_modseq = Some(40);
    sel.expunged_since = Some(vec![2]);
    h.s.selected(token, sel).unwrap();
    assert!(!h.take_wire().contains("VANISHED"));
}

#[test]
fn with_qresync_expunges_are_vanished_and_uid_fetch_can_ask_for_them() {
    let mut h = H::with(condstore_config);
    h.login();
    h.send("e ENABLE QRESYNC\r\n");
    h.select(vec![1, 2, 3, 4, 5]);
    h.s.push_expunge(2);
    h.s.push_expunge(3);
    assert_eq!(
        h.send("n NOOP\r\n"),
        "* VANISHED 2:3\r\nn OK NOOP completed\r\n"
    );
    // VANISHED needs UID FETCH and CHANGEDSINCE.
    assert!(
        h.send("a FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n")
            .starts_with("a BAD")
    );
    h.send("b UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n");
    let (token, Request::Fetch { vanished, .. }) = h.request() else {
        panic!()
    };
    assert!(vanished);
    h.s.fetch_vanished(&token, Some(&[3, 2, 9])).unwrap();
    h.s.fetched(
        &token,
        4,
        vec![FetchValue::Flags(vec![]), FetchValue::ModSeq(8)],
    )
    .unwrap();
    h.s.complete(token, Completion::ok("FETCH completed"))
        .unwrap();
    assert_eq!(
        h.take_wire(),
        "* VANISHED (EARLIER) 2:3,9\r\n* 2 FETCH (UID 4 FLAGS () MODSEQ (8))\r\nb OK FETCH completed\r\n"
    );
    // The client's own EXPUNGE is told as VANISHED too.
    h.send("x EXPUNGE\r\n");
    let (token, _) = h.request();
    h.s.expunged(&token, &[1, 5]).unwrap();
    h.s.complete(token, Completion::ok("EXPUNGE completed"))
        .unwrap();
    assert_eq!(
        h.take_wire(),
        "* VANISHED 1,5\r\nx OK EXPUNGE completed\r\n"
    );
    assert_eq!(h.s.view().uids(), &[4]);
}

#[test]
fn compress_deflate_switches_after_the_tagged_ok_and_only_once() {
    let mut h = H::with(|c| c.compress = true);
    // Not before login.
    assert!(h.send("a COMPRESS DEFLATE\r\n").contains("\r\na BAD"));
    h.login();
    assert!(h.send("c CAPABILITY\r\n").contains(" COMPRESS=DEFLATE"));
    assert!(h.send("b COMPRESS LZMA\r\n").starts_with("b BAD"));
    // The OK is the last uncompressed byte; what the client sent before
    // seeing it is dropped, not read as commands.
    let w = h.send("z COMPRESS DEFLATE\r\nn NOOP\r\n");
    assert_eq!(w, "z OK DEFLATE active\r\n");
    assert!(h.compress_asked);
    assert!(h.events.is_empty());
    // The socket loop now inflates; the session reads commands again.
    assert!(
        h.send("y COMPRESS DEFLATE\r\n")
            .starts_with("y NO [COMPRESSIONACTIVE]")
    );
    assert!(!h.send("c CAPABILITY\r\n").contains("COMPRESS=DEFLATE"));
}

#[test]
fn compress_is_not_offered_unless_configured() {
    let mut h = H::new();
    h.login();
    assert!(!h.send("c CAPABILITY\r\n").contains("COMPRESS"));
    assert!(h.send("z COMPRESS DEFLATE\r\n").starts_with("z BAD"));
    assert!(!h.compress_asked);
}

#[test]
fn catenate_messages_are_announced_in_order_with_a_streamed_literal_after_them() {
    let mut h = H::with(|c| c.capabilities = vec!["CATENATE".into(), "MULTIAPPEND".into()]);
    h.login();
    // Only CATENATE messages: the command is read whole (its TEXT literal
    // gets a `+` like any), then each message is built in turn.
    assert_eq!(
        h.send("a APPEND Drafts (\\Seen) CATENATE (URL \"/INBOX/;UID=3\" TEXT {5}\r\n"),
        "+ Ready for literal data\r\n"
    );
    h.send("hello) CATENATE (TEXT {2+}\r\nhi)\r\n");
    let (
        token,
        Request::Catenate {
            parts,
            index,
            flags,
            ..
        },
    ) = h.request()
    else {
        panic!()
    };
    assert_eq!((index, flags), (0, vec![Flag::Seen]));
    assert_eq!(
        parts,
        vec![
            imap_proto::CatenatePart::Url("/INBOX/;UID=3".into()),
            imap_proto::CatenatePart::Text(b"hello"[..].into()),
        ]
    );
    h.s.accept(token).unwrap();
    let (token, Request::Catenate { index: 1, .. }) = h.request() else {
        panic!()
    };
    h.s.accept(token).unwrap();
    let Event::AppendCommit { token } = h.event() else {
        panic!()
    };
    h.s.complete(token, Completion::ok("APPEND completed"))
        .unwrap();
    assert_eq!(h.take_wire(), "a OK APPEND completed\r\n");
    // CATENATE, then a literal message that streams.
    h.send("b APPEND Drafts CATENATE (URL \"/INBOX/;UID=3\") {4}\r\n");
    let (token, Request::Catenate { index: 0, .. }) = h.request() else {
        panic!()
    };
    h.s.accept(token).unwrap();
    let (
        token,
        Request::Append {
            index: 1, size: 4, ..
        },
    ) = h.request()
    else {
        panic!()
    };
    h.s.accept(token).unwrap();
    assert_eq!(h.take_wire(), "+ Ready for literal data\r\n");
    h.send("body\r\n");
    assert!(matches!(h.event(), Event::AppendData(d) if &d[..] == b"body"));
    let Event::AppendCommit { token } = h.event() else {
        panic!()
    };
    h.s.complete(token, Completion::ok("APPEND completed"))
        .unwrap();
    assert_eq!(h.take_wire(), "b OK APPEND completed\r\n");
    // A CATENATE refused (a bad URL): the literal after it is never asked
    // for, what was staged is dropped, and the next command runs.
    h.send("c APPEND Drafts CATENATE (TEXT {1+}\r\nx) CATENATE (URL \"/nope/;UID=1\") {3}\r\n");
    let (token, Request::Catenate { index: 0, .. }) = h.request() else {
        panic!()
    };
    h.s.accept(token).unwrap();
    let (token, Request::Catenate { index: 1, .. }) = h.request() else {
        panic!()
    };
    h.s.reject(
        token,
        Completion::no_code(
            Code::Other("BADURL".into(), Some("/nope/;UID=1".into())),
            "no such message",
        ),
    )
    .unwrap();
    assert!(matches!(h.event(), Event::AppendAbort));
    let w = h.send("d NOOP\r\n");
    assert!(w.contains("c NO [BADURL /nope/;UID=1]"), "{w}");
    assert!(w.contains("d OK NOOP"), "{w}");
}

#[test]
fn catenate_is_refused_unless_offered() {
    let mut h = H::new();
    h.login();
    assert!(
        h.send("a APPEND Drafts CATENATE (URL \"/INBOX/;UID=3\")\r\n")
            .starts_with("a BAD")
    );
    assert!(h.events.is_empty());
}

#[test]
fn a_live_search_tells_what_enters_and_leaves_it_until_cancelled() {
    let mut h = H::with(|c| c.capabilities = vec!["CONTEXT=SEARCH".into()]);
    h.login();
    h.select(vec![1, 2, 3, 4, 5]);
    h.send("s SEARCH RETURN (UPDATE ALL) SEEN\r\n");
    let (token, _) = h.request();
    h.s.searched(token, vec![2]).unwrap();
    assert!(h.take_wire().starts_with("* ESEARCH (TAG \"s\") ALL 2\r\n"));
    let keys: Vec<_> =
        h.s.live_searches()
            .map(|(t, k)| (t.to_owned(), k.len()))
            .collect();
    assert_eq!(keys, vec![("s".to_owned(), 1)]);
    // Others changed flags; the application re-evaluated.
    h.s.push_flags(4, vec![Flag::Seen], None);
    h.s.live_search_result("s", 4, true);
    h.s.live_search_result("s", 2, false);
    h.s.live_search_result("s", 3, false); // not in it: nothing to say
    assert_eq!(
        h.send("n NOOP\r\n"),
        "* 4 FETCH (FLAGS (\\Seen))\r\n* ESEARCH (TAG \"s\") REMOVEFROM (0 2)\r\n* ESEARCH (TAG \"s\") ADDTO (0 4)\r\nn OK NOOP completed\r\n"
    );
    // An expunge takes a member out, numbered before the EXPUNGE; a new
    // message enters after its EXISTS.
    h.s.push_expunge(4);
    h.s.push_new(6, false);
    h.s.live_search_result("s", 6, true);
    assert_eq!(
        h.send("n NOOP\r\n"),
        "* ESEARCH (TAG \"s\") REMOVEFROM (0 4)\r\n* 4 EXPUNGE\r\n* 5 EXISTS\r\n* 0 RECENT\r\n* ESEARCH (TAG \"s\") ADDTO (0 5)\r\nn OK NOOP completed\r\n"
    );
    assert_eq!(
        h.send("c CANCELUPDATE \"s\"\r\n"),
        "c OK CANCELUPDATE completed\r\n"
    );
    assert_eq!(h.s.live_searches().count(), 0);
    h.s.live_search_result("s", 1, true);
    assert_eq!(h.send("n NOOP\r\n"), "n OK NOOP completed\r\n");
}

#[test]
fn partial_returns_a_window_of_the_result() {
    let mut h = H::new();
    h.login();
    h.select((1..=5).collect());
    for (cmd, want) in [
        ("PARTIAL 2:4", "PARTIAL (2:4 2:4)"),
        ("PARTIAL 4:2", "PARTIAL (2:4 2:4)"),
        ("PARTIAL 1:9", "PARTIAL (1:9 1:5)"),
        ("PARTIAL 6:6", "PARTIAL (6:6 NIL)"),
        ("PARTIAL -1:-2", "PARTIAL (-2:-1 4:5)"),
    ] {
        h.send(&format!("p SEARCH RETURN ({cmd}) ALL\r\n"));
        let (token, _) = h.request();
        h.s.searched(token, (1..=5).collect()).unwrap();
        let w = h.take_wire();
        assert!(
            w.starts_with(&format!("* ESEARCH (TAG \"p\") {want}\r\n")),
            "{cmd}: {w}"
        );
    }
    for bad in [
        "PARTIAL 1",
        "PARTIAL 1:*",
        "PARTIAL *:1",
        "PARTIAL 0:2",
        "PARTIAL -1:2",
    ] {
        assert!(
            h.send(&format!("b SEARCH RETURN ({bad}) ALL\r\n"))
                .starts_with("b BAD"),
            "{bad}"
        );
    }
    // UPDATE without CONTEXT=SEARCH offered.
    assert!(
        h.send("u SEARCH RETURN (UPDATE) ALL\r\n")
            .starts_with("u BAD")
    );
}

#[test]
fn a_message_expunged_before_it_was_announced_never_enters_a_live_search() {
    let mut h = H::with(|c| c.capabilities = vec!["CONTEXT=SEARCH".into()]);
    h.login();
    h.select(vec![1, 2]);
    h.send("s SEARCH RETURN (UPDATE) SEEN\r\n");
    let (token, _) = h.request();
    h.s.searched(token, vec![]).unwrap();
    h.take_wire();
    h.s.push_new(3, false);
    h.s.live_search_result("s", 3, true);
    h.s.push_expunge(3);
    assert_eq!(h.send("n NOOP\r\n"), "n OK NOOP completed\r\n");
    // A message 4 enters alone, numbered as the client numbers it.
    h.s.push_new(4, false);
    h.s.live_search_result("s", 4, true);
    assert_eq!(
        h.send("n NOOP\r\n"),
        "* 3 EXISTS\r\n* 0 RECENT\r\n* ESEARCH (TAG \"s\") ADDTO (0 3)\r\nn OK NOOP completed\r\n"
    );
}
