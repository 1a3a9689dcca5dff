//! Full SMTP transactions through the server session alone (no sockets).
//! Run: `cargo bench -p mailkit-benches --bench session`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::Domain;
use smtp_proto::server::{Config, Event, Output, Session};

/// Drains the session, accepting every decision; returns bytes written.
fn drain(s: &mut Session) -> usize {
    let mut written = 0;
    while let Some(out) = s.poll_output() {
        match out {
            Output::Transmit(b) => written += b.len(),
            Output::Event(Event::Mail(m)) => s.accept(m.token).unwrap(),
            Output::Event(Event::Rcpt(r)) => s.accept(r.token).unwrap(),
            Output::Event(Event::Message(m)) => s.accept(m.token).unwrap(),
            Output::Event(Event::MessageData(d)) => {
                black_box(d);
            }
            Output::Event(e) => panic!("unexpected {e:?}"),
            Output::StartTls | Output::Compress | Output::Closed => {}
        }
    }
    written
}

fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n".to_vec();
    while b.len() < size {
        b.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n",
        );
    }
    b.extend_from_slice(b".\r\n");
    b
}

fn transactions(c: &mut Criterion) {
    let config = Arc::new(Config::new(Domain::new("mx.example.org").unwrap()));
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    for (name, size) in [("1KiB", 1024usize), ("4KiB", 4096)] {
        let envelope = b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n";
        let body = body(size);
        // Pipelined: envelope in one read, body in one read.
        g.bench_function(BenchmarkId::new("transaction_pipelined", name), |b| {
            let now = Instant::now();
            let mut s = Session::new(config.clone(), now, [0; 16]);
            s.handle_input(now, b"EHLO client.example\r\n");
            drain(&mut s);
            b.iter(|| {
                s.handle_input(now, black_box(envelope));
                drain(&mut s);
                s.handle_input(now, black_box(&body));
                drain(&mut s)
            })
        });
        // Lock-step: one command per read, as a client without PIPELINING.
        g.bench_function(BenchmarkId::new("transaction_lockstep", name), |b| {
            let now = Instant::now();
            let mut s = Session::new(config.clone(), now, [0; 16]);
            s.handle_input(now, b"EHLO client.example\r\n");
            drain(&mut s);
            b.iter(|| {
                for cmd in [
                    &b"MAIL FROM:<alice@example.org>\r\n"[..],
                    b"RCPT TO:<bob@example.org>\r\n",
                    b"DATA\r\n",
                    &body,
                ] {
                    s.handle_input(now, black_box(cmd));
                    drain(&mut s);
                }
            })
        });
    }
    // A whole connection: greeting, EHLO, one transaction, QUIT.
    g.bench_function("connection_with_one_message", |b| {
        let body = body(1024);
        let now = Instant::now();
        b.iter(|| {
            let mut s = Session::new(config.clone(), now, [0; 16]);
            drain(&mut s);
            s.handle_input(now, b"EHLO client.example\r\n");
            drain(&mut s);
            s.handle_input(
                now,
                b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
            );
            drain(&mut s);
            s.handle_input(now, &body);
            s.handle_input(now, b"QUIT\r\n");
            drain(&mut s)
        })
    });
    g.finish();
}

criterion_group!(benches, transactions);
criterion_main!(benches);
