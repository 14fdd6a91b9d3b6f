//! The workloads: open loop at a fixed rate, closed loop at the highest
//! rate, idle connections at scale, and handshakes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::sync::Notify;

use crate::proto::{self, Identities, Receiver, Sender, Stamp};
use crate::target::Kind;

/// Handshakes in flight at once while opening many connections.
const CONNECT_CONCURRENCY: usize = 32;
/// How long receivers wait for stragglers after the senders stop.
const DRAIN: Duration = Duration::from_secs(3);
/// Messages in flight per pair in the closed loop.
pub const WINDOW: u64 = 16;
/// Keep-alive of idle relay connections (the relay's default asks for 20 s).
const IDLE_PING: Duration = Duration::from_secs(15);

/// The sender and receiver names of pair `i`.
pub fn pair_users(i: usize) -> (String, String) {
    (format!("s{i}"), format!("r{i}"))
}

/// What one run measured.
pub struct Measured {
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered (by the end of the drain).
    pub received: u64,
    /// Messages delivered within the measured interval.
    pub in_window: u64,
    /// The measured interval.
    pub elapsed: Duration,
    /// End-to-end latency, microseconds.
    pub latency: Histogram<u64>,
    /// Open loop: how late sends left against their schedule, microseconds.
    pub schedule_lag: Option<Histogram<u64>>,
}

impl Measured {
    /// Delivered messages per second.
    pub fn rate(&self) -> f64 {
        self.in_window as f64 / self.elapsed.as_secs_f64()
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Connects N pairs (receivers first, so nothing is sent to nobody).
pub async fn connect_pairs(
    kind: Kind,
    addr: SocketAddr,
    ids: &mut Identities,
    n: usize,
    first_pair: usize,
) -> Result<(Vec<Sender>, Vec<Receiver>)> {
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for i in first_pair..first_pair + n {
        let (s, r) = pair_users(i);
        let cfg = ids.config(&r, false)?;
        receivers.push(
            proto::connect(kind, addr, cfg, &r, &format!("{r}-rx"), true)
                .await
                .with_context(|| format!("{kind}: receiver {r}"))?
                .into_receiver(),
        );
        let cfg = ids.config(&s, false)?;
        senders.push(
            proto::connect(kind, addr, cfg, &s, &format!("{s}-tx"), false)
                .await
                .with_context(|| format!("{kind}: sender {s}"))?
                .into_sender(&r)?,
        );
    }
    // Let subscriptions settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok((senders, receivers))
}

/// Open loop: each of the N senders sends at `rate / N` per second for
/// `duration`, on a fixed schedule; latency is measured from the scheduled
/// time, so a stalled server cannot hide its queueing (no coordinated
/// omission).
pub async fn open_loop(
    senders: Vec<Sender>,
    receivers: Vec<Receiver>,
    rate: f64,
    duration: Duration,
) -> Result<Measured> {
    let n = senders.len();
    let per_pair = rate / n as f64;
    let period = Duration::from_secs_f64(1.0 / per_pair);
    let count = (per_pair * duration.as_secs_f64()).round() as u64;
    let epoch = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for (i, mut s) in senders.into_iter().enumerate() {
        // Spread the pairs' schedules over one period.
        let offset = period.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let mut lag = histogram()?;
            for seq in 0..count {
                let at = epoch + offset + period.mul_f64(seq as f64);
                tokio::time::sleep_until(at.into()).await;
                // Stamped when actually sent (tokio's timer has a 1 ms
                // tick); how late that was against the schedule is
                // recorded apart, so a server that stalls its senders
                // shows up there rather than disappearing.
                let now = Instant::now();
                lag.saturating_record(now.saturating_duration_since(at).as_micros() as u64);
                let stamp = Stamp {
                    pair: i as u32,
                    seq,
                    sent_ns: (now - epoch).as_nanos() as u64,
                };
                if s.send(stamp).await.is_err() {
                    break;
                }
                sent += 1;
            }
            anyhow::Ok((sent, s, lag))
        }));
    }
    let deadline = epoch + duration + DRAIN;
    let mut rx = Vec::new();
    for mut r in receivers {
        rx.push(tokio::spawn(async move {
            let mut h = histogram()?;
            let mut got = 0u64;
            while got < count {
                match tokio::time::timeout_at(deadline.into(), r.recv()).await {
                    Ok(Ok(stamp)) => {
                        let now = epoch.elapsed().as_nanos() as u64;
                        h.saturating_record(now.saturating_sub(stamp.sent_ns) / 1000);
                        got += 1;
                    }
                    _ => break,
                }
            }
            anyhow::Ok((got, h, r))
        }));
    }
    let mut sent = 0;
    let mut keep = Vec::new();
    let mut schedule_lag = histogram()?;
    for t in tasks {
        let (s, sender, lag) = t.await??;
        sent += s;
        keep.push(sender);
        schedule_lag.add(lag)?;
    }
    let mut received = 0;
    let mut latency = histogram()?;
    // Every connection stays open until the run is over: a pair that
    // finishes early must not disturb the others (on the relay, its
    // departure is a presence event for everyone).
    let mut keep_rx = Vec::new();
    for t in rx {
        let (got, h, r) = t.await??;
        received += got;
        latency.add(h)?;
        keep_rx.push(r);
    }
    drop(keep);
    drop(keep_rx);
    Ok(Measured {
        sent,
        received,
        in_window: received,
        elapsed: duration,
        latency,
        schedule_lag: Some(schedule_lag),
    })
}

/// Closed loop: each pair keeps [`WINDOW`] messages in flight for
/// `duration`; the rate is whatever the server sustains.
pub async fn closed_loop(
    senders: Vec<Sender>,
    receivers: Vec<Receiver>,
    duration: Duration,
) -> Result<Measured> {
    let epoch = Instant::now();
    let end = epoch + duration;
    let mut tasks = Vec::new();
    let mut rx = Vec::new();
    for (i, (mut s, mut r)) in senders.into_iter().zip(receivers).enumerate() {
        let got = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        {
            let (got, sent, done, wake) = (got.clone(), sent.clone(), done.clone(), wake.clone());
            tasks.push(tokio::spawn(async move {
                let mut seq = 0u64;
                while Instant::now() < end {
                    if seq >= got.load(Ordering::Acquire) + WINDOW {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(50), wake.notified()).await;
                        continue;
                    }
                    let stamp = Stamp {
                        pair: i as u32,
                        seq,
                        sent_ns: epoch.elapsed().as_nanos() as u64,
                    };
                    if s.send(stamp).await.is_err() {
                        break;
                    }
                    seq += 1;
                    sent.store(seq, Ordering::Release);
                }
                done.store(true, Ordering::Release);
                (seq, s)
            }));
        }
        rx.push(tokio::spawn(async move {
            let mut h = histogram()?;
            let mut in_time = 0u64;
            loop {
                if done.load(Ordering::Acquire)
                    && got.load(Ordering::Acquire) >= sent.load(Ordering::Acquire)
                {
                    break;
                }
                match tokio::time::timeout_at((end + DRAIN).into(), r.recv()).await {
                    Ok(Ok(stamp)) => {
                        let now = epoch.elapsed().as_nanos() as u64;
                        h.saturating_record(now.saturating_sub(stamp.sent_ns) / 1000);
                        if Instant::now() <= end {
                            in_time += 1;
                        }
                        got.fetch_add(1, Ordering::Release);
                        wake.notify_one();
                    }
                    _ => break,
                }
            }
            anyhow::Ok((in_time, got.load(Ordering::Acquire), h, r))
        }));
    }
    let mut sent = 0;
    let mut keep = Vec::new();
    for t in tasks {
        let (s, sender) = t.await?;
        sent += s;
        keep.push(sender);
    }
    let mut in_window = 0;
    let mut received = 0;
    let mut latency = histogram()?;
    let mut keep_rx = Vec::new();
    for t in rx {
        let (in_time, all, h, r) = t.await??;
        in_window += in_time;
        received += all;
        latency.add(h)?;
        keep_rx.push(r);
    }
    drop(keep);
    drop(keep_rx);
    Ok(Measured {
        sent,
        received,
        in_window,
        elapsed: duration,
        latency,
        schedule_lag: None,
    })
}

/// Opens `count` idle authenticated connections, spread over `identities`
/// users, and keeps them alive in background tasks.
pub async fn open_idle(
    kind: Kind,
    addr: SocketAddr,
    ids: &mut Identities,
    identities: &[String],
    count: usize,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = Vec::new();
    for i in 0..count {
        let user = identities
            .get(i % identities.len().max(1))
            .context("no idle identities")?
            .clone();
        let cfg = ids.config(&user, false)?;
        let permit = sem.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let c = proto::connect(kind, addr, cfg, &user, &format!("{user}-idle{i}"), true).await;
            drop(permit);
            c.ok().map(|c| tokio::spawn(c.idle(IDLE_PING)))
        }));
    }
    // The caller aborts these when the run is over, which closes the
    // connections at once (they would otherwise live until a keep-alive
    // failed, holding thousands of descriptors into the next run).
    let mut open = Vec::new();
    for t in tasks {
        if let Some(h) = t.await? {
            open.push(h);
        }
    }
    Ok(open)
}

/// Handshakes per second with `concurrency` connectors for `duration`:
/// (handshakes, resumed, errors).
pub async fn handshakes(
    kind: Kind,
    addr: SocketAddr,
    ids: &mut Identities,
    users: &[String],
    resume: bool,
    concurrency: usize,
    duration: Duration,
) -> Result<(u64, u64, u64)> {
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let user = users.get(i % users.len().max(1)).context("no users")?;
        let cfg = ids.config(user, resume)?;
        tasks.push(tokio::spawn(async move {
            let (mut done, mut resumed, mut errors) = (0u64, 0u64, 0u64);
            while Instant::now() < end {
                match proto::handshake(kind, addr, cfg.clone()).await {
                    Ok((tls, r)) => {
                        done += 1;
                        resumed += u64::from(r);
                        if resume {
                            // TLS 1.3 tickets arrive after the handshake:
                            // read briefly so the client can store one.
                            let mut tls = tls;
                            let mut b = [0u8; 1];
                            let _ = tokio::time::timeout(
                                Duration::from_millis(2),
                                tokio::io::AsyncReadExt::read(&mut tls, &mut b),
                            )
                            .await;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (done, resumed, errors)
        }));
    }
    let mut total = (0, 0, 0);
    for t in tasks {
        let (d, r, e) = t.await?;
        total.0 += d;
        total.1 += r;
        total.2 += e;
    }
    Ok(total)
}
