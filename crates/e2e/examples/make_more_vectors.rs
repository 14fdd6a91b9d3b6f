//! Writes `tests/vectors/more-vectors.txt` from the keys already in
//! `tests/vectors/` (it creates none): a safety number, a routed SEND frame,
//! a receipt, and a message in two fragments. Run once; the output is
//! committed. `cargo run -p blindrelay-e2e --example make_more_vectors`

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

use blindrelay_e2e::seal::{MessageKey, seal_with};
use blindrelay_e2e::{Content, LocalIdentity, SealParams, Sealed, TrustRoot, VerifiedPeer};
use blindrelay_wire::codec::hex;
use blindrelay_wire::{Message, MessageId, Routed, RoutedFlags, RoutedHeader, Target, UserName};

const TS_MS: u64 = 1_800_000_000_000;

type Res<T> = Result<T, Box<dyn Error>>;

fn n(s: &str) -> Res<UserName> {
    Ok(UserName::new(s)?)
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn identity(u: &str, root: &TrustRoot) -> Res<LocalIdentity> {
    Ok(LocalIdentity::from_pem(
        &n(u)?,
        &std::fs::read(dir().join(format!("users/{u}.pem")))?,
        &std::fs::read(dir().join(format!("users/{u}-key.pem")))?,
        root,
        TS_MS / 1000,
    )?)
}

/// The SEND frames of a sealed message, one hex line each.
fn frames(
    from: &UserName,
    to: &UserName,
    id: MessageId,
    s: &Sealed,
    flags: RoutedFlags,
) -> Res<Vec<String>> {
    s.fragments()
        .map(|(fragment, piece)| {
            let m = Message::Send(Routed {
                header: RoutedHeader {
                    msg_id: id,
                    fragment,
                    flags,
                    sender: from.clone(),
                    target: Target::Users(vec![to.clone()]),
                },
                payload: piece.to_vec(),
            });
            Ok(hex(&m.encode()?[..]))
        })
        .collect()
}

fn main() -> Res<()> {
    let root = TrustRoot::new(blindrelay_pki::store::read_cert_der(&dir().join("ca.pem"))?)?;
    let alice = identity("alice", &root)?;
    let bob = identity("bob", &root)?;
    let peer = |me: &LocalIdentity| {
        VerifiedPeer::verify(me.name(), me.cert().cert_der(), &root, TS_MS / 1000)
    };
    let mut out = String::new();
    out.push_str("# blindrelay v1: more known-answer vectors (see PROTOCOL.md section 9)\n");
    out.push_str("# Same keys as vectors.txt. Frames are the 4096 bytes of a SEND, hex.\n");
    out.push_str("# RSA-OAEP and RSA-PSS are randomized: the frames open and verify, but\n");
    out.push_str("# a second sealing gives other bytes.\n\n");

    out.push_str("# The safety number of alice's and bob's keys (SHA-256 of each certificate's SubjectPublicKeyInfo).\n");
    let _ = writeln!(
        out,
        "safety_number = {}",
        blindrelay_e2e::safety_number(alice.cert().cert_der(), bob.cert().cert_der())
    );

    // A text from alice to bob, in one SEND frame.
    let target = Target::Users(vec![n("bob")?]);
    let room = RoutedHeader::max_payload_len(&n("alice")?, &target);
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let nonce: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
    let text_id = MessageId([0x21; 16]);
    let text = Content::Text("Hello Bob! This travels in one SEND frame.".into());
    let sealed = seal_with(
        &alice,
        &SealParams {
            msg_id: text_id,
            timestamp_ms: TS_MS,
            room: false,
            recipients: &[peer(&bob)?],
            content: &text,
            fragment_room: room,
        },
        MessageKey::from_bytes_for_test_vectors(key),
        nonce,
    )?;
    out.push_str("\n# A text from alice to bob in one SEND frame (target 0, flags 0).\n");
    let _ = writeln!(out, "send_msg_id = {}", hex(&text_id.0));
    let _ = writeln!(
        out,
        "send_frame = {}",
        frames(
            &n("alice")?,
            &n("bob")?,
            text_id,
            &sealed,
            RoutedFlags::NONE
        )?
        .concat()
    );

    // bob's receipt for it, in one SEND frame with the RECEIPT flag.
    let receipt_id = MessageId([0x22; 16]);
    let receipt = Content::Receipt(vec![text_id]);
    let sealed = seal_with(
        &bob,
        &SealParams {
            msg_id: receipt_id,
            timestamp_ms: TS_MS + 1000,
            room: false,
            recipients: &[peer(&alice)?],
            content: &receipt,
            fragment_room: RoutedHeader::max_payload_len(
                &n("bob")?,
                &Target::Users(vec![n("alice")?]),
            ),
        },
        MessageKey::from_bytes_for_test_vectors(key),
        nonce,
    )?;
    out.push_str("\n# bob's receipt for it: content type 2, one id; sent with the RECEIPT flag.\n");
    let _ = writeln!(out, "receipt_plaintext = {}", hex(&receipt.encode()));
    let _ = writeln!(out, "receipt_msg_id = {}", hex(&receipt_id.0));
    let _ = writeln!(
        out,
        "receipt_frame = {}",
        frames(
            &n("bob")?,
            &n("alice")?,
            receipt_id,
            &sealed,
            RoutedFlags::RECEIPT
        )?
        .concat()
    );

    // A text of 6000 bytes from alice to bob: two fragments.
    let long_id = MessageId([0x23; 16]);
    let long = Content::Text("0123456789".repeat(600));
    let sealed = seal_with(
        &alice,
        &SealParams {
            msg_id: long_id,
            timestamp_ms: TS_MS + 2000,
            room: false,
            recipients: &[peer(&bob)?],
            content: &long,
            fragment_room: room,
        },
        MessageKey::from_bytes_for_test_vectors(key),
        nonce,
    )?;
    if sealed.fragment_count() != 2 {
        return Err("the long message should need two fragments".into());
    }
    out.push_str("\n# A text of 6000 bytes (\"0123456789\" 600 times) from alice to bob:\n");
    out.push_str("# the envelope cut into two SEND frames of the payload room for this\n");
    out.push_str("# sender and recipient.\n");
    let _ = writeln!(out, "long_msg_id = {}", hex(&long_id.0));
    let _ = writeln!(out, "long_fragment_room = {room}");
    for (i, f) in frames(
        &n("alice")?,
        &n("bob")?,
        long_id,
        &sealed,
        RoutedFlags::NONE,
    )?
    .into_iter()
    .enumerate()
    {
        let _ = writeln!(out, "long_frame_{i} = {f}");
    }
    std::fs::write(dir().join("more-vectors.txt"), out)?;
    println!("wrote {}", dir().join("more-vectors.txt").display());
    Ok(())
}
