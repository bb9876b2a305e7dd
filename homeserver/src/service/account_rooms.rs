//! Account changes that reach into rooms: a new display name or avatar is announced with fresh
//! member events in every joined room (clients show names from member events), and a deactivated
//! account leaves every room it is in.

use std::sync::Arc;

use ruma::api::client::uiaa::AuthData;
use ruma::events::StateEventType;
use ruma::{OwnedMxcUri, UserId};

use super::media::MediaBinder;
use super::rooms::{EventSpec, RoomService};
use super::users::{Session, UserService};
use crate::error::Result;

pub struct AccountService {
    users: Arc<UserService>,
    rooms: Arc<RoomService>,
    /// Avatars become readable by everyone signed in (clinical media room binding).
    media_binder: Arc<MediaBinder>,
}

impl AccountService {
    pub fn new(
        users: Arc<UserService>,
        rooms: Arc<RoomService>,
        media_binder: Arc<MediaBinder>,
    ) -> Self {
        Self {
            users,
            rooms,
            media_binder,
        }
    }

    pub async fn set_displayname(
        &self,
        session: &Session,
        user_id: &UserId,
        name: Option<String>,
    ) -> Result<()> {
        self.users.set_displayname(session, user_id, name).await?;
        self.refresh_member_events(user_id).await
    }

    pub async fn set_avatar_url(
        &self,
        session: &Session,
        user_id: &UserId,
        url: Option<OwnedMxcUri>,
    ) -> Result<()> {
        self.users
            .set_avatar_url(session, user_id, url.clone())
            .await?;
        if let Some(url) = &url {
            self.media_binder.bind_profile(user_id, url).await;
        }
        self.refresh_member_events(user_id).await
    }

    /// Deactivation: the account part (UIA, sessions, profile), then leave every room.
    pub async fn deactivate(
        &self,
        session: &Session,
        erase: bool,
        auth: Option<&AuthData>,
    ) -> Result<()> {
        self.users.deactivate_account(session, erase, auth).await?;
        self.leave_all_rooms(&session.user_id).await
    }

    /// Deactivation by a server admin (the admin service has checked the flag): no UIA.
    pub async fn deactivate_by_admin(&self, user_id: &UserId, erase: bool) -> Result<()> {
        self.users.deactivate(user_id, erase).await?;
        self.leave_all_rooms(user_id).await
    }

    /// A display name set by a server admin, announced in every joined room.
    pub async fn admin_set_displayname(
        &self,
        user_id: &UserId,
        name: Option<String>,
    ) -> Result<()> {
        self.users.admin_set_displayname(user_id, name).await?;
        self.refresh_member_events(user_id).await
    }

    /// An avatar set by a server admin, bound for reading and announced in every joined room.
    pub async fn admin_set_avatar_url(
        &self,
        user_id: &UserId,
        url: Option<OwnedMxcUri>,
    ) -> Result<()> {
        self.users
            .admin_set_avatar_url(user_id, url.clone())
            .await?;
        if let Some(url) = &url {
            self.media_binder.bind_profile(user_id, url).await;
        }
        self.refresh_member_events(user_id).await
    }

    async fn leave_all_rooms(&self, user_id: &UserId) -> Result<()> {
        for m in self.rooms.memberships(user_id).await? {
            if matches!(m.membership.as_str(), "join" | "invite" | "knock")
                && let Err(e) = self.rooms.leave(&m.room_id, user_id, None).await
            {
                tracing::warn!(room_id = %m.room_id, error = %e, "could not leave room on deactivation");
            }
        }
        Ok(())
    }

    /// A new member event carrying the current profile in each joined room.
    async fn refresh_member_events(&self, user_id: &UserId) -> Result<()> {
        let profile = self.users.get_user(user_id).await?;
        for room_id in self.rooms.joined_rooms(user_id).await? {
            let mut content = serde_json::json!({ "membership": "join" });
            if let Some(p) = &profile {
                if let Some(d) = &p.displayname {
                    content["displayname"] = d.clone().into();
                }
                if let Some(a) = &p.avatar_url {
                    content["avatar_url"] = a.clone().into();
                }
            }
            let spec = EventSpec::state(StateEventType::RoomMember, user_id.as_str(), content);
            if let Err(e) = self.rooms.send_state(&room_id, user_id, spec).await {
                tracing::warn!(room_id = %room_id, error = %e, "could not update member event");
            }
        }
        Ok(())
    }
}
