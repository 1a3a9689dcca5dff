//! A load program for IMAP servers: N clients over loopback, each logged in
//! with the INBOX selected, running a client-like mix in a loop (UID FETCH
//! 1:* (FLAGS), FETCH of headers and of whole messages, STORE \Seen, SEARCH,
//! APPEND, IDLE/DONE, NOOP); prints commands per second.
//!
//! `imap-load PORT USER PASSWORD [CLIENTS=10] [SECONDS=10] [SEED_MESSAGES=100]`
//! (LOGIN in plaintext: start the server with `--allow-plaintext-auth`).
//!
//! `imap-load bigbox PORT USER PASSWORD N` appends N messages to a mailbox
//! `big` (pipelined, LITERAL+), then times `SELECT big`,
//! `UID FETCH 1:* (FLAGS)`, `SEARCH UNSEEN`, SORT and THREAD on it.
//!
//! `imap-load resync PORT USER PASSWORD [FOLDERS=10] [MESSAGES=10000]`
//! fills FOLDERS mailboxes, remembers each one's state, changes flags on 1%
//! and expunges another 1% from a second connection, then resyncs every
//! folder three ways and prints bytes received and time for each: QRESYNC
//! (`SELECT … (QRESYNC …)`), CONDSTORE (`UID FETCH 1:* (FLAGS)
//! (CHANGEDSINCE …)` and `UID SEARCH ALL` for what vanished), and the full
//! `UID FETCH 1:* (FLAGS)` of a client without either.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u64,
    /// Octets read from the server.
    received: u64,
    /// The untagged lines of the last command, when `keep` is set.
    untagged: Vec<Vec<u8>>,
    keep: bool,
}

impl Client {
    fn connect(port: u16) -> std::io::Result<Client> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Client {
            r: BufReader::new(s.try_clone()?),
            w: s,
            tag: 0,
            received: 0,
            untagged: Vec::new(),
            keep: false,
        };
        c.line()?; // greeting
        Ok(c)
    }

    /// One response line, literals read through.
    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let n = self.r.read_until(b'\n', &mut out)?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            self.received += n as u64;
            let end = out.len().saturating_sub(2);
            let len = out[..end]
                .iter()
                .rposition(|&b| b == b'{')
                .filter(|_| out[..end].ends_with(b"}"))
                .and_then(|p| {
                    std::str::from_utf8(&out[p + 1..end - 1])
                        .ok()?
                        .parse::<usize>()
                        .ok()
                });
            match len {
                Some(n) => {
                    let mut lit = vec![0; n];
                    self.r.read_exact(&mut lit)?;
                    self.received += n as u64;
                    out.extend_from_slice(&lit);
                }
                None => return Ok(out),
            }
        }
    }

    /// Sends a command and reads to its tagged reply; `literal` follows a
    /// `{n}` header after the server's `+`.
    fn run(&mut self, cmd: &str, literal: Option<&[u8]>) -> std::io::Result<bool> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        match literal {
            Some(lit) => {
                write!(self.w, "{tag} {cmd} {{{}}}\r\n", lit.len())?;
                let l = self.line()?;
                if !l.starts_with(b"+") {
                    return Ok(false);
                }
                self.w.write_all(lit)?;
                self.w.write_all(b"\r\n")?;
            }
            None => write!(self.w, "{tag} {cmd}\r\n")?,
        }
        self.untagged.clear();
        loop {
            let l = self.line()?;
            if l.starts_with(tag.as_bytes()) && l.get(tag.len()) == Some(&b' ') {
                return Ok(l[tag.len() + 1..].starts_with(b"OK"));
            }
            if self.keep {
                self.untagged.push(l);
            }
        }
    }

    /// The number after `[NAME ` in the last command's untagged lines.
    fn code(&self, name: &str) -> Option<u64> {
        let key = format!("[{name} ");
        self.untagged.iter().find_map(|l| {
            let s = std::str::from_utf8(l).ok()?;
            let rest = &s[s.find(&key)? + key.len()..];
            rest[..rest.find(']')?].parse().ok()
        })
    }

    fn idle(&mut self) -> std::io::Result<bool> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.w, "{tag} IDLE\r\n")?;
        if !self.line()?.starts_with(b"+") {
            return Ok(false);
        }
        self.w.write_all(b"DONE\r\n")?;
        loop {
            let l = self.line()?;
            if l.starts_with(tag.as_bytes()) {
                return Ok(l[tag.len() + 1..].starts_with(b"OK"));
            }
        }
    }
}

const MESSAGE: &[u8] = b"From: Load <load@example.org>\r\nTo: demo@example.test\r\nSubject: load test message\r\nMessage-ID: <load@example.org>\r\n\r\nA short body, as most mail is.\r\nSecond line.\r\n";

fn bigbox(args: &[String]) -> std::io::Result<()> {
    let port: u16 = args[2].parse().expect("PORT");
    let n: usize = args[5].parse().expect("N");
    let mut c = Client::connect(port)?;
    assert!(
        c.run(&format!("LOGIN {} \"{}\"", args[3], args[4]), None)?,
        "login"
    );
    c.run("CREATE big", None)?;
    let t0 = Instant::now();
    fill(&mut c, "big", n)?;
    println!(
        "appended {n} messages in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    assert!(c.run("SELECT big", None)?);
    println!(
        "SELECT of {n} messages: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    assert!(c.run("UID FETCH 1:* (FLAGS)", None)?);
    println!(
        "UID FETCH 1:* (FLAGS) of {n}: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    for cmd in [
        "SEARCH UNSEEN",
        "SORT (SUBJECT) UTF-8 ALL",
        "SORT (REVERSE DATE) UTF-8 ALL",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
    ] {
        let t = Instant::now();
        assert!(c.run(cmd, None)?);
        println!("{cmd} of {n}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    c.run("LOGOUT", None)?;
    Ok(())
}

/// Appends `n` messages to `mailbox`, pipelined (LITERAL+).
fn fill(c: &mut Client, mailbox: &str, n: usize) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < n {
        let batch = (n - sent).min(200);
        let mut buf = Vec::new();
        for _ in 0..batch {
            c.tag += 1;
            buf.extend_from_slice(
                format!("t{} APPEND {mailbox} {{{}+}}\r\n", c.tag, MESSAGE.len()).as_bytes(),
            );
            buf.extend_from_slice(MESSAGE);
            buf.extend_from_slice(b"\r\n");
        }
        c.w.write_all(&buf)?;
        let last = format!("t{} ", c.tag);
        loop {
            let l = c.line()?;
            if l.starts_with(last.as_bytes()) {
                break;
            }
        }
        sent += batch;
    }
    Ok(())
}

/// A folder as a resyncing client remembers it.
struct Folder {
    name: String,
    uid_validity: u64,
    highest_modseq: u64,
}

/// One way to resync a folder.
type Resync = dyn Fn(&mut Client, &Folder) -> std::io::Result<()>;

fn resync(args: &[String]) -> std::io::Result<()> {
    let port: u16 = args[2].parse().expect("PORT");
    let login = format!("LOGIN {} \"{}\"", args[3], args[4]);
    let folders: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(10);
    let n: usize = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut c = Client::connect(port)?;
    assert!(c.run(&login, None)?, "login");
    assert!(c.run("ENABLE QRESYNC", None)?);
    c.keep = true;
    // Fill, and remember each folder as a client would.
    let mut known = Vec::new();
    for f in 0..folders {
        let name = format!("sync{f}");
        c.run(&format!("DELETE {name}"), None)?;
        assert!(c.run(&format!("CREATE {name}"), None)?);
        fill(&mut c, &name, n)?;
        assert!(c.run(&format!("SELECT {name}"), None)?);
        let (uv, hms) = (c.code("UIDVALIDITY"), c.code("HIGHESTMODSEQ"));
        known.push(Folder {
            name,
            uid_validity: uv.expect("UIDVALIDITY"),
            highest_modseq: hms.expect("HIGHESTMODSEQ"),
        });
    }
    c.run("LOGOUT", None)?;
    // Another client: 1% flag changes, 1% expunges, in every folder.
    let mut o = Client::connect(port)?;
    assert!(o.run(&login, None)?);
    let step = 100;
    for Folder { name, .. } in &known {
        assert!(o.run(&format!("SELECT {name}"), None)?);
        let flagged: Vec<String> = (1..=n).step_by(step).map(|u| u.to_string()).collect();
        let gone: Vec<String> = (step / 2..=n)
            .step_by(step)
            .map(|u| u.to_string())
            .collect();
        assert!(o.run(
            &format!("UID STORE {} +FLAGS.SILENT (\\Flagged)", flagged.join(",")),
            None
        )?);
        assert!(o.run(
            &format!("UID STORE {} +FLAGS.SILENT (\\Deleted)", gone.join(",")),
            None
        )?);
        assert!(o.run("EXPUNGE", None)?);
    }
    o.run("LOGOUT", None)?;
    println!("{folders} folders of {n} messages; 1% flag changes and 1% expunges in each");
    let measure = |label: &str, qresync: bool, run: &Resync| -> std::io::Result<()> {
        let mut c = Client::connect(port)?;
        assert!(c.run(&login, None)?);
        if qresync {
            assert!(c.run("ENABLE QRESYNC", None)?);
        }
        let (t, before) = (Instant::now(), c.received);
        for k in &known {
            run(&mut c, k)?;
        }
        println!(
            "{label}: {} bytes received, {:.1} ms",
            c.received - before,
            t.elapsed().as_secs_f64() * 1e3
        );
        c.run("LOGOUT", None)?;
        Ok(())
    };
    measure(
        "QRESYNC   SELECT (QRESYNC (uidvalidity modseq))",
        true,
        &|c, f| {
            let (name, uv, hms) = (&f.name, f.uid_validity, f.highest_modseq);
            assert!(c.run(&format!("SELECT {name} (QRESYNC ({uv} {hms}))"), None)?);
            Ok(())
        },
    )?;
    measure(
        "CONDSTORE UID FETCH (CHANGEDSINCE) + UID SEARCH ALL",
        false,
        &|c, f| {
            assert!(c.run(&format!("SELECT {} (CONDSTORE)", f.name), None)?);
            let changed = format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {})", f.highest_modseq);
            assert!(c.run(&changed, None)?);
            assert!(c.run("UID SEARCH ALL", None)?);
            Ok(())
        },
    )?;
    measure("full      UID FETCH 1:* (FLAGS)", false, &|c, f| {
        assert!(c.run(&format!("SELECT {}", f.name), None)?);
        assert!(c.run("UID FETCH 1:* (FLAGS)", None)?);
        Ok(())
    })?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("bigbox") && args.len() >= 6 {
        return bigbox(&args);
    }
    if args.get(1).map(String::as_str) == Some("resync") && args.len() >= 5 {
        return resync(&args);
    }
    if args.len() < 4 {
        eprintln!("usage: imap-load PORT USER PASSWORD [CLIENTS] [SECONDS] [SEED_MESSAGES]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT");
    let (user, pass) = (args[2].clone(), args[3].clone());
    let clients: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let seconds: u64 = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: usize = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(100);
    // Seed the mailbox so FETCH and SEARCH have work.
    let mut c = Client::connect(port)?;
    assert!(c.run(&format!("LOGIN {user} \"{pass}\""), None)?, "login");
    for _ in 0..seed {
        c.run("APPEND INBOX", Some(MESSAGE))?;
    }
    c.run("LOGOUT", None)?;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (user, pass, done, failed) = (user.clone(), pass.clone(), done.clone(), failed.clone());
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut c = Client::connect(port)?;
                c.run(&format!("LOGIN {user} \"{pass}\""), None)?;
                c.run("SELECT INBOX", None)?;
                let mut n = i;
                while Instant::now() < until {
                    n += 1;
                    let m = 1 + n % seed.max(1);
                    let ok = match n % 8 {
                        0 => c.run("UID FETCH 1:* (FLAGS)", None)?,
                        1 => c.run(&format!("FETCH {m} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"), None)?,
                        2 => c.run(&format!("FETCH {m} BODY.PEEK[]"), None)?,
                        3 => c.run(&format!("STORE {m} +FLAGS (\\Seen)"), None)?,
                        4 => c.run("SEARCH UNSEEN", None)?,
                        5 => c.run("APPEND INBOX", Some(MESSAGE))?,
                        6 => c.idle()?,
                        _ => c.run("NOOP", None)?,
                    };
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                c.run("LOGOUT", None)?;
                Ok(())
            })
        })
        .collect();
    let start = Instant::now();
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("client error: {e}");
        }
    }
    let secs = start.elapsed().as_secs_f64().max(seconds as f64);
    let n = done.load(Ordering::Relaxed);
    println!(
        "{clients} clients, {seconds} s: {n} commands, {:.0} commands/s, {} failed",
        n as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}
