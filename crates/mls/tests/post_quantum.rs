//! The hybrid post-quantum suite: devices enrolled with Ed25519 keys make
//! groups on X-Wing (ML-KEM-768 + X25519), with the same properties, and
//! the two kinds of device never end up in one group.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{CIPHER_SUITE, MlsError, PQ_CIPHER_SUITE, Received};
use common::*;

fn body(r: Result<Received, MlsError>) -> Option<Vec<u8>> {
    match r {
        Ok(Received::Message { body, .. }) => Some(body),
        _ => None,
    }
}

#[test]
fn ed25519_devices_make_a_hybrid_post_quantum_group_with_forward_secrecy() {
    let org = Org::new();
    let (mut alice, _) = org.pq_device("alice", "laptop");
    let (mut bob, bob_files) = org.pq_device("bob", "laptop");
    assert_eq!(alice.cipher_suite(), PQ_CIPHER_SUITE);
    let g = alice.create_group().unwrap();
    let kp = kps(&mut [&mut bob]);
    // An X-Wing KeyPackage carries an ML-KEM-768 public key (1 184 bytes).
    assert!(kp[0].len() > 1184, "{}", kp[0].len());
    let add = alice.add(&g, &kp).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    let m = alice.encrypt(&g, b"quantum-safe hello").unwrap();
    assert_eq!(body(bob.receive(&m)).unwrap(), b"quantum-safe hello");
    let back = bob.encrypt(&g, b"and back").unwrap();
    assert_eq!(body(alice.receive(&back)).unwrap(), b"and back");
    // Forward secrecy holds as on the classical suite.
    drop(bob);
    let copy = org.dir.path().join("bob-pq-copy.db");
    let mut thief = steal(&bob_files, &org, &copy);
    assert!(body(thief.receive(&m)).is_none());
}

#[test]
fn a_device_of_the_other_kind_cannot_be_added_to_a_group() {
    let org = Org::new();
    let (mut classic, _) = org.device("alice", "laptop");
    let (mut pq, _) = org.pq_device("bob", "laptop");
    assert_eq!(classic.cipher_suite(), CIPHER_SUITE);
    let g = classic.create_group().unwrap();
    let pq_kp = kps(&mut [&mut pq]);
    let r = classic.add(&g, &pq_kp);
    assert!(
        matches!(r, Err(MlsError::KeyPackage)),
        "{:?}",
        r.as_ref().err()
    );
    let pg = pq.create_group().unwrap();
    let classic_kp = kps(&mut [&mut classic]);
    assert!(matches!(
        pq.add(&pg, &classic_kp),
        Err(MlsError::KeyPackage)
    ));
    // Neither failed add left a commit pending.
    classic.update(&g).unwrap();
    pq.update(&pg).unwrap();
}

#[test]
fn a_device_key_of_the_wrong_kind_for_its_certificate_is_refused() {
    let org = Org::new();
    let pq = org.enrol_kind("alice", "pq", blindrelay_pki::DeviceKeyKind::Ed25519);
    let classic = org.enrol("alice", "laptop");
    let key = blindrelay_mls::DeviceKey::from_pem(&pq.key_pem).unwrap();
    let store = blindrelay_mls::MlsStore::in_memory().unwrap();
    assert!(matches!(
        blindrelay_mls::Device::open(key, classic.cert_der, org.trust(), store),
        Err(MlsError::KeyMismatch)
    ));
}
