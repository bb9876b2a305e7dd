//! Reports: stored with what was reported; 404 where the spec says so.

use ruma::api::error::ErrorKind;

use crate::service::test_services;
use crate::service::test_util::{history_visibility, is_kind, join, room, text, user};

#[tokio::test]
async fn event_reports_need_a_visible_event_in_a_joined_room() {
    let (s, _d) = test_services();
    let (a, b, c) = (
        user(&s, "alice").await,
        user(&s, "bob").await,
        user(&s, "carol").await,
    );
    let r = room(&s, &a, "Ward 7", false).await;
    history_visibility(&s, &r, &a, "joined").await;
    let before_bob = text(&s, &r, &a, "sent before bob joined").await;
    join(&s, &r, &a, &b).await;
    let after_bob = text(&s, &r, &a, "sent after bob joined").await;

    // Bob may not see what was sent before he joined: 404, nothing stored.
    let err = s
        .reports
        .report_event(&b, &r, &before_bob, Some("x".into()))
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    // Carol is not in the room at all: 404 too (not 403).
    let err = s
        .reports
        .report_event(&c, &r, &after_bob, None)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    assert!(s.reports.reports_after(0, 10).await.unwrap().is_empty());

    let id = s
        .reports
        .report_event(&b, &r, &after_bob, Some("wrong patient".into()))
        .await
        .unwrap();
    let stored = s.reports.reports_after(0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    let (got_id, rep) = &stored[0];
    assert_eq!(*got_id, id);
    assert_eq!(rep.reporter, b);
    assert_eq!(rep.room_id.as_ref(), Some(&r));
    assert_eq!(rep.event_id.as_ref(), Some(&after_bob));
    assert_eq!(rep.reason.as_deref(), Some("wrong patient"));
    assert_eq!(rep.target_user, None);
}

#[tokio::test]
async fn room_and_user_reports_are_404_for_unknown_targets() {
    let (s, _d) = test_services();
    let (a, c) = (user(&s, "alice").await, user(&s, "carol").await);
    let r = room(&s, &a, "Ward 7", false).await;
    // Carol is not joined, which room reports do not require.
    s.reports.report_room(&c, &r, "spam".into()).await.unwrap();
    let unknown_room: ruma::OwnedRoomId = "!nope:localhost".try_into().unwrap();
    let err = s
        .reports
        .report_room(&c, &unknown_room, String::new())
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));

    s.reports
        .report_user(&c, &a, "abusive".into())
        .await
        .unwrap();
    let ghost: ruma::OwnedUserId = "@ghost:localhost".try_into().unwrap();
    let err = s
        .reports
        .report_user(&c, &ghost, String::new())
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));

    let stored = s.reports.reports_after(0, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].1.room_id.as_ref(), Some(&r));
    assert_eq!(stored[0].1.event_id, None);
    assert_eq!(stored[1].1.target_user.as_ref(), Some(&a));
    // Paging by id.
    let rest = s.reports.reports_after(stored[0].0, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
}
