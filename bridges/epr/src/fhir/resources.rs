//! The FHIR resources the bridge reads and writes, as JSON (pure functions, unit-tested):
//! patient look-up results and demographics, care-team participants, and the transaction
//! Bundles that file a message (`Communication`) or a file (`DocumentReference`).
//!
//! Every filed resource carries the Matrix event id as an `identifier`, and the Bundle entry
//! creates it only `ifNoneExist` with that identifier: a retry after a crash between the FHIR
//! server's commit and ours finds the first copy instead of making a second.

use base64::Engine;
use serde_json::{Value, json};

use crate::nhs::{NHS_NUMBER_SYSTEM, display};

/// Identifier system of filed resources: the Matrix event id.
pub const EVENT_SYSTEM: &str = "https://handover.nhs.uk/fhir/Id/matrix-event";
/// Identifier system of a Matrix user with no mapped Practitioner.
pub const USER_SYSTEM: &str = "https://handover.nhs.uk/fhir/Id/matrix-user";
/// Extension naming the room a filed message came from (a `matrix:` URI).
pub const ROOM_EXTENSION: &str = "https://handover.nhs.uk/fhir/StructureDefinition/matrix-room";

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A FHIR logical id: `[A-Za-z0-9-.]{1,64}`.
pub fn is_logical_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `Patient?identifier=<NHS number system>|<n>`.
pub fn patient_search(nhs_number: &str) -> String {
    format!(
        "Patient?identifier={}",
        enc(&format!("{NHS_NUMBER_SYSTEM}|{nhs_number}"))
    )
}

#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(String),
    NotFound,
    Ambiguous(usize),
}

/// The one `Patient` of a search result Bundle.
pub fn single_patient(bundle: &Value) -> Lookup {
    let ids: Vec<String> = entries(bundle)
        .filter(|r| r["resourceType"] == "Patient")
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    match ids.len() {
        0 => Lookup::NotFound,
        1 => Lookup::Found(ids.into_iter().next().expect("one")),
        n => Lookup::Ambiguous(n),
    }
}

fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
}

/// A person's name as it is printed: `Mrs Ada TESTPATIENT` (the `official` name first).
pub fn person_name(r: &Value) -> Option<String> {
    let names = r["name"].as_array()?;
    let n = names
        .iter()
        .find(|n| n["use"] == "official")
        .or(names.first())?;
    if let Some(t) = n["text"].as_str() {
        return Some(t.to_owned());
    }
    let words = |k: &str| -> Vec<String> {
        n[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_owned))
            .collect()
    };
    let mut parts = words("prefix");
    parts.extend(words("given"));
    if let Some(f) = n["family"].as_str() {
        parts.push(f.to_uppercase());
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The demographics line the bot posts (in the encrypted room only).
pub fn demographics(patient: &Value) -> String {
    let name = person_name(patient).unwrap_or_else(|| "(no name recorded)".into());
    let nhs = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == NHS_NUMBER_SYSTEM)
        .and_then(|i| i["value"].as_str())
        .map(display)
        .unwrap_or_else(|| "not recorded".into());
    let born = patient["birthDate"].as_str().unwrap_or("not recorded");
    let gender = patient["gender"].as_str().unwrap_or("unknown");
    format!("🧑‍⚕️ Patient: {name} · NHS number {nhs} · born {born} · gender {gender}")
}

/// `Practitioner/<id>` references of the care team: active `CareTeam` participants and
/// `EpisodeOfCare` care managers in search results.
pub fn care_team_practitioners(bundles: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for b in bundles {
        for r in entries(b) {
            let refs: Vec<&Value> = match r["resourceType"].as_str() {
                Some("CareTeam") => r["participant"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| &p["member"]["reference"])
                    .collect(),
                Some("EpisodeOfCare") => vec![&r["careManager"]["reference"]],
                _ => vec![],
            };
            for v in refs {
                if let Some(s) = v.as_str().filter(|s| s.starts_with("Practitioner/"))
                    && !out.iter().any(|o| o == s)
                {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

/// A Practitioner's identifiers `(system, value)` and email addresses.
pub fn practitioner_ids(p: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let ids = p["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i["system"].as_str()?.to_owned(),
                i["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let emails = p["telecom"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["system"] == "email")
        .filter_map(|t| t["value"].as_str().map(str::to_owned))
        .collect();
    (ids, emails)
}

/// What is being filed, as the queue holds it.
#[derive(Debug, Clone)]
pub struct Filing {
    pub event_id: String,
    pub room_id: String,
    pub patient_ref: String,
    /// The author: `Practitioner/<id>`, or a reference by Matrix user id.
    pub author: Value,
    /// RFC 3339 time the message was sent.
    pub sent: String,
}

/// A reference to a Practitioner, or to a Matrix user by identifier when none is mapped.
pub fn author_reference(practitioner: Option<&str>, user_id: &str) -> Value {
    match practitioner {
        Some(r) => json!({"reference": r, "display": user_id}),
        None => {
            json!({"identifier": {"system": USER_SYSTEM, "value": user_id}, "display": user_id})
        }
    }
}

fn common(f: &Filing) -> (Value, Value) {
    let identifier = json!([{"system": EVENT_SYSTEM, "value": f.event_id}]);
    let room = json!([{"url": ROOM_EXTENSION,
        "valueUri": format!("matrix:roomid/{}", f.room_id.trim_start_matches('!'))}]);
    (identifier, room)
}

/// A message as a `Communication`.
pub fn communication(f: &Filing, text: &str) -> Value {
    let (identifier, room) = common(f);
    json!({
        "resourceType": "Communication",
        "identifier": identifier,
        "extension": room,
        "status": "completed",
        "subject": {"reference": f.patient_ref},
        "sent": f.sent,
        "sender": f.author,
        "payload": [{"contentString": text}],
    })
}

/// A photo or file as a `DocumentReference` with the bytes as its attachment.
pub fn document(f: &Filing, mimetype: &str, title: &str, bytes: &[u8]) -> Value {
    let (identifier, room) = common(f);
    let kind = if mimetype.starts_with("image/") {
        "Clinical photograph"
    } else {
        "Clinical document"
    };
    json!({
        "resourceType": "DocumentReference",
        "identifier": identifier,
        "extension": room,
        "status": "current",
        "type": {"text": kind},
        "subject": {"reference": f.patient_ref},
        "date": f.sent,
        "author": [f.author],
        "description": title,
        "content": [{"attachment": {
            "contentType": mimetype,
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
            "size": bytes.len(),
            "title": title,
            "creation": f.sent,
        }}],
    })
}

/// A transaction Bundle creating `resource` unless one with its event identifier exists.
pub fn transaction(resource: Value, event_id: &str) -> Value {
    let rt = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": resource,
            "request": {
                "method": "POST",
                "url": rt,
                "ifNoneExist": format!("identifier={}", enc(&format!("{EVENT_SYSTEM}|{event_id}"))),
            },
        }],
    })
}

/// `Type/id` of what the transaction created (or found), from its response Bundle.
pub fn created_reference(response: &Value) -> Option<String> {
    let e = response["entry"].as_array()?.first()?;
    if let Some(loc) = e["response"]["location"].as_str() {
        // Relative or absolute, with or without `/_history/<n>`: the `Type/id` before it.
        let parts: Vec<&str> = loc.trim_end_matches('/').split('/').collect();
        let end = parts
            .iter()
            .position(|p| *p == "_history")
            .unwrap_or(parts.len());
        if end >= 2 {
            return Some(format!("{}/{}", parts[end - 2], parts[end - 1]));
        }
    }
    let r = &e["resource"];
    Some(format!(
        "{}/{}",
        r["resourceType"].as_str()?,
        r["id"].as_str()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Value {
        json!({"resourceType": "Patient", "id": "pat-1",
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9434765919"}],
            "name": [{"use": "usual", "given": ["Addy"]},
                     {"use": "official", "family": "Testpatient", "given": ["Ada"], "prefix": ["Mrs"]}],
            "gender": "female", "birthDate": "1948-03-02"})
    }

    #[test]
    fn searches_and_lookups() {
        assert_eq!(
            patient_search("9434765919"),
            "Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9434765919"
        );
        let one = json!({"resourceType": "Bundle", "entry": [{"resource": patient()},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}}]});
        assert_eq!(single_patient(&one), Lookup::Found("pat-1".into()));
        assert_eq!(
            single_patient(&json!({"resourceType": "Bundle"})),
            Lookup::NotFound
        );
        let two = json!({"entry": [{"resource": patient()}, {"resource": patient()}]});
        assert_eq!(single_patient(&two), Lookup::Ambiguous(2));
        assert!(is_logical_id("pat-1.a") && !is_logical_id("a/b") && !is_logical_id(""));
        assert!(!is_logical_id(&"a".repeat(65)));
    }

    #[test]
    fn demographics_line() {
        let d = demographics(&patient());
        assert!(d.contains("Mrs Ada TESTPATIENT"), "{d}");
        assert!(
            d.contains("NHS number 943 476 5919") && d.contains("born 1948-03-02"),
            "{d}"
        );
        let bare = demographics(&json!({"resourceType": "Patient"}));
        assert!(
            bare.contains("no name recorded") && bare.contains("not recorded"),
            "{bare}"
        );
    }

    #[test]
    fn care_team_and_practitioner_identifiers() {
        let ct = json!({"entry": [
            {"resource": {"resourceType": "CareTeam", "participant": [
                {"member": {"reference": "Practitioner/a"}},
                {"member": {"reference": "Organization/o"}},
                {"member": {"reference": "Practitioner/b"}}]}},
            {"resource": {"resourceType": "EpisodeOfCare", "careManager": {"reference": "Practitioner/a"}}},
            {"resource": {"resourceType": "EpisodeOfCare", "careManager": {"reference": "Practitioner/c"}}}]});
        assert_eq!(
            care_team_practitioners(&[ct]),
            ["Practitioner/a", "Practitioner/b", "Practitioner/c"]
        );
        let p = json!({"identifier": [{"system": "s", "value": "v"}, {"value": "no system"}],
                       "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@nhs.net"}]});
        let (ids, emails) = practitioner_ids(&p);
        assert_eq!(ids, [("s".to_owned(), "v".to_owned())]);
        assert_eq!(emails, ["a@nhs.net"]);
    }

    fn filing() -> Filing {
        Filing {
            event_id: "$ev1".into(),
            room_id: "!room:hs".into(),
            patient_ref: "Patient/pat-1".into(),
            author: author_reference(Some("Practitioner/prac-1"), "@carol:hs"),
            sent: "2026-01-02T03:04:05Z".into(),
        }
    }

    #[test]
    fn communication_and_document_bundles() {
        let c = communication(&filing(), "Plan: IV antibiotics");
        assert_eq!(c["subject"]["reference"], "Patient/pat-1");
        assert_eq!(c["sender"]["reference"], "Practitioner/prac-1");
        assert_eq!(c["payload"][0]["contentString"], "Plan: IV antibiotics");
        assert_eq!(c["identifier"][0]["value"], "$ev1");
        assert_eq!(c["extension"][0]["valueUri"], "matrix:roomid/room:hs");
        let b = transaction(c, "$ev1");
        assert_eq!(b["type"], "transaction");
        assert_eq!(b["entry"][0]["request"]["url"], "Communication");
        assert_eq!(
            b["entry"][0]["request"]["ifNoneExist"],
            "identifier=https%3A%2F%2Fhandover.nhs.uk%2Ffhir%2FId%2Fmatrix-event%7C%24ev1"
        );
        let d = document(&filing(), "image/png", "wound.png", b"\x89PNG");
        assert_eq!(d["content"][0]["attachment"]["data"], "iVBORw==");
        assert_eq!(d["content"][0]["attachment"]["size"], 4);
        assert_eq!(d["type"]["text"], "Clinical photograph");
        assert_eq!(d["author"][0]["reference"], "Practitioner/prac-1");
        let anon = author_reference(None, "@x:hs");
        assert_eq!(anon["identifier"]["system"], USER_SYSTEM);
    }

    #[test]
    fn created_reference_from_locations() {
        let r = |loc: &str| {
            created_reference(
                &json!({"entry": [{"response": {"status": "201 Created", "location": loc}}]}),
            )
        };
        assert_eq!(
            r("Communication/abc/_history/1").as_deref(),
            Some("Communication/abc")
        );
        assert_eq!(
            r("https://epr/fhir/R4/DocumentReference/x1/_history/2").as_deref(),
            Some("DocumentReference/x1")
        );
        assert_eq!(r("Communication/abc").as_deref(), Some("Communication/abc"));
        let by_resource =
            json!({"entry": [{"resource": {"resourceType": "Communication", "id": "z"}}]});
        assert_eq!(
            created_reference(&by_resource).as_deref(),
            Some("Communication/z")
        );
        assert_eq!(created_reference(&json!({"entry": []})), None);
    }
}
