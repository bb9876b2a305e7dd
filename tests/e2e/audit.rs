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

/// Rewrites entry `seq`'s actor and rehashes every entry after it, through the `sqlite3`
/// command, as an insider with the database could: the keyless chain is valid again.
fn rewrite_and_rehash(db: &std::path::Path, seq: i64) {
    let out = std::process::Command::new("sqlite3")
        .args([
            "-json",
            db.to_str().unwrap(),
            "SELECT * FROM audit_log ORDER BY seq",
        ])
        .output()
        .expect("sqlite3");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("sqlite3 -json");
    let mut prev = String::new();
    let mut sql = String::from("DROP TRIGGER audit_log_no_update; BEGIN;");
    for row in rows
        .iter()
        .filter(|r| r["seq"].as_i64().unwrap() >= seq - 1)
    {
        let mut r = handover_compliance::AuditRecord {
            seq: row["seq"].as_i64().unwrap(),
            ts: row["ts"].as_i64().unwrap(),
            actor: row["actor"].as_str().unwrap().to_owned(),
            action: row["action"].as_str().unwrap().to_owned(),
            target: row["target"].as_str().map(str::to_owned),
            outcome: handover_compliance::Outcome::parse(row["outcome"].as_str().unwrap()).unwrap(),
            rule: row["rule"].as_str().map(str::to_owned),
            details: serde_json::from_str(row["details"].as_str().unwrap()).unwrap(),
            prev_hash: row["prev_hash"].as_str().unwrap().to_owned(),
            hash: row["hash"].as_str().unwrap().to_owned(),
        };
        if r.seq == seq - 1 {
            prev = r.hash;
            continue;
        }
        if r.seq == seq {
            r.actor = "@mallory:localhost".into();
        }
        r.prev_hash = prev;
        r.hash = handover_compliance::chain::compute_hash(&r);
        sql.push_str(&format!(
            "UPDATE audit_log SET actor = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {};",
            r.actor.replace('\'', "''"),
            r.prev_hash,
            r.hash,
            r.seq
        ));
        prev = r.hash;
    }
    sqlite3(db, &(sql + "COMMIT;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_checkpoints_catch_a_rewritten_and_rehashed_trail() {
    with_timeout(180, async {
        let outside = tempfile::tempdir().unwrap();
        let cp_file = outside.path().join("checkpoints.jsonl");
        let server = TestServer::start_with(ServerOptions {
            extra_toml: format!(
                "[audit]\ncheckpoint_every = 3\ncheckpoint_file = {}\n",
                toml_str(cp_file.to_str().unwrap())
            ),
            ..Default::default()
        })
        .await;
        let http = server.http();
        for user in ["alice", "bob", "carol", "dave"] {
            http.register(user, PASSWORD).await;
        }

        let out = server.cli(&["audit", "public-key"]).await;
        assert!(out.status.success(), "{out:?}");
        let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(public.starts_with("ed25519:"), "{public}");
        let out = server
            .cli(&["audit", "verify", "--public-key", &public])
            .await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(stdout.contains("audit chain intact"), "{stdout}");
        assert!(!stdout.contains("signed checkpoints: 0 "), "{stdout}");
        // The external copy: one signed JSON line per checkpoint.
        let lines = std::fs::read_to_string(&cp_file).unwrap();
        let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        assert_eq!(first["seq"], 3, "{lines}");
        assert!(first["signatures"]["handover-audit"].is_object(), "{lines}");

        // A key that is not the audit key is refused.
        let wrong = format!(
            "{} AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            public.split(' ').next().unwrap()
        );
        let out = server
            .cli(&["audit", "verify", "--public-key", &wrong])
            .await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");

        // Entry 2 rewritten, every later entry rehashed: the chain alone would pass, the
        // signed checkpoint at seq 3 does not.
        rewrite_and_rehash(&server.data_dir().join("handover.db"), 2);
        let out = server.cli(&["audit", "verify"]).await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("audit checkpoint at seq 3"), "{stderr}");
    })
    .await;
}
