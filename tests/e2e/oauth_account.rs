//! Account management (MSC4191) for OAuth sessions: matrix-sdk signs in through the real
//! provider (npm `oidc-provider`), finds the account page from the server metadata, and the
//! test plays the browser there: sessions list, one session ended, the cross-signing reset
//! approved for the `m.oauth` UIA stage (MSC4312) that matrix-sdk's reset then passes, and
//! "end every session" (remote wipe). Also: `prompt=create`, required claims read from
//! userinfo, and `handover admin logout-user`.

use handover_e2e::oidc::{
    Browser, OpOptions, Page, audit_records, input_value, legacy_sso, link, login_token_of,
    provider_login, start_with_provider, start_with_provider_options,
};
use handover_e2e::{PASSWORD, TestServer, json};
use matrix_sdk::Client;
use matrix_sdk::authentication::oauth::ClientRegistrationData;
use matrix_sdk::authentication::oauth::registration::{
    ApplicationType, ClientMetadata, Localized, OAuthGrantType,
};
use matrix_sdk::encryption::CrossSigningResetAuthType;
use matrix_sdk::ruma::api::client::discovery::get_authorization_server_metadata::v1::{
    AccountManagementActionData, Prompt,
};
use matrix_sdk::ruma::serde::Raw;
use serde_json::Value;

const APP_REDIRECT: &str = "http://127.0.0.1/oauth-callback";

fn users() -> Value {
    json!({
        "alice": {"password": "pw", "sub": "sub-alice", "acr": "aal3",
                  "claims": {"name": "Alice Smith", "preferred_username": "alice"}},
    })
}

const TOML: &str = r#"
[identity]
password_login = true

[[identity.providers]]
id = "cis2"
name = "NHS Care Identity"
issuer = "{issuer}"
client_id = "handover"
client_secret = "s3cret"
scopes = ["openid", "profile"]
"#;

fn registration() -> ClientRegistrationData {
    let redirect = url::Url::parse(APP_REDIRECT).unwrap();
    let mut meta = ClientMetadata::new(
        ApplicationType::Native,
        vec![OAuthGrantType::AuthorizationCode {
            redirect_uris: vec![redirect],
        }],
        Localized::new(url::Url::parse("https://app.example.org").unwrap(), None),
    );
    meta.client_name = Some(Localized::new("Account e2e app".to_owned(), None));
    Raw::new(&meta).unwrap().into()
}

/// Allows on a consent page: the redirect to the app.
async fn allow(b: &mut Browser, server: &TestServer, consent: &Page) -> String {
    assert!(consent.body.contains("Allow access?"), "{}", consent.body);
    let auth = input_value(&consent.body, "auth").unwrap();
    let csrf = input_value(&consent.body, "csrf").unwrap();
    let p = b
        .post(
            &format!("{}/_handover/oauth/consent", server.url()),
            &[("auth", &auth), ("csrf", &csrf), ("decision", "allow")],
        )
        .await;
    p.location.expect("redirect to the app")
}

/// The provider's button on a Handover sign-in page, through the provider's form.
async fn through_provider(b: &mut Browser, server: &TestServer, chooser: &Page) -> Page {
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    let start = link(&chooser.body, "/_handover/identity/start/cis2").expect("provider button");
    let p = b.get(&format!("{}{start}", server.url())).await;
    let page = b.follow(p, APP_REDIRECT).await;
    // The provider remembers the browser's sign-in: its form only comes the first time.
    if page.body.contains("name=\"login\"") {
        provider_login(b, page, "alice", APP_REDIRECT).await
    } else {
        page
    }
}

/// matrix-sdk's OAuth login as alice, in browser `b` (which keeps the provider's session).
async fn oauth_login(b: &mut Browser, server: &TestServer) -> Client {
    let client = server.client().await;
    let data = client
        .oauth()
        .login(
            url::Url::parse(APP_REDIRECT).unwrap(),
            None,
            Some(registration()),
            None,
        )
        .build()
        .await
        .unwrap();
    let chooser = b.get(data.url.as_str()).await;
    let consent = through_provider(b, server, &chooser).await;
    let back = allow(b, server, &consent).await;
    client
        .oauth()
        .finish_login(url::Url::parse(&back).unwrap().into())
        .await
        .unwrap();
    client
}

async fn whoami(server: &TestServer, token: &str) -> (u16, Value) {
    let r = server
        .http()
        .get("/_matrix/client/v3/account/whoami", Some(token))
        .await;
    (r.status, r.json())
}

#[tokio::test]
async fn account_page_sessions_cross_signing_reset_and_remote_wipe() {
    let (_op, server) = start_with_provider(users(), TOML).await;
    let mut app_browser = Browser::new();
    let phone = oauth_login(&mut app_browser, &server).await;
    let laptop = oauth_login(&mut app_browser, &server).await;
    let (phone_dev, laptop_dev) = (
        phone.device_id().unwrap().to_owned(),
        laptop.device_id().unwrap().to_owned(),
    );

    // The account page, found as matrix-sdk finds it (server metadata, MSC4191 action).
    let meta = phone.oauth().server_metadata().await.unwrap();
    let sessions_url = meta
        .account_management_url_with_action(AccountManagementActionData::DevicesList)
        .expect("account_management_uri");
    assert!(
        sessions_url
            .as_str()
            .starts_with(&format!("{}/_handover/account/?action=", server.url())),
        "{sessions_url}"
    );

    // A new browser signs in first (the provider's page), then lands on the sessions list.
    let mut b = Browser::new();
    let chooser = b.get(sessions_url.as_str()).await;
    assert!(
        chooser.body.contains("manage your account"),
        "{}",
        chooser.body
    );
    let landed = through_provider(&mut b, &server, &chooser).await;
    let list = b.follow(landed, "never").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains(phone_dev.as_str()) && list.body.contains(laptop_dev.as_str()),
        "{}",
        list.body
    );
    let csrf = input_value(&list.body, "csrf").expect("the page's CSRF token");

    // A forged form (wrong CSRF token) ends nothing.
    let p = b
        .post(
            &format!("{}/_handover/account/end_session", server.url()),
            &[("csrf", "forged"), ("device_id", laptop_dev.as_str())],
        )
        .await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(laptop.whoami().await.is_ok());
    // Unknown actions and sessions are pages naming what was wrong.
    let p = b
        .get(&format!(
            "{}/_handover/account/?action=org.matrix.nope",
            server.url()
        ))
        .await;
    assert_eq!(p.status, 400);
    let p = b
        .get(&format!(
            "{}/_handover/account/?action=org.matrix.session_view&device_id=NOPE",
            server.url()
        ))
        .await;
    assert_eq!(p.status, 404);

    // End the laptop's session from its own page (the MSC4191 session_end action).
    let end_url = meta
        .account_management_url_with_action(AccountManagementActionData::DeviceDelete(
            (&*laptop_dev).into(),
        ))
        .unwrap();
    let confirm = b.get(end_url.as_str()).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("End this session?"),
        "{}",
        confirm.body
    );
    let p = b
        .post(
            &format!("{}/_handover/account/end_session", server.url()),
            &[("csrf", &csrf), ("device_id", laptop_dev.as_str())],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let laptop_token = laptop.session_tokens().unwrap().access_token;
    assert_eq!(whoami(&server, &laptop_token).await.0, 401);
    assert!(phone.whoami().await.is_ok());

    // Cross-signing: set up freely the first time; replacing it needs the m.oauth stage.
    phone
        .encryption()
        .bootstrap_cross_signing(None)
        .await
        .unwrap();
    let handle = phone
        .encryption()
        .reset_cross_signing()
        .await
        .unwrap()
        .expect("replacing cross-signing keys needs authentication");
    let CrossSigningResetAuthType::OAuth(info) = handle.auth_type() else {
        panic!("expected the m.oauth stage, got {:?}", handle.auth_type());
    };
    assert!(
        info.approval_url
            .as_str()
            .ends_with("/_handover/account/?action=org.matrix.cross_signing_reset"),
        "{}",
        info.approval_url
    );
    let page = b.get(info.approval_url.as_str()).await;
    assert!(page.body.contains("Allow the reset"), "{}", page.body);
    let p = b
        .post(
            &format!("{}/_handover/account/cross_signing_reset", server.url()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    handle.auth(None).await.unwrap();

    // Lost phone: end every session from the page (remote wipe).
    let p = b
        .post(
            &format!("{}/_handover/account/end_all", server.url()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let token = phone.session_tokens().unwrap().access_token;
    let (status, body) = whoami(&server, &token).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (401, Some("M_UNKNOWN_TOKEN"))
    );
    // Not a soft logout (absent means false): the client clears its data.
    assert_ne!(body["soft_logout"], true);
    // The page session ended with them: its forms no longer work.
    let p = b
        .post(
            &format!("{}/_handover/account/end_all", server.url()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 403);
    let trail = audit_records(&server).await;
    for action in ["sessions.end_all", "oauth.cross_signing_reset_approved"] {
        assert!(
            trail
                .iter()
                .any(|r| r["action"] == action && r["actor"] == "@alice:localhost"),
            "{action}"
        );
    }
}

#[tokio::test]
async fn admin_cli_logout_user_ends_every_session() {
    let server = TestServer::start().await;
    let http = server.http();
    let (_, t1) = http.register("bob", PASSWORD).await;
    let t2 = http.login("bob", PASSWORD).await;
    let (_, other) = http.register("carol", PASSWORD).await;
    let out = server.cli(&["admin", "logout-user", "bob"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ended 2 session(s)"));
    for t in [&t1, &t2] {
        let (status, body) = whoami(&server, t).await;
        assert_eq!(
            (status, body["errcode"].as_str()),
            (401, Some("M_UNKNOWN_TOKEN"))
        );
        assert_ne!(body["soft_logout"], true);
    }
    assert_eq!(whoami(&server, &other).await.0, 200);
    let out = server.cli(&["admin", "logout-user", "nobody"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such account"));

    // account_kind through the Synapse admin API user endpoint (Handover's own field).
    let out = server.admin_create_user("root", PASSWORD, true).await;
    assert!(out.status.success(), "{out:?}");
    let root = http.login("root", PASSWORD).await;
    let path = "/_synapse/admin/v2/users/@bob:localhost";
    assert_eq!(
        http.get(path, Some(&root)).await.ok()["account_kind"],
        "staff"
    );
    let res = http
        .put_json(path, Some(&root), &json!({"account_kind": "patient"}))
        .await
        .ok();
    assert_eq!(res["account_kind"], "patient");
    assert_eq!(
        http.get(path, Some(&root)).await.ok()["account_kind"],
        "patient"
    );
    http.put_json(path, Some(&root), &json!({"account_kind": "robot"}))
        .await
        .assert_error(400, &["M_INVALID_PARAM"]);
    assert_eq!(
        http.get(path, Some(&root)).await.ok()["account_kind"],
        "patient"
    );
    // A patient is confined at once (rule patient_cannot_create_room).
    let t3 = http.login("bob", PASSWORD).await;
    http.post_json("/_matrix/client/v3/createRoom", Some(&t3), &json!({}))
        .await
        .assert_rule(403, "M_FORBIDDEN", "patient_cannot_create_room");
}

#[tokio::test]
async fn prompt_create_makes_an_account_on_the_sign_in_page() {
    let (_op, server) = start_with_provider(users(), TOML).await;
    let meta = server
        .http()
        .get("/_matrix/client/v1/auth_metadata", None)
        .await
        .ok();
    assert_eq!(meta["prompt_values_supported"], json!(["create"]));
    let client = server.client().await;
    let data = client
        .oauth()
        .login(
            url::Url::parse(APP_REDIRECT).unwrap(),
            None,
            Some(registration()),
            None,
        )
        .prompt(vec![Prompt::Create])
        .build()
        .await
        .unwrap();
    let mut b = Browser::new();
    let page = b.get(data.url.as_str()).await;
    assert!(page.body.contains("Create an account"), "{}", page.body);
    let auth = input_value(&page.body, "auth").unwrap();
    let csrf = input_value(&page.body, "csrf").unwrap();
    let create = |user: &'static str, pw: &'static str| {
        let (auth, csrf) = (auth.clone(), csrf.clone());
        let url = format!("{}/_handover/oauth/create", server.url());
        async move { (url, auth, csrf, user, pw) }
    };
    // A name already taken is refused on a page; nothing changes.
    server.register("taken").await;
    let (url, a, c, u, p) = create("taken", "a long enough password").await;
    let res = b
        .post(
            &url,
            &[("auth", &a), ("csrf", &c), ("username", u), ("password", p)],
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("Account not created"), "{}", res.body);
    // A forged form creates nothing.
    let res = b
        .post(
            &url,
            &[
                ("auth", &a),
                ("csrf", "forged"),
                ("username", "newbie"),
                ("password", p),
            ],
        )
        .await;
    assert_eq!(res.status, 403);
    let (url, a, c, u, p) = create("newbie", "a long enough password").await;
    let res = b
        .post(
            &url,
            &[("auth", &a), ("csrf", &c), ("username", u), ("password", p)],
        )
        .await;
    let consent = b.follow(res, APP_REDIRECT).await;
    assert!(
        consent.body.contains("@newbie:localhost"),
        "{}",
        consent.body
    );
    let back = allow(&mut b, &server, &consent).await;
    client
        .oauth()
        .finish_login(url::Url::parse(&back).unwrap().into())
        .await
        .unwrap();
    assert_eq!(client.user_id().unwrap().as_str(), "@newbie:localhost");
    // The new account has the password it was created with.
    server.login("newbie", "a long enough password").await;
}

#[tokio::test]
async fn required_claims_read_from_userinfo_gate_the_sign_in() {
    let users = json!({
        "dr": {"password": "pw", "sub": "sub-dr", "acr": "aal3",
               "claims": {"name": "Dr Who", "preferred_username": "drwho",
                          "nhsid_nrbac_roles": [{"org_code": "RAA", "role_code": "R8000"},
                                                {"org_code": "RXX", "role_code": "R8000"}]}},
        "visitor": {"password": "pw", "sub": "sub-visitor", "acr": "aal3",
                    "claims": {"name": "Visitor", "preferred_username": "visitor",
                               "nhsid_nrbac_roles": [{"org_code": "RZZ", "role_code": "R8000"}]}},
    });
    let toml = r#"
[identity]
sso_redirect_allowlist = ["http://127.0.0.1/sso-done"]

[[identity.providers]]
id = "cis2"
name = "NHS Care Identity"
issuer = "{issuer}"
client_id = "handover"
client_secret = "s3cret"
scopes = ["openid", "profile", "nationalrbacaccess"]
required_claims = { "nhsid_nrbac_roles.org_code" = ["RXX", "RYY"] }
"#;
    let o = OpOptions {
        claims_only_at_userinfo: true,
        ..OpOptions::default()
    };
    let (_op, server) = start_with_provider_options(users, toml, None, &o).await;
    let http = server.http();
    const PAGE: &str = "http://127.0.0.1/sso-done";

    // A role at the trust: in. The name and localpart came from userinfo (not the ID token).
    let back = legacy_sso(&server, "cis2", "dr", PAGE)
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
    assert_eq!(body["user_id"], "@drwho:localhost");
    let prof = http
        .get("/_matrix/client/v3/profile/@drwho:localhost", None)
        .await
        .ok();
    assert_eq!(prof["displayname"], "Dr Who");

    // No role at the trust: refused, naming the rule; no account; audited.
    let Err(page) = legacy_sso(&server, "cis2", "visitor", PAGE).await else {
        panic!("the visitor was let in");
    };
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("identity_required_claim_missing")
            && page.body.contains("nhsid_nrbac_roles.org_code"),
        "{}",
        page.body
    );
    http.get("/_matrix/client/v3/profile/@visitor:localhost", None)
        .await
        .assert_error(404, &["M_NOT_FOUND"]);
    let trail = audit_records(&server).await;
    assert!(trail.iter().any(|r| r["action"] == "policy.denial"
        && r["rule"] == "identity_required_claim_missing"
        && r["actor"] == "cis2:sub-visitor"));
}
