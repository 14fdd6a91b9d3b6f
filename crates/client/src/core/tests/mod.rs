//! The core on its own: no relay, no sockets, no disk. Cores (alice, bob,
//! carol, from a throwaway CA valid around a fixed clock) talk by handing
//! each other's SEND frames over as DELIVER frames, as a relay would, or as
//! a malicious one would.

use std::sync::OnceLock;
use std::time::Instant;

use blindrelay_e2e::{Envelope, LocalIdentity, TrustRoot};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_wire::{
    GoodbyeCode, Message, MessageId, PeerEvent, Routed, RoutedFlags, StatusKind, UserName, Welcome,
};

use super::*;
use crate::store::memory::MemoryStore;

const NOW_MS: u64 = 1_800_000_000_000;
const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 3600 * 1000;
const USERS: [&str; 3] = ["alice", "bob", "carol"];

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// The CA and users, created once per test binary.
fn pki() -> &'static (tempfile::TempDir, PkiDir) {
    static PKI: OnceLock<(tempfile::TempDir, PkiDir)> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDir::new(dir.path());
        pki.init("Core Test CA", false).unwrap();
        let at = |s: u64| time::OffsetDateTime::from_unix_timestamp(s as i64).unwrap();
        let opts = UserCertOptions {
            not_before: at(NOW_MS / 1000 - 86_400),
            not_after: at(NOW_MS / 1000 + 86_400 * 365),
            server_auth_only: false,
        };
        for u in USERS {
            pki.issue(&n(u), &opts, false).unwrap();
        }
        (dir, pki)
    })
}

fn root() -> TrustRoot {
    TrustRoot::new(blindrelay_pki::store::read_cert_der(&pki().1.ca_cert_path()).unwrap()).unwrap()
}

fn cert(user: &str) -> Vec<u8> {
    blindrelay_pki::store::read_cert_der(&pki().1.user_cert_path(&n(user))).unwrap()
}

fn core_with(name: &str, policy: Policy) -> ClientCore {
    core_on(name, policy, Box::new(MemoryStore::default()))
}

fn core_on(name: &str, policy: Policy, store: Box<dyn ClientStore>) -> ClientCore {
    let p = &pki().1;
    let me = LocalIdentity::from_pem(
        &n(name),
        &std::fs::read(p.user_cert_path(&n(name))).unwrap(),
        &std::fs::read(p.user_key_path(&n(name))).unwrap(),
        &root(),
        NOW_MS / 1000,
    )
    .unwrap();
    ClientCore::new(me, root(), store, policy)
}

/// The relay's WELCOME for `name`: 10 messages per 5 s.
fn welcome(name: &UserName, store_ttl_s: u32) -> Message {
    Message::Welcome(Welcome {
        identity: name.clone(),
        rate_max: 10,
        rate_window_ms: 5000,
        keepalive_ms: 20_000,
        max_fragments: 64,
        store_ttl_s,
    })
}

/// Logs `c` in with every other user listed online, the relay announcing
/// `store_ttl_s`; returns the events.
fn login_with_ttl(c: &mut ClientCore, store_ttl_s: u32) -> Vec<Event> {
    let mut events = c.handle(welcome(c.name(), store_ttl_s), NOW_MS).events;
    let me = c.name().clone();
    for name in USERS.into_iter().filter(|u| *u != me.as_str()) {
        events.extend(
            c.handle(
                Message::Peer {
                    event: PeerEvent::Listed,
                    name: n(name),
                    cert_der: cert(name),
                },
                NOW_MS,
            )
            .events,
        );
    }
    events.extend(c.handle(Message::DirectoryEnd { count: 2 }, NOW_MS).events);
    events
}

fn login(c: &mut ClientCore) -> Vec<Event> {
    login_with_ttl(c, 3600)
}

fn logged_in(name: &str, policy: Policy) -> ClientCore {
    let mut c = core_with(name, policy);
    login(&mut c);
    c
}

fn pair() -> (ClientCore, ClientCore) {
    (
        logged_in("alice", Policy::default()),
        logged_in("bob", Policy::default()),
    )
}

/// What the relay would deliver for these SEND frames, with `flags` added.
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

/// The same, with the RECEIPT label flipped, as a malicious relay could.
fn relabelled(frames: &[Message]) -> Vec<Message> {
    frames
        .iter()
        .map(|m| match m {
            Message::Send(r) => {
                let mut r: Routed = r.clone();
                let flipped = r.header.flags.bits() ^ RoutedFlags::RECEIPT.bits();
                r.header.flags = RoutedFlags::from_bits(flipped).unwrap();
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

fn send_at(from: &mut ClientCore, to: &str, text: &str, now_ms: u64) -> (MessageId, Vec<Message>) {
    let q = from.send_text(&[n(to)], text, false, now_ms).unwrap();
    (q.msg_id, q.frames)
}

fn send(from: &mut ClientCore, to: &str, text: &str) -> (MessageId, Vec<Message>) {
    send_at(from, to, text, NOW_MS)
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

fn shown(events: &[Event]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { text, late, .. } => Some((text.clone(), *late)),
            _ => None,
        })
        .collect()
}

/// The signed time of a one-fragment message.
fn signed_time(frames: &[Message]) -> u64 {
    let [Message::Send(r)] = frames else {
        panic!("one fragment expected")
    };
    Envelope::try_from(&r.payload[..])
        .unwrap()
        .header()
        .timestamp_ms
}

#[test]
fn a_message_is_shown_once_acknowledged_once_and_answered_with_a_receipt() {
    let (mut alice, mut bob) = pair();
    let (id, frames) = send(&mut alice, "bob", "hello bob");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(matches!(
        &events[..],
        [Event::Message { msg_id, from, text, late: false, .. }] if *msg_id == id && from.as_str() == "alice" && text == "hello bob"
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
fn a_late_message_is_shown_with_its_signed_time_and_one_older_than_the_policy_is_refused() {
    let (mut alice, mut bob) = pair();
    let (_, frames) = send(&mut alice, "bob", "written a day ago");
    // Late, live or stored alike: what counts is the signed time.
    for flags in [RoutedFlags::NONE, RoutedFlags::STORED] {
        let mut bob = logged_in("bob", Policy::default());
        let events = feed(&mut bob, delivered(&frames, flags), NOW_MS + DAY);
        assert!(
            matches!(
                &events[..],
                [Event::Message {
                    timestamp_ms: NOW_MS,
                    late: true,
                    ..
                }]
            ),
            "{events:?}"
        );
    }
    // Older than the client's maximum age (7 days by default): refused for
    // good, whatever flag the relay set.
    let events = feed(
        &mut bob,
        delivered(&frames, RoutedFlags::STORED),
        NOW_MS + 8 * DAY,
    );
    assert_eq!(shown(&events), vec![]);
    assert!(warnings(&events)[0].contains("too old"), "{events:?}");
    assert_eq!(bob.take_acks().len(), 1, "decided: acknowledged");
    // Dated in the future: refused, but left on the relay.
    let (_, ahead) = send_at(&mut alice, "bob", "from the future", NOW_MS + 10 * MINUTE);
    let events = feed(&mut bob, delivered(&ahead, RoutedFlags::NONE), NOW_MS);
    assert!(warnings(&events)[0].contains("in the future"));
    assert!(bob.take_acks().is_empty());
}

#[test]
fn the_relays_ttl_cannot_shorten_what_the_client_remembers() {
    let (mut alice, mut bob) = pair();
    let (_, frames) = send(&mut alice, "bob", "pay 100");
    let (unconfirmed, _) = send(&mut alice, "bob", "still unconfirmed");
    assert_eq!(
        shown(&feed(
            &mut bob,
            delivered(&frames, RoutedFlags::NONE),
            NOW_MS
        ))
        .len(),
        1
    );
    // A relay announces a TTL of 0, the clients tick an hour later, and the
    // next session announces 30 days and replays the stored copy.
    for c in [&mut alice, &mut bob] {
        login_with_ttl(c, 0);
        c.tick(NOW_MS + 60 * MINUTE);
        login_with_ttl(c, 30 * 24 * 3600);
    }
    let replayed = feed(
        &mut bob,
        delivered(&frames, RoutedFlags::STORED),
        NOW_MS + 61 * MINUTE,
    );
    assert_eq!(shown(&replayed), vec![], "{replayed:?}");
    // And the outbox still has both unconfirmed messages to send again.
    let mut resent = Vec::new();
    while let Some(Ok(frames)) = alice.next_resend(Instant::now()) {
        if let [Message::Send(r)] = &frames[..] {
            resent.push(r.header.msg_id);
        }
    }
    assert_eq!(resent.len(), 2);
    assert!(resent.contains(&unconfirmed));
}

#[test]
fn a_flipped_label_is_refused_and_leaves_no_trace_in_the_replay_cache() {
    let (mut alice, mut bob) = pair();
    let (id, frames) = send(&mut alice, "bob", "not a receipt");
    let events = feed(&mut bob, relabelled(&frames), NOW_MS);
    assert_eq!(
        warnings(&events),
        vec!["rejected a message from alice: content does not match its label"]
    );
    // The genuine copy (a resend, or another copy from the store) is shown.
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::STORED), NOW_MS);
    assert_eq!(shown(&events), vec![("not a receipt".to_string(), false)]);
    assert_eq!(bob.take_acks(), vec![Message::Ack(vec![(n("alice"), id)])]);
    // A receipt relabelled as a text is refused the same way.
    let receipt = bob.take_receipts(NOW_MS);
    let events = feed(&mut alice, relabelled(&receipt.frames), NOW_MS);
    assert_eq!(
        warnings(&events),
        vec!["rejected a message from bob: content does not match its label"]
    );
    let events = feed(
        &mut alice,
        delivered(&receipt.frames, RoutedFlags::NONE),
        NOW_MS,
    );
    assert!(
        matches!(&events[..], [Event::Delivered { .. }]),
        "{events:?}"
    );
}

#[test]
fn one_sender_cannot_use_up_another_senders_share_of_the_replay_cache() {
    let policy = Policy {
        max_seen_per_sender: 2,
        ..Policy::default()
    };
    let mut bob = logged_in("bob", policy);
    let mut alice = logged_in("alice", Policy::default());
    let mut carol = logged_in("carol", Policy::default());
    for i in 0..2 {
        let (_, f) = send(&mut alice, "bob", &format!("a{i}"));
        assert_eq!(
            shown(&feed(&mut bob, delivered(&f, RoutedFlags::NONE), NOW_MS)).len(),
            1
        );
    }
    bob.take_acks();
    // alice's share is full: her next message is refused and left on the
    // relay...
    let (_, f) = send(&mut alice, "bob", "a2");
    let events = feed(&mut bob, delivered(&f, RoutedFlags::NONE), NOW_MS);
    assert!(warnings(&events)[0].contains("too many recent messages"));
    assert!(bob.take_acks().is_empty());
    // ...carol is not affected...
    let (_, c) = send(&mut carol, "bob", "c0");
    assert_eq!(
        shown(&feed(&mut bob, delivered(&c, RoutedFlags::NONE), NOW_MS)).len(),
        1
    );
    // ...and once alice's entries age out of the policy's window, her
    // message is accepted (it is still within the maximum age).
    let later = NOW_MS + Policy::default().max_age_ms + Policy::default().max_future_ms + 1;
    bob.tick(later);
    let (_, f) = send_at(&mut alice, "bob", "a3", later);
    assert_eq!(
        shown(&feed(&mut bob, delivered(&f, RoutedFlags::NONE), later)).len(),
        1
    );
}

#[test]
fn messages_from_strangers_are_refused_and_acknowledged_unread() {
    let mut alice = logged_in("alice", Policy::default());
    let mut bob = core_with("bob", Policy::default());
    bob.handle(Message::DirectoryEnd { count: 0 }, NOW_MS);
    let (id, frames) = send(&mut alice, "bob", "who am i");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert_eq!(
        warnings(&events),
        vec!["rejected a message from alice: unknown or unverified sender"]
    );
    assert_eq!(bob.take_acks(), vec![Message::Ack(vec![(n("alice"), id)])]);
}

#[test]
fn a_certificate_offered_under_another_name_removes_trust() {
    let (mut alice, mut bob) = pair();
    // The relay now offers bob's certificate under alice's name: it fails
    // verification, so alice is no longer trusted at all.
    let events = bob
        .handle(
            Message::Peer {
                event: PeerEvent::Joined,
                name: n("alice"),
                cert_der: cert("bob"),
            },
            NOW_MS,
        )
        .events;
    assert!(warnings(&events)[0].starts_with("REFUSED the certificate"));
    assert!(!bob.online().contains(&n("alice")));
    let (_, frames) = send(&mut alice, "bob", "hi");
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(warnings(&events)[0].contains("unknown or unverified sender"));
    assert!(matches!(
        bob.send_text(&[n("alice")], "x", false, NOW_MS),
        Err(ClientError::NoKey(_))
    ));
}

#[test]
fn the_replay_cache_forgets_a_message_only_once_a_copy_would_be_too_old_anyway() {
    let (mut alice, mut bob) = pair();
    let (_, frames) = send(&mut alice, "bob", "once");
    assert_eq!(
        shown(&feed(
            &mut bob,
            delivered(&frames, RoutedFlags::NONE),
            NOW_MS
        ))
        .len(),
        1
    );
    let p = Policy::default();
    // Just inside the horizon the entry is kept: a copy is a replay.
    let inside = NOW_MS + p.max_age_ms + p.max_future_ms;
    bob.tick(inside);
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), inside);
    assert_eq!(
        warnings(&events),
        vec!["rejected a message from alice: replayed message"]
    );
    // Past it the entry goes, and a copy is refused for its age instead.
    let past = inside + 1;
    bob.tick(past);
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), past);
    assert_eq!(warnings(&events).len(), 1);
    assert!(warnings(&events)[0].contains("too old"), "{events:?}");
}

mod boundaries;
mod crl;
mod sending;
mod waiting;
