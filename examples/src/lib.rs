//! Glue between mailkit's sans-IO sessions and real sockets.
//!
//! [`drive`] is the one socket loop: read, `handle_input`, drain
//! `poll_output`, write, timers, and the STARTTLS swap. It is generic over
//! the session (anything implementing [`session_core::Session`]: every
//! mailkit session, server or client, of every protocol) and over
//! `futures::io::{AsyncRead, AsyncWrite}`, with a [`Timer`] supplied by the
//! caller, so it runs on tokio (as the `mailserver` binary does) or any other
//! runtime.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod aliases;
pub mod deflate;
pub mod dkim;
pub mod imap;
pub mod listen;
pub mod metrics;
pub mod outbound;
pub mod pop3;
pub mod routing;
pub mod smtp;
pub mod spool;
pub mod tls;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use session_core::{Output, Session};

/// Sleeping, from whatever runtime the caller uses.
pub trait Timer {
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }
}

/// A connection that may be upgraded to TLS in place.
pub enum MaybeTls<IO> {
    /// Plaintext.
    Plain(IO),
    /// After STARTTLS (or implicit TLS).
    Tls(Box<futures_rustls::server::TlsStream<IO>>),
    /// Only during the swap.
    Swapping,
}

impl<IO> std::fmt::Debug for MaybeTls<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MaybeTls::Plain(_) => "Plain",
            MaybeTls::Tls(_) => "Tls",
            MaybeTls::Swapping => "Swapping",
        })
    }
}

fn swapping() -> io::Error {
    io::Error::other("connection is switching to TLS")
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MaybeTls::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            MaybeTls::Swapping => Poll::Ready(Err(swapping())),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MaybeTls::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            MaybeTls::Swapping => Poll::Ready(Err(swapping())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_flush(cx),
            MaybeTls::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
            MaybeTls::Swapping => Poll::Ready(Err(swapping())),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_close(cx),
            MaybeTls::Tls(io) => Pin::new(io.as_mut()).poll_close(cx),
            MaybeTls::Swapping => Poll::Ready(Ok(())),
        }
    }
}

impl<IO> MaybeTls<IO> {
    /// Whether the link is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// The negotiated protocol version and cipher suite as mail people read
    /// them in trace headers: `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384`.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            MaybeTls::Tls(t) => {
                let (_, conn) = t.get_ref();
                let version = match conn.protocol_version()? {
                    rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                    rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                    other => format!("{other:?}"),
                };
                Some(format!(
                    "{version} with cipher {}",
                    cipher_name(conn.negotiated_cipher_suite()?.suite())
                ))
            }
            _ => None,
        }
    }
}

/// The IANA name of a cipher suite (rustls names TLS 1.3 suites
/// `TLS13_…`; the registry calls them `TLS_…`).
pub fn cipher_name(suite: rustls::CipherSuite) -> String {
    let name = format!("{suite:?}");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// How long the socket loop waits on the peer for what the session cannot
/// time itself: the TLS handshake, and a write the peer does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoTimeouts {
    /// The whole TLS handshake after STARTTLS/STLS. Default 30 s.
    pub handshake: Duration,
    /// One write (with its flush) to a peer that stopped reading. Default
    /// 2 minutes.
    pub write: Duration,
}

impl Default for IoTimeouts {
    fn default() -> Self {
        IoTimeouts {
            handshake: Duration::from_secs(30),
            write: Duration::from_secs(120),
        }
    }
}

/// `fut`, or `TimedOut` after `limit`.
async fn within<T>(
    timer: &impl Timer,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let sleep = timer.sleep_until(Instant::now() + limit);
    futures::pin_mut!(fut);
    match futures::future::select(fut, sleep).await {
        futures::future::Either::Left((r, _)) => r,
        futures::future::Either::Right(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out after {limit:?}"),
        )),
    }
}

/// The socket loop's first read buffer.
const READ_MIN: usize = 2 * 1024;
/// The largest it grows to.
const READ_MAX: usize = 64 * 1024;

/// What woke the socket loop.
enum Wake {
    Read(io::Result<usize>),
    Timer,
    News,
}

/// Answers a session's events; may await (a database, the disk).
pub trait Handler<S: Session> {
    /// Handles one event; decisions are answered on `session` before
    /// returning (or later: the session waits).
    fn handle(
        &mut self,
        session: &mut S,
        tls: Option<&str>,
        event: S::Event,
    ) -> impl Future<Output = ()>;

    /// Resolves when something outside the connection has news for the
    /// session (mail delivered to the mailbox an IMAP client watches); the
    /// socket loop then calls [`Handler::deliver_news`]. Must be cancel
    /// safe. Default: never.
    fn news(&mut self) -> impl Future<Output = ()> {
        std::future::pending()
    }

    /// Gives the session what changed; also called before each read is
    /// handed to the session, so a command sees every change made before
    /// it arrived. Default: nothing.
    fn deliver_news(&mut self, _session: &mut S) {}
}

/// Runs one connection to its end: the socket loop. The session times the
/// peer's commands; `timeouts` bound the TLS handshake and every write, so a
/// peer that stalls either cannot hold the connection for ever.
pub async fn drive<S, IO, H>(
    session: &mut S,
    io: IO,
    tls: Option<Arc<rustls::ServerConfig>>,
    timer: &impl Timer,
    timeouts: IoTimeouts,
    handler: &mut H,
) -> io::Result<()>
where
    S: Session,
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handler<S>,
{
    let mut io = MaybeTls::Plain(io);
    let mut tls_text: Option<String> = None;
    // Reads start small, so an idle connection holds little, and double up
    // to 64 KiB while reads keep filling the buffer (a message arriving).
    let mut buf = vec![0u8; READ_MIN];
    // COMPRESS=DEFLATE, once the session switched it on.
    let mut deflate: Option<deflate::Deflate> = None;
    loop {
        // Drain everything the session has to say.
        let mut wrote = false;
        while let Some(output) = session.poll_output() {
            match output {
                Output::Transmit(b) => {
                    match deflate.as_mut() {
                        Some(z) => {
                            let c = z.compress(&b, false)?;
                            within(timer, timeouts.write, "write", io.write_all(&c)).await?;
                        }
                        None => within(timer, timeouts.write, "write", io.write_all(&b)).await?,
                    }
                    wrote = true;
                }
                Output::Compress => {
                    within(timer, timeouts.write, "write", io.flush()).await?;
                    deflate = Some(deflate::Deflate::new());
                    wrote = false;
                }
                Output::Event(e) => handler.handle(session, tls_text.as_deref(), e).await,
                Output::StartTls => {
                    within(timer, timeouts.write, "write", io.flush()).await?;
                    let Some(cfg) = tls.clone() else {
                        return Err(io::Error::other("STARTTLS without a TLS configuration"));
                    };
                    let MaybeTls::Plain(plain) = std::mem::replace(&mut io, MaybeTls::Swapping)
                    else {
                        return Err(io::Error::other("STARTTLS twice"));
                    };
                    let accept = futures_rustls::TlsAcceptor::from(cfg).accept(plain);
                    let stream = within(timer, timeouts.handshake, "TLS handshake", accept).await?;
                    io = MaybeTls::Tls(Box::new(stream));
                    tls_text = io.tls_description();
                    tracing::info!(tls = tls_text.as_deref().unwrap_or("?"), "tls established");
                    // The session asked for TLS, so this cannot be refused.
                    let _ = session.tls_established(Instant::now());
                    wrote = false;
                }
                Output::Closed => {
                    if let Some(z) = deflate.as_mut() {
                        let c = z.compress(&[], true)?;
                        within(timer, timeouts.write, "write", io.write_all(&c)).await?;
                    }
                    within(timer, timeouts.write, "write", io.flush()).await?;
                    let _ = within(timer, timeouts.write, "close", io.close()).await;
                    return Ok(());
                }
            }
        }
        if wrote {
            if let Some(z) = deflate.as_mut() {
                let c = z.compress(&[], true)?;
                within(timer, timeouts.write, "write", io.write_all(&c)).await?;
            }
            within(timer, timeouts.write, "write", io.flush()).await?;
        }
        // Wait for input or the session's deadline.
        let deadline = session.poll_timeout();
        if !session.wants_input() {
            // Back-pressure: only the timer, or the handler's news (a
            // decision it is answering in steps), moves us on.
            let Some(d) = deadline else {
                return Ok(());
            };
            let news_first = {
                let sleep = timer.sleep_until(d);
                let news = handler.news();
                futures::pin_mut!(sleep);
                futures::pin_mut!(news);
                matches!(
                    futures::future::select(sleep, news).await,
                    futures::future::Either::Right(_)
                )
            };
            if news_first {
                handler.deliver_news(session);
            } else {
                session.handle_timeout(Instant::now());
            }
            continue;
        }
        let read = io.read(&mut buf);
        let news = handler.news();
        let outcome = {
            futures::pin_mut!(read);
            futures::pin_mut!(news);
            let sleep = async {
                match deadline {
                    Some(d) => timer.sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            futures::pin_mut!(sleep);
            let other = futures::future::select(sleep, news);
            match futures::future::select(read, other).await {
                futures::future::Either::Left((r, _)) => Wake::Read(r),
                futures::future::Either::Right((futures::future::Either::Left(_), _)) => {
                    Wake::Timer
                }
                futures::future::Either::Right((futures::future::Either::Right(_), _)) => {
                    Wake::News
                }
            }
        };
        let now = Instant::now();
        match outcome {
            Wake::News => handler.deliver_news(session),
            Wake::Timer => session.handle_timeout(now),
            Wake::Read(Ok(0)) => session.handle_eof(now),
            Wake::Read(Ok(n)) => {
                handler.deliver_news(session);
                match deflate.as_mut() {
                    Some(z) => {
                        if let Err(e) =
                            z.decompress(&buf[..n], |piece| session.handle_input(now, piece))
                        {
                            session.handle_eof(now);
                            while session.poll_output().is_some() {}
                            return Err(e);
                        }
                    }
                    None => session.handle_input(now, &buf[..n]),
                }
                if n == buf.len() && buf.len() < READ_MAX {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            Wake::Read(Err(e)) => {
                session.handle_eof(now);
                while session.poll_output().is_some() {}
                return Err(e);
            }
        }
    }
}
