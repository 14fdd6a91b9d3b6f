//! Peers and trust: which certificates the client believes, for whom.
//!
//! The relay hands out certificates; a peer is trusted only once its
//! certificate verified against the CA ([`VerifiedPeer`]) and matched the
//! pin kept in the store (trust on first use). A certificate that differs
//! from the pin is held as *pending*: nothing is sent to or accepted from
//! that peer until the user has displayed its safety number and accepted
//! it. A certificate that fails verification removes whatever trust the
//! name had.

use std::collections::BTreeMap;

use blindrelay_e2e::{TrustRoot, VerifiedPeer, safety_number};
use blindrelay_pki::crl::{CheckedCrl, CrlError};
use blindrelay_wire::UserName;
use blindrelay_wire::codec::hex;

use crate::error::ClientError;
use crate::event::Event;
use crate::store::{ClientStore, PinCheck};

/// Most peers remembered in memory.
pub const MAX_PEERS: usize = 10_000;

#[derive(Default)]
struct Peer {
    online: bool,
    trusted: Option<VerifiedPeer>,
    /// A verified certificate that differs from the pin, awaiting the user.
    pending: Option<VerifiedPeer>,
    /// The pending fingerprint whose safety number the user has seen.
    pending_checked: Option<[u8; 32]>,
}

/// A peer as a user interface shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Who.
    pub name: UserName,
    /// Connected now.
    pub online: bool,
    /// Their certificate verified against the CA and matches the pin.
    pub verified: bool,
    /// A different certificate was offered and awaits `/verify`, `/accept`.
    pub key_changed: bool,
}

/// How far the client trusts a sender, for the receive pipeline.
pub(crate) enum Trust<'a> {
    /// Verified and pinned.
    Trusted(&'a VerifiedPeer),
    /// Its certificate changed and the user has not accepted the new one.
    Pending,
    /// Its certificate was refused (revoked, expired, not from the CA).
    Untrusted,
    /// The relay has never listed this name: no certificate seen at all.
    Unknown,
}

/// Every peer the client has heard of.
pub(crate) struct Peers {
    root: TrustRoot,
    me: UserName,
    my_cert: Vec<u8>,
    map: BTreeMap<UserName, Peer>,
}

impl Peers {
    pub(crate) fn new(root: TrustRoot, me: &VerifiedPeer) -> Self {
        Self {
            root,
            me: me.name().clone(),
            my_cert: me.cert_der().to_vec(),
            map: BTreeMap::new(),
        }
    }

    /// A new session starts: everyone is offline until listed again.
    pub(crate) fn all_offline(&mut self) {
        for p in self.map.values_mut() {
            p.online = false;
        }
    }

    /// `name` left.
    pub(crate) fn left(&mut self, name: &UserName) {
        if let Some(p) = self.map.get_mut(name) {
            p.online = false;
        }
    }

    /// Verified users online now (not those with a pending key change).
    pub(crate) fn online(&self) -> Vec<UserName> {
        self.map
            .iter()
            .filter(|(_, p)| p.online && p.trusted.is_some() && p.pending.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Everyone the relay has listed, with what the client thinks of them.
    pub(crate) fn list(&self) -> Vec<PeerInfo> {
        self.map
            .iter()
            .map(|(n, p)| PeerInfo {
                name: n.clone(),
                online: p.online,
                verified: p.trusted.is_some(),
                key_changed: p.pending.is_some(),
            })
            .collect()
    }

    pub(crate) fn trust(&self, name: &UserName) -> Trust<'_> {
        match self.map.get(name) {
            Some(Peer {
                trusted: Some(t),
                pending: None,
                ..
            }) => Trust::Trusted(t),
            Some(Peer {
                pending: Some(_), ..
            }) => Trust::Pending,
            Some(_) => Trust::Untrusted,
            None => Trust::Unknown,
        }
    }

    /// The certificate to encrypt to and verify `name` with.
    pub(crate) fn trusted(&self, name: &UserName) -> Result<&VerifiedPeer, ClientError> {
        match self.trust(name) {
            Trust::Trusted(t) => Ok(t),
            Trust::Pending => Err(ClientError::KeyChanged(name.clone())),
            Trust::Untrusted | Trust::Unknown => Err(ClientError::NoKey(name.clone())),
        }
    }

    /// Takes in a certificate the relay offered for `name`: verifies it,
    /// checks it against the pin, and says what changed.
    pub(crate) fn learn(
        &mut self,
        store: &mut dyn ClientStore,
        name: UserName,
        cert_der: &[u8],
        online: bool,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        if name == self.me {
            return;
        }
        if self.map.len() >= MAX_PEERS && !self.map.contains_key(&name) {
            events.push(Event::Warning(
                "too many peers; ignoring directory entry".into(),
            ));
            return;
        }
        let verified = match VerifiedPeer::verify(&name, cert_der, &self.root, now_ms / 1000) {
            Ok(v) => v,
            Err(e) => {
                events.push(Event::Warning(format!(
                    "REFUSED the certificate the relay offered for {name}: {e}. Nothing will be sent to or accepted from it."
                )));
                // Whatever was trusted before is not any more: the relay
                // now vouches for a bad certificate under this name.
                let p = self.map.entry(name).or_default();
                p.online = online;
                p.trusted = None;
                p.pending = None;
                return;
            }
        };
        let check = match store.check_pin(&name, &verified.fingerprint(), cert_der, now_ms) {
            Ok(c) => c,
            Err(e) => {
                events.push(Event::Warning(format!(
                    "cannot check the pin of {name}: {e}"
                )));
                return;
            }
        };
        let fp = verified.fingerprint_hex();
        let p = self.map.entry(name.clone()).or_default();
        p.online = online;
        match check {
            PinCheck::FirstUse | PinCheck::Match => {
                p.trusted = Some(verified);
                p.pending = None;
                if online {
                    events.push(Event::Joined {
                        name,
                        fingerprint: fp,
                        first_contact: check == PinCheck::FirstUse,
                    });
                }
            }
            PinCheck::Changed { pinned } => {
                if p.pending.as_ref().map(|v| v.fingerprint()) != Some(verified.fingerprint()) {
                    p.pending_checked = None;
                }
                p.pending = Some(verified);
                events.push(Event::KeyChanged {
                    name,
                    pinned: hex(&pinned),
                    offered: fp,
                });
            }
        }
    }

    /// The CRL in use, if any.
    pub(crate) fn crl(&self) -> Option<&CheckedCrl> {
        self.root.crl()
    }

    /// Takes `der` as the CRL if the CA signed it and it may replace the
    /// one in use (a higher number; the same CRL is no change). Returns
    /// the CRL if it is new. It is taken even if it is no longer current:
    /// then no peer verifies until a fresh one arrives.
    pub(crate) fn offer_crl(&mut self, der: &[u8]) -> Result<Option<CheckedCrl>, CrlError> {
        let crl = CheckedCrl::signed(der, self.root.ca_der())?;
        if let Some(current) = self.root.crl() {
            crl.may_replace(current)?;
            if crl.der() == current.der() {
                return Ok(None);
            }
        }
        self.root = self.root.clone().with_checked_crl(crl.clone());
        Ok(Some(crl))
    }

    /// Verifies every known peer again (after the CRL changed or expired):
    /// a certificate that no longer verifies loses its trust, loudly.
    pub(crate) fn reverify(&mut self, now_ms: u64, events: &mut Vec<Event>) {
        let root = &self.root;
        for (name, p) in self.map.iter_mut() {
            for slot in [&mut p.trusted, &mut p.pending] {
                let Some(v) = slot.as_ref() else { continue };
                if let Err(e) = VerifiedPeer::verify(name, v.cert_der(), root, now_ms / 1000) {
                    events.push(Event::Warning(format!(
                        "REFUSED the certificate of {name} now: {e}. Nothing will be sent to or accepted from it."
                    )));
                    *slot = None;
                }
            }
        }
    }

    /// The safety number shared with `name`. For a user whose certificate
    /// changed, it is the number of the *new* certificate (marked so), and
    /// computing it is what allows [`Peers::accept_key`].
    pub(crate) fn safety_number(&mut self, name: &UserName) -> Result<String, ClientError> {
        let p = self
            .map
            .get_mut(name)
            .ok_or_else(|| ClientError::NoKey(name.clone()))?;
        if let Some(pending) = &p.pending {
            p.pending_checked = Some(pending.fingerprint());
            return Ok(format!(
                "{} (NEW certificate {}, not accepted yet)",
                safety_number(&self.my_cert, pending.cert_der()),
                pending.fingerprint_hex().get(..16).unwrap_or_default()
            ));
        }
        let t = p
            .trusted
            .as_ref()
            .ok_or_else(|| ClientError::NoKey(name.clone()))?;
        Ok(safety_number(&self.my_cert, t.cert_der()))
    }

    /// Accepts `name`'s changed certificate and pins it. Only the
    /// certificate whose safety number the user displayed can be accepted,
    /// so the relay cannot swap it in between.
    pub(crate) fn accept_key(
        &mut self,
        store: &mut dyn ClientStore,
        name: &UserName,
        now_ms: u64,
    ) -> Result<String, ClientError> {
        let p = self
            .map
            .get_mut(name)
            .ok_or_else(|| ClientError::NoKey(name.clone()))?;
        let Some(pending) = &p.pending else {
            return Err(ClientError::NothingToAccept(name.clone()));
        };
        if p.pending_checked != Some(pending.fingerprint()) {
            return Err(ClientError::NotCompared(name.clone()));
        }
        store.pin(name, &pending.fingerprint(), pending.cert_der(), now_ms)?;
        let fp = pending.fingerprint_hex();
        p.trusted = p.pending.take();
        p.pending_checked = None;
        Ok(fp)
    }
}
