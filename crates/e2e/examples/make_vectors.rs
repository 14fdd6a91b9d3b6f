//! Writes the known-answer vectors in `tests/vectors/` (run once; the output
//! is committed). `cargo run -p blindrelay-e2e --example make_vectors -- DIR`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;

use blindrelay_wire::codec::hex;

use blindrelay_e2e::seal::{MessageKey, seal_with};
use blindrelay_e2e::{Content, Envelope, LocalIdentity, SealParams, TrustRoot, VerifiedPeer};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_wire::{MessageId, UserName};

const TS_MS: u64 = 1_800_000_000_000;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_vectors DIR");
    let pki = PkiDir::new(&dir);
    pki.init("blindrelay test-vector CA", true).unwrap();
    let n = |s: &str| UserName::new(s).unwrap();
    let ts_s = (TS_MS / 1000) as i64;
    let opts = UserCertOptions {
        not_before: time::OffsetDateTime::from_unix_timestamp(ts_s - 86_400).unwrap(),
        not_after: time::OffsetDateTime::from_unix_timestamp(ts_s + 86_400 * 3650).unwrap(),
        server_auth_only: false,
    };
    for u in ["alice", "bob"] {
        pki.issue(&n(u), &opts, true).unwrap();
    }
    let root =
        TrustRoot::new(blindrelay_pki::store::read_cert_der(&pki.ca_cert_path()).unwrap()).unwrap();
    let alice = LocalIdentity::from_pem(
        &n("alice"),
        &std::fs::read(pki.user_cert_path(&n("alice"))).unwrap(),
        &std::fs::read(pki.user_key_path(&n("alice"))).unwrap(),
        &root,
        TS_MS / 1000,
    )
    .unwrap();
    let bob_cert = blindrelay_pki::store::read_cert_der(&pki.user_cert_path(&n("bob"))).unwrap();
    let bob = VerifiedPeer::verify(&n("bob"), &bob_cert, &root, TS_MS / 1000).unwrap();
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let nonce: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
    let msg_id = MessageId(std::array::from_fn(|i| 0x10 + i as u8));
    let content = Content::Text("Hello Bob! This is a known-answer vector.".into());
    let env = seal_with(
        &alice,
        &SealParams {
            msg_id,
            timestamp_ms: TS_MS,
            room: false,
            recipients: &[bob],
            content: &content,
            fragment_room: 4000,
        },
        MessageKey::from_bytes_for_test_vectors(key),
        nonce,
    )
    .unwrap()
    .into_envelope();
    let parsed = Envelope::try_from(&env[..]).unwrap();
    let mut out = String::new();
    out.push_str("# blindrelay envelope v1 known-answer vector (see PROTOCOL.md)\n");
    out.push_str(
        "# Keys and certificates: users/alice*.pem, users/bob*.pem, ca.pem beside this file.\n",
    );
    out.push_str("# RSA-OAEP and RSA-PSS are randomized, so wrapped_key and signature differ\n");
    out.push_str("# on every sealing; everything else is fixed by the inputs below.\n");
    let _ = writeln!(out, "sender = alice");
    let _ = writeln!(out, "recipient = bob");
    let _ = writeln!(out, "msg_id = {}", hex(&msg_id.0));
    let _ = writeln!(out, "timestamp_ms = {TS_MS}");
    let _ = writeln!(out, "fragment_room = 4000");
    let _ = writeln!(out, "message_key = {}", hex(&key));
    let _ = writeln!(out, "nonce = {}", hex(&nonce));
    let _ = writeln!(out, "plaintext = {}", hex(&content.encode()));
    let _ = writeln!(out, "key_commit = {}", hex(&parsed.header().key_commit));
    let _ = writeln!(out, "aad = {}", hex(&parsed.aad()));
    let _ = writeln!(out, "ciphertext = {}", hex(parsed.ciphertext()));
    let _ = writeln!(out, "wrapped_key = {}", hex(&parsed.wrapped_keys()[0]));
    let _ = writeln!(out, "envelope = {}", hex(&env));
    std::fs::write(format!("{dir}/vectors.txt"), out).unwrap();
    // Only what the vectors need stays.
    for f in ["server.pem", "server-key.pem", "crl.pem", "ca-key.pem"] {
        let _ = std::fs::remove_file(format!("{dir}/{f}"));
    }
    println!("wrote {dir}/vectors.txt");
}
