//! A session's outgoing queue: what it holds, how frames are made for it,
//! how a session answers its own client (with flow control), and how the
//! writer packs statuses.
//!
//! Every message a client sends earns it two statuses (*accepted*, then
//! *stored*), and every frame is one 4096-byte TLS record. Sent one per
//! frame, statuses were two thirds of the records a busy sender had to
//! read. The writer packs the statuses that wait next to each other in the
//! session's queue into one `Statuses` frame (up to
//! [`MAX_STATUSES`]); a status that waits alone still goes out at once, in
//! a plain `Status` frame. Nothing is held back to fill a frame.

use std::sync::Arc;
use std::time::Duration;

use blindrelay_wire::{FRAME_LEN, MAX_STATUSES, Message, MessageId, RoutedBody, StatusKind};
use tokio::sync::mpsc;
use tracing::warn;

/// An encoded frame, shared by every queue it is offered to (a fan-out
/// holds one copy).
pub(crate) type SharedFrame = Arc<[u8; FRAME_LEN]>;

/// One entry of a session's outgoing queue.
#[derive(Clone)]
pub(crate) enum Outbound {
    /// An encoded frame.
    Frame(SharedFrame),
    /// The fate of a message this session sent; encoded by the writer.
    Status(MessageId, StatusKind),
}

/// A frame written in place by `write` (no intermediate copy).
pub(crate) fn shared_frame(write: impl FnOnce(&mut [u8; FRAME_LEN])) -> SharedFrame {
    let mut frame = Arc::new([0u8; FRAME_LEN]);
    if let Some(buf) = Arc::get_mut(&mut frame) {
        write(buf);
    }
    frame
}

/// Encodes `msg` for the queue (`None`, logged, if it cannot be encoded).
pub(crate) fn encode(msg: &Message) -> Option<Outbound> {
    match msg.to_frame() {
        Ok(f) => Some(Outbound::Frame(shared_frame(|buf| f.encode_into(buf)))),
        Err(e) => {
            warn!(error = %e, "could not encode an outgoing frame");
            None
        }
    }
}

/// The DELIVER frame of a received SEND body: its bytes, unchanged but for
/// the STORED flag when `stored`.
pub(crate) fn deliver(body: &RoutedBody, stored: bool) -> SharedFrame {
    shared_frame(|buf| body.write_deliver(stored, buf))
}

/// Queues an answer to the client's own request (pong, status). Unlike
/// traffic from other users, it waits for room: the session stops reading
/// this client until it reads its answers (flow control), and only a client
/// that does not read for `limit` is dropped. False: it was not queued.
pub(crate) async fn answer(tx: &mpsc::Sender<Outbound>, item: Outbound, limit: Duration) -> bool {
    matches!(tokio::time::timeout(limit, tx.send(item)).await, Ok(Ok(())))
}

/// Turns queue entries into frames, in order, packing each run of
/// consecutive statuses into as few frames as possible. Drains `items`.
pub(crate) fn pack(items: &mut Vec<Outbound>, frames: &mut Vec<Arc<[u8; FRAME_LEN]>>) {
    let mut run: Vec<(MessageId, StatusKind)> = Vec::new();
    for item in items.drain(..) {
        match item {
            Outbound::Frame(f) => {
                flush(&mut run, frames);
                frames.push(f);
            }
            Outbound::Status(id, kind) => {
                run.push((id, kind));
                if run.len() == MAX_STATUSES {
                    flush(&mut run, frames);
                }
            }
        }
    }
    flush(&mut run, frames);
}

fn flush(run: &mut Vec<(MessageId, StatusKind)>, frames: &mut Vec<Arc<[u8; FRAME_LEN]>>) {
    let msg = match run.len() {
        0 => return,
        1 => {
            let Some((msg_id, kind)) = run.pop() else {
                return;
            };
            Message::Status { msg_id, kind }
        }
        _ => Message::Statuses(std::mem::take(run)),
    };
    run.clear();
    if let Some(Outbound::Frame(f)) = encode(&msg) {
        frames.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(i: u8) -> Outbound {
        Outbound::Status(MessageId([i; 16]), StatusKind::Stored { recipients: 1 })
    }

    fn ping(v: u64) -> Outbound {
        encode(&Message::Ping(v)).unwrap()
    }

    fn decoded(frames: &[Arc<[u8; FRAME_LEN]>]) -> Vec<Message> {
        frames
            .iter()
            .map(|f| Message::decode(&f[..]).unwrap())
            .collect()
    }

    #[test]
    fn runs_of_statuses_are_packed_in_order_and_frames_keep_their_place() {
        let mut items = vec![st(1), st(2), ping(7), st(3), ping(8)];
        let mut frames = Vec::new();
        pack(&mut items, &mut frames);
        assert!(items.is_empty());
        let stored = StatusKind::Stored { recipients: 1 };
        assert_eq!(
            decoded(&frames),
            vec![
                Message::Statuses(vec![
                    (MessageId([1; 16]), stored.clone()),
                    (MessageId([2; 16]), stored.clone())
                ]),
                Message::Ping(7),
                // Alone: a plain Status.
                Message::Status {
                    msg_id: MessageId([3; 16]),
                    kind: stored
                },
                Message::Ping(8),
            ]
        );
    }

    #[test]
    fn a_long_run_fills_frames_of_max_statuses() {
        let n = 2 * MAX_STATUSES + 3;
        let mut items: Vec<Outbound> = (0..n).map(|i| st(i as u8)).collect();
        let mut frames = Vec::new();
        pack(&mut items, &mut frames);
        let msgs = decoded(&frames);
        assert_eq!(msgs.len(), 3);
        let mut ids = Vec::new();
        for m in msgs {
            match m {
                Message::Statuses(v) => ids.extend(v.into_iter().map(|(id, _)| id.0[0])),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ids, (0..n).map(|i| i as u8).collect::<Vec<_>>());
    }
}
