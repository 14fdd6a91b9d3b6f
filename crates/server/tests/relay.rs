//! The relay's behaviour after the handshake, against a real server with
//! real TLS clients: the report's attacks (oversized payload, forged sender,
//! flood) and everything the relay must do for legitimate users.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::time::Duration;

use blindrelay_server::Config;
use blindrelay_testkit::proxy::FRAME_RECORD;
use blindrelay_testkit::raw::{RawClient, unique_id};
use blindrelay_testkit::relay::config;
use blindrelay_testkit::{RecordProxy, TestPki, TestRelay, logs};
use blindrelay_wire::UserName;
use blindrelay_wire::{
    FRAME_LEN, FragmentPos, Frame, FrameType, GoodbyeCode, Message, MessageId, PeerEvent, Routed,
    StatusKind, Target,
};

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

const QUIET: Duration = Duration::from_millis(400);

async fn expect_deliver(c: &mut RawClient, from: &str, payload: &[u8]) -> Routed {
    match c.recv_skip_presence().await.unwrap() {
        Message::Deliver(r) => {
            assert_eq!(r.header.sender.as_str(), from);
            assert_eq!(r.payload, payload);
            r
        }
        other => panic!("{} expected Deliver, got {other:?}", c.name),
    }
}

async fn expect_accepted(c: &mut RawClient, id: MessageId) -> u16 {
    match c.recv_skip_presence().await.unwrap() {
        Message::Status {
            msg_id,
            kind: StatusKind::Accepted { delivered },
        } if msg_id == id => delivered,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_directory_joins_and_leaves() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    assert!(alice.directory.is_empty());
    let bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    assert_eq!(bob.directory, vec![n("alice")]);
    match alice.recv().await.unwrap() {
        Message::Peer {
            event: PeerEvent::Joined,
            name: n,
            cert_der,
        } => {
            assert_eq!(n.as_str(), "bob");
            // The whole certificate, so clients can verify it themselves.
            assert_eq!(
                blindrelay_pki::identity_from_cert(&cert_der)
                    .unwrap()
                    .as_str(),
                "bob"
            );
        }
        other => panic!("expected join, got {other:?}"),
    }
    drop(bob);
    assert_eq!(
        alice.recv().await.unwrap(),
        Message::PeerLeft { name: n("bob") }
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_to_one_to_everyone_stores_for_the_offline_and_reports_unknown() {
    let pki = TestPki::new(&["alice", "bob", "carol", "dave"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let mut carol = RawClient::connect(server.addr, &pki, "carol")
        .await
        .unwrap();
    // dave logs in once so the relay knows him, then leaves.
    drop(RawClient::connect(server.addr, &pki, "dave").await.unwrap());

    let id = alice
        .send_to(&["bob"], b"ciphertext for bob")
        .await
        .unwrap();
    expect_deliver(&mut bob, "alice", b"ciphertext for bob").await;
    assert_eq!(expect_accepted(&mut alice, id).await, 1);
    carol.expect_silence(QUIET).await.unwrap();

    let r = {
        let mut r = alice.routed(&["bob"], b"to the room").unwrap();
        r.header.target = Target::Everyone;
        r
    };
    let id = r.header.msg_id;
    alice.send(&Message::Send(r)).await.unwrap();
    expect_deliver(&mut bob, "alice", b"to the room").await;
    expect_deliver(&mut carol, "alice", b"to the room").await;
    assert_eq!(expect_accepted(&mut alice, id).await, 2);

    let id = alice.send_to(&["dave", "zed"], b"x").await.unwrap();
    let mut statuses = vec![];
    while statuses.len() < 3 {
        match alice.recv().await.unwrap() {
            Message::Status { msg_id, kind } if msg_id == id => statuses.push(kind),
            // Store confirmations of the earlier messages.
            Message::Status { .. } | Message::Peer { .. } | Message::PeerLeft { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    statuses.sort_by_key(|k| format!("{k:?}"));
    // dave is known (logged in once): the message is stored for him; zed is
    // unknown. Accepted comes at once, Stored after the commit.
    assert_eq!(
        statuses,
        vec![
            StatusKind::Accepted { delivered: 0 },
            StatusKind::Stored { recipients: 1 },
            StatusKind::Unknown(n("zed")),
        ]
    );
    // dave logs in and gets it from the store.
    let mut dave = RawClient::connect(server.addr, &pki, "dave").await.unwrap();
    let r = expect_deliver(&mut dave, "alice", b"x").await;
    assert_eq!(r.header.flags, blindrelay_wire::RoutedFlags::STORED);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_5000_byte_payload_closes_that_connection_only() {
    let pki = TestPki::new(&["mallory-bomb", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let mut mallory = RawClient::connect(server.addr, &pki, "mallory-bomb")
        .await
        .unwrap();
    // test_bomb.py: 5000 bytes in one write.
    mallory.send_raw(&[b'A'; 5000]).await.unwrap();
    assert_eq!(
        mallory.expect_closed().await.unwrap(),
        Some(GoodbyeCode::ProtocolViolation)
    );
    logs::wait_for(&[
        "identity=mallory-bomb",
        "invalid frame",
        "unsupported protocol version 65",
    ])
    .await
    .unwrap();
    // The relay and other users are unaffected.
    bob.send(&Message::Ping(1)).await.unwrap();
    assert_eq!(bob.recv_skip_presence().await.unwrap(), Message::Pong(1));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_malformed_frame_ends_the_connection() {
    let pki = TestPki::new(&["mallory-garbage", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let good = Message::Ping(1).encode().unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![];
    let mut b = good.to_vec();
    b[0] = 9;
    cases.push(("unsupported protocol version 9", b));
    let mut b = good.to_vec();
    b[1] = 0x77;
    cases.push(("unknown frame type", b));
    let mut b = good.to_vec();
    b[2..4].copy_from_slice(&5000u16.to_be_bytes());
    cases.push(("declared body length 5000", b));
    let mut b = good.to_vec();
    b[FRAME_LEN - 1] = 0xff;
    cases.push(("non-zero padding", b));
    // A valid frame whose body is not a valid Send.
    let b = Frame::new(FrameType::Send, vec![1, 2, 3])
        .unwrap()
        .encode()
        .to_vec();
    cases.push(("malformed message", b));
    // A server-to-client type sent by a client.
    let b = Message::DirectoryEnd { count: 0 }
        .encode()
        .unwrap()
        .to_vec();
    cases.push(("server-to-client message sent by a client", b));
    for (needle, bytes) in cases {
        let mut m = RawClient::connect(server.addr, &pki, "mallory-garbage")
            .await
            .unwrap();
        m.send_raw(&bytes).await.unwrap();
        assert_eq!(
            m.expect_closed().await.unwrap(),
            Some(GoodbyeCode::ProtocolViolation),
            "{needle}"
        );
        logs::wait_for(&["identity=mallory-garbage", needle])
            .await
            .unwrap();
    }
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    bob.send(&Message::Ping(2)).await.unwrap();
    assert_eq!(bob.recv_skip_presence().await.unwrap(), Message::Pong(2));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_is_cut_off_after_the_frame_timeout() {
    let pki = TestPki::new(&["mallory-trunc"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            frame_timeout_ms: 300,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut m = RawClient::connect(server.addr, &pki, "mallory-trunc")
        .await
        .unwrap();
    m.send_raw(&Message::Ping(1).encode().unwrap()[..100])
        .await
        .unwrap();
    m.expect_closed().await.unwrap();
    logs::wait_for(&["identity=mallory-trunc", "truncated frame"])
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_sender_is_dropped_silently_then_disconnected() {
    let pki = TestPki::new(&["mallory-spoof", "bob", "carol"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let mut carol = RawClient::connect(server.addr, &pki, "carol")
        .await
        .unwrap();
    let mut m = RawClient::connect(server.addr, &pki, "mallory-spoof")
        .await
        .unwrap();
    // test_spoofing.py: a valid connection claiming to be someone else.
    let forged = {
        let mut r = m.routed(&["bob"], b"I am carol").unwrap();
        r.header.sender = n("carol");
        r
    };
    m.send(&Message::Send(forged.clone())).await.unwrap();
    // Silent drop: no reply to the sender, nothing to the recipient.
    m.expect_silence(QUIET).await.unwrap();
    bob.expect_silence(Duration::from_millis(50)).await.unwrap();
    logs::wait_for(&["identity=mallory-spoof", "spoofing detected", "as carol"])
        .await
        .unwrap();
    // The connection is still usable for honest messages...
    let id = m.send_to(&["bob"], b"honest").await.unwrap();
    expect_deliver(&mut bob, "mallory-spoof", b"honest").await;
    expect_accepted(&mut m, id).await;
    // ...but repeated forgeries (3 strikes) end it.
    for _ in 0..2 {
        m.send(&Message::Send({
            let mut r = forged.clone();
            r.header.msg_id = unique_id();
            r
        }))
        .await
        .unwrap();
    }
    assert_eq!(
        m.expect_closed().await.unwrap(),
        Some(GoodbyeCode::Spoofing)
    );
    bob.expect_silence(QUIET).await.unwrap();
    // Other users unaffected.
    let id = carol.send_to(&["bob"], b"hi").await.unwrap();
    expect_deliver(&mut bob, "carol", b"hi").await;
    expect_accepted(&mut carol, id).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_closes_every_session_of_the_identity_with_the_true_reason() {
    let pki = TestPki::new(&["mallory-2x", "bob"]).unwrap();
    let server = TestRelay::start(&pki).await.unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let mut quiet = RawClient::connect(server.addr, &pki, "mallory-2x")
        .await
        .unwrap();
    let mut flooder = RawClient::connect(server.addr, &pki, "mallory-2x")
        .await
        .unwrap();
    for i in 0..11u8 {
        flooder.send_to(&["bob"], &[i]).await.unwrap();
    }
    assert_eq!(
        flooder.expect_closed().await.unwrap(),
        Some(GoodbyeCode::RateLimited)
    );
    // The identity's other session goes too, at once and with the same
    // reason, without having sent anything.
    let started = tokio::time::Instant::now();
    match quiet.recv_skip_presence().await.unwrap() {
        Message::Goodbye { code, reason } => {
            assert_eq!(code, GoodbyeCode::RateLimited);
            assert_eq!(reason, "rate limit exceeded");
        }
        other => panic!("expected a goodbye, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    logs::wait_for(&[
        "identity=mallory-2x",
        "DoS attack detected",
        "other_sessions_closed=1",
    ])
    .await
    .unwrap();
    // bob, who only read, is fine.
    bob.send(&Message::Ping(3)).await.unwrap();
    loop {
        match bob.recv_skip_presence().await.unwrap() {
            Message::Deliver(_) => continue,
            m => {
                assert_eq!(m, Message::Pong(3));
                break;
            }
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_everyone_online_counts_once_per_block_of_sessions_it_reaches() {
    let pki = TestPki::new(&["alice", "bob", "carol", "dave"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            rate_max_messages: 5,
            room_sessions_per_message: 2,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut others = Vec::new();
    for u in ["bob", "carol", "dave"] {
        others.push(RawClient::connect(server.addr, &pki, u).await.unwrap());
    }
    let room = |alice: &RawClient| {
        let mut r = alice.routed(&["bob"], b"to the room").unwrap();
        r.header.target = Target::Everyone;
        Message::Send(r)
    };
    // Three sessions, two per message: each room message costs 2 of 5.
    for _ in 0..2 {
        alice.send(&room(&alice)).await.unwrap();
        for o in &mut others {
            expect_deliver(o, "alice", b"to the room").await;
        }
    }
    alice.send(&room(&alice)).await.unwrap();
    assert_eq!(
        alice.expect_closed().await.unwrap(),
        Some(GoodbyeCode::RateLimited)
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_disconnects_at_the_eleventh_message_then_cools_down() {
    let pki = TestPki::new(&["mallory-flood", "bob"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            cooldown_ms: 1_000,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let mut m = RawClient::connect(server.addr, &pki, "mallory-flood")
        .await
        .unwrap();
    for i in 0..10u8 {
        let id = m.send_to(&["bob"], &[i]).await.unwrap();
        expect_deliver(&mut bob, "mallory-flood", &[i]).await;
        expect_accepted(&mut m, id).await;
    }
    m.send_to(&["bob"], &[10]).await.unwrap();
    assert_eq!(
        m.expect_closed().await.unwrap(),
        Some(GoodbyeCode::RateLimited)
    );
    bob.expect_silence(QUIET).await.unwrap();
    logs::wait_for(&["identity=mallory-flood", "DoS attack detected"])
        .await
        .unwrap();
    // Reconnecting at once is refused, with the time left.
    let mut again = RawClient::connect_raw(server.addr, &pki, "mallory-flood")
        .await
        .unwrap();
    assert_eq!(
        again.expect_closed().await.unwrap(),
        Some(GoodbyeCode::CoolDown)
    );
    logs::wait_for(&[
        "identity=mallory-flood",
        "refused: identity is in its rate-limit cool-down",
    ])
    .await
    .unwrap();
    // After the cool-down, the user may come back.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let _back = RawClient::connect(server.addr, &pki, "mallory-flood")
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_in_a_loop_is_cut_off() {
    let pki = TestPki::new(&["churner", "bob"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            login_rate_max: 3,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    for _ in 0..3 {
        drop(
            RawClient::connect(server.addr, &pki, "churner")
                .await
                .unwrap(),
        );
    }
    let mut again = RawClient::connect_raw(server.addr, &pki, "churner")
        .await
        .unwrap();
    assert_eq!(
        again.expect_closed().await.unwrap(),
        Some(GoodbyeCode::CoolDown)
    );
    // bob saw three joins and leaves, not more.
    let mut joins = 0;
    while let Ok(Some(m)) = bob.try_recv(QUIET).await {
        if matches!(m, Message::Peer { .. }) {
            joins += 1;
        }
    }
    assert_eq!(joins, 3);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_fragmented_message_counts_once_against_the_rate_limit() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    for round in 0..3u8 {
        let id = unique_id();
        let frags: Vec<Message> = (0..20u16)
            .map(|i| {
                Message::Send({
                    let mut r = alice.routed(&["bob"], &[round; 3000]).unwrap();
                    r.header.msg_id = id;
                    r.header.fragment = FragmentPos::new(i, 20).unwrap();
                    r
                })
            })
            .collect();
        let bytes: Vec<Box<[u8; FRAME_LEN]>> = frags.iter().map(|m| m.encode().unwrap()).collect();
        alice.writer.write_batch(&bytes).await.unwrap();
        for i in 0..20u16 {
            let r = expect_deliver(&mut bob, "alice", &[round; 3000]).await;
            assert_eq!(r.header.fragment.index(), i);
        }
        expect_accepted(&mut alice, id).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_sequence_fragments_are_a_protocol_violation() {
    let pki = TestPki::new(&["mallory-frag"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut m = RawClient::connect(server.addr, &pki, "mallory-frag")
        .await
        .unwrap();
    let r = {
        let mut r = m.routed(&["mallory-frag"], b"x").unwrap();
        r.header.fragment = FragmentPos::new(3, 5).unwrap();
        r
    };
    m.send(&Message::Send(r)).await.unwrap();
    assert_eq!(
        m.expect_closed().await.unwrap(),
        Some(GoodbyeCode::ProtocolViolation)
    );
    logs::wait_for(&[
        "identity=mallory-frag",
        "continuation fragment without a first fragment",
    ])
    .await
    .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_disconnected_without_hurting_others() {
    let pki = TestPki::new(&["alice", "slowpoke", "carol"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            rate_max_messages: 60_000,
            outgoing_queue_frames: 8,
            write_timeout_ms: 1_000,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut carol = RawClient::connect(server.addr, &pki, "carol")
        .await
        .unwrap();
    // slowpoke connects and then never reads again.
    let _slow = RawClient::connect(server.addr, &pki, "slowpoke")
        .await
        .unwrap();
    let _ = alice.recv().await.unwrap(); // join
    let _ = carol.recv().await.unwrap(); // join
    let payload = vec![7u8; 3000];
    let mut left = false;
    for i in 0..4000 {
        let id = alice.send_to(&["slowpoke"], &payload).await.unwrap();
        // Drain alice's statuses so that she is not the slow one.
        loop {
            match alice.recv().await.unwrap() {
                Message::Status {
                    msg_id,
                    kind: StatusKind::Accepted { .. },
                } if msg_id == id => break,
                Message::Status { .. } => {}
                Message::PeerLeft { name } if name.as_str() == "slowpoke" => left = true,
                Message::Peer { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if left {
            eprintln!("slow reader dropped after {i} messages");
            break;
        }
    }
    assert!(left, "slow reader was never disconnected");
    logs::wait_for(&["identity=slowpoke", "slow reader"])
        .await
        .unwrap();
    // Carol saw slowpoke leave and can still talk to alice.
    loop {
        if let Message::PeerLeft { name } = carol.recv().await.unwrap() {
            assert_eq!(name.as_str(), "slowpoke");
            break;
        }
    }
    let id = carol.send_to(&["alice"], b"still here").await.unwrap();
    expect_deliver(&mut alice, "carol", b"still here").await;
    expect_accepted(&mut carol, id).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_time_out_and_keepalives_prevent_it() {
    let pki = TestPki::new(&["idler", "pinger"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            idle_timeout_ms: 1_000,
            keepalive_ms: 200,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut idler = RawClient::connect(server.addr, &pki, "idler")
        .await
        .unwrap();
    let mut pinger = RawClient::connect(server.addr, &pki, "pinger")
        .await
        .unwrap();
    // Well past the idle timeout, with pings every 200 ms.
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pinger.send(&Message::Ping(i)).await.unwrap();
    }
    assert_eq!(
        idler.expect_closed().await.unwrap(),
        Some(GoodbyeCode::IdleTimeout)
    );
    // The pinger survived well past the idle timeout.
    pinger.send(&Message::Ping(99)).await.unwrap();
    loop {
        match pinger.recv().await.unwrap() {
            Message::Pong(99) => break,
            Message::Pong(_) | Message::PeerLeft { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cap_closes_the_oldest_and_messages_reach_every_session() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        Config {
            max_sessions_per_identity: 2,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut a1 = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut a2 = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let id = bob.send_to(&["alice"], b"to both").await.unwrap();
    expect_deliver(&mut a1, "bob", b"to both").await;
    expect_deliver(&mut a2, "bob", b"to both").await;
    assert_eq!(expect_accepted(&mut bob, id).await, 2);
    let mut a3 = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    assert_eq!(
        a1.expect_closed().await.unwrap(),
        Some(GoodbyeCode::SessionLimit)
    );
    // Nobody acknowledged "to both", so the new session gets it from the store.
    let r = expect_deliver(&mut a3, "bob", b"to both").await;
    assert_eq!(r.header.flags, blindrelay_wire::RoutedFlags::STORED);
    // Alice never went offline, so bob saw no leave.
    bob.expect_silence(QUIET).await.unwrap();
    let id = bob.send_to(&["alice"], b"again").await.unwrap();
    expect_deliver(&mut a2, "bob", b"again").await;
    expect_deliver(&mut a3, "bob", b"again").await;
    assert_eq!(expect_accepted(&mut bob, id).await, 2);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_after_the_handshake_has_the_same_length() {
    let pki = TestPki::new(&["alice", "bob", "carol"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let proxy = RecordProxy::start(server.addr).await.unwrap();
    let mut carol = RawClient::connect(server.addr, &pki, "carol")
        .await
        .unwrap();
    let mut alice = RawClient::connect(proxy.addr, &pki, "alice").await.unwrap();
    let mut bob = RawClient::connect(proxy.addr, &pki, "bob").await.unwrap();
    let _ = carol.recv().await.unwrap();
    // Short, long, multi-fragment and room messages, several frames per write.
    let id = alice.send_to(&["bob"], b"hi").await.unwrap();
    expect_deliver(&mut bob, "alice", b"hi").await;
    expect_accepted(&mut alice, id).await;
    let mid = unique_id();
    let frags: Vec<Box<[u8; FRAME_LEN]>> = (0..12u16)
        .map(|i| {
            Message::Send({
                let mut r = alice.routed(&["bob"], &vec![1u8; 3900]).unwrap();
                r.header.msg_id = mid;
                r.header.fragment = FragmentPos::new(i, 12).unwrap();
                r
            })
            .encode()
            .unwrap()
        })
        .collect();
    alice.writer.write_batch(&frags).await.unwrap();
    for _ in 0..12 {
        expect_deliver(&mut bob, "alice", &vec![1u8; 3900]).await;
    }
    expect_accepted(&mut alice, mid).await;
    let r = {
        let mut r = bob.routed(&["alice"], b"room").unwrap();
        r.header.target = Target::Everyone;
        r
    };
    bob.send(&Message::Send(r)).await.unwrap();
    expect_deliver(&mut alice, "bob", b"room").await;
    drop(alice);
    drop(bob);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Content type 23 is application data. In TLS 1.3 the encrypted
    // handshake also travels as type 23: each side's handshake flight is the
    // first record(s) of its connection, smaller than a frame. Everything
    // from the first frame on must be exactly one frame per record.
    for (dir, log) in [
        ("client->server", &proxy.up),
        ("server->client", &proxy.down),
    ] {
        let records = log.lock().unwrap().clone();
        let mut lengths: std::collections::BTreeMap<usize, usize> = Default::default();
        let mut frames = 0;
        for conn in [1, 2] {
            let app: Vec<usize> = records
                .iter()
                .filter(|(c, t, _)| *c == conn && *t == 23)
                .map(|(_, _, l)| *l)
                .collect();
            for l in &app {
                *lengths.entry(*l).or_default() += 1;
            }
            let after: Vec<usize> = app
                .iter()
                .copied()
                .skip_while(|&l| l != FRAME_RECORD)
                .collect();
            assert!(
                after.iter().all(|&l| l == FRAME_RECORD),
                "{dir} conn {conn}: {app:?}"
            );
            assert!(
                app.len() - after.len() <= 2,
                "{dir} conn {conn}: more than the handshake before the first frame: {app:?}"
            );
            frames += after.len();
        }
        eprintln!("{dir}: application-data record lengths (count by length) {lengths:?}");
        assert!(frames >= 14, "{dir}: too few frames seen");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_says_goodbye_to_everyone() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let addr = server.addr;
    server.stop().await.unwrap();
    assert_eq!(
        alice.expect_closed().await.unwrap(),
        Some(GoodbyeCode::Shutdown)
    );
    assert_eq!(
        bob.expect_closed().await.unwrap(),
        Some(GoodbyeCode::Shutdown)
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}
