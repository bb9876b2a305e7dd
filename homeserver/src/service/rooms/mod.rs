//! Rooms: creation, membership, state, the timeline (append, redact) and event authorisation.
//!
//! Appends to one room are serialised by a per-room lock held from reading the current state to
//! committing the new event, so two concurrent sends never fork the room's DAG. Different rooms
//! proceed in parallel, and their commits share group-commit transactions.

mod admin_read;
mod alias;
pub mod blocked;
pub mod create;
mod directory;
pub mod federation;
pub mod format;
mod knock;
mod membership;
mod mutual;
pub mod read;
mod relations;
mod threads;
pub mod timeline;
mod timestamp;
mod upgrade;
pub mod visibility;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handover_policy::{Policy, RetentionBounds};
use ruma::{OwnedRoomId, OwnedServerName, RoomId, RoomVersionId};

pub use self::create::CreateRoomParams;
pub use self::directory::PublicRoomsFilter;
pub use self::mutual::MutualRooms;
pub use self::read::{Messages, RoomSummary};
pub use self::relations::RelationsParams;
use self::state::RoomState;
pub use self::timeline::build::EventSpec;
use super::account_data::AccountDataService;
use super::audit::AuditService;
use super::blocking;
use super::commit::CommitPipeline;
use super::federation::FederationService;
use super::signing_key::ServerKeys;
use super::users::UserService;
use crate::error::{Error, Result};
/// The room data types live below the room service (`service/room_state/`), re-exported here.
pub use crate::service::room_state::{self as state, pdu};
use crate::store::federated_rooms::FederatedRoomStore;
use crate::store::federation_events::FederationEventStore;
use crate::store::rooms::RoomStore;

/// Room versions we create and join. 1–5 are not offered: ruma lacks their state resolution.
pub const SUPPORTED_ROOM_VERSIONS: &[RoomVersionId] =
    &[RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12];

/// What createRoom uses when the client names no version: 12, as Synapse does.
pub const DEFAULT_ROOM_VERSION: RoomVersionId = RoomVersionId::V12;

type RoomSlot = Arc<tokio::sync::Mutex<Option<RoomState>>>;

pub struct RoomService {
    server_name: OwnedServerName,
    store: Arc<dyn RoomStore>,
    keys: Arc<ServerKeys>,
    policy: Arc<dyn Policy>,
    /// The server's `[retention]` bounds: events older than a room's lifetime are not imported.
    retention: RetentionBounds,
    audit: Arc<AuditService>,
    users: Arc<UserService>,
    /// What runs around every event's write: push evaluation, media binding, sync wake-ups,
    /// the federation outbox (`service/commit/`).
    pipeline: Arc<CommitPipeline>,
    /// Invitees' invite permission config (MSC4155).
    account_data: Arc<AccountDataService>,
    /// Remote keys, the gated outbound client: joins, invites and PDUs from other servers.
    federation: Arc<FederationService>,
    fed_store: Arc<dyn FederatedRoomStore>,
    /// Events by id and auth chains (outliers included).
    fed_events: Arc<dyn FederationEventStore>,
    /// Rooms joined over federation whose history has been backfilled to the start.
    backfill_done: Mutex<std::collections::HashSet<OwnedRoomId>>,
    rooms: Mutex<HashMap<OwnedRoomId, RoomSlot>>,
    versions: Mutex<HashMap<OwnedRoomId, RoomVersionId>>,
    /// Timestamps of the create events we build: never the same twice (v12 room id collisions).
    create_stamps: create::CreateStamps,
    /// Registered appservices: events they are interested in are queued with the event.
    appservices: Arc<crate::service::appservice::registry::Registry>,
    /// Rooms an admin blocked (`blocked.rs`): filled by the admin service.
    blocked: blocked::BlockedRooms,
}

/// What the room service is built with: its explicit dependencies.
pub struct RoomDeps {
    pub server_name: OwnedServerName,
    pub store: Arc<dyn RoomStore>,
    pub keys: Arc<ServerKeys>,
    pub policy: Arc<dyn Policy>,
    pub retention: RetentionBounds,
    pub audit: Arc<AuditService>,
    pub users: Arc<UserService>,
    pub pipeline: Arc<CommitPipeline>,
    pub account_data: Arc<AccountDataService>,
    pub federation: Arc<FederationService>,
    pub fed_store: Arc<dyn FederatedRoomStore>,
    pub fed_events: Arc<dyn FederationEventStore>,
    pub appservices: Arc<crate::service::appservice::registry::Registry>,
}

impl RoomService {
    pub fn new(deps: RoomDeps) -> Self {
        let RoomDeps {
            server_name,
            store,
            keys,
            policy,
            retention,
            audit,
            users,
            pipeline,
            account_data,
            federation,
            fed_store,
            fed_events,
            appservices,
        } = deps;
        Self {
            server_name,
            store,
            keys,
            policy,
            retention,
            audit,
            users,
            pipeline,
            account_data,
            federation,
            fed_store,
            fed_events,
            backfill_done: Mutex::new(Default::default()),
            rooms: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            create_stamps: create::CreateStamps::default(),
            appservices,
            blocked: blocked::BlockedRooms::default(),
        }
    }

    fn slot(&self, room_id: &RoomId) -> RoomSlot {
        self.rooms
            .lock()
            .expect("rooms lock")
            .entry(room_id.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets the room's in-memory state (after retention deleted the room).
    pub fn evict(&self, room_id: &RoomId) {
        self.rooms.lock().expect("rooms lock").remove(room_id);
        self.versions.lock().expect("versions lock").remove(room_id);
    }

    /// The room's version, or `M_NOT_FOUND` if we do not know the room.
    pub async fn room_version(&self, room_id: &RoomId) -> Result<RoomVersionId> {
        if let Some(v) = self.versions.lock().expect("versions lock").get(room_id) {
            return Ok(v.clone());
        }
        let store = self.store.clone();
        let rid = room_id.to_owned();
        let v = blocking(move || Ok(store.room_version(rid.as_str())?)).await?;
        let v: RoomVersionId = v
            .ok_or_else(|| Error::not_found("Unknown room"))?
            .as_str()
            .try_into()
            .map_err(Error::internal)?;
        self.versions
            .lock()
            .expect("versions lock")
            .insert(room_id.to_owned(), v.clone());
        Ok(v)
    }

    /// Locks the room for an append and makes sure its state is loaded.
    async fn lock_room(
        &self,
        room_id: &RoomId,
    ) -> Result<tokio::sync::OwnedMutexGuard<Option<RoomState>>> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock_owned().await;
        if guard.is_none() {
            let version = self.room_version(room_id).await?;
            let store = self.store.clone();
            let rid = room_id.to_owned();
            let (events, (extremities, depth)) = blocking(move || {
                Ok((
                    store.current_state(rid.as_str())?,
                    store.forward_extremities(rid.as_str())?,
                ))
            })
            .await?;
            *guard = Some(RoomState::load(
                room_id.to_owned(),
                version,
                events,
                extremities,
                depth,
            )?);
        }
        Ok(guard)
    }

    /// A snapshot of the room's current state (cheap: shares the PDUs).
    pub async fn current_state(&self, room_id: &RoomId) -> Result<RoomState> {
        let guard = self.lock_room(room_id).await?;
        Ok(guard.as_ref().expect("loaded by lock_room").clone())
    }

    pub fn server_name(&self) -> &ruma::ServerName {
        &self.server_name
    }
}

#[cfg(test)]
mod relations_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod visibility_tests;
