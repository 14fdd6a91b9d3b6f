//! A group's name: inside the group, never seen by the relay.
//!
//! The name travels in a group context extension of our own (private-use
//! type [`GROUP_NAME_EXTENSION`], RFC 9420 §17.3), so it is set and changed
//! only by a commit, authenticated by the group's key schedule, and
//! encrypted with the rest of the handshake.

use mls_rs::{Extension, ExtensionList};
use mls_rs_core::extension::ExtensionType;

/// The group context extension that carries the name (UTF-8 bytes).
pub const GROUP_NAME_EXTENSION: ExtensionType = ExtensionType::new(0xF0B1);
/// Longest name, in bytes.
pub const MAX_GROUP_NAME: usize = 64;

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

    /// The name as the group context extension.
    pub(crate) fn extension(&self) -> Extension {
        Extension::new(GROUP_NAME_EXTENSION, self.0.as_bytes().to_vec())
    }

    /// The name in a group's extensions, if there is a valid one (an
    /// invalid one, which no blindrelay member sets, reads as none).
    pub(crate) fn from_extensions(list: &ExtensionList) -> Option<Self> {
        let ext = list.get(GROUP_NAME_EXTENSION)?;
        let s = std::str::from_utf8(ext.extension_data()).ok()?;
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
    fn a_name_survives_its_extension() {
        let n = GroupName::new("Project Ω").unwrap();
        let mut list = ExtensionList::new();
        list.set(n.extension());
        assert_eq!(GroupName::from_extensions(&list), Some(n));
        assert_eq!(GroupName::from_extensions(&ExtensionList::new()), None);
    }
}
