//! The IMAP handler: glue between an `imap_proto::server::Session` and the
//! store. Store calls run off the async workers; the selected mailbox's
//! change feed wakes the connection (IDLE sees new mail at once).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use futures::StreamExt;
use imap_proto::mime::Structure;
use imap_proto::search::{self, SearchMessage};
use imap_proto::server::{
    Completion, Event, FlagState, LoginCheck, Request, Selected, Session, Token,
};
use imap_proto::{
    Code, FetchItem, FetchValue, Flag, ListReturn, ListSelect, Mailbox, Response, Rfc822Part,
    Section, SectionText, SeqNumber, SequenceSet, StatusItem, StatusKind, StoreOp,
};
use mailstore::{
    Change, ChangeFeed, FlagOp, Flags, MailboxName, MessageMeta, SpecialUse, Store, SystemFlag,
    UserName,
};

use crate::Handler;
use crate::accounts::verify_password;
use crate::routing::Ctx;
use crate::smtp::now_secs;
use crate::spool::{Body, Spooler};

/// Messages read per batch of a FETCH or SEARCH.
const BATCH: usize = 64;
/// Message bytes read per batch of a FETCH (at least one message).
const BATCH_BYTES: u64 = 1 << 20;

/// Messages at least this large are sent as a literal streamed from the
/// file in pieces of [`STREAM_CHUNK`] when BODY[] or RFC822 is asked.
const STREAM_MIN: u64 = 256 << 10;
/// Bytes read from a message file per streamed piece.
const STREAM_CHUNK: u64 = 256 << 10;

/// One message's FETCH answer: its UID, its values, and when its whole
/// body follows as a streamed literal, that literal's length.
type Answered = (u32, Vec<FetchValue<'static>>, Option<u64>);

/// One batch of FETCH answers, the `\Seen` changes made, and whether a
/// BINARY item met a transfer encoding it cannot undo.
type Batch = (Vec<Answered>, Vec<(u32, u64)>, bool);

/// An open message file.
struct MessageReader(Box<dyn Read + Send>);

impl std::fmt::Debug for MessageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageReader")
    }
}

/// A message body being streamed into a FETCH literal.
#[derive(Debug)]
struct Streaming {
    uid: u32,
    left: u64,
    reader: Option<MessageReader>,
}

/// A piece of a streamed body being read, with the reader to go on with.
type ChunkTask = tokio::task::JoinHandle<(Option<MessageReader>, Result<Vec<u8>, ()>)>;

/// The item that can be streamed (BODY[] or RFC822, whole), when it is the
/// only one that needs the message bytes: its label, and the other items.
fn stream_split(
    items: &[FetchItem<'static>],
) -> Option<(FetchValue<'static>, Vec<FetchItem<'static>>)> {
    let whole = |i: &FetchItem<'_>| match i {
        FetchItem::BodySection { section, .. } => {
            section.part.is_empty()
                && section.text == SectionText::Full
                && section.partial.is_none()
        }
        FetchItem::Rfc822 => true,
        _ => false,
    };
    let label = match items
        .iter()
        .filter(|i| whole(i))
        .collect::<Vec<_>>()
        .as_slice()
    {
        [FetchItem::BodySection { section, .. }] => FetchValue::BodySection {
            section: section.clone(),
            origin: None,
            data: None,
        },
        [FetchItem::Rfc822] => FetchValue::Rfc822 {
            part: Rfc822Part::Full,
            data: None,
        },
        _ => return None,
    };
    let rest: Vec<FetchItem<'static>> = items.iter().filter(|i| !whole(i)).cloned().collect();
    (!needs_bytes(&rest)).then_some((label, rest))
}

/// A FETCH being answered batch by batch.
#[derive(Debug)]
struct FetchJob {
    token: Token,
    mailbox: MailboxName,
    /// UIDs still to answer, in order.
    rest: std::collections::VecDeque<u32>,
    items: Arc<Vec<FetchItem<'static>>>,
    bytes: bool,
    summary: bool,
    seen: bool,
    /// The batch being read (kept across a cancelled `news`), with how
    /// many UIDs it covers.
    running: Option<(
        usize,
        tokio::task::JoinHandle<Result<Batch, mailstore::Error>>,
    )>,
    /// A batch read, for `deliver_news` to hand over.
    ready: Option<Result<Batch, ()>>,
    /// BODY[]/RFC822 streamed for large messages: its label, and the items
    /// answered before it.
    stream: Option<(FetchValue<'static>, Arc<Vec<FetchItem<'static>>>)>,
    /// Answers read, waiting to be handed over (behind a streamed body).
    queue: std::collections::VecDeque<Answered>,
    /// The body being streamed, the piece being read, the piece read.
    streaming: Option<Streaming>,
    chunk_running: Option<ChunkTask>,
    chunk_ready: Option<Result<Vec<u8>, ()>>,
    /// A BINARY item met an unknown transfer encoding: `NO [UNKNOWN-CTE]`.
    unknown_cte: bool,
}

/// Reads one FETCH batch (blocking): sets `\Seen` where the items ask,
/// then the values of each message.
fn fetch_batch(
    store: &Store,
    user: &UserName,
    mb: &MailboxName,
    uids: &[u32],
    job: (&[FetchItem<'static>], bool, bool, bool),
    stream: Option<&[FetchItem<'static>]>,
) -> Result<Batch, mailstore::Error> {
    let (items, bytes, summary, seen) = job;
    let mut metas = store.message_metas(user, mb, uids)?;
    let mut changed = Vec::new();
    if seen {
        let unseen: Vec<u32> = metas
            .iter()
            .filter(|m| !m.flags.contains(SystemFlag::Seen))
            .map(|m| m.uid)
            .collect();
        if !unseen.is_empty() {
            let seen = Flags::new().with(SystemFlag::Seen);
            changed = store
                .store_flags(user, mb, &unseen, FlagOp::Add, &seen, None)?
                .changed;
            metas = store.message_metas(user, mb, uids)?;
        }
    }
    let mut out = Vec::new();
    let mut unknown_cte = false;
    for meta in metas {
        // A large body goes out as a streamed literal after the rest.
        let (items, bytes, streamed) = match stream {
            Some(rest) if meta.size >= STREAM_MIN => (rest, false, Some(meta.size)),
            _ => (items, bytes, None),
        };
        let body = if bytes {
            read_message(store, user, mb, meta.uid)
        } else {
            None
        };
        let summary = if summary {
            Summary::load(store, user, mb, meta.uid, body.as_deref())
        } else {
            None
        };
        let mut v = fetch_values(items, &meta, &meta.flags, body.as_deref(), summary.as_ref());
        unknown_cte |= body.as_deref().is_some_and(|b| {
            items.iter().any(|i| match i {
                FetchItem::Binary { part, .. } | FetchItem::BinarySize(part) => {
                    Structure::parse(b).binary(b, part).is_err()
                }
                _ => false,
            })
        });
        if changed.iter().any(|(u, _)| *u == meta.uid)
            && !v.iter().any(|x| matches!(x, FetchValue::Flags(_)))
        {
            v.push(FetchValue::Flags(imap_flags(&meta.flags)));
        }
        out.push((meta.uid, v, streamed));
    }
    Ok((out, changed, unknown_cte))
}

/// One message of a MULTIAPPEND, staged until the command ends.
#[derive(Debug)]
struct Staged {
    mailbox: MailboxName,
    flags: Flags,
    date: i64,
    body: Option<Body>,
}

/// An IMAP connection: the logged-in user, the selected mailbox and its
/// change feed, and an APPEND being received.
#[derive(Debug)]
pub struct ImapConn {
    ctx: Arc<Ctx>,
    user: Option<UserName>,
    selected: Option<MailboxName>,
    uid_validity: u32,
    read_only: bool,
    /// UIDs that are `\Recent` in this session.
    recent: std::collections::BTreeSet<u32>,
    feed: Option<ChangeFeed>,
    news: Vec<Change>,
    /// Flag changes this connection made (UID → MODSEQ), not to be
    /// announced back to it.
    own: HashMap<u32, u64>,
    staged: Vec<Staged>,
    spool: Spooler,
    /// The FETCH being answered.
    job: Option<FetchJob>,
    /// Messages changed since the live searches (CONTEXT=SEARCH) were
    /// last brought up to date.
    live_dirty: std::collections::BTreeSet<u32>,
    /// While the client idles: live searches being evaluated (tag, the
    /// messages, the evaluation), and the results for the session.
    live_eval: Vec<LiveEval>,
    live_ready: Vec<(String, u32, bool)>,
}

/// One live search's evaluation on changed messages, off the connection.
type LiveEval = (
    String,
    Vec<u32>,
    tokio::task::JoinHandle<Option<Vec<(u32, u64)>>>,
);

impl ImapConn {
    /// A connection not logged in yet.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        ImapConn {
            spool: Spooler::new(ctx.store.clone()),
            ctx,
            user: None,
            selected: None,
            uid_validity: 0,
            read_only: false,
            recent: Default::default(),
            feed: None,
            news: Vec::new(),
            own: HashMap::new(),
            staged: Vec::new(),
            job: None,
            live_dirty: Default::default(),
            live_eval: Vec::new(),
            live_ready: Vec::new(),
        }
    }

    fn store(&self) -> Store {
        self.ctx.store.clone()
    }

    /// Claims `\Recent` for new messages of the selected mailbox (the
    /// first read-write session to see a message gets it).
    fn claim_recent(&mut self, uid: u32) -> bool {
        let (Some(user), Some(mb)) = (self.user.clone(), self.selected.clone()) else {
            return false;
        };
        if self.read_only {
            return false;
        }
        let Ok(mut map) = self.ctx.recent.lock() else {
            return false;
        };
        let floor = map.entry((user, mb, self.uid_validity)).or_insert(1);
        if uid >= *floor {
            *floor = uid + 1;
            self.recent.insert(uid);
            true
        } else {
            false
        }
    }

    /// Flags as this session shows them: `\Recent` added where it holds.
    fn shown_flags(&self, uid: u32, f: &Flags) -> Vec<Flag> {
        let mut v = imap_flags(f);
        if self.recent.contains(&uid) {
            v.push(Flag::Extension("Recent".into()));
        }
        v
    }

    fn deselect(&mut self) {
        self.selected = None;
        self.recent.clear();
        self.feed = None;
        self.news.clear();
        self.own.clear();
        self.live_dirty.clear();
        for (_, _, h) in self.live_eval.drain(..) {
            h.abort();
        }
        self.live_ready.clear();
    }
}

/// The session configuration the mail server uses: STARTTLS offered,
/// LOGIN only after it (unless `allow_plaintext_auth`), APPEND up to
/// `max_append` octets, and the extensions this handler answers.
pub fn session_config(
    hostname: &str,
    allow_plaintext_auth: bool,
    max_append: u64,
) -> imap_proto::server::Config {
    let mut c = imap_proto::server::Config::new(hostname);
    c.starttls = true;
    c.compress = true;
    c.allow_plaintext_auth = allow_plaintext_auth;
    c.limits.max_append = max_append;
    c.capabilities = [
        "UIDPLUS",
        "MULTIAPPEND",
        "CATENATE",
        "MOVE",
        "CHILDREN",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "SPECIAL-USE",
        "STATUS=SIZE",
        "CONDSTORE",
        "QRESYNC",
        "OBJECTID",
        "SORT",
        "SORT=DISPLAY",
        "ESORT",
        "CONTEXT=SEARCH",
        "QUOTA",
        "QUOTA=RES-STORAGE",
        "THREAD=ORDEREDSUBJECT",
        "THREAD=REFERENCES",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    c
}

/// Derives the IMAP summary (ENVELOPE, BODYSTRUCTURE) of one message that
/// was delivered to several users, once, and keeps it with every copy.
/// Blocking: run it off the async workers.
pub fn keep_summaries(store: &Store, mailbox: &MailboxName, copies: &[(UserName, u32)]) {
    let Some((user, uid)) = copies.first() else {
        return;
    };
    let Some(bytes) = read_message(store, user, mailbox, *uid) else {
        return;
    };
    let summary = Summary::of(&bytes).encode();
    for (u, uid) in copies {
        let _ = store.set_summary(u, mailbox, *uid, &summary);
    }
}

/// Runs store work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// The store's flags as IMAP flags.
pub fn imap_flags(f: &Flags) -> Vec<Flag> {
    let mut out: Vec<Flag> = f
        .system()
        .map(|s| match s {
            SystemFlag::Seen => Flag::Seen,
            SystemFlag::Answered => Flag::Answered,
            SystemFlag::Flagged => Flag::Flagged,
            SystemFlag::Deleted => Flag::Deleted,
            SystemFlag::Draft => Flag::Draft,
        })
        .collect();
    out.extend(f.keywords().map(|k| Flag::Keyword(k.to_owned())));
    out
}

/// IMAP flags as the store's; `None` for a keyword the store refuses.
fn store_flags(flags: &[Flag]) -> Option<Flags> {
    let mut out = Flags::new();
    for f in flags {
        match f {
            Flag::Seen => out.insert(SystemFlag::Seen),
            Flag::Answered => out.insert(SystemFlag::Answered),
            Flag::Flagged => out.insert(SystemFlag::Flagged),
            Flag::Deleted => out.insert(SystemFlag::Deleted),
            Flag::Draft => out.insert(SystemFlag::Draft),
            Flag::Keyword(k) => out.insert_keyword(k).ok()?,
            // \Recent and other extension flags are not stored.
            Flag::Extension(_) => {}
        }
    }
    Some(out)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `dd-Mon-yyyy hh:mm:ss +0000` of seconds since the epoch.
pub fn internal_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Parses an APPEND date (`dd-Mon-yyyy hh:mm:ss +zzzz`, validated by the
/// codec) into seconds since the epoch.
fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(' ')?;
    let mut p = date.split('-');
    let d: i64 = p.next()?.trim().parse().ok()?;
    let mon = p.next()?;
    let y: i64 = p.next()?.parse().ok()?;
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(mon))? as i64 + 1;
    let (time, zone) = rest.split_once(' ')?;
    let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let z: i64 = zone.get(1..)?.parse().ok()?;
    let offset = sign * (z / 100 * 3600 + z % 100 * 60);
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// A set of UIDs in the order given, runs joined: `3:5,9`.
fn uid_set(uids: &[u32]) -> Option<SequenceSet> {
    let mut ranges: Vec<(SeqNumber, SeqNumber)> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        ranges.push((SeqNumber::Value(start), SeqNumber::Value(end)));
        i += 1;
    }
    SequenceSet::from_ranges(ranges)
}

fn mailbox_name(m: &Mailbox) -> Option<MailboxName> {
    MailboxName::new(m.as_str().trim_end_matches('/')).ok()
}

fn special_use_attr(s: SpecialUse) -> &'static str {
    match s {
        SpecialUse::Sent => "\\Sent",
        SpecialUse::Drafts => "\\Drafts",
        SpecialUse::Trash => "\\Trash",
        SpecialUse::Junk => "\\Junk",
        SpecialUse::Archive => "\\Archive",
    }
}

/// Whether `name` matches the LIST pattern (`*` anything, `%` anything but
/// the delimiter). INBOX matches in any case.
pub fn list_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let inbox_fold = |c: &[char]| -> Vec<char> {
        // By characters: a name may start with a multi-byte one.
        let inbox: Vec<char> = "INBOX".chars().collect();
        if c.len() >= 5
            && c[..5]
                .iter()
                .zip(&inbox)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
            && (c.len() == 5 || c[5] == '/')
        {
            inbox.iter().chain(&c[5..]).copied().collect()
        } else {
            c.to_vec()
        }
    };
    let (p, n) = (inbox_fold(&p), inbox_fold(&n));
    // Dynamic programming over (pattern, name) positions: no backtracking
    // blow-up, bounded by the lengths.
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' => {
                let mut any = false;
                for j in 0..=n.len() {
                    any |= row[j];
                    next[j] = any;
                }
            }
            '%' => {
                let mut any = false;
                for j in 0..=n.len() {
                    if j > 0 && n[j - 1] == '/' {
                        any = false;
                    }
                    any |= row[j];
                    next[j] = any;
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == *c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

/// What SEARCH reads of one message.
struct Candidate {
    seq: u32,
    meta: MessageMeta,
    flags: Vec<Flag>,
    bytes: Option<Vec<u8>>,
}

impl SearchMessage for Candidate {
    fn seq(&self) -> u32 {
        self.seq
    }
    fn uid(&self) -> u32 {
        self.meta.uid
    }
    fn flags(&self) -> &[Flag] {
        &self.flags
    }
    fn internal_date(&self) -> i64 {
        self.meta.internal_date
    }
    fn size(&self) -> u64 {
        self.meta.size
    }
    fn modseq(&self) -> u64 {
        self.meta.modseq
    }
    fn message(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }
}

fn read_message(store: &Store, user: &UserName, mb: &MailboxName, uid: u32) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    store
        .open_message(user, mb, uid)
        .ok()?
        .read_to_end(&mut v)
        .ok()?;
    Some(v)
}

/// Whether an item needs the message bytes (ENVELOPE, BODY and
/// BODYSTRUCTURE come from the message's summary when it has one).
fn needs_bytes(items: &[FetchItem<'_>]) -> bool {
    items.iter().any(|i| {
        !matches!(
            i,
            FetchItem::Flags
                | FetchItem::Uid
                | FetchItem::InternalDate
                | FetchItem::Rfc822Size
                | FetchItem::ModSeq
                | FetchItem::Envelope
                | FetchItem::Body
                | FetchItem::BodyStructure
        )
    })
}

/// Whether an item is answered from the summary.
fn needs_summary(items: &[FetchItem<'_>]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Envelope | FetchItem::Body | FetchItem::BodyStructure
        )
    })
}

/// What FETCH needs of a message's structure, derived once and kept with
/// the message in the store: ENVELOPE, BODY and BODYSTRUCTURE, kept as the
/// FETCH response that carries them (the codec reads it back at 800 MiB/s;
/// the message file is not opened again).
#[derive(Debug, Clone)]
pub struct Summary {
    envelope: imap_proto::Envelope<'static>,
    body: imap_proto::BodyStructure<'static>,
    bodystructure: imap_proto::BodyStructure<'static>,
    /// The References header lines (THREAD=REFERENCES); `None` in a
    /// summary kept before they were.
    references: Option<Vec<u8>>,
}

/// `BODY[HEADER.FIELDS (REFERENCES)]`: how a summary keeps References.
fn references_section() -> Section<'static> {
    Section {
        part: Vec::new(),
        text: SectionText::HeaderFields(vec!["REFERENCES".into()]),
        partial: None,
    }
}

impl Summary {
    /// Derives the summary of a message.
    pub fn of(message: &[u8]) -> Summary {
        let s = Structure::parse(message);
        Summary {
            envelope: Structure::envelope(message),
            body: s.body_structure(message, false),
            bodystructure: s.body_structure(message, true),
            references: Some(
                s.section(message, &references_section())
                    .map(|c| c.into_owned())
                    .unwrap_or_default(),
            ),
        }
    }

    /// The bytes the store keeps.
    pub fn encode(&self) -> Vec<u8> {
        let mut values = vec![
            FetchValue::Envelope(Box::new(self.envelope.clone())),
            FetchValue::Body(Box::new(self.body.clone())),
            FetchValue::BodyStructure(Box::new(self.bodystructure.clone())),
        ];
        if let Some(r) = &self.references {
            values.push(FetchValue::BodySection {
                section: references_section(),
                origin: None,
                data: Some(r.clone().into()),
            });
        }
        Response::Fetch(1, values).encode(false)
    }

    /// Reads kept bytes back; `None` if they are not a summary.
    pub fn decode(bytes: &[u8]) -> Option<Summary> {
        let Ok(Response::Fetch(_, values)) = Response::parse(bytes, false) else {
            return None;
        };
        let mut it = values.into_iter().map(FetchValue::into_owned);
        match (it.next(), it.next(), it.next(), it.next()) {
            (
                Some(FetchValue::Envelope(e)),
                Some(FetchValue::Body(b)),
                Some(FetchValue::BodyStructure(bs)),
                references,
            ) => Some(Summary {
                envelope: *e,
                body: *b,
                bodystructure: *bs,
                references: match references {
                    Some(FetchValue::BodySection { data, .. }) => {
                        Some(data.map(|d| d.into_owned()).unwrap_or_default())
                    }
                    _ => None,
                },
            }),
            _ => None,
        }
    }

    /// The kept summary of a message, or one derived from its bytes now
    /// (and kept for next time).
    fn load(
        store: &Store,
        user: &UserName,
        mb: &MailboxName,
        uid: u32,
        bytes: Option<&[u8]>,
    ) -> Option<Summary> {
        let kept = store
            .summary(user, mb, uid)
            .ok()
            .flatten()
            .and_then(|b| Summary::decode(&b));
        // One kept before References were is derived again, once (or
        // serves as it is when the message cannot be read).
        let older = match kept {
            Some(s) if s.references.is_some() => return Some(s),
            other => other,
        };
        let owned;
        let bytes = match bytes {
            Some(b) => b,
            None => match read_message(store, user, mb, uid) {
                Some(b) => {
                    owned = b;
                    &owned
                }
                None => return older,
            },
        };
        let s = Summary::of(bytes);
        let _ = store.set_summary(user, mb, uid, &s.encode());
        Some(s)
    }
}

/// Whether an item sets `\Seen`.
fn sets_seen(items: &[FetchItem<'_>]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Rfc822
                | FetchItem::Rfc822Text
                | FetchItem::BodySection { peek: false, .. }
                | FetchItem::Binary { peek: false, .. }
        )
    })
}

/// The FETCH values of one message.
fn fetch_values(
    items: &[FetchItem<'static>],
    meta: &MessageMeta,
    flags: &Flags,
    bytes: Option<&[u8]>,
    summary: Option<&Summary>,
) -> Vec<FetchValue<'static>> {
    let structure = bytes.map(Structure::parse);
    let mut out = Vec::new();
    let sect = |text: SectionText<'static>| Section {
        part: Vec::new(),
        text,
        partial: None,
    };
    for item in items {
        let v = match (item, bytes, structure.as_ref()) {
            (FetchItem::Flags, ..) => FetchValue::Flags(imap_flags(flags)),
            (FetchItem::Uid, ..) => FetchValue::Uid(meta.uid),
            (FetchItem::InternalDate, ..) => {
                FetchValue::InternalDate(internal_date(meta.internal_date).into())
            }
            (FetchItem::Rfc822Size, ..) => {
                FetchValue::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            (FetchItem::ModSeq, ..) => FetchValue::ModSeq(meta.modseq),
            (FetchItem::EmailId, ..) => FetchValue::EmailId(email_object_id(&meta.unique_id)),
            // No THREADID: RFC 8474 §5.2 lets a server that keeps no
            // threads answer NIL.
            (FetchItem::ThreadId, ..) => FetchValue::ThreadId(None),
            (FetchItem::Envelope, ..) => match summary {
                Some(s) => FetchValue::Envelope(Box::new(s.envelope.clone())),
                None => continue,
            },
            (FetchItem::Body, ..) => match summary {
                Some(s) => FetchValue::Body(Box::new(s.body.clone())),
                None => continue,
            },
            (FetchItem::BodyStructure, ..) => match summary {
                Some(s) => FetchValue::BodyStructure(Box::new(s.bodystructure.clone())),
                None => continue,
            },
            (FetchItem::Binary { part, partial, .. }, Some(b), Some(s)) => {
                // A transfer encoding BINARY cannot undo gives NIL.
                let data = s.binary(b, part).ok().flatten().map(|d| match partial {
                    Some((origin, count)) => {
                        let start = (*origin as usize).min(d.len());
                        let end = start.saturating_add(*count as usize).min(d.len());
                        d[start..end].to_vec()
                    }
                    None => d.into_owned(),
                });
                FetchValue::Binary {
                    part: part.clone(),
                    origin: partial.map(|p| p.0),
                    data: data.map(Into::into),
                }
            }
            (FetchItem::BinarySize(part), Some(b), Some(s)) => FetchValue::BinarySize {
                part: part.clone(),
                size: s
                    .binary(b, part)
                    .ok()
                    .flatten()
                    .map_or(0, |d| u32::try_from(d.len()).unwrap_or(u32::MAX)),
            },
            (FetchItem::Rfc822, Some(b), _) => FetchValue::Rfc822 {
                part: Rfc822Part::Full,
                data: Some(b.to_vec().into()),
            },
            (FetchItem::Rfc822Header, Some(b), Some(s)) => FetchValue::Rfc822 {
                part: Rfc822Part::Header,
                data: s
                    .section(b, &sect(SectionText::Header))
                    .map(|c| c.into_owned().into()),
            },
            (FetchItem::Rfc822Text, Some(b), Some(s)) => FetchValue::Rfc822 {
                part: Rfc822Part::Text,
                data: s
                    .section(b, &sect(SectionText::Text))
                    .map(|c| c.into_owned().into()),
            },
            (FetchItem::BodySection { section, .. }, Some(b), Some(s)) => {
                let data = s.section(b, section).map(|c| c.into_owned().into());
                let mut echoed = section.clone();
                let origin = echoed.partial.take().map(|p| p.0);
                FetchValue::BodySection {
                    section: echoed,
                    origin,
                    data: data.or(Some(Vec::new().into())),
                }
            }
            _ => continue,
        };
        out.push(v);
    }
    out
}

impl Handler<Session> for ImapConn {
    async fn handle(&mut self, s: &mut Session, _tls: Option<&str>, event: Event) {
        let r = match event {
            Event::Login {
                token,
                username,
                check,
            } => self.login(s, token, username, check).await,
            Event::ScramLookup { token, username } => {
                let creds = self
                    .ctx
                    .accounts
                    .read()
                    .ok()
                    .and_then(|a| a.map.get(&username).map(|a| a.scram.clone()));
                s.scram_credentials(token, creds)
            }
            Event::Request { token, request } => {
                self.deliver_news(s);
                self.refresh_live(s, &[]).await;
                self.request(s, token, request).await
            }
            Event::AppendData(chunk) => {
                self.spool.push(&chunk).await;
                Ok(())
            }
            Event::AppendCommit { token } => self.commit_append(s, token).await,
            Event::AppendAbort => {
                self.spool.abort().await;
                self.staged.clear();
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(error = ?e.error, "IMAP answer refused by the session");
        }
    }

    async fn news(&mut self) {
        if let (Some(job), Some(user)) = (self.job.as_mut(), self.user.as_ref()) {
            if job.ready.is_some() || job.chunk_ready.is_some() {
                return;
            }
            if let Some(st) = job.streaming.as_mut() {
                if job.chunk_running.is_none() {
                    let (store, user, mb) =
                        (self.ctx.store.clone(), user.clone(), job.mailbox.clone());
                    let (uid, want, reader) = (st.uid, st.left.min(STREAM_CHUNK), st.reader.take());
                    job.chunk_running = Some(tokio::task::spawn_blocking(move || {
                        let mut r = match reader {
                            Some(r) => r,
                            None => match store.open_message(&user, &mb, uid) {
                                Ok(r) => MessageReader(r),
                                Err(_) => return (None, Err(())),
                            },
                        };
                        let mut buf = Vec::new();
                        match (&mut r.0).take(want).read_to_end(&mut buf) {
                            Ok(_) => (Some(r), Ok(buf)),
                            Err(_) => (None, Err(())),
                        }
                    }));
                }
                if let Some(handle) = job.chunk_running.as_mut() {
                    let r = handle.await;
                    job.chunk_running = None;
                    let (reader, piece) = r.unwrap_or((None, Err(())));
                    st.reader = reader;
                    job.chunk_ready = Some(piece);
                }
                return;
            }
            if !job.queue.is_empty() || job.rest.is_empty() {
                // Answers to hand over, or the end: `deliver_news`.
                return;
            }
            if job.running.is_none() {
                // The next batch: up to BATCH messages or BATCH_BYTES.
                let sizes = self
                    .ctx
                    .store
                    .message_metas(
                        user,
                        &job.mailbox,
                        &job.rest.iter().take(BATCH).copied().collect::<Vec<_>>(),
                    )
                    .unwrap_or_default();
                let mut n = 0;
                let mut total = 0u64;
                for uid in job.rest.iter().take(BATCH) {
                    let size = sizes.iter().find(|m| m.uid == *uid).map_or(0, |m| m.size);
                    if n > 0 && job.bytes && total + size > BATCH_BYTES {
                        break;
                    }
                    total += size;
                    n += 1;
                }
                let uids: Vec<u32> = job.rest.iter().take(n).copied().collect();
                let (store, user, mb, items) = (
                    self.ctx.store.clone(),
                    user.clone(),
                    job.mailbox.clone(),
                    job.items.clone(),
                );
                let stream = job.stream.as_ref().map(|(_, rest)| rest.clone());
                let flags = (job.bytes, job.summary, job.seen);
                let handle = tokio::task::spawn_blocking(move || {
                    fetch_batch(
                        &store,
                        &user,
                        &mb,
                        &uids,
                        (&items, flags.0, flags.1, flags.2),
                        stream.as_deref().map(Vec::as_slice),
                    )
                });
                job.running = Some((n, handle));
            }
            if let Some((n, handle)) = job.running.as_mut() {
                let r = handle.await;
                let n = *n;
                job.running = None;
                job.rest.drain(..n.min(job.rest.len()));
                job.ready = Some(match r {
                    Ok(Ok(b)) => Ok(b),
                    _ => Err(()),
                });
            }
            return;
        }
        if let Some((_, _, handle)) = self.live_eval.first_mut() {
            // Cancel safe: the handle stays until it has finished.
            let r = handle.await;
            let (tag, uids, _) = self.live_eval.remove(0);
            let hits: std::collections::HashSet<u32> = match r {
                Ok(Some(h)) => h.into_iter().map(|h| h.0).collect(),
                _ => return,
            };
            for u in uids {
                self.live_ready.push((tag.clone(), u, hits.contains(&u)));
            }
            return;
        }
        match self.feed.as_mut() {
            Some(feed) => match feed.next().await {
                Some(c) => self.news.push(c),
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    fn deliver_news(&mut self, s: &mut Session) {
        if self.job.is_some() {
            self.deliver_fetch(s);
        }
        if let Some(feed) = self.feed.as_mut() {
            self.news.extend(feed.drain());
        }
        let live = s.live_searches().next().is_some();
        for c in std::mem::take(&mut self.news) {
            if let (true, Change::Appended { uid, .. } | Change::Flags { uid, .. }) = (live, &c) {
                self.live_dirty.insert(*uid);
            }
            match c {
                Change::Appended { uid, .. } => {
                    let recent = self.claim_recent(uid);
                    s.push_new(uid, recent)
                }
                Change::Flags { uid, modseq, flags } => {
                    if self.own.get(&uid).is_some_and(|m| *m >= modseq) {
                        continue;
                    }
                    s.push_flags(uid, imap_flags(&flags), Some(modseq));
                }
                Change::Expunged { uid, .. } => s.push_expunge(uid),
                Change::Gone => s.mailbox_gone(),
            }
        }
        for (tag, uid, matches) in std::mem::take(&mut self.live_ready) {
            s.live_search_result(&tag, uid, matches);
        }
        // An idling client hears of its live searches too: evaluated off
        // the connection, the results given at the next wake-up.
        if s.is_idle() && self.live_eval.is_empty() && !self.live_dirty.is_empty() {
            self.start_live_eval(s);
        }
    }
}

type Answer = Result<(), imap_proto::server::AnswerError>;

impl ImapConn {
    /// Hands a FETCH's read answers and streamed pieces to the session;
    /// completes it when everything was sent.
    fn deliver_fetch(&mut self, s: &mut Session) {
        let Some(job) = self.job.as_mut() else {
            return;
        };
        let mut failed = false;
        if let Some(piece) = job.chunk_ready.take() {
            match (piece, job.streaming.as_mut()) {
                (Ok(buf), Some(st)) if !buf.is_empty() => {
                    let _ = s.literal_data(&job.token, &buf);
                    st.left = st.left.saturating_sub(buf.len() as u64);
                    if st.left == 0 {
                        job.streaming = None;
                    }
                }
                // The file ended early or could not be read.
                _ => failed = true,
            }
        }
        match job.ready.take() {
            Some(Ok((answers, changed, unknown_cte))) => {
                self.own.extend(changed);
                job.queue.extend(answers);
                job.unknown_cte |= unknown_cte;
            }
            Some(Err(())) => failed = true,
            None => {}
        }
        while !failed && job.streaming.is_none() {
            let Some((uid, mut v, streamed)) = job.queue.pop_front() else {
                break;
            };
            if self.recent.contains(&uid) {
                for x in v.iter_mut() {
                    if let FetchValue::Flags(f) = x {
                        f.push(Flag::Extension("Recent".into()));
                    }
                }
            }
            match (streamed, job.stream.as_ref()) {
                (Some(len), Some((label, _))) => {
                    if s.fetched_literal(&job.token, uid, v, label, len) == Ok(true) && len > 0 {
                        job.streaming = Some(Streaming {
                            uid,
                            left: len,
                            reader: None,
                        });
                    }
                }
                _ => {
                    let _ = s.fetched(&job.token, uid, v);
                }
            }
        }
        let done = job.streaming.is_none()
            && job.queue.is_empty()
            && job.rest.is_empty()
            && job.running.is_none();
        if failed {
            if let Some(job) = self.job.take() {
                let _ = s.reject(job.token, Completion::no("the messages could not be read"));
            }
        } else if done && let Some(job) = self.job.take() {
            let end = if job.unknown_cte {
                // RFC 3516 §4.2: the values that could be sent were.
                Completion::no_code(
                    Code::Other("UNKNOWN-CTE".into(), None),
                    "a part's transfer encoding cannot be undone",
                )
            } else {
                Completion::ok("FETCH completed")
            };
            let _ = s.complete(job.token, end);
        }
    }

    async fn login(
        &mut self,
        s: &mut Session,
        token: Token,
        username: String,
        check: LoginCheck,
    ) -> Answer {
        let account = self
            .ctx
            .accounts
            .read()
            .ok()
            .and_then(|a| a.map.get(&username).cloned());
        let ok = match (account, check) {
            (Some(a), LoginCheck::Password(p)) => {
                let pw = p.expose().clone();
                blocking(move || verify_password(&a.hash, &pw))
                    .await
                    .unwrap_or(false)
            }
            (Some(_), LoginCheck::Verified) => true,
            _ => false,
        };
        let user = UserName::new(&username).ok().filter(|_| ok);
        match user {
            Some(u) => {
                tracing::info!(user = %username, "authenticated");
                let store = self.store();
                let u2 = u.clone();
                // Accounts made before IMAP existed get their folders.
                let _ = blocking(move || {
                    if !store.has_user(&u2) {
                        let _ = store.create_user(&u2);
                    }
                })
                .await;
                self.user = Some(u);
                s.accept_login(token)
            }
            None => {
                tracing::info!(user = %username, reason = "invalid credentials", "authentication refused");
                s.reject(token, Completion::no("invalid credentials"))
            }
        }
    }

    async fn commit_append(&mut self, s: &mut Session, token: Token) -> Answer {
        let last = self.spool.finish().await;
        if let Some(st) = self.staged.last_mut() {
            st.body = last;
        }
        let (Some(user), staged) = (self.user.clone(), std::mem::take(&mut self.staged)) else {
            return s.reject(token, Completion::no("not logged in"));
        };
        if staged.iter().any(|st| st.body.is_none()) {
            return s.reject(token, Completion::no("the message could not be stored"));
        }
        let store = self.store();
        let r = blocking(move || {
            let mut out = Vec::new();
            let mut kept = Vec::new();
            for mut st in staged {
                let Some(body) = st.body.as_mut() else {
                    continue;
                };
                let mut reader = body.reader(b"")?;
                let d = store.append(&user, &st.mailbox, &mut reader, st.date, &st.flags)?;
                kept.push((st.mailbox.clone(), d.uid));
                out.push(d);
            }
            // FETCH's summary, derived once, after the OK.
            let (s2, u2) = (store.clone(), user.clone());
            tokio::task::spawn_blocking(move || {
                for (mb, uid) in kept {
                    keep_summaries(&s2, &mb, &[(u2.clone(), uid)]);
                }
            });
            Ok::<_, mailstore::Error>(out)
        })
        .await;
        match r {
            Some(Ok(d)) if !d.is_empty() => {
                // Appended to the selected mailbox: EXISTS before the OK.
                self.deliver_news(s);
                self.refresh_live(s, &[]).await;
                let uids: Vec<u32> = d.iter().map(|x| x.uid).collect();
                match uid_set(&uids) {
                    Some(set) => s.complete(
                        token,
                        Completion::ok_code(
                            Code::AppendUid(d[0].uid_validity, set),
                            "APPEND completed",
                        ),
                    ),
                    None => s.complete(token, Completion::ok("APPEND completed")),
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "APPEND failed");
                s.reject(token, Completion::no("the message could not be stored"))
            }
            _ => s.reject(token, Completion::no("the message could not be stored")),
        }
    }

    /// The messages to evaluate live searches on, with their sequence
    /// numbers (those not announced yet get the numbers their EXISTS
    /// gives).
    fn live_targets(s: &Session, uids: &std::collections::BTreeSet<u32>) -> Vec<(u32, u32)> {
        let mut next = s.view().exists();
        uids.iter()
            .map(|&u| {
                let seq = s.view().seq_of(u).unwrap_or_else(|| {
                    next = next.saturating_add(1);
                    next
                });
                (u, seq)
            })
            .collect()
    }

    /// Starts evaluating the live searches on the changed messages, for
    /// `news` to collect.
    fn start_live_eval(&mut self, s: &Session) {
        let (Some(user), Some(mb)) = (self.user.clone(), self.selected.clone()) else {
            return;
        };
        let uids = std::mem::take(&mut self.live_dirty);
        let targets = Self::live_targets(s, &uids);
        let store = self.store();
        let uid_list: Vec<u32> = uids.into_iter().collect();
        for (tag, keys) in s.live_searches() {
            let eval =
                self.search_uids(s, &store, &user, &mb, keys.to_vec(), Some(targets.clone()));
            self.live_eval
                .push((tag.to_owned(), uid_list.clone(), tokio::spawn(eval)));
        }
    }

    /// Brings the live searches (RFC 5267 UPDATE) up to date for the
    /// messages changed since (and `extra`): their keys evaluated on each,
    /// the results given to the session, which tells the client.
    async fn refresh_live(&mut self, s: &mut Session, extra: &[u32]) {
        // What an idle-time evaluation had not finished is done here.
        for (_, uids, h) in self.live_eval.drain(..) {
            h.abort();
            self.live_dirty.extend(uids);
        }
        for (tag, uid, matches) in std::mem::take(&mut self.live_ready) {
            s.live_search_result(&tag, uid, matches);
        }
        let mut uids = std::mem::take(&mut self.live_dirty);
        uids.extend(extra.iter().copied());
        let live: Vec<(String, Vec<imap_proto::SearchKey<'static>>)> = s
            .live_searches()
            .map(|(t, k)| (t.to_owned(), k.to_vec()))
            .collect();
        let (Some(user), Some(mb)) = (self.user.clone(), self.selected.clone()) else {
            return;
        };
        if uids.is_empty() || live.is_empty() {
            return;
        }
        let targets = Self::live_targets(s, &uids);
        let store = self.store();
        for (tag, keys) in live {
            let Some(hits) = self
                .search_uids(s, &store, &user, &mb, keys, Some(targets.clone()))
                .await
            else {
                continue;
            };
            let hits: std::collections::HashSet<u32> = hits.into_iter().map(|h| h.0).collect();
            for &u in &uids {
                s.live_search_result(&tag, u, hits.contains(&u));
            }
        }
    }

    /// The start of one APPEND message (literal or CATENATE): the first
    /// drops anything staged before, a later one closes the previous
    /// message's body; then the target, flags and internal date, or the
    /// refusal (`TRYCREATE`, a bad keyword).
    async fn next_staged(
        &mut self,
        index: usize,
        mailbox: &Mailbox,
        flags: &[Flag],
        date: Option<String>,
    ) -> Result<(MailboxName, Flags, i64), Completion> {
        if index == 0 {
            self.spool.abort().await;
            self.staged.clear();
        } else {
            let body = self.spool.finish().await;
            if let Some(st) = self.staged.last_mut() {
                st.body = body;
            }
        }
        let name = mailbox_name(mailbox)
            .ok_or_else(|| Completion::no_code(Code::TryCreate, "no such mailbox"))?;
        let flags = store_flags(flags).ok_or_else(|| Completion::bad("invalid keyword"))?;
        let date = date
            .as_deref()
            .and_then(parse_date)
            .unwrap_or_else(now_secs);
        Ok((name, flags, date))
    }

    /// The UIDs of the selected mailbox's messages (or of those `among`:
    /// UID and sequence number) that match `keys`, with their MODSEQs,
    /// read in batches off the async workers; `None` if the store failed.
    fn search_uids(
        &self,
        s: &Session,
        store: &Store,
        user: &UserName,
        mb: &MailboxName,
        keys: Vec<imap_proto::SearchKey<'static>>,
        among: Option<Vec<(u32, u32)>>,
    ) -> impl std::future::Future<Output = Option<Vec<(u32, u64)>>> + Send + 'static {
        let view = among.unwrap_or_else(|| {
            s.view()
                .uids()
                .iter()
                .enumerate()
                .map(|(i, u)| (*u, u32::try_from(i + 1).unwrap_or(u32::MAX)))
                .collect()
        });
        let (store, user, mb) = (store.clone(), user.clone(), mb.clone());
        let (ls, lu) = (s.view().exists(), s.view().last_uid());
        let recent = Arc::new(self.recent.clone());
        async move {
            let need = search::needs_message(&keys);
            // ENVELOPE fields are in each message's summary.
            let from_summary = need && !search::needs_full_message(&keys);
            let keys = Arc::new(keys);
            let mut hits = Vec::new();
            for chunk in view.chunks(BATCH * 16) {
                let (store, user, mb, keys, recent) = (
                    store.clone(),
                    user.clone(),
                    mb.clone(),
                    keys.clone(),
                    recent.clone(),
                );
                let seqs: HashMap<u32, u32> = chunk.iter().copied().collect();
                let chunk: Vec<u32> = chunk.iter().map(|(u, _)| *u).collect();
                let r = blocking(move || {
                    let metas = store.message_metas(&user, &mb, &chunk)?;
                    let mut out = Vec::new();
                    for meta in metas {
                        let c = Candidate {
                            seq: seqs.get(&meta.uid).copied().unwrap_or(0),
                            flags: {
                                let mut f = imap_flags(&meta.flags);
                                if recent.contains(&meta.uid) {
                                    f.push(Flag::Extension("Recent".into()));
                                }
                                f
                            },
                            bytes: if from_summary {
                                Summary::load(&store, &user, &mb, meta.uid, None)
                                    .map(|s| search::envelope_header(&s.envelope))
                            } else if need {
                                read_message(&store, &user, &mb, meta.uid)
                            } else {
                                None
                            },
                            meta,
                        };
                        if search::matches(&keys, &c, ls, lu) {
                            out.push((c.meta.uid, c.meta.modseq));
                        }
                    }
                    Ok::<_, mailstore::Error>(out)
                })
                .await;
                match r {
                    Some(Ok(v)) => hits.extend(v),
                    _ => return None,
                }
            }
            Some(hits)
        }
    }

    async fn request(&mut self, s: &mut Session, token: Token, request: Request) -> Answer {
        let Some(user) = self.user.clone() else {
            return s.reject(token, Completion::no("not logged in"));
        };
        let store = self.store();
        let nonexistent =
            || Completion::no_code(Code::Other("NONEXISTENT".into(), None), "no such mailbox");
        let cannot =
            || Completion::no_code(Code::Other("CANNOT".into(), None), "invalid mailbox name");
        match request {
            Request::Select {
                mailbox,
                read_only,
                qresync,
                ..
            } => {
                self.deselect();
                let Some(name) = mailbox_name(&mailbox) else {
                    return s.reject(token, nonexistent());
                };
                let (u, n) = (user.clone(), name.clone());
                let r = blocking(move || {
                    let feed = store.watch(&u, &n)?;
                    let info = store.mailbox(&u, &n)?;
                    let msgs = store.messages(&u, &n)?;
                    // QRESYNC: what the client's MODSEQ has not seen.
                    let since = qresync
                        .filter(|q| q.uid_validity == info.uid_validity)
                        .map(|q| q.mod_seq);
                    let vanished = match since {
                        Some(m) => Some(store.vanished_since(&u, &n, m)?),
                        None => None,
                    };
                    Ok::<_, mailstore::Error>((feed, info, msgs, since, vanished))
                })
                .await;
                match r {
                    Some(Ok((feed, info, msgs, since, vanished))) => {
                        let first_unseen = msgs
                            .iter()
                            .find(|m| !m.flags.contains(SystemFlag::Seen))
                            .map(|m| m.uid);
                        let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
                        let recent: Vec<u32> = {
                            let key = (user.clone(), name.clone(), info.uid_validity);
                            let mut map = self.ctx.recent.lock().unwrap_or_else(|e| e.into_inner());
                            let floor = map.entry(key).or_insert(1);
                            let r: Vec<u32> =
                                uids.iter().copied().filter(|u| *u >= *floor).collect();
                            if !read_only {
                                *floor = (*floor).max(info.uid_next);
                            }
                            r
                        };
                        let mut sel = Selected::new(info.uid_validity, info.uid_next, uids);
                        self.recent = recent.iter().copied().collect();
                        sel.recent = recent;
                        self.uid_validity = info.uid_validity;
                        sel.first_unseen = first_unseen;
                        sel.read_only = read_only;
                        // Never 0, even when empty (RFC 7162 §3.1.2.1).
                        sel.highest_modseq = Some(info.highest_modseq.max(1));
                        sel.mailbox_id = Some(mailbox_object_id(&info));
                        if let Some(since) = since {
                            sel.changed = msgs
                                .iter()
                                .filter(|m| m.modseq > since)
                                .map(|m| FlagState {
                                    uid: m.uid,
                                    flags: self.shown_flags(m.uid, &m.flags),
                                    modseq: m.modseq,
                                })
                                .collect();
                            sel.expunged_since = match vanished {
                                Some(mailstore::Vanished::Uids(v)) => Some(v),
                                _ => None,
                            };
                        }
                        let mut keywords: Vec<String> = msgs
                            .iter()
                            .flat_map(|m| m.flags.keywords().map(str::to_owned).collect::<Vec<_>>())
                            .collect();
                        keywords.sort();
                        keywords.dedup();
                        sel.flags
                            .extend(keywords.iter().map(|k| Flag::Keyword(k.clone())));
                        sel.permanent_flags
                            .extend(keywords.into_iter().map(Flag::Keyword));
                        self.selected = Some(name);
                        self.read_only = read_only;
                        self.feed = Some(feed);
                        s.selected(token, sel)
                    }
                    _ => s.reject(token, nonexistent()),
                }
            }
            Request::Create(m) => {
                let Some(name) = mailbox_name(&m) else {
                    return s.reject(token, cannot());
                };
                match blocking(move || store.create_mailbox(&user, &name)).await {
                    Some(Ok(info)) => s.complete(
                        token,
                        Completion::ok_code(
                            Code::MailboxId(mailbox_object_id(&info)),
                            "CREATE completed",
                        ),
                    ),
                    Some(Err(mailstore::Error::MailboxExists(_))) => s.reject(
                        token,
                        Completion::no_code(
                            Code::Other("ALREADYEXISTS".into(), None),
                            "mailbox exists",
                        ),
                    ),
                    _ => s.reject(token, cannot()),
                }
            }
            Request::Delete(m) => {
                let Some(name) = mailbox_name(&m) else {
                    return s.reject(token, nonexistent());
                };
                if self.selected.as_ref() == Some(&name) {
                    // Deleting the selected mailbox ends the selection first.
                }
                match blocking(move || store.delete_mailbox(&user, &name)).await {
                    Some(Ok(())) => s.complete(token, Completion::ok("DELETE completed")),
                    Some(Err(mailstore::Error::CannotDeleteInbox)) => s.reject(
                        token,
                        Completion::no_code(
                            Code::Other("CANNOT".into(), None),
                            "INBOX cannot be deleted",
                        ),
                    ),
                    _ => s.reject(token, nonexistent()),
                }
            }
            Request::Rename { from, to } => {
                let (Some(f), Some(t)) = (mailbox_name(&from), mailbox_name(&to)) else {
                    return s.reject(token, cannot());
                };
                match blocking(move || store.rename_mailbox(&user, &f, &t)).await {
                    Some(Ok(())) => s.complete(token, Completion::ok("RENAME completed")),
                    Some(Err(mailstore::Error::MailboxExists(_))) => s.reject(
                        token,
                        Completion::no_code(
                            Code::Other("ALREADYEXISTS".into(), None),
                            "target exists",
                        ),
                    ),
                    Some(Err(mailstore::Error::NoSuchMailbox(_))) => s.reject(token, nonexistent()),
                    _ => s.reject(token, cannot()),
                }
            }
            Request::Subscribe { mailbox, on } => {
                let Some(name) = mailbox_name(&mailbox) else {
                    return s.reject(token, nonexistent());
                };
                match blocking(move || store.subscribe(&user, &name, on)).await {
                    Some(Ok(())) => s.complete(token, Completion::ok("done")),
                    // Unsubscribing from a name that is gone is fine.
                    Some(Err(_)) if !on => s.complete(token, Completion::ok("done")),
                    _ => s.reject(token, nonexistent()),
                }
            }
            Request::List {
                lsub,
                reference,
                patterns,
                select,
                ret,
            } => {
                let (st, u) = (store.clone(), user.clone());
                let Some(Ok(boxes)) = blocking(move || st.mailboxes(&u)).await else {
                    return s.reject(token, Completion::no("cannot list mailboxes"));
                };
                let patterns: Vec<String> = patterns
                    .iter()
                    .map(|p| {
                        if s.utf8() {
                            p.clone()
                        } else {
                            imap_proto::utf7::decode(p).unwrap_or_else(|_| p.clone())
                        }
                    })
                    .collect();
                let reference = if s.utf8() {
                    reference
                } else {
                    imap_proto::utf7::decode(&reference).unwrap_or(reference)
                };
                list(
                    self.ctx.clone(),
                    user,
                    s,
                    lsub,
                    &reference,
                    &patterns,
                    &select,
                    &ret,
                    &boxes,
                )
                .await;
                let verb = if lsub { "LSUB" } else { "LIST" };
                s.complete(token, Completion::ok(format!("{verb} completed")))
            }
            Request::Status { mailbox, items } => {
                let Some(name) = mailbox_name(&mailbox) else {
                    return s.reject(token, nonexistent());
                };
                match status_items(self.ctx.clone(), user, &name, &items).await {
                    Some((values, mailbox_id)) => {
                        s.untagged(&Response::MailboxStatus {
                            mailbox,
                            items: values,
                            mailbox_id,
                        });
                        s.complete(token, Completion::ok("STATUS completed"))
                    }
                    None => s.reject(token, nonexistent()),
                }
            }
            Request::Append {
                mailbox,
                flags,
                date,
                index,
                size,
            } => {
                let (name, flags, date) =
                    match self.next_staged(index, &mailbox, &flags, date).await {
                        Ok(t) => t,
                        Err(refusal) => return s.reject(token, refusal),
                    };
                if quota_full(self.ctx.clone(), &user, size).await {
                    return s.reject(token, over_quota());
                }
                let n = name.clone();
                match blocking(move || store.mailbox(&user, &n)).await {
                    Some(Ok(_)) => {
                        self.staged.push(Staged {
                            mailbox: name,
                            flags,
                            date,
                            body: None,
                        });
                        s.accept(token)
                    }
                    _ => s.reject(
                        token,
                        Completion::no_code(Code::TryCreate, "no such mailbox"),
                    ),
                }
            }
            Request::Catenate {
                mailbox,
                flags,
                date,
                parts,
                index,
            } => {
                let (name, flags, date) =
                    match self.next_staged(index, &mailbox, &flags, date).await {
                        Ok(t) => t,
                        Err(refusal) => return s.reject(token, refusal),
                    };
                let limit = s.config().limits.max_append;
                let (u, n) = (user.clone(), name.clone());
                let built = blocking(move || catenate(&store, &u, &n, &parts, limit)).await;
                let message = match built {
                    Some(Ok(m)) => m,
                    Some(Err(refusal)) => return s.reject(token, refusal),
                    None => {
                        return s.reject(token, Completion::no("the message could not be built"));
                    }
                };
                if quota_full(self.ctx.clone(), &user, message.len() as u64).await {
                    return s.reject(token, over_quota());
                }
                self.spool.push(&message).await;
                self.staged.push(Staged {
                    mailbox: name,
                    flags,
                    date,
                    body: None,
                });
                s.accept(token)
            }
            Request::Fetch {
                messages,
                items,
                changed_since,
                vanished,
                ..
            } => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                let mut rest: Vec<u32> = messages.iter().map(|m| m.uid).collect();
                if let Some(since) = changed_since {
                    // CONDSTORE: only what changed, and for VANISHED what
                    // was expunged, since the client's MODSEQ.
                    let (u, n) = (user.clone(), mb.clone());
                    let uids = rest.clone();
                    let r = blocking(move || {
                        let metas = store.message_metas(&u, &n, &uids)?;
                        let gone = if vanished {
                            Some(store.vanished_since(&u, &n, since)?)
                        } else {
                            None
                        };
                        Ok::<_, mailstore::Error>((metas, gone))
                    })
                    .await;
                    let Some(Ok((metas, gone))) = r else {
                        return s.reject(token, Completion::no("the messages could not be read"));
                    };
                    match gone {
                        Some(mailstore::Vanished::Uids(v)) => {
                            let _ = s.fetch_vanished(&token, Some(&v));
                        }
                        Some(mailstore::Vanished::TooOld) => {
                            let _ = s.fetch_vanished(&token, None);
                        }
                        None => {}
                    }
                    let changed: std::collections::HashSet<u32> = metas
                        .iter()
                        .filter(|m| m.modseq > since)
                        .map(|m| m.uid)
                        .collect();
                    rest.retain(|u| changed.contains(u));
                    if rest.is_empty() {
                        return s.complete(token, Completion::ok("FETCH completed"));
                    }
                }
                // Answered in batches from `news`, each written out before
                // the next is read: a FETCH of a whole mailbox holds one
                // batch in memory, not the mailbox; a large body streams.
                let stream = stream_split(&items).map(|(label, rest)| (label, Arc::new(rest)));
                self.job = Some(FetchJob {
                    token,
                    mailbox: mb,
                    rest: rest.into(),
                    bytes: needs_bytes(&items),
                    summary: needs_summary(&items),
                    seen: sets_seen(&items) && !self.read_only,
                    items: Arc::new(items),
                    running: None,
                    ready: None,
                    stream,
                    queue: Default::default(),
                    streaming: None,
                    chunk_running: None,
                    chunk_ready: None,
                    unknown_cte: false,
                });
                Ok(())
            }
            Request::Store {
                messages,
                op,
                flags,
                unchanged_since,
                ..
            } => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                let Some(flags) = store_flags(&flags) else {
                    return s.reject(token, Completion::bad("invalid keyword"));
                };
                let op = match op {
                    StoreOp::Replace => FlagOp::Replace,
                    StoreOp::Add => FlagOp::Add,
                    StoreOp::Remove => FlagOp::Remove,
                };
                let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
                let r = blocking(move || {
                    let r = store.store_flags(&user, &mb, &uids, op, &flags, unchanged_since)?;
                    let metas = store.message_metas(&user, &mb, &uids)?;
                    Ok::<_, mailstore::Error>((r, metas))
                })
                .await;
                match r {
                    Some(Ok((r, metas))) => {
                        self.own.extend(r.changed.iter().copied());
                        let _ = s.store_modified(&token, &r.modified);
                        let changed: Vec<u32> = r.changed.iter().map(|c| c.0).collect();
                        self.refresh_live(s, &changed).await;
                        for m in metas.iter().filter(|m| !r.modified.contains(&m.uid)) {
                            let _ = s.fetched(
                                &token,
                                m.uid,
                                vec![
                                    FetchValue::Flags(self.shown_flags(m.uid, &m.flags)),
                                    FetchValue::ModSeq(m.modseq),
                                ],
                            );
                        }
                        s.complete(token, Completion::ok("STORE completed"))
                    }
                    _ => s.reject(token, Completion::no("flags could not be stored")),
                }
            }
            Request::Search { keys, .. } => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                match self.search_uids(s, &store, &user, &mb, keys, None).await {
                    Some(hits) => s.searched_with_modseq(token, hits),
                    None => s.reject(token, Completion::no("search failed")),
                }
            }
            Request::GetQuotaRoot { mailbox } => {
                let quota = self.ctx.quota;
                if quota == 0 {
                    // No quota: the mailbox has no quota root (RFC 9208 §4.1.2).
                    s.untagged(&Response::QuotaRoot {
                        mailbox,
                        roots: Vec::new(),
                    });
                    return s.complete(token, Completion::ok("GETQUOTAROOT completed"));
                }
                let Some(name) = mailbox_name(&mailbox) else {
                    return s.reject(token, nonexistent());
                };
                let (st, u) = (store.clone(), user.clone());
                if !matches!(blocking(move || st.mailbox(&u, &name)).await, Some(Ok(_))) {
                    return s.reject(token, nonexistent());
                }
                let used = blocking(move || store.quota_usage(&user)).await;
                let Some(Ok(used)) = used else {
                    return s.reject(token, Completion::no("quota unavailable"));
                };
                s.untagged(&Response::QuotaRoot {
                    mailbox,
                    roots: vec![String::new()],
                });
                s.untagged(&storage_quota(used, quota));
                s.complete(token, Completion::ok("GETQUOTAROOT completed"))
            }
            Request::GetQuota { root } => {
                let quota = self.ctx.quota;
                if quota == 0 || !root.is_empty() {
                    return s.reject(token, Completion::no("no such quota root"));
                }
                match blocking(move || store.quota_usage(&user)).await {
                    Some(Ok(used)) => {
                        s.untagged(&storage_quota(used, quota));
                        s.complete(token, Completion::ok("GETQUOTA completed"))
                    }
                    _ => s.reject(token, Completion::no("quota unavailable")),
                }
            }
            Request::Sort { criteria, keys, .. } => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                let Some(hits) = self.search_uids(s, &store, &user, &mb, keys, None).await else {
                    return s.reject(token, Completion::no("sort failed"));
                };
                let hits: Vec<u32> = hits.into_iter().map(|h| h.0).collect();
                match blocking(move || sort_fields(&store, &user, &mb, &hits)).await {
                    Some(Ok(mut fields)) => {
                        imap_proto::sort::sort(&mut fields, &criteria);
                        s.sorted(token, fields.into_iter().map(|f| f.uid).collect())
                    }
                    _ => s.reject(token, Completion::no("sort failed")),
                }
            }
            Request::Thread {
                algorithm, keys, ..
            } => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                let Some(hits) = self.search_uids(s, &store, &user, &mb, keys, None).await else {
                    return s.reject(token, Completion::no("thread failed"));
                };
                let hits: Vec<u32> = hits.into_iter().map(|h| h.0).collect();
                match blocking(move || sort_fields(&store, &user, &mb, &hits)).await {
                    Some(Ok(fields)) => s.threaded(
                        token,
                        match algorithm {
                            imap_proto::ThreadAlgorithm::References => {
                                imap_proto::sort::thread_references(fields)
                            }
                            _ => imap_proto::sort::thread_ordered_subject(fields),
                        },
                    ),
                    _ => s.reject(token, Completion::no("thread failed")),
                }
            }
            Request::Copy {
                messages,
                mailbox,
                moving,
                ..
            } => {
                let Some(from) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                // A MOVE keeps the user's total; a COPY adds the copies.
                if !moving && self.ctx.quota > 0 {
                    let (ctx, u, mb) = (self.ctx.clone(), user.clone(), from.clone());
                    let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
                    let over = blocking(move || {
                        let added: u64 = ctx
                            .store
                            .message_metas(&u, &mb, &uids)
                            .map(|m| m.iter().map(|m| m.size).sum())
                            .unwrap_or(0);
                        ctx.over_quota(&u, added)
                    })
                    .await
                    .unwrap_or(false);
                    if over {
                        return s.reject(token, over_quota());
                    }
                }
                let Some(to) = mailbox_name(&mailbox) else {
                    return s.reject(
                        token,
                        Completion::no_code(Code::TryCreate, "no such mailbox"),
                    );
                };
                let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
                let r = blocking(move || {
                    store.mailbox(&user, &to)?;
                    if moving && from == to {
                        // MOVE into the same mailbox: new UIDs, old ones
                        // expunged.
                        let r = store.copy_messages(&user, &from, &uids, &to)?;
                        let deleted = Flags::new().with(SystemFlag::Deleted);
                        store.store_flags(&user, &from, &uids, FlagOp::Add, &deleted, None)?;
                        store.expunge(&user, &from, Some(&uids))?;
                        Ok(r)
                    } else if moving {
                        store.move_messages(&user, &from, &uids, &to)
                    } else {
                        store.copy_messages(&user, &from, &uids, &to)
                    }
                })
                .await;
                match r {
                    Some(Ok((uv, pairs))) => {
                        let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
                        let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
                        let code = match (uid_set(&src), uid_set(&dst)) {
                            (Some(a), Some(b)) => Some(Code::CopyUid(uv, a, b)),
                            _ => None,
                        };
                        if moving {
                            if let Some(code) = code {
                                s.untagged(&Response::Status {
                                    tag: None,
                                    kind: StatusKind::Ok,
                                    code: Some(code),
                                    text: "Moved".into(),
                                });
                            }
                            let _ = s.expunged(&token, &src);
                            // Moved into the selected mailbox itself: EXISTS.
                            self.deliver_news(s);
                            s.complete(token, Completion::ok("MOVE completed"))
                        } else {
                            self.deliver_news(s);
                            match code {
                                Some(c) => {
                                    s.complete(token, Completion::ok_code(c, "COPY completed"))
                                }
                                None => s.complete(token, Completion::ok("COPY completed")),
                            }
                        }
                    }
                    Some(Err(mailstore::Error::NoSuchMailbox(_))) => s.reject(
                        token,
                        Completion::no_code(Code::TryCreate, "no such mailbox"),
                    ),
                    _ => s.reject(token, Completion::no("copy failed")),
                }
            }
            Request::Expunge { uids } => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                match blocking(move || store.expunge(&user, &mb, uids.as_deref())).await {
                    Some(Ok(gone)) => {
                        let _ = s.expunged(&token, &gone);
                        s.complete(token, Completion::ok("EXPUNGE completed"))
                    }
                    _ => s.reject(token, Completion::no("expunge failed")),
                }
            }
            Request::Close => {
                let Some(mb) = self.selected.clone() else {
                    return s.reject(token, Completion::no("no mailbox selected"));
                };
                let r = blocking(move || store.expunge(&user, &mb, None)).await;
                self.deselect();
                match r {
                    Some(Ok(gone)) => {
                        let _ = s.expunged(&token, &gone);
                        s.complete(token, Completion::ok("CLOSE completed"))
                    }
                    _ => s.reject(token, Completion::no("close failed")),
                }
            }
            _ => s.reject(token, Completion::bad("not supported")),
        }
    }
}

/// A CATENATE message (RFC 4469) built from its parts: TEXT as it is, URL
/// parts read from this user's mailboxes (RFC 5092 URLs; a UIDVALIDITY that
/// differs, a missing message or section, another server's URL: `NO
/// [BADURL url]`). `NO [TRYCREATE]` when the target does not exist; `NO
/// [TOOBIG]` past `limit` octets. Blocking.
fn catenate(
    store: &Store,
    user: &UserName,
    target: &MailboxName,
    parts: &[imap_proto::CatenatePart<'_>],
    limit: u64,
) -> Result<Vec<u8>, Completion> {
    if store.mailbox(user, target).is_err() {
        return Err(Completion::no_code(Code::TryCreate, "no such mailbox"));
    }
    let mut out = Vec::new();
    for part in parts {
        match part {
            imap_proto::CatenatePart::Text(t) => out.extend_from_slice(t),
            imap_proto::CatenatePart::Url(url) => {
                let bad = || {
                    Completion::no_code(
                        Code::Other("BADURL".into(), Some(url.clone())),
                        "the URL names no message here",
                    )
                };
                let u = imap_proto::url::ImapUrl::parse(url).ok_or_else(bad)?;
                let mb = MailboxName::new(&u.mailbox).map_err(|_| bad())?;
                let info = store.mailbox(user, &mb).map_err(|_| bad())?;
                if u.uid_validity.is_some_and(|v| v != info.uid_validity) {
                    return Err(bad());
                }
                let message = read_message(store, user, &mb, u.uid).ok_or_else(bad)?;
                out.extend(u.extract(&message).ok_or_else(bad)?);
            }
        }
        if out.len() as u64 > limit {
            return Err(Completion::no_code(
                Code::Other("TOOBIG".into(), None),
                "message too large",
            ));
        }
    }
    if out.contains(&0) {
        return Err(Completion::no("NUL is not allowed in a message"));
    }
    Ok(out)
}

/// The MAILBOXID of a mailbox (RFC 8474): its store id, which RENAME
/// keeps, with its UIDVALIDITY (so a store made anew never repeats one).
pub fn mailbox_object_id(info: &mailstore::MailboxInfo) -> String {
    format!("F{}-{}", info.id, info.uid_validity)
}

/// The EMAILID of a message (RFC 8474): its store unique id, letters,
/// digits and `-` kept, any other byte written `_xx` (so two ids never
/// map to one).
pub fn email_object_id(unique_id: &str) -> String {
    let mut out = String::with_capacity(unique_id.len() + 1);
    out.push('M');
    for b in unique_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// STATUS values of one mailbox, and its MAILBOXID when asked.
async fn status_items(
    ctx: Arc<Ctx>,
    user: UserName,
    name: &MailboxName,
    items: &[StatusItem],
) -> Option<(Vec<(StatusItem, u64)>, Option<String>)> {
    {
        let store = ctx.store.clone();
        let n = name.clone();
        let u = user.clone();
        let scan = items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Deleted | StatusItem::Size | StatusItem::Recent
            )
        });
        let (info, msgs) = blocking(move || {
            let info = store.mailbox(&u, &n)?;
            let msgs = if scan {
                store.messages(&u, &n)?
            } else {
                Vec::new()
            };
            Ok::<_, mailstore::Error>((info, msgs))
        })
        .await?
        .ok()?;
        let floor = ctx
            .recent
            .lock()
            .ok()
            .and_then(|m| m.get(&(user, name.clone(), info.uid_validity)).copied())
            .unwrap_or(1);
        let mailbox_id = items
            .contains(&StatusItem::MailboxId)
            .then(|| mailbox_object_id(&info));
        Some((
            items
                .iter()
                .filter(|i| **i != StatusItem::MailboxId)
                .map(|i| {
                    let v = match i {
                        StatusItem::Messages => u64::from(info.exists),
                        StatusItem::Recent => msgs.iter().filter(|m| m.uid >= floor).count() as u64,
                        StatusItem::UidNext => u64::from(info.uid_next),
                        StatusItem::UidValidity => u64::from(info.uid_validity),
                        StatusItem::Unseen => u64::from(info.unseen),
                        StatusItem::Deleted => msgs
                            .iter()
                            .filter(|m| m.flags.contains(SystemFlag::Deleted))
                            .count() as u64,
                        StatusItem::Size => msgs.iter().map(|m| m.size).sum(),
                        StatusItem::HighestModSeq => info.highest_modseq.max(1),
                        StatusItem::MailboxId => 0,
                    };
                    (*i, v)
                })
                .collect(),
            mailbox_id,
        ))
    }
}

/// LIST and LSUB responses.
#[allow(clippy::too_many_arguments)]
async fn list(
    ctx: Arc<Ctx>,
    user: UserName,
    s: &mut Session,
    lsub: bool,
    reference: &str,
    patterns: &[String],
    select: &[ListSelect],
    ret: &[ListReturn],
    boxes: &[mailstore::MailboxInfo],
) {
    if patterns.len() == 1 && patterns[0].is_empty() && !lsub {
        s.untagged(&Response::List {
            lsub: false,
            attributes: vec!["\\Noselect".into()],
            delimiter: Some('/'),
            mailbox: Mailbox::list_root(),
            extended: Vec::new(),
        });
        return;
    }
    let subscribed_only = lsub || select.contains(&ListSelect::Subscribed);
    let want_sub = lsub || subscribed_only || ret.contains(&ListReturn::Subscribed);
    let status: Option<Vec<StatusItem>> = ret.iter().find_map(|r| match r {
        ListReturn::Status(items) => Some(items.clone()),
        _ => None,
    });
    let names: Vec<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
    // Parents that are not mailboxes themselves, for `%` listings.
    let mut implied: Vec<String> = Vec::new();
    for n in &names {
        let mut acc = String::new();
        for level in n.split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(level);
            if !names.contains(&acc.as_str()) && !implied.contains(&acc) {
                implied.push(acc.clone());
            }
        }
    }
    let has_children = |n: &str| {
        let prefix = format!("{n}/");
        names.iter().any(|x| x.starts_with(&prefix))
    };
    // Subscribed names that are no mailbox, and every subscribed name.
    let orphans: Vec<String> = if subscribed_only {
        ctx.store
            .orphan_subscriptions(&user)
            .unwrap_or_default()
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let subscribed: Vec<&str> = boxes
        .iter()
        .filter(|b| b.subscribed)
        .map(|b| b.name.as_str())
        .chain(orphans.iter().map(String::as_str))
        .collect();
    let fulls: Vec<String> = patterns.iter().map(|p| format!("{reference}{p}")).collect();
    // RECURSIVEMATCH (RFC 5258 §3.5): a name gets CHILDINFO ("SUBSCRIBED")
    // when a subscribed name below it is not listed itself.
    let recursive = subscribed_only && !lsub && select.contains(&ListSelect::RecursiveMatch);
    let childinfo = |n: &str| -> Vec<(String, Vec<String>)> {
        let prefix = format!("{n}/");
        let hidden = subscribed
            .iter()
            .any(|d| d.starts_with(&prefix) && !fulls.iter().any(|f| list_match(f, d)));
        if recursive && hidden {
            vec![("CHILDINFO".to_owned(), vec!["SUBSCRIBED".to_owned()])]
        } else {
            Vec::new()
        }
    };
    let mut shown: Vec<String> = Vec::new();
    for pattern in patterns {
        let full = format!("{reference}{pattern}");
        for b in boxes {
            let name = b.name.as_str();
            if !list_match(&full, name) || shown.iter().any(|x| x == name) {
                continue;
            }
            if subscribed_only && !b.subscribed {
                continue;
            }
            shown.push(name.to_owned());
            let mut attributes = Vec::new();
            if !lsub {
                attributes.push(
                    if has_children(name) {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    }
                    .to_owned(),
                );
                if let Some(su) = b.special_use {
                    attributes.push(special_use_attr(su).to_owned());
                }
            }
            if want_sub && b.subscribed && !lsub {
                attributes.push("\\Subscribed".into());
            }
            let Some(m) = Mailbox::new(name) else {
                continue;
            };
            s.untagged(&Response::List {
                lsub,
                attributes,
                delimiter: Some('/'),
                mailbox: m.clone(),
                extended: childinfo(name),
            });
            if let Some(items) = &status
                && let Some((values, mailbox_id)) =
                    status_items(ctx.clone(), user.clone(), &b.name, items).await
            {
                s.untagged(&Response::MailboxStatus {
                    mailbox: m,
                    items: values,
                    mailbox_id,
                });
            }
        }
        for n in &orphans {
            if list_match(&full, n) && !shown.contains(n) {
                shown.push(n.clone());
                let attributes = if lsub {
                    vec!["\\Noselect".into()]
                } else {
                    vec!["\\Subscribed".into(), "\\NonExistent".into()]
                };
                if let Some(m) = Mailbox::new(n.as_str()) {
                    s.untagged(&Response::List {
                        lsub,
                        attributes,
                        delimiter: Some('/'),
                        mailbox: m,
                        extended: childinfo(n),
                    });
                }
            }
        }
        if recursive {
            // Names not selected themselves, shown for their children.
            let mut candidates: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            candidates.extend(implied.iter().cloned());
            for d in &subscribed {
                let parts: Vec<&str> = d.split('/').collect();
                for k in 1..parts.len() {
                    candidates.push(parts[..k].join("/"));
                }
            }
            candidates.sort();
            candidates.dedup();
            for c in candidates {
                if !list_match(&full, &c) || shown.contains(&c) {
                    continue;
                }
                let info = childinfo(&c);
                if info.is_empty() {
                    continue;
                }
                shown.push(c.clone());
                let mut attributes = vec!["\\HasChildren".to_owned()];
                if !names.contains(&c.as_str()) {
                    attributes.push("\\NonExistent".into());
                }
                if let Some(m) = Mailbox::new(c.as_str()) {
                    s.untagged(&Response::List {
                        lsub,
                        attributes,
                        delimiter: Some('/'),
                        mailbox: m,
                        extended: info,
                    });
                }
            }
        }
        if lsub {
            // A subscribed mailbox below one the pattern stops at: that
            // one is listed as \Noselect (RFC 3501 §6.3.9).
            for b in boxes.iter().filter(|b| b.subscribed) {
                let parts: Vec<&str> = b.name.as_str().split('/').collect();
                for k in 1..parts.len() {
                    let anc = parts[..k].join("/");
                    let subscribed = boxes.iter().any(|x| x.subscribed && x.name.as_str() == anc);
                    if !subscribed && list_match(&full, &anc) && !shown.contains(&anc) {
                        shown.push(anc.clone());
                        if let Some(m) = Mailbox::new(anc.as_str()) {
                            s.untagged(&Response::List {
                                lsub: true,
                                attributes: vec!["\\Noselect".into()],
                                delimiter: Some('/'),
                                mailbox: m,
                                extended: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
        if !subscribed_only {
            for n in &implied {
                if list_match(&full, n) && !shown.contains(n) {
                    shown.push(n.clone());
                    if let Some(m) = Mailbox::new(n.as_str()) {
                        s.untagged(&Response::List {
                            lsub,
                            attributes: vec!["\\Noselect".into(), "\\HasChildren".into()],
                            delimiter: Some('/'),
                            mailbox: m,
                            extended: Vec::new(),
                        });
                    }
                }
            }
        }
    }
}

/// What SORT and THREAD order `uids` by, from each message's kept summary,
/// internal date and size: no message file is read.
fn sort_fields(
    store: &Store,
    user: &UserName,
    mb: &MailboxName,
    uids: &[u32],
) -> Result<Vec<imap_proto::sort::SortFields>, mailstore::Error> {
    let mut fields = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(BATCH * 16) {
        for meta in store.message_metas(user, mb, chunk)? {
            let (envelope, references) = Summary::load(store, user, mb, meta.uid, None)
                .map(|s| (s.envelope, s.references))
                .unwrap_or_default();
            let mut f = imap_proto::sort::SortFields::new(
                meta.uid,
                &envelope,
                meta.internal_date,
                meta.size,
            );
            if let Some(r) = references {
                f.set_references(&r);
            }
            fields.push(f);
        }
    }
    Ok(fields)
}

/// Whether `size` more octets would put `user` over the quota.
async fn quota_full(ctx: Arc<Ctx>, user: &UserName, size: u64) -> bool {
    let u = user.clone();
    blocking(move || ctx.over_quota(&u, size))
        .await
        .unwrap_or(false)
}

/// `NO [OVERQUOTA]` (RFC 9208 §4.3).
fn over_quota() -> Completion {
    Completion::no_code(Code::Other("OVERQUOTA".into(), None), "over quota")
}

/// `* QUOTA "" (STORAGE used limit)`, in KiB as RFC 9208 §5.1 counts.
fn storage_quota(used: u64, limit: u64) -> Response<'static> {
    Response::Quota {
        root: String::new(),
        resources: vec![("STORAGE".into(), used.div_ceil(1024), limit / 1024)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns_match_as_rfc_3501_says() {
        assert!(list_match("*", "a/b/c"));
        assert!(list_match("%", "a"));
        assert!(!list_match("%", "a/b"));
        assert!(list_match("a/%", "a/b"));
        assert!(!list_match("a/%", "a/b/c"));
        assert!(list_match("inbox", "INBOX"));
        assert!(list_match("a*c", "abxc"));
        assert!(!list_match("a*c", "abxd"));
        assert!(list_match("%/%", "x/y"));
        // Names and patterns with multi-byte characters near the start.
        assert!(list_match("Entw*", "Entwürfe"));
        assert!(!list_match("INBOX", "Inbüx"));
        assert!(list_match("ü*", "ü/x"));
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(internal_date(0), "01-Jan-1970 00:00:00 +0000");
        let t = parse_date("17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(internal_date(t), "17-Jul-1996 09:44:25 +0000");
        assert_eq!(
            parse_date(" 1-Feb-2024 00:00:00 +0000"),
            Some(days_from_civil(2024, 2, 1) * 86_400)
        );
    }

    proptest::proptest! {
        /// The helpers that read what a client sent never panic, whatever
        /// characters it holds (a byte-5 slice inside `ü` once did).
        #[test]
        fn client_text_never_panics_the_helpers(pattern in "\\PC{0,12}", name in "\\PC{0,12}", date in "\\PC{0,30}") {
            let _ = list_match(&pattern, &name);
            let _ = parse_date(&date);
            let _ = mailbox_name(&Mailbox::new(name.clone()).unwrap_or_else(|| Mailbox::new("x").unwrap()));
        }
    }

    #[test]
    fn uid_sets_join_runs_in_order() {
        assert_eq!(uid_set(&[3, 4, 5, 9]).unwrap().to_string(), "3:5,9");
        assert!(uid_set(&[]).is_none());
    }
}
