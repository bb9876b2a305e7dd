//! The push endpoints over real HTTP: routing of every path, status codes and errcodes.
//! (Rule, count and delivery behaviour is tested beside the service.)

use std::net::SocketAddr;
use std::sync::Arc;

use handover::config::Config;
use handover::service::Services;
use handover::store::sqlite::SqliteStore;
use serde_json::{Value, json};

struct Server {
    base: String,
    token: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let store = SqliteStore::open(&dir.path().join("t.db"), 2).unwrap();
    let services = Services::build(config, store, Arc::new(handover_policy::AllowAll)).unwrap();
    let alice = services
        .users
        .create_user("alice", None, false, true)
        .await
        .unwrap();
    let token = services
        .users
        .create_session(&alice, None, None)
        .await
        .unwrap()
        .access_token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = handover::server::app(services).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        base: format!("http://{addr}/_matrix/client/v3"),
        token,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn push_rules_over_http() {
    let s = start().await;
    let (st, all) = s.call("GET", "/pushrules/", None).await;
    assert_eq!(st, 200);
    assert!(all["global"]["override"].as_array().unwrap().len() > 1);
    let (st, global) = s.call("GET", "/pushrules/global/", None).await;
    assert_eq!((st, &global), (200, &all["global"]));

    let rule = json!({ "pattern": "cake*lie", "actions": ["notify"] });
    let (st, _) = s
        .call("PUT", "/pushrules/global/content/cake", Some(rule.clone()))
        .await;
    assert_eq!(st, 200);
    let (st, got) = s.call("GET", "/pushrules/global/content/cake", None).await;
    assert_eq!((st, &got["pattern"]), (200, &json!("cake*lie")));
    let (st, _) = s
        .call(
            "PUT",
            "/pushrules/global/content/pie?after=cake",
            Some(rule.clone()),
        )
        .await;
    assert_eq!(st, 200);
    let (st, e) = s
        .call(
            "PUT",
            "/pushrules/global/content/tart?before=nope",
            Some(rule.clone()),
        )
        .await;
    assert_eq!((st, &e["errcode"]), (400, &json!("M_UNKNOWN")));
    let conditional = json!({ "conditions": [], "actions": ["notify"] });
    let (st, e) = s
        .call(
            "PUT",
            "/pushrules/global/override/.m.rule.mine",
            Some(conditional),
        )
        .await;
    assert_eq!((st, &e["errcode"]), (400, &json!("M_INVALID_PARAM")));

    let path = "/pushrules/global/content/cake/enabled";
    let (st, _) = s.call("PUT", path, Some(json!({ "enabled": false }))).await;
    assert_eq!(st, 200);
    assert_eq!(
        s.call("GET", path, None).await,
        (200, json!({ "enabled": false }))
    );
    let path = "/pushrules/global/content/cake/actions";
    let (st, _) = s.call("PUT", path, Some(json!({ "actions": [] }))).await;
    assert_eq!(st, 200);
    assert_eq!(
        s.call("GET", path, None).await,
        (200, json!({ "actions": [] }))
    );

    let (st, _) = s
        .call("DELETE", "/pushrules/global/content/cake", None)
        .await;
    assert_eq!(st, 200);
    let (st, e) = s.call("GET", "/pushrules/global/content/cake", None).await;
    assert_eq!((st, &e["errcode"]), (404, &json!("M_NOT_FOUND")));
    let (st, e) = s
        .call("GET", "/pushrules/global/content/cake/enabled", None)
        .await;
    assert_eq!((st, &e["errcode"]), (404, &json!("M_NOT_FOUND")));
    let (st, e) = s
        .call("DELETE", "/pushrules/global/override/.m.rule.master", None)
        .await;
    assert_eq!((st, &e["errcode"]), (400, &json!("M_INVALID_PARAM")));
}

#[tokio::test]
async fn pushers_and_notifications_over_http() {
    let s = start().await;
    assert_eq!(
        s.call("GET", "/pushers", None).await,
        (200, json!({ "pushers": [] }))
    );
    let pusher = json!({
        "kind": "http", "app_id": "uk.nhs.handover", "pushkey": "k",
        "app_display_name": "Handover", "device_display_name": "Phone", "lang": "en",
        "data": { "url": "https://push.example/_matrix/push/v1/notify", "format": "event_id_only" },
    });
    let (st, _) = s.call("POST", "/pushers/set", Some(pusher)).await;
    assert_eq!(st, 200);
    let (st, got) = s.call("GET", "/pushers", None).await;
    assert_eq!((st, &got["pushers"][0]["pushkey"]), (200, &json!("k")));
    assert_eq!(got["pushers"][0]["data"]["format"], "event_id_only");
    let delete = json!({ "kind": null, "app_id": "uk.nhs.handover", "pushkey": "k" });
    let (st, _) = s.call("POST", "/pushers/set", Some(delete)).await;
    assert_eq!(st, 200);
    assert_eq!(
        s.call("GET", "/pushers", None).await,
        (200, json!({ "pushers": [] }))
    );
    let bad = json!({
        "kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A",
        "device_display_name": "D", "lang": "en", "data": { "url": "https://x/other" },
    });
    let (st, e) = s.call("POST", "/pushers/set", Some(bad)).await;
    assert_eq!((st, &e["errcode"]), (400, &json!("M_INVALID_PARAM")));

    let (st, n) = s
        .call("GET", "/notifications?limit=5&only=highlight", None)
        .await;
    assert_eq!((st, &n["notifications"]), (200, &json!([])));
    let (st, e) = s.call("GET", "/notifications?from=zz", None).await;
    assert_eq!((st, &e["errcode"]), (400, &json!("M_INVALID_PARAM")));
}
