//! User administration, the same whether the server runs or not: the
//! command line applies it to the store itself, or, while a server holds
//! the store, sends it over the server's admin socket (`DATA/admin.sock`,
//! owner only) and the server applies it at once.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use mailstore::{Store, UserName};

use crate::accounts::Accounts;

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new user (refused if the name exists, also in another case).
    Add {
        /// The name.
        name: String,
        /// Keep the plain password for APOP too.
        apop: bool,
    },
    /// A new password for an existing user.
    Passwd {
        /// The name.
        name: String,
    },
    /// Remove a user and their mail.
    Del {
        /// The name.
        name: String,
    },
    /// The users.
    List,
    /// Read the aliases file again (sent to a running server after the
    /// command line changed it).
    ReloadAliases,
    /// The outgoing queue, a line per message.
    QueueList,
    /// One queued message in full.
    QueueShow {
        /// Its queue id.
        id: u64,
    },
    /// Every waiting recipient due now.
    QueueFlush,
    /// Remove a queued message (no delivery, no bounce).
    QueueDelete {
        /// Its queue id.
        id: u64,
    },
}

impl Action {
    /// Whether the action needs a password.
    pub fn needs_password(&self) -> bool {
        matches!(self, Action::Add { .. } | Action::Passwd { .. })
    }

    fn to_line(&self) -> String {
        match self {
            Action::Add { name, apop } => format!("add {name} {}", u8::from(*apop)),
            Action::Passwd { name } => format!("passwd {name}"),
            Action::Del { name } => format!("del {name}"),
            Action::List => "list".to_owned(),
            Action::ReloadAliases => "reload-aliases".to_owned(),
            Action::QueueList => "queue-list".to_owned(),
            Action::QueueShow { id } => format!("queue-show {id}"),
            Action::QueueFlush => "queue-flush".to_owned(),
            Action::QueueDelete { id } => format!("queue-delete {id}"),
        }
    }

    fn from_line(line: &str) -> Option<Action> {
        let w: Vec<&str> = line.split(' ').collect();
        match w.as_slice() {
            ["add", n, a] => Some(Action::Add {
                name: (*n).to_owned(),
                apop: *a == "1",
            }),
            ["passwd", n] => Some(Action::Passwd {
                name: (*n).to_owned(),
            }),
            ["del", n] => Some(Action::Del {
                name: (*n).to_owned(),
            }),
            ["list"] => Some(Action::List),
            ["reload-aliases"] => Some(Action::ReloadAliases),
            ["queue-list"] => Some(Action::QueueList),
            ["queue-flush"] => Some(Action::QueueFlush),
            ["queue-show", id] => id.parse().ok().map(|id| Action::QueueShow { id }),
            ["queue-delete", id] => id.parse().ok().map(|id| Action::QueueDelete { id }),
            _ => None,
        }
    }
}

/// The admin socket of the data folder `data`.
pub fn socket_path(data: &Path) -> PathBuf {
    data.join("admin.sock")
}

/// Applies `action` (with `password` where it needs one) to the store and
/// the accounts; returns what to tell the administrator.
pub fn apply(
    store: &Store,
    accounts: &RwLock<Accounts>,
    action: &Action,
    password: Option<&str>,
) -> Result<String, String> {
    let user = |name: &str| UserName::new(name).map_err(|e| format!("user {name:?}: {e}"));
    let password = || match password {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err("empty password".to_owned()),
    };
    if let Some(text) = queue_action(store, action) {
        return text;
    }
    let mut acc = accounts
        .write()
        .map_err(|_| "accounts unavailable".to_owned())?;
    match action {
        Action::Add { name, apop } => {
            let u = user(name)?;
            if acc.map.contains_key(u.as_str()) || store.has_user(&u) {
                return Err(format!(
                    "user {u} exists; change its password with `user passwd {u}`"
                ));
            }
            acc.add(u.as_str(), password()?, *apop)?;
            acc.save().map_err(|e| format!("accounts: {e}"))?;
            store.create_user(&u).map_err(|e| format!("store: {e}"))?;
            Ok(format!("added {u}"))
        }
        Action::Passwd { name } => {
            let u = user(name)?;
            let apop = match acc.map.get(u.as_str()) {
                Some(a) => a.apop.is_some(),
                None => return Err(format!("no user {u}")),
            };
            acc.add(u.as_str(), password()?, apop)?;
            acc.save().map_err(|e| format!("accounts: {e}"))?;
            Ok(format!("new password for {u}"))
        }
        Action::Del { name } => {
            let u = user(name)?;
            if acc.map.remove(u.as_str()).is_none() && !store.has_user(&u) {
                return Err(format!("no user {u}"));
            }
            acc.save().map_err(|e| format!("accounts: {e}"))?;
            store.delete_user(&u).map_err(|e| format!("store: {e}"))?;
            Ok(format!("deleted {u}"))
        }
        // Only a running server keeps aliases in memory (see [`handle`]).
        Action::ReloadAliases => Ok(String::new()),
        Action::List => Ok(store
            .users()
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join("\n")),
        Action::QueueList
        | Action::QueueShow { .. }
        | Action::QueueFlush
        | Action::QueueDelete { .. } => Err("not a user action".into()),
    }
}

fn state_word(s: &mailstore::queue::RecipientState) -> &'static str {
    use mailstore::queue::RecipientState::*;
    match s {
        Pending => "pending",
        Deferred => "deferred",
        Delivered => "delivered",
        Failed => "failed",
    }
}

/// The queue commands; `None` for the others.
fn queue_action(store: &Store, action: &Action) -> Option<Result<String, String>> {
    use mailstore::queue::rfc5322_date;
    let now = crate::smtp::now_secs();
    Some(match action {
        Action::QueueList => {
            let mut lines = Vec::new();
            for m in store.queue_list() {
                let rcpts: Vec<String> = m
                    .recipients
                    .iter()
                    .map(|r| format!("{} ({})", r.address, state_word(&r.state)))
                    .collect();
                lines.push(format!(
                    "{}\t{} octets\t{}\t<{}>\t{}",
                    m.id,
                    m.size,
                    rfc5322_date(m.arrival),
                    m.from,
                    rcpts.join(", ")
                ));
            }
            if lines.is_empty() {
                Ok("the queue is empty".into())
            } else {
                Ok(lines.join("\n"))
            }
        }
        Action::QueueShow { id } => match store.queue_get(*id) {
            None => Err(format!("no queued message {id}")),
            Some(m) => {
                let mut s = format!(
                    "id: {}\nfrom: <{}>\narrival: {}\nsize: {}\n",
                    m.id,
                    m.from,
                    rfc5322_date(m.arrival),
                    m.size
                );
                if let Some(e) = &m.envid {
                    s.push_str(&format!("envid: {e}\n"));
                }
                for r in &m.recipients {
                    s.push_str(&format!(
                        "recipient: <{}> {} attempts={} next={}{}\n",
                        r.address,
                        state_word(&r.state),
                        r.attempts,
                        rfc5322_date(r.next_attempt.max(now)),
                        r.last_reply
                            .as_ref()
                            .map(|l| format!(" last=\"{l}\""))
                            .unwrap_or_default()
                    ));
                }
                // The header of the message, for people to recognise it.
                if let Ok(mut f) = store.queue_open(*id) {
                    let mut head = vec![0u8; 8192];
                    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
                    let head = String::from_utf8_lossy(&head[..n]).into_owned();
                    let end = head.find("\r\n\r\n").unwrap_or(head.len());
                    s.push('\n');
                    s.push_str(&head[..end].replace("\r\n", "\n"));
                }
                Ok(s.trim_end().to_owned())
            }
        },
        Action::QueueFlush => store
            .queue_flush(now)
            .map(|n| format!("{n} recipients due now"))
            .map_err(|e| format!("store: {e}")),
        Action::QueueDelete { id } => match store.queue_delete(*id) {
            Ok(true) => Ok(format!("deleted {id}")),
            Ok(false) => Err(format!("no queued message {id}")),
            Err(e) => Err(format!("store: {e}")),
        },
        _ => return None,
    })
}

/// Sends `action` to the server running on `data`, if one answers.
/// `None`: no server listens there.
pub fn send(
    data: &Path,
    action: &Action,
    password: Option<&str>,
) -> Option<Result<String, String>> {
    let mut s = UnixStream::connect(socket_path(data)).ok()?;
    let mut req = action.to_line();
    req.push('\n');
    if let Some(p) = password {
        req.push_str(p);
        req.push('\n');
    }
    if let Err(e) = s.write_all(req.as_bytes()) {
        return Some(Err(format!("admin socket: {e}")));
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut s, &mut bytes) {
        return Some(Err(format!("admin socket: {e}")));
    }
    let reply = String::from_utf8_lossy(&bytes);
    Some(match reply.split_once('\n') {
        Some(("ok", rest)) => Ok(rest.trim_end().to_owned()),
        Some(("err", rest)) => Err(rest.trim_end().to_owned()),
        _ => Err(format!("admin socket: unexpected reply {reply:?}")),
    })
}

/// Binds the admin socket of a running server (owner only) and answers it
/// on a thread of its own, so store work never runs on the async workers.
pub fn listen(data: &Path, ctx: std::sync::Arc<crate::routing::Ctx>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data);
    // The store is ours (its lock is held): a socket file left here is a
    // crashed server's.
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Err(e) = handle(conn, &ctx) {
                    tracing::warn!(%e, "admin request failed");
                }
                ctx.refresh_users();
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// One request from the admin socket: the action line, then the password
/// line where the action needs one. Answers `ok\n…` or `err\n…`.
pub fn handle(stream: UnixStream, ctx: &crate::routing::Ctx) -> std::io::Result<()> {
    // One request, bounded in size and time: a client that sends nothing
    // (or too much) cannot hold the admin thread.
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(std::io::Read::take(stream.try_clone()?, 4096));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let answer = match Action::from_line(line.trim_end_matches(['\r', '\n'])) {
        None => Err(format!("unknown request {line:?}")),
        Some(Action::ReloadAliases) => ctx
            .aliases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reload_now()
            .map(|()| "aliases reloaded".to_owned())
            .map_err(|e| format!("aliases: {e}")),
        Some(action) => {
            let mut pw = String::new();
            if action.needs_password() {
                reader.read_line(&mut pw)?;
            }
            let pw = pw.trim_end_matches(['\r', '\n']);
            let r = apply(
                &ctx.store,
                &ctx.accounts,
                &action,
                action.needs_password().then_some(pw),
            );
            if action == Action::QueueFlush {
                ctx.queue_wake.notify_one();
            }
            r
        }
    };
    let mut stream = stream;
    match answer {
        Ok(text) => write!(stream, "ok\n{text}\n"),
        Err(text) => write!(stream, "err\n{text}\n"),
    }
}
