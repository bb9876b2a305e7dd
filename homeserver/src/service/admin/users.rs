//! Accounts: Synapse's users v2 list / query / create-or-modify, deactivation, password reset,
//! the admin flag, devices, whois and joined rooms.

use ruma::{OwnedDeviceId, OwnedRoomId, UserId};
use serde_json::json;

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::admin::{AdminUserRow, UserListQuery};
use crate::store::threepids::Threepid;
use crate::store::users::DeviceRecord;

/// One account with its email addresses (Synapse's `GET /_synapse/admin/v2/users/{userId}`).
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub row: AdminUserRow,
    pub threepids: Vec<Threepid>,
    /// Staff or patient (Handover's own field, docs/IDENTITY.md "Patient accounts").
    pub account_kind: handover_policy::AccountKind,
}

/// The changes of `PUT /_synapse/admin/v2/users/{userId}`; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserUpsert {
    pub password: Option<String>,
    pub logout_devices: bool,
    pub displayname: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    /// (medium, address) pairs; only the account's current set is accepted (addresses are bound
    /// through email validation, never by assertion).
    pub threepids: Option<Vec<(String, String)>>,
    pub admin: Option<bool>,
    pub deactivated: Option<bool>,
    pub locked: Option<bool>,
    /// Handover's `account_kind` (staff / patient).
    pub account_kind: Option<handover_policy::AccountKind>,
}

impl AdminService {
    pub async fn list_users(
        &self,
        who: &Session,
        q: UserListQuery,
    ) -> Result<(Vec<AdminUserRow>, u64)> {
        self.authorize(who, action::USERS_LIST, None).await?;
        let store = self.store.clone();
        let page = blocking(move || Ok(store.list_users(&q)?)).await?;
        let server = self.users.server_name().to_owned();
        self.audited(who, action::USERS_LIST, &server, None).await?;
        Ok(page)
    }

    pub async fn user_details(&self, who: &Session, user_id: &UserId) -> Result<UserDetails> {
        self.authorize(who, action::USER_GET, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        let d = self.load_details(user_id).await?;
        let d = d.ok_or_else(|| Error::not_found("User not found"))?;
        self.audited(who, action::USER_GET, user_id.as_str(), None)
            .await?;
        Ok(d)
    }

    pub(super) async fn load_details(&self, user_id: &UserId) -> Result<Option<UserDetails>> {
        let (store, threepids) = (self.store.clone(), self.threepids.clone());
        let uid = user_id.to_owned();
        let found = blocking(move || {
            let Some(row) = store.admin_user(uid.as_str())? else {
                return Ok(None);
            };
            let threepids = threepids.threepids_of(uid.as_str())?;
            Ok(Some((row, threepids)))
        })
        .await?;
        let Some((row, threepids)) = found else {
            return Ok(None);
        };
        let account_kind = self.users.account_kind(user_id).await?;
        Ok(Some(UserDetails {
            row,
            threepids,
            account_kind,
        }))
    }

    /// Creates the account when it does not exist (answer `true`), otherwise applies the changes.
    /// Checks everything it can before changing anything.
    pub async fn upsert_user(
        &self,
        who: &Session,
        user_id: &UserId,
        up: UserUpsert,
    ) -> Result<(bool, UserDetails)> {
        self.authorize(who, action::USER_MODIFY, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if let Some(p) = &up.password {
            self.users.check_password_strength(p)?;
        }
        if let Some(Some(url)) = &up.avatar_url
            && !url.is_empty()
            && !url.starts_with("mxc://")
        {
            return Err(Error::invalid_param("avatar_url must be an mxc:// URI"));
        }
        let existing = self.load_details(user_id).await?;
        if let (Some(wanted), Some(d)) = (&up.threepids, &existing) {
            let mut have: Vec<(String, String)> = (d.threepids.iter())
                .map(|t| (t.medium.clone(), t.address.clone()))
                .collect();
            let mut wanted = wanted.clone();
            have.sort();
            wanted.sort();
            if have != wanted {
                return Err(Error::invalid_param(
                    "threepids cannot be changed here: addresses are bound by email validation",
                ));
            }
        } else if up.threepids.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::invalid_param(
                "threepids cannot be set here: addresses are bound by email validation",
            ));
        }
        if existing.as_ref().is_some_and(|d| d.row.deactivated)
            && up.deactivated == Some(false)
            && up.password.is_none()
        {
            return Err(Error::invalid_param(
                "Reactivating an account needs a new password",
            ));
        }

        let created = existing.is_none();
        if created {
            if up.deactivated == Some(true) {
                return Err(Error::invalid_param("Cannot create a deactivated account"));
            }
            let admin = up.admin.unwrap_or(false);
            (self.users)
                .create_user(user_id.localpart(), up.password.as_deref(), admin, true)
                .await?;
        } else {
            if up.deactivated == Some(false) && existing.as_ref().is_some_and(|d| d.row.deactivated)
            {
                let (store, uid) = (self.store.clone(), user_id.to_owned());
                blocking(move || Ok(store.reactivate(uid.as_str())?)).await?;
            }
            if let Some(p) = &up.password {
                (self.users)
                    .admin_set_password(user_id, p, up.logout_devices)
                    .await?;
            }
            if let Some(a) = up.admin {
                self.store_flag(user_id, move |s, u| s.set_admin(u, a))
                    .await?;
            }
        }
        if let Some(name) = up.displayname.clone() {
            self.accounts.admin_set_displayname(user_id, name).await?;
        }
        if let Some(url) = up.avatar_url.clone() {
            let url = url.filter(|u| !u.is_empty()).map(ruma::OwnedMxcUri::from);
            self.accounts.admin_set_avatar_url(user_id, url).await?;
        }
        if let Some(l) = up.locked {
            self.apply_lock(user_id, l).await?;
        }
        if let Some(k) = up.account_kind {
            (self.users)
                .set_account_kind(who.user_id.as_str(), user_id, k)
                .await?;
        }
        if up.deactivated == Some(true) && !existing.as_ref().is_some_and(|d| d.row.deactivated) {
            self.accounts.deactivate_by_admin(user_id, false).await?;
        }
        let what = if created {
            action::USER_CREATE
        } else {
            action::USER_MODIFY
        };
        let changed = json!({
            "password": up.password.is_some(),
            "displayname": up.displayname.is_some(),
            "avatar_url": up.avatar_url.is_some(),
            "admin": up.admin,
            "deactivated": up.deactivated,
            "locked": up.locked,
            "account_kind": up.account_kind.map(|k| k.as_str()),
        });
        self.audited(who, what, user_id.as_str(), Some(("changed", changed)))
            .await?;
        let d = self.load_details(user_id).await?;
        Ok((
            created,
            d.ok_or_else(|| Error::not_found("User not found"))?,
        ))
    }

    async fn store_flag(
        &self,
        user_id: &UserId,
        f: impl FnOnce(&dyn crate::store::admin::AdminStore, &str) -> crate::store::StoreResult<bool>
        + Send
        + 'static,
    ) -> Result<()> {
        let (store, uid) = (self.store.clone(), user_id.to_owned());
        let found = blocking(move || Ok(f(store.as_ref(), uid.as_str())?)).await?;
        match found {
            true => Ok(()),
            false => Err(Error::not_found("User not found")),
        }
    }

    /// `POST /_synapse/admin/v1/deactivate/{userId}`: sessions gone, rooms left; with `erase`
    /// the profile, account data and filters are deleted and the account marked erased.
    pub async fn deactivate(&self, who: &Session, user_id: &UserId, erase: bool) -> Result<()> {
        self.authorize(who, action::USER_DEACTIVATE, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if self.load_details(user_id).await?.is_none() {
            return Err(Error::not_found("User not found"));
        }
        self.accounts.deactivate_by_admin(user_id, erase).await?;
        if erase {
            let (store, uid) = (self.store.clone(), user_id.to_owned());
            blocking(move || Ok(store.set_erased(uid.as_str())?)).await?;
        }
        self.audited(
            who,
            action::USER_DEACTIVATE,
            user_id.as_str(),
            Some(("erase", erase.into())),
        )
        .await?;
        Ok(())
    }

    pub async fn reset_password(
        &self,
        who: &Session,
        user_id: &UserId,
        new_password: &str,
        logout_devices: bool,
    ) -> Result<()> {
        self.authorize(who, action::USER_RESET_PASSWORD, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        (self.users)
            .admin_set_password(user_id, new_password, logout_devices)
            .await?;
        let d = ("logout_devices", logout_devices.into());
        self.audited(who, action::USER_RESET_PASSWORD, user_id.as_str(), Some(d))
            .await?;
        Ok(())
    }

    pub async fn is_admin(&self, who: &Session, user_id: &UserId) -> Result<bool> {
        Ok(self.user_details(who, user_id).await?.row.is_admin)
    }

    /// Grants or revokes the admin flag. An admin cannot revoke their own (Synapse refuses too),
    /// so a server is never left without the admin who made the call.
    pub async fn set_admin(&self, who: &Session, user_id: &UserId, admin: bool) -> Result<()> {
        self.authorize(who, action::USER_SET_ADMIN, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if !admin && who.user_id == user_id {
            return Err(Error::invalid_param("You may not demote yourself"));
        }
        self.store_flag(user_id, move |s, u| s.set_admin(u, admin))
            .await?;
        let d = ("admin", admin.into());
        self.audited(who, action::USER_SET_ADMIN, user_id.as_str(), Some(d))
            .await?;
        Ok(())
    }

    pub async fn devices(&self, who: &Session, user_id: &UserId) -> Result<Vec<DeviceRecord>> {
        self.authorize(who, action::USER_DEVICES, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if self.load_details(user_id).await?.is_none() {
            return Err(Error::not_found("User not found"));
        }
        let devices = self.users.list_devices(user_id).await?;
        self.audited(who, action::USER_DEVICES, user_id.as_str(), None)
            .await?;
        Ok(devices)
    }

    pub async fn delete_devices(
        &self,
        who: &Session,
        user_id: &UserId,
        device_ids: Vec<OwnedDeviceId>,
    ) -> Result<()> {
        self.authorize(who, action::USER_DEVICES_DELETE, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        let ids: Vec<String> = device_ids.iter().map(ToString::to_string).collect();
        self.users.admin_delete_devices(user_id, device_ids).await?;
        let d = ("device_ids", ids.into());
        self.audited(who, action::USER_DEVICES_DELETE, user_id.as_str(), Some(d))
            .await?;
        Ok(())
    }

    pub async fn whois(&self, who: &Session, user_id: &UserId) -> Result<Vec<DeviceRecord>> {
        self.authorize(who, action::USER_WHOIS, Some(user_id.as_str()))
            .await?;
        let devices = self.users.whois(who, user_id).await?;
        self.audited(who, action::USER_WHOIS, user_id.as_str(), None)
            .await?;
        Ok(devices)
    }

    pub async fn joined_rooms(&self, who: &Session, user_id: &UserId) -> Result<Vec<OwnedRoomId>> {
        self.authorize(who, action::USER_JOINED_ROOMS, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        let rooms = self.rooms.joined_rooms(user_id).await?;
        self.audited(who, action::USER_JOINED_ROOMS, user_id.as_str(), None)
            .await?;
        Ok(rooms)
    }
}

impl AdminService {
    /// `handover admin set-admin`: the operator at the console, audited as `admin-cli`.
    pub async fn cli_set_admin(&self, user: &str, admin: bool) -> Result<ruma::OwnedUserId> {
        let user_id = match user.starts_with('@') {
            true => Self::parse_user_id(user)?,
            false => self.users.user_id_for(user)?,
        };
        self.require_local(&user_id)?;
        self.store_flag(&user_id, move |s, u| s.set_admin(u, admin))
            .await?;
        let e = crate::service::audit::entry(
            crate::service::audit::ADMIN_CLI,
            action::USER_SET_ADMIN,
            handover_compliance::Outcome::Success,
        );
        self.audit
            .record(e.target(user_id.as_str()).detail("admin", admin))
            .await?;
        Ok(user_id)
    }

    /// A user's pushers (synapse-admin's "Pushers" tab).
    pub async fn user_pushers(
        &self,
        who: &Session,
        user_id: &UserId,
    ) -> Result<Vec<ruma::api::client::push::Pusher>> {
        self.authorize(who, action::USER_PUSHERS, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if self.load_details(user_id).await?.is_none() {
            return Err(Error::not_found("User not found"));
        }
        let pushers = self.push.pushers(user_id).await?;
        self.audited(who, action::USER_PUSHERS, user_id.as_str(), None)
            .await?;
        Ok(pushers)
    }
}
