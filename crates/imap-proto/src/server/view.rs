//! The selected mailbox as one session sees it: which message has which
//! sequence number, and the changes not yet told to the client.
//!
//! Sequence numbers are positions in a sorted UID vector (the number is
//! the index plus one), so a UID maps to its number by binary search and a number to its
//! UID by indexing. Changes may be pushed at any time; they reach the client
//! only when [`View::flush`] is called, under the rules of RFC 3501 §7.4.1
//! and RFC 9051 §7.5.1: EXPUNGE is never sent during a FETCH, STORE or
//! SEARCH that uses sequence numbers (the numbers the client is using would
//! shift under it), flag updates go first, then expunges, then the new
//! EXISTS.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Flag, Response, SeqNumber, SequenceSet};

/// The selected-mailbox view.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// UIDs the client knows, ascending; expunged-but-unannounced ones
    /// included (they still hold their number).
    uids: Vec<u32>,
    /// Arrived, not yet announced, ascending and above every known UID.
    new: Vec<u32>,
    /// Known UIDs that are gone, not yet announced.
    expunged: BTreeSet<u32>,
    /// Flag changes not yet announced, with their MODSEQ when known.
    flags: BTreeMap<u32, (Vec<Flag>, Option<u64>)>,
    /// Messages that are `\Recent` in this session (IMAP4rev1).
    recent: BTreeSet<u32>,
}

/// How [`View::flush`] words the changes: what the client enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Announce {
    /// Flag updates carry the UID (UID commands, CONDSTORE).
    pub uid: bool,
    /// Flag updates carry their MODSEQ (CONDSTORE, RFC 7162 §3.1.4).
    pub modseq: bool,
    /// Expunges are told as `VANISHED` UIDs (QRESYNC, RFC 7162 §3.2.10).
    pub vanished: bool,
}

/// A message addressed by a command: its sequence number and UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Message {
    /// Sequence number (1-based).
    pub seq: u32,
    /// UID.
    pub uid: u32,
}

impl View {
    /// A view of a mailbox holding these UIDs (any order; duplicates and 0
    /// are dropped).
    pub fn new(mut uids: Vec<u32>) -> View {
        uids.retain(|&u| u != 0);
        uids.sort_unstable();
        uids.dedup();
        View {
            uids,
            ..View::default()
        }
    }

    /// Messages the client was told of (the last EXISTS).
    pub fn exists(&self) -> u32 {
        u32::try_from(self.uids.len()).unwrap_or(u32::MAX)
    }

    /// The UIDs the client knows, ascending.
    pub fn uids(&self) -> &[u32] {
        &self.uids
    }

    /// The highest UID the client knows (0 when empty).
    pub fn last_uid(&self) -> u32 {
        self.uids.last().copied().unwrap_or(0)
    }

    /// The sequence number of `uid`, if the client knows it.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.uids
            .binary_search(&uid)
            .ok()
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// The UID at sequence number `seq`.
    pub fn uid_at(&self, seq: u32) -> Option<u32> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.uids.get(i).copied()
    }

    /// Whether `uid` was expunged but the client was not told yet
    /// (a FETCH of it gets `NO [EXPUNGEISSUED]`-style treatment).
    pub fn is_expunged(&self, uid: u32) -> bool {
        self.expunged.contains(&uid)
    }

    /// The messages a command's set names, ascending by number. For
    /// sequence numbers, `*` is the last message and numbers past the end
    /// match nothing. For UIDs (`uid`), `*` is the highest UID, and a range
    /// `n:*` always includes the last message even when `n` is above it
    /// (RFC 9051 §6.4.9). Work is proportional to the answer, not to the
    /// mailbox.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<Message> {
        let n = self.uids.len();
        let mut idx: Vec<usize> = Vec::new();
        let largest = if uid { self.last_uid() } else { self.exists() };
        if n == 0 {
            return Vec::new();
        }
        let val = |x: &SeqNumber| match x {
            SeqNumber::Value(v) => *v,
            SeqNumber::Largest => largest,
        };
        for (a, b) in set.ranges() {
            let (lo, hi) = {
                let (a, b) = (val(a), val(b));
                (a.min(b), a.max(b))
            };
            if uid {
                let start = self.uids.partition_point(|&u| u < lo);
                let end = self.uids.partition_point(|&u| u <= hi);
                idx.extend(start..end);
            } else {
                let start = usize::try_from(lo).unwrap_or(usize::MAX).saturating_sub(1);
                let end = usize::try_from(hi).unwrap_or(usize::MAX).min(n);
                if start < end {
                    idx.extend(start..end);
                }
            }
        }
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| Message {
                seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                uid: self.uids[i],
            })
            .collect()
    }

    /// A message arrived (UIDs above every known one; others are ignored);
    /// `recent`: it is `\Recent` in this session.
    pub fn push_new(&mut self, uid: u32, recent: bool) {
        let above = self.new.last().copied().unwrap_or(self.last_uid());
        if uid > above {
            self.new.push(uid);
            if recent {
                self.recent.insert(uid);
            }
        }
    }

    /// Marks messages `\Recent` in this session (at SELECT).
    pub fn set_recent(&mut self, uids: &[u32]) {
        self.recent = uids.iter().copied().collect();
    }

    /// Messages `\Recent` in this session that the client knows.
    pub fn recent(&self) -> u32 {
        let known = self
            .recent
            .iter()
            .filter(|u| self.seq_of(**u).is_some())
            .count();
        u32::try_from(known).unwrap_or(u32::MAX)
    }

    /// A message's flags changed (to `flags`, at `modseq` when the store
    /// keeps MODSEQs). A message not announced yet needs no update: the
    /// client fetches its flags after the EXISTS.
    pub fn push_flags(&mut self, uid: u32, flags: Vec<Flag>, modseq: Option<u64>) {
        if self.seq_of(uid).is_some() && !self.expunged.contains(&uid) {
            self.flags.insert(uid, (flags, modseq));
        }
    }

    /// A message was expunged.
    pub fn push_expunge(&mut self, uid: u32) {
        if self.seq_of(uid).is_some() {
            self.expunged.insert(uid);
            self.flags.remove(&uid);
        } else if let Ok(i) = self.new.binary_search(&uid) {
            self.new.remove(i);
        }
    }

    /// Whether `uid` arrived and waits to be announced (the next EXISTS).
    pub fn is_arriving(&self, uid: u32) -> bool {
        self.new.binary_search(&uid).is_ok()
    }

    /// Known UIDs that are gone, not yet announced, ascending.
    pub fn pending_expunges(&self) -> Vec<u32> {
        self.expunged.iter().copied().collect()
    }

    /// Whether anything waits to be told.
    pub fn has_pending(&self) -> bool {
        !self.new.is_empty() || !self.expunged.is_empty() || !self.flags.is_empty()
    }

    /// Drops a pending flag update (the command's own FETCH reply carries
    /// the flags already).
    pub fn forget_flags(&mut self, uid: u32) {
        self.flags.remove(&uid);
    }

    /// Removes messages the session itself reports as expunged (EXPUNGE,
    /// MOVE): returns the sequence numbers to send, in the order to send
    /// them (each number valid after the previous EXPUNGE).
    pub fn expunge_now(&mut self, uids: &[u32]) -> Vec<u32> {
        let mut gone: Vec<u32> = uids.to_vec();
        gone.sort_unstable();
        gone.dedup();
        let mut out = Vec::new();
        // Highest first: a number sent stays valid for the ones after it.
        for &uid in gone.iter().rev() {
            if let Ok(i) = self.uids.binary_search(&uid) {
                self.expunged.remove(&uid);
                self.flags.remove(&uid);
                out.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
        }
        // One pass over the vectors, however many went.
        let gone_set = |u: &u32| gone.binary_search(u).is_ok();
        self.uids.retain(|u| !gone_set(u));
        self.new.retain(|u| !gone_set(u));
        self.recent.retain(|u| !gone_set(u));
        out
    }

    /// The untagged responses for what changed, in the order RFC 9051
    /// §7.5.1 wants: flag FETCHes, then EXPUNGEs or one VANISHED (only when
    /// `allow_expunge`), then EXISTS, worded as `how` says.
    pub fn flush(&mut self, allow_expunge: bool, how: Announce) -> Vec<Response<'static>> {
        let mut out = Vec::new();
        for (uid, (flags, modseq)) in std::mem::take(&mut self.flags) {
            if let Some(seq) = self.seq_of(uid) {
                let mut values = vec![crate::FetchValue::Flags(flags)];
                if how.uid {
                    values.push(crate::FetchValue::Uid(uid));
                }
                if let (true, Some(m)) = (how.modseq, modseq) {
                    values.push(crate::FetchValue::ModSeq(m));
                }
                out.push(Response::Fetch(seq, values));
            }
        }
        if allow_expunge && !self.expunged.is_empty() {
            let gone: Vec<u32> = std::mem::take(&mut self.expunged).into_iter().collect();
            let seqs = self.expunge_now(&gone);
            if how.vanished {
                out.extend(vanished(&gone, false));
            } else {
                out.extend(seqs.into_iter().map(Response::Expunge));
            }
        }
        if !self.new.is_empty() {
            self.uids.append(&mut self.new);
            out.push(Response::Exists(self.exists()));
            out.push(Response::Recent(self.recent()));
        }
        out
    }
}

/// `* VANISHED [(EARLIER)] uids`, or nothing for no UIDs.
pub(crate) fn vanished(uids: &[u32], earlier: bool) -> Option<Response<'static>> {
    SequenceSet::from_numbers(uids).map(|uids| Response::Vanished { earlier, uids })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::parse(s.as_bytes()).unwrap()
    }

    fn uids(m: &[Message]) -> Vec<u32> {
        m.iter().map(|m| m.uid).collect()
    }

    #[test]
    fn sequence_numbers_are_positions_and_uids_are_found_by_search() {
        let v = View::new(vec![10, 3, 7, 3, 0]);
        assert_eq!(v.uids(), &[3, 7, 10]);
        assert_eq!(v.seq_of(7), Some(2));
        assert_eq!(v.seq_of(8), None);
        assert_eq!(v.uid_at(3), Some(10));
        assert_eq!(v.uid_at(0), None);
        assert_eq!(v.uid_at(4), None);
    }

    #[test]
    fn sets_resolve_by_number_and_by_uid() {
        let v = View::new(vec![3, 7, 10, 20]);
        assert_eq!(uids(&v.resolve(&set("2:*"), false)), vec![7, 10, 20]);
        assert_eq!(uids(&v.resolve(&set("5:9"), false)), Vec::<u32>::new());
        assert_eq!(uids(&v.resolve(&set("4,1,1"), false)), vec![3, 20]);
        assert_eq!(uids(&v.resolve(&set("5:10"), true)), vec![7, 10]);
        // n:* includes the last message even when n is above it.
        assert_eq!(uids(&v.resolve(&set("100:*"), true)), vec![20]);
        assert_eq!(
            uids(&v.resolve(&set("4294967295"), true)),
            Vec::<u32>::new()
        );
        assert_eq!(
            v.resolve(&set("2"), false),
            vec![Message { seq: 2, uid: 7 }]
        );
        assert!(View::new(vec![]).resolve(&set("1:*"), false).is_empty());
    }

    #[test]
    fn changes_are_flushed_flags_then_expunges_then_exists() {
        let mut v = View::new(vec![1, 2, 3, 4]);
        v.push_new(5, false);
        v.push_expunge(2);
        v.push_expunge(4);
        v.push_flags(3, vec![Flag::Seen], None);
        v.push_flags(2, vec![Flag::Seen], Some(9)); // expunged: no flag update
        // During a non-UID FETCH no EXPUNGE, but EXISTS counts the
        // expunged messages still holding their numbers.
        let out = v.flush(false, Announce::default());
        assert_eq!(
            out,
            vec![
                Response::Fetch(3, vec![crate::FetchValue::Flags(vec![Flag::Seen])]),
                Response::Exists(5),
                Response::Recent(0),
            ]
        );
        assert!(v.is_expunged(2));
        assert_eq!(v.seq_of(4), Some(4));
        let out = v.flush(true, Announce::default());
        assert_eq!(out, vec![Response::Expunge(4), Response::Expunge(2)]);
        assert_eq!(v.uids(), &[1, 3, 5]);
        assert!(!v.has_pending());
    }

    #[test]
    fn condstore_and_qresync_word_the_changes_with_uid_modseq_and_vanished() {
        let mut v = View::new(vec![1, 2, 3, 4, 5]);
        v.push_flags(3, vec![Flag::Seen], Some(77));
        v.push_flags(4, vec![], None);
        for u in [2, 4, 5] {
            v.push_expunge(u);
        }
        let how = Announce {
            uid: true,
            modseq: true,
            vanished: true,
        };
        assert_eq!(
            v.flush(true, how),
            vec![
                Response::Fetch(
                    3,
                    vec![
                        crate::FetchValue::Flags(vec![Flag::Seen]),
                        crate::FetchValue::Uid(3),
                        crate::FetchValue::ModSeq(77),
                    ]
                ),
                Response::Vanished {
                    earlier: false,
                    uids: SequenceSet::parse(b"2,4:5").unwrap(),
                },
            ]
        );
        assert_eq!(v.uids(), &[1, 3]);
    }

    #[test]
    fn a_message_expunged_before_it_was_announced_never_shows() {
        let mut v = View::new(vec![1]);
        v.push_new(2, false);
        v.push_new(3, false);
        v.push_expunge(2);
        v.push_new(2, false); // not above the last: ignored
        assert_eq!(
            v.flush(true, Announce::default()),
            vec![Response::Exists(2), Response::Recent(0)]
        );
        assert_eq!(v.uids(), &[1, 3]);
    }

    proptest::proptest! {
        /// Whatever changes arrive and whenever the client is told, the
        /// client's picture (built only from the EXISTS and EXPUNGE
        /// responses it received) matches the view: the same UIDs at the
        /// same sequence numbers, and no message announced twice.
        #[test]
        fn the_client_picture_always_matches_the_view(
            start in proptest::collection::btree_set(1u32..50, 0..20),
            ops in proptest::collection::vec((0u8..4, 1u32..80), 0..60),
        ) {
            let start: Vec<u32> = start.into_iter().collect();
            let mut v = View::new(start.clone());
            // The client knows positions; it learns new UIDs by fetching
            // them, modelled by reading them from the view after EXISTS.
            let mut client: Vec<u32> = start;
            let mut all: Vec<u32> = client.clone();
            for (op, x) in ops {
                match op {
                    0 => {
                        let uid = all.last().copied().unwrap_or(0) + x;
                        all.push(uid);
                        v.push_new(uid, x % 2 == 0);
                    }
                    1 => {
                        if !all.is_empty() {
                            let uid = all[(x as usize) % all.len()];
                            v.push_expunge(uid);
                        }
                    }
                    2 | 3 => {
                        let allow = op == 3;
                        for r in v.flush(allow, Announce::default()) {
                            match r {
                                Response::Expunge(seq) => {
                                    proptest::prop_assert!(seq >= 1 && (seq as usize) <= client.len());
                                    client.remove(seq as usize - 1);
                                }
                                Response::Exists(n) => {
                                    proptest::prop_assert!(n as usize >= client.len());
                                    let known = client.len();
                                    client.extend_from_slice(&v.uids()[known..]);
                                }
                                _ => {}
                            }
                        }
                        if !allow {
                            // Without EXPUNGE the numbers stay put.
                            proptest::prop_assert_eq!(client.len(), v.uids().len());
                        }
                    }
                    _ => unreachable!(),
                }
                proptest::prop_assert_eq!(&client[..], v.uids());
                for (i, u) in client.iter().enumerate() {
                    proptest::prop_assert_eq!(v.seq_of(*u), Some(i as u32 + 1));
                }
            }
        }
    }

    #[test]
    fn expunges_are_numbered_as_the_client_renumbers() {
        let mut v = View::new((1..=10).collect());
        // The client applies each EXPUNGE in turn; simulate it.
        let mut client: Vec<u32> = (1..=10).collect();
        for seq in v.expunge_now(&[2, 3, 9, 10, 42]) {
            client.remove(seq as usize - 1);
        }
        assert_eq!(client, v.uids());
        assert_eq!(client, vec![1, 4, 5, 6, 7, 8]);
    }
}
