//! Console sign-in is for admins only; posts need the session's CSRF token.

use ruma::api::error::ErrorKind;

use super::csrf_token;
use crate::service::test_services;
use crate::service::test_util::is_kind;

#[tokio::test]
async fn admins_only_and_csrf_checked() {
    let (s, _d) = test_services();
    s.users
        .create_user("root", Some("a long password"), true, true)
        .await
        .unwrap();
    s.users
        .create_user("nurse", Some("a long password"), false, true)
        .await
        .unwrap();
    let err = s
        .console
        .login("nurse", "a long password", None, "https")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    // The refused sign-in leaves no session behind.
    let nurse = s.users.user_id_for("nurse").unwrap();
    assert!(s.users.list_devices(&nurse).await.unwrap().is_empty());

    let token = s
        .console
        .login("root", "a long password", None, "https")
        .await
        .unwrap();
    let cs = s.console.session(&token, None).await.unwrap();
    assert_eq!(cs.csrf, csrf_token(&token));
    assert_ne!(cs.csrf, crate::service::users::hash_token(&token));
    for bad in [None, Some("0".repeat(64))] {
        let err = s
            .console
            .session_for_post(&token, bad.as_deref(), None)
            .await
            .err()
            .unwrap();
        assert!(is_kind(&err, ErrorKind::Forbidden));
    }
    assert!(
        s.console
            .session_for_post(&token, Some(&cs.csrf), None)
            .await
            .is_ok()
    );
}
