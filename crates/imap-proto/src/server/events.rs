//! What the IMAP server session hands to the application, and what the
//! application answers.

use bytes::Bytes;
use sasl::Secret;
use session_core::Token;

use super::view::Message;
use crate::{
    Code, FetchItem, Flag, ListReturn, ListSelect, Mailbox, SearchKey, SearchReturn, StatusItem,
    StoreOp,
};

/// What the session hands out: bytes, an [`Event`], or the transport steps
/// [`session_core::Output::StartTls`] and [`session_core::Output::Closed`].
pub type Output = session_core::Output<Event>;

/// How the client proves who it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginCheck {
    /// LOGIN or AUTHENTICATE PLAIN: check this password.
    Password(Secret<String>),
    /// AUTHENTICATE SCRAM-SHA-256: the proof was checked against the keys
    /// the application gave; just authorise.
    Verified,
}

/// An event; those with a token wait for an answer on the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A login: answer [`super::Session::accept_login`] or
    /// [`super::Session::reject`].
    Login {
        /// Answer with it.
        token: Token,
        /// Who.
        username: String,
        /// The proof.
        check: LoginCheck,
    },
    /// SCRAM needs the user's stored keys: answer
    /// [`super::Session::scram_credentials`].
    ScramLookup {
        /// Answer with it.
        token: Token,
        /// Who.
        username: String,
    },
    /// A command that needs the store: see [`Request`] for the answers.
    Request {
        /// Answer with it.
        token: Token,
        /// What.
        request: Request,
    },
    /// Bytes of the APPEND message accepted last, in order; no answer.
    AppendData(Bytes),
    /// The APPEND command is complete (every message accepted and
    /// streamed): store them all, then [`super::Session::complete`] with
    /// `APPENDUID`, or [`super::Session::reject`].
    AppendCommit {
        /// Answer with it.
        token: Token,
    },
    /// The APPEND under way failed (a syntax error after a message, the
    /// connection closing): drop what was staged; no answer.
    AppendAbort,
}

/// Commands the application carries out against its store. Answers: data
/// with [`super::Session::untagged`], [`super::Session::fetched`] (FETCH,
/// STORE), then [`super::Session::complete`] or [`super::Session::reject`];
/// SELECT with [`super::Session::selected`], SEARCH with
/// [`super::Session::searched`], EXPUNGE, CLOSE and MOVE with
/// [`super::Session::expunged`] before completing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// SELECT (`read_only` false) or EXAMINE: answer
    /// [`super::Session::selected`].
    Select {
        /// Which.
        mailbox: Mailbox,
        /// EXAMINE.
        read_only: bool,
        /// `(QRESYNC (…))` (RFC 7162 §3.2.5): fill [`Selected::changed`]
        /// and [`Selected::expunged_since`] from its MODSEQ (when its
        /// UIDVALIDITY matches).
        qresync: Option<crate::QResync>,
    },
    /// CREATE.
    Create(Mailbox),
    /// DELETE.
    Delete(Mailbox),
    /// RENAME.
    Rename {
        /// From.
        from: Mailbox,
        /// To.
        to: Mailbox,
    },
    /// SUBSCRIBE (`on`) or UNSUBSCRIBE.
    Subscribe {
        /// Which.
        mailbox: Mailbox,
        /// Subscribe or not.
        on: bool,
    },
    /// LIST or LSUB: answer with `Response::List` (and, for LIST-STATUS,
    /// `Response::MailboxStatus`) through [`super::Session::untagged`].
    List {
        /// LSUB.
        lsub: bool,
        /// The reference name.
        reference: String,
        /// The patterns (`*`, `%` wildcards); an empty pattern asks for the
        /// delimiter.
        patterns: Vec<String>,
        /// LIST-EXTENDED selection options.
        select: Vec<ListSelect>,
        /// LIST-EXTENDED return options.
        ret: Vec<ListReturn>,
    },
    /// STATUS: answer with `Response::MailboxStatus`.
    Status {
        /// Which.
        mailbox: Mailbox,
        /// What.
        items: Vec<StatusItem>,
    },
    /// APPEND of one message, before its data: accept with
    /// [`super::Session::accept`] (then [`Event::AppendData`] follows), or
    /// refuse with [`super::Session::reject`] (`TRYCREATE`, `TOOBIG`).
    Append {
        /// Where.
        mailbox: Mailbox,
        /// Initial flags.
        flags: Vec<Flag>,
        /// Internal date as sent (`dd-Mon-yyyy hh:mm:ss +zzzz`).
        date: Option<String>,
        /// Octets that follow.
        size: u64,
        /// 0 for the first message, then 1, 2… (MULTIAPPEND).
        index: usize,
    },
    /// A CATENATE message of an APPEND (RFC 4469), in its place among the
    /// command's messages: build it from `parts` (TEXT as it is; URL: a
    /// message, or a section of one, that this user may read, named by an
    /// IMAP URL, RFC 5092) and stage it as if its data had streamed, then
    /// [`super::Session::accept`] (nothing follows), or
    /// [`super::Session::reject`] (`BADURL`, `TRYCREATE`, `TOOBIG`): the
    /// whole APPEND fails and nothing is stored.
    Catenate {
        /// Where.
        mailbox: Mailbox,
        /// Initial flags.
        flags: Vec<Flag>,
        /// Internal date as sent.
        date: Option<String>,
        /// The parts, in order.
        parts: Vec<crate::CatenatePart<'static>>,
        /// 0 for the first message of the APPEND, then 1, 2…
        index: usize,
    },
    /// FETCH: for each message found, [`super::Session::fetched`] with its
    /// values (UID is added by the session when needed); `\Seen` is set
    /// by the application for non-peek body sections.
    Fetch {
        /// The messages, ascending.
        messages: Vec<Message>,
        /// The items asked.
        items: Vec<FetchItem<'static>>,
        /// UID FETCH.
        uid: bool,
        /// CHANGEDSINCE (CONDSTORE): answer only the messages whose
        /// MODSEQ is above it, with their MODSEQ (the session adds the
        /// item to `items`).
        changed_since: Option<u64>,
        /// `VANISHED` (QRESYNC, UID FETCH with CHANGEDSINCE): before the
        /// FETCH data, give the UIDs expunged since `changed_since` with
        /// [`super::Session::fetch_vanished`].
        vanished: bool,
    },
    /// STORE: report each changed message's new flags and MODSEQ with
    /// [`super::Session::fetched`] (the session words them for `.SILENT`
    /// and CONDSTORE); with `unchanged_since`, messages whose MODSEQ is
    /// above it are left alone and given to
    /// [`super::Session::store_modified`].
    Store {
        /// The messages, ascending.
        messages: Vec<Message>,
        /// Replace, add or remove.
        op: StoreOp,
        /// The flags.
        flags: Vec<Flag>,
        /// UID STORE.
        uid: bool,
        /// UNCHANGEDSINCE.
        unchanged_since: Option<u64>,
    },
    /// SEARCH: the matching UIDs through [`super::Session::searched`] (or,
    /// when a key is MODSEQ, [`super::Session::searched_with_modseq`]). The
    /// keys may name sequence numbers: evaluate them with
    /// [`crate::search`] against [`super::Session::view`].
    Search {
        /// The criteria (all must match).
        keys: Vec<SearchKey<'static>>,
        /// UID SEARCH.
        uid: bool,
        /// ESEARCH `RETURN` options (`None`: plain SEARCH).
        ret: Option<Vec<SearchReturn>>,
    },
    /// SORT (RFC 5256): the matching UIDs, sorted, through
    /// [`super::Session::sorted`] ([`crate::sort`] does the ordering).
    Sort {
        /// The order, most significant first.
        criteria: Vec<crate::SortCriterion>,
        /// Which messages (all must match).
        keys: Vec<SearchKey<'static>>,
        /// UID SORT.
        uid: bool,
    },
    /// THREAD (RFC 5256): the matching messages threaded, with UIDs,
    /// through [`super::Session::threaded`].
    Thread {
        /// The algorithm asked for.
        algorithm: crate::ThreadAlgorithm,
        /// Which messages (all must match).
        keys: Vec<SearchKey<'static>>,
        /// UID THREAD.
        uid: bool,
    },
    /// GETQUOTAROOT (RFC 9208): send `* QUOTAROOT` and `* QUOTA` with
    /// [`super::Session::untagged`], then complete.
    GetQuotaRoot {
        /// The mailbox asked about.
        mailbox: crate::Mailbox,
    },
    /// GETQUOTA (RFC 9208): send `* QUOTA` for the root, then complete (or
    /// refuse an unknown root).
    GetQuota {
        /// The quota root.
        root: String,
    },
    /// COPY or MOVE: complete with `COPYUID`; for MOVE, first
    /// [`super::Session::expunged`] with the moved UIDs.
    Copy {
        /// The messages, ascending.
        messages: Vec<Message>,
        /// Where to.
        mailbox: Mailbox,
        /// MOVE.
        moving: bool,
        /// UID COPY / UID MOVE.
        uid: bool,
    },
    /// EXPUNGE (`uids` None) or UID EXPUNGE: remove `\Deleted` messages
    /// (among `uids`), report them with [`super::Session::expunged`].
    Expunge {
        /// Only these (UID EXPUNGE).
        uids: Option<Vec<u32>>,
    },
    /// CLOSE: remove `\Deleted` messages without telling (skip that for a
    /// read-only mailbox), then complete.
    Close,
}

/// The mailbox as SELECT opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selected {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// The messages' UIDs (any order).
    pub uids: Vec<u32>,
    /// Those `\Recent` in this session (IMAP4rev1: the first session to
    /// see a message gets it).
    pub recent: Vec<u32>,
    /// Flags defined in the mailbox (FLAGS).
    pub flags: Vec<Flag>,
    /// Flags the client may set (PERMANENTFLAGS); `\*` is added when new
    /// keywords may be created.
    pub permanent_flags: Vec<Flag>,
    /// New keywords may be created.
    pub new_keywords: bool,
    /// The first message without `\Seen`, as a UID.
    pub first_unseen: Option<u32>,
    /// HIGHESTMODSEQ (CONDSTORE: never 0, RFC 7162 §3.1.2.1); `None` for a
    /// mailbox without MODSEQs (`NOMODSEQ`). A store should start a new
    /// mailbox at 1, so its first change is 2: an empty mailbox reported
    /// as 1 whose first change also got 1 would hide that change from a
    /// client resyncing from 1.
    pub highest_modseq: Option<u64>,
    /// MAILBOXID (RFC 8474 OBJECTID), sent as `OK [MAILBOXID (id)]`.
    pub mailbox_id: Option<String>,
    /// For `SELECT … (QRESYNC …)`: the messages whose MODSEQ is above the
    /// client's (any order); the session reports those the client named.
    pub changed: Vec<FlagState>,
    /// For `SELECT … (QRESYNC …)`: the UIDs expunged since the client's
    /// MODSEQ, or `None` when the expunge log no longer reaches back that
    /// far (the session then reports every known UID that is missing).
    pub expunged_since: Option<Vec<u32>>,
    /// Opened read-only (EXAMINE, or no write rights).
    pub read_only: bool,
}

impl Selected {
    /// A mailbox with these UIDs; the system flags, new keywords allowed.
    pub fn new(uid_validity: u32, uid_next: u32, uids: Vec<u32>) -> Selected {
        let system = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        Selected {
            uid_validity,
            uid_next,
            uids,
            recent: Vec::new(),
            flags: system.clone(),
            permanent_flags: system,
            new_keywords: true,
            first_unseen: None,
            highest_modseq: None,
            mailbox_id: None,
            changed: Vec::new(),
            expunged_since: None,
            read_only: false,
        }
    }
}

/// One message's flags at a MODSEQ (a QRESYNC resync, RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagState {
    /// The message.
    pub uid: u32,
    /// Its flags now.
    pub flags: Vec<Flag>,
    /// Its MODSEQ.
    pub modseq: u64,
}

/// How a command ends: `OK`, `NO` or `BAD` with an optional code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub(crate) kind: crate::StatusKind,
    pub(crate) code: Option<Code>,
    pub(crate) text: String,
}

impl Completion {
    /// `OK`.
    pub fn ok(text: impl Into<String>) -> Completion {
        Completion::new(crate::StatusKind::Ok, None, text)
    }

    /// `OK [code]`.
    pub fn ok_code(code: Code, text: impl Into<String>) -> Completion {
        Completion::new(crate::StatusKind::Ok, Some(code), text)
    }

    /// `NO`.
    pub fn no(text: impl Into<String>) -> Completion {
        Completion::new(crate::StatusKind::No, None, text)
    }

    /// `NO [code]`.
    pub fn no_code(code: Code, text: impl Into<String>) -> Completion {
        Completion::new(crate::StatusKind::No, Some(code), text)
    }

    /// `BAD` (the arguments were wrong).
    pub fn bad(text: impl Into<String>) -> Completion {
        Completion::new(crate::StatusKind::Bad, None, text)
    }

    fn new(kind: crate::StatusKind, code: Option<Code>, text: impl Into<String>) -> Completion {
        // Text cannot break the line: control characters become spaces.
        let text: String = text
            .into()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Completion {
            kind,
            code,
            text: if text.is_empty() { "done".into() } else { text },
        }
    }

    /// Whether this is `OK`.
    pub fn is_ok(&self) -> bool {
        self.kind == crate::StatusKind::Ok
    }
}
