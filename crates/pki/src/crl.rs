//! Revocation that holds: a CRL is used only if the CA signed it, it is
//! current, and it is not older than the one it replaces.
//!
//! The CA signs each CRL for [`crate::ca::CRL_VALIDITY_DAYS`] (its
//! `nextUpdate`) and the administrator signs a fresh one with `pki crl` well
//! before that. A consumer (the relay, a client) accepts a CRL until
//! [`CRL_GRACE_SECS`] after its `nextUpdate`, so a late administrator does
//! not stop the organisation at once; past that, the CRL is refused (and
//! the relay refuses new logins, the client every peer) until a fresh one
//! arrives. A CRL with a lower CRL number than the one in use, or the same
//! number and other contents, is a rollback and is refused: whoever can
//! replace a file, or the relay that hands CRLs to clients, cannot bring a
//! revoked certificate back.

use std::collections::HashSet;

use x509_parser::prelude::*;

use crate::cert::normalize_serial;

/// How long after its `nextUpdate` a CRL is still used (7 days).
pub const CRL_GRACE_SECS: i64 = 7 * 86_400;
/// How far in the future a CRL's `thisUpdate` may lie (clock skew).
pub const CRL_MAX_SKEW_SECS: i64 = 300;
/// Largest CRL accepted, DER (about 5 000 revoked certificates).
pub const MAX_CRL_BYTES: usize = 256 * 1024;

/// Why a CRL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// Larger than [`MAX_CRL_BYTES`].
    #[error("the CRL is larger than {MAX_CRL_BYTES} bytes")]
    TooLarge,
    /// Not a parsable CRL, or bytes after it.
    #[error("the CRL cannot be parsed")]
    Unparsable,
    /// Its signature does not verify with the CA's key.
    #[error("the CRL is not signed by the CA")]
    NotFromCa,
    /// It has no CRL number, so a rollback could not be told apart.
    #[error("the CRL has no CRL number")]
    NoNumber,
    /// It has no `nextUpdate`.
    #[error("the CRL has no nextUpdate")]
    NoNextUpdate,
    /// Its `thisUpdate` lies in the future.
    #[error("the CRL is dated in the future (thisUpdate {this_update})")]
    NotYetValid {
        /// `thisUpdate`, Unix seconds.
        this_update: i64,
    },
    /// More than [`CRL_GRACE_SECS`] past its `nextUpdate`.
    #[error(
        "the CRL expired: nextUpdate {next_update} is more than {CRL_GRACE_SECS} s ago; the CA must sign a fresh one (`blindrelay pki crl`)"
    )]
    Expired {
        /// `nextUpdate`, Unix seconds.
        next_update: i64,
    },
    /// Older than the CRL in use.
    #[error("rollback refused: CRL number {offered} does not replace number {current}")]
    Rollback {
        /// The number of the CRL in use.
        current: u64,
        /// The number of the CRL offered.
        offered: u64,
    },
}

/// A CRL whose signature verified against the CA. Whether it is current
/// is a question of time: ask [`CheckedCrl::current_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCrl {
    der: Vec<u8>,
    number: u64,
    this_update: i64,
    next_update: i64,
    revoked: HashSet<Vec<u8>>,
}

impl CheckedCrl {
    /// Parses `crl_der` and verifies it was signed by the key of `ca_der`,
    /// then that it is current at `now` (Unix seconds).
    pub fn check(crl_der: &[u8], ca_der: &[u8], now: i64) -> Result<Self, CrlError> {
        let crl = Self::signed(crl_der, ca_der)?;
        crl.current_at(now)?;
        Ok(crl)
    }

    /// Parses `crl_der` and verifies it was signed by the key of `ca_der`,
    /// whatever the time.
    pub fn signed(crl_der: &[u8], ca_der: &[u8]) -> Result<Self, CrlError> {
        if crl_der.len() > MAX_CRL_BYTES {
            return Err(CrlError::TooLarge);
        }
        let (rest, crl) =
            CertificateRevocationList::from_der(crl_der).map_err(|_| CrlError::Unparsable)?;
        if !rest.is_empty() {
            return Err(CrlError::Unparsable);
        }
        let (_, ca) = X509Certificate::from_der(ca_der).map_err(|_| CrlError::NotFromCa)?;
        if crl.issuer() != ca.subject() {
            return Err(CrlError::NotFromCa);
        }
        crl.verify_signature(ca.public_key())
            .map_err(|_| CrlError::NotFromCa)?;
        let number = crl
            .crl_number()
            .and_then(|n| u64::try_from(n.clone()).ok())
            .ok_or(CrlError::NoNumber)?;
        let next_update = crl.next_update().ok_or(CrlError::NoNextUpdate)?.timestamp();
        Ok(Self {
            der: crl_der.to_vec(),
            number,
            this_update: crl.last_update().timestamp(),
            next_update,
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| normalize_serial(r.raw_serial()))
                .collect(),
        })
    }

    /// Ok if the CRL may be used at `now`: not dated in the future (beyond
    /// [`CRL_MAX_SKEW_SECS`]) and not more than [`CRL_GRACE_SECS`] past its
    /// `nextUpdate`.
    pub fn current_at(&self, now: i64) -> Result<(), CrlError> {
        if self.this_update > now.saturating_add(CRL_MAX_SKEW_SECS) {
            return Err(CrlError::NotYetValid {
                this_update: self.this_update,
            });
        }
        if now > self.next_update.saturating_add(CRL_GRACE_SECS) {
            return Err(CrlError::Expired {
                next_update: self.next_update,
            });
        }
        Ok(())
    }

    /// Ok if this CRL may replace `current`: a higher number, or the very
    /// same CRL.
    pub fn may_replace(&self, current: &CheckedCrl) -> Result<(), CrlError> {
        if self.number > current.number || self.der == current.der {
            Ok(())
        } else {
            Err(CrlError::Rollback {
                current: current.number,
                offered: self.number,
            })
        }
    }

    /// The CRL, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Its CRL number.
    pub fn number(&self) -> u64 {
        self.number
    }
    /// Its `nextUpdate`, Unix seconds.
    pub fn next_update(&self) -> i64 {
        self.next_update
    }
    /// The revoked serials, normalised.
    pub fn revoked(&self) -> &HashSet<Vec<u8>> {
        &self.revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CertificateAuthority;
    use ::time::OffsetDateTime;
    use rustls_pki_types::CertificateRevocationListDer;
    use rustls_pki_types::pem::PemObject;

    const NOW: i64 = 1_900_000_000;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap()
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    struct Ca {
        ca: CertificateAuthority,
        ca_der: Vec<u8>,
    }

    impl Ca {
        fn new() -> Self {
            let ca = CertificateAuthority::create("CRL Test CA").unwrap();
            let ca_der = rustls_pki_types::CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())
                .unwrap()
                .to_vec();
            Self { ca, ca_der }
        }
        fn crl(&self, revoked: &[Vec<u8>], number: u64, this: i64, next: i64) -> Vec<u8> {
            der(&self
                .ca
                .sign_crl_for(revoked, number, at(this), at(next))
                .unwrap())
        }
        fn fresh(&self, revoked: &[Vec<u8>], number: u64) -> Vec<u8> {
            self.crl(revoked, number, NOW - 60, NOW + 30 * 86_400)
        }
    }

    #[test]
    fn a_fresh_crl_from_the_ca_is_used_with_its_entries() {
        let ca = Ca::new();
        let crl = CheckedCrl::check(&ca.fresh(&[vec![0x42, 1]], 7), &ca.ca_der, NOW).unwrap();
        assert_eq!(crl.number(), 7);
        assert!(crl.revoked().contains(&vec![0x42, 1]));
        assert_eq!(crl.next_update(), NOW + 30 * 86_400);
    }

    #[test]
    fn the_grace_after_next_update_is_exact() {
        let ca = Ca::new();
        let next = NOW - 10 * 86_400;
        let crl = CheckedCrl::signed(&ca.crl(&[], 1, next - 86_400, next), &ca.ca_der).unwrap();
        assert_eq!(crl.current_at(next + CRL_GRACE_SECS), Ok(()));
        assert_eq!(
            crl.current_at(next + CRL_GRACE_SECS + 1),
            Err(CrlError::Expired { next_update: next })
        );
        assert_eq!(
            CheckedCrl::check(crl.der(), &ca.ca_der, NOW),
            Err(CrlError::Expired { next_update: next })
        );
    }

    #[test]
    fn a_crl_dated_in_the_future_is_refused_beyond_the_skew() {
        let ca = Ca::new();
        let this = NOW + CRL_MAX_SKEW_SECS;
        let crl = CheckedCrl::signed(&ca.crl(&[], 1, this, this + 86_400), &ca.ca_der).unwrap();
        assert_eq!(crl.current_at(NOW), Ok(()));
        assert_eq!(
            crl.current_at(NOW - 1),
            Err(CrlError::NotYetValid { this_update: this })
        );
    }

    #[test]
    fn a_crl_not_signed_by_the_ca_is_refused() {
        let ca = Ca::new();
        let other = Ca::new();
        assert_eq!(
            CheckedCrl::check(&other.fresh(&[], 1), &ca.ca_der, NOW),
            Err(CrlError::NotFromCa)
        );
        // One changed byte anywhere in the signed part.
        let good = ca.fresh(&[vec![9; 16]], 1);
        let at = good.windows(16).position(|w| w == [9; 16]).unwrap();
        let mut bad = good.clone();
        bad[at] ^= 1;
        assert_eq!(
            CheckedCrl::check(&bad, &ca.ca_der, NOW),
            Err(CrlError::NotFromCa)
        );
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(
            CheckedCrl::check(&longer, &ca.ca_der, NOW),
            Err(CrlError::Unparsable)
        );
        assert_eq!(
            CheckedCrl::check(&vec![0; MAX_CRL_BYTES + 1], &ca.ca_der, NOW),
            Err(CrlError::TooLarge)
        );
    }

    #[test]
    fn an_older_crl_never_replaces_a_newer_one() {
        let ca = Ca::new();
        let check = |d: &[u8]| CheckedCrl::check(d, &ca.ca_der, NOW).unwrap();
        let five = check(&ca.fresh(&[vec![1]], 5));
        let four = check(&ca.fresh(&[], 4));
        let other_five = check(&ca.fresh(&[], 5));
        let six = check(&ca.fresh(&[vec![1]], 6));
        assert_eq!(
            four.may_replace(&five),
            Err(CrlError::Rollback {
                current: 5,
                offered: 4
            })
        );
        assert_eq!(
            other_five.may_replace(&five),
            Err(CrlError::Rollback {
                current: 5,
                offered: 5
            })
        );
        assert_eq!(five.may_replace(&five), Ok(()));
        assert_eq!(six.may_replace(&five), Ok(()));
    }
}
