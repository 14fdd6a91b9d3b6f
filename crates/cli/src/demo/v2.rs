//! The demo's protocol v2 part: MLS groups of devices, with forward
//! secrecy, healing and removal checked live.
//!
//! Devices are enrolled with the demo's CA (each key made here, each
//! certificate signed from a request), and their state is a SQLite file
//! each, which the "thief" copies. Here the relay's part (one ordered log
//! per group) is played in process, which is exactly as much power as a
//! malicious relay has; `v2_relay` runs devices through the real relay.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use blindrelay_e2e::TrustRoot;
use blindrelay_mls::{Device, DeviceKey, MlsError, MlsStore, Received, Trust};
use blindrelay_pki::{CheckedRequest, DeviceName, Enrolment, Expect, PrivateKeyPem, Subject};
use blindrelay_testkit::TestPki;

use super::Report;
use crate::user_name;

struct Enrolled {
    key: PrivateKeyPem,
    cert: Vec<u8>,
    db: PathBuf,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn trust(pki: &TestPki) -> Result<Trust> {
    let ca = blindrelay_pki::store::read_cert_der(&pki.pki.ca_cert_path())?;
    let mut root = TrustRoot::new(ca)?;
    if pki.pki.crl_path().exists() {
        root = root.with_crl(blindrelay_pki::store::read_crl_der(&pki.pki.crl_path())?)?;
    }
    Ok(Trust::new(root, now()))
}

fn enrol(pki: &TestPki, dir: &Path, user: &str, device: &str) -> Result<Enrolled> {
    let subject = Subject::Device(user_name(user)?, DeviceName::new(device)?);
    let e = Enrolment::new(&subject)?;
    let req = CheckedRequest::from_pem(e.request_pem.as_bytes(), Expect::User)?;
    let cert = pki.pki.load_ca()?.sign_request(&req, 1)?.cert_der;
    let db = dir.join(format!("{user}@{device}.db"));
    Ok(Enrolled {
        key: e.key,
        cert,
        db,
    })
}

fn open(pki: &TestPki, e: &Enrolled, db: &Path) -> Result<Device> {
    let store = MlsStore::open(db)?;
    Ok(Device::open(
        DeviceKey::from_pem(&e.key)?,
        e.cert.clone(),
        trust(pki)?,
        store,
    )?)
}

/// A thief's copy of a device's whole state, opened with its key.
fn steal(pki: &TestPki, e: &Enrolled, name: &str) -> Result<Device> {
    let copy = e.db.with_file_name(name);
    std::fs::copy(&e.db, &copy).context("copying the device's state")?;
    open(pki, e, &copy)
}

fn text(r: Result<Received, MlsError>) -> Option<String> {
    match r {
        Ok(Received::Message { body, .. }) => String::from_utf8(body).ok(),
        _ => None,
    }
}

pub(super) fn run(pki: &TestPki, report: &mut Report) -> Result<()> {
    let dir = pki.path().join("v2");
    std::fs::create_dir_all(&dir)?;
    let alice_laptop = enrol(pki, &dir, "alice", "laptop")?;
    let alice_phone = enrol(pki, &dir, "alice", "phone")?;
    let bob_laptop = enrol(pki, &dir, "bob", "laptop")?;
    let carol_laptop = enrol(pki, &dir, "carol", "laptop")?;
    let mut a1 = open(pki, &alice_laptop, &alice_laptop.db)?;
    let mut a2 = open(pki, &alice_phone, &alice_phone.db)?;
    let mut b1 = open(pki, &bob_laptop, &bob_laptop.db)?;
    let mut c1 = open(pki, &carol_laptop, &carol_laptop.db)?;
    println!(
        "  devices alice@laptop, alice@phone, bob@laptop, carol@laptop: P-256 keys made here, certificates from the CA"
    );

    // alice's laptop makes a group and adds the others from KeyPackages.
    let g = a1.create_group()?;
    let mut kps = Vec::new();
    for d in [&mut a2, &mut b1, &mut c1] {
        kps.extend(d.key_packages(1)?);
    }
    let add = a1.add(&g, &kps)?;
    a1.commit_accepted(&g)?;
    let welcome = add.welcome.context("a Welcome")?;
    for d in [&mut a2, &mut b1, &mut c1] {
        d.join(&welcome)?;
    }
    let m = a1.encrypt(&g, b"Hello group!")?;
    let got: Vec<Option<String>> = [&mut a2, &mut b1, &mut c1]
        .into_iter()
        .map(|d| text(d.receive(&m)))
        .collect();
    report.check(
        "v2: group message to every other device",
        "alice's phone, bob and carol read it",
        got.iter().all(|t| t.as_deref() == Some("Hello group!")),
    );
    report.check(
        "v2: replayed message",
        "refused by MLS's generation rule",
        text(b1.receive(&m)).is_none(),
    );

    // Forward secrecy: bob's whole state, copied after he read m.
    let mut thief = steal(pki, &bob_laptop, "bob-stolen-after-reading.db")?;
    report.check(
        "v2: forward secrecy",
        "bob's state copied after reading cannot decrypt it",
        text(thief.receive(&m)).is_none(),
    );

    // Post-compromise security: the same copy, after bob's update.
    let probe = a1.encrypt(&g, b"still epoch N")?;
    let thief_read_n = text(thief.receive(&probe)).is_some();
    for d in [&mut a2, &mut b1, &mut c1] {
        d.receive(&probe)?;
    }
    let update = b1.update(&g)?;
    b1.commit_accepted(&g)?;
    for d in [&mut a1, &mut a2, &mut c1] {
        d.receive(&update.commit)?;
    }
    let after = a1.encrypt(&g, b"after bob's update")?;
    let bob_reads = text(b1.receive(&after)).is_some();
    let _ = thief.receive(&update.commit);
    report.check(
        "v2: healing after compromise",
        "the stolen copy read epoch N, nothing after bob's update",
        thief_read_n && bob_reads && text(thief.receive(&after)).is_none(),
    );
    for d in [&mut a2, &mut c1] {
        d.receive(&after)?;
    }

    // Removal: carol goes; she and a copy of her state read nothing after.
    let mut carol_copy = steal(pki, &carol_laptop, "carol-before-removal.db")?;
    let remove = a1.remove(&g, &user_name("carol")?)?;
    a1.commit_accepted(&g)?;
    for d in [&mut a2, &mut b1] {
        d.receive(&remove.commit)?;
    }
    let removed = matches!(
        c1.receive(&remove.commit),
        Ok(Received::Commit {
            removed_me: true,
            ..
        })
    );
    let secret = a1.encrypt(&g, b"without carol")?;
    let bob_ok = text(b1.receive(&secret)).as_deref() == Some("without carol");
    report.check(
        "v2: removed member",
        "carol (and a copy of her state) read nothing after removal",
        removed
            && bob_ok
            && text(c1.receive(&secret)).is_none()
            && text(carol_copy.receive(&secret)).is_none(),
    );
    Ok(())
}
