//! MX and address lookups with hickory-resolver, turned into the answers
//! [`smtp_proto::delivery`] plans with.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use smtp_proto::delivery::{AddrAnswer, Mx, MxAnswer};

/// The resolver the queue runner asks.
#[derive(Clone)]
pub struct Dns {
    /// `Err`: why there is none (lookups then fail, temporarily).
    resolver: Result<TokioResolver, String>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dns")
    }
}

impl Dns {
    /// The system's resolver (`/etc/resolv.conf`), or the nameserver at
    /// `server` (UDP and TCP) when given.
    pub fn new(server: Option<SocketAddr>) -> Result<Dns, String> {
        let builder = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                ns.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => match Resolver::builder_tokio() {
                Ok(b) => b,
                // A machine without /etc/resolv.conf still serves local
                // mail; outgoing mail waits in the queue.
                Err(e) => {
                    let why = format!("system DNS configuration: {e}");
                    tracing::warn!(%why, "no resolver: outgoing mail will wait (or give --dns)");
                    return Ok(Dns { resolver: Err(why) });
                }
            },
        };
        let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(Dns {
            resolver: Ok(resolver),
        })
    }

    fn fqdn(name: &str) -> String {
        if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        }
    }

    /// The MX records of `domain`.
    pub async fn mx(&self, domain: &str) -> MxAnswer {
        let resolver = match &self.resolver {
            Ok(r) => r,
            Err(why) => return MxAnswer::Failed(why.clone()),
        };
        match resolver.mx_lookup(Self::fqdn(domain)).await {
            Ok(lookup) => {
                let mx: Vec<Mx> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(m) => Some(Mx::new(m.preference, m.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                if mx.is_empty() {
                    MxAnswer::NoRecords
                } else {
                    MxAnswer::Records(mx)
                }
            }
            Err(e) if e.is_nx_domain() => MxAnswer::NoSuchDomain,
            Err(e) if e.is_no_records_found() => MxAnswer::NoRecords,
            Err(e) => MxAnswer::Failed(e.to_string()),
        }
    }

    /// The A and AAAA records of `host` (IPv4 first).
    pub async fn addrs(&self, host: &str) -> AddrAnswer {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return AddrAnswer::Addrs(vec![ip]);
        }
        let resolver = match &self.resolver {
            Ok(r) => r,
            Err(why) => return AddrAnswer::Failed(why.clone()),
        };
        match resolver.lookup_ip(Self::fqdn(host)).await {
            Ok(l) => {
                let mut ips: Vec<IpAddr> = l.iter().collect();
                ips.sort_by_key(|ip| ip.is_ipv6());
                if ips.is_empty() {
                    AddrAnswer::NoSuchHost
                } else {
                    AddrAnswer::Addrs(ips)
                }
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => AddrAnswer::NoSuchHost,
            Err(e) => AddrAnswer::Failed(e.to_string()),
        }
    }
}
