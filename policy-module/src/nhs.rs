//! The NHS rule set: no NHS numbers in unencrypted metadata.
//!
//! Room names, topics, aliases and display names are shown outside the conversation (room lists,
//! notifications, the directory, invites) and are never end-to-end encrypted, so a patient's NHS
//! number there reaches people with no legitimate relationship to the patient. Message bodies
//! are checked only when configured: identifying patients in clinical conversation is often
//! necessary, and encrypted messages cannot be read by the server at all.

use serde_json::Value;

use crate::nhs_number::contains_nhs_number;
use crate::{Decision, Denial, EventRequest, Policy, ProfileUpdate};

/// Rule id: an NHS number in a room name, topic, alias or display name.
pub const RULE_NHS_NUMBER_IN_METADATA: &str = "nhs_number_in_metadata";
/// Rule id: an NHS number in an unencrypted message body (when enabled).
pub const RULE_NHS_NUMBER_IN_MESSAGE: &str = "nhs_number_in_message";

#[derive(Debug, Default, Clone, Copy)]
pub struct NhsPolicy {
    /// Also refuse NHS numbers in unencrypted `m.room.message` bodies.
    pub check_messages: bool,
}

fn metadata_denial(what: &str) -> Denial {
    Denial::new(
        RULE_NHS_NUMBER_IN_METADATA,
        format!(
            "an NHS number must not appear in {what}: it is unencrypted and shown outside the \
             conversation"
        ),
    )
}

/// Every string at `keys` of `content` (single strings or arrays of strings).
fn strings<'a>(content: &'a Value, keys: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for k in keys {
        match content.get(*k) {
            Some(Value::String(s)) => out.push(s.as_str()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

/// State linking a room to a FHIR `Patient` (set by the EPR bridge, docs/BRIDGES.md).
pub const PATIENT_LINK_TYPE: &str = "org.handover.patient";

/// Every string anywhere in `v`.
fn all_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(all_strings).collect(),
        Value::Object(o) => o.values().flat_map(all_strings).collect(),
        _ => vec![],
    }
}

/// The unencrypted metadata fields of an event type, and how to name them to the user.
fn metadata_fields(event_type: &str, content: &Value) -> Option<(Vec<String>, &'static str)> {
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
    Some(match event_type {
        "m.room.name" => (owned(strings(content, &["name"])), "a room name"),
        "m.room.topic" => {
            // The plain topic plus each text representation of `m.topic` (spec v1.15).
            let mut t: Vec<String> = owned(strings(content, &["topic"]));
            if let Some(Value::Array(reps)) = content.pointer("/m.topic/m.text") {
                t.extend(
                    reps.iter()
                        .filter_map(|r| r["body"].as_str().map(str::to_owned)),
                );
            }
            (t, "a room topic")
        }
        "m.room.canonical_alias" => (
            owned(strings(content, &["alias", "alt_aliases"])),
            "a room alias",
        ),
        "m.room.member" => (owned(strings(content, &["displayname"])), "a display name"),
        // The EPR bridge's link of a room to a FHIR Patient: a reference only (base URL and
        // logical id), never an identifier, whichever field it would hide in.
        PATIENT_LINK_TYPE => (all_strings(content), "the patient link state"),
        _ => return None,
    })
}

impl Policy for NhsPolicy {
    fn name(&self) -> &str {
        "nhs"
    }

    fn check_event(&self, req: &EventRequest<'_>) -> Decision {
        // Content that is not a JSON object is refused by the server later; nothing to inspect.
        let Ok(content) = serde_json::from_str::<Value>(req.content.get()) else {
            return Ok(());
        };
        if let Some((fields, what)) = metadata_fields(req.event_type, &content)
            && fields.iter().any(|f| contains_nhs_number(f))
        {
            return Err(metadata_denial(what));
        }
        // An edit (`m.replace`) shows its `m.new_content`, not its fallback body: check both.
        if self.check_messages
            && req.event_type == "m.room.message"
            && [&content, &content["m.new_content"]].iter().any(|c| {
                strings(c, &["body", "formatted_body"])
                    .iter()
                    .any(|b| contains_nhs_number(b))
            })
        {
            return Err(Denial::new(
                RULE_NHS_NUMBER_IN_MESSAGE,
                "an NHS number must not be sent in an unencrypted message on this server; \
                 use an encrypted room",
            ));
        }
        Ok(())
    }

    fn check_profile_update(&self, req: &ProfileUpdate<'_>) -> Decision {
        match req.value {
            Some(v) if contains_nhs_number(v) => {
                Err(metadata_denial(if req.field == "displayname" {
                    "a display name"
                } else {
                    "a profile field"
                }))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    fn check(p: &NhsPolicy, event_type: &str, content: &str) -> Decision {
        let content = RawValue::from_string(content.to_owned()).unwrap();
        p.check_event(&EventRequest {
            room_id: "!r:x",
            sender: "@a:x",
            event_type,
            state_key: Some(""),
            content: &content,
            prev_content: None,
        })
    }

    fn rule(d: Decision) -> Option<String> {
        d.err().map(|d| d.rule)
    }

    #[test]
    fn refuses_nhs_numbers_in_metadata() {
        let p = NhsPolicy::default();
        let meta = Some(RULE_NHS_NUMBER_IN_METADATA.to_owned());
        assert_eq!(
            rule(check(&p, "m.room.name", r#"{"name":"Bed 4 9434765919"}"#)),
            meta
        );
        assert_eq!(
            rule(check(&p, "m.room.topic", r#"{"topic":"pt 943 476 5919"}"#)),
            meta
        );
        let rich = r#"{"topic":"x","m.topic":{"m.text":[{"body":"943-476-5919"}]}}"#;
        assert_eq!(rule(check(&p, "m.room.topic", rich)), meta);
        let alias = r##"{"alias":"#ward:x","alt_aliases":["#p9434765919:x"]}"##;
        assert_eq!(rule(check(&p, "m.room.canonical_alias", alias)), meta);
        let alias = r##"{"alias":"#9434765919:x"}"##;
        assert_eq!(rule(check(&p, "m.room.canonical_alias", alias)), meta);
        let member = r#"{"membership":"join","displayname":"J Smith 9434765919"}"#;
        assert_eq!(rule(check(&p, "m.room.member", member)), meta);
        let link = r#"{"fhir_base":"https://epr.trust.nhs.uk/fhir","patient":"pat-1"}"#;
        assert_eq!(check(&p, PATIENT_LINK_TYPE, link), Ok(()));
        let by_number = r#"{"fhir_base":"https://x/fhir","patient":"9434765919","x":[{"y":"z"}]}"#;
        assert_eq!(rule(check(&p, PATIENT_LINK_TYPE, by_number)), meta);
        let nested = r#"{"patient":"p","extra":{"nhs":["943 476 5919"]}}"#;
        assert_eq!(rule(check(&p, PATIENT_LINK_TYPE, nested)), meta);
        let d = check(&p, "m.room.name", r#"{"name":"9434765919"}"#).unwrap_err();
        assert!(
            !d.reason.contains("9434765919"),
            "the reason never repeats the number"
        );
    }

    #[test]
    fn allows_other_text_and_invalid_numbers() {
        let p = NhsPolicy::default();
        for (t, c) in [
            ("m.room.name", r#"{"name":"Bed 4 9434765918"}"#),
            ("m.room.name", r#"{"name":"Ward 7 handover"}"#),
            ("m.room.topic", r#"{"topic":"call 01619434765919"}"#),
            (
                "m.room.member",
                r#"{"membership":"join","displayname":"Dr A"}"#,
            ),
            (
                "m.room.message",
                r#"{"msgtype":"m.text","body":"9434765919"}"#,
            ),
            ("m.room.encrypted", r#"{"ciphertext":"9434765919"}"#),
            ("m.room.name", "[1]"),
        ] {
            assert_eq!(check(&p, t, c), Ok(()), "{t} {c}");
        }
    }

    #[test]
    fn message_bodies_only_when_configured() {
        let p = NhsPolicy {
            check_messages: true,
        };
        let body = r#"{"msgtype":"m.text","body":"NHS 943 476 5919"}"#;
        assert_eq!(
            rule(check(&p, "m.room.message", body)).as_deref(),
            Some(RULE_NHS_NUMBER_IN_MESSAGE)
        );
        let html = r#"{"msgtype":"m.text","body":"x","formatted_body":"<b>9434765919</b>"}"#;
        assert!(check(&p, "m.room.message", html).is_err());
        let ok = r#"{"msgtype":"m.text","body":"NHS 943 476 5918"}"#;
        assert_eq!(check(&p, "m.room.message", ok), Ok(()));
        // An edit whose replacement text carries the number, behind an innocent fallback.
        let edit = r#"{"msgtype":"m.text","body":"* typo","m.new_content":
            {"msgtype":"m.text","body":"NHS 9434765919"},
            "m.relates_to":{"rel_type":"m.replace","event_id":"$e"}}"#;
        assert_eq!(
            rule(check(&p, "m.room.message", edit)).as_deref(),
            Some(RULE_NHS_NUMBER_IN_MESSAGE)
        );
    }

    #[test]
    fn profile_display_names() {
        let p = NhsPolicy::default();
        let upd = |n: Option<&'static str>| ProfileUpdate {
            user_id: "@a:x",
            field: "displayname",
            value: n,
            by_admin: false,
        };
        assert_eq!(
            rule(p.check_profile_update(&upd(Some("Pt 943-476-5919")))).as_deref(),
            Some(RULE_NHS_NUMBER_IN_METADATA)
        );
        assert_eq!(p.check_profile_update(&upd(Some("Dr Alice"))), Ok(()));
        assert_eq!(p.check_profile_update(&upd(Some("9434765918"))), Ok(()));
        assert_eq!(p.check_profile_update(&upd(None)), Ok(()));
        // Extended profile fields: the JSON value is checked, whatever the key.
        let field = ProfileUpdate {
            field: "org.example.note",
            value: Some(r#"{"ward":"7","nhs":"943 476 5919"}"#),
            ..upd(None)
        };
        assert_eq!(
            rule(p.check_profile_update(&field)).as_deref(),
            Some(RULE_NHS_NUMBER_IN_METADATA)
        );
    }
}
