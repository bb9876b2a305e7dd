//! What members say to the bridge in a patient room (events arrive decrypted from the bot's
//! sync, each handled once by event id):
//! - a 📋 reaction (`filing.reaction`) on a message or photo, or `!file` in reply to it: file it
//!   to the record;
//! - `!patient`: the patient's name, NHS number, date of birth and gender, fetched from the EPR
//!   now and posted in the (encrypted) room — the only place the bridge shows them;
//! - `!epr`: help.

use handover_bridge_core::render::notice_reply;
use matrix_sdk::ruma::RoomId;
use serde_json::Value;

use crate::fhir::resources;
use crate::rooms::Epr;

const HELP: &str = "EPR bridge: react 📋 to a message or photo, or reply to it with !file, to file it \
to the patient's record. !patient shows who this room is about (from the EPR).";

/// The command of a message body: its last line that is not a reply-fallback quote.
pub fn command_of(body: &str) -> Option<&str> {
    let line = body
        .lines()
        .filter(|l| !l.starts_with('>'))
        .map(str::trim)
        .rfind(|l| !l.is_empty())?;
    line.starts_with('!').then_some(line)
}

impl Epr {
    /// A reaction or a message from a room the bot is in.
    pub async fn on_event(&self, room_id: &RoomId, ev: Value) -> anyhow::Result<()> {
        let sender = ev["sender"].as_str().unwrap_or_default();
        let Some(event_id) = ev["event_id"].as_str() else {
            return Ok(());
        };
        if sender.is_empty() || sender == self.bot.user_id().as_str() {
            return Ok(());
        }
        let content = &ev["content"];
        let rel = &content["m.relates_to"];
        let command = match ev["type"].as_str() {
            Some("m.reaction") => {
                let key = rel["key"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('\u{fe0f}');
                if rel["rel_type"] != "m.annotation"
                    || key != self.cfg.filing.reaction.trim_end_matches('\u{fe0f}')
                {
                    return Ok(());
                }
                None
            }
            Some("m.room.message") if rel["rel_type"] != "m.replace" => {
                match content["body"].as_str().and_then(command_of) {
                    Some(c) => Some(c.split_whitespace().next().unwrap_or_default().to_owned()),
                    None => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        if !matches!(
            command.as_deref(),
            None | Some("!file" | "!patient" | "!epr")
        ) {
            return Ok(());
        }
        if !self
            .store
            .db
            .first_sight_of_event(event_id.to_owned())
            .await?
        {
            return Ok(());
        }
        let Some(room) = self.store.patient_of_room(room_id.to_string()).await? else {
            if command.is_some() {
                self.say(
                    room_id,
                    event_id,
                    "This room is not linked to a patient in the EPR.",
                )
                .await;
            }
            return Ok(());
        };
        match command.as_deref() {
            None => {
                let target = rel["event_id"].as_str().unwrap_or_default();
                self.request_filing(&room, target, sender).await
            }
            Some("!file") => match rel["m.in_reply_to"]["event_id"].as_str() {
                Some(target) => self.request_filing(&room, target, sender).await,
                None => {
                    self.say(
                        room_id,
                        event_id,
                        "Reply to the message or photo with !file to file it.",
                    )
                    .await;
                    Ok(())
                }
            },
            Some("!patient") => {
                let text = match self.fhir.get(&format!("Patient/{}", room.patient_id)).await {
                    Ok(p) => resources::demographics(&p),
                    Err(e) => format!("Could not fetch the patient: {e}."),
                };
                self.bot
                    .send(room_id, "m.room.message", notice_reply(&text, event_id))
                    .await?;
                let _ = self
                    .store
                    .db
                    .audit(
                        handover_bridge_core::store::AuditEntry::new("patient.shown", "ok")
                            .actor(sender)
                            .target(room.reference())
                            .detail("room_id", room.room_id.clone()),
                    )
                    .await;
                Ok(())
            }
            _ => {
                self.say(room_id, event_id, HELP).await;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_after_reply_fallbacks() {
        assert_eq!(command_of("!file"), Some("!file"));
        assert_eq!(command_of("> <@a:x> Plan: fluids\n\n!file "), Some("!file"));
        assert_eq!(command_of("!patient please"), Some("!patient please"));
        assert_eq!(command_of("Plan: fluids"), None);
        assert_eq!(command_of("> !file"), None);
        assert_eq!(command_of(""), None);
    }
}
