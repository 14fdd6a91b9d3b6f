//! The few MQTT 3.1.1 packets the harness sends (QoS 0 only): CONNECT,
//! SUBSCRIBE and the PUBLISH header's fields.

/// The variable-length "remaining length" field.
pub fn remaining_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

/// A length-prefixed UTF-8 string.
pub fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// CONNECT with a clean session and no keep-alive.
pub fn connect(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    body.push(0x02); // clean session
    body.extend_from_slice(&0u16.to_be_bytes()); // no keep-alive
    string(client_id, &mut body);
    let mut p = vec![0x10];
    remaining_len(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

/// SUBSCRIBE to one topic at QoS 0.
pub fn subscribe(topic: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    string(topic, &mut body);
    body.push(0); // QoS 0
    let mut p = vec![0x82];
    remaining_len(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}
