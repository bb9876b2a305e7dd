//! Blocking rooms (Synapse's block room API): a blocked room cannot be joined, invited to or
//! knocked on through this server (checked in `service/rooms/blocked.rs`). The list is stored
//! first, then the in-memory copy changes; both directions are audited.

use ruma::{OwnedUserId, RoomId, UserId};

use super::{AdminService, action};
use crate::error::Result;
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::room_jobs::BlockedRoom;

impl AdminService {
    /// `PUT /_synapse/admin/v1/rooms/{roomId}/block`. Any room id, known here or not.
    pub async fn set_room_blocked(
        &self,
        who: &Session,
        room_id: &RoomId,
        block: bool,
    ) -> Result<bool> {
        self.authorize(who, action::ROOM_BLOCK, Some(room_id.as_str()))
            .await?;
        self.block(&who.user_id, room_id, block).await?;
        self.audited(
            who,
            action::ROOM_BLOCK,
            room_id.as_str(),
            Some(("block", block.into())),
        )
        .await?;
        Ok(block)
    }

    /// `GET /_synapse/admin/v1/rooms/{roomId}/block`: whether, and by whom.
    pub async fn room_blocked(
        &self,
        who: &Session,
        room_id: &RoomId,
    ) -> Result<Option<OwnedUserId>> {
        self.authorize(who, action::ROOM_BLOCK_GET, Some(room_id.as_str()))
            .await?;
        let by = self.rooms.blocked_rooms().blocked_by(room_id);
        self.audited(who, action::ROOM_BLOCK_GET, room_id.as_str(), None)
            .await?;
        Ok(by)
    }

    /// Stores the block (or its removal), then updates the check.
    pub(super) async fn block(&self, by: &UserId, room_id: &RoomId, block: bool) -> Result<()> {
        let (jobs, rid) = (self.jobs.clone(), room_id.to_string());
        let row = BlockedRoom {
            room_id: rid.clone(),
            blocked_by: by.to_string(),
            blocked_ts: crate::store::now_ms(),
        };
        blocking(move || {
            match block {
                true => jobs.block_room(row)?,
                false => {
                    jobs.unblock_room(&rid)?;
                }
            }
            Ok(())
        })
        .await?;
        let registry = self.rooms.blocked_rooms();
        match (block, registry.blocked_by(room_id)) {
            (true, None) => registry.set(room_id, Some(by.to_owned())),
            (false, _) => registry.set(room_id, None),
            _ => {}
        }
        Ok(())
    }

    /// Start-up: the stored list into the check.
    pub(super) fn load_blocked_rooms(&self) -> Result<()> {
        for b in self.jobs.blocked_rooms()? {
            if let (Ok(room), Ok(by)) = (RoomId::parse(&b.room_id), UserId::parse(&b.blocked_by)) {
                self.rooms.blocked_rooms().set(&room, Some(by));
            }
        }
        Ok(())
    }
}
