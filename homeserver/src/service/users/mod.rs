//! Accounts, sessions (access tokens) and devices.

mod account;
mod admin_ops;
mod devices;
mod directory;
mod kind;
mod last_seen;
mod login;
mod oauth_uia;
mod observer;
mod password;
mod profile;
pub mod profile_fields;
pub use self::profile::Profile;
mod refresh;
mod registration_token;
mod restrictions;
mod revoke;
mod session_limits;
pub use self::restrictions::{Flags as RestrictionFlags, Restrictions, locked_error};
pub use self::session_limits::{SessionEnd, SessionLimits};
mod password_uia;
mod token;
mod whois;

use std::net::IpAddr;
use std::sync::Arc;

use handover_compliance::Outcome;
use handover_policy::{Policy, RegistrationRequest};
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::{OwnedDeviceId, OwnedUserId, UserId};

use self::last_seen::LastSeen;
pub use self::observer::DeviceObserver;
pub use self::password::{hash_password, verify_password};
pub(crate) use self::registration_token::constant_time_eq;
pub use self::token::{hash_token, new_token};
use super::audit::{self, AuditService, action, entry};
use super::blocking;
use super::uiaa::UiaaService;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::StoreError;
use crate::store::users::{UserRecord, UserStore};

/// Who is making a request, resolved from the access token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub is_admin: bool,
    /// SHA-256 of the token, so logout can find it without keeping the secret around.
    pub token_hash: String,
    /// Set when an appservice's `as_token` made this request (the id of that appservice);
    /// `user_id` is then its sender or the user it masquerades as.
    pub appservice: Option<String>,
}

/// A new login: the tokens are returned to the client once and never stored in clear.
pub struct NewSession {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub access_token: String,
    /// Only when the client asked for one and `sessions.access_token_lifetime` is set.
    pub refresh_token: Option<String>,
    /// The access token's lifetime; `None`: it does not expire.
    pub expires_in_ms: Option<u64>,
}

pub struct UserService {
    config: Arc<Config>,
    store: Arc<dyn UserStore>,
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    /// Password-protected account operations (device deletion, password change, deactivation)
    /// run their user-interactive authentication here.
    uiaa: Arc<UiaaService>,
    last_seen: LastSeen,
    /// Told about removed devices (the key service: room-mates and other servers).
    device_observer: std::sync::OnceLock<Arc<dyn DeviceObserver>>,
    /// Locked and suspended accounts (set by the admin service).
    restrictions: Restrictions,
}

impl UserService {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn UserStore>,
        policy: Arc<dyn Policy>,
        audit: Arc<AuditService>,
        uiaa: Arc<UiaaService>,
    ) -> Self {
        Self {
            config,
            store,
            policy,
            audit,
            uiaa,
            last_seen: LastSeen::default(),
            device_observer: std::sync::OnceLock::new(),
            restrictions: Restrictions::default(),
        }
    }

    pub fn server_name(&self) -> &str {
        &self.config.server_name
    }

    /// Resolves an access token to its session, or `M_UNKNOWN_TOKEN`. Also records the device's
    /// last-seen time and address, at most once a minute per device (see `last_seen`).
    pub async fn authenticate(&self, token: &str, client_ip: Option<IpAddr>) -> Result<Session> {
        let token_hash = hash_token(token);
        let store = self.store.clone();
        let th = token_hash.clone();
        let owner = blocking(move || Ok(store.token_owner(&th)?)).await?;
        if let Some(o) = &owner
            && !o.deactivated
            && let Some(end) = self.session_limits().check(o, crate::store::now_ms())
        {
            return Err(self.end_limited_session(o, end).await);
        }
        match owner {
            Some(o) if o.expires_ts.is_some_and(|t| t <= crate::store::now_ms()) => {
                Err(refresh::expired())
            }
            Some(o) if !o.deactivated => {
                if self.restrictions.get(&o.user_id).locked {
                    return Err(restrictions::locked_error());
                }
                self.record_last_seen(&o.user_id, &o.device_id, client_ip);
                Ok(Session {
                    user_id: o.user_id,
                    device_id: o.device_id,
                    is_admin: o.is_admin,
                    token_hash,
                    appservice: None,
                })
            }
            Some(_) => Err(Error::new(
                StatusCode::FORBIDDEN,
                ErrorKind::UserDeactivated,
                "This account has been deactivated",
            )),
            None => Err(Error::unknown_token("Unknown or expired access token")),
        }
    }

    /// Validates a localpart and builds the full user id on this server.
    pub fn user_id_for(&self, localpart: &str) -> Result<OwnedUserId> {
        let localpart = localpart.to_lowercase();
        let valid = !localpart.is_empty()
            && localpart.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'));
        let id = UserId::parse(format!("@{localpart}:{}", self.config.server_name))
            .ok()
            .filter(|_| valid);
        match id {
            Some(id) if id.as_str().len() <= 255 => Ok(id),
            _ => Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidUsername,
                "User ID may only contain a-z, 0-9, and . _ = - / +",
            )),
        }
    }

    /// The user a login names: a full id on this server, or a localpart.
    pub fn parse_login_user(&self, user: &str) -> Result<OwnedUserId> {
        if user.starts_with('@') {
            let id = UserId::parse(user.to_lowercase())
                .map_err(|_| Error::forbidden("Invalid username or password"))?;
            if id.server_name().as_str() != self.config.server_name {
                return Err(Error::forbidden("Invalid username or password"));
            }
            Ok(id)
        } else {
            self.user_id_for(user)
                .map_err(|_| Error::forbidden("Invalid username or password"))
        }
    }

    /// Creates an account (after the caller has checked the registration mode and UIA).
    pub async fn create_user(
        &self,
        localpart: &str,
        password: Option<&str>,
        is_admin: bool,
        by_admin: bool,
    ) -> Result<OwnedUserId> {
        let user_id = self.user_id_for(localpart)?;
        let (actor, act) = match by_admin {
            true => (audit::ADMIN_CLI, action::ADMIN_CREATE_USER),
            false => (user_id.as_str(), action::REGISTER),
        };
        let decision = self.policy.check_registration(&RegistrationRequest {
            localpart: user_id.localpart(),
            server_name: &self.config.server_name,
            by_admin,
        });
        self.audit
            .enforce(
                decision,
                "check_registration",
                actor,
                Some(user_id.as_str()),
            )
            .await?;
        if let Some(p) = password {
            self.check_password_strength(p)?;
        }
        let password = password.map(str::to_owned);
        let store = self.store.clone();
        let uid = user_id.clone();
        blocking(move || {
            let hash = password.as_deref().map(hash_password).transpose()?;
            let rec = UserRecord {
                user_id: uid.clone(),
                password_hash: hash,
                is_admin,
                deactivated: false,
                displayname: Some(uid.localpart().to_owned()),
                avatar_url: None,
            };
            match store.create_user(&rec) {
                Err(StoreError::Conflict(_)) => Err(Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::UserInUse,
                    "User ID already taken",
                )),
                other => Ok(other?),
            }
        })
        .await?;
        tracing::info!(user_id = %user_id, "account created");
        let e = entry(actor, act, Outcome::Success).target(user_id.as_str());
        self.audit.record(e.detail("admin", is_admin)).await?;
        Ok(user_id)
    }

    pub fn check_password_strength(&self, password: &str) -> Result<()> {
        if password.chars().count() < self.config.registration.min_password_length {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::WeakPassword,
                format!(
                    "Password must be at least {} characters",
                    self.config.registration.min_password_length
                ),
            ));
        }
        Ok(())
    }

    /// Checks a password; `M_FORBIDDEN` for an unknown user or wrong password (indistinguishable).
    pub async fn check_password(&self, user_id: &UserId, password: &str) -> Result<UserRecord> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let password = password.to_owned();
        let locked = self.restrictions.get(user_id).locked;
        blocking(move || {
            let user = store.get_user(uid.as_str())?;
            let denied = || Error::forbidden("Invalid username or password");
            let Some(user) = user else {
                // Hash anyway so response time does not reveal whether the account exists.
                let _ = hash_password(&password);
                return Err(denied());
            };
            if user.deactivated {
                return Err(Error::new(
                    StatusCode::FORBIDDEN,
                    ErrorKind::UserDeactivated,
                    "This account has been deactivated",
                ));
            }
            // One hash per attempt (argon2 is the cost of a login).
            let right = user
                .password_hash
                .as_deref()
                .is_some_and(|h| verify_password(&password, h));
            match (right, locked) {
                // Only after the password is right, so a lock does not reveal the account.
                (true, true) => Err(restrictions::locked_error()),
                (true, false) => Ok(user),
                _ => Err(denied()),
            }
        })
        .await
    }

    /// Starts a session on `device_id` (new random id if `None`), with a token that does not
    /// expire (see `start_session` for refresh tokens).
    pub async fn create_session(
        &self,
        user_id: &UserId,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
    ) -> Result<NewSession> {
        self.start_session(user_id, device_id, display_name, false)
            .await
    }

    pub async fn logout(&self, session: &Session) -> Result<()> {
        let store = self.store.clone();
        let th = session.token_hash.clone();
        blocking(move || Ok(store.delete_token(&th)?)).await?;
        self.devices_removed(&session.user_id, vec![session.device_id.clone()])
            .await;
        let e = entry(session.user_id.as_str(), action::LOGOUT, Outcome::Success);
        self.audit
            .record(e.detail("device_id", session.device_id.as_str()))
            .await?;
        Ok(())
    }

    pub async fn logout_all(&self, user_id: &UserId) -> Result<()> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let removed = self.device_ids(user_id).await?;
        blocking(move || Ok(store.delete_devices(uid.as_str(), None)?)).await?;
        self.devices_removed(user_id, removed).await;
        let e = entry(user_id.as_str(), action::LOGOUT_ALL, Outcome::Success);
        self.audit.record(e).await?;
        Ok(())
    }

    pub async fn get_user(&self, user_id: &UserId) -> Result<Option<UserRecord>> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        blocking(move || Ok(store.get_user(uid.as_str())?)).await
    }
}

/// Registers `localpart` with `password` and logs in a new device: (session, access token).
#[cfg(test)]
pub(crate) async fn test_login(
    users: &UserService,
    localpart: &str,
    password: &str,
) -> (Session, String) {
    let user_id = match users
        .create_user(localpart, Some(password), false, false)
        .await
    {
        Ok(id) => id,
        Err(_) => users.user_id_for(localpart).unwrap(),
    };
    let new = users.create_session(&user_id, None, None).await.unwrap();
    let session = users.authenticate(&new.access_token, None).await.unwrap();
    (session, new.access_token)
}
