//! The OAuth 2.0 device authorization grant (RFC 8628, MSC4341): a device asks for a grant, the
//! user enters its code on Handover's page in a browser, signs in at the real provider (npm
//! `oidc-provider`) and consents; the device's polls get the RFC's answers and then tokens that
//! matrix-sdk uses to sync and send.
//!
//! matrix-sdk 0.18 drives this grant only inside `login_with_qr_code` (MSC4108 rendezvous,
//! which Handover does not serve), so the grant's two requests are raw HTTP here, as a device
//! sends them; registration (with the device_code grant type) and everything after the tokens
//! is matrix-sdk.

use handover_e2e::oidc::{Browser, Page, input_value, link, provider_login, start_with_provider};
use handover_e2e::{TestServer, json, unencrypted_room};
use matrix_sdk::authentication::oauth::registration::{
    ApplicationType, ClientMetadata, Localized, OAuthGrantType,
};
use matrix_sdk::authentication::oauth::{OAuthSession, UserSession};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::{SessionMeta, SessionTokens};
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const SCOPE: &str = "urn:matrix:client:api:* urn:matrix:client:device:WARDTABLET1";

fn users() -> Value {
    json!({
        "alice": {"password": "pw", "sub": "sub-alice", "acr": "aal3",
                  "claims": {"name": "Alice Smith", "preferred_username": "alice"}},
    })
}

fn toml(lifetime: &str) -> String {
    format!(
        r#"
[identity]
password_login = true
device_code_lifetime = "{lifetime}"
device_poll_interval = "5s"

[[identity.providers]]
id = "cis2"
name = "NHS Care Identity"
issuer = "{{issuer}}"
client_id = "handover"
client_secret = "s3cret"
scopes = ["openid", "profile"]
"#
    )
}

/// Registers a device-grant client with matrix-sdk; its client id.
async fn register_device_client(server: &TestServer) -> String {
    let client = server.client().await;
    let mut meta = ClientMetadata::new(
        ApplicationType::Native,
        vec![OAuthGrantType::DeviceCode],
        Localized::new(url::Url::parse("https://tablet.example.org").unwrap(), None),
    );
    meta.client_name = Some(Localized::new("Ward tablet".to_owned(), None));
    let res = client
        .oauth()
        .register_client(&Raw::new(&meta).unwrap())
        .await
        .unwrap();
    res.client_id.as_str().to_owned()
}

async fn form(server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let res = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(s.finish())
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn device_authorization(server: &TestServer, client_id: &str, scope: &str) -> (u16, Value) {
    form(
        server,
        "/_handover/oauth/device_authorization",
        &[("client_id", client_id), ("scope", scope)],
    )
    .await
}

async fn poll(server: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    form(
        server,
        "/_handover/oauth/token",
        &[
            ("grant_type", GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
    )
    .await
}

fn error_of(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["error"].as_str().unwrap_or("<none>"))
}

/// From the verification page (with the code) through the provider to the consent page.
async fn approve_in_browser(b: &mut Browser, server: &TestServer, complete_uri: &str) -> Page {
    let chooser = b.get(complete_uri).await;
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    assert!(chooser.body.contains("Ward tablet"), "{}", chooser.body);
    let start = link(&chooser.body, "/_handover/identity/start/cis2").expect("provider button");
    let p = b.get(&format!("{}{start}", server.url())).await;
    let form = b.follow(p, "never").await;
    provider_login(b, form, "alice", "never").await
}

async fn decide(b: &mut Browser, server: &TestServer, consent: &Page, decision: &str) -> Page {
    let auth = input_value(&consent.body, "auth").unwrap();
    let csrf = input_value(&consent.body, "csrf").unwrap();
    let p = b
        .post(
            &format!("{}/_handover/oauth/consent", server.url()),
            &[("auth", &auth), ("csrf", &csrf), ("decision", decision)],
        )
        .await;
    b.follow(p, "never").await
}

#[tokio::test]
async fn device_grant_through_the_provider_then_matrix_sdk_syncs_and_sends() {
    let (_op, server) = start_with_provider(users(), &toml("10m")).await;
    let meta = server
        .http()
        .get("/_matrix/client/v1/auth_metadata", None)
        .await
        .ok();
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{}/_handover/oauth/device_authorization", server.url())
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT))
    );
    let client_id = register_device_client(&server).await;

    let (status, grant) = device_authorization(&server, &client_id, SCOPE).await;
    assert_eq!(status, 200, "{grant}");
    let device_code = grant["device_code"].as_str().unwrap().to_owned();
    let user_code = grant["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(
        grant["verification_uri"],
        format!("{}/_handover/oauth/device", server.url())
    );
    assert_eq!(grant["expires_in"], 600);
    assert_eq!(grant["interval"], 5);

    // Before the user approves: pending; polling again at once: slow down.
    let r = poll(&server, &client_id, &device_code).await;
    assert_eq!(error_of(&r), (400, "authorization_pending"), "{}", r.1);
    let r = poll(&server, &client_id, &device_code).await;
    assert_eq!(error_of(&r), (400, "slow_down"), "{}", r.1);

    // The user types the code (lower case, no dash) on the page, signs in, sees the same code
    // on the consent page and allows.
    let mut b = Browser::new();
    let typed = user_code.replace('-', "").to_lowercase();
    let complete = format!("{}/_handover/oauth/device?user_code={typed}", server.url());
    let consent = approve_in_browser(&mut b, &server, &complete).await;
    assert!(
        consent.body.contains("Allow access?")
            && consent.body.contains(&user_code)
            && consent.body.contains("WARDTABLET1")
            && consent.body.contains("@alice:localhost"),
        "{}",
        consent.body
    );
    let done = decide(&mut b, &server, &consent, "allow").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device signed in"), "{}", done.body);

    // The device's next poll gets the tokens; the code is single use.
    let (status, tokens) = poll(&server, &client_id, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let r = poll(&server, &client_id, &device_code).await;
    assert_eq!(error_of(&r), (400, "invalid_grant"));

    // matrix-sdk takes the session over: sync, create a room, send.
    let tablet = server.client().await;
    let session = OAuthSession {
        client_id: matrix_sdk::authentication::oauth::ClientId::new(client_id.clone()),
        user: UserSession {
            meta: SessionMeta {
                user_id: "@alice:localhost".try_into().unwrap(),
                device_id: "WARDTABLET1".into(),
            },
            tokens: SessionTokens {
                access_token: tokens["access_token"].as_str().unwrap().to_owned(),
                refresh_token: tokens["refresh_token"].as_str().map(str::to_owned),
            },
        },
    };
    tablet.restore_session(session).await.unwrap();
    let who = tablet.whoami().await.unwrap();
    assert_eq!(who.user_id.as_str(), "@alice:localhost");
    assert_eq!(who.device_id.unwrap().as_str(), "WARDTABLET1");
    let room = tablet.create_room(unencrypted_room()).await.unwrap();
    room.send(RoomMessageEventContent::text_plain("from the ward tablet"))
        .await
        .unwrap();
    tablet.sync_once(Default::default()).await.unwrap();
    // Its refresh token works like the code grant's.
    tablet.oauth().refresh_access_token().await.unwrap();
    assert_eq!(
        tablet.whoami().await.unwrap().user_id.as_str(),
        "@alice:localhost"
    );
}

#[tokio::test]
async fn device_grant_bad_input_gets_oauth_errors_and_creates_nothing() {
    let (_op, server) = start_with_provider(users(), &toml("10m")).await;
    let client_id = register_device_client(&server).await;
    let http = server.http();

    // Unknown client; a client registered without the device grant; bad scopes.
    let r = device_authorization(&server, "nobody", SCOPE).await;
    assert_eq!(error_of(&r), (401, "invalid_client"));
    let code_only: Value = reqwest::Client::new()
        .post(format!("{}/_handover/oauth/register", server.url()))
        .json(
            &json!({"client_uri": "https://app.example.org", "application_type": "native",
                      "redirect_uris": ["http://127.0.0.1/cb"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = device_authorization(&server, code_only["client_id"].as_str().unwrap(), SCOPE).await;
    assert_eq!(error_of(&r), (400, "unauthorized_client"));
    let r = device_authorization(&server, &client_id, "urn:matrix:client:api:*").await;
    assert_eq!(error_of(&r), (400, "invalid_scope"));
    let r = device_authorization(&server, &client_id, &format!("{SCOPE} made-up")).await;
    assert_eq!(error_of(&r), (400, "invalid_scope"));

    // Polls without a code, with a forged one, or as another client.
    let r = form(
        &server,
        "/_handover/oauth/token",
        &[("grant_type", GRANT), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(error_of(&r), (400, "invalid_request"));
    let r = poll(&server, &client_id, "forged").await;
    assert_eq!(error_of(&r), (400, "invalid_grant"));
    let (_, grant) = device_authorization(&server, &client_id, SCOPE).await;
    let device_code = grant["device_code"].as_str().unwrap();
    let other = register_device_client(&server).await;
    let r = poll(&server, &other, device_code).await;
    assert_eq!(error_of(&r), (400, "invalid_grant"));

    // A code nobody issued is a page asking again, not a sign-in.
    let mut b = Browser::new();
    let p = b
        .get(&format!(
            "{}/_handover/oauth/device?user_code=BCDF-GHJK",
            server.url()
        ))
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("not valid") && !p.body.contains("/_handover/identity/start"));

    // The user declines: the device is told access_denied, and no session exists.
    let consent = approve_in_browser(
        &mut b,
        &server,
        grant["verification_uri_complete"].as_str().unwrap(),
    )
    .await;
    let done = decide(&mut b, &server, &consent, "deny").await;
    assert!(done.body.contains("cancelled"), "{}", done.body);
    let r = poll(&server, &client_id, device_code).await;
    assert_eq!(error_of(&r), (400, "access_denied"));
    // A decided code cannot be approved afterwards.
    let p = b
        .get(grant["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(p.status, 400);
    // Alice's account exists (she signed in), but no session was made for the tablet.
    let out = server
        .admin_create_user("root", handover_e2e::PASSWORD, true)
        .await;
    assert!(out.status.success(), "{out:?}");
    let root = http.login("root", handover_e2e::PASSWORD).await;
    let devices = http
        .get(
            "/_synapse/admin/v2/users/@alice:localhost/devices",
            Some(&root),
        )
        .await
        .ok();
    assert_eq!(devices["total"], 0, "{devices}");
}

#[tokio::test]
async fn an_expired_device_code_is_expired_token_and_cannot_be_approved() {
    let (_op, server) = start_with_provider(users(), &toml("1s")).await;
    let client_id = register_device_client(&server).await;
    let (_, grant) = device_authorization(&server, &client_id, SCOPE).await;
    assert_eq!(grant["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let r = poll(&server, &client_id, grant["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&r), (400, "expired_token"));
    let mut b = Browser::new();
    let p = b
        .get(grant["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("not valid"), "{}", p.body);
}
