//! `mailserver`: SMTP (MX), submission and LMTP over a Maildir store, with
//! STARTTLS and AUTH. Protocol logic lives in the crates; this is wiring.
//!
//! ```text
//! mailserver [--data DIR] [--domain NAME]... user add NAME   # password on stdin
//! mailserver [--data DIR] [--domain NAME]... user list | user del NAME
//! mailserver [--data DIR] [--domain NAME]... [serve] [--smtp ADDR] [--submission ADDR] [--lmtp ADDR]
//! ```

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use clap::{ArgAction, Parser, Subcommand};
use mailkit_examples::{Handler, IoTimeouts, TokioTimer, drive};
use mailstore::queue::{Envelope, Notify};
use mailstore::{Store, UserName};
use sasl::{Mechanism, ScramCredentials};
use smtp_proto::replies;
use smtp_proto::server::{AuthCheck, Config, Event, Mode, Session, TraceInfo};
use smtp_proto::{Domain, FixedReply, ForwardPath, Host, ReversePath};
use tokio::net::TcpListener;
use tokio_util::compat::TokioAsyncReadCompatExt;

#[derive(Parser, Debug)]
#[command(
    name = "mailserver",
    about = "A mail server built from the mailkit crates"
)]
struct Cli {
    /// Data folder (Maildir store, index, accounts, TLS certificate).
    #[arg(long, global = true, default_value = "./mail-data")]
    data: PathBuf,
    /// Mail domains served (repeat for several).
    #[arg(long = "domain", global = true, action = ArgAction::Append)]
    domains: Vec<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
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
    /// List users.
    List,
    /// Delete a user and their mail.
    Del { name: String },
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// SMTP (MX) listener.
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: SocketAddr,
    /// Submission listener (AUTH required, after STARTTLS).
    #[arg(long, default_value = "127.0.0.1:5870")]
    submission: SocketAddr,
    /// LMTP listener.
    #[arg(long, default_value = "127.0.0.1:2424")]
    lmtp: SocketAddr,
    /// POP3 listener.
    #[arg(long, default_value = "127.0.0.1:1110")]
    pop3: SocketAddr,
    /// IMAP listener (not served yet).
    #[arg(long)]
    imap: Option<SocketAddr>,
    /// TLS certificate chain (PEM); a self-signed one is made if absent.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
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
    /// Seconds a peer has to finish the TLS handshake after STARTTLS/STLS.
    #[arg(long, default_value_t = 30)]
    handshake_timeout: u64,
    /// Seconds one write may wait for a peer that stopped reading.
    #[arg(long, default_value_t = 120)]
    write_timeout: u64,
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

// ------------------------------------------------------------ accounts

/// One user's secrets: an argon2 hash for PLAIN/LOGIN and SCRAM keys.
#[derive(Clone)]
struct Account {
    hash: String,
    scram: ScramCredentials,
    /// The plain password, kept only for users added with `--apop`: APOP
    /// (and CRAM-MD5) need it on the server.
    apop: Option<String>,
}

struct Accounts {
    path: PathBuf,
    map: HashMap<String, Account>,
}

fn b64(b: &[u8]) -> String {
    sasl::encode(b)
}

impl Accounts {
    fn load(data: &Path) -> std::io::Result<Accounts> {
        let path = data.join("accounts");
        let mut map = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if let [name, hash, salt, iters, stored, server, rest @ ..] = f.as_slice() {
                    let apop = rest
                        .first()
                        .filter(|a| **a != "-")
                        .and_then(|a| sasl::decode_base64(a).ok())
                        .and_then(|v| String::from_utf8(v).ok());
                    let key = |s: &str| -> [u8; 32] {
                        sasl::decode_base64(s)
                            .ok()
                            .and_then(|v| v.try_into().ok())
                            .unwrap_or([0; 32])
                    };
                    map.insert(
                        (*name).to_owned(),
                        Account {
                            hash: (*hash).to_owned(),
                            scram: ScramCredentials {
                                salt: sasl::decode_base64(salt).unwrap_or_default(),
                                iterations: iters.parse().unwrap_or(4096),
                                stored_key: key(stored),
                                server_key: key(server),
                            },
                            apop,
                        },
                    );
                }
            }
        }
        Ok(Accounts { path, map })
    }

    /// Writes the file atomically: temp file, fsync, rename, fsync folder.
    fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(&tmp)?
        };
        let mut names: Vec<&String> = self.map.keys().collect();
        names.sort();
        for n in names {
            let a = &self.map[n];
            writeln!(
                f,
                "{n}\t{}\t{}\t{}\t{}\t{}\t{}",
                a.hash,
                b64(&a.scram.salt),
                a.scram.iterations,
                b64(&a.scram.stored_key),
                b64(&a.scram.server_key),
                a.apop
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |p| b64(p.as_bytes()))
            )?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn add(&mut self, name: &str, password: &str, apop: bool) -> Result<(), String> {
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes).map_err(|e| e.to_string())?;
        let hash = argon2::Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt_bytes)
            .map_err(|e| e.to_string())?
            .to_string();
        let scram = ScramCredentials::derive(password, &salt_bytes, 4096);
        let apop = apop.then(|| password.to_owned());
        self.map
            .insert(name.to_owned(), Account { hash, scram, apop });
        Ok(())
    }
}

fn verify_password(hash: &str, password: &str) -> bool {
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

fn random_password() -> String {
    let mut b = [0u8; 15];
    let _ = getrandom::fill(&mut b);
    b64(&b).replace(['+', '/'], "x")
}

// ----------------------------------------------------------------- TLS

fn tls_config(
    data: &Path,
    args: &ServeArgs,
    names: &[String],
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = data.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let mut sans: Vec<String> = names.to_vec();
                sans.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
                let ck = rcgen::generate_simple_self_signed(sans).map_err(|e| e.to_string())?;
                std::fs::write(&c, ck.cert.pem()).map_err(|e| e.to_string())?;
                std::fs::write(&k, ck.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
            }
            (c, k)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(cfg))
}

// -------------------------------------------------------------- serving

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Mx,
    Submission,
    Lmtp,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Mx => "smtp",
            Role::Submission => "submission",
            Role::Lmtp => "lmtp",
        }
    }
}

struct Ctx {
    store: Store,
    accounts: RwLock<Accounts>,
    domains: Vec<String>,
    hostname: String,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Ctx {
    fn local_user(&self, to: &ForwardPath<'_>) -> Result<Option<UserName>, ()> {
        match to {
            ForwardPath::Postmaster => Ok(["postmaster", "demo"]
                .iter()
                .filter_map(|n| UserName::new(n).ok())
                .find(|u| self.store.has_user(u))),
            ForwardPath::Mailbox(m) => match &m.host {
                Host::Domain(d)
                    if self
                        .domains
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(d.as_str())) =>
                {
                    Ok(UserName::new(m.local_part.as_str())
                        .ok()
                        .filter(|u| self.store.has_user(u)))
                }
                _ => Err(()),
            },
        }
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// LMTP's answer for a recipient whose copy is stored.
const DELIVERED: FixedReply = FixedReply::new(250, Some((2, 0, 0)), "Delivered");
/// SMTP's answer for a stored message, followed by its queue id.
const QUEUED: FixedReply = FixedReply::new(250, Some((2, 0, 0)), "Ok: queued as");

struct Conn {
    ctx: Arc<Ctx>,
    role: Role,
    peer: SocketAddr,
    body: Vec<u8>,
}

impl Handler<Session> for Conn {
    async fn handle(&mut self, s: &mut Session, tls: Option<&str>, event: Event) {
        let ctx = self.ctx.clone();
        let r = match event {
            Event::Mail(m) => {
                if self.role == Role::Submission {
                    let who = s.identity().map(|i| i.username.clone()).unwrap_or_default();
                    let owned = match &m.from {
                        ReversePath::Mailbox(b) => {
                            b.local_part.as_str().eq_ignore_ascii_case(&who)
                                && matches!(&b.host, Host::Domain(d) if ctx.domains.iter().any(|x| x.eq_ignore_ascii_case(d.as_str())))
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
            Event::Rcpt(r) => match (ctx.local_user(&r.to), self.role) {
                (Ok(Some(_)), _) => s.accept(r.token),
                (Ok(None), _) | (Err(()), Role::Lmtp) => s.reject(r.token, replies::NO_SUCH_USER),
                (Err(()), Role::Submission) => s.accept(r.token),
                (Err(()), Role::Mx) => s.reject(r.token, replies::RELAY_DENIED),
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
                if ok {
                    s.accept(a.token)
                } else {
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
                self.body.extend_from_slice(&chunk);
                Ok(())
            }
            Event::MessageAborted => {
                self.body.clear();
                Ok(())
            }
            Event::Message(m) => {
                let body = std::mem::take(&mut self.body);
                let id = format!("{:x}{:x}", now_secs(), self.peer.port());
                let date = mailstore::queue::rfc5322_date(now_secs());
                let single = (m.recipients.len() == 1).then(|| &m.recipients[0]);
                let header = s.received_header(&TraceInfo {
                    remote_ip: Some(self.peer.ip()),
                    remote_name: None,
                    id: Some(&id),
                    tls,
                    recipient: single,
                    date: &date,
                });
                let mut full = header.into_bytes();
                full.extend_from_slice(&body);
                let full = Arc::new(full);
                let mut results = Vec::new();
                let mut remote = Vec::new();
                for rcpt in &m.recipients {
                    match ctx.local_user(rcpt) {
                        Ok(Some(user)) => {
                            let (store, msg) = (ctx.store.clone(), full.clone());
                            let r = tokio::task::spawn_blocking(move || {
                                store.deliver(&user, &msg, now_secs())
                            })
                            .await;
                            results.push(matches!(r, Ok(Ok(_))));
                        }
                        _ => {
                            let mut b = bytes::BytesMut::new();
                            rcpt.encode(&mut b);
                            let addr = String::from_utf8_lossy(&b)
                                .trim_matches(['<', '>'])
                                .to_owned();
                            remote.push((addr, Notify::default(), None));
                            results.push(true);
                        }
                    }
                }
                if !remote.is_empty() {
                    let from = match &m.from {
                        ReversePath::Null => String::new(),
                        ReversePath::Mailbox(b) => b.to_string(),
                    };
                    let env = Envelope {
                        from,
                        recipients: remote,
                        envid: None,
                        ret: None,
                    };
                    let (store, msg) = (ctx.store.clone(), full.clone());
                    let q = tokio::task::spawn_blocking(move || {
                        store.queue_add(env, &mut &msg[..], now_secs())
                    })
                    .await;
                    if !matches!(q, Ok(Ok(_))) {
                        results.iter_mut().for_each(|r| *r = false);
                    }
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
                    s.accept_with(m.token, QUEUED.with_detail(&id.to_string()))
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

fn session_config(ctx: &Ctx, role: Role, args: &ServeArgs) -> Config {
    let hostname = Domain::new(ctx.hostname.clone())
        .unwrap_or_else(|_| Domain::new("localhost").unwrap_or_else(|_| unreachable!()));
    let mut c = Config::new(hostname);
    c.limits.max_message_size = args.max_message_size;
    c.line_ending = args.bare_newline.policy();
    c.body_line_ending = args.bare_newline.policy();
    match role {
        Role::Mx => {}
        Role::Submission => {
            c.require_auth = true;
            c.require_tls_for_auth = true;
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

async fn serve(cli: &Cli, args: ServeArgs) -> Result<(), String> {
    let data = &cli.data;
    let first_start = !data.join("accounts").exists();
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let store = Store::open(data.join("store")).map_err(|e| e.to_string())?;
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
    let domains = if cli.domains.is_empty() {
        vec!["localhost".to_owned()]
    } else {
        cli.domains.clone()
    };
    let tls = tls_config(data, &args, &domains)?;
    let ctx = Arc::new(Ctx {
        store,
        accounts: RwLock::new(accounts),
        hostname: domains[0].clone(),
        domains,
        per_ip: Mutex::new(HashMap::new()),
    });
    if args.imap.is_some() {
        tracing::warn!("IMAP is not served yet");
    }
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
        let config = Arc::new(session_config(&ctx, role, &args));
        let (c, tls) = (ctx.clone(), tls.clone());
        let run: RunFn = Arc::new(move |sock, peer| {
            let (ctx, tls, config) = (c.clone(), tls.clone(), config.clone());
            Box::pin(async move {
                let mut session = Session::new(config, Instant::now(), entropy());
                let mut conn = Conn {
                    ctx,
                    role,
                    peer,
                    body: Vec::new(),
                };
                if let Err(e) = drive(
                    &mut session,
                    sock.compat(),
                    Some(tls),
                    &TokioTimer,
                    io_timeouts,
                    &mut conn,
                )
                .await
                {
                    tracing::debug!(%peer, %e, "connection ended with an error");
                }
            })
        });
        let busy = b"421 4.7.0 Too many connections, try again later\r\n";
        listeners.push(listen(role.name(), addr, &ctx, &limits, busy, run).await?);
    }
    let pop3_config = Arc::new({
        let mut c = pop3_proto::server::Config::new(ctx.hostname.clone());
        c.line_ending = args.bare_newline.policy();
        c.apop = true;
        c.auth_mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];
        c
    });
    let (c, t) = (ctx.clone(), tls.clone());
    let run: RunFn = Arc::new(move |sock, peer| {
        let (ctx, tls, config) = (c.clone(), t.clone(), pop3_config.clone());
        Box::pin(async move {
            let mut session = pop3_proto::server::Session::new(config, Instant::now(), entropy());
            let mut conn = Pop3Conn {
                ctx,
                user: None,
                snapshot: None,
            };
            if let Err(e) = drive(
                &mut session,
                sock.compat(),
                Some(tls),
                &TokioTimer,
                io_timeouts,
                &mut conn,
            )
            .await
            {
                tracing::debug!(%peer, %e, "pop3 connection ended with an error");
            }
        })
    });
    let busy = b"-ERR [SYS/TEMP] too many connections, try again later\r\n";
    listeners.push(listen("pop3", args.pop3, &ctx, &limits, busy, run).await?);
    let tracker = limits.tracker.clone();
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections, waiting for sessions in progress");
    for l in listeners {
        l.abort();
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
    Ok(())
}

type RunFn = Arc<
    dyn Fn(
            tokio::net::TcpStream,
            SocketAddr,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

struct Limits {
    total: Arc<tokio::sync::Semaphore>,
    tracker: tokio_util::task::TaskTracker,
    max_per_ip: usize,
}

fn entropy() -> [u8; 16] {
    let mut e = [0u8; 16];
    let _ = getrandom::fill(&mut e);
    e
}

/// Binds, prints `listening <proto> <addr>`, and accepts connections with
/// the total and per-IP limits; over-limit peers get `busy` and are closed.
async fn listen(
    proto: &str,
    addr: SocketAddr,
    ctx: &Arc<Ctx>,
    limits: &Limits,
    busy: &'static [u8],
    run: RunFn,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {proto} {local}");
    let (ctx, total, tracker, max_ip) = (
        ctx.clone(),
        limits.total.clone(),
        limits.tracker.clone(),
        limits.max_per_ip,
    );
    Ok(tokio::spawn(async move {
        loop {
            let Ok((sock, peer)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            let permit = total.clone().try_acquire_owned().ok();
            let ip_ok = {
                let mut m = ctx.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                let n = m.entry(peer.ip()).or_insert(0);
                *n += 1;
                *n <= max_ip
            };
            let (ctx, run) = (ctx.clone(), run.clone());
            tracker.spawn(async move {
                if permit.is_none() || !ip_ok {
                    use tokio::io::AsyncWriteExt;
                    let mut sock = sock;
                    let _ = sock.write_all(busy).await;
                } else {
                    run(sock, peer).await;
                }
                drop(permit);
                let mut m = ctx.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = m.get_mut(&peer.ip()) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&peer.ip());
                    }
                }
            });
        }
    }))
}

/// A POP3 connection: the user and the maildrop snapshot after login.
struct Pop3Conn {
    ctx: Arc<Ctx>,
    user: Option<UserName>,
    snapshot: Option<mailstore::Pop3Snapshot>,
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
                let snapshot = UserName::new(&username)
                    .ok()
                    .filter(|_| ok)
                    .and_then(|u| ctx.store.pop3_snapshot(&u).ok().map(|snap| (u, snap)));
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

fn user_cmd(cli: &Cli, action: &UserCmd) -> Result<(), String> {
    std::fs::create_dir_all(&cli.data).map_err(|e| e.to_string())?;
    let store = Store::open(cli.data.join("store")).map_err(|e| e.to_string())?;
    let mut accounts = Accounts::load(&cli.data).map_err(|e| e.to_string())?;
    match action {
        UserCmd::Add { name, apop } => {
            let user = UserName::new(name).map_err(|e| e.to_string())?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("empty password".into());
            }
            accounts.add(user.as_str(), password, *apop)?;
            accounts.save().map_err(|e| e.to_string())?;
            if !store.has_user(&user) {
                store.create_user(&user).map_err(|e| e.to_string())?;
            }
            println!("added {user}");
        }
        UserCmd::List => {
            for u in store.users() {
                println!("{u}");
            }
        }
        UserCmd::Del { name } => {
            let user = UserName::new(name).map_err(|e| e.to_string())?;
            accounts.map.remove(user.as_str());
            accounts.save().map_err(|e| e.to_string())?;
            store.delete_user(&user).map_err(|e| e.to_string())?;
            println!("deleted {user}");
        }
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Some(Cmd::User { action }) => user_cmd(&cli, action),
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
