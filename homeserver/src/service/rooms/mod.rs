//! Rooms: creation, membership, state, the timeline (append, redact) and event authorisation.

use ruma::RoomVersionId;

/// Room versions we create and join. 1–5 are not offered: ruma lacks their state resolution.
pub const SUPPORTED_ROOM_VERSIONS: &[RoomVersionId] =
    &[RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12];

/// What createRoom uses when the client names no version: 12, as Synapse does.
pub const DEFAULT_ROOM_VERSION: RoomVersionId = RoomVersionId::V12;
