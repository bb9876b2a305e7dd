//! The alerts bridge and on-call roles end to end (real `handover`, `handover-alerts`, the FHIR
//! test server and matrix-sdk staff):
//! - a *server* restart in the middle of an escalation neither loses nor repeats the step, and
//!   a ✅ sent while the bridge is down is decrypted by its restarted bot (same device, stores
//!   on disk);
//! - the rota read from FHIR (PractitionerRole + Schedule/Slot), a nurse messaging the role
//!   through its alias (knock → a room with the holder), and a rota change in FHIR that brings
//!   the new holder into the role's room and the caller's room, the open alert re-posted.

use std::time::Duration;

use handover_e2e::alerts::{AlertsBridge, free_port, now_secs};
use handover_e2e::fhir_test_server::{FhirServer, seed};
use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::relation::Annotation;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{EventId, OwnedRoomId, OwnedRoomOrAliasId};
use serde_json::Value;

use crate::alerts::{
    SECRET, alert, bridge_config, chrono_like, join_invite, setup, status_until, wait_alert,
};

/// Joins every pending invite of `c` until it is in all of `want`.
async fn join_rooms(c: &Client, who: &str, want: &[&OwnedRoomId]) {
    within(60, &format!("{who} is invited to {want:?}"), async {
        loop {
            let _ = c
                .sync_once(
                    matrix_sdk::config::SyncSettings::default().timeout(Duration::from_millis(300)),
                )
                .await;
            for r in c.invited_rooms() {
                let _ = r.join().await;
            }
            if want.iter().all(|id| {
                c.get_room(id)
                    .is_some_and(|r| r.state() == matrix_sdk::RoomState::Joined)
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
}

/// Waits until `c` has decrypted a text message `body` in `room_id`.
async fn wait_text(c: &Client, room_id: &OwnedRoomId, body: &str, what: &str) -> Value {
    within(60, what, async {
        loop {
            let _ = c
                .sync_once(
                    matrix_sdk::config::SyncSettings::default().timeout(Duration::from_millis(300)),
                )
                .await;
            if let Some(room) = c.get_room(room_id)
                && let Ok(msgs) = room.messages(MessagesOptions::backward()).await
            {
                for ev in msgs.chunk.iter().filter(|e| e.encryption_info().is_some()) {
                    let j = raw_json(ev.raw());
                    if message_body(&j) == Some(body) {
                        return j;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
}

async fn say(c: &Client, room_id: &OwnedRoomId, text: &str) {
    c.get_room(room_id)
        .expect("room known")
        .send(RoomMessageEventContent::text_plain(text))
        .await
        .unwrap_or_else(|e| panic!("sending {text:?}: {e:?}"));
}

async fn react_ack(c: &Client, room_id: &OwnedRoomId, event: &Value) {
    let id = EventId::parse(event["event_id"].as_str().unwrap()).unwrap();
    c.get_room(room_id)
        .unwrap()
        .send(ReactionEventContent::new(Annotation::new(
            id,
            "✅".to_owned(),
        )))
        .await
        .unwrap();
}

async fn import_csv(bridge: &AlertsBridge, user: &str) {
    let (from, until) = (
        chrono_like(now_secs() - 3600),
        chrono_like(now_secs() + 86_400),
    );
    let csv = format!("role,user_id,start,end\nmedreg-oncall,{user},{from},{until}\n");
    let r = reqwest::Client::new()
        .post(format!("{}/rota", bridge.webhook))
        .bearer_auth("rota-admin-e2e")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_restart_mid_escalation_and_an_ack_sent_while_the_bridge_is_down() {
    with_timeout(500, async {
        let (mut server, clients, mut bridge, _dir) = setup(&["nurse", "reg"]).await;
        let (nurse, reg) = (&clients[0], &clients[1]);
        let ward = join_invite(nurse, "nurse").await;
        import_csv(&bridge, "@reg:localhost").await;
        let role_room = join_invite(reg, "reg").await;

        // Posted to the ward; the server goes down before the 4 s escalation is due and comes
        // back (same address) after it: the step fires once, late rather than never.
        let (code, v) = bridge.send("news2", SECRET, now_secs(), &alert("r1")).await;
        assert_eq!(code, 202, "{v}");
        status_until(&bridge, "r1", "r1 posted", |v| v["state"] == "open").await;
        server.stop().await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        server.restart_same_port().await;
        let s = status_until(
            &bridge,
            "r1",
            "r1 escalated after the server restart",
            |v| v["escalated"].as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
        assert_eq!(s["escalated"][0]["recipient"], "@reg:localhost");
        let esc = wait_alert(reg, &role_room, "r1", "reg decrypts r1's escalation", |j| {
            j["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("Escalated"))
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (_, s) = bridge.status("news2", SECRET, "r1").await;
        assert_eq!(
            s["escalated"].as_array().unwrap().len(),
            1,
            "not repeated: {s}"
        );
        let first_posts = s["delivered"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["step"] == 0)
            .count();
        assert_eq!(first_posts, 1, "posted once: {s}");
        // The nurse's ward post was not lost either.
        wait_alert(nurse, &ward, "r1", "nurse decrypts r1", |_| true).await;

        // The bridge is down when the registrar acknowledges: after its restart the bot (same
        // device, keys on disk) decrypts the ✅ and records it.
        bridge.kill().await;
        react_ack(reg, &role_room, &esc).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        bridge.restart().await;
        let s = status_until(
            &bridge,
            "r1",
            "the ✅ sent while the bridge was down",
            |v| v["state"] == "acknowledged",
        )
        .await;
        assert_eq!(s["acknowledged"]["by"], "@reg:localhost");
        assert_eq!(s["acknowledged"]["via"], "reaction");
    })
    .await;
}

/// A Slot (`busy`: a rostered shift) on an on-call Schedule of the seed.
fn slot(id: &str, schedule: &str, start: i64, end: i64) -> Value {
    json!({"resourceType": "Slot", "id": id,
           "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Slot"]},
           "schedule": {"reference": format!("Schedule/{schedule}")}, "status": "busy",
           "start": chrono_like(start), "end": chrono_like(end)})
}

async fn import_fhir(bridge: &AlertsBridge) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/rota/fhir", bridge.webhook))
        .bearer_auth("rota-admin-e2e")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn fhir_rota_staff_message_the_role_and_a_handover_keeps_alerts_and_callers() {
    with_timeout(600, async {
        let fhir = FhirServer::start(&seed("seed-oncall-rota.json")).await;
        let now = now_secs();
        fhir.put(&slot(
            "slot-reg-1",
            "oncall-medreg-1",
            now - 3600,
            now + 8 * 3600,
        ))
        .await;
        fhir.put(&slot(
            "slot-reg2-1",
            "oncall-medreg-2",
            now + 8 * 3600,
            now + 20 * 3600,
        ))
        .await;

        let dir = tempfile::Builder::new()
            .prefix("handover-oncall-e2e-")
            .tempdir()
            .unwrap();
        let cfg = format!(
            "{}\n[fhir_rota]\nbase_url = {}\n",
            bridge_config(dir.path(), free_port()),
            toml_str(&fhir.base)
        );
        let (config, reg_file) = AlertsBridge::write_config(dir.path(), &cfg).await;
        let opts = ServerOptions {
            extra_toml: format!(
                "[appservices]\nregistration_files = [{}]\n",
                toml_str(&reg_file.to_string_lossy())
            ),
            ..Default::default()
        };
        let server = TestServer::start_with(opts).await;
        let nurse = server.register("nurse").await;
        let reg = server.register("reg").await;
        let reg2 = server.register("reg2").await;
        // Everyone's client is online (device keys uploaded) before anything is sent to them.
        for c in [&nurse, &reg, &reg2] {
            c.sync_once(Default::default()).await.unwrap();
        }
        let bridge = AlertsBridge::start(config, server.url(), dir.path()).await;

        // The rota from FHIR: reg on call now, reg2 from tonight.
        let v = import_fhir(&bridge).await;
        assert_eq!(
            (v["imported"].as_i64(), v["origin"].as_str()),
            (Some(2), Some("fhir")),
            "{v}"
        );
        let role_room = join_invite(&reg, "reg").await;
        let ward = join_invite(&nurse, "nurse").await;

        // An alert nobody acknowledges escalates to reg as the role's holder.
        let (code, v) = bridge.send("news2", SECRET, now_secs(), &alert("h1")).await;
        assert_eq!(code, 202, "{v}");
        wait_alert(
            &reg,
            &role_room,
            "h1",
            "reg receives h1's escalation",
            |_| true,
        )
        .await;

        // The nurse messages the role through its alias: the knock opens a room with reg.
        let alias = OwnedRoomOrAliasId::try_from("#medreg-oncall:localhost").unwrap();
        nurse
            .knock(alias, Some("Bed 4 review".into()), vec![])
            .await
            .expect("knock");
        let caller_room = within(60, "the nurse's caller room", async {
            loop {
                let _ = nurse
                    .sync_once(
                        matrix_sdk::config::SyncSettings::default()
                            .timeout(Duration::from_millis(300)),
                    )
                    .await;
                if let Some(r) = nurse
                    .invited_rooms()
                    .into_iter()
                    .find(|r| r.room_id() != ward)
                {
                    r.join().await.expect("nurse joins the caller room");
                    return r.room_id().to_owned();
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
        .await;
        join_rooms(&reg, "reg", &[&caller_room]).await;
        nurse.sync_once(Default::default()).await.unwrap();
        say(&nurse, &caller_room, "Bed 4 NEWS2 7, please review").await;
        wait_text(
            &reg,
            &caller_room,
            "Bed 4 NEWS2 7, please review",
            "reg reads the nurse",
        )
        .await;

        // The rota changes in the EPR: reg's shift ends, reg2's starts. After the import reg2
        // is in the role's room and the nurse's room, reg in neither; h1 is re-posted.
        fhir.put(&slot(
            "slot-reg-1",
            "oncall-medreg-1",
            now - 3600,
            now_secs() - 60,
        ))
        .await;
        fhir.put(&slot(
            "slot-reg2-1",
            "oncall-medreg-2",
            now_secs() - 60,
            now + 20 * 3600,
        ))
        .await;
        import_fhir(&bridge).await;
        join_rooms(&reg2, "reg2", &[&role_room, &caller_room]).await;
        let repost = wait_alert(&reg2, &role_room, "h1", "h1 re-posted for reg2", |j| {
            j["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("Handed over"))
        })
        .await;
        nurse.sync_once(Default::default()).await.unwrap();
        say(&nurse, &caller_room, "Any update on bed 4?").await;
        wait_text(
            &reg2,
            &caller_room,
            "Any update on bed 4?",
            "reg2 reads the nurse",
        )
        .await;
        within(
            60,
            "reg is out of the role's and the nurse's rooms",
            async {
                loop {
                    let _ = reg
                        .sync_once(
                            matrix_sdk::config::SyncSettings::default()
                                .timeout(Duration::from_millis(300)),
                        )
                        .await;
                    let left = |id: &OwnedRoomId| {
                        reg.get_room(id)
                            .is_some_and(|r| r.state() == matrix_sdk::RoomState::Left)
                    };
                    if left(&role_room) && left(&caller_room) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            },
        )
        .await;

        // reg2 acknowledges the re-post: the alert is acknowledged by them.
        react_ack(&reg2, &role_room, &repost).await;
        let s = status_until(&bridge, "h1", "h1 acknowledged by reg2", |v| {
            v["state"] == "acknowledged"
        })
        .await;
        assert_eq!(s["acknowledged"]["by"], "@reg2:localhost");
    })
    .await;
}
