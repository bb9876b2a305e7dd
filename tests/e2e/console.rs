//! The IG lead's console in headless Chromium (playwright-core driving Debian's chromium,
//! installed by scripts/install-browser.sh): tests/tools/console-browser.js signs in as a
//! non-admin (refused) and as an admin, places and releases a legal hold, is refused a POST
//! without the CSRF token, searches and exports the audit trail, ends a user's sessions and
//! downloads their subject-access export. Here: the user's token then answers M_UNKNOWN_TOKEN
//! (not a soft logout), the ZIP is theirs, and every action is in the audit trail.
//! Screenshots: target/e2e-artifacts/console/.

use std::path::PathBuf;

use handover_e2e::*;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// NODE_PATH with playwright-core: HANDOVER_NODE_PATH (scripts/test-e2e.sh sets it), else the
/// install script's answer (idempotent, quick when installed).
fn node_path() -> String {
    if let Ok(p) = std::env::var("HANDOVER_NODE_PATH") {
        return p;
    }
    let out = std::process::Command::new(repo().join("scripts/install-browser.sh"))
        .output()
        .expect("scripts/install-browser.sh");
    assert!(out.status.success(), "install-browser.sh: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_holds_audit_sessions_sar_csrf_and_refusals() {
    with_timeout(300, async {
        let server = TestServer::start().await;
        let http = server.http();
        let out = server.admin_create_user("iglead", PASSWORD, true).await;
        assert!(out.status.success(), "{out:?}");
        let (_, plain_token) = http.register("nurse", PASSWORD).await;
        let (carol, carol_token) = http.register("carol", PASSWORD).await;
        let room = http
            .create_room(&plain_token, &json!({ "name": "ward 7" }))
            .await;
        http.get("/_matrix/client/v3/account/whoami", Some(&carol_token))
            .await
            .ok();

        let artifacts = repo().join("target/e2e-artifacts/console");
        let _ = std::fs::remove_dir_all(&artifacts);
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(repo().join("tests/tools/console-browser.js"))
            .env("NODE_PATH", node_path())
            .env("BASE_URL", server.url())
            .env("ADMIN_USER", "iglead")
            .env("ADMIN_PASS", PASSWORD)
            .env("PLAIN_USER", "nurse")
            .env("PLAIN_PASS", PASSWORD)
            .env("TARGET_USER", &carol)
            .env("HOLD_ROOM", &room)
            .env("OUT_DIR", &artifacts)
            .kill_on_drop(true);
        let run = within(240, "console-browser.js", cmd.output())
            .await
            .expect("node");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "console-browser.js failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let results: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(results["ok"], true);
        assert!(artifacts.join("03-hold-placed.png").exists());

        // Remote wipe: the user's token is gone, and not as a soft logout.
        let r = http
            .get("/_matrix/client/v3/account/whoami", Some(&carol_token))
            .await;
        r.assert_error(401, &["M_UNKNOWN_TOKEN"]);
        assert_ne!(r.json()["soft_logout"], true, "{}", r.text());
        // The other users' sessions are untouched.
        http.get("/_matrix/client/v3/account/whoami", Some(&plain_token))
            .await
            .ok();

        // The SAR ZIP the browser downloaded is carol's.
        let dir = artifacts.join("sar");
        let unzip = std::process::Command::new("unzip")
            .args(["-q", "-o"])
            .arg(artifacts.join("sar.zip"))
            .arg("-d")
            .arg(&dir)
            .output()
            .expect("unzip (scripts/test-e2e.sh installs it)");
        assert!(unzip.status.success(), "{unzip:?}");
        let account: Value =
            serde_json::from_slice(&std::fs::read(dir.join("account.json")).unwrap()).unwrap();
        assert_eq!(account["user_id"], carol.as_str());

        // Every action is in the audit trail with the admin as actor; the browser's audit
        // export holds the hold entries.
        let export = std::fs::read_to_string(artifacts.join("audit-export.jsonl")).unwrap();
        assert!(
            export.contains("retention.hold") && export.contains("case 42: inquest"),
            "{export}"
        );
        let file = server.dir().join("audit.jsonl");
        let out = server
            .cli(&[
                "audit",
                "export",
                "--since",
                "2000-01-01",
                "--until",
                "2100-01-01",
                "--out",
                file.to_str().unwrap(),
            ])
            .await;
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<Value> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let admin = "@iglead:localhost";
        let has = |action: &str, actor: &str| {
            lines
                .iter()
                .any(|e| e["action"] == action && e["actor"] == actor)
        };
        assert!(
            has("admin.denied", "@nurse:localhost"),
            "non-admin refusal audited"
        );
        for action in [
            "console.login",
            "retention.hold",
            "retention.release",
            "console.audit.search",
            "console.audit.export",
            "console.sessions.end_all",
            "sar.export",
        ] {
            assert!(has(action, admin), "{action} by the admin not audited");
        }
        assert!(
            lines
                .iter()
                .any(|e| e["action"] == "console.view" && e["outcome"] == "denied"),
            "CSRF refusal audited"
        );
        let end = lines
            .iter()
            .find(|e| e["action"] == "console.sessions.end_all")
            .unwrap();
        assert_eq!(end["target"], carol.as_str());
    })
    .await;
}
