//! IMAP codec: RFC examples, framing limits, round trips, split invariance.

use imap_proto::*;
use proptest::prelude::*;

fn frames<'a>(f: &mut Framer, mut input: &'a [u8]) -> Vec<Frame<'a>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (used, frame) = f.push(input);
        assert!(used > 0 || frame.is_some(), "no progress");
        input = &input[used..];
        out.extend(frame);
    }
    out
}

fn parse(line: &str) -> Result<Command<'_>, CommandError> {
    Command::parse(line.as_bytes(), false)
}

#[test]
fn rfc3501_command_examples() {
    let table: &[(&str, CommandBody)] = &[
        ("abcd CAPABILITY\r\n", CommandBody::Capability),
        ("a002 NOOP\r\n", CommandBody::Noop),
        ("A023 LOGOUT\r\n", CommandBody::Logout),
        ("a001 STARTTLS\r\n", CommandBody::StartTls),
        (
            "a001 LOGIN SMITH SESAME\r\n",
            CommandBody::Login {
                username: b"SMITH"[..].into(),
                password: b"SESAME"[..].into(),
            },
        ),
        (
            "A142 SELECT INBOX\r\n",
            CommandBody::Select {
                mailbox: Mailbox::new("INBOX").unwrap(),
                condstore: false,
                qresync: None,
            },
        ),
        (
            "A932 EXAMINE blurdybloop\r\n",
            CommandBody::Examine {
                mailbox: Mailbox::new("blurdybloop").unwrap(),
                condstore: false,
                qresync: None,
            },
        ),
        (
            "A003 CREATE owatagusiam/\r\n",
            CommandBody::Create(Mailbox::new("owatagusiam/").unwrap()),
        ),
        (
            "A683 DELETE blurdybloop\r\n",
            CommandBody::Delete(Mailbox::new("blurdybloop").unwrap()),
        ),
        (
            "A683 RENAME blurdybloop sarasoop\r\n",
            CommandBody::Rename(
                Mailbox::new("blurdybloop").unwrap(),
                Mailbox::new("sarasoop").unwrap(),
            ),
        ),
        (
            "A002 SUBSCRIBE #news.comp.mail.mime\r\n",
            CommandBody::Subscribe(Mailbox::new("#news.comp.mail.mime").unwrap()),
        ),
        (
            "A101 LIST \"\" \"\"\r\n",
            CommandBody::List {
                select: vec![],
                reference: String::new(),
                patterns: vec![String::new()],
                ret: vec![],
            },
        ),
        (
            "A102 LIST #news.comp.mail.misc \"\"\r\n",
            CommandBody::List {
                select: vec![],
                reference: "#news.comp.mail.misc".into(),
                patterns: vec![String::new()],
                ret: vec![],
            },
        ),
        (
            "A202 LIST ~/Mail/ %\r\n",
            CommandBody::List {
                select: vec![],
                reference: "~/Mail/".into(),
                patterns: vec!["%".into()],
                ret: vec![],
            },
        ),
        (
            "A002 LSUB \"#news.\" \"comp.mail.*\"\r\n",
            CommandBody::Lsub {
                reference: "#news.".into(),
                pattern: "comp.mail.*".into(),
            },
        ),
        (
            "A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
            CommandBody::Status {
                mailbox: Mailbox::new("blurdybloop").unwrap(),
                items: vec![StatusItem::UidNext, StatusItem::Messages],
            },
        ),
        ("FXXZ CHECK\r\n", CommandBody::Check),
        ("A341 CLOSE\r\n", CommandBody::Close),
        ("A202 EXPUNGE\r\n", CommandBody::Expunge(None)),
        (
            "A003 COPY 2:4 MEETING\r\n",
            CommandBody::Copy {
                uid: false,
                set: SequenceSet::range(SeqNumber::Value(2), SeqNumber::Value(4)),
                mailbox: Mailbox::new("MEETING").unwrap(),
            },
        ),
        (
            "A999 UID COPY 4827313:4828442 MEETING\r\n",
            CommandBody::Copy {
                uid: true,
                set: SequenceSet::range(SeqNumber::Value(4827313), SeqNumber::Value(4828442)),
                mailbox: Mailbox::new("MEETING").unwrap(),
            },
        ),
        (
            "a UID EXPUNGE 3000:3002\r\n",
            CommandBody::Expunge(Some(SequenceSet::parse(b"3000:3002").unwrap())),
        ),
        (
            "a MOVE 1:* Trash\r\n",
            CommandBody::Move {
                uid: false,
                set: SequenceSet::range(SeqNumber::Value(1), SeqNumber::Largest),
                mailbox: Mailbox::new("Trash").unwrap(),
            },
        ),
        (
            "t ENABLE CONDSTORE QRESYNC\r\n",
            CommandBody::Enable(vec!["CONDSTORE".into(), "QRESYNC".into()]),
        ),
        (
            "a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some("dGVzdAB0ZXN0AHRlc3Q=".into()),
            },
        ),
        (
            "a SELECT inbox (CONDSTORE)\r\n",
            CommandBody::Select {
                mailbox: Mailbox::new("INBOX").unwrap(),
                condstore: true,
                qresync: None,
            },
        ),
        (
            "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
            CommandBody::Select {
                mailbox: Mailbox::new("INBOX").unwrap(),
                condstore: false,
                qresync: Some(QResync {
                    uid_validity: 67890007,
                    mod_seq: 20050715194045000,
                    known_uids: Some(SequenceSet::parse(b"41,43:211,214:541").unwrap()),
                    seq_match: None,
                }),
            },
        ),
        (
            "A03 EXAMINE INBOX (CONDSTORE QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973)))\r\n",
            CommandBody::Examine {
                mailbox: Mailbox::new("INBOX").unwrap(),
                condstore: true,
                qresync: Some(QResync {
                    uid_validity: 67890007,
                    mod_seq: 90060115194045000,
                    known_uids: Some(SequenceSet::parse(b"1:29997").unwrap()),
                    seq_match: Some((
                        SequenceSet::parse(b"5000,7500,9000,9990:9999").unwrap(),
                        SequenceSet::parse(b"15000,22500,27000,29970,29973").unwrap(),
                    )),
                }),
            },
        ),
        (
            "B1 SELECT INBOX (QRESYNC (1 2))\r\n",
            CommandBody::Select {
                mailbox: Mailbox::new("INBOX").unwrap(),
                condstore: false,
                qresync: Some(QResync {
                    uid_validity: 1,
                    mod_seq: 2,
                    known_uids: None,
                    seq_match: None,
                }),
            },
        ),
        ("a1 IDLE\r\n", CommandBody::Idle),
        ("n NAMESPACE\r\n", CommandBody::Namespace),
        (
            "z COMPRESS deflate\r\n",
            CommandBody::Compress("DEFLATE".into()),
        ),
        ("u UNSELECT\r\n", CommandBody::Unselect),
    ];
    for (line, want) in table {
        let cmd = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(&cmd.body, want, "{line:?}");
    }
}

#[test]
fn bad_commands_keep_their_tag() {
    let e = parse("a1 FROB\r\n").unwrap_err();
    assert_eq!(e.tag.as_ref().map(Tag::as_str), Some("a1"));
    assert!(parse("+ NOOP\r\n").unwrap_err().tag.is_none());
    for bad in [
        "a NOOP extra\r\n",
        "a COPY 0:3 x\r\n",
        "a COPY 1:4294967296 x\r\n",
        "a COPY 1,,2 x\r\n",
        "a STATUS x (BOGUS)\r\n",
        "a LOGIN \"unterminated\r\n",
        "a LOGIN a\"b c\r\n",
        "a SELECT &Jjo\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn modified_utf7_known_answers() {
    // RFC 3501 §5.1.3.
    assert_eq!(
        utf7::decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
        "~peter/mail/台北/日本語"
    );
    assert_eq!(
        utf7::encode("~peter/mail/台北/日本語"),
        "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    );
    assert_eq!(utf7::encode("Tom & Jerry"), "Tom &- Jerry");
    assert_eq!(utf7::decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
    for bad in [
        "&AGE-",
        "&U,BTFw-&ZeVnLIqe-",
        "&U,B-",
        "&Jjo",
        "a\u{7f}",
        "&AGEAYQ-",
    ] {
        assert!(utf7::decode(bad).is_err(), "{bad:?}");
    }
    let m = Command::parse(b"a SELECT &ZeVnLIqe-\r\n", false).unwrap();
    assert_eq!(
        m.body,
        CommandBody::Select {
            mailbox: Mailbox::new("日本語").unwrap(),
            condstore: false,
            qresync: None,
        }
    );
    let utf8 = Command::parse("a SELECT 日本語\r\n".as_bytes(), true);
    assert!(
        utf8.is_err(),
        "raw UTF-8 is not an atom; UTF8=ACCEPT clients quote it"
    );
    let quoted = Command::parse("a SELECT \"日本語\"\r\n".as_bytes(), true).unwrap();
    assert_eq!(
        quoted.body,
        CommandBody::Select {
            mailbox: Mailbox::new("日本語").unwrap(),
            condstore: false,
            qresync: None,
        }
    );
    // Without UTF8=ACCEPT, the same bytes are not modified UTF-7.
    assert!(Command::parse("a SELECT \"日本語\"\r\n".as_bytes(), false).is_err());
}

#[test]
fn sequence_sets_never_expand() {
    let s = SequenceSet::parse(b"1:4294967295").unwrap();
    assert_eq!(s.iter(10).count(), 10);
    let s = SequenceSet::parse(b"5:3,*,2,4:2").unwrap();
    assert_eq!(s.iter(9).collect::<Vec<_>>(), [2, 3, 4, 5, 9]);
    assert!(s.contains(9, 9) && s.contains(3, 9) && !s.contains(7, 9));
    assert_eq!(s.to_string(), "5:3,*,2,4:2");
    assert_eq!(SequenceSet::parse(b"0"), Err(SyntaxError::Number));
    assert_eq!(SequenceSet::parse(b"4294967296"), Err(SyntaxError::Number));
    assert!(SequenceSet::parse(b"").is_err());
    assert!(SequenceSet::parse(b"1:").is_err());
}

#[test]
fn framer_literals_continuations_and_limits() {
    let mut f = Framer::new(FramerLimits::new(100, 20));
    // A non-synchronising literal: no continuation.
    let fr = frames(&mut f, b"a1 LOGIN {5+}\r\nalice pw\r\nb NOOP\r\n");
    assert_eq!(fr.len(), 2);
    assert!(matches!(&fr[0], Frame::Command(c) if c[..] == b"a1 LOGIN {5+}\r\nalice pw\r\n"[..]));
    // Literal bytes are never commands, even when they look like one.
    let fr = frames(&mut f, b"c LOGIN {11+}\r\nd LOGOUT\r\n\r x\r\n");
    assert!(matches!(&fr[0], Frame::Command(c) if c.ends_with(b"d LOGOUT\r\n\r x\r\n")));
    assert_eq!(
        Command::parse(
            match &fr[0] {
                Frame::Command(c) => c,
                _ => unreachable!(),
            },
            false
        )
        .unwrap()
        .body,
        CommandBody::Login {
            username: b"d LOGOUT\r\n\r"[..].into(),
            password: b"x"[..].into()
        }
    );
    // Too large a synchronising literal: refused, and the client sends nothing for it.
    let fr = frames(&mut f, b"e APPEND x {99}\r\nf NOOP\r\n");
    assert_eq!(
        fr[0],
        Frame::Refused {
            tag: Tag::new("e"),
            reason: "literal too large"
        }
    );
    assert!(matches!(&fr[1], Frame::Command(c) if c[..] == b"f NOOP\r\n"[..]));
    // Too large a non-synchronising literal: its bytes are skipped.
    let mut big = b"g APPEND x {30+}\r\n".to_vec();
    big.extend_from_slice(&[b'A'; 30]);
    big.extend_from_slice(b"\r\nh NOOP\r\n");
    let fr = frames(&mut f, &big);
    assert_eq!(
        fr[0],
        Frame::Refused {
            tag: Tag::new("g"),
            reason: "literal too large"
        }
    );
    assert!(
        matches!(&fr[1], Frame::Command(c) if c[..] == b"h NOOP\r\n"[..]),
        "{fr:?}"
    );
    // An over-long line: refused once, memory bounded, in sync after.
    let mut long = b"i NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 5000));
    long.extend_from_slice(b"\r\nj NOOP\r\n");
    for step in [1, 7, 64, long.len()] {
        let mut f = Framer::new(FramerLimits::new(100, 20));
        let mut out = Vec::new();
        for c in long.chunks(step) {
            out.extend(frames(&mut f, c));
            assert!(f.buffered() <= 100);
        }
        assert_eq!(out.len(), 2, "step {step}: {out:?}");
        assert_eq!(
            out[0],
            Frame::Refused {
                tag: Tag::new("i"),
                reason: "command too long"
            }
        );
        assert!(matches!(&out[1], Frame::Command(c) if c[..] == b"j NOOP\r\n"[..]));
    }
    // Bare LF is refused.
    let mut f = Framer::new(FramerLimits::default());
    assert!(matches!(
        frames(&mut f, b"k NOOP\n")[0],
        Frame::Refused { .. }
    ));
}

fn mailbox_name() -> impl Strategy<Value = Mailbox> {
    prop_oneof!["[A-Za-z0-9 ._/&-]{1,20}", "\\PC{1,8}"].prop_filter_map("valid", Mailbox::new)
}

fn flags() -> impl Strategy<Value = Vec<Flag>> {
    proptest::collection::vec(
        prop_oneof![
            Just(Flag::Seen),
            Just(Flag::Deleted),
            Just(Flag::Draft),
            "[A-Za-z$][A-Za-z0-9]{0,8}".prop_map(|k| Flag::keyword(&k).unwrap())
        ],
        0..4,
    )
}

fn fetch_item() -> impl Strategy<Value = FetchItem<'static>> {
    let part = proptest::collection::vec(1u32..20, 0..3);
    let partial = proptest::option::of((0u32..1000, 1u32..1000));
    prop_oneof![
        Just(FetchItem::Flags),
        Just(FetchItem::Uid),
        Just(FetchItem::Envelope),
        Just(FetchItem::BodyStructure),
        Just(FetchItem::ModSeq),
        Just(FetchItem::EmailId),
        Just(FetchItem::ThreadId),
        (any::<bool>(), part.clone(), partial.clone()).prop_map(|(peek, part, partial)| {
            FetchItem::Binary {
                peek,
                part,
                partial,
            }
        }),
        (
            any::<bool>(),
            part,
            partial,
            prop_oneof![
                Just(SectionText::Full),
                Just(SectionText::Header),
                Just(SectionText::Text),
                proptest::collection::vec("[A-Za-z-]{1,10}", 1..3).prop_map(|l| {
                    SectionText::HeaderFields(l.into_iter().map(Into::into).collect())
                }),
                proptest::collection::vec("[A-Za-z-]{1,10}", 1..3).prop_map(|l| {
                    SectionText::HeaderFieldsNot(l.into_iter().map(Into::into).collect())
                }),
            ]
        )
            .prop_filter("MIME needs a part", |(_, part, _, t)| !(part.is_empty()
                && *t == SectionText::Mime))
            .prop_map(|(peek, part, partial, text)| FetchItem::BodySection {
                peek,
                section: Section {
                    part,
                    text,
                    partial
                }
            }),
    ]
}

fn search_key() -> impl Strategy<Value = SearchKey<'static>> {
    let leaf = prop_oneof![
        Just(SearchKey::All),
        Just(SearchKey::Flag("SEEN")),
        Just(SearchKey::Flag("UNDELETED")),
        "[ -~]{0,12}".prop_map(|s| SearchKey::Text("SUBJECT", s.into_bytes().into())),
        (1u32..31, 1900u32..2100)
            .prop_map(|(d, y)| SearchKey::Date("SINCE", format!("{d}-Feb-{y}"))),
        any::<u32>().prop_map(SearchKey::Larger),
        (0u64..1 << 63).prop_map(SearchKey::ModSeq),
        "[A-Za-z$]{1,8}".prop_map(SearchKey::Keyword),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            proptest::collection::vec(inner, 1..3).prop_map(SearchKey::And),
        ]
    })
}

fn seq_set() -> impl Strategy<Value = SequenceSet> {
    "[1-9][0-9]{0,3}(:([1-9][0-9]{0,3}|\\*))?(,[1-9][0-9]{0,3})*"
        .prop_map(|s| SequenceSet::parse(s.as_bytes()).unwrap())
}

fn command() -> impl Strategy<Value = Command<'static>> {
    let seq = proptest::collection::vec(
        (
            prop_oneof![
                (1u32..).prop_map(SeqNumber::Value),
                Just(SeqNumber::Largest)
            ],
            prop_oneof![
                (1u32..).prop_map(SeqNumber::Value),
                Just(SeqNumber::Largest)
            ],
        ),
        1..4,
    )
    .prop_map(|r| SequenceSet::from_ranges(r).unwrap());
    let body = prop_oneof![
        Just(CommandBody::Capability),
        Just(CommandBody::Noop),
        Just(CommandBody::Idle),
        "[A-Z]{1,8}".prop_map(CommandBody::Compress),
        proptest::collection::vec("[a-z0-9.]{1,6}", 1..3).prop_map(CommandBody::CancelUpdate),
        (
            proptest::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 1..20),
            proptest::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 1..20)
        )
            .prop_map(|(u, p)| CommandBody::Login {
                username: u.into(),
                password: p.into()
            }),
        (
            mailbox_name(),
            any::<bool>(),
            proptest::option::of((
                1u32..,
                1u64..1 << 63,
                proptest::option::of(seq_set()),
                proptest::option::of((seq_set(), seq_set()))
            ))
        )
            .prop_map(|(mailbox, condstore, q)| CommandBody::Select {
                mailbox,
                condstore,
                qresync: q.map(|(uid_validity, mod_seq, known_uids, seq_match)| QResync {
                    uid_validity,
                    mod_seq,
                    known_uids,
                    seq_match
                })
            }),
        mailbox_name().prop_map(CommandBody::Create),
        (mailbox_name(), mailbox_name()).prop_map(|(a, b)| CommandBody::Rename(a, b)),
        (
            proptest::sample::subsequence(
                vec![
                    ListSelect::Subscribed,
                    ListSelect::Remote,
                    ListSelect::SpecialUse
                ],
                0..=3
            ),
            "[ -~]{0,10}",
            proptest::collection::vec("[ -~]{0,10}", 1..4),
            proptest::sample::subsequence(
                vec![
                    ListReturn::Subscribed,
                    ListReturn::Children,
                    ListReturn::SpecialUse,
                    ListReturn::Status(vec![StatusItem::Messages, StatusItem::UidNext])
                ],
                0..=4
            )
        )
            .prop_map(|(select, reference, patterns, ret)| CommandBody::List {
                select,
                reference,
                patterns,
                ret
            }),
        ("[ -~]{0,10}", "[ -~]{0,10}")
            .prop_map(|(reference, pattern)| CommandBody::Lsub { reference, pattern }),
        (
            mailbox_name(),
            proptest::collection::vec(
                prop_oneof![
                    Just(StatusItem::Messages),
                    Just(StatusItem::UidNext),
                    Just(StatusItem::HighestModSeq),
                    Just(StatusItem::MailboxId)
                ],
                1..3
            )
        )
            .prop_map(|(mailbox, items)| CommandBody::Status { mailbox, items }),
        (any::<bool>(), seq.clone(), mailbox_name())
            .prop_map(|(uid, set, mailbox)| CommandBody::Copy { uid, set, mailbox }),
        (any::<bool>(), seq.clone(), mailbox_name())
            .prop_map(|(uid, set, mailbox)| CommandBody::Move { uid, set, mailbox }),
        proptest::option::of(seq.clone()).prop_map(CommandBody::Expunge),
        (
            any::<bool>(),
            seq.clone(),
            proptest::option::of(0u64..1 << 63),
            prop_oneof![
                Just(StoreOp::Add),
                Just(StoreOp::Remove),
                Just(StoreOp::Replace)
            ],
            any::<bool>(),
            flags()
        )
            .prop_map(|(uid, set, unchanged_since, op, silent, flags)| {
                CommandBody::Store {
                    uid,
                    set,
                    unchanged_since,
                    op,
                    silent,
                    flags,
                }
            }),
        (
            any::<bool>(),
            seq.clone(),
            proptest::collection::vec(fetch_item(), 1..5),
            proptest::option::of(1u64..1_000_000),
            any::<bool>()
        )
            .prop_map(|(uid, set, items, changed_since, v)| CommandBody::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished: v && changed_since.is_some()
            }),
        (
            any::<bool>(),
            proptest::option::of(
                proptest::sample::subsequence(
                    vec![
                        SearchReturn::Min,
                        SearchReturn::Max,
                        SearchReturn::All,
                        SearchReturn::Count,
                        SearchReturn::Save,
                        SearchReturn::Update,
                        SearchReturn::Partial(3, 1),
                        SearchReturn::Partial(-1, -100)
                    ],
                    0..=6
                )
                .prop_filter("one PARTIAL", |v| v
                    .iter()
                    .filter(|r| matches!(r, SearchReturn::Partial(..)))
                    .count()
                    <= 1)
            ),
            proptest::collection::vec(search_key(), 1..4)
        )
            .prop_map(|(uid, ret, keys)| CommandBody::Search {
                uid,
                ret,
                charset: None,
                keys,
            }),
        (
            any::<bool>(),
            proptest::collection::vec(
                (
                    any::<bool>(),
                    proptest::sample::select(vec![
                        SortKey::Arrival,
                        SortKey::Cc,
                        SortKey::Date,
                        SortKey::From,
                        SortKey::Size,
                        SortKey::Subject,
                        SortKey::To,
                        SortKey::DisplayFrom,
                        SortKey::DisplayTo,
                    ])
                )
                    .prop_map(|(reverse, key)| SortCriterion { reverse, key }),
                1..4
            ),
            proptest::sample::select(vec!["UTF-8".to_owned(), "US-ASCII".to_owned()]),
            proptest::collection::vec(search_key(), 1..4)
        )
            .prop_map(|(uid, criteria, charset, keys)| CommandBody::Sort {
                uid,
                ret: (charset == "US-ASCII").then(|| vec![SearchReturn::Min, SearchReturn::Count]),
                criteria,
                charset,
                keys,
            }),
        (
            any::<bool>(),
            proptest::sample::select(vec![
                ThreadAlgorithm::OrderedSubject,
                ThreadAlgorithm::References
            ]),
            proptest::collection::vec(search_key(), 1..3)
        )
            .prop_map(|(uid, algorithm, keys)| CommandBody::Thread {
                uid,
                algorithm,
                charset: "UTF-8".into(),
                keys,
            }),
        (
            mailbox_name(),
            proptest::collection::vec(
                (
                    flags(),
                    proptest::option::of(Just("17-Jul-1996 02:44:25 -0700".to_string())),
                    proptest::collection::vec(
                        any::<u8>().prop_filter("no NUL", |b| *b != 0),
                        0..50
                    ),
                    proptest::option::of(proptest::collection::vec(
                        prop_oneof![
                            "[ -~]{0,30}".prop_map(CatenatePart::Url),
                            proptest::collection::vec(1u8..=255, 0..20)
                                .prop_map(|t| CatenatePart::Text(t.into())),
                        ],
                        1..4
                    ))
                )
                    .prop_map(|(flags, date, message, catenate)| AppendMessage {
                        flags,
                        date,
                        message: if catenate.is_some() {
                            Vec::new().into()
                        } else {
                            message.into()
                        },
                        utf8: false,
                        catenate,
                    }),
                1..4
            )
        )
            .prop_map(|(mailbox, messages)| CommandBody::Append { mailbox, messages }),
    ];
    ("[A-Za-z0-9.]{1,8}", body).prop_map(|(t, body)| Command {
        tag: Tag::new(&t).unwrap(),
        body,
    })
}

proptest! {
    #[test]
    fn command_round_trip_through_the_framer(cmd in command(), non_sync in any::<bool>(), step in 1usize..50) {
        let chunks = cmd.encode(non_sync, false);
        let wire = join(&chunks);
        let mut f = Framer::new(FramerLimits::default());
        let mut got = Vec::new();
        for c in wire.chunks(step) {
            got.extend(frames(&mut f, c));
        }
        let conts = got.iter().filter(|f| **f == Frame::ContinuationNeeded).count();
        prop_assert_eq!(conts, chunks.iter().filter(|c| c.wait_for_continuation).count());
        let Some(Frame::Command(bytes)) = got.into_iter().find(|f| matches!(f, Frame::Command(_))) else {
            return Err(TestCaseError::fail("no command"));
        };
        prop_assert_eq!(Command::parse(&bytes, false), Ok(cmd));
    }

    #[test]
    fn utf7_round_trip(s in "\\PC{0,20}") {
        prop_assert_eq!(utf7::decode(&utf7::encode(&s)), Ok(s));
    }

    #[test]
    fn sequence_set_round_trip(s in "[1-9][0-9]{0,3}(:([1-9][0-9]{0,3}|\\*))?(,([1-9][0-9]{0,3}|\\*))*") {
        let set = SequenceSet::parse(s.as_bytes()).unwrap();
        prop_assert_eq!(SequenceSet::parse(set.to_string().as_bytes()), Ok(set));
    }

    #[test]
    fn framer_and_parser_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut f = Framer::new(FramerLimits::new(64, 16));
        for fr in frames(&mut f, &input) {
            if let Frame::Command(c) = fr {
                let _ = Command::parse(&c, false);
            }
        }
        prop_assert!(f.buffered() <= 64 + 16);
    }
}

/// Asserts that `rejects` holds for every input, naming the first that fails.
fn all_rejected(inputs: &[&[u8]], rejects: impl Fn(&[u8]) -> bool) {
    for bad in inputs {
        assert!(rejects(bad), "accepted {:?}", String::from_utf8_lossy(bad));
    }
}

fn wire_round_trip(line: &[u8]) -> Command<'static> {
    let mut f = Framer::new(FramerLimits::default());
    let cmd = frames(&mut f, line)
        .into_iter()
        .find_map(|fr| match fr {
            Frame::Command(c) => Some(
                Command::parse(&c, false)
                    .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(line)))
                    .into_owned(),
            ),
            _ => None,
        })
        .expect("a command");
    let again = join(&cmd.encode(true, false));
    let mut f = Framer::new(FramerLimits::default());
    let back = frames(&mut f, &again)
        .into_iter()
        .find_map(|fr| match fr {
            Frame::Command(c) => Some(Command::parse(&c, false).unwrap().into_owned()),
            _ => None,
        })
        .unwrap();
    assert_eq!(back, cmd, "{:?}", String::from_utf8_lossy(&again));
    cmd
}

#[test]
fn rfc3501_message_commands() {
    let c = wire_round_trip(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n");
    assert!(
        matches!(c.body, CommandBody::Store { op: StoreOp::Add, silent: false, ref flags, .. } if flags == &[Flag::Deleted])
    );
    let c = wire_round_trip(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n");
    let CommandBody::Fetch { items, .. } = c.body else {
        panic!()
    };
    assert_eq!(
        items[1],
        FetchItem::BodySection {
            peek: false,
            section: Section {
                part: vec![],
                text: SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()]),
                partial: None
            },
        }
    );
    let c = wire_round_trip(b"A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    let CommandBody::Search { keys, .. } = c.body else {
        panic!()
    };
    assert_eq!(keys.len(), 3);
    assert_eq!(
        keys[2],
        SearchKey::Not(Box::new(SearchKey::Text("FROM", b"Smith"[..].into())))
    );
    // RFC 4731 §3.1 examples.
    let c = wire_round_trip(
        b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
    );
    assert!(
        matches!(c.body, CommandBody::Search { ret: Some(ref r), ref keys, .. }
        if r == &[SearchReturn::Min, SearchReturn::Count] && keys.len() == 3)
    );
    let c =
        wire_round_trip(b"A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    assert!(matches!(c.body, CommandBody::Search { ret: Some(ref r), .. } if r.is_empty()));
    let c = wire_round_trip(b"A285 UID SEARCH RETURN (all) CHARSET UTF-8 ALL\r\n");
    assert!(
        matches!(c.body, CommandBody::Search { uid: true, ret: Some(ref r), charset: Some(_), .. }
        if r == &[SearchReturn::All])
    );
    all_rejected(
        &[
            b"A1 SEARCH RETURN (MIN MIN) ALL\r\n",
            b"A1 SEARCH RETURN (FIRST) ALL\r\n",
            b"A1 SEARCH RETURN MIN ALL\r\n",
            b"A1 SEARCH RETURN (MIN\r\n",
            b"A1 SEARCH RETURN (MIN)\r\n",
        ],
        |b| Command::parse(b, false).is_err(),
    );
    let c = wire_round_trip(b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n");
    assert!(matches!(c.body, CommandBody::Search { charset: Some(ref cs), .. } if cs == "UTF-8"));
    let mut append =
        b"A003 APPEND saved-messages (\\Seen) \"01-Jan-2026 10:00:00 +0000\" {20}\r\n".to_vec();
    append.extend_from_slice(b"Subject: hi\r\n\r\nHello\r\n");
    let c = wire_round_trip(&append);
    let CommandBody::Append { messages, .. } = c.body else {
        panic!()
    };
    let [
        AppendMessage {
            flags,
            date,
            message,
            utf8: false,
            catenate: None,
        },
    ] = &messages[..]
    else {
        panic!("{messages:?}")
    };
    assert_eq!(flags, &[Flag::Seen]);
    assert_eq!(date.as_deref(), Some("01-Jan-2026 10:00:00 +0000"));
    assert_eq!(message[..], b"Subject: hi\r\n\r\nHello"[..]);
    // RFC 6855 §4: `UTF8 (literal8)` once UTF8=ACCEPT is enabled; a
    // syntax error before.
    let wire = "a9 APPEND INBOX UTF8 (~{16+}\r\nSubject: Grüße) {3+}\r\nabc\r\n".as_bytes();
    assert!(Command::parse(wire, false).is_err());
    let c = Command::parse(wire, true).unwrap();
    let CommandBody::Append { ref messages, .. } = c.body else {
        panic!()
    };
    assert!(messages[0].utf8 && !messages[1].utf8);
    assert_eq!(messages[0].message[..], "Subject: Grüße".as_bytes()[..]);
    assert_eq!(join(&c.encode(true, true)), wire);
    assert!(Command::parse(b"a9 APPEND INBOX UTF8 ({3+}\r\nabc)\r\n", true).is_err());
    // LIST-EXTENDED (RFC 5258 §5) and LIST-STATUS (RFC 5819 §3) examples.
    let c = wire_round_trip(b"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n");
    assert!(
        matches!(c.body, CommandBody::List { ref select, ref ret, .. }
        if select == &[ListSelect::Subscribed] && ret.is_empty())
    );
    let c = wire_round_trip(b"A03 LIST () \"\" \"%\" RETURN (CHILDREN)\r\n");
    assert!(
        matches!(c.body, CommandBody::List { ref select, ref ret, .. }
        if select.is_empty() && ret == &[ListReturn::Children])
    );
    let c = wire_round_trip(
        b"A04 LIST (REMOTE subscribed RECURSIVEMATCH) \"\" (\"INBOX\" \"foo/*\") RETURN (CHILDREN)\r\n",
    );
    assert!(
        matches!(c.body, CommandBody::List { ref select, ref patterns, .. }
        if select.len() == 3 && patterns == &["INBOX".to_string(), "foo/*".to_string()])
    );
    let c = wire_round_trip(b"A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n");
    assert!(matches!(c.body, CommandBody::List { ref ret, .. }
        if ret == &[ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen])]));
    let c = wire_round_trip(b"t1 LIST (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)\r\n");
    assert!(
        matches!(c.body, CommandBody::List { ref select, ref ret, .. }
        if select == &[ListSelect::SpecialUse] && ret == &[ListReturn::SpecialUse])
    );
    all_rejected(
        &[
            b"A1 LIST (RECURSIVEMATCH) \"\" *\r\n",
            b"A1 LIST (REMOTE RECURSIVEMATCH) \"\" *\r\n",
            b"A1 LIST (SUBSCRIBED SUBSCRIBED) \"\" *\r\n",
            b"A1 LIST (BOGUS) \"\" *\r\n",
            b"A1 LIST \"\" * RETURN (CHILDREN CHILDREN)\r\n",
            b"A1 LIST \"\" * RETURN (STATUS ())\r\n",
            b"A1 LIST \"\" () \r\n",
            b"A1 LIST \"\" * RETURN\r\n",
        ],
        |b| Command::parse(b, false).is_err(),
    );
    // MULTIAPPEND (RFC 3502 §6): two messages, the second with its own flags
    // and date, the first with none.
    let mut multi = b"A003 APPEND saved-messages {7}\r\nFirst\r\n (\\Seen) \" 1-Jul-2002 00:00:00 -0700\" {8}\r\nSecond\r\n\r\n".to_vec();
    let c = wire_round_trip(&multi);
    assert_eq!(
        c.body,
        CommandBody::Append {
            mailbox: Mailbox::new("saved-messages").unwrap(),
            messages: vec![
                AppendMessage::new(&b"First\r\n"[..]),
                AppendMessage {
                    flags: vec![Flag::Seen],
                    date: Some(" 1-Jul-2002 00:00:00 -0700".into()),
                    message: b"Second\r\n"[..].into(),
                    utf8: false,
                    catenate: None,
                },
            ],
        }
    );
    // date-time is exact (RFC 3501 §9): a fuzzer found a quoted date with a
    // DEL in it, which re-encodes as a literal and shifts the messages.
    all_rejected(
        &[
            b"A1 APPEND x \" 1-Jul-2002 00:00:00 \x7f0700\" {1}\r\nA\r\n",
            b"A1 APPEND x \"1-Jul-2002 00:00:00 -0700\" {1}\r\nA\r\n",
            b"A1 APPEND x \"01-Jly-2002 00:00:00 -0700\" {1}\r\nA\r\n",
            b"A1 APPEND x \"01-Jul-2002 00:00:00 0700 \" {1}\r\nA\r\n",
        ],
        |b| Command::parse(b, false).is_err(),
    );
    // A trailing space with no message after it is a syntax error.
    multi.truncate(multi.len() - 2);
    multi.extend_from_slice(b" \r\n");
    assert!(Command::parse(&multi, false).is_err());
    for line in [
        &b"a FETCH 1 BODY.PEEK[1.2.MIME]<0.100>\r\n"[..],
        b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
        b"a STORE 1 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
        b"a FETCH 1 ALL\r\n",
        b"a FETCH 1:3 (BINARY.PEEK[1]<0.10> BINARY.SIZE[2] BODYSTRUCTURE MODSEQ UID RFC822.SIZE)\r\n",
        b"a UID SEARCH OR SEEN (KEYWORD $Junk LARGER 1000) UID 1:100 MODSEQ 5 HEADER X-Spam yes\r\n",
        b"a STORE 1,3 FLAGS \\Seen $Forwarded\r\n",
        b"a FETCH 2 BODY[TEXT]<10.20>\r\n",
        b"a FETCH 2 BODY[]\r\n",
    ] {
        wire_round_trip(line);
    }
    let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(40), ")".repeat(40));
    assert!(parse(&deep).is_err(), "nesting is bounded");
    for bad in [
        "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
        "a FETCH 1 BOGUS\r\n",
        "a SEARCH SINCE 32-Foo-19\r\n",
        "a STORE 1 +FLAG (\\Seen)\r\n",
        "a APPEND x \"msg\"\r\n",
        "a FETCH 0 FLAGS\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

/// Found by fuzzing: a refused over-long line whose non-synchronising
/// literal header arrives split across reads must still have its literal
/// skipped, however the bytes are split.
#[test]
fn refused_line_with_split_literal_header_skips_the_literal() {
    let mut input = b"a APPEND x ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 300));
    input.extend_from_slice(b" {3+}\r\nabc {0+}\r\n\r\nb NOOP\r\n");
    for step in [1, 2, 3, 5, input.len()] {
        let mut f = Framer::new(FramerLimits::new(256, 64));
        let mut out = Vec::new();
        for c in input.chunks(step) {
            out.extend(frames(&mut f, c));
        }
        assert_eq!(out.len(), 2, "step {step}: {out:?}");
        assert!(matches!(&out[0], Frame::Refused { .. }));
        assert!(
            matches!(&out[1], Frame::Command(c) if c[..] == b"b NOOP\r\n"[..]),
            "step {step}: {out:?}"
        );
    }
}

fn response_round_trip(line: &[u8]) -> Response<'static> {
    let mut f = Framer::new(FramerLimits::default());
    let bytes = frames(&mut f, line)
        .into_iter()
        .find_map(|fr| match fr {
            Frame::Command(c) => Some(c),
            _ => None,
        })
        .expect("a response");
    let r = Response::parse(&bytes, false)
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(line)));
    let again = r.encode(false);
    assert_eq!(
        Response::parse(&again, false),
        Ok(r.clone()),
        "{:?}",
        String::from_utf8_lossy(&again)
    );
    r.into_owned()
}

#[test]
fn rfc3501_responses() {
    use imap_proto::{Code, FetchValue, StatusKind};
    assert_eq!(
        response_round_trip(b"* OK [UNSEEN 12] Message 12 is first unseen\r\n"),
        Response::Status {
            tag: None,
            kind: StatusKind::Ok,
            code: Some(Code::Unseen(12)),
            text: "Message 12 is first unseen".into()
        }
    );
    assert!(matches!(
        response_round_trip(b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
        Response::Status {
            code: Some(Code::UidValidity(3857529045)),
            ..
        }
    ));
    let r = response_round_trip(b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n");
    assert!(
        matches!(r, Response::Status { code: Some(Code::PermanentFlags(ref f)), .. } if f.len() == 3 && f[2] == Flag::Extension("*".into()))
    );
    assert!(matches!(
        response_round_trip(b"A142 OK [READ-WRITE] SELECT completed\r\n"),
        Response::Status {
            tag: Some(_),
            code: Some(Code::ReadWrite),
            ..
        }
    ));
    assert_eq!(
        response_round_trip(b"* 172 EXISTS\r\n"),
        Response::Exists(172)
    );
    assert_eq!(response_round_trip(b"* 1 RECENT\r\n"), Response::Recent(1));
    assert_eq!(
        response_round_trip(b"* 22 EXPUNGE\r\n"),
        Response::Expunge(22)
    );
    assert_eq!(
        response_round_trip(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
        Response::Flags(vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft
        ])
    );
    assert_eq!(
        response_round_trip(b"* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n"),
        Response::List {
            lsub: false,
            attributes: vec!["\\Noselect".into()],
            delimiter: Some('/'),
            mailbox: Mailbox::new("~/Mail/foo").unwrap(),
            extended: Vec::new(),
        }
    );
    assert!(matches!(
        response_round_trip(b"* LSUB () \".\" #news.comp.mail.misc\r\n"),
        Response::List { lsub: true, .. }
    ));
    assert_eq!(
        response_round_trip(b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"),
        Response::MailboxStatus {
            mailbox: Mailbox::new("blurdybloop").unwrap(),
            items: vec![(StatusItem::Messages, 231), (StatusItem::UidNext, 44292)],
            mailbox_id: None,
        }
    );
    assert_eq!(
        response_round_trip(b"* SEARCH 2 84 882\r\n"),
        Response::Search(vec![2, 84, 882], None)
    );
    assert_eq!(
        response_round_trip(b"* SEARCH\r\n"),
        Response::Search(vec![], None)
    );
    // RFC 5256 §4.
    assert_eq!(
        response_round_trip(b"* SORT 2 3 6\r\n"),
        Response::Sort(vec![2, 3, 6])
    );
    assert_eq!(
        response_round_trip(b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"),
        Response::Search(vec![2, 5], Some(917162500))
    );
    assert_eq!(
        response_round_trip(b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286)\r\n"),
        Response::Fetch(12, vec![
            FetchValue::Flags(vec![Flag::Seen]),
            FetchValue::InternalDate("17-Jul-1996 02:44:25 -0700".into()),
            FetchValue::Rfc822Size(4286),
        ])
    );
    assert!(
        matches!(response_round_trip(b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n"),
        Response::Capability(ref c) if c.len() == 4)
    );
    assert_eq!(
        response_round_trip(b"+ Ready for additional command text\r\n"),
        Response::Continue("Ready for additional command text".into())
    );
    assert!(matches!(
        response_round_trip(b"* BYE IMAP4rev1 Server logging out\r\n"),
        Response::Status {
            kind: StatusKind::Bye,
            ..
        }
    ));
    assert!(matches!(
        response_round_trip(b"A002 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
        Response::Status {
            code: Some(Code::AppendUid(38505, _)),
            ..
        }
    ));
    assert!(matches!(
        response_round_trip(b"A003 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
        Response::Status {
            code: Some(Code::CopyUid(38505, _, _)),
            ..
        }
    ));
    assert!(matches!(
        response_round_trip(b"* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"),
        Response::Vanished { earlier: true, .. }
    ));
    assert!(matches!(
        response_round_trip(b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"),
        Response::Status {
            code: Some(Code::HighestModSeq(715194045007)),
            ..
        }
    ));
    let r = response_round_trip(b"* 1 FETCH (UID 4 MODSEQ (12121231000) BODY[HEADER.FIELDS (DATE)] {20}\r\nDate: 1 Jan 2026\r\n\r\n)\r\n");
    let Response::Fetch(1, v) = r else { panic!() };
    assert_eq!(v[0], FetchValue::Uid(4));
    assert_eq!(v[1], FetchValue::ModSeq(12121231000));
    assert!(
        matches!(&v[2], FetchValue::BodySection { data: Some(d), origin: None, .. } if d[..] == b"Date: 1 Jan 2026\r\n\r\n"[..])
    );
    let r = response_round_trip(b"* 2 FETCH (BODY[]<0> NIL)\r\n");
    assert!(
        matches!(r, Response::Fetch(2, ref v) if matches!(&v[0], FetchValue::BodySection { data: None, origin: Some(0), .. }))
    );
    all_rejected(
        &[
            b"* 3 BOGUS\r\n",
            b"* LIST (Noselect) \"/\" x\r\n",
            b"* OK [UIDNEXT x] y\r\n",
            b"A1 FLAGS ()\r\n",
        ],
        |b| Response::parse(b, false).is_err(),
    );
}

proptest! {
    #[test]
    fn response_round_trip_prop(
        n in 1u32..,
        flags in flags(),
        text in "([!-Z^-~][ -~]{0,20})?",
        data in proptest::option::of(proptest::collection::vec(1u8.., 0..40)),
        name in mailbox_name(),
        nums in proptest::collection::vec(1u32.., 0..5),
    ) {
        use imap_proto::{Code, FetchValue, StatusKind};
        for r in [
            Response::Status { tag: Tag::new("a1"), kind: StatusKind::No, code: Some(Code::TryCreate), text: text.clone() },
            Response::Status { tag: None, kind: StatusKind::Ok, code: None, text: text.clone() },
            Response::Exists(n),
            Response::Quota { root: text.clone(), resources: vec![("STORAGE".into(), u64::from(n), u64::from(n) + 1)] },
            Response::QuotaRoot { mailbox: name.clone(), roots: vec![text.clone(), String::new()] },
            Response::Flags(flags.clone()),
            Response::Search(nums.clone(), None),
            Response::Sort(nums.clone()),
            Response::List { lsub: false, attributes: vec!["\\HasNoChildren".into()], delimiter: Some('/'), mailbox: name.clone(), extended: Vec::new() },
            Response::List { lsub: false, attributes: vec![], delimiter: Some('/'), mailbox: name.clone(), extended: vec![("CHILDINFO".into(), vec!["SUBSCRIBED".into()]), ("OLDNAME".into(), vec![text.clone()])] },
            Response::Fetch(n, vec![
                FetchValue::Flags(flags.clone()),
                FetchValue::Uid(n),
                FetchValue::BodySection { section: Section { part: vec![1], text: SectionText::Text, partial: None }, origin: None, data: data.clone().map(Into::into) },
                FetchValue::Rfc822 { part: imap_proto::Rfc822Part::Header, data: data.clone().map(Into::into) },
                FetchValue::Rfc822 { part: imap_proto::Rfc822Part::Full, data: Some(b"x"[..].into()) },
                FetchValue::Binary { part: vec![1, 2], origin: Some(n), data: data.clone().map(Into::into) },
                FetchValue::Binary { part: vec![], origin: None, data: Some(vec![0u8, 1, 2, 0][..].to_vec().into()) },
                FetchValue::BinarySize { part: vec![3], size: n },
            ]),
        ] {
            let wire = r.encode(false);
            let mut f = Framer::new(FramerLimits::default());
            let framed = frames(&mut f, &wire).into_iter().find_map(|fr| match fr { Frame::Command(c) => Some(c), _ => None });
            prop_assert_eq!(framed.as_deref(), Some(&wire[..]));
            prop_assert_eq!(Response::parse(&wire, false), Ok(r));
        }
    }
}

/// RFC 3501 §8 sample FETCH response (the ENVELOPE part).
#[test]
fn rfc3501_envelope() {
    use imap_proto::{Envelope, FetchValue};
    let line = b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n";
    let r = response_round_trip(line);
    let Response::Fetch(12, v) = r else { panic!() };
    let FetchValue::Envelope(env) = &v[3] else {
        panic!("{v:?}")
    };
    let env: &Envelope = env;
    assert_eq!(
        env.subject.as_deref(),
        Some(&b"IMAP4rev1 WG mtg summary and minutes"[..])
    );
    assert_eq!(env.from[0].name.as_deref(), Some(&b"Terry Gray"[..]));
    assert_eq!(env.cc.len(), 2);
    assert_eq!(env.cc[1].host.as_deref(), Some(&b"MIT.EDU"[..]));
    assert!(env.bcc.is_empty() && env.in_reply_to.is_none());
    assert_eq!(
        env.message_id.as_deref(),
        Some(&b"<B27397-0100000@cac.washington.edu>"[..])
    );
}

fn body_extension() -> impl Strategy<Value = BodyExtension<'static>> {
    let leaf = prop_oneof![
        proptest::option::of(proptest::collection::vec(1u8.., 0..12))
            .prop_map(|s| BodyExtension::String(s.map(Into::into))),
        (0u64..1 << 63).prop_map(BodyExtension::Number),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        proptest::collection::vec(inner, 1..4).prop_map(BodyExtension::List)
    })
}

proptest! {
    /// Any extension data after the location survives encode then parse.
    #[test]
    fn body_extension_round_trip(more in proptest::collection::vec(body_extension(), 0..4)) {
        let part = BodyStructure::Single {
            media_type: b"APPLICATION"[..].into(),
            subtype: b"OCTET-STREAM"[..].into(),
            fields: BodyFields { encoding: b"BASE64"[..].into(), octets: 10, ..BodyFields::default() },
            kind: PartKind::Basic,
            md5: Some(None),
            ext: Extension { disposition: Some(None), language: Some(None), location: Some(None), more },
        };
        let r = Response::Fetch(1, vec![FetchValue::BodyStructure(Box::new(part))]);
        let wire = r.encode(false);
        prop_assert_eq!(Response::parse(&wire, false), Ok(r));
    }

    #[test]
    fn envelope_round_trip(
        subject in proptest::option::of(proptest::collection::vec(1u8.., 0..30)),
        names in proptest::collection::vec(proptest::option::of("[ -~]{0,10}"), 0..3),
    ) {
        use imap_proto::{Address, Envelope, FetchValue};
        let addrs: Vec<Address> = names
            .iter()
            .map(|n| Address { name: n.as_ref().map(|s| s.clone().into_bytes().into()), adl: None, mailbox: Some(b"user"[..].into()), host: Some(b"example.org"[..].into()) })
            .collect();
        let env = Envelope { subject: subject.map(Into::into), to: addrs.clone(), cc: addrs, ..Envelope::default() };
        let r = Response::Fetch(1, vec![FetchValue::Envelope(Box::new(env))]);
        let wire = r.encode(false);
        let mut f = Framer::new(FramerLimits::default());
        let framed = frames(&mut f, &wire).into_iter().find_map(|fr| match fr { Frame::Command(c) => Some(c), _ => None });
        prop_assert_eq!(framed.as_deref(), Some(&wire[..]));
        prop_assert_eq!(Response::parse(&wire, false), Ok(r));
    }
}

/// RFC 3501 §7.4.2 body structures, with and without extension data,
/// and a nested message/rfc822.
#[test]
fn rfc3501_body_structures() {
    use imap_proto::{BodyExtension, BodyStructure, FetchValue, PartKind};
    let r = response_round_trip(b"* 12 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n");
    let Response::Fetch(12, v) = r else { panic!() };
    let FetchValue::Body(b) = &v[0] else { panic!() };
    assert!(matches!(
        &**b,
        BodyStructure::Single {
            kind: PartKind::Text { lines: 92 },
            md5: None,
            ..
        }
    ));
    let r = response_round_trip(b"* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))\r\n");
    let Response::Fetch(1, v) = r else { panic!() };
    let FetchValue::BodyStructure(b) = &v[0] else {
        panic!()
    };
    let BodyStructure::Multi {
        parts,
        subtype,
        params,
        ..
    } = &**b
    else {
        panic!()
    };
    assert_eq!(
        (parts.len(), &subtype[..], params.is_none()),
        (2, &b"MIXED"[..], true)
    );
    // Extension data on both kinds.
    response_round_trip(b"* 2 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 100 3 NIL (\"INLINE\" NIL) \"EN\" NIL)(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 2000 \"md5sum\" (\"ATTACHMENT\" (\"FILENAME\" \"a.png\")) (\"EN\" \"DE\") \"http://x\") \"ALTERNATIVE\" (\"BOUNDARY\" \"xyz\") NIL NIL NIL))\r\n");
    // Extension data defined after the location (RFC 3501 `body-extension`)
    // is kept, nested lists and numbers included, on both kinds.
    let r = response_round_trip(b"* 5 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL \"x\" 7 (NIL (\"y\" 12345678901))) \"MIXED\" NIL NIL NIL NIL (1 2)))\r\n");
    let Response::Fetch(5, v) = r else { panic!() };
    let FetchValue::BodyStructure(b) = &v[0] else {
        panic!()
    };
    let BodyStructure::Multi { parts, ext, .. } = &**b else {
        panic!()
    };
    assert_eq!(
        ext.more,
        [BodyExtension::List(vec![
            BodyExtension::Number(1),
            BodyExtension::Number(2)
        ])]
    );
    let BodyStructure::Single { ext, .. } = &parts[0] else {
        panic!()
    };
    assert_eq!(
        ext.more,
        [
            BodyExtension::String(Some(b"x"[..].into())),
            BodyExtension::Number(7),
            BodyExtension::List(vec![
                BodyExtension::String(None),
                BodyExtension::List(vec![
                    BodyExtension::String(Some(b"y"[..].into())),
                    BodyExtension::Number(12345678901)
                ]),
            ]),
        ]
    );
    let deep = format!(
        "* 6 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL {}1{}))\r\n",
        "(".repeat(40),
        ")".repeat(40)
    );
    all_rejected(
        &[
            deep.as_bytes(),
            b"* 6 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL ()))\r\n",
            b"* 6 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL FOO))\r\n",
        ],
        |b| Response::parse(b, false).is_err(),
    );
    // A forwarded message inside.
    let r = response_round_trip(b"* 3 FETCH (BODYSTRUCTURE (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 (\"date\" \"subj\" NIL NIL NIL NIL NIL NIL NIL \"<id>\") (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 20 2) 12))\r\n");
    let Response::Fetch(3, v) = r else { panic!() };
    assert!(
        matches!(&v[0], FetchValue::BodyStructure(b) if matches!(&**b, BodyStructure::Single { kind: PartKind::Message { lines: 12, .. }, .. }))
    );
    // Nesting is bounded: 5 levels parse, 40 do not.
    let nested = |n: usize| {
        format!(
            "* 4 FETCH (BODY {}(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1){})\r\n",
            "(".repeat(n),
            " \"MIXED\")".repeat(n)
        )
    };
    assert!(
        Response::parse(nested(5).as_bytes(), false).is_ok(),
        "{}",
        nested(5)
    );
    assert!(Response::parse(nested(40).as_bytes(), false).is_err());
}

/// A parsed response borrows its input; `into_owned` keeps it after the
/// buffer is gone, equal to what was parsed.
#[test]
fn response_into_owned_outlives_input() {
    use imap_proto::FetchValue;
    use std::borrow::Cow;
    let wire =
        b"* 1 FETCH (BODY[] {5}\r\nhello ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
            .to_vec();
    let borrowed = Response::parse(&wire, false).unwrap();
    let Response::Fetch(_, ref v) = borrowed else {
        panic!()
    };
    assert!(
        matches!(&v[0], FetchValue::BodySection { data: Some(Cow::Borrowed(d)), .. } if *d == b"hello")
    );
    let expected = format!("{borrowed:?}");
    let owned = borrowed.into_owned();
    drop(wire);
    assert_eq!(format!("{owned:?}"), expected);
}

/// A command framed in one piece borrows the input end to end: the frame,
/// the APPEND message and header names are not copied.
#[test]
fn command_borrows_input() {
    use std::borrow::Cow;
    let wire =
        b"a1 APPEND INBOX {5+}\r\nhello\r\na2 FETCH 1 BODY.PEEK[HEADER.FIELDS (From)]\r\n".to_vec();
    let mut f = Framer::new(FramerLimits::default());
    // The first command has a literal, so the framer buffers it.
    let mut at = 0;
    let first = loop {
        let (used, frame) = f.push(&wire[at..]);
        at += used;
        if let Some(fr) = frame {
            break fr;
        }
    };
    let Frame::Command(Cow::Owned(first)) = first else {
        panic!("{first:?}")
    };
    let c = Command::parse(&first, false).unwrap();
    let CommandBody::Append { ref messages, .. } = c.body else {
        panic!()
    };
    assert!(matches!(messages[0].message, Cow::Borrowed(b"hello")));
    let (_, frame) = f.push(&wire[at..]);
    let Some(Frame::Command(Cow::Borrowed(second))) = frame else {
        panic!("{frame:?}")
    };
    let c = Command::parse(second, false).unwrap();
    let CommandBody::Fetch { ref items, .. } = c.body else {
        panic!()
    };
    let FetchItem::BodySection { section, .. } = &items[0] else {
        panic!()
    };
    assert!(
        matches!(&section.text, SectionText::HeaderFields(n) if matches!(n[0], Cow::Borrowed("From")))
    );
    let expected = format!("{c:?}");
    let owned: Command<'static> = c.into_owned();
    drop(wire);
    assert_eq!(format!("{owned:?}"), expected);
}

/// Real servers' deviations: refused by default (RFC 9051 as written),
/// each accepted behind its own switch; 8-bit data is fine inside a
/// literal and as UTF-8 once UTF8=ACCEPT is on.
#[test]
fn client_side_quirks() {
    let utf8_subject =
        "* 1 FETCH (ENVELOPE (NIL \"Grüße\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n".as_bytes();
    let latin1_subject =
        b"* 1 FETCH (ENVELOPE (NIL \"Gr\xfc\xdfe\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n";
    let trailing = b"* SEARCH 2 5 \r\n";
    let nil_encoding = b"* 3 FETCH (BODY (\"TEXT\" \"PLAIN\" NIL NIL NIL NIL 10 1))\r\n";
    all_rejected(
        &[utf8_subject, latin1_subject, trailing, nil_encoding],
        |b| Response::parse(b, false).is_err(),
    );
    // UTF8=ACCEPT: UTF-8 yes, Latin-1 still no.
    assert!(Response::parse(utf8_subject, true).is_ok());
    assert!(Response::parse(latin1_subject, true).is_err());
    // 8-bit inside a literal is data, not syntax.
    assert!(Response::parse(b"* 1 FETCH (BODY[] {2}\r\n\xc3\xbc)\r\n", false).is_ok());
    let mut q = Quirks::default();
    q.eight_bit = true;
    let r = Response::parse_with(latin1_subject, false, q).unwrap();
    let Response::Fetch(1, v) = r else { panic!() };
    assert!(
        matches!(&v[0], FetchValue::Envelope(e) if e.subject.as_deref() == Some(&b"Gr\xfc\xdfe"[..]))
    );
    assert!(Response::parse_with(trailing, false, q).is_err());
    let mut q = Quirks::default();
    q.trailing_space = true;
    assert_eq!(
        Response::parse_with(trailing, false, q),
        Ok(Response::Search(vec![2, 5], None))
    );
    let mut q = Quirks::default();
    q.nil_body_fields = true;
    let r = Response::parse_with(nil_encoding, false, q).unwrap();
    assert!(
        matches!(r, Response::Fetch(3, ref v) if matches!(&v[0], FetchValue::Body(b) if matches!(&**b, BodyStructure::Single { fields, .. } if fields.encoding.is_empty())))
    );
    for b in [utf8_subject, latin1_subject, trailing, nil_encoding] {
        assert!(Response::parse_with(b, false, Quirks::lenient()).is_ok());
    }
}

/// RFC 2971 ID, RFC 2342 NAMESPACE and RFC 4731 ESEARCH examples.
#[test]
fn id_namespace_esearch_responses() {
    let r = response_round_trip(b"* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" \"sunos\" \"os-version\" \"5.5\" \"support-url\" \"mailto:cyrus-bugs+@andrew.cmu.edu\")\r\n");
    assert!(matches!(r, Response::Id(Some(ref p)) if p.len() == 5 && p[0].0[..] == b"name"[..]));
    assert_eq!(response_round_trip(b"* ID NIL\r\n"), Response::Id(None));
    let r = response_round_trip(b"* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\")(\"#ftp/\" \"/\")(\"#news.\" \".\"))\r\n");
    let Response::Namespace(lists) = r else {
        panic!()
    };
    assert_eq!(lists[2].len(), 4);
    assert_eq!(lists[2][3].prefix[..], b"#news."[..]);
    assert_eq!(lists[2][3].delimiter, Some('.'));
    // RFC 2342 §5 response extensions (and RFC 5255 TRANSLATION).
    let r = response_round_trip(b"* NAMESPACE ((\"\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL ((\"Other Users/\" \"/\" \"TRANSLATION\" (\"Andere Benutzer/\")))\r\n");
    let Response::Namespace(lists) = r else {
        panic!()
    };
    assert_eq!(
        lists[0][0].extensions,
        [(
            b"X-PARAM"[..].into(),
            vec![b"FLAG1"[..].into(), b"FLAG2"[..].into()]
        )]
    );
    assert_eq!(lists[2][0].extensions[0].1, [b"Andere Benutzer/".to_vec()]);
    all_rejected(
        &[
            b"* NAMESPACE ((\"\" \"/\" \"X\")) NIL NIL\r\n",
            b"* NAMESPACE ((\"\" \"/\" \"X\" ())) NIL NIL\r\n",
            b"* NAMESPACE ((\"\" \"/\" )) NIL NIL\r\n",
        ],
        |b| Response::parse(b, false).is_err(),
    );
    let r = response_round_trip(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    assert!(matches!(r, Response::Namespace(ref l) if l[1].is_empty() && l[2].is_empty()));
    assert_eq!(
        response_round_trip(b"* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"),
        Response::ESearch {
            tag: Some(b"A282"[..].into()),
            uid: false,
            items: vec![("MIN".into(), "2".into()), ("COUNT".into(), "3".into())]
        }
    );
    assert!(
        matches!(response_round_trip(b"* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"), Response::ESearch { ref items, .. } if items[0].1 == "2,10:11")
    );
    assert!(matches!(
        response_round_trip(b"* ESEARCH (TAG \"a\") UID COUNT 17 ALL 4:18,21,28\r\n"),
        Response::ESearch { uid: true, .. }
    ));
    assert!(Response::parse(b"* ESEARCH COUNT\r\n", false).is_err());
}

/// RFC 2971 ID command.
#[test]
fn id_command() {
    let c = wire_round_trip(b"a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd Music Limited\")\r\n");
    assert!(
        matches!(c.body, CommandBody::Id(Some(ref p)) if p.len() == 3 && p[2].1.as_deref() == Some(&b"Pink Floyd Music Limited"[..]))
    );
    assert_eq!(wire_round_trip(b"a ID NIL\r\n").body, CommandBody::Id(None));
    assert_eq!(
        wire_round_trip(b"a ID ()\r\n").body,
        CommandBody::Id(Some(vec![]))
    );
    assert_eq!(
        wire_round_trip(b"a ID (\"os\" NIL)\r\n").body,
        CommandBody::Id(Some(vec![(b"os"[..].into(), None)]))
    );
}

/// Frames a whole stream and returns the complete units (continuation
/// prompts and refusals are not expected in these transcripts).
fn frame_stream(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut f = Framer::new(FramerLimits::default());
    frames(&mut f, stream)
        .into_iter()
        .filter_map(|fr| match fr {
            Frame::Command(c) => Some(c.into_owned()),
            Frame::ContinuationNeeded => None,
            Frame::Refused { reason, .. } => panic!("refused: {reason}"),
        })
        .collect()
}

/// RFC 9051 §8: the sample IMAP4rev2 session, both directions replayed as
/// byte streams through the framer and parsers, every unit round-tripped.
#[test]
fn rfc9051_sample_session() {
    let client: &[u8] = b"a000 starttls\r\n\
        A001 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n\
        Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ==\r\n\
        babc ENABLE UTF8=ACCEPT\r\n\
        a002 select inbox\r\n\
        a003 fetch 12 full\r\n\
        a004 fetch 12 body[header]\r\n\
        a005 store 12 +flags \\deleted\r\n\
        a006 logout\r\n";
    let units = frame_stream(client);
    assert_eq!(units.len(), 9);
    let mut commands = Vec::new();
    for (n, unit) in units.iter().enumerate() {
        // The third line is the client's SASL response, not a command: the
        // session hands it to the SASL exchange, never to the parser.
        if n == 2 {
            continue;
        }
        let utf8 = n > 3;
        let cmd = Command::parse(unit, utf8)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(unit)));
        let again = join(&cmd.encode(true, utf8));
        assert_eq!(Command::parse(&again, utf8), Ok(cmd.clone()));
        commands.push(cmd);
    }
    let bodies: Vec<&CommandBody> = commands.iter().map(|c| &c.body).collect();
    assert!(matches!(bodies[0], CommandBody::StartTls));
    assert!(matches!(bodies[1], CommandBody::Authenticate { .. }));
    assert!(
        matches!(bodies[3], CommandBody::Select { mailbox, .. } if mailbox.as_str() == "INBOX")
    );
    assert!(matches!(bodies[4], CommandBody::Fetch { set, .. } if set.to_string() == "12"));
    assert!(matches!(bodies[6], CommandBody::Store { .. }));
    assert!(matches!(bodies[7], CommandBody::Logout));

    let header = {
        let mut h = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
            From: Terry Gray <gray@cac.washington.edu>\r\n\
            Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
            To: imap@cac.washington.edu\r\n\
            cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
            Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
            MIME-Version: 1.0\r\n"
            .to_vec();
        // The RFC elides the header; one padding field brings it to the 342
        // octets it announces (blank line included).
        let pad = 342 - h.len() - b"X-Pad: \r\n\r\n".len();
        h.extend_from_slice(b"X-Pad: ");
        h.resize(h.len() + pad, b'x');
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    assert_eq!(header.len(), 342);
    let mut server = b"* OK [CAPABILITY STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2] IMAP4rev2 Service Ready\r\n\
        a000 OK Proceed with TLS negotiation\r\n\
        + cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=\r\n\
        A001 OK SCRAM-SHA-256 authentication successful\r\n\
        * ENABLED UTF8=ACCEPT\r\n\
        babc OK ENABLE completed\r\n\
        * 18 EXISTS\r\n\
        * OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
        * OK [UIDNEXT 4392] Predicted next UID\r\n\
        * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
        * OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n\
        * LIST () \"/\" INBOX\r\n\
        a002 OK [READ-WRITE] SELECT completed\r\n\
        * 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n\
        a003 OK FETCH completed\r\n\
        * 12 FETCH (BODY[HEADER] {342}\r\n"
        .to_vec();
    server.extend_from_slice(&header);
    server.extend_from_slice(
        b")\r\n\
        a004 OK FETCH completed\r\n\
        * 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n\
        a005 OK +FLAGS completed\r\n\
        * BYE IMAP4rev2 server terminating connection\r\n\
        a006 OK LOGOUT completed\r\n",
    );
    let units = frame_stream(&server);
    assert_eq!(units.len(), 21);
    let mut responses = Vec::new();
    for (n, unit) in units.iter().enumerate() {
        let utf8 = n > 4;
        let r = Response::parse(unit, utf8)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(unit)));
        let again = r.encode(utf8);
        assert_eq!(Response::parse(&again, utf8), Ok(r.clone()));
        responses.push(r);
    }
    assert!(
        matches!(&responses[0], Response::Status { tag: None, code: Some(Code::Capability(caps)), .. } if caps.len() == 4)
    );
    assert!(matches!(&responses[2], Response::Continue(_)));
    assert_eq!(responses[6], Response::Exists(18));
    assert!(matches!(
        &responses[7],
        Response::Status {
            code: Some(Code::UidValidity(3_857_529_045)),
            ..
        }
    ));
    assert!(matches!(
        &responses[12],
        Response::Status {
            code: Some(Code::ReadWrite),
            ..
        }
    ));
    let Response::Fetch(12, ref v) = responses[15] else {
        panic!("{:?}", responses[15])
    };
    assert!(
        matches!(&v[0], FetchValue::BodySection { data: Some(d), .. } if d[..] == header[..]),
        "{v:?}"
    );
    assert!(matches!(
        &responses[19],
        Response::Status {
            kind: StatusKind::Bye,
            ..
        }
    ));
}

/// `finish_bytes` is the joined wire form whether or not a literal waits.
#[test]
fn encoder_finish_bytes_matches_joined_chunks() {
    for non_sync in [false, true] {
        let build = || {
            let mut e = Encoder::new(non_sync);
            e.raw(b"a1 LOGIN ")
                .string(b"user")
                .raw(b" ")
                .string(b"p\r\nw");
            e
        };
        let chunks = build().finish();
        assert_eq!(chunks.len(), if non_sync { 1 } else { 2 });
        assert_eq!(build().finish_bytes(), join(&chunks));
        let tail: &[u8] = if non_sync {
            b" {4+}\r\np\r\nw\r\n"
        } else {
            b" {4}\r\np\r\nw\r\n"
        };
        assert!(build().finish_bytes().ends_with(tail));
    }
}

/// Flag variants are public, so a hand-built keyword may hold anything;
/// the encoder writes only its ATOM-CHARs and no flag can start a line
/// or add an argument.
#[test]
fn hand_built_flags_cannot_inject() {
    let r = Response::Flags(vec![
        Flag::Seen,
        Flag::Keyword("$Junk\r\na1 DELETE INBOX".into()),
        Flag::Extension("X (y)".into()),
    ]);
    let wire = r.encode(false);
    assert_eq!(wire, b"* FLAGS (\\Seen $Junka1DELETEINBOX \\Xy)\r\n");
    assert!(Response::parse(&wire, false).is_ok());
}

/// QRESYNC SELECT parameters (RFC 7162 §3.2.5): values in range, each
/// parameter once, and the encoded form parses back.
#[test]
fn select_qresync_limits() {
    all_rejected(
        &[
            b"a SELECT INBOX (QRESYNC (0 1))\r\n",
            b"a SELECT INBOX (QRESYNC (1 0))\r\n",
            b"a SELECT INBOX (QRESYNC (1 9223372036854775808))\r\n",
            b"a SELECT INBOX (QRESYNC (1 2 (1:3)))\r\n",
            b"a SELECT INBOX (QRESYNC (1 2)\r\n",
            b"a SELECT INBOX (CONDSTORE CONDSTORE)\r\n",
            b"a SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))\r\n",
            b"a SELECT INBOX (FOO)\r\n",
            b"a SELECT INBOX ()\r\n",
        ],
        |b| Command::parse(b, false).is_err(),
    );
    let c = wire_round_trip(b"a SELECT INBOX (QRESYNC (3 9223372036854775807 1:* (1 2)))\r\n");
    assert!(
        matches!(c.body, CommandBody::Select { qresync: Some(ref q), .. } if q.mod_seq == (1 << 63) - 1)
    );
}

/// With UTF8=ACCEPT the encoder quotes UTF-8 text (no literal, so no
/// continuation round trip); without it, the same text goes as a literal.
#[test]
fn utf8_accept_quotes_utf8_text() {
    let wire =
        "* 1 FETCH (ENVELOPE (NIL \"Grüße\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n".as_bytes();
    let r = Response::parse(wire, true).unwrap();
    assert_eq!(r.encode(true), wire);
    let ascii_only = r.encode(false);
    // A server's literal is `{n}`: `{n+}` is for clients only (RFC 9051 §4.3).
    assert!(ascii_only.windows(7).any(|w| w == b"{7}\r\nGr"));
    assert_eq!(
        Response::parse(&ascii_only, false).map(|x| x.into_owned()),
        Ok(r.clone().into_owned())
    );
    let c = Command {
        tag: Tag::new("a").unwrap(),
        body: CommandBody::Login {
            username: "jörg".as_bytes().into(),
            password: b"pw"[..].into(),
        },
    };
    assert_eq!(
        join(&c.encode(false, true)),
        "a LOGIN \"jörg\" pw\r\n".as_bytes()
    );
    let chunks = c.encode(false, false);
    assert!(
        chunks[0].wait_for_continuation,
        "a literal without UTF8=ACCEPT"
    );
}

/// Every 64-bit number on the wire is RFC 9051 `number64`: up to 2^63-1,
/// the same limit in commands and responses.
#[test]
fn number64_stops_at_2_pow_63() {
    // (template, is a command)
    let cases = [
        ("a SEARCH MODSEQ {n}\r\n", true),
        ("a STORE 1 (UNCHANGEDSINCE {n}) +FLAGS (\\Seen)\r\n", true),
        ("* OK [HIGHESTMODSEQ {n}] x\r\n", false),
        ("* STATUS INBOX (SIZE {n})\r\n", false),
    ];
    for (n, ok) in [
        ("9223372036854775807", true),
        ("9223372036854775808", false),
    ] {
        for (template, is_command) in cases {
            let wire = template.replace("{n}", n);
            let parses = if is_command {
                Command::parse(wire.as_bytes(), false).is_ok()
            } else {
                Response::parse(wire.as_bytes(), false).is_ok()
            };
            assert_eq!(parses, ok, "{wire}");
        }
    }
}

#[test]
fn the_list_reply_with_the_empty_name_round_trips() {
    // The reply to `LIST "" ""`, which nearly every client sends first.
    let wire = b"* LIST (\\Noselect) \"/\" \"\"\r\n";
    let r = Response::parse(wire, false).unwrap();
    match &r {
        Response::List {
            mailbox, delimiter, ..
        } => {
            assert!(mailbox.is_list_root());
            assert_eq!(*delimiter, Some('/'));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.encode(false), wire);
    // No command takes the empty name.
    assert!(Command::parse(b"a SELECT \"\"\r\n", false).is_err());
}

#[test]
fn done_ends_idle_in_any_case_and_nothing_else_does() {
    assert!(imap_proto::is_idle_done(b"DONE\r\n"));
    assert!(imap_proto::is_idle_done(b"Done\r\n"));
    assert!(!imap_proto::is_idle_done(b"DONE\n"));
    assert!(!imap_proto::is_idle_done(b"a1 DONE\r\n"));
    assert!(!imap_proto::is_idle_done(b"DONEX\r\n"));
}

#[test]
fn quota_commands_and_responses_round_trip() {
    // RFC 9208 §4 examples.
    for line in [
        "a GETQUOTA \"\"\r\n",
        "a GETQUOTAROOT INBOX\r\n",
        "a SETQUOTA \"\" (STORAGE 512)\r\n",
        "a SETQUOTA \"\" (STORAGE 512 MESSAGE 1000)\r\n",
    ] {
        let cmd = Command::parse(line.as_bytes(), false).unwrap();
        assert_eq!(join(&cmd.encode(false, false)), line.as_bytes(), "{line}");
    }
    let cmd = Command::parse(b"a SETQUOTA \"\" (storage 512)\r\n", false).unwrap();
    assert_eq!(
        cmd.body,
        CommandBody::SetQuota {
            root: String::new(),
            limits: vec![("STORAGE".into(), 512)]
        }
    );
    assert!(Command::parse(b"a SETQUOTA \"\" (STORAGE)\r\n", false).is_err());
    for wire in [
        &b"* QUOTA \"\" (STORAGE 10 512)\r\n"[..],
        b"* QUOTA \"\" (STORAGE 10 512 MESSAGE 3 1000)\r\n",
        b"* QUOTAROOT INBOX \"\"\r\n",
        b"* QUOTAROOT comp.mail.mime\r\n",
    ] {
        let r = Response::parse(wire, false).unwrap();
        assert_eq!(r.encode(false), wire, "{}", String::from_utf8_lossy(wire));
    }
    assert_eq!(
        Response::parse(b"* QUOTA \"\" (STORAGE 10 512)\r\n", false).unwrap(),
        Response::Quota {
            root: String::new(),
            resources: vec![("STORAGE".into(), 10, 512)]
        }
    );
}

#[test]
fn binary_fetch_data_round_trips_with_literal8_for_nul() {
    // RFC 3516 §4.2 shapes: BINARY[section-binary]<partial> literal8, and
    // BINARY.SIZE[section-binary] number.
    let wire = b"* 12 FETCH (BINARY[1.2] ~{4}\r\n\x00ab\x00 BINARY.SIZE[1.2] 4)\r\n";
    let r = Response::parse(wire, false).unwrap();
    let Response::Fetch(12, v) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(
        v[0],
        imap_proto::FetchValue::Binary {
            part: vec![1, 2],
            origin: None,
            data: Some(b"\x00ab\x00"[..].into())
        }
    );
    assert_eq!(
        v[1],
        imap_proto::FetchValue::BinarySize {
            part: vec![1, 2],
            size: 4
        }
    );
    assert_eq!(r.encode(false), wire);
    // Without NUL, a plain literal.
    let wire = b"* 1 FETCH (BINARY[]<0> {2}\r\nhi)\r\n";
    assert_eq!(Response::parse(wire, false).unwrap().encode(false), wire);
}

#[test]
fn the_saved_search_result_is_a_sequence_set() {
    // RFC 5182 §2.4 examples.
    for line in [
        "a UID SEARCH RETURN (SAVE) FLAGGED\r\n",
        "b UID FETCH $ (UID FLAGS)\r\n",
        "c COPY $ Archive\r\n",
        "d SEARCH $ SMALLER 4096\r\n",
        "e UID STORE $ +FLAGS (\\Seen)\r\n",
    ] {
        let cmd = Command::parse(line.as_bytes(), false).unwrap();
        assert_eq!(join(&cmd.encode(false, false)), line.as_bytes(), "{line}");
    }
    let s = SequenceSet::parse(b"$").unwrap();
    assert!(s.is_saved());
    assert_eq!(s.to_string(), "$");
    assert!(SequenceSet::parse(b"$,1").is_err());
    assert!(!SequenceSet::parse(b"1:*").unwrap().is_saved());
}

/// RFC 5256 §4's examples, parsed.
#[test]
fn sort_commands_of_rfc5256() {
    let c = Command::parse(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n", false).unwrap();
    let CommandBody::Sort {
        uid,
        ret,
        criteria,
        charset,
        keys,
    } = c.body
    else {
        panic!("{c:?}")
    };
    assert_eq!(ret, None);
    assert!(!uid);
    assert_eq!(
        criteria,
        [SortCriterion {
            reverse: false,
            key: SortKey::Subject
        }]
    );
    assert_eq!(charset, "UTF-8");
    assert_eq!(keys.len(), 1);
    let c = Command::parse(b"A283 UID SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n", false).unwrap();
    let CommandBody::Sort { uid, criteria, .. } = c.body else {
        panic!("{c:?}")
    };
    assert!(uid);
    assert_eq!(
        criteria,
        [
            SortCriterion {
                reverse: false,
                key: SortKey::Subject
            },
            SortCriterion {
                reverse: true,
                key: SortKey::Date
            }
        ]
    );
    assert!(
        Command::parse(b"a SORT () UTF-8 ALL\r\n", false).is_err(),
        "criteria are required"
    );
    assert!(Command::parse(b"a SORT (REVERSE) UTF-8 ALL\r\n", false).is_err());
    assert!(
        Command::parse(b"a SORT (SUBJECT) ALL\r\n", false).is_err(),
        "the charset is required"
    );
}

/// RFC 5256 §4's THREAD example, and the command.
#[test]
fn thread_response_and_command_of_rfc5256() {
    let r = response_round_trip(b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n");
    let Response::Thread(t) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(t.len(), 2);
    assert_eq!(t[0], Thread::leaf(2));
    // 3 -> 6 -> { 4 -> 23, 44 -> 7 -> 96 }
    let six = &t[1].children[0];
    assert_eq!(six.message, Some(6));
    assert_eq!(six.children.len(), 2);
    assert_eq!(six.children[1].children[0].children[0], Thread::leaf(96));
    // A parent that is not in the mailbox.
    let r = response_round_trip(b"* THREAD ((3)(5))\r\n");
    assert!(
        matches!(&r, Response::Thread(t) if t[0].message.is_none() && t[0].children.len() == 2)
    );
    assert_eq!(
        response_round_trip(b"* THREAD\r\n"),
        Response::Thread(vec![])
    );
    let c = Command::parse(
        b"a UID THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
        false,
    )
    .unwrap();
    assert!(matches!(
        c.body,
        CommandBody::Thread {
            uid: true,
            algorithm: ThreadAlgorithm::OrderedSubject,
            ..
        }
    ));
    assert!(Command::parse(b"a THREAD SIDEWAYS UTF-8 ALL\r\n", false).is_err());
    // Nesting past the limit is refused, not recursed into.
    let deep = format!("* THREAD {}1{}\r\n", "(1 (2)".repeat(100), ")".repeat(100));
    assert!(Response::parse(deep.as_bytes(), false).is_err());
}

fn thread_tree() -> impl Strategy<Value = Thread> {
    let leaf = (1u32..1000).prop_map(Thread::leaf);
    leaf.prop_recursive(4, 24, 3, |inner| {
        ((1u32..1000), proptest::collection::vec(inner, 0..3)).prop_map(|(m, children)| Thread {
            message: Some(m),
            children,
        })
    })
}

proptest! {
    /// Any thread tree written and read back is the same tree.
    #[test]
    fn thread_responses_round_trip(threads in proptest::collection::vec(thread_tree(), 0..4)) {
        let r = Response::Thread(threads);
        let bytes = r.encode(false);
        prop_assert_eq!(response_round_trip(&bytes), r);
    }
}

/// `* THREAD (1 2 3 …)`: a chain of 200,000 replies parses, encodes back
/// the same and is dropped, all without deep recursion.
#[test]
fn a_thread_chain_of_any_length_parses_encodes_and_drops() {
    let chain: Vec<String> = (1..=200_000).map(|n| n.to_string()).collect();
    let line = format!("* THREAD ({})\r\n", chain.join(" "));
    let r = Response::parse(line.as_bytes(), false).unwrap();
    assert_eq!(r.encode(false), line.as_bytes());
    drop(r);
}

/// RFC 4469 §5's example: CATENATE with URL and TEXT parts, and a second
/// message (MULTIAPPEND) that is a plain literal.
#[test]
fn rfc4469_catenate_example() {
    let mut wire = b"A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {42}\r\n".to_vec();
    wire.extend_from_slice(b"\r\n--------------030308070208000400050907\r\n");
    wire.extend_from_slice(b" URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME\" URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1\") {5}\r\nhello\r\n");
    let c = Command::parse(&wire, false).unwrap();
    let CommandBody::Append { messages, .. } = &c.body else {
        panic!("{c:?}")
    };
    assert_eq!(messages.len(), 2);
    let parts = messages[0].catenate.as_ref().unwrap();
    assert_eq!(parts.len(), 4);
    assert_eq!(
        parts[0],
        CatenatePart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".into())
    );
    assert!(matches!(&parts[1], CatenatePart::Text(t) if t.len() == 42));
    assert_eq!(messages[0].flags.len(), 3);
    assert_eq!(messages[1].message.as_ref(), b"hello");
    let again = join(&c.encode(true, false));
    assert_eq!(Command::parse(&again, false).unwrap(), c);
    assert!(Command::parse(b"a APPEND x CATENATE (FOO \"u\")\r\n", false).is_err());
    assert!(Command::parse(b"a APPEND x CATENATE ()\r\n", false).is_err());
}

/// RFC 5267's ADDTO/REMOVEFROM and RFC 9394's PARTIAL return data parse
/// and encode back; a value that could break the line is not written.
#[test]
fn esearch_context_and_partial_values() {
    for line in [
        "* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)\r\n",
        "* ESEARCH (TAG \"a\") REMOVEFROM (0 1,3:5)\r\n",
        "* ESEARCH (TAG \"p\") PARTIAL (-5:-1 NIL)\r\n",
        "* ESEARCH (TAG \"p\") COUNT 3 PARTIAL (1:2 4,7)\r\n",
    ] {
        let r = Response::parse(line.as_bytes(), false).unwrap();
        assert_eq!(r.encode(false), line.as_bytes(), "{line}");
    }
    assert!(Response::parse(b"* ESEARCH PARTIAL (1:2 x)\r\n", false).is_err());
    let r = Response::ESearch {
        tag: None,
        uid: false,
        items: vec![("ALL".into(), "(1\r\n)".into())],
    };
    assert_eq!(r.encode(false), b"* ESEARCH\r\n");
    let c = Command::parse(b"a SEARCH RETURN (PARTIAL -1:-100 UPDATE) ALL\r\n", false).unwrap();
    assert!(matches!(
        c.body,
        CommandBody::Search { ret: Some(ref r), .. }
            if r == &[SearchReturn::Partial(-1, -100), SearchReturn::Update]
    ));
    assert!(Command::parse(b"a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL\r\n", false).is_err());
    assert_eq!(
        Command::parse(b"c CANCELUPDATE \"a\" \"b\"\r\n", false)
            .unwrap()
            .body,
        CommandBody::CancelUpdate(vec!["a".into(), "b".into()])
    );
}

/// RFC 8474's examples: MAILBOXID after CREATE and in STATUS, EMAILID and
/// THREADID in FETCH; an id that is no objectid is never written.
#[test]
fn rfc8474_object_ids() {
    let r =
        response_round_trip(b"3 OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Completed\r\n");
    assert!(matches!(
        r,
        Response::Status { code: Some(Code::MailboxId(ref id)), .. }
            if id == "F2212ea87-6097-4256-9d51-71338625"
    ));
    let r = response_round_trip(
        b"* STATUS foo (UIDNEXT 1 MAILBOXID (F2212ea87-6097-4256-9d51-71338625))\r\n",
    );
    assert!(matches!(
        r,
        Response::MailboxStatus { ref items, mailbox_id: Some(ref id), .. }
            if items == &[(StatusItem::UidNext, 1)] && id.starts_with("F2212")
    ));
    let r = response_round_trip(
        b"* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))\r\n",
    );
    assert!(matches!(r, Response::Fetch(1, ref v) if v.len() == 2));
    response_round_trip(b"* 2 FETCH (EMAILID (M5fdc09b49ea703) THREADID NIL)\r\n");
    let bad = Response::Fetch(1, vec![FetchValue::EmailId("a b)\r\n".into())]);
    assert_eq!(bad.encode(false), b"* 1 FETCH (EMAILID NIL)\r\n");
    assert!(Response::parse(b"* 1 FETCH (EMAILID (a.b))\r\n", false).is_err());
    let c = Command::parse(b"a FETCH 1:* (EMAILID THREADID)\r\n", false).unwrap();
    assert!(matches!(
        c.body,
        CommandBody::Fetch { ref items, .. }
            if items == &[FetchItem::EmailId, FetchItem::ThreadId]
    ));
    let c = Command::parse(b"a STATUS foo (MAILBOXID)\r\n", false).unwrap();
    assert!(
        matches!(c.body, CommandBody::Status { ref items, .. } if items == &[StatusItem::MailboxId])
    );
}

/// A command refused for length names its tag only when every split of
/// the input would (cargo-fuzz imap_framer found a 56-octet tag reported
/// whole and not when split, with a 16-octet command limit).
#[test]
fn a_refused_commands_tag_does_not_depend_on_the_split() {
    let tag = "t".repeat(40);
    let line = format!("{tag} NOOP and much more text than sixteen octets\r\n");
    let frames = |pieces: &[&[u8]]| {
        let mut f = Framer::new(FramerLimits::new(16, 0));
        let mut out = Vec::new();
        for p in pieces {
            let mut input = *p;
            while !input.is_empty() {
                let (used, frame) = f.push(input);
                input = &input[used..];
                out.extend(frame.map(Frame::into_owned));
            }
        }
        out
    };
    let whole = frames(&[line.as_bytes()]);
    for at in 1..line.len() {
        let (a, b) = line.as_bytes().split_at(at);
        assert_eq!(frames(&[a, b]), whole, "split at {at}");
    }
    assert!(
        matches!(&whole[..], [Frame::Refused { tag: None, .. }]),
        "{whole:?}"
    );
}
