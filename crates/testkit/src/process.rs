//! The relay as a separate process: `blindrelay serve` started from a given
//! binary (the CLI's tests pass `CARGO_BIN_EXE_blindrelay`), its standard
//! output and error captured line by line, killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::KitError;

/// How long the relay has to print its "listening on" banner.
pub const START_WAIT: Duration = Duration::from_secs(30);

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `blindrelay serve`.
pub struct RelayProcess {
    /// The child process.
    pub child: Child,
    /// Where it listens, as its banner said.
    pub addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RelayProcess {
    /// Runs `bin serve ARGS...` in `cwd` with `RUST_LOG=info` (unless
    /// `envs` says otherwise) and waits for its banner.
    pub fn start(
        bin: &Path,
        cwd: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Self, KitError> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = std::sync::mpsc::channel::<String>();
        let outputs: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
        ];
        for out in outputs.into_iter().flatten() {
            let lines = lines.clone();
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    // Recorded before the banner is announced, so `output()`
                    // right after `start` always holds the banner line.
                    let addr = l
                        .split_once("listening on ")
                        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default())
                        .map(str::to_string);
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(l);
                    if let Some(addr) = addr {
                        let _ = ready_tx.send(addr);
                    }
                }
            });
        }
        let addr = match ready.recv_timeout(START_WAIT) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let output = lines.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
                return Err(KitError::Timeout {
                    who: "blindrelay serve".into(),
                    what: format!("its banner; it printed:\n{output}"),
                });
            }
        };
        Ok(Self { child, addr, lines })
    }

    /// Everything it printed so far, both streams, one line each.
    pub fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
