//! A group's name: inside the group, never seen by the relay.
//!
//! The name travels in a group context extension of our own (private-use
//! type [`GROUP_NAME_EXTENSION`], RFC 9420 §17.3), so it is set and changed
//! only by a commit and authenticated by the group's key schedule. Commits
//! are public to the relay (it checks them, see [`crate::observer`]), so
//! the extension holds the name sealed with AES-256-GCM under the group's
//! [`NameKey`]: 32 random bytes its creator makes, that reach each joiner
//! inside its Welcome (a GroupInfo extension, [`NAME_KEY_EXTENSION`],
//! encrypted by MLS for the joiner), and that members keep beside the
//! group's other secrets. The relay sees that a name is set or changed,
//! and its padded length, never the name.
//!
//! The key does not change while the group lives: a removed member who
//! kept it, and who colludes with the relay, could read names given after
//! its removal (never messages). SECURITY.md says so.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use mls_rs::{Extension, ExtensionList};
use mls_rs_core::extension::ExtensionType;
use zeroize::Zeroizing;

/// The group context extension that carries the sealed name.
pub const GROUP_NAME_EXTENSION: ExtensionType = ExtensionType::new(0xF0B1);
/// The GroupInfo extension, inside a Welcome only, that carries the
/// group's [`NameKey`] to the joiner.
pub const NAME_KEY_EXTENSION: ExtensionType = ExtensionType::new(0xF0B2);
/// Longest name, in bytes.
pub const MAX_GROUP_NAME: usize = 64;
/// A sealed name is padded to this many bytes of name, so that its length
/// says little.
const SEALED_NAME_PAD: usize = MAX_GROUP_NAME + 1;
/// Bound into every sealed name.
const NAME_AAD: &[u8] = b"blindrelay group name v1";

/// A group's name key (see the module documentation). No `Debug`;
/// zeroized on drop.
///
/// ```compile_fail
/// let k = blindrelay_mls::name::NameKey::generate().unwrap();
/// println!("{:?}", k);
/// ```
pub struct NameKey(Zeroizing<[u8; 32]>);

impl NameKey {
    /// A fresh random key.
    pub fn generate() -> Option<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        SystemRandom::new().fill(k.as_mut()).ok()?;
        Some(Self(k))
    }

    /// The key's bytes (to store).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as the Welcome's GroupInfo extension.
    pub(crate) fn extension(&self) -> Extension {
        Extension::new(NAME_KEY_EXTENSION, self.0.to_vec())
    }

    /// The key in a Welcome's GroupInfo extensions, if there is one.
    pub(crate) fn from_extensions(list: &ExtensionList) -> Option<Self> {
        Self::try_from(list.get(NAME_KEY_EXTENSION)?.extension_data()).ok()
    }

    fn aead(&self) -> Option<LessSafeKey> {
        Some(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, self.0.as_ref()).ok()?,
        ))
    }
}

impl TryFrom<&[u8]> for NameKey {
    type Error = NameError;
    fn try_from(b: &[u8]) -> Result<Self, NameError> {
        let mut k = Zeroizing::new([0u8; 32]);
        if b.len() != k.len() {
            return Err(NameError::Invalid);
        }
        k.copy_from_slice(b);
        Ok(Self(k))
    }
}

/// A group name: 1 to [`MAX_GROUP_NAME`] bytes of UTF-8, no control
/// characters, no leading or trailing space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupName(String);

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// Empty, too long, with a control character, or padded with spaces.
    #[error(
        "a group name is 1-64 bytes, without control or bidirectional characters or outer spaces"
    )]
    Invalid,
}

impl GroupName {
    /// Checks `s`.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if s.is_empty()
            || s.len() > MAX_GROUP_NAME
            || s.trim() != s
            || s.chars().any(char::is_control)
            // Nor bidirectional overrides, zero-width and other characters
            // that change how text around them shows: a member names a
            // group, and every other member's screen shows the name.
            || s.chars().any(blindrelay_wire::text::is_display_control)
        {
            return Err(NameError::Invalid);
        }
        Ok(Self(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, sealed under `key`, as the group context extension.
    pub(crate) fn extension(&self, key: &NameKey) -> Option<Extension> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        // Length-prefixed, zero-padded: every sealed name is as long.
        let mut sealed = Vec::with_capacity(SEALED_NAME_PAD + AES_256_GCM.tag_len());
        sealed.push(u8::try_from(self.0.len()).ok()?);
        sealed.extend_from_slice(self.0.as_bytes());
        sealed.resize(SEALED_NAME_PAD, 0);
        key.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(NAME_AAD),
                &mut sealed,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(Extension::new(GROUP_NAME_EXTENSION, out))
    }

    /// The name in a group's extensions, opened with `key`, if there is a
    /// valid one (an invalid one, which no blindrelay member sets, or one
    /// this device has no key for, reads as none).
    pub(crate) fn from_extensions(list: &ExtensionList, key: Option<&NameKey>) -> Option<Self> {
        let ext = list.get(GROUP_NAME_EXTENSION)?;
        let data = ext.extension_data();
        let nonce = Nonce::try_assume_unique_for_key(data.get(..NONCE_LEN)?).ok()?;
        let mut sealed = Zeroizing::new(data.get(NONCE_LEN..)?.to_vec());
        let plain = key?
            .aead()?
            .open_in_place(nonce, Aad::from(NAME_AAD), &mut sealed)
            .ok()?;
        let (len, rest) = plain.split_first()?;
        let s = std::str::from_utf8(rest.get(..usize::from(*len))?).ok()?;
        Self::new(s).ok()
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_checked_at_their_bounds() {
        let team = GroupName::new("team").unwrap();
        assert_eq!((team.as_str(), team.to_string().as_str()), ("team", "team"));
        assert!(GroupName::new("x").is_ok());
        assert!(GroupName::new(&"é".repeat(32)).is_ok(), "64 bytes");
        assert_eq!(GroupName::new(&"x".repeat(65)), Err(NameError::Invalid));
        for bad in [
            "",
            " team",
            "team ",
            "a\nb",
            "a\u{1b}[2Jb",
            "evil\u{202e}txt",
            "a\u{200b}b",
        ] {
            assert_eq!(GroupName::new(bad), Err(NameError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn a_name_survives_its_extension_under_its_key_only() {
        let n = GroupName::new("Project Ω").unwrap();
        let key = NameKey::generate().unwrap();
        let mut list = ExtensionList::new();
        list.set(n.extension(&key).unwrap());
        assert_eq!(GroupName::from_extensions(&list, Some(&key)), Some(n));
        assert_eq!(GroupName::from_extensions(&list, None), None);
        // The longest name and the shortest survive too.
        for edge in ["é".repeat(32), "x".to_string()] {
            let n = GroupName::new(&edge).unwrap();
            let mut list = ExtensionList::new();
            list.set(n.extension(&key).unwrap());
            assert_eq!(GroupName::from_extensions(&list, Some(&key)), Some(n));
        }
        let other = NameKey::generate().unwrap();
        assert_eq!(GroupName::from_extensions(&list, Some(&other)), None);
        assert_eq!(
            GroupName::from_extensions(&ExtensionList::new(), Some(&key)),
            None
        );
    }

    #[test]
    fn a_sealed_name_shows_neither_the_name_nor_its_length() {
        let key = NameKey::generate().unwrap();
        let short = GroupName::new("x").unwrap().extension(&key).unwrap();
        let long = GroupName::new(&"y".repeat(64))
            .unwrap()
            .extension(&key)
            .unwrap();
        assert_eq!(short.extension_data().len(), long.extension_data().len());
        assert!(!long.extension_data().windows(8).any(|w| w == b"yyyyyyyy"));
    }

    #[test]
    fn a_name_key_is_exactly_32_bytes() {
        assert!(NameKey::try_from([7u8; 32].as_slice()).is_ok());
        assert!(NameKey::try_from([7u8; 31].as_slice()).is_err());
        assert!(NameKey::try_from([7u8; 33].as_slice()).is_err());
    }
}
