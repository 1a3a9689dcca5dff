//! A message arriving in pieces (SMTP DATA/BDAT, IMAP APPEND): held in
//! memory up to 128 KiB, then streamed to the store's spool off the async
//! workers, so memory per connection stays bounded whatever the size.

use std::io::{Cursor, Read};
use std::sync::Arc;

use mailstore::{Incoming, MailboxName, Store, UserName};

use crate::smtp::now_secs;

/// Bytes of a message held in memory before they go to the store's spool.
const SPOOL_BUFFER: usize = 128 * 1024;

/// A received message: in memory when it fit in the buffer, else in the
/// store's spool.
pub enum Body {
    /// Small: the bytes.
    Memory(Arc<[u8]>),
    /// Large: on disk.
    Spool(Incoming),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Memory(b) => write!(f, "Body::Memory({} octets)", b.len()),
            Body::Spool(m) => write!(f, "Body::Spool({m:?})"),
        }
    }
}

impl Body {
    /// `prefix`, then the message.
    pub fn reader(&mut self, prefix: &[u8]) -> Result<Box<dyn Read + Send>, mailstore::Error> {
        match self {
            Body::Memory(b) => Ok(Box::new(
                Cursor::new(prefix.to_vec()).chain(Cursor::new(b.clone())),
            )),
            Body::Spool(m) => m.reader(prefix),
        }
    }

    /// `prefix` + the message to every user's INBOX, one commit for all.
    pub fn deliver(
        self,
        store: &Store,
        prefix: &[u8],
        users: &[UserName],
    ) -> Vec<Result<mailstore::Delivery, mailstore::Error>> {
        match self {
            Body::Spool(m) => m.deliver(prefix, users),
            Body::Memory(b) => {
                let targets: Vec<(UserName, MailboxName)> = users
                    .iter()
                    .map(|u| (u.clone(), MailboxName::inbox()))
                    .collect();
                let prefix: Arc<[u8]> = prefix.into();
                let mut open = || -> Result<Box<dyn Read + Send>, mailstore::Error> {
                    Ok(Box::new(
                        Cursor::new(prefix.clone()).chain(Cursor::new(b.clone())),
                    ))
                };
                store.append_many(&targets, &mut open, now_secs(), &mailstore::Flags::new())
            }
        }
    }
}

/// Collects one message's pieces.
#[derive(Debug)]
pub struct Spooler {
    store: Store,
    /// The message being received, on disk.
    incoming: Option<Incoming>,
    /// Its bytes not written yet.
    buffer: Vec<u8>,
    /// Writing it failed: the message is refused at its end.
    failed: bool,
}

impl Spooler {
    /// Nothing received yet.
    pub fn new(store: Store) -> Self {
        Spooler {
            store,
            incoming: None,
            buffer: Vec::new(),
            failed: false,
        }
    }

    /// The next piece.
    pub async fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= SPOOL_BUFFER {
            self.spill().await;
        }
    }

    /// Drops what was received.
    pub async fn abort(&mut self) {
        self.buffer = Vec::new();
        self.failed = false;
        if let Some(m) = self.incoming.take() {
            // Removing the spool file is a file-system call.
            let _ = tokio::task::spawn_blocking(move || drop(m)).await;
        }
    }

    /// The whole message (`None` when writing it failed); ready for the
    /// next one.
    pub async fn finish(&mut self) -> Option<Body> {
        // A message that fit in the buffer is delivered from memory; a
        // larger one is already in the spool.
        let body = if self.incoming.is_some() {
            self.spill().await;
            self.incoming
                .take()
                .filter(|_| !std::mem::take(&mut self.failed))
                .map(Body::Spool)
        } else if std::mem::take(&mut self.failed) {
            None
        } else {
            Some(Body::Memory(std::mem::take(&mut self.buffer).into()))
        };
        self.buffer = Vec::new();
        body
    }

    /// Writes the buffered bytes to the spool, off the async workers.
    async fn spill(&mut self) {
        if self.failed {
            self.buffer.clear();
            return;
        }
        let store = self.store.clone();
        let incoming = self.incoming.take();
        let buffer = std::mem::take(&mut self.buffer);
        let r = tokio::task::spawn_blocking(move || {
            let mut m = match incoming {
                Some(m) => m,
                None => store.incoming(now_secs())?,
            };
            m.write(&buffer)?;
            Ok::<_, mailstore::Error>((m, buffer))
        })
        .await;
        match r {
            Ok(Ok((m, mut buffer))) => {
                self.incoming = Some(m);
                buffer.clear();
                self.buffer = buffer;
            }
            _ => self.failed = true,
        }
    }
}
