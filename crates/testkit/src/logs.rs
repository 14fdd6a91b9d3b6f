//! The process's `tracing` output, captured for assertions: installed once
//! per test binary (the first call wins), kept in memory.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::{KitError, WAIT};

/// The filter of the captured logs: every blindrelay crate at debug, and
/// the security target.
pub const FILTER: &str =
    "blindrelay=debug,blindrelay_server=debug,blindrelay_client=debug,blindrelay_net=debug";

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per process).
pub fn capture() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Writer(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(FILTER)
            .with_writer(move || w.clone())
            .try_init();
        buf
    });
}

/// Everything captured so far.
pub fn text() -> String {
    match LOGS.get() {
        Some(b) => {
            String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        }
        None => String::new(),
    }
}

/// Waits until one captured line contains every needle; returns it.
pub async fn wait_for(needles: &[&str]) -> Result<String, KitError> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(l) = text()
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
        {
            return Ok(l.to_string());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(KitError::Timeout {
                who: "logs".into(),
                what: format!("a line with {needles:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
