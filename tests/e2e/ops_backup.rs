//! Online backup and restore (issue 15, Operations): `handover admin backup` while the server
//! runs and a user keeps sending, `handover admin restore` into an empty data directory, a
//! second server on the restored data where the user logs in and finds messages and media.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use handover_e2e::account::Account;
use handover_e2e::*;

async fn upload(http: &Http, token: &str, bytes: &[u8]) -> String {
    let r = http
        .request(
            "POST",
            "/_matrix/media/v3/upload?filename=obs.txt",
            Some(token),
            Some(("text/plain", bytes.to_vec())),
        )
        .await;
    let uri = r.ok()["content_uri"].as_str().unwrap().to_owned();
    uri.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_sending_then_restore_and_read() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        let alice = Account::register(server.http(), "alice").await;
        let room = alice
            .create_room(&json!({"preset": "public_chat", "name": "Ward 7"}))
            .await;
        let media_bytes = b"Obs at 09:00: BP 120/80, HR 72".repeat(2000);
        let media_id = upload(&alice.http, &alice.token, &media_bytes).await;
        let mut before = Vec::new();
        for i in 0..20 {
            let body = format!("before {i}");
            alice.send_text(&room, &body).await;
            before.push(body);
        }

        // Sends go on while the backup runs; each acknowledged body is kept in order.
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (a, room, stop) = (alice.http.clone(), room.clone(), stop.clone());
            let token = alice.token.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!("during {i}");
                    let path = format!(
                        "/_matrix/client/v3/rooms/{}/send/m.room.message/d{i}",
                        enc(&room)
                    );
                    let r = a
                        .put_json(
                            &path,
                            Some(&token),
                            &json!({"msgtype": "m.text", "body": body}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text());
                    acked.push(body);
                    i += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                acked
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let backup_dir = tempfile::tempdir().unwrap();
        let dest = backup_dir.path().join("backup-1");
        let out = server
            .cli(&["admin", "backup", dest.to_str().unwrap()])
            .await;
        assert!(
            out.status.success(),
            "backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stop.store(true, Ordering::Relaxed);
        let during = sender.await.unwrap();
        assert!(!during.is_empty(), "sends went on during the backup");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).unwrap()).unwrap();
        let paths: Vec<&str> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"handover.db") && paths.contains(&"signing.key"));
        assert!(paths.iter().any(|p| p.starts_with("media/")), "{paths:?}");
        assert!(manifest["files"][0]["sha256"].as_str().unwrap().len() == 64);
        // The marker `handover doctor` reads.
        assert!(server.data_dir().join("last_backup.json").exists());
        // A second backup never writes into the first.
        let again = server
            .cli(&["admin", "backup", dest.to_str().unwrap()])
            .await;
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

        // Restore refuses a non-empty data directory, and a damaged backup.
        let restore_root = tempfile::Builder::new()
            .prefix("handover-e2e-restored-")
            .tempdir()
            .unwrap();
        let data2 = restore_root.path().join("data");
        let restore = |src: std::path::PathBuf, dir: std::path::PathBuf| async move {
            tokio::process::Command::new(handover_bin())
                .args(["admin", "restore"])
                .arg(&src)
                .arg("--data-dir")
                .arg(&dir)
                .output()
                .await
                .unwrap()
        };
        let busy = restore_root.path().join("busy");
        std::fs::create_dir_all(&busy).unwrap();
        std::fs::write(busy.join("handover.db"), b"live data").unwrap();
        let out = restore(dest.clone(), busy.clone()).await;
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
        assert_eq!(
            std::fs::read(busy.join("handover.db")).unwrap(),
            b"live data"
        );

        let damaged = backup_dir.path().join("damaged");
        copy_tree(&dest, &damaged);
        let media_rel = paths.iter().find(|p| p.starts_with("media/")).unwrap();
        let victim = damaged.join(media_rel);
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&victim, bytes).unwrap();
        let out = restore(damaged, restore_root.path().join("from-damaged")).await;
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(media_rel) && err.contains("damaged"), "{err}");
        assert!(
            !restore_root
                .path()
                .join("from-damaged/handover.db")
                .exists()
        );

        let out = restore(dest.clone(), data2.clone()).await;
        assert!(
            out.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // A second server on the restored data; the first keeps running.
        let config2 = restore_root.path().join("handover.toml");
        std::fs::write(&config2, ServerOptions::default().to_toml(&data2)).unwrap();
        let restored = TestServer::start_in(restore_root, config2).await;
        let http = restored.http();
        let alice2 = Account::login(http.clone(), &alice.user_id, PASSWORD).await;
        let bodies = alice2.bodies(&room, 1000).await;
        for b in &before {
            assert!(bodies.contains(b), "{b} missing after restore");
        }
        // One snapshot: the sends that made it are a prefix of those acknowledged, no gaps.
        let got: Vec<String> = bodies
            .iter()
            .filter(|b| b.starts_with("during "))
            .cloned()
            .collect();
        assert!(
            !got.is_empty(),
            "sends acknowledged before the snapshot are restored"
        );
        assert!(
            during.starts_with(&got),
            "restored sends {got:?} are not a prefix of the acknowledged {during:?}"
        );
        let r = http
            .get(
                &format!("/_matrix/client/v1/media/download/localhost/{media_id}"),
                Some(&alice2.token),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, media_bytes, "the restored media file");
        drop(server);
    })
    .await;
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
