//! `POST /search` on a real store: what is found, in which order, and what is never found.

use ruma::api::client::search::search_events::v3::{
    Criteria, Grouping, GroupingKey, OrderBy, ResultGroupMap, ResultRoomEvents, SearchKeys,
};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedEventId, OwnedRoomId, UserId, uint};
use serde_json::{Value, json};

use crate::service::Services;
use crate::service::rooms::{CreateRoomParams, EventSpec};
use crate::service::test_services;
use crate::service::test_util::{history_visibility, join, room, send, text, user, viewer};

async fn search(s: &Services, who: &UserId, c: Criteria) -> ResultRoomEvents {
    try_search(s, who, c, None).await.unwrap()
}

async fn try_search(
    s: &Services,
    who: &UserId,
    c: Criteria,
    next: Option<&str>,
) -> crate::error::Result<ResultRoomEvents> {
    s.search.room_events(viewer(who), &c, next).await
}

fn ids(r: &ResultRoomEvents) -> Vec<OwnedEventId> {
    r.results
        .iter()
        .map(|h| {
            let v: Value = serde_json::from_str(h.result.as_ref().unwrap().json().get()).unwrap();
            v["event_id"].as_str().unwrap().try_into().unwrap()
        })
        .collect()
}

fn recent(term: &str) -> Criteria {
    let mut c = Criteria::new(term.into());
    c.order_by = Some(OrderBy::Recent);
    c
}

async fn topic(s: &Services, room: &OwnedRoomId, who: &UserId, t: &str) -> OwnedEventId {
    let spec = EventSpec::state(StateEventType::RoomTopic, "", json!({ "topic": t }));
    s.rooms.send_state(room, who, spec).await.unwrap()
}

#[tokio::test]
async fn bodies_names_and_topics_are_found_with_rank_recent_and_pages() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let r = room(&s, &alice, "Cardiology handover", false).await;
    let t = topic(&s, &r, &alice, "Night handover for the cardiology team").await;
    let m1 = text(&s, &r, &alice, "Bed 4 handover: obs stable").await;
    let m2 = text(&s, &r, &alice, "handover handover handover at 8").await;
    let _other = text(&s, &r, &alice, "nothing to see").await;

    let all = search(&s, &alice, recent("HANDOVER")).await;
    assert_eq!(all.count, Some(uint!(4)), "name, topic and two bodies");
    assert_eq!(
        ids(&all)[..3],
        [m2.clone(), m1.clone(), t.clone()],
        "newest first"
    );
    assert_eq!(all.highlights, ["handover"]);
    assert!(all.next_batch.is_none());

    // Prefix match and several words (all must match).
    let r2 = search(&s, &alice, recent("obs hand")).await;
    assert_eq!(ids(&r2), vec![m1.clone()]);

    // Rank: the message repeating the word ranks first; ranks descend.
    let ranked = search(&s, &alice, Criteria::new("handover".into())).await;
    assert_eq!(ids(&ranked)[0], m2);
    let ranks: Vec<f64> = ranked.results.iter().map(|h| h.rank.unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");

    // Keys: topics only.
    let mut c = recent("handover");
    c.keys = Some(vec![SearchKeys::ContentTopic]);
    assert_eq!(ids(&search(&s, &alice, c).await), [t]);

    // Pages of one, in both orders, until next_batch runs out; every hit once.
    for order in [OrderBy::Recent, OrderBy::Rank] {
        let mut c = Criteria::new("handover".into());
        c.order_by = Some(order.clone());
        c.filter.limit = Some(uint!(1));
        let (mut seen, mut next) = (vec![], None);
        loop {
            let page = try_search(&s, &alice, c.clone(), next.as_deref())
                .await
                .unwrap();
            assert_eq!(page.count, Some(uint!(4)));
            seen.extend(ids(&page));
            next = page.next_batch.clone();
            if next.is_none() {
                break;
            }
            assert!(seen.len() < 4, "next_batch after the last hit");
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4, "{order:?}");
    }
    // A token of the other order, and nonsense, are refused.
    let mut c = recent("handover");
    c.filter.limit = Some(uint!(1));
    let next = search(&s, &alice, c.clone()).await.next_batch.unwrap();
    let mut ranked = c.clone();
    ranked.order_by = Some(OrderBy::Rank);
    for (crit, tok) in [(ranked, next.as_str()), (c, "zzz")] {
        let e = try_search(&s, &alice, crit, Some(tok)).await.unwrap_err();
        assert_eq!(e.kind(), Some(&ruma::api::error::ErrorKind::InvalidParam));
    }
    let e = try_search(&s, &alice, recent("!!"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ruma::api::error::ErrorKind::InvalidParam));
}

#[tokio::test]
async fn history_visibility_is_honoured_per_event_and_redactions_leave_the_index() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let eve = user(&s, "eve").await;
    let r = room(&s, &alice, "Ward 9", false).await;
    history_visibility(&s, &r, &alice, "joined").await;
    let before = text(&s, &r, &alice, "sepsis screen before bob").await;
    join(&s, &r, &alice, &bob).await;
    let during = text(&s, &r, &alice, "sepsis screen while bob is here").await;
    s.rooms.leave(&r, &bob, None).await.unwrap();
    let after = text(&s, &r, &alice, "sepsis screen after bob left").await;

    let a = search(&s, &alice, recent("sepsis")).await;
    assert_eq!(ids(&a), [after.clone(), during.clone(), before.clone()]);
    let b = search(&s, &bob, recent("sepsis")).await;
    assert_eq!(
        ids(&b),
        vec![during.clone()],
        "only what bob was joined for"
    );
    assert_eq!(
        b.count,
        Some(uint!(1)),
        "hidden events are not even counted"
    );
    let e = search(&s, &eve, recent("sepsis")).await;
    assert!(e.results.is_empty() && e.count == Some(uint!(0)));

    // A redacted event is no longer found, for anyone.
    let dev: ruma::OwnedDeviceId = "D".into();
    s.rooms
        .redact(&r, &alice, &during, None, (&dev, "t-redact"))
        .await
        .unwrap();
    assert!(search(&s, &bob, recent("sepsis")).await.results.is_empty());
    assert_eq!(
        ids(&search(&s, &alice, recent("sepsis")).await),
        [after, before]
    );

    // Forgetting the room gives up its history in search too.
    s.rooms.forget(&r, &bob).await.unwrap();
    assert!(search(&s, &bob, recent("screen")).await.results.is_empty());
}

#[tokio::test]
async fn filter_groupings_context_and_profiles() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let r1 = room(&s, &alice, "Ward 1", false).await;
    let r2 = room(&s, &alice, "Ward 2", false).await;
    join(&s, &r1, &alice, &bob).await;
    join(&s, &r2, &alice, &bob).await;
    let dn = EventSpec::state(
        StateEventType::RoomMember,
        bob.as_str(),
        json!({ "membership": "join", "displayname": "Dr Bob" }),
    );
    s.rooms.send_state(&r1, &bob, dn).await.unwrap();
    let c1 = text(&s, &r1, &alice, "context one").await;
    let hit1 = text(&s, &r1, &bob, "discharge letter for bed 2").await;
    let c2 = text(&s, &r1, &alice, "context two").await;
    let hit2 = text(&s, &r2, &alice, "discharge summary ready").await;
    let img =
        json!({ "msgtype": "m.image", "body": "discharge photo", "url": "mxc://localhost/x" });
    let hit3 = send(&s, &r2, &bob, TimelineEventType::RoomMessage, img).await;

    // rooms, senders, url filters.
    let mut c = recent("discharge");
    c.filter.rooms = Some(vec![r1.clone()]);
    assert_eq!(ids(&search(&s, &alice, c).await), vec![hit1.clone()]);
    let mut c = recent("discharge");
    c.filter.senders = Some(vec![alice.clone()]);
    assert_eq!(ids(&search(&s, &alice, c).await), vec![hit2.clone()]);
    let mut c = recent("discharge");
    c.filter.not_senders = vec![alice.clone()];
    assert_eq!(
        ids(&search(&s, &alice, c).await),
        [hit3.clone(), hit1.clone()]
    );
    let mut c = recent("discharge");
    c.filter.url_filter = Some(ruma::api::client::filter::UrlFilter::EventsWithUrl);
    assert_eq!(ids(&search(&s, &alice, c).await), vec![hit3.clone()]);
    // types: only room names.
    let mut c = recent("ward");
    c.filter.types = Some(vec!["m.room.name".into()]);
    assert_eq!(search(&s, &alice, c).await.count, Some(uint!(2)));
    let mut c = recent("discharge");
    c.filter.not_types = vec!["m.room.*".into()];
    assert!(search(&s, &alice, c).await.results.is_empty());

    // Groupings.
    let mut c = recent("discharge");
    c.groupings.group_by = vec![Grouping::new(), Grouping::new()];
    c.groupings.group_by[0].key = Some(GroupingKey::RoomId);
    c.groupings.group_by[1].key = Some(GroupingKey::Sender);
    let g = search(&s, &alice, c).await;
    let Some(ResultGroupMap::RoomId(by_room)) = g.groups.get(&GroupingKey::RoomId) else {
        panic!("room groups: {:?}", g.groups);
    };
    assert_eq!(by_room[&r2].results, [hit3.clone(), hit2.clone()]);
    assert_eq!(by_room[&r2].order, Some(uint!(1)));
    assert_eq!(by_room[&r1].results, vec![hit1.clone()]);
    let Some(ResultGroupMap::Sender(by_sender)) = g.groups.get(&GroupingKey::Sender) else {
        panic!("sender groups");
    };
    assert_eq!(by_sender[&bob].results, [hit3, hit1.clone()]);

    // Context around a hit, with the senders' profiles at that point.
    let mut c = recent("letter");
    c.event_context.before_limit = uint!(1);
    c.event_context.after_limit = uint!(1);
    c.event_context.include_profile = true;
    let res = search(&s, &alice, c).await;
    let ctx = &res.results[0].context;
    let id = |raw: &ruma::serde::Raw<_>| -> String {
        serde_json::from_str::<Value>(raw.json().get()).unwrap()["event_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        ctx.events_before.iter().map(id).collect::<Vec<_>>(),
        [c1.to_string()]
    );
    assert_eq!(
        ctx.events_after.iter().map(id).collect::<Vec<_>>(),
        [c2.to_string()]
    );
    assert!(ctx.start.is_some() && ctx.end.is_some());
    assert_eq!(
        ctx.profile_info[&bob].displayname.as_deref(),
        Some("Dr Bob")
    );
    assert!(ctx.profile_info.contains_key(&alice));

    // include_state: the rooms of the results.
    let mut c = recent("letter");
    c.include_state = Some(true);
    let res = search(&s, &alice, c).await;
    assert!(res.state[&r1].len() >= 5);
}

#[tokio::test]
async fn patient_rooms_are_searched_only_by_members_and_encrypted_events_never() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let mut p = CreateRoomParams {
        version: None,
        preset: None,
        is_public: false,
        name: Some("Patient bay escalation".into()),
        topic: None,
        alias_localpart: None,
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    };
    let mut cc = serde_json::Map::new();
    cc.insert("org.handover.context".into(), "patient".into());
    p.creation_content = Some(cc);
    let r = s.rooms.create_room(&alice, p).await.unwrap();
    join(&s, &r, &alice, &bob).await;
    let enc = json!({ "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "escalation", "sender_key": "k", "session_id": "s", "device_id": "D" });
    send(&s, &r, &alice, TimelineEventType::RoomEncrypted, enc).await;
    topic(&s, &r, &alice, "escalation plan").await;

    // Members find the topic (state is not encrypted), never the ciphertext; the name was
    // set before bob joined (`joined` history).
    let b = search(&s, &bob, recent("escalation")).await;
    assert_eq!(b.count, Some(uint!(1)));
    // Once bob leaves, the room is out of his search, although `joined` history would still
    // let him read what he saw.
    s.rooms.leave(&r, &bob, None).await.unwrap();
    assert!(
        search(&s, &bob, recent("escalation"))
            .await
            .results
            .is_empty()
    );
    assert!(
        s.rooms.visible_to(&r, &bob).await.is_ok(),
        "the rule is search's own"
    );
    assert_eq!(
        search(&s, &alice, recent("escalation")).await.count,
        Some(uint!(2)),
        "name and topic"
    );
}
