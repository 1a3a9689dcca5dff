//! What a server needs from a stored message to answer FETCH: its MIME
//! structure ([`Structure`]), `BODYSTRUCTURE` and `ENVELOPE` built from it,
//! and the bytes of a `BODY[section]`.
//!
//! The walk is iterative (no recursion on a depth the sender controls) and
//! bounded ([`Limits`]: 100 levels and 10,000 parts by default); past a
//! limit, a part is described as a basic part. A `message/rfc822` part whose
//! transfer encoding is base64 or quoted-printable is not read as a message
//! either (its bytes are not one until decoded); such a part, like one past
//! the limit, keeps its type with an empty envelope and body, as the
//! grammar requires of a `message/rfc822` part. Addresses in ENVELOPE are parsed
//! with `mail-parser`; everything else is read straight from the bytes.
//!
//! ```
//! use imap_proto::mime::Structure;
//! use imap_proto::{Section, SectionText};
//!
//! let msg = b"Subject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
//!             --b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n";
//! let s = Structure::parse(msg);
//! let part2 = Section { part: vec![2], text: SectionText::Full, partial: None };
//! assert_eq!(&*s.section(msg, &part2).unwrap(), b"<p>two</p>");
//! let env = Structure::envelope(msg);
//! assert_eq!(env.subject.as_deref(), Some(&b"hi"[..]));
//! ```

use std::borrow::Cow;
use std::ops::Range;

use crate::{
    Address, BodyFields, BodyStructure, Envelope, Extension, PartKind, Section, SectionText,
};

/// Bounds on the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Deepest nesting described. Default 100.
    pub max_depth: usize,
    /// Most parts described. Default 10,000.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 100,
            max_parts: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Single,
    Multi(Vec<usize>),
    /// An encapsulated message: the index of its root part.
    Message(usize),
}

/// One MIME part.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    /// The header block, blank line included.
    header: Range<usize>,
    body: Range<usize>,
    media_type: String,
    subtype: String,
    params: Vec<(String, String)>,
    /// Content-Transfer-Encoding, lower-cased (empty when absent).
    encoding: String,
    shape: Shape,
}

/// A message's MIME structure: offsets into its bytes, no copies of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    parts: Vec<Part>,
}

/// The header block's end (after the blank line) and the body's start.
fn split_header(b: &[u8]) -> (usize, usize) {
    if b.starts_with(b"\r\n") {
        return (2, 2);
    }
    if b.starts_with(b"\n") {
        return (1, 1);
    }
    let mut i = 0;
    while let Some(lf) = memchr::memchr(b'\n', &b[i..]) {
        let at = i + lf + 1;
        if b[at..].starts_with(b"\r\n") {
            return (at + 2, at + 2);
        }
        if b[at..].starts_with(b"\n") {
            return (at + 1, at + 1);
        }
        i = at;
    }
    (b.len(), b.len())
}

/// The header fields of a block: (name, raw value with folding).
fn fields(h: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out: Vec<(&[u8], &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < h.len() {
        let lf = memchr::memchr(b'\n', &h[i..]).map_or(h.len(), |p| i + p + 1);
        // A field ends where the next line does not start with WSP.
        if !matches!(h.get(lf), Some(b' ' | b'\t')) {
            let f = &h[start..lf];
            if let Some(colon) = memchr::memchr(b':', f) {
                let name = trim(&f[..colon]);
                if !name.is_empty() {
                    out.push((name, &f[colon + 1..]));
                }
            }
            start = lf;
        }
        i = lf;
    }
    out
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e.max(s)]
}

/// A value unfolded (line ends removed) and trimmed.
fn unfold(v: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&c| c != b'\r' && c != b'\n')
        .collect();
    trim(&v).to_vec()
}

fn field<'a>(h: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(h)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

/// `type/subtype; k=v; k="v"` → lower-cased type and subtype, parameters.
fn content_type(v: &[u8]) -> (String, String, Vec<(String, String)>) {
    let v = String::from_utf8_lossy(&unfold(v)).into_owned();
    let mut parts = split_params(&v);
    let first = parts.remove(0);
    let (t, s) = match first.split_once('/') {
        Some((t, s)) if !t.trim().is_empty() && !s.trim().is_empty() => {
            (t.trim().to_ascii_lowercase(), s.trim().to_ascii_lowercase())
        }
        _ => (String::new(), String::new()),
    };
    let params = parts
        .into_iter()
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .map_or_else(
                    || v.to_owned(),
                    |x| x.replace("\\\"", "\"").replace("\\\\", "\\"),
                );
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect();
    (t, s, params)
}

/// Splits at `;` outside quotes.
fn split_params(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in v.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// The parts of a multipart body: ranges between `--boundary` lines.
fn split_multipart(body: &[u8], boundary: &[u8], max: usize) -> Vec<Range<usize>> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i <= body.len() && out.len() < max {
        let line_end = memchr::memchr(b'\n', &body[i..]).map_or(body.len(), |p| i + p + 1);
        let line = &body[i..line_end];
        if line.starts_with(&delim) {
            let rest = trim(&line[delim.len()..]);
            let close = rest.starts_with(b"--");
            if rest.is_empty() || close {
                if let Some(s) = start {
                    // The CRLF before the delimiter belongs to it.
                    let mut e = i;
                    if e > s && body[e - 1] == b'\n' {
                        e -= 1;
                        if e > s && body[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    out.push(s..e.max(s));
                }
                if close {
                    return out;
                }
                start = Some(line_end);
            }
        }
        if line_end >= body.len() {
            break;
        }
        i = line_end;
    }
    if let Some(s) = start
        && out.len() < max
    {
        out.push(s..body.len());
    }
    out
}

impl Structure {
    /// The structure of `msg`, with the default [`Limits`].
    pub fn parse(msg: &[u8]) -> Structure {
        Structure::parse_with(msg, Limits::default())
    }

    /// The structure of `msg` within `limits`.
    pub fn parse_with(msg: &[u8], limits: Limits) -> Structure {
        let mut parts: Vec<Part> = Vec::new();
        // (part index, byte range, depth, parent is multipart/digest)
        let mut work: Vec<(usize, Range<usize>, usize, bool)> = Vec::new();
        parts.push(Part::placeholder());
        work.push((0, 0..msg.len(), 0, false));
        while let Some((idx, range, depth, digest)) = work.pop() {
            let bytes = &msg[range.clone()];
            let (hend, bstart) = split_header(bytes);
            let header = &bytes[..hend];
            let (mut t, mut s, params) = match field(header, "content-type") {
                Some(v) => content_type(v),
                None => (String::new(), String::new(), Vec::new()),
            };
            if t.is_empty() {
                (t, s) = if digest {
                    ("message".into(), "rfc822".into())
                } else {
                    ("text".into(), "plain".into())
                };
            }
            let encoding = field(header, "content-transfer-encoding")
                .map(|v| String::from_utf8_lossy(&unfold(v)).to_ascii_lowercase())
                .unwrap_or_default();
            let body = range.start + bstart..range.end;
            let room = parts.len() < limits.max_parts && depth < limits.max_depth;
            let mut shape = Shape::Single;
            if t == "multipart" && room {
                let boundary = params.iter().find(|(k, _)| k == "boundary").map(|(_, v)| v);
                if let Some(b) = boundary.filter(|b| !b.is_empty()) {
                    let children = split_multipart(
                        &msg[body.clone()],
                        b.as_bytes(),
                        limits.max_parts.saturating_sub(parts.len()),
                    );
                    let mut ids = Vec::new();
                    for c in children {
                        let id = parts.len();
                        parts.push(Part::placeholder());
                        ids.push(id);
                        work.push((
                            id,
                            body.start + c.start..body.start + c.end,
                            depth + 1,
                            s == "digest",
                        ));
                    }
                    shape = Shape::Multi(ids);
                }
            } else if t == "message"
                && (s == "rfc822" || s == "global")
                && room
                && !matches!(encoding.as_str(), "base64" | "quoted-printable")
            {
                let id = parts.len();
                parts.push(Part::placeholder());
                work.push((id, body.clone(), depth + 1, false));
                shape = Shape::Message(id);
            }
            parts[idx] = Part {
                header: range.start..range.start + hend,
                body,
                media_type: t,
                subtype: s,
                params,
                encoding,
                shape,
            };
        }
        Structure { parts }
    }

    fn part(&self, i: usize) -> &Part {
        &self.parts[i]
    }

    /// The part a section's numbers name, from the message root.
    fn resolve(&self, path: &[u32]) -> Option<usize> {
        let mut cur = 0usize;
        // Whether `cur` is a message (whose numbering is of its body).
        let mut in_message = true;
        for &n in path {
            let n = usize::try_from(n).ok()?.checked_sub(1)?;
            let p = self.part(cur);
            if in_message {
                match &p.shape {
                    Shape::Multi(kids) => cur = *kids.get(n)?,
                    _ if n == 0 => {}
                    _ => return None,
                }
            } else {
                match &p.shape {
                    Shape::Multi(kids) => cur = *kids.get(n)?,
                    Shape::Message(inner) => {
                        let inner = *inner;
                        match &self.part(inner).shape {
                            Shape::Multi(kids) => cur = *kids.get(n)?,
                            _ if n == 0 => cur = inner,
                            _ => return None,
                        }
                    }
                    Shape::Single => return None,
                }
            }
            in_message = false;
        }
        Some(cur)
    }

    /// The bytes of `BODY[section]` (partial applied), or `None` when the
    /// section names no part.
    pub fn section<'m>(&self, msg: &'m [u8], section: &Section<'_>) -> Option<Cow<'m, [u8]>> {
        let whole: Cow<'m, [u8]> = if section.part.is_empty() {
            let root = self.part(0);
            match &section.text {
                SectionText::Full => Cow::Borrowed(msg),
                SectionText::Header => Cow::Borrowed(&msg[root.header.clone()]),
                SectionText::Text => Cow::Borrowed(&msg[root.body.clone()]),
                SectionText::HeaderFields(names) => {
                    Cow::Owned(header_fields(&msg[root.header.clone()], names, false))
                }
                SectionText::HeaderFieldsNot(names) => {
                    Cow::Owned(header_fields(&msg[root.header.clone()], names, true))
                }
                SectionText::Mime => return None,
            }
        } else {
            let idx = self.resolve(&section.part)?;
            let p = self.part(idx);
            // HEADER/TEXT of a part are those of the message it carries.
            let inner = match p.shape {
                Shape::Message(i) => Some(self.part(i)),
                _ => None,
            };
            match &section.text {
                SectionText::Full => Cow::Borrowed(&msg[p.body.clone()]),
                SectionText::Mime => Cow::Borrowed(&msg[p.header.clone()]),
                SectionText::Header => Cow::Borrowed(&msg[inner?.header.clone()]),
                SectionText::Text => Cow::Borrowed(&msg[inner?.body.clone()]),
                SectionText::HeaderFields(names) => {
                    Cow::Owned(header_fields(&msg[inner?.header.clone()], names, false))
                }
                SectionText::HeaderFieldsNot(names) => {
                    Cow::Owned(header_fields(&msg[inner?.header.clone()], names, true))
                }
            }
        };
        Some(match section.partial {
            None => whole,
            Some((origin, count)) => {
                let start = (origin as usize).min(whole.len());
                let end = start.saturating_add(count as usize).min(whole.len());
                match whole {
                    Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
                    Cow::Owned(v) => Cow::Owned(v[start..end].to_vec()),
                }
            }
        })
    }

    /// The bytes of `BINARY[part]` (RFC 3516): the part's body with its
    /// content transfer encoding undone (the whole message, as it is, for
    /// no part); `Ok(None)` when the numbers name no part.
    pub fn binary<'m>(
        &self,
        msg: &'m [u8],
        part: &[u32],
    ) -> Result<Option<Cow<'m, [u8]>>, UnknownCte> {
        if part.is_empty() {
            return Ok(Some(Cow::Borrowed(msg)));
        }
        let Some(idx) = self.resolve(part) else {
            return Ok(None);
        };
        let p = self.part(idx);
        let body = &msg[p.body.clone()];
        Ok(Some(match p.encoding.as_str() {
            "" | "7bit" | "8bit" | "binary" => Cow::Borrowed(body),
            "base64" => {
                Cow::Owned(base64_decode(body).ok_or_else(|| UnknownCte("base64 (broken)".into()))?)
            }
            "quoted-printable" => Cow::Owned(qp_decode(body)),
            other => return Err(UnknownCte(other.to_owned())),
        }))
    }

    /// `BODYSTRUCTURE` (`extensible`) or `BODY` of the message.
    pub fn body_structure(&self, msg: &[u8], extensible: bool) -> BodyStructure<'static> {
        // Children have higher indices than their parents: build from the
        // end, each part taking its children's finished values.
        let mut built: Vec<Option<BodyStructure<'static>>> = vec![None; self.parts.len()];
        for i in (0..self.parts.len()).rev() {
            let p = &self.parts[i];
            let header = &msg[p.header.clone()];
            let ext = if extensible {
                extension(header)
            } else {
                Extension::default()
            };
            let b = match &p.shape {
                Shape::Multi(kids) if !kids.is_empty() => BodyStructure::Multi {
                    parts: kids.iter().filter_map(|k| built[*k].take()).collect(),
                    subtype: p.subtype.clone().into_bytes().into(),
                    params: extensible.then(|| params_of(&p.params)),
                    ext,
                },
                shape => {
                    let body = &msg[p.body.clone()];
                    let lines =
                        u32::try_from(memchr::memchr_iter(b'\n', body).count()).unwrap_or(u32::MAX);
                    let kind = match shape {
                        Shape::Message(inner) => PartKind::Message {
                            envelope: Box::new(Structure::envelope(
                                &msg[self.parts[*inner].header.clone()],
                            )),
                            body: Box::new(
                                built[*inner]
                                    .take()
                                    .unwrap_or_else(|| basic(b"text", b"plain", Vec::new(), 0)),
                            ),
                            lines,
                        },
                        // A multipart without parts is described as
                        // text/plain, with its lines like any text.
                        Shape::Multi(_) => PartKind::Text { lines },
                        // A message part not read as one (encoded, or past
                        // the depth limit) keeps its type, so it needs the
                        // message fields the grammar requires for it: an
                        // empty envelope and an empty body.
                        _ if p.media_type == "message"
                            && (p.subtype == "rfc822" || p.subtype == "global") =>
                        {
                            PartKind::Message {
                                envelope: Box::default(),
                                body: Box::new(basic(b"text", b"plain", Vec::new(), 0)),
                                lines,
                            }
                        }
                        _ if p.media_type == "text" => PartKind::Text { lines },
                        _ => PartKind::Basic,
                    };
                    let mut params = params_of(&p.params);
                    if p.media_type == "text" && !p.params.iter().any(|(k, _)| k == "charset") {
                        params.push((b"charset"[..].into(), b"us-ascii"[..].into()));
                    }
                    let (mt, st) = if matches!(shape, Shape::Multi(_)) {
                        // A multipart without parts: described as text.
                        ("text".to_owned(), "plain".to_owned())
                    } else {
                        (p.media_type.clone(), p.subtype.clone())
                    };
                    let opt = |name: &str| field(header, name).map(|v| Cow::Owned(unfold(v)));
                    BodyStructure::Single {
                        media_type: mt.into_bytes().into(),
                        subtype: st.into_bytes().into(),
                        fields: BodyFields {
                            params,
                            id: opt("content-id"),
                            description: opt("content-description"),
                            encoding: opt("content-transfer-encoding")
                                .map(|v| Cow::Owned(v.to_ascii_uppercase()))
                                .unwrap_or(Cow::Borrowed(b"7BIT")),
                            octets: u32::try_from(body.len()).unwrap_or(u32::MAX),
                        },
                        kind,
                        md5: extensible.then(|| opt("content-md5")),
                        ext,
                    }
                }
            };
            built[i] = Some(b);
        }
        built[0]
            .take()
            .unwrap_or_else(|| basic(b"text", b"plain", Vec::new(), 0))
    }

    /// `ENVELOPE` from a message's header block (or the whole message).
    pub fn envelope(msg: &[u8]) -> Envelope<'static> {
        let (hend, _) = split_header(msg);
        let h = &msg[..hend];
        let raw = |name: &str| field(h, name).map(|v| Cow::Owned(unfold(v)));
        let parsed = mail_parser::MessageParser::default().parse_headers(h);
        let list = |a: Option<&mail_parser::Address<'_>>| -> Vec<Address<'static>> {
            a.map(addresses).unwrap_or_default()
        };
        let (from, sender, reply_to, to, cc, bcc) = match &parsed {
            Some(m) => (
                list(m.from()),
                list(m.sender()),
                list(m.reply_to()),
                list(m.to()),
                list(m.cc()),
                list(m.bcc()),
            ),
            None => Default::default(),
        };
        let sender = if sender.is_empty() {
            from.clone()
        } else {
            sender
        };
        let reply_to = if reply_to.is_empty() {
            from.clone()
        } else {
            reply_to
        };
        Envelope {
            date: raw("date"),
            subject: raw("subject"),
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to: raw("in-reply-to"),
            message_id: raw("message-id"),
        }
    }
}

impl Part {
    fn placeholder() -> Part {
        Part {
            header: 0..0,
            body: 0..0,
            media_type: String::new(),
            subtype: String::new(),
            params: Vec::new(),
            encoding: String::new(),
            shape: Shape::Single,
        }
    }
}

/// A part's Content-Transfer-Encoding is not one BINARY can undo (RFC
/// 3516: answer `NO [UNKNOWN-CTE]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown content transfer encoding {0:?}")]
pub struct UnknownCte(pub String);

/// Base64 decoded, white space and line ends skipped; `None` for other
/// characters or a broken end.
fn base64_decode(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut pad = 0;
    for &c in b {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if pad > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Quoted-printable decoded (RFC 2045 §6.7), line by line: whitespace at
/// the end of a line is transport padding and goes; a line that then ends
/// in `=` is a soft break (joined to the next); `=XX` is an octet; a lone
/// `=` is kept as it is.
fn qp_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    for raw in b.split_inclusive(|&c| c == b'\n') {
        let (content, eol): (&[u8], &[u8]) = match raw {
            [c @ .., b'\r', b'\n'] => (c, b"\r\n"),
            [c @ .., b'\n'] => (c, b"\n"),
            c => (c, b""),
        };
        let mut line = content;
        while let [rest @ .., b' ' | b'\t'] = line {
            line = rest;
        }
        let soft = line.last() == Some(&b'=') && !eol.is_empty();
        if soft {
            line = &line[..line.len() - 1];
        }
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'='
                && let (Some(h), Some(l)) = (
                    line.get(i + 1).and_then(|c| hex(*c)),
                    line.get(i + 2).and_then(|c| hex(*c)),
                )
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            out.push(line[i]);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

fn basic(
    t: &'static [u8],
    s: &'static [u8],
    params: Vec<crate::Param<'static>>,
    octets: u32,
) -> BodyStructure<'static> {
    BodyStructure::Single {
        media_type: t.into(),
        subtype: s.into(),
        fields: BodyFields {
            params,
            id: None,
            description: None,
            encoding: b"7BIT"[..].into(),
            octets,
        },
        kind: PartKind::Text { lines: 0 },
        md5: None,
        ext: Extension::default(),
    }
}

fn params_of(p: &[(String, String)]) -> Vec<crate::Param<'static>> {
    p.iter()
        .map(|(k, v)| (k.clone().into_bytes().into(), v.clone().into_bytes().into()))
        .collect()
}

fn extension(header: &[u8]) -> Extension<'static> {
    let disposition = field(header, "content-disposition").map(|v| {
        let (t, _, params) = content_type(&[v, b"/x"].concat());
        let first = String::from_utf8_lossy(&unfold(v)).into_owned();
        let name = first.split(';').next().unwrap_or("").trim().to_owned();
        let _ = t;
        (Cow::Owned(name.into_bytes()), params_of(&params))
    });
    let language = field(header, "content-language").map(|v| {
        String::from_utf8_lossy(&unfold(v))
            .split(',')
            .map(|l| Cow::Owned(l.trim().as_bytes().to_vec()))
            .filter(|l: &Cow<'static, [u8]>| !l.is_empty())
            .collect()
    });
    let location = field(header, "content-location").map(|v| Cow::Owned(unfold(v)));
    Extension {
        disposition: Some(disposition),
        language: Some(language),
        location: Some(location),
        more: Vec::new(),
    }
}

fn addresses(a: &mail_parser::Address<'_>) -> Vec<Address<'static>> {
    // An entry without an address is no address, except the one bare word
    // of a plain list (`From: d`): a local part without a domain, as other
    // servers read it. (In a group, a lone word is a comment: `g: (c) ;`.)
    let bare_ok = matches!(a, mail_parser::Address::List(l) if l.len() == 1);
    let one = |x: &mail_parser::Addr<'_>| -> Option<Address<'static>> {
        let bare = || {
            x.name
                .as_deref()
                .filter(|n| bare_ok && !n.is_empty() && !n.contains(char::is_whitespace))
        };
        let (addr, name) = match x.address.as_deref() {
            Some(a) => (a, x.name.as_ref()),
            None => (bare()?, None),
        };
        let (mut local, host) = match addr.rsplit_once('@') {
            Some((l, d)) => (l.to_owned(), Some(d.to_owned())),
            None => (addr.to_owned(), None),
        };
        // A source route, `<@route:user@domain>`, is the adl.
        let mut adl = None;
        if local.starts_with('@')
            && let Some((r, l)) = local.clone().split_once(':')
        {
            adl = Some(Cow::Owned(r.as_bytes().to_vec()));
            local = l.to_owned();
        }
        Some(Address {
            name: name.map(|n| Cow::Owned(n.as_bytes().to_vec())),
            adl,
            mailbox: Some(Cow::Owned(local.into_bytes())),
            host: host.map(|h| Cow::Owned(h.into_bytes())),
        })
    };
    match a {
        mail_parser::Address::List(l) => l.iter().filter_map(one).collect(),
        mail_parser::Address::Group(groups) => {
            let mut out = Vec::new();
            for g in groups {
                match &g.name {
                    Some(name) => {
                        out.push(Address {
                            name: None,
                            adl: None,
                            mailbox: Some(Cow::Owned(name.as_bytes().to_vec())),
                            host: None,
                        });
                        out.extend(g.addresses.iter().filter_map(one));
                        out.push(Address {
                            name: None,
                            adl: None,
                            mailbox: None,
                            host: None,
                        });
                    }
                    None => out.extend(g.addresses.iter().filter_map(one)),
                }
            }
            out
        }
    }
}

/// The fields named (or all but those, `not`), then the blank line.
fn header_fields(h: &[u8], names: &[Cow<'_, str>], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < h.len() {
        let lf = memchr::memchr(b'\n', &h[i..]).map_or(h.len(), |p| i + p + 1);
        if !matches!(h.get(lf), Some(b' ' | b'\t')) {
            let f = &h[start..lf];
            if let Some(colon) = memchr::memchr(b':', f) {
                let name = trim(&f[..colon]);
                let hit = names
                    .iter()
                    .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
                if hit != not {
                    out.extend_from_slice(f);
                }
            }
            start = lf;
        }
        i = lf;
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FetchValue, Response};

    const NESTED: &[u8] = b"From: A <a@example.org>\r\nTo: b@example.org, Group: c@x.org;\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\npreamble\r\n--o\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--i--\r\n\r\n--o--\r\n";

    fn sec(part: Vec<u32>, text: SectionText<'static>) -> Section<'static> {
        Section {
            part,
            text,
            partial: None,
        }
    }

    #[test]
    fn an_encoded_message_part_keeps_its_type_and_still_parses_back() {
        let msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                    Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                    U3ViamVjdDogaGkNCg0KYm9keQ0K\r\n--b--\r\n";
        let s = Structure::parse(msg);
        for extensible in [false, true] {
            let r = crate::Response::Fetch(
                1,
                vec![crate::FetchValue::BodyStructure(Box::new(
                    s.body_structure(msg, extensible),
                ))],
            );
            let wire = r.encode(false);
            let text = String::from_utf8_lossy(&wire).into_owned();
            assert!(text.contains("\"message\" \"rfc822\""), "{text}");
            assert_eq!(
                crate::Response::parse(&wire, false).as_ref(),
                Ok(&r),
                "{text}"
            );
        }
    }

    #[test]
    fn a_bare_word_is_a_local_part_but_a_comment_in_a_group_is_not() {
        let e = Structure::envelope(b"From: d\r\nCc: g: (foo) ;\r\nTo: (just a comment)\r\n\r\n");
        assert_eq!(e.from.len(), 1);
        assert_eq!(e.from[0].mailbox.as_deref(), Some(&b"d"[..]));
        assert_eq!(e.from[0].host, None);
        assert!(
            !e.cc
                .iter()
                .any(|a| a.mailbox.as_deref() == Some(&b"foo"[..])),
            "{:?}",
            e.cc
        );
        assert!(e.to.is_empty(), "{:?}", e.to);
    }

    #[test]
    fn sections_name_parts_through_encapsulated_messages() {
        let s = Structure::parse(NESTED);
        assert_eq!(
            &*s.section(NESTED, &sec(vec![1], SectionText::Full)).unwrap(),
            b"line one\r\nline two"
        );
        assert_eq!(
            &*s.section(NESTED, &sec(vec![2, 1], SectionText::Full))
                .unwrap(),
            b"plain"
        );
        assert_eq!(
            &*s.section(NESTED, &sec(vec![2, 2], SectionText::Full))
                .unwrap(),
            b"<b>x</b>"
        );
        let h = s
            .section(NESTED, &sec(vec![2], SectionText::Header))
            .unwrap();
        assert!(h.starts_with(b"Subject: inner\r\n") && h.ends_with(b"\r\n\r\n"));
        let m = s.section(NESTED, &sec(vec![1], SectionText::Mime)).unwrap();
        assert_eq!(&*m, b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
        let f = s
            .section(
                NESTED,
                &sec(vec![], SectionText::HeaderFields(vec!["subject".into()])),
            )
            .unwrap();
        assert_eq!(&*f, b"Subject: outer\r\n\r\n");
        assert!(
            s.section(NESTED, &sec(vec![3], SectionText::Full))
                .is_none()
        );
        assert!(
            s.section(NESTED, &sec(vec![1, 1], SectionText::Full))
                .is_none()
        );
        let mut p = sec(vec![1], SectionText::Full);
        p.partial = Some((5, 3));
        assert_eq!(&*s.section(NESTED, &p).unwrap(), b"one");
    }

    #[test]
    fn bodystructure_of_a_nested_message_round_trips_through_the_codec() {
        let s = Structure::parse(NESTED);
        let b = s.body_structure(NESTED, true);
        let r = Response::Fetch(1, vec![FetchValue::BodyStructure(Box::new(b))]);
        let wire = r.encode(false);
        let text = String::from_utf8_lossy(&wire);
        assert!(
            text.contains("(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 18 1"),
            "{text}"
        );
        assert!(text.contains("\"message\" \"rfc822\""), "{text}");
        assert!(text.contains("\"alternative\""), "{text}");
        assert_eq!(Response::parse(&wire, false).unwrap(), r);
    }

    #[test]
    fn envelope_reads_raw_fields_and_parsed_addresses() {
        let e = Structure::envelope(NESTED);
        assert_eq!(e.subject.as_deref(), Some(&b"outer"[..]));
        assert_eq!(e.from.len(), 1);
        assert_eq!(e.from[0].name.as_deref(), Some(&b"A"[..]));
        assert_eq!(e.from[0].host.as_deref(), Some(&b"example.org"[..]));
        assert_eq!(e.sender, e.from);
        assert!(e.date.is_none());
    }

    #[test]
    fn deep_nesting_is_walked_without_recursion_and_bounded() {
        let mut m = Vec::new();
        for i in 0..5000 {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"\r\nleaf\r\n");
        let s = Structure::parse(&m);
        assert!(s.parts.len() <= 101);
        let b = s.body_structure(&m, true);
        // Encoding is recursive in the codec; its own depth limit applies,
        // so only check the structure was built.
        assert!(matches!(b, BodyStructure::Multi { .. }));
    }

    #[test]
    fn binary_undoes_the_transfer_encoding() {
        let msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAGhl\r\nbGxv\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nsoft=3D\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b--\r\n";
        let s = Structure::parse(msg);
        assert_eq!(&*s.binary(msg, &[1]).unwrap().unwrap(), b"\x00hello");
        assert_eq!(
            &*s.binary(msg, &[2]).unwrap().unwrap(),
            "café soft=".as_bytes()
        );
        assert_eq!(s.binary(msg, &[3]), Err(UnknownCte("x-uuencode".into())));
        assert_eq!(s.binary(msg, &[4]), Ok(None));
        assert_eq!(&*s.binary(msg, &[]).unwrap().unwrap(), &msg[..]);
        assert_eq!(base64_decode(b"a=b"), None);
    }

    #[test]
    fn a_multipart_without_parts_is_consistent_text_plain() {
        // Found by the imap_mime fuzz target: the type said text, the
        // shape said basic, and the codec could not read it back.
        let msg = b"Content-Type: multipart/mixed; boundary=fo\r\n\r\nno delimiter here\r\n";
        let s = Structure::parse(msg);
        let b = s.body_structure(msg, true);
        assert!(matches!(
            b,
            BodyStructure::Single {
                kind: PartKind::Text { .. },
                ..
            }
        ));
        let r = Response::Fetch(1, vec![FetchValue::BodyStructure(Box::new(b))]);
        assert_eq!(Response::parse(&r.encode(false), false).unwrap(), r);
    }

    #[test]
    fn a_message_without_a_header_or_content_type_is_text_plain() {
        let s = Structure::parse(b"\r\nbody\r\n");
        assert_eq!(
            &*s.section(b"\r\nbody\r\n", &sec(vec![1], SectionText::Full))
                .unwrap(),
            b"body\r\n"
        );
        let b = s.body_structure(b"\r\nbody\r\n", false);
        assert!(matches!(
            b,
            BodyStructure::Single {
                kind: PartKind::Text { lines: 1 },
                ..
            }
        ));
    }
}
