//! Who is online: sessions per identity, presence, routing, rate windows and
//! cool-downs. One mutex, held only for short, non-blocking sections: frames
//! are handed to sessions with `try_send`, so a slow reader can never stall
//! the registry or another user.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use blindrelay_wire::{FRAME_LEN, GoodbyeCode, Message, PeerEvent, Routed, Target, UserName};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::warn;

use crate::SECURITY;
use crate::config::Config;
use crate::rate::SlidingWindow;

/// One encoded frame, shared by every recipient of a fan-out.
pub(crate) type Outbound = Arc<[u8; FRAME_LEN]>;

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

#[derive(Default)]
struct Inner {
    online: HashMap<UserName, Identity>,
    known: HashSet<UserName>,
    windows: HashMap<UserName, SlidingWindow>,
    cooldowns: HashMap<UserName, Instant>,
    next_id: u64,
}

/// Result of a successful login.
pub(crate) struct Login {
    pub id: u64,
    /// Everyone else online, with their certificates.
    pub directory: Vec<(UserName, Vec<u8>)>,
}

/// Why a login was refused.
pub(crate) enum Refused {
    CoolDown(Duration),
}

/// What happened to one routed fragment.
#[derive(Debug, Default)]
pub(crate) struct RouteReport {
    pub delivered: u16,
    pub offline: Vec<UserName>,
    pub unknown: Vec<UserName>,
}

pub(crate) struct Registry {
    inner: Mutex<Inner>,
    max_sessions: usize,
    rate_max: usize,
    rate_window: Duration,
    cooldown: Duration,
}

fn encode(msg: &Message) -> Option<Outbound> {
    match msg.encode() {
        Ok(b) => Some(Arc::from(b)),
        Err(e) => {
            warn!(error = %e, "could not encode an outgoing frame");
            None
        }
    }
}

impl Registry {
    pub(crate) fn new(cfg: &Config) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_sessions: cfg.max_sessions_per_identity,
            rate_max: usize::from(cfg.rate_max_messages),
            rate_window: Config::d(cfg.rate_window_ms),
            cooldown: Config::d(cfg.cooldown_ms),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in
        // a way that matters more than stopping the relay would.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session. Refused while the identity is cooling down (and
    /// the attempt restarts the cool-down). Evicts the oldest session past
    /// the per-identity cap. Tells everyone else when the identity comes
    /// online.
    pub(crate) fn login(
        &self,
        name: &UserName,
        cert_der: Vec<u8>,
        serial: Vec<u8>,
        tx: mpsc::Sender<Outbound>,
        kill: KillSender,
        now: Instant,
    ) -> Result<Login, Refused> {
        let mut g = self.lock();
        if let Some(until) = g.cooldowns.get(name).copied() {
            if until > now {
                g.cooldowns.insert(name.clone(), now + self.cooldown);
                return Err(Refused::CoolDown(self.cooldown));
            }
            g.cooldowns.remove(name);
        }
        g.next_id += 1;
        let id = g.next_id;
        g.known.insert(name.clone());
        let directory: Vec<(UserName, Vec<u8>)> = g
            .online
            .iter()
            .filter(|(n, _)| *n != name)
            .map(|(n, i)| (n.clone(), i.cert_der.clone()))
            .collect();
        let first = !g.online.contains_key(name);
        let handle = SessionHandle {
            id,
            tx,
            kill,
            serial,
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
        if first {
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
        Ok(Login { id, directory })
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

    /// Counts one message against the identity's window. False: over the limit.
    pub(crate) fn allow_message(&self, name: &UserName, now: Instant) -> bool {
        let mut g = self.lock();
        let (max, window) = (self.rate_max, self.rate_window);
        g.windows
            .entry(name.clone())
            .or_insert_with(|| SlidingWindow::new(max, window))
            .hit(now)
    }

    /// Starts the identity's cool-down.
    pub(crate) fn start_cooldown(&self, name: &UserName, now: Instant) {
        self.lock()
            .cooldowns
            .insert(name.clone(), now + self.cooldown);
    }

    /// Forwards one fragment to every session of every recipient except the
    /// sending session itself.
    pub(crate) fn route(&self, from_session: u64, routed: Routed) -> RouteReport {
        let mut report = RouteReport::default();
        let g = self.lock();
        let recipients: Vec<UserName> = match &routed.target {
            Target::Users(u) => u.clone(),
            Target::Everyone => g
                .online
                .keys()
                .filter(|n| **n != routed.sender)
                .cloned()
                .collect(),
        };
        let Some(frame) = encode(&Message::Deliver(routed)) else {
            return report;
        };
        for r in recipients {
            match g.online.get(&r) {
                Some(ident) => {
                    for s in ident.sessions.iter().filter(|s| s.id != from_session) {
                        if s.offer(&r, &frame) {
                            report.delivered = report.delivered.saturating_add(1);
                        }
                    }
                }
                None if g.known.contains(&r) => report.offline.push(r),
                None => report.unknown.push(r),
            }
        }
        report
    }

    /// Closes every session whose certificate serial is revoked.
    pub(crate) fn kill_revoked(&self, revoked: &HashSet<Vec<u8>>) -> usize {
        let g = self.lock();
        let mut n = 0;
        for (name, ident) in &g.online {
            for s in ident
                .sessions
                .iter()
                .filter(|s| revoked.contains(&s.serial))
            {
                warn!(target: SECURITY, identity = %name, session = s.id,
                    "certificate revoked while connected, disconnecting");
                s.kill(GoodbyeCode::Revoked, "certificate revoked");
                n += 1;
            }
        }
        n
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
