//! Subject-access request export and erasure through the real binary (docs/GOVERNANCE.md,
//! "Subject-access requests and erasure"): a user sends messages, uploads a file and is
//! mentioned; `handover admin sar` writes a ZIP, unpacked here with `unzip` (scripts/test-e2e.sh
//! installs it); no token, password or password hash is anywhere in it; the export is audited.

use handover_e2e::*;
use serde_json::Value;

fn unzip(zip: &std::path::Path, into: &std::path::Path) {
    let out = std::process::Command::new("unzip")
        .args(["-q", "-o"])
        .arg(zip)
        .arg("-d")
        .arg(into)
        .output()
        .unwrap_or_else(|e| {
            panic!("the `unzip` command is needed ({e}); scripts/test-e2e.sh installs it")
        });
    assert!(out.status.success(), "unzip: {out:?}");
}

fn read_json(dir: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sar_export_holds_the_persons_data_and_no_secrets_then_erasure_is_recorded() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, token) = http.register("alice", PASSWORD).await;
        let (bob, bob_token) = http.register("bob", PASSWORD).await;
        let room = http
            .create_room(
                &bob_token,
                &json!({ "preset": "private_chat", "invite": [alice] }),
            )
            .await;
        http.post_json(
            &format!("/_matrix/client/v3/rooms/{}/join", enc(&room)),
            Some(&token),
            &json!({}),
        )
        .await
        .ok();
        let send = |tok: &str, txn: &str, content: Value| {
            let (http, room, tok, txn) =
                (http.clone(), room.clone(), tok.to_owned(), txn.to_owned());
            async move {
                http.put_json(
                    &format!(
                        "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
                        enc(&room)
                    ),
                    Some(&tok),
                    &content,
                )
                .await
                .ok();
            }
        };
        send(
            &token,
            "a1",
            json!({ "msgtype": "m.text", "body": "SAR-MARKER bed 4 handover" }),
        )
        .await;
        let up = http
            .request(
                "POST",
                "/_matrix/media/v3/upload?filename=obs-chart.txt",
                Some(&token),
                Some(("text/plain", b"SAR-FILE obs 2-hourly".to_vec())),
            )
            .await
            .ok();
        let mxc = up["content_uri"].as_str().unwrap().to_owned();
        send(
            &token,
            "a2",
            json!({ "msgtype": "m.file", "body": "obs-chart.txt", "url": mxc }),
        )
        .await;
        send(
            &bob_token,
            "b1",
            json!({ "msgtype": "m.text", "body": "thanks @alice:localhost SAR-MENTION",
                    "m.mentions": { "user_ids": [alice] } }),
        )
        .await;
        send(
            &bob_token,
            "b2",
            json!({ "msgtype": "m.text", "body": "SAR-OTHER not about her" }),
        )
        .await;

        let zip = server.dir().join("alice-sar.zip");
        let out = server
            .cli(&["admin", "sar", &alice, "--out", zip.to_str().unwrap()])
            .await;
        assert!(out.status.success(), "{out:?}");
        // Never overwritten.
        let again = server
            .cli(&["admin", "sar", &alice, "--out", zip.to_str().unwrap()])
            .await;
        assert!(!again.status.success());

        let dir = server.dir().join("alice-sar");
        unzip(&zip, &dir);
        assert_eq!(read_json(&dir, "account.json")["user_id"], alice.as_str());
        let sessions = read_json(&dir, "sessions.json");
        assert!(!sessions.as_array().unwrap().is_empty(), "{sessions}");
        let rooms = read_json(&dir, "rooms.json");
        assert!(
            rooms
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["room_id"] == room.as_str()),
            "{rooms}"
        );
        let sent = std::fs::read_to_string(dir.join("events_sent.json")).unwrap();
        assert!(
            sent.contains("SAR-MARKER bed 4 handover") && sent.contains(&mxc),
            "{sent}"
        );
        let mentions = std::fs::read_to_string(dir.join("events_mentioning.json")).unwrap();
        assert!(mentions.contains("SAR-MENTION"), "{mentions}");
        assert!(!mentions.contains("SAR-OTHER") && !sent.contains("SAR-OTHER"));
        let media = read_json(&dir, "media.json");
        let file = media[0]["file"].as_str().unwrap();
        assert_eq!(
            std::fs::read(dir.join(file)).unwrap(),
            b"SAR-FILE obs 2-hourly"
        );
        let audit = read_json(&dir, "audit.json");
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "register" && e["actor"] == alice.as_str())
        );
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(
            html.contains(&alice) && html.contains("SAR-MARKER"),
            "index.html"
        );
        assert!(
            !html.contains("<script") && !html.contains("http://") && !html.contains("https://")
        );

        // No token, password or password hash: not in the ZIP's bytes, not in any file in it.
        let hash = std::process::Command::new("sqlite3")
            .arg(server.data_dir().join("handover.db"))
            .arg(format!(
                "SELECT password_hash FROM users WHERE user_id = '{alice}'"
            ))
            .output()
            .expect("sqlite3");
        let phc = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
        assert!(phc.starts_with("$argon2"), "{phc}");
        let mut blobs = vec![std::fs::read(&zip).unwrap()];
        for e in std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("media")).unwrap())
        {
            let p = e.unwrap().path();
            if p.is_file() {
                blobs.push(std::fs::read(p).unwrap());
            }
        }
        for secret in [
            token.as_str(),
            bob_token.as_str(),
            PASSWORD,
            phc.as_str(),
            "$argon2",
        ] {
            for b in &blobs {
                assert!(
                    !b.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "a secret in the export"
                );
            }
        }

        // Erasure on request: the account is gone, the exemption recorded in the audit entry.
        let out = server
            .cli(&["admin", "erase", &alice, "--reason", "ticket IG-42"])
            .await;
        assert!(out.status.success(), "{out:?}");
        http.get("/_matrix/client/v3/account/whoami", Some(&token))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);
        let export = server.dir().join("audit.jsonl");
        let out = server
            .cli(&[
                "audit",
                "export",
                "--since",
                "2000-01-01",
                "--until",
                "2100-01-01",
                "--out",
                export.to_str().unwrap(),
            ])
            .await;
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<Value> = std::fs::read_to_string(&export)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let sar = lines
            .iter()
            .find(|e| e["action"] == "sar.export")
            .expect("sar.export audited");
        assert_eq!(sar["target"], alice.as_str());
        assert_eq!(sar["actor"], "admin-cli");
        let erase = lines
            .iter()
            .find(|e| e["action"] == "admin.user.erase")
            .expect("erasure audited");
        assert_eq!(erase["details"]["reason"], "ticket IG-42");
        assert!(
            erase["details"]["kept"].as_array().unwrap().len() >= 3,
            "{erase}"
        );
        // The chain still verifies.
        let out = server.cli(&["audit", "verify"]).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let _ = bob;
    })
    .await;
}
