//! The full-screen client, the default `chat` on a terminal: a
//! conversation list, the open conversation over its whole local history,
//! a multi-line input box and a status line (ratatui on crossterm).
//!
//! One loop takes terminal events (from a reader thread) and client
//! events, hands them to the [`app::App`], carries out what it asks
//! ([`app::Intent`]), and redraws ([`view`]). The terminal is restored on
//! every way out: a normal exit, an error, SIGTERM or SIGHUP, and a panic.

mod app;
mod editor;
pub(crate) mod v2;
mod view;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use blindrelay_client::Event;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use tokio::sync::mpsc;

use crate::chat::action::{Action, Outcome, Session, outcome_text};
use crate::chat::events::EventFeed;
use app::{App, ConvKey, Dialog, Intent, Mode, Notification};

/// Terminal events read ahead (the reader waits when it is full; the
/// terminal keeps the rest, so no keystroke is lost).
const KEY_QUEUE: usize = 1024;
/// Client events taken in between two redraws at most.
const EVENTS_PER_DRAW: usize = 256;
/// How often the reader thread looks whether it should stop.
const READER_POLL: Duration = Duration::from_millis(100);

/// Puts the terminal into full-screen mode and back, also on panic.
pub(super) struct TerminalGuard;

fn restore_terminal() {
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

impl TerminalGuard {
    pub(super) fn enter() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        enable_raw_mode()?;
        let guard = Self;
        execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Reads terminal events in a thread until `stop`.
pub(super) fn spawn_reader(stop: Arc<AtomicBool>) -> mpsc::Receiver<event::Event> {
    let (tx, rx) = mpsc::channel(KEY_QUEUE);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(READER_POLL) {
                Ok(true) => match event::read() {
                    Ok(e) => {
                        if tx.blocking_send(e).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });
    rx
}

/// At most one notification per this interval (a backlog at login is one
/// ring, not hundreds).
const NOTIFY_INTERVAL: Duration = Duration::from_secs(2);

/// Notifications, rate-limited.
#[derive(Default)]
pub(super) struct Notifier {
    last: Option<std::time::Instant>,
}

impl Notifier {
    pub(super) fn notify(&mut self, n: &Notification) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < NOTIFY_INTERVAL)
        {
            return;
        }
        self.last = Some(now);
        notify(n);
    }
}

/// Rings the terminal bell and sends OSC 9 (a desktop notification in
/// terminals that support it); with a desktop session, `notify-send` too.
/// Only the sender's name: a notification can be seen over a shoulder.
fn notify(n: &Notification) {
    let mut out = std::io::stdout();
    let _ = write!(
        out,
        "\x07\x1b]9;blindrelay: new message from {}\x07",
        n.from
    );
    let _ = out.flush();
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if desktop {
        let child = std::process::Command::new("notify-send")
            .args(["blindrelay", &format!("new message from {}", n.from)])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        // Reaped in the background, so no zombie is left behind.
        if let Ok(mut c) = child {
            std::thread::spawn(move || {
                let _ = c.wait();
            });
        }
    }
}

/// Carries out what the app asked; false to leave.
async fn carry_out(s: &mut Session, app: &mut App, events: &mut EventFeed, intent: Intent) -> bool {
    match intent {
        Intent::None => {}
        Intent::Quit => return false,
        Intent::Verify(name) => match events.during(s.client.safety_number(name.clone())).await {
            Ok(number) => {
                let changed = app.people.get(&name).is_some_and(|p| p.key_changed);
                app.mode = Mode::Dialog(Dialog {
                    title: format!("safety number with {name}"),
                    text: format!(
                        "{number}\n\nCompare it with {name} over another channel (in person, a call). Equal numbers mean no one is in between.{}",
                        if changed {
                            format!(
                                "\n\n{name}'s certificate CHANGED. Accept it only if the numbers are equal."
                            )
                        } else {
                            String::new()
                        }
                    ),
                    accept: changed.then_some(name),
                    typed: String::new(),
                });
            }
            Err(e) => app.say(format!("error: {e}")),
        },
        // Only a v2 client asks for these (`v2::run`).
        Intent::PerformV2(_) => {}
        Intent::Perform(a) => {
            let accepted = match &a {
                Action::Accept { name } => blindrelay_wire::UserName::new(name).ok(),
                _ => None,
            };
            let out = events.during(s.perform(a, None)).await;
            match &out {
                Outcome::Quit => return false,
                Outcome::Json(v) if v["event"] == "key_accepted" => {
                    if let Some(n) = accepted {
                        app.key_accepted(&n);
                    }
                }
                _ => {}
            }
            if let Some(t) = outcome_text(&out) {
                app.say(t);
            }
        }
    }
    true
}

pub(crate) async fn run(
    mut s: Session,
    events: mpsc::Receiver<Event>,
    notifications: bool,
) -> Result<()> {
    let mut events = EventFeed::new(events);
    let mut app = App::new(s.client.name().clone(), s.server.clone(), notifications);
    if let Ok(h) = events.during(s.client.history(app::MAX_ENTRIES)).await {
        app.load_history(h);
    }
    if let Ok(p) = events.during(s.client.peers()).await {
        app.set_people(p);
    }
    // Open where the last message was.
    let newest = app
        .convs
        .iter()
        .filter_map(|(k, c)| c.entries.last().map(|e| (e.ts_ms, k.clone())))
        .max()
        .map_or(ConvKey::Room, |(_, k)| k);
    app.open_conv(newest);

    let guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut keys = spawn_reader(stop.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut goodbye: Option<String> = None;
    let mut notifier = Notifier::default();
    'main: loop {
        terminal.draw(|f| view::draw(f, &mut app))?;
        tokio::select! {
            e = events.next() => {
                let mut next = e;
                for _ in 0..EVENTS_PER_DRAW {
                    match next {
                        None => break 'main,
                        Some(e @ Event::Closed { .. }) => {
                            goodbye = crate::ui::Narrator::default().line(&e);
                            break 'main;
                        }
                        Some(e) => {
                            // Who is trusted can change with a login, a
                            // refused certificate or a new CRL (said as a
                            // warning): ask the client again.
                            let trust_may_change =
                                matches!(e, Event::Connected { .. } | Event::Warning(_));
                            if let Some(n) = app.on_event(e) {
                                notifier.notify(&n);
                            }
                            if trust_may_change
                                && let Ok(p) = events.during(s.client.peers()).await
                            {
                                app.set_people(p);
                            }
                        }
                    }
                    match events.try_next() {
                        Some(e) => next = Some(e),
                        None => break,
                    }
                }
            }
            k = keys.recv() => match k {
                Some(event::Event::Key(k)) => {
                    let intent = app.on_key(k);
                    if !carry_out(&mut s, &mut app, &mut events, intent).await {
                        break;
                    }
                }
                Some(event::Event::Paste(text)) => app.on_paste(&text),
                Some(_) => {}
                None => break,
            },
            _ = term.recv() => break,
            _ = hup.recv() => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(terminal);
    drop(guard);
    if let Some(g) = goodbye {
        println!("{g}");
    } else {
        events.during(s.client.quit()).await;
    }
    Ok(())
}
