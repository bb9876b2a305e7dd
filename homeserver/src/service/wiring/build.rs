//! `Services::assemble`: every service built once, in dependency order, with explicit
//! dependencies (no globals, nothing patched in after the build).

use std::sync::Arc;

use handover_policy::Policy;

use super::{Limits, Services, Startup};
use crate::error::{Error, Result};
use crate::service::{
    account_data, account_rooms, admin, appservice, audit, audit_checkpoint, commit, console, e2ee,
    ephemeral, federation, filter, health, identity, media, notifier, oauth, openid, peer, push,
    rate_limit, registration, reports, retention, rooms, sar, search, signing_key, sliding_sync,
    spaces, sync, uiaa, users, voip,
};
use crate::store::sqlite::SqliteStore;

impl Services {
    /// The services on `store`, `policy` being the rule set chosen (the service layers are
    /// added here, `policy::with_service_layers`).
    pub(super) fn assemble(
        config: crate::config::Config,
        store: SqliteStore,
        policy: Arc<dyn Policy>,
        startup: Startup,
    ) -> Result<Self> {
        let config = Arc::new(config);
        let Startup {
            push_retry,
            appservices,
            federation_list,
            extra,
        } = startup;
        let registry = Arc::new(appservice::Registry::new(appservices));
        let policy = super::policy::with_service_layers(&config, policy)?;
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
            signing_key::ServerKeys::load_or_generate(&config.data_dir).map_err(Error::internal)?,
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
        let appservice_ephemeral = Arc::new(appservice::EphemeralBuffer::new(registry.clone()));
        let appservices = Arc::new(appservice::AppserviceService::new(
            appservice::AppserviceDeps {
                registry: registry.clone(),
                store: store.clone(),
                deliveries: store.clone(),
                room_store: store.clone(),
                rooms: rooms.clone(),
                users: users.clone(),
                audit: audit.clone(),
                ephemeral: appservice_ephemeral.clone(),
                settings: appservice::SenderSettings::default(),
                crypto_store: store.clone(),
                key_store: store.clone(),
            },
        ));
        let room_read = Arc::new(peer::room_read::RoomReadService::new(
            rooms.clone(),
            store.clone(),
            store.clone(),
        ));
        let fanout = Arc::new(peer::fanout::EduFanout::new(
            rooms.server_name().to_owned(),
            outbox.clone(),
            rooms.clone(),
        ));
        let push = Arc::new(push::PushService::new(
            push_evaluator,
            rooms.clone(),
            store.clone(),
        ));
        let query = Arc::new(peer::query::QueryService::new(peer::query::QueryDeps {
            server_name: rooms.server_name().to_owned(),
            client: federation.client().clone(),
            users: users.clone(),
            rooms: rooms.clone(),
            audit: audit.clone(),
            serve_public_rooms: config.federation.serve_public_rooms,
            appservices: appservices.clone(),
        }));
        let spaces = Arc::new(spaces::SpaceService::new(
            rooms.clone(),
            federation.client().clone(),
            query.clone(),
        ));
        let filters = Arc::new(filter::FilterService::new(store.clone()));
        let accounts = Arc::new(account_rooms::AccountService::new(
            users.clone(),
            rooms.clone(),
            media_binder,
        ));
        let receipts = Arc::new(ephemeral::receipts::ReceiptService::new(
            store.clone(),
            rooms.clone(),
            notifier.clone(),
            fanout.clone(),
            appservice_ephemeral.clone(),
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
            appservice_ephemeral.clone(),
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
        // Device removals (logout, deletion) reach room-mates and other servers.
        users.set_device_observer(e2ee.clone());
        // Encrypted appservices (MSC3202): device lists from the key service, wake-ups and
        // changed users from the sync notifier. Set here, not passed in: both are built on
        // services the appservice service is built before (a real cycle, like the one above).
        appservices.set_device_lists(e2ee.clone());
        if let Some(observer) = appservices.crypto_observer() {
            notifier.set_observer(observer);
        }
        let to_device = Arc::new(e2ee::to_device::ToDeviceService::new(
            rooms.server_name().to_owned(),
            store.clone(),
            notifier.clone(),
            store.clone(),
            fanout.clone(),
        ));
        let edus = Arc::new(peer::edu::EduService::new(peer::edu::EduDeps {
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
        let transactions = Arc::new(peer::transactions::TransactionService::new(
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
            retention: retention.clone(),
            jobs: store.clone(),
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
            federation_list: federation_list.clone(),
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
            federation_list,
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
