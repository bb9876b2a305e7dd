//! Global profile (display name, avatar). Anyone may read a local user's profile; only the
//! user may change it.
//!
//! Not done here: updating the user's `m.room.member` events in joined rooms (rooms owner).

use handover_policy::ProfileUpdate;
use ruma::{OwnedMxcUri, UserId};

use super::{Session, UserService};
use crate::error::{Error, Result};
use crate::service::blocking;

/// Synapse's limit; long names break clients' layouts and bloat every member event.
pub const MAX_DISPLAYNAME_CHARS: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    /// Extended fields (spec v1.16): `m.tz` and custom keys (`profile_fields.rs`).
    pub fields: std::collections::BTreeMap<String, serde_json::Value>,
}

impl UserService {
    /// A local user's profile, or 404 `M_NOT_FOUND` (unknown user, or a remote one: there is no
    /// federation yet).
    pub async fn get_profile(&self, user_id: &UserId) -> Result<Profile> {
        let not_found = || Error::not_found("Profile not found");
        if user_id.server_name().as_str() != self.config.server_name {
            return Err(not_found());
        }
        let user = self.get_user(user_id).await?.ok_or_else(not_found)?;
        Ok(Profile {
            displayname: user.displayname,
            avatar_url: user.avatar_url,
            fields: self.profile_fields(user_id).await?,
        })
    }

    /// Whether the policy lets this user change `field` of their own profile at all (the
    /// `/capabilities` answer): asked as a removal, which no content rule objects to, so only
    /// rules about the change itself (the display-name lock) count. A question, not an action:
    /// not audited.
    pub fn may_change_profile_field(&self, user_id: &UserId, field: &str) -> bool {
        self.policy
            .check_profile_update(&ProfileUpdate {
                user_id: user_id.as_str(),
                field,
                value: None,
                by_admin: false,
            })
            .is_ok()
    }

    /// Sets (or with `None` / "" removes) the requester's display name.
    pub async fn set_displayname(
        &self,
        session: &Session,
        user_id: &UserId,
        displayname: Option<String>,
    ) -> Result<()> {
        only_self(session, user_id)?;
        self.ensure_not_suspended(user_id)?;
        let name = displayname.filter(|n| !n.is_empty());
        if let Some(n) = &name
            && n.chars().count() > MAX_DISPLAYNAME_CHARS
        {
            return Err(Error::invalid_param(format!(
                "Display name is too long (max {MAX_DISPLAYNAME_CHARS} characters)"
            )));
        }
        let decision = self.policy.check_profile_update(&ProfileUpdate {
            user_id: user_id.as_str(),
            field: "displayname",
            value: name.as_deref(),
            by_admin: false,
        });
        let actor = user_id.as_str();
        (self.audit)
            .enforce(decision, "check_profile_update", actor, Some(actor))
            .await?;
        let store = self.store.clone();
        let uid = user_id.to_owned();
        blocking(move || Ok(store.set_profile(uid.as_str(), Some(name.as_deref()), None)?)).await
    }

    /// An admin command sets (or with `None` / "" removes) a local user's display name: the way
    /// names are set when `[policy] lock_display_names` is on. Other rules (e.g. no NHS numbers)
    /// still apply.
    pub async fn admin_set_displayname(
        &self,
        user_id: &UserId,
        displayname: Option<String>,
    ) -> Result<()> {
        let name = displayname.filter(|n| !n.is_empty());
        if let Some(n) = &name
            && n.chars().count() > MAX_DISPLAYNAME_CHARS
        {
            return Err(Error::invalid_param(format!(
                "Display name is too long (max {MAX_DISPLAYNAME_CHARS} characters)"
            )));
        }
        let decision = self.policy.check_profile_update(&ProfileUpdate {
            user_id: user_id.as_str(),
            field: "displayname",
            value: name.as_deref(),
            by_admin: true,
        });
        (self.audit)
            .enforce(
                decision,
                "check_profile_update",
                crate::service::audit::ADMIN_CLI,
                Some(user_id.as_str()),
            )
            .await?;
        let store = self.store.clone();
        let uid = user_id.to_owned();
        blocking(move || Ok(store.set_profile(uid.as_str(), Some(name.as_deref()), None)?)).await
    }

    /// Sets (or with `None` / "" removes) the requester's avatar; it must be an `mxc://` URI.
    pub async fn set_avatar_url(
        &self,
        session: &Session,
        user_id: &UserId,
        avatar_url: Option<OwnedMxcUri>,
    ) -> Result<()> {
        only_self(session, user_id)?;
        self.ensure_not_suspended(user_id)?;
        let url = avatar_url.filter(|u| !u.as_str().is_empty());
        if let Some(u) = &url
            && !u.is_valid()
        {
            return Err(Error::invalid_param("avatar_url must be an mxc:// URI"));
        }
        // The same hook as the display name and every extended field: a rule on avatars (or on
        // any profile change) applies here too.
        let decision = self.policy.check_profile_update(&ProfileUpdate {
            user_id: user_id.as_str(),
            field: "avatar_url",
            value: url.as_ref().map(|u| u.as_str()),
            by_admin: false,
        });
        let actor = user_id.as_str();
        (self.audit)
            .enforce(decision, "check_profile_update", actor, Some(actor))
            .await?;
        let store = self.store.clone();
        let uid = user_id.to_owned();
        blocking(move || {
            let url = url.as_ref().map(|u| u.as_str());
            Ok(store.set_profile(uid.as_str(), None, Some(url))?)
        })
        .await
    }
}

fn only_self(session: &Session, user_id: &UserId) -> Result<()> {
    if session.user_id != user_id {
        return Err(Error::forbidden("You may only change your own profile"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;
    use ruma::{owned_mxc_uri, user_id};

    use super::*;
    use crate::service::test_services;
    use crate::service::users::test_login;

    #[tokio::test]
    async fn only_the_user_may_change_their_profile() {
        let (s, _d) = test_services();
        let (alice, _) = test_login(&s.users, "alice", "correct horse").await;
        let (bob, _) = test_login(&s.users, "bob", "correct horse").await;
        let err = s
            .users
            .set_displayname(&bob, &alice.user_id, Some("Mallory".into()))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let err = s
            .users
            .set_avatar_url(&bob, &alice.user_id, Some(owned_mxc_uri!("mxc://l/x")))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let p = s.users.get_profile(&alice.user_id).await.unwrap();
        assert_eq!(p.displayname.as_deref(), Some("alice"));
        assert_eq!(p.avatar_url, None);
    }

    #[tokio::test]
    async fn set_validate_and_clear_profile() {
        let (s, _d) = test_services();
        let (me, _) = test_login(&s.users, "alice", "correct horse").await;
        let uid = me.user_id.clone();
        s.users
            .set_displayname(&me, &uid, Some("Dr Alice".into()))
            .await
            .unwrap();
        s.users
            .set_avatar_url(&me, &uid, Some(owned_mxc_uri!("mxc://localhost/abc")))
            .await
            .unwrap();
        let p = s.users.get_profile(&uid).await.unwrap();
        assert_eq!(p.displayname.as_deref(), Some("Dr Alice"));
        assert_eq!(p.avatar_url.as_deref(), Some("mxc://localhost/abc"));

        let long = "a".repeat(MAX_DISPLAYNAME_CHARS + 1);
        let err = s
            .users
            .set_displayname(&me, &uid, Some(long))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));
        let ok = "é".repeat(MAX_DISPLAYNAME_CHARS); // characters, not bytes
        s.users.set_displayname(&me, &uid, Some(ok)).await.unwrap();
        let bad = OwnedMxcUri::from("https://example.org/a.png");
        let err = s
            .users
            .set_avatar_url(&me, &uid, Some(bad))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));

        // "" clears, as Element sends it.
        s.users
            .set_displayname(&me, &uid, Some(String::new()))
            .await
            .unwrap();
        s.users
            .set_avatar_url(&me, &uid, Some(OwnedMxcUri::from("")))
            .await
            .unwrap();
        assert_eq!(s.users.get_profile(&uid).await.unwrap(), Profile::default());
    }

    #[tokio::test]
    async fn unknown_and_remote_users_are_not_found() {
        let (s, _d) = test_services();
        for id in [
            user_id!("@nobody:localhost"),
            user_id!("@alice:elsewhere.org"),
        ] {
            let err = s.users.get_profile(id).await.unwrap_err();
            assert!(matches!(err.kind(), Some(ErrorKind::NotFound)), "{id}");
        }
    }
}
