//! Known-answer tests for replies and EHLO responses.

use smtp_proto::*;

fn code(n: u16) -> ReplyCode {
    ReplyCode::new(n).unwrap()
}

fn parse(input: &[u8]) -> Reply<'_> {
    match Reply::parse(input).unwrap() {
        Parsed::Complete { value, consumed } => {
            assert_eq!(consumed, input.len());
            value
        }
        Parsed::Incomplete => panic!("incomplete"),
    }
}

#[test]
fn single_line_replies() {
    let r = parse(b"250 OK\r\n");
    assert_eq!(r.code().get(), 250);
    assert_eq!(r.enhanced(), None);
    assert_eq!(r.lines(), ["OK"]);

    let r = parse(b"550 5.1.1 User unknown\r\n");
    assert_eq!(r.enhanced(), EnhancedCode::new(5, 1, 1));
    assert_eq!(r.lines(), ["User unknown"]);
    assert!(r.code().is_permanent());

    let r = parse(b"221\r\n");
    assert_eq!(r.lines(), [""]);
    // An enhanced-looking text whose class differs from the code is text.
    let r = parse(b"250 5.1.1 odd\r\n");
    assert_eq!(r.enhanced(), None);
    assert_eq!(r.lines(), ["5.1.1 odd"]);
    // Three-digit subject and detail are allowed, four are not.
    assert_eq!(
        parse(b"450 4.123.456 x\r\n").enhanced(),
        EnhancedCode::new(4, 123, 456)
    );
    assert_eq!(parse(b"450 4.1234.5 x\r\n").enhanced(), None);
}

#[test]
fn multi_line_replies() {
    let input = b"250-mx.example.com Hello\r\n250-SIZE 1000\r\n250 PIPELINING\r\nNEXT";
    let Parsed::Complete { value, consumed } = Reply::parse(input).unwrap() else {
        panic!()
    };
    assert_eq!(consumed, input.len() - 4);
    assert_eq!(
        value.lines(),
        ["mx.example.com Hello", "SIZE 1000", "PIPELINING"]
    );

    let r = parse(b"550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n");
    assert_eq!(r.enhanced(), EnhancedCode::new(5, 7, 1));
    assert_eq!(r.lines(), ["first", "second", "third"]);

    // Every strict prefix is incomplete.
    let full = b"250-a\r\n250-b\r\n250 c\r\n";
    for n in 0..full.len() {
        assert_eq!(
            Reply::parse(&full[..n]).unwrap(),
            Parsed::Incomplete,
            "prefix {n}"
        );
    }
}

#[test]
fn reply_errors() {
    assert_eq!(
        Reply::parse(b"250-a\r\n251 b\r\n"),
        Err(ReplyError::CodeMismatch)
    );
    assert_eq!(Reply::parse(b"25 x\r\n"), Err(ReplyError::Syntax));
    assert_eq!(Reply::parse(b"250x\r\n"), Err(ReplyError::Syntax));
    assert_eq!(Reply::parse(b"150 x\r\n"), Err(ReplyError::Syntax));
    assert_eq!(Reply::parse(b"250 x\n"), Err(ReplyError::InvalidText));
    assert_eq!(Reply::parse(b"250 a\0b\r\n"), Err(ReplyError::InvalidText));
    let long = format!("250 {}\r\n", "x".repeat(600));
    assert_eq!(
        Reply::parse(long.as_bytes()),
        Err(ReplyError::LineTooLong { limit: 512 })
    );
    assert_eq!(
        Reply::parse("x".repeat(600).as_bytes()),
        Err(ReplyError::LineTooLong { limit: 512 })
    );
    let many = "250-x\r\n".repeat(200) + "250 x\r\n";
    assert_eq!(
        Reply::parse(many.as_bytes()),
        Err(ReplyError::TooManyLines { limit: 128 })
    );
}

#[test]
fn encode_replies() {
    let r = Reply::new(code(250), None, "OK").unwrap();
    assert_eq!(&r.to_bytes()[..], b"250 OK\r\n");
    let r = Reply::new(code(250), EnhancedCode::new(2, 1, 0), "Sender OK").unwrap();
    assert_eq!(&r.to_bytes()[..], b"250 2.1.0 Sender OK\r\n");
    let r = Reply::new(code(214), EnhancedCode::new(2, 0, 0), "line one\nline two").unwrap();
    assert_eq!(
        &r.to_bytes()[..],
        b"214-2.0.0 line one\r\n214 2.0.0 line two\r\n"
    );
    let r = Reply::new(code(250), None, "").unwrap();
    assert_eq!(&r.to_bytes()[..], b"250\r\n");
    // No value can inject a line.
    assert_eq!(
        Reply::new(code(250), None, "a\r\n250 b"),
        Err(InvalidReply::Text)
    );
    assert_eq!(
        Reply::new(code(250), EnhancedCode::new(5, 0, 0), "x"),
        Err(InvalidReply::ClassMismatch)
    );
    assert!(ReplyCode::new(199).is_none());
    assert!(ReplyCode::new(600).is_none());
    assert!(EnhancedCode::new(3, 0, 0).is_none());
}

/// RFC 5321 Appendix D.1, the server's side.
#[test]
fn rfc5321_appendix_d_server_replies() {
    let transcript: &[&[u8]] = &[
        b"220 foo.com Simple Mail Transfer Service Ready\r\n",
        b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
        b"250 OK\r\n",
        b"550 No such user here\r\n",
        b"354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        b"221 foo.com Service closing transmission channel\r\n",
    ];
    for bytes in transcript {
        let r = parse(bytes);
        assert_eq!(&r.to_bytes()[..], *bytes);
    }
    let ehlo = EhloResponse::from_reply(&parse(transcript[1])).unwrap();
    assert_eq!(ehlo.domain, "foo.com");
    assert_eq!(ehlo.greeting.as_deref(), Some("greets bar.com"));
    assert_eq!(
        ehlo.capabilities,
        [
            Capability::EightBitMime,
            Capability::Size(None),
            Capability::Dsn,
            Capability::Unknown {
                keyword: "HELP".into(),
                params: vec![]
            }
        ]
    );
}

#[test]
fn ehlo_capabilities_round_trip() {
    let input = b"250-mx.example.org at your service\r\n\
250-SIZE 35882577\r\n\
250-8BITMIME\r\n\
250-PIPELINING\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-CHUNKING\r\n\
250-BINARYMIME\r\n\
250-SMTPUTF8\r\n\
250-DSN\r\n\
250-STARTTLS\r\n\
250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n\
250-REQUIRETLS\r\n\
250-MT-PRIORITY MIXER\r\n\
250-DELIVERBY 240\r\n\
250-FUTURERELEASE 604800 2026-12-01T00:00:00Z\r\n\
250 X-EXPERIMENT a b\r\n";
    let reply = parse(input);
    let ehlo = EhloResponse::from_reply(&reply).unwrap();
    assert_eq!(ehlo.capabilities.len(), 15);
    assert_eq!(ehlo.capabilities[0], Capability::Size(Some(35882577)));
    assert!(ehlo.has(|c| matches!(c, Capability::Auth(m) if m.iter().any(|m| m == "PLAIN"))));
    assert!(ehlo.has(|c| *c == Capability::Pipelining));
    let mut out = bytes::BytesMut::new();
    assert!(ehlo.encode(&mut out));
    assert_eq!(&out[..], &input[..]);

    assert_eq!(
        EhloResponse::from_reply(&parse(b"550 no\r\n")),
        Err(EhloError::NotPositive)
    );
    assert_eq!(
        EhloResponse::from_reply(&parse(b"250-x\r\n250 -bad\r\n")),
        Err(EhloError::Syntax)
    );
}

/// Postfix's smtp-sink ends its EHLO reply with an empty `250 ` line: it
/// offers nothing, and the rest still reads.
#[test]
fn an_empty_capability_line_is_skipped() {
    let reply = parse(b"250-smtp-sink\r\n250-PIPELINING\r\n250-DSN\r\n250 \r\n");
    let ehlo = EhloResponse::from_reply(&reply).unwrap();
    assert_eq!(ehlo.capabilities, [Capability::Pipelining, Capability::Dsn]);
}
