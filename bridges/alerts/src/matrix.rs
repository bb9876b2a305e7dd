//! Glue between the engine and Matrix: the bot as the engine's [`Poster`], the bot's sync
//! handlers (decrypted reactions, messages, receipts) and the appservice handler (transactions,
//! alias queries for role rooms).

use std::sync::Arc;

use handover_bridge_core::appservice::AppserviceHandler;
use handover_bridge_core::bot::{Bot, NewRoom};
use matrix_sdk::Room;
use matrix_sdk::ruma::events::receipt::SyncReceiptEvent;
use matrix_sdk::ruma::{RoomId, UserId};
use serde_json::{Value, json};

use crate::engine::{Engine, Poster};

/// The bot, as the engine posts through it.
#[derive(Clone)]
pub struct BotPoster(pub Bot);

impl Poster for BotPoster {
    async fn create_room(&self, spec: NewRoom) -> anyhow::Result<String> {
        Ok(self.0.create_room(spec).await?.to_string())
    }
    async fn send(&self, room_id: &str, content: Value) -> anyhow::Result<String> {
        let room_id = <&RoomId>::try_from(room_id)?;
        Ok(self
            .0
            .send(room_id, "m.room.message", content)
            .await?
            .to_string())
    }
    async fn invite(&self, room_id: &str, user: &str) -> anyhow::Result<()> {
        self.0
            .invite(<&RoomId>::try_from(room_id)?, <&UserId>::try_from(user)?)
            .await
    }
    async fn kick(&self, room_id: &str, user: &str, reason: &str) -> anyhow::Result<()> {
        self.0
            .kick(
                <&RoomId>::try_from(room_id)?,
                <&UserId>::try_from(user)?,
                reason,
            )
            .await
    }
}

pub type AlertsEngine = Engine<BotPoster>;

/// Feeds the bot's (decrypted) sync events to the engine.
pub fn add_sync_handlers(bot: &Bot, engine: Arc<AlertsEngine>) {
    let e = engine.clone();
    bot.forward_room_events(move |room_id, v| {
        let e = e.clone();
        async move { handle(&e, room_id.as_str(), v).await }
    });
    let e = engine;
    bot.client()
        .add_event_handler(move |ev: SyncReceiptEvent, room: Room| {
            let e = e.clone();
            async move {
                let v = json!({"type": "m.receipt", "content": ev.content});
                handle(&e, room.room_id().as_str(), v).await;
            }
        });
}

async fn handle(engine: &AlertsEngine, room_id: &str, ev: Value) {
    if let Err(e) = engine.on_event(room_id, &ev).await {
        tracing::warn!(error = %e, room_id, "handling an event failed");
    }
}

/// The appservice side: unencrypted events and receipts pushed by the homeserver, and the
/// alias queries that create a role's room on first lookup of `#<role>:server`.
pub struct AlertsAppservice {
    pub engine: Arc<AlertsEngine>,
}

impl AppserviceHandler for AlertsAppservice {
    async fn on_transaction(&self, events: Vec<Value>, ephemeral: Vec<Value>) {
        for ev in events.iter().chain(&ephemeral) {
            let room_id = ev["room_id"].as_str().unwrap_or_default().to_owned();
            handle(&self.engine, &room_id, ev.clone()).await;
        }
    }

    async fn query_alias(&self, alias: String) -> bool {
        let server = &self.engine.cfg.appservice.server_name;
        let Some(role) = alias
            .strip_prefix('#')
            .and_then(|a| a.strip_suffix(&format!(":{server}")))
            .filter(|r| self.engine.cfg.role(r).is_some())
        else {
            return false;
        };
        match self.engine.role_room(role).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, role, "creating the role room on alias query failed");
                false
            }
        }
    }

    async fn query_user(&self, _user_id: String) -> bool {
        // The bot is the only user of this bridge; the homeserver creates it.
        false
    }
}
