//! Outside TLS scanners against a running relay (`blindrelay serve`):
//! sslyze (with a client certificate), sslscan, and `openssl s_client` with
//! and without a certificate. Their reports are printed (the CI artefact).
//!
//! The tools come from Debian and PyPI; `.ci/run` installs them and sets
//! `BLINDRELAY_CI=1`, under which a missing tool fails the test. Elsewhere a
//! missing tool skips the test with a message on stderr.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use blindrelay_testkit::process::free_port;
use common::*;

/// The AEAD suites a TLS 1.3 relay may accept.
const AEAD_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn missing_tools() -> Vec<&'static str> {
    [
        ("sslyze", &["-m", "sslyze", "--help"][..], "python3"),
        ("sslscan", &["--version"], "sslscan"),
        ("openssl", &["version"], "openssl"),
    ]
    .into_iter()
    .filter(|(_, args, cmd)| {
        !Command::new(cmd)
            .args(*args)
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(|(t, _, _)| t)
    .collect()
}

fn relay_with_the_readme_setup() -> (
    tempfile::TempDir,
    blindrelay_testkit::RelayProcess,
    std::path::PathBuf,
) {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &["alice"]);
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let relay = start_relay_at(d.path(), &addr, &[]);
    let data = d.path().to_path_buf();
    (d, relay, data)
}

/// `openssl s_client` that keeps its input open for `hold`, then closes it.
/// Returns (application bytes received, stderr).
fn s_client(addr: &str, data: &Path, extra: &[&str], hold: Duration) -> (usize, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost"])
        .arg("-CAfile")
        .arg(data.join("blindrelay-ca/ca.pem"))
        .args(["-quiet", "-verify_return_error"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    std::thread::sleep(hold);
    drop(stdin);
    // If the relay keeps the connection open, s_client would wait for it.
    let id = child.id();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = Command::new("kill").arg(id.to_string()).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    killer.join().unwrap();
    (
        out.stdout.len(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scanners_see_tls13_only_aead_only_and_a_required_client_certificate() {
    let missing = missing_tools();
    if !missing.is_empty() {
        let why =
            format!("missing {missing:?} (apt-get install sslscan openssl; pip install sslyze)");
        if std::env::var_os("BLINDRELAY_CI").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIPPED scanner test: {why}");
        return;
    }
    let (d, relay, data) = relay_with_the_readme_setup();
    let addr = relay.addr.clone();

    // --- sslyze, authenticated with alice's certificate ---
    let json = d.path().join("sslyze.json");
    let out = Command::new("python3")
        .args(["-m", "sslyze", "--cert"])
        .arg(data.join("blindrelay-alice/cert.pem"))
        .arg("--key")
        .arg(data.join("blindrelay-alice/key.pem"))
        .args([
            "--sslv2",
            "--sslv3",
            "--tlsv1",
            "--tlsv1_1",
            "--tlsv1_2",
            "--tlsv1_3",
            "--compression",
            "--reneg",
            "--early_data",
            "--heartbleed",
            "--openssl_ccs",
            "--robot",
            "--fallback",
            "--elliptic_curves",
            "--mozilla_config",
            "disable",
        ])
        .arg(format!("--json_out={}", json.display()))
        .arg(&addr)
        .output()
        .unwrap();
    eprintln!(
        "===== sslyze report =====\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let server = &v["server_scan_results"][0];
    assert_eq!(server["connectivity_status"], "COMPLETED", "{server}");
    let r = &server["scan_result"];
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
        "tls_1_2_cipher_suites",
    ] {
        assert_eq!(r[old]["status"], "COMPLETED", "{old}: {}", r[old]);
        assert_eq!(
            r[old]["result"]["is_tls_version_supported"], false,
            "{old} is supported"
        );
        assert_eq!(
            r[old]["result"]["accepted_cipher_suites"],
            serde_json::json!([])
        );
    }
    let tls13 = &r["tls_1_3_cipher_suites"]["result"];
    assert_eq!(tls13["is_tls_version_supported"], true);
    let accepted: Vec<&str> = tls13["accepted_cipher_suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cipher_suite"]["name"].as_str().unwrap())
        .collect();
    assert!(!accepted.is_empty());
    for s in &accepted {
        assert!(AEAD_SUITES.contains(s), "suite {s} is not an expected AEAD");
    }
    assert_eq!(
        r["tls_compression"]["result"]["supports_compression"],
        false
    );
    let reneg = &r["session_renegotiation"]["result"];
    assert_eq!(reneg["is_vulnerable_to_client_renegotiation_dos"], false);
    assert_eq!(reneg["client_renegotiations_success_count"], 0);
    assert_eq!(
        r["tls_1_3_early_data"]["result"]["supports_early_data"],
        false
    );
    assert_eq!(
        r["heartbleed"]["result"]["is_vulnerable_to_heartbleed"],
        false
    );
    assert_eq!(
        r["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"],
        false
    );

    // --- sslscan (no client certificate: it only looks at the handshake) ---
    let xml = d.path().join("sslscan.xml");
    let out = Command::new("sslscan")
        .arg("--no-colour")
        .arg(format!("--xml={}", xml.display()))
        .arg(&addr)
        .output()
        .unwrap();
    eprintln!(
        "===== sslscan report =====\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let xml = std::fs::read_to_string(&xml).unwrap();
    for (ty, ver) in [
        ("ssl", "2"),
        ("ssl", "3"),
        ("tls", "1.0"),
        ("tls", "1.1"),
        ("tls", "1.2"),
    ] {
        assert!(
            xml.contains(&format!(
                r#"<protocol type="{ty}" version="{ver}" enabled="0" />"#
            )),
            "{ty} {ver} not reported disabled:\n{xml}"
        );
    }
    assert!(xml.contains(r#"<protocol type="tls" version="1.3" enabled="1" />"#));
    let ciphers: Vec<&str> = xml.lines().filter(|l| l.contains("<cipher ")).collect();
    assert!(!ciphers.is_empty(), "{xml}");
    for c in &ciphers {
        assert!(c.contains(r#"sslversion="TLSv1.3""#), "{c}");
        assert!(AEAD_SUITES.iter().any(|s| c.contains(s)), "{c}");
    }
    assert!(xml.contains(r#"<renegotiation supported="0""#), "{xml}");

    // --- openssl s_client: nothing past the handshake without a certificate ---
    let hold = Duration::from_millis(1500);
    let (bytes, err) = s_client(&addr, &data, &["-tls1_3"], hold);
    eprintln!("===== openssl s_client without a certificate =====\n{err}");
    assert!(err.contains("certificate required"), "{err}");
    assert_eq!(
        bytes, 0,
        "application data reached a client without a certificate"
    );
    let (bytes, err) = s_client(&addr, &data, &["-tls1_2"], Duration::ZERO);
    eprintln!("===== openssl s_client -tls1_2 =====\n{err}");
    assert!(err.contains("alert protocol version"), "{err}");
    assert_eq!(bytes, 0);
    // With alice's certificate the same tool gets the relay's welcome frame
    // (4096 bytes), so the zero above is the certificate check at work.
    let cert = data.join("blindrelay-alice/cert.pem");
    let key = data.join("blindrelay-alice/key.pem");
    let (bytes, err) = s_client(
        &addr,
        &data,
        &[
            "-tls1_3",
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
        hold,
    );
    assert!(
        bytes >= 4096,
        "authenticated s_client got {bytes} bytes: {err}"
    );
    assert_eq!(bytes % 4096, 0, "frames are 4096 bytes: got {bytes}");
    let _ = std::io::stderr().flush();
}
