//! Gaps in a group's history: a message from an epoch this device has not
//! reached proves that a commit before it is missing (withheld, delayed or
//! reordered by the relay). Such a message is never refused and forgotten:
//! it is held in the device's database until the group reaches its epoch,
//! then processed in order; until then the device neither sends nor
//! commits in that group, because a message sent at a stale epoch can be
//! read by members that the missing commit removed.
//!
//! Everything here is judged from the MLS message itself (its group id and
//! epoch, which mls-rs authenticates when it processes the message) and
//! from this device's own state; nothing the relay labels an item with.

use mls_rs::group::ContentType;
use mls_rs::{MlsMessage, MlsMessageDescription};

use super::Device;
use crate::error::MlsError;
use crate::storage::Held;

/// Where a message from the network stands against this device's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// For a group this device holds, at an epoch it can process now (the
    /// current one, or a retained prior one).
    Now,
    /// A handshake (commit or proposal) from an epoch before the group's
    /// current one: already processed or superseded (most often this
    /// device's own commit read back).
    PastHandshake,
    /// From an epoch this device has not reached: a commit is missing.
    Ahead {
        /// The group.
        group_id: Vec<u8>,
        /// The message's epoch.
        epoch: u64,
        /// The group's epoch on this device.
        current: u64,
    },
    /// For no group this device holds, or not a group message at all:
    /// [`Device::receive`] refuses it.
    Other,
}

/// The group id, epoch and whether it is an application message, from a
/// group message's header (no decryption); `None` for anything else.
pub(super) fn describe(msg: &MlsMessage) -> Option<(&[u8], u64, bool)> {
    match msg.description() {
        MlsMessageDescription::PrivateProtocolMessage {
            group_id,
            epoch_id,
            content_type,
        }
        | MlsMessageDescription::PublicProtocolMessage {
            group_id,
            epoch_id,
            content_type,
            ..
        } => Some((group_id, epoch_id, content_type == ContentType::Application)),
        _ => None,
    }
}

impl Device {
    /// Where `bytes` stands (see [`Position`]).
    pub fn position(&mut self, bytes: &[u8]) -> Position {
        let Ok(msg) = MlsMessage::from_bytes(bytes) else {
            return Position::Other;
        };
        let Some((group_id, epoch, application)) = describe(&msg) else {
            return Position::Other;
        };
        let group_id = group_id.to_vec();
        let Ok(current) = self.epoch(&group_id) else {
            return Position::Other;
        };
        if epoch > current {
            Position::Ahead {
                group_id,
                epoch,
                current,
            }
        } else if epoch < current && !application {
            Position::PastHandshake
        } else {
            Position::Now
        }
    }

    /// Keeps a message from an epoch ahead of the group's (see
    /// [`Position::Ahead`]) until the group reaches it.
    pub fn hold(&mut self, group_id: &[u8], epoch: u64, bytes: &[u8]) -> Result<Held, MlsError> {
        Ok(self.store.hold(group_id, epoch, bytes)?)
    }

    /// `Some((current, newest))` when the group holds messages from epoch
    /// `newest`, past its `current` one: a commit is missing, and this
    /// device neither sends nor commits in the group until it arrives.
    pub fn behind(&mut self, group_id: &[u8]) -> Result<Option<(u64, u64)>, MlsError> {
        let Some(newest) = self.store.held_epoch(group_id)? else {
            return Ok(None);
        };
        let current = self.epoch(group_id)?;
        Ok((newest > current).then_some((current, newest)))
    }

    /// Whether the group holds any message (from any epoch).
    pub fn holds_messages(&mut self, group_id: &[u8]) -> Result<bool, MlsError> {
        Ok(self.store.held_epoch(group_id)?.is_some())
    }

    /// The oldest held message the group can process now (its epoch
    /// reached), with its number for [`Device::release_held`].
    pub fn next_held(&mut self, group_id: &[u8]) -> Result<Option<(i64, Vec<u8>)>, MlsError> {
        let current = self.epoch(group_id)?;
        Ok(self.store.next_held(group_id, current)?)
    }

    /// A held message was processed (or refused).
    pub fn release_held(&mut self, n: i64) -> Result<(), MlsError> {
        Ok(self.store.release(n)?)
    }

    /// Refuses to send or commit in a group this device is behind in.
    pub(super) fn not_behind(&mut self, group_id: &[u8]) -> Result<(), MlsError> {
        match self.behind(group_id)? {
            Some(_) => Err(MlsError::Behind),
            None => Ok(()),
        }
    }
}
