//! Fuzzing entry points of blindrelay.
//!
//! Each public function here takes arbitrary bytes, feeds them to one
//! decoder or checker that handles data from a peer, and panics only when an
//! invariant of that decoder is broken (a decoded value that does not encode
//! back to the same bytes, a budget exceeded, a forged certificate accepted).
//! The decoders themselves must never panic, hang or allocate beyond their
//! documented bounds on any input.
//!
//! The same functions are driven by two harnesses:
//! - `fuzz/` (cargo-fuzz, nightly, libFuzzer), one target per function, with
//!   the seed corpora committed in `fuzz/corpus/<target>/`;
//! - the property tests in `tests/entry_points.rs` (stable, run in CI), which
//!   call them on random bytes and on random mutations of those seeds.
//!
//! The cryptographic targets use the fixed keys of the known-answer vectors
//! (`crates/e2e/tests/vectors`) and a fixed clock ([`NOW_MS`]), so a crash
//! found by the fuzzer reproduces byte for byte.
#![allow(clippy::panic)] // A panic is how a fuzz target reports a broken invariant.

pub mod v2;

use std::sync::OnceLock;

use blindrelay_e2e::fragment::ReassemblyLimits;
use blindrelay_e2e::{
    Envelope, Freshness, Lane, LocalIdentity, Reassembler, TrustRoot, VerifiedPeer, open,
};
use blindrelay_wire::{
    FragmentPos, Frame, FrameType, MAX_BODY_LEN, Message, MessageId, RoutedBody, UserName,
};

/// The clock of the cryptographic targets: the known-answer vector's
/// timestamp (2027-01-15), inside the vector certificates' validity.
pub const NOW_MS: u64 = 1_800_000_000_000;

const CA_PEM: &[u8] = include_bytes!("../../e2e/tests/vectors/ca.pem");
const ALICE_PEM: &[u8] = include_bytes!("../../e2e/tests/vectors/users/alice.pem");
const ALICE_KEY_PEM: &[u8] = include_bytes!("../../e2e/tests/vectors/users/alice-key.pem");
const BOB_PEM: &[u8] = include_bytes!("../../e2e/tests/vectors/users/bob.pem");
const BOB_KEY_PEM: &[u8] = include_bytes!("../../e2e/tests/vectors/users/bob-key.pem");

/// The fixed world of the cryptographic targets: the vectors' CA, alice
/// (sender) and bob (recipient).
pub struct Keys {
    /// The vectors' CA.
    pub root: TrustRoot,
    /// alice, who sends.
    pub alice: LocalIdentity,
    /// bob, who receives.
    pub bob: LocalIdentity,
    /// alice's certificate (DER).
    pub alice_der: Vec<u8>,
}

fn der(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem)
        .ok()
        .map(|c| c.to_vec())
}

fn name(s: &str) -> Option<UserName> {
    UserName::new(s).ok()
}

fn load_keys() -> Option<Keys> {
    let root = TrustRoot::new(der(CA_PEM)?).ok()?;
    let now_s = NOW_MS / 1000;
    let alice = LocalIdentity::from_pem(&name("alice")?, ALICE_PEM, ALICE_KEY_PEM, &root, now_s);
    let bob = LocalIdentity::from_pem(&name("bob")?, BOB_PEM, BOB_KEY_PEM, &root, now_s);
    Some(Keys {
        alice: alice.ok()?,
        bob: bob.ok()?,
        alice_der: der(ALICE_PEM)?,
        root,
    })
}

/// The fixed keys, loaded once per process.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Option<Keys>> = OnceLock::new();
    match KEYS.get_or_init(load_keys) {
        Some(k) => k,
        None => panic!("the committed vector keys must load"),
    }
}

/// The frame decoder (every byte the relay reads from a client). A frame
/// that decodes must encode back to exactly the input: decoding is strict,
/// so there is one encoding per frame.
pub fn frame(data: &[u8]) {
    // Short inputs are zero-padded to a whole frame, so the fuzzer can work
    // on the interesting prefix; longer ones are tried as they are.
    let mut buf;
    let bytes = if data.len() < blindrelay_wire::FRAME_LEN {
        buf = data.to_vec();
        buf.resize(blindrelay_wire::FRAME_LEN, 0);
        buf.as_slice()
    } else {
        data
    };
    let Ok(f) = Frame::decode(bytes) else {
        return;
    };
    if f.encode().as_slice() != bytes {
        panic!("frame does not re-encode to its input");
    }
    // And the message layer on top of it.
    message_from_frame(&f);
}

/// Every message decoder, relay- and client-side: `data[0]` is the frame
/// type, the rest the body. A message that decodes must encode to the same
/// body.
pub fn message(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    if body.len() > MAX_BODY_LEN {
        return;
    }
    let Ok(kind) = FrameType::from_u8(kind) else {
        return;
    };
    let Ok(f) = Frame::new(kind, body.to_vec()) else {
        return;
    };
    message_from_frame(&f);
}

fn message_from_frame(f: &Frame) {
    if matches!(f.kind(), FrameType::Send | FrameType::Deliver) {
        routed_body(f);
    }
    let Ok(m) = Message::from_frame(f) else {
        return;
    };
    let Ok(again) = m.to_frame() else {
        panic!("a decoded message does not encode: {m:?}");
    };
    if again.kind() != f.kind() || again.body() != f.body() {
        panic!("message does not re-encode to its input: {m:?}");
    }
}

/// The relay's decoder of SEND bodies must accept exactly what the message
/// decoder accepts, and the DELIVER frame it writes from the received bytes
/// must be the one the message encoder writes.
fn routed_body(f: &Frame) {
    let decoded = Message::from_frame(f);
    let Ok(body) = RoutedBody::decode(f.body().into()) else {
        if decoded.is_ok() {
            panic!("the relay refuses a routed body the message decoder accepts");
        }
        return;
    };
    let (Message::Send(r) | Message::Deliver(r)) = (match decoded {
        Ok(m) => m,
        Err(_) => panic!("the relay accepts a routed body the message decoder refuses"),
    }) else {
        panic!("a routed frame decoded to another message");
    };
    if body.header() != &r.header || body.payload() != r.payload.as_slice() {
        panic!("the relay decodes a routed body differently");
    }
    let mut out = [0u8; blindrelay_wire::FRAME_LEN];
    body.write_deliver(false, &mut out);
    match Message::Deliver(r).encode() {
        Ok(expected) if expected[..] == out[..] => {}
        _ => panic!("the relay's DELIVER frame differs from the encoder's"),
    }
}

/// The envelope parser and opener, as bob receiving from alice. Without
/// alice's key the fuzzer cannot produce a valid signature, so this mostly
/// exercises the parser and the checks before the signature; see
/// [`envelope_resigned`] for what lies behind it.
pub fn envelope(data: &[u8]) {
    let Ok(env) = Envelope::try_from(data) else {
        return;
    };
    if env.as_bytes() != data {
        panic!("envelope does not keep its bytes");
    }
    open_as_bob(&env);
}

/// The opener behind the signature check: `data` is the signed part of an
/// envelope (everything before the signature length), which is signed here
/// with alice's key and then opened as bob. This reaches key unwrapping, the
/// key commitment, AES-GCM and the content decoder with fuzzer-chosen bytes,
/// as a dishonest but authenticated sender could.
pub fn envelope_resigned(data: &[u8]) {
    let k = keys();
    let Ok(signed) = blindrelay_e2e::seal::resign_for_tests(&k.alice, data) else {
        return;
    };
    let Ok(env) = Envelope::try_from(signed.as_slice()) else {
        return;
    };
    open_as_bob(&env);
}

fn open_as_bob(env: &Envelope) {
    let k = keys();
    let Some(alice_name) = name("alice") else {
        return;
    };
    let Ok(alice) = VerifiedPeer::verify(&alice_name, &k.alice_der, &k.root, NOW_MS / 1000) else {
        panic!("alice's vector certificate must verify");
    };
    let fragments = env.header().fragment_count;
    let res = open(
        env,
        &alice_name,
        fragments,
        &alice,
        &k.bob,
        &Freshness::default(),
        NOW_MS,
    );
    if let Ok(opened) = res {
        if opened.header != *env.header() {
            panic!("opened header differs from the parsed one");
        }
        if !opened.header.recipients.iter().any(|r| r == k.bob.name()) {
            panic!("opened a message not addressed to bob");
        }
    }
}

/// Certificate and CRL reading: identity extraction (what the relay binds a
/// session to), certificate information, CRL parsing, and full peer
/// verification. Only alice's real certificate may verify as alice.
pub fn certificate(data: &[u8]) {
    let id = blindrelay_pki::identity_from_cert(data);
    let _ = blindrelay_pki::CertInfo::from_der(data);
    let _ = blindrelay_pki::revoked_serials(data);
    let k = keys();
    let Some(alice_name) = name("alice") else {
        return;
    };
    if VerifiedPeer::verify(&alice_name, data, &k.root, NOW_MS / 1000).is_ok() {
        if data != k.alice_der.as_slice() {
            panic!("a certificate other than alice's verified as alice");
        }
        if id.ok().as_ref() != Some(&alice_name) {
            panic!("verified certificate without alice's identity");
        }
    }
}

/// The client's fragment reassembler, driven by a fuzzer-chosen sequence of
/// fragments from a few senders. The memory budget and the partial-message
/// caps must hold after every step.
pub fn reassembly(data: &[u8]) {
    let limits = ReassemblyLimits {
        max_partial: 8,
        max_partial_per_sender: 3,
        max_bytes: 4096,
        timeout_ms: 1000,
    };
    let senders: Vec<UserName> = ["a", "b", "c"].iter().filter_map(|s| name(s)).collect();
    let mut r = Reassembler::new(limits);
    let mut now = 0u64;
    let mut rest = data;
    while let [op, id, lane_pos, count, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let Some(sender) = senders.get(usize::from(op % 3)) else {
            return;
        };
        now += u64::from(op / 3) * 10;
        let count = u16::from(count % 8).max(1);
        let index = u16::from(lane_pos >> 1) % count;
        let Ok(pos) = FragmentPos::new(index, count) else {
            continue;
        };
        let msg_id = MessageId([*id % 16; 16]);
        let lane = if lane_pos & 1 == 0 {
            Lane::Live
        } else {
            Lane::Stored
        };
        if let Ok(Some(done)) = r.push(sender, msg_id, lane, pos, payload, now)
            && done.len() > usize::from(count) * 255
        {
            panic!("reassembled more than the fragments carried");
        }
        r.expire(now);
        if r.buffered_bytes() > limits.max_bytes || r.partial_count() > limits.max_partial {
            panic!("reassembly budget exceeded");
        }
    }
}

/// A fuzz target: a name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name (the names of the cargo-fuzz targets and corpus
/// folders).
pub const TARGETS: &[Target] = &[
    ("frame", frame),
    ("message", message),
    ("envelope", envelope),
    ("envelope_resigned", envelope_resigned),
    ("certificate", certificate),
    ("reassembly", reassembly),
    ("ds_request", v2::ds_request),
    ("ds_down", v2::ds_down),
    ("ds_chunks", v2::ds_chunks),
    ("mls_intake", v2::mls_intake),
    ("relay_check", v2::relay_check),
];
