//! Sans-IO SASL (RFC 4422) for the mail protocols: the mechanisms PLAIN
//! (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802,
//! RFC 7677), with a server side ([`server::ServerExchange`]) and a client
//! side ([`client::ClientExchange`]).
//!
//! An exchange never reads a socket, a clock or a random number generator:
//! the protocol session feeds it the client's decoded responses and sends
//! the challenges it returns; nonces come from the caller. Credentials are
//! never checked here against a user database either — the exchange hands
//! the claimed identity and password (or, for SCRAM, asks for the stored
//! keys) to the application.
//!
//! Wire encoding is the protocol's job, with the helpers [`encode`] and
//! [`decode_response`] (`*` cancels, bad base64 is an error the protocol
//! answers with 501 in SMTP).
//!
//! # Example: PLAIN, server and client
//!
//! ```
//! use sasl::client::ClientExchange;
//! use sasl::server::{Credentials, ServerExchange, ServerStep};
//! use sasl::{Mechanism, Secret};
//!
//! let mut client = ClientExchange::new(
//!     Mechanism::Plain, "tim", Secret::new("tanstaaftanstaaf".to_string()), None, b"");
//! let initial = client.initial_response().expect("PLAIN sends one");
//!
//! let mut server = ServerExchange::new(Mechanism::Plain, b"", "mx.example.org");
//! match server.start(Some(&initial)) {
//!     ServerStep::Verify(Credentials::Password { username, password, .. }) => {
//!         assert_eq!(username, "tim");
//!         assert_eq!(password.expose(), "tanstaaftanstaaf");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::fmt;

use base64::Engine;

pub mod client;
mod scram;
pub mod server;

pub use scram::ScramCredentials;

/// A value that must not leak: its `Debug` output shows nothing of it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value, for the code that must use it (a password check).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

/// The SASL mechanisms this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): identity and password in one message.
    Plain,
    /// `LOGIN`: user name and password in two messages (obsolete, widely
    /// used).
    Login,
    /// `CRAM-MD5` (RFC 2195): an HMAC-MD5 of a server challenge; the server
    /// needs the plain password.
    CramMd5,
    /// `SCRAM-SHA-256` (RFC 7677): salted challenge-response; the server
    /// stores only derived keys.
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, strongest first.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::ScramSha256,
        Mechanism::CramMd5,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Looks a mechanism up by name, ignoring case.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Whether the password crosses the wire in the clear (PLAIN, LOGIN):
    /// such mechanisms belong only on an encrypted connection.
    pub fn is_plaintext(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }

    /// Whether the client may send an initial response with the command
    /// (SASL-IR, RFC 4959 / RFC 4954).
    pub fn client_sends_first(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::ScramSha256)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an exchange failed. The protocol maps each to its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The client sent `*`.
    #[error("authentication cancelled by the client")]
    Cancelled,
    /// A response was not valid base64.
    #[error("invalid base64 in SASL response")]
    Base64,
    /// A message did not follow the mechanism's grammar.
    #[error("malformed SASL message: {0}")]
    Malformed(&'static str),
    /// The proof or the password was wrong, or the user is unknown (the
    /// two are not told apart).
    #[error("authentication failed")]
    Failed,
    /// The server's proof of knowing the password (SCRAM) was wrong: the
    /// client is not talking to the real server.
    #[error("the server could not prove its identity")]
    ServerNotVerified,
    /// The peer asked for something this implementation does not do
    /// (SCRAM channel binding, mandatory extensions).
    #[error("unsupported SASL feature: {0}")]
    Unsupported(&'static str),
    /// The exchange is over; no more messages are expected.
    #[error("the exchange is already finished")]
    Finished,
}

/// A client response line after base64 decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The client sent `*` to cancel.
    Cancel,
    /// The decoded bytes (empty for an empty line or `=`).
    Data(Vec<u8>),
}

/// Decodes a client response line (without its line end): `*` cancels, an
/// empty line or `=` is an empty response, anything else must be base64.
pub fn decode_response(line: &[u8]) -> Result<Response, SaslError> {
    match line {
        b"*" => Ok(Response::Cancel),
        b"" | b"=" => Ok(Response::Data(Vec::new())),
        _ => base64::engine::general_purpose::STANDARD
            .decode(line)
            .map(Response::Data)
            .map_err(|_| SaslError::Base64),
    }
}

/// Base64 for a challenge or a response (standard alphabet, padded).
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Who authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The authentication identity (user name).
    pub username: String,
    /// The authorization identity, if the client asked to act as someone
    /// else.
    pub authzid: Option<String>,
}

/// Compares in time independent of where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes standard padded base64.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, SaslError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| SaslError::Base64)
}
