//! The SMTP, submission and LMTP handler: glue between a
//! `smtp_proto::server::Session` and the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mailstore::queue::{Envelope, Notify, Return};
use sasl::Mechanism;
use smtp_proto::params::Ret;
use smtp_proto::replies;
use smtp_proto::server::{AuthCheck, Config, Event, Mode, Recipient, Session, TraceInfo};
use smtp_proto::{BareLineEnding, Domain, FixedReply, Host, ReversePath};

use crate::Handler;
use crate::accounts::verify_password;
use crate::routing::{Ctx, Route};
use crate::spool::Spooler;
use mailstore::UserName;

/// Which SMTP service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// MX: mail for local users from anyone, no AUTH, no relaying.
    Mx,
    /// Submission (RFC 6409): AUTH after STARTTLS, then any recipient.
    Submission,
    /// LMTP (RFC 2033): final delivery, one reply per recipient.
    Lmtp,
}

impl Role {
    /// Its name in logs and in the `listening` line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Mx => "smtp",
            Role::Submission => "submission",
            Role::Lmtp => "lmtp",
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A recipient whose mailbox is at its quota (RFC 5321 §4.5.3.1.10: 452
/// for a temporary shortage of storage; the sender retries).
const MAILBOX_FULL: FixedReply = FixedReply::new(452, Some((4, 2, 2)), "Mailbox full");

/// LMTP's answer for a recipient whose copy is stored.
const DELIVERED: FixedReply = FixedReply::new(250, Some((2, 0, 0)), "Delivered");
/// SMTP's answer for a stored message, followed by its queue id.
const QUEUED: FixedReply = FixedReply::new(250, Some((2, 0, 0)), "Ok: queued as");

/// One SMTP, submission or LMTP connection: the glue between its session
/// and the store. A message streams to the store's spool as it arrives;
/// memory holds at most 128 KiB of it.
#[derive(Debug)]
pub struct SmtpConn {
    ctx: Arc<Ctx>,
    role: Role,
    peer: SocketAddr,
    /// The message being received.
    spool: Spooler,
    /// Where each accepted recipient of the transaction goes.
    routes: Vec<Route>,
}

impl SmtpConn {
    /// A connection from `peer` to the `role` service.
    pub fn new(ctx: Arc<Ctx>, role: Role, peer: SocketAddr) -> Self {
        SmtpConn {
            spool: Spooler::new(ctx.store.clone()),
            ctx,
            role,
            peer,
            routes: Vec::new(),
        }
    }
}

impl Handler<Session> for SmtpConn {
    async fn handle(&mut self, s: &mut Session, tls: Option<&str>, event: Event) {
        let ctx = self.ctx.clone();
        let r = match event {
            Event::Mail(m) => {
                self.routes.clear();
                if self.role == Role::Submission {
                    let who = s.identity().map(|i| i.username.clone()).unwrap_or_default();
                    let owned = match &m.from {
                        ReversePath::Mailbox(b) => {
                            b.local_part.as_str().eq_ignore_ascii_case(&who)
                                && matches!(&b.host, Host::Domain(d) if ctx.is_local_domain(d.as_str()))
                        }
                        ReversePath::Null => false,
                    };
                    if owned {
                        s.accept(m.token)
                    } else {
                        s.reject(m.token, replies::SENDER_NOT_OWNED)
                    }
                } else {
                    s.accept(m.token)
                }
            }
            // Routing reads in-memory tables only: no store lock, no I/O.
            Event::Rcpt(r) => match (ctx.route(&r.to), self.role) {
                (Route::Local(u), _)
                    if ctx.quota > 0 && {
                        let (c, u) = (ctx.clone(), u.clone());
                        // Full: not one more octet fits.
                        tokio::task::spawn_blocking(move || c.over_quota(&u, 1))
                            .await
                            .unwrap_or(false)
                    } =>
                {
                    tracing::info!(rcpt = %r.to, code = 452, reason = "over quota", "recipient refused");
                    s.reject(r.token, MAILBOX_FULL)
                }
                (route @ Route::Local(_), _) => {
                    self.routes.push(route);
                    s.accept(r.token)
                }
                (Route::UnknownLocal, _) | (Route::Foreign, Role::Lmtp) => {
                    tracing::info!(rcpt = %r.to, code = 550, reason = "no such user", "recipient refused");
                    s.reject(r.token, replies::NO_SUCH_USER)
                }
                (Route::Foreign, Role::Submission) => {
                    self.routes.push(Route::Foreign);
                    s.accept(r.token)
                }
                (Route::Foreign, Role::Mx) => {
                    tracing::info!(rcpt = %r.to, code = 550, reason = "relaying denied", "recipient refused");
                    s.reject(r.token, replies::RELAY_DENIED)
                }
            },
            Event::Auth(a) => {
                let ok = match &a.check {
                    AuthCheck::Credentials(sasl::server::Credentials::Password {
                        username,
                        password,
                        ..
                    }) => {
                        let hash = ctx
                            .accounts
                            .read()
                            .ok()
                            .and_then(|acc| acc.map.get(username).map(|a| a.hash.clone()));
                        let pw = password.expose().clone();
                        match hash {
                            Some(h) => {
                                tokio::task::spawn_blocking(move || verify_password(&h, &pw))
                                    .await
                                    .unwrap_or(false)
                            }
                            None => false,
                        }
                    }
                    AuthCheck::Verified(id) => ctx
                        .accounts
                        .read()
                        .is_ok_and(|acc| acc.map.contains_key(&id.username)),
                    _ => false,
                };
                let user = auth_user(&a.check);
                if ok {
                    tracing::info!(user, mechanism = %a.mechanism, "authenticated");
                    s.accept(a.token)
                } else {
                    tracing::info!(user, mechanism = %a.mechanism, code = 535, "authentication refused");
                    s.reject(a.token, replies::AUTH_FAILED)
                }
            }
            Event::ScramLookup(l) => {
                let creds = ctx
                    .accounts
                    .read()
                    .ok()
                    .and_then(|acc| acc.map.get(&l.username).map(|a| a.scram.clone()));
                s.scram_credentials(l.token, creds)
            }
            Event::MessageData(chunk) => {
                self.spool.push(&chunk).await;
                Ok(())
            }
            Event::MessageAborted => {
                self.spool.abort().await;
                Ok(())
            }
            Event::Message(m) => {
                let started = std::time::Instant::now();
                let spooled = self.spool.finish().await;
                let id = queue_id();
                let date = mailstore::queue::rfc5322_date(now_secs());
                let single = (m.recipients.len() == 1).then(|| &m.recipients[0].to);
                let header = s.received_header(&TraceInfo {
                    remote_ip: Some(self.peer.ip()),
                    remote_name: None,
                    id: Some(&id),
                    tls,
                    recipient: single,
                    date: &date,
                });
                // Final delivery records the envelope sender (RFC 5321
                // §4.4); mail relayed on gets it where it is delivered.
                let local_prefix = format!("{}{header}", return_path(&m.from)).into_bytes();
                let queue_prefix = header.into_bytes();
                let routes = if self.routes.len() == m.recipients.len() {
                    std::mem::take(&mut self.routes)
                } else {
                    m.recipients.iter().map(|r| ctx.route(&r.to)).collect()
                };
                self.routes.clear();
                // Mail for other domains is queued first, with its DSN
                // parameters: if that fails, nothing was delivered yet and
                // the client's retry duplicates nothing.
                let remote: Vec<(String, Notify, Option<String>)> = m
                    .recipients
                    .iter()
                    .zip(&routes)
                    .filter(|(_, route)| matches!(route, Route::Foreign))
                    .map(|(r, _)| queue_recipient(r))
                    .collect();
                let mut queued = spooled.is_some();
                let mut spooled = spooled;
                if queued && !remote.is_empty() {
                    let env = Envelope {
                        from: match &m.from {
                            ReversePath::Null => String::new(),
                            ReversePath::Mailbox(b) => b.to_string(),
                        },
                        recipients: remote,
                        envid: m.params.envid.as_ref().map(|e| e.as_str().to_owned()),
                        ret: m.params.ret.map(|r| match r {
                            Ret::Full => Return::Full,
                            Ret::Headers => Return::Headers,
                        }),
                    };
                    let store = ctx.store.clone();
                    let m = spooled.take();
                    let t = std::time::Instant::now();
                    let q = tokio::task::spawn_blocking(move || {
                        let mut m = m.ok_or(mailstore::Error::Poisoned)?;
                        let mut reader = m.reader(&queue_prefix)?;
                        store.queue_add(env, &mut reader, now_secs())?;
                        Ok::<_, mailstore::Error>(m)
                    })
                    .await;
                    ctx.metrics.commit(t.elapsed());
                    match q {
                        Ok(Ok(m)) => {
                            spooled = Some(m);
                            ctx.queue_wake.notify_one();
                        }
                        _ => queued = false,
                    }
                }
                // Every local recipient with one durable commit.
                let users: Vec<UserName> = routes
                    .iter()
                    .filter_map(|r| match r {
                        Route::Local(u) => Some(u.clone()),
                        _ => None,
                    })
                    .collect();
                let delivered_to = users.clone();
                let local_results = match spooled.take() {
                    Some(m) if queued && !users.is_empty() => {
                        let t = std::time::Instant::now();
                        let store = ctx.store.clone();
                        let r = tokio::task::spawn_blocking(move || {
                            m.deliver(&store, &local_prefix, &users)
                        })
                        .await
                        .unwrap_or_default();
                        ctx.metrics.commit(t.elapsed());
                        r
                    }
                    Some(m) => {
                        let _ = tokio::task::spawn_blocking(move || drop(m)).await;
                        Vec::new()
                    }
                    None => Vec::new(),
                };
                // What IMAP's FETCH needs of the message, derived once now,
                // after the commit and off the reply's path.
                let stored: Vec<(UserName, u32)> = delivered_to
                    .into_iter()
                    .zip(&local_results)
                    .filter_map(|(u, r)| r.as_ref().ok().map(|d| (u, d.uid)))
                    .collect();
                if !stored.is_empty() {
                    let store = ctx.store.clone();
                    tokio::task::spawn_blocking(move || {
                        crate::imap::keep_summaries(
                            &store,
                            &mailstore::MailboxName::inbox(),
                            &stored,
                        )
                    });
                }
                let mut local_results = local_results.into_iter();
                let mut results = Vec::new();
                for route in &routes {
                    let ok = match route {
                        Route::Local(_) if queued => {
                            matches!(local_results.next(), Some(Ok(_)))
                        }
                        Route::Local(_) => false,
                        Route::Foreign => queued,
                        // A local user removed since RCPT: not relayed.
                        Route::UnknownLocal => false,
                    };
                    results.push(ok);
                }
                let delivered = results.iter().filter(|ok| **ok).count();
                ctx.metrics.message(
                    delivered == results.len(),
                    if delivered == results.len() {
                        ""
                    } else {
                        "store"
                    },
                    started.elapsed(),
                );
                if delivered == results.len() {
                    tracing::info!(
                        id,
                        size = m.size,
                        recipients = results.len(),
                        from = %m.from,
                        "message accepted"
                    );
                } else {
                    tracing::warn!(
                        id,
                        size = m.size,
                        recipients = results.len(),
                        delivered,
                        code = 451,
                        reason = "store or queue write failed",
                        "message refused"
                    );
                }
                if self.role == Role::Lmtp {
                    let each = results
                        .iter()
                        .map(|ok| {
                            if *ok {
                                DELIVERED.into()
                            } else {
                                replies::LOCAL_ERROR.into()
                            }
                        })
                        .collect();
                    s.respond_each(m.token, each)
                } else if results.iter().all(|ok| *ok) {
                    s.accept_with(m.token, QUEUED.with_detail(&id))
                } else {
                    s.reject(m.token, replies::LOCAL_ERROR)
                }
            }
            // A decision this handler does not know: refuse it, never drop
            // its token.
            other => match other.into_token() {
                Some(token) => s.reject(token, replies::LOCAL_ERROR),
                None => Ok(()),
            },
        };
        if let Err(e) = r {
            tracing::warn!(error = %e.error, "decision refused");
        }
    }
}

/// The `Return-Path:` header for final delivery: the reverse path, `<>`
/// for the null sender.
pub fn return_path(from: &ReversePath<'_>) -> String {
    let mut b = bytes::BytesMut::new();
    from.encode(&mut b);
    format!("Return-Path: {}\r\n", String::from_utf8_lossy(&b))
}

/// A queue id unique in this process and across restarts: the time and a
/// counter, so two messages of one connection in one second differ.
pub fn queue_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:X}{:05X}{:X}", now_secs(), nanos >> 12, n)
}

/// A recipient as the queue keeps it: address, DSN `NOTIFY`, `ORCPT`.
fn queue_recipient(r: &Recipient) -> (String, Notify, Option<String>) {
    let mut b = bytes::BytesMut::new();
    r.to.encode(&mut b);
    let address = String::from_utf8_lossy(&b)
        .trim_matches(['<', '>'])
        .to_owned();
    let notify = match r.params.notify {
        Some(n) => Notify {
            success: n.success,
            failure: n.failure,
            delay: n.delay,
        },
        None => Notify::default(),
    };
    let orcpt = r
        .params
        .orcpt
        .as_ref()
        .map(|o| o.address.as_str().to_owned());
    (address, notify, orcpt)
}

/// The user name an AUTH attempt claims (never its secret), for logs.
fn auth_user(check: &AuthCheck) -> String {
    match check {
        AuthCheck::Credentials(c) => c.username().to_owned(),
        AuthCheck::Verified(id) => id.username.clone(),
        _ => String::new(),
    }
}

/// What the command line sets for every SMTP service.
#[derive(Debug, Clone, Copy)]
pub struct SmtpOptions {
    /// Largest message in octets.
    pub max_message_size: u64,
    /// Bare CR/LF in command lines and bodies.
    pub bare_newline: BareLineEnding,
    /// Whether AUTH PLAIN/LOGIN work before STARTTLS on submission (for
    /// setups whose clients cannot do TLS; off by default).
    pub allow_plaintext_auth: bool,
}

/// The session configuration of one SMTP service.
pub fn session_config(hostname: Domain<'static>, role: Role, opts: &SmtpOptions) -> Config {
    let mut c = Config::new(hostname);
    c.limits.max_message_size = opts.max_message_size;
    c.line_ending = opts.bare_newline;
    c.body_line_ending = opts.bare_newline;
    match role {
        Role::Mx => {}
        Role::Submission => {
            c.require_auth = true;
            c.require_tls_for_auth = !opts.allow_plaintext_auth;
            c.allow_plaintext_auth = opts.allow_plaintext_auth;
            c.auth_mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];
            c.greeting = "ESMTP mailkit submission".into();
        }
        Role::Lmtp => {
            c.mode = Mode::Lmtp;
            c.extensions.starttls = false;
            c.greeting = "LMTP mailkit".into();
        }
    }
    c
}
