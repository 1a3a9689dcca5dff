//! The IMAP string layer: tags, atoms, quoted strings and literals
//! (RFC 9051 §4.3, RFC 7888 LITERAL+/LITERAL-, RFC 3516 `~{n}`), and the
//! encoder that picks a safe form for every value.

use std::borrow::Cow;

/// Parse errors of the grammar (the command is answered BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// More input is needed (never seen with a complete framed command).
    #[error("incomplete")]
    Incomplete,
    /// The input does not follow the grammar here.
    #[error("syntax error: {0}")]
    Invalid(&'static str),
    /// A number is zero where that is not allowed, or over 2^32-1.
    #[error("number out of range")]
    Number,
}

pub(crate) type PResult<'a, T> = Result<(&'a [u8], T), SyntaxError>;

/// `ATOM-CHAR`: any CHAR except atom-specials.
pub fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR`: ATOM-CHAR or `]`.
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A command tag: 1 or more ASTRING-CHAR except `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// Validates a tag.
    pub fn new(t: &str) -> Option<Tag> {
        (!t.is_empty() && t.bytes().all(|b| is_astring_char(b) && b != b'+'))
            .then(|| Tag(t.to_owned()))
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn tag(i: &[u8]) -> PResult<'_, Tag> {
    let n = i
        .iter()
        .take_while(|&&b| is_astring_char(b) && b != b'+')
        .count();
    if n == 0 {
        return Err(SyntaxError::Invalid("tag"));
    }
    let t = std::str::from_utf8(&i[..n]).map_err(|_| SyntaxError::Invalid("tag"))?;
    Ok((&i[n..], Tag(t.to_owned())))
}

/// A short word upper-cased on the stack, to match keywords without
/// allocating. Words longer than the buffer come out empty (so they match
/// no keyword).
#[derive(Clone, Copy)]
pub(crate) struct Upper {
    buf: [u8; 24],
    len: usize,
}

impl std::ops::Deref for Upper {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(crate) fn upper(w: &[u8]) -> Upper {
    let mut u = Upper {
        buf: [0; 24],
        len: 0,
    };
    if w.len() <= u.buf.len() {
        u.buf[..w.len()].copy_from_slice(w);
        u.buf[..w.len()].make_ascii_uppercase();
        u.len = w.len();
    }
    u
}

pub(crate) fn sp(i: &[u8]) -> PResult<'_, ()> {
    match i.first() {
        Some(b' ') => Ok((&i[1..], ())),
        None => Err(SyntaxError::Incomplete),
        _ => Err(SyntaxError::Invalid("expected SP")),
    }
}

/// An atom as bytes, for matching keywords (no UTF-8 check needed).
pub(crate) fn atom_bytes(i: &[u8]) -> PResult<'_, &[u8]> {
    let n = i.iter().take_while(|&&b| is_atom_char(b)).count();
    if n == 0 {
        return Err(SyntaxError::Invalid("atom"));
    }
    Ok((&i[n..], &i[..n]))
}

pub(crate) fn atom(i: &[u8]) -> PResult<'_, &str> {
    let n = i.iter().take_while(|&&b| is_atom_char(b)).count();
    if n == 0 {
        return Err(SyntaxError::Invalid("atom"));
    }
    // ATOM-CHARs are ASCII.
    Ok((
        &i[n..],
        std::str::from_utf8(&i[..n]).map_err(|_| SyntaxError::Invalid("atom"))?,
    ))
}

pub(crate) fn number(i: &[u8]) -> PResult<'_, u32> {
    let n = i.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return Err(SyntaxError::Invalid("number"));
    }
    if n > 10 {
        return Err(SyntaxError::Number);
    }
    let v: u64 = std::str::from_utf8(&i[..n])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(SyntaxError::Number)?;
    u32::try_from(v)
        .map(|v| (&i[n..], v))
        .map_err(|_| SyntaxError::Number)
}

pub(crate) fn nz_number(i: &[u8]) -> PResult<'_, u32> {
    let (r, n) = number(i)?;
    if n == 0 {
        return Err(SyntaxError::Number);
    }
    Ok((r, n))
}

/// `number64` (RFC 9051): 0 to 2^63-1 — literal lengths, mod-sequences,
/// STATUS sizes.
pub(crate) fn number64(i: &[u8]) -> PResult<'_, u64> {
    let n = i.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return Err(SyntaxError::Number);
    }
    match std::str::from_utf8(&i[..n])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(v) if v < 1 << 63 => Ok((&i[n..], v)),
        _ => Err(SyntaxError::Number),
    }
}

/// How a literal is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralMode {
    /// `{n}`: the sender waits for a `+` continuation.
    Sync,
    /// `{n+}`: LITERAL+ / LITERAL-, no wait.
    NonSync,
}

/// Parses a literal header `{n}` / `{n+}` / `~{n}` followed by CRLF.
/// Returns (rest after CRLF, length, mode, binary).
pub(crate) fn literal_header(i: &[u8]) -> PResult<'_, (u64, LiteralMode, bool)> {
    let (i, binary) = match i.first() {
        Some(b'~') => (&i[1..], true),
        _ => (i, false),
    };
    let i = i
        .strip_prefix(b"{")
        .ok_or(SyntaxError::Invalid("literal"))?;
    let (i, n) = number64(i)?;
    let (i, mode) = match i.first() {
        Some(b'+') => (&i[1..], LiteralMode::NonSync),
        _ => (i, LiteralMode::Sync),
    };
    let i = i
        .strip_prefix(b"}\r\n")
        .ok_or(SyntaxError::Invalid("literal"))?;
    Ok((i, (n, mode, binary)))
}

fn literal(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    let (i, (n, _, binary)) = literal_header(i)?;
    let n = usize::try_from(n).map_err(|_| SyntaxError::Number)?;
    if i.len() < n {
        return Err(SyntaxError::Incomplete);
    }
    let data = &i[..n];
    if !binary && data.contains(&0) {
        return Err(SyntaxError::Invalid("NUL in a literal"));
    }
    Ok((&i[n..], Cow::Borrowed(data)))
}

fn quoted(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    let body = i
        .strip_prefix(b"\"")
        .ok_or(SyntaxError::Invalid("quoted"))?;
    let bad = |span: &[u8]| span.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    let mut owned: Option<Vec<u8>> = None;
    let mut k = 0;
    // Jump from one `"` or `\` to the next; the spans between are copied
    // only once an escape has been seen.
    while let Some(at) = memchr::memchr2(b'"', b'\\', &body[k..]) {
        let span = &body[k..k + at];
        if bad(span) {
            return Err(SyntaxError::Invalid("control in quoted string"));
        }
        if let Some(o) = owned.as_mut() {
            o.extend_from_slice(span);
        }
        let at = k + at;
        if body[at] == b'"' {
            let v = owned.map_or(Cow::Borrowed(&body[..at]), Cow::Owned);
            return Ok((&body[at + 1..], v));
        }
        match body.get(at + 1) {
            Some(&c @ (b'"' | b'\\')) => {
                owned.get_or_insert_with(|| body[..at].to_vec()).push(c);
                k = at + 2;
            }
            None => return Err(SyntaxError::Incomplete),
            _ => return Err(SyntaxError::Invalid("bad escape in quoted string")),
        }
    }
    if bad(&body[k..]) {
        return Err(SyntaxError::Invalid("control in quoted string"));
    }
    Err(SyntaxError::Incomplete)
}

/// The literal a line announces at its end (`{n}`, `{n+}` or `~{n}`
/// right before CRLF): its length and mode.
pub(crate) fn trailing_literal(line: &[u8]) -> Option<(u64, LiteralMode)> {
    let open = memchr::memrchr(b'{', line)?;
    match literal_header(&line[open..]) {
        Ok(([], (n, mode, _))) => Some((n, mode)),
        _ => None,
    }
}

/// Checks the bytes outside literals: 7-bit, or valid UTF-8 when `utf8`
/// (RFC 6855). Literal payloads, announced at the end of a line, are
/// skipped.
pub(crate) fn check_eight_bit(input: &[u8], utf8: bool) -> Result<(), SyntaxError> {
    if input.is_ascii() {
        return Ok(());
    }
    let mut rest = input;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if !(line.is_ascii() || (utf8 && std::str::from_utf8(line).is_ok())) {
            return Err(SyntaxError::Invalid("8-bit data outside a literal"));
        }
        rest = &rest[end..];
        if let Some((n, _)) = trailing_literal(line) {
            rest = &rest[usize::try_from(n).unwrap_or(usize::MAX).min(rest.len())..];
        }
    }
    Ok(())
}

/// `string = quoted / literal`.
pub(crate) fn string(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    match i.first() {
        Some(b'"') => quoted(i),
        Some(b'{') => literal(i),
        Some(b'~') if i.get(1) == Some(&b'{') => literal(i),
        None => Err(SyntaxError::Incomplete),
        _ => Err(SyntaxError::Invalid("string")),
    }
}

/// `astring = 1*ASTRING-CHAR / string`.
/// Whether a string (quoted or literal) starts here.
pub(crate) fn starts_string(i: &[u8]) -> bool {
    matches!(i.first(), Some(b'"' | b'{')) || i.starts_with(b"~{")
}

pub(crate) fn astring(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    match i.first() {
        _ if starts_string(i) => string(i),
        _ => {
            let n = i.iter().take_while(|&&b| is_astring_char(b)).count();
            if n == 0 {
                return Err(SyntaxError::Invalid("astring"));
            }
            Ok((&i[n..], Cow::Borrowed(&i[..n])))
        }
    }
}

/// One piece of an encoded command: bytes to send, and whether the peer's
/// `+` continuation must be awaited before sending the next piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes to write.
    pub bytes: Vec<u8>,
    /// After these bytes, wait for a continuation request (a synchronising
    /// literal was announced).
    pub wait_for_continuation: bool,
}

/// Builds command or response bytes, choosing atom, quoted string or
/// literal for each value so no value can inject a line.
#[derive(Debug, Clone)]
pub struct Encoder {
    chunks: Vec<Chunk>,
    current: Vec<u8>,
    /// Literals announced `{n+}` (client with LITERAL+).
    plus: bool,
    /// A `{n}` literal waits for the peer's `+` (client without LITERAL+).
    wait: bool,
    utf8: bool,
}

impl Encoder {
    /// A new encoder; `non_sync_literals` when the peer has LITERAL+ (so
    /// literals never wait).
    pub fn new(non_sync_literals: bool) -> Encoder {
        Encoder {
            chunks: Vec::new(),
            current: Vec::new(),
            plus: non_sync_literals,
            wait: !non_sync_literals,
            utf8: false,
        }
    }

    /// An encoder for a server's responses: literals are `{n}` (servers
    /// may not send `{n+}`, RFC 9051 §4.3) and never wait.
    pub fn for_responses() -> Encoder {
        Encoder {
            plus: false,
            wait: false,
            ..Encoder::new(true)
        }
    }

    /// With UTF8=ACCEPT enabled (RFC 6855): UTF-8 text may be sent as a
    /// quoted string instead of a literal.
    pub fn with_utf8(mut self, utf8: bool) -> Self {
        self.utf8 = utf8;
        self
    }

    /// Raw protocol bytes (keywords, spaces, parentheses).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.current.extend_from_slice(b);
        self
    }

    /// A decimal number.
    pub fn number(&mut self, n: u64) -> &mut Self {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut n = n;
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.raw(&buf[at..])
    }

    /// An astring: atom if possible, else quoted, else literal.
    pub fn astring(&mut self, v: &[u8]) -> &mut Self {
        if !v.is_empty() && v.iter().all(|&b| is_astring_char(b)) {
            self.raw(v)
        } else {
            self.string(v)
        }
    }

    /// A string: quoted when short printable ASCII (or, with UTF8=ACCEPT,
    /// short UTF-8 text without controls), else a literal.
    pub fn string(&mut self, v: &[u8]) -> &mut Self {
        let quotable = if self.utf8 {
            v.iter().all(|&b| b >= 0x80 || (0x20..0x7f).contains(&b))
                && std::str::from_utf8(v).is_ok()
        } else {
            v.iter().all(|&b| (0x20..0x7f).contains(&b))
        };
        if v.len() <= 1024 && quotable {
            self.current.push(b'"');
            for &b in v {
                if b == b'"' || b == b'\\' {
                    self.current.push(b'\\');
                }
                self.current.push(b);
            }
            self.current.push(b'"');
            self
        } else {
            self.literal(v)
        }
    }

    /// A literal (binary `~{n}` if the data holds NUL).
    pub fn literal(&mut self, v: &[u8]) -> &mut Self {
        self.literal_as(v, v.contains(&0))
    }

    /// A binary literal `~{n}` (RFC 3516 `literal8`), whatever the data.
    pub fn literal8(&mut self, v: &[u8]) -> &mut Self {
        self.literal_as(v, true)
    }

    fn literal_as(&mut self, v: &[u8], binary: bool) -> &mut Self {
        if binary {
            self.raw(b"~");
        }
        self.raw(b"{").number(v.len() as u64);
        if self.plus {
            self.raw(b"+");
        }
        self.raw(b"}\r\n");
        self.current.reserve(v.len() + 2);
        if self.wait {
            self.chunks.push(Chunk {
                bytes: std::mem::take(&mut self.current),
                wait_for_continuation: true,
            });
        }
        self.current.extend_from_slice(v);
        self
    }

    /// Ends the line (CRLF) and returns all of it as one buffer, as a
    /// server sends it (or a client whose peer has LITERAL+); no copy when
    /// no literal had to wait.
    pub fn finish_bytes(mut self) -> Vec<u8> {
        if self.chunks.is_empty() {
            self.current.extend_from_slice(b"\r\n");
            return self.current;
        }
        join(&self.finish())
    }

    /// Ends the line (CRLF) and returns the chunks.
    pub fn finish(mut self) -> Vec<Chunk> {
        self.current.extend_from_slice(b"\r\n");
        self.chunks.push(Chunk {
            bytes: self.current,
            wait_for_continuation: false,
        });
        self.chunks
    }
}

/// All chunks joined (what the wire carries once continuations are given).
pub fn join(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.iter().map(|c| c.bytes.len()).sum());
    for c in chunks {
        out.extend_from_slice(&c.bytes);
    }
    out
}

/// Writes `(a b c)`, each item by `item`.
pub(crate) fn encode_paren<T>(
    e: &mut Encoder,
    items: &[T],
    mut item: impl FnMut(&mut Encoder, &T),
) {
    e.raw(b"(");
    for (n, it) in items.iter().enumerate() {
        if n > 0 {
            e.raw(b" ");
        }
        item(e, it);
    }
    e.raw(b")");
}
