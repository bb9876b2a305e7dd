//! Test fixture: a local room that users of a remote server (`a.nhs.uk:8448`) are invited to
//! and join. Until inbound federation joins exist, the remote user's events are built on the
//! room's state exactly as a local event would be (so ruma's auth rules accept them) and
//! appended through the store; the room's in-memory state is then reloaded.

use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomVersionId, ServerName, UserId};
use serde_json::{Value, json};

use crate::service::Services;
use crate::service::rooms::timeline::build::build_event;
use crate::service::rooms::{CreateRoomParams, EventSpec};
use crate::service::test_util::user;
use crate::store::rooms::{NewEvent, RoomStore};
use crate::store::sqlite::SqliteStore;

pub const REMOTE: &str = "a.nhs.uk:8448";

pub fn remote() -> &'static ServerName {
    <&ServerName>::try_from(REMOTE).unwrap()
}

pub fn remote_user(name: &str) -> OwnedUserId {
    format!("@{name}:{REMOTE}").try_into().unwrap()
}

pub struct Fx {
    pub s: Services,
    pub store: SqliteStore,
    pub _dir: tempfile::TempDir,
    pub alice: OwnedUserId,
    pub room: OwnedRoomId,
}

impl Fx {
    /// A private room (invite only, `shared` history) of room version `version`, by alice.
    pub async fn new(version: RoomVersionId) -> Self {
        let (s, store, dir) = crate::service::test_services_and_store();
        Self::with(s, store, dir, version).await
    }

    pub async fn with(
        s: Services,
        store: SqliteStore,
        dir: tempfile::TempDir,
        version: RoomVersionId,
    ) -> Self {
        let alice = user(&s, "alice").await;
        let params = CreateRoomParams {
            version: Some(version),
            preset: None,
            is_public: false,
            name: Some("Ward 7".into()),
            topic: None,
            alias_localpart: None,
            invite: vec![],
            is_direct: false,
            initial_state: vec![],
            creation_content: None,
            power_level_override: None,
        };
        let room = s.rooms.create_room(&alice, params).await.unwrap();
        Self {
            s,
            store,
            _dir: dir,
            alice,
            room,
        }
    }

    /// Builds `spec` as `sender` on the current state and appends it (a remote user's event).
    pub async fn append_as(&self, sender: &UserId, spec: EventSpec) -> OwnedEventId {
        let new = self.build(sender, spec).await;
        let id = new.event_id.clone();
        self.store.append_event(new).unwrap();
        self.s.rooms.evict(&self.room);
        id
    }

    /// Builds `spec` as `sender` and stores it as an outlier (no place in the timeline).
    pub async fn outlier(&self, sender: &UserId, spec: EventSpec) -> OwnedEventId {
        let new = self.build(sender, spec).await;
        crate::store::sqlite::insert_outlier(&self.store, &new);
        new.event_id
    }

    async fn build(&self, sender: &UserId, spec: EventSpec) -> NewEvent {
        let state = self.s.rooms.current_state(&self.room).await.unwrap();
        let built = build_event(
            &state,
            Some(&self.room),
            sender,
            &spec,
            &self.s.keys,
            sender.server_name().as_str(),
        )
        .unwrap();
        let pdu = &built.pdu;
        let membership = (spec.kind.to_string() == "m.room.member")
            .then(|| serde_json::from_str::<Value>(spec.content.get()).unwrap())
            .and_then(|c| c["membership"].as_str().map(str::to_owned));
        NewEvent {
            event_id: pdu.event_id.clone(),
            room_id: self.room.clone(),
            sender: sender.to_owned(),
            kind: spec.kind.to_string(),
            state_key: spec.state_key.clone(),
            depth: u64::from(pdu.depth) as i64,
            origin_server_ts: u64::from(pdu.origin_server_ts.get()) as i64,
            json: built.json.clone(),
            unsigned: None,
            prev_events: pdu.prev_events.clone(),
            txn: None,
            membership,
            relation: None,
            redacts: None,
            resolved_state: vec![],
            deliveries: vec![],
        }
    }

    /// Alice invites the remote user, who joins; returns the join event.
    pub async fn remote_join(&self, who: &UserId) -> OwnedEventId {
        let invite = EventSpec::state(
            StateEventType::RoomMember,
            who.as_str(),
            json!({ "membership": "invite" }),
        );
        self.append_as(&self.alice.clone(), invite).await;
        let join = EventSpec::state(
            StateEventType::RoomMember,
            who.as_str(),
            json!({ "membership": "join" }),
        );
        self.append_as(who, join).await
    }

    /// The stored PDU JSON of an event.
    pub fn stored(&self, id: &OwnedEventId) -> Value {
        let ev = self.store.get_event(id.as_str()).unwrap().unwrap();
        serde_json::from_str(&ev.json).unwrap()
    }
}
