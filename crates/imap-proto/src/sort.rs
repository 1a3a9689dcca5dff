//! SORT (RFC 5256, with RFC 5957's DISPLAYFROM/DISPLAYTO): the base
//! subject of §2.1 and the ordering itself, from what a server keeps of
//! each message (its ENVELOPE, internal date and size), so sorting never
//! reads a message file.
//!
//! ```
//! use imap_proto::sort::base_subject;
//!
//! assert_eq!(base_subject("Re: [list] Fwd:  Hello   World (fwd)"), "HELLO WORLD");
//! assert_eq!(base_subject("[fwd: re: Meeting]"), "MEETING");
//! ```

use std::cmp::Ordering;

use crate::command::{SortCriterion, SortKey};
use crate::response::{Address, Envelope};

/// What one message is sorted by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortFields {
    /// Its UID (the final tie-break is mailbox order, which is UID order).
    pub uid: u32,
    /// INTERNALDATE, Unix seconds.
    pub arrival: i64,
    /// The Date header in UTC seconds, or the internal date without one.
    pub date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// The base subject, upper-cased (i;ascii-casemap).
    pub subject: String,
    /// First From, To and Cc mailbox (local part), upper-cased.
    pub from: String,
    /// See `from`.
    pub to: String,
    /// See `from`.
    pub cc: String,
    /// DISPLAYFROM / DISPLAYTO: display name, else the address, upper-cased.
    pub display_from: String,
    /// See `display_from`.
    pub display_to: String,
}

impl SortFields {
    /// The fields of a message from its envelope, internal date and size.
    pub fn new(uid: u32, envelope: &Envelope<'_>, arrival: i64, size: u64) -> SortFields {
        let date = envelope
            .date
            .as_ref()
            .and_then(|d| {
                mail_parser::DateTime::parse_rfc822(&String::from_utf8_lossy(d))
                    .map(|t| t.to_timestamp())
            })
            .unwrap_or(arrival);
        let subject = envelope
            .subject
            .as_ref()
            .map(|s| base_subject(&decode_words(s)))
            .unwrap_or_default();
        SortFields {
            uid,
            arrival,
            date,
            size,
            subject,
            from: mailbox(&envelope.from),
            to: mailbox(&envelope.to),
            cc: mailbox(&envelope.cc),
            display_from: display(&envelope.from),
            display_to: display(&envelope.to),
        }
    }

    fn compare(&self, other: &SortFields, key: SortKey) -> Ordering {
        match key {
            SortKey::Arrival => self.arrival.cmp(&other.arrival),
            SortKey::Date => self.date.cmp(&other.date),
            SortKey::Size => self.size.cmp(&other.size),
            SortKey::Subject => self.subject.cmp(&other.subject),
            SortKey::From => self.from.cmp(&other.from),
            SortKey::To => self.to.cmp(&other.to),
            SortKey::Cc => self.cc.cmp(&other.cc),
            SortKey::DisplayFrom => self.display_from.cmp(&other.display_from),
            SortKey::DisplayTo => self.display_to.cmp(&other.display_to),
        }
    }
}

/// Sorts messages by `criteria` (most significant first); messages equal
/// by all of them keep mailbox (UID) order (RFC 5256 §3).
pub fn sort(messages: &mut [SortFields], criteria: &[SortCriterion]) {
    messages.sort_by(|a, b| {
        for c in criteria {
            let o = a.compare(b, c.key);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.uid.cmp(&b.uid)
    });
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject;
/// in each group the earliest (by sent date, then mailbox order) is the
/// parent and the others its replies, by date; the threads ordered by
/// their first message. Numbers in the result are the messages' UIDs.
pub fn thread_ordered_subject(mut messages: Vec<SortFields>) -> Vec<crate::response::Thread> {
    use crate::response::Thread;
    messages.sort_by(|a, b| {
        a.subject
            .cmp(&b.subject)
            .then(a.date.cmp(&b.date))
            .then(a.uid.cmp(&b.uid))
    });
    let mut threads: Vec<(i64, u32, Thread)> = Vec::new();
    let mut i = 0;
    while i < messages.len() {
        let first = &messages[i];
        let mut j = i + 1;
        while j < messages.len() && messages[j].subject == first.subject {
            j += 1;
        }
        threads.push((
            first.date,
            first.uid,
            Thread {
                message: Some(first.uid),
                children: messages[i + 1..j]
                    .iter()
                    .map(|m| Thread::leaf(m.uid))
                    .collect(),
            },
        ));
        i = j;
    }
    threads.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    threads.into_iter().map(|t| t.2).collect()
}

/// RFC 2047 encoded words decoded (through mail-parser's header reader).
fn decode_words(raw: &[u8]) -> String {
    let mut h = b"Subject: ".to_vec();
    h.extend_from_slice(raw);
    h.extend_from_slice(b"\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse_headers(&h)
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

fn upper(s: &[u8]) -> String {
    String::from_utf8_lossy(s).to_ascii_uppercase()
}

/// The first address as the envelope has it (a group's name counts, as
/// its start marker carries it in the mailbox field).
fn first<'a, 'b>(list: &'b [Address<'a>]) -> Option<&'b Address<'a>> {
    list.first()
}

fn mailbox(list: &[Address<'_>]) -> String {
    first(list)
        .and_then(|a| a.mailbox.as_deref())
        .map(upper)
        .unwrap_or_default()
}

fn display(list: &[Address<'_>]) -> String {
    let Some(a) = first(list) else {
        return String::new();
    };
    if let Some(name) = a.name.as_deref().filter(|n| !n.is_empty()) {
        return decode_words(name).to_ascii_uppercase();
    }
    let mut s = a.mailbox.as_deref().map(upper).unwrap_or_default();
    if let Some(h) = a.host.as_deref() {
        s.push('@');
        s.push_str(&upper(h));
    }
    s
}

/// The base subject (RFC 5256 §2.1), upper-cased for i;ascii-casemap
/// comparison: whitespace collapsed, `(fwd)` trailers, `Re:`/`Fw:`/`Fwd:`
/// leaders with their `[blob]`s, leading blobs and `[fwd: …]` wrappers
/// removed, repeatedly.
pub fn base_subject(subject: &str) -> String {
    // (1) Tabs and line breaks to spaces, runs of spaces to one.
    let mut s = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') {
            ' '
        } else {
            c
        };
        if c == ' ' && s.ends_with(' ') {
            continue;
        }
        s.push(c);
    }
    let mut s = s.trim().to_ascii_uppercase();
    loop {
        // (2) Trailers: "(FWD)" and whitespace at the end.
        loop {
            let t = s.trim_end();
            match t.strip_suffix("(FWD)") {
                Some(rest) => s = rest.to_owned(),
                None => {
                    s = t.to_owned();
                    break;
                }
            }
        }
        // (3)-(5) Leaders and blobs at the start, until nothing changes.
        loop {
            let before = s.len();
            s = strip_leader(&s);
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_owned();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[FWD:" … "]": unwrap and start over.
        match s.strip_prefix("[FWD:").and_then(|r| r.strip_suffix(']')) {
            Some(inner) => s = inner.trim().to_owned(),
            None => return s,
        }
    }
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: the rest after it.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(['[', ']'])?;
    if rest.as_bytes()[end] != b']' {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

/// `subj-leader = (*subj-blob subj-refwd) / WSP` removed once:
/// `subj-refwd = ("RE" / ("FW" ["D"])) *WSP [subj-blob] ":"`.
fn strip_leader(s: &str) -> String {
    let s = s.trim_start();
    // Blobs before the Re/Fwd.
    let mut rest = s;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    let after = rest
        .strip_prefix("RE")
        .or_else(|| rest.strip_prefix("FWD"))
        .or_else(|| rest.strip_prefix("FW"));
    if let Some(a) = after {
        let mut a = a.trim_start();
        if let Some(r) = strip_blob(a) {
            a = r;
        }
        if let Some(r) = a.strip_prefix(':') {
            return r.trim_start().to_owned();
        }
    }
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        for (input, want) in [
            ("Hello", "HELLO"),
            ("re: hello", "HELLO"),
            ("Re: Re: Fwd: hello", "HELLO"),
            ("RE [list]: hello", "HELLO"),
            ("[list] Re: hello", "HELLO"),
            ("[list]", "[LIST]"),
            ("hello (fwd)", "HELLO"),
            ("hello (fwd) (FWD)  ", "HELLO"),
            ("[fwd: hello]", "HELLO"),
            ("[Fwd: Re: [x] hello (fwd)]", "HELLO"),
            ("  two   spaces\there ", "TWO SPACES HERE"),
            ("Re:", ""),
            ("Fw: a", "A"),
            ("Reply: not a leader", "REPLY: NOT A LEADER"),
            ("", ""),
        ] {
            assert_eq!(base_subject(input), want, "{input:?}");
        }
    }

    #[test]
    fn ordered_subject_threads() {
        let f = |uid, subject: &str, date| SortFields {
            uid,
            date,
            subject: base_subject(subject),
            ..SortFields::default()
        };
        let threads = thread_ordered_subject(vec![
            f(1, "b", 30),
            f(2, "a", 20),
            f(3, "Re: b", 10),
            f(4, "Re: a", 25),
            f(5, "c", 5),
        ]);
        let mut s = String::new();
        for t in &threads {
            t.encode(&mut s);
        }
        // b's thread starts with 3 (the earliest), then c, then a.
        assert_eq!(s, "(5)(3 1)(2 4)");
    }

    #[test]
    fn ties_keep_mailbox_order_and_reverse_works() {
        let f = |uid, size| SortFields {
            uid,
            size,
            ..SortFields::default()
        };
        let mut v = vec![f(3, 10), f(1, 20), f(2, 10)];
        sort(
            &mut v,
            &[SortCriterion {
                reverse: false,
                key: SortKey::Size,
            }],
        );
        assert_eq!(v.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 3, 1]);
        sort(
            &mut v,
            &[SortCriterion {
                reverse: true,
                key: SortKey::Size,
            }],
        );
        assert_eq!(v.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
    }
}
