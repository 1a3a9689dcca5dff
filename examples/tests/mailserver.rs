//! The real `mailserver` binary on loopback, driven by real clients:
//! Python's smtplib, curl, and raw sockets. Every load loop is bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

const PRELUDE: &str = r#"
import smtplib, ssl, socket, sys, time, threading
SMTP, SUB, LMTP, PW, POP = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def raw(port, data, wait=0.5):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.recv(1000)
    s.sendall(data)
    time.sleep(wait)
    s.settimeout(2)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out.decode(errors="replace")
"#;

#[test]
fn smtplib_mx_submission_lmtp_and_smtputf8() {
    let s = start();
    let out = python(
        &s,
        &format!(
            "{PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
print('mx', c.sendmail('alice@example.org', ['demo@example.test'], 'Subject: plain\\r\\n\\r\\nplain body\\r\\n'))
c.quit()
c = smtplib.SMTP('127.0.0.1', SUB, timeout=10)
c.starttls(context=ctx); c.login('demo', PW)
print('sub', c.sendmail('demo@example.test', ['demo@localhost'], 'Subject: submitted\\r\\n\\r\\nsubmitted body\\r\\n'))
c.quit()
l = smtplib.LMTP('127.0.0.1', LMTP)
try:
    l.sendmail('x@y.example', ['nobody@example.test', 'nobody2@example.test'], 'Subject: lmtp\\r\\n\\r\\nlmtp body\\r\\n')
except smtplib.SMTPRecipientsRefused as e:
    print('lmtp refused all', sorted(e.recipients))
else:
    print('lmtp refused all none')
l.quit()
l = smtplib.LMTP('127.0.0.1', LMTP)
print('lmtp', l.sendmail('x@y.example', ['demo@example.test', 'nobody@example.test'], 'Subject: lmtp2\\r\\n\\r\\nlmtp body\\r\\n'))
l.quit()
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
print('utf8', c.sendmail('jöran@bücher.example', ['demo@example.test'], 'Subject: utf8\\r\\n\\r\\nüñí\\r\\n'.encode(), mail_options=['SMTPUTF8']))
print('null', c.sendmail('', ['demo@example.test'], 'Subject: null sender\\r\\n\\r\\nbounce\\r\\n'))
c.quit()
"
        ),
    );
    assert!(out.contains("mx {}"), "{out}");
    assert!(out.contains("sub {}"), "{out}");
    assert!(
        out.contains("lmtp {'nobody@example.test': (550, b'5.1.1 No such user here')}"),
        "{out}"
    );
    assert!(out.contains("utf8 {}"), "{out}");
    assert!(
        out.contains("lmtp refused all ['nobody2@example.test', 'nobody@example.test']"),
        "{out}"
    );
    let msgs = maildir(&s, "demo");
    assert!(out.contains("null {}"), "{out}");
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    // Final delivery records the envelope sender (RFC 5321 §4.4), over
    // SMTP and LMTP, `<>` for the null sender.
    let starts = |subject: &str, rp: &str| {
        let m = msgs.iter().find(|m| m.contains(subject)).unwrap();
        assert!(
            m.starts_with(&format!("Return-Path: {rp}\r\nReceived: from ")),
            "{m}"
        );
    };
    starts("Subject: plain", "<alice@example.org>");
    starts("Subject: lmtp2", "<x@y.example>");
    starts("Subject: submitted", "<demo@example.test>");
    starts("Subject: null sender", "<>");
    let plain = msgs.iter().find(|m| m.contains("Subject: plain")).unwrap();
    assert!(plain.contains("\r\nReceived: from "), "{plain}");
    assert!(
        plain.ends_with("Subject: plain\r\n\r\nplain body\r\n"),
        "{plain:?}"
    );
    let sub = msgs
        .iter()
        .find(|m| m.contains("Subject: submitted"))
        .unwrap();
    assert!(sub.contains("with ESMTPSA"), "{sub}");
    // The TLS part as mail readers know it, not Rust debug names.
    let received: String = sub
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n")
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ");
    assert!(
        received.contains("(using TLSv1.3 with cipher TLS_AES_")
            || received.contains("(using TLSv1.3 with cipher TLS_CHACHA20_"),
        "{received}"
    );
    assert!(
        !received.contains("TLSv1_3") && !received.contains("TLS13_"),
        "{received}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("üñí\r\n") && m.contains("UTF8SMTP"))
    );
}

#[test]
fn curl_plain_and_tls() {
    let s = start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.txt");
    std::fs::write(&file, "Subject: curl\r\n\r\nsent with curl\r\n").unwrap();
    let run = |args: &[&str]| {
        let st = Command::new("curl")
            .args(["-s", "-S", "--max-time", "20"])
            .args(args)
            .arg("--upload-file")
            .arg(&file)
            .status()
            .expect("curl runs");
        assert!(st.success(), "curl {args:?}");
    };
    run(&[
        "--url",
        &format!("smtp://127.0.0.1:{}", s.smtp),
        "--mail-from",
        "a@example.org",
        "--mail-rcpt",
        "demo@example.test",
    ]);
    run(&[
        "--url",
        &format!("smtp://127.0.0.1:{}", s.submission),
        "--ssl-reqd",
        "-k",
        "--user",
        &format!("demo:{}", s.password),
        "--mail-from",
        "demo@example.test",
        "--mail-rcpt",
        "demo@example.test",
    ]);
    let msgs = maildir(&s, "demo");
    assert_eq!(
        msgs.iter()
            .filter(|m| m.ends_with("Subject: curl\r\n\r\nsent with curl\r\n"))
            .count(),
        2
    );
}

#[test]
fn raw_socket_attacks_are_refused() {
    let s = start();
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
# Smuggling: a bare-LF end of data followed by a second transaction.
r = raw(SMTP, b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
print("smuggle-start", r.count("250 "), "354" in r)
s2 = socket.create_connection(("127.0.0.1", SMTP), timeout=10); s2.recv(1000)
s2.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
time.sleep(0.3); s2.recv(4096)
s2.sendall(b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\nSubject: forged\r\n\r\n.\r\nQUIT\r\n")
time.sleep(0.5); print("smuggle", s2.recv(4096).decode().replace("\r\n", "|")); s2.close()
# STARTTLS followed by pipelined plaintext.
r = raw(SMTP, b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<demo@example.test>\r\n")
print("starttls", r.replace("\r\n", "|"))
# Open relay attempt.
r = raw(SMTP, b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nQUIT\r\n")
print("relay", r.replace("\r\n", "|"))
# AUTH before STARTTLS on submission.
r = raw(SUB, b"EHLO x\r\nAUTH PLAIN AGRlbW8AeA==\r\nAUTH SCRAM-SHA-256\r\nMAIL FROM:<demo@example.test>\r\nQUIT\r\n")
print("authplain", r.replace("\r\n", "|"))
# A 10 MB line, then a normal command.
s3 = socket.create_connection(("127.0.0.1", SMTP), timeout=20); s3.recv(1000)
chunk = b"A" * 65536
for _ in range(160): s3.sendall(chunk)
s3.sendall(b"\r\nNOOP\r\nQUIT\r\n")
s3.settimeout(10); got = b""
while b"221" not in got:
    d = s3.recv(4096)
    if not d: break
    got += d
print("longline", got.decode().replace("\r\n", "|")); s3.close()
# 200 clients at once, each sending one message (bounded: 60 s).
ok = []
def client(i):
    try:
        c = smtplib.SMTP("127.0.0.1", SMTP, timeout=30)
        c.sendmail("a@b.example", ["demo@example.test"], "Subject: load %d\r\n\r\nx\r\n" % i)
        c.quit(); ok.append(i)
    except Exception as e:
        print("client error", i, e)
ts = [threading.Thread(target=client, args=(i,)) for i in range(200)]
t0 = time.time(); [t.start() for t in ts]; [t.join(60) for t in ts]
print("load", len(ok), round(time.time() - t0, 1))
"#
        ),
    );
    let line = |p: &str| {
        out.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p} missing in {out}"))
            .to_owned()
    };
    assert_eq!(line("smuggle-start"), "smuggle-start 3 True", "{out}");
    let smuggle = line("smuggle ");
    // Bare line ends are normalised by default: one message, whose body
    // holds the would-be second transaction as text.
    assert_eq!(
        smuggle.matches("250 2.0.0 Ok: queued as").count(),
        1,
        "{smuggle}"
    );
    assert!(
        !smuggle.contains("2.1.0"),
        "the forged MAIL was never a command: {smuggle}"
    );
    let starttls = line("starttls");
    assert!(
        starttls.contains("220 2.0.0 Ready to start TLS"),
        "{starttls}"
    );
    assert!(
        !starttls.contains("Sender OK"),
        "plaintext after STARTTLS ran: {starttls}"
    );
    assert!(line("relay").contains("550 5.7.1 Relaying denied"));
    let auth = line("authplain");
    assert_eq!(auth.matches("538 5.7.11").count(), 2, "{auth}");
    assert!(auth.contains("530 5.7.0 Authentication required"), "{auth}");
    assert!(!auth.contains("235") && !auth.contains("AUTH "), "{auth}");
    let long = line("longline");
    assert!(
        long.contains("500 5.5.2 Line too long|250 2.0.0 OK|221"),
        "{long}"
    );
    let load = line("load");
    assert!(load.starts_with("load 200 "), "{load}\n{out}");
    let msgs = maildir(&s, "demo");
    assert!(
        !msgs.iter().any(|m| m
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .contains("Subject: forged")),
        "smuggled message stored"
    );
    let one = msgs
        .iter()
        .find(|m| m.contains("Subject: one"))
        .expect("stored");
    assert!(
        !one.replace("\r\n", "").contains('\n') && one.contains("body\r\n.\r\nMAIL FROM"),
        "bare LF stored, or the dot lost: {one:?}"
    );
    assert_eq!(
        msgs.iter().filter(|m| m.contains("Subject: load ")).count(),
        200
    );
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let mut s = start_in(&data, None, None);
    let password = s.password.clone();
    // 50 senders; the server is killed while they are in flight. Each
    // prints the id of every message that got its 250.
    let script = format!(
        r#"{PRELUDE}
acked = []
lock = threading.Lock()
def sender(i):
    for j in range(200):
        try:
            c = smtplib.SMTP("127.0.0.1", SMTP, timeout=10)
            body = "Subject: m-%d-%d\r\n\r\n" % (i, j) + ("line %d\r\n" % j) * 200 + "END-%d-%d\r\n" % (i, j)
            c.sendmail("a@b.example", ["demo@example.test"], body)
            with lock: print("ACK m-%d-%d" % (i, j), flush=True)
            c.quit()
        except Exception:
            return
ts = [threading.Thread(target=sender, args=(i,)) for i in range(50)]
[t.start() for t in ts]; [t.join(60) for t in ts]
"#
    );
    let ports = [
        s.smtp.to_string(),
        s.submission.to_string(),
        s.lmtp.to_string(),
        password.clone(),
        s.pop3.to_string(),
    ];
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .args(&ports)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Every acknowledgement as the senders see it, in a thread.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = py.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("ACK ") {
                let _ = tx.send(id.to_owned());
            }
        }
    });
    // Kill -9 once 100 messages are acknowledged (bounded: 60 s), so the
    // kill lands while the senders are in full flight.
    let mut acked: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 100 && Instant::now() < deadline {
        if let Ok(id) = rx.recv_timeout(Duration::from_millis(100)) {
            acked.push(id);
        }
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    py.wait().unwrap();
    reader.join().unwrap();
    acked.extend(rx.try_iter());
    assert!(
        !acked.is_empty(),
        "some messages were acknowledged before the kill"
    );
    eprintln!("{} messages acknowledged before kill -9", acked.len());
    assert!(
        acked.len() < 50 * 200,
        "the kill came after all messages were sent"
    );
    drop(s);
    // Restart on the same data: everything acknowledged is there, whole.
    let s = start_in(&data, None, Some(password));
    let msgs = maildir(&s, "demo");
    for id in &acked {
        let m = msgs
            .iter()
            .find(|m| m.contains(&format!("Subject: {id}\r\n")))
            .unwrap_or_else(|| panic!("acknowledged {id} lost"));
        let end = format!("END-{}\r\n", &id[2..]);
        assert!(m.ends_with(&end), "{id} not whole");
    }
    // Nothing half-written is visible: every message ends with its marker.
    for m in &msgs {
        assert!(
            m.trim_end()
                .rsplit("\r\n")
                .next()
                .unwrap_or("")
                .starts_with("END-"),
            "partial message visible"
        );
    }
    let tmp = data.join("store/users/demo/Maildir/tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
    drop(dir);
}

#[test]
fn poplib_and_curl_read_mail_delivered_by_smtp() {
    let s = start();
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
import poplib, hashlib
c = smtplib.SMTP("127.0.0.1", SMTP, timeout=10)
for i in range(3):
    c.sendmail("a@b.example", ["demo@example.test"], "Subject: pop %d\r\n\r\nbody %d\r\n.dotted\r\nend\r\n" % (i, i))
c.quit()
# USER/PASS over STLS.
p = poplib.POP3("127.0.0.1", POP, timeout=10)
print("capa-before", sorted(p.capa().keys()))
p.stls(context=ctx)
p.user("demo"); p.pass_(PW)
print("stat", p.stat())
resp, lines, octets = p.retr(1)
body = b"\r\n".join(lines) + b"\r\n"
# LIST's size is the size RETR sends: CRLF line ends, before stuffing.
print("retr-size-ok", int(p.list(1).split()[2]) == len(body), octets >= len(body))
print("retr-dotted", b".dotted" in lines)
print("top0", p.top(2, 0)[1][-1] == b"")
print("uidl", len(p.uidl()[1]))
uidl_first = p.uidl(1).split()[2]
uidl_second = p.uidl(2).split()[2]
p.dele(1)
print("stat-after-dele", p.stat())
p.quit()
# APOP, then DELE and a dropped connection: nothing deleted.
p = poplib.POP3("127.0.0.1", POP, timeout=10)
p.apop("demo", PW)
print("apop-stat", p.stat())
# The first message was deleted: the one now first keeps the UIDL it had
# as the second, in every session.
print("uidl-stable", p.uidl(1).split()[2] == uidl_second, p.uidl(1).split()[2] != uidl_first)
p.dele(1)
p.sock.close()
time.sleep(0.3)
p = poplib.POP3("127.0.0.1", POP, timeout=10)
p.apop("demo", PW)
print("after-drop", p.stat()[0])
p.quit()
"#
        ),
    );
    let line = |p: &str| {
        out.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p} missing in {out}"))
            .to_owned()
    };
    assert!(line("capa-before").contains("'STLS'"), "{out}");
    assert!(
        !line("capa-before").contains("'USER'"),
        "USER offered before TLS: {out}"
    );
    assert!(line("stat ").starts_with("stat (3, "), "{out}");
    assert_eq!(line("retr-size-ok"), "retr-size-ok True True");
    assert_eq!(line("retr-dotted"), "retr-dotted True");
    assert_eq!(line("top0"), "top0 True");
    assert_eq!(line("uidl "), "uidl 3");
    assert!(
        line("stat-after-dele").starts_with("stat-after-dele (2, "),
        "{out}"
    );
    assert!(line("apop-stat").starts_with("apop-stat (2, "), "{out}");
    assert_eq!(line("uidl-stable"), "uidl-stable True True");
    assert_eq!(line("after-drop"), "after-drop 2");
    // curl reads the first message over POP3 with STLS.
    let o = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "--ssl-reqd", "-k"])
        .arg(format!("pop3://127.0.0.1:{}/1", s.pop3))
        .args(["--user", &format!("demo:{}", s.password)])
        .output()
        .expect("curl runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Subject: pop 1") && text.contains("Received: from"),
        "{text}"
    );
}

/// A peer that stalls the TLS handshake, and one that stops reading, are
/// cut off by the socket loop's timeouts instead of holding a slot (with
/// the timeouts at 1000 s both checks fail: the connections stay open).
#[test]
fn stalled_handshakes_and_writes_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_with(
        &data,
        Some(dir),
        None,
        &["--handshake-timeout", "1", "--write-timeout", "1"],
    );
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
# STARTTLS, then no ClientHello: the server gives up after 1 s.
c = socket.create_connection(("127.0.0.1", SUB), timeout=10); c.recv(1000)
c.sendall(b"EHLO x\r\n"); time.sleep(0.2); c.recv(4096)
c.sendall(b"STARTTLS\r\n"); time.sleep(0.2); print("starttls", c.recv(4096).decode().strip())
t0 = time.time()
try:
    d = c.recv(4096)
except (ConnectionResetError, socket.timeout) as e:
    d = repr(e).encode()
print("handshake-cut", d == b"", round(time.time() - t0) <= 5)
c.close()
# Pipelined NOOPs, never read: replies pile up until the write blocks.
w = socket.create_connection(("127.0.0.1", SMTP), timeout=10); w.recv(1000)
w.settimeout(3)
sent = 0
try:
    for _ in range(400):
        w.sendall(b"NOOP\r\n" * 10000)
        sent += 60000
except (socket.timeout, BrokenPipeError, ConnectionResetError):
    pass
time.sleep(3)
# Now read: the server closed the connection while we were not reading.
w.settimeout(10); got = 0; end = "open"
t0 = time.time()
try:
    while time.time() - t0 < 20:
        d = w.recv(1 << 20)
        if not d:
            end = "eof"; break
        got += len(d)
except socket.timeout:
    end = "open"
except ConnectionResetError:
    end = "reset"
print("write-cut", end, got < sent // 6 * 14)
"#
        ),
    );
    assert!(
        out.contains("starttls 220 2.0.0 Ready to start TLS"),
        "{out}"
    );
    assert!(out.contains("handshake-cut True True"), "{out}");
    let cut = out
        .lines()
        .find(|l| l.starts_with("write-cut"))
        .unwrap_or("");
    assert!(
        cut == "write-cut eof True" || cut == "write-cut reset True",
        "{out}"
    );
}

/// Hand-typed sessions (bare LF line ends) work by default; bodies are
/// normalised, or refused with `--bare-newline reject`; and under either
/// setting no variant of a bare-line-end "end of data" ends the message or
/// starts a second transaction.
#[test]
fn bare_newlines_hand_typed_sessions_and_no_smuggling() {
    for mode in ["normalize", "reject"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mail-data");
        let s = start_with(&data, Some(dir), None, &["--bare-newline", mode]);
        let out = python(
            &s,
            &format!(
                r#"{PRELUDE}
print("typed", raw(SMTP, b"EHLO x\nNOOP\nQUIT\n").replace("\r\n", "|"))
print("typed-pop", raw(POP, b"CAPA\nQUIT\n").replace("\r\n", "|"))
c = socket.create_connection(("127.0.0.1", SMTP), timeout=10); c.recv(1000)
c.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"); time.sleep(0.3); c.recv(4096)
c.sendall(b"Subject: lf\n\nline one\nline two\r\n.\r\nQUIT\r\n"); time.sleep(0.3)
print("lf-reply", c.recv(4096).decode().replace("\r\n", "|")); c.close()
variants = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r.\n", b"\r\n.\n", b"\n.\r", b"\r\n.\r", b"\r.\r\n"]
for i, v in enumerate(variants):
    c = socket.create_connection(("127.0.0.1", SMTP), timeout=10); c.recv(1000)
    c.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"); time.sleep(0.2); c.recv(4096)
    c.sendall(b"Subject: sm%d\r\n\r\nbody\r\n" % i + v + b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\nSubject: forged\r\n\r\n.\r\nQUIT\r\n")
    time.sleep(0.3)
    c.settimeout(2); r = b""
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            r += d
    except socket.timeout:
        pass
    print("variant", i, r.decode().replace("\r\n", "|"))
    c.close()
"#
            ),
        );
        let line = |p: &str| {
            out.lines()
                .find(|l| l.starts_with(p))
                .unwrap_or_else(|| panic!("{p} missing in {out}"))
                .to_owned()
        };
        let typed = line("typed ");
        let typed_pop = line("typed-pop");
        let lf = line("lf-reply");
        if mode == "normalize" {
            assert!(typed.contains("|250 2.0.0 OK|221 2.0.0"), "{typed}");
            assert!(typed_pop.contains("+OK bye"), "{typed_pop}");
            assert!(lf.starts_with("lf-reply 250 2.0.0"), "{lf}");
        } else {
            assert_eq!(typed.matches("500 5.5.2 Bare LF").count(), 3, "{typed}");
            assert!(!typed_pop.contains("+OK bye"), "{typed_pop}");
            assert!(lf.starts_with("lf-reply 550 5.5.2"), "{lf}");
        }
        for l in out.lines().filter(|l| l.starts_with("variant")) {
            // One transaction: the evil MAIL is never a command.
            assert!(
                !l.contains("Sender OK|250 2.1.5 Recipient OK|354"),
                "{mode} {l}"
            );
            assert_eq!(l.matches("354 ").count(), 0, "{mode} {l}");
            let verdict = if mode == "normalize" {
                "250 2.0.0"
            } else {
                "550 5.5.2"
            };
            assert_eq!(l.matches(verdict).count(), 1, "{mode} {l}");
        }
        let msgs = maildir(&s, "demo");
        for m in &msgs {
            let headers = m.split("\r\n\r\n").next().unwrap_or("");
            assert!(!headers.contains("Subject: forged"), "smuggled: {m}");
            assert!(
                !m.replace("\r\n", "").contains('\n'),
                "bare LF stored: {m:?}"
            );
            assert!(
                !m.replace("\r\n", "").contains('\r'),
                "bare CR stored: {m:?}"
            );
        }
        let expected = if mode == "normalize" { 9 } else { 0 };
        assert_eq!(msgs.len(), expected, "{mode}: {msgs:?}");
        if mode == "normalize" {
            let lf = msgs.iter().find(|m| m.contains("Subject: lf")).unwrap();
            assert!(
                lf.ends_with("Subject: lf\r\n\r\nline one\r\nline two\r\n"),
                "{lf:?}"
            );
        }
    }
}

/// RFC 5321 §4.5.1: `<Postmaster>` and `postmaster@DOMAIN` are accepted;
/// `abuse` too; aliases managed from the command line while the server
/// runs take effect at once.
#[test]
fn postmaster_abuse_and_aliases_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_in(&data, None, None);
    let rcpt = |who: &str| {
        python(
            &s,
            &format!(
                "{PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.ehlo('x'); c.mail('a@b.example')
print('rcpt', c.rcpt('{who}')[0])
c.quit()
"
            ),
        )
        .trim()
        .to_owned()
    };
    assert_eq!(rcpt("<Postmaster>"), "rcpt 250");
    assert_eq!(rcpt("postmaster@example.test"), "rcpt 250");
    assert_eq!(rcpt("PostMaster@localhost"), "rcpt 250");
    assert_eq!(rcpt("abuse@example.test"), "rcpt 250");
    assert_eq!(rcpt("sales@example.test"), "rcpt 550");
    let (ok, out) = cli(&data, &["alias", "add", "sales", "demo"]);
    assert!(ok, "{out}");
    assert_eq!(
        rcpt("sales@example.test"),
        "rcpt 250",
        "takes effect at once"
    );
    let (ok, out) = cli(&data, &["alias", "list"]);
    assert!(
        ok && out.contains("sales\tdemo") && out.contains("postmaster\tdemo"),
        "{out}"
    );
    let (ok, out) = cli(&data, &["alias", "add", "x", "nobody"]);
    assert!(!ok && out.contains("no user nobody"), "{out}");
    let (ok, out) = cli(&data, &["alias", "del", "sales"]);
    assert!(ok, "{out}");
    assert_eq!(rcpt("sales@example.test"), "rcpt 550");
    // Mail to postmaster lands in the administrator's mailbox.
    python(
        &s,
        &format!(
            "{PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.sendmail('a@b.example', ['<Postmaster>'], 'Subject: to postmaster\\r\\n\\r\\nhi\\r\\n')
c.quit()
"
        ),
    );
    assert!(
        maildir(&s, "demo")
            .iter()
            .any(|m| m.contains("Subject: to postmaster"))
    );
    drop(s);
    drop(dir);
}

/// `--allow-plaintext-auth` lets PLAIN and USER/PASS work before TLS; APOP
/// is offered only while every account can use it, so curl (which prefers
/// APOP when the greeting has a timestamp) logs in either way.
#[test]
fn plaintext_auth_switch_and_apop_only_where_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_with(&data, None, None, &["--allow-plaintext-auth"]);
    let password = s.password.clone();
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
import poplib
c = smtplib.SMTP("127.0.0.1", SUB, timeout=10)
c.login("demo", PW)
print("plain-sub", c.sendmail("demo@example.test", ["demo@localhost"], "Subject: clear\r\n\r\nx\r\n"))
c.quit()
p = poplib.POP3("127.0.0.1", POP, timeout=10)
print("greeting", p.getwelcome().decode())
p.user("demo"); p.pass_(PW); print("plain-pop", p.stat()[0]); p.quit()
"#
        ),
    );
    assert!(out.contains("plain-sub {}"), "{out}");
    assert!(out.contains("plain-pop 1"), "{out}");
    // Only demo (with an APOP secret): the greeting offers APOP.
    let greeting = out.lines().find(|l| l.starts_with("greeting")).unwrap();
    assert!(
        greeting.contains('<') && greeting.ends_with('>'),
        "{greeting}"
    );
    drop(s);
    // A user without an APOP secret: no timestamp, and curl logs in.
    let add = Command::new(env!("CARGO_BIN_EXE_mailserver"))
        .arg("--data")
        .arg(&data)
        .args(["user", "add", "bob"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin
            .as_ref()
            .unwrap()
            .write_all(b"bob-secret\n")
            .unwrap();
    }
    assert!(add.wait_with_output().unwrap().status.success());
    let s = start_with(&data, Some(dir), Some(password), &[]);
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
import poplib
p = poplib.POP3("127.0.0.1", POP, timeout=10)
print("greeting", p.getwelcome().decode()); p.quit()
"#
        ),
    );
    let greeting = out.lines().find(|l| l.starts_with("greeting")).unwrap();
    assert_eq!(greeting, "greeting +OK POP3 server ready", "{out}");
    let o = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "--ssl-reqd", "-k"])
        .arg(format!("pop3://127.0.0.1:{}/", s.pop3))
        .args(["--user", "bob:bob-secret"])
        .output()
        .expect("curl runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Submission keeps DSN parameters (RET, ENVID, NOTIFY, ORCPT) on queued
/// mail, and two messages of one connection in one second get different
/// queue ids.
#[test]
fn submission_keeps_dsn_parameters_and_unique_queue_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_in(&data, None, None);
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
c = smtplib.SMTP("127.0.0.1", SUB, timeout=10)
c.starttls(context=ctx); c.login("demo", PW)
ids = []
for i in range(3):
    c.mail("demo@example.test", ["RET=HDRS", "ENVID=env-%d" % i])
    c.rcpt("far@elsewhere.example", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;orig@example.org"])
    c.rcpt("near@other.example")
    code, msg = c.data("Subject: dsn %d\r\n\r\nx\r\n" % i)
    ids.append(msg.decode().split()[-1])
print("ids", len(set(ids)), ids)
c.quit()
"#
        ),
    );
    assert!(out.contains("ids 3 "), "{out}");
    drop(s);
    let store = mailstore::Store::open(data.join("store")).unwrap();
    let queued = store.queue_list();
    assert_eq!(queued.len(), 3, "{queued:?}");
    for m in &queued {
        assert_eq!(m.ret, Some(mailstore::queue::Return::Headers), "{m:?}");
        assert!(
            m.envid.as_deref().is_some_and(|e| e.starts_with("env-")),
            "{m:?}"
        );
        let far = m
            .recipients
            .iter()
            .find(|r| r.address == "far@elsewhere.example")
            .unwrap();
        assert!(
            far.notify.success && far.notify.delay && !far.notify.failure,
            "{far:?}"
        );
        assert_eq!(far.orcpt.as_deref(), Some("orig@example.org"));
        let near = m
            .recipients
            .iter()
            .find(|r| r.address == "near@other.example")
            .unwrap();
        assert_eq!(near.notify, mailstore::queue::Notify::default());
        assert_eq!(near.orcpt, None);
    }
    drop(dir);
}

/// Command-line mistakes name what could not be used and stop before any
/// state is created.
#[test]
fn cli_errors_are_clear_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let (ok, out) = cli(&data, &["serve", "--cert", "/nonexistent/cert.pem"]);
    assert!(!ok && out.contains("--key"), "{out}");
    let (ok, out) = cli(&data, &["serve", "--key", "/nonexistent/key.pem"]);
    assert!(!ok && out.contains("--cert"), "{out}");
    let (ok, out) = cli(
        &data,
        &[
            "serve",
            "--cert",
            "/nonexistent/cert.pem",
            "--key",
            "/nonexistent/key.pem",
        ],
    );
    assert!(!ok && out.contains("/nonexistent/cert.pem"), "{out}");
    assert!(!out.contains("created user"), "{out}");
    let (ok, out) = cli(&data, &["user", "list"]);
    assert!(
        !ok && out.contains("never-created") && out.contains("no mail data"),
        "{out}"
    );
    let (ok, out) = cli(&data, &["user", "del", "x"]);
    assert!(!ok, "{out}");
    let (ok, out) = cli(&data, &["alias", "list"]);
    assert!(!ok && out.contains("no mail data"), "{out}");
    let (ok, out) = cli(&data, &["serve", "--smtp", "no-such-host.invalid:25"]);
    assert!(!ok && out.contains("no-such-host.invalid:25"), "{out}");
    assert!(!data.exists(), "state was created by a failing command");
    // A data folder that cannot be made: the error names it.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("data");
    let (ok, out) = cli(&under, &["serve"]);
    assert!(!ok && out.contains(&under.display().to_string()), "{out}");
    let (ok, out) = cli(&data, &["--version"]);
    assert!(ok && out.starts_with("mailserver "), "{out}");
    // Host names work where addresses are asked for.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailserver"))
        .arg("--data")
        .arg(&data)
        .args([
            "serve",
            "--smtp",
            "localhost:0",
            "--submission",
            "127.0.0.1:0",
        ])
        .args([
            "--lmtp",
            "127.0.0.1:0",
            "--pop3",
            "127.0.0.1:0",
            "--imap",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let smtp = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("listening smtp "));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        smtp.as_deref()
            .is_some_and(|l| l.starts_with("listening smtp 127.0.0.1:")),
        "{smtp:?}"
    );
}

/// A log line per connection (peer, TLS), authentication (user, never the
/// secret), accepted message (id, size, recipients) and refusal (code,
/// reason); no colours in a file; `--log-format json` for collectors.
#[test]
fn logs_say_what_happened_without_secrets() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mail-data");
        let log = dir.path().join("server.log");
        let s = start_full(&data, None, None, &["--log-format", format], Some(&log));
        let password = s.password.clone();
        python(
            &s,
            &format!(
                r#"{PRELUDE}
import poplib
c = smtplib.SMTP("127.0.0.1", SMTP, timeout=10)
c.sendmail("a@b.example", ["demo@example.test"], "Subject: logged\r\n\r\nx\r\n")
try:
    c.sendmail("a@b.example", ["nobody@example.test"], "Subject: refused\r\n\r\nx\r\n")
except smtplib.SMTPRecipientsRefused:
    pass
c.quit()
c = smtplib.SMTP("127.0.0.1", SUB, timeout=10)
c.starttls(context=ctx); c.login("demo", PW); c.quit()
p = poplib.POP3("127.0.0.1", POP, timeout=10); p.stls(context=ctx)
p.user("demo"); p.pass_(PW); p.quit()
"#
            ),
        );
        std::thread::sleep(Duration::from_millis(300));
        drop(s);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains('\u{1b}'), "ANSI escapes in a log file");
        assert!(!text.contains(&password), "a password in the log");
        let has = |words: &[&str]| text.lines().any(|l| words.iter().all(|w| l.contains(w)));
        assert!(has(&["connection opened", "127.0.0.1", "smtp"]), "{text}");
        assert!(has(&["connection closed", "pop3"]), "{text}");
        assert!(has(&["tls established", "TLSv1.3 with cipher"]), "{text}");
        assert!(has(&["authenticated", "demo", "submission"]), "{text}");
        assert!(has(&["authenticated", "demo", "pop3"]), "{text}");
        assert!(has(&["message accepted", "size", "recipients"]), "{text}");
        assert!(has(&["recipient refused", "550", "no such user"]), "{text}");
        if format == "json" {
            let check = Command::new("python3")
                .args([
                    "-c",
                    "import json,sys\nfor l in open(sys.argv[1]):\n    json.loads(l)\nprint('ok')",
                ])
                .arg(&log)
                .output()
                .unwrap();
            assert!(check.status.success(), "not JSON lines: {text}");
        }
        drop(dir);
    }
}

/// Users are managed while the server runs, taking effect at once; adding
/// an existing user (in any case) is refused; `user passwd` changes a
/// password.
#[test]
fn users_are_managed_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_in(&data, None, None);
    let (ok, out) = cli_input(&data, &["user", "add", "bob"], "first-pw\n");
    assert!(ok && out.contains("added bob"), "{out}");
    let (ok, out) = cli_input(&data, &["user", "add", "BOB"], "other\n");
    assert!(
        !ok && out.contains("exists") && out.contains("user passwd"),
        "{out}"
    );
    let (ok, out) = cli(&data, &["user", "list"]);
    assert!(
        ok && out.lines().any(|l| l == "bob") && out.lines().any(|l| l == "demo"),
        "{out}"
    );
    let pop = |pw: &str| {
        python(
            &s,
            &format!(
                r#"{PRELUDE}
import poplib
c = smtplib.SMTP("127.0.0.1", SMTP, timeout=10)
try:
    c.sendmail("a@b.example", ["bob@example.test"], "Subject: to bob\r\n\r\nx\r\n"); print("rcpt ok")
except smtplib.SMTPRecipientsRefused:
    print("rcpt refused")
c.quit()
p = poplib.POP3("127.0.0.1", POP, timeout=10); p.stls(context=ctx)
try:
    p.user("bob"); p.pass_("{pw}"); print("login", p.stat()[0]); p.quit()
except poplib.error_proto as e:
    print("login refused")
"#
            ),
        )
    };
    let out = pop("first-pw");
    assert!(out.contains("rcpt ok") && out.contains("login 1"), "{out}");
    let (ok, out) = cli_input(&data, &["user", "passwd", "bob"], "second-pw\n");
    assert!(ok, "{out}");
    let out = pop("first-pw");
    assert!(out.contains("login refused"), "{out}");
    // (Each call delivers one message to bob first.)
    let out = pop("second-pw");
    assert!(out.contains("login 3"), "{out}");
    let (ok, out) = cli_input(&data, &["user", "passwd", "nobody"], "x\n");
    assert!(!ok && out.contains("no user nobody"), "{out}");
    let (ok, out) = cli(&data, &["user", "del", "bob"]);
    assert!(ok && out.contains("deleted bob"), "{out}");
    let out = pop("second-pw");
    assert!(
        out.contains("rcpt refused") && out.contains("login refused"),
        "{out}"
    );
    drop(s);
    // Without a server, the same commands work on the store directly.
    let (ok, out) = cli_input(&data, &["user", "add", "carol"], "pw\n");
    assert!(ok && out.contains("added carol"), "{out}");
    let (ok, out) = cli(&data, &["user", "list"]);
    assert!(ok && out.contains("carol"), "{out}");
    drop(dir);
}

/// `--metrics ADDR` serves Prometheus metrics: connections per protocol,
/// messages by outcome, latency histograms, the queue.
#[test]
fn prometheus_metrics_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_with(&data, Some(dir), None, &["--metrics", "127.0.0.1:0"]);
    python(
        &s,
        &format!(
            r#"{PRELUDE}
c = smtplib.SMTP("127.0.0.1", SMTP, timeout=10)
c.sendmail("a@b.example", ["demo@example.test"], "Subject: m\r\n\r\nx\r\n")
c.quit()
c = smtplib.SMTP("127.0.0.1", SUB, timeout=10)
c.starttls(context=ctx); c.login("demo", PW)
c.sendmail("demo@example.test", ["far@elsewhere.example"], "Subject: q\r\n\r\nx\r\n")
c.quit()
"#
        ),
    );
    std::thread::sleep(Duration::from_millis(200));
    let o = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{}/metrics", s.metrics))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "mailkit_connections_total{proto=\"smtp\"} 1",
        "mailkit_connections_total{proto=\"submission\"} 1",
        "mailkit_connections_open{proto=\"smtp\"} 0",
        "mailkit_messages_total{outcome=\"accepted\",reason=\"\"} 2",
        "mailkit_delivery_seconds_count 2",
        "mailkit_store_commit_seconds_count",
        "mailkit_queue_messages 1",
        "mailkit_queue_oldest_seconds",
        "# EOF",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg(format!("http://127.0.0.1:{}/other", s.metrics))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
}

/// Real clients beyond Python and curl: swaks (SMTP and submission with
/// STARTTLS and AUTH), Postfix's smtp-source, and fetchmail over POP3
/// with STLS. `.ci/run` installs them; a missing one fails this test.
#[test]
fn swaks_smtp_source_and_fetchmail() {
    for tool in ["swaks", "smtp-source", "fetchmail"] {
        let found = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not installed (.ci/run installs it: apt-get install swaks postfix fetchmail)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_in(&data, None, None);
    let run = |cmd: &mut Command| {
        let o = cmd.output().expect("runs");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, out) = run(Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", s.smtp)])
        .args(["--from", "a@b.example", "--to", "demo@example.test"])
        .args(["--header", "Subject: from swaks", "--body", "plain swaks"])
        .args(["--timeout", "20"]));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", s.submission)])
        .args(["--tls", "--auth", "PLAIN", "--auth-user", "demo"])
        .args(["--auth-password", &s.password])
        .args(["--from", "demo@example.test", "--to", "demo@localhost"])
        .args(["--header", "Subject: swaks submitted", "--timeout", "20"]));
    assert!(ok, "{out}");
    let smtp_source = if Path::new("/usr/sbin/smtp-source").exists() {
        "/usr/sbin/smtp-source"
    } else {
        "smtp-source"
    };
    let (ok, out) = run(Command::new(smtp_source)
        .args(["-s", "5", "-m", "50", "-l", "1024"])
        .args(["-f", "a@b.example", "-t", "demo@example.test"])
        .arg(format!("127.0.0.1:{}", s.smtp)));
    assert!(ok, "{out}");
    // fetchmail over STLS, delivering each message to a file.
    let mbox = dir.path().join("fetched");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 service {} protocol pop3 timeout 20\n  user \"demo\" password \"{}\" keep\n  sslproto \"tls1.2+\" no sslcertck\n  mda \"cat >> {}\"\n",
            s.pop3,
            s.password,
            mbox.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (ok, out) = run(Command::new("fetchmail")
        .arg("--fetchmailrc")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "-v"])
        .env("HOME", dir.path()));
    assert!(ok, "{out}");
    assert!(out.contains("STLS") || out.contains("TLS"), "no TLS: {out}");
    let fetched = std::fs::read_to_string(&mbox).unwrap_or_default();
    assert!(fetched.contains("Subject: from swaks"), "{out}\n{fetched}");
    assert!(fetched.contains("Subject: swaks submitted"), "{out}");
    let msgs = maildir(&s, "demo");
    assert_eq!(msgs.len(), 52, "two from swaks, fifty from smtp-source");
    drop(s);
    drop(dir);
}

/// When the queue cannot take the remote part of a message, the client gets
/// 451 and no local recipient has a copy yet, so its retry duplicates
/// nothing.
#[test]
fn a_failed_queue_write_delivers_nothing_locally() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    let s = start_in(&data, None, None);
    // Break the queue: its temporary folder becomes a file.
    let qtmp = data.join("store/queue/tmp");
    let _ = std::fs::remove_dir_all(&qtmp);
    std::fs::write(&qtmp, b"not a folder").unwrap();
    let out = python(
        &s,
        &format!(
            r#"{PRELUDE}
c = smtplib.SMTP("127.0.0.1", SUB, timeout=10)
c.starttls(context=ctx); c.login("demo", PW)
try:
    c.sendmail("demo@example.test", ["demo@localhost", "far@elsewhere.example"], "Subject: both\r\n\r\nx\r\n")
    print("accepted")
except smtplib.SMTPDataError as e:
    print("refused", e.smtp_code)
c.quit()
"#
        ),
    );
    assert!(out.contains("refused 451"), "{out}");
    assert!(
        !maildir(&s, "demo")
            .iter()
            .any(|m| m.contains("Subject: both")),
        "a local copy was stored for a message the client will send again"
    );
}

const IMAP_PRELUDE: &str = r#"
import imaplib, smtplib, ssl, socket, sys, time
SMTP, SUB, LMTP, PW, POP, IMAP = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def login():
    m = imaplib.IMAP4('127.0.0.1', IMAP, timeout=10)
    m.starttls(ssl_context=ctx)
    m.login('demo', PW)
    return m
"#;

/// Runs a Python script logged in over IMAP (STARTTLS) as `m`.
fn imap_script(s: &Server, body: &str) -> String {
    python(s, &format!("{IMAP_PRELUDE}\nm = login()\n{body}"))
}

/// Python's imaplib over STARTTLS: everything a desktop client does in a
/// session, and IDLE woken by mail delivered over SMTP.
#[test]
fn imaplib_reads_sorts_and_idles_over_starttls() {
    let s = start();
    let out = python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.sendmail('alice@example.org', ['demo@example.test'], 'From: Alice <alice@example.org>\\r\\nSubject: first\\r\\n\\r\\nhello imap\\r\\n')
c.quit()
m = imaplib.IMAP4('127.0.0.1', IMAP, timeout=10)
print('caps-before', ' '.join(m.capabilities))
try:
    m.login('demo', PW); print('plaintext-login', 'accepted')
except imaplib.IMAP4.error as e:
    print('plaintext-login', e)
m.starttls(ssl_context=ctx)
typ, data = m.login('demo', PW); print('login', typ, data[0].decode())
typ, data = m.list('\"\"', '*'); print('list', b'|'.join(data).decode())
typ, data = m.select('INBOX'); print('select', typ, data[0].decode())
typ, data = m.fetch('1', '(UID FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[])'); print('fetch', data[0][0].decode(), data[0][1].decode().count('hello imap'))
typ, data = m.store('1', '+FLAGS', '(\\\\Flagged)'); print('store', data[0].decode())
typ, data = m.search(None, 'FLAGGED', 'SUBJECT', 'first'); print('search', data[0].decode())
typ, data = m.append('Drafts', '(\\\\Draft)', None, b'Subject: draft\\r\\n\\r\\nnot yet\\r\\n'); print('append', typ, data[0].decode())
typ, data = m.copy('1', 'Archive'); print('copy', typ, data[0].decode())
typ, data = m.uid('MOVE', '1', 'Trash'); print('move', typ)
typ, data = m.select('Trash'); print('trash', data[0].decode())
m.store('1', '+FLAGS', '(\\\\Deleted)'); typ, data = m.expunge(); print('expunge', data[0].decode())
typ, data = m.status('Archive', '(MESSAGES UNSEEN SIZE)'); print('status', data[0].decode())
m.select('INBOX')
# IDLE through the socket: mail delivered over SMTP shows as EXISTS.
tag = m._new_tag().decode()
m.send(('%s IDLE\\r\\n' % tag).encode())
print('idle', m.readline().decode().strip())
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
t0 = time.time()
c.sendmail('bob@example.org', ['demo@example.test'], 'Subject: while idle\\r\\n\\r\\nwake up\\r\\n')
c.quit()
m.sock.settimeout(5)
line = m.readline().decode().strip()
print('pushed', line, 'within', 'a second' if time.time() - t0 < 1.0 else 'too long')
print('recent', m.readline().decode().strip())
m.send(b'DONE\\r\\n')
print('done', m.readline().decode().strip())
print('logout', m.logout()[0])
"
        ),
    );
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} in:\n{out}"))
            .to_owned()
    };
    assert!(
        line("caps-before").contains("STARTTLS") && line("caps-before").contains("LOGINDISABLED"),
        "{out}"
    );
    assert!(line("plaintext-login").contains("PRIVACYREQUIRED"), "{out}");
    assert!(
        line("login").contains("OK [CAPABILITY IMAP4rev1") && line("login").contains("MOVE"),
        "{out}"
    );
    for b in [
        "INBOX",
        "\\Sent) \"/\" Sent",
        "\\Trash) \"/\" Trash",
        "\\Drafts",
        "\\Junk",
        "\\Archive",
    ] {
        assert!(line("list").contains(b), "{b}: {out}");
    }
    assert_eq!(line("select"), "select OK 1");
    assert!(
        line("fetch").contains("UID 1") && line("fetch").ends_with(" 1"),
        "{out}"
    );
    assert!(line("store").contains("\\Flagged"), "{out}");
    assert_eq!(line("search"), "search 1");
    assert!(line("append").contains("[APPENDUID "), "{out}");
    assert!(line("copy").contains("[COPYUID "), "{out}");
    assert_eq!(line("move"), "move OK");
    assert_eq!(line("trash"), "trash 1");
    assert_eq!(line("expunge"), "expunge 1");
    assert!(
        line("status").contains("MESSAGES 1 UNSEEN 1 SIZE "),
        "{out}"
    );
    assert_eq!(line("idle"), "idle + idling");
    assert_eq!(line("pushed"), "pushed * 1 EXISTS within a second");
    assert_eq!(line("recent"), "recent * 1 RECENT");
    assert!(line("done").contains("OK IDLE terminated"), "{out}");
    assert_eq!(line("logout"), "logout BYE");
}

/// curl's IMAP client (over STARTTLS) lists, fetches and appends; hostile
/// mailbox names and inputs get clear refusals.
#[test]
fn curl_imap_and_bad_input_over_the_wire() {
    let s = start();
    python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.sendmail('alice@example.org', ['demo@example.test'], 'Subject: for curl\\r\\n\\r\\ncurl reads this\\r\\n')
c.quit()
"
        ),
    );
    let url = format!("imap://127.0.0.1:{}/INBOX;UID=1", s.imap);
    let out = Command::new("curl")
        .args(["-s", "--ssl-reqd", "-k", "--max-time", "20", "-u"])
        .arg(format!("demo:{}", s.password))
        .arg(&url)
        .output()
        .expect("curl runs");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && body.contains("curl reads this"),
        "{body} {:?}",
        out.status
    );
    let list = Command::new("curl")
        .args(["-s", "--ssl-reqd", "-k", "--max-time", "20", "-u"])
        .arg(format!("demo:{}", s.password))
        .arg(format!("imap://127.0.0.1:{}/", s.imap))
        .output()
        .expect("curl runs");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("INBOX") && list.contains("Archive"), "{list}");
    let out = python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
def raw(cmds, wait=0.5):
    m = login()
    m.sock.settimeout(3)
    m.send(cmds)
    time.sleep(wait)
    out = b''
    try:
        while True:
            d = m.sock.recv(65536)
            if not d: break
            out += d
            if b'zz OK' in out: break
    except Exception:
        pass
    return out.decode(errors='replace').replace('\\r\\n', '|')
print('escape', raw(b'a CREATE \"../../etc\"\\r\\nb CREATE \"x/../../y\"\\r\\nc CREATE \"/abs\"\\r\\nzz NOOP\\r\\n'))
print('utf7', raw(b'a CREATE \"&Jjo\"\\r\\nb CREATE \"&AGE-\"\\r\\nzz NOOP\\r\\n'))
print('bigliteral', raw(b'a APPEND INBOX {{4294967296}}\\r\\nb LOGIN {{99999999999999999999}}\\r\\nzz NOOP\\r\\n'))
print('nul', raw(b'a APPEND INBOX {{3+}}\\r\\na\\x00b\\r\\nzz NOOP\\r\\n'))
print('nest', raw(b'a SELECT INBOX\\r\\nb SEARCH ' + b'(' * 10000 + b'ALL' + b')' * 10000 + b'\\r\\nc SEARCH ' + b'NOT ' * 1000 + b'ALL\\r\\nzz NOOP\\r\\n'))
print('seq', raw(b'a SELECT INBOX\\r\\nb FETCH 0 FLAGS\\r\\nc UID FETCH 1:4294967296 FLAGS\\r\\nzz NOOP\\r\\n'))
print('tags', raw(b'a+b NOOP\\r\\n{{x}} NOOP\\r\\nzz NOOP\\r\\n'))
m = imaplib.IMAP4('127.0.0.1', IMAP, timeout=10)
m.sock.settimeout(3)
m.send(b'a STARTTLS\\r\\nb LOGIN demo ' + PW.encode() + b'\\r\\n')
time.sleep(0.5)
print('inject', m.sock.recv(4096).decode().replace('\\r\\n', '|'))
m = login(); typ, data = m.list('\"\"', '*'); print('after', len(data), b'|'.join(data).decode())
"
        ),
    );
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} in:\n{out}"))
            .to_owned()
    };
    let esc = line("escape");
    assert!(
        esc.contains("a NO") && esc.contains("b NO") && esc.contains("c NO"),
        "{esc}"
    );
    let utf7 = line("utf7");
    assert!(
        utf7.contains("a NO [CANNOT]") && utf7.contains("b NO [CANNOT]"),
        "{utf7}"
    );
    let big = line("bigliteral");
    assert!(
        big.contains("a NO [TOOBIG]") && big.contains("b BAD") && big.contains("zz OK"),
        "{big}"
    );
    let nul = line("nul");
    assert!(nul.contains("a BAD NUL") && nul.contains("zz OK"), "{nul}");
    let nest = line("nest");
    assert!(
        nest.contains("b BAD") && nest.contains("c BAD") && nest.contains("zz OK"),
        "{nest}"
    );
    let seq = line("seq");
    assert!(
        seq.contains("b BAD") && seq.contains("c BAD") && seq.contains("zz OK"),
        "{seq}"
    );
    let tags = line("tags");
    assert!(
        !tags.contains("a+b BAD") && !tags.contains("{x} BAD") && tags.contains("zz OK"),
        "{tags}"
    );
    let inject = line("inject");
    assert!(
        inject.contains("a OK Begin TLS") && !inject.contains("b OK") && !inject.contains("b NO"),
        "{inject}"
    );
    let after = line("after");
    assert!(
        !after.contains("etc") && !after.contains("abs") && !after.contains("\"y\""),
        "{after}"
    );
    // Nothing left the user's folder.
    assert!(!s.data.join("store/etc").exists() && !s.data.join("etc").exists());
}

/// mbsync (isync) mirrors the mailboxes both ways over STARTTLS: mail
/// delivered by SMTP lands in the local Maildir, a local message is
/// APPENDed, and a flag set locally reaches the server.
#[test]
fn mbsync_mirrors_both_ways() {
    let s = start();
    python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.sendmail('alice@example.org', ['demo@example.test'], 'Subject: sync me\\r\\n\\r\\nto the laptop\\r\\n')
c.quit()
"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("mail");
    std::fs::create_dir_all(&local).unwrap();
    let cfg = dir.path().join("mbsyncrc");
    std::fs::write(
        &cfg,
        format!(
            "IMAPAccount test\nHost localhost\nPort {}\nUser demo\nPass {}\nSSLType STARTTLS\n\
             CertificateFile {}\nSystemCertificates no\nAuthMechs PLAIN\n\n\
             IMAPStore remote\nAccount test\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSync All\nSyncState *\n",
            s.imap,
            s.password,
            s.data.join("tls/cert.pem").display(),
            local.display(),
            local.display()
        ),
    )
    .unwrap();
    let sync = || {
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&cfg)
            .arg("-a")
            .output()
            .expect("mbsync runs (Debian package isync)");
        assert!(
            out.status.success(),
            "mbsync failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sync();
    let files = |box_: &str| -> Vec<PathBuf> {
        let mut v = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(local.join(box_).join(sub)) {
                v.extend(rd.map(|e| e.unwrap().path()));
            }
        }
        v
    };
    let inbox = files("INBOX");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(
        std::fs::read_to_string(&inbox[0])
            .unwrap()
            .contains("to the laptop")
    );
    for b in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(local.join(b).is_dir(), "{b} mirrored");
    }
    // A message written locally, and the delivered one marked seen.
    std::fs::write(
        local.join("Drafts/new/1.local.host"),
        "Subject: from the laptop\r\n\r\nwritten offline\r\n",
    )
    .unwrap();
    let seen = {
        let p = &inbox[0];
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let base = name.split(":2,").next().unwrap().to_owned();
        let to = local.join("INBOX/cur").join(format!("{base}:2,S"));
        std::fs::rename(p, &to).unwrap();
        to
    };
    assert!(seen.exists());
    sync();
    let out = python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
m = login()
m.select('Drafts'); typ, d = m.fetch('1', '(BODY.PEEK[])'); print('draft', d[0][1].decode().count('written offline'))
m.select('INBOX'); typ, d = m.fetch('1', '(FLAGS)'); print('flags', d[0].decode())
"
        ),
    );
    assert!(out.contains("draft 1"), "{out}");
    assert!(out.contains("\\Seen"), "{out}");
}

/// The minimal IMAP example serves a folder of `.eml` files read-only.
#[test]
fn minimal_imap_serves_a_folder_of_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.eml"),
        "Subject: one\r\nFrom: a@b.example\r\n\r\nfirst body\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.eml"),
        "Subject: two\r\n\r\nsecond body\r\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_minimal-imap"))
        .arg(dir.path())
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "
import imaplib
m = imaplib.IMAP4('127.0.0.1', {port}, timeout=10)
m.login('anyone', 'anything')
print('select', m.select('INBOX', readonly=True)[1][0].decode())
print('fetch', m.fetch('2', '(BODY[TEXT])')[1][0][1].decode().strip())
print('search', m.search(None, 'SUBJECT', 'one')[1][0].decode())
print('store', m.store('1', '+FLAGS', '\\\\Seen')[0])
"
        ))
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("select 2"), "{text}");
    assert!(text.contains("fetch second body"), "{text}");
    assert!(text.contains("search 1"), "{text}");
    assert!(text.contains("store NO"), "{text}");
}

/// ENVELOPE and BODYSTRUCTURE are derived once, when the message arrives,
/// and kept with it: FETCH answers them without opening the message file
/// (shown by changing the file behind the server's back).
#[test]
fn envelope_and_bodystructure_come_from_the_summary_kept_at_delivery() {
    let s = start();
    python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.sendmail('alice@example.org', ['demo@example.test'], 'Subject: kept at delivery\\r\\nContent-Type: text/plain\\r\\n\\r\\nbody\\r\\n')
c.quit()
time.sleep(0.5)
"
        ),
    );
    let dir = s.data.join("store/users/demo/Maildir/new");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        &file,
        "Subject: changed on disk\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n",
    )
    .unwrap();
    let out = python(
        &s,
        &format!(
            "{IMAP_PRELUDE}
m = login(); m.select('INBOX')
print('summary', m.fetch('1', '(ENVELOPE BODYSTRUCTURE)')[1][0].decode())
print('bytes', m.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')[1][0][1].decode().strip())
"
        ),
    );
    assert!(
        out.contains("\"kept at delivery\"") && out.contains("\"plain\""),
        "{out}"
    );
    assert!(out.contains("bytes Subject: changed on disk"), "{out}");
}

/// Large bodies are streamed from the file into the FETCH literal; what
/// arrives is byte for byte what was appended, beside small messages.
#[test]
fn large_bodies_stream_intact() {
    let s = start();
    let out = imap_script(
        &s,
        "import hashlib
big = b'Subject: big\\r\\n\\r\\n' + b''.join(b'line %07d of a large message\\r\\n' % i for i in range(40000))
small = b'Subject: small\\r\\n\\r\\nhi\\r\\n'
for msg in (small, big, small, big):
    m.append('INBOX', None, None, msg)
m.select('INBOX')
typ, data = m.fetch('1:4', '(UID RFC822.SIZE BODY[])')
bodies = [d[1] for d in data if isinstance(d, tuple)]
print('sizes', [len(b) for b in bodies], len(big))
print('intact', bodies == [small, big, small, big])
typ, data = m.fetch('2', '(RFC822)')
print('rfc822', data[0][1] == big)
typ, data = m.fetch('2', '(FLAGS)')
print('seen', data[0].decode())
",
    );
    assert!(out.contains("intact True"), "{out}");
    assert!(out.contains("rfc822 True"), "{out}");
    assert!(out.contains("\\Seen"), "{out}");
}

/// BINARY (RFC 3516, part of IMAP4rev2) fetch undoes base64 and
/// quoted-printable, and says `NO [UNKNOWN-CTE]` for an encoding it cannot.
#[test]
fn binary_fetch_decodes_parts() {
    let s = start();
    let out = imap_script(
        &s,
        "msg = (b'Content-Type: multipart/mixed; boundary=b\\r\\n\\r\\n--b\\r\\nContent-Transfer-Encoding: base64\\r\\n\\r\\n'
       b'AGhlbGxv\\r\\n--b\\r\\nContent-Transfer-Encoding: quoted-printable\\r\\n\\r\\ncaf=C3=A9\\r\\n--b--\\r\\n')
m.append('INBOX', None, None, msg)
m.select('INBOX')
typ, data = m.fetch('1', '(BINARY.PEEK[1] BINARY.SIZE[1])')
print('b64', repr(data[0][1]), data[1].decode() if len(data) > 1 else '')
typ, data = m.fetch('1', '(BINARY.PEEK[2])')
print('qp', data[0][1].decode())
m.append('INBOX', None, None, b'Content-Transfer-Encoding: x-uuencode\\r\\n\\r\\nbegin 644 x\\r\\n')
typ, data = m.fetch('2', '(BINARY.PEEK[1])')
print('unknown', typ, data)
",
    );
    assert!(
        out.contains("b64 b'\\x00hello'") && out.contains("BINARY.SIZE[1] 6)"),
        "{out}"
    );
    assert!(out.contains("qp café"), "{out}");
    assert!(
        out.contains("unknown NO") && out.contains("[UNKNOWN-CTE]"),
        "{out}"
    );
}

/// A client that enables IMAP4rev2 gets its rules: UTF-8 mailbox names,
/// ESEARCH for SEARCH, no RECENT.
#[test]
fn imap4rev2_clients_get_utf8_names_and_esearch() {
    let s = start();
    let out = imap_script(
        &s,
        "print('caps', ' '.join(m.capabilities))
def run(tag, line):
    m.send(tag + b' ' + line + b'\\r\\n')
    got = []
    while True:
        l = m.readline()
        if not l:
            raise SystemExit('connection closed: ' + ' | '.join(got))
        got.append(l.decode('utf-8').strip())
        if l.startswith(tag + b' '):
            return ' | '.join(got)
print('enable', run(b'e', b'ENABLE IMAP4rev2'))
print('create', run(b'c', 'CREATE \"Entwürfe\"'.encode('utf-8')))
print('list', run(b'l', b'LIST \"\" \"Entw*\"'))
print('select', run(b's', b'SELECT INBOX'))
print('search', run(b'f', b'SEARCH ALL'))
",
    );
    assert!(out.contains("IMAP4REV2"), "{out}");
    assert!(out.contains("* ENABLED IMAP4rev2"), "{out}");
    assert!(out.contains("c OK"), "{out}");
    assert!(out.contains("\"Entwürfe\""), "{out}");
    let select = out.lines().find(|l| l.starts_with("select")).unwrap();
    assert!(
        select.contains("EXISTS") && !select.contains("RECENT"),
        "{select}"
    );
    assert!(out.contains("* ESEARCH (TAG \"f\")"), "{out}");
}

/// Clients' own habits, each replayed as the client sends it (issue 15):
/// ID before LOGIN (iOS, some providers require it), capabilities read
/// only from LOGIN's tagged OK (K-9), `DONE` and the next command in one
/// packet (iOS Mail), mbsync's `X-TUID` and OfflineIMAP's `X-OfflineIMAP`
/// header searches, Thunderbird's plain `UID FETCH 1:* (FLAGS)` resync,
/// and Outlook, which uses XLIST only when it is advertised and otherwise
/// reads SPECIAL-USE from LIST.
#[test]
fn client_quirks_replayed() {
    let s = start();
    let out = python(
        &s,
        &format!(
            r#"{IMAP_PRELUDE}
def conn():
    raw = socket.create_connection(('127.0.0.1', IMAP), timeout=10)
    f = raw.makefile('rb'); f.readline()
    raw.sendall(b'a0 STARTTLS\r\n'); f.readline()
    t = ctx.wrap_socket(raw); return t, t.makefile('rb')
def until(f, tag):
    lines = []
    while True:
        l = f.readline()
        assert l, 'connection closed'
        lines.append(l.decode('utf-8', 'replace').rstrip())
        if l.startswith(tag + b' '):
            return lines
t, f = conn()
# ID before LOGIN.
t.sendall(b'a1 ID ("name" "iPhone Mail" "version" "21A329" "os" "iOS")\r\n')
r = until(f, b'a1'); print('id', r[0].startswith('* ID ('), r[-1].startswith('a1 OK'))
# K-9: the capabilities come with LOGIN's tagged OK, post-login ones included.
t.sendall(('a2 LOGIN demo ' + PW + '\r\n').encode())
r = until(f, b'a2'); caps = r[-1]
print('login-caps', '[CAPABILITY' in caps, 'IDLE' in caps, 'MOVE' in caps, 'XLIST' in caps)
t.sendall(b'a3 SELECT INBOX\r\n'); until(f, b'a3')
# Messages for the searches and the flag resync.
for i in range(30):
    msg = 'Subject: q%d\r\nX-TUID: tuid%03d\r\nX-OfflineIMAP: 1234-offline%d\r\n\r\nbody\r\n' % (i, i, i)
    t.sendall(('a4.%d APPEND INBOX {{%d+}}\r\n' % (i, len(msg)) + msg + '\r\n').encode())
    until(f, ('a4.%d' % i).encode())
t.sendall(b'a5 NOOP\r\n'); until(f, b'a5')
# mbsync finds what it appended by its X-TUID header; OfflineIMAP likewise.
t.sendall(b'a6 UID SEARCH HEADER X-TUID tuid017\r\n'); r = until(f, b'a6')
print('tuid', [l for l in r if l.startswith('* SEARCH')])
t.sendall(b'a7 UID SEARCH HEADER X-OfflineIMAP 1234-offline29\r\n'); r = until(f, b'a7')
print('offlineimap', [l for l in r if l.startswith('* SEARCH')])
# Thunderbird without CONDSTORE: flags changed elsewhere, then a full flag resync.
t.sendall(b'a8 STORE 3:5 +FLAGS.SILENT (\\Flagged)\r\n'); until(f, b'a8')
t.sendall(b'a9 UID FETCH 1:* (FLAGS)\r\n'); r = until(f, b'a9')
fetched = [l for l in r if l.startswith('*') and ' FETCH ' in l]
print('resync', len(fetched), sum('\\Flagged' in l for l in fetched), r[-1].startswith('a9 OK'))
# iOS Mail: DONE and the next command in one packet.
t.sendall(b'a10 IDLE\r\n'); print('idle', f.readline().startswith(b'+'))
t.sendall(b'DONE\r\na11 NOOP\r\n')
r = until(f, b'a10'); r2 = until(f, b'a11')
print('done', r[-1].startswith('a10 OK'), r2[-1].startswith('a11 OK'))
# Outlook: no XLIST advertised; LIST carries the special-use attributes.
t.sendall(b'a12 LIST "" "*"\r\n'); r = until(f, b'a12')
print('special-use', any('\\Sent' in l for l in r), any('\\Trash' in l for l in r))
t.sendall(b'a13 XLIST "" "*"\r\n'); r = until(f, b'a13'); print('xlist', r[-1].split()[1])
t.sendall(b'a14 LOGOUT\r\n'); until(f, b'a14')
"#
        ),
    );
    for want in [
        "id True True",
        "login-caps True True True False",
        "tuid ['* SEARCH 18']",
        "offlineimap ['* SEARCH 30']",
        "resync 30 3 True",
        "idle True",
        "done True True",
        "special-use True True",
        "xlist BAD",
    ] {
        assert!(out.contains(want), "{want} missing in\n{out}");
    }
}

/// QUOTA (RFC 9208) from the store's usage with `--quota-mb`: GETQUOTAROOT
/// and GETQUOTA report STORAGE in KiB; an APPEND or COPY past the limit
/// gets `NO [OVERQUOTA]`; SMTP refuses a full mailbox's recipient with
/// `452 4.2.2`; SETQUOTA is the administrator's.
#[test]
fn quota_is_reported_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(&dir.path().join("d"), None, None, &["--quota-mb", "1"]);
    let out = imap_script(
        &s,
        r#"
caps = m.capability()[1][0].decode()
print('caps', 'QUOTA' in caps.split(), 'QUOTA=RES-STORAGE' in caps.split())
big = b'Subject: big\r\n\r\n' + (b'x' * 76 + b'\r\n') * 7000
print('append1', m.append('INBOX', None, None, big)[0])
typ, data = m.getquotaroot('INBOX')
print('quotaroot', typ, data)
typ, data = m.getquota('""')
print('quota', typ, data)
typ, data = m.append('INBOX', None, None, big)
print('append2', typ, data)
m.select('INBOX')
typ, data = m.copy('1', 'INBOX')
print('copy', typ, data)
print('setquota', m.setquota('""', '(STORAGE 99999)')[0])
m.logout()
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.ehlo('x'); c.mail('a@example.org')
print('rcpt-small', c.rcpt('demo@example.test')[0])
c.quit()
"#,
    );
    has_all(
        &out,
        &[
            "caps True True",
            "append1 OK",
            "quotaroot OK [[b'INBOX \"\"'], [b'\"\" (STORAGE 534 1024)']]",
            "quota OK [b'\"\" (STORAGE 534 1024)']",
            "append2 NO [b'[OVERQUOTA] over quota']",
            "copy NO [b'[OVERQUOTA] over quota']",
            "setquota NO",
            "rcpt-small 250",
        ],
    );
    // Once full, SMTP says so for the recipient.
    let out = imap_script(
        &s,
        r#"
# Exactly what is left: the mailbox is then full.
small = b'Subject: s\r\n\r\n' + b'y' * (1024 * 1024 - (16 + 78 * 7000) - 14)
print('append3', m.append('INBOX', None, None, small)[0])
m.logout()
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.ehlo('x'); c.mail('a@example.org')
print('rcpt-full', c.rcpt('demo@example.test'))
c.quit()
"#,
    );
    assert!(out.contains("append3 OK"), "{out}");
    assert!(
        out.contains("rcpt-full (452, b'4.2.2 Mailbox full')"),
        "{out}"
    );
}

/// CONDSTORE and QRESYNC (RFC 7162) through imaplib: a second client
/// changes and expunges; the first resyncs with `SELECT (QRESYNC …)` and
/// `UID FETCH … (CHANGEDSINCE … VANISHED)` and gets only that; a
/// conditional STORE reports MODIFIED; and after a restart MODSEQ goes on
/// from where it was, never back.
#[test]
fn condstore_and_qresync_resync_only_what_changed_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let s = start_in(&data, None, None);
    let password = s.password.clone();
    let helpers = r#"
import re
def code(m, name):
    for typ, data in [('OK', m.untagged_responses.get('OK', []))]:
        for d in data:
            d = d.decode() if isinstance(d, bytes) else str(d)
            if d.startswith('[' + name + ' '):
                return int(d[len(name) + 2:].split(']')[0])
    return None
def enable_qresync(m):
    typ, data = m._simple_command('ENABLE', 'QRESYNC')
    return m._untagged_response(typ, data, 'ENABLED')[1]
"#;
    let out = imap_script(
        &s,
        &format!(
            r#"{helpers}
caps = m.capability()[1][0].decode().split()
print('caps', 'CONDSTORE' in caps, 'QRESYNC' in caps)
for i in range(5):
    m.append('INBOX', None, None, ('Subject: m%d\r\n\r\nbody\r\n' % i).encode())
print('enabled', enable_qresync(m))
m.untagged_responses.clear()
m.select('INBOX')
uv, h1 = code(m, 'UIDVALIDITY'), code(m, 'HIGHESTMODSEQ')
print('first', uv is not None, h1 is not None and h1 > 0)
print('state', uv, h1)
m.logout()
# Another client: a flag change, an expunge.
b = login(); b.select('INBOX')
b.store('2', '+FLAGS', '(\\Seen)')
b.store('4', '+FLAGS', '(\\Deleted)'); b.expunge()
b.logout()
m = login(); enable_qresync(m)
m.untagged_responses.clear()
typ, data = m._simple_command('SELECT', 'INBOX', '(QRESYNC (%d %d 1:5))' % (uv, h1))
m.state = 'SELECTED'
print('resync', typ, m.untagged_responses.get('VANISHED'), m.untagged_responses.get('FETCH'))
h2 = code(m, 'HIGHESTMODSEQ'); print('h2-above', h2 > h1)
m.untagged_responses.clear()
typ, data = m.uid('FETCH', '1:*', '(FLAGS) (CHANGEDSINCE %d VANISHED)' % h1)
print('changedsince', typ, data, m.untagged_responses.get('VANISHED'))
typ, data = m.uid('FETCH', '1:*', '(FLAGS) (CHANGEDSINCE %d)' % h2)
print('nothing-new', typ, data)
m.untagged_responses.clear()
typ, data = m._simple_command('STORE', '1', '(UNCHANGEDSINCE 1) +FLAGS', '(\\Flagged)')
print('conditional', typ, data, m.untagged_responses.get('FETCH'))
typ, data = m.store('1', '(UNCHANGEDSINCE %d) +FLAGS' % h2, '(\\Flagged)')
print('conditional-ok', typ, re.sub(r'MODSEQ \(\d+\)', 'MODSEQ (n)', data[0].decode()))
typ, data = m.search(None, 'MODSEQ', str(h2 + 1))
print('search-modseq', typ, data)
typ, data = m.status('INBOX', '(HIGHESTMODSEQ)')
print('status', data[0].decode())
m.logout()
"#
        ),
    );
    has_all(
        &out,
        &[
            "caps True True",
            "enabled [b'QRESYNC']",
            "first True True",
            "resync OK [b'(EARLIER) 4'] [b'2 (UID 2 FLAGS (\\\\Seen) MODSEQ (",
            "h2-above True",
            "changedsince OK [b'2 (UID 2 FLAGS (\\\\Seen) MODSEQ (",
            "[b'(EARLIER) 4']",
            "nothing-new OK [None]",
            "conditional OK [b'[MODIFIED 1] Conditional STORE failed for some messages'] None",
            "conditional-ok OK 1 (FLAGS (\\Flagged) MODSEQ (n))",
        ],
    );
    let status: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("status INBOX (HIGHESTMODSEQ "))
        .and_then(|r| r.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no status in\n{out}"));
    let search = out
        .lines()
        .find(|l| l.starts_with("search-modseq"))
        .unwrap();
    assert!(search.contains("b'1 (MODSEQ "), "{out}");
    drop(s);
    // Restarted on the same data: HIGHESTMODSEQ is where it was, and a
    // change goes above it.
    let s = start_in(&data, None, Some(password));
    let out = imap_script(
        &s,
        &format!(
            r#"{helpers}
m.untagged_responses.clear()
m.select('INBOX')
print('after', code(m, 'HIGHESTMODSEQ'))
m.fetch('1', '(MODSEQ)')
typ, data = m.store('1', '+FLAGS', '(\\Answered)')
print('next', re.search(r'MODSEQ \((\d+)\)', data[0].decode()).group(1))
"#
        ),
    );
    let num = |k: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {k} in\n{out}"))
    };
    assert_eq!(num("after "), status, "{out}");
    assert!(num("next ") > status, "{out}");
}

/// COMPRESS=DEFLATE over STARTTLS with a raw-DEFLATE client (Python's
/// zlib, as RFC 4978 says: no zlib header, a sync flush per burst): the
/// OK comes uncompressed, everything after it compressed both ways, a
/// FETCH of a large message included; a second COMPRESS is refused.
#[test]
fn compress_deflate_carries_the_session_after_its_ok() {
    let s = start();
    let out = imap_script(
        &s,
        r#"
import zlib
big = b'Subject: big\r\n\r\n' + b''.join(b'line %06d of a message that compresses well\r\n' % i for i in range(20000))
print('append', m.append('INBOX', None, None, big)[0])
print('offered', 'COMPRESS=DEFLATE' in m.capability()[1][0].decode().split())
sock = m.sock
tag = m._new_tag().decode()
m.send(('%s COMPRESS DEFLATE\r\n' % tag).encode())
print('ok', m.readline().decode().strip())
# From here on raw DEFLATE both ways, read from the TLS socket directly.
tx = zlib.compressobj(6, zlib.DEFLATED, -15)
rx = zlib.decompressobj(-15)
wire = [0]
def send(line):
    sock.sendall(tx.compress(line) + tx.flush(zlib.Z_SYNC_FLUSH))
def until(done):
    data = b''
    while not done(data):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit('closed; got %r' % data[-200:])
        wire[0] += len(chunk)
        data += rx.decompress(chunk)
    return data
send(b'c1 SELECT INBOX\r\n')
print('select', until(lambda d: b'c1 OK' in d).split(b'\r\n')[-2].decode())
send(b'c2 FETCH 1 BODY.PEEK[]\r\n')
data = until(lambda d: b'c2 OK' in d)
print('fetched', big in data, 'ratio', round(len(data) / wire[0]))
send(b'c3 COMPRESS DEFLATE\r\n')
print('again', until(lambda d: b'c3 ' in d).decode().strip())
send(b'c4 LOGOUT\r\n')
print('bye', b'c4 OK' in until(lambda d: b'c4 OK' in d))
"#,
    );
    has_all(
        &out,
        &[
            "append OK",
            "offered True",
            "DEFLATE active",
            "select c1 OK [READ-WRITE] SELECT completed",
            "fetched True",
            "again c3 NO [COMPRESSIONACTIVE]",
            "bye True",
        ],
    );
    let ratio: u64 = out
        .lines()
        .find_map(|l| l.split("ratio ").nth(1))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0);
    assert!(ratio >= 5, "the FETCH went compressed: {out}");
}

/// CONTEXT=SEARCH (RFC 5267) over the wire: a live `SEARCH RETURN
/// (UPDATE)` of unseen mail is kept current while the client idles —
/// another client reading a message takes it out (REMOVEFROM), mail
/// delivered over SMTP puts the new one in (ADDTO after its EXISTS).
#[test]
fn a_live_search_is_kept_current_while_idling() {
    let s = start();
    let out = imap_script(
        &s,
        r#"
for i in range(3):
    m.append('INBOX', None, None, b'Subject: s%d\r\n\r\nbody\r\n' % i)
m.select('INBOX')
tag = m._new_tag().decode()
m.send(('%s SEARCH RETURN (UPDATE ALL) UNSEEN\r\n' % tag).encode())
print('search', m.readline().decode().strip()); m.readline()
idle = m._new_tag().decode()
m.send(('%s IDLE\r\n' % idle).encode())
print('idle', m.readline().decode().strip())
b = login(); b.select('INBOX'); b.store('2', '+FLAGS', '(\\Seen)'); b.logout()
m.sock.settimeout(5)
lines = []
while not any(b'REMOVEFROM' in l for l in lines):
    lines.append(m.readline())
print('removed', [l.decode().strip() for l in lines if b'ESEARCH' in l])
c = smtplib.SMTP('127.0.0.1', SMTP, timeout=10)
c.sendmail('a@example.org', ['demo@example.test'], 'Subject: new\r\n\r\nunseen\r\n')
c.quit()
lines = []
while not any(b'ADDTO' in l for l in lines):
    lines.append(m.readline())
print('added', [l.decode().strip() for l in lines if b'EXISTS' in l or b'ESEARCH' in l])
m.send(b'DONE\r\n')
print('done', m.readline().decode().strip())
"#,
    );
    has_all(
        &out,
        &[
            "search * ESEARCH (TAG \"",
            "\") ALL 1:3",
            "idle + idling",
            "\") REMOVEFROM (0 2)']",
            "added ['* 4 EXISTS', '* ESEARCH (TAG \"",
            "\") ADDTO (0 4)']",
            "OK IDLE terminated",
        ],
    );
}

/// OBJECTID (RFC 8474) through imaplib: CREATE answers the MAILBOXID,
/// SELECT and STATUS give the same, RENAME keeps it and a mailbox created
/// again under the old name gets another; EMAILIDs are objectids, one per
/// message; THREADID is NIL (no threads kept).
#[test]
fn object_ids_follow_mailboxes_and_messages() {
    let s = start();
    let out = imap_script(
        &s,
        r#"
import re
print('offered', 'OBJECTID' in m.capability()[1][0].decode().split())
typ, data = m.create('Projects')
created = re.search(r'MAILBOXID \(([^)]+)\)', data[0].decode()).group(1)
print('create', typ, re.fullmatch(r'[A-Za-z0-9_-]{1,255}', created) is not None)
def status_id(name):
    typ, data = m.status(name, '(MAILBOXID)')
    return re.search(r'MAILBOXID \(([^)]+)\)', data[0].decode()).group(1)
print('status-same', status_id('Projects') == created)
m.rename('Projects', 'Archive2')
print('renamed-same', status_id('Archive2') == created)
m.create('Projects')
print('recreated-new', status_id('Projects') != created)
for i in range(2):
    m.append('Archive2', None, None, b'Subject: o%d\r\n\r\nx\r\n' % i)
m.untagged_responses.clear()
m.select('Archive2')
print('select-same', any(('MAILBOXID (%s)' % created) in d.decode() for d in m.untagged_responses.get('OK', [])))
typ, data = m.fetch('1:2', '(EMAILID THREADID)')
ids = [re.search(r'EMAILID \(([^)]+)\)', d.decode()).group(1) for d in data]
print('emailids', len(set(ids)), all(re.fullmatch(r'[A-Za-z0-9_-]{1,255}', i) for i in ids))
print('threadid', all('THREADID NIL' in d.decode() for d in data))
"#,
    );
    has_all(
        &out,
        &[
            "offered True",
            "create OK True",
            "status-same True",
            "renamed-same True",
            "recreated-new True",
            "select-same True",
            "emailids 2 True",
            "threadid True",
        ],
    );
}
