//! Rooms a server admin blocked (Synapse's block room API and `block: true` on room deletion):
//! nobody joins, is invited to or knocks on them through this server, local users or other
//! servers alike. The list lives in `blocked_rooms`; this in-memory copy is what every join,
//! invite and knock checks. Only the admin service changes it (after the store) and loads it at
//! start-up. A refusal is audited (rule `room_blocked`, who, which room, what was tried).

use std::collections::HashMap;
use std::sync::RwLock;

use handover_policy::Denial;
use ruma::{OwnedRoomId, OwnedUserId, RoomId};

use super::RoomService;
use crate::error::{Error, Result};

/// The rule a refusal names.
pub const RULE_ROOM_BLOCKED: &str = "room_blocked";

#[derive(Default)]
pub struct BlockedRooms {
    /// Blocked room -> the admin who blocked it.
    by_room: RwLock<HashMap<OwnedRoomId, OwnedUserId>>,
}

impl BlockedRooms {
    /// Who blocked the room, if it is blocked.
    pub fn blocked_by(&self, room_id: &RoomId) -> Option<OwnedUserId> {
        let map = self.by_room.read().expect("blocked rooms lock");
        map.get(room_id).cloned()
    }

    pub fn set(&self, room_id: &RoomId, by: Option<OwnedUserId>) {
        let mut map = self.by_room.write().expect("blocked rooms lock");
        match by {
            Some(u) => map.insert(room_id.to_owned(), u),
            None => map.remove(room_id),
        };
    }
}

impl RoomService {
    pub fn blocked_rooms(&self) -> &BlockedRooms {
        &self.blocked
    }

    /// Refuses `attempted` (join, invite, knock, a remote server's make_join...) on a blocked
    /// room: audited, then 403 `M_FORBIDDEN` naming the rule.
    pub(crate) async fn check_not_blocked(
        &self,
        room_id: &RoomId,
        actor: &str,
        attempted: &str,
    ) -> Result<()> {
        if self.blocked.blocked_by(room_id).is_none() {
            return Ok(());
        }
        let denial = Denial::new(
            RULE_ROOM_BLOCKED,
            "This room has been blocked on this server by a server admin",
        );
        (self.audit)
            .record_denial(&denial, attempted, actor, Some(room_id.as_str()))
            .await?;
        Err(Error::policy(&denial))
    }
}
