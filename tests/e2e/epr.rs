//! The EPR bridge end to end: the real `handover` (with a real OpenID provider for sign-in),
//! the real `handover-epr`, the real FHIR server (Medplum's router over its in-memory
//! repository, UK Core seed) and matrix-sdk clients in the encrypted patient room.
//! EPR launch link → sign-in → patient-context room with the care team invited; `!patient`
//! shows demographics in the encrypted room only; a message and a photo filed to the record
//! (right subject, author, attachment); refiling does nothing; an EPR outage is shown and
//! retried until filed; no NHS number in unencrypted state or in any database file. And the
//! server's MSC4302 check: garbage FHIR resource events refused with M_BAD_JSON.

use std::time::Duration;

use base64::Engine;
use handover_e2e::account::{Account, eventually};
use handover_e2e::epr::EprBridge;
use handover_e2e::fhir_test_server::{FhirAuth, FhirServer, uk_core_seed};
use handover_e2e::oidc::{
    Browser, legacy_sso, login_token_of, provider_login, start_with_provider,
};
use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::relation::Annotation;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{EventId, OwnedRoomId};
use serde_json::Value;

const NHS: &str = "9434765919";
const FHIR_TOKEN: &str = "fhir-access-token-e2e-5d1";
const SDS: &str = "https://fhir.nhs.uk/Id/sds-user-id";

fn users() -> Value {
    json!({"carol": {"password": "pw", "sub": "sub-carol", "acr": "aal3",
                     "claims": {"name": "Carol Jones", "preferred_username": "carol"}}})
}

/// The UK Core seed plus a second practitioner (dave, known by email) and pat-1's care team.
fn seed() -> Vec<Value> {
    let mut s = uk_core_seed();
    s.push(json!({"resourceType": "Practitioner", "id": "prac-2",
        "name": [{"family": "Nurse", "given": ["Dave"]}],
        "telecom": [{"system": "email", "value": "Dave@nhs.net"}]}));
    s.push(
        json!({"resourceType": "CareTeam", "id": "ct-1", "status": "active",
        "subject": {"reference": "Patient/pat-1"},
        "participant": [{"member": {"reference": "Practitioner/prac-1"}},
                        {"member": {"reference": "Practitioner/prac-2"}}]}),
    );
    s
}

fn bridge_toml(dir: &std::path::Path, as_port: u16, fhir: &FhirServer, staff: &str) -> String {
    format!(
        r#"[appservice]
id = "epr"
homeserver_url = "http://127.0.0.1:1"
server_name = "localhost"
listen = "127.0.0.1:{as_port}"
as_token = "epr-as-token-e2e-1c9"
hs_token = "epr-hs-token-e2e-7b2"
sender_localpart = "epr"

[launch]
listen = "127.0.0.1:0"
sso_idp = "cis2"

[fhir]
base_url = "{base}"
auth = "client_credentials"
token_url = "{origin}/oauth2/token"
client_id = "handover-epr"
client_secret = "epr-client-secret"

[staff]
csv = {staff}
email_domains = ["nhs.net"]

[care_team]
seed = true

[filing]
retry_initial_secs = 1
retry_max_secs = 2
tick_ms = 200

[state]
path = {db}

[log]
level = "info,matrix_sdk=warn,matrix_sdk_crypto=warn,matrix_sdk_base=warn"
"#,
        base = fhir.base,
        origin = fhir.origin,
        staff = toml_str(staff),
        db = toml_str(&dir.join("epr.db").to_string_lossy()),
    )
}

/// Waits until `c` has decrypted a message in `room_id` whose body satisfies `pred`.
async fn wait_body(
    c: &Client,
    room_id: &OwnedRoomId,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Value {
    within(90, what, async {
        loop {
            let _ = c
                .sync_once(
                    matrix_sdk::config::SyncSettings::default().timeout(Duration::from_millis(300)),
                )
                .await;
            if let Some(room) = c.get_room(room_id)
                && let Ok(msgs) = room.messages(options()).await
            {
                for ev in msgs.chunk.iter().filter(|e| e.encryption_info().is_some()) {
                    let j = raw_json(ev.raw());
                    if j["content"]["body"].as_str().is_some_and(&pred) {
                        return j;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
}

fn options() -> MessagesOptions {
    let mut o = MessagesOptions::backward();
    o.limit = 60u32.into();
    o
}

/// `Type/id` in a bot confirmation.
fn filed_ref(body: &str, kind: &str) -> String {
    let at = body
        .find(&format!("{kind}/"))
        .unwrap_or_else(|| panic!("{body}"));
    body[at..]
        .trim_end_matches('.')
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_owned()
}

async fn react(c: &Client, room: &OwnedRoomId, event_id: &str) {
    let target = EventId::parse(event_id).unwrap();
    c.get_room(room)
        .unwrap()
        .send(ReactionEventContent::new(Annotation::new(
            target,
            "📋".to_owned(),
        )))
        .await
        .unwrap();
}

async fn reply_file(c: &Client, room: &OwnedRoomId, event_id: &str) {
    let content = json!({"msgtype": "m.text", "body": "!file",
                         "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}});
    c.get_room(room)
        .unwrap()
        .send_raw("m.room.message", content)
        .await
        .unwrap();
}

async fn send_text(c: &Client, room: &OwnedRoomId, text: &str) -> String {
    c.get_room(room)
        .unwrap()
        .send(RoomMessageEventContent::text_plain(text))
        .await
        .unwrap()
        .response
        .event_id
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn epr_launch_file_to_record_outage_retry_and_no_nhs_number_leaks() {
    with_timeout(600, async {
        let dir = tempfile::Builder::new()
            .prefix("handover-epr-e2e-")
            .tempdir()
            .unwrap();
        let auth = FhirAuth {
            token: FHIR_TOKEN,
            client_id: "handover-epr",
            client_secret: "epr-client-secret",
        };
        let fhir = FhirServer::start_authenticated(dir.path(), &seed(), auth).await;
        let staff = dir.path().join("staff.csv");
        std::fs::write(
            &staff,
            format!("system,value,user_id\n{SDS},555555555555,@carol:localhost\n"),
        )
        .unwrap();
        let as_port = handover_e2e::alerts::free_port();
        let (config, reg) = EprBridge::write_config(
            dir.path(),
            &bridge_toml(dir.path(), as_port, &fhir, &staff.to_string_lossy()),
        )
        .await;
        let toml = format!(
            r#"
[identity]
password_login = true
# The bridge's launch callback (loopback: any port) may receive the legacy SSO login token.
sso_redirect_allowlist = ["http://127.0.0.1/"]

[[identity.providers]]
id = "cis2"
name = "NHS Care Identity"
issuer = "{{issuer}}"
client_id = "handover"
client_secret = "s3cret"
scopes = ["openid", "profile"]

[appservices]
registration_files = [{}]
"#,
            toml_str(&reg.to_string_lossy())
        );
        let (_op, server) = start_with_provider(users(), &toml).await;
        let dave = server.register("dave").await;
        let bridge = EprBridge::start(&config, server.url(), dir.path()).await;

        // Bad launches are refused before anything happens, never echoing the number.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = http
            .get(format!(
                "{}/patient-room?nhs_number=9434765918",
                bridge.launch
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_nhs_number", "{body}");
        assert!(!body.to_string().contains("9434765918"));

        // The EPR's launch link in carol's browser: bridge → Handover's SSO → the provider's
        // form → back through Handover and the bridge → the room's matrix.to link.
        let mut b = Browser::new();
        let p = b
            .get(&format!(
                "{}/patient-room?nhs_number=943%20476%205919",
                bridge.launch
            ))
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let form = b.follow(p, "https://matrix.to").await;
        let landed = provider_login(&mut b, form, "carol", "https://matrix.to").await;
        let link = landed
            .location
            .clone()
            .unwrap_or_else(|| panic!("no link: {} {}", landed.status, landed.body));
        assert!(link.starts_with("https://matrix.to/#/"), "{link}");
        let encoded = link
            .trim_start_matches("https://matrix.to/#/")
            .split('?')
            .next()
            .unwrap();
        let room_id: OwnedRoomId = url::form_urlencoded::parse(format!("r={encoded}").as_bytes())
            .next()
            .unwrap()
            .1
            .to_string()
            .try_into()
            .unwrap();

        // Carol signs in to a client (a new SSO round) and accepts the invite.
        let back = legacy_sso(&server, "cis2", "carol", "http://127.0.0.1/done")
            .await
            .unwrap_or_else(|p| panic!("{}", p.body));
        let carol = server.client().await;
        carol
            .matrix_auth()
            .login_token(&login_token_of(&back))
            .await
            .unwrap();
        assert_eq!(carol.user_id().unwrap().as_str(), "@carol:localhost");
        sync_until(&carol, 60, "carol invited", |r| {
            r.rooms.invited.contains_key(&room_id).then_some(())
        })
        .await;
        carol.get_room(&room_id).unwrap().join().await.unwrap();
        // Dave is in pat-1's CareTeam (mapped by his nhs.net email): invited too.
        sync_until(&dave, 60, "dave invited", |r| {
            r.rooms.invited.contains_key(&room_id).then_some(())
        })
        .await;

        // A patient-context room, encrypted, linked by reference only: no identifier in state.
        let acct = Account::login(server.http(), "@dave:localhost", PASSWORD).await;
        dave.get_room(&room_id).unwrap().join().await.unwrap();
        let state = acct.state(room_id.as_str()).await;
        let of = |t: &str| {
            state
                .iter()
                .find(|e| e["type"] == t)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(
            of("m.room.create")["content"]["org.handover.context"],
            "patient"
        );
        assert_eq!(
            of("m.room.encryption")["content"]["algorithm"],
            "m.megolm.v1.aes-sha2"
        );
        assert_eq!(of("m.room.join_rules")["content"]["join_rule"], "invite");
        let link_state = of("org.handover.patient");
        assert_eq!(link_state["content"]["patient_id"], "pat-1", "{link_state}");
        assert_eq!(link_state["content"]["fhir_base"], fhir.base.as_str());
        let all_state = Value::Array(state.clone()).to_string();
        for leak in [NHS, "943 476 5919", "Testpatient", "1948-03-02"] {
            assert!(
                !all_state.contains(leak),
                "{leak} in room state: {all_state}"
            );
        }

        // A second launch (dave's own access token, SMART-style by logical id): the same room.
        let r = http
            .get(format!("{}/patient-room?patient=pat-1", bridge.launch))
            .bearer_auth(&acct.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(loc, link, "one room per patient");

        // !patient: demographics from the EPR, in the encrypted room only.
        send_text(&carol, &room_id, "!patient").await;
        let demo = wait_body(&carol, &room_id, "demographics", |b| b.contains("Patient:")).await;
        let text = demo["content"]["body"].as_str().unwrap();
        assert!(
            text.contains("Mrs Ada TESTPATIENT")
                && text.contains("943 476 5919")
                && text.contains("1948-03-02"),
            "{text}"
        );

        // File a message (📋) → Communication with the right subject and author.
        let plan = "Plan: IV co-amoxiclav, bloods at 18:00";
        let msg_id = send_text(&carol, &room_id, plan).await;
        react(&carol, &room_id, &msg_id).await;
        let ok = wait_body(&carol, &room_id, "message filed", |b| {
            b.contains("Filed to the patient's record as Communication/")
        })
        .await;
        let comm_ref = filed_ref(ok["content"]["body"].as_str().unwrap(), "Communication");
        let (status, comm) = fhir.get(&comm_ref).await;
        assert_eq!(status, 200, "{comm}");
        assert_eq!(comm["subject"]["reference"], "Patient/pat-1");
        assert_eq!(comm["sender"]["reference"], "Practitioner/prac-1");
        assert_eq!(comm["payload"][0]["contentString"], plan);
        assert_eq!(comm["identifier"][0]["value"], msg_id.as_str());

        // File a photo (!file in reply) → DocumentReference with the decrypted bytes.
        let photo: Vec<u8> = {
            let img = image::RgbImage::from_fn(24, 16, |x, y| {
                image::Rgb([x as u8 * 9, y as u8 * 13, 77])
            });
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        };
        let sent = carol
            .get_room(&room_id)
            .unwrap()
            .send_attachment(
                "wound.png",
                &mime::IMAGE_PNG,
                photo.clone(),
                AttachmentConfig::new(),
            )
            .await
            .unwrap();
        let photo_id = sent.event_id.to_string();
        reply_file(&carol, &room_id, &photo_id).await;
        let ok = wait_body(&carol, &room_id, "photo filed", |b| {
            b.contains("as DocumentReference/")
        })
        .await;
        let doc_ref = filed_ref(ok["content"]["body"].as_str().unwrap(), "DocumentReference");
        let (_, doc) = fhir.get(&doc_ref).await;
        assert_eq!(doc["subject"]["reference"], "Patient/pat-1", "{doc}");
        assert_eq!(doc["author"][0]["reference"], "Practitioner/prac-1");
        let att = &doc["content"][0]["attachment"];
        assert_eq!(att["contentType"], "image/png");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(att["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            bytes, photo,
            "the attachment is the photo as sent, decrypted"
        );

        // Refiling does nothing: the bot says where it already is; one resource per event.
        reply_file(&dave, &room_id, &msg_id).await;
        wait_body(&carol, &room_id, "already filed", |b| {
            b.contains(&format!("Already filed to the record as {comm_ref}"))
        })
        .await;
        let same = fhir
            .search(&format!(
                "Communication?identifier={}",
                enc(&format!(
                    "https://handover.nhs.uk/fhir/Id/matrix-event|{msg_id}"
                ))
            ))
            .await;
        assert_eq!(same.len(), 1);
        assert_eq!(
            fhir.search("Communication?subject=Patient/pat-1")
                .await
                .len(),
            1
        );

        // EPR outage: the reason is shown in the room, and the filing is retried until it lands.
        fhir.set_down(true).await;
        let urgent = "K+ 6.9 mmol/L, ECG done, calcium gluconate given";
        let urgent_id = send_text(&carol, &room_id, urgent).await;
        react(&carol, &room_id, &urgent_id).await;
        wait_body(&carol, &room_id, "outage shown", |b| {
            b.contains("Not filed yet") && b.contains("EPR unavailable (test outage)")
        })
        .await;
        fhir.set_down(false).await;
        let ok = wait_body(&carol, &room_id, "filed after the outage", |b| {
            b.contains("Filed to the patient's record as Communication/") && !b.contains(&comm_ref)
        })
        .await;
        let urgent_ref = filed_ref(ok["content"]["body"].as_str().unwrap(), "Communication");
        let (_, c2) = fhir.get(&urgent_ref).await;
        assert_eq!(c2["payload"][0]["contentString"], urgent);
        eventually(30, "two communications", || async {
            (fhir
                .search("Communication?subject=Patient/pat-1")
                .await
                .len()
                == 2)
                .then_some(())
        })
        .await;

        // No NHS number outside encrypted events: not in the server's database files, not in the
        // bridge's, not in the bridge's log (nor message text there).
        for form in [NHS, "943 476 5919"] {
            assert!(!server.db_contains(form), "{form} in the server's database");
            for f in ["epr.db", "epr.db-wal"] {
                let bytes = std::fs::read(dir.path().join(f)).unwrap_or_default();
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{form} in the bridge's {f}"
                );
            }
        }
        let log = bridge.stderr();
        for secret in [
            NHS,
            "943 476 5919",
            plan,
            urgent,
            FHIR_TOKEN,
            "epr-client-secret",
        ] {
            assert!(!log.contains(secret), "{secret:?} in the bridge log");
        }
    })
    .await;
}

#[tokio::test]
async fn msc4302_fhir_resource_events_are_validated_by_the_server() {
    let server = TestServer::start().await;
    let alice = Account::register(server.http(), "alice").await;
    let room = alice
        .create_room(&json!({"preset": "public_chat", "name": "Results"}))
        .await;
    let send = |t: &'static str, content: Value| {
        let alice = &alice;
        let room = room.clone();
        async move {
            let txn = format!("t{}", rand_suffix());
            let path = format!("/_matrix/client/v3/rooms/{}/send/{t}/{txn}", enc(&room));
            alice.put(&path, &content).await
        }
    };
    let unstable = "de.gematik.msc4302.fhir.resource";
    // Integers only: Matrix events are canonical JSON, which has no decimals (a FHIR resource
    // with a decimal goes as m.file; the server refuses a float with M_BAD_JSON either way).
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "Heart rate"}, "valueQuantity": {"value": 112, "unit": "/min"}});
    let good = json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Observation|4.0.1",
        "body": "Heart rate 112 /min", "m.fhir.resource": observation});
    let event_id = send(unstable, good).await.ok()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{}/event/{}",
            enc(&room),
            enc(&event_id)
        ))
        .await
        .ok();
    assert_eq!(
        got["content"]["m.fhir.resource"]["resourceType"],
        "Observation"
    );
    let file = json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Bundle",
        "body": "Discharge bundle", "m.file": {"url": "mxc://localhost/abc", "mimetype": "application/fhir+json"}});
    send("m.fhir.resource", file).await.ok();

    for (content, field) in [
        (
            json!({"m.fhir.resource": {"resourceType": "Observation"}}),
            "canonical_url is required",
        ),
        (
            json!({"canonical_url": "urn:x", "m.fhir.resource": {"resourceType": "Banana"}}),
            "\"Banana\" is not a FHIR R4 resource type",
        ),
        (
            json!({"canonical_url": "urn:x", "m.fhir.resource": "<Observation/>"}),
            "must be a JSON object",
        ),
        (json!({"canonical_url": "urn:x"}), "the resource is missing"),
        (
            json!({"canonical_url": "http://hl7.org/fhir/StructureDefinition/Patient", "m.fhir.resource": {"resourceType": "Observation"}}),
            "defines Patient",
        ),
        (
            json!({"canonical_url": "urn:x", "m.file": {"url": "https://evil.example/x"}}),
            "mxc://",
        ),
    ] {
        let r = send(unstable, content).await;
        r.assert_error(400, &["M_BAD_JSON"]);
        let msg = r.json()["error"].as_str().unwrap().to_owned();
        assert!(
            msg.contains("fhir_resource_invalid") && msg.contains(field),
            "{msg}"
        );
    }
    // The inline block smuggled into a message is checked too.
    let r = send(
        "m.room.message",
        json!({"msgtype": "m.text", "body": "x", "m.fhir.resource": {"resourceType": "Nope"}}),
    )
    .await;
    r.assert_error(400, &["M_BAD_JSON"]);
    // Plain messages are untouched.
    send(
        "m.room.message",
        json!({"msgtype": "m.text", "body": "Observation attached"}),
    )
    .await
    .ok();
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
