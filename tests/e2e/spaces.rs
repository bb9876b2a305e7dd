//! Spaces (issue 14): `GET /_matrix/client/v1/rooms/{roomId}/hierarchy` on one server (order,
//! visibility, pages, the spec's errors) and across two Handovers, where a child room on the
//! other server is filled in through `GET /_matrix/federation/v1/hierarchy/{roomId}`.

use handover_e2e::account::Account;
use handover_e2e::federation::FedNet;
use handover_e2e::*;
use serde_json::Value;

use crate::federation::pair;

fn hierarchy_path(room: &str, query: &str) -> String {
    format!("/_matrix/client/v1/rooms/{}/hierarchy?{query}", enc(room))
}

fn names(v: &Value) -> Vec<String> {
    v["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn create_space(a: &Account, name: &str, preset: &str) -> String {
    a.create_room(&json!({
        "preset": preset, "name": name, "creation_content": {"type": "m.space"}
    }))
    .await
}

async fn add_child(a: &Account, space: &str, child: &str, content: Value) {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.space.child/{}",
        enc(space),
        enc(child)
    );
    a.put(&path, &content).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchy_orders_filters_and_pages_on_one_server() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let alice = Account::register(server.http(), "alice").await;
        let bob = Account::register(server.http(), "bob").await;
        let space = create_space(&alice, "Trust", "public_chat").await;
        let ward = alice.create_public_room("Ward 7").await;
        let private = alice
            .create_room(&json!({"preset": "private_chat", "name": "Consultants"}))
            .await;
        let server_name = alice.server_name().to_owned();
        add_child(&alice, &space, &private, json!({"via": [server_name]})).await;
        add_child(
            &alice,
            &space,
            &ward,
            json!({"via": [server_name], "order": "a", "suggested": true}),
        )
        .await;
        // No via: not a child.
        add_child(&alice, &space, "!gone:example.org", json!({})).await;

        let all = alice.get(&hierarchy_path(&space, "")).await.ok();
        assert_eq!(names(&all), ["Trust", "Ward 7", "Consultants"]);
        assert_eq!(all["rooms"][0]["room_type"], "m.space");
        assert_eq!(
            all["rooms"][0]["children_state"].as_array().unwrap().len(),
            2
        );
        // `join_rule` defaults to public when absent (spec), as ruma writes it.
        assert!(matches!(
            all["rooms"][1].get("join_rule"),
            None | Some(Value::String(_))
        ));
        assert_ne!(all["rooms"][1]["join_rule"], "invite");
        assert_eq!(all["rooms"][2]["join_rule"], "invite");

        // Bob is in no room: the private child is not his to see.
        let bobs = bob.get(&hierarchy_path(&space, "")).await.ok();
        assert_eq!(names(&bobs), ["Trust", "Ward 7"]);
        let suggested = alice
            .get(&hierarchy_path(&space, "suggested_only=true"))
            .await
            .ok();
        assert_eq!(names(&suggested), ["Trust", "Ward 7"]);
        let shallow = alice.get(&hierarchy_path(&space, "max_depth=0")).await.ok();
        assert_eq!(names(&shallow), ["Trust"]);

        // Pages of one room.
        let mut seen = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let q = match &from {
                Some(t) => format!("limit=1&from={}", enc(t)),
                None => "limit=1".into(),
            };
            let page = alice.get(&hierarchy_path(&space, &q)).await.ok();
            seen.extend(names(&page));
            match page["next_batch"].as_str() {
                Some(t) => from = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["Trust", "Ward 7", "Consultants"]);

        // The spec's errors.
        let first = alice.get(&hierarchy_path(&space, "limit=1")).await.ok();
        let token = first["next_batch"].as_str().unwrap();
        let q = format!("limit=1&suggested_only=true&from={}", enc(token));
        alice
            .get(&hierarchy_path(&space, &q))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let q = "from=not-a-token";
        alice
            .get(&hierarchy_path(&space, q))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let secret = create_space(&alice, "Board", "private_chat").await;
        bob.get(&hierarchy_path(&secret, ""))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        bob.get(&hierarchy_path("!nope:example.org", ""))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchy_fills_in_a_child_room_on_another_server() {
    with_timeout(240, async {
        let net = FedNet::new();
        let (a, b) = pair(&net).await;
        let alice = a.register("alice").await;
        let bob = b.register("bob").await;
        let space = create_space(&alice, "Region", "public_chat").await;
        let theirs = bob.create_public_room("Pharmacy at B").await;
        let hidden = bob
            .create_room(&json!({"preset": "private_chat", "name": "B private"}))
            .await;
        add_child(
            &alice,
            &space,
            &theirs,
            json!({"via": [b.name], "order": "1"}),
        )
        .await;
        add_child(
            &alice,
            &space,
            &hidden,
            json!({"via": [b.name], "order": "2"}),
        )
        .await;

        // Alice is in neither of B's rooms: the public one is filled in from B, the private one
        // is not B's to show to another server.
        let got = alice.get(&hierarchy_path(&space, "")).await.ok();
        assert_eq!(names(&got), ["Region", "Pharmacy at B"], "{got}");
        assert_eq!(got["rooms"][1]["room_id"], theirs.as_str());
        assert_eq!(got["rooms"][1]["num_joined_members"], 1);
    })
    .await;
}
