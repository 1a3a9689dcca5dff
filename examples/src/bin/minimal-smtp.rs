//! A minimal SMTP receiver to copy from: accepts every message and prints
//! it. No store, no TLS, no AUTH. `minimal-smtp [ADDR]` (default
//! 127.0.0.1:2526).

use std::sync::Arc;
use std::time::Instant;

use smtp_proto::Domain;
use smtp_proto::server::{Config, Event, Output, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2526".into());
    let mut config = Config::new(Domain::new("localhost").expect("valid name"));
    config.extensions.starttls = false;
    let config = Arc::new(config);
    let listener = TcpListener::bind(&addr).await?;
    println!("listening smtp {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(connection(socket, config.clone()));
    }
}

async fn connection(mut socket: TcpStream, config: Arc<Config>) -> std::io::Result<()> {
    let mut session = Session::new(config, Instant::now(), rand_bytes());
    let mut message = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Everything the session wants done, in order.
        while let Some(out) = session.poll_output() {
            match out {
                Output::Transmit(bytes) => socket.write_all(&bytes).await?,
                Output::Event(Event::Mail(m)) => session.accept(m.token).expect("pending"),
                Output::Event(Event::Rcpt(r)) => session.accept(r.token).expect("pending"),
                Output::Event(Event::MessageData(chunk)) => message.extend_from_slice(&chunk),
                Output::Event(Event::MessageAborted) => message.clear(),
                Output::Event(Event::Message(m)) => {
                    println!(
                        "--- message from {:?} to {} recipient(s)",
                        m.from,
                        m.recipients.len()
                    );
                    println!("{}", String::from_utf8_lossy(&message));
                    message.clear();
                    session.accept(m.token).expect("pending");
                }
                Output::Closed => return Ok(()),
                // Refuse any other decision, never leave it pending.
                Output::Event(other) => {
                    if let Some(token) = other.into_token() {
                        let _ = session.reject(token, smtp_proto::replies::LOCAL_ERROR);
                    }
                }
                // Neither is offered here: cannot happen.
                Output::StartTls | Output::Compress => return Ok(()),
            }
        }
        // Wait for the client, or for the session's timeout.
        let n = match session.poll_timeout() {
            Some(deadline) => {
                let sleep = tokio::time::sleep_until(deadline.into());
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

/// Seeds the session's SASL nonces (unused here: no AUTH).
fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS random numbers");
    b
}
