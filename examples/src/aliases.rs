//! Aliases: a local part that delivers to a user (`postmaster` and `abuse`
//! to the administrator by default, RFC 5321 §4.5.1, RFC 2142). Kept in
//! `DATA/aliases`, one `alias<TAB>user` per line; the running server reads
//! the file again when it changes, so `mailserver alias add` takes effect
//! at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The aliases, by lower-cased local part.
#[derive(Debug)]
pub struct Aliases {
    path: PathBuf,
    map: BTreeMap<String, String>,
    seen: Option<SystemTime>,
    checked: Option<std::time::Instant>,
}

/// The aliases every server has: RFC 5321 §4.5.1 requires `postmaster`,
/// RFC 2142 asks for `abuse`.
pub const REQUIRED: [&str; 2] = ["postmaster", "abuse"];

impl Aliases {
    /// Reads `data/aliases` (none yet: no aliases).
    pub fn load(data: &Path) -> std::io::Result<Aliases> {
        let mut a = Aliases {
            path: data.join("aliases"),
            map: BTreeMap::new(),
            seen: None,
            checked: None,
        };
        a.reload()?;
        Ok(a)
    }

    /// Whether the file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    fn modified(&self) -> Option<SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }

    fn reload(&mut self) -> std::io::Result<()> {
        self.seen = self.modified();
        self.map.clear();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for line in text.lines() {
            if let Some((alias, user)) = line.split_once('\t') {
                self.map.insert(alias.to_ascii_lowercase(), user.to_owned());
            }
        }
        Ok(())
    }

    /// Reads the file again now (the admin socket asks for this after
    /// `mailserver alias add/del`, so the change takes effect at once).
    pub fn reload_now(&mut self) -> std::io::Result<()> {
        self.checked = Some(std::time::Instant::now());
        self.reload()
    }

    /// Reads the file again if it changed since it was last read (looked
    /// at no more than every 200 ms).
    pub fn refresh(&mut self) {
        let now = std::time::Instant::now();
        if self
            .checked
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(200))
        {
            return;
        }
        self.checked = Some(now);
        if self.modified() != self.seen {
            let _ = self.reload();
        }
    }

    /// The user an alias delivers to (local parts compare without case).
    pub fn resolve(&self, local_part: &str) -> Option<&str> {
        self.map
            .get(&local_part.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Every alias and its user, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(a, u)| (a.as_str(), u.as_str()))
    }

    /// Adds or changes `alias`. Fails when the alias is not a plain local
    /// part.
    pub fn set(&mut self, alias: &str, user: &str) -> Result<(), String> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        };
        if !ok(alias) {
            return Err(format!("alias {alias:?}: letters, digits and . _ - + only"));
        }
        self.map.insert(alias.to_ascii_lowercase(), user.to_owned());
        Ok(())
    }

    /// Removes `alias`; whether it was there.
    pub fn remove(&mut self, alias: &str) -> bool {
        self.map.remove(&alias.to_ascii_lowercase()).is_some()
    }

    /// Writes the file atomically (temp file, fsync, rename).
    pub fn save(&mut self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        for (a, u) in &self.map {
            writeln!(f, "{a}\t{u}")?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.seen = self.modified();
        Ok(())
    }
}
