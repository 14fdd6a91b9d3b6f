//! What the relay announces and what times out, at their edges: a welcome
//! for another name is said, an offline listing is not online, an
//! incomplete message is dropped with a warning, the longest text passes.

use super::*;

#[test]
fn a_welcome_for_another_name_is_said() {
    let mut alice = core_with("alice", Policy::default());
    let welcome = |identity: &str| {
        Message::Welcome(Welcome {
            identity: n(identity),
            rate_max: 10,
            rate_window_ms: 5000,
            keepalive_ms: 20_000,
            max_fragments: 64,
            store_ttl_s: 3600,
        })
    };
    assert!(warnings(&alice.handle(welcome("alice"), NOW_MS).events).is_empty());
    let w = warnings(&alice.handle(welcome("bob"), NOW_MS).events);
    assert!(w[0].contains("bound this connection to bob"), "{w:?}");
}

#[test]
fn a_user_listed_offline_is_trusted_but_not_online() {
    let mut alice = core_with("alice", Policy::default());
    for (name, event) in [("bob", PeerEvent::Offline), ("carol", PeerEvent::Listed)] {
        alice.handle(
            Message::Peer {
                event,
                name: n(name),
                cert_der: cert(name),
            },
            NOW_MS,
        );
    }
    assert_eq!(alice.online(), vec![n("carol")]);
    // Offline is no reason not to write: the relay stores it.
    assert!(alice.send_text(&[n("bob")], "later", false, NOW_MS).is_ok());
}

#[test]
fn an_incomplete_message_is_dropped_with_a_warning_once_its_time_is_up() {
    let (mut alice, mut bob) = pair();
    let long = "x".repeat(6000);
    let (_, frames) = send(&mut alice, "bob", &long);
    assert_eq!(frames.len(), 2);
    let first = delivered(&frames[..1], RoutedFlags::NONE);
    assert!(shown(&feed(&mut bob, first, NOW_MS)).is_empty());
    assert!(warnings(&bob.tick(NOW_MS + 30_000)).is_empty());
    let w = warnings(&bob.tick(NOW_MS + 30_001));
    assert!(
        w.iter()
            .any(|w| w == "dropped an incomplete message from alice (fragments missing)"),
        "{w:?}"
    );
}

#[test]
fn the_longest_text_is_queued_and_one_byte_more_is_refused() {
    let mut alice = logged_in("alice", Policy::default());
    let max = blindrelay_e2e::content::MAX_TEXT_LEN;
    assert!(
        alice
            .queue_text(&[n("bob")], &"x".repeat(max), false, NOW_MS)
            .is_ok()
    );
    assert!(matches!(
        alice.queue_text(&[n("bob")], &"x".repeat(max + 1), false, NOW_MS),
        Err(ClientError::TooLong { .. })
    ));
}
