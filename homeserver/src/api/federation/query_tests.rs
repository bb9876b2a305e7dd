//! Inbound profile, directory and public room queries from a listed peer.

use ruma::{OwnedRoomAliasId, ServerName};
use serde_json::json;

use super::test_peer::{PEER, q, room_with_peer, start};
use crate::service::test_util::{room, user};
use crate::store::users::UserStore;

#[tokio::test]
async fn profile_answers_local_users_only_and_respects_the_field() {
    let p = start(|_| {}).await;
    let alice = user(&p.services, "alice").await;
    p.store
        .set_profile(alice.as_str(), None, Some(Some("mxc://localhost/avatar1")))
        .unwrap();
    let path = |user: &str, field: Option<&str>| {
        let mut s = format!("/_matrix/federation/v1/query/profile?user_id={}", q(user));
        if let Some(f) = field {
            s += &format!("&field={}", q(f));
        }
        s
    };

    let r = p.call("GET", &path(alice.as_str(), None), None).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        r.json(),
        json!({ "displayname": "alice", "avatar_url": "mxc://localhost/avatar1" })
    );
    let r = p
        .call("GET", &path(alice.as_str(), Some("displayname")), None)
        .await;
    assert_eq!(r.json(), json!({ "displayname": "alice" }));
    let r = p
        .call("GET", &path(alice.as_str(), Some("avatar_url")), None)
        .await;
    assert_eq!(r.json(), json!({ "avatar_url": "mxc://localhost/avatar1" }));
    // Extended fields (spec v1.16) are part of the answer, alone when asked for.
    use crate::store::profile_fields::ProfileFieldStore;
    p.store
        .set_profile_field(
            alice.as_str(),
            "org.example.job",
            r#"{"title":"Registrar"}"#,
            65536,
        )
        .unwrap();
    let r = p.call("GET", &path(alice.as_str(), None), None).await;
    assert_eq!(r.json()["org.example.job"], json!({ "title": "Registrar" }));
    let r = p
        .call("GET", &path(alice.as_str(), Some("org.example.job")), None)
        .await;
    assert_eq!(
        r.json(),
        json!({ "org.example.job": { "title": "Registrar" } })
    );
    // A field not set, an unknown user and another server's user: 404.
    for path in [
        path(alice.as_str(), Some("m.tz")),
        path("@nobody:localhost", None),
        path(&format!("@someone:{PEER}"), None),
    ] {
        let r = p.call("GET", &path, None).await;
        assert_eq!(
            (r.status, r.json()["errcode"].as_str()),
            (404, Some("M_NOT_FOUND")),
            "{path}"
        );
    }
    // Unsigned: 401.
    assert_eq!(
        p.call_unsigned("GET", &path(alice.as_str(), None)).await,
        401
    );
}

#[tokio::test]
async fn directory_resolves_our_aliases_with_the_servers_in_the_room() {
    let p = start(|_| {}).await;
    let alice = user(&p.services, "alice").await;
    let r_id = room(&p.services, &alice, "Ward 7", false).await;
    let alias = OwnedRoomAliasId::try_from("#ward7:localhost").unwrap();
    p.services
        .rooms
        .set_alias(&alias, &r_id, &alice)
        .await
        .unwrap();
    let path = |a: &str| format!("/_matrix/federation/v1/query/directory?room_alias={}", q(a));

    let r = p.call("GET", &path(alias.as_str()), None).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        r.json(),
        json!({ "room_id": r_id, "servers": ["localhost"] })
    );

    // A room the peer's server has a member in lists the peer too (ours first).
    let shared = room_with_peer(&p.services, &alice, "Shared").await;
    let alias2 = OwnedRoomAliasId::try_from("#shared:localhost").unwrap();
    p.services
        .rooms
        .set_alias(&alias2, &shared, &alice)
        .await
        .unwrap();
    let r = p.call("GET", &path(alias2.as_str()), None).await;
    assert_eq!(
        r.json(),
        json!({ "room_id": shared, "servers": ["localhost", PEER] })
    );

    for missing in ["#nope:localhost", "#ward7:other.nhs.uk"] {
        let r = p.call("GET", &path(missing), None).await;
        assert_eq!(
            (r.status, r.json()["errcode"].as_str()),
            (404, Some("M_NOT_FOUND")),
            "{missing}"
        );
    }
}

#[tokio::test]
async fn public_rooms_are_refused_by_default_naming_the_rule_and_audited() {
    let p = start(|_| {}).await;
    let alice = user(&p.services, "alice").await;
    room(&p.services, &alice, "Pharmacy", true).await;
    for (method, body) in [("GET", None), ("POST", Some(json!({ "limit": 5 })))] {
        let r = p
            .call(method, "/_matrix/federation/v1/publicRooms", body)
            .await;
        assert_eq!(r.status, 403, "{method}");
        assert_eq!(r.json()["errcode"], "M_FORBIDDEN");
        let msg = r.json()["error"].as_str().unwrap().to_owned();
        assert!(msg.contains("public_rooms_not_federated"), "{msg}");
    }
    let audit = p.services.audit.all().await.unwrap();
    let denial = audit
        .iter()
        .find(|e| e.rule.as_deref() == Some("public_rooms_not_federated"))
        .expect("audited");
    assert_eq!(denial.actor, PEER);
}

#[tokio::test]
async fn public_rooms_when_enabled_list_our_published_rooms() {
    let p = start(|c| c.federation.serve_public_rooms = true).await;
    let alice = user(&p.services, "alice").await;
    let pharmacy = room(&p.services, &alice, "Pharmacy", true).await;
    room(&p.services, &alice, "Theatre list", true).await;
    room(&p.services, &alice, "Private", false).await;

    let r = p
        .call("GET", "/_matrix/federation/v1/publicRooms?limit=1", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let body = r.json();
    assert_eq!(body["chunk"].as_array().unwrap().len(), 1);
    assert_eq!(body["total_room_count_estimate"], 2);
    assert!(body["next_batch"].is_string());

    let r = p
        .call(
            "POST",
            "/_matrix/federation/v1/publicRooms",
            Some(json!({ "filter": { "generic_search_term": "pharm" } })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let chunk = r.json()["chunk"].as_array().unwrap().clone();
    assert_eq!(chunk.len(), 1);
    assert_eq!(chunk[0]["room_id"], pharmacy.as_str());
    assert_eq!(chunk[0]["name"], "Pharmacy");

    // An unlisted origin is still refused by the federation list first.
    let other = <&ServerName>::try_from("127.0.0.2:9").unwrap();
    let r = p
        .call_as(other, "GET", "/_matrix/federation/v1/publicRooms", None)
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("federation_not_listed")
    );
}
