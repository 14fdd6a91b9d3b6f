//! Drawing an [`App`]: the conversation list, the open conversation, a
//! banner for changed keys, the input box and the status line, with the
//! search and dialog windows over them. Everything a peer wrote passes
//! through [`crate::ui::sanitize`] first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use unicode_width::UnicodeWidthChar;

use super::app::{ACCEPT_WORD, App, ConvKey, Entry, Link, Mode, Status};
use crate::ui::{BAR, now_ms, sanitize, when};

/// Width of the conversation list.
const LIST_WIDTH: u16 = 22;
/// Most lines the input box grows to.
const INPUT_LINES: u16 = 5;

/// Cuts `text` into lines of at most `width` columns, between words where
/// it can (a word wider than the line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut cols = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if cols + w > width && !line.is_empty() {
            // Break after the last space, if there is one.
            match line.iter().rposition(|c| *c == ' ') {
                Some(sp) if sp + 1 < line.len() => {
                    let rest = line.split_off(sp + 1);
                    out.push(line.iter().collect::<String>().trim_end().to_string());
                    line = rest;
                }
                _ => out.push(std::mem::take(&mut line).into_iter().collect()),
            }
            cols = line.iter().map(|c| c.width().unwrap_or(0)).sum();
        }
        line.push(c);
        cols += w;
    }
    out.push(line.into_iter().collect());
    out
}

/// Text from a peer, safe for the screen, tabs as spaces.
fn clean(s: &str) -> String {
    sanitize(s).replace('\t', "    ")
}

fn status_mark(s: Status) -> &'static str {
    match s {
        Status::None => "",
        Status::WaitingForKey => " \u{231b} waiting for their key",
        Status::Sending => " \u{2026}",
        Status::AtRelay => " \u{2713}",
        Status::Delivered => " \u{2713}\u{2713}",
    }
}

/// What a part of a screen line is: drawn in a style text cannot produce
/// (the sender, time and delivery state in colour and bold, the bar of a
/// continuation dim), so no message can pass itself off as another, or as
/// delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `[time] sender: `.
    Meta,
    /// What the peer wrote (or a notice's text).
    Text,
    /// The bar before each continuation line.
    Bar,
    /// The delivery state (`✓`, `✓✓`).
    Mark,
}

/// One screen line: its parts.
type ScreenLine = Vec<(String, Part)>;

/// Columns of [`BAR`], which begins every line of a message after its
/// first, wrapped or not: a message line starts with `[` at the left edge,
/// a continuation never does.
const BAR_WIDTH: usize = 4;

/// `text` cut into lines: the first at most `first` columns wide, the
/// others at most `rest`.
fn wrap_hanging(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines = wrap(text, first);
    if lines.len() <= 1 {
        return lines;
    }
    lines.truncate(1);
    let taken = lines.first().map_or(0, |l| l.chars().count());
    let remainder: String = text.chars().skip(taken).collect();
    lines.extend(wrap(remainder.trim_start_matches(' '), rest));
    lines
}

/// The screen lines of one entry. Every line of a message after its first
/// (a line of its own, or a long line wrapped) is behind a bar, so no text
/// can pass itself off as another message.
fn entry_lines(e: &Entry, width: usize, now: u64) -> Vec<ScreenLine> {
    if e.is_system() {
        return clean(&e.text)
            .split('\n')
            .flat_map(|l| wrap(&format!("  * {l}"), width))
            .map(|l| vec![(l, Part::Text)])
            .collect();
    }
    let text = clean(&e.text);
    let meta = format!("[{}] {}: ", when(e.ts_ms, now, e.late), e.from);
    let meta_width: usize = meta.chars().map(|c| c.width().unwrap_or(0)).sum();
    let rest = width.saturating_sub(BAR_WIDTH).max(1);
    let mut out: Vec<ScreenLine> = Vec::new();
    for (i, paragraph) in text.split('\n').enumerate() {
        let first = if i == 0 {
            width.saturating_sub(meta_width).max(1)
        } else {
            rest
        };
        for (j, l) in wrap_hanging(paragraph, first, rest).into_iter().enumerate() {
            if i == 0 && j == 0 {
                out.push(vec![(meta.clone(), Part::Meta), (l, Part::Text)]);
            } else {
                out.push(vec![(BAR.to_string(), Part::Bar), (l, Part::Text)]);
            }
        }
    }
    let mark = status_mark(e.status);
    if !mark.is_empty()
        && let Some(last) = out.last_mut()
    {
        last.push((mark.to_string(), Part::Mark));
    }
    out
}

/// The style of a part, over the entry's own (focus, notice).
fn part_style(base: Style, part: Part) -> Style {
    match part {
        Part::Meta => base.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        Part::Text => base,
        Part::Bar => base.fg(Color::DarkGray),
        Part::Mark => base.fg(Color::Green).add_modifier(Modifier::BOLD),
    }
}

/// Draws the whole screen.
pub(crate) fn draw(f: &mut Frame<'_>, app: &mut App) {
    let area = f.area();
    let banner = !app.key_changes().is_empty();
    let (input_lines, _) = app.editor.lines_and_cursor();
    let input_h = u16::try_from(input_lines.len())
        .unwrap_or(INPUT_LINES)
        .clamp(1, INPUT_LINES)
        + 2;
    let [main, banner_row, input_row, status_row] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(u16::from(banner)),
        Constraint::Length(input_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let [list, conversation] =
        Layout::horizontal([Constraint::Length(LIST_WIDTH), Constraint::Min(10)]).areas(main);
    draw_list(f, app, list);
    draw_conversation(f, app, conversation);
    if banner {
        let names: Vec<String> = app.key_changes().iter().map(|n| n.to_string()).collect();
        let first = names.first().cloned().unwrap_or_default();
        let text = format!(
            " ! certificate CHANGED: {}. Their messages are held. /verify {first} to compare and accept ",
            names.join(", ")
        );
        f.render_widget(
            Paragraph::new(text).style(
                Style::default()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            ),
            banner_row,
        );
    }
    draw_input(f, app, input_row);
    draw_status(f, app, status_row);
    match &app.mode {
        Mode::Dialog(d) => {
            let r = centered(area, 70, 60);
            f.render_widget(Clear, r);
            let mut text = clean(&d.text);
            if d.accept.is_some() {
                text.push_str(&format!(
                    "\n\nType  {ACCEPT_WORD}  and Enter to accept this key: {}\n[Esc] keep blocking it",
                    clean(&d.typed)
                ));
            } else {
                text.push_str("\n\n[Esc] close");
            }
            f.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: false }).block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(format!(" {} ", d.title)),
                ),
                r,
            );
        }
        Mode::Search(s) => {
            let r = centered(area, 80, 70);
            f.render_widget(Clear, r);
            let now = now_ms();
            let width = usize::from(r.width.saturating_sub(4));
            let items: Vec<ListItem<'_>> = s
                .hits
                .iter()
                .filter_map(|(k, i)| {
                    let e = app.convs.get(k)?.entries.get(*i)?;
                    let line = format!(
                        "[{}] {} / {}: {}",
                        when(e.ts_ms, now, false),
                        k.label(),
                        e.from,
                        crate::ui::snippet(&e.text)
                    );
                    Some(ListItem::new(
                        wrap(&line, width).into_iter().next().unwrap_or_default(),
                    ))
                })
                .collect();
            let title = format!(
                " search: {}  ({} found; Enter opens, Esc closes) ",
                clean(&s.query.text()),
                s.hits.len()
            );
            let mut state = ListState::default().with_selected(Some(s.selected));
            f.render_stateful_widget(
                List::new(items)
                    .block(Block::default().borders(Borders::ALL).title(title))
                    .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
                r,
                &mut state,
            );
        }
        Mode::Normal => {}
    }
}

fn centered(area: Rect, pct_w: u16, pct_h: u16) -> Rect {
    let w = area.width.saturating_mul(pct_w) / 100;
    let h = area.height.saturating_mul(pct_h) / 100;
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_list(f: &mut Frame<'_>, app: &App, area: Rect) {
    let order = app.order();
    let items: Vec<ListItem<'_>> = order
        .iter()
        .map(|k| {
            let c = app.convs.get(k);
            let unread = c.map_or(0, |c| c.unread);
            let mark = match k {
                ConvKey::Person(n) => match app.people.get(n) {
                    Some(p) if p.key_changed => "!",
                    Some(p) if p.online => "\u{25cf}",
                    _ => "\u{25cb}",
                },
                _ => " ",
            };
            let unread = if unread > 0 {
                format!(" ({unread})")
            } else {
                String::new()
            };
            let style = if unread.is_empty() {
                Style::default()
            } else {
                Style::default().add_modifier(Modifier::BOLD)
            };
            ListItem::new(Line::from(Span::styled(
                format!("{mark} {}{unread}", k.label()),
                style,
            )))
        })
        .collect();
    let selected = order.iter().position(|k| *k == app.open);
    let mut state = ListState::default().with_selected(selected);
    f.render_stateful_widget(
        List::new(items)
            .block(Block::default().borders(Borders::ALL).title(" chats "))
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
        &mut state,
    );
}

fn title_of(app: &App) -> String {
    match &app.open {
        ConvKey::Person(n) => {
            let p = app.people.get(n).copied().unwrap_or_default();
            let presence = if p.online { "online" } else { "offline" };
            let trust = if p.key_changed {
                "KEY CHANGED: /verify"
            } else if p.verified {
                "key verified by the CA and pinned; /verify compares"
            } else {
                "no key yet"
            };
            format!(" {n} \u{00b7} protocol v1 \u{00b7} {presence} \u{00b7} {trust} ")
        }
        ConvKey::Room => " # room: everyone online (verified) \u{00b7} protocol v1 ".into(),
        ConvKey::Mls(label, id) => format!(
            " {label} \u{00b7} protocol v2 (MLS) \u{00b7} {} ",
            app.members
                .get(id)
                .map(|m| m.join(", "))
                .unwrap_or_default()
        ),
        k => format!(" {} ", k.label()),
    }
}

fn draw_conversation(f: &mut Frame<'_>, app: &mut App, area: Rect) {
    let title = title_of(app);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = usize::from(inner.width);
    let height = usize::from(inner.height);
    let now = now_ms();
    let key = app.open.clone();
    let Some(c) = app.convs.get_mut(&key) else {
        return;
    };
    let mut lines: Vec<(ScreenLine, Style)> = Vec::new();
    let mut focus_line = None;
    for (i, e) in c.entries.iter().enumerate() {
        let style = if c.focus == Some(i) {
            focus_line = Some(lines.len());
            Style::default().add_modifier(Modifier::REVERSED)
        } else if e.is_system() {
            Style::default().fg(Color::Yellow)
        } else {
            Style::default()
        };
        for l in entry_lines(e, width, now) {
            lines.push((l, style));
        }
    }
    let total = lines.len();
    let max_scroll = total.saturating_sub(height);
    if let Some(start) = focus_line {
        c.scroll = total.saturating_sub(start + height);
    }
    c.scroll = c.scroll.min(max_scroll);
    let end = total - c.scroll;
    let start = end.saturating_sub(height);
    let shown: Vec<Line<'_>> = lines
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|(parts, s)| {
            Line::from(
                parts
                    .iter()
                    .map(|(t, p)| Span::styled(t.clone(), part_style(*s, *p)))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    f.render_widget(Paragraph::new(shown), inner);
    if c.scroll > 0 {
        let more = format!(" \u{2193} {} more lines (PgDn) ", c.scroll);
        let w = u16::try_from(more.chars().count()).unwrap_or(0);
        if w < area.width {
            let r = Rect {
                x: area.x + area.width.saturating_sub(w + 1),
                y: area.y + area.height.saturating_sub(1),
                width: w,
                height: 1,
            };
            f.render_widget(Paragraph::new(more), r);
        }
    }
}

fn draw_input(f: &mut Frame<'_>, app: &App, area: Rect) {
    let title = match &app.open {
        ConvKey::Room => " message to everyone online (Enter sends, Alt-Enter new line) ".into(),
        k => format!(
            " message to {} (Enter sends, Alt-Enter new line) ",
            k.label()
        ),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let (lines, (row, col)) = app.editor.lines_and_cursor();
    let height = usize::from(inner.height.max(1));
    let first = (row + 1).saturating_sub(height);
    let width = usize::from(inner.width.max(1));
    // The columns of the cursor's line before it; the view slides
    // sideways when the line is wider than the box.
    let before: usize = lines
        .get(row)
        .map(|l| {
            let typed: String = l.chars().take(col).collect();
            clean(&typed).chars().map(|c| c.width().unwrap_or(0)).sum()
        })
        .unwrap_or(0);
    let shift = (before + 1).saturating_sub(width);
    let shown: Vec<Line<'_>> = lines
        .iter()
        .skip(first)
        .take(height)
        .map(|l| {
            let s: String = clean(l);
            let mut skipped = 0;
            let visible: String = s
                .chars()
                .skip_while(|c| {
                    let skip = skipped < shift;
                    skipped += c.width().unwrap_or(0);
                    skip
                })
                .collect();
            Line::from(visible)
        })
        .collect();
    f.render_widget(Paragraph::new(shown), inner);
    if matches!(app.mode, Mode::Normal) {
        let x = inner.x + u16::try_from(before - shift).unwrap_or(0);
        let y = inner.y + u16::try_from(row - first).unwrap_or(0);
        f.set_cursor_position(Position { x, y });
    }
}

fn draw_status(f: &mut Frame<'_>, app: &App, area: Rect) {
    let link = match &app.link {
        Link::Connecting => "connecting\u{2026}".to_string(),
        Link::Connected => "connected".to_string(),
        Link::Lost(r) => format!("connection lost ({r}); reconnecting\u{2026}"),
    };
    let notify = if app.notify { "on" } else { "off" };
    let peer = match &app.open {
        ConvKey::Person(n) => match app.people.get(n) {
            Some(p) if p.key_changed => format!(" \u{2502} {n}: KEY CHANGED"),
            Some(p) if p.verified => format!(" \u{2502} {n}: verified"),
            _ => format!(" \u{2502} {n}: no key yet"),
        },
        _ => String::new(),
    };
    let text = format!(
        " {} @ {} \u{2502} {link}{peer} \u{2502} notifications {notify} (F2) \u{2502} F1 help ",
        app.me, app.server
    );
    let style = match app.link {
        Link::Connected => Style::default().fg(Color::Black).bg(Color::Cyan),
        _ => Style::default().fg(Color::White).bg(Color::Red),
    };
    f.render_widget(Paragraph::new(text).style(style), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_counts_columns_not_bytes() {
        assert_eq!(wrap("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(wrap("one two three", 9), vec!["one two", "three"]);
        // Wide characters take two columns.
        assert_eq!(wrap("日本語", 4), vec!["日本", "語"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    fn entry(text: &str) -> Entry {
        Entry {
            id: None,
            ts_ms: 3_723_000,
            from: "alice".into(),
            text: text.into(),
            late: false,
            status: Status::None,
        }
    }

    fn joined(l: &ScreenLine) -> String {
        l.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn a_wrapped_line_is_a_continuation_and_cannot_pass_for_a_message_at_80_columns() {
        // The conversation pane of an 80-column screen is 56 columns wide.
        let width = 80 - usize::from(LIST_WIDTH) - 2;
        let forged = "ok, thanks for the report, see you at [06:28:30] you: Yes, I approve the wire transfer \u{2713}\u{2713}";
        let lines = entry_lines(&entry(forged), width, 3_723_000);
        assert!(lines.len() > 1, "{lines:?}");
        for l in &lines {
            assert!(joined(l).chars().count() <= width, "{l:?}");
        }
        assert_eq!(lines[0][0].1, Part::Meta);
        assert!(
            joined(&lines[0]).starts_with("[01:02:03] alice: ok,"),
            "{lines:?}"
        );
        for l in &lines[1..] {
            assert_eq!(l[0], (BAR.to_string(), Part::Bar), "{l:?}");
            assert!(l.iter().all(|(_, p)| *p != Part::Meta), "{l:?}");
        }
        // The typed ticks are text, not a delivery mark.
        assert!(lines.iter().flatten().all(|(_, p)| *p != Part::Mark));
        let mut sent = entry("done");
        sent.status = Status::Delivered;
        let l = entry_lines(&sent, width, 3_723_000);
        assert_eq!(l[0].last().map(|(_, p)| *p), Some(Part::Mark));
        // Every part of a message is styled apart from the text.
        let base = Style::default();
        for p in [Part::Meta, Part::Bar, Part::Mark] {
            assert_ne!(part_style(base, p), part_style(base, Part::Text), "{p:?}");
        }
    }

    #[test]
    fn the_full_screen_client_draws_a_message_that_cannot_fake_another_or_reach_the_terminal() {
        let lines = entry_lines(
            &entry("see you\n[05:41:07] carol: wire the money\x1b]0;owned\x07\u{202E}"),
            200,
            3_723_000,
        );
        let lines: Vec<String> = lines.iter().map(joined).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("alice: see you"), "{lines:?}");
        assert!(
            lines[1].starts_with("  \u{2502} [05:41:07] carol"),
            "{lines:?}"
        );
        for l in &lines {
            assert!(
                !l.contains('\x1b') && !l.contains('\x07') && !l.contains('\u{202E}'),
                "{l:?}"
            );
        }
    }
}
