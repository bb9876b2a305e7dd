//! Retention over real HTTP and the admin CLI: the MSC1763 effective-retention endpoint, and
//! `handover admin hold` / `admin purge --dry-run` with their audit entries.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use handover::config::Config;
use handover::service::Services;
use handover::store::sqlite::SqliteStore;
use serde_json::{Value, json};

async fn token(s: &Services, name: &str) -> String {
    let u = s.users.create_user(name, None, false, true).await.unwrap();
    s.users
        .create_session(&u, None, None)
        .await
        .unwrap()
        .access_token
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = c.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let st = res.status().as_u16();
    (st, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn effective_retention_endpoint() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.retention.min_lifetime = Some("1d".into());
    config.retention.max_lifetime = Some("365d".into());
    let store = SqliteStore::open(&dir.path().join("t.db"), 2).unwrap();
    let services = Services::build(config, store, Arc::new(handover_policy::AllowAll)).unwrap();
    let alice = token(&services, "alice").await;
    let eve = token(&services, "eve").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = handover::server::app(services).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = reqwest::Client::new();
    let base = format!("http://{addr}/_matrix/client");
    let (st, created) = call(
        &c,
        reqwest::Method::POST,
        format!("{base}/v3/createRoom"),
        Some(&alice),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{created}");
    let room = created["room_id"].as_str().unwrap().to_owned();
    let url = format!("{base}/unstable/org.matrix.msc1763/rooms/{room}/retention");

    let (st, body) = call(&c, reqwest::Method::GET, url.clone(), Some(&alice), None).await;
    assert_eq!(
        (st, &body),
        // The server's minimum applies to rooms that set none (nothing is purged earlier).
        (
            200,
            &json!({ "max_lifetime": 365u64 * 86_400_000, "min_lifetime": 86_400_000u64 })
        )
    );

    let (st, _) = call(
        &c,
        reqwest::Method::PUT,
        format!("{base}/v3/rooms/{room}/state/m.room.retention/"),
        Some(&alice),
        Some(json!({ "max_lifetime": 60_000, "min_lifetime": 1 })),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = call(&c, reqwest::Method::GET, url.clone(), Some(&alice), None).await;
    assert_eq!(st, 200);
    assert_eq!(
        body,
        json!({ "max_lifetime": 86_400_000u64, "min_lifetime": 86_400_000u64 })
    );

    let (st, body) = call(&c, reqwest::Method::GET, url.clone(), Some(&eve), None).await;
    assert_eq!((st, body["errcode"].as_str()), (403, Some("M_FORBIDDEN")));
    let (st, body) = call(&c, reqwest::Method::GET, url, None, None).await;
    assert_eq!(
        (st, body["errcode"].as_str()),
        (401, Some("M_MISSING_TOKEN"))
    );
}

fn handover(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_handover"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run handover")
}

#[test]
fn hold_and_dry_run_purge_from_the_cli_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "server_name = \"localhost\"\ndata_dir = \"{}\"\n[retention]\ndefault_lifetime = \"30d\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let room = "!ward7:localhost";
    let out = handover(&["admin", "hold", "room", room], &cfg);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hold placed");
    let out = handover(&["admin", "hold", "room", room], &cfg);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "already held");
    let out = handover(&["admin", "hold", "list"], &cfg);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(room),
        "{out:?}"
    );
    assert!(
        !handover(&["admin", "hold", "room", "not-a-room"], &cfg)
            .status
            .success()
    );

    let out = handover(&["admin", "purge", "--dry-run"], &cfg);
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["space_reclaimed"], false);

    let out = handover(&["admin", "hold", "room", room, "--release"], &cfg);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hold released");

    let out = handover(
        &[
            "audit",
            "export",
            "--since",
            "2000-01-01",
            "--until",
            "2100-01-01",
        ],
        &cfg,
    );
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "retention.hold",
            "retention.hold",
            "retention.purge",
            "retention.release"
        ]
    );
    assert_eq!(lines[0]["target"], room);
    assert_eq!(lines[0]["actor"], "admin-cli");
    assert_eq!(lines[2]["details"]["dry_run"], true);
    assert_eq!(handover(&["audit", "verify"], &cfg).status.code(), Some(0));
}
