//! Protocol v2's outbox and history through a real relay (and, for a lost
//! answer, the malicious Delivery Service): a message handed to a device
//! is kept on disk until the relay has it, sent again after a lost answer
//! or a restart with its id, read once, and kept in both devices'
//! histories.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::time::Duration;

use blindrelay_adversary::evil_ds::EvilDs;
use blindrelay_client::v2::{Member, V2Event};
use blindrelay_testkit::TestPki;
use blindrelay_wire::MessageId;
use common::*;

/// The messages among `events`, as (id, text).
fn messages(events: &[V2Event]) -> Vec<(MessageId, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            V2Event::Message { id, text, .. } => Some((*id, text.clone())),
            _ => None,
        })
        .collect()
}

fn sent(events: &[V2Event]) -> Vec<MessageId> {
    events
        .iter()
        .filter_map(|e| match e {
            V2Event::Sent { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_answer_was_lost_is_sent_again_and_read_once() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = in_one_group(&pki, root.path(), &ds.address(), "alice", &["bob"]).await;
    // The relay orders alice's message for bob, then drops her connection
    // before its answer.
    ds.cut_at_submit(&id("alice", "laptop"), true);
    assert!(m[0].send(&g, "pay 100").await.is_err());
    let waiting = m[0].outbox().unwrap();
    assert_eq!(waiting.len(), 1, "the message waits in the outbox");
    let msg = waiting[0].msg_id;
    let cfg = cfg_for(&pki, root.path(), "alice", "laptop", &ds.address());
    m[0].reconnect(&cfg).await.unwrap();
    let ev = m[0].flush().await.unwrap();
    assert_eq!(sent(&ev), [msg], "sent again with the same id: {ev:?}");
    assert!(m[0].outbox().unwrap().is_empty());
    // bob's mailbox holds two ciphertexts of one message: shown once.
    let ev = events_for(&mut m[1], Duration::from_millis(600)).await;
    assert_eq!(messages(&ev), [(msg, "pay 100".to_string())], "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_written_before_a_restart_is_sent_at_the_next_start_and_both_histories_keep_it() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    // alice writes, and her client stops before it sends.
    let before = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let msg = m[0].queue(&g, "written, then the client stopped").unwrap();
    let alice = m.remove(0);
    alice.close().await;
    let ev = events_for(&mut m[0], Duration::from_millis(300)).await;
    assert!(messages(&ev).is_empty(), "nothing went out: {ev:?}");
    // Her next start sends it, with its id and the time it was written.
    let cfg = cfg_for(&pki, root.path(), "alice", "laptop", &addr);
    let mut alice = Member::connect(&cfg, &root.path().join("alice-laptop/mls.db"))
        .await
        .unwrap();
    assert_eq!(alice.outbox().unwrap().len(), 1);
    let ev = alice.flush().await.unwrap();
    assert_eq!(sent(&ev), [msg], "{ev:?}");
    let ev = events_for(&mut m[0], Duration::from_millis(500)).await;
    let got: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            V2Event::Message {
                id,
                from,
                written_ms,
                group,
                ..
            } => Some((*id, from.clone(), *written_ms, group.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1, "{ev:?}");
    let (id, from, written_ms, group) = got[0].clone();
    assert_eq!((id, group), (msg, g.clone()));
    assert_eq!(from, ("alice".to_string(), "laptop".to_string()));
    assert!(written_ms >= before && written_ms <= before + 5_000);
    // Both devices keep it in their history, in its group.
    let mine = alice.history(10).unwrap();
    assert!(
        mine.iter()
            .any(|h| h.msg_id == msg && h.outgoing && h.group.as_deref() == Some(&g[..])),
        "{mine:?}"
    );
    let bobs = m[0].history(10).unwrap();
    assert!(
        bobs.iter().any(|h| h.msg_id == msg
            && !h.outgoing
            && h.peer == "alice@laptop"
            && h.text == "written, then the client stopped"),
        "{bobs:?}"
    );
    // And after bob's restart too.
    let bob = m.remove(0);
    bob.close().await;
    let cfg = cfg_for(&pki, root.path(), "bob", "laptop", &addr);
    let bob = Member::connect(&cfg, &root.path().join("bob-laptop/mls.db"))
        .await
        .unwrap();
    assert!(bob.history(10).unwrap().iter().any(|h| h.msg_id == msg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cancelled_from_the_outbox_is_not_sent_and_later_ones_keep_their_order() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    let ids: Vec<MessageId> = ["one", "two", "three", "four"]
        .iter()
        .map(|t| m[0].queue(&g, t).unwrap())
        .collect();
    assert!(m[0].cancel(&ids[1]).unwrap());
    assert!(!m[0].cancel(&ids[1]).unwrap(), "cancelled once");
    let ev = m[0].flush().await.unwrap();
    assert_eq!(sent(&ev), [ids[0], ids[2], ids[3]]);
    assert!(
        !m[0].cancel(&ids[0]).unwrap(),
        "a sent message is not cancelled"
    );
    let ev = events_for(&mut m[1], Duration::from_millis(500)).await;
    let texts: Vec<String> = messages(&ev).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["one", "three", "four"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_group_the_device_left_is_reported_undelivered_by_its_id() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    let msg = m[1].queue(&g, "too late").unwrap();
    // alice removes bob before his message goes.
    m[0].remove(&g, &n("bob")).await.unwrap();
    let ev = events_for(&mut m[1], Duration::from_millis(300)).await;
    assert!(
        ev.iter().any(|e| matches!(e, V2Event::RemovedMe { .. })),
        "{ev:?}"
    );
    let ev = m[1].flush().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::Undelivered { id, .. } if *id == msg)),
        "{ev:?}"
    );
    assert!(m[1].outbox().unwrap().is_empty(), "it left the outbox");
}

/// alice hands `count` messages to her device at once, through a relay
/// allowing `limit` requests per `window_ms`: every one is sent (paced,
/// never cut off: no flush fails) and bob reads each once, in order.
async fn burst(limit: u16, window_ms: u64, count: usize) {
    let pki = TestPki::new(&[]).unwrap();
    let cfg = blindrelay_server::Config {
        v2_rate_max_requests: limit,
        v2_person_rate_max_requests: limit.saturating_mul(4),
        rate_window_ms: window_ms,
        ..blindrelay_testkit::relay::config()
    };
    let relay = blindrelay_testkit::TestRelay::with_config(&pki, cfg)
        .await
        .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = alice.create_group(None, &[n("bob")]).await.unwrap();
    // Handed over as fast as the outbox takes them (past its bound, after
    // what it holds is sent).
    let mut ids: Vec<MessageId> = Vec::new();
    let mut sent_ids = Vec::new();
    for i in 0..count {
        let id = match alice.queue(&g, &format!("m{i}")) {
            Ok(id) => id,
            Err(blindrelay_client::ClientError::OutboxFull { .. }) => {
                let ev = alice
                    .flush()
                    .await
                    .expect("a pacing device is never cut off");
                sent_ids.extend(sent(&ev));
                alice.queue(&g, &format!("m{i}")).unwrap()
            }
            Err(e) => panic!("{e}"),
        };
        ids.push(id);
    }
    let ev = alice
        .flush()
        .await
        .expect("a pacing device is never cut off");
    sent_ids.extend(sent(&ev));
    assert_eq!(sent_ids, ids);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while got.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count}",
            got.len()
        );
        got.extend(messages(
            &bob.sync(Duration::from_millis(200)).await.unwrap(),
        ));
    }
    got.extend(messages(
        &events_for(&mut bob, Duration::from_millis(300)).await,
    ));
    let got_ids: Vec<MessageId> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(got_ids, ids, "each once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_burst_of_four_times_the_limit_is_paced_and_never_cut_off() {
    burst(10, 100, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_burst_of_four_times_a_limit_of_100_is_paced_and_never_cut_off() {
    burst(100, 300, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_burst_of_four_times_a_limit_of_500_is_paced_and_never_cut_off() {
    burst(500, 300, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_burst_of_thirty_times_the_limit_is_paced_and_never_cut_off() {
    burst(10, 100, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_burst_of_a_hundred_times_the_limit_is_paced_and_never_cut_off() {
    burst(10, 100, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_outbox_bound_a_v2_message_is_refused_and_nothing_is_kept() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    let bound = blindrelay_client::store::MAX_OUTBOX_WAITING;
    for i in 0..bound {
        m[0].queue(&g, &format!("m{i}")).unwrap();
    }
    assert!(matches!(
        m[0].queue(&g, "one too many"),
        Err(blindrelay_client::ClientError::OutboxFull { waiting }) if waiting == bound
    ));
    assert_eq!(m[0].outbox_waiting().unwrap(), bound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_sent_within_the_maximum_age_is_given_up_by_its_id_and_a_late_one_is_marked()
{
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    // alice writes twice and stops before sending; she comes back after
    // 1.5 s with a maximum age of 1 s for the first test, then with the
    // default policy and a live window of 1 s for the second.
    let old = m[0].queue(&g, "too old").unwrap();
    let alice = m.remove(0);
    alice.close().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut cfg = cfg_for(&pki, root.path(), "alice", "laptop", &addr);
    cfg.policy.live_window_ms = 1_000;
    cfg.policy.max_age_ms = 1_000;
    let state = root.path().join("alice-laptop/mls.db");
    let mut alice = Member::connect(&cfg, &state).await.unwrap();
    let ev = alice.flush().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, V2Event::Undelivered {
            id,
            why: blindrelay_client::v2::Undelivered::TooOld,
            ..
        } if *id == old)),
        "{ev:?}"
    );
    assert!(sent(&ev).is_empty(), "{ev:?}");
    let late = alice.queue(&g, "late").unwrap();
    alice.close().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut cfg = cfg_for(&pki, root.path(), "alice", "laptop", &addr);
    cfg.policy.live_window_ms = 1_000;
    let mut alice = Member::connect(&cfg, &state).await.unwrap();
    assert_eq!(sent(&alice.flush().await.unwrap()), [late]);
    let mut bob_cfg = cfg_for(&pki, root.path(), "bob", "laptop", &addr);
    bob_cfg.policy.live_window_ms = 1_000;
    let bob = m.remove(0);
    bob.close().await;
    let mut bob = Member::connect(&bob_cfg, &root.path().join("bob-laptop/mls.db"))
        .await
        .unwrap();
    let ev = events_for(&mut bob, Duration::from_millis(500)).await;
    let got: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            V2Event::Message { id, late, text, .. } => Some((*id, *late, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(got, [(late, true, "late".to_string())], "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_confirms_end_to_end_and_a_receipt_for_someone_elses_message_reports_nothing() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob", "carol"]).await;
    let id = m[0].send(&g, "did you get this?").await.unwrap();
    // bob reads it (and his receipt goes out within a second).
    let ev = events_for(&mut m[1], Duration::from_millis(1_300)).await;
    assert_eq!(messages(&ev), [(id, "did you get this?".to_string())]);
    let delivered = |ev: &[V2Event]| -> Vec<(Vec<MessageId>, (String, String))> {
        ev.iter()
            .filter_map(|e| match e {
                V2Event::Delivered { ids, by, .. } => Some((ids.clone(), by.clone())),
                _ => None,
            })
            .collect()
    };
    // alice is told bob's laptop has it (and, once carol reads, hers).
    let ev = events_for(&mut m[2], Duration::from_millis(1_300)).await;
    // carol got bob's receipt too: alice's message is not hers to report.
    assert!(delivered(&ev).is_empty(), "{ev:?}");
    let ev = events_for(&mut m[0], Duration::from_millis(800)).await;
    let got = delivered(&ev);
    assert!(
        got.contains(&(vec![id], ("bob".to_string(), "laptop".to_string()))),
        "{ev:?}"
    );
    assert!(
        got.contains(&(vec![id], ("carol".to_string(), "laptop".to_string()))),
        "{ev:?}"
    );
    // No receipt answers a receipt: bob's and carol's devices show nothing
    // more, and alice's receipts are for nothing (she read no message).
    let ev = events_for(&mut m[1], Duration::from_millis(1_300)).await;
    assert!(
        messages(&ev).is_empty() && delivered(&ev).is_empty(),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_as_long_as_v1_allows_is_taken_and_one_byte_more_is_refused() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    let max = blindrelay_e2e::content::MAX_TEXT_LEN;
    assert!(m[0].queue(&g, &"x".repeat(max)).is_ok());
    assert!(matches!(
        m[0].queue(&g, &"x".repeat(max + 1)),
        Err(blindrelay_client::ClientError::TooLong { .. })
    ));
    assert_eq!(m[0].outbox_waiting().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_answers_for_its_own_message_not_for_an_earlier_one_the_flush_ended() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    let mut carol = device(&pki, root.path(), "carol", "laptop", &addr).await;
    let (g2, _) = carol.create_group(None, &[n("bob")]).await.unwrap();
    events_for(&mut m[1], Duration::from_millis(300)).await;
    // bob writes in g, and is removed from it before it goes.
    let gone = m[1].queue(&g, "too late").unwrap();
    m[0].remove(&g, &n("bob")).await.unwrap();
    events_for(&mut m[1], Duration::from_millis(300)).await;
    // His next send, in g2, flushes both: its answer is its own.
    let id = m[1].send(&g2, "to carol").await.unwrap();
    assert_ne!(id, gone);
    let ev = events_for(&mut carol, Duration::from_millis(500)).await;
    assert_eq!(messages(&ev), [(id, "to carol".to_string())]);
    // The earlier one's end comes with the next sync.
    let ev = events_for(&mut m[1], Duration::from_millis(200)).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::Undelivered { id, .. } if *id == gone)),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_ends_flush_sends_at_most_what_it_asks_and_says_when_the_next_may_go() {
    // 2 requests a second: the device paces to 1 a second.
    let pki = TestPki::new(&[]).unwrap();
    let cfg = blindrelay_server::Config {
        v2_rate_max_requests: 2,
        v2_person_rate_max_requests: 2,
        rate_window_ms: 1_000,
        ..blindrelay_testkit::relay::config()
    };
    let relay = blindrelay_testkit::TestRelay::with_config(&pki, cfg)
        .await
        .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let ids: Vec<MessageId> = (0..3)
        .map(|i| m[0].queue(&g, &format!("m{i}")).unwrap())
        .collect();
    assert_eq!(m[0].outbox_due(), None, "nothing flushed yet");
    // One at a time: the first goes; the next may go only once the
    // relay's window frees a slot, and the flush does not wait for it.
    let ev = m[0].flush_some(1).await.unwrap();
    assert_eq!(sent(&ev), [ids[0]]);
    let started = std::time::Instant::now();
    let ev = m[0].flush_some(5).await.unwrap();
    assert!(sent(&ev).is_empty(), "{ev:?}");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "it did not wait"
    );
    let due = m[0].outbox_due().expect("more to send");
    assert!(due > Duration::from_millis(300), "{due:?}");
    tokio::time::sleep(due).await;
    let ev = m[0].flush_some(1).await.unwrap();
    assert_eq!(sent(&ev), [ids[1]]);
    // flush (a script's end, a one-shot send) waits for the budget.
    let ev = m[0].flush().await.unwrap();
    assert_eq!(sent(&ev), [ids[2]]);
    assert_eq!(m[0].outbox_due(), None, "the outbox is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_says_its_own_message_waits_even_when_the_flush_sent_an_earlier_one() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) =
        in_one_group(&pki, root.path(), &ds.address(), "alice", &["bob", "carol"]).await;
    let (g2, _) = m[2].create_group(None, &[n("bob")]).await.unwrap();
    events_for(&mut m[1], Duration::from_millis(300)).await;
    // The relay keeps alice's next commit from bob and hands him her
    // message after it: bob is behind in g.
    let bob = id("bob", "laptop");
    ds.hold(&bob);
    m[0].update(&g).await.unwrap();
    m[0].send(&g, "after the update").await.unwrap();
    assert_eq!(ds.held(&bob), 2);
    ds.release(&bob, &[1]);
    let ev = events_for(&mut m[1], Duration::from_millis(500)).await;
    assert!(
        ev.iter().any(|e| matches!(e, V2Event::Behind { .. })),
        "{ev:?}"
    );
    // A message to carol waits in bob's outbox; his send in g flushes it,
    // and answers for its own message, which waits.
    let earlier = m[1].queue(&g2, "to carol").unwrap();
    let r = m[1].send(&g, "while behind").await;
    assert!(
        matches!(r, Err(blindrelay_client::ClientError::Kept { .. })),
        "{r:?}"
    );
    let ev = events_for(&mut m[2], Duration::from_millis(500)).await;
    assert!(
        messages(&ev).contains(&(earlier, "to carol".to_string())),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_relay_refuses_for_good_says_why_and_leaves_the_outbox() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob", "carol"]).await;
    // alice removes bob; before bob has read it, he writes in the group.
    m[0].remove(&g, &n("bob")).await.unwrap();
    let r = m[1].send(&g, "am I still here?").await;
    assert!(
        matches!(
            r,
            Err(blindrelay_client::ClientError::RequestRefused(
                blindrelay_ds::Refusal::Rules(blindrelay_ds::RefusalCode::NotAMember)
            ))
        ),
        "{r:?}"
    );
    assert!(m[1].outbox().unwrap().is_empty(), "not sent again");
    let ev = events_for(&mut m[2], Duration::from_millis(300)).await;
    assert!(messages(&ev).is_empty(), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_some_sends_no_more_than_it_is_asked_and_says_the_rest_may_go_now() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    let ids: Vec<MessageId> = (0..3)
        .map(|i| m[0].queue(&g, &format!("m{i}")).unwrap())
        .collect();
    assert_eq!(sent(&m[0].flush_some(1).await.unwrap()), [ids[0]]);
    let due = m[0].outbox_due().expect("more to send");
    assert!(due < Duration::from_millis(50), "{due:?}");
    assert_eq!(sent(&m[0].flush_some(2).await.unwrap()), [ids[1], ids[2]]);
    assert_eq!(m[0].outbox_due(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_past_the_ids_a_reader_keeps_per_sender_is_refused_not_remembered_without_end() {
    let (pki, _relay, addr, root) = world().await;
    let (mut m, g) = in_one_group(&pki, root.path(), &addr, "alice", &["bob"]).await;
    // bob keeps at most two ids per sender.
    let bob = m.remove(1);
    bob.close().await;
    let mut cfg = cfg_for(&pki, root.path(), "bob", "laptop", &addr);
    cfg.policy.max_seen_per_sender = 2;
    let mut bob = Member::connect(&cfg, &root.path().join("bob-laptop/mls.db"))
        .await
        .unwrap();
    for t in ["one", "two", "three"] {
        m[0].send(&g, t).await.unwrap();
    }
    let ev = events_for(&mut bob, Duration::from_millis(500)).await;
    let texts: Vec<String> = messages(&ev).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["one", "two"], "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, V2Event::Refused { .. })),
        "{ev:?}"
    );
}
