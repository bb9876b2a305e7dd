//! Media moderation and registration tokens in the admin service: admin-only with audited
//! refusals, quarantine through the scanner's flag (never served), protection, deletion
//! through the media service, and token limits.

use ruma::api::error::ErrorKind;

use super::{NewToken, action};
use crate::service::test_services;
use crate::service::test_util::is_kind;
use crate::service::users::{Session, test_login};
use crate::store::admin_media::MediaListQuery;

async fn admin(s: &crate::service::Services) -> Session {
    let id = (s.users)
        .create_user("root", Some("a long password"), true, true)
        .await
        .unwrap();
    let new = s.users.create_session(&id, None, None).await.unwrap();
    s.users.authenticate(&new.access_token, None).await.unwrap()
}

fn page() -> MediaListQuery {
    MediaListQuery {
        limit: 100,
        ..MediaListQuery::default()
    }
}

#[tokio::test]
async fn quarantine_protect_and_delete_follow_synapse_and_are_audited() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let (alice, _) = test_login(&s.users, "alice", "a long password").await;
    let mxc = (s.media)
        .upload(
            &alice.user_id,
            b"notes".to_vec(),
            None,
            Some("n.bin".into()),
        )
        .await
        .unwrap();
    let id = mxc.as_str().rsplit('/').next().unwrap().to_owned();

    let err = s
        .admin
        .quarantine_media(&alice, "localhost", &id)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    let err = (s.admin)
        .user_media(&alice, &alice.user_id, page())
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));

    // Protected: a quarantine leaves it alone.
    s.admin.protect_media(&root, &id, true).await.unwrap();
    s.admin
        .quarantine_media(&root, "localhost", &id)
        .await
        .unwrap();
    assert!(
        s.media
            .download(
                &alice.user_id,
                ruma::server_name!("localhost"),
                &id,
                None,
                std::time::Duration::ZERO
            )
            .await
            .is_ok()
    );
    let (rows, total) = s
        .admin
        .user_media(&root, &alice.user_id, page())
        .await
        .unwrap();
    assert_eq!((total, rows[0].safe_from_quarantine), (1, true));
    assert_eq!(rows[0].quarantined_by, None);

    s.admin.protect_media(&root, &id, false).await.unwrap();
    s.admin
        .quarantine_media(&root, "localhost", &id)
        .await
        .unwrap();
    assert!(
        s.media
            .download(
                &alice.user_id,
                ruma::server_name!("localhost"),
                &id,
                None,
                std::time::Duration::ZERO
            )
            .await
            .is_err()
    );
    let (rows, _) = s
        .admin
        .user_media(&root, &alice.user_id, page())
        .await
        .unwrap();
    assert_eq!(
        rows[0].quarantined_by.as_deref(),
        Some(root.user_id.as_str())
    );

    let err = s
        .admin
        .quarantine_media(&root, "other.org", &id)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));

    let gone = s.admin.delete_media(&root, "localhost", &id).await.unwrap();
    assert_eq!(gone.as_slice(), std::slice::from_ref(&id));
    let (_, total) = s
        .admin
        .user_media(&root, &alice.user_id, page())
        .await
        .unwrap();
    assert_eq!(total, 0);
    let err = s
        .admin
        .delete_media(&root, "localhost", &id)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));

    let log = s.audit.all().await.unwrap();
    let actions: Vec<&str> = (log.iter())
        .filter(|r| r.actor == root.user_id.as_str())
        .map(|r| r.action.as_str())
        .collect();
    for a in [
        action::MEDIA_PROTECT,
        action::MEDIA_QUARANTINE,
        action::MEDIA_DELETE,
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn registration_tokens_validate_and_never_enter_the_trail() {
    let (s, _d) = test_services();
    let root = admin(&s).await;
    let t = (s.admin)
        .create_registration_token(
            &root,
            NewToken {
                token: Some("ward-7.icu~1".into()),
                uses_allowed: Some(2),
                ..NewToken::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((t.uses_allowed, t.pending, t.completed), (Some(2), 0, 0));
    let again = NewToken {
        token: Some("ward-7.icu~1".into()),
        ..NewToken::default()
    };
    let err = s
        .admin
        .create_registration_token(&root, again)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
    for bad in [Some(0), Some(65)] {
        let n = NewToken {
            length: bad,
            ..NewToken::default()
        };
        let err = s
            .admin
            .create_registration_token(&root, n)
            .await
            .unwrap_err();
        assert!(is_kind(&err, ErrorKind::InvalidParam));
    }
    let generated = (s.admin)
        .create_registration_token(&root, NewToken::default())
        .await
        .unwrap();
    assert_eq!(generated.token.len(), 16);

    assert_eq!(
        s.admin
            .registration_tokens(&root, Some(true))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        s.admin
            .registration_tokens(&root, Some(false))
            .await
            .unwrap()
            .is_empty()
    );

    let log = s.audit.all().await.unwrap();
    let text = format!("{log:?}");
    assert!(
        !text.contains("ward-7.icu~1"),
        "a token reached the audit trail"
    );
    assert!(!text.contains(&generated.token));
}
