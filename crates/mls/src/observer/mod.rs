//! The relay's check of a group's handshake: its public state only.
//!
//! A Delivery Service that orders commits it cannot read can be made to
//! order garbage: one member submits bytes that no member can apply, the
//! relay moves the group's epoch on, and from then on it refuses every
//! member's messages as stale (issue 28's "bricked group"). So commits and
//! proposals travel as MLS `PublicMessage`s (signed, not encrypted; their
//! content is public keys, certificates and which leaves change), and the
//! relay follows each group's public state with mls-rs's
//! [`ExternalGroup`], the observer RFC 9420 §15.3 and RFC 9750 describe:
//!
//! * a new group starts from its creator's GroupInfo (epoch 0, the tree
//!   inside, signed by the creator, every leaf's certificate checked);
//! * a commit is ordered only if it verifies against the group's state
//!   (signature, membership tag-free public framing, proposals, path,
//!   parent hashes, every new certificate against the CA and the CRL at the
//!   relay's clock), and only if its signer is the device whose TLS
//!   session submitted it;
//! * a proposal is kept only if it is its sender's request to leave (the
//!   only proposal members send), signed by the submitting device;
//! * an application message must be a `PrivateMessage` of application
//!   content for the group and epoch it is submitted for, so nothing that
//!   changes a group can pass the relay unchecked (members refuse a
//!   handshake inside a `PrivateMessage`, see `device::receive`).
//!
//! What the relay learns from this is in PROTOCOL.md 11.4: the devices in
//! each group (it routed by them already), their leaves' public keys, and
//! which devices each commit adds and removes. Group names stay hidden
//! (see [`crate::name`]); messages stay `PrivateMessage`s.
//!
//! Nothing here is a decision of a member: members check everything
//! themselves. This only keeps the relay from ordering what members would
//! refuse.

use std::collections::BTreeSet;

use mls_rs::external_client::builder::{
    ExternalBaseConfig, WithCryptoProvider, WithIdentityProvider, WithMlsRules,
};
use mls_rs::external_client::{
    ExternalClient, ExternalGroup, ExternalReceivedMessage, ExternalSnapshot,
};
use mls_rs::group::proposal::Proposal;
use mls_rs::group::{ContentType, ProposalSender, Sender};
use mls_rs::mls_rules::DefaultMlsRules;
use mls_rs::time::MlsTime;
use mls_rs::{MlsMessage, MlsMessageDescription, WireFormat};
use mls_rs_crypto_awslc::AwsLcCryptoProvider;

use crate::credential::{DeviceIdentityProvider, Trust, member_names};
use crate::device::{CIPHER_SUITE, PQ_CIPHER_SUITE};
use crate::name::GROUP_NAME_EXTENSION;
use crate::rules::RejoinOnly;

mod published;
pub use published::Published;

type ObserverConfig = mls_rs::external_client::builder::IntoConfigOutput<
    WithMlsRules<
        RejoinOnly,
        WithIdentityProvider<
            DeviceIdentityProvider,
            WithCryptoProvider<AwsLcCryptoProvider, ExternalBaseConfig>,
        >,
    >,
>;

/// A device as the relay names it: person and device.
pub type DeviceNames = (String, String);

/// Why the relay refuses a handshake or message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    /// Not an MLS message of the expected kind, group and epoch.
    #[error("not a {0} for this group and epoch")]
    Shape(&'static str),
    /// It does not verify against the group's public state.
    #[error("it does not verify against the group's public state")]
    Invalid,
    /// Signed by another device than the one whose session submitted it.
    #[error("signed by another device than the one submitting it")]
    NotSender,
    /// A proposal other than its sender's request to leave.
    #[error("a proposal other than a request to leave")]
    Proposal,
    /// The group's stored public state cannot be read.
    #[error("the group's stored public state is unreadable")]
    State,
}

/// A commit the relay checked: the group's state and devices after it.
#[derive(Debug)]
pub struct Checked {
    /// The group's public state after the commit (to store).
    pub state: Vec<u8>,
    /// The epoch after the commit.
    pub epoch: u64,
    /// Every device in the group after the commit.
    pub members: BTreeSet<DeviceNames>,
    /// The devices the commit adds (the Welcome's recipients).
    pub added: BTreeSet<DeviceNames>,
}

/// The relay's MLS observer (see the module documentation).
pub struct Observer {
    client: ExternalClient<ObserverConfig>,
    trust: Trust,
}

/// The member leaf a PublicMessage names as its sender (`None`: no
/// member sender), and the device of that leaf in `group` (`None`: no
/// such member).
fn signer_of(
    group: &ExternalGroup<ObserverConfig>,
    msg: &MlsMessage,
) -> Option<(u32, Option<DeviceNames>)> {
    let index = match msg.description() {
        MlsMessageDescription::PublicProtocolMessage {
            sender: Sender::Member(i),
            ..
        } => i,
        _ => return None,
    };
    let names = group
        .roster()
        .member_with_index(index)
        .ok()
        .and_then(|m| member_names(&m.signing_identity));
    Some((index, names))
}

/// Checks that `msg` is a `PublicMessage` of `kind` for `group_id` at
/// `epoch`.
fn public(
    msg: &MlsMessage,
    group_id: &[u8],
    epoch: u64,
    kind: ContentType,
    what: &'static str,
) -> Result<(), ObserveError> {
    match msg.description() {
        MlsMessageDescription::PublicProtocolMessage {
            group_id: g,
            epoch_id,
            content_type,
            ..
        } if g == group_id && epoch_id == epoch && content_type == kind => Ok(()),
        _ => Err(ObserveError::Shape(what)),
    }
}

fn devices(group: &ExternalGroup<ObserverConfig>) -> BTreeSet<DeviceNames> {
    group
        .roster()
        .members_iter()
        .filter_map(|m| member_names(&m.signing_identity))
        .collect()
}

impl Observer {
    /// An observer trusting `trust` (the relay's CA and CRL, and its
    /// clock: set it before each check).
    pub fn new(trust: Trust) -> Self {
        let client = ExternalClient::builder()
            .crypto_provider(AwsLcCryptoProvider::with_enabled_cipher_suites(vec![
                CIPHER_SUITE,
                PQ_CIPHER_SUITE,
            ]))
            .identity_provider(trust.identity_provider())
            .extension_type(GROUP_NAME_EXTENSION)
            .mls_rules(RejoinOnly(DefaultMlsRules::new()))
            .build();
        Self { client, trust }
    }

    /// The trust every check uses.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    fn now(&self) -> MlsTime {
        MlsTime::from(self.trust.now())
    }

    fn load(&self, state: &[u8]) -> Result<ExternalGroup<ObserverConfig>, ObserveError> {
        let snapshot = ExternalSnapshot::from_bytes(state).map_err(|_| ObserveError::State)?;
        self.client
            .load_group(snapshot)
            .map_err(|_| ObserveError::State)
    }

    /// A new group's first commit: the creator's GroupInfo for epoch 0
    /// (with the tree, the creator its only member) and the commit made
    /// on it, both by `sender`.
    pub fn create(
        &self,
        group_id: &[u8],
        group_info: &[u8],
        commit: &[u8],
        sender: &DeviceNames,
    ) -> Result<Checked, ObserveError> {
        // The GroupInfo's group and epoch need no check of their own: the
        // commit must be for `group_id` at epoch 0 (`verify`), and mls-rs
        // applies it only to the group and epoch it was made for.
        let info =
            MlsMessage::from_bytes(group_info).map_err(|_| ObserveError::Shape("GroupInfo"))?;
        if info.as_group_info().is_none() {
            return Err(ObserveError::Shape("GroupInfo"));
        }
        let group = self
            .client
            .observe_group(info, None, Some(self.now()))
            .map_err(|_| ObserveError::Invalid)?;
        // The creator alone (a tree holds each identity once).
        if devices(&group) != BTreeSet::from([sender.clone()]) {
            return Err(ObserveError::NotSender);
        }
        self.apply(group, group_id, 0, commit, sender)
    }

    /// A commit for a group at `epoch`, whose public state is `state`.
    pub fn commit(
        &self,
        state: &[u8],
        group_id: &[u8],
        epoch: u64,
        commit: &[u8],
        sender: &DeviceNames,
    ) -> Result<Checked, ObserveError> {
        // The state's group and epoch must be the commit's: `verify` checks
        // the commit against `group_id` and `epoch`, mls-rs against the
        // state.
        let group = self.load(state)?;
        self.apply(group, group_id, epoch, commit, sender)
    }

    fn apply(
        &self,
        group: ExternalGroup<ObserverConfig>,
        group_id: &[u8],
        epoch: u64,
        commit: &[u8],
        sender: &DeviceNames,
    ) -> Result<Checked, ObserveError> {
        let (signer, checked) = self.verify(group, group_id, epoch, commit)?;
        if &signer != sender {
            return Err(ObserveError::NotSender);
        }
        Ok(checked)
    }

    /// Starts following a group from any GroupInfo with its tree inside
    /// (a member checking its own group's public state, see
    /// [`Observer::signer`]); returns the state.
    pub fn follow(&self, group_info: &[u8]) -> Result<Vec<u8>, ObserveError> {
        let info =
            MlsMessage::from_bytes(group_info).map_err(|_| ObserveError::Shape("GroupInfo"))?;
        let group = self
            .client
            .observe_group(info, None, Some(self.now()))
            .map_err(|_| ObserveError::Invalid)?;
        group.snapshot().to_bytes().map_err(|_| ObserveError::State)
    }

    /// The device that signed `commit`, if it passes every check the
    /// relay makes against `state` (see [`Observer::commit`]).
    pub fn signer(
        &self,
        state: &[u8],
        group_id: &[u8],
        epoch: u64,
        commit: &[u8],
    ) -> Result<DeviceNames, ObserveError> {
        let group = self.load(state)?;
        Ok(self.verify(group, group_id, epoch, commit)?.0)
    }

    /// Checks `commit` against `group`: its signer and the result.
    fn verify(
        &self,
        mut group: ExternalGroup<ObserverConfig>,
        group_id: &[u8],
        epoch: u64,
        commit: &[u8],
    ) -> Result<(DeviceNames, Checked), ObserveError> {
        let msg = MlsMessage::from_bytes(commit).map_err(|_| ObserveError::Shape("commit"))?;
        public(&msg, group_id, epoch, ContentType::Commit, "public commit")?;
        // A member's commit names its signer's leaf; an external commit
        // (a device re-joining, see `crate::rules`) signs with its new one.
        let external = matches!(
            msg.description(),
            MlsMessageDescription::PublicProtocolMessage {
                sender: Sender::NewMemberCommit,
                ..
            }
        );
        let member_signer = if external {
            None
        } else {
            let (_, names) = signer_of(&group, &msg).ok_or(ObserveError::Shape("public commit"))?;
            Some(names.ok_or(ObserveError::NotSender)?)
        };
        let before = devices(&group);
        let committer = match group.process_incoming_message_with_time(msg, self.now()) {
            Ok(ExternalReceivedMessage::Commit(c)) => c.committer,
            _ => return Err(ObserveError::Invalid),
        };
        let signer_names = match member_signer {
            Some(names) => names,
            None => {
                // `RejoinOnly` and mls-rs already require the external
                // commit to replace a leaf of the same device; a device
                // that was not a member is refused here as well.
                let names = group
                    .roster()
                    .member_with_index(committer)
                    .ok()
                    .and_then(|m| member_names(&m.signing_identity))
                    .ok_or(ObserveError::Invalid)?;
                if !before.contains(&names) {
                    return Err(ObserveError::Invalid);
                }
                names
            }
        };
        let members = devices(&group);
        let added = members.difference(&before).cloned().collect();
        let state = group
            .snapshot()
            .to_bytes()
            .map_err(|_| ObserveError::State)?;
        Ok((
            signer_names,
            Checked {
                state,
                epoch: group.group_context().epoch,
                members,
                added,
            },
        ))
    }

    /// A proposal for a group at `epoch`: only its sender's request to
    /// leave is kept (it may be committed by reference). Returns the
    /// group's public state with it.
    pub fn proposal(
        &self,
        state: &[u8],
        group_id: &[u8],
        epoch: u64,
        proposal: &[u8],
        sender: &DeviceNames,
    ) -> Result<Vec<u8>, ObserveError> {
        let mut group = self.load(state)?;
        let msg = MlsMessage::from_bytes(proposal).map_err(|_| ObserveError::Shape("proposal"))?;
        public(
            &msg,
            group_id,
            epoch,
            ContentType::Proposal,
            "public proposal",
        )?;
        if group.group_context().epoch != epoch {
            return Err(ObserveError::Shape("proposal"));
        }
        let (signer, signer_names) =
            signer_of(&group, &msg).ok_or(ObserveError::Shape("public proposal"))?;
        if signer_names.as_ref() != Some(sender) {
            return Err(ObserveError::NotSender);
        }
        match group.process_incoming_message_with_time(msg, self.now()) {
            Ok(ExternalReceivedMessage::Proposal(p)) => {
                let leaving = matches!(
                    (&p.proposal, p.sender),
                    (Proposal::Remove(r), ProposalSender::Member(i)) if r.to_remove() == i && i == signer
                );
                if !leaving {
                    return Err(ObserveError::Proposal);
                }
            }
            _ => return Err(ObserveError::Invalid),
        }
        group.snapshot().to_bytes().map_err(|_| ObserveError::State)
    }

    /// What a message submitted as a non-commit is: `true` for a
    /// proposal (check it with [`Observer::proposal`]), `false` for an
    /// application message (a `PrivateMessage` of application content for
    /// `group_id` at `epoch`, the only kind the relay carries unchecked).
    pub fn is_proposal(bytes: &[u8], group_id: &[u8], epoch: u64) -> Result<bool, ObserveError> {
        let msg = MlsMessage::from_bytes(bytes).map_err(|_| ObserveError::Shape("message"))?;
        if msg.wire_format() == WireFormat::PublicMessage {
            public(
                &msg,
                group_id,
                epoch,
                ContentType::Proposal,
                "public proposal",
            )?;
            return Ok(true);
        }
        match msg.description() {
            MlsMessageDescription::PrivateProtocolMessage {
                group_id: g,
                epoch_id,
                content_type: ContentType::Application,
            } if g == group_id && epoch_id == epoch => Ok(false),
            _ => Err(ObserveError::Shape("application message")),
        }
    }
}
