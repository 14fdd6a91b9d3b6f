//! Transport failures in words a person understands.
//!
//! A TLS or socket error reaches the user as "connection lost: ..." or
//! "cannot connect: ...". rustls' own messages are written for developers
//! (type names such as `DnsName(...)`, a documentation link for an
//! unexpected end of stream), so the errors people meet are named here;
//! anything else keeps its own text.

use rustls::{AlertDescription, CertificateError};

/// What a TLS alert from the relay means for this client.
fn alert(a: AlertDescription) -> &'static str {
    match a {
        AlertDescription::CertificateRevoked => "the relay refused our certificate: it is revoked",
        AlertDescription::CertificateExpired => "the relay refused our certificate: it has expired",
        AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateRequired
        | AlertDescription::AccessDenied => {
            "the relay refused our certificate (is it from the relay's CA?)"
        }
        AlertDescription::NoApplicationProtocol | AlertDescription::ProtocolVersion => {
            "the relay speaks another version of the protocol"
        }
        _ => "the relay broke off the TLS handshake",
    }
}

/// What is wrong with the relay's certificate.
fn certificate(c: &CertificateError) -> &'static str {
    match c {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the relay's certificate is not for this host name (check --server)"
        }
        CertificateError::UnknownIssuer => "the relay's certificate is not from our CA",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the relay's certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the relay's certificate is not valid yet (check this machine's clock)"
        }
        CertificateError::Revoked => "the relay's certificate is revoked",
        _ => "the relay's certificate was refused",
    }
}

/// A socket or TLS error, for a person.
pub fn explain_io(e: &std::io::Error) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return explain_tls(tls);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the relay closed the connection".into(),
        std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the relay running, on this address?)".into()
        }
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            "the connection was reset".into()
        }
        _ => e.to_string(),
    }
}

/// A rustls error, for a person.
pub fn explain_tls(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(a) => alert(*a).into(),
        rustls::Error::InvalidCertificate(c) => certificate(c).into(),
        rustls::Error::NoApplicationProtocol => {
            "the relay speaks another version of the protocol".into()
        }
        other => format!("TLS failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_type_names_or_links_reach_the_user() {
        let eof = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        );
        assert_eq!(explain_io(&eof), "the relay closed the connection");
        let name = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
        );
        assert!(explain_io(&name).contains("not for this host name"));
        let revoked = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRevoked),
        );
        assert!(explain_io(&revoked).contains("revoked"));
        for e in [eof, name, revoked] {
            let t = explain_io(&e);
            assert!(
                !t.contains("http") && !t.contains("Name(") && !t.contains("Some("),
                "{t}"
            );
        }
    }
}
