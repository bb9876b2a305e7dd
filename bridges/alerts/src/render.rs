//! The alert as a Matrix message: readable in any client (`body`, HTML `formatted_body`) and
//! machine-readable (`org.handover.alert`: id, severity, source, kind, patient reference, state;
//! never demographics). Acknowledgement edits the message (`m.replace`) to show who and when.

use handover_bridge_core::render::escape_html;
pub use handover_bridge_core::render::notice;
use serde_json::{Value, json};

use crate::state::AlertRow;

fn icon(severity: &str) -> &'static str {
    match severity {
        "critical" => "🔴",
        "high" => "🟠",
        "medium" => "🟡",
        _ => "🔵",
    }
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// The message content of an alert. `note` is a line such as "Escalated: not acknowledged
/// in 5 min"; `mention` the user it is for (role holder, escalation recipient).
pub fn alert_content(a: &AlertRow, note: Option<&str>, mention: Option<&str>) -> Value {
    let (body, html) = texts(a, note, mention);
    let mut c = json!({
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "org.handover.alert": structured(a),
    });
    c["m.mentions"] = match mention {
        Some(u) => json!({"user_ids": [u]}),
        None => json!({}),
    };
    c
}

fn structured(a: &AlertRow) -> Value {
    json!({
        "id": a.alert_id,
        "source": a.source,
        "severity": a.severity,
        "kind": a.kind,
        "patient": a.patient,
        "state": a.state,
        "acknowledged_by": a.ack_by,
        "acknowledged_at": a.ack_at,
    })
}

fn texts(a: &AlertRow, note: Option<&str>, mention: Option<&str>) -> (String, String) {
    let sev = a.severity.to_uppercase();
    let mut body = format!("{} [{sev}] {}\n{}\n", icon(&a.severity), a.title, a.text);
    let mut html = format!(
        "<p>{} <strong>[{sev}] {}</strong></p><p>{}</p>",
        icon(&a.severity),
        escape_html(&a.title),
        escape_html(&a.text).replace('\n', "<br>")
    );
    let mut meta = format!("Source: {} · Alert: {}", a.source, a.alert_id);
    if let Some(p) = &a.patient {
        meta.push_str(&format!(" · Patient: {p}"));
    }
    body.push_str(&meta);
    html.push_str(&format!("<p><small>{}</small></p>", escape_html(&meta)));
    if let Some(n) = note {
        body.push_str(&format!("\n{n}"));
        html.push_str(&format!("<p><em>{}</em></p>", escape_html(n)));
    }
    if let Some(u) = mention {
        body.push_str(&format!("\nFor: {u}"));
        html.push_str(&format!(
            "<p>For: <a href=\"https://matrix.to/#/{u}\">{}</a></p>",
            escape_html(u)
        ));
    }
    match (&a.ack_by, a.ack_at) {
        (Some(by), Some(at)) => {
            let line = format!("✅ Acknowledged by {by} at {}", time(at));
            body.push_str(&format!("\n{line}"));
            html.push_str(&format!("<p><strong>{}</strong></p>", escape_html(&line)));
        }
        _ => {
            let line = "React ✅ or reply to acknowledge (reading it is not acknowledging).";
            body.push_str(&format!("\n{line}"));
            html.push_str(&format!("<p>{line}</p>"));
        }
    }
    (body, html)
}

/// An edit of a posted alert showing its new state.
pub fn edit_content(a: &AlertRow, event_id: &str, note: Option<&str>) -> Value {
    let mut new = alert_content(a, note, None);
    let body = format!("* {}", new["body"].as_str().unwrap_or_default());
    let html = format!("* {}", new["formatted_body"].as_str().unwrap_or_default());
    new["m.mentions"] = json!({});
    json!({
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
        "org.handover.alert": structured(a),
        "m.mentions": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AlertRow {
        AlertRow {
            source: "news2".into(),
            alert_id: "a1".into(),
            kind: "generic".into(),
            severity: "critical".into(),
            title: "NEWS2 <7>".into(),
            text: "Bed 4\nRR 28".into(),
            patient: Some("Patient/p1".into()),
            rule: "r".into(),
            received_at: 0,
            state: "open".into(),
            ack_by: None,
            ack_at: None,
            ack_via: None,
            esc_step: 0,
            next_due: None,
        }
    }

    #[test]
    fn readable_structured_and_escaped() {
        let c = alert_content(&row(), Some("Escalated"), Some("@reg:localhost"));
        let body = c["body"].as_str().unwrap();
        assert!(
            body.contains("[CRITICAL] NEWS2 <7>") && body.contains("Patient: Patient/p1"),
            "{body}"
        );
        let html = c["formatted_body"].as_str().unwrap();
        assert!(
            html.contains("NEWS2 &lt;7&gt;") && html.contains("Bed 4<br>RR 28"),
            "{html}"
        );
        assert_eq!(c["org.handover.alert"]["severity"], "critical");
        assert_eq!(c["org.handover.alert"]["patient"], "Patient/p1");
        assert_eq!(c["m.mentions"]["user_ids"][0], "@reg:localhost");
    }

    #[test]
    fn acknowledgement_edit() {
        let mut r = row();
        r.state = "acknowledged".into();
        r.ack_by = Some("@nurse:localhost".into());
        r.ack_at = Some(1_750_000_000_000);
        let e = edit_content(&r, "$orig", None);
        assert_eq!(e["m.relates_to"]["rel_type"], "m.replace");
        assert_eq!(e["m.relates_to"]["event_id"], "$orig");
        let nb = e["m.new_content"]["body"].as_str().unwrap();
        assert!(
            nb.contains("Acknowledged by @nurse:localhost at 2025-06-15"),
            "{nb}"
        );
        assert_eq!(
            e["m.new_content"]["org.handover.alert"]["state"],
            "acknowledged"
        );
    }
}
