//! The alert as the bridge understands it, and the generic JSON webhook body. Parsing collects
//! every schema error (field + reason) so the sending system can fix them all at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How urgent an alert is; routing rules match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where the alert came from in the input (shown in the message, kept in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Generic,
    Communication,
    CommunicationRequest,
    Flag,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Communication => "Communication",
            Self::CommunicationRequest => "CommunicationRequest",
            Self::Flag => "Flag",
        }
    }
}

/// A validated alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub source: String,
    pub alert_id: String,
    pub kind: Kind,
    pub severity: Severity,
    pub title: String,
    pub text: String,
    /// A FHIR reference (`Patient/<logical id>`): never demographics or an NHS number.
    pub patient: Option<String>,
    pub ward: Option<String>,
    pub specialty: Option<String>,
}

/// One schema error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub error: String,
}

/// Collects schema errors while reading a JSON object.
#[derive(Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    pub fn push(&mut self, field: &str, error: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            error: error.into(),
        });
    }

    /// A required string of at most `max` characters (trimmed, not empty).
    pub fn string(&mut self, v: Option<&Value>, field: &str, max: usize) -> Option<String> {
        match v {
            None | Some(Value::Null) => {
                self.push(field, "is required");
                None
            }
            Some(v) => self.opt_string(Some(v), field, max),
        }
    }

    /// An optional string of at most `max` characters.
    pub fn opt_string(&mut self, v: Option<&Value>, field: &str, max: usize) -> Option<String> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.push(field, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.chars().count() > max => {
                self.push(field, format!("must be at most {max} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                self.push(field, "must be a string");
                None
            }
        }
    }
}

pub const MAX_ID: usize = 128;
pub const MAX_TITLE: usize = 200;
pub const MAX_TEXT: usize = 4000;
pub const MAX_ROUTE: usize = 64;

/// Ids sent by systems: letters, digits and `.-_:` (safe in URLs, logs and room messages).
pub fn check_id(errors: &mut Errors, field: &str, id: &str) -> bool {
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !ok {
        errors.push(field, "may contain only letters, digits and . - _ :");
    }
    ok
}

/// `Patient/<logical id>` (FHIR id: 1–64 of `[A-Za-z0-9.-]`). A bare 10-digit number is
/// refused: it is an NHS number, i.e. an identifier, and the alert carries no demographics.
pub fn check_patient(errors: &mut Errors, field: &str, reference: &str) -> bool {
    let Some(id) = reference.strip_prefix("Patient/") else {
        errors.push(field, "must be a FHIR reference Patient/<logical id>");
        return false;
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !valid {
        errors.push(field, "logical id must be 1-64 of A-Z a-z 0-9 . -");
        return false;
    }
    let digits: String = id.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 10 && id.chars().all(|c| c.is_ascii_digit() || c == '-') {
        errors.push(
            field,
            "looks like an NHS number: send the logical id of the Patient resource, not an identifier",
        );
        return false;
    }
    true
}

/// Parses the generic JSON alert. `source` is the authenticated source (the header); the
/// body's `source` must name the same one.
pub fn parse_generic(v: &Value, source: &str) -> Result<Alert, Vec<FieldError>> {
    let mut e = Errors::default();
    let Some(obj) = v.as_object() else {
        e.push("", "body must be a JSON object");
        return Err(e.0);
    };
    const KNOWN: [&str; 8] = [
        "source",
        "alert_id",
        "severity",
        "title",
        "text",
        "patient",
        "route",
        "resourceType",
    ];
    for k in obj.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        e.push(k, "unknown field");
    }
    if let Some(s) = e.string(obj.get("source"), "source", MAX_ID)
        && s != source
    {
        e.push("source", "must match the X-Handover-Source header");
    }
    let alert_id = e.string(obj.get("alert_id"), "alert_id", MAX_ID);
    if let Some(id) = &alert_id {
        check_id(&mut e, "alert_id", id);
    }
    let severity = match obj.get("severity") {
        None | Some(Value::Null) => {
            e.push("severity", "is required");
            None
        }
        Some(Value::String(s)) => {
            let sev = Severity::parse(s);
            if sev.is_none() {
                e.push("severity", "must be one of low, medium, high, critical");
            }
            sev
        }
        Some(_) => {
            e.push("severity", "must be a string");
            None
        }
    };
    let title = e.string(obj.get("title"), "title", MAX_TITLE);
    let text = e.string(obj.get("text"), "text", MAX_TEXT);
    let patient = e.opt_string(obj.get("patient"), "patient", 80);
    if let Some(p) = &patient {
        check_patient(&mut e, "patient", p);
    }
    let (mut ward, mut specialty) = (None, None);
    match obj.get("route") {
        None | Some(Value::Null) => {}
        Some(Value::Object(r)) => {
            for k in r
                .keys()
                .filter(|k| !matches!(k.as_str(), "ward" | "specialty"))
            {
                e.push(&format!("route.{k}"), "unknown field");
            }
            ward = e.opt_string(r.get("ward"), "route.ward", MAX_ROUTE);
            specialty = e.opt_string(r.get("specialty"), "route.specialty", MAX_ROUTE);
        }
        Some(_) => e.push("route", "must be an object {ward, specialty}"),
    }
    if !e.0.is_empty() {
        return Err(e.0);
    }
    Ok(Alert {
        source: source.to_owned(),
        alert_id: alert_id.expect("checked"),
        kind: Kind::Generic,
        severity: severity.expect("checked"),
        title: title.expect("checked"),
        text: text.expect("checked"),
        patient,
        ward,
        specialty,
    })
}

/// Parses a webhook body: a FHIR resource when it has `resourceType`, else the generic alert.
pub fn parse(v: &Value, source: &str) -> Result<Alert, Vec<FieldError>> {
    match v.get("resourceType") {
        Some(_) => crate::fhir::parse(v, source),
        None => parse_generic(v, source),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok() -> Value {
        json!({"source": "news2", "alert_id": "a-1", "severity": "high", "title": "NEWS2 7",
               "text": "Bed 4 deteriorating", "patient": "Patient/abc-1",
               "route": {"ward": "ward-7", "specialty": "medicine"}})
    }

    #[test]
    fn generic_alert_parses() {
        let a = parse(&ok(), "news2").unwrap();
        assert_eq!(a.alert_id, "a-1");
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.kind, Kind::Generic);
        assert_eq!(a.ward.as_deref(), Some("ward-7"));
        assert_eq!(a.patient.as_deref(), Some("Patient/abc-1"));
    }

    #[test]
    fn every_schema_error_is_listed() {
        let v = json!({"source": "other", "alert_id": "a b", "severity": "urgent", "title": 3,
                       "patient": "9434765919", "route": {"bed": 1}, "extra": true});
        let errs = parse(&v, "news2").unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "extra",
            "source",
            "alert_id",
            "severity",
            "title",
            "text",
            "patient",
            "route.bed",
        ] {
            assert!(fields.contains(&f), "{f} missing from {errs:?}");
        }
        assert!(parse(&json!([1]), "news2").is_err());
    }

    #[test]
    fn nhs_number_is_not_a_patient_reference() {
        let mut e = Errors::default();
        assert!(!check_patient(&mut e, "p", "Patient/9434765919"));
        assert!(!check_patient(&mut e, "p", "Patient/943-476-5919"));
        assert!(!check_patient(&mut e, "p", "9434765919"));
        assert!(!check_patient(&mut e, "p", "Patient/a b"));
        assert!(check_patient(&mut e, "p", "Patient/uk-core-patient-1"));
        assert!(check_patient(&mut e, "p", "Patient/12345"));
    }

    #[test]
    fn oversized_fields_refused() {
        let mut v = ok();
        v["text"] = json!("x".repeat(MAX_TEXT + 1));
        let errs = parse(&v, "news2").unwrap_err();
        assert_eq!(errs[0].field, "text");
    }
}
