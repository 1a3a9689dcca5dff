//! SEARCH evaluation: whether a message matches a command's keys
//! (RFC 3501 §6.4.4, RFC 9051 §6.4.4).
//!
//! Strings match as case-insensitive substrings (ASCII and UTF-8 simple
//! case folding); header keys look at the unfolded field values; BODY at the
//! text after the header, TEXT at the whole message. Dates compare by day
//! (UTC); SENT* keys use the `Date:` field. Nesting is bounded by the parser
//! ([`crate::MAX_SEARCH_DEPTH`]).
//!
//! ```
//! use imap_proto::search::{SearchMessage, matches, needs_message};
//! use imap_proto::{Command, CommandBody, Flag};
//!
//! struct M;
//! impl SearchMessage for M {
//!     fn seq(&self) -> u32 { 1 }
//!     fn uid(&self) -> u32 { 10 }
//!     fn flags(&self) -> &[Flag] { &[Flag::Seen] }
//!     fn internal_date(&self) -> i64 { 0 }
//!     fn size(&self) -> u64 { 40 }
//!     fn modseq(&self) -> u64 { 1 }
//!     fn message(&self) -> Option<&[u8]> { Some(b"Subject: Lunch plans\r\n\r\nnoon?\r\n") }
//! }
//! let cmd = Command::parse(b"a SEARCH SEEN SUBJECT lunch NOT BODY midnight\r\n", false).unwrap();
//! let CommandBody::Search { keys, .. } = cmd.body else { unreachable!() };
//! assert!(needs_message(&keys));
//! assert!(matches(&keys, &M, 1, 10));
//! ```

use crate::{Flag, SearchKey};

/// What SEARCH needs to know of a message.
pub trait SearchMessage {
    /// Its sequence number.
    fn seq(&self) -> u32;
    /// Its UID.
    fn uid(&self) -> u32;
    /// Its flags and keywords.
    fn flags(&self) -> &[Flag];
    /// Internal date, seconds since the Unix epoch.
    fn internal_date(&self) -> i64;
    /// RFC822.SIZE.
    fn size(&self) -> u64;
    /// MODSEQ.
    fn modseq(&self) -> u64;
    /// The message bytes, when a key needs them ([`needs_message`]);
    /// `None` makes such keys fail.
    fn message(&self) -> Option<&[u8]>;
}

/// Whether any key looks into the message bytes (header, body, sent date),
/// so the caller can skip reading messages for flag-only searches.
pub fn needs_message(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::Text(..) | SearchKey::Header(..) => true,
        SearchKey::Date(name, _) => name.starts_with("SENT"),
        SearchKey::Not(k) => needs_message(std::slice::from_ref(k)),
        SearchKey::Or(a, b) => {
            needs_message(std::slice::from_ref(a)) || needs_message(std::slice::from_ref(b))
        }
        SearchKey::And(ks) => needs_message(ks),
        _ => false,
    })
}

/// Whether any key needs more of the message than its ENVELOPE fields
/// (TEXT, BODY, or an arbitrary HEADER): when not, a caller that keeps
/// ENVELOPEs can answer from [`envelope_header`] without reading messages.
pub fn needs_full_message(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::Text(name, _) => matches!(*name, "TEXT" | "BODY"),
        SearchKey::Header(..) => true,
        SearchKey::Not(k) => needs_full_message(std::slice::from_ref(k)),
        SearchKey::Or(a, b) => {
            needs_full_message(std::slice::from_ref(a))
                || needs_full_message(std::slice::from_ref(b))
        }
        SearchKey::And(ks) => needs_full_message(ks),
        _ => false,
    })
}

/// A header block with the fields of an ENVELOPE (Date, Subject, From,
/// Sender, Reply-To, To, Cc, Bcc), enough for the FROM, TO, CC, BCC,
/// SUBJECT and SENT* keys.
pub fn envelope_header(e: &crate::Envelope<'_>) -> Vec<u8> {
    fn addresses(out: &mut Vec<u8>, name: &str, list: &[crate::Address<'_>]) {
        if list.is_empty() {
            return;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let mut first = true;
        for a in list {
            match (&a.mailbox, &a.host) {
                // Group start and end markers.
                (Some(g), None) => {
                    out.extend_from_slice(g);
                    out.extend_from_slice(b": ");
                    first = true;
                    continue;
                }
                (None, None) => {
                    out.push(b';');
                    continue;
                }
                _ => {}
            }
            if !first {
                out.extend_from_slice(b", ");
            }
            first = false;
            if let Some(n) = &a.name {
                out.push(b'"');
                out.extend_from_slice(n);
                out.extend_from_slice(b"\" ");
            }
            out.push(b'<');
            if let Some(m) = &a.mailbox {
                out.extend_from_slice(m);
            }
            if let Some(h) = &a.host {
                out.push(b'@');
                out.extend_from_slice(h);
            }
            out.push(b'>');
        }
        out.extend_from_slice(b"\r\n");
    }
    let mut out = Vec::new();
    for (name, v) in [("Date", &e.date), ("Subject", &e.subject)] {
        if let Some(v) = v {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    addresses(&mut out, "From", &e.from);
    addresses(&mut out, "Sender", &e.sender);
    addresses(&mut out, "Reply-To", &e.reply_to);
    addresses(&mut out, "To", &e.to);
    addresses(&mut out, "Cc", &e.cc);
    addresses(&mut out, "Bcc", &e.bcc);
    out.extend_from_slice(b"\r\n");
    out
}

/// Whether `m` matches every key. `largest_seq` and `largest_uid` give `*`
/// its value.
pub fn matches(
    keys: &[SearchKey<'_>],
    m: &impl SearchMessage,
    largest_seq: u32,
    largest_uid: u32,
) -> bool {
    keys.iter().all(|k| key(k, m, largest_seq, largest_uid))
}

/// `\Recent` is given as `Flag::Extension("Recent")`.
fn recent(m: &impl SearchMessage) -> bool {
    m.flags()
        .iter()
        .any(|f| matches!(f, Flag::Extension(x) if x.eq_ignore_ascii_case("Recent")))
}

fn key(k: &SearchKey<'_>, m: &impl SearchMessage, ls: u32, lu: u32) -> bool {
    let has = |f: Flag| m.flags().contains(&f);
    match k {
        SearchKey::All => true,
        SearchKey::Flag(name) => match *name {
            "ANSWERED" => has(Flag::Answered),
            "DELETED" => has(Flag::Deleted),
            "DRAFT" => has(Flag::Draft),
            "FLAGGED" => has(Flag::Flagged),
            "SEEN" => has(Flag::Seen),
            "UNANSWERED" => !has(Flag::Answered),
            "UNDELETED" => !has(Flag::Deleted),
            "UNDRAFT" => !has(Flag::Draft),
            "UNFLAGGED" => !has(Flag::Flagged),
            "UNSEEN" => !has(Flag::Seen),
            "RECENT" => recent(m),
            "NEW" => recent(m) && !has(Flag::Seen),
            "OLD" => !recent(m),
            "ALL" => true,
            _ => false,
        },
        SearchKey::Keyword(kw) => m
            .flags()
            .iter()
            .any(|f| matches!(f, Flag::Keyword(k) if k.eq_ignore_ascii_case(kw))),
        SearchKey::Unkeyword(kw) => !m
            .flags()
            .iter()
            .any(|f| matches!(f, Flag::Keyword(k) if k.eq_ignore_ascii_case(kw))),
        SearchKey::Larger(n) => m.size() > u64::from(*n),
        SearchKey::Smaller(n) => m.size() < u64::from(*n),
        SearchKey::Uid(set) => set.contains(m.uid(), lu),
        SearchKey::Seq(set) => set.contains(m.seq(), ls),
        SearchKey::ModSeq(n) => m.modseq() >= *n,
        SearchKey::Not(k) => !key(k, m, ls, lu),
        SearchKey::Or(a, b) => key(a, m, ls, lu) || key(b, m, ls, lu),
        SearchKey::And(ks) => ks.iter().all(|k| key(k, m, ls, lu)),
        SearchKey::Date(name, date) => {
            let Some(want) = day_of(date) else {
                return false;
            };
            let have = if name.starts_with("SENT") {
                let Some(d) = m.message().and_then(sent_date) else {
                    return false;
                };
                d
            } else {
                m.internal_date().div_euclid(86_400)
            };
            match name.trim_start_matches("SENT") {
                "BEFORE" => have < want,
                "ON" => have == want,
                "SINCE" => have >= want,
                _ => false,
            }
        }
        SearchKey::Text(name, needle) => {
            let Some(msg) = m.message() else {
                return false;
            };
            let (hend, bstart) = header_end(msg);
            match *name {
                "TEXT" => contains(msg, needle),
                "BODY" => contains(&msg[bstart..], needle),
                field => {
                    let h = &msg[..hend];
                    header_values(h, field).iter().any(|v| contains(v, needle))
                        || address_values(h, field).iter().any(|v| contains(v, needle))
                }
            }
        }
        SearchKey::Header(field, needle) => {
            let Some(msg) = m.message() else {
                return false;
            };
            let (hend, _) = header_end(msg);
            header_values(&msg[..hend], field)
                .iter()
                .any(|v| needle.is_empty() || contains(v, needle))
        }
    }
}

/// `d-Mon-yyyy` as days since the epoch.
fn day_of(date: &str) -> Option<i64> {
    let mut it = date.split('-');
    let d: i64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let y: i64 = it.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(mon))? as i64 + 1;
    Some(days_from_civil(y, m, d))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn sent_date(msg: &[u8]) -> Option<i64> {
    let (hend, _) = header_end(msg);
    let v = header_values(&msg[..hend], "date").into_iter().next()?;
    let d = mail_parser::DateTime::parse_rfc822(&String::from_utf8_lossy(&v))?;
    // The date as written in its own zone (RFC 3501: disregarding time
    // and timezone).
    Some(days_from_civil(
        i64::from(d.year),
        i64::from(d.month),
        i64::from(d.day),
    ))
}

fn header_end(msg: &[u8]) -> (usize, usize) {
    if let Some(p) = memchr::memmem::find(msg, b"\r\n\r\n") {
        let lf = memchr::memmem::find(msg, b"\n\n");
        match lf {
            Some(q) if q + 1 < p => (q + 2, q + 2),
            _ => (p + 4, p + 4),
        }
    } else if let Some(q) = memchr::memmem::find(msg, b"\n\n") {
        (q + 2, q + 2)
    } else {
        (msg.len(), msg.len())
    }
}

/// Unfolded values of the fields called `name`.
fn header_values(h: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < h.len() {
        let lf = memchr::memchr(b'\n', &h[i..]).map_or(h.len(), |p| i + p + 1);
        if !matches!(h.get(lf), Some(b' ' | b'\t')) {
            let f = &h[start..lf];
            if let Some(colon) = memchr::memchr(b':', f)
                && f[..colon]
                    .trim_ascii()
                    .eq_ignore_ascii_case(name.as_bytes())
            {
                // Unfolded, and each run of white space one space: a
                // folded "the\r\n  Meeting" matches "the meeting".
                let mut v: Vec<u8> = Vec::new();
                for &c in &f[colon + 1..] {
                    if c == b'\r' || c == b'\n' {
                        continue;
                    }
                    let ws = c == b' ' || c == b'\t';
                    if ws && v.last() == Some(&b' ') {
                        continue;
                    }
                    v.push(if ws { b' ' } else { c });
                }
                out.push(v.trim_ascii().to_vec());
            }
            start = lf;
        }
        i = lf;
    }
    out
}

/// The addresses of an address field as `local@domain` and `name`, with
/// comments and white space gone (`<a (x)@ (y) b.org>` is `a@b.org`).
fn address_values(h: &[u8], field: &str) -> Vec<Vec<u8>> {
    let Some(m) = mail_parser::MessageParser::default().parse_headers(h) else {
        return Vec::new();
    };
    let a = match field {
        "FROM" => m.from(),
        "TO" => m.to(),
        "CC" => m.cc(),
        "BCC" => m.bcc(),
        _ => None,
    };
    let mut out = Vec::new();
    let mut add = |x: &mail_parser::Addr<'_>| {
        if let Some(addr) = x.address.as_deref() {
            out.push(addr.as_bytes().to_vec());
        }
        if let Some(n) = x.name.as_deref() {
            out.push(n.as_bytes().to_vec());
        }
    };
    match a {
        Some(mail_parser::Address::List(l)) => l.iter().for_each(&mut add),
        Some(mail_parser::Address::Group(g)) => {
            g.iter().flat_map(|g| g.addresses.iter()).for_each(&mut add)
        }
        None => {}
    }
    out
}

/// Case-insensitive substring.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let n = needle.to_ascii_lowercase();
        let finder = memchr::memmem::Finder::new(&n);
        // Fold in blocks to avoid one copy of a large message at once.
        let h = hay.to_ascii_lowercase();
        return finder.find(&h).is_some();
    }
    let h = String::from_utf8_lossy(hay).to_lowercase();
    let n = String::from_utf8_lossy(needle).to_lowercase();
    h.contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, CommandBody};

    struct M {
        seq: u32,
        uid: u32,
        flags: Vec<Flag>,
        date: i64,
        msg: &'static [u8],
    }

    impl SearchMessage for M {
        fn seq(&self) -> u32 {
            self.seq
        }
        fn uid(&self) -> u32 {
            self.uid
        }
        fn flags(&self) -> &[Flag] {
            &self.flags
        }
        fn internal_date(&self) -> i64 {
            self.date
        }
        fn size(&self) -> u64 {
            self.msg.len() as u64
        }
        fn modseq(&self) -> u64 {
            5
        }
        fn message(&self) -> Option<&[u8]> {
            Some(self.msg)
        }
    }

    fn keys(s: &str) -> Vec<SearchKey<'static>> {
        let line = format!("a SEARCH {s}\r\n");
        let cmd = Command::parse(line.as_bytes(), true).unwrap().into_owned();
        match cmd.body {
            CommandBody::Search { keys, .. } => keys,
            _ => unreachable!(),
        }
    }

    const MSG: &[u8] = b"From: Alice <alice@example.org>\r\nSubject: Re: the\r\n  Meeting\r\nDate: Tue, 1 Feb 1994 23:30:00 -0800\r\nX-Tag: \r\n\r\nSee you at n\xc3\x96\xc3\xb6n.\r\n";

    fn m() -> M {
        M {
            seq: 2,
            uid: 20,
            flags: vec![Flag::Seen, Flag::Keyword("$Work".into())],
            // 1994-02-02 12:00 UTC
            date: 760_190_400,
            msg: MSG,
        }
    }

    #[test]
    fn every_kind_of_key_matches_as_the_rfc_says() {
        let yes = [
            "ALL",
            "SEEN",
            "UNANSWERED",
            "OLD",
            "KEYWORD $work",
            "UNKEYWORD other",
            "FROM alice",
            "FROM EXAMPLE.ORG",
            "SUBJECT \"the meeting\"",
            "HEADER x-tag \"\"",
            "BODY \"see you\"",
            "TEXT subject",
            "LARGER 10",
            "SMALLER 1000",
            "UID 20",
            "UID 1:*",
            "2",
            "*",
            "NOT DELETED",
            "OR DELETED SEEN",
            "(SEEN UNFLAGGED) OR SEEN DELETED",
            "SENTON 1-Feb-1994",
            "SENTBEFORE 2-Feb-1994",
            "ON 2-Feb-1994",
            "SINCE 1-Feb-1994",
            "BEFORE 3-Feb-1994",
            "MODSEQ 5",
            "BODY \"nöön\"",
            "NOT NEW",
        ];
        for k in yes {
            assert!(matches(&keys(k), &m(), 2, 20), "{k} should match");
        }
        let no = [
            "DELETED",
            "UNSEEN",
            "NEW",
            "RECENT",
            "KEYWORD other",
            "FROM bob",
            "HEADER x-other \"\"",
            "BODY subject",
            "LARGER 1000",
            "UID 1:19",
            "1",
            "NOT SEEN",
            "SENTSINCE 2-Feb-1994",
            "ON 1-Feb-1994",
            "BEFORE 2-Feb-1994",
            "MODSEQ 6",
        ];
        for k in no {
            assert!(!matches(&keys(k), &m(), 2, 20), "{k} should not match");
        }
    }

    #[test]
    fn only_content_keys_need_the_message() {
        assert!(!needs_message(&keys("SEEN UID 1:* OR DELETED LARGER 5")));
        assert!(needs_message(&keys("NOT OR SEEN SUBJECT x")));
        assert!(needs_message(&keys("SENTON 1-Feb-1994")));
        assert!(!needs_message(&keys("ON 1-Feb-1994")));
    }

    #[test]
    fn envelope_keys_match_the_same_on_the_envelope_header() {
        let env = crate::mime::Structure::envelope(MSG);
        let header: &'static [u8] = Box::leak(envelope_header(&env).into_boxed_slice());
        let from_env = M { msg: header, ..m() };
        for k in [
            "FROM alice",
            "FROM alice@example.org",
            "FROM bob",
            "SUBJECT meeting",
            "SUBJECT \"re: the\"",
            "SENTON 1-Feb-1994",
            "SENTSINCE 2-Feb-1994",
            "TO nobody",
            "OR FROM alice TO x",
        ] {
            let keys = keys(k);
            assert!(!needs_full_message(&keys), "{k}");
            assert_eq!(
                matches(&keys, &m(), 2, 20),
                matches(&keys, &from_env, 2, 20),
                "{k}"
            );
        }
        for k in ["BODY x", "TEXT x", "HEADER X-Tag \"\"", "NOT BODY x"] {
            assert!(needs_full_message(&keys(k)), "{k}");
        }
    }

    #[test]
    fn civil_days_are_right() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(day_of("29-Feb-2024"), Some(days_from_civil(2024, 2, 29)));
    }
}
