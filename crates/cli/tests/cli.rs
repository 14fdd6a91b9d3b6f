//! The `blindrelay` binary as a user runs it.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use blindrelay_testkit::RelayProcess;
use blindrelay_testkit::process::free_port;
use common::*;

fn has_openssl() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

#[test]
fn the_roles_set_up_from_clean_directories_and_no_key_leaves_its_machine() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    // The administrator.
    must(p, &["pki", "init"]);
    assert_clean_error(&run(&["pki", "init"], p), "already exists");
    // Any CA file blocks init, not just ca.pem.
    std::fs::create_dir(p.join("half")).unwrap();
    std::fs::write(p.join("half/crl.pem"), "x").unwrap();
    assert_clean_error(&run(&["pki", "init", "--dir", "half"], p), "crl.pem");
    // The relay host makes its key; only the request goes to the CA.
    must(
        p,
        &[
            "enroll-relay",
            "--host",
            "relay.example",
            "--host",
            "10.0.0.1",
        ],
    );
    let out = must(
        p,
        &[
            "pki",
            "sign",
            "--relay",
            "blindrelay-relay/server-request.pem",
        ],
    );
    assert!(out.contains("relay relay.example, 10.0.0.1"), "{out}");
    // Three users, each on their own machine (directory).
    for u in ["alice", "bob", "carol"] {
        let out = must(p, &["enroll", u]);
        assert!(out.contains("never leaves this machine"), "{out}");
        must(p, &["pki", "sign", &format!("blindrelay-{u}/request.pem")]);
    }
    // A second enrolment never replaces a key; someone else's request for a
    // name in use is refused; a renewal needs --renew.
    assert_clean_error(&run(&["enroll", "alice"], p), "already exists");
    must(p, &["enroll", "alice", "--dir", "mallory-laptop"]);
    assert_clean_error(
        &run(&["pki", "sign", "mallory-laptop/request.pem"], p),
        "already has a certificate in force",
    );
    must(p, &["enroll", "alice", "--renew"]);
    must(
        p,
        &["pki", "sign", "blindrelay-alice/request.pem", "--renew"],
    );
    // A tampered request is refused, named.
    let req = std::fs::read_to_string(p.join("blindrelay-bob/request.pem")).unwrap();
    let mut lines: Vec<String> = req.lines().map(str::to_owned).collect();
    let mid = lines.len() / 2;
    lines[mid] = lines[mid].chars().rev().collect();
    std::fs::write(p.join("tampered.pem"), lines.join("\n")).unwrap();
    let o = run(&["pki", "sign", "tampered.pem", "--renew"], p);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("tampered.pem"), "{:?}", text(&o));
    assert_clean_error(&run(&["enroll", "Bad/Name"], p), "invalid user name");
    // Revocation and the list.
    let o = run(&["pki", "revoke", "carol"], p);
    assert!(text(&o).0.contains("revoked user carol"), "{:?}", text(&o));
    assert_clean_error(&run(&["pki", "revoke", "dave"], p), "no certificate issued");
    let (list, _) = text(&run(&["pki", "list"], p));
    let status = |who: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(who))
            .unwrap_or_else(|| panic!("{who} in {list}"))
            .to_owned()
    };
    assert!(status("alice").ends_with("valid"), "{list}");
    assert!(status("carol").ends_with("revoked"), "{list}");
    assert!(list.contains("relay relay.example"), "{list}");
    assert_clean_error(
        &run(&["pki", "list", "--dir", "nowhere"], p),
        "no CA in nowhere",
    );

    // What each machine holds: its own key, 0600 in a 0700 directory, and
    // public files. The relay's directory holds no other private key.
    let mode = |f: &str| std::fs::metadata(p.join(f)).unwrap().permissions().mode() & 0o777;
    for (dir, key) in [
        ("blindrelay-ca", "ca-key.pem"),
        ("blindrelay-relay", "server-key.pem"),
        ("blindrelay-alice", "key.pem"),
    ] {
        assert_eq!(mode(dir), 0o700, "{dir}");
        assert_eq!(mode(&format!("{dir}/{key}")), 0o600, "{dir}/{key}");
    }
    let keys_in = |dir: &str| -> Vec<String> {
        let mut found = Vec::new();
        for e in std::fs::read_dir(p.join(dir)).unwrap() {
            let path = e.unwrap().path();
            if std::fs::read_to_string(&path).is_ok_and(|s| s.contains("PRIVATE KEY")) {
                found.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        found
    };
    assert_eq!(keys_in("blindrelay-relay"), vec!["server-key.pem"]);
    assert_eq!(keys_in("blindrelay-ca"), vec!["ca-key.pem"]);
    assert_eq!(keys_in("blindrelay-ca/issued"), Vec::<String>::new());
    assert_eq!(keys_in("blindrelay-bob"), vec!["key.pem"]);

    if !has_openssl() {
        eprintln!("SKIPPED openssl checks: openssl is not installed");
        return;
    }
    let ok = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            "blindrelay-ca/ca.pem",
            "blindrelay-alice/cert.pem",
            "blindrelay-relay/server.pem",
        ])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let x = |f: &str| {
        String::from_utf8(
            Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in", f])
                .current_dir(p)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let ca = x("blindrelay-ca/ca.pem");
    assert!(
        ca.contains("CA:TRUE")
            && ca.contains("Certificate Sign, CRL Sign")
            && ca.contains("Public-Key: (384 bit)")
            && ca.contains("ecdsa-with-SHA384"),
        "{ca}"
    );
    assert!(ca.contains("Basic Constraints: critical"));
    let alice = x("blindrelay-alice/cert.pem");
    assert!(
        alice.contains("Subject: CN=alice") || alice.contains("Subject: CN = alice"),
        "{alice}"
    );
    assert!(alice.contains("Digital Signature, Key Encipherment"));
    assert!(alice.contains("TLS Web Client Authentication"));
    assert!(alice.contains("Public-Key: (2048 bit)"), "{alice}");
    let server = x("blindrelay-relay/server.pem");
    assert!(server.contains("TLS Web Server Authentication"));
    assert!(server.contains("DNS:relay.example") && server.contains("IP Address:10.0.0.1"));
    let crl = Command::new("openssl")
        .args([
            "crl",
            "-noout",
            "-text",
            "-in",
            "blindrelay-ca/crl.pem",
            "-CAfile",
            "blindrelay-ca/ca.pem",
        ])
        .current_dir(p)
        .output()
        .unwrap();
    let crl_text = String::from_utf8_lossy(&crl.stdout);
    assert!(
        crl.status.success() && crl_text.contains("Revoked Certificates"),
        "{crl_text}"
    );
}

/// `blindrelay serve` on a free port in `cwd`, with its banner.
fn start_relay(cwd: &Path) -> (RelayProcess, String) {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let relay = start_relay_at(cwd, &addr, &[]);
    let banner = relay.output();
    (relay, banner)
}

#[test]
fn serve_refuses_a_directory_with_the_cas_or_a_users_key_and_never_makes_a_pki() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    // Nothing there: a clear refusal, and nothing created.
    assert_clean_error(&run(&["serve"], p), "enroll-relay");
    assert!(!p.join("blindrelay-relay").exists());
    setup_roles(p, &["alice"]);
    // The quick start of old: the relay run from the CA's directory.
    must(p, &["enroll-relay", "--dir", "blindrelay-ca"]);
    must(
        p,
        &["pki", "sign", "--relay", "blindrelay-ca/server-request.pem"],
    );
    assert_clean_error(&run(&["serve", "--dir", "blindrelay-ca"], p), "ca-key.pem");
    // A user's key copied next to the relay's, at any depth.
    let stray = p.join("blindrelay-relay/backup/alice");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::copy(p.join("blindrelay-alice/key.pem"), stray.join("key.pem")).unwrap();
    assert_clean_error(&run(&["serve"], p), "backup/alice/key.pem");
    std::fs::remove_dir_all(p.join("blindrelay-relay/backup")).unwrap();
    // The relay's own directory: it starts.
    let (relay, banner) = start_relay(p);
    assert!(banner.contains("listening on"), "{banner}");
    drop(relay);
}

#[test]
fn serve_stops_on_sigterm_and_a_port_in_use_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &[]);
    let (relay, _) = start_relay(d.path());
    // Port in use: one clear line.
    assert_clean_error(
        &run(&["serve", "--listen", &relay.addr], d.path()),
        "cannot listen on",
    );
    let mut relay = relay;
    let pid = relay.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "relay ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_encrypted_key_works_with_its_passphrase_only() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup_roles(p, &["bob"]);
    let with_env = |args: &[&str], pass: Option<&str>| {
        let mut c = bin();
        c.args(args)
            .current_dir(p)
            .env_remove("BLINDRELAY_PASSPHRASE");
        if let Some(pass) = pass {
            c.env("BLINDRELAY_PASSPHRASE", pass);
        }
        c.output().unwrap()
    };
    assert_clean_error(
        &with_env(&["enroll", "carol", "--encrypt"], None),
        "--encrypt needs a passphrase",
    );
    let o = with_env(&["enroll", "carol", "--encrypt"], Some("tr0ub4dor &3"));
    assert!(o.status.success(), "{:?}", text(&o));
    let key = std::fs::read_to_string(p.join("blindrelay-carol/key.pem")).unwrap();
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{key}"
    );
    must(p, &["pki", "sign", "blindrelay-carol/request.pem"]);
    // A renewal must decrypt the key to sign its request.
    assert_clean_error(
        &with_env(&["enroll", "carol", "--renew"], None),
        "is encrypted: give its passphrase",
    );
    assert!(
        with_env(&["enroll", "carol", "--renew"], Some("tr0ub4dor &3"))
            .status
            .success()
    );
    let (relay, _) = start_relay(p);
    let send = |pass: Option<&str>| {
        with_env(
            &["send", "carol", "--to", "bob", "--server", &relay.addr, "x"],
            pass,
        )
    };
    assert_clean_error(&send(None), "is encrypted: give its passphrase");
    assert_clean_error(&send(Some("tr0ub4dor &4")), "wrong passphrase");
    // With the passphrase the client logs in (bob has simply never logged in).
    assert_clean_error(&send(Some("tr0ub4dor &3")), "bob has never logged in");
    // From a file too.
    std::fs::write(p.join("pass.txt"), "tr0ub4dor &3\n").unwrap();
    assert_clean_error(
        &with_env(
            &[
                "send",
                "carol",
                "--to",
                "bob",
                "--server",
                &relay.addr,
                "--passphrase-file",
                "pass.txt",
                "x",
            ],
            None,
        ),
        "bob has never logged in to this relay",
    );
}

#[test]
fn bad_config_file_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("relay.toml"), "rate_max = 3\n").unwrap();
    assert_clean_error(
        &run(
            &["serve", "--config", "relay.toml", "--listen", "127.0.0.1:0"],
            d.path(),
        ),
        "relay.toml",
    );
    assert_clean_error(
        &run(&["serve", "--config", "missing.toml"], d.path()),
        "missing.toml",
    );
}

#[test]
fn send_and_json_chat_between_two_processes() {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &["alice", "bob"]);
    let (relay, _) = start_relay(d.path());
    let mut bob = bin()
        .args(["chat", "bob", "--json", "--server", &relay.addr])
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut bob_out = BufReader::new(bob.stdout.take().unwrap());
    let mut next = |want: &str| -> serde_json::Value {
        loop {
            let mut l = String::new();
            assert!(
                bob_out.read_line(&mut l).unwrap() > 0,
                "bob's client exited"
            );
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v["event"] == want {
                return v;
            }
        }
    };
    assert_eq!(next("connected")["identity"], "bob");
    let o = run(
        &[
            "send",
            "alice",
            "--to",
            "bob",
            "--server",
            &relay.addr,
            "Hello Bob!",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("accepted by the relay"));
    let m = next("message");
    assert_eq!(
        (
            m["from"].as_str(),
            m["text"].as_str(),
            m["verified"].as_bool()
        ),
        (Some("alice"), Some("Hello Bob!"), Some(true))
    );
    // Sending to someone who never logged in (no key to encrypt for):
    // exit 1, nothing sent.
    let o = run(
        &[
            "send",
            "alice",
            "--to",
            "carol",
            "--server",
            &relay.addr,
            "hi",
        ],
        d.path(),
    );
    assert_clean_error(&o, "carol has never logged in to this relay");
    // Unknown user name: exit 1 before connecting.
    assert_clean_error(
        &run(&["send", "Alice", "--to", "bob", "x"], d.path()),
        "invalid user name",
    );
    // Someone who never enrolled: exit 1, and what to do.
    assert_clean_error(
        &run(
            &["send", "zed", "--to", "bob", "--server", &relay.addr, "x"],
            d.path(),
        ),
        "run `blindrelay enroll zed`",
    );
    // Enrolled, but the certificate never came back: the file is named.
    must(d.path(), &["enroll", "zed"]);
    assert_clean_error(
        &run(
            &["send", "zed", "--to", "bob", "--server", &relay.addr, "x"],
            d.path(),
        ),
        "blindrelay-zed/ca.pem",
    );
    // JSON commands drive bob.
    let stdin = bob.stdin.as_mut().unwrap();
    writeln!(stdin, r#"{{"cmd":"who"}}"#).unwrap();
    assert!(next("who")["online"].is_array());
    writeln!(stdin, r#"{{"cmd":"nonsense"}}"#).unwrap();
    assert!(
        next("error")["text"]
            .as_str()
            .unwrap()
            .contains("bad command")
    );
    writeln!(stdin, r#"{{"cmd":"quit"}}"#).unwrap();
    assert!(bob.wait().unwrap().success());
}

#[test]
fn unreachable_relay_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    must(d.path(), &["pki", "init"]);
    // The throwaway way: the key made on the CA's machine, with a warning.
    let o = run(&["pki", "issue", "alice"], d.path());
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("warning: the key of alice was made on the CA's machine")
    );
    let port = free_port().unwrap();
    let o = run(
        &[
            "send",
            "alice",
            "--to",
            "bob",
            "--server",
            &format!("127.0.0.1:{port}"),
            "x",
        ],
        d.path(),
    );
    assert_clean_error(&o, "cannot reach");
}

#[test]
fn demo_runs_on_embedded_defaults_and_every_property_holds() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&["demo"], d.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("All 25 properties held."), "{out}");
    // Protocol v2's live checks are among them.
    for check in [
        "v2: forward secrecy",
        "v2: healing after compromise",
        "v2: removed member",
    ] {
        assert!(out.contains(check), "{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    // It leaves nothing behind in the working directory.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn sigkill_during_a_burst_loses_no_confirmed_message_and_delivers_each_once() {
    const N: usize = 3000;
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("relay.toml"),
        "rate_max_messages = 60000\nquota_messages = 100000\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let cfg = ["--config", "relay.toml"];
    setup_roles(d.path(), &["alice", "bob"]);
    let relay = start_relay_at(d.path(), &addr, &cfg);
    // bob logs in once (the relay learns his certificate), then goes offline.
    let bob = JsonClient::start(d.path(), "bob", &addr);
    bob.next("connected", Duration::from_secs(10));
    bob.quit();
    let mut alice = JsonClient::start(d.path(), "alice", &addr);
    alice.next("connected", Duration::from_secs(10));
    let mut stdin = alice.child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..N {
            writeln!(
                stdin,
                r#"{{"cmd":"send","to":["bob"],"text":"burst {i:05}"}}"#
            )
            .unwrap();
        }
        stdin
    });
    // Collect ids in order (the k-th "sending" is the k-th command), and
    // the ids the relay confirmed as stored. Kill the relay mid-burst.
    let mut ids: Vec<String> = Vec::new();
    let mut stored: HashSet<String> = HashSet::new();
    let mut relay = Some(relay);
    let mut confirmed_before_kill = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while stored.len() < N {
        assert!(
            Instant::now() < deadline,
            "only {} of {N} stored",
            stored.len()
        );
        let Ok(v) = alice.events.recv_timeout(Duration::from_secs(30)) else {
            panic!(
                "alice went quiet: {} sent, {} stored",
                ids.len(),
                stored.len()
            );
        };
        if std::env::var_os("BLINDRELAY_TEST_TRACE").is_some()
            && v["event"] != "sending"
            && v["event"] != "stored"
            && v["event"] != "sent"
        {
            eprintln!("alice: {v}");
        }
        match v["event"].as_str() {
            Some("sending") => ids.push(v["id"].as_str().unwrap().to_string()),
            Some("stored") => {
                stored.insert(v["id"].as_str().unwrap().to_string());
            }
            Some("error") => panic!("{v}"),
            _ => {}
        }
        if relay.is_some() && stored.len() >= N / 4 {
            let mut r = relay.take().unwrap();
            confirmed_before_kill = stored.len();
            // Child::kill sends SIGKILL: no chance to clean up.
            r.child.kill().unwrap();
            let _ = r.child.wait();
            drop(r);
            std::thread::sleep(Duration::from_millis(300));
            // Restart on the same address and store.
            relay_restarted(start_relay_at(d.path(), &addr, &cfg));
        }
    }
    assert!(confirmed_before_kill >= N / 4);
    let stdin = writer.join().unwrap();
    assert_eq!(ids.len(), N);
    alice.child.stdin = Some(stdin);
    alice.quit();
    // bob logs in and reads: every confirmed message exactly once.
    let bob = JsonClient::start(d.path(), "bob", &addr);
    let mut got: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while got.len() < N {
        assert!(Instant::now() < deadline, "bob has {} of {N}", got.len());
        let v = bob.next("message", Duration::from_secs(60));
        *got.entry(v["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // Nothing more (no duplicates) arrives.
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while let Ok(v) = bob
        .events
        .recv_timeout(quiet_until.saturating_duration_since(Instant::now()))
    {
        if v["event"] == "message" {
            *got.entry(v["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for id in &stored {
        assert_eq!(
            got.get(id),
            Some(&1),
            "message {id} delivered {:?} times",
            got.get(id)
        );
    }
    assert!(got.values().all(|&c| c == 1));
    bob.quit();
    RESTARTED.with(|r| {
        for mut c in r.borrow_mut().drain(..) {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    });
}

thread_local! {
    static RESTARTED: std::cell::RefCell<Vec<RelayProcess>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn relay_restarted(r: RelayProcess) {
    RESTARTED.with(|v| v.borrow_mut().push(r));
}

#[test]
fn a_post_quantum_device_is_enrolled_with_an_ed25519_key_that_the_ca_signs() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    must(p, &["pki", "init"]);
    let out = must(
        p,
        &[
            "enroll",
            "alice",
            "--device",
            "pq",
            "--dir",
            "alice-pq",
            "--post-quantum",
        ],
    );
    assert!(out.contains("device pq of user alice"), "{out}");
    let out = must(p, &["pki", "sign", "alice-pq/request.pem"]);
    assert!(out.contains("signed device pq of user alice"), "{out}");
    let cert = blindrelay_pki::store::read_cert_der(&p.join("alice-pq/cert.pem")).unwrap();
    let ca = blindrelay_pki::store::read_cert_der(&p.join("alice-pq/ca.pem")).unwrap();
    let root = blindrelay_e2e::TrustRoot::new(ca).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let device = blindrelay_e2e::VerifiedDevice::verify(&cert, &root, now).unwrap();
    assert_eq!(device.kind(), blindrelay_pki::DeviceKeyKind::Ed25519);
    // Only with a device.
    let o = run(&["enroll", "bob", "--post-quantum"], p);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
}
