//! One device taking part in protocol v2 over a [`Link`]: its MLS state
//! ([`blindrelay_mls::Device`]) driven by what the relay orders.
//!
//! The rules it follows (PROTOCOL.md 11.7):
//! * A commit is made, submitted, and applied only once the relay accepts
//!   it; if another commit won the epoch (STALE_EPOCH), it is dropped, the
//!   winner is processed from the mailbox, and the commit is made again
//!   (at most [`COMMIT_ATTEMPTS`] times).
//! * A mailbox item is acknowledged once processed (and so stored by
//!   mls-rs); one that MLS refuses (a replay after a crash, a forgery) is
//!   reported and acknowledged, never retried; one that fails locally (the
//!   device's storage) is not acknowledged, so it comes again.
//! * The relay's word is used for routing only: who sent a message, who
//!   is in a group and what epoch it is at come from MLS.
//! * KeyPackages are refilled when the relay holds fewer than
//!   [`KEY_PACKAGE_LOW`]; this person's devices that are not yet in a
//!   group this device is in are added to it ([`Member::adopt_own_devices`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blindrelay_ds::DeviceId;
use blindrelay_e2e::TrustRoot;
use blindrelay_mls::{Device, DeviceKey, MlsStore, Trust};
use blindrelay_net::unix_ms;
use blindrelay_pki::crl::CheckedCrl;
use blindrelay_pki::{DeviceName, PrivateKeyPem};
use blindrelay_wire::UserName;

pub use super::events::V2Event;
use super::link::Link;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::policy::Policy;
use crate::store::ClientStore;
use crate::store::sqlite::SqliteStore;

/// Tries at a commit when other members' commits keep winning.
pub const COMMIT_ATTEMPTS: usize = 8;
/// Below this many one-time KeyPackages at the relay, the device uploads
/// [`KEY_PACKAGE_BATCH`] more.
pub const KEY_PACKAGE_LOW: u32 = 10;
/// KeyPackages uploaded at a time.
pub const KEY_PACKAGE_BATCH: usize = 50;
/// At most one KeyPackage batch per this interval after the first, so
/// that a relay claiming to hold none cannot make the device mint keys
/// without end.
pub const KEY_PACKAGE_REFILL_INTERVAL: Duration = Duration::from_secs(60);
/// How often a connected device adds its person's new devices to its
/// groups and refreshes its leaf where it is due (see [`Member::sync`]).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// A device whose KeyPackage did not verify (revoked, expired, another
/// suite) is not claimed for again for this long: a device that can never
/// be added must not cost its person's other devices a KeyPackage every
/// minute.
pub const UNADDABLE_RETRY: Duration = Duration::from_secs(3600);
/// Most devices remembered as unaddable (the oldest is forgotten first).
pub const MAX_UNADDABLE: usize = 1_000;
/// How long a device stays behind in a group (a message from an epoch it
/// has not reached, the commit before it missing) before it re-joins by
/// external commit (see `rejoin`). An honest relay delivers a commit
/// before any message after it, so a gap that lasts is the relay's doing
/// (or a lost commit).
pub const REJOIN_AFTER: Duration = Duration::from_secs(30);
/// How long to wait for the winning commit after a STALE_EPOCH.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn device_id(user: &str, device: &str) -> Option<DeviceId> {
    Some(DeviceId {
        user: UserName::new(user).ok()?,
        device: DeviceName::new(device).ok()?,
    })
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Seeds a new link's pacing with the answers an earlier process of this
/// device kept (within one window of now).
fn seed_pacing(link: &mut Link, store: &dyn ClientStore) {
    let (now, wall) = (std::time::Instant::now(), unix_ms());
    let since = wall.saturating_sub(ms(link.pacing_window()));
    match store.window_since(since) {
        Ok(kept) => link.seed_pacing(kept.into_iter().map(|at_ms| {
            now.checked_sub(Duration::from_millis(wall.saturating_sub(at_ms)))
                .unwrap_or(now)
        })),
        Err(e) => tracing::warn!(error = %e, "reading the request budget's window failed"),
    }
}

/// Takes the exclusive lock on a device's state (`STATE.lock` beside it).
fn lock_state(state: &Path) -> Result<std::fs::File, ClientError> {
    let path = state.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| ClientError::Lock {
            path: path.clone(),
            error,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ClientError::DeviceLocked { path }),
        Err(std::fs::TryLockError::Error(error)) => Err(ClientError::Lock { path, error }),
    }
}

/// One device, connected.
pub struct Member {
    pub(super) device: Device,
    pub(super) link: Link,
    ca_der: Vec<u8>,
    crl: Option<CheckedCrl>,
    pub(super) me: DeviceId,
    /// Groups where a member asked to leave: this device commits there.
    pub(super) leave_requests: BTreeSet<Vec<u8>>,
    /// One-time KeyPackages the relay holds for this device, as far as
    /// this device knows (each Welcome it joins by used one).
    pub(super) key_packages_left: u32,
    /// When KeyPackages were last uploaded (at most one batch per
    /// [`KEY_PACKAGE_REFILL_INTERVAL`], whatever the relay says it holds).
    pub(super) last_upload: Option<tokio::time::Instant>,
    /// Events from settling pending commits at connect, for the next sync.
    pub(super) early_events: Vec<V2Event>,
    /// When the periodic work last ran (it runs in [`Member::sync`]).
    last_maintenance: tokio::time::Instant,
    /// How often it runs ([`MAINTENANCE_INTERVAL`] unless set).
    maintenance_every: Duration,
    /// Devices whose KeyPackage did not verify, and when (see
    /// [`UNADDABLE_RETRY`]).
    pub(super) unaddable: std::collections::BTreeMap<DeviceId, tokio::time::Instant>,
    /// Groups this device is behind in, and when it (next) tries to
    /// re-join each (see `rejoin`).
    pub(super) rejoin_at: std::collections::BTreeMap<Vec<u8>, tokio::time::Instant>,
    /// How long it waits before the first try
    /// ([`REJOIN_AFTER`] unless set).
    pub(super) rejoin_after: Duration,
    /// Groups whose GroupInfo the next sync publishes (after a re-join).
    pub(super) publish_due: BTreeSet<Vec<u8>>,
    /// A newer CRL was taken: the next sync commits the removal of every
    /// member it revokes, in every group (not at someone's next commit,
    /// days later).
    revocation_sweep: bool,
    /// The client's own database (the same as protocol v1's): the outbox,
    /// the history, and which message ids each sender's messages had.
    pub(super) store: Box<dyn ClientStore>,
    /// The client's windows (maximum age, live window, per-sender bound).
    pub(super) policy: Policy,
    /// When the outbox's next message may go, as the last flush found
    /// (see [`Member::outbox_due`]).
    pub(super) outbox_next: Option<tokio::time::Instant>,
    /// When the outbox was last swept for messages past the maximum age
    /// (see `outbox::OUTBOX_SWEEP_INTERVAL`).
    pub(super) last_outbox_sweep: Option<tokio::time::Instant>,
    /// Receipts owed for members' messages shown (see `receipts`).
    pub(super) owed: super::owed::Owed,
    /// Held while this process uses the device's state: a second process
    /// (a `send` beside a running `chat`) would reuse its sending keys.
    _lock: std::fs::File,
}

impl Member {
    /// Opens the device's MLS state at `state` (created if new) and
    /// connects with its certificate.
    pub async fn connect(cfg: &ClientConfig, state: &Path) -> Result<Self, ClientError> {
        let pkcs8 = cfg.load_key()?;
        let pem = blindrelay_pki::encrypted_key::to_pem(&pkcs8).map_err(ClientError::DeviceKey)?;
        let key = DeviceKey::from_pem(&PrivateKeyPem::new(pem))?;
        let cert = blindrelay_pki::store::read_cert_der(&cfg.cert)?;
        let ca_der = blindrelay_pki::store::read_cert_der(&cfg.ca)?;
        let mut crl = None;
        if let Some(der) = cfg.read_crl() {
            crl = Some(CheckedCrl::signed(&der?, &ca_der).map_err(ClientError::Crl)?);
        }
        let lock = lock_state(state)?;
        let client_store: Box<dyn ClientStore> = match &cfg.state {
            Some(path) => Box::new(SqliteStore::open(path)?),
            None => Box::new(SqliteStore::in_memory()?),
        };
        let store = MlsStore::open(state)?;
        // The newest CRL this device verified before (from the relay) is
        // used if it is newer than crl.pem: without it, a device could not
        // start once crl.pem's next update has passed.
        if let Some(der) = store.crl()? {
            match CheckedCrl::signed(&der, &ca_der) {
                Ok(kept) if crl.as_ref().is_none_or(|c| kept.number() > c.number()) => {
                    crl = Some(kept);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the stored CRL does not verify; ignored"),
            }
        }
        let mut root = TrustRoot::new(ca_der.clone())?;
        if let Some(c) = &crl {
            root = root.with_checked_crl(c.clone());
        }
        let device = Device::open(key, cert, Trust::new(root, now()), store)?;
        let me = DeviceId {
            user: device.me().user().clone(),
            device: device.me().device().clone(),
        };
        let mut link = Link::connect(cfg, &pkcs8).await?;
        seed_pacing(&mut link, client_store.as_ref());
        let mut m = Self {
            device,
            link,
            ca_der,
            crl,
            me,
            leave_requests: BTreeSet::new(),
            key_packages_left: 0,
            last_upload: None,
            early_events: Vec::new(),
            last_maintenance: tokio::time::Instant::now(),
            maintenance_every: MAINTENANCE_INTERVAL,
            revocation_sweep: false,
            unaddable: std::collections::BTreeMap::new(),
            rejoin_at: std::collections::BTreeMap::new(),
            rejoin_after: REJOIN_AFTER,
            publish_due: BTreeSet::new(),
            store: client_store,
            policy: cfg.policy,
            outbox_next: None,
            last_outbox_sweep: None,
            owed: super::owed::Owed::default(),
            _lock: lock,
        };
        m.key_packages_left = m.link.key_packages;
        m.take_crls();
        m.settle_pending().await?;
        // Groups this device was behind in when it stopped: the wait for
        // a re-join starts again now.
        for g in m.device.group_ids()? {
            if matches!(m.device.behind(&g), Ok(Some(_))) {
                m.note_behind(&g);
            }
        }
        if m.key_packages_left < KEY_PACKAGE_LOW {
            m.upload_key_packages().await?;
        }
        Ok(m)
    }

    /// Connects again after the link failed (the device's state, and the
    /// lock on it, stay as they are).
    pub async fn reconnect(&mut self, cfg: &ClientConfig) -> Result<(), ClientError> {
        self.keep_pacing();
        let pkcs8 = cfg.load_key()?;
        let mut link = Link::connect(cfg, &pkcs8).await?;
        // The relay's budget is the device's, across connections: what
        // was sent before the reconnect still counts.
        link.carry_pacing(&mut self.link);
        self.link = link;
        self.key_packages_left = self.link.key_packages;
        self.take_crls();
        self.settle_pending().await
    }

    /// Keeps the times of the relay's answers since the last call in the
    /// client's database (the relay's budget outlives this process).
    pub(super) fn keep_pacing(&mut self) {
        let answers = self.link.take_answers();
        if answers.is_empty() {
            return;
        }
        let (now, wall) = (std::time::Instant::now(), unix_ms());
        let window = ms(self.link.pacing_window());
        for at in answers {
            let at_ms = wall.saturating_sub(ms(now.saturating_duration_since(at)));
            if let Err(e) = self.store.window_add(at_ms, wall.saturating_sub(window)) {
                tracing::warn!(error = %e, "keeping the request budget's window failed");
                return;
            }
        }
    }

    /// Sets how often the periodic work runs (tests; a client keeps
    /// [`MAINTENANCE_INTERVAL`]).
    pub fn set_maintenance_interval(&mut self, every: Duration) {
        self.maintenance_every = every;
    }

    /// Sets how long the device stays behind in a group before it
    /// re-joins (tests; a client keeps [`REJOIN_AFTER`]).
    pub fn set_rejoin_after(&mut self, after: Duration) {
        self.rejoin_after = after;
        for at in self.rejoin_at.values_mut() {
            *at = (*at).min(tokio::time::Instant::now() + after);
        }
    }

    /// This device.
    pub fn me(&self) -> &DeviceId {
        &self.me
    }

    /// The MLS device (for what this driver does not wrap).
    pub fn device(&mut self) -> &mut Device {
        &mut self.device
    }

    /// Takes the CRLs the relay handed out: one the CA signed, current and
    /// not older than the one in use replaces it (every member's
    /// certificate is checked against it from now on).
    pub(super) fn take_crls(&mut self) {
        for der in self.link.take_crls() {
            let now = i64::try_from(now()).unwrap_or(i64::MAX);
            let Some(new) = super::crl::newer_crl(self.crl.as_ref(), &der, &self.ca_der, now)
            else {
                continue;
            };
            if let Ok(root) = TrustRoot::new(self.ca_der.clone()) {
                self.device
                    .trust()
                    .replace_root(root.with_checked_crl(new.clone()));
                self.revocation_sweep = true;
                // Kept for the next start (see `connect`).
                if let Err(e) = self.device.store().set_crl(new.der()) {
                    tracing::warn!(error = %e, "keeping the relay's newer CRL failed");
                }
                self.crl = Some(new);
            }
        }
    }

    /// The devices of a group, as the relay should route to them.
    pub(super) fn routing(&mut self, group: &[u8]) -> Result<BTreeSet<DeviceId>, ClientError> {
        Ok(self
            .device
            .members(group)?
            .into_iter()
            .filter_map(|m| device_id(&m.user, &m.device))
            .collect())
    }

    /// Processes what the relay delivers within `wait` (and whatever is
    /// already there after it, without waiting for more), then carries out
    /// leave requests, refills KeyPackages, and every [`MAINTENANCE_INTERVAL`] adds this person's
    /// new devices to its groups and refreshes its leaf where it is due.
    ///
    /// If the connection fails part way, the events already collected are
    /// kept and returned by the next call (after [`Member::reconnect`]):
    /// their items were processed and stored, and the relay's copies of
    /// them will be refused as replays.
    pub async fn sync(&mut self, wait: Duration) -> Result<Vec<V2Event>, ClientError> {
        let mut events = std::mem::take(&mut self.early_events);
        match self.sync_into(wait, &mut events).await {
            Ok(()) => Ok(events),
            Err(e) => {
                self.early_events = events;
                Err(e)
            }
        }
    }

    async fn sync_into(
        &mut self,
        wait: Duration,
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        self.device.trust().set_now(now());
        self.take_crls();
        let mut wait = wait;
        while let Some((seq, item)) = self.link.next_delivery(wait).await? {
            self.process(seq, item, events).await?;
            // Then what is already here, without waiting for more: a lone
            // message is shown as soon as it is processed.
            wait = Duration::ZERO;
        }
        // A CRL that came without a delivery after it.
        self.take_crls();
        let refill_due = self
            .last_upload
            .is_none_or(|t| t.elapsed() >= KEY_PACKAGE_REFILL_INTERVAL);
        if self.key_packages_left < KEY_PACKAGE_LOW && refill_due {
            self.upload_key_packages().await?;
        }
        if self.last_maintenance.elapsed() >= self.maintenance_every {
            self.last_maintenance = tokio::time::Instant::now();
            // Private keys of KeyPackages past their lifetime go, and
            // message ids past the client's maximum age.
            if let Err(e) = self.device.store().purge_expired_key_packages(now()) {
                tracing::warn!(error = %e, "purging expired KeyPackages failed");
            }
            let horizon = self.policy.replay_horizon(unix_ms());
            if let Err(e) = self.store.prune_seen(horizon) {
                tracing::warn!(error = %e, "forgetting old message ids failed");
            }
            // Failures here are not the connection's: said, then retried
            // at the next interval.
            match self.adopt_own_devices().await {
                Ok(ev) => events.extend(ev),
                Err(e) => tracing::warn!(error = %e, "adding this person's new devices failed"),
            }
            match self.update_due().await {
                Ok(ev) => events.extend(ev),
                Err(e) => tracing::warn!(error = %e, "the periodic self-update failed"),
            }
        }
        for g in std::mem::take(&mut self.leave_requests) {
            if self.device.epoch(&g).is_ok() {
                events.extend(self.update(&g).await?);
            }
        }
        if std::mem::take(&mut self.revocation_sweep) {
            self.remove_revoked(events).await;
        }
        self.rejoin_due(events).await?;
        for g in std::mem::take(&mut self.publish_due) {
            self.publish(&g).await;
        }
        self.send_receipts().await?;
        self.keep_pacing();
        Ok(())
    }

    /// Commits, in every group with a member whose certificate no longer
    /// passes (revoked by the CRL just taken), that member's removal.
    /// Failures are said and left to the next commit in that group.
    async fn remove_revoked(&mut self, events: &mut Vec<V2Event>) {
        let Ok(groups) = self.device.group_ids() else {
            return;
        };
        for g in groups {
            if !self.device.has_failing_members(&g).unwrap_or(false) {
                continue;
            }
            match self.update(&g).await {
                Ok(ev) => events.extend(ev),
                Err(e) => {
                    tracing::warn!(error = %e, "removing a revoked member failed; the next commit will")
                }
            }
        }
    }

    /// Waits until the relay has sent something ([`Link::readable`]); then
    /// [`Member::sync`] processes it. A front end awaits this beside its
    /// input rather than polling.
    pub async fn readable(&mut self) {
        self.link.readable().await;
    }

    /// Says goodbye to the relay.
    pub async fn close(mut self) {
        self.keep_pacing();
        self.link.close().await;
    }
}
