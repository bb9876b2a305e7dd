//! What comes back from the rooms: acknowledgements (a ✅ reaction or a reply to any post of
//! the alert; a read receipt is recorded as "read" and is never an acknowledgement), read
//! receipts, `!oncall` commands; and the status document for the sending system.
//!
//! Events arrive as client-format JSON from the bot's sync (decrypted) and from appservice
//! transactions (unencrypted rooms); each event is handled once (by event id).

use serde_json::{Value, json};

use crate::engine::{Engine, Poster};
use crate::metrics;
use crate::render::{edit_content, notice};

/// Reaction keys that acknowledge (with and without the emoji variation selector).
const ACK_KEYS: &[&str] = &["✅", "✅\u{fe0f}", "✔️", "✔"];

/// A parsed `!oncall` command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Take(String),
    Handover(String, String),
    Who(String),
    Help,
}

pub fn parse_command(body: &str) -> Option<Command> {
    let mut words = body.split_whitespace();
    if words.next()? != "!oncall" {
        return None;
    }
    Some(
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("take"), Some(role), None, None) => Command::Take(role.to_owned()),
            (Some("handover"), Some(role), Some(user), None) => {
                Command::Handover(role.to_owned(), user.to_owned())
            }
            (Some("who"), Some(role), None, None) => Command::Who(role.to_owned()),
            _ => Command::Help,
        },
    )
}

impl<P: Poster> Engine<P> {
    /// The status document of an alert (`GET /alerts/{source}/{alert_id}`, callbacks).
    pub async fn status(&self, source: &str, alert_id: &str) -> anyhow::Result<Option<Value>> {
        let Some(a) = self
            .store
            .get(source.to_owned(), alert_id.to_owned())
            .await?
        else {
            return Ok(None);
        };
        let (posts, reads) = self
            .store
            .posts_and_reads(source.to_owned(), alert_id.to_owned())
            .await?;
        let delivered: Vec<Value> = posts
            .iter()
            .map(|p| {
                json!({"room_id": p.room_id, "event_id": p.event_id, "target": p.target,
                            "recipient": p.recipient, "step": p.step, "at": p.at})
            })
            .collect();
        let escalated: Vec<Value> = posts
            .iter()
            .filter(|p| p.step > 0)
            .map(|p| json!({"step": p.step, "to": p.target, "recipient": p.recipient, "at": p.at}))
            .collect();
        Ok(Some(json!({
            "source": a.source,
            "alert_id": a.alert_id,
            "kind": a.kind,
            "severity": a.severity,
            "rule": a.rule,
            "state": a.state,
            "received_at": a.received_at,
            "delivered": delivered,
            "read_by": reads.iter().map(|r| json!({"user_id": r.user_id, "at": r.at})).collect::<Vec<_>>(),
            "acknowledged": a.ack_by.as_ref().map(|by| json!({"by": by, "at": a.ack_at, "via": a.ack_via})),
            "escalated": escalated,
            "next_escalation_at": a.next_due,
        })))
    }

    /// One client-format event (timeline or ephemeral) from a room the bot is in.
    pub async fn on_event(&self, room_id: &str, ev: &Value) -> anyhow::Result<()> {
        let kind = ev["type"].as_str().unwrap_or_default();
        if kind == "m.receipt" {
            return self.on_receipt(&ev["content"]).await;
        }
        if kind == "m.room.member" && ev["content"]["membership"] == "knock" {
            let (Some(user), Some(event_id)) = (ev["state_key"].as_str(), ev["event_id"].as_str())
            else {
                return Ok(());
            };
            if self.store.first_sight_of_event(event_id.to_owned()).await? {
                self.on_knock(room_id, user).await?;
            }
            return Ok(());
        }
        let sender = ev["sender"].as_str().unwrap_or_default();
        let Some(event_id) = ev["event_id"].as_str() else {
            return Ok(());
        };
        if sender.is_empty()
            || sender == self.bot_user
            || !matches!(kind, "m.reaction" | "m.room.message")
        {
            return Ok(());
        }
        if !self.store.first_sight_of_event(event_id.to_owned()).await? {
            return Ok(());
        }
        let content = &ev["content"];
        let rel = &content["m.relates_to"];
        if kind == "m.reaction" {
            let key = rel["key"].as_str().unwrap_or_default();
            if rel["rel_type"] == "m.annotation"
                && ACK_KEYS.contains(&key)
                && let Some(target) = rel["event_id"].as_str()
            {
                self.ack_event(target, sender, "reaction").await?;
            }
            return Ok(());
        }
        // Edits are not replies (a client may carry the in_reply_to of the original).
        if rel["rel_type"] == "m.replace" {
            return Ok(());
        }
        if let Some(target) = rel["m.in_reply_to"]["event_id"].as_str() {
            self.ack_event(target, sender, "reply").await?;
        }
        if let Some(cmd) = content["body"].as_str().and_then(parse_command) {
            self.on_command(room_id, sender, cmd).await?;
        }
        Ok(())
    }

    async fn ack_event(
        &self,
        target_event: &str,
        by: &str,
        via: &'static str,
    ) -> anyhow::Result<()> {
        let Some((source, id)) = self.store.alert_of_event(target_event.to_owned()).await? else {
            return Ok(());
        };
        let Some(row) = self
            .store
            .acknowledge(source.clone(), id.clone(), by.to_owned(), via, self.now())
            .await?
        else {
            return Ok(()); // already acknowledged: the first one counts
        };
        metrics::acknowledged(
            &source,
            via,
            (self.now() - row.received_at).max(0) as f64 / 1000.0,
        );
        let (posts, _) = self
            .store
            .posts_and_reads(source.clone(), id.clone())
            .await?;
        for p in posts {
            if let Err(e) = self
                .poster
                .send(&p.room_id, edit_content(&row, &p.event_id, None))
                .await
            {
                tracing::warn!(error = %e, room_id = p.room_id, "editing the acknowledged alert failed");
            }
        }
        self.changed(&source, &id).await;
        Ok(())
    }

    /// `m.receipt` content: `{event_id: {"m.read": {user_id: {ts}}}}`.
    async fn on_receipt(&self, content: &Value) -> anyhow::Result<()> {
        let Some(map) = content.as_object() else {
            return Ok(());
        };
        for (event_id, by_type) in map {
            let Some((source, id)) = self.store.alert_of_event(event_id.clone()).await? else {
                continue;
            };
            let mut changed = false;
            for users in ["m.read", "m.read.private"]
                .iter()
                .filter_map(|t| by_type[*t].as_object())
            {
                for (user, r) in users {
                    if user == &self.bot_user {
                        continue;
                    }
                    let at = r["ts"].as_i64().unwrap_or_else(|| self.now());
                    changed |= self
                        .store
                        .add_read(source.clone(), id.clone(), user.clone(), at)
                        .await?;
                }
            }
            if changed {
                self.changed(&source, &id).await;
            }
        }
        Ok(())
    }

    fn eligible(&self, role: &str, user: &str) -> bool {
        match self.cfg.role(role) {
            Some(r) if r.eligible.is_empty() => {
                user.ends_with(&format!(":{}", self.cfg.appservice.server_name))
            }
            Some(r) => r.eligible.iter().any(|e| e == user),
            None => false,
        }
    }

    async fn on_command(&self, room_id: &str, sender: &str, cmd: Command) -> anyhow::Result<()> {
        let reply = match cmd {
            Command::Help => "Usage: !oncall take <role> · !oncall handover <role> <@user:server> · !oncall who <role>".to_owned(),
            Command::Take(role) | Command::Who(role) | Command::Handover(role, _) if self.cfg.role(&role).is_none() => {
                format!("Unknown role {role}.")
            }
            Command::Who(role) => match self.store.holder(role.clone(), self.now()).await? {
                Some(h) => format!("{h} holds {role}."),
                None => format!("Nobody holds {role}."),
            },
            Command::Take(role) if !self.eligible(&role, sender) => {
                self.deny(sender, &role, "not_eligible").await?;
                format!("You are not eligible to hold {role}.")
            }
            Command::Take(role) => {
                self.store
                    .set_override(role.clone(), sender.to_owned(), sender.to_owned(), "role.take", self.now())
                    .await?;
                self.reconcile_roles().await?;
                format!("{sender} now holds {role}.")
            }
            Command::Handover(role, to) => {
                let holder = self.store.holder(role.clone(), self.now()).await?;
                if holder.as_deref() != Some(sender) {
                    self.deny(sender, &role, "not_holder").await?;
                    format!("Only the current holder of {role} can hand it over.")
                } else if !self.eligible(&role, &to) {
                    self.deny(sender, &role, "not_eligible").await?;
                    format!("{to} is not eligible to hold {role}.")
                } else {
                    self.store
                        .set_override(role.clone(), to.clone(), sender.to_owned(), "role.handover_command", self.now())
                        .await?;
                    self.reconcile_roles().await?;
                    format!("{sender} handed {role} over to {to}.")
                }
            }
        };
        self.poster.send(room_id, notice(&reply)).await?;
        Ok(())
    }

    async fn deny(&self, actor: &str, role: &str, rule: &str) -> anyhow::Result<()> {
        use handover_bridge_core::store::AuditEntry;
        self.store
            .db
            .audit(
                AuditEntry::new("role.command", "denied")
                    .actor(actor)
                    .target(role)
                    .detail("rule", rule),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse_command("!oncall take medreg"),
            Some(Command::Take("medreg".into()))
        );
        assert_eq!(
            parse_command("!oncall handover medreg @b:l"),
            Some(Command::Handover("medreg".into(), "@b:l".into()))
        );
        assert_eq!(
            parse_command("!oncall who medreg"),
            Some(Command::Who("medreg".into()))
        );
        assert_eq!(parse_command("!oncall take"), Some(Command::Help));
        assert_eq!(parse_command("hello"), None);
    }
}
