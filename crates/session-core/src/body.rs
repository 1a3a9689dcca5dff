//! Dot-stuffed message bodies on the wire, as SMTP DATA (RFC 5321 §4.5.2)
//! and POP3 multi-line responses (RFC 1939 §3) share them: reception
//! (dot-unstuffing, strict end of data) and sending (dot-stuffing, CRLF
//! normalisation).
//!
//! Both are resumable byte state machines: feed any split of the input
//! and the output is the same. Output is appended to a caller's `BytesMut`,
//! which the caller drains (`split().freeze()`) into `Bytes` chunks, so a
//! message of any size streams through bounded memory.

use bytes::BytesMut;

use crate::line::BareLineEnding;

/// Why a received body is refused. Reported when the end of data is
/// reached, so the session is still in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// A bare CR or LF under [`BareLineEnding::Reject`].
    #[error("bare CR or LF in message body")]
    BareLineEnding,
    /// The decoded body passed the size limit.
    #[error("message larger than {limit} octets")]
    TooLarge {
        /// The limit in force.
        limit: u64,
    },
}

/// Progress of a body decoder after one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProgress {
    /// All input was consumed; the body goes on.
    NeedMore,
    /// The body ended after `consumed` bytes of this input; the bytes after
    /// them belong to the next command.
    Finished {
        /// Bytes of this call's input that belonged to the body.
        consumed: usize,
        /// Whether the body is acceptable.
        result: Result<(), BodyError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after a real CRLF, or at the very start).
    LineStart,
    /// A `.` at the start of a line.
    Dot,
    /// `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    Mid,
    /// A CR inside a line (or an empty line's CR).
    Cr,
    /// The end of data was seen.
    Done,
}

/// Decodes a DATA body: removes dot-stuffing and finds the end of data,
/// which is exactly `CRLF . CRLF` (the first CRLF may be the one ending the
/// DATA command, so `.\r\n` right after the 354 is the empty message).
///
/// ```
/// use bytes::BytesMut;
/// use session_core::{BodyProgress, DataDecoder};
///
/// let mut dec = DataDecoder::new();
/// let mut out = BytesMut::new();
/// let input = b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
/// let BodyProgress::Finished { consumed, result } = dec.decode(input, &mut out) else {
///     panic!("the end of data is in the input");
/// };
/// assert!(result.is_ok());
/// assert_eq!(&out[..], b"Subject: hi\r\n\r\n.dot\r\n");
/// assert_eq!(&input[consumed..], b"QUIT\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    policy: BareLineEnding,
    max_size: Option<u64>,
    size: u64,
    error: Option<BodyError>,
}

impl Default for DataDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDecoder {
    /// A decoder that rejects bare CR/LF and has no size limit of its own.
    pub fn new() -> Self {
        Self::with_policy(BareLineEnding::Reject, None)
    }

    /// A decoder with a bare CR/LF policy and an optional size limit on
    /// the decoded body. Once the limit is passed, the rest of the body is
    /// read and dropped, and [`BodyError::TooLarge`] is reported at its end.
    pub fn with_policy(policy: BareLineEnding, max_size: Option<u64>) -> Self {
        DataDecoder {
            state: State::LineStart,
            policy,
            max_size,
            size: 0,
            error: None,
        }
    }

    /// Decoded octets so far (including any dropped after an error).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the end of data has been seen.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    #[inline]
    fn emit(&mut self, out: &mut BytesMut, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let before = self.size;
        self.size += bytes.len() as u64;
        if self.error.is_none() {
            if let Some(limit) = self.max_size
                && self.size > limit
            {
                // Pass on exactly the first `limit` octets, however the
                // input was split, then drop the rest.
                let fits = usize::try_from(limit - before).unwrap_or(usize::MAX);
                out.extend_from_slice(&bytes[..fits.min(bytes.len())]);
                self.error = Some(BodyError::TooLarge { limit });
                return;
            }
            out.extend_from_slice(bytes);
        }
    }

    /// A bare CR or LF; returns the state to continue in.
    fn bare(&mut self, out: &mut BytesMut, prefix: &[u8]) -> State {
        match self.policy {
            BareLineEnding::Reject => {
                self.error.get_or_insert(BodyError::BareLineEnding);
            }
            BareLineEnding::Normalize => {
                self.emit(out, prefix);
                self.emit(out, b"\r\n");
            }
        }
        State::Mid
    }

    /// Feeds body bytes, appending the decoded body to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> BodyProgress {
        // Bytes input[run..i] are body bytes to copy as they are; they are
        // flushed only when the output stops being a plain copy (a stuffed
        // dot, a bare CR/LF, a CR split from its LF, the end), so ordinary
        // lines cost one memchr2 each and no copy of their own.
        let mut i = 0;
        let mut run = 0;
        let len = input.len();
        while i < len {
            match self.state {
                State::Mid => match memchr::memchr2(b'\r', b'\n', &input[i..]) {
                    None => i = len,
                    Some(j) => {
                        let k = i + j;
                        if input[k] == b'\r' && k + 1 < len && input[k + 1] == b'\n' {
                            i = k + 2;
                            self.state = State::LineStart;
                        } else {
                            self.emit(out, &input[run..k]);
                            i = k + 1;
                            run = i;
                            self.state = if input[k] == b'\r' && k + 1 == len {
                                State::Cr
                            } else {
                                self.bare(out, b"")
                            };
                        }
                    }
                },
                State::LineStart => match input[i] {
                    b'.' => {
                        self.emit(out, &input[run..i]);
                        i += 1;
                        run = i;
                        self.state = State::Dot;
                    }
                    b'\r' => {
                        self.emit(out, &input[run..i]);
                        i += 1;
                        run = i;
                        self.state = State::Cr;
                    }
                    _ => self.state = State::Mid,
                },
                State::Dot => match input[i] {
                    b'\r' => {
                        i += 1;
                        run = i;
                        self.state = State::DotCr;
                    }
                    b'\n' => {
                        i += 1;
                        run = i;
                        self.state = self.bare(out, b".");
                    }
                    // Dot-stuffing: the leading dot is dropped, the rest kept.
                    _ => self.state = State::Mid,
                },
                State::DotCr => {
                    if input[i] == b'\n' {
                        self.state = State::Done;
                        return BodyProgress::Finished {
                            consumed: i + 1,
                            result: self.error.map_or(Ok(()), Err),
                        };
                    }
                    // ". CR x": the CR is bare; `x` is read in the line.
                    self.state = self.bare(out, b".");
                }
                State::Cr => {
                    if input[i] == b'\n' {
                        self.emit(out, b"\r\n");
                        i += 1;
                        run = i;
                        self.state = State::LineStart;
                    } else {
                        self.state = self.bare(out, b"");
                    }
                }
                State::Done => {
                    return BodyProgress::Finished {
                        consumed: 0,
                        result: self.error.map_or(Ok(()), Err),
                    };
                }
            }
        }
        self.emit(out, &input[run..len]);
        if self.state == State::Done {
            return BodyProgress::Finished {
                consumed: 0,
                result: self.error.map_or(Ok(()), Err),
            };
        }
        BodyProgress::NeedMore
    }
}

/// Prepares a message for DATA: line ends become CRLF (bare CR and bare LF
/// included), lines starting with `.` get another `.`, and
/// [`DataEncoder::finish`] writes the end-of-data marker.
///
/// ```
/// use bytes::BytesMut;
/// use session_core::DataEncoder;
///
/// let mut enc = DataEncoder::new();
/// let mut out = BytesMut::new();
/// enc.encode(b"Subject: x\n\n.hidden", &mut out);
/// enc.finish(&mut out);
/// assert_eq!(&out[..], b"Subject: x\r\n\r\n..hidden\r\n.\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DataEncoder {
    line_start: bool,
    pending_cr: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataEncoder {
    /// A new encoder at the start of the message.
    pub fn new() -> Self {
        DataEncoder {
            line_start: true,
            pending_cr: false,
        }
    }

    /// Encodes a piece of the message.
    pub fn encode(&mut self, mut input: &[u8], dst: &mut BytesMut) {
        while !input.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                dst.extend_from_slice(b"\r\n");
                self.line_start = true;
                if input[0] == b'\n' {
                    input = &input[1..];
                }
                continue;
            }
            if self.line_start && input[0] == b'.' {
                dst.extend_from_slice(b".");
            }
            match memchr::memchr2(b'\r', b'\n', input) {
                None => {
                    dst.extend_from_slice(input);
                    self.line_start = false;
                    return;
                }
                Some(j) if input[j] == b'\r' && input.get(j + 1) == Some(&b'\n') => {
                    dst.extend_from_slice(&input[..j + 2]);
                    input = &input[j + 2..];
                    self.line_start = true;
                }
                Some(j) if input[j] == b'\r' => {
                    dst.extend_from_slice(&input[..j]);
                    self.pending_cr = true;
                    self.line_start = false;
                    input = &input[j + 1..];
                }
                Some(j) => {
                    dst.extend_from_slice(&input[..j]);
                    dst.extend_from_slice(b"\r\n");
                    input = &input[j + 1..];
                    self.line_start = true;
                }
            }
        }
    }

    /// Ends the message: a final CRLF if the last line lacks one, then
    /// `.` CRLF. The encoder is ready for a new message afterwards.
    pub fn finish(&mut self, dst: &mut BytesMut) {
        if self.pending_cr || !self.line_start {
            dst.extend_from_slice(b"\r\n");
        }
        dst.extend_from_slice(b".\r\n");
        *self = DataEncoder::new();
    }
}
