//! The full-screen client on a device (protocol v2): the same screen,
//! keys and terminal handling as version 1. Its conversations are the
//! device's MLS groups. The session runs in its task
//! (`crate::chat::v2::task`): this loop only draws, reads keys and takes
//! in what the task says, so the screen never waits for the relay (a
//! commit that takes seconds leaves typing and scrolling as they are; its
//! answer shows when it comes). A lost connection shows in the status
//! line and is retried by the task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event;

use super::app::{self, App, ConvKey, Dialog, Intent, Mode};
use super::{Notifier, TerminalGuard, spawn_reader, view};
use crate::chat::action::Outcome;
use crate::chat::v2::action::{V2Action, V2Session};
use crate::chat::v2::task::{self, FromTask, ToTask};
use tokio::sync::mpsc;

fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k).and_then(serde_json::Value::as_str).unwrap_or("")
}

/// Hands what the app asked to the task (never waiting for the relay);
/// false to leave. The text of a message, by tag, for when its answer
/// comes.
async fn carry_out(
    to_task: &mpsc::Sender<ToTask>,
    texts: &mut HashMap<u64, String>,
    tag: &mut u64,
    intent: Intent,
) -> bool {
    let action = match intent {
        Intent::None | Intent::Perform(_) | Intent::Verify(_) => return true,
        Intent::Quit => return false,
        Intent::PerformV2(a) => a,
    };
    *tag += 1;
    if let V2Action::SendToGroup { text, .. } | V2Action::Send { text, .. } = &action {
        texts.insert(*tag, text.clone());
    }
    to_task
        .send(ToTask::Perform { action, tag: *tag })
        .await
        .is_ok()
}

/// Shows a command's answer.
fn answer(
    app: &mut App,
    outcome: Outcome,
    text: Option<String>,
    queued: Option<(Vec<u8>, blindrelay_wire::MessageId)>,
    current: Option<Vec<u8>>,
) {
    if let Some(c) = current
        && let Some(k) = app.mls_key(&c)
        && app.open != k
    {
        app.open_conv(k);
    }
    match outcome {
        Outcome::Quit | Outcome::Nothing => {}
        Outcome::Info(t) => app.say(t),
        Outcome::Error(e) => app.say(format!("error: {}", crate::ui::sanitize(&e))),
        Outcome::Json(v) if field(&v, "event") == "sending" => {
            // The group and id of what was just written to the outbox.
            if let (Some((group, id)), Some(text)) = (queued, text) {
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
}

/// Takes in what the task said; false once it has ended.
fn on_task(
    app: &mut App,
    notifier: &mut Notifier,
    texts: &mut HashMap<u64, String>,
    f: Option<FromTask>,
) -> bool {
    match f {
        None | Some(FromTask::Closed { .. }) => return false,
        Some(FromTask::Event(e, _)) => {
            if let Some(n) = app.on_v2(e) {
                notifier.notify(&n);
            }
        }
        Some(FromTask::Answer {
            tag,
            outcome,
            queued,
            current,
            ..
        }) => answer(app, outcome, texts.remove(&tag), queued, current),
        Some(FromTask::Groups(g)) => app.set_groups(&g),
        Some(FromTask::Outbox(_)) => {}
        Some(FromTask::Lost(why)) => app.link = app::Link::Lost(why),
        Some(FromTask::Back) => app.link = app::Link::Connected,
    }
    true
}

pub(crate) async fn run(mut s: V2Session, notifications: bool) -> Result<()> {
    let me = s.member.me().clone();
    let mut app = App::new(me.user.clone(), s.server.clone(), notifications);
    app.v2 = true;
    app.convs.clear();
    app.link = app::Link::Connected;
    if let Ok(g) = s.member.groups() {
        app.set_groups(&g);
    }
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
    // Everything that waits for the relay happens in the task.
    let (to_task, mut from_task) = task::spawn(s);
    let mut texts: HashMap<u64, String> = HashMap::new();
    let mut tag = 0u64;
    'main: loop {
        terminal.draw(|f| view::draw(f, &mut app))?;
        tokio::select! {
            k = keys.recv() => match k {
                Some(event::Event::Key(k)) => {
                    let intent = app.on_key(k);
                    if !carry_out(&to_task, &mut texts, &mut tag, intent).await {
                        break 'main;
                    }
                }
                Some(event::Event::Paste(text)) => app.on_paste(&text),
                Some(_) => {}
                None => break 'main,
            },
            f = from_task.recv() => {
                if !on_task(&mut app, &mut notifier, &mut texts, f) {
                    break 'main;
                }
                // Whatever else is there, before drawing again.
                while let Ok(f) = from_task.try_recv() {
                    if !on_task(&mut app, &mut notifier, &mut texts, Some(f)) {
                        break 'main;
                    }
                }
            }
            _ = term.recv() => break 'main,
            _ = hup.recv() => break 'main,
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(terminal);
    drop(guard);
    // The task sends what the outbox holds (bounded), then says goodbye.
    let quit = ToTask::Quit {
        within: task::QUIT_DRAIN,
    };
    if to_task.send(quit).await.is_ok() {
        while let Some(f) = from_task.recv().await {
            if let FromTask::Closed { left } = f {
                if left > 0 {
                    eprintln!(
                        "{left} message(s) still in the outbox: sent at this device's next chat or send"
                    );
                }
                break;
            }
        }
    }
    Ok(())
}
