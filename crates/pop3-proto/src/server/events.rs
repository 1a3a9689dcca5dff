//! What the POP3 server session hands to the application.

use sasl::Secret;
use session_core::Token;

/// A message of the maildrop, as the application lists it at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropEntry {
    size: u64,
    uidl: String,
}

/// A unique id that UIDL cannot send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a UIDL is 1-70 printable ASCII characters (0x21-0x7E)")]
pub struct InvalidUidl;

impl DropEntry {
    /// A message of `size` octets as RETR sends it (CRLF line ends, before
    /// byte-stuffing: [`crate::response::transfer_size`]) with the unique id
    /// `uidl` (1–70 characters 0x21–0x7E, RFC 1939 §7).
    pub fn new(size: u64, uidl: impl Into<String>) -> Result<DropEntry, InvalidUidl> {
        let uidl = uidl.into();
        if uidl.is_empty() || uidl.len() > 70 || !uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(InvalidUidl);
        }
        Ok(DropEntry { size, uidl })
    }

    /// The size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The unique id.
    pub fn uidl(&self) -> &str {
        &self.uidl
    }
}

/// What the session hands out: bytes, an [`Event`], or the transport steps
/// [`super::Output::StartTls`] and [`super::Output::Closed`].
pub type Output = session_core::Output<Event>;

/// How the client proves who it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginCheck {
    /// USER/PASS, or SASL PLAIN/LOGIN.
    Password(Secret<String>),
    /// APOP: `MD5(timestamp + password)` must equal `digest`; see
    /// [`LoginCheck::verify_apop`].
    Apop {
        /// The greeting's timestamp.
        timestamp: String,
        /// The client's digest.
        digest: String,
    },
    /// SASL CRAM-MD5.
    CramMd5(sasl::server::CramMd5Proof),
    /// SCRAM: proven; just authorise.
    Verified,
}

impl LoginCheck {
    /// For APOP: whether `password` produces the client's digest.
    pub fn verify_apop(timestamp: &str, digest: &str, password: &str) -> bool {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        h.update(timestamp.as_bytes());
        h.update(password.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        hex.len() == digest.len()
            && hex
                .bytes()
                .zip(digest.bytes())
                .fold(0, |a, (x, y)| a | (x ^ y))
                == 0
    }
}

/// Events, in order. Every one is a decision; [`Event::token`] reaches
/// its token from a catch-all arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Check the login; answer with [`super::Session::open_maildrop`] (with the
    /// snapshot of the maildrop) or [`super::Session::reject`].
    Login {
        /// Answer with this.
        token: Token,
        /// The user name.
        username: String,
        /// What to check.
        check: LoginCheck,
    },
    /// SCRAM: answer with [`super::Session::scram_credentials`].
    ScramLookup {
        /// Answer with this.
        token: Token,
        /// The user name.
        username: String,
    },
    /// RETR or TOP: answer with [`super::Session::send_message`] (the whole
    /// stored message; the session cuts TOP and byte-stuffs), or
    /// [`super::Session::reject`] if it vanished.
    Retrieve {
        /// Answer with this.
        token: Token,
        /// Index into the maildrop given at login (0-based).
        index: usize,
    },
    /// QUIT in TRANSACTION with messages marked deleted: delete them, then
    /// [`super::Session::accept`]; if that fails, [`super::Session::reject`] (nothing may
    /// be lost, RFC 1939 §6).
    Commit {
        /// Answer with this.
        token: Token,
        /// Indexes into the maildrop (0-based).
        deleted: Vec<usize>,
    },
}

impl Event {
    /// The token of the decision.
    pub fn token(&self) -> Option<&Token> {
        match self {
            Event::Login { token, .. }
            | Event::ScramLookup { token, .. }
            | Event::Retrieve { token, .. }
            | Event::Commit { token, .. } => Some(token),
        }
    }

    /// The token of the decision, taken out: a catch-all arm can still
    /// answer what it does not know.
    pub fn into_token(self) -> Option<Token> {
        match self {
            Event::Login { token, .. }
            | Event::ScramLookup { token, .. }
            | Event::Retrieve { token, .. }
            | Event::Commit { token, .. } => Some(token),
        }
    }
}
