//! DATA / BDAT body codecs: end of data, smuggling variants, policies, limits.

use bytes::BytesMut;
use smtp_proto::*;

/// Decoded bytes, and where the body ended with its verdict.
type Outcome = (Vec<u8>, Option<(usize, Result<(), BodyError>)>);

/// Feeds `input` in pieces of `step` bytes; returns (output, consumed, result).
fn decode_in_steps(mut dec: DataDecoder, input: &[u8], step: usize) -> Outcome {
    let mut out = BytesMut::new();
    let mut pos = 0;
    while pos < input.len() {
        let end = (pos + step).min(input.len());
        match dec.decode(&input[pos..end], &mut out) {
            BodyProgress::NeedMore => pos = end,
            BodyProgress::Finished { consumed, result } => {
                return (out.to_vec(), Some((pos + consumed, result)));
            }
        }
    }
    (out.to_vec(), None)
}

fn decode(input: &[u8]) -> Outcome {
    decode_in_steps(DataDecoder::new(), input, input.len().max(1))
}

#[test]
fn empty_message_right_after_354() {
    let (out, end) = decode(b".\r\nQUIT\r\n");
    assert_eq!(out, b"");
    assert_eq!(end, Some((3, Ok(()))));
}

#[test]
fn simple_message_and_unstuffing() {
    let input = b"From: a\r\n\r\n..leading dot\r\n...\r\nx.\r\n.\r\n";
    let (out, end) = decode(input);
    assert_eq!(out, b"From: a\r\n\r\n.leading dot\r\n..\r\nx.\r\n");
    assert_eq!(end, Some((input.len(), Ok(()))));
}

#[test]
fn rfc5321_appendix_d_message() {
    let input = b"Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n";
    let (out, end) = decode(input);
    assert_eq!(out, b"Blah blah blah...\r\n..etc. etc. etc.\r\n");
    assert_eq!(end, Some((input.len(), Ok(()))));
}

/// Each variant a lenient receiver (or a downstream one) might take for the
/// end of data. None may end the message; the real end comes later.
const SMUGGLE_VARIANTS: &[&[u8]] = &[
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\r\n.\r\r\n",
    b"\r.\n",
    b"\n.\r",
    b"\r\n.\r",
    b"\r\n.\r\0\n",
    b"x.\r\n",
    b"\r\n..\r\n",
];

fn smuggle_input(variant: &[u8]) -> Vec<u8> {
    let mut v = b"Subject: x\r\n\r\nbody".to_vec();
    v.extend_from_slice(variant);
    v.extend_from_slice(
        b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@y.example>\r\nDATA\r\nforged\r\n",
    );
    v.extend_from_slice(b".\r\n");
    v.extend_from_slice(b"QUIT\r\n");
    v
}

#[test]
fn smuggling_variants_never_end_the_message() {
    for variant in SMUGGLE_VARIANTS {
        let input = smuggle_input(variant);
        let real_end = input.len() - b"QUIT\r\n".len();
        for step in [1, 2, 3, 7, input.len()] {
            // Reject policy: the message is refused, read to its real end.
            let (out, end) = decode_in_steps(DataDecoder::new(), &input, step);
            let (consumed, result) = end.expect("real end found");
            assert_eq!(consumed, real_end, "{variant:?} step {step}");
            let has_bare = variant.windows(1).enumerate().any(|(i, w)| {
                (w[0] == b'\n' && (i == 0 || variant[i - 1] != b'\r'))
                    || (w[0] == b'\r' && variant.get(i + 1) != Some(&b'\n'))
            });
            if has_bare {
                assert_eq!(result, Err(BodyError::BareLineEnding), "{variant:?}");
            } else {
                assert_eq!(result, Ok(()), "{variant:?}");
                assert!(out.windows(6).any(|w| w == b"forged"));
            }
            // Normalise policy: accepted, and the would-be commands are
            // still message content, followed by the real end.
            let dec = DataDecoder::with_policy(BareLineEnding::Normalize, None);
            let (out, end) = decode_in_steps(dec, &input, step);
            assert_eq!(end, Some((real_end, Ok(()))), "{variant:?} step {step}");
            assert!(out.windows(10).any(|w| w == b"MAIL FROM:"), "{variant:?}");
            assert!(out.ends_with(b"forged\r\n"), "{variant:?}");
            assert!(!out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        }
    }
}

#[test]
fn normalise_turns_bare_endings_into_crlf() {
    let dec = DataDecoder::with_policy(BareLineEnding::Normalize, None);
    let (out, end) = decode_in_steps(dec, b"a\nb\rc\r\r\nd\r\n.\r\n", 100);
    assert_eq!(out, b"a\r\nb\r\nc\r\n\r\nd\r\n");
    assert!(matches!(end, Some((_, Ok(())))));
}

#[test]
fn split_invariance_exhaustive_two_pieces() {
    let input = b"a\r\n..b\r\n.\r\r\n\n.x\r\n\r\n.\r\nafter";
    for policy in [BareLineEnding::Reject, BareLineEnding::Normalize] {
        let whole = decode_in_steps(DataDecoder::with_policy(policy, None), input, input.len());
        for cut in 0..input.len() {
            let mut dec = DataDecoder::with_policy(policy, None);
            let mut out = BytesMut::new();
            let got = match dec.decode(&input[..cut], &mut out) {
                BodyProgress::Finished { consumed, result } => Some((consumed, result)),
                BodyProgress::NeedMore => match dec.decode(&input[cut..], &mut out) {
                    BodyProgress::Finished { consumed, result } => Some((cut + consumed, result)),
                    BodyProgress::NeedMore => None,
                },
            };
            assert_eq!((out.to_vec(), got), whole, "{policy:?} cut {cut}");
        }
    }
}

#[test]
fn size_limit_reads_to_the_end() {
    let mut input = b"x".repeat(100);
    input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    let dec = DataDecoder::with_policy(BareLineEnding::Reject, Some(50));
    let (out, end) = decode_in_steps(dec, &input, 9);
    assert!(out.len() <= 50);
    assert_eq!(
        end,
        Some((input.len() - 6, Err(BodyError::TooLarge { limit: 50 })))
    );
    assert_eq!(
        replies::body_error(&BodyError::TooLarge { limit: 50 })
            .code()
            .get(),
        552
    );
    assert_eq!(
        replies::body_error(&BodyError::BareLineEnding).code().get(),
        550
    );
    // Exactly at the limit is fine.
    let dec = DataDecoder::with_policy(BareLineEnding::Reject, Some(102));
    let (_, end) = decode_in_steps(dec, &input, 9);
    assert_eq!(end, Some((input.len() - 6, Ok(()))));
}

#[test]
fn large_body_streams_in_bounded_memory() {
    // 64 MiB through a 64 KiB window: the output buffer never holds more
    // than one input chunk.
    let chunk = {
        let mut c = Vec::with_capacity(65536);
        while c.len() < 65536 - 80 {
            c.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n");
        }
        c
    };
    let mut dec = DataDecoder::new();
    let mut out = BytesMut::with_capacity(65536);
    let mut total = 0u64;
    for _ in 0..1024 {
        assert_eq!(dec.decode(&chunk, &mut out), BodyProgress::NeedMore);
        assert!(out.len() <= chunk.len());
        total += out.split().len() as u64;
    }
    assert!(matches!(
        dec.decode(b".\r\n", &mut out),
        BodyProgress::Finished { result: Ok(()), .. }
    ));
    assert_eq!(total, 1024 * chunk.len() as u64);
    assert_eq!(dec.size(), total);
}

#[test]
fn bdat_exact_counts() {
    let mut dec = BdatDecoder::new(5);
    let mut out = BytesMut::new();
    assert_eq!(dec.decode(b"ab", &mut out), BodyProgress::NeedMore);
    assert_eq!(dec.remaining(), 3);
    assert_eq!(
        dec.decode(b"c\r\n.\r\nBDAT", &mut out),
        BodyProgress::Finished {
            consumed: 3,
            result: Ok(())
        }
    );
    assert_eq!(&out[..], b"abc\r\n");
    let mut dec = BdatDecoder::discarding(4);
    let mut out = BytesMut::new();
    assert!(matches!(
        dec.decode(b"abcdef", &mut out),
        BodyProgress::Finished { consumed: 4, .. }
    ));
    assert!(out.is_empty());
    // A zero-length chunk finishes at once.
    assert!(matches!(
        BdatDecoder::new(0).decode(b"", &mut out),
        BodyProgress::Finished { consumed: 0, .. }
    ));
}

#[test]
fn encoder_stuffs_and_normalises() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.b\rc\r\n", b"a\r\n..b\r\nc\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b"x\r\n", b"x\r\n.\r\n"),
    ];
    for (input, want) in cases {
        for step in 1..=input.len().max(1) {
            let mut enc = DataEncoder::new();
            let mut out = BytesMut::new();
            for piece in input.chunks(step) {
                enc.encode(piece, &mut out);
            }
            enc.finish(&mut out);
            assert_eq!(&out[..], *want, "{input:?} step {step}");
        }
    }
}

#[test]
fn encode_then_decode_gives_back_the_message() {
    let message = b"From: a\r\n\r\n.\r\n..\r\n.x\r\nend".to_vec();
    let mut enc = DataEncoder::new();
    let mut wire = BytesMut::new();
    enc.encode(&message, &mut wire);
    enc.finish(&mut wire);
    let (out, end) = decode(&wire);
    assert_eq!(end, Some((wire.len(), Ok(()))));
    let mut want = message.clone();
    want.extend_from_slice(b"\r\n");
    assert_eq!(out, want);
}
