//! The search index under retention: an expired message and a minimised (superseded) topic
//! leave the index in the purge's own transaction, and no term of theirs stays on disk. The
//! index holds lower-cased tokens while events keep the original case, so a lower-cased
//! marker in the raw database bytes can only be the index.

use ruma::api::client::search::search_events::v3::Criteria;
use ruma::uint;

use super::tests::{DAY, Fx, thirty_days};
use crate::service::test_util::{text, viewer};

async fn hits(f: &Fx, term: &str) -> Option<ruma::UInt> {
    let c = Criteria::new(term.into());
    (f.s.search.room_events(viewer(&f.alice), &c, None))
        .await
        .unwrap()
        .count
}

#[tokio::test]
async fn purged_and_minimised_events_leave_the_index_and_the_disk() {
    let f = Fx::new(thirty_days()).await;
    text(&f.s, &f.room, &f.alice, "Plan QuokkaBedPlan").await;
    f.topic("Old TopicQuokka").await;
    f.topic("current topic").await;
    assert_eq!(hits(&f, "quokkabedplan").await, Some(uint!(1)));
    assert_eq!(hits(&f, "topicquokka").await, Some(uint!(1)));
    f.store.db.reclaim().unwrap();
    assert!(f.db_contains("quokkabedplan") && f.db_contains("topicquokka"));

    f.advance(31 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert!(r.events_deleted >= 1 && r.space_reclaimed, "{r:?}");
    assert_eq!(hits(&f, "quokkabedplan").await, Some(uint!(0)));
    assert_eq!(hits(&f, "topicquokka").await, Some(uint!(0)));
    for marker in [
        "quokkabedplan",
        "topicquokka",
        "QuokkaBedPlan",
        "TopicQuokka",
    ] {
        assert!(!f.db_contains(marker), "{marker} still on disk");
    }
    // The current topic is current state: kept, and still found.
    assert_eq!(hits(&f, "current").await, Some(uint!(1)));
}
