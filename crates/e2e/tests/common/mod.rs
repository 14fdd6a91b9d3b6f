//! The fixture every envelope test shares: a throwaway PKI whose
//! certificates are valid around a fixed time, identities, and shorthands
//! to seal and open.
#![allow(dead_code)] // each test file uses its own part of it

use std::sync::OnceLock;

use blindrelay_e2e::{
    Content, Envelope, Freshness, LocalIdentity, OpenError, SealParams, TrustRoot, VerifiedPeer,
    open, seal,
};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_wire::{MessageId, UserName};

pub const NOW_MS: u64 = 1_800_000_000_000;
pub const NOW_S: u64 = NOW_MS / 1000;

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub pki: PkiDir,
    pub root: TrustRoot,
    pub other_root_pki: (tempfile::TempDir, PkiDir),
}

pub fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

pub fn pki_with(users: &[&str]) -> (tempfile::TempDir, PkiDir) {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiDir::new(dir.path());
    pki.init("E2E Test CA", false).unwrap();
    pki.issue_relay(&["localhost".into()]).unwrap();
    for u in users {
        // Valid around NOW (2027-01-15) regardless of the machine's clock.
        let opts = UserCertOptions {
            not_before: time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 - 86_400).unwrap(),
            not_after: time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 + 86_400 * 365)
                .unwrap(),
            server_auth_only: false,
        };
        pki.issue(&n(u), &opts, false).unwrap();
    }
    (dir, pki)
}

pub fn fx() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (dir, pki) = pki_with(&["alice", "bob", "carol", "dave", "mallory"]);
        let ca = blindrelay_pki::store::read_cert_der(&pki.ca_cert_path()).unwrap();
        let root = TrustRoot::new(ca).unwrap();
        Fixture {
            _dir: dir,
            pki,
            root,
            other_root_pki: pki_with(&["bob"]),
        }
    })
}

pub fn cert(pki: &PkiDir, u: &str) -> Vec<u8> {
    blindrelay_pki::store::read_cert_der(&pki.user_cert_path(&n(u))).unwrap()
}

pub fn peer(u: &str) -> VerifiedPeer {
    VerifiedPeer::verify(&n(u), &cert(&fx().pki, u), &fx().root, NOW_S).unwrap()
}

pub fn me(u: &str) -> LocalIdentity {
    let f = fx();
    LocalIdentity::from_pem(
        &n(u),
        &std::fs::read(f.pki.user_cert_path(&n(u))).unwrap(),
        &std::fs::read(f.pki.user_key_path(&n(u))).unwrap(),
        &f.root,
        NOW_S,
    )
    .unwrap()
}

pub fn identities() -> &'static (LocalIdentity, LocalIdentity, LocalIdentity) {
    static I: OnceLock<(LocalIdentity, LocalIdentity, LocalIdentity)> = OnceLock::new();
    I.get_or_init(|| (me("alice"), me("bob"), me("carol")))
}

pub fn seal_to(from: &LocalIdentity, to: &[VerifiedPeer], text: &str) -> Vec<u8> {
    seal(
        from,
        &SealParams {
            msg_id: MessageId([42; 16]),
            timestamp_ms: NOW_MS,
            room: false,
            recipients: to,
            content: &Content::Text(text.into()),
            fragment_room: 4000,
        },
    )
    .unwrap()
    .into_envelope()
}

pub fn open_as(who: &LocalIdentity, bytes: &[u8], sender: &str) -> Result<Content, OpenError> {
    let env = Envelope::try_from(bytes)?;
    let frags = env.header().fragment_count;
    open(
        &env,
        &n(sender),
        frags,
        &peer(sender),
        who,
        &Freshness::default(),
        NOW_MS,
    )
    .map(|o| o.content)
}

/// 62 more users, `user0` to `user61`, issued once: with bob and carol,
/// the most recipients a message may have.
pub fn many_peers() -> &'static [VerifiedPeer] {
    static P: OnceLock<Vec<VerifiedPeer>> = OnceLock::new();
    P.get_or_init(|| {
        (0..62)
            .map(|i| {
                let name = format!("user{i}");
                let opts = UserCertOptions {
                    not_before: time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 - 86_400)
                        .unwrap(),
                    not_after: time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 + 86_400)
                        .unwrap(),
                    server_auth_only: false,
                };
                fx().pki.issue(&n(&name), &opts, false).unwrap();
                peer(&name)
            })
            .collect()
    })
}
