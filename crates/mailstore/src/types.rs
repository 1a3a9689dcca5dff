//! The values the store hands out.

use std::collections::BTreeSet;

use crate::Error;
use crate::names::MailboxName;

/// A message's IMAP UID: non-zero, increasing, never reused in a mailbox
/// of one UIDVALIDITY.
pub type Uid = u32;
/// A modification sequence (RFC 7162): strictly increasing per mailbox.
pub type ModSeq = u64;

/// The IMAP system flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemFlag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
}

impl SystemFlag {
    /// Every system flag.
    pub const ALL: [SystemFlag; 5] = [
        SystemFlag::Seen,
        SystemFlag::Answered,
        SystemFlag::Flagged,
        SystemFlag::Deleted,
        SystemFlag::Draft,
    ];

    fn bit(self) -> u8 {
        match self {
            SystemFlag::Seen => 1,
            SystemFlag::Answered => 2,
            SystemFlag::Flagged => 4,
            SystemFlag::Deleted => 8,
            SystemFlag::Draft => 16,
        }
    }

    /// The Maildir info letter (`S`, `R`, `F`, `T`, `D`).
    pub fn maildir_letter(self) -> char {
        match self {
            SystemFlag::Seen => 'S',
            SystemFlag::Answered => 'R',
            SystemFlag::Flagged => 'F',
            SystemFlag::Deleted => 'T',
            SystemFlag::Draft => 'D',
        }
    }
}

/// System flags and keywords of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    system: u8,
    keywords: BTreeSet<String>,
}

/// Longest keyword in octets.
pub const MAX_KEYWORD: usize = 64;

impl Flags {
    /// No flags.
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Builder: with a system flag.
    pub fn with(mut self, f: SystemFlag) -> Flags {
        self.insert(f);
        self
    }

    /// Builder: with a keyword (checked: an IMAP atom, 1–64 octets).
    pub fn with_keyword(mut self, k: &str) -> Result<Flags, Error> {
        self.insert_keyword(k)?;
        Ok(self)
    }

    /// Sets a system flag.
    pub fn insert(&mut self, f: SystemFlag) {
        self.system |= f.bit();
    }

    /// Clears a system flag.
    pub fn remove(&mut self, f: SystemFlag) {
        self.system &= !f.bit();
    }

    /// Whether a system flag is set.
    pub fn contains(&self, f: SystemFlag) -> bool {
        self.system & f.bit() != 0
    }

    /// Adds a keyword.
    pub fn insert_keyword(&mut self, k: &str) -> Result<(), Error> {
        let ok = !k.is_empty()
            && k.len() <= MAX_KEYWORD
            && !k.starts_with('\\')
            && k.bytes().all(|b| {
                (0x21..0x7f).contains(&b)
                    && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
            });
        if !ok {
            return Err(Error::InvalidName(format!("keyword {k:?}")));
        }
        self.keywords.insert(k.to_owned());
        Ok(())
    }

    /// The keywords.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(String::as_str)
    }

    /// The system flags set.
    pub fn system(&self) -> impl Iterator<Item = SystemFlag> + '_ {
        SystemFlag::ALL.into_iter().filter(|f| self.contains(*f))
    }

    /// Maildir info letters, in ASCII order (`DFRST` subset).
    pub fn maildir_letters(&self) -> String {
        let mut v: Vec<char> = self.system().map(SystemFlag::maildir_letter).collect();
        v.sort_unstable();
        v.into_iter().collect()
    }

    /// Flags from Maildir info letters (unknown letters ignored).
    pub fn from_maildir_letters(letters: &str) -> Flags {
        let mut f = Flags::new();
        for c in letters.chars() {
            if let Some(s) = SystemFlag::ALL
                .into_iter()
                .find(|s| s.maildir_letter() == c)
            {
                f.insert(s);
            }
        }
        f
    }

    pub(crate) fn bits(&self) -> u8 {
        self.system
    }

    pub(crate) fn from_parts(system: u8, keywords: BTreeSet<String>) -> Flags {
        Flags { system, keywords }
    }

    pub(crate) fn keyword_set(&self) -> &BTreeSet<String> {
        &self.keywords
    }

    /// Applies an operation; returns whether anything changed.
    pub(crate) fn apply(&mut self, op: FlagOp, other: &Flags) -> bool {
        let before = self.clone();
        match op {
            FlagOp::Replace => *self = other.clone(),
            FlagOp::Add => {
                self.system |= other.system;
                self.keywords.extend(other.keywords.iter().cloned());
            }
            FlagOp::Remove => {
                self.system &= !other.system;
                for k in &other.keywords {
                    self.keywords.remove(k);
                }
            }
        }
        *self != before
    }
}

/// How [`crate::Store::store_flags`] changes flags (IMAP STORE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// SPECIAL-USE roles (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\Sent`
    Sent,
    /// `\Drafts`
    Drafts,
    /// `\Trash`
    Trash,
    /// `\Junk`
    Junk,
    /// `\Archive`
    Archive,
}

impl SpecialUse {
    /// The roles and the mailbox each user gets for it.
    pub const DEFAULTS: [(SpecialUse, &'static str); 5] = [
        (SpecialUse::Sent, "Sent"),
        (SpecialUse::Drafts, "Drafts"),
        (SpecialUse::Trash, "Trash"),
        (SpecialUse::Junk, "Junk"),
        (SpecialUse::Archive, "Archive"),
    ];

    pub(crate) fn code(self) -> u8 {
        match self {
            SpecialUse::Sent => 1,
            SpecialUse::Drafts => 2,
            SpecialUse::Trash => 3,
            SpecialUse::Junk => 4,
            SpecialUse::Archive => 5,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<SpecialUse> {
        Some(match c {
            1 => SpecialUse::Sent,
            2 => SpecialUse::Drafts,
            3 => SpecialUse::Trash,
            4 => SpecialUse::Junk,
            5 => SpecialUse::Archive,
            _ => return None,
        })
    }
}

/// One message's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Its UID.
    pub uid: Uid,
    /// Its MODSEQ (last change).
    pub modseq: ModSeq,
    /// Internal date, seconds since the Unix epoch.
    pub internal_date: i64,
    /// Size as stored, in octets.
    pub size: u64,
    /// Size with every line ending as CRLF (what POP3 LIST reports).
    pub size_crlf: u64,
    /// Flags and keywords.
    pub flags: Flags,
    /// A unique id that never changes (the Maildir base name); usable as
    /// a POP3 UIDL.
    pub unique_id: String,
}

/// A mailbox's identity and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The mailbox's id: never reused, kept across RENAME (a mailbox
    /// created again gets a new one); an IMAP MAILBOXID (RFC 8474).
    pub id: u64,
    /// The name.
    pub name: MailboxName,
    /// UIDVALIDITY: non-zero; new whenever a mailbox of this name is
    /// created again.
    pub uid_validity: u32,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// The highest MODSEQ given out in this mailbox.
    pub highest_modseq: ModSeq,
    /// Number of messages.
    pub exists: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// The SPECIAL-USE role.
    pub special_use: Option<SpecialUse>,
    /// Whether the user subscribed to it.
    pub subscribed: bool,
}

/// What happened in a mailbox, for other sessions watching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message arrived.
    Appended {
        /// Its UID.
        uid: Uid,
        /// Its MODSEQ.
        modseq: ModSeq,
    },
    /// Flags changed.
    Flags {
        /// The message.
        uid: Uid,
        /// The new MODSEQ.
        modseq: ModSeq,
        /// The new flags.
        flags: Flags,
    },
    /// A message was expunged.
    Expunged {
        /// The message.
        uid: Uid,
        /// The MODSEQ of the expunge.
        modseq: ModSeq,
    },
    /// The mailbox was deleted or renamed away: sessions must leave it.
    Gone,
}

/// The result of a conditional flag change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreResult {
    /// Messages changed, with their new MODSEQ.
    pub changed: Vec<(Uid, ModSeq)>,
    /// Messages whose MODSEQ was above the `unchanged_since` value
    /// (CONDSTORE's MODIFIED list).
    pub modified: Vec<Uid>,
}

/// Which UIDs vanished since a MODSEQ (QRESYNC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vanished {
    /// These, in ascending order.
    Uids(Vec<Uid>),
    /// The expunge log no longer reaches back that far: the client must
    /// compare its UIDs with the current ones.
    TooOld,
}

/// A POP3 maildrop: a snapshot of the inbox taken at login. Deletions are
/// applied with [`crate::Store::pop3_commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Snapshot {
    /// The owner.
    pub user: crate::UserName,
    /// The inbox's UIDVALIDITY when the snapshot was taken.
    pub uid_validity: u32,
    /// Messages in order: (uid, size with CRLF, unique id).
    pub messages: Vec<(Uid, u64, String)>,
}
