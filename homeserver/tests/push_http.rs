//! The push endpoints over real HTTP: routing of every path, status codes and errcodes.
//! (Rule, count and delivery behaviour is tested beside the service.)

mod common;

use serde_json::{Value, json};

struct Server(common::Server);

async fn start() -> Server {
    Server(common::start().await)
}

impl Server {
    /// A signed-in JSON call under `/_matrix/client/v3`.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.0
            .call_json(method, &format!("/_matrix/client/v3{path}"), true, body)
            .await
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
