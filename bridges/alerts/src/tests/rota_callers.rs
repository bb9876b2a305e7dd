//! The FHIR rota (PractitionerRole + Schedule/Slot, or a period) and staff messaging a role:
//! a knock on the role room opens a caller room with the holder, and a handover moves the
//! holder there too.

use std::collections::HashMap;

use handover_bridge_core::store::Db;
use serde_json::{Value, json};

use super::{FakeClock, FakePoster, config, engine_on};
use crate::rota_fhir::{FhirRota, ROLE_SYSTEM, slots_of};
use crate::state::MIGRATIONS;

fn role(id: &str, practitioner: &str, extra: Value) -> Value {
    let mut v = json!({"resourceType": "PractitionerRole", "id": id, "active": true,
        "practitioner": {"reference": format!("Practitioner/{practitioner}")},
        "code": [{"coding": [{"system": ROLE_SYSTEM, "code": "medreg-oncall"}]}]});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn practitioner(id: &str, user: Option<&str>) -> Value {
    let telecom: Vec<Value> = user
        .map(|u| json!({"system": "url", "value": format!("matrix:u/{u}")}))
        .into_iter()
        .collect();
    json!({"resourceType": "Practitioner", "id": id, "telecom": telecom})
}

#[test]
fn fhir_rota_from_slots_or_period_with_errors_listed() {
    let cfg = config();
    let mut data = FhirRota {
        roles: vec![
            role("pr-day", "p1", json!({})),
            role(
                "pr-night",
                "p2",
                json!({"period": {"start": "2025-06-01T20:00:00Z", "end": "2025-06-02T08:00:00Z"}}),
            ),
            // Another trust role: not this bridge's.
            json!({"resourceType": "PractitionerRole", "id": "pr-other", "practitioner": {"reference": "Practitioner/p1"},
                   "code": [{"coding": [{"system": ROLE_SYSTEM, "code": "surgreg-oncall"}]}]}),
        ],
        practitioners: HashMap::from([
            ("p1".to_owned(), practitioner("p1", Some("day:localhost"))),
            ("p2".to_owned(), practitioner("p2", Some("night:localhost"))),
        ]),
        schedules: vec![
            json!({"resourceType": "Schedule", "id": "s1", "actor": [{"reference": "PractitionerRole/pr-day"}]}),
        ],
        slots: vec![
            json!({"resourceType": "Slot", "id": "sl1", "schedule": {"reference": "Schedule/s1"}, "status": "busy",
                   "start": "2025-06-01T08:00:00Z", "end": "2025-06-01T20:00:00Z"}),
            json!({"resourceType": "Slot", "id": "sl2", "schedule": {"reference": "Schedule/s1"}, "status": "free",
                   "start": "2025-06-02T08:00:00Z", "end": "2025-06-02T20:00:00Z"}),
        ],
    };
    let slots = slots_of(&cfg, &data).unwrap();
    let got: Vec<(&str, &str)> = slots
        .iter()
        .map(|s| (s.role.as_str(), s.user_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("medreg-oncall", "@day:localhost"),
            ("medreg-oncall", "@night:localhost")
        ]
    );
    assert_eq!(
        slots[0].end_ms - slots[0].start_ms,
        12 * 3_600_000,
        "the busy slot only"
    );

    // Errors are listed by resource, and nothing is returned.
    data.practitioners
        .insert("p2".into(), practitioner("p2", None));
    data.slots.push(json!({"resourceType": "Slot", "id": "sl3", "schedule": {"reference": "Schedule/s1"},
                           "status": "busy", "start": "2025-06-03T08:00:00Z", "end": "2025-06-03T07:00:00Z"}));
    data.roles.push(role(
        "pr-away",
        "p3",
        json!({"telecom": [{"system": "url", "value": "matrix:u/x:elsewhere.nhs.uk"}]}),
    ));
    let errs = slots_of(&cfg, &data).unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "Slot/sl3",
            "PractitionerRole/pr-night",
            "PractitionerRole/pr-away"
        ],
        "{errs:?}"
    );
}

#[tokio::test]
async fn a_knock_on_the_role_opens_a_caller_room_that_follows_the_holder() {
    let (clock, poster) = (FakeClock::default(), FakePoster::default());
    let e = engine_on(Db::memory(MIGRATIONS).unwrap(), &clock, &poster);
    clock.advance_secs(1_750_000_000);
    let slot = crate::roles::Slot {
        role: "medreg-oncall".into(),
        user_id: "@reg:localhost".into(),
        start_ms: 0,
        end_ms: i64::MAX,
    };
    e.store
        .import_rota(vec![slot], "test".into())
        .await
        .unwrap();
    e.tick().await.unwrap();
    let role_room = e.role_room("medreg-oncall").await.unwrap();

    let knock = |user: &str, id: &str| {
        json!({"type": "m.room.member", "state_key": user, "sender": user, "event_id": id,
               "content": {"membership": "knock"}})
    };
    e.on_event(&role_room, &knock("@nurse:localhost", "$k1"))
        .await
        .unwrap();
    let created = poster.entries("create");
    let (caller_room, spec) = created.last().unwrap().clone();
    assert_eq!(
        spec["invite"],
        json!(["@nurse:localhost", "@reg:localhost"]),
        "{spec}"
    );
    assert!(
        poster
            .entries("kick")
            .contains(&(role_room.clone(), json!("@nurse:localhost"))),
        "knock declined"
    );
    // Another server's user is declined and audited, no room made.
    e.on_event(&role_room, &knock("@x:elsewhere.nhs.uk", "$k2"))
        .await
        .unwrap();
    assert_eq!(poster.entries("create").len(), created.len());
    let denied = e.store.db.audit_rows(Some("role.caller")).unwrap();
    assert!(denied.iter().any(|a| a.outcome == "denied"));
    // Knocking again reopens the same room.
    e.on_event(&role_room, &knock("@nurse:localhost", "$k3"))
        .await
        .unwrap();
    assert_eq!(poster.entries("create").len(), created.len());
    assert!(
        poster
            .entries("invite")
            .contains(&(caller_room.clone(), json!("@nurse:localhost")))
    );

    // A handover by command: the new holder joins the caller room, the previous one leaves.
    e.store
        .set_override(
            "medreg-oncall".into(),
            "@reg2:localhost".into(),
            "@reg:localhost".into(),
            "role.handover_command",
            e.now(),
        )
        .await
        .unwrap();
    e.tick().await.unwrap();
    assert!(
        poster
            .entries("invite")
            .contains(&(caller_room.clone(), json!("@reg2:localhost")))
    );
    assert!(
        poster
            .entries("kick")
            .contains(&(caller_room.clone(), json!("@reg:localhost")))
    );
    let notices: Vec<String> = poster
        .entries("send")
        .into_iter()
        .filter(|(r, _)| *r == caller_room)
        .map(|(_, c)| c["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        notices
            .iter()
            .any(|b| b.contains("@reg2:localhost now holds medreg-oncall")),
        "{notices:?}"
    );
    // Applied once: a further tick changes nothing.
    let kicks = poster.entries("kick").len();
    e.tick().await.unwrap();
    assert_eq!(poster.entries("kick").len(), kicks);
}
