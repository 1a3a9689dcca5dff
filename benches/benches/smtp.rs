//! smtp-proto against stalwart's `smtp-proto` 0.2.5 (crates.io), on the
//! same inputs. Run: `cargo bench -p mailkit-benches --bench smtp`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailkit_benches::*;
use smtp_proto::{BodyProgress, Command, DataDecoder, EhloResponse, Parsed, Reply};

fn ours_parse_all(mut input: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Parsed::Complete { value, consumed }) = Command::parse(input) {
        black_box(&value);
        input = &input[consumed..];
        n += 1;
    }
    n
}

fn peer_parse_all(input: &[u8]) -> usize {
    let mut it = input.iter();
    let mut n = 0;
    while it.len() > 0 {
        match stalwart_smtp::Request::parse(&mut it) {
            Ok(r) => {
                black_box(&r);
                n += 1;
            }
            Err(e) => panic!("peer failed: {e:?}"),
        }
    }
    n
}

fn commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("command");
    let burst = pipelined_envelope();
    assert_eq!(ours_parse_all(&burst), 12);
    assert_eq!(peer_parse_all(&burst), 12);
    g.throughput(Throughput::Bytes(burst.len() as u64));
    g.bench_function(BenchmarkId::new("pipelined_envelope", "mailkit"), |b| {
        b.iter(|| ours_parse_all(black_box(&burst)))
    });
    g.bench_function(BenchmarkId::new("pipelined_envelope", "stalwart"), |b| {
        b.iter(|| peer_parse_all(black_box(&burst)))
    });
    for (name, line) in commands_with_parameters() {
        assert_eq!(ours_parse_all(line), 1, "{name}");
        assert_eq!(peer_parse_all(line), 1, "{name}");
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(BenchmarkId::new(name, "mailkit"), |b| {
            b.iter(|| ours_parse_all(black_box(line)))
        });
        g.bench_function(BenchmarkId::new(name, "stalwart"), |b| {
            b.iter(|| peer_parse_all(black_box(line)))
        });
    }
    g.finish();
}

fn ours_data(body: &[u8], chunk: usize, out: &mut BytesMut) -> usize {
    let mut dec = DataDecoder::new();
    let mut total = 0;
    for piece in body.chunks(chunk) {
        let done = matches!(dec.decode(piece, out), BodyProgress::Finished { .. });
        total += out.len();
        out.clear();
        if done {
            return total;
        }
    }
    panic!("no end of data");
}

fn peer_data(body: &[u8], chunk: usize, out: &mut Vec<u8>) -> usize {
    let mut rx = stalwart_smtp::request::receiver::DataReceiver::new();
    let mut total = 0;
    for piece in body.chunks(chunk) {
        let done = rx.ingest(&mut piece.iter(), out);
        total += out.len();
        out.clear();
        if done {
            return total;
        }
    }
    panic!("no end of data");
}

fn memchr_scan(body: &[u8], chunk: usize) -> usize {
    body.chunks(chunk)
        .map(|piece| memchr::memchr_iter(b'\n', piece).count())
        .sum()
}

fn data(c: &mut Criterion) {
    let sizes: &[(&str, usize)] = &[("4KiB", 4 << 10), ("1MiB", 1 << 20), ("25MiB", 25 << 20)];
    for &(size_name, size) in sizes {
        let mut g = c.benchmark_group(format!("data/{size_name}"));
        if size > 1 << 20 {
            g.sample_size(10).measurement_time(Duration::from_secs(4));
        }
        for stuffed in [0u32, 10] {
            let body = data_body(size, stuffed);
            g.throughput(Throughput::Bytes(body.len() as u64));
            for chunk in [64usize, 4096, 65536] {
                let label = format!("{stuffed}pct/{chunk}B");
                let mut out = BytesMut::with_capacity(chunk);
                let mut vout = Vec::with_capacity(chunk);
                let ours = ours_data(&body, chunk, &mut out);
                let peer = peer_data(&body, chunk, &mut vout);
                // Same decoded length (peer keeps the final CRLF the same way).
                assert_eq!(ours, peer, "decoded lengths differ");
                g.bench_function(BenchmarkId::new("mailkit", &label), |b| {
                    b.iter(|| ours_data(black_box(&body), chunk, &mut out))
                });
                g.bench_function(BenchmarkId::new("stalwart", &label), |b| {
                    b.iter(|| peer_data(black_box(&body), chunk, &mut vout))
                });
                g.bench_function(BenchmarkId::new("memchr", &label), |b| {
                    b.iter(|| memchr_scan(black_box(&body), chunk))
                });
            }
        }
        g.finish();
    }
}

fn replies(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    let multi = multiline_reply();
    g.throughput(Throughput::Bytes(multi.len() as u64));
    g.bench_function(BenchmarkId::new("multiline", "mailkit"), |b| {
        b.iter(|| Reply::parse(black_box(&multi)).unwrap())
    });
    g.bench_function(BenchmarkId::new("multiline", "stalwart"), |b| {
        b.iter(|| {
            let mut rx = stalwart_smtp::response::parser::ResponseReceiver::default();
            rx.parse(&mut black_box(&multi).iter()).unwrap()
        })
    });
    let ehlo = ehlo_reply();
    g.throughput(Throughput::Bytes(ehlo.len() as u64));
    g.bench_function(BenchmarkId::new("ehlo", "mailkit"), |b| {
        b.iter(|| {
            let r = Reply::parse(black_box(&ehlo)).unwrap().complete().unwrap();
            EhloResponse::from_reply(&r).unwrap().capabilities.len()
        })
    });
    g.bench_function(BenchmarkId::new("ehlo", "stalwart"), |b| {
        b.iter(|| {
            stalwart_smtp::EhloResponse::<String>::parse(&mut black_box(&ehlo).iter()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, commands, data, replies);
criterion_main!(benches);
