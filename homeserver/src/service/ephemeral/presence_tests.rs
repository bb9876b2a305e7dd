//! Presence: who may set and see it, and how it reaches /sync.

use std::time::{Duration, Instant};

use ruma::api::error::ErrorKind;
use ruma::presence::PresenceState;
use ruma::{OwnedUserId, UserId};
use serde_json::Value;

use crate::service::Services;
use crate::service::sync::SyncRequest;
use crate::service::test_services;
use crate::service::test_util::{is_kind, join, room, user};
use crate::service::users::Session;

fn req(since: Option<i64>, timeout_ms: u64, set_presence: PresenceState) -> SyncRequest {
    SyncRequest {
        since,
        full_state: false,
        timeout: Duration::from_millis(timeout_ms),
        filter: Default::default(),
        use_state_after: false,
        set_presence,
    }
}

async fn session(s: &Services, user: &UserId) -> Session {
    let new = s.users.create_session(user, None, None).await.unwrap();
    s.users.authenticate(&new.access_token, None).await.unwrap()
}

/// `(sender, content)` of each presence event in a sync response.
fn presence_of(res: &ruma::api::client::sync::sync_events::v3::Response) -> Vec<(String, Value)> {
    res.presence
        .events
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e.json().get()).unwrap();
            (
                v["sender"].as_str().unwrap().to_owned(),
                v["content"].clone(),
            )
        })
        .collect()
}

async fn two_users_sharing_a_room() -> (Services, tempfile::TempDir, OwnedUserId, OwnedUserId) {
    let (s, dir) = test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    (s, dir, a, b)
}

#[tokio::test]
async fn only_own_presence_is_settable_and_only_room_mates_see_it() {
    let (s, _d) = test_services();
    let (a, b, c) = (
        user(&s, "alice").await,
        user(&s, "bob").await,
        user(&s, "carol").await,
    );
    let busy = Some("On the ward".to_owned());
    let err = s
        .presence
        .set(&a, &b, &PresenceState::Online, None)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    s.presence
        .set(&a, &a, &PresenceState::Unavailable, busy.clone())
        .await
        .unwrap();

    // Nobody shares a room with alice yet: only she sees her presence.
    let own = s.presence.get(&a, &a).await.unwrap();
    assert_eq!(own.state, PresenceState::Unavailable);
    assert_eq!(own.status_msg, busy);
    let err = s.presence.get(&b, &a).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));

    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    let seen = s.presence.get(&b, &a).await.unwrap();
    assert_eq!(seen.state, PresenceState::Unavailable);
    assert_eq!(seen.status_msg, busy);
    assert!(seen.last_active_ago_ms.is_some());
    assert!(!seen.currently_active);
    let err = s.presence.get(&c, &a).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    // Bob never set anything: offline.
    assert_eq!(
        s.presence.get(&a, &b).await.unwrap().state,
        PresenceState::Offline
    );
}

#[tokio::test]
async fn presence_changes_reach_room_mates_sync_after_since() {
    let (s, _d, a, b) = two_users_sharing_a_room().await;
    let bob = session(&s, &b).await;
    // Bob's own syncs do not mark him online.
    let first = s
        .sync
        .sync(&bob, req(None, 0, PresenceState::Offline))
        .await
        .unwrap();
    assert!(presence_of(&first).is_empty());
    let since = crate::service::filter::parse_token(&first.next_batch);

    // Bob waits; Alice's sync marks her online and wakes him.
    let (s2, bob2) = (s.clone(), bob.clone());
    let waiter = tokio::spawn(async move {
        s2.sync
            .sync(&bob2, req(since, 10_000, PresenceState::Offline))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let alice = session(&s, &a).await;
    s.sync
        .sync(&alice, req(None, 0, PresenceState::Online))
        .await
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "woken, not timed out"
    );
    let got = presence_of(&res);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, a.as_str());
    assert_eq!(got[0].1["presence"], "online");
    assert_eq!(got[0].1["currently_active"], true);

    // Already reported: not again after the new since.
    let since = crate::service::filter::parse_token(&res.next_batch);
    let again = s
        .sync
        .sync(&bob, req(since, 0, PresenceState::Offline))
        .await
        .unwrap();
    assert!(presence_of(&again).is_empty());
}

#[tokio::test]
async fn own_sync_presence_does_not_wake_own_long_poll_and_refreshes_take_no_position() {
    let (s, _d, a, _b) = two_users_sharing_a_room().await;
    let alice = session(&s, &a).await;
    let first = s
        .sync
        .sync(&alice, req(None, 0, PresenceState::Online))
        .await
        .unwrap();
    // Her own presence is in her initial sync.
    assert_eq!(presence_of(&first)[0].0, a.as_str());
    let since = crate::service::filter::parse_token(&first.next_batch);

    // Still online: nothing new, no stream position taken, the long-poll runs to its timeout.
    let before = s.rooms.current_pos();
    let start = Instant::now();
    let res = s
        .sync
        .sync(&alice, req(since, 300, PresenceState::Online))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(s.rooms.current_pos(), before);
    assert!(presence_of(&res).is_empty());

    // Going idle through her own sync is a change, but not news to her own long-poll.
    let start = Instant::now();
    let res = s
        .sync
        .sync(&alice, req(since, 300, PresenceState::Unavailable))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "own set_presence must not end the long-poll"
    );
    assert_eq!(presence_of(&res)[0].1["presence"], "unavailable");
}
