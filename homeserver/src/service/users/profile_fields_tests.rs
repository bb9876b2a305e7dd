//! Extended profile fields on a real store, under the NHS rules and the display-name lock.

use ruma::api::error::ErrorKind;
use serde_json::json;

use super::*;
use crate::config::Config;
use crate::service::users::test_login;
use crate::service::{Services, test_services, test_services_with_policy};

async fn session(s: &Services, name: &str) -> (Session, ruma::OwnedUserId) {
    let (session, _) = test_login(&s.users, name, "a long password").await;
    let u = session.user_id.clone();
    (session, u)
}

#[tokio::test]
async fn set_read_delete_with_the_specs_limits() {
    let (s, _d) = test_services();
    let (alice, a) = session(&s, "alice").await;
    let (_bob, b) = session(&s, "bob").await;
    s.users
        .set_profile_field(&alice, &a, "m.tz", &json!("Europe/London"))
        .await
        .unwrap();
    let job = json!({ "title": "Registrar", "grade": 5 });
    s.users
        .set_profile_field(&alice, &a, "org.example.job", &job)
        .await
        .unwrap();
    let p = s.users.get_profile(&a).await.unwrap();
    assert_eq!(p.fields["m.tz"], "Europe/London");
    assert_eq!(p.fields["org.example.job"], job);

    // Only one's own profile; keys by the spec's grammar; m.tz a string.
    let e = (s.users)
        .set_profile_field(&alice, &b, "m.tz", &json!("UTC"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    for bad in ["m.custom", "nodot", "Org.example", "org..x", "org.ex-ample"] {
        let e = (s.users)
            .set_profile_field(&alice, &a, bad, &json!(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::InvalidParam), "{bad}");
    }
    let long = format!("org.{}", "a".repeat(MAX_KEY_BYTES));
    let e = (s.users)
        .set_profile_field(&alice, &a, &long, &json!(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::KeyTooLarge));
    let e = (s.users)
        .set_profile_field(&alice, &a, "m.tz", &json!(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::BadJson));

    // The whole profile stays under 64 KiB: a field that would cross it is refused and
    // nothing stored is lost; replacing a field counts its new size only.
    let big = json!("x".repeat(40 * 1024));
    (s.users)
        .set_profile_field(&alice, &a, "org.example.big", &big)
        .await
        .unwrap();
    let e = (s.users)
        .set_profile_field(&alice, &a, "org.example.big2", &big)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::ProfileTooLarge));
    (s.users)
        .set_profile_field(&alice, &a, "org.example.big", &json!("y".repeat(50 * 1024)))
        .await
        .unwrap();
    let p = s.users.get_profile(&a).await.unwrap();
    assert!(!p.fields.contains_key("org.example.big2"));
    assert_eq!(p.fields["org.example.job"], job);

    (s.users)
        .delete_profile_field(&alice, &a, "org.example.big")
        .await
        .unwrap();
    (s.users)
        .delete_profile_field(&alice, &a, "org.example.never_set")
        .await
        .unwrap();
    let p = s.users.get_profile(&a).await.unwrap();
    assert_eq!(p.fields.len(), 2);

    // Deactivation leaves no profile behind.
    (s.users).deactivate(&a, false).await.ok();
    let store = s.users.store.clone();
    let left = store.profile_fields(a.as_str()).unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn nhs_numbers_and_the_lock_apply_to_every_key_and_are_audited() {
    let mut cfg = Config::default();
    cfg.policy.lock_display_names = true;
    let policy = crate::service::wiring::policy_from_config(&cfg, None);
    let (s, _store, _d) = test_services_with_policy(policy);
    let (alice, a) = session(&s, "alice").await;
    let e = (s.users)
        .set_profile_field(&alice, &a, "org.example.note", &json!("Pt 943 476 5919"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nhs_number_in_metadata"), "{e}");
    let e = (s.users)
        .set_profile_field(&alice, &a, "m.tz", &json!("Europe/London"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("display_name_locked"), "{e}");
    let e = (s.users)
        .delete_profile_field(&alice, &a, "m.tz")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("display_name_locked"), "{e}");
    let denials = (s.audit.all().await.unwrap().into_iter())
        .filter(|r| r.action == crate::service::audit::action::POLICY_DENIAL)
        .count();
    assert_eq!(denials, 3);
    assert!(s.users.get_profile(&a).await.unwrap().fields.is_empty());

    // The avatar goes through the same hook: the NHS number rule applies, the name lock not.
    let with_number = ruma::OwnedMxcUri::from("mxc://localhost/9434765919");
    let e = (s.users)
        .set_avatar_url(&alice, &a, Some(with_number))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nhs_number_in_metadata"), "{e}");
    let fine = ruma::OwnedMxcUri::from("mxc://localhost/abcDEF123");
    (s.users)
        .set_avatar_url(&alice, &a, Some(fine.clone()))
        .await
        .unwrap();
    let p = s.users.get_profile(&a).await.unwrap();
    assert_eq!(p.avatar_url.as_deref(), Some(fine.as_str()));
}
