//! FHIR R4 `Communication`, `CommunicationRequest` and `Flag` as alerts. Only what an alert
//! needs is read, into minimal structs (serde), then checked against the R4 value sets:
//! - `id` → alert id; `status` must be a code of the resource's value set.
//! - severity: a `category` coding in [`SEVERITY_SYSTEM`] wins, else `priority`
//!   (routine/urgent/asap/stat → low/medium/high/critical), else medium.
//! - ward / specialty for routing: `category` codings in [`WARD_SYSTEM`] / [`SPECIALTY_SYSTEM`].
//! - patient: `subject.reference`, which must be `Patient/<logical id>` (no identifiers).
//! - title and text: `topic.text` / `reasonCode[0].text` / `code.text` / the first coding's
//!   display, and `payload[].contentString` (Flag: `code`).

use serde::Deserialize;
use serde_json::Value;

use crate::alert::{
    Alert, Errors, FieldError, Kind, MAX_TEXT, MAX_TITLE, Severity, check_id, check_patient,
};

pub const SEVERITY_SYSTEM: &str = "https://handover.nhs.uk/fhir/CodeSystem/alert-severity";
pub const WARD_SYSTEM: &str = "https://handover.nhs.uk/fhir/CodeSystem/ward";
pub const SPECIALTY_SYSTEM: &str = "https://handover.nhs.uk/fhir/CodeSystem/specialty";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Coding {
    system: Option<String>,
    code: Option<String>,
    display: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeableConcept {
    coding: Vec<Coding>,
    text: Option<String>,
}

impl CodeableConcept {
    fn label(&self) -> Option<String> {
        self.text.clone().or_else(|| {
            self.coding
                .iter()
                .find_map(|c| c.display.clone().or(c.code.clone()))
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Reference {
    reference: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Payload {
    content_string: Option<String>,
}

/// The fields of the three resources that an alert uses.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Resource {
    resource_type: String,
    id: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    category: Vec<CodeableConcept>,
    subject: Option<Reference>,
    topic: Option<CodeableConcept>,
    reason_code: Vec<CodeableConcept>,
    code: Option<CodeableConcept>,
    payload: Vec<Payload>,
}

const COMMUNICATION_STATUS: &[&str] = &[
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
];
const REQUEST_STATUS: &[&str] = &[
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
];
const FLAG_STATUS: &[&str] = &["active", "inactive", "entered-in-error"];
const PRIORITY: &[(&str, Severity)] = &[
    ("routine", Severity::Low),
    ("urgent", Severity::Medium),
    ("asap", Severity::High),
    ("stat", Severity::Critical),
];

fn coded(categories: &[CodeableConcept], system: &str) -> Option<String> {
    categories
        .iter()
        .flat_map(|c| &c.coding)
        .find(|c| c.system.as_deref() == Some(system))
        .and_then(|c| c.code.clone())
}

/// Parses one of the three resources into an alert of `source`.
pub fn parse(v: &Value, source: &str) -> Result<Alert, Vec<FieldError>> {
    let mut e = Errors::default();
    let kind = match v.get("resourceType").and_then(Value::as_str) {
        Some("Communication") => Kind::Communication,
        Some("CommunicationRequest") => Kind::CommunicationRequest,
        Some("Flag") => Kind::Flag,
        _ => {
            e.push(
                "resourceType",
                "must be Communication, CommunicationRequest or Flag",
            );
            return Err(e.0);
        }
    };
    let r: Resource = match serde_json::from_value(v.clone()) {
        Ok(r) => r,
        Err(err) => {
            // serde names the first element of the wrong shape (e.g. "invalid type: string,
            // expected a sequence"); the FHIR shapes are lists and objects, not free text.
            e.push("", format!("not a valid {} resource: {err}", kind.as_str()));
            return Err(e.0);
        }
    };
    debug_assert_eq!(r.resource_type, kind.as_str());
    let alert_id = e.string(v.get("id"), "id", 64);
    if let Some(id) = &alert_id {
        check_id(&mut e, "id", id);
    }
    let _ = &r.id;
    let statuses = match kind {
        Kind::Communication => COMMUNICATION_STATUS,
        Kind::CommunicationRequest => REQUEST_STATUS,
        _ => FLAG_STATUS,
    };
    match r.status.as_deref() {
        None => e.push("status", "is required"),
        Some(s) if !statuses.contains(&s) => {
            e.push("status", format!("must be one of {}", statuses.join(", ")))
        }
        Some(_) => {}
    }
    let from_priority = match r.priority.as_deref() {
        None => None,
        Some(p) => match PRIORITY.iter().find(|(k, _)| *k == p) {
            Some((_, s)) => Some(*s),
            None => {
                e.push("priority", "must be one of routine, urgent, asap, stat");
                None
            }
        },
    };
    let severity = match coded(&r.category, SEVERITY_SYSTEM) {
        Some(code) => Severity::parse(&code).unwrap_or_else(|| {
            e.push(
                "category",
                format!("{SEVERITY_SYSTEM} code must be low, medium, high or critical"),
            );
            Severity::Medium
        }),
        None => from_priority.unwrap_or(Severity::Medium),
    };
    let patient = r.subject.as_ref().and_then(|s| s.reference.clone());
    match &patient {
        Some(p) => {
            check_patient(&mut e, "subject.reference", p);
        }
        None if kind == Kind::Flag => e.push("subject", "is required (Flag.subject 1..1)"),
        None => {}
    }
    let texts: Vec<String> = r
        .payload
        .iter()
        .filter_map(|p| p.content_string.clone())
        .collect();
    let (title, text) = match kind {
        Kind::Flag => {
            let label = r.code.as_ref().and_then(CodeableConcept::label);
            if label.is_none() {
                e.push("code", "is required: text or a coding with a display");
            }
            (label.clone(), label)
        }
        _ => {
            if texts.is_empty() {
                e.push("payload", "needs at least one contentString");
            }
            let title = r
                .topic
                .as_ref()
                .and_then(CodeableConcept::label)
                .or_else(|| r.reason_code.first().and_then(CodeableConcept::label))
                .or_else(|| r.category.iter().find_map(CodeableConcept::label))
                .unwrap_or_else(|| kind.as_str().to_owned());
            (Some(title), Some(texts.join("\n")))
        }
    };
    let title = title.map(|t| t.chars().take(MAX_TITLE).collect::<String>());
    if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
        e.push(
            "payload",
            format!("text must be at most {MAX_TEXT} characters"),
        );
    }
    if !e.0.is_empty() {
        return Err(e.0);
    }
    Ok(Alert {
        source: source.to_owned(),
        alert_id: alert_id.expect("checked"),
        kind,
        severity,
        title: title.expect("checked"),
        text: text.expect("checked"),
        patient,
        ward: coded(&r.category, WARD_SYSTEM),
        specialty: coded(&r.category, SPECIALTY_SYSTEM),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn communication_with_priority_and_routing_codes() {
        let v = json!({
            "resourceType": "Communication", "id": "lab-42", "status": "completed", "priority": "stat",
            "subject": {"reference": "Patient/p1"},
            "topic": {"text": "Critical potassium"},
            "category": [{"coding": [{"system": WARD_SYSTEM, "code": "ward-7"},
                                      {"system": SPECIALTY_SYSTEM, "code": "renal"}]}],
            "payload": [{"contentString": "K+ 6.9 mmol/L"}]
        });
        let a = parse(&v, "lab").unwrap();
        assert_eq!(a.kind, Kind::Communication);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.title, "Critical potassium");
        assert_eq!(a.text, "K+ 6.9 mmol/L");
        assert_eq!(a.ward.as_deref(), Some("ward-7"));
        assert_eq!(a.specialty.as_deref(), Some("renal"));
    }

    #[test]
    fn flag_and_request() {
        let flag = json!({"resourceType": "Flag", "id": "f1", "status": "active",
            "category": [{"coding": [{"system": SEVERITY_SYSTEM, "code": "high"}]}],
            "code": {"coding": [{"display": "Falls risk"}]}, "subject": {"reference": "Patient/p2"}});
        let a = parse(&flag, "epr").unwrap();
        assert_eq!(
            (a.kind, a.severity, a.title.as_str()),
            (Kind::Flag, Severity::High, "Falls risk")
        );
        let req = json!({"resourceType": "CommunicationRequest", "id": "bed-1", "status": "active",
            "priority": "urgent", "payload": [{"contentString": "Bed needed on ward 7"}]});
        let a = parse(&req, "beds").unwrap();
        assert_eq!((a.severity, a.patient), (Severity::Medium, None));
    }

    #[test]
    fn invalid_resources_list_their_errors() {
        let v = json!({"resourceType": "Flag", "status": "maybe", "subject": {"reference": "Patient/9434765919"}});
        let errs = parse(&v, "epr").unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["id", "status", "subject.reference", "code"],
            "{errs:?}"
        );
        let errs = parse(&json!({"resourceType": "Patient"}), "epr").unwrap_err();
        assert_eq!(errs[0].field, "resourceType");
        let errs = parse(
            &json!({"resourceType": "Communication", "payload": "x"}),
            "epr",
        )
        .unwrap_err();
        assert!(
            errs[0].error.contains("not a valid Communication"),
            "{errs:?}"
        );
        let v = json!({"resourceType": "Communication", "id": "c", "status": "completed", "priority": "now"});
        let fields: Vec<String> = parse(&v, "x")
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["priority", "payload"]);
    }
}
