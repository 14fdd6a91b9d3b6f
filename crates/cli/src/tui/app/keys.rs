//! What keys and pastes do to the [`App`]: editing, sending, commands,
//! moving between conversations, scrolling and searching.

use blindrelay_wire::UserName;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{ACCEPT_WORD, App, ConvKey, Dialog, Intent, KEYS, MAX_HITS, Mode, Search};
use crate::chat::action::{Action, parse_line};

impl App {
    fn cycle(&mut self, forward: bool) {
        let order = self.order();
        let Some(i) = order.iter().position(|k| *k == self.open) else {
            return;
        };
        let n = order.len();
        let next = if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        };
        if let Some(k) = order.get(next).cloned() {
            self.open_conv(k);
        }
    }

    /// What Enter in the input box means in the open conversation.
    fn submit(&mut self) -> Intent {
        let text = self.editor.take();
        if self.v2 {
            return self.submit_v2(text);
        }
        // A message's own lines stay; a command is one line.
        let is_command = text.starts_with('/') && !text.starts_with("//");
        if !is_command {
            // `//text` is the text `/text`.
            let text = match text.strip_prefix("//") {
                Some(rest) => format!("/{rest}"),
                None => text,
            };
            if text.trim().is_empty() {
                return Intent::None;
            }
            return Intent::Perform(match &self.open {
                ConvKey::Room => Action::All { text },
                ConvKey::Person(n) => Action::Send {
                    to: Some(vec![n.to_string()]),
                    text,
                },
                ConvKey::Group(ns) => Action::Send {
                    to: Some(ns.iter().map(|n| n.to_string()).collect()),
                    text,
                },
                // Only in a v2 client, which does not come here.
                ConvKey::Mls(..) => return Intent::None,
            });
        }
        match parse_line(&text) {
            Ok(None) => Intent::None,
            Ok(Some(Action::To { name })) => match UserName::new(&name) {
                Ok(n) => {
                    let known = self.people.contains_key(&n);
                    self.open_conv(ConvKey::Person(n.clone()));
                    if !known {
                        self.say(format!(
                            "{n} has not logged in to this relay yet (check the spelling): messages to {n} wait here until {n}'s certificate arrives"
                        ));
                    }
                    Intent::None
                }
                Err(_) => {
                    self.say(format!("error: {name:?} is not a valid user name"));
                    Intent::None
                }
            },
            Ok(Some(Action::Verify { name })) => match UserName::new(&name) {
                Ok(n) => Intent::Verify(n),
                Err(_) => {
                    self.say(format!("error: {name:?} is not a valid user name"));
                    Intent::None
                }
            },
            Ok(Some(Action::Help)) => {
                self.help();
                Intent::None
            }
            Ok(Some(Action::Quit)) => Intent::Quit,
            Ok(Some(Action::Send { to: None, text })) => {
                // Not reached: plain text is handled above.
                self.editor.insert(&text);
                Intent::None
            }
            Ok(Some(a)) => Intent::Perform(a),
            Err(e) => {
                self.say(format!("error: {e}"));
                Intent::None
            }
        }
    }

    /// Shows the help window.
    pub(crate) fn help(&mut self) {
        self.mode = Mode::Dialog(Dialog {
            title: "help".into(),
            text: format!(
                "{KEYS}\n\n{}",
                if self.v2 {
                    crate::chat::v2::action::HELP
                } else {
                    crate::chat::action::HELP
                }
            ),
            accept: None,
            typed: String::new(),
        });
    }

    /// Takes in a paste (bracketed paste: one event with all its lines).
    pub(crate) fn on_paste(&mut self, text: &str) {
        let target = match &mut self.mode {
            Mode::Search(s) => &mut s.query,
            _ => &mut self.editor,
        };
        if !target.insert(text) {
            self.say(format!(
                "the paste was cut at {} KiB, the most one message holds",
                crate::tui::editor::MAX_INPUT / 1024
            ));
        }
        self.refresh_search();
    }

    /// Takes in one key.
    pub(crate) fn on_key(&mut self, k: KeyEvent) -> Intent {
        if k.kind == KeyEventKind::Release {
            return Intent::None;
        }
        self.touched = true;
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        if ctrl && k.code == KeyCode::Char('c') {
            return Intent::Quit;
        }
        match &mut self.mode {
            // Accepting a changed key takes a word, not a key: a user
            // typing ahead must not accept it by accident.
            Mode::Dialog(d) if d.accept.is_some() => {
                match k.code {
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        d.typed.pop();
                    }
                    KeyCode::Char(c) if !ctrl && !alt && d.typed.len() < ACCEPT_WORD.len() => {
                        d.typed.push(c);
                    }
                    KeyCode::Enter if d.typed == ACCEPT_WORD => {
                        let name = d.accept.take();
                        self.mode = Mode::Normal;
                        if let Some(n) = name {
                            return Intent::Perform(Action::Accept {
                                name: n.to_string(),
                            });
                        }
                    }
                    KeyCode::Enter => d.typed.clear(),
                    _ => {}
                }
                return Intent::None;
            }
            Mode::Dialog(_) => {
                if matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                    self.mode = Mode::Normal;
                }
                return Intent::None;
            }
            Mode::Search(s) => {
                match k.code {
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Up => s.selected = s.selected.saturating_sub(1),
                    KeyCode::Down => {
                        s.selected = (s.selected + 1).min(s.hits.len().saturating_sub(1))
                    }
                    KeyCode::Enter => {
                        if let Some((key, i)) = s.hits.get(s.selected).cloned() {
                            self.mode = Mode::Normal;
                            self.open_conv(key.clone());
                            if let Some(c) = self.convs.get_mut(&key) {
                                c.focus = Some(i);
                            }
                        }
                    }
                    KeyCode::Backspace => {
                        s.query.backspace();
                        self.refresh_search();
                    }
                    KeyCode::Char(c) if !ctrl && !alt => {
                        s.query.insert(&c.to_string());
                        self.refresh_search();
                    }
                    _ => {}
                }
                return Intent::None;
            }
            Mode::Normal => {}
        }
        match k.code {
            KeyCode::Enter if alt => {
                self.editor.insert("\n");
            }
            KeyCode::Enter => return self.submit(),
            KeyCode::Char('d') if ctrl && self.editor.is_empty() => return Intent::Quit,
            KeyCode::Char('f') if ctrl => {
                self.mode = Mode::Search(Search::default());
            }
            KeyCode::Char('n') if ctrl => self.cycle(true),
            KeyCode::Char('p') if ctrl => self.cycle(false),
            KeyCode::Char('u') if ctrl => self.editor.kill_to_start(),
            KeyCode::Char('a') if ctrl => self.editor.home(),
            KeyCode::Char('e') if ctrl => self.editor.end(),
            KeyCode::Char(c) if !ctrl => {
                self.editor.insert(&c.to_string());
            }
            KeyCode::Tab => self.cycle(true),
            KeyCode::BackTab => self.cycle(false),
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            KeyCode::Up => {
                self.editor.up();
            }
            KeyCode::Down => {
                self.editor.down();
            }
            KeyCode::PageUp => self.scroll(true),
            KeyCode::PageDown => self.scroll(false),
            KeyCode::F(1) => self.help(),
            KeyCode::F(2) => {
                self.notify = !self.notify;
            }
            KeyCode::Esc => {}
            _ => {}
        }
        Intent::None
    }

    /// Lines one PageUp moves.
    pub(crate) const PAGE: usize = 10;

    fn scroll(&mut self, up: bool) {
        let key = self.open.clone();
        let c = self.conv(key);
        c.focus = None;
        c.scroll = if up {
            c.scroll.saturating_add(Self::PAGE)
        } else {
            c.scroll.saturating_sub(Self::PAGE)
        };
    }

    fn refresh_search(&mut self) {
        let Mode::Search(s) = &mut self.mode else {
            return;
        };
        let q = s.query.text().to_lowercase();
        s.selected = 0;
        s.hits.clear();
        if q.is_empty() {
            return;
        }
        let mut hits: Vec<(u64, ConvKey, usize)> = Vec::new();
        for (key, c) in &self.convs {
            for (i, e) in c.entries.iter().enumerate() {
                if !e.is_system() && e.text.to_lowercase().contains(&q) {
                    hits.push((e.ts_ms, key.clone(), i));
                }
            }
        }
        hits.sort_by_key(|h| std::cmp::Reverse(h.0));
        s.hits = hits
            .into_iter()
            .take(MAX_HITS)
            .map(|(_, k, i)| (k, i))
            .collect();
    }
}
