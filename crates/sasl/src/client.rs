//! The client side of an authentication exchange.

use std::fmt;

use hmac::{KeyInit, Mac};
use md5::Md5;

use crate::scram::{self, KEY_LEN};
use crate::server::hex;
use crate::{Mechanism, SaslError, Secret, constant_time_eq};

enum State {
    Start,
    LoginUserSent,
    LoginPassSent,
    CramSent,
    PlainSent,
    ScramFirstSent {
        client_first_bare: String,
        gs2_header: String,
    },
    ScramFinalSent {
        server_signature: [u8; KEY_LEN],
    },
    Done,
}

/// One authentication attempt, client side.
///
/// ```
/// use sasl::client::ClientExchange;
/// use sasl::{Mechanism, Secret};
///
/// // RFC 2195 §2.
/// let mut c = ClientExchange::new(
///     Mechanism::CramMd5, "tim", Secret::new("tanstaaftanstaaf".into()), None, b"");
/// assert_eq!(c.initial_response(), None);
/// let answer = c.respond(b"<1896.697170952@postoffice.reston.mci.net>").unwrap();
/// assert_eq!(answer, b"tim b913a602c7eda7a495b4e6e7334d3890");
/// ```
pub struct ClientExchange {
    mechanism: Mechanism,
    username: String,
    password: Secret<String>,
    authzid: Option<String>,
    nonce: String,
    state: State,
    max_iterations: u32,
}

/// The highest SCRAM iteration count a client accepts unless told
/// otherwise: servers use 4,096 (RFC 7677's floor) to some tens of
/// thousands; 10 million would cost about 1.5 s of CPU per hostile
/// challenge.
pub const DEFAULT_MAX_SCRAM_ITERATIONS: u32 = 100_000;

impl fmt::Debug for ClientExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientExchange")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ClientExchange {
    /// A new exchange. `random` (16 bytes or more from a CSPRNG) makes the
    /// SCRAM client nonce; other mechanisms ignore it.
    pub fn new(
        mechanism: Mechanism,
        username: &str,
        password: Secret<String>,
        authzid: Option<&str>,
        random: &[u8],
    ) -> Self {
        Self::with_nonce(
            mechanism,
            username,
            password,
            authzid,
            &scram::nonce_from(random),
        )
    }

    /// A new exchange with an explicit printable nonce (for test vectors).
    pub fn with_nonce(
        mechanism: Mechanism,
        username: &str,
        password: Secret<String>,
        authzid: Option<&str>,
        nonce: &str,
    ) -> Self {
        ClientExchange {
            mechanism,
            username: username.to_owned(),
            password,
            authzid: authzid.map(str::to_owned),
            nonce: if scram::valid_nonce(nonce) {
                nonce.to_owned()
            } else {
                scram::nonce_from(nonce.as_bytes())
            },
            state: State::Start,
            max_iterations: DEFAULT_MAX_SCRAM_ITERATIONS,
        }
    }

    /// The highest SCRAM iteration count to accept from the server
    /// (default [`DEFAULT_MAX_SCRAM_ITERATIONS`]); a server-first message
    /// asking for more is refused before any hashing.
    pub fn with_max_iterations(mut self, max: u32) -> Self {
        self.max_iterations = max;
        self
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The message to send with the AUTH command (SASL-IR), for mechanisms
    /// where the client speaks first; `None` otherwise. Call at most once,
    /// before [`ClientExchange::respond`].
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        if !matches!(self.state, State::Start) {
            return None;
        }
        match self.mechanism {
            Mechanism::Plain => {
                self.state = State::PlainSent;
                Some(self.plain_message())
            }
            Mechanism::ScramSha256 => Some(self.scram_first()),
            Mechanism::Login | Mechanism::CramMd5 => None,
        }
    }

    /// Whether the server's last message completed the exchange as far as
    /// this side can tell (for SCRAM: the server proved itself).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Answers a decoded server challenge.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start => match self.mechanism {
                Mechanism::Plain => Ok(self.plain_message()),
                Mechanism::Login => {
                    self.state = State::LoginUserSent;
                    Ok(self.username.clone().into_bytes())
                }
                Mechanism::CramMd5 => {
                    let mut mac = <hmac::Hmac<Md5> as KeyInit>::new_from_slice(
                        self.password.expose().as_bytes(),
                    )
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                    mac.update(challenge);
                    self.state = State::CramSent;
                    Ok(
                        format!("{} {}", self.username, hex(&mac.finalize().into_bytes()))
                            .into_bytes(),
                    )
                }
                Mechanism::ScramSha256 => Ok(self.scram_first()),
            },
            State::LoginUserSent => {
                self.state = State::LoginPassSent;
                Ok(self.password.expose().clone().into_bytes())
            }
            State::ScramFirstSent {
                client_first_bare,
                gs2_header,
            } => self.scram_final(challenge, &client_first_bare, &gs2_header),
            State::ScramFinalSent { server_signature } => {
                let msg = std::str::from_utf8(challenge)
                    .map_err(|_| SaslError::Malformed("bad SCRAM server-final"))?;
                let attrs = scram::attributes(msg)?;
                match attrs.first() {
                    Some((b'v', v)) => {
                        let v = crate::decode_base64(v)?;
                        if constant_time_eq(&v, &server_signature) {
                            Ok(Vec::new())
                        } else {
                            Err(SaslError::ServerNotVerified)
                        }
                    }
                    Some((b'e', _)) => Err(SaslError::Failed),
                    _ => Err(SaslError::Malformed("bad SCRAM server-final")),
                }
            }
            State::LoginPassSent | State::CramSent | State::PlainSent | State::Done => {
                Err(SaslError::Finished)
            }
        }
    }

    fn plain_message(&self) -> Vec<u8> {
        let mut m = self.authzid.clone().unwrap_or_default().into_bytes();
        m.push(0);
        m.extend_from_slice(self.username.as_bytes());
        m.push(0);
        m.extend_from_slice(self.password.expose().as_bytes());
        m
    }

    fn scram_first(&mut self) -> Vec<u8> {
        let gs2_header = match &self.authzid {
            Some(a) => format!("n,a={},", scram::escape_name(a)),
            None => "n,,".to_owned(),
        };
        let client_first_bare =
            format!("n={},r={}", scram::escape_name(&self.username), self.nonce);
        let msg = format!("{gs2_header}{client_first_bare}").into_bytes();
        self.state = State::ScramFirstSent {
            client_first_bare,
            gs2_header,
        };
        msg
    }

    fn scram_final(
        &mut self,
        server_first: &[u8],
        client_first_bare: &str,
        gs2_header: &str,
    ) -> Result<Vec<u8>, SaslError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| SaslError::Malformed("bad SCRAM server-first"))?;
        let attrs = scram::attributes(server_first)?;
        let (nonce, salt, iterations) = match attrs.as_slice() {
            [(b'm', _), ..] => return Err(SaslError::Unsupported("mandatory SCRAM extension")),
            [(b'r', r), (b's', s), (b'i', i), ..] => (*r, *s, *i),
            _ => return Err(SaslError::Malformed("SCRAM server-first needs r=, s=, i=")),
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(SaslError::Malformed(
                "SCRAM server nonce does not extend ours",
            ));
        }
        let salt = crate::decode_base64(salt)?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or(SaslError::Malformed("bad SCRAM iteration count"))?;
        if iterations > self.max_iterations {
            return Err(SaslError::Unsupported(
                "SCRAM iteration count above this client's limit",
            ));
        }
        let without_proof = format!("c={},r={nonce}", crate::encode(gs2_header.as_bytes()));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let salted = scram::salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = scram::hmac(&salted, b"Client Key");
        let stored_key = scram::sha256(&client_key);
        let signature = scram::hmac(&stored_key, auth_message.as_bytes());
        let proof = scram::xor(&client_key, &signature);
        let server_key = scram::hmac(&salted, b"Server Key");
        self.state = State::ScramFinalSent {
            server_signature: scram::hmac(&server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", crate::encode(&proof)).into_bytes())
    }
}
