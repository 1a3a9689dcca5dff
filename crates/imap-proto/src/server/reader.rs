//! Cutting the client's stream into commands for the server session: like
//! [`crate::Framer`], but a synchronising literal is not acknowledged here
//! (the session decides), and the message literals of APPEND are not
//! buffered: the reader stops at each one and, once the session accepted
//! it, hands its bytes out as they arrive.

use std::borrow::Cow;

use crate::core::{LiteralMode, Tag, tag, trailing_literal};
use crate::framing::{SKIP_TAIL as TAIL, Skipping, skip};

/// Longest tag reported back in a refusal.
const MAX_TAG: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line,
    Literal(u64),
    /// Stopped at an APPEND message literal until the session answers.
    Paused {
        size: u64,
        sync: bool,
    },
    AppendData(u64),
    Skip,
    SkipLiteral(u64),
}

/// What completes an APPEND prefix (ending where a message literal starts)
/// into a command the parser reads: an empty literal, and the `)` of the
/// RFC 6855 `UTF8 (~{n})` form.
pub(crate) fn probe_tail(before_literal: &[u8]) -> &'static [u8] {
    if utf8_open(before_literal) {
        b"{0}\r\n)\r\n"
    } else {
        b"{0}\r\n\r\n"
    }
}

/// Whether a message literal is announced as `UTF8 (~{n}`.
fn utf8_open(before_literal: &[u8]) -> bool {
    let n = before_literal.len();
    n >= 7 && before_literal[n - 7..].eq_ignore_ascii_case(b"UTF8 (~")
}

/// What the reader found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// A whole command, literals inline, CRLF included.
    Command(Cow<'a, [u8]>),
    /// A synchronising literal (not an APPEND message) within the limits:
    /// send `+`.
    Continue,
    /// Over a limit or not CRLF: answer BAD; the rest is skipped.
    Refused {
        tag: Option<Tag>,
        reason: &'static str,
    },
    /// An APPEND message literal is announced. `args`: the command text
    /// before the literal header (for the first message, from the tag on;
    /// for a further one, what followed the previous message). The reader
    /// waits for [`Reader::accept_append`] (which says whether the client
    /// waits for a `+`) or [`Reader::refuse_append`].
    AppendMessage {
        args: Vec<u8>,
        size: u64,
        first: bool,
    },
    /// Bytes of the accepted APPEND message.
    AppendData(&'a [u8]),
    /// The APPEND command ended (CRLF after its last message).
    AppendEnd,
    /// What followed an APPEND message was neither CRLF nor another one.
    AppendSyntax,
}

#[derive(Debug)]
pub(crate) struct Reader {
    max_command: usize,
    max_literal: u64,
    utf8: bool,
    buf: Vec<u8>,
    line_start: usize,
    literal_total: u64,
    state: State,
    skip_tail: Vec<u8>,
    /// Inside an APPEND, after a message literal.
    in_append: bool,
    /// The message literal was `UTF8 (~{n}`: a `)` follows it.
    close_paren: bool,
}

impl Reader {
    pub(crate) fn new(max_command: usize, max_literal: u64) -> Reader {
        Reader {
            max_command,
            max_literal,
            utf8: false,
            buf: Vec::new(),
            line_start: 0,
            literal_total: 0,
            state: State::Line,
            skip_tail: Vec::new(),
            in_append: false,
            close_paren: false,
        }
    }

    /// UTF8=ACCEPT changes how mailbox names parse.
    pub(crate) fn set_utf8(&mut self, on: bool) {
        self.utf8 = on;
    }

    /// Forgets everything (STARTTLS: nothing read before counts).
    pub(crate) fn reset(&mut self) {
        *self = Reader {
            utf8: self.utf8,
            ..Reader::new(self.max_command, self.max_literal)
        };
    }

    /// Whether the reader waits for the session's answer on an APPEND
    /// message.
    #[cfg(test)]
    pub(crate) fn is_paused(&self) -> bool {
        matches!(self.state, State::Paused { .. })
    }

    /// Bytes held for the current command.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The session accepted the announced APPEND message; true when the
    /// client waits for a `+`.
    pub(crate) fn accept_append(&mut self) -> bool {
        let State::Paused { size, sync } = self.state else {
            return false;
        };
        self.state = if size == 0 {
            self.in_append = true;
            State::Line
        } else {
            State::AppendData(size)
        };
        sync
    }

    /// The session refused the APPEND: a synchronising literal is never
    /// sent; a non-synchronising one and the rest of the line are skipped.
    pub(crate) fn refuse_append(&mut self) {
        if let State::Paused { size, sync } = self.state {
            self.clear_command();
            self.skip_tail.clear();
            self.state = if sync {
                State::Line
            } else if size == 0 {
                State::Skip
            } else {
                State::SkipLiteral(size)
            };
        }
    }

    fn clear_command(&mut self) {
        self.buf.clear();
        self.line_start = 0;
        self.literal_total = 0;
        self.in_append = false;
        self.close_paren = false;
    }

    fn refuse(&mut self, reason: &'static str, skip: State, input: &[u8]) -> Item<'static> {
        // The tag is reported only when short and complete, so the answer
        // does not depend on how the bytes were split.
        // Within the first bytes every split has shown by now: a limit is
        // passed only after more than `max_command` of them.
        let look = (MAX_TAG + 1).min(self.max_command + 1);
        let mut head: Vec<u8> = self.buf.iter().take(look).copied().collect();
        head.extend(input.iter().take(look - head.len()));
        let t = match tag(&head) {
            Ok((rest, t)) if rest.first() == Some(&b' ') => Some(t),
            _ => None,
        };
        let keep = self.buf.len().saturating_sub(self.line_start).min(TAIL);
        self.skip_tail = self.buf[self.buf.len() - keep..].to_vec();
        self.clear_command();
        self.state = skip;
        Item::Refused { tag: t, reason }
    }

    /// Whether the command so far, ending before a literal header, is an
    /// APPEND whose literal is a message (not, say, the mailbox name).
    fn is_append_message(&self, before_literal: &[u8]) -> bool {
        let Ok((rest, _)) = tag(before_literal) else {
            return false;
        };
        if rest.len() < 8 || !rest[..8].eq_ignore_ascii_case(b" APPEND ") {
            return false;
        }
        let mut probe = before_literal.to_vec();
        probe.extend_from_slice(probe_tail(before_literal));
        matches!(
            crate::Command::parse(&probe, self.utf8),
            Ok(crate::Command {
                body: crate::CommandBody::Append { .. },
                ..
            })
        )
    }

    /// Consumes from `input`; returns how many bytes were used and an item
    /// if one completed. Call again with the rest (a paused reader uses
    /// nothing).
    pub(crate) fn push<'a>(&mut self, input: &'a [u8]) -> (usize, Option<Item<'a>>) {
        match self.state {
            State::Paused { .. } => (0, None),
            State::AppendData(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
                let left = n - take as u64;
                if left == 0 {
                    self.state = State::Line;
                    self.in_append = true;
                } else {
                    self.state = State::AppendData(left);
                }
                (take, Some(Item::AppendData(&input[..take])))
            }
            State::Skip | State::SkipLiteral(_) => {
                let at = match self.state {
                    State::SkipLiteral(n) => Skipping::Literal(n),
                    _ => Skipping::Line,
                };
                let (used, next) = skip(at, &mut self.skip_tail, input);
                self.state = match next {
                    Skipping::Line => State::Skip,
                    Skipping::Literal(n) => State::SkipLiteral(n),
                    Skipping::Done => State::Line,
                };
                (used, None)
            }
            State::Literal(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                let left = n - take as u64;
                if left == 0 {
                    self.state = State::Line;
                    self.line_start = self.buf.len();
                } else {
                    self.state = State::Literal(left);
                }
                (take, None)
            }
            State::Line => self.line(input),
        }
    }

    fn line<'a>(&mut self, input: &'a [u8]) -> (usize, Option<Item<'a>>) {
        let room = (self.max_command + usize::try_from(self.literal_total).unwrap_or(usize::MAX))
            .saturating_sub(self.buf.len());
        let Some(i) = memchr::memchr(b'\n', input) else {
            if input.len() > room {
                let f = self.refuse("command too long", State::Skip, input);
                self.skip_tail.extend_from_slice(input);
                let cut = self.skip_tail.len().saturating_sub(TAIL);
                self.skip_tail.drain(..cut);
                return (input.len(), Some(f));
            }
            self.buf.extend_from_slice(input);
            return (input.len(), None);
        };
        if i + 1 > room {
            let f = self.refuse("command too long", State::Skip, input);
            self.state = State::Skip;
            let (used, _) = self.push(&input[..=i]);
            return (used, Some(f));
        }
        let whole = self.buf.is_empty();
        if !whole {
            self.buf.extend_from_slice(&input[..=i]);
        }
        let line: &[u8] = if whole {
            &input[..=i]
        } else {
            &self.buf[self.line_start..]
        };
        if line.len() < 2 || line[line.len() - 2] != b'\r' {
            let command: &[u8] = if whole { &input[..=i] } else { &self.buf };
            let t = match tag(command) {
                Ok((rest, t)) if rest.first() == Some(&b' ') && t.as_str().len() <= MAX_TAG => {
                    Some(t)
                }
                _ => None,
            };
            let was_append = self.in_append;
            self.clear_command();
            if was_append {
                return (i + 1, Some(Item::AppendSyntax));
            }
            return (
                i + 1,
                Some(Item::Refused {
                    tag: t,
                    reason: "lines end in CRLF",
                }),
            );
        }
        if self.in_append {
            // What follows an APPEND message: the end, or another message.
            let mut line = line.to_vec();
            let close = self.close_paren;
            self.clear_command();
            if close {
                match line.strip_prefix(b")") {
                    Some(rest) => line = rest.to_vec(),
                    None => return (i + 1, Some(Item::AppendSyntax)),
                }
            }
            if line == b"\r\n" {
                return (i + 1, Some(Item::AppendEnd));
            }
            return match trailing_literal(&line) {
                Some((size, mode)) => {
                    let open = memchr::memrchr(b'{', &line).unwrap_or(0);
                    self.close_paren = utf8_open(&line[..open]);
                    self.state = State::Paused {
                        size,
                        sync: mode == LiteralMode::Sync,
                    };
                    (
                        i + 1,
                        Some(Item::AppendMessage {
                            args: line[..open].to_vec(),
                            size,
                            first: false,
                        }),
                    )
                }
                None => (i + 1, Some(Item::AppendSyntax)),
            };
        }
        match trailing_literal(line) {
            Some((n, mode)) => {
                if whole {
                    self.buf.extend_from_slice(&input[..=i]);
                }
                let open = self.line_start
                    + memchr::memrchr(b'{', &self.buf[self.line_start..]).unwrap_or(0);
                let before = &self.buf[..open];
                if self.is_append_message(before) {
                    let args = before.to_vec();
                    self.clear_command();
                    self.close_paren = utf8_open(&args);
                    let sync = mode == LiteralMode::Sync;
                    self.state = State::Paused { size: n, sync };
                    return (
                        i + 1,
                        Some(Item::AppendMessage {
                            args,
                            size: n,
                            first: true,
                        }),
                    );
                }
                if n > self.max_literal || self.literal_total + n > self.max_literal {
                    let skip = match mode {
                        LiteralMode::Sync => State::Line,
                        LiteralMode::NonSync => State::SkipLiteral(n),
                    };
                    let f = self.refuse("literal too large", skip, &[]);
                    self.skip_tail.clear();
                    if n == 0 {
                        self.state = State::Line;
                    }
                    return (i + 1, Some(f));
                }
                self.literal_total += n;
                self.state = if n == 0 {
                    State::Line
                } else {
                    State::Literal(n)
                };
                if n == 0 {
                    self.line_start = self.buf.len();
                }
                (i + 1, (mode == LiteralMode::Sync).then_some(Item::Continue))
            }
            None if whole => (i + 1, Some(Item::Command(Cow::Borrowed(&input[..=i])))),
            None => {
                let cmd = std::mem::take(&mut self.buf);
                self.clear_command();
                (i + 1, Some(Item::Command(Cow::Owned(cmd))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: &mut Reader, mut input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (used, item) = r.push(input);
            input = &input[used..];
            if let Some(item) = item {
                out.push(format!("{item:?}"));
            }
            if used == 0 && item_is_none_or_pause(r) {
                break;
            }
        }
        out
    }

    fn item_is_none_or_pause(r: &Reader) -> bool {
        r.is_paused()
    }

    #[test]
    fn a_mailbox_literal_is_buffered_and_a_message_literal_waits() {
        let mut r = Reader::new(1024, 1024);
        let out = all(&mut r, b"a APPEND {5}\r\nINBOX (\\Seen) {11}\r\n");
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].contains("Continue"));
        assert!(out[1].contains("AppendMessage"));
        assert!(out[1].contains("size: 11"));
        assert!(r.is_paused());
        assert_eq!(r.push(b"hello world\r\n"), (0, None));
        assert!(r.accept_append(), "a synchronising literal waits for +");
        let (used, item) = r.push(b"hello world\r\n");
        assert_eq!((used, item), (11, Some(Item::AppendData(b"hello world"))));
        assert_eq!(r.push(b"\r\n"), (2, Some(Item::AppendEnd)));
    }

    #[test]
    fn a_refused_non_synchronising_message_is_skipped_not_parsed() {
        let mut r = Reader::new(1024, 1024);
        let (used, item) = r.push(b"a APPEND INBOX {8+}\r\nb NOOP\r\n\r\nc NOOP\r\n");
        assert_eq!(used, 21);
        assert!(matches!(item, Some(Item::AppendMessage { size: 8, .. })));
        r.refuse_append();
        let out = all(&mut r, b"b NOOP\r\n\r\nc NOOP\r\n");
        assert_eq!(
            out,
            vec![format!("{:?}", Item::Command(Cow::Borrowed(b"c NOOP\r\n")))]
        );
    }

    #[test]
    fn oversized_literals_are_refused_with_their_tag() {
        let mut r = Reader::new(1024, 100);
        let (_, item) = r.push(b"t1 LOGIN {4294967296}\r\n");
        assert!(matches!(item, Some(Item::Refused { tag: Some(t), .. }) if t.as_str() == "t1"));
        let (_, item) = r.push(b"t2 LOGIN {99999999999999999999}\r\n");
        // Twenty digits are no literal header at all: a syntax error later.
        assert!(matches!(item, Some(Item::Command(_))));
    }
}
