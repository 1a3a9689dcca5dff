//! Where mail lives: users, mailboxes and messages for mailkit servers.
//!
//! Each user has mailboxes (a hierarchy with `/` as separator, `INBOX`
//! special and case-insensitive, SPECIAL-USE roles, subscriptions). Each
//! mailbox has a UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ; each message a UID
//! that is never reused, an internal date, its size as stored and with CRLF
//! line ends, flags and keywords, a MODSEQ, and a unique id usable as a POP3
//! UIDL. The store knows nothing of SMTP, POP3 or IMAP.
//!
//! On disk ([`Store::open`]) messages are Maildir files
//! (`users/NAME/Maildir/{tmp,new,cur}`, Maildir++ sub-folders, `:2,` flag
//! letters) that mutt or Dovecot can read, and the metadata lives in a
//! durable redb index (`index.redb`). A delivery is acknowledged only after:
//! a unique file created in `tmp/` (O_EXCL), written, fsynced, renamed into
//! `new/`, the directory fsynced, and the index committed — concurrent
//! deliveries share the directory fsync and the index commit (group
//! commit). Every file-system call goes through the [`Fs`] trait, so tests
//! crash the store between any two and check that nothing acknowledged is
//! lost and nothing half-written is visible. In memory
//! ([`Store::in_memory`]) the same logic runs without a disk.
//!
//! Other sessions learn of changes through [`Store::watch`] (new messages,
//! flag changes, expunges); a POP3 session works on a [`Pop3Snapshot`] whose
//! deletions apply only at [`Store::pop3_commit`]; IMAP QRESYNC asks
//! [`Store::vanished_since`], which answers honestly when its log was
//! trimmed.
//!
//! The outgoing queue ([`Store::queue_add`], [`Store::queue_due`],
//! [`Store::queue_record`]) keeps relayed mail with per-recipient state,
//! a Postfix-like retry schedule ([`queue::RetryPolicy`]), leases for
//! runners and RFC 3464 bounces; it survives restarts like the mailboxes.
//!
//! # Example: deliver a message and read it back
//!
//! ```
//! use std::io::Read;
//! use mailstore::{Flags, FlagOp, MailboxName, Store, SystemFlag, UserName};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let bob = UserName::new("bob").unwrap();
//! store.create_user(&bob).unwrap();
//!
//! // Durable when it returns: only now may an SMTP server answer 250.
//! let delivery = store.deliver(&bob, b"Subject: lunch?\r\n\r\nNoon?\r\n", 1_795_910_400).unwrap();
//!
//! let inbox = MailboxName::inbox();
//! let mut text = String::new();
//! store.open_message(&bob, &inbox, delivery.uid).unwrap().read_to_string(&mut text).unwrap();
//! assert_eq!(text, "Subject: lunch?\r\n\r\nNoon?\r\n");
//!
//! // Mark it seen: a new MODSEQ, and the Maildir file becomes `cur/…:2,S`.
//! let seen = Flags::new().with(SystemFlag::Seen);
//! let r = store.store_flags(&bob, &inbox, &[delivery.uid], FlagOp::Add, &seen, None).unwrap();
//! assert_eq!(r.changed.len(), 1);
//! assert_eq!(store.mailbox(&bob, &inbox).unwrap().unseen, 0);
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod fs;
mod index;
mod model;
mod names;
pub mod queue;
mod store;
mod types;

pub use fs::{Fs, FsFile, MemFs, RealFs};
pub use names::{
    MAX_MAILBOX_LEVEL, MAX_MAILBOX_NAME, MAX_USER_NAME, MailboxName, SEPARATOR, UserName,
};
pub use store::{ChangeFeed, Delivery, EXPUNGE_LOG_LIMIT, Incoming, Store};
pub use types::{
    Change, FlagOp, Flags, MAX_KEYWORD, MailboxInfo, MessageMeta, ModSeq, Pop3Snapshot, SpecialUse,
    StoreResult, SystemFlag, Uid, Vanished,
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user, mailbox or keyword name was refused.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// No such user.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// The user exists already.
    #[error("user exists: {0}")]
    UserExists(String),
    /// No such mailbox.
    #[error("no such mailbox: {0}")]
    NoSuchMailbox(String),
    /// The mailbox exists already.
    #[error("mailbox exists: {0}")]
    MailboxExists(String),
    /// No message with that UID.
    #[error("no such message: UID {0}")]
    NoSuchMessage(Uid),
    /// The inbox cannot be deleted.
    #[error("the inbox cannot be deleted")]
    CannotDeleteInbox,
    /// The mailbox was recreated since the snapshot was taken.
    #[error("UIDVALIDITY changed")]
    UidValidityChanged,
    /// A file-system call failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The index failed.
    #[error("index error: {0}")]
    Index(String),
    /// An earlier index write failed; reopen the store.
    #[error("store needs to be reopened after an index failure")]
    Poisoned,
}

/// Entry points for the fuzz targets into the store's private decoders, on
/// under `cfg(fuzzing)` (cargo-fuzz) or the `fuzzing` feature (the corpus
/// replay on stable). Not part of the API: it may change at any time.
#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
// A broken property is reported the way fuzzers see it: a panic.
#[allow(clippy::expect_used, clippy::panic)]
pub mod fuzzing {
    use crate::{MailboxName, UserName, index, queue};

    /// Any bytes as an index mailbox record, an index message record and a
    /// queue record: never a panic; what decodes encodes to bytes that
    /// decode and encode to the same bytes again (one stable form).
    pub fn records(b: &[u8]) {
        if let Ok(m) = index::decode_mailbox(7, b) {
            let once = index::encode_mailbox(&m);
            let again = index::decode_mailbox(7, &once).expect("an encoded mailbox decodes");
            assert_eq!(index::encode_mailbox(&again), once, "mailbox record");
        }
        if let Ok(m) = index::decode_msg(9, b) {
            let once = index::encode_msg(&m);
            let again = index::decode_msg(9, &once).expect("an encoded message decodes");
            assert_eq!(index::encode_msg(&again), once, "message record");
        }
        if let Ok(m) = queue::decode(3, b) {
            let once = queue::encode(&m);
            let again = queue::decode(3, &once).expect("an encoded queue record decodes");
            assert_eq!(queue::encode(&again), once, "queue record");
        }
    }

    /// A text as a user name and a mailbox name: what is accepted is
    /// accepted again unchanged, stays within the length limits and never
    /// names a path outside its folder; a mailbox's Maildir++ folder reads
    /// back to the same mailbox, and the text read as a folder name, when it
    /// is one, is that mailbox's folder.
    pub fn names(text: &str) {
        if let Ok(u) = UserName::new(text) {
            assert_eq!(UserName::new(u.as_str()).ok().as_ref(), Some(&u));
            assert!(!u.as_str().is_empty() && u.as_str().len() <= crate::names::MAX_USER_NAME);
            assert!(!u.as_str().starts_with('.') && !u.as_str().contains('/'));
        }
        if let Ok(n) = MailboxName::new(text) {
            assert_eq!(MailboxName::new(n.as_str()).ok().as_ref(), Some(&n));
            let folder = n.folder();
            // `/` is the only separator where the store runs (Unix).
            assert!(!folder.contains('/') && folder != "." && folder != "..");
            assert!(folder.is_empty() == n.is_inbox());
            assert_eq!(
                MailboxName::from_folder(&folder).as_ref(),
                Some(&n),
                "{folder:?}"
            );
        }
        if let Some(n) = MailboxName::from_folder(text) {
            assert_eq!(n.folder(), text);
        }
    }
}
