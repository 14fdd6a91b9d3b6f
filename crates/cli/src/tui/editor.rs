//! The input box's text: a multi-line buffer and a cursor, edited by keys
//! and pastes. No terminal here; [`super::view`] draws it.

/// The most the input box holds, in bytes: one message (64 KiB); a longer
/// paste is cut and the user told.
pub(crate) const MAX_INPUT: usize = blindrelay_e2e::content::MAX_TEXT_LEN;

/// A multi-line text with a cursor (a char index).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Editor {
    text: Vec<char>,
    cursor: usize,
}

impl Editor {
    /// The text.
    pub(crate) fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// True if nothing is typed.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Empties the box and returns what it held.
    pub(crate) fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text).into_iter().collect()
    }

    /// Inserts `s` at the cursor, up to [`MAX_INPUT`] bytes in all. False
    /// if some of it did not fit.
    pub(crate) fn insert(&mut self, s: &str) -> bool {
        let mut used: usize = self.text.iter().map(|c| c.len_utf8()).sum();
        // A pasted CR LF, or a lone CR (terminals send Enter as CR), is a
        // line break.
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        for c in s.chars() {
            if used + c.len_utf8() > MAX_INPUT {
                return false;
            }
            used += c.len_utf8();
            self.text.insert(self.cursor, c);
            self.cursor += 1;
        }
        true
    }

    /// Deletes the character before the cursor.
    pub(crate) fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the character under the cursor.
    pub(crate) fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    pub(crate) fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub(crate) fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.len());
    }

    fn line_start(&self, at: usize) -> usize {
        self.text
            .get(..at)
            .unwrap_or_default()
            .iter()
            .rposition(|c| *c == '\n')
            .map_or(0, |i| i + 1)
    }

    fn line_end(&self, at: usize) -> usize {
        self.text
            .get(at..)
            .unwrap_or_default()
            .iter()
            .position(|c| *c == '\n')
            .map_or(self.text.len(), |i| at + i)
    }

    /// To the start of the line.
    pub(crate) fn home(&mut self) {
        self.cursor = self.line_start(self.cursor);
    }

    /// To the end of the line.
    pub(crate) fn end(&mut self) {
        self.cursor = self.line_end(self.cursor);
    }

    /// One line up (false if on the first line).
    pub(crate) fn up(&mut self) -> bool {
        let start = self.line_start(self.cursor);
        if start == 0 {
            return false;
        }
        let col = self.cursor - start;
        let prev = self.line_start(start - 1);
        self.cursor = (prev + col).min(start - 1);
        true
    }

    /// One line down (false if on the last line).
    pub(crate) fn down(&mut self) -> bool {
        let end = self.line_end(self.cursor);
        if end == self.text.len() {
            return false;
        }
        let col = self.cursor - self.line_start(self.cursor);
        let next_end = self.line_end(end + 1);
        self.cursor = (end + 1 + col).min(next_end);
        true
    }

    /// Deletes from the start of the line to the cursor (Ctrl-U).
    pub(crate) fn kill_to_start(&mut self) {
        let start = self.line_start(self.cursor);
        self.text.drain(start..self.cursor);
        self.cursor = start;
    }

    /// The lines, and the cursor as (line, column in chars).
    pub(crate) fn lines_and_cursor(&self) -> (Vec<String>, (usize, usize)) {
        let mut lines = vec![String::new()];
        let mut pos = (0, 0);
        for (i, c) in self.text.iter().enumerate() {
            if i == self.cursor {
                pos = (
                    lines.len() - 1,
                    lines.last().map_or(0, |l| l.chars().count()),
                );
            }
            if *c == '\n' {
                lines.push(String::new());
            } else if let Some(l) = lines.last_mut() {
                l.push(*c);
            }
        }
        if self.cursor == self.text.len() {
            pos = (
                lines.len() - 1,
                lines.last().map_or(0, |l| l.chars().count()),
            );
        }
        (lines, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_editing_and_moving_between_lines() {
        let mut e = Editor::default();
        e.insert("hello");
        e.insert("\n");
        e.insert("wor");
        assert_eq!(
            e.lines_and_cursor(),
            (vec!["hello".into(), "wor".into()], (1, 3))
        );
        assert!(e.up());
        assert_eq!(e.lines_and_cursor().1, (0, 3));
        e.insert("X");
        assert_eq!(e.text(), "helXlo\nwor");
        assert!(e.down());
        e.end();
        e.backspace();
        assert_eq!(e.text(), "helXlo\nwo");
        e.home();
        e.delete();
        assert_eq!(e.text(), "helXlo\no");
        assert!(!e.down());
        e.kill_to_start();
        assert_eq!(e.take(), "helXlo\no");
        assert!(e.is_empty());
    }

    #[test]
    fn a_paste_keeps_its_lines_and_stops_at_the_message_limit() {
        let mut e = Editor::default();
        assert!(e.insert("one\r\ntwo\r\n"));
        assert_eq!(e.text(), "one\ntwo\n");
        let mut e = Editor::default();
        assert!(e.insert("one\rtwo"));
        assert_eq!(e.text(), "one\ntwo");
        let mut e = Editor::default();
        assert!(!e.insert(&"x".repeat(MAX_INPUT + 10)));
        assert_eq!(e.text().len(), MAX_INPUT);
    }
}
