//! The core on its own: no relay, no sockets, no disk. Two cores (alice and
//! bob, the known-answer vectors' keys) talk by handing each other's SEND
//! frames over as DELIVER frames, on a fixed clock.

use std::time::Instant;

use blindrelay_e2e::{Freshness, LocalIdentity, TrustRoot};
use blindrelay_wire::{
    GoodbyeCode, Message, MessageId, PeerEvent, Routed, RoutedFlags, StatusKind, UserName, Welcome,
};

use super::*;
use crate::store::memory::MemoryStore;

const NOW_MS: u64 = 1_800_000_000_000;
const CA: &[u8] = include_bytes!("../../../e2e/tests/vectors/ca.pem");
const ALICE: (&[u8], &[u8]) = (
    include_bytes!("../../../e2e/tests/vectors/users/alice.pem"),
    include_bytes!("../../../e2e/tests/vectors/users/alice-key.pem"),
);
const BOB: (&[u8], &[u8]) = (
    include_bytes!("../../../e2e/tests/vectors/users/bob.pem"),
    include_bytes!("../../../e2e/tests/vectors/users/bob-key.pem"),
);

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn der(pem: &[u8]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem)
        .unwrap()
        .to_vec()
}

fn root() -> TrustRoot {
    TrustRoot::new(der(CA)).unwrap()
}

fn core(name: &str, (cert, key): (&[u8], &[u8])) -> ClientCore {
    let me = LocalIdentity::from_pem(&n(name), cert, key, &root(), NOW_MS / 1000).unwrap();
    ClientCore::new(
        me,
        root(),
        Box::new(MemoryStore::default()),
        Freshness::default(),
    )
}

/// Logs `c` in with `peers` listed online; returns the events.
fn login(c: &mut ClientCore, peers: &[(&str, &[u8])]) -> Vec<Event> {
    let mut events = c
        .handle(
            Message::Welcome(Welcome {
                identity: c.name().clone(),
                rate_max: 10,
                rate_window_ms: 5000,
                keepalive_ms: 20_000,
                max_fragments: 64,
                store_ttl_s: 3600,
            }),
            NOW_MS,
        )
        .events;
    for (name, pem) in peers {
        events.extend(
            c.handle(
                Message::Peer {
                    event: PeerEvent::Listed,
                    name: n(name),
                    cert_der: der(pem),
                },
                NOW_MS,
            )
            .events,
        );
    }
    events.extend(c.handle(Message::DirectoryEnd { count: 1 }, NOW_MS).events);
    events
}

fn pair() -> (ClientCore, ClientCore) {
    let mut alice = core("alice", ALICE);
    let mut bob = core("bob", BOB);
    login(&mut alice, &[("bob", BOB.0)]);
    login(&mut bob, &[("alice", ALICE.0)]);
    (alice, bob)
}

/// What the relay would deliver for these SEND frames.
fn delivered(frames: &[Message], flags: RoutedFlags) -> Vec<Message> {
    frames
        .iter()
        .map(|m| match m {
            Message::Send(r) => {
                let mut r: Routed = r.clone();
                r.header.flags = r.header.flags.with(flags);
                Message::Deliver(r)
            }
            other => panic!("not a SEND: {other:?}"),
        })
        .collect()
}

fn feed(c: &mut ClientCore, msgs: Vec<Message>, now_ms: u64) -> Vec<Event> {
    msgs.into_iter()
        .flat_map(|m| c.handle(m, now_ms).events)
        .collect()
}

fn send(from: &mut ClientCore, to: &str, text: &str) -> (MessageId, Vec<Message>) {
    from.send_text(&[n(to)], text, false, NOW_MS, Instant::now())
        .unwrap()
}

fn warnings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_is_shown_once_acknowledged_once_and_answered_with_a_receipt() {
    let (mut alice, mut bob) = pair();
    let (id, frames) = send(&mut alice, "bob", "hello bob");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(matches!(
        &events[..],
        [Event::Message { msg_id, from, text, .. }] if *msg_id == id && from.as_str() == "alice" && text == "hello bob"
    ));
    assert_eq!(bob.take_acks(), vec![Message::Ack(vec![(n("alice"), id)])]);
    assert!(bob.take_acks().is_empty());
    // The receipt goes back to alice, who records the delivery.
    let receipt = bob.take_receipts(NOW_MS);
    assert!(receipt.events.is_empty());
    let events = feed(
        &mut alice,
        delivered(&receipt.frames, RoutedFlags::NONE),
        NOW_MS,
    );
    assert_eq!(
        events,
        vec![Event::Delivered {
            msg_ids: vec![id],
            by: n("bob")
        }]
    );
}

#[test]
fn a_replayed_live_copy_is_refused_and_a_stored_copy_is_dropped_quietly() {
    let (mut alice, mut bob) = pair();
    let (id, frames) = send(&mut alice, "bob", "pay 100");
    feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    let again = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert_eq!(
        warnings(&again),
        vec!["rejected a message from alice: replayed message"]
    );
    let quiet = feed(&mut bob, delivered(&frames, RoutedFlags::STORED), NOW_MS);
    assert!(quiet.is_empty(), "{quiet:?}");
    // Every copy is decided, so every copy is acknowledged (once each).
    assert_eq!(bob.take_acks(), vec![Message::Ack(vec![(n("alice"), id)])]);
}

#[test]
fn a_live_copy_too_old_stays_on_the_relay_and_a_stored_one_within_the_ttl_is_shown() {
    let (mut alice, mut bob) = pair();
    let (id, frames) = send(&mut alice, "bob", "late");
    let later = NOW_MS + 61_000;
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), later);
    assert_eq!(
        warnings(&events),
        vec!["rejected a message from alice: too old (61 s)"]
    );
    assert!(bob.take_acks().is_empty(), "left for the store");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::STORED), later);
    assert!(matches!(&events[..], [Event::Message { .. }]), "{events:?}");
    assert_eq!(bob.take_acks(), vec![Message::Ack(vec![(n("alice"), id)])]);
}

#[test]
fn messages_from_strangers_are_refused_and_acknowledged_unread() {
    let mut alice = core("alice", ALICE);
    let mut bob = core("bob", BOB);
    login(&mut alice, &[("bob", BOB.0)]);
    login(&mut bob, &[]);
    let (id, frames) = send(&mut alice, "bob", "who am i");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert_eq!(
        warnings(&events),
        vec!["rejected a message from alice: unknown or unverified sender"]
    );
    assert_eq!(bob.take_acks(), vec![Message::Ack(vec![(n("alice"), id)])]);
}

#[test]
fn a_sender_whose_key_changed_is_held_not_acknowledged_until_accepted() {
    let (mut alice, mut bob) = pair();
    // The relay now offers bob's certificate under alice's name: it fails
    // verification, so alice is no longer trusted at all.
    let events = bob
        .handle(
            Message::Peer {
                event: PeerEvent::Joined,
                name: n("alice"),
                cert_der: der(BOB.0),
            },
            NOW_MS,
        )
        .events;
    assert!(warnings(&events)[0].starts_with("REFUSED the certificate"));
    assert!(bob.online().is_empty());
    let (_, frames) = send(&mut alice, "bob", "hi");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(warnings(&events)[0].contains("unknown or unverified sender"));
    assert!(matches!(
        bob.send_text(&[n("alice")], "x", false, NOW_MS, Instant::now()),
        Err(ClientError::NoKey(_))
    ));
}

#[test]
fn statuses_open_the_window_and_own_receipts_stay_quiet() {
    let (mut alice, mut bob) = pair();
    let (id, frames) = send(&mut alice, "bob", "one");
    let step = alice.handle(
        Message::Statuses(vec![
            (id, StatusKind::Accepted { delivered: 1 }),
            (id, StatusKind::Stored { recipients: 1 }),
        ]),
        NOW_MS,
    );
    assert_eq!(
        step.events,
        vec![
            Event::Sent {
                msg_id: id,
                delivered: 1
            },
            Event::Stored {
                msg_id: id,
                recipients: 1
            }
        ]
    );
    feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    let receipt = bob.take_receipts(NOW_MS);
    let Message::Send(r) = &receipt.frames[0] else {
        panic!("no receipt")
    };
    let quiet = bob.handle(
        Message::Status {
            msg_id: r.header.msg_id,
            kind: StatusKind::Stored { recipients: 1 },
        },
        NOW_MS,
    );
    assert!(quiet.events.is_empty());
}

#[test]
fn the_core_answers_pings_and_reports_goodbyes() {
    let (mut alice, _) = pair();
    assert_eq!(
        alice.handle(Message::Ping(7), NOW_MS).frames,
        vec![Message::Pong(7)]
    );
    let step = alice.handle(
        Message::Goodbye {
            code: GoodbyeCode::Shutdown,
            reason: "bye".into(),
        },
        NOW_MS,
    );
    assert_eq!(
        step.events,
        vec![Event::Closed {
            code: Some(GoodbyeCode::Shutdown),
            reason: "bye".into()
        }]
    );
}

#[test]
fn what_the_relay_did_not_confirm_is_sent_again_after_the_next_login() {
    let (mut alice, _) = pair();
    let (id, _) = send(&mut alice, "bob", "unconfirmed");
    let (stored, _) = send(&mut alice, "bob", "confirmed");
    alice.handle(
        Message::Status {
            msg_id: stored,
            kind: StatusKind::Stored { recipients: 1 },
        },
        NOW_MS,
    );
    login(&mut alice, &[("bob", BOB.0)]);
    assert!(alice.resend_pending());
    let frames = alice
        .next_resend(NOW_MS + 1, Instant::now())
        .unwrap()
        .unwrap();
    assert!(matches!(&frames[..], [Message::Send(r)] if r.header.msg_id == id));
    assert!(alice.next_resend(NOW_MS + 1, Instant::now()).is_none());
}
