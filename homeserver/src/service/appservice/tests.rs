//! Unit tests: registration files, namespace matching, masquerade and registration rules, and
//! that an interesting event is queued with its own write.

use std::sync::Arc;

use ruma::api::error::ErrorKind;
use ruma::{room_alias_id, room_id, user_id};

use super::registration::{Appservice, Claim, check_unique, load_files};
use super::registry::{EventFacts, Registry};
use crate::config::{Config, RegistrationMode};
use crate::service::Services;
use crate::service::registration::Registration;
use crate::store::deliveries::{DeliveryQueue, DeliveryStore};

fn yaml(id: &str, as_token: &str, hs_token: &str, sender: &str) -> String {
    format!(
        r##"
id: {id}
url: "http://127.0.0.1:9"
as_token: {as_token}
hs_token: {hs_token}
sender_localpart: {sender}
rate_limited: false
de.sorunome.msc2409.push_ephemeral: true
namespaces:
  users:
    - exclusive: true
      regex: "@{id}_.*:localhost"
    - exclusive: false
      regex: "@shared_.*"
  aliases:
    - exclusive: true
      regex: "#{id}_.*:localhost"
  rooms: []
"##
    )
}

fn parse(id: &str) -> Appservice {
    Appservice::parse(
        &yaml(
            id,
            &format!("as_{id}"),
            &format!("hs_{id}"),
            &format!("{id}bot"),
        ),
        "localhost",
    )
    .unwrap()
}

#[test]
fn a_synapse_style_registration_parses() {
    let a = parse("alerts");
    assert_eq!(a.sender, user_id!("@alertsbot:localhost"));
    assert!(a.receive_ephemeral, "MSC2409 key read");
    assert!(!a.rate_limited());
    assert!(!a.msc3202);
    assert_eq!(a.url(), Some("http://127.0.0.1:9"));
}

#[test]
fn namespaces_match_from_the_start_exclusive_wins() {
    let a = parse("alerts");
    assert_eq!(
        a.user_claim(user_id!("@alerts_ward1:localhost")),
        Claim::Exclusive
    );
    assert_eq!(a.user_claim(user_id!("@shared_x:other")), Claim::Shared);
    // Anchored at the start (Synapse's `re.match`): a namespace is not found mid-id.
    assert_eq!(
        a.user_claim(user_id!("@x_alerts_ward1:localhost")),
        Claim::None
    );
    assert_eq!(a.user_claim(user_id!("@alice:localhost")), Claim::None);
    assert!(
        a.controls_user(user_id!("@alertsbot:localhost")),
        "its sender"
    );
    assert!(!a.controls_user(user_id!("@alice:localhost")));
    assert_eq!(
        a.alias_claim(room_alias_id!("#alerts_ed:localhost")),
        Claim::Exclusive
    );
    assert_eq!(a.alias_claim(room_alias_id!("#ed:localhost")), Claim::None);
}

#[test]
fn bad_registrations_are_refused_with_the_reason() {
    let bad = |text: &str, needle: &str| {
        let e = Appservice::parse(text, "localhost").unwrap_err();
        assert!(e.contains(needle), "{e:?} should mention {needle:?}");
    };
    bad("id: x\n", "not a valid registration");
    let ok = yaml("x", "a", "h", "xbot");
    bad(&ok.replace("hs_token: h", "hs_token: a"), "must differ");
    bad(
        &ok.replace("http://127.0.0.1:9", "ftp://x"),
        "not an http(s) URL",
    );
    bad(&ok.replace("\"@x_.*:localhost\"", "\"@x_(.*\""), "regex");
    bad(
        &ok.replace("sender_localpart: xbot", "sender_localpart: \"a b\""),
        "sender_localpart",
    );
    // A null url is allowed: an appservice that only acts, never receives.
    let none = Appservice::parse(&ok.replace("\"http://127.0.0.1:9\"", "null"), "localhost");
    assert_eq!(none.unwrap().url(), None);
}

#[test]
fn duplicate_ids_and_tokens_stop_start_up() {
    let a = parse("one");
    let same_id = Appservice::parse(&yaml("one", "t1", "t2", "otherbot"), "localhost").unwrap();
    assert!(
        check_unique(std::slice::from_ref(&a), &same_id)
            .unwrap_err()
            .contains("id")
    );
    let same_token =
        Appservice::parse(&yaml("two", "hs_one", "t3", "twobot"), "localhost").unwrap();
    assert!(
        check_unique(std::slice::from_ref(&a), &same_token)
            .unwrap_err()
            .contains("token")
    );
    // Through files: the error names the file.
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&p1, yaml("one", "as1", "hs1", "onebot")).unwrap();
    std::fs::write(&p2, yaml("two", "as1", "hs2", "twobot")).unwrap();
    let e = load_files(&[&p1, &p2], "localhost").unwrap_err();
    assert!(e.contains("b.yaml") && e.contains("unique"), "{e}");
    assert_eq!(load_files(&[&p1], "localhost").unwrap().len(), 1);
}

#[test]
fn interest_by_sender_member_room_and_alias() {
    let reg = Registry::new(vec![parse("alerts"), parse("other")]);
    let facts = |sender, members: Vec<_>, aliases: Vec<_>| EventFacts {
        room_id: room_id!("!r:localhost"),
        sender,
        member_target: None,
        members,
        aliases,
    };
    let alice = user_id!("@alice:localhost");
    assert!(
        reg.interested(&facts(alice, vec![alice], vec![]))
            .is_empty()
    );
    assert_eq!(
        reg.interested(&facts(user_id!("@alerts_1:localhost"), vec![], vec![])),
        ["alerts"]
    );
    assert_eq!(
        reg.interested(&facts(alice, vec![user_id!("@other_2:localhost")], vec![])),
        ["other"]
    );
    assert_eq!(
        reg.interested(&facts(
            alice,
            vec![],
            vec![room_alias_id!("#alerts_ed:localhost")]
        )),
        ["alerts"]
    );
    // A shared namespace interests every appservice that lists it.
    assert_eq!(
        reg.interested(&facts(user_id!("@shared_x:localhost"), vec![], vec![])),
        ["alerts", "other"]
    );
    assert!(reg.rate_limit_exempt("@alerts_1:localhost"));
    assert!(!reg.rate_limit_exempt("@alice:localhost"));
}

fn services(
    edit: impl FnOnce(&mut Config),
) -> (
    Services,
    crate::store::sqlite::SqliteStore,
    tempfile::TempDir,
) {
    let (store, dir) = crate::store::sqlite::test_store();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.registration.mode = RegistrationMode::Open;
    edit(&mut config);
    let s = Services::build_full(
        config,
        store.clone(),
        Arc::new(handover_policy::AllowAll),
        crate::service::push::RetryPolicy::default(),
        vec![parse("alerts")],
        vec![],
    )
    .unwrap();
    (s, store, dir)
}

#[tokio::test]
async fn masquerading_only_inside_the_namespace_and_audited() {
    let (s, _store, _dir) = services(|_| {});
    s.appservices.ensure_senders().await.unwrap();
    let a = s
        .appservices
        .registry()
        .by_as_token("as_alerts")
        .unwrap()
        .clone();
    assert!(s.appservices.registry().by_as_token("as_alert").is_none());
    // As its sender.
    let me = s
        .appservices
        .session(&a, "as_alerts", None, None)
        .await
        .unwrap();
    assert_eq!(me.user_id, a.sender);
    assert_eq!(me.appservice.as_deref(), Some("alerts"));
    // Outside the namespace: refused (and audited), even for a user that exists.
    s.users
        .create_user("alice", Some("password1"), false, false)
        .await
        .unwrap();
    let alice = user_id!("@alice:localhost").to_owned();
    let e = s
        .appservices
        .session(&a, "as_alerts", Some(alice), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    // In the namespace but not registered yet: refused too.
    let ward = user_id!("@alerts_ward1:localhost").to_owned();
    let e = (s
        .appservices
        .session(&a, "as_alerts", Some(ward.clone()), None)
        .await)
        .unwrap_err();
    assert!(e.message().contains("not registered"), "{}", e.message());
    // Registered through m.login.application_service, then masquerading works.
    let reg = Registration {
        username: Some("alerts_ward1".into()),
        appservice_login: true,
        inhibit_login: true,
        session: Some(me.clone()),
        ..Default::default()
    };
    s.registration.register(reg, None).await.unwrap();
    let as_ward = s
        .appservices
        .session(&a, "as_alerts", Some(ward.clone()), None)
        .await
        .unwrap();
    assert_eq!(as_ward.user_id, ward);
    // device_id masquerading needs MSC3202 in the registration.
    let e = (s.appservices)
        .session(&a, "as_alerts", Some(ward), Some("DEV".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    let trail = s.audit.verify().await.unwrap();
    assert!(trail.is_ok());
}

#[tokio::test]
async fn exclusive_user_ids_are_the_appservices_alone() {
    let (s, _store, _dir) = services(|_| {});
    s.appservices.ensure_senders().await.unwrap();
    // A regular user cannot take an id in the exclusive namespace, nor the sender's.
    for name in ["alerts_ward2", "alertsbot"] {
        let reg = Registration {
            username: Some(name.into()),
            password: Some("password1".into()),
            ..Default::default()
        };
        let e = s.registration.register(reg, None).await.err().unwrap();
        assert_eq!(e.kind(), Some(&ErrorKind::Exclusive), "{name}");
    }
    // The appservice cannot register outside its namespace either.
    let a = s.appservices.registry().by_id("alerts").unwrap().clone();
    let me = s
        .appservices
        .session(&a, "as_alerts", None, None)
        .await
        .unwrap();
    let reg = Registration {
        username: Some("bob".into()),
        appservice_login: true,
        session: Some(me),
        ..Default::default()
    };
    let e = s.registration.register(reg, None).await.err().unwrap();
    assert_eq!(e.kind(), Some(&ErrorKind::Exclusive));
    // m.login.application_service without an as_token.
    let reg = Registration {
        username: Some("alerts_x".into()),
        appservice_login: true,
        ..Default::default()
    };
    let e = s.registration.register(reg, None).await.err().unwrap();
    assert_eq!(e.kind(), Some(&ErrorKind::MissingToken));
}

#[tokio::test]
async fn an_interesting_event_is_queued_in_its_own_write() {
    let (s, store, _dir) = services(|c| c.rooms.encrypt_by_default = false);
    s.appservices.ensure_senders().await.unwrap();
    let alice = s
        .users
        .create_user("alice", Some("password1"), false, false)
        .await
        .unwrap();
    let queue = DeliveryQueue::Appservice("alerts".into());
    let room = s
        .rooms
        .create_room(&alice, room_params(None))
        .await
        .unwrap();
    // Nobody of the appservice's in the room: nothing queued.
    assert!(
        store
            .pending_deliveries(&queue, i64::MIN, 100)
            .unwrap()
            .is_empty()
    );
    let bot = user_id!("@alertsbot:localhost");
    s.rooms
        .invite(&room, &alice, bot, None, false)
        .await
        .unwrap();
    let queued = store.pending_deliveries(&queue, i64::MIN, 100).unwrap();
    assert_eq!(queued.len(), 1, "the invite of its sender");
    assert_eq!(queued[0].room_id, room);
}

fn room_params(alias: Option<&str>) -> crate::service::rooms::CreateRoomParams {
    crate::service::rooms::CreateRoomParams {
        version: None,
        preset: None,
        is_public: false,
        name: None,
        topic: None,
        alias_localpart: alias.map(str::to_owned),
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    }
}

#[tokio::test]
async fn exclusive_aliases_are_the_appservices_alone() {
    let (s, _store, _dir) = services(|_| {});
    let alice = s
        .users
        .create_user("alice", Some("password1"), false, false)
        .await
        .unwrap();
    let e = s
        .rooms
        .create_room(&alice, room_params(Some("alerts_ed")))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), Some(&ErrorKind::Exclusive));
    let room = s
        .rooms
        .create_room(&alice, room_params(Some("ed")))
        .await
        .unwrap();
    let e = (s.rooms)
        .set_alias(room_alias_id!("#alerts_ed:localhost"), &room, &alice)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Exclusive));
}
