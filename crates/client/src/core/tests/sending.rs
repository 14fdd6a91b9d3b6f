//! What the client sent, and what the relay and the recipients say about
//! it: statuses, pings and goodbyes, resends after a reconnect, giving up,
//! and receipts.

use super::*;

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
fn what_the_relay_did_not_confirm_is_sent_again_with_its_original_time_and_id() {
    let (mut alice, _) = pair();
    let (id, first) = send(&mut alice, "bob", "unconfirmed");
    let (stored, _) = send(&mut alice, "bob", "confirmed");
    alice.handle(
        Message::Status {
            msg_id: stored,
            kind: StatusKind::Stored { recipients: 1 },
        },
        NOW_MS,
    );
    login(&mut alice);
    assert!(alice.resend_pending());
    let again = alice.next_resend(Instant::now()).unwrap().unwrap();
    assert!(matches!(&again[..], [Message::Send(r)] if r.header.msg_id == id));
    assert_eq!(signed_time(&again), signed_time(&first));
    assert!(alice.next_resend(Instant::now()).is_none());
}

#[test]
fn an_unconfirmed_message_older_than_the_policy_is_given_up_with_a_warning() {
    let (mut alice, _) = pair();
    let (id, _) = send(&mut alice, "bob", "never confirmed");
    assert!(warnings(&alice.tick(NOW_MS + DAY)).is_empty());
    let events = alice.tick(NOW_MS + 8 * DAY);
    assert_eq!(warnings(&events).len(), 1);
    assert!(warnings(&events)[0].contains(&id.to_hex()));
    login(&mut alice);
    assert!(!alice.resend_pending());
}

#[test]
fn a_receipt_from_someone_who_was_not_a_recipient_confirms_nothing() {
    let (mut alice, mut bob) = pair();
    let mut carol = logged_in("carol", Policy::default());
    let (id, frames) = send(&mut alice, "bob", "for bob");
    // carol claims, in a receipt she signs herself, to have received
    // alice's message to bob.
    carol.receipts.owe(&n("alice"), id);
    let forged = carol.take_receipts(NOW_MS);
    let events = feed(
        &mut alice,
        delivered(&forged.frames, RoutedFlags::NONE),
        NOW_MS,
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Delivered { .. })),
        "{events:?}"
    );
    // bob's receipt confirms it, once.
    feed(&mut bob, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    let receipt = bob.take_receipts(NOW_MS).frames;
    let events = feed(&mut alice, delivered(&receipt, RoutedFlags::NONE), NOW_MS);
    assert_eq!(
        events,
        vec![Event::Delivered {
            msg_ids: vec![id],
            by: n("bob")
        }]
    );
    let again = feed(&mut alice, delivered(&receipt, RoutedFlags::STORED), NOW_MS);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn the_send_window_follows_the_relays_answers_and_outlives_a_restart() {
    // The relay allows 10 per 5 s (login's WELCOME): alice may have 9
    // counted. She sends 9, answered 60 ms later, 10 ms apart.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store = || Box::new(crate::store::sqlite::SqliteStore::open(&db).unwrap());
    let mut alice = core_on("alice", Policy::default(), store());
    login(&mut alice);
    let t0 = Instant::now();
    assert!(alice.can_send(t0));
    let ids: Vec<MessageId> = (0..9)
        .map(|i| send(&mut alice, "bob", &format!("m{i}")).0)
        .collect();
    assert!(!alice.can_send(t0), "nine in flight fill the budget");
    assert_eq!(alice.paced_until(t0), None, "only answers free a slot");
    let answered = |i: u64| t0 + std::time::Duration::from_millis(60 + 10 * i);
    for (i, id) in (0u64..).zip(&ids) {
        let kind = StatusKind::Accepted { delivered: 1 };
        alice.handle_at(
            Message::Status { msg_id: *id, kind },
            NOW_MS + 60 + 10 * i,
            answered(i),
        );
    }
    let later = answered(8);
    assert!(!alice.can_send(later));
    assert_eq!(
        alice.paced_until(later),
        Some(answered(0) + std::time::Duration::from_secs(5)),
        "the first slot frees one window after its answer"
    );
    drop(alice);
    // alice's client is restarted one second later: what the relay counted
    // still counts, from the store.
    let mut again = core_on("alice", Policy::default(), store());
    let t1 = t0 + std::time::Duration::from_secs(1);
    again.handle_at(welcome(&n("alice"), 3600), NOW_MS + 1_000, t1);
    assert!(!again.can_send(t1), "the nine still count after a restart");
    // They leave the window as they were answered (to the millisecond).
    let first_free = t1 + std::time::Duration::from_millis(4_060);
    assert!(!again.can_send(first_free - std::time::Duration::from_millis(5)));
    assert!(again.can_send(first_free + std::time::Duration::from_millis(5)));
}

#[test]
fn past_the_outbox_bound_a_message_is_refused_before_anything_is_kept() {
    let (mut alice, _) = pair();
    let bob = UserName::new("bob").unwrap();
    let bound = usize::try_from(crate::store::MAX_OUTBOX_WAITING).unwrap();
    for i in 0..bound {
        alice
            .queue_text(std::slice::from_ref(&bob), &format!("m{i}"), false, NOW_MS)
            .unwrap();
    }
    assert_eq!(
        alice.outbox_waiting().unwrap(),
        crate::store::MAX_OUTBOX_WAITING
    );
    assert!(matches!(
        alice.queue_text(std::slice::from_ref(&bob), "one too many", false, NOW_MS),
        Err(ClientError::OutboxFull { waiting }) if waiting == crate::store::MAX_OUTBOX_WAITING
    ));
    assert_eq!(
        alice.outbox_waiting().unwrap(),
        crate::store::MAX_OUTBOX_WAITING
    );
}
