//! Governance rules through the real binary (docs/GOVERNANCE.md): the NHS number guard, the
//! irreversible encryption, invite rules, patient-context rooms and the display name lock. Each
//! refusal must reach the client as the spec's error with a message naming the rule.

use handover_e2e::*;
use serde_json::Value;

const NHS_NUMBER: &str = "943 476 5919"; // valid modulus-11 check digit
const NOT_NHS_NUMBER: &str = "943 476 5918"; // wrong check digit: an ordinary number

fn state_path(room: &str, kind: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/state/{kind}/", enc(room))
}

async fn send_text(http: &Http, token: &str, room: &str, txn: &str, content: &Value) -> Resp {
    http.put_json(
        &format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            enc(room)
        ),
        Some(token),
        content,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nhs_numbers_are_refused_in_unencrypted_metadata() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, token) = http.register("alice", PASSWORD).await;

        // At creation: the name is initial state.
        let r = http
            .post_json(
                "/_matrix/client/v3/createRoom",
                Some(&token),
                &json!({ "name": format!("Bed 4 {NHS_NUMBER}") }),
            )
            .await;
        r.assert_rule(403, "M_FORBIDDEN", "nhs_number_in_metadata");
        assert!(!r.text().contains("9434765919") && !r.text().contains(NHS_NUMBER));

        let room = http
            .create_room(&token, &json!({ "name": "Ward 7 handover" }))
            .await;
        for (kind, content) in [
            ("m.room.name", json!({ "name": format!("Pt {NHS_NUMBER}") })),
            ("m.room.topic", json!({ "topic": "NHS 9434765919" })),
            (
                "m.room.topic",
                json!({ "topic": "x", "m.topic": { "m.text": [{ "body": "943-476-5919" }] } }),
            ),
        ] {
            http.put_json(&state_path(&room, kind), Some(&token), &content)
                .await
                .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_metadata");
        }
        let profile = format!("/_matrix/client/v3/profile/{}/displayname", enc(&alice));
        http.put_json(
            &profile,
            Some(&token),
            &json!({ "displayname": format!("Dr A {NHS_NUMBER}") }),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_metadata");

        // A number failing the check digit is not an NHS number; message bodies are allowed
        // by default (identifying the patient is often necessary in clinical conversation).
        http.put_json(
            &state_path(&room, "m.room.topic"),
            Some(&token),
            &json!({ "topic": NOT_NHS_NUMBER }),
        )
        .await
        .ok();
        send_text(
            &http,
            &token,
            &room,
            "t1",
            &json!({ "msgtype": "m.text", "body": NHS_NUMBER }),
        )
        .await
        .ok();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nhs_numbers_in_unencrypted_messages_and_their_edits_when_configured() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            extra_toml: "[policy]\nrules = \"nhs\"\nnhs_number_in_messages = true\n".into(),
            ..ServerOptions::default()
        })
        .await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let room = http.create_room(&token, &json!({ "preset": "public_chat" })).await;
        send_text(&http, &token, &room, "m1", &json!({ "msgtype": "m.text", "body": format!("NHS {NHS_NUMBER}") }))
            .await
            .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_message");
        let ok = send_text(&http, &token, &room, "m2", &json!({ "msgtype": "m.text", "body": "typo" })).await;
        let original = ok.ok()["event_id"].as_str().unwrap().to_owned();
        // An edit shows its m.new_content: a number there is caught behind an innocent fallback.
        let edit = json!({
            "msgtype": "m.text", "body": "* fixed",
            "m.new_content": { "msgtype": "m.text", "body": format!("pt {NHS_NUMBER}") },
            "m.relates_to": { "rel_type": "m.replace", "event_id": original },
        });
        send_text(&http, &token, &room, "m3", &edit)
            .await
            .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_message");
        // The server cannot read encrypted events: never checked.
        http.put_json(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.encrypted/m4", enc(&room)),
            Some(&token),
            &json!({ "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "9434765919", "sender_key": "k", "session_id": "s", "device_id": "D" }),
        )
        .await
        .ok();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_cannot_be_removed_or_changed() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        // Private rooms start encrypted (rooms.encrypt_by_default).
        let room = http.create_room(&token, &json!({})).await;
        let enc_state = http
            .get(&state_path(&room, "m.room.encryption"), Some(&token))
            .await;
        assert_eq!(enc_state.ok()["algorithm"], "m.megolm.v1.aes-sha2");
        for content in [
            json!({}),
            json!({ "algorithm": "m.olm.v1.curve25519-aes-sha2" }),
        ] {
            http.put_json(
                &state_path(&room, "m.room.encryption"),
                Some(&token),
                &content,
            )
            .await
            .assert_rule(403, "M_FORBIDDEN", "encryption_irreversible");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_stay_inside_the_organisation_and_honour_the_invitees_config() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, a) = http.register("alice", PASSWORD).await;
        let (bob, b) = http.register("bob", PASSWORD).await;
        let (_, c) = http.register("carol", PASSWORD).await;
        let room = http.create_room(&a, &json!({})).await;
        let invite = |token: String, user: String, room: String| {
            let http = http.clone();
            async move {
                http.post_json(
                    &format!("/_matrix/client/v3/rooms/{}/invite", enc(&room)),
                    Some(&token),
                    &json!({ "user_id": user }),
                )
                .await
            }
        };
        // Outside the organisation (no `[invites] allowed_servers`): refused before any contact.
        invite(
            a.clone(),
            "@dr.who:gp-practice.example".into(),
            room.clone(),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "invite_outside_organisation");
        let r = http
            .post_json(
                "/_matrix/client/v3/createRoom",
                Some(&a),
                &json!({ "invite": ["@dr.who:gp-practice.example"] }),
            )
            .await;
        r.assert_rule(403, "M_FORBIDDEN", "invite_outside_organisation");

        // Bob accepts invites only from Carol (MSC4155 invite permission config).
        http.put_json(
            &format!(
                "/_matrix/client/v3/user/{}/account_data/m.invite_permission_config",
                enc(&bob)
            ),
            Some(&b),
            &json!({ "default_action": "block", "allowed_users": ["@carol:localhost"] }),
        )
        .await
        .ok();
        invite(a.clone(), bob.clone(), room.clone())
            .await
            .assert_rule(403, "M_INVITE_BLOCKED", "invite_blocked_by_invitee");
        let carols = http.create_room(&c, &json!({})).await;
        invite(c.clone(), bob.clone(), carols).await.ok();
        // Alice's invite of Carol (no config) goes through.
        invite(a.clone(), "@carol:localhost".into(), room.clone())
            .await
            .ok();
        let _ = alice;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_context_rooms_stay_private() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let patient = json!({ "org.handover.context": "patient" });
        for body in [
            json!({ "creation_content": patient, "preset": "public_chat" }),
            json!({ "creation_content": patient, "initial_state": [
                { "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "shared" } }
            ] }),
        ] {
            http.post_json("/_matrix/client/v3/createRoom", Some(&token), &body)
                .await
                .assert_rule(403, "M_FORBIDDEN", "patient_context_room");
        }
        let room = http
            .create_room(&token, &json!({ "creation_content": patient, "visibility": "public" }))
            .await;
        let get = |kind: &'static str| {
            let (http, path, token) = (http.clone(), state_path(&room, kind), token.clone());
            async move { http.get(&path, Some(&token)).await.ok() }
        };
        assert_eq!(get("m.room.join_rules").await["join_rule"], "invite");
        assert_eq!(get("m.room.history_visibility").await["history_visibility"], "joined");
        assert_eq!(get("m.room.guest_access").await["guest_access"], "forbidden");
        assert_eq!(get("m.room.encryption").await["algorithm"], "m.megolm.v1.aes-sha2");
        // Never published, whatever the request said; and not later either.
        let vis = http
            .get(&format!("/_matrix/client/v3/directory/list/room/{}", enc(&room)), None)
            .await;
        assert_eq!(vis.ok()["visibility"], "private");
        http.put_json(
            &format!("/_matrix/client/v3/directory/list/room/{}", enc(&room)),
            Some(&token),
            &json!({ "visibility": "public" }),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "patient_context_room");
        http.put_json(&state_path(&room, "m.room.join_rules"), Some(&token), &json!({ "join_rule": "public" }))
            .await
            .assert_rule(403, "M_FORBIDDEN", "patient_context_room");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_are_set_by_admins_when_locked() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            extra_toml: "[policy]\nrules = \"nhs\"\nnhs_number_in_messages = false\nlock_display_names = true\n".into(),
            ..ServerOptions::default()
        })
        .await;
        let out = server
            .cli(&["admin", "create-user", "--username", "asmith", "--password", PASSWORD, "--displayname", "Dr A Smith"])
            .await;
        assert!(out.status.success(), "{out:?}");
        let http = server.http();
        let token = http.login("asmith", PASSWORD).await;
        let path = format!("/_matrix/client/v3/profile/{}/displayname", enc("@asmith:localhost"));
        assert_eq!(http.get(&path, None).await.ok()["displayname"], "Dr A Smith");
        http.put_json(&path, Some(&token), &json!({ "displayname": "Alice" }))
            .await
            .assert_rule(403, "M_FORBIDDEN", "display_name_locked");
        assert_eq!(http.get(&path, None).await.ok()["displayname"], "Dr A Smith");
        // Clients learn it before trying: the capabilities say the name is not theirs to set,
        // the avatar is.
        let caps = http.get("/_matrix/client/v3/capabilities", Some(&token)).await.ok();
        let caps = &caps["capabilities"];
        assert_eq!(caps["m.set_displayname"]["enabled"], false, "{caps}");
        assert_eq!(caps["m.profile_fields"]["allowed"], json!(["avatar_url"]), "{caps}");
        assert!(caps["m.set_avatar_url"].is_null() || caps["m.set_avatar_url"]["enabled"] == true, "{caps}");
    })
    .await;
}
