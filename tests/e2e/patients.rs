//! Patient accounts (issue 10): a patient from the organisation's patient provider (npm
//! `oidc-provider` as NHS login, `account_kind = "patient"`) or made by an admin
//! (`handover admin create-user --patient`) joins only rooms staff invited them to, creates no
//! room, invites nobody, sees only room-mates, and stays out of the public room directory. Each
//! refusal names its rule and is audited.

use handover_e2e::oidc::{audit_records, legacy_sso, login_token_of, start_with_provider};
use handover_e2e::{PASSWORD, enc, json};
use serde_json::Value;

const CLIENT_PAGE: &str = "http://127.0.0.1/sso-done";

fn users() -> Value {
    json!({
        "pat": {"password": "pw", "sub": "nhs-login-9990001", "acr": "aal1",
                "claims": {"name": "Pat Patient", "preferred_username": "pat"}},
    })
}

const TOML: &str = r#"
[identity]
sso_redirect_allowlist = ["http://127.0.0.1/sso-done"]

[[identity.providers]]
id = "nhslogin"
name = "NHS login"
issuer = "{issuer}"
client_id = "handover"
client_secret = "s3cret"
account_kind = "patient"
"#;

#[tokio::test]
async fn patient_accounts_are_confined_to_the_rooms_staff_invite_them_to() {
    let (_op, server) = start_with_provider(users(), TOML).await;
    let http = server.http();
    let (doc, doc_token) = http.register("drjones", PASSWORD).await;
    let (other, _) = http.register("drsmith", PASSWORD).await;

    // The patient signs in through the patient provider (legacy SSO) and is provisioned.
    let back = legacy_sso(&server, "nhslogin", "pat", CLIENT_PAGE)
        .await
        .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
    let body = http
        .post_json(
            "/_matrix/client/v3/login",
            None,
            &json!({"type": "m.login.token", "token": login_token_of(&back)}),
        )
        .await
        .ok();
    assert_eq!(body["user_id"], "@pat:localhost");
    let pat = body["access_token"].as_str().unwrap().to_owned();
    let pat_t = Some(pat.as_str());

    // No rooms of their own.
    http.post_json("/_matrix/client/v3/createRoom", pat_t, &json!({}))
        .await
        .assert_rule(403, "M_FORBIDDEN", "patient_cannot_create_room");

    // A staff member's invite lets them in.
    let ward = http
        .create_room(
            &doc_token,
            &json!({"preset": "private_chat", "name": "Clinic"}),
        )
        .await;
    let invite = |room: &str, user: &str, token: &str| {
        let path = format!("/_matrix/client/v3/rooms/{}/invite", enc(room));
        let (http, body, token) = (http.clone(), json!({"user_id": user}), token.to_owned());
        async move { http.post_json(&path, Some(&token), &body).await }
    };
    invite(&ward, "@pat:localhost", &doc_token).await.ok();
    let join = |room: &str| format!("/_matrix/client/v3/join/{}", enc(room));
    http.post_json(&join(&ward), pat_t, &json!({})).await.ok();

    // A room nobody invited them to, even a public one: refused.
    let public = http
        .create_room(
            &doc_token,
            &json!({"preset": "public_chat", "name": "Open"}),
        )
        .await;
    http.post_json(&join(&public), pat_t, &json!({}))
        .await
        .assert_rule(403, "M_FORBIDDEN", "patient_join_needs_staff_invite");

    // They invite nobody.
    invite(&ward, other.as_str(), &pat).await.assert_rule(
        403,
        "M_FORBIDDEN",
        "patient_cannot_invite",
    );

    // Directory and profiles: room-mates only.
    let found = http
        .post_json(
            "/_matrix/client/v3/user_directory/search",
            pat_t,
            &json!({"search_term": "dr"}),
        )
        .await
        .ok();
    let ids: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![doc.as_str()]);
    let profile = |u: &str| format!("/_matrix/client/v3/profile/{}", enc(u));
    http.get(&profile(&doc), pat_t).await.ok();
    http.get(&profile(&other), pat_t).await.assert_rule(
        403,
        "M_FORBIDDEN",
        "patient_profile_confined",
    );
    // Staff are not confined.
    http.get(&profile(&other), Some(&doc_token)).await.ok();

    // No public room directory, neither reading nor publishing.
    http.get("/_matrix/client/v3/publicRooms", pat_t)
        .await
        .assert_rule(403, "M_FORBIDDEN", "patient_no_public_directory");
    http.put_json(
        &format!("/_matrix/client/v3/directory/list/room/{}", enc(&ward)),
        pat_t,
        &json!({"visibility": "public"}),
    )
    .await
    .assert_rule(403, "M_FORBIDDEN", "patient_no_public_directory");
    http.get("/_matrix/client/v3/publicRooms", Some(&doc_token))
        .await
        .ok();

    // An admin-made patient is confined the same way.
    let out = server
        .cli(&[
            "admin",
            "create-user",
            "--username",
            "pat2",
            "--password",
            PASSWORD,
            "--patient",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    let pat2 = http.login("pat2", PASSWORD).await;
    http.post_json("/_matrix/client/v3/createRoom", Some(&pat2), &json!({}))
        .await
        .assert_rule(403, "M_FORBIDDEN", "patient_cannot_create_room");

    // Every refusal is in the audit trail with its rule.
    let trail = audit_records(&server).await;
    for rule in [
        "patient_cannot_create_room",
        "patient_join_needs_staff_invite",
        "patient_cannot_invite",
        "patient_profile_confined",
        "patient_no_public_directory",
    ] {
        assert!(
            trail
                .iter()
                .any(|r| r["action"] == "policy.denial" && r["rule"] == rule),
            "no audit entry for {rule}"
        );
    }
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "account.kind" && r["target"] == "@pat2:localhost")
    );
}
