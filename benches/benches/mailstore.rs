//! Durable deliveries, flag changes and listings of the disk store.
//! Run: `cargo bench -p mailkit-benches --bench mailstore`.
//! The store lives in a temporary folder on the same disk as the target
//! folder (set TMPDIR to measure another disk).

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailstore::{FlagOp, Flags, MailboxName, Store, SystemFlag, UserName};

fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n",
        );
    }
    m.truncate(size);
    m
}

fn deliveries(c: &mut Criterion) {
    let mut g = c.benchmark_group("mailstore/deliver_4KiB_fsync");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    let msg = Arc::new(message(4096));
    for writers in [1usize, 10] {
        g.bench_function(BenchmarkId::new("writers", writers), |b| {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let store = Store::open(dir.path()).unwrap();
            let users: Vec<UserName> = (0..writers)
                .map(|i| UserName::new(&format!("u{i}")).unwrap())
                .collect();
            for u in &users {
                store.create_user(u).unwrap();
            }
            b.iter_custom(|iters| {
                let per = iters.div_ceil(writers as u64);
                let start = Instant::now();
                let handles: Vec<_> = users
                    .iter()
                    .map(|u| {
                        let (store, u, msg) = (store.clone(), u.clone(), msg.clone());
                        std::thread::spawn(move || {
                            for _ in 0..per {
                                store.deliver(&u, &msg, 1_700_000_000).unwrap();
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
                // Normalise to `iters` deliveries.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per * writers as u64) as f64)
            })
        });
    }
    // The floor under any durable delivery here: write a 4 KiB file and
    // fsync it, nothing else, from the same number of threads.
    for writers in [1usize, 10] {
        g.bench_function(BenchmarkId::new("raw_write_fsync_only", writers), |b| {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
            b.iter_custom(|iters| {
                let per = iters.div_ceil(writers as u64);
                let start = Instant::now();
                let handles: Vec<_> = (0..writers)
                    .map(|_| {
                        let (path, msg, counter) =
                            (dir.path().to_owned(), msg.clone(), counter.clone());
                        std::thread::spawn(move || {
                            use std::io::Write;
                            for _ in 0..per {
                                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                let mut f =
                                    std::fs::File::create_new(path.join(n.to_string())).unwrap();
                                f.write_all(&msg).unwrap();
                                f.sync_all().unwrap();
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per * writers as u64) as f64)
            })
        });
    }
    g.finish();
}

fn flags_and_listing(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let u = UserName::new("big").unwrap();
    store.create_user(&u).unwrap();
    let inbox = MailboxName::inbox();
    // 100,000 messages, delivered by 16 writers (group commit).
    let msg = Arc::new(message(256));
    let start = Instant::now();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (store, u, msg) = (store.clone(), u.clone(), msg.clone());
            std::thread::spawn(move || {
                for _ in 0..6250 {
                    store.deliver(&u, &msg, 1_700_000_000).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    eprintln!(
        "setup: 100,000 deliveries by 16 writers in {:?}",
        start.elapsed()
    );

    let mut g = c.benchmark_group("mailstore");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000));
    let seen = Flags::new().with(SystemFlag::Seen);
    let mut round = 0u32;
    g.bench_function("flag_changes_batch_of_1000", |b| {
        b.iter(|| {
            // Add, then remove, on the same 1,000 messages: every call
            // changes every one of them.
            let base = (round / 2 % 100) * 1000 + 1;
            let op = if round.is_multiple_of(2) {
                FlagOp::Add
            } else {
                FlagOp::Remove
            };
            round += 1;
            let uids: Vec<u32> = (base..base + 1000).collect();
            let r = store
                .store_flags(&u, &inbox, &uids, op, &seen, None)
                .unwrap();
            assert_eq!(r.changed.len(), 1000);
            black_box(r.changed.len())
        })
    });
    g.throughput(Throughput::Elements(1));
    let flagged = Flags::new().with(SystemFlag::Flagged);
    let mut n = 0u32;
    g.bench_function("flag_change_single", |b| {
        b.iter(|| {
            // Toggle one message per call: each call is a real change.
            let op = if n.is_multiple_of(2) {
                FlagOp::Add
            } else {
                FlagOp::Remove
            };
            let uid = n / 2 % 100_000 + 1;
            n += 1;
            let r = store
                .store_flags(&u, &inbox, &[uid], op, &flagged, None)
                .unwrap();
            assert_eq!(r.changed.len(), 1);
        })
    });
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("list_100k", |b| {
        b.iter(|| black_box(store.messages(&u, &inbox).unwrap().len()))
    });
    drop(store);
    g.bench_function("reopen_100k", |b| {
        b.iter(|| black_box(Store::open(dir.path()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, deliveries, flags_and_listing);
criterion_main!(benches);
