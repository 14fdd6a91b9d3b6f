//! Protocol v2 from the command line, as README shows it: two people with
//! two devices each, enrolled with keys born in their directories, chat
//! one-to-one and form a group through a real relay process; `send
//! --group` works; what the relay confirmed survives a SIGKILL.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

fn chat(p: &Path, user: &str, dir: &str, addr: &str) -> JsonClient {
    let c = JsonClient::start_args(p, &[user, "--dir", dir, "--server", addr]);
    let v = c.next("connected", WAIT);
    assert_eq!(v["protocol"], "v2", "{v}");
    c
}

/// Waits for a message event with `text`; returns it.
fn message(c: &JsonClient, text: &str) -> serde_json::Value {
    loop {
        let v = c.next("message", WAIT);
        if v["text"] == text {
            return v;
        }
    }
}

#[test]
fn two_people_with_two_devices_each_chat_and_form_a_group_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup_roles(p, &[]);
    let devices: Vec<(&str, String)> = [
        ("alice", "laptop"),
        ("alice", "phone"),
        ("bob", "laptop"),
        ("bob", "phone"),
    ]
    .iter()
    .map(|(u, dev)| (*u, enroll_device(p, u, dev)))
    .collect();
    let port = blindrelay_testkit::process::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let relay = start_relay_at(p, &addr, &[]);
    let mut c: Vec<JsonClient> = devices
        .iter()
        .map(|(u, dir)| chat(p, u, dir, &addr))
        .collect();

    // alice's laptop writes to bob: a one-to-one group of all four devices.
    c[0].command(r#"{"cmd":"send","to":"bob","text":"hello bob","req":"1"}"#);
    // As in version 1: `sending` answers the command (its `req`, the
    // message's id), `sent` follows once the relay has it.
    let sending = c[0].next("sending", WAIT);
    assert_eq!(sending["req"], "1");
    let sent = c[0].next("sent", WAIT);
    assert_eq!(sent["id"], sending["id"], "{sent}");
    for (i, client) in c.iter().enumerate().skip(1) {
        let v = message(client, "hello bob");
        assert_eq!(
            (v["from"].as_str(), v["device"].as_str()),
            (Some("alice"), Some("laptop"))
        );
        assert_eq!(v["protocol"], "v2");
        assert_eq!(v["conversation"], if i == 1 { "bob" } else { "alice" });
    }

    // bob's phone forms a group with alice: everyone is told who is in it.
    c[3].command(r#"{"cmd":"group_create","name":"team","users":["alice"]}"#);
    let created = c[3].next("group_created", WAIT);
    assert_eq!(
        created["group"]["members"].as_array().unwrap().len(),
        4,
        "{created}"
    );
    for client in &c[..3] {
        let v = client.next("joined", WAIT);
        assert_eq!(v["conversation"], "team");
    }
    // ... and a script sends into it with `send --group`, beside the
    // running chat of the same device: through that chat (which owns the
    // device's state), and once it has left, on its own.
    let script = |text: &str| {
        [
            "send",
            "alice",
            "--dir",
            "alice-phone",
            "--server",
            &addr,
            "--group",
            "team",
            text,
        ]
        .map(String::from)
    };
    let beside = script("beside a chat");
    let out = must(p, &beside.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("sent by the chat running"), "{out}");
    // The chat that sent it says so too, as for a message typed there.
    let v = c[1].next("sent", WAIT);
    assert!(v["id"].is_string(), "{v}");
    for (i, client) in c.iter().enumerate() {
        if i != 1 {
            assert_eq!(message(client, "beside a chat")["device"], "phone");
        }
    }
    c.remove(1).quit();
    let alone = script("from a script");
    let out = must(p, &alone.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("accepted by the relay") && !out.contains("chat running"),
        "{out}"
    );
    for client in &c {
        assert_eq!(message(client, "from a script")["device"], "phone");
    }
    c[0].command(r#"{"cmd":"groups"}"#);
    let groups = c[0].next("groups", WAIT);
    assert_eq!(groups["groups"].as_array().unwrap().len(), 2, "{groups}");
    c[0].command(r#"{"cmd":"verify","name":"bob"}"#);
    let sn = c[0].next("safety_numbers", WAIT);
    assert_eq!(
        sn["devices"].as_array().unwrap().len(),
        2,
        "one number per device of bob: {sn}"
    );

    // bob's laptop goes offline; alice's scripts send three messages from
    // her laptop, each confirmed; the relay is killed (SIGKILL) and
    // restarted.
    c.remove(1).quit();
    c.remove(0).quit();
    for i in 0..3 {
        let text = format!("while you were away {i}");
        must(
            p,
            &[
                "send",
                "alice",
                "--dir",
                "alice-laptop",
                "--server",
                &addr,
                "--to",
                "bob",
                &text,
            ],
        );
    }
    let mut relay = relay;
    relay.child.kill().unwrap();
    let _ = relay.child.wait();
    drop(relay);
    let _relay = start_relay_at(p, &addr, &[]);
    let bl = chat(p, "bob", "bob-laptop", &addr);
    for i in 0..3 {
        message(&bl, &format!("while you were away {i}"));
    }
    // The session's last event says it is over, as in version 1.
    let mut bl = bl;
    bl.command(r#"{"cmd":"quit"}"#);
    let closed = bl.next("closed", WAIT);
    assert_eq!(
        (&closed["code"], &closed["reason"]),
        (&serde_json::Value::Null, &serde_json::json!("quit")),
        "{closed}"
    );
    bl.quit();
    for x in c {
        x.quit();
    }
}

#[test]
fn a_connection_lost_during_the_start_up_sync_is_connected_again_not_fatal() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup_roles(p, &[]);
    let dir = enroll_device(p, "alice", "laptop");
    // A relay (the malicious DS, with the relay's own files) that drops the
    // device's first connection right after answering its KeyPackage
    // upload: in the start-up sync.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay_dir = blindrelay_pki::PkiDir::new(p.join("blindrelay-relay"));
    let ds = rt
        .block_on(blindrelay_adversary::evil_ds::EvilDs::start(&relay_dir))
        .unwrap();
    let alice = blindrelay_adversary::evil_ds::devices(&[("alice", "laptop")]);
    ds.cut_after_answers(alice.first().unwrap(), 1);
    let mut c = chat(p, "alice", &dir, &ds.address());
    c.next("reconnecting", WAIT);
    // Still running, and connected again: a command is answered.
    c.command(r#"{"cmd":"groups"}"#);
    c.next("groups", WAIT);
    assert!(c.child.try_wait().unwrap().is_none(), "chat exited");
    c.quit();
}

#[test]
fn what_is_written_while_the_relay_is_down_waits_in_the_outbox_and_can_be_cancelled() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup_roles(p, &[]);
    let a = enroll_device(p, "alice", "laptop");
    let b = enroll_device(p, "bob", "laptop");
    let port = blindrelay_testkit::process::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let relay = start_relay_at(p, &addr, &[]);
    let bob = chat(p, "bob", &b, &addr);
    let mut alice = chat(p, "alice", &a, &addr);
    alice.command(r#"{"cmd":"send","to":"bob","text":"first"}"#);
    alice.next("sent", WAIT);
    assert_eq!(message(&bob, "first")["from"], "alice");
    // The relay goes away: what alice writes waits in her outbox.
    drop(relay);
    alice.next("reconnecting", WAIT);
    alice.command(r#"{"cmd":"send","to":"bob","text":"keep me"}"#);
    let keep = alice.next("sending", WAIT)["id"]
        .as_str()
        .unwrap()
        .to_string();
    alice.command(r#"{"cmd":"send","to":"bob","text":"drop me"}"#);
    let drop_id = alice.next("sending", WAIT)["id"]
        .as_str()
        .unwrap()
        .to_string();
    alice.command(r#"{"cmd":"outbox"}"#);
    let outbox = alice.next("outbox", WAIT);
    let texts: Vec<&str> = outbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["keep me", "drop me"], "{outbox}");
    alice.command(&format!(r#"{{"cmd":"cancel","id":"{}"}}"#, &drop_id[..8]));
    assert_eq!(alice.next("cancelled", WAIT)["id"], drop_id.as_str());
    // The relay is back: only what was kept arrives, once.
    let _relay = start_relay_at(p, &addr, &[]);
    let sent = alice.next("sent", Duration::from_secs(60));
    assert_eq!(sent["id"], keep.as_str());
    assert_eq!(message(&bob, "keep me")["id"], keep.as_str());
    let quiet = std::time::Instant::now() + Duration::from_secs(2);
    while let Ok(v) = bob
        .events
        .recv_timeout(quiet.saturating_duration_since(std::time::Instant::now()))
    {
        assert_ne!(v["text"], "drop me", "{v}");
    }
    alice.quit();
    bob.quit();
}
