//! Reading push actions back: unread/highlight counts for /sync and `GET /notifications`.

use ruma::api::client::push::get_notifications::v3::{Notification, Response};
use ruma::push::Action;
use ruma::{MilliSecondsSinceUnixEpoch, RoomId, UInt, UserId};

use super::PushService;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::rooms::format::Viewer;
use crate::service::rooms::format::to_raw;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// A room's unread counts for /sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnreadCounts {
    pub notifications: u64,
    pub highlights: u64,
}

impl PushService {
    /// Counts of notifying events after the user's read boundary, up to `upto`. Waits for
    /// evaluations of events at or below `upto` still in flight (see `tracker.rs`).
    pub async fn unread_counts(
        &self,
        room_id: &RoomId,
        user: &UserId,
        upto: i64,
    ) -> Result<UnreadCounts> {
        self.evaluator.tracker.wait(room_id, upto).await;
        let store = self.store.clone();
        let (r, u) = (room_id.to_owned(), user.to_owned());
        let (notifications, highlights) =
            blocking(move || Ok(store.unread_counts(r.as_str(), u.as_str(), upto)?)).await?;
        Ok(UnreadCounts {
            notifications,
            highlights,
        })
    }

    /// `GET /notifications`: newest first; `from` is the previous page's `next_token`.
    pub async fn notifications(
        &self,
        user: &UserId,
        from: Option<&str>,
        limit: Option<UInt>,
        only: Option<&str>,
    ) -> Result<Response> {
        let before = match from {
            Some(t) => t
                .parse::<i64>()
                .map_err(|_| Error::invalid_param("Invalid from token"))?,
            None => i64::MAX,
        };
        let limit = limit
            .map_or(DEFAULT_LIMIT, |l| u64::from(l) as usize)
            .clamp(1, MAX_LIMIT);
        let only_highlight = only.is_some_and(|o| o.contains("highlight"));
        let store = self.store.clone();
        let uid = user.to_string();
        let rows =
            blocking(move || Ok(store.notifications(&uid, before, limit, only_highlight)?)).await?;
        let next_token = (rows.len() == limit)
            .then(|| rows.last().map(|r| r.pos.to_string()))
            .flatten();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            // An event the user can no longer see (e.g. history visibility) is left out.
            let Ok(event) = self
                .rooms
                .get_event(
                    &row.room_id,
                    &row.event_id,
                    Viewer {
                        user_id: user,
                        device_id: None,
                    },
                )
                .await
            else {
                continue;
            };
            let actions: Vec<Action> =
                serde_json::from_str(&row.actions).map_err(Error::internal)?;
            let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(row.ts.max(0) as u64));
            out.push(Notification::new(
                actions,
                to_raw(&event),
                row.read,
                row.room_id,
                ts,
            ));
        }
        let mut res = Response::new(out);
        res.next_token = next_token;
        Ok(res)
    }
}
