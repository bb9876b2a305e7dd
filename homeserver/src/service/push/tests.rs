//! Push service tests on a real store: rules round trips, counts, /notifications, pushers.

use ruma::api::client::push::RuleKind;
use ruma::api::client::push::set_pusher::v3::PusherAction;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::push::{
    Action, NewConditionalPushRule, NewPatternedPushRule, NewPushRule, PushCondition, Ruleset,
};
use ruma::{OwnedRoomId, OwnedUserId, UserId};
use serde_json::json;

use crate::service::rooms::EventSpec;
use crate::service::test_util::{is_kind, join, room, send, text, user};
use crate::service::{Services, test_services, test_services_and_store};

fn content_rule(id: &str) -> NewPushRule {
    NewPushRule::Content(NewPatternedPushRule::new(
        id.into(),
        "cake".into(),
        vec![Action::Notify],
    ))
}

fn user_content_ids(rules: &Ruleset) -> Vec<String> {
    rules
        .content
        .iter()
        .filter(|r| !r.default)
        .map(|r| r.rule_id.clone())
        .collect()
}

/// Alice's room with Bob joined under the display name "Bob Smith".
async fn ward(s: &Services) -> (OwnedUserId, OwnedUserId, OwnedRoomId) {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let r = room(s, &alice, "Ward 7", false).await;
    join(s, &r, &alice, &bob).await;
    let member = EventSpec::state(
        StateEventType::RoomMember,
        bob.as_str(),
        json!({ "membership": "join", "displayname": "Bob Smith" }),
    );
    s.rooms.send_state(&r, &bob, member).await.unwrap();
    (alice, bob, r)
}

async fn counts(s: &Services, r: &OwnedRoomId, u: &UserId) -> (u64, u64) {
    // Everything committed so far (also waits for the evaluations in flight).
    let c = s.push.unread_counts(r, u, i64::MAX).await.unwrap();
    (c.notifications, c.highlights)
}

#[tokio::test]
async fn default_ruleset_is_served_until_changed() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let rules = s.push.ruleset(&alice).await.unwrap();
    let json = |r: &Ruleset| serde_json::to_value(r).unwrap();
    assert_eq!(json(&rules), json(&Ruleset::server_default(&alice)));
    let master = s
        .push
        .rule(&alice, RuleKind::Override, ".m.rule.master")
        .await
        .unwrap();
    assert!(master.default && !master.enabled);
    // Nothing is stored until the user changes something.
    let stored = s
        .account_data
        .get_global(&alice, &alice, "m.push_rules")
        .await;
    assert!(stored.is_err());
}

#[tokio::test]
async fn put_enable_actions_delete_round_trip() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let p = &s.push;
    p.set_rule(&alice, content_rule("cake"), None, None)
        .await
        .unwrap();
    let rule = p.rule(&alice, RuleKind::Content, "cake").await.unwrap();
    assert_eq!(rule.pattern.as_deref(), Some("cake"));
    assert!(rule.enabled && !rule.default);

    p.set_rule_enabled(&alice, RuleKind::Content, "cake", false)
        .await
        .unwrap();
    assert!(
        !p.rule_enabled(&alice, RuleKind::Content, "cake")
            .await
            .unwrap()
    );
    p.set_rule_actions(&alice, RuleKind::Content, "cake", vec![])
        .await
        .unwrap();
    assert!(
        p.rule_actions(&alice, RuleKind::Content, "cake")
            .await
            .unwrap()
            .is_empty()
    );
    // Server-default rules can be switched off too.
    p.set_rule_enabled(&alice, RuleKind::Override, ".m.rule.master", true)
        .await
        .unwrap();
    assert!(
        p.rule_enabled(&alice, RuleKind::Override, ".m.rule.master")
            .await
            .unwrap()
    );

    // The ruleset is account data `m.push_rules`, so it reaches /sync.
    let stored = s
        .account_data
        .get_global(&alice, &alice, "m.push_rules")
        .await
        .unwrap();
    assert!(stored.json().get().contains("\"cake\""));

    p.delete_rule(&alice, RuleKind::Content, "cake")
        .await
        .unwrap();
    let err = p.rule(&alice, RuleKind::Content, "cake").await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    let err = p
        .delete_rule(&alice, RuleKind::Content, "cake")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    let err = p
        .delete_rule(&alice, RuleKind::Override, ".m.rule.master")
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
    let err = p
        .set_rule_enabled(&alice, RuleKind::Content, "nope", true)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    let err = p
        .set_rule(&alice, content_rule(".mine"), None, None)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
}

#[tokio::test]
async fn before_and_after_place_rules() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let p = &s.push;
    p.set_rule(&alice, content_rule("a"), None, None)
        .await
        .unwrap();
    // A new rule without before/after becomes the most important of its kind.
    p.set_rule(&alice, content_rule("b"), None, None)
        .await
        .unwrap();
    p.set_rule(&alice, content_rule("c"), None, Some("a"))
        .await
        .unwrap();
    p.set_rule(&alice, content_rule("d"), Some("b"), None)
        .await
        .unwrap();
    let rules = p.ruleset(&alice).await.unwrap();
    assert_eq!(user_content_ids(&rules), ["d", "b", "a", "c"]);

    let err = p
        .set_rule(&alice, content_rule("e"), Some("missing"), None)
        .await
        .unwrap_err();
    let crate::error::Error::Matrix { status, kind, .. } = err else {
        panic!("matrix error")
    };
    assert_eq!((status.as_u16(), kind), (400, ErrorKind::Unknown));
    let err = p
        .set_rule(&alice, content_rule("e"), Some(".m.rule.master"), None)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::InvalidParam));
}

#[tokio::test]
async fn mentions_highlight_and_messages_count() {
    let (s, _d) = test_services();
    let (alice, bob, r) = ward(&s).await;
    assert_eq!(counts(&s, &r, &bob).await, (0, 0));
    text(&s, &r, &alice, "obs are due").await;
    assert_eq!(counts(&s, &r, &bob).await, (1, 0));
    // A mention as clients send it: the display name in the body and m.mentions.
    let mention = json!({
        "msgtype": "m.text", "body": "Bob Smith: bed 4 please",
        "m.mentions": { "user_ids": [bob] },
    });
    send(
        &s,
        &r,
        &alice,
        ruma::events::TimelineEventType::RoomMessage,
        mention,
    )
    .await;
    assert_eq!(counts(&s, &r, &bob).await, (2, 1));
    // The sender's own messages never count for them.
    assert_eq!(counts(&s, &r, &alice).await, (0, 0));
}

#[tokio::test]
async fn display_name_rule_uses_the_room_display_name() {
    let (s, _d) = test_services();
    let (alice, bob, r) = ward(&s).await;
    // Body-only display-name matching is a user rule since the spec retired the default one.
    #[allow(deprecated)]
    let rule = NewPushRule::Override(NewConditionalPushRule::new(
        "name".into(),
        vec![PushCondition::ContainsDisplayName],
        vec![
            Action::Notify,
            Action::SetTweak(ruma::push::Tweak::Highlight(
                ruma::push::HighlightTweakValue::Yes,
            )),
        ],
    ));
    s.push.set_rule(&bob, rule, None, None).await.unwrap();
    text(&s, &r, &alice, "ask Bob Smith about bed 4").await;
    assert_eq!(counts(&s, &r, &bob).await, (1, 1));
    text(&s, &r, &alice, "ask Bobby about bed 5").await;
    assert_eq!(counts(&s, &r, &bob).await, (2, 1));
}

#[tokio::test]
async fn read_receipt_and_own_message_reset_counts() {
    let (s, _d) = test_services();
    let (alice, bob, r) = ward(&s).await;
    let e1 = text(&s, &r, &alice, "one").await;
    s.receipts.set(&r, &bob, "m.read", &e1, None).await.unwrap();
    assert_eq!(counts(&s, &r, &bob).await, (0, 0), "read up to e1");
    text(&s, &r, &alice, "two").await;
    assert_eq!(counts(&s, &r, &bob).await, (1, 0), "after the receipt");
    text(&s, &r, &bob, "on it").await;
    assert_eq!(
        counts(&s, &r, &bob).await,
        (0, 0),
        "own message reads the room"
    );
}

#[tokio::test]
async fn sync_reports_push_counts() {
    use crate::service::sync::SyncRequest;
    use crate::service::users::Session;
    let (s, _d) = test_services();
    let (alice, bob, r) = ward(&s).await;
    let mention =
        json!({ "msgtype": "m.text", "body": "Bob", "m.mentions": { "user_ids": [bob] } });
    send(
        &s,
        &r,
        &alice,
        ruma::events::TimelineEventType::RoomMessage,
        mention,
    )
    .await;
    let session = Session {
        user_id: bob.clone(),
        device_id: "DEV".into(),
        is_admin: false,
        token_hash: String::new(),
        appservice: None,
    };
    let req = SyncRequest {
        since: None,
        full_state: false,
        timeout: std::time::Duration::ZERO,
        filter: Default::default(),
        use_state_after: false,
        set_presence: ruma::presence::PresenceState::Online,
    };
    let res = s.sync.sync(&session, req).await.unwrap();
    let room = &res.rooms.join[&r];
    let c = &room.unread_notifications;
    assert_eq!(c.notification_count.map(u64::from), Some(1));
    assert_eq!(c.highlight_count.map(u64::from), Some(1));
}

#[tokio::test]
async fn notifications_list_events_with_read_flag() {
    let (s, _d) = test_services();
    let (alice, bob, r) = ward(&s).await;
    let e1 = text(&s, &r, &alice, "one").await;
    let mention =
        json!({ "msgtype": "m.text", "body": "Bob", "m.mentions": { "user_ids": [bob] } });
    let e2 = send(
        &s,
        &r,
        &alice,
        ruma::events::TimelineEventType::RoomMessage,
        mention,
    )
    .await;
    s.receipts.set(&r, &bob, "m.read", &e1, None).await.unwrap();
    let _ = counts(&s, &r, &bob).await; // waits for the evaluations

    let res = s.push.notifications(&bob, None, None, None).await.unwrap();
    let got: Vec<_> = res
        .notifications
        .iter()
        .map(|n| {
            (
                n.event.get_field::<String>("event_id").unwrap().unwrap(),
                n.read,
            )
        })
        .collect();
    assert_eq!(got, [(e2.to_string(), false), (e1.to_string(), true)]);
    assert!(res.next_token.is_none());
    assert!(
        res.notifications[0]
            .actions
            .iter()
            .any(Action::is_highlight)
    );

    let only = s
        .push
        .notifications(&bob, None, None, Some("highlight"))
        .await
        .unwrap();
    assert_eq!(only.notifications.len(), 1);
    // Paging: one per page, the token continues below.
    let page = s
        .push
        .notifications(&bob, None, Some(1u32.into()), None)
        .await
        .unwrap();
    let token = page.next_token.expect("more");
    let next = s
        .push
        .notifications(&bob, Some(&token), Some(1u32.into()), None)
        .await
        .unwrap();
    let id = next.notifications[0]
        .event
        .get_field::<String>("event_id")
        .unwrap();
    assert_eq!(id.as_deref(), Some(e1.as_str()));
    assert!(
        s.push
            .notifications(&alice, None, None, None)
            .await
            .unwrap()
            .notifications
            .is_empty()
    );
}

fn pusher_action(v: serde_json::Value) -> PusherAction {
    serde_json::from_value(v).unwrap()
}

pub(super) fn http_pusher(url: &str, pushkey: &str) -> serde_json::Value {
    json!({
        "kind": "http", "app_id": "uk.nhs.handover", "pushkey": pushkey,
        "app_display_name": "Handover", "device_display_name": "Ward phone", "lang": "en",
        "data": { "url": url, "format": "event_id_only" },
    })
}

#[tokio::test]
async fn pushers_set_get_replace_delete() {
    let (s, _store, _d) = test_services_and_store();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let url = "https://push.example/_matrix/push/v1/notify";
    s.push
        .set_pusher(&alice, pusher_action(http_pusher(url, "k1")))
        .await
        .unwrap();
    let got = s.push.pushers(&alice).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ids.pushkey, "k1");
    let v = serde_json::to_value(&got[0]).unwrap();
    assert_eq!(v["data"]["url"], url);
    assert_eq!(v["data"]["format"], "event_id_only");

    // The same device for another user, without append: it leaves Alice.
    s.push
        .set_pusher(&bob, pusher_action(http_pusher(url, "k1")))
        .await
        .unwrap();
    assert!(s.push.pushers(&alice).await.unwrap().is_empty());
    assert_eq!(s.push.pushers(&bob).await.unwrap().len(), 1);

    let delete = json!({ "kind": null, "app_id": "uk.nhs.handover", "pushkey": "k1" });
    s.push
        .set_pusher(&bob, pusher_action(delete))
        .await
        .unwrap();
    assert!(s.push.pushers(&bob).await.unwrap().is_empty());

    for bad in [
        http_pusher("http://push.example/_matrix/push/v1/notify", "k2"),
        http_pusher("https://push.example/other", "k2"),
        json!({ "kind": "email", "app_id": "m.email", "pushkey": "a@nhs.net",
                "app_display_name": "E", "device_display_name": "E", "lang": "en", "data": {} }),
    ] {
        let err = s
            .push
            .set_pusher(&bob, pusher_action(bad))
            .await
            .unwrap_err();
        assert!(is_kind(&err, ErrorKind::InvalidParam), "{err}");
    }
}
