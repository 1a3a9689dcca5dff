//! User and mailbox names, checked so that none can escape its folder
//! (DESIGN.md rule 8).

use std::fmt;

use crate::Error;

/// Longest user name in octets.
pub const MAX_USER_NAME: usize = 64;
/// Longest mailbox name in octets (all levels with separators).
pub const MAX_MAILBOX_NAME: usize = 255;
/// Longest level of a mailbox name in octets.
pub const MAX_MAILBOX_LEVEL: usize = 100;
/// The hierarchy separator of mailbox names.
pub const SEPARATOR: char = '/';

/// A user name: 1–64 of `a-z 0-9 . _ - + @`, lower case, not starting with
/// a dot. Upper-case letters are folded to lower case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Validates (and lower-cases) a user name.
    pub fn new(name: &str) -> Result<UserName, Error> {
        let lower = name.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower.len() <= MAX_USER_NAME
            && !lower.starts_with('.')
            && !lower.contains("..")
            && lower.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'@')
            });
        if ok {
            Ok(UserName(lower))
        } else {
            Err(Error::InvalidName(format!("user name {name:?}")))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({:?})", self.0)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox name: levels separated by `/`, each 1–100 octets of UTF-8
/// without control characters, never `.` or `..`; at most 255 octets in
/// all. `INBOX` (any case) as the first level is the inbox.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxName(String);

impl MailboxName {
    /// The inbox.
    pub fn inbox() -> MailboxName {
        MailboxName("INBOX".to_owned())
    }

    /// Validates a name, normalising `inbox` to `INBOX`.
    pub fn new(name: &str) -> Result<MailboxName, Error> {
        let bad = || Error::InvalidName(format!("mailbox name {name:?}"));
        if name.is_empty() || name.len() > MAX_MAILBOX_NAME {
            return Err(bad());
        }
        let mut out = String::with_capacity(name.len());
        for (i, level) in name.split(SEPARATOR).enumerate() {
            if level.is_empty()
                || level.len() > MAX_MAILBOX_LEVEL
                || level == "."
                || level == ".."
                || level.chars().any(|c| c.is_control())
            {
                return Err(bad());
            }
            if i > 0 {
                out.push(SEPARATOR);
            }
            if i == 0 && level.eq_ignore_ascii_case("INBOX") {
                out.push_str("INBOX");
            } else {
                out.push_str(level);
            }
        }
        Ok(MailboxName(out))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the inbox.
    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// Whether `self` is `other` or below it in the hierarchy.
    pub fn is_within(&self, other: &MailboxName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0[other.0.len()..].starts_with(SEPARATOR))
    }

    /// The Maildir++ folder name: `""` for the inbox, otherwise `.` and the
    /// levels joined by `.`, with `%` and `.` inside a level written `%25`
    /// and `%2E` so the mapping can be reversed.
    pub(crate) fn folder(&self) -> String {
        if self.is_inbox() {
            return String::new();
        }
        let mut s = String::new();
        for level in self.0.split(SEPARATOR) {
            s.push('.');
            for c in level.chars() {
                match c {
                    '%' => s.push_str("%25"),
                    '.' => s.push_str("%2E"),
                    c => s.push(c),
                }
            }
        }
        s
    }
}

#[cfg(any(test, fuzzing, feature = "fuzzing"))]
impl MailboxName {
    /// Reads a Maildir++ folder name back (the inverse of
    /// [`MailboxName::folder`]); `None` for one that no name gives.
    pub(crate) fn from_folder(folder: &str) -> Option<MailboxName> {
        if folder.is_empty() {
            return Some(MailboxName::inbox());
        }
        let mut name = String::with_capacity(folder.len());
        for (i, level) in folder.strip_prefix('.')?.split('.').enumerate() {
            if i > 0 {
                name.push(SEPARATOR);
            }
            let mut rest = level;
            while let Some(at) = rest.find('%') {
                name.push_str(&rest[..at]);
                match rest.get(at..at + 3)? {
                    "%25" => name.push('%'),
                    "%2E" => name.push('.'),
                    _ => return None,
                }
                rest = &rest[at + 3..];
            }
            name.push_str(rest);
        }
        let n = MailboxName::new(&name).ok()?;
        // The inbox has its own folder, and only the canonical spelling of a
        // name is one.
        (n.folder() == folder).then_some(n)
    }
}

impl fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxName({:?})", self.0)
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            ".hidden",
            "a\0b",
            "a\nb",
            "é",
            &"x".repeat(65),
        ] {
            assert!(UserName::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            UserName::new("Alice.Smith+x@Example.org").unwrap().as_str(),
            "alice.smith+x@example.org"
        );
        for bad in [
            "",
            "/",
            "a//b",
            "a/",
            "/a",
            ".",
            "..",
            "a/../b",
            "a\0",
            "a\r\nb",
            &"x".repeat(256),
        ] {
            assert!(MailboxName::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(MailboxName::new("inbox").unwrap(), MailboxName::inbox());
        assert_eq!(MailboxName::new("InBox/Sub").unwrap().as_str(), "INBOX/Sub");
        assert_eq!(MailboxName::new("Sent").unwrap().as_str(), "Sent");
    }

    #[test]
    fn folders_are_reversible_and_contained() {
        let n = MailboxName::new("Work/2026.11/50%").unwrap();
        assert_eq!(n.folder(), ".Work.2026%2E11.50%25");
        assert_eq!(
            MailboxName::from_folder(".Work.2026%2E11.50%25"),
            Some(n.clone())
        );
        assert_eq!(MailboxName::from_folder(""), Some(MailboxName::inbox()));
        for bad in [
            ".a%2e",
            ".a%2",
            "a",
            ".a..b",
            ".INBOX",
            ".a.%2E%2E",
            ".a%41",
        ] {
            assert_eq!(MailboxName::from_folder(bad), None, "{bad}");
        }
        assert!(!n.folder().contains('/'));
        assert!(
            MailboxName::new("a/b")
                .unwrap()
                .is_within(&MailboxName::new("a").unwrap())
        );
        assert!(
            !MailboxName::new("ab")
                .unwrap()
                .is_within(&MailboxName::new("a").unwrap())
        );
    }
}
