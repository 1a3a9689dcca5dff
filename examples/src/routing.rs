//! Where a recipient's mail goes: the shared server context and the one
//! routing decision every protocol handler asks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};

use mailstore::{Store, UserName};
use smtp_proto::{ForwardPath, Host};

use crate::accounts::Accounts;
use crate::aliases::Aliases;

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
    /// The aliases (read again when the file changes).
    pub aliases: Mutex<Aliases>,
    /// The mail domains served (the first is the host name).
    pub domains: Vec<String>,
    /// This server's name.
    pub hostname: String,
    /// Connections open per peer address.
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// The metrics.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The store's users, kept here so that routing never waits on the
    /// store's lock (refreshed by [`Ctx::refresh_users`]).
    pub users: RwLock<std::collections::HashSet<UserName>>,
    /// IMAP4rev1 `\Recent`: per mailbox (user, name, UIDVALIDITY), the
    /// lowest UID no session has seen yet (held in memory: after a restart
    /// every message is new once more).
    pub recent: Mutex<HashMap<(UserName, mailstore::MailboxName, u32), u32>>,
    /// Woken when mail is queued for the queue runner.
    pub queue_wake: tokio::sync::Notify,
    /// Octets each user may store (IMAP QUOTA, RFC 9208); 0: no limit.
    pub quota: u64,
}

impl Ctx {
    /// Whether `domain` is one of ours.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|x| x.eq_ignore_ascii_case(domain))
    }

    /// Where mail for `to` goes: a user of that name, else the user an
    /// alias names. `<Postmaster>` is `postmaster` at any of our domains
    /// (RFC 5321 §4.5.1).
    pub fn route(&self, to: &ForwardPath<'_>) -> Route {
        let local = match to {
            ForwardPath::Postmaster => "postmaster",
            ForwardPath::Mailbox(m) => match &m.host {
                Host::Domain(d) if self.is_local_domain(d.as_str()) => m.local_part.as_str(),
                _ => return Route::Foreign,
            },
        };
        self.local(local).map_or(Route::UnknownLocal, Route::Local)
    }

    /// Whether storing `more` octets for `user` would pass their quota
    /// (blocking: it sums the user's messages).
    pub fn over_quota(&self, user: &UserName, more: u64) -> bool {
        self.quota > 0
            && self
                .store
                .quota_usage(user)
                .is_ok_and(|used| used.saturating_add(more) > self.quota)
    }

    /// Reads the user list from the store again (after an administrative
    /// change; blocking).
    pub fn refresh_users(&self) {
        let users = self.store.users().into_iter().collect();
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = users;
    }

    fn local(&self, local_part: &str) -> Option<UserName> {
        let user = |name: &str| {
            UserName::new(name).ok().filter(|u| {
                self.users
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(u)
            })
        };
        user(local_part).or_else(|| {
            let mut aliases = self.aliases.lock().unwrap_or_else(|p| p.into_inner());
            aliases.refresh();
            aliases.resolve(local_part).and_then(user)
        })
    }
}
