//! Property tests of every message codec, and the strict decoders'
//! refusals.

use super::*;
use crate::frame::{FRAME_LEN, Frame, FrameType, MAX_BODY_LEN};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = UserName> {
    "[a-z0-9][a-z0-9._-]{0,31}".prop_map(|s| UserName::new(&s).unwrap())
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Everyone),
        proptest::collection::btree_set(name(), 1..6)
            .prop_map(|s| Target::Users(s.into_iter().collect())),
    ]
}

fn routed() -> impl Strategy<Value = Routed> {
    (
        any::<[u8; 16]>(),
        (1u16..=MAX_FRAGMENTS).prop_flat_map(|c| (0..c, Just(c))),
        name(),
        target(),
        proptest::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(|(id, (i, c), sender, target, payload)| Routed {
            header: RoutedHeader {
                msg_id: MessageId(id),
                fragment: FragmentPos::new(i, c).unwrap(),
                flags: RoutedFlags::from_bits(id[0] & 3).unwrap(),
                sender,
                target,
            },
            payload,
        })
}

fn status_kind() -> impl Strategy<Value = StatusKind> {
    prop_oneof![
        any::<u16>().prop_map(|d| StatusKind::Accepted { delivered: d }),
        name().prop_map(StatusKind::Offline),
        name().prop_map(StatusKind::Unknown),
        any::<u16>().prop_map(|n| StatusKind::Stored { recipients: n }),
        name().prop_map(StatusKind::QuotaExceeded),
    ]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        name(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        any::<u32>(),
    )
        .prop_map(
            |(identity, rate_max, rate_window_ms, keepalive_ms, max_fragments, store_ttl_s)| {
                Welcome {
                    identity,
                    rate_max,
                    rate_window_ms,
                    keepalive_ms,
                    max_fragments,
                    store_ttl_s,
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<u64>().prop_map(Message::Ping),
        any::<u64>().prop_map(Message::Pong),
        routed().prop_map(Message::Send),
        routed().prop_map(Message::Deliver),
        proptest::collection::vec((name(), any::<[u8; 16]>()), 1..=MAX_ACK_IDS).prop_map(|v| {
            Message::Ack(v.into_iter().map(|(n, i)| (n, MessageId(i))).collect())
        }),
        (any::<[u8; 16]>(), status_kind()).prop_map(|(id, kind)| Message::Status {
            msg_id: MessageId(id),
            kind
        }),
        welcome().prop_map(Message::Welcome),
        (
            0usize..3,
            name(),
            proptest::collection::vec(any::<u8>(), 1..=CERT_MAX_LEN)
        )
            .prop_map(|(j, name, cert_der)| Message::Peer {
                event: [PeerEvent::Listed, PeerEvent::Joined, PeerEvent::Offline][j],
                name,
                cert_der
            }),
        any::<u16>().prop_map(|count| Message::DirectoryEnd { count }),
        name().prop_map(|name| Message::PeerLeft { name }),
        (
            1u8..=255,
            proptest::collection::vec(any::<u8>(), 1..=CRL_CHUNK_MAX)
        )
            .prop_flat_map(|(count, chunk)| (0..count, Just(count), Just(chunk)))
            .prop_map(|(index, count, chunk)| Message::Crl {
                index,
                count,
                chunk
            }),
        proptest::collection::vec((any::<[u8; 16]>(), status_kind()), 2..=MAX_STATUSES).prop_map(
            |v| Message::Statuses(v.into_iter().map(|(id, k)| (MessageId(id), k)).collect())
        ),
        (
            any::<u32>(),
            1u16..=640,
            proptest::collection::vec(any::<u8>(), 1..=crate::DS_CHUNK_MAX),
            any::<bool>()
        )
            .prop_flat_map(|(msg, count, data, up)| (
                Just(msg),
                0..count,
                Just(count),
                Just(data),
                Just(up)
            ))
            .prop_map(|(msg, index, count, data, up)| {
                let c = crate::Chunk {
                    msg,
                    index,
                    count,
                    data,
                };
                if up {
                    Message::DsUp(c)
                } else {
                    Message::DsDown(c)
                }
            }),
        (0u8..=9, "[ -~]{0,200}").prop_map(|(c, reason)| Message::Goodbye {
            code: GoodbyeCode::from_u8(c).unwrap(),
            reason
        }),
    ]
}

#[test]
fn crl_chunks_are_checked_at_their_bounds() {
    let crl = |index, count, len| Message::Crl {
        index,
        count,
        chunk: vec![7; len],
    };
    for ok in [crl(0, 1, 1), crl(254, 255, CRL_CHUNK_MAX)] {
        assert_eq!(Message::decode(&ok.encode().unwrap()[..]).unwrap(), ok);
    }
    for bad in [
        crl(0, 0, 1),
        crl(1, 1, 1),
        crl(0, 1, 0),
        crl(0, 1, CRL_CHUNK_MAX + 1),
    ] {
        assert!(bad.encode().is_err(), "{bad:?}");
    }
    // A body that claims index 3 of 3, written by hand.
    let body = vec![3, 3, 0, 1, 9];
    let frame = Frame::new(FrameType::Crl, body).unwrap();
    assert_eq!(
        Message::from_frame(&frame),
        Err(WireError::InvalidField("crl index"))
    );
    // Cutting and joining gives the bytes back.
    let der: Vec<u8> = (0..3 * CRL_CHUNK_MAX + 5).map(|i| i as u8).collect();
    let parts = crate::crl_messages(&der).unwrap();
    assert_eq!(parts.len(), 4);
    let mut joined = Vec::new();
    for (i, m) in parts.iter().enumerate() {
        let Message::Crl {
            index,
            count,
            chunk,
        } = m
        else {
            panic!("{m:?}")
        };
        assert_eq!((usize::from(*index), *count), (i, 4));
        joined.extend_from_slice(chunk);
    }
    assert_eq!(joined, der);
    assert!(crate::crl_messages(&[]).is_err());
    assert!(crate::crl_messages(&vec![0; CRL_MAX_CHUNKS * CRL_CHUNK_MAX + 1]).is_err());
}

proptest! {
    #[test]
    fn every_message_round_trips_in_one_full_frame(m in message()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(bytes.len(), FRAME_LEN);
        prop_assert_eq!(Message::decode(&bytes[..]).unwrap(), m);
    }

    #[test]
    fn decode_never_panics_on_any_body(
        kind in prop::sample::select(FrameType::ALL),
        body in proptest::collection::vec(any::<u8>(), 0..=MAX_BODY_LEN),
    ) {
        let frame = Frame::new(kind, body).unwrap();
        let _ = Message::from_frame(&frame);
        let _ = RoutedBody::decode(frame.into_body().into());
    }

    #[test]
    fn decode_never_panics_on_mutated_messages(
        m in message(),
        flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..4),
    ) {
        let mut bytes = m.encode().unwrap();
        for (pos, val) in flips {
            bytes[pos] = val;
        }
        let _ = Message::decode(&bytes[..]);
    }

    /// The relay's received-bytes form decodes exactly what the message
    /// decoder decodes, and the DELIVER frame it writes is the one the
    /// message encoder would write: the same bytes, with only the STORED
    /// flag added when asked.
    #[test]
    fn a_routed_body_delivers_the_bytes_it_received(r in routed(), stored in any::<bool>()) {
        let send = Message::Send(r.clone()).to_frame().unwrap();
        let body = RoutedBody::decode(send.into_body().into()).unwrap();
        prop_assert_eq!(body.header(), &r.header);
        prop_assert_eq!(body.payload(), &r.payload[..]);
        let mut out = [0u8; FRAME_LEN];
        body.write_deliver(stored, &mut out);
        let mut expected = r.clone();
        if stored {
            expected.header.flags = expected.header.flags.with(RoutedFlags::STORED);
        }
        prop_assert_eq!(&out[..], &Message::Deliver(expected.clone()).encode().unwrap()[..]);
        // The store keeps the bytes as received; the frame made from them
        // later is the same.
        let mut from_store = [0u8; FRAME_LEN];
        write_deliver(body.bytes(), stored, &mut from_store).unwrap();
        prop_assert_eq!(&from_store[..], &out[..]);
    }
}

fn alice() -> UserName {
    UserName::new("alice").unwrap()
}

fn send_to(users: Vec<UserName>) -> Message {
    Message::Send(Routed {
        header: RoutedHeader {
            msg_id: MessageId([7; 16]),
            fragment: FragmentPos::SINGLE,
            flags: RoutedFlags::NONE,
            sender: alice(),
            target: Target::Users(users),
        },
        payload: vec![1, 2, 3],
    })
}

#[test]
fn rejects_bad_recipient_lists() {
    assert!(send_to(vec![]).encode().is_err());
    assert!(send_to(vec![alice(), alice()]).encode().is_err());
    let many: Vec<UserName> = (0..65)
        .map(|i| UserName::new(&format!("u{i}")).unwrap())
        .collect();
    assert!(send_to(many).encode().is_err());
}

#[test]
fn unknown_flag_bits_are_refused_by_both_decoders() {
    let mut bytes = send_to(vec![UserName::new("bob").unwrap()])
        .encode()
        .unwrap();
    // flags sit after header(4) + id(16) + position(4)
    bytes[4 + 20] = 0x04;
    let want = WireError::InvalidField("routed flags");
    assert_eq!(Message::decode(&bytes[..]), Err(want.clone()));
    let body = Frame::decode(&bytes[..]).unwrap().into_body();
    assert_eq!(RoutedBody::decode(body.into()).map(|_| ()), Err(want));
    assert!(RoutedFlags::from_bits(0x03).is_ok());
}

#[test]
fn statuses_carry_two_to_max_statuses_of_the_longest_kind() {
    let longest = UserName::new(&"n".repeat(UserName::MAX_LEN)).unwrap();
    let full: Vec<(MessageId, StatusKind)> = (0..MAX_STATUSES)
        .map(|i| {
            (
                MessageId([i as u8; 16]),
                StatusKind::QuotaExceeded(longest.clone()),
            )
        })
        .collect();
    let m = Message::Statuses(full.clone());
    assert_eq!(Message::decode(&m.encode().unwrap()[..]).unwrap(), m);
    let mut over = full.clone();
    over.push((MessageId([0; 16]), StatusKind::Stored { recipients: 1 }));
    assert!(Message::Statuses(over).encode().is_err());
    assert!(Message::Statuses(full[..1].to_vec()).encode().is_err());
    // A count the decoder must refuse, whatever follows.
    for n in [0u8, 1, MAX_STATUSES as u8 + 1] {
        let f = Frame::new(FrameType::Statuses, vec![n; 40]).unwrap();
        assert_eq!(
            Message::from_frame(&f),
            Err(WireError::InvalidField("status count"))
        );
    }
    assert!(!m.is_client_to_server());
}

#[test]
fn rejects_trailing_bytes() {
    let frame = Message::Ping(1).to_frame().unwrap();
    let mut body = frame.body().to_vec();
    body.push(0);
    let f = Frame::new(FrameType::Ping, body).unwrap();
    assert_eq!(Message::from_frame(&f), Err(WireError::TrailingBytes(1)));
    let mut send = send_to(vec![UserName::new("bob").unwrap()])
        .to_frame()
        .unwrap()
        .into_body();
    send.push(0);
    assert_eq!(
        RoutedBody::decode(send.into()).map(|_| ()),
        Err(WireError::TrailingBytes(1))
    );
}

#[test]
fn rejects_bad_fragment_positions() {
    assert!(FragmentPos::new(0, 0).is_err());
    assert!(FragmentPos::new(1, 1).is_err());
    assert!(FragmentPos::new(0, MAX_FRAGMENTS + 1).is_err());
    let m = send_to(vec![UserName::new("bob").unwrap()]);
    let mut bytes = m.encode().unwrap();
    // index (offset 4 + 16) := 5 with count 1
    bytes[4 + 16..4 + 18].copy_from_slice(&5u16.to_be_bytes());
    assert_eq!(
        Message::decode(&bytes[..]),
        Err(WireError::InvalidField("fragment position"))
    );
}

#[test]
fn rejects_invalid_names_on_the_wire() {
    let m = send_to(vec![UserName::new("bob").unwrap()]);
    let mut bytes = m.encode().unwrap();
    // sender name starts after header(4) + id(16) + pos(4) + flags(1) + len(1)
    bytes[4 + 16 + 4 + 1 + 1] = b'A';
    assert_eq!(Message::decode(&bytes[..]), Err(WireError::InvalidName));
}

#[test]
fn rejects_bidi_overrides_in_reasons() {
    let m = Message::Goodbye {
        code: GoodbyeCode::Normal,
        reason: "abc\u{202E}fed".into(),
    };
    assert!(m.encode().is_err());
}

#[test]
fn rejects_control_characters_in_reasons() {
    let m = Message::Goodbye {
        code: GoodbyeCode::Normal,
        reason: "\x1b[2J".into(),
    };
    assert!(m.encode().is_err());
}

#[test]
fn payload_room_matches_the_header() {
    let t = Target::Users(vec![UserName::new("bob").unwrap()]);
    let room = RoutedHeader::max_payload_len(&alice(), &t);
    let header = RoutedHeader {
        msg_id: MessageId([0; 16]),
        fragment: FragmentPos::SINGLE,
        flags: RoutedFlags::NONE,
        sender: alice(),
        target: t,
    };
    let fits = Message::Send(Routed {
        header: header.clone(),
        payload: vec![0; room],
    });
    assert!(fits.encode().is_ok());
    let too_big = Message::Send(Routed {
        header,
        payload: vec![0; room + 1],
    });
    assert!(too_big.encode().is_err());
}
