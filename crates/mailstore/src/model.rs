//! The metadata the store keeps in memory, mirrored by the index.

use std::collections::{BTreeMap, HashMap};

use crate::names::{MailboxName, UserName};
use crate::types::{MailboxInfo, MessageMeta, ModSeq, SpecialUse, SystemFlag, Uid};

#[derive(Debug, Default)]
pub(crate) struct UserEntry {
    pub mailboxes: BTreeMap<MailboxName, u64>,
    /// Subscribed names that are no mailbox (deleted, or never created).
    pub orphans: std::collections::BTreeSet<MailboxName>,
}

#[derive(Debug)]
pub(crate) struct Msg {
    pub meta: MessageMeta,
    /// Whether the file is in `cur/` (else `new/`).
    pub in_cur: bool,
    /// The Maildir letters in the file name (when in `cur/`).
    pub file_flags: String,
}

impl Msg {
    /// The file name relative to the mailbox folder.
    pub fn rel_path(&self) -> String {
        if self.in_cur {
            format!("cur/{}:2,{}", self.meta.unique_id, self.file_flags)
        } else {
            format!("new/{}", self.meta.unique_id)
        }
    }
}

#[derive(Debug)]
pub(crate) struct Mailbox {
    pub id: u64,
    pub user: UserName,
    pub name: MailboxName,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
    /// Expunges below this MODSEQ were trimmed from the log.
    pub log_floor: ModSeq,
    pub messages: BTreeMap<Uid, Msg>,
    /// Expunge log: MODSEQ of the expunge → UID.
    pub expunged: BTreeMap<ModSeq, Uid>,
}

impl Mailbox {
    pub fn next_modseq(&mut self) -> ModSeq {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    pub fn info(&self) -> MailboxInfo {
        MailboxInfo {
            id: self.id,
            name: self.name.clone(),
            uid_validity: self.uid_validity,
            uid_next: self.uid_next,
            highest_modseq: self.highest_modseq,
            exists: self.messages.len() as u32,
            unseen: self
                .messages
                .values()
                .filter(|m| !m.meta.flags.contains(SystemFlag::Seen))
                .count() as u32,
            special_use: self.special_use,
            subscribed: self.subscribed,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Model {
    pub users: BTreeMap<UserName, UserEntry>,
    pub mailboxes: HashMap<u64, Mailbox>,
    pub next_mailbox_id: u64,
    pub next_uid_validity: u32,
    pub queue: crate::queue::QueueModel,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            users: BTreeMap::new(),
            mailboxes: HashMap::new(),
            next_mailbox_id: 1,
            next_uid_validity: 1,
            queue: Default::default(),
        }
    }
}

impl Model {
    pub fn insert_mailbox(&mut self, mb: Mailbox) {
        self.users
            .entry(mb.user.clone())
            .or_default()
            .mailboxes
            .insert(mb.name.clone(), mb.id);
        self.mailboxes.insert(mb.id, mb);
    }

    /// The user's mailboxes, by name.
    pub fn user_mailboxes(
        &self,
        user: &UserName,
    ) -> Result<impl Iterator<Item = &Mailbox>, crate::Error> {
        let entry = self
            .users
            .get(user)
            .ok_or_else(|| crate::Error::NoSuchUser(user.to_string()))?;
        Ok(entry
            .mailboxes
            .values()
            .filter_map(|id| self.mailboxes.get(id)))
    }

    pub fn mailbox_id(&self, user: &UserName, name: &MailboxName) -> Result<u64, crate::Error> {
        let u = self
            .users
            .get(user)
            .ok_or_else(|| crate::Error::NoSuchUser(user.to_string()))?;
        u.mailboxes
            .get(name)
            .copied()
            .ok_or_else(|| crate::Error::NoSuchMailbox(name.to_string()))
    }

    /// The id and the state of `user`'s mailbox `name`.
    pub fn mailbox_mut(
        &mut self,
        user: &UserName,
        name: &MailboxName,
    ) -> Result<(u64, &mut Mailbox), crate::Error> {
        let id = self.mailbox_id(user, name)?;
        let mb = self
            .mailboxes
            .get_mut(&id)
            .ok_or_else(|| crate::Error::NoSuchMailbox(name.to_string()))?;
        Ok((id, mb))
    }
}
