//! Published GroupInfos: the relay's check of one a member publishes,
//! the tree it hands out with it, and a re-joining device's reading of
//! both (see `crate::device::rejoin` and `crate::rules`).

use mls_rs::MlsMessage;
use mls_rs::extension::built_in::ExternalPubExt;
use mls_rs::group::ExportedTree;

use super::{DeviceNames, ObserveError, Observer};
use crate::credential::member_names;

/// A published GroupInfo, verified (see [`Observer::inspect`]).
#[derive(Debug)]
pub struct Published {
    /// Its group.
    pub group_id: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// The device that signed it.
    pub signer: Option<DeviceNames>,
    /// The group's devices and their leaves.
    pub members: Vec<(DeviceNames, u32)>,
}

impl Observer {
    /// A GroupInfo a member publishes for re-joins (see
    /// [`crate::Device::group_info`]): it must be a GroupInfo of the
    /// group's current epoch whose context is exactly the group's public
    /// state `state`, that verifies (its signature by its signer's leaf,
    /// every leaf's certificate, the tree against its hash), that carries
    /// the key for external commits, and that `sender` signed. Returns
    /// its epoch.
    pub fn check_group_info(
        &self,
        state: &[u8],
        group_info: &[u8],
        sender: &DeviceNames,
    ) -> Result<u64, ObserveError> {
        let group = self.load(state)?;
        let msg =
            MlsMessage::from_bytes(group_info).map_err(|_| ObserveError::Shape("GroupInfo"))?;
        let info = msg
            .as_group_info()
            .ok_or(ObserveError::Shape("GroupInfo"))?;
        if info.group_context() != group.group_context() {
            return Err(ObserveError::Shape(
                "GroupInfo of the group's current epoch",
            ));
        }
        let has_key = info
            .extensions()
            .get_as::<ExternalPubExt>()
            .ok()
            .flatten()
            .is_some();
        if !has_key {
            return Err(ObserveError::Shape("GroupInfo for external commits"));
        }
        let signer = group
            .roster()
            .member_with_index(info.sender())
            .ok()
            .and_then(|m| member_names(&m.signing_identity));
        if signer.as_ref() != Some(sender) {
            return Err(ObserveError::NotSender);
        }
        let epoch = group.group_context().epoch;
        // The signature and the tree, as a joiner will check them.
        self.client
            .observe_group(msg, Some(group.exported_tree()), Some(self.now()))
            .map_err(|_| ObserveError::Invalid)?;
        Ok(epoch)
    }

    /// The group's ratchet tree (public keys and certificates), from its
    /// public state: what a device re-joining needs beside the GroupInfo,
    /// which binds it by its tree hash.
    pub fn tree(&self, state: &[u8]) -> Result<Vec<u8>, ObserveError> {
        self.load(state)?
            .export_tree()
            .map_err(|_| ObserveError::State)
    }

    /// What a published GroupInfo and the tree handed out with it say,
    /// once both verify (the GroupInfo's signature by its signer's leaf,
    /// the tree against the GroupInfo's tree hash, every leaf's
    /// certificate): see [`crate::Device::rejoin`].
    pub fn inspect(&self, group_info: &[u8], tree: &[u8]) -> Result<Published, ObserveError> {
        let msg =
            MlsMessage::from_bytes(group_info).map_err(|_| ObserveError::Shape("GroupInfo"))?;
        let signer = msg
            .as_group_info()
            .ok_or(ObserveError::Shape("GroupInfo"))?
            .sender();
        let tree = ExportedTree::from_bytes(tree).map_err(|_| ObserveError::Shape("tree"))?;
        let group = self
            .client
            .observe_group(msg, Some(tree), Some(self.now()))
            .map_err(|_| ObserveError::Invalid)?;
        let members: Vec<(DeviceNames, u32)> = group
            .roster()
            .members_iter()
            .filter_map(|m| Some((member_names(&m.signing_identity)?, m.index)))
            .collect();
        Ok(Published {
            group_id: group.group_context().group_id.clone(),
            epoch: group.group_context().epoch,
            signer: members
                .iter()
                .find(|(_, i)| *i == signer)
                .map(|(n, _)| n.clone()),
            members,
        })
    }
}
