//! Device certificates (protocol v2): what `VerifiedDevice` refuses, one
//! field at a time, on certificates the CA really signed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use blindrelay_e2e::{PeerError, VerifiedDevice};
use common::*;
use rcgen::string::Ia5String;
use rcgen::{
    DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};

const NOW_S: u64 = 1_750_000_000;

struct Spec {
    alg: &'static SignatureAlgorithm,
    cn: &'static str,
    sans: Vec<SanType>,
    usages: Vec<KeyUsagePurpose>,
}

fn uri(s: &str) -> SanType {
    SanType::URI(Ia5String::try_from(s).unwrap())
}

fn good() -> Spec {
    Spec {
        alg: &rcgen::PKCS_ECDSA_P256_SHA256,
        cn: "alice",
        sans: vec![uri("urn:blindrelay:device:laptop")],
        usages: vec![KeyUsagePurpose::DigitalSignature],
    }
}

/// A certificate the test CA signs for a fresh key of `spec.alg`.
fn device_cert(spec: Spec) -> Vec<u8> {
    let p = &fx().pki;
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(p.ca_key_path()).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(p.ca_cert_path()).unwrap(),
        &ca_key,
    )
    .unwrap();
    let key = if std::ptr::eq(spec.alg, &rcgen::PKCS_RSA_SHA256) {
        KeyPair::generate_rsa_for(spec.alg, rcgen::RsaKeySize::_2048).unwrap()
    } else {
        KeyPair::generate_for(spec.alg).unwrap()
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, spec.cn);
    params.subject_alt_names = spec.sans;
    params.key_usages = spec.usages;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 - 86_400).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 + 86_400).unwrap();
    params.signed_by(&key, &issuer).unwrap().der().to_vec()
}

fn verify(spec: Spec) -> Result<VerifiedDevice, PeerError> {
    VerifiedDevice::verify(&device_cert(spec), &fx().root, NOW_S)
}

#[test]
fn a_well_formed_device_certificate_passes_with_its_names_and_key() {
    let cert = device_cert(good());
    let d = VerifiedDevice::verify(&cert, &fx().root, NOW_S).unwrap();
    assert_eq!(d.cert_der(), cert.as_slice());
    assert_eq!(
        (d.user().as_str(), d.device().as_str()),
        ("alice", "laptop")
    );
    assert_eq!(d.public_key().len(), 65);
    assert_eq!(d.public_key()[0], 0x04, "uncompressed point");
    assert!(d.not_after() > NOW_S as i64);
    let shown = format!("{d:?}");
    assert!(
        shown.starts_with("VerifiedDevice(alice@laptop, "),
        "{shown}"
    );
    assert!(
        shown.contains(&blindrelay_wire::codec::hex(&d.fingerprint())),
        "{shown}"
    );
}

#[test]
fn a_key_that_is_neither_p256_nor_ed25519_is_refused() {
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_RSA_SHA256] {
        let r = verify(Spec { alg, ..good() });
        assert!(matches!(r, Err(PeerError::DeviceKeyType)), "{r:?}");
    }
}

#[test]
fn an_ed25519_device_passes_as_the_post_quantum_kind() {
    let p256 = verify(good()).unwrap();
    assert_eq!(p256.kind(), blindrelay_pki::DeviceKeyKind::P256);
    let d = verify(Spec {
        alg: &rcgen::PKCS_ED25519,
        ..good()
    })
    .unwrap();
    assert_eq!(d.kind(), blindrelay_pki::DeviceKeyKind::Ed25519);
    assert_eq!(d.public_key().len(), 32);
}

#[test]
fn the_device_uri_must_be_the_only_subject_alt_name() {
    let cases = [
        vec![],
        vec![
            uri("urn:blindrelay:device:laptop"),
            uri("urn:blindrelay:device:phone"),
        ],
        vec![SanType::DnsName(Ia5String::try_from("laptop").unwrap())],
        vec![uri("urn:blindrelay:dev:laptop")],
        vec![uri("urn:blindrelay:device:")],
        vec![uri("urn:blindrelay:device:Laptop!")],
    ];
    for sans in cases {
        let shown = format!("{sans:?}");
        let r = verify(Spec { sans, ..good() });
        assert!(matches!(r, Err(PeerError::DeviceName)), "{shown}: {r:?}");
    }
}

#[test]
fn digital_signature_is_required_and_the_cn_must_be_a_user_name() {
    let r = verify(Spec {
        usages: vec![KeyUsagePurpose::KeyEncipherment],
        ..good()
    });
    assert!(matches!(r, Err(PeerError::KeyUsage)), "{r:?}");
    let r = verify(Spec {
        usages: vec![],
        ..good()
    });
    assert!(matches!(r, Err(PeerError::KeyUsage)), "{r:?}");
    let r = verify(Spec {
        cn: "not a user name",
        ..good()
    });
    assert!(matches!(r, Err(PeerError::NoIdentity)), "{r:?}");
}
