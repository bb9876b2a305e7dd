//! The fully-read marker (`m.fully_read` room account data), set through /read_markers or a
//! receipt of type `m.fully_read`; clients may not write it as plain account data.

use std::sync::Arc;

use ruma::{EventId, RoomId, UserId};

use crate::error::{Error, Result};
use crate::service::account_data::AccountDataService;
use crate::service::rooms::RoomService;
use crate::service::rooms::format::Viewer;

pub struct ReadMarkerService {
    rooms: Arc<RoomService>,
    account_data: Arc<AccountDataService>,
}

impl ReadMarkerService {
    pub fn new(rooms: Arc<RoomService>, account_data: Arc<AccountDataService>) -> Self {
        Self {
            rooms,
            account_data,
        }
    }

    pub async fn set_fully_read(
        &self,
        room_id: &RoomId,
        user: &UserId,
        event_id: &EventId,
    ) -> Result<()> {
        self.rooms.require_joined(room_id, user).await?;
        // The marker must point at an event the user can see in this room.
        self.rooms
            .get_event(
                room_id,
                event_id,
                Viewer {
                    user_id: user,
                    device_id: None,
                },
            )
            .await
            .map_err(|_| Error::not_found("Event not found in this room"))?;
        let content = serde_json::json!({ "event_id": event_id }).to_string();
        self.account_data
            .write(user, room_id.as_str(), "m.fully_read", content)
            .await
    }
}
