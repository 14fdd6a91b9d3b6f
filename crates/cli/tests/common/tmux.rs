//! The full-screen client in a real pseudo-terminal (tmux): keys sent
//! with `send-keys`, the screen read with `capture-pane`.
//!
//! Elsewhere than CI a missing tmux skips these tests, saying `SKIPPED`;
//! `.ci/run` installs it and sets `BLINDRELAY_CI=1`, under which a missing
//! tmux fails them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a screen may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of its own, with one window running a command.
pub struct Tmux {
    socket: String,
}

pub fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = "tmux is missing (apt-get install tmux)";
        if std::env::var_os("BLINDRELAY_CI").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIPPED full-screen client test: {why}");
    }
    ok
}

impl Tmux {
    /// Runs `blindrelay ARGS` in a `width` x `height` terminal in `cwd`;
    /// when it exits the window says `EXITED:<code>` and stays.
    pub fn start(cwd: &Path, args: &str, width: u16, height: u16) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let socket = format!(
            "blindrelay-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let cmd = format!(
            "{} {args}; echo EXITED:$?; sleep 600",
            env!("CARGO_BIN_EXE_blindrelay")
        );
        let t = Tmux { socket };
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            cwd.to_str().unwrap(),
            "-e",
            "TZ=UTC",
            "sh",
            "-c",
            &cmd,
        ]);
        t
    }

    pub fn run(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Keys, in tmux's names (`Enter`, `Tab`, `C-f`, `PPage`) or as text.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// A bracketed paste of `text`, as a terminal sends a paste.
    pub fn paste(&self, text: &str) {
        self.run(&["set-buffer", "--", text]);
        self.run(&["paste-buffer", "-p", "-t", "t"]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// The screen once `want` holds for it.
    pub fn wait(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if want(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {what}:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn resize(&self, width: u16, height: u16) {
        self.run(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}
