//! What a client session may do, and how long it waits.

use std::time::Duration;

use crate::address::Host;
use crate::ehlo::{Capability, EhloResponse};
use crate::reply::ReplyLimits;
use crate::server::Mode;

/// How long the client waits for each reply: RFC 5321 §4.5.3.2's minimums
/// by default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// The greeting (§4.5.3.2.1: 5 minutes).
    pub greeting: Duration,
    /// EHLO, HELO, LHLO, STARTTLS, AUTH, RSET, NOOP and QUIT replies. Default
    /// 5 minutes.
    pub command: Duration,
    /// The reply to MAIL (§4.5.3.2.2: 5 minutes).
    pub mail: Duration,
    /// The reply to each RCPT (§4.5.3.2.3: 5 minutes).
    pub rcpt: Duration,
    /// The 354 after DATA (§4.5.3.2.4: 2 minutes).
    pub data_init: Duration,
    /// Each write of the body (§4.5.3.2.5: 3 minutes). The session never
    /// writes itself: the program that moves its bytes applies this one to
    /// every write of the body, and to each BDAT chunk's reply.
    pub data_block: Duration,
    /// The reply after the end of the data, for each LMTP recipient
    /// (§4.5.3.2.6: 10 minutes).
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

/// What one client session may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Reply line length and line count. Default 2048 octets (servers send
    /// longer lines than RFC 5321's 512) and 128 lines.
    pub reply: ReplyLimits,
    /// Octets of pipelined commands sent and not yet answered (RFC 2920
    /// §3.1 asks for a bound so neither side deadlocks on full buffers).
    /// Default 8 KiB; commands past it wait for replies.
    pub pipeline_window: usize,
    /// BDAT chunks sent and not yet answered, when the server pipelines.
    /// Default 4.
    pub bdat_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reply: ReplyLimits {
                line: 2048,
                lines: 128,
            },
            pipeline_window: 8 * 1024,
            bdat_in_flight: 4,
        }
    }
}

/// Client settings; the defaults are in each field's documentation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The name given in EHLO/LHLO/HELO: this host's name, or an address
    /// literal.
    pub hostname: Host<'static>,
    /// SMTP or LMTP (LHLO, one reply per recipient after the data).
    /// Default [`Mode::Smtp`].
    pub mode: Mode,
    /// Use PIPELINING when the server offers it. Default true.
    pub pipelining: bool,
    /// Use CHUNKING (BDAT) when the server offers it. Default true.
    pub chunking: bool,
    /// Let PLAIN and LOGIN run without TLS. Default false: the password
    /// would cross the network in the clear.
    pub allow_plaintext_auth: bool,
    /// Bounds. Default [`Limits::default`].
    pub limits: Limits,
    /// Timeouts. Default [`Timeouts::default`].
    pub timeouts: Timeouts,
}

impl Config {
    /// SMTP with the defaults, greeting as `hostname`.
    pub fn new(hostname: Host<'static>) -> Self {
        Config {
            hostname,
            mode: Mode::Smtp,
            pipelining: true,
            chunking: true,
            allow_plaintext_auth: false,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// What the server offered in its EHLO (or LHLO) reply. After HELO, or a
/// STARTTLS that has not been followed by a new EHLO yet, nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The name the server gave.
    pub server_name: String,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `SIZE`; `Some(0)` is "no fixed limit", `Some(n)` the largest
    /// message.
    pub size: Option<u64>,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `BINARYMIME` (RFC 3030).
    pub binary_mime: bool,
    /// `CHUNKING` (RFC 3030).
    pub chunking: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `DSN` (RFC 3461).
    pub dsn: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `MT-PRIORITY` (RFC 6710).
    pub mt_priority: bool,
    /// `DELIVERBY` (RFC 2852).
    pub deliver_by: bool,
    /// `FUTURERELEASE` (RFC 4865).
    pub future_release: bool,
    /// `AUTH` mechanisms, upper case.
    pub auth: Vec<String>,
}

impl Capabilities {
    /// What an EHLO response offers.
    pub fn from_ehlo(ehlo: &EhloResponse<'_>) -> Self {
        let mut c = Capabilities {
            server_name: ehlo.domain.to_string(),
            ..Capabilities::default()
        };
        for cap in &ehlo.capabilities {
            match cap {
                Capability::Size(n) => c.size = Some(n.unwrap_or(0)),
                Capability::EightBitMime => c.eight_bit_mime = true,
                Capability::Pipelining => c.pipelining = true,
                Capability::EnhancedStatusCodes => c.enhanced_status_codes = true,
                Capability::Chunking => c.chunking = true,
                Capability::BinaryMime => c.binary_mime = true,
                Capability::SmtpUtf8 => c.smtputf8 = true,
                Capability::Dsn => c.dsn = true,
                Capability::StartTls => c.starttls = true,
                Capability::RequireTls => c.requiretls = true,
                Capability::MtPriority(_) => c.mt_priority = true,
                Capability::DeliverBy(_) => c.deliver_by = true,
                Capability::FutureRelease { .. } => c.future_release = true,
                Capability::Auth(m) => {
                    for m in m {
                        let m = m.to_ascii_uppercase();
                        if !c.auth.contains(&m) {
                            c.auth.push(m);
                        }
                    }
                }
                Capability::Unknown { .. } => {}
            }
        }
        c
    }

    /// Whether `AUTH` offers this mechanism.
    pub fn offers(&self, mechanism: sasl::Mechanism) -> bool {
        self.auth.iter().any(|m| m == mechanism.name())
    }

    /// The largest message the server takes, if it said.
    pub fn max_size(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}
