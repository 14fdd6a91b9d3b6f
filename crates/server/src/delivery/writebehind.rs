//! Write-behind for messages delivered live.
//!
//! A message that reached every recipient live would otherwise be inserted
//! into the store only to be deleted a moment later, when the recipients
//! acknowledge it; on a busy relay that insert-and-delete was half of the
//! server's CPU. Instead, such a message is held here for up to
//! `write_behind_ms`: each recipient's ACK settles its copy, and only the
//! copies still unacknowledged when the time is up (or when the server shuts
//! down) are committed to the store as usual.
//!
//! The promise to the sender does not change: STATUS *stored* is sent only
//! when every recipient has either acknowledged the message or has it
//! committed. A crash inside the window loses only copies the relay never
//! confirmed, which the sender's outbox sends again after it reconnects.
//!
//! Memory is bounded by [`MAX_HELD_BYTES`]: past it, messages are
//! committed at once as before. (A held message also keeps its sender's
//! in-flight permit, `max_inflight_stores` per session, until it is
//! settled; but a sender that reconnects gets fresh permits, so that alone
//! would not bound it.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use blindrelay_wire::{MessageId, UserName};
use tokio::sync::Notify;

use crate::store::Body;

/// Bytes of message bodies held at once, over every session. A message that
/// would go past it is committed at once instead of held.
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// One held message: its stored bodies and how many recipients have not
/// acknowledged it yet.
pub(crate) struct Held {
    /// Hold order, so that copies are handed out oldest first.
    order: u64,
    bodies: Arc<[Body]>,
    /// Bytes of `bodies`, counted against [`MAX_HELD_BYTES`].
    size: usize,
    unacked: AtomicUsize,
    all_acked: Notify,
}

impl Held {
    /// Resolves when every recipient has acknowledged the message.
    pub(crate) async fn all_acked(&self) {
        self.all_acked.notified().await;
    }
}

/// recipient -> (sender, message id) -> the held message.
type Copies = HashMap<UserName, HashMap<(UserName, MessageId), Arc<Held>>>;

#[derive(Default)]
struct Inner {
    copies: Copies,
    next: u64,
    /// Body bytes of the messages held now (each counted once, however
    /// many recipients share it).
    bytes: usize,
}

/// Messages held back from the store, waiting for their recipients' ACKs.
#[derive(Default)]
pub(crate) struct WriteBehind {
    inner: Mutex<Inner>,
}

impl WriteBehind {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `sender`'s message `id` (its stored `bodies`) for
    /// `recipients`. `None` if a copy of it is already held (a resend):
    /// that one is committed at once instead.
    pub(crate) fn hold(
        &self,
        sender: &UserName,
        id: MessageId,
        recipients: &[UserName],
        bodies: Arc<[Body]>,
    ) -> Option<Arc<Held>> {
        if recipients.is_empty() {
            return None;
        }
        let size: usize = bodies.iter().map(|b| b.len()).sum();
        let mut g = self.lock();
        if g.bytes.saturating_add(size) > MAX_HELD_BYTES {
            return None;
        }
        let key = (sender.clone(), id);
        if recipients
            .iter()
            .any(|r| g.copies.get(r).is_some_and(|m| m.contains_key(&key)))
        {
            return None;
        }
        g.bytes += size;
        g.next += 1;
        let held = Arc::new(Held {
            order: g.next,
            bodies,
            size,
            unacked: AtomicUsize::new(recipients.len()),
            all_acked: Notify::new(),
        });
        for r in recipients {
            g.copies
                .entry(r.clone())
                .or_default()
                .insert(key.clone(), held.clone());
        }
        Some(held)
    }

    /// `who` acknowledged these messages: settles the held copies and
    /// returns the other ids, which only the store can settle.
    pub(crate) fn acked(
        &self,
        who: &UserName,
        ids: Vec<(UserName, MessageId)>,
    ) -> Vec<(UserName, MessageId)> {
        let mut g = self.lock();
        let Some(mine) = g.copies.get_mut(who) else {
            return ids;
        };
        let mut rest = Vec::new();
        for key in ids {
            match mine.remove(&key) {
                Some(h) => {
                    if h.unacked.fetch_sub(1, Ordering::AcqRel) == 1 {
                        // notify_one keeps a permit if nobody waits yet.
                        h.all_acked.notify_one();
                    }
                }
                None => rest.push(key),
            }
        }
        if mine.is_empty() {
            g.copies.remove(who);
        }
        rest
    }

    /// The bodies of every copy held for `who`, oldest first: a session
    /// that logs in while they are held gets them with the backlog (they
    /// may not be in the store yet).
    pub(crate) fn held_for(&self, who: &UserName) -> Vec<Arc<[Body]>> {
        let g = self.lock();
        let mut held: Vec<&Arc<Held>> = g
            .copies
            .get(who)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        held.sort_by_key(|h| h.order);
        held.into_iter().map(|h| h.bodies.clone()).collect()
    }

    /// Ends the hold (called once per held message): returns the
    /// recipients who have not acknowledged the message (their copies must
    /// now be committed). Each copy is settled once, either here or by
    /// [`WriteBehind::acked`].
    pub(crate) fn release(
        &self,
        held: &Arc<Held>,
        sender: &UserName,
        id: MessageId,
        recipients: &[UserName],
    ) -> Vec<UserName> {
        let mut g = self.lock();
        g.bytes = g.bytes.saturating_sub(held.size);
        let key = (sender.clone(), id);
        let mut left = Vec::new();
        for r in recipients {
            let Some(mine) = g.copies.get_mut(r) else {
                continue;
            };
            if mine.get(&key).is_some_and(|h| Arc::ptr_eq(h, held)) {
                mine.remove(&key);
                left.push(r.clone());
            }
            if mine.is_empty() {
                g.copies.remove(r);
            }
        }
        left
    }

    /// Copies held right now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().copies.values().map(|m| m.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn n(s: &str) -> UserName {
        UserName::new(s).unwrap()
    }

    fn body() -> Arc<[Body]> {
        vec![Body::from(vec![1u8, 2, 3])].into()
    }

    #[tokio::test]
    async fn every_ack_settles_the_message_and_nothing_is_left_to_store() {
        let wb = WriteBehind::default();
        let id = MessageId([1; 16]);
        let rcpts = [n("bob"), n("carol")];
        let h = wb.hold(&n("alice"), id, &rcpts, body()).unwrap();
        assert_eq!(wb.len(), 2);
        assert!(wb.acked(&n("bob"), vec![(n("alice"), id)]).is_empty());
        // Not yet: carol has not acknowledged.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), h.all_acked())
                .await
                .is_err()
        );
        // An ACK naming another sender or id settles nothing.
        let other_sender = (n("mallory"), id);
        let other_id = (n("alice"), MessageId([2; 16]));
        assert_eq!(
            wb.acked(&n("carol"), vec![other_sender.clone(), other_id.clone()]),
            vec![other_sender, other_id]
        );
        assert!(wb.acked(&n("carol"), vec![(n("alice"), id)]).is_empty());
        tokio::time::timeout(Duration::from_secs(1), h.all_acked())
            .await
            .unwrap();
        assert!(wb.release(&h, &n("alice"), id, &rcpts).is_empty());
        assert_eq!(wb.len(), 0);
    }

    #[test]
    fn unacknowledged_recipients_are_returned_once_for_the_store() {
        let wb = WriteBehind::default();
        let id = MessageId([1; 16]);
        let rcpts = [n("bob"), n("carol")];
        let h = wb.hold(&n("alice"), id, &rcpts, body()).unwrap();
        wb.acked(&n("carol"), vec![(n("alice"), id)]);
        assert_eq!(wb.release(&h, &n("alice"), id, &rcpts), vec![n("bob")]);
        // A late ACK finds nothing held: it goes to the store.
        assert_eq!(
            wb.acked(&n("bob"), vec![(n("alice"), id)]),
            vec![(n("alice"), id)]
        );
        assert!(wb.release(&h, &n("alice"), id, &rcpts).is_empty());
        assert_eq!(wb.len(), 0);
    }

    #[test]
    fn a_resend_of_a_held_message_is_not_held_twice() {
        let wb = WriteBehind::default();
        let id = MessageId([1; 16]);
        let first = wb.hold(&n("alice"), id, &[n("bob")], body()).unwrap();
        assert!(wb.hold(&n("alice"), id, &[n("bob")], body()).is_none());
        // Another sender's message with the same id is another message.
        assert!(wb.hold(&n("mallory"), id, &[n("bob")], body()).is_some());
        assert_eq!(
            wb.release(&first, &n("alice"), id, &[n("bob")]),
            vec![n("bob")]
        );
        assert!(wb.hold(&n("alice"), id, &[], body()).is_none());
    }

    #[test]
    fn held_bytes_are_bounded_and_given_back_on_release() {
        let wb = WriteBehind::default();
        let half: Arc<[Body]> = vec![Body::from(vec![0u8; MAX_HELD_BYTES / 2])].into();
        let a = wb
            .hold(&n("alice"), MessageId([1; 16]), &[n("bob")], half.clone())
            .unwrap();
        let b = wb
            .hold(&n("alice"), MessageId([2; 16]), &[n("bob")], half.clone())
            .unwrap();
        // Full: the next one is committed at once instead.
        assert!(
            wb.hold(&n("alice"), MessageId([3; 16]), &[n("bob")], body())
                .is_none()
        );
        wb.release(&a, &n("alice"), MessageId([1; 16]), &[n("bob")]);
        assert!(
            wb.hold(&n("alice"), MessageId([3; 16]), &[n("bob")], body())
                .is_some()
        );
        wb.release(&b, &n("alice"), MessageId([2; 16]), &[n("bob")]);
    }

    #[test]
    fn a_recipient_logging_in_gets_its_held_copies_oldest_first() {
        let wb = WriteBehind::default();
        let (a, b) = (MessageId([1; 16]), MessageId([2; 16]));
        let first: Arc<[Body]> = vec![Body::from(vec![1u8])].into();
        let second: Arc<[Body]> = vec![Body::from(vec![2u8]), Body::from(vec![3u8])].into();
        wb.hold(&n("alice"), a, &[n("bob")], first.clone()).unwrap();
        wb.hold(&n("carol"), b, &[n("bob"), n("dave")], second.clone())
            .unwrap();
        assert_eq!(wb.held_for(&n("bob")), vec![first, second.clone()]);
        assert_eq!(wb.held_for(&n("dave")), vec![second]);
        assert!(wb.held_for(&n("alice")).is_empty());
        wb.acked(&n("bob"), vec![(n("alice"), a), (n("carol"), b)]);
        assert!(wb.held_for(&n("bob")).is_empty());
    }
}
