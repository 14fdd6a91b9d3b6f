//! The relay's side of the v2 messages: [`Down`]'s encoder and strict
//! decoder (layouts in the parent module).

use blindrelay_wire::WireError;
use blindrelay_wire::codec::Reader;

use super::{
    Down, Refusal, RefusalCode, STORAGE, get_bytes, get_device, get_devices, get_flag, get_group,
    put_bytes, put_device, put_devices, put_group,
};
use crate::{Claimed, Delivery};

impl Down {
    /// The refusal of request `req` for `e` (with the group's current
    /// epoch when `e` is a stale epoch, 0 otherwise).
    pub fn refused(req: u32, e: &crate::DsError) -> Self {
        let epoch = match e {
            crate::DsError::StaleEpoch { current } => *current,
            _ => 0,
        };
        Down::Refused {
            req,
            why: Refusal::Rules(RefusalCode::from(e)),
            epoch,
        }
    }

    /// The bytes of this message.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut b = Vec::with_capacity(64);
        match self {
            Down::Hello {
                device,
                key_packages,
                budget,
                window_ms,
            } => {
                b.push(0x80);
                put_device(&mut b, device);
                b.extend_from_slice(&key_packages.to_be_bytes());
                b.extend_from_slice(&budget.to_be_bytes());
                b.extend_from_slice(&window_ms.to_be_bytes());
            }
            Down::Uploaded { req, key_packages } => {
                b.push(0x81);
                b.extend_from_slice(&req.to_be_bytes());
                b.extend_from_slice(&key_packages.to_be_bytes());
            }
            Down::Claimed { req, key_packages } => {
                b.push(0x82);
                b.extend_from_slice(&req.to_be_bytes());
                let n = u16::try_from(key_packages.len())
                    .map_err(|_| WireError::InvalidField("claimed count"))?;
                b.extend_from_slice(&n.to_be_bytes());
                for c in key_packages {
                    put_device(&mut b, &c.device);
                    b.push(u8::from(c.last_resort));
                    put_bytes(&mut b, &c.key_package)?;
                }
            }
            Down::Accepted {
                req,
                epoch,
                recipients,
            } => {
                b.push(0x83);
                b.extend_from_slice(&req.to_be_bytes());
                b.extend_from_slice(&epoch.to_be_bytes());
                b.extend_from_slice(&recipients.to_be_bytes());
            }
            Down::Refused { req, why, epoch } => {
                b.push(0x84);
                b.extend_from_slice(&req.to_be_bytes());
                b.push(match why {
                    Refusal::Rules(c) => *c as u8,
                    Refusal::Storage => STORAGE,
                });
                b.extend_from_slice(&epoch.to_be_bytes());
            }
            Down::Devices { req, devices } => {
                b.push(0x85);
                b.extend_from_slice(&req.to_be_bytes());
                put_devices(&mut b, devices.iter())?;
            }
            Down::GroupInfo {
                req,
                epoch,
                group_info,
                tree,
            } => {
                b.push(0x86);
                b.extend_from_slice(&req.to_be_bytes());
                b.extend_from_slice(&epoch.to_be_bytes());
                put_bytes(&mut b, group_info)?;
                put_bytes(&mut b, tree)?;
            }
            Down::Delivery { seq, item } => {
                b.push(0x90);
                b.extend_from_slice(&seq.to_be_bytes());
                let (what, group, bytes) = match item {
                    Delivery::Group { group_id, message } => (1, group_id, message),
                    Delivery::Welcome { group_id, welcome } => (2, group_id, welcome),
                };
                b.push(what);
                put_group(&mut b, group)?;
                put_bytes(&mut b, bytes)?;
            }
        }
        Ok(b)
    }

    /// A message from the relay, decoded strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let out = match r.u8("down kind")? {
            0x80 => Down::Hello {
                device: get_device(&mut r)?,
                key_packages: r.u32("key packages")?,
                budget: r.u32("budget")?,
                window_ms: r.u32("budget window")?,
            },
            0x81 => Down::Uploaded {
                req: r.u32("request number")?,
                key_packages: r.u32("key packages")?,
            },
            0x82 => {
                let req = r.u32("request number")?;
                let n = r.u16("claimed count")?;
                let mut key_packages = Vec::new();
                for _ in 0..n {
                    key_packages.push(Claimed {
                        device: get_device(&mut r)?,
                        last_resort: get_flag(&mut r, "last resort")?,
                        key_package: get_bytes(&mut r, "key package")?,
                    });
                }
                Down::Claimed { req, key_packages }
            }
            0x83 => Down::Accepted {
                req: r.u32("request number")?,
                epoch: r.u64("epoch")?,
                recipients: r.u32("recipients")?,
            },
            0x84 => {
                let req = r.u32("request number")?;
                let why = match r.u8("refusal code")? {
                    1 => Refusal::Rules(RefusalCode::TooLarge),
                    2 => Refusal::Rules(RefusalCode::TooManyKeyPackages),
                    3 => Refusal::Rules(RefusalCode::UnknownGroup),
                    4 => Refusal::Rules(RefusalCode::NotAMember),
                    5 => Refusal::Rules(RefusalCode::StaleEpoch),
                    6 => Refusal::Rules(RefusalCode::Membership),
                    7 => Refusal::Rules(RefusalCode::Capacity),
                    9 => Refusal::Rules(RefusalCode::Unverified),
                    10 => Refusal::Rules(RefusalCode::NoGroupInfo),
                    STORAGE => Refusal::Storage,
                    _ => return Err(WireError::InvalidField("refusal code")),
                };
                Down::Refused {
                    req,
                    why,
                    epoch: r.u64("epoch")?,
                }
            }
            0x85 => Down::Devices {
                req: r.u32("request number")?,
                devices: get_devices(&mut r)?,
            },
            0x86 => Down::GroupInfo {
                req: r.u32("request number")?,
                epoch: r.u64("epoch")?,
                group_info: get_bytes(&mut r, "group info")?,
                tree: get_bytes(&mut r, "tree")?,
            },
            0x90 => {
                let seq = r.u64("delivery seq")?;
                let what = r.u8("delivery kind")?;
                let group_id = get_group(&mut r)?;
                let bytes = get_bytes(&mut r, "delivery")?;
                let item = match what {
                    1 => Delivery::Group {
                        group_id,
                        message: bytes,
                    },
                    2 => Delivery::Welcome {
                        group_id,
                        welcome: bytes,
                    },
                    _ => return Err(WireError::InvalidField("delivery kind")),
                };
                Down::Delivery { seq, item }
            }
            _ => return Err(WireError::InvalidField("down kind")),
        };
        r.finish()?;
        Ok(out)
    }
}
