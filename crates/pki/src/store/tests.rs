use super::*;
use crate::ca::UserCertOptions;
use crate::cert::spki_der;
use crate::layout::{RelayDir, UserDir};
use crate::request::{DeviceName, Expect};
use std::os::unix::fs::PermissionsExt;

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn ca(dir: &Path) -> PkiDir {
    let pki = PkiDir::new(dir.join("ca"));
    pki.init("Test CA", false).unwrap();
    pki
}

/// `user` enrols in their own directory under `dir`; returns the checked
/// request.
fn enrol(dir: &Path, user: &str, renew: bool) -> (UserDir, CheckedRequest) {
    let u = UserDir::new(dir.join(user));
    u.enroll(&Subject::Identity(name(user)), renew).unwrap();
    let req = CheckedRequest::from_pem(&fs::read(u.request_path()).unwrap(), Expect::User).unwrap();
    (u, req)
}

#[test]
fn init_makes_a_p384_root_and_refuses_when_any_ca_file_exists() {
    let d = tempfile::tempdir().unwrap();
    let pki = ca(d.path());
    assert_eq!(mode(pki.root()), 0o700);
    assert_eq!(mode(&pki.ca_key_path()), 0o600);
    let der = read_cert_der(&pki.ca_cert_path()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.signature_algorithm.algorithm,
        x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA384
    );
    // No server key, no user key: the CA directory holds only the CA's.
    assert!(!pki.server_key_path().exists());
    for f in CA_FILES {
        let other = PkiDir::new(d.path().join(format!("only-{f}")));
        fs::create_dir(other.root()).unwrap();
        fs::write(other.root().join(f), "x").unwrap();
        assert!(
            matches!(other.init("Test CA", false), Err(PkiError::Exists(p)) if p.ends_with(f)),
            "{f}"
        );
    }
}

#[test]
fn a_request_is_signed_recorded_and_its_name_then_taken() {
    let d = tempfile::tempdir().unwrap();
    let pki = ca(d.path());
    let (alice, req) = enrol(d.path(), "alice", false);
    let signed = pki.sign(&req, 90, false).unwrap();
    assert_eq!(signed.record_path, pki.issued_dir().join("alice.pem"));
    assert!(signed.revoked.is_none());
    let der = rustls_pki_types::CertificateDer::from_pem_slice(signed.cert_pem.as_bytes())
        .unwrap()
        .to_vec();
    assert_eq!(crate::identity_from_cert(&der).unwrap().as_str(), "alice");
    assert_eq!(spki_der(&der).unwrap(), req.spki_der());
    let info = CertInfo::from_der(&der).unwrap();
    let days = (info.not_after_unix - info.not_before_unix) / 86_400;
    assert_eq!(days, 90, "90 days plus the backdating");
    // The key stayed where it was made; the CA directory has no key but its own.
    assert!(alice.key_path().exists());
    assert_eq!(
        RelayDir::new(pki.root()).foreign_private_keys().unwrap(),
        vec![pki.ca_key_path()]
    );

    // Someone else asking for "alice" with another key is refused ...
    let (_, mallory) = enrol(&d.path().join("elsewhere"), "alice", false);
    assert!(matches!(
        pki.sign(&mallory, 90, false),
        Err(PkiError::NameTaken(_))
    ));
    // ... and so is alice's own renewal without --renew.
    let (_, renewal) = enrol(d.path(), "alice", true);
    assert!(matches!(
        pki.sign(&renewal, 90, false),
        Err(PkiError::NameTaken(_))
    ));
    // A renewal with the same key revokes nothing.
    let renewed = pki.sign(&renewal, 90, true).unwrap();
    assert!(renewed.revoked.is_none());
    assert!(pki.revoked().unwrap().is_empty());
    // A new key with --renew (a lost laptop) revokes the old certificate.
    let replaced = pki.sign(&mallory, 90, true).unwrap();
    assert_eq!(replaced.revoked, Some(renewed.serial.clone()));
    assert!(pki.revoked().unwrap().contains(&renewed.serial));
}

#[test]
fn names_cannot_collide_across_kinds() {
    let d = tempfile::tempdir().unwrap();
    let pki = ca(d.path());
    // The name "alice-key" and the user "alice" once shared a file.
    for user in ["alice", "alice-key"] {
        let (_, req) = enrol(d.path(), user, false);
        pki.sign(&req, 90, false).unwrap();
    }
    // A device of alice is recorded apart from her identity.
    let laptop = UserDir::new(d.path().join("alice-laptop"));
    let device = Subject::Device(name("alice"), DeviceName::new("laptop").unwrap());
    laptop.enroll(&device, false).unwrap();
    let req =
        CheckedRequest::from_pem(&fs::read(laptop.request_path()).unwrap(), Expect::User).unwrap();
    assert_eq!(req.subject(), &device);
    let signed = pki.sign(&req, 90, false).unwrap();
    assert_eq!(
        signed.record_path,
        pki.issued_dir().join("alice@laptop.pem")
    );
    // A relay's record lives in its own directory.
    let relay = RelayDir::new(d.path().join("relay"));
    relay.enroll(&["localhost".into()], false).unwrap();
    let req =
        CheckedRequest::from_pem(&fs::read(relay.request_path()).unwrap(), Expect::Relay).unwrap();
    let signed = pki.sign(&req, 30, false).unwrap();
    assert!(signed.record_path.starts_with(pki.relays_dir()));
    let labels: Vec<String> = pki.list().unwrap().into_iter().map(|r| r.label).collect();
    assert_eq!(
        labels,
        vec!["alice", "alice-key", "alice@laptop", "relay localhost"]
    );
    // Every record is a certificate: no file in issued/ holds a key.
    assert_eq!(
        RelayDir::new(pki.issued_dir())
            .foreign_private_keys()
            .unwrap(),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn after_a_forced_init_the_old_users_are_not_listed_as_valid() {
    let d = tempfile::tempdir().unwrap();
    let pki = ca(d.path());
    let (_, req) = enrol(d.path(), "alice", false);
    pki.sign(&req, 90, false).unwrap();
    pki.init("Test CA", true).unwrap();
    assert!(pki.list().unwrap().is_empty());
    // A record put back by hand is marked as another CA's.
    let old = fs::read_dir(pki.root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("issued.replaced-"))
        .unwrap();
    crate::files::private_dir(&pki.issued_dir()).unwrap();
    fs::copy(old.join("alice.pem"), pki.issued_dir().join("alice.pem")).unwrap();
    let list = pki.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, CertStatus::OtherCa);
    // ... and does not hold the name.
    pki.sign(&req, 90, false).unwrap();
}

#[test]
fn throwaway_users_get_their_own_directory_and_a_replaced_one_is_revoked() {
    let d = tempfile::tempdir().unwrap();
    let pki = ca(d.path());
    let first = pki
        .issue(&name("alice"), &UserCertOptions::valid_for_days(30), false)
        .unwrap();
    assert_eq!(
        first.key_path,
        pki.users_dir().join("alice").join("key.pem")
    );
    for p in [pki.users_dir(), pki.users_dir().join("alice")] {
        assert_eq!(mode(&p), 0o700, "{}", p.display());
    }
    assert_eq!(mode(&first.key_path), 0o600);
    assert!(pki.user_dir(&name("alice")).ca_path().exists());
    assert!(matches!(
        pki.issue(&name("alice"), &UserCertOptions::valid_for_days(30), false),
        Err(PkiError::NameTaken(_))
    ));
    let second = pki
        .issue(&name("alice"), &UserCertOptions::valid_for_days(30), true)
        .unwrap();
    assert!(pki.revoked().unwrap().contains(&first.serial));
    assert!(!pki.revoked().unwrap().contains(&second.serial));
    let (serial, new) = pki.revoke(&Subject::Identity(name("alice"))).unwrap();
    assert!(new);
    assert_eq!(serial, second.serial);
    assert!(!pki.revoke(&Subject::Identity(name("alice"))).unwrap().1);
    assert_eq!(
        crl_number(&read_crl_der(&pki.crl_path()).unwrap()).unwrap(),
        3
    );
    assert_eq!(pki.refresh_crl().unwrap(), 4);
    assert_eq!(pki.revoked().unwrap().len(), 2);
    let list = pki.list().unwrap();
    assert_eq!(list[0].status, CertStatus::Revoked);
    let unknown = pki.revoke(&Subject::Identity(name("carol")));
    assert!(matches!(unknown, Err(PkiError::UnknownUser(_))));
    // Said as a person would say it (no quotes, no doubled words).
    assert_eq!(
        unknown.unwrap_err().to_string(),
        "no certificate issued for user carol"
    );
}

#[test]
fn no_ca_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let pki = PkiDir::new(d.path());
    assert!(matches!(pki.load_ca(), Err(PkiError::NoCa(_))));
    assert!(matches!(
        pki.issue(&name("alice"), &UserCertOptions::valid_for_days(1), false),
        Err(PkiError::NoCa(_))
    ));
}

#[test]
fn corrupt_key_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let pki = ca(d.path());
    fs::write(pki.ca_key_path(), "garbage").unwrap();
    assert!(pki.load_ca().is_err());
}
