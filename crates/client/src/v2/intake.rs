//! A device's intake: each mailbox item processed, held when it comes
//! from an epoch the device has not reached, released in order when the
//! missing commit applies, and acknowledged only after its events are
//! handed over (PROTOCOL.md 11.3).

use blindrelay_ds::Delivery;
use blindrelay_mls::{Held, MlsError, Position, Received};

use super::member::{Member, V2Event, now};
use crate::error::ClientError;

impl Member {
    /// Processes one mailbox item and acknowledges it. Events are handed
    /// to `events` before the acknowledgement is sent, so that a connection
    /// that fails at the acknowledgement loses none of them.
    pub(super) async fn process(
        &mut self,
        seq: u64,
        item: Delivery,
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        self.take_crls();
        self.device.trust().set_now(now());
        // This device's own re-join, ordered by the relay though its
        // answer was lost with a connection (looked up once: usually no
        // re-join is waiting).
        let own_rejoin = match &item {
            Delivery::Group { message, .. } => self.device.is_own_rejoin(message),
            Delivery::Welcome { .. } => None,
        };
        if let Some(g) = own_rejoin {
            self.rejoined(&g, events)?;
            return self.link.ack(seq).await;
        }
        match item {
            // A copy of a Welcome this device joined by (its acknowledgement
            // was lost with a connection) would read as a takeover attempt:
            // it is dropped first. (Welcomes are rare: a digest lookup each.)
            Delivery::Welcome { welcome, .. } if self.device.already_processed(&welcome)? => {}
            Delivery::Welcome { group_id, welcome } => match self.device.join(&welcome) {
                Ok(group) => {
                    self.key_packages_left = self.key_packages_left.saturating_sub(1);
                    events.push(V2Event::Joined { group });
                }
                Err(MlsError::GroupHeld) => {
                    tracing::warn!(target: "blindrelay::security",
                        "a Welcome for a group this device already holds was refused (takeover attempt)");
                    events.push(V2Event::TakeoverRefused { group: group_id });
                }
                Err(MlsError::Refused) => {
                    tracing::warn!("a Welcome was refused");
                    events.push(V2Event::Refused { group: group_id });
                }
                // A local failure (storage): not acknowledged, so the
                // relay hands the item out again.
                Err(e) => return Err(e.into()),
            },
            Delivery::Group { group_id, message } => match self.device.position(&message) {
                Position::Ahead {
                    group_id,
                    epoch,
                    current,
                } => {
                    let before = self.device.behind(&group_id)?;
                    match self.device.hold(&group_id, epoch, &message)? {
                        Held::Kept => {
                            self.note_behind(&group_id);
                            if before.is_none_or(|(_, seen)| seen < epoch) {
                                tracing::warn!(target: "blindrelay::security", at = current, seen = epoch,
                                    "a message from an epoch this device has not reached: a commit is missing; held until it arrives");
                                events.push(V2Event::Behind {
                                    group: group_id,
                                    at: current,
                                    seen: epoch,
                                });
                            }
                        }
                        Held::Full => {
                            tracing::warn!(target: "blindrelay::security",
                                "a message from a future epoch was refused: this group's hold is full");
                            events.push(V2Event::Refused { group: group_id });
                        }
                    }
                }
                // This device's own commit handed back after it was
                // applied, or a handshake already superseded: nothing new.
                Position::PastHandshake => {}
                Position::Now | Position::Other => {
                    self.receive(group_id, &message, events)?;
                }
            },
        }
        self.link.ack(seq).await
    }

    /// Processes one group message, then every held message its commit
    /// (if it was one) made processable, in epoch order.
    fn receive(
        &mut self,
        label: Vec<u8>,
        message: &[u8],
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        let group = match self.receive_one(label, message, events)? {
            Some(g) => g,
            None => return Ok(()),
        };
        let had_held = self.device.holds_messages(&group)?;
        while let Ok(Some((n, held))) = self.device.next_held(&group) {
            // Released first: a held message is tried once.
            self.device.release_held(n)?;
            self.receive_one(group.clone(), &held, events)?;
        }
        if had_held
            && let Ok(None) = self.device.behind(&group)
            && let Ok(at) = self.device.epoch(&group)
        {
            self.rejoin_at.remove(&group);
            tracing::info!(at, "the missing commits arrived; the group caught up");
            events.push(V2Event::CaughtUp { group, at });
        }
        Ok(())
    }

    /// Processes one group message; `Some(group)` if it was a commit that
    /// moved the group to a new epoch (held messages may be ready).
    fn receive_one(
        &mut self,
        label: Vec<u8>,
        message: &[u8],
        events: &mut Vec<V2Event>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let names = |m: &blindrelay_mls::Member| (m.user.clone(), m.device.clone());
        match self.device.receive(message) {
            Ok(Received::Message {
                group_id,
                sender,
                body,
            }) => {
                self.read_payload(group_id, names(&sender), &body, events)?;
                Ok(None)
            }
            Ok(Received::Commit {
                group_id,
                committer,
                added,
                removed,
                removed_me,
                renamed,
                rejoined,
                ..
            }) => {
                if removed_me {
                    events.push(V2Event::RemovedMe { group: group_id });
                    return Ok(None);
                }
                if rejoined {
                    events.push(V2Event::MemberRejoined {
                        group: group_id.clone(),
                        who: names(&committer),
                    });
                    return Ok(Some(group_id));
                }
                events.push(V2Event::Changed {
                    group: group_id.clone(),
                    by: names(&committer),
                    added: added.iter().map(names).collect(),
                    removed: removed.iter().map(names).collect(),
                    renamed: renamed.map(|n| n.as_str().to_string()),
                });
                Ok(Some(group_id))
            }
            Ok(Received::LeaveRequest { group_id, .. }) => {
                self.leave_requests.insert(group_id);
                Ok(None)
            }
            Err(MlsError::Forked { epoch }) => {
                tracing::warn!(target: "blindrelay::security", epoch,
                    "a message from another history of the group: the relay forked it (or forged the tag)");
                events.push(V2Event::Forked {
                    group: label,
                    epoch,
                });
                Ok(None)
            }
            Err(MlsError::BadCommit { epoch, by }) => {
                tracing::warn!(target: "blindrelay::security", epoch, by = %format!("{}@{}", by.user, by.device),
                    "a member signed a change to a group that no other member can apply; the group is stuck");
                events.push(V2Event::BadCommit {
                    group: label,
                    epoch,
                    by: names(&by),
                });
                Ok(None)
            }
            // This device's own commit read back, a handshake already
            // superseded, or a copy of what it processed before (the
            // acknowledgement was lost with a connection): nothing new.
            // Asked only of what MLS refused, off the hot path.
            Err(MlsError::Refused)
                if self.device.is_past_handshake(message)
                    || self.device.already_processed(message)? =>
            {
                Ok(None)
            }
            Err(MlsError::Refused) => {
                tracing::warn!("a group message was refused");
                events.push(V2Event::Refused { group: label });
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}
