//! The server side of an authentication exchange.

use std::fmt;

use hmac::{KeyInit, Mac};
use md5::Md5;

use crate::scram::{self, KEY_LEN, ScramCredentials};
use crate::{Identity, Mechanism, SaslError, Secret, constant_time_eq};

/// Longest field accepted in PLAIN and LOGIN (RFC 4616 §2: 255 octets).
const MAX_FIELD: usize = 255;
/// Longest SCRAM message accepted.
const MAX_SCRAM_MESSAGE: usize = 2048;

/// What the application must check.
#[derive(Debug)]
#[non_exhaustive]
pub enum Credentials {
    /// PLAIN or LOGIN: compare the password with the stored one (or its
    /// hash).
    Password {
        /// Who the client wants to act as, if not itself.
        authzid: Option<String>,
        /// The user name.
        username: String,
        /// The password as sent.
        password: Secret<String>,
    },
    /// CRAM-MD5: look up the user's plain password and call
    /// [`CramMd5Proof::verify`].
    CramMd5 {
        /// The user name.
        username: String,
        /// The client's proof.
        proof: CramMd5Proof,
    },
}

impl Credentials {
    /// The claimed user name.
    pub fn username(&self) -> &str {
        match self {
            Credentials::Password { username, .. } | Credentials::CramMd5 { username, .. } => {
                username
            }
        }
    }
}

/// A CRAM-MD5 response, to be checked against the user's password.
#[derive(Clone)]
pub struct CramMd5Proof {
    challenge: String,
    digest: String,
}

impl CramMd5Proof {
    /// Whether the client knew `password`.
    pub fn verify(&self, password: &str) -> bool {
        let mut mac = <hmac::Hmac<Md5> as KeyInit>::new_from_slice(password.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(self.challenge.as_bytes());
        let expected = hex(&mac.finalize().into_bytes());
        constant_time_eq(expected.as_bytes(), self.digest.as_bytes())
    }
}

impl fmt::Debug for CramMd5Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CramMd5Proof(<redacted>)")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The next thing the protocol must do.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerStep {
    /// Send this challenge (raw; the protocol base64-encodes it) and feed
    /// the client's answer to [`ServerExchange::respond`].
    Challenge(Vec<u8>),
    /// Check these credentials; the exchange is over and the application's
    /// verdict decides the outcome.
    Verify(Credentials),
    /// SCRAM: fetch the user's stored keys and pass them (or `None` for an
    /// unknown user) to [`ServerExchange::scram_credentials`].
    LookupScram {
        /// The user name.
        username: String,
        /// The authorization identity, if any.
        authzid: Option<String>,
    },
    /// SCRAM: the client proved it knows the password.
    Success(Identity),
    /// The exchange failed.
    Failure(SaslError),
}

enum State {
    Start,
    PlainWait,
    LoginUser,
    LoginPass {
        username: String,
    },
    CramWait {
        challenge: String,
    },
    ScramFirstWait,
    ScramLookup {
        client_first_bare: String,
        gs2_header: String,
        cnonce: String,
        identity: Identity,
    },
    ScramFinalWait {
        auth_prefix: String,
        gs2_header: String,
        nonce: String,
        creds: ScramCredentials,
        decoy: bool,
        identity: Identity,
    },
    ScramVerified {
        identity: Identity,
    },
    Done,
}

/// One authentication attempt, server side.
///
/// ```
/// use sasl::server::{ServerExchange, ServerStep};
/// use sasl::{Mechanism, ScramCredentials};
///
/// // RFC 7677 §3: user "user", password "pencil".
/// let stored = ScramCredentials::derive(
///     "pencil", &sasl::decode_base64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap(), 4096);
/// let mut server = ServerExchange::with_nonce(
///     Mechanism::ScramSha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "mx.example.org");
/// let ServerStep::LookupScram { username, .. } =
///     server.start(Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")) else { panic!() };
/// assert_eq!(username, "user");
/// let ServerStep::Challenge(first) = server.scram_credentials(Some(stored)) else { panic!() };
/// assert_eq!(first, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
/// let ServerStep::Challenge(last) = server.respond(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") else { panic!() };
/// assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
/// assert!(matches!(server.respond(b""), ServerStep::Success(id) if id.username == "user"));
/// ```
pub struct ServerExchange {
    mechanism: Mechanism,
    nonce: String,
    hostname: String,
    state: State,
}

impl fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerExchange")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ServerExchange {
    /// A new exchange. `random` (16 bytes or more from a CSPRNG) makes the
    /// CRAM-MD5 challenge and the SCRAM server nonce; `hostname` goes into
    /// the CRAM-MD5 challenge.
    pub fn new(mechanism: Mechanism, random: &[u8], hostname: &str) -> Self {
        Self::with_nonce(mechanism, &scram::nonce_from(random), hostname)
    }

    /// A new exchange with an explicit printable nonce (for test vectors).
    pub fn with_nonce(mechanism: Mechanism, nonce: &str, hostname: &str) -> Self {
        let nonce = if scram::valid_nonce(nonce) {
            nonce.to_owned()
        } else {
            scram::nonce_from(nonce.as_bytes())
        };
        ServerExchange {
            mechanism,
            nonce,
            hostname: hostname.to_owned(),
            state: State::Start,
        }
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Starts the exchange with the client's decoded initial response, if
    /// it sent one with the command.
    pub fn start(&mut self, initial_response: Option<&[u8]>) -> ServerStep {
        if !matches!(self.state, State::Start) {
            return self.fail(SaslError::Finished);
        }
        match (self.mechanism, initial_response) {
            (Mechanism::Plain, Some(msg)) => self.plain(msg),
            (Mechanism::Plain, None) => {
                self.state = State::PlainWait;
                ServerStep::Challenge(Vec::new())
            }
            (Mechanism::Login, Some(user)) if !user.is_empty() => self.login_user(user),
            (Mechanism::Login, _) => {
                self.state = State::LoginUser;
                ServerStep::Challenge(b"Username:".to_vec())
            }
            (Mechanism::CramMd5, Some(_)) => {
                self.fail(SaslError::Malformed("CRAM-MD5 takes no initial response"))
            }
            (Mechanism::CramMd5, None) => {
                let challenge = format!("<{}@{}>", self.nonce, self.hostname);
                self.state = State::CramWait {
                    challenge: challenge.clone(),
                };
                ServerStep::Challenge(challenge.into_bytes())
            }
            (Mechanism::ScramSha256, Some(msg)) => self.scram_first(msg),
            (Mechanism::ScramSha256, None) => {
                self.state = State::ScramFirstWait;
                ServerStep::Challenge(Vec::new())
            }
        }
    }

    /// Feeds the client's decoded answer to the last challenge.
    pub fn respond(&mut self, response: &[u8]) -> ServerStep {
        match std::mem::replace(&mut self.state, State::Done) {
            State::PlainWait => self.plain(response),
            State::LoginUser => self.login_user(response),
            State::LoginPass { username } => match text(response) {
                Some(password) if !password.is_empty() => {
                    ServerStep::Verify(Credentials::Password {
                        authzid: None,
                        username,
                        password: Secret::new(password.to_owned()),
                    })
                }
                _ => self.fail(SaslError::Malformed("bad LOGIN password")),
            },
            State::CramWait { challenge } => self.cram(challenge, response),
            State::ScramFirstWait => self.scram_first(response),
            State::ScramFinalWait {
                auth_prefix,
                gs2_header,
                nonce,
                creds,
                decoy,
                identity,
            } => self.scram_final(
                response,
                &auth_prefix,
                &gs2_header,
                &nonce,
                &creds,
                decoy,
                identity,
            ),
            State::ScramVerified { identity } => {
                if response.is_empty() {
                    ServerStep::Success(identity)
                } else {
                    self.fail(SaslError::Malformed("unexpected data after SCRAM success"))
                }
            }
            State::Start | State::ScramLookup { .. } | State::Done => {
                self.fail(SaslError::Finished)
            }
        }
    }

    /// SCRAM: the stored keys of the user named in
    /// [`ServerStep::LookupScram`], or `None` when there is no such user
    /// (the exchange then goes on with made-up keys and fails at the end,
    /// so a client cannot tell unknown users from wrong passwords).
    pub fn scram_credentials(&mut self, creds: Option<ScramCredentials>) -> ServerStep {
        let State::ScramLookup {
            client_first_bare,
            gs2_header,
            cnonce,
            identity,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return self.fail(SaslError::Finished);
        };
        let decoy = creds.is_none();
        let creds = creds.unwrap_or_else(|| {
            let seed = scram::sha256(format!("{}\0{}", identity.username, self.nonce).as_bytes());
            ScramCredentials {
                salt: seed[..16].to_vec(),
                iterations: 4096,
                stored_key: scram::sha256(&seed),
                server_key: seed,
            }
        });
        let nonce = format!("{cnonce}{}", self.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            crate::encode(&creds.salt),
            creds.iterations
        );
        self.state = State::ScramFinalWait {
            auth_prefix: format!("{client_first_bare},{server_first}"),
            gs2_header,
            nonce,
            creds,
            decoy,
            identity,
        };
        ServerStep::Challenge(server_first.into_bytes())
    }

    fn fail(&mut self, e: SaslError) -> ServerStep {
        self.state = State::Done;
        ServerStep::Failure(e)
    }

    fn plain(&mut self, msg: &[u8]) -> ServerStep {
        let mut parts = msg.split(|&b| b == 0);
        let (Some(authzid), Some(user), Some(pass), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.fail(SaslError::Malformed(
                "PLAIN needs authzid NUL user NUL password",
            ));
        };
        let (Some(authzid), Some(user), Some(pass)) = (text(authzid), text(user), text(pass))
        else {
            return self.fail(SaslError::Malformed("bad PLAIN field"));
        };
        if user.is_empty() || pass.is_empty() {
            return self.fail(SaslError::Malformed("empty PLAIN user or password"));
        }
        self.state = State::Done;
        ServerStep::Verify(Credentials::Password {
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            username: user.to_owned(),
            password: Secret::new(pass.to_owned()),
        })
    }

    fn login_user(&mut self, user: &[u8]) -> ServerStep {
        match text(user) {
            Some(u) if !u.is_empty() => {
                self.state = State::LoginPass {
                    username: u.to_owned(),
                };
                ServerStep::Challenge(b"Password:".to_vec())
            }
            _ => self.fail(SaslError::Malformed("bad LOGIN user name")),
        }
    }

    fn cram(&mut self, challenge: String, response: &[u8]) -> ServerStep {
        let Some((user, digest)) = text(response).and_then(|r| r.rsplit_once(' ')) else {
            return self.fail(SaslError::Malformed("CRAM-MD5 needs user SP digest"));
        };
        if user.is_empty() || digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.fail(SaslError::Malformed("bad CRAM-MD5 response"));
        }
        ServerStep::Verify(Credentials::CramMd5 {
            username: user.to_owned(),
            proof: CramMd5Proof {
                challenge,
                digest: digest.to_ascii_lowercase(),
            },
        })
    }

    fn scram_first(&mut self, msg: &[u8]) -> ServerStep {
        match parse_client_first(msg) {
            Ok((gs2_header, client_first_bare, cnonce, identity)) => {
                let step = ServerStep::LookupScram {
                    username: identity.username.clone(),
                    authzid: identity.authzid.clone(),
                };
                self.state = State::ScramLookup {
                    client_first_bare,
                    gs2_header,
                    cnonce,
                    identity,
                };
                step
            }
            Err(e) => self.fail(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn scram_final(
        &mut self,
        msg: &[u8],
        auth_prefix: &str,
        gs2_header: &str,
        nonce: &str,
        creds: &ScramCredentials,
        decoy: bool,
        identity: Identity,
    ) -> ServerStep {
        let Some(msg) = text(msg).filter(|m| m.len() <= MAX_SCRAM_MESSAGE) else {
            return self.fail(SaslError::Malformed("bad SCRAM client-final"));
        };
        let Some(proof_at) = msg.rfind(",p=") else {
            return self.fail(SaslError::Malformed("SCRAM client-final without proof"));
        };
        let without_proof = &msg[..proof_at];
        let attrs = match scram::attributes(without_proof) {
            Ok(a) => a,
            Err(e) => return self.fail(e),
        };
        let cbind = crate::encode(gs2_header.as_bytes());
        match attrs.as_slice() {
            [(b'c', c), (b'r', r), ..] if *c == cbind && *r == nonce => {}
            [(b'c', _), (b'r', _), ..] => {
                return self.fail(SaslError::Malformed(
                    "SCRAM channel binding or nonce mismatch",
                ));
            }
            _ => return self.fail(SaslError::Malformed("bad SCRAM client-final")),
        }
        let Ok(proof) = crate::decode_base64(&msg[proof_at + 3..]) else {
            return self.fail(SaslError::Malformed("bad SCRAM proof"));
        };
        let Ok(proof) = <[u8; KEY_LEN]>::try_from(proof.as_slice()) else {
            return self.fail(SaslError::Malformed("bad SCRAM proof length"));
        };
        let auth_message = format!("{auth_prefix},{without_proof}");
        let signature = scram::hmac(&creds.stored_key, auth_message.as_bytes());
        let client_key = scram::xor(&proof, &signature);
        let ok = constant_time_eq(&scram::sha256(&client_key), &creds.stored_key);
        if !ok || decoy {
            return self.fail(SaslError::Failed);
        }
        let server_signature = scram::hmac(&creds.server_key, auth_message.as_bytes());
        self.state = State::ScramVerified { identity };
        ServerStep::Challenge(format!("v={}", crate::encode(&server_signature)).into_bytes())
    }
}

/// UTF-8 without NUL or control characters, at most 255 octets.
fn text(b: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(b).ok()?;
    (s.len() <= MAX_FIELD && !s.chars().any(char::is_control)).then_some(s)
}

/// `gs2-header client-first-message-bare` → (gs2 header, bare, nonce,
/// identity).
fn parse_client_first(msg: &[u8]) -> Result<(String, String, String, Identity), SaslError> {
    let msg = std::str::from_utf8(msg)
        .ok()
        .filter(|m| m.len() <= MAX_SCRAM_MESSAGE)
        .ok_or(SaslError::Malformed("bad SCRAM client-first"))?;
    let (flag, rest) = msg
        .split_once(',')
        .ok_or(SaslError::Malformed("bad GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(SaslError::Unsupported("channel binding")),
        _ => return Err(SaslError::Malformed("bad GS2 channel binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(SaslError::Malformed("bad GS2 header"))?;
    let authzid = match authzid {
        "" => None,
        a => Some(scram::unescape_name(
            a.strip_prefix("a=")
                .ok_or(SaslError::Malformed("bad GS2 authzid"))?,
        )?),
    };
    let gs2_header = format!("{flag},{},", &rest[..rest.len() - bare.len() - 1]);
    let attrs = scram::attributes(bare)?;
    let (user, cnonce) = match attrs.as_slice() {
        [(b'm', _), ..] => return Err(SaslError::Unsupported("mandatory SCRAM extension")),
        [(b'n', user), (b'r', nonce), ..] => (*user, *nonce),
        _ => return Err(SaslError::Malformed("SCRAM client-first needs n= and r=")),
    };
    if !scram::valid_nonce(cnonce) {
        return Err(SaslError::Malformed("bad SCRAM nonce"));
    }
    let identity = Identity {
        username: scram::unescape_name(user)?,
        authzid,
    };
    Ok((gs2_header, bare.to_owned(), cnonce.to_owned(), identity))
}
