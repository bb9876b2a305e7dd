//! Retention and legal hold through the real binary and `handover admin purge|hold`
//! (docs/GOVERNANCE.md, "Retention and purge"). Lifetimes are milliseconds here so the tests
//! only wait seconds; "gone" is checked on the raw bytes of the database and the media files.

use std::time::Duration;

use handover_e2e::*;
use serde_json::Value;

struct Fx {
    server: TestServer,
    http: Http,
    token: String,
    room: String,
}

impl Fx {
    async fn new(extra_toml: &str) -> Self {
        let server = TestServer::start_with(ServerOptions {
            extra_toml: extra_toml.into(),
            ..ServerOptions::default()
        })
        .await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let room = http
            .create_room(&token, &json!({ "preset": "public_chat" }))
            .await;
        Fx {
            server,
            http,
            token,
            room,
        }
    }

    async fn state(&self, room: &str, kind: &str, content: Value) {
        self.http
            .put_json(
                &format!("/_matrix/client/v3/rooms/{}/state/{kind}/", enc(room)),
                Some(&self.token),
                &content,
            )
            .await
            .ok();
    }

    async fn send(&self, room: &str, content: Value) -> String {
        let txn = format!("t{}", rand_suffix());
        let r = self
            .http
            .put_json(
                &format!(
                    "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
                    enc(room)
                ),
                Some(&self.token),
                &content,
            )
            .await;
        r.ok()["event_id"].as_str().unwrap().to_owned()
    }

    async fn upload_png(&self) -> String {
        let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8, y as u8, 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        let r = self
            .http
            .request(
                "POST",
                "/_matrix/media/v3/upload",
                Some(&self.token),
                Some(("image/png", out.into_inner())),
            )
            .await;
        r.ok()["content_uri"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    }

    /// `handover admin purge [--dry-run]`: the printed report.
    async fn purge(&self, dry_run: bool) -> Value {
        let mut args = vec!["admin", "purge"];
        if dry_run {
            args.push("--dry-run");
        }
        let out = self.server.cli(&args).await;
        assert!(out.status.success(), "purge failed: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report: {e}: {out:?}"))
    }

    /// Files under the media directory named after `media_id` (original and thumbnails).
    fn media_files(&self, media_id: &str) -> usize {
        fn walk(d: &std::path::Path, id: &str) -> usize {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, id)
                    } else {
                        usize::from(p.to_string_lossy().contains(id))
                    }
                })
                .sum()
        }
        walk(&self.server.data_dir().join("media"), media_id)
    }

    /// Actions of the exported audit trail.
    async fn audit(&self) -> Vec<Value> {
        let out = self
            .server
            .cli(&[
                "audit",
                "export",
                "--since",
                "2000-01-01",
                "--until",
                "2100-01-01",
            ])
            .await;
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn n(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_and_their_files_are_purged_by_the_admin_command() {
    with_timeout(180, async {
        let f = Fx::new("").await;
        f.state(&f.room, "m.room.retention", json!({ "max_lifetime": 1500 })).await;
        // The effective policy: members may read it, others may not.
        let path = format!("/_matrix/client/unstable/org.matrix.msc1763/rooms/{}/retention", enc(&f.room));
        assert_eq!(f.http.get(&path, Some(&f.token)).await.ok(), json!({ "max_lifetime": 1500 }));
        let (_, eve) = f.http.register("eve", PASSWORD).await;
        f.http.get(&path, Some(&eve)).await.assert_error(403, &["M_FORBIDDEN"]);

        let media = f.upload_png().await;
        let text = f.send(&f.room, json!({ "msgtype": "m.text", "body": "MARKER-e2e-plan-bed-4 QuokkaE2ePlan" })).await;
        // Found by search before the purge (the index holds the lower-cased token).
        let search = |term: &'static str| {
            let body = json!({ "search_categories": { "room_events": { "search_term": term } } });
            let (http, token) = (f.http.clone(), f.token.clone());
            async move {
                http.post_json("/_matrix/client/v3/search", Some(&token), &body).await.ok()
                    ["search_categories"]["room_events"]["count"]
                    .clone()
            }
        };
        assert_eq!(search("quokkae2eplan").await, 1);
        f.send(&f.room, json!({ "msgtype": "m.image", "body": "MARKER-e2e-xray", "url": format!("mxc://localhost/{media}") }))
            .await;
        f.state(&f.room, "m.room.topic", json!({ "topic": "current" })).await;
        tokio::time::sleep(Duration::from_millis(2000)).await;

        let dry = f.purge(true).await;
        assert!(n(&dry, "events_deleted") >= 2, "{dry}");
        assert!(dry["event_ids"].as_array().unwrap().iter().any(|e| e == text.as_str()), "{dry}");
        assert_eq!(dry["media_ids"], json!([media]), "{dry}");
        assert!(f.server.db_contains("MARKER-e2e-plan-bed-4"), "a dry run changes nothing");
        assert!(f.media_files(&media) >= 1);

        let done = f.purge(false).await;
        assert!(n(&done, "events_deleted") >= 2, "{done}");
        assert_eq!(n(&done, "media_deleted"), 1, "{done}");
        assert_eq!(done["space_reclaimed"], true, "{done}");
        assert_eq!(search("quokkae2eplan").await, 0, "the purged message left the index");
        for marker in ["MARKER-e2e-plan-bed-4", "MARKER-e2e-xray", "quokkae2eplan"] {
            assert!(!f.server.db_contains(marker), "{marker} still in the database files");
        }
        assert_eq!(f.media_files(&media), 0, "media files left on disk");
        f.http
            .get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&f.room), enc(&text)), Some(&f.token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        f.http
            .get(&format!("/_matrix/client/v1/media/download/localhost/{media}"), Some(&f.token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        // The room still works, and each run (dry ones too) is in the audit trail.
        f.send(&f.room, json!({ "msgtype": "m.text", "body": "after the purge" })).await;
        let purges: Vec<Value> = f.audit().await.into_iter().filter(|e| e["action"] == "retention.purge").collect();
        assert_eq!(purges.len(), 2, "{purges:?}");
        assert!(purges.iter().all(|e| e["actor"] == "admin-cli"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_keeps_a_room_until_released() {
    with_timeout(180, async {
        let f = Fx::new("").await;
        f.state(&f.room, "m.room.retention", json!({ "max_lifetime": 1000 }))
            .await;
        f.send(
            &f.room,
            json!({ "msgtype": "m.text", "body": "MARKER-e2e-held" }),
        )
        .await;
        f.state(&f.room, "m.room.topic", json!({ "topic": "current" }))
            .await;
        let out = f
            .server
            .cli(&["admin", "hold", "room", &f.room, "--reason", "case 42"])
            .await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hold placed");
        let list = f.server.cli(&["admin", "hold", "list"]).await;
        assert!(
            String::from_utf8_lossy(&list.stdout).contains(&f.room),
            "{list:?}"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let r = f.purge(false).await;
        assert_eq!(n(&r, "rooms_held"), 1, "{r}");
        assert_eq!(n(&r, "events_deleted"), 0, "{r}");
        assert!(f.server.db_contains("MARKER-e2e-held"));

        let out = f
            .server
            .cli(&["admin", "hold", "room", &f.room, "--release"])
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hold released",
            "{out:?}"
        );
        let r = f.purge(false).await;
        assert!(n(&r, "events_deleted") >= 1, "{r}");
        assert!(!f.server.db_contains("MARKER-e2e-held"));
        let actions: Vec<String> = f
            .audit()
            .await
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            actions.contains(&"retention.hold".to_owned()),
            "{actions:?}"
        );
        assert!(
            actions.contains(&"retention.release".to_owned()),
            "{actions:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redacted_originals_wait_for_the_rooms_min_lifetime() {
    with_timeout(180, async {
        // Redacted originals would be erased at once; the room's minimum lifetime holds them.
        let f = Fx::new("[retention]\nredacted_grace = \"1ms\"\n").await;
        f.state(&f.room, "m.room.retention", json!({ "min_lifetime": 4000 }))
            .await;
        let path = format!(
            "/_matrix/client/unstable/org.matrix.msc1763/rooms/{}/retention",
            enc(&f.room)
        );
        assert_eq!(
            f.http.get(&path, Some(&f.token)).await.ok(),
            json!({ "min_lifetime": 4000 })
        );
        let ev = f
            .send(
                &f.room,
                json!({ "msgtype": "m.text", "body": "MARKER-e2e-redacted" }),
            )
            .await;
        f.http
            .put_json(
                &format!(
                    "/_matrix/client/v3/rooms/{}/redact/{}/r1",
                    enc(&f.room),
                    enc(&ev)
                ),
                Some(&f.token),
                &json!({}),
            )
            .await
            .ok();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = f.purge(false).await;
        assert_eq!(n(&r, "redacted_erased"), 0, "{r}");
        assert!(n(&r, "min_lifetime_kept") >= 1, "{r}");
        assert!(f.server.db_contains("MARKER-e2e-redacted"));
        tokio::time::sleep(Duration::from_millis(4000)).await;
        let r = f.purge(false).await;
        assert_eq!(n(&r, "redacted_erased"), 1, "{r}");
        assert!(!f.server.db_contains("MARKER-e2e-redacted"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_shared_in_another_room_survives_the_purge() {
    with_timeout(180, async {
        let f = Fx::new("").await;
        f.state(&f.room, "m.room.retention", json!({ "max_lifetime": 1000 }))
            .await;
        let (bob, b) = f.http.register("bob", PASSWORD).await;
        let archive = f
            .http
            .create_room(
                &f.token,
                &json!({ "preset": "public_chat", "invite": [bob] }),
            )
            .await;
        f.http
            .post_json(
                &format!("/_matrix/client/v3/join/{}", enc(&archive)),
                Some(&b),
                &json!({}),
            )
            .await
            .ok();
        let media = f.upload_png().await;
        let url = format!("mxc://localhost/{media}");
        f.send(
            &f.room,
            json!({ "msgtype": "m.image", "body": "MARKER-e2e-first-share", "url": url }),
        )
        .await;
        f.send(
            &archive,
            json!({ "msgtype": "m.image", "body": "kept", "url": url }),
        )
        .await;
        f.state(&f.room, "m.room.topic", json!({ "topic": "current" }))
            .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let r = f.purge(false).await;
        assert!(n(&r, "events_deleted") >= 1, "{r}");
        assert_eq!(n(&r, "media_deleted"), 0, "{r}");
        assert_eq!(n(&r, "media_kept_referenced"), 1, "{r}");
        assert!(!f.server.db_contains("MARKER-e2e-first-share"));
        assert!(f.media_files(&media) >= 1);
        // The archive's members can still open it.
        let got = f
            .http
            .get(
                &format!("/_matrix/client/v1/media/download/localhost/{media}"),
                Some(&b),
            )
            .await;
        assert_eq!(got.status, 200, "{}", got.text());
    })
    .await;
}
