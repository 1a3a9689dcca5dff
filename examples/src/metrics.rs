//! Prometheus metrics (`--metrics ADDR`): connections per protocol,
//! messages accepted and refused by reason, delivery and store-commit
//! latency, and the outgoing queue's size and age, served in the
//! OpenMetrics text format at `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A protocol label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Proto {
    /// `smtp`, `submission`, `lmtp`, `pop3`.
    pub proto: String,
}

/// A message outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `accepted` or `refused`.
    pub outcome: String,
    /// Why it was refused (empty when accepted).
    pub reason: String,
}

/// Every metric the server keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Family<Proto, Gauge>,
    connections: Family<Proto, Counter>,
    messages: Family<Outcome, Counter>,
    delivery_seconds: Histogram,
    commit_seconds: Histogram,
    queue_messages: Gauge,
    queue_oldest_seconds: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics at zero, registered under the `mailkit_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mailkit");
        let m = Metrics {
            connections_open: Family::default(),
            connections: Family::default(),
            messages: Family::default(),
            // 1 ms to about 33 s.
            delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            queue_messages: Gauge::default(),
            queue_oldest_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_open",
            "Connections open now",
            m.connections_open.clone(),
        );
        registry.register("connections", "Connections accepted", m.connections.clone());
        registry.register(
            "messages",
            "Messages at their end of data, by outcome",
            m.messages.clone(),
        );
        registry.register(
            "delivery_seconds",
            "From the end of data to the reply",
            m.delivery_seconds.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Durable store writes (spool to mailboxes and queue)",
            m.commit_seconds.clone(),
        );
        registry.register(
            "queue_messages",
            "Messages in the outgoing queue",
            m.queue_messages.clone(),
        );
        registry.register(
            "queue_oldest_seconds",
            "Age of the oldest queued message",
            m.queue_oldest_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A connection of `proto` opened; the guard closes it.
    pub fn connection(self: &Arc<Self>, proto: &str) -> ConnectionGuard {
        let label = Proto {
            proto: proto.to_owned(),
        };
        self.connections.get_or_create(&label).inc();
        self.connections_open.get_or_create(&label).inc();
        ConnectionGuard {
            metrics: self.clone(),
            label,
        }
    }

    /// A message's outcome; `reason` empty when accepted.
    pub fn message(&self, accepted: bool, reason: &str, took: Duration) {
        let outcome = if accepted { "accepted" } else { "refused" };
        self.messages
            .get_or_create(&Outcome {
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
        self.delivery_seconds.observe(took.as_secs_f64());
    }

    /// A durable store write.
    pub fn commit(&self, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// The text format, with the queue gauges from `store` at `now`.
    pub fn render(&self, store: &mailstore::Store, now: i64) -> String {
        let queued = store.queue_list();
        self.queue_messages.set(queued.len() as i64);
        let oldest = queued.iter().map(|m| m.arrival).min().unwrap_or(now);
        self.queue_oldest_seconds.set((now - oldest).max(0));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Marks a connection closed when dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
    label: Proto,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .get_or_create(&self.label)
            .dec();
    }
}

/// Serves `GET /metrics` on `addr` (prints `listening metrics ADDR`).
pub async fn serve(
    addr: std::net::SocketAddr,
    ctx: Arc<crate::routing::Ctx>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening metrics {local}");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                // One bounded request per connection, with a deadline.
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let ok = req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ");
                let (status, body) = if ok {
                    let c = ctx.clone();
                    let body = tokio::task::spawn_blocking(move || {
                        c.metrics.render(&c.store, crate::smtp::now_secs())
                    })
                    .await
                    .unwrap_or_default();
                    ("200 OK", body)
                } else {
                    ("404 Not Found", "not found\n".to_owned())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    }))
}
