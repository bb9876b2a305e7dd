//! /timestamp_to_event: the visible event nearest a time, forwards or backwards.

use ruma::{OwnedEventId, RoomId, UserId};

use super::RoomService;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::store::rooms::Direction;

/// Candidates read per store call while skipping events the user may not see.
const BATCH: usize = 100;

impl RoomService {
    /// The first event at or after `ts` (Forward) or at or before it (Backward) that the user
    /// may see: `(event_id, origin_server_ts)`; `M_NOT_FOUND` if there is none.
    pub async fn event_by_timestamp(
        &self,
        room_id: &RoomId,
        user: &UserId,
        ts: i64,
        dir: Direction,
    ) -> Result<(OwnedEventId, i64)> {
        let vis = self.visible_to(room_id, user).await?;
        let upto = vis.upper().unwrap_or(0).min(self.current_pos());
        // Strictly after (ts, -1) is "at or after ts"; strictly before (ts, MAX) "at or before".
        let mut cursor = match dir {
            Direction::Forward => (ts, -1),
            Direction::Backward => (ts, i64::MAX),
        };
        loop {
            let store = self.store.clone();
            let r = room_id.to_owned();
            let evs =
                blocking(move || Ok(store.events_by_ts(r.as_str(), cursor, dir, BATCH, upto)?))
                    .await?;
            let exhausted = evs.len() < BATCH;
            for ev in evs {
                let pos = ev.pos.unwrap_or(0);
                if vis.contains(pos) {
                    return Ok((ev.event_id, ev.origin_server_ts));
                }
                cursor = (ev.origin_server_ts, pos);
            }
            if exhausted {
                let way = match dir {
                    Direction::Forward => "forward",
                    Direction::Backward => "backward",
                };
                return Err(Error::not_found(format!(
                    "Unable to find event from {ts} in {way} direction"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ruma::api::error::ErrorKind;

    use super::*;
    use crate::service::test_services;
    use crate::service::test_util::{history_visibility, is_kind, join, room, text, user};
    use crate::store::now_ms;

    #[tokio::test]
    async fn nearest_visible_event_in_both_directions() {
        let (s, _d) = test_services();
        let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
        let r = room(&s, &a, "Ward 7", false).await;
        history_visibility(&s, &r, &a, "joined").await;
        let early = text(&s, &r, &a, "early").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mid = now_ms();
        tokio::time::sleep(Duration::from_millis(20)).await;
        join(&s, &r, &a, &b).await;
        let late = text(&s, &r, &a, "late").await;

        let (id, ts) = s
            .rooms
            .event_by_timestamp(&r, &a, mid, Direction::Backward)
            .await
            .unwrap();
        assert_eq!(id, early);
        assert!(ts < mid);
        // Forwards from the same instant: bob's invite is the first event after it.
        let (id, ts) = s
            .rooms
            .event_by_timestamp(&r, &a, mid, Direction::Forward)
            .await
            .unwrap();
        assert_ne!(id, early);
        assert!(ts >= mid);
        let (id, _) = s
            .rooms
            .event_by_timestamp(&r, &a, now_ms() + 60_000, Direction::Backward)
            .await
            .unwrap();
        assert_eq!(id, late);
        let err = s
            .rooms
            .event_by_timestamp(&r, &a, now_ms() + 60_000, Direction::Forward)
            .await
            .unwrap_err();
        assert!(is_kind(&err, ErrorKind::NotFound));

        // Bob cannot see what was sent under "joined" before he joined: backwards from `mid`
        // he finds at most the change to "joined" (sent while the room was still "shared").
        let (id, _) = s
            .rooms
            .event_by_timestamp(&r, &b, mid, Direction::Backward)
            .await
            .unwrap();
        assert_ne!(id, early);
    }
}
