//! What a person does with groups, on top of [`Member`]: list and find
//! them, create one (a one-to-one conversation is an unnamed group of two
//! people), add and remove people with all their devices, leave, rename,
//! send, refresh this device's leaf, add this person's new devices, and
//! the per-device safety numbers.

use std::collections::BTreeSet;

use blindrelay_ds::{Claimed, DeviceId, Down, Request, Submission};
use blindrelay_mls::{Device, GroupName, MlsError, Outgoing};
use blindrelay_wire::UserName;

use super::member::{Member, V2Event, device_id};
use crate::error::ClientError;

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

impl Member {
    /// Groups this device is in.
    pub fn groups(&mut self) -> Result<Vec<GroupInfo>, ClientError> {
        let mut out = Vec::new();
        for id in self.device.group_ids()? {
            out.extend(self.group(&id)?);
        }
        Ok(out)
    }

    /// The group `id`, if this device is in it (one group's state is
    /// read, not every group's).
    pub fn group(&mut self, id: &[u8]) -> Result<Option<GroupInfo>, ClientError> {
        let Ok(epoch) = self.device.epoch(id) else {
            return Ok(None);
        };
        let name = self.device.name(id)?.map(|n| n.as_str().to_string());
        let members = self
            .device
            .members(id)?
            .into_iter()
            .map(|m| (m.user, m.device))
            .collect();
        Ok(Some(GroupInfo {
            id: id.to_vec(),
            name,
            epoch,
            members,
        }))
    }

    /// The group called `name`, or `NAME#HEX` (the start of its id in hex)
    /// where several share a name. A name is chosen by whoever created or
    /// renamed the group, and so is the id: when two groups share a name,
    /// the bare name is refused with the choices, never resolved by id
    /// order (an insider could otherwise create a look-alike group that
    /// sorts first and receive what was meant for the real one).
    pub fn find_group(&mut self, name: &str) -> Result<Option<GroupInfo>, ClientError> {
        let groups = self.groups()?;
        let named = |n: &str| -> Vec<&GroupInfo> {
            groups
                .iter()
                .filter(|g| g.name.as_deref() == Some(n))
                .collect()
        };
        let mut found = named(name);
        if found.is_empty()
            && let Some((n, prefix)) = name.rsplit_once('#')
            && !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_hexdigit())
        {
            let prefix = prefix.to_ascii_lowercase();
            found = named(n)
                .into_iter()
                .filter(|g| blindrelay_wire::codec::hex(&g.id).starts_with(&prefix))
                .collect();
        }
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).clone())),
            many => {
                let choices: Vec<String> = many
                    .iter()
                    .map(|g| format!("{name}#{}", group_tag(&g.id)))
                    .collect();
                Err(ClientError::AmbiguousGroup {
                    name: name.to_string(),
                    choices,
                })
            }
        }
    }

    /// The unnamed group of exactly this person and `user`.
    pub fn one_to_one(&mut self, user: &UserName) -> Result<Option<GroupInfo>, ClientError> {
        self.conversation_with(std::slice::from_ref(user))
    }

    /// The unnamed group of exactly this person and `users`.
    pub fn conversation_with(
        &mut self,
        users: &[UserName],
    ) -> Result<Option<GroupInfo>, ClientError> {
        let mut want: BTreeSet<&str> = users.iter().map(UserName::as_str).collect();
        let me = self.me.user.as_str().to_string();
        want.insert(&me);
        Ok(self.groups()?.into_iter().find(|g| {
            let people: BTreeSet<&str> = g.members.iter().map(|(u, _)| u.as_str()).collect();
            g.name.is_none() && people == want
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

    /// Makes a stuck group again ([`V2Event::BadCommit`]) without
    /// `without`: a new group with the old one's name and every other
    /// person in it; the old group is forgotten on this device. Returns
    /// the new group.
    pub async fn recreate(
        &mut self,
        group: &[u8],
        without: &UserName,
    ) -> Result<(Vec<u8>, Vec<V2Event>), ClientError> {
        if *without == self.me.user {
            return Err(ClientError::Group(
                "a group cannot be made again without yourself",
            ));
        }
        let name = self.device.name(group)?;
        let people: BTreeSet<UserName> = self
            .device
            .members(group)?
            .into_iter()
            .filter_map(|m| UserName::new(&m.user).ok())
            .filter(|u| u != without)
            .collect();
        if !people.iter().any(|u| *u != self.me.user) && name.is_none() {
            return Err(ClientError::Group(
                "nobody would be left in the conversation",
            ));
        }
        let people: Vec<UserName> = people.into_iter().collect();
        let made = self.create_group(name.as_ref(), &people).await?;
        self.device.forget(group)?;
        Ok(made)
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
                return self.commit(group, |d, _| plain(d.update(group))).await;
            }
            return Ok(Vec::new());
        }
        self.commit(group, |d, present| add_missing(d, group, &claimed, present))
            .await
    }

    /// Removes every device of `user`.
    pub async fn remove(
        &mut self,
        group: &[u8],
        user: &UserName,
    ) -> Result<Vec<V2Event>, ClientError> {
        self.commit(group, |d, _| plain(d.remove(group, user)))
            .await
    }

    /// Refreshes this device's leaf (healing after a compromise).
    pub async fn update(&mut self, group: &[u8]) -> Result<Vec<V2Event>, ClientError> {
        self.commit(group, |d, _| plain(d.update(group))).await
    }

    /// Renames a group.
    pub async fn rename(
        &mut self,
        group: &[u8],
        name: &GroupName,
    ) -> Result<Vec<V2Event>, ClientError> {
        self.commit(group, |d, _| plain(d.rename(group, name)))
            .await
    }

    /// Refreshes this device's leaf in every group where it is older than
    /// seven days (`SELF_UPDATE_INTERVAL` in `blindrelay-mls`): periodic
    /// healing.
    pub async fn update_due(&mut self) -> Result<Vec<V2Event>, ClientError> {
        let mut events = Vec::new();
        for g in self.device.groups_due_for_update()? {
            if self.device.epoch(&g).is_ok() {
                events.extend(self.update(&g).await?);
            }
        }
        Ok(events)
    }

    /// The safety number this device shares with each device of `user` in
    /// `group`: (device, 60 digits). Both sides compute the same number
    /// from the two certificates' keys; compare it over another channel.
    pub fn safety_numbers(
        &mut self,
        group: &[u8],
        user: &UserName,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let mine = self.device.me().cert_der().to_vec();
        Ok(self
            .device
            .member_certificates(group)?
            .into_iter()
            .filter(|(m, _)| m.user == user.as_str())
            .map(|(m, cert)| (m.device, blindrelay_e2e::safety_number(&mine, &cert)))
            .collect())
    }

    /// The devices of `user` the relay holds KeyPackages for (informative:
    /// what the relay says, not what MLS checked).
    pub async fn listed_devices(
        &mut self,
        user: &UserName,
    ) -> Result<BTreeSet<DeviceId>, ClientError> {
        match self.link.request(Request::Devices(user.clone())).await? {
            Down::Devices { devices, .. } => Ok(devices),
            Down::Refused { why, .. } => Err(ClientError::RequestRefused(why)),
            _ => Err(ClientError::UnexpectedAnswer {
                expected: "DEVICES",
            }),
        }
    }

    /// Asks to leave: the next commit of any other member removes this
    /// device (members commit at once when they read the request).
    pub async fn leave(&mut self, group: &[u8]) -> Result<(), ClientError> {
        let message = self.device.leave(group)?;
        let epoch = self.device.epoch(group)?;
        self.submit_message(group, epoch, message).await
    }

    pub(super) async fn submit_message(
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
            Down::Refused { why, .. } => Err(ClientError::RequestRefused(why)),
            _ => Err(ClientError::UnexpectedAnswer {
                expected: "ACCEPTED or REFUSED",
            }),
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
        let listed = self.listed_devices(&me).await?;
        let now = tokio::time::Instant::now();
        self.unaddable
            .retain(|_, at| now.duration_since(*at) < super::member::UNADDABLE_RETRY);
        for g in groups {
            let present: BTreeSet<DeviceId> = g
                .members
                .iter()
                .filter_map(|(u, d)| device_id(u, d))
                .collect();
            // Devices that could not be added lately are not claimed for
            // again until UNADDABLE_RETRY has passed.
            if listed
                .iter()
                .all(|d| present.contains(d) || self.unaddable.contains_key(d))
            {
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
            let id = g.id.clone();
            events.extend(
                self.commit(&id, |d, now| add_missing(d, &id, &missing, now))
                    .await?,
            );
        }
        Ok(events)
    }
}

/// The short form of a group id that tells groups of one name apart (the
/// first 8 hex digits; [`Member::find_group`] takes any prefix).
pub fn group_tag(id: &[u8]) -> String {
    let hex = blindrelay_wire::codec::hex(id);
    hex.chars().take(8).collect()
}

/// A commit that adds nothing.
fn plain(
    out: Result<Outgoing, MlsError>,
) -> Result<Option<(Outgoing, BTreeSet<DeviceId>)>, MlsError> {
    out.map(|o| Some((o, BTreeSet::new())))
}

/// A commit adding the claimed devices that are not in the group now
/// (after a lost race, the winner may have added some); `None` if none is
/// left.
fn add_missing(
    device: &mut Device,
    group: &[u8],
    claimed: &[Claimed],
    present: &BTreeSet<DeviceId>,
) -> Result<Option<(Outgoing, BTreeSet<DeviceId>)>, MlsError> {
    let fresh: Vec<&Claimed> = claimed
        .iter()
        .filter(|c| !present.contains(&c.device))
        .collect();
    if fresh.is_empty() {
        return Ok(None);
    }
    let kps: Vec<Vec<u8>> = fresh.iter().map(|c| c.key_package.clone()).collect();
    let added = fresh.iter().map(|c| c.device.clone()).collect();
    Ok(Some((device.add(group, &kps)?, added)))
}
