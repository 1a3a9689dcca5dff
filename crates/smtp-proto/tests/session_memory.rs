//! Memory of an idle server session: its size plus what it keeps on the
//! heap after the greeting has been written (target: under 2 KiB).

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use smtp_proto::Domain;
use smtp_proto::server::{Config, Session};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes held per idle session: `size_of` plus live heap after the caller
/// has taken and dropped the greeting, averaged over many sessions.
fn idle_bytes(config: &Arc<Config>, after: &[u8]) -> (usize, isize) {
    const N: usize = 1000;
    let region = Region::new(GLOBAL);
    // The Vec's own storage is the N * size_of subtracted below.
    let mut sessions = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = Session::new(config.clone(), Instant::now(), [i as u8; 16]);
        if !after.is_empty() {
            s.handle_input(Instant::now(), after);
        }
        while let Some(out) = s.poll_output() {
            drop(out);
        }
        sessions.push(s);
    }
    let change = region.change();
    let live = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let per_session_heap = (live - (N * std::mem::size_of::<Session>()) as isize) / N as isize;
    drop(sessions);
    (std::mem::size_of::<Session>(), per_session_heap)
}

#[test]
fn idle_session_under_2_kib() {
    let config = Arc::new(Config::new(Domain::new("mx.example.org").unwrap()));
    let (size, heap) = idle_bytes(&config, b"");
    println!("idle session after greeting: size_of {size} B + heap {heap} B");
    assert!(size as isize + heap < 2048, "{size} + {heap}");
    let (size, heap) = idle_bytes(&config, b"EHLO client.example\r\n");
    println!("idle session after EHLO: size_of {size} B + heap {heap} B");
    assert!(size as isize + heap < 2048, "{size} + {heap}");
}
