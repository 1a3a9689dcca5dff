//! Command lines: parsing, the commands of each state, and SASL.

use sasl::server::{ServerExchange, ServerStep};
use sasl::{Mechanism, Response, Secret};

use crate::command::{Command, CommandError};
use crate::response::{RespCode, Status, encode_multiline};

use super::{DropEntry, Event, LoginCheck, Output, Pending, Session, State};

impl Session {
    pub(super) fn line(&mut self, line: &[u8]) {
        if let Some(mut exchange) = self.auth.take() {
            match sasl::decode_response(line) {
                Ok(Response::Cancel) => self.peer_error("authentication cancelled"),
                Err(_) => self.peer_error("invalid base64"),
                Ok(Response::Data(d)) => {
                    let step = exchange.respond(&d);
                    self.sasl_step(exchange, step);
                }
            }
            return;
        }
        match Command::parse_line(line) {
            Ok(cmd) => self.command(cmd),
            Err(CommandError::Unknown) => self.peer_error("unknown command"),
            Err(_) => self.peer_error("syntax error"),
        }
    }

    pub(super) fn command(&mut self, cmd: Command<'_>) {
        let authorization = matches!(self.state, State::Authorization { .. });
        match cmd {
            Command::Capa => {
                let mut caps = vec![
                    "TOP".to_owned(),
                    "UIDL".to_owned(),
                    "RESP-CODES".to_owned(),
                    "PIPELINING".to_owned(),
                    "AUTH-RESP-CODE".to_owned(),
                    "UTF8".to_owned(),
                ];
                if authorization && self.plaintext_ok() {
                    caps.push("USER".into());
                }
                let mechs: Vec<&str> = self
                    .config
                    .auth_mechanisms
                    .iter()
                    .filter(|m| !m.is_plaintext() || self.plaintext_ok())
                    .map(|m| m.name())
                    .collect();
                if authorization && !mechs.is_empty() {
                    caps.push(format!("SASL {}", mechs.join(" ")));
                }
                if authorization && self.config.stls && !self.tls {
                    caps.push("STLS".into());
                }
                self.status(Status::ok("capability list follows"));
                encode_multiline(caps.join("\r\n").as_bytes(), &mut self.out);
            }
            Command::Noop if !authorization => self.status(Status::ok("")),
            Command::Quit => {
                if authorization {
                    self.status(Status::ok("bye"));
                    self.close();
                    return;
                }
                let deleted: Vec<usize> = self
                    .maildrop
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, d))| *d)
                    .map(|(i, _)| i)
                    .collect();
                if deleted.is_empty() {
                    self.status(Status::ok("bye"));
                    self.close();
                } else {
                    let token = self.token(Pending::Commit);
                    self.event(Event::Commit { token, deleted });
                }
            }
            Command::Stls => {
                if !authorization || self.tls || !self.config.stls {
                    self.peer_error("STLS not available now");
                    return;
                }
                self.status(Status::ok("begin TLS negotiation"));
                self.flush();
                self.state = State::AwaitTls;
                self.inbox.clear();
                self.queue.push_back(Output::StartTls);
            }
            Command::Utf8 => {
                self.utf8 = true;
                self.status(Status::ok("UTF8 enabled"));
            }
            Command::User(name) if authorization => {
                if !self.plaintext_ok() {
                    self.peer_error("USER/PASS need TLS; use STLS first");
                    return;
                }
                self.state = State::Authorization {
                    user: Some(name.as_str().to_owned()),
                };
                self.status(Status::ok("send PASS"));
            }
            Command::Pass(pw) if authorization => {
                let State::Authorization { user: Some(user) } =
                    std::mem::replace(&mut self.state, State::Authorization { user: None })
                else {
                    self.peer_error("USER first");
                    return;
                };
                let token = self.token(Pending::Login(user.clone()));
                self.event(Event::Login {
                    token,
                    username: user,
                    check: LoginCheck::Password(Secret::new(pw.expose().as_str().to_owned())),
                });
            }
            Command::Apop { name, digest } if authorization => {
                if !self.config.apop {
                    self.peer_error("APOP not available");
                    return;
                }
                let name = name.as_str().to_owned();
                let token = self.token(Pending::Login(name.clone()));
                let timestamp = self.timestamp.clone();
                self.event(Event::Login {
                    token,
                    username: name,
                    check: LoginCheck::Apop {
                        timestamp,
                        digest: digest.as_str().to_owned(),
                    },
                });
            }
            Command::Auth {
                mechanism,
                initial_response,
            } if authorization => self.auth_command(
                mechanism.as_ref().map(|m| m.as_str()),
                initial_response.as_ref().map(|ir| ir.expose().as_str()),
            ),
            Command::Stat if !authorization => {
                let live: Vec<&DropEntry> = self
                    .maildrop
                    .iter()
                    .filter(|(_, d)| !*d)
                    .map(|(m, _)| m)
                    .collect();
                let size: u64 = live.iter().map(|m| m.size()).sum();
                self.status(Status::ok(format!("{} {size}", live.len())));
            }
            Command::List(n) | Command::Uidl(n) if !authorization => {
                let uidl = matches!(cmd, Command::Uidl(_));
                let show = |i: usize, m: &DropEntry| {
                    if uidl {
                        format!("{} {}", i + 1, m.uidl())
                    } else {
                        format!("{} {}", i + 1, m.size())
                    }
                };
                match n {
                    Some(n) => match self.message(n) {
                        Some(i) => {
                            let text = show(i, &self.maildrop[i].0);
                            self.status(Status::ok(text));
                        }
                        None => self.peer_error("no such message"),
                    },
                    None => {
                        let lines: Vec<String> = self
                            .maildrop
                            .iter()
                            .enumerate()
                            .filter(|(_, (_, d))| !*d)
                            .map(|(i, (m, _))| show(i, m))
                            .collect();
                        self.status(Status::ok(format!("{} messages", lines.len())));
                        encode_multiline(lines.join("\r\n").as_bytes(), &mut self.out);
                    }
                }
            }
            Command::Retr(n) | Command::Top(n, _) if !authorization => {
                let lines = if let Command::Top(_, m) = cmd {
                    Some(m)
                } else {
                    None
                };
                match self.message(n) {
                    Some(index) => {
                        let token = self.token(Pending::Retrieve(lines));
                        self.event(Event::Retrieve { token, index });
                    }
                    None => self.peer_error("no such message"),
                }
            }
            Command::Dele(n) if !authorization => match self.message(n) {
                Some(i) => {
                    self.maildrop[i].1 = true;
                    self.status(Status::ok(format!("message {n} deleted")));
                }
                None => self.peer_error("no such message"),
            },
            Command::Rset if !authorization => {
                for m in &mut self.maildrop {
                    m.1 = false;
                }
                self.status(Status::ok(format!(
                    "maildrop has {} messages",
                    self.maildrop.len()
                )));
            }
            _ => self.peer_error("command not valid in this state"),
        }
    }

    /// The index of live message `n` (1-based), if any.
    pub(super) fn message(&self, n: u32) -> Option<usize> {
        let i = (n as usize).checked_sub(1)?;
        self.maildrop.get(i).filter(|(_, d)| !*d).map(|_| i)
    }

    pub(super) fn auth_command(&mut self, mechanism: Option<&str>, initial: Option<&str>) {
        let Some(name) = mechanism else {
            self.status(Status::ok("mechanisms follow"));
            let names: Vec<&str> = self
                .config
                .auth_mechanisms
                .iter()
                .map(|m| m.name())
                .collect();
            encode_multiline(names.join("\r\n").as_bytes(), &mut self.out);
            return;
        };
        let Some(mech) =
            Mechanism::from_name(name).filter(|m| self.config.auth_mechanisms.contains(m))
        else {
            self.peer_error("unsupported mechanism");
            return;
        };
        if mech.is_plaintext() && !self.plaintext_ok() {
            self.peer_error("mechanism needs TLS; use STLS first");
            return;
        }
        let initial = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(t) => match sasl::decode_base64(t) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.peer_error("invalid base64");
                    return;
                }
            },
        };
        let mut nonce = self.entropy.to_vec();
        nonce.extend_from_slice(&self.nonces.to_be_bytes());
        self.nonces += 1;
        let mut exchange = Box::new(ServerExchange::new(mech, &nonce, &self.config.hostname));
        let step = exchange.start(initial.as_deref());
        self.sasl_step(exchange, step);
    }

    pub(super) fn sasl_step(&mut self, exchange: Box<ServerExchange>, step: ServerStep) {
        match step {
            ServerStep::Challenge(c) => {
                self.out.extend_from_slice(b"+ ");
                self.out.extend_from_slice(sasl::encode(&c).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.auth = Some(exchange);
            }
            ServerStep::Verify(creds) => {
                let username = creds.username().to_owned();
                let check = match creds {
                    sasl::server::Credentials::Password { password, .. } => {
                        LoginCheck::Password(password)
                    }
                    sasl::server::Credentials::CramMd5 { proof, .. } => LoginCheck::CramMd5(proof),
                    _ => {
                        self.status(Status::err_code(RespCode::Auth, "authentication failed"));
                        return;
                    }
                };
                let token = self.token(Pending::Login(username.clone()));
                self.event(Event::Login {
                    token,
                    username,
                    check,
                });
            }
            ServerStep::LookupScram { username, .. } => {
                let token = self.token(Pending::Scram(exchange));
                self.event(Event::ScramLookup { token, username });
            }
            ServerStep::Success(id) => {
                let token = self.token(Pending::Login(id.username.clone()));
                self.event(Event::Login {
                    token,
                    username: id.username,
                    check: LoginCheck::Verified,
                });
            }
            _ => {
                self.status(Status::err_code(RespCode::Auth, "authentication failed"));
                self.login_failed();
            }
        }
    }
}
