//! MLS framing a hostile device can build without any key: a
//! `PrivateMessage` (RFC 9420 §6.3) of application content whose
//! ciphertext is whatever it likes. The relay cannot tell it from a real
//! message (it cannot decrypt either), so it carries it and charges it to
//! the sender; every member refuses it. Floods are built from this.

/// The TLS-presentation variable-length size (RFC 9420 §2.1.2) of `n`.
fn varint(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes());
    }
}

fn opaque(out: &mut Vec<u8>, bytes: &[u8]) {
    varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// An MLSMessage carrying a `PrivateMessage` for `group_id` at `epoch`, of
/// application content, with `len` bytes of made-up ciphertext (at most
/// 2^30 - 1).
pub fn private_message(group_id: &[u8], epoch: u64, len: usize) -> Vec<u8> {
    private(group_id, epoch, 1, len)
}

/// Like [`private_message`], but saying it holds a commit: a handshake
/// hidden from the relay's check.
pub fn private_commit(group_id: &[u8], epoch: u64, len: usize) -> Vec<u8> {
    private(group_id, epoch, 3, len)
}

fn private(group_id: &[u8], epoch: u64, content_type: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + group_id.len() + 64);
    out.extend_from_slice(&1u16.to_be_bytes()); // mls10
    out.extend_from_slice(&2u16.to_be_bytes()); // mls_private_message
    opaque(&mut out, group_id);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(content_type); // 1 application, 2 proposal, 3 commit
    opaque(&mut out, &[]); // authenticated_data
    opaque(&mut out, &[0x5a; 28]); // encrypted_sender_data
    varint(&mut out, len);
    out.resize(out.len() + len, 0x17);
    out
}
