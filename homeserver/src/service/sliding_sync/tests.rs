//! Sliding sync on a real store: lists, incremental updates, required_state, invites,
//! subscriptions, unknown positions, long-polling and the extensions.

use std::collections::BTreeMap;
use std::time::Duration;

use ruma::api::client::sync::sync_events::v5::{Request, Response, request};
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, OwnedUserId, UInt, uint};
use serde_json::Value;

use crate::service::Services;
use crate::service::test_util::{join, room, text, user};
use crate::service::users::Session;

async fn session(s: &Services, u: &OwnedUserId) -> Session {
    let new = s.users.create_session(u, None, None).await.unwrap();
    s.users.authenticate(&new.access_token, None).await.unwrap()
}

fn list(end: u32, required_state: &[(&str, &str)], timeline_limit: u32) -> request::List {
    let mut l = request::List::default();
    l.ranges = vec![(uint!(0), UInt::from(end))];
    l.room_details.required_state = pairs(required_state);
    l.room_details.timeline_limit = UInt::from(timeline_limit);
    l
}

fn pairs(v: &[(&str, &str)]) -> Vec<(StateEventType, String)> {
    v.iter()
        .map(|(t, k)| ((*t).into(), (*k).to_owned()))
        .collect()
}

fn req(pos: Option<&str>, lists: Vec<(&str, request::List)>) -> Request {
    let mut r = Request::new();
    r.pos = pos.map(str::to_owned);
    r.lists = lists
        .into_iter()
        .map(|(n, l)| (n.to_owned(), l))
        .collect::<BTreeMap<_, _>>();
    r
}

fn json<T>(raw: &ruma::serde::Raw<T>) -> Value {
    serde_json::from_str(raw.json().get()).unwrap()
}

fn bodies(res: &Response, room: &OwnedRoomId) -> Vec<String> {
    res.rooms[room]
        .timeline
        .iter()
        .map(|e| json(e)["content"]["body"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn state_keys(res: &Response, room: &OwnedRoomId) -> Vec<(String, String)> {
    let mut v: Vec<_> = res.rooms[room]
        .required_state
        .iter()
        .map(|e| {
            let e = json(e);
            (
                e["type"].as_str().unwrap().to_owned(),
                e["state_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn bump(res: &Response, room: &OwnedRoomId) -> u64 {
    res.rooms[room].bump_stamp.unwrap().into()
}

#[tokio::test]
async fn initial_lists_rooms_by_recency_with_count_and_ranges() {
    let (s, _dir) = crate::service::test_services();
    let a = user(&s, "alice").await;
    let r1 = room(&s, &a, "Ward 1", false).await;
    let r2 = room(&s, &a, "Ward 2", false).await;
    let r3 = room(&s, &a, "Ward 3", false).await;
    text(&s, &r1, &a, "newest").await;
    let me = session(&s, &a).await;
    // Recency: r1 (just written to), r3, r2. A range of two leaves r2 out.
    let res = s
        .sliding_sync
        .sync(&me, req(None, vec![("all", list(1, &[], 1))]))
        .await
        .unwrap();
    assert_eq!(res.lists["all"].count, uint!(3));
    let mut ids: Vec<_> = res.rooms.keys().cloned().collect();
    ids.sort_by_key(|r| std::cmp::Reverse(bump(&res, r)));
    assert_eq!(ids, vec![r1.clone(), r3.clone()]);
    assert!(!res.rooms.contains_key(&r2));
    let room1 = &res.rooms[&r1];
    assert_eq!(room1.initial, Some(true));
    assert_eq!(room1.name.as_deref(), Some("Ward 1"));
    assert_eq!(bodies(&res, &r1), ["newest"]);
    assert!(room1.limited && room1.prev_batch.is_some());
    assert_eq!(room1.joined_count, Some(uint!(1)));
    assert!(!res.pos.is_empty());
}

#[tokio::test]
async fn a_new_message_makes_only_its_room_reappear() {
    let (s, _dir) = crate::service::test_services();
    let a = user(&s, "alice").await;
    let r1 = room(&s, &a, "Ward 1", false).await;
    let r2 = room(&s, &a, "Ward 2", false).await;
    let me = session(&s, &a).await;
    let first = s
        .sliding_sync
        .sync(&me, req(None, vec![("all", list(9, &[], 5))]))
        .await
        .unwrap();
    assert_eq!(first.rooms.len(), 2);
    let old_bump = bump(&first, &r1);
    // Nothing happened: nothing to say about any room.
    let quiet = s
        .sliding_sync
        .sync(&me, req(Some(&first.pos), vec![("all", list(9, &[], 5))]))
        .await
        .unwrap();
    assert!(quiet.rooms.is_empty(), "{:?}", quiet.rooms.keys());
    text(&s, &r1, &a, "obs due").await;
    let next = s
        .sliding_sync
        .sync(&me, req(Some(&quiet.pos), vec![("all", list(9, &[], 5))]))
        .await
        .unwrap();
    assert_eq!(next.rooms.keys().collect::<Vec<_>>(), vec![&r1]);
    assert!(!next.rooms.contains_key(&r2));
    assert_eq!(bodies(&next, &r1), ["obs due"]);
    assert_eq!(next.rooms[&r1].initial, None);
    assert_eq!(next.rooms[&r1].num_live, Some(uint!(1)));
    assert!(bump(&next, &r1) > old_bump);
    assert_eq!(next.lists["all"].count, uint!(2));
}

#[tokio::test]
async fn required_state_wildcards_me_and_lazy_members() {
    let (s, _dir) = crate::service::test_services();
    let (a, b, c) = (
        user(&s, "alice").await,
        user(&s, "bob").await,
        user(&s, "carol").await,
    );
    let r = room(&s, &a, "Ward 1", false).await;
    join(&s, &r, &a, &b).await;
    join(&s, &r, &a, &c).await;
    text(&s, &r, &b, "from bob").await;
    let me = session(&s, &a).await;
    let lazy = [
        ("m.room.member", "$LAZY"),
        ("m.room.member", "$ME"),
        ("m.room.name", ""),
    ];
    let res = s
        .sliding_sync
        .sync(&me, req(None, vec![("l", list(0, &lazy, 1))]))
        .await
        .unwrap();
    let key = |t: &str, k: &OwnedUserId| (t.to_owned(), k.to_string());
    assert_eq!(
        state_keys(&res, &r),
        vec![
            key("m.room.member", &a),
            key("m.room.member", &b),
            ("m.room.name".into(), String::new())
        ],
        "carol sent nothing in the timeline"
    );
    // Members by wildcard; every state event by double wildcard.
    let members = s
        .sliding_sync
        .sync(
            &me,
            req(None, vec![("l", list(0, &[("m.room.member", "*")], 1))]),
        )
        .await
        .unwrap();
    assert_eq!(state_keys(&members, &r).len(), 3);
    let all = s
        .sliding_sync
        .sync(&me, req(None, vec![("l", list(0, &[("*", "*")], 1))]))
        .await
        .unwrap();
    let all = state_keys(&all, &r);
    assert!(all.contains(&("m.room.create".into(), String::new())));
    assert!(all.contains(&("m.room.power_levels".into(), String::new())));
    assert!(all.len() > 5);
}

#[tokio::test]
async fn invited_room_carries_invite_state() {
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 1", false).await;
    text(&s, &r, &a, "private history").await;
    s.rooms.invite(&r, &a, &b, None, true).await.unwrap();
    let bob = session(&s, &b).await;
    let mut invites = list(9, &[("*", "*")], 5);
    let mut f = request::ListFilters::default();
    f.is_invite = Some(true);
    invites.filters = Some(f);
    let res = s
        .sliding_sync
        .sync(&bob, req(None, vec![("invites", invites)]))
        .await
        .unwrap();
    assert_eq!(res.lists["invites"].count, uint!(1));
    let room = &res.rooms[&r];
    let stripped: Vec<Value> = room
        .invite_state
        .as_ref()
        .unwrap()
        .iter()
        .map(json)
        .collect();
    assert!(
        stripped
            .iter()
            .any(|e| e["type"] == "m.room.member" && e["state_key"] == b.as_str())
    );
    assert!(stripped.iter().any(|e| e["type"] == "m.room.name"));
    assert!(room.timeline.is_empty() && room.required_state.is_empty());
    assert_eq!(room.is_dm, Some(true), "invited with is_direct");
    assert_eq!(room.name.as_deref(), Some("Ward 1"));
    // Joining sends the room whole, as a first send.
    s.rooms.join(&r, &b, None).await.unwrap();
    let next = s
        .sliding_sync
        .sync(&bob, req(Some(&res.pos), vec![("all", list(9, &[], 5))]))
        .await
        .unwrap();
    assert_eq!(next.rooms[&r].initial, Some(true));
    assert!(next.rooms[&r].invite_state.is_none());
    assert!(bodies(&next, &r).contains(&"private history".to_owned()));
}

#[tokio::test]
async fn subscription_outside_ranges_is_returned() {
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let old = room(&s, &a, "Old", false).await;
    let _new = room(&s, &a, "New", false).await;
    let theirs = room(&s, &b, "Not mine", false).await;
    let me = session(&s, &a).await;
    let mut r = req(None, vec![("all", list(0, &[], 1))]);
    let mut sub = request::RoomSubscription::default();
    sub.timeline_limit = uint!(3);
    sub.required_state = pairs(&[("m.room.create", "")]);
    r.room_subscriptions.insert(old.clone(), sub.clone());
    r.room_subscriptions.insert(theirs.clone(), sub);
    let res = s.sliding_sync.sync(&me, r).await.unwrap();
    assert_eq!(
        res.rooms.len(),
        2,
        "the newest room by range, the old one by subscription"
    );
    assert!(res.rooms.contains_key(&old));
    assert_eq!(
        state_keys(&res, &old),
        vec![("m.room.create".into(), String::new())]
    );
    assert_eq!(res.rooms[&old].timeline.len(), 3);
    assert!(
        !res.rooms.contains_key(&theirs),
        "no peeking into others' rooms"
    );
}

#[tokio::test]
async fn unknown_pos_is_m_unknown_pos() {
    let (s, _dir) = crate::service::test_services();
    let a = user(&s, "alice").await;
    let me = session(&s, &a).await;
    let err = s
        .sliding_sync
        .sync(&me, req(Some("12345"), vec![]))
        .await
        .unwrap_err();
    assert!(crate::service::test_util::is_kind(
        &err,
        ruma::api::error::ErrorKind::UnknownPos
    ));
    // A pos from another connection id is unknown too.
    let res = s.sliding_sync.sync(&me, req(None, vec![])).await.unwrap();
    let mut other = req(Some(&res.pos), vec![]);
    other.conn_id = Some("other".into());
    assert!(s.sliding_sync.sync(&me, other).await.is_err());
    assert!(
        s.sliding_sync
            .sync(&me, req(Some(&res.pos), vec![]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn long_poll_wakes_on_a_send_not_the_timeout() {
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 1", false).await;
    join(&s, &r, &a, &b).await;
    let bob = session(&s, &b).await;
    let first = s
        .sliding_sync
        .sync(&bob, req(None, vec![("all", list(9, &[], 5))]))
        .await
        .unwrap();
    let s2 = s.clone();
    let pos = first.pos.clone();
    let waiter = tokio::spawn(async move {
        let mut r = req(Some(&pos), vec![("all", list(9, &[], 5))]);
        r.timeout = Some(Duration::from_secs(10));
        s2.sliding_sync.sync(&bob, r).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiter.is_finished(), "nothing new: the request waits");
    let start = std::time::Instant::now();
    text(&s, &r, &a, "wake up").await;
    let res = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "woken by the send"
    );
    assert_eq!(bodies(&res, &r), ["wake up"]);
    assert_ne!(res.pos, first.pos);
}

#[tokio::test]
async fn account_data_receipts_and_typing_extensions() {
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 1", false).await;
    join(&s, &r, &a, &b).await;
    let ev = text(&s, &r, &a, "read me").await;
    let raw = |v: &str| serde_json::value::RawValue::from_string(v.to_owned()).unwrap();
    s.account_data
        .set_global(&b, &b, "m.direct", &raw(&format!(r#"{{"{a}":["{r}"]}}"#)))
        .await
        .unwrap();
    s.account_data
        .set_room(&b, &b, &r, "m.tag", &raw(r#"{"tags":{"u.ward":{}}}"#))
        .await
        .unwrap();
    s.receipts.set(&r, &a, "m.read", &ev, None).await.unwrap();
    s.typing
        .set(&r, &a, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let bob = session(&s, &b).await;
    let with_ext = |pos: Option<&str>| {
        let mut q = req(pos, vec![("all", list(9, &[], 1))]);
        let mut e = request::Extensions::default();
        e.account_data.enabled = Some(true);
        e.receipts.enabled = Some(true);
        e.typing.enabled = Some(true);
        e.to_device.enabled = Some(true);
        e.e2ee.enabled = Some(true);
        q.extensions = e;
        q
    };
    let res = s.sliding_sync.sync(&bob, with_ext(None)).await.unwrap();
    let ext = &res.extensions;
    assert!(
        ext.account_data
            .global
            .iter()
            .any(|e| json(e)["type"] == "m.direct")
    );
    assert_eq!(json(&ext.account_data.rooms[&r][0])["type"], "m.tag");
    assert!(
        json(&ext.receipts.rooms[&r])["content"][ev.as_str()]["m.read"][a.as_str()].is_object()
    );
    assert_eq!(
        json(&ext.typing.rooms[&r])["content"]["user_ids"][0],
        a.as_str()
    );
    assert_eq!(res.rooms[&r].is_dm, Some(true), "m.direct names the room");
    // Nothing queued: no to-device events, but a token; key counts and fallback types present.
    let td = ext.to_device.as_ref().unwrap();
    assert!(td.events.is_empty());
    assert!(td.next_batch.parse::<i64>().unwrap() > 0);
    assert!(ext.e2ee.device_unused_fallback_key_types.is_some());
    // Incrementally, only what changed: a new typing stop, no account data, no old receipts.
    s.typing.set(&r, &a, None).await.unwrap();
    let next = s
        .sliding_sync
        .sync(&bob, with_ext(Some(&res.pos)))
        .await
        .unwrap();
    let ext = &next.extensions;
    assert!(ext.account_data.is_empty() && ext.receipts.is_empty());
    assert_eq!(
        json(&ext.typing.rooms[&r])["content"]["user_ids"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn a_left_room_is_sent_once_with_the_leave() {
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 1", false).await;
    join(&s, &r, &a, &b).await;
    let bob = session(&s, &b).await;
    let me = [("m.room.member", "$ME")];
    let first = s
        .sliding_sync
        .sync(&bob, req(None, vec![("all", list(9, &me, 1))]))
        .await
        .unwrap();
    assert!(first.rooms.contains_key(&r));
    s.rooms.leave(&r, &b, None).await.unwrap();
    text(&s, &r, &a, "after bob left").await;
    let next = s
        .sliding_sync
        .sync(&bob, req(Some(&first.pos), vec![("all", list(9, &me, 1))]))
        .await
        .unwrap();
    assert_eq!(next.lists["all"].count, uint!(0));
    let left = &next.rooms[&r];
    let last = json(left.timeline.last().unwrap());
    assert_eq!(last["content"]["membership"], "leave");
    assert!(!bodies(&next, &r).contains(&"after bob left".to_owned()));
    let again = s
        .sliding_sync
        .sync(&bob, req(Some(&next.pos), vec![("all", list(9, &me, 1))]))
        .await
        .unwrap();
    assert!(again.rooms.is_empty());
}

#[tokio::test]
async fn reading_elsewhere_resends_the_room_with_cleared_counts() {
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 1", false).await;
    let quiet = room(&s, &a, "Quiet", false).await;
    join(&s, &r, &a, &b).await;
    join(&s, &quiet, &a, &b).await;
    let ev = text(&s, &r, &a, "unread").await;
    let bob = session(&s, &b).await;
    let first = s
        .sliding_sync
        .sync(&bob, req(None, vec![("all", list(9, &[], 1))]))
        .await
        .unwrap();
    let count = |res: &Response| res.rooms[&r].unread_notifications.notification_count;
    assert_eq!(count(&first), Some(uint!(1)));
    // Bob reads on another device: no new event, but the badge must clear.
    s.receipts.set(&r, &b, "m.read", &ev, None).await.unwrap();
    let next = s
        .sliding_sync
        .sync(&bob, req(Some(&first.pos), vec![("all", list(9, &[], 1))]))
        .await
        .unwrap();
    assert_eq!(next.rooms.keys().collect::<Vec<_>>(), vec![&r]);
    assert_eq!(count(&next), Some(uint!(0)));
    assert!(next.rooms[&r].timeline.is_empty());
}

#[tokio::test]
async fn to_device_extension_delivers_then_acknowledges() {
    use ruma::api::client::to_device::send_event_to_device::v3::Messages;
    use ruma::to_device::DeviceIdOrAllDevices;
    let (s, _dir) = crate::service::test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let (alice, bob) = (session(&s, &a).await, session(&s, &b).await);
    let ext_req = |pos: Option<&str>, since: Option<&str>| {
        let mut q = req(pos, vec![]);
        q.extensions.to_device.enabled = Some(true);
        q.extensions.to_device.since = since.map(str::to_owned);
        q
    };
    let first = s
        .sliding_sync
        .sync(&bob, ext_req(None, None))
        .await
        .unwrap();
    let token = first.extensions.to_device.unwrap().next_batch;

    let mut messages: Messages = BTreeMap::new();
    let content = ruma::serde::Raw::from_json(
        serde_json::value::RawValue::from_string(r#"{"secret":"room key"}"#.into()).unwrap(),
    );
    messages.entry(b.clone()).or_default().insert(
        DeviceIdOrAllDevices::DeviceId(bob.device_id.clone()),
        content,
    );
    s.to_device
        .send(&alice, "m.room_key_request", "txn1", &messages)
        .await
        .unwrap();

    let got = s
        .sliding_sync
        .sync(&bob, ext_req(Some(&first.pos), Some(&token)))
        .await
        .unwrap();
    let td = got.extensions.to_device.unwrap();
    assert_eq!(td.events.len(), 1);
    assert_eq!(json(&td.events[0])["content"]["secret"], "room key");
    // Presenting the new token acknowledges the message: it is not delivered again.
    let again = s
        .sliding_sync
        .sync(&bob, ext_req(Some(&got.pos), Some(&td.next_batch)))
        .await
        .unwrap();
    assert!(again.extensions.to_device.unwrap().events.is_empty());
}
