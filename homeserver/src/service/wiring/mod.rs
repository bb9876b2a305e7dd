//! The wiring: `Services` (every service, the axum state) and how they are built: once, in one
//! pass (`build.rs`), with the policy assembled in one place (`policy.rs`). Entry points:
//! `for_server` (start-up), `build`/`build_with`/`build_full` (tests and tools, which pass
//! their own rule set).

mod build;
mod limits;
pub mod policy;

use std::sync::Arc;

use handover_policy::{LiveFederationList, Policy};

pub use self::limits::{Limits, is_upload};
pub use self::policy::policy_from_config;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::{
    account_data, account_rooms, admin, appservice, audit, commit, console, e2ee, ephemeral,
    federation, filter, health, identity, media, notifier, oauth, openid, peer, push, rate_limit,
    registration, reports, retention, rooms, sar, search, signing_key, sliding_sync, spaces, sync,
    uiaa, users, voip,
};
use crate::store::sqlite::SqliteStore;

/// What start-up hands the build besides config, store and the rule set.
pub(crate) struct Startup {
    /// The push gateway retry schedule (tests shorten it).
    pub push_retry: push::RetryPolicy,
    /// The `[appservices]` registrations, loaded before the database opens.
    pub appservices: Vec<appservice::Appservice>,
    /// The federation list the policy consults (for the console, `/ready` and the reloader).
    pub federation_list: Option<LiveFederationList>,
    /// Commit pipeline subscribers after the built-in ones (tests).
    pub extra: Vec<Arc<dyn commit::CommitSubscriber>>,
}

/// Every service, cheap to clone (the axum state).
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub limits: Limits,
    pub policy: Arc<dyn Policy>,
    pub audit: Arc<audit::AuditService>,
    pub users: Arc<users::UserService>,
    pub uiaa: Arc<uiaa::UiaaService>,
    pub rate_limits: Arc<rate_limit::RateLimits>,
    pub keys: Arc<signing_key::ServerKeys>,
    pub notifier: Arc<notifier::Notifier>,
    pub rooms: Arc<rooms::RoomService>,
    pub account_data: Arc<account_data::AccountDataService>,
    pub push: Arc<push::PushService>,
    pub filters: Arc<filter::FilterService>,
    pub receipts: Arc<ephemeral::receipts::ReceiptService>,
    pub read_markers: Arc<ephemeral::read_markers::ReadMarkerService>,
    pub typing: Arc<ephemeral::typing::TypingService>,
    pub presence: Arc<ephemeral::presence::PresenceService>,
    pub sync: Arc<sync::SyncService>,
    pub sliding_sync: Arc<sliding_sync::SlidingSyncService>,
    pub e2ee: Arc<e2ee::KeyService>,
    pub to_device: Arc<e2ee::to_device::ToDeviceService>,
    pub backup: Arc<e2ee::backup::BackupService>,
    pub dehydrated: Arc<e2ee::dehydrated::DehydratedDeviceService>,
    pub reports: Arc<reports::ReportService>,
    pub accounts: Arc<account_rooms::AccountService>,
    pub media: Arc<media::MediaService>,
    pub federation: Arc<federation::FederationService>,
    /// Profile, alias and public room queries, inbound and outbound.
    pub query: Arc<peer::query::QueryService>,
    /// Outbound PDUs and EDUs for other servers.
    pub outbox: Arc<federation::outbox::Outbox>,
    /// Inbound `/send` transactions.
    pub transactions: Arc<peer::transactions::TransactionService>,
    /// Serves room events to other servers (/event, /state, /backfill, ...).
    pub room_read: Arc<peer::room_read::RoomReadService>,
    /// Who gets which outbound EDU (typing, receipts, presence, keys, to-device).
    pub fanout: Arc<peer::fanout::EduFanout>,
    /// Inbound EDUs of a `/send` transaction.
    pub edus: Arc<peer::edu::EduService>,
    /// The federation list in force (shared with the policy), for the reloader.
    pub federation_list: Option<handover_policy::LiveFederationList>,
    pub retention: Arc<retention::RetentionService>,
    /// `POST /register`, email validation and the account's 3PIDs.
    pub registration: Arc<registration::RegistrationService>,
    pub admin: Arc<admin::AdminService>,
    /// Subject-access request exports (UK GDPR Art. 15).
    pub sar: Arc<sar::SarService>,
    /// The IG lead's console (`/_handover/console/`).
    pub console: Arc<console::ConsoleService>,
    /// Space hierarchies, for local users and other servers.
    pub spaces: Arc<spaces::SpaceService>,
    /// OpenID tokens for third parties (`/openid/request_token`, `/openid/userinfo`).
    pub openid: Arc<openid::OpenIdService>,
    /// TURN credentials (`[voip]`).
    pub voip: Arc<voip::VoipService>,
    /// `POST /search` over the full-text index.
    pub search: Arc<search::SearchService>,
    /// `GET /ready`: can the server do its work now.
    pub health: Arc<health::HealthService>,
    /// Application services: `as_token` requests, their queues, pings and queries.
    pub appservices: Arc<appservice::AppserviceService>,
    /// Handover as OAuth 2.0 authorization server (`/auth_metadata`, `/_handover/oauth/...`).
    pub oauth: Arc<oauth::OAuthService>,
    /// Sign-in through upstream OpenID providers (`[identity]`), legacy SSO login tokens.
    pub identity: Arc<identity::IdentityService>,
}

impl Services {
    pub fn build(config: Config, store: SqliteStore, policy: Arc<dyn Policy>) -> Result<Self> {
        Self::build_with(config, store, policy, push::RetryPolicy::default())
    }

    /// As `build`, with the push gateway retry schedule (tests shorten it); the appservice
    /// registrations are read from `[appservices]` (a bad one is an error naming its file).
    pub fn build_with(
        config: Config,
        store: SqliteStore,
        policy: Arc<dyn Policy>,
        push_retry: push::RetryPolicy,
    ) -> Result<Self> {
        Self::build_with_subscribers(config, store, policy, push_retry, Vec::new())
    }

    /// As `build_with`, with `extra` commit pipeline subscribers after the built-in ones; the
    /// appservice registrations are read from `[appservices]` (a bad one is an error naming
    /// its file).
    pub(crate) fn build_with_subscribers(
        config: Config,
        store: SqliteStore,
        policy: Arc<dyn Policy>,
        push_retry: push::RetryPolicy,
        extra: Vec<Arc<dyn commit::CommitSubscriber>>,
    ) -> Result<Self> {
        let list = appservice::registration::load_files(
            &config.appservices.registration_files,
            &config.server_name,
        )
        .map_err(Error::internal)?;
        Self::build_full(config, store, policy, push_retry, list, extra)
    }

    /// The services, with appservice registrations already loaded and `extra` commit pipeline
    /// subscribers after the built-in ones.
    pub fn build_full(
        config: Config,
        store: SqliteStore,
        policy: Arc<dyn Policy>,
        push_retry: push::RetryPolicy,
        appservices: Vec<appservice::Appservice>,
        extra: Vec<Arc<dyn commit::CommitSubscriber>>,
    ) -> Result<Self> {
        let startup = Startup {
            push_retry,
            appservices,
            federation_list: None,
            extra,
        };
        Self::assemble(config, store, policy, startup)
    }

    /// What `handover serve` runs: the policy from config (`policy::policy_from_config`) over
    /// the loaded federation list, which the console and `/ready` see too.
    pub fn for_server(
        config: Config,
        store: SqliteStore,
        federation_list: Option<LiveFederationList>,
        appservices: Vec<appservice::Appservice>,
    ) -> Result<Self> {
        let policy = policy_from_config(&config, federation_list.clone());
        tracing::info!(policy = policy.name(), "governance policy");
        let startup = Startup {
            push_retry: push::RetryPolicy::default(),
            appservices,
            federation_list,
            extra: Vec::new(),
        };
        Self::assemble(config, store, policy, startup)
    }
}

/// Every service on a fresh database in a temporary directory, for service tests.
#[cfg(test)]
pub(crate) fn test_services() -> (Services, tempfile::TempDir) {
    let (services, _, dir) = test_services_and_store();
    (services, dir)
}

/// As `test_services`, plus the store underneath (to read stream positions).
#[cfg(test)]
pub(crate) fn test_services_and_store() -> (Services, SqliteStore, tempfile::TempDir) {
    test_services_with_policy(Arc::new(handover_policy::AllowAll))
}

/// As `test_services_and_store`, enforcing `policy`.
#[cfg(test)]
pub(crate) fn test_services_with_policy(
    policy: Arc<dyn Policy>,
) -> (Services, SqliteStore, tempfile::TempDir) {
    test_services_with_subscribers(policy, Vec::new())
}

/// As `test_services_with_policy`, with extra commit pipeline subscribers.
#[cfg(test)]
pub(crate) fn test_services_with_subscribers(
    policy: Arc<dyn Policy>,
    extra: Vec<Arc<dyn commit::CommitSubscriber>>,
) -> (Services, SqliteStore, tempfile::TempDir) {
    let (store, dir) = crate::store::sqlite::test_store();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let services = Services::build_with_subscribers(
        config,
        store.clone(),
        policy,
        push::RetryPolicy::default(),
        extra,
    )
    .expect("build services");
    (services, store, dir)
}
