//! A malicious relay.
//!
//! It speaks the relay protocol correctly enough for clients to log in, and
//! then does what a compromised server could do. It cannot do what it does
//! not have the keys for, and that is the point: clients must notice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter};
use blindrelay_pki::PkiDir;
use blindrelay_wire::{
    FRAME_LEN, Message, PeerEvent, Routed, RoutedFlags, StatusKind, Target, UserName, Welcome,
};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

use crate::AdversaryError;

/// What the relay does to traffic.
#[derive(Debug, Clone)]
pub enum Tamper {
    /// Relays honestly (a control).
    Honest,
    /// Flips one bit in the payload of every delivered fragment.
    FlipBit,
    /// Delivers every message twice.
    Replay,
    /// Also delivers every message to this user, who is not a recipient.
    Retarget(UserName),
    /// Claims that every message came from this user.
    ForgeSender(UserName),
    /// Holds every message this long before delivering it.
    Delay(Duration),
    /// Delivers every fragment with its RECEIPT flag flipped: texts
    /// labelled as receipts, receipts as texts. (The fragments remembered
    /// for replays keep their true flags.)
    FlipReceiptFlag,
    /// Hands every client this CRL (DER: genuine, signed by the CA, but
    /// older than the current one) in the login sequence, to bring a
    /// revoked user back.
    OldCrl(Vec<u8>),
    /// Offers `cert_der` as `victim`'s certificate in the directory.
    SwapCert {
        /// Whose key is replaced.
        victim: UserName,
        /// The certificate offered instead.
        cert_der: Vec<u8>,
    },
}

type Outbox = mpsc::Sender<Box<[u8; FRAME_LEN]>>;

/// One connected user: their queue, certificate, and a way to cut them off.
struct Session {
    out: Outbox,
    cert: Vec<u8>,
    kill: Arc<Notify>,
}

struct State {
    sessions: HashMap<UserName, Session>,
    /// Every envelope fragment seen, for later replays.
    seen: Vec<Routed>,
    /// What WELCOME announces as the store TTL (seconds).
    store_ttl_s: u32,
}

/// A running malicious relay.
pub struct EvilRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EvilRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Most fragments remembered for replays.
const MAX_SEEN: usize = 1024;
/// Frames queued per client.
const QUEUE: usize = 256;

fn send(out: &Outbox, m: &Message) {
    if let Ok(b) = m.encode() {
        let _ = out.try_send(b);
    }
}

impl EvilRelay {
    /// Starts on 127.0.0.1 with the genuine server certificate of `pki`.
    pub async fn start(pki: &PkiDir, tamper: Tamper) -> Result<Self, AdversaryError> {
        let acceptor = crate::relay_acceptor(pki)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            sessions: HashMap::new(),
            seen: Vec::new(),
            store_ttl_s: 7 * 24 * 3600,
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let st = st.clone();
                let tamper = tamper.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        serve(tls, st, tamper).await;
                    }
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announces `secs` as its store TTL to every session from now on.
    pub fn set_store_ttl(&self, secs: u32) {
        self.lock().store_ttl_s = secs;
    }

    /// Closes `user`'s connection (the client reconnects by itself).
    pub fn disconnect(&self, user: &UserName) {
        if let Some(s) = self.lock().sessions.remove(user) {
            s.kill.notify_one();
        }
    }

    /// Re-delivers every fragment it has seen, claiming it comes from the
    /// store.
    pub fn replay_all_as_stored(&self) -> usize {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for r in &mut g.seen {
            r.header.flags = r.header.flags.with(RoutedFlags::STORED);
        }
        drop(g);
        self.replay_all()
    }

    /// Re-delivers every fragment it has seen to its recipients (a replay
    /// attack some time after the fact).
    pub fn replay_all(&self) -> usize {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for r in &g.seen {
            if let Target::Users(users) = &r.header.target {
                for u in users {
                    if let Some(session) = g.sessions.get(u) {
                        send(&session.out, &Message::Deliver(r.clone()));
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    st: Arc<Mutex<State>>,
    tamper: Tamper,
) {
    let Some(cert) = crate::client_cert(&tls) else {
        return;
    };
    let Ok(name) = blindrelay_pki::identity_from_cert(&cert) else {
        return;
    };
    let (rd, wr) = tokio::io::split(tls);
    let (tx, mut rx) = mpsc::channel::<Box<[u8; FRAME_LEN]>>(QUEUE);
    let writer = tokio::spawn(async move {
        let mut w = FrameWriter::new(wr, Duration::from_secs(10));
        while let Some(f) = rx.recv().await {
            if w.write_one(&f).await.is_err() {
                break;
            }
        }
    });
    let offered = |n: &UserName, c: &[u8]| -> Vec<u8> {
        match &tamper {
            Tamper::SwapCert { victim, cert_der } if victim == n => cert_der.clone(),
            _ => c.to_vec(),
        }
    };
    let kill = Arc::new(Notify::new());
    {
        let mut g = st.lock().unwrap_or_else(|p| p.into_inner());
        send(
            &tx,
            &Message::Welcome(Welcome {
                identity: name.clone(),
                rate_max: 10,
                rate_window_ms: 5000,
                keepalive_ms: 20_000,
                max_fragments: blindrelay_wire::MAX_FRAGMENTS,
                store_ttl_s: g.store_ttl_s,
            }),
        );
        if let Tamper::OldCrl(der) = &tamper {
            for m in blindrelay_wire::crl_messages(der).unwrap_or_default() {
                send(&tx, &m);
            }
        }
        let mut count = 0u16;
        for (n, other) in &g.sessions {
            send(
                &tx,
                &Message::Peer {
                    event: PeerEvent::Listed,
                    name: n.clone(),
                    cert_der: offered(n, &other.cert),
                },
            );
            count += 1;
            send(
                &other.out,
                &Message::Peer {
                    event: PeerEvent::Joined,
                    name: name.clone(),
                    cert_der: offered(&name, &cert),
                },
            );
        }
        send(&tx, &Message::DirectoryEnd { count });
        g.sessions.insert(
            name.clone(),
            Session {
                out: tx.clone(),
                cert: cert.clone(),
                kill: kill.clone(),
            },
        );
    }
    let mut reader = FrameReader::new(rd);
    loop {
        let frame = tokio::select! {
            _ = kill.notified() => break,
            r = reader.read_frame(Duration::from_secs(3600), Duration::from_secs(10)) => match r {
                Ok(Some(f)) => f,
                _ => break,
            },
        };
        let Ok(msg) = Message::from_frame(&frame) else {
            break;
        };
        match msg {
            Message::Ping(v) => send(&tx, &Message::Pong(v)),
            Message::Send(r) => route(&st, &tamper, r, &tx),
            Message::Goodbye { .. } => break,
            _ => {}
        }
    }
    {
        let mut g = st.lock().unwrap_or_else(|p| p.into_inner());
        // Only this session's entry: the user may have reconnected already.
        if g.sessions
            .get(&name)
            .is_some_and(|s| Arc::ptr_eq(&s.kill, &kill))
        {
            g.sessions.remove(&name);
        }
    }
    writer.abort();
}

fn route(st: &Arc<Mutex<State>>, tamper: &Tamper, r: Routed, sender_tx: &Outbox) {
    let mut g = st.lock().unwrap_or_else(|p| p.into_inner());
    if g.seen.len() < MAX_SEEN {
        g.seen.push(r.clone());
    }
    let mut recipients = match &r.header.target {
        Target::Users(u) => u.clone(),
        Target::Everyone => g
            .sessions
            .keys()
            .filter(|n| **n != r.header.sender)
            .cloned()
            .collect(),
    };
    let mut out = r.clone();
    match tamper {
        Tamper::FlipBit => {
            let mid = out.payload.len() / 2;
            if let Some(b) = out.payload.get_mut(mid) {
                *b ^= 0x01;
            }
        }
        Tamper::ForgeSender(as_) => out.header.sender = as_.clone(),
        Tamper::Retarget(extra) => recipients.push(extra.clone()),
        Tamper::FlipReceiptFlag => {
            let bits = out.header.flags.bits() ^ RoutedFlags::RECEIPT.bits();
            if let Ok(flags) = RoutedFlags::from_bits(bits) {
                out.header.flags = flags;
            }
        }
        _ => {}
    }
    let times = if matches!(tamper, Tamper::Replay) {
        2
    } else {
        1
    };
    let mut delivered = 0u16;
    for u in &recipients {
        if let Some(Session { out: tx, .. }) = g.sessions.get(u) {
            if let Tamper::Delay(d) = tamper {
                let (tx, out, d) = (tx.clone(), out.clone(), *d);
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    send(&tx, &Message::Deliver(out));
                });
            } else {
                for _ in 0..times {
                    send(tx, &Message::Deliver(out.clone()));
                }
            }
            delivered += 1;
        }
    }
    if r.header.fragment.is_last() {
        send(
            sender_tx,
            &Message::Status {
                msg_id: r.header.msg_id,
                kind: StatusKind::Accepted { delivered },
            },
        );
    }
}
