//! The search index follows `events` by triggers: rows appear with the event and leave in the
//! transaction that redacts, minimises or deletes it. "Gone" is checked on the raw bytes of the
//! database files: the index stores lower-cased tokens, the event JSON the original case, so a
//! lower-cased marker on disk can only be the index.

use ruma::events::StateEventType;
use serde_json::json;

use super::super::SqliteStore;
use crate::service::rooms::EventSpec;
use crate::service::test_services_and_store;
use crate::service::test_util::{room, text, user};
use crate::store::rooms::RoomStore;

fn db_contains(dir: &tempfile::TempDir, marker: &str) -> bool {
    ["test.db", "test.db-wal"].iter().any(|f| {
        std::fs::read(dir.path().join(f))
            .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .unwrap_or(false)
    })
}

/// Index rows of the event: (key, matches `term`).
fn indexed(store: &SqliteStore, event_id: &str, term: &str) -> Vec<(String, bool)> {
    let (id, term) = (event_id.to_owned(), term.to_owned());
    store
        .db
        .read(move |c| {
            let mut st = c.prepare(
                "SELECT x.key, x.rowid IN (SELECT rowid FROM event_search WHERE event_search MATCH ?2)
                   FROM event_search_rows x WHERE x.event_id = ?1",
            )?;
            let rows = st.query_map([&id, &term], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
}

#[tokio::test]
async fn redaction_removes_the_index_row_and_its_terms_from_disk() {
    let (s, store, dir) = test_services_and_store();
    let alice = user(&s, "alice").await;
    let r = room(&s, &alice, "Ward 3", false).await;
    let ev = text(&s, &r, &alice, "Plan: ZanzibarQuokka review").await;
    let topic = EventSpec::state(StateEventType::RoomTopic, "", json!({ "topic": "Topic" }));
    let t = s.rooms.send_state(&r, &alice, topic).await.unwrap();
    assert_eq!(
        indexed(&store, ev.as_str(), "zanzibarquokka"),
        [("content.body".to_owned(), true)]
    );
    assert_eq!(indexed(&store, t.as_str(), "topic")[0].0, "content.topic");
    store.db.reclaim().unwrap();
    assert!(
        db_contains(&dir, "zanzibarquokka"),
        "the index holds the token"
    );

    let dev: ruma::OwnedDeviceId = "D".into();
    s.rooms
        .redact(&r, &alice, &ev, None, (&dev, "t1"))
        .await
        .unwrap();
    assert!(indexed(&store, ev.as_str(), "zanzibarquokka").is_empty());
    store.db.reclaim().unwrap();
    assert!(
        !db_contains(&dir, "zanzibarquokka"),
        "the redacted body's terms are still in the index pages"
    );
    // The original is kept for the redaction grace period (retention), the index is not.
    assert!(db_contains(&dir, "ZanzibarQuokka"));
    assert!(store.get_event(ev.as_str()).unwrap().is_some());
}

#[tokio::test]
async fn deleting_or_rewriting_an_event_drops_its_index_row() {
    let (s, store, _dir) = test_services_and_store();
    let alice = user(&s, "alice").await;
    let r = room(&s, &alice, "Ward 4", false).await;
    let a = text(&s, &r, &alice, "alpha").await;
    let b = text(&s, &r, &alice, "bravo").await;
    let (ia, ib) = (a.to_string(), b.to_string());
    store
        .db
        .write(move |ctx| {
            ctx.tx
                .execute("UPDATE events SET json = '{}' WHERE event_id = ?1", [&ia])?;
            ctx.tx
                .execute("DELETE FROM event_relations WHERE event_id = ?1", [&ib])
                .ok();
            ctx.tx
                .execute("DELETE FROM events WHERE event_id = ?1", [&ib])?;
            Ok(())
        })
        .unwrap();
    assert!(indexed(&store, a.as_str(), "alpha").is_empty());
    assert!(indexed(&store, b.as_str(), "bravo").is_empty());
    let left: i64 = store
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM event_search WHERE event_search MATCH 'alpha OR bravo'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(left, 0);
}
