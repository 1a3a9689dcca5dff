//! The durable index: a redb database beside the Maildir folders.
//!
//! Why redb: it is a well-kept pure-Rust embedded database with ACID
//! transactions and fsync on commit (`Durability::Immediate`, its default),
//! crash-safe by design, so the store's own crash handling is limited to the
//! ordering of Maildir file operations against one index commit. A
//! hand-rolled log would need its own torn-write and recovery tests.

use std::collections::BTreeSet;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::Error;
use crate::model::{Mailbox, Model, Msg};
use crate::names::{MailboxName, UserName};
use crate::types::{Flags, MessageMeta, SpecialUse};

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const USERS: TableDefinition<&str, u8> = TableDefinition::new("users");
pub(crate) const MAILBOXES: TableDefinition<u64, &[u8]> = TableDefinition::new("mailboxes");
pub(crate) const MESSAGES: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("messages");
pub(crate) const EXPUNGED: TableDefinition<(u64, u64), u32> = TableDefinition::new("expunged");
pub(crate) const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
/// Per-message data an application derives from a message once (an IMAP
/// server's ENVELOPE and BODYSTRUCTURE): (mailbox id, UID) → opaque bytes.
/// A cache: written without waiting for the disk, rebuilt when missing.
pub(crate) const SUMMARIES: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("summaries");
/// Subscriptions to names that are no mailbox (RFC 3501 §6.3.6: a
/// subscription outlives its mailbox): (user, name).
pub(crate) const SUBSCRIPTIONS: TableDefinition<(&str, &str), u8> =
    TableDefinition::new("subscriptions");

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Index(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Index(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.0.len() < n {
            return Err(Error::Index("truncated record".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn i64(&mut self) -> Result<i64, Error> {
        Ok(self.u64()? as i64)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn string(&mut self) -> Result<String, Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| Error::Index("bad length".into()))?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Error::Index("bad string".into()))
    }
}

pub(crate) fn encode_mailbox(m: &Mailbox) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.str(m.user.as_str())
        .str(m.name.as_str())
        .u64(u64::from(m.uid_validity))
        .u64(u64::from(m.uid_next))
        .u64(m.highest_modseq)
        .u8(m.special_use.map_or(0, SpecialUse::code))
        .u8(u8::from(m.subscribed))
        .u64(m.log_floor);
    w.0
}

pub(crate) fn decode_mailbox(id: u64, b: &[u8]) -> Result<Mailbox, Error> {
    let mut r = Reader(b);
    Ok(Mailbox {
        id,
        user: UserName::new(&r.string()?)?,
        name: MailboxName::new(&r.string()?)?,
        uid_validity: r.u64()? as u32,
        uid_next: r.u64()? as u32,
        highest_modseq: r.u64()?,
        special_use: SpecialUse::from_code(r.u8()?),
        subscribed: r.u8()? != 0,
        log_floor: r.u64()?,
        messages: Default::default(),
        expunged: Default::default(),
    })
}

pub(crate) fn encode_msg(m: &Msg) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.u64(m.meta.modseq)
        .i64(m.meta.internal_date)
        .u64(m.meta.size)
        .u64(m.meta.size_crlf)
        .u8(m.meta.flags.bits())
        .str(&m.meta.unique_id)
        .u8(u8::from(m.in_cur))
        .str(&m.file_flags)
        .u64(m.meta.flags.keyword_set().len() as u64);
    for k in m.meta.flags.keywords() {
        w.str(k);
    }
    w.0
}

pub(crate) fn decode_msg(uid: u32, b: &[u8]) -> Result<Msg, Error> {
    let mut r = Reader(b);
    let modseq = r.u64()?;
    let internal_date = r.i64()?;
    let size = r.u64()?;
    let size_crlf = r.u64()?;
    let bits = r.u8()?;
    let unique_id = r.string()?;
    let in_cur = r.u8()? != 0;
    let file_flags = r.string()?;
    let n = r.u64()?;
    let mut keywords = BTreeSet::new();
    for _ in 0..n.min(1000) {
        keywords.insert(r.string()?);
    }
    Ok(Msg {
        meta: MessageMeta {
            uid,
            modseq,
            internal_date,
            size,
            size_crlf,
            flags: Flags::from_parts(bits, keywords),
            unique_id,
        },
        in_cur,
        file_flags,
    })
}

/// Loads the whole model from the index.
pub(crate) fn load(db: &redb::Database) -> Result<Model, Error> {
    let mut model = Model::default();
    let tx = db.begin_read()?;
    let Ok(meta) = tx.open_table(META) else {
        return Ok(model);
    };
    model.next_mailbox_id = meta.get("next_mailbox_id")?.map_or(1, |v| v.value());
    model.next_uid_validity = meta
        .get("next_uid_validity")?
        .map_or(1, |v| v.value() as u32);
    for row in tx.open_table(USERS)?.iter()? {
        let (k, _) = row?;
        model
            .users
            .insert(UserName::new(k.value())?, Default::default());
    }
    // Indexes made before subscriptions outlived mailboxes have no table.
    if let Ok(subs) = tx.open_table(SUBSCRIPTIONS) {
        for row in subs.iter()? {
            let (k, _) = row?;
            let (user, name) = k.value();
            if let Some(entry) = model.users.get_mut(&UserName::new(user)?) {
                entry.orphans.insert(MailboxName::new(name)?);
            }
        }
    }
    for row in tx.open_table(MAILBOXES)?.iter()? {
        let (k, v) = row?;
        let mb = decode_mailbox(k.value(), v.value())?;
        model.insert_mailbox(mb);
    }
    for row in tx.open_table(MESSAGES)?.iter()? {
        let (k, v) = row?;
        let (mailbox, uid) = k.value();
        let msg = decode_msg(uid, v.value())?;
        if let Some(mb) = model.mailboxes.get_mut(&mailbox) {
            mb.messages.insert(uid, msg);
        }
    }
    model.queue.next_id = meta.get("next_queue_id")?.map_or(1, |v| v.value());
    for row in tx.open_table(QUEUE)?.iter()? {
        let (k, v) = row?;
        let m = crate::queue::decode(k.value(), v.value())?;
        model.queue.messages.insert(m.id, m);
    }
    for row in tx.open_table(EXPUNGED)?.iter()? {
        let (k, v) = row?;
        let (mailbox, modseq) = k.value();
        if let Some(mb) = model.mailboxes.get_mut(&mailbox) {
            mb.expunged.insert(modseq, v.value());
        }
    }
    Ok(model)
}

/// Creates the tables of a new index.
pub(crate) fn init(db: &redb::Database) -> Result<(), Error> {
    let tx = db.begin_write()?;
    {
        tx.open_table(META)?;
        tx.open_table(USERS)?;
        tx.open_table(MAILBOXES)?;
        tx.open_table(MESSAGES)?;
        tx.open_table(EXPUNGED)?;
        tx.open_table(QUEUE)?;
        tx.open_table(SUBSCRIPTIONS)?;
        tx.open_table(SUMMARIES)?;
    }
    tx.commit()?;
    Ok(())
}
