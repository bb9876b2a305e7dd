//! Sliding sync (MSC4186) over real HTTP: the advertisement matrix-sdk looks for, the unstable
//! path, JSON in and out, and `M_UNKNOWN_POS`. (Behaviour is tested beside the service.)

mod common;

use common::start;
use serde_json::json;

const PATH: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

#[tokio::test]
async fn versions_advertise_simplified_sliding_sync() {
    let srv = start().await;
    let (status, body) = srv
        .call_json("GET", "/_matrix/client/versions", false, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["unstable_features"]["org.matrix.simplified_msc3575"],
        true
    );
}

#[tokio::test]
async fn sync_over_http_then_unknown_pos() {
    let srv = start().await;
    let (status, _) = srv.call_json("POST", PATH, true, None).await;
    assert_eq!(status, 200, "an empty body is a valid request");
    let (status, _) = srv.call_json("POST", PATH, false, Some(json!({}))).await;
    assert_eq!(status, 401);
    let (status, room) = srv
        .call_json(
            "POST",
            "/_matrix/client/v3/createRoom",
            true,
            Some(json!({ "name": "Ward 7" })),
        )
        .await;
    assert_eq!(status, 200);
    let room_id = room["room_id"].as_str().unwrap().to_owned();
    let req = json!({
        "conn_id": "room-list",
        "lists": { "all": {
            "ranges": [[0, 10]],
            "timeline_limit": 1,
            "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"]]
        } },
        "extensions": { "to_device": { "enabled": true }, "e2ee": { "enabled": true } }
    });
    let (status, body) = srv.call_json("POST", PATH, true, Some(req.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lists"]["all"]["count"], 1);
    assert_eq!(body["rooms"][&room_id]["name"], "Ward 7");
    assert_eq!(body["rooms"][&room_id]["initial"], true);
    let pos = body["pos"].as_str().unwrap();
    let (status, body) = srv
        .call_json(
            "POST",
            &format!("{PATH}?pos={pos}&timeout=0"),
            true,
            Some(req.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("rooms").is_none(), "nothing new: {body}");
    let (status, body) = srv
        .call_json("POST", &format!("{PATH}?pos=nonsense"), true, Some(req))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errcode"], "M_UNKNOWN_POS");
}
