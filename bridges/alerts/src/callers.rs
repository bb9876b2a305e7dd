//! Staff messaging an on-call role (the bleep): the role's room, published as
//! `#<role>:server`, has join rule `knock`. A member of staff asks to join it (knocks through
//! the alias); the bot declines the knock and instead opens (or reopens) a private encrypted
//! room for that caller and the role: the caller, the current holder and the bot. Messages
//! there reach whoever holds the role; when the role changes hands, the bot invites the new
//! holder into every caller room of the role and removes the previous one, with a notice. The
//! role's own room (holder and bot) keeps the role's alerts, so a caller never sees other
//! patients' alerts. Only users of this server may call; others are declined and audited.

use handover_bridge_core::bot::NewRoom;
use handover_bridge_core::store::{AuditEntry, insert_audit};
use rusqlite::{OptionalExtension, params};

use crate::engine::{Engine, Poster};
use crate::render::notice;
use crate::roles::HolderChange;
use crate::routing::Target;
use crate::state::into_sqlite;

impl<P: Poster> Engine<P> {
    /// The configured role whose room this is.
    async fn role_of_room(&self, room_id: &str) -> anyhow::Result<Option<String>> {
        for r in &self.cfg.roles {
            let key = Target::Role(r.id.clone()).key();
            if self.store.managed_room(key).await?.as_deref() == Some(room_id) {
                return Ok(Some(r.id.clone()));
            }
        }
        Ok(None)
    }

    /// `user` knocked on `room_id`: a role room gets them their caller room.
    pub async fn on_knock(&self, room_id: &str, user: &str) -> anyhow::Result<()> {
        let Some(role) = self.role_of_room(room_id).await? else {
            return Ok(());
        };
        let audit = |outcome: &str| {
            AuditEntry::new("role.caller", outcome)
                .actor(user)
                .target(&role)
        };
        if !user.ends_with(&format!(":{}", self.cfg.appservice.server_name)) {
            self.store
                .db
                .audit(audit("denied").detail("rule", "not_local_staff"))
                .await?;
            let reason = "Only staff of this organisation can message the on-call role";
            return self.poster.kick(room_id, user, reason).await;
        }
        let holder = self.store.holder(role.clone(), self.now()).await?;
        let existing = self.caller_room(&role, user).await?;
        let caller_room = match existing {
            Some((room, _)) => {
                // They left it; invite again (an error if they are still in: fine).
                if let Err(e) = self.poster.invite(&room, user).await {
                    tracing::debug!(error = %e, "re-inviting a caller (may still be a member)");
                }
                room
            }
            None => {
                let name = self.cfg.role(&role).map_or(role.clone(), |r| {
                    if r.name.is_empty() {
                        role.clone()
                    } else {
                        r.name.clone()
                    }
                });
                let mut invite = vec![user.try_into()?];
                if let Some(h) = holder.as_deref().filter(|h| *h != user) {
                    invite.push(h.try_into()?);
                }
                let room = self
                    .poster
                    .create_room(NewRoom {
                        name: format!("{name} ⇄ {user}"),
                        topic: Some(format!(
                            "Messages from {user} to whoever holds {role} (Handover alerts bridge)"
                        )),
                        invite,
                        ..Default::default()
                    })
                    .await?;
                let who = holder.as_deref().unwrap_or("nobody (you will be told)");
                let text = format!(
                    "This room reaches whoever holds {role}; now: {who}. When the role is handed over, the new holder joins here."
                );
                self.poster.send(&room, notice(&text)).await?;
                self.record_caller_room(&role, user, &room, holder.as_deref())
                    .await?;
                room
            }
        };
        let reason = format!("Your conversation with {role} is in room {caller_room}");
        if let Err(e) = self.poster.kick(room_id, user, &reason).await {
            tracing::debug!(error = %e, "declining the knock (may be withdrawn)");
        }
        Ok(())
    }

    /// The caller room of `(role, caller)` and the holder last brought into it.
    async fn caller_room(
        &self,
        role: &str,
        caller: &str,
    ) -> anyhow::Result<Option<(String, Option<String>)>> {
        let (role, caller) = (role.to_owned(), caller.to_owned());
        Ok(self
            .store
            .db
            .call(move |c| {
                c.query_row(
                    "SELECT room_id, holder FROM role_callers WHERE role = ?1 AND caller = ?2",
                    params![role, caller],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await
            .map_err(into_sqlite)?)
    }

    async fn record_caller_room(
        &self,
        role: &str,
        caller: &str,
        room: &str,
        holder: Option<&str>,
    ) -> anyhow::Result<()> {
        let (role, caller, room, holder, now) = (
            role.to_owned(),
            caller.to_owned(),
            room.to_owned(),
            holder.map(str::to_owned),
            self.now(),
        );
        self.store
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT OR REPLACE INTO role_callers (role, caller, room_id, holder, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![role, caller, room, holder, now],
                )?;
                insert_audit(
                    &tx,
                    &AuditEntry::new("role.caller", "ok")
                        .actor(&caller)
                        .target(&role)
                        .detail("room_id", room.clone())
                        .detail("holder", holder.clone()),
                )?;
                tx.commit()
            })
            .await
            .map_err(into_sqlite)?;
        Ok(())
    }

    /// A handover reaches every caller room of the role: the new holder in, the previous one
    /// out (unless they are the caller), a notice. Rooms already at the new holder are left.
    pub async fn hand_over_callers(&self, ch: &HolderChange) -> anyhow::Result<()> {
        let role = ch.role.clone();
        let rooms: Vec<(String, String, Option<String>)> = self
            .store
            .db
            .call(move |c| {
                let mut st =
                    c.prepare("SELECT caller, room_id, holder FROM role_callers WHERE role = ?1")?;
                st.query_map([role], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .map_err(into_sqlite)?;
        for (caller, room, had) in rooms {
            if had == ch.to {
                continue;
            }
            if let Some(to) = ch.to.as_deref().filter(|t| *t != caller)
                && let Err(e) = self.poster.invite(&room, to).await
            {
                tracing::debug!(error = %e, "inviting the new holder (may already be in)");
            }
            if let Some(from) = had
                .as_deref()
                .filter(|f| *f != caller && Some(*f) != ch.to.as_deref())
                && let Err(e) = self
                    .poster
                    .kick(&room, from, "On-call role handed over")
                    .await
            {
                tracing::debug!(error = %e, "removing the previous holder (may have left)");
            }
            let text = match ch.to.as_deref() {
                Some(to) => format!(
                    "{to} now holds {} and will read this room from here on.",
                    ch.role
                ),
                None => format!("Nobody holds {} now.", ch.role),
            };
            self.poster.send(&room, notice(&text)).await?;
            let (role, to, caller) = (ch.role.clone(), ch.to.clone(), caller.clone());
            self.store
                .db
                .call(move |c| {
                    c.execute(
                        "UPDATE role_callers SET holder = ?3 WHERE role = ?1 AND caller = ?2",
                        params![role, caller, to],
                    )
                })
                .await
                .map_err(into_sqlite)?;
        }
        Ok(())
    }
}
