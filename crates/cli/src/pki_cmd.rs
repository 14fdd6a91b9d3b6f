//! `blindrelay pki`: the administrator's commands, run on the CA's machine.
//!
//! The CA's directory holds `ca-key.pem` and no other private key: users
//! and relays make their own keys (`blindrelay enroll`, `enroll-relay`) and
//! send a request; `pki sign` checks it and writes the certificate, with
//! `ca.pem` and `crl.pem`, next to the request (or to `--out`). Only `pki
//! issue` still makes a key here, for throwaway setups, and says so.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use blindrelay_pki::ca::{DEFAULT_USER_VALIDITY_DAYS, MAX_VALIDITY_DAYS, SERVER_VALIDITY_DAYS};
use blindrelay_pki::cert::serial_hex;
use blindrelay_pki::store::{PUBLIC_FILE_MODE, write_file};
use blindrelay_pki::{CheckedRequest, DeviceName, Expect, PkiDir, Subject, UserDir};
use clap::{Args, Subcommand};

use crate::user_name;

/// Default directory of the CA.
pub(crate) const DEFAULT_CA_DIR: &str = "blindrelay-ca";
/// Default CA name.
pub(crate) const DEFAULT_CA_NAME: &str = "blindrelay Root CA";

/// Where the CA lives.
#[derive(Args, Clone)]
pub(crate) struct CaDir {
    /// The CA's directory (keep it offline: it holds the CA's key).
    #[arg(long = "dir", default_value = DEFAULT_CA_DIR)]
    pub dir: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the root CA (ECDSA P-384) and an empty CRL.
    Init {
        #[command(flatten)]
        ca: CaDir,
        /// Common Name of the root CA.
        #[arg(long, default_value = DEFAULT_CA_NAME)]
        ca_name: String,
        /// Replace an existing CA (every certificate it issued becomes
        /// useless, and its records are moved aside).
        #[arg(long)]
        force: bool,
    },
    /// Check a certificate request and sign it: writes the certificate
    /// (cert.pem, or server.pem for a relay), ca.pem and crl.pem next to the
    /// request, or in --out.
    Sign {
        /// The request (request.pem from `enroll`, server-request.pem from
        /// `enroll-relay`).
        request: PathBuf,
        #[command(flatten)]
        ca: CaDir,
        /// The request is a relay's (its certificate is for serving TLS).
        #[arg(long)]
        relay: bool,
        /// Replace the certificate in force for this name or device (a
        /// renewal; with a new key, the old certificate is revoked).
        #[arg(long)]
        renew: bool,
        /// Validity in days [default: 90 for users and devices, 365 for relays].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS)))]
        days: Option<u32>,
        /// Where to write the certificate, ca.pem and crl.pem [default: the
        /// request's directory].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Throwaway setups only: make a key for NAME here, on the CA's
    /// machine, and sign it, into a new user directory (--out).
    Issue {
        /// User name: 1-32 characters from a-z 0-9 . _ - starting with a letter or digit.
        name: String,
        #[command(flatten)]
        ca: CaDir,
        /// The user's directory to create [default: blindrelay-NAME].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Validity in days.
        #[arg(long, default_value_t = DEFAULT_USER_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS)))]
        days: u32,
        /// Replace the certificate in force for this name (it is revoked).
        #[arg(long)]
        force: bool,
    },
    /// Revoke a user's (or a device's) certificate: adds it to crl.pem.
    Revoke {
        /// User name.
        name: String,
        /// Revoke this device of the user instead of the user's identity.
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        ca: CaDir,
    },
    /// Sign the CRL again with a fresh nextUpdate (run it at least every 30
    /// days; relays and clients refuse a CRL 7 days past its nextUpdate).
    Crl {
        #[command(flatten)]
        ca: CaDir,
    },
    /// List every certificate the CA signed, with serial, validity and status.
    List {
        #[command(flatten)]
        ca: CaDir,
    },
}

/// Writes the certificate and the CA's public files into `out`.
fn deliver(pki: &PkiDir, out: &Path, cert_file: &str, cert_pem: &str) -> Result<()> {
    if !out.exists() {
        blindrelay_pki::files::private_dir(out)?;
    }
    write_file(&out.join(cert_file), cert_pem.as_bytes(), PUBLIC_FILE_MODE)?;
    for (from, to) in [(pki.ca_cert_path(), "ca.pem"), (pki.crl_path(), "crl.pem")] {
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        write_file(&out.join(to), &bytes, PUBLIC_FILE_MODE)?;
    }
    Ok(())
}

fn sign(
    pki: &PkiDir,
    request: &Path,
    relay: bool,
    renew: bool,
    days: Option<u32>,
    out: Option<PathBuf>,
) -> Result<()> {
    let bytes =
        std::fs::read(request).with_context(|| format!("cannot read {}", request.display()))?;
    let expect = if relay { Expect::Relay } else { Expect::User };
    let checked = CheckedRequest::from_pem(&bytes, expect)
        .map_err(|e| anyhow::anyhow!("{}: {e}", request.display()))?;
    let days = days.unwrap_or(match checked.subject() {
        Subject::Relay(_) => SERVER_VALIDITY_DAYS,
        _ => DEFAULT_USER_VALIDITY_DAYS,
    });
    let signed = pki.sign(&checked, days, renew)?;
    let out = out.unwrap_or_else(|| {
        request
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let cert_file = if relay { "server.pem" } else { "cert.pem" };
    deliver(pki, &out, cert_file, &signed.cert_pem)?;
    println!(
        "signed {} for {days} days, serial {}; wrote {}, ca.pem and crl.pem (public files) to {}",
        checked.subject(),
        serial_hex(&signed.serial),
        cert_file,
        out.display()
    );
    if let Some(old) = signed.revoked {
        println!(
            "the new key replaces the old one: certificate {} revoked, crl.pem updated",
            serial_hex(&old)
        );
    }
    Ok(())
}

pub(crate) fn run(cmd: PkiCommand) -> Result<()> {
    match cmd {
        PkiCommand::Init { ca, ca_name, force } => {
            PkiDir::new(&ca.dir).init(&ca_name, force)?;
            println!(
                "created CA {ca_name:?} (P-384) in {}: keep ca-key.pem secret and offline; ca.pem and crl.pem are public",
                ca.dir.display()
            );
        }
        PkiCommand::Sign {
            request,
            ca,
            relay,
            renew,
            days,
            out,
        } => sign(&PkiDir::new(&ca.dir), &request, relay, renew, days, out)?,
        PkiCommand::Issue {
            name,
            ca,
            out,
            days,
            force,
        } => {
            let user = user_name(&name)?;
            let pki = PkiDir::new(&ca.dir);
            if !pki.has_ca() {
                bail!(
                    "no CA in {} (run `blindrelay pki init` first)",
                    ca.dir.display()
                );
            }
            let out = out.unwrap_or_else(|| PathBuf::from(format!("blindrelay-{user}")));
            let dir = UserDir::new(&out);
            dir.enroll(&Subject::Identity(user.clone()), false)?;
            eprintln!(
                "warning: the key of {user} was made on the CA's machine; for real users, run `blindrelay enroll {user}` on their machine and `pki sign` the request"
            );
            sign(
                &pki,
                &dir.request_path(),
                false,
                force,
                Some(days),
                Some(out),
            )?;
        }
        PkiCommand::Revoke { name, device, ca } => {
            let user = user_name(&name)?;
            let subject = match device {
                Some(d) => Subject::Device(user, DeviceName::new(&d)?),
                None => Subject::Identity(user),
            };
            let (serial, new) = PkiDir::new(&ca.dir).revoke(&subject)?;
            let serial = serial_hex(&serial);
            if new {
                println!(
                    "revoked {subject} (serial {serial}); crl.pem updated: give it to the relay and the users"
                );
            } else {
                println!("{subject} (serial {serial}) was already revoked");
            }
        }
        PkiCommand::Crl { ca } => {
            let n = PkiDir::new(&ca.dir).refresh_crl()?;
            println!("crl.pem signed again (CRL number {n}): give it to the relay and the users");
        }
        PkiCommand::List { ca } => {
            let list = PkiDir::new(&ca.dir).list()?;
            if list.is_empty() {
                println!("no certificates signed by the CA in {}", ca.dir.display());
                return Ok(());
            }
            println!(
                "{:<28} {:<34} {:<28} {:<28} STATUS",
                "NAME", "SERIAL", "NOT BEFORE", "NOT AFTER"
            );
            for r in list {
                println!(
                    "{:<28} {:<34} {:<28} {:<28} {}",
                    r.label,
                    serial_hex(&r.info.serial),
                    r.info.not_before,
                    r.info.not_after,
                    r.status
                );
            }
        }
    }
    Ok(())
}
