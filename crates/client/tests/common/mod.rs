//! What the protocol v2 attack tests share: an organisation and a relay on
//! 127.0.0.1:0, devices driven through the client's `Member`, and devices
//! driven by hand (their MLS state and a raw link), as an insider would.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use blindrelay_adversary::evil_ds::devices;
use blindrelay_client::v2::{Link, Member, V2Event};
use blindrelay_ds::DeviceId;
use blindrelay_mls::{Device, DeviceKey, MlsStore, Trust};
use blindrelay_pki::PrivateKeyPem;
use blindrelay_server::Config;
use blindrelay_testkit::{TestPki, TestRelay};
use blindrelay_wire::UserName;

pub fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

pub fn id(user: &str, device: &str) -> DeviceId {
    devices(&[(user, device)]).into_iter().next().unwrap()
}

pub fn config() -> Config {
    Config {
        rate_max_messages: 1_000,
        v2_rate_max_requests: 1_000,
        v2_person_rate_max_requests: 4_000,
        ..blindrelay_testkit::relay::config()
    }
}

/// A CA, a relay (with room for a test's bursts) on 127.0.0.1:0, its
/// address, and a directory for the devices.
pub async fn world() -> (TestPki, TestRelay, String, tempfile::TempDir) {
    let pki = TestPki::new(&[]).unwrap();
    let relay = TestRelay::with_config(&pki, config()).await.unwrap();
    let addr = relay.address();
    (pki, relay, addr, tempfile::tempdir().unwrap())
}

pub fn cfg_for(
    pki: &TestPki,
    root: &Path,
    user: &str,
    device: &str,
    addr: &str,
) -> blindrelay_client::ClientConfig {
    let dir = root.join(format!("{user}-{device}"));
    if dir.join("cert.pem").exists() {
        blindrelay_client::ClientConfig::from_dir(&dir, n(user), addr)
    } else {
        pki.device(user, device, &dir, addr).unwrap()
    }
}

/// Enrols and connects `user`'s `device`, its directory under `root`.
pub async fn device(pki: &TestPki, root: &Path, user: &str, device: &str, addr: &str) -> Member {
    let cfg = cfg_for(pki, root, user, device, addr);
    let dir = root.join(format!("{user}-{device}"));
    Member::connect(&cfg, &dir.join("mls.db")).await.unwrap()
}

/// An enrolled device driven by hand: its MLS state and a raw link, so a
/// test can submit whatever an insider could.
pub async fn raw_device(
    pki: &TestPki,
    root: &Path,
    user: &str,
    dev: &str,
    addr: &str,
) -> (Device, Link) {
    let cfg = cfg_for(pki, root, user, dev, addr);
    let pkcs8 = cfg.load_key().unwrap();
    let pem = blindrelay_pki::encrypted_key::to_pem(&pkcs8).unwrap();
    let key = DeviceKey::from_pem(&PrivateKeyPem::new(pem)).unwrap();
    let cert = blindrelay_pki::store::read_cert_der(&cfg.cert).unwrap();
    let ca = blindrelay_pki::store::read_cert_der(&cfg.ca).unwrap();
    let root_ = blindrelay_e2e::TrustRoot::new(ca).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let device = Device::open(
        key,
        cert,
        Trust::new(root_, now),
        MlsStore::in_memory().unwrap(),
    )
    .unwrap();
    let link = Link::connect(&cfg, &pkcs8).await.unwrap();
    (device, link)
}

/// Everything `m` reports within `limit` (at least one sync).
pub async fn events_for(m: &mut Member, limit: Duration) -> Vec<V2Event> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + limit;
    loop {
        out.extend(m.sync(Duration::from_millis(100)).await.unwrap());
        if tokio::time::Instant::now() >= end {
            return out;
        }
    }
}

pub fn texts(events: &[V2Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            V2Event::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// `creator`'s laptop makes a group with the laptops of `others` (each
/// joins): the devices, creator first, and the group.
pub async fn in_one_group(
    pki: &TestPki,
    root: &Path,
    addr: &str,
    creator: &str,
    others: &[&str],
) -> (Vec<Member>, Vec<u8>) {
    let mut first = device(pki, root, creator, "laptop", addr).await;
    let mut rest = Vec::new();
    for u in others {
        rest.push(device(pki, root, u, "laptop", addr).await);
    }
    let people: Vec<UserName> = others.iter().map(|u| n(u)).collect();
    let (g, _) = first.create_group(None, &people).await.unwrap();
    for m in &mut rest {
        let ev = events_for(m, Duration::from_millis(300)).await;
        assert!(
            ev.iter().any(|e| matches!(e, V2Event::Joined { .. })),
            "{ev:?}"
        );
    }
    let mut all = vec![first];
    all.extend(rest);
    (all, g)
}
