//! SCRAM-SHA-256 arithmetic and message pieces shared by both sides
//! (RFC 5802 §3, §5, §7).

use std::fmt;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::SaslError;

/// Length of a SHA-256 output.
pub(crate) const KEY_LEN: usize = 32;

/// What a server stores for a SCRAM-SHA-256 user instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The per-user salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count (RFC 7677 asks for at least 4096).
    pub iterations: u32,
    /// `H(ClientKey)`.
    pub stored_key: [u8; KEY_LEN],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; KEY_LEN],
}

impl ScramCredentials {
    /// Derives the stored keys from a password, as done once when the
    /// password is set.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = salted_password(password.as_bytes(), salt, iterations);
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&hmac(&salted, b"Client Key")),
            server_key: hmac(&salted, b"Server Key"),
        }
    }
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.max(1), &mut out);
    out
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

pub(crate) fn xor(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// `saslname` escaping: `,` is `=2C` and `=` is `=3D`.
pub(crate) fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

pub(crate) fn unescape_name(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let esc = rest.get(pos..pos + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed("bad escape in SCRAM name")),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    if out.is_empty() || out.chars().any(char::is_control) {
        return Err(SaslError::Malformed("bad SCRAM name"));
    }
    Ok(out)
}

/// Splits `a=x,b=y` into attributes, each a letter and a value.
pub(crate) fn attributes(msg: &str) -> Result<Vec<(u8, &str)>, SaslError> {
    msg.split(',')
        .map(|part| {
            let b = part.as_bytes();
            if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'=' {
                Ok((b[0], &part[2..]))
            } else {
                Err(SaslError::Malformed("bad SCRAM attribute"))
            }
        })
        .collect()
}

/// A nonce must be printable ASCII without a comma.
pub(crate) fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Turns caller-supplied random bytes into a printable nonce.
pub(crate) fn nonce_from(random: &[u8]) -> String {
    let n = crate::encode(random).replace(['=', ','], "");
    if n.is_empty() { "AAAA".to_owned() } else { n }
}
