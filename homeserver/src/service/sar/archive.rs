//! The export's files: JSON per area, the uploaded files under `media/`, and `index.html`.
//! Runs on a blocking thread (reads media files, compresses).

use std::io::{Seek, Write};

use handover_compliance::time::format_rfc3339;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{SarCounts, SarData, summary};
use crate::error::{Error, Result};
use crate::store::sar::SarEvent;

/// Said next to every encrypted event (and in index.html).
pub const ENCRYPTED_NOTE: &str = "End-to-end encrypted: the server holds only this ciphertext \
     and cannot read it. The keys are on the participants' own devices; the readable message \
     can be exported from the person's own client (e.g. Element's 'Export chat').";

pub fn counts(d: &SarData) -> SarCounts {
    let encrypted = (d.sent.iter().chain(&d.mentions))
        .filter(|e| is_encrypted(e))
        .count();
    SarCounts {
        rooms: d.memberships.len(),
        sessions: d.sessions.len(),
        events_sent: d.sent.len(),
        events_mentioning: d.mentions.len(),
        encrypted_events: encrypted,
        media: d.media.len(),
        media_files: (d.media.iter())
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.exists()))
            .count(),
        audit_entries: d.audit.len(),
    }
}

pub fn is_encrypted(e: &SarEvent) -> bool {
    e.kind == "m.room.encrypted"
}

fn time(ms: i64) -> Value {
    json!(format_rfc3339(ms))
}

fn zip_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("writing the export: {e}"))
}

/// The ZIP entries' timestamp: the export's own time (UTC).
fn zip_time(ms: i64) -> DateTime {
    let t = format_rfc3339(ms);
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
    DateTime::from_date_and_time(
        n(0..4),
        n(5..7) as u8,
        n(8..10) as u8,
        n(11..13) as u8,
        n(14..16) as u8,
        n(17..19) as u8,
    )
    .unwrap_or_default()
}

fn event_json(e: &SarEvent) -> Value {
    let stored: Value = serde_json::from_str(&e.json).unwrap_or(Value::Null);
    let mut v = json!({
        "event_id": e.event_id,
        "room_id": e.room_id,
        "sender": e.sender,
        "type": e.kind,
        "origin_server_ts": e.origin_server_ts,
        "time": time(e.origin_server_ts),
        "content": stored.get("content").cloned().unwrap_or(json!({})),
        "redacted": e.redacted,
    });
    if let Some(k) = &e.state_key {
        v["state_key"] = json!(k);
    }
    if is_encrypted(e) {
        v["encrypted"] = json!(true);
        v["note"] = json!(ENCRYPTED_NOTE);
    }
    v
}

/// A file name for an upload inside the ZIP: the media id, then the original name's safe part.
pub fn media_entry_name(media_id: &str, filename: Option<&str>) -> String {
    let safe: String = (filename.unwrap_or_default().chars())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(80)
        .collect();
    let safe = safe.trim_start_matches('.');
    match safe.is_empty() {
        true => format!("media/{media_id}"),
        false => format!("media/{media_id}_{safe}"),
    }
}

pub fn write<W: Write + Seek>(d: &SarData, out: W) -> Result<W> {
    let mut z = ZipWriter::new(out);
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(d.generated_ts));
    let put = |z: &mut ZipWriter<W>, name: &str, bytes: &[u8]| -> Result<()> {
        z.start_file(name, opts).map_err(zip_err)?;
        z.write_all(bytes).map_err(zip_err)
    };
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();

    let a = &d.account;
    let account = json!({
        "user_id": a.user_id,
        "displayname": a.displayname,
        "avatar_url": a.avatar_url,
        "admin": a.is_admin,
        "deactivated": a.deactivated,
        "erased": a.erased,
        "locked": a.locked,
        "suspended": a.suspended,
        "created_ts": a.created_ts,
        "created": time(a.created_ts),
        "last_seen_ts": a.last_seen_ts,
        "threepids": d.threepids.iter().map(|t| json!({
            "medium": t.medium, "address": t.address,
            "validated": time(t.validated_ts), "added": time(t.added_ts),
        })).collect::<Vec<_>>(),
    });
    put(&mut z, "account.json", &pretty(&account))?;

    let sessions: Vec<Value> = (d.sessions.iter())
        .map(|s| {
            json!({
                "device_id": s.device_id,
                "display_name": s.display_name,
                "created": time(s.created_ts),
                "last_seen": s.last_seen_ts.map(format_rfc3339),
                "last_seen_ip": s.last_seen_ip,
                "signed_in_sessions": s.access_tokens,
            })
        })
        .collect();
    put(&mut z, "sessions.json", &pretty(&json!(sessions)))?;

    let rooms: Vec<Value> = (d.memberships.iter())
        .map(|m| {
            json!({
                "room_id": m.room_id, "membership": m.membership,
                "membership_event_id": m.event_id, "forgotten": m.forgotten,
            })
        })
        .collect();
    put(&mut z, "rooms.json", &pretty(&json!(rooms)))?;
    let sent: Vec<Value> = d.sent.iter().map(event_json).collect();
    put(&mut z, "events_sent.json", &pretty(&json!(sent)))?;
    let mentions: Vec<Value> = d.mentions.iter().map(event_json).collect();
    put(&mut z, "events_mentioning.json", &pretty(&json!(mentions)))?;

    let mut media = Vec::new();
    for (m, path) in &d.media {
        let mut entry = json!({
            "mxc": format!("mxc://{}/{}", d.server_name, m.media_id),
            "content_type": m.content_type, "filename": m.filename, "size": m.size,
            "sha256": m.sha256, "uploaded": time(m.created_ts), "sent_in": m.bound_to,
        });
        let bytes = path.as_ref().and_then(|p| std::fs::read(p).ok());
        match (&bytes, m.quarantined) {
            (_, true) => {
                entry["file"] = Value::Null;
                entry["note"] = json!(
                    "Withheld: flagged by the malware scanner and quarantined. The IG lead \
                     can provide it after review."
                );
            }
            (Some(b), false) => {
                let name = media_entry_name(&m.media_id, m.filename.as_deref());
                put(&mut z, &name, b)?;
                entry["file"] = json!(name);
            }
            (None, false) => {
                entry["file"] = Value::Null;
                entry["note"] = json!("The file is no longer on disk (deleted by retention).");
            }
        }
        media.push(entry);
    }
    put(&mut z, "media.json", &pretty(&json!(media)))?;

    let audit: Vec<Value> = (d.audit.iter())
        .map(|r| serde_json::from_str(&handover_compliance::to_json_line(r)).unwrap_or_default())
        .collect();
    put(&mut z, "audit.json", &pretty(&json!(audit)))?;

    let c = counts(d);
    let about = json!({
        "subject": a.user_id,
        "server": d.server_name,
        "generated": time(d.generated_ts),
        "requested_by": d.requested_by,
        "legal_basis": "UK GDPR Article 15 (right of access)",
        "counts": c,
        "encrypted_note": ENCRYPTED_NOTE,
        "not_included": [
            "passwords (only a one-way hash is stored, never exported)",
            "access and refresh tokens (only hashes are stored, never exported)",
            "end-to-end encryption keys (held by the person's devices)",
        ],
    });
    put(&mut z, "export.json", &pretty(&about))?;
    let html = summary::render(d, &c);
    put(&mut z, "index.html", html.as_bytes())?;
    z.finish().map_err(zip_err)
}
