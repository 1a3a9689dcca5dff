//! imap-proto against imap-codec 2.0.0-alpha.10 (crates.io) on the same
//! inputs. Run: `cargo bench -p mailkit-benches --bench imap`.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_proto::{Command, Frame, Framer, FramerLimits, Response};

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut append = b"a4 APPEND INBOX (\\Seen) {65536+}\r\n".to_vec();
    let mut msg = b"From: a@example.org\r\nSubject: bench\r\n\r\n".to_vec();
    while msg.len() < 65536 {
        msg.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n",
        );
    }
    msg.truncate(65536);
    append.extend_from_slice(&msg);
    append.extend_from_slice(b"\r\n");
    vec![
        (
            "uid_fetch_header_fields",
            b"a1 UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])\r\n".to_vec(),
        ),
        (
            "nested_uid_search",
            b"a2 UID SEARCH OR (FROM \"alice@example.org\" SINCE 1-Feb-2024) (NOT SEEN LARGER 10000) NOT (KEYWORD $Junk OR DELETED DRAFT)\r\n".to_vec(),
        ),
        ("append_64KiB_literal_plus", append),
    ]
}

fn ours(input: &[u8]) -> usize {
    let mut f = Framer::new(FramerLimits::default());
    let mut rest = input;
    let mut n = 0;
    while !rest.is_empty() {
        let (used, frame) = f.push(rest);
        rest = &rest[used..];
        if let Some(Frame::Command(c)) = frame {
            n += usize::from(Command::parse(black_box(&c), false).is_ok());
        }
    }
    n
}

fn commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("imap_command");
    for (name, input) in inputs() {
        assert_eq!(ours(&input), 1, "{name}: ours");
        assert!(
            imap_codec::CommandCodec::default().decode(&input).is_ok(),
            "{name}: imap-codec"
        );
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(BenchmarkId::new(name, "mailkit"), |b| {
            b.iter(|| ours(black_box(&input)))
        });
        g.bench_function(BenchmarkId::new(name, "imap-codec"), |b| {
            b.iter(|| {
                imap_codec::CommandCodec::default()
                    .decode(black_box(&input))
                    .map(|(r, _)| r.len())
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("imap_response");
    let fetch_literal = b"* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded) RFC822.SIZE 4286 BODY[HEADER.FIELDS (DATE FROM SUBJECT)] {72}\r\nDate: Wed, 17 Jul 1996 02:23:25 -0700\r\nFrom: a@b.example\r\nSubject: x\r\n\r\n)\r\n".to_vec();
    // RFC 3501 §8: the FETCH FULL answer, ENVELOPE and BODY structure.
    let fetch_full = b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n".to_vec();
    for (name, input) in [
        ("fetch_with_literal", fetch_literal),
        ("rfc3501_fetch_full", fetch_full),
    ] {
        assert!(Response::parse(&input, false).is_ok(), "{name}: ours");
        assert!(
            imap_codec::ResponseCodec::default().decode(&input).is_ok(),
            "{name}: imap-codec"
        );
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(BenchmarkId::new(name, "mailkit"), |b| {
            b.iter(|| Response::parse(black_box(&input), false).is_ok())
        });
        g.bench_function(BenchmarkId::new(name, "imap-codec"), |b| {
            b.iter(|| {
                imap_codec::ResponseCodec::default()
                    .decode(black_box(&input))
                    .is_ok()
            })
        });
        // The other direction: encode the decoded value back to bytes.
        let ours_value = Response::parse(&input, false).expect("parsed above");
        let (_, peer_value) = imap_codec::ResponseCodec::default()
            .decode(&input)
            .expect("decoded above");
        let encode_name = format!("{name}_encode");
        g.bench_function(BenchmarkId::new(&encode_name, "mailkit"), |b| {
            b.iter(|| black_box(&ours_value).encode(false).len())
        });
        g.bench_function(BenchmarkId::new(&encode_name, "imap-codec"), |b| {
            b.iter(|| {
                imap_codec::ResponseCodec::default()
                    .encode(black_box(&peer_value))
                    .dump()
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
