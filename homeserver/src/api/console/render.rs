//! The console's HTML: tables with captions and header scopes, labelled form fields, every
//! value escaped. No script.

use std::fmt::Write;

use handover_compliance::AuditRecord;
use handover_compliance::html::escape;
use handover_compliance::time::format_rfc3339;

use super::BASE;
use crate::service::admin::LabelledReport;
use crate::service::console::views::{
    AuditSearch, AuditView, FederationView, RetentionView, UserView,
};
use crate::store::console::QuarantinedMedia;

fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

fn note(n: Option<&str>) -> String {
    n.map(|n| format!("<p class=\"note\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default()
}

fn lifetime(ms: Option<u64>) -> String {
    match ms {
        None => "forever / none".into(),
        Some(ms) if ms % 86_400_000 == 0 => format!("{} days", ms / 86_400_000),
        Some(ms) => format!("{ms} ms"),
    }
}

fn table_head(o: &mut String, caption: &str, cols: &[&str]) {
    let _ = write!(o, "<table><caption>{}</caption><tr>", escape(caption));
    for c in cols {
        let _ = write!(o, "<th scope=\"col\">{}</th>", escape(c));
    }
    o.push_str("</tr>");
}

fn row(o: &mut String, cells: &[String]) {
    o.push_str("<tr>");
    for c in cells {
        let _ = write!(o, "<td>{c}</td>");
    }
    o.push_str("</tr>");
}

fn audit_rows(o: &mut String, caption: &str, rows: &[AuditRecord]) {
    table_head(
        o,
        caption,
        &[
            "Seq",
            "Time (UTC)",
            "Actor",
            "Action",
            "Target",
            "Outcome",
            "Rule",
            "Details",
        ],
    );
    for r in rows {
        row(
            o,
            &[
                r.seq.to_string(),
                format_rfc3339(r.ts),
                escape(&r.actor),
                escape(&r.action),
                escape(r.target.as_deref().unwrap_or("")),
                r.outcome.as_str().into(),
                escape(r.rule.as_deref().unwrap_or("")),
                format!(
                    "<code>{}</code>",
                    escape(&serde_json::Value::Object(r.details.clone()).to_string())
                ),
            ],
        );
    }
    o.push_str("</table>");
}

pub fn login_form(nonce: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"bad\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "{err}<p>For server admins: sign in with your Handover (Matrix) account.</p>\
         <form method=\"post\" action=\"{BASE}/login\">{}\
         <label for=\"user\">User name</label>\
         <input id=\"user\" name=\"user\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <div><button type=\"submit\">Sign in</button></div></form>",
        csrf_field(nonce)
    )
}

pub fn retention(v: &RetentionView, csrf: &str, n: Option<&str>) -> String {
    let mut o = note(n);
    table_head(
        &mut o,
        "Retention policy in force ([retention])",
        &["Setting", "Value"],
    );
    for (k, val) in &v.settings {
        row(&mut o, &[format!("<code>{k}</code>"), escape(val)]);
    }
    o.push_str("</table>");
    let next = v
        .next_run_ts
        .map(format_rfc3339)
        .unwrap_or_else(|| "not scheduled".into());
    let _ = write!(o, "<p>Next purge run: <strong>{next}</strong> (UTC).</p>");
    table_head(
        &mut o,
        "Per-room overrides (m.room.retention)",
        &[
            "Room",
            "Requested",
            "Effective maximum",
            "Effective minimum",
        ],
    );
    for r in &v.overrides {
        row(
            &mut o,
            &[
                format!("<code>{}</code>", escape(&r.room_id)),
                format!("<code>{}</code>", escape(&r.requested)),
                lifetime(r.effective_max),
                lifetime(r.effective_min),
            ],
        );
    }
    o.push_str("</table>");
    table_head(
        &mut o,
        "Legal holds",
        &["Kind", "Held", "Reason", "Placed by", "Placed (UTC)"],
    );
    for h in &v.holds {
        row(
            &mut o,
            &[
                h.kind.as_str().into(),
                format!("<code>{}</code>", escape(&h.target)),
                escape(h.reason.as_deref().unwrap_or("")),
                escape(&h.placed_by),
                format_rfc3339(h.placed_ts),
            ],
        );
    }
    o.push_str("</table>");
    let _ = write!(
        o,
        "<h3>Place or release a legal hold</h3><form method=\"post\" action=\"{BASE}/holds\">{}\
         <label for=\"hold-kind\">Kind</label><select id=\"hold-kind\" name=\"kind\">\
         <option value=\"room\">Room</option><option value=\"user\">User</option></select>\
         <label for=\"hold-id\">Room id or user id</label>\
         <input id=\"hold-id\" name=\"id\" required size=\"50\">\
         <label for=\"hold-reason\">Reason (case reference)</label>\
         <input id=\"hold-reason\" name=\"reason\" required size=\"50\">\
         <div><button type=\"submit\" name=\"action\" value=\"place\">Place hold</button> \
         <button type=\"submit\" name=\"action\" value=\"release\" class=\"danger\">Release hold</button></div>\
         </form>",
        csrf_field(csrf)
    );
    audit_rows(&mut o, "Purge history (latest runs)", &v.purges);
    o
}

pub fn federation(v: &FederationView) -> String {
    let mut o = String::new();
    match &v.list {
        None => o.push_str("<p class=\"bad\">No federation list is configured (<code>federation.list_file</code>): this server federates with no one.</p>"),
        Some((serial, signed, orgs)) => {
            let sig = match signed {
                true => "<span class=\"ok\">signature verified</span>",
                false => "<span class=\"bad\">unsigned (no signer key pinned)</span>",
            };
            let _ = write!(o, "<p>Serial <strong>{serial}</strong>, {sig}, {} organisations.</p>", orgs.len());
            table_head(&mut o, "Organisations on the list", &["ODS code", "Name", "Servers"]);
            for org in orgs {
                row(&mut o, &[
                    escape(&org.ods_code),
                    escape(org.name.as_deref().unwrap_or("")),
                    escape(&org.servers.join(", ")),
                ]);
            }
            o.push_str("</table>");
        }
    }
    audit_rows(&mut o, "Last refusals (federation.denial)", &v.refusals);
    audit_rows(&mut o, "List reloads", &v.reloads);
    o
}

pub fn audit(v: &AuditView, q: &AuditSearch) -> String {
    let val = |s: &Option<String>| escape(s.as_deref().unwrap_or(""));
    let mut o = match &v.chain {
        Ok(c) => format!(
            "<p class=\"ok\" role=\"status\">Audit chain intact: {} entries; {} signed checkpoints \
             verified (last at seq {}, {} entries after it). Head hash <code>{}</code>.</p>",
            c.entries,
            c.checkpoints,
            c.last_checkpoint_seq,
            c.unsigned_tail,
            escape(&c.head)
        ),
        Err(b) => format!(
            "<p class=\"bad\" role=\"alert\">{}</p>",
            escape(&b.to_string())
        ),
    };
    let _ = write!(
        o,
        "<form method=\"get\" action=\"{BASE}/audit\">\
         <label for=\"a-user\">User (actor or target)</label><input id=\"a-user\" name=\"user\" value=\"{}\" size=\"40\">\
         <label for=\"a-rule\">Rule id</label><input id=\"a-rule\" name=\"rule\" value=\"{}\">\
         <label for=\"a-since\">From (RFC 3339, date or Unix ms)</label><input id=\"a-since\" name=\"since\" value=\"{}\">\
         <label for=\"a-until\">Until (exclusive)</label><input id=\"a-until\" name=\"until\" value=\"{}\">\
         <div><button type=\"submit\">Search</button> \
         <button type=\"submit\" formaction=\"{BASE}/audit/export\">Export as JSON lines</button></div></form>",
        val(&q.user),
        val(&q.rule),
        val(&q.since),
        val(&q.until)
    );
    audit_rows(
        &mut o,
        &format!("Matching entries (newest first, {} shown)", v.results.len()),
        &v.results,
    );
    o
}

pub fn users(v: &UserView, csrf: &str, n: Option<&str>) -> String {
    let mut o = note(n);
    let _ = write!(
        o,
        "<form method=\"get\" action=\"{BASE}/users\"><label for=\"u-q\">Find (user id or name)</label>\
         <input id=\"u-q\" name=\"q\"><div><button type=\"submit\">Find</button></div></form>"
    );
    if let Some((uid, devices)) = &v.sessions {
        let u = escape(uid.as_str());
        table_head(
            &mut o,
            &format!("Sessions of {uid}"),
            &["Device", "Name", "Last seen (UTC)", "Last address"],
        );
        for d in devices {
            row(
                &mut o,
                &[
                    format!("<code>{}</code>", escape(d.device_id.as_str())),
                    escape(d.display_name.as_deref().unwrap_or("")),
                    d.last_seen_ts.map(format_rfc3339).unwrap_or_default(),
                    escape(d.last_seen_ip.as_deref().unwrap_or("")),
                ],
            );
        }
        let _ = write!(
            o,
            "</table><form class=\"inline\" method=\"post\" action=\"{BASE}/users/end-sessions\">{c}\
             <input type=\"hidden\" name=\"user\" value=\"{u}\">\
             <button type=\"submit\" class=\"danger\">End all sessions of {u}</button></form> \
             <form class=\"inline\" method=\"post\" action=\"{BASE}/users/sar\">{c}\
             <input type=\"hidden\" name=\"user\" value=\"{u}\">\
             <button type=\"submit\">Subject-access export (ZIP) of {u}</button></form>",
            c = csrf_field(csrf)
        );
    }
    table_head(
        &mut o,
        "Accounts",
        &["User", "Name", "Admin", "State", "Created (UTC)", ""],
    );
    for u in &v.users {
        let state = [
            (u.deactivated, "deactivated"),
            (u.locked, "locked"),
            (u.suspended, "suspended"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| *s)
        .collect::<Vec<_>>()
        .join(", ");
        let id = escape(u.user_id.as_str());
        row(
            &mut o,
            &[
                format!("<code>{id}</code>"),
                escape(u.displayname.as_deref().unwrap_or("")),
                if u.is_admin {
                    "yes".into()
                } else {
                    "no".into()
                },
                if state.is_empty() {
                    "active".into()
                } else {
                    state
                },
                format_rfc3339(u.created_ts),
                format!(
                    "<a href=\"{BASE}/users?user={}\">Sessions and SAR<span class=\"visually-hidden\"> for {id}</span></a>",
                    escape(&url_encode(u.user_id.as_str()))
                ),
            ],
        );
    }
    o.push_str("</table>");
    o
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn reports(v: &[LabelledReport]) -> String {
    let mut o = String::new();
    table_head(
        &mut o,
        "Content reports (newest first)",
        &[
            "Id",
            "Received (UTC)",
            "Reporter",
            "Room",
            "Event",
            "Sender",
            "Reason",
        ],
    );
    for r in v {
        let p = &r.report;
        row(
            &mut o,
            &[
                p.id.to_string(),
                format_rfc3339(p.received_ts),
                escape(&p.reporter),
                escape(r.room_name.as_deref().unwrap_or(&p.room_id)),
                format!("<code>{}</code>", escape(&p.event_id)),
                escape(p.sender.as_deref().unwrap_or("")),
                escape(p.reason.as_deref().unwrap_or("(erased by retention)")),
            ],
        );
    }
    o.push_str("</table>");
    o
}

pub fn quarantine(v: &[QuarantinedMedia]) -> String {
    let mut o = String::from(
        "<p>Files the malware scanner flagged: kept for review, never served. Read-only here.</p>",
    );
    table_head(
        &mut o,
        "Quarantined files (newest first)",
        &[
            "Media id",
            "Uploader",
            "Type",
            "Size (bytes)",
            "Scanner result",
            "Flagged (UTC)",
        ],
    );
    for m in v {
        row(
            &mut o,
            &[
                format!("<code>{}</code>", escape(&m.media_id)),
                escape(&m.uploader),
                escape(m.content_type.as_deref().unwrap_or("")),
                m.size.to_string(),
                escape(&m.reason),
                format_rfc3339(m.ts),
            ],
        );
    }
    o.push_str("</table>");
    o
}
