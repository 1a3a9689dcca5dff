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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u64,
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
        loop {
            let l = self.line()?;
            if l.starts_with(tag.as_bytes()) && l.get(tag.len()) == Some(&b' ') {
                return Ok(l[tag.len() + 1..].starts_with(b"OK"));
            }
        }
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
    let mut sent = 0;
    while sent < n {
        let batch = (n - sent).min(200);
        let mut buf = Vec::new();
        for _ in 0..batch {
            c.tag += 1;
            buf.extend_from_slice(
                format!("t{} APPEND big {{{}+}}\r\n", c.tag, MESSAGE.len()).as_bytes(),
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
    ] {
        let t = Instant::now();
        assert!(c.run(cmd, None)?);
        println!("{cmd} of {n}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    c.run("LOGOUT", None)?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("bigbox") && args.len() >= 6 {
        return bigbox(&args);
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
