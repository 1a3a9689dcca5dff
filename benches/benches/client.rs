//! SMTP client transactions: our client session against our server session
//! (paired, no sockets), and the client alone against scripted replies.
//! Run: `cargo bench -p mailkit-benches --bench client`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::client::{self, Envelope, Event as CEvent};
use smtp_proto::server::{self, Event as SEvent};
use smtp_proto::{Domain, ForwardPath, Host, MailParameters, Mailbox, ReversePath};

fn envelope() -> Envelope {
    Envelope {
        from: ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap().into_owned()),
        params: MailParameters::default(),
        recipients: vec![
            ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap().into_owned()).into(),
        ],
    }
}

fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n".to_vec();
    while b.len() < size {
        b.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n",
        );
    }
    b
}

/// Moves bytes between the two sessions until both are quiet; returns the
/// client's events.
fn pump(c: &mut client::Session, s: &mut server::Session, now: Instant, events: &mut Vec<CEvent>) {
    loop {
        let mut moved = false;
        while let Some(o) = c.poll_output() {
            match o {
                client::Output::Transmit(b) => {
                    s.handle_input(now, &b);
                    moved = true;
                }
                client::Output::Event(e) => events.push(e),
                _ => {}
            }
        }
        while let Some(o) = s.poll_output() {
            match o {
                server::Output::Transmit(b) => {
                    c.handle_input(now, &b);
                    moved = true;
                }
                server::Output::Event(SEvent::Mail(m)) => s.accept(m.token).unwrap(),
                server::Output::Event(SEvent::Rcpt(r)) => s.accept(r.token).unwrap(),
                server::Output::Event(SEvent::Message(m)) => s.accept(m.token).unwrap(),
                server::Output::Event(SEvent::MessageData(d)) => {
                    black_box(d);
                }
                server::Output::Event(e) => panic!("unexpected {e:?}"),
                _ => {}
            }
        }
        if !moved {
            return;
        }
    }
}

fn paired(c: &mut Criterion) {
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    for (name, chunking) in [("bdat", true), ("data", false)] {
        let body = body(1024);
        g.bench_function(BenchmarkId::new("paired_transaction_1KiB", name), |b| {
            let now = Instant::now();
            let mut sc = server::Config::new(Domain::new("mx.example.net").unwrap());
            sc.extensions.starttls = false;
            let mut s = server::Session::new(Arc::new(sc), now, [0; 16]);
            let mut cc = client::Config::new(Host::Domain(Domain::new("client.example").unwrap()));
            cc.chunking = chunking;
            let mut c = client::Session::new(Arc::new(cc), now);
            let mut events = Vec::new();
            pump(&mut c, &mut s, now, &mut events);
            assert_eq!(events, [CEvent::Ready]);
            b.iter(|| {
                events.clear();
                c.send(now, envelope()).unwrap();
                pump(&mut c, &mut s, now, &mut events);
                c.send_body(now, black_box(&body)).unwrap();
                c.finish_body(now).unwrap();
                pump(&mut c, &mut s, now, &mut events);
                assert!(matches!(events.last(), Some(CEvent::Completed(_))));
            })
        });
    }
    // The client alone: what its side of a transaction costs.
    g.bench_function("client_only_transaction_1KiB", |b| {
        let now = Instant::now();
        let cc = client::Config::new(Host::Domain(Domain::new("client.example").unwrap()));
        let mut c = client::Session::new(Arc::new(cc), now);
        c.handle_input(now, b"220 mx ESMTP\r\n");
        c.handle_input(
            now,
            b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n",
        );
        while c.poll_output().is_some() {}
        let body = body(1024);
        b.iter(|| {
            c.send(now, envelope()).unwrap();
            while c.poll_output().is_some() {}
            c.handle_input(now, black_box(b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n"));
            while c.poll_output().is_some() {}
            c.send_body(now, &body).unwrap();
            c.finish_body(now).unwrap();
            while c.poll_output().is_some() {}
            c.handle_input(now, black_box(b"250 2.0.0 queued\r\n"));
            let mut done = false;
            while let Some(o) = c.poll_output() {
                done |= matches!(o, client::Output::Event(CEvent::Completed(_)));
            }
            assert!(done);
        })
    });
    g.finish();
}

criterion_group!(benches, paired);
criterion_main!(benches);
