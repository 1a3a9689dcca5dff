//! What a server session is allowed to do, and its limits.

use std::time::Duration;

use crate::address::Domain;
use crate::body::BareLineEnding;
use crate::command::LineEnding;

/// SMTP (RFC 5321) or LMTP (RFC 2033).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SMTP: HELO/EHLO, one reply to the message.
    Smtp,
    /// LMTP: LHLO, one reply per accepted recipient after the message.
    Lmtp,
}

/// The service extensions the server offers. An extension that is off is
/// neither advertised nor accepted (its parameters get 555, its commands
/// 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `CHUNKING` (RFC 3030): the BDAT command.
    pub chunking: bool,
    /// `BINARYMIME` (RFC 3030); needs `chunking`.
    pub binary_mime: bool,
    /// `DSN` (RFC 3461): RET, ENVID, NOTIFY, ORCPT.
    pub dsn: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034): the session's own replies carry
    /// enhanced codes.
    pub enhanced_status_codes: bool,
    /// `STARTTLS` (RFC 3207), offered while the link is not yet secure.
    pub starttls: bool,
    /// `REQUIRETLS` (RFC 8689), offered once the link is secure.
    pub requiretls: bool,
    /// `SIZE` (RFC 1870) with the message size limit.
    pub size: bool,
    /// `MT-PRIORITY` (RFC 6710).
    pub mt_priority: bool,
    /// `DELIVERBY` (RFC 2852).
    pub deliver_by: bool,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            pipelining: true,
            eight_bit_mime: true,
            smtputf8: true,
            chunking: true,
            binary_mime: true,
            dsn: true,
            enhanced_status_codes: true,
            starttls: true,
            requiretls: false,
            size: true,
            mt_priority: false,
            deliver_by: false,
        }
    }
}

/// Bounds on what one session may cost. There is no "unlimited".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4: 512).
    pub command_line: usize,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8: at least 100).
    pub max_recipients: usize,
    /// Largest message in octets, as received (after dot-unstuffing).
    pub max_message_size: u64,
    /// Bad commands before the session closes with 421.
    pub max_errors: u32,
    /// Failed AUTH attempts before the session closes with 421.
    pub max_auth_failures: u32,
    /// Unprocessed input held while the application decides (pipelined
    /// commands); beyond it the session closes with 421. Adapters should
    /// stop reading when [`super::Session::wants_input`] is false.
    pub max_buffered_input: usize,
    /// Transmitted replies are handed out once this many bytes are
    /// buffered, even in the middle of a pipelined batch.
    pub max_buffered_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_line: crate::DEFAULT_MAX_LINE,
            max_recipients: 100,
            max_message_size: 50 * 1024 * 1024,
            max_errors: 10,
            max_auth_failures: 3,
            max_buffered_input: 64 * 1024,
            max_buffered_output: 16 * 1024,
        }
    }
}

/// How long the server waits for the client (RFC 5321 §4.5.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for the next command (the RFC asks for at least 5 minutes).
    pub command: Duration,
    /// Waiting for more of a message body (DATA or BDAT).
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(300),
            data: Duration::from_secs(300),
        }
    }
}

/// Everything a server session needs to know; share one between sessions
/// with an `Arc`.
#[derive(Debug, Clone)]
pub struct Config {
    /// This server's name, in the greeting, EHLO reply and trace headers.
    pub hostname: Domain<'static>,
    /// Text after the name in the 220 greeting.
    pub greeting: String,
    /// SMTP or LMTP.
    pub mode: Mode,
    /// Offered extensions.
    pub extensions: Extensions,
    /// SASL mechanisms offered for AUTH (empty: no AUTH).
    pub auth_mechanisms: Vec<sasl::Mechanism>,
    /// Whether PLAIN and LOGIN may be used before TLS (default false:
    /// they are then neither offered nor accepted).
    pub allow_plaintext_auth: bool,
    /// Whether MAIL needs a successful AUTH first (submission, RFC 6409).
    pub require_auth: bool,
    /// Whether AUTH (any mechanism) is offered and accepted only on a
    /// secure link.
    pub require_tls_for_auth: bool,
    /// Whether the link is secure from the start (implicit TLS).
    pub implicit_tls: bool,
    /// Bare LF at the end of command lines.
    pub line_ending: LineEnding,
    /// Bare CR or LF inside DATA bodies.
    pub body_line_ending: BareLineEnding,
    /// Bounds.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Config {
    /// A configuration with RFC defaults for a server called `hostname`.
    pub fn new(hostname: Domain<'static>) -> Self {
        Config {
            hostname,
            greeting: "ESMTP mailkit".to_owned(),
            mode: Mode::Smtp,
            extensions: Extensions::default(),
            auth_mechanisms: Vec::new(),
            allow_plaintext_auth: false,
            require_auth: false,
            require_tls_for_auth: false,
            implicit_tls: false,
            line_ending: LineEnding::Strict,
            body_line_ending: BareLineEnding::Reject,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}
