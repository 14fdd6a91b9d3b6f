//! The identity provider every member runs: which credentials pass, which
//! do not, and which may succeed which.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_e2e::PeerError;
use blindrelay_mls::{CredentialError, Device, DeviceKey, MlsError, MlsStore, Trust};
use blindrelay_pki::UserCertOptions;
use blindrelay_wire::UserName;
use common::*;
use mls_rs_core::identity::CredentialType;
use mls_rs_identity_x509::{CertificateChain, X509IdentityExtractor};

fn credential(chain: Vec<Vec<u8>>) -> mls_rs_core::identity::Credential {
    CertificateChain::from(chain).into_credential()
}

#[test]
fn a_device_certificate_from_the_ca_passes_and_names_its_person_and_device() {
    let org = Org::new();
    let f = org.enrol("alice", "laptop");
    let d = org
        .trust()
        .verify_credential(&credential(vec![f.cert_der.clone()]))
        .unwrap();
    assert_eq!(
        (d.user().as_str(), d.device().as_str()),
        ("alice", "laptop")
    );
    assert_eq!(d.public_key().len(), 65, "an uncompressed P-256 point");
}

#[test]
fn a_chain_of_any_other_length_is_refused() {
    let org = Org::new();
    let f = org.enrol("alice", "laptop");
    let trust = org.trust();
    for chain in [vec![], vec![f.cert_der.clone(), org.ca_der.clone()]] {
        assert!(matches!(
            trust.verify_credential(&credential(chain)),
            Err(CredentialError::ChainShape)
        ));
    }
    let basic = mls_rs_core::identity::BasicCredential::new(b"alice@laptop".to_vec());
    assert!(matches!(
        trust.verify_credential(&basic.into_credential()),
        Err(CredentialError::ChainShape)
    ));
    assert_ne!(CredentialType::BASIC, CredentialType::X509);
}

#[test]
fn a_device_of_another_ca_is_refused() {
    let org = Org::new();
    let other = Org::new();
    let f = other.enrol("alice", "laptop");
    assert!(matches!(
        org.trust().verify_credential(&credential(vec![f.cert_der])),
        Err(CredentialError::Certificate(PeerError::Rejected(_)))
    ));
}

#[test]
fn a_users_rsa_identity_certificate_is_not_a_device_credential() {
    let org = Org::new();
    let issued = org
        .ca
        .issue_user(
            &UserName::new("alice").unwrap(),
            &UserCertOptions::valid_for_days(30),
        )
        .unwrap();
    let r = org
        .trust()
        .verify_credential(&credential(vec![issued.cert_der]));
    assert!(
        matches!(
            r,
            Err(CredentialError::Certificate(
                PeerError::DeviceName | PeerError::DeviceKeyType
            ))
        ),
        "{r:?}"
    );
}

#[test]
fn validity_is_judged_by_the_local_clock() {
    let org = Org::new();
    let f = org.enrol("alice", "laptop");
    let trust = org.trust();
    let c = credential(vec![f.cert_der]);
    assert!(trust.verify_credential(&c).is_ok());
    // 91 days later the 90-day certificate has expired (and the CRL is
    // stale, which is refused on its own).
    trust.set_now(now() + 91 * 24 * 3600);
    assert!(trust.verify_credential(&c).is_err());
    // Before it was issued: refused.
    trust.set_now(now() - 24 * 3600);
    assert!(trust.verify_credential(&c).is_err());
}

#[test]
fn a_revoked_device_is_refused_once_the_client_holds_the_crl() {
    let mut org = Org::new();
    let f = org.enrol("alice", "laptop");
    let trust = org.trust();
    org.revoke(&f.cert_der);
    let c = credential(vec![f.cert_der]);
    assert!(
        trust.verify_credential(&c).is_ok(),
        "the old CRL does not list it"
    );
    trust.replace_root(org.trust_root());
    assert!(matches!(
        trust.verify_credential(&c),
        Err(CredentialError::Certificate(PeerError::Rejected(
            webpki::Error::CertRevoked
        )))
    ));
}

#[test]
fn a_credential_succeeds_another_only_for_the_same_person_and_device() {
    let org = Org::new();
    let laptop = org.enrol("alice", "laptop");
    let renewed = org.enrol("alice", "laptop");
    let phone = org.enrol("alice", "phone");
    let bob = org.enrol("bob", "laptop");
    let chain = |f: &DeviceFiles| CertificateChain::from(vec![f.cert_der.clone()]);
    let id = blindrelay_mls::credential::DeviceIdentity;
    assert!(
        id.valid_successor(&chain(&laptop), &chain(&renewed))
            .unwrap()
    );
    assert!(!id.valid_successor(&chain(&laptop), &chain(&phone)).unwrap());
    assert!(!id.valid_successor(&chain(&laptop), &chain(&bob)).unwrap());
    assert_eq!(id.identity(&chain(&laptop)).unwrap(), b"alice@laptop");
    assert_ne!(
        id.identity(&chain(&laptop)).unwrap(),
        id.identity(&chain(&phone)).unwrap()
    );
}

#[test]
fn a_device_opens_only_with_its_own_key_and_a_certificate_that_passes() {
    let mut org = Org::new();
    let a = org.enrol("alice", "laptop");
    let b = org.enrol("bob", "laptop");
    let store = MlsStore::open(&org.dir.path().join("x.db")).unwrap();
    let wrong_key = DeviceKey::from_pem(&b.key_pem).unwrap();
    assert!(matches!(
        Device::open(wrong_key, a.cert_der.clone(), org.trust(), store.clone()),
        Err(MlsError::KeyMismatch)
    ));
    // An RSA key is not a device key.
    let rsa = org
        .ca
        .issue_user(
            &UserName::new("carol").unwrap(),
            &UserCertOptions::valid_for_days(30),
        )
        .unwrap();
    assert!(matches!(
        DeviceKey::from_pem(&rsa.key),
        Err(MlsError::DeviceKey)
    ));
    // A revoked device does not open.
    org.revoke(&a.cert_der);
    let key = DeviceKey::from_pem(&a.key_pem).unwrap();
    assert!(matches!(
        Device::open(key, a.cert_der.clone(), org.trust(), store),
        Err(MlsError::OwnCredential(_))
    ));
    let _ = Trust::new(org.trust_root(), now());
}
