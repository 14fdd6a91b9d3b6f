//! Proxies between a client and the relay: one that records the length of
//! every TLS record in each direction, and one whose connections can all be
//! cut at once (a network fault).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The TLS 1.3 record that carries one frame, as a capture sees it: the
/// 5-byte record header, the 4096-byte frame, the inner content type, the
/// 16-byte AEAD tag.
pub const FRAME_RECORD: usize = 5 + blindrelay_wire::FRAME_LEN + 1 + 16;

/// One TLS record seen by a [`RecordProxy`]: connection number, content
/// type, length including the 5-byte header.
pub type Record = (usize, u8, usize);

/// A TCP proxy that forwards bytes unchanged and records every TLS record
/// (5-byte header: type, version, length) in each direction.
pub struct RecordProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Client to server.
    pub up: Arc<Mutex<Vec<Record>>>,
    /// Server to client.
    pub down: Arc<Mutex<Vec<Record>>>,
    task: JoinHandle<()>,
}

impl Drop for RecordProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<Record>>>,
    conn: usize,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
        while let Some(&[kind, _, _, hi, lo]) = pending.get(..5) {
            let len = 5 + usize::from(u16::from_be_bytes([hi, lo]));
            if pending.len() < len {
                break;
            }
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((conn, kind, len));
            pending.drain(..len);
        }
        if to
            .write_all(buf.get(..n).unwrap_or_default())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl RecordProxy {
    /// A proxy to `target` on `127.0.0.1:0`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(Mutex::new(Vec::new()));
        let (u, d) = (up.clone(), down.clone());
        let task = tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((c, _)) = listener.accept().await {
                conn += 1;
                let Ok(s) = TcpStream::connect(target).await else {
                    continue;
                };
                let (cr, cw) = c.into_split();
                let (sr, sw) = s.into_split();
                tokio::spawn(pump(cr, sw, u.clone(), conn));
                tokio::spawn(pump(sr, cw, d.clone(), conn));
            }
        });
        Ok(Self {
            addr,
            up,
            down,
            task,
        })
    }
}

/// A TCP proxy whose connections can all be cut at once.
pub struct CutProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

impl CutProxy {
    /// A proxy to `target` on `127.0.0.1:0`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let c = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c.lock().unwrap_or_else(|p| p.into_inner()).push(h);
            }
        });
        Ok(Self { addr, conns, task })
    }

    /// Drops every connection through the proxy, mid-stream.
    pub fn cut(&self) {
        for h in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            h.abort();
        }
    }
}
