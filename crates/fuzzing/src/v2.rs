//! Fuzzing entry points of protocol v2: what the relay and a device read
//! from the network.
//!
//! * [`ds_request`]: the relay's intake. A sequence of length-prefixed DS
//!   requests, each decoded strictly (a request that decodes re-encodes to
//!   the same bytes) and decided by the Delivery Service's rules
//!   (KeyPackage directory, one order per group, mailboxes) for a few
//!   senders, with small limits that must hold after every step.
//! * [`ds_down`]: the device's decoder of the relay's messages (strict:
//!   one encoding per message).
//! * [`ds_chunks`]: DS_UP / DS_DOWN reassembly (both ends use the same
//!   code): a fuzzer-chosen sequence of chunks; nothing larger than the
//!   bound is ever put together.
//! * [`mls_intake`]: a device's intake of MLS bytes: a group message,
//!   Welcome or KeyPackage, as `Member` hands them to the device (position
//!   check, duplicate check, receive, join, KeyPackage owner). The device
//!   is in a group with a second device; no input may panic it, replace
//!   its group, or change its members.
//! * [`relay_check`]: the relay's check of a commit, proposal or message
//!   against a group's public state (`blindrelay_mls::Observer`): no input
//!   may panic it, and none may pass as a commit or proposal (the fuzzer
//!   holds no member's key, so nothing it makes is signed).

use std::cell::RefCell;
use std::collections::BTreeSet;

use blindrelay_ds::{DeviceId, Directory, Down, Groups, Kept, Limits, Request};
use blindrelay_e2e::TrustRoot;
use blindrelay_mls::{Device, DeviceKey, MlsStore, Observer, Trust};
use blindrelay_pki::{
    CertificateAuthority, CheckedRequest, DeviceKeyKind, DeviceName, Enrolment, Expect, Subject,
};
use blindrelay_wire::{Chunk, Reassembly, UserName};

fn device_id(user: &str, device: &str) -> Option<DeviceId> {
    Some(DeviceId {
        user: UserName::new(user).ok()?,
        device: DeviceName::new(device).ok()?,
    })
}

/// Small limits, so that the fuzzer reaches every bound.
const LIMITS: Limits = Limits {
    key_packages_per_device: 4,
    one_time_claims_per_claimer: 2,
    one_time_claims_per_hour: 5,
    key_package_bytes: 64,
    members_per_group: 4,
    groups: 4,
    groups_per_device: 2,
    groups_per_person: 3,
    groups_per_member: 3,
    mailbox_messages: 8,
    mailbox_bytes: 512,
    total_mailbox_bytes: 1024,
    message_bytes: 256,
    sender_share_divisor: 2,
    queued_bytes_per_sender: 768,
    queued_bytes_per_person: 900,
    mailbox_ttl_secs: 1000,
};

/// The relay's intake: `[sender % 3][len u16][request]...`.
pub fn ds_request(data: &[u8]) {
    let senders: Vec<DeviceId> = [("a", "x"), ("b", "x"), ("c", "y")]
        .iter()
        .filter_map(|(u, d)| device_id(u, d))
        .collect();
    let mut directory = Directory::new(LIMITS);
    let mut groups = Groups::new(LIMITS);
    let mut kept = Kept::new();
    let mut rest = data;
    while let [who, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        let Some(sender) = senders.get(usize::from(*who % 3)) else {
            return;
        };
        let Ok((req, request)) = Request::decode(bytes) else {
            continue;
        };
        match request.encode(req) {
            Ok(again) if again == bytes => {}
            _ => panic!("a DS request does not re-encode to its input"),
        }
        match request {
            Request::Upload {
                one_time,
                last_resort,
            } => {
                let _ = directory.upload(sender, one_time, last_resort);
            }
            Request::Claim(user) => {
                let claimed = directory.claim(&user, sender);
                if claimed.iter().any(|c| c.device == *sender) {
                    panic!("a claimer was handed its own KeyPackage");
                }
            }
            Request::Submit(sub) => {
                let known = groups
                    .newcomers(&sub)
                    .into_iter()
                    .all(|d| d == sender || directory.knows(d));
                if known {
                    let _ = groups.submit(sender, sub);
                }
            }
            Request::Devices(user) => {
                let _ = directory.devices_of(&user);
            }
            // The relay's handling of these is the observer's (the
            // `relay_check` target); the rules hold no state for them.
            Request::Publish { .. } | Request::GroupInfo(_) => {}
            // An acknowledgement from a sender byte of 0x80 or more stands
            // for the revocation of that device, and one of 0x40 or more
            // for an expiry sweep at `seq`.
            Request::Ack(_) if *who >= 0x80 => {
                directory.forget(sender);
                groups.forget_device(sender);
            }
            Request::Ack(seq) if *who >= 0x40 => {
                groups.mailboxes().expire(seq);
            }
            Request::Ack(seq) => groups.mailboxes().ack(sender, seq),
        }
        kept.sync(groups.mailboxes());
        // Every running count agrees with a recount, and no body is kept
        // that no item points at.
        if let Err(what) = groups.mailboxes_ref().audit() {
            panic!("mailbox accounts disagree: {what}");
        }
        for d in &senders {
            let items = kept.pending(groups.mailboxes_ref(), d);
            if items.len() != groups.mailboxes_ref().pending(d).len() {
                panic!("a mailbox item points at a body that was released");
            }
            let bytes: usize = items.iter().map(|(_, i)| i.size()).sum();
            if items.len() > LIMITS.mailbox_messages || bytes > LIMITS.mailbox_bytes {
                panic!("a mailbox is over its bound");
            }
        }
        if groups.mailboxes_ref().total_bytes() > LIMITS.total_mailbox_bytes {
            panic!("the mailboxes together are over their bound");
        }
        if kept.len() != groups.mailboxes_ref().bodies() {
            panic!("the bodies kept are not the bodies pointed at");
        }
    }
}

/// The device's decoder of what the relay sends.
pub fn ds_down(data: &[u8]) {
    if let Ok(d) = Down::decode(data) {
        match d.encode() {
            Ok(again) if again == data => {}
            _ => panic!("a DS answer does not re-encode to its input"),
        }
    }
}

/// Reassembly of chunks: `[msg][index hi][index lo][count][len][data]...`.
pub fn ds_chunks(data: &[u8]) {
    const MAX: usize = 3 * 100;
    let mut r = Reassembly::new(MAX);
    let mut rest = data;
    while let [msg, hi, lo, count, len, tail @ ..] = rest {
        let len = usize::from(*len % 101).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        let chunk = Chunk {
            msg: u32::from(*msg % 3),
            index: u16::from_be_bytes([*hi, *lo]) % 8,
            count: u16::from(*count % 8),
            data: bytes.to_vec(),
        };
        match r.push(chunk) {
            Ok(Some(whole)) if whole.len() > MAX => panic!("reassembled past the bound"),
            Ok(_) => {}
            // A refused chunk ends the sender's session; start over.
            Err(_) => r = Reassembly::new(MAX),
        }
    }
}

struct MlsWorld {
    bob: Device,
    group: Vec<u8>,
    members: Vec<(String, String)>,
}

fn enrol(ca: &CertificateAuthority, root: &TrustRoot, user: &str, device: &str) -> Option<Device> {
    let subject = Subject::Device(UserName::new(user).ok()?, DeviceName::new(device).ok()?);
    let e = Enrolment::with_device_key(&subject, DeviceKeyKind::P256).ok()?;
    let req = CheckedRequest::from_pem(e.request_pem.as_bytes(), Expect::User).ok()?;
    let signed = ca.sign_request(&req, 90).ok()?;
    let key = DeviceKey::from_pem(&e.key).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Device::open(
        key,
        signed.cert_der,
        Trust::new(root.clone(), now),
        MlsStore::in_memory().ok()?,
    )
    .ok()
}

/// alice's and bob's devices, the group alice made and added bob to, bob's
/// unused KeyPackages, and the Welcome (not yet taken by bob).
struct TwoDevices {
    alice: Device,
    bob: Device,
    group: Vec<u8>,
    key_packages: Vec<Vec<u8>>,
    welcome: Vec<u8>,
    /// The group's first commit and the GroupInfo it was made on.
    created: (Vec<u8>, Vec<u8>),
    /// The organisation's trust root.
    root: TrustRoot,
}

/// A throwaway organisation named `org` with alice and bob (bob has made
/// `kps` KeyPackages; the first added him).
fn two_devices(org: &str, kps: usize) -> Option<TwoDevices> {
    use rustls_pki_types::pem::PemObject;
    let ca = CertificateAuthority::create(org).ok()?;
    let ca_der = rustls_pki_types::CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())
        .ok()?
        .to_vec();
    let root = TrustRoot::new(ca_der).ok()?;
    let mut alice = enrol(&ca, &root, "alice", "laptop")?;
    let mut bob = enrol(&ca, &root, "bob", "laptop")?;
    let group = alice.create_group().ok()?;
    let mut kp = bob.key_packages(kps).ok()?;
    let first = kp.drain(..1).collect::<Vec<_>>();
    let add = alice.add(&group, &first).ok()?;
    alice.commit_accepted(&group).ok()?;
    Some(TwoDevices {
        alice,
        bob,
        group,
        key_packages: kp,
        welcome: add.welcome?,
        created: (add.group_info?, add.commit),
        root,
    })
}

fn mls_world() -> Option<MlsWorld> {
    let TwoDevices {
        mut bob,
        group,
        welcome,
        ..
    } = two_devices("fuzz org", 1)?;
    bob.join(&welcome).ok()?;
    let members = bob
        .members(&group)
        .ok()?
        .into_iter()
        .map(|m| (m.user, m.device))
        .collect();
    Some(MlsWorld {
        bob,
        group,
        members,
    })
}

/// Real MLS bytes of a throwaway organisation, as seeds for
/// [`mls_intake`]: a KeyPackage, a Welcome, a commit and an application
/// message (their keys are not the fuzzing world's, so they exercise the
/// decoders and the checks up to decryption).
pub fn mls_seeds() -> Option<Vec<(&'static str, Vec<u8>)>> {
    let TwoDevices {
        mut alice,
        group,
        key_packages: kps,
        welcome,
        ..
    } = two_devices("seed org", 2)?;
    let update = alice.update(&group).ok()?;
    alice.commit_accepted(&group).ok()?;
    let message = alice.encrypt(&group, b"seed").ok()?;
    Some(vec![
        ("key_package", kps.first()?.clone()),
        ("welcome", welcome),
        ("commit", update.commit),
        ("message", message),
    ])
}

thread_local! {
    static MLS: RefCell<Option<MlsWorld>> = RefCell::new(mls_world());
}

/// A device's intake of MLS bytes (see the module docs).
pub fn mls_intake(data: &[u8]) {
    MLS.with(|w| {
        let mut w = w.borrow_mut();
        let Some(w) = w.as_mut() else {
            panic!("the fuzzing organisation must set up");
        };
        let bob = &mut w.bob;
        let _ = bob.position(data);
        let _ = bob.already_processed(data);
        let _ = bob.key_package_owner(data);
        let _ = bob.receive(data);
        if let Ok(id) = bob.join(data)
            && id == w.group
        {
            panic!("a Welcome replaced a held group");
        }
        let members: Vec<(String, String)> = match bob.members(&w.group) {
            Ok(m) => m.into_iter().map(|m| (m.user, m.device)).collect(),
            Err(_) => panic!("the device lost its group"),
        };
        if members != w.members {
            let got: BTreeSet<_> = members.iter().collect();
            panic!("the group's members changed: {got:?}");
        }
    });
}

/// The relay's view of alice's group with bob: its observer and the
/// group's public state after the first commit.
struct CheckWorld {
    observer: Observer,
    group: Vec<u8>,
    state: Vec<u8>,
}

fn check_world() -> Option<CheckWorld> {
    let TwoDevices {
        group,
        created: (info, commit),
        root,
        ..
    } = two_devices("fuzz relay org", 1)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let observer = Observer::new(Trust::new(root, now));
    let alice = ("alice".to_string(), "laptop".to_string());
    let state = observer.create(&group, &info, &commit, &alice).ok()?.state;
    Some(CheckWorld {
        observer,
        group,
        state,
    })
}

thread_local! {
    static CHECK: CheckWorld = match check_world() {
        Some(w) => w,
        None => panic!("the fuzzing organisation must set up"),
    };
}

/// The relay's check of what a device submits (see the module docs).
pub fn relay_check(data: &[u8]) {
    CHECK.with(|w| {
        let alice = ("alice".to_string(), "laptop".to_string());
        let _ = Observer::is_proposal(data, &w.group, 1);
        if w.observer
            .commit(&w.state, &w.group, 1, data, &alice)
            .is_ok()
        {
            panic!("the relay passed a commit nobody signed");
        }
        if w.observer
            .proposal(&w.state, &w.group, 1, data, &alice)
            .is_ok()
        {
            panic!("the relay passed a proposal nobody signed");
        }
        let (info, commit) = data.split_at(data.len() / 2);
        if w.observer.create(b"new", info, commit, &alice).is_ok() {
            panic!("the relay followed a group nobody signed");
        }
        if w.observer.check_group_info(&w.state, data, &alice).is_ok() {
            panic!("the relay kept a GroupInfo nobody signed");
        }
        // A re-joining device's reading of a GroupInfo and a tree.
        if w.observer.inspect(info, commit).is_ok() {
            panic!("a GroupInfo nobody signed verified");
        }
    });
}
