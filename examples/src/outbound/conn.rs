//! One outgoing SMTP connection: [`smtp_proto::client::Session`] over a
//! tokio socket, with the STARTTLS swap and the write timeouts the session
//! cannot apply itself.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use smtp_proto::Reply;
use smtp_proto::client::{ClientError, Config, Envelope, Event, Output, SendError, Session};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

type Plain = Compat<tokio::net::TcpStream>;

enum Io {
    Plain(Plain),
    Tls(Box<futures_rustls::client::TlsStream<Plain>>),
    Swapping,
}

/// Why a connection could not be used.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed or timed out (connect, write, TLS handshake).
    Io(io::Error),
    /// The session ended the connection.
    Session(ClientError),
    /// The connection closed without a reason.
    Closed,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Session(e) => write!(f, "{e}"),
            ConnError::Closed => f.write_str("connection closed"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A connected, greeted client.
pub struct Conn {
    session: Session,
    io: Io,
    buf: Vec<u8>,
    write_timeout: Duration,
    handshake_timeout: Duration,
    /// What the TLS handshake is for, when STARTTLS is asked.
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    closed: bool,
    events: std::collections::VecDeque<Event>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

async fn timed<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out after {limit:?}"),
        )),
    }
}

impl Conn {
    /// Connects and waits for the greeting and the EHLO reply.
    pub async fn open(
        addr: SocketAddr,
        config: Arc<Config>,
        connect_timeout: Duration,
        bind: Option<std::net::IpAddr>,
    ) -> Result<Conn, ConnError> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(ip) = bind.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let sock = timed(connect_timeout, "connect", socket.connect(addr)).await?;
        let _ = sock.set_nodelay(true);
        let write_timeout = config.timeouts.data_block;
        let mut c = Conn {
            session: Session::new(config, Instant::now()),
            io: Io::Plain(sock.compat()),
            buf: vec![0; 16 * 1024],
            write_timeout,
            handshake_timeout: Duration::from_secs(60),
            tls: None,
            closed: false,
            events: Default::default(),
        };
        match c.next_event().await? {
            Event::Ready => Ok(c),
            other => Err(c.unexpected(other)),
        }
    }

    fn unexpected(&mut self, e: Event) -> ConnError {
        match e {
            Event::Failed(e) => ConnError::Session(e),
            _ => ConnError::Closed,
        }
    }

    /// The session, for its capabilities and state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// STARTTLS with this TLS configuration, checking the certificate for
    /// `name` as the configuration says. `Ok(false)`: the server refused
    /// (the connection goes on in plaintext).
    pub async fn start_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<bool, ConnError> {
        self.tls = Some((config, name));
        self.session
            .start_tls(Instant::now())
            .map_err(|_| ConnError::Closed)?;
        match self.next_event().await? {
            Event::Ready => Ok(true),
            Event::StartTlsRefused(_) => Ok(false),
            other => Err(self.unexpected(other)),
        }
    }

    /// Authenticates; the server's refusal comes back as `Ok(Err(reply))`.
    pub async fn authenticate(
        &mut self,
        exchange: sasl::client::ClientExchange,
    ) -> Result<Result<(), Reply<'static>>, ConnError> {
        if let Err(e) = self.session.authenticate(Instant::now(), exchange) {
            return Err(ConnError::Io(io::Error::other(e.to_string())));
        }
        match self.next_event().await? {
            Event::Authenticated(r) => Ok(r),
            other => Err(self.unexpected(other)),
        }
    }

    /// One transaction: the envelope, then the body from `body` (chunks in
    /// order, read as the session wants them). The replies, one per
    /// recipient; a connection that failed mid-way gives 4.4.2 replies and
    /// the connection error afterwards from the next call.
    pub async fn send(
        &mut self,
        envelope: Envelope,
        body: &mut (dyn BodySource + Send),
    ) -> Result<Result<Vec<Reply<'static>>, SendError>, ConnError> {
        if let Err(e) = self.session.send(Instant::now(), envelope) {
            return Ok(Err(e));
        }
        loop {
            match self.next_event().await? {
                Event::SendBody => {
                    // A failure on the way ends the body; the session's
                    // Completed (with 4.4.2 for what has no reply) follows.
                    let mut whole = true;
                    while let Some(chunk) = body.next_chunk().await? {
                        while !self.session.wants_body() && self.events.is_empty() && !self.closed {
                            self.flush().await?;
                            self.read_once().await?;
                            self.flush_out().await?;
                        }
                        if self.session.send_body(Instant::now(), &chunk).is_err() {
                            whole = false;
                            break;
                        }
                        self.flush_out().await?;
                    }
                    if whole {
                        let _ = self.session.finish_body(Instant::now());
                    }
                }
                Event::Completed(r) => return Ok(Ok(r)),
                other => return Err(self.unexpected(other)),
            }
        }
    }

    /// QUIT, and the close (errors do not matter any more).
    pub async fn quit(mut self) {
        self.session.quit(Instant::now());
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while !self.closed {
                if self.next_event().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Writes what the session has to say; events wait in order.
    async fn flush_out(&mut self) -> Result<(), ConnError> {
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Transmit(b) => self.write(&b).await?,
                Output::Event(e) => {
                    tracing::debug!(event = ?e, "smtp client");
                    self.events.push_back(e);
                }
                Output::StartTls => self.handshake().await?,
                // Only IMAP sessions compress.
                Output::Compress => {}
                Output::Closed => {
                    self.closed = true;
                    let _ = self.flush().await;
                }
            }
        }
        Ok(())
    }

    async fn write(&mut self, b: &Bytes) -> io::Result<()> {
        let limit = self.write_timeout;
        match &mut self.io {
            Io::Plain(s) => timed(limit, "write", s.write_all(b)).await,
            Io::Tls(s) => timed(limit, "write", s.write_all(b)).await,
            Io::Swapping => Err(io::Error::other("switching to TLS")),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        let limit = self.write_timeout;
        match &mut self.io {
            Io::Plain(s) => timed(limit, "write", s.flush()).await,
            Io::Tls(s) => timed(limit, "write", s.flush()).await,
            Io::Swapping => Ok(()),
        }
    }

    async fn handshake(&mut self) -> Result<(), ConnError> {
        self.flush().await?;
        let Some((config, name)) = self.tls.clone() else {
            return Err(ConnError::Io(io::Error::other(
                "STARTTLS without a TLS configuration",
            )));
        };
        let Io::Plain(plain) = std::mem::replace(&mut self.io, Io::Swapping) else {
            return Err(ConnError::Io(io::Error::other("STARTTLS twice")));
        };
        let connect = futures_rustls::TlsConnector::from(config).connect(name, plain);
        let stream = timed(self.handshake_timeout, "TLS handshake", connect).await?;
        self.io = Io::Tls(Box::new(stream));
        let _ = self.session.tls_established(Instant::now());
        Ok(())
    }

    /// Reads once (or waits for the session's deadline).
    async fn read_once(&mut self) -> Result<(), ConnError> {
        if self.closed {
            return Err(ConnError::Closed);
        }
        let deadline = self.session.poll_timeout();
        let read = async {
            match &mut self.io {
                Io::Plain(s) => s.read(&mut self.buf).await,
                Io::Tls(s) => s.read(&mut self.buf).await,
                Io::Swapping => Err(io::Error::other("switching to TLS")),
            }
        };
        let outcome = match deadline {
            Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), read)
                .await
                .ok(),
            None => Some(read.await),
        };
        let now = Instant::now();
        match outcome {
            None => self.session.handle_timeout(now),
            Some(Ok(0)) | Some(Err(_)) => self.session.handle_eof(now),
            Some(Ok(n)) => {
                tracing::trace!(read = %String::from_utf8_lossy(&self.buf[..n]), "smtp client");
                let (session, buf) = (&mut self.session, &self.buf);
                session.handle_input(now, &buf[..n]);
            }
        }
        Ok(())
    }

    /// The next event, writing and reading as needed.
    async fn next_event(&mut self) -> Result<Event, ConnError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            self.flush_out().await?;
            if !self.events.is_empty() {
                continue;
            }
            self.flush().await?;
            if self.closed {
                return Err(ConnError::Closed);
            }
            self.read_once().await?;
        }
    }
}

/// Where a message body comes from, in chunks.
pub trait BodySource {
    /// The next chunk, or `None` at the end.
    fn next_chunk(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Option<Bytes>>> + Send + '_>>;
}

/// A body held in memory, sent in one chunk.
#[derive(Debug)]
pub struct InMemory(pub Option<Bytes>);

impl BodySource for InMemory {
    fn next_chunk(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Option<Bytes>>> + Send + '_>>
    {
        let chunk = self.0.take();
        Box::pin(async move { Ok(chunk) })
    }
}

/// A body read from a blocking reader on a blocking thread, a chunk at a
/// time (bounded memory for any size).
pub struct Streamed {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streamed")
    }
}

impl Streamed {
    /// Reads `reader` in 256 KiB chunks, two ahead at most.
    pub fn new(mut reader: Box<dyn std::io::Read + Send>) -> Streamed {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            loop {
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0;
                while n < buf.len() {
                    match reader.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
                if n == 0 {
                    return;
                }
                buf.truncate(n);
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return;
                }
            }
        });
        Streamed { rx }
    }
}

impl BodySource for Streamed {
    fn next_chunk(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Option<Bytes>>> + Send + '_>>
    {
        Box::pin(async move { self.rx.recv().await.transpose() })
    }
}
