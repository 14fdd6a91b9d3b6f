//! The v2 messages between a device and the relay: every one round-trips,
//! decoding never panics, and the decoder names what it refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use blindrelay_ds::proto::{decode_devices, encode_devices};
use blindrelay_ds::{Claimed, Delivery, DeviceId, Down, Refusal, RefusalCode, Request, Submission};
use blindrelay_pki::DeviceName;
use blindrelay_wire::{UserName, WireError};
use proptest::prelude::*;

fn device() -> impl Strategy<Value = DeviceId> {
    ("[a-z][a-z0-9]{0,8}", "[a-z][a-z0-9-]{0,8}").prop_map(|(u, d)| DeviceId {
        user: UserName::new(&u).unwrap(),
        device: DeviceName::new(&d).unwrap(),
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn group() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..=255)
}

fn devices() -> impl Strategy<Value = BTreeSet<DeviceId>> {
    proptest::collection::btree_set(device(), 0..6)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            proptest::collection::vec(bytes(), 0..5),
            proptest::option::of(bytes())
        )
            .prop_map(|(one_time, last_resort)| Request::Upload {
                one_time,
                last_resort
            }),
        device().prop_map(|d| Request::Claim(d.user)),
        device().prop_map(|d| Request::Devices(d.user)),
        any::<u64>().prop_map(Request::Ack),
        group().prop_map(Request::GroupInfo),
        (group(), any::<u64>(), bytes()).prop_map(|(group_id, epoch, group_info)| {
            Request::Publish {
                group_id,
                epoch,
                group_info,
            }
        }),
        (group(), any::<u64>(), bytes()).prop_map(|(group_id, epoch, message)| {
            Request::Submit(Submission::Message {
                group_id,
                epoch,
                message,
            })
        }),
        (
            group(),
            any::<u64>(),
            devices(),
            bytes(),
            proptest::option::of((devices(), bytes())),
            proptest::option::of(bytes()),
        )
            .prop_map(|(group_id, epoch, members, commit, welcome, group_info)| {
                Request::Submit(Submission::Commit {
                    group_info,
                    group_id,
                    epoch,
                    members,
                    commit,
                    welcome,
                })
            }),
    ]
}

fn down() -> impl Strategy<Value = Down> {
    let code = prop_oneof![
        Just(Refusal::Storage),
        Just(Refusal::Rules(RefusalCode::TooLarge)),
        Just(Refusal::Rules(RefusalCode::TooManyKeyPackages)),
        Just(Refusal::Rules(RefusalCode::UnknownGroup)),
        Just(Refusal::Rules(RefusalCode::NotAMember)),
        Just(Refusal::Rules(RefusalCode::StaleEpoch)),
        Just(Refusal::Rules(RefusalCode::Membership)),
        Just(Refusal::Rules(RefusalCode::Capacity)),
        Just(Refusal::Rules(RefusalCode::Unverified)),
        Just(Refusal::Rules(RefusalCode::NoGroupInfo)),
    ];
    prop_oneof![
        (device(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(device, key_packages, budget, window_ms)| Down::Hello {
                budget,
                window_ms,
                device,
                key_packages
            }
        ),
        (any::<u32>(), any::<u32>())
            .prop_map(|(req, key_packages)| Down::Uploaded { req, key_packages }),
        (
            any::<u32>(),
            proptest::collection::vec((device(), any::<bool>(), bytes()), 0..4)
        )
            .prop_map(|(req, v)| Down::Claimed {
                req,
                key_packages: v
                    .into_iter()
                    .map(|(device, last_resort, key_package)| Claimed {
                        device,
                        key_package,
                        last_resort
                    })
                    .collect()
            }),
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(req, epoch, recipients)| {
            Down::Accepted {
                req,
                epoch,
                recipients,
            }
        }),
        (any::<u32>(), code, any::<u64>()).prop_map(|(req, why, epoch)| Down::Refused {
            req,
            why,
            epoch
        }),
        (any::<u32>(), devices()).prop_map(|(req, devices)| Down::Devices { req, devices }),
        (any::<u32>(), any::<u64>(), bytes(), bytes()).prop_map(
            |(req, epoch, group_info, tree)| Down::GroupInfo {
                req,
                epoch,
                group_info,
                tree,
            }
        ),
        (any::<u64>(), any::<bool>(), group(), bytes()).prop_map(|(seq, w, group_id, b)| {
            Down::Delivery {
                seq,
                item: if w {
                    Delivery::Welcome {
                        group_id,
                        welcome: b,
                    }
                } else {
                    Delivery::Group {
                        group_id,
                        message: b,
                    }
                },
            }
        }),
    ]
}

proptest! {
    #[test]
    fn every_request_round_trips(r in request(), req in any::<u32>()) {
        let b = r.encode(req).unwrap();
        prop_assert_eq!(Request::decode(&b).unwrap(), (req, r));
    }

    #[test]
    fn every_down_message_round_trips(d in down()) {
        prop_assert_eq!(Down::decode(&d.encode().unwrap()).unwrap(), d);
    }

    #[test]
    fn decoding_any_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::decode(&b);
        let _ = Down::decode(&b);
        let _ = decode_devices(&b);
    }

    #[test]
    fn truncating_or_extending_a_request_is_refused(r in request(), cut in any::<prop::sample::Index>()) {
        let b = r.encode(1).unwrap();
        let at = cut.index(b.len());
        prop_assert!(Request::decode(&b[..at]).is_err());
        let mut longer = b.clone();
        longer.push(0);
        prop_assert_eq!(Request::decode(&longer), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn device_sets_round_trip(s in devices()) {
        prop_assert_eq!(decode_devices(&encode_devices(&s).unwrap()).unwrap(), s);
    }
}

#[test]
fn every_refusal_code_round_trips() {
    let codes = [
        Refusal::Storage,
        Refusal::Rules(RefusalCode::TooLarge),
        Refusal::Rules(RefusalCode::TooManyKeyPackages),
        Refusal::Rules(RefusalCode::UnknownGroup),
        Refusal::Rules(RefusalCode::NotAMember),
        Refusal::Rules(RefusalCode::StaleEpoch),
        Refusal::Rules(RefusalCode::Membership),
        Refusal::Rules(RefusalCode::Capacity),
        Refusal::Rules(RefusalCode::Unverified),
        Refusal::Rules(RefusalCode::NoGroupInfo),
    ];
    for why in codes {
        let d = Down::Refused {
            req: 7,
            why,
            epoch: 3,
        };
        assert_eq!(Down::decode(&d.encode().unwrap()).unwrap(), d);
    }
    let mut bad = Down::Refused {
        req: 7,
        why: Refusal::Storage,
        epoch: 3,
    }
    .encode()
    .unwrap();
    bad[5] = 11;
    assert_eq!(
        Down::decode(&bad),
        Err(WireError::InvalidField("refusal code"))
    );
}

#[test]
fn the_decoder_names_what_it_refuses() {
    // Unknown kinds.
    assert_eq!(
        Request::decode(&[0x09, 0, 0, 0, 1]),
        Err(WireError::InvalidField("request kind"))
    );
    assert_eq!(
        Down::decode(&[0x7f]),
        Err(WireError::InvalidField("down kind"))
    );
    // An empty group id.
    let mut b = vec![0x04, 0, 0, 0, 1, 0];
    b.extend_from_slice(&[0; 12]);
    assert_eq!(
        Request::decode(&b),
        Err(WireError::InvalidField("group id"))
    );
    // A device listed twice in a commit's membership.
    let d = DeviceId {
        user: UserName::new("a").unwrap(),
        device: DeviceName::new("x").unwrap(),
    };
    let commit = Request::Submit(Submission::Commit {
        group_info: None,
        group_id: vec![1],
        epoch: 0,
        members: BTreeSet::from([d.clone()]),
        commit: vec![],
        welcome: None,
    });
    let mut b = commit.encode(1).unwrap();
    // Patch the count from 1 to 2 and repeat the device.
    let at = 1 + 4 + 2 + 8;
    b[at + 1] = 2;
    let dev = encode_devices(&BTreeSet::from([d])).unwrap();
    let insert_at = at + dev.len();
    b.splice(insert_at..insert_at, dev[2..].iter().copied());
    assert_eq!(
        Request::decode(&b),
        Err(WireError::InvalidField("device listed twice"))
    );
    // Two devices out of order (a list has one encoding: ascending).
    let e = DeviceId {
        user: UserName::new("b").unwrap(),
        device: DeviceName::new("x").unwrap(),
    };
    let d = DeviceId {
        user: UserName::new("a").unwrap(),
        device: DeviceName::new("x").unwrap(),
    };
    let two = encode_devices(&BTreeSet::from([d.clone(), e.clone()])).unwrap();
    let mut swapped = two[..2].to_vec();
    let one_len = encode_devices(&BTreeSet::from([d])).unwrap().len() - 2;
    swapped.extend_from_slice(&two[2 + one_len..]);
    swapped.extend_from_slice(&two[2..2 + one_len]);
    assert_eq!(
        decode_devices(&swapped),
        Err(WireError::InvalidField("device list order"))
    );
    assert!(decode_devices(&two).is_ok());
    // A flag that is neither 0 nor 1.
    let mut b = Request::Upload {
        one_time: vec![],
        last_resort: None,
    }
    .encode(1)
    .unwrap();
    *b.last_mut().unwrap() = 2;
    assert_eq!(
        Request::decode(&b),
        Err(WireError::InvalidField("last resort"))
    );
    // A group id empty or too long to write.
    let empty = Request::Submit(Submission::Message {
        group_id: vec![],
        epoch: 0,
        message: vec![],
    });
    assert!(empty.encode(1).is_err());
    let longest = Request::Submit(Submission::Message {
        group_id: vec![0; 255],
        epoch: 0,
        message: vec![],
    });
    assert!(longest.encode(1).is_ok());
    let long = Request::Submit(Submission::Message {
        group_id: vec![0; 256],
        epoch: 0,
        message: vec![],
    });
    assert!(long.encode(1).is_err());
}

#[test]
fn every_refusal_code_has_its_own_words_for_a_person() {
    let codes = [
        RefusalCode::TooLarge,
        RefusalCode::TooManyKeyPackages,
        RefusalCode::UnknownGroup,
        RefusalCode::NotAMember,
        RefusalCode::StaleEpoch,
        RefusalCode::Membership,
        RefusalCode::Capacity,
        RefusalCode::Unverified,
    ];
    let words: std::collections::BTreeSet<&str> = codes.iter().map(|c| c.describe()).collect();
    assert_eq!(words.len(), codes.len());
    assert_eq!(
        RefusalCode::Unverified.describe(),
        "it does not verify against the group's public state"
    );
}
