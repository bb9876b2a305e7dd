//! A room's current state held in memory while events are appended: the state events themselves
//! (ruma's auth rules need their content), the forward extremities and the greatest depth.
//! Loaded from the store on first use; updated only after an append commits.
//!
//! Data types only (this module and `pdu.rs`), below the room service so the commit pipeline and
//! the appservice registry can read them; `rooms::state` and `rooms::pdu` re-export them.

use std::collections::HashMap;
use std::sync::Arc;

use ruma::events::StateEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomVersionId, UserId};

pub mod pdu;

use self::pdu::Pdu;
use crate::error::{Error, Result};
use crate::store::rooms::StoredEvent;

pub type StateKey = (StateEventType, String);

#[derive(Clone)]
pub struct RoomState {
    pub room_id: OwnedRoomId,
    pub version: RoomVersionId,
    pub rules: RoomVersionRules,
    pub state: HashMap<StateKey, Arc<Pdu>>,
    pub extremities: Vec<OwnedEventId>,
    pub depth: u64,
}

pub fn rules_for(version: &RoomVersionId) -> Result<RoomVersionRules> {
    version
        .rules()
        .ok_or_else(|| Error::internal(format!("no rules for room version {version}")))
}

impl RoomState {
    pub fn new(room_id: OwnedRoomId, version: RoomVersionId) -> Result<Self> {
        let rules = rules_for(&version)?;
        Ok(Self {
            room_id,
            version,
            rules,
            state: HashMap::new(),
            extremities: vec![],
            depth: 0,
        })
    }

    pub fn load(
        room_id: OwnedRoomId,
        version: RoomVersionId,
        events: Vec<StoredEvent>,
        extremities: Vec<OwnedEventId>,
        depth: i64,
    ) -> Result<Self> {
        let mut s = Self::new(room_id, version)?;
        for ev in events {
            let pdu = Pdu::from_json(ev.event_id, &s.room_id, &ev.json)?;
            s.insert(Arc::new(pdu));
        }
        s.extremities = extremities;
        s.depth = depth.max(0) as u64;
        Ok(s)
    }

    pub fn get(&self, kind: &StateEventType, state_key: &str) -> Option<&Arc<Pdu>> {
        self.state.get(&(kind.clone(), state_key.to_owned()))
    }

    pub fn insert(&mut self, pdu: Arc<Pdu>) {
        if let Some(key) = &pdu.state_key {
            self.state
                .insert((pdu.kind.to_string().into(), key.clone()), pdu);
        }
    }

    /// Records an appended event: new extremity, depth and (for state) the new state.
    pub fn advance(&mut self, pdu: Arc<Pdu>) {
        // A local event cites every extremity; a remote one may cite only some of them.
        self.extremities.retain(|e| !pdu.prev_events.contains(e));
        self.extremities.push(pdu.event_id.clone());
        self.depth = self.depth.max(u64::from(pdu.depth));
        self.insert(pdu);
    }

    pub fn membership_of(&self, user_id: &UserId) -> Option<String> {
        let pdu = self.get(&StateEventType::RoomMember, user_id.as_str())?;
        let v: serde_json::Value = serde_json::from_str(pdu.content.get()).ok()?;
        v["membership"].as_str().map(str::to_owned)
    }

    /// Users whose membership is join or invite: who must hear about a new event.
    pub fn interested_users(&self) -> Vec<ruma::OwnedUserId> {
        self.state
            .iter()
            .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
            .filter_map(|((_, key), pdu)| {
                let v: serde_json::Value = serde_json::from_str(pdu.content.get()).ok()?;
                matches!(v["membership"].as_str(), Some("join" | "invite"))
                    .then(|| key.parse().ok())
                    .flatten()
            })
            .collect()
    }

    /// Servers with at least one joined member: where the room's new events must go.
    pub fn joined_servers(&self) -> Vec<ruma::OwnedServerName> {
        let mut servers: Vec<ruma::OwnedServerName> = self
            .state
            .iter()
            .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
            .filter_map(|((_, key), pdu)| {
                let v: serde_json::Value = serde_json::from_str(pdu.content.get()).ok()?;
                let user: ruma::OwnedUserId = key.parse().ok()?;
                (v["membership"].as_str() == Some("join")).then(|| user.server_name().to_owned())
            })
            .collect();
        servers.sort();
        servers.dedup();
        servers
    }

    /// The content of a state event as JSON, if present.
    pub fn content_json(
        &self,
        kind: &StateEventType,
        state_key: &str,
    ) -> Option<serde_json::Value> {
        self.get(kind, state_key)
            .and_then(|p| serde_json::from_str(p.content.get()).ok())
    }
}

impl RoomState {
    /// The room's power levels as ruma computes them (creators privileged from v12).
    pub fn power_levels(&self) -> ruma::events::room::power_levels::RoomPowerLevels {
        use ruma::events::room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent};
        let content: Option<RoomPowerLevelsEventContent> = self
            .get(&StateEventType::RoomPowerLevels, "")
            .and_then(|p| p.content_as());
        RoomPowerLevels::new(content.into(), &self.rules.authorization, creators(self))
    }
}

/// The creators of the room: the create event's sender plus `additional_creators` (v12).
pub fn creators(state: &RoomState) -> Vec<OwnedUserId> {
    let Some(create) = state.get(&StateEventType::RoomCreate, "") else {
        return vec![];
    };
    let mut out = vec![create.sender.clone()];
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(create.content.get())
        && let Some(extra) = v["additional_creators"].as_array()
    {
        out.extend(extra.iter().filter_map(|u| u.as_str()?.parse().ok()));
    }
    out
}

/// State an invitee may see before joining (spec: stripped state).
pub(crate) const STRIPPED: &[StateEventType] = &[
    StateEventType::RoomCreate,
    StateEventType::RoomJoinRules,
    StateEventType::RoomName,
    StateEventType::RoomAvatar,
    StateEventType::RoomCanonicalAlias,
    StateEventType::RoomEncryption,
    StateEventType::RoomTopic,
];
