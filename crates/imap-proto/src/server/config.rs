//! What a server session is configured with.

use std::time::Duration;

/// Limits that keep one connection's memory and the server's work bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command text, literals excluded. Default 64 KiB.
    pub max_command: usize,
    /// Largest literal in a command other than an APPEND message (LOGIN
    /// passwords, SEARCH strings, mailbox names). Default 64 KiB.
    pub max_literal: u64,
    /// Largest APPEND message, advertised as `APPENDLIMIT`. Default 50 MiB.
    pub max_append: u64,
    /// Pipelined input held while a decision is pending. Default 256 KiB.
    pub max_buffered_input: usize,
    /// Output buffered before it is handed out. Default 64 KiB.
    pub max_buffered_output: usize,
    /// Bad commands before login that end the connection with BYE.
    /// Default 10.
    pub max_errors: u32,
    /// Failed logins that end the connection with BYE. Default 3.
    pub max_auth_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_command: 64 * 1024,
            max_literal: 64 * 1024,
            max_append: 50 * 1024 * 1024,
            max_buffered_input: 256 * 1024,
            max_buffered_output: 64 * 1024,
            max_errors: 10,
            max_auth_failures: 3,
        }
    }
}

/// Timers, all driven by the caller through `handle_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Autologout before login. Default 60 s.
    pub login: Duration,
    /// Autologout after login (RFC 9051 §5.4: at least 30 minutes).
    /// Default 30 min.
    pub autologout: Duration,
    /// The longest IDLE (RFC 2177 asks clients to re-issue it within 29
    /// minutes). Default 30 min.
    pub idle: Duration,
    /// How often `* OK Still here` is sent during IDLE, so NAT boxes keep
    /// the connection. Default 2 min.
    pub idle_keepalive: Duration,
    /// How long a decision may stay pending before the session answers
    /// `NO [UNAVAILABLE]` itself. Default 120 s.
    pub decision: Duration,
    /// Delay before the `NO` of a failed login, times the failures so far.
    /// Default 1 s.
    pub auth_failure_delay: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            login: Duration::from_secs(60),
            autologout: Duration::from_secs(30 * 60),
            idle: Duration::from_secs(30 * 60),
            idle_keepalive: Duration::from_secs(120),
            decision: Duration::from_secs(120),
            auth_failure_delay: Duration::from_secs(1),
        }
    }
}

/// The session's configuration: [`Config::new`], then change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Named in the greeting.
    pub hostname: String,
    /// Limits.
    pub limits: Limits,
    /// Timers.
    pub timeouts: Timeouts,
    /// STARTTLS is offered (the caller has a certificate).
    pub starttls: bool,
    /// The connection is TLS from the first byte (port 993).
    pub implicit_tls: bool,
    /// COMPRESS=DEFLATE (RFC 4978) is offered after login: the socket loop
    /// carries out [`session_core::Output::Compress`].
    pub compress: bool,
    /// LOGIN and AUTHENTICATE PLAIN before TLS (LOGINDISABLED otherwise).
    pub allow_plaintext_auth: bool,
    /// SASL mechanisms offered after TLS (or always, with
    /// `allow_plaintext_auth`). Default PLAIN and SCRAM-SHA-256.
    pub mechanisms: Vec<sasl::Mechanism>,
    /// Capabilities of the application after login, beyond those the
    /// session implements itself (e.g. `UIDPLUS`, `MOVE`, `LIST-EXTENDED`,
    /// `SPECIAL-USE`, `LIST-STATUS`, `STATUS=SIZE`, `CHILDREN`). Advertise
    /// only what the application answers.
    pub capabilities: Vec<String>,
    /// The server's ID (RFC 2971) fields.
    pub id: Vec<(String, String)>,
}

impl Config {
    /// The defaults for a server called `hostname`.
    pub fn new(hostname: impl Into<String>) -> Config {
        Config {
            hostname: hostname.into(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            starttls: false,
            compress: false,
            implicit_tls: false,
            allow_plaintext_auth: false,
            mechanisms: vec![sasl::Mechanism::Plain, sasl::Mechanism::ScramSha256],
            capabilities: Vec::new(),
            id: vec![("name".into(), "mailkit".into())],
        }
    }
}
