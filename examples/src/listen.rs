//! Listeners: bind, limit connections in total and per peer address, and
//! hand each connection to its protocol's handler.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::routing::Ctx;

/// Runs one accepted connection to its end.
pub type RunFn = Arc<
    dyn Fn(
            tokio::net::TcpStream,
            SocketAddr,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Connection limits shared by every listener.
#[derive(Debug)]
pub struct Limits {
    /// Connections at once, in total.
    pub total: Arc<tokio::sync::Semaphore>,
    /// Every connection task, to wait for at shutdown.
    pub tracker: tokio_util::task::TaskTracker,
    /// Connections at once from one peer address.
    pub max_per_ip: usize,
}

/// 16 random bytes for a session (SASL nonces, APOP timestamp).
pub fn entropy() -> [u8; 16] {
    let mut e = [0u8; 16];
    let _ = getrandom::fill(&mut e);
    e
}

/// Binds, prints `listening <proto> <addr>`, and accepts connections with
/// the total and per-IP limits; over-limit peers get `busy` and are closed.
pub async fn listen(
    proto: &'static str,
    addr: SocketAddr,
    ctx: &Arc<Ctx>,
    limits: &Limits,
    busy: &'static [u8],
    run: RunFn,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {proto} {local}");
    let (ctx, total, tracker, max_ip) = (
        ctx.clone(),
        limits.total.clone(),
        limits.tracker.clone(),
        limits.max_per_ip,
    );
    Ok(tokio::spawn(async move {
        loop {
            let Ok((sock, peer)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            let permit = total.clone().try_acquire_owned().ok();
            let ip_ok = {
                let mut m = ctx.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                let n = m.entry(peer.ip()).or_insert(0);
                *n += 1;
                *n <= max_ip
            };
            let (ctx, run) = (ctx.clone(), run.clone());
            // Every line logged for this connection carries these fields.
            let span = tracing::info_span!("conn", proto, %peer);
            let task = async move {
                if permit.is_none() || !ip_ok {
                    use tokio::io::AsyncWriteExt;
                    tracing::warn!(reason = "connection limit", "connection refused");
                    let mut sock = sock;
                    let _ = sock.write_all(busy).await;
                } else {
                    tracing::info!("connection opened");
                    let _open = ctx.metrics.connection(proto);
                    let started = std::time::Instant::now();
                    run(sock, peer).await;
                    tracing::info!(
                        seconds = started.elapsed().as_secs_f64(),
                        "connection closed"
                    );
                }
                drop(permit);
                let mut m = ctx.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = m.get_mut(&peer.ip()) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&peer.ip());
                    }
                }
            };
            tracker.spawn(tracing::Instrument::instrument(task, span));
        }
    }))
}
