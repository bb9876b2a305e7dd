//! The bridge bot: a matrix-sdk client for the appservice's sender user, logged in with
//! `m.login.application_service` so it has a device of its own and can read and post in
//! encrypted rooms. The crypto store is in memory: after a restart the bot logs in again with a
//! new device (members' clients share new room keys with it); events encrypted only for the old
//! device stay unreadable to it. Anything the bridge must remember lives in its SQLite store.

use std::future::Future;
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
        let session = MatrixSession {
            meta: SessionMeta {
                user_id: user_id.clone(),
                device_id: field("device_id")?.into(),
            },
            tokens: SessionTokens {
                access_token: field("access_token")?,
                refresh_token: None,
            },
        };
        let client = Client::builder()
            .homeserver_url(&cfg.homeserver_url)
            .build()
            .await?;
        client.restore_session(session).await?;
        tracing::info!(user_id = %user_id, device_id = ?client.device_id(), "bot logged in");
        Ok(Self {
            client,
            user_id,
            synced: Arc::new((AtomicBool::new(false), Notify::new())),
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
        req.initial_state = std::iter::once(&encryption)
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

    pub async fn invite(&self, room_id: &RoomId, user: &UserId) -> anyhow::Result<()> {
        Ok(self.room(room_id).await?.invite_user_by_id(user).await?)
    }

    pub async fn kick(&self, room_id: &RoomId, user: &UserId, reason: &str) -> anyhow::Result<()> {
        Ok(self
            .room(room_id)
            .await?
            .kick_user(user, Some(reason))
            .await?)
    }
}
