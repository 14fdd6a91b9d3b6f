//! The KeyPackage directory: what a device publishes so that others can
//! add it to a group while it is offline.
//!
//! Each device uploads one-time KeyPackages (each used for one Welcome,
//! then its private key is gone from the device) and one last-resort
//! KeyPackage, handed out only when the one-time ones are used up, so that
//! a device can always be added. The relay cannot check a KeyPackage (it
//! holds no CA and reads no MLS); the member who adds checks it.

use std::collections::{BTreeMap, VecDeque};

use blindrelay_wire::UserName;

use crate::{DeviceId, DsError, Limits};

#[derive(Default)]
struct Held {
    one_time: VecDeque<Vec<u8>>,
    last_resort: Option<Vec<u8>>,
}

/// The directory of every device's KeyPackages.
pub struct Directory {
    limits: Limits,
    devices: BTreeMap<DeviceId, Held>,
    /// One-time KeyPackages each claimer took of each device since that
    /// device's last upload: past [`Limits::one_time_claims_per_claimer`]
    /// a claimer gets the last-resort KeyPackage, so that no device can
    /// drain another's one-time KeyPackages (the last-resort one stays
    /// usable: the device keeps its private key).
    claimed_by: BTreeMap<(DeviceId, DeviceId), usize>,
    /// One-time KeyPackages the devices of each person took in all, in
    /// the hour that started at the first of them: past
    /// [`Limits::one_time_claims_per_hour`] they get last-resort ones only.
    taken: BTreeMap<UserName, (u64, usize)>,
    /// The relay's clock (Unix seconds), set by the I/O layer.
    now: u64,
}

/// The period [`Limits::one_time_claims_per_hour`] counts over, seconds.
pub const CLAIM_PERIOD_SECS: u64 = 3600;

/// Past this many persons counted, those whose period is over are dropped.
pub const SWEEP_AT: usize = 10_000;

/// A KeyPackage handed out for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Whose it is.
    pub device: DeviceId,
    /// The KeyPackage (an MLS message), as the device uploaded it.
    pub key_package: Vec<u8>,
    /// It was the last-resort one: the device should upload more.
    pub last_resort: bool,
}

impl Directory {
    /// An empty directory.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            devices: BTreeMap::new(),
            claimed_by: BTreeMap::new(),
            taken: BTreeMap::new(),
            now: 0,
        }
    }

    /// Sets the clock the claim period is judged by.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// One-time KeyPackages `claimer`'s person may still take in the
    /// current period.
    fn allowance(&mut self, claimer: &DeviceId) -> usize {
        let now = self.now;
        if self.taken.len() > SWEEP_AT {
            self.taken
                .retain(|_, (from, _)| from.saturating_add(CLAIM_PERIOD_SECS) > now);
        }
        match self.taken.get(&claimer.user) {
            Some((from, n)) if from.saturating_add(CLAIM_PERIOD_SECS) > now => {
                self.limits.one_time_claims_per_hour.saturating_sub(*n)
            }
            _ => {
                self.taken.remove(&claimer.user);
                self.limits.one_time_claims_per_hour
            }
        }
    }

    /// `device` adds one-time KeyPackages and, optionally, replaces its
    /// last-resort one. All or nothing: a refused upload changes nothing.
    /// Returns how many one-time KeyPackages it now holds.
    pub fn upload(
        &mut self,
        device: &DeviceId,
        one_time: Vec<Vec<u8>>,
        last_resort: Option<Vec<u8>>,
    ) -> Result<usize, DsError> {
        let max = self.limits.key_package_bytes;
        if one_time
            .iter()
            .chain(last_resort.iter())
            .any(|k| k.len() > max || k.is_empty())
        {
            return Err(DsError::TooLarge);
        }
        let held = self.devices.get(device).map_or(0, |h| h.one_time.len());
        if held.saturating_add(one_time.len()) > self.limits.key_packages_per_device {
            return Err(DsError::TooManyKeyPackages);
        }
        // A fresh batch: every claimer may take its share again.
        self.claimed_by.retain(|(_, of), _| of != device);
        let entry = self.devices.entry(device.clone()).or_default();
        entry.one_time.extend(one_time);
        if last_resort.is_some() {
            entry.last_resort = last_resort;
        }
        Ok(entry.one_time.len())
    }

    /// One KeyPackage for each device of `user` that has one, oldest
    /// one-time first, the last-resort one when none is left (it stays) or
    /// when `claimer` already took its share of that device's one-time
    /// ones, or when its person's devices took
    /// [`Limits::one_time_claims_per_hour`] of anyone's in the last hour; never the claimer's own (a device adding
    /// its person's other devices claims its own user).
    pub fn claim(&mut self, user: &UserName, claimer: &DeviceId) -> Vec<Claimed> {
        let share = self.limits.one_time_claims_per_claimer;
        let mut allowance = self.allowance(claimer);
        let mut took = 0usize;
        let claimed_by = &mut self.claimed_by;
        let out = self
            .devices
            .iter_mut()
            .filter(|(d, _)| d.user == *user && *d != claimer)
            .filter_map(|(d, held)| {
                let key = (claimer.clone(), d.clone());
                let taken = claimed_by.get(&key).copied().unwrap_or(0);
                let one_time = if taken < share && allowance > 0 {
                    held.one_time.pop_front()
                } else {
                    None
                };
                match one_time {
                    Some(kp) => {
                        // An entry only for what was taken: at most one per
                        // one-time KeyPackage consumed since its device's
                        // last upload.
                        claimed_by.insert(key, taken.saturating_add(1));
                        allowance = allowance.saturating_sub(1);
                        took = took.saturating_add(1);
                        Some(Claimed {
                            device: d.clone(),
                            key_package: kp,
                            last_resort: false,
                        })
                    }
                    None => held.last_resort.clone().map(|kp| Claimed {
                        device: d.clone(),
                        key_package: kp,
                        last_resort: true,
                    }),
                }
            })
            .collect();
        if took > 0 {
            let now = self.now;
            let e = self.taken.entry(claimer.user.clone()).or_insert((now, 0));
            e.1 = e.1.saturating_add(took);
        }
        out
    }

    /// Whether the relay knows `device`: it published KeyPackages here
    /// (and was not revoked since). A commit may bring only known devices
    /// into a group, so that nobody fills mailboxes of made-up devices.
    pub fn knows(&self, device: &DeviceId) -> bool {
        self.devices.contains_key(device)
    }

    /// The devices of `user` that have a KeyPackage here (nothing is
    /// consumed).
    pub fn devices_of(&self, user: &UserName) -> Vec<DeviceId> {
        self.devices
            .iter()
            .filter(|(d, h)| d.user == *user && (!h.one_time.is_empty() || h.last_resort.is_some()))
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// How many persons' hourly claim counts are kept (bounded: past
    /// [`SWEEP_AT`] the finished ones are dropped).
    pub fn claim_counts(&self) -> usize {
        self.taken.len()
    }

    /// One-time KeyPackages `device` still has here (it refills when low).
    pub fn remaining(&self, device: &DeviceId) -> usize {
        self.devices.get(device).map_or(0, |h| h.one_time.len())
    }

    /// Forgets a device (its certificate was revoked): nobody can add it.
    pub fn forget(&mut self, device: &DeviceId) {
        self.devices.remove(device);
        self.claimed_by
            .retain(|(by, of), _| by != device && of != device);
    }
}
