//! The store: operations over the model, the Maildir files and the index.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use redb::ReadableDatabase;
use session_core::CrlfSize;

use crate::Error;
use crate::fs::{Fs, MemFs, RealFs};
use crate::index::{self, EXPUNGED, MAILBOXES, MESSAGES, META, QUEUE, USERS};
use crate::model::{Mailbox, Model, Msg};
use crate::names::{MailboxName, UserName};
use crate::types::{
    Change, FlagOp, Flags, MailboxInfo, MessageMeta, ModSeq, Pop3Snapshot, SpecialUse, StoreResult,
    Uid, Vanished,
};

/// Expunge log entries kept per mailbox; older ones are trimmed and
/// `vanished_since` answers [`Vanished::TooOld`] for them.
pub const EXPUNGE_LOG_LIMIT: usize = 10_000;

/// Where a new message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The mailbox's UIDVALIDITY.
    pub uid_validity: u32,
    /// The message's UID.
    pub uid: Uid,
}

/// A stream of changes to one mailbox, for IMAP IDLE and friends. It is a
/// `futures::Stream`; [`ChangeFeed::drain`] takes what is queued without
/// waiting.
#[derive(Debug)]
pub struct ChangeFeed {
    rx: UnboundedReceiver<Change>,
}

impl ChangeFeed {
    /// Changes queued so far, without waiting.
    pub fn drain(&mut self) -> Vec<Change> {
        let mut v = Vec::new();
        while let Ok(c) = self.rx.try_recv() {
            v.push(c);
        }
        v
    }
}

impl futures::Stream for ChangeFeed {
    type Item = Change;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Change>> {
        std::pin::Pin::new(&mut self.rx).poll_next(cx)
    }
}

enum Put {
    Meta(&'static str, u64),
    User(String, bool),
    Mailbox(u64, Option<Vec<u8>>),
    Msg(u64, Uid, Option<Vec<u8>>),
    Expunge(u64, ModSeq, Option<Uid>),
    Queue(u64, Option<Vec<u8>>),
    Subscription(String, String, bool),
}

/// A delivery waiting for the group commit.
struct Slot {
    mailbox: u64,
    folder: PathBuf,
    msg: Mutex<Option<Msg>>,
    result: Mutex<Option<Result<Delivery, Error>>>,
}

/// Users, mailboxes and messages: Maildir files plus a durable index (or
/// everything in memory). Cheap to clone; share one per process.
///
/// ```
/// use mailstore::{Store, UserName, MailboxName, Flags};
/// use std::io::Read;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path()).unwrap();
/// let alice = UserName::new("alice").unwrap();
/// store.create_user(&alice).unwrap();
///
/// let d = store.deliver(&alice, b"Subject: hi\r\n\r\nHello\r\n", 1_700_000_000).unwrap();
/// let inbox = MailboxName::inbox();
/// let list = store.messages(&alice, &inbox).unwrap();
/// assert_eq!(list[0].uid, d.uid);
/// let mut body = String::new();
/// store.open_message(&alice, &inbox, d.uid).unwrap().read_to_string(&mut body).unwrap();
/// assert_eq!(body, "Subject: hi\r\n\r\nHello\r\n");
/// // It is a Maildir file other tools can read.
/// let new = dir.path().join("users/alice/Maildir/new");
/// assert_eq!(std::fs::read_dir(new).unwrap().count(), 1);
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    fs: Arc<dyn Fs>,
    root: PathBuf,
    db: Option<redb::Database>,
    model: Mutex<Model>,
    commit: Mutex<()>,
    pending: Mutex<Vec<Arc<Slot>>>,
    watchers: Mutex<HashMap<u64, Vec<UnboundedSender<Change>>>>,
    poisoned: AtomicBool,
    counter: AtomicU64,
    seed: u64,
    /// Summaries: all of them for the in-memory store; for the disk store,
    /// those not yet in the index (written with the next index commit, or
    /// on their own once [`SUMMARY_BUFFER`] wait).
    summaries: Mutex<Summaries>,
}

/// (mailbox id, UID) → summary bytes.
type Summaries = HashMap<(u64, Uid), Arc<[u8]>>;

/// Summaries held before they are written on their own.
const SUMMARY_BUFFER: usize = 256;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .field("durable", &self.inner.db.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens (or creates) a store on disk under `root`: Maildir folders in
    /// `root/users/NAME/Maildir` and the index in `root/index.redb`.
    pub fn open(root: impl AsRef<Path>) -> Result<Store, Error> {
        Self::open_with_fs(root, Arc::new(RealFs))
    }

    /// [`Store::open`] with a file-system implementation of the caller's
    /// (tests use one that records calls and crashes between them).
    pub fn open_with_fs(root: impl AsRef<Path>, fs: Arc<dyn Fs>) -> Result<Store, Error> {
        let root = root.as_ref().to_owned();
        std::fs::create_dir_all(&root)?;
        let path = root.join("index.redb");
        let db = if path.exists() {
            redb::Database::open(&path)?
        } else {
            let db = redb::Database::create(&path)?;
            index::init(&db)?;
            db
        };
        let model = index::load(&db)?;
        let store = Store::build(fs, root, Some(db), model);
        store.reconcile()?;
        Ok(store)
    }

    /// A store that keeps everything in memory (tests, simulations).
    pub fn in_memory() -> Store {
        Store::build(
            Arc::new(MemFs::default()),
            PathBuf::from("/mem"),
            None,
            Model::default(),
        )
    }

    fn build(fs: Arc<dyn Fs>, root: PathBuf, db: Option<redb::Database>, model: Model) -> Store {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        Store {
            inner: Arc::new(Inner {
                fs,
                root,
                db,
                model: Mutex::new(model),
                commit: Mutex::new(()),
                pending: Mutex::new(Vec::new()),
                watchers: Mutex::new(HashMap::new()),
                poisoned: AtomicBool::new(false),
                counter: AtomicU64::new(0),
                seed,
                summaries: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn folder(&self, user: &UserName, name: &MailboxName) -> PathBuf {
        self.inner
            .root
            .join("users")
            .join(user.as_str())
            .join("Maildir")
            .join(name.folder())
    }

    fn check(&self) -> Result<(), Error> {
        if self.inner.poisoned.load(Ordering::SeqCst) {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Applies index changes in one transaction. A failure here leaves the
    /// in-memory model ahead of the index, so the store refuses further
    /// work until reopened.
    fn write_index(&self, puts: Vec<Put>) -> Result<(), Error> {
        let r = self.write_index_inner(puts);
        if r.is_err() {
            self.inner.poisoned.store(true, Ordering::SeqCst);
        }
        r
    }

    fn write_index_inner(&self, puts: Vec<Put>) -> Result<(), Error> {
        self.inner.fs.barrier("index commit")?;
        let Some(db) = &self.inner.db else {
            return Ok(());
        };
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let mut users = tx.open_table(USERS)?;
            let mut mailboxes = tx.open_table(MAILBOXES)?;
            let mut messages = tx.open_table(MESSAGES)?;
            let mut expunged = tx.open_table(EXPUNGED)?;
            let mut queue = tx.open_table(QUEUE)?;
            let mut subs = tx.open_table(index::SUBSCRIPTIONS)?;
            let mut summaries = tx.open_table(index::SUMMARIES)?;
            // Summaries waiting in memory ride along with this commit.
            let mut waiting = std::mem::take(&mut *lock(&self.inner.summaries));
            for p in &puts {
                match p {
                    Put::Msg(id, uid, None) => {
                        waiting.remove(&(*id, *uid));
                    }
                    Put::Mailbox(id, None) => waiting.retain(|k, _| k.0 != *id),
                    _ => {}
                }
            }
            for ((id, uid), data) in waiting {
                summaries.insert((id, uid), &*data)?;
            }
            for p in puts {
                match p {
                    Put::Meta(k, v) => {
                        meta.insert(k, v)?;
                    }
                    Put::User(u, true) => {
                        users.insert(u.as_str(), 1)?;
                    }
                    Put::User(u, false) => {
                        users.remove(u.as_str())?;
                    }
                    Put::Mailbox(id, Some(v)) => {
                        mailboxes.insert(id, v.as_slice())?;
                    }
                    Put::Mailbox(id, None) => {
                        mailboxes.remove(id)?;
                        messages.retain_in((id, 0)..=(id, u32::MAX), |_, _| false)?;
                        summaries.retain_in((id, 0)..=(id, u32::MAX), |_, _| false)?;
                        expunged.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
                    }
                    Put::Msg(id, uid, Some(v)) => {
                        messages.insert((id, uid), v.as_slice())?;
                    }
                    Put::Msg(id, uid, None) => {
                        messages.remove((id, uid))?;
                        summaries.remove((id, uid))?;
                    }
                    Put::Expunge(id, m, Some(uid)) => {
                        expunged.insert((id, m), uid)?;
                    }
                    Put::Expunge(id, m, None) => {
                        expunged.remove((id, m))?;
                    }
                    Put::Queue(id, Some(v)) => {
                        queue.insert(id, v.as_slice())?;
                    }
                    Put::Queue(id, None) => {
                        queue.remove(id)?;
                    }
                    Put::Subscription(u, n, true) => {
                        subs.insert((u.as_str(), n.as_str()), 1)?;
                    }
                    Put::Subscription(u, n, false) => {
                        subs.remove((u.as_str(), n.as_str()))?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn notify(&self, mailbox: u64, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut w = lock(&self.inner.watchers);
        if let Some(list) = w.get_mut(&mailbox) {
            list.retain(|tx| changes.iter().all(|c| tx.unbounded_send(c.clone()).is_ok()));
        }
    }

    fn new_unique_id(&self, date: i64) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::SeqCst);
        format!(
            "{}.M{}P{}R{:x}.mailkit",
            date.max(0),
            n,
            std::process::id(),
            self.inner.seed & 0xffff_ffff
        )
    }

    // ------------------------------------------------------------ users

    /// Creates a user with INBOX and the SPECIAL-USE mailboxes (Sent,
    /// Drafts, Trash, Junk, Archive), all subscribed.
    pub fn create_user(&self, user: &UserName) -> Result<(), Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        if lock(&self.inner.model).users.contains_key(user) {
            return Err(Error::UserExists(user.to_string()));
        }
        let mut boxes = vec![(MailboxName::inbox(), None)];
        for (role, name) in SpecialUse::DEFAULTS {
            boxes.push((MailboxName::new(name)?, Some(role)));
        }
        for (name, _) in &boxes {
            self.make_dirs(&self.folder(user, name))?;
        }
        let mut model = lock(&self.inner.model);
        model.users.entry(user.clone()).or_default();
        let mut puts = vec![Put::User(user.to_string(), true)];
        for (name, role) in boxes {
            let mb = new_mailbox(&mut model, user, name, role);
            puts.push(Put::Mailbox(mb.id, Some(index::encode_mailbox(&mb))));
            model.insert_mailbox(mb);
        }
        puts.push(Put::Meta("next_mailbox_id", model.next_mailbox_id));
        puts.push(Put::Meta(
            "next_uid_validity",
            u64::from(model.next_uid_validity),
        ));
        self.write_index(puts)
    }

    /// Deletes a user and all their mail.
    pub fn delete_user(&self, user: &UserName) -> Result<(), Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let mut model = lock(&self.inner.model);
        let entry = model
            .users
            .remove(user)
            .ok_or_else(|| Error::NoSuchUser(user.to_string()))?;
        let mut puts = vec![Put::User(user.to_string(), false)];
        for n in &entry.orphans {
            puts.push(Put::Subscription(user.to_string(), n.to_string(), false));
        }
        for id in entry.mailboxes.values() {
            model.mailboxes.remove(id);
            puts.push(Put::Mailbox(*id, None));
            self.notify(*id, vec![Change::Gone]);
        }
        drop(model);
        self.write_index(puts)?;
        self.inner
            .fs
            .remove_dir_all(&self.inner.root.join("users").join(user.as_str()))?;
        Ok(())
    }

    /// All users.
    pub fn users(&self) -> Vec<UserName> {
        lock(&self.inner.model).users.keys().cloned().collect()
    }

    /// Whether the user exists.
    pub fn has_user(&self, user: &UserName) -> bool {
        lock(&self.inner.model).users.contains_key(user)
    }

    /// Octets stored for the user, over all mailboxes.
    pub fn quota_usage(&self, user: &UserName) -> Result<u64, Error> {
        let model = lock(&self.inner.model);
        Ok(model
            .user_mailboxes(user)?
            .flat_map(|mb| mb.messages.values())
            .map(|m| m.meta.size)
            .sum())
    }

    // -------------------------------------------------------- mailboxes

    fn make_dirs(&self, folder: &Path) -> Result<(), Error> {
        for sub in ["tmp", "new", "cur"] {
            self.inner.fs.create_dir_all(&folder.join(sub))?;
        }
        Ok(())
    }

    /// Creates a mailbox.
    pub fn create_mailbox(
        &self,
        user: &UserName,
        name: &MailboxName,
    ) -> Result<MailboxInfo, Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        {
            let model = lock(&self.inner.model);
            let entry = model
                .users
                .get(user)
                .ok_or_else(|| Error::NoSuchUser(user.to_string()))?;
            if entry.mailboxes.contains_key(name) {
                return Err(Error::MailboxExists(name.to_string()));
            }
        }
        self.make_dirs(&self.folder(user, name))?;
        let mut model = lock(&self.inner.model);
        let mut mb = new_mailbox(&mut model, user, name.clone(), None);
        // CREATE does not subscribe (RFC 3501 §6.3.3), but a subscription
        // the name already had applies again; a user's first mailboxes are
        // subscribed.
        let adopted = model
            .users
            .get_mut(user)
            .is_some_and(|u| u.orphans.remove(name));
        mb.subscribed = adopted;
        let info = mb.info();
        let mut puts = vec![
            Put::Mailbox(mb.id, Some(index::encode_mailbox(&mb))),
            Put::Meta("next_mailbox_id", model.next_mailbox_id),
            Put::Meta("next_uid_validity", u64::from(model.next_uid_validity)),
        ];
        if adopted {
            puts.push(Put::Subscription(user.to_string(), name.to_string(), false));
        }
        model.insert_mailbox(mb);
        drop(model);
        self.write_index(puts)?;
        Ok(info)
    }

    /// Deletes a mailbox and its messages (not its children). The inbox
    /// cannot be deleted.
    pub fn delete_mailbox(&self, user: &UserName, name: &MailboxName) -> Result<(), Error> {
        self.check()?;
        if name.is_inbox() {
            return Err(Error::CannotDeleteInbox);
        }
        let _c = lock(&self.inner.commit);
        let mut model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        let subscribed = model.mailboxes.remove(&id).is_some_and(|m| m.subscribed);
        let mut puts = vec![Put::Mailbox(id, None)];
        if let Some(u) = model.users.get_mut(user) {
            u.mailboxes.remove(name);
            // The subscription outlives the mailbox (RFC 3501 §6.3.4).
            if subscribed {
                u.orphans.insert(name.clone());
                puts.push(Put::Subscription(user.to_string(), name.to_string(), true));
            }
        }
        drop(model);
        self.write_index(puts)?;
        self.notify(id, vec![Change::Gone]);
        lock(&self.inner.watchers).remove(&id);
        self.inner.fs.remove_dir_all(&self.folder(user, name))?;
        Ok(())
    }

    /// Renames a mailbox and everything below it, keeping UIDVALIDITY.
    /// Renaming the inbox moves its messages to a new mailbox and leaves
    /// the inbox empty (RFC 3501 §6.3.5).
    pub fn rename_mailbox(
        &self,
        user: &UserName,
        from: &MailboxName,
        to: &MailboxName,
    ) -> Result<(), Error> {
        self.check()?;
        if from.is_inbox() {
            self.create_mailbox(user, to)?;
            let uids: Vec<Uid> = self.messages(user, from)?.iter().map(|m| m.uid).collect();
            self.move_messages(user, from, &uids, to)?;
            return Ok(());
        }
        let _c = lock(&self.inner.commit);
        let mut model = lock(&self.inner.model);
        model.mailbox_id(user, from)?;
        let entry = model
            .users
            .get(user)
            .ok_or_else(|| Error::NoSuchUser(user.to_string()))?;
        if entry.mailboxes.contains_key(to) {
            return Err(Error::MailboxExists(to.to_string()));
        }
        if to.is_within(from) {
            return Err(Error::InvalidName(format!(
                "cannot rename {from} into itself"
            )));
        }
        let moving: Vec<(MailboxName, u64)> = entry
            .mailboxes
            .iter()
            .filter(|(n, _)| n.is_within(from))
            .map(|(n, id)| (n.clone(), *id))
            .collect();
        let mut renames = Vec::new();
        for (old, id) in &moving {
            let suffix = &old.as_str()[from.as_str().len()..];
            let new = MailboxName::new(&format!("{to}{suffix}"))?;
            renames.push((old.clone(), new, *id));
        }
        for (old, new, _) in &renames {
            let (a, b) = (self.folder(user, old), self.folder(user, new));
            self.inner.fs.rename(&a, &b)?;
        }
        self.inner
            .fs
            .sync_dir(&self.folder(user, &MailboxName::inbox()))?;
        let mut puts = Vec::new();
        for (old, new, id) in renames {
            if let Some(u) = model.users.get_mut(user) {
                u.mailboxes.remove(&old);
                u.mailboxes.insert(new.clone(), id);
            }
            if let Some(mb) = model.mailboxes.get_mut(&id) {
                mb.name = new;
                puts.push(Put::Mailbox(id, Some(index::encode_mailbox(mb))));
            }
            self.notify(id, vec![Change::Gone]);
        }
        drop(model);
        self.write_index(puts)
    }

    /// Subscribes to or unsubscribes from a mailbox name; the name need
    /// not be a mailbox (RFC 3501 §6.3.6), see
    /// [`Store::orphan_subscriptions`].
    pub fn subscribe(&self, user: &UserName, name: &MailboxName, on: bool) -> Result<(), Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let mut model = lock(&self.inner.model);
        if model.mailbox_id(user, name).is_err() {
            let entry = model
                .users
                .get_mut(user)
                .ok_or_else(|| Error::NoSuchUser(user.to_string()))?;
            let changed = if on {
                entry.orphans.insert(name.clone())
            } else {
                entry.orphans.remove(name)
            };
            drop(model);
            if !changed {
                return Ok(());
            }
            return self.write_index(vec![Put::Subscription(
                user.to_string(),
                name.to_string(),
                on,
            )]);
        }
        let (id, mb) = model.mailbox_mut(user, name)?;
        mb.subscribed = on;
        let put = Put::Mailbox(id, Some(index::encode_mailbox(mb)));
        drop(model);
        self.write_index(vec![put])
    }

    /// Subscribed names that are no mailbox (deleted since, or never
    /// created), sorted.
    pub fn orphan_subscriptions(&self, user: &UserName) -> Result<Vec<MailboxName>, Error> {
        let model = lock(&self.inner.model);
        let entry = model
            .users
            .get(user)
            .ok_or_else(|| Error::NoSuchUser(user.to_string()))?;
        Ok(entry.orphans.iter().cloned().collect())
    }

    /// The user's mailboxes, sorted by name.
    pub fn mailboxes(&self, user: &UserName) -> Result<Vec<MailboxInfo>, Error> {
        let model = lock(&self.inner.model);
        Ok(model.user_mailboxes(user)?.map(Mailbox::info).collect())
    }

    /// One mailbox's counters.
    pub fn mailbox(&self, user: &UserName, name: &MailboxName) -> Result<MailboxInfo, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        Ok(model.mailboxes[&id].info())
    }

    /// Watches a mailbox for changes made after this call.
    pub fn watch(&self, user: &UserName, name: &MailboxName) -> Result<ChangeFeed, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        let (tx, rx) = unbounded();
        lock(&self.inner.watchers).entry(id).or_default().push(tx);
        Ok(ChangeFeed { rx })
    }

    // --------------------------------------------------------- messages

    /// Delivers a message to a user's inbox, durably: when this returns
    /// `Ok`, the message file and its index entry are on disk.
    pub fn deliver(
        &self,
        user: &UserName,
        message: &[u8],
        internal_date: i64,
    ) -> Result<Delivery, Error> {
        self.append(
            user,
            &MailboxName::inbox(),
            &mut &message[..],
            internal_date,
            &Flags::new(),
        )
    }

    /// Delivers one message to several users: atomic per user, and each
    /// user's result on its own.
    pub fn deliver_many(
        &self,
        users: &[UserName],
        message: &[u8],
        internal_date: i64,
    ) -> Vec<Result<Delivery, Error>> {
        users
            .iter()
            .map(|u| self.deliver(u, message, internal_date))
            .collect()
    }

    /// Appends a message read from `message` (streamed to disk, never
    /// whole in memory) to a mailbox, with flags. Durable when it returns.
    /// Concurrent appends share the directory fsync and the index commit
    /// (group commit).
    pub fn append(
        &self,
        user: &UserName,
        name: &MailboxName,
        message: &mut dyn Read,
        internal_date: i64,
        flags: &Flags,
    ) -> Result<Delivery, Error> {
        let slot = self.stage(user, name, message, internal_date, flags)?;
        self.finish(&[slot]).pop().unwrap_or_else(lost_in_commit)
    }

    /// Appends one message to several mailboxes with one group commit: each
    /// target gets its own file from `message()` (a fresh reader each time,
    /// streamed to disk), and its own result.
    pub fn append_many(
        &self,
        targets: &[(UserName, MailboxName)],
        message: &mut dyn FnMut() -> Result<Box<dyn Read + Send>, Error>,
        internal_date: i64,
        flags: &Flags,
    ) -> Vec<Result<Delivery, Error>> {
        let staged: Vec<Result<Arc<Slot>, Error>> = targets
            .iter()
            .map(|(user, name)| {
                let mut reader = message()?;
                self.stage(user, name, &mut reader, internal_date, flags)
            })
            .collect();
        let slots: Vec<Arc<Slot>> = staged
            .iter()
            .filter_map(|s| s.as_ref().ok().cloned())
            .collect();
        let mut done = self.finish(&slots).into_iter();
        staged
            .into_iter()
            .map(|s| match s {
                Ok(_) => done.next().unwrap_or_else(lost_in_commit),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Writes a message file (tmp, fsync, rename into the folder) and
    /// queues it for the group commit.
    fn stage(
        &self,
        user: &UserName,
        name: &MailboxName,
        message: &mut dyn Read,
        internal_date: i64,
        flags: &Flags,
    ) -> Result<Arc<Slot>, Error> {
        self.check()?;
        let mailbox = lock(&self.inner.model).mailbox_id(user, name)?;
        let folder = self.folder(user, name);
        let unique_id = self.new_unique_id(internal_date);
        let tmp = folder.join("tmp").join(&unique_id);
        let (size, size_crlf) = match self.write_file(&tmp, message) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.inner.fs.remove_file(&tmp);
                return Err(e);
            }
        };
        let letters = flags.maildir_letters();
        let msg = Msg {
            meta: MessageMeta {
                uid: 0,
                modseq: 0,
                internal_date,
                size,
                size_crlf,
                flags: flags.clone(),
                unique_id,
            },
            in_cur: !letters.is_empty(),
            file_flags: letters,
        };
        let target = folder.join(msg.rel_path());
        self.inner.fs.rename(&tmp, &target)?;
        let slot = Arc::new(Slot {
            mailbox,
            folder,
            msg: Mutex::new(Some(msg)),
            result: Mutex::new(None),
        });
        lock(&self.inner.pending).push(slot.clone());
        Ok(slot)
    }

    /// Waits for the group commit that makes `slots` durable (running it
    /// when no other thread does); their results, in order.
    fn finish(&self, slots: &[Arc<Slot>]) -> Vec<Result<Delivery, Error>> {
        let _c = lock(&self.inner.commit);
        if slots.iter().any(|s| lock(&s.result).is_none()) {
            self.group_commit();
        }
        slots
            .iter()
            .map(|s| lock(&s.result).take().unwrap_or_else(lost_in_commit))
            .collect()
    }

    fn write_file(&self, path: &Path, message: &mut dyn Read) -> Result<(u64, u64), Error> {
        let mut file = self.inner.fs.create_new(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut count = CrlfSize::new();
        loop {
            let n = match message.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            file.write_all(&buf[..n])?;
            count.feed(&buf[..n]);
        }
        file.sync_all()?;
        Ok((count.stored(), count.finish()))
    }

    /// Commits every queued delivery: one fsync per directory, one index
    /// transaction. Called with the commit lock held.
    fn group_commit(&self) {
        let batch: Vec<Arc<Slot>> = std::mem::take(&mut *lock(&self.inner.pending));
        if batch.is_empty() {
            return;
        }
        let mut dirs: Vec<PathBuf> = batch
            .iter()
            .map(|s| {
                let in_cur = lock(&s.msg).as_ref().is_some_and(|m| m.in_cur);
                s.folder.join(if in_cur { "cur" } else { "new" })
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        for d in &dirs {
            if let Err(e) = self.inner.fs.sync_dir(d) {
                let msg = e.to_string();
                for s in &batch {
                    *lock(&s.result) = Some(Err(Error::Io(io::Error::other(msg.clone()))));
                }
                return;
            }
        }
        let mut model = lock(&self.inner.model);
        let mut puts = Vec::new();
        let mut changes: Vec<(u64, Change)> = Vec::new();
        let mut results = Vec::new();
        for s in &batch {
            let Some(mut msg) = lock(&s.msg).take() else {
                continue;
            };
            let Some(mb) = model.mailboxes.get_mut(&s.mailbox) else {
                results.push((s.clone(), Err(Error::NoSuchMailbox(String::new()))));
                continue;
            };
            msg.meta.uid = mb.uid_next;
            mb.uid_next += 1;
            msg.meta.modseq = mb.next_modseq();
            puts.push(Put::Msg(mb.id, msg.meta.uid, Some(index::encode_msg(&msg))));
            puts.push(Put::Mailbox(mb.id, Some(index::encode_mailbox(mb))));
            changes.push((
                mb.id,
                Change::Appended {
                    uid: msg.meta.uid,
                    modseq: msg.meta.modseq,
                },
            ));
            results.push((
                s.clone(),
                Ok(Delivery {
                    uid_validity: mb.uid_validity,
                    uid: msg.meta.uid,
                }),
            ));
            mb.messages.insert(msg.meta.uid, msg);
        }
        drop(model);
        match self.write_index(puts) {
            Ok(()) => {
                for (s, r) in results {
                    *lock(&s.result) = Some(r);
                }
                for (id, c) in changes {
                    self.notify(id, vec![c]);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (s, _) in results {
                    *lock(&s.result) = Some(Err(Error::Index(msg.clone())));
                }
            }
        }
    }

    /// The messages of a mailbox, by UID.
    pub fn messages(&self, user: &UserName, name: &MailboxName) -> Result<Vec<MessageMeta>, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        Ok(model.mailboxes[&id]
            .messages
            .values()
            .map(|m| m.meta.clone())
            .collect())
    }

    /// The metadata of these messages (those that still exist, ascending):
    /// a FETCH or STORE reads what it names, not the whole mailbox.
    pub fn message_metas(
        &self,
        user: &UserName,
        name: &MailboxName,
        uids: &[Uid],
    ) -> Result<Vec<MessageMeta>, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        let msgs = &model.mailboxes[&id].messages;
        let mut out: Vec<MessageMeta> = uids
            .iter()
            .filter_map(|u| msgs.get(u).map(|m| m.meta.clone()))
            .collect();
        out.sort_by_key(|m| m.uid);
        out.dedup_by_key(|m| m.uid);
        Ok(out)
    }

    /// The id of the mailbox holding message `uid`.
    fn message_mailbox(&self, user: &UserName, name: &MailboxName, uid: Uid) -> Result<u64, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        if !model.mailboxes[&id].messages.contains_key(&uid) {
            return Err(Error::NoSuchMessage(uid));
        }
        Ok(id)
    }

    /// What the application derived from a message and kept with it (see
    /// [`Store::set_summary`]); `None` when nothing was kept.
    pub fn summary(
        &self,
        user: &UserName,
        name: &MailboxName,
        uid: Uid,
    ) -> Result<Option<Vec<u8>>, Error> {
        let id = self.message_mailbox(user, name, uid)?;
        if let Some(b) = lock(&self.inner.summaries).get(&(id, uid)) {
            return Ok(Some(b.to_vec()));
        }
        let Some(db) = &self.inner.db else {
            return Ok(None);
        };
        let tx = db.begin_read()?;
        let Ok(table) = tx.open_table(index::SUMMARIES) else {
            return Ok(None);
        };
        Ok(table.get((id, uid))?.map(|v| v.value().to_vec()))
    }

    /// Keeps `data` with a message: what an application derives from it
    /// once (an IMAP server's ENVELOPE and BODYSTRUCTURE) instead of
    /// reading the message again. A cache: held in memory and written with
    /// the next index commit (or on its own, without waiting for the disk,
    /// once a few hundred wait), removed with the message; one lost in a
    /// crash is derived again.
    pub fn set_summary(
        &self,
        user: &UserName,
        name: &MailboxName,
        uid: Uid,
        data: &[u8],
    ) -> Result<(), Error> {
        self.check()?;
        let id = self.message_mailbox(user, name, uid)?;
        let full = {
            let mut s = lock(&self.inner.summaries);
            s.insert((id, uid), data.into());
            s.len() >= SUMMARY_BUFFER
        };
        let Some(db) = &self.inner.db else {
            return Ok(());
        };
        if !full {
            return Ok(());
        }
        let _c = lock(&self.inner.commit);
        let waiting = std::mem::take(&mut *lock(&self.inner.summaries));
        let mut tx = db.begin_write()?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| Error::Index(e.to_string()))?;
        {
            let mut table = tx.open_table(index::SUMMARIES)?;
            for ((id, uid), data) in &waiting {
                table.insert((*id, *uid), &**data)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Opens a message's bytes, streamed from its file.
    pub fn open_message(
        &self,
        user: &UserName,
        name: &MailboxName,
        uid: Uid,
    ) -> Result<Box<dyn Read + Send>, Error> {
        let (path, unique) = {
            let model = lock(&self.inner.model);
            let id = model.mailbox_id(user, name)?;
            let msg = model.mailboxes[&id]
                .messages
                .get(&uid)
                .ok_or(Error::NoSuchMessage(uid))?;
            (
                self.folder(user, name).join(msg.rel_path()),
                msg.meta.unique_id.clone(),
            )
        };
        match self.inner.fs.open(&path) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Renamed by another tool: look for it by its unique id.
                let folder = self.folder(user, name);
                let found = self
                    .find_file(&folder, &unique)?
                    .ok_or(Error::NoSuchMessage(uid))?;
                Ok(self.inner.fs.open(&folder.join(found))?)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn find_file(&self, folder: &Path, unique: &str) -> Result<Option<String>, Error> {
        for sub in ["new", "cur"] {
            for f in self.inner.fs.read_dir(&folder.join(sub))? {
                if f == unique || f.starts_with(&format!("{unique}:")) {
                    return Ok(Some(format!("{sub}/{f}")));
                }
            }
        }
        Ok(None)
    }

    /// Changes flags (IMAP STORE). With `unchanged_since` (CONDSTORE),
    /// messages changed after that MODSEQ are left alone and reported in
    /// [`StoreResult::modified`]. Messages whose flags do not change keep
    /// their MODSEQ.
    pub fn store_flags(
        &self,
        user: &UserName,
        name: &MailboxName,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult, Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let folder = self.folder(user, name);
        let mut model = lock(&self.inner.model);
        let (id, mb) = model.mailbox_mut(user, name)?;
        let mut result = StoreResult::default();
        let mut plan = Vec::new();
        for uid in &unique(uids) {
            let Some(msg) = mb.messages.get(uid) else {
                continue;
            };
            if unchanged_since.is_some_and(|s| msg.meta.modseq > s) {
                result.modified.push(*uid);
                continue;
            }
            let mut new = msg.meta.flags.clone();
            if new.apply(op, flags) {
                plan.push((*uid, new));
            }
        }
        // Files first: rename to the new Maildir info letters.
        let mut renamed = Vec::new();
        for (uid, new) in &plan {
            let msg = &mb.messages[uid];
            let letters = new.maildir_letters();
            if msg.in_cur && msg.file_flags == letters {
                renamed.push((*uid, true, letters));
                continue;
            }
            let from = folder.join(msg.rel_path());
            let to = folder.join(format!("cur/{}:2,{}", msg.meta.unique_id, letters));
            match self.inner.fs.rename(&from, &to) {
                Ok(()) => renamed.push((*uid, true, letters)),
                // The index stays the source of truth if a tool moved it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    renamed.push((*uid, msg.in_cur, msg.file_flags.clone()))
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut puts = Vec::new();
        let mut changes = Vec::new();
        for ((uid, new), (_, in_cur, letters)) in plan.into_iter().zip(renamed) {
            let modseq = mb.next_modseq();
            let Some(msg) = mb.messages.get_mut(&uid) else {
                continue;
            };
            msg.meta.flags = new.clone();
            msg.meta.modseq = modseq;
            msg.in_cur = in_cur;
            msg.file_flags = letters;
            puts.push(Put::Msg(id, uid, Some(index::encode_msg(msg))));
            result.changed.push((uid, modseq));
            changes.push(Change::Flags {
                uid,
                modseq,
                flags: new,
            });
        }
        if !puts.is_empty() {
            puts.push(Put::Mailbox(id, Some(index::encode_mailbox(mb))));
        }
        drop(model);
        if !puts.is_empty() {
            self.write_index(puts)?;
        }
        self.notify(id, changes);
        Ok(result)
    }

    /// Removes messages flagged `\Deleted` (only those in `uids`, if
    /// given: UID EXPUNGE). Returns the expunged UIDs.
    pub fn expunge(
        &self,
        user: &UserName,
        name: &MailboxName,
        uids: Option<&[Uid]>,
    ) -> Result<Vec<Uid>, Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let folder = self.folder(user, name);
        let mut model = lock(&self.inner.model);
        let (id, mb) = model.mailbox_mut(user, name)?;
        let wanted: Option<BTreeSet<Uid>> = uids.map(|u| u.iter().copied().collect());
        let doomed: Vec<Uid> = mb
            .messages
            .values()
            .filter(|m| m.meta.flags.contains(crate::SystemFlag::Deleted))
            .filter(|m| wanted.as_ref().is_none_or(|w| w.contains(&m.meta.uid)))
            .map(|m| m.meta.uid)
            .collect();
        self.remove_messages(&folder, id, &doomed, model)
    }

    /// Removes `uids` from mailbox `id`: files first (so a crash cannot bring an
    /// expunged message back), then the index.
    fn remove_messages(
        &self,
        folder: &Path,
        id: u64,
        uids: &[Uid],
        model: MutexGuard<'_, Model>,
    ) -> Result<Vec<Uid>, Error> {
        // Called with the commit lock held, which every change to a
        // mailbox takes: the files can go without holding up readers.
        let paths: Vec<PathBuf> = {
            let mb = model
                .mailboxes
                .get(&id)
                .ok_or_else(|| Error::NoSuchMailbox(String::new()))?;
            uids.iter()
                .filter_map(|uid| mb.messages.get(uid))
                .map(|m| folder.join(m.rel_path()))
                .collect()
        };
        drop(model);
        for path in &paths {
            match self.inner.fs.remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        let mut model = lock(&self.inner.model);
        let mb = model
            .mailboxes
            .get_mut(&id)
            .ok_or_else(|| Error::NoSuchMailbox(String::new()))?;
        let mut puts = Vec::new();
        let mut changes = Vec::new();
        for uid in uids {
            mb.messages.remove(uid);
            let modseq = mb.next_modseq();
            mb.expunged.insert(modseq, *uid);
            puts.push(Put::Msg(id, *uid, None));
            puts.push(Put::Expunge(id, modseq, Some(*uid)));
            changes.push(Change::Expunged { uid: *uid, modseq });
        }
        while mb.expunged.len() > EXPUNGE_LOG_LIMIT {
            if let Some((m, _)) = mb.expunged.pop_first() {
                mb.log_floor = m;
                puts.push(Put::Expunge(id, m, None));
            }
        }
        if !puts.is_empty() {
            puts.push(Put::Mailbox(id, Some(index::encode_mailbox(mb))));
        }
        drop(model);
        if !puts.is_empty() {
            self.write_index(puts)?;
        }
        self.notify(id, changes);
        Ok(uids.to_vec())
    }

    /// UIDs expunged after `since` (QRESYNC), or [`Vanished::TooOld`] when
    /// the log was trimmed past it.
    pub fn vanished_since(
        &self,
        user: &UserName,
        name: &MailboxName,
        since: ModSeq,
    ) -> Result<Vanished, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, name)?;
        let mb = &model.mailboxes[&id];
        if since < mb.log_floor {
            return Ok(Vanished::TooOld);
        }
        let mut v: Vec<Uid> = mb.expunged.range(since + 1..).map(|(_, u)| *u).collect();
        v.sort_unstable();
        Ok(Vanished::Uids(v))
    }

    /// Copies messages to another mailbox. Returns (source UID, new UID)
    /// pairs (for COPYUID) and the target's UIDVALIDITY.
    pub fn copy_messages(
        &self,
        user: &UserName,
        from: &MailboxName,
        uids: &[Uid],
        to: &MailboxName,
    ) -> Result<(u32, Vec<(Uid, Uid)>), Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let (src_folder, dst_folder) = (self.folder(user, from), self.folder(user, to));
        let (src, dst, sources) = {
            let model = lock(&self.inner.model);
            let src = model.mailbox_id(user, from)?;
            let dst = model.mailbox_id(user, to)?;
            let sources: Vec<(Uid, PathBuf, MessageMeta)> = unique(uids)
                .iter()
                .filter_map(|u| model.mailboxes[&src].messages.get(u))
                .map(|m| (m.meta.uid, src_folder.join(m.rel_path()), m.meta.clone()))
                .collect();
            (src, dst, sources)
        };
        let _ = src;
        let mut copies = Vec::new();
        for (uid, path, meta) in sources {
            let unique_id = self.new_unique_id(meta.internal_date);
            let tmp = dst_folder.join("tmp").join(&unique_id);
            let mut reader = self.inner.fs.open(&path)?;
            self.write_file(&tmp, &mut reader)?;
            let letters = meta.flags.maildir_letters();
            let msg = Msg {
                meta: MessageMeta { unique_id, ..meta },
                in_cur: !letters.is_empty(),
                file_flags: letters,
            };
            self.inner
                .fs
                .rename(&tmp, &dst_folder.join(msg.rel_path()))?;
            copies.push((uid, msg));
        }
        self.inner.fs.sync_dir(&dst_folder.join("new"))?;
        self.inner.fs.sync_dir(&dst_folder.join("cur"))?;
        let mut model = lock(&self.inner.model);
        let mb = model
            .mailboxes
            .get_mut(&dst)
            .ok_or(Error::NoSuchMailbox(to.to_string()))?;
        let (pairs, puts, changes) = add_messages(mb, copies);
        let validity = mb.uid_validity;
        drop(model);
        self.write_index(puts)?;
        self.notify(dst, changes);
        Ok((validity, pairs))
    }

    /// Moves messages to another mailbox (RFC 6851): their files are
    /// renamed, the source expunges them. Returns like `copy_messages`.
    pub fn move_messages(
        &self,
        user: &UserName,
        from: &MailboxName,
        uids: &[Uid],
        to: &MailboxName,
    ) -> Result<(u32, Vec<(Uid, Uid)>), Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let (src_folder, dst_folder) = (self.folder(user, from), self.folder(user, to));
        let mut model = lock(&self.inner.model);
        let src = model.mailbox_id(user, from)?;
        let dst = model.mailbox_id(user, to)?;
        if src == dst {
            return Ok((model.mailboxes[&src].uid_validity, Vec::new()));
        }
        let moving: Vec<Uid> = unique(uids)
            .into_iter()
            .filter(|u| model.mailboxes[&src].messages.contains_key(u))
            .collect();
        for uid in &moving {
            let m = &model.mailboxes[&src].messages[uid];
            self.inner.fs.rename(
                &src_folder.join(m.rel_path()),
                &dst_folder.join(m.rel_path()),
            )?;
        }
        for f in [&src_folder, &dst_folder] {
            self.inner.fs.sync_dir(&f.join("new"))?;
            self.inner.fs.sync_dir(&f.join("cur"))?;
        }
        let mut taken = Vec::new();
        let mut puts = Vec::new();
        let mut src_changes = Vec::new();
        {
            let mb = model
                .mailboxes
                .get_mut(&src)
                .ok_or(Error::NoSuchMailbox(from.to_string()))?;
            for uid in &moving {
                if let Some(m) = mb.messages.remove(uid) {
                    let modseq = mb.next_modseq();
                    mb.expunged.insert(modseq, *uid);
                    puts.push(Put::Msg(src, *uid, None));
                    puts.push(Put::Expunge(src, modseq, Some(*uid)));
                    src_changes.push(Change::Expunged { uid: *uid, modseq });
                    taken.push((*uid, m));
                }
            }
            puts.push(Put::Mailbox(src, Some(index::encode_mailbox(mb))));
        }
        let mb = model
            .mailboxes
            .get_mut(&dst)
            .ok_or(Error::NoSuchMailbox(to.to_string()))?;
        let (pairs, more, changes) = add_messages(mb, taken);
        let validity = mb.uid_validity;
        puts.extend(more);
        drop(model);
        self.write_index(puts)?;
        self.notify(src, src_changes);
        self.notify(dst, changes);
        Ok((validity, pairs))
    }

    // ------------------------------------------------------------- POP3

    /// A POP3 maildrop: the inbox as it is now. Other deliveries and
    /// changes after this do not show in it.
    pub fn pop3_snapshot(&self, user: &UserName) -> Result<Pop3Snapshot, Error> {
        let model = lock(&self.inner.model);
        let id = model.mailbox_id(user, &MailboxName::inbox())?;
        let mb = &model.mailboxes[&id];
        Ok(Pop3Snapshot {
            user: user.clone(),
            uid_validity: mb.uid_validity,
            messages: mb
                .messages
                .values()
                .map(|m| (m.meta.uid, m.meta.size_crlf, m.meta.unique_id.clone()))
                .collect(),
        })
    }

    /// Applies a POP3 session's deletions (at QUIT): the listed messages
    /// are expunged if they are still there. Returns those expunged.
    pub fn pop3_commit(&self, snapshot: &Pop3Snapshot, deleted: &[Uid]) -> Result<Vec<Uid>, Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let inbox = MailboxName::inbox();
        let folder = self.folder(&snapshot.user, &inbox);
        let mut model = lock(&self.inner.model);
        let (id, mb) = model.mailbox_mut(&snapshot.user, &inbox)?;
        if mb.uid_validity != snapshot.uid_validity {
            return Err(Error::UidValidityChanged);
        }
        let doomed: Vec<Uid> = unique(deleted)
            .into_iter()
            .filter(|u| mb.messages.contains_key(u))
            .collect();
        self.remove_messages(&folder, id, &doomed, model)
    }

    // -------------------------------------------------------- recovery

    /// After opening: forget half-written files in `tmp/`, drop index
    /// entries whose file is gone (an expunge that crashed after removing
    /// the file), adopt files the index does not know (a delivery or move
    /// that crashed before its index commit).
    fn reconcile(&self) -> Result<(), Error> {
        let _c = lock(&self.inner.commit);
        let mut model = lock(&self.inner.model);
        let ids: Vec<u64> = model.mailboxes.keys().copied().collect();
        let mut puts = Vec::new();
        for id in ids {
            let Some(mb) = model.mailboxes.get_mut(&id) else {
                continue;
            };
            let folder = self.folder(&mb.user, &mb.name);
            self.make_dirs(&folder)?;
            for f in self.inner.fs.read_dir(&folder.join("tmp"))? {
                let _ = self.inner.fs.remove_file(&folder.join("tmp").join(f));
            }
            let mut on_disk: HashMap<String, (bool, String)> = HashMap::new();
            for (sub, cur) in [("new", false), ("cur", true)] {
                for f in self.inner.fs.read_dir(&folder.join(sub))? {
                    let (unique, letters) = match f.split_once(":2,") {
                        Some((u, l)) => (u.to_owned(), l.to_owned()),
                        None => (f.split(':').next().unwrap_or(&f).to_owned(), String::new()),
                    };
                    on_disk.insert(unique, (cur, letters));
                }
            }
            let mut changed = false;
            let missing: Vec<Uid> = mb
                .messages
                .values()
                .filter(|m| !on_disk.contains_key(&m.meta.unique_id))
                .map(|m| m.meta.uid)
                .collect();
            for uid in missing {
                mb.messages.remove(&uid);
                let modseq = mb.next_modseq();
                mb.expunged.insert(modseq, uid);
                puts.push(Put::Msg(id, uid, None));
                puts.push(Put::Expunge(id, modseq, Some(uid)));
                changed = true;
            }
            let known: BTreeSet<String> = mb
                .messages
                .values()
                .map(|m| m.meta.unique_id.clone())
                .collect();
            let mut adopt: Vec<(String, bool, String)> = on_disk
                .into_iter()
                .filter(|(u, _)| !known.contains(u))
                .map(|(u, (c, l))| (u, c, l))
                .collect();
            adopt.sort();
            for (unique, in_cur, letters) in adopt {
                let rel = if in_cur {
                    format!("cur/{unique}:2,{letters}")
                } else {
                    format!("new/{unique}")
                };
                let mut reader = self.inner.fs.open(&folder.join(&rel))?;
                let mut count = CrlfSize::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    count.feed(&buf[..n]);
                }
                let (size, size_crlf) = (count.stored(), count.finish());
                let date = unique
                    .split('.')
                    .next()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                let uid = mb.uid_next;
                mb.uid_next += 1;
                let modseq = mb.next_modseq();
                let msg = Msg {
                    meta: MessageMeta {
                        uid,
                        modseq,
                        internal_date: date,
                        size,
                        size_crlf,
                        flags: Flags::from_maildir_letters(&letters),
                        unique_id: unique,
                    },
                    in_cur,
                    file_flags: letters,
                };
                puts.push(Put::Msg(id, uid, Some(index::encode_msg(&msg))));
                mb.messages.insert(uid, msg);
                changed = true;
            }
            if changed {
                puts.push(Put::Mailbox(id, Some(index::encode_mailbox(mb))));
            }
        }
        // The queue: half-written files go, files the index does not know
        // (a crash before the index commit: never acknowledged) go.
        let qdir = self.inner.root.join("queue");
        self.inner.fs.create_dir_all(&qdir.join("tmp"))?;
        for f in self.inner.fs.read_dir(&qdir.join("tmp"))? {
            let _ = self.inner.fs.remove_file(&qdir.join("tmp").join(f));
        }
        for f in self.inner.fs.read_dir(&qdir)? {
            let known = f
                .parse::<u64>()
                .is_ok_and(|id| model.queue.messages.contains_key(&id));
            if !known && f != "tmp" {
                let _ = self.inner.fs.remove_file(&qdir.join(f));
            }
        }
        drop(model);
        if !puts.is_empty() {
            self.write_index(puts)?;
        }
        Ok(())
    }
}

/// The UIDs in ascending order, each once.
fn unique(uids: &[Uid]) -> Vec<Uid> {
    let set: BTreeSet<Uid> = uids.iter().copied().collect();
    set.into_iter().collect()
}

fn new_mailbox(
    model: &mut Model,
    user: &UserName,
    name: MailboxName,
    role: Option<SpecialUse>,
) -> Mailbox {
    let id = model.next_mailbox_id;
    model.next_mailbox_id += 1;
    let uid_validity = model.next_uid_validity.max(1);
    model.next_uid_validity = uid_validity.wrapping_add(1).max(1);
    Mailbox {
        id,
        user: user.clone(),
        name,
        uid_validity,
        uid_next: 1,
        highest_modseq: 1,
        special_use: role,
        subscribed: true,
        log_floor: 0,
        messages: Default::default(),
        expunged: Default::default(),
    }
}

#[allow(clippy::type_complexity)]
fn add_messages(
    mb: &mut Mailbox,
    msgs: Vec<(Uid, Msg)>,
) -> (Vec<(Uid, Uid)>, Vec<Put>, Vec<Change>) {
    let mut pairs = Vec::new();
    let mut puts = Vec::new();
    let mut changes = Vec::new();
    for (old, mut msg) in msgs {
        let uid = mb.uid_next;
        mb.uid_next += 1;
        msg.meta.uid = uid;
        msg.meta.modseq = mb.next_modseq();
        puts.push(Put::Msg(mb.id, uid, Some(index::encode_msg(&msg))));
        changes.push(Change::Appended {
            uid,
            modseq: msg.meta.modseq,
        });
        pairs.push((old, uid));
        mb.messages.insert(uid, msg);
    }
    puts.push(Put::Mailbox(mb.id, Some(index::encode_mailbox(mb))));
    (pairs, puts, changes)
}

// ----------------------------------------------------------------- queue

use crate::queue::{
    self as q, Attempt, Envelope, Lease, QueueId, QueueRecipient, QueuedMessage, RecipientState,
    RetryPolicy,
};

impl Store {
    fn queue_path(&self, id: QueueId) -> PathBuf {
        self.inner.root.join("queue").join(id.to_string())
    }

    /// Puts a message in the outgoing queue, durably (file fsynced and
    /// renamed, directory fsynced, index committed) before returning.
    pub fn queue_add(
        &self,
        envelope: Envelope,
        message: &mut dyn Read,
        now: i64,
    ) -> Result<QueueId, Error> {
        self.check()?;
        if envelope.recipients.is_empty() {
            return Err(Error::InvalidName(
                "a queued message needs recipients".into(),
            ));
        }
        // The message is written and fsynced before the commit lock is
        // taken, so deliveries' group commits never wait behind it.
        let qdir = self.inner.root.join("queue");
        self.inner.fs.create_dir_all(&qdir.join("tmp"))?;
        let tmp = qdir.join("tmp").join(self.new_unique_id(now));
        let (size, _) = match self.write_file(&tmp, message) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.inner.fs.remove_file(&tmp);
                return Err(e);
            }
        };
        let _c = lock(&self.inner.commit);
        let id = {
            let mut model = lock(&self.inner.model);
            let id = model.queue.next_id.max(1);
            model.queue.next_id = id + 1;
            id
        };
        if let Err(e) = self.inner.fs.rename(&tmp, &self.queue_path(id)) {
            let _ = self.inner.fs.remove_file(&tmp);
            return Err(e.into());
        }
        self.inner.fs.sync_dir(&qdir)?;
        let m = QueuedMessage {
            id,
            from: envelope.from,
            envid: envelope.envid,
            ret: envelope.ret,
            arrival: now,
            size,
            recipients: envelope
                .recipients
                .into_iter()
                .map(|(address, notify, orcpt)| QueueRecipient {
                    address,
                    notify,
                    orcpt,
                    state: RecipientState::Pending,
                    attempts: 0,
                    next_attempt: now,
                    last_reply: None,
                    delay_notified: false,
                })
                .collect(),
        };
        let puts = vec![
            Put::Queue(id, Some(q::encode(&m))),
            Put::Meta("next_queue_id", id + 1),
        ];
        lock(&self.inner.model).queue.messages.insert(id, m);
        self.write_index(puts)?;
        Ok(id)
    }

    /// Messages with recipients due at `now`, leased to the caller for
    /// `lease_for` seconds: no other call gets them meanwhile.
    pub fn queue_due(&self, now: i64, lease_for: i64, max: usize) -> Vec<Lease> {
        lock(&self.inner.model).queue.due(now, lease_for, max)
    }

    /// A queued message's state.
    pub fn queue_get(&self, id: QueueId) -> Option<QueuedMessage> {
        lock(&self.inner.model).queue.messages.get(&id).cloned()
    }

    /// Every queued message.
    pub fn queue_list(&self) -> Vec<QueuedMessage> {
        lock(&self.inner.model)
            .queue
            .messages
            .values()
            .cloned()
            .collect()
    }

    /// Makes every waiting recipient due at `now` (`queue flush`).
    /// Returns how many recipients were made due.
    pub fn queue_flush(&self, now: i64) -> Result<usize, Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let (n, puts) = {
            let mut model = lock(&self.inner.model);
            let mut n = 0;
            let mut puts = Vec::new();
            for m in model.queue.messages.values_mut() {
                let mut changed = false;
                for r in &mut m.recipients {
                    if matches!(r.state, RecipientState::Pending | RecipientState::Deferred)
                        && r.next_attempt > now
                    {
                        r.next_attempt = now;
                        n += 1;
                        changed = true;
                    }
                }
                if changed {
                    puts.push(Put::Queue(m.id, Some(q::encode(m))));
                }
            }
            (n, puts)
        };
        if !puts.is_empty() {
            self.write_index(puts)?;
        }
        Ok(n)
    }

    /// Removes a queued message without delivering it or bouncing it
    /// (`queue delete`). A runner holding its lease finds it gone when it
    /// records its results. `Ok(false)`: no such message.
    pub fn queue_delete(&self, id: QueueId) -> Result<bool, Error> {
        self.check()?;
        let _c = lock(&self.inner.commit);
        let existed = {
            let mut model = lock(&self.inner.model);
            model.queue.leases.remove(&id);
            model.queue.messages.remove(&id).is_some()
        };
        if !existed {
            return Ok(false);
        }
        self.write_index(vec![Put::Queue(id, None)])?;
        let _ = self.inner.fs.remove_file(&self.queue_path(id));
        Ok(true)
    }

    /// A queued message's bytes.
    pub fn queue_open(&self, id: QueueId) -> Result<Box<dyn Read + Send>, Error> {
        Ok(self.inner.fs.open(&self.queue_path(id))?)
    }

    /// Records the outcome of an attempt for each recipient tried,
    /// schedules retries, fails recipients whose time ran out, queues a
    /// bounce (RFC 3464, from `<>`) for newly failed recipients that asked
    /// for one — never for a message whose sender was `<>` — and removes
    /// the message once every recipient is done. Returns the bounce's
    /// queue id, if one was made.
    pub fn queue_record(
        &self,
        id: QueueId,
        results: &[(usize, Attempt)],
        now: i64,
        policy: &RetryPolicy,
        reporting_mta: &str,
    ) -> Result<Option<QueueId>, Error> {
        let mut r =
            self.queue_record_many(&[(id, results.to_vec())], now, policy, reporting_mta)?;
        match r.pop() {
            Some(Err(e)) => Err(e),
            Some(Ok(b)) => Ok(b),
            None => Err(Error::NoSuchMessage(0)),
        }
    }

    /// [`Store::queue_record`] for many messages with one index commit
    /// (one fsync), as a queue runner finishing many deliveries at once
    /// wants. One result per message, in order; a message no longer
    /// queued (deleted meanwhile) gets `Err(NoSuchMessage)` and the others
    /// are recorded.
    pub fn queue_record_many(
        &self,
        batch: &[(QueueId, Vec<(usize, Attempt)>)],
        now: i64,
        policy: &RetryPolicy,
        reporting_mta: &str,
    ) -> Result<Vec<Result<Option<QueueId>, Error>>, Error> {
        self.check()?;
        let mut updates = Vec::new();
        let mut out = Vec::with_capacity(batch.len());
        for (id, results) in batch {
            let updated = {
                let mut model = lock(&self.inner.model);
                model.queue.leases.remove(id);
                match model.queue.messages.get_mut(id) {
                    None => None,
                    Some(m) => {
                        let (failed, delayed) = apply_results(m, results, now, policy);
                        Some((m.clone(), failed, delayed))
                    }
                }
            };
            let Some((updated, failed, delayed)) = updated else {
                out.push(Err(Error::NoSuchMessage(0)));
                continue;
            };
            let wants_bounce: Vec<(usize, bool)> = failed
                .into_iter()
                .filter(|(i, _)| updated.recipients[*i].notify.failure)
                .collect();
            let mut bounce_id = None;
            if !wants_bounce.is_empty() && !updated.from.is_empty() {
                let mut original = self.queue_open(*id)?;
                let dsn =
                    q::build_bounce(&updated, &wants_bounce, &mut original, reporting_mta, now)?;
                let env = Envelope {
                    from: String::new(),
                    recipients: vec![(updated.from.clone(), q::Notify::default(), None)],
                    envid: None,
                    ret: None,
                };
                bounce_id = Some(self.queue_add(env, &mut &dsn[..], now)?);
            }
            if !delayed.is_empty() && !updated.from.is_empty() {
                let entries: Vec<(usize, q::Action)> =
                    delayed.iter().map(|&i| (i, q::Action::Delayed)).collect();
                let mut original = self.queue_open(*id)?;
                let dsn = q::build_report(&updated, &entries, &mut original, reporting_mta, now)?;
                let never = q::Notify {
                    success: false,
                    failure: false,
                    delay: false,
                };
                let env = Envelope {
                    from: String::new(),
                    recipients: vec![(updated.from.clone(), never, None)],
                    envid: None,
                    ret: None,
                };
                // Queued like a bounce, but not one: the result names only
                // the failure report.
                self.queue_add(env, &mut &dsn[..], now)?;
            }
            out.push(Ok(bounce_id));
            updates.push(updated);
        }
        let _c = lock(&self.inner.commit);
        let mut puts = Vec::with_capacity(updates.len());
        let mut finished = Vec::new();
        {
            let mut model = lock(&self.inner.model);
            for updated in updates {
                let id = updated.id;
                if !model.queue.messages.contains_key(&id) {
                    // Deleted while the bounce was made.
                    continue;
                }
                if updated.is_finished() {
                    model.queue.messages.remove(&id);
                    puts.push(Put::Queue(id, None));
                    finished.push(id);
                } else {
                    puts.push(Put::Queue(id, Some(q::encode(&updated))));
                    model.queue.messages.insert(id, updated);
                }
            }
        }
        if !puts.is_empty() {
            self.write_index(puts)?;
        }
        for id in finished {
            let _ = self.inner.fs.remove_file(&self.queue_path(id));
        }
        Ok(out)
    }
}

/// Applies one attempt's outcomes to a queued message; returns the
/// recipients that failed now (with whether their time ran out), and those
/// due a "delayed" report.
fn apply_results(
    m: &mut QueuedMessage,
    results: &[(usize, Attempt)],
    now: i64,
    policy: &RetryPolicy,
) -> (Vec<(usize, bool)>, Vec<usize>) {
    let mut failed = Vec::new();
    let mut delayed = Vec::new();
    for (i, outcome) in results {
        let Some(r) = m.recipients.get_mut(*i) else {
            continue;
        };
        if matches!(r.state, RecipientState::Delivered | RecipientState::Failed) {
            continue;
        }
        r.attempts += 1;
        match outcome {
            Attempt::Delivered(reply) => {
                r.state = RecipientState::Delivered;
                r.last_reply = Some(reply.clone());
            }
            Attempt::Permanent(reply) => {
                r.state = RecipientState::Failed;
                r.last_reply = Some(reply.clone());
                failed.push((*i, false));
            }
            Attempt::Transient(reply) => {
                r.last_reply = Some(reply.clone());
                let next = now + policy.delay(r.attempts);
                if next >= m.arrival + policy.give_up_after {
                    r.state = RecipientState::Failed;
                    failed.push((*i, true));
                } else {
                    r.state = RecipientState::Deferred;
                    r.next_attempt = next;
                    if r.notify.delay
                        && !r.delay_notified
                        && policy.delay_warning > 0
                        && now - m.arrival >= policy.delay_warning
                    {
                        r.delay_notified = true;
                        delayed.push(*i);
                    }
                }
            }
        }
    }
    (failed, delayed)
}

/// A message being received, written to the store's spool folder as its
/// pieces arrive, so a message of any size costs a small buffer of memory.
/// Nothing of it is visible until [`Incoming::deliver`]; dropped without
/// delivering, it is removed.
///
/// ```
/// use mailstore::{Store, UserName, MailboxName};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path()).unwrap();
/// let (bob, eve) = (UserName::new("bob").unwrap(), UserName::new("eve").unwrap());
/// store.create_user(&bob).unwrap();
/// store.create_user(&eve).unwrap();
/// let mut m = store.incoming(1_700_000_000).unwrap();
/// m.write(b"Subject: hi\r\n\r\n").unwrap();
/// m.write(b"Hello\r\n").unwrap();
/// let results = m.deliver(b"Return-Path: <a@b.example>\r\n", &[bob.clone(), eve]);
/// assert!(results.iter().all(|r| r.is_ok()));
/// let list = store.messages(&bob, &MailboxName::inbox()).unwrap();
/// assert_eq!(list[0].size, 50); // prefix and both pieces, in one file
/// ```
pub struct Incoming {
    store: Store,
    path: PathBuf,
    file: Option<Box<dyn crate::fs::FsFile>>,
    size: u64,
    internal_date: i64,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Store {
    fn spool(&self) -> PathBuf {
        self.inner.root.join("spool")
    }

    /// Starts receiving a message in pieces (see [`Incoming`]).
    pub fn incoming(&self, internal_date: i64) -> Result<Incoming, Error> {
        self.check()?;
        let dir = self.spool();
        self.inner.fs.create_dir_all(&dir)?;
        let path = dir.join(self.new_unique_id(internal_date));
        let file = self.inner.fs.create_new(&path)?;
        Ok(Incoming {
            store: self.clone(),
            path,
            file: Some(file),
            size: 0,
            internal_date,
        })
    }

    /// Removes what a crash left in the spool (messages never delivered,
    /// so never acknowledged).
    pub fn clear_spool(&self) -> Result<usize, Error> {
        let dir = self.spool();
        let names = self.inner.fs.read_dir(&dir)?;
        for n in &names {
            self.inner.fs.remove_file(&dir.join(n))?;
        }
        Ok(names.len())
    }
}

impl Incoming {
    /// Appends the next piece.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let Some(file) = self.file.as_mut() else {
            return Err(Error::Io(io::Error::other("message already finished")));
        };
        file.write_all(chunk)?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Octets written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The whole message as delivered: `prefix` (trace headers), then what
    /// was written. Call after the last [`Incoming::write`].
    pub fn reader(&mut self, prefix: &[u8]) -> Result<Box<dyn Read + Send>, Error> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        let body = self.store.inner.fs.open(&self.path)?;
        Ok(Box::new(io::Cursor::new(prefix.to_vec()).chain(body)))
    }

    /// Delivers `prefix` + the message to each user's INBOX, with one
    /// durable commit for all; each user's result on its own.
    pub fn deliver(mut self, prefix: &[u8], users: &[UserName]) -> Vec<Result<Delivery, Error>> {
        if let Some(mut f) = self.file.take()
            && let Err(e) = f.flush()
        {
            let msg = e.to_string();
            return users
                .iter()
                .map(|_| Err(Error::Io(io::Error::other(msg.clone()))))
                .collect();
        }
        let targets: Vec<(UserName, MailboxName)> = users
            .iter()
            .map(|u| (u.clone(), MailboxName::inbox()))
            .collect();
        let (store, path) = (self.store.clone(), self.path.clone());
        let mut open = || -> Result<Box<dyn Read + Send>, Error> {
            let body = store.inner.fs.open(&path)?;
            Ok(Box::new(io::Cursor::new(prefix.to_vec()).chain(body)))
        };
        self.store
            .append_many(&targets, &mut open, self.internal_date, &Flags::new())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.file = None;
        let _ = self.store.inner.fs.remove_file(&self.path);
    }
}

/// The result of a delivery the group commit did not report (a bug, never
/// expected): an index error rather than a panic.
fn lost_in_commit() -> Result<Delivery, Error> {
    Err(Error::Index("delivery lost in group commit".into()))
}
