//! Which certificates a client trusts: only those the CA issued for the
//! name, valid now, for a user, with the key usages and a strong key.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use blindrelay_e2e::{LocalIdentity, PeerError, TrustRoot, VerifiedPeer};
use common::*;

#[test]
fn certificates_are_only_trusted_after_verification() {
    let f = fx();
    // Another CA's "bob".
    let other = cert(&f.other_root_pki.1, "bob");
    assert!(matches!(
        VerifiedPeer::verify(&n("bob"), &other, &f.root, NOW_S),
        Err(PeerError::Rejected(_))
    ));
    // Mallory's genuine certificate offered as bob.
    assert!(matches!(
        VerifiedPeer::verify(&n("bob"), &cert(&f.pki, "mallory"), &f.root, NOW_S),
        Err(PeerError::NameMismatch { .. })
    ));
    // Expired (checked at a time after notAfter).
    assert!(matches!(
        VerifiedPeer::verify(
            &n("bob"),
            &cert(&f.pki, "bob"),
            &f.root,
            NOW_S + 86_400 * 400
        ),
        Err(PeerError::Rejected(_))
    ));
    // The server certificate (serverAuth only, ECDSA) is not a user.
    let server = blindrelay_pki::store::read_cert_der(&f.pki.server_cert_path()).unwrap();
    assert!(VerifiedPeer::verify(&n("localhost"), &server, &f.root, NOW_S).is_err());
    // Revoked, when the client has the CRL.
    let (_d, p2) = pki_with(&["dave", "erin"]);
    let (serial, _) = p2.revoke_user(&n("dave")).unwrap();
    let root2 =
        || TrustRoot::new(blindrelay_pki::store::read_cert_der(&p2.ca_cert_path()).unwrap());
    let crl = |next: i64| {
        let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
        let pem = p2
            .load_ca()
            .unwrap()
            .sign_crl_for(
                std::slice::from_ref(&serial),
                9,
                at(next - 30 * 86_400),
                at(next),
            )
            .unwrap();
        rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    use rustls_pki_types::pem::PemObject;
    let now = NOW_S as i64;
    let current = root2().unwrap().with_crl(crl(now + 86_400)).unwrap();
    assert!(matches!(
        VerifiedPeer::verify(&n("dave"), &cert(&p2, "dave"), &current, NOW_S),
        Err(PeerError::Rejected(webpki::Error::CertRevoked))
    ));
    assert!(VerifiedPeer::verify(&n("erin"), &cert(&p2, "erin"), &current, NOW_S).is_ok());
    // A CRL past its nextUpdate and grace: no certificate is accepted, not
    // even one it does not list.
    let grace = blindrelay_pki::crl::CRL_GRACE_SECS;
    let stale = root2().unwrap().with_crl(crl(now - grace - 1)).unwrap();
    assert!(matches!(
        VerifiedPeer::verify(&n("erin"), &cert(&p2, "erin"), &stale, NOW_S),
        Err(PeerError::Crl(
            blindrelay_pki::crl::CrlError::Expired { .. }
        ))
    ));
    let late = root2().unwrap().with_crl(crl(now - grace)).unwrap();
    assert!(VerifiedPeer::verify(&n("erin"), &cert(&p2, "erin"), &late, NOW_S).is_ok());
    // Another CA's CRL is not taken at all.
    assert!(matches!(
        root2()
            .unwrap()
            .with_crl(crl(now))
            .unwrap()
            .crl()
            .map(|c| c.number()),
        Some(9)
    ));
    assert!(matches!(
        f.root.clone().with_crl(crl(now)),
        Err(PeerError::Crl(blindrelay_pki::crl::CrlError::NotFromCa))
    ));
}

#[test]
fn own_key_must_match_own_certificate() {
    let f = fx();
    let r = LocalIdentity::from_pem(
        &n("alice"),
        &std::fs::read(f.pki.user_cert_path(&n("alice"))).unwrap(),
        &std::fs::read(f.pki.user_key_path(&n("bob"))).unwrap(),
        &f.root,
        NOW_S,
    );
    assert!(r.is_err());
}

/// A certificate for `name` signed by the test CA, for the public key in
/// `spki_pem` and with the key usages given (none at all when empty).
fn custom_cert(name: &str, spki_pem: &str, usages: Vec<rcgen::KeyUsagePurpose>) -> Vec<u8> {
    let p = &fx().pki;
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(p.ca_key_path()).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(p.ca_cert_path()).unwrap(),
        &ca_key,
    )
    .unwrap();
    let key = rcgen::SubjectPublicKeyInfo::from_pem(spki_pem).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = usages;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 - 86_400).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 + 86_400).unwrap();
    params.signed_by(&key, &issuer).unwrap().der().to_vec()
}

#[test]
fn certificates_without_the_key_usages_or_with_a_short_key_are_refused() {
    let both = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let good_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(fx().pki.user_key_path(&n("dave"))).unwrap(),
    )
    .unwrap()
    .public_key_pem();
    // The control: the same construction with both usages and a 2048-bit
    // key is accepted.
    let ok = custom_cert("dave", &good_key, both.clone());
    assert!(VerifiedPeer::verify(&n("dave"), &ok, &fx().root, NOW_S).is_ok());
    for usages in [
        vec![],
        vec![rcgen::KeyUsagePurpose::DigitalSignature],
        vec![rcgen::KeyUsagePurpose::KeyEncipherment],
    ] {
        let c = custom_cert("dave", &good_key, usages.clone());
        assert_eq!(
            VerifiedPeer::verify(&n("dave"), &c, &fx().root, NOW_S).map(|_| ()),
            Err(PeerError::KeyUsage),
            "{usages:?}"
        );
    }
    // Only the public half is kept: aws-lc-rs will not even load a 1024-bit
    // private key.
    let weak = include_str!("vectors/weak-rsa-1024-public.pem");
    let c = custom_cert("dave", weak, both);
    assert_eq!(
        VerifiedPeer::verify(&n("dave"), &c, &fx().root, NOW_S).map(|_| ()),
        Err(PeerError::KeyType)
    );
}

#[test]
fn a_verified_peer_shows_its_name_and_fingerprint_and_the_root_its_ca() {
    let f = fx();
    let bob = peer("bob");
    let fp = blindrelay_e2e::fingerprint(&cert(&f.pki, "bob"));
    let hex: String = fp.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(format!("{bob:?}"), format!("VerifiedPeer(bob, {hex})"));
    assert_eq!(bob.cert_der(), &cert(&f.pki, "bob")[..]);
    assert_eq!(bob.fingerprint(), fp);
    assert_eq!(bob.fingerprint_hex(), hex);
    assert_eq!(
        f.root.ca_der(),
        &blindrelay_pki::store::read_cert_der(&f.pki.ca_cert_path()).unwrap()[..]
    );
}
