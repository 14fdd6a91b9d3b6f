//! The machine the harness runs on: its description for the report, the
//! open-file limit, and the RSA bound from `openssl speed`.

/// Descriptors the harness asks for: 10 000 idle connections plus the
/// active pairs on the generator side, and as many on each server (which
/// inherits the limit).
pub const FD_LIMIT: u32 = 65_536;

/// Raises this process's open-file limit to [`FD_LIMIT`] with `prlimit`
/// (util-linux), before any server is started; raising the hard limit
/// needs root. On failure, the current limit stays and the scale runs
/// report how many connections they could open.
pub fn raise_fd_limit() {
    let limit = format!("--nofile={FD_LIMIT}:{FD_LIMIT}");
    let ok = std::process::Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string(), &limit])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "could not raise the open-file limit to {FD_LIMIT} (prlimit, as root); the 10 000-connection run may open fewer"
        );
    }
}

pub fn cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or("unknown memory".into(), |kib| {
            format!("{:.0} GiB RAM", kib as f64 / 1024.0 / 1024.0)
        })
}

/// `openssl speed rsa2048`: (signs/s, verifies/s) on one core.
pub fn openssl_speed_rsa2048() -> Option<(f64, f64)> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "3", "rsa2048"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("rsa 2048 bits"))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.trim_end_matches('s').parse().ok())
        .collect();
    // "rsa 2048 bits 0.000243s 0.000016s 4116.2 61573.2"
    let n = f.len();
    Some((*f.get(n.checked_sub(2)?)?, *f.get(n - 1)?))
}
