//! The store's behaviour, on both backends.

use std::io::Read;

use mailstore::*;

fn user(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

fn mbox(n: &str) -> MailboxName {
    MailboxName::new(n).unwrap()
}

fn read(store: &Store, u: &UserName, m: &MailboxName, uid: Uid) -> Vec<u8> {
    let mut v = Vec::new();
    store
        .open_message(u, m, uid)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// Runs `f` on an in-memory store and on a disk store.
fn both(f: impl Fn(&Store)) {
    f(&Store::in_memory());
    let dir = tempfile::tempdir().unwrap();
    f(&Store::open(dir.path()).unwrap());
}

#[test]
fn users_and_default_mailboxes() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        assert!(matches!(s.create_user(&a), Err(Error::UserExists(_))));
        let names: Vec<String> = s
            .mailboxes(&a)
            .unwrap()
            .iter()
            .map(|m| m.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
        );
        let sent = s.mailbox(&a, &mbox("Sent")).unwrap();
        assert_eq!(sent.special_use, Some(SpecialUse::Sent));
        assert!(sent.subscribed && sent.uid_validity != 0);
        assert_eq!(s.users(), std::slice::from_ref(&a));
        assert!(matches!(
            s.deliver(&user("bob"), b"x", 0),
            Err(Error::NoSuchUser(_))
        ));
        s.delete_user(&a).unwrap();
        assert!(s.users().is_empty());
    });
}

#[test]
fn deliver_read_and_sizes() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let msg = b"Subject: x\n\nbare LF body\n";
        let d = s.deliver(&a, msg, 1_700_000_000).unwrap();
        assert_eq!(d.uid, 1);
        let d2 = s
            .deliver(&a, b"Subject: y\r\n\r\nCRLF\r\n", 1_700_000_001)
            .unwrap();
        assert_eq!(d2.uid, 2);
        let inbox = MailboxName::inbox();
        let list = s.messages(&a, &inbox).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].size, msg.len() as u64);
        assert_eq!(list[0].size_crlf, msg.len() as u64 + 3);
        assert_eq!(list[1].size, list[1].size_crlf);
        assert_ne!(list[0].unique_id, list[1].unique_id);
        assert!(list[1].modseq > list[0].modseq);
        assert_eq!(read(s, &a, &inbox, 1), msg);
        let info = s.mailbox(&a, &inbox).unwrap();
        assert_eq!((info.exists, info.unseen, info.uid_next), (2, 2, 3));
        assert_eq!(s.quota_usage(&a).unwrap(), list[0].size + list[1].size);
        // One message to several users.
        let b = user("bob");
        s.create_user(&b).unwrap();
        let r = s.deliver_many(&[a.clone(), b.clone(), user("nobody")], b"hi", 0);
        assert!(r[0].is_ok() && r[1].is_ok() && r[2].is_err());
    });
}

#[test]
fn flags_modseq_and_condstore() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        for _ in 0..3 {
            s.deliver(&a, b"m", 0).unwrap();
        }
        let seen = Flags::new().with(SystemFlag::Seen);
        let r = s
            .store_flags(&a, &inbox, &[1, 2, 99], FlagOp::Add, &seen, None)
            .unwrap();
        assert_eq!(r.changed.len(), 2);
        assert!(r.modified.is_empty());
        let m2 = r.changed[1].1;
        // No change: MODSEQ stays.
        let r = s
            .store_flags(&a, &inbox, &[1], FlagOp::Add, &seen, None)
            .unwrap();
        assert!(r.changed.is_empty());
        // CONDSTORE: message 2 changed after m2 - 1, so it is MODIFIED.
        let flagged = Flags::new()
            .with(SystemFlag::Flagged)
            .with_keyword("$Important")
            .unwrap();
        let r = s
            .store_flags(&a, &inbox, &[2, 3], FlagOp::Add, &flagged, Some(m2 - 1))
            .unwrap();
        assert_eq!(r.modified, [2]);
        assert_eq!(r.changed.len(), 1);
        let list = s.messages(&a, &inbox).unwrap();
        assert!(list[2].flags.contains(SystemFlag::Flagged));
        assert_eq!(list[2].flags.keywords().collect::<Vec<_>>(), ["$Important"]);
        let r = s
            .store_flags(&a, &inbox, &[3], FlagOp::Replace, &Flags::new(), None)
            .unwrap();
        assert_eq!(r.changed.len(), 1);
        assert_eq!(s.messages(&a, &inbox).unwrap()[2].flags, Flags::new());
        assert!(Flags::new().with_keyword("bad keyword").is_err());
        let hi = s.mailbox(&a, &inbox).unwrap().highest_modseq;
        assert!(
            s.messages(&a, &inbox)
                .unwrap()
                .iter()
                .all(|m| m.modseq <= hi)
        );
    });
}

#[test]
fn expunge_log_and_uids_never_reused() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        for _ in 0..4 {
            s.deliver(&a, b"m", 0).unwrap();
        }
        let before = s.mailbox(&a, &inbox).unwrap().highest_modseq;
        let del = Flags::new().with(SystemFlag::Deleted);
        s.store_flags(&a, &inbox, &[1, 2, 3], FlagOp::Add, &del, None)
            .unwrap();
        // UID EXPUNGE of a subset.
        assert_eq!(s.expunge(&a, &inbox, Some(&[2])).unwrap(), [2]);
        assert_eq!(s.expunge(&a, &inbox, None).unwrap(), [1, 3]);
        assert_eq!(
            s.vanished_since(&a, &inbox, before).unwrap(),
            Vanished::Uids(vec![1, 2, 3])
        );
        let d = s.deliver(&a, b"new", 0).unwrap();
        assert_eq!(d.uid, 5, "UIDs are never reused");
        let uids: Vec<Uid> = s
            .messages(&a, &inbox)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [4, 5]);
    });
}

#[test]
fn expunge_log_trimming_is_honest() {
    let s = Store::in_memory();
    let a = user("alice");
    s.create_user(&a).unwrap();
    let inbox = MailboxName::inbox();
    let start = s.mailbox(&a, &inbox).unwrap().highest_modseq;
    let del = Flags::new().with(SystemFlag::Deleted);
    for _ in 0..(EXPUNGE_LOG_LIMIT + 5) {
        let d = s.deliver(&a, b"m", 0).unwrap();
        s.store_flags(&a, &inbox, &[d.uid], FlagOp::Add, &del, None)
            .unwrap();
        s.expunge(&a, &inbox, None).unwrap();
    }
    assert_eq!(
        s.vanished_since(&a, &inbox, start).unwrap(),
        Vanished::TooOld
    );
    let recent = s.mailbox(&a, &inbox).unwrap().highest_modseq - 3;
    assert!(
        matches!(s.vanished_since(&a, &inbox, recent).unwrap(), Vanished::Uids(v) if v.len() == 1)
    );
}

#[test]
fn copy_move_rename_delete() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        let work = mbox("Work");
        s.create_mailbox(&a, &work).unwrap();
        s.create_mailbox(&a, &mbox("Work/2026")).unwrap();
        assert!(matches!(
            s.create_mailbox(&a, &work),
            Err(Error::MailboxExists(_))
        ));
        s.deliver(&a, b"one", 0).unwrap();
        s.deliver(&a, b"two", 0).unwrap();
        s.store_flags(
            &a,
            &inbox,
            &[2],
            FlagOp::Add,
            &Flags::new().with(SystemFlag::Seen),
            None,
        )
        .unwrap();
        let (validity, pairs) = s.copy_messages(&a, &inbox, &[1, 2], &work).unwrap();
        assert_eq!(validity, s.mailbox(&a, &work).unwrap().uid_validity);
        assert_eq!(pairs, [(1, 1), (2, 2)]);
        assert_eq!(read(s, &a, &work, 2), b"two");
        assert!(
            s.messages(&a, &work).unwrap()[1]
                .flags
                .contains(SystemFlag::Seen)
        );
        let (_, pairs) = s.move_messages(&a, &inbox, &[1], &work).unwrap();
        assert_eq!(pairs, [(1, 3)]);
        assert_eq!(s.messages(&a, &inbox).unwrap().len(), 1);
        assert_eq!(read(s, &a, &work, 3), b"one");
        // Rename keeps UIDVALIDITY and moves children.
        let validity = s.mailbox(&a, &work).unwrap().uid_validity;
        s.rename_mailbox(&a, &work, &mbox("Jobs")).unwrap();
        assert_eq!(s.mailbox(&a, &mbox("Jobs")).unwrap().uid_validity, validity);
        assert!(s.mailbox(&a, &mbox("Jobs/2026")).is_ok());
        assert!(matches!(s.mailbox(&a, &work), Err(Error::NoSuchMailbox(_))));
        assert_eq!(read(s, &a, &mbox("Jobs"), 3), b"one");
        // Delete, then recreate: a new UIDVALIDITY.
        s.delete_mailbox(&a, &mbox("Jobs")).unwrap();
        let again = s.create_mailbox(&a, &mbox("Jobs")).unwrap();
        assert_ne!(again.uid_validity, validity);
        assert_eq!(again.exists, 0);
        assert!(matches!(
            s.delete_mailbox(&a, &inbox),
            Err(Error::CannotDeleteInbox)
        ));
        // Renaming INBOX moves its messages and leaves it empty.
        s.rename_mailbox(&a, &inbox, &mbox("Old")).unwrap();
        assert_eq!(s.messages(&a, &inbox).unwrap().len(), 0);
        assert_eq!(s.messages(&a, &mbox("Old")).unwrap().len(), 1);
        s.subscribe(&a, &mbox("Old"), false).unwrap();
        assert!(!s.mailbox(&a, &mbox("Old")).unwrap().subscribed);
    });
}

#[test]
fn change_feed_and_pop3_snapshot() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        s.deliver(&a, b"one", 0).unwrap();
        s.deliver(&a, b"two", 0).unwrap();
        let mut feed = s.watch(&a, &inbox).unwrap();
        let snap = s.pop3_snapshot(&a).unwrap();
        assert_eq!(snap.messages.len(), 2);
        // Another session delivers and flags; the feed sees it, the
        // snapshot does not.
        let d = s.deliver(&a, b"three", 0).unwrap();
        s.store_flags(
            &a,
            &inbox,
            &[1],
            FlagOp::Add,
            &Flags::new().with(SystemFlag::Seen),
            None,
        )
        .unwrap();
        let changes = feed.drain();
        assert!(matches!(changes[0], Change::Appended { uid, .. } if uid == d.uid));
        assert!(matches!(changes[1], Change::Flags { uid: 1, .. }));
        assert_eq!(snap.messages.len(), 2);
        // POP3 deletes apply at commit; one was already gone.
        s.store_flags(
            &a,
            &inbox,
            &[2],
            FlagOp::Add,
            &Flags::new().with(SystemFlag::Deleted),
            None,
        )
        .unwrap();
        s.expunge(&a, &inbox, None).unwrap();
        assert_eq!(s.pop3_commit(&snap, &[1, 2]).unwrap(), [1]);
        let uids: Vec<Uid> = s
            .messages(&a, &inbox)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [3]);
        let changes = feed.drain();
        assert_eq!(
            changes
                .iter()
                .filter(|c| matches!(c, Change::Expunged { .. }))
                .count(),
            2
        );
    });
}

#[test]
fn concurrent_writers_and_readers() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        let mut handles = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            let a = a.clone();
            handles.push(std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        s.deliver(&a, format!("msg {t} {i}").as_bytes(), 0)
                            .unwrap()
                            .uid
                    })
                    .collect::<Vec<_>>()
            }));
        }
        // A reader and an expunger run meanwhile.
        let reader = {
            let (s, a, inbox) = (s.clone(), a.clone(), inbox.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    for m in s.messages(&a, &inbox).unwrap() {
                        // A message listed may be expunged before we read
                        // it; it is then gone, never half there.
                        match s.open_message(&a, &inbox, m.uid) {
                            Ok(mut r) => {
                                let mut v = Vec::new();
                                r.read_to_end(&mut v).unwrap();
                                assert!(v.starts_with(b"msg "));
                            }
                            Err(Error::NoSuchMessage(_)) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        };
        let mut uids: Vec<Uid> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        reader.join().unwrap();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), 200, "every delivery got its own UID");
        assert_eq!(s.messages(&a, &inbox).unwrap().len(), 200);
    });
}

#[test]
fn disk_layout_persistence_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let a = user("alice");
    let inbox = MailboxName::inbox();
    let maildir = dir.path().join("users/alice/Maildir");
    {
        let s = Store::open(dir.path()).unwrap();
        s.create_user(&a).unwrap();
        s.deliver(&a, b"one", 100).unwrap();
        s.deliver(&a, b"two", 200).unwrap();
        s.store_flags(
            &a,
            &inbox,
            &[2],
            FlagOp::Add,
            &Flags::new()
                .with(SystemFlag::Seen)
                .with(SystemFlag::Flagged),
            None,
        )
        .unwrap();
        assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 1);
        let cur: Vec<String> = std::fs::read_dir(maildir.join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(cur.len(), 1);
        assert!(cur[0].ends_with(":2,FS"), "{cur:?}");
        assert!(maildir.join(".Sent/cur").is_dir());
    }
    // Another tool drops a message into new/ and leaves junk in tmp/.
    std::fs::write(
        maildir.join("new/1700000000.external.host"),
        b"from procmail",
    )
    .unwrap();
    std::fs::write(maildir.join("tmp/half-written"), b"partial").unwrap();
    let s = Store::open(dir.path()).unwrap();
    let list = s.messages(&a, &inbox).unwrap();
    assert_eq!(list.len(), 3);
    assert!(list[1].flags.contains(SystemFlag::Flagged));
    assert_eq!(list[2].uid, 3);
    assert_eq!(list[2].internal_date, 1_700_000_000);
    assert_eq!(read(&s, &a, &inbox, 3), b"from procmail");
    assert_eq!(std::fs::read_dir(maildir.join("tmp")).unwrap().count(), 0);
    // A file removed behind our back is expunged on reopen.
    let path = maildir.join("new").join(&list[0].unique_id);
    std::fs::remove_file(path).unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    let uids: Vec<Uid> = s
        .messages(&a, &inbox)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [2, 3]);
    assert_eq!(s.deliver(&a, b"four", 0).unwrap().uid, 4);
}

#[test]
fn one_session_expunges_while_another_reads() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        for i in 0..20 {
            s.deliver(&a, format!("message {i}").as_bytes(), 0).unwrap();
        }
        // Session A selects the mailbox: its view and its change feed.
        let view = s.messages(&a, &inbox).unwrap();
        let mut feed = s.watch(&a, &inbox).unwrap();
        // Session B deletes every other message and expunges.
        let odd: Vec<Uid> = view.iter().map(|m| m.uid).filter(|u| u % 2 == 1).collect();
        let del = Flags::new().with(SystemFlag::Deleted);
        s.store_flags(&a, &inbox, &odd, FlagOp::Add, &del, None)
            .unwrap();
        assert_eq!(s.expunge(&a, &inbox, None).unwrap(), odd);
        // A reads through its old view: each message is whole or gone.
        for m in &view {
            match s.open_message(&a, &inbox, m.uid) {
                Ok(mut r) => {
                    let mut v = String::new();
                    r.read_to_string(&mut v).unwrap();
                    assert_eq!(v, format!("message {}", m.uid - 1));
                    assert!(m.uid % 2 == 0);
                }
                Err(Error::NoSuchMessage(u)) => assert!(u % 2 == 1),
                Err(e) => panic!("{e}"),
            }
        }
        // A's feed tells it exactly what vanished, in order.
        let gone: Vec<Uid> = feed
            .drain()
            .into_iter()
            .filter_map(|c| match c {
                Change::Expunged { uid, .. } => Some(uid),
                _ => None,
            })
            .collect();
        assert_eq!(gone, odd);
    });
}

/// A message received in pieces goes to every user with one commit, the
/// spool file goes away, and an abandoned one leaves nothing.
#[test]
fn incoming_messages_stream_to_every_recipient() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let users: Vec<UserName> = ["u1", "u2", "u3"]
        .iter()
        .map(|n| UserName::new(n).unwrap())
        .collect();
    for u in &users {
        store.create_user(u).unwrap();
    }
    let mut m = store.incoming(1_700_000_000).unwrap();
    let chunk = vec![b'x'; 1000];
    for _ in 0..100 {
        m.write(&chunk).unwrap();
        m.write(b"\r\n").unwrap();
    }
    assert_eq!(m.size(), 100_200);
    let mut whole = Vec::new();
    m.reader(b"P: 1\r\n")
        .unwrap()
        .read_to_end(&mut whole)
        .unwrap();
    assert_eq!(whole.len(), 100_206);
    let results = m.deliver(b"P: 1\r\n", &users);
    assert_eq!(results.len(), 3);
    for (u, r) in users.iter().zip(&results) {
        let d = r.as_ref().unwrap();
        let mut body = Vec::new();
        store
            .open_message(u, &MailboxName::inbox(), d.uid)
            .unwrap()
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(body, whole);
    }
    let spool = dir.path().join("spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    // An unknown user fails alone.
    let mut m = store.incoming(1).unwrap();
    m.write(b"Subject: x\r\n\r\n").unwrap();
    let nobody = UserName::new("nobody").unwrap();
    let r = m.deliver(b"", &[users[0].clone(), nobody]);
    assert!(r[0].is_ok() && r[1].is_err());
    // Abandoned: nothing stays.
    let mut m = store.incoming(2).unwrap();
    m.write(b"half a message").unwrap();
    drop(m);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert_eq!(store.clear_spool().unwrap(), 0);
}

#[test]
fn subscriptions_outlive_their_mailboxes_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = user("alice");
    {
        let s = Store::open(dir.path()).unwrap();
        s.create_user(&a).unwrap();
        // CREATE does not subscribe.
        assert!(!s.create_mailbox(&a, &mbox("Lists")).unwrap().subscribed);
        s.subscribe(&a, &mbox("Lists"), true).unwrap();
        // A name that is no mailbox can be subscribed (RFC 3501 §6.3.6).
        s.subscribe(&a, &mbox("Later/Maybe"), true).unwrap();
        s.delete_mailbox(&a, &mbox("Lists")).unwrap();
        assert_eq!(
            s.orphan_subscriptions(&a).unwrap(),
            vec![mbox("Later/Maybe"), mbox("Lists")]
        );
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.orphan_subscriptions(&a).unwrap().len(), 2);
    // Creating the name again makes it a subscribed mailbox.
    assert!(s.create_mailbox(&a, &mbox("Lists")).unwrap().subscribed);
    assert_eq!(
        s.orphan_subscriptions(&a).unwrap(),
        vec![mbox("Later/Maybe")]
    );
    s.subscribe(&a, &mbox("Later/Maybe"), false).unwrap();
    assert!(s.orphan_subscriptions(&a).unwrap().is_empty());
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert!(s.orphan_subscriptions(&a).unwrap().is_empty());
    assert!(s.mailbox(&a, &mbox("Lists")).unwrap().subscribed);
}

#[test]
fn summaries_are_kept_with_their_message_and_go_with_it() {
    both(|s| {
        let a = user("alice");
        s.create_user(&a).unwrap();
        let inbox = MailboxName::inbox();
        let d = s
            .append(
                &a,
                &inbox,
                &mut &b"Subject: x\r\n\r\nbody\r\n"[..],
                0,
                &Flags::new(),
            )
            .unwrap();
        assert_eq!(s.summary(&a, &inbox, d.uid).unwrap(), None);
        s.set_summary(&a, &inbox, d.uid, b"derived once").unwrap();
        assert_eq!(
            s.summary(&a, &inbox, d.uid).unwrap().as_deref(),
            Some(&b"derived once"[..])
        );
        assert!(matches!(
            s.summary(&a, &inbox, d.uid + 1),
            Err(Error::NoSuchMessage(_))
        ));
        s.store_flags(
            &a,
            &inbox,
            &[d.uid],
            FlagOp::Add,
            &Flags::new().with(SystemFlag::Deleted),
            None,
        )
        .unwrap();
        s.expunge(&a, &inbox, None).unwrap();
        assert!(matches!(
            s.summary(&a, &inbox, d.uid),
            Err(Error::NoSuchMessage(_))
        ));
    });
}

#[test]
fn waiting_summaries_ride_along_with_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let a = user("alice");
    let inbox = MailboxName::inbox();
    let uid = {
        let s = Store::open(dir.path()).unwrap();
        s.create_user(&a).unwrap();
        let d = s
            .append(
                &a,
                &inbox,
                &mut &b"Subject: x\r\n\r\nbody\r\n"[..],
                0,
                &Flags::new(),
            )
            .unwrap();
        s.set_summary(&a, &inbox, d.uid, b"kept").unwrap();
        // Held in memory until an index commit carries it.
        assert_eq!(
            s.summary(&a, &inbox, d.uid).unwrap().as_deref(),
            Some(&b"kept"[..])
        );
        s.append(
            &a,
            &inbox,
            &mut &b"Subject: y\r\n\r\nbody\r\n"[..],
            0,
            &Flags::new(),
        )
        .unwrap();
        d.uid
    };
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(
        s.summary(&a, &inbox, uid).unwrap().as_deref(),
        Some(&b"kept"[..])
    );
}
