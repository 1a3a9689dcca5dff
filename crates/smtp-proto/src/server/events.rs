//! What the server session hands to the application.

use bytes::Bytes;
use sasl::{Identity, Mechanism};
use session_core::Token;

use crate::address::{ForwardPath, ReversePath};
use crate::params::{MailParameters, RcptParameters};

/// Events, in the order the client caused them. The decisions ([`Event::Mail`],
/// [`Event::Rcpt`], [`Event::Auth`], [`Event::ScramLookup`],
/// [`Event::Message`]) carry a [`Token`]; [`Event::token`] reaches it from a
/// catch-all arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// `MAIL FROM`: accept the sender? (Default accept reply: 250 2.1.0.)
    Mail(Box<MailRequest>),
    /// `RCPT TO`: accept the recipient? (250 2.1.5.)
    Rcpt(Box<RcptRequest>),
    /// AUTH: are these credentials right? Accepting authenticates the
    /// session (235 2.7.0); reject with, say, 535 5.7.8.
    Auth(Box<AuthRequest>),
    /// AUTH SCRAM-SHA-256: pass the user's stored keys to
    /// [`super::Session::scram_credentials`] (or `None` for no such user).
    ScramLookup(Box<ScramLookup>),
    /// A piece of the message body, in order (dot-unstuffed for DATA).
    MessageData(Bytes),
    /// The whole message has arrived: store it durably, then accept (250)
    /// or reject. In LMTP mode answer per recipient with
    /// [`super::Session::respond_each`] (or accept/reject them all).
    Message(Box<MessageRequest>),
    /// The message whose data was being delivered is abandoned (error,
    /// RSET, timeout or end of stream): discard what was received.
    MessageAborted,
}

impl Event {
    /// The token of a decision event (`None` for notices).
    pub fn token(&self) -> Option<&Token> {
        match self {
            Event::Mail(m) => Some(&m.token),
            Event::Rcpt(r) => Some(&r.token),
            Event::Auth(a) => Some(&a.token),
            Event::ScramLookup(l) => Some(&l.token),
            Event::Message(m) => Some(&m.token),
            Event::MessageData(_) | Event::MessageAborted => None,
        }
    }

    /// The token of a decision event, taken out (`None` for notices): a
    /// catch-all arm can still answer what it does not know.
    pub fn into_token(self) -> Option<Token> {
        match self {
            Event::Mail(m) => Some(m.token),
            Event::Rcpt(r) => Some(r.token),
            Event::Auth(a) => Some(a.token),
            Event::ScramLookup(l) => Some(l.token),
            Event::Message(m) => Some(m.token),
            Event::MessageData(_) | Event::MessageAborted => None,
        }
    }
}

/// A `MAIL FROM` awaiting a decision.
#[derive(Debug)]
pub struct MailRequest {
    /// Answer with this.
    pub token: Token,
    /// The sender.
    pub from: ReversePath<'static>,
    /// Its parameters (only those of enabled extensions reach here).
    pub params: MailParameters<'static>,
}

/// A `RCPT TO` awaiting a decision.
#[derive(Debug)]
pub struct RcptRequest {
    /// Answer with this.
    pub token: Token,
    /// The recipient.
    pub to: ForwardPath<'static>,
    /// Its parameters.
    pub params: RcptParameters<'static>,
}

/// What an AUTH exchange established, for the application to check.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthCheck {
    /// PLAIN, LOGIN or CRAM-MD5: verify these.
    Credentials(sasl::server::Credentials),
    /// SCRAM: the client proved knowledge of the stored keys; authorise
    /// the identity (is the account enabled? may it act as the authzid?).
    Verified(Identity),
}

/// An AUTH attempt awaiting a decision.
#[derive(Debug)]
pub struct AuthRequest {
    /// Answer with this.
    pub token: Token,
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// What to check.
    pub check: AuthCheck,
}

/// SCRAM needs the stored keys of this user.
#[derive(Debug)]
pub struct ScramLookup {
    /// Answer with [`super::Session::scram_credentials`].
    pub token: Token,
    /// The user name.
    pub username: String,
    /// The authorization identity, if any.
    pub authzid: Option<String>,
}

/// An accepted recipient of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The forward path.
    pub to: ForwardPath<'static>,
    /// Its parameters.
    pub params: RcptParameters<'static>,
}

/// A complete message awaiting its verdict.
#[derive(Debug)]
pub struct MessageRequest {
    /// Answer with this.
    pub token: Token,
    /// The sender.
    pub from: ReversePath<'static>,
    /// The sender's parameters.
    pub params: MailParameters<'static>,
    /// The accepted recipients with their parameters (DSN `NOTIFY`,
    /// `ORCPT`), in RCPT order.
    pub recipients: Vec<Recipient>,
    /// Octets received.
    pub size: u64,
}
