//! The alerts engine: accepts validated alerts, posts them, escalates the unacknowledged ones
//! on durable timers and keeps on-call role rooms with their current holder. It talks to
//! Matrix only through [`Poster`] (the bot in production, a recorder in unit tests) and reads
//! time from an injected [`Clock`].
//!
//! Timers are rows (`alerts.next_due`), checked every tick: a restart of the bridge or the
//! server neither loses a due escalation (it fires at the next tick) nor repeats a recorded one
//! (the step number is part of the update's condition). A crash between sending a step's
//! message and recording it sends that step again after restart: a duplicate is preferred to a
//! missed escalation.

use std::future::Future;
use std::sync::Arc;

use handover_bridge_core::Clock;
use handover_bridge_core::bot::NewRoom;
use handover_bridge_core::store::AuditEntry;
use serde_json::Value;
use tokio::sync::{Mutex, Notify};

use crate::alert::Alert;
use crate::callback::Callbacks;
use crate::config::Config;
use crate::metrics;
use crate::render::{alert_content, notice};
use crate::routing::{Rules, Target};
use crate::state::{AlertRow, AlertStore, Inserted, Post};

/// What the engine needs from Matrix.
pub trait Poster: Send + Sync + 'static {
    /// Creates an encrypted room; returns its id.
    fn create_room(&self, spec: NewRoom) -> impl Future<Output = anyhow::Result<String>> + Send;
    /// Sends an `m.room.message`; returns the event id.
    fn send(
        &self,
        room_id: &str,
        content: Value,
    ) -> impl Future<Output = anyhow::Result<String>> + Send;
    fn invite(&self, room_id: &str, user: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Removes `user` (a member, an invitee, or a knock: declined).
    fn kick(
        &self,
        room_id: &str,
        user: &str,
        reason: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Outcome of an accepted webhook.
pub enum Accepted {
    New { rule: String },
    Duplicate,
}

#[derive(Debug)]
pub enum AcceptError {
    NoRoute,
    Conflict,
    Store(String),
}

pub struct Engine<P: Poster> {
    pub cfg: Arc<Config>,
    pub rules: Rules,
    pub store: AlertStore,
    pub poster: P,
    pub clock: Arc<dyn Clock>,
    pub callbacks: Option<Arc<Callbacks>>,
    pub bot_user: String,
    wake: Notify,
    /// Serialises room creation (one room per key, even when two alerts race).
    rooms: Mutex<()>,
    /// Serialises holder changes (the tick and a rota import must not apply one twice).
    holders: Mutex<()>,
}

impl<P: Poster> Engine<P> {
    pub fn new(
        cfg: Arc<Config>,
        store: AlertStore,
        poster: P,
        clock: Arc<dyn Clock>,
        callbacks: Option<Arc<Callbacks>>,
    ) -> Result<Self, String> {
        Ok(Self {
            rules: cfg.rules()?,
            bot_user: cfg.appservice.bot_user_id(),
            cfg,
            store,
            poster,
            clock,
            callbacks,
            wake: Notify::new(),
            rooms: Mutex::new(()),
            holders: Mutex::new(()),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Routes and stores a validated alert (durable before the sender hears 202), then wakes
    /// the poster.
    pub async fn accept(&self, a: Alert, body_hash: String) -> Result<Accepted, AcceptError> {
        let rule = self
            .rules
            .route(&a)
            .ok_or(AcceptError::NoRoute)?
            .name
            .clone();
        let source = a.source.clone();
        match self
            .store
            .insert(a, rule.clone(), body_hash, self.now())
            .await
        {
            Ok(Inserted::New) => {
                metrics::received(&source, "accepted");
                self.wake.notify_one();
                Ok(Accepted::New { rule })
            }
            Ok(Inserted::Duplicate) => {
                metrics::received(&source, "duplicate");
                Ok(Accepted::Duplicate)
            }
            Ok(Inserted::Conflict) => Err(AcceptError::Conflict),
            Err(e) => Err(AcceptError::Store(e.to_string())),
        }
    }

    /// Creates the configured rooms and role rooms up front, so members can join before the
    /// first alert (and role aliases resolve).
    pub async fn prepare(&self) {
        let targets = self.cfg.rooms.iter().map(|r| Target::Room(r.id.clone()));
        for t in targets {
            if let Err(e) = self.managed_room(&t).await {
                tracing::warn!(error = %e, room = t.key(), "creating a managed room failed; retried on use");
            }
        }
        for r in &self.cfg.roles {
            if let Err(e) = self.role_room(&r.id).await {
                tracing::warn!(error = %e, role = r.id, "creating a role room failed; retried on use");
            }
        }
    }

    /// Runs ticks forever: every `tick_ms`, or at once when an alert arrives.
    pub async fn run(self: Arc<Self>) {
        self.prepare().await;
        let every = std::time::Duration::from_millis(self.cfg.escalation.tick_ms.max(10));
        loop {
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "alerts tick failed; retrying");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: role holders, then pending alerts, then due escalations.
    pub async fn tick(&self) -> anyhow::Result<()> {
        self.reconcile_roles().await?;
        for row in self.store.pending().await? {
            if let Err(e) = self.post_first(&row).await {
                tracing::warn!(source = row.source, alert_id = row.alert_id, error = %e, "posting alert failed; will retry");
            }
        }
        for row in self.store.due(self.now()).await? {
            if let Err(e) = self.escalate(&row).await {
                tracing::warn!(source = row.source, alert_id = row.alert_id, error = %e, "escalation failed; will retry");
            }
        }
        Ok(())
    }

    fn due_after(&self, rule: &str, done: usize) -> Option<i64> {
        let step = self.rules.by_name(rule)?.step(done)?;
        Some(self.now() + step.after.as_millis() as i64)
    }

    async fn post_first(&self, row: &AlertRow) -> anyhow::Result<()> {
        let Some(rule) = self.rules.by_name(&row.rule) else {
            anyhow::bail!("rule {} is no longer configured", row.rule);
        };
        let post = self.deliver(row, &rule.target, 0, None).await?;
        let audit = AuditEntry::new("alert.posted", "ok")
            .target(format!("{}/{}", row.source, row.alert_id))
            .detail("to", rule.target.key())
            .detail("room_id", post.room_id.clone());
        let next = self.due_after(&row.rule, 0);
        let moved = self
            .store
            .record_step(
                row.source.clone(),
                row.alert_id.clone(),
                0,
                vec![post],
                next,
                audit,
            )
            .await?;
        if moved {
            metrics::posted(&row.source);
            self.changed(&row.source, &row.alert_id).await;
        }
        Ok(())
    }

    async fn escalate(&self, row: &AlertRow) -> anyhow::Result<()> {
        let done = row.esc_step as usize;
        let Some(step) = self.rules.by_name(&row.rule).and_then(|r| r.step(done)) else {
            // Rule changed since the timer was set: nothing more to do.
            let audit = AuditEntry::new("alert.escalation_ended", "ok")
                .target(format!("{}/{}", row.source, row.alert_id));
            self.store
                .record_step(
                    row.source.clone(),
                    row.alert_id.clone(),
                    row.esc_step + 1,
                    vec![],
                    None,
                    audit,
                )
                .await?;
            return Ok(());
        };
        let mins = step.after.as_secs_f64() / 60.0;
        let note = format!(
            "⏫ Escalated (step {}): not acknowledged after {mins:.1} min",
            done + 1
        );
        let post = self
            .deliver(row, &step.to, row.esc_step + 1, Some(&note))
            .await?;
        let audit = AuditEntry::new("alert.escalated", "ok")
            .target(format!("{}/{}", row.source, row.alert_id))
            .detail("step", done + 1)
            .detail("to", step.to.key())
            .detail("recipient", post.recipient.clone());
        let next = self.due_after(&row.rule, done + 1);
        let moved = self
            .store
            .record_step(
                row.source.clone(),
                row.alert_id.clone(),
                row.esc_step + 1,
                vec![post],
                next,
                audit,
            )
            .await?;
        if moved {
            metrics::escalated(&row.source, row.esc_step + 1);
            self.changed(&row.source, &row.alert_id).await;
        }
        Ok(())
    }

    /// Posts the alert to `target`: a managed room, the role's room (mentioning the holder) or
    /// a DM with a user.
    async fn deliver(
        &self,
        row: &AlertRow,
        target: &Target,
        step: i64,
        note: Option<&str>,
    ) -> anyhow::Result<Post> {
        let (room_id, recipient) = match target {
            Target::Room(_) => (self.managed_room(target).await?, None),
            Target::Role(id) => (
                self.role_room(id).await?,
                self.store.holder(id.clone(), self.now()).await?,
            ),
            Target::User(u) => (self.managed_room(target).await?, Some(u.clone())),
        };
        let content = alert_content(row, note, recipient.as_deref());
        let event_id = self.poster.send(&room_id, content).await?;
        Ok(Post {
            room_id,
            event_id,
            step,
            target: target.key(),
            recipient,
            at: self.now(),
        })
    }

    /// The room for a `room:` or `user:` target, created (encrypted, members invited) on first use.
    async fn managed_room(&self, target: &Target) -> anyhow::Result<String> {
        let key = target.key();
        let _guard = self.rooms.lock().await;
        if let Some(id) = self.store.managed_room(key.clone()).await? {
            return Ok(id);
        }
        let spec = match target {
            Target::Room(id) => {
                let cfg = self
                    .cfg
                    .room(id)
                    .ok_or_else(|| anyhow::anyhow!("room {id} not configured"))?;
                NewRoom {
                    name: cfg.name.clone(),
                    topic: Some("Clinical alerts (Handover alerts bridge)".into()),
                    invite: cfg
                        .members
                        .iter()
                        .filter_map(|m| m.as_str().try_into().ok())
                        .collect(),
                    ..Default::default()
                }
            }
            Target::User(u) => NewRoom {
                name: "Clinical alerts".into(),
                topic: Some("Alerts escalated to you (Handover alerts bridge)".into()),
                invite: vec![u.as_str().try_into()?],
                is_direct: true,
                ..Default::default()
            },
            Target::Role(_) => unreachable!("role rooms are made by role_room"),
        };
        let id = self.poster.create_room(spec).await?;
        self.store.set_managed_room(key.clone(), id.clone()).await?;
        self.store
            .db
            .audit(
                AuditEntry::new("room.created", "ok")
                    .target(key)
                    .detail("room_id", id.clone()),
            )
            .await?;
        Ok(id)
    }

    /// The room of an on-call role, published as `#<role>:server`; members are managed by
    /// [`Engine::reconcile_roles`].
    pub async fn role_room(&self, role: &str) -> anyhow::Result<String> {
        let key = Target::Role(role.to_owned()).key();
        let _guard = self.rooms.lock().await;
        if let Some(id) = self.store.managed_room(key.clone()).await? {
            return Ok(id);
        }
        let cfg = self
            .cfg
            .role(role)
            .ok_or_else(|| anyhow::anyhow!("role {role} not configured"))?;
        let name = if cfg.name.is_empty() {
            role.to_owned()
        } else {
            cfg.name.clone()
        };
        let id = self
            .poster
            .create_room(NewRoom {
                name: format!("On call: {name}"),
                topic: Some(format!(
                    "Alerts and messages for whoever holds {role} (Handover alerts bridge)"
                )),
                alias_localpart: Some(role.to_owned()),
                // Staff ask to join through the alias; the bot opens a room with the holder.
                knock: true,
                ..Default::default()
            })
            .await?;
        self.store.set_managed_room(key.clone(), id.clone()).await?;
        self.store
            .db
            .audit(
                AuditEntry::new("room.created", "ok")
                    .target(key)
                    .detail("room_id", id.clone()),
            )
            .await?;
        Ok(id)
    }

    /// Applies holder changes (rota or command): the new holder is invited into the role room,
    /// the previous one removed, and every open alert of the role is posted again for the new
    /// holder (they cannot decrypt messages sent before they joined).
    pub async fn reconcile_roles(&self) -> anyhow::Result<()> {
        let _guard = self.holders.lock().await;
        let roles = self.cfg.roles.iter().map(|r| r.id.clone()).collect();
        for ch in self.store.holder_changes(roles, self.now()).await? {
            let room = self.role_room(&ch.role).await?;
            if let Some(to) = &ch.to
                && let Err(e) = self.poster.invite(&room, to).await
            {
                tracing::debug!(error = %e, "invite of the new holder (may already be a member)");
            }
            if let Some(from) = ch.from.as_ref().filter(|f| Some(*f) != ch.to.as_ref())
                && let Err(e) = self
                    .poster
                    .kick(&room, from, "On-call role handed over")
                    .await
            {
                tracing::debug!(error = %e, "removing the previous holder (may have left)");
            }
            let text = match (&ch.from, &ch.to) {
                (_, Some(to)) => format!(
                    "{to} now holds {} (was {}).",
                    ch.role,
                    ch.from.as_deref().unwrap_or("nobody")
                ),
                (_, None) => format!("Nobody holds {} now.", ch.role),
            };
            self.poster.send(&room, notice(&text)).await?;
            self.hand_over_callers(&ch).await?;
            self.store.applied_holder(ch.clone(), self.now()).await?;
            let Some(to) = ch.to else { continue };
            let target = Target::Role(ch.role.clone());
            for row in self.store.open_for_target(target.key()).await? {
                let note = format!("Handed over to you as {}: still open.", ch.role);
                let event_id = self
                    .poster
                    .send(&room, alert_content(&row, Some(&note), Some(&to)))
                    .await?;
                let post = Post {
                    room_id: room.clone(),
                    event_id,
                    step: row.esc_step,
                    target: target.key(),
                    recipient: Some(to.clone()),
                    at: self.now(),
                };
                self.store
                    .add_posts(row.source.clone(), row.alert_id.clone(), vec![post])
                    .await?;
                self.changed(&row.source, &row.alert_id).await;
            }
        }
        Ok(())
    }

    /// Something visible changed: queue the status for the source's callback.
    pub async fn changed(&self, source: &str, alert_id: &str) {
        let Some(cb) = &self.callbacks else { return };
        let queued = match self.status(source, alert_id).await {
            Ok(Some(s)) => cb.enqueue(source, alert_id, s).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = queued {
            tracing::warn!(error = %e, source, alert_id, "queueing the status callback failed");
        }
    }
}
