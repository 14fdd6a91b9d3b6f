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
//!   reported and acknowledged, never retried.
//! * The relay's word is used for routing only: who sent a message, who
//!   is in a group and what epoch it is at come from MLS.
//! * KeyPackages are refilled when the relay holds fewer than
//!   [`KEY_PACKAGE_LOW`]; this person's devices that are not yet in a
//!   group this device is in are added to it ([`Member::adopt_own_devices`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blindrelay_ds::{Claimed, Delivery, DeviceId, Down, Refusal, RefusalCode, Request, Submission};
use blindrelay_e2e::TrustRoot;
use blindrelay_mls::{Device, DeviceKey, GroupName, MlsError, MlsStore, Outgoing, Received, Trust};
use blindrelay_pki::crl::CheckedCrl;
use blindrelay_pki::{DeviceName, PrivateKeyPem};
use blindrelay_wire::UserName;

use super::link::Link;
use crate::config::ClientConfig;
use crate::error::ClientError;

/// Tries at a commit when other members' commits keep winning.
pub const COMMIT_ATTEMPTS: usize = 8;
/// Below this many one-time KeyPackages at the relay, the device uploads
/// [`KEY_PACKAGE_BATCH`] more.
pub const KEY_PACKAGE_LOW: u32 = 10;
/// KeyPackages uploaded at a time.
pub const KEY_PACKAGE_BATCH: usize = 50;
/// How long to wait for the winning commit after a STALE_EPOCH.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// Something that happened in a group, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Event {
    /// A message.
    Message {
        /// The group.
        group: Vec<u8>,
        /// The sending person and device, as MLS verified them.
        from: (String, String),
        /// The text (lossy UTF-8).
        text: String,
    },
    /// This device joined a group.
    Joined {
        /// The group.
        group: Vec<u8>,
    },
    /// A member's commit changed the group.
    Changed {
        /// The group.
        group: Vec<u8>,
        /// Who committed.
        by: (String, String),
        /// Devices added.
        added: Vec<(String, String)>,
        /// Devices removed.
        removed: Vec<(String, String)>,
        /// The new name, if renamed.
        renamed: Option<String>,
    },
    /// This device was removed from a group.
    RemovedMe {
        /// The group.
        group: Vec<u8>,
    },
    /// A mailbox item MLS refused (a replay, a forgery, a commit that
    /// does not apply): nothing was read from it.
    Refused {
        /// The group the relay said it was for (informative only).
        group: Vec<u8>,
    },
}

/// A group as this device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group id.
    pub id: Vec<u8>,
    /// Its name, if any (a one-to-one conversation has none).
    pub name: Option<String>,
    /// Its epoch.
    pub epoch: u64,
    /// Its members: (person, device).
    pub members: Vec<(String, String)>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn device_id(user: &str, device: &str) -> Option<DeviceId> {
    Some(DeviceId {
        user: UserName::new(user).ok()?,
        device: DeviceName::new(device).ok()?,
    })
}

fn refused(why: Refusal) -> ClientError {
    ClientError::V2(match why {
        Refusal::Storage => "the relay could not store it; try again".into(),
        Refusal::Rules(c) => format!("the relay refused it ({c:?})"),
    })
}

/// One device, connected.
pub struct Member {
    device: Device,
    link: Link,
    ca_der: Vec<u8>,
    crl: Option<CheckedCrl>,
    me: DeviceId,
    /// Groups where a member asked to leave: this device commits there.
    leave_requests: BTreeSet<Vec<u8>>,
}

impl Member {
    /// Opens the device's MLS state at `state` (created if new) and
    /// connects with its certificate.
    pub async fn connect(cfg: &ClientConfig, state: &Path) -> Result<Self, ClientError> {
        let pkcs8 = cfg.load_key()?;
        let pem = blindrelay_pki::encrypted_key::to_pem(&pkcs8)
            .map_err(|e| ClientError::V2(format!("device key: {e}")))?;
        let key = DeviceKey::from_pem(&PrivateKeyPem::new(pem))?;
        let cert = blindrelay_pki::store::read_cert_der(&cfg.cert)?;
        let ca_der = blindrelay_pki::store::read_cert_der(&cfg.ca)?;
        let mut crl = None;
        if let Some(der) = cfg.read_crl() {
            crl = Some(
                CheckedCrl::signed(&der?, &ca_der)
                    .map_err(|e| ClientError::V2(format!("crl.pem: {e}")))?,
            );
        }
        let mut root = TrustRoot::new(ca_der.clone())?;
        if let Some(c) = &crl {
            root = root.with_checked_crl(c.clone());
        }
        let store = MlsStore::open(state)?;
        let device = Device::open(key, cert, Trust::new(root, now()), store)?;
        let me = DeviceId {
            user: device.me().user().clone(),
            device: device.me().device().clone(),
        };
        let link = Link::connect(cfg, &pkcs8).await?;
        let mut m = Self {
            device,
            link,
            ca_der,
            crl,
            me,
            leave_requests: BTreeSet::new(),
        };
        m.take_crls();
        if m.link.key_packages < KEY_PACKAGE_LOW {
            m.upload_key_packages().await?;
        }
        Ok(m)
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
    fn take_crls(&mut self) {
        for der in self.link.take_crls() {
            let Ok(new) =
                CheckedCrl::check(&der, &self.ca_der, i64::try_from(now()).unwrap_or(i64::MAX))
            else {
                tracing::warn!("the relay's CRL does not verify; ignored");
                continue;
            };
            if let Some(cur) = &self.crl
                && (new.may_replace(cur).is_err() || new.number() == cur.number())
            {
                continue;
            }
            if let Ok(root) = TrustRoot::new(self.ca_der.clone()) {
                self.device
                    .trust()
                    .replace_root(root.with_checked_crl(new.clone()));
                self.crl = Some(new);
            }
        }
    }

    /// Uploads a batch of one-time KeyPackages and a new last-resort one.
    pub async fn upload_key_packages(&mut self) -> Result<u32, ClientError> {
        let mut kps = self.device.key_packages(KEY_PACKAGE_BATCH + 1)?;
        let last_resort = kps.pop();
        match self
            .link
            .request(Request::Upload {
                one_time: kps,
                last_resort,
            })
            .await?
        {
            Down::Uploaded { key_packages, .. } => Ok(key_packages),
            Down::Refused { why, .. } => Err(refused(why)),
            other => Err(ClientError::V2(format!("unexpected answer {other:?}"))),
        }
    }

    async fn claim(&mut self, user: &UserName) -> Result<Vec<Claimed>, ClientError> {
        match self.link.request(Request::Claim(user.clone())).await? {
            Down::Claimed { key_packages, .. } => Ok(key_packages),
            Down::Refused { why, .. } => Err(refused(why)),
            other => Err(ClientError::V2(format!("unexpected answer {other:?}"))),
        }
    }

    /// The devices of a group, as the relay should route to them.
    fn routing(&mut self, group: &[u8]) -> Result<BTreeSet<DeviceId>, ClientError> {
        Ok(self
            .device
            .members(group)?
            .into_iter()
            .filter_map(|m| device_id(&m.user, &m.device))
            .collect())
    }

    /// Makes a commit with `make`, submits it, and applies it once the
    /// relay accepts it; on a lost race processes the winner and tries
    /// again. `added` are the devices whose KeyPackages `make` adds;
    /// `removed` the person it removes.
    async fn commit(
        &mut self,
        group: &[u8],
        make: impl Fn(&mut Device) -> Result<Outgoing, MlsError>,
        added: &BTreeSet<DeviceId>,
        removed: Option<&UserName>,
    ) -> Result<Vec<V2Event>, ClientError> {
        let mut events = Vec::new();
        for _ in 0..COMMIT_ATTEMPTS {
            let mut members = self.routing(group)?;
            members.retain(|d| Some(&d.user) != removed);
            members.extend(added.iter().cloned());
            let out = make(&mut self.device)?;
            let welcome = out.welcome.map(|w| (added.clone(), w));
            let sub = Submission::Commit {
                group_id: group.to_vec(),
                epoch: out.epoch,
                members,
                commit: out.commit,
                welcome,
            };
            match self.link.request(Request::Submit(sub)).await {
                Ok(Down::Accepted { .. }) => {
                    self.device.commit_accepted(group)?;
                    self.leave_requests.remove(group);
                    return Ok(events);
                }
                Ok(Down::Refused {
                    why: Refusal::Rules(RefusalCode::StaleEpoch),
                    epoch,
                    ..
                }) => {
                    self.device.commit_refused(group)?;
                    events.extend(self.catch_up(group, epoch).await?);
                }
                Ok(Down::Refused { why, .. }) => {
                    self.device.commit_refused(group)?;
                    return Err(refused(why));
                }
                Ok(other) => {
                    self.device.commit_refused(group)?;
                    return Err(ClientError::V2(format!("unexpected answer {other:?}")));
                }
                Err(e) => {
                    // Unknown whether the relay took it: the pending commit
                    // stays stored, and the next connection's mailbox tells.
                    return Err(e);
                }
            }
        }
        Err(ClientError::V2(format!(
            "other members' commits won {COMMIT_ATTEMPTS} times in a row; try again"
        )))
    }

    /// Processes mailbox items until the group reaches `epoch` (the relay's
    /// word, used only to know when to stop waiting).
    async fn catch_up(&mut self, group: &[u8], epoch: u64) -> Result<Vec<V2Event>, ClientError> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        while self.device.epoch(group).is_ok_and(|e| e < epoch) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.link.next_delivery(left).await? {
                Some((seq, item)) => events.extend(self.process(seq, item).await?),
                None => break,
            }
        }
        Ok(events)
    }

    /// Processes one mailbox item and acknowledges it.
    async fn process(&mut self, seq: u64, item: Delivery) -> Result<Vec<V2Event>, ClientError> {
        self.take_crls();
        self.device.trust().set_now(now());
        let names = |m: &blindrelay_mls::Member| (m.user.clone(), m.device.clone());
        let ev = match item {
            Delivery::Welcome { group_id, welcome } => match self.device.join(&welcome) {
                Ok(group) => V2Event::Joined { group },
                Err(e) => {
                    tracing::warn!(error = %e, "a Welcome was refused");
                    V2Event::Refused { group: group_id }
                }
            },
            Delivery::Group { group_id, message } => match self.device.receive(&message) {
                Ok(Received::Message {
                    group_id,
                    sender,
                    body,
                }) => V2Event::Message {
                    group: group_id,
                    from: names(&sender),
                    text: String::from_utf8_lossy(&body).into_owned(),
                },
                Ok(Received::Commit {
                    group_id,
                    committer,
                    added,
                    removed,
                    removed_me,
                    renamed,
                    ..
                }) => {
                    if removed_me {
                        V2Event::RemovedMe { group: group_id }
                    } else {
                        V2Event::Changed {
                            group: group_id,
                            by: names(&committer),
                            added: added.iter().map(names).collect(),
                            removed: removed.iter().map(names).collect(),
                            renamed: renamed.map(|n| n.as_str().to_string()),
                        }
                    }
                }
                Ok(Received::LeaveRequest { group_id, .. }) => {
                    self.leave_requests.insert(group_id.clone());
                    self.link.ack(seq).await?;
                    return Ok(Vec::new());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a group message was refused");
                    V2Event::Refused { group: group_id }
                }
            },
        };
        self.link.ack(seq).await?;
        Ok(vec![ev])
    }

    /// Processes what the relay delivers within `wait` (and whatever
    /// follows without a pause), then carries out leave requests and
    /// refills KeyPackages.
    pub async fn sync(&mut self, wait: Duration) -> Result<Vec<V2Event>, ClientError> {
        let mut events = Vec::new();
        let mut wait = wait;
        while let Some((seq, item)) = self.link.next_delivery(wait).await? {
            events.extend(self.process(seq, item).await?);
            wait = Duration::from_millis(200);
        }
        for g in std::mem::take(&mut self.leave_requests) {
            if self.device.epoch(&g).is_ok() {
                events.extend(self.update(&g).await?);
            }
        }
        Ok(events)
    }

    /// Groups this device is in.
    pub fn groups(&mut self) -> Result<Vec<GroupInfo>, ClientError> {
        let mut out = Vec::new();
        for id in self.device.group_ids()? {
            let Ok(epoch) = self.device.epoch(&id) else {
                continue;
            };
            let name = self.device.name(&id)?.map(|n| n.as_str().to_string());
            let members = self
                .device
                .members(&id)?
                .into_iter()
                .map(|m| (m.user, m.device))
                .collect();
            out.push(GroupInfo {
                id,
                name,
                epoch,
                members,
            });
        }
        Ok(out)
    }

    /// The group called `name`.
    pub fn find_group(&mut self, name: &str) -> Result<Option<GroupInfo>, ClientError> {
        Ok(self
            .groups()?
            .into_iter()
            .find(|g| g.name.as_deref() == Some(name)))
    }

    /// The unnamed group of exactly this person and `user`.
    pub fn one_to_one(&mut self, user: &UserName) -> Result<Option<GroupInfo>, ClientError> {
        let me = self.me.user.as_str().to_string();
        Ok(self.groups()?.into_iter().find(|g| {
            let people: BTreeSet<&str> = g.members.iter().map(|(u, _)| u.as_str()).collect();
            g.name.is_none() && people == BTreeSet::from([me.as_str(), user.as_str()])
        }))
    }

    /// Creates a group (named, or a one-to-one conversation when `name` is
    /// `None`) with every device of `users` and of this person.
    pub async fn create_group(
        &mut self,
        name: Option<&GroupName>,
        users: &[UserName],
    ) -> Result<(Vec<u8>, Vec<V2Event>), ClientError> {
        let group = match name {
            Some(n) => self.device.create_named_group(n)?,
            None => self.device.create_group()?,
        };
        let mut with_me = vec![self.me.user.clone()];
        with_me.extend(users.iter().filter(|u| **u != self.me.user).cloned());
        let events = self.add(&group, &with_me).await?;
        Ok((group, events))
    }

    /// Adds every device of `users` that is not in the group yet.
    pub async fn add(
        &mut self,
        group: &[u8],
        users: &[UserName],
    ) -> Result<Vec<V2Event>, ClientError> {
        let present = self.routing(group)?;
        let mut claimed = Vec::new();
        for u in users {
            claimed.extend(
                self.claim(u)
                    .await?
                    .into_iter()
                    .filter(|c| !present.contains(&c.device)),
            );
        }
        if claimed.is_empty() {
            if self.device.epoch(group)? == 0 {
                // A group nobody else can join yet is still made known to
                // the relay, so that it can be added to later.
                return self
                    .commit(group, |d| d.update(group), &BTreeSet::new(), None)
                    .await;
            }
            return Ok(Vec::new());
        }
        let added: BTreeSet<DeviceId> = claimed.iter().map(|c| c.device.clone()).collect();
        let kps: Vec<Vec<u8>> = claimed.into_iter().map(|c| c.key_package).collect();
        self.commit(group, |d| d.add(group, &kps), &added, None)
            .await
    }

    /// Removes every device of `user`.
    pub async fn remove(
        &mut self,
        group: &[u8],
        user: &UserName,
    ) -> Result<Vec<V2Event>, ClientError> {
        self.commit(
            group,
            |d| d.remove(group, user),
            &BTreeSet::new(),
            Some(user),
        )
        .await
    }

    /// Refreshes this device's leaf (healing after a compromise).
    pub async fn update(&mut self, group: &[u8]) -> Result<Vec<V2Event>, ClientError> {
        self.commit(group, |d| d.update(group), &BTreeSet::new(), None)
            .await
    }

    /// Asks to leave: the next commit of any other member removes this
    /// device (members commit at once when they read the request).
    pub async fn leave(&mut self, group: &[u8]) -> Result<(), ClientError> {
        let message = self.device.leave(group)?;
        let epoch = self.device.epoch(group)?;
        self.submit_message(group, epoch, message).await
    }

    /// Sends a text message to the group.
    pub async fn send(&mut self, group: &[u8], text: &str) -> Result<(), ClientError> {
        let epoch = self.device.epoch(group)?;
        let message = self.device.encrypt(group, text.as_bytes())?;
        self.submit_message(group, epoch, message).await
    }

    async fn submit_message(
        &mut self,
        group: &[u8],
        epoch: u64,
        message: Vec<u8>,
    ) -> Result<(), ClientError> {
        let sub = Submission::Message {
            group_id: group.to_vec(),
            epoch,
            message,
        };
        match self.link.request(Request::Submit(sub)).await? {
            Down::Accepted { .. } => Ok(()),
            Down::Refused { why, .. } => Err(refused(why)),
            other => Err(ClientError::V2(format!("unexpected answer {other:?}"))),
        }
    }

    /// Adds this person's devices that are missing from a group this
    /// device is in (a new device of the person joins their groups).
    /// KeyPackages are claimed only when some device is missing from
    /// some group.
    pub async fn adopt_own_devices(&mut self) -> Result<Vec<V2Event>, ClientError> {
        let me = self.me.user.clone();
        let groups = self.groups()?;
        let mut events = Vec::new();
        if groups.is_empty() {
            return Ok(events);
        }
        // The relay lists this person's devices (informative: a device
        // is added only with a KeyPackage whose certificate MLS checks).
        let listed = match self.link.request(Request::Devices(me.clone())).await? {
            Down::Devices { devices, .. } => devices,
            Down::Refused { why, .. } => return Err(refused(why)),
            other => return Err(ClientError::V2(format!("unexpected answer {other:?}"))),
        };
        for g in groups {
            let present: BTreeSet<DeviceId> = g
                .members
                .iter()
                .filter_map(|(u, d)| device_id(u, d))
                .collect();
            if listed.iter().all(|d| present.contains(d)) {
                continue;
            }
            // A KeyPackage is for one group: claimed per group that lacks
            // a device.
            let missing: Vec<Claimed> = self
                .claim(&me)
                .await?
                .into_iter()
                .filter(|c| !present.contains(&c.device))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let added: BTreeSet<DeviceId> = missing.iter().map(|c| c.device.clone()).collect();
            let kps: Vec<Vec<u8>> = missing.into_iter().map(|c| c.key_package).collect();
            let id = g.id.clone();
            events.extend(self.commit(&id, |d| d.add(&id, &kps), &added, None).await?);
        }
        Ok(events)
    }

    /// Says goodbye to the relay.
    pub async fn close(self) {
        self.link.close().await;
    }
}

impl From<MlsError> for ClientError {
    fn from(e: MlsError) -> Self {
        ClientError::V2(format!("MLS: {e}"))
    }
}

impl From<blindrelay_mls::StorageError> for ClientError {
    fn from(e: blindrelay_mls::StorageError) -> Self {
        ClientError::V2(format!("MLS storage: {e}"))
    }
}
