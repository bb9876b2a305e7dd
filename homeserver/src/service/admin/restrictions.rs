//! Locking and suspending accounts (spec v1.18 `/_matrix/client/v1/admin/{lock,suspend}` and
//! Synapse's equivalents). Locked: no login, every token refused with `M_USER_LOCKED`.
//! Suspended: read-only, writes refused with `M_USER_SUSPENDED` (see users/restrictions.rs).

use ruma::UserId;

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;

impl AdminService {
    pub async fn is_locked(&self, who: &Session, user_id: &UserId) -> Result<bool> {
        Ok(self.user_details(who, user_id).await?.row.locked)
    }

    pub async fn is_suspended(&self, who: &Session, user_id: &UserId) -> Result<bool> {
        Ok(self.user_details(who, user_id).await?.row.suspended)
    }

    pub async fn set_locked(&self, who: &Session, user_id: &UserId, locked: bool) -> Result<()> {
        self.authorize(who, action::USER_LOCK, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if locked && who.user_id == user_id {
            return Err(Error::invalid_param("You may not lock your own account"));
        }
        self.apply_lock(user_id, locked).await?;
        let d = ("locked", locked.into());
        self.audited(who, action::USER_LOCK, user_id.as_str(), Some(d))
            .await?;
        Ok(())
    }

    pub async fn set_suspended(
        &self,
        who: &Session,
        user_id: &UserId,
        suspended: bool,
    ) -> Result<()> {
        self.authorize(who, action::USER_SUSPEND, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if suspended && who.user_id == user_id {
            return Err(Error::invalid_param("You may not suspend your own account"));
        }
        let (store, uid) = (self.store.clone(), user_id.to_owned());
        let found = blocking(move || Ok(store.set_suspended(uid.as_str(), suspended)?)).await?;
        if !found {
            return Err(Error::not_found("User not found"));
        }
        let r = self.users.restrictions();
        let mut flags = r.get(user_id);
        flags.suspended = suspended;
        r.set(user_id, flags);
        let d = ("suspended", suspended.into());
        self.audited(who, action::USER_SUSPEND, user_id.as_str(), Some(d))
            .await?;
        Ok(())
    }

    /// Store first, then the in-memory check, so a crash in between never leaves a lock that
    /// a restart would forget.
    pub(super) async fn apply_lock(&self, user_id: &UserId, locked: bool) -> Result<()> {
        let (store, uid) = (self.store.clone(), user_id.to_owned());
        let found = blocking(move || Ok(store.set_locked(uid.as_str(), locked)?)).await?;
        if !found {
            return Err(Error::not_found("User not found"));
        }
        let r = self.users.restrictions();
        let mut flags = r.get(user_id);
        flags.locked = locked;
        r.set(user_id, flags);
        Ok(())
    }
}
