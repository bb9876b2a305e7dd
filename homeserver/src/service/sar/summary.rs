//! `index.html` of an export: a readable summary for the person (no script, no external
//! assets), pointing at the JSON files for the detail. Written in pieces (head, one row per
//! event or audit entry, tail) so the export streams it like the JSON files.

use std::fmt::Write;

use handover_compliance::AuditRecord;
use handover_compliance::html::{STYLE, escape};
use handover_compliance::time::format_rfc3339;

use super::archive::{ENCRYPTED_NOTE, is_encrypted};
use super::{SarCounts, SarHead};
use crate::store::sar::SarEvent;

fn preview(e: &SarEvent) -> String {
    if is_encrypted(e) {
        return "(encrypted: not readable by the server)".into();
    }
    let v: serde_json::Value = serde_json::from_str(&e.json).unwrap_or_default();
    let c = &v["content"];
    let text = (c["body"].as_str())
        .map(str::to_owned)
        .or_else(|| c["membership"].as_str().map(|m| format!("membership: {m}")))
        .unwrap_or_default();
    text.chars().take(200).collect()
}

/// The start of an events table (rows follow, then [`TABLE_END`]).
pub fn events_table_start(caption: &str) -> String {
    format!(
        "<table><caption>{}</caption><tr><th scope=\"col\">Time (UTC)</th>\
         <th scope=\"col\">Room</th><th scope=\"col\">Sender</th><th scope=\"col\">Type</th>\
         <th scope=\"col\">Text</th></tr>",
        escape(caption)
    )
}

pub fn event_row(e: &SarEvent) -> String {
    format!(
        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
        format_rfc3339(e.origin_server_ts),
        escape(&e.room_id),
        escape(&e.sender),
        escape(&e.kind),
        escape(&preview(e))
    )
}

pub const TABLE_END: &str = "</table>";

/// Everything before the events tables.
pub fn head(d: &SarHead, c: &SarCounts) -> String {
    let a = &d.account;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Subject-access request export: {uid}</title><style>{STYLE}</style></head><body>\
         <header><h1>Your data on {server}</h1></header><main>\
         <p>Export for <strong>{uid}</strong>, made {when} (UTC) under UK GDPR Article 15 \
         (right of access). The files in this archive hold the full detail as JSON.</p>\
         <table><caption>Contents</caption>\
         <tr><th scope=\"row\">Account</th><td><code>account.json</code></td><td></td></tr>\
         <tr><th scope=\"row\">Devices and sessions</th><td><code>sessions.json</code></td><td>{sessions}</td></tr>\
         <tr><th scope=\"row\">Rooms and memberships</th><td><code>rooms.json</code></td><td>{rooms}</td></tr>\
         <tr><th scope=\"row\">Messages and events you sent</th><td><code>events_sent.json</code></td><td>{sent}</td></tr>\
         <tr><th scope=\"row\">Events by others that mention you</th><td><code>events_mentioning.json</code></td><td>{mentions}</td></tr>\
         <tr><th scope=\"row\">Files you uploaded</th><td><code>media.json</code>, <code>media/</code></td><td>{media} ({files} files included)</td></tr>\
         <tr><th scope=\"row\">Audit trail entries about you</th><td><code>audit.json</code></td><td>{audit}</td></tr>\
         </table>\
         <p class=\"note\">{enc} {n_enc} of the events are end-to-end encrypted.</p>",
        uid = escape(a.user_id.as_str()),
        server = escape(&d.server_name),
        when = format_rfc3339(d.generated_ts),
        sessions = c.sessions,
        rooms = c.rooms,
        sent = c.events_sent,
        mentions = c.events_mentioning,
        media = c.media,
        files = c.media_files,
        audit = c.audit_entries,
        enc = escape(ENCRYPTED_NOTE),
        n_enc = c.encrypted_events,
    );
    let flag = |b: bool| if b { "yes" } else { "no" };
    let _ = write!(
        o,
        "<h2>Account</h2><table><tr><th scope=\"row\">User id</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Display name</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Created</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Server admin</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Deactivated</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Locked</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Suspended</th><td>{}</td></tr></table>",
        escape(a.user_id.as_str()),
        escape(a.displayname.as_deref().unwrap_or("")),
        format_rfc3339(a.created_ts),
        flag(a.is_admin),
        flag(a.deactivated),
        flag(a.locked),
        flag(a.suspended),
    );
    o.push_str("<h2>Devices and sessions</h2><table><tr><th scope=\"col\">Device</th><th scope=\"col\">Name</th><th scope=\"col\">Last seen (UTC)</th></tr>");
    for s in &d.sessions {
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&s.device_id),
            escape(s.display_name.as_deref().unwrap_or("")),
            s.last_seen_ts.map(format_rfc3339).unwrap_or_default()
        );
    }
    o.push_str("</table><h2>Rooms</h2><table><tr><th scope=\"col\">Room</th><th scope=\"col\">Membership</th></tr>");
    for m in &d.memberships {
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            escape(m.room_id.as_str()),
            escape(&m.membership)
        );
    }
    o.push_str("</table><h2>Events</h2>");
    o
}

/// The files table and the start of the audit table (`included`: which uploads are in the
/// archive, by index).
pub fn files_and_audit_start(d: &SarHead, included: &[bool]) -> String {
    let mut o = String::new();
    o.push_str("<h2>Files</h2><table><tr><th scope=\"col\">File</th><th scope=\"col\">Type</th><th scope=\"col\">Size (bytes)</th><th scope=\"col\">In this archive</th></tr>");
    for (i, (m, _)) in d.media.iter().enumerate() {
        let name = super::archive::media_entry_name(&m.media_id, m.filename.as_deref());
        let included = match (m.quarantined, included.get(i).copied().unwrap_or(false)) {
            (true, _) => "withheld (quarantined)".to_owned(),
            (false, true) => format!("<code>{}</code>", escape(&name)),
            (false, false) => "no longer on disk".to_owned(),
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(m.filename.as_deref().unwrap_or(&m.media_id)),
            escape(m.content_type.as_deref().unwrap_or("")),
            m.size,
            included
        );
    }
    o.push_str("</table><h2>Audit trail</h2><table><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Actor</th><th scope=\"col\">Action</th><th scope=\"col\">Outcome</th></tr>");
    o
}

pub fn audit_row(r: &AuditRecord) -> String {
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        format_rfc3339(r.ts),
        escape(&r.actor),
        escape(&r.action),
        r.outcome.as_str()
    )
}

/// After the audit rows.
pub fn tail() -> &'static str {
    "</table><p>Not included: your password and sign-in tokens (the server stores only one-way hashes of them) and your encryption keys (held by your devices).</p></main></body></html>"
}
