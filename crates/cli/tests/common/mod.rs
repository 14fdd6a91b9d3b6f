//! What the CLI's tests share: the relay process started from this crate's
//! binary. Everything else comes from `blindrelay-testkit`.

use std::path::Path;

use blindrelay_testkit::RelayProcess;

/// `blindrelay serve --listen ADDR EXTRA...` in `cwd`, once it listens.
pub fn start_relay_at(cwd: &Path, addr: &str, extra: &[&str]) -> RelayProcess {
    let mut args = vec!["--listen", addr];
    args.extend_from_slice(extra);
    RelayProcess::start(Path::new(env!("CARGO_BIN_EXE_blindrelay")), cwd, &args, &[]).unwrap()
}
