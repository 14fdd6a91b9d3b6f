//! Protocol v2 against a colleague's floods (issue 28.2 and 28.3): budgets
//! that belong to the person as well as the device, and an honest pair
//! that keeps talking, within a second, while an enrolled device floods
//! the honest relay through raw DS_UP.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::time::Duration;

use blindrelay_adversary::forge;
use blindrelay_ds::{Down, Request, Submission};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_devices_share_one_budget_and_more_devices_do_not_multiply_it() {
    // Issue 28.2: budgets belong to the person too. Each device may make
    // 5 requests a minute, mallory's devices 8 together: her phone is
    // cut off after 3, while bob is not touched.
    let pki = blindrelay_testkit::TestPki::new(&[]).unwrap();
    let cfg = blindrelay_server::Config {
        v2_rate_max_requests: 5,
        v2_person_rate_max_requests: 8,
        rate_window_ms: 60_000,
        ..blindrelay_testkit::relay::config()
    };
    let relay = blindrelay_testkit::TestRelay::with_config(&pki, cfg)
        .await
        .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let ask = Request::Devices(n("mallory"));
    let (_, mut laptop) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let (_, mut phone) = raw_device(&pki, root.path(), "mallory", "phone", &addr).await;
    let (_, mut bob) = raw_device(&pki, root.path(), "bob", "laptop", &addr).await;
    for l in [&mut laptop, &mut phone, &mut bob] {
        l.pace(u32::MAX, 1);
    }
    for _ in 0..5 {
        laptop.request(ask.clone()).await.unwrap();
    }
    let mut answered = 0;
    while phone.request(ask.clone()).await.is_ok() {
        answered += 1;
        assert!(answered <= 5);
    }
    assert_eq!(answered, 3, "the person's 8, not the phone's own 5");
    // The phone cools down: a new session is refused.
    let cfg_p = cfg_for(&pki, root.path(), "mallory", "phone", &addr);
    let key = cfg_p.load_key().unwrap();
    assert!(
        blindrelay_client::v2::Link::connect(&cfg_p, &key)
            .await
            .is_err()
    );
    for _ in 0..5 {
        bob.request(ask.clone()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_pair_chats_within_a_second_while_a_colleague_floods_the_relay() {
    // Issue 28, "during each flood an honest pair keeps chatting with a
    // latency under 1 s": mallory's laptop fills offline bob's mailbox
    // with 2 MiB items until refused, then spends its request budget on
    // claims until it is cut off, while her phone creates groups as fast
    // as its budget allows for 3 s; meanwhile carol writes to dave, and
    // each of her messages reaches him within a second.
    let pki = blindrelay_testkit::TestPki::new(&[]).unwrap();
    let relay =
        blindrelay_testkit::TestRelay::with_config(&pki, blindrelay_testkit::relay::config())
            .await
            .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut mallory = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let mut carol = device(&pki, root.path(), "carol", "laptop", &addr).await;
    let mut dave = device(&pki, root.path(), "dave", "laptop", &addr).await;
    let (g, _) = alice
        .create_group(None, &[n("bob"), n("mallory")])
        .await
        .unwrap();
    let (pair, _) = carol.create_group(None, &[n("dave")]).await.unwrap();
    events_for(&mut mallory, Duration::from_millis(300)).await;
    events_for(&mut dave, Duration::from_millis(300)).await;
    bob.close().await;
    let epoch = mallory.device().epoch(&g).unwrap();
    let (_, mut raw) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    raw.pace(u32::MAX, 1);
    let mut phone = device(&pki, root.path(), "mallory", "phone", &addr).await;
    let creations = tokio::spawn(async move {
        let (start, mut made) = (std::time::Instant::now(), 0usize);
        while start.elapsed() < Duration::from_secs(3) {
            phone.create_group(None, &[]).await.unwrap();
            made += 1;
        }
        made
    });
    let flood = tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            let sub = Request::Submit(Submission::Message {
                group_id: g.clone(),
                epoch,
                message: forge::private_message(&g, epoch, 2 * 1024 * 1024 - 1024),
            });
            match raw.request(sub).await {
                Ok(Down::Accepted { .. }) => sent += 1,
                _ => break,
            }
        }
        while raw.request(Request::Claim(n("carol"))).await.is_ok() {
            sent += 1;
        }
        sent
    });
    // At least 8 messages, and on until both floods are over.
    let (mut worst, mut i) = (Duration::ZERO, 0);
    while i < 8 || !flood.is_finished() || !creations.is_finished() {
        i += 1;
        assert!(i < 1_000, "the flood never ended");
        let text = format!("m{i}");
        let start = std::time::Instant::now();
        carol.send(&pair, &text).await.unwrap();
        let mut got = Vec::new();
        while !got.contains(&text) {
            assert!(start.elapsed() < Duration::from_secs(5), "{text} lost");
            got.extend(texts(&dave.sync(Duration::from_millis(20)).await.unwrap()));
        }
        worst = worst.max(start.elapsed());
        // Ten messages a second: a lively chat, well within carol's own
        // budget (at full speed she would be paced by it, and the test
        // would measure her budget, not the flood's effect).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sent, made) = (flood.await.unwrap(), creations.await.unwrap());
    eprintln!(
        "flood of {sent} requests and {made} groups; {i} honest messages, the slowest in {worst:?}"
    );
    assert!(sent >= 8, "the flood ran ({sent} requests)");
    assert!(made >= 10, "the phone made groups ({made})");
    assert!(
        worst < Duration::from_secs(1),
        "an honest message took {worst:?} during the flood"
    );
}
