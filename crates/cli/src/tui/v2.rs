//! The full-screen client on a device (protocol v2): the same screen,
//! keys and terminal handling as version 1, over a [`V2Session`]. Its
//! conversations are the device's MLS groups; the relay's deliveries are
//! processed as soon as they arrive (and at least every
//! [`crate::chat::v2::show::TICK`], for the periodic work); a lost connection
//! shows in the status line and is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event;

use super::app::{self, App, ConvKey, Dialog, Intent, Mode};
use super::{Notifier, TerminalGuard, spawn_reader, view};
use crate::chat::action::Outcome;
use crate::chat::v2::action::{V2Action, V2Session};

fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k).and_then(serde_json::Value::as_str).unwrap_or("")
}

fn refresh(s: &mut V2Session, app: &mut App) {
    if let Ok(g) = s.member.groups() {
        app.set_groups(&g);
    }
}

/// Carries out what the app asked; false to leave.
async fn carry_out(s: &mut V2Session, app: &mut App, intent: Intent) -> bool {
    let a = match intent {
        Intent::None | Intent::Perform(_) | Intent::Verify(_) => return true,
        Intent::Quit => return false,
        Intent::PerformV2(a) => a,
    };
    let sent = match &a {
        V2Action::SendToGroup { text, .. } | V2Action::Send { text, .. } => Some(text.clone()),
        _ => None,
    };
    let out = s.perform(a).await;
    refresh(s, app);
    if let Some(c) = s.current.clone()
        && let Some(k) = app.mls_key(&c)
        && app.open != k
    {
        app.open_conv(k);
    }
    match out {
        Outcome::Quit => return false,
        Outcome::Nothing => {}
        Outcome::Info(t) => app.say(t),
        Outcome::Error(e) => app.say(format!("error: {}", crate::ui::sanitize(&e))),
        Outcome::Json(v) if field(&v, "event") == "sending" => {
            // The group and id of what was just written to the outbox.
            if let (Some((group, id)), Some(text)) = (s.queued.take(), sent) {
                if let Some(k) = app.mls_key(&group) {
                    app.open_conv(k);
                }
                app.queued_v2(&group, id, text);
            }
        }
        Outcome::Json(v) if field(&v, "event") == "safety_numbers" => {
            app.mode = Mode::Dialog(Dialog {
                title: format!("safety numbers with {}", field(&v, "name")),
                text: crate::chat::v2::show::text(&v).unwrap_or_default(),
                accept: None,
                typed: String::new(),
            });
        }
        Outcome::Json(v) => {
            if let Some(t) = crate::chat::v2::show::text(&v) {
                app.say(t);
            }
        }
    }
    true
}

pub(crate) async fn run(mut s: V2Session, notifications: bool) -> Result<()> {
    let me = s.member.me().clone();
    let mut app = App::new(me.user.clone(), s.server.clone(), notifications);
    app.v2 = true;
    app.convs.clear();
    app.link = app::Link::Connected;
    refresh(&mut s, &mut app);
    // What this device said and read before, in its groups.
    match s.member.history(app::MAX_ENTRIES) {
        Ok(h) => app.load_history_v2(h),
        Err(e) => app.say(format!("the local history could not be read: {e}")),
    }
    if let Some(k) = app.convs.keys().next().cloned() {
        app.open_conv(k);
    } else {
        app.open = ConvKey::Mls(app::NO_CONVERSATION.into(), Vec::new());
        app.say(format!(
            "you are {me} (protocol v2: MLS groups). /msg NAME TEXT starts a conversation, /group create GROUP NAME.. a group; F1 for help"
        ));
    }
    let guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut keys = spawn_reader(stop.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut notifier = Notifier::default();
    'main: loop {
        let events = std::mem::take(&mut s.events);
        if !events.is_empty() {
            refresh(&mut s, &mut app);
            for e in events {
                s.tell_local(&e);
                if let Some(n) = app.on_v2(e) {
                    notifier.notify(&n);
                }
            }
        }
        terminal.draw(|f| view::draw(f, &mut app))?;
        // When the outbox's next message may go (one message per turn,
        // never waiting for the relay's budget, so that keys keep being
        // read).
        let tick = s
            .member
            .outbox_due()
            .map_or(crate::chat::v2::show::TICK, |d| {
                d.min(crate::chat::v2::show::TICK)
            });
        tokio::select! {
            k = keys.recv() => match k {
                Some(event::Event::Key(k)) => {
                    let intent = app.on_key(k);
                    if !carry_out(&mut s, &mut app, intent).await {
                        break 'main;
                    }
                }
                Some(event::Event::Paste(text)) => app.on_paste(&text),
                Some(_) => {}
                None => break 'main,
            },
            r = crate::local::next(&mut s.requests) => s.take_local(r).await,
            _ = s.member.readable() => {}
            _ = tokio::time::sleep(tick) => {}
            _ = term.recv() => break 'main,
            _ = hup.recv() => break 'main,
        }
        let synced = match s.member.sync(Duration::ZERO).await {
            Ok(ev) => {
                s.events.extend(ev);
                s.member.flush_some(1).await
            }
            Err(e) => Err(e),
        };
        match synced {
            Ok(ev) => s.events.extend(ev),
            Err(e) => {
                app.link = app::Link::Lost(e.to_string());
                terminal.draw(|f| view::draw(f, &mut app))?;
                tokio::time::sleep(crate::chat::v2::show::RETRY).await;
                let cfg = s.config.clone();
                if s.member.reconnect(&cfg).await.is_ok() {
                    app.link = app::Link::Connected;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(terminal);
    drop(guard);
    Ok(())
}
