//! `event_deliveries`: durable per-queue deliveries of committed events (store/deliveries.rs).

use rusqlite::params;

use super::SqliteStore;
use super::db::WriteCtx;
use super::rooms::collect;
use crate::store::deliveries::{DeliveryQueue, DeliveryStore, PendingDelivery};
use crate::store::rooms::NewEvent;
use crate::store::{StoreError, StoreResult};

/// The event's deliveries, inside the write that inserts it at `pos`.
pub(super) fn insert_deliveries(ctx: &WriteCtx<'_>, ev: &NewEvent, pos: i64) -> StoreResult<()> {
    if ev.deliveries.is_empty() {
        return Ok(());
    }
    let mut stmt = ctx.tx.prepare_cached(
        "INSERT OR IGNORE INTO event_deliveries (queue, pos, event_id, room_id) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for queue in &ev.deliveries {
        stmt.execute(params![
            queue.to_string(),
            pos,
            ev.event_id.as_str(),
            ev.room_id.as_str()
        ])?;
    }
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl DeliveryStore for SqliteStore {
    fn pending_deliveries(
        &self,
        queue: &DeliveryQueue,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<PendingDelivery>> {
        let rows: Vec<(i64, String, String)> = self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT pos, event_id, room_id FROM event_deliveries
                 WHERE queue = ?1 AND pos > ?2 ORDER BY pos LIMIT ?3",
            )?;
            collect(
                stmt.query_map(params![queue.to_string(), after, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?,
            )
        })?;
        rows.into_iter()
            .map(|(pos, event_id, room_id)| {
                Ok(PendingDelivery {
                    pos,
                    event_id: event_id.try_into().map_err(corrupt)?,
                    room_id: room_id.try_into().map_err(corrupt)?,
                })
            })
            .collect()
    }

    fn ack_deliveries(&self, queue: &DeliveryQueue, upto: i64) -> StoreResult<usize> {
        let queue = queue.to_string();
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "DELETE FROM event_deliveries WHERE queue = ?1 AND pos <= ?2",
                params![queue, upto],
            )?)
        })
    }

    fn delivery_queues(&self) -> StoreResult<Vec<DeliveryQueue>> {
        let names: Vec<String> = self.db.read(|c| {
            let mut stmt = c.prepare_cached("SELECT DISTINCT queue FROM event_deliveries")?;
            collect(stmt.query_map([], |r| r.get(0))?)
        })?;
        names
            .iter()
            .map(|n| n.parse().map_err(StoreError::Corrupt))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

    use super::*;
    use crate::store::rooms::{NewRoom, RoomStore};
    use crate::store::sqlite::test_store;

    fn event(room: &OwnedRoomId, id: &str, queues: &[DeliveryQueue]) -> NewEvent {
        let sender: OwnedUserId = "@a:x".try_into().unwrap();
        NewEvent {
            event_id: OwnedEventId::try_from(id).unwrap(),
            room_id: room.clone(),
            sender,
            kind: "m.room.message".into(),
            state_key: None,
            depth: 1,
            origin_server_ts: 0,
            json: "{}".into(),
            unsigned: None,
            prev_events: vec![],
            txn: None,
            membership: None,
            relation: None,
            redacts: None,
            resolved_state: vec![],
            deliveries: queues.to_vec(),
        }
    }

    #[test]
    fn deliveries_are_read_in_order_and_acknowledged() {
        let (store, _dir) = test_store();
        let room: OwnedRoomId = "!r:x".try_into().unwrap();
        let new_room = NewRoom {
            room_id: room.clone(),
            version: "12".into(),
            creator: "@a:x".try_into().unwrap(),
            is_public: false,
        };
        store.create_room(new_room, vec![]).unwrap();
        let (a, b) = (
            DeliveryQueue::Appservice("bridge".into()),
            DeliveryQueue::Server("other.example".try_into().unwrap()),
        );
        let p1 = store
            .append_event(event(&room, "$one", &[a.clone(), b.clone()]))
            .unwrap();
        let p2 = store
            .append_event(event(&room, "$two", std::slice::from_ref(&a)))
            .unwrap();
        let p3 = store.append_event(event(&room, "$three", &[])).unwrap();
        assert!(p1 < p2 && p2 < p3);
        let pending = store.pending_deliveries(&a, 0, 10).unwrap();
        let ids: Vec<_> = pending.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(ids, ["$one", "$two"]);
        assert_eq!(pending[0].pos, p1);
        assert_eq!(pending[0].room_id, room);
        assert_eq!(store.pending_deliveries(&a, p1, 10).unwrap().len(), 1);
        assert_eq!(store.pending_deliveries(&a, 0, 1).unwrap().len(), 1);
        let mut queues = store.delivery_queues().unwrap();
        queues.sort();
        assert_eq!(queues, [a.clone(), b.clone()]);
        assert_eq!(store.ack_deliveries(&a, p1).unwrap(), 1);
        let left = store.pending_deliveries(&a, 0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event_id.as_str(), "$two");
        // Another queue's rows are untouched by an acknowledgement.
        assert_eq!(store.pending_deliveries(&b, 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_event_write_leaves_no_delivery() {
        let (store, _dir) = test_store();
        let room: OwnedRoomId = "!r:x".try_into().unwrap();
        let new_room = NewRoom {
            room_id: room.clone(),
            version: "12".into(),
            creator: "@a:x".try_into().unwrap(),
            is_public: false,
        };
        store.create_room(new_room, vec![]).unwrap();
        let a = DeliveryQueue::Appservice("bridge".into());
        let b = DeliveryQueue::Appservice("other".into());
        store
            .append_event(event(&room, "$one", &[a.clone()]))
            .unwrap();
        // The same event id again: a conflict, and the second queue gets nothing.
        let again = store.append_event(event(&room, "$one", &[b.clone()]));
        assert!(matches!(again, Err(StoreError::Conflict("event"))));
        assert!(store.pending_deliveries(&b, 0, 10).unwrap().is_empty());
        assert_eq!(store.pending_deliveries(&a, 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn queue_names_round_trip() {
        for q in [
            DeliveryQueue::Appservice("irc:bridge".into()),
            DeliveryQueue::Server("matrix.nhs.example".try_into().unwrap()),
        ] {
            assert_eq!(q.to_string().parse::<DeliveryQueue>().unwrap(), q);
        }
        assert!("nonsense".parse::<DeliveryQueue>().is_err());
        assert!("appservice:".parse::<DeliveryQueue>().is_err());
    }
}
