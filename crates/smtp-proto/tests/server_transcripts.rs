//! RFC transcripts replayed against the server session, byte for byte.

mod common;

use common::*;
use smtp_proto::server::{Event, Mode};

const EHLO_REPLY: &str = "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n\
250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n\
250-DSN\r\n250 STARTTLS\r\n";

/// RFC 5321 Appendix D.1, a typical transaction (the client's lines from
/// the RFC, the server's in this implementation's words).
#[test]
fn rfc5321_d1_typical_transaction() {
    let mut d = Driver::new(config());
    assert_eq!(d.take_wire(), "220 mx.example.org ESMTP mailkit\r\n");
    let steps: &[(&str, &str)] = &[
        ("EHLO bar.com\r\n", EHLO_REPLY),
        ("MAIL FROM:<Smith@bar.com>\r\n", "250 2.1.0 Sender OK\r\n"),
        ("RCPT TO:<Jones@foo.com>\r\n", "250 2.1.5 Recipient OK\r\n"),
        ("RCPT TO:<Green@foo.com>\r\n", "550 No such user here\r\n"),
        ("RCPT TO:<Brown@foo.com>\r\n", "250 2.1.5 Recipient OK\r\n"),
        (
            "DATA\r\n",
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        ),
        (
            "Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n",
            "250 2.0.0 Message accepted\r\n",
        ),
        (
            "QUIT\r\n",
            "221 2.0.0 mx.example.org closing connection\r\n",
        ),
    ];
    for (c, s) in steps {
        assert_eq!(d.send(c.as_bytes()), *s, "after C: {c:?}");
    }
    assert_eq!(
        d.messages,
        [b"Blah blah blah...\r\n..etc. etc. etc.\r\n".to_vec()]
    );
    assert_eq!(
        d.log,
        [
            "MAIL Smith@bar.com",
            "RCPT <Jones@foo.com>",
            "RCPT <Green@foo.com>",
            "RCPT <Brown@foo.com>",
            "MESSAGE 37 bytes to 2",
            "CLOSED"
        ]
    );
    assert!(d.closed && d.session.is_closed());
}

/// RFC 5321 Appendix D.2 (aborted transaction) and D.4 (RSET and VRFY).
#[test]
fn rfc5321_d2_aborted_and_verify() {
    let mut d = Driver::new(config());
    d.take_wire();
    let steps: &[(&str, &str)] = &[
        ("HELO bar.com\r\n", "250 mx.example.org\r\n"),
        ("MAIL FROM:<Smith@bar.com>\r\n", "250 2.1.0 Sender OK\r\n"),
        ("RCPT TO:<Jones@foo.com>\r\n", "250 2.1.5 Recipient OK\r\n"),
        ("RSET\r\n", "250 2.0.0 OK\r\n"),
        (
            "VRFY Crispin\r\n",
            "252 2.1.5 Cannot VRFY user, but will accept message and attempt delivery\r\n",
        ),
        ("DATA\r\n", "503 5.5.1 Need MAIL and RCPT first\r\n"),
        (
            "QUIT\r\n",
            "221 2.0.0 mx.example.org closing connection\r\n",
        ),
    ];
    for (c, s) in steps {
        assert_eq!(d.send(c.as_bytes()), *s, "after C: {c:?}");
    }
    assert!(d.messages.is_empty());
}

/// RFC 2920 §3.1: a pipelined envelope gets its replies in one write.
#[test]
fn rfc2920_pipelining_one_write() {
    let mut d = Driver::new(config());
    d.send(b"EHLO dbc.mtview.ca.us\r\n");
    d.take_wire();
    let writes = d.writes;
    let out = d.send(
        b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\nRCPT TO:<ned@innosoft.com>\r\n\
RCPT TO:<dan@innosoft.com>\r\nRCPT TO:<kvc@innosoft.com>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n\
250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    assert_eq!(d.writes - writes, 1, "one write for the whole batch");
    let writes = d.writes;
    let out = d.send(b"Date: Thu, 21 May 1998 05:33:29 -0700\r\n\r\nHi\r\n.\r\nQUIT\r\n");
    assert_eq!(
        out,
        "250 2.0.0 Message accepted\r\n221 2.0.0 mx.example.org closing connection\r\n"
    );
    assert_eq!(d.writes - writes, 1);
}

/// RFC 2920 §3.2: pipelining with failures; DATA after no valid recipient
/// is refused, and the client's RSET recovers.
#[test]
fn rfc2920_pipelining_with_failures() {
    let mut d = Driver::new(config());
    d.send(b"EHLO dbc.mtview.ca.us\r\n");
    d.take_wire();
    let out = d.send(
        b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\nRCPT TO:<nobody1@innosoft.com>\r\n\
RCPT TO:<nobody2@innosoft.com>\r\nDATA\r\nRSET\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Sender OK\r\n550 No such user here\r\n550 No such user here\r\n\
554 5.5.1 No valid recipients\r\n250 2.0.0 OK\r\n"
    );
}

/// RFC 3030 §4.1 (simple BDAT) and §4.2 (pipelined BDAT).
#[test]
fn rfc3030_bdat() {
    let mut d = Driver::new(config());
    d.send(b"EHLO example.com\r\n");
    d.take_wire();
    let msg = b"To: ned@innosoft.com\r\nSubject: Chunking test\r\n\r\nHi\r\n";
    let cmd = format!(
        "MAIL FROM:<a@b.example> BODY=BINARYMIME\r\nRCPT TO:<ned@innosoft.com>\r\nBDAT {} LAST\r\n",
        msg.len()
    );
    let mut input = cmd.into_bytes();
    input.extend_from_slice(msg);
    assert_eq!(
        d.send(&input),
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.0.0 Message accepted\r\n"
    );
    assert_eq!(d.messages, [msg.to_vec()]);

    // Pipelined chunks, one of them empty, split at every byte.
    let mut d = Driver::new(config());
    d.send(b"EHLO example.com\r\n");
    d.take_wire();
    let mut input = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nBDAT 5\r\nHello".to_vec();
    input.extend_from_slice(b"BDAT 0\r\nBDAT 8 LAST\r\n, world!");
    input.extend_from_slice(b"QUIT\r\n");
    let out = d.send_split(&input, 1);
    assert_eq!(
        out,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.0.0 5 octets received\r\n\
250 2.0.0 0 octets received\r\n250 2.0.0 Message accepted\r\n\
221 2.0.0 mx.example.org closing connection\r\n"
    );
    assert_eq!(d.messages, [b"Hello, world!".to_vec()]);
}

/// RFC 2033 §4.2: LMTP, one reply per accepted recipient.
#[test]
fn rfc2033_lmtp_example() {
    let mut cfg = config();
    cfg.mode = Mode::Lmtp;
    cfg.hostname = smtp_proto::Domain::new("foo.edu").unwrap();
    cfg.greeting = "LMTP server ready".into();
    cfg.extensions.enhanced_status_codes = false;
    cfg.extensions.starttls = false;
    cfg.extensions.chunking = false;
    cfg.extensions.smtputf8 = false;
    cfg.extensions.dsn = false;
    cfg.extensions.eight_bit_mime = false;
    cfg.limits.max_message_size = 1_000_000;
    let policy: Policy = Box::new(|e| match e {
        Event::Rcpt(r) if format!("{:?}", r.to).contains("jones") => {
            Answer::Reject(reply(550, "No such user here"))
        }
        Event::Message(_) => Answer::Each(vec![
            reply(250, "OK"),
            reply(452, "<green@foo.edu> is temporarily over quota"),
        ]),
        _ => Answer::Accept,
    });
    let mut d = Driver::with_policy(cfg, policy);
    assert_eq!(d.take_wire(), "220 foo.edu LMTP server ready\r\n");
    let steps: &[(&str, &str)] = &[
        (
            "LHLO foo.edu\r\n",
            "250-foo.edu\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n",
        ),
        ("MAIL FROM:<chris@bar.com>\r\n", "250 Sender OK\r\n"),
        ("RCPT TO:<pat@foo.edu>\r\n", "250 Recipient OK\r\n"),
        ("RCPT TO:<jones@foo.edu>\r\n", "550 No such user here\r\n"),
        ("RCPT TO:<green@foo.edu>\r\n", "250 Recipient OK\r\n"),
        (
            "DATA\r\n",
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        ),
        (
            "Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n",
            "250 OK\r\n452 <green@foo.edu> is temporarily over quota\r\n",
        ),
        ("QUIT\r\n", "221 foo.edu closing connection\r\n"),
    ];
    for (c, s) in steps {
        assert_eq!(d.send(c.as_bytes()), *s, "after C: {c:?}");
    }
    // EHLO is not LMTP.
    let mut cfg = config();
    cfg.mode = Mode::Lmtp;
    let mut d = Driver::new(cfg);
    assert_eq!(
        d.send(b"EHLO foo.edu\r\n"),
        "500 5.5.1 Command unrecognized\r\n"
    );
    assert_eq!(
        d.send(b"MAIL FROM:<a@b.c>\r\n"),
        "503 5.5.1 Send LHLO first\r\n"
    );
}
