//! A minimal read-only IMAP server to copy from: serves the `.eml` files of
//! a folder as one mailbox, INBOX, to any user and password, built on
//! `imap_proto::server::Session` alone. No TLS, no store, no writes.
//! `minimal-imap FOLDER [ADDR]` (default 127.0.0.1:1144).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use imap_proto::mime::Structure;
use imap_proto::search::{self, SearchMessage};
use imap_proto::server::{Completion, Config, Event, Output, Request, Selected, Session};
use imap_proto::{Code, FetchItem, FetchValue, Flag, Mailbox, Response, Rfc822Part};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One message: UID = position in the sorted file list + 1.
struct Message {
    uid: u32,
    seq: u32,
    bytes: Vec<u8>,
}

impl SearchMessage for Message {
    fn seq(&self) -> u32 {
        self.seq
    }
    fn uid(&self) -> u32 {
        self.uid
    }
    fn flags(&self) -> &[Flag] {
        &[]
    }
    fn internal_date(&self) -> i64 {
        0
    }
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn modseq(&self) -> u64 {
        1
    }
    fn message(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

fn load(dir: &Path) -> std::io::Result<Vec<Message>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        out.push(Message {
            uid: n,
            seq: n,
            bytes: std::fs::read(p)?,
        });
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:1144".into());
    let mut config = Config::new("localhost");
    config.allow_plaintext_auth = true; // loopback only: no TLS here
    let config = Arc::new(config);
    let listener = TcpListener::bind(&addr).await?;
    println!("listening imap {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        let messages = Arc::new(load(&dir)?);
        tokio::spawn(connection(socket, config.clone(), messages));
    }
}

async fn connection(
    mut socket: TcpStream,
    config: Arc<Config>,
    mail: Arc<Vec<Message>>,
) -> std::io::Result<()> {
    let mut session = Session::new(config, Instant::now(), rand_bytes());
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = session.poll_output() {
            match out {
                Output::Transmit(bytes) => socket.write_all(&bytes).await?,
                Output::Event(e) => answer(&mut session, &mail, e),
                Output::Closed => return Ok(()),
                // Neither is offered here: cannot happen.
                Output::StartTls | Output::Compress => return Ok(()),
            }
        }
        let n = match session.poll_timeout() {
            Some(t) => {
                let sleep = tokio::time::sleep_until(t.into());
                tokio::select! {
                    r = socket.read(&mut buf) => r?,
                    _ = sleep => { session.handle_timeout(Instant::now()); continue; }
                }
            }
            None => socket.read(&mut buf).await?,
        };
        if n == 0 {
            session.handle_eof(Instant::now());
        } else {
            session.handle_input(Instant::now(), &buf[..n]);
        }
    }
}

/// Every decision is answered at once; nothing is left pending.
fn answer(s: &mut Session, mail: &[Message], event: Event) {
    let ok = |t| Completion::ok(t);
    let r = match event {
        Event::Login { token, .. } => s.accept_login(token),
        Event::Request { token, request } => match request {
            Request::Select { mailbox, .. } if mailbox.as_str() == "INBOX" => {
                let uids = mail.iter().map(|m| m.uid).collect();
                let next = u32::try_from(mail.len() + 1).unwrap_or(u32::MAX);
                let mut sel = Selected::new(1, next, uids);
                sel.read_only = true;
                s.selected(token, sel)
            }
            Request::List { .. } => {
                s.untagged(&Response::List {
                    lsub: false,
                    attributes: vec!["\\HasNoChildren".into()],
                    delimiter: Some('/'),
                    mailbox: Mailbox::new("INBOX").expect("valid name"),
                    extended: Vec::new(),
                });
                s.complete(token, ok("LIST completed"))
            }
            Request::Fetch {
                messages, items, ..
            } => {
                for m in &messages {
                    let msg = &mail[(m.uid - 1) as usize];
                    let _ = s.fetched(&token, m.uid, fetch(msg, &items));
                }
                s.complete(token, ok("FETCH completed"))
            }
            Request::Search { keys, .. } => {
                let (n, last) = (s.view().exists(), s.view().last_uid());
                let hits = mail
                    .iter()
                    .filter(|m| search::matches(&keys, *m, n, last))
                    .map(|m| m.uid)
                    .collect();
                s.searched(token, hits)
            }
            _ => s.reject(token, Completion::no_code(Code::ReadOnly, "read-only")),
        },
        // No SCRAM keys here, and nothing else can be written.
        Event::ScramLookup { token, .. } => s.scram_credentials(token, None),
        Event::AppendCommit { token } => s.reject(token, Completion::no("read-only")),
        _ => Ok(()),
    };
    if let Err(e) = r {
        eprintln!("answer refused: {:?}", e.error);
    }
}

fn fetch(m: &Message, items: &[FetchItem<'static>]) -> Vec<FetchValue<'static>> {
    let structure = Structure::parse(&m.bytes);
    let mut out = Vec::new();
    for item in items {
        out.push(match item {
            FetchItem::Flags => FetchValue::Flags(Vec::new()),
            FetchItem::Uid => FetchValue::Uid(m.uid),
            FetchItem::Rfc822Size => FetchValue::Rfc822Size(m.size() as u32),
            FetchItem::InternalDate => {
                FetchValue::InternalDate("01-Jan-1970 00:00:00 +0000".into())
            }
            FetchItem::Envelope => FetchValue::Envelope(Box::new(Structure::envelope(&m.bytes))),
            FetchItem::BodyStructure => {
                FetchValue::BodyStructure(Box::new(structure.body_structure(&m.bytes, true)))
            }
            FetchItem::Body => {
                FetchValue::Body(Box::new(structure.body_structure(&m.bytes, false)))
            }
            FetchItem::Rfc822 => FetchValue::Rfc822 {
                part: Rfc822Part::Full,
                data: Some(m.bytes.clone().into()),
            },
            FetchItem::BodySection { section, .. } => {
                let mut echoed = section.clone();
                let origin = echoed.partial.take().map(|p| p.0);
                let data = structure
                    .section(&m.bytes, section)
                    .map(|c| c.into_owned().into());
                FetchValue::BodySection {
                    section: echoed,
                    origin,
                    data,
                }
            }
            _ => continue,
        });
    }
    out
}

/// Entropy for the session (SASL nonces, decision tokens).
fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the system has randomness");
    b
}
