//! The client's events as a front end reads them, kept flowing while the
//! front end waits for an answer.
//!
//! The connection task answers a command only between two events it hands
//! over, and it waits when the front end's event queue is full. A front end
//! that awaited an answer without reading events could therefore wait for
//! ever behind a long backlog. [`EventFeed::during`] reads the events that
//! arrive meanwhile into a backlog, which [`EventFeed::next`] returns first.

use std::collections::VecDeque;

use blindrelay_client::Event;
use tokio::sync::mpsc;

/// Events from the client, with what arrived while waiting for an answer.
pub(crate) struct EventFeed {
    rx: mpsc::Receiver<Event>,
    /// Events read while waiting; bounded by what the client produces while
    /// it answers one command (it answers as soon as it can hand events on).
    backlog: VecDeque<Event>,
    open: bool,
}

impl EventFeed {
    pub(crate) fn new(rx: mpsc::Receiver<Event>) -> Self {
        Self {
            rx,
            backlog: VecDeque::new(),
            open: true,
        }
    }

    /// The next event (the backlog first); `None` once the client is gone.
    /// Cancel-safe: usable as a `select!` branch.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        if !self.open {
            return None;
        }
        let e = self.rx.recv().await;
        self.open = e.is_some();
        e
    }

    /// The next event if one is ready now.
    pub(crate) fn try_next(&mut self) -> Option<Event> {
        self.backlog.pop_front().or_else(|| self.rx.try_recv().ok())
    }

    /// Awaits `answer` while reading the events that arrive meanwhile.
    pub(crate) async fn during<T>(&mut self, answer: impl Future<Output = T>) -> T {
        tokio::pin!(answer);
        loop {
            tokio::select! {
                biased;
                out = &mut answer => return out,
                e = self.rx.recv(), if self.open => match e {
                    Some(e) => self.backlog.push_back(e),
                    None => self.open = false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_keep_flowing_while_an_answer_is_awaited() {
        let (tx, rx) = mpsc::channel(2);
        let mut feed = EventFeed::new(rx);
        // The "client" hands over five events (more than its queue holds)
        // before it answers.
        let client = tokio::spawn(async move {
            for i in 0..5 {
                tx.send(Event::Warning(format!("e{i}"))).await.unwrap();
            }
            "answer"
        });
        let answer = feed.during(async { client.await.unwrap() }).await;
        assert_eq!(answer, "answer");
        let mut got = Vec::new();
        while let Some(Event::Warning(w)) = feed.next().await {
            got.push(w);
        }
        assert_eq!(got, ["e0", "e1", "e2", "e3", "e4"]);
    }
}
