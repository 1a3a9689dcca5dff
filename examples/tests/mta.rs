//! The mail server as an MTA, over loopback with no outside network: two
//! instances (`a.test` on 127.0.0.11, `b.test` on 127.0.0.12) and a real
//! DNS server in the test process (hickory-server) serving the test zone's
//! MX, A and TXT records; Postfix's `smtp-sink` as a smarthost.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::rdata::{A, MX, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RrKey};
use hickory_server::Server as DnsServerLoop;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

/// An authoritative DNS server for `test.` on 127.0.0.1 (UDP and TCP),
/// running on its own runtime for the test's life.
struct Dns {
    addr: SocketAddr,
    _server: DnsServerLoop<Catalog>,
    rt: tokio::runtime::Runtime,
}

enum Rec<'a> {
    Mx(u16, &'a str),
    A(Ipv4Addr),
    Txt(&'a str),
}

fn name(s: &str) -> Name {
    Name::from_str(&format!("{}.", s.trim_end_matches('.'))).unwrap()
}

fn dns(records: &[(&str, Rec<'_>)]) -> Dns {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let origin = name("test");
    let mut map: BTreeMap<RrKey, RecordSet> = BTreeMap::new();
    let mut add = |owner: Name, data: RData| {
        let record = Record::from_rdata(owner.clone(), 60, data);
        let key = RrKey::new(LowerName::new(&owner), record.record_type());
        map.entry(key)
            .or_insert_with(|| RecordSet::new(owner.clone(), record.record_type(), 1))
            .insert(record, 1);
    };
    add(
        origin.clone(),
        RData::SOA(SOA::new(
            name("ns.test"),
            name("hostmaster.test"),
            1,
            60,
            60,
            60,
            60,
        )),
    );
    for (owner, rec) in records {
        let data = match rec {
            Rec::Mx(p, host) => RData::MX(MX::new(
                *p,
                if host.is_empty() {
                    Name::root()
                } else {
                    name(host)
                },
            )),
            Rec::A(ip) => RData::A(A(*ip)),
            Rec::Txt(t) => RData::TXT(TXT::new(
                t.as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect(),
            )),
        };
        add(name(owner), data);
    }
    let zone = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        origin.clone(),
        map,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .unwrap();
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    let (server, addr) = rt.block_on(async {
        // UDP and TCP on one port number: the free UDP port may be taken
        // for TCP by another test, so try again (bounded).
        let mut tries = 0;
        let (udp, tcp, addr) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp, addr),
                Err(e) => {
                    tries += 1;
                    assert!(tries < 50, "no port free for both UDP and TCP: {e}");
                }
            }
        };
        let mut server = DnsServerLoop::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        (server, addr)
    });
    Dns {
        addr,
        _server: server,
        rt,
    }
}

/// What a DKIM key generated for `domain` in `data` asks to publish.
fn dkim_key(data: &Path, domain: &str, rsa: bool) -> (String, String) {
    std::fs::create_dir_all(data).unwrap();
    let mut args = vec!["dkim", "generate", domain];
    if rsa {
        args.push("--rsa");
    }
    let (ok, out) = cli(data, &args);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("IN TXT"))
        .expect("a TXT record is printed");
    let (owner, rest) = line.split_once(". IN TXT ").unwrap();
    // Several quoted strings for a long (RSA) key: joined, as resolvers do.
    (
        owner.to_owned(),
        rest.split('"').skip(1).step_by(2).collect(),
    )
}

fn add_user(s: &Server, user: &str) {
    let (ok, out) = cli_input(&s.data, &["user", "add", user], "secret-of-user\n");
    assert!(ok, "{out}");
}

/// Submits a message at `s` (submission port, STARTTLS, AUTH as demo).
fn submit(s: &Server, ip: &str, from: &str, to: &[&str], subject: &str, rcpt_options: &str) {
    let to_list = to
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("{ip}", int(sys.argv[2]), timeout=20)
c.starttls(context=ctx)
c.login("demo", sys.argv[4])
msg = "From: <{from}>\r\nTo: <{first}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@a.test>\r\n\r\nHello from A.\r\n"
refused = c.sendmail("{from}", [{to_list}], msg, rcpt_options=[{rcpt_options}])
print("refused", refused)
c.quit()
"#,
        first = to[0],
    );
    python(s, &script);
}

/// Waits (bounded) until `f` holds.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// down.test: its MX has an address nothing listens on.
const DOWN: [(&str, Rec<'static>); 2] = [
    ("down.test", Rec::Mx(10, "mx.down.test")),
    ("mx.down.test", Rec::A(Ipv4Addr::new(127, 0, 0, 13))),
];

struct Pair {
    a: Server,
    b: Server,
    dns: Dns,
    _dir: tempfile::TempDir,
}

/// The test zone plus `extra`, B on 127.0.0.12, A on 127.0.0.11 sending
/// to B's SMTP port, DKIM key for a.test published.
fn pair(extra_records: &[(&str, Rec<'_>)], a_args: &[&str]) -> Pair {
    pair_with(extra_records, a_args, false)
}

/// [`pair`] with an RSA DKIM key instead of Ed25519.
fn pair_with(extra_records: &[(&str, Rec<'_>)], a_args: &[&str], rsa: bool) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let (owner, txt) = dkim_key(&a_data, "a.test", rsa);
    let mut records = vec![
        ("a.test", Rec::Mx(10, "mx.a.test")),
        ("mx.a.test", Rec::A(Ipv4Addr::new(127, 0, 0, 11))),
        ("b.test", Rec::Mx(10, "mx.b.test")),
        ("mx.b.test", Rec::A(Ipv4Addr::new(127, 0, 0, 12))),
        (owner.as_str(), Rec::Txt(&txt)),
    ];
    records.extend(extra_records.iter().map(|(o, r)| {
        (
            *o,
            match r {
                Rec::Mx(p, h) => Rec::Mx(*p, h),
                Rec::A(ip) => Rec::A(*ip),
                Rec::Txt(t) => Rec::Txt(t),
            },
        )
    }));
    let dns = dns(&records);
    let dns_arg = dns.addr.to_string();
    let b_log = dir.path().join("b.log");
    let b = start_at(
        &b_data,
        None,
        None,
        "127.0.0.12",
        &["b.test", "c.test"],
        &["--dns", &dns_arg],
        Some(&b_log),
    );
    // (B serves c.test too: the smarthost test's sender, demo@c.test, is
    // B's demo user.)
    let port = b.smtp.to_string();
    let mut args = vec![
        "--dns",
        &dns_arg,
        "--outbound-port",
        &port,
        "--outbound-bind",
        "127.0.0.11",
    ];
    args.extend_from_slice(a_args);
    let log = dir.path().join("a.log");
    let a = start_at(
        &a_data,
        None,
        None,
        "127.0.0.11",
        &["a.test"],
        &args,
        Some(&log),
    );
    add_user(&b, "bob");
    Pair {
        a,
        b,
        dns,
        _dir: dir,
    }
}

/// Verifies the DKIM signature of `message` against the test zone.
fn dkim_verifies(dns: &Dns, message: &str) -> bool {
    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr.ip());
    ns.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
        .into_iter()
        .map(|mut c| {
            c.port = dns.addr.port();
            c
        })
        .collect();
    dns.rt.block_on(async {
        let resolver = hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        )
        .build()
        .unwrap();
        let auth = mail_auth::MessageAuthenticator(resolver);
        let parsed = mail_auth::AuthenticatedMessage::parse(message.as_bytes()).unwrap();
        let results = auth.verify_dkim(&parsed).await;
        !results.is_empty()
            && results
                .iter()
                .all(|r| *r.result() == mail_auth::DkimResult::Pass)
    })
}

#[test]
fn mail_for_another_domain_goes_by_mx_dkim_signed_with_the_local_copy_in_one_transaction() {
    let p = pair(&[], &[]);
    submit_a(&p, &["bob@b.test", "demo@a.test"], "by-mx", "");
    wait_for("delivery at B", Duration::from_secs(30), || {
        !maildir(&p.b, "bob").is_empty()
    });
    let got = maildir(&p.b, "bob").remove(0);
    assert!(got.contains("Subject: by-mx"), "{got}");
    assert!(got.starts_with("Return-Path: <demo@a.test>"), "{got}");
    assert!(got.contains("DKIM-Signature:"), "{got}");
    // B's trace header names A's address, and the hop was TLS.
    assert!(got.contains("127.0.0.11"), "{got}");
    assert!(got.contains("TLS"), "{got}");
    assert!(
        dkim_verifies(&p.dns, &got),
        "the signature verifies:\n{got}"
    );
    // The local recipient of the same transaction has its copy.
    assert_eq!(maildir(&p.a, "demo").len(), 1);
    // The queue at A is empty once B acknowledged.
    wait_for("an empty queue", Duration::from_secs(10), || {
        cli(&p.a.data, &["queue", "list"])
            .1
            .contains("the queue is empty")
    });
}

#[test]
fn an_rsa_dkim_key_signs_too() {
    let p = pair_with(&[], &[], true);
    submit_a(&p, &["bob@b.test"], "rsa", "");
    wait_for("delivery at B", Duration::from_secs(30), || {
        !maildir(&p.b, "bob").is_empty()
    });
    let got = maildir(&p.b, "bob").remove(0);
    assert!(got.contains("a=rsa-sha256"), "{got}");
    assert!(
        dkim_verifies(&p.dns, &got),
        "the signature verifies:\n{got}"
    );
}

/// Submits at A as demo@a.test.
fn submit_a(p: &Pair, to: &[&str], subject: &str, rcpt_options: &str) {
    submit(&p.a, "127.0.0.11", "demo@a.test", to, subject, rcpt_options);
}

/// Waits (bounded, `secs`) for the first report in demo's INBOX.
fn first_report(s: &Server, what: &str, secs: u64) -> String {
    wait_for(what, Duration::from_secs(secs), || !bounces(s).is_empty());
    bounces(s).remove(0)
}

fn bounces(s: &Server) -> Vec<String> {
    maildir(s, "demo")
        .into_iter()
        .filter(|m| m.contains("MAILER-DAEMON"))
        .collect()
}

#[test]
fn null_mx_bounces_into_the_senders_inbox_at_once() {
    let p = pair(&[("nullmx.test", Rec::Mx(0, ""))], &[]);
    submit_a(&p, &["someone@nullmx.test"], "to-null", "");
    let b = first_report(&p.a, "a bounce", 20);
    assert!(b.contains("Status: 5.1.10"), "{b}");
    assert!(b.contains("Action: failed"), "{b}");
    assert!(
        b.contains("Final-Recipient: rfc822; someone@nullmx.test"),
        "{b}"
    );
    assert!(
        b.contains("Subject: to-null"),
        "the original headers are attached: {b}"
    );
    assert!(b.starts_with("Return-Path: <>"), "{b}");
}

#[test]
fn an_unreachable_mx_keeps_the_message_queued_and_bounces_at_expiry() {
    // Nothing listens on 127.0.0.13.
    let p = pair(
        &DOWN,
        &[
            "--retry-first",
            "1",
            "--retry-max",
            "1",
            "--queue-lifetime",
            "6",
            "--delay-warning",
            "2",
        ],
    );
    submit_a(&p, &["x@down.test"], "to-down", "\"NOTIFY=DELAY,FAILURE\"");
    wait_for("a retry", Duration::from_secs(20), || {
        let (_, list) = cli(&p.a.data, &["queue", "list"]);
        list.contains("x@down.test (deferred)")
    });
    let (_, list) = cli(&p.a.data, &["queue", "list"]);
    let id = list.split('\t').next().unwrap().trim().to_owned();
    let (ok, show) = cli(&p.a.data, &["queue", "show", &id]);
    assert!(ok, "{show}");
    assert!(
        show.contains("4.4.1"),
        "the connection failure is recorded: {show}"
    );
    assert!(show.contains("Subject: to-down"), "{show}");
    // NOTIFY=DELAY: told once that it is late, then that it failed.
    let report = |what: &'static str| move |m: &String| m.contains(what);
    wait_for("the delay report", Duration::from_secs(30), || {
        bounces(&p.a).iter().any(report("Action: delayed"))
    });
    wait_for("the expiry bounce", Duration::from_secs(30), || {
        bounces(&p.a).iter().any(report("Action: failed"))
    });
    let all = bounces(&p.a);
    assert_eq!(
        all.iter().filter(|m| report("Action: delayed")(m)).count(),
        1
    );
    let d = all.iter().find(|m| report("Action: delayed")(m)).unwrap();
    assert!(d.contains("Subject: Delayed Mail"), "{d}");
    assert!(d.contains("Status: 4.0.0"), "{d}");
    let b = all.iter().find(|m| report("Action: failed")(m)).unwrap();
    assert!(b.contains("Status: 4.4.7"), "{b}");
    assert!(b.contains("delivery time expired"), "{b}");
}

#[test]
fn a_refused_recipient_bounces_alone() {
    let p = pair(&[], &[]);
    submit_a(&p, &["bob@b.test", "nosuch@b.test"], "two", "");
    wait_for("delivery to bob", Duration::from_secs(30), || {
        !maildir(&p.b, "bob").is_empty()
    });
    let b = first_report(&p.a, "a bounce", 20);
    assert!(b.contains("Final-Recipient: rfc822; nosuch@b.test"), "{b}");
    assert!(!b.contains("Final-Recipient: rfc822; bob@b.test"), "{b}");
    assert!(b.contains("Status: 5.1.1"), "{b}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bounces(&p.a).len(), 1, "one bounce only");
}

#[test]
fn notify_success_gives_a_delivery_report() {
    let p = pair(&[], &[]);
    submit_a(&p, &["bob@b.test"], "dsn", "\"NOTIFY=SUCCESS\"");
    let r = first_report(&p.a, "a report", 30);
    assert!(r.contains("Action: delivered"), "{r}");
    assert!(r.contains("Status: 2.0.0"), "{r}");
    assert!(r.contains("Final-Recipient: rfc822; bob@b.test"), "{r}");
    assert_eq!(maildir(&p.b, "bob").len(), 1);
}

#[test]
fn queue_commands_work_while_the_server_runs() {
    let p = pair(&DOWN, &[]);
    submit_a(&p, &["x@down.test"], "held", "");
    wait_for("a deferral", Duration::from_secs(20), || {
        cli(&p.a.data, &["queue", "list"]).1.contains("(deferred)")
    });
    let (ok, out) = cli(&p.a.data, &["queue", "flush"]);
    assert!(ok && out.contains("1 recipients due now"), "{out}");
    let (_, list) = cli(&p.a.data, &["queue", "list"]);
    let id = list.split('\t').next().unwrap().trim().to_owned();
    let (ok, out) = cli(&p.a.data, &["queue", "delete", &id]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&p.a.data, &["queue", "show", &id]);
    assert!(!ok && out.contains("no queued message"), "{out}");
    assert!(
        cli(&p.a.data, &["queue", "list"])
            .1
            .contains("the queue is empty")
    );
    // Deleted means no bounce either.
    std::thread::sleep(Duration::from_secs(1));
    assert!(bounces(&p.a).is_empty());
}

#[test]
fn tls_required_never_falls_back_to_plaintext() {
    // verify: B's self-signed certificate does not pass, so the message
    // stays queued rather than going in the clear or unchecked.
    let p = pair(&[], &["--tls-outbound", "verify"]);
    submit_a(&p, &["bob@b.test"], "verify", "");
    wait_for("a deferral", Duration::from_secs(20), || {
        cli(&p.a.data, &["queue", "list"])
            .1
            .contains("bob@b.test (deferred)")
    });
    assert!(maildir(&p.b, "bob").is_empty());
}

/// Postfix's smtp-sink on a free loopback port, dumping each message into
/// `dump`: (the process, its port).
fn smtp_sink(dump: &Path) -> (std::process::Child, u16) {
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    drop(sink);
    std::fs::create_dir_all(dump).unwrap();
    let template = format!("{}/%M.", dump.display());
    let bin = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Postfix's smtp-sink is installed (package postfix; .ci/test installs it)");
    let child = Command::new(bin)
        .args([
            "-u",
            "root",
            "-d",
            &template,
            &format!("127.0.0.1:{port}"),
            "10",
        ])
        .spawn()
        .expect("smtp-sink starts");
    // Bounded wait until it listens.
    wait_for("smtp-sink to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (child, port)
}

/// Whether a message dumped by smtp-sink contains `text`.
fn dumped(dump: &Path, text: &str) -> bool {
    std::fs::read_dir(dump)
        .map(|d| {
            d.flatten()
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(text)))
        })
        .unwrap_or(false)
}

#[test]
fn smtp_sink_receives_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    let (mut child, port) = smtp_sink(&dump);
    let relay = format!("127.0.0.1:{port}");
    let data = dir.path().join("a");
    let log = dir.path().join("a.log");
    let a = start_at(
        &data,
        None,
        None,
        "127.0.0.1",
        &["a.test"],
        &["--relay", &relay],
        Some(&log),
    );
    // smtp-sink may take a moment to listen; the runner retries anyway.
    submit(
        &a,
        "127.0.0.1",
        "demo@a.test",
        &["carol@elsewhere.example"],
        "relayed",
        "",
    );
    let found = || dumped(&dump, "Subject: relayed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !found() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "smtp-sink never received the message; A logged:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if cli(&a.data, &["queue", "list"]).1.contains("(deferred)") {
            cli(&a.data, &["queue", "flush"]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn kill_9_during_delivery_loses_nothing_and_resends_at_most_the_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(&[], &[]);
    let n = 200;
    // The client prints each message A acknowledged; A is killed while it
    // takes and sends them.
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    c = smtplib.SMTP("127.0.0.11", int(sys.argv[1]), timeout=20)
    c.starttls(context=ctx)
    c.login("demo", sys.argv[2])
    for i in range({n}):
        c.sendmail("demo@a.test", ["bob@b.test"], "Subject: m%d\r\n\r\n%s\r\n" % (i, "x" * 20000))
        print(i, flush=True)
except Exception:
    pass
"#
    );
    let client = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .args([p.a.submission.to_string(), p.a.password.clone()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("some deliveries", Duration::from_secs(30), || {
        maildir(&p.b, "bob").len() >= 3
    });
    let Pair {
        mut a,
        b,
        dns,
        _dir,
    } = p;
    let (a_data, password) = (a.data.clone(), a.password.clone());
    let _ = a.child.kill();
    let _ = a.child.wait();
    drop(a);
    let out = client.wait_with_output().unwrap();
    let acked: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| format!("Subject: m{}", l.trim()))
        .collect();
    assert!(!acked.is_empty());
    let dns_arg = dns.addr.to_string();
    let port = b.smtp.to_string();
    let a = start_at(
        &a_data,
        None,
        Some(password),
        "127.0.0.11",
        &["a.test"],
        &[
            "--dns",
            &dns_arg,
            "--outbound-port",
            &port,
            "--outbound-bind",
            "127.0.0.11",
        ],
        Some(&dir.path().join("a2.log")),
    );
    wait_for("an empty queue", Duration::from_secs(60), || {
        cli(&a.data, &["queue", "list"])
            .1
            .contains("the queue is empty")
    });
    let got: Vec<String> = maildir(&b, "bob")
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Subject: "))
                .map(str::to_owned)
        })
        .collect();
    for s in &acked {
        assert!(got.contains(s), "{s} was acknowledged and must arrive");
    }
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    // At most the messages in flight at the kill (4 connections) twice.
    assert!(
        got.len() - unique.len() <= 4,
        "{} duplicates",
        got.len() - unique.len()
    );
}

/// A smarthost that wants AUTH: B's submission port (STARTTLS, then AUTH
/// as B's demo user, the password from a file).
#[test]
fn relay_with_auth_through_a_submission_port() {
    let p = pair(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("relay-password");
    std::fs::write(&pw, format!("{}\n", p.b.password)).unwrap();
    let relay = format!("127.0.0.12:{}", p.b.submission);
    let c = start_at(
        &dir.path().join("c"),
        None,
        None,
        "127.0.0.1",
        &["c.test"],
        &[
            "--relay",
            &relay,
            "--relay-user",
            "demo",
            "--relay-password-file",
            pw.to_str().unwrap(),
        ],
        Some(&dir.path().join("c.log")),
    );
    submit(
        &c,
        "127.0.0.1",
        "demo@c.test",
        &["bob@b.test"],
        "via-auth",
        "",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    wait_for(
        "delivery through the relay",
        Duration::from_secs(31),
        || {
            assert!(
                Instant::now() < deadline,
                "no delivery; the sender logged:\n{}\nthe relay logged:\n{}",
                std::fs::read_to_string(dir.path().join("c.log")).unwrap_or_default(),
                std::fs::read_to_string(p._dir.path().join("b.log")).unwrap_or_default()
            );
            maildir(&p.b, "bob")
                .iter()
                .any(|m| m.contains("Subject: via-auth"))
        },
    );
    // A wrong password keeps the mail queued.
    std::fs::write(&pw, "wrong\n").unwrap();
    let d = start_at(
        &dir.path().join("d"),
        None,
        None,
        "127.0.0.1",
        &["d.test"],
        &[
            "--relay",
            &relay,
            "--relay-user",
            "demo",
            "--relay-password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    submit(
        &d,
        "127.0.0.1",
        "demo@d.test",
        &["bob@b.test"],
        "bad-auth",
        "",
    );
    wait_for("a deferral", Duration::from_secs(20), || {
        cli(&d.data, &["queue", "list"]).1.contains("(deferred)")
    });
    let (_, list) = cli(&d.data, &["queue", "list"]);
    let id = list.split('\t').next().unwrap().trim().to_owned();
    assert!(
        cli(&d.data, &["queue", "show", &id])
            .1
            .contains("AUTH refused")
    );
}

/// The `relay` example: a header added, the smarthost's answer passed on
/// (250 when it took the message, 451 when it is down).
#[test]
fn the_relay_example_forwards_with_its_header() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    let (mut sink, port) = smtp_sink(&dump);
    let start = |smarthost: String| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["127.0.0.1:0", &smarthost])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        (child, port)
    };
    let send = |port: u16| {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                r#"
import smtplib
c = smtplib.SMTP("127.0.0.1", {port}, timeout=20)
try:
    c.sendmail("a@example.org", ["b@example.net"], "Subject: through-relay\r\n\r\nhi\r\n")
    print("sent")
except smtplib.SMTPResponseException as e:
    print("refused", e.smtp_code)
"#
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (mut relay, relay_port) = start(format!("127.0.0.1:{port}"));
    assert_eq!(send(relay_port).trim(), "sent");
    wait_for("the relayed message", Duration::from_secs(10), || {
        dumped(&dump, "X-Relayed-By: mailkit-relay")
    });
    assert!(dumped(&dump, "Subject: through-relay"));
    let _ = relay.kill();
    // A smarthost that is down: the sender is told to try later.
    let _ = sink.kill();
    let _ = sink.wait();
    let (mut relay, relay_port) = start(format!("127.0.0.1:{port}"));
    assert_eq!(send(relay_port).trim(), "refused 451");
    let _ = relay.kill();
    let _ = relay.wait();
}

/// A peer that offers STARTTLS and then breaks the handshake: with `may`
/// the message goes in plaintext on a new connection; with `encrypt` it
/// waits in the queue.
#[test]
fn a_broken_starttls_falls_back_only_when_tls_is_optional() {
    use std::io::{BufRead, BufReader};
    const PEER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(5)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); f = c.makefile("rb")
    c.sendall(b"220 peer ESMTP\r\n")
    data = False
    for line in f:
        if data:
            if line == b".\r\n":
                data = False; c.sendall(b"250 2.0.0 ok\r\n")
            elif line.startswith(b"Subject:"):
                print(line.decode().strip(), flush=True)
            continue
        cmd = line[:4].upper()
        if cmd == b"EHLO":
            c.sendall(b"250-peer\r\n250 STARTTLS\r\n")
        elif cmd == b"STAR":
            c.sendall(b"220 go ahead\r\n"); c.recv(4096)  # the ClientHello
            c.sendall(b"\x15\x03\x03\x00\x02\x02\x28"); f.close(); c.close(); break
        elif cmd == b"DATA":
            data = True; c.sendall(b"354 go\r\n")
        elif cmd == b"QUIT":
            c.sendall(b"221 bye\r\n"); f.close(); c.close(); break
        else:
            c.sendall(b"250 ok\r\n")
"#;
    for (policy, delivered) in [("may", true), ("encrypt", false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut peer = Command::new("python3")
            .args(["-c", PEER])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
        let _peer = KillOnDrop(peer);
        let port = lines.next().unwrap().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let relay = format!("127.0.0.1:{port}");
        let a = start_at(
            &dir.path().join("a"),
            None,
            None,
            "127.0.0.1",
            &["a.test"],
            &["--relay", &relay, "--tls-outbound", policy],
            Some(&dir.path().join("a.log")),
        );
        submit(
            &a,
            "127.0.0.1",
            "demo@a.test",
            &["x@far.example"],
            "fallback",
            "",
        );
        let got = rx.recv_timeout(Duration::from_secs(if delivered { 20 } else { 3 }));
        if delivered {
            let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap_or_default();
            assert_eq!(got.as_deref(), Ok("Subject: fallback"), "{policy}: {log}");
        } else {
            assert!(got.is_err(), "{policy}: never sent in plaintext");
            assert!(cli(&a.data, &["queue", "list"]).1.contains("(deferred)"));
        }
    }
}

/// A child process that ends with the test, even a failing one.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
