//! Room aliases on this server: create, resolve, delete, list; and the public room directory flag.

use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::{OwnedRoomId, RoomAliasId, RoomId, RoomOrAliasId, UserId};

use super::RoomService;
use crate::error::{Error, Result};
use crate::service::blocking;

impl RoomService {
    fn check_local_alias(&self, alias: &RoomAliasId) -> Result<()> {
        if alias.server_name() != self.server_name {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                "Alias must be on this server",
            ));
        }
        Ok(())
    }

    /// An alias in an appservice's exclusive namespace is created only by users it controls
    /// (its sender and namespace users, masqueraded or not): 400 `M_EXCLUSIVE` for others.
    pub(in crate::service::rooms) fn check_alias_exclusive(
        &self,
        alias: &RoomAliasId,
        user: &UserId,
    ) -> Result<()> {
        match self.appservices.exclusive_alias_owner(alias, None) {
            Some(owner) if !owner.controls_user(user) => {
                Err(crate::service::appservice::registry::exclusive(format!(
                    "{alias} is reserved by application service {}",
                    owner.id()
                )))
            }
            _ => Ok(()),
        }
    }

    pub async fn set_alias(
        &self,
        alias: &RoomAliasId,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<()> {
        self.check_local_alias(alias)?;
        self.check_alias_exclusive(alias, user)?;
        self.require_joined(room_id, user).await?;
        let store = self.store.clone();
        let (a, r, u) = (alias.to_string(), room_id.to_string(), user.to_string());
        blocking(move || match store.set_alias(&a, &r, &u) {
            Err(crate::store::StoreError::Conflict(_)) => Err(Error::new(
                StatusCode::CONFLICT,
                ErrorKind::Unknown,
                "Room alias already exists",
            )),
            other => Ok(other?),
        })
        .await
    }

    pub async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<OwnedRoomId> {
        if alias.server_name() != self.server_name {
            return Err(Error::not_found(
                "Room alias not found (remote aliases need federation)",
            ));
        }
        let store = self.store.clone();
        let a = alias.to_string();
        let found = blocking(move || Ok(store.get_alias(&a)?)).await?;
        found
            .map(|(r, _)| r)
            .ok_or_else(|| Error::not_found("Room alias not found"))
    }

    /// Deletes an alias: its creator or a room member with power to send m.room.canonical_alias.
    pub async fn delete_alias(
        &self,
        alias: &RoomAliasId,
        user: &UserId,
        is_admin: bool,
    ) -> Result<()> {
        self.check_local_alias(alias)?;
        let store = self.store.clone();
        let a = alias.to_string();
        let (room_id, creator) = blocking(move || Ok(store.get_alias(&a)?))
            .await?
            .ok_or_else(|| Error::not_found("Room alias not found"))?;
        if creator != user && !is_admin {
            self.require_joined(&room_id, user).await?;
            if !self
                .user_can_send_state(&room_id, user, "m.room.canonical_alias")
                .await?
            {
                return Err(Error::forbidden("You may not delete this alias"));
            }
        }
        let store = self.store.clone();
        let a = alias.to_string();
        blocking(move || Ok(store.delete_alias(&a)?)).await?;
        Ok(())
    }

    pub async fn aliases(&self, room_id: &RoomId, user: &UserId) -> Result<Vec<String>> {
        self.require_visible(room_id, user).await?;
        let store = self.store.clone();
        let r = room_id.to_string();
        blocking(move || Ok(store.aliases_for_room(&r)?)).await
    }

    /// Resolves a room id or alias given to /join.
    pub async fn resolve_room(&self, id: &RoomOrAliasId) -> Result<OwnedRoomId> {
        match <&RoomId>::try_from(id) {
            Ok(r) => Ok(r.to_owned()),
            Err(alias) => self.resolve_alias(alias).await,
        }
    }

    pub async fn set_directory_visibility(
        &self,
        room_id: &RoomId,
        user: &UserId,
        public: bool,
    ) -> Result<()> {
        self.require_joined(room_id, user).await?;
        if public {
            self.users
                .check_account_action(
                    user,
                    handover_policy::AccountAction::PublicDirectory,
                    Some(room_id.as_str()),
                )
                .await?;
        }
        if !self
            .user_can_send_state(room_id, user, "m.room.canonical_alias")
            .await?
        {
            return Err(Error::forbidden(
                "You may not change this room's directory visibility",
            ));
        }
        if public && super::create::is_patient_room(&self.current_state(room_id).await?) {
            let denial = handover_policy::patient_room_denial("publication in the room directory");
            (self.audit)
                .enforce(
                    Err(denial),
                    "patient_context_room",
                    user.as_str(),
                    Some(room_id.as_str()),
                )
                .await?;
        }
        let store = self.store.clone();
        let r = room_id.to_string();
        blocking(move || Ok(store.set_room_public(&r, public)?)).await
    }

    pub async fn directory_visibility(&self, room_id: &RoomId) -> Result<bool> {
        self.room_version(room_id).await?;
        let store = self.store.clone();
        let r = room_id.to_string();
        blocking(move || Ok(store.is_room_public(&r)?)).await
    }

    pub async fn public_room_ids(&self) -> Result<Vec<OwnedRoomId>> {
        let store = self.store.clone();
        blocking(move || Ok(store.public_rooms()?)).await
    }

    /// Whether the user's power level allows sending a state event of `kind`.
    pub async fn user_can_send_state(
        &self,
        room_id: &RoomId,
        user: &UserId,
        kind: &str,
    ) -> Result<bool> {
        let state = self.current_state(room_id).await?;
        Ok(state.power_levels().user_can_send_state(user, kind.into()))
    }
}
