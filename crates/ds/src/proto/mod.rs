//! The v2 messages between a device and the relay: their layouts, a strict
//! decoder and an encoder for each (PROTOCOL.md section 11.7).
//!
//! A message is carried whole in the chunks of DS_UP (device to relay) or
//! DS_DOWN (relay to device) frames (`blindrelay_wire::Chunk`). Integers
//! are big-endian; `bytes` is `len u32 | bytes`; `group` is `len u8
//! (1..=MAX_GROUP_ID) | bytes`; `device` is `user (len u8 | name) | device
//! (len u8 | name)`, both validated.
//!
//! ```text
//! Request  = kind u8 | req u32 | fields
//!   0x01 UPLOAD   count u16 | bytes*count | last_resort u8 (0/1) | [bytes]
//!   0x02 CLAIM    user
//!   0x03 COMMIT   group | epoch u64 | count u16 | device*count | commit bytes
//!                 | welcome u8 (0/1) | [count u16 | device*count | bytes]
//!   0x04 MESSAGE  group | epoch u64 | bytes
//!   0x05 ACK      seq u64                      (no answer)
//!   0x06 DEVICES  user
//!   0x07 PUBLISH  group | epoch u64 | group_info bytes
//!   0x08 GROUP_INFO group
//! Down     = kind u8 | fields
//!   0x80 HELLO    device | key_packages u32    (after login; informative)
//!   0x81 UPLOADED req u32 | key_packages u32
//!   0x82 CLAIMED  req u32 | count u16 | (device | last_resort u8 | bytes)*count
//!   0x83 ACCEPTED req u32 | epoch u64 | recipients u32
//!   0x84 REFUSED  req u32 | code u8 | epoch u64 (the group's, for STALE_EPOCH)
//!   0x85 DEVICES  req u32 | count u16 | device*count
//!   0x86 GROUP_INFO req u32 | epoch u64 | group_info bytes | tree bytes
//!   0x90 DELIVERY seq u64 | what u8 (1 group message, 2 Welcome) | group | bytes
//! ```
//!
//! Nothing a device decides depends on HELLO, ACCEPTED's figures or a
//! DELIVERY's group id: the MLS messages carry their own group, epoch and
//! sender, and `blindrelay-mls` checks those.

use std::collections::BTreeSet;

use blindrelay_pki::DeviceName;
use blindrelay_wire::codec::{Reader, put_name};
use blindrelay_wire::{UserName, WireError};

use crate::{Claimed, Delivery, DeviceId, DsError, Submission};

mod down;

/// The longest group id (mls-rs makes 32-byte ones).
pub const MAX_GROUP_ID: usize = u8::MAX as usize;

/// A device's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Publish one-time KeyPackages and, optionally, a new last-resort one.
    Upload {
        /// The one-time KeyPackages.
        one_time: Vec<Vec<u8>>,
        /// The last-resort KeyPackage.
        last_resort: Option<Vec<u8>>,
    },
    /// One KeyPackage for each device of a person.
    Claim(UserName),
    /// A commit or a message for a group.
    Submit(Submission),
    /// Everything up to `seq` in this device's mailbox was processed.
    Ack(u64),
    /// The devices of a person that have KeyPackages (none consumed).
    Devices(UserName),
    /// A member's GroupInfo of the group's current epoch, with the key
    /// for external commits, for devices that must re-join.
    Publish {
        /// The group.
        group_id: Vec<u8>,
        /// The epoch it is of (the group's current one).
        epoch: u64,
        /// The GroupInfo (an MLS message, without the tree).
        group_info: Vec<u8>,
    },
    /// The group's newest published GroupInfo and its tree (a member cut
    /// off from a commit re-joins from them).
    GroupInfo(Vec<u8>),
}

/// Why the relay refused a request (a [`DsError`], or its own storage
/// failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The Delivery Service's rules refused it.
    Rules(RefusalCode),
    /// The relay could not store it: nothing was delivered; retry later.
    Storage,
}

/// The Delivery Service's refusals, as they travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// [`DsError::TooLarge`].
    TooLarge = 1,
    /// [`DsError::TooManyKeyPackages`].
    TooManyKeyPackages = 2,
    /// [`DsError::UnknownGroup`].
    UnknownGroup = 3,
    /// [`DsError::NotAMember`].
    NotAMember = 4,
    /// [`DsError::StaleEpoch`].
    StaleEpoch = 5,
    /// [`DsError::Membership`].
    Membership = 6,
    /// [`DsError::Capacity`].
    Capacity = 7,
    /// [`DsError::Unverified`] (code 8 is storage, below).
    Unverified = 9,
    /// [`DsError::NoGroupInfo`].
    NoGroupInfo = 10,
}

/// Storage failed (code 8 on the wire).
const STORAGE: u8 = 8;

impl RefusalCode {
    /// What the refusal means, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::TooLarge => "too large",
            Self::TooManyKeyPackages => "too many KeyPackages for one device",
            Self::UnknownGroup => "no such group",
            Self::NotAMember => "not a member of this group",
            Self::StaleEpoch => "another change to the group came first",
            Self::Membership => "the membership does not fit the change",
            Self::Capacity => "over capacity",
            Self::Unverified => "it does not verify against the group's public state",
            Self::NoGroupInfo => "no member has published the group's current state yet",
        }
    }
}

impl From<&DsError> for RefusalCode {
    fn from(e: &DsError) -> Self {
        match e {
            DsError::TooLarge => Self::TooLarge,
            DsError::TooManyKeyPackages => Self::TooManyKeyPackages,
            DsError::UnknownGroup => Self::UnknownGroup,
            DsError::NotAMember => Self::NotAMember,
            DsError::StaleEpoch { .. } => Self::StaleEpoch,
            DsError::Membership => Self::Membership,
            DsError::Capacity(_) => Self::Capacity,
            DsError::Unverified => Self::Unverified,
            DsError::NoGroupInfo => Self::NoGroupInfo,
        }
    }
}

/// What the relay sends a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// After login: who the relay took the device to be, and how many
    /// one-time KeyPackages it holds for it.
    Hello {
        /// The device, from its certificate.
        device: DeviceId,
        /// One-time KeyPackages held.
        key_packages: u32,
        /// The device's request budget: requests (ACK excepted) per
        /// window, shared by all its sessions; past it the relay ends the
        /// session. A device paces itself within it.
        budget: u32,
        /// The budget's window, milliseconds.
        window_ms: u32,
    },
    /// An upload was stored.
    Uploaded {
        /// The request.
        req: u32,
        /// One-time KeyPackages now held.
        key_packages: u32,
    },
    /// A claim's KeyPackages.
    Claimed {
        /// The request.
        req: u32,
        /// One per device that had one.
        key_packages: Vec<Claimed>,
    },
    /// A submission was accepted and stored in every recipient's mailbox.
    Accepted {
        /// The request.
        req: u32,
        /// The group's epoch after it.
        epoch: u64,
        /// Devices it went to.
        recipients: u32,
    },
    /// A request was refused; nothing changed.
    Refused {
        /// The request.
        req: u32,
        /// Why.
        why: Refusal,
        /// The group's current epoch, for [`RefusalCode::StaleEpoch`];
        /// 0 otherwise.
        epoch: u64,
    },
    /// A person's devices with KeyPackages.
    Devices {
        /// The request.
        req: u32,
        /// The devices.
        devices: BTreeSet<DeviceId>,
    },
    /// The group's newest published GroupInfo (of its current epoch) and
    /// its ratchet tree, as the relay follows it.
    GroupInfo {
        /// The request.
        req: u32,
        /// The group's current epoch.
        epoch: u64,
        /// The GroupInfo a member published.
        group_info: Vec<u8>,
        /// The group's ratchet tree (the GroupInfo binds it by its hash).
        tree: Vec<u8>,
    },
    /// An item of this device's mailbox.
    Delivery {
        /// Its place in the mailbox (acknowledge with [`Request::Ack`]).
        seq: u64,
        /// The item.
        item: Delivery,
    },
}

fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) -> Result<(), WireError> {
    let n = u32::try_from(bytes.len()).map_err(|_| WireError::TooLarge(bytes.len()))?;
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(bytes);
    Ok(())
}

fn get_bytes(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, WireError> {
    let n = r.u32(field)?;
    let n = usize::try_from(n).map_err(|_| WireError::Truncated(field))?;
    Ok(r.take(n, field)?.to_vec())
}

fn put_group(b: &mut Vec<u8>, id: &[u8]) -> Result<(), WireError> {
    // MAX_GROUP_ID is u8::MAX: the length byte is the bound.
    let len = u8::try_from(id.len()).map_err(|_| WireError::InvalidField("group id"))?;
    if len == 0 {
        return Err(WireError::InvalidField("group id"));
    }
    b.push(len);
    b.extend_from_slice(id);
    Ok(())
}

fn get_group(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
    let id = r.short_bytes("group id")?;
    if id.is_empty() {
        return Err(WireError::InvalidField("group id"));
    }
    Ok(id.to_vec())
}

fn put_device(b: &mut Vec<u8>, d: &DeviceId) {
    put_name(b, &d.user);
    let name = d.device.as_str().as_bytes();
    // A DeviceName is at most 64 bytes.
    b.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    b.extend_from_slice(name);
}

fn get_device(r: &mut Reader<'_>) -> Result<DeviceId, WireError> {
    let user = r.name("device user")?;
    let raw = r.short_bytes("device name")?;
    let device = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| DeviceName::new(s).ok())
        .ok_or(WireError::InvalidField("device name"))?;
    Ok(DeviceId { user, device })
}

fn put_devices<'a>(
    b: &mut Vec<u8>,
    devices: impl ExactSizeIterator<Item = &'a DeviceId>,
) -> Result<(), WireError> {
    let n = u16::try_from(devices.len()).map_err(|_| WireError::InvalidField("device count"))?;
    b.extend_from_slice(&n.to_be_bytes());
    for d in devices {
        put_device(b, d);
    }
    Ok(())
}

fn get_devices(r: &mut Reader<'_>) -> Result<BTreeSet<DeviceId>, WireError> {
    // Strict: ascending (user, then device; bytewise), each once, so that a
    // list has one encoding (found by the `ds_request` fuzz target).
    let n = r.u16("device count")?;
    let mut out = BTreeSet::new();
    for _ in 0..n {
        let d = get_device(r)?;
        match out.last() {
            Some(last) if *last == d => {
                return Err(WireError::InvalidField("device listed twice"));
            }
            Some(last) if *last > d => {
                return Err(WireError::InvalidField("device list order"));
            }
            _ => {}
        }
        out.insert(d);
    }
    Ok(out)
}

fn get_flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, WireError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::InvalidField(field)),
    }
}

impl Request {
    /// The bytes of this request, numbered `req`.
    pub fn encode(&self, req: u32) -> Result<Vec<u8>, WireError> {
        let mut b = Vec::with_capacity(64);
        let kind = match self {
            Request::Upload { .. } => 0x01,
            Request::Claim(_) => 0x02,
            Request::Submit(Submission::Commit { .. }) => 0x03,
            Request::Submit(Submission::Message { .. }) => 0x04,
            Request::Ack(_) => 0x05,
            Request::Devices(_) => 0x06,
            Request::Publish { .. } => 0x07,
            Request::GroupInfo(_) => 0x08,
        };
        b.push(kind);
        b.extend_from_slice(&req.to_be_bytes());
        match self {
            Request::Upload {
                one_time,
                last_resort,
            } => {
                let n = u16::try_from(one_time.len())
                    .map_err(|_| WireError::InvalidField("key package count"))?;
                b.extend_from_slice(&n.to_be_bytes());
                for kp in one_time {
                    put_bytes(&mut b, kp)?;
                }
                b.push(u8::from(last_resort.is_some()));
                if let Some(kp) = last_resort {
                    put_bytes(&mut b, kp)?;
                }
            }
            Request::Claim(user) | Request::Devices(user) => put_name(&mut b, user),
            Request::Submit(Submission::Commit {
                group_id,
                epoch,
                members,
                commit,
                welcome,
                group_info,
            }) => {
                put_group(&mut b, group_id)?;
                b.extend_from_slice(&epoch.to_be_bytes());
                put_devices(&mut b, members.iter())?;
                put_bytes(&mut b, commit)?;
                b.push(u8::from(welcome.is_some()));
                if let Some((to, w)) = welcome {
                    put_devices(&mut b, to.iter())?;
                    put_bytes(&mut b, w)?;
                }
                b.push(u8::from(group_info.is_some()));
                if let Some(info) = group_info {
                    put_bytes(&mut b, info)?;
                }
            }
            Request::Submit(Submission::Message {
                group_id,
                epoch,
                message,
            }) => {
                put_group(&mut b, group_id)?;
                b.extend_from_slice(&epoch.to_be_bytes());
                put_bytes(&mut b, message)?;
            }
            Request::Ack(seq) => b.extend_from_slice(&seq.to_be_bytes()),
            Request::Publish {
                group_id,
                epoch,
                group_info,
            } => {
                put_group(&mut b, group_id)?;
                b.extend_from_slice(&epoch.to_be_bytes());
                put_bytes(&mut b, group_info)?;
            }
            Request::GroupInfo(group_id) => put_group(&mut b, group_id)?,
        }
        Ok(b)
    }

    /// A request and its number, decoded strictly.
    pub fn decode(bytes: &[u8]) -> Result<(u32, Self), WireError> {
        let mut r = Reader::new(bytes);
        let kind = r.u8("request kind")?;
        let req = r.u32("request number")?;
        let out = match kind {
            0x01 => {
                let n = r.u16("key package count")?;
                let mut one_time = Vec::new();
                for _ in 0..n {
                    one_time.push(get_bytes(&mut r, "key package")?);
                }
                let last_resort = if get_flag(&mut r, "last resort")? {
                    Some(get_bytes(&mut r, "last resort key package")?)
                } else {
                    None
                };
                Request::Upload {
                    one_time,
                    last_resort,
                }
            }
            0x02 => Request::Claim(r.name("claimed user")?),
            0x03 => {
                let group_id = get_group(&mut r)?;
                let epoch = r.u64("epoch")?;
                let members = get_devices(&mut r)?;
                let commit = get_bytes(&mut r, "commit")?;
                let welcome = if get_flag(&mut r, "welcome")? {
                    let to = get_devices(&mut r)?;
                    Some((to, get_bytes(&mut r, "welcome")?))
                } else {
                    None
                };
                let group_info = if get_flag(&mut r, "group info")? {
                    Some(get_bytes(&mut r, "group info")?)
                } else {
                    None
                };
                Request::Submit(Submission::Commit {
                    group_info,
                    group_id,
                    epoch,
                    members,
                    commit,
                    welcome,
                })
            }
            0x04 => Request::Submit(Submission::Message {
                group_id: get_group(&mut r)?,
                epoch: r.u64("epoch")?,
                message: get_bytes(&mut r, "message")?,
            }),
            0x05 => Request::Ack(r.u64("ack seq")?),
            0x06 => Request::Devices(r.name("user")?),
            0x07 => Request::Publish {
                group_id: get_group(&mut r)?,
                epoch: r.u64("epoch")?,
                group_info: get_bytes(&mut r, "group info")?,
            },
            0x08 => Request::GroupInfo(get_group(&mut r)?),
            _ => return Err(WireError::InvalidField("request kind")),
        };
        r.finish()?;
        Ok((req, out))
    }
}

/// A set of devices as `count u16 | device*count` (the relay's storage uses
/// the same layout as the wire).
pub fn encode_devices(devices: &BTreeSet<DeviceId>) -> Result<Vec<u8>, WireError> {
    let mut b = Vec::new();
    put_devices(&mut b, devices.iter())?;
    Ok(b)
}

/// The inverse of [`encode_devices`], strict.
pub fn decode_devices(bytes: &[u8]) -> Result<BTreeSet<DeviceId>, WireError> {
    let mut r = Reader::new(bytes);
    let out = get_devices(&mut r)?;
    r.finish()?;
    Ok(out)
}
