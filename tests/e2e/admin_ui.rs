//! The real synapse-admin web UI (a static build under ../shared/third-party/synapse-admin, on no
//! registry) in headless Debian Chromium driven by playwright-core (`tests/tools/admin_ui.js`;
//! `scripts/install-browser.sh` installs both): an admin logs in through the UI's form, sees
//! the users and rooms lists, deactivates a user, locks one, quarantines a file, reads an
//! event report and deletes a room (synapse-admin shows no deletion status: the test reads it
//! through the API); every homeserver request the UI makes must succeed, and each action is
//! then checked through the API. Screenshots: target/e2e-artifacts/admin-ui/ (printed).

use std::path::PathBuf;

use handover_e2e::*;
use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The synapse-admin build: `HANDOVER_SYNAPSE_ADMIN_DIR`, else ../shared/third-party/ next to
/// the checkout (worktrees live one level deeper, hence the second candidate).
fn ui_dir() -> PathBuf {
    if let Ok(d) = std::env::var("HANDOVER_SYNAPSE_ADMIN_DIR") {
        return d.into();
    }
    let root = repo_root();
    [
        root.join("../shared/third-party/synapse-admin"),
        root.join("../../shared/third-party/synapse-admin"),
    ]
    .into_iter()
    .find(|p| p.join("index.html").exists())
    .expect("synapse-admin build not found; set HANDOVER_SYNAPSE_ADMIN_DIR")
}

/// `scripts/install-browser.sh` (idempotent) prints the node_modules directory last.
async fn node_modules() -> String {
    let script = repo_root().join("scripts/install-browser.sh");
    let out = tokio::process::Command::new(script)
        .output()
        .await
        .expect("run install-browser.sh");
    assert!(out.status.success(), "install-browser.sh: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("node_modules path")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_admin_ui_drives_the_admin_api() {
    with_timeout(420, async {
        let modules = node_modules().await;
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, alice_token) = http.register("alice", PASSWORD).await;
        let (bob, _) = http.register("bob", PASSWORD).await;
        let (carol, _) = http.register("carol", PASSWORD).await;
        let out = server.admin_create_user("root", PASSWORD, true).await;
        assert!(out.status.success(), "{out:?}");
        let root = http.login("root", PASSWORD).await;

        // A room with a reported message, and a file of alice's.
        let room = http
            .create_room(
                &alice_token,
                &json!({ "name": "Ward 7 handover", "preset": "private_chat" }),
            )
            .await;
        let sent = http
            .put_json(
                &format!(
                    "/_matrix/client/v3/rooms/{}/send/m.room.message/t1",
                    enc(&room)
                ),
                Some(&alice_token),
                &json!({ "msgtype": "m.text", "body": "bed 4 needs review" }),
            )
            .await
            .ok();
        let event_id = sent["event_id"].as_str().unwrap().to_owned();
        http.post_json(
            &format!(
                "/_matrix/client/v3/rooms/{}/report/{}",
                enc(&room),
                enc(&event_id)
            ),
            Some(&alice_token),
            &json!({ "reason": "wrong patient in this thread", "score": -100 }),
        )
        .await
        .ok();
        let up = http
            .request(
                "POST",
                "/_matrix/media/v3/upload?filename=notes.bin",
                Some(&alice_token),
                Some(("application/octet-stream", b"ward notes".to_vec())),
            )
            .await
            .ok();
        let mxc = up["content_uri"].as_str().unwrap().to_owned();
        // A room to delete through the UI.
        let doomed = http
            .create_room(
                &alice_token,
                &json!({ "name": "Ward 9 closed", "preset": "private_chat" }),
            )
            .await;
        http.put_json(
            &format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/d1",
                enc(&doomed)
            ),
            Some(&alice_token),
            &json!({ "msgtype": "m.text", "body": "UIDELETE-MARKER" }),
        )
        .await
        .ok();
        let media_id = mxc.rsplit('/').next().unwrap().to_owned();
        let download = format!("/_matrix/client/v1/media/download/localhost/{media_id}");
        assert_eq!(http.get(&download, Some(&alice_token)).await.status, 200);

        let shots = repo_root().join("target/e2e-artifacts/admin-ui");
        let run = tokio::process::Command::new("node")
            .arg(repo_root().join("tests/tools/admin_ui.js"))
            .env("NODE_PATH", &modules)
            .env("UI_DIR", ui_dir())
            .env("HS_URL", server.url())
            .env("ADMIN_USER", "root")
            .env("ADMIN_PASSWORD", PASSWORD)
            .env("SHOTS_DIR", &shots)
            .env("ROOM_NAME", "Ward 7 handover")
            .env("DEACTIVATE_USER", &carol)
            .env("LOCK_USER", &bob)
            .env("MEDIA_USER", &alice)
            .env("MEDIA_ID", &media_id)
            .env("REPORT_REASON", "wrong patient in this thread")
            .env("DELETE_ROOM_ID", &doomed)
            .output()
            .await
            .expect("run node");
        println!("admin UI screenshots: {}", shots.display());
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        let result: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no result line\nstdout: {stdout}\nstderr: {stderr}"));
        assert!(
            run.status.success() && result["ok"] == true,
            "admin UI run failed: {result:#}\nstderr: {stderr}"
        );
        assert_eq!(result["steps"].as_array().unwrap().len(), 8, "{result}");

        // Each action, checked through the API.
        let user = |id: &str| format!("/_synapse/admin/v2/users/{}", enc(id));
        let c = http.get(&user(&carol), Some(&root)).await.ok();
        assert_eq!(c["deactivated"], 1, "{c}");
        let b = http.get(&user(&bob), Some(&root)).await.ok();
        assert_eq!(b["locked"], true, "{b}");
        http.post_json(
            "/_matrix/client/v3/login",
            None,
            &login_body("bob", PASSWORD),
        )
        .await
        .assert_error(401, &["M_USER_LOCKED"]);
        let media = http
            .get(
                &format!("/_synapse/admin/v1/users/{}/media", enc(&alice)),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(media["media"][0]["media_id"], media_id.as_str());
        assert_eq!(media["media"][0]["quarantined_by"], "@root:localhost");
        http.get(&download, Some(&alice_token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        // The room deleted through the UI: its job completes and the room is gone.
        let delete_id = result["delete_id"].as_str().expect("delete_id").to_owned();
        let status = handover_e2e::account::eventually(60, "the UI's deletion", || async {
            let s = http
                .get(
                    &format!("/_synapse/admin/v2/rooms/delete_status/{delete_id}"),
                    Some(&root),
                )
                .await
                .ok();
            (s["status"] == "complete" || s["status"] == "failed").then_some(s)
        })
        .await;
        assert_eq!(status["status"], "complete", "{status}");
        assert_eq!(status["room_id"], doomed.as_str());
        assert_eq!(
            status["shutdown_room"]["kicked_users"],
            json!([alice.as_str()])
        );
        http.get(&format!("/_synapse/admin/v1/rooms/{}", enc(&doomed)), Some(&root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        assert!(!server.db_contains("UIDELETE-MARKER"));

        // The report was read through the UI: the read is in the audit trail.
        let file = server.dir().join("audit-ui.jsonl");
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
        let trail = std::fs::read_to_string(&file).unwrap();
        let read = trail
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|r| r["action"] == "admin.report.get" && r["actor"] == "@root:localhost");
        assert!(read, "no admin.report.get by root in the trail:\n{trail}");
    })
    .await;
}
