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
    /// The subject shows a reply or forward (THREAD=REFERENCES).
    pub reply: bool,
    /// The Message-ID, without `<>` (THREAD=REFERENCES).
    pub message_id: Option<String>,
    /// The message's ancestors, oldest first: the References ids, else
    /// the first In-Reply-To id (RFC 5256 §3, REFERENCES step 1).
    pub parents: Vec<String>,
}

/// At most this many References ids count (a longer chain keeps its
/// last ones: the nearest ancestors).
pub const MAX_REFERENCES: usize = 256;

/// The msg-ids (`<…>`) in a header value, without the brackets; folding
/// whitespace inside one is dropped.
pub fn msg_ids(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = memchr::memchr(b'<', rest) {
        rest = &rest[open + 1..];
        let Some(close) = memchr::memchr2(b'>', b'<', rest) else {
            break;
        };
        if rest[close] == b'<' {
            continue;
        }
        let id: Vec<u8> = rest[..close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if !id.is_empty() {
            out.push(String::from_utf8_lossy(&id).into_owned());
        }
        rest = &rest[close + 1..];
    }
    if out.len() > MAX_REFERENCES {
        out.drain(..out.len() - MAX_REFERENCES);
    }
    out
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
        let (subject, reply) = envelope
            .subject
            .as_ref()
            .map(|s| base_subject_and_reply(&decode_words(s)))
            .unwrap_or_default();
        let first_id = |v: &Option<std::borrow::Cow<'_, [u8]>>| {
            v.as_deref().and_then(|v| msg_ids(v).into_iter().next())
        };
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
            reply,
            message_id: first_id(&envelope.message_id),
            parents: first_id(&envelope.in_reply_to).into_iter().collect(),
        }
    }

    /// Takes the message's References header value (without the name):
    /// when it names any msg-id, those are its ancestors.
    pub fn set_references(&mut self, value: &[u8]) {
        let ids = msg_ids(value);
        if !ids.is_empty() {
            self.parents = ids;
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

/// THREAD=REFERENCES (RFC 5256 §3): threads from Message-ID, References
/// and In-Reply-To; messages whose ancestors are not in the mailbox stand
/// under a placeholder (a thread of `(…)` with no number) only where that
/// joins siblings at the top; threads with the same base subject are
/// merged; siblings ordered by sent date. Numbers are the messages' UIDs.
/// No recursion: a reference chain as long as the mailbox is fine.
pub fn thread_references(mut messages: Vec<SortFields>) -> Vec<crate::response::Thread> {
    use std::collections::HashMap;
    messages.sort_by_key(|m| m.uid);
    #[derive(Default)]
    struct Node {
        msg: Option<usize>,
        parent: Option<usize>,
        children: Vec<usize>,
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    fn node_for<'a>(
        nodes: &mut Vec<Node>,
        ids: &mut HashMap<&'a str, usize>,
        id: &'a str,
    ) -> usize {
        *ids.entry(id).or_insert_with(|| {
            nodes.push(Node::default());
            nodes.len() - 1
        })
    }
    // Whether `a` is `b` or one of its ancestors. A node without children
    // is nobody's ancestor: the common case (a new message replying to an
    // old one) costs nothing, whatever the depth.
    let is_ancestor = |nodes: &[Node], a: usize, mut b: usize| {
        if nodes[a].children.is_empty() {
            return a == b;
        }
        for _ in 0..=nodes.len() {
            if a == b {
                return true;
            }
            match nodes[b].parent {
                Some(p) => b = p,
                None => return false,
            }
        }
        true
    };
    let unlink = |nodes: &mut [Node], child: usize| {
        if let Some(p) = nodes[child].parent.take() {
            nodes[p].children.retain(|c| *c != child);
        }
    };
    // (1) Containers and links.
    for (i, m) in messages.iter().enumerate() {
        let own = match m.message_id.as_deref() {
            Some(id) => {
                let n = node_for(&mut nodes, &mut ids, id);
                if nodes[n].msg.is_none() {
                    n
                } else {
                    // A duplicate Message-ID: a message of its own.
                    nodes.push(Node::default());
                    nodes.len() - 1
                }
            }
            None => {
                nodes.push(Node::default());
                nodes.len() - 1
            }
        };
        nodes[own].msg = Some(i);
        let chain: Vec<usize> = m
            .parents
            .iter()
            .map(|id| node_for(&mut nodes, &mut ids, id))
            .collect();
        for w in chain.windows(2) {
            let (p, c) = (w[0], w[1]);
            if nodes[c].parent.is_none() && !is_ancestor(&nodes, c, p) {
                nodes[c].parent = Some(p);
                nodes[p].children.push(c);
            }
        }
        unlink(&mut nodes, own);
        if let Some(&last) = chain.last()
            && !is_ancestor(&nodes, own, last)
        {
            nodes[own].parent = Some(last);
            nodes[last].children.push(own);
        }
    }
    drop(ids);
    let date = |nodes: &[Node], n: usize| -> (i64, u32) {
        // A placeholder sorts by its first child.
        let n = match nodes[n].msg {
            Some(_) => n,
            None => nodes[n].children.first().copied().unwrap_or(n),
        };
        nodes[n].msg.map_or((i64::MAX, u32::MAX), |i| {
            (messages[i].date, messages[i].uid)
        })
    };
    // (2), (4) The roots, and placeholders pruned bottom-up (children
    // before parents: the order of a depth-first walk, reversed).
    let roots: Vec<usize> = (0..nodes.len())
        .filter(|n| nodes[*n].parent.is_none())
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = roots.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(nodes[n].children.iter().copied());
    }
    for &n in order.iter().rev() {
        let children = std::mem::take(&mut nodes[n].children);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            if nodes[c].msg.is_none() {
                // A placeholder below the top gives way to its children.
                kept.append(&mut nodes[c].children);
            } else {
                kept.push(c);
            }
        }
        nodes[n].children = kept;
    }
    let mut top: Vec<usize> = Vec::new();
    for r in roots {
        match (nodes[r].msg, nodes[r].children.len()) {
            (None, 0) => {}
            (None, 1) => top.push(nodes[r].children[0]),
            _ => top.push(r),
        }
    }
    // (5) The top sorted by date, a placeholder by its earliest child.
    for &t in &top {
        if nodes[t].msg.is_none() {
            let mut c = std::mem::take(&mut nodes[t].children);
            c.sort_by_key(|&x| date(&nodes, x));
            nodes[t].children = c;
        }
    }
    top.sort_by_key(|&t| date(&nodes, t));
    // (6) Threads with the same base subject merged.
    let subject_of = |nodes: &[Node], n: usize| -> Option<(String, bool)> {
        let m = match nodes[n].msg {
            Some(i) => i,
            None => nodes[nodes[n].children.first().copied()?].msg?,
        };
        let s = &messages[m].subject;
        (!s.is_empty()).then(|| (s.clone(), messages[m].reply))
    };
    let mut table: HashMap<String, usize> = HashMap::new();
    for &t in &top {
        let Some((s, reply)) = subject_of(&nodes, t) else {
            continue;
        };
        match table.get(&s).copied() {
            None => {
                table.insert(s, t);
            }
            Some(old) => {
                let old_reply = subject_of(&nodes, old).is_some_and(|x| x.1);
                if nodes[old].msg.is_some() && (nodes[t].msg.is_none() || (old_reply && !reply)) {
                    table.insert(s, t);
                }
            }
        }
    }
    let mut merged: Vec<usize> = Vec::new();
    // Where each node stands in `merged` (a lookup, not a scan, per merge).
    let mut at: HashMap<usize, usize> = HashMap::new();
    let mut gone = vec![false; nodes.len()];
    for &t in &top {
        if gone[t] {
            // Merged into a placeholder already.
            continue;
        }
        let Some((s, reply)) = subject_of(&nodes, t) else {
            at.insert(t, merged.len());
            merged.push(t);
            continue;
        };
        let Some(&other) = table.get(&s) else {
            at.insert(t, merged.len());
            merged.push(t);
            continue;
        };
        if other == t {
            at.insert(t, merged.len());
            merged.push(t);
            continue;
        }
        let other_reply = subject_of(&nodes, other).is_some_and(|x| x.1);
        match (nodes[other].msg.is_none(), nodes[t].msg.is_none()) {
            (true, true) => {
                let mut c = std::mem::take(&mut nodes[t].children);
                nodes[other].children.append(&mut c);
            }
            (true, false) => nodes[other].children.push(t),
            _ if reply && !other_reply => nodes[other].children.push(t),
            _ => {
                // Both under a new placeholder, which takes the table's
                // place (and the place of `other` at the top).
                nodes.push(Node {
                    msg: None,
                    parent: None,
                    children: vec![other, t],
                });
                gone.push(false);
                let d = nodes.len() - 1;
                if let Some(&pos) = at.get(&other) {
                    merged[pos] = d;
                    at.insert(d, pos);
                } else {
                    // `other` comes later at the top: it is replaced there.
                    gone[other] = true;
                    at.insert(d, merged.len());
                    merged.push(d);
                }
                table.insert(s, d);
            }
        }
        gone[t] = true;
    }
    let top = merged;
    // (7) Every set of siblings by date, deepest first (a placeholder by
    // its first child, once its own children are sorted).
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = top.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(nodes[n].children.iter().copied());
    }
    for &n in order.iter().rev() {
        let mut c = std::mem::take(&mut nodes[n].children);
        c.sort_by_key(|&x| date(&nodes, x));
        nodes[n].children = c;
    }
    let mut top = top;
    top.sort_by_key(|&t| date(&nodes, t));
    // Branches nest on the wire: below MAX_THREAD_DEPTH - 2 levels a
    // subtree becomes one chain by date (every message kept; a client's
    // parser, like this crate's, refuses deeper nesting).
    let limit = crate::response::MAX_THREAD_DEPTH - 2;
    let mut level = vec![0usize; nodes.len()];
    let mut flat = vec![false; nodes.len()];
    for &n in &order {
        if flat[n] {
            continue;
        }
        let branches = nodes[n].children.len() >= 2;
        if branches && level[n] >= limit {
            let mut below = Vec::new();
            let mut stack = std::mem::take(&mut nodes[n].children);
            while let Some(c) = stack.pop() {
                stack.append(&mut nodes[c].children);
                flat[c] = true;
                below.push(c);
            }
            below.sort_by_key(|&x| date(&nodes, x));
            let mut parent = n;
            for c in below {
                nodes[parent].children = vec![c];
                parent = c;
            }
            continue;
        }
        let next = level[n] + usize::from(branches);
        for &c in &nodes[n].children {
            level[c] = next;
        }
    }
    // The trees, built bottom-up (the walk again: chains changed it).
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = top.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(nodes[n].children.iter().copied());
    }
    let mut built: Vec<Option<crate::response::Thread>> = (0..nodes.len()).map(|_| None).collect();
    for &n in order.iter().rev() {
        let children = nodes[n]
            .children
            .iter()
            .filter_map(|c| built[*c].take())
            .collect();
        built[n] = Some(crate::response::Thread {
            message: nodes[n].msg.map(|i| messages[i].uid),
            children,
        });
    }
    top.into_iter().filter_map(|t| built[t].take()).collect()
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
    base_subject_and_reply(subject).0
}

/// The base subject, and whether the message is a reply or forward (RFC
/// 5256 §2.1: extraction removed a `Re:`/`Fwd:` leader, a `(fwd)` trailer
/// or a `[fwd: …]` wrapper).
pub fn base_subject_and_reply(subject: &str) -> (String, bool) {
    let mut reply = false;
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
                Some(rest) => {
                    reply = true;
                    s = rest.to_owned()
                }
                None => {
                    s = t.to_owned();
                    break;
                }
            }
        }
        // (3)-(5) Leaders and blobs at the start, until nothing changes.
        loop {
            let before = s.len();
            let (rest, leader) = strip_leader(&s);
            reply |= leader;
            s = rest;
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
            Some(inner) => {
                reply = true;
                s = inner.trim().to_owned()
            }
            None => return (s, reply),
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
/// `subj-refwd = ("RE" / ("FW" ["D"])) *WSP [subj-blob] ":"`; true when a
/// `subj-refwd` went.
fn strip_leader(s: &str) -> (String, bool) {
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
            return (r.trim_start().to_owned(), true);
        }
    }
    (s.to_owned(), false)
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

    fn msg(uid: u32, date: i64, id: &str, refs: &str, subject: &str) -> SortFields {
        let (subject, reply) = base_subject_and_reply(subject);
        let mut f = SortFields {
            uid,
            date,
            subject,
            reply,
            message_id: (!id.is_empty()).then(|| id.to_owned()),
            ..SortFields::default()
        };
        f.set_references(refs.as_bytes());
        f
    }

    fn show(threads: &[crate::response::Thread]) -> String {
        let mut s = String::new();
        for t in threads {
            t.encode(&mut s);
        }
        s
    }

    #[test]
    fn references_threads_as_rfc_5256_says() {
        // A loop (b names c as its parent, c names b) is broken, the
        // later link losing; the roots go by date.
        let t = thread_references(vec![
            msg(1, 300, "a@b", "", "x"),
            msg(2, 100, "b@b", "<a@b> <c@b>", "y"),
            msg(3, 200, "c@b", "<b@b>", "z"),
        ]);
        assert_eq!(show(&t), "(3 2)(1)");
        // Siblings whose parent is missing stand under a placeholder at
        // the top; replies go by date.
        let t = thread_references(vec![
            msg(1, 10, "p@x", "", "root"),
            msg(2, 30, "q@x", "<gone@x>", "one"),
            msg(3, 20, "r@x", "<gone@x>", "two"),
            msg(4, 40, "s@x", "<p@x>", "Re: root"),
        ]);
        assert_eq!(show(&t), "(1 4)((3)(2))");
        // Same base subject, no references: merged, the reply under the
        // original; a duplicate Message-ID is a message of its own.
        let t = thread_references(vec![
            msg(1, 10, "m@x", "", "Lunch"),
            msg(2, 20, "n@x", "", "Re: lunch"),
            msg(3, 30, "m@x", "", "other"),
        ]);
        assert_eq!(show(&t), "(1 2)(3)");
        // Two originals with one subject share a placeholder.
        let t = thread_references(vec![msg(1, 10, "", "", "Same"), msg(2, 20, "", "", "same")]);
        assert_eq!(show(&t), "((1)(2))");
        // Many subjects with two originals each: each pair under its own
        // placeholder (merged by a lookup per pair, not a scan).
        let pairs: Vec<SortFields> = (0..20_000u32)
            .map(|i| {
                msg(
                    i + 1,
                    i64::from(i),
                    "",
                    "",
                    &format!("topic {}", i % 10_000),
                )
            })
            .collect();
        let t = thread_references(pairs);
        assert_eq!(t.len(), 10_000);
        assert!(
            t.iter()
                .all(|x| x.message.is_none() && x.children.len() == 2)
        );
        // In-Reply-To counts when there are no References.
        let mut r = msg(2, 20, "k@x", "", "b");
        r.parents = vec!["j@x".into()];
        assert_eq!(
            show(&thread_references(vec![msg(1, 10, "j@x", "", "a"), r])),
            "(1 2)"
        );
    }

    #[test]
    fn a_reference_chain_as_long_as_the_mailbox_needs_no_recursion() {
        let n = 20_000u32;
        let msgs: Vec<SortFields> = (1..=n)
            .map(|i| {
                let refs = if i > 1 {
                    format!("<{}@x>", i - 1)
                } else {
                    String::new()
                };
                msg(i, i64::from(i), &format!("{i}@x"), &refs, "s")
            })
            .collect();
        let t = thread_references(msgs);
        assert_eq!(t.len(), 1);
        let (mut depth, mut node) = (1, &t[0]);
        while let Some(c) = node.children.first() {
            depth += 1;
            node = c;
        }
        assert_eq!(depth, n);
        let mut wire = String::new();
        t[0].encode(&mut wire);
        assert_eq!(wire.matches('(').count(), 1, "a chain is one list");
        // Dropping a 20,000-deep tree must not overflow either.
        drop(t);
        // Every message with two replies, one of which goes on: branches
        // nest only so deep, and every message is still there.
        let mut msgs = vec![msg(1, 1, "1@x", "", "s")];
        for i in 1..=5_000u32 {
            let parent = if i == 1 { 1 } else { 2 * i - 2 };
            msgs.push(msg(
                2 * i,
                i64::from(2 * i),
                &format!("{}@x", 2 * i),
                &format!("<{parent}@x>"),
                "s",
            ));
            msgs.push(msg(
                2 * i + 1,
                i64::from(2 * i + 1),
                &format!("{}@x", 2 * i + 1),
                &format!("<{parent}@x>"),
                "s",
            ));
        }
        let t = thread_references(msgs);
        let mut wire = String::new();
        for x in &t {
            x.encode(&mut wire);
        }
        let (mut deepest, mut d) = (0, 0i32);
        for c in wire.chars() {
            match c {
                '(' => {
                    d += 1;
                    deepest = deepest.max(d);
                }
                ')' => d -= 1,
                _ => {}
            }
        }
        assert!(
            deepest <= crate::response::MAX_THREAD_DEPTH as i32,
            "{deepest}"
        );
        let line = format!("* THREAD {wire}\r\n");
        let parsed = crate::Response::parse(line.as_bytes(), false);
        assert!(parsed.is_ok(), "{parsed:?}");
        let numbers = wire
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .count();
        assert_eq!(numbers, 10_001);
    }

    #[test]
    fn msg_ids_are_read_leniently_and_bounded() {
        assert_eq!(
            msg_ids(b"<a@b>\r\n <c\r\n @d> junk <> <<e@f>"),
            vec!["a@b", "c@d", "e@f"]
        );
        let many: String = (0..1000).map(|i| format!("<{i}@x> ")).collect();
        let ids = msg_ids(many.as_bytes());
        assert_eq!(ids.len(), MAX_REFERENCES);
        assert_eq!(ids.last().map(String::as_str), Some("999@x"));
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
