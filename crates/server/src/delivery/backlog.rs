//! The login backlog: the identity's stored messages (oldest first), then
//! the copies held for it by write-behind, streamed into the session's
//! backlog queue. The queue is bounded and awaited, so a backlog of any
//! size costs a fixed amount of memory and never counts against the live
//! queue.

use std::sync::Arc;

use blindrelay_wire::{FRAME_LEN, UserName, write_deliver};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::outbound::{Outbound, shared_frame};
use crate::shared::Shared;
use crate::store::Body;

/// Streams the backlog of `identity`; `held` are the bodies of the copies
/// held for it when it logged in (taken before the login, so anything
/// routed after it reaches the session live).
pub(crate) async fn stream(
    shared: Arc<Shared>,
    identity: UserName,
    held: Vec<Arc<[Body]>>,
    tx: mpsc::Sender<Outbound>,
) {
    let mut after = 0i64;
    let mut sent = 0usize;
    loop {
        let page = match shared.store.backlog(identity.clone(), after).await {
            Ok(p) => p,
            Err(e) => {
                warn!(%identity, error = %e, "cannot read the backlog");
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for f in page {
            if !queue_stored(&tx, &f.body).await {
                return;
            }
            sent += 1;
        }
    }
    // Messages held back from the store that reached this identity's other
    // sessions before it logged in and are not acknowledged yet belong to
    // the backlog too. A copy committed while the store pages were read can
    // arrive twice; the client's replay cache drops the second.
    for bodies in held {
        for body in bodies.iter() {
            if !queue_stored(&tx, body).await {
                return;
            }
            sent += 1;
        }
    }
    if sent > 0 {
        info!(%identity, fragments = sent, "delivered the stored backlog");
    }
}

/// Queues one stored body as a DELIVER frame with the STORED flag (waiting
/// for room); false once the session is gone. A body that does not fit a
/// frame (impossible for what the relay stored) is skipped.
async fn queue_stored(tx: &mpsc::Sender<Outbound>, body: &[u8]) -> bool {
    if body.len() > FRAME_LEN {
        return true;
    }
    let frame = shared_frame(|out| {
        let _ = write_deliver(body, true, out);
    });
    tx.send(Outbound::Frame(frame)).await.is_ok()
}
