//! The IG audit trail through the real binary: activity over HTTP, then `handover audit verify`
//! and `handover audit export` (docs/GOVERNANCE.md, "Audit trail"). Tampering uses the `sqlite3`
//! command (scripts/test-e2e.sh installs it) to bypass the append-only triggers.

use handover_e2e::*;
use serde_json::Value;

fn sqlite3(db: &std::path::Path, sql: &str) {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| panic!("the `sqlite3` command is needed to tamper with the trail ({e}); scripts/test-e2e.sh installs it"));
    assert!(out.status.success(), "sqlite3: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_export_record_metadata_and_catch_tampering() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, token) = http.register("alice", PASSWORD).await;
        let (bob, _) = http.register("bob", PASSWORD).await;
        http.post_json("/_matrix/client/v3/login", None, &login_body("alice", "wrong password"))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        http.post_json("/_matrix/client/v3/createRoom", Some(&token), &json!({ "name": "Bed 4 9434765919" }))
            .await
            .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_metadata");
        let room = http.create_room(&token, &json!({ "preset": "public_chat", "invite": [bob] })).await;
        http.put_json(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/t1", enc(&room)),
            Some(&token),
            &json!({ "msgtype": "m.text", "body": "MARKER-e2e-audit-body" }),
        )
        .await
        .ok();

        let out = server.cli(&["audit", "verify"]).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(stdout.contains("audit chain intact"), "{stdout}");
        assert!(stdout.contains("head hash: "), "{stdout}");

        let file = server.dir().join("audit.jsonl");
        let out = server
            .cli(&["audit", "export", "--since", "2000-01-01", "--until", "2100-01-01T00:00:00Z", "--out", file.to_str().unwrap()])
            .await;
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(&file).unwrap();
        let entries: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let has = |action: &str, f: &dyn Fn(&Value) -> bool| entries.iter().any(|e| e["action"] == action && f(e));
        assert!(has("register", &|e| e["actor"] == alice.as_str()), "{text}");
        assert!(has("login", &|e| e["outcome"] == "failure"), "{text}");
        assert!(
            has("policy.denial", &|e| e["rule"] == "nhs_number_in_metadata" && e["actor"] == alice.as_str()),
            "{text}"
        );
        assert!(has("room.create", &|e| e["target"] == room.as_str()), "{text}");
        assert!(has("room.invite", &|e| e["target"] == bob.as_str()), "{text}");
        // Metadata only: no message content, room names, passwords or tokens.
        for secret in ["MARKER-e2e-audit-body", "9434765919", "Bed 4", PASSWORD, "wrong password", &token] {
            assert!(!text.contains(secret), "{secret} in the audit export");
        }
        // An export never overwrites a file.
        let again = server
            .cli(&["audit", "export", "--since", "2000-01-01", "--until", "2100-01-01", "--out", file.to_str().unwrap()])
            .await;
        assert!(!again.status.success());

        // Editing one entry (past the append-only trigger) breaks the chain at that entry.
        let db = server.data_dir().join("handover.db");
        sqlite3(&db, "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = '@mallory:localhost' WHERE seq = 2;");
        let out = server.cli(&["audit", "verify"]).await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("broken at seq 2"), "{stderr}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_entry_is_named_by_verify() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        for user in ["alice", "bob", "carol"] {
            http.register(user, PASSWORD).await;
        }
        let db = server.data_dir().join("handover.db");
        sqlite3(
            &db,
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2;",
        );
        let out = server.cli(&["audit", "verify"]).await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("broken at seq 2"),
            "{out:?}"
        );
    })
    .await;
}
