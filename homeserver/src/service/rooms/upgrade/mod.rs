//! `POST /rooms/{roomId}/upgrade`: a new room of the requested version made through createRoom
//! (so every createRoom rule applies: policy, patient-context rules, audit), with the old room's
//! state copied and `predecessor` in its create event; then, in the old room, the tombstone, the
//! power levels restricted and the canonical alias removed; local aliases and directory listing
//! moved; local invitees re-invited and bans carried over (as Synapse does).
//!
//! Steps after the new room exists are separate events: the tombstone failing (the upgrader
//! lost power meanwhile) fails the request and leaves an unreferenced new room; a later step
//! failing is logged and audited, and the upgrade stands (docs/ARCHITECTURE.md, "Room upgrades").

pub mod plan;

use handover_compliance::Outcome;
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::events::room::power_levels::UserPowerLevel;
use ruma::room_version_rules::RoomIdFormatVersion;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use serde_json::{Value, json};

use super::timeline::build::EventSpec;
use super::{CreateRoomParams, RoomService, SUPPORTED_ROOM_VERSIONS};
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;

impl RoomService {
    pub async fn upgrade_room(
        &self,
        room_id: &RoomId,
        user: &UserId,
        new_version: &RoomVersionId,
        additional_creators: Vec<OwnedUserId>,
    ) -> Result<OwnedRoomId> {
        if !SUPPORTED_ROOM_VERSIONS.contains(new_version) {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::UnsupportedRoomVersion,
                format!("Room version {new_version} is not supported"),
            ));
        }
        self.users.ensure_not_suspended(user)?;
        self.require_joined(room_id, user).await?;
        let old = self.current_state(room_id).await?;
        let power = old.power_levels();
        if !power.user_can_send_state(user, StateEventType::RoomTombstone) {
            return Err(Error::forbidden(
                "You cannot upgrade this room: it needs the power to send m.room.tombstone",
            ));
        }
        if let Some(t) = old.content_json(&StateEventType::RoomTombstone, "")
            && let Some(to) = t["replacement_room"].as_str()
        {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::BadState,
                format!("This room has already been upgraded to {to}"),
            ));
        }
        let rules = super::state::rules_for(new_version)?;
        let auth = &rules.authorization;
        let extra = if auth.additional_room_creators {
            additional_creators
        } else {
            Vec::new()
        };
        let last_event = old.extremities.last().map(|e| e.to_string());
        let creation = plan::create_content(
            &old,
            room_id,
            last_event.as_deref(),
            rules.room_id_format == RoomIdFormatVersion::V1,
            &extra,
            user,
        );
        let upgrader_level = match power.for_user(user) {
            UserPowerLevel::Int(i) => Some(i64::from(i)),
            _ => None,
        };
        let pl = plan::new_power_levels(
            old.content_json(&StateEventType::RoomPowerLevels, ""),
            user,
            upgrader_level,
            &extra,
            auth.explicitly_privilege_room_creators,
        )?;
        let was_public = self.directory_visibility(room_id).await?;
        let params = CreateRoomParams {
            version: Some(new_version.clone()),
            preset: None,
            is_public: was_public,
            name: None,
            topic: None,
            alias_localpart: None,
            invite: Vec::new(),
            is_direct: false,
            initial_state: plan::copied_state(&old),
            creation_content: Some(creation),
            power_level_override: Some(pl),
        };
        let new_room = self.create_room(user, params).await?;
        let tombstone = json!({
            "body": "This room has been replaced",
            "replacement_room": new_room,
        });
        self.send_state(
            room_id,
            user,
            EventSpec::state(StateEventType::RoomTombstone, "", tombstone),
        )
        .await?;
        let e = entry(user.as_str(), action::ROOM_UPGRADE, Outcome::Success)
            .target(room_id.as_str())
            .detail("replacement_room", new_room.as_str())
            .detail("room_version", new_version.as_str());
        self.audit.record(e).await?;
        self.after_upgrade(room_id, &new_room, user, &old, was_public)
            .await;
        Ok(new_room)
    }

    /// What follows the tombstone; each step on its own (see the module docs).
    async fn after_upgrade(
        &self,
        old_room: &RoomId,
        new_room: &RoomId,
        user: &UserId,
        old: &super::state::RoomState,
        was_public: bool,
    ) {
        if let Some(pl) = old.content_json(&StateEventType::RoomPowerLevels, "")
            && let Some(restricted) = plan::restricted_power_levels(pl)
        {
            let spec = EventSpec::state(StateEventType::RoomPowerLevels, "", restricted);
            let res = self.send_state(old_room, user, spec).await.map(drop);
            self.upgrade_step(user, old_room, "restrict old power levels", res)
                .await;
        }
        let res = self.move_aliases(old_room, new_room, user, old).await;
        self.upgrade_step(user, old_room, "move aliases", res).await;
        if was_public {
            let store = self.store.clone();
            let r = old_room.to_string();
            let res = blocking(move || Ok(store.set_room_public(&r, false)?)).await;
            self.upgrade_step(user, old_room, "unlist old room", res)
                .await;
        }
        for (key, pdu) in old
            .state
            .iter()
            .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
            .map(|((_, key), pdu)| (key, pdu))
        {
            let Ok(target) = key.parse::<OwnedUserId>() else {
                continue;
            };
            let Ok(c) = serde_json::from_str::<Value>(pdu.content.get()) else {
                continue;
            };
            let res = match c["membership"].as_str() {
                Some("invite") if target.server_name() == self.server_name => {
                    self.invite(new_room, user, &target, None, false).await
                }
                Some("ban") => {
                    let reason = c["reason"].as_str().map(str::to_owned);
                    self.ban(new_room, user, &target, reason).await
                }
                _ => continue,
            };
            self.upgrade_step(user, new_room, "carry over an invite or ban", res)
                .await;
        }
    }

    /// Local aliases now name the new room (one store statement); the canonical alias event
    /// moves with them: set in the new room, emptied in the old one.
    async fn move_aliases(
        &self,
        old_room: &RoomId,
        new_room: &RoomId,
        user: &UserId,
        old: &super::state::RoomState,
    ) -> Result<()> {
        let store = self.store.clone();
        let (f, t) = (old_room.to_string(), new_room.to_string());
        blocking(move || Ok(store.move_aliases(&f, &t)?)).await?;
        let Some(canonical) = old.content_json(&StateEventType::RoomCanonicalAlias, "") else {
            return Ok(());
        };
        if canonical.as_object().is_none_or(|o| o.is_empty()) {
            return Ok(());
        }
        let kind = StateEventType::RoomCanonicalAlias;
        self.send_state(
            new_room,
            user,
            EventSpec::state(kind.clone(), "", canonical),
        )
        .await?;
        self.send_state(old_room, user, EventSpec::state(kind, "", json!({})))
            .await?;
        Ok(())
    }

    async fn upgrade_step(&self, user: &UserId, room: &RoomId, step: &str, res: Result<()>) {
        let Err(e) = res else { return };
        tracing::warn!(room_id = %room, step, error = %e, "room upgrade: a step after the tombstone failed");
        let e = entry(user.as_str(), action::ROOM_UPGRADE, Outcome::Failure)
            .target(room.as_str())
            .detail("step", step)
            .detail("error", e.to_string());
        // A failed write is logged inside; what it records already happened.
        let _ = self.audit.record(e).await;
    }
}
