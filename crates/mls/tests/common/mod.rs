//! An organisation (CA, devices, CRL) and an in-memory relay that orders
//! each group's messages, for driving real [`Device`]s through group
//! operations. Nothing here is trusted by the code under test: the relay
//! is exactly as powerful as a malicious one would be.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod spoil;
pub mod stock;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use blindrelay_e2e::TrustRoot;
use blindrelay_mls::{Device, DeviceKey, MlsError, MlsStore, Outgoing, Received, Trust};
use blindrelay_pki::{
    CertificateAuthority, CheckedRequest, DeviceKeyKind, DeviceName, Enrolment, Expect, Subject,
};
use blindrelay_wire::UserName;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The organisation's CA and what it has revoked.
pub struct Org {
    pub ca: CertificateAuthority,
    pub ca_der: Vec<u8>,
    revoked: Vec<Vec<u8>>,
    crl_number: u64,
    pub dir: tempfile::TempDir,
}

/// A device's files: its key and certificate stay with it; its state is a
/// database in its own directory.
pub struct DeviceFiles {
    pub key_pem: blindrelay_pki::PrivateKeyPem,
    pub cert_der: Vec<u8>,
    pub db: PathBuf,
}

impl Org {
    pub fn new() -> Self {
        let ca = CertificateAuthority::create("test org").unwrap();
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())
            .unwrap()
            .to_vec();
        Self {
            ca,
            ca_der,
            revoked: Vec::new(),
            crl_number: 1,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A device key born "on the device" and its certificate from the CA.
    pub fn enrol(&self, user: &str, device: &str) -> DeviceFiles {
        self.enrol_kind(user, device, DeviceKeyKind::P256)
    }

    /// [`Org::enrol`] with a key of `kind`.
    pub fn enrol_kind(&self, user: &str, device: &str, kind: DeviceKeyKind) -> DeviceFiles {
        let subject = Subject::Device(
            UserName::new(user).unwrap(),
            DeviceName::new(device).unwrap(),
        );
        let e = Enrolment::with_device_key(&subject, kind).unwrap();
        let req = CheckedRequest::from_pem(e.request_pem.as_bytes(), Expect::User).unwrap();
        let signed = self.ca.sign_request(&req, 90).unwrap();
        let dir = self.dir.path().join(format!("{user}@{device}"));
        std::fs::create_dir_all(&dir).unwrap();
        DeviceFiles {
            key_pem: e.key,
            cert_der: signed.cert_der,
            db: dir.join("mls.db"),
        }
    }

    /// The current CRL, DER.
    pub fn crl_der(&self) -> Vec<u8> {
        let pem = self.ca.sign_crl(&self.revoked, self.crl_number).unwrap();
        rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    /// The trust a client of this organisation holds now.
    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot::new(self.ca_der.clone())
            .unwrap()
            .with_crl(self.crl_der())
            .unwrap()
    }

    pub fn trust(&self) -> Trust {
        Trust::new(self.trust_root(), now())
    }

    /// Revokes a certificate: the next CRL lists it.
    pub fn revoke(&mut self, cert_der: &[u8]) {
        let info = blindrelay_pki::CertInfo::from_der(cert_der).unwrap();
        self.revoked.push(info.serial);
        self.crl_number += 1;
    }

    /// Opens a device from its files.
    pub fn open(&self, files: &DeviceFiles) -> Device {
        open_at(&files.key_pem, &files.cert_der, &files.db, self.trust())
    }

    /// Enrols and opens a device.
    pub fn device(&self, user: &str, device: &str) -> (Device, DeviceFiles) {
        let f = self.enrol(user, device);
        (self.open(&f), f)
    }

    /// Enrols and opens a device with an Ed25519 key (the post-quantum
    /// suite).
    pub fn pq_device(&self, user: &str, device: &str) -> (Device, DeviceFiles) {
        let f = self.enrol_kind(user, device, DeviceKeyKind::Ed25519);
        (self.open(&f), f)
    }
}

pub fn open_at(
    key_pem: &blindrelay_pki::PrivateKeyPem,
    cert_der: &[u8],
    db: &Path,
    trust: Trust,
) -> Device {
    let key = DeviceKey::from_pem(key_pem).unwrap();
    let store = MlsStore::open(db).unwrap();
    Device::open(key, cert_der.to_vec(), trust, store).unwrap()
}

/// A copy of a device's whole state (its database) as an attacker who
/// took the disk would hold it: opened with the device's own key.
pub fn steal(files: &DeviceFiles, org: &Org, to: &Path) -> Device {
    std::fs::copy(&files.db, to).unwrap();
    open_at(&files.key_pem, &files.cert_der, to, org.trust())
}

/// Commits `out` for its author (the relay ordered it) and delivers it,
/// and its Welcome, to everyone else.
pub fn land(
    author: &mut Device,
    out: &Outgoing,
    others: &mut [&mut Device],
    joiners: &mut [&mut Device],
) {
    author.commit_accepted(&out.group_id).unwrap();
    for d in others.iter_mut() {
        d.receive(&out.commit).unwrap();
    }
    if let Some(w) = &out.welcome {
        for j in joiners.iter_mut() {
            j.join(w).unwrap();
        }
    }
}

/// One KeyPackage of each device.
pub fn kps(devices: &mut [&mut Device]) -> Vec<Vec<u8>> {
    devices
        .iter_mut()
        .map(|d| d.key_packages(1).unwrap().remove(0))
        .collect()
}

/// Alice's laptop makes a group and adds bob's laptop: where most tests
/// start. Returns both devices, bob's files and the group id.
pub fn alice_and_bob(org: &Org) -> (Device, Device, DeviceFiles, Vec<u8>) {
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, bob_files) = org.device("bob", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    (alice, bob, bob_files, g)
}

/// The plaintext of what must be an application message.
pub fn body(r: Received) -> Vec<u8> {
    match r {
        Received::Message { body, .. } => body,
        other => panic!("not a message: {other:?}"),
    }
}

/// Asserts the one refusal every network failure is.
pub fn refused<T: std::fmt::Debug>(r: Result<T, MlsError>) {
    assert!(matches!(r, Err(MlsError::Refused)), "{r:?}");
}
