//! Registration restricted to NHS email domains through the real binary: the
//! `m.login.email.identity` stage, `register/email/requestToken` (the domain rule), the
//! emailed link (sent by a sendmail-compatible command, here a script writing to a file), its
//! confirmation page, and the account's 3PID.

use handover_e2e::*;
use serde_json::Value;

const SECRET: &str = "client-secret-1";

async fn start(dir: &tempfile::TempDir) -> TestServer {
    start_with(dir, None).await
}

async fn start_with(dir: &tempfile::TempDir, rate_limit: Option<LoginRateLimit>) -> TestServer {
    let mails = dir.path().join("mails.txt");
    let script = "cat >> \"$0\"; echo '=== END ===' >> \"$0\"";
    TestServer::start_with(ServerOptions {
        allowed_email_domains: vec!["nhs.net".into(), "*.nhs.uk".into()],
        rate_limit,
        extra_toml: format!(
            "[email]\nsendmail_command = [\"sh\", \"-c\", {}, {}]\nfrom = \"Ward 7 Chat <noreply@localhost>\"\n",
            toml_str(script),
            toml_str(&mails.to_string_lossy())
        ),
        ..ServerOptions::default()
    })
    .await
}

fn mails(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(dir.path().join("mails.txt"))
        .unwrap_or_default()
        .split("=== END ===\n")
        .filter(|m| !m.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

async fn request_token(http: &Http, email: &str) -> Resp {
    http.post_json(
        "/_matrix/client/v3/register/email/requestToken",
        None,
        &json!({ "client_secret": SECRET, "email": email, "send_attempt": 1 }),
    )
    .await
}

async fn register(http: &Http, session: &Value, sid: &str) -> Resp {
    http.post_json(
        "/_matrix/client/v3/register",
        None,
        &json!({
            "username": "asmith", "password": PASSWORD,
            "auth": {
                "type": "m.login.email.identity", "session": session,
                "threepid_creds": { "sid": sid, "client_secret": SECRET },
            },
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_validated_nhs_address_registers_and_becomes_the_accounts_3pid() {
    with_timeout(120, async {
        let dir = tempfile::tempdir().unwrap();
        let server = start(&dir).await;
        let http = server.http();

        // The flow asks for an email address; the dummy stage is not offered.
        let first = http
            .post_json(
                "/_matrix/client/v3/register",
                None,
                &json!({ "username": "asmith", "password": PASSWORD }),
            )
            .await;
        assert_eq!(first.status, 401, "{}", first.text());
        let uia = first.json();
        assert_eq!(
            uia["flows"],
            json!([{ "stages": ["m.login.email.identity"] }])
        );
        let session = uia["session"].clone();

        // Outside the organisation's domains: the spec's M_THREEPID_DENIED, naming the rule.
        for outside in ["someone@gmail.com", "a@nhs.uk", "a@nhs.net.evil.example"] {
            request_token(&http, outside).await.assert_rule(
                403,
                "M_THREEPID_DENIED",
                "email_domain_not_allowed",
            );
        }
        request_token(&http, "not an address")
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        assert!(
            mails(&dir).is_empty(),
            "nothing is sent to a refused address"
        );

        let sent = request_token(&http, "A.Smith@UHB.nhs.uk").await.ok();
        let sid = sent["sid"].as_str().expect("sid").to_owned();
        let submit_url = sent["submit_url"].as_str().expect("submit_url").to_owned();
        assert!(
            submit_url.ends_with("/_matrix/client/unstable/org.handover.email/submit_token"),
            "{submit_url}"
        );
        let mail = mails(&dir).pop().expect("a validation email");
        assert!(
            mail.contains("From: Ward 7 Chat <noreply@localhost>\r\n"),
            "{mail}"
        );
        assert!(mail.contains("To: a.smith@uhb.nhs.uk\r\n"), "{mail}");
        let link = mail
            .lines()
            .find(|l| l.contains("submit_token?"))
            .expect("a link")
            .trim()
            .to_owned();
        let token = mail
            .split("code in the app: ")
            .nth(1)
            .expect("a code")
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let link_path = &link[link.find("/_matrix").unwrap()..];

        // Not validated yet: the stage fails.
        let early = register(&http, &session, &sid).await;
        assert_eq!(early.status, 401, "{}", early.text());
        // Opening the link (as a mail scanner would) validates nothing: it shows a button.
        let page = http.get(link_path, None).await;
        assert_eq!(page.status, 200);
        assert!(
            page.content_type()
                .unwrap_or_default()
                .starts_with("text/html")
        );
        assert!(
            page.text().contains("<form method=\"post\""),
            "{}",
            page.text()
        );
        assert_eq!(register(&http, &session, &sid).await.status, 401);

        // A client submitting a wrong token gets the identity API's error.
        let path = "/_matrix/client/unstable/org.handover.email/submit_token";
        http.post_json(
            path,
            None,
            &json!({ "sid": sid, "client_secret": SECRET, "token": "0000" }),
        )
        .await
        .assert_error(400, &["M_TOKEN_INCORRECT"]);
        // The page's Confirm button.
        let form = format!("sid={sid}&client_secret={SECRET}&token={token}");
        let confirmed = http
            .request(
                "POST",
                path,
                None,
                Some(("application/x-www-form-urlencoded", form.into_bytes())),
            )
            .await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.text());
        assert!(
            confirmed.text().contains("confirmed"),
            "{}",
            confirmed.text()
        );

        let done = register(&http, &session, &sid).await.ok();
        assert_eq!(done["user_id"], "@asmith:localhost");
        let access = done["access_token"].as_str().expect("logged in").to_owned();
        let ids = http
            .get("/_matrix/client/v3/account/3pid", Some(&access))
            .await
            .ok();
        assert_eq!(ids["threepids"].as_array().map(Vec::len), Some(1), "{ids}");
        assert_eq!(ids["threepids"][0]["medium"], "email");
        assert_eq!(ids["threepids"][0]["address"], "a.smith@uhb.nhs.uk");

        // The token never reaches the logs; the refusal and the binding are in the audit trail.
        assert!(!server.stderr().contains(&token), "the token was logged");
        let out = server
            .cli(&[
                "audit",
                "export",
                "--since",
                "2000-01-01",
                "--until",
                "2100-01-01",
            ])
            .await;
        let export = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            export.contains("\"rule\":\"email_domain_not_allowed\""),
            "{export}"
        );
        assert!(export.contains("\"action\":\"threepid.bind\""), "{export}");
        assert!(
            !export.contains(&token) && !export.contains("someone@"),
            "{export}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_domains_registers_as_before_and_validates_no_email() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();
        request_token(&http, "a@nhs.net")
            .await
            .assert_error(400, &["M_THREEPID_MEDIUM_NOT_SUPPORTED"]);
        let (_, token) = http.register("alice", PASSWORD).await;
        let ids = http
            .get("/_matrix/client/v3/account/3pid", Some(&token))
            .await
            .ok();
        assert!(
            ids["threepids"].as_array().is_none_or(Vec::is_empty),
            "{ids}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_the_email_stage_does_not_hit_the_registration_rate_limit() {
    with_timeout(120, async {
        let dir = tempfile::tempdir().unwrap();
        // Registration's per-IP budget at its defaults: a burst of 5, then one per 10 s.
        let limits = LoginRateLimit {
            login_burst: 10,
            login_per_second: 0.2,
        };
        let server = start_with(&dir, Some(limits)).await;
        let http = server.http();
        let first = http
            .post_json(
                "/_matrix/client/v3/register",
                None,
                &json!({ "username": "asmith", "password": PASSWORD }),
            )
            .await;
        let session = first.json()["session"].clone();
        let sid = request_token(&http, "a.smith@nhs.net").await.ok()["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        // A client waiting for the user to open the link polls every few seconds.
        for _ in 0..8 {
            let poll = register(&http, &session, &sid).await;
            assert_eq!(poll.status, 401, "{}", poll.text());
        }
        let mail = mails(&dir).pop().unwrap();
        let token = mail
            .split("code in the app: ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let path = "/_matrix/client/unstable/org.handover.email/submit_token";
        let ok = http
            .post_json(
                path,
                None,
                &json!({ "sid": sid, "client_secret": SECRET, "token": token }),
            )
            .await;
        assert_eq!(ok.ok(), json!({ "success": true }));
        assert_eq!(
            register(&http, &session, &sid).await.ok()["user_id"],
            "@asmith:localhost"
        );
    })
    .await;
}
