//! Registration through the client API (`POST /register`) and the email addresses it proves.
//!
//! The UIA flows follow `[registration]`: `open` asks for nothing (`m.login.dummy`), `token` for
//! a registration token; with `allowed_email_domains` set, every flow also needs
//! `m.login.email.identity`: an address in those domains (rule `email_domain_not_allowed`),
//! proven by an emailed link (`email.rs`), which becomes the account's 3PID
//! (`GET /account/3pid`). Accounts made by `handover admin create-user` skip all of this.

mod address;
mod email;
mod mailer;
mod tokens;

use self::tokens::TOKEN_NOTE;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use handover_compliance::Outcome;
use handover_policy::Policy;
use http::StatusCode;
use ruma::api::client::uiaa::{AuthData, AuthFlow, AuthType};
use ruma::api::error::ErrorKind;
use ruma::thirdparty::{Medium, ThirdPartyIdentifierInit};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedDeviceId, OwnedUserId, UInt, UserId};

pub use self::address::normalise_email;
pub use self::email::{SUBMIT_TOKEN_PATH, TokenRequested};
use self::mailer::Mailer;
use super::appservice::AppserviceService;
use super::audit::{AuditService, entry};
use super::blocking;
use super::uiaa::UiaaService;
use super::users::{NewSession, Session, UserService};
use crate::config::{Config, RegistrationMode};
use crate::error::{Error, Result};
use crate::store::StoreError;
use crate::store::now_ms;
use crate::store::registration_tokens::RegistrationTokenStore;
use crate::store::threepids::{ThreepidStore, Validation};

/// The UIA note carrying the validated email session through a multi-stage flow.
const EMAIL_SID: &str = "email_sid";

/// A `POST /register` request, after the handler's rate limit. No `Debug`: it holds the password.
#[derive(Clone, Default)]
pub struct Registration {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<AuthData>,
    pub device_id: Option<OwnedDeviceId>,
    pub initial_device_display_name: Option<String>,
    pub inhibit_login: bool,
    /// The client supports refresh tokens (spec `refresh_token: true`).
    pub refresh_token: bool,
    /// `type: m.login.application_service`: an appservice registering a user of its namespace.
    pub appservice_login: bool,
    /// Who is asking, when the request carried a token (an appservice's `as_token` included).
    pub session: Option<Session>,
}

pub struct Registered {
    pub user_id: OwnedUserId,
    /// `None` with `inhibit_login`.
    pub session: Option<NewSession>,
}

pub struct RegistrationService {
    config: Arc<Config>,
    users: Arc<UserService>,
    uiaa: Arc<UiaaService>,
    store: Arc<dyn ThreepidStore>,
    tokens: Arc<dyn RegistrationTokenStore>,
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    appservices: Arc<AppserviceService>,
    mailer: Option<Mailer>,
    lifetime_ms: i64,
}

pub struct RegistrationDeps {
    pub users: Arc<UserService>,
    pub uiaa: Arc<UiaaService>,
    pub store: Arc<dyn ThreepidStore>,
    pub tokens: Arc<dyn RegistrationTokenStore>,
    pub policy: Arc<dyn Policy>,
    pub audit: Arc<AuditService>,
    pub appservices: Arc<AppserviceService>,
}

impl RegistrationService {
    pub fn new(config: Arc<Config>, d: RegistrationDeps) -> Result<Self> {
        let lifetime_ms = config
            .email
            .validation_lifetime_ms()
            .map_err(Error::internal)?;
        let mailer = Mailer::new(
            &config.email.sendmail_command,
            Duration::from_secs(config.email.timeout_secs),
            config.email.from_header(&config.server_name),
        );
        Ok(Self {
            mailer,
            lifetime_ms: i64::try_from(lifetime_ms).unwrap_or(i64::MAX),
            config,
            users: d.users,
            uiaa: d.uiaa,
            store: d.store,
            tokens: d.tokens,
            policy: d.policy,
            audit: d.audit,
            appservices: d.appservices,
        })
    }

    /// Registration through the API must prove an address in the allowed domains.
    pub fn email_required(&self) -> bool {
        !self.config.registration.allowed_email_domains.is_empty()
    }

    /// The UIA flows of `POST /register`; `M_FORBIDDEN` when registration is closed.
    pub fn flows(&self) -> Result<Vec<AuthFlow>> {
        // Without passwords, accounts come from the identity providers (or an admin) only.
        let closed = !self.config.identity.password_login;
        let mut stages = match self.config.registration.mode {
            _ if closed => {
                return Err(Error::forbidden(
                    "Registration is closed: sign in with your organisation's identity provider",
                ));
            }
            RegistrationMode::Closed => {
                return Err(Error::forbidden("Registration is disabled on this server"));
            }
            RegistrationMode::Open => vec![],
            RegistrationMode::Token => vec![AuthType::RegistrationToken],
        };
        if self.email_required() {
            stages.push(AuthType::EmailIdentity);
        }
        if stages.is_empty() {
            stages.push(AuthType::Dummy);
        }
        Ok(vec![AuthFlow::new(stages)])
    }

    /// `POST /register`: UIA, the account, its email address, and (unless inhibited) a login.
    pub async fn register(&self, r: Registration, ip: Option<IpAddr>) -> Result<Registered> {
        // Validate the username before the client spends effort on UIA stages.
        let localpart = r
            .username
            .clone()
            .unwrap_or_else(|| ruma::TransactionId::new().to_string().to_lowercase());
        let wanted = self.users.user_id_for(&localpart)?;
        if r.appservice_login {
            return self.register_for_appservice(r, &localpart, &wanted).await;
        }
        // Ids in an appservice's exclusive namespace are its alone (spec: 400 M_EXCLUSIVE,
        // before any UIA stage).
        let caller_as = r.session.as_ref().and_then(|s| s.appservice.as_deref());
        if let Some(owner) = self
            .appservices
            .registry()
            .exclusive_user_owner(&wanted, caller_as)
        {
            return Err(crate::service::appservice::exclusive(format!(
                "{wanted} is reserved by application service {}",
                owner.id()
            )));
        }
        let flows = self.flows()?;
        // Looked up before entering UIA: storage is async, the UIA check holds a lock.
        let email = match &r.auth {
            Some(AuthData::EmailIdentity(e)) => {
                self.validated_email(&e.thirdparty_id_creds).await?
            }
            _ => None,
        };
        // A token from the admin API is looked up before entering UIA too.
        let token = match &r.auth {
            Some(AuthData::RegistrationToken(t)) => Some(self.check_token(&t.token).await?),
            _ => None,
        };
        let token_ok = token.as_ref().is_some_and(|t| t.valid);
        let email_ok = email.is_some();
        let note = match (&token, email) {
            (Some(t), _) if t.valid => Some((TOKEN_NOTE, t.token.clone())),
            (_, Some(v)) => Some((EMAIL_SID, v.sid)),
            _ => None,
        };
        let checked = self.uiaa.check_with_notes(
            r.auth.as_ref(),
            &flows,
            &move |auth| {
                Ok(match auth {
                    AuthData::Dummy(_) => true,
                    AuthData::RegistrationToken(_) => token_ok,
                    AuthData::EmailIdentity(_) => email_ok,
                    _ => false,
                })
            },
            note,
        );
        let notes = match checked {
            Ok(notes) => notes,
            Err(e) => {
                // The token stage passed but other stages remain: hold one use for it.
                if let (Some(t), Error::Uiaa(_)) = (&token, &e) {
                    self.hold_token_use(t).await?;
                }
                return Err(e);
            }
        };
        let validation = match notes.get(EMAIL_SID) {
            Some(sid) => Some(self.live_validation(sid).await?.ok_or_else(|| {
                Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::ThreepidAuthFailed,
                    "The email validation has expired or was used; request a new link",
                )
            })?),
            _ => None,
        };
        if let Some(v) = &validation {
            // The rule as configured now, in case the domains changed since the link was sent.
            self.enforce_domain(&v.address, ip).await?;
            let (store, a) = (self.store.clone(), v.address.clone());
            if blocking(move || Ok(store.threepid_owner(email::MEDIUM_EMAIL, &a)?))
                .await?
                .is_some()
            {
                return Err(in_use());
            }
        }
        let spent = match notes.get(TOKEN_NOTE) {
            Some(t) => self.spend_token(t, token.as_ref()).await?,
            None => None,
        };
        let created = self
            .users
            .create_user(&localpart, r.password.as_deref(), false, false)
            .await;
        let user_id = match created {
            Ok(u) => u,
            Err(e) => {
                if let Some(t) = spent {
                    self.refund_token(&t).await;
                }
                return Err(e);
            }
        };
        if let Some(v) = validation {
            self.bind_email(&user_id, v).await?;
        }
        let session = match r.inhibit_login {
            true => None,
            false => Some(
                self.users
                    .start_session(
                        &user_id,
                        r.device_id,
                        r.initial_device_display_name,
                        r.refresh_token,
                    )
                    .await?,
            ),
        };
        Ok(Registered { user_id, session })
    }

    /// `m.login.application_service`: no UIA and whatever the registration mode, but only in
    /// the calling appservice's namespace; the account has no password.
    async fn register_for_appservice(
        &self,
        r: Registration,
        localpart: &str,
        wanted: &OwnedUserId,
    ) -> Result<Registered> {
        self.appservices
            .check_register(r.session.as_ref(), wanted)
            .await?;
        let user_id = self
            .users
            .create_user(localpart, None, false, false)
            .await?;
        let session = match r.inhibit_login {
            true => None,
            false => Some(
                self.users
                    .start_session(
                        &user_id,
                        r.device_id,
                        r.initial_device_display_name,
                        r.refresh_token,
                    )
                    .await?,
            ),
        };
        Ok(Registered { user_id, session })
    }

    /// Binds a validated address to a new account. Two registrations racing for one address:
    /// the loser's account is deactivated, so no API account exists without its address.
    async fn bind_email(&self, user_id: &UserId, v: Validation) -> Result<()> {
        let (store, uid, row) = (self.store.clone(), user_id.to_string(), v.clone());
        let res = blocking(move || match store.bind_threepid(&uid, &row, now_ms()) {
            Err(StoreError::Conflict(_)) => Ok(false),
            other => other.map(|_| true).map_err(Error::from),
        })
        .await?;
        if !res {
            self.users.deactivate(user_id, false).await?;
            return Err(in_use());
        }
        let e = entry(user_id.as_str(), "threepid.bind", Outcome::Success)
            .target(user_id.as_str())
            .detail("medium", v.medium.as_str())
            .detail("domain", address::domain_of(&v.address));
        self.audit.record(e).await?;
        Ok(())
    }

    /// `GET /account/3pid`.
    pub async fn threepids(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<ruma::thirdparty::ThirdPartyIdentifier>> {
        let (store, uid) = (self.store.clone(), user_id.to_string());
        let rows = blocking(move || Ok(store.threepids_of(&uid)?)).await?;
        let ts = |ms: i64| MilliSecondsSinceUnixEpoch(UInt::new_saturating(ms.max(0) as u64));
        Ok(rows
            .into_iter()
            .map(|t| {
                ThirdPartyIdentifierInit {
                    address: t.address,
                    medium: Medium::from(t.medium.as_str()),
                    validated_at: ts(t.validated_ts),
                    added_at: ts(t.added_ts),
                }
                .into()
            })
            .collect())
    }
}

fn in_use() -> Error {
    Error::new(
        StatusCode::BAD_REQUEST,
        ErrorKind::ThreepidInUse,
        "This email address is already used by another account",
    )
}
