//! Crash tests: the store runs over a file system that dies at step N (no
//! call after it happens), for every N; the store is then reopened on the
//! real disk and checked: everything acknowledged is there and whole,
//! nothing half-written is visible, UIDs and MODSEQs only go forward.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mailstore::*;

#[derive(Debug, Default)]
struct CrashFs {
    armed: AtomicBool,
    crashed: AtomicBool,
    steps: AtomicUsize,
    crash_at: usize,
    log: Mutex<Vec<String>>,
}

impl CrashFs {
    fn new(crash_at: usize) -> Arc<CrashFs> {
        Arc::new(CrashFs {
            crash_at,
            ..CrashFs::default()
        })
    }

    fn step(&self, what: &str) -> io::Result<()> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(io::Error::other("crashed"));
        }
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.lock().unwrap().push(what.to_owned());
        if n == self.crash_at {
            self.crashed.store(true, Ordering::SeqCst);
            return Err(io::Error::other("crash"));
        }
        Ok(())
    }
}

struct CrashFile {
    inner: Box<dyn FsFile>,
    fs: Arc<CrashFs>,
}

impl Write for CrashFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs.step("write")?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FsFile for CrashFile {
    fn sync_all(&mut self) -> io::Result<()> {
        self.fs.step("fsync file")?;
        self.inner.sync_all()
    }
}

/// Wraps the real file system with the crash switch.
#[derive(Debug)]
struct Crashing(Arc<CrashFs>);

impl Fs for Crashing {
    fn create_dir_all(&self, p: &Path) -> io::Result<()> {
        self.0.step("mkdir")?;
        RealFs.create_dir_all(p)
    }
    fn create_new(&self, p: &Path) -> io::Result<Box<dyn FsFile>> {
        self.0.step("create")?;
        Ok(Box::new(CrashFile {
            inner: RealFs.create_new(p)?,
            fs: self.0.clone(),
        }))
    }
    fn rename(&self, a: &Path, b: &Path) -> io::Result<()> {
        self.0.step("rename")?;
        RealFs.rename(a, b)
    }
    fn sync_dir(&self, p: &Path) -> io::Result<()> {
        self.0.step("fsync dir")?;
        RealFs.sync_dir(p)
    }
    fn remove_file(&self, p: &Path) -> io::Result<()> {
        self.0.step("unlink")?;
        RealFs.remove_file(p)
    }
    fn remove_dir_all(&self, p: &Path) -> io::Result<()> {
        self.0.step("rmdir")?;
        RealFs.remove_dir_all(p)
    }
    fn open(&self, p: &Path) -> io::Result<Box<dyn Read + Send>> {
        RealFs.open(p)
    }
    fn read_dir(&self, p: &Path) -> io::Result<Vec<String>> {
        RealFs.read_dir(p)
    }
    fn barrier(&self, what: &str) -> io::Result<()> {
        self.0.step(what)
    }
}

fn alice() -> UserName {
    UserName::new("alice").unwrap()
}

/// Checks the reopened store: `must` bodies present, `may` bodies maybe,
/// nothing else; every listed message whole; tmp/ empty.
fn check(
    dir: &Path,
    must: &[&[u8]],
    may: &[&[u8]],
    min_uid_next: Uid,
    min_modseq: ModSeq,
) -> Store {
    let s = Store::open(dir).unwrap();
    let inbox = MailboxName::inbox();
    let list = s.messages(&alice(), &inbox).unwrap();
    let mut bodies = Vec::new();
    for m in &list {
        let mut v = Vec::new();
        s.open_message(&alice(), &inbox, m.uid)
            .unwrap()
            .read_to_end(&mut v)
            .unwrap();
        assert_eq!(v.len() as u64, m.size);
        assert!(
            must.contains(&v.as_slice()) || may.contains(&v.as_slice()),
            "unexpected body {v:?}"
        );
        bodies.push(v);
    }
    for b in must {
        assert!(
            bodies.iter().any(|v| v == b),
            "acknowledged message lost: {b:?}"
        );
    }
    let tmp = dir.join("users/alice/Maildir/tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "half-written file left"
    );
    let info = s.mailbox(&alice(), &inbox).unwrap();
    assert!(info.uid_next >= min_uid_next);
    assert!(info.highest_modseq >= min_modseq);
    assert!(
        list.iter()
            .all(|m| m.uid < info.uid_next && m.modseq <= info.highest_modseq)
    );
    s
}

fn setup(dir: &Path) -> (Uid, ModSeq) {
    let s = Store::open(dir).unwrap();
    s.create_user(&alice()).unwrap();
    s.deliver(&alice(), b"first", 1).unwrap();
    s.deliver(&alice(), b"second", 2).unwrap();
    let info = s.mailbox(&alice(), &MailboxName::inbox()).unwrap();
    (info.uid_next, info.highest_modseq)
}

/// Runs `op` with a crash at every step until one run completes.
fn crash_everywhere(
    op: impl Fn(&Store) -> Result<(), Error>,
    verify: impl Fn(&Path, bool, Uid, ModSeq),
) {
    let mut n = 1;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let (uid_next, modseq) = setup(dir.path());
        let fs = CrashFs::new(n);
        let store = Store::open_with_fs(dir.path(), Arc::new(Crashing(fs.clone()))).unwrap();
        fs.armed.store(true, Ordering::SeqCst);
        let ok = op(&store).is_ok();
        drop(store);
        let crashed = fs.crashed.load(Ordering::SeqCst);
        verify(dir.path(), ok, uid_next, modseq);
        if !crashed {
            assert!(ok, "no crash, yet the operation failed");
            assert!(
                n > 3,
                "the operation took only {n} steps: {:?}",
                fs.log.lock().unwrap()
            );
            break;
        }
        assert!(!ok, "crashed at step {n} but reported success");
        n += 1;
    }
}

#[test]
fn crash_during_delivery() {
    crash_everywhere(
        |s| s.deliver(&alice(), b"third", 3).map(|_| ()),
        |dir, ok, uid_next, modseq| {
            let third: &[u8] = b"third";
            let s = if ok {
                check(
                    dir,
                    &[b"first", b"second", third],
                    &[],
                    uid_next + 1,
                    modseq + 1,
                )
            } else {
                // Not acknowledged: it may or may not be there (a retry
                // could duplicate it, never lose it), but never half.
                check(dir, &[b"first", b"second"], &[third], uid_next, modseq)
            };
            // The store goes on working, UIDs forward.
            let d = s.deliver(&alice(), b"fourth", 4).unwrap();
            assert!(d.uid >= uid_next);
        },
    );
}

#[test]
fn crash_during_flag_change() {
    crash_everywhere(
        |s| {
            let f = Flags::new()
                .with(SystemFlag::Seen)
                .with(SystemFlag::Flagged);
            s.store_flags(
                &alice(),
                &MailboxName::inbox(),
                &[1, 2],
                FlagOp::Add,
                &f,
                None,
            )
            .map(|_| ())
        },
        |dir, ok, uid_next, modseq| {
            let s = check(dir, &[b"first", b"second"], &[], uid_next, modseq);
            let list = s.messages(&alice(), &MailboxName::inbox()).unwrap();
            if ok {
                assert!(list.iter().all(|m| m.flags.contains(SystemFlag::Flagged)));
                assert!(
                    s.mailbox(&alice(), &MailboxName::inbox())
                        .unwrap()
                        .highest_modseq
                        >= modseq + 2
                );
            }
        },
    );
}

#[test]
fn crash_during_expunge() {
    crash_everywhere(
        |s| {
            let inbox = MailboxName::inbox();
            // Flag first without crashing would need a separate run; the
            // crash may hit either step.
            s.store_flags(
                &alice(),
                &inbox,
                &[1],
                FlagOp::Add,
                &Flags::new().with(SystemFlag::Deleted),
                None,
            )?;
            s.expunge(&alice(), &inbox, None).map(|_| ())
        },
        |dir, ok, uid_next, modseq| {
            let first: &[u8] = b"first";
            let s = if ok {
                check(dir, &[b"second"], &[], uid_next, modseq)
            } else {
                check(dir, &[b"second"], &[first], uid_next, modseq)
            };
            if ok {
                let uids: Vec<Uid> = s
                    .messages(&alice(), &MailboxName::inbox())
                    .unwrap()
                    .iter()
                    .map(|m| m.uid)
                    .collect();
                assert_eq!(uids, [2]);
            }
        },
    );
}

#[test]
fn crash_during_move() {
    crash_everywhere(
        |s| {
            s.move_messages(
                &alice(),
                &MailboxName::inbox(),
                &[1],
                &MailboxName::new("Archive").unwrap(),
            )
            .map(|_| ())
        },
        |dir, ok, uid_next, modseq| {
            let first: &[u8] = b"first";
            let s = check(dir, &[b"second"], &[first], uid_next, modseq);
            let archive = s
                .messages(&alice(), &MailboxName::new("Archive").unwrap())
                .unwrap();
            let inbox = s.messages(&alice(), &MailboxName::inbox()).unwrap();
            // The message is in exactly one place.
            let copies = archive.len() + inbox.iter().filter(|m| m.size == 5).count();
            assert_eq!(copies, 1, "moved message duplicated or lost (ok={ok})");
        },
    );
}
