//! `blindrelay-bench`: blindrelay's relay, mosquitto and nats-server side by
//! side on loopback, driven by the same Rust client code (tokio + rustls,
//! TLS 1.3 with client certificates from one private CA).
//!
//! The harness creates the PKI, writes each server's configuration, starts
//! each server for each run (so that its peak memory is the run's), stops it
//! by process id, and prints Markdown tables. See BENCHMARKS.md.
//!
//! `blindrelay-bench --quick` is a smoke run of well under a minute;
//! without it the full run takes several minutes.

mod load;
mod machine;
mod mqtt;
mod proto;
mod report;
mod runs;
mod target;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_wire::UserName;
use clap::{Parser, Subcommand};

use crate::machine::{cpu_model, cpus, mem_total, openssl_speed_rsa2048, raise_fd_limit};
use crate::proto::Identities;
use crate::report::{Report, throughput_header, throughput_row};
use crate::runs::{one_run, scale_run};
use crate::target::Kind;

#[derive(Parser)]
#[command(
    version,
    about = "Benchmark blindrelay's relay against mosquitto and nats-server"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Small N and short runs: a smoke check in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Targets, comma-separated: blindrelay, mosquitto, nats-server, and
    /// blindrelay-mem (the relay with its store in memory, a diagnostic).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "blindrelay,mosquitto,nats-server"
    )]
    targets: Vec<String>,
    /// Workloads, comma-separated: open, closed, scale, handshake.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "open,closed,scale,handshake"
    )]
    only: Vec<String>,
    /// Seconds per measured run [default: 8, or 1 with --quick].
    #[arg(long)]
    seconds: Option<f64>,
    /// Do not pin the server to CPU 0 and the load generator to CPU 1.
    #[arg(long)]
    no_pin: bool,
    /// Also write the tables to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// (internal) Run blindrelay's relay, exactly as `blindrelay serve`
    /// does, with the durable SQLite store.
    ServeRelay {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::ServeRelay {
        dir,
        config,
        store,
        listen,
    }) = cli.cmd
    {
        return serve_relay(dir, config, store, listen);
    }
    raise_fd_limit();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !cli.no_pin && cpus >= 2;
    if pin {
        // The generator on CPU 1 (all its threads, set before the runtime
        // starts them); each server is started under `taskset -c 0`.
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .context("taskset (util-linux) is needed to pin; use --no-pin")?;
        if !status.success() {
            return Err(anyhow!("taskset failed; use --no-pin"));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli, pin))
}

fn serve_relay(
    dir: PathBuf,
    config: PathBuf,
    store: PathBuf,
    listen: std::net::SocketAddr,
) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut cfg = blindrelay_server::Config::from_file(&config)?;
        cfg.listen = listen;
        let store = if store.as_os_str() == ":memory:" {
            blindrelay_server::store::sqlite::SqliteStore::in_memory()?
        } else {
            blindrelay_server::store::sqlite::SqliteStore::open(&store)?
        };
        let server =
            blindrelay_server::Server::bind_with_store(cfg, PkiDir::new(&dir), store).await?;
        server
            .run(async {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    term.recv().await;
                }
            })
            .await;
        anyhow::Ok(())
    })
}

struct Plan {
    seconds: f64,
    rates: Vec<f64>,
    pairs: Vec<usize>,
    idle: Vec<usize>,
    handshake_seconds: f64,
}

impl Plan {
    fn new(quick: bool, seconds: Option<f64>) -> Plan {
        if quick {
            Plan {
                seconds: seconds.unwrap_or(1.0),
                rates: vec![5000.0],
                pairs: vec![1, 8],
                idle: vec![200],
                handshake_seconds: 0.5,
            }
        } else {
            Plan {
                seconds: seconds.unwrap_or(8.0),
                rates: vec![1000.0, 5000.0, 20000.0],
                pairs: vec![1, 8, 64],
                idle: vec![1000, 10000],
                handshake_seconds: 5.0,
            }
        }
    }
}

/// Idle identities for the connection-scale runs.
const IDLE_IDENTITIES: usize = 20;
/// Active pairs during the connection-scale runs, and their total rate.
const SCALE_PAIRS: usize = 8;
const SCALE_RATE: f64 = 1000.0;
/// Connectors running handshakes at once.
const HANDSHAKE_CONCURRENCY: usize = 32;

fn parse_targets(names: &[String]) -> Result<Vec<Kind>> {
    names
        .iter()
        .map(|t| match t.as_str() {
            "blindrelay" | "relay" => Ok(Kind::Relay),
            "blindrelay-mem" => Ok(Kind::RelayMem),
            "mosquitto" => Ok(Kind::Mosquitto),
            "nats-server" | "nats" => Ok(Kind::Nats),
            other => Err(anyhow!("unknown target {other}")),
        })
        .collect()
}

async fn run(cli: Cli, pin: bool) -> Result<()> {
    let started = Instant::now();
    let plan = Plan::new(cli.quick, cli.seconds);
    let mut targets = parse_targets(&cli.targets)?;
    // Under CI (BLINDRELAY_CI set) a missing peer is an error, not a skip.
    if std::env::var_os("BLINDRELAY_CI").is_some()
        && let Some(k) = targets.iter().find(|k| !target::available(**k))
    {
        return Err(anyhow!("{k} is not installed (BLINDRELAY_CI is set)"));
    }
    targets.retain(|k| {
        let ok = target::available(*k);
        if !ok {
            eprintln!("skipping {k}: not installed (apt-get install mosquitto nats-server)");
        }
        ok
    });
    let dur = Duration::from_secs_f64(plan.seconds);
    let server_cpu = pin.then_some(0);
    let max_pairs = plan
        .pairs
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(SCALE_PAIRS);

    // --- the PKI (the same CA and certificates for every target) ---
    eprintln!(
        "creating the PKI ({} users)...",
        2 * max_pairs + IDLE_IDENTITIES
    );
    let pki_dir = tempfile::tempdir()?;
    let pki = PkiDir::new(pki_dir.path());
    pki.init("bench CA", false)?;
    pki.issue_relay(&["localhost".into(), "127.0.0.1".into()])?;
    let mut users = Vec::new();
    for i in 0..max_pairs {
        let (s, r) = load::pair_users(i);
        users.push(s);
        users.push(r);
    }
    let idle_users: Vec<String> = (0..IDLE_IDENTITIES).map(|i| format!("i{i}")).collect();
    users.extend(idle_users.iter().cloned());
    for u in &users {
        let name = UserName::new(u).map_err(|e| anyhow!("{e}"))?;
        pki.issue(&name, &UserCertOptions::valid_for_days(2), false)?;
    }
    let mut ids = Identities::new(&pki)?;

    let mut rep = Report {
        text: String::new(),
        failed: 0,
    };
    rep.line("# blindrelay-bench results");
    rep.line("");
    rep.line(&format!(
        "Machine: {} CPUs ({}), {}. Pinning: {}.",
        cpus(),
        cpu_model(),
        mem_total(),
        if pin {
            "server on CPU 0 (`taskset -c 0`), load generator on CPU 1"
        } else {
            "none"
        }
    ));
    for k in &targets {
        rep.line(&format!("- {k}: {}", target::version(*k)));
    }
    rep.line(&format!(
        "Runs of {:.1} s; 4096-byte payloads; TLS 1.3 with client certificates for every target.",
        plan.seconds
    ));
    rep.line("");

    let only = |w: &str| cli.only.iter().any(|o| o == w);

    if only("open") {
        rep.line("## Open loop (fixed total rate; latency from the moment each message is written; the send-lag column is how late the generator wrote it against its schedule)");
        rep.line("");
        throughput_header(&mut rep);
        for &rate in &plan.rates {
            for &n in &plan.pairs {
                for &k in &targets {
                    let row = one_run(k, &pki, &users, server_cpu, &mut ids, n, |s, r| {
                        Box::pin(load::open_loop(s, r, rate, dur))
                    })
                    .await;
                    throughput_row(&mut rep, k, n, Some(rate), row);
                }
            }
        }
        rep.line("");
    }

    let mut closed: Vec<(Kind, usize, f64)> = Vec::new();
    if only("closed") {
        rep.line(&format!(
            "## Closed loop ({} messages in flight per pair: the highest rate each target sustains)",
            load::WINDOW
        ));
        rep.line("");
        throughput_header(&mut rep);
        for &n in &plan.pairs {
            for &k in &targets {
                let row = one_run(k, &pki, &users, server_cpu, &mut ids, n, |s, r| {
                    Box::pin(load::closed_loop(s, r, dur))
                })
                .await;
                if let Ok((m, _, _)) = &row {
                    closed.push((k, n, m.rate()));
                }
                throughput_row(&mut rep, k, n, None, row);
            }
        }
        rep.line("");
        rep.line("Ratios (delivered msg/s, closed loop):");
        rep.line("");
        rep.line("| N | blindrelay / mosquitto | blindrelay / nats-server |");
        rep.line("|---|---|---|");
        for &n in &plan.pairs {
            let get = |k: Kind| {
                closed
                    .iter()
                    .find(|(kk, nn, _)| *kk == k && *nn == n)
                    .map(|x| x.2)
            };
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            };
            rep.line(&format!(
                "| {n} | {} | {} |",
                ratio(get(Kind::Relay), get(Kind::Mosquitto)),
                ratio(get(Kind::Relay), get(Kind::Nats))
            ));
        }
        rep.line("");
    }

    if only("scale") {
        rep.line(&format!(
            "## Connection scale (idle authenticated connections while {SCALE_PAIRS} pairs chat at {SCALE_RATE} msg/s)"
        ));
        rep.line("");
        rep.line("| target | idle connections | opened | open time s | server RSS before MiB | with idle MiB | KiB per connection | active delivered | active p50 ms | p99 ms | p99.9 ms |");
        rep.line("|---|---|---|---|---|---|---|---|---|---|---|");
        for &count in &plan.idle {
            for &k in &targets {
                match scale_run(
                    k,
                    &pki,
                    &users,
                    &idle_users,
                    server_cpu,
                    &mut ids,
                    count,
                    dur,
                )
                .await
                {
                    Ok(s) => rep.line(&s),
                    Err(e) => rep.failure(&format!("| {k} | {count} | error: {e:#} |")),
                }
            }
        }
        rep.line("");
    }

    if only("handshake") {
        rep.line(&format!(
            "## Handshakes (full mutual-TLS 1.3 handshakes, {HANDSHAKE_CONCURRENCY} connectors)"
        ));
        rep.line("");
        rep.line("| target | client resumption | handshakes/s | resumed | errors | server CPU ms per handshake | generator CPU ms per handshake |");
        rep.line("|---|---|---|---|---|---|---|");
        let hs_users: Vec<String> = users.iter().take(8).cloned().collect();
        for resume in [false, true] {
            for &k in &targets {
                let server = match target::start(k, &pki, &users, server_cpu) {
                    Ok(s) => s,
                    Err(e) => {
                        rep.failure(&format!("| {k} | error: {e:#} |"));
                        continue;
                    }
                };
                let cpu0 = server.cpu_seconds();
                let gen0 = target::own_cpu_seconds();
                let t = Duration::from_secs_f64(plan.handshake_seconds);
                let res = load::handshakes(
                    k,
                    server.addr,
                    &mut ids,
                    &hs_users,
                    resume,
                    HANDSHAKE_CONCURRENCY,
                    t,
                )
                .await;
                let cpu = server.cpu_seconds() - cpu0;
                let gen_cpu = target::own_cpu_seconds() - gen0;
                match res {
                    Ok((done, resumed, errors)) => {
                        if done == 0 {
                            rep.failed += 1;
                        }
                        rep.line(&format!(
                            "| {k} | {} | {:.0} | {:.0}% | {errors} | {:.3} | {:.3} |",
                            if resume { "on" } else { "off" },
                            done as f64 / t.as_secs_f64(),
                            100.0 * resumed as f64 / done.max(1) as f64,
                            1000.0 * cpu / done.max(1) as f64,
                            1000.0 * gen_cpu / done.max(1) as f64
                        ))
                    }
                    Err(e) => rep.failure(&format!("| {k} | error: {e:#} |")),
                }
            }
        }
        rep.line("");
        if let Some((sign, verify)) = openssl_speed_rsa2048() {
            rep.line(&format!(
                "`openssl speed rsa2048` on this machine: {sign:.0} signs/s, {verify:.0} verifies/s (one core). \
                 A full mutual-TLS handshake costs the client one RSA-2048 signature, so one \
                 generator core bounds the rate at {sign:.0}/s; the target is at least half: {:.0}/s.",
                sign / 2.0
            ));
            rep.line("");
        }
    }
    rep.line(&format!(
        "Total harness time: {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    if let Some(out) = &cli.out {
        std::fs::write(out, &rep.text)?;
    }
    if rep.failed > 0 {
        return Err(anyhow!("{} runs failed (see the tables)", rep.failed));
    }
    Ok(())
}
