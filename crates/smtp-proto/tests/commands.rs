//! Known-answer tables for command parsing and encoding.

use std::net::{Ipv4Addr, Ipv6Addr};

use smtp_proto::params::{BodyType, DeliverBy, DeliverByMode, Hold, Notify, Ret, XText};
use smtp_proto::*;

fn parse(line: &str) -> Result<Command<'_>, CommandError> {
    match Command::parse(line.as_bytes())? {
        Parsed::Complete { value, consumed } => {
            assert_eq!(consumed, line.len(), "{line:?} consumed");
            Ok(value)
        }
        Parsed::Incomplete => panic!("{line:?} incomplete"),
    }
}

fn parse_utf8(line: &str) -> Result<Command<'_>, CommandError> {
    let opts = CommandOptions {
        smtputf8: true,
        ..CommandOptions::default()
    };
    Command::parse_with(line.as_bytes(), &opts).map(|p| p.complete().expect("complete"))
}

fn mbox(s: &str) -> Mailbox<'_> {
    Mailbox::parse(s).unwrap()
}

fn reply_code(e: CommandError) -> (u16, String) {
    let r = e.reply();
    (
        r.code().get(),
        r.enhanced().map(|e| e.to_string()).unwrap_or_default(),
    )
}

#[test]
fn simple_verbs_any_case() {
    let table = [
        ("DATA\r\n", Command::Data),
        ("data\r\n", Command::Data),
        ("RSET\r\n", Command::Rset),
        ("QUIT\r\n", Command::Quit),
        ("qUiT\r\n", Command::Quit),
        ("STARTTLS\r\n", Command::StartTls),
        ("NOOP\r\n", Command::Noop { arg: None }),
        ("HELP\r\n", Command::Help { topic: None }),
        (
            "HELP MAIL\r\n",
            Command::Help {
                topic: Argument::new("MAIL"),
            },
        ),
        (
            "NOOP hello there\r\n",
            Command::Noop {
                arg: Argument::new("hello there"),
            },
        ),
        (
            "VRFY Smith\r\n",
            Command::Vrfy {
                arg: Argument::new("Smith").unwrap(),
            },
        ),
        (
            "EXPN Example-People\r\n",
            Command::Expn {
                arg: Argument::new("Example-People").unwrap(),
            },
        ),
        (
            "BDAT 86 LAST\r\n",
            Command::Bdat {
                size: 86,
                last: true,
            },
        ),
        (
            "BDAT 0 last\r\n",
            Command::Bdat {
                size: 0,
                last: true,
            },
        ),
        (
            "BDAT 100000\r\n",
            Command::Bdat {
                size: 100000,
                last: false,
            },
        ),
    ];
    for (line, want) in table {
        assert_eq!(parse(line).unwrap(), want, "{line:?}");
    }
}

#[test]
fn hello_commands() {
    let d = |s| Host::Domain(Domain::new(s).unwrap());
    assert_eq!(
        parse("EHLO bar.com\r\n").unwrap(),
        Command::Ehlo { host: d("bar.com") }
    );
    assert_eq!(
        parse("HELO foo\r\n").unwrap(),
        Command::Helo { host: d("foo") }
    );
    assert_eq!(
        parse("LHLO foo.edu\r\n").unwrap(),
        Command::Lhlo { host: d("foo.edu") }
    );
    assert_eq!(
        parse("EHLO [192.0.2.1]\r\n").unwrap(),
        Command::Ehlo {
            host: Host::Literal(AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
        }
    );
    assert_eq!(
        parse("EHLO [IPv6:2001:db8::1]\r\n").unwrap(),
        Command::Ehlo {
            host: Host::Literal(AddressLiteral::Ipv6(
                "2001:db8::1".parse::<Ipv6Addr>().unwrap()
            ))
        }
    );
    for bad in [
        "EHLO\r\n",
        "EHLO \r\n",
        "EHLO -bad.com\r\n",
        "EHLO bad-.com\r\n",
        "EHLO a..b\r\n",
        "EHLO a b\r\n",
        "EHLO [300.1.1.1]\r\n",
        "EHLO [IPv6:zz::1]\r\n",
        "EHLO bücher.de\r\n",
    ] {
        assert_eq!(parse(bad), Err(CommandError::Syntax), "{bad:?}");
    }
}

#[test]
fn mail_from_paths() {
    let Command::Mail { from, params } = parse("MAIL FROM:<Smith@bar.com>\r\n").unwrap() else {
        panic!()
    };
    assert_eq!(from, ReversePath::Mailbox(mbox("Smith@bar.com")));
    assert!(params.is_empty());

    assert_eq!(
        parse("mail from:<>\r\n").unwrap(),
        Command::Mail {
            from: ReversePath::Null,
            params: MailParameters::default()
        }
    );
    // Source route is accepted and dropped.
    assert_eq!(
        parse("MAIL FROM:<@hosta.int,@jkl.org:userc@d.bar.org>\r\n").unwrap(),
        Command::Mail {
            from: ReversePath::Mailbox(mbox("userc@d.bar.org")),
            params: MailParameters::default()
        }
    );
    // Quoted local part, with escapes, is unquoted in the value.
    let Command::Mail {
        from: ReversePath::Mailbox(m),
        ..
    } = parse("MAIL FROM:<\"john \\\"q\\\" doe\"@example.org>\r\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(m.local_part.as_str(), "john \"q\" doe");
    assert_eq!(m.to_string(), "\"john \\\"q\\\" doe\"@example.org");
    // Address literal domain.
    let Command::Mail {
        from: ReversePath::Mailbox(m),
        ..
    } = parse("MAIL FROM:<a@[10.0.0.1]>\r\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        m.host,
        Host::Literal(AddressLiteral::Ipv4(Ipv4Addr::new(10, 0, 0, 1)))
    );

    for bad in [
        "MAIL FROM:Smith@bar.com\r\n",
        "MAIL FROM:<Smith@bar.com\r\n",
        "MAIL FROM:<Smith>\r\n",
        "MAIL FROM:<@bar.com>\r\n",
        "MAIL FROM:<.a@bar.com>\r\n",
        "MAIL FROM:<a..b@bar.com>\r\n",
        "MAIL FROM:<a@-bar.com>\r\n",
        "MAIL FROM:<a b@bar.com>\r\n",
        "MAIL FROM:<\"unterminated@bar.com>\r\n",
    ] {
        assert_eq!(parse(bad), Err(CommandError::InvalidReversePath), "{bad:?}");
    }
    for bad in ["MAIL TO:<a@b>\r\n", "MAIL\r\n", "MAIL FROM: <a@b.c>\r\n"] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rcpt_to_paths() {
    assert_eq!(
        parse("RCPT TO:<Postmaster>\r\n").unwrap(),
        Command::Rcpt {
            to: ForwardPath::Postmaster,
            params: RcptParameters::default()
        }
    );
    assert_eq!(
        parse("RCPT TO:<postMASTER>\r\n").unwrap(),
        Command::Rcpt {
            to: ForwardPath::Postmaster,
            params: RcptParameters::default()
        }
    );
    // Postmaster with a domain is an ordinary mailbox.
    assert_eq!(
        parse("RCPT TO:<Postmaster@example.com>\r\n").unwrap(),
        Command::Rcpt {
            to: ForwardPath::Mailbox(mbox("Postmaster@example.com")),
            params: RcptParameters::default()
        }
    );
    // The null path is not a forward-path.
    assert_eq!(
        parse("RCPT TO:<>\r\n"),
        Err(CommandError::InvalidForwardPath)
    );
    assert_eq!(
        reply_code(CommandError::InvalidForwardPath),
        (501, "5.1.3".into())
    );
}

#[test]
fn utf8_addresses_need_smtputf8() {
    // MAIL: the transaction declares SMTPUTF8 on the same line.
    let Command::Mail { from, params } = parse("MAIL FROM:<jöran@bücher.de> SMTPUTF8\r\n").unwrap()
    else {
        panic!()
    };
    assert!(params.smtputf8);
    assert_eq!(from, ReversePath::Mailbox(mbox("jöran@bücher.de")));
    let err = parse("MAIL FROM:<jöran@bücher.de>\r\n").unwrap_err();
    assert_eq!(err, CommandError::Utf8NotPermitted);
    assert_eq!(reply_code(err), (553, "5.6.7".into()));

    // RCPT: allowed only when the caller says the transaction is SMTPUTF8.
    assert_eq!(
        parse("RCPT TO:<用户@例子.广告>\r\n"),
        Err(CommandError::Utf8NotPermitted)
    );
    assert_eq!(
        parse_utf8("RCPT TO:<用户@例子.广告>\r\n").unwrap(),
        Command::Rcpt {
            to: ForwardPath::Mailbox(mbox("用户@例子.广告")),
            params: RcptParameters::default()
        }
    );
    // Invalid UTF-8 is refused, not guessed at.
    assert_eq!(
        Command::parse(b"RCPT TO:<a\xff@b.c>\r\n"),
        Err(CommandError::InvalidUtf8)
    );
}

#[test]
fn mail_parameters_all() {
    let line = "MAIL FROM:<a@b.example> SIZE=1000000 BODY=8BITMIME SMTPUTF8 RET=HDRS \
                ENVID=QQ314159+2Bx AUTH=e+3Dmc2@example.com REQUIRETLS MT-PRIORITY=-3 \
                BY=120;RT HOLDFOR=3600 X-FOO=bar X-FLAG\r\n";
    let Command::Mail { params, .. } = parse(line).unwrap() else {
        panic!()
    };
    assert_eq!(params.size, Some(1_000_000));
    assert_eq!(params.body, Some(BodyType::EightBitMime));
    assert!(params.smtputf8);
    assert_eq!(params.ret, Some(Ret::Headers));
    assert_eq!(params.envid.as_ref().map(XText::as_str), Some("QQ314159+x"));
    assert_eq!(
        params.auth.as_ref().map(XText::as_str),
        Some("e=mc2@example.com")
    );
    assert!(params.requiretls);
    assert_eq!(params.mt_priority, Some(-3));
    assert_eq!(
        params.by,
        Some(DeliverBy {
            time: 120,
            mode: DeliverByMode::Return,
            trace: true
        })
    );
    assert_eq!(params.hold, Some(Hold::For(3600)));
    assert_eq!(params.unknown.len(), 2);
    assert_eq!(params.unknown[0].keyword, "X-FOO");
    assert_eq!(params.unknown[0].value.as_deref(), Some("bar"));
    assert_eq!(params.unknown[1].value, None);

    let Command::Mail { params, .. } =
        parse("MAIL FROM:<> BODY=binarymime HOLDUNTIL=2026-12-01T10:00:00Z BY=-5;N\r\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(params.body, Some(BodyType::BinaryMime));
    assert_eq!(
        params.hold,
        Some(Hold::Until("2026-12-01T10:00:00Z".into()))
    );
    assert_eq!(params.by.map(|b| b.time), Some(-5));
}

#[test]
fn mail_parameter_errors() {
    let table: &[(&str, CommandError)] = &[
        (
            "MAIL FROM:<> SIZE=1 SIZE=2\r\n",
            CommandError::DuplicateParameter("SIZE".into()),
        ),
        (
            "MAIL FROM:<> size=1 SIZE=1\r\n",
            CommandError::DuplicateParameter("SIZE".into()),
        ),
        (
            "MAIL FROM:<> SMTPUTF8 SMTPUTF8\r\n",
            CommandError::DuplicateParameter("SMTPUTF8".into()),
        ),
        (
            "MAIL FROM:<> X-A=1 x-a=2\r\n",
            CommandError::DuplicateParameter("X-A".into()),
        ),
        (
            "MAIL FROM:<> HOLDFOR=1 HOLDUNTIL=2026-01-01T00:00:00Z\r\n",
            CommandError::DuplicateParameter("HOLDFOR/HOLDUNTIL".into()),
        ),
        (
            "MAIL FROM:<> SIZE=123456789012345678901234567890\r\n",
            CommandError::NumberTooLarge,
        ),
        (
            "MAIL FROM:<> SIZE=18446744073709551616\r\n",
            CommandError::NumberTooLarge,
        ),
        ("MAIL FROM:<> SIZE=-1\r\n", CommandError::Syntax),
        (
            "MAIL FROM:<> SIZE\r\n",
            CommandError::InvalidParameter("SIZE"),
        ),
        (
            "MAIL FROM:<> BODY=9BIT\r\n",
            CommandError::InvalidParameter("BODY"),
        ),
        (
            "MAIL FROM:<> SMTPUTF8=yes\r\n",
            CommandError::InvalidParameter("SMTPUTF8"),
        ),
        (
            "MAIL FROM:<> RET=ALL\r\n",
            CommandError::InvalidParameter("RET"),
        ),
        (
            "MAIL FROM:<> ENVID=a+2\r\n",
            CommandError::InvalidParameter("ENVID"),
        ),
        (
            "MAIL FROM:<> ENVID=a+0D+0A\r\n",
            CommandError::InvalidParameter("ENVID"),
        ),
        (
            "MAIL FROM:<> MT-PRIORITY=10\r\n",
            CommandError::InvalidParameter("MT-PRIORITY"),
        ),
        (
            "MAIL FROM:<> BY=10;X\r\n",
            CommandError::InvalidParameter("BY"),
        ),
        (
            "MAIL FROM:<> BY=1234567890;R\r\n",
            CommandError::InvalidParameter("BY"),
        ),
        (
            "MAIL FROM:<> HOLDFOR=1234567890\r\n",
            CommandError::NumberTooLarge,
        ),
        ("MAIL FROM:<>  SIZE=1\r\n", CommandError::Syntax),
        ("MAIL FROM:<> SIZE=1 \r\n", CommandError::Syntax),
        ("MAIL FROM:<>SIZE=1\r\n", CommandError::Syntax),
        ("MAIL FROM:<> -X=1\r\n", CommandError::Syntax),
        ("MAIL FROM:<> X=a=b\r\n", CommandError::Syntax),
    ];
    for (line, want) in table {
        assert_eq!(parse(line).as_ref(), Err(want), "{line:?}");
    }
    assert_eq!(
        reply_code(CommandError::DuplicateParameter("SIZE".into())),
        (501, "5.5.4".into())
    );
}

#[test]
fn rcpt_parameters() {
    let Command::Rcpt { params, .. } =
        parse("RCPT TO:<d@e.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;d+40e.example X-Y=1\r\n")
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        params.notify,
        Some(Notify {
            success: true,
            failure: false,
            delay: true
        })
    );
    let orcpt = params.orcpt.unwrap();
    assert_eq!(orcpt.addr_type, "rfc822");
    assert_eq!(orcpt.address.as_str(), "d@e.example");
    assert_eq!(params.unknown.len(), 1);

    let Command::Rcpt { params, .. } = parse("RCPT TO:<d@e.example> NOTIFY=NEVER\r\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(params.notify, Some(Notify::NEVER));
    for bad in [
        "RCPT TO:<d@e.example> NOTIFY=NEVER,SUCCESS\r\n",
        "RCPT TO:<d@e.example> NOTIFY=SUCCESS,SUCCESS\r\n",
        "RCPT TO:<d@e.example> NOTIFY=SOMETIMES\r\n",
        "RCPT TO:<d@e.example> ORCPT=rfc822\r\n",
    ] {
        assert!(
            matches!(parse(bad), Err(CommandError::InvalidParameter(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        parse("RCPT TO:<d@e.example> NOTIFY=NEVER NOTIFY=NEVER\r\n"),
        Err(CommandError::DuplicateParameter(_))
    ));
}

#[test]
fn bdat_numbers_are_checked() {
    assert_eq!(
        parse("BDAT 123456789012345678901234567890 LAST\r\n"),
        Err(CommandError::NumberTooLarge)
    );
    assert_eq!(
        parse("BDAT 18446744073709551615\r\n").unwrap(),
        Command::Bdat {
            size: u64::MAX,
            last: false
        }
    );
    for bad in [
        "BDAT\r\n",
        "BDAT x\r\n",
        "BDAT 1 FIRST\r\n",
        "BDAT -1\r\n",
        "BDAT 1 LAST x\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn auth_command() {
    let Command::Auth {
        mechanism,
        initial_response,
    } = parse("AUTH plain AGFsaWNlAHNlY3JldA==\r\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(mechanism.as_str(), "PLAIN");
    assert_eq!(
        initial_response,
        InitialResponse::base64("AGFsaWNlAHNlY3JldA==")
    );
    // The secret never shows in Debug output.
    let dbg = format!("{:?}", initial_response);
    assert!(!dbg.contains("AGFsaWNl"), "{dbg}");

    assert_eq!(
        parse("AUTH EXTERNAL =\r\n").unwrap(),
        Command::Auth {
            mechanism: Mechanism::new("EXTERNAL").unwrap(),
            initial_response: Some(InitialResponse::Empty)
        }
    );
    assert_eq!(
        parse("AUTH SCRAM-SHA-256\r\n").unwrap(),
        Command::Auth {
            mechanism: Mechanism::new("SCRAM-SHA-256").unwrap(),
            initial_response: None
        }
    );
    for bad in [
        "AUTH\r\n",
        "AUTH A-VERY-LONG-MECHANISM-NAME\r\n",
        "AUTH PLAIN not*base64\r\n",
        "AUTH PLAIN a b\r\n",
    ] {
        assert_eq!(parse(bad), Err(CommandError::Syntax), "{bad:?}");
    }
}

#[test]
fn unknown_and_arguments_on_bare_verbs() {
    let Command::Unknown(u) = parse("XYZZY magic words\r\n").unwrap() else {
        panic!()
    };
    assert_eq!(u.verb(), b"XYZZY");
    assert_eq!(u.line(), b"XYZZY magic words");
    // Unknown verbs keep raw bytes, even non-UTF-8 ones.
    assert!(matches!(
        Command::parse(b"\xff\xfe x\r\n"),
        Ok(Parsed::Complete {
            value: Command::Unknown(_),
            ..
        })
    ));
    assert_eq!(Command::unrecognised_reply().code().get(), 500);
    for bad in [
        "DATA now\r\n",
        "QUIT please\r\n",
        "RSET \r\n",
        "STARTTLS x\r\n",
        "VRFY\r\n",
    ] {
        assert_eq!(parse(bad), Err(CommandError::Syntax), "{bad:?}");
    }
}

#[test]
fn line_rules() {
    // Strict: bare LF refused; lenient: accepted.
    assert_eq!(Command::parse(b"QUIT\n"), Err(CommandError::BareLf));
    let lenient = CommandOptions {
        line_ending: BareLineEnding::Normalize,
        ..CommandOptions::default()
    };
    assert_eq!(
        Command::parse_with(b"QUIT\n", &lenient).unwrap(),
        Parsed::Complete {
            value: Command::Quit,
            consumed: 5
        }
    );
    // A bare CR never joins two commands into one.
    assert_eq!(
        Command::parse(b"RSET\rQUIT\r\n"),
        Err(CommandError::ControlCharacter(b'\r'))
    );
    assert_eq!(
        Command::parse(b"MAIL FROM:<a@b.c>\rRCPT TO:<d@e.f>\r\n"),
        Err(CommandError::ControlCharacter(b'\r'))
    );
    // NUL and other controls.
    assert_eq!(
        Command::parse(b"NOOP a\0b\r\n"),
        Err(CommandError::ControlCharacter(0))
    );
    assert_eq!(
        Command::parse(b"NOOP \x1b[31m\r\n"),
        Err(CommandError::ControlCharacter(0x1b))
    );
    assert_eq!(
        Command::parse(b"NOOP \t\r\n"),
        Err(CommandError::ControlCharacter(b'\t'))
    );
    assert_eq!(reply_code(CommandError::ControlCharacter(0)).0, 500);
    // Incomplete until the line end.
    assert_eq!(Command::parse(b"QUIT\r"), Ok(Parsed::Incomplete));
    assert_eq!(Command::parse(b""), Ok(Parsed::Incomplete));
    // Limit: exactly 512 with CRLF is fine, 513 is not.
    let ok = format!("NOOP {}\r\n", "x".repeat(512 - 7));
    assert_eq!(ok.len(), 512);
    assert!(parse(&ok).is_ok());
    let long = format!("NOOP {}\r\n", "x".repeat(512 - 6));
    assert_eq!(parse(&long), Err(CommandError::LineTooLong { limit: 512 }));
    // Even without a line end, a too-long prefix is refused at once.
    assert_eq!(
        Command::parse("x".repeat(600).as_bytes()),
        Err(CommandError::LineTooLong { limit: 512 })
    );
    assert_eq!(reply_code(CommandError::LineTooLong { limit: 512 }).0, 500);
}

#[test]
fn encode_known_answers() {
    let table = [
        "EHLO bar.com\r\n",
        "HELO [192.0.2.1]\r\n",
        "LHLO [IPv6:2001:db8::1]\r\n",
        "MAIL FROM:<>\r\n",
        "MAIL FROM:<Smith@bar.com> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=a+2Bb AUTH=<> REQUIRETLS MT-PRIORITY=4 BY=60;N HOLDFOR=10 X-A=1 X-B\r\n",
        "RCPT TO:<Postmaster>\r\n",
        "RCPT TO:<\"a b\"@x.org> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+20b@x.org\r\n",
        "RCPT TO:<x@y.z> NOTIFY=NEVER\r\n",
        "DATA\r\n",
        "BDAT 100 LAST\r\n",
        "BDAT 0\r\n",
        "RSET\r\n",
        "VRFY Smith\r\n",
        "EXPN list\r\n",
        "HELP\r\n",
        "HELP DATA\r\n",
        "NOOP\r\n",
        "QUIT\r\n",
        "STARTTLS\r\n",
        "AUTH PLAIN =\r\n",
        "AUTH LOGIN dXNlcg==\r\n",
        "AUTH CRAM-MD5\r\n",
        "XFOO bar\r\n",
    ];
    for line in table {
        let cmd = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(String::from_utf8(cmd.to_bytes().to_vec()).unwrap(), line);
    }
    // The canonical form is written: upper-case verbs, unneeded quotes dropped.
    let cmd = parse("mail from:<\"plain\"@x.org> size=5\r\n").unwrap();
    assert_eq!(&cmd.to_bytes()[..], b"MAIL FROM:<plain@x.org> SIZE=5\r\n");
}

/// RFC 5321 Appendix D.1: a typical SMTP transaction, client side lines.
#[test]
fn rfc5321_appendix_d_client_lines() {
    let lines = [
        ("EHLO bar.com\r\n", "EHLO"),
        ("MAIL FROM:<Smith@bar.com>\r\n", "MAIL"),
        ("RCPT TO:<Jones@foo.com>\r\n", "RCPT"),
        ("RCPT TO:<Green@foo.com>\r\n", "RCPT"),
        ("RCPT TO:<Brown@foo.com>\r\n", "RCPT"),
        ("DATA\r\n", "DATA"),
        ("QUIT\r\n", "QUIT"),
        // D.2 (aborted) and D.3 (relayed, with VRFY)
        ("HELO foo.com\r\n", "HELO"),
        ("RSET\r\n", "RSET"),
        ("VRFY Crispin\r\n", "VRFY"),
        ("MAIL FROM:<JQP@bar.com>\r\n", "MAIL"),
        ("RCPT TO:<Jones@XYZ.COM>\r\n", "RCPT"),
        // D.4: verify and send
        ("EHLO foo.com\r\n", "EHLO"),
    ];
    for (line, verb) in lines {
        assert_eq!(parse(line).unwrap().verb(), verb, "{line:?}");
    }
}

#[test]
fn mailbox_constructors_validate() {
    assert!(Domain::new("exa mple.com").is_err());
    assert!(Domain::new("a\r\nb").is_err());
    assert!(Domain::new("x".repeat(64)).is_err());
    assert!(Domain::new(format!("{}.com", "a".repeat(63))).is_ok());
    assert!(LocalPart::new("a\r\nRCPT TO:<x@y>").is_err());
    assert!(AddressLiteral::general("IPv6", "::1").is_err());
    assert!(AddressLiteral::general("x-tag", "a]b").is_err());
    assert!(Mailbox::parse("a@b@c").is_err());
    // A local part that needs quoting gets it.
    let m = Mailbox {
        local_part: LocalPart::new("a\"b c").unwrap(),
        host: Host::Domain(Domain::new("x.org").unwrap()),
    };
    assert_eq!(m.to_string(), "\"a\\\"b c\"@x.org");
}

#[test]
fn every_control_byte_at_every_position_is_refused() {
    for bad in (0u8..0x20).chain([0x7f]) {
        if bad == b'\n' {
            continue;
        }
        for pos in 0..20 {
            let mut line = b"NOOP abcdefghijklmnopqrstu".to_vec();
            line[5 + pos] = bad;
            line.extend_from_slice(b"\r\n");
            assert_eq!(
                Command::parse(&line),
                Err(CommandError::ControlCharacter(bad)),
                "byte {bad:#x} at {pos}"
            );
        }
    }
    // Non-ASCII bytes are not control bytes (they are UTF-8 or invalid).
    assert!(Command::parse("NOOP ünïcödé text\r\n".as_bytes()).is_ok());
}

#[test]
fn a_quoted_local_part_ending_in_a_multi_octet_character_encodes() {
    // Found by the smtp_received fuzz target: encoding cut the last
    // character of a quoted local part at its last octet and panicked.
    for line in [
        "RCPT TO:<\"a é\"@example.org>",
        "RCPT TO:<\"a\\\"é\"@example.org>",
        "RCPT TO:<\"é \\\\\"@example.org>",
    ] {
        let wire = format!("{line}\r\n");
        let cmd = parse_utf8(&wire).unwrap();
        assert_eq!(&cmd.to_bytes()[..], wire.as_bytes(), "{line}");
    }
}
