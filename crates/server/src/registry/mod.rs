//! Who is online: sessions per identity, presence, routing, rate windows and
//! cool-downs. One mutex, held only for short, non-blocking sections: frames
//! are handed to sessions with `try_send`, so a slow reader can never stall
//! the registry or another user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use blindrelay_wire::{GoodbyeCode, Message, PeerEvent, RoutedHeader, Target, UserName, Welcome};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::warn;

use crate::SECURITY;
use crate::config::Config;
use crate::outbound::{Outbound, SharedFrame, encode};
use crate::rate::{Budget, SlidingWindow};

/// The serials a CRL revokes (normalised, as `blindrelay_pki` reads them).
pub(crate) type Revoked = std::collections::HashSet<Vec<u8>>;

/// Why a session is being closed from outside its own task.
#[derive(Debug, Clone)]
pub(crate) struct Kill {
    pub code: GoodbyeCode,
    pub reason: String,
}

pub(crate) type KillSender = Arc<watch::Sender<Option<Kill>>>;

/// What the registry holds for one session.
pub(crate) struct SessionHandle {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    pub kill: KillSender,
    pub serial: Vec<u8>,
    /// The client understands CRL frames (it offered their ALPN protocol).
    pub wants_crl: bool,
}

impl SessionHandle {
    pub(crate) fn kill(&self, code: GoodbyeCode, reason: impl Into<String>) {
        self.kill.send_replace(Some(Kill {
            code,
            reason: reason.into(),
        }));
    }

    /// Queues a frame without waiting. A full queue means the client is not
    /// reading: it is disconnected rather than allowed to grow server memory.
    fn offer(&self, name: &UserName, frame: &Outbound) -> bool {
        match self.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(target: SECURITY, identity = %name, session = self.id,
                    "slow reader: outgoing queue full, disconnecting");
                self.kill(GoodbyeCode::TooSlow, "outgoing queue full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

struct Identity {
    sessions: Vec<SessionHandle>,
    cert_der: Vec<u8>,
}

/// A user who has logged in at least once (the directory).
#[derive(Clone)]
pub(crate) struct Known {
    pub cert_der: Vec<u8>,
    pub serial: Vec<u8>,
    /// This certificate is committed to the store (so a login with it
    /// need not write it again).
    pub recorded: bool,
}

#[derive(Default)]
struct Inner {
    online: HashMap<UserName, Identity>,
    known: HashMap<UserName, Known>,
    windows: HashMap<(UserName, Budget), SlidingWindow>,
    cooldowns: HashMap<UserName, Instant>,
    /// Serials in the current CRL: refused at login even if the handshake
    /// was verified against an older CRL.
    revoked: Revoked,
    /// The CA's current CRL, as the CRL frames every client gets in its
    /// login sequence (and again when it changes).
    crl_frames: Vec<Outbound>,
    next_id: u64,
}

/// What the handshake established about a session's client.
pub(crate) struct Credentials {
    /// Its certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate's serial, normalised.
    pub serial: Vec<u8>,
    /// It offered the ALPN protocol for CRL frames.
    pub wants_crl: bool,
}

/// Result of a successful login: the session's id and its outgoing queue,
/// already holding the login sequence.
pub(crate) struct Login {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    pub rx: mpsc::Receiver<Outbound>,
    /// The certificate differs from the one the relay knew for this name
    /// (or the name is new): the store must record it.
    pub new_cert: bool,
}

/// What an identity's budget says about one more frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charge {
    /// Within the budget (now counted).
    Allowed,
    /// Over the budget: a flood.
    OverBudget,
    /// The identity is in its cool-down (another of its sessions flooded).
    CoolingDown,
}

/// Why a login was refused.
pub(crate) enum Refused {
    CoolDown(Duration),
    Revoked,
}

/// What happened to one routed fragment.
#[derive(Debug, Default)]
pub(crate) struct RouteReport {
    pub delivered: u16,
    /// Known recipients (online or not): the message is stored for them.
    pub known: Vec<UserName>,
    pub unknown: Vec<UserName>,
    /// Every known recipient got the fragment live on at least one session.
    pub all_live: bool,
}

pub(crate) struct Registry {
    inner: Mutex<Inner>,
    max_sessions: usize,
    rate_max: usize,
    receipt_max: usize,
    ack_max: usize,
    login_max: usize,
    rate_window: Duration,
    cooldown: Duration,
    queue: usize,
}

impl Registry {
    pub(crate) fn new(cfg: &Config) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_sessions: cfg.max_sessions_per_identity,
            rate_max: usize::from(cfg.rate_max_messages),
            receipt_max: usize::from(cfg.receipt_rate_max),
            ack_max: usize::from(cfg.ack_rate_max),
            login_max: usize::from(cfg.login_rate_max),
            rate_window: Duration::from_millis(cfg.rate_window_ms),
            cooldown: Duration::from_millis(cfg.cooldown_ms),
            queue: cfg.outgoing_queue_frames,
        }
    }

    /// Loads the directory of known users (from the store, at startup).
    pub(crate) fn load_known(&self, users: Vec<(UserName, Vec<u8>)>) {
        let mut g = self.lock();
        for (name, cert_der) in users {
            let serial = blindrelay_pki::CertInfo::from_der(&cert_der)
                .map(|i| i.serial)
                .unwrap_or_default();
            g.known.insert(
                name,
                Known {
                    cert_der,
                    serial,
                    recorded: true,
                },
            );
        }
    }

    /// Records that `name`'s certificate `cert_der` is committed to the
    /// store (unless it has changed meanwhile).
    pub(crate) fn cert_recorded(&self, name: &UserName, cert_der: &[u8]) {
        let mut g = self.lock();
        if let Some(k) = g.known.get_mut(name)
            && k.cert_der == cert_der
        {
            k.recorded = true;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in
        // a way that matters more than stopping the relay would.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session. Refused while the identity is cooling down
    /// (with the time left; an attempt past the login budget restarts it). Evicts the oldest session past
    /// the per-identity cap. Tells everyone else when the identity comes
    /// online.
    pub(crate) fn login(
        &self,
        name: &UserName,
        creds: Credentials,
        welcome: &Welcome,
        kill: KillSender,
        now: Instant,
    ) -> Result<Login, Refused> {
        let Credentials {
            cert_der,
            serial,
            wants_crl,
        } = creds;
        let mut g = self.lock();
        if g.revoked.contains(&serial) {
            return Err(Refused::Revoked);
        }
        // Reconnecting in a loop makes every other user process a leave and
        // a join: logins have their own budget (refused ones included), and
        // exceeding it starts the cool-down like a message flood.
        let window = self.rate_window;
        let login_max = self.login_max;
        let allowed = g
            .windows
            .entry((name.clone(), Budget::Login))
            .or_insert_with(|| SlidingWindow::new(login_max, window))
            .hit(now);
        if !allowed {
            g.cooldowns.insert(name.clone(), now + self.cooldown);
            return Err(Refused::CoolDown(self.cooldown));
        }
        // A login within the budget during a cool-down is refused with the
        // time left, which it does not extend: a client that waits as told
        // gets in when the cool-down ends.
        if let Some(until) = g.cooldowns.get(name).copied() {
            if until > now {
                return Err(Refused::CoolDown(until - now));
            }
            g.cooldowns.remove(name);
        }
        g.next_id += 1;
        let id = g.next_id;
        // Unchanged and already committed: nothing to write. A write that
        // failed left `recorded` false, so the next login retries it.
        let new_cert = g
            .known
            .get(name)
            .is_none_or(|k| !k.recorded || k.cert_der != cert_der);
        g.known.insert(
            name.clone(),
            Known {
                cert_der: cert_der.clone(),
                serial: serial.clone(),
                recorded: !new_cert,
            },
        );
        // The login sequence is queued under the lock, before the session
        // becomes routable, so nothing can overtake it: Welcome, every other
        // user (online, then offline), DirectoryEnd.
        let mut hello: Vec<Message> = vec![Message::Welcome(welcome.clone())];
        let crl_frames = if wants_crl {
            g.crl_frames.clone()
        } else {
            Vec::new()
        };
        for (n, i) in g.online.iter().filter(|(n, _)| *n != name) {
            hello.push(Message::Peer {
                event: PeerEvent::Listed,
                name: n.clone(),
                cert_der: i.cert_der.clone(),
            });
        }
        for (n, k) in g
            .known
            .iter()
            .filter(|(n, _)| *n != name && !g.online.contains_key(*n))
        {
            hello.push(Message::Peer {
                event: PeerEvent::Offline,
                name: n.clone(),
                cert_der: k.cert_der.clone(),
            });
        }
        let listed = u16::try_from(hello.len() - 1).unwrap_or(u16::MAX);
        hello.push(Message::DirectoryEnd { count: listed });
        let (tx, rx) = mpsc::channel::<Outbound>(hello.len() + crl_frames.len() + self.queue);
        let mut frames = hello.iter().filter_map(encode);
        // Welcome, the CRL, the directory: a client checks the directory's
        // certificates against the newest CRL it can have.
        if let Some(welcome) = frames.next() {
            let _ = tx.try_send(welcome);
        }
        for f in crl_frames.into_iter().chain(frames) {
            let _ = tx.try_send(f);
        }
        let previous_cert = g.online.get(name).map(|i| i.cert_der.clone());
        let handle = SessionHandle {
            id,
            tx: tx.clone(),
            kill,
            serial,
            wants_crl,
        };
        let entry = g.online.entry(name.clone()).or_insert_with(|| Identity {
            sessions: Vec::new(),
            cert_der: cert_der.clone(),
        });
        entry.cert_der = cert_der.clone();
        entry.sessions.push(handle);
        while entry.sessions.len() > self.max_sessions {
            let oldest = entry.sessions.remove(0);
            tracing::info!(identity = %name, session = oldest.id, "session limit reached, closing the oldest session");
            oldest.kill(
                GoodbyeCode::SessionLimit,
                "a newer session of this identity replaced this one",
            );
        }
        // Announce a new user, and also a user whose new session presents a
        // different certificate (clients then see the key change).
        if previous_cert.as_ref() != Some(&cert_der) {
            let joined = Message::Peer {
                event: PeerEvent::Joined,
                name: name.clone(),
                cert_der,
            };
            if let Some(frame) = encode(&joined) {
                for (n, ident) in g.online.iter().filter(|(n, _)| *n != name) {
                    for s in &ident.sessions {
                        s.offer(n, &frame);
                    }
                }
            }
        }
        Ok(Login {
            id,
            tx,
            rx,
            new_cert,
        })
    }

    /// Removes a session. When it was the identity's last, tells everyone.
    pub(crate) fn logout(&self, name: &UserName, id: u64) {
        let mut g = self.lock();
        let Some(ident) = g.online.get_mut(name) else {
            return;
        };
        ident.sessions.retain(|s| s.id != id);
        if !ident.sessions.is_empty() {
            return;
        }
        g.online.remove(name);
        if let Some(frame) = encode(&Message::PeerLeft { name: name.clone() }) {
            for (n, ident) in &g.online {
                for s in &ident.sessions {
                    s.offer(n, &frame);
                }
            }
        }
    }

    /// Counts a frame costing `units` against the identity's window for
    /// `budget`.
    pub(crate) fn charge(
        &self,
        name: &UserName,
        budget: Budget,
        units: usize,
        now: Instant,
    ) -> Charge {
        let mut g = self.lock();
        if g.cooldowns.get(name).is_some_and(|until| *until > now) {
            return Charge::CoolingDown;
        }
        let max = match budget {
            Budget::Message => self.rate_max,
            Budget::Receipt => self.receipt_max,
            Budget::Ack => self.ack_max,
            Budget::Login => self.login_max,
        };
        let window = self.rate_window;
        let fits = g
            .windows
            .entry((name.clone(), budget))
            .or_insert_with(|| SlidingWindow::new(max, window))
            .hit_n(now, units);
        if fits {
            Charge::Allowed
        } else {
            Charge::OverBudget
        }
    }

    /// The identity went over a budget: starts its cool-down and closes
    /// every other session of it with `reason` (the session that flooded
    /// ends itself). Returns how many were closed.
    pub(crate) fn throttle(
        &self,
        name: &UserName,
        flooder: u64,
        now: Instant,
        reason: &str,
    ) -> usize {
        let mut g = self.lock();
        g.cooldowns.insert(name.clone(), now + self.cooldown);
        let Some(ident) = g.online.get(name) else {
            return 0;
        };
        let others: Vec<&SessionHandle> =
            ident.sessions.iter().filter(|s| s.id != flooder).collect();
        for s in &others {
            s.kill(GoodbyeCode::RateLimited, reason);
        }
        others.len()
    }

    /// Sessions a fragment to `target` from `sender` would reach now.
    pub(crate) fn fanout(&self, sender: &UserName, target: &Target) -> usize {
        let g = self.lock();
        match target {
            Target::Users(users) => users
                .iter()
                .filter_map(|u| g.online.get(u))
                .map(|i| i.sessions.len())
                .sum(),
            Target::Everyone => g
                .online
                .iter()
                .filter(|(n, _)| *n != sender)
                .map(|(_, i)| i.sessions.len())
                .sum(),
        }
    }

    /// Offers one fragment's DELIVER `frame` to every session of every
    /// recipient named by `header`, except the sending session itself.
    pub(crate) fn route(
        &self,
        from_session: u64,
        header: &RoutedHeader,
        frame: SharedFrame,
    ) -> RouteReport {
        let mut report = RouteReport::default();
        let g = self.lock();
        let recipients: Vec<UserName> = match &header.target {
            Target::Users(u) => u.clone(),
            Target::Everyone => g
                .online
                .keys()
                .filter(|n| **n != header.sender)
                .cloned()
                .collect(),
        };
        let frame = Outbound::Frame(frame);
        report.all_live = true;
        for r in recipients {
            let mut live = false;
            if let Some(ident) = g.online.get(&r) {
                for s in ident.sessions.iter().filter(|s| s.id != from_session) {
                    if s.offer(&r, &frame) {
                        report.delivered = report.delivered.saturating_add(1);
                        live = true;
                    }
                }
            }
            if g.known.contains_key(&r) {
                report.all_live &= live;
                report.known.push(r);
            } else {
                report.unknown.push(r);
            }
        }
        report
    }

    /// Drops rate windows and cool-downs that no longer matter.
    pub(crate) fn prune(&self, now: Instant) {
        let mut g = self.lock();
        g.windows.retain(|_, w| !w.is_idle(now));
        g.cooldowns.retain(|_, until| *until > now);
    }

    /// Number of identities online.
    pub(crate) fn online_count(&self) -> usize {
        self.lock().online.len()
    }
}

mod revocation;

#[cfg(test)]
mod tests;
