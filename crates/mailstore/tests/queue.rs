//! The outgoing queue: schedule, leases, bounces, restarts.

use std::io::Read;

use mailstore::queue::*;
use mailstore::*;

const T0: i64 = 1_795_910_400;
const MSG: &[u8] =
    b"From: alice@example.org\r\nTo: bob@remote.example\r\nSubject: hello\r\n\r\nsecret body\r\n";

fn env(from: &str, rcpts: &[&str]) -> Envelope {
    Envelope {
        from: from.to_owned(),
        recipients: rcpts
            .iter()
            .map(|r| ((*r).to_owned(), Notify::default(), None))
            .collect(),
        envid: Some("ENV123".into()),
        ret: None,
    }
}

fn body(store: &Store, id: QueueId) -> String {
    let mut s = String::new();
    store
        .queue_open(id)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn dates() {
    assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    assert_eq!(
        rfc5322_date(1_764_145_452),
        "Wed, 26 Nov 2025 08:24:12 +0000"
    );
    assert_eq!(rfc5322_date(T0), "Sun, 29 Nov 2026 00:00:00 +0000");
}

#[test]
fn retry_schedule_like_postfix() {
    let p = RetryPolicy::default();
    let delays: Vec<i64> = (1..=7).map(|n| p.delay(n)).collect();
    assert_eq!(delays, [300, 600, 1200, 2400, 4000, 4000, 4000]);
}

#[test]
fn leases_retries_and_expiry_bounce() {
    let s = Store::in_memory();
    let id = s
        .queue_add(
            env("alice@example.org", &["bob@remote.example"]),
            &mut &MSG[..],
            T0,
        )
        .unwrap();
    let due = s.queue_due(T0, 600, 10);
    assert_eq!(
        due,
        [Lease {
            id,
            recipients: vec![0],
            until: T0 + 600
        }]
    );
    // Leased: a second runner gets nothing.
    assert!(s.queue_due(T0 + 1, 600, 10).is_empty());
    // (No delay reports here: see one_delay_report_after_the_warning_time.)
    let policy = RetryPolicy {
        delay_warning: 0,
        ..RetryPolicy::default()
    };
    let b = s
        .queue_record(
            id,
            &[(0, Attempt::Transient("421 4.3.2 try later".into()))],
            T0,
            &policy,
            "mx.example.org",
        )
        .unwrap();
    assert_eq!(b, None);
    let m = s.queue_get(id).unwrap();
    assert_eq!(m.recipients[0].state, RecipientState::Deferred);
    assert_eq!(m.recipients[0].next_attempt, T0 + 300);
    assert!(s.queue_due(T0 + 299, 600, 10).is_empty());
    assert_eq!(s.queue_due(T0 + 300, 600, 10).len(), 1);
    // Keep failing until five days have passed.
    let mut now = T0 + 300;
    let mut bounce = None;
    for _ in 0..200 {
        bounce = s
            .queue_record(
                id,
                &[(0, Attempt::Transient("451 4.4.1 no answer".into()))],
                now,
                &policy,
                "mx.example.org",
            )
            .unwrap();
        if bounce.is_some() {
            break;
        }
        now = s.queue_get(id).unwrap().recipients[0].next_attempt;
    }
    let bounce = bounce.expect("expired into a bounce");
    assert!(now - T0 <= 5 * 24 * 3600 && now - T0 > 5 * 24 * 3600 - 4000);
    assert!(
        s.queue_get(id).is_none(),
        "finished messages leave the queue"
    );
    let dsn = s.queue_get(bounce).unwrap();
    assert_eq!(dsn.from, "", "bounces come from the null path");
    assert_eq!(dsn.recipients[0].address, "alice@example.org");
    let text = body(&s, bounce);
    assert!(text.contains("Status: 4.4.7\r\n"), "{text}");
    // A bounce that bounces makes no further bounce.
    let r = s
        .queue_record(
            bounce,
            &[(0, Attempt::Permanent("550 5.1.1 no such user".into()))],
            now,
            &policy,
            "mx.example.org",
        )
        .unwrap();
    assert_eq!(r, None);
    assert!(s.queue_list().is_empty());
}

#[test]
fn permanent_failure_bounce_is_rfc3464() {
    let s = Store::in_memory();
    let mut e = env(
        "alice@example.org",
        &[
            "bob@remote.example",
            "carol@remote.example",
            "dan@remote.example",
        ],
    );
    e.recipients[1].2 = Some("carol@original.example".into());
    e.recipients[2].1 = Notify {
        success: false,
        failure: false,
        delay: false,
    };
    let id = s.queue_add(e, &mut &MSG[..], T0).unwrap();
    let policy = RetryPolicy::default();
    let bounce = s
        .queue_record(
            id,
            &[
                (0, Attempt::Delivered("250 2.0.0 ok".into())),
                (
                    1,
                    Attempt::Permanent("550 5.1.1 <carol@remote.example>: no such user".into()),
                ),
                (2, Attempt::Permanent("550 5.7.1 refused".into())),
            ],
            T0 + 60,
            &policy,
            "mx.example.org",
        )
        .unwrap()
        .expect("a bounce for carol");
    let text = body(&s, bounce);
    for want in [
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Content-Type: message/delivery-status",
        "Reporting-MTA: dns; mx.example.org",
        "Original-Envelope-Id: ENV123",
        "Arrival-Date: Sun, 29 Nov 2026 00:00:00 +0000",
        "Final-Recipient: rfc822; carol@remote.example",
        "Original-Recipient: rfc822; carol@original.example",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 <carol@remote.example>: no such user",
        "Content-Type: text/rfc822-headers",
        "Subject: hello",
        "Auto-Submitted: auto-replied",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        !text.contains("dan@remote.example"),
        "NOTIFY=NEVER gets no bounce"
    );
    assert!(
        !text.contains("bob@remote.example>"),
        "delivered recipients are not reported"
    );
    assert!(
        !text.contains("secret body"),
        "RET=HDRS returns headers only"
    );
    assert!(s.queue_get(id).is_none());
}

#[test]
fn queue_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let s = Store::open(dir.path()).unwrap();
        let id = s
            .queue_add(
                env("alice@example.org", &["bob@remote.example"]),
                &mut &MSG[..],
                T0,
            )
            .unwrap();
        s.queue_record(
            id,
            &[(0, Attempt::Transient("421 later".into()))],
            T0,
            &RetryPolicy::default(),
            "mx",
        )
        .unwrap();
        id
    };
    // Junk a crashed queue_add could leave behind.
    std::fs::write(dir.path().join("queue/tmp/99.partial"), b"half").unwrap();
    std::fs::write(dir.path().join("queue/98"), b"never committed").unwrap();
    let s = Store::open(dir.path()).unwrap();
    let m = s.queue_get(id).unwrap();
    assert_eq!(m.recipients[0].state, RecipientState::Deferred);
    assert_eq!(m.recipients[0].attempts, 1);
    assert_eq!(body(&s, id), String::from_utf8_lossy(MSG));
    assert_eq!(s.queue_list().len(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("queue/tmp"))
            .unwrap()
            .count(),
        0
    );
    assert!(!dir.path().join("queue/98").exists());
    let next = s
        .queue_add(env("a@b.c", &["d@e.f"]), &mut &b"x"[..], T0)
        .unwrap();
    assert!(next > id, "queue ids are not reused");
}

/// NOTIFY=DELAY: one "delayed" report once the warning time has passed,
/// never a second; the record keeps that it was sent.
#[test]
fn one_delay_report_after_the_warning_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let id = s
        .queue_add(
            Envelope {
                from: "alice@example.org".into(),
                recipients: vec![("bob@example.net".into(), Notify::default(), None)],
                envid: None,
                ret: None,
            },
            &mut &b"Subject: late\r\n\r\nhi\r\n"[..],
            T0,
        )
        .unwrap();
    let policy = RetryPolicy {
        delay_warning: 3600,
        ..RetryPolicy::default()
    };
    let fail = |now| {
        s.queue_record(
            id,
            &[(0, Attempt::Transient("451 4.4.1 no answer".into()))],
            now,
            &policy,
            "mx",
        )
        .unwrap()
    };
    fail(T0 + 10);
    assert_eq!(s.queue_list().len(), 1, "no report before the warning time");
    fail(T0 + 3600);
    fail(T0 + 7200);
    let reports: Vec<_> = s
        .queue_list()
        .into_iter()
        .filter(|m| m.from.is_empty())
        .collect();
    assert_eq!(reports.len(), 1, "one delay report");
    assert!(body(&s, reports[0].id).contains("Action: delayed"));
    assert!(s.queue_get(id).unwrap().recipients[0].delay_notified);
    // Kept across a restart.
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert!(s.queue_get(id).unwrap().recipients[0].delay_notified);
}
