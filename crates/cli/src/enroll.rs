//! `blindrelay enroll` and `blindrelay enroll-relay`: a key is born on the
//! machine that will use it, and only a request leaves it.

use std::path::PathBuf;

use anyhow::Result;
use blindrelay_pki::{DeviceKeyKind, DeviceName, Enrolled, RelayDir, Subject, UserDir};
use clap::Args;

use crate::user_name;

/// Default directory of a relay host.
pub(crate) const DEFAULT_RELAY_DIR: &str = "blindrelay-relay";

/// The default directory of user `name`.
pub(crate) fn default_user_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("blindrelay-{name}"))
}

#[derive(Args)]
pub(crate) struct EnrollArgs {
    /// Your user name: 1-32 characters from a-z 0-9 . _ - starting with a
    /// letter or digit.
    name: String,
    /// Your directory [default: blindrelay-NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Enrol a device of NAME (a P-256 key, for MLS) instead of NAME's
    /// identity key (RSA-2048, the report's protocol).
    #[arg(long)]
    device: Option<String>,
    /// With --device: an Ed25519 key, for groups on the hybrid
    /// post-quantum suite (ML-KEM-768 + X25519) instead of P-256 ones.
    #[arg(long, requires = "device")]
    post_quantum: bool,
    /// Make a new request for the key you already have (renewal: your
    /// contacts see no key change).
    #[arg(long)]
    renew: bool,
    /// Encrypt the new key with a passphrase (from --passphrase-file or
    /// BLINDRELAY_PASSPHRASE): PKCS#8, PBKDF2-HMAC-SHA256 and AES-256-CBC.
    #[arg(long)]
    encrypt: bool,
    /// A file holding the passphrase (its first line).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct EnrollRelayArgs {
    /// The relay's directory.
    #[arg(long, default_value = DEFAULT_RELAY_DIR)]
    dir: PathBuf,
    /// DNS name or IP address clients reach the relay at (repeatable)
    /// [default: localhost and 127.0.0.1].
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Make a new request for the key already here.
    #[arg(long)]
    renew: bool,
}

fn said(what: Enrolled) -> &'static str {
    match what {
        Enrolled::NewKey => "created a new private key",
        Enrolled::SameKey => "kept the existing private key",
    }
}

pub(crate) fn run(args: EnrollArgs) -> Result<()> {
    let user = user_name(&args.name)?;
    let dir = UserDir::new(args.dir.unwrap_or_else(|| default_user_dir(&args.name)));
    let subject = match &args.device {
        Some(d) => Subject::Device(user, DeviceName::new(d)?),
        None => Subject::Identity(user),
    };
    let pass = crate::passphrase(args.passphrase_file.as_deref())?;
    if args.encrypt && pass.is_none() {
        anyhow::bail!(
            "--encrypt needs a passphrase: --passphrase-file FILE or {}",
            crate::PASSPHRASE_ENV
        );
    }
    // An existing encrypted key is read with the passphrase; a new key is
    // encrypted only when asked.
    let pass = if args.encrypt || args.renew {
        pass
    } else {
        None
    };
    let kind = if args.post_quantum {
        DeviceKeyKind::Ed25519
    } else {
        DeviceKeyKind::P256
    };
    let what = dir.enroll_device_key(&subject, args.renew, pass.as_ref(), kind)?;
    println!(
        "{} for {subject}: {} (secret, mode 0600{}, never leaves this machine)",
        said(what),
        dir.key_path().display(),
        if args.encrypt { ", encrypted" } else { "" }
    );
    println!(
        "send {} to your CA administrator; put the cert.pem, ca.pem and crl.pem you get back in {}",
        dir.request_path().display(),
        dir.root().display()
    );
    Ok(())
}

pub(crate) fn run_relay(args: EnrollRelayArgs) -> Result<()> {
    let hosts = if args.hosts.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into()]
    } else {
        args.hosts
    };
    let dir = RelayDir::new(&args.dir);
    let what = dir.enroll(&hosts, args.renew)?;
    println!(
        "{} for the relay at {}: {} (secret, mode 0600)",
        said(what),
        hosts.join(", "),
        dir.key_path().display()
    );
    println!(
        "send {} to your CA administrator (`blindrelay pki sign --relay`); put the server.pem, ca.pem and crl.pem you get back in {}",
        dir.request_path().display(),
        dir.root().display()
    );
    Ok(())
}
