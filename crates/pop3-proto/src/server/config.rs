//! What a POP3 server session may do, its limits and its timeouts.

use std::time::Duration;

use sasl::Mechanism;
use session_core::BareLineEnding;

use crate::command::MAX_COMMAND_LINE;

/// What one session may cost. There is no "unlimited".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line, CRLF included. Default 255 (RFC 2449 §4).
    pub command_line: usize,
    /// Errors the client may make (unknown or malformed commands, commands
    /// out of state, missing messages) before the session closes. Default
    /// 10.
    pub max_errors: u32,
    /// Failed logins before the session closes. Default 3.
    pub max_auth_failures: u32,
    /// Unprocessed input held while the application decides: a read on
    /// top of held input that would pass it closes the session (the rest of
    /// the one read that raised the decision is held whole). Default 64 KiB.
    pub max_buffered_input: usize,
    /// Responses are handed out once this many bytes are buffered, even in
    /// the middle of a pipelined batch. Default 16 KiB.
    pub max_buffered_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_line: MAX_COMMAND_LINE,
            max_errors: 10,
            max_auth_failures: 3,
            max_buffered_input: 64 * 1024,
            max_buffered_output: 16 * 1024,
        }
    }
}

/// How long the server waits for the client and for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Inactivity autologout. Default 10 minutes (RFC 1939 §3: at least
    /// 10 minutes).
    pub command: Duration,
    /// Waiting for the application to answer a decision; then the session
    /// answers `-ERR [SYS/TEMP]` on its own and a late answer gets
    /// [`super::ApiMisuse::Expired`]. Default 2 minutes.
    pub decision: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(600),
            decision: Duration::from_secs(120),
        }
    }
}

/// Server settings; share one between sessions with an `Arc`. Build it with
/// [`Config::new`] and change the fields you need; the defaults are in each
/// field's documentation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Host name for the APOP timestamp and SASL.
    pub hostname: String,
    /// Whether the link is secure from the start (port 995). Default false.
    pub implicit_tls: bool,
    /// Whether STLS is offered. Default true.
    pub stls: bool,
    /// Whether USER/PASS and plaintext SASL work before TLS. Default false.
    pub allow_plaintext_auth: bool,
    /// Whether APOP is offered (needs the plain password on the server).
    /// Default false.
    pub apop: bool,
    /// SASL mechanisms for AUTH. Default SCRAM-SHA-256 and PLAIN.
    pub auth_mechanisms: Vec<Mechanism>,
    /// A command line ending in a bare LF. Default
    /// [`BareLineEnding::Reject`].
    pub line_ending: BareLineEnding,
    /// Bounds. Default [`Limits::default`].
    pub limits: Limits,
    /// Timeouts. Default [`Timeouts::default`].
    pub timeouts: Timeouts,
}

impl Config {
    /// Defaults for a server called `hostname`.
    pub fn new(hostname: impl Into<String>) -> Config {
        Config {
            hostname: hostname.into(),
            implicit_tls: false,
            stls: true,
            allow_plaintext_auth: false,
            apop: false,
            auth_mechanisms: vec![Mechanism::ScramSha256, Mechanism::Plain],
            line_ending: BareLineEnding::Reject,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}
