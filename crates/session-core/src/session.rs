//! The plumbing every session shares: what it hands out, decisions by token
//! with a timeout, the input it holds while a decision is pending, and the
//! [`Session`] trait that adapters drive.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

/// What a session hands to its caller, in order.
#[derive(Debug)]
pub enum Output<E> {
    /// Bytes to write to the peer.
    Transmit(Bytes),
    /// Something for the application: a decision to answer (it carries a
    /// [`Token`]) or a notice.
    Event(E),
    /// Write everything transmitted so far, run the TLS handshake on the
    /// connection (as server or client, as the session is), then call
    /// [`Session::tls_established`]. Plaintext the peer pipelined after the
    /// command has already been thrown away.
    StartTls,
    /// Write everything transmitted so far as it is; from then on compress
    /// everything written and decompress everything read (raw DEFLATE,
    /// RFC 1951, as IMAP COMPRESS=DEFLATE says: RFC 4978), flushing the
    /// compressor (a sync flush) whenever the transmitted bytes are
    /// flushed. Input the peer sent before seeing the switch has already
    /// been thrown away. Only sessions configured for it ask.
    Compress,
    /// Write everything transmitted so far and close the connection. Nothing
    /// follows.
    Closed,
}

/// `now + timeout`, or a deadline a century away when the sum does not fit
/// (a timeout of `Duration::MAX` means "never" and must not panic, nor
/// expire at once).
pub fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// A decision the application owes the session, answered by value with the
/// session's `accept`, `reject` or a decision-specific answer.
///
/// A wrong answer never loses the token: the error ([`AnswerError`]) gives
/// it back. A decision left unanswered is answered by the session itself
/// once its decision timeout passes (a temporary failure), so a forgotten
/// token cannot hang a connection.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a decision must be answered (or the session answers it on its own at the decision timeout)"]
pub struct Token {
    /// Which session's [`Decisions`] issued it.
    tag: u64,
    id: u64,
}

/// The caller used a session wrongly (never caused by network data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The token does not belong to the pending decision of this session.
    #[error("token does not match the pending decision")]
    UnknownToken,
    /// The decision timed out and the session answered it on its own.
    #[error("the decision timed out and was answered by the session")]
    Expired,
    /// This kind of answer does not fit the decision (e.g. SCRAM keys for a
    /// MAIL decision, or per-recipient replies in SMTP mode).
    #[error("this answer does not fit the pending decision")]
    WrongAnswer,
    /// Per-recipient replies whose number is not the number of recipients.
    #[error("expected one reply per recipient")]
    ReplyCount,
    /// `tls_established` without a TLS upgrade in progress.
    #[error("no TLS upgrade in progress")]
    NoStartTls,
}

/// A refused answer: what was wrong, and the token back so the decision can
/// still be answered correctly.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct AnswerError {
    /// What was wrong.
    pub error: ApiMisuse,
    /// The token, to answer again.
    pub token: Token,
}

impl AnswerError {
    /// The token, to answer again.
    pub fn into_token(self) -> Token {
        self.token
    }
}

/// The slot for one session's pending decision: issues tokens, checks
/// answers against them, and keeps the decision's deadline.
///
/// Sessions use it; applications only see its [`Token`]s.
#[derive(Debug)]
pub struct Decisions<P> {
    tag: u64,
    next_id: u64,
    expired_id: Option<u64>,
    pending: Option<(u64, Instant, P)>,
}

impl<P> Default for Decisions<P> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<P> Decisions<P> {
    /// No decision pending. `tag` (a session's random bytes) marks its
    /// tokens, so a token of another session does not fit here even when
    /// the two count their decisions alike.
    pub fn new(tag: u64) -> Self {
        Decisions {
            tag,
            next_id: 1,
            expired_id: None,
            pending: None,
        }
    }

    /// Makes `payload` the pending decision, due `timeout` after `now`.
    /// A decision still pending is replaced (sessions issue one at a time).
    pub fn issue(&mut self, now: Instant, timeout: Duration, payload: P) -> Token {
        let id = self.next_id;
        self.next_id += 1;
        let deadline = deadline_after(now, timeout);
        self.pending = Some((id, deadline, payload));
        Token { tag: self.tag, id }
    }

    /// Whether a decision is pending.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// When the pending decision times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.1)
    }

    /// The pending decision, if `token` is its token.
    pub fn get(&self, token: &Token) -> Result<&P, ApiMisuse> {
        if token.tag != self.tag {
            return Err(ApiMisuse::UnknownToken);
        }
        match &self.pending {
            Some((id, _, p)) if *id == token.id => Ok(p),
            _ if self.expired_id == Some(token.id) => Err(ApiMisuse::Expired),
            _ => Err(ApiMisuse::UnknownToken),
        }
    }

    /// Takes the pending decision if `token` is its token and `fits`
    /// accepts it; otherwise the decision stays pending and the token comes
    /// back in the error.
    pub fn take_if(
        &mut self,
        token: Token,
        fits: impl FnOnce(&P) -> Result<(), ApiMisuse>,
    ) -> Result<P, AnswerError> {
        if let Err(error) = self.get(&token).and_then(fits) {
            return Err(AnswerError { error, token });
        }
        match self.pending.take() {
            Some((_, _, p)) => Ok(p),
            None => Err(AnswerError {
                error: ApiMisuse::UnknownToken,
                token,
            }),
        }
    }

    /// [`Decisions::take_if`] for an answer that fits every decision.
    pub fn take(&mut self, token: Token) -> Result<P, AnswerError> {
        self.take_if(token, |_| Ok(()))
    }

    /// Takes the pending decision if its deadline has passed at `now`; a
    /// later answer with its token gets [`ApiMisuse::Expired`].
    pub fn expire(&mut self, now: Instant) -> Option<P> {
        match &self.pending {
            Some((id, deadline, _)) if now >= *deadline => {
                self.expired_id = Some(*id);
                self.pending.take().map(|p| p.2)
            }
            _ => None,
        }
    }

    /// Drops the pending decision (the connection is gone).
    pub fn clear(&mut self) -> Option<P> {
        self.pending.take().map(|p| p.2)
    }
}

/// The peer sent more than the session may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} octets of input held")]
pub struct Overflow {
    /// The limit in force.
    pub limit: usize,
}

/// Input a session holds unprocessed while a decision is pending. Reads
/// added on top of held input never take it past its limit
/// ([`Inbox::hold`]); the unprocessed rest of the one read that raised a
/// decision is held whole ([`Inbox::hold_rest`]), as the caller chose that
/// read's size. So it never holds more than the larger of its limit and one
/// read. Appending and consuming cost time linear in the bytes moved,
/// however the input is split.
#[derive(Debug)]
pub struct Inbox {
    buf: BytesMut,
    limit: usize,
}

impl Inbox {
    /// An empty inbox that holds at most `limit` octets.
    pub fn new(limit: usize) -> Self {
        Inbox {
            buf: BytesMut::new(),
            limit,
        }
    }

    /// Octets held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The most it holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Holds `bytes` after what is held, unless that would pass the limit
    /// (then nothing is added).
    pub fn hold(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        if self.buf.len().saturating_add(bytes.len()) > self.limit {
            return Err(Overflow { limit: self.limit });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Holds the unprocessed rest of one read. Held whole when nothing else
    /// is held (its size is the caller's read size); otherwise as
    /// [`Inbox::hold`].
    pub fn hold_rest(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.hold(bytes)
    }

    /// Takes what is held, to process it; give the unprocessed rest back
    /// with [`Inbox::put_back`].
    pub fn take(&mut self) -> BytesMut {
        std::mem::take(&mut self.buf)
    }

    /// Returns the buffer from [`Inbox::take`] after its first `used` bytes
    /// were processed.
    pub fn put_back(&mut self, mut buf: BytesMut, used: usize) {
        buf.advance(used.min(buf.len()));
        if buf.is_empty() {
            // Release the allocation of a drained buffer.
            buf = BytesMut::new();
        }
        self.buf = buf;
    }

    /// Forgets what is held (after STARTTLS, or at the close).
    pub fn clear(&mut self) {
        self.buf = BytesMut::new();
    }

    /// The one input path of a session: new `bytes` go to `run` directly
    /// when nothing is held and no decision is `waiting`, else after what is
    /// held; what `run` leaves is held (within the limits). `run` processes
    /// what it can and says how much it used.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        waiting: bool,
        run: impl FnOnce(&[u8]) -> Consumed,
    ) -> Result<(), Overflow> {
        if waiting || !self.is_empty() {
            self.hold(bytes)?;
            if !waiting {
                self.drain(run);
            }
            return Ok(());
        }
        let done = run(bytes);
        let rest = &bytes[done.used.min(bytes.len())..];
        if done.keep && !rest.is_empty() {
            self.hold_rest(rest)?;
        }
        Ok(())
    }

    /// Runs what is held through `run` (after a decision was answered),
    /// keeping what it leaves.
    pub fn drain(&mut self, run: impl FnOnce(&[u8]) -> Consumed) {
        if self.is_empty() {
            return;
        }
        let held = self.take();
        let done = run(&held);
        if done.keep {
            self.put_back(held, done.used);
        } else {
            self.clear();
        }
    }
}

/// What a session's input processing reports to [`Inbox::feed`] and
/// [`Inbox::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    /// Bytes processed (the rest waits for a decision).
    pub used: usize,
    /// Whether the rest is still input: false once the session closed or
    /// started TLS, when it is thrown away.
    pub keep: bool,
}

/// The verbs every mailkit session has, server or client, SMTP, LMTP, POP3
/// or IMAP, so one adapter drives any of them.
///
/// The one rule for callers: after any `handle_*` call or any answer to a
/// decision, call [`Session::poll_output`] until it returns `None`, then read
/// [`Session::poll_timeout`] and call [`Session::handle_timeout`] when that
/// instant comes. Read from the peer only while [`Session::wants_input`].
pub trait Session {
    /// The application events of this session.
    type Event;

    /// Bytes read from the peer.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]);
    /// The peer closed its side.
    fn handle_eof(&mut self, now: Instant);
    /// Time passed; call at (or after) [`Session::poll_timeout`].
    fn handle_timeout(&mut self, now: Instant);
    /// The next output, until `None`.
    fn poll_output(&mut self) -> Option<Output<Self::Event>>;
    /// When [`Session::handle_timeout`] should next be called: the idle
    /// timeout, or the deadline of a pending decision. `None` once closed.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether to read more from the peer: false once closed, and while a
    /// decision is pending with input already held.
    fn wants_input(&self) -> bool;
    /// Whether the session is over (after [`Output::Closed`]).
    fn is_closed(&self) -> bool;
    /// The TLS handshake asked for by [`Output::StartTls`] completed.
    fn tls_established(&mut self, now: Instant) -> Result<(), ApiMisuse>;
}

/// Implements [`Session`] for a session type by forwarding to its inherent
/// methods of the same names (every mailkit session has them, so callers
/// need no trait import), for the event type given.
///
/// ```ignore
/// session_core::forward_session!(Session, Event);
/// ```
#[macro_export]
macro_rules! forward_session {
    ($session:ty, $event:ty) => {
        impl $crate::Session for $session {
            type Event = $event;

            fn handle_input(&mut self, now: ::std::time::Instant, bytes: &[u8]) {
                <$session>::handle_input(self, now, bytes);
            }
            fn handle_eof(&mut self, now: ::std::time::Instant) {
                <$session>::handle_eof(self, now);
            }
            fn handle_timeout(&mut self, now: ::std::time::Instant) {
                <$session>::handle_timeout(self, now);
            }
            fn poll_output(&mut self) -> Option<$crate::Output<$event>> {
                <$session>::poll_output(self)
            }
            fn poll_timeout(&self) -> Option<::std::time::Instant> {
                <$session>::poll_timeout(self)
            }
            fn wants_input(&self) -> bool {
                <$session>::wants_input(self)
            }
            fn is_closed(&self) -> bool {
                <$session>::is_closed(self)
            }
            fn tls_established(
                &mut self,
                now: ::std::time::Instant,
            ) -> Result<(), $crate::ApiMisuse> {
                <$session>::tls_established(self, now)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_answer_gives_the_token_back_and_keeps_the_decision() {
        let now = Instant::now();
        let mut d: Decisions<&str> = Decisions::new(7);
        let t = d.issue(now, Duration::from_secs(5), "mail");
        let e = d.take_if(t, |_| Err(ApiMisuse::WrongAnswer)).unwrap_err();
        assert_eq!(e.error, ApiMisuse::WrongAnswer);
        assert!(d.is_pending());
        assert_eq!(d.take(e.into_token()), Ok("mail"));
        assert!(!d.is_pending() && d.deadline().is_none());
    }

    #[test]
    fn tokens_of_other_decisions_do_not_fit() {
        let now = Instant::now();
        let mut a: Decisions<u8> = Decisions::new(1);
        let mut b: Decisions<u8> = Decisions::new(2);
        let ta = a.issue(now, Duration::from_secs(1), 1);
        let tb = b.issue(now, Duration::from_secs(1), 2);
        // Both are the first decision of their session, yet do not mix.
        let e = a.take(tb).unwrap_err();
        assert_eq!(e.error, ApiMisuse::UnknownToken);
        let e2 = b.take(ta).unwrap_err();
        assert_eq!(a.take(e2.token), Ok(1));
        assert_eq!(b.take(e.token), Ok(2));
    }

    #[test]
    fn decisions_expire_at_their_deadline() {
        let now = Instant::now();
        let mut d: Decisions<&str> = Decisions::new(3);
        let t = d.issue(now, Duration::from_secs(10), "rcpt");
        assert_eq!(d.deadline(), Some(now + Duration::from_secs(10)));
        assert_eq!(d.expire(now + Duration::from_secs(9)), None);
        assert_eq!(d.expire(now + Duration::from_secs(10)), Some("rcpt"));
        assert_eq!(d.take(t).unwrap_err().error, ApiMisuse::Expired);
        // A huge timeout neither panics nor expires at once.
        let _t = d.issue(now, Duration::MAX, "x");
        assert!(
            d.deadline()
                .is_some_and(|t| t > now + Duration::from_secs(3600))
        );
        assert_eq!(d.expire(now + Duration::from_secs(3600)), None);
    }

    #[test]
    fn the_inbox_is_bounded_but_holds_one_read_whole() {
        let mut i = Inbox::new(8);
        assert_eq!(i.hold(b"0123456789"), Err(Overflow { limit: 8 }));
        assert!(i.is_empty());
        i.hold_rest(b"0123456789").unwrap();
        assert_eq!(i.len(), 10);
        assert!(
            i.hold(b"x").is_err(),
            "nothing on top of an over-full inbox"
        );
        let buf = i.take();
        i.put_back(buf, 7);
        assert_eq!(i.len(), 3);
        i.hold(b"abcde").unwrap();
        assert_eq!(&i.take()[..], b"789abcde");
        i.clear();
        assert!(i.is_empty() && i.limit() == 8);
    }
}
