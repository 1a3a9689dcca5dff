//! The outgoing queue: messages waiting to be relayed, with per-recipient
//! state, a retry schedule, leases for runners, and RFC 3464 bounces.
//!
//! Times are Unix seconds given by the caller; the queue never reads the
//! clock, so tests and simulations control time.

use std::collections::BTreeMap;
use std::io::Read;

use crate::Error;

/// A queued message's id.
pub type QueueId = u64;

/// `RET=` of the original MAIL command (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// Return the whole message in a bounce.
    Full,
    /// Return only its headers.
    Headers,
}

/// When a recipient wants delivery status notifications (RFC 3461
/// `NOTIFY`). The default (no NOTIFY given) is failures only... and delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notify {
    /// On success.
    pub success: bool,
    /// On failure.
    pub failure: bool,
    /// On delay.
    pub delay: bool,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            success: false,
            failure: true,
            delay: true,
        }
    }
}

/// Where a recipient stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientState {
    /// Not tried yet.
    Pending,
    /// Tried, failed for now; tried again later.
    Deferred,
    /// Accepted by the next hop.
    Delivered,
    /// Failed for good (permanent error or expiry).
    Failed,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecipient {
    /// The address (forward-path without brackets).
    pub address: String,
    /// DSN `NOTIFY`.
    pub notify: Notify,
    /// DSN `ORCPT` (the address part, decoded).
    pub orcpt: Option<String>,
    /// State.
    pub state: RecipientState,
    /// Attempts so far.
    pub attempts: u32,
    /// When to try next (Unix seconds).
    pub next_attempt: i64,
    /// The last reply from a remote server, if any.
    pub last_reply: Option<String>,
    /// A "delayed" report (NOTIFY=DELAY) was sent for it.
    pub delay_notified: bool,
}

/// The envelope of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path without brackets; empty for the null path `<>`.
    pub from: String,
    /// Recipients with their DSN parameters.
    pub recipients: Vec<(String, Notify, Option<String>)>,
    /// DSN `ENVID`.
    pub envid: Option<String>,
    /// DSN `RET`.
    pub ret: Option<Return>,
}

/// A message in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Its id.
    pub id: QueueId,
    /// The sender.
    pub from: String,
    /// DSN `ENVID`.
    pub envid: Option<String>,
    /// DSN `RET`.
    pub ret: Option<Return>,
    /// Arrival time (Unix seconds).
    pub arrival: i64,
    /// Size in octets.
    pub size: u64,
    /// The recipients.
    pub recipients: Vec<QueueRecipient>,
}

impl QueuedMessage {
    /// Whether every recipient is done (delivered or failed).
    pub fn is_finished(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| matches!(r.state, RecipientState::Delivered | RecipientState::Failed))
    }
}

/// The retry schedule (defaults like Postfix: first retry after 5
/// minutes, doubling up to about 67 minutes, give up after 5 days; RFC
/// 5321 §4.5.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, in seconds.
    pub first_retry: i64,
    /// Longest delay between attempts, in seconds.
    pub max_interval: i64,
    /// Give up this long after arrival, in seconds.
    pub give_up_after: i64,
    /// Send a "delayed" report (NOTIFY=DELAY, once) for a recipient still
    /// not delivered this long after arrival, in seconds; 0: never.
    pub delay_warning: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_retry: 300,
            max_interval: 4000,
            give_up_after: 5 * 24 * 3600,
            delay_warning: 4 * 3600,
        }
    }
}

impl RetryPolicy {
    /// Seconds to wait after the `attempts`-th failed attempt.
    pub fn delay(&self, attempts: u32) -> i64 {
        let shift = attempts.saturating_sub(1).min(30);
        self.first_retry
            .saturating_mul(1i64 << shift)
            .min(self.max_interval)
    }
}

/// The outcome of one delivery attempt to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The next hop accepted it (its reply).
    Delivered(String),
    /// A 4xx or a connection problem: try again later.
    Transient(String),
    /// A 5xx: give up on this recipient.
    Permanent(String),
}

/// Messages handed to one runner; no other runner gets them until the
/// lease expires or [`crate::Store::queue_record`] is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The message.
    pub id: QueueId,
    /// Indexes of the recipients to try now.
    pub recipients: Vec<usize>,
    /// The lease runs out at this time.
    pub until: i64,
}

#[derive(Debug, Default)]
pub(crate) struct QueueModel {
    pub messages: BTreeMap<QueueId, QueuedMessage>,
    pub leases: BTreeMap<QueueId, i64>,
    pub next_id: QueueId,
}

impl QueueModel {
    /// What is due now and not leased.
    pub fn due(&mut self, now: i64, lease_for: i64, max: usize) -> Vec<Lease> {
        let mut out = Vec::new();
        for (id, m) in &self.messages {
            if out.len() >= max {
                break;
            }
            if self.leases.get(id).is_some_and(|&until| until > now) {
                continue;
            }
            let due: Vec<usize> = m
                .recipients
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    matches!(r.state, RecipientState::Pending | RecipientState::Deferred)
                        && r.next_attempt <= now
                })
                .map(|(i, _)| i)
                .collect();
            if !due.is_empty() {
                out.push(Lease {
                    id: *id,
                    recipients: due,
                    until: now + lease_for,
                });
            }
        }
        for l in &out {
            self.leases.insert(l.id, l.until);
        }
        out
    }
}

// ----------------------------------------------------------- encoding

pub(crate) fn encode(m: &QueuedMessage) -> Vec<u8> {
    let mut w = Vec::new();
    let put_u64 = |w: &mut Vec<u8>, v: u64| w.extend_from_slice(&v.to_le_bytes());
    let put_str = |w: &mut Vec<u8>, s: &str| {
        w.extend_from_slice(&(s.len() as u64).to_le_bytes());
        w.extend_from_slice(s.as_bytes());
    };
    let put_opt = |w: &mut Vec<u8>, s: &Option<String>| match s {
        Some(s) => {
            w.push(1);
            w.extend_from_slice(&(s.len() as u64).to_le_bytes());
            w.extend_from_slice(s.as_bytes());
        }
        None => w.push(0),
    };
    put_str(&mut w, &m.from);
    put_opt(&mut w, &m.envid);
    w.push(match m.ret {
        None => 0,
        Some(Return::Full) => 1,
        Some(Return::Headers) => 2,
    });
    put_u64(&mut w, m.arrival as u64);
    put_u64(&mut w, m.size);
    put_u64(&mut w, m.recipients.len() as u64);
    for r in &m.recipients {
        put_str(&mut w, &r.address);
        w.push(
            u8::from(r.notify.success)
                | u8::from(r.notify.failure) << 1
                | u8::from(r.notify.delay) << 2,
        );
        put_opt(&mut w, &r.orcpt);
        w.push(match r.state {
            RecipientState::Pending => 0,
            RecipientState::Deferred => 1,
            RecipientState::Delivered => 2,
            RecipientState::Failed => 3,
        });
        put_u64(&mut w, u64::from(r.attempts));
        put_u64(&mut w, r.next_attempt as u64);
        put_opt(&mut w, &r.last_reply);
    }
    // Added later, after the recipients so older records still read.
    for r in &m.recipients {
        w.push(u8::from(r.delay_notified));
    }
    w
}

pub(crate) fn decode(id: QueueId, b: &[u8]) -> Result<QueuedMessage, Error> {
    let bad = || Error::Index("bad queue record".into());
    let mut r = b;
    let mut take = |n: usize| -> Result<&[u8], Error> {
        if r.len() < n {
            return Err(bad());
        }
        let (a, rest) = r.split_at(n);
        r = rest;
        Ok(a)
    };
    fn u64_of(b: &[u8]) -> u64 {
        u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
    }
    macro_rules! u64v {
        () => {
            u64_of(take(8)?)
        };
    }
    macro_rules! strv {
        () => {{
            let n = usize::try_from(u64v!()).map_err(|_| bad())?;
            String::from_utf8(take(n)?.to_vec()).map_err(|_| bad())?
        }};
    }
    macro_rules! optv {
        () => {{
            if take(1)?[0] == 1 {
                Some(strv!())
            } else {
                None
            }
        }};
    }
    let from = strv!();
    let envid = optv!();
    let ret = match take(1)?[0] {
        1 => Some(Return::Full),
        2 => Some(Return::Headers),
        _ => None,
    };
    let arrival = u64v!() as i64;
    let size = u64v!();
    let n = u64v!();
    let mut recipients = Vec::new();
    for _ in 0..n.min(100_000) {
        let address = strv!();
        let bits = take(1)?[0];
        let orcpt = optv!();
        let state = match take(1)?[0] {
            0 => RecipientState::Pending,
            1 => RecipientState::Deferred,
            2 => RecipientState::Delivered,
            _ => RecipientState::Failed,
        };
        let attempts = u64v!() as u32;
        let next_attempt = u64v!() as i64;
        let last_reply = optv!();
        recipients.push(QueueRecipient {
            address,
            notify: Notify {
                success: bits & 1 != 0,
                failure: bits & 2 != 0,
                delay: bits & 4 != 0,
            },
            orcpt,
            state,
            attempts,
            next_attempt,
            last_reply,
            delay_notified: false,
        });
    }
    if let Ok(flags) = take(recipients.len()) {
        for (r, f) in recipients.iter_mut().zip(flags) {
            r.delay_notified = *f == 1;
        }
    }
    Ok(QueuedMessage {
        id,
        from,
        envid,
        ret,
        arrival,
        size,
        recipients,
    })
}

// ------------------------------------------------------------- bounces

/// An RFC 5322 date from Unix seconds (UTC).
pub fn rfc5322_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The status code for a failed recipient: the enhanced code in the
/// remote reply if there is one, else a generic one.
fn status_of(reply: &str, expired: bool) -> String {
    if expired {
        return "4.4.7".to_owned();
    }
    reply
        .split_whitespace()
        .nth(1)
        .filter(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && p.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
        .map_or_else(|| "5.0.0".to_owned(), str::to_owned)
}

/// What a delivery status notification reports for one recipient
/// (RFC 3464 §2.3.3 `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Failed for good: its last reply was permanent.
    Failed,
    /// Failed: the delivery time ran out.
    Expired,
    /// Delivered to a next hop that takes DSN requests on (NOTIFY=SUCCESS).
    Delivered,
    /// Passed to a next hop that does not take DSN requests on: no further
    /// notification will come (RFC 3461 §6.2.1).
    Relayed,
    /// Not delivered yet, still being tried (NOTIFY=DELAY).
    Delayed,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Failed | Action::Expired => "failed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Delayed => "delayed",
        }
    }
}

/// Builds an RFC 3464 delivery status notification for the failed
/// recipients of `m` (`true` when its time expired), from the null
/// reverse path, to its sender. `original` is the queued message's bytes
/// (its headers, or all of it with `RET=FULL`, are attached).
pub fn build_bounce(
    m: &QueuedMessage,
    failed: &[(usize, bool)],
    original: &mut dyn Read,
    reporting_mta: &str,
    now: i64,
) -> Result<Vec<u8>, Error> {
    let entries: Vec<(usize, Action)> = failed
        .iter()
        .map(|&(i, expired)| {
            (
                i,
                if expired {
                    Action::Expired
                } else {
                    Action::Failed
                },
            )
        })
        .collect();
    build_report(m, &entries, original, reporting_mta, now)
}

/// Builds an RFC 3464 delivery status notification for the recipients of
/// `m` listed with what happened to each, to its sender. A report that
/// holds no failure returns only the headers of the message (RFC 3461
/// §4.3 allows no more for success), whatever RET asked.
pub fn build_report(
    m: &QueuedMessage,
    entries: &[(usize, Action)],
    original: &mut dyn Read,
    reporting_mta: &str,
    now: i64,
) -> Result<Vec<u8>, Error> {
    let any_failed = entries
        .iter()
        .any(|(_, a)| matches!(a, Action::Failed | Action::Expired));
    let (subject, intro) = if any_failed {
        (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients.",
        )
    } else if entries.iter().all(|(_, a)| *a == Action::Delayed) {
        (
            "Delayed Mail (still being retried)",
            "Your message could not be delivered yet; delivery is still being tried.",
        )
    } else {
        (
            "Successful Mail Delivery Report",
            "Your message was delivered (or passed on) to the recipients below.",
        )
    };
    let mut orig = Vec::new();
    original.take(10 * 1024 * 1024).read_to_end(&mut orig)?;
    let headers_end = find(&orig, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| find(&orig, b"\n\n").map(|i| i + 1))
        .unwrap_or(orig.len());
    let boundary = format!("{}/{}.{}", m.id, now, reporting_mta);
    let date = rfc5322_date(now);
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n\
To: <{}>\r\n\
Subject: {subject}\r\n\
Date: {date}\r\n\
Message-ID: <bounce.{}.{now}@{reporting_mta}>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n\
This is a MIME-encapsulated message.\r\n\r\n--{boundary}\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\r\n\
This is the mail system at host {reporting_mta}.\r\n\r\n\
{intro}\r\n\r\n",
        m.from, m.id
    ));
    let entries: Vec<(&QueueRecipient, Action)> = entries
        .iter()
        .filter_map(|&(i, a)| m.recipients.get(i).map(|r| (r, a)))
        .collect();
    for (r, action) in &entries {
        let why = match action {
            Action::Expired => "delivery time expired".to_owned(),
            _ => r.last_reply.clone().unwrap_or_default(),
        };
        out.push_str(&format!("<{}>: {}: {}\r\n", r.address, action.word(), why));
    }
    out.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {reporting_mta}\r\n"
    ));
    if let Some(e) = &m.envid {
        out.push_str(&format!("Original-Envelope-Id: {e}\r\n"));
    }
    out.push_str(&format!("Arrival-Date: {}\r\n", rfc5322_date(m.arrival)));
    for (r, action) in &entries {
        let reply = r.last_reply.clone().unwrap_or_default();
        out.push_str(&format!("\r\nFinal-Recipient: rfc822; {}\r\n", r.address));
        if let Some(o) = &r.orcpt {
            out.push_str(&format!("Original-Recipient: rfc822; {o}\r\n"));
        }
        let status = match action {
            Action::Failed | Action::Expired => status_of(&reply, *action == Action::Expired),
            Action::Delivered | Action::Relayed => "2.0.0".to_owned(),
            Action::Delayed => "4.0.0".to_owned(),
        };
        out.push_str(&format!(
            "Action: {}\r\nStatus: {status}\r\n",
            action.word()
        ));
        if !reply.is_empty() {
            out.push_str(&format!("Diagnostic-Code: smtp; {reply}\r\n"));
        }
        out.push_str(&format!("Last-Attempt-Date: {date}\r\n"));
    }
    let full = any_failed && m.ret == Some(Return::Full);
    out.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: {}\r\n\r\n",
        if full {
            "message/rfc822"
        } else {
            "text/rfc822-headers"
        }
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(if full { &orig } else { &orig[..headers_end] });
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(bytes)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
