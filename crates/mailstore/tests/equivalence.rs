//! proptest: random sequences of operations on the disk backend and the
//! memory backend give the same observable state — also after the disk
//! store is closed and reopened.

use std::io::Read;

use mailstore::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Deliver(Vec<u8>),
    Append(u8, Vec<u8>, u8),
    Flags(u8, Vec<Uid>, u8, u8),
    Expunge(u8, Option<Vec<Uid>>),
    Copy(u8, Vec<Uid>, u8),
    Move(u8, Vec<Uid>, u8),
    Create(u8),
    Delete(u8),
    Rename(u8, u8),
    Subscribe(u8, bool),
}

const NAMES: [&str; 5] = ["INBOX", "Sent", "Work", "Work/Sub", "Other"];

fn name(i: u8) -> MailboxName {
    MailboxName::new(NAMES[usize::from(i) % NAMES.len()]).unwrap()
}

fn flags(bits: u8) -> Flags {
    let mut f = Flags::new();
    for (i, s) in SystemFlag::ALL.into_iter().enumerate() {
        if bits & (1 << i) != 0 {
            f.insert(s);
        }
    }
    if bits & 0x20 != 0 {
        f.insert_keyword("$Label1").unwrap();
    }
    f
}

fn op() -> impl Strategy<Value = Op> {
    let uids = proptest::collection::vec(1u32..12, 0..4);
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Deliver),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20), any::<u8>())
            .prop_map(|(m, b, f)| Op::Append(m, b, f)),
        3 => (any::<u8>(), uids.clone(), 0u8..3, any::<u8>()).prop_map(|(m, u, o, f)| Op::Flags(m, u, o, f)),
        2 => (any::<u8>(), proptest::option::of(uids.clone())).prop_map(|(m, u)| Op::Expunge(m, u)),
        1 => (any::<u8>(), uids.clone(), any::<u8>()).prop_map(|(a, u, b)| Op::Copy(a, u, b)),
        1 => (any::<u8>(), uids, any::<u8>()).prop_map(|(a, u, b)| Op::Move(a, u, b)),
        1 => any::<u8>().prop_map(Op::Create),
        1 => any::<u8>().prop_map(Op::Delete),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::Subscribe(a, b)),
    ]
}

/// Applies an op; the outcome (success or the error's kind) is part of
/// what must agree.
fn apply(s: &Store, op: &Op) -> String {
    let u = UserName::new("alice").unwrap();
    let r: Result<String, Error> = match op {
        Op::Deliver(b) => s.deliver(&u, b, 7).map(|d| format!("{}", d.uid)),
        Op::Append(m, b, f) => s
            .append(&u, &name(*m), &mut &b[..], 9, &flags(*f))
            .map(|d| format!("{}", d.uid)),
        Op::Flags(m, uids, o, f) => {
            let op = [FlagOp::Add, FlagOp::Remove, FlagOp::Replace][usize::from(*o)];
            s.store_flags(&u, &name(*m), uids, op, &flags(*f), None)
                .map(|r| format!("{:?}", r.changed))
        }
        Op::Expunge(m, uids) => s
            .expunge(&u, &name(*m), uids.as_deref())
            .map(|v| format!("{v:?}")),
        Op::Copy(a, uids, b) => s
            .copy_messages(&u, &name(*a), uids, &name(*b))
            .map(|(_, p)| format!("{p:?}")),
        Op::Move(a, uids, b) => s
            .move_messages(&u, &name(*a), uids, &name(*b))
            .map(|(_, p)| format!("{p:?}")),
        Op::Create(a) => s.create_mailbox(&u, &name(*a)).map(|i| i.name.to_string()),
        Op::Delete(a) => s.delete_mailbox(&u, &name(*a)).map(|_| String::new()),
        Op::Rename(a, b) => s
            .rename_mailbox(&u, &name(*a), &name(*b))
            .map(|_| String::new()),
        Op::Subscribe(a, on) => s.subscribe(&u, &name(*a), *on).map(|_| String::new()),
    };
    match r {
        Ok(s) => format!("ok {s}"),
        Err(e) => format!("err {:?}", std::mem::discriminant(&e)),
    }
}

/// Everything a client could observe, minus file names and UIDVALIDITY
/// values (which only need to be consistent, not equal).
fn observe(s: &Store) -> Vec<String> {
    let u = UserName::new("alice").unwrap();
    let mut out = Vec::new();
    for mb in s.mailboxes(&u).unwrap() {
        out.push(format!(
            "{} next={} hms={} exists={} unseen={} sub={} role={:?}",
            mb.name,
            mb.uid_next,
            mb.highest_modseq,
            mb.exists,
            mb.unseen,
            mb.subscribed,
            mb.special_use
        ));
        for m in s.messages(&u, &mb.name).unwrap() {
            let mut body = Vec::new();
            s.open_message(&u, &mb.name, m.uid)
                .unwrap()
                .read_to_end(&mut body)
                .unwrap();
            out.push(format!(
                "  {} ms={} date={} size={}/{} flags={:?} body={:?}",
                m.uid, m.modseq, m.internal_date, m.size, m.size_crlf, m.flags, body
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn disk_and_memory_agree(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let disk = Store::open(dir.path()).unwrap();
        let mem = Store::in_memory();
        let u = UserName::new("alice").unwrap();
        disk.create_user(&u).unwrap();
        mem.create_user(&u).unwrap();
        for op in &ops {
            prop_assert_eq!(apply(&disk, op), apply(&mem, op), "{:?}", op);
        }
        let state = observe(&mem);
        prop_assert_eq!(&observe(&disk), &state);
        drop(disk);
        let reopened = Store::open(dir.path()).unwrap();
        prop_assert_eq!(&observe(&reopened), &state);
    }
}
