//! Turning client events into what people and programs read: safe text,
//! local times, one line per thing worth a line, and the JSON events.
//!
//! Every front end (the line client, the full-screen client, `send`) goes
//! through here, so that a peer's text is made safe for a terminal in one
//! place, and times and statuses read the same everywhere:
//! * this module: safe text, times in the user's time zone, previews;
//! * [`narrator`]: events as lines for people;
//! * [`machine`]: events as JSON for programs.

mod machine;
mod narrator;

pub(crate) use machine::machine;
pub(crate) use narrator::Narrator;

use chrono::{DateTime, Local, TimeZone};

/// Replaces control and invisible format characters (terminal escapes,
/// bidirectional overrides) so that text from peers cannot rewrite the
/// screen or disguise itself. Joiners (emoji sequences, Persian words)
/// are kept: see [`blindrelay_wire::text::is_display_control`].
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if blindrelay_wire::text::is_display_control(c) && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// A Unix-ms timestamp in `tz`: the clock if it is the same day as
/// `now_ms`, the date and the clock otherwise.
pub(crate) fn stamp_in<Tz: TimeZone>(tz: &Tz, ms: u64, now_ms: u64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let at = |ms: u64| -> Option<DateTime<Tz>> {
        tz.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
    };
    match (at(ms), at(now_ms)) {
        (Some(t), Some(now)) if t.date_naive() == now.date_naive() => {
            t.format("%H:%M:%S").to_string()
        }
        (Some(t), _) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        (None, _) => "??:??:??".into(),
    }
}

/// [`stamp_in`] the local time zone (`TZ`, else the system's).
pub(crate) fn stamp(ms: u64, now_ms: u64) -> String {
    stamp_in(&Local, ms, now_ms)
}

/// The time a message line shows: its sender's time, marked if it
/// arrived late (then always with its date).
pub(crate) fn when_in<Tz: TimeZone>(tz: &Tz, ms: u64, now_ms: u64, late: bool) -> String
where
    Tz::Offset: std::fmt::Display,
{
    if late {
        // Late: the date always, even today.
        let s = stamp_in(tz, ms, ms.saturating_add(86_400_000 * 2));
        format!("{s}, delivered late")
    } else {
        stamp_in(tz, ms, now_ms)
    }
}

/// [`when_in`] the local time zone.
pub(crate) fn when(ms: u64, now_ms: u64, late: bool) -> String {
    when_in(&Local, ms, now_ms, late)
}

/// Now, Unix ms.
pub(crate) fn now_ms() -> u64 {
    blindrelay_net::unix_ms()
}

/// What separates the lines of one message on screen: a line of a message
/// never starts where a message line starts (`[`), so a text cannot pass a
/// line of its own off as a message from someone else.
pub(crate) const CONTINUATION: &str = "\n  \u{2502} ";
/// What begins a continuation line: [`CONTINUATION`] without its line
/// break (the full-screen client draws it as a part of its own).
pub(crate) const BAR: &str = CONTINUATION.split_at(1).1;

/// A message's text as printed: sanitized, continuation lines marked.
pub(crate) fn body(text: &str) -> String {
    sanitize(text).replace('\n', CONTINUATION)
}

/// `text` (lines already marked with [`CONTINUATION`]) cut so that no
/// line is wider than `width` columns: a longer line is cut and its rest
/// goes behind the continuation bar. Without this, a terminal's own soft
/// wrap would start the rest of a long line at column 0, where a crafted
/// text could look like a message of its own.
pub(crate) fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let bar_width = BAR.chars().count();
    let width = width.max(8);
    let mut out: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let mut cur = String::new();
        let mut cols = 0;
        for c in line.chars() {
            let w = c.width().unwrap_or(0);
            if cols + w > width {
                out.push(std::mem::take(&mut cur));
                cur.push_str(BAR);
                cols = bar_width;
            }
            cur.push(c);
            cols += w;
        }
        out.push(cur);
    }
    out.join("\n")
}

/// [`fit`] to the terminal's width when standard output is a terminal
/// (a pipe or file is not wrapped by anyone, so it is left as it is).
pub(crate) fn for_terminal(text: &str) -> String {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return text.to_string();
    }
    match ratatui::crossterm::terminal::size() {
        Ok((cols, _)) => fit(text, usize::from(cols)),
        Err(_) => text.to_string(),
    }
}

/// The longest part of a message the start-up history shows.
pub(crate) const HISTORY_PREVIEW_CHARS: usize = 300;

/// A message shortened for the start-up history: its first line, at most
/// [`HISTORY_PREVIEW_CHARS`] characters, and how much was left out.
pub(crate) fn preview(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let lines = text.lines().count();
    let mut s: String = first.chars().take(HISTORY_PREVIEW_CHARS).collect();
    let cut = s.len() < first.len();
    if cut || lines > 1 {
        s.push_str(" \u{2026}");
        if lines > 1 {
            s.push_str(&format!(" ({} more lines)", lines - 1));
        }
    }
    sanitize(&s)
}

/// A few words of a message, to say which one a status is about.
pub(crate) fn snippet(text: &str) -> String {
    const WORDS: usize = 32;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = one_line.chars().take(WORDS).collect();
    if s.len() < one_line.len() {
        s.push('\u{2026}');
    }
    sanitize(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_local_with_the_date_when_not_today_and_late_ones_always_dated() {
        let utc = chrono::Utc;
        let plus2 = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        // 2027-01-15 08:00:00 UTC.
        let t = 1_800_000_000_000;
        assert_eq!(stamp_in(&utc, t, t + 1000), "08:00:00");
        assert_eq!(stamp_in(&plus2, t, t + 1000), "10:00:00");
        assert_eq!(stamp_in(&utc, t, t + 86_400_000), "2027-01-15 08:00:00");
        assert_eq!(
            when_in(&utc, t, t + 90_000, true),
            "2027-01-15 08:00:00, delivered late"
        );
        assert_eq!(when_in(&utc, t, t + 1000, false), "08:00:00");
    }

    #[test]
    fn escapes_cannot_reach_the_terminal_and_joiners_can() {
        assert_eq!(sanitize("hi\x1b[2J\x07there"), "hi\u{fffd}[2J\u{fffd}there");
        assert_eq!(sanitize("a\u{202E}b"), "a\u{fffd}b");
        for kept in ["👨\u{200D}👩\u{200D}👧", "👩\u{200D}💻", "می\u{200C}خواهم"] {
            assert_eq!(sanitize(kept), kept);
        }
    }

    #[test]
    fn the_start_up_history_shortens_long_messages() {
        assert_eq!(preview("short"), "short");
        assert_eq!(preview("one\ntwo\nthree"), "one \u{2026} (2 more lines)");
        let long = "x".repeat(5000);
        let p = preview(&long);
        assert!(p.chars().count() < HISTORY_PREVIEW_CHARS + 3, "{}", p.len());
    }
}
