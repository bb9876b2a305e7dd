//! createRoom: the initial events (create, creator join, power levels, alias, preset rules,
//! initial_state, name, topic, invites), each built and authorised in turn on an in-memory state,
//! then stored in one transaction so a crash never leaves half a room.

use handover_compliance::Outcome;
use handover_policy::{CreateRoomRequest, Denial, InviteRequest, RULE_PATIENT_CONTEXT_ROOM};
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::room_version_rules::RoomIdFormatVersion;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use serde_json::{Value, json};

use super::state::RoomState;
use super::timeline::append::new_event;
use super::timeline::build::{EventSpec, build_event};
use super::{RoomService, SUPPORTED_ROOM_VERSIONS};
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;
use crate::store::rooms::NewRoom;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

#[derive(Debug, Clone)]
pub struct CreateRoomParams {
    pub version: Option<RoomVersionId>,
    pub preset: Option<Preset>,
    pub is_public: bool,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub alias_localpart: Option<String>,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    /// `(type, state_key, content)` from the request's initial_state.
    pub initial_state: Vec<(String, String, Value)>,
    pub creation_content: Option<serde_json::Map<String, Value>>,
    pub power_level_override: Option<serde_json::Map<String, Value>>,
}

impl Preset {
    fn as_str(self) -> &'static str {
        match self {
            Preset::PrivateChat => "private_chat",
            Preset::TrustedPrivateChat => "trusted_private_chat",
            Preset::PublicChat => "public_chat",
        }
    }
}

/// The creation content key that makes a room a patient-context room (docs/GOVERNANCE.md):
/// `"org.handover.context": "patient"`.
pub const PATIENT_CONTEXT_KEY: &str = "org.handover.context";

/// Whether the request creates a patient-context room.
pub fn is_patient_context(p: &CreateRoomParams) -> bool {
    p.creation_content
        .as_ref()
        .and_then(|c| c.get(PATIENT_CONTEXT_KEY))
        .and_then(Value::as_str)
        == Some("patient")
}

/// Whether a state event would expose a patient-context room: a join rule other than invite,
/// history visible beyond joined members, guest access, or encryption other than megolm.
pub(super) fn patient_conflict(kind: &str, key: &str, c: &Value) -> Option<&'static str> {
    if !key.is_empty() {
        return None;
    }
    match kind {
        "m.room.join_rules" if c["join_rule"] != "invite" => Some("a join rule other than invite"),
        "m.room.history_visibility" if c["history_visibility"] != "joined" => {
            Some("history visibility other than joined")
        }
        "m.room.guest_access" if c["guest_access"] != "forbidden" => Some("guest access"),
        "m.room.encryption" if c["algorithm"] != "m.megolm.v1.aes-sha2" => {
            Some("an encryption algorithm other than megolm")
        }
        _ => None,
    }
}

/// The refusal of a request that would expose a patient-context room.
pub(super) fn patient_denial(what: &str) -> Denial {
    Denial::new(
        RULE_PATIENT_CONTEXT_ROOM,
        format!(
            "a patient-context room stays private, invite-only and encrypted; the request asked \
             for {what}"
        ),
    )
}

/// Whether an existing room is a patient-context room (its create event carries the key).
pub(super) fn is_patient_room(state: &RoomState) -> bool {
    state
        .get(&StateEventType::RoomCreate, "")
        .and_then(|c| serde_json::from_str::<Value>(c.content.get()).ok())
        .is_some_and(|c| c[PATIENT_CONTEXT_KEY] == "patient")
}

impl RoomService {
    pub async fn create_room(
        &self,
        creator: &UserId,
        mut p: CreateRoomParams,
    ) -> Result<OwnedRoomId> {
        if is_patient_context(&p) {
            self.patient_context(creator, &mut p).await?;
        }
        let version = p.version.clone().unwrap_or(super::DEFAULT_ROOM_VERSION);
        if !SUPPORTED_ROOM_VERSIONS.contains(&version) {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::UnsupportedRoomVersion,
                format!("Room version {version} is not supported"),
            ));
        }
        let preset = p.preset.unwrap_or(if p.is_public {
            Preset::PublicChat
        } else {
            Preset::PrivateChat
        });
        let alias = match &p.alias_localpart {
            Some(local) => Some(self.check_new_alias(local).await?),
            None => None,
        };
        let mut specs = self
            .initial_events(creator, &version, preset, &p, alias.as_ref())
            .await?;

        let state_keys = |specs: &[EventSpec]| -> Vec<(String, String)> {
            specs
                .iter()
                .filter_map(|s| s.state_key.clone().map(|k| (s.kind.to_string(), k)))
                .collect()
        };
        let keys = state_keys(&specs);
        let request = |keys| CreateRoomRequest {
            creator: creator.as_str(),
            room_version: version.as_str(),
            preset: Some(preset.as_str()),
            is_public: p.is_public,
            initial_state: keys,
        };
        // Policy defaults (e.g. encryption for private rooms) go before the invites, so
        // invitees see them in the invite's stripped state.
        let defaults = self.policy.room_defaults(&request(&keys));
        let at = specs
            .iter()
            .position(|s| {
                s.kind.to_string() == "m.room.member"
                    && s.state_key.as_deref() != Some(creator.as_str())
            })
            .unwrap_or(specs.len());
        for (i, (kind, key, content)) in defaults.into_iter().enumerate() {
            if !keys.iter().any(|(t, k)| *t == kind && *k == key) {
                specs.insert(at + i, EventSpec::state(kind.as_str().into(), key, content));
            }
        }
        let keys = state_keys(&specs);
        let decision = self.policy.check_create_room(&request(&keys));
        (self.audit)
            .enforce(decision, "check_create_room", creator.as_str(), None)
            .await?;
        // Initial state (name, topic, aliases, members...) is as visible as any later event, so
        // every one passes `check_event` too, before anything is built or stored.
        for spec in &specs {
            self.check_event_policy("", creator, spec, None).await?;
        }

        // Build each event on an in-memory state; the room id comes from the create event (v12)
        // or is random with our server name (v10, v11).
        let rules = super::state::rules_for(&version)?;
        let mut room_id: Option<OwnedRoomId> = match rules.room_id_format {
            RoomIdFormatVersion::V1 => Some(RoomId::new_v1(&self.server_name)),
            _ => None,
        };
        let placeholder: OwnedRoomId = RoomId::new_v1(&self.server_name);
        let mut state = RoomState::new(room_id.clone().unwrap_or(placeholder), version.clone())?;
        let mut events = Vec::with_capacity(specs.len());
        for spec in &specs {
            if spec.kind.to_string() == "m.room.member"
                && let Some(invitee) = spec.state_key.as_deref().filter(|k| *k != creator.as_str())
            {
                let rid = room_id.as_ref().map(|r| r.to_string()).unwrap_or_default();
                let decision = self.policy.check_invite(&InviteRequest {
                    room_id: &rid,
                    inviter: creator.as_str(),
                    invitee,
                });
                (self.audit)
                    .enforce(decision, "check_invite", creator.as_str(), Some(invitee))
                    .await?;
                let invitee = UserId::parse(invitee).map_err(Error::internal)?;
                self.check_invite_permission(creator, &invitee).await?;
            }
            let built = build_event(
                &state,
                room_id.as_deref(),
                creator,
                spec,
                &self.keys,
                self.server_name.as_str(),
            )?;
            if room_id.is_none() {
                room_id = Some(built.pdu.room_id.clone());
                state.room_id = built.pdu.room_id.clone();
            }
            events.push(new_event(&state, &built, creator, None)?);
            state.advance(built.pdu.clone());
        }
        let room_id = room_id.expect("set by the create event");

        let store = self.store.clone();
        let room = NewRoom {
            room_id: room_id.clone(),
            version: version.to_string(),
            creator: creator.to_owned(),
            is_public: p.is_public,
        };
        blocking(move || Ok(store.create_room(room, events)?)).await?;
        if let Some(alias) = alias {
            let store = self.store.clone();
            let (a, r, c) = (alias.to_string(), room_id.to_string(), creator.to_string());
            blocking(move || Ok(store.set_alias(&a, &r, &c)?)).await?;
        }
        let notify = state.interested_users();
        self.versions
            .lock()
            .expect("versions lock")
            .insert(room_id.clone(), version.clone());
        *self.slot(&room_id).lock().await = Some(state);
        self.notifier.notify(notify.iter().map(|u| &**u));
        tracing::info!(room_id = %room_id, creator = %creator, "room created");
        let e = entry(creator.as_str(), action::ROOM_CREATE, Outcome::Success)
            .target(room_id.as_str())
            .detail("room_version", version.as_str())
            .detail("preset", preset.as_str())
            .detail("is_public", p.is_public);
        self.audit.record(e).await;
        for invitee in &p.invite {
            let e = entry(creator.as_str(), action::ROOM_INVITE, Outcome::Success);
            self.audit
                .record(
                    e.target(invitee.as_str())
                        .detail("room_id", room_id.as_str()),
                )
                .await;
        }
        Ok(room_id)
    }

    /// A patient-context room (see [`is_patient_context`]): refuses a request asking for state
    /// that would expose it (rule `patient_context_room`, audited), then forces it private:
    /// never in the directory, encrypted (megolm) whatever `rooms.encrypt_by_default` says.
    /// The invite-only join rule, `joined` history and forbidden guest access come from
    /// `initial_events`.
    async fn patient_context(&self, creator: &UserId, p: &mut CreateRoomParams) -> Result<()> {
        let conflict = if p.preset == Some(Preset::PublicChat) {
            Some("the public_chat preset")
        } else {
            p.initial_state
                .iter()
                .find_map(|(kind, key, c)| patient_conflict(kind, key, c))
        };
        if let Some(what) = conflict {
            (self.audit)
                .enforce(
                    Err(patient_denial(what)),
                    "patient_context_room",
                    creator.as_str(),
                    None,
                )
                .await?;
        }
        p.is_public = false;
        if !p
            .initial_state
            .iter()
            .any(|(k, key, _)| k == "m.room.encryption" && key.is_empty())
        {
            p.initial_state.push((
                "m.room.encryption".into(),
                String::new(),
                json!({ "algorithm": "m.megolm.v1.aes-sha2" }),
            ));
        }
        Ok(())
    }

    async fn check_new_alias(&self, localpart: &str) -> Result<OwnedRoomAliasId> {
        let alias = ruma::RoomAliasId::parse(format!("#{localpart}:{}", self.server_name))
            .map_err(|e| {
                Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidParam,
                    format!("Invalid alias: {e}"),
                )
            })?;
        let store = self.store.clone();
        let a = alias.to_string();
        if blocking(move || Ok(store.get_alias(&a)?)).await?.is_some() {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::RoomInUse,
                "Room alias already taken",
            ));
        }
        Ok(alias)
    }

    async fn initial_events(
        &self,
        creator: &UserId,
        version: &RoomVersionId,
        preset: Preset,
        p: &CreateRoomParams,
        alias: Option<&OwnedRoomAliasId>,
    ) -> Result<Vec<EventSpec>> {
        let rules = super::state::rules_for(version)?;
        let mut create = p.creation_content.clone().unwrap_or_default();
        create.insert("room_version".into(), version.as_str().into());
        if !rules.authorization.use_room_create_sender {
            create.insert("creator".into(), creator.as_str().into());
        } else {
            create.remove("creator");
        }
        let mut specs = vec![EventSpec::state(
            StateEventType::RoomCreate,
            "",
            Value::Object(create),
        )];

        let profile = self.users.get_user(creator).await?;
        let mut join = json!({ "membership": "join" });
        if let Some(u) = &profile {
            if let Some(d) = &u.displayname {
                join["displayname"] = d.clone().into();
            }
            if let Some(a) = &u.avatar_url {
                join["avatar_url"] = a.clone().into();
            }
        }
        specs.push(EventSpec::state(
            StateEventType::RoomMember,
            creator.as_str(),
            join,
        ));

        let mut users = serde_json::Map::new();
        // From v12 creators have infinite power implicitly and must not be listed.
        if !rules.authorization.explicitly_privilege_room_creators {
            users.insert(creator.to_string(), 100.into());
        }
        if preset == Preset::TrustedPrivateChat {
            for i in &p.invite {
                users.insert(i.to_string(), 100.into());
            }
        }
        let mut pl = json!({
            "users": users, "users_default": 0,
            "events": {
                "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
                "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
                "m.room.server_acl": 100, "m.room.encryption": 100
            },
            "events_default": 0, "state_default": 50, "ban": 50, "kick": 50, "redact": 50,
            "invite": 0, "historical": 100, "notifications": { "room": 50 }
        });
        if let Some(over) = &p.power_level_override {
            for (k, v) in over {
                pl[k] = v.clone();
            }
        }
        specs.push(EventSpec::state(StateEventType::RoomPowerLevels, "", pl));
        if let Some(a) = alias {
            specs.push(EventSpec::state(
                StateEventType::RoomCanonicalAlias,
                "",
                json!({ "alias": a }),
            ));
        }
        let join_rule = if preset == Preset::PublicChat {
            "public"
        } else {
            "invite"
        };
        specs.push(EventSpec::state(
            StateEventType::RoomJoinRules,
            "",
            json!({ "join_rule": join_rule }),
        ));
        let patient = is_patient_context(p);
        let history = if patient { "joined" } else { "shared" };
        specs.push(EventSpec::state(
            StateEventType::RoomHistoryVisibility,
            "",
            json!({ "history_visibility": history }),
        ));
        let guest = if preset == Preset::PublicChat || patient {
            "forbidden"
        } else {
            "can_join"
        };
        specs.push(EventSpec::state(
            StateEventType::RoomGuestAccess,
            "",
            json!({ "guest_access": guest }),
        ));
        for (kind, key, content) in &p.initial_state {
            if kind == "m.room.create" || kind == "m.room.member" {
                return Err(Error::bad_json(format!(
                    "initial_state may not contain {kind}"
                )));
            }
            specs.push(EventSpec::state(
                kind.as_str().into(),
                key.clone(),
                content.clone(),
            ));
        }
        if let Some(name) = &p.name {
            specs.push(EventSpec::state(
                StateEventType::RoomName,
                "",
                json!({ "name": name }),
            ));
        }
        if let Some(topic) = &p.topic {
            specs.push(EventSpec::state(
                StateEventType::RoomTopic,
                "",
                json!({ "topic": topic }),
            ));
        }
        for invitee in &p.invite {
            let mut content = json!({ "membership": "invite" });
            if p.is_direct {
                content["is_direct"] = true.into();
            }
            if let Some(u) = self.users.get_user(invitee).await? {
                if let Some(d) = u.displayname {
                    content["displayname"] = d.into();
                }
            } else if invitee.server_name() == self.server_name {
                return Err(Error::not_found(format!("Unknown user {invitee}")));
            }
            specs.push(EventSpec::state(
                StateEventType::RoomMember,
                invitee.as_str(),
                content,
            ));
        }
        Ok(specs)
    }
}
