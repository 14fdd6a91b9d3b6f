//! Devices through the relay's Delivery Service rules (`blindrelay-ds`):
//! the KeyPackage directory, one order per group with commit races, and
//! per-device mailboxes. Two people with two devices each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use blindrelay_ds::{Delivery, DeviceId, Directory, DsError, Groups, Kept, Limits, Submission};
use blindrelay_mls::{Device, Received};
use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;
use common::*;

struct Net {
    groups: Groups,
    kept: Kept,
    directory: Directory,
    devices: BTreeMap<DeviceId, Device>,
    /// What each device read, in order: (sender, text).
    read: BTreeMap<DeviceId, Vec<(String, String)>>,
}

fn id_of(d: &Device) -> DeviceId {
    DeviceId {
        user: d.me().user().clone(),
        device: d.me().device().clone(),
    }
}

fn id(user: &str, device: &str) -> DeviceId {
    DeviceId {
        user: UserName::new(user).unwrap(),
        device: DeviceName::new(device).unwrap(),
    }
}

impl Net {
    fn new(org: &Org, devices: &[(&str, &str)]) -> Self {
        let mut net = Net {
            groups: Groups::new(Limits::default()),
            kept: Kept::new(),
            directory: Directory::new(Limits::default()),
            devices: BTreeMap::new(),
            read: BTreeMap::new(),
        };
        for (user, device) in devices {
            let (mut d, _) = org.device(user, device);
            let kps = d.key_packages(5).unwrap();
            net.directory.upload(&id_of(&d), kps, None).unwrap();
            net.devices.insert(id_of(&d), d);
        }
        net
    }

    fn dev(&mut self, who: &DeviceId) -> &mut Device {
        self.devices.get_mut(who).unwrap()
    }

    fn members(&mut self, who: &DeviceId, g: &[u8]) -> BTreeSet<DeviceId> {
        self.dev(who)
            .members(g)
            .unwrap()
            .into_iter()
            .map(|m| id(&m.user, &m.device))
            .collect()
    }

    /// `who` adds every device of `users` (but itself) from the directory.
    fn add_people(&mut self, who: &DeviceId, g: &[u8], users: &[&str]) {
        let mut claimed = Vec::new();
        for u in users {
            claimed.extend(self.directory.claim(&UserName::new(u).unwrap(), who));
        }
        let new: BTreeSet<DeviceId> = claimed.iter().map(|c| c.device.clone()).collect();
        let kps: Vec<Vec<u8>> = claimed.into_iter().map(|c| c.key_package).collect();
        let mut members = self.members(who, g);
        members.extend(new.iter().cloned());
        let out = self.dev(who).add(g, &kps).unwrap();
        let sub = Submission::Commit {
            group_info: None,
            group_id: g.to_vec(),
            epoch: out.epoch,
            members,
            commit: out.commit.clone(),
            welcome: Some((new, out.welcome.clone().unwrap())),
        };
        self.groups.submit(who, sub).unwrap();
        self.dev(who).commit_accepted(g).unwrap();
    }

    /// `who` tries a self-update; false if another commit won the epoch.
    fn try_update(&mut self, who: &DeviceId, g: &[u8]) -> bool {
        let members = self.members(who, g);
        let out = self.dev(who).update(g).unwrap();
        let sub = Submission::Commit {
            group_info: None,
            group_id: g.to_vec(),
            epoch: out.epoch,
            members,
            commit: out.commit,
            welcome: None,
        };
        match self.groups.submit(who, sub) {
            Ok(_) => {
                self.dev(who).commit_accepted(g).unwrap();
                true
            }
            Err(DsError::StaleEpoch { .. }) => {
                self.dev(who).commit_refused(g).unwrap();
                false
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn send(&mut self, who: &DeviceId, g: &[u8], text: &str) {
        let epoch = self.dev(who).epoch(g).unwrap();
        let message = self.dev(who).encrypt(g, text.as_bytes()).unwrap();
        let sub = Submission::Message {
            group_id: g.to_vec(),
            epoch,
            message,
        };
        self.groups.submit(who, sub).unwrap();
    }

    /// `who` reads its mailbox and acknowledges it.
    fn pump(&mut self, who: &DeviceId) {
        self.kept.sync(self.groups.mailboxes());
        let pending = self.kept.pending(self.groups.mailboxes_ref(), who);
        for (seq, item) in pending {
            match item {
                Delivery::Welcome { welcome, .. } => {
                    self.dev(who).join(&welcome).unwrap();
                }
                // Its own commit, read back after it was applied.
                Delivery::Group { message, .. } if self.dev(who).is_past_handshake(&message) => {
                    assert!(self.dev(who).receive(&message).is_err());
                }
                Delivery::Group { message, .. } => match self.dev(who).receive(&message).unwrap() {
                    Received::Message { sender, body, .. } => {
                        let from = format!("{}@{}", sender.user, sender.device);
                        let text = String::from_utf8(body).unwrap();
                        self.read.entry(who.clone()).or_default().push((from, text));
                    }
                    Received::Commit { .. } | Received::LeaveRequest { .. } => {}
                },
            }
            self.groups.mailboxes().ack(who, seq);
        }
    }

    fn pump_all(&mut self) {
        let ids: Vec<DeviceId> = self.devices.keys().cloned().collect();
        for d in ids {
            self.pump(&d);
        }
    }
}

#[test]
fn two_people_with_two_devices_each_talk_through_the_delivery_service() {
    let org = Org::new();
    let mut net = Net::new(
        &org,
        &[
            ("alice", "laptop"),
            ("alice", "phone"),
            ("bob", "laptop"),
            ("bob", "phone"),
        ],
    );
    let (al, ap, bl, bp) = (
        id("alice", "laptop"),
        id("alice", "phone"),
        id("bob", "laptop"),
        id("bob", "phone"),
    );
    // A one-to-one conversation is a group of all devices of both people.
    let g = net.dev(&al).create_group().unwrap();
    net.add_people(&al, &g, &["alice", "bob"]);
    net.pump_all();
    for d in [&ap, &bl, &bp] {
        assert_eq!(net.dev(d).members(&g).unwrap().len(), 4);
    }
    // Every device commits an update at once: the relay orders one per
    // epoch, the others rebase and retry until each has updated.
    let mut pending: Vec<DeviceId> = vec![al.clone(), ap.clone(), bl.clone(), bp.clone()];
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        let mut lost = Vec::new();
        for d in &pending {
            if !net.try_update(d, &g) {
                lost.push(d.clone());
            }
        }
        net.pump_all();
        pending = lost;
        assert!(rounds <= 4, "a race that never ends");
    }
    assert!(rounds > 1, "the race happened");
    // Messages from each device reach the three others, the sender's own
    // other device included, once and in order.
    net.send(&al, &g, "from alice's laptop 1");
    net.send(&bp, &g, "from bob's phone");
    net.send(&al, &g, "from alice's laptop 2");
    net.pump_all();
    assert_eq!(
        net.read[&ap],
        [
            (
                "alice@laptop".to_string(),
                "from alice's laptop 1".to_string()
            ),
            ("bob@phone".into(), "from bob's phone".into()),
            ("alice@laptop".into(), "from alice's laptop 2".into()),
        ]
    );
    assert_eq!(net.read[&bl], net.read[&ap]);
    assert_eq!(
        net.read[&al],
        [("bob@phone".to_string(), "from bob's phone".to_string())]
    );
    assert_eq!(net.read[&bp].len(), 2);
    // One history: every device holds the same epoch authenticator.
    let auth = net.dev(&al).epoch_authenticator(&g).unwrap();
    for d in [&ap, &bl, &bp] {
        assert_eq!(net.dev(d).epoch_authenticator(&g).unwrap(), auth);
    }
    // The relay knows the group's size and epoch, as PROTOCOL.md says.
    assert_eq!(
        net.groups.describe(&g),
        Some((net.dev(&al).epoch(&g).unwrap(), 4))
    );
    // Each claim used one KeyPackage per device.
    assert_eq!(net.directory.remaining(&bl), 4);
    assert_eq!(net.directory.remaining(&al), 5, "never claimed for itself");
}
