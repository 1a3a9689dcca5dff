//! The POP3 handler: glue between a `pop3_proto::server::Session` and the
//! store.

use std::sync::Arc;

use mailstore::UserName;

use crate::Handler;
use crate::accounts::verify_password;
use crate::routing::Ctx;

/// A POP3 connection: the glue between a `pop3_proto::server::Session`
/// and the store, with the user and the maildrop snapshot after login.
#[derive(Debug)]
pub struct Pop3Conn {
    ctx: Arc<Ctx>,
    user: Option<UserName>,
    snapshot: Option<mailstore::Pop3Snapshot>,
}

impl Pop3Conn {
    /// A connection not logged in yet.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Pop3Conn {
            ctx,
            user: None,
            snapshot: None,
        }
    }
}

impl Handler<pop3_proto::server::Session> for Pop3Conn {
    async fn handle(
        &mut self,
        s: &mut pop3_proto::server::Session,
        _tls: Option<&str>,
        event: pop3_proto::server::Event,
    ) {
        use pop3_proto::response::{RespCode, Status};
        use pop3_proto::server::{DropEntry, Event as E, LoginCheck};
        let ctx = self.ctx.clone();
        let r = match event {
            E::Login {
                token,
                username,
                check,
            } => {
                let account = ctx
                    .accounts
                    .read()
                    .ok()
                    .and_then(|a| a.map.get(&username).cloned());
                let ok = match (account, check) {
                    (Some(a), LoginCheck::Password(p)) => {
                        let pw = p.expose().clone();
                        tokio::task::spawn_blocking(move || verify_password(&a.hash, &pw))
                            .await
                            .unwrap_or(false)
                    }
                    (Some(a), LoginCheck::Apop { timestamp, digest }) => a
                        .apop
                        .as_deref()
                        .is_some_and(|pw| LoginCheck::verify_apop(&timestamp, &digest, pw)),
                    (Some(a), LoginCheck::CramMd5(proof)) => {
                        a.apop.as_deref().is_some_and(|pw| proof.verify(pw))
                    }
                    (Some(_), LoginCheck::Verified) => true,
                    _ => false,
                };
                if ok {
                    tracing::info!(user = %username, "authenticated");
                } else {
                    tracing::info!(user = %username, reason = "invalid credentials", "authentication refused");
                }
                let store = ctx.store.clone();
                let name = username.clone();
                let snapshot = tokio::task::spawn_blocking(move || {
                    UserName::new(&name)
                        .ok()
                        .filter(|_| ok)
                        .and_then(|u| store.pop3_snapshot(&u).ok().map(|snap| (u, snap)))
                })
                .await
                .ok()
                .flatten();
                match snapshot {
                    Some((user, snap)) => {
                        let drop: Result<Vec<DropEntry>, _> = snap
                            .messages
                            .iter()
                            .enumerate()
                            .map(|(i, (_, size, uidl))| {
                                // A stored id UIDL cannot send gets a stable stand-in.
                                DropEntry::new(*size, uidl.clone())
                                    .or_else(|_| DropEntry::new(*size, format!("x{i}")))
                            })
                            .collect();
                        match drop {
                            Ok(drop) => {
                                self.user = Some(user);
                                self.snapshot = Some(snap);
                                s.open_maildrop(token, drop)
                            }
                            Err(_) => s.reject(
                                token,
                                Status::err_code(RespCode::SysTemp, "maildrop unreadable"),
                            ),
                        }
                    }
                    None => s.reject(
                        token,
                        Status::err_code(RespCode::Auth, "invalid credentials"),
                    ),
                }
            }
            E::ScramLookup { token, username } => {
                let creds = ctx
                    .accounts
                    .read()
                    .ok()
                    .and_then(|a| a.map.get(&username).map(|a| a.scram.clone()));
                s.scram_credentials(token, creds)
            }
            E::Retrieve { token, index } => {
                let uid = self
                    .snapshot
                    .as_ref()
                    .and_then(|snap| snap.messages.get(index))
                    .map(|m| m.0);
                let bytes = match (uid, &self.user) {
                    (Some(uid), Some(user)) => {
                        let (store, user) = (ctx.store.clone(), user.clone());
                        tokio::task::spawn_blocking(move || {
                            let mut v = Vec::new();
                            store
                                .open_message(&user, &mailstore::MailboxName::inbox(), uid)
                                .ok()
                                .and_then(|mut r| std::io::Read::read_to_end(&mut r, &mut v).ok())
                                .map(|_| v)
                        })
                        .await
                        .ok()
                        .flatten()
                    }
                    _ => None,
                };
                match bytes {
                    Some(b) => s.send_message(token, &b),
                    None => s.reject(token, Status::err("message was deleted by another session")),
                }
            }
            E::Commit { token, deleted } => {
                let done = match &self.snapshot {
                    Some(snap) => {
                        let uids: Vec<u32> = deleted
                            .iter()
                            .filter_map(|i| snap.messages.get(*i))
                            .map(|m| m.0)
                            .collect();
                        let (store, snap) = (ctx.store.clone(), snap.clone());
                        tokio::task::spawn_blocking(move || store.pop3_commit(&snap, &uids).is_ok())
                            .await
                            .unwrap_or(false)
                    }
                    None => false,
                };
                if done {
                    s.accept(token)
                } else {
                    s.reject(
                        token,
                        Status::err_code(RespCode::SysTemp, "some deleted messages not removed"),
                    )
                }
            }
            // A decision this handler does not know: refuse it.
            other => match other.into_token() {
                Some(token) => {
                    s.reject(token, Status::err_code(RespCode::SysTemp, "not available"))
                }
                None => Ok(()),
            },
        };
        if let Err(e) = r {
            tracing::warn!(error = %e.error, "pop3 decision refused");
        }
    }
}
