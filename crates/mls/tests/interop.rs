//! Interoperation with mls-rs's own client: a stock mls-rs `Client` (the
//! library's default rules, its in-memory storage, no blindrelay code but
//! the identity provider every member must run) and our [`Device`] (our
//! rules, our SQLite storage) drive the same group operations on one
//! group, each way round, and agree on every epoch. What our wrapper
//! chooses (commit options, encrypted handshakes, padding, in-order keys,
//! epoch retention) stays inside what the library's own client accepts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::Received;
use common::stock::stock;
use common::*;
use mls_rs::group::ReceivedMessage;
use mls_rs::{ExtensionList, MlsMessage};

#[test]
fn a_stock_mls_rs_client_and_our_device_share_a_group_both_ways() {
    let org = Org::new();
    // The stock client creates the group and adds our device.
    let stock_client = stock(&org, "alice", "stock", false);
    let mut sg = stock_client
        .create_group(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let (mut ours, _) = org.device("bob", "laptop");
    let kp = MlsMessage::from_bytes(&ours.key_packages(1).unwrap()[0]).unwrap();
    let out = sg.commit_builder().add_member(kp).unwrap().build().unwrap();
    sg.apply_pending_commit().unwrap();
    ours.trust().set_now(now());
    let g = ours
        .join(&out.welcome_messages[0].to_bytes().unwrap())
        .unwrap();
    assert_eq!(g, sg.group_id());
    // Stock -> ours.
    let m = sg
        .encrypt_application_message(b"from stock", Vec::new())
        .unwrap();
    match ours.receive(&m.to_bytes().unwrap()).unwrap() {
        Received::Message { body, sender, .. } => {
            assert_eq!(body, b"from stock");
            assert_eq!(
                (sender.user.as_str(), sender.device.as_str()),
                ("alice", "stock")
            );
        }
        other => panic!("{other:?}"),
    }
    // Ours commits (an add of a third, stock-made device): the stock
    // client processes our public (signed, relay-checkable) commit.
    let third = stock(&org, "carol", "stock", false);
    let kp3 = third
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    // A stock KeyPackage is valid from the second it was made (ours are
    // backdated): the device's clock must not be behind it.
    ours.trust().set_now(now());
    let add = ours.add(&g, &[kp3.to_bytes().unwrap()]).unwrap();
    ours.commit_accepted(&g).unwrap();
    match sg
        .process_incoming_message(MlsMessage::from_bytes(&add.commit).unwrap())
        .unwrap()
    {
        ReceivedMessage::Commit(_) => {}
        other => panic!("{other:?}"),
    }
    let (mut tg, _) = third
        .join_group(
            None,
            &MlsMessage::from_bytes(add.welcome.as_ref().unwrap()).unwrap(),
            None,
        )
        .unwrap();
    // Ours -> both stock members.
    let m = ours.encrypt(&g, b"from ours").unwrap();
    for group in [&mut sg, &mut tg] {
        match group
            .process_incoming_message(MlsMessage::from_bytes(&m).unwrap())
            .unwrap()
        {
            ReceivedMessage::ApplicationMessage(app) => assert_eq!(app.data(), b"from ours"),
            other => panic!("{other:?}"),
        }
    }
    // A stock self-update commit reaches ours and the third member.
    let upd = sg.commit(Vec::new()).unwrap();
    sg.apply_pending_commit().unwrap();
    ours.receive(&upd.commit_message.to_bytes().unwrap())
        .unwrap();
    tg.process_incoming_message(upd.commit_message).unwrap();
    // All three agree on the group's history.
    let auth = ours.epoch_authenticator(&g).unwrap();
    assert_eq!(sg.epoch_authenticator().unwrap().to_vec(), auth);
    assert_eq!(tg.epoch_authenticator().unwrap().to_vec(), auth);
    assert_eq!(ours.epoch(&g).unwrap(), sg.current_epoch());
}

#[test]
fn a_proposal_to_remove_another_member_is_refused_and_leaves_nothing_pending() {
    let org = Org::new();
    let stock_client = stock(&org, "alice", "stock", false);
    let mut sg = stock_client
        .create_group(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let (mut ours, _) = org.device("bob", "laptop");
    let third = stock(&org, "carol", "stock", false);
    let kp = MlsMessage::from_bytes(&ours.key_packages(1).unwrap()[0]).unwrap();
    let kp3 = third
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let out = sg
        .commit_builder()
        .add_member(kp)
        .unwrap()
        .add_member(kp3)
        .unwrap()
        .build()
        .unwrap();
    sg.apply_pending_commit().unwrap();
    ours.trust().set_now(now());
    let g = ours
        .join(&out.welcome_messages[0].to_bytes().unwrap())
        .unwrap();
    // The stock member proposes to remove carol: ours does not take
    // proposals about others (its members make none), so it is refused...
    let carol_index = sg
        .roster()
        .members_iter()
        .find(|m| m.index != sg.current_member_index() && m.index != 1)
        .map(|m| m.index)
        .unwrap();
    let p = sg.propose_remove(carol_index, Vec::new()).unwrap();
    assert!(matches!(
        ours.receive(&p.to_bytes().unwrap()),
        Err(blindrelay_mls::MlsError::Refused)
    ));
    // ...and forgotten: ours can still send, and its next commit removes
    // nobody.
    ours.encrypt(&g, b"nothing pending").unwrap();
    ours.update(&g).unwrap();
    ours.commit_accepted(&g).unwrap();
    assert_eq!(ours.members(&g).unwrap().len(), 3);
}
