//! Where a recipient's mail goes: the shared server context and the one
//! routing decision every protocol handler asks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};

use mailstore::{Store, UserName};
use smtp_proto::{ForwardPath, Host};

use crate::accounts::Accounts;

/// Where mail for one recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A user of this server.
    Local(UserName),
    /// A domain of this server, but no such user.
    UnknownLocal,
    /// Another domain: relay (for authenticated senders) or refuse.
    Foreign,
}

/// What every connection of the server shares.
#[derive(Debug)]
pub struct Ctx {
    /// The mail store.
    pub store: Store,
    /// The accounts.
    pub accounts: RwLock<Accounts>,
    /// The mail domains served (the first is the host name).
    pub domains: Vec<String>,
    /// This server's name.
    pub hostname: String,
    /// Connections open per peer address.
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Ctx {
    /// Whether `domain` is one of ours.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|x| x.eq_ignore_ascii_case(domain))
    }

    /// Where mail for `to` goes. `<Postmaster>` (RFC 5321 §4.5.1) is the
    /// user `postmaster`, else the first-start user `demo`.
    pub fn route(&self, to: &ForwardPath<'_>) -> Route {
        let user = |name: &str| UserName::new(name).ok().filter(|u| self.store.has_user(u));
        match to {
            ForwardPath::Postmaster => user("postmaster")
                .or_else(|| user("demo"))
                .map_or(Route::UnknownLocal, Route::Local),
            ForwardPath::Mailbox(m) => match &m.host {
                Host::Domain(d) if self.is_local_domain(d.as_str()) => {
                    user(m.local_part.as_str()).map_or(Route::UnknownLocal, Route::Local)
                }
                _ => Route::Foreign,
            },
        }
    }
}
