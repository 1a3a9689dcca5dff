//! The EHLO/LHLO response as a typed capability list (RFC 5321 §4.1.1.1).

use std::borrow::Cow;

use bytes::BytesMut;

use crate::params::Keyword;
use crate::reply::{EnhancedCode, Reply, ReplyCode};

/// One service extension advertised in an EHLO response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability<'a> {
    /// `SIZE [max]` (RFC 1870); `None` when no number is given, `Some(0)`
    /// means no fixed limit.
    Size(Option<u64>),
    /// `8BITMIME` (RFC 6152)
    EightBitMime,
    /// `PIPELINING` (RFC 2920)
    Pipelining,
    /// `ENHANCEDSTATUSCODES` (RFC 2034)
    EnhancedStatusCodes,
    /// `CHUNKING` (RFC 3030)
    Chunking,
    /// `BINARYMIME` (RFC 3030)
    BinaryMime,
    /// `SMTPUTF8` (RFC 6531)
    SmtpUtf8,
    /// `DSN` (RFC 3461)
    Dsn,
    /// `STARTTLS` (RFC 3207)
    StartTls,
    /// `AUTH mech…` (RFC 4954)
    Auth(Vec<Cow<'a, str>>),
    /// `REQUIRETLS` (RFC 8689)
    RequireTls,
    /// `MT-PRIORITY [profile]` (RFC 6710)
    MtPriority(Option<Cow<'a, str>>),
    /// `DELIVERBY [min-seconds]` (RFC 2852)
    DeliverBy(Option<u64>),
    /// `FUTURERELEASE max-interval max-datetime` (RFC 4865)
    FutureRelease {
        /// Longest hold in seconds.
        max_interval: u64,
        /// Latest release date-time.
        max_datetime: Cow<'a, str>,
    },
    /// Any other keyword, with its space-separated parameters.
    Unknown {
        /// The keyword as sent.
        keyword: Cow<'a, str>,
        /// The parameters.
        params: Vec<Cow<'a, str>>,
    },
}

/// A parsed EHLO response: the server's name, its greeting text and its
/// capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EhloResponse<'a> {
    /// The server's name (first word of the first line).
    pub domain: Cow<'a, str>,
    /// The rest of the first line, if any.
    pub greeting: Option<Cow<'a, str>>,
    /// The extensions, in order.
    pub capabilities: Vec<Capability<'a>>,
}

/// Why a reply is not a usable EHLO response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EhloError {
    /// The reply code is not 250.
    #[error("EHLO reply is not 250")]
    NotPositive,
    /// The first line has no domain, or a line has no keyword, or a word is
    /// not printable.
    #[error("malformed EHLO response")]
    Syntax,
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b))
}

fn is_keyword(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl<'a> Capability<'a> {
    fn parse(line: &'a str) -> Result<Self, EhloError> {
        let mut words = line.split(' ');
        let keyword = words.next().unwrap_or("");
        if !is_keyword(keyword) {
            return Err(EhloError::Syntax);
        }
        let params: Vec<&'a str> = words.collect();
        if !params.iter().all(|p| is_word(p)) {
            return Err(EhloError::Syntax);
        }
        let upper = Keyword::of(keyword);
        let cap = match (upper.as_str(), params.as_slice()) {
            ("SIZE", []) => Capability::Size(None),
            ("SIZE", [n]) if number(n).is_some() => Capability::Size(number(n)),
            ("8BITMIME", []) => Capability::EightBitMime,
            ("PIPELINING", []) => Capability::Pipelining,
            ("ENHANCEDSTATUSCODES", []) => Capability::EnhancedStatusCodes,
            ("CHUNKING", []) => Capability::Chunking,
            ("BINARYMIME", []) => Capability::BinaryMime,
            ("SMTPUTF8", []) => Capability::SmtpUtf8,
            ("DSN", []) => Capability::Dsn,
            ("STARTTLS", []) => Capability::StartTls,
            ("REQUIRETLS", []) => Capability::RequireTls,
            ("AUTH", mechs) => Capability::Auth(mechs.iter().map(|m| Cow::Borrowed(*m)).collect()),
            ("MT-PRIORITY", []) => Capability::MtPriority(None),
            ("MT-PRIORITY", [p]) => Capability::MtPriority(Some(Cow::Borrowed(*p))),
            ("DELIVERBY", []) => Capability::DeliverBy(None),
            ("DELIVERBY", [n]) if number(n).is_some() => Capability::DeliverBy(number(n)),
            ("FUTURERELEASE", [i, d]) if number(i).is_some() => Capability::FutureRelease {
                max_interval: number(i).unwrap_or(0),
                max_datetime: Cow::Borrowed(*d),
            },
            _ => Capability::Unknown {
                keyword: Cow::Borrowed(keyword),
                params: params.into_iter().map(Cow::Borrowed).collect(),
            },
        };
        Ok(cap)
    }

    fn to_line(&self) -> String {
        let simple = |k: &str, v: Option<String>| match v {
            Some(v) => format!("{k} {v}"),
            None => k.to_owned(),
        };
        match self {
            Capability::Size(n) => simple("SIZE", n.map(|n| n.to_string())),
            Capability::EightBitMime => "8BITMIME".into(),
            Capability::Pipelining => "PIPELINING".into(),
            Capability::EnhancedStatusCodes => "ENHANCEDSTATUSCODES".into(),
            Capability::Chunking => "CHUNKING".into(),
            Capability::BinaryMime => "BINARYMIME".into(),
            Capability::SmtpUtf8 => "SMTPUTF8".into(),
            Capability::Dsn => "DSN".into(),
            Capability::StartTls => "STARTTLS".into(),
            Capability::RequireTls => "REQUIRETLS".into(),
            Capability::Auth(m) => {
                let mut s = String::from("AUTH");
                for m in m {
                    s.push(' ');
                    s.push_str(m);
                }
                s
            }
            Capability::MtPriority(p) => simple("MT-PRIORITY", p.as_ref().map(|p| p.to_string())),
            Capability::DeliverBy(n) => simple("DELIVERBY", n.map(|n| n.to_string())),
            Capability::FutureRelease {
                max_interval,
                max_datetime,
            } => format!("FUTURERELEASE {max_interval} {max_datetime}"),
            Capability::Unknown { keyword, params } => {
                let mut s = keyword.to_string();
                for p in params {
                    s.push(' ');
                    s.push_str(p);
                }
                s
            }
        }
    }

    fn is_valid(&self) -> bool {
        match self {
            Capability::Auth(m) => m.iter().all(|m| is_word(m)),
            Capability::MtPriority(Some(p)) => is_word(p),
            Capability::FutureRelease { max_datetime, .. } => is_word(max_datetime),
            Capability::Unknown { keyword, params } => {
                is_keyword(keyword) && params.iter().all(|p| is_word(p))
            }
            _ => true,
        }
    }
}

impl<'a> EhloResponse<'a> {
    /// Reads an EHLO response out of a parsed reply.
    pub fn from_reply(reply: &Reply<'a>) -> Result<Self, EhloError> {
        if reply.code().get() != 250 {
            return Err(EhloError::NotPositive);
        }
        if reply.enhanced().is_some() {
            // The first line starts with the server's name, never with an
            // enhanced status code (RFC 2034 §3).
            return Err(EhloError::Syntax);
        }
        let lines = reply.lines();
        let first: &Cow<'a, str> = &lines[0];
        let (domain, greeting) = split_first(first);
        if domain.is_empty() {
            return Err(EhloError::Syntax);
        }
        let mut capabilities = Vec::with_capacity(lines.len() - 1);
        for line in &lines[1..] {
            // An empty last line ("250 ") is sent by some servers (Postfix's
            // smtp-sink): it offers nothing and is skipped.
            if line.trim().is_empty() {
                continue;
            }
            capabilities.push(match line {
                Cow::Borrowed(l) => Capability::parse(l)?,
                Cow::Owned(l) => Capability::parse(l)?.into_owned(),
            });
        }
        Ok(EhloResponse {
            domain,
            greeting,
            capabilities,
        })
    }

    /// Whether any advertised capability satisfies `f`, e.g.
    /// `ehlo.has(|c| matches!(c, Capability::Pipelining))`.
    pub fn has(&self, f: impl Fn(&Capability<'a>) -> bool) -> bool {
        self.capabilities.iter().any(f)
    }

    /// Builds the 250 reply. Fails when a value is not a printable word, or
    /// the domain would read back as an enhanced status code.
    pub fn to_reply(&self) -> Option<Reply<'static>> {
        if !is_word(&self.domain)
            || self
                .greeting
                .as_ref()
                .is_some_and(|g| g.chars().any(char::is_control))
            || !self.capabilities.iter().all(Capability::is_valid)
        {
            return None;
        }
        if EnhancedCode::parse_prefix(&self.domain).is_some() {
            // "2.1.1" as a name would read back as an enhanced status code.
            return None;
        }
        let mut lines: Vec<Cow<'static, str>> = Vec::with_capacity(self.capabilities.len() + 1);
        lines.push(Cow::Owned(match &self.greeting {
            Some(g) => format!("{} {}", self.domain, g),
            None => self.domain.to_string(),
        }));
        lines.extend(self.capabilities.iter().map(|c| Cow::Owned(c.to_line())));
        Reply::with_lines(ReplyCode::new(250)?, None, lines).ok()
    }

    /// Writes the reply. Fails (writes nothing) when a value is invalid.
    pub fn encode(&self, dst: &mut BytesMut) -> bool {
        match self.to_reply() {
            Some(r) => {
                r.encode(dst);
                true
            }
            None => false,
        }
    }
}

impl Capability<'_> {
    fn into_owned(self) -> Capability<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        match self {
            Capability::Size(n) => Capability::Size(n),
            Capability::EightBitMime => Capability::EightBitMime,
            Capability::Pipelining => Capability::Pipelining,
            Capability::EnhancedStatusCodes => Capability::EnhancedStatusCodes,
            Capability::Chunking => Capability::Chunking,
            Capability::BinaryMime => Capability::BinaryMime,
            Capability::SmtpUtf8 => Capability::SmtpUtf8,
            Capability::Dsn => Capability::Dsn,
            Capability::StartTls => Capability::StartTls,
            Capability::RequireTls => Capability::RequireTls,
            Capability::Auth(m) => Capability::Auth(m.into_iter().map(own).collect()),
            Capability::MtPriority(p) => Capability::MtPriority(p.map(own)),
            Capability::DeliverBy(n) => Capability::DeliverBy(n),
            Capability::FutureRelease {
                max_interval,
                max_datetime,
            } => Capability::FutureRelease {
                max_interval,
                max_datetime: own(max_datetime),
            },
            Capability::Unknown { keyword, params } => Capability::Unknown {
                keyword: own(keyword),
                params: params.into_iter().map(own).collect(),
            },
        }
    }
}

fn split_first<'a>(line: &Cow<'a, str>) -> (Cow<'a, str>, Option<Cow<'a, str>>) {
    match line {
        Cow::Borrowed(l) => {
            let l: &'a str = l;
            match l.split_once(' ') {
                Some((d, g)) => (Cow::Borrowed(d), Some(Cow::Borrowed(g))),
                None => (Cow::Borrowed(l), None),
            }
        }
        Cow::Owned(l) => match l.split_once(' ') {
            Some((d, g)) => (Cow::Owned(d.to_owned()), Some(Cow::Owned(g.to_owned()))),
            None => (Cow::Owned(l.clone()), None),
        },
    }
}
