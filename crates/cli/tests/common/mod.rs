//! Helpers shared by the CLI integration tests: the binary and a relay
//! process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `blindrelay` binary.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_blindrelay"));
    c.env("RUST_BACKTRACE", "1");
    c
}

/// A relay process, killed on drop.
pub struct Relay {
    pub child: Child,
    pub addr: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `blindrelay serve --listen ADDR EXTRA...` in `cwd` and waits for
/// its "listening on" line.
pub fn start_relay_at(cwd: &Path, addr: &str, extra: &[&str]) -> Relay {
    let mut args = vec!["serve", "--listen", addr];
    args.extend_from_slice(extra);
    let mut child = bin()
        .args(&args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "relay exited");
        if l.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in out.lines() {});
    Relay {
        child,
        addr: addr.to_string(),
    }
}
