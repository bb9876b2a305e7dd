//! The NHS rule set and the audit trail, through `Services`: refusals name their rule, reach
//! the client as M_FORBIDDEN and are audited; the trail records logins without the password.

use std::sync::Arc;

use handover_compliance::{Outcome, to_json_line};
use handover_policy::NhsPolicy;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use serde_json::json;

use super::audit::action;
use super::rooms::{CreateRoomParams, EventSpec};
use super::test_util::{room, user};
use super::users::test_login;
use super::{Services, test_services_with_policy};
use crate::error::Error;

fn nhs() -> (Services, tempfile::TempDir) {
    let (s, _store, dir) = test_services_with_policy(Arc::new(NhsPolicy::default()));
    (s, dir)
}

fn params(name: Option<&str>, topic: Option<&str>) -> CreateRoomParams {
    CreateRoomParams {
        version: None,
        preset: None,
        is_public: false,
        name: name.map(str::to_owned),
        topic: topic.map(str::to_owned),
        alias_localpart: None,
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    }
}

/// Forbidden, naming `rule`.
fn assert_denied(e: Error, rule: &str) {
    assert!(matches!(e.kind(), Some(ErrorKind::Forbidden)), "{e}");
    assert!(e.to_string().contains(&format!("`{rule}`")), "{e}");
}

/// The last audit entry is a denial of `rule` at `hook` by `actor`.
async fn assert_denial_audited(s: &Services, rule: &str, hook: &str, actor: &str) {
    let all = s.audit.all().await.unwrap();
    let last = all.last().expect("an audit entry");
    assert_eq!(last.action, action::POLICY_DENIAL);
    assert_eq!(last.outcome, Outcome::Denied);
    assert_eq!(last.rule.as_deref(), Some(rule));
    assert_eq!(last.details["hook"], hook);
    assert_eq!(last.actor, actor);
    assert!(
        !to_json_line(last).contains("9434765919") && !to_json_line(last).contains("476 5919"),
        "the trail never holds the number itself"
    );
}

const META: &str = "nhs_number_in_metadata";

#[tokio::test]
async fn room_name_with_nhs_number_is_refused_and_audited() {
    let (s, _d) = nhs();
    let alice = user(&s, "alice").await;
    let err = s
        .rooms
        .create_room(&alice, params(Some("Bed 4 9434765919"), None))
        .await
        .unwrap_err();
    assert_denied(err, META);
    assert_denial_audited(&s, META, "check_event", alice.as_str()).await;
    assert!(s.rooms.joined_rooms(&alice).await.unwrap().is_empty());
}

#[tokio::test]
async fn topic_with_spaced_nhs_number_is_refused() {
    let (s, _d) = nhs();
    let alice = user(&s, "alice").await;
    let err = s
        .rooms
        .create_room(&alice, params(Some("Ward 7"), Some("Pt 943 476 5919")))
        .await
        .unwrap_err();
    assert_denied(err, META);
    // And later, as a state event in an existing room.
    let room_id = room(&s, &alice, "Ward 7", false).await;
    let spec = EventSpec::state(
        StateEventType::RoomTopic,
        "",
        json!({"topic": "943-476-5919"}),
    );
    let err = s
        .rooms
        .send_state(&room_id, &alice, spec)
        .await
        .unwrap_err();
    assert_denied(err, META);
    assert_denial_audited(&s, META, "check_event", alice.as_str()).await;
}

#[tokio::test]
async fn display_name_with_nhs_number_is_refused() {
    let (s, _d) = nhs();
    let (me, _) = test_login(&s.users, "alice", "correct horse").await;
    let uid = me.user_id.clone();
    let err = s
        .accounts
        .set_displayname(&me, &uid, Some("Pt 9434765919".into()))
        .await
        .unwrap_err();
    assert_denied(err, META);
    assert_denial_audited(&s, META, "check_profile_update", uid.as_str()).await;
    let p = s.users.get_profile(&uid).await.unwrap();
    assert_eq!(p.displayname.as_deref(), Some("alice"));
}

#[tokio::test]
async fn invalid_check_digit_passes() {
    let (s, _d) = nhs();
    let (me, _) = test_login(&s.users, "alice", "correct horse").await;
    let uid = me.user_id.clone();
    let room_id = s
        .rooms
        .create_room(
            &uid,
            params(Some("Bed 4 9434765918"), Some("ref 943 476 5918")),
        )
        .await
        .unwrap();
    s.accounts
        .set_displayname(&me, &uid, Some("Bay 9434765918".into()))
        .await
        .unwrap();
    // Unencrypted messages are not checked unless configured.
    let body = EventSpec::new(
        ruma::events::TimelineEventType::RoomMessage,
        json!({"msgtype": "m.text", "body": "NHS 943 476 5919"}),
        None,
    );
    s.rooms.send(&room_id, &uid, body, None).await.unwrap();
    assert!(
        s.audit
            .all()
            .await
            .unwrap()
            .iter()
            .all(|r| r.outcome != Outcome::Denied)
    );
}

#[tokio::test]
async fn messages_are_checked_when_configured() {
    let policy = NhsPolicy {
        check_messages: true,
    };
    let (s, _store, _d) = test_services_with_policy(Arc::new(policy));
    let alice = user(&s, "alice").await;
    let room_id = room(&s, &alice, "Ward 7", false).await;
    let body = EventSpec::new(
        ruma::events::TimelineEventType::RoomMessage,
        json!({"msgtype": "m.text", "body": "NHS 943 476 5919"}),
        None,
    );
    let err = s
        .rooms
        .send(&room_id, &alice, body, None)
        .await
        .unwrap_err();
    assert_denied(err, "nhs_number_in_message");
    assert_denial_audited(&s, "nhs_number_in_message", "check_event", alice.as_str()).await;
}

#[tokio::test]
async fn failed_login_is_audited_without_the_password() {
    let (s, _d) = nhs();
    user(&s, "alice").await;
    let ip = Some("192.0.2.7".parse().unwrap());
    let secret = "Tr0ub4dor&3-not-the-password";
    let err = s.users.login("alice", secret, None, None, ip).await;
    assert!(matches!(
        err.err().unwrap().kind(),
        Some(ErrorKind::Forbidden)
    ));
    let s2 = s
        .users
        .login("@bob:localhost", secret, None, None, ip)
        .await;
    assert!(s2.is_err());
    let ok = s
        .users
        .login("alice", "a long password", None, None, ip)
        .await
        .unwrap();

    let all = s.audit.all().await.unwrap();
    let logins: Vec<_> = all.iter().filter(|r| r.action == action::LOGIN).collect();
    assert_eq!(logins.len(), 3);
    assert_eq!(logins[0].actor, "alice");
    assert_eq!(logins[0].outcome, Outcome::Failure);
    assert_eq!(logins[0].details["ip"], "192.0.2.7");
    assert_eq!(logins[0].details["reason"], "invalid_credentials");
    assert_eq!(logins[1].actor, "@bob:localhost");
    assert_eq!(logins[2].outcome, Outcome::Success);
    assert_eq!(logins[2].actor, "@alice:localhost");
    assert_eq!(logins[2].details["device_id"], ok.device_id.as_str());
    for r in &all {
        let line = to_json_line(r);
        assert!(
            !line.contains(secret) && !line.contains("a long password"),
            "{line}"
        );
        assert!(!line.contains(&ok.access_token), "{line}");
    }
    assert_eq!(
        s.audit.verify().await.unwrap().unwrap().entries,
        all.len() as u64
    );
}

#[tokio::test]
async fn account_and_room_actions_are_audited() {
    let (s, _d) = nhs();
    let (me, _) = test_login(&s.users, "alice", "correct horse").await;
    let bob = user(&s, "bob").await;
    let room_id = room(&s, &me.user_id, "Ward 7", false).await;
    s.rooms
        .invite(&room_id, &me.user_id, &bob, None, false)
        .await
        .unwrap();
    s.users.logout(&me).await.unwrap();
    let all = s.audit.all().await.unwrap();
    let actions: Vec<&str> = all.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            action::REGISTER,
            action::REGISTER,
            action::ROOM_CREATE,
            action::ROOM_INVITE,
            action::LOGOUT
        ]
    );
    assert_eq!(all[2].target.as_deref(), Some(room_id.as_str()));
    assert_eq!(all[3].target.as_deref(), Some(bob.as_str()));
    assert_eq!(all[3].details["room_id"], room_id.as_str());
    assert!(all.iter().all(|r| r.outcome == Outcome::Success));
}
