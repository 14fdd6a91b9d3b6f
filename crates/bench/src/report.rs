//! The Markdown tables the harness prints (and writes with `--out`).

use anyhow::Result;

use crate::load::Measured;
use crate::target::Kind;

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// The report being written.
pub struct Report {
    pub text: String,
    /// Runs that failed (shown in their table row); the harness exits
    /// non-zero if any did, so a smoke run in CI fails loudly.
    pub failed: usize,
}

impl Report {
    /// A failed run's row.
    pub fn failure(&mut self, s: &str) {
        self.failed += 1;
        self.line(s);
    }

    /// One line, printed and kept.
    pub fn line(&mut self, s: &str) {
        println!("{s}");
        self.text.push_str(s);
        self.text.push('\n');
    }
}

pub fn throughput_header(rep: &mut Report) {
    rep.line("| target | N pairs | offered msg/s | delivered msg/s | lost | p50 ms | p99 ms | p99.9 ms | send lag p99 ms | server CPU s / 100k msg | server peak RSS MiB |");
    rep.line("|---|---|---|---|---|---|---|---|---|---|---|");
}

pub fn throughput_row(
    rep: &mut Report,
    k: Kind,
    n: usize,
    offered: Option<f64>,
    row: Result<(Measured, f64, u64)>,
) {
    let offered = offered.map_or("max".to_string(), |r| format!("{r:.0}"));
    match row {
        Ok((m, cpu, rss)) => {
            let lost = m.sent.saturating_sub(m.received);
            rep.line(&format!(
                "| {k} | {n} | {offered} | {:.0} | {lost} of {} | {} | {} | {} | {} | {:.2} | {:.1} |",
                m.rate(),
                m.sent,
                ms(m.latency.value_at_quantile(0.5)),
                ms(m.latency.value_at_quantile(0.99)),
                ms(m.latency.value_at_quantile(0.999)),
                m.schedule_lag
                    .as_ref()
                    .map_or("-".into(), |h| ms(h.value_at_quantile(0.99))),
                cpu / m.received.max(1) as f64 * 100_000.0,
                rss as f64 / 1024.0
            ));
        }
        Err(e) => rep.failure(&format!("| {k} | {n} | {offered} | error: {e:#} |")),
    }
}
