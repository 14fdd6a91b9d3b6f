//! What the CLI's tests share: the relay process started from this crate's
//! binary, and the README's local setup run command by command.
//! Everything else comes from `blindrelay-testkit`.
#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::Command;

use blindrelay_testkit::RelayProcess;

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
