//! Legacy SSO (`m.login.sso` + `m.login.token`) through a real OpenID provider (npm
//! `oidc-provider`), `/login/get_token`, the password form of Handover's OAuth sign-in page, and
//! `[identity] password_login = false`.

use handover_e2e::oidc::{
    Browser, audit_records, input_value, legacy_sso, login_token_of, start_with_provider,
};
use handover_e2e::{PASSWORD, json};
use serde_json::Value;

/// The legacy client's landing page (never reached: the test stops at the redirect).
const CLIENT_PAGE: &str = "http://127.0.0.1/sso-done";

fn users() -> Value {
    json!({
        "carol": {"password": "pw", "sub": "sub-carol", "acr": "aal3",
                  "claims": {"name": "Carol Jones", "preferred_username": "carol"}},
    })
}

fn provider_toml(password_login: bool, get_login_token: bool) -> String {
    format!(
        r#"
[identity]
password_login = {password_login}
get_login_token = {get_login_token}
sso_redirect_allowlist = ["{CLIENT_PAGE}"]

[[identity.providers]]
id = "cis2"
name = "NHS Care Identity"
issuer = "{{issuer}}"
client_id = "handover"
client_secret = "s3cret"
scopes = ["openid", "profile"]
acr_values = ["aal1", "aal2", "aal3"]
min_acr = "aal2"
"#
    )
}

fn token_login(token: &str) -> Value {
    json!({"type": "m.login.token", "token": token, "initial_device_display_name": "legacy"})
}

fn flow_types(flows: &Value) -> Vec<String> {
    flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn legacy_sso_login_token_single_use_get_token_and_password_form() {
    let (_op, server) = start_with_provider(users(), &provider_toml(true, true)).await;
    let http = server.http();

    // GET /login: password, SSO with the provider, token with get_login_token.
    let flows = http.get("/_matrix/client/v3/login", None).await.ok();
    assert_eq!(
        flow_types(&flows),
        vec!["m.login.password", "m.login.sso", "m.login.token"]
    );
    assert_eq!(flows["flows"][1]["identity_providers"][0]["id"], "cis2");
    assert_eq!(flows["flows"][2]["get_login_token"], true);

    // Redirect -> provider's form -> Handover's callback -> the client's page with a token.
    let back = legacy_sso(&server, "cis2", "carol", CLIENT_PAGE)
        .await
        .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
    let token = login_token_of(&back);
    let res = http
        .post_json("/_matrix/client/v3/login", None, &token_login(&token))
        .await;
    let body = res.ok();
    assert_eq!(body["user_id"], "@carol:localhost");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let who = http
        .get("/_matrix/client/v3/account/whoami", Some(&access))
        .await
        .ok();
    assert_eq!(who["user_id"], "@carol:localhost");
    let prof = http
        .get("/_matrix/client/v3/profile/@carol:localhost", None)
        .await
        .ok();
    assert_eq!(prof["displayname"], "Carol Jones");

    // Single use: the same token again is refused, and creates no session.
    http.post_json("/_matrix/client/v3/login", None, &token_login(&token))
        .await
        .assert_error(403, &["M_FORBIDDEN"]);
    // A token nobody issued.
    http.post_json("/_matrix/client/v3/login", None, &token_login("forged"))
        .await
        .assert_error(403, &["M_FORBIDDEN"]);
    // An unknown provider is a page, not a redirect.
    let mut b = Browser::new();
    let p = b
        .get(&format!(
            "{}/_matrix/client/v3/login/sso/redirect/nope?redirectUrl={}",
            server.url(),
            handover_e2e::enc(CLIENT_PAGE)
        ))
        .await;
    assert_eq!(p.status, 404);
    assert!(p.location.is_none());
    // A redirectUrl not on [identity] sso_redirect_allowlist: a page, no provider, no token.
    for evil in ["https://evil.example/sso-done", "http://127.0.0.1/other"] {
        let p = b
            .get(&format!(
                "{}/_matrix/client/v3/login/sso/redirect/cis2?redirectUrl={}",
                server.url(),
                handover_e2e::enc(evil)
            ))
            .await;
        assert_eq!(p.status, 400, "{evil}");
        assert!(
            p.location.is_none() && p.body.contains("App not allowed"),
            "{}",
            p.body
        );
    }
    // A loopback entry matches any port (desktop clients listen on a free one).
    let loopback = "http://127.0.0.1:45678/sso-done";
    let back = legacy_sso(&server, "cis2", "carol", loopback)
        .await
        .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
    assert!(back.starts_with(loopback), "{back}");

    // /login/get_token: UIA (password, asked every time), then a token another device uses.
    let (bob, bob_token) = http.register("bob", PASSWORD).await;
    let res = http
        .post_json(
            "/_matrix/client/v1/login/get_token",
            Some(&bob_token),
            &json!({}),
        )
        .await;
    assert_eq!(res.status, 401, "{}", res.text());
    let uia = res.json();
    assert_eq!(uia["flows"][0]["stages"][0], "m.login.password");
    let session = uia["session"].as_str().unwrap();
    let auth = |password: &str| {
        json!({"auth": {"type": "m.login.password", "session": session, "password": password,
               "identifier": {"type": "m.id.user", "user": "bob"}}})
    };
    let res = http
        .post_json(
            "/_matrix/client/v1/login/get_token",
            Some(&bob_token),
            &auth("wrong"),
        )
        .await;
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["errcode"], "M_FORBIDDEN");
    let res = http
        .post_json(
            "/_matrix/client/v1/login/get_token",
            Some(&bob_token),
            &auth(PASSWORD),
        )
        .await;
    let got = res.ok();
    assert_eq!(got["expires_in_ms"], 120000);
    let minted = got["login_token"].as_str().unwrap();
    let res = http
        .post_json("/_matrix/client/v3/login", None, &token_login(minted))
        .await
        .ok();
    assert_eq!(res["user_id"], bob.as_str());
    assert_ne!(res["access_token"], bob_token.as_str());
    http.post_json("/_matrix/client/v3/login", None, &token_login(minted))
        .await
        .assert_error(403, &["M_FORBIDDEN"]);
    let caps = http
        .get("/_matrix/client/v3/capabilities", Some(&bob_token))
        .await
        .ok();
    assert_eq!(caps["capabilities"]["m.get_login_token"]["enabled"], true);

    // The password form of the OAuth sign-in page signs bob in to the consent page.
    let consent = oauth_password_sign_in(&server, "bob", PASSWORD).await;
    assert!(
        consent.body.contains("Allow access?") && consent.body.contains(bob.as_str()),
        "{}",
        consent.body
    );
    let wrong = oauth_password_sign_in(&server, "bob", "nope").await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(wrong.body.contains("Wrong user name or password"));

    // Audited: the SSO sign-in, the refused replay, the minted token.
    let trail = audit_records(&server).await;
    let has = |action: &str, outcome: &str| {
        trail
            .iter()
            .any(|r| r["action"] == action && r["outcome"] == outcome)
    };
    assert!(has("sso.login", "success") && has("sso.login", "failure"));
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "login_token.issued" && r["actor"] == bob.as_str())
    );
}

/// A registered OAuth client's authorization request: the browser and Handover's sign-in page.
async fn sign_in_page(server: &handover_e2e::TestServer) -> (Browser, handover_e2e::oidc::Page) {
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{}/_handover/oauth/register", server.url()))
        .json(
            &json!({"client_uri": "https://app.example.org", "application_type": "native",
                      "client_name": "pw app", "redirect_uris": [APP_REDIRECT]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut u = url::Url::parse(&format!("{}/_handover/oauth/authorize", server.url())).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", reg["client_id"].as_str().unwrap())
        .append_pair("redirect_uri", APP_REDIRECT)
        .append_pair("response_type", "code")
        .append_pair(
            "scope",
            "urn:matrix:client:api:* urn:matrix:client:device:PWDEV",
        )
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let mut b = Browser::new();
    let chooser = b.get(u.as_str()).await;
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    (b, chooser)
}

const APP_REDIRECT: &str = "http://127.0.0.1/oauth-callback";

/// Through the sign-in page's password form: the page reached (consent on success).
async fn oauth_password_sign_in(
    server: &handover_e2e::TestServer,
    user: &str,
    password: &str,
) -> handover_e2e::oidc::Page {
    let (mut b, chooser) = sign_in_page(server).await;
    assert!(
        chooser.body.contains("name=\"password\""),
        "{}",
        chooser.body
    );
    let auth = input_value(&chooser.body, "auth").unwrap();
    let csrf = input_value(&chooser.body, "csrf").unwrap();
    let p = b
        .post(
            &format!("{}/_handover/oauth/password", server.url()),
            &[
                ("auth", &auth),
                ("csrf", &csrf),
                ("username", user),
                ("password", password),
            ],
        )
        .await;
    b.follow(p, APP_REDIRECT).await
}

#[tokio::test]
async fn without_password_login_no_password_flow_registration_or_get_token() {
    let (_op, server) = start_with_provider(users(), &provider_toml(false, false)).await;
    let http = server.http();
    let flows = http.get("/_matrix/client/v3/login", None).await.ok();
    assert_eq!(flow_types(&flows), vec!["m.login.sso", "m.login.token"]);
    assert_ne!(flows["flows"][1]["get_login_token"], true);

    // An admin-made account exists but cannot sign in with its password (spec: unknown type).
    let out = server.admin_create_user("dave", PASSWORD, false).await;
    assert!(out.status.success(), "{out:?}");
    http.post_json(
        "/_matrix/client/v3/login",
        None,
        &handover_e2e::login_body("dave", PASSWORD),
    )
    .await
    .assert_error(400, &["M_UNKNOWN"]);
    // Registration through the API is closed.
    let res = http
        .post_json(
            "/_matrix/client/v3/register",
            None,
            &json!({"username": "eve", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    res.assert_error(403, &["M_FORBIDDEN"]);

    // The provider still signs people in; /login/get_token is not offered.
    let back = legacy_sso(&server, "cis2", "carol", CLIENT_PAGE)
        .await
        .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
    let body = http
        .post_json(
            "/_matrix/client/v3/login",
            None,
            &token_login(&login_token_of(&back)),
        )
        .await
        .ok();
    let access = body["access_token"].as_str().unwrap();
    http.post_json(
        "/_matrix/client/v1/login/get_token",
        Some(access),
        &json!({}),
    )
    .await
    .assert_error(404, &["M_UNRECOGNIZED"]);

    // Accounts cannot be created on the sign-in page either (prompt=create).
    let meta = http
        .get("/_matrix/client/v1/auth_metadata", None)
        .await
        .ok();
    assert!(meta.get("prompt_values_supported").is_none(), "{meta}");
    let (mut b, chooser) = sign_in_page(&server).await;
    assert!(!chooser.body.contains("Create an account"));
    let create_url = chooser.url.clone() + "&prompt=create";
    let p = b.get(&create_url).await;
    let to = p.location.expect("an OAuth error to the app");
    assert!(
        to.starts_with(APP_REDIRECT) && to.contains("error=invalid_request"),
        "{to}"
    );
    let res = b
        .post(
            &format!("{}/_handover/oauth/create", server.url()),
            &[
                ("auth", "x"),
                ("csrf", "y"),
                ("username", "mallory"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(res.status >= 400 && res.location.is_none());
    http.get("/_matrix/client/v3/profile/@mallory:localhost", None)
        .await
        .assert_error(404, &["M_NOT_FOUND"]);

    // The OAuth sign-in page has no password form, and its endpoint refuses anyway.
    let (mut b, chooser) = sign_in_page(&server).await;
    assert!(
        !chooser.body.contains("name=\"password\""),
        "{}",
        chooser.body
    );
    assert!(chooser.body.contains("/_handover/identity/start/cis2"));
    let auth = input_value(&chooser.body, "auth");
    assert!(auth.is_none());
    let p = b
        .post(
            &format!("{}/_handover/oauth/password", server.url()),
            &[
                ("auth", "x"),
                ("csrf", "y"),
                ("username", "dave"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(
        p.status >= 400 && p.location.is_none(),
        "{} {}",
        p.status,
        p.body
    );
}

#[tokio::test]
async fn provider_back_channel_logout_ends_the_linked_accounts_sessions() {
    use handover_e2e::account::eventually;
    use handover_e2e::oidc::{legacy_sso_in, provider_logout, start_with_provider_logout};
    let (op, server) =
        start_with_provider_logout(users(), &provider_toml(true, false), Some("cis2")).await;
    let http = server.http();
    let (_, bob_token) = http.register("bob", PASSWORD).await;

    // Carol signs in twice (two devices); the first browser keeps the provider's session.
    let mut b = Browser::new();
    let mut sessions = Vec::new();
    for browser in [&mut b, &mut Browser::new()] {
        let back = legacy_sso_in(browser, &server, "cis2", "carol", CLIENT_PAGE)
            .await
            .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
        let body = http
            .post_json(
                "/_matrix/client/v3/login",
                None,
                &token_login(&login_token_of(&back)),
            )
            .await
            .ok();
        sessions.push(body["access_token"].as_str().unwrap().to_owned());
    }
    let whoami = |t: String| {
        let http = http.clone();
        async move {
            http.get("/_matrix/client/v3/account/whoami", Some(&t))
                .await
        }
    };
    for t in &sessions {
        whoami(t.clone()).await.ok();
    }

    // A logout token not signed by the provider is refused and ends nothing.
    let res = reqwest::Client::new()
        .post(format!(
            "{}/_handover/identity/backchannel_logout/cis2",
            server.url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJzdWItY2Fyb2wifQ.")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    whoami(sessions[0].clone()).await.ok();

    // Carol signs out at the provider: it tells Handover, every session of hers ends.
    let out = provider_logout(&mut b, &op).await;
    assert!(out.body.contains("Sign-out Success"), "{}", out.body);
    for t in &sessions {
        let t = t.clone();
        eventually(20, "back-channel logout", || {
            let w = whoami(t.clone());
            async move {
                let r = w.await;
                (r.status == 401).then_some(r)
            }
        })
        .await
        .assert_error(401, &["M_UNKNOWN_TOKEN"]);
    }
    // Someone else's session is untouched.
    whoami(bob_token).await.ok();
    let trail = audit_records(&server).await;
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "identity.backchannel_logout"
                && r["outcome"] == "success"
                && r["target"] == "@carol:localhost")
    );
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "identity.backchannel_logout" && r["outcome"] == "denied")
    );
}

#[tokio::test]
async fn back_channel_logout_with_sid_ends_only_that_provider_sessions_sessions() {
    use handover_e2e::account::eventually;
    use handover_e2e::oidc::{
        OpOptions, legacy_sso_in, provider_logout, start_with_provider_options,
    };
    let o = OpOptions {
        logout_with_sid: true,
        ..OpOptions::default()
    };
    let (op, server) =
        start_with_provider_options(users(), &provider_toml(true, false), Some("cis2"), &o).await;
    let http = server.http();
    // Carol signs in from two browsers: two provider sessions, one Handover session each.
    let mut first = Browser::new();
    let mut sessions = Vec::new();
    for browser in [&mut first, &mut Browser::new()] {
        let back = legacy_sso_in(browser, &server, "cis2", "carol", CLIENT_PAGE)
            .await
            .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
        let body = http
            .post_json(
                "/_matrix/client/v3/login",
                None,
                &token_login(&login_token_of(&back)),
            )
            .await
            .ok();
        sessions.push(body["access_token"].as_str().unwrap().to_owned());
    }
    // She signs out at the provider in the first browser: its logout token names that
    // session's sid, so only the first Handover session ends.
    let out = provider_logout(&mut first, &op).await;
    assert!(out.body.contains("Sign-out Success"), "{}", out.body);
    let t = sessions[0].clone();
    eventually(20, "back-channel logout (sid)", || {
        let (http, t) = (http.clone(), t.clone());
        async move {
            let r = http
                .get("/_matrix/client/v3/account/whoami", Some(&t))
                .await;
            (r.status == 401).then_some(r)
        }
    })
    .await
    .assert_error(401, &["M_UNKNOWN_TOKEN"]);
    http.get("/_matrix/client/v3/account/whoami", Some(&sessions[1]))
        .await
        .ok();
    let trail = audit_records(&server).await;
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "identity.backchannel_logout"
                && r["outcome"] == "success"
                && r["target"] == "@carol:localhost")
    );
}
