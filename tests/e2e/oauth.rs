//! OAuth 2.0 login (what Element X runs) through an upstream OpenID provider: matrix-sdk's
//! `Client::oauth()` against Handover as authorization server, the test playing the browser
//! through Handover's pages and the real provider's (npm `oidc-provider`) login form.

use handover_e2e::oidc::{Browser, OpenIdProvider, Page, form_action, input_value, link};
use handover_e2e::{ServerOptions, TestServer, json, unencrypted_room};
use matrix_sdk::authentication::oauth::ClientRegistrationData;
use matrix_sdk::authentication::oauth::registration::{
    ApplicationType, ClientMetadata, Localized, OAuthGrantType,
};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::serde::Raw;
use serde_json::Value;

/// The app's redirect URI: a native app's loopback address (never reached: the test stops
/// at the redirect and hands it to matrix-sdk).
const APP_REDIRECT: &str = "http://127.0.0.1/oauth-callback";

fn users(alice_email: &str) -> Value {
    json!({
        "alice": {"password": "pw", "sub": "sub-alice", "acr": "aal3",
                  "claims": {"name": "Alice Smith", "preferred_username": "Alice", "email": alice_email}},
        "weak": {"password": "pw", "sub": "sub-weak", "acr": "aal1",
                 "claims": {"name": "Weak", "preferred_username": "weak"}},
        "clash": {"password": "pw", "sub": "sub-clash", "acr": "aal3",
                  "claims": {"name": "Someone Else", "preferred_username": "taken"}},
    })
}

/// A provider and a Handover configured with it (`min_acr = "aal2"`).
async fn start() -> (OpenIdProvider, TestServer) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let op = OpenIdProvider::start(
        &format!("{base}/_handover/identity/callback"),
        users("alice@nhs.net"),
    )
    .await;
    let opts = ServerOptions {
        extra_toml: format!(
            r#"
[identity]
password_login = true

[[identity.providers]]
id = "cis2"
name = "NHS Care Identity"
issuer = "{issuer}"
client_id = "handover"
client_secret = "s3cret"
scopes = ["openid", "profile", "email"]
localpart_claim = "preferred_username"
displayname_claim = "name"
acr_values = ["aal1", "aal2", "aal3"]
min_acr = "aal2"
account_kind = "staff"
"#,
            issuer = op.issuer
        ),
        ..ServerOptions::default()
    };
    let dir = tempfile::Builder::new()
        .prefix("handover-e2e-")
        .tempdir()
        .unwrap();
    let toml = opts.to_toml(&dir.path().join("data")).replace(
        "client = \"127.0.0.1:0\"",
        &format!("client = \"127.0.0.1:{port}\""),
    );
    let config = dir.path().join("handover.toml");
    std::fs::write(&config, format!("public_baseurl = \"{base}\"\n{toml}")).unwrap();
    let server = TestServer::start_in(dir, config).await;
    (op, server)
}

/// From an authorization URL through the chooser, the provider's login form, back to
/// Handover: the page reached (consent, or a refusal).
async fn sign_in(b: &mut Browser, server: &TestServer, auth_url: &str, login: &str) -> Page {
    let chooser = b.get(auth_url).await;
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    let start = link(&chooser.body, "/_handover/identity/start/cis2").expect("provider button");
    let p = b.get(&format!("{}{start}", server.url())).await;
    let form = b.follow(p, APP_REDIRECT).await;
    assert!(
        form.body.contains("name=\"login\""),
        "provider login form: {}",
        form.body
    );
    let action = url::Url::parse(&form.url)
        .unwrap()
        .join(&form_action(&form.body).unwrap())
        .unwrap();
    let p = b
        .post(action.as_str(), &[("login", login), ("password", "pw")])
        .await;
    b.follow(p, APP_REDIRECT).await
}

/// Allows on the consent page: the redirect to the app.
async fn allow(b: &mut Browser, server: &TestServer, consent: &Page) -> String {
    assert!(consent.body.contains("Allow access?"), "{}", consent.body);
    let auth = input_value(&consent.body, "auth").unwrap();
    let csrf = input_value(&consent.body, "csrf").unwrap();
    let url = format!("{}/_handover/oauth/consent", server.url());
    let p = b
        .post(
            &url,
            &[("auth", &auth), ("csrf", &csrf), ("decision", "allow")],
        )
        .await;
    let to = p.location.expect("redirect to the app");
    assert!(to.starts_with(APP_REDIRECT), "{to}");
    to
}

fn registration() -> ClientRegistrationData {
    let redirect = url::Url::parse(APP_REDIRECT).unwrap();
    let mut meta = ClientMetadata::new(
        ApplicationType::Native,
        vec![OAuthGrantType::AuthorizationCode {
            redirect_uris: vec![redirect],
        }],
        Localized::new(url::Url::parse("https://app.example.org").unwrap(), None),
    );
    meta.client_name = Some(Localized::new("Handover e2e app".to_owned(), None));
    Raw::new(&meta).unwrap().into()
}

async fn whoami_status(server: &TestServer, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/_matrix/client/v3/account/whoami", server.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn matrix_sdk_oauth_login_through_provider_then_refresh_and_revoke() {
    let (op, server) = start().await;
    let client = server.client().await;
    let oauth = client.oauth();
    let redirect = url::Url::parse(APP_REDIRECT).unwrap();
    let data = oauth
        .login(redirect.clone(), None, Some(registration()), None)
        .build()
        .await
        .unwrap();
    let mut b = Browser::new();
    let consent = sign_in(&mut b, &server, data.url.as_str(), "alice").await;
    assert!(consent.body.contains("Handover e2e app") && consent.body.contains("@alice:localhost"));
    let back = allow(&mut b, &server, &consent).await;
    oauth
        .finish_login(url::Url::parse(&back).unwrap().into())
        .await
        .unwrap();
    assert_eq!(client.user_id().unwrap().as_str(), "@alice:localhost");
    assert_eq!(
        client
            .account()
            .get_display_name()
            .await
            .unwrap()
            .as_deref(),
        Some("Alice Smith")
    );

    // The OAuth access token is an ordinary one: create a room, send, sync.
    let room = client.create_room(unencrypted_room()).await.unwrap();
    room.send(RoomMessageEventContent::text_plain("hello from OAuth"))
        .await
        .unwrap();
    client.sync_once(Default::default()).await.unwrap();

    // Refresh rotates both tokens; the old access token stops working.
    let before = client.session_tokens().unwrap();
    oauth.refresh_access_token().await.unwrap();
    let after = client.session_tokens().unwrap();
    assert_ne!(before.access_token, after.access_token);
    assert_eq!(whoami_status(&server, &before.access_token).await, 401);
    assert_eq!(
        client.whoami().await.unwrap().user_id.as_str(),
        "@alice:localhost"
    );

    // Same subject, new email at the provider: the same account.
    op.set_users(users("alice.new@nhs.net"));
    let second = server.client().await;
    let mut b2 = Browser::new();
    let data = second
        .oauth()
        .login(redirect.clone(), None, Some(registration()), None)
        .build()
        .await
        .unwrap();
    let consent = sign_in(&mut b2, &server, data.url.as_str(), "alice").await;
    let back = allow(&mut b2, &server, &consent).await;
    second
        .oauth()
        .finish_login(url::Url::parse(&back).unwrap().into())
        .await
        .unwrap();
    assert_eq!(second.user_id().unwrap().as_str(), "@alice:localhost");
    assert_ne!(second.device_id(), client.device_id());

    // Reusing a spent refresh token revokes that whole session (theft), not the other one.
    let spent = before.refresh_token.unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/_handover/oauth/token", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={spent}&client_id={}",
            oauth.client_id().unwrap().as_str()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let current = client.session_tokens().unwrap().access_token;
    assert_eq!(whoami_status(&server, &current).await, 401);
    assert_eq!(
        second.whoami().await.unwrap().user_id.as_str(),
        "@alice:localhost"
    );

    // Revocation (RFC 7009) ends the second session. (matrix-sdk's `logout()` would do the
    // same but refuses a revocation endpoint that is not https, as this test server's is.)
    let token = second.session_tokens().unwrap().access_token;
    let res = reqwest::Client::new()
        .post(format!("{}/_handover/oauth/revoke", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={token}&client_id={}",
            second.oauth().client_id().unwrap().as_str()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(whoami_status(&server, &token).await, 401);
}

/// `S256(verifier)` as PKCE wants it.
fn challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(server: &TestServer, client_id: &str, redirect: &str, verifier: &str) -> String {
    let mut u = url::Url::parse(&format!("{}/_handover/oauth/authorize", server.url())).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair(
            "scope",
            "urn:matrix:client:api:* urn:matrix:client:device:RAWDEVICE1",
        )
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    u.to_string()
}

async fn token(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    let res = reqwest::Client::new()
        .post(format!("{}/_handover/oauth/token", server.url()))
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

async fn profile_status(server: &TestServer, user: &str) -> (u16, Value) {
    let res = reqwest::get(format!("{}/_matrix/client/v3/profile/{user}", server.url()))
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn bad_oauth_and_sign_in_input_gets_clear_errors_and_creates_nothing() {
    let (_op, server) = start().await;
    let http = reqwest::Client::new();
    let register = |body: Value| {
        http.post(format!("{}/_handover/oauth/register", server.url()))
            .json(&body)
            .send()
    };
    // A web client may not use a plain-http redirect URI.
    let res = register(json!({"client_uri": "https://app.example.org",
        "redirect_uris": ["http://app.example.org/cb"]}))
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_redirect_uri"
    );
    let res = register(
        json!({"client_uri": "https://app.example.org", "application_type": "native",
        "client_name": "raw", "redirect_uris": [APP_REDIRECT]}),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let client_id = res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // An unregistered redirect URI is a page, never a redirect.
    let mut b = Browser::new();
    let p = b
        .get(&authorize_url(
            &server,
            &client_id,
            "http://evil.example/cb",
            "v".repeat(43).as_str(),
        ))
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.location.is_none() && p.body.contains("redirect_uri"),
        "{}",
        p.body
    );
    // Without PKCE the app is answered with the OAuth error.
    let no_pkce = authorize_url(&server, &client_id, APP_REDIRECT, &"v".repeat(43))
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let p = b.get(&no_pkce).await;
    let to = p.location.unwrap();
    assert!(
        to.starts_with(APP_REDIRECT)
            && to.contains("error=invalid_request")
            && to.contains("state=st4te"),
        "{to}"
    );

    // Unknown provider id; a callback with a state nobody issued.
    let verifier = "a-verifier-that-is-long-enough-for-pkce-rules-0123456789";
    let chooser = b
        .get(&authorize_url(&server, &client_id, APP_REDIRECT, verifier))
        .await;
    let start = link(&chooser.body, "/_handover/identity/start/cis2").unwrap();
    let p = b
        .get(&format!(
            "{}{}",
            server.url(),
            start.replace("/cis2?", "/nope?")
        ))
        .await;
    assert_eq!(p.status, 404);
    assert!(p.body.contains("Unknown identity provider"));
    let p = b
        .get(&format!(
            "{}/_handover/identity/callback?state=forged&code=x",
            server.url()
        ))
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("wrong or reused state"), "{}", p.body);

    // Assurance too low: refused naming the rule, no account made.
    let mut b = Browser::new();
    let p = sign_in(
        &mut b,
        &server,
        &authorize_url(&server, &client_id, APP_REDIRECT, verifier),
        "weak",
    )
    .await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("identity_assurance_too_low"), "{}", p.body);
    assert_eq!(profile_status(&server, "@weak:localhost").await.0, 404);

    // A provider user whose name is taken by an existing account: refused, not merged.
    let taken = server.register("taken").await;
    let mut b = Browser::new();
    let p = sign_in(
        &mut b,
        &server,
        &authorize_url(&server, &client_id, APP_REDIRECT, verifier),
        "clash",
    )
    .await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("already exists"));
    let (_, prof) = profile_status(&server, "@taken:localhost").await;
    assert_eq!(prof["displayname"], "taken");
    assert!(taken.whoami().await.is_ok());

    // PKCE mismatch: refused, and the code is spent.
    let mut b = Browser::new();
    let consent = sign_in(
        &mut b,
        &server,
        &authorize_url(&server, &client_id, APP_REDIRECT, verifier),
        "alice",
    )
    .await;
    let back = allow(&mut b, &server, &consent).await;
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let exchange = |verifier: String, code: String| {
        let client_id = client_id.clone();
        let server = &server;
        async move {
            token(
                server,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", APP_REDIRECT),
                    ("client_id", &client_id),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange("x".repeat(50), code.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = exchange(verifier.to_owned(), code).await;
    assert_eq!(status, 400);

    // A code exchanged twice: the second is refused and the session it made is revoked.
    let mut b = Browser::new();
    let consent = sign_in(
        &mut b,
        &server,
        &authorize_url(&server, &client_id, APP_REDIRECT, verifier),
        "alice",
    )
    .await;
    let back = allow(&mut b, &server, &consent).await;
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let (status, body) = exchange(verifier.to_owned(), code.clone()).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami_status(&server, &access).await, 200);
    let (status, body) = exchange(verifier.to_owned(), code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(whoami_status(&server, &access).await, 401);
}
