//! The IMAP server side as a sans-IO state machine, with the session API
//! every mailkit session shares ([`session_core::Session`]).
//!
//! The session owns the protocol: states (not authenticated,
//! authenticated, selected, logout), pipelined commands executed strictly
//! in order, literals (a synchronising literal gets its `+` from the
//! session, an APPEND message only after the application accepted it, and
//! then streams out in chunks), STARTTLS as a clean cut, LOGIN and
//! AUTHENTICATE through the `sasl` crate, IDLE with keepalives, and the
//! selected mailbox's [`View`] (sequence numbers, and changes announced by
//! the RFC's rules). The application owns the mail: each command that needs
//! the store is an [`Event::Request`] with a [`Token`], answered on the
//! session.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use imap_proto::server::{Config, Event, LoginCheck, Output, Request, Selected, Session};
//!
//! let mut config = Config::new("mx.example.org");
//! config.allow_plaintext_auth = true; // a test over loopback
//! let now = Instant::now();
//! let mut s = Session::new(Arc::new(config), now, [7; 16]);
//! s.handle_input(now, b"a LOGIN alice secret\r\nb SELECT INBOX\r\n");
//! let mut wire = Vec::new();
//! while let Some(out) = s.poll_output() {
//!     match out {
//!         Output::Transmit(bytes) => wire.extend_from_slice(&bytes),
//!         Output::Event(Event::Login { token, check: LoginCheck::Password(p), .. }) => {
//!             assert_eq!(p.expose(), "secret");
//!             s.accept_login(token).unwrap();
//!         }
//!         Output::Event(Event::Request { token, request: Request::Select { .. } }) => {
//!             s.selected(token, Selected::new(42, 4, vec![1, 2, 3])).unwrap();
//!         }
//!         other => panic!("{other:?}"),
//!     }
//! }
//! let wire = String::from_utf8(wire).unwrap();
//! assert!(wire.contains("a OK [CAPABILITY IMAP4rev1"));
//! assert!(wire.contains("* 3 EXISTS\r\n"));
//! assert!(wire.contains("b OK [READ-WRITE] SELECT completed\r\n"));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sasl::server::{Credentials, ServerExchange, ServerStep};
use sasl::{Identity, Mechanism, ScramCredentials};
use session_core::{Consumed, Decisions, Inbox};

pub use session_core::{AnswerError, ApiMisuse, Token};

use crate::{
    Code, Command, CommandBody, FetchValue, Flag, Mailbox, NamespaceEntry, Response, SearchReturn,
    SeqNumber, SequenceSet, StatusKind, Tag,
};

mod config;
mod events;
mod reader;
mod view;

pub use config::{Config, Limits, Timeouts};
pub use events::{Completion, Event, FlagState, LoginCheck, Output, Request, Selected};
pub use view::{Announce, Message, View};

use reader::{Item, Reader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotAuthenticated,
    Authenticated,
    Selected { read_only: bool },
    AwaitTls,
    Closed,
}

/// What a pending request was, to check answers and apply the flush rules.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Select {
        read_only: bool,
        qresync: Option<crate::QResync>,
    },
    Fetch {
        uid: bool,
        expunge_issued: bool,
        /// `VANISHED` asked (QRESYNC): the UID set of the command.
        vanished: Option<SequenceSet>,
    },
    Store {
        uid: bool,
        silent: bool,
    },
    Search {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        /// A MODSEQ key was used: the answer carries the highest MODSEQ.
        modseq: bool,
        /// `RETURN (UPDATE)`: the keys, kept with the result (RFC 5267).
        update: Option<Vec<crate::SearchKey<'static>>>,
    },
    Sort {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
    },
    Thread {
        uid: bool,
    },
    Copy {
        moving: bool,
    },
    Expunge,
    Close,
    Other,
}

#[derive(Debug)]
enum Pending {
    Login(Tag, String),
    Scram(Tag, Box<ServerExchange>),
    Request(Tag, Kind),
    Append(Tag),
    /// A CATENATE message of an APPEND (RFC 4469).
    Catenate(Tag),
    AppendCommit(Tag),
}

/// What of an APPEND waits its turn, in order: CATENATE messages the
/// application builds from their parts, and the literal message the reader
/// stopped at.
#[derive(Debug)]
enum AppendPart {
    Catenate(crate::AppendMessage<'static>),
    Literal {
        flags: Vec<Flag>,
        date: Option<String>,
        size: u64,
    },
}

/// A SEARCH kept current (RFC 5267 `RETURN (UPDATE)`): the client is
/// told, with `ESEARCH … ADDTO`/`REMOVEFROM`, what enters and leaves it.
#[derive(Debug)]
struct LiveSearch {
    tag: String,
    uid: bool,
    keys: Vec<crate::SearchKey<'static>>,
    /// UIDs in the result as the client knows it.
    result: std::collections::BTreeSet<u32>,
    /// Re-evaluated by the application, not told yet: UID → matches.
    changes: std::collections::BTreeMap<u32, bool>,
}

/// Live searches one session keeps at most (`OK [NOUPDATE]` past it).
pub const MAX_LIVE_SEARCHES: usize = 8;

/// An APPEND under way.
#[derive(Debug)]
struct Append {
    tag: Tag,
    mailbox: Mailbox,
    /// Messages announced to the application so far (the next one's index).
    issued: usize,
    /// The whole command was read (only CATENATE messages): the APPEND
    /// commits after its last one, not at the reader's end.
    whole: bool,
    /// What is still to announce.
    parts: VecDeque<AppendPart>,
    /// A NUL in a message: refused at the end (CHAR8 excludes NUL).
    nul: bool,
    /// A literal8 message whose binary parts could not be converted to
    /// 7-bit: refused with `NO [UNKNOWN-CTE]` (RFC 3516 §4.3).
    nul_binary: bool,
    /// A literal8 message, held whole so its binary parts can be converted
    /// to base64 (RFC 3516 §4.3 lets the server convert) before it goes to
    /// the application. Bounded by `Limits::max_append`.
    held: Option<BytesMut>,
}

/// One IMAP server connection.
pub struct Session {
    config: Arc<Config>,
    state: State,
    reader: Reader,
    inbox: Inbox,
    out: BytesMut,
    queue: VecDeque<Output>,
    decisions: Decisions<Pending>,
    auth: Option<(Tag, Box<ServerExchange>)>,
    append: Option<Append>,
    idle: Option<Tag>,
    view: View,
    identity: Option<Identity>,
    tls: bool,
    utf8: bool,
    errors: u32,
    login_failures: u32,
    nonces: u64,
    entropy: [u8; 16],
    now: Instant,
    deadline: Instant,
    keepalive: Option<Instant>,
    idle_until: Option<Instant>,
    penalty: Option<Instant>,
    /// Octets of a FETCH literal the application is still streaming
    /// ([`Session::fetched_literal`]); nothing else may be written before.
    literal_left: u64,
    /// The UIDs of the last `SEARCH RETURN (SAVE)`: `$` (RFC 5182).
    saved: Vec<u32>,
    /// The client enabled IMAP4rev2 (RFC 9051): no RECENT or `\Recent`,
    /// ESEARCH for every SEARCH, UTF-8 mailbox names, `OK [CLOSED]`.
    rev2: bool,
    /// A CONDSTORE-enabling command was seen (RFC 7162 §3.1): flag updates
    /// carry UID and MODSEQ.
    condstore: bool,
    /// ENABLE QRESYNC: expunges are told as VANISHED (RFC 7162 §3.2).
    qresync: bool,
    /// The highest MODSEQ the client was told of in the selected mailbox
    /// (never above a change it was not told of).
    highest_modseq: u64,
    /// Messages the pending STORE left alone (UNCHANGEDSINCE failed).
    modified: Vec<u32>,
    /// COMPRESS=DEFLATE is on.
    compressed: bool,
    /// Live searches (CONTEXT=SEARCH) of the selected mailbox.
    live: Vec<LiveSearch>,
    /// Compression starts after the command just answered: the rest of
    /// this input (sent before the client saw the OK) is dropped.
    cut: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("tls", &self.tls)
            .field("idle", &self.idle.is_some())
            .field("pending", &self.decisions.is_pending())
            .finish_non_exhaustive()
    }
}

fn tag_u64(e: &[u8; 16]) -> u64 {
    u64::from_le_bytes([e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15]])
}

impl Session {
    /// A new session; the greeting with the capabilities is queued.
    /// `entropy`: 16 random bytes (SASL nonces, decision tokens).
    pub fn new(config: Arc<Config>, now: Instant, entropy: [u8; 16]) -> Session {
        let mut s = Session {
            tls: config.implicit_tls,
            reader: Reader::new(config.limits.max_command, config.limits.max_literal),
            inbox: Inbox::new(config.limits.max_buffered_input),
            deadline: session_core::deadline_after(now, config.timeouts.login),
            decisions: Decisions::new(tag_u64(&entropy)),
            config,
            state: State::NotAuthenticated,
            out: BytesMut::new(),
            queue: VecDeque::new(),
            auth: None,
            append: None,
            idle: None,
            view: View::default(),
            identity: None,
            utf8: false,
            errors: 0,
            login_failures: 0,
            nonces: 0,
            entropy,
            now,
            keepalive: None,
            idle_until: None,
            penalty: None,
            literal_left: 0,
            saved: Vec::new(),
            rev2: false,
            condstore: false,
            qresync: false,
            highest_modseq: 0,
            modified: Vec::new(),
            compressed: false,
            cut: false,
            live: Vec::new(),
        };
        let caps = s.capabilities();
        s.status(
            None,
            StatusKind::Ok,
            Some(Code::Capability(caps)),
            &format!("{} IMAP server ready", s.config.hostname),
        );
        s.flush();
        s
    }

    // ------------------------------------------------------------ getters

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the link is secure.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Who logged in.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether a mailbox is selected.
    pub fn is_selected(&self) -> bool {
        matches!(self.state, State::Selected { .. })
    }

    /// Whether the client is idling (IDLE): pushed changes go out at once.
    pub fn is_idle(&self) -> bool {
        self.idle.is_some()
    }

    /// Whether UTF8=ACCEPT is enabled.
    pub fn utf8(&self) -> bool {
        self.utf8
    }

    /// Whether CONDSTORE is on: the client sent a CONDSTORE-enabling
    /// command (RFC 7162 §3.1), so FETCH data of flag changes carries
    /// MODSEQ.
    pub fn condstore(&self) -> bool {
        self.condstore
    }

    /// Whether QRESYNC is enabled (expunges told as VANISHED).
    pub fn qresync(&self) -> bool {
        self.qresync
    }

    /// The selected mailbox's view (sequence numbers, for SEARCH).
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether the session is over (after [`session_core::Output::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether to read more from the peer: false once closed, while TLS is
    /// set up, while a failed login is being slowed down, and while a
    /// decision is pending with input held.
    pub fn wants_input(&self) -> bool {
        !matches!(self.state, State::Closed | State::AwaitTls)
            && self.penalty.is_none()
            && (!self.decisions.is_pending() || self.inbox.is_empty())
    }

    /// Bytes of input held unprocessed.
    pub fn buffered_input(&self) -> usize {
        self.inbox.len() + self.reader.buffered()
    }

    /// Whether a decision is pending.
    pub fn is_waiting_for_decision(&self) -> bool {
        self.decisions.is_pending()
    }

    /// The capabilities as the client sees them now.
    pub fn capabilities(&self) -> Vec<String> {
        let mut c: Vec<String> = [
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "ESEARCH",
            "SEARCHRES",
            "UTF8=ACCEPT",
            "BINARY",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        c.push(format!("APPENDLIMIT={}", self.config.limits.max_append));
        if self.state == State::NotAuthenticated {
            if self.config.starttls && !self.tls {
                c.push("STARTTLS".into());
            }
            if !self.plaintext_ok() {
                c.push("LOGINDISABLED".into());
            }
            for m in self.mechanisms() {
                c.push(format!("AUTH={}", m.name()));
            }
        } else {
            c.extend(self.config.capabilities.iter().cloned());
            if self.config.compress && !self.compressed {
                c.push("COMPRESS=DEFLATE".into());
            }
        }
        c
    }

    fn mechanisms(&self) -> impl Iterator<Item = Mechanism> + '_ {
        let plain_ok = self.plaintext_ok();
        self.config
            .mechanisms
            .iter()
            .copied()
            .filter(move |m| plain_ok || !m.is_plaintext())
    }

    fn plaintext_ok(&self) -> bool {
        self.tls || self.config.allow_plaintext_auth
    }

    // ------------------------------------------------------------- inputs

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.now = now;
        if matches!(self.state, State::Closed | State::AwaitTls) {
            return;
        }
        self.touch();
        let waiting = self.decisions.is_pending() || self.penalty.is_some();
        let mut inbox = std::mem::replace(&mut self.inbox, Inbox::new(0));
        let held = inbox.feed(bytes, waiting, |b| self.consume(b));
        self.inbox = inbox;
        if held.is_err() {
            self.inbox.clear();
            self.bye("too much pipelined input");
        }
        self.after_run();
    }

    /// The client went away.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        if !self.is_closed() {
            self.abort_append();
            self.close();
        }
    }

    /// Time passed: a slowed failed login is answered; a decision past its
    /// deadline is answered `NO [UNAVAILABLE]`; IDLE gets its keepalive or
    /// ends; an idle client past its deadline is logged out.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if self.penalty.is_some_and(|p| now >= p) {
            self.penalty = None;
            self.flush();
            self.resume();
            return;
        }
        if self.decisions.is_pending() {
            if let Some(p) = self.decisions.expire(now) {
                self.decision_timed_out(p);
                self.resume();
            }
            return;
        }
        if self.idle.is_some() {
            if self.idle_until.is_some_and(|d| now >= d) {
                self.bye("IDLE for too long");
                return;
            }
            if self.keepalive.is_some_and(|k| now >= k) {
                self.untagged_status(StatusKind::Ok, None, "Still here");
                self.keepalive = Some(session_core::deadline_after(
                    now,
                    self.config.timeouts.idle_keepalive,
                ));
                self.flush();
            }
            return;
        }
        if now >= self.deadline && self.penalty.is_none() {
            self.bye("Autologout; idle for too long");
        }
    }

    /// The next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// When to call `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        if let Some(p) = self.penalty {
            return Some(p);
        }
        if let Some(d) = self.decisions.deadline() {
            return Some(d);
        }
        if self.idle.is_some() {
            return [self.keepalive, self.idle_until]
                .into_iter()
                .flatten()
                .min();
        }
        Some(self.deadline)
    }

    /// TLS is up after [`session_core::Output::StartTls`].
    pub fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        if self.state != State::AwaitTls {
            return Err(ApiMisuse::NoStartTls);
        }
        self.tls = true;
        self.now = now;
        self.touch();
        self.state = State::NotAuthenticated;
        self.reader.reset();
        self.inbox.clear();
        Ok(())
    }

    // ------------------------------------------------- the selected view

    /// A message arrived in the selected mailbox (any time; announced by
    /// the RFC's rules, at once during IDLE). `recent`: this session is the
    /// one that gets its `\Recent` flag (IMAP4rev1).
    pub fn push_new(&mut self, uid: u32, recent: bool) {
        self.view.push_new(uid, recent);
        self.flush_idle();
    }

    /// A message's flags changed in the selected mailbox (by another
    /// session: a change this session made is already answered), at
    /// `modseq` when the store keeps MODSEQs (told to CONDSTORE clients).
    pub fn push_flags(&mut self, uid: u32, flags: Vec<Flag>, modseq: Option<u64>) {
        self.view.push_flags(uid, flags, modseq);
        self.flush_idle();
    }

    /// A message was expunged from the selected mailbox by someone else.
    pub fn push_expunge(&mut self, uid: u32) {
        self.view.push_expunge(uid);
        self.flush_idle();
    }

    /// The live searches (RFC 5267 `SEARCH RETURN (UPDATE)`) to keep
    /// current: each one's tag and keys. After a message of the selected
    /// mailbox changed (flags, by anyone; a new message), evaluate the keys
    /// on it ([`crate::search`]) and report with
    /// [`Session::live_search_result`]; expunges the session follows
    /// itself. Empty when the client asked for none.
    pub fn live_searches(&self) -> impl Iterator<Item = (&str, &[crate::SearchKey<'static>])> {
        self.live.iter().map(|l| (l.tag.as_str(), &l.keys[..]))
    }

    /// Whether message `uid` now matches the live search `tag`; what
    /// changed is told the client with the next changes (`ESEARCH … ADDTO`
    /// or `REMOVEFROM`), as RFC 5267 §4.3 says.
    pub fn live_search_result(&mut self, tag: &str, uid: u32, matches: bool) {
        if let Some(l) = self.live.iter_mut().find(|l| l.tag == tag) {
            l.changes.insert(uid, matches);
        }
        self.flush_idle();
    }

    /// The selected mailbox is gone (deleted or renamed by another
    /// session): the client is told and the session closes.
    pub fn mailbox_gone(&mut self) {
        if self.is_selected() {
            self.bye("the selected mailbox was removed");
        }
    }

    fn flush_idle(&mut self) {
        if self.idle.is_some() && !self.decisions.is_pending() {
            self.flush_view(true, false);
            self.flush();
        }
    }

    // ---------------------------------------------------------- decisions

    /// The login is accepted.
    pub fn accept_login(&mut self, token: Token) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Login(..) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if let (Pending::Login(tag, user), false) = (pending, self.is_closed()) {
            self.identity = Some(Identity {
                username: user,
                authzid: None,
            });
            self.state = State::Authenticated;
            self.touch();
            // K-9 and others read the capabilities from this OK only.
            let caps = self.capabilities();
            self.tagged(
                &tag,
                StatusKind::Ok,
                Some(Code::Capability(caps)),
                "Logged in",
            );
        }
        self.resume();
        Ok(())
    }

    /// The stored keys for [`Event::ScramLookup`] (`None`: no such user;
    /// the exchange goes on with decoy keys and fails at the end).
    pub fn scram_credentials(
        &mut self,
        token: Token,
        creds: Option<ScramCredentials>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Scram(..) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if let (Pending::Scram(tag, mut exchange), false) = (pending, self.is_closed()) {
            let step = exchange.scram_credentials(creds);
            self.sasl_step(tag, exchange, step);
        }
        self.resume();
        Ok(())
    }

    /// SELECT or EXAMINE succeeded: the mailbox as it is now.
    pub fn selected(&mut self, token: Token, mailbox: Selected) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Request(_, Kind::Select { .. }) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        let Pending::Request(tag, Kind::Select { read_only, qresync }) = pending else {
            return Ok(());
        };
        if self.is_closed() {
            return Ok(());
        }
        let read_only = read_only || mailbox.read_only;
        let largest_uid = mailbox.uid_next.saturating_sub(1);
        self.highest_modseq = mailbox.highest_modseq.unwrap_or(0);
        self.view = View::new(mailbox.uids);
        self.view.set_recent(&mailbox.recent);
        self.state = State::Selected { read_only };
        self.untagged(&Response::Flags(mailbox.flags));
        self.untagged(&Response::Exists(self.view.exists()));
        if !self.rev2 {
            self.untagged(&Response::Recent(self.view.recent()));
        }
        if let Some(seq) = mailbox.first_unseen.and_then(|u| self.view.seq_of(u)) {
            self.untagged_status(StatusKind::Ok, Some(Code::Unseen(seq)), "First unseen");
        }
        self.untagged_status(
            StatusKind::Ok,
            Some(Code::UidValidity(mailbox.uid_validity)),
            "UIDs valid",
        );
        self.untagged_status(
            StatusKind::Ok,
            Some(Code::UidNext(mailbox.uid_next)),
            "Predicted next UID",
        );
        let mut permanent = if read_only {
            Vec::new()
        } else {
            mailbox.permanent_flags
        };
        if mailbox.new_keywords && !read_only {
            permanent.push(Flag::Extension("*".into()));
        }
        self.untagged_status(
            StatusKind::Ok,
            Some(Code::PermanentFlags(permanent)),
            "Flags permitted",
        );
        if let Some(id) = mailbox.mailbox_id {
            self.untagged_status(StatusKind::Ok, Some(Code::MailboxId(id)), "Mailbox id");
        }
        match mailbox.highest_modseq {
            Some(m) => {
                self.untagged_status(StatusKind::Ok, Some(Code::HighestModSeq(m)), "Highest")
            }
            None if self.condstore => {
                self.untagged_status(StatusKind::Ok, Some(Code::NoModSeq), "No MODSEQs here")
            }
            None => {}
        }
        // QRESYNC (RFC 7162 §3.2.5.1): what vanished and what changed
        // since the client's MODSEQ, when its UIDVALIDITY still holds.
        if let Some(q) = qresync
            .filter(|q| q.uid_validity == mailbox.uid_validity && mailbox.highest_modseq.is_some())
        {
            let known = q
                .known_uids
                .as_ref()
                .map_or_else(|| vec![(1, largest_uid)], |k| k.spans(largest_uid));
            let gone = self.vanished_among(&known, mailbox.expunged_since.as_deref());
            if let Some(r) = SequenceSet::from_spans(&gone).map(|uids| Response::Vanished {
                earlier: true,
                uids,
            }) {
                self.untagged(&r);
            }
            let mut changed = mailbox.changed;
            changed.sort_unstable_by_key(|c| c.uid);
            for c in changed {
                if !spans_contain(&known, c.uid) {
                    continue;
                }
                let Some(seq) = self.view.seq_of(c.uid) else {
                    continue;
                };
                let mut values = vec![
                    FetchValue::Uid(c.uid),
                    FetchValue::Flags(c.flags),
                    FetchValue::ModSeq(c.modseq),
                ];
                self.without_recent(&mut values);
                self.untagged(&Response::Fetch(seq, values));
            }
        }
        let (code, verb) = if read_only {
            (Code::ReadOnly, "EXAMINE")
        } else {
            (Code::ReadWrite, "SELECT")
        };
        self.tagged(
            &tag,
            StatusKind::Ok,
            Some(code),
            &format!("{verb} completed"),
        );
        self.resume();
        Ok(())
    }

    /// The UIDs among `known` (ascending merged spans) to report as
    /// vanished: those in the expunge log when it reaches back far enough
    /// (`expunged`), else every known UID that is not in the mailbox now
    /// (RFC 7162 §3.2.5.2 allows reporting UIDs that never existed).
    fn vanished_among(&self, known: &[(u32, u32)], expunged: Option<&[u32]>) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        let mut add = |lo: u32, hi: u32| match out.last_mut() {
            Some((_, b)) if lo <= b.saturating_add(1) => *b = (*b).max(hi),
            _ => out.push((lo, hi)),
        };
        match expunged {
            Some(list) => {
                let mut list = list.to_vec();
                list.sort_unstable();
                for u in list.into_iter().filter(|u| spans_contain(known, *u)) {
                    add(u, u);
                }
            }
            None => {
                let uids = self.view.uids();
                for &(lo, hi) in known {
                    let mut next = lo;
                    let start = uids.partition_point(|&u| u < lo);
                    for &u in uids[start..].iter().take_while(|&&u| u <= hi) {
                        if u > next {
                            add(next, u - 1);
                        }
                        next = u.saturating_add(1);
                    }
                    if next <= hi && next >= lo {
                        add(next, hi);
                    }
                }
            }
        }
        out
    }

    /// An untagged response of the pending request (LIST, STATUS, the
    /// `COPYUID` of a MOVE…). Sequence numbers in it are the caller's
    /// business; prefer [`Session::fetched`] for FETCH data.
    pub fn untagged(&mut self, response: &Response<'_>) {
        let bytes = response.encode(self.utf8);
        self.out.extend_from_slice(&bytes);
        self.maybe_flush();
    }

    /// The new state of one message for the pending FETCH or STORE, by UID;
    /// the session numbers it (and adds the UID when the command needs it).
    /// A UID the client does not know is skipped.
    pub fn fetched(
        &mut self,
        token: &Token,
        uid: u32,
        mut values: Vec<FetchValue<'_>>,
    ) -> Result<(), ApiMisuse> {
        let (with_uid, silent, store) = match self.decisions.get(token)? {
            Pending::Request(_, Kind::Fetch { uid, .. }) => (*uid, false, false),
            Pending::Request(_, Kind::Store { uid, silent }) => (*uid, *silent, true),
            _ => return Err(ApiMisuse::WrongAnswer),
        };
        if self.literal_left > 0 {
            return Err(ApiMisuse::WrongAnswer);
        }
        let Some(seq) = self.view.seq_of(uid) else {
            return Ok(());
        };
        if values.iter().any(|v| matches!(v, FetchValue::Flags(_))) {
            self.view.forget_flags(uid);
        }
        self.note_modseqs(&values);
        if store && !self.condstore {
            values.retain(|v| !matches!(v, FetchValue::ModSeq(_)));
        }
        if silent {
            // RFC 7162 §3.1.3: with CONDSTORE a silent STORE still tells
            // the new MODSEQ.
            if !self.condstore {
                return Ok(());
            }
            values.retain(|v| matches!(v, FetchValue::ModSeq(_) | FetchValue::Uid(_)));
            if !values.iter().any(|v| matches!(v, FetchValue::ModSeq(_))) {
                return Ok(());
            }
        }
        if with_uid && !values.iter().any(|v| matches!(v, FetchValue::Uid(_))) {
            values.insert(0, FetchValue::Uid(uid));
        }
        self.without_recent(&mut values);
        self.untagged(&Response::Fetch(seq, values));
        Ok(())
    }

    /// Starts the FETCH response of one message whose last item (`last`: a
    /// body section or an RFC822 item, its data ignored) is a literal of
    /// `len` octets that the application then streams with
    /// [`Session::literal_data`], so a large message is never held whole.
    /// Returns false (and expects no data) for a UID the client does not
    /// know. Nothing else can be answered until the literal is complete.
    pub fn fetched_literal(
        &mut self,
        token: &Token,
        uid: u32,
        mut values: Vec<FetchValue<'_>>,
        last: &FetchValue<'_>,
        len: u64,
    ) -> Result<bool, ApiMisuse> {
        let with_uid = match self.decisions.get(token)? {
            Pending::Request(_, Kind::Fetch { uid, .. }) => *uid,
            _ => return Err(ApiMisuse::WrongAnswer),
        };
        if self.literal_left > 0 {
            return Err(ApiMisuse::WrongAnswer);
        }
        let Some(seq) = self.view.seq_of(uid) else {
            return Ok(false);
        };
        if values.iter().any(|v| matches!(v, FetchValue::Flags(_))) {
            self.view.forget_flags(uid);
        }
        self.note_modseqs(&values);
        if with_uid && !values.iter().any(|v| matches!(v, FetchValue::Uid(_))) {
            values.insert(0, FetchValue::Uid(uid));
        }
        self.without_recent(&mut values);
        let head =
            crate::fetch_literal_head(seq, &values, last, len).ok_or(ApiMisuse::WrongAnswer)?;
        self.out.extend_from_slice(&head);
        self.literal_left = len;
        if len == 0 {
            self.out.extend_from_slice(b")\r\n");
        }
        self.flush();
        Ok(true)
    }

    /// The next octets of the literal started by [`Session::fetched_literal`]
    /// (anything past its length is ignored); each piece is handed out as it
    /// comes.
    pub fn literal_data(&mut self, token: &Token, bytes: &[u8]) -> Result<(), ApiMisuse> {
        match self.decisions.get(token)? {
            Pending::Request(_, Kind::Fetch { .. }) => {}
            _ => return Err(ApiMisuse::WrongAnswer),
        }
        if self.literal_left == 0 {
            return Err(ApiMisuse::WrongAnswer);
        }
        let take = usize::try_from(self.literal_left)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        self.out.extend_from_slice(&bytes[..take]);
        self.literal_left -= take as u64;
        if self.literal_left == 0 {
            self.out.extend_from_slice(b")\r\n");
        }
        self.flush();
        Ok(())
    }

    /// Whether a streamed FETCH literal is unfinished.
    pub fn literal_open(&self) -> bool {
        self.literal_left > 0
    }

    /// The UIDs that matched the pending SEARCH (any order).
    pub fn searched(&mut self, token: Token, uids: Vec<u32>) -> Result<(), AnswerError> {
        self.search_answer(token, uids.into_iter().map(|u| (u, 0)).collect())
    }

    /// The UIDs that matched the pending SEARCH with each one's MODSEQ
    /// (any order). When a key was MODSEQ the answer carries the highest
    /// MODSEQ of the messages it returns (RFC 7162 §3.1.5; with ESEARCH,
    /// of those MIN, MAX or ALL name).
    pub fn searched_with_modseq(
        &mut self,
        token: Token,
        hits: Vec<(u32, u64)>,
    ) -> Result<(), AnswerError> {
        self.search_answer(token, hits)
    }

    fn search_answer(
        &mut self,
        token: Token,
        mut hits: Vec<(u32, u64)>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Request(_, Kind::Search { .. }) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        let Pending::Request(
            tag,
            Kind::Search {
                uid,
                ret,
                modseq,
                update,
            },
        ) = pending
        else {
            return Ok(());
        };
        if self.is_closed() {
            return Ok(());
        }
        hits.sort_unstable();
        hits.dedup_by_key(|h| h.0);
        hits.retain(|h| self.view.seq_of(h.0).is_some());
        let uids: Vec<u32> = hits.iter().map(|h| h.0).collect();
        if let Some(keys) = update {
            if self.live.len() < MAX_LIVE_SEARCHES {
                self.live.retain(|l| l.tag != tag.as_str());
                self.live.push(LiveSearch {
                    tag: tag.as_str().to_owned(),
                    uid,
                    keys,
                    result: uids.iter().copied().collect(),
                    changes: Default::default(),
                });
            } else {
                self.untagged_status(
                    StatusKind::Ok,
                    Some(Code::Other(
                        "NOUPDATE".into(),
                        Some(format!("\"{}\"", tag.as_str())),
                    )),
                    "too many searches kept current",
                );
            }
        }
        // The highest MODSEQ among the messages an answer names.
        let highest = |of: &[(u32, u64)]| of.iter().map(|h| h.1).max().filter(|m| modseq && *m > 0);
        if let Some(ret) = &ret
            && ret.contains(&SearchReturn::Save)
        {
            // RFC 5182 §2.1: with only MIN and/or MAX, those are saved.
            let all = ret
                .iter()
                .any(|r| matches!(r, SearchReturn::All | SearchReturn::Count))
                || !ret
                    .iter()
                    .any(|r| matches!(r, SearchReturn::Min | SearchReturn::Max));
            self.saved = if all {
                uids.clone()
            } else {
                let mut v = Vec::new();
                if ret.contains(&SearchReturn::Min) {
                    v.extend(uids.first());
                }
                if ret.contains(&SearchReturn::Max) {
                    v.extend(uids.last());
                }
                v.dedup();
                v
            };
        }
        let numbers: Vec<u32> = if uid {
            uids
        } else {
            uids.into_iter()
                .filter_map(|u| self.view.seq_of(u))
                .collect()
        };
        let with_modseq = |mut items: Vec<(String, String)>, m: Option<u64>| {
            if let Some(m) = m {
                items.push(("MODSEQ".to_owned(), m.to_string()));
            }
            items
        };
        match ret {
            // IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 §7.3.4).
            None if self.rev2 => {
                let items = esearch_items(&[SearchReturn::All], &numbers);
                self.esearch(&tag, uid, with_modseq(items, highest(&hits)));
            }
            None => self.untagged(&Response::Search(numbers, highest(&hits))),
            // SAVE alone: the result is kept, not sent (RFC 5182 §2.1).
            Some(ret) if ret == [SearchReturn::Save] => {}
            Some(ret) => {
                let ret = if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                };
                // MIN and MAX name one message each; ALL and COUNT all.
                let named: Vec<(u32, u64)> = if ret
                    .iter()
                    .any(|r| matches!(r, SearchReturn::All | SearchReturn::Count))
                {
                    hits.clone()
                } else {
                    let mut v = Vec::new();
                    if ret.contains(&SearchReturn::Min) {
                        v.extend(hits.first().copied());
                    }
                    if ret.contains(&SearchReturn::Max) {
                        v.extend(hits.last().copied());
                    }
                    v
                };
                let items = esearch_items(&ret, &numbers);
                self.esearch(&tag, uid, with_modseq(items, highest(&named)));
            }
        }
        self.finish(
            &tag,
            Kind::Search {
                uid,
                ret: None,
                modseq,
                update: None,
            },
            Completion::ok("SEARCH completed"),
        );
        self.resume();
        Ok(())
    }

    /// `* ESEARCH (TAG …) [UID] items`.
    fn esearch(&mut self, tag: &Tag, uid: bool, items: Vec<(String, String)>) {
        self.untagged(&Response::ESearch {
            tag: Some(tag.as_str().as_bytes().to_vec().into()),
            uid,
            items,
        });
    }

    /// The keys of a SEARCH or SORT with `$` resolved, or `None` after
    /// `NO [BADCHARSET]` for a charset other than UTF-8 and US-ASCII.
    fn search_keys(
        &mut self,
        tag: &Tag,
        charset: Option<&str>,
        keys: Vec<crate::SearchKey<'_>>,
    ) -> Option<Vec<crate::SearchKey<'static>>> {
        if let Some(c) = charset
            && !c.eq_ignore_ascii_case("UTF-8")
            && !c.eq_ignore_ascii_case("US-ASCII")
        {
            self.tagged(
                tag,
                StatusKind::No,
                Some(Code::Other(
                    "BADCHARSET".into(),
                    Some("(UTF-8 US-ASCII)".into()),
                )),
                "charset not supported",
            );
            return None;
        }
        Some(
            keys.into_iter()
                .map(|k| self.with_saved(k.into_owned()))
                .collect(),
        )
    }

    /// Answers a SORT: the matching UIDs in sorted order (see
    /// [`crate::sort`]). Numbers the client does not know are left out.
    pub fn sorted(&mut self, token: Token, uids: Vec<u32>) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Request(_, Kind::Sort { .. }) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        let Pending::Request(tag, Kind::Sort { uid, ret }) = pending else {
            return Ok(());
        };
        if self.is_closed() {
            return Ok(());
        }
        let numbers: Vec<u32> = uids
            .iter()
            .filter_map(|&u| {
                let seq = self.view.seq_of(u)?;
                Some(if uid { u } else { seq })
            })
            .collect();
        match &ret {
            None => self.untagged(&Response::Sort(numbers)),
            Some(ret) => {
                // RETURN () is ALL (RFC 4731 §3.1).
                let ret: &[SearchReturn] = if ret.is_empty() {
                    &[SearchReturn::All]
                } else {
                    ret
                };
                self.esearch(&tag, uid, esearch_items(ret, &numbers));
            }
        }
        self.finish(
            &tag,
            Kind::Sort { uid, ret: None },
            Completion::ok("SORT completed"),
        );
        self.resume();
        Ok(())
    }

    /// Answers a THREAD: the threads with UIDs (see
    /// [`crate::sort::thread_ordered_subject`]). A UID the client does not
    /// know is left out, its replies taking its place.
    pub fn threaded(
        &mut self,
        token: Token,
        threads: Vec<crate::Thread>,
    ) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Request(_, Kind::Thread { .. }) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        let Pending::Request(tag, Kind::Thread { uid }) = pending else {
            return Ok(());
        };
        if self.is_closed() {
            return Ok(());
        }
        let out = self.renumber(threads, uid);
        self.untagged(&Response::Thread(out));
        self.finish(
            &tag,
            Kind::Thread { uid },
            Completion::ok("THREAD completed"),
        );
        self.resume();
        Ok(())
    }

    /// Threads with their UIDs as the client numbers them; unknown ones
    /// replaced by their replies. Without recursion: a chain of replies
    /// is as deep as it is long.
    fn renumber(&self, threads: Vec<crate::Thread>, uid: bool) -> Vec<crate::Thread> {
        // Every node once, parents before their children.
        let mut arena: Vec<(Option<u32>, Vec<usize>)> = Vec::new();
        let mut roots = Vec::new();
        let mut stack: Vec<(crate::Thread, Option<usize>)> =
            threads.into_iter().rev().map(|t| (t, None)).collect();
        while let Some((mut t, parent)) = stack.pop() {
            let i = arena.len();
            arena.push((t.message, Vec::new()));
            match parent {
                Some(p) => arena[p].1.push(i),
                None => roots.push(i),
            }
            let children = std::mem::take(&mut t.children);
            stack.extend(children.into_iter().rev().map(|c| (c, Some(i))));
        }
        let mut done: Vec<Vec<crate::Thread>> = (0..arena.len()).map(|_| Vec::new()).collect();
        for i in (0..arena.len()).rev() {
            let children: Vec<crate::Thread> = arena[i]
                .1
                .iter()
                .flat_map(|c| std::mem::take(&mut done[*c]))
                .collect();
            let message = arena[i].0;
            let known = message.and_then(|u| self.view.seq_of(u).map(|s| if uid { u } else { s }));
            done[i] = match known {
                Some(m) => vec![crate::Thread {
                    message: Some(m),
                    children,
                }],
                None if children.len() >= 2 && message.is_none() => vec![crate::Thread {
                    message: None,
                    children,
                }],
                None => children,
            };
        }
        roots
            .into_iter()
            .flat_map(|r| std::mem::take(&mut done[r]))
            .collect()
    }

    /// Messages the pending EXPUNGE, UID EXPUNGE or MOVE removed: the
    /// session sends their EXPUNGE responses (numbered as the client
    /// renumbers). For CLOSE, nothing is sent.
    pub fn expunged(&mut self, token: &Token, uids: &[u32]) -> Result<(), ApiMisuse> {
        let kind = match self.decisions.get(token)? {
            Pending::Request(
                _,
                k @ (Kind::Expunge | Kind::Close | Kind::Copy { moving: true }),
            ) => k.clone(),
            _ => return Err(ApiMisuse::WrongAnswer),
        };
        if kind != Kind::Close {
            self.live_removed(uids);
        }
        let seqs = self.view.expunge_now(uids);
        if kind == Kind::Close {
            return Ok(());
        }
        if self.qresync {
            if let Some(r) = view::vanished(uids, false) {
                self.untagged(&r);
            }
        } else {
            for seq in seqs {
                self.untagged(&Response::Expunge(seq));
            }
        }
        Ok(())
    }

    /// For a `UID FETCH … (CHANGEDSINCE n VANISHED)` (QRESYNC): the UIDs
    /// expunged since `n` from the store's log, or `None` when the log no
    /// longer reaches back that far. The session sends `* VANISHED
    /// (EARLIER)` for those in the command's set (for `None`: every UID of
    /// the set that is not in the mailbox). Call it before the FETCH data.
    pub fn fetch_vanished(
        &mut self,
        token: &Token,
        expunged: Option<&[u32]>,
    ) -> Result<(), ApiMisuse> {
        let set = match self.decisions.get(token)? {
            Pending::Request(_, Kind::Fetch { vanished, .. }) => vanished.clone(),
            _ => return Err(ApiMisuse::WrongAnswer),
        };
        if self.literal_left > 0 {
            return Err(ApiMisuse::WrongAnswer);
        }
        let Some(set) = set else {
            return Ok(());
        };
        // `*` in a UID set is the highest UID the client may know.
        let largest = match expunged {
            Some(e) => self
                .view
                .last_uid()
                .max(e.iter().copied().max().unwrap_or(0)),
            None => self.view.last_uid(),
        };
        let spans = set.spans(largest);
        let gone = self.vanished_among(&spans, expunged);
        if let Some(uids) = SequenceSet::from_spans(&gone) {
            self.untagged(&Response::Vanished {
                earlier: true,
                uids,
            });
        }
        Ok(())
    }

    /// For a STORE with UNCHANGEDSINCE: the messages (by UID) left alone
    /// because their MODSEQ was above it. The tagged OK names them in
    /// `[MODIFIED …]` (RFC 7162 §3.1.3), as numbers or as UIDs for UID
    /// STORE.
    pub fn store_modified(&mut self, token: &Token, uids: &[u32]) -> Result<(), ApiMisuse> {
        match self.decisions.get(token)? {
            Pending::Request(_, Kind::Store { .. }) => {}
            _ => return Err(ApiMisuse::WrongAnswer),
        }
        self.modified.extend(
            uids.iter()
                .copied()
                .filter(|u| self.view.seq_of(*u).is_some()),
        );
        Ok(())
    }

    /// Remembers the MODSEQs the client is told (for the HIGHESTMODSEQ a
    /// later CONDSTORE-enabling command reports).
    fn note_modseqs(&mut self, values: &[FetchValue<'_>]) {
        for v in values {
            if let FetchValue::ModSeq(m) = v {
                self.highest_modseq = self.highest_modseq.max(*m);
            }
        }
    }

    /// Accepts the announced APPEND message: its bytes follow as
    /// [`Event::AppendData`].
    pub fn accept(&mut self, token: Token) -> Result<(), AnswerError> {
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Append(_) | Pending::Catenate(_) => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if self.is_closed() {
            return Ok(());
        }
        if let Pending::Catenate(_) = pending {
            self.next_append_part();
        }
        if let Pending::Append(_) = pending {
            let sync = self.reader.accept_append();
            if sync {
                self.out.extend_from_slice(b"+ Ready for literal data\r\n");
                self.flush();
            }
        }
        self.resume();
        Ok(())
    }

    /// Completes the pending request (or the APPEND commit) with `OK`, `NO`
    /// or `BAD`, after its data was given.
    pub fn complete(&mut self, token: Token, completion: Completion) -> Result<(), AnswerError> {
        let open = self.literal_left > 0;
        let pending = self.decisions.take_if(token, |p| match p {
            Pending::Request(..) | Pending::AppendCommit(_) if !open => Ok(()),
            _ => Err(ApiMisuse::WrongAnswer),
        })?;
        if self.is_closed() {
            return Ok(());
        }
        match pending {
            Pending::Request(tag, kind) => self.finish(&tag, kind, completion),
            Pending::AppendCommit(tag) => self.finish(&tag, Kind::Other, completion),
            _ => {}
        }
        self.resume();
        Ok(())
    }

    /// The negative answer to any decision: a failed login (answered
    /// `NO [AUTHENTICATIONFAILED]`, slowed, and counted), a refused APPEND
    /// message (`TRYCREATE`, `TOOBIG`: the literal is not read), a failed
    /// request.
    pub fn reject(&mut self, token: Token, completion: Completion) -> Result<(), AnswerError> {
        let pending = self.decisions.take(token)?;
        if self.is_closed() {
            return Ok(());
        }
        if self.literal_left > 0 {
            // A literal cut short cannot be answered in band: the client
            // sees the connection close.
            self.close();
            return Ok(());
        }
        let completion = if completion.is_ok() {
            Completion::no(completion.text)
        } else {
            completion
        };
        match pending {
            Pending::Login(tag, _) | Pending::Scram(tag, _) => self.login_failed(&tag, completion),
            Pending::Append(tag) | Pending::Catenate(tag) => {
                self.refuse_append_part();
                self.finish(&tag, Kind::Other, completion);
            }
            Pending::AppendCommit(tag) => self.finish(&tag, Kind::Other, completion),
            Pending::Request(tag, Kind::Select { .. }) => {
                self.state = State::Authenticated;
                self.finish(&tag, Kind::Other, completion);
            }
            Pending::Request(tag, kind) => {
                // A failed SEARCH with SAVE leaves `$` empty (RFC 5182 §2.1).
                if let Kind::Search { ret: Some(r), .. } = &kind
                    && r.contains(&SearchReturn::Save)
                {
                    self.saved.clear();
                }
                self.finish(&tag, kind, completion)
            }
        }
        self.resume();
        Ok(())
    }

    // ---------------------------------------------------------- internals

    fn touch(&mut self) {
        let t = if self.identity.is_some() {
            self.config.timeouts.autologout
        } else {
            self.config.timeouts.login
        };
        self.deadline = session_core::deadline_after(self.now, t);
    }

    fn finish(&mut self, tag: &Tag, kind: Kind, completion: Completion) {
        let (allow_expunge, with_uid) = match &kind {
            Kind::Fetch { uid, .. }
            | Kind::Store { uid, .. }
            | Kind::Search { uid, .. }
            | Kind::Sort { uid, .. }
            | Kind::Thread { uid } => (*uid, *uid),
            _ => (true, false),
        };
        let modified = std::mem::take(&mut self.modified);
        let completion = match kind {
            Kind::Store { uid, .. } if completion.is_ok() && !modified.is_empty() => {
                let numbers: Vec<u32> = if uid {
                    modified
                } else {
                    modified
                        .into_iter()
                        .filter_map(|u| self.view.seq_of(u))
                        .collect()
                };
                match SequenceSet::from_numbers(&numbers) {
                    Some(set) => Completion::ok_code(
                        Code::Modified(set),
                        "Conditional STORE failed for some messages",
                    ),
                    None => completion,
                }
            }
            Kind::Fetch {
                uid: false,
                expunge_issued: true,
                ..
            } if completion.is_ok() => Completion::no_code(
                Code::Other("EXPUNGEISSUED".into(), None),
                "Some of the requested messages no longer exist",
            ),
            Kind::Close if completion.is_ok() => {
                self.state = State::Authenticated;
                self.view = View::default();
                self.live.clear();
                completion
            }
            _ => completion,
        };
        if self.is_selected() {
            self.flush_view(allow_expunge, with_uid);
        }
        self.tagged(tag, completion.kind, completion.code, &completion.text);
    }

    fn flush_view(&mut self, allow_expunge: bool, with_uid: bool) {
        if allow_expunge && !self.live.is_empty() {
            // What the expunges take out of live searches, numbered as
            // the client numbers them before the EXPUNGEs.
            let gone = self.view.pending_expunges();
            self.live_removed(&gone);
        }
        let how = Announce {
            uid: with_uid || self.condstore,
            modseq: self.condstore,
            vanished: self.qresync,
        };
        for r in self.view.flush(allow_expunge, how) {
            // IMAP4rev2 has no RECENT.
            if self.rev2 && matches!(r, Response::Recent(_)) {
                continue;
            }
            if let Response::Fetch(_, values) = &r {
                self.note_modseqs(values);
            }
            self.untagged(&r);
        }
        self.live_flush();
    }

    /// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (0 set)` (RFC 5267
    /// §4.3; 0: a SEARCH result has no order to place it in).
    fn live_update(&mut self, tag: &str, uid: bool, what: &str, numbers: &[u32]) {
        let Some(set) = SequenceSet::from_numbers(numbers) else {
            return;
        };
        self.untagged(&Response::ESearch {
            tag: Some(tag.as_bytes().to_vec().into()),
            uid,
            items: vec![(what.to_owned(), format!("(0 {set})"))],
        });
    }

    /// Live-search members about to be expunged: REMOVEFROM, numbered
    /// before the expunge.
    fn live_removed(&mut self, gone: &[u32]) {
        let mut out = Vec::new();
        for l in &mut self.live {
            let hit: Vec<u32> = gone
                .iter()
                .copied()
                .filter(|u| l.result.remove(u))
                .collect();
            for u in gone {
                l.changes.remove(u);
            }
            let numbers: Vec<u32> = if l.uid {
                hit
            } else {
                hit.iter().filter_map(|u| self.view.seq_of(*u)).collect()
            };
            out.push((l.tag.clone(), l.uid, numbers));
        }
        for (tag, uid, numbers) in out {
            self.live_update(&tag, uid, "REMOVEFROM", &numbers);
        }
    }

    /// What the application re-evaluated, told: messages that left a live
    /// search, then those that entered it (once the client knows them).
    fn live_flush(&mut self) {
        let mut out = Vec::new();
        for l in &mut self.live {
            let (mut adds, mut removes) = (Vec::new(), Vec::new());
            let mut later = std::collections::BTreeMap::new();
            for (u, matches) in std::mem::take(&mut l.changes) {
                if self.view.seq_of(u).is_none() || self.view.is_expunged(u) {
                    // Not announced yet: after its EXISTS (one expunged
                    // before it was announced never will be).
                    if matches && self.view.is_arriving(u) {
                        later.insert(u, matches);
                    }
                    continue;
                }
                if matches && l.result.insert(u) {
                    adds.push(u);
                } else if !matches && l.result.remove(&u) {
                    removes.push(u);
                }
            }
            l.changes = later;
            let number = |v: Vec<u32>| -> Vec<u32> {
                if l.uid {
                    v
                } else {
                    v.iter().filter_map(|u| self.view.seq_of(*u)).collect()
                }
            };
            out.push((l.tag.clone(), l.uid, number(removes), number(adds)));
        }
        for (tag, uid, removes, adds) in out {
            self.live_update(&tag, uid, "REMOVEFROM", &removes);
            self.live_update(&tag, uid, "ADDTO", &adds);
        }
    }

    /// A CONDSTORE-enabling command (RFC 7162 §3.1): from now on flag
    /// updates carry MODSEQ; the first one while a mailbox is selected
    /// reports its HIGHESTMODSEQ.
    fn enable_condstore(&mut self) {
        if self.condstore || !self.offers("CONDSTORE") {
            return;
        }
        self.condstore = true;
        if self.is_selected() && self.highest_modseq > 0 {
            self.untagged_status(
                StatusKind::Ok,
                Some(Code::HighestModSeq(self.highest_modseq)),
                "Highest",
            );
        }
    }

    /// Whether the application advertises `capability` after login.
    fn offers(&self, capability: &str) -> bool {
        self.config
            .capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    /// IMAP4rev2 has no `\Recent`.
    fn without_recent(&self, values: &mut [FetchValue<'_>]) {
        if self.rev2 {
            for v in values {
                if let FetchValue::Flags(f) = v {
                    f.retain(
                        |x| !matches!(x, Flag::Extension(e) if e.eq_ignore_ascii_case("Recent")),
                    );
                }
            }
        }
    }

    fn decision_timed_out(&mut self, pending: Pending) {
        if self.literal_left > 0 {
            self.close();
            return;
        }
        let busy = || Completion::no_code(Code::Other("UNAVAILABLE".into(), None), "server busy");
        match pending {
            Pending::Login(tag, _) | Pending::Scram(tag, _) => {
                self.finish(&tag, Kind::Other, busy())
            }
            Pending::Append(tag) | Pending::Catenate(tag) => {
                self.refuse_append_part();
                self.finish(&tag, Kind::Other, busy());
            }
            Pending::AppendCommit(tag) => self.finish(&tag, Kind::Other, busy()),
            Pending::Request(tag, Kind::Select { .. }) => {
                self.state = State::Authenticated;
                self.finish(&tag, Kind::Other, busy());
            }
            Pending::Request(tag, kind) => self.finish(&tag, kind, busy()),
        }
    }

    fn run_inbox(&mut self) {
        let mut inbox = std::mem::replace(&mut self.inbox, Inbox::new(0));
        inbox.drain(|b| self.consume(b));
        self.inbox = inbox;
    }

    fn consume(&mut self, input: &[u8]) -> Consumed {
        let used = self.run(input);
        Consumed {
            used,
            keep: !matches!(self.state, State::Closed | State::AwaitTls),
        }
    }

    fn resume(&mut self) {
        if !self.decisions.is_pending()
            && self.penalty.is_none()
            && !self.is_closed()
            && !self.inbox.is_empty()
        {
            self.run_inbox();
        }
        self.after_run();
    }

    fn after_run(&mut self) {
        if self.penalty.is_none()
            && (!self.decisions.is_pending()
                || self.out.len() >= self.config.limits.max_buffered_output)
        {
            self.flush();
        }
    }

    fn maybe_flush(&mut self) {
        if self.out.len() >= self.config.limits.max_buffered_output && self.penalty.is_none() {
            self.flush();
        }
    }

    fn token(&mut self, p: Pending) -> Token {
        self.decisions
            .issue(self.now, self.config.timeouts.decision, p)
    }

    fn event(&mut self, e: Event) {
        self.flush();
        self.queue.push_back(Output::Event(e));
    }

    fn request(&mut self, tag: Tag, kind: Kind, request: Request) {
        let token = self.token(Pending::Request(tag, kind));
        self.event(Event::Request { token, request });
    }

    fn status(&mut self, tag: Option<&Tag>, kind: StatusKind, code: Option<Code>, text: &str) {
        let r = Response::Status {
            tag: tag.cloned(),
            kind,
            code,
            text: text.to_owned(),
        };
        self.untagged(&r);
    }

    fn tagged(&mut self, tag: &Tag, kind: StatusKind, code: Option<Code>, text: &str) {
        self.status(Some(tag), kind, code, text);
    }

    fn untagged_status(&mut self, kind: StatusKind, code: Option<Code>, text: &str) {
        self.status(None, kind, code, text);
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let b = std::mem::take(&mut self.out).freeze();
            self.queue.push_back(Output::Transmit(b));
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.inbox.clear();
        self.decisions.clear();
        self.idle = None;
        self.penalty = None;
        self.flush();
        self.queue.push_back(Output::Closed);
    }

    fn bye(&mut self, text: &str) {
        self.abort_append();
        self.untagged_status(StatusKind::Bye, None, text);
        self.close();
    }

    fn abort_append(&mut self) {
        if self.append.take().is_some() {
            self.event(Event::AppendAbort);
        }
    }

    /// A bad command: BAD, and before login, counted towards BYE.
    fn bad(&mut self, tag: Option<&Tag>, text: &str) {
        self.status(tag, StatusKind::Bad, None, text);
        if self.identity.is_none() {
            self.errors += 1;
            if self.errors >= self.config.limits.max_errors {
                self.bye("Too many invalid commands");
            }
        }
    }

    fn login_failed(&mut self, tag: &Tag, completion: Completion) {
        self.login_failures += 1;
        let code = completion
            .code
            .or(Some(Code::Other("AUTHENTICATIONFAILED".into(), None)));
        self.tagged(tag, StatusKind::No, code, &completion.text);
        if self.login_failures >= self.config.limits.max_auth_failures {
            self.bye("Too many failed logins");
            return;
        }
        // Slowed: the NO goes out after a delay that grows per failure.
        let delay = self
            .config
            .timeouts
            .auth_failure_delay
            .saturating_mul(self.login_failures);
        if !delay.is_zero() {
            self.penalty = Some(session_core::deadline_after(self.now, delay));
        }
    }

    /// Hands the held literal8 message to the application, its binary
    /// parts converted to base64 (text to quoted-printable). What cannot be
    /// converted and holds NUL is refused at the end of the APPEND.
    fn release_binary(&mut self) {
        let Some(a) = self.append.as_mut() else {
            return;
        };
        let Some(held) = a.held.take() else {
            return;
        };
        let message = match session_core::transfer::to_seven_bit(&held) {
            Ok(converted) => Bytes::from(converted),
            // 8-bit headers (UTF8=ACCEPT): kept as they are.
            Err(_) => held.freeze(),
        };
        // NUL left over (in a header, or no MIME structure to convert):
        // nothing a mail store may hold.
        if memchr::memchr(0, &message).is_some() {
            a.nul_binary = true;
            return;
        }
        if !message.is_empty() {
            self.queue
                .push_back(Output::Event(Event::AppendData(message)));
        }
    }

    /// Processes as much of `input` as possible; returns bytes consumed.
    fn run(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len()
            && !self.decisions.is_pending()
            && self.penalty.is_none()
            && !self.cut
            && !matches!(self.state, State::Closed | State::AwaitTls)
        {
            let (used, item) = self.reader.push(&input[pos..]);
            pos += used;
            match item {
                Some(Item::Command(line)) => self.command(&line),
                Some(Item::Continue) => {
                    self.out.extend_from_slice(b"+ Ready for literal data\r\n");
                    self.flush();
                }
                Some(Item::Refused { tag, reason }) => {
                    self.auth = None;
                    self.bad(tag.as_ref(), reason)
                }
                Some(Item::AppendMessage { args, size, first }) => {
                    self.append_message(&args, size, first)
                }
                Some(Item::AppendData(chunk)) => {
                    if let Some(a) = self.append.as_mut() {
                        if let Some(held) = a.held.as_mut() {
                            held.extend_from_slice(chunk);
                            continue;
                        }
                        a.nul |= memchr::memchr(0, chunk).is_some();
                    }
                    self.queue
                        .push_back(Output::Event(Event::AppendData(Bytes::copy_from_slice(
                            chunk,
                        ))));
                }
                Some(Item::AppendEnd) => {
                    self.release_binary();
                    if let Some(a) = self.append.take() {
                        if a.nul {
                            self.event(Event::AppendAbort);
                            self.bad(Some(&a.tag), "NUL is not allowed in a message");
                        } else if a.nul_binary {
                            self.event(Event::AppendAbort);
                            self.tagged(
                                &a.tag,
                                StatusKind::No,
                                Some(Code::Other("UNKNOWN-CTE".into(), None)),
                                "binary content that cannot be converted",
                            );
                        } else {
                            let token = self.token(Pending::AppendCommit(a.tag));
                            self.event(Event::AppendCommit { token });
                        }
                    }
                }
                Some(Item::AppendSyntax) => {
                    if let Some(a) = self.append.take() {
                        self.event(Event::AppendAbort);
                        self.bad(Some(&a.tag), "invalid APPEND arguments");
                    }
                }
                None => {
                    if used == 0 {
                        break;
                    }
                }
            }
            self.maybe_flush();
        }
        if self.state == State::AwaitTls || std::mem::take(&mut self.cut) {
            // A clean cut: nothing sent with STARTTLS in plaintext, or
            // uncompressed after COMPRESS, counts.
            self.reader.reset();
            pos = input.len();
        }
        pos
    }

    fn append_message(&mut self, args: &[u8], size: u64, first: bool) {
        // Flags and date parsed through the APPEND grammar itself.
        let mut probe = if first {
            args.to_vec()
        } else {
            b"x APPEND INBOX".to_vec()
        };
        if !first {
            probe.extend_from_slice(args);
        }
        probe.extend_from_slice(reader::probe_tail(args));
        let parsed = Command::parse(&probe, self.utf8);
        let (tag, mailbox, mut messages) = match parsed {
            Ok(Command {
                tag,
                body: CommandBody::Append { mailbox, messages },
            }) if !messages.is_empty() => match (first, self.append.as_ref()) {
                (true, _) => (tag, mailbox, messages),
                (false, Some(a)) => (a.tag.clone(), a.mailbox.clone(), messages),
                (false, None) => (tag, mailbox, Vec::new()),
            },
            _ => {
                self.reader.refuse_append();
                match self.append.take() {
                    Some(a) => {
                        self.event(Event::AppendAbort);
                        self.bad(Some(&a.tag), "invalid APPEND arguments");
                    }
                    None => self.bad(None, "invalid APPEND arguments"),
                }
                return;
            }
        };
        // The literal the reader stopped at is the last message; CATENATE
        // messages may come before it (RFC 4469 with MULTIAPPEND).
        let Some(msg) = messages.pop() else {
            self.reader.refuse_append();
            return;
        };
        if !messages.is_empty() && !self.offers("CATENATE") {
            self.reader.refuse_append();
            if self.append.take().is_some() {
                self.event(Event::AppendAbort);
            }
            self.bad(Some(&tag), "CATENATE is not offered");
            return;
        }
        if !self.can_use_mailboxes() {
            self.reader.refuse_append();
            self.bad(Some(&tag), "APPEND needs a login");
            return;
        }
        if size > self.config.limits.max_append {
            self.reader.refuse_append();
            if self.append.take().is_some() {
                self.event(Event::AppendAbort);
            }
            self.finish(
                &tag,
                Kind::Other,
                Completion::no_code(Code::Other("TOOBIG".into(), None), "message too large"),
            );
            return;
        }
        self.release_binary();
        let binary = args.ends_with(b"~");
        let mut parts: VecDeque<AppendPart> = messages
            .into_iter()
            .map(|m| AppendPart::Catenate(m.into_owned()))
            .collect();
        parts.push_back(AppendPart::Literal {
            flags: msg.flags,
            date: msg.date,
            size,
        });
        let previous = if first { None } else { self.append.as_ref() };
        self.append = Some(Append {
            tag,
            mailbox,
            issued: previous.map_or(0, |a| a.issued),
            whole: false,
            parts,
            nul: previous.is_some_and(|a| a.nul),
            nul_binary: previous.is_some_and(|a| a.nul_binary),
            held: binary.then(BytesMut::new),
        });
        self.next_append_part();
    }

    /// Announces the next message of the APPEND under way: a CATENATE one
    /// to build, or the literal to stream; after the last CATENATE message
    /// of a command read whole, the commit.
    fn next_append_part(&mut self) {
        let Some(a) = self.append.as_mut() else {
            return;
        };
        let index = a.issued;
        let (tag, mailbox) = (a.tag.clone(), a.mailbox.clone());
        match a.parts.pop_front() {
            Some(AppendPart::Catenate(m)) => {
                a.issued += 1;
                let token = self.token(Pending::Catenate(tag));
                self.event(Event::Request {
                    token,
                    request: Request::Catenate {
                        mailbox,
                        flags: m.flags,
                        date: m.date,
                        parts: m.catenate.unwrap_or_default(),
                        index,
                    },
                });
            }
            Some(AppendPart::Literal { flags, date, size }) => {
                a.issued += 1;
                let token = self.token(Pending::Append(tag));
                self.event(Event::Request {
                    token,
                    request: Request::Append {
                        mailbox,
                        flags,
                        date,
                        size,
                        index,
                    },
                });
            }
            None if a.whole => {
                self.append = None;
                let token = self.token(Pending::AppendCommit(tag));
                self.event(Event::AppendCommit { token });
            }
            None => {}
        }
    }

    /// A message of the APPEND was refused: the literal the reader stopped
    /// at is not read, and what was staged before is dropped.
    fn refuse_append_part(&mut self) {
        let Some(a) = self.append.take() else {
            return;
        };
        if !a.whole {
            self.reader.refuse_append();
        }
        // The refused message was announced too: more than one means
        // some were staged.
        if a.issued > 1 {
            self.event(Event::AppendAbort);
        }
    }

    fn can_use_mailboxes(&self) -> bool {
        matches!(self.state, State::Authenticated | State::Selected { .. })
    }

    fn command(&mut self, line: &[u8]) {
        if let Some((tag, exchange)) = self.auth.take() {
            return self.sasl_response(tag, exchange, line);
        }
        if let Some(tag) = self.idle.take() {
            self.keepalive = None;
            self.idle_until = None;
            if crate::is_idle_done(line) {
                self.finish(&tag, Kind::Other, Completion::ok("IDLE terminated"));
            } else {
                self.bad(Some(&tag), "expected DONE");
            }
            return;
        }
        let cmd = match Command::parse(line, self.utf8) {
            Ok(c) => c,
            Err(e) => {
                let text = format!("{}", e.error);
                // Only a whole tag is echoed: `a+b` is not answered as `a`.
                let tag = e.tag.filter(|t| line.get(t.as_str().len()) == Some(&b' '));
                if let (Some(t), crate::SyntaxError::Invalid(why)) = (&tag, &e.error)
                    && why.contains("modified UTF-7")
                {
                    // Well-formed, but no mailbox can have that name.
                    return self.tagged(
                        t,
                        StatusKind::No,
                        Some(Code::Other("CANNOT".into(), None)),
                        "mailbox name is not modified UTF-7",
                    );
                }
                return self.bad(tag.as_ref(), &text);
            }
        };
        let tag = cmd.tag;
        let state = self.state;
        let authed = self.can_use_mailboxes();
        let selected = matches!(state, State::Selected { .. });
        let read_only = matches!(state, State::Selected { read_only: true });
        use CommandBody as C;
        match cmd.body {
            C::Capability => {
                let caps = self.capabilities();
                self.untagged(&Response::Capability(caps));
                self.finish(&tag, Kind::Other, Completion::ok("CAPABILITY completed"));
            }
            C::Noop | C::Check => {
                self.finish(&tag, Kind::Other, Completion::ok("NOOP completed"));
            }
            C::Logout => {
                self.abort_append();
                self.untagged_status(StatusKind::Bye, None, "Logging out");
                self.tagged(&tag, StatusKind::Ok, None, "LOGOUT completed");
                self.close();
            }
            C::Id(_) => {
                let fields = self
                    .config
                    .id
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_bytes().to_vec().into(),
                            Some(v.as_bytes().to_vec().into()),
                        )
                    })
                    .collect();
                self.untagged(&Response::Id(Some(fields)));
                self.finish(&tag, Kind::Other, Completion::ok("ID completed"));
            }
            C::StartTls => {
                if state != State::NotAuthenticated || !self.config.starttls || self.tls {
                    return self.bad(Some(&tag), "STARTTLS not available");
                }
                self.tagged(&tag, StatusKind::Ok, None, "Begin TLS negotiation now");
                self.state = State::AwaitTls;
                self.flush();
                self.queue.push_back(Output::StartTls);
            }
            C::Login { username, password } => {
                if state != State::NotAuthenticated {
                    return self.bad(Some(&tag), "already logged in");
                }
                if !self.plaintext_ok() {
                    return self.tagged(
                        &tag,
                        StatusKind::No,
                        Some(Code::Other("PRIVACYREQUIRED".into(), None)),
                        "LOGIN needs TLS (STARTTLS first)",
                    );
                }
                let (Ok(user), Ok(pass)) = (
                    String::from_utf8(username.into_owned()),
                    String::from_utf8(password.into_owned()),
                ) else {
                    return self
                        .login_failed(&tag, Completion::no("user name and password are UTF-8"));
                };
                let token = self.token(Pending::Login(tag, user.clone()));
                self.event(Event::Login {
                    token,
                    username: user,
                    check: LoginCheck::Password(sasl::Secret::new(pass)),
                });
            }
            C::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(tag, &mechanism, initial_response),
            C::Enable(caps) => {
                if !authed {
                    return self.bad(Some(&tag), "ENABLE needs a login");
                }
                let mut on: Vec<String> = Vec::new();
                for c in caps {
                    let name = if c.eq_ignore_ascii_case("UTF8=ACCEPT") {
                        "UTF8=ACCEPT"
                    } else if c.eq_ignore_ascii_case("IMAP4rev2") {
                        // RFC 9051 includes UTF8=ACCEPT (RFC 9755).
                        self.rev2 = true;
                        "IMAP4rev2"
                    } else if c.eq_ignore_ascii_case("CONDSTORE") && self.offers("CONDSTORE") {
                        self.enable_condstore();
                        "CONDSTORE"
                    } else if c.eq_ignore_ascii_case("QRESYNC") && self.offers("QRESYNC") {
                        // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                        self.enable_condstore();
                        self.qresync = true;
                        "QRESYNC"
                    } else {
                        continue;
                    };
                    if matches!(name, "UTF8=ACCEPT" | "IMAP4rev2") {
                        self.utf8 = true;
                        self.reader.set_utf8(true);
                    }
                    if !on.iter().any(|x| x == name) {
                        on.push(name.to_owned());
                    }
                }
                self.untagged(&Response::Enabled(on));
                self.finish(&tag, Kind::Other, Completion::ok("ENABLE completed"));
            }
            C::GetQuotaRoot(mailbox) if authed => {
                self.request(tag, Kind::Other, Request::GetQuotaRoot { mailbox });
            }
            C::GetQuota(root) if authed => {
                self.request(tag, Kind::Other, Request::GetQuota { root });
            }
            // Limits are the administrator's (RFC 9208 §4.1.3 lets a server
            // refuse SETQUOTA).
            C::SetQuota { .. } if authed => self.tagged(
                &tag,
                StatusKind::No,
                Some(Code::Other("NOPERM".into(), None)),
                "quotas are set by the administrator",
            ),
            C::Namespace if authed => {
                let personal = vec![NamespaceEntry {
                    prefix: b""[..].into(),
                    delimiter: Some('/'),
                    extensions: Vec::new(),
                }];
                self.untagged(&Response::Namespace([personal, Vec::new(), Vec::new()]));
                self.finish(&tag, Kind::Other, Completion::ok("NAMESPACE completed"));
            }
            C::Idle if authed => {
                self.out.extend_from_slice(b"+ idling\r\n");
                if selected {
                    self.flush_view(true, false);
                }
                self.idle = Some(tag);
                self.keepalive = Some(session_core::deadline_after(
                    self.now,
                    self.config.timeouts.idle_keepalive,
                ));
                self.idle_until = Some(session_core::deadline_after(
                    self.now,
                    self.config.timeouts.idle,
                ));
                self.flush();
            }
            C::Select {
                mailbox,
                condstore,
                qresync,
            } if authed => self.select(tag, mailbox, false, condstore, qresync),
            C::Examine {
                mailbox,
                condstore,
                qresync,
            } if authed => self.select(tag, mailbox, true, condstore, qresync),
            C::Create(m) if authed => self.request(tag, Kind::Other, Request::Create(m)),
            C::Delete(m) if authed => self.request(tag, Kind::Other, Request::Delete(m)),
            C::Rename(from, to) if authed => {
                self.request(tag, Kind::Other, Request::Rename { from, to })
            }
            C::Subscribe(mailbox) if authed => {
                self.request(tag, Kind::Other, Request::Subscribe { mailbox, on: true })
            }
            C::Unsubscribe(mailbox) if authed => {
                self.request(tag, Kind::Other, Request::Subscribe { mailbox, on: false })
            }
            C::List {
                select,
                reference,
                patterns,
                ret,
            } if authed => self.request(
                tag,
                Kind::Other,
                Request::List {
                    lsub: false,
                    reference,
                    patterns,
                    select,
                    ret,
                },
            ),
            C::Lsub { reference, pattern } if authed => self.request(
                tag,
                Kind::Other,
                Request::List {
                    lsub: true,
                    reference,
                    patterns: vec![pattern],
                    select: Vec::new(),
                    ret: Vec::new(),
                },
            ),
            C::Status { mailbox, items } if authed => {
                if items.contains(&crate::StatusItem::HighestModSeq) {
                    self.enable_condstore();
                }
                self.request(tag, Kind::Other, Request::Status { mailbox, items })
            }
            C::Append { mailbox, messages }
                if authed
                    && self.offers("CATENATE")
                    && messages.iter().all(|m| m.catenate.is_some()) =>
            {
                // Only CATENATE messages (their TEXT parts read with the
                // command): each is built by the application in turn.
                self.append = Some(Append {
                    tag,
                    mailbox,
                    issued: 0,
                    whole: true,
                    parts: messages
                        .into_iter()
                        .map(|m| AppendPart::Catenate(m.into_owned()))
                        .collect(),
                    nul: false,
                    nul_binary: false,
                    held: None,
                });
                self.next_append_part();
            }
            C::Append { .. } if authed => {
                // A whole APPEND only arrives here when its message literal
                // was empty (`{0}`) and read with the command.
                self.bad(Some(&tag), "empty APPEND messages are not stored");
            }
            C::Close if selected => {
                if read_only {
                    self.state = State::Authenticated;
                    self.view = View::default();
                    self.live.clear();
                    self.tagged(&tag, StatusKind::Ok, None, "CLOSE completed");
                } else {
                    self.request(tag, Kind::Close, Request::Close);
                }
            }
            C::CancelUpdate(tags) if selected && self.offers("CONTEXT=SEARCH") => {
                self.live.retain(|l| !tags.contains(&l.tag));
                self.finish(&tag, Kind::Other, Completion::ok("CANCELUPDATE completed"));
            }
            C::Compress(mechanism) if authed && self.config.compress => {
                if self.compressed {
                    return self.tagged(
                        &tag,
                        StatusKind::No,
                        Some(Code::Other("COMPRESSIONACTIVE".into(), None)),
                        "DEFLATE is on already",
                    );
                }
                if mechanism != "DEFLATE" {
                    return self.bad(Some(&tag), "only DEFLATE is offered");
                }
                self.tagged(&tag, StatusKind::Ok, None, "DEFLATE active");
                self.flush();
                self.queue.push_back(Output::Compress);
                self.compressed = true;
                self.cut = true;
            }
            C::Unselect if selected => {
                self.state = State::Authenticated;
                self.view = View::default();
                self.live.clear();
                self.tagged(&tag, StatusKind::Ok, None, "UNSELECT completed");
            }
            C::Expunge(uids) if selected => {
                if read_only {
                    return self.finish(
                        &tag,
                        Kind::Other,
                        Completion::no_code(Code::ReadOnly, "mailbox is read-only"),
                    );
                }
                let uids = uids.map(|set| {
                    self.resolve(&set, true)
                        .into_iter()
                        .map(|m| m.uid)
                        .collect()
                });
                self.request(tag, Kind::Expunge, Request::Expunge { uids });
            }
            C::Fetch {
                uid,
                set,
                mut items,
                changed_since,
                vanished,
            } if selected => {
                if vanished && !(uid && self.qresync && changed_since.is_some()) {
                    return self.bad(
                        Some(&tag),
                        "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC",
                    );
                }
                let Some(messages) = self.messages(&tag, &set, uid) else {
                    return;
                };
                if changed_since.is_some() || items.contains(&crate::FetchItem::ModSeq) {
                    self.enable_condstore();
                }
                // CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1).
                if changed_since.is_some() && !items.contains(&crate::FetchItem::ModSeq) {
                    items.push(crate::FetchItem::ModSeq);
                }
                let expunge_issued = messages.iter().any(|m| self.view.is_expunged(m.uid));
                let vanished = vanished.then_some(set);
                if messages.is_empty() && vanished.is_none() {
                    return self.finish(
                        &tag,
                        Kind::Fetch {
                            uid,
                            expunge_issued: false,
                            vanished: None,
                        },
                        Completion::ok("FETCH completed"),
                    );
                }
                let items = items
                    .into_iter()
                    .map(crate::FetchItem::into_owned)
                    .collect();
                self.request(
                    tag,
                    Kind::Fetch {
                        uid,
                        expunge_issued,
                        vanished: vanished.clone(),
                    },
                    Request::Fetch {
                        messages,
                        items,
                        uid,
                        changed_since,
                        vanished: vanished.is_some(),
                    },
                );
            }
            C::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            } if selected => {
                if read_only {
                    return self.finish(
                        &tag,
                        Kind::Other,
                        Completion::no_code(Code::ReadOnly, "mailbox is read-only"),
                    );
                }
                let Some(messages) = self.messages(&tag, &set, uid) else {
                    return;
                };
                if unchanged_since.is_some() {
                    self.enable_condstore();
                }
                let messages: Vec<Message> = messages
                    .into_iter()
                    .filter(|m| !self.view.is_expunged(m.uid))
                    .collect();
                let kind = Kind::Store { uid, silent };
                if messages.is_empty() {
                    return self.finish(&tag, kind, Completion::ok("STORE completed"));
                }
                self.request(
                    tag,
                    kind,
                    Request::Store {
                        messages,
                        op,
                        flags,
                        uid,
                        unchanged_since,
                    },
                );
            }
            C::Search {
                uid,
                ret,
                charset,
                keys,
            } if selected => {
                let Some(keys) = self.search_keys(&tag, charset.as_deref(), keys) else {
                    return;
                };
                let modseq = keys.iter().any(uses_modseq);
                if modseq {
                    self.enable_condstore();
                }
                let update = ret
                    .as_ref()
                    .is_some_and(|r| r.contains(&SearchReturn::Update));
                if update && !self.offers("CONTEXT=SEARCH") {
                    return self.bad(Some(&tag), "UPDATE needs CONTEXT=SEARCH");
                }
                self.request(
                    tag,
                    Kind::Search {
                        uid,
                        ret: ret.clone(),
                        modseq,
                        update: update.then(|| keys.clone()),
                    },
                    Request::Search { keys, uid, ret },
                );
            }
            C::Sort {
                uid,
                ret,
                criteria,
                charset,
                keys,
            } if selected => {
                let Some(keys) = self.search_keys(&tag, Some(&charset), keys) else {
                    return;
                };
                self.request(
                    tag,
                    Kind::Sort { uid, ret },
                    Request::Sort {
                        criteria,
                        keys,
                        uid,
                    },
                );
            }
            C::Thread {
                uid,
                algorithm,
                charset,
                keys,
            } if selected => {
                let Some(keys) = self.search_keys(&tag, Some(&charset), keys) else {
                    return;
                };
                self.request(
                    tag,
                    Kind::Thread { uid },
                    Request::Thread {
                        algorithm,
                        keys,
                        uid,
                    },
                );
            }
            C::Copy { uid, set, mailbox } if selected => self.copy(tag, uid, &set, mailbox, false),
            C::Move { uid, set, mailbox } if selected => {
                if read_only {
                    return self.finish(
                        &tag,
                        Kind::Other,
                        Completion::no_code(Code::ReadOnly, "mailbox is read-only"),
                    );
                }
                self.copy(tag, uid, &set, mailbox, true)
            }
            _ => {
                let text = if authed {
                    "command not valid in this state"
                } else {
                    "log in first"
                };
                self.bad(Some(&tag), text);
            }
        }
    }

    /// The messages a set names; `None` after answering BAD for numbers
    /// the client cannot know.
    fn messages(&mut self, tag: &Tag, set: &SequenceSet, uid: bool) -> Option<Vec<Message>> {
        if !uid {
            let exists = self.view.exists();
            let beyond = set.ranges().iter().any(|(a, b)| {
                [a, b]
                    .iter()
                    .any(|n| matches!(n, SeqNumber::Value(v) if *v > exists))
            });
            if beyond {
                self.tagged(
                    tag,
                    StatusKind::Bad,
                    None,
                    "invalid message sequence number",
                );
                return None;
            }
        }
        Some(self.resolve(set, uid))
    }

    /// The messages a set names; `$` is the saved search result.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<Message> {
        if !set.is_saved() {
            return self.view.resolve(set, uid);
        }
        let mut out: Vec<Message> = self
            .saved
            .iter()
            .filter_map(|u| self.view.seq_of(*u).map(|seq| Message { seq, uid: *u }))
            .collect();
        out.sort_unstable();
        out
    }

    /// Search keys with `$` replaced by the UIDs it stands for.
    fn with_saved(&self, key: crate::SearchKey<'static>) -> crate::SearchKey<'static> {
        use crate::SearchKey as K;
        match key {
            K::Seq(s) | K::Uid(s) if s.is_saved() => {
                let uids: Vec<u32> = self.resolve(&s, true).iter().map(|m| m.uid).collect();
                match SequenceSet::from_numbers(&uids) {
                    Some(set) => K::Uid(set),
                    // Nothing saved matches nothing.
                    None => K::Not(Box::new(K::All)),
                }
            }
            K::Not(k) => K::Not(Box::new(self.with_saved(*k))),
            K::Or(a, b) => K::Or(Box::new(self.with_saved(*a)), Box::new(self.with_saved(*b))),
            K::And(ks) => K::And(ks.into_iter().map(|k| self.with_saved(k)).collect()),
            other => other,
        }
    }

    fn copy(&mut self, tag: Tag, uid: bool, set: &SequenceSet, mailbox: Mailbox, moving: bool) {
        let Some(messages) = self.messages(&tag, set, uid) else {
            return;
        };
        let messages: Vec<Message> = messages
            .into_iter()
            .filter(|m| !self.view.is_expunged(m.uid))
            .collect();
        if messages.is_empty() {
            let verb = if moving { "MOVE" } else { "COPY" };
            return self.finish(
                &tag,
                Kind::Other,
                Completion::ok(format!("{verb} completed (no messages)")),
            );
        }
        self.request(
            tag,
            Kind::Copy { moving },
            Request::Copy {
                messages,
                mailbox,
                moving,
                uid,
            },
        );
    }

    fn select(
        &mut self,
        tag: Tag,
        mailbox: Mailbox,
        read_only: bool,
        condstore: bool,
        qresync: Option<crate::QResync>,
    ) {
        if qresync.is_some() && !self.qresync {
            return self.bad(Some(&tag), "ENABLE QRESYNC first");
        }
        if condstore && self.offers("CONDSTORE") {
            // SELECT reports HIGHESTMODSEQ itself.
            self.condstore = true;
        }
        // Selecting leaves the mailbox selected before, whatever happens;
        // IMAP4rev2 and QRESYNC say so (RFC 9051 §6.3.2, RFC 7162 §3.2.11).
        if (self.rev2 || self.qresync) && self.is_selected() {
            self.untagged_status(
                StatusKind::Ok,
                Some(Code::Closed),
                "previous mailbox closed",
            );
        }
        self.state = State::Authenticated;
        self.view = View::default();
        self.live.clear();
        self.saved.clear();
        self.request(
            tag,
            Kind::Select {
                read_only,
                qresync: qresync.clone(),
            },
            Request::Select {
                mailbox,
                read_only,
                qresync,
            },
        );
    }

    fn authenticate(&mut self, tag: Tag, mechanism: &str, initial: Option<String>) {
        if self.state != State::NotAuthenticated {
            return self.bad(Some(&tag), "already logged in");
        }
        let Some(mech) =
            Mechanism::from_name(mechanism).filter(|m| self.mechanisms().any(|x| x == *m))
        else {
            let code = (!self.plaintext_ok()).then(|| Code::Other("PRIVACYREQUIRED".into(), None));
            return self.tagged(&tag, StatusKind::No, code, "mechanism not available");
        };
        let initial = match initial.as_deref() {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(t) => match sasl::decode_base64(t) {
                Ok(v) => Some(v),
                Err(_) => return self.bad(Some(&tag), "invalid base64"),
            },
        };
        self.nonces += 1;
        let mut random = self.entropy.to_vec();
        random.extend_from_slice(&self.nonces.to_le_bytes());
        let mut exchange = Box::new(ServerExchange::new(mech, &random, &self.config.hostname));
        let step = exchange.start(initial.as_deref());
        self.sasl_step(tag, exchange, step);
    }

    fn sasl_response(&mut self, tag: Tag, mut exchange: Box<ServerExchange>, line: &[u8]) {
        let line = line.strip_suffix(b"\r\n").unwrap_or(line);
        match sasl::decode_response(line) {
            Ok(sasl::Response::Cancel) => {
                self.tagged(&tag, StatusKind::Bad, None, "AUTHENTICATE cancelled")
            }
            Err(_) => self.bad(Some(&tag), "invalid base64"),
            Ok(sasl::Response::Data(d)) => {
                let step = exchange.respond(&d);
                self.sasl_step(tag, exchange, step);
            }
        }
    }

    fn sasl_step(&mut self, tag: Tag, exchange: Box<ServerExchange>, step: ServerStep) {
        match step {
            ServerStep::Challenge(c) => {
                self.out.extend_from_slice(b"+ ");
                self.out.extend_from_slice(sasl::encode(&c).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.flush();
                self.auth = Some((tag, exchange));
            }
            ServerStep::Verify(Credentials::Password {
                username, password, ..
            }) => {
                let token = self.token(Pending::Login(tag, username.clone()));
                self.event(Event::Login {
                    token,
                    username,
                    check: LoginCheck::Password(password),
                });
            }
            ServerStep::LookupScram { username, .. } => {
                let token = self.token(Pending::Scram(tag, exchange));
                self.event(Event::ScramLookup { token, username });
            }
            ServerStep::Success(id) => {
                let token = self.token(Pending::Login(tag, id.username.clone()));
                self.event(Event::Login {
                    token,
                    username: id.username,
                    check: LoginCheck::Verified,
                });
            }
            _ => self.login_failed(&tag, Completion::no("authentication failed")),
        }
    }
}

/// Whether a search key is or holds MODSEQ (a CONDSTORE-enabling SEARCH).
fn uses_modseq(key: &crate::SearchKey<'_>) -> bool {
    use crate::SearchKey as K;
    match key {
        K::ModSeq(_) => true,
        K::Not(k) => uses_modseq(k),
        K::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        K::And(ks) => ks.iter().any(uses_modseq),
        _ => false,
    }
}

/// Whether `uid` is in the ascending, merged `spans`.
fn spans_contain(spans: &[(u32, u32)], uid: u32) -> bool {
    let i = spans.partition_point(|&(_, hi)| hi < uid);
    spans.get(i).is_some_and(|&(lo, _)| lo <= uid)
}

/// ESEARCH's return data for `numbers` (ascending for SEARCH, in sort
/// order for ESORT: MIN and MAX are then the first and last sorted).
fn esearch_items(ret: &[SearchReturn], numbers: &[u32]) -> Vec<(String, String)> {
    let mut items = Vec::new();
    for r in ret {
        match r {
            SearchReturn::Min => {
                if let Some(m) = numbers.first() {
                    items.push(("MIN".to_owned(), m.to_string()));
                }
            }
            SearchReturn::Max => {
                if let Some(m) = numbers.last() {
                    items.push(("MAX".to_owned(), m.to_string()));
                }
            }
            SearchReturn::All => {
                if !numbers.is_empty() {
                    items.push(("ALL".to_owned(), compact(numbers)));
                }
            }
            SearchReturn::Count => items.push(("COUNT".to_owned(), numbers.len().to_string())),
            SearchReturn::Partial(a, b) => {
                // Positions (1-based; negative from the end), in the
                // result's order (sort order for ESORT).
                let (lo, hi) = (*a.min(b), *a.max(b));
                let n = i64::try_from(numbers.len()).unwrap_or(i64::MAX);
                let at = |p: i32| {
                    let p = i64::from(p);
                    if p < 0 { n + p + 1 } else { p }
                };
                let (from, to) = (at(lo).max(1), at(hi).min(n));
                let set = if from <= to {
                    let from = usize::try_from(from - 1).unwrap_or(0);
                    let to = usize::try_from(to).unwrap_or(0);
                    compact(&numbers[from..to])
                } else {
                    "NIL".to_owned()
                };
                items.push(("PARTIAL".to_owned(), format!("({lo}:{hi} {set})")));
            }
            SearchReturn::Save | SearchReturn::Update => {}
        }
    }
    items
}

fn compact(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

session_core::forward_session!(Session, Event);
