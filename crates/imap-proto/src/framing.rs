//! Cutting a client's byte stream into whole commands: lines and the
//! literals inside them, with limits enforced while scanning so that
//! oversized input costs bounded memory and the stream stays in sync.
//! Literal payload bytes are never taken for commands.

use std::borrow::Cow;

use crate::core::{LiteralMode, Tag, tag, trailing_literal};

/// Longest tag reported back in a refusal.
const MAX_TAG: usize = 64;

/// Limits of the framer: [`FramerLimits::new`], or the defaults and change
/// the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FramerLimits {
    /// Longest command, literals excluded. Default 64 KiB.
    pub max_command: usize,
    /// Largest single literal. Default 64 MiB.
    pub max_literal: u64,
}

impl FramerLimits {
    /// Limits of `max_command` octets of command text (literals excluded)
    /// and `max_literal` octets per literal.
    pub fn new(max_command: usize, max_literal: u64) -> Self {
        FramerLimits {
            max_command,
            max_literal,
        }
    }
}

impl Default for FramerLimits {
    fn default() -> Self {
        FramerLimits {
            max_command: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
        }
    }
}

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole command, literals inline, CRLF included: borrowed from the
    /// input when it arrived in one piece, else the framer's own buffer.
    Command(Cow<'a, [u8]>),
    /// A synchronising literal was announced and accepted: send a `+`
    /// continuation request.
    ContinuationNeeded,
    /// The command passed a limit and was dropped (the rest of it is
    /// skipped): answer `BAD` (tagged when the tag is known). For a
    /// synchronising literal that is too large, the client sends nothing
    /// more for it.
    Refused {
        /// The command's tag, if it was read.
        tag: Option<Tag>,
        /// Why.
        reason: &'static str,
    },
}

impl Frame<'_> {
    /// The same frame owning its bytes, to keep it after the input buffer
    /// is reused.
    pub fn into_owned(self) -> Frame<'static> {
        match self {
            Frame::Command(c) => Frame::Command(Cow::Owned(c.into_owned())),
            Frame::ContinuationNeeded => Frame::ContinuationNeeded,
            Frame::Refused { tag, reason } => Frame::Refused { tag, reason },
        }
    }
}

/// Where skipping a refused command stands (shared by the framer and the
/// server session's reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipping {
    /// Inside its line.
    Line,
    /// Inside a non-synchronising literal the line announced: octets left.
    Literal(u64),
    /// Done: the next command starts.
    Done,
}

/// Bytes of a skipped line kept to see a literal header at its end.
pub(crate) const SKIP_TAIL: usize = 32;

/// Skips part of a refused command: to the end of its line, then through
/// any non-synchronising literal it announces (the command goes on after
/// it). `tail` keeps the end of the skipped line, bounded, so a literal
/// header split across reads is still seen. Returns the octets used.
pub(crate) fn skip(state: Skipping, tail: &mut Vec<u8>, input: &[u8]) -> (usize, Skipping) {
    match state {
        Skipping::Done => (0, Skipping::Done),
        Skipping::Literal(n) => {
            let take = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
            let left = n - take as u64;
            (
                take,
                if left == 0 {
                    Skipping::Line
                } else {
                    Skipping::Literal(left)
                },
            )
        }
        Skipping::Line => {
            let lf = memchr::memchr(b'\n', input);
            let upto = lf.map_or(input.len(), |i| i + 1);
            tail.extend_from_slice(&input[..upto]);
            if tail.len() > SKIP_TAIL {
                let cut = tail.len() - SKIP_TAIL;
                tail.drain(..cut);
            }
            if lf.is_none() {
                return (upto, Skipping::Line);
            }
            let t = std::mem::take(tail);
            let next = match trailing_literal(&t) {
                Some((0, LiteralMode::NonSync)) => Skipping::Line,
                Some((n, LiteralMode::NonSync)) => Skipping::Literal(n),
                _ => Skipping::Done,
            };
            (upto, next)
        }
    }
}

#[derive(Debug)]
enum State {
    Line,
    Literal(u64),
    /// Skipping a refused command: to the end of its line, then any
    /// non-synchronising literal it announces.
    Skip,
    SkipLiteral(u64),
}

/// The framer. Feed bytes with [`Framer::push`] until it has consumed
/// them all; collect the frames it returns.
#[derive(Debug)]
pub struct Framer {
    limits: FramerLimits,
    buf: Vec<u8>,
    line_start: usize,
    literal_total: u64,
    state: State,
    skip_tail: Vec<u8>,
}

impl Framer {
    /// A framer with these limits.
    pub fn new(limits: FramerLimits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            line_start: 0,
            literal_total: 0,
            state: State::Line,
            skip_tail: Vec::new(),
        }
    }

    /// Bytes of the current command held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn refuse(&mut self, reason: &'static str, skip: State, input: &[u8]) -> Frame<'static> {
        // The tag is reported only when short and complete within the
        // first bytes every split has shown by now (a limit is passed only
        // after more than `max_command` of them), so the answer does not
        // depend on how the bytes were split.
        let look = (MAX_TAG + 1).min(self.limits.max_command + 1);
        let mut head: Vec<u8> = self.buf.iter().take(look).copied().collect();
        head.extend(input.iter().take(look - head.len()));
        let t = match tag(&head) {
            Ok((rest, t)) if rest.first() == Some(&b' ') => Some(t),
            _ => None,
        };
        // The end of what was buffered of this line, for a literal header
        // that the skipped rest may complete.
        let keep = self.buf.len().saturating_sub(self.line_start).min(32);
        self.skip_tail = self.buf[self.buf.len() - keep..].to_vec();
        self.buf.clear();
        self.line_start = 0;
        self.literal_total = 0;
        self.state = skip;
        Frame::Refused { tag: t, reason }
    }

    /// Consumes from `input`; returns how many bytes were used and a frame
    /// if one completed. Call again with the rest.
    pub fn push<'a>(&mut self, input: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        match self.state {
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
            State::Line => {
                let line_len = self.buf.len() - self.line_start;
                let room = (self.limits.max_command + self.literal_total as usize)
                    .saturating_sub(self.buf.len());
                match memchr::memchr(b'\n', input) {
                    None => {
                        if input.len() > room {
                            let f = self.refuse("command too long", State::Skip, input);
                            self.skip_tail.extend_from_slice(input);
                            let cut = self.skip_tail.len().saturating_sub(32);
                            self.skip_tail.drain(..cut);
                            return (input.len(), Some(f));
                        }
                        self.buf.extend_from_slice(input);
                        (input.len(), None)
                    }
                    Some(i) => {
                        if i + 1 > room {
                            let f = self.refuse("command too long", State::Skip, input);
                            // The line ended inside this input: resume
                            // skipping from its end.
                            self.state = State::Skip;
                            let (used, _) = self.push(&input[..=i]);
                            return (used, Some(f));
                        }
                        // A whole command in one input is handed out
                        // without a copy.
                        let whole = self.buf.is_empty();
                        if !whole {
                            self.buf.extend_from_slice(&input[..=i]);
                        }
                        let _ = line_len;
                        let (command, line) = if whole {
                            (&input[..=i], &input[..=i])
                        } else {
                            (&self.buf[..], &self.buf[self.line_start..])
                        };
                        if line.len() < 2 || line[line.len() - 2] != b'\r' {
                            let t = match tag(command) {
                                Ok((rest, t))
                                    if rest.first() == Some(&b' ')
                                        && t.as_str().len() <= MAX_TAG =>
                                {
                                    Some(t)
                                }
                                _ => None,
                            };
                            self.buf.clear();
                            self.line_start = 0;
                            self.literal_total = 0;
                            return (
                                i + 1,
                                Some(Frame::Refused {
                                    tag: t,
                                    reason: "lines end in CRLF",
                                }),
                            );
                        }
                        match trailing_literal(line) {
                            Some((n, mode)) => {
                                if whole {
                                    self.buf.extend_from_slice(&input[..=i]);
                                }
                                if n > self.limits.max_literal
                                    || self.literal_total + n > self.limits.max_literal
                                {
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
                                let frame = (mode == LiteralMode::Sync)
                                    .then_some(Frame::ContinuationNeeded);
                                (i + 1, frame)
                            }
                            None if whole => {
                                (i + 1, Some(Frame::Command(Cow::Borrowed(&input[..=i]))))
                            }
                            None => {
                                let cmd = std::mem::take(&mut self.buf);
                                self.line_start = 0;
                                self.literal_total = 0;
                                (i + 1, Some(Frame::Command(Cow::Owned(cmd))))
                            }
                        }
                    }
                }
            }
        }
    }
}
