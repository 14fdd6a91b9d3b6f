//! The user's CRL file, watched: the connection task looks at it on every
//! tick and offers it to the core when it changed (the core decides whether
//! it may replace the CRL in use).

use blindrelay_net::unix_ms;

use crate::ClientConfig;
use crate::core::{ClientCore, CrlSource};
use crate::event::Event;

/// The CRL file, watched: what it looked like when last read.
#[derive(Default)]
pub(crate) struct CrlFile {
    stamp: Option<(std::time::SystemTime, u64)>,
}

impl CrlFile {
    /// Reads the CRL file if it changed since the last look, and offers it
    /// to the core.
    pub(crate) fn poll(&mut self, cfg: &ClientConfig, core: &mut ClientCore) -> Vec<Event> {
        let stamp = cfg
            .crl
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_none() || stamp == self.stamp {
            return Vec::new();
        }
        self.stamp = stamp;
        match cfg.read_crl() {
            None => Vec::new(),
            Some(Ok(der)) => core.offer_crl(&der, CrlSource::File, unix_ms()),
            Some(Err(e)) => vec![Event::Warning(format!("crl.pem: {e}"))],
        }
    }
}
