//! The queue runner: takes due messages from the store's queue (leased,
//! so no other runner sends them meanwhile), groups their recipients by
//! destination, resolves MX and address records (or takes the smarthost),
//! delivers with [`smtp_proto::client::Session`] reusing each connection
//! for every message to that destination, and records each recipient's
//! outcome at once: delivered, deferred (retried on the store's schedule)
//! or failed (bounced to the sender with an RFC 3464 report).

pub mod conn;
pub mod dns;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mailstore::queue::{
    Action, Attempt, Envelope as QueueEnvelope, QueueId, QueuedMessage, RetryPolicy,
};
use sasl::{Mechanism, Secret};
use smtp_proto::client::{self, Envelope, Recipient};
use smtp_proto::delivery::{self, Hop, Next};
use smtp_proto::params::{BodyType, Notify, OriginalRecipient, Ret, XText};
use smtp_proto::{ForwardPath, Host, MailParameters, Mailbox, RcptParameters, Reply, ReversePath};

use crate::routing::{Ctx, Route};
use crate::smtp::now_secs;
use crate::tls::OutboundTls;
use conn::{BodySource, Conn, ConnError, InMemory, Streamed};
use dns::Dns;

/// A smarthost that takes all outgoing mail.
#[derive(Debug, Clone)]
pub struct Relay {
    /// `HOST:PORT`.
    pub addr: String,
    /// User name and password for AUTH, if the smarthost wants them.
    pub auth: Option<(String, Secret<String>)>,
}

/// How the runner sends.
#[derive(Debug)]
pub struct Outbound {
    /// The name in EHLO, and the reporting MTA of DSNs.
    pub hostname: String,
    /// Everything through this smarthost instead of by MX.
    pub relay: Option<Relay>,
    /// The resolver for MX and address records.
    pub dns: Option<Dns>,
    /// The port of the MX hosts (25).
    pub port: u16,
    /// STARTTLS policy.
    pub tls: OutboundTls,
    /// Retry schedule and lifetime.
    pub policy: RetryPolicy,
    /// Connections at once to one destination.
    pub per_destination: usize,
    /// Connections at once in all.
    pub max_connections: usize,
    /// The TCP connect timeout.
    pub connect_timeout: Duration,
    /// Source address of outgoing connections.
    pub bind: Option<IpAddr>,
    /// DKIM signing keys.
    pub dkim: Option<crate::dkim::Keys>,
    /// Lease length in seconds: a runner that dies holding messages leaves
    /// them to the next one after this.
    pub lease: i64,
}

/// Messages read whole into memory (for DKIM, the 8-bit downgrade, or
/// because they are small); larger ones stream.
const IN_MEMORY: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
struct Item {
    msg: QueuedMessage,
    rcpts: Vec<usize>,
}

/// Per recipient index: the attempt's outcome.
type Results = Vec<(usize, Attempt)>;
/// Per recipient index: a success (or relayed) report to send.
type Reports = Vec<(usize, Action)>;

/// Outcomes gathered per message until every destination it went to has
/// reported (the count of parts still out), then recorded once.
#[derive(Debug, Default)]
struct Tally {
    open: HashMap<QueueId, (usize, Results, Reports)>,
}

/// Runs the queue until the process ends.
pub async fn run(ctx: Arc<Ctx>, out: Arc<Outbound>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(out.max_connections.max(1)));
    let dests: Arc<Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    loop {
        let free = slots.available_permits();
        let leases = if free == 0 {
            Vec::new()
        } else {
            let store = ctx.store.clone();
            let lease = out.lease;
            tokio::task::spawn_blocking(move || {
                let leases = store.queue_due(now_secs(), lease, free.min(200));
                leases
                    .into_iter()
                    .filter_map(|l| {
                        store.queue_get(l.id).map(|msg| Item {
                            msg,
                            rcpts: l.recipients,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };
        if leases.is_empty() {
            tokio::select! {
                _ = ctx.queue_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        // Group the recipients by destination.
        let mut groups: HashMap<String, Vec<Item>> = HashMap::new();
        let mut local: Vec<Item> = Vec::new();
        for item in leases {
            let mut by_dest: HashMap<String, Vec<usize>> = HashMap::new();
            let mut here = Vec::new();
            for &i in &item.rcpts {
                let Some(r) = item.msg.recipients.get(i) else {
                    continue;
                };
                let domain = r
                    .address
                    .rsplit_once('@')
                    .map_or("", |d| d.1)
                    .to_ascii_lowercase();
                if ctx.is_local_domain(&domain) {
                    here.push(i);
                } else {
                    let key = match &out.relay {
                        Some(r) => format!("relay {}", r.addr),
                        None => domain,
                    };
                    by_dest.entry(key).or_default().push(i);
                }
            }
            let parts = by_dest.len() + usize::from(!here.is_empty());
            lock(&tally)
                .open
                .insert(item.msg.id, (parts, Vec::new(), Vec::new()));
            if !here.is_empty() {
                local.push(Item {
                    msg: item.msg.clone(),
                    rcpts: here,
                });
            }
            for (dest, rcpts) in by_dest {
                groups.entry(dest).or_default().push(Item {
                    msg: item.msg.clone(),
                    rcpts,
                });
            }
        }
        if !local.is_empty() {
            let (ctx, out, tally) = (ctx.clone(), out.clone(), tally.clone());
            tokio::spawn(async move {
                for item in local {
                    let results = deliver_local(&ctx, &item).await;
                    report(&ctx, &out, &tally, &item, results, Vec::new()).await;
                }
            });
        }
        for (dest, items) in groups {
            let limit = lock(&dests)
                .entry(dest.clone())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(out.per_destination.max(1)))
                })
                .clone();
            // Spread over the destination's connections, each reused for
            // its share.
            let n = out.per_destination.max(1).min(items.len());
            let mut shares: Vec<Vec<Item>> = vec![Vec::new(); n];
            for (k, item) in items.into_iter().enumerate() {
                shares[k % n].push(item);
            }
            for share in shares {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (ctx, out, tally, limit, dest) = (
                    ctx.clone(),
                    out.clone(),
                    tally.clone(),
                    limit.clone(),
                    dest.clone(),
                );
                tokio::spawn(async move {
                    let _slot = slot;
                    let Ok(_permit) = limit.acquire_owned().await else {
                        return;
                    };
                    deliver_remote(&ctx, &out, &tally, &dest, share).await;
                });
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One part of a message is done: once every part is, its outcomes are
/// recorded (and success reports queued).
async fn report(
    ctx: &Arc<Ctx>,
    out: &Arc<Outbound>,
    tally: &Arc<Mutex<Tally>>,
    item: &Item,
    results: Vec<(usize, Attempt)>,
    reports: Vec<(usize, Action)>,
) {
    let done = {
        let mut t = lock(tally);
        let Some(entry) = t.open.get_mut(&item.msg.id) else {
            return;
        };
        entry.0 = entry.0.saturating_sub(1);
        entry.1.extend(results);
        entry.2.extend(reports);
        if entry.0 == 0 {
            t.open.remove(&item.msg.id)
        } else {
            None
        }
    };
    let Some((_, results, reports)) = done else {
        return;
    };
    let (store, out2, msg) = (ctx.store.clone(), out.clone(), item.msg.clone());
    let bounced = tokio::task::spawn_blocking(move || {
        let now = now_secs();
        if !reports.is_empty() && !msg.from.is_empty() {
            // Success reports (NOTIFY=SUCCESS), built before the record
            // removes a finished message.
            let mut m = msg.clone();
            for (i, a) in &results {
                if let (Some(r), Attempt::Delivered(t)) = (m.recipients.get_mut(*i), a) {
                    r.last_reply = Some(t.clone());
                }
            }
            if let Ok(mut original) = store.queue_open(m.id)
                && let Ok(dsn) =
                    mailstore::queue::build_report(&m, &reports, &mut original, &out2.hostname, now)
            {
                let env = QueueEnvelope {
                    from: String::new(),
                    recipients: vec![(m.from.clone(), never(), None)],
                    envid: None,
                    ret: None,
                };
                let _ = store.queue_add(env, &mut &dsn[..], now);
            }
        }
        match store.queue_record(msg.id, &results, now, &out2.policy, &out2.hostname) {
            Ok(b) => b.is_some() || !reports.is_empty(),
            Err(e) => {
                tracing::warn!(queue_id = msg.id, %e, "could not record delivery results");
                false
            }
        }
    })
    .await
    .unwrap_or(false);
    if bounced {
        ctx.queue_wake.notify_one();
    }
}

/// NOTIFY=NEVER: what a report asks of its own delivery.
fn never() -> mailstore::queue::Notify {
    mailstore::queue::Notify {
        success: false,
        failure: false,
        delay: false,
    }
}

/// Delivers queued mail for this server's own users (bounces to local
/// senders) into their INBOX.
async fn deliver_local(ctx: &Arc<Ctx>, item: &Item) -> Vec<(usize, Attempt)> {
    let mut users = Vec::new();
    let mut results = Vec::new();
    for &i in &item.rcpts {
        let address = &item.msg.recipients[i].address;
        let route = Mailbox::parse(address)
            .map(|m| ctx.route(&ForwardPath::Mailbox(m)))
            .unwrap_or(Route::UnknownLocal);
        match route {
            Route::Local(u) => users.push((i, u)),
            _ => results.push((i, Attempt::Permanent("550 5.1.1 no such user here".into()))),
        }
    }
    if users.is_empty() {
        return results;
    }
    let (store, id, from) = (ctx.store.clone(), item.msg.id, item.msg.from.clone());
    let names: Vec<mailstore::UserName> = users.iter().map(|u| u.1.clone()).collect();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut src = store.queue_open(id)?;
        let mut m = store.incoming(now_secs())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut src, &mut buf)?;
            if n == 0 {
                break;
            }
            m.write(&buf[..n])?;
        }
        let prefix = format!("Return-Path: <{from}>\r\n");
        Ok::<_, mailstore::Error>(m.deliver(prefix.as_bytes(), &names))
    })
    .await;
    match outcome {
        Ok(Ok(each)) => {
            for ((i, _), r) in users.iter().zip(each) {
                results.push((
                    *i,
                    match r {
                        Ok(_) => Attempt::Delivered("250 2.0.0 delivered to the mailbox".into()),
                        Err(e) => {
                            Attempt::Transient(format!("451 4.3.0 local delivery failed: {e}"))
                        }
                    },
                ));
            }
        }
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "local delivery failed".into(),
            };
            for (i, _) in users {
                results.push((i, Attempt::Transient(format!("451 4.3.0 {why}"))));
            }
        }
    }
    results
}

/// The hops to try for a destination, or why there are none.
async fn hops(out: &Outbound, dest: &str) -> Result<Vec<(Hop, u16)>, delivery::Failure> {
    if let Some(relay) = &out.relay {
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(relay.addr.as_str()).await {
            Ok(a) => a.collect(),
            Err(e) => {
                return Err(delivery::Failure {
                    permanent: false,
                    status: status(4, 4, 3),
                    reason: format!("relay {}: {e}", relay.addr),
                });
            }
        };
        let host = relay
            .addr
            .rsplit_once(':')
            .map_or(relay.addr.as_str(), |h| h.0)
            .to_owned();
        let n = addrs.len();
        return Ok(addrs
            .into_iter()
            .enumerate()
            .map(|(k, a)| {
                (
                    Hop {
                        host: host.clone(),
                        ip: a.ip(),
                        last: k + 1 == n,
                    },
                    a.port(),
                )
            })
            .collect());
    }
    let Some(dns) = &out.dns else {
        return Err(delivery::Failure {
            permanent: false,
            status: status(4, 4, 3),
            reason: "no resolver configured".into(),
        });
    };
    let mx = dns.mx(dest).await;
    let mut seed = rand_seed();
    let targets = delivery::plan(dest, mx, &mut |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    })?;
    let mut answers = HashMap::new();
    for t in targets.iter().take(10) {
        answers.insert(t.host.clone(), dns.addrs(&t.host).await);
    }
    let hops = delivery::addresses(
        &targets,
        |h| {
            answers
                .get(h)
                .cloned()
                .unwrap_or(delivery::AddrAnswer::NoSuchHost)
        },
        delivery::DEFAULT_ADDRESS_LIMIT,
    )?;
    Ok(hops.into_iter().map(|h| (h, out.port)).collect())
}

fn rand_seed() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) | 1
}

#[allow(clippy::panic)] // only fixed, valid codes
const fn status(c: u8, s: u16, d: u16) -> smtp_proto::EnhancedCode {
    match smtp_proto::EnhancedCode::new(c, s, d) {
        Some(e) => e,
        None => panic!("invalid enhanced code"),
    }
}

fn reply_text(r: &Reply<'_>) -> String {
    r.to_string().trim_end().replace("\r\n", " ")
}

/// Delivers a share of a destination's messages: hop after hop, one
/// connection per hop reused for every message still to go.
async fn deliver_remote(
    ctx: &Arc<Ctx>,
    out: &Arc<Outbound>,
    tally: &Arc<Mutex<Tally>>,
    dest: &str,
    items: Vec<Item>,
) {
    let domain = dest.strip_prefix("relay ").unwrap_or(dest);
    let hops = match hops(out, domain).await {
        Ok(h) => h,
        Err(f) => {
            let text = format!(
                "{} {} {}",
                if f.permanent { 550 } else { 451 },
                f.status,
                f.reason
            );
            tracing::info!(destination = dest, reason = %text, "no route");
            for item in items {
                let results = item
                    .rcpts
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            if f.permanent {
                                Attempt::Permanent(text.clone())
                            } else {
                                Attempt::Transient(text.clone())
                            },
                        )
                    })
                    .collect();
                report(ctx, out, tally, &item, results, Vec::new()).await;
            }
            return;
        }
    };
    // Per item: recipients still to try, outcomes so far.
    let mut todo: Vec<(Item, Results, Reports)> = items
        .into_iter()
        .map(|i| (i, Vec::new(), Vec::new()))
        .collect();
    let mut last_error = String::from("451 4.4.1 no mail exchanger answered");
    for (hop, port) in &hops {
        if todo.iter().all(|t| t.0.rcpts.is_empty()) {
            break;
        }
        let mut conn = match connect(out, hop, *port).await {
            Ok(c) => c,
            Err(e) => {
                last_error = format!("451 4.4.1 {}[{}]:{port}: {e}", hop.host, hop.ip);
                tracing::info!(host = %hop.host, ip = %hop.ip, %e, "connection failed");
                continue;
            }
        };
        for (item, results, reports) in &mut todo {
            if item.rcpts.is_empty() {
                continue;
            }
            if !conn.session().is_ready() {
                // The connection broke: the rest goes to the next hop.
                break;
            }
            match send_item(&ctx.store, out, &mut conn, item).await {
                Ok(Ok(replies)) => {
                    let dsn = conn.session().capabilities().dsn;
                    let mut keep = Vec::new();
                    for (&i, r) in item.rcpts.iter().zip(&replies) {
                        let text = reply_text(r);
                        match delivery::next(delivery::Attempt::Reply(r.code().get()), hop) {
                            Next::Delivered => {
                                tracing::info!(queue_id = item.msg.id, rcpt = %item.msg.recipients[i].address, host = %hop.host, reply = %text, "delivered");
                                if item.msg.recipients[i].notify.success {
                                    reports.push((
                                        i,
                                        if dsn {
                                            Action::Delivered
                                        } else {
                                            Action::Relayed
                                        },
                                    ));
                                }
                                results.push((i, Attempt::Delivered(text)));
                            }
                            Next::Bounce => results.push((i, Attempt::Permanent(text))),
                            Next::Retry => results.push((i, Attempt::Transient(text))),
                            Next::TryNext => {
                                last_error = text;
                                keep.push(i);
                            }
                        }
                    }
                    item.rcpts = keep;
                }
                Ok(Err(client::SendError::NotReady)) => break,
                Ok(Err(e)) => {
                    let text = reply_text(&e.reply());
                    for &i in &item.rcpts {
                        results.push((
                            i,
                            if e.reply().code().is_permanent() {
                                Attempt::Permanent(text.clone())
                            } else {
                                Attempt::Transient(text.clone())
                            },
                        ));
                    }
                    item.rcpts.clear();
                }
                Err(e) => {
                    last_error = format!("451 4.4.2 {}[{}]: {e}", hop.host, hop.ip);
                    break;
                }
            }
            if item.rcpts.is_empty() {
                // Recorded as soon as the peer answered, so a crash now
                // sends nothing twice.
                let done = Item {
                    msg: item.msg.clone(),
                    rcpts: Vec::new(),
                };
                report(
                    ctx,
                    out,
                    tally,
                    &done,
                    std::mem::take(results),
                    std::mem::take(reports),
                )
                .await;
            }
        }
        if conn.session().is_ready() {
            conn.quit().await;
        }
    }
    for (item, mut results, reports) in todo {
        if item.rcpts.is_empty() && results.is_empty() {
            continue;
        }
        for &i in &item.rcpts {
            results.push((i, Attempt::Transient(last_error.clone())));
        }
        report(ctx, out, tally, &item, results, reports).await;
    }
}

/// A connection to `hop`, greeted, with TLS as the policy asks and AUTH
/// for a relay that needs it.
async fn connect(out: &Outbound, hop: &Hop, port: u16) -> Result<Conn, String> {
    let mut config = client::Config::new(ehlo_host(&out.hostname));
    config.allow_plaintext_auth = false;
    let addr = SocketAddr::new(hop.ip, port);
    let mut conn = Conn::open(addr, Arc::new(config), out.connect_timeout, out.bind)
        .await
        .map_err(|e| e.to_string())?;
    let offered = conn.session().capabilities().starttls;
    let required = out.tls != OutboundTls::May;
    if offered {
        let name = rustls::pki_types::ServerName::try_from(hop.host.clone())
            .unwrap_or_else(|_| rustls::pki_types::ServerName::IpAddress(hop.ip.into()));
        match conn
            .start_tls(crate::tls::client_config(out.tls), name)
            .await
        {
            Ok(true) => {}
            Ok(false) if !required => {}
            Ok(false) => return Err("STARTTLS refused and TLS is required".into()),
            Err(e) => return Err(format!("TLS: {e}")),
        }
    } else if required {
        conn.quit().await;
        return Err("4.7.10 STARTTLS not offered and TLS is required".into());
    }
    if let Some(Relay {
        auth: Some((user, password)),
        ..
    }) = &out.relay
    {
        let caps = conn.session().capabilities();
        let mech = [Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login]
            .into_iter()
            .find(|m| caps.offers(*m))
            .ok_or("the relay offers no AUTH mechanism we use")?;
        let mut nonce = [0u8; 18];
        let _ = getrandom::fill(&mut nonce);
        let x = sasl::client::ClientExchange::new(mech, user, password.clone(), None, &nonce);
        match conn.authenticate(x).await {
            Ok(Ok(())) => {}
            Ok(Err(r)) => return Err(format!("AUTH refused: {}", reply_text(&r))),
            Err(e) => return Err(format!("AUTH: {e}")),
        }
    }
    Ok(conn)
}

fn ehlo_host(name: &str) -> Host<'static> {
    match smtp_proto::Domain::new(name.to_owned()) {
        Ok(d) => Host::Domain(d),
        Err(_) => Host::Domain(
            smtp_proto::Domain::new("localhost").unwrap_or_else(|_| unreachable_domain()),
        ),
    }
}

#[allow(clippy::panic)]
fn unreachable_domain() -> smtp_proto::Domain<'static> {
    panic!("localhost is a valid domain")
}

/// Sends one message's remaining recipients over `conn`.
async fn send_item(
    store: &mailstore::Store,
    out: &Outbound,
    conn: &mut Conn,
    item: &Item,
) -> Result<Result<Vec<Reply<'static>>, client::SendError>, ConnError> {
    let m = &item.msg;
    let caps = conn.session().capabilities().clone();
    let mut params = MailParameters::default();
    if let Some(e) = &m.envid {
        params.envid = XText::new(e.clone());
    }
    params.ret = m.ret.map(|r| match r {
        mailstore::queue::Return::Full => Ret::Full,
        mailstore::queue::Return::Headers => Ret::Headers,
    });
    let from = if m.from.is_empty() {
        ReversePath::Null
    } else {
        match Mailbox::parse(&m.from) {
            Ok(b) => ReversePath::Mailbox(b.into_owned()),
            Err(_) => return Ok(Err(client::SendError::NotReady)),
        }
    };
    let mut recipients = Vec::new();
    for &i in &item.rcpts {
        let r = &m.recipients[i];
        let Ok(to) = Mailbox::parse(&r.address) else {
            return Ok(Err(client::SendError::NotReady));
        };
        let notify = (r.notify != mailstore::queue::Notify::default()).then_some(Notify {
            success: r.notify.success,
            failure: r.notify.failure,
            delay: r.notify.delay,
        });
        let orcpt = r.orcpt.as_ref().and_then(|o| {
            XText::new(o.clone()).map(|address| OriginalRecipient {
                addr_type: "rfc822".into(),
                address,
            })
        });
        recipients.push(Recipient {
            to: ForwardPath::Mailbox(to.into_owned()),
            params: RcptParameters {
                notify,
                orcpt,
                ..RcptParameters::default()
            },
        });
    }
    // The body: whole in memory when small, signed, or to be downgraded.
    let body = load(store.clone(), out, m, &caps).await;
    let (mut source, size, eight_bit, utf8): (Box<dyn BodySource + Send>, u64, bool, bool) =
        match body {
            Ok(Loaded::Whole(b, eight, utf8)) => {
                let n = b.len() as u64;
                (Box::new(InMemory(Some(b))), n, eight, utf8)
            }
            Ok(Loaded::Stream(s, n, eight)) => (Box::new(s), n, eight, false),
            Err(e) => {
                tracing::warn!(queue_id = m.id, %e, "cannot read queued message");
                return Ok(Err(client::SendError::NotReady));
            }
        };
    params.size = Some(size);
    if eight_bit {
        params.body = Some(BodyType::EightBitMime);
    }
    params.smtputf8 = utf8;
    let env = Envelope {
        from,
        params,
        recipients,
    };
    conn.send(env, source.as_mut()).await
}

enum Loaded {
    /// Bytes, 8-bit body, needs SMTPUTF8.
    Whole(Bytes, bool, bool),
    /// A streamed body, its size, 8-bit.
    Stream(Streamed, u64, bool),
}

/// Reads a queued message as the next hop needs it: DKIM-signed when a
/// key for its domain is configured, downgraded to 7-bit for a peer
/// without 8BITMIME.
async fn load(
    store: mailstore::Store,
    out: &Outbound,
    m: &QueuedMessage,
    caps: &client::Capabilities,
) -> std::io::Result<Loaded> {
    let id = m.id;
    let size = m.size;
    let dkim = out.dkim.clone();
    let eight_bit_mime = caps.eight_bit_mime;
    let from = m.from.clone();
    tokio::task::spawn_blocking(move || {
        let open = || {
            store
                .queue_open(id)
                .map_err(|e| std::io::Error::other(e.to_string()))
        };
        let whole = size <= IN_MEMORY || dkim.is_some() || !eight_bit_mime;
        if !whole {
            let mut r = open()?;
            let mut eight = false;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)?;
                if n == 0 {
                    break;
                }
                eight |= !buf[..n].is_ascii();
            }
            return Ok(Loaded::Stream(Streamed::new(open()?), size, eight));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut open()?, &mut bytes)?;
        let mut eight = !bytes.is_ascii();
        let mut utf8 = false;
        if eight {
            match smtp_proto::downgrade::to_seven_bit(&bytes) {
                Ok(seven) if !eight_bit_mime => {
                    bytes = seven;
                    eight = false;
                }
                Ok(_) => {}
                // 8-bit headers: internationalised mail, SMTPUTF8 or bust.
                Err(_) => utf8 = true,
            }
        }
        if let Some(keys) = &dkim
            && let Some(header) = keys.sign(&from, &bytes)
        {
            let mut signed = header.into_bytes();
            signed.extend_from_slice(&bytes);
            bytes = signed;
        }
        Ok(Loaded::Whole(Bytes::from(bytes), eight, utf8))
    })
    .await
    .map_err(std::io::Error::other)?
}
