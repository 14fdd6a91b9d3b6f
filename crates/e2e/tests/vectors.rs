//! Known-answer vectors: a third-party implementation must reproduce these
//! bytes (PROTOCOL.md, "Test vectors").
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::collections::HashMap;
use std::path::PathBuf;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use blindrelay_e2e::seal::{MessageKey, seal_with};
use blindrelay_e2e::{
    AAD_LABEL, Content, Envelope, Freshness, LocalIdentity, SealParams, TrustRoot, VerifiedPeer,
    open,
};
use blindrelay_wire::{MessageId, UserName};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> HashMap<String, String> {
    std::fs::read_to_string(dir().join("vectors.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn root() -> TrustRoot {
    TrustRoot::new(blindrelay_pki::store::read_cert_der(&dir().join("ca.pem")).unwrap()).unwrap()
}

fn identity(u: &str, now_s: u64) -> LocalIdentity {
    LocalIdentity::from_pem(
        &n(u),
        &std::fs::read(dir().join(format!("users/{u}.pem"))).unwrap(),
        &std::fs::read(dir().join(format!("users/{u}-key.pem"))).unwrap(),
        &root(),
        now_s,
    )
    .unwrap()
}

#[test]
fn aes_gcm_part_is_reproducible_from_the_inputs() {
    let v = vectors();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &unhex(&v["message_key"])).unwrap());
    let nonce: [u8; 12] = unhex(&v["nonce"]).try_into().unwrap();
    let mut buf = unhex(&v["plaintext"]);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(unhex(&v["aad"])),
        &mut buf,
    )
    .unwrap();
    assert_eq!(buf, unhex(&v["ciphertext"]));
}

#[test]
fn envelope_layout_matches_the_documented_fields() {
    let v = vectors();
    let env = Envelope::try_from(&unhex(&v["envelope"])[..]).unwrap();
    let h = env.header();
    assert_eq!(h.msg_id.0.to_vec(), unhex(&v["msg_id"]));
    assert_eq!(h.timestamp_ms.to_string(), v["timestamp_ms"]);
    assert_eq!(h.sender, n("alice"));
    assert_eq!(h.recipients, vec![n("bob")]);
    assert_eq!(h.fragment_count, 1);
    assert_eq!(env.aad(), unhex(&v["aad"]));
    assert!(env.aad().starts_with(AAD_LABEL));
    assert_eq!(env.nonce().to_vec(), unhex(&v["nonce"]));
    assert_eq!(env.ciphertext(), &unhex(&v["ciphertext"])[..]);
    assert_eq!(env.wrapped_keys()[0], unhex(&v["wrapped_key"]));
    let key: [u8; 32] = unhex(&v["message_key"]).try_into().unwrap();
    assert_eq!(h.key_commit, blindrelay_e2e::seal::key_commitment(&key));
    assert_eq!(h.key_commit.to_vec(), unhex(&v["key_commit"]));
}

#[test]
fn bob_opens_the_vector_envelope() {
    let v = vectors();
    let ts: u64 = v["timestamp_ms"].parse().unwrap();
    let bob = identity("bob", ts / 1000);
    let alice_cert = blindrelay_pki::store::read_cert_der(&dir().join("users/alice.pem")).unwrap();
    let alice = VerifiedPeer::verify(&n("alice"), &alice_cert, &root(), ts / 1000).unwrap();
    let env = Envelope::try_from(&unhex(&v["envelope"])[..]).unwrap();
    let opened = open(
        &env,
        &n("alice"),
        1,
        &alice,
        &bob,
        &Freshness::default(),
        ts + 1000,
    )
    .unwrap();
    assert_eq!(opened.content.encode(), unhex(&v["plaintext"]));
    assert_eq!(
        opened.content,
        Content::Text("Hello Bob! This is a known-answer vector.".into())
    );
}

#[test]
fn sealing_the_same_inputs_gives_the_same_deterministic_bytes() {
    let v = vectors();
    let ts: u64 = v["timestamp_ms"].parse().unwrap();
    let alice = identity("alice", ts / 1000);
    let bob_cert = blindrelay_pki::store::read_cert_der(&dir().join("users/bob.pem")).unwrap();
    let bob = VerifiedPeer::verify(&n("bob"), &bob_cert, &root(), ts / 1000).unwrap();
    let sealed = seal_with(
        &alice,
        &SealParams {
            msg_id: MessageId(unhex(&v["msg_id"]).try_into().unwrap()),
            timestamp_ms: ts,
            room: false,
            recipients: &[bob],
            content: &Content::decode(&unhex(&v["plaintext"])).unwrap(),
            fragment_room: 4000,
        },
        MessageKey::from_bytes_for_test_vectors(unhex(&v["message_key"]).try_into().unwrap()),
        unhex(&v["nonce"]).try_into().unwrap(),
    )
    .unwrap();
    let env = Envelope::try_from(sealed.envelope()).unwrap();
    assert_eq!(env.aad(), unhex(&v["aad"]));
    assert_eq!(env.ciphertext(), &unhex(&v["ciphertext"])[..]);
}
