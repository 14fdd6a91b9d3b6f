//! Which characters may reach a person's screen.
//!
//! Text from a peer (a goodbye reason on the wire, a chat message after
//! decryption) must not be able to rewrite the terminal or disguise itself.
//! [`is_display_control`] is the one definition of what is refused: the
//! relay refuses goodbye reasons containing such characters, and the user
//! interfaces replace them before printing.

/// True for characters that can change how surrounding text is displayed:
/// controls (Cc), the invisible format characters (bidirectional marks,
/// overrides and isolates, the zero-width space, the word joiner and the
/// invisible operators, the BOM), and the Unicode line and paragraph
/// separators, which some viewers break lines at.
///
/// The zero-width non-joiner (U+200C) and joiner (U+200D) are *not*
/// display controls: they only join or separate the characters around them
/// (emoji sequences such as 👨‍👩‍👧, Persian and Indic words such as
/// می‌خواهم) and cannot move text or hide it.
pub fn is_display_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_display_controls_letters_are_not() {
        for c in [
            '\x1b', '\n', '\r', '\u{85}', '\u{7f}', '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}',
            '\u{2028}', '\u{2029}',
        ] {
            assert!(is_display_control(c), "{c:?}");
        }
        for c in ['a', 'é', '→', 'م', '👩'] {
            assert!(!is_display_control(c), "{c:?}");
        }
    }

    #[test]
    fn joiners_in_emoji_and_persian_words_are_kept_and_bidi_marks_are_not() {
        for text in ["👨\u{200D}👩\u{200D}👧", "👩\u{200D}💻", "می\u{200C}خواهم"] {
            assert!(!text.chars().any(is_display_control), "{text:?}");
        }
        for c in ['\u{200B}', '\u{200E}', '\u{200F}', '\u{2060}'] {
            assert!(is_display_control(c), "{c:?}");
        }
    }
}
