//! The export's files: JSON per area, the uploaded files under `media/`, and `index.html`,
//! written into the ZIP as they are read (`SarZip`): events and audit entries a page at a time,
//! files copied in chunks, so memory stays bounded whatever the person's history. Runs on
//! blocking threads (reads files, compresses).

use std::io::{Seek, Write};

use handover_compliance::AuditRecord;
use handover_compliance::time::format_rfc3339;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::SarHead;
use crate::error::{Error, Result};
use crate::store::sar::SarEvent;

/// Said next to every encrypted event (and in index.html).
pub const ENCRYPTED_NOTE: &str = "End-to-end encrypted: the server holds only this ciphertext \
     and cannot read it. The keys are on the participants' own devices; the readable message \
     can be exported from the person's own client (e.g. Element's 'Export chat').";

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

pub fn event_json(e: &SarEvent) -> Value {
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

/// A ZIP being written entry by entry. JSON arrays are written an item at a time in exactly
/// the layout `serde_json::to_vec_pretty` gives the whole array.
pub struct SarZip<W: Write + Seek> {
    z: ZipWriter<W>,
    opts: SimpleFileOptions,
    /// Items written into the open array entry.
    items: usize,
}

impl<W: Write + Seek> SarZip<W> {
    pub fn new(out: W, generated_ts: i64) -> Self {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(zip_time(generated_ts));
        Self {
            z: ZipWriter::new(out),
            opts,
            items: 0,
        }
    }

    pub fn start(&mut self, name: &str) -> Result<()> {
        self.z.start_file(name, self.opts).map_err(zip_err)
    }

    /// Bytes into the open entry.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.z.write_all(bytes).map_err(zip_err)
    }

    pub fn put(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.start(name)?;
        self.write(bytes)
    }

    pub fn put_json(&mut self, name: &str, v: &Value) -> Result<()> {
        self.put(name, &serde_json::to_vec_pretty(v).unwrap_or_default())
    }

    pub fn begin_array(&mut self, name: &str) -> Result<()> {
        self.items = 0;
        self.start(name)
    }

    /// One item: indented by two spaces, as inside a pretty-printed array (JSON strings
    /// never hold a raw newline, so indenting line by line is exact).
    pub fn array_item(&mut self, v: &Value) -> Result<()> {
        let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
        let mut out = String::with_capacity(pretty.len() + 16);
        out.push_str(if self.items == 0 { "[\n" } else { ",\n" });
        for (i, line) in pretty.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("  ");
            out.push_str(line);
        }
        self.items += 1;
        self.write(out.as_bytes())
    }

    pub fn end_array(&mut self) -> Result<()> {
        match self.items {
            0 => self.write(b"[]"),
            _ => self.write(b"\n]"),
        }
    }

    /// Copies a file into a new entry in chunks; false (and no entry) if it cannot be read.
    pub fn copy_file(&mut self, name: &str, path: &std::path::Path) -> Result<bool> {
        let Ok(mut f) = std::fs::File::open(path) else {
            return Ok(false);
        };
        self.start(name)?;
        std::io::copy(&mut f, &mut self.z).map_err(zip_err)?;
        Ok(true)
    }

    pub fn finish(self) -> Result<W> {
        self.z.finish().map_err(zip_err)
    }
}

/// account.json, sessions.json and rooms.json: the small, bounded parts.
pub fn write_head<W: Write + Seek>(z: &mut SarZip<W>, d: &SarHead) -> Result<()> {
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
    z.put_json("account.json", &account)?;
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
    z.put_json("sessions.json", &json!(sessions))?;
    let rooms: Vec<Value> = (d.memberships.iter())
        .map(|m| {
            json!({
                "room_id": m.room_id, "membership": m.membership,
                "membership_event_id": m.event_id, "forgotten": m.forgotten,
            })
        })
        .collect();
    z.put_json("rooms.json", &json!(rooms))
}

/// The uploaded files under `media/` (streamed from disk) and media.json. Returns how many
/// files went in, and which uploads did (by index, for index.html).
pub fn write_media<W: Write + Seek>(z: &mut SarZip<W>, d: &SarHead) -> Result<Vec<bool>> {
    let mut media = Vec::new();
    let mut included = Vec::new();
    for (m, path) in &d.media {
        let mut entry = json!({
            "mxc": format!("mxc://{}/{}", d.server_name, m.media_id),
            "content_type": m.content_type, "filename": m.filename, "size": m.size,
            "sha256": m.sha256, "uploaded": time(m.created_ts), "sent_in": m.bound_to,
        });
        let name = media_entry_name(&m.media_id, m.filename.as_deref());
        let copied = match (m.quarantined, path) {
            (false, Some(p)) => z.copy_file(&name, p)?,
            _ => false,
        };
        match (copied, m.quarantined) {
            (_, true) => {
                entry["file"] = Value::Null;
                entry["note"] = json!(
                    "Withheld: flagged by the malware scanner and quarantined. The IG lead \
                     can provide it after review."
                );
            }
            (true, false) => entry["file"] = json!(name),
            (false, false) => {
                entry["file"] = Value::Null;
                entry["note"] = json!("The file is no longer on disk (deleted by retention).");
            }
        }
        included.push(copied);
        media.push(entry);
    }
    z.put_json("media.json", &json!(media))?;
    Ok(included)
}

pub fn audit_json(r: &AuditRecord) -> Value {
    serde_json::from_str(&handover_compliance::to_json_line(r)).unwrap_or_default()
}

/// export.json: what the archive is, and what it leaves out.
pub fn about(d: &SarHead, counts: &super::SarCounts) -> Value {
    json!({
        "subject": d.account.user_id,
        "server": d.server_name,
        "generated": time(d.generated_ts),
        "requested_by": d.requested_by,
        "legal_basis": "UK GDPR Article 15 (right of access)",
        "counts": counts,
        "encrypted_note": ENCRYPTED_NOTE,
        "not_included": [
            "passwords (only a one-way hash is stored, never exported)",
            "access and refresh tokens (only hashes are stored, never exported)",
            "end-to-end encryption keys (held by the person's devices)",
        ],
    })
}
