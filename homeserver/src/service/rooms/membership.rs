//! Membership changes: join, invite, leave, kick, ban, unban, forget. Each is a member event
//! authorised by the room's rules; invites also pass the policy's `check_invite` hook.

use handover_compliance::Outcome;
use handover_policy::{
    AccountAction, AccountKind, INVITE_PERMISSION_TYPES, InviteRequest, Inviter, invite_permission,
};
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedServerName, RoomId, UserId};
use serde_json::{Value, json};

use super::RoomService;
use super::timeline::build::EventSpec;
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;

impl RoomService {
    pub(in crate::service::rooms) async fn member_content(
        &self,
        user_id: &UserId,
        membership: &str,
        reason: Option<String>,
    ) -> Result<Value> {
        let mut content = json!({ "membership": membership });
        if matches!(membership, "join" | "invite" | "knock")
            && let Some(u) = self.users.get_user(user_id).await?
        {
            if let Some(d) = u.displayname {
                content["displayname"] = d.into();
            }
            if let Some(a) = u.avatar_url {
                content["avatar_url"] = a.into();
            }
        }
        if let Some(r) = reason {
            content["reason"] = r.into();
        }
        Ok(content)
    }

    pub(in crate::service::rooms) async fn set_membership(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        content: Value,
    ) -> Result<OwnedEventId> {
        self.send(
            room_id,
            sender,
            EventSpec::state(StateEventType::RoomMember, target.as_str(), content),
            None,
        )
        .await
    }

    /// Joins a room. Joining again while joined is a no-op, as in Synapse.
    pub async fn join(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        self.join_via(room_id, user_id, reason, &[]).await
    }

    /// Joins a room; a room we are not in is joined through another server: `via`, then the
    /// server that invited the user, then the server named in the room id.
    pub async fn join_via(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        reason: Option<String>,
        via: &[OwnedServerName],
    ) -> Result<()> {
        self.users.ensure_not_suspended(user_id)?;
        self.check_not_blocked(room_id, user_id.as_str(), "join")
            .await?;
        let known = self.room_version(room_id).await.is_ok();
        if known && self.membership_of(room_id, user_id).await?.as_deref() == Some("join") {
            return Ok(());
        }
        self.check_patient_join(room_id, user_id).await?;
        let content = self.member_content(user_id, "join", reason).await?;
        if !known || !self.is_resident(room_id).await? {
            let mut servers = via.to_vec();
            if let Some(inviter) = self.inviter_server(room_id, user_id).await? {
                servers.push(inviter);
            }
            if let Some(s) = room_id.server_name() {
                servers.push(s.to_owned());
            }
            let mut seen = std::collections::HashSet::new();
            servers.retain(|s| seen.insert(s.clone()));
            if servers.is_empty() {
                return Err(Error::not_found(format!(
                    "Unknown room {room_id}; name a server to join it through"
                )));
            }
            return self.join_remote(room_id, user_id, &servers, content).await;
        }
        self.set_membership(room_id, user_id, user_id, content)
            .await?;
        Ok(())
    }

    pub async fn invite(
        &self,
        room_id: &RoomId,
        inviter: &UserId,
        invitee: &UserId,
        reason: Option<String>,
        is_direct: bool,
    ) -> Result<()> {
        self.users.ensure_not_suspended(inviter)?;
        self.check_not_blocked(room_id, inviter.as_str(), "invite")
            .await?;
        self.require_joined(room_id, inviter).await?;
        self.users
            .check_account_action(
                inviter,
                AccountAction::Invite {
                    invitee: invitee.as_str(),
                },
                Some(invitee.as_str()),
            )
            .await?;
        let decision = self.policy.check_invite(&InviteRequest {
            room_id: room_id.as_str(),
            inviter: inviter.as_str(),
            invitee: invitee.as_str(),
        });
        (self.audit)
            .enforce(
                decision,
                "check_invite",
                inviter.as_str(),
                Some(invitee.as_str()),
            )
            .await?;
        let remote = invitee.server_name() != self.server_name;
        self.check_invite_permission(inviter, invitee).await?;
        if !remote
            && self
                .users
                .get_user(invitee)
                .await?
                .is_none_or(|u| u.deactivated)
        {
            return Err(Error::not_found(format!("Unknown user {invitee}")));
        }
        match self.membership_of(room_id, invitee).await?.as_deref() {
            Some("join") => {
                return Err(Error::forbidden(format!(
                    "{invitee} is already in the room"
                )));
            }
            Some("ban") => {
                return Err(Error::forbidden(format!(
                    "{invitee} is banned from the room"
                )));
            }
            _ => {}
        }
        let mut content = self.member_content(invitee, "invite", reason).await?;
        if is_direct {
            content["is_direct"] = true.into();
        }
        if remote {
            self.invite_remote(room_id, inviter, invitee, content)
                .await?;
        } else {
            self.set_membership(room_id, inviter, invitee, content)
                .await?;
        }
        let e = entry(inviter.as_str(), action::ROOM_INVITE, Outcome::Success);
        self.audit
            .record(
                e.target(invitee.as_str())
                    .detail("room_id", room_id.as_str()),
            )
            .await?;
        Ok(())
    }

    /// The invitee's own invite permission config (MSC4155 `m.invite_permission_config`
    /// global account data): a refusal is audited and answered 403 `M_INVITE_BLOCKED` naming
    /// the rule `invite_blocked_by_invitee`. Local invitees only (remote users' account data is
    /// their server's to apply).
    pub(super) async fn check_invite_permission(
        &self,
        inviter: &UserId,
        invitee: &UserId,
    ) -> Result<()> {
        if invitee.server_name() != self.server_name {
            return Ok(());
        }
        let mut config = None;
        for ty in INVITE_PERMISSION_TYPES {
            if let Some(c) = self.account_data.read_global(invitee, ty).await? {
                config = Some(c);
                break;
            }
        }
        // Unparseable content blocks nothing: the client's own mistake must not lock users out.
        let Some(config) = config.and_then(|c| serde_json::from_str::<Value>(&c).ok()) else {
            return Ok(());
        };
        let Err(denial) = invite_permission(&config, inviter.as_str()) else {
            return Ok(());
        };
        (self.audit)
            .record_denial(
                &denial,
                "invite_permission",
                inviter.as_str(),
                Some(invitee.as_str()),
            )
            .await?;
        tracing::warn!(target: "handover::policy", rule = %denial.rule, "policy denial");
        Err(Error::new(
            StatusCode::FORBIDDEN,
            ErrorKind::InviteBlocked,
            format!("Denied by rule `{}`: {}", denial.rule, denial.reason),
        ))
    }

    /// Leaves (or rejects an invite to) a room.
    pub async fn leave(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        let membership = self.membership_of(room_id, user_id).await?;
        match membership.as_deref() {
            Some("join" | "invite" | "knock") => {}
            Some("leave") => return Ok(()),
            _ => return Err(Error::forbidden("You are not in this room")),
        }
        if membership.as_deref() == Some("invite") && !self.is_resident(room_id).await? {
            // An invite to a room on another server is rejected through the inviting server.
            let via: Vec<_> = self
                .inviter_server(room_id, user_id)
                .await?
                .into_iter()
                .collect();
            return self.leave_remote(room_id, user_id, &via).await;
        }
        let content = self.member_content(user_id, "leave", reason).await?;
        self.set_membership(room_id, user_id, user_id, content)
            .await?;
        Ok(())
    }

    pub async fn kick(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        self.require_joined(room_id, sender).await?;
        if !matches!(
            self.membership_of(room_id, target).await?.as_deref(),
            Some("join" | "invite" | "knock")
        ) {
            return Err(Error::forbidden(format!("{target} is not in the room")));
        }
        let content = self.member_content(target, "leave", reason).await?;
        self.set_membership(room_id, sender, target, content)
            .await?;
        Ok(())
    }

    pub async fn ban(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        self.require_joined(room_id, sender).await?;
        let content = self.member_content(target, "ban", reason).await?;
        self.set_membership(room_id, sender, target, content)
            .await?;
        Ok(())
    }

    pub async fn unban(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        reason: Option<String>,
    ) -> Result<()> {
        self.require_joined(room_id, sender).await?;
        if self.membership_of(room_id, target).await?.as_deref() != Some("ban") {
            return Err(Error::forbidden(format!("{target} is not banned")));
        }
        let content = self.member_content(target, "leave", reason).await?;
        self.set_membership(room_id, sender, target, content)
            .await?;
        Ok(())
    }

    /// Forgets a room the user has left: it disappears from their sync.
    pub async fn forget(&self, room_id: &RoomId, user_id: &UserId) -> Result<()> {
        match self.membership_of(room_id, user_id).await?.as_deref() {
            None => return Err(Error::not_found("You have never been in this room")),
            Some("join" | "invite" | "knock") => {
                return Err(Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::Unknown,
                    "Leave the room before forgetting it",
                ));
            }
            _ => {}
        }
        let store = self.store.clone();
        let (r, u) = (room_id.to_owned(), user_id.to_owned());
        blocking(move || Ok(store.forget(r.as_str(), u.as_str())?)).await
    }

    /// The user's current membership in the room, from the store.
    pub async fn membership_of(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<String>> {
        let store = self.store.clone();
        let (r, u) = (room_id.to_owned(), user_id.to_owned());
        Ok(
            blocking(move || Ok(store.membership(r.as_str(), u.as_str())?))
                .await?
                .map(|m| m.membership),
        )
    }

    /// `M_FORBIDDEN` unless the user is joined to the room (`M_NOT_FOUND` for unknown rooms is
    /// deliberately not revealed: a non-member cannot probe which rooms exist).
    pub async fn require_joined(&self, room_id: &RoomId, user_id: &UserId) -> Result<()> {
        if self.membership_of(room_id, user_id).await?.as_deref() == Some("join") {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "{user_id} is not in room {room_id}"
            )))
        }
    }

    /// Rooms the user is joined to.
    pub async fn joined_rooms(&self, user_id: &UserId) -> Result<Vec<ruma::OwnedRoomId>> {
        let store = self.store.clone();
        let u = user_id.to_owned();
        let rows = blocking(move || Ok(store.memberships_of_user(u.as_str())?)).await?;
        Ok(rows
            .into_iter()
            .filter(|m| m.membership == "join")
            .map(|m| m.room_id)
            .collect())
    }

    /// Users joined to some room `user_id` is joined to, and the user themself (presence).
    pub async fn users_sharing_rooms(
        &self,
        user_id: &UserId,
    ) -> Result<std::collections::HashSet<ruma::OwnedUserId>> {
        let rooms = self.joined_rooms(user_id).await?;
        let store = self.store.clone();
        let mut out: std::collections::HashSet<_> = blocking(move || {
            let mut users = Vec::new();
            for r in rooms {
                users.extend(store.members(r.as_str())?);
            }
            Ok(users)
        })
        .await?
        .into_iter()
        .filter(|m| m.membership == "join")
        .map(|m| m.user_id)
        .collect();
        out.insert(user_id.to_owned());
        Ok(out)
    }

    /// Whether the two users are both joined to at least one room.
    pub async fn shares_room(&self, a: &UserId, b: &UserId) -> Result<bool> {
        let theirs = self.joined_rooms(b).await?;
        Ok(self
            .joined_rooms(a)
            .await?
            .iter()
            .any(|r| theirs.contains(r)))
    }

    /// Every membership row of a room (all states), for device-list tracking. No access check:
    /// internal callers only.
    pub async fn member_rows(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<crate::store::rooms::MembershipRow>> {
        let store = self.store.clone();
        let r = room_id.to_owned();
        blocking(move || Ok(store.members(r.as_str())?)).await
    }

    pub async fn memberships(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<crate::store::rooms::MembershipRow>> {
        let store = self.store.clone();
        let u = user_id.to_owned();
        blocking(move || Ok(store.memberships_of_user(u.as_str())?)).await
    }
}

impl super::RoomService {
    /// The server of whoever invited `user_id` to the room, if they are invited.
    /// Patient confinement: a patient joins only a room a staff member invited them to
    /// (policy rule `patient_join_needs_staff_invite`). Staff joins cost one read.
    async fn check_patient_join(&self, room_id: &RoomId, user_id: &UserId) -> Result<()> {
        if self.users.account_kind(user_id).await? != AccountKind::Patient {
            return Ok(());
        }
        let inviter = match self.pending_inviter(room_id, user_id).await? {
            None => Inviter::None,
            Some(u) if u.server_name() == self.server_name => {
                Inviter::Local(self.users.account_kind(&u).await?)
            }
            Some(_) => Inviter::Remote,
        };
        let action = AccountAction::Join {
            room_id: room_id.as_str(),
            inviter,
        };
        self.users
            .check_account_action(user_id, action, Some(room_id.as_str()))
            .await
    }

    /// The sender of `user_id`'s pending invite to `room_id`, if any.
    async fn pending_inviter(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<ruma::OwnedUserId>> {
        let store = self.store.clone();
        let (r, u) = (room_id.to_string(), user_id.to_string());
        blocking(move || {
            let Some(row) = store.membership(&r, &u)? else {
                return Ok(None);
            };
            if row.membership != "invite" {
                return Ok(None);
            }
            Ok(store.get_event(row.event_id.as_str())?.map(|e| e.sender))
        })
        .await
    }

    pub(in crate::service::rooms) async fn inviter_server(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<OwnedServerName>> {
        let store = self.store.clone();
        let (r, u) = (room_id.to_string(), user_id.to_string());
        blocking(move || {
            let Some(row) = store.membership(&r, &u)? else {
                return Ok(None);
            };
            if row.membership != "invite" {
                return Ok(None);
            }
            Ok(store
                .get_event(row.event_id.as_str())?
                .map(|e| e.sender.server_name().to_owned()))
        })
        .await
    }
}
