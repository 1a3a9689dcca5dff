//! Cutting a byte stream into command lines with a bounded buffer, and the
//! one policy for bare line ends.

/// What to do with a CR or LF that is not part of a CRLF pair: in command
/// lines (a line ending in a bare LF) and in message bodies (a bare CR or LF
/// inside DATA or a POP3 multi-line body). One vocabulary for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BareLineEnding {
    /// Refuse it (the default). A command line ending in a bare LF gets
    /// [`LineError::BareLf`]; a body with a bare CR or LF is read to its end
    /// and refused with [`crate::BodyError::BareLineEnding`].
    #[default]
    Reject,
    /// Accept it as a line end. A command line may end in a bare LF; in a
    /// body each bare CR or LF becomes CRLF. A line break made this way never
    /// starts a line for end-of-data detection, so `\n.\n` cannot end a
    /// message.
    Normalize,
}

/// A line the framer could not hand out. Both are recoverable: the stream
/// is in sync again at the next line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is longer than the limit (line end included).
    #[error("line longer than {limit} octets")]
    TooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The line ends in a bare LF under [`BareLineEnding::Reject`].
    #[error("line ends in a bare LF")]
    BareLf,
}

/// The content of a line given with its final LF, after the line-ending
/// policy: a CR before the LF is stripped; without one, the line is refused
/// unless bare LF is accepted.
#[inline]
pub fn line_content(line: &[u8], policy: BareLineEnding) -> Result<&[u8], LineError> {
    let Some((b'\n', body)) = line.split_last() else {
        // Not a line at all: treat like a line without its CR.
        return match policy {
            BareLineEnding::Normalize => Ok(line),
            BareLineEnding::Reject => Err(LineError::BareLf),
        };
    };
    match body.split_last() {
        Some((b'\r', content)) => Ok(content),
        _ if policy == BareLineEnding::Normalize => Ok(body),
        _ => Err(LineError::BareLf),
    }
}

/// Cuts a byte stream into command lines, however the bytes are split
/// across reads, and holds at most `max_line` bytes of a partial line.
///
/// A line over the limit is reported once as [`LineError::TooLong`]
/// as soon as the limit is passed; the rest of it, up to and including the
/// next LF, is discarded so the stream resynchronises on the next line.
///
/// ```
/// use session_core::{BareLineEnding, LineFramer};
///
/// let mut framer = LineFramer::new(512, BareLineEnding::Reject);
/// let mut input: &[u8] = b"NOOP\r\nQUI";
/// let (used, line) = framer.push(input);
/// assert_eq!(line, Some(Ok(&b"NOOP"[..])));
/// input = &input[used..];
/// let (used, line) = framer.push(input);
/// assert_eq!((used, line), (3, None)); // "QUI" is buffered
/// let (_, line) = framer.push(b"T\r\n");
/// assert_eq!(line, Some(Ok(&b"QUIT"[..])));
/// ```
#[derive(Debug, Clone)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_line: usize,
    line_ending: BareLineEnding,
    discarding: bool,
    clear_on_next: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max_line` octets, line end included.
    pub fn new(max_line: usize, line_ending: BareLineEnding) -> Self {
        LineFramer {
            buf: Vec::new(),
            max_line: max_line.max(2),
            line_ending,
            discarding: false,
            clear_on_next: false,
        }
    }

    /// Changes the line-ending policy for the lines still to come.
    pub fn set_line_ending(&mut self, line_ending: BareLineEnding) {
        self.line_ending = line_ending;
    }

    /// Number of bytes of an unfinished line held.
    pub fn buffered(&self) -> usize {
        if self.clear_on_next {
            0
        } else {
            self.buf.len()
        }
    }

    /// Whether the framer is between lines (nothing buffered, nothing being
    /// discarded).
    pub fn is_idle(&self) -> bool {
        self.buffered() == 0 && !self.discarding
    }

    /// Forgets any partial line (used when the stream changes meaning, e.g.
    /// after STARTTLS).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
        self.clear_on_next = false;
    }

    /// Feeds bytes. Returns how many were consumed and, when a line ended
    /// within them, that line without its line end (or the error for it).
    /// Call again with the unconsumed rest until it is empty.
    #[allow(clippy::type_complexity)]
    pub fn push<'s>(&'s mut self, input: &'s [u8]) -> (usize, Option<Result<&'s [u8], LineError>>) {
        if self.clear_on_next {
            self.buf.clear();
            self.clear_on_next = false;
        }
        let lf = memchr::memchr(b'\n', input);
        if self.discarding {
            return match lf {
                Some(i) => {
                    self.discarding = false;
                    (i + 1, None)
                }
                None => (input.len(), None),
            };
        }
        let too_long = LineError::TooLong {
            limit: self.max_line,
        };
        match lf {
            Some(i) if self.buf.len() + i + 1 > self.max_line => {
                self.buf.clear();
                (i + 1, Some(Err(too_long)))
            }
            Some(i) if self.buf.is_empty() => {
                (i + 1, Some(line_content(&input[..=i], self.line_ending)))
            }
            Some(i) => {
                self.buf.extend_from_slice(&input[..=i]);
                self.clear_on_next = true;
                (i + 1, Some(line_content(&self.buf, self.line_ending)))
            }
            None if self.buf.len() + input.len() >= self.max_line => {
                self.buf.clear();
                self.discarding = true;
                (input.len(), Some(Err(too_long)))
            }
            None => {
                self.buf.extend_from_slice(input);
                (input.len(), None)
            }
        }
    }
}
