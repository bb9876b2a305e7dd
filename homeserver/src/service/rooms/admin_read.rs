//! Reads for the admin API (authorised by the admin service, not by membership): a room's
//! messages as Synapse's `/_synapse/admin/v1/rooms/{roomId}/messages` pages them (the client
//! `/messages` with the whole history visible), and the room's local aliases.

use ruma::api::client::filter::RoomEventFilter;
use ruma::{RoomId, UserId};

use super::RoomService;
use super::format::Viewer;
use super::read::{Messages, Window, token};
use super::state::rules_for;
use super::visibility::Visible;
use crate::error::Result;
use crate::service::blocking;
use crate::store::rooms::Direction;

impl RoomService {
    /// Pages through every event of the room (no history-visibility limit: the caller is a
    /// server admin and the call is audited). Tokens are the client API's.
    #[allow(clippy::too_many_arguments)]
    pub async fn admin_messages(
        &self,
        room_id: &RoomId,
        admin: &UserId,
        from: Option<i64>,
        to: Option<i64>,
        dir: Direction,
        limit: usize,
        filter: &RoomEventFilter,
    ) -> Result<Messages> {
        let version = self.room_version(room_id).await?;
        let all = Visible(vec![(i64::MIN, i64::MAX)]);
        let start = from.unwrap_or(match dir {
            Direction::Backward => self.current_pos(),
            Direction::Forward => 0,
        });
        let window = Window {
            from: start,
            dir,
            limit: limit.clamp(1, 1000),
            to,
        };
        let (evs, next) = self.page(room_id, &all, window, filter).await?;
        let rules = rules_for(&version)?;
        let viewer = Viewer {
            user_id: admin,
            device_id: None,
        };
        Ok(Messages {
            chunk: self
                .format_timeline(&evs, &rules, viewer, &all, true)
                .await?,
            start: token(start),
            end: next.map(token),
            state: vec![],
        })
    }

    /// The room's aliases on this server (moved to the new room by a room shutdown).
    pub async fn local_aliases(&self, room_id: &RoomId) -> Result<Vec<String>> {
        let store = self.store.clone();
        let r = room_id.to_string();
        blocking(move || Ok(store.aliases_for_room(&r)?)).await
    }

    /// Moves an alias to another room, as the admin's shutdown does (no membership check).
    pub async fn move_alias(&self, alias: &str, to: &RoomId, by: &UserId) -> Result<()> {
        let store = self.store.clone();
        let (a, r, u) = (alias.to_owned(), to.to_string(), by.to_string());
        blocking(move || {
            store.delete_alias(&a)?;
            Ok(store.set_alias(&a, &r, &u)?)
        })
        .await
    }
}

impl RoomService {
    /// The `origin_server_ts` of one of the room's events (a purge point), or 404.
    pub async fn event_ts(&self, room_id: &RoomId, event_id: &ruma::EventId) -> Result<i64> {
        let store = self.store.clone();
        let id = event_id.to_string();
        let ev = blocking(move || Ok(store.get_event(&id)?)).await?;
        ev.filter(|e| e.room_id == room_id)
            .map(|e| e.origin_server_ts)
            .ok_or_else(|| {
                crate::error::Error::not_found(format!("Event {event_id} not found in {room_id}"))
            })
    }
}
