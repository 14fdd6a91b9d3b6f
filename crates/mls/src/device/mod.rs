//! One device's MLS client: its groups, its KeyPackages, and the rules
//! of protocol v2 around mls-rs.
//!
//! Decisions, and why:
//! * **The ciphersuite follows the device key.** The default,
//!   [`CIPHER_SUITE`] (MLS_128_DHKEMP256_AES128GCM_SHA256_P256), for P-256
//!   device keys: the key its certificate holds also signs its TLS
//!   handshake, hardware key stores (TPMs, smart cards, secure enclaves)
//!   hold P-256, and AES-128-GCM and P-256 run on aws-lc's assembly paths.
//!   Devices enrolled with Ed25519 keys use [`PQ_CIPHER_SUITE`], the hybrid
//!   post-quantum suite of mls-rs-crypto-awslc (X-Wing: ML-KEM-768 +
//!   X25519), whose signatures are Ed25519: recorded traffic stays secret
//!   against a future quantum computer; authentication stays classical.
//!   A group is on its creator's suite; devices of the other kind cannot
//!   join it. BENCHMARKS.md measures both.
//! * **Every commit carries a path** (it heals the committer) and the
//!   ratchet tree travels in the Welcome, so a joiner needs nothing the
//!   relay could choose.
//! * **Handshake messages are public** (PublicMessage: signed, not
//!   encrypted), so that the relay can check a commit before ordering it
//!   (`crate::observer`): it sees who is added and removed, as it routes
//!   by that anyway; a handshake inside a PrivateMessage is refused.
//!   Application messages are PrivateMessages, padded; the group's name is
//!   sealed (`crate::name`).
//! * **No out-of-order tolerance.** The relay orders each group's
//!   messages; a generation older than the next expected one is a replay
//!   or a reordering and is refused, and no skipped key is ever stored
//!   (a stolen state cannot read a message the device skipped).
//! * **Credentials are re-checked.** A message from a member whose
//!   certificate no longer passes (revoked, expired) is refused, and this
//!   device's own commits remove every such member.
//! * **Time is local.** Every validity judgement uses the clock the caller
//!   sets in [`crate::Trust`].

use std::collections::HashMap;
use std::time::Duration;

use blindrelay_e2e::VerifiedDevice;
use blindrelay_pki::DeviceKeyKind;
use mls_rs::client_builder::{
    BaseConfig, IntoConfigOutput, PaddingMode, WithCryptoProvider, WithGroupStateStorage,
    WithIdentityProvider, WithKeyPackageRepo, WithMlsRules,
};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::x509::CertificateChain;
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::time::MlsTime;
use mls_rs::{CipherSuite, Client, ExtensionList, Group};
use mls_rs_core::crypto::SignaturePublicKey;
use mls_rs_crypto_awslc::AwsLcCryptoProvider;

use crate::credential::{DeviceIdentityProvider, Trust, member_names};
use crate::error::MlsError;
use crate::key::DeviceKey;
use crate::name::{GROUP_NAME_EXTENSION, GroupName, NameKey};
use crate::rules::RejoinOnly;
use crate::storage::MlsStore;
use crate::types::Member;

mod blame;
mod commit;
mod fork;
mod gap;
mod key_packages;
mod naming;
mod receive;
mod rejoin;

pub use gap::Position;
mod roster;

/// The ciphersuite of groups of P-256 devices (see the module docs).
pub const CIPHER_SUITE: CipherSuite = CipherSuite::P256_AES128;
/// The hybrid post-quantum ciphersuite, for groups of Ed25519 devices:
/// mls-rs-crypto-awslc's X-Wing (ML-KEM-768 + X25519 KEM, AES-128-GCM,
/// SHA-256, Ed25519 signatures), private-use number 65100.
pub const PQ_CIPHER_SUITE: CipherSuite = CipherSuite::ML_KEM_768_X25519;

/// The ciphersuite a device's key allows: a group is on its creator's
/// suite, and only devices of the same kind can be members.
pub fn suite_for(kind: DeviceKeyKind) -> CipherSuite {
    match kind {
        DeviceKeyKind::P256 => CIPHER_SUITE,
        DeviceKeyKind::Ed25519 => PQ_CIPHER_SUITE,
    }
}
/// How long a KeyPackage stays valid.
pub const KEY_PACKAGE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// KeyPackages are dated this far in the past, so that a member whose
/// clock is behind the creator's still accepts them (the CA backdates
/// certificates for the same reason).
pub const KEY_PACKAGE_BACKDATE: Duration = Duration::from_secs(3600);
/// Largest application plaintext: a payload with a text as long as
/// version 1 allows (see [`crate::payload`]).
pub const MAX_PLAINTEXT: usize = crate::payload::MAX_PAYLOAD_LEN;
/// A device refreshes its leaf in every group at least this often (a
/// self-update commit), so that a stolen state stops reading within this
/// time even if the device never writes.
pub const SELF_UPDATE_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most groups held in memory at once; others are loaded from the
/// database when needed.
pub const MAX_LOADED_GROUPS: usize = 256;

pub(crate) type Config = IntoConfigOutput<
    WithMlsRules<
        RejoinOnly,
        WithKeyPackageRepo<
            MlsStore,
            WithGroupStateStorage<
                MlsStore,
                WithIdentityProvider<
                    DeviceIdentityProvider,
                    WithCryptoProvider<AwsLcCryptoProvider, BaseConfig>,
                >,
            >,
        >,
    >,
>;

/// One device's MLS client.
pub struct Device {
    client: Client<Config>,
    trust: Trust,
    store: MlsStore,
    me: VerifiedDevice,
    groups: HashMap<Vec<u8>, Group<Config>>,
    /// Re-joins waiting for the relay's order, with their commits (at
    /// most one per group this device holds; see `rejoin`).
    rejoining: HashMap<Vec<u8>, (Group<Config>, Vec<u8>)>,
}

fn time(trust: &Trust) -> MlsTime {
    MlsTime::from(trust.now())
}

/// Members other than this device whose certificate no longer passes
/// (revoked, expired): this device's next commit removes them.
fn failing_members(trust: &Trust, group: &Group<Config>) -> Vec<u32> {
    group
        .roster()
        .members_iter()
        .filter(|m| m.index != group.current_member_index())
        .filter(|m| {
            trust
                .verify_credential(&m.signing_identity.credential)
                .is_err()
        })
        .map(|m| m.index)
        .collect()
}

fn new_name_key() -> Result<NameKey, MlsError> {
    NameKey::generate().ok_or(MlsError::NoNameKey)
}

fn members(group: &Group<Config>) -> Vec<Member> {
    group
        .roster()
        .members_iter()
        .filter_map(|m| {
            let (user, device) = member_names(&m.signing_identity)?;
            Some(Member {
                user,
                device,
                index: m.index,
            })
        })
        .collect()
}

impl Device {
    /// The device `cert_der` with its `key`, trusting `trust`, keeping its
    /// state in `store`. Its own certificate must pass the checks every
    /// member applies, and the key must be the certificate's.
    pub fn open(
        key: DeviceKey,
        cert_der: Vec<u8>,
        trust: Trust,
        store: MlsStore,
    ) -> Result<Self, MlsError> {
        let me = trust
            .verify(&cert_der)
            .map_err(|e| MlsError::OwnCredential(e.into()))?;
        if me.public_key() != key.public() || me.kind() != key.kind() {
            return Err(MlsError::KeyMismatch);
        }
        let suite = suite_for(key.kind());
        let identity = SigningIdentity::new(
            CertificateChain::from(vec![cert_der]).into_credential(),
            SignaturePublicKey::from(me.public_key().to_vec()),
        );
        let rules = RejoinOnly(
            DefaultMlsRules::new()
                .with_commit_options(
                    CommitOptions::new()
                        .with_path_required(true)
                        .with_ratchet_tree_extension(true)
                        .with_single_welcome_message(true),
                )
                // Commits and proposals are PublicMessages, so that the relay
                // can check them before it orders them (see `crate::observer`);
                // application messages are always PrivateMessages.
                .with_encryption_options(EncryptionOptions::new(false, PaddingMode::Padme)),
        );
        let client = Client::builder()
            .crypto_provider(AwsLcCryptoProvider::with_enabled_cipher_suites(vec![suite]))
            .identity_provider(trust.identity_provider())
            .group_state_storage(store.clone())
            .key_package_repo(store.clone())
            .mls_rules(rules)
            .signing_identity(identity, key.into_secret(), suite)
            .key_package_lifetime(KEY_PACKAGE_LIFETIME)
            .extension_type(GROUP_NAME_EXTENSION)
            .build();
        Ok(Self {
            client,
            trust,
            store,
            me,
            groups: HashMap::new(),
            rejoining: HashMap::new(),
        })
    }

    /// The ciphersuite of this device's groups.
    pub fn cipher_suite(&self) -> CipherSuite {
        suite_for(self.me.kind())
    }

    /// This device, as its certificate says.
    pub fn me(&self) -> &VerifiedDevice {
        &self.me
    }

    /// The trust every check uses (set its clock before each operation).
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The database.
    pub fn store(&self) -> &MlsStore {
        &self.store
    }

    /// Creates a group with this device alone in it; returns its id.
    pub fn create_group(&mut self) -> Result<Vec<u8>, MlsError> {
        let group = self.client.create_group(
            ExtensionList::default(),
            ExtensionList::default(),
            Some(self.born()),
        )?;
        self.adopt_new(group, new_name_key()?)
    }

    /// Creates a group named `name` with this device alone in it; the
    /// name is inside the group (the relay never sees it).
    pub fn create_named_group(&mut self, name: &GroupName) -> Result<Vec<u8>, MlsError> {
        let key = new_name_key()?;
        let mut context = ExtensionList::default();
        context.set(name.extension(&key).ok_or(MlsError::NoNameKey)?);
        let group =
            self.client
                .create_group(context, ExtensionList::default(), Some(self.born()))?;
        self.adopt_new(group, key)
    }

    /// Asks to leave the group: a proposal to remove this device, for the
    /// other members (the next commit of any of them carries it out, and
    /// this device learns it was removed when that commit arrives).
    pub fn leave(&mut self, group_id: &[u8]) -> Result<Vec<u8>, MlsError> {
        let group = self.group(group_id)?;
        if group.has_pending_commit() {
            return Err(MlsError::CommitPending);
        }
        let me = group.current_member_index();
        let proposal = group.propose_remove(me, Vec::new())?;
        group.write_to_storage()?;
        Ok(proposal.to_bytes()?)
    }

    /// Creates a group with a chosen id (the relay refuses a commit for an
    /// id another group uses; nothing else depends on the id being fresh).
    pub fn create_group_with_id(&mut self, group_id: Vec<u8>) -> Result<Vec<u8>, MlsError> {
        let group = self.client.create_group_with_id(
            group_id,
            ExtensionList::default(),
            ExtensionList::default(),
            Some(self.born()),
        )?;
        self.adopt_new(group, new_name_key()?)
    }

    /// When a leaf this device makes is valid from: an hour ago
    /// ([`KEY_PACKAGE_BACKDATE`]), so that a member or relay whose clock is
    /// behind this device's still accepts it.
    fn born(&self) -> MlsTime {
        MlsTime::from(
            self.trust
                .now()
                .saturating_sub(KEY_PACKAGE_BACKDATE.as_secs()),
        )
    }

    /// Keeps a group this device just created, with its name key.
    fn adopt_new(&mut self, group: Group<Config>, key: NameKey) -> Result<Vec<u8>, MlsError> {
        self.store.keep_name_key(group.group_id(), &key)?;
        self.adopt(group)
    }

    /// Keeps a group this device just created or joined: stored, its leaf
    /// fresh as of now, and loaded.
    fn adopt(&mut self, mut group: Group<Config>) -> Result<Vec<u8>, MlsError> {
        group.write_to_storage()?;
        let id = group.group_id().to_vec();
        self.store.leaf_fresh(&id, self.trust.now())?;
        self.keep(id.clone(), group);
        Ok(id)
    }

    fn keep(&mut self, id: Vec<u8>, group: Group<Config>) {
        if self.groups.len() >= MAX_LOADED_GROUPS && !self.groups.contains_key(&id) {
            // Every group is written to storage after each change, so
            // dropping one from memory loses nothing but a pending commit,
            // and groups with one are never evicted.
            if let Some(k) = self
                .groups
                .iter()
                .find(|(_, g)| !g.has_pending_commit())
                .map(|(k, _)| k.clone())
            {
                self.groups.remove(&k);
            }
        }
        self.groups.insert(id, group);
    }

    fn group(&mut self, id: &[u8]) -> Result<&mut Group<Config>, MlsError> {
        if !self.groups.contains_key(id) {
            let group = match self.client.load_group(id) {
                Ok(g) => g,
                Err(mls_rs::error::MlsError::GroupNotFound) => return Err(MlsError::UnknownGroup),
                Err(e) => return Err(e.into()),
            };
            self.keep(id.to_vec(), group);
        }
        self.groups.get_mut(id).ok_or(MlsError::UnknownGroup)
    }

    /// The ids of every group this device is in.
    pub fn group_ids(&self) -> Result<Vec<Vec<u8>>, MlsError> {
        Ok(self.store.group_ids()?)
    }

    /// The group's members, by leaf index.
    pub fn members(&mut self, group_id: &[u8]) -> Result<Vec<Member>, MlsError> {
        Ok(members(self.group(group_id)?))
    }

    /// The group's current epoch.
    pub fn epoch(&mut self, group_id: &[u8]) -> Result<u64, MlsError> {
        Ok(self.group(group_id)?.current_epoch())
    }

    /// The epoch authenticator (RFC 9420 §8.7): equal on every member that
    /// agrees on the group's whole history. Members compare it (or a
    /// digest of it) to detect a relay that forked the group.
    pub fn epoch_authenticator(&mut self, group_id: &[u8]) -> Result<Vec<u8>, MlsError> {
        Ok(self.group(group_id)?.epoch_authenticator()?.to_vec())
    }

    /// Encrypts an application message for the group.
    pub fn encrypt(&mut self, group_id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, MlsError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(MlsError::TooLarge);
        }
        self.not_behind(group_id)?;
        let group = self.group(group_id)?;
        if group.has_pending_commit() {
            return Err(MlsError::CommitPending);
        }
        // The fork tag (see `fork`) of this epoch, in the clear.
        let tag = fork::tag(&group.epoch_authenticator()?);
        let msg = group.encrypt_application_message(plaintext, tag)?;
        group.write_to_storage()?;
        Ok(msg.to_bytes()?)
    }
}
