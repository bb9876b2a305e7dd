//! /messages pagination, backwards and forwards, in pages of 10.

use handover_e2e::*;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::uint;

const N: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginate_backwards_and_forwards() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let room = alice
            .create_room(CreateRoomRequest::new())
            .await
            .expect("create room");

        let mut sent = Vec::new();
        for i in 0..N {
            let id = room
                .send(RoomMessageEventContent::text_plain(format!("msg {i:02}")))
                .await
                .unwrap_or_else(|e| panic!("send msg {i}: {e:?}"))
                .response
                .event_id;
            sent.push(id.to_string());
        }
        let expected: Vec<String> = (0..N).map(|i| format!("msg {i:02}")).collect();

        // Backwards from the end, 10 at a time.
        let mut bodies = Vec::new();
        let mut ids = Vec::new();
        let mut from: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut opts = MessagesOptions::backward();
            opts.limit = uint!(10);
            opts.from = from.clone();
            let resp = room.messages(opts).await.expect("backward /messages");
            pages += 1;
            assert!(pages < 20, "backward pagination does not terminate");
            assert!(
                resp.chunk.len() <= 10,
                "page of {} events with limit=10",
                resp.chunk.len()
            );
            for ev in &resp.chunk {
                let ev = raw_json(ev.raw());
                if let Some(b) = message_body(&ev) {
                    bodies.push(b.to_owned());
                    ids.push(ev["event_id"].as_str().unwrap().to_owned());
                }
            }
            match resp.end {
                Some(end) if !resp.chunk.is_empty() => {
                    assert_ne!(Some(&end), from.as_ref(), "`end` token did not advance");
                    from = Some(end);
                }
                _ => break,
            }
        }
        bodies.reverse();
        ids.reverse();
        assert_eq!(
            bodies, expected,
            "backward pagination returned wrong messages/order"
        );
        assert_eq!(ids, sent);
        // 30 messages + the creation events: at least 4 pages of 10.
        assert!(
            pages >= 4,
            "only {pages} pages for {N}+ events with limit 10"
        );

        // The first backward page holds exactly the 10 newest messages, newest first.
        let mut opts = MessagesOptions::backward();
        opts.limit = uint!(10);
        let first = room.messages(opts).await.unwrap();
        let firsts: Vec<String> = first
            .chunk
            .iter()
            .filter_map(|e| message_body(&raw_json(e.raw())).map(str::to_owned))
            .collect();
        let want: Vec<String> = (N - 10..N).rev().map(|i| format!("msg {i:02}")).collect();
        assert_eq!(firsts, want);

        // Forwards from the beginning of the room, 10 at a time.
        let mut bodies = Vec::new();
        let mut from: Option<String> = None;
        let mut pages = 0;
        let mut saw_create_first = None;
        loop {
            let mut opts = MessagesOptions::forward();
            opts.limit = uint!(10);
            opts.from = from.clone();
            let resp = room.messages(opts).await.expect("forward /messages");
            pages += 1;
            assert!(pages < 20, "forward pagination does not terminate");
            assert!(resp.chunk.len() <= 10);
            for ev in &resp.chunk {
                let ev = raw_json(ev.raw());
                if saw_create_first.is_none() {
                    saw_create_first = Some(ev["type"] == "m.room.create");
                }
                if let Some(b) = message_body(&ev) {
                    bodies.push(b.to_owned());
                }
            }
            match resp.end {
                Some(end) if !resp.chunk.is_empty() => from = Some(end),
                _ => break,
            }
        }
        assert_eq!(
            saw_create_first,
            Some(true),
            "forward pagination from the start must begin with m.room.create"
        );
        assert_eq!(
            bodies, expected,
            "forward pagination returned wrong messages/order"
        );

        // Forward from a token in the middle: take the `end` of the first backward page and
        // go forward again -> the 10 newest messages in chronological order.
        let mut opts = MessagesOptions::forward();
        opts.limit = uint!(10);
        opts.from = first.end.clone();
        let resp = room.messages(opts).await.unwrap();
        let got: Vec<String> = resp
            .chunk
            .iter()
            .filter_map(|e| message_body(&raw_json(e.raw())).map(str::to_owned))
            .collect();
        let want: Vec<String> = (N - 10..N).map(|i| format!("msg {i:02}")).collect();
        assert_eq!(got, want, "forward from the end of the first backward page");

        // The sync timeline's prev_batch is a valid /messages token too.
        let prev = sync_until(&alice, 30, "alice's sync", |r| {
            r.rooms
                .joined
                .get(room.room_id())
                .map(|j| j.timeline.prev_batch.clone())
        })
        .await;
        if let Some(prev) = prev {
            let mut opts = MessagesOptions::backward();
            opts.from = Some(prev);
            opts.limit = uint!(5);
            let resp = room
                .messages(opts)
                .await
                .expect("/messages from sync prev_batch");
            assert!(!resp.chunk.is_empty() || resp.end.is_none());
        }
    })
    .await;
}
