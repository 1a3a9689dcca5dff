//! The bodies of the fuzz targets, kept in a library so that the cargo-fuzz
//! binaries (nightly) and the corpus replay test (stable, in CI) run the same
//! code.
//!
//! Each target checks properties, not only the absence of panics: what
//! parses re-encodes to something that parses to the same value, and
//! feeding the input in pieces gives the same result as feeding it whole.

#![forbid(unsafe_code)]

use bytes::BytesMut;
use smtp_proto::{
    BareLineEnding, BodyProgress, Command, CommandError, CommandOptions, DataDecoder, EhloResponse,
    LineEnding, LineFramer, Parsed, Reply, ReplyLimits,
};

/// Splits `data` into pieces whose lengths come from `seed`.
fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let step = usize::from(seed % 17) + 1;
    data.chunks(step).collect()
}

fn frame(chunks: &[&[u8]], opts: &CommandOptions) -> Vec<Result<Command<'static>, CommandError>> {
    let mut framer = LineFramer::new(opts.max_line, opts.line_ending);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            let (used, line) = framer.push(rest);
            rest = &rest[used..];
            if let Some(line) = line {
                out.push(line.and_then(|l| Command::parse_line(l, opts).map(Command::into_owned)));
            }
            assert!(framer.buffered() <= opts.max_line, "framer over its limit");
        }
    }
    out
}

/// Command framing and parsing: split invariance and re-encode round trip.
pub fn smtp_command(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let opts = CommandOptions {
        max_line: 64 + usize::from(seed & 0x3f) * 8,
        line_ending: if seed & 0x40 != 0 {
            LineEnding::AllowBareLf
        } else {
            LineEnding::Strict
        },
        smtputf8: seed & 0x80 != 0,
    };
    let whole = frame(&[data], &opts);
    let split = frame(&pieces(data, seed), &opts);
    assert_eq!(whole, split, "split changed the result");
    let wide = CommandOptions {
        max_line: usize::MAX,
        ..opts
    };
    for cmd in whole.into_iter().flatten() {
        let bytes = cmd.to_bytes();
        match Command::parse_with(&bytes, &wide) {
            Ok(Parsed::Complete { value, consumed }) => {
                assert_eq!(value, cmd, "re-encoded command parses differently");
                assert_eq!(consumed, bytes.len());
            }
            other => panic!("re-encoded command does not parse: {other:?}"),
        }
    }
}

/// Reply and EHLO parsing: re-encode round trip.
pub fn smtp_reply(data: &[u8]) {
    let limits = ReplyLimits {
        line: 1024,
        lines: 64,
    };
    let Ok(Parsed::Complete { value, consumed }) = Reply::parse_with(data, &limits) else {
        return;
    };
    assert!(consumed <= data.len());
    let bytes = value.to_bytes();
    let wide = ReplyLimits {
        line: usize::MAX,
        lines: usize::MAX,
    };
    let again = Reply::parse_with(&bytes, &wide).map(Parsed::complete);
    assert_eq!(
        again,
        Ok(Some(value.clone())),
        "re-encoded reply parses differently"
    );
    if let Ok(ehlo) = EhloResponse::from_reply(&value) {
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

/// DATA body decoding: split invariance, bounded output, strict end.
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
}
