//! End-to-end encryption with matrix-sdk's crypto (in-memory store): Megolm messages decrypted on
//! two devices of the same user, cross-signing bootstrap through UIA (password), and a key
//! backup round trip (recovery / secret storage) that lets a brand-new device read old history.

use std::future::IntoFuture;
use std::time::Duration;

use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::deserialized_responses::TimelineEvent;
use matrix_sdk::encryption::CrossSigningResetAuthType;
use matrix_sdk::encryption::backups::BackupState;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::api::client::uiaa::{self, AuthData};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, RoomId, uint, user_id};
use serde_json::Value;

/// Body of a *decrypted* `m.room.message` timeline event with this event ID, if present.
/// Panics if the event arrived but matrix-sdk could not decrypt it and `require_decrypted`.
fn decrypted_body(ev: &TimelineEvent, event_id: &str) -> Option<Result<String, String>> {
    let json = raw_json(ev.raw());
    if json["event_id"] != event_id {
        return None;
    }
    if ev.encryption_info().is_none() {
        return Some(Err(format!("event is not decrypted: {json}")));
    }
    match message_body(&json) {
        Some(b) => Some(Ok(b.to_owned())),
        None => Some(Err(format!(
            "decrypted event is not an m.room.message: {json}"
        ))),
    }
}

/// Syncs `client` until the event `event_id` shows up in `room_id`'s timeline *decrypted*,
/// returning its body. An `m.room.encrypted` event that stays undecryptable keeps the loop
/// going (a late room key may still arrive) until the timeout fails the test.
pub(crate) async fn sync_until_decrypted(
    client: &Client,
    who: &str,
    room_id: &RoomId,
    event_id: &str,
) -> String {
    let mut last_err = String::from("event not received yet");
    let what = format!("{who} decrypts {event_id}");
    let res = tokio::time::timeout(Duration::from_secs(45), async {
        loop {
            let resp = client
                .sync_once(
                    matrix_sdk::config::SyncSettings::default().timeout(Duration::from_millis(500)),
                )
                .await
                .unwrap_or_else(|e| panic!("sync failed while waiting for {what}: {e:?}"));
            if let Some(room) = resp.rooms.joined.get(room_id) {
                for ev in &room.timeline.events {
                    match decrypted_body(ev, event_id) {
                        Some(Ok(body)) => return body,
                        Some(Err(e)) => last_err = e,
                        None => {}
                    }
                }
            }
            // The event may have arrived earlier (undecryptable); look it up again now that
            // more keys may have arrived.
            if last_err != "event not received yet" {
                if let Some(room) = client.get_room(room_id) {
                    let eid = matrix_sdk::ruma::EventId::parse(event_id).unwrap();
                    if let Ok(ev) = room.load_or_fetch_event(&eid, None).await {
                        if let Some(Ok(body)) = decrypted_body(&ev, event_id) {
                            return body;
                        }
                    }
                }
            }
        }
    })
    .await;
    match res {
        Ok(body) => body,
        Err(_) => panic!("timed out after 45s: {what}; last state: {last_err}"),
    }
}

fn password_auth(user: &str, session: Option<String>) -> AuthData {
    let mut password = uiaa::Password::new(
        uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new(user.to_owned())),
        PASSWORD.to_owned(),
    );
    password.session = session;
    AuthData::Password(password)
}

/// `bootstrap_cross_signing` with the UIA password flow handled: the first attempt goes
/// without auth; if the server answers with a UIA 401 (it may skip UIA for a user's *first*
/// cross-signing keys, MSC3967) it must offer `m.login.password`, and the retry with the
/// password must succeed. Returns whether UIA was required.
async fn bootstrap_cross_signing(client: &Client, user: &str) -> bool {
    let err = match client.encryption().bootstrap_cross_signing(None).await {
        Ok(()) => return false,
        Err(e) => e,
    };
    let uiaa = err.as_uiaa_response().unwrap_or_else(|| {
        panic!("cross-signing bootstrap failed without a UIA response: {err:?}")
    });
    assert!(
        uiaa.flows
            .iter()
            .any(|f| f.stages.iter().any(|s| s.as_str() == "m.login.password")),
        "UIA for device_signing/upload must offer m.login.password: {:?}",
        uiaa.flows
    );
    client
        .encryption()
        .bootstrap_cross_signing(Some(password_auth(user, uiaa.session.clone())))
        .await
        .unwrap_or_else(|e| panic!("cross-signing bootstrap with password failed: {e:?}"));
    true
}

/// The master key of `user` as `/keys/query` reports it.
async fn master_key(server: &TestServer, token: &str, user: &str) -> Value {
    let q = server
        .http()
        .post_json(
            "/_matrix/client/v3/keys/query",
            Some(token),
            &json!({"device_keys": {user: []}}),
        )
        .await
        .ok();
    q["master_keys"][user]["keys"].clone()
}

async fn create_encrypted_dm(alice: &Client, bob: &Client, bob_devices: &[&Client]) -> OwnedRoomId {
    // A private room (no preset given → private_chat): Handover encrypts these by default.
    let mut req = CreateRoomRequest::new();
    req.name = Some("secret".to_owned());
    let room = alice.create_room(req).await.expect("create room");
    let room_id = room.room_id().to_owned();
    assert!(
        room.latest_encryption_state()
            .await
            .expect("encryption state")
            .is_encrypted(),
        "a private room must be encrypted by default"
    );
    room.invite_user_by_id(user_id!("@bob:localhost"))
        .await
        .expect("invite bob");
    sync_until(bob, 30, "bob sees the invite", |r| {
        invited_rooms(r).contains(&room_id).then_some(())
    })
    .await;
    bob.get_room(&room_id)
        .expect("invited room")
        .join()
        .await
        .expect("bob joins");
    for (i, dev) in bob_devices.iter().enumerate() {
        sync_until(
            dev,
            30,
            &format!("bob device {i} sees the joined room"),
            |r| r.rooms.joined.contains_key(&room_id).then_some(()),
        )
        .await;
    }
    sync_until(alice, 30, "alice sees bob's join", |r| {
        timeline(r, &room_id)
            .iter()
            .any(|e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == "@bob:localhost"
                    && e["content"]["membership"] == "join"
            })
            .then_some(())
    })
    .await;
    room_id
}

async fn send_text(client: &Client, room_id: &RoomId, body: &str) -> String {
    let room = client.get_room(room_id).expect("room");
    let sent = room
        .send(RoomMessageEventContent::text_plain(body))
        .await
        .unwrap_or_else(|e| panic!("sending {body:?} failed: {e:?}"));
    sent.response.event_id.to_string()
}

/// Reads the stored event over raw HTTP and checks it is really encrypted on the server.
async fn assert_stored_encrypted(
    server: &TestServer,
    token: &str,
    room_id: &RoomId,
    event_id: &str,
) {
    let ev = server
        .http()
        .get(
            &format!(
                "/_matrix/client/v3/rooms/{}/event/{}",
                enc(room_id.as_str()),
                enc(event_id)
            ),
            Some(token),
        )
        .await
        .ok();
    assert_eq!(ev["type"], "m.room.encrypted", "server copy: {ev}");
    assert_eq!(
        ev["content"]["algorithm"], "m.megolm.v1.aes-sha2",
        "server copy: {ev}"
    );
    assert!(
        ev["content"].get("body").is_none(),
        "no plaintext on the server: {ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_message_decrypts_on_both_of_bobs_devices() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob1 = server.register("bob").await;
        let bob2 = server.login("bob", PASSWORD).await;
        assert_ne!(bob1.device_id(), bob2.device_id());

        // Initial syncs upload device keys and one-time keys.
        for (c, who) in [(&alice, "alice"), (&bob1, "bob1"), (&bob2, "bob2")] {
            sync_until(c, 30, &format!("{who} initial sync"), |_| Some(())).await;
        }
        // Both of bob's devices (with uploaded device keys) are visible through /keys/query.
        let q = server
            .http()
            .post_json(
                "/_matrix/client/v3/keys/query",
                alice.access_token().as_deref(),
                &json!({"device_keys": {"@bob:localhost": []}}),
            )
            .await
            .ok();
        let mut ids: Vec<String> = q["device_keys"]["@bob:localhost"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        let mut want = vec![
            bob1.device_id().unwrap().to_string(),
            bob2.device_id().unwrap().to_string(),
        ];
        want.sort();
        assert_eq!(ids, want, "keys/query must list both of bob's devices: {q}");

        let room_id = create_encrypted_dm(&alice, &bob1, &[&bob1, &bob2]).await;

        let event_id = send_text(&alice, &room_id, "top secret hello").await;
        assert_stored_encrypted(
            &server,
            alice.access_token().as_deref().unwrap(),
            &room_id,
            &event_id,
        )
        .await;

        let b1 = sync_until_decrypted(&bob1, "bob device 1", &room_id, &event_id).await;
        assert_eq!(b1, "top secret hello");
        let b2 = sync_until_decrypted(&bob2, "bob device 2", &room_id, &event_id).await;
        assert_eq!(b2, "top secret hello");

        // And back: bob (device 2, which never joined itself) replies; alice decrypts.
        let reply = send_text(&bob2, &room_id, "secret reply").await;
        let a = sync_until_decrypted(&alice, "alice", &room_id, &reply).await;
        assert_eq!(a, "secret reply");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_signing_bootstrap_with_password_uia() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        sync_until(&alice, 30, "alice initial sync", |_| Some(())).await;

        bootstrap_cross_signing(&alice, "alice").await;

        let status = alice
            .encryption()
            .cross_signing_status()
            .await
            .expect("cross-signing status");
        assert!(
            status.has_master && status.has_self_signing && status.has_user_signing,
            "alice must hold all three private cross-signing keys: {status:?}"
        );
        // Alice's own device is signed by her new self-signing key (signature upload), as
        // /keys/query shows it.
        let q = server
            .http()
            .post_json(
                "/_matrix/client/v3/keys/query",
                alice.access_token().as_deref(),
                &json!({"device_keys": {"@alice:localhost": []}}),
            )
            .await
            .ok();
        let ssk_ids: Vec<String> = q["self_signing_keys"]["@alice:localhost"]["keys"]
            .as_object()
            .unwrap_or_else(|| panic!("keys/query lacks alice's self-signing key: {q}"))
            .keys()
            .cloned()
            .collect();
        let dev = alice.device_id().unwrap().to_string();
        let sigs = &q["device_keys"]["@alice:localhost"][&dev]["signatures"]["@alice:localhost"];
        assert!(
            ssk_ids.iter().any(|k| sigs.get(k).is_some()),
            "alice's device keys must carry a signature by her self-signing key {ssk_ids:?}: {q}"
        );

        // Another user sees alice's cross-signing identity via /keys/query.
        sync_until(&bob, 30, "bob initial sync", |_| Some(())).await;
        let identity = bob
            .encryption()
            .request_user_identity(user_id!("@alice:localhost"))
            .await
            .expect("bob queries alice's identity")
            .expect("alice has a cross-signing identity on the server");
        let alice_dev = bob
            .encryption()
            .get_device(user_id!("@alice:localhost"), alice.device_id().unwrap())
            .await
            .expect("device query")
            .expect("alice's device known to bob");
        assert!(
            alice_dev.is_cross_signed_by_owner(),
            "bob must see alice's device signed by her identity ({:?})",
            identity.user_id()
        );

        // Replacing existing cross-signing keys (identity reset) must require UIA with the
        // password; matrix-sdk surfaces it as a reset handle.
        let alice_token = alice.access_token().unwrap();
        let before = master_key(&server, &alice_token, "@alice:localhost").await;
        assert!(before.is_object(), "alice's master key published: {before}");
        let handle = alice
            .encryption()
            .reset_cross_signing()
            .await
            .expect("reset cross-signing")
            .expect("replacing an existing master key must require user-interactive auth");
        let session = match handle.auth_type() {
            CrossSigningResetAuthType::Uiaa(info) => {
                assert!(
                    info.flows
                        .iter()
                        .any(|f| f.stages.iter().any(|s| s.as_str() == "m.login.password")),
                    "UIA must offer m.login.password: {:?}",
                    info.flows
                );
                info.session.clone()
            }
            other => panic!("expected UIA, got {other:?}"),
        };
        handle
            .auth(Some(password_auth("alice", session)))
            .await
            .unwrap_or_else(|e| panic!("cross-signing reset with password failed: {e:?}"));
        let after = master_key(&server, &alice_token, "@alice:localhost").await;
        assert!(
            after.is_object(),
            "alice's new master key published: {after}"
        );
        assert_ne!(before, after, "the reset must replace alice's master key");

        // Raw: the master key from /keys/query.
        let q = server
            .http()
            .post_json(
                "/_matrix/client/v3/keys/query",
                bob.access_token().as_deref(),
                &json!({"device_keys": {"@alice:localhost": []}}),
            )
            .await
            .ok();
        assert!(
            q["master_keys"]["@alice:localhost"]["keys"].is_object(),
            "keys/query must return alice's master key: {q}"
        );
        assert!(
            q["self_signing_keys"]["@alice:localhost"]["keys"].is_object(),
            "keys/query must return alice's self-signing key: {q}"
        );
        assert!(
            q["user_signing_keys"].get("@alice:localhost").is_none(),
            "another user must not get alice's user-signing key: {q}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_backup_round_trip_lets_a_new_device_read_history() {
    with_timeout(300, async {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob1 = server.register("bob").await;
        for (c, who) in [(&alice, "alice"), (&bob1, "bob1")] {
            sync_until(c, 30, &format!("{who} initial sync"), |_| Some(())).await;
        }
        let room_id = create_encrypted_dm(&alice, &bob1, &[&bob1]).await;

        // One message before the backup exists: its key must be backed up by `enable`.
        let mut sent = vec![];
        let first = send_text(&alice, &room_id, "history 0").await;
        assert_eq!(
            sync_until_decrypted(&bob1, "bob1", &room_id, &first).await,
            "history 0"
        );
        sent.push((first, "history 0".to_owned()));

        // Bob bootstraps cross-signing (UIA) and enables recovery: secret storage + key backup.
        bootstrap_cross_signing(&bob1, "bob").await;
        let recovery_key = within(
            60,
            "bob enables recovery (secret storage + backup)",
            bob1.encryption().recovery().enable().wait_for_backups_to_upload().into_future(),
        )
        .await
        .unwrap_or_else(|e| panic!("enabling recovery failed: {e:?}"));
        assert_eq!(bob1.encryption().backups().state(), BackupState::Enabled);
        assert!(
            bob1.encryption()
                .backups()
                .fetch_exists_on_server()
                .await
                .expect("backup exists query"),
            "a key backup version must exist on the server"
        );

        // More messages after the backup is enabled.
        for i in 1..=3 {
            let body = format!("history {i}");
            let eid = send_text(&alice, &room_id, &body).await;
            assert_eq!(
                sync_until_decrypted(&bob1, "bob1", &room_id, &eid).await,
                body
            );
            sent.push((eid, body));
        }
        within(
            60,
            "bob1 uploads room keys to the backup",
            bob1.encryption().backups().wait_for_steady_state().into_future(),
        )
        .await
        .unwrap_or_else(|e| panic!("backup upload failed: {e:?}"));

        // The server holds backed-up sessions for the room.
        let http = server.http();
        let token1 = bob1.access_token().unwrap();
        let version = http
            .get("/_matrix/client/v3/room_keys/version", Some(&token1))
            .await
            .ok();
        let version = version["version"].as_str().expect("backup version").to_owned();
        let keys = within(30, "backed-up sessions appear on the server", async {
            loop {
                let k = http
                    .get(
                        &format!(
                            "/_matrix/client/v3/room_keys/keys/{}?version={}",
                            enc(room_id.as_str()),
                            enc(&version)
                        ),
                        Some(&token1),
                    )
                    .await
                    .ok();
                if k["sessions"].as_object().is_some_and(|s| !s.is_empty()) {
                    return k;
                }
                let _ = bob1.encryption().backups().wait_for_steady_state().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
        .await;
        let session: &Value = keys["sessions"].as_object().unwrap().values().next().unwrap();
        assert!(
            session["session_data"]["ciphertext"].is_string()
                && session["session_data"]["ephemeral"].is_string(),
            "backed-up session must be encrypted (m.megolm_backup.v1.curve25519-aes-sha2): {session}"
        );

        // A brand-new device for bob: it has no room keys for the old messages ...
        let bob3 = server.login("bob", PASSWORD).await;
        sync_until(&bob3, 30, "bob3 initial sync", |r| {
            r.rooms.joined.contains_key(&room_id).then_some(())
        })
        .await;
        let room3 = bob3.get_room(&room_id).expect("bob3 knows the room");
        let mut opts = MessagesOptions::backward();
        opts.limit = uint!(50);
        let before = room3.messages(opts).await.expect("messages before recovery");
        for (eid, _) in &sent {
            let ev = before
                .chunk
                .iter()
                .find(|e| raw_json(e.raw())["event_id"] == eid.as_str())
                .unwrap_or_else(|| panic!("bob3's /messages lacks {eid}"));
            assert!(
                ev.encryption_info().is_none(),
                "bob3 must not be able to decrypt {eid} before restoring the backup"
            );
        }

        // ... restores from the backup with the recovery key and reads the old history.
        within(60, "bob3 recovers with the recovery key", bob3.encryption().recovery().recover(&recovery_key))
            .await
            .unwrap_or_else(|e| panic!("recover failed: {e:?}"));
        within(
            30,
            "bob3's backups become enabled",
            async {
                while bob3.encryption().backups().state() != BackupState::Enabled {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        )
        .await;
        within(
            60,
            "bob3 downloads the room's keys from the backup",
            bob3.encryption().backups().download_room_keys_for_room(&room_id),
        )
        .await
        .unwrap_or_else(|e| panic!("downloading room keys failed: {e:?}"));

        let mut opts = MessagesOptions::backward();
        opts.limit = uint!(50);
        let after = room3.messages(opts).await.expect("messages after recovery");
        for (eid, body) in &sent {
            let ev = after
                .chunk
                .iter()
                .find(|e| raw_json(e.raw())["event_id"] == eid.as_str())
                .unwrap_or_else(|| panic!("bob3's /messages lacks {eid}"));
            match decrypted_body(ev, eid) {
                Some(Ok(b)) => assert_eq!(&b, body),
                other => panic!("bob3 could not read {eid} after restoring the backup: {other:?}"),
            }
        }
    })
    .await;
}
