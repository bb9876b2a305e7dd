//! The effective retention of a room: its `m.room.retention` state (MSC1763) decided by the
//! policy hook `retention_for_room` (by default clamped into the server's bounds).

use handover_policy::{Retention, RetentionRequest};
use ruma::{RoomId, UserId};

use super::RetentionService;
use crate::error::{Error, Result};
use crate::service::blocking;

/// Pure, so the room service reads it too (events older than a room's lifetime on import).
pub use handover_policy::parse_room_retention;

impl RetentionService {
    /// The room's effective retention as the purge job applies it.
    pub async fn effective(&self, room_id: &str) -> Result<Retention> {
        let store = self.store.clone();
        let rid = room_id.to_owned();
        let content = blocking(move || Ok(store.room_retention_content(&rid)?)).await?;
        Ok(self.policy.retention_for_room(&RetentionRequest {
            room_id,
            server: self.settings.bounds,
            room: content.as_deref().map(parse_room_retention),
        }))
    }

    /// `GET .../org.matrix.msc1763/rooms/{roomId}/retention`: for members of the room (current
    /// or past) and server admins.
    pub async fn effective_for_user(
        &self,
        user: &UserId,
        is_admin: bool,
        room_id: &RoomId,
    ) -> Result<Retention> {
        let member = self.rooms.membership_of(room_id, user).await?.is_some();
        if !member && !is_admin {
            return Err(Error::forbidden("You are not a member of this room"));
        }
        self.effective(room_id.as_str()).await
    }
}
