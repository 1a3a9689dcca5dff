//! Property tests: encode then parse gives the same value; every strict
//! prefix is incomplete; any split of the input gives the same result.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use proptest::prelude::*;
use smtp_proto::params::{
    BodyType, DeliverBy, DeliverByMode, Hold, Notify, OriginalRecipient, Ret, UnknownParameter,
    XText,
};
use smtp_proto::*;

fn domain() -> impl Strategy<Value = Domain<'static>> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}"
        .prop_map(|s| Domain::new(s).expect("valid domain"))
}

fn literal() -> impl Strategy<Value = AddressLiteral<'static>> {
    prop_oneof![
        any::<u32>().prop_map(|n| AddressLiteral::Ipv4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| AddressLiteral::Ipv6(Ipv6Addr::from(n))),
        ("[a-zA-Z][a-zA-Z0-9-]{0,5}[a-zA-Z0-9]", "[!-Z^-~]{1,10}")
            .prop_filter_map("not IPv6", |(t, c)| AddressLiteral::general(t, c).ok()),
    ]
}

fn host() -> impl Strategy<Value = Host<'static>> {
    prop_oneof![
        3 => domain().prop_map(Host::Domain),
        1 => literal().prop_map(Host::Literal),
    ]
}

fn local_part() -> impl Strategy<Value = LocalPart<'static>> {
    prop_oneof![
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9]{1,5}){0,2}",
        "[ -~]{0,12}",
    ]
    .prop_map(|s| LocalPart::new(s).expect("valid local part"))
}

fn mailbox() -> impl Strategy<Value = Mailbox<'static>> {
    (local_part(), host()).prop_map(|(local_part, host)| Mailbox { local_part, host })
}

fn xtext(max: usize) -> impl Strategy<Value = XText<'static>> {
    proptest::string::string_regex(&format!("[ -~]{{1,{max}}}"))
        .unwrap()
        .prop_map(|s| XText::new(s).expect("printable"))
}

fn unknown_params() -> impl Strategy<Value = Vec<UnknownParameter<'static>>> {
    proptest::collection::btree_map(
        "X-[A-Z0-9]{1,6}",
        proptest::option::of("[!-<>-~]{1,8}"),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| UnknownParameter {
                keyword: Cow::Owned(k),
                value: v.map(Cow::Owned),
            })
            .collect()
    })
}

fn mail_params() -> impl Strategy<Value = MailParameters<'static>> {
    let a = (
        proptest::option::of(any::<u64>()),
        proptest::option::of(prop_oneof![
            Just(BodyType::SevenBit),
            Just(BodyType::EightBitMime),
            Just(BodyType::BinaryMime)
        ]),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Headers)]),
        proptest::option::of(xtext(100)),
        proptest::option::of(xtext(40)),
    );
    let b = (
        any::<bool>(),
        proptest::option::of(-9i8..=9),
        proptest::option::of((
            -999_999_999i32..=999_999_999,
            prop_oneof![Just(DeliverByMode::Notify), Just(DeliverByMode::Return)],
            any::<bool>(),
        )),
        proptest::option::of(prop_oneof![
            (0u32..=999_999_999).prop_map(Hold::For),
            "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|[+-][0-2][0-9]:00)"
                .prop_map(|s| Hold::Until(Cow::Owned(s))),
        ]),
        unknown_params(),
    );
    (a, b).prop_map(
        |(
            (size, body, smtputf8, ret, envid, auth),
            (requiretls, mt_priority, by, hold, unknown),
        )| {
            MailParameters {
                size,
                body,
                smtputf8,
                ret,
                envid,
                auth,
                requiretls,
                mt_priority,
                by: by.map(|(time, mode, trace)| DeliverBy { time, mode, trace }),
                hold,
                unknown,
            }
        },
    )
}

fn rcpt_params() -> impl Strategy<Value = RcptParameters<'static>> {
    (
        proptest::option::of(
            any::<(bool, bool, bool)>().prop_map(|(success, failure, delay)| Notify {
                success,
                failure,
                delay,
            }),
        ),
        proptest::option::of(("[a-zA-Z0-9][a-zA-Z0-9-]{0,7}", xtext(60))),
        unknown_params(),
    )
        .prop_map(|(notify, orcpt, unknown)| RcptParameters {
            notify,
            orcpt: orcpt.map(|(t, address)| OriginalRecipient {
                addr_type: Cow::Owned(t),
                address,
            }),
            unknown,
        })
}

fn argument() -> impl Strategy<Value = Argument<'static>> {
    "[ -~]{1,30}".prop_map(|s| Argument::new(s).expect("printable"))
}

fn command() -> impl Strategy<Value = Command<'static>> {
    prop_oneof![
        host().prop_map(|host| Command::Helo { host }),
        host().prop_map(|host| Command::Ehlo { host }),
        host().prop_map(|host| Command::Lhlo { host }),
        (
            prop_oneof![
                1 => Just(ReversePath::Null),
                4 => mailbox().prop_map(ReversePath::Mailbox)
            ],
            mail_params()
        )
            .prop_map(|(from, params)| Command::Mail { from, params }),
        (
            prop_oneof![
                1 => Just(ForwardPath::Postmaster),
                4 => mailbox().prop_map(ForwardPath::Mailbox)
            ],
            rcpt_params()
        )
            .prop_map(|(to, params)| Command::Rcpt { to, params }),
        Just(Command::Data),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        Just(Command::Rset),
        argument().prop_map(|arg| Command::Vrfy { arg }),
        argument().prop_map(|arg| Command::Expn { arg }),
        proptest::option::of(argument()).prop_map(|topic| Command::Help { topic }),
        proptest::option::of(argument()).prop_map(|arg| Command::Noop { arg }),
        Just(Command::Quit),
        Just(Command::StartTls),
        (
            "[A-Z0-9_-]{1,20}",
            proptest::option::of(prop_oneof![
                Just(InitialResponse::Empty),
                "[A-Za-z0-9+/]{1,40}={0,2}".prop_map(|s| InitialResponse::base64(s).unwrap()),
            ])
        )
            .prop_map(|(m, initial_response)| Command::Auth {
                mechanism: Mechanism::new(m).unwrap(),
                initial_response
            }),
        "X[A-Z]{1,6}( [ -~]{1,20})?".prop_map(|line| {
            Command::parse(format!("{line}\r\n").as_bytes())
                .unwrap()
                .complete()
                .unwrap()
                .into_owned()
        }),
    ]
}

fn reply() -> impl Strategy<Value = Reply<'static>> {
    (
        prop_oneof![2 => 2u16..=2, 1 => 3u16..=3, 2 => 4u16..=5],
        0u16..=5,
        0u16..=9,
        any::<bool>(),
        0u16..=999,
        0u16..=999,
        // Text may not start like an enhanced code: first char non-digit.
        proptest::collection::vec("([!-/:-~][ -~]{0,30})?", 1..6),
    )
        .prop_map(|(c, d2, d3, enh, s, d, lines)| {
            let code = ReplyCode::new(c * 100 + d2 * 10 + d3).unwrap();
            let enhanced = if enh && c != 3 {
                EnhancedCode::new(c as u8, s, d)
            } else {
                None
            };
            Reply::with_lines(code, enhanced, lines.into_iter().map(Cow::Owned).collect()).unwrap()
        })
}

fn capability() -> impl Strategy<Value = Capability<'static>> {
    prop_oneof![
        proptest::option::of(any::<u64>()).prop_map(Capability::Size),
        Just(Capability::EightBitMime),
        Just(Capability::Pipelining),
        Just(Capability::EnhancedStatusCodes),
        Just(Capability::Chunking),
        Just(Capability::BinaryMime),
        Just(Capability::SmtpUtf8),
        Just(Capability::Dsn),
        Just(Capability::StartTls),
        proptest::collection::vec("[A-Z0-9-]{1,12}".prop_map(Cow::Owned), 0..4)
            .prop_map(Capability::Auth),
        Just(Capability::RequireTls),
        proptest::option::of("[A-Z]{1,8}".prop_map(Cow::Owned)).prop_map(Capability::MtPriority),
        proptest::option::of(any::<u64>()).prop_map(Capability::DeliverBy),
        (any::<u64>(), "[0-9TZ:-]{1,20}").prop_map(|(max_interval, d)| {
            Capability::FutureRelease {
                max_interval,
                max_datetime: Cow::Owned(d),
            }
        }),
        (
            "X-[A-Z0-9]{1,8}",
            proptest::collection::vec("[!-~]{1,8}".prop_map(Cow::Owned), 0..3)
        )
            .prop_map(|(k, params)| Capability::Unknown {
                keyword: Cow::Owned(k),
                params
            }),
    ]
}

/// Results of feeding `input` through a framer and the parser, in pieces.
fn frame_all(input: &[u8], cuts: &[usize]) -> Vec<Result<Command<'static>, CommandError>> {
    let opts = CommandOptions::default();
    let mut framer = LineFramer::new(opts.max_line, opts.line_ending);
    let mut results = Vec::new();
    let mut pieces = Vec::new();
    let mut last = 0;
    for &c in cuts {
        let c = c.min(input.len()).max(last);
        pieces.push(&input[last..c]);
        last = c;
    }
    pieces.push(&input[last..]);
    for mut piece in pieces {
        while !piece.is_empty() {
            let (used, line) = framer.push(piece);
            piece = &piece[used..];
            if let Some(line) = line {
                results.push(
                    line.map_err(CommandError::from)
                        .and_then(|l| Command::parse_line(l, &opts).map(Command::into_owned)),
                );
            }
        }
    }
    results
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn command_round_trip(cmd in command()) {
        let bytes = cmd.to_bytes();
        let opts = CommandOptions { max_line: 4096, ..CommandOptions::default() };
        let parsed = Command::parse_with(&bytes, &opts);
        prop_assert_eq!(parsed, Ok(Parsed::Complete { value: cmd.clone(), consumed: bytes.len() }));
    }

    #[test]
    fn command_prefixes_are_incomplete(cmd in command()) {
        let bytes = cmd.to_bytes();
        let opts = CommandOptions { max_line: 4096, ..CommandOptions::default() };
        for n in 0..bytes.len() {
            prop_assert_eq!(Command::parse_with(&bytes[..n], &opts), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn framing_split_invariance(
        cmds in proptest::collection::vec(command(), 1..8),
        junk in proptest::collection::vec(
            prop_oneof![
                Just(b"\n".to_vec()),
                Just(b"NOOP\0\r\n".to_vec()),
                Just(vec![b'x'; 700]),
                Just(b"RSET\rQUIT\r\n".to_vec()),
            ],
            0..3,
        ),
        cuts in proptest::collection::vec(0usize..6000, 0..12),
    ) {
        let mut input = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            input.extend_from_slice(&c.to_bytes());
            if let Some(j) = junk.get(i) {
                input.extend_from_slice(j);
            }
        }
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = frame_all(&input, &[]);
        let split = frame_all(&input, &cuts);
        prop_assert_eq!(&whole, &split);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(&whole, &frame_all(&input, &bytewise));
    }

    #[test]
    fn reply_round_trip(r in reply()) {
        let bytes = r.to_bytes();
        let limits = ReplyLimits { line: 1000, lines: 10 };
        prop_assert_eq!(
            Reply::parse_with(&bytes, &limits),
            Ok(Parsed::Complete { value: r.clone(), consumed: bytes.len() })
        );
        for n in 0..bytes.len() {
            prop_assert_eq!(Reply::parse_with(&bytes[..n], &limits), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn ehlo_round_trip(
        // A name like "2.0.0" would read back as an enhanced status code.
        domain in "[a-z][a-z0-9-]{0,8}(\\.[a-z0-9]{1,5}){0,3}",
        greeting in proptest::option::of("[!-~][ -~]{0,20}"),
        capabilities in proptest::collection::vec(capability(), 0..10),
    ) {
        let ehlo = EhloResponse {
            domain: Cow::Owned(domain.to_string()),
            greeting: greeting.map(Cow::Owned),
            capabilities,
        };
        let mut bytes = BytesMut::new();
        prop_assert!(ehlo.encode(&mut bytes));
        let reply = Reply::parse_with(&bytes, &ReplyLimits { line: 1000, lines: 20 })
            .unwrap()
            .complete()
            .unwrap();
        prop_assert_eq!(EhloResponse::from_reply(&reply), Ok(ehlo));
    }

    #[test]
    fn data_split_invariance(
        body in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'x'), Just(b' ')], 0..200),
        tail in proptest::bool::ANY,
        cuts in proptest::collection::vec(0usize..260, 0..10),
        normalize in proptest::bool::ANY,
    ) {
        let mut input = body;
        if tail {
            input.extend_from_slice(b"\r\n.\r\nNEXT");
        }
        let policy = if normalize { BareLineEnding::Normalize } else { BareLineEnding::Reject };
        let run = |cuts: &[usize]| {
            let mut dec = DataDecoder::with_policy(policy, None);
            let mut out = BytesMut::new();
            let mut last = 0;
            let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
            bounds.sort_unstable();
            bounds.push(input.len());
            for b in bounds {
                if b < last { continue; }
                if let BodyProgress::Finished { consumed, result } = dec.decode(&input[last..b], &mut out) {
                    return (out.to_vec(), Some((last + consumed, result)));
                }
                last = b;
            }
            (out.to_vec(), None)
        };
        let whole = run(&[]);
        prop_assert_eq!(&whole, &run(&cuts));
        let bytewise: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(&whole, &run(&bytewise));
        // The end is only ever at CRLF.CRLF (or at the very start: .CRLF).
        if let Some((end, _)) = whole.1 {
            let framed = [b"\r\n".as_slice(), &input[..end]].concat();
            prop_assert!(framed.ends_with(b"\r\n.\r\n"));
        }
    }

    #[test]
    fn data_encode_decode_round_trip(
        message in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'x')], 0..200),
        cuts in proptest::collection::vec(0usize..200, 0..6),
    ) {
        let mut enc = DataEncoder::new();
        let mut wire = BytesMut::new();
        let mut last = 0;
        let mut cuts = cuts;
        cuts.sort_unstable();
        for c in cuts.into_iter().map(|c| c.min(message.len())) {
            enc.encode(&message[last..c], &mut wire);
            last = c;
        }
        enc.encode(&message[last..], &mut wire);
        enc.finish(&mut wire);
        let mut dec = DataDecoder::new();
        let mut out = BytesMut::new();
        let progress = dec.decode(&wire, &mut out);
        prop_assert_eq!(progress, BodyProgress::Finished { consumed: wire.len(), result: Ok(()) });
        // What comes out is the message with every line end made CRLF.
        let mut normal = Vec::new();
        let mut i = 0;
        while i < message.len() {
            match message[i] {
                b'\r' if message.get(i + 1) == Some(&b'\n') => { normal.extend_from_slice(b"\r\n"); i += 2; }
                b'\r' | b'\n' => { normal.extend_from_slice(b"\r\n"); i += 1; }
                c => { normal.push(c); i += 1; }
            }
        }
        if !normal.is_empty() && !normal.ends_with(b"\r\n") {
            normal.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(out.to_vec(), normal);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Command::parse(&input);
        let _ = Reply::parse(&input);
        let mut out = BytesMut::new();
        let _ = DataDecoder::new().decode(&input, &mut out);
    }
}

/// Undoes quoted-printable (RFC 2045 §6.7), for checking the downgrade.
fn qp_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'=' if s[i + 1..].starts_with(b"\r\n") => i += 3,
            b'=' => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

proptest! {
    /// An 8-bit text message downgrades to 7-bit, lines of at most 76
    /// characters, and its body decodes back to the original.
    #[test]
    fn downgrade_is_seven_bit_and_reversible(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\r' && *b != b'\n'), 0..200), 1..8)
    ) {
        let mut body = Vec::new();
        for l in &lines {
            body.extend_from_slice(l);
            body.extend_from_slice(b"\r\n");
        }
        let mut msg = b"Subject: p\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        msg.extend_from_slice(&body);
        let out = smtp_proto::downgrade::to_seven_bit(&msg).unwrap();
        prop_assert!(out.is_ascii());
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        for line in out[split..].split(|&b| b == b'\n') {
            prop_assert!(line.len() <= 77);
        }
        if body.is_ascii() {
            prop_assert_eq!(&out, &msg);
        } else {
            prop_assert_eq!(qp_decode(&out[split..]), body);
        }
    }
}
