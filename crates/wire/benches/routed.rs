//! What the relay does with one received SEND fragment, two ways: decoding
//! it into a `Message` and encoding the DELIVER frame and the stored body
//! again (what the relay did before it kept the received bytes), and
//! `RoutedBody`, which copies the body out of the read buffer once, shares
//! it with the store, and writes the DELIVER frame from it.
//!
//! `cargo bench -p blindrelay-wire --bench routed`
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::sync::Arc;

use blindrelay_wire::{
    FRAME_LEN, FragmentPos, Frame, Message, MessageId, Routed, RoutedBody, RoutedFlags,
    RoutedHeader, Target, UserName,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn send_frame() -> Box<[u8; FRAME_LEN]> {
    let name = |s: &str| UserName::new(s).unwrap_or_else(|_| unreachable!());
    let target = Target::Users(vec![name("bob")]);
    let room = RoutedHeader::max_payload_len(&name("alice"), &target);
    let m = Message::Send(Routed {
        header: RoutedHeader {
            msg_id: MessageId([7; 16]),
            fragment: FragmentPos::SINGLE,
            flags: RoutedFlags::NONE,
            sender: name("alice"),
            target,
        },
        payload: vec![0x5a; room],
    });
    m.encode().unwrap_or_else(|_| unreachable!())
}

/// Decode, then encode the DELIVER frame and the stored body again.
fn re_encode(raw: &[u8; FRAME_LEN]) -> (Box<[u8; FRAME_LEN]>, Vec<u8>) {
    let Ok(Message::Send(r)) = Message::decode(&raw[..]) else {
        unreachable!()
    };
    let mut stored = r.clone();
    stored.header.flags = stored.header.flags.with(RoutedFlags::STORED);
    let stored_body = Message::Deliver(stored)
        .to_frame()
        .map(|f| f.body().to_vec())
        .unwrap_or_default();
    let live = Message::Deliver(r)
        .encode()
        .unwrap_or_else(|_| unreachable!());
    (live, stored_body)
}

/// Decode the header once; the stored copy is the received bytes, shared.
fn from_received_bytes(raw: &[u8; FRAME_LEN]) -> (Box<[u8; FRAME_LEN]>, Arc<[u8]>) {
    let Ok((_, bytes)) = Frame::parse(&raw[..]) else {
        unreachable!()
    };
    let Ok(body) = RoutedBody::decode(Arc::from(bytes)) else {
        unreachable!()
    };
    let mut live = Box::new([0u8; FRAME_LEN]);
    body.write_deliver(false, &mut live);
    (live, body.bytes().clone())
}

fn bench(c: &mut Criterion) {
    let raw = send_frame();
    let (old_live, old_stored) = re_encode(&raw);
    let (new_live, new_stored) = from_received_bytes(&raw);
    // The same DELIVER frame; the store keeps the received bytes and sets
    // the STORED flag when it delivers them, so the frame is the same too.
    assert_eq!(old_live, new_live);
    let mut from_store = [0u8; FRAME_LEN];
    blindrelay_wire::write_deliver(&new_stored, true, &mut from_store)
        .unwrap_or_else(|_| unreachable!());
    let mut old_from_store = [0u8; FRAME_LEN];
    blindrelay_wire::write_deliver(&old_stored, false, &mut old_from_store)
        .unwrap_or_else(|_| unreachable!());
    assert_eq!(from_store, old_from_store);
    c.bench_function("relay a SEND fragment/decode and re-encode", |b| {
        b.iter(|| re_encode(black_box(&raw)))
    });
    c.bench_function("relay a SEND fragment/keep the received bytes", |b| {
        b.iter(|| from_received_bytes(black_box(&raw)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
