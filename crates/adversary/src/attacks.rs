//! The original report's attack scripts, against any relay address.

use std::sync::Arc;
use std::time::Duration;

use blindrelay_net::{FrameReader, client_config_from_files, load_certs};
use blindrelay_pki::PkiDir;
use blindrelay_wire::{
    FragmentPos, GoodbyeCode, Message, MessageId, Routed, RoutedFlags, RoutedHeader, Target,
    UserName,
};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::AdversaryError;

/// How long an attack waits for the relay's reaction.
pub const REACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// What the relay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The TLS handshake failed or the connection closed before any frame.
    Refused(String),
    /// The relay closed the connection, with this goodbye if it sent one.
    Disconnected(Option<GoodbyeCode>),
    /// Nothing came back within the timeout (silent drop).
    Silence,
    /// The relay answered with something else.
    Answered(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Disconnected(Some(code)) => {
                write!(f, "disconnected by the relay: {code}")
            }
            Self::Disconnected(None) => f.write_str("disconnected without a goodbye"),
            Self::Silence => f.write_str("nothing came back"),
            Self::Answered(what) => write!(f, "answered: {what}"),
        }
    }
}

/// The name in the relay's certificate that the attacks connect to.
const RELAY_NAME: &str = "localhost";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

async fn connect_as(
    addr: &str,
    pki: &PkiDir,
    user: &UserName,
) -> Result<TlsStream<TcpStream>, AdversaryError> {
    let cfg = client_config_from_files(
        &pki.ca_cert_path(),
        &pki.user_cert_path(user),
        &pki.user_key_path(user),
    )?;
    let tcp = TcpStream::connect(addr).await?;
    Ok(TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(RELAY_NAME)?, tcp)
        .await?)
}

/// Reads frames until the relay closes or `timeout` passes without a frame
/// other than the login sequence and presence.
async fn reaction(
    stream: &mut FrameReader<tokio::io::ReadHalf<TlsStream<TcpStream>>>,
    timeout: Duration,
) -> Outcome {
    let mut goodbye = None;
    loop {
        match tokio::time::timeout(
            timeout,
            stream.read_frame(Duration::from_secs(3600), timeout),
        )
        .await
        {
            Err(_) => return Outcome::Silence,
            Ok(Ok(Some(f))) => match Message::from_frame(&f) {
                Ok(Message::Goodbye { code, .. }) => goodbye = Some(code),
                Ok(
                    Message::Welcome(_)
                    | Message::Peer { .. }
                    | Message::DirectoryEnd { .. }
                    | Message::Crl { .. }
                    | Message::PeerLeft { .. },
                ) => {}
                Ok(other) if goodbye.is_none() => {
                    return Outcome::Answered(format!("{:?}", other.frame_type()));
                }
                _ => {}
            },
            Ok(Ok(None)) | Ok(Err(_)) => return Outcome::Disconnected(goodbye),
        }
    }
}

/// `openssl s_client` without a certificate: the handshake must fail.
pub async fn no_certificate(addr: &str, pki: &PkiDir) -> Result<Outcome, AdversaryError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(&pki.ca_cert_path())? {
        roots.add(c)?;
    }
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    match TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(RELAY_NAME)?, tcp)
        .await
    {
        Err(e) => Ok(Outcome::Refused(e.to_string())),
        Ok(mut s) => {
            let mut b = [0u8; 1];
            match tokio::time::timeout(REACTION_TIMEOUT, s.read(&mut b)).await {
                Ok(Ok(0)) => Ok(Outcome::Refused("connection closed".into())),
                Ok(Err(e)) => Ok(Outcome::Refused(e.to_string())),
                Ok(Ok(_)) => Ok(Outcome::Answered("application data".into())),
                Err(_) => Ok(Outcome::Silence),
            }
        }
    }
}

/// `test_bomb.py`: 5000 bytes in one write with a valid certificate.
pub async fn oversized_payload(
    addr: &str,
    pki: &PkiDir,
    user: &UserName,
) -> Result<Outcome, AdversaryError> {
    let s = connect_as(addr, pki, user).await?;
    let (rd, mut wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    wr.write_all(&[b'A'; 5000]).await?;
    wr.flush().await?;
    Ok(reaction(&mut reader, REACTION_TIMEOUT).await)
}

fn routed(sender: &UserName, to: &UserName, n: u8) -> Routed {
    Routed {
        header: RoutedHeader {
            msg_id: MessageId([n; 16]),
            fragment: FragmentPos::SINGLE,
            flags: RoutedFlags::NONE,
            sender: sender.clone(),
            target: Target::Users(vec![to.clone()]),
        },
        payload: vec![0x42; 64],
    }
}

/// `test_spoofing.py`: `user`'s certificate, a message claiming `claimed`.
/// The relay must stay silent.
pub async fn forged_sender(
    addr: &str,
    pki: &PkiDir,
    user: &UserName,
    claimed: &UserName,
    to: &UserName,
) -> Result<Outcome, AdversaryError> {
    let s = connect_as(addr, pki, user).await?;
    let (rd, wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    let mut writer = blindrelay_net::FrameWriter::new(wr, REACTION_TIMEOUT);
    let frame = Message::Send(routed(claimed, to, 0xee)).encode()?;
    writer.write_one(&frame).await?;
    Ok(reaction(&mut reader, Duration::from_secs(2)).await)
}

/// A flood: `count` messages as fast as possible. Returns how many were
/// written and the relay's reaction.
pub async fn flood(
    addr: &str,
    pki: &PkiDir,
    user: &UserName,
    to: &UserName,
    count: u8,
) -> Result<(usize, Outcome), AdversaryError> {
    let s = connect_as(addr, pki, user).await?;
    let (rd, wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    let mut writer = blindrelay_net::FrameWriter::new(wr, REACTION_TIMEOUT);
    let mut sent = 0;
    for i in 0..count {
        let f = Message::Send(routed(user, to, i)).encode()?;
        if writer.write_one(&f).await.is_err() {
            break;
        }
        sent += 1;
    }
    loop {
        match reaction(&mut reader, REACTION_TIMEOUT).await {
            Outcome::Answered(_) => continue, // statuses of accepted messages
            other => return Ok((sent, other)),
        }
    }
}

/// Reconnects right after a flood: the cool-down must refuse it.
pub async fn reconnect(
    addr: &str,
    pki: &PkiDir,
    user: &UserName,
) -> Result<Outcome, AdversaryError> {
    let s = connect_as(addr, pki, user).await?;
    let (rd, _wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    Ok(reaction(&mut reader, REACTION_TIMEOUT).await)
}
