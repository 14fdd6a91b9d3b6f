//! KeyPackage claims per second on the relay (protocol v2), over real TLS
//! connections to a relay on 127.0.0.1, with the Delivery Service's state
//! in memory and in SQLite on disk (`synchronous=FULL`: every claim is
//! written before it is answered).
//!
//! `cargo bench -p blindrelay-client --bench v2_claims`
//!
//! Four devices of one person upload 200 one-time KeyPackages each; then
//! 1, 4 or 16 claimer devices claim that person as fast as the relay
//! answers (each claim returns one KeyPackage per device: four). Each
//! figure is the median of five rounds, with the lowest and highest.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use blindrelay_client::v2::{Link, Member};
use blindrelay_ds::{Down, Request};
use blindrelay_server::Config;
use blindrelay_testkit::{TestPki, TestRelay};
use blindrelay_wire::UserName;

const CLAIMS_PER_CLAIMER: usize = 400;
const ROUNDS: usize = 5;

async fn round(durable: bool, claimers: usize) -> f64 {
    let pki = TestPki::new(&[]).unwrap();
    let config = Config {
        rate_max_messages: u16::MAX,
        ..blindrelay_testkit::relay::config()
    };
    let store = tempfile::tempdir().unwrap();
    let relay = if durable {
        TestRelay::builder(&pki)
            .config(config)
            .durable(&store.path().join("relay.db"))
            .start()
            .await
            .unwrap()
    } else {
        TestRelay::with_config(&pki, config).await.unwrap()
    };
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    // The claimed person's devices upload their KeyPackages.
    let mut owners = Vec::new();
    for d in ["a", "b", "c", "d"] {
        let dir = root.path().join(format!("target-{d}"));
        let cfg = pki.device("target", d, &dir, &addr).unwrap();
        let mut m = Member::connect(&cfg, &dir.join("mls.db")).await.unwrap();
        while m.upload_key_packages().await.unwrap() < 200 {}
        owners.push(m);
    }
    let mut links = Vec::new();
    for i in 0..claimers {
        let dir = root.path().join(format!("claimer-{i}"));
        let cfg = pki
            .device(&format!("claimer{i}"), "d", &dir, &addr)
            .unwrap();
        links.push(Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap());
    }
    let target = UserName::new("target").unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut link in links {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..CLAIMS_PER_CLAIMER {
                match link.request(Request::Claim(target.clone())).await.unwrap() {
                    Down::Claimed { key_packages, .. } => assert_eq!(key_packages.len(), 4),
                    other => panic!("{other:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    drop(owners);
    (claimers * CLAIMS_PER_CLAIMER) as f64 / secs
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "KeyPackage claims per second (4 KeyPackages per claim), median of {ROUNDS} rounds [min-max]"
    );
    for durable in [false, true] {
        for claimers in [1, 4, 16] {
            let mut v: Vec<f64> = (0..ROUNDS)
                .map(|_| rt.block_on(round(durable, claimers)))
                .collect();
            v.sort_by(|a, b| a.total_cmp(b));
            println!(
                "  {:<28} {:>2} claimer(s): {:>7.0} claims/s [{:.0}-{:.0}]",
                if durable {
                    "SQLite on disk (FULL sync)"
                } else {
                    "SQLite in memory"
                },
                claimers,
                v[ROUNDS / 2],
                v[0],
                v[ROUNDS - 1]
            );
        }
    }
    let _ = Duration::ZERO;
}
