//! What waits and what is held: a message to someone who has never logged
//! in waits for their first certificate; a message from someone whose key
//! changed is held until the user accepts the new key, then read at once.

use super::*;

/// `name` with a new key, from the same CA (a lost laptop).
fn with_new_key(name: &str) -> (ClientCore, Vec<u8>) {
    let p = &pki().1;
    let at = |s: u64| time::OffsetDateTime::from_unix_timestamp(s as i64).unwrap();
    let issued = p
        .load_ca()
        .unwrap()
        .issue_user(
            &n(name),
            &UserCertOptions {
                not_before: at(NOW_MS / 1000 - 86_400),
                not_after: at(NOW_MS / 1000 + 86_400 * 365),
                server_auth_only: false,
            },
        )
        .unwrap();
    let me = LocalIdentity::from_pem(
        &n(name),
        issued.cert_pem.as_bytes(),
        issued.key.expose_pem().as_bytes(),
        &root(),
        NOW_MS / 1000,
    )
    .unwrap();
    let mut c = ClientCore::new(
        me,
        root(),
        Box::new(MemoryStore::default()),
        Policy::default(),
    );
    login(&mut c);
    (c, issued.cert_der)
}

/// `name` with a new key, from the same CA, announced by the relay to `c`.
fn announce_new_key(c: &mut ClientCore, name: &str) -> ClientCore {
    let (new, cert_der) = with_new_key(name);
    c.handle(
        Message::Peer {
            event: PeerEvent::Joined,
            name: n(name),
            cert_der,
        },
        NOW_MS,
    );
    new
}

#[test]
fn a_message_to_someone_who_never_logged_in_waits_then_leaves_sealed_for_their_verified_key() {
    let mut alice = core_with("alice", Policy::default());
    // The relay lists nobody: bob has never logged in.
    alice.handle(welcome(&n("alice"), 3600), NOW_MS);
    alice.handle(Message::DirectoryEnd { count: 0 }, NOW_MS);
    let q = alice
        .send_text(&[n("bob")], "hello bob", false, NOW_MS)
        .unwrap();
    assert!(q.frames.is_empty(), "nothing can be sealed without a key");
    assert_eq!(q.waiting, vec![n("bob")]);
    assert!(alice.next_resend(Instant::now()).is_none());
    // A typo'd or unknown name is not an error either, but a refused
    // certificate is: see crl.rs.
    // bob logs in: the relay announces him with his certificate.
    alice.handle(
        Message::Peer {
            event: PeerEvent::Joined,
            name: n("bob"),
            cert_der: cert("bob"),
        },
        NOW_MS,
    );
    let frames = match alice.next_resend(Instant::now()) {
        Some(Ok(f)) => f,
        _ => panic!("the waiting message must leave once bob's key is known"),
    };
    let mut bob = logged_in("bob", Policy::default());
    let events = feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Message { msg_id, text, .. }
            if *msg_id == q.msg_id && text == "hello bob")),
        "{events:?}"
    );
}

#[test]
fn a_waiting_message_is_never_sealed_for_a_certificate_that_is_refused_when_it_comes() {
    let mut alice = core_with("alice", Policy::default());
    alice.handle(welcome(&n("alice"), 3600), NOW_MS);
    alice.handle(Message::DirectoryEnd { count: 0 }, NOW_MS);
    let q = alice
        .send_text(&[n("bob")], "for bob only", false, NOW_MS)
        .unwrap();
    assert_eq!(q.waiting, vec![n("bob")]);
    // The relay offers carol's certificate as bob's: refused, and the
    // message is not sealed for it (it stays in the outbox).
    let events = alice
        .handle(
            Message::Peer {
                event: PeerEvent::Joined,
                name: n("bob"),
                cert_der: cert("carol"),
            },
            NOW_MS,
        )
        .events;
    assert!(warnings(&events).iter().any(|w| w.contains("REFUSED")));
    match alice.next_resend(Instant::now()) {
        None | Some(Err((_, ClientError::NoKey(_)))) => {}
        Some(Ok(_)) => panic!("sealed for a refused certificate"),
        Some(Err((_, e))) => panic!("unexpected {e}"),
    }
}

#[test]
fn a_message_held_by_a_key_change_is_read_as_soon_as_the_new_key_is_accepted() {
    let mut alice = logged_in("alice", Policy::default());
    let (mut new_bob, new_cert) = with_new_key("bob");
    let changed = alice.handle(
        Message::Peer {
            event: PeerEvent::Joined,
            name: n("bob"),
            cert_der: new_cert,
        },
        NOW_MS,
    );
    assert!(
        changed
            .events
            .iter()
            .any(|e| matches!(e, Event::KeyChanged { .. }))
    );
    let (id, frames) = send(&mut new_bob, "alice", "it is me, new laptop");
    let held = feed(&mut alice, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(!held.iter().any(|e| matches!(e, Event::Message { .. })));
    assert!(alice.take_acks().is_empty(), "held, not acknowledged");
    // Accepting requires the safety number first; then the message shows
    // at once, without waiting for a reconnect, and is acknowledged.
    alice.safety_number(&n("bob")).unwrap();
    let (_, step) = alice.accept_key(&n("bob"), NOW_MS).unwrap();
    assert!(
        step.events
            .iter()
            .any(|e| matches!(e, Event::Message { msg_id, text, .. }
            if *msg_id == id && text == "it is me, new laptop")),
        "{:?}",
        step.events
    );
    assert!(!alice.take_acks().is_empty());
}

#[test]
fn an_empty_message_is_refused_before_the_outbox() {
    let (mut alice, _) = pair();
    assert!(matches!(
        alice.send_text(&[n("bob")], "", false, NOW_MS),
        Err(ClientError::Empty)
    ));
}

#[test]
fn what_is_held_for_an_unaccepted_key_is_bounded_and_keeps_the_newest() {
    let mut alice = logged_in("alice", Policy::default());
    let mut new_bob = announce_new_key(&mut alice, "bob");
    let mut last = None;
    for i in 0..MAX_HELD_FRAGMENTS + 10 {
        let (id, frames) = send(&mut new_bob, "alice", &format!("held {i}"));
        feed(&mut alice, delivered(&frames, RoutedFlags::NONE), NOW_MS);
        last = Some(id);
    }
    assert_eq!(alice.held.len(), MAX_HELD_FRAGMENTS);
    assert_eq!(
        alice.held.back().map(|r| r.header.msg_id),
        last,
        "the newest is kept, the oldest dropped (the relay still has it)"
    );
}

#[test]
fn the_peer_list_says_who_is_online_verified_or_changed() {
    let mut alice = logged_in("alice", Policy::default());
    let list = alice.peers();
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bob", "carol"]);
    assert!(
        list.iter()
            .all(|p| p.online && p.verified && !p.key_changed)
    );
    announce_new_key(&mut alice, "bob");
    alice.handle(Message::PeerLeft { name: n("carol") }, NOW_MS);
    let list = alice.peers();
    let bob = list.iter().find(|p| p.name.as_str() == "bob").unwrap();
    assert!(bob.key_changed);
    let carol = list.iter().find(|p| p.name.as_str() == "carol").unwrap();
    assert!(!carol.online && carol.verified);
}
