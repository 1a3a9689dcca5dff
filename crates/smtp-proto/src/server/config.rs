//! What a server session is allowed to do, and its limits.

use std::time::Duration;

use session_core::BareLineEnding;

use crate::address::Domain;

/// SMTP (RFC 5321) or LMTP (RFC 2033).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// SMTP: HELO/EHLO, one reply to the message.
    Smtp,
    /// LMTP: LHLO, one reply per accepted recipient after the message.
    Lmtp,
}

/// The service extensions the server offers. An extension that is off is
/// neither advertised nor accepted (its parameters get 555, its commands
/// 500). Defaults are in each field's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extensions {
    /// `PIPELINING` (RFC 2920). Default: on.
    pub pipelining: bool,
    /// `8BITMIME` (RFC 6152). Default: on.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531). Default: on.
    pub smtputf8: bool,
    /// `CHUNKING` (RFC 3030): the BDAT command. Default: on.
    pub chunking: bool,
    /// `BINARYMIME` (RFC 3030); needs `chunking`. Default: on.
    pub binary_mime: bool,
    /// `DSN` (RFC 3461): RET, ENVID, NOTIFY, ORCPT. Default: on.
    pub dsn: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034): the session's own replies carry
    /// enhanced codes. Default: on.
    pub enhanced_status_codes: bool,
    /// `STARTTLS` (RFC 3207), offered while the link is not yet secure. Default: on.
    pub starttls: bool,
    /// `REQUIRETLS` (RFC 8689), offered once the link is secure. Default: off.
    pub requiretls: bool,
    /// `SIZE` (RFC 1870) with the message size limit. Default: on.
    pub size: bool,
    /// `MT-PRIORITY` (RFC 6710). Default: off.
    pub mt_priority: bool,
    /// `DELIVERBY` (RFC 2852). Default: off.
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
#[non_exhaustive]
pub struct Limits {
    /// Longest command line, CRLF included. Default 512 (RFC 5321
    /// §4.5.3.1.4).
    pub command_line: usize,
    /// Recipients per transaction. Default 100 (RFC 5321 §4.5.3.1.8: at
    /// least 100).
    pub max_recipients: usize,
    /// Largest message in octets, as received (after dot-unstuffing).
    /// Default 50 MiB.
    pub max_message_size: u64,
    /// Errors the client may make (syntax, sequencing, refused parameters,
    /// failed AUTH) before the session closes with 421. Default 10.
    pub max_errors: u32,
    /// Failed AUTH attempts before the session closes with 421. Default 3.
    pub max_auth_failures: u32,
    /// Unprocessed input held while the application decides (pipelined
    /// commands): a read on top of held input that would pass it closes the
    /// session with 421. The rest of the one read that raised the decision
    /// is held whole, so at most the larger of this and one read is held.
    /// Default 64 KiB. The session stops wanting input
    /// ([`super::Session::wants_input`]) while a decision is pending with
    /// input held, so an adapter that honours it never reaches the limit.
    pub max_buffered_input: usize,
    /// Transmitted replies are handed out once this many bytes are
    /// buffered, even in the middle of a pipelined batch. Default 16 KiB.
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

/// How long the server waits for the client (RFC 5321 §4.5.3.2) and for
/// the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the next command. Default 5 minutes (the RFC's minimum).
    pub command: Duration,
    /// Waiting for more of a message body (DATA or BDAT). Default 5
    /// minutes.
    pub data: Duration,
    /// Waiting for the application to answer a decision. When it passes,
    /// the session answers on its own with 451 4.3.0 (454 4.7.0 for AUTH),
    /// goes on with the next command, and a late answer gets
    /// [`crate::server::ApiMisuse::Expired`]. Default 2 minutes (well
    /// inside the 10 minutes a client waits after the end of data, RFC 5321
    /// §4.5.3.2.6).
    pub decision: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(300),
            data: Duration::from_secs(300),
            decision: Duration::from_secs(120),
        }
    }
}

/// Everything a server session needs to know; share one between sessions
/// with an `Arc`. Build it with [`Config::new`] and change the fields you
/// need; the defaults are in each field's documentation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// This server's name, in the greeting, EHLO reply and trace headers.
    pub hostname: Domain<'static>,
    /// Text after the name in the 220 greeting. Default `ESMTP mailkit`.
    pub greeting: String,
    /// SMTP or LMTP. Default [`Mode::Smtp`].
    pub mode: Mode,
    /// Offered extensions. Default [`Extensions::default`].
    pub extensions: Extensions,
    /// SASL mechanisms offered for AUTH (empty: no AUTH). Default empty.
    pub auth_mechanisms: Vec<sasl::Mechanism>,
    /// Whether PLAIN and LOGIN may be used before TLS. Default false: they
    /// are then neither offered nor accepted.
    pub allow_plaintext_auth: bool,
    /// Whether MAIL needs a successful AUTH first (submission, RFC 6409).
    /// Default false.
    pub require_auth: bool,
    /// Whether AUTH (any mechanism) is offered and accepted only on a
    /// secure link. Default false.
    pub require_tls_for_auth: bool,
    /// Whether the link is secure from the start (implicit TLS). Default
    /// false.
    pub implicit_tls: bool,
    /// A bare LF at the end of a command line. Default
    /// [`BareLineEnding::Reject`] (500).
    pub line_ending: BareLineEnding,
    /// A bare CR or LF inside a DATA body. Default
    /// [`BareLineEnding::Reject`] (550 at the end of data).
    pub body_line_ending: BareLineEnding,
    /// Bounds. Default [`Limits::default`].
    pub limits: Limits,
    /// Timeouts. Default [`Timeouts::default`].
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
            line_ending: BareLineEnding::Reject,
            body_line_ending: BareLineEnding::Reject,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}
