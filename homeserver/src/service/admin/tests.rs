//! The admin service's rules: admin-only (audited refusals), Synapse's list filters and paging,
//! create-or-modify, deactivation, and the meaning of locked and suspended accounts.

use ruma::api::error::ErrorKind;
use serde_json::json;

use super::{UserUpsert, action};
use crate::service::test_util::{self, is_kind};
use crate::service::users::{Session, test_login};
use crate::service::{Services, test_services};
use crate::store::admin::{UserListQuery, UserOrder};

async fn admin(s: &Services) -> Session {
    let id = (s.users)
        .create_user("root", Some("a long password"), true, true)
        .await
        .unwrap();
    let new = s.users.create_session(&id, None, None).await.unwrap();
    s.users.authenticate(&new.access_token, None).await.unwrap()
}

fn all() -> UserListQuery {
    UserListQuery {
        limit: 100,
        ..UserListQuery::default()
    }
}

#[tokio::test]
async fn non_admins_are_refused_and_the_refusal_is_audited() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", "a long password").await;
    let (bob, _) = test_login(&s.users, "bob", "a long password").await;
    let err = s.admin.list_users(&alice, all()).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    let err = s
        .admin
        .set_locked(&alice, &bob.user_id, true)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    // Same answer for an account that does not exist: no probing.
    let ghost = ruma::user_id!("@ghost:localhost");
    let err = s.admin.user_details(&alice, ghost).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    assert!(!s.users.restrictions().get(&bob.user_id).locked);

    let log = s.audit.all().await.unwrap();
    let denied: Vec<_> = log.iter().filter(|r| r.action == action::DENIED).collect();
    assert_eq!(denied.len(), 3);
    assert_eq!(denied[1].actor, alice.user_id.as_str());
    assert_eq!(denied[1].target.as_deref(), Some(bob.user_id.as_str()));
    assert_eq!(denied[1].details["attempted"], json!(action::USER_LOCK));
}

#[tokio::test]
async fn list_filters_orders_and_pages_like_synapse() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    for name in ["carol", "dave", "erin"] {
        test_util::user(&s, name).await;
    }
    (s.accounts)
        .admin_set_displayname(&s.users.user_id_for("erin").unwrap(), Some("Zed".into()))
        .await
        .unwrap();
    let page = |from, limit| UserListQuery {
        from,
        limit,
        ..UserListQuery::default()
    };
    let (rows, total) = s.admin.list_users(&root, page(0, 2)).await.unwrap();
    assert_eq!(total, 4);
    let names: Vec<_> = rows
        .iter()
        .map(|r| r.user_id.localpart().to_owned())
        .collect();
    assert_eq!(names, ["carol", "dave"]);
    let (rows, _) = s.admin.list_users(&root, page(2, 2)).await.unwrap();
    let names: Vec<_> = rows
        .iter()
        .map(|r| r.user_id.localpart().to_owned())
        .collect();
    assert_eq!(names, ["erin", "root"]);

    // `name` matches the display name as well as the id.
    let q = UserListQuery {
        name: Some("zE".into()),
        ..all()
    };
    let (rows, total) = s.admin.list_users(&root, q).await.unwrap();
    assert_eq!((rows[0].user_id.localpart(), total), ("erin", 1));
    let q = UserListQuery {
        admins: Some(true),
        ..all()
    };
    let (rows, _) = s.admin.list_users(&root, q).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_admin);
    let q = UserListQuery {
        order: UserOrder::Name,
        backwards: true,
        ..all()
    };
    let (rows, _) = s.admin.list_users(&root, q).await.unwrap();
    assert_eq!(rows[0].user_id.localpart(), "root");

    // Deactivated and locked accounts are left out unless asked for.
    let dave = s.users.user_id_for("dave").unwrap();
    let carol = s.users.user_id_for("carol").unwrap();
    s.admin.deactivate(&root, &dave, true).await.unwrap();
    s.admin.set_locked(&root, &carol, true).await.unwrap();
    let (_, total) = s.admin.list_users(&root, all()).await.unwrap();
    assert_eq!(total, 2);
    let q = UserListQuery {
        include_deactivated: true,
        include_locked: true,
        ..all()
    };
    let (rows, total) = s.admin.list_users(&root, q).await.unwrap();
    assert_eq!(total, 4);
    let d = rows.iter().find(|r| r.user_id == dave).unwrap();
    assert!(d.deactivated && d.erased);
}

#[tokio::test]
async fn upsert_creates_then_modifies_and_is_audited() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let frank = ruma::user_id!("@frank:localhost");
    let up = UserUpsert {
        password: Some("a long password".into()),
        displayname: Some(Some("Frank".into())),
        admin: Some(false),
        ..UserUpsert::default()
    };
    let (created, d) = s.admin.upsert_user(&root, frank, up).await.unwrap();
    assert!(created);
    assert_eq!(d.row.displayname.as_deref(), Some("Frank"));
    s.users
        .check_password(frank, "a long password")
        .await
        .unwrap();

    let up = UserUpsert {
        password: Some("another long password".into()),
        logout_devices: true,
        admin: Some(true),
        ..UserUpsert::default()
    };
    let (created, d) = s.admin.upsert_user(&root, frank, up).await.unwrap();
    assert!(!created && d.row.is_admin);
    assert_eq!(d.account_kind, handover_policy::AccountKind::Staff);
    s.users
        .check_password(frank, "another long password")
        .await
        .unwrap();
    // Handover's account kind is set through the same call (patients are confined).
    let up = UserUpsert {
        account_kind: Some(handover_policy::AccountKind::Patient),
        ..UserUpsert::default()
    };
    let (_, d) = s.admin.upsert_user(&root, frank, up).await.unwrap();
    assert_eq!(d.account_kind, handover_policy::AccountKind::Patient);
    assert_eq!(
        s.users.account_kind(frank).await.unwrap(),
        handover_policy::AccountKind::Patient
    );

    // Addresses are bound by email validation only.
    let up = UserUpsert {
        threepids: Some(vec![("email".into(), "f@example.org".into())]),
        ..UserUpsert::default()
    };
    let err = s.admin.upsert_user(&root, frank, up).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
    let remote = ruma::user_id!("@frank:elsewhere.example");
    let err = (s.admin)
        .upsert_user(&root, remote, UserUpsert::default())
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));

    let log = s.audit.all().await.unwrap();
    let mine: Vec<_> = (log.iter())
        .filter(|r| r.actor == root.user_id.as_str() && r.target.as_deref() == Some(frank.as_str()))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        mine,
        [
            action::USER_CREATE,
            action::USER_MODIFY,
            crate::service::audit::action::ACCOUNT_KIND,
            action::USER_MODIFY
        ]
    );
}

#[tokio::test]
async fn a_locked_account_cannot_log_in_or_use_its_tokens() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let (alice, token) = test_login(&s.users, "alice", "a long password").await;
    s.admin
        .set_locked(&root, &alice.user_id, true)
        .await
        .unwrap();
    assert!(s.admin.is_locked(&root, &alice.user_id).await.unwrap());
    let err = s.users.authenticate(&token, None).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::UserLocked));
    let err = (s.users)
        .check_password(&alice.user_id, "a long password")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::UserLocked));
    // A wrong password still reads as a wrong password.
    let err = s
        .users
        .check_password(&alice.user_id, "wrong")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));

    s.admin
        .set_locked(&root, &alice.user_id, false)
        .await
        .unwrap();
    s.users.authenticate(&token, None).await.unwrap();
    let err = s
        .admin
        .set_locked(&root, &root.user_id, true)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
}

#[tokio::test]
async fn a_suspended_account_reads_and_leaves_but_cannot_write() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let (alice, token) = test_login(&s.users, "alice", "a long password").await;
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "ward", false).await;
    test_util::join(&s, &room, &bob, &alice.user_id).await;
    let mine = test_util::text(&s, &room, &alice.user_id, "before").await;

    s.admin
        .set_suspended(&root, &alice.user_id, true)
        .await
        .unwrap();
    assert!(s.admin.is_suspended(&root, &alice.user_id).await.unwrap());
    s.users.authenticate(&token, None).await.unwrap();
    let dev: ruma::OwnedDeviceId = "D".into();
    let spec = crate::service::rooms::EventSpec::new(
        ruma::events::TimelineEventType::RoomMessage,
        json!({ "msgtype": "m.text", "body": "after" }),
        None,
    );
    let err = (s.rooms)
        .send_message(&room, &alice.user_id, spec, (&dev, "t1"))
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::UserSuspended));
    let other = test_util::room(&s, &bob, "other", true).await;
    let err = s
        .rooms
        .join(&other, &alice.user_id, None)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::UserSuspended));
    let err = (s.accounts)
        .set_displayname(&alice, &alice.user_id, Some("New".into()))
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::UserSuspended));
    // Redacting its own events and leaving stay allowed.
    (s.rooms)
        .redact(&room, &alice.user_id, &mine, None, (&dev, "t2"))
        .await
        .unwrap();
    s.rooms.leave(&room, &alice.user_id, None).await.unwrap();

    // The flag survives a restart: it is loaded from the store.
    s.users
        .restrictions()
        .set(&alice.user_id, Default::default());
    let restored = super::AdminService::new(super::AdminDeps {
        users: s.users.clone(),
        accounts: s.accounts.clone(),
        rooms: s.rooms.clone(),
        audit: s.audit.clone(),
        store: s.admin.store.clone(),
        room_store: s.admin.room_store.clone(),
        threepids: s.admin.threepids.clone(),
        media: s.admin.media.clone(),
        media_store: s.admin.media_store.clone(),
        tokens: s.admin.tokens.clone(),
        push: s.push.clone(),
        retention: s.retention.clone(),
        jobs: s.admin.jobs.clone(),
    });
    drop(restored.unwrap());
    assert!(s.users.restrictions().get(&alice.user_id).suspended);
}

#[tokio::test]
async fn deactivation_erases_and_leaves_rooms_and_devices_can_be_removed() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let (alice, token) = test_login(&s.users, "alice", "a long password").await;
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "ward", false).await;
    test_util::join(&s, &room, &bob, &alice.user_id).await;
    assert_eq!(
        s.admin.joined_rooms(&root, &alice.user_id).await.unwrap(),
        std::slice::from_ref(&room)
    );
    let devices = s.admin.devices(&root, &alice.user_id).await.unwrap();
    assert_eq!(devices.len(), 1);
    let (_, second) = test_login(&s.users, "alice", "a long password").await;
    let other = s.users.authenticate(&second, None).await.unwrap();
    (s.admin)
        .delete_devices(&root, &alice.user_id, vec![other.device_id.clone()])
        .await
        .unwrap();
    assert!(s.users.authenticate(&second, None).await.is_err());
    s.users.authenticate(&token, None).await.unwrap();

    s.admin
        .deactivate(&root, &alice.user_id, true)
        .await
        .unwrap();
    assert!(
        s.admin
            .joined_rooms(&root, &alice.user_id)
            .await
            .unwrap()
            .is_empty()
    );
    let d = s.admin.user_details(&root, &alice.user_id).await.unwrap();
    assert!(d.row.deactivated && d.row.erased && d.row.displayname.is_none());
    assert!(s.users.authenticate(&token, None).await.is_err());
    let err = s
        .admin
        .set_admin(&root, &root.user_id, false)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
}

#[tokio::test]
async fn rooms_and_event_reports_for_admins_only_and_deletion_audited() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let (alice, _) = test_login(&s.users, "alice", "a long password").await;
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "Ward 7", false).await;
    test_util::join(&s, &room, &bob, &alice.user_id).await;
    let ev = test_util::text(&s, &room, &bob, "reported").await;
    let id = (s.reports)
        .report_event(&alice.user_id, &room, &ev, Some("rude".into()))
        .await
        .unwrap();

    let q = crate::store::admin::ReportListQuery {
        limit: 10,
        ..Default::default()
    };
    let err = s.admin.event_reports(&alice, q.clone()).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    let err = s.admin.room_state(&alice, &room).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));

    let (rows, total) = s.admin.event_reports(&root, q.clone()).await.unwrap();
    assert_eq!((total, rows[0].room_name.as_deref()), (1, Some("Ward 7")));
    assert_eq!(rows[0].report.sender.as_deref(), Some(bob.as_str()));
    let (one, event) = s.admin.event_report(&root, id).await.unwrap();
    assert_eq!(one.report.event_id, ev.as_str());
    assert_eq!(event.unwrap()["content"]["body"], "reported");
    let r = s.admin.room_details(&root, &room).await.unwrap();
    assert_eq!((r.name.as_deref(), r.joined_members), (Some("Ward 7"), 2));
    let members = s.admin.room_members(&root, &room).await.unwrap();
    assert_eq!(members.len(), 2);

    s.admin.delete_event_report(&root, id).await.unwrap();
    let err = s.admin.event_report(&root, id).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    let log = s.audit.all().await.unwrap();
    let gone = log
        .iter()
        .find(|r| r.action == action::REPORT_DELETE)
        .unwrap();
    assert_eq!(gone.actor, root.user_id.as_str());
    assert_eq!(gone.details["report"]["event_id"], json!(ev.as_str()));
}

#[tokio::test]
async fn erasure_needs_a_reason_and_records_what_was_kept() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let (alice, token) = test_login(&s.users, "alice", "a long password").await;
    let (bob, _) = test_login(&s.users, "bob", "a long password").await;
    // Non-admins are refused; a blank reason is refused; nothing happens either way.
    let err = s
        .admin
        .erase(Some(&bob), &alice.user_id, "x")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    let err = s
        .admin
        .erase(Some(&root), &alice.user_id, "  ")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
    assert!(s.users.authenticate(&token, None).await.is_ok());

    s.admin
        .erase(Some(&root), &alice.user_id, "SAR-2025-17")
        .await
        .unwrap();
    assert!(s.users.authenticate(&token, None).await.is_err());
    let d = s.admin.user_details(&root, &alice.user_id).await.unwrap();
    assert!(d.row.deactivated && d.row.erased);
    let log = s.audit.all().await.unwrap();
    let e = log.iter().find(|r| r.action == action::USER_ERASE).unwrap();
    assert_eq!(e.actor, root.user_id.as_str());
    assert_eq!(e.details["reason"], json!("SAR-2025-17"));
    let kept = e.details["kept"].as_array().unwrap();
    assert!(
        kept.iter()
            .any(|k| k["what"].as_str().unwrap().contains("audit trail"))
    );
    assert!(kept.iter().all(|k| !k["why"].as_str().unwrap().is_empty()));
}
