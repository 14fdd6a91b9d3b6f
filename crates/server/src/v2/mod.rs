//! The relay as MLS Delivery Service (protocol v2): the rules of
//! `blindrelay-ds` in memory, their effects in SQLite ([`store`]), and
//! which devices are online to be woken ([`DeliveryService`]).
//!
//! A request is decided and stored under one lock, then answered: a
//! device told ACCEPTED or UPLOADED can rely on it surviving a crash. The
//! lock is held for one SQLite transaction (`synchronous=FULL`); the
//! sessions take it only from `spawn_blocking` (requests, mailbox reads),
//! so no runtime thread waits on the disk. One device connection is served
//! by `session`.

mod admission;
mod check;
mod order;
mod published;
pub(crate) use admission::{Admission, NotNow, Over};
pub(crate) mod session;
pub(crate) mod store;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use blindrelay_ds::{
    Delivery, DeviceId, Directory, Down, DsError, Groups, Limits, Refusal, Request,
};
use blindrelay_wire::GoodbyeCode;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::SECURITY;
use crate::store::StoreError;
use store::DsDatabase;

/// Why a device session must end, sent to it from elsewhere.
pub(crate) type DeviceKill = watch::Sender<Option<(GoodbyeCode, String)>>;

struct State {
    directory: Directory,
    groups: Groups,
    db: DsDatabase,
}

struct Online {
    session: u64,
    serial: Vec<u8>,
    wake: Arc<Notify>,
    kill: Arc<DeviceKill>,
}

/// What a device session holds while logged in.
pub(crate) struct DeviceLogin {
    pub session: u64,
    pub wake: Arc<Notify>,
    pub kill: watch::Receiver<Option<(GoodbyeCode, String)>>,
}

/// The Delivery Service, shared by every device session.
pub(crate) struct DeliveryService {
    limits: Limits,
    max_sessions_per_device: usize,
    state: Mutex<State>,
    /// Reads mailbox bodies outside `state`'s lock (none for a database in
    /// memory: then they are read under it).
    reader: Option<Mutex<store::BodyReader>>,
    online: Mutex<HashMap<DeviceId, Vec<Online>>>,
    next_session: AtomicU64,
    /// Bumped whenever the relay loads a new CRL: each device session
    /// sends the new one when it sees the number change.
    crl_generation: AtomicU64,
    /// Set when the memory could not be rebuilt from the database after a
    /// failed write: from then on every request is refused (code 8), so
    /// that nothing the database does not hold is ever delivered.
    broken: std::sync::atomic::AtomicBool,
    /// When mailboxes were last swept for expired items (Unix seconds).
    last_expiry: AtomicU64,
    /// Each device's request budget, logins and cool-down, across its
    /// sessions (see `admission`).
    pub(crate) admission: admission::Admission,
    /// Checks commits and proposals against each group's public state
    /// (see `check`), trusting the CA and the relay's current CRL.
    observer: blindrelay_mls::Observer,
    /// The CA certificate (DER), to rebuild the observer's trust root
    /// when the CRL changes.
    ca_der: Vec<u8>,
}

/// How often the mailboxes are swept for expired items.
pub(crate) const EXPIRY_SWEEP_SECS: u64 = 60;

fn unix_now() -> u64 {
    blindrelay_net::unix_ms() / 1000
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DeliveryService {
    /// Rebuilds the service from `db`.
    pub(crate) fn new(
        mut db: DsDatabase,
        limits: Limits,
        max_sessions_per_device: usize,
        admission: admission::Admission,
        (ca_der, crl): (Vec<u8>, &blindrelay_pki::crl::CheckedCrl),
    ) -> Result<Self, crate::ServerError> {
        let loaded = db.load(limits, unix_now())?;
        let reader = db.take_reader().map(Mutex::new);
        let root = blindrelay_e2e::TrustRoot::new(ca_der.clone())
            .map_err(|e| crate::ServerError::TrustRoot(e.to_string()))?
            .with_checked_crl(crl.clone());
        let observer = blindrelay_mls::Observer::new(blindrelay_mls::Trust::new(root, unix_now()));
        Ok(Self {
            limits,
            max_sessions_per_device,
            state: Mutex::new(State {
                directory: loaded.directory,
                groups: loaded.groups,
                db,
            }),
            reader,
            online: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            crl_generation: AtomicU64::new(0),
            broken: std::sync::atomic::AtomicBool::new(false),
            last_expiry: AtomicU64::new(0),
            admission,
            observer,
            ca_der,
        })
    }

    /// The relay accepted a new CRL: later checks use it.
    pub(crate) fn set_crl(&self, crl: &blindrelay_pki::crl::CheckedCrl) {
        match blindrelay_e2e::TrustRoot::new(self.ca_der.clone()) {
            Ok(root) => self
                .observer
                .trust()
                .replace_root(root.with_checked_crl(crl.clone())),
            Err(e) => error!(error = %e, "the CA certificate no longer parses"),
        }
    }

    /// Registers a device session; `None` if the device has too many.
    pub(crate) fn login(&self, device: &DeviceId, serial: Vec<u8>) -> Option<DeviceLogin> {
        let mut online = lock(&self.online);
        let sessions = online.entry(device.clone()).or_default();
        if sessions.len() >= self.max_sessions_per_device {
            return None;
        }
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let (kill, rx) = watch::channel(None);
        sessions.push(Online {
            session,
            serial,
            wake: wake.clone(),
            kill: Arc::new(kill),
        });
        Some(DeviceLogin {
            session,
            wake,
            kill: rx,
        })
    }

    /// The session ended.
    pub(crate) fn logout(&self, device: &DeviceId, session: u64) {
        let mut online = lock(&self.online);
        if let Some(v) = online.get_mut(device) {
            v.retain(|o| o.session != session);
            if v.is_empty() {
                online.remove(device);
            }
        }
    }

    /// The relay loaded a new CRL: every device session sends it.
    pub(crate) fn crl_changed(&self) {
        self.crl_generation.fetch_add(1, Ordering::AcqRel);
        let online = lock(&self.online);
        for s in online.values().flatten() {
            s.wake.notify_one();
        }
    }

    /// Which CRL the sessions should have sent (see [`Self::crl_changed`]).
    pub(crate) fn crl_generation(&self) -> u64 {
        self.crl_generation.load(Ordering::Acquire)
    }

    /// Closes the sessions of revoked devices and forgets their
    /// KeyPackages, so that nobody can add them any more.
    pub(crate) fn kill_revoked(&self, revoked: &HashSet<Vec<u8>>) -> usize {
        let mut gone = Vec::new();
        {
            let online = lock(&self.online);
            for (device, sessions) in online.iter() {
                for s in sessions.iter().filter(|s| revoked.contains(&s.serial)) {
                    warn!(target: SECURITY, %device, session = s.session,
                        "device certificate revoked while connected, disconnecting");
                    let _ = s
                        .kill
                        .send(Some((GoodbyeCode::Revoked, "certificate revoked".into())));
                    gone.push(device.clone());
                }
            }
        }
        let mut st = lock(&self.state);
        for d in &gone {
            st.directory.forget(d);
            // Out of every group; a group left with no member is gone.
            let groups = st.groups.forget_device(d);
            let released = st.groups.mailboxes().take_released();
            if let Err(e) = st.db.forget(d, &groups, &released) {
                // The memory stays as it is (the device forgotten); what
                // the store still holds of its mailbox is dropped at the
                // next start-up if its bodies are gone.
                error!(error = %e, device = %d, "forgetting a revoked device");
            }
        }
        gone.len()
    }

    /// One-time KeyPackages held for `device`.
    pub(crate) fn key_packages(&self, device: &DeviceId) -> usize {
        lock(&self.state).directory.remaining(device)
    }

    /// Up to `max` items and (but for the first) `max_bytes` of
    /// `device`'s mailbox from `from_seq` on, read from the store, and the
    /// last sequence number looked at (an item whose body the store no
    /// longer has is passed over, not waited for).
    pub(crate) fn pending_from(
        &self,
        device: &DeviceId,
        from_seq: u64,
        max: (usize, usize),
    ) -> (Vec<(u64, Delivery)>, Option<u64>) {
        let st = lock(&self.state);
        let items = st
            .groups
            .mailboxes_ref()
            .pending_from(device, from_seq, max);
        let read = match &self.reader {
            Some(r) => {
                drop(st);
                lock(r).bodies(&items)
            }
            None => st.db.bodies(&items),
        };
        match read {
            Ok(bodies) => (bodies, items.last().map(|(s, _)| *s)),
            Err(e) => {
                // Nothing is sent; the session tries again at its next wake.
                error!(error = %e, %device, "reading mailbox bodies");
                (Vec::new(), None)
            }
        }
    }

    /// The largest request a device may send, in bytes (the chunk bound,
    /// 2.5 MiB): a commit and its Welcome together must fit in it.
    pub(crate) fn max_request_bytes(&self) -> usize {
        blindrelay_wire::MAX_DS_CHUNKS * blindrelay_wire::DS_CHUNK_MAX
    }

    /// Decides, stores and answers one request (blocking: call from
    /// `spawn_blocking`). `None` for an acknowledgement.
    pub(crate) fn handle(&self, device: &DeviceId, req: u32, request: Request) -> Option<Down> {
        let refused = |why, epoch| Down::Refused { req, why, epoch };
        let rules = |e: &DsError| Down::refused(req, e);
        // A submission is checked first, without the lock (see `check`).
        let (request, prepared) = match request {
            Request::Submit(sub) => match self.prepare(device, sub) {
                Ok(p) => (None, Some(p)),
                Err(check::CheckError::Rules(e)) => {
                    info!(%device, reason = %e, "v2 submission refused");
                    return Some(rules(&e));
                }
                Err(check::CheckError::Storage(e)) => {
                    error!(error = %e, "reading a group's public state failed");
                    return Some(refused(Refusal::Storage, 0));
                }
            },
            // Checked without the lock as well (see `published`).
            Request::Publish {
                group_id,
                epoch,
                group_info,
            } => return Some(self.publish(device, req, &group_id, epoch, &group_info)),
            Request::GroupInfo(group_id) => {
                return Some(self.serve_group_info(device, req, &group_id));
            }
            other => (Some(other), None),
        };
        let mut st = lock(&self.state);
        let st = &mut *st;
        let now = unix_now();
        st.groups.mailboxes().set_now(now);
        st.directory.set_now(now);
        self.expire(st, now);
        if self.broken.load(Ordering::Acquire) {
            return (!matches!(request, Some(Request::Ack(_)))).then_some(Down::Refused {
                req,
                why: Refusal::Storage,
                epoch: 0,
            });
        }
        if let Some(p) = prepared {
            return Some(self.order(st, device, req, p, now));
        }
        match request? {
            Request::Upload {
                one_time,
                last_resort,
            } => {
                let n = match st
                    .directory
                    .upload(device, one_time.clone(), last_resort.clone())
                {
                    Ok(n) => n,
                    Err(e) => {
                        info!(%device, reason = %e, "KeyPackage upload refused");
                        return Some(rules(&e));
                    }
                };
                if let Err(e) = st.db.upload(device, &one_time, last_resort.as_deref()) {
                    return Some(self.storage_failed(st, e, req));
                }
                Some(Down::Uploaded {
                    req,
                    key_packages: u32::try_from(n).unwrap_or(u32::MAX),
                })
            }
            Request::Claim(user) => {
                let claimed = st.directory.claim(&user, device);
                if let Err(e) = st.db.claim(&claimed) {
                    return Some(self.storage_failed(st, e, req));
                }
                Some(Down::Claimed {
                    req,
                    key_packages: claimed,
                })
            }
            // Answered above; never here.
            Request::Submit(_) | Request::Publish { .. } | Request::GroupInfo(_) => None,
            Request::Devices(user) => Some(Down::Devices {
                req,
                devices: st.directory.devices_of(&user).into_iter().collect(),
            }),
            Request::Ack(seq) => {
                st.groups.mailboxes().ack(device, seq);
                let released = st.groups.mailboxes().take_released();
                if let Err(e) = st.db.ack(&[(device.clone(), seq)], &released) {
                    // Nothing was deleted: the memory is rebuilt from the
                    // store, so that no body another device still points
                    // at on disk is deleted later. The items come again;
                    // the device refuses them as replays.
                    error!(error = %e, %device, "storing an acknowledgement");
                    self.reload(st);
                }
                None
            }
        }
    }

    /// Drops expired mailbox items (at most once per
    /// [`EXPIRY_SWEEP_SECS`]), in memory and in the store.
    fn expire(&self, st: &mut State, now: u64) {
        let last = self.last_expiry.load(Ordering::Relaxed);
        if now < last.saturating_add(EXPIRY_SWEEP_SECS) {
            return;
        }
        self.last_expiry.store(now, Ordering::Relaxed);
        let expired = st.groups.mailboxes().expire(now);
        if expired.is_empty() {
            return;
        }
        for (device, seq) in &expired {
            info!(%device, up_to = seq, "expired v2 mailbox items dropped");
        }
        // Every device's items and the bodies released, in one
        // transaction: a body goes only with the last item pointing at it.
        let released = st.groups.mailboxes().take_released();
        if let Err(e) = st.db.ack(&expired, &released) {
            error!(error = %e, "deleting expired items");
            self.reload(st);
        }
    }

    fn wake<'a>(&self, devices: impl IntoIterator<Item = &'a DeviceId>) {
        let online = lock(&self.online);
        for d in devices {
            for s in online.get(d).into_iter().flatten() {
                s.wake.notify_one();
            }
        }
    }

    /// The memory was changed but could not be stored: it is rebuilt from
    /// the database (which rolled back), and the device is told to retry.
    fn storage_failed(&self, st: &mut State, e: StoreError, req: u32) -> Down {
        error!(error = %e, "the v2 store failed; the request was refused");
        self.reload(st);
        Down::Refused {
            req,
            why: Refusal::Storage,
            epoch: 0,
        }
    }

    fn reload(&self, st: &mut State) {
        match st.db.load(self.limits, unix_now()) {
            Ok(l) => {
                // Body numbers never go back while the relay runs: a
                // session may be reading one outside the lock.
                let next_body = st.groups.mailboxes_ref().next_body();
                st.directory = l.directory;
                st.groups = l.groups;
                st.groups.mailboxes().restore_next_body(next_body);
            }
            Err(e) => {
                error!(error = %e, "rebuilding the v2 state from its store failed: every v2 request is refused until the relay restarts");
                self.broken.store(true, Ordering::Release);
            }
        }
    }
}
