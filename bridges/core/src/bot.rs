//! The bridge bot: a matrix-sdk client for the appservice's sender user, logged in with
//! `m.login.application_service` so it has a device of its own and can read and post in
//! encrypted rooms. [`Bot::login_persistent`] keeps that device across restarts: matrix-sdk's
//! SQLite state and crypto stores in a directory, the session (device id, access token) in the
//! bridge's database, so events encrypted for the bot while it was down (a ✅ sent then) are
//! decrypted after the restart. [`Bot::login`] keeps everything in memory (a new device each
//! start). Anything else the bridge must remember lives in its SQLite store.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::reaction::OriginalSyncReactionEvent;
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use matrix_sdk::{Client, Room, SessionMeta, SessionTokens};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::appservice::AppserviceConfig;
use crate::store::Db;

/// Where the bot keeps its device across restarts.
#[derive(Debug, Clone)]
pub struct DeviceStore {
    /// Directory of matrix-sdk's SQLite state and crypto stores (the device's private keys).
    pub dir: PathBuf,
    /// Encrypts the stores' secrets at rest; `None`: protected by file permissions only.
    pub passphrase: Option<String>,
}

/// A room the bot creates (always encrypted: every private room is, by policy).
#[derive(Debug, Clone, Default)]
pub struct NewRoom {
    pub name: String,
    pub topic: Option<String>,
    pub invite: Vec<OwnedUserId>,
    /// `#<localpart>:server` published for the room (must be in the bridge's alias namespace).
    pub alias_localpart: Option<String>,
    pub is_direct: bool,
    /// Extra `m.room.create` content (e.g. `"org.handover.context": "patient"`).
    pub creation_content: Option<Value>,
    /// Extra initial state events (`{"type", "state_key", "content"}`).
    pub initial_state: Vec<Value>,
    /// Join rule `knock`: others may ask to join (through the alias); the bot decides.
    pub knock: bool,
}

#[derive(Clone)]
pub struct Bot {
    client: Client,
    user_id: OwnedUserId,
    synced: Arc<(AtomicBool, Notify)>,
}

impl Bot {
    /// Logs the bot in (`m.login.application_service` with the as_token), retrying while the
    /// homeserver is unreachable, and builds its client. Call [`Bot::start_sync`] next.
    pub async fn login(cfg: &AppserviceConfig, device_name: &str) -> anyhow::Result<Self> {
        let session = Self::new_device(cfg, device_name).await?;
        let client = Client::builder()
            .homeserver_url(&cfg.homeserver_url)
            .build()
            .await?;
        Self::with_session(client, session).await
    }

    /// As [`Bot::login`], keeping the device: the stored session is restored over the
    /// stores in `store.dir` when the homeserver still knows its token; otherwise (first start,
    /// device deleted) a new device is made, the directory emptied for it and the session
    /// stored. Waits while the homeserver is unreachable.
    pub async fn login_persistent(
        cfg: &AppserviceConfig,
        device_name: &str,
        db: &Db,
        store: &DeviceStore,
    ) -> anyhow::Result<Self> {
        let build = || {
            Client::builder()
                .homeserver_url(&cfg.homeserver_url)
                .sqlite_store(&store.dir, store.passphrase.as_deref())
                .build()
        };
        if let Some((user, device, token)) = db.bot_session().await?
            && store.dir.exists()
        {
            let session = MatrixSession {
                meta: SessionMeta {
                    user_id: user.try_into()?,
                    device_id: device.into(),
                },
                tokens: SessionTokens {
                    access_token: token,
                    refresh_token: None,
                },
            };
            let client = build().await?;
            client.restore_session(session.clone()).await?;
            let mut delay = Duration::from_millis(200);
            loop {
                match client.whoami().await {
                    Ok(w) if w.device_id.as_ref() == Some(&session.meta.device_id) => {
                        tracing::info!(user_id = %session.meta.user_id, device_id = %session.meta.device_id, "bot device restored");
                        return Self::ready(client, session.meta.user_id);
                    }
                    Ok(_) => break,
                    Err(e)
                        if e.as_client_api_error()
                            .is_some_and(|e| e.status_code.as_u16() == 401) =>
                    {
                        tracing::warn!("the bot's stored device is gone; making a new one");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "homeserver unreachable; retrying the bot's whoami")
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
        // A new device: its stores start empty (the old keys belong to the old device).
        if store.dir.exists() {
            std::fs::remove_dir_all(&store.dir)?;
        }
        std::fs::create_dir_all(&store.dir)?;
        let session = Self::new_device(cfg, device_name).await?;
        db.set_bot_session(
            session.meta.user_id.to_string(),
            session.meta.device_id.to_string(),
            session.tokens.access_token.clone(),
        )
        .await?;
        Self::with_session(build().await?, session).await
    }

    async fn with_session(client: Client, session: MatrixSession) -> anyhow::Result<Self> {
        let user_id = session.meta.user_id.clone();
        client.restore_session(session).await?;
        tracing::info!(user_id = %user_id, device_id = ?client.device_id(), "bot logged in");
        Self::ready(client, user_id)
    }

    fn ready(client: Client, user_id: OwnedUserId) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            user_id,
            synced: Arc::new((AtomicBool::new(false), Notify::new())),
        })
    }

    /// A new device for the bot (`m.login.application_service`), retrying while the homeserver
    /// is unreachable.
    async fn new_device(
        cfg: &AppserviceConfig,
        device_name: &str,
    ) -> anyhow::Result<MatrixSession> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let url = format!(
            "{}/_matrix/client/v3/login",
            cfg.homeserver_url.trim_end_matches('/')
        );
        let body = json!({
            "type": "m.login.application_service",
            "identifier": {"type": "m.id.user", "user": cfg.sender_localpart},
            "initial_device_display_name": device_name,
        });
        let mut delay = Duration::from_millis(200);
        let resp: Value = loop {
            let sent = http
                .post(&url)
                .bearer_auth(&cfg.as_token)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break r.json().await?,
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(anyhow!("appservice login refused ({status}): {text}"));
                }
                Ok(r) => tracing::warn!(status = %r.status(), "homeserver login failed; retrying"),
                Err(e) => tracing::warn!(error = %e, "homeserver unreachable; retrying login"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        };
        let field = |k: &str| {
            resp.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("login response without {k}"))
        };
        let user_id: OwnedUserId = field("user_id")?.try_into()?;
        Ok(MatrixSession {
            meta: SessionMeta {
                user_id,
                device_id: field("device_id")?.into(),
            },
            tokens: SessionTokens {
                access_token: field("access_token")?,
                refresh_token: None,
            },
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// Accepts every invite to the bot (staff DM it for commands) and runs the sync loop in
    /// the background, retrying on errors. Event handlers added to the client see decrypted
    /// events.
    pub fn start_sync(&self) -> tokio::task::JoinHandle<()> {
        let me = self.user_id.clone();
        self.client
            .add_event_handler(move |ev: StrippedRoomMemberEvent, room: Room| {
                let me = me.clone();
                async move {
                    if ev.state_key == me
                        && let Err(e) = room.join().await {
                            tracing::warn!(room_id = %room.room_id(), error = %e, "joining on invite failed");
                        }
                }
            });
        let client = self.client.clone();
        let synced = self.synced.clone();
        tokio::spawn(async move {
            let mut settings = SyncSettings::default().timeout(Duration::from_secs(10));
            loop {
                match client.sync_once(settings.clone()).await {
                    Ok(r) => {
                        settings = settings.token(r.next_batch);
                        if !synced.0.swap(true, Ordering::SeqCst) {
                            synced.1.notify_waiters();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "bot sync failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }

    /// Waits for the first completed sync (rooms known, so the bot can post after a restart).
    pub async fn wait_synced(&self) {
        loop {
            let notified = self.synced.1.notified();
            if self.synced.0.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// Creates an encrypted private room (the bot at power 100, invitees at the default).
    pub async fn create_room(&self, spec: NewRoom) -> anyhow::Result<OwnedRoomId> {
        let mut req = CreateRoomRequest::new();
        req.name = Some(spec.name);
        req.topic = spec.topic;
        req.invite = spec.invite;
        req.is_direct = spec.is_direct;
        req.room_alias_name = spec.alias_localpart;
        if let Some(c) = &spec.creation_content {
            req.creation_content = Some(Raw::new(c)?.cast_unchecked());
        }
        let encryption = json!({
            "type": "m.room.encryption",
            "state_key": "",
            "content": {"algorithm": "m.megolm.v1.aes-sha2"},
        });
        let knock = json!({
            "type": "m.room.join_rules",
            "state_key": "",
            "content": {"join_rule": "knock"},
        });
        req.initial_state = std::iter::once(&encryption)
            .chain(spec.knock.then_some(&knock))
            .chain(&spec.initial_state)
            .map(|e| Raw::new(e).map(Raw::cast_unchecked))
            .collect::<Result<_, _>>()?;
        let room = self.client.create_room(req).await?;
        Ok(room.room_id().to_owned())
    }

    /// The room, once the client knows it (after a restart it comes with the first sync).
    pub async fn room(&self, room_id: &RoomId) -> anyhow::Result<Room> {
        if let Some(r) = self.client.get_room(room_id) {
            return Ok(r);
        }
        self.wait_synced().await;
        self.client
            .get_room(room_id)
            .with_context(|| format!("bot is not in room {room_id}"))
    }

    /// Sends an event (encrypted when the room is) and returns its id.
    pub async fn send(
        &self,
        room_id: &RoomId,
        event_type: &str,
        content: Value,
    ) -> anyhow::Result<OwnedEventId> {
        let room = self.room(room_id).await?;
        let resp = room.send_raw(event_type, content).await?;
        Ok(resp.response.event_id)
    }

    /// Forwards the room messages and reactions the bot receives (decrypted when the room is
    /// encrypted) to `f` as client-format JSON (`type`, `sender`, `event_id`,
    /// `origin_server_ts`, `content`).
    pub fn forward_room_events<F, Fut>(&self, f: F)
    where
        F: Fn(OwnedRoomId, Value) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let g = f.clone();
        self.client
            .add_event_handler(move |ev: OriginalSyncReactionEvent, room: Room| {
                let v = json!({"type": "m.reaction", "sender": ev.sender, "event_id": ev.event_id,
                               "origin_server_ts": ev.origin_server_ts, "content": ev.content});
                g(room.room_id().to_owned(), v)
            });
        self.client
            .add_event_handler(move |ev: OriginalSyncRoomMessageEvent, room: Room| {
                let v = json!({"type": "m.room.message", "sender": ev.sender, "event_id": ev.event_id,
                               "origin_server_ts": ev.origin_server_ts, "content": ev.content});
                f(room.room_id().to_owned(), v)
            });
    }

    /// Downloads a file sent in a room, decrypting it when it was sent encrypted (the key is in
    /// the event's `file`).
    pub async fn download(&self, source: MediaSource) -> anyhow::Result<Vec<u8>> {
        let req = MediaRequestParameters {
            source,
            format: MediaFormat::File,
        };
        Ok(self.client.media().get_media_content(&req, false).await?)
    }

    /// A user's membership of a room the bot is in (`None`: never a member).
    pub async fn membership(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> anyhow::Result<Option<MembershipState>> {
        let room = self.room(room_id).await?;
        Ok(room.get_member(user).await?.map(|m| m.membership().clone()))
    }

    /// Invites `user` and waits (up to 10 s) until this client's view of the room has them, so
    /// what the bot sends next is encrypted for the invitee too (a handover's re-posts).
    pub async fn invite(&self, room_id: &RoomId, user: &UserId) -> anyhow::Result<()> {
        let room = self.room(room_id).await?;
        room.invite_user_by_id(user).await?;
        for _ in 0..100 {
            if let Some(m) = room.get_member_no_sync(user).await?
                && matches!(
                    m.membership(),
                    MembershipState::Invite | MembershipState::Join
                )
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(room_id = %room_id, user_id = %user, "the invite has not come back in the bot's sync yet");
        Ok(())
    }

    pub async fn kick(&self, room_id: &RoomId, user: &UserId, reason: &str) -> anyhow::Result<()> {
        Ok(self
            .room(room_id)
            .await?
            .kick_user(user, Some(reason))
            .await?)
    }
}
