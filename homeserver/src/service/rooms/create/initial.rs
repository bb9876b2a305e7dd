//! The initial events of a new room, in the spec's order: create, the creator's join, power
//! levels, canonical alias, preset rules (join rules, history visibility, guest access),
//! initial_state, name, topic, then local invites (remote invitees are invited after the room
//! exists, through the same path as `/invite`).

use ruma::events::StateEventType;
use ruma::{OwnedRoomAliasId, RoomVersionId, UserId};
use serde_json::{Value, json};

use super::super::RoomService;
use super::super::timeline::build::EventSpec;
use super::patient::is_patient_context;
use super::{CreateRoomParams, Preset};
use crate::error::{Error, Result};

impl RoomService {
    pub(super) async fn initial_events(
        &self,
        creator: &UserId,
        version: &RoomVersionId,
        preset: Preset,
        p: &CreateRoomParams,
        alias: Option<&OwnedRoomAliasId>,
    ) -> Result<Vec<EventSpec>> {
        let rules = super::super::state::rules_for(version)?;
        let mut create = p.creation_content.clone().unwrap_or_default();
        create.insert("room_version".into(), version.as_str().into());
        if !rules.authorization.use_room_create_sender {
            create.insert("creator".into(), creator.as_str().into());
        } else {
            create.remove("creator");
        }
        // From v12 (spec v1.16) a trusted private chat makes its invitees additional creators
        // (deduplicated with the request's own), instead of listing them at 100.
        let invitees_create = preset == Preset::TrustedPrivateChat
            && rules.authorization.additional_room_creators
            && !p.invite.is_empty();
        if invitees_create {
            let mut extra: Vec<Value> = match create.get("additional_creators") {
                None => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(_) => {
                    return Err(Error::bad_json(
                        "creation_content.additional_creators must be an array of user ids",
                    ));
                }
            };
            for i in &p.invite {
                let v = Value::from(i.as_str());
                if !extra.contains(&v) && i.as_str() != creator.as_str() {
                    extra.push(v);
                }
            }
            create.insert("additional_creators".into(), Value::Array(extra));
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
        if preset == Preset::TrustedPrivateChat && !invitees_create {
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
        // A preset's rule gives way to initial_state's event of the same type (as Synapse does),
        // so the room does not start with two of them (a room upgrade copies all three).
        let given = |kind: &str| {
            p.initial_state
                .iter()
                .any(|(k, key, _)| k == kind && key.is_empty())
        };
        if !given("m.room.join_rules") {
            specs.push(EventSpec::state(
                StateEventType::RoomJoinRules,
                "",
                json!({ "join_rule": join_rule }),
            ));
        }
        let patient = is_patient_context(p);
        let history = if patient { "joined" } else { "shared" };
        if !given("m.room.history_visibility") {
            specs.push(EventSpec::state(
                StateEventType::RoomHistoryVisibility,
                "",
                json!({ "history_visibility": history }),
            ));
        }
        let guest = if preset == Preset::PublicChat || patient {
            "forbidden"
        } else {
            "can_join"
        };
        if !given("m.room.guest_access") {
            specs.push(EventSpec::state(
                StateEventType::RoomGuestAccess,
                "",
                json!({ "guest_access": guest }),
            ));
        }
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
        // Remote invitees are invited once the room exists (`create_room`), as `/invite` does.
        for invitee in p
            .invite
            .iter()
            .filter(|u| u.server_name() == self.server_name)
        {
            let mut content = json!({ "membership": "invite" });
            if p.is_direct {
                content["is_direct"] = true.into();
            }
            if let Some(u) = self.users.get_user(invitee).await? {
                if let Some(d) = u.displayname {
                    content["displayname"] = d.into();
                }
            } else {
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
