//! Which push evaluations are still running, so a /sync never reports counts for an event whose
//! push actions are not written yet.
//!
//! Why: evaluation runs in a spawned task after the event commits (the sender's reply does not
//! wait for it). A ticket is taken under the room lock *before* the commit, so there is no moment
//! when a reader can see the event but not the pending evaluation. A sync computing a room's
//! counts up to position P waits for that room's tickets at or below P (or not yet positioned).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruma::{OwnedRoomId, RoomId};
use tokio::sync::watch;

/// A sync gives up waiting after this (and serves the counts it has) rather than hang.
const MAX_WAIT: Duration = Duration::from_secs(5);

struct Pending {
    id: u64,
    room: OwnedRoomId,
    /// `None` until the event's commit assigns its stream position.
    pos: Option<i64>,
}

pub struct Tracker {
    pending: Mutex<(u64, Vec<Pending>)>,
    changed: watch::Sender<u64>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            pending: Mutex::new((0, Vec::new())),
            changed: watch::channel(0).0,
        }
    }
}

/// One running evaluation; dropping it (done, failed or panicked) releases the waiters.
pub struct Ticket {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Tracker {
    pub fn begin(self: &Arc<Self>, room: &RoomId) -> Ticket {
        let mut p = self.pending.lock().expect("push tracker lock");
        p.0 += 1;
        let id = p.0;
        p.1.push(Pending {
            id,
            room: room.to_owned(),
            pos: None,
        });
        Ticket {
            tracker: self.clone(),
            id,
        }
    }

    /// Whether an evaluation that a reader at `upto` could see is still running. Unpositioned
    /// tickets newer than `horizon` began after the reader chose `upto`, so they are later events.
    fn blocks(&self, room: &RoomId, upto: i64, horizon: u64) -> bool {
        let p = self.pending.lock().expect("push tracker lock");
        p.1.iter().any(|t| {
            t.room == room
                && match t.pos {
                    Some(pos) => pos <= upto,
                    None => t.id <= horizon,
                }
        })
    }

    /// Waits until the room's evaluations up to `upto` are written (bounded by `MAX_WAIT`).
    pub async fn wait(&self, room: &RoomId, upto: i64) {
        let mut rx = self.changed.subscribe();
        let horizon = self.pending.lock().expect("push tracker lock").0;
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        while self.blocks(room, upto, horizon) {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                tracing::warn!("push evaluation still running; serving counts without it");
                return;
            }
        }
    }
}

impl Ticket {
    pub fn set_pos(&self, pos: i64) {
        let mut p = self.tracker.pending.lock().expect("push tracker lock");
        if let Some(t) = p.1.iter_mut().find(|t| t.id == self.id) {
            t.pos = Some(pos);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut p) = self.tracker.pending.lock() {
            p.1.retain(|t| t.id != self.id);
        }
        self.tracker.changed.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use ruma::room_id;

    use super::*;

    #[tokio::test]
    async fn waits_only_for_visible_evaluations() {
        let t = Arc::new(Tracker::default());
        let room = room_id!("!r:x");
        let ticket = t.begin(room);
        ticket.set_pos(10);
        // A reader below the event's position does not wait.
        tokio::time::timeout(Duration::from_millis(100), t.wait(room, 9))
            .await
            .expect("no wait below the event");
        let waiter = {
            let t = t.clone();
            tokio::spawn(async move { t.wait(room_id!("!r:x"), 10).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a reader at the event waits");
        drop(ticket);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("released by the ticket")
            .unwrap();
    }
}
