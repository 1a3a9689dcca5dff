//! Delivery planning for an MTA's sending side (RFC 5321 §5.1, RFC 7505),
//! pure: from the MX and address records the caller resolved, the ordered
//! list of addresses to try; and how each attempt's outcome moves the
//! delivery on.
//!
//! ```
//! use smtp_proto::delivery::{MxAnswer, Mx, plan, AddrAnswer, addresses};
//! use std::net::IpAddr;
//!
//! let mx = MxAnswer::Records(vec![
//!     Mx::new(20, "backup.example.org"),
//!     Mx::new(10, "mx1.example.org"),
//!     Mx::new(10, "mx2.example.org"),
//! ]);
//! // The caller's random source shuffles equal preferences.
//! let hosts = plan("example.org", mx, &mut |n| n - 1).unwrap();
//! assert_eq!(hosts.len(), 3);
//! assert_eq!(hosts[2].host, "backup.example.org");
//! // The caller resolves each host (A and AAAA).
//! let resolve = |host: &str| {
//!     let ip: IpAddr = match host {
//!         "mx1.example.org" => "192.0.2.1",
//!         "mx2.example.org" => "192.0.2.2",
//!         _ => "192.0.2.9",
//!     }
//!     .parse()
//!     .unwrap();
//!     AddrAnswer::Addrs(vec![ip])
//! };
//! let hops = addresses(&hosts, resolve, 5).unwrap();
//! assert_eq!(hops.len(), 3);
//! assert!(hops[2].last && hops[2].host == "backup.example.org");
//! ```

use std::net::IpAddr;

use crate::EnhancedCode;

/// Postfix's limit on the addresses tried per delivery
/// (`smtp_mx_address_limit`).
pub const DEFAULT_ADDRESS_LIMIT: usize = 5;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is tried first.
    pub preference: u16,
    /// The exchange's name (`.` for RFC 7505's null MX).
    pub host: String,
}

impl Mx {
    /// An MX record; the host's trailing dot and case do not matter.
    pub fn new(preference: u16, host: impl Into<String>) -> Mx {
        Mx {
            preference,
            host: host.into(),
        }
    }
}

/// What the MX lookup for a domain answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// MX records.
    Records(Vec<Mx>),
    /// The domain exists but has no MX record (NODATA): its own address
    /// is the implicit MX (RFC 5321 §5.1).
    NoRecords,
    /// The domain does not exist (NXDOMAIN).
    NoSuchDomain,
    /// The lookup failed (SERVFAIL, timeout): try again later.
    Failed(String),
}

/// What the address lookup of a host answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrAnswer {
    /// Its addresses (A and AAAA, in the order to try).
    Addrs(Vec<IpAddr>),
    /// No such host, or no address.
    NoSuchHost,
    /// The lookup failed.
    Failed(String),
}

/// A host to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host name (lower case, no trailing dot).
    pub host: String,
    /// Its MX preference (0 for an implicit MX).
    pub preference: u16,
    /// The domain itself, because it has no MX record.
    pub implicit: bool,
}

/// Why a delivery cannot go on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Permanent (bounce) or temporary (retry later).
    pub permanent: bool,
    /// The status for the DSN (RFC 3463).
    pub status: EnhancedCode,
    /// For people.
    pub reason: String,
}

impl Failure {
    fn new(status: EnhancedCode, reason: impl Into<String>) -> Failure {
        Failure {
            permanent: status.class() == 5,
            status,
            reason: reason.into(),
        }
    }
}

/// An enhanced code for the constants below, checked when they are built.
#[allow(clippy::panic)] // evaluated at compile time
const fn status(class: u8, subject: u16, detail: u16) -> EnhancedCode {
    match EnhancedCode::new(class, subject, detail) {
        Some(c) => c,
        None => panic!("invalid enhanced status code"),
    }
}

/// RFC 7505: the domain accepts no mail.
const NULL_MX: EnhancedCode = status(5, 1, 10);
/// Bad destination system address (no such domain or host).
const NO_SUCH_DESTINATION: EnhancedCode = status(5, 1, 2);
/// Directory server failure (DNS).
const DNS_FAILED: EnhancedCode = status(4, 4, 3);

fn normal(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The hosts to try for `domain`, in order: by preference, equal
/// preferences shuffled with `random` (given `n`, a number in `0..n`), each
/// host once. A null MX (RFC 7505: one record, preference 0, host `.`) is a
/// permanent 5.1.10 failure; no such domain a permanent 5.1.2; a failed
/// lookup a temporary 4.4.3.
pub fn plan(
    domain: &str,
    mx: MxAnswer,
    random: &mut dyn FnMut(usize) -> usize,
) -> Result<Vec<Target>, Failure> {
    let mut records = match mx {
        MxAnswer::NoRecords => {
            return Ok(vec![Target {
                host: normal(domain),
                preference: 0,
                implicit: true,
            }]);
        }
        MxAnswer::NoSuchDomain => {
            return Err(Failure::new(
                NO_SUCH_DESTINATION,
                format!("{domain}: no such domain"),
            ));
        }
        MxAnswer::Failed(why) => {
            return Err(Failure::new(
                DNS_FAILED,
                format!("{domain}: DNS lookup failed: {why}"),
            ));
        }
        MxAnswer::Records(r) => r,
    };
    if records.len() == 1 && normal(&records[0].host).is_empty() {
        return Err(Failure::new(
            NULL_MX,
            format!("{domain} accepts no mail (null MX)"),
        ));
    }
    // A "." among other records is ignored (RFC 7505 §3).
    records.retain(|r| !normal(&r.host).is_empty());
    if records.is_empty() {
        return Err(Failure::new(
            NULL_MX,
            format!("{domain} accepts no mail (null MX)"),
        ));
    }
    records.sort_by_key(|r| r.preference);
    // Shuffle each run of equal preference (Fisher-Yates, caller's dice).
    let mut i = 0;
    while i < records.len() {
        let mut j = i;
        while j < records.len() && records[j].preference == records[i].preference {
            j += 1;
        }
        for k in (i + 1..j).rev() {
            let pick = i + random(k - i + 1).min(k - i);
            records.swap(k, pick);
        }
        i = j;
    }
    let mut out: Vec<Target> = Vec::new();
    for r in records {
        let host = normal(&r.host);
        if !out.iter().any(|t| t.host == host) {
            out.push(Target {
                host,
                preference: r.preference,
                implicit: false,
            });
        }
    }
    Ok(out)
}

/// One address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The host it belongs to (for TLS name checks and logs).
    pub host: String,
    /// The address.
    pub ip: IpAddr,
    /// Whether it is the last one that will be tried.
    pub last: bool,
}

/// The addresses to try, in order, at most `limit` (Postfix: 5), each once;
/// `resolve` gives a host's addresses. When no host has an address: a
/// temporary 4.4.3 failure if a lookup failed, else a permanent 5.1.2
/// ("no such host").
pub fn addresses(
    targets: &[Target],
    mut resolve: impl FnMut(&str) -> AddrAnswer,
    limit: usize,
) -> Result<Vec<Hop>, Failure> {
    let mut out: Vec<Hop> = Vec::new();
    let mut failed = None;
    for t in targets {
        if out.len() >= limit {
            break;
        }
        match resolve(&t.host) {
            AddrAnswer::Addrs(ips) => {
                for ip in ips {
                    if out.len() < limit && !out.iter().any(|h| h.ip == ip) {
                        out.push(Hop {
                            host: t.host.clone(),
                            ip,
                            last: false,
                        });
                    }
                }
            }
            AddrAnswer::NoSuchHost => {}
            AddrAnswer::Failed(why) => failed = Some(format!("{}: {why}", t.host)),
        }
    }
    if let Some(h) = out.last_mut() {
        h.last = true;
        return Ok(out);
    }
    Err(match failed {
        Some(why) => Failure::new(DNS_FAILED, format!("address lookup failed: {why}")),
        None => Failure::new(NO_SUCH_DESTINATION, "no address for any mail exchanger"),
    })
}

/// How one attempt at one address went, for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Could not connect, TLS failed where required, the connection broke.
    ConnectionFailed,
    /// The server answered this reply code (to the greeting, MAIL, RCPT or
    /// the data).
    Reply(u16),
}

/// What to do with a recipient after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered: done.
    Delivered,
    /// Try the next address (a connection failure or a 4xx at a non-final
    /// one).
    TryNext,
    /// Keep it for a later retry (temporary, and no address left).
    Retry,
    /// Give up: bounce (5xx).
    Bounce,
}

/// The recipient's next step after `attempt` at `hop` (RFC 5321 §5.1: a
/// connection failure or a 4xx at one MX moves on to the next; 5xx is
/// final).
pub fn next(attempt: Attempt, hop: &Hop) -> Next {
    match attempt {
        Attempt::Reply(c) if (200..300).contains(&c) => Next::Delivered,
        Attempt::Reply(c) if (500..600).contains(&c) => Next::Bounce,
        _ if hop.last => Next::Retry,
        _ => Next::TryNext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(t: &[Target]) -> Vec<&str> {
        t.iter().map(|t| t.host.as_str()).collect()
    }

    #[test]
    fn hosts_go_by_preference_with_ties_shuffled_by_the_callers_dice() {
        let mx = || {
            MxAnswer::Records(vec![
                Mx::new(20, "C.example."),
                Mx::new(10, "a.example"),
                Mx::new(10, "b.example"),
                Mx::new(10, "a.example."),
                Mx::new(30, "."),
            ])
        };
        let first = plan("example", mx(), &mut |_| 0).unwrap();
        let last = plan("example", mx(), &mut |n| n - 1).unwrap();
        // Duplicates and the stray "." go; C is last either way.
        assert_eq!(first.len(), 3);
        assert_eq!(first[2].host, "c.example");
        assert_eq!(last[2].host, "c.example");
        let mut a = hosts(&first)[..2].to_vec();
        a.sort();
        assert_eq!(a, vec!["a.example", "b.example"]);
        // Every order of the tie can come out.
        let orders: std::collections::BTreeSet<Vec<String>> = (0..4usize)
            .map(|seed| {
                let mut s = seed;
                plan("example", mx(), &mut |n| {
                    s = s.wrapping_mul(7).wrapping_add(3);
                    s % n
                })
                .unwrap()
                .iter()
                .map(|t| t.host.clone())
                .collect()
            })
            .collect();
        assert!(orders.len() >= 2, "{orders:?}");
    }

    #[test]
    fn no_mx_null_mx_no_domain_and_dns_errors() {
        let t = plan("Example.ORG.", MxAnswer::NoRecords, &mut |_| 0).unwrap();
        assert_eq!(
            t,
            vec![Target {
                host: "example.org".into(),
                preference: 0,
                implicit: true
            }]
        );
        let e = plan(
            "example.org",
            MxAnswer::Records(vec![Mx::new(0, ".")]),
            &mut |_| 0,
        )
        .unwrap_err();
        assert!(e.permanent && e.status.to_string() == "5.1.10", "{e:?}");
        let e = plan("nope.example", MxAnswer::NoSuchDomain, &mut |_| 0).unwrap_err();
        assert!(e.permanent && e.status.to_string() == "5.1.2");
        let e = plan("x.example", MxAnswer::Failed("SERVFAIL".into()), &mut |_| 0).unwrap_err();
        assert!(!e.permanent && e.status.to_string() == "4.4.3");
    }

    #[test]
    fn addresses_are_capped_deduplicated_and_failures_classified() {
        let targets = plan(
            "example",
            MxAnswer::Records(
                (1..=4)
                    .map(|i| Mx::new(i, format!("mx{i}.example")))
                    .collect(),
            ),
            &mut |_| 0,
        )
        .unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let hops = addresses(
            &targets,
            |h| match h {
                "mx1.example" => AddrAnswer::Addrs(vec![ip("192.0.2.1"), ip("2001:db8::1")]),
                "mx2.example" => AddrAnswer::NoSuchHost,
                "mx3.example" => AddrAnswer::Addrs(vec![ip("192.0.2.1"), ip("192.0.2.3")]),
                _ => AddrAnswer::Addrs(vec![ip("192.0.2.4"), ip("192.0.2.5")]),
            },
            4,
        )
        .unwrap();
        let got: Vec<String> = hops.iter().map(|h| h.ip.to_string()).collect();
        assert_eq!(
            got,
            vec!["192.0.2.1", "2001:db8::1", "192.0.2.3", "192.0.2.4"]
        );
        assert!(hops[3].last && !hops[2].last);
        let e = addresses(&targets, |_| AddrAnswer::Failed("timeout".into()), 5).unwrap_err();
        assert!(!e.permanent);
        let e = addresses(&targets, |_| AddrAnswer::NoSuchHost, 5).unwrap_err();
        assert!(e.permanent);
    }

    proptest::proptest! {
        /// Whatever the records and the dice: preferences never go down,
        /// each named host comes once, and nothing else comes.
        #[test]
        fn plans_keep_preference_order_and_every_host_once(
            records in proptest::collection::vec((0u16..5, 0u8..6), 1..12),
            dice in proptest::collection::vec(0usize..100, 0..20),
        ) {
            let mx: Vec<Mx> = records.iter().map(|(p, h)| Mx::new(*p, format!("h{h}.example"))).collect();
            let mut d = dice.into_iter().cycle();
            let t = plan("example", MxAnswer::Records(mx.clone()), &mut |n| d.next().unwrap_or(0) % n).unwrap();
            proptest::prop_assert!(t.windows(2).all(|w| w[0].preference <= w[1].preference));
            let mut names: Vec<&str> = t.iter().map(|t| t.host.as_str()).collect();
            let before = names.len();
            names.sort();
            names.dedup();
            proptest::prop_assert_eq!(names.len(), before);
            let mut want: Vec<String> = mx.iter().map(|m| m.host.clone()).collect();
            want.sort();
            want.dedup();
            proptest::prop_assert_eq!(names, want.iter().map(String::as_str).collect::<Vec<_>>());
            // A host listed twice takes its best preference.
            for target in &t {
                let best = mx.iter().filter(|m| m.host == target.host).map(|m| m.preference).min();
                proptest::prop_assert_eq!(Some(target.preference), best);
            }
        }
    }

    #[test]
    fn outcomes_move_the_recipient_on() {
        let hop = |last| Hop {
            host: "mx".into(),
            ip: "192.0.2.1".parse().unwrap(),
            last,
        };
        assert_eq!(next(Attempt::Reply(250), &hop(false)), Next::Delivered);
        assert_eq!(next(Attempt::Reply(451), &hop(false)), Next::TryNext);
        assert_eq!(next(Attempt::Reply(451), &hop(true)), Next::Retry);
        assert_eq!(next(Attempt::ConnectionFailed, &hop(false)), Next::TryNext);
        assert_eq!(next(Attempt::ConnectionFailed, &hop(true)), Next::Retry);
        assert_eq!(next(Attempt::Reply(550), &hop(false)), Next::Bounce);
    }
}
