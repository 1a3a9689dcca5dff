//! `mailserver`: SMTP (MX), submission and LMTP over a Maildir store, with
//! STARTTLS and AUTH. Protocol logic lives in the crates; this is wiring.
//!
//! ```text
//! mailserver [--data DIR] [--domain NAME]... user add NAME   # password on stdin
//! mailserver [--data DIR] [--domain NAME]... user list | user del NAME
//! mailserver [--data DIR] [--domain NAME]... [serve] [--smtp ADDR] [--submission ADDR] [--lmtp ADDR]
//! ```

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser, Subcommand};
use mailkit_examples::accounts::{Accounts, random_password};
use mailkit_examples::admin;
use mailkit_examples::aliases::{self, Aliases};
use mailkit_examples::imap::ImapConn;
use mailkit_examples::listen::{Limits, RunFn, entropy, listen};
use mailkit_examples::pop3::Pop3Conn;
use mailkit_examples::routing::Ctx;
use mailkit_examples::smtp::{Role, SmtpConn, SmtpOptions, session_config};
use mailkit_examples::tls::OutboundTls;
use mailkit_examples::{IoTimeouts, TokioTimer, drive};
use mailstore::{Store, UserName};
use sasl::Mechanism;
use smtp_proto::Domain;
use smtp_proto::server::Session;
use tokio_util::compat::TokioAsyncReadCompatExt;

#[derive(Parser, Debug)]
#[command(
    name = "mailserver",
    version,
    about = "A mail server built from the mailkit crates"
)]
struct Cli {
    /// Data folder (Maildir store, index, accounts, TLS certificate).
    #[arg(long, global = true, default_value = "./mail-data")]
    data: PathBuf,
    /// Mail domains served (repeat for several).
    #[arg(long = "domain", global = true, action = ArgAction::Append)]
    domains: Vec<String>,
    /// Log lines as text (for people) or JSON (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// `--log-format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Manage aliases (local part to user); works while the server runs.
    Alias {
        #[command(subcommand)]
        action: AliasCmd,
    },
    /// The outgoing queue; works while the server runs.
    Queue {
        #[command(subcommand)]
        action: QueueCmd,
    },
    /// DKIM signing keys.
    Dkim {
        #[command(subcommand)]
        action: DkimCmd,
    },
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
}

#[derive(Subcommand, Debug)]
enum QueueCmd {
    /// A line per queued message: id, size, arrival, sender, recipients.
    List,
    /// One message: its recipients' states, attempts, last replies, header.
    Show { id: u64 },
    /// Try every waiting recipient now.
    Flush,
    /// Remove a message from the queue (no delivery, no bounce).
    Delete { id: u64 },
}

#[derive(Subcommand, Debug)]
enum DkimCmd {
    /// Make a signing key for DOMAIN and print the TXT record to publish.
    Generate {
        domain: String,
        /// The selector (the record's name is SELECTOR._domainkey.DOMAIN).
        #[arg(long, default_value = "mail")]
        selector: String,
        /// An RSA 2048 key instead of Ed25519 (RFC 8463), for receivers
        /// that do not check Ed25519 yet.
        #[arg(long)]
        rsa: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AliasCmd {
    /// Deliver mail for ALIAS at any served domain to USER.
    Add { alias: String, user: String },
    /// List aliases.
    List,
    /// Remove an alias.
    Del { alias: String },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Create a user; the password is read from one line of standard input.
    Add {
        name: String,
        /// Also keep the plain password for APOP (POP3) logins.
        #[arg(long)]
        apop: bool,
    },
    /// Give a user a new password, read from one line of standard input.
    Passwd { name: String },
    /// List users.
    List,
    /// Delete a user and their mail.
    Del { name: String },
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// SMTP (MX) listener.
    #[arg(long, default_value = "127.0.0.1:2525", value_parser = parse_addr)]
    smtp: SocketAddr,
    /// Submission listener (AUTH required, after STARTTLS).
    #[arg(long, default_value = "127.0.0.1:5870", value_parser = parse_addr)]
    submission: SocketAddr,
    /// LMTP listener.
    #[arg(long, default_value = "127.0.0.1:2424", value_parser = parse_addr)]
    lmtp: SocketAddr,
    /// POP3 listener.
    #[arg(long, default_value = "127.0.0.1:1110", value_parser = parse_addr)]
    pop3: SocketAddr,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics.
    #[arg(long, value_parser = parse_addr)]
    metrics: Option<SocketAddr>,
    /// IMAP listener (STARTTLS on the same port).
    #[arg(long, default_value = "127.0.0.1:1143", value_parser = parse_addr)]
    imap: SocketAddr,
    /// TLS certificate chain (PEM); a self-signed one is made if absent.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Connections at once, in total.
    #[arg(long, default_value_t = 1000)]
    max_connections: usize,
    /// Connections at once from one IP address.
    #[arg(long, default_value_t = 300)]
    max_per_ip: usize,
    /// Largest message in octets.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    max_message_size: u64,
    /// A CR or LF not part of CRLF, in command lines and message bodies:
    /// `normalize` (the default, as Postfix does) takes a bare LF as a line
    /// end in commands and turns bare CR/LF in bodies into CRLF; `reject`
    /// refuses them (500 for a command, 550 for a message). Either way the
    /// end of data is only ever CRLF . CRLF.
    #[arg(long, value_enum, default_value_t = BareNewline::Normalize)]
    bare_newline: BareNewline,
    /// Let PLAIN/LOGIN (SMTP submission) and USER/PASS (POP3) work before
    /// STARTTLS/STLS, for clients that cannot do TLS. Passwords then cross
    /// the network in the clear: off by default.
    #[arg(long)]
    allow_plaintext_auth: bool,
    /// Seconds a peer has to finish the TLS handshake after STARTTLS/STLS.
    #[arg(long, default_value_t = 30)]
    handshake_timeout: u64,
    /// Seconds one write may wait for a peer that stopped reading.
    #[arg(long, default_value_t = 120)]
    write_timeout: u64,
    /// Send all outgoing mail through this smarthost (HOST:PORT) instead of
    /// looking up MX records.
    #[arg(long)]
    relay: Option<String>,
    /// User for AUTH at the smarthost; the password is read from
    /// --relay-password-file or the MAILSERVER_RELAY_PASSWORD environment
    /// variable, never from the command line.
    #[arg(long, requires = "relay")]
    relay_user: Option<String>,
    /// File holding the smarthost password (first line).
    #[arg(long, requires = "relay_user")]
    relay_password_file: Option<PathBuf>,
    /// Nameserver for MX and address lookups (IP:PORT); the system's
    /// resolver by default.
    #[arg(long)]
    dns: Option<SocketAddr>,
    /// Port of the MX hosts mail is delivered to.
    #[arg(long, default_value_t = 25)]
    outbound_port: u16,
    /// Source address of outgoing connections.
    #[arg(long)]
    outbound_bind: Option<std::net::IpAddr>,
    /// TLS for outgoing mail: `may` (STARTTLS when offered), `encrypt`
    /// (STARTTLS required) or `verify` (required, certificate checked
    /// against the web PKI and the MX name). Never falls back to plaintext
    /// when encryption is required.
    #[arg(long, value_enum, default_value_t = OutboundTls::May)]
    tls_outbound: OutboundTls,
    /// Seconds before the first retry of a deferred recipient (doubling
    /// up to --retry-max).
    #[arg(long, default_value_t = 300)]
    retry_first: i64,
    /// Longest wait between retries, in seconds.
    #[arg(long, default_value_t = 4000)]
    retry_max: i64,
    /// Seconds after arrival when a sender who asked (NOTIFY=DELAY) is told
    /// once that a recipient is not delivered yet; 0: never.
    #[arg(long, default_value_t = 4 * 3600)]
    delay_warning: i64,
    /// Seconds after arrival when an undelivered recipient bounces.
    #[arg(long, default_value_t = 5 * 24 * 3600)]
    queue_lifetime: i64,
    /// Connections at once to one destination (Postfix's default is 20).
    #[arg(long, default_value_t = 16)]
    outbound_per_destination: usize,
    /// Megabytes each user may store (IMAP QUOTA; over it APPEND and COPY
    /// get `NO [OVERQUOTA]` and SMTP/LMTP recipients `452 4.2.2`); 0: no
    /// limit.
    #[arg(long, default_value_t = 0)]
    quota_mb: u64,
    /// Keep outgoing mail queued: no queue runner (for maintenance; mail
    /// for local users is still delivered at once).
    #[arg(long)]
    hold_queue: bool,
}

/// A listening address: `IP:PORT` or `HOST:PORT` (resolved now; IPv4
/// preferred, as for `localhost`).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{s}: {e} (expected HOST:PORT or IP:PORT)"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s}: no address"))
}

/// `--bare-newline`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum BareNewline {
    Reject,
    Normalize,
}

impl BareNewline {
    fn policy(self) -> smtp_proto::BareLineEnding {
        match self {
            BareNewline::Reject => smtp_proto::BareLineEnding::Reject,
            BareNewline::Normalize => smtp_proto::BareLineEnding::Normalize,
        }
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs::parse_from_args()
    }
}

impl ServeArgs {
    fn parse_from_args() -> ServeArgs {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            a: ServeArgs,
        }
        Wrap::parse_from(["serve"]).a
    }
}

async fn serve(cli: &Cli, args: ServeArgs) -> Result<(), String> {
    let data = &cli.data;
    let domains = if cli.domains.is_empty() {
        vec!["localhost".to_owned()]
    } else {
        cli.domains.clone()
    };
    // Everything the command line names is checked before any state is
    // made: a bad certificate must not leave a half-created data folder.
    for d in &domains {
        Domain::new(d.clone()).map_err(|e| format!("--domain {d}: {e}"))?;
    }
    let given_tls = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some(mailkit_examples::tls::server_config(
            data,
            Some((c.as_path(), k.as_path())),
            &domains,
        )?),
        _ => None,
    };
    let first_start = !data.join("accounts").exists();
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let store_dir = data.join("store");
    let store = Store::open(&store_dir).map_err(|e| format!("{}: {e}", store_dir.display()))?;
    // Messages a crash interrupted were never acknowledged: drop them.
    let stale = store
        .clear_spool()
        .map_err(|e| format!("{}: {e}", store_dir.join("spool").display()))?;
    if stale > 0 {
        tracing::info!(stale, "removed unfinished messages from the spool");
    }
    let tls = match given_tls {
        Some(t) => t,
        None => mailkit_examples::tls::server_config(data, None, &domains)?,
    };
    let mut accounts = Accounts::load(data).map_err(|e| e.to_string())?;
    if first_start {
        let demo = UserName::new("demo").map_err(|e| e.to_string())?;
        let password = random_password();
        accounts.add("demo", &password, true)?;
        accounts.save().map_err(|e| e.to_string())?;
        if !store.has_user(&demo) {
            store.create_user(&demo).map_err(|e| e.to_string())?;
        }
        println!("created user demo with password {password}");
    }
    let mut aliases = Aliases::load(data).map_err(|e| format!("{}: {e}", data.display()))?;
    if !aliases.exists() {
        // postmaster and abuse reach the administrator: the first-start
        // user, or else the first account.
        let admin = if accounts.map.contains_key("demo") {
            Some("demo".to_owned())
        } else {
            let mut names: Vec<&String> = accounts.map.keys().collect();
            names.sort();
            names.first().map(|n| (*n).clone())
        };
        if let Some(admin) = admin {
            for a in aliases::REQUIRED {
                aliases.set(a, &admin)?;
            }
            aliases
                .save()
                .map_err(|e| format!("{}: {e}", data.join("aliases").display()))?;
        }
    }
    let ctx = Arc::new(Ctx {
        store,
        accounts: RwLock::new(accounts),
        aliases: Mutex::new(aliases),
        hostname: domains[0].clone(),
        domains,
        per_ip: Mutex::new(HashMap::new()),
        metrics: Arc::new(mailkit_examples::metrics::Metrics::new()),
        users: RwLock::new(Default::default()),
        recent: Mutex::new(HashMap::new()),
        queue_wake: tokio::sync::Notify::new(),
        quota: args.quota_mb.saturating_mul(1024 * 1024),
    });
    ctx.refresh_users();
    admin::listen(data, ctx.clone())?;
    if args.hold_queue {
        tracing::info!("outgoing mail is held in the queue (--hold-queue)");
    } else {
        let outbound = outbound(data, &ctx.hostname, &args)?;
        tokio::spawn(mailkit_examples::outbound::run(
            ctx.clone(),
            Arc::new(outbound),
        ));
    }
    let metrics = match args.metrics {
        Some(addr) => Some(mailkit_examples::metrics::serve(addr, ctx.clone()).await?),
        None => None,
    };
    let limits = Limits {
        total: Arc::new(tokio::sync::Semaphore::new(args.max_connections)),
        tracker: tokio_util::task::TaskTracker::new(),
        max_per_ip: args.max_per_ip,
    };
    let io_timeouts = IoTimeouts {
        handshake: Duration::from_secs(args.handshake_timeout.max(1)),
        write: Duration::from_secs(args.write_timeout.max(1)),
    };
    let mut listeners = Vec::new();
    for (role, addr) in [
        (Role::Mx, args.smtp),
        (Role::Submission, args.submission),
        (Role::Lmtp, args.lmtp),
    ] {
        let hostname = Domain::new(ctx.hostname.clone())
            .map_err(|e| format!("--domain {}: {e}", ctx.hostname))?;
        let opts = SmtpOptions {
            max_message_size: args.max_message_size,
            bare_newline: args.bare_newline.policy(),
            allow_plaintext_auth: args.allow_plaintext_auth,
        };
        let config = Arc::new(session_config(hostname, role, &opts));
        let (c, tls) = (ctx.clone(), tls.clone());
        let run: RunFn = Arc::new(move |sock, peer| {
            let (ctx, tls, config) = (c.clone(), tls.clone(), config.clone());
            Box::pin(async move {
                let mut session = Session::new(config, Instant::now(), entropy());
                let mut conn = SmtpConn::new(ctx, role, peer);
                run_connection(
                    &mut session,
                    &mut conn,
                    sock,
                    tls,
                    io_timeouts,
                    peer,
                    role.name(),
                )
                .await;
            })
        });
        let busy = b"421 4.7.0 Too many connections, try again later\r\n";
        listeners.push(listen(role.name(), addr, &ctx, &limits, busy, run).await?);
    }
    // APOP is offered (a timestamp in the greeting, which clients such as
    // curl then prefer) only while every account can use it.
    let pop3_config = |apop: bool| {
        let mut c = pop3_proto::server::Config::new(ctx.hostname.clone());
        c.line_ending = args.bare_newline.policy();
        c.apop = apop;
        c.allow_plaintext_auth = args.allow_plaintext_auth;
        c.auth_mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];
        Arc::new(c)
    };
    let (with_apop, without_apop) = (pop3_config(true), pop3_config(false));
    let (c, t) = (ctx.clone(), tls.clone());
    let run: RunFn = Arc::new(move |sock, peer| {
        let all_apop = c
            .accounts
            .read()
            .map(|a| !a.map.is_empty() && a.map.values().all(|acc| acc.apop.is_some()))
            .unwrap_or(false);
        let config = if all_apop { &with_apop } else { &without_apop }.clone();
        let (ctx, tls) = (c.clone(), t.clone());
        Box::pin(async move {
            let mut session = pop3_proto::server::Session::new(config, Instant::now(), entropy());
            let mut conn = Pop3Conn::new(ctx);
            run_connection(
                &mut session,
                &mut conn,
                sock,
                tls,
                io_timeouts,
                peer,
                "pop3",
            )
            .await;
        })
    });
    let busy = b"-ERR [SYS/TEMP] too many connections, try again later\r\n";
    listeners.push(listen("pop3", args.pop3, &ctx, &limits, busy, run).await?);
    let imap_config = Arc::new(mailkit_examples::imap::session_config(
        &ctx.hostname,
        args.allow_plaintext_auth,
        args.max_message_size,
    ));
    let (c, t) = (ctx.clone(), tls.clone());
    let run: RunFn = Arc::new(move |sock, peer| {
        let (ctx, tls, config) = (c.clone(), t.clone(), imap_config.clone());
        Box::pin(async move {
            let mut session = imap_proto::server::Session::new(config, Instant::now(), entropy());
            let mut conn = ImapConn::new(ctx);
            run_connection(
                &mut session,
                &mut conn,
                sock,
                tls,
                io_timeouts,
                peer,
                "imap",
            )
            .await;
        })
    });
    let busy = b"* BYE too many connections, try again later\r\n";
    listeners.push(listen("imap", args.imap, &ctx, &limits, busy, run).await?);
    let tracker = limits.tracker.clone();
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections, waiting for sessions in progress");
    for l in listeners.into_iter().chain(metrics) {
        l.abort();
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
    Ok(())
}

/// The queue runner's settings from the command line.
fn outbound(
    data: &std::path::Path,
    hostname: &str,
    args: &ServeArgs,
) -> Result<mailkit_examples::outbound::Outbound, String> {
    use mailkit_examples::outbound::{Outbound, Relay, dns::Dns};
    let relay = match &args.relay {
        None => None,
        Some(addr) => {
            let auth = match &args.relay_user {
                None => None,
                Some(user) => {
                    let password = match &args.relay_password_file {
                        Some(f) => std::fs::read_to_string(f)
                            .map_err(|e| format!("--relay-password-file {}: {e}", f.display()))?
                            .lines()
                            .next()
                            .unwrap_or("")
                            .to_owned(),
                        None => std::env::var("MAILSERVER_RELAY_PASSWORD").map_err(|_| {
                            "--relay-user needs --relay-password-file or MAILSERVER_RELAY_PASSWORD"
                                .to_owned()
                        })?,
                    };
                    Some((user.clone(), sasl::Secret::new(password)))
                }
            };
            Some(Relay {
                addr: addr.clone(),
                auth,
            })
        }
    };
    let dns = if relay.is_some() {
        None
    } else {
        Some(Dns::new(args.dns)?)
    };
    let dkim = mailkit_examples::dkim::Keys::load(data)?;
    if let Some(k) = &dkim {
        tracing::info!(domains = ?k, "DKIM signing");
    }
    Ok(Outbound {
        hostname: hostname.to_owned(),
        relay,
        dns,
        port: args.outbound_port,
        tls: args.tls_outbound,
        policy: mailstore::queue::RetryPolicy {
            first_retry: args.retry_first.max(1),
            max_interval: args.retry_max.max(1),
            give_up_after: args.queue_lifetime.max(1),
            delay_warning: args.delay_warning.max(0),
        },
        per_destination: args.outbound_per_destination.max(1),
        max_connections: 100,
        connect_timeout: Duration::from_secs(30),
        bind: args.outbound_bind,
        dkim,
        lease: 3600,
    })
}

/// Runs one accepted connection's session to its end over the socket loop.
async fn run_connection<S, H>(
    session: &mut S,
    conn: &mut H,
    sock: tokio::net::TcpStream,
    tls: Arc<rustls::ServerConfig>,
    io_timeouts: IoTimeouts,
    peer: SocketAddr,
    proto: &str,
) where
    S: session_core::Session,
    H: mailkit_examples::Handler<S>,
{
    if let Err(e) = drive(
        session,
        sock.compat(),
        Some(tls),
        &TokioTimer,
        io_timeouts,
        conn,
    )
    .await
    {
        tracing::debug!(%peer, %e, proto, "connection ended with an error");
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Aliases live in their own file, not in the store, so they can be
/// managed while the server runs; it reads the file again when it changes.
fn alias_cmd(cli: &Cli, action: &AliasCmd) -> Result<(), String> {
    let data = &cli.data;
    if !data.join("accounts").exists() {
        return Err(format!(
            "{}: no mail data here (start the server once, or pass --data)",
            data.display()
        ));
    }
    let file = data.join("aliases");
    let mut aliases = Aliases::load(data).map_err(|e| format!("{}: {e}", file.display()))?;
    match action {
        AliasCmd::Add { alias, user } => {
            let accounts = Accounts::load(data).map_err(|e| e.to_string())?;
            let name = UserName::new(user).map_err(|e| format!("user {user:?}: {e}"))?;
            if !accounts.map.contains_key(name.as_str()) {
                return Err(format!(
                    "no user {name}: add it first with `user add {name}`"
                ));
            }
            aliases.set(alias, name.as_str())?;
            aliases
                .save()
                .map_err(|e| format!("{}: {e}", file.display()))?;
            // A running server reads the file at once.
            let _ = admin::send(data, &admin::Action::ReloadAliases, None);
            println!("alias {alias} -> {name}");
        }
        AliasCmd::List => {
            for (a, u) in aliases.iter() {
                println!("{a}\t{u}");
            }
        }
        AliasCmd::Del { alias } => {
            if !aliases.remove(alias) {
                return Err(format!("no alias {alias}"));
            }
            aliases
                .save()
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let _ = admin::send(data, &admin::Action::ReloadAliases, None);
            println!("deleted alias {alias}");
        }
    }
    Ok(())
}

/// User administration: through the running server's admin socket when a
/// server holds the store (taking effect at once), else on the store
/// directly.
fn user_cmd(cli: &Cli, action: &UserCmd) -> Result<(), String> {
    let action = match action {
        UserCmd::Add { name, apop } => admin::Action::Add {
            name: name.clone(),
            apop: *apop,
        },
        UserCmd::Passwd { name } => admin::Action::Passwd { name: name.clone() },
        UserCmd::Del { name } => admin::Action::Del { name: name.clone() },
        UserCmd::List => admin::Action::List,
    };
    admin_cmd(cli, action)
}

/// `dkim generate`: the key goes to DATA/dkim; the record to stdout.
fn dkim_generate(cli: &Cli, domain: &str, selector: &str, rsa: bool) -> Result<(), String> {
    Domain::new(domain.to_owned()).map_err(|e| format!("{domain}: {e}"))?;
    Domain::new(selector.to_owned()).map_err(|e| format!("--selector {selector}: {e}"))?;
    let (name, value) = mailkit_examples::dkim::generate(&cli.data, domain, selector, rsa)?;
    // A TXT string holds at most 255 octets: longer values (RSA keys) go
    // as several strings, which resolvers join.
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    println!("{name}. IN TXT {}", strings.join(" "));
    eprintln!("publish this record, then restart the server to sign mail from {domain}");
    Ok(())
}

/// An administrative action: through the running server's admin socket,
/// else on the store directly.
fn admin_cmd(cli: &Cli, action: admin::Action) -> Result<(), String> {
    let store_dir = cli.data.join("store");
    if !matches!(action, admin::Action::Add { .. }) && !store_dir.exists() {
        return Err(format!(
            "{}: no mail data here (start the server once, or pass --data)",
            cli.data.display()
        ));
    }
    let password = if action.needs_password() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from standard input: {e}"))?;
        let p = line.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            return Err("empty password (give it on standard input)".into());
        }
        Some(p)
    } else {
        None
    };
    let text = match admin::send(&cli.data, &action, password.as_deref()) {
        Some(r) => r?,
        None => {
            std::fs::create_dir_all(&cli.data)
                .map_err(|e| format!("{}: {e}", cli.data.display()))?;
            let store = Store::open(&store_dir).map_err(|e| {
                format!(
                    "{}: {e} (a server that holds it should answer on {}; is it running?)",
                    store_dir.display(),
                    admin::socket_path(&cli.data).display()
                )
            })?;
            let accounts = Accounts::load(&cli.data).map_err(|e| e.to_string())?;
            admin::apply(&store, &RwLock::new(accounts), &action, password.as_deref())?
        }
    };
    if !text.is_empty() {
        println!("{text}");
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => {
            use std::io::IsTerminal;
            // Colours only for a person at a terminal, never in a file.
            logs.with_ansi(std::io::stderr().is_terminal()).init();
        }
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    let result = match &cli.cmd {
        Some(Cmd::User { action }) => user_cmd(&cli, action),
        Some(Cmd::Alias { action }) => alias_cmd(&cli, action),
        Some(Cmd::Queue { action }) => admin_cmd(
            &cli,
            match action {
                QueueCmd::List => admin::Action::QueueList,
                QueueCmd::Show { id } => admin::Action::QueueShow { id: *id },
                QueueCmd::Flush => admin::Action::QueueFlush,
                QueueCmd::Delete { id } => admin::Action::QueueDelete { id: *id },
            },
        ),
        Some(Cmd::Dkim {
            action:
                DkimCmd::Generate {
                    domain,
                    selector,
                    rsa,
                },
        }) => dkim_generate(&cli, domain, selector, *rsa),
        Some(Cmd::Serve(args)) => run_serve(&cli, (**args).clone()),
        None => run_serve(&cli, ServeArgs::default()),
    };
    if let Err(e) = result {
        eprintln!("mailserver: {e}");
        std::process::exit(1);
    }
}

fn run_serve(cli: &Cli, args: ServeArgs) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(serve(cli, args))
}
