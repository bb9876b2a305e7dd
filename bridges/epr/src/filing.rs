//! File to record: a member marks a message or a photo (📋 reaction, or `!file` in reply) and
//! the bridge writes it to the patient's record as a FHIR `Communication` (text) or a
//! `DocumentReference` (a photo or file, decrypted by the bot, as the attachment), in one
//! transaction Bundle, then confirms in the room with the resource id.
//!
//! Durable and idempotent: a request is a row of the `filings` queue keyed by the Matrix event
//! id, committed before anything is sent (a second request for the same event is answered from
//! that row; it is never filed twice). The row holds what to file, because after a restart the
//! bot has a new device and cannot decrypt older events. A FHIR server that is down (or 5xx,
//! 429, 408) leaves the row queued and retried with doubling delays; a refusal (4xx with an
//! `OperationOutcome`) ends it as failed. Both are shown in the room with the reason and audited;
//! message bodies are never logged.

use std::sync::Arc;

use chrono::SecondsFormat;
use handover_bridge_core::render::notice_reply;
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::{EventId, RoomId};
use serde_json::{Value, json};

use crate::fhir::FhirError;
use crate::fhir::resources::{self, Filing};
use crate::rooms::Epr;
use crate::state::{FilingRow, NewFiling, PatientRoom};

/// What a message event can be filed as.
#[derive(Debug, PartialEq)]
pub enum Fileable {
    Text(String),
    /// The media source (`url`, or `file` with its key), mimetype and name.
    File(Value),
}

/// Reads a (decrypted) message event: text messages and photos / files can be filed.
pub fn fileable(ev: &Value) -> Result<Fileable, &'static str> {
    if ev["type"] == "m.room.encrypted" {
        return Err(
            "I cannot read that message (I have no key for it); send it again and file the new one",
        );
    }
    if ev["type"] != "m.room.message" {
        return Err("only messages, photos and files can be filed");
    }
    let c = &ev["content"];
    if c["m.relates_to"]["rel_type"] == "m.replace" {
        return Err("file the original message, not an edit");
    }
    match c["msgtype"].as_str() {
        Some("m.text" | "m.notice" | "m.emote") => {
            let body = c["body"].as_str().unwrap_or_default().trim();
            if body.is_empty() {
                return Err("the message is empty");
            }
            Ok(Fileable::Text(body.to_owned()))
        }
        Some("m.image" | "m.file") => {
            let source = if c.get("file").is_some() {
                json!({"file": c["file"]})
            } else if c.get("url").is_some() {
                json!({"url": c["url"]})
            } else {
                return Err("the file has no content to fetch");
            };
            let mimetype = c["info"]["mimetype"]
                .as_str()
                .unwrap_or("application/octet-stream");
            let name = c["filename"]
                .as_str()
                .or(c["body"].as_str())
                .unwrap_or("file");
            Ok(Fileable::File(
                json!({"source": source, "mimetype": mimetype, "name": name}),
            ))
        }
        _ => Err("only text messages, photos and files can be filed"),
    }
}

/// The delay before attempt `attempts + 1`: `initial` doubling, at most `max` (seconds).
pub fn backoff_ms(attempts: i64, initial_secs: u64, max_secs: u64) -> i64 {
    let exp = (attempts.max(1) - 1).min(20) as u32;
    let secs = initial_secs
        .max(1)
        .saturating_mul(1u64 << exp)
        .min(max_secs.max(1));
    (secs * 1000) as i64
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Epr {
    /// Posts a notice answering `event_id` (failures to post are logged: the queue is the truth).
    pub async fn say(&self, room_id: &RoomId, event_id: &str, text: &str) {
        if let Err(e) = self
            .bot
            .send(room_id, "m.room.message", notice_reply(text, event_id))
            .await
        {
            tracing::warn!(error = %e, room_id = %room_id, "posting a notice failed");
        }
    }

    /// A member asked to file `target` (an event of `room`).
    pub async fn request_filing(
        &self,
        room: &PatientRoom,
        target: &str,
        requested_by: &str,
    ) -> anyhow::Result<()> {
        let room_id = <&RoomId>::try_from(room.room_id.as_str())?;
        let event_id = <&EventId>::try_from(target)?;
        let ev = match self.bot.room(room_id).await?.event(event_id, None).await {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "fetching the event to file failed");
                self.say(
                    room_id,
                    target,
                    "Not filed: I could not fetch that message.",
                )
                .await;
                return Ok(());
            }
        };
        let json: Value = serde_json::from_str(ev.raw().json().get())?;
        let (kind, payload) = match fileable(&json) {
            Ok(Fileable::Text(t)) => ("text", json!({"body": t})),
            Ok(Fileable::File(f)) => ("file", f),
            Err(why) => {
                self.say(room_id, target, &format!("Not filed: {why}."))
                    .await;
                return Ok(());
            }
        };
        let new = NewFiling {
            event_id: target.to_owned(),
            room_id: room.room_id.clone(),
            kind,
            requested_by: requested_by.to_owned(),
            author: json["sender"].as_str().unwrap_or_default().to_owned(),
            sent_at: json["origin_server_ts"]
                .as_i64()
                .unwrap_or_else(|| self.now()),
            payload: payload.to_string(),
        };
        match self.store.enqueue(new, self.now()).await? {
            None => self.wake.notify_one(),
            Some(existing) => {
                let text = match (existing.state.as_str(), &existing.resource) {
                    ("filed", Some(r)) => format!("Already filed to the record as {r}."),
                    ("failed", _) => format!(
                        "Already tried: the record refused it ({}).",
                        existing.last_error.as_deref().unwrap_or("no reason given")
                    ),
                    _ => "Already queued for filing.".to_owned(),
                };
                self.say(room_id, target, &text).await;
            }
        }
        Ok(())
    }

    /// The filing worker: due rows every `filing.tick_ms`, or at once when woken.
    pub async fn run_filing(self: Arc<Self>) {
        let every = std::time::Duration::from_millis(self.cfg.filing.tick_ms.max(10));
        loop {
            match self.store.due(self.now()).await {
                Ok(rows) => {
                    for row in rows {
                        self.attempt(row).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the filing queue failed"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One attempt at filing a queued row.
    pub async fn attempt(&self, row: FilingRow) {
        let Ok(room_id) = <&RoomId>::try_from(row.room_id.as_str()) else {
            return;
        };
        let outcome = self.file(&row).await;
        let result = match outcome {
            Ok(resource) => {
                let r = self
                    .store
                    .filed(row.event_id.clone(), resource.clone())
                    .await;
                if matches!(r, Ok(true)) {
                    let text = format!("📋 Filed to the patient's record as {resource}.");
                    self.say(room_id, &row.event_id, &text).await;
                }
                r.map(|_| ())
            }
            Err(e) if e.retryable() => {
                let attempts = row.attempts + 1;
                let f = &self.cfg.filing;
                let next =
                    self.now() + backoff_ms(attempts, f.retry_initial_secs, f.retry_max_secs);
                let r = self
                    .store
                    .retry_later(row.event_id.clone(), e.to_string(), next)
                    .await;
                // Said once: the confirmation follows when a retry succeeds.
                if attempts == 1 {
                    let text = format!(
                        "⚠️ Not filed yet: {e}. It stays queued and is retried automatically."
                    );
                    self.say(room_id, &row.event_id, &text).await;
                }
                r.map(|_| ())
            }
            Err(e) => {
                let r = self.store.failed(row.event_id.clone(), e.to_string()).await;
                if matches!(r, Ok(true)) {
                    self.say(room_id, &row.event_id, &format!("❌ Not filed: {e}."))
                        .await;
                }
                r.map(|_| ())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "recording a filing outcome failed; it will be tried again");
        }
    }

    /// Builds and sends the transaction; the `Type/id` created (or found, on a retry).
    async fn file(&self, row: &FilingRow) -> Result<String, FhirError> {
        let refused = |reason: &str| FhirError::Refused {
            status: 0,
            reason: reason.to_owned(),
        };
        let room = self
            .store
            .patient_of_room(row.room_id.clone())
            .await
            .map_err(|e| FhirError::Unavailable(format!("bridge state: {e}")))?
            .ok_or_else(|| refused("the room is no longer linked to a patient"))?;
        let payload: Value = row
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| refused("nothing left to file"))?;
        let practitioner = self.practitioner_of(&row.author).await?;
        let f = Filing {
            event_id: row.event_id.clone(),
            room_id: row.room_id.clone(),
            patient_ref: room.reference(),
            author: resources::author_reference(practitioner.as_deref(), &row.author),
            sent: rfc3339(row.sent_at),
        };
        let resource = if row.kind == "text" {
            resources::communication(&f, payload["body"].as_str().unwrap_or_default())
        } else {
            let source: MediaSource = serde_json::from_value(payload["source"].clone())
                .map_err(|_| refused("the file's source is not readable"))?;
            let bytes = self.bot.download(source).await.map_err(|e| {
                tracing::warn!(error = %e, "downloading a file to file failed");
                FhirError::Unavailable("the file could not be fetched from the homeserver".into())
            })?;
            if bytes.len() as u64 > self.cfg.filing.max_file_bytes {
                return Err(refused(&format!(
                    "the file is larger than {} bytes",
                    self.cfg.filing.max_file_bytes
                )));
            }
            let mimetype = payload["mimetype"]
                .as_str()
                .unwrap_or("application/octet-stream");
            let name = payload["name"].as_str().unwrap_or("file");
            resources::document(&f, mimetype, name, &bytes)
        };
        let response = self
            .fhir
            .transaction(&resources::transaction(resource, &row.event_id))
            .await?;
        resources::created_reference(&response)
            .ok_or_else(|| FhirError::Unavailable("the EPR's answer names no resource".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_can_be_filed() {
        let text = json!({"type": "m.room.message", "content": {"msgtype": "m.text", "body": " Plan: fluids "}});
        assert_eq!(
            fileable(&text).unwrap(),
            Fileable::Text("Plan: fluids".into())
        );
        let img = json!({"type": "m.room.message", "content": {"msgtype": "m.image", "body": "wound.jpg",
            "info": {"mimetype": "image/jpeg"}, "file": {"url": "mxc://x/y", "key": {"k": "secret"}}}});
        let Fileable::File(f) = fileable(&img).unwrap() else {
            panic!()
        };
        assert_eq!(f["source"]["file"]["url"], "mxc://x/y");
        assert_eq!(
            (f["mimetype"].as_str(), f["name"].as_str()),
            (Some("image/jpeg"), Some("wound.jpg"))
        );
        let source: MediaSource = serde_json::from_value(json!({"url": "mxc://x/plain"})).unwrap();
        assert!(matches!(source, MediaSource::Plain(_)));
        let utd = json!({"type": "m.room.encrypted", "content": {}});
        assert!(fileable(&utd).unwrap_err().contains("no key"));
        let edit = json!({"type": "m.room.message", "content": {"msgtype": "m.text", "body": "* x",
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$a"}}});
        assert!(fileable(&edit).unwrap_err().contains("edit"));
        let loc =
            json!({"type": "m.room.message", "content": {"msgtype": "m.location", "body": "x"}});
        assert!(fileable(&loc).is_err());
        assert!(fileable(&json!({"type": "m.reaction"})).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff_ms(1, 5, 60), 5_000);
        assert_eq!(backoff_ms(2, 5, 60), 10_000);
        assert_eq!(backoff_ms(4, 5, 60), 40_000);
        assert_eq!(backoff_ms(5, 5, 60), 60_000);
        assert_eq!(backoff_ms(500, 5, 60), 60_000);
        assert_eq!(rfc3339(1_750_000_000_123), "2025-06-15T15:06:40.123Z");
    }
}
