//! One device's connection to the malicious Delivery Service: login,
//! HELLO and the mailbox, then requests answered in order, with the
//! connection cuts the tests ask for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use blindrelay_ds::{DeviceId, Down, Request};
use blindrelay_net::{FrameReader, FrameWriter};
use blindrelay_wire::{FRAME_LEN, Frame, Message, Reassembly};
use tokio::sync::mpsc;

use super::{QUEUE, Session, State, flush, flush_all, handle, lock, send};

pub(super) async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    st: Arc<Mutex<State>>,
) {
    let Some(cert) = crate::client_cert(&tls) else {
        return;
    };
    let (Ok(user), Ok(Some(dev))) = (
        blindrelay_pki::identity_from_cert(&cert),
        blindrelay_pki::device_from_cert(&cert),
    ) else {
        return;
    };
    let device = DeviceId { user, device: dev };
    let (rd, wr) = tokio::io::split(tls);
    let (tx, mut rx) = mpsc::channel::<Vec<Box<[u8; FRAME_LEN]>>>(QUEUE);
    let writer = tokio::spawn(async move {
        let mut w = FrameWriter::new(wr, Duration::from_secs(10));
        while let Some(f) = rx.recv().await {
            if w.write_batch(&f).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let my_id = {
        let mut g = lock(&st);
        g.next_session = g.next_session.wrapping_add(1);
        let id = g.next_session;
        let mut s = Session {
            id,
            out: tx.clone(),
            next_msg: 0,
            next_seq: 0,
        };
        let held = g.directory.remaining(&device);
        send(
            &mut s,
            &Down::Hello {
                device: device.clone(),
                key_packages: u32::try_from(held).unwrap_or(u32::MAX),
                // It counts nothing; it announces a generous budget.
                budget: 10_000,
                window_ms: 1_000,
            },
        );
        g.sessions.insert(device.clone(), s);
        flush(&mut g, &device);
        id
    };
    drop(tx);
    let mut reader = FrameReader::new(rd);
    let mut reassembly =
        Reassembly::new(blindrelay_wire::MAX_DS_CHUNKS * blindrelay_wire::DS_CHUNK_MAX);
    loop {
        let raw = match reader
            .read_raw(Duration::from_secs(3600), Duration::from_secs(10))
            .await
        {
            Ok(Some(raw)) => raw,
            _ => break,
        };
        let Ok(msg) =
            Frame::parse(raw).and_then(|(k, b)| Message::from_frame(&Frame::new(k, b.to_vec())?))
        else {
            break;
        };
        let mut g = lock(&st);
        if g.sessions.get(&device).is_none_or(|s| s.id != my_id) {
            break;
        }
        match msg {
            Message::Ping(v) => {
                if let (Some(s), Ok(f)) = (g.sessions.get_mut(&device), Message::Pong(v).encode()) {
                    let _ = s.out.try_send(vec![f]);
                }
            }
            Message::DsUp(chunk) => {
                let whole = match reassembly.push(chunk) {
                    Ok(Some(w)) => w,
                    Ok(None) => continue,
                    Err(_) => break,
                };
                let Ok((req, request)) = Request::decode(&whole) else {
                    break;
                };
                if matches!(request, Request::Submit(_))
                    && let Some(ordered) = g.cut_at_submit.remove(&device)
                {
                    g.sessions.remove(&device);
                    if ordered {
                        let _ = handle(&mut g, &device, req, request);
                        flush_all(&mut g);
                    }
                    break;
                }
                let answer = handle(&mut g, &device, req, request);
                // The mailbox first (as the real relay does), then the
                // answer.
                flush_all(&mut g);
                if let (Some(a), Some(s)) = (answer, g.sessions.get_mut(&device)) {
                    send(s, &a);
                    let cut = match g.cut_after_answers.get_mut(&device) {
                        Some(n) => {
                            *n = n.saturating_sub(1);
                            *n == 0
                        }
                        None => false,
                    };
                    if cut {
                        g.cut_after_answers.remove(&device);
                        g.sessions.remove(&device);
                        break;
                    }
                }
            }
            Message::Goodbye { .. } => break,
            _ => {}
        }
    }
    // Dropping the session's sender lets the writer send what is queued
    // (an answer just given) and then close the connection.
    {
        let mut g = lock(&st);
        if g.sessions.get(&device).is_some_and(|s| s.id == my_id) {
            g.sessions.remove(&device);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}
