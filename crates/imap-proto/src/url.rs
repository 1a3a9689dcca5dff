//! IMAP URLs (RFC 5092) as CATENATE (RFC 4469) uses them: a message, or a
//! section of one, on this server.
//!
//! ```
//! use imap_proto::url::ImapUrl;
//!
//! let u = ImapUrl::parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME").unwrap();
//! assert_eq!(u.mailbox, "Drafts");
//! assert_eq!((u.uid_validity, u.uid), (Some(385759045), 20));
//! assert_eq!(u.section.unwrap().part, vec![1]);
//! assert!(ImapUrl::parse("/INBOX/;UID=0").is_none());
//! ```

use crate::{Section, SectionText};

/// Longest URL read.
pub const MAX_URL: usize = 2048;

/// One message or part, named by an IMAP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The `imap://` authority (`user@host:port`), when the URL is absolute.
    pub authority: Option<String>,
    /// The mailbox name, percent-decoded.
    pub mailbox: String,
    /// `;UIDVALIDITY=`: the URL names nothing if the mailbox's differs.
    pub uid_validity: Option<u32>,
    /// `/;UID=`.
    pub uid: u32,
    /// `/;SECTION=`: as in `BODY[…]` (`HEADER`, `TEXT`, `1.2.MIME` …);
    /// `None` for the whole message.
    pub section: Option<Section<'static>>,
    /// `/;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

impl ImapUrl {
    /// Parses an absolute (`imap://host/…`) or server-relative (`/…`) URL;
    /// `None` for anything else, including URLAUTH (not offered).
    pub fn parse(url: &str) -> Option<ImapUrl> {
        if url.len() > MAX_URL {
            return None;
        }
        let (authority, path) = match strip_ci(url, "imap://") {
            Some(rest) => {
                let slash = rest.find('/')?;
                (Some(rest[..slash].to_owned()), &rest[slash..])
            }
            None => (None, url),
        };
        let path = path.strip_prefix('/')?;
        let at = find_ci(path, "/;UID=")?;
        let (mut mailbox, rest) = (&path[..at], &path[at + 6..]);
        let mut uid_validity = None;
        if let Some(v) = find_ci(mailbox, ";UIDVALIDITY=") {
            uid_validity = Some(nz(&mailbox[v + 13..])?);
            mailbox = &mailbox[..v];
        }
        let mut fields = rest.split("/;");
        let uid = nz(fields.next()?)?;
        let (mut section, mut partial) = (None, None);
        for f in fields {
            if let Some(s) = strip_ci(f, "SECTION=") {
                if section.is_some() || partial.is_some() {
                    return None;
                }
                section = Some(parse_section(&percent_decode(s)?)?);
            } else if let Some(p) = strip_ci(f, "PARTIAL=") {
                if partial.is_some() {
                    return None;
                }
                partial = Some(match p.split_once('.') {
                    Some((a, b)) => (number(a)?, Some(nz(b)?)),
                    None => (number(p)?, None),
                });
            } else {
                return None;
            }
        }
        Some(ImapUrl {
            authority,
            mailbox: percent_decode(mailbox)?,
            uid_validity,
            uid,
            section,
            partial,
        })
    }

    /// The octets the URL names in `message` (the section, then the
    /// partial range); `None` when the section does not exist.
    pub fn extract(&self, message: &[u8]) -> Option<Vec<u8>> {
        let whole: Vec<u8> = match &self.section {
            None => message.to_vec(),
            Some(s) => crate::mime::Structure::parse(message)
                .section(message, s)?
                .into_owned(),
        };
        Some(match self.partial {
            None => whole,
            Some((offset, len)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(whole.len());
                let end = match len {
                    Some(l) => start
                        .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
                        .min(whole.len()),
                    None => whole.len(),
                };
                whole[start..end].to_vec()
            }
        })
    }
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn find_ci(s: &str, needle: &str) -> Option<usize> {
    let (h, n) = (s.as_bytes(), needle.as_bytes());
    (0..=h.len().checked_sub(n.len())?).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn nz(s: &str) -> Option<u32> {
    number(s).filter(|n| *n != 0)
}

/// `%XX` escapes undone; the result must be UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A section spec as in `BODY[…]`.
fn parse_section(s: &str) -> Option<Section<'static>> {
    let mut wrapped = b"[".to_vec();
    wrapped.extend_from_slice(s.as_bytes());
    wrapped.push(b']');
    let (rest, section) = crate::items::section_only(&wrapped).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some(Section {
        part: section.part,
        text: match section.text {
            SectionText::HeaderFields(l) => {
                SectionText::HeaderFields(l.into_iter().map(|c| c.into_owned().into()).collect())
            }
            SectionText::HeaderFieldsNot(l) => {
                SectionText::HeaderFieldsNot(l.into_iter().map(|c| c.into_owned().into()).collect())
            }
            SectionText::Full => SectionText::Full,
            SectionText::Header => SectionText::Header,
            SectionText::Text => SectionText::Text,
            SectionText::Mime => SectionText::Mime,
        },
        partial: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_urls_catenate_sends() {
        let u = ImapUrl::parse("/INBOX/;uid=7/;section=header").unwrap();
        assert_eq!(
            (u.mailbox.as_str(), u.uid, u.uid_validity),
            ("INBOX", 7, None)
        );
        assert_eq!(u.section.unwrap().text, SectionText::Header);
        let u = ImapUrl::parse("imap://demo@localhost/a%20b;UIDVALIDITY=5/;UID=2/;PARTIAL=10.3")
            .unwrap();
        assert_eq!(u.authority.as_deref(), Some("demo@localhost"));
        assert_eq!(u.mailbox, "a b");
        assert_eq!(u.partial, Some((10, Some(3))));
        assert!(u.section.is_none());
        for bad in [
            "",
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/;section=BOGUS]",
            "/INBOX/;UID=1/;urlauth=anonymous",
            "/INBOX/;UID=1/;partial=1.0",
            "/INBOX/;UID=1/;section=%zz",
        ] {
            assert!(ImapUrl::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn extract_takes_the_section_then_the_range() {
        let msg = b"From: a@b\r\nSubject: s\r\n\r\nbody text\r\n";
        let u = ImapUrl::parse("/x/;uid=1/;section=TEXT/;partial=5.4").unwrap();
        assert_eq!(u.extract(msg).unwrap(), b"text");
        let u = ImapUrl::parse("/x/;uid=1/;section=HEADER").unwrap();
        assert_eq!(u.extract(msg).unwrap(), b"From: a@b\r\nSubject: s\r\n\r\n");
        let u = ImapUrl::parse("/x/;uid=1/;partial=100000.1").unwrap();
        assert_eq!(u.extract(msg).unwrap(), b"");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_not_without_panicking(s in "\\PC{0,80}") {
            let _ = ImapUrl::parse(&s);
        }
    }
}
