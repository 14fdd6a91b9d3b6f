//! What the CLI's tests share: the relay process started from this crate's
//! binary, and the README's local setup run command by command.
//! Everything else comes from `blindrelay-testkit`.
#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use blindrelay_testkit::RelayProcess;

pub mod tmux;

/// `blindrelay ARGS...` in `cwd`; panics with its output unless it succeeds.
pub fn must(cwd: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_blindrelay"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "blindrelay {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Enrols `user`'s `device` in `USER-DEVICE` (key made there, CA signs);
/// returns the directory.
pub fn enroll_device(cwd: &Path, user: &str, device: &str) -> String {
    let dir = format!("{user}-{device}");
    must(cwd, &["enroll", user, "--device", device, "--dir", &dir]);
    must(cwd, &["pki", "sign", &format!("{dir}/request.pem")]);
    dir
}

/// The README's quick local setup, which follows the roles: a CA in
/// `blindrelay-ca`, a relay in `blindrelay-relay` with its own key, and a
/// directory `blindrelay-NAME` with its own key for each user.
pub fn setup_roles(cwd: &Path, users: &[&str]) {
    must(cwd, &["pki", "init"]);
    must(cwd, &["enroll-relay"]);
    must(
        cwd,
        &[
            "pki",
            "sign",
            "--relay",
            "blindrelay-relay/server-request.pem",
        ],
    );
    for u in users {
        must(cwd, &["enroll", u]);
        let request = format!("blindrelay-{u}/request.pem");
        must(cwd, &["pki", "sign", &request]);
    }
}

/// `blindrelay serve --listen ADDR EXTRA...` in `cwd`, once it listens.
pub fn start_relay_at(cwd: &Path, addr: &str, extra: &[&str]) -> RelayProcess {
    let mut args = vec!["--listen", addr];
    args.extend_from_slice(extra);
    RelayProcess::start(Path::new(env!("CARGO_BIN_EXE_blindrelay")), cwd, &args, &[]).unwrap()
}

/// The `blindrelay` binary.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_blindrelay"));
    c.env("RUST_BACKTRACE", "1");
    c
}

pub fn run(args: &[&str], cwd: &Path) -> Output {
    bin().args(args).current_dir(cwd).output().unwrap()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A person's mistake: exit 1, one `error:` line, no panic, no backtrace.
pub fn assert_clean_error(o: &Output, needle: &str) {
    let (_, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// `blindrelay chat ARGS` with piped stdin, and its stdout lines, each
/// turned into a `T` by `parse` (lines it refuses are skipped), on a channel.
fn chat_process<T: Send + 'static>(
    cwd: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    parse: fn(String) -> Option<T>,
) -> (Child, std::sync::mpsc::Receiver<T>) {
    let mut child = bin()
        .arg("chat")
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines() {
            let Ok(l) = l else { break };
            if let Some(v) = parse(l)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    (child, rx)
}

/// A `chat --json` process: commands in, events out (on a channel).
pub struct JsonClient {
    pub child: Child,
    pub events: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl JsonClient {
    pub fn start(cwd: &Path, name: &str, addr: &str) -> JsonClient {
        let (child, events) = chat_process(cwd, &[name, "--json", "--server", addr], &[], |l| {
            serde_json::from_str::<serde_json::Value>(&l).ok()
        });
        JsonClient { child, events }
    }

    /// `blindrelay chat ARGS --json`.
    pub fn start_args(cwd: &Path, args: &[&str]) -> JsonClient {
        let mut all = args.to_vec();
        all.push("--json");
        let (child, events) = chat_process(cwd, &all, &[], |l| {
            serde_json::from_str::<serde_json::Value>(&l).ok()
        });
        JsonClient { child, events }
    }

    pub fn next(&self, want: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {want} event"));
            if v["event"] == want {
                return v;
            }
        }
    }

    /// Writes one command line.
    pub fn command(&mut self, json: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{json}").unwrap();
    }

    /// Every event (of any kind) until one of kind `want`, that one included.
    pub fn until(&self, want: &str, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {want} event; got {got:?}"));
            let done = v["event"] == want;
            got.push(v);
            if done {
                return got;
            }
        }
    }

    pub fn quit(mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, r#"{{"cmd":"quit"}}"#);
        }
        let _ = self.child.wait();
    }
}

impl Drop for JsonClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `chat --plain` process: lines in (written as given, in one write),
/// stdout lines out (on a channel).
pub struct LineClient {
    pub child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl LineClient {
    pub fn start(cwd: &Path, name: &str, addr: &str, envs: &[(&str, &str)]) -> LineClient {
        let (child, lines) = chat_process(cwd, &[name, "--plain", "--server", addr], envs, Some);
        LineClient {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Writes `text` to the client's stdin in one write, as a burst of
    /// typing or a paste arrives.
    pub fn write(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The first line (from now) that satisfies `want`.
    pub fn wait(&mut self, what: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line {what} within {timeout:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every line that arrives within `d` (also added to `seen`).
    pub fn gather(&mut self, d: Duration) -> Vec<String> {
        let deadline = Instant::now() + d;
        let mut got = Vec::new();
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(l.clone());
            got.push(l);
        }
        got
    }

    /// Closes stdin (Ctrl-D) and waits for the exit, at most `timeout`.
    pub fn end_of_input(mut self, timeout: Duration) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the client did not leave within {timeout:?} of Ctrl-D");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LineClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
