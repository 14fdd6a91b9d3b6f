//! The servers under test: their configuration files, their processes, and
//! what `/proc` says about them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use blindrelay_pki::PkiDir;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// blindrelay's relay (this binary, `serve-relay`, in a child process)
    /// with its durable store (SQLite, synchronous=FULL), as deployed.
    Relay,
    /// The same relay with its store in memory (SQLite `:memory:`): not a
    /// deployment option, a diagnostic that separates the cost of
    /// durability from the cost of relaying.
    RelayMem,
    /// mosquitto (MQTT 3.1.1 over TLS 1.3).
    Mosquitto,
    /// nats-server (NATS over TLS 1.3).
    Nats,
}

impl Kind {
    /// The wire protocol this target speaks.
    pub fn protocol(self) -> Kind {
        match self {
            Kind::RelayMem => Kind::Relay,
            k => k,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Relay => "blindrelay",
            Kind::RelayMem => "blindrelay (store in memory)",
            Kind::Mosquitto => "mosquitto",
            Kind::Nats => "nats-server",
        })
    }
}

/// The relay's limits for the benchmark, as a TOML config. Only abuse limits
/// that would otherwise cap one identity at 2 messages per second are
/// raised; TLS 1.3, client certificates, 4096-byte records and the durable
/// store (SQLite, synchronous=FULL) are as in production.
pub const RELAY_BENCH_CONFIG: &str = "\
rate_max_messages = 65000
rate_window_ms = 1000
ack_rate_max = 65000
login_rate_max = 65000
max_sessions_per_identity = 20000
max_connections = 20000
max_handshakes_per_ip = 1024
";

/// A running server process.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped by process id: SIGTERM, then SIGKILL.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `kind` on a fresh loopback port with the shared PKI. `pin` is the
/// CPU the server is confined to (with `taskset`), if any.
pub fn start(kind: Kind, pki: &PkiDir, users: &[String], pin: Option<usize>) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let root = pki.root().to_path_buf();
    let (prog, args): (PathBuf, Vec<String>) = match kind {
        Kind::Relay | Kind::RelayMem => {
            let cfg = dir.path().join("relay.toml");
            let store = if kind == Kind::RelayMem {
                ":memory:".to_string()
            } else {
                dir.path().join("relay.db").display().to_string()
            };
            std::fs::write(&cfg, RELAY_BENCH_CONFIG)?;
            (
                std::env::current_exe()?,
                vec![
                    "serve-relay".into(),
                    "--dir".into(),
                    root.display().to_string(),
                    "--config".into(),
                    cfg.display().to_string(),
                    "--store".into(),
                    store,
                    "--listen".into(),
                    addr.to_string(),
                ],
            )
        }
        Kind::Mosquitto => {
            let acl = dir.path().join("acl");
            // Each user reads only its own inbox; anyone may publish to any inbox.
            // (`pattern` lines apply to every user; a `topic` line before any
            // `user` line would apply to anonymous clients only.)
            std::fs::write(&acl, "pattern read inbox/%u\npattern write inbox/#\n")?;
            let conf = dir.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!(
                    // As root, mosquitto would switch to the `mosquitto`
                    // user, which cannot read the 0600 server key.
                    "user root\n\
                     per_listener_settings false\n\
                     persistence false\n\
                     log_dest stderr\n\
                     log_type error\n\
                     log_type warning\n\
                     max_connections -1\n\
                     max_queued_messages 100000\n\
                     acl_file {acl}\n\
                     listener {port} 127.0.0.1\n\
                     tls_version tlsv1.3\n\
                     cafile {ca}\n\
                     certfile {cert}\n\
                     keyfile {key}\n\
                     require_certificate true\n\
                     use_identity_as_username true\n",
                    acl = acl.display(),
                    ca = pki.ca_cert_path().display(),
                    cert = pki.server_cert_path().display(),
                    key = pki.server_key_path().display(),
                ),
            )?;
            (
                "mosquitto".into(),
                vec!["-c".into(), conf.display().to_string()],
            )
        }
        Kind::Nats => {
            let conf = dir.path().join("nats.conf");
            let mut users_conf = String::new();
            for u in users {
                users_conf.push_str(&format!(
                    "    {{ user: \"CN={u}\", permissions: {{ publish: \"inbox.>\", subscribe: \"inbox.{u}\" }} }}\n"
                ));
            }
            std::fs::write(
                &conf,
                format!(
                    "listen: 127.0.0.1:{port}\n\
                     max_connections: 100000\n\
                     tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  ca_file: \"{ca}\"\n  verify_and_map: true\n  timeout: 10\n}}\n\
                     authorization {{\n  users = [\n{users_conf}  ]\n}}\n",
                    ca = pki.ca_cert_path().display(),
                    cert = pki.server_cert_path().display(),
                    key = pki.server_key_path().display(),
                ),
            )?;
            (
                "nats-server".into(),
                vec!["-c".into(), conf.display().to_string()],
            )
        }
    };
    let mut cmd = match pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(&prog);
            c
        }
        None => Command::new(&prog),
    };
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(
            dir.path().join("server.log"),
        )?));
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", prog.display()))?;
    let mut server = Server {
        addr,
        child,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log =
                std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
            bail!("{kind} exited at start ({status}): {log}");
        }
        if Instant::now() > deadline {
            bail!("{kind} did not start listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

impl Server {
    /// CPU seconds (user + system) the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.child.id())
    }

    /// Peak resident memory (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    /// Current resident memory (VmRSS), KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmRSS:")
    }
}

/// CPU seconds (user + system) this process (the load generator) has used.
pub fn own_cpu_seconds() -> f64 {
    proc_cpu_seconds(std::process::id())
}

fn proc_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: u64 = [11usize, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|x| x.parse::<u64>().ok()))
        .sum();
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The version line a peer prints, for the report.
pub fn version(kind: Kind) -> String {
    let out = match kind {
        Kind::Relay | Kind::RelayMem => {
            return format!("blindrelay {}", env!("CARGO_PKG_VERSION"));
        }
        Kind::Mosquitto => Command::new("mosquitto").arg("-h").output(),
        Kind::Nats => Command::new("nats-server").arg("--version").output(),
    };
    out.ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "not installed".into())
}

/// Whether the program for `kind` can be started.
pub fn available(kind: Kind) -> bool {
    match kind {
        Kind::Relay | Kind::RelayMem => true,
        Kind::Mosquitto => Command::new("mosquitto").arg("-h").output().is_ok(),
        Kind::Nats => Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok(),
    }
}
