//! A filtering relay to copy from: takes mail on one port, adds a header,
//! and forwards it to a smarthost with `smtp_proto::client::Session`,
//! answering the sender only once the smarthost has answered — so without a
//! queue of its own it never acknowledges what the next hop did not take.
//! `relay LISTEN SMARTHOST` (default 127.0.0.1:2527 127.0.0.1:25).

use std::sync::Arc;
use std::time::Instant;

use smtp_proto::client::{self, Envelope};
use smtp_proto::server::{self, Event, Output, Session};
use smtp_proto::{Domain, FixedReply, Host, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HEADER: &[u8] = b"X-Relayed-By: mailkit-relay\r\n";
const UNAVAILABLE: FixedReply = FixedReply::new(451, Some((4, 4, 1)), "Next hop unavailable");
const PARTIAL: FixedReply =
    FixedReply::new(451, Some((4, 3, 0)), "Some recipients refused next hop");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:2527".into());
    let smarthost: Arc<str> = args.next().unwrap_or_else(|| "127.0.0.1:25".into()).into();
    let mut config = server::Config::new(Domain::new("localhost").expect("valid name"));
    config.extensions.starttls = false;
    config.limits.max_message_size = 10 * 1024 * 1024; // held in memory
    let config = Arc::new(config);
    let listener = TcpListener::bind(&listen).await?;
    println!("listening smtp {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        let (config, smarthost) = (config.clone(), smarthost.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(socket, config, &smarthost).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// One inbound connection: the server session's loop (as in
/// `minimal-smtp`), forwarding each whole message before answering it.
async fn connection(
    mut socket: TcpStream,
    config: Arc<server::Config>,
    smarthost: &str,
) -> std::io::Result<()> {
    let mut session = Session::new(config, Instant::now(), random());
    let mut body = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = session.poll_output() {
            match out {
                Output::Transmit(bytes) => socket.write_all(&bytes).await?,
                Output::Event(Event::MessageData(chunk)) => body.extend_from_slice(&chunk),
                Output::Event(Event::MessageAborted) => body.clear(),
                Output::Event(Event::Message(m)) => {
                    let mut message = HEADER.to_vec();
                    message.append(&mut body);
                    let envelope = Envelope {
                        from: m.from.clone(),
                        params: m.params.clone(),
                        recipients: m.recipients.clone(),
                    };
                    let verdict = match forward(smarthost, envelope, &message).await {
                        Ok(replies) if replies.iter().all(|r| r.code().is_positive()) => Ok(()),
                        Ok(replies) if replies.iter().all(|r| !r.code().is_positive()) => {
                            Err(replies[0].clone())
                        }
                        // Accepted for some only: a relay without a queue cannot bounce
                        // the rest, so the sender retries (the others may get it twice).
                        Ok(_) => Err(PARTIAL.into()),
                        Err(e) => {
                            eprintln!("smarthost: {e}");
                            Err(UNAVAILABLE.into())
                        }
                    };
                    let _ = match verdict {
                        Ok(()) => session.accept(m.token),
                        Err(r) => session.reject(m.token, r),
                    };
                }
                Output::Event(Event::Mail(m)) => {
                    let _ = session.accept(m.token);
                }
                Output::Event(Event::Rcpt(r)) => {
                    let _ = session.accept(r.token);
                }
                Output::Event(other) => {
                    if let Some(token) = other.into_token() {
                        let _ = session.reject(token, smtp_proto::replies::LOCAL_ERROR);
                    }
                }
                Output::Closed => return Ok(()),
                Output::StartTls | Output::Compress => return Ok(()), // not offered
            }
        }
        let n = match session.poll_timeout() {
            Some(deadline) => tokio::select! {
                r = socket.read(&mut buf) => r?,
                _ = tokio::time::sleep_until(deadline.into()) => { session.handle_timeout(Instant::now()); continue; }
            },
            None => socket.read(&mut buf).await?,
        };
        match n {
            0 => session.handle_eof(Instant::now()),
            n => session.handle_input(Instant::now(), &buf[..n]),
        }
    }
}

/// Sends one message to the smarthost: the client session's loop. Returns
/// one reply per recipient.
async fn forward(
    smarthost: &str,
    envelope: Envelope,
    message: &[u8],
) -> Result<Vec<Reply<'static>>, String> {
    let mut socket = TcpStream::connect(smarthost)
        .await
        .map_err(|e| e.to_string())?;
    let config = client::Config::new(Host::Domain(
        Domain::new("localhost").map_err(|e| e.to_string())?,
    ));
    let mut c = client::Session::new(Arc::new(config), Instant::now());
    let mut envelope = Some(envelope);
    let mut result = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = c.poll_output() {
            match out {
                client::Output::Transmit(bytes) => {
                    socket.write_all(&bytes).await.map_err(|e| e.to_string())?
                }
                // Greeted: the transaction (one here; a real MTA sends many per connection).
                client::Output::Event(client::Event::Ready) => {
                    if let Some(env) = envelope.take() {
                        c.send(Instant::now(), env).map_err(|e| e.to_string())?;
                    }
                }
                client::Output::Event(client::Event::SendBody) => {
                    c.send_body(Instant::now(), message)
                        .map_err(|e| e.to_string())?;
                    c.finish_body(Instant::now()).map_err(|e| e.to_string())?;
                }
                client::Output::Event(client::Event::Completed(replies)) => {
                    result = Some(replies);
                    c.quit(Instant::now());
                }
                client::Output::Event(client::Event::Failed(e)) if result.is_none() => {
                    return Err(e.to_string());
                }
                client::Output::Event(_) => {}
                client::Output::Closed | client::Output::StartTls | client::Output::Compress => {
                    return result.ok_or_else(|| "connection closed".to_owned());
                }
            }
        }
        read(&mut socket, &mut c, &mut buf).await;
    }
}

/// Waits for the server or the session's deadline, and tells the session.
async fn read(
    socket: &mut (impl AsyncRead + AsyncWrite + Unpin),
    c: &mut client::Session,
    buf: &mut [u8],
) {
    let r = match c.poll_timeout() {
        Some(deadline) => tokio::select! {
            r = socket.read(buf) => r,
            _ = tokio::time::sleep_until(deadline.into()) => { c.handle_timeout(Instant::now()); return; }
        },
        None => socket.read(buf).await,
    };
    match r {
        Ok(0) | Err(_) => c.handle_eof(Instant::now()),
        Ok(n) => c.handle_input(Instant::now(), &buf[..n]),
    }
}

/// Seeds the session's SASL nonces (unused: no AUTH).
fn random() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS random numbers");
    b
}
