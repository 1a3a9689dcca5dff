//! The accounts file: one line per user with an argon2 hash for PLAIN and
//! LOGIN, SCRAM-SHA-256 keys, and (only for users added with `--apop`) the
//! plain password that APOP and CRAM-MD5 need on the server.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sasl::ScramCredentials;

/// One user's secrets: an argon2 hash for PLAIN/LOGIN and SCRAM keys.
#[derive(Clone)]
pub struct Account {
    /// The argon2 hash (PHC string).
    pub hash: String,
    /// The SCRAM-SHA-256 keys.
    pub scram: ScramCredentials,
    /// The plain password, kept only for users added with `--apop`: APOP
    /// (and CRAM-MD5) need it on the server.
    pub apop: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("apop", &self.apop.is_some())
            .finish_non_exhaustive()
    }
}

/// All accounts, as in the file `DATA/accounts`.
#[derive(Debug)]
pub struct Accounts {
    path: PathBuf,
    /// By user name.
    pub map: HashMap<String, Account>,
}

fn b64(b: &[u8]) -> String {
    sasl::encode(b)
}

impl Accounts {
    /// Reads `data/accounts` (none yet: no accounts).
    pub fn load(data: &Path) -> std::io::Result<Accounts> {
        let path = data.join("accounts");
        let mut map = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if let [name, hash, salt, iters, stored, server, rest @ ..] = f.as_slice() {
                    let apop = rest
                        .first()
                        .filter(|a| **a != "-")
                        .and_then(|a| sasl::decode_base64(a).ok())
                        .and_then(|v| String::from_utf8(v).ok());
                    let key = |s: &str| -> [u8; 32] {
                        sasl::decode_base64(s)
                            .ok()
                            .and_then(|v| v.try_into().ok())
                            .unwrap_or([0; 32])
                    };
                    map.insert(
                        (*name).to_owned(),
                        Account {
                            hash: (*hash).to_owned(),
                            scram: ScramCredentials {
                                salt: sasl::decode_base64(salt).unwrap_or_default(),
                                iterations: iters.parse().unwrap_or(4096),
                                stored_key: key(stored),
                                server_key: key(server),
                            },
                            apop,
                        },
                    );
                }
            }
        }
        Ok(Accounts { path, map })
    }

    /// Writes the file atomically: temp file, fsync, rename, fsync folder.
    pub fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(&tmp)?
        };
        let mut names: Vec<&String> = self.map.keys().collect();
        names.sort();
        for n in names {
            let a = &self.map[n];
            writeln!(
                f,
                "{n}\t{}\t{}\t{}\t{}\t{}\t{}",
                a.hash,
                b64(&a.scram.salt),
                a.scram.iterations,
                b64(&a.scram.stored_key),
                b64(&a.scram.server_key),
                a.apop
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |p| b64(p.as_bytes()))
            )?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Adds (or replaces) `name` with `password`; `apop` keeps the plain
    /// password too.
    pub fn add(&mut self, name: &str, password: &str, apop: bool) -> Result<(), String> {
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes).map_err(|e| e.to_string())?;
        let hash = argon2::Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt_bytes)
            .map_err(|e| e.to_string())?
            .to_string();
        let scram = ScramCredentials::derive(password, &salt_bytes, 4096);
        let apop = apop.then(|| password.to_owned());
        self.map
            .insert(name.to_owned(), Account { hash, scram, apop });
        Ok(())
    }
}

/// Whether `password` matches an argon2 `hash` (slow: run it off the async
/// workers).
pub fn verify_password(hash: &str, password: &str) -> bool {
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A fresh random password (20 characters).
pub fn random_password() -> String {
    let mut b = [0u8; 15];
    let _ = getrandom::fill(&mut b);
    b64(&b).replace(['+', '/'], "x")
}
