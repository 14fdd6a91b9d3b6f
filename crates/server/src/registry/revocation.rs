//! What a new CRL does to the registry: the sessions of revoked
//! certificates are closed, revoked users leave the directory, and the
//! CRL frames every client gets are replaced and sent.

use tracing::warn;

use blindrelay_wire::{GoodbyeCode, UserName};

use super::{Registry, Revoked};
use crate::SECURITY;
use crate::outbound::{Outbound, encode};

impl Registry {
    /// Forgets users whose certificate serial is revoked; returns them.
    pub(crate) fn forget_revoked(&self, revoked: &Revoked) -> Vec<UserName> {
        let mut g = self.lock();
        let gone: Vec<UserName> = g
            .known
            .iter()
            .filter(|(_, k)| revoked.contains(&k.serial))
            .map(|(n, _)| n.clone())
            .collect();
        for n in &gone {
            g.known.remove(n);
        }
        gone
    }

    /// Keeps the CA's current CRL (DER) for every login sequence, and
    /// sends it to every session that understands CRL frames now.
    pub(crate) fn set_crl(&self, der: &[u8]) {
        let frames: Vec<Outbound> = match blindrelay_wire::crl_messages(der) {
            Ok(m) => m.iter().filter_map(encode).collect(),
            Err(e) => {
                warn!(error = %e, "the CRL does not fit in CRL frames; clients will not get it from the relay");
                Vec::new()
            }
        };
        let mut g = self.lock();
        for (n, ident) in &g.online {
            for s in ident.sessions.iter().filter(|s| s.wants_crl) {
                for f in &frames {
                    if !s.offer(n, f) {
                        break;
                    }
                }
            }
        }
        g.crl_frames = frames;
    }

    /// The current CRL's frames, for a device session's login.
    pub(crate) fn crl_frames(&self) -> Vec<Outbound> {
        self.lock().crl_frames.clone()
    }

    /// Whether `serial` is on the relay's current CRL (a certificate
    /// revoked after its handshake was verified against an older one).
    pub(crate) fn is_revoked(&self, serial: &[u8]) -> bool {
        self.lock().revoked.contains(serial)
    }

    /// Records the CRL and closes every session whose certificate serial is
    /// revoked.
    pub(crate) fn kill_revoked(&self, revoked: &Revoked) -> usize {
        let mut g = self.lock();
        g.revoked = revoked.clone();
        let mut n = 0;
        for (name, ident) in &g.online {
            for s in ident
                .sessions
                .iter()
                .filter(|s| revoked.contains(&s.serial))
            {
                warn!(target: SECURITY, identity = %name, session = s.id,
                    "certificate revoked while connected, disconnecting");
                s.kill(GoodbyeCode::Revoked, "certificate revoked");
                n += 1;
            }
        }
        n
    }
}
