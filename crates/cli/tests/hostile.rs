//! Hostile clients under load, against the real relay process
//! (`blindrelay serve`), on loopback, bounded in time.
//!
//! Four legitimate users chat in a ring through the real client library
//! while, at the same time and from other loopback addresses:
//! - slowloris connections open TCP and never start the handshake;
//! - clients with valid certificates send garbage, oversized, truncated and
//!   spoofed frames, over and over;
//! - a flooder sends as fast as it can and reconnects as fast as it can
//!   after every disconnect;
//! - a client stops reading its socket while a feeder sends it large
//!   messages.
//!
//! Asserted: every legitimate message is delivered exactly once, no
//! legitimate session is interrupted, the legitimate latency stays bounded,
//! the relay's resident memory stays bounded, and every attacker connection
//! is closed by the relay and logged. The figures are printed.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blindrelay_client::Event;
use blindrelay_net::unix_ms as now_ms;
use blindrelay_pki::PkiDir;
use blindrelay_testkit::process::free_port;
use blindrelay_testkit::{RelayProcess, TestPki, User};
use blindrelay_wire::{
    FRAME_LEN, FragmentPos, Message, MessageId, Routed, RoutedFlags, RoutedHeader, Target, UserName,
};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const LEGIT: &[&str] = &["ann", "ben", "cat", "dan"];
const ATTACKERS: &[&str] = &[
    "garbage", "oversize", "truncate", "spoofer", "flooder", "sloth", "feeder", "feeder2",
];
/// How long the attack lasts; the legitimate chat runs through it.
const ATTACK: Duration = Duration::from_secs(12);
/// Interval between two messages of one legitimate user (the relay allows
/// 10 messages per 5 s).
const CHAT_EVERY: Duration = Duration::from_millis(700);
/// Handshake and frame timeouts of the relay under test (shortened from the
/// defaults so the test stays short; the mechanisms are the same).
const RELAY_TIMEOUT_MS: u64 = 2000;
/// An attacker connection must be closed by the relay within this.
const CLOSE_BOUND: Duration = Duration::from_secs(8);
/// Bounds asserted on the legitimate users' end-to-end latency.
const P99_BOUND: Duration = Duration::from_millis(1500);
const MAX_BOUND: Duration = Duration::from_secs(3);
/// Bound asserted on the relay's peak resident memory.
const RSS_BOUND_KB: u64 = 256 * 1024;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `blindrelay serve` in the relay directory `dir`, with the shortened
/// timeouts.
fn start_relay(pki: &Path) -> RelayProcess {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let cfg = pki.join("relay.toml");
    std::fs::write(
        &cfg,
        format!(
            "handshake_timeout_ms = {RELAY_TIMEOUT_MS}\n\
             frame_timeout_ms = {RELAY_TIMEOUT_MS}\n\
             write_timeout_ms = {RELAY_TIMEOUT_MS}\n"
        ),
    )
    .unwrap();
    let pki_dir = pki.display().to_string();
    let cfg = cfg.display().to_string();
    start_relay_at(pki, &addr, &["--dir", &pki_dir, "--config", &cfg])
}

/// `user`'s TLS client configuration.
fn client_config(pki: &PkiDir, user: &str) -> rustls::ClientConfig {
    blindrelay_net::client_config_from_files(
        &pki.ca_cert_path(),
        &pki.user_cert_path(&n(user)),
        &pki.user_key_path(&n(user)),
    )
    .unwrap()
}

/// A TCP connection from a chosen loopback source address.
async fn tcp_from(src: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(IpAddr::from(src), 0))?;
    s.connect(to).await
}

/// A TLS connection as `user` from a chosen loopback source address.
async fn tls_as(
    pki: &PkiDir,
    user: &str,
    src: [u8; 4],
    to: SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = tcp_from(src, to).await?;
    let cfg = client_config(pki, user);
    TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
}

/// Reads until the relay closes the connection; returns how long it took,
/// or None if it stayed open past the bound.
async fn until_closed<R: AsyncReadExt + Unpin>(r: &mut R) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout_at((start + CLOSE_BOUND).into(), r.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn routed(sender: &str, to: &str, index: u16, count: u16, id: [u8; 16]) -> Message {
    let target = Target::Users(vec![n(to)]);
    let room = RoutedHeader::max_payload_len(&n(sender), &target);
    Message::Send(Routed {
        header: RoutedHeader {
            msg_id: MessageId(id),
            fragment: FragmentPos::new(index, count).unwrap(),
            flags: RoutedFlags::NONE,
            sender: n(sender),
            target,
        },
        payload: vec![0x5a; room],
    })
}

fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    blindrelay_e2e::seal::fill_random(&mut id).unwrap();
    id
}

/// Counts of one attacker: connections closed by the relay, and connections
/// that stayed open past the bound.
#[derive(Default)]
struct Tally {
    closed: AtomicUsize,
    stuck: AtomicUsize,
}

impl Tally {
    fn record(&self, r: Option<Duration>) {
        match r {
            Some(_) => self.closed.fetch_add(1, Ordering::Relaxed),
            None => self.stuck.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// One misbehaving client with a valid certificate: connects, does `what`,
/// waits to be thrown out, and starts again until the attack ends.
async fn misbehave(
    pki: PkiDir,
    addr: SocketAddr,
    who: &'static str,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = tls_as(&pki, who, [127, 0, 0, 4], addr).await else {
            tally.closed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let bytes: Vec<u8> = match who {
            "garbage" => {
                let mut b = vec![0u8; FRAME_LEN];
                blindrelay_e2e::seal::fill_random(&mut b).unwrap();
                b
            }
            "oversize" => {
                // Version 1, type Send, body length 5000: larger than a frame.
                let mut b = vec![0u8; FRAME_LEN];
                b[..4].copy_from_slice(&[1, 0x10, 0x13, 0x88]);
                b
            }
            // A frame's first 1000 bytes, and then nothing.
            "truncate" => routed(who, "ann", 0, 1, random_id()).encode().unwrap()[..1000].to_vec(),
            // Messages claiming to come from ann.
            "spoofer" => (0..4)
                .flat_map(|_| {
                    routed("ann", "ben", 0, 1, random_id())
                        .encode()
                        .unwrap()
                        .to_vec()
                })
                .collect(),
            _ => unreachable!(),
        };
        let _ = s.write_all(&bytes).await;
        let _ = s.flush().await;
        tally.record(until_closed(&mut s).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_users_keep_chatting_while_hostile_clients_attack() {
    let users_and_attackers: Vec<&str> = LEGIT.iter().chain(ATTACKERS).copied().collect();
    let test_pki = TestPki::named("Hostile Test CA", &users_and_attackers).unwrap();
    let pki = test_pki.pki.clone();
    let relay = start_relay(&test_pki.relay_dir().unwrap());
    let addr: SocketAddr = relay.addr.parse().unwrap();
    let pid = relay.pid();

    // --- the legitimate users ---
    let mut users = HashMap::new();
    for u in LEGIT {
        let user = User::connect(&test_pki, u, &relay.addr).await.unwrap();
        users.insert(*u, (user.handle, user.events));
    }
    // Everyone sees everyone before the chat starts.
    for u in LEGIT {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let online = users[u].0.online().await.unwrap();
            if LEGIT
                .iter()
                .all(|o| o == u || online.iter().any(|x| x.as_str() == *o))
            {
                break;
            }
            assert!(Instant::now() < deadline, "{u} does not see everyone");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let baseline_kb = rss_kb(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let peak_kb = Arc::new(AtomicUsize::new(baseline_kb as usize));
    {
        let (stop, peak) = (stop.clone(), peak_kb.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid) as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    // --- slowloris: TCP connections that never send a byte, from two
    // addresses, reopened as soon as the relay closes them ---
    let slow = Arc::new(Tally::default());
    let mut tasks = vec![];
    for src in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        for _ in 0..100 {
            let (stop, slow) = (stop.clone(), slow.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match tcp_from(src, addr).await {
                        Ok(mut s) => slow.record(until_closed(&mut s).await),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }));
        }
    }

    // --- garbage, oversized, truncated and spoofed frames ---
    let mut tallies = BTreeMap::new();
    for who in ["garbage", "oversize", "truncate", "spoofer"] {
        let t = Arc::new(Tally::default());
        tallies.insert(who, t.clone());
        tasks.push(tokio::spawn(misbehave(
            pki.clone(),
            addr,
            who,
            stop.clone(),
            t,
        )));
    }

    // --- the flooder: as fast as it can, reconnecting at once ---
    let flood = Arc::new(Tally::default());
    let flood_sent = Arc::new(AtomicUsize::new(0));
    {
        let (pki, stop, flood, sent) =
            (pki.clone(), stop.clone(), flood.clone(), flood_sent.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(s) = tls_as(&pki, "flooder", [127, 0, 0, 5], addr).await else {
                    flood.closed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (mut r, mut w) = tokio::io::split(s);
                let writer = {
                    let sent = sent.clone();
                    tokio::spawn(async move {
                        loop {
                            let f = routed("flooder", "feeder", 0, 1, random_id())
                                .encode()
                                .unwrap();
                            if w.write_all(&f[..]).await.is_err() {
                                break;
                            }
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                };
                flood.record(until_closed(&mut r).await);
                writer.abort();
            }
        }));
    }

    // --- the sloth stops reading; the feeder sends it large messages ---
    let sloth = {
        let tcp = {
            let s = TcpSocket::new_v4().unwrap();
            // A small receive buffer, so that the relay's queue is what fills.
            s.set_recv_buffer_size(4096).unwrap();
            s.bind("127.0.0.6:0".parse().unwrap()).unwrap();
            s.connect(addr).await.unwrap()
        };
        TlsConnector::from(Arc::new(client_config(&pki, "sloth")))
            .connect(
                rustls_pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap()
    };
    let sloth_closed: Arc<Mutex<Option<Duration>>> = Arc::new(Mutex::new(None));
    // Two feeders, each inside its own rate limit, so that the kernel's
    // socket buffers (which can absorb a few MiB) fill within the attack.
    for feeder in ["feeder", "feeder2"] {
        let (pki, stop) = (pki.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let s = tls_as(&pki, feeder, [127, 0, 0, 7], addr).await.unwrap();
            let (mut r, mut w) = tokio::io::split(s);
            // The feeder reads what the relay sends it (statuses, presence).
            tokio::spawn(async move {
                let mut b = vec![0u8; 65536];
                while matches!(r.read(&mut b).await, Ok(n) if n > 0) {}
            });
            while !stop.load(Ordering::Relaxed) {
                // 9 messages of 64 fragments (2.3 MiB), inside the rate limit.
                for _ in 0..9 {
                    let id = random_id();
                    for i in 0..64 {
                        let f = routed(feeder, "sloth", i, 64, id).encode().unwrap();
                        if w.write_all(&f[..]).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5500)).await;
            }
        }));
    }
    let sloth_task = {
        let closed = sloth_closed.clone();
        tokio::spawn(async move {
            // Never reads: only waits for the relay to close the socket, which
            // shows up as the write side failing.
            let start = Instant::now();
            let mut s = sloth;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if start.elapsed() > ATTACK + CLOSE_BOUND {
                    return;
                }
                let ping = Message::Ping(1).encode().unwrap();
                // A write to a connection the relay has closed fails (RST).
                // While the relay merely stops reading, the write blocks.
                if let Ok(Err(_)) =
                    tokio::time::timeout(Duration::from_secs(1), s.write_all(&ping[..])).await
                {
                    *closed.lock().unwrap() = Some(start.elapsed());
                    return;
                }
            }
        })
    };

    // --- the legitimate chat, in a ring, during the attack ---
    let started = Instant::now();
    let mut sent: Vec<(String, String)> = vec![];
    let mut seq = 0;
    let mut received: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    let mut interrupted = vec![];
    while started.elapsed() < ATTACK {
        for (i, u) in LEGIT.iter().enumerate() {
            let to = LEGIT[(i + 1) % LEGIT.len()];
            seq += 1;
            let text = format!("m{seq} {}", now_ms());
            users[u]
                .0
                .send(vec![n(to)], text.clone(), false)
                .await
                .unwrap();
            sent.push((to.to_string(), text));
        }
        let tick = Instant::now() + CHAT_EVERY;
        drain(&mut users, &mut received, &mut interrupted, tick).await;
    }
    stop.store(true, Ordering::Relaxed);
    // Let the last messages arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.values().map(Vec::len).sum::<usize>() < sent.len() && Instant::now() < deadline {
        drain(
            &mut users,
            &mut received,
            &mut interrupted,
            Instant::now() + Duration::from_millis(200),
        )
        .await;
    }
    for t in tasks {
        let _ = tokio::time::timeout(CLOSE_BOUND + Duration::from_secs(2), t).await;
    }
    let _ = sloth_task.await;

    // --- what happened ---
    let mut latencies: Vec<u64> = received.values().flatten().map(|(_, l)| *l).collect();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let peak = peak_kb.load(Ordering::Relaxed) as u64;
    eprintln!(
        "legitimate messages: {} sent, {} received",
        sent.len(),
        latencies.len()
    );
    eprintln!(
        "legitimate latency ms: p50 {} p99 {} max {}",
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    );
    eprintln!("relay RSS: {baseline_kb} KiB before the attack, peak {peak} KiB");
    eprintln!(
        "slowloris connections closed by the relay: {} (left open past {CLOSE_BOUND:?}: {})",
        slow.closed.load(Ordering::Relaxed),
        slow.stuck.load(Ordering::Relaxed)
    );
    for (who, t) in &tallies {
        eprintln!(
            "{who}: {} connections closed by the relay, {} left open",
            t.closed.load(Ordering::Relaxed),
            t.stuck.load(Ordering::Relaxed)
        );
    }
    eprintln!(
        "flooder: {} frames sent, {} connections closed, {} left open",
        flood_sent.load(Ordering::Relaxed),
        flood.closed.load(Ordering::Relaxed),
        flood.stuck.load(Ordering::Relaxed)
    );
    let sloth_closed = *sloth_closed.lock().unwrap();
    eprintln!("sloth closed by the relay after {sloth_closed:?}");

    // Every legitimate message delivered, exactly once, to the right user.
    for (to, text) in &sent {
        let got = received
            .get(to)
            .map_or(0, |v| v.iter().filter(|(t, _)| t == text).count());
        assert_eq!(got, 1, "{to} received {text:?} {got} times");
    }
    assert_eq!(latencies.len(), sent.len());
    assert!(
        interrupted.is_empty(),
        "legitimate sessions interrupted: {interrupted:?}"
    );
    assert!(
        Duration::from_millis(pct(0.99)) < P99_BOUND,
        "legitimate p99 latency {} ms",
        pct(0.99)
    );
    assert!(Duration::from_millis(*latencies.last().unwrap()) < MAX_BOUND);
    assert!(peak < RSS_BOUND_KB, "relay peak RSS {peak} KiB");

    // Every attacker was thrown out, every time, and it shows in the log.
    assert!(slow.closed.load(Ordering::Relaxed) >= 100);
    assert_eq!(
        slow.stuck.load(Ordering::Relaxed),
        0,
        "slowloris outlived the handshake timeout"
    );
    for (who, t) in &tallies {
        assert!(
            t.closed.load(Ordering::Relaxed) >= 2,
            "{who} was not closed"
        );
        assert_eq!(t.stuck.load(Ordering::Relaxed), 0, "{who} stayed connected");
    }
    assert!(flood.closed.load(Ordering::Relaxed) >= 2);
    assert_eq!(flood.stuck.load(Ordering::Relaxed), 0);
    assert!(
        sloth_closed.is_some(),
        "the client that stopped reading was never closed"
    );
    let log = relay.output();
    for needle in [
        "peer=127.0.0.2",
        "peer=127.0.0.3",
        "identity=garbage",
        "identity=oversize",
        "identity=truncate",
        "identity=spoofer",
        "identity=flooder",
        "identity=sloth",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(needle) && l.contains("WARN")),
            "no warning about {needle} in the relay's log"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("identity=sloth") && l.contains("slow reader")),
        "the sloth was not closed as a slow reader"
    );
    assert!(!log.contains("panicked"), "the relay panicked");
}

type Users = HashMap<
    &'static str,
    (
        blindrelay_client::ClientHandle,
        tokio::sync::mpsc::Receiver<Event>,
    ),
>;

/// Collects events of every legitimate user until `until`.
async fn drain(
    users: &mut Users,
    received: &mut HashMap<String, Vec<(String, u64)>>,
    interrupted: &mut Vec<String>,
    until: Instant,
) {
    loop {
        let mut any = false;
        for (u, (_, ev)) in users.iter_mut() {
            while let Ok(e) = ev.try_recv() {
                any = true;
                match e {
                    Event::Message { text, .. } => {
                        let sent_at: u64 = text
                            .split_whitespace()
                            .nth(1)
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(0);
                        received
                            .entry(u.to_string())
                            .or_default()
                            .push((text, now_ms().saturating_sub(sent_at)));
                    }
                    Event::Reconnecting { .. } | Event::Closed { .. } => {
                        interrupted.push(format!("{u}: {e:?}"));
                    }
                    _ => {}
                }
            }
        }
        if Instant::now() >= until {
            return;
        }
        if !any {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
