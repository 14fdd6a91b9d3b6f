//! User names.
//!
//! A user name is the certificate's Common Name and the only identity the
//! relay knows. It is 1 to [`UserName::MAX_LEN`] bytes from the alphabet
//! `a-z`, `0-9`, `.`, `_`, `-`, and it starts with a letter or digit. The
//! alphabet is deliberately small: no upper case (no case-folding
//! ambiguities), no spaces or control characters (nothing to confuse a log
//! line or a terminal), and nothing that is special in a file path, since
//! names become file and directory names (`issued/NAME.pem`, `blindrelay-NAME/`).

use std::fmt;

use crate::WireError;

/// A validated user name. It can only be built through [`UserName::new`] or
/// [`TryFrom`], so holding one proves the name passed the checks.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// The longest allowed name, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, WireError> {
        Self::check(name.as_bytes())?;
        Ok(Self(name.to_owned()))
    }

    /// Validates raw bytes from the wire.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        Self::check(bytes)?;
        // The alphabet is ASCII, so this conversion cannot fail after `check`.
        let s = std::str::from_utf8(bytes).map_err(|_| WireError::InvalidName)?;
        Ok(Self(s.to_owned()))
    }

    fn check(b: &[u8]) -> Result<(), WireError> {
        let first_ok = b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let all_ok = b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
        if first_ok && all_ok && b.len() <= Self::MAX_LEN {
            Ok(())
        } else {
            Err(WireError::InvalidName)
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for UserName {
    type Error = WireError;
    fn try_from(s: &str) -> Result<Self, WireError> {
        Self::new(s)
    }
}

impl std::str::FromStr for UserName {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        Self::new(s)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({})", self.0)
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in [
            "alice",
            "bob",
            "a",
            "user-1",
            "x.y_z",
            "0day",
            &"a".repeat(32),
        ] {
            assert!(UserName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "Alice",
            "-alice",
            ".hidden",
            "_x",
            "a b",
            "a/b",
            "../etc",
            "al\nice",
            "é",
            &"a".repeat(33),
            "a\0",
        ] {
            assert_eq!(UserName::new(bad), Err(WireError::InvalidName), "{bad:?}");
        }
    }
}
