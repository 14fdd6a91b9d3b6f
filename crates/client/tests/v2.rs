//! Protocol v2 through the real relay: devices with their own keys and
//! certificates, MLS groups ordered by the relay as Delivery Service,
//! mailboxes that survive a restart, and the relay refusing a revoked
//! device.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::path::Path;
use std::time::Duration;

use blindrelay_client::v2::{Member, V2Event};
use blindrelay_mls::GroupName;
use blindrelay_server::Config;
use blindrelay_testkit::{TestPki, TestRelay};
use blindrelay_wire::UserName;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// A relay config with room for a test's bursts of requests.
fn config() -> Config {
    Config {
        rate_max_messages: 1_000,
        v2_rate_max_requests: 1_000,
        v2_person_rate_max_requests: 4_000,
        ..blindrelay_testkit::relay::config()
    }
}

/// A CA, a relay (with room for a test's bursts) on 127.0.0.1:0, its
/// address, and a directory for the devices.
async fn world() -> (TestPki, TestRelay, String, tempfile::TempDir) {
    let pki = TestPki::new(&[]).unwrap();
    let relay = TestRelay::with_config(&pki, config()).await.unwrap();
    let addr = relay.address();
    (pki, relay, addr, tempfile::tempdir().unwrap())
}

/// Enrols and connects `user`'s `device`, its directory under `root`.
async fn device(pki: &TestPki, root: &Path, user: &str, device: &str, addr: &str) -> Member {
    let dir = root.join(format!("{user}-{device}"));
    let cfg = if dir.join("cert.pem").exists() {
        blindrelay_client::ClientConfig::from_dir(&dir, n(user), addr)
    } else {
        pki.device(user, device, &dir, addr).unwrap()
    };
    Member::connect(&cfg, &dir.join("mls.db")).await.unwrap()
}

/// Reads until `count` messages arrived (their texts with senders), for at
/// most five seconds.
async fn messages(m: &mut Member, count: usize) -> Vec<(String, String)> {
    read_for(m, count, Duration::from_secs(5)).await
}

/// What arrives within a second (for "nothing arrives").
async fn quiet(m: &mut Member) -> Vec<(String, String)> {
    read_for(m, usize::MAX, Duration::from_secs(1)).await
}

async fn read_for(m: &mut Member, count: usize, limit: Duration) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + limit;
    while out.len() < count && tokio::time::Instant::now() < end {
        for e in m.sync(Duration::from_millis(100)).await.unwrap() {
            if let V2Event::Message { from, text, .. } = e {
                out.push((format!("{}@{}", from.0, from.1), text));
            }
        }
    }
    out
}

/// Syncs every device until nothing more arrives.
async fn settle(devices: &mut [&mut Member]) -> Vec<V2Event> {
    let mut all = Vec::new();
    for _ in 0..3 {
        for d in devices.iter_mut() {
            all.extend(d.sync(Duration::from_millis(150)).await.unwrap());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_with_two_devices_each_chat_and_form_a_group_through_the_relay() {
    let pki = TestPki::new(&["carol"]).unwrap();
    let relay = TestRelay::with_config(&pki, config()).await.unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut al = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut ap = device(&pki, root.path(), "alice", "phone", &addr).await;
    let mut bl = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut bp = device(&pki, root.path(), "bob", "phone", &addr).await;

    // The first message to bob makes the one-to-one group: all four devices.
    let (g, _) = al.create_group(None, &[n("bob")]).await.unwrap();
    al.send(&g, "hello bob").await.unwrap();
    // Every device reads it but the sender's: alice's phone too.
    for d in [&mut ap, &mut bl, &mut bp] {
        assert_eq!(
            messages(d, 1).await,
            [("alice@laptop".to_string(), "hello bob".to_string())]
        );
        let found = d
            .one_to_one(&n("alice"))
            .unwrap()
            .or(d.one_to_one(&n("bob")).unwrap());
        assert_eq!(found.unwrap().members.len(), 4);
    }
    assert!(
        messages(&mut al, 1).await.is_empty(),
        "a sender is not sent its own message"
    );

    // Bob answers from his phone; alice's two devices and bob's laptop read it.
    bp.send(&g, "hi alice").await.unwrap();
    for d in [&mut al, &mut ap, &mut bl] {
        assert_eq!(
            messages(d, 1).await,
            [("bob@phone".to_string(), "hi alice".to_string())]
        );
    }

    // A named group of alice, bob and carol (carol's one device joins later).
    let name = GroupName::new("team").unwrap();
    let (team, _) = bl.create_group(Some(&name), &[n("alice")]).await.unwrap();
    settle(&mut [&mut al, &mut ap, &mut bp]).await;
    assert_eq!(al.find_group("team").unwrap().unwrap().members.len(), 4);
    let mut cl = device(&pki, root.path(), "carol", "laptop", &addr).await;
    ap.add(&team, &[n("carol")]).await.unwrap();
    settle(&mut [&mut al, &mut bl, &mut bp, &mut cl]).await;
    assert_eq!(cl.find_group("team").unwrap().unwrap().members.len(), 5);
    cl.send(&team, "carol here").await.unwrap();
    for d in [&mut al, &mut ap, &mut bl, &mut bp] {
        assert_eq!(
            messages(d, 1).await,
            [("carol@laptop".to_string(), "carol here".to_string())]
        );
    }

    // Bob removes carol: she reads nothing after it.
    bl.remove(&team, &n("carol")).await.unwrap();
    let ev = settle(&mut [&mut cl, &mut al, &mut ap, &mut bp]).await;
    assert!(ev.iter().any(|e| matches!(e, V2Event::RemovedMe { .. })));
    al.send(&team, "without carol").await.unwrap();
    assert!(quiet(&mut cl).await.is_empty());
    assert_eq!(messages(&mut bp, 1).await.len(), 1);

    // One history: every remaining member has the same epoch authenticator.
    let auth = al.device().epoch_authenticator(&team).unwrap();
    for d in [&mut ap, &mut bl, &mut bp] {
        assert_eq!(d.device().epoch_authenticator(&team).unwrap(), auth);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_that_race_are_ordered_by_the_relay_and_the_losers_rebase() {
    let (pki, _relay, addr, root) = world().await;
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut c = device(&pki, root.path(), "carol", "laptop", &addr).await;
    let (g, _) = a
        .create_group(
            Some(&GroupName::new("race").unwrap()),
            &[n("bob"), n("carol")],
        )
        .await
        .unwrap();
    settle(&mut [&mut b, &mut c]).await;
    // All three update at once; each loses at most twice and retries.
    let (ra, rb, rc) = tokio::join!(a.update(&g), b.update(&g), c.update(&g));
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    settle(&mut [&mut a, &mut b, &mut c]).await;
    let epoch = a.device().epoch(&g).unwrap();
    assert_eq!(epoch, 4, "the group's creation and three updates");
    let auth = a.device().epoch_authenticator(&g).unwrap();
    assert_eq!(b.device().epoch_authenticator(&g).unwrap(), auth);
    assert_eq!(c.device().epoch_authenticator(&g).unwrap(), auth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_new_device_joins_their_groups_and_reads_what_follows() {
    let (pki, _relay, addr, root) = world().await;
    let mut al = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bl = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = al.create_group(None, &[n("bob")]).await.unwrap();
    settle(&mut [&mut bl]).await;
    // Alice enrols a phone; her laptop adds it to every group it is in.
    let mut ap = device(&pki, root.path(), "alice", "phone", &addr).await;
    al.adopt_own_devices().await.unwrap();
    settle(&mut [&mut ap, &mut bl]).await;
    assert_eq!(ap.one_to_one(&n("bob")).unwrap().unwrap().id, g);
    // Nothing more to do the second time.
    assert!(al.adopt_own_devices().await.unwrap().is_empty());
    assert_eq!(al.device().members(&g).unwrap().len(), 3);
    bl.send(&g, "to both of alice's devices").await.unwrap();
    assert_eq!(messages(&mut ap, 1).await.len(), 1);
    assert_eq!(messages(&mut al, 1).await.len(), 1);
    // While it runs, the laptop adds a device enrolled later by itself
    // (its periodic work, here every sync instead of every minute).
    let mut at = device(&pki, root.path(), "alice", "tablet", &addr).await;
    al.set_maintenance_interval(Duration::ZERO);
    al.sync(Duration::from_millis(100)).await.unwrap();
    settle(&mut [&mut at, &mut ap, &mut bl]).await;
    assert_eq!(at.one_to_one(&n("bob")).unwrap().unwrap().members.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_relay_confirmed_survives_its_restart_and_reaches_an_offline_device() {
    let pki = TestPki::new(&[]).unwrap();
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("relay.db");
    let relay = TestRelay::builder(&pki)
        .config(config())
        .durable(&db)
        .start()
        .await
        .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    b.close().await;
    let (g, _) = a.create_group(None, &[n("bob")]).await.unwrap();
    for i in 0..5 {
        a.send(&g, &format!("offline {i}")).await.unwrap();
    }
    // The relay goes away (its memory with it) and comes back on its files.
    let at = relay.stop().await.unwrap();
    drop(a);
    let relay = TestRelay::builder(&pki)
        .config(config())
        .durable(&db)
        .at(at)
        .start()
        .await
        .unwrap();
    let mut b = device(&pki, root.path(), "bob", "laptop", &relay.address()).await;
    let got = messages(&mut b, 5).await;
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "offline 0",
            "offline 1",
            "offline 2",
            "offline 3",
            "offline 4"
        ]
    );
    // Acknowledged items are gone, from the relay's files too: after
    // another restart a new connection gets nothing again.
    b.sync(Duration::from_millis(300)).await.unwrap();
    b.close().await;
    let at = relay.stop().await.unwrap();
    let relay = TestRelay::builder(&pki)
        .config(config())
        .durable(&db)
        .at(at)
        .start()
        .await
        .unwrap();
    let mut b = device(&pki, root.path(), "bob", "laptop", &relay.address()).await;
    assert!(b.sync(Duration::from_millis(300)).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_a_revoked_devices_connection_and_closes_its_session() {
    let (pki, relay, addr, root) = world().await;
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = a.create_group(None, &[n("bob")]).await.unwrap();
    settle(&mut [&mut b]).await;
    pki.revoke_device("bob", "laptop").unwrap();
    relay.reload_crl();
    // The open session is closed ...
    let mut closed = false;
    for _ in 0..50 {
        if b.sync(Duration::from_millis(100)).await.is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the revoked device's session stayed open");
    // ... and a new one is refused at the handshake.
    let dir = root.path().join("bob-laptop");
    let cfg = blindrelay_client::ClientConfig::from_dir(&dir, n("bob"), &addr);
    assert!(Member::connect(&cfg, &dir.join("mls.db")).await.is_err());
    // Alice, still connected, gets the new CRL from the relay (which cannot
    // forge one: it is the CA's, checked by her device), and her next
    // commit removes bob's revoked device unasked.
    a.sync(Duration::from_millis(300)).await.unwrap();
    a.update(&g).await.unwrap();
    assert_eq!(a.device().members(&g).unwrap().len(), 1);
}

/// A raw TLS connection with a device's certificate.
async fn raw_device(
    pki: &TestPki,
    root: &Path,
    user: &str,
    dev: &str,
    addr: &str,
) -> blindrelay_testkit::RawClient {
    let dir = root.join(format!("{user}-{dev}"));
    let cfg = pki.device(user, dev, &dir, addr).unwrap();
    let tls = cfg.tls(&cfg.load_key().unwrap()).unwrap();
    let s = blindrelay_testkit::raw::tls_connect(addr.parse().unwrap(), tls)
        .await
        .unwrap();
    blindrelay_testkit::RawClient::wrap(user, s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_v2_input_ends_only_the_senders_session() {
    use blindrelay_wire::{Chunk, GoodbyeCode, Message};
    let pki = TestPki::new(&["victor"]).unwrap();
    let relay = TestRelay::with_config(&pki, config()).await.unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = a.create_group(None, &[n("bob")]).await.unwrap();
    settle(&mut [&mut b]).await;
    let chunk = |msg, index, count, data: &[u8]| {
        Message::DsUp(Chunk {
            msg,
            index,
            count,
            data: data.to_vec(),
        })
    };
    let cases: Vec<(&str, Vec<Message>)> = vec![
        (
            "a chunk that does not start a message",
            vec![chunk(1, 1, 2, b"x")],
        ),
        (
            "chunks of two messages interleaved",
            vec![chunk(1, 0, 2, b"x"), chunk(2, 0, 2, b"y")],
        ),
        (
            "a request that does not decode",
            vec![chunk(1, 0, 1, &[0x7f, 0, 0, 0, 1])],
        ),
        (
            "a v1 frame in a v2 session",
            vec![Message::Ack(vec![(
                n("bob"),
                blindrelay_testkit::raw::unique_id(),
            )])],
        ),
    ];
    for (i, (what, frames)) in cases.into_iter().enumerate() {
        let mut raw = raw_device(&pki, root.path(), "mallory", &format!("d{i}"), &addr).await;
        for f in &frames {
            // An invalid message cannot always be encoded by the encoder;
            // the relay must refuse what can.
            if let Ok(bytes) = f.encode() {
                raw.send_raw(&bytes[..]).await.unwrap();
            }
        }
        assert_eq!(
            raw.expect_closed()
                .await
                .map_err(|e| format!("{what}: {e}"))
                .unwrap(),
            Some(GoodbyeCode::ProtocolViolation),
            "{what}"
        );
    }
    // A v1 user sending v2 frames is refused too.
    let mut v1 = blindrelay_testkit::RawClient::connect(addr.parse().unwrap(), &pki, "victor")
        .await
        .unwrap();
    v1.send(&chunk(1, 0, 1, &[0x05, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))
        .await
        .unwrap();
    assert!(v1.expect_closed().await.unwrap().is_some());
    // The others' group works on.
    a.send(&g, "still here").await.unwrap();
    assert_eq!(messages(&mut b, 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_a_stranger_in_a_group_and_a_commit_for_an_old_epoch() {
    use blindrelay_client::v2::Link;
    use blindrelay_ds::{Down, Refusal, RefusalCode, Request, Submission};
    let (pki, _relay, addr, root) = world().await;
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = a.create_group(None, &[n("bob")]).await.unwrap();
    settle(&mut [&mut b]).await;
    let refusal = |d: Down| match d {
        Down::Refused {
            why: Refusal::Rules(c),
            epoch,
            ..
        } => (c, epoch),
        other => panic!("not refused: {other:?}"),
    };
    // Mallory, a stranger to the group, posts bytes that are no MLS
    // message to it: refused before anything else (a well-formed one from
    // a stranger is refused as NotAMember, ds's rules tests).
    let dir = root.path().join("mallory-laptop");
    let cfg = pki.device("mallory", "laptop", &dir, &addr).unwrap();
    let mut m = Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap();
    let post = Submission::Message {
        group_id: g.clone(),
        epoch: 1,
        message: vec![1; 100],
    };
    assert_eq!(
        refusal(m.request(Request::Submit(post)).await.unwrap()).0,
        RefusalCode::Unverified
    );
    // A member's commit for an epoch that is over is told the current one.
    let dir = root.path().join("bob-laptop");
    let cfg = blindrelay_client::ClientConfig::from_dir(&dir, n("bob"), &addr);
    let mut bob = Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap();
    let members = [&a, &b].iter().map(|d| d.me().clone()).collect();
    let old = Submission::Commit {
        group_info: None,
        group_id: g.clone(),
        epoch: 0,
        members,
        commit: vec![1],
        welcome: None,
    };
    assert_eq!(
        refusal(bob.request(Request::Submit(old)).await.unwrap()),
        (RefusalCode::StaleEpoch, 1)
    );
    // Nothing of theirs reached mallory; the group works on.
    assert!(
        m.next_delivery(Duration::from_millis(500))
            .await
            .unwrap()
            .is_none()
    );
    b.send(&g, "private").await.unwrap();
    assert_eq!(messages(&mut a, 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_package_offered_as_another_devices_is_refused_and_a_revoked_one_left_out() {
    use blindrelay_client::v2::Link;
    use blindrelay_ds::{Down, Request};
    let (pki, relay, addr, root) = world().await;
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    // Mallory (her device named like bob's) claims one of bob's
    // KeyPackages and uploads it as her own.
    let dir = root.path().join("mallory-laptop");
    let cfg = pki.device("mallory", "laptop", &dir, &addr).unwrap();
    let mut m = Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap();
    let Down::Claimed { key_packages, .. } = m.request(Request::Claim(n("bob"))).await.unwrap()
    else {
        panic!("no claim")
    };
    let bobs = key_packages[0].key_package.clone();
    let up = Request::Upload {
        one_time: vec![bobs],
        last_resort: None,
    };
    assert!(matches!(
        m.request(up).await.unwrap(),
        Down::Uploaded { .. }
    ));
    // Alice asks for mallory and would get bob's device: refused, nothing added.
    let (g, _) = a
        .create_group(Some(&GroupName::new("g").unwrap()), &[])
        .await
        .unwrap();
    let err = a.add(&g, &[n("mallory")]).await.unwrap_err();
    assert!(
        matches!(&err, blindrelay_client::ClientError::ForeignKeyPackage { offered, owner }
            if offered == "mallory@laptop" && owner == "bob@laptop"),
        "{err}"
    );
    assert_eq!(a.device().members(&g).unwrap().len(), 1);
    // The same within one person: bob's tablet uploads his laptop's
    // KeyPackage as its own; asking for bob is refused whole.
    let dir = root.path().join("bob-tablet");
    let cfg = pki.device("bob", "tablet", &dir, &addr).unwrap();
    let mut t = Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap();
    let Down::Claimed { key_packages, .. } = t.request(Request::Claim(n("bob"))).await.unwrap()
    else {
        panic!("no claim")
    };
    let laptops = key_packages
        .iter()
        .find(|c| c.device.device.as_str() == "laptop")
        .unwrap()
        .key_package
        .clone();
    let up = Request::Upload {
        one_time: vec![laptops],
        last_resort: None,
    };
    assert!(matches!(
        t.request(up).await.unwrap(),
        Down::Uploaded { .. }
    ));
    let err = a.add(&g, &[n("bob")]).await.unwrap_err();
    assert!(
        err.to_string().contains("of bob@laptop as bob@tablet"),
        "{err}"
    );
    assert_eq!(a.device().members(&g).unwrap().len(), 1);
    // (Alice's claim used the tablet's only KeyPackage: it is gone.)
    drop(t);
    // Bob's phone is revoked while offline: a conversation with bob gets
    // his laptop, and leaves the phone out.
    let phone = device(&pki, root.path(), "bob", "phone", &addr).await;
    phone.close().await;
    pki.revoke_device("bob", "phone").unwrap();
    relay.reload_crl();
    a.sync(Duration::from_millis(300)).await.unwrap();
    let (one, _) = a.create_group(None, &[n("bob")]).await.unwrap();
    let members: Vec<String> = a
        .device()
        .members(&one)
        .unwrap()
        .into_iter()
        .map(|m| format!("{}@{}", m.user, m.device))
        .collect();
    assert_eq!(members, ["alice@laptop", "bob@laptop"]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_settled_at_the_next_connection() {
    use blindrelay_client::v2::Link;
    use blindrelay_ds::{Down, Request, Submission};
    let (pki, _relay, addr, root) = world().await;
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut b = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = a.create_group(None, &[n("bob")]).await.unwrap();
    settle(&mut [&mut b]).await;
    let members: std::collections::BTreeSet<_> = [a.me().clone(), b.me().clone()].into();
    // Taken by the relay, answer lost: alice's update reaches the relay
    // (here over a second connection of hers) and her device stops before
    // it hears ACCEPTED; the pending commit is in its stored state.
    let out = a.device().update(&g).unwrap();
    let cfg = blindrelay_client::ClientConfig::from_dir(
        &root.path().join("alice-laptop"),
        n("alice"),
        &addr,
    );
    let mut side = Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap();
    let sub = Submission::Commit {
        group_info: None,
        group_id: g.clone(),
        epoch: out.epoch,
        members: members.clone(),
        commit: out.commit,
        welcome: None,
    };
    assert!(matches!(
        side.request(Request::Submit(sub)).await.unwrap(),
        Down::Accepted { .. }
    ));
    drop(a);
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    assert!(
        !a.device().has_pending_commit(&g).unwrap(),
        "applied from the mailbox"
    );
    assert_eq!(a.device().epoch(&g).unwrap(), 2);
    a.send(&g, "after the lost answer").await.unwrap();
    assert_eq!(
        messages(&mut b, 1).await,
        [(
            "alice@laptop".to_string(),
            "after the lost answer".to_string()
        )]
    );
    // Never taken: the commit made but not submitted is dropped at the
    // next connection, and alice carries on at the same epoch as bob.
    let _ = a.device().update(&g).unwrap();
    drop(a);
    let mut a = device(&pki, root.path(), "alice", "laptop", &addr).await;
    assert!(!a.device().has_pending_commit(&g).unwrap(), "dropped");
    a.send(&g, "and again").await.unwrap();
    assert_eq!(messages(&mut b, 1).await.len(), 1);
    assert_eq!(
        a.device().epoch_authenticator(&g).unwrap(),
        b.device().epoch_authenticator(&g).unwrap()
    );
    // Its own commits handed back are no warnings.
    a.update(&g).await.unwrap();
    let events = a.sync(Duration::from_millis(300)).await.unwrap();
    assert!(
        events.iter().all(|e| !matches!(e, V2Event::Refused { .. })),
        "{events:?}"
    );
}
