//! Application services (spec: Application Service API): registrations from `[appservices]`,
//! requests made with an `as_token` (and masquerading as namespace users), the durable event
//! queue pushed as transactions (`sender.rs`), pings, user and alias queries and the
//! third-party lookups (`queries.rs`). docs/BRIDGES.md.

mod client;
mod crypto;
pub mod ephemeral;
mod login;
mod queries;
pub mod registration;
pub mod registry;
mod sender;
mod subscriber;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use handover_compliance::Outcome;
use ruma::api::error::ErrorKind;
use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;
use ruma::{OwnedDeviceId, OwnedEventId, OwnedUserId};

pub use self::client::{AppserviceClient, CallError};
pub use self::crypto::{BoxFuture, CryptoWatch, DeviceListSource};
pub use self::ephemeral::EphemeralBuffer;
pub use self::queries::Lookup;
pub use self::registration::{Appservice, Claim};
pub use self::registry::{EventFacts, Registry, exclusive, facts_of};
pub use self::sender::SenderSettings;
pub use self::subscriber::AppserviceSubscriber;
use super::audit::{AuditService, entry};
use super::blocking;
use super::rooms::RoomService;
use super::users::{Session, UserService, hash_token};
use crate::error::{Error, Result};
use crate::store::appservice::AppserviceStore;
use crate::store::appservice_crypto::AppserviceCryptoStore;
use crate::store::deliveries::DeliveryStore;
use crate::store::keys::KeyStore;
use crate::store::rooms::RoomStore;

/// Audit action of a refused masquerade or registration by an appservice.
const ACTION_DENIED: &str = "appservice.denied";

pub struct AppserviceService {
    registry: Arc<Registry>,
    store: Arc<dyn AppserviceStore>,
    deliveries: Arc<dyn DeliveryStore>,
    room_store: Arc<dyn RoomStore>,
    rooms: Arc<RoomService>,
    users: Arc<UserService>,
    audit: Arc<AuditService>,
    client: AppserviceClient,
    settings: SenderSettings,
    ephemeral: Arc<EphemeralBuffer>,
    /// MSC3202 / MSC4203 (`crypto.rs`).
    crypto_store: Arc<dyn AppserviceCryptoStore>,
    key_store: Arc<dyn KeyStore>,
    device_lists: std::sync::OnceLock<Arc<dyn DeviceListSource>>,
    crypto_watch: Arc<CryptoWatch>,
}

pub struct AppserviceDeps {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn AppserviceStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub room_store: Arc<dyn RoomStore>,
    pub rooms: Arc<RoomService>,
    pub users: Arc<UserService>,
    pub audit: Arc<AuditService>,
    pub ephemeral: Arc<EphemeralBuffer>,
    pub settings: SenderSettings,
    pub crypto_store: Arc<dyn AppserviceCryptoStore>,
    pub key_store: Arc<dyn KeyStore>,
}

impl AppserviceService {
    pub fn new(d: AppserviceDeps) -> Self {
        Self {
            registry: d.registry,
            store: d.store,
            deliveries: d.deliveries,
            room_store: d.room_store,
            rooms: d.rooms,
            users: d.users,
            audit: d.audit,
            client: AppserviceClient::new(Duration::from_secs(30)),
            settings: d.settings,
            ephemeral: d.ephemeral,
            crypto_store: d.crypto_store,
            key_store: d.key_store,
            device_lists: std::sync::OnceLock::new(),
            crypto_watch: Arc::default(),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Creates each appservice's sender user if missing (at start-up).
    pub async fn ensure_senders(&self) -> Result<()> {
        for a in self.registry.all() {
            if self.users.get_user(&a.sender).await?.is_none() {
                self.users
                    .create_user(a.sender.localpart(), None, false, true)
                    .await?;
                tracing::info!(appservice = a.id(), user_id = %a.sender, "appservice sender created");
            }
        }
        Ok(())
    }

    /// The session of a request made with `a`'s `as_token`: as its sender, or as `user_id`
    /// (`?user_id=`, identity assertion) when that user is in its namespaces and exists, on
    /// `device_id` (MSC3202) when the registration enables it and the device exists.
    pub async fn session(
        &self,
        a: &Appservice,
        token: &str,
        user_id: Option<OwnedUserId>,
        device_id: Option<OwnedDeviceId>,
    ) -> Result<Session> {
        let user_id = user_id.unwrap_or_else(|| a.sender.clone());
        if !a.controls_user(&user_id) {
            return Err(self
                .deny(a, &user_id, "masquerade_outside_namespace", || {
                    format!(
                        "Application service cannot masquerade as {user_id}: not in its namespace"
                    )
                })
                .await);
        }
        let record = self.users.get_user(&user_id).await?;
        let Some(record) = record.filter(|r| !r.deactivated) else {
            return Err(self
                .deny(a, &user_id, "masquerade_unregistered_user", || {
                    format!("Application service has not registered {user_id}")
                })
                .await);
        };
        if self.users.restrictions().get(&user_id).locked {
            return Err(super::users::locked_error());
        }
        let device_id = match device_id {
            Some(d) if a.msc3202 => {
                if self.users.get_device(&user_id, &d).await.is_err() {
                    return Err(self
                        .deny(a, &user_id, "masquerade_unknown_device", || {
                            format!("{user_id} has no device {d}")
                        })
                        .await);
                }
                d
            }
            Some(_) => {
                return Err(Error::forbidden(
                    "device_id masquerading needs org.matrix.msc3202 in the registration",
                ));
            }
            // No device: one per appservice, so transaction ids are scoped to it.
            None => OwnedDeviceId::from(format!("appservice.{}", a.id())),
        };
        Ok(Session {
            user_id,
            device_id,
            is_admin: record.is_admin,
            token_hash: hash_token(token),
            appservice: Some(a.id().to_owned()),
        })
    }

    /// Audits a refusal of `a` and returns the client error (403 `M_FORBIDDEN`, as the spec's
    /// identity assertion says).
    async fn deny(
        &self,
        a: &Appservice,
        target: &OwnedUserId,
        rule: &str,
        message: impl FnOnce() -> String,
    ) -> Error {
        let e = entry(a.sender.as_str(), ACTION_DENIED, Outcome::Denied)
            .rule(rule)
            .target(target.as_str())
            .detail("appservice", a.id());
        if let Err(err) = self.audit.record(e).await {
            return err;
        }
        Error::forbidden(message())
    }

    /// `POST /register` with `m.login.application_service`: the user must be in the calling
    /// appservice's namespace (400 `M_EXCLUSIVE` otherwise, audited).
    pub async fn check_register(
        &self,
        session: Option<&Session>,
        user: &OwnedUserId,
    ) -> Result<()> {
        let Some(a) = session
            .and_then(|s| s.appservice.as_deref())
            .and_then(|id| self.registry.by_id(id))
        else {
            return Err(Error::new(
                http::StatusCode::UNAUTHORIZED,
                ErrorKind::MissingToken,
                "m.login.application_service needs an appservice's as_token",
            ));
        };
        if a.controls_user(user) {
            return Ok(());
        }
        let e = entry(a.sender.as_str(), ACTION_DENIED, Outcome::Denied)
            .rule("register_outside_namespace")
            .target(user.as_str())
            .detail("appservice", a.id());
        self.audit.record(e).await?;
        Err(exclusive(format!(
            "{user} is not in the namespace of application service {}",
            a.id()
        )))
    }

    /// Events by id in the client format (with `room_id`), as transactions carry them. An
    /// event that is gone (purged by retention) is left out.
    async fn client_events(&self, ids: Vec<OwnedEventId>) -> Result<Vec<Raw<AnyTimelineEvent>>> {
        let store = self.room_store.clone();
        let stored = blocking(move || {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(ev) = store.get_event(id.as_str())? {
                    out.push(ev);
                }
            }
            Ok(out)
        })
        .await?;
        let mut out = Vec::with_capacity(stored.len());
        for ev in stored {
            let version = self.rooms.room_version(&ev.room_id).await?;
            let rules = super::rooms::state::rules_for(&version)?;
            let json = super::rooms::format::client_event(&ev, &rules, None, true);
            out.push(super::rooms::format::to_raw(&json));
        }
        Ok(out)
    }
}
