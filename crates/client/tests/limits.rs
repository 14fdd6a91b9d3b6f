//! The relay's limits, met by a client as a script would meet them
//! (issue 29): bursts far past the message limit are paced by the
//! relay's answers and never cut off, and a cool-down ends when the relay
//! said it would. Protocol v2's bursts are in `v2_outbox.rs`.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::collections::HashSet;
use std::time::{Duration, Instant};

use blindrelay_client::Event;
use blindrelay_server::Config;
use blindrelay_testkit::raw::RawClient;
use blindrelay_testkit::user::User;
use blindrelay_testkit::{TestPki, TestRelay};

fn n(s: &str) -> blindrelay_wire::UserName {
    blindrelay_wire::UserName::new(s).unwrap()
}

/// Sends `count` messages from alice to bob at once through a relay
/// allowing `limit` per `window_ms`; every one must arrive once, and
/// alice must never be disconnected.
async fn burst(limit: u16, window_ms: u64, count: usize) {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::builder(&s)
        .config(Config {
            rate_max_messages: limit,
            rate_window_ms: window_ms,
            ..Config::default()
        })
        .start()
        .await
        .unwrap();
    let mut bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    let mut alice = User::connect(&s, "alice", &relay.address()).await.unwrap();
    alice.wait_online("bob").await.unwrap();
    // alice's interface reads her events all along, as a real one does (a
    // full event queue holds her connection back), and keeps every
    // disconnection.
    let (_, dummy) = tokio::sync::mpsc::channel(1);
    let mut events = std::mem::replace(&mut alice.events, dummy);
    let watcher = tokio::spawn(async move {
        let mut cut = Vec::new();
        while let Some(e) = events.recv().await {
            if matches!(
                e,
                Event::Reconnecting { .. } | Event::Closed { code: Some(_), .. }
            ) {
                cut.push(format!("{e:?}"));
            }
        }
        cut
    });
    for i in 0..count {
        // Past the outbox's bound the client takes no more: wait, as a
        // script's chat --json does.
        loop {
            match alice
                .handle
                .send(vec![n("bob")], format!("m{i}"), false)
                .await
            {
                Ok(_) => break,
                Err(blindrelay_client::ClientError::OutboxFull { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    let mut got = Vec::new();
    while got.len() < count {
        match bob.message().await {
            Ok(m) => got.push(m.text),
            Err(e) => panic!("{e} after {} of {count}", got.len()),
        }
    }
    assert_eq!(
        got.iter().collect::<HashSet<_>>().len(),
        count,
        "no duplicate"
    );
    let (_, more) = bob.quiet(Duration::from_millis(300)).await;
    assert!(more.is_empty(), "nothing shown twice: {more:?}");
    alice.handle.quit().await;
    drop(alice);
    let cut = watcher.await.unwrap();
    assert!(cut.is_empty(), "a pacing client is never cut off: {cut:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_four_times_a_limit_of_10_is_paced_and_never_cut_off() {
    burst(10, 300, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_four_times_a_limit_of_100_is_paced_and_never_cut_off() {
    burst(100, 300, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_four_times_a_limit_of_500_is_paced_and_never_cut_off() {
    burst(500, 300, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_thirty_times_the_limit_is_paced_and_never_cut_off() {
    burst(10, 100, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_hundred_times_the_limit_is_paced_and_never_cut_off() {
    burst(10, 100, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_during_a_cool_down_comes_back_when_it_ends() {
    // mallory floods and is cooled down for 3 s; her client, started at
    // once, is refused, waits the time the relay names, and is in soon
    // after the cool-down ends (before, every attempt restarted it).
    let s = TestPki::named("Client Test CA", &["mallory", "bob"]).unwrap();
    let cooldown = Duration::from_millis(3_000);
    let relay = TestRelay::builder(&s)
        .config(Config {
            cooldown_ms: 3_000,
            ..Config::default()
        })
        .start()
        .await
        .unwrap();
    let _bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    let addr = relay.address().parse().unwrap();
    let mut raw = RawClient::connect(addr, &s, "mallory").await.unwrap();
    for i in 0..11u8 {
        raw.send_to(&["bob"], &[i]).await.unwrap();
    }
    raw.expect_closed().await.unwrap();
    let flooded = Instant::now();
    let mallory = User::connect_with(&s, "mallory", &relay.address(), |c| {
        c.retry_at_start = true;
    })
    .await
    .unwrap();
    let back = flooded.elapsed();
    assert!(back >= cooldown, "not before the cool-down ends: {back:?}");
    assert!(
        back < cooldown + Duration::from_millis(2_500),
        "soon after it: {back:?}"
    );
    drop(mallory);
}
