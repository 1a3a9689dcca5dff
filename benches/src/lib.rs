//! Inputs shared by the benchmarks, so every implementation measured in a
//! group sees the same bytes.

#![forbid(unsafe_code)]

/// MAIL FROM, 10 RCPT TO and DATA, as a pipelining client sends them in
/// one write.
pub fn pipelined_envelope() -> Vec<u8> {
    let mut v = b"MAIL FROM:<sender.name@example.org> SIZE=48213 BODY=8BITMIME\r\n".to_vec();
    for i in 0..10 {
        v.extend_from_slice(
            format!("RCPT TO:<recipient{i}.surname@mail{i}.example.net> NOTIFY=FAILURE,DELAY\r\n")
                .as_bytes(),
        );
    }
    v.extend_from_slice(b"DATA\r\n");
    v
}

/// One line per command, each with its full set of parameters.
pub fn commands_with_parameters() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("ehlo", b"EHLO client.example.org\r\n"),
        (
            "mail",
            b"MAIL FROM:<bounce-123@lists.example.org> SIZE=1048576 BODY=8BITMIME RET=HDRS ENVID=QQ314159 AUTH=<> MT-PRIORITY=3\r\n",
        ),
        (
            "rcpt",
            b"RCPT TO:<user.name@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user.name@example.com\r\n",
        ),
        ("bdat", b"BDAT 65536 LAST\r\n"),
        ("auth", b"AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0LXBhc3N3b3Jk\r\n"),
        ("data", b"DATA\r\n"),
        ("vrfy", b"VRFY postmaster\r\n"),
    ]
}

/// A message body of about `size` bytes with lines of about 76 octets,
/// where `stuffed_percent` of the lines start with a dot (already
/// dot-stuffed, as on the wire), ended by `CRLF . CRLF`.
pub fn data_body(size: usize, stuffed_percent: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 128);
    v.extend_from_slice(
        b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: benchmark\r\n\r\n",
    );
    let mut n: u32 = 0;
    let line = b"The quick brown fox jumps over the lazy dog, again and again, 0123456789.";
    while v.len() < size {
        n = n.wrapping_add(1);
        // A fixed pattern, not random, so every run measures the same bytes.
        if n % 100 < stuffed_percent {
            v.extend_from_slice(b"..");
        }
        v.extend_from_slice(line);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b".\r\n");
    v
}

/// A multi-line reply as a server sends after DATA in LMTP or on errors.
pub fn multiline_reply() -> Vec<u8> {
    b"550-5.7.1 This message was rejected because it appears to be spam.\r\n\
550-5.7.1 Please visit https://example.org/postmaster for more details\r\n\
550-5.7.1 about our policies and how to request delisting of your\r\n\
550 5.7.1 sending address. Reference: 0123456789abcdef\r\n"
        .to_vec()
}

/// An EHLO response from a well-equipped server.
pub fn ehlo_reply() -> Vec<u8> {
    b"250-mx.example.org Hello client.example.net [192.0.2.7]\r\n\
250-SIZE 52428800\r\n\
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
250 DELIVERBY 240\r\n"
        .to_vec()
}
