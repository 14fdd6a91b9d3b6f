//! The CA refuses every request it must not sign, and says why.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use blindrelay_pki::request::{MAX_REQUEST_BYTES, RequestError};
use blindrelay_pki::{CheckedRequest, DeviceKeyKind, DeviceName, Enrolment, Expect, Subject};
use blindrelay_wire::UserName;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;

fn user(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn check(der: &[u8], expect: Expect) -> Result<CheckedRequest, RequestError> {
    CheckedRequest::from_der(&CertificateSigningRequestDer::from(der), expect)
}

/// A request with whatever parameters, signed by `key`.
fn custom(params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
    params.serialize_request(key).unwrap().der().to_vec()
}

fn named(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p
}

fn rsa() -> KeyPair {
    KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap()
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

#[test]
fn what_enroll_makes_is_accepted_for_its_kind() {
    let identity = Subject::Identity(user("alice"));
    let device = Subject::Device(user("alice"), DeviceName::new("laptop").unwrap());
    let relay = Subject::Relay(vec!["relay.example".into(), "10.0.0.1".into()]);
    for (subject, expect) in [
        (&identity, Expect::User),
        (&device, Expect::User),
        (&relay, Expect::Relay),
    ] {
        let e = Enrolment::new(subject).unwrap();
        let checked = CheckedRequest::from_pem(e.request_pem.as_bytes(), expect).unwrap();
        assert_eq!(checked.subject(), subject);
    }
    // RSA up to 4096 bits is an identity too.
    let big = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096).unwrap();
    assert!(check(&custom(&named("alice"), &big), Expect::User).is_ok());
}

#[test]
fn a_tampered_request_is_refused() {
    let e = Enrolment::new(&Subject::Identity(user("alice"))).unwrap();
    let der = der_of(&e.request_pem);
    // The name "alice" changed to "alicf": the signature no longer covers it.
    let at = der
        .windows(5)
        .position(|w| w == b"alice")
        .expect("the name is in the request");
    let mut renamed = der.clone();
    renamed[at + 4] = b'f';
    assert_eq!(
        check(&renamed, Expect::User).unwrap_err(),
        RequestError::BadSignature
    );
    // Any byte of the signature.
    let mut sig = der.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    assert_eq!(
        check(&sig, Expect::User).unwrap_err(),
        RequestError::BadSignature
    );
    // Truncated, or with bytes after it.
    assert_eq!(
        check(&der[..der.len() - 1], Expect::User).unwrap_err(),
        RequestError::Unparsable
    );
    let mut longer = der.clone();
    longer.push(0);
    assert_eq!(
        check(&longer, Expect::User).unwrap_err(),
        RequestError::Unparsable
    );
}

#[test]
fn a_request_for_a_key_its_maker_does_not_hold_is_refused() {
    // Mallory takes alice's device request and puts her own key in it:
    // the signature, made by alice's key, does not verify with Mallory's.
    let device = Subject::Device(user("alice"), DeviceName::new("laptop").unwrap());
    let alice = der_of(&Enrolment::new(&device).unwrap().request_pem);
    let mallory = der_of(&Enrolment::new(&device).unwrap().request_pem);
    let spki_of = |der: &[u8]| {
        let (_, r) =
            <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<'_, _>>::from_der(der).unwrap();
        r.certification_request_info.subject_pki.raw.to_vec()
    };
    let (a, m) = (spki_of(&alice), spki_of(&mallory));
    assert_eq!(a.len(), m.len());
    let at = alice.windows(a.len()).position(|w| w == a).unwrap();
    let mut swapped = alice.clone();
    swapped[at..at + a.len()].copy_from_slice(&m);
    assert_eq!(
        check(&swapped, Expect::User).unwrap_err(),
        RequestError::BadSignature
    );
}

#[test]
fn keys_of_other_types_or_curves_are_refused() {
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    for key in [&p384, &ed] {
        assert!(matches!(
            check(&custom(&named("alice"), key), Expect::User),
            Err(RequestError::Key(_))
        ));
    }
    // A relay's key is P-256.
    let mut relay = named("relay.example");
    relay.subject_alt_names = vec![SanType::DnsName("relay.example".try_into().unwrap())];
    assert!(matches!(
        check(&custom(&relay, &rsa()), Expect::Relay),
        Err(RequestError::Key(_))
    ));
}

#[test]
fn the_ca_decides_usages_and_a_request_cannot_ask_for_more() {
    let mut ca = named("alice");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut usages = named("alice");
    usages.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    for p in [ca, usages] {
        assert!(matches!(
            check(&custom(&p, &rsa()), Expect::User),
            Err(RequestError::Extension(_))
        ));
    }
}

#[test]
fn the_subject_is_one_valid_user_name() {
    let key = rsa();
    for cn in ["Alice", "-alice", "", "a".repeat(33).as_str(), "alice bob"] {
        assert!(
            matches!(
                check(&custom(&named(cn), &key), Expect::User),
                Err(RequestError::Name(_))
            ),
            "{cn:?}"
        );
    }
    let mut two = named("alice");
    two.distinguished_name
        .push(DnType::OrganizationName, "Evil Corp");
    assert!(matches!(
        check(&custom(&two, &key), Expect::User),
        Err(RequestError::Subject(_))
    ));
    let mut none = CertificateParams::default();
    none.distinguished_name = DistinguishedName::new();
    assert!(matches!(
        check(&custom(&none, &key), Expect::User),
        Err(RequestError::Subject(_))
    ));
}

#[test]
fn alternative_names_must_fit_the_kind() {
    // An identity request naming hosts: someone after a relay certificate.
    let mut rsa_hosts = named("alice");
    rsa_hosts.subject_alt_names = vec![SanType::DnsName("relay.example".try_into().unwrap())];
    assert!(matches!(
        check(&custom(&rsa_hosts, &rsa()), Expect::User),
        Err(RequestError::AltName(_))
    ));
    // A relay's request presented as a user's: P-256 without a device URI.
    let relay = Enrolment::new(&Subject::Relay(vec!["relay.example".into()])).unwrap();
    assert!(matches!(
        CheckedRequest::from_pem(relay.request_pem.as_bytes(), Expect::User),
        Err(RequestError::Name(_) | RequestError::AltName(_))
    ));
    // A device URI with another prefix, or an invalid device name.
    for uri in ["urn:other:device:laptop", "urn:blindrelay:device:Laptop!"] {
        let mut p = named("alice");
        p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        assert!(
            matches!(
                check(&custom(&p, &p256()), Expect::User),
                Err(RequestError::AltName(_) | RequestError::Name(_))
            ),
            "{uri}"
        );
    }
    // A relay without a host.
    assert!(matches!(
        check(&custom(&named("relay"), &p256()), Expect::Relay),
        Err(RequestError::AltName(_))
    ));
}

#[test]
fn oversized_or_non_pem_input_is_refused_before_parsing() {
    assert_eq!(
        CheckedRequest::from_pem(&vec![b'A'; MAX_REQUEST_BYTES + 1], Expect::User).unwrap_err(),
        RequestError::TooLarge
    );
    assert_eq!(
        CheckedRequest::from_pem(b"hello", Expect::User).unwrap_err(),
        RequestError::NotPem
    );
    assert_eq!(
        check(&[0x30, 0x03, 1, 2, 3], Expect::User).unwrap_err(),
        RequestError::Unparsable
    );
}

#[test]
fn an_ed25519_key_is_accepted_for_a_device_and_nothing_else() {
    let device = Subject::Device(user("alice"), DeviceName::new("pq-laptop").unwrap());
    let e = Enrolment::with_device_key(&device, DeviceKeyKind::Ed25519).unwrap();
    let checked = CheckedRequest::from_pem(e.request_pem.as_bytes(), Expect::User).unwrap();
    assert_eq!(checked.subject(), &device);
    // Not for an identity (no device URI)...
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    assert!(matches!(
        check(&custom(&named("alice"), &ed), Expect::User),
        Err(RequestError::Key(_))
    ));
    // ...nor for a relay.
    let mut relay = named("relay.example");
    relay.subject_alt_names = vec![SanType::DnsName("relay.example".try_into().unwrap())];
    assert!(matches!(
        check(&custom(&relay, &ed), Expect::Relay),
        Err(RequestError::Key(_))
    ));
    // The kind is ignored for anything but a device.
    let identity = Subject::Identity(user("alice"));
    let e = Enrolment::with_device_key(&identity, DeviceKeyKind::Ed25519).unwrap();
    assert_eq!(
        CheckedRequest::from_pem(e.request_pem.as_bytes(), Expect::User)
            .unwrap()
            .subject(),
        &identity
    );
}
