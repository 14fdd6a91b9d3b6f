//! Which CRL a device takes from the relay: only one the CA signed, that
//! is current, and that is newer than the one in use, so that the relay
//! can neither forge a CRL nor roll one back.

use blindrelay_pki::crl::CheckedCrl;

/// The CRL `der` (from the relay) if it should replace `current`: the CA
/// signed it, it is current at `now`, and its number is higher (the same
/// CRL again, or an older one, changes nothing: the relay cannot roll the
/// CRL back).
pub(super) fn newer_crl(
    current: Option<&CheckedCrl>,
    der: &[u8],
    ca_der: &[u8],
    now: i64,
) -> Option<CheckedCrl> {
    let new = match CheckedCrl::check(der, ca_der, now) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the relay's CRL does not verify; ignored");
            return None;
        }
    };
    match current {
        Some(cur) if new.number() <= cur.number() => None,
        _ => Some(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::member::now;
    use blindrelay_pki::CertificateAuthority;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

    fn der_of_crl(pem: &str) -> Vec<u8> {
        CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn only_a_newer_crl_the_ca_signed_replaces_the_one_in_use() {
        let ca = CertificateAuthority::create("test").unwrap();
        let other = CertificateAuthority::create("other").unwrap();
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())
            .unwrap()
            .to_vec();
        let now = i64::try_from(now()).unwrap();
        let crl = |n| der_of_crl(&ca.sign_crl(&[], n).unwrap());
        let first = newer_crl(None, &crl(2), &ca_der, now).unwrap();
        assert_eq!(first.number(), 2);
        // The same, an older one: nothing changes.
        assert!(newer_crl(Some(&first), &crl(2), &ca_der, now).is_none());
        assert!(newer_crl(Some(&first), &crl(1), &ca_der, now).is_none());
        // A newer one replaces it.
        assert_eq!(
            newer_crl(Some(&first), &crl(3), &ca_der, now)
                .unwrap()
                .number(),
            3
        );
        // Another CA's, or bytes that are no CRL: refused, even with none in use.
        let foreign = der_of_crl(&other.sign_crl(&[], 9).unwrap());
        assert!(newer_crl(None, &foreign, &ca_der, now).is_none());
        assert!(newer_crl(Some(&first), &foreign, &ca_der, now).is_none());
        assert!(newer_crl(None, b"not a crl", &ca_der, now).is_none());
        // One past its nextUpdate (and grace) is not current: refused.
        let far = now + 400 * 24 * 3600;
        assert!(newer_crl(None, &crl(5), &ca_der, far).is_none());
    }
}
