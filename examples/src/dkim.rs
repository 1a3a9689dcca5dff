//! DKIM signing of outgoing mail (RFC 6376, Ed25519 per RFC 8463 or RSA),
//! with mail-auth. Keys live in `DATA/dkim/`, one file per domain:
//! `DOMAIN.SELECTOR.ed25519` (PKCS#8 DER) or `DOMAIN.SELECTOR.rsa`
//! (PKCS#1 DER); `mailserver dkim generate DOMAIN` makes one and prints
//! the TXT record to publish.

use std::path::Path;
use std::sync::Arc;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};

/// The headers signed when the message has them.
const SIGNED: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

enum Signer {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

struct Key {
    domain: String,
    signer: Signer,
}

/// The signing keys, by domain.
#[derive(Clone)]
pub struct Keys(Arc<Vec<Key>>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|k| &k.domain))
            .finish()
    }
}

fn signer<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED)
}

impl Keys {
    /// The keys in `data/dkim`, or `None` when there are none.
    pub fn load(data: &Path) -> Result<Option<Keys>, String> {
        let dir = data.join("dkim");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let parts: Vec<&str> = name.rsplitn(3, '.').collect();
            let [kind, selector, domain] = parts[..] else {
                continue;
            };
            let der = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let bad = |e: mail_auth::Error| format!("{}: {e}", path.display());
            let signer = match kind {
                "ed25519" => Signer::Ed25519(signer(
                    Ed25519Key::from_pkcs8_der(&der).map_err(bad)?,
                    domain,
                    selector,
                )),
                "rsa" => {
                    let key = rustls::pki_types::PrivateKeyDer::Pkcs1(der.into());
                    Signer::Rsa(signer(
                        RsaKey::<Sha256>::from_key_der(key).map_err(bad)?,
                        domain,
                        selector,
                    ))
                }
                _ => continue,
            };
            keys.push(Key {
                domain: domain.to_ascii_lowercase(),
                signer,
            });
        }
        Ok((!keys.is_empty()).then(|| Keys(Arc::new(keys))))
    }

    /// The `DKIM-Signature` header (with its CRLF) for a message from a
    /// domain that has a key: the domain of the `From` header, else of the
    /// envelope sender.
    pub fn sign(&self, envelope_from: &str, message: &[u8]) -> Option<String> {
        let domain = from_domain(message).or_else(|| {
            envelope_from
                .rsplit_once('@')
                .map(|d| d.1.to_ascii_lowercase())
        })?;
        let key = self.0.iter().find(|k| k.domain == domain)?;
        let sig = match &key.signer {
            Signer::Ed25519(s) => s.sign(message),
            Signer::Rsa(s) => s.sign(message),
        };
        match sig {
            Ok(s) => Some(s.to_header()),
            Err(e) => {
                tracing::warn!(%e, domain, "DKIM signing failed");
                None
            }
        }
    }
}

/// The domain of the first address in the `From` header.
fn from_domain(message: &[u8]) -> Option<String> {
    let end = memchr_find(message, b"\r\n\r\n").unwrap_or(message.len());
    let head = std::str::from_utf8(&message[..end]).ok()?;
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.eq_ignore_ascii_case("from") {
            continue;
        }
        let mut v = value.to_owned();
        while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
            v.push_str(lines.next().unwrap_or(""));
        }
        let addr = match (v.rfind('<'), v.rfind('>')) {
            (Some(a), Some(b)) if a < b => v[a + 1..b].to_owned(),
            _ => v.trim().to_owned(),
        };
        return addr
            .rsplit_once('@')
            .map(|d| d.1.trim().to_ascii_lowercase());
    }
    None
}

fn memchr_find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Makes a key for `domain` under `data/dkim` and returns the DNS record
/// to publish (name and TXT value).
pub fn generate(
    data: &Path,
    domain: &str,
    selector: &str,
    rsa: bool,
) -> Result<(String, String), String> {
    use mail_auth::dkim::generate::DkimKeyPair;
    let dir = data.join("dkim");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (pair, kind) = if rsa {
        (DkimKeyPair::generate_rsa(2048), "rsa")
    } else {
        (DkimKeyPair::generate_ed25519(), "ed25519")
    };
    let pair = pair.map_err(|e| format!("key generation: {e}"))?;
    let path = dir.join(format!("{}.{selector}.{kind}", domain.to_ascii_lowercase()));
    if path.exists() {
        return Err(format!(
            "{} exists: remove it first to replace the key",
            path.display()
        ));
    }
    write_private(&path, pair.private_key()).map_err(|e| format!("{}: {e}", path.display()))?;
    let k = if rsa { "rsa" } else { "ed25519" };
    Ok((
        format!("{selector}._domainkey.{domain}"),
        format!("v=DKIM1; k={k}; p={}", pair.encoded_public_key()),
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
