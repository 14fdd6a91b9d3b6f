//! The rules every SEND on a connection must follow, as plain synchronous
//! code (no tokio, no I/O), so that each rule is a unit test.
//!
//! * **Sender binding.** The declared sender must be the connection's
//!   certificate identity. A forged sender is dropped silently (the report's
//!   `test_spoofing.py`); the `spoof_strikes`-th forged frame ends the
//!   connection.
//! * **Fragment order.** Fragments of a message arrive in order, back to
//!   back, with the same id, count and recipients; a new message starts
//!   only when the previous one is complete. This is what lets the rate
//!   limit count messages (first fragments) while the cost of one message
//!   stays bounded by `MAX_FRAGMENTS` frames.
//! * **Flags.** STORED is the relay's to set, never a client's; a RECEIPT is
//!   one fragment to named users.
//!
//! A broken rule is a [`Violation`], which names the goodbye code and the
//! reason the client is told.

use blindrelay_wire::{GoodbyeCode, MessageId, RoutedHeader, Target, UserName};

use crate::rate::Budget;

/// A rule broken by a client; the connection ends with its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A continuation fragment with no message in progress.
    NoFirstFragment,
    /// A fragment that is not the next one of the message in progress.
    OutOfSequence,
    /// A SEND with the STORED flag.
    StoredFlag,
    /// A RECEIPT of several fragments, or to everyone.
    ReceiptShape,
    /// The `spoof_strikes`-th frame with a forged sender.
    RepeatedSpoofing,
}

impl Violation {
    /// The goodbye code the client gets.
    pub(crate) fn code(self) -> GoodbyeCode {
        match self {
            Violation::RepeatedSpoofing => GoodbyeCode::Spoofing,
            _ => GoodbyeCode::ProtocolViolation,
        }
    }

    /// The reason the client is told and the log records.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Violation::NoFirstFragment => "continuation fragment without a first fragment",
            Violation::OutOfSequence => "fragment out of sequence",
            Violation::StoredFlag => "the stored flag is set by the relay only",
            Violation::ReceiptShape => "a receipt is one fragment to named users",
            Violation::RepeatedSpoofing => "repeated forged sender",
        }
    }
}

/// What to do with a SEND that broke no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Relay it. A first fragment is counted against `budget`.
    Relay {
        /// The budget a first fragment is counted against.
        budget: Budget,
    },
    /// A forged sender below the strike limit: drop it, say nothing.
    DropForged {
        /// Forged frames so far on this connection.
        strike: u32,
    },
}

/// The message in progress: its id, the next index, its count and target.
struct InProgress {
    msg_id: MessageId,
    next: u16,
    count: u16,
    target: Target,
}

/// The rule book of one connection.
pub(crate) struct SendRules {
    identity: UserName,
    max_strikes: u32,
    strikes: u32,
    current: Option<InProgress>,
}

impl SendRules {
    /// Rules for a connection bound to `identity`, ended at the
    /// `max_strikes`-th forged sender.
    pub(crate) fn new(identity: UserName, max_strikes: u32) -> Self {
        Self {
            identity,
            max_strikes,
            strikes: 0,
            current: None,
        }
    }

    /// Checks the next SEND's header, in order: sender, fragment order,
    /// flags.
    pub(crate) fn check(&mut self, h: &RoutedHeader) -> Result<Verdict, Violation> {
        if h.sender != self.identity {
            self.strikes += 1;
            if self.strikes >= self.max_strikes {
                return Err(Violation::RepeatedSpoofing);
            }
            return Ok(Verdict::DropForged {
                strike: self.strikes,
            });
        }
        self.sequence(h)?;
        if h.flags.is_stored() {
            return Err(Violation::StoredFlag);
        }
        let receipt = h.flags.is_receipt();
        if receipt && (h.fragment.count() != 1 || h.target == Target::Everyone) {
            return Err(Violation::ReceiptShape);
        }
        Ok(Verdict::Relay {
            budget: if receipt {
                Budget::Receipt
            } else {
                Budget::Message
            },
        })
    }

    fn sequence(&mut self, h: &RoutedHeader) -> Result<(), Violation> {
        let pos = h.fragment;
        match self.current.take() {
            None if !pos.is_first() => return Err(Violation::NoFirstFragment),
            Some(p)
                if h.msg_id != p.msg_id
                    || pos.index() != p.next
                    || pos.count() != p.count
                    || h.target != p.target =>
            {
                return Err(Violation::OutOfSequence);
            }
            None | Some(_) => {}
        }
        if !pos.is_last() {
            self.current = Some(InProgress {
                msg_id: h.msg_id,
                next: pos.index() + 1,
                count: pos.count(),
                target: h.target.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindrelay_wire::{FragmentPos, RoutedFlags};

    fn h(id: u8, i: u16, c: u16, to: &str) -> RoutedHeader {
        RoutedHeader {
            msg_id: MessageId([id; 16]),
            fragment: FragmentPos::new(i, c).unwrap(),
            flags: RoutedFlags::NONE,
            sender: UserName::new("alice").unwrap(),
            target: Target::Users(vec![UserName::new(to).unwrap()]),
        }
    }

    fn rules() -> SendRules {
        SendRules::new(UserName::new("alice").unwrap(), 3)
    }

    #[test]
    fn every_violation_names_its_own_reason_and_only_spoofing_says_so() {
        use Violation::*;
        let all = [
            NoFirstFragment,
            OutOfSequence,
            StoredFlag,
            ReceiptShape,
            RepeatedSpoofing,
        ];
        let reasons: std::collections::HashSet<&str> = all.iter().map(|v| v.reason()).collect();
        assert_eq!(reasons.len(), all.len());
        // Each is a printable GOODBYE reason, and says which rule broke.
        for v in all {
            assert!(
                !v.reason().is_empty()
                    && v.reason().len() <= blindrelay_wire::message::REASON_MAX_LEN,
                "{v:?}"
            );
        }
        assert_eq!(OutOfSequence.reason(), "fragment out of sequence");
        assert_eq!(RepeatedSpoofing.reason(), "repeated forged sender");
        for v in all {
            let spoofing = v == RepeatedSpoofing;
            assert_eq!(v.code() == GoodbyeCode::Spoofing, spoofing, "{v:?}");
        }
    }

    const RELAY: Result<Verdict, Violation> = Ok(Verdict::Relay {
        budget: Budget::Message,
    });

    #[test]
    fn fragments_must_be_in_order_and_consistent() {
        let mut t = rules();
        assert_eq!(t.check(&h(1, 0, 3, "bob")), RELAY);
        assert_eq!(t.check(&h(1, 1, 3, "bob")), RELAY);
        assert_eq!(t.check(&h(1, 2, 3, "bob")), RELAY);
        assert_eq!(t.check(&h(2, 0, 1, "bob")), RELAY);

        let mut t = rules();
        assert_eq!(t.check(&h(1, 1, 3, "bob")), Err(Violation::NoFirstFragment));
        let mut t = rules();
        t.check(&h(1, 0, 3, "bob")).unwrap();
        assert_eq!(
            t.check(&h(1, 2, 3, "bob")),
            Err(Violation::OutOfSequence),
            "skipped fragment"
        );
        let mut t = rules();
        t.check(&h(1, 0, 3, "bob")).unwrap();
        assert_eq!(
            t.check(&h(2, 0, 1, "bob")),
            Err(Violation::OutOfSequence),
            "interleaved message"
        );
        let mut t = rules();
        t.check(&h(1, 0, 3, "bob")).unwrap();
        assert_eq!(
            t.check(&h(1, 1, 3, "carol")),
            Err(Violation::OutOfSequence),
            "re-targeted fragment"
        );
        let mut t = rules();
        t.check(&h(1, 0, 3, "bob")).unwrap();
        assert_eq!(
            t.check(&h(1, 1, 4, "bob")),
            Err(Violation::OutOfSequence),
            "changed count"
        );
    }

    #[test]
    fn forged_senders_are_dropped_until_the_last_strike() {
        let mut t = rules();
        let mut forged = h(1, 0, 1, "bob");
        forged.sender = UserName::new("bob").unwrap();
        assert_eq!(t.check(&forged), Ok(Verdict::DropForged { strike: 1 }));
        // A forged frame is not part of any message's sequence.
        assert_eq!(t.check(&h(2, 0, 1, "bob")), RELAY);
        assert_eq!(t.check(&forged), Ok(Verdict::DropForged { strike: 2 }));
        assert_eq!(t.check(&forged), Err(Violation::RepeatedSpoofing));
        assert_eq!(Violation::RepeatedSpoofing.code(), GoodbyeCode::Spoofing);
    }

    #[test]
    fn only_the_relay_sets_stored_and_receipts_are_single_named_fragments() {
        let mut stored = h(1, 0, 1, "bob");
        stored.flags = RoutedFlags::STORED;
        assert_eq!(rules().check(&stored), Err(Violation::StoredFlag));
        assert_eq!(Violation::StoredFlag.code(), GoodbyeCode::ProtocolViolation);
        let mut receipt = h(1, 0, 1, "bob");
        receipt.flags = RoutedFlags::RECEIPT;
        assert_eq!(
            rules().check(&receipt),
            Ok(Verdict::Relay {
                budget: Budget::Receipt
            })
        );
        let mut long = h(1, 0, 2, "bob");
        long.flags = RoutedFlags::RECEIPT;
        assert_eq!(rules().check(&long), Err(Violation::ReceiptShape));
        let mut room = h(1, 0, 1, "bob");
        room.flags = RoutedFlags::RECEIPT;
        room.target = Target::Everyone;
        assert_eq!(rules().check(&room), Err(Violation::ReceiptShape));
    }
}
