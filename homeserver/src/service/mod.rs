//! The service layer: the rules of the protocol. Handlers call exactly one service function;
//! services check authorisation (membership, power levels, policy) and reach storage through their
//! narrow store traits. Dependencies are explicit: each service is built with what it needs.

pub mod account_data;
pub mod accounts;
pub mod admin;
pub mod appservice;
pub mod audit;
pub mod audit_checkpoint;
#[cfg(unix)]
pub mod audit_syslog;
mod blocking;
pub mod commit;
pub mod console;
pub mod e2ee;
pub mod ephemeral;
pub mod federation;
pub mod filter;
pub mod filters;
pub mod health;
pub mod identity;
pub mod keys;
pub mod media;
pub mod notifier;
pub mod oauth;
pub mod openid;
pub mod push;
pub mod rate_limit;
pub mod registration;
pub mod reports;
pub mod retention;
pub mod rooms;
pub mod sar;
pub mod search;
pub mod sliding_sync;
pub mod spaces;
pub mod support;
pub mod sync;
pub mod uiaa;
pub mod users;
pub mod voip;

use std::sync::Arc;

use handover_policy::Policy;

/// A leaf helper, not wiring: kept importable as `service::blocking`.
pub use self::blocking::blocking;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sqlite::SqliteStore;

/// Per-request body limits, by kind of endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_upload_bytes: usize,
}

impl Limits {
    /// The body limit of a request: the upload limit for media uploads only (`POST /upload`,
    /// `PUT /upload/{serverName}/{mediaId}`, any version), the JSON limit for everything else,
    /// downloads and thumbnails included (they have no body).
    pub fn body_limit_for(&self, method: &http::Method, path: &str) -> usize {
        if is_upload(method, path) {
            self.max_upload_bytes
        } else {
            self.max_request_bytes
        }
    }
}

/// A media upload route: its body is streamed to a temp file, not buffered (see `Ruma`).
pub fn is_upload(method: &http::Method, path: &str) -> bool {
    matches!(*method, http::Method::POST | http::Method::PUT)
        && path
            .strip_prefix("/_matrix/media/")
            .is_some_and(|rest| rest.split('/').take(3).any(|seg| seg == "upload"))
}

#[cfg(test)]
#[test]
fn upload_limit_applies_to_upload_routes_only() {
    use http::Method;
    let l = Limits {
        max_request_bytes: 1,
        max_upload_bytes: 50,
    };
    for (m, p) in [
        (Method::POST, "/_matrix/media/v3/upload"),
        (Method::POST, "/_matrix/media/r0/upload"),
        (Method::PUT, "/_matrix/media/v3/upload/localhost/abc"),
        (
            Method::PUT,
            "/_matrix/media/unstable/fi.mau.msc2246/upload/l/abc",
        ),
    ] {
        assert_eq!(l.body_limit_for(&m, p), 50, "{m} {p}");
    }
    for (m, p) in [
        (Method::GET, "/_matrix/media/v3/upload"),
        (
            Method::GET,
            "/_matrix/client/v1/media/download/localhost/abc",
        ),
        (
            Method::POST,
            "/_matrix/client/v1/media/download/localhost/upload",
        ),
        (Method::POST, "/_matrix/media/v1/create"),
        (
            Method::PUT,
            "/_matrix/client/v3/rooms/!r/send/m.room.message/media",
        ),
        (
            Method::POST,
            "/_matrix/client/v3/user/@u/filter/media/upload",
        ),
    ] {
        assert_eq!(l.body_limit_for(&m, p), 1, "{m} {p}");
    }
}

/// The assurance gate of `[[identity.providers]] min_acr`, as a policy layer.
fn identity_assurance(config: &Config) -> handover_policy::IdentityAssurance {
    let providers = config
        .identity
        .providers
        .iter()
        .filter_map(|p| {
            let min = p.min_acr.clone()?;
            let req = handover_policy::AcrRequirement {
                order: p.acr_values.clone(),
                min,
            };
            Some((p.id.clone(), req))
        })
        .collect();
    handover_policy::IdentityAssurance { providers }
}

/// The required-claims gate of `[[identity.providers]] required_claims`, as a policy layer.
fn required_claims(config: &Config) -> handover_policy::RequiredClaims {
    let providers = (config.identity.providers.iter())
        .filter(|p| !p.required_claims.is_empty())
        .map(|p| {
            let needs = (p.required_claims.iter())
                .map(|(path, any_of)| handover_policy::ClaimRequirement {
                    path: path.clone(),
                    any_of: any_of.clone(),
                })
                .collect();
            (p.id.clone(), needs)
        })
        .collect();
    handover_policy::RequiredClaims { providers }
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
    pub keys: Arc<keys::ServerKeys>,
    pub notifier: Arc<notifier::Notifier>,
    pub rooms: Arc<rooms::RoomService>,
    pub account_data: Arc<account_data::AccountDataService>,
    pub push: Arc<push::PushService>,
    pub filters: Arc<filters::FilterService>,
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
    pub accounts: Arc<accounts::AccountService>,
    pub media: Arc<media::MediaService>,
    pub federation: Arc<federation::FederationService>,
    /// Profile, alias and public room queries, inbound and outbound.
    pub query: Arc<federation::query::QueryService>,
    /// Outbound PDUs and EDUs for other servers.
    pub outbox: Arc<federation::outbox::Outbox>,
    /// Inbound `/send` transactions.
    pub transactions: Arc<federation::transactions::TransactionService>,
    /// Serves room events to other servers (/event, /state, /backfill, ...).
    pub room_read: Arc<federation::room_read::RoomReadService>,
    /// Who gets which outbound EDU (typing, receipts, presence, keys, to-device).
    pub fanout: Arc<federation::fanout::EduFanout>,
    /// Inbound EDUs of a `/send` transaction.
    pub edus: Arc<federation::edu::EduService>,
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
        let config = Arc::new(config);
        let registry = Arc::new(appservice::Registry::new(appservices));
        // The clinical media rules sit around whichever rule set was chosen.
        let clinical = handover_policy::ClinicalMedia {
            inner: Arc::new(handover_policy::AllowAll),
            rules: config.clinical_media.rules(),
        };
        // Registration restricted to the organisation's email domains, from `[registration]`.
        let email_domains =
            handover_policy::EmailDomains::parse(&config.registration.allowed_email_domains)
                .map_err(Error::internal)?;
        let policy: Arc<dyn Policy> = Arc::new(handover_policy::Layers::new(vec![
            policy,
            Arc::new(clinical),
            Arc::new(email_domains),
            Arc::new(identity_assurance(&config)),
            Arc::new(required_claims(&config)),
        ]));
        let limits = Limits {
            max_request_bytes: config.limits.max_request_bytes,
            max_upload_bytes: config.media.max_upload_bytes as usize,
        };
        let store = Arc::new(store);
        let uiaa = Arc::new(uiaa::UiaaService::default());
        let audit = Arc::new(audit::AuditService::signing(
            store.clone(),
            audit_checkpoint::load_or_generate(&config.data_dir).map_err(Error::internal)?,
            &config.audit,
        )?);
        let users = Arc::new(users::UserService::new(
            config.clone(),
            store.clone(),
            policy.clone(),
            audit.clone(),
            uiaa.clone(),
        ));
        let rate_limits =
            Arc::new(rate_limit::RateLimits::new(&config.rate_limit).exempting(registry.clone()));
        let keys = Arc::new(
            keys::ServerKeys::load_or_generate(&config.data_dir).map_err(Error::internal)?,
        );
        let notifier = Arc::new(notifier::Notifier::default());
        let server_name: ruma::OwnedServerName = config
            .server_name
            .as_str()
            .try_into()
            .map_err(Error::internal)?;
        let account_data = Arc::new(account_data::AccountDataService::new(
            store.clone(),
            notifier.clone(),
        ));
        let push_sender = Arc::new(push::PushSender::new(store.clone(), push_retry));
        let push_evaluator = Arc::new(push::PushEvaluator::new(
            server_name.clone(),
            store.clone(),
            account_data.clone(),
            policy.clone(),
            push_sender,
        ));
        let federation = Arc::new(
            federation::FederationService::new(
                &config.federation,
                server_name.clone(),
                keys.clone(),
                store.clone(),
                policy.clone(),
                audit.clone(),
            )
            .map_err(Error::internal)?,
        );
        // Its workers start with the first queued item, or `Outbox::resume` at start-up.
        let outbox = Arc::new(federation::outbox::Outbox::new(
            server_name.clone(),
            federation.client().clone(),
            store.clone(),
            federation::outbox::OutboxSettings::default(),
        ));
        let media_binder = Arc::new(media::MediaBinder::new(server_name.clone(), store.clone()));
        // What follows every event's commit, in this order: push evaluation (ticket before the
        // write, spawned after), media binding (before the wake-ups, so recipients can fetch an
        // attachment at once), sync wake-ups, the federation outbox, the events-committed metric.
        let mut subscribers: Vec<Arc<dyn commit::CommitSubscriber>> = vec![
            Arc::new(push::PushSubscriber(push_evaluator.clone())),
            media_binder.clone(),
            notifier.clone(),
            Arc::new(federation::outbox::OutboxSubscriber::new(
                outbox.clone(),
                federation.gate().clone(),
            )),
            Arc::new(commit::CommitCounter),
            // Wakes the workers of appservices an event was queued for.
            Arc::new(appservice::AppserviceSubscriber::new(registry.clone())),
        ];
        subscribers.extend(extra);
        let pipeline = Arc::new(commit::CommitPipeline::new(subscribers));
        let rooms = Arc::new(rooms::RoomService::new(rooms::RoomDeps {
            server_name,
            pipeline,
            store: store.clone(),
            keys: keys.clone(),
            policy: policy.clone(),
            retention: config.retention.bounds().map_err(Error::internal)?,
            audit: audit.clone(),
            users: users.clone(),
            account_data: account_data.clone(),
            federation: federation.clone(),
            fed_store: store.clone(),
            fed_events: store.clone(),
            appservices: registry.clone(),
        }));
        let ephemeral = Arc::new(appservice::EphemeralBuffer::new(registry.clone()));
        let appservices = Arc::new(appservice::AppserviceService::new(
            appservice::AppserviceDeps {
                registry: registry.clone(),
                store: store.clone(),
                deliveries: store.clone(),
                room_store: store.clone(),
                rooms: rooms.clone(),
                users: users.clone(),
                audit: audit.clone(),
                ephemeral: ephemeral.clone(),
                settings: appservice::SenderSettings::default(),
            },
        ));
        let room_read = Arc::new(federation::room_read::RoomReadService::new(
            rooms.clone(),
            store.clone(),
            store.clone(),
        ));
        let fanout = Arc::new(federation::fanout::EduFanout::new(
            rooms.server_name().to_owned(),
            outbox.clone(),
            rooms.clone(),
        ));
        let push = Arc::new(push::PushService::new(
            push_evaluator,
            rooms.clone(),
            store.clone(),
        ));
        let query = Arc::new(federation::query::QueryService::new(
            federation::query::QueryDeps {
                server_name: rooms.server_name().to_owned(),
                client: federation.client().clone(),
                users: users.clone(),
                rooms: rooms.clone(),
                audit: audit.clone(),
                serve_public_rooms: config.federation.serve_public_rooms,
                appservices: appservices.clone(),
            },
        ));
        let spaces = Arc::new(spaces::SpaceService::new(
            rooms.clone(),
            federation.client().clone(),
            query.clone(),
        ));
        let filters = Arc::new(filters::FilterService::new(store.clone()));
        let accounts = Arc::new(accounts::AccountService::new(
            users.clone(),
            rooms.clone(),
            media_binder,
        ));
        let receipts = Arc::new(ephemeral::receipts::ReceiptService::new(
            store.clone(),
            rooms.clone(),
            notifier.clone(),
            fanout.clone(),
        ));
        let read_markers = Arc::new(ephemeral::read_markers::ReadMarkerService::new(
            rooms.clone(),
            account_data.clone(),
        ));
        let typing = ephemeral::typing::TypingService::new(
            store.clone(),
            rooms.clone(),
            notifier.clone(),
            fanout.clone(),
        );
        let presence = Arc::new(ephemeral::presence::PresenceService::new(
            store.clone(),
            rooms.clone(),
            notifier.clone(),
            fanout.clone(),
        ));
        let e2ee = Arc::new(e2ee::KeyService::new(
            rooms.server_name().to_owned(),
            store.clone(),
            users.clone(),
            rooms.clone(),
            notifier.clone(),
            e2ee::KeyFederation {
                client: federation.client().clone(),
                store: store.clone(),
                fanout: fanout.clone(),
            },
        ));
        typing.set_appservice_sink(ephemeral.clone());
        receipts.set_appservice_sink(ephemeral.clone());
        // Device removals (logout, deletion) reach room-mates and other servers.
        users.set_device_observer(e2ee.clone());
        let to_device = Arc::new(e2ee::to_device::ToDeviceService::new(
            rooms.server_name().to_owned(),
            store.clone(),
            notifier.clone(),
            store.clone(),
            fanout.clone(),
        ));
        let edus = Arc::new(federation::edu::EduService::new(federation::edu::EduDeps {
            rooms: rooms.clone(),
            typing: typing.clone(),
            receipts: receipts.clone(),
            presence: presence.clone(),
            keys: e2ee.clone(),
            to_device: to_device.clone(),
        }));
        let backup = Arc::new(e2ee::backup::BackupService::new(store.clone()));
        let dehydrated = Arc::new(e2ee::dehydrated::DehydratedDeviceService::new(
            store.clone(),
            e2ee.clone(),
            to_device.clone(),
        ));
        let sync = Arc::new(sync::SyncService::new(
            sync::SyncDeps {
                rooms: rooms.clone(),
                e2ee: e2ee.clone(),
                to_device: to_device.clone(),
                receipts: receipts.clone(),
                typing: typing.clone(),
                presence: presence.clone(),
                account_data: account_data.clone(),
                push: push.clone(),
                notifier: notifier.clone(),
            },
            std::time::Duration::from_millis(config.limits.max_sync_timeout_ms),
        ));
        let sliding_sync = Arc::new(sliding_sync::SlidingSyncService::new(
            sliding_sync::Deps {
                rooms: rooms.clone(),
                receipts: receipts.clone(),
                typing: typing.clone(),
                presence: presence.clone(),
                account_data: account_data.clone(),
                push: push.clone(),
                keys: e2ee.clone(),
                to_device: to_device.clone(),
                notifier: notifier.clone(),
            },
            std::time::Duration::from_millis(config.limits.max_sync_timeout_ms),
        ));
        let media = Arc::new(media::MediaService::new(
            &config,
            media::MediaDeps {
                store: store.clone(),
                policy: policy.clone(),
                audit: audit.clone(),
                rooms: rooms.clone(),
                remote_store: store.clone(),
                federation: federation.client().clone(),
            },
        )?);
        let transactions = Arc::new(federation::transactions::TransactionService::new(
            rooms.clone(),
            edus.clone(),
        ));
        let retention = Arc::new(retention::RetentionService::new(retention::RetentionDeps {
            server_name: rooms.server_name().to_owned(),
            store: store.clone(),
            policy: policy.clone(),
            audit: audit.clone(),
            media: media.clone(),
            rooms: rooms.clone(),
            clock: Arc::new(retention::SystemClock),
            settings: retention::RetentionSettings::from_config(&config.retention)
                .map_err(Error::internal)?,
        }));
        let registration = Arc::new(registration::RegistrationService::new(
            config.clone(),
            registration::RegistrationDeps {
                users: users.clone(),
                uiaa: uiaa.clone(),
                store: store.clone(),
                tokens: store.clone(),
                policy: policy.clone(),
                audit: audit.clone(),
                appservices: appservices.clone(),
            },
        )?);
        let reports = Arc::new(reports::ReportService::new(
            store.clone(),
            rooms.clone(),
            users.clone(),
        ));
        let admin = Arc::new(admin::AdminService::new(admin::AdminDeps {
            users: users.clone(),
            accounts: accounts.clone(),
            rooms: rooms.clone(),
            audit: audit.clone(),
            store: store.clone(),
            room_store: store.clone(),
            threepids: store.clone(),
            media: media.clone(),
            media_store: store.clone(),
            tokens: store.clone(),
            push: push.clone(),
        })?);
        let sar = Arc::new(sar::SarService::new(sar::SarDeps {
            admin: admin.clone(),
            admin_store: store.clone(),
            threepids: store.clone(),
            store: store.clone(),
            rooms: rooms.clone(),
            media: media.clone(),
            audit: audit.clone(),
        }));
        let console = Arc::new(console::ConsoleService::new(console::ConsoleDeps {
            config: config.clone(),
            users: users.clone(),
            admin: admin.clone(),
            sar: sar.clone(),
            retention: retention.clone(),
            audit: audit.clone(),
            store: store.clone(),
        }));
        let voip = Arc::new(voip::VoipService::new(&config.voip));
        let search = Arc::new(search::SearchService::new(rooms.clone(), store.clone()));
        let health = Arc::new(health::HealthService::new(
            store.clone(),
            config.media_dir(),
            config.federation.list_file.is_some(),
        ));
        let oauth = Arc::new(oauth::OAuthService::new(oauth::OAuthDeps {
            config: config.clone(),
            store: store.clone(),
            user_store: store.clone(),
            grants: store.clone(),
            users: users.clone(),
            uiaa: uiaa.clone(),
            registration: registration.clone(),
            audit: audit.clone(),
        }));
        let identity = Arc::new(identity::IdentityService::new(identity::IdentityDeps {
            config: config.clone(),
            store: store.clone(),
            sessions: store.clone(),
            users: users.clone(),
            accounts: accounts.clone(),
            policy: policy.clone(),
            audit: audit.clone(),
            oauth: oauth.clone(),
        }));
        Ok(Self {
            config,
            limits,
            policy,
            audit,
            users,
            uiaa,
            rate_limits,
            keys,
            notifier,
            rooms,
            account_data,
            push,
            filters,
            receipts,
            read_markers,
            typing,
            presence,
            sync,
            sliding_sync,
            e2ee,
            to_device,
            backup,
            dehydrated,
            reports,
            accounts,
            media,
            federation,
            query,
            outbox,
            transactions,
            room_read,
            fanout,
            edus,
            federation_list: None,
            retention,
            registration,
            admin,
            sar,
            console,
            spaces,
            openid: Arc::new(openid::OpenIdService::new()),
            voip,
            search,
            health,
            appservices,
            oauth,
            identity,
        })
    }
}

#[cfg(test)]
pub(crate) mod test_util;

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

#[cfg(test)]
mod governance_tests;

#[cfg(test)]
mod identity_tests;
