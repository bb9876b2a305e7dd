//! Application services against a real framework: mautrix-python's `AppService`
//! (tests/appservice/mautrix_as.py, installed by scripts/install-mautrix.sh) registered with
//! Handover through a YAML registration file, driven alongside matrix-sdk clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handover_e2e::mautrix::{AsRegistration, MautrixAs, Seen, wait_seen};
use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, UserId};

/// Bodies of the `m.room.message` events the appservice received, with their event ids.
fn bodies(seen: &Seen) -> Vec<(String, String)> {
    seen.events
        .iter()
        .filter_map(|e| {
            let ev = &e["event"];
            let body = message_body(ev)?;
            Some((ev["event_id"].as_str()?.to_owned(), body.to_owned()))
        })
        .collect()
}

fn rooms_seen(seen: &Seen) -> Vec<String> {
    seen.events
        .iter()
        .filter_map(|e| e["event"]["room_id"].as_str().map(str::to_owned))
        .collect()
}

async fn send_text(client: &Client, room: &OwnedRoomId, body: &str) -> String {
    let room = client.get_room(room).expect("room known to the client");
    room.send(RoomMessageEventContent::text_plain(body))
        .await
        .unwrap_or_else(|e| panic!("sending {body:?}: {e:?}"))
        .response
        .event_id
        .to_string()
}

async fn public_room(client: &Client) -> OwnedRoomId {
    client
        .create_room(unencrypted_room())
        .await
        .expect("create room")
        .room_id()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn mautrix_appservice_receives_pings_masquerades_and_survives_restarts() {
    with_timeout(600, async {
        let reg = AsRegistration::new("alerts");
        let regdir = tempfile::tempdir().unwrap();
        let policy = "[policy]\nrules = \"nhs\"\nnhs_number_in_messages = true\n";
        let opts = ServerOptions {
            extra_toml: format!("{policy}{}", reg.write_config(regdir.path())),
            ..Default::default()
        };
        let mut server = TestServer::start_with(opts).await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut az = MautrixAs::start(&reg, server.url(), seen.clone()).await;
        let http = server.http();

        // Ping both ways: the appservice asks the homeserver, which pings it back with its
        // hs_token and the same transaction id.
        let r = az.command(json!({"cmd": "ping", "txn_id": "ping-1"})).await;
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["duration_ms"].as_i64().unwrap() >= 0, "{r}");
        wait_seen(&seen, 30, "the homeserver's ping", |s| {
            s.pings
                .iter()
                .any(|p| p["transaction_id"] == "ping-1" && p["authorization"] == true)
        })
        .await;
        // Its token pings only itself; a user's token pings nothing.
        let other = "/_matrix/client/v1/appservice/other/ping";
        (http.post_json(other, Some(&reg.as_token), &json!({})).await)
            .assert_error(403, &["M_FORBIDDEN"]);
        let alice = server.register("alice").await;
        let alice_token = alice.access_token().unwrap();
        let own = format!("/_matrix/client/v1/appservice/{}/ping", reg.id);
        (http.post_json(&own, Some(&alice_token), &json!({})).await)
            .assert_error(403, &["M_FORBIDDEN"]);

        // A regular user cannot take an id in the appservice's exclusive namespace.
        let body = json!({"username": "alerts_evil", "password": PASSWORD, "auth": {"type": "m.login.dummy"}});
        (http.post_json("/_matrix/client/v3/register", None, &body).await)
            .assert_error(400, &["M_EXCLUSIVE"]);
        // Nor may the appservice register or act outside it.
        let r = az.command(json!({"cmd": "register", "user": "@bob:localhost"})).await;
        assert_eq!(r["errcode"], "M_EXCLUSIVE", "{r}");
        let r = az.command(json!({"cmd": "whoami", "user": "@alice:localhost"})).await;
        assert_eq!((r["status"].as_i64(), r["errcode"].as_str()), (Some(403), Some("M_FORBIDDEN")), "{r}");

        // The appservice's intent for a namespace user registers, joins and sends; alice's
        // matrix-sdk client sees the message from that user.
        let ward = "@alerts_ward1:localhost";
        let room = public_room(&alice).await;
        let r = az
            .command(json!({"cmd": "send", "user": ward, "room": room, "text": "NEWS2 score 7, bed 4"}))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        let r = az.command(json!({"cmd": "whoami", "user": ward})).await;
        assert_eq!(r["user_id"], ward, "{r}");
        let ward_id = <&UserId>::try_from(ward).unwrap().to_owned();
        sync_until(&alice, 60, "the appservice user's message", |resp| {
            timeline(resp, &room).iter().any(|e| {
                e["sender"] == ward_id.as_str() && message_body(e) == Some("NEWS2 score 7, bed 4")
            }).then_some(())
        })
        .await;

        // Governance applies to appservice users as to anyone: the NHS number guard.
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/nhs1?user_id={}",
            enc(room.as_str()),
            enc(ward)
        );
        let body = json!({"msgtype": "m.text", "body": "patient 943 476 5919"});
        (http.put_json(&path, Some(&reg.as_token), &body).await)
            .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_message");

        // Events in a room with its user reach it; a room without any of its users does not.
        let private = public_room(&alice).await;
        send_text(&alice, &private, "not for the bridge").await;
        let hello = send_text(&alice, &room, "seen by the bridge").await;
        wait_seen(&seen, 60, "alice's message in the shared room", |s| {
            bodies(s).iter().any(|(id, _)| *id == hello)
        })
        .await;
        {
            let s = seen.lock().unwrap();
            assert!(rooms_seen(&s).iter().all(|r| *r == room.as_str()), "{:?}", rooms_seen(&s));
            assert!(bodies(&s).iter().all(|(_, b)| b != "not for the bridge"));
        }

        // Ephemeral events (MSC2409) of rooms it is interested in: alice's typing.
        let alice_id = alice.user_id().unwrap().to_string();
        alice.get_room(&room).unwrap().typing_notice(true).await.unwrap();
        wait_seen(&seen, 60, "alice typing, as an ephemeral event", |s| {
            s.ephemeral.iter().any(|e| {
                e["event"]["type"] == "m.typing"
                    && e["event"]["room_id"] == room.as_str()
                    && e["event"]["content"]["user_ids"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|x| *x == alice_id.as_str()))
            })
        })
        .await;

        // The appservice goes down; events keep coming, the server restarts in between.
        az.kill().await;
        let mut expected = Vec::new();
        for i in 1..=3 {
            expected.push(send_text(&alice, &room, &format!("queued {i}")).await);
        }
        server.restart().await;
        let alice = server.login("alice", PASSWORD).await;
        alice.sync_once(Default::default()).await.unwrap();
        for i in 4..=5 {
            expected.push(send_text(&alice, &room, &format!("queued {i}")).await);
        }
        // It comes back (on the new homeserver address): everything queued arrives, in order,
        // once each.
        let _az = MautrixAs::start(&reg, server.url(), seen.clone()).await;
        wait_seen(&seen, 120, "the queued messages after the restarts", |s| {
            let got: Vec<String> = bodies(s).into_iter().map(|(id, _)| id).collect();
            expected.iter().all(|e| got.contains(e))
        })
        .await;
        let s = seen.lock().unwrap().clone();
        let got = bodies(&s);
        let order: Vec<&String> = got
            .iter()
            .map(|(id, _)| id)
            .filter(|id| expected.contains(id))
            .collect();
        assert_eq!(order, expected.iter().collect::<Vec<_>>(), "in order, none twice");
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in &s.events {
            *counts.entry(e["event"]["event_id"].as_str().unwrap()).or_default() += 1;
        }
        assert!(counts.values().all(|&n| n == 1), "an event was delivered twice: {counts:?}");
    })
    .await;
}

/// The one-time key counts of `user`'s `device` in the latest transaction that had them.
fn latest_count(seen: &Seen, user: &str, device: &str) -> Option<i64> {
    seen.otk_counts
        .iter()
        .rev()
        .find_map(|c| c["counts"][user][device]["signed_curve25519"].as_i64())
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_appservice_gets_to_device_device_lists_and_key_counts() {
    with_timeout(600, async {
        let mut reg = AsRegistration::new("crypt");
        reg.msc3202 = true;
        let regdir = tempfile::tempdir().unwrap();
        let opts = ServerOptions {
            extra_toml: reg.write_config(regdir.path()),
            ..Default::default()
        };
        let mut server = TestServer::start_with(opts).await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut az = MautrixAs::start(&reg, server.url(), seen.clone()).await;
        let http = server.http();

        // The appservice's user gets a device (m.login.application_service) and uploads keys
        // on it by masquerading as the device (MSC3202 `device_id`).
        let bot = "@crypt_e2ee:localhost";
        let r = az.command(json!({"cmd": "register", "user": bot})).await;
        assert_eq!(r["ok"], true, "{r}");
        let login = json!({"type": "m.login.application_service",
                           "identifier": {"type": "m.id.user", "user": "crypt_e2ee"}});
        let device = http
            .post_json("/_matrix/client/v3/login", Some(&reg.as_token), &login)
            .await
            .ok()["device_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let upload = json!({
            "device_keys": {"user_id": bot, "device_id": device,
                "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                "keys": {format!("curve25519:{device}"): "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
                         format!("ed25519:{device}"): "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"},
                "signatures": {}},
            "one_time_keys": {
                "signed_curve25519:AAAAAQ": {"key": "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM", "signatures": {}},
                "signed_curve25519:AAAAAg": {"key": "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ", "signatures": {}}},
            "fallback_keys": {
                "signed_curve25519:AAAAAw": {"key": "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU", "fallback": true, "signatures": {}}},
        });
        let path = format!(
            "/_matrix/client/v3/keys/upload?user_id={}&org.matrix.msc3202.device_id={}",
            enc(bot),
            enc(&device)
        );
        let counts = http.post_json(&path, Some(&reg.as_token), &upload).await.ok();
        assert_eq!(counts["one_time_key_counts"]["signed_curve25519"], 2, "{counts}");
        wait_seen(&seen, 60, "the device's key counts (2) and fallback key", |s| {
            latest_count(s, bot, &device) == Some(2)
                && s.fallback.iter().any(|f| {
                    f["types"][bot][&device]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|x| x == "signed_curve25519"))
                })
        })
        .await;

        // Sharing a room with alice: her device list is news to the appservice.
        let alice = server.register("alice").await;
        let alice_id = alice.user_id().unwrap().to_string();
        let room = public_room(&alice).await;
        let r = az
            .command(json!({"cmd": "send", "user": bot, "room": room, "text": "bridge here"}))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        wait_seen(&seen, 60, "alice in device_lists.changed", |s| {
            s.device_lists.iter().any(|d| {
                d["lists"]["changed"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|u| *u == alice_id.as_str()))
            })
        })
        .await;

        // A to-device message from alice to the bot's device, with its recipient named.
        let alice_token = alice.access_token().unwrap();
        let send = |txn: &str, n: i64| {
            (
                format!("/_matrix/client/v3/sendToDevice/org.example.ping/{txn}"),
                json!({"messages": {bot: {device.clone(): {"n": n}}}}),
            )
        };
        let (p, b) = send("td1", 1);
        http.put_json(&p, Some(&alice_token), &b).await.ok();
        wait_seen(&seen, 60, "the to-device message", |s| {
            s.to_device.iter().any(|t| t["event"]["content"]["n"] == 1)
        })
        .await;
        {
            let s = seen.lock().unwrap();
            let t = s.to_device.iter().find(|t| t["event"]["content"]["n"] == 1).unwrap();
            assert_eq!(t["event"]["to_user_id"], bot, "{t}");
            assert_eq!(t["event"]["to_device_id"], device.as_str(), "{t}");
            assert_eq!(t["event"]["sender"], alice_id.as_str(), "{t}");
            assert_eq!(t["event"]["type"], "org.example.ping", "{t}");
        }

        // Alice claims one of the bot's one-time keys: the count drops to 1.
        let claim = json!({"one_time_keys": {bot: {device.clone(): "signed_curve25519"}}});
        let claimed = http
            .post_json("/_matrix/client/v3/keys/claim", Some(&alice_token), &claim)
            .await
            .ok();
        assert!(claimed["one_time_keys"][bot][&device].is_object(), "{claimed}");
        wait_seen(&seen, 60, "the count after the claim (1)", |s| {
            latest_count(s, bot, &device) == Some(1)
        })
        .await;

        // The appservice is down and the server restarts: a message sent meanwhile waits in
        // the queue and arrives once, after both are back.
        az.kill().await;
        let (p, b) = send("td2", 2);
        http.put_json(&p, Some(&alice_token), &b).await.ok();
        server.restart().await;
        let _az = MautrixAs::start(&reg, server.url(), seen.clone()).await;
        wait_seen(&seen, 120, "the to-device message queued while down", |s| {
            s.to_device.iter().any(|t| t["event"]["content"]["n"] == 2)
        })
        .await;
        // A later transaction does not carry it again (the restart moved the server: new URL).
        let (p, b) = send("td3", 3);
        server.http().put_json(&p, Some(&alice_token), &b).await.ok();
        wait_seen(&seen, 60, "a later to-device message", |s| {
            s.to_device.iter().any(|t| t["event"]["content"]["n"] == 3)
        })
        .await;
        let s = seen.lock().unwrap();
        for n in [1, 2, 3] {
            let times = s.to_device.iter().filter(|t| t["event"]["content"]["n"] == n).count();
            assert_eq!(times, 1, "to-device message {n} delivered {times} times");
        }
    })
    .await;
}
