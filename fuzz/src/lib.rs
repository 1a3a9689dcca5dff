//! The bodies of the fuzz targets, kept in a library so that the cargo-fuzz
//! binaries (nightly) and the corpus replay test (stable, in CI) run the same
//! code.
//!
//! Each target checks properties, not only the absence of panics: what
//! parses re-encodes to something that parses to the same value, and
//! feeding the input in pieces gives the same result as feeding it whole.

#![forbid(unsafe_code)]

mod session;
pub use session::*;

use bytes::BytesMut;
use smtp_proto::{
    BareLineEnding, BodyProgress, Command, CommandError, CommandOptions, DataDecoder, EhloResponse,
    LineFramer, Mailbox, Parsed, Reply, ReplyLimits,
};

/// Splits `data` into pieces whose lengths come from `seed`.
fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let step = usize::from(seed % 17) + 1;
    data.chunks(step).collect()
}

/// Feeds `chunks` to a `LineFramer` (the SMTP and POP3 command framing) and
/// hands each framed line to `each`, checking that the framer always makes
/// progress and never holds more than `max_line`.
fn lines<T>(
    chunks: &[&[u8]],
    max_line: usize,
    policy: BareLineEnding,
    mut each: impl FnMut(Result<&[u8], smtp_proto::LineError>) -> T,
) -> Vec<T> {
    let mut framer = LineFramer::new(max_line, policy);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            let (used, line) = framer.push(rest);
            assert!(used > 0 || line.is_some(), "no progress");
            rest = &rest[used..];
            out.extend(line.map(&mut each));
            assert!(framer.buffered() <= max_line, "framer over its limit");
        }
    }
    out
}

fn frame(chunks: &[&[u8]], opts: &CommandOptions) -> Vec<Result<Command<'static>, CommandError>> {
    lines(chunks, opts.max_line, opts.line_ending, |line| {
        line.map_err(CommandError::from)
            .and_then(|l| Command::parse_line(l, opts).map(Command::into_owned))
    })
}

/// Command framing and parsing: split invariance, and what parses
/// re-encodes to a line that parses, under the same line limit, to the
/// same command.
pub fn smtp_command(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let opts = CommandOptions {
        max_line: 64 + usize::from(seed & 0x3f) * 8,
        line_ending: if seed & 0x40 != 0 {
            BareLineEnding::Normalize
        } else {
            BareLineEnding::Reject
        },
        smtputf8: seed & 0x80 != 0,
    };
    let whole = frame(&[data], &opts);
    let split = frame(&pieces(data, seed), &opts);
    assert_eq!(whole, split, "split changed the result");
    // Under the limit the original line met: the encoding is never longer
    // than what was read, but for the CR a bare LF line end gains.
    let again = CommandOptions {
        max_line: opts.max_line + usize::from(opts.line_ending == BareLineEnding::Normalize),
        ..opts
    };
    for cmd in whole.into_iter().flatten() {
        let bytes = cmd.to_bytes();
        match Command::parse_with(&bytes, &again) {
            Ok(Parsed::Complete { value, consumed }) => {
                assert_eq!(value, cmd, "re-encoded command parses differently");
                assert_eq!(consumed, bytes.len());
            }
            other => panic!("re-encoded command does not parse: {other:?}"),
        }
    }
}

/// Replies read the way a client reads them: bytes appended to a buffer,
/// complete replies taken off its front, until an error.
fn reply_stream(chunks: &[&[u8]], limits: &ReplyLimits) -> Vec<Result<Reply<'static>, String>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match Reply::parse_with(&buf, limits) {
                Ok(Parsed::Complete { value, consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    out.push(Ok(value.into_owned()));
                    buf.drain(..consumed);
                }
                Ok(Parsed::Incomplete) => break,
                Err(e) => {
                    out.push(Err(format!("{e:?}")));
                    return out;
                }
            }
        }
    }
    out
}

/// Reply and EHLO parsing. A stream of replies read whole or in pieces
/// gives the same replies (and the same error); every proper prefix of a
/// complete reply is `Incomplete`; what parses re-encodes to the same reply.
/// The input's lines also make a 250 reply, always, whose EHLO reading
/// (when it is one) encodes to a reply that reads back the same.
pub fn smtp_reply(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let limits = ReplyLimits {
        line: 64 + usize::from(seed) * 4,
        lines: 64,
    };
    let whole = reply_stream(&[data], &limits);
    assert_eq!(
        whole,
        reply_stream(&pieces(data, seed), &limits),
        "split changed the replies"
    );
    let wide = ReplyLimits {
        line: usize::MAX,
        lines: usize::MAX,
    };
    if let Ok(Parsed::Complete { value, consumed }) = Reply::parse_with(data, &limits) {
        for end in (0..consumed).take(512) {
            assert_eq!(
                Reply::parse_with(&data[..end], &limits).map(Parsed::complete),
                Ok(None),
                "a proper prefix of {end} octets is not Incomplete"
            );
        }
        let bytes = value.to_bytes();
        let again = Reply::parse_with(&bytes, &wide).map(Parsed::complete);
        assert_eq!(
            again,
            Ok(Some(value.clone())),
            "re-encoded reply parses differently"
        );
        ehlo_round_trip(&value);
    }
    // The input's lines as the lines of a 250 reply.
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.contains(&b'\r'))
        .take(16)
        .collect();
    let mut text = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        text.extend_from_slice(if i + 1 == lines.len() {
            b"250 "
        } else {
            b"250-"
        });
        text.extend_from_slice(l);
        text.extend_from_slice(b"\r\n");
    }
    if let Ok(Parsed::Complete { value, .. }) = Reply::parse_with(&text, &wide) {
        ehlo_round_trip(&value);
    }
}

fn ehlo_round_trip(reply: &Reply<'_>) {
    let wide = ReplyLimits {
        line: usize::MAX,
        lines: usize::MAX,
    };
    if let Ok(ehlo) = EhloResponse::from_reply(reply) {
        let mut out = BytesMut::new();
        if ehlo.encode(&mut out) {
            let reply = Reply::parse_with(&out, &wide)
                .ok()
                .and_then(Parsed::complete)
                .expect("encoded EHLO parses");
            assert_eq!(EhloResponse::from_reply(&reply), Ok(ehlo));
        }
    }
}

fn decode(
    chunks: &[&[u8]],
    policy: BareLineEnding,
    limit: Option<u64>,
) -> (Vec<u8>, Option<(usize, bool)>) {
    let mut dec = DataDecoder::with_policy(policy, limit);
    let mut out = BytesMut::new();
    let mut offset = 0;
    for chunk in chunks {
        match dec.decode(chunk, &mut out) {
            BodyProgress::NeedMore => offset += chunk.len(),
            BodyProgress::Finished { consumed, result } => {
                return (out.to_vec(), Some((offset + consumed, result.is_ok())));
            }
        }
    }
    (out.to_vec(), None)
}

/// Line ends as `DataEncoder` writes them: CRLF, bare CR and bare LF each
/// become CRLF, and a body that does not end with one gets one.
fn crlf_normalised(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            c => out.push(c),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The reference DATA decoder, for input whose lines all end in CRLF: the
/// body is what comes before the first `CRLF.CRLF` (the DATA command's CRLF
/// counts as the first one), with one leading dot taken from each line.
/// Returns the body and the octets of input it used, or `None` without an
/// end.
fn reference_unstuff(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let framed = [b"\r\n".as_slice(), data].concat();
    let end = framed.windows(5).position(|w| w == b"\r\n.\r\n")?;
    let mut body = Vec::new();
    for line in framed[2..end + 2].split_inclusive(|b| *b == b'\n') {
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Some((body, end + 3))
}

/// Message bodies. DATA decoding: split invariance; output within the size
/// limit; it ends exactly at the first `CRLF.CRLF`; on input with only CRLF
/// line ends, the body is the reference unstuffing's. `DataEncoder` (whole
/// or in pieces) then `DataDecoder` gives back the input with its line ends
/// made CRLF, using every encoded octet. A `BdatDecoder` chunk takes exactly
/// its size, in any pieces, and a discarding one passes nothing on.
pub fn smtp_body(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let policy = if seed & 1 == 0 {
        BareLineEnding::Reject
    } else {
        BareLineEnding::Normalize
    };
    let limit = (seed & 2 != 0).then_some(u64::from(seed));
    let whole = decode(&[data], policy, limit);
    assert_eq!(whole, decode(&pieces(data, seed), policy, limit));
    if let Some(l) = limit {
        assert!(whole.0.len() as u64 <= l, "output over the size limit");
    }
    if let Some((end, _)) = whole.1 {
        let framed = [b"\r\n".as_slice(), &data[..end]].concat();
        assert!(
            framed.ends_with(b"\r\n.\r\n"),
            "ended somewhere other than CRLF.CRLF"
        );
        assert!(
            !framed[..framed.len() - 3]
                .windows(5)
                .any(|w| w == b"\r\n.\r\n"),
            "missed an earlier end of data"
        );
    }
    if let Some((body, used)) = reference_unstuff(data) {
        let clean = data[..used].iter().enumerate().all(|(i, b)| match b {
            b'\r' => data.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && data[i - 1] == b'\r',
            _ => true,
        });
        if clean {
            let (out, end) = decode(&[data], policy, None);
            assert_eq!(end, Some((used, true)), "the end of data is elsewhere");
            assert_eq!(out, body, "differs from the reference unstuffing");
        }
    }

    // Encoder then decoder.
    let mut wire = BytesMut::new();
    let mut enc = smtp_proto::DataEncoder::new();
    for piece in pieces(data, seed.rotate_left(3)) {
        enc.encode(piece, &mut wire);
    }
    enc.finish(&mut wire);
    let mut once = BytesMut::new();
    let mut enc = smtp_proto::DataEncoder::new();
    enc.encode(data, &mut once);
    enc.finish(&mut once);
    assert_eq!(wire, once, "encoding in pieces differs");
    let (back, end) = decode(&[&wire], BareLineEnding::Reject, None);
    assert_eq!(
        end,
        Some((wire.len(), true)),
        "the encoded body does not end at its end"
    );
    assert_eq!(
        back,
        crlf_normalised(data),
        "encode then decode changed the body"
    );

    // BDAT: exactly `size` octets, then the next command.
    let size = u64::from(seed) % (data.len() as u64 + 2);
    for discard in [false, true] {
        let mut dec = if discard {
            smtp_proto::BdatDecoder::discarding(size)
        } else {
            smtp_proto::BdatDecoder::new(size)
        };
        let mut out = BytesMut::new();
        let mut offset = 0;
        let mut ended = None;
        for piece in pieces(data, seed) {
            match dec.decode(piece, &mut out) {
                BodyProgress::NeedMore => offset += piece.len(),
                BodyProgress::Finished { consumed, result } => {
                    assert!(result.is_ok());
                    ended = Some(offset + consumed);
                    break;
                }
            }
        }
        let n = usize::try_from(size).unwrap_or(usize::MAX);
        if size == 0 {
            // An empty chunk takes nothing (it ends on the first bytes).
            assert!(ended.is_none_or(|e| e == 0));
        } else if n <= data.len() {
            assert_eq!(ended, Some(n), "a BDAT chunk ended at the wrong octet");
        } else {
            assert_eq!(ended, None);
            assert_eq!(dec.remaining(), size - data.len() as u64);
        }
        let want = if discard {
            &[][..]
        } else {
            &data[..n.min(data.len())]
        };
        assert_eq!(&out[..], want, "BDAT passed on other bytes");
    }
}

/// POP3 commands as the server reads them: through the line framer with
/// the 255-octet limit (RFC 2449), in any pieces, with the same lines and
/// results; what parses encodes to one CRLF line within `MAX_COMMAND_LINE`
/// that parses back to the same command.
pub fn pop3_command(data: &[u8]) {
    use pop3_proto::{Command, MAX_COMMAND_LINE};
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let policy = if seed & 0x80 != 0 {
        BareLineEnding::Normalize
    } else {
        BareLineEnding::Reject
    };
    let run = |chunks: &[&[u8]]| {
        lines(chunks, MAX_COMMAND_LINE, policy, |line| {
            line.map_err(|e| format!("{e:?}")).and_then(|l| {
                Command::parse_line(l)
                    .map(Command::into_owned)
                    .map_err(|e| format!("{e:?}"))
            })
        })
    };
    let whole = run(&[data]);
    assert_eq!(
        whole,
        run(&pieces(data, seed)),
        "split changed the commands"
    );
    for cmd in whole.into_iter().flatten() {
        let mut b = BytesMut::new();
        cmd.encode(&mut b);
        assert!(b.len() <= MAX_COMMAND_LINE, "{} octets encoded", b.len());
        let line = b.strip_suffix(b"\r\n").expect("ends in CRLF");
        assert!(!line.iter().any(|c| matches!(c, b'\r' | b'\n')));
        assert_eq!(
            Command::parse_line(line).as_ref(),
            Ok(&cmd),
            "re-encoded command parses differently"
        );
    }
}

/// Frames `data` as an IMAP stream (command or response side: the framing is
/// the same) and checks that the framer's buffer stays bounded and that
/// splitting the input differently yields the same frames.
fn imap_frames(data: &[u8], seed: u8) -> Vec<Vec<u8>> {
    use imap_proto::{Frame, Framer, FramerLimits};
    let limits = FramerLimits::new(256, 64);
    let run = |chunks: &[&[u8]]| {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (used, frame) = f.push(rest);
                assert!(used > 0 || frame.is_some(), "framer made no progress");
                rest = &rest[used..];
                out.extend(frame.map(Frame::into_owned));
                assert!(f.buffered() <= limits.max_command + limits.max_literal as usize);
            }
        }
        out
    };
    let whole = run(&[data]);
    assert_eq!(whole, run(&pieces(data, seed)), "split changed the frames");
    whole
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Command(bytes) => Some(bytes.to_vec()),
            _ => None,
        })
        .collect()
}

/// Feeds every framed unit of `data` to `check` with the UTF8=ACCEPT switch
/// taken from the seed byte.
fn imap_each_frame(data: &[u8], check: impl Fn(&[u8], u8, bool)) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    for bytes in imap_frames(data, seed) {
        check(&bytes, seed, seed & 0x80 != 0);
    }
}

/// IMAP framing and command parsing, with limits the input picks. The
/// framer's frames mean what they say: a continuation request follows only
/// a synchronising literal's `{n}` CRLF within the literal limit, and a
/// refused command's tag is one the input holds. What parses re-encodes
/// (synchronising or LITERAL+ literals) to bytes that the `Framer` turns
/// back into exactly one command (after one continuation request per
/// synchronising literal) that parses to the same command and encodes to
/// the same bytes again.
pub fn imap_command(data: &[u8]) {
    use imap_proto::{Command, Frame, Framer, FramerLimits};
    let [a, b, seed, data @ ..] = data else {
        return;
    };
    let utf8 = seed & 0x80 != 0;
    let limits = FramerLimits::new(24 + usize::from(*a) * 8, u64::from(*b) * 8);
    let mut f = Framer::new(limits);
    let mut pos = 0;
    while pos < data.len() {
        let (used, frame) = f.push(&data[pos..]);
        assert!(used > 0 || frame.is_some(), "framer made no progress");
        pos += used;
        match frame.map(Frame::into_owned) {
            Some(Frame::Command(bytes)) => {
                if let Ok(cmd) = Command::parse(&bytes, utf8) {
                    imap_command_round_trip(&cmd, seed & 0x40 != 0, utf8);
                }
            }
            Some(Frame::ContinuationNeeded) => {
                let seen = &data[..pos];
                let line = seen
                    .strip_suffix(b"}\r\n")
                    .or_else(|| seen.strip_suffix(b"}\n"))
                    .expect("a continuation request not after {n} CRLF");
                let open = line.iter().rposition(|c| *c == b'{').expect("no {");
                let n: u64 = std::str::from_utf8(&line[open + 1..])
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .expect("a synchronising literal's size");
                assert!(n <= limits.max_literal, "{n} over the literal limit");
            }
            Some(Frame::Refused { tag, reason }) => {
                assert!(!reason.is_empty());
                if let Some(tag) = tag {
                    let t = tag.as_str().as_bytes();
                    assert!(
                        data[..pos].windows(t.len()).any(|w| w == t),
                        "refused with a tag the input does not hold"
                    );
                }
            }
            None => {}
        }
    }
}

fn imap_command_round_trip(cmd: &imap_proto::Command<'_>, literal_plus: bool, utf8: bool) {
    use imap_proto::{Command, Frame, Framer, FramerLimits};
    let wire = imap_proto::join(&cmd.encode(literal_plus, utf8));
    let mut f = Framer::new(FramerLimits::new(usize::MAX / 4, u64::MAX / 4));
    let mut rest = &wire[..];
    let mut commands = Vec::new();
    while !rest.is_empty() {
        let (used, frame) = f.push(rest);
        assert!(used > 0 || frame.is_some(), "framer made no progress");
        rest = &rest[used..];
        match frame.map(Frame::into_owned) {
            Some(Frame::Command(c)) => commands.push(c.into_owned()),
            Some(Frame::ContinuationNeeded) => assert!(!literal_plus, "a LITERAL+ literal waits"),
            Some(other) => panic!("the encoded command is refused: {other:?}"),
            None => {}
        }
    }
    assert_eq!(f.buffered(), 0, "the encoding leaves a partial command");
    assert_eq!(commands, vec![wire.clone()], "not exactly one command");
    let again = Command::parse(&wire, utf8);
    assert_eq!(
        again.as_ref(),
        Ok(cmd),
        "re-encoded command parses differently"
    );
    if let Ok(again) = again {
        assert_eq!(
            imap_proto::join(&again.encode(literal_plus, utf8)),
            wire,
            "encoding is not stable"
        );
    }
}

/// IMAP response parsing (the client side): what parses re-encodes to the
/// same response, and the encoding is stable.
pub fn imap_response(data: &[u8]) {
    use imap_proto::{Quirks, Response};
    imap_each_frame(data, |bytes, seed, utf8| {
        // Bit 6 of the seed switches every client-side tolerance on.
        let quirks = if seed & 0x40 != 0 {
            Quirks::lenient()
        } else {
            Quirks::default()
        };
        if let Ok(resp) = Response::parse_with(bytes, utf8, quirks) {
            let wire = resp.encode(utf8);
            let again = Response::parse_with(&wire, utf8, quirks);
            assert_eq!(again, Ok(resp), "re-encoded response parses differently");
            if let Ok(again) = again {
                assert_eq!(again.encode(utf8), wire, "encoding is not stable");
            }
        }
    });
}

/// IMAP URLs (CATENATE's URL parts): any text parses or not without
/// panicking; what parses names a UID that is not 0 and extracts from any
/// message at most the message's octets (or a derived header block).
pub fn imap_url(data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let Ok(url) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let Some(u) = imap_proto::url::ImapUrl::parse(url) else {
        return;
    };
    assert_ne!(u.uid, 0);
    assert!(u.uid_validity != Some(0));
    let message = data.get(split + 1..).unwrap_or_default();
    if let Some(part) = u.extract(message) {
        // A HEADER.FIELDS section is built, the rest are slices.
        assert!(
            part.len() <= message.len() + 2,
            "{} > {}",
            part.len(),
            message.len()
        );
    }
}

/// The MIME walker under arbitrary messages: no panic, bounded work, and
/// what it builds goes on the wire and back — BODYSTRUCTURE and ENVELOPE
/// encode to a FETCH response that parses to the same values; every
/// section it names is a slice no longer than the message (or a derived
/// header block), and BINARY never panics.
pub fn imap_mime(data: &[u8]) {
    use imap_proto::mime::Structure;
    use imap_proto::{FetchValue, Response, Section, SectionText};

    let s = Structure::parse(data);
    let b = s.body_structure(data, true);
    let plain = s.body_structure(data, false);
    let env = Structure::envelope(data);
    let r = Response::Fetch(
        1,
        vec![
            FetchValue::BodyStructure(Box::new(b)),
            FetchValue::Body(Box::new(plain)),
            FetchValue::Envelope(Box::new(env)),
        ],
    );
    let wire = r.encode(false);
    if let Ok(back) = Response::parse(&wire, false) {
        assert_eq!(back, r, "BODYSTRUCTURE/ENVELOPE do not round-trip");
    } else {
        // Nesting past the codec's parse depth is the only allowed refusal.
        assert!(wire.iter().filter(|&&c| c == b'(').count() > imap_proto::MAX_BODY_DEPTH);
    }
    for part in [
        vec![],
        vec![1],
        vec![2],
        vec![1, 1],
        vec![1, 2, 1],
        vec![3, 1],
    ] {
        for text in [
            SectionText::Full,
            SectionText::Header,
            SectionText::Text,
            SectionText::Mime,
            SectionText::HeaderFields(vec!["subject".into(), "from".into()]),
            SectionText::HeaderFieldsNot(vec!["received".into()]),
        ] {
            let sec = Section {
                part: part.clone(),
                text,
                partial: Some((3, 50)),
            };
            if let Some(bytes) = s.section(data, &sec) {
                assert!(bytes.len() <= 50);
            }
        }
        let _ = s.binary(data, &part);
    }
}

/// The 8-bit downgrade: never panics; its output is 7-bit; 7-bit input
/// (ASCII without NUL, RFC 2045 §2.7) comes back unchanged.
pub fn smtp_downgrade(data: &[u8]) {
    match smtp_proto::downgrade::to_seven_bit(data) {
        Ok(out) => {
            assert!(out.is_ascii(), "the downgrade gives 7-bit output");
            if data.is_ascii() && !data.contains(&0) {
                assert_eq!(out, data);
            }
        }
        Err(_) => assert!(!data.is_ascii()),
    }
}

/// Every SASL server mechanism fed the client messages a script holds
/// (length-prefixed pieces; the first byte picks the mechanism and whether
/// an initial response is sent): no panic; an exchange that ended (Verify,
/// Success or Failure) answers anything more with a failure; challenges
/// stay small; a SCRAM lookup is answered (keys or an unknown user) and
/// the exchange goes on.
pub fn sasl_server(data: &[u8]) {
    use sasl::server::{ServerExchange, ServerStep};
    use sasl::{Mechanism, ScramCredentials};

    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let mechanism = match first % 4 {
        0 => Mechanism::Plain,
        1 => Mechanism::Login,
        2 => Mechanism::CramMd5,
        _ => Mechanism::ScramSha256,
    };
    let mut pieces = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        pieces.push(&tail[..n]);
        rest = &tail[n..];
    }
    let mut pieces = pieces.into_iter();
    let mut x = ServerExchange::with_nonce(mechanism, "fuzznonce", "mx.example.org");
    let initial = if first & 4 != 0 { pieces.next() } else { None };
    let mut step = x.start(initial);
    for _ in 0..16 {
        step = match step {
            ServerStep::Challenge(c) => {
                assert!(c.len() < 1024, "challenge of {} octets", c.len());
                match pieces.next() {
                    Some(p) => x.respond(p),
                    None => return,
                }
            }
            ServerStep::LookupScram { .. } => {
                let creds = (first & 8 != 0).then(|| ScramCredentials::derive("pw", b"salt", 1));
                x.scram_credentials(creds)
            }
            ServerStep::Verify(_) | ServerStep::Success(_) | ServerStep::Failure(_) => {
                // Nothing more is taken once it is over.
                match x.respond(pieces.next().unwrap_or(b"more")) {
                    ServerStep::Failure(_) => return,
                    other => panic!("an ended exchange went on: {other:?}"),
                }
            }
            _ => return,
        };
    }
}

/// Modified UTF-7 (RFC 3501 §5.1.3): every string encodes to ASCII that
/// decodes back to it, and what decodes re-encodes to the same bytes (one
/// canonical form).
pub fn imap_utf7(data: &[u8]) {
    use imap_proto::utf7;

    if let Ok(s) = std::str::from_utf8(data) {
        let e = utf7::encode(s);
        assert!(e.is_ascii(), "{e:?}");
        assert_eq!(utf7::decode(&e).as_deref(), Ok(s), "{e:?}");
        if let Ok(d) = utf7::decode(s) {
            assert_eq!(utf7::encode(&d), s, "not canonical: {s:?}");
        }
    }
}

/// Sequence sets: what parses is written back as text that parses to the
/// same set, and the members it names within any bound are ascending,
/// unique and within the bound.
pub fn imap_sequence_set(data: &[u8]) {
    use imap_proto::SequenceSet;

    let Some((&b, text)) = data.split_first() else {
        return;
    };
    let Ok(set) = SequenceSet::parse(text) else {
        return;
    };
    let again = set.to_string();
    assert_eq!(
        SequenceSet::parse(again.as_bytes()).as_ref(),
        Ok(&set),
        "{again}"
    );
    let largest = u32::from(b) * 3;
    let mut last = 0;
    for n in set.iter(largest).take(2048) {
        assert!(
            n > last && n <= largest,
            "{n} after {last} (largest {largest})"
        );
        last = n;
    }
}

/// POP3 status lines (`+OK`/`-ERR`, RFC 2449 response codes): what parses
/// encodes to one CRLF-ended line, without another CR or LF, that parses
/// back to the same status.
pub fn pop3_status(data: &[u8]) {
    use pop3_proto::response::Status;

    let Ok(s) = Status::parse(data) else {
        return;
    };
    let mut wire = bytes::BytesMut::new();
    s.encode(&mut wire);
    let line = wire
        .strip_suffix(b"\r\n")
        .expect("a status line ends in CRLF");
    assert!(!line.iter().any(|b| matches!(b, b'\r' | b'\n')), "{line:?}");
    assert_eq!(Status::parse(line).as_ref(), Ok(&s), "{line:?}");
}

/// The IMAP `Framer` alone, with limits the input picks: the frames are
/// the same whether the bytes come whole or split at any point; it always
/// makes progress (never takes nothing and gives nothing); what it holds
/// never passes one command's text plus its literals (the limits); every
/// command frame ends in CRLF.
pub fn imap_framer(data: &[u8]) {
    use imap_proto::{Frame, Framer, FramerLimits};

    let [a, b, c, rest @ ..] = data else {
        return;
    };
    let limits = FramerLimits::new(16 + usize::from(*a) * 8, u64::from(*b) * 4);
    let bound = limits.max_command + usize::try_from(limits.max_literal).unwrap_or(usize::MAX) + 4;
    let run = |pieces: &[&[u8]]| -> Vec<Frame<'static>> {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        for piece in pieces {
            let mut input = *piece;
            while !input.is_empty() {
                let (used, frame) = f.push(input);
                assert!(used > 0 || frame.is_some(), "no progress");
                assert!(used <= input.len());
                input = &input[used..];
                assert!(
                    f.buffered() <= bound,
                    "{} held, bound {bound}",
                    f.buffered()
                );
                if let Some(frame) = frame {
                    if let Frame::Command(cmd) = &frame {
                        assert!(cmd.ends_with(b"\r\n") || cmd.ends_with(b"\n"), "{cmd:?}");
                    }
                    out.push(frame.into_owned());
                }
            }
        }
        out
    };
    let whole = run(&[rest]);
    let at = usize::from(*c) % (rest.len() + 1);
    let split = run(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole, split, "split at {at} changes the frames");
}

/// The store's records (index mailbox and message records, queue records)
/// decoded from any bytes: no panic, and what decodes has one stable
/// encoding (`mailstore::fuzzing::records`).
pub fn mailstore_records(data: &[u8]) {
    mailstore::fuzzing::records(data);
}

/// User and mailbox names from any text: what is accepted is accepted
/// again unchanged, within the limits, never a path outside its folder;
/// the Maildir++ folder escaping reads back to the same mailbox, and only
/// a mailbox's own folder name reads back (`mailstore::fuzzing::names`).
pub fn mailstore_names(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        mailstore::fuzzing::names(text);
    }
}

/// Every SASL client mechanism fed hostile server messages (length-prefixed
/// pieces; the first byte picks the mechanism and whether an initial
/// response is sent, the second the SCRAM iteration cap): no panic; what it
/// answers stays small; a SCRAM server-first message asking for more
/// iterations than the cap is refused before any hashing; once the exchange
/// is done or failed, nothing more is answered.
pub fn sasl_client(data: &[u8]) {
    use sasl::client::ClientExchange;
    use sasl::{Mechanism, Secret};

    let [first, cap, rest @ ..] = data else {
        return;
    };
    let mut rest = rest;
    let mechanism = match first % 4 {
        0 => Mechanism::Plain,
        1 => Mechanism::Login,
        2 => Mechanism::CramMd5,
        _ => Mechanism::ScramSha256,
    };
    let max = (u32::from(*cap) + 1) * 16;
    let mut x = ClientExchange::with_nonce(
        mechanism,
        "tim",
        Secret::new("tanstaaf".into()),
        (first & 8 != 0).then_some("admin"),
        "fuzznonce",
    )
    .with_max_iterations(max);
    // Whether the client has spoken first (so the next message is the
    // server's first challenge, not an empty prompt).
    let mut spoke = false;
    if first & 4 != 0
        && let Some(ir) = x.initial_response()
    {
        assert!(ir.len() < 256, "initial response of {} octets", ir.len());
        spoke = true;
    }
    let mut ended = false;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (challenge, tail) = tail.split_at(n);
        rest = tail;
        let r = x.respond(challenge);
        if ended {
            assert!(r.is_err(), "an ended exchange answered again");
            continue;
        }
        match r {
            Ok(answer) => {
                assert!(
                    answer.len() < 256 + challenge.len(),
                    "answer of {} octets",
                    answer.len()
                );
                if mechanism == Mechanism::ScramSha256 && std::mem::replace(&mut spoke, true) {
                    let asked = challenge
                        .split(|b| *b == b',')
                        .find_map(|a| a.strip_prefix(b"i="))
                        .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok());
                    if let Some(i) = asked {
                        assert!(i <= u64::from(max), "{i} iterations taken, cap {max}");
                    }
                }
                ended = x.is_done();
            }
            Err(_) => ended = true,
        }
    }
}

/// POP3 multi-line bodies: `encode_multiline` writes CRLF lines only, no
/// early end of data, and `DataDecoder` reads back the body with its line
/// ends made CRLF — `transfer_size` octets, as LIST reports. `top` gives a
/// prefix of the message that holds the whole header section and at most
/// the lines asked for, growing with the count.
pub fn pop3_multiline(data: &[u8]) {
    use pop3_proto::response::{encode_multiline, top, transfer_size};

    let Some((&n, body)) = data.split_first() else {
        return;
    };
    let mut wire = BytesMut::new();
    encode_multiline(body, &mut wire);
    for (i, b) in wire.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR sent"),
            b'\n' => assert!(i > 0 && wire[i - 1] == b'\r', "bare LF sent"),
            _ => {}
        }
    }
    let (back, end) = decode(&[&wire], BareLineEnding::Reject, None);
    assert_eq!(
        end,
        Some((wire.len(), true)),
        "the end of data is not at the end"
    );
    assert_eq!(back, crlf_normalised(body));
    assert_eq!(
        transfer_size(body),
        back.len() as u64,
        "LIST size differs from what RETR sends"
    );

    let lines = u32::from(n % 8);
    let t = top(body, lines);
    assert!(body.starts_with(t), "TOP is not a prefix");
    let header_end = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| {
            body.windows(sep.len())
                .position(|w| w == *sep)
                .map(|i| i + sep.len())
        })
        .min();
    match header_end {
        Some(h) => {
            assert!(t.len() >= h, "TOP cut the header section");
            let extra = t[h..].iter().filter(|b| **b == b'\n').count();
            assert!(
                extra <= lines as usize,
                "{extra} body lines for TOP {lines}"
            );
        }
        None => assert_eq!(t, body, "a message without a body is all header"),
    }
    assert!(
        top(body, lines + 1).starts_with(t),
        "TOP n+1 does not extend TOP n"
    );
}

/// The `Received:` trace header built from a session whose EHLO name and
/// AUTH user, and whose trace details (reverse name, id, TLS, date,
/// recipient), all come from the input: one header field, folded only at
/// CRLF TAB, ending in CRLF; comments balanced; and, read as tokens
/// (comments, addresses, domain literals and quoted strings each one), exactly the clauses
/// `from`, `by`, `with`, then `id` and `for` when given, each with one
/// value, before one `;` and the date — nothing from the input adds or
/// hides a clause.
pub fn smtp_received(data: &[u8]) {
    use smtp_proto::server::{Config, Event, Session, TraceInfo};
    use std::sync::Arc;
    use std::time::Instant;

    let mut fields = data.split(|b| *b == 0).map(String::from_utf8_lossy);
    let mut next = || fields.next().unwrap_or_default().into_owned();
    let (helo, user, name, id, tls, date, rcpt) =
        (next(), next(), next(), next(), next(), next(), next());
    let mut config = Config::new(smtp_proto::Domain::new("mx.example.org").expect("valid"));
    config.allow_plaintext_auth = true;
    let now = Instant::now();
    let mut s = Session::new(Arc::new(config), now, [3; 16]);
    let plain = sasl::encode(format!("\0{user}\0pw").as_bytes());
    let input = format!("EHLO {helo}\r\nAUTH PLAIN {plain}\r\n");
    s.handle_input(now, input.as_bytes());
    while let Some(out) = s.poll_output() {
        if let session_core::Output::Event(Event::Auth(a)) = out {
            let _accepted = s.accept(a.token).is_ok();
        }
    }
    let path = Mailbox::parse(&rcpt)
        .ok()
        .map(|m| smtp_proto::ForwardPath::Mailbox(m.into_owned()));
    let info = TraceInfo {
        remote_ip: Some(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
        remote_name: (!name.is_empty()).then_some(&name[..]),
        id: (!id.is_empty()).then_some(&id[..]),
        tls: (!tls.is_empty()).then_some(&tls[..]),
        recipient: path.as_ref(),
        date: &date,
    };
    let h = s.received_header(&info);
    let body = h.strip_suffix("\r\n").expect("ends in CRLF");
    let unfolded = body.replace("\r\n\t", " ");
    assert!(
        !unfolded.contains(['\r', '\n']),
        "a line break that is not a fold: {h:?}"
    );
    let rest = unfolded.strip_prefix("Received: ").expect("the field name");
    // Tokens: whitespace-separated, with (comments), <addresses>,
    // [domain literals] and "quoted strings" each one token (RFC 5322);
    // `;` ends the clauses.
    let mut tokens: Vec<String> = Vec::new();
    let (mut depth, mut angle, mut quoted, mut escaped) = (0i32, false, false, false);
    let mut square = false;
    let mut cur = String::new();
    let mut date_at = None;
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted {
            match c {
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if square {
            square = c != ']';
        } else if depth > 0 {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '\\' => escaped = true,
                _ => {}
            }
        } else {
            match c {
                '"' => quoted = true,
                '[' => square = true,
                '(' => depth += 1,
                ')' => panic!("an unbalanced ) in {h:?}"),
                '<' => angle = true,
                '>' => angle = false,
                ';' if !angle => {
                    date_at = Some(i + 1);
                    break;
                }
                ' ' if !angle => {
                    if !cur.is_empty() {
                        tokens.push(std::mem::take(&mut cur));
                    }
                    continue;
                }
                _ => {}
            }
        }
        cur.push(c);
    }
    assert!(
        depth == 0 && !quoted && !angle && !square,
        "unbalanced: {h:?}"
    );
    if !cur.is_empty() {
        tokens.push(cur);
    }
    assert!(date_at.is_some(), "no ; before the date: {h:?}");
    let words: Vec<&str> = tokens
        .iter()
        .map(String::as_str)
        .filter(|t| !t.starts_with('('))
        .collect();
    let mut want = vec!["from", "*", "by", "mx.example.org", "with", "*"];
    if info.id.is_some_and(|i| {
        i.chars()
            .any(|c| c.is_ascii_graphic() && !"();\\\"<>[]".contains(c))
    }) {
        want.extend(["id", "*"]);
    }
    if path.is_some() {
        want.extend(["for", "*"]);
    }
    assert_eq!(words.len(), want.len(), "clauses {words:?} in {h:?}");
    for (w, k) in words.iter().zip(&want) {
        assert!(*k == "*" || w == k, "clauses {words:?} in {h:?}");
    }
}
