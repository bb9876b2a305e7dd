//! Rooms, invites and identity (docs/GOVERNANCE.md): invite permission config (MSC4155),
//! invites inside the organisation, patient-context rooms and locked display names, through
//! `Services` built with the layers `policy_from_config` builds.

use handover_compliance::Outcome;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::{OwnedUserId, UserId};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::audit::action;
use super::rooms::{CreateRoomParams, EventSpec};
use super::test_util::{room, user};
use super::users::test_login;
use super::{Services, test_services_with_policy};
use crate::config::Config;
use crate::error::Error;

/// Services enforcing the configured layers (as `policy_from_config` builds them).
fn services(edit: impl FnOnce(&mut Config)) -> (Services, tempfile::TempDir) {
    let mut cfg = Config::default();
    edit(&mut cfg);
    let policy = crate::service::wiring::policy_from_config(&cfg, None);
    let (s, _store, dir) = test_services_with_policy(policy);
    (s, dir)
}

fn params() -> CreateRoomParams {
    CreateRoomParams {
        version: None,
        preset: None,
        is_public: false,
        name: None,
        topic: None,
        alias_localpart: None,
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    }
}

fn patient() -> CreateRoomParams {
    let mut p = params();
    let mut c = serde_json::Map::new();
    c.insert("org.handover.context".into(), "patient".into());
    p.creation_content = Some(c);
    p
}

/// 403 with `kind`, naming `rule`.
fn assert_refused(e: Error, kind: ErrorKind, rule: &str) {
    assert!(
        matches!(&e, Error::Matrix { status, .. } if *status == http::StatusCode::FORBIDDEN),
        "{e}"
    );
    assert_eq!(e.kind(), Some(&kind), "{e}");
    assert!(e.to_string().contains(&format!("`{rule}`")), "{e}");
}

async fn assert_denial_audited(s: &Services, rule: &str, hook: &str, actor: &str) {
    let all = s.audit.all().await.unwrap();
    let last = all.last().expect("an audit entry");
    assert_eq!(last.action, action::POLICY_DENIAL);
    assert_eq!(last.outcome, Outcome::Denied);
    assert_eq!(last.rule.as_deref(), Some(rule));
    assert_eq!(last.details["hook"], hook);
    assert_eq!(last.actor, actor);
}

async fn set_invite_config(s: &Services, user: &UserId, ty: &str, content: Value) {
    let raw = RawValue::from_string(content.to_string()).unwrap();
    s.account_data
        .set_global(user, user, ty, &raw)
        .await
        .unwrap();
}

const BLOCKED: &str = "invite_blocked_by_invitee";

#[tokio::test]
async fn invitee_blocking_all_invites_refuses_and_audits() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let r = room(&s, &alice, "Ward 7", false).await;
    set_invite_config(
        &s,
        &bob,
        "m.invite_permission_config",
        json!({"default_action": "block"}),
    )
    .await;
    let err = s
        .rooms
        .invite(&r, &alice, &bob, None, false)
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::InviteBlocked, BLOCKED);
    assert_denial_audited(&s, BLOCKED, "invite_permission", alice.as_str()).await;
    assert_eq!(s.rooms.membership_of(&r, &bob).await.unwrap(), None);

    // createRoom invites are checked too, and no room is left behind.
    let mut p = params();
    p.invite = vec![bob.clone()];
    let err = s.rooms.create_room(&alice, p).await.unwrap_err();
    assert_refused(err, ErrorKind::InviteBlocked, BLOCKED);
    assert_denial_audited(&s, BLOCKED, "invite_permission", alice.as_str()).await;
    assert_eq!(s.rooms.joined_rooms(&alice).await.unwrap().len(), 1);
}

#[tokio::test]
async fn invite_permission_allow_and_block_lists() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    let carol = user(&s, "carol").await;
    let bob = user(&s, "bob").await;
    // The unstable MSC4155 type Element sends today.
    set_invite_config(
        &s,
        &bob,
        "org.matrix.msc4155.invite_permission_config",
        json!({"default_action": "block", "allowed_users": ["@alice:localhost"]}),
    )
    .await;
    let r = room(&s, &alice, "Ward 7", false).await;
    s.rooms.invite(&r, &alice, &bob, None, false).await.unwrap();
    s.rooms.join(&r, &carol, None).await.unwrap_err();
    let r2 = room(&s, &carol, "Ward 8", false).await;
    let err = s
        .rooms
        .invite(&r2, &carol, &bob, None, false)
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::InviteBlocked, BLOCKED);

    // A per-user block list; everyone else may invite.
    let dave = user(&s, "dave").await;
    set_invite_config(
        &s,
        &dave,
        "m.invite_permission_config",
        json!({"blocked_users": ["@carol:*"]}),
    )
    .await;
    let err = s
        .rooms
        .invite(&r2, &carol, &dave, None, false)
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::InviteBlocked, BLOCKED);
    s.rooms
        .invite(&r, &alice, &dave, None, false)
        .await
        .unwrap();

    // A per-server block list.
    let erin = user(&s, "erin").await;
    set_invite_config(
        &s,
        &erin,
        "m.invite_permission_config",
        json!({"blocked_servers": ["localhost"]}),
    )
    .await;
    let err = s
        .rooms
        .invite(&r, &alice, &erin, None, false)
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::InviteBlocked, BLOCKED);

    // No config: invites pass.
    let frank = user(&s, "frank").await;
    s.rooms
        .invite(&r, &alice, &frank, None, false)
        .await
        .unwrap();
}

const OUTSIDE: &str = "invite_outside_organisation";

#[tokio::test]
async fn invites_stay_inside_the_organisation() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    let r = room(&s, &alice, "Ward 7", false).await;
    let outsider: OwnedUserId = "@x:gmail.example".try_into().unwrap();
    let err = s
        .rooms
        .invite(&r, &alice, &outsider, None, false)
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, OUTSIDE);
    assert_denial_audited(&s, OUTSIDE, "check_invite", alice.as_str()).await;
    let mut p = params();
    p.invite = vec![outsider];
    let err = s.rooms.create_room(&alice, p).await.unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, OUTSIDE);

    // A listed partner passes the organisation rule (and then needs federation).
    let (s, _d) = services(|c| c.invites.allowed_servers = vec!["trust.nhs.uk".into()]);
    let alice = user(&s, "alice").await;
    let r = room(&s, &alice, "Ward 7", false).await;
    let partner: OwnedUserId = "@x:trust.nhs.uk".try_into().unwrap();
    let err = s
        .rooms
        .invite(&r, &alice, &partner, None, false)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(OUTSIDE), "{err}");
    let bob = user(&s, "bob").await;
    s.rooms.invite(&r, &alice, &bob, None, false).await.unwrap();
}

const PATIENT: &str = "patient_context_room";

async fn state(s: &Services, r: &ruma::RoomId, who: &UserId, kind: &str) -> Value {
    s.rooms.state_event(r, who, kind, "").await.unwrap()["content"].clone()
}

#[tokio::test]
async fn patient_context_rooms_are_forced_private() {
    // Even with encryption by default off, and asked to be public in the directory.
    let (s, _d) = services(|c| c.rooms.encrypt_by_default = false);
    let alice = user(&s, "alice").await;
    let mut p = patient();
    p.is_public = true;
    let r = s.rooms.create_room(&alice, p).await.unwrap();
    assert_eq!(
        state(&s, &r, &alice, "m.room.join_rules").await["join_rule"],
        "invite"
    );
    assert_eq!(
        state(&s, &r, &alice, "m.room.history_visibility").await["history_visibility"],
        "joined"
    );
    assert_eq!(
        state(&s, &r, &alice, "m.room.guest_access").await["guest_access"],
        "forbidden"
    );
    assert_eq!(
        state(&s, &r, &alice, "m.room.encryption").await["algorithm"],
        "m.megolm.v1.aes-sha2"
    );
    assert!(!s.rooms.directory_visibility(&r).await.unwrap());

    // Later attempts to open it up are refused and audited.
    let err = s
        .rooms
        .set_directory_visibility(&r, &alice, true)
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, PATIENT);
    assert_denial_audited(&s, PATIENT, "patient_context_room", alice.as_str()).await;
    let spec = EventSpec::state(
        StateEventType::RoomJoinRules,
        "",
        json!({"join_rule": "public"}),
    );
    let err = s.rooms.send_state(&r, &alice, spec).await.unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, PATIENT);
    let spec = EventSpec::state(
        StateEventType::RoomHistoryVisibility,
        "",
        json!({"history_visibility": "world_readable"}),
    );
    let err = s.rooms.send_state(&r, &alice, spec).await.unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, PATIENT);
    // Other state is fine.
    let spec = EventSpec::state(StateEventType::RoomName, "", json!({"name": "Bed 4"}));
    s.rooms.send_state(&r, &alice, spec).await.unwrap();

    // An ordinary room is unaffected.
    let ordinary = room(&s, &alice, "Ward 7", false).await;
    let spec = EventSpec::state(
        StateEventType::RoomHistoryVisibility,
        "",
        json!({"history_visibility": "shared"}),
    );
    s.rooms.send_state(&ordinary, &alice, spec).await.unwrap();
}

#[tokio::test]
async fn patient_context_refuses_conflicting_initial_state() {
    let (s, _d) = services(|_| {});
    let alice = user(&s, "alice").await;
    for (kind, content) in [
        ("m.room.join_rules", json!({"join_rule": "public"})),
        (
            "m.room.history_visibility",
            json!({"history_visibility": "world_readable"}),
        ),
        (
            "m.room.history_visibility",
            json!({"history_visibility": "shared"}),
        ),
        ("m.room.guest_access", json!({"guest_access": "can_join"})),
    ] {
        let mut p = patient();
        p.initial_state = vec![(kind.into(), String::new(), content)];
        let err = s.rooms.create_room(&alice, p).await.unwrap_err();
        assert_refused(err, ErrorKind::Forbidden, PATIENT);
        assert_denial_audited(&s, PATIENT, "patient_context_room", alice.as_str()).await;
    }
    let mut p = patient();
    p.preset = Some(super::rooms::create::Preset::PublicChat);
    let err = s.rooms.create_room(&alice, p).await.unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, PATIENT);
    assert!(s.rooms.joined_rooms(&alice).await.unwrap().is_empty());
    // Agreeing initial state is accepted.
    let mut p = patient();
    p.initial_state = vec![(
        "m.room.history_visibility".into(),
        String::new(),
        json!({"history_visibility": "joined"}),
    )];
    s.rooms.create_room(&alice, p).await.unwrap();
}

const LOCKED: &str = "display_name_locked";

#[tokio::test]
async fn locked_display_names_are_set_by_admins_only() {
    let (s, _d) = services(|c| c.policy.lock_display_names = true);
    let (me, _) = test_login(&s.users, "alice", "correct horse").await;
    let uid = me.user_id.clone();
    let err = s
        .accounts
        .set_displayname(&me, &uid, Some("Dr Alice".into()))
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, LOCKED);
    assert_denial_audited(&s, LOCKED, "check_profile_update", uid.as_str()).await;
    assert_eq!(
        s.users
            .get_profile(&uid)
            .await
            .unwrap()
            .displayname
            .as_deref(),
        Some("alice")
    );
    s.users
        .admin_set_displayname(&uid, Some("Dr Alice Smith".into()))
        .await
        .unwrap();
    assert_eq!(
        s.users
            .get_profile(&uid)
            .await
            .unwrap()
            .displayname
            .as_deref(),
        Some("Dr Alice Smith")
    );
    // The NHS rules still apply to admins.
    let err = s
        .users
        .admin_set_displayname(&uid, Some("Pt 9434765919".into()))
        .await
        .unwrap_err();
    assert_refused(err, ErrorKind::Forbidden, "nhs_number_in_metadata");

    // Unlocked (the default): users name themselves.
    let (s, _d) = services(|_| {});
    let (me, _) = test_login(&s.users, "bob", "correct horse").await;
    let uid = me.user_id.clone();
    s.accounts
        .set_displayname(&me, &uid, Some("Dr Bob".into()))
        .await
        .unwrap();
}
