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
use std::time::{Duration, Instant};

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
    recorder: Option<tokio::sync::mpsc::UnboundedSender<Done>>,
}

/// The messages waiting for one destination and the workers sending them.
#[derive(Debug, Default)]
struct Destination {
    items: Mutex<std::collections::VecDeque<Item>>,
    wake: tokio::sync::Notify,
    workers: std::sync::atomic::AtomicUsize,
}

/// Most messages held in memory by the runner at once (leased, waiting
/// for a worker); the rest stay in the store until there is room.
const IN_FLIGHT: usize = 2000;

/// Runs the queue until the process ends.
pub async fn run(ctx: Arc<Ctx>, out: Arc<Outbound>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(out.max_connections.max(1)));
    let dests: Arc<Mutex<HashMap<String, Arc<Destination>>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    lock(&tally).recorder = Some(tx);
    tokio::spawn(recorder(ctx.clone(), out.clone(), rx));
    loop {
        let held = lock(&tally).open.len();
        let room = IN_FLIGHT.saturating_sub(held);
        let leases = if room == 0 {
            Vec::new()
        } else {
            let store = ctx.store.clone();
            let lease = out.lease;
            tokio::task::spawn_blocking(move || {
                let leases = store.queue_due(now_secs(), lease, room.min(500));
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
                _ = tokio::time::sleep(Duration::from_millis(if room == 0 { 50 } else { 1000 })) => {}
            }
            continue;
        }
        // Group the recipients by destination.
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
            for (key, rcpts) in by_dest {
                let dest = lock(&dests).entry(key.clone()).or_default().clone();
                let backlog = {
                    let mut q = lock(&dest.items);
                    q.push_back(Item {
                        msg: item.msg.clone(),
                        rcpts,
                    });
                    q.len()
                };
                dest.wake.notify_one();
                // Another connection while the backlog outgrows the ones open.
                let workers = dest.workers.load(std::sync::atomic::Ordering::SeqCst);
                if workers < out.per_destination.max(1) && backlog > workers {
                    dest.workers
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (ctx, out, tally, slots) =
                        (ctx.clone(), out.clone(), tally.clone(), slots.clone());
                    tokio::spawn(async move {
                        let slot = slots.acquire_owned().await;
                        worker(&ctx, &out, &tally, &key, &dest).await;
                        drop(slot);
                    });
                }
            }
        }
        if !local.is_empty() {
            let (ctx, tally) = (ctx.clone(), tally.clone());
            tokio::spawn(async move {
                for item in local {
                    let results = deliver_local(&ctx, &item).await;
                    report(&tally, &item, results, Vec::new());
                }
            });
        }
    }
}

/// One connection's worth of sending to a destination: takes its waiting
/// messages one after another over one connection (reused), and ends
/// after two idle seconds.
async fn worker(
    ctx: &Arc<Ctx>,
    out: &Arc<Outbound>,
    tally: &Arc<Mutex<Tally>>,
    key: &str,
    dest: &Destination,
) {
    let domain = key.strip_prefix("relay ").unwrap_or(key);
    let mut route: Option<(Instant, Hops)> = None;
    let mut conn: Option<(Conn, usize)> = None;
    let mut dead: Vec<usize> = Vec::new();
    loop {
        let next = lock(&dest.items).pop_front();
        let Some(item) = next else {
            let idle = tokio::time::timeout(Duration::from_secs(2), dest.wake.notified()).await;
            if idle.is_err() {
                // Leave only with nothing waiting (checked under the lock,
                // so an item pushed meanwhile finds a worker).
                let q = lock(&dest.items);
                if q.is_empty() {
                    dest.workers
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    drop(q);
                    break;
                }
            }
            continue;
        };
        // Routes are looked up again after a minute.
        if route
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > Duration::from_secs(60))
        {
            route = Some((Instant::now(), hops(out, domain).await));
            dead.clear();
        }
        let Some((_, r)) = &route else { continue };
        match r {
            Ok(hops) => {
                let (results, reports) =
                    deliver_item(ctx, out, hops, &mut conn, &mut dead, &item).await;
                report(tally, &item, results, reports);
            }
            Err(f) => {
                let text = format!(
                    "{} {} {}",
                    if f.permanent { 550 } else { 451 },
                    f.status,
                    f.reason
                );
                tracing::info!(destination = key, reason = %text, "no route");
                let results = item
                    .rcpts
                    .iter()
                    .map(|&i| {
                        let a = if f.permanent {
                            Attempt::Permanent(text.clone())
                        } else {
                            Attempt::Transient(text.clone())
                        };
                        (i, a)
                    })
                    .collect();
                report(tally, &item, results, Vec::new());
            }
        }
    }
    if let Some((c, _)) = conn
        && c.session().is_ready()
    {
        c.quit().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One part of a message is done: once every part is, its outcomes are
/// recorded (and success reports queued).
fn report(
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
    let recorder = lock(tally).recorder.clone();
    if let Some(tx) = recorder {
        let _ = tx.send(Done {
            msg: item.msg.clone(),
            results,
            reports,
        });
    }
}

/// A message whose every part is done, for the recorder.
#[derive(Debug)]
struct Done {
    msg: QueuedMessage,
    results: Results,
    reports: Reports,
}

/// Records finished messages in batches: whatever finished while the last
/// batch was being written goes in the next one, with one index commit
/// (one fsync) for all of it. Success reports are queued first, while the
/// message is still there to quote.
async fn recorder(
    ctx: Arc<Ctx>,
    out: Arc<Outbound>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Done>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let (store, out2) = (ctx.store.clone(), out.clone());
        let woke = tokio::task::spawn_blocking(move || {
            let now = now_secs();
            let mut queued = false;
            for d in &batch {
                if d.reports.is_empty() || d.msg.from.is_empty() {
                    continue;
                }
                let mut m = d.msg.clone();
                for (i, a) in &d.results {
                    if let (Some(r), Attempt::Delivered(t)) = (m.recipients.get_mut(*i), a) {
                        r.last_reply = Some(t.clone());
                    }
                }
                if let Ok(mut original) = store.queue_open(m.id)
                    && let Ok(dsn) = mailstore::queue::build_report(
                        &m,
                        &d.reports,
                        &mut original,
                        &out2.hostname,
                        now,
                    )
                {
                    let env = QueueEnvelope {
                        from: String::new(),
                        recipients: vec![(m.from.clone(), never(), None)],
                        envid: None,
                        ret: None,
                    };
                    queued |= store.queue_add(env, &mut &dsn[..], now).is_ok();
                }
            }
            let list: Vec<(QueueId, Results)> =
                batch.into_iter().map(|d| (d.msg.id, d.results)).collect();
            match store.queue_record_many(&list, now, &out2.policy, &out2.hostname) {
                Ok(each) => queued || each.iter().any(|r| matches!(r, Ok(Some(_)))),
                Err(e) => {
                    tracing::warn!(%e, "could not record delivery results");
                    queued
                }
            }
        })
        .await
        .unwrap_or(false);
        if woke {
            ctx.queue_wake.notify_one();
        }
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

/// The hops (and their ports) of a destination, or why it has none.
type Hops = Result<Vec<(Hop, u16)>, delivery::Failure>;

/// The hops to try for a destination, or why there are none.
async fn hops(out: &Outbound, dest: &str) -> Hops {
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

/// Sends one message's recipients: over the open connection when it goes
/// to the first hop still worth trying, else hop after hop (a connection
/// failure or a 4xx at a hop that is not the last moves on; 5xx bounces).
async fn deliver_item(
    ctx: &Arc<Ctx>,
    out: &Arc<Outbound>,
    hops: &[(Hop, u16)],
    conn: &mut Option<(Conn, usize)>,
    dead: &mut Vec<usize>,
    item: &Item,
) -> (Results, Reports) {
    let mut results = Vec::new();
    let mut reports = Vec::new();
    let mut rcpts = item.rcpts.clone();
    let mut last_error = String::from("451 4.4.1 no mail exchanger answered");
    for (k, (hop, port)) in hops.iter().enumerate() {
        if rcpts.is_empty() {
            break;
        }
        if dead.contains(&k) && !hop.last {
            continue;
        }
        let reuse = conn
            .as_ref()
            .is_some_and(|(c, at)| *at == k && c.session().is_ready());
        if !reuse {
            if let Some((old, _)) = conn.take()
                && old.session().is_ready()
            {
                old.quit().await;
            }
            match connect(out, hop, *port).await {
                Ok(c) => *conn = Some((c, k)),
                Err(e) => {
                    last_error = format!("451 4.4.1 {}[{}]:{port}: {e}", hop.host, hop.ip);
                    tracing::info!(host = %hop.host, ip = %hop.ip, %e, "connection failed");
                    dead.push(k);
                    continue;
                }
            }
        }
        let Some((c, _)) = conn.as_mut() else {
            continue;
        };
        let attempt = Item {
            msg: item.msg.clone(),
            rcpts: rcpts.clone(),
        };
        match send_item(&ctx.store, out, c, &attempt).await {
            Ok(Ok(replies)) => {
                let dsn = c.session().capabilities().dsn;
                let mut keep = Vec::new();
                for (&i, r) in rcpts.iter().zip(&replies) {
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
                rcpts = keep;
            }
            Ok(Err(client::SendError::NotReady)) => {
                *conn = None;
            }
            Ok(Err(e)) => {
                let text = reply_text(&e.reply());
                let permanent = e.reply().code().is_permanent();
                for &i in &rcpts {
                    results.push((
                        i,
                        if permanent {
                            Attempt::Permanent(text.clone())
                        } else {
                            Attempt::Transient(text.clone())
                        },
                    ));
                }
                rcpts.clear();
            }
            Err(e) => {
                last_error = format!("451 4.4.2 {}[{}]: {e}", hop.host, hop.ip);
                *conn = None;
            }
        }
    }
    for &i in &rcpts {
        results.push((i, Attempt::Transient(last_error.clone())));
    }
    (results, reports)
}

/// A connection to `hop`, greeted, with TLS as the policy asks and AUTH
/// for a relay that needs it.
fn conn_config(out: &Outbound) -> Arc<client::Config> {
    let mut config = client::Config::new(ehlo_host(&out.hostname));
    config.allow_plaintext_auth = false;
    Arc::new(config)
}

async fn connect(out: &Outbound, hop: &Hop, port: u16) -> Result<Conn, String> {
    let addr = SocketAddr::new(hop.ip, port);
    let mut conn = Conn::open(addr, conn_config(out), out.connect_timeout, out.bind)
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
            // Opportunistic TLS that fails: once more in plaintext, as
            // `may` allows (RFC 7435); never when TLS is required.
            Err(e) if !required => {
                tracing::info!(host = %hop.host, %e, "TLS failed; plaintext (--tls-outbound may)");
                conn = Conn::open(addr, conn_config(out), out.connect_timeout, out.bind)
                    .await
                    .map_err(|e| e.to_string())?;
            }
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
