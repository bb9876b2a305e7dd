//! Server-side search (issue 14): `POST /_matrix/client/v3/search` driven by matrix-sdk's typed
//! request (so the answer must parse as a real client's types): bodies and names found, ranks,
//! paging, groupings, context; a redacted message and other people's rooms never found; the
//! spec's 400s over raw HTTP.

use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::search::search_events::v3::{
    Categories, Criteria, Grouping, GroupingKey, OrderBy, Request, ResultGroupMap, ResultRoomEvents,
};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedEventId, uint};
use serde_json::Value;

use crate::receipts_typing::two_users_in_room;

async fn search(client: &Client, c: Criteria, next: Option<String>) -> ResultRoomEvents {
    let mut cats = Categories::new();
    cats.room_events = Some(c);
    let mut req = Request::new(cats);
    req.next_batch = next;
    client
        .send(req)
        .await
        .expect("search")
        .search_categories
        .room_events
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
    let mut c = Criteria::new(term.to_owned());
    c.order_by = Some(OrderBy::Recent);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_what_members_may_read_and_forgets_redactions() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let (alice, bob, room, bob_room, _room_id) = two_users_in_room(&server).await;
        let eve = server.register("eve").await;
        let send = |r: &matrix_sdk::Room, body: &'static str| {
            let r = r.clone();
            async move {
                r.send(RoomMessageEventContent::text_plain(body))
                    .await
                    .expect("send")
                    .response
                    .event_id
            }
        };
        let m1 = send(&room, "Ward round: bed 12 needs bloods").await;
        let m2 = send(&bob_room, "Bloods taken for bed 12, bloods to lab").await;
        let m3 = send(&room, "Bed 14 is fine").await;

        let all = search(&bob, recent("bloods bed"), None).await;
        assert_eq!(ids(&all), [m2.clone(), m1.clone()]);
        assert_eq!(all.count, Some(uint!(2)));
        assert!(all.highlights.contains(&"bloods".to_owned()));
        // Rank: the message saying it twice first.
        let ranked = search(&bob, Criteria::new("bloods".into()), None).await;
        assert_eq!(ids(&ranked)[0], m2);
        assert!(ranked.results[0].rank.unwrap() >= ranked.results[1].rank.unwrap());

        // One per page, grouped by sender, with one event of context on each side.
        let mut c = recent("bed");
        c.filter.limit = Some(uint!(1));
        c.event_context.before_limit = uint!(1);
        c.event_context.after_limit = uint!(1);
        c.event_context.include_profile = true;
        let mut g = Grouping::new();
        g.key = Some(GroupingKey::Sender);
        c.groupings.group_by = vec![g];
        let (mut seen, mut next) = (vec![], None);
        loop {
            let page = search(&alice, c.clone(), next).await;
            assert_eq!(page.count, Some(uint!(3)));
            let Some(ResultGroupMap::Sender(groups)) = page.groups.get(&GroupingKey::Sender) else {
                panic!("sender groups: {:?}", page.groups);
            };
            assert_eq!(groups.values().map(|g| g.results.len()).sum::<usize>(), 1);
            seen.extend(ids(&page));
            next = page.next_batch.clone();
            if seen.len() == 2 {
                let ctx = &page.results[0].context;
                assert_eq!(ctx.events_before.len(), 1);
                assert_eq!(ctx.events_after.len(), 1);
                assert!(!ctx.profile_info.is_empty());
            }
            if next.is_none() {
                break;
            }
            assert!(seen.len() < 4, "paging does not end");
        }
        assert_eq!(seen, [m3.clone(), m2.clone(), m1.clone()]);

        // Eve is in no room with these messages.
        let e = search(&eve, recent("bed"), None).await;
        assert!(e.results.is_empty());
        assert_eq!(e.count, Some(uint!(0)));

        // A redacted message is no longer found.
        room.redact(&m2, None, None).await.expect("redact");
        assert_eq!(ids(&search(&bob, recent("bloods"), None).await), [m1]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_refuses_what_it_cannot_run() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let path = "/_matrix/client/v3/search";
        let body = |crit: Value| json!({ "search_categories": { "room_events": crit } });
        for crit in [
            json!({ "search_term": "  ?! " }),
            json!({ "search_term": "x", "order_by": "alphabetical" }),
            json!({ "search_term": "x", "keys": ["content.sender"] }),
            json!({ "search_term": "x", "groupings": { "group_by": [{ "key": "type" }] } }),
        ] {
            http.post_json(path, Some(&token), &body(crit))
                .await
                .assert_error(400, &["M_INVALID_PARAM"]);
        }
        http.post_json(
            &format!("{path}?next_batch=nonsense"),
            Some(&token),
            &body(json!({ "search_term": "x" })),
        )
        .await
        .assert_error(400, &["M_INVALID_PARAM"]);
        http.post_json(path, Some(&token), &json!({}))
            .await
            .assert_error(400, &["M_BAD_JSON", "M_MISSING_PARAM", "M_NOT_JSON"]);
        http.post_json(path, None, &body(json!({ "search_term": "x" })))
            .await
            .assert_error(401, &["M_MISSING_TOKEN"]);
        // No room_events category: nothing to search, an empty answer.
        let v = http
            .post_json(path, Some(&token), &json!({ "search_categories": {} }))
            .await
            .ok();
        assert_eq!(v, json!({ "search_categories": {} }));
    })
    .await;
}
