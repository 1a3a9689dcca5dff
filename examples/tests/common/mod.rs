//! Starting the real `mailserver` binary for tests, and the clients that
//! talk to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub data: PathBuf,
    pub smtp: u16,
    pub submission: u16,
    pub lmtp: u16,
    pub pop3: u16,
    pub imap: u16,
    /// The metrics listener, when `--metrics` was given.
    pub metrics: u16,
    pub password: String,
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_in(data: &Path, dir: Option<tempfile::TempDir>, password: Option<String>) -> Server {
    start_with(data, dir, password, &[])
}

/// [`start_in`] with more `serve` options.
pub fn start_with(
    data: &Path,
    dir: Option<tempfile::TempDir>,
    password: Option<String>,
    extra: &[&str],
) -> Server {
    start_full(data, dir, password, extra, None)
}

/// [`start_with`], the server's log (standard error) going to `log`.
pub fn start_full(
    data: &Path,
    dir: Option<tempfile::TempDir>,
    password: Option<String>,
    extra: &[&str],
    log: Option<&Path>,
) -> Server {
    // These servers keep mail for other domains queued: no test reaches
    // outside the machine.
    let mut args = vec!["--hold-queue"];
    args.extend_from_slice(extra);
    start_at(
        data,
        dir,
        password,
        "127.0.0.1",
        &["example.test", "localhost"],
        &args,
        log,
    )
}

/// A server on `ip` (every listener, free ports) for `domains`.
pub fn start_at(
    data: &Path,
    dir: Option<tempfile::TempDir>,
    password: Option<String>,
    ip: &str,
    domains: &[&str],
    extra: &[&str],
    log: Option<&Path>,
) -> Server {
    let stderr = match log {
        Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
        None => Stdio::null(),
    };
    // Port 0 everywhere: the server binds free ports itself and prints
    // them, so no other process can take one between a probe and the bind.
    let (mut smtp, mut submission, mut lmtp, mut pop3, mut imap, mut metrics) = (0, 0, 0, 0, 0, 0);
    let want = if extra.contains(&"--metrics") { 6 } else { 5 };
    let any = format!("{ip}:0");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailserver"))
        .arg("--data")
        .arg(data)
        .args(domains.iter().flat_map(|d| ["--domain", d]))
        .arg("serve")
        .args([
            "--submission",
            &any,
            "--lmtp",
            &any,
            "--pop3",
            &any,
            "--imap",
            &any,
        ])
        .args(if extra.contains(&"--smtp") {
            vec![]
        } else {
            vec!["--smtp", &any]
        })
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("mailserver starts");
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let mut password = password;
    let mut listening = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while listening < want {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().expect("server output").unwrap();
        if let Some(p) = line.strip_prefix("created user demo with password ") {
            password = Some(p.to_owned());
        }
        if let Some(rest) = line.strip_prefix("listening ") {
            let (proto, addr) = rest.split_once(' ').expect("listening PROTO ADDR");
            let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
            match proto {
                "smtp" => smtp = port,
                "submission" => submission = port,
                "lmtp" => lmtp = port,
                "pop3" => pop3 = port,
                "imap" => imap = port,
                "metrics" => metrics = port,
                other => panic!("unexpected listener {other}"),
            }
            listening += 1;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        data: data.to_owned(),
        smtp,
        submission,
        lmtp,
        pop3,
        imap,
        metrics,
        password: password.expect("demo password printed on first start"),
        _dir: dir,
    }
}

pub fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mail-data");
    start_in(&data, Some(dir), None)
}

/// Fails unless `out` (a script's output) holds every one of `wants`.
pub fn has_all(out: &str, wants: &[&str]) {
    for want in wants {
        assert!(out.contains(want), "{want} missing in\n{out}");
    }
}

/// Runs a Python script with the server's ports as arguments; returns
/// its standard output, failing the test on a non-zero exit.
pub fn python(s: &Server, script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([
            s.smtp.to_string(),
            s.submission.to_string(),
            s.lmtp.to_string(),
            s.password.clone(),
            s.pop3.to_string(),
            s.imap.to_string(),
        ])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The messages in a user's INBOX Maildir.
pub fn maildir(s: &Server, user: &str) -> Vec<String> {
    let base = s.data.join("store/users").join(user).join("Maildir");
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(base.join(sub)) {
            for e in rd {
                v.push(
                    String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap())
                        .into_owned(),
                );
            }
        }
    }
    v
}

/// Runs `mailserver --data DATA ARGS…` to its end: (success, stdout+stderr).
pub fn cli(data: &Path, args: &[&str]) -> (bool, String) {
    cli_input(data, args, "")
}

/// Runs `mailserver --data DATA ARGS…` with `stdin` as its input.
pub fn cli_input(data: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailserver"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailserver runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}
