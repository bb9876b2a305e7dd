//! FHIR resources in rooms (MSC4302, gematik): an event of type `m.fhir.resource` (unstable
//! `de.gematik.msc4302.fhir.resource`) carries a `canonical_url`, optional `profiles`, and the
//! resource either inline (`m.fhir.resource`, when it fits the 64 KiB event limit) or as an
//! uploaded file (`m.file`, MSC3551). Systems and bots act on these events without a human
//! reading them first, so garbage is refused at the server, before anyone receives it (rule
//! `fhir_resource_invalid`, answered 400 `M_BAD_JSON` naming the field). The same checks apply
//! to any event carrying the inline block. Encrypted events cannot be read and are not checked.
//! Events are canonical JSON, which has no decimals: a resource with a FHIR `decimal` (most
//! quantities) cannot be inline and goes as `m.file` (the server refuses floats on its own).

use serde_json::Value;

use crate::{Decision, Denial, EventRequest, Policy};

/// Rule id: an MSC4302 FHIR resource event that is not one.
pub const RULE_FHIR_RESOURCE_INVALID: &str = "fhir_resource_invalid";

/// The event type (stable name in the proposal) and its unstable prefix.
pub const FHIR_EVENT_TYPES: [&str; 2] = ["m.fhir.resource", "de.gematik.msc4302.fhir.resource"];
/// Content keys holding the inline resource.
pub const FHIR_INLINE_KEYS: [&str; 2] = FHIR_EVENT_TYPES;
/// An inline resource must fit the spec's 64 KiB event size limit; larger ones go as `m.file`.
pub const MAX_INLINE_BYTES: usize = 64 * 1024;

const CORE_DEFINITIONS: &str = "http://hl7.org/fhir/StructureDefinition/";
const FILE_TYPES: &[&str] = &[
    "application/fhir+json",
    "application/fhir+xml",
    "application/json",
    "application/xml",
    "text/xml",
];

/// The resource types of FHIR R4 (4.0.1): every non-abstract `StructureDefinition` of kind
/// `resource` in the specification's `profiles-resources.json`.
pub const R4_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// Whether `name` is a resource type of FHIR R4.
pub fn is_r4_resource_type(name: &str) -> bool {
    R4_RESOURCE_TYPES.binary_search(&name).is_ok()
}

/// Checks MSC4302 FHIR resource events (always on: a malformed resource is never clinical
/// content worth keeping). Other events pass unless they carry an inline resource block.
#[derive(Debug, Default, Clone, Copy)]
pub struct FhirResourceEvents;

impl Policy for FhirResourceEvents {
    fn name(&self) -> &str {
        "fhir-resources"
    }

    fn check_event(&self, req: &EventRequest<'_>) -> Decision {
        let typed = FHIR_EVENT_TYPES.contains(&req.event_type);
        if !typed
            && !FHIR_INLINE_KEYS
                .iter()
                .any(|k| req.content.get().contains(k))
        {
            return Ok(());
        }
        let Ok(content) = serde_json::from_str::<Value>(req.content.get()) else {
            return Ok(()); // not JSON at all: the server refuses it on its own
        };
        let carries_inline = FHIR_INLINE_KEYS.iter().any(|k| content.get(*k).is_some());
        if !typed && !carries_inline {
            return Ok(());
        }
        check_content(&content).map_err(|why| {
            Denial::malformed(
                RULE_FHIR_RESOURCE_INVALID,
                format!("not a valid FHIR resource event (MSC4302): {why}"),
            )
        })
    }
}

/// The content of an MSC4302 event: `Err` names the first field at fault.
pub fn check_content(c: &Value) -> Result<(), String> {
    let Some(obj) = c.as_object() else {
        return Err("content must be an object".into());
    };
    let canonical = match obj.get("canonical_url") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("canonical_url must be a string".into()),
        None => return Err("canonical_url is required".into()),
    };
    check_canonical("canonical_url", canonical)?;
    if let Some(name) = core_definition(canonical)
        && !is_r4_resource_type(name)
    {
        return Err(format!(
            "canonical_url names {name:?}, which is not a FHIR R4 resource type"
        ));
    }
    match obj.get("profiles") {
        None => {}
        Some(Value::Array(a)) => {
            for p in a {
                let Some(p) = p.as_str() else {
                    return Err("profiles must be an array of canonical URLs".into());
                };
                check_canonical("profiles", p)?;
            }
        }
        Some(_) => return Err("profiles must be an array of canonical URLs".into()),
    }
    if obj.get("body").is_some_and(|b| !b.is_string()) {
        return Err("body (the text fallback) must be a string".into());
    }
    let inline: Vec<(&str, &Value)> = FHIR_INLINE_KEYS
        .iter()
        .filter_map(|k| obj.get(*k).map(|v| (*k, v)))
        .collect();
    let file = obj.get("m.file");
    if inline.is_empty() && file.is_none() {
        return Err(
            "the resource is missing: give it inline (m.fhir.resource) or as m.file".into(),
        );
    }
    for (key, r) in inline {
        check_inline(key, r, canonical)?;
    }
    if let Some(f) = file {
        check_file(f)?;
    }
    Ok(())
}

fn check_canonical(field: &str, url: &str) -> Result<(), String> {
    let ok_scheme = ["http://", "https://", "urn:"]
        .iter()
        .any(|s| url.starts_with(s));
    if !ok_scheme || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "{field} must be a canonical URL (http, https or urn, no spaces, at most 2048 characters)"
        ));
    }
    Ok(())
}

/// `X` of `http://hl7.org/fhir/StructureDefinition/X[|version]`.
fn core_definition(url: &str) -> Option<&str> {
    let rest = url.strip_prefix(CORE_DEFINITIONS)?;
    Some(rest.split('|').next().unwrap_or(rest))
}

fn check_inline(key: &str, r: &Value, canonical: &str) -> Result<(), String> {
    let Some(obj) = r.as_object() else {
        return Err(format!("{key} must be a JSON object (the resource)"));
    };
    let rt = match obj.get("resourceType") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(format!("{key}.resourceType must be a string")),
        None => return Err(format!("{key}.resourceType is required")),
    };
    if !is_r4_resource_type(rt) {
        return Err(format!(
            "{key}.resourceType {rt:?} is not a FHIR R4 resource type"
        ));
    }
    if let Some(name) = core_definition(canonical)
        && name != rt
    {
        return Err(format!(
            "canonical_url defines {name} but {key}.resourceType is {rt}"
        ));
    }
    let size = serde_json::to_string(r)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_INLINE_BYTES {
        return Err(format!(
            "{key} is {size} bytes; resources over {MAX_INLINE_BYTES} bytes go as m.file"
        ));
    }
    Ok(())
}

fn check_file(f: &Value) -> Result<(), String> {
    let Some(obj) = f.as_object() else {
        return Err("m.file must be an object (MSC3551)".into());
    };
    // Plain uploads carry `url`; encrypted ones the key material in `file` with its `url`.
    let url = obj
        .get("url")
        .or_else(|| obj.get("file").and_then(|e| e.get("url")))
        .and_then(Value::as_str);
    if !url.is_some_and(|u| u.starts_with("mxc://")) {
        return Err("m.file needs an mxc:// url".into());
    }
    if let Some(m) = obj.get("mimetype") {
        let essence = m.as_str().map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if !essence.is_some_and(|e| FILE_TYPES.contains(&e.as_str())) {
            return Err(format!(
                "m.file.mimetype must be one of {}",
                FILE_TYPES.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serde_json::value::RawValue;

    use super::*;

    fn check(event_type: &str, content: &Value) -> Decision {
        let raw = RawValue::from_string(content.to_string()).unwrap();
        FhirResourceEvents.check_event(&EventRequest {
            room_id: "!r:x",
            sender: "@a:x",
            event_type,
            state_key: None,
            content: &raw,
            prev_content: None,
        })
    }

    fn reason(event_type: &str, content: Value) -> String {
        let d = check(event_type, &content).unwrap_err();
        assert_eq!(d.rule, RULE_FHIR_RESOURCE_INVALID);
        assert!(d.malformed, "answered as bad JSON, not forbidden");
        d.reason
    }

    fn observation() -> Value {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"text": "Heart rate"}, "valueQuantity": {"value": 112, "unit": "/min"}})
    }

    #[test]
    fn the_type_list_is_sorted_and_complete() {
        assert_eq!(R4_RESOURCE_TYPES.len(), 146);
        assert!(R4_RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_r4_resource_type("Observation") && !is_r4_resource_type("observation"));
        assert!(!is_r4_resource_type("SubscriptionStatus"), "R4B, not R4");
    }

    #[test]
    fn valid_inline_and_file_events_pass() {
        for t in FHIR_EVENT_TYPES {
            let c = json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Observation|4.0.1",
                           "profiles": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"],
                           "body": "Heart rate 112 /min", "m.fhir.resource": observation()});
            assert_eq!(check(t, &c), Ok(()), "{t}");
            let f = json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Bundle",
                           "m.file": {"url": "mxc://x/abc", "mimetype": "application/fhir+json"}});
            assert_eq!(check(t, &f), Ok(()), "{t}");
            let enc = json!({"canonical_url": "https://fhir.nhs.uk/StructureDefinition/X",
                             "m.file": {"file": {"url": "mxc://x/abc", "v": "v2"}}});
            assert_eq!(check(t, &enc), Ok(()), "{t}");
        }
        // Other events pass untouched, including encrypted ones.
        assert_eq!(check("m.room.message", &json!({"body": "hi"})), Ok(()));
        assert_eq!(
            check(
                "m.room.encrypted",
                &json!({"ciphertext": "m.fhir.resource"})
            ),
            Ok(())
        );
    }

    #[test]
    fn garbage_is_refused_naming_the_field() {
        let t = "de.gematik.msc4302.fhir.resource";
        assert!(
            reason(t, json!({"m.fhir.resource": observation()}))
                .contains("canonical_url is required")
        );
        assert!(
            reason(
                t,
                json!({"canonical_url": "Observation", "m.fhir.resource": observation()})
            )
            .contains("canonical_url must be a canonical URL")
        );
        assert!(
            reason(
                t,
                json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Nonsense",
                                 "m.file": {"url": "mxc://x/y"}})
            )
            .contains("not a FHIR R4 resource type")
        );
        assert!(reason(t, json!({"canonical_url": "urn:x"})).contains("the resource is missing"));
        assert!(
            reason(
                t,
                json!({"canonical_url": "urn:x", "m.fhir.resource": "Observation"})
            )
            .contains("must be a JSON object")
        );
        assert!(
            reason(
                t,
                json!({"canonical_url": "urn:x", "m.fhir.resource": {"status": "final"}})
            )
            .contains("resourceType is required")
        );
        assert!(
            reason(
                t,
                json!({"canonical_url": "urn:x", "m.fhir.resource": {"resourceType": "Banana"}})
            )
            .contains("\"Banana\" is not a FHIR R4 resource type")
        );
        assert!(
            reason(
                t,
                json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Patient",
                                 "m.fhir.resource": observation()})
            )
            .contains("defines Patient but m.fhir.resource.resourceType is Observation")
        );
        assert!(reason(t, json!({"canonical_url": "urn:x", "profiles": "urn:y", "m.file": {"url": "mxc://a/b"}}))
            .contains("profiles must be an array"));
        assert!(
            reason(
                t,
                json!({"canonical_url": "urn:x", "m.file": {"url": "https://evil"}})
            )
            .contains("mxc://")
        );
        assert!(reason(t, json!({"canonical_url": "urn:x", "m.file": {"url": "mxc://a/b", "mimetype": "text/html"}}))
            .contains("m.file.mimetype"));
        assert!(
            reason(
                t,
                json!({"canonical_url": "urn:x", "body": 5, "m.file": {"url": "mxc://a/b"}})
            )
            .contains("body")
        );
        assert!(reason(t, json!([1, 2])).contains("must be an object"));
        let mut big = observation();
        big["note"] = json!([{"text": "x".repeat(MAX_INLINE_BYTES)}]);
        assert!(
            reason(t, json!({"canonical_url": "urn:x", "m.fhir.resource": big}))
                .contains("go as m.file")
        );
        // The inline block in another event type is checked too.
        assert!(
            reason(
                "m.room.message",
                json!({"msgtype": "m.text", "body": "x",
                                                "m.fhir.resource": {"resourceType": "Nope"}})
            )
            .contains("canonical_url is required")
        );
    }
}
