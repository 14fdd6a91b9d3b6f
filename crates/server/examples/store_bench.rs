//! Stored-message throughput: how many messages per second go into the
//! relay's store (durably committed, group commit, SQLite WAL with
//! synchronous=FULL) and come out of it on login (backlog read + ack).
//!
//! `cargo run --release -p blindrelay-server --example store_bench -- [MESSAGES] [SENDERS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Instant;

use blindrelay_server::store::sqlite::SqliteStore;
use blindrelay_server::store::{Body, NewMessage, Quota, StoreHandle, WriteOp, WriteResult};
use blindrelay_wire::{MessageId, UserName};

/// A typical one-frame envelope (one recipient, short text) is ~600 bytes;
/// the store keeps the routed body, about this size.
const BODY: usize = 640;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let senders: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::spawn(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
    let bob = UserName::new("bob").unwrap();
    let quota = Quota {
        max_messages: u64::MAX,
        max_bytes: u64::MAX,
    };

    // In: `senders` concurrent sessions, each waiting for its commits in
    // flight like the relay does (pipelined), as many as the relay allows.
    let per = total / senders;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let store = store.clone();
        let bob = bob.clone();
        tasks.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for i in 0..per {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(s as u64).to_be_bytes());
                id[8..].copy_from_slice(&(i as u64).to_be_bytes());
                let mut body = vec![0xab; BODY];
                body[..16].copy_from_slice(&id);
                let m = NewMessage {
                    recipient: bob.clone(),
                    sender: UserName::new("alice").unwrap(),
                    msg_id: MessageId(id),
                    fragments: vec![Body::from(body)].into(),
                    created_ms: 1,
                };
                pending.push(
                    store
                        .write_pipelined(WriteOp::Commit(vec![m], quota))
                        .await
                        .unwrap(),
                );
                if pending.len() >= 256 {
                    for rx in pending.drain(..) {
                        assert!(matches!(
                            rx.await.unwrap().unwrap(),
                            WriteResult::Committed(_)
                        ));
                    }
                }
            }
            for rx in pending {
                assert!(matches!(
                    rx.await.unwrap().unwrap(),
                    WriteResult::Committed(_)
                ));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = per * senders;
    let into = t.elapsed();
    assert_eq!(store.totals().await.unwrap().0, n as u64);

    // Out: a login reads the whole backlog page by page and acknowledges it.
    let t = Instant::now();
    let mut after = 0;
    let mut read = 0;
    loop {
        let page = store.backlog(bob.clone(), after).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        read += page.len();
        let alice = UserName::new("alice").unwrap();
        let ids: Vec<(UserName, MessageId)> = page
            .iter()
            .map(|f| {
                let mut id = [0u8; 16];
                id.copy_from_slice(&f.body[..16]);
                (alice.clone(), MessageId(id))
            })
            .collect();
        for chunk in ids.chunks(blindrelay_wire::MAX_ACK_IDS) {
            store
                .write_detached(WriteOp::Ack(bob.clone(), chunk.to_vec()))
                .await
                .unwrap();
        }
    }
    let (left, _) = store.totals().await.unwrap();
    let out = t.elapsed();
    println!(
        "store_bench: {n} messages of {BODY} B from {senders} concurrent senders, SQLite WAL synchronous=FULL"
    );
    println!(
        "  into the store: {:>8.0} msg/s ({:.2} s, every message committed before its confirmation)",
        n as f64 / into.as_secs_f64(),
        into.as_secs_f64()
    );
    println!(
        "  out on login:   {:>8.0} msg/s ({:.2} s, backlog pages of 256 read and acknowledged; {left} left)",
        read as f64 / out.as_secs_f64(),
        out.as_secs_f64()
    );
}
