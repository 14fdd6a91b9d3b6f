//! `blindrelay pki`.

use anyhow::Result;
use blindrelay_pki::ca::{DEFAULT_USER_VALIDITY_DAYS, MAX_USER_VALIDITY_DAYS};
use blindrelay_pki::cert::serial_hex;
use blindrelay_pki::{PkiDir, UserCertOptions};
use clap::Subcommand;

use crate::{DirArg, user_name};

/// Default CA name.
pub(crate) const DEFAULT_CA_NAME: &str = "blindrelay Root CA";

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the root CA, the server certificate and an empty CRL.
    Init {
        #[command(flatten)]
        dir: DirArg,
        /// DNS name or IP address the relay is reached at (repeatable).
        /// Default: localhost and 127.0.0.1.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Common Name of the root CA.
        #[arg(long, default_value = DEFAULT_CA_NAME)]
        ca_name: String,
        /// Replace an existing CA (every certificate it issued becomes useless).
        #[arg(long)]
        force: bool,
    },
    /// Issue a user certificate and key (users/NAME.pem, users/NAME-key.pem).
    Issue {
        /// User name: 1-32 characters from a-z 0-9 . _ - starting with a letter or digit.
        name: String,
        #[command(flatten)]
        dir: DirArg,
        /// Validity in days.
        #[arg(long, default_value_t = DEFAULT_USER_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USER_VALIDITY_DAYS)))]
        days: u32,
        /// Replace an existing certificate for this name.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a user's certificate (adds it to crl.pem; a running relay
    /// disconnects the user within a second).
    Revoke {
        /// User name.
        name: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// List every issued user certificate with serial, validity and status.
    List {
        #[command(flatten)]
        dir: DirArg,
    },
}

pub(crate) fn default_hosts(hosts: Vec<String>) -> Vec<String> {
    if hosts.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into()]
    } else {
        hosts
    }
}

pub(crate) fn run(cmd: PkiCommand) -> Result<()> {
    match cmd {
        PkiCommand::Init {
            dir,
            hosts,
            ca_name,
            force,
        } => {
            let p = PkiDir::new(&dir.dir);
            let hosts = default_hosts(hosts);
            p.init(&ca_name, &hosts, force)?;
            println!(
                "created CA {ca_name:?} and server certificate for {} in {}",
                hosts.join(", "),
                dir.dir.display()
            );
        }
        PkiCommand::Issue {
            name,
            dir,
            days,
            force,
        } => {
            let name = user_name(&name)?;
            let p = PkiDir::new(&dir.dir);
            let issued = p.issue(&name, &UserCertOptions::valid_for_days(days), force)?;
            println!(
                "issued {name}: {} (key {}), serial {}, valid {days} days",
                issued.cert_path.display(),
                issued.key_path.display(),
                serial_hex(&issued.serial)
            );
        }
        PkiCommand::Revoke { name, dir } => {
            let name = user_name(&name)?;
            let (serial, new) = PkiDir::new(&dir.dir).revoke(&name)?;
            let serial = serial_hex(&serial);
            if new {
                println!("revoked {name} (serial {serial}); crl.pem updated");
            } else {
                println!("{name} (serial {serial}) was already revoked");
            }
        }
        PkiCommand::List { dir } => {
            let list = PkiDir::new(&dir.dir).list()?;
            if list.is_empty() {
                println!("no user certificates in {}", dir.dir.display());
                return Ok(());
            }
            println!(
                "{:<20} {:<34} {:<28} {:<28} STATUS",
                "NAME", "SERIAL", "NOT BEFORE", "NOT AFTER"
            );
            for (info, status) in list {
                println!(
                    "{:<20} {:<34} {:<28} {:<28} {status}",
                    info.name,
                    serial_hex(&info.serial),
                    info.not_before,
                    info.not_after
                );
            }
        }
    }
    Ok(())
}
