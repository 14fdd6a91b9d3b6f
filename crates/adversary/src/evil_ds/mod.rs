//! A malicious Delivery Service (protocol v2).
//!
//! It holds the genuine relay certificate (as a compromised relay host
//! would), speaks DS_UP / DS_DOWN correctly, and runs the honest rules of
//! `blindrelay-ds` in memory (KeyPackage directory, one order per group,
//! mailboxes), so devices can log in, claim, commit and talk through it.
//! What it adds is what a relay can do without any key: per device, keep
//! back every mailbox item ([`EvilDs::hold`]) and later hand over any of
//! them, in any order, or never ([`EvilDs::release`]). Withheld and
//! reordered commits, and messages from epochs a device has not reached,
//! are built from that. Devices must notice, hold what they cannot place
//! yet, and never send at a stale epoch.
//!
//! It follows each group's public state with the same observer as the
//! real relay (checking nothing: what the observer cannot follow, it
//! forgets), so that it can keep published GroupInfos and hand them out
//! with the tree, as the real relay does, to a device that must re-join.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use blindrelay_ds::{
    Delivery, DeviceId, Directory, Down, DsError, Groups, Limits, Request, Submission,
};
use blindrelay_pki::PkiDir;
use blindrelay_wire::{FRAME_LEN, Message, chunks};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::AdversaryError;

mod session;
use session::serve;

/// Frames queued per device session.
const QUEUE: usize = 1024;

type Frames = mpsc::Sender<Vec<Box<[u8; FRAME_LEN]>>>;

struct Session {
    /// Which connection this is (a device may reconnect before its old
    /// connection is cleaned up).
    id: u64,
    out: Frames,
    next_msg: u32,
    /// First mailbox item not yet looked at in this session.
    next_seq: u64,
}

struct State {
    directory: Directory,
    groups: Groups,
    /// The mailboxes' bodies (in memory: this relay has no database).
    bodies: blindrelay_ds::Kept,
    sessions: BTreeMap<DeviceId, Session>,
    /// Devices whose mailbox items are kept back, and what was kept.
    holding: BTreeMap<DeviceId, Vec<(u64, Delivery)>>,
    /// What was kept back from devices no longer held (still releasable).
    kept: BTreeMap<DeviceId, Vec<(u64, Delivery)>>,
    /// Devices the relay cuts off after the next `n` items it sends them.
    cut_after: BTreeMap<DeviceId, usize>,
    /// The last connection's number.
    next_session: u64,
    /// Devices whose connection the relay drops right after it sent them
    /// their next `n` answers.
    cut_after_answers: BTreeMap<DeviceId, usize>,
    /// Devices whose connection the relay drops at their next submission,
    /// without an answer, after ordering it (`true`) or not (`false`).
    cut_at_submit: BTreeMap<DeviceId, bool>,
    /// Devices whose commits that lost the race are "accepted" anyway and
    /// delivered to nobody: each is on a branch of its own (a fork).
    forking: BTreeSet<DeviceId>,
    /// Follows each group's public state (for the trees it hands out).
    observer: blindrelay_mls::Observer,
    /// Each group's public state, where the observer could follow it.
    public: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Each group's newest published GroupInfo, its epoch, and the
    /// group's tree when it was published.
    published: BTreeMap<Vec<u8>, (u64, Vec<u8>, Vec<u8>)>,
    /// Whether published GroupInfos are kept (else answered and dropped).
    keep_published: bool,
}

/// A running malicious Delivery Service.
pub struct EvilDs {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EvilDs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(st: &Mutex<State>) -> MutexGuard<'_, State> {
    st.lock().unwrap_or_else(|p| p.into_inner())
}

impl EvilDs {
    /// Starts on 127.0.0.1 with the genuine relay certificate of `pki`.
    pub async fn start(pki: &PkiDir) -> Result<Self, AdversaryError> {
        let acceptor = crate::relay_acceptor(pki)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let limits = Limits::default();
        let ca = blindrelay_pki::store::read_cert_der(&pki.ca_cert_path())?;
        let root = blindrelay_e2e::TrustRoot::new(ca)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let observer = blindrelay_mls::Observer::new(blindrelay_mls::Trust::new(root, now));
        let state = Arc::new(Mutex::new(State {
            observer,
            public: BTreeMap::new(),
            published: BTreeMap::new(),
            keep_published: true,
            directory: Directory::new(limits),
            groups: Groups::new(limits),
            bodies: blindrelay_ds::Kept::new(),
            sessions: BTreeMap::new(),
            holding: BTreeMap::new(),
            kept: BTreeMap::new(),
            cut_after: BTreeMap::new(),
            next_session: 0,
            forking: BTreeSet::new(),
            cut_after_answers: BTreeMap::new(),
            cut_at_submit: BTreeMap::new(),
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let st = st.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        serve(tls, st).await;
                    }
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// The address as a client's `--server` takes it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// From now on, every mailbox item for `device` is kept back.
    pub fn hold(&self, device: &DeviceId) {
        lock(&self.state).holding.entry(device.clone()).or_default();
    }

    /// How many items are kept back from `device`.
    pub fn held(&self, device: &DeviceId) -> usize {
        let st = lock(&self.state);
        st.holding
            .get(device)
            .or(st.kept.get(device))
            .map_or(0, Vec::len)
    }

    /// Hands `device` the kept-back items at `indexes` (in the order they
    /// were kept: 0 is the oldest), in the order given. The list does not
    /// shrink: a released item can be handed over again (a replay), and
    /// the others stay kept back.
    pub fn release(&self, device: &DeviceId, indexes: &[usize]) -> usize {
        let mut st = lock(&self.state);
        let items: Vec<(u64, Delivery)> = match st.holding.get(device).or(st.kept.get(device)) {
            Some(h) => indexes.iter().filter_map(|i| h.get(*i).cloned()).collect(),
            None => return 0,
        };
        let n = items.len();
        if let Some(s) = st.sessions.get_mut(device) {
            for (seq, item) in items {
                send(s, &Down::Delivery { seq, item });
            }
        }
        n
    }

    /// Stops keeping items back from `device`: what arrives from now on
    /// is sent; what was kept stays kept unless released.
    pub fn stop_holding(&self, device: &DeviceId) {
        let mut st = lock(&self.state);
        if let Some(kept) = st.holding.remove(device) {
            st.kept.insert(device.clone(), kept);
        }
        flush_all(&mut st);
    }

    /// Drops `device`'s connection right after the relay answered its next
    /// `n` requests (a relay restart or a network glitch just after a
    /// client's start-up requests).
    pub fn cut_after_answers(&self, device: &DeviceId, n: usize) {
        lock(&self.state)
            .cut_after_answers
            .insert(device.clone(), n);
    }

    /// Drops `device`'s connection at its next submission (a commit or a
    /// message) without answering it: after ordering it if `ordered`
    /// (the answer is lost), or without (the submission is lost).
    pub fn cut_at_submit(&self, device: &DeviceId, ordered: bool) {
        lock(&self.state)
            .cut_at_submit
            .insert(device.clone(), ordered);
    }

    /// Whether GroupInfos published from now on are kept (else they are
    /// answered ACCEPTED and dropped: the relay hands out an older one, or
    /// none).
    pub fn keep_publications(&self, keep: bool) {
        lock(&self.state).keep_published = keep;
    }

    /// Forgets every GroupInfo published so far.
    pub fn forget_publications(&self) {
        lock(&self.state).published.clear();
    }

    /// Forks groups for `device`: a commit of it that another commit beat
    /// is answered ACCEPTED (and delivered to nobody), so the device moves
    /// to an epoch of its own history while the others are in another.
    pub fn fork(&self, device: &DeviceId) {
        lock(&self.state).forking.insert(device.clone());
    }

    /// Drops `device`'s connection once it has sent it `n` more mailbox
    /// items (a relay restart or a network failure in the middle of a
    /// batch).
    pub fn cut_after(&self, device: &DeviceId, n: usize) {
        lock(&self.state).cut_after.insert(device.clone(), n);
    }
}

fn send(s: &mut Session, down: &Down) {
    let Ok(bytes) = down.encode() else {
        return;
    };
    let Ok(parts) = chunks(s.next_msg, &bytes) else {
        return;
    };
    s.next_msg = s.next_msg.wrapping_add(1);
    let frames: Vec<Box<[u8; FRAME_LEN]>> = parts
        .into_iter()
        .filter_map(|c| Message::DsDown(c).encode().ok())
        .collect();
    let _ = s.out.try_send(frames);
}

/// Sends every online device what its mailbox holds past what it was
/// sent, keeping back what is held.
fn flush_all(st: &mut State) {
    let devices: Vec<DeviceId> = st.sessions.keys().cloned().collect();
    for d in devices {
        flush(st, &d);
    }
}

fn flush(st: &mut State, d: &DeviceId) {
    let Some(from) = st.sessions.get(d).map(|s| s.next_seq) else {
        return;
    };
    let items: Vec<(u64, Delivery)> = st
        .groups
        .mailboxes_ref()
        .pending(d)
        .into_iter()
        .filter(|(seq, _)| *seq >= from)
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|(seq, id)| st.bodies.get(id).map(|b| (seq, b.clone())))
        .collect();
    for (seq, item) in items {
        if let Some(s) = st.sessions.get_mut(d) {
            s.next_seq = seq.saturating_add(1);
        }
        if let Some(kept) = st.holding.get_mut(d) {
            if !kept.iter().any(|(s, _)| *s == seq) {
                kept.push((seq, item));
            }
            continue;
        }
        if st
            .kept
            .get(d)
            .is_some_and(|k| k.iter().any(|(s, _)| *s == seq))
        {
            // Kept back earlier: only `release` hands it over.
            continue;
        }
        let cut = match st.cut_after.get_mut(d) {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        };
        if cut {
            st.cut_after.remove(d);
            // Dropping the session's sender ends its writer: the device
            // sees the connection close after what it was already sent.
            st.sessions.remove(d);
            return;
        }
        if let Some(s) = st.sessions.get_mut(d) {
            send(s, &Down::Delivery { seq, item });
        }
    }
}

fn handle(st: &mut State, device: &DeviceId, req: u32, request: Request) -> Option<Down> {
    let rules = |e: &DsError| Down::refused(req, e);
    match request {
        Request::Upload {
            one_time,
            last_resort,
        } => Some(match st.directory.upload(device, one_time, last_resort) {
            Ok(n) => Down::Uploaded {
                req,
                key_packages: u32::try_from(n).unwrap_or(u32::MAX),
            },
            Err(e) => rules(&e),
        }),
        Request::Claim(user) => Some(Down::Claimed {
            req,
            key_packages: st.directory.claim(&user, device),
        }),
        Request::Devices(user) => Some(Down::Devices {
            req,
            devices: st.directory.devices_of(&user).into_iter().collect(),
        }),
        Request::Submit(sub) => {
            let forks = st.forking.contains(device);
            let followed = follow(st, device, &sub);
            let answer = match st.groups.submit(device, sub) {
                Err(DsError::StaleEpoch { current }) if forks => Down::Accepted {
                    req,
                    epoch: current,
                    recipients: 0,
                },
                Ok(blindrelay_ds::Verdict::Accepted { epoch, recipients }) => {
                    if let Some((group, state)) = followed {
                        st.public.insert(group, state);
                    }
                    Down::Accepted {
                        req,
                        epoch,
                        recipients: u32::try_from(recipients).unwrap_or(u32::MAX),
                    }
                }
                Err(e) => rules(&e),
            };
            st.bodies.sync(st.groups.mailboxes());
            Some(answer)
        }
        Request::Publish {
            group_id,
            epoch,
            group_info,
        } => {
            let tree = st
                .public
                .get(&group_id)
                .and_then(|state| st.observer.tree(state).ok());
            if let (true, Some(tree)) = (st.keep_published, tree) {
                st.published.insert(group_id, (epoch, group_info, tree));
            }
            Some(Down::Accepted {
                req,
                epoch,
                recipients: 0,
            })
        }
        Request::GroupInfo(group_id) => Some(match st.published.get(&group_id) {
            Some((epoch, info, tree)) => Down::GroupInfo {
                req,
                epoch: *epoch,
                group_info: info.clone(),
                tree: tree.clone(),
            },
            None => rules(&DsError::NoGroupInfo),
        }),
        Request::Ack(seq) => {
            st.groups.mailboxes().ack(device, seq);
            st.bodies.sync(st.groups.mailboxes());
            None
        }
    }
}

/// The group's public state after `sub`, if it is a commit the observer
/// can follow (nothing is refused for it: this relay checks nothing).
fn follow(st: &State, device: &DeviceId, sub: &Submission) -> Option<(Vec<u8>, Vec<u8>)> {
    let Submission::Commit {
        group_id,
        epoch,
        commit,
        group_info,
        ..
    } = sub
    else {
        return None;
    };
    let names = (device.user.to_string(), device.device.to_string());
    let checked = match (st.public.get(group_id), group_info) {
        (Some(state), _) => st.observer.commit(state, group_id, *epoch, commit, &names),
        (None, Some(info)) => st.observer.create(group_id, info, commit, &names),
        (None, None) => return None,
    };
    Some((group_id.clone(), checked.ok()?.state))
}

/// Devices a test names, as the relay knows them.
pub fn devices(list: &[(&str, &str)]) -> BTreeSet<DeviceId> {
    list.iter()
        .filter_map(|(u, d)| {
            Some(DeviceId {
                user: blindrelay_wire::UserName::new(u).ok()?,
                device: blindrelay_pki::DeviceName::new(d).ok()?,
            })
        })
        .collect()
}
