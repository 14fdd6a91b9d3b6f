//! One device's connection (protocol v2), from login to goodbye.
//!
//! A certificate that names a device (a subjectAltName device URI) makes
//! a v2 session. It is keyed by the device (`user@device` from the CN and
//! the URI the handshake verified), gets HELLO and the CA's CRL, then
//! exchanges Delivery Service messages in DS_UP / DS_DOWN chunks (and gets
//! each new CRL the relay loads):
//! requests are decided and stored by [`DeliveryService`] and answered,
//! and the device's mailbox is streamed to it from its first unacknowledged
//! item whenever something arrives. One task reads and writes; a device
//! that stops reading blocks only its own session until the write timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blindrelay_ds::{DeviceId, Down, Request};
use blindrelay_net::{FrameReader, FrameWriter, NetError};
use blindrelay_pki::DeviceName;
use blindrelay_wire::{Frame, GoodbyeCode, Message, Reassembly, UserName, WireError, chunks};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::SECURITY;
use crate::outbound::Outbound;
use crate::shared::Shared;

/// The connection, after the TLS handshake.
pub(crate) type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Mailbox items read from the Delivery Service per turn of the loop.
pub const DELIVERY_BATCH: usize = 32;

/// Bytes of mailbox bodies read per turn of the loop (at least one item),
/// so that one turn holds a bounded amount in memory: bodies are read from
/// SQLite by a read-only connection outside the Delivery Service's lock
/// (under it for a store in memory, in tests and the demo).
pub const DELIVERY_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Why a session ends.
enum End {
    Normal,
    Cause(GoodbyeCode, String),
    Broken(String),
}

struct Conn {
    device: DeviceId,
    peer: SocketAddr,
    writer: FrameWriter<WriteHalf<Stream>>,
    /// Number of the next message this session sends.
    next_msg: u32,
    /// First mailbox item not yet sent in this session.
    next_seq: u64,
}

/// Serves a device's connection until it ends.
pub(crate) async fn run(
    stream: Stream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: broadcast::Receiver<()>,
    done: mpsc::Sender<()>,
    (user, device, serial): (UserName, DeviceName, Vec<u8>),
) {
    let _done = done;
    let cfg = &shared.config;
    let device = DeviceId { user, device };
    let (rd, wr) = tokio::io::split(stream);
    let mut conn = Conn {
        device: device.clone(),
        peer,
        writer: FrameWriter::new(wr, Duration::from_millis(cfg.write_timeout_ms)),
        next_msg: 0,
        next_seq: 0,
    };
    if shared.registry.is_revoked(&serial) {
        warn!(target: SECURITY, %device, %peer,
            "refused: device certificate revoked (handshake verified against an older CRL)");
        conn.close(End::Cause(
            GoodbyeCode::Revoked,
            "certificate revoked".into(),
        ))
        .await;
        return;
    }
    if let Err(why) = shared.ds.admission.admit(&device, Instant::now()) {
        let text = match why {
            crate::v2::NotNow::TooManyLogins => "too many logins for this device; try again later",
            crate::v2::NotNow::CoolingDown => {
                "waiting out a cool-down after too many requests; try again later"
            }
        };
        warn!(target: SECURITY, %device, %peer, "refused: {text}");
        conn.close(End::Cause(GoodbyeCode::RateLimited, text.into()))
            .await;
        return;
    }
    let Some(login) = shared.ds.login(&device, serial) else {
        warn!(%device, %peer, "refused: too many sessions for this device");
        conn.close(End::Cause(
            GoodbyeCode::SessionLimit,
            "too many sessions for this device".into(),
        ))
        .await;
        return;
    };
    info!(%device, %peer, session = login.session, "device connected (protocol v2)");
    let end = conn
        .serve(
            &shared,
            FrameReader::new(rd),
            login.wake.clone(),
            login.kill,
            &mut shutdown,
        )
        .await;
    shared.ds.logout(&device, login.session);
    conn.close(end).await;
}

impl Conn {
    async fn serve(
        &mut self,
        shared: &Arc<Shared>,
        mut reader: FrameReader<ReadHalf<Stream>>,
        wake: Arc<tokio::sync::Notify>,
        mut kill: tokio::sync::watch::Receiver<Option<(GoodbyeCode, String)>>,
        shutdown: &mut broadcast::Receiver<()>,
    ) -> End {
        let cfg = &shared.config;
        let idle = Duration::from_millis(cfg.idle_timeout_ms);
        let frame_timeout = Duration::from_millis(cfg.frame_timeout_ms);
        let mut reassembly = Reassembly::new(shared.ds.max_request_bytes());
        // The login sequence: HELLO, the CRL, then the mailbox.
        let (s, device) = (shared.clone(), self.device.clone());
        let held = match tokio::task::spawn_blocking(move || s.ds.key_packages(&device)).await {
            Ok(n) => n,
            Err(e) => return End::Broken(format!("v2 task failed: {e}")),
        };
        let (budget, window) = shared.ds.admission.budget();
        let hello = Down::Hello {
            device: self.device.clone(),
            key_packages: u32::try_from(held).unwrap_or(u32::MAX),
            budget: u32::try_from(budget).unwrap_or(u32::MAX),
            window_ms: u32::try_from(window.as_millis()).unwrap_or(u32::MAX),
        };
        if let Err(end) = self.send(&hello).await {
            return end;
        }
        let mut crl_sent = shared.ds.crl_generation();
        if let Err(end) = self.send_crl(shared).await {
            return end;
        }
        loop {
            // A CRL loaded since the last one sent goes out first.
            let generation = shared.ds.crl_generation();
            if generation != crl_sent {
                crl_sent = generation;
                if let Err(end) = self.send_crl(shared).await {
                    return end;
                }
            }
            if let Err(end) = self.flush_mailbox(shared).await {
                return end;
            }
            tokio::select! {
                biased;
                _ = shutdown.recv() => {
                    return End::Cause(GoodbyeCode::Shutdown, "server shutting down".into());
                }
                changed = kill.changed() => {
                    let k = if changed.is_ok() { kill.borrow().clone() } else { None };
                    if let Some((code, reason)) = k {
                        return End::Cause(code, reason);
                    }
                }
                _ = wake.notified() => {}
                r = reader.read_raw(idle, frame_timeout) => {
                    let msg = match r {
                        Ok(Some(raw)) => match Frame::parse(raw).and_then(|(k, b)| {
                            Message::from_frame(&Frame::new(k, b.to_vec())?)
                        }) {
                            Ok(m) => m,
                            Err(e) => return self.violation("invalid frame", &e),
                        },
                        Ok(None) => return End::Normal,
                        Err(NetError::Idle) => {
                            info!(device = %self.device, peer = %self.peer, "idle timeout, disconnecting");
                            return End::Cause(GoodbyeCode::IdleTimeout, "nothing received within the idle timeout".into());
                        }
                        Err(e) => return End::Broken(e.to_string()),
                    };
                    match msg {
                        Message::Ping(v) => {
                            if let Err(end) = self.write(&Message::Pong(v)).await {
                                return end;
                            }
                        }
                        Message::Pong(_) => {}
                        Message::Goodbye { .. } => return End::Normal,
                        Message::DsUp(chunk) => {
                            let whole = match reassembly.push(chunk) {
                                Ok(Some(w)) => w,
                                Ok(None) => continue,
                                Err(e) => return self.violation("bad DS chunk", &e),
                            };
                            let (req, request) = match Request::decode(&whole) {
                                Ok(r) => r,
                                Err(e) => return self.violation("malformed DS request", &e),
                            };
                            if !matches!(request, Request::Ack(_))
                                && let Err(over) = shared.ds.admission.spend(&self.device, Instant::now())
                            {
                                let (max, whose) = match over {
                                    crate::v2::Over::Device => (cfg.v2_rate_max_requests, "this device (all its sessions)"),
                                    crate::v2::Over::Person => (cfg.v2_person_rate_max_requests, "this person's devices together"),
                                };
                                warn!(target: SECURITY, device = %self.device, peer = %self.peer,
                                    "more than {max} v2 requests in {} ms from {whose}, disconnecting; cool-down {} ms",
                                    cfg.rate_window_ms, cfg.cooldown_ms);
                                return End::Cause(GoodbyeCode::RateLimited, "rate limit exceeded".into());
                            }
                            self.log(&request);
                            let (s, device) = (shared.clone(), self.device.clone());
                            let answer = match tokio::task::spawn_blocking(move || s.ds.handle(&device, req, request)).await {
                                Ok(a) => a,
                                Err(e) => return End::Broken(format!("v2 request task failed: {e}")),
                            };
                            if let Some(answer) = answer
                                && let Err(end) = self.send(&answer).await
                            {
                                return end;
                            }
                        }
                        other => {
                            let e = WireError::InvalidField("frame type for a device session");
                            debug!(kind = ?other.frame_type(), "refused frame");
                            return self.violation("frame not allowed in a v2 session", &e);
                        }
                    }
                }
            }
        }
    }

    /// The CA's current CRL, in CRL frames.
    async fn send_crl(&mut self, shared: &Arc<Shared>) -> Result<(), End> {
        let crl: Vec<_> = shared
            .registry
            .crl_frames()
            .into_iter()
            .filter_map(|o| match o {
                Outbound::Frame(f) => Some(f),
                Outbound::Status(..) => None,
            })
            .collect();
        self.writer
            .write_batch(&crl)
            .await
            .map_err(|e| End::Broken(e.to_string()))
    }

    /// What the relay learns, at debug level (PROTOCOL.md 11.4).
    fn log(&self, request: &Request) {
        if let Request::Submit(s) = request {
            let (kind, group, epoch) = match s {
                blindrelay_ds::Submission::Commit {
                    group_id, epoch, ..
                } => ("commit", group_id, epoch),
                blindrelay_ds::Submission::Message {
                    group_id, epoch, ..
                } => ("message", group_id, epoch),
            };
            debug!(device = %self.device, kind, group = %blindrelay_wire::codec::hex(group), epoch, "v2 submission");
        }
    }

    fn violation(&self, what: &str, e: &WireError) -> End {
        warn!(target: SECURITY, device = %self.device, peer = %self.peer, reason = %e, "{what}, disconnecting");
        End::Cause(GoodbyeCode::ProtocolViolation, format!("{what}: {e}"))
    }

    /// Sends every mailbox item not yet sent in this session.
    async fn flush_mailbox(&mut self, shared: &Arc<Shared>) -> Result<(), End> {
        loop {
            let (s, device, from) = (shared.clone(), self.device.clone(), self.next_seq);
            let (items, last) = tokio::task::spawn_blocking(move || {
                s.ds.pending_from(&device, from, (DELIVERY_BATCH, DELIVERY_BATCH_BYTES))
            })
            .await
            .map_err(|e| End::Broken(format!("v2 task failed: {e}")))?;
            let Some(last) = last else {
                return Ok(());
            };
            for (seq, item) in items {
                self.send(&Down::Delivery { seq, item }).await?;
            }
            self.next_seq = last.saturating_add(1);
        }
    }

    /// Sends one v2 message in as many DS_DOWN frames as it needs.
    async fn send(&mut self, down: &Down) -> Result<(), End> {
        let bytes = down
            .encode()
            .and_then(|b| chunks(self.next_msg, &b))
            .map_err(|e| End::Broken(format!("encoding a v2 message: {e}")))?;
        self.next_msg = self.next_msg.wrapping_add(1);
        let mut frames = Vec::with_capacity(bytes.len());
        for c in bytes {
            let f = Message::DsDown(c)
                .encode()
                .map_err(|e| End::Broken(format!("encoding a DS frame: {e}")))?;
            frames.push(f);
        }
        self.writer
            .write_batch(&frames)
            .await
            .map_err(|e| End::Broken(e.to_string()))
    }

    async fn write(&mut self, m: &Message) -> Result<(), End> {
        let f = m
            .encode()
            .map_err(|e| End::Broken(format!("encoding a frame: {e}")))?;
        self.writer
            .write_one(&f)
            .await
            .map_err(|e| End::Broken(e.to_string()))
    }

    async fn close(mut self, end: End) {
        let (device, peer) = (self.device.clone(), self.peer);
        match end {
            End::Normal => info!(%device, %peer, "device disconnected"),
            End::Cause(code, reason) => {
                info!(%device, %peer, code = code.as_str(), %reason, "device disconnected by the server");
                let _ = self.write(&Message::Goodbye { code, reason }).await;
            }
            End::Broken(reason) => {
                info!(%device, %peer, %reason, "device connection lost");
                return;
            }
        }
        let _ = self.writer.shutdown().await;
    }
}
