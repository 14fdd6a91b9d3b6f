//! Envelope properties with real keys from a throwaway PKI.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::sync::OnceLock;

use blindrelay_e2e::OpenError;
use blindrelay_e2e::header::FLAG_ROOM;
use blindrelay_e2e::{
    Content, Envelope, Freshness, LocalIdentity, PeerError, SealParams, TrustRoot, VerifiedPeer,
    open, safety_number, seal,
};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_wire::{MessageId, UserName};
use proptest::prelude::*;

const NOW_MS: u64 = 1_800_000_000_000;
const NOW_S: u64 = NOW_MS / 1000;

struct Fixture {
    _dir: tempfile::TempDir,
    pki: PkiDir,
    root: TrustRoot,
    other_root_pki: (tempfile::TempDir, PkiDir),
}

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn pki_with(users: &[&str]) -> (tempfile::TempDir, PkiDir) {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiDir::new(dir.path());
    pki.init("E2E Test CA", &["localhost".into()], false)
        .unwrap();
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

fn fx() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (dir, pki) = pki_with(&["alice", "bob", "carol", "mallory"]);
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

fn cert(pki: &PkiDir, u: &str) -> Vec<u8> {
    blindrelay_pki::store::read_cert_der(&pki.user_cert_path(&n(u))).unwrap()
}

fn peer(u: &str) -> VerifiedPeer {
    VerifiedPeer::verify(&n(u), &cert(&fx().pki, u), &fx().root, NOW_S).unwrap()
}

fn me(u: &str) -> LocalIdentity {
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

fn identities() -> &'static (LocalIdentity, LocalIdentity, LocalIdentity) {
    static I: OnceLock<(LocalIdentity, LocalIdentity, LocalIdentity)> = OnceLock::new();
    I.get_or_init(|| (me("alice"), me("bob"), me("carol")))
}

fn seal_to(from: &LocalIdentity, to: &[VerifiedPeer], text: &str) -> Vec<u8> {
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

fn open_as(who: &LocalIdentity, bytes: &[u8], sender: &str) -> Result<Content, OpenError> {
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

#[test]
fn round_trip_one_recipient() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "Hello Bob!");
    assert_eq!(
        open_as(bob, &env, "alice").unwrap(),
        Content::Text("Hello Bob!".into())
    );
}

#[test]
fn many_recipients_each_can_open_and_body_is_encrypted_once() {
    let (alice, bob, carol) = identities();
    let mut recips = vec![peer("bob"), peer("carol")];
    // Dozens of recipients: repeat-issued certificates under other names.
    for i in 0..38 {
        let name = format!("user{i}");
        let opts = UserCertOptions {
            not_before: time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 - 86_400).unwrap(),
            not_after: time::OffsetDateTime::from_unix_timestamp(NOW_S as i64 + 86_400).unwrap(),
            server_auth_only: false,
        };
        fx().pki.issue(&n(&name), &opts, true).unwrap();
        recips.push(peer(&name));
    }
    let text = "x".repeat(1000);
    let sealed = seal(
        alice,
        &SealParams {
            msg_id: MessageId([1; 16]),
            timestamp_ms: NOW_MS,
            room: true,
            recipients: &recips,
            content: &Content::Text(text.clone()),
            fragment_room: 3500,
        },
    )
    .unwrap();
    // The pieces are positioned, at most one room each, and make up the
    // envelope in order; their count is the one the header commits to.
    let pieces: Vec<_> = sealed.fragments().collect();
    assert_eq!(pieces.len(), usize::from(sealed.fragment_count()));
    for (i, (pos, piece)) in pieces.iter().enumerate() {
        assert_eq!(
            (usize::from(pos.index()), pos.count()),
            (i, sealed.fragment_count())
        );
        assert!(piece.len() <= 3500);
    }
    assert_eq!(
        pieces
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect::<Vec<u8>>(),
        sealed.envelope()
    );
    let env = sealed.into_envelope();
    let parsed = Envelope::try_from(&env[..]).unwrap();
    assert_eq!(parsed.header().recipients.len(), 40);
    assert!(parsed.header().flags & FLAG_ROOM != 0);
    // 40 wrapped keys of 256 bytes, one ciphertext of ~1 KB.
    assert!(env.len() < 40 * 258 + 1100 + 700, "{}", env.len());
    assert_eq!(
        parsed.header().fragment_count as usize,
        env.len().div_ceil(3500)
    );
    for who in [bob, carol] {
        assert_eq!(
            open_as(who, &env, "alice").unwrap(),
            Content::Text(text.clone())
        );
    }
}

#[test]
fn not_addressed_to_me() {
    let (alice, _, carol) = identities();
    let env = seal_to(alice, &[peer("bob")], "for bob only");
    assert_eq!(open_as(carol, &env, "alice"), Err(OpenError::NotForMe));
}

#[test]
fn relay_claiming_another_sender_is_detected() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "hi");
    let parsed = Envelope::try_from(&env[..]).unwrap();
    // Relay says it came from carol: mismatch with the envelope.
    assert_eq!(
        open(
            &parsed,
            &n("carol"),
            1,
            &peer("carol"),
            bob,
            &Freshness::default(),
            NOW_MS
        ),
        Err(OpenError::SenderMismatch)
    );
}

#[test]
fn forged_sender_signature_fails_identically() {
    // Mallory builds an envelope claiming to be alice: she can write the
    // header, but cannot sign as alice.
    let mallory = me("mallory");
    let (_, bob, _) = identities();
    let env = seal_to(&mallory, &[peer("bob")], "I am alice");
    let mut forged = env.clone();
    // Replace sender "mallory" by "alice" + keep lengths consistent: rebuild
    // via the header offsets (version, flags, id, ts, count, key commitment).
    let name_at = 1 + 1 + 16 + 8 + 2 + 32;
    assert_eq!(&forged[name_at + 1..name_at + 8], b"mallory");
    forged.splice(name_at..name_at + 8, [5u8, b'a', b'l', b'i', b'c', b'e']);
    assert_eq!(
        open_as(bob, &forged, "alice"),
        Err(OpenError::Undecryptable)
    );
}

#[test]
fn stale_and_future_messages_are_refused() {
    let (alice, bob, _) = identities();
    let f = Freshness::default();
    for (ts, want) in [(NOW_MS - 61_000, "stale"), (NOW_MS + 31_000, "future")] {
        let env = seal(
            alice,
            &SealParams {
                msg_id: MessageId([2; 16]),
                timestamp_ms: ts,
                room: false,
                recipients: &[peer("bob")],
                content: &Content::Text("t".into()),
                fragment_room: 4000,
            },
        )
        .unwrap();
        let p = Envelope::try_from(env.envelope()).unwrap();
        let r = open(&p, &n("alice"), 1, &peer("alice"), bob, &f, NOW_MS);
        match (want, r) {
            ("stale", Err(OpenError::Stale { .. })) | ("future", Err(OpenError::Future { .. })) => {
            }
            (w, other) => panic!("{w}: {other:?}"),
        }
    }
    // A longer window (stored delivery) accepts the old one.
    let long = Freshness {
        max_age_ms: 7 * 86_400_000,
        ..f
    };
    assert!(long.check(NOW_MS - 3_600_000, NOW_MS).is_ok());
}

#[test]
fn fragment_count_must_match_the_relay() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "hi");
    let p = Envelope::try_from(&env[..]).unwrap();
    assert_eq!(
        open(
            &p,
            &n("alice"),
            2,
            &peer("alice"),
            bob,
            &Freshness::default(),
            NOW_MS
        ),
        Err(OpenError::Malformed)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_flipped_bit_anywhere_is_rejected(byte in 0usize..2000, bit in 0u8..8) {
        let (alice, bob, _) = identities();
        let env = seal_to(alice, &[peer("bob")], "integrity matters");
        let mut t = env.clone();
        let i = byte % t.len();
        t[i] ^= 1 << bit;
        prop_assert!(open_as(bob, &t, "alice").is_err(), "flip at {} accepted", i);
    }

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = Envelope::try_from(&bytes[..]);
    }

    #[test]
    fn truncation_or_extension_is_rejected(cut in 1usize..600, extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let (alice, bob, _) = identities();
        let env = seal_to(alice, &[peer("bob")], "length matters");
        let short = &env[..env.len() - cut.min(env.len())];
        prop_assert!(open_as(bob, short, "alice").is_err());
        let mut long = env.clone();
        long.extend_from_slice(&extra);
        prop_assert!(open_as(bob, &long, "alice").is_err());
    }
}

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
    let (_d, p2) = pki_with(&["dave"]);
    p2.revoke(&n("dave")).unwrap();
    let root2 = TrustRoot::new(blindrelay_pki::store::read_cert_der(&p2.ca_cert_path()).unwrap())
        .unwrap()
        .with_crl(blindrelay_pki::store::read_crl_der(&p2.crl_path()).unwrap())
        .unwrap();
    assert!(matches!(
        VerifiedPeer::verify(&n("dave"), &cert(&p2, "dave"), &root2, NOW_S),
        Err(PeerError::Rejected(webpki::Error::CertRevoked))
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

#[test]
fn safety_numbers_match_on_both_sides_and_differ_per_pair() {
    let f = fx();
    let (a, b, c) = (
        cert(&f.pki, "alice"),
        cert(&f.pki, "bob"),
        cert(&f.pki, "carol"),
    );
    let ab = safety_number(&a, &b);
    assert_eq!(ab, safety_number(&b, &a));
    assert_ne!(ab, safety_number(&a, &c));
    assert_eq!(ab.split(' ').count(), 12);
    assert!(
        ab.split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit()))
    );
}

#[test]
fn every_message_uses_a_fresh_key_and_nonce() {
    let (alice, _, _) = identities();
    let a = Envelope::try_from(&seal_to(alice, &[peer("bob")], "same")[..]).unwrap();
    let b = Envelope::try_from(&seal_to(alice, &[peer("bob")], "same")[..]).unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes());
}

#[test]
fn the_header_commits_to_the_message_key() {
    use blindrelay_e2e::seal::key_commitment;
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "committed");
    let parsed = Envelope::try_from(&env[..]).unwrap();
    // Distinct keys give distinct commitments; the header carries one.
    assert_ne!(key_commitment(&[1; 32]), key_commitment(&[2; 32]));
    assert_ne!(parsed.header().key_commit, [0u8; 32]);
    // A sender who signs a header committing to another key than the one
    // wrapped for the recipient is rejected.
    let mut header_and_rest = env[..env.len() - 2 - 256].to_vec();
    let at = 1 + 1 + 16 + 8 + 2;
    header_and_rest[at..at + 32].copy_from_slice(&key_commitment(&[7; 32]));
    let forged = blindrelay_e2e::seal::resign_for_tests(alice, &header_and_rest).unwrap();
    assert_eq!(
        open_as(bob, &forged, "alice"),
        Err(OpenError::Undecryptable)
    );
}
