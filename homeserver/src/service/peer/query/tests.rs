//! Outbound queries that must not reach another server: unlisted servers, directories not
//! exchanged, anonymous requests. (Answers from a real second server: tests/federation_queries_http/.)

use std::sync::Arc;

use handover_policy::{FederationGate, LiveFederationList};
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::{OwnedRoomAliasId, OwnedUserId, ServerName};

use crate::config::Config;
use crate::error::Error;
use crate::service::Services;
use crate::service::rooms::PublicRoomsFilter;
use crate::service::test_util::{room, user};

/// Listed: 127.0.0.1:9 (the discard port: a connection is refused at once).
fn services(edit: impl FnOnce(&mut Config)) -> (Services, tempfile::TempDir) {
    let doc = br#"{"serial":1,"organisations":[{"ods_code":"RRK","servers":["127.0.0.1:9"]}]}"#;
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc, None, None).unwrap()),
    };
    let (store, dir) = crate::store::sqlite::test_store();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    edit(&mut config);
    let s = Services::build(config, store, Arc::new(gate)).unwrap();
    (s, dir)
}

fn parts(e: &Error) -> (StatusCode, ErrorKind, String) {
    match e {
        Error::Matrix {
            status,
            kind,
            message,
        } => (*status, kind.clone(), message.clone()),
        Error::Uiaa(_) => panic!("unexpected UIA"),
    }
}

fn assert_forbidden_by(e: &Error, rule: &str) {
    let (status, kind, message) = parts(e);
    assert_eq!(
        (status, kind),
        (StatusCode::FORBIDDEN, ErrorKind::Forbidden)
    );
    assert!(message.contains(rule), "{message}");
}

#[tokio::test]
async fn unlisted_servers_are_refused_naming_the_rule_and_audited() {
    let (s, _d) = services(|c| c.federation.serve_public_rooms = true);
    let alice = user(&s, "alice").await;
    let bob = OwnedUserId::try_from("@bob:unlisted.example:8448").unwrap();
    assert_forbidden_by(
        &s.query.profile(Some(&alice), &bob).await.unwrap_err(),
        "federation_not_listed",
    );
    let alias = OwnedRoomAliasId::try_from("#ward:unlisted.example:8448").unwrap();
    assert_forbidden_by(
        &s.query
            .resolve_alias(Some(&alice), &alias)
            .await
            .unwrap_err(),
        "federation_not_listed",
    );
    let server = <&ServerName>::try_from("unlisted.example:8448").unwrap();
    let e = s
        .query
        .public_rooms(Some(&alice), Some(server), None, None, &Default::default())
        .await
        .unwrap_err();
    assert_forbidden_by(&e, "federation_not_listed");
    let audit = s.audit.all().await.unwrap();
    let purposes: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "federation.denial")
        .map(|e| e.details["purpose"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(purposes, ["profile", "directory", "public_rooms"]);
}

#[tokio::test]
async fn listed_but_unreachable_server_is_a_502() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    let bob = OwnedUserId::try_from("@bob:127.0.0.1:9").unwrap();
    let (status, kind, message) = parts(&s.query.profile(Some(&alice), &bob).await.unwrap_err());
    assert_eq!(
        (status, kind),
        (StatusCode::BAD_GATEWAY, ErrorKind::Unknown)
    );
    // Names the server, not our network's details.
    assert_eq!(message, "Could not get an answer from 127.0.0.1:9");
}

#[tokio::test]
async fn remote_directories_need_the_switch_and_a_signed_in_user() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    room(&s, &alice, "Pharmacy", true).await;
    let listed = <&ServerName>::try_from("127.0.0.1:9").unwrap();
    let none = PublicRoomsFilter::default();

    // Off (the default): refused before anything is sent, naming the rule, audited.
    let e = s
        .query
        .public_rooms(Some(&alice), Some(listed), None, None, &none)
        .await
        .unwrap_err();
    assert_forbidden_by(&e, "public_rooms_not_federated");
    let audit = s.audit.all().await.unwrap();
    let d = audit
        .iter()
        .find(|e| e.rule.as_deref() == Some("public_rooms_not_federated"))
        .expect("audited");
    assert_eq!(
        (d.actor.as_str(), d.target.as_deref()),
        (alice.as_str(), Some("127.0.0.1:9"))
    );
    assert!(
        !audit.iter().any(|e| e.action == "federation.denial"),
        "the gate was never asked: nothing was sent"
    );

    // Anonymous: another server's directory is never fetched.
    let (s, _d) = services(|c| c.federation.serve_public_rooms = true);
    let e = s
        .query
        .public_rooms(None, Some(listed), None, None, &none)
        .await
        .unwrap_err();
    assert_eq!(parts(&e).0, StatusCode::UNAUTHORIZED, "{}", parts(&e).2);

    // Our own name, or none: our directory, switch or not.
    let alice = user(&s, "alice").await;
    room(&s, &alice, "Pharmacy", true).await;
    let own = <&ServerName>::try_from("localhost").unwrap();
    for server in [None, Some(own)] {
        let page = s
            .query
            .public_rooms(None, server, None, None, &none)
            .await
            .unwrap();
        assert_eq!(page.chunk.len(), 1);
    }
}

#[tokio::test]
async fn local_users_and_aliases_never_leave_the_server() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    // Anonymous callers may read ours (as before) ...
    assert_eq!(
        s.query
            .profile(None, &alice)
            .await
            .unwrap()
            .displayname
            .as_deref(),
        Some("alice")
    );
    let nobody = OwnedUserId::try_from("@nobody:localhost").unwrap();
    assert_eq!(
        parts(&s.query.profile(None, &nobody).await.unwrap_err()).0,
        StatusCode::NOT_FOUND
    );
    let r = room(&s, &alice, "Ward", false).await;
    let alias = OwnedRoomAliasId::try_from("#ward:localhost").unwrap();
    s.rooms.set_alias(&alias, &r, &alice).await.unwrap();
    let (room_id, servers) = s.query.resolve_alias(None, &alias).await.unwrap();
    assert_eq!(
        (room_id, servers),
        (r, vec!["localhost".try_into().unwrap()])
    );
    // ... but never make us ask another server: a listed one is not asked either.
    let bob = OwnedUserId::try_from("@bob:127.0.0.1:9").unwrap();
    let e = s.query.profile(None, &bob).await.unwrap_err();
    assert_eq!(
        (parts(&e).0, parts(&e).1),
        (StatusCode::UNAUTHORIZED, ErrorKind::MissingToken)
    );
    let remote_alias = OwnedRoomAliasId::try_from("#ward:127.0.0.1:9").unwrap();
    let e = s
        .query
        .resolve_alias(None, &remote_alias)
        .await
        .unwrap_err();
    assert_eq!(parts(&e).0, StatusCode::UNAUTHORIZED);
    assert!(
        s.audit
            .all()
            .await
            .unwrap()
            .iter()
            .all(|e| e.action != "federation.denial")
    );
}
