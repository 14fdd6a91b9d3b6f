//! Protocol v2 timings: one-to-one messages, commits and Welcomes for
//! groups of 10, 100 and 1 000 devices, the state a group costs a client,
//! and the hybrid ML-KEM-768 + X25519
//! suite against the classical one under the same harness.
//!
//! `cargo bench -p blindrelay-mls --bench mls`
//!
//! Each figure is the median of repeated rounds, with the 10th and 90th
//! percentiles as the spread. Our figures use the full stack (X.509
//! device credentials checked against the CA and CRL, state written to
//! SQLite after every operation); the suite comparison uses mls-rs alone
//! (basic credentials, memory storage) so that only the suite differs.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blindrelay_e2e::TrustRoot;
use blindrelay_mls::{Device, DeviceKey, MlsStore, Observer, Trust};
use blindrelay_pki::{
    CertificateAuthority, CheckedRequest, DeviceName, Enrolment, Expect, Subject,
};
use blindrelay_wire::UserName;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

struct Org {
    ca: CertificateAuthority,
    root: TrustRoot,
    next: usize,
}

impl Org {
    fn new() -> Self {
        let ca = CertificateAuthority::create("bench").unwrap();
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())
            .unwrap()
            .to_vec();
        let crl = ca.sign_crl(&[], 1).unwrap();
        let crl = CertificateRevocationListDer::from_pem_slice(crl.as_bytes())
            .unwrap()
            .to_vec();
        let root = TrustRoot::new(ca_der).unwrap().with_crl(crl).unwrap();
        Self { ca, root, next: 0 }
    }

    fn device(&mut self) -> Device {
        self.next += 1;
        let subject = Subject::Device(
            UserName::new(&format!("user{}", self.next)).unwrap(),
            DeviceName::new("d").unwrap(),
        );
        let e = Enrolment::new(&subject).unwrap();
        let req = CheckedRequest::from_pem(e.request_pem.as_bytes(), Expect::User).unwrap();
        let cert = self.ca.sign_request(&req, 90).unwrap().cert_der;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let trust = Trust::new(self.root.clone(), now);
        let store = MlsStore::in_memory().unwrap();
        Device::open(DeviceKey::from_pem(&e.key).unwrap(), cert, trust, store).unwrap()
    }
}

/// Median, 10th and 90th percentile of `rounds` timings.
fn stats(mut t: Vec<Duration>) -> (Duration, Duration, Duration) {
    t.sort_unstable();
    let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn show(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

fn row(what: &str, t: Vec<Duration>) {
    let (m, lo, hi) = stats(t);
    println!("| {what} | {} | {} – {} |", show(m), show(lo), show(hi));
}

fn one_to_one(org: &mut Org) {
    let mut alice = org.device();
    let mut bob = org.device();
    let g = alice.create_group().unwrap();
    let kp = bob.key_packages(1).unwrap();
    let add = alice.add(&g, &kp).unwrap();
    alice.commit_accepted(&g).unwrap();
    bob.join(add.welcome.as_ref().unwrap()).unwrap();
    // A message that fills one 4096-byte frame once encrypted.
    let text = vec![b'x'; 3000];
    let (mut enc, mut dec, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..400 {
        let t0 = Instant::now();
        let m = alice.encrypt(&g, &text).unwrap();
        let t1 = Instant::now();
        bob.receive(&m).unwrap();
        let t2 = Instant::now();
        enc.push(t1 - t0);
        dec.push(t2 - t1);
        both.push(t2 - t0);
    }
    let ct = alice.encrypt(&g, &text).unwrap().len();
    println!("\n### One-to-one (2 devices, 3 000-byte message, {ct}-byte MLS ciphertext)\n");
    println!("| operation | median | p10 – p90 |\n|---|---|---|");
    row("encrypt (with the state write)", enc);
    row("decrypt (with the state write)", dec);
    let (m, _, _) = stats(both.clone());
    row("encrypt + decrypt", both);
    println!(
        "\nencrypt + decrypt: {:.0} messages/s on one core",
        1.0 / m.as_secs_f64()
    );
}

fn group_of(org: &mut Org, n: usize) {
    let mut committer = org.device();
    let mut receiver = org.device();
    let g = committer.create_group().unwrap();
    let mut kps = receiver.key_packages(1).unwrap();
    for _ in 2..n {
        kps.extend(org.device().key_packages(1).unwrap());
    }
    let t0 = Instant::now();
    let add = committer.add(&g, &kps).unwrap();
    committer.commit_accepted(&g).unwrap();
    let build_all = t0.elapsed();
    // The relay's check (the Delivery Service's `Observer`).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let obs = Observer::new(Trust::new(org.root.clone(), now));
    let names = |d: &Device| (d.me().user().to_string(), d.me().device().to_string());
    let by = names(&committer);
    let t0 = Instant::now();
    let mut public = obs
        .create(&g, add.group_info.as_ref().unwrap(), &add.commit, &by)
        .unwrap()
        .state;
    let check_all = t0.elapsed();
    let (mut chk_u, mut chk_a, mut chk_r) = (Vec::new(), Vec::new(), Vec::new());
    let t0 = Instant::now();
    receiver.join(add.welcome.as_ref().unwrap()).unwrap();
    let join_all = t0.elapsed();
    let welcome_len = add.welcome.as_ref().unwrap().len();
    let rounds = if n >= 1000 { 10 } else { 30 };
    let (mut upd_c, mut upd_r) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t0 = Instant::now();
        let u = committer.update(&g).unwrap();
        committer.commit_accepted(&g).unwrap();
        let t1 = Instant::now();
        receiver.receive(&u.commit).unwrap();
        upd_c.push(t1 - t0);
        upd_r.push(t1.elapsed());
        let t0 = Instant::now();
        public = obs
            .commit(&public, &g, u.epoch, &u.commit, &by)
            .unwrap()
            .state;
        chk_u.push(t0.elapsed());
    }
    let (mut add_c, mut add_r, mut add_w, mut rem_c, mut rem_r) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut joiner = org.device();
        let kp = joiner.key_packages(1).unwrap();
        let t0 = Instant::now();
        let a = committer.add(&g, &kp).unwrap();
        committer.commit_accepted(&g).unwrap();
        let t1 = Instant::now();
        receiver.receive(&a.commit).unwrap();
        let t2 = Instant::now();
        joiner.join(a.welcome.as_ref().unwrap()).unwrap();
        let t3 = Instant::now();
        add_c.push(t1 - t0);
        add_r.push(t2 - t1);
        add_w.push(t3 - t2);
        let t0 = Instant::now();
        public = obs
            .commit(&public, &g, a.epoch, &a.commit, &by)
            .unwrap()
            .state;
        chk_a.push(t0.elapsed());
        let who = joiner.me().user().clone();
        let t0 = Instant::now();
        let r = committer.remove(&g, &who).unwrap();
        committer.commit_accepted(&g).unwrap();
        let t1 = Instant::now();
        receiver.receive(&r.commit).unwrap();
        rem_c.push(t1 - t0);
        rem_r.push(t1.elapsed());
        let t0 = Instant::now();
        public = obs
            .commit(&public, &g, r.epoch, &r.commit, &by)
            .unwrap()
            .state;
        chk_r.push(t0.elapsed());
    }
    let state = committer.store().snapshot_len(&g).unwrap();
    println!("\n### Group of {n} devices\n");
    println!(
        "Set-up: one commit adding {} devices {}, its Welcome ({} KiB) joined in {}.\n",
        n - 1,
        show(build_all),
        welcome_len / 1024,
        show(join_all)
    );
    println!("| operation ({rounds} rounds) | median | p10 – p90 |\n|---|---|---|");
    row("self-update: commit (build + apply)", upd_c);
    row("self-update: process, another member", upd_r);
    row("add one: commit", add_c);
    row("add one: process, another member", add_r);
    row("add one: Welcome, the new member", add_w);
    row("remove one: commit", rem_c);
    row("remove one: process, another member", rem_r);
    row("the relay's check: self-update", chk_u);
    row("the relay's check: add one", chk_a);
    row("the relay's check: remove one", chk_r);
    println!(
        "\nThe relay's check of the set-up commit (from the creator's GroupInfo, {} new devices): {}; \
         the group's public state the relay stores: {} KiB",
        n - 1,
        show(check_all),
        public.len() / 1024
    );
    println!(
        "\nState of this group on a client (snapshot in SQLite, prior epochs apart): {} KiB",
        state / 1024
    );
}

mod suites {
    //! mls-rs alone, two suites, one harness.
    use super::*;
    use mls_rs::client_builder::MlsConfig;
    use mls_rs::identity::SigningIdentity;
    use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
    use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList};
    use mls_rs_crypto_awslc::AwsLcCryptoProvider;

    fn client(suite: CipherSuite, name: &str) -> Client<impl MlsConfig + use<>> {
        let crypto = AwsLcCryptoProvider::new();
        let cs = crypto.cipher_suite_provider(suite).unwrap();
        let (secret, public) = cs.signature_key_generate().unwrap();
        let id = SigningIdentity::new(
            BasicCredential::new(name.as_bytes().to_vec()).into_credential(),
            public,
        );
        Client::builder()
            .crypto_provider(crypto)
            .identity_provider(BasicIdentityProvider::new())
            .signing_identity(id, secret, suite)
            .build()
    }

    pub fn compare() {
        println!("\n### Ciphersuites (mls-rs alone, group of 100, 30 rounds)\n");
        println!(
            "| suite | update commit (build + apply) | update: process | encrypt + decrypt (3 000 bytes) | KeyPackage bytes |"
        );
        println!("|---|---|---|---|---|");
        for (label, suite) in [
            ("P256_AES128 (2), ours", CipherSuite::P256_AES128),
            (
                "ML_KEM_768_X25519 (X-Wing, 65100)",
                CipherSuite::ML_KEM_768_X25519,
            ),
        ] {
            let a = client(suite, "a");
            let b = client(suite, "b");
            let mut g = a
                .create_group(ExtensionList::new(), ExtensionList::new(), None)
                .unwrap();
            let mut kps = vec![
                b.generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
                    .unwrap(),
            ];
            let kp_len = kps[0].to_bytes().unwrap().len();
            for i in 2..100 {
                let c = client(suite, &format!("m{i}"));
                kps.push(
                    c.generate_key_package_message(
                        ExtensionList::new(),
                        ExtensionList::new(),
                        None,
                    )
                    .unwrap(),
                );
            }
            let mut cb = g.commit_builder();
            for kp in kps {
                cb = cb.add_member(kp).unwrap();
            }
            let out = cb.build().unwrap();
            g.apply_pending_commit().unwrap();
            let (mut gb, _) = b.join_group(None, &out.welcome_messages[0], None).unwrap();
            let (mut c, mut r, mut m) = (Vec::new(), Vec::new(), Vec::new());
            let text = vec![b'x'; 3000];
            for _ in 0..30 {
                let t0 = Instant::now();
                let out = g.commit(Vec::new()).unwrap();
                g.apply_pending_commit().unwrap();
                let t1 = Instant::now();
                gb.process_incoming_message(out.commit_message).unwrap();
                let t2 = Instant::now();
                let msg = g.encrypt_application_message(&text, Vec::new()).unwrap();
                gb.process_incoming_message(msg).unwrap();
                c.push(t1 - t0);
                r.push(t2 - t1);
                m.push(t2.elapsed());
            }
            let (c, r, m) = (stats(c), stats(r), stats(m));
            println!(
                "| {label} | {} ({} – {}) | {} ({} – {}) | {} ({} – {}) | {kp_len} |",
                show(c.0),
                show(c.1),
                show(c.2),
                show(r.0),
                show(r.1),
                show(r.2),
                show(m.0),
                show(m.1),
                show(m.2),
            );
        }
    }
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut org = Org::new();
    println!("## Protocol v2 (MLS) timings\n");
    one_to_one(&mut org);
    let sizes: &[usize] = if quick { &[10] } else { &[10, 100, 1000] };
    for &n in sizes {
        group_of(&mut org, n);
    }
    if !quick {
        suites::compare();
    }
}
