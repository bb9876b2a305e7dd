//! Storage trouble (issue 9): the database's file system fills up, then has room again. Writes
//! fail with a clear error while it is full (no panic, no crash, nothing acknowledged that is not
//! stored), reads keep working, and the server recovers by itself when space returns; the
//! database passes SQLite's integrity check afterwards. The data directory is a small tmpfs the
//! test mounts (it runs as root, as CI does).

use std::path::{Path, PathBuf};
use std::process::Command;

use handover_e2e::*;

const V3: &str = "/_matrix/client/v3";

/// A tmpfs of `mib` MiB mounted at `at` for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u32) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .expect("the mount command");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` (leaving a few KiB) with a file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    use std::io::Write;
    while f.write_all(&chunk).is_ok() {}
    let small = vec![0u8; 1024];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    filler
}

fn send_path(room: &str, txn: &str) -> String {
    format!("{V3}/rooms/{}/send/m.room.message/{txn}", enc(room))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_clear_errors_and_the_server_recovers() {
    with_timeout(180, async {
        let dir = tempfile::Builder::new()
            .prefix("handover-e2e-full-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let _fs = Tmpfs::mount(&data, 16);
        let config = dir.path().join("handover.toml");
        std::fs::write(&config, ServerOptions::default().to_toml(&data)).unwrap();
        let mut server = TestServer::start_in(dir, config).await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let t = Some(token.as_str());
        let room = http
            .create_room(&token, &json!({"preset": "public_chat"}))
            .await;
        let before = http
            .put_json(
                &send_path(&room, "a"),
                t,
                &json!({"msgtype": "m.text", "body": "before"}),
            )
            .await
            .ok();
        let before_id = before["event_id"].as_str().unwrap().to_owned();

        let filler = fill(&data);
        let big = "x".repeat(32 * 1024);
        let mut refused = 0;
        let mut stored = Vec::new();
        for i in 0..20 {
            let r = http
                .put_json(
                    &send_path(&room, &format!("full{i}")),
                    t,
                    &json!({"msgtype": "m.text", "body": big}),
                )
                .await;
            match r.status {
                200 => stored.push(r.json()["event_id"].as_str().unwrap().to_owned()),
                _ => {
                    refused += 1;
                    assert!(
                        r.status == 503 || r.status == 507,
                        "{}: {}",
                        r.status,
                        r.text()
                    );
                    assert_eq!(r.errcode().as_deref(), Some("M_UNKNOWN"), "{}", r.text());
                    assert!(
                        r.text().contains("storage is full"),
                        "a clear error: {}",
                        r.text()
                    );
                }
            }
        }
        assert!(refused > 0, "a full disk refuses writes");
        assert!(server.is_running(), "no crash on a full disk");
        // Reads still work.
        let r = http
            .get(
                &format!("{V3}/rooms/{}/event/{}", enc(&room), enc(&before_id)),
                t,
            )
            .await;
        assert_eq!(r.ok()["content"]["body"], "before");

        std::fs::remove_file(&filler).unwrap();
        // Space is back: writes work again without a restart.
        let mut ok = None;
        for i in 0..50 {
            let r = http
                .put_json(
                    &send_path(&room, &format!("after{i}")),
                    t,
                    &json!({"msgtype": "m.text", "body": "after"}),
                )
                .await;
            if r.status == 200 {
                ok = Some(r.json()["event_id"].as_str().unwrap().to_owned());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let after = ok.expect("writes work again once there is space");

        for id in stored.iter().chain([&after, &before_id]) {
            http.get(&format!("{V3}/rooms/{}/event/{}", enc(&room), enc(id)), t)
                .await
                .ok();
        }
        server.stop().await;
        let out = Command::new("sqlite3")
            .arg(data.join("handover.db"))
            .arg("PRAGMA integrity_check;")
            .output()
            .expect("sqlite3 (scripts/test-e2e.sh installs it)");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{out:?}");
    })
    .await;
}
