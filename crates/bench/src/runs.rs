//! One measured run of a workload against one target: the server started
//! for the run, the pairs connected, its CPU and peak memory read.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use blindrelay_pki::PkiDir;

use crate::load::{self, Measured};
use crate::proto::{self, Identities};
use crate::report::ms;
use crate::target::{self, Kind};
use crate::{SCALE_PAIRS, SCALE_RATE};

pub type RunFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Measured>> + Send + 'static>>;

/// Starts the server, connects N pairs, runs the workload, and measures the
/// server's CPU over the run and its peak memory.
pub async fn one_run(
    k: Kind,
    pki: &PkiDir,
    users: &[String],
    server_cpu: Option<usize>,
    ids: &mut Identities,
    n: usize,
    work: impl FnOnce(Vec<proto::Sender>, Vec<proto::Receiver>) -> RunFuture,
) -> Result<(Measured, f64, u64)> {
    let server = target::start(k, pki, users, server_cpu)?;
    let (s, r) = load::connect_pairs(k, server.addr, ids, n, 0).await?;
    let cpu0 = server.cpu_seconds();
    let m = work(s, r).await?;
    let cpu = server.cpu_seconds() - cpu0;
    let rss = server.peak_rss_kib();
    Ok((m, cpu, rss))
}

#[allow(clippy::too_many_arguments)]
pub async fn scale_run(
    k: Kind,
    pki: &PkiDir,
    users: &[String],
    idle_users: &[String],
    server_cpu: Option<usize>,
    ids: &mut Identities,
    count: usize,
    dur: Duration,
) -> Result<String> {
    let server = target::start(k, pki, users, server_cpu)?;
    let (s, r) = load::connect_pairs(k, server.addr, ids, SCALE_PAIRS, 0).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let t0 = Instant::now();
    let idle = load::open_idle(k, server.addr, ids, idle_users, count).await?;
    let opened = idle.len();
    let open_time = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_idle = server.rss_kib();
    let m = load::open_loop(s, r, SCALE_RATE, dur).await;
    for h in idle {
        h.abort();
    }
    let m = m?;
    let mut line = String::new();
    let _ = write!(
        line,
        "| {k} | {count} | {opened} | {:.1} | {:.1} | {:.1} | {:.1} | {} of {} | {} | {} | {} |",
        open_time.as_secs_f64(),
        before as f64 / 1024.0,
        with_idle as f64 / 1024.0,
        with_idle.saturating_sub(before) as f64 / opened.max(1) as f64,
        m.received,
        m.sent,
        ms(m.latency.value_at_quantile(0.5)),
        ms(m.latency.value_at_quantile(0.99)),
        ms(m.latency.value_at_quantile(0.999)),
    );
    Ok(line)
}
