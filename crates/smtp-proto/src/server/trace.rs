//! The `Received:` trace header (RFC 5321 §4.4, protocol names RFC 3848
//! and RFC 6531).

use std::net::IpAddr;

use super::{HeloKind, Session};
use crate::address::ForwardPath;

/// What the application knows about the connection that the session does
/// not: the peer's address, the time, the TLS parameters.
#[derive(Debug, Clone, Default)]
pub struct TraceInfo<'a> {
    /// The client's IP address.
    pub remote_ip: Option<IpAddr>,
    /// The client's name from reverse DNS, if verified.
    pub remote_name: Option<&'a str>,
    /// The local message id.
    pub id: Option<&'a str>,
    /// TLS details as mail readers know them, e.g. `"TLSv1.3 with cipher
    /// TLS_AES_256_GCM_SHA384"`; the header says `(using …)`.
    pub tls: Option<&'a str>,
    /// The single recipient, when there is one to name.
    pub recipient: Option<&'a ForwardPath<'a>>,
    /// The date-time (RFC 5322 `date-time`), e.g.
    /// `"Thu, 26 Nov 2026 08:04:12 +0000"`.
    pub date: &'a str,
}

/// Printable ASCII without the characters that open or close a comment,
/// a quoted string, an address or a domain literal, escape, or end the
/// clauses: safe as a token and inside a comment.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| {
            c.is_ascii_graphic()
                && !matches!(c, '(' | ')' | '\\' | ';' | '"' | '<' | '>' | '[' | ']')
        })
        .collect()
}

pub(super) fn received(session: &Session, info: &TraceInfo<'_>) -> String {
    let kind = session.helo.as_ref().map(|h| h.0);
    // During the message's decision its transaction has moved into the
    // event; the session keeps whether it was SMTPUTF8.
    let utf8 = session
        .transaction
        .as_ref()
        .map_or(session.message_smtputf8, |t| t.params.smtputf8);
    let base = match (kind, utf8) {
        (Some(HeloKind::Lhlo), true) => "UTF8LMTP",
        (Some(HeloKind::Lhlo), false) => "LMTP",
        (Some(HeloKind::Ehlo), true) => "UTF8SMTP",
        (Some(HeloKind::Ehlo), false) => "ESMTP",
        _ => "SMTP",
    };
    let mut with = base.to_owned();
    if base != "SMTP" {
        if session.tls {
            with.push('S');
        }
        if session.identity.is_some() {
            with.push('A');
        }
    }
    let helo = session
        .helo
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |h| h.1.to_string());
    let mut comment = Vec::new();
    // A detail that cleans to nothing is left out, not written empty.
    if let Some(n) = info.remote_name.map(clean).filter(|n| !n.is_empty()) {
        comment.push(n);
    }
    if let Some(ip) = info.remote_ip {
        comment.push(match ip {
            IpAddr::V4(a) => format!("[{a}]"),
            IpAddr::V6(a) => format!("[IPv6:{a}]"),
        });
    }
    let mut parts = vec![format!("from {helo}")];
    if !comment.is_empty() {
        parts.push(format!("({})", comment.join(" ")));
    }
    parts.push(format!("by {}", session.config.hostname));
    if let Some(tls) = info.tls.map(clean_spaces).filter(|t| !t.is_empty()) {
        parts.push(format!("(using {tls})"));
    }
    parts.push(format!("with {with}"));
    if let Some(user) = session.identity.as_ref() {
        // RFC 3848 leaves the comment free; name the user for the audit trail.
        parts.push(format!("(authenticated as {})", clean(&user.username)));
    }
    if let Some(id) = info.id.map(clean).filter(|i| !i.is_empty()) {
        parts.push(format!("id {id}"));
    }
    if let Some(r) = info.recipient {
        let mut b = bytes::BytesMut::new();
        r.encode(&mut b);
        parts.push(format!("for {}", String::from_utf8_lossy(&b)));
    }
    // Fold before each clause once the line would pass 78 characters.
    let mut out = String::from("Received:");
    let mut line_len = out.len();
    for p in parts {
        if line_len + 1 + p.len() > 78 && line_len > 9 {
            out.push_str("\r\n\t");
            line_len = 1;
        } else {
            out.push(' ');
            line_len += 1;
        }
        line_len += p.len();
        out.push_str(&p);
    }
    out.push(';');
    let date = clean_spaces(info.date);
    if line_len + 1 + date.len() > 78 && !date.is_empty() {
        out.push_str("\r\n\t");
    } else {
        out.push(' ');
    }
    out.push_str(&date);
    out.push_str("\r\n");
    out
}

fn clean_spaces(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_graphic() || matches!(c, '(' | ')' | '\\'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
