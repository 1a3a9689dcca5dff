//! AUTH (RFC 4954) through the `sasl` crate's server exchanges.

use sasl::server::{Credentials, ServerExchange, ServerStep};
use sasl::{Identity, Mechanism, Response, SaslError, ScramCredentials};

use crate::command::InitialResponse;
use crate::replies;
use crate::reply::{Reply, ReplyCode};

use super::{AuthCheck, AuthRequest, Event, Pending, Phase, ScramLookup, Session};

impl Session {
    fn nonce(&mut self) -> Vec<u8> {
        let mut n = self.entropy.to_vec();
        n.extend_from_slice(&self.nonces.to_be_bytes());
        self.nonces += 1;
        n
    }

    pub(super) fn mechanism_allowed(&self, m: Mechanism) -> bool {
        if self.config.require_tls_for_auth && !self.tls {
            return false;
        }
        !m.is_plaintext() || self.tls || self.config.allow_plaintext_auth
    }

    pub(super) fn auth(&mut self, name: &str, initial: Option<InitialResponse<'_>>) {
        if !self.esmtp() {
            self.peer_error(replies::AUTH_NEEDS_EHLO);
            return;
        }
        if self.identity.is_some() {
            self.peer_error(replies::ALREADY_AUTHENTICATED);
            return;
        }
        if self.transaction.is_some() {
            self.peer_error(replies::AUTH_IN_TRANSACTION);
            return;
        }
        let Some(mech) =
            Mechanism::from_name(name).filter(|m| self.config.auth_mechanisms.contains(m))
        else {
            self.peer_error(replies::UNKNOWN_MECHANISM);
            return;
        };
        if !self.mechanism_allowed(mech) {
            self.peer_error(replies::ENCRYPTION_REQUIRED);
            return;
        }
        let initial = match initial {
            None => None,
            Some(InitialResponse::Empty) => Some(Vec::new()),
            Some(InitialResponse::Base64(t)) => match sasl::decode_base64(&t) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.peer_error(replies::BAD_INITIAL_RESPONSE);
                    return;
                }
            },
        };
        let nonce = self.nonce();
        let hostname = self.config.hostname.to_string();
        let mut exchange = Box::new(ServerExchange::new(mech, &nonce, &hostname));
        let step = exchange.start(initial.as_deref());
        self.auth_step(exchange, step);
    }

    pub(super) fn auth_line(&mut self, line: &[u8]) {
        let Phase::AuthResponse(mut exchange) = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return;
        };
        let step = match sasl::decode_response(line) {
            Ok(Response::Cancel) => {
                self.peer_error(replies::AUTH_CANCELLED);
                return;
            }
            Err(_) => {
                self.peer_error(replies::BAD_AUTH_RESPONSE);
                return;
            }
            Ok(Response::Data(d)) => exchange.respond(&d),
        };
        self.auth_step(exchange, step);
    }

    fn auth_step(&mut self, exchange: Box<ServerExchange>, step: ServerStep) {
        let mechanism = exchange.mechanism();
        match step {
            ServerStep::Challenge(c) => {
                if c.is_empty() {
                    // `334 ` with nothing after the space.
                    self.say(replies::EMPTY_CHALLENGE);
                } else {
                    let challenge = Reply::trusted(ReplyCode::CHALLENGE, None, sasl::encode(&c));
                    challenge.encode(&mut self.out);
                }
                self.phase = Phase::AuthResponse(exchange);
            }
            ServerStep::Verify(creds) => {
                let identity = Identity {
                    username: creds.username().to_owned(),
                    authzid: match &creds {
                        Credentials::Password { authzid, .. } => authzid.clone(),
                        _ => None,
                    },
                };
                let token = self.token(Pending::Auth(identity));
                self.event(Event::Auth(Box::new(AuthRequest {
                    token,
                    mechanism,
                    check: AuthCheck::Credentials(creds),
                })));
            }
            ServerStep::LookupScram { username, authzid } => {
                let token = self.token(Pending::Scram(exchange));
                self.event(Event::ScramLookup(Box::new(ScramLookup {
                    token,
                    username,
                    authzid,
                })));
            }
            ServerStep::Success(identity) => {
                let token = self.token(Pending::Auth(identity.clone()));
                self.event(Event::Auth(Box::new(AuthRequest {
                    token,
                    mechanism,
                    check: AuthCheck::Verified(identity),
                })));
            }
            ServerStep::Failure(SaslError::Malformed(_) | SaslError::Base64) => {
                self.say(replies::MALFORMED_AUTH);
                self.auth_failed();
            }
            ServerStep::Failure(_) => {
                self.say(replies::AUTH_FAILED);
                self.auth_failed();
            }
            _ => self.say(replies::AUTH_TEMPORARY),
        }
    }

    pub(super) fn scram_continue(
        &mut self,
        mut exchange: Box<ServerExchange>,
        creds: Option<ScramCredentials>,
    ) {
        let step = exchange.scram_credentials(creds);
        self.auth_step(exchange, step);
    }
}
