//! `FederationEventStore` on SQLite: PDUs by id, state at a position, auth chains (one
//! recursive query over `json_each(auth_events)`), and membership/visibility history.

use ruma::{OwnedEventId, OwnedUserId, UserId};
use rusqlite::{Connection, Row, params};

use super::SqliteStore;
use super::rooms::collect;
use crate::store::StoreResult;
use crate::store::federation_events::{FedEvent, FederationEventStore, MembershipChange};

/// Columns read into a `FedEvent`, from `events e`.
const COLS: &str =
    "e.event_id, e.room_id, e.pos, e.depth, e.origin_server_ts, e.json, e.redacted_by IS NOT NULL";

fn corrupt(col: usize, e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        e.to_string().into(),
    )
}

fn fed_event(r: &Row<'_>) -> rusqlite::Result<FedEvent> {
    Ok(FedEvent {
        event_id: r
            .get::<_, String>(0)?
            .try_into()
            .map_err(|e| corrupt(0, e))?,
        room_id: r
            .get::<_, String>(1)?
            .try_into()
            .map_err(|e| corrupt(1, e))?,
        pos: r.get(2)?,
        depth: r.get(3)?,
        origin_server_ts: r.get(4)?,
        json: r.get(5)?,
        redacted: r.get(6)?,
    })
}

/// The ids as one JSON array parameter, for `IN (SELECT value FROM json_each(?))`.
fn id_array(ids: &[OwnedEventId]) -> StoreResult<String> {
    Ok(serde_json::to_string(
        &ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
    )?)
}

fn events_by_id(c: &Connection, ids: &[OwnedEventId]) -> StoreResult<Vec<FedEvent>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS} FROM events e WHERE e.event_id IN (SELECT value FROM json_each(?1))"
    ))?;
    collect(stmt.query_map([id_array(ids)?], fed_event)?)
}

impl FederationEventStore for SqliteStore {
    fn events_by_id(&self, ids: &[OwnedEventId]) -> StoreResult<Vec<FedEvent>> {
        self.db.read(|c| events_by_id(c, ids))
    }

    fn state_events_at(&self, room_id: &str, pos: i64) -> StoreResult<Vec<FedEvent>> {
        self.db.read(|c| {
            // SQLite takes bare columns from the row holding MAX(pos): the latest delta per key.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLS} FROM (SELECT event_id, MAX(pos) FROM state_deltas
                   WHERE room_id = ?1 AND pos <= ?2 GROUP BY type, state_key) d
                 JOIN events e ON e.event_id = d.event_id"
            ))?;
            collect(stmt.query_map(params![room_id, pos], fed_event)?)
        })
    }

    fn auth_chain(&self, ids: &[OwnedEventId]) -> StoreResult<Vec<FedEvent>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.db.read(|c| {
            // UNION (not UNION ALL) drops ids already reached, so the walk ends even on a
            // malformed, cyclic chain.
            let mut stmt = c.prepare_cached(&format!(
                "WITH RECURSIVE chain(id) AS (
                     SELECT a.value FROM events s, json_each(s.json, '$.auth_events') a
                      WHERE s.event_id IN (SELECT value FROM json_each(?1))
                   UNION
                     SELECT a.value FROM chain JOIN events s ON s.event_id = chain.id,
                            json_each(s.json, '$.auth_events') a
                 )
                 SELECT {COLS} FROM chain JOIN events e ON e.event_id = chain.id"
            ))?;
            collect(stmt.query_map([id_array(ids)?], fed_event)?)
        })
    }

    fn state_key_history(
        &self,
        room_id: &str,
        kind: &str,
        state_key: &str,
    ) -> StoreResult<Vec<(i64, String)>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.pos, COALESCE(json_extract(e.json, '$.content'), '{}')
                   FROM state_deltas d JOIN events e ON e.event_id = d.event_id
                  WHERE d.room_id = ?1 AND d.type = ?2 AND d.state_key = ?3 ORDER BY d.pos",
            )?;
            collect(stmt.query_map(params![room_id, kind, state_key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
    }

    fn server_membership_history(
        &self,
        room_id: &str,
        server_name: &str,
    ) -> StoreResult<Vec<MembershipChange>> {
        let suffix = format!(":{server_name}");
        let rows: Vec<(String, i64, Option<String>)> = self.db.read(|c| {
            // The suffix narrows the scan; the exact server name is compared below (a user id's
            // server part is everything after its first colon).
            let mut stmt = c.prepare_cached(
                "SELECT d.state_key, d.pos, json_extract(e.json, '$.content.membership')
                   FROM state_deltas d JOIN events e ON e.event_id = d.event_id
                  WHERE d.room_id = ?1 AND d.type = 'm.room.member'
                    AND substr(d.state_key, -length(?2)) = ?2
                  ORDER BY d.pos",
            )?;
            collect(stmt.query_map(params![room_id, suffix], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?)
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(user, pos, membership)| {
                let user: OwnedUserId = UserId::parse(user).ok()?;
                (user.server_name().as_str() == server_name)
                    .then(|| (user, pos, membership.unwrap_or_else(|| "leave".to_owned())))
            })
            .collect())
    }
}

/// Stores an outlier (an event without a stream position), as inbound federation will for
/// auth events it fetches; tests only, until that code exists.
#[cfg(test)]
pub(crate) fn insert_outlier(store: &SqliteStore, ev: &crate::store::rooms::NewEvent) {
    let ev = ev.clone();
    store
        .db
        .write(move |ctx| {
            ctx.tx.execute(
                "INSERT INTO events (event_id, pos, room_id, sender, type, state_key, depth,
                   origin_server_ts, json) VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    ev.event_id.as_str(),
                    ev.room_id.as_str(),
                    ev.sender.as_str(),
                    ev.kind,
                    ev.state_key,
                    ev.depth,
                    ev.origin_server_ts,
                    ev.json
                ],
            )?;
            Ok(())
        })
        .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rooms::{NewEvent, NewRoom, RoomStore};
    use crate::store::sqlite::test_store;

    fn ev(id: &str, kind: &str, key: Option<&str>, auth: &[&str], content: &str) -> NewEvent {
        let json = format!(
            r#"{{"auth_events":{},"content":{content},"depth":1,"prev_events":[],"room_id":"!r:h","sender":"@a:h","type":"{kind}"{}}}"#,
            serde_json::to_string(auth).unwrap(),
            key.map(|k| format!(r#","state_key":"{k}""#))
                .unwrap_or_default(),
        );
        NewEvent {
            event_id: id.try_into().unwrap(),
            room_id: "!r:h".try_into().unwrap(),
            sender: "@a:h".try_into().unwrap(),
            kind: kind.into(),
            state_key: key.map(str::to_owned),
            depth: 1,
            origin_server_ts: 1,
            json,
            unsigned: None,
            prev_events: vec![],
            txn: None,
            membership: (kind == "m.room.member")
                .then(|| serde_json::from_str::<serde_json::Value>(content).unwrap())
                .and_then(|c| c["membership"].as_str().map(str::to_owned)),
            relation: None,
            redacts: None,
            resolved_state: vec![],
            deliveries: vec![],
        }
    }

    fn ids(v: &[FedEvent]) -> Vec<String> {
        let mut out: Vec<String> = v.iter().map(|e| e.event_id.to_string()).collect();
        out.sort();
        out
    }

    #[test]
    fn auth_chain_is_recursive_and_survives_cycles() {
        let (s, _d) = test_store();
        let room = NewRoom {
            room_id: "!r:h".try_into().unwrap(),
            version: "10".into(),
            creator: "@a:h".try_into().unwrap(),
            is_public: false,
        };
        let events = vec![
            ev("$c", "m.room.create", Some(""), &[], "{}"),
            ev(
                "$m",
                "m.room.member",
                Some("@a:h"),
                &["$c"],
                r#"{"membership":"join"}"#,
            ),
            ev("$p", "m.room.power_levels", Some(""), &["$c", "$m"], "{}"),
            // A malformed pair referring to each other: the walk must still end.
            ev("$x", "m.room.topic", Some(""), &["$y", "$p"], "{}"),
            ev("$y", "m.room.name", Some(""), &["$x"], "{}"),
            ev("$t", "m.room.message", None, &["$p", "$m", "$gone"], "{}"),
            ev(
                "$u",
                "m.room.member",
                Some("@b:other.nhs.uk"),
                &["$c"],
                r#"{"membership":"join"}"#,
            ),
            ev(
                "$v",
                "m.room.member",
                Some("@c:xother.nhs.uk"),
                &["$c"],
                r#"{"membership":"join"}"#,
            ),
        ];
        s.create_room(room, events).unwrap();

        assert_eq!(
            ids(&s.auth_chain(&["$t".try_into().unwrap()]).unwrap()),
            ["$c", "$m", "$p"]
        );
        assert_eq!(
            ids(&s.auth_chain(&["$x".try_into().unwrap()]).unwrap()),
            ["$c", "$m", "$p", "$x", "$y"]
        );
        assert!(s.auth_chain(&[]).unwrap().is_empty());
        assert_eq!(
            ids(&s
                .events_by_id(&["$c".try_into().unwrap(), "$nope".try_into().unwrap()])
                .unwrap()),
            ["$c"]
        );
        let c = s
            .events_by_id(&["$c".try_into().unwrap()])
            .unwrap()
            .remove(0);
        assert_eq!(c.pos, s.event_pos("$c").unwrap());
        assert!(!c.redacted);

        // State at the member event's position has the create and member events only.
        let at = s.state_events_at("!r:h", c.pos.unwrap() + 1).unwrap();
        assert_eq!(ids(&at), ["$c", "$m"]);

        // Membership history of one server matches its name exactly, not as a suffix.
        let h = s.server_membership_history("!r:h", "other.nhs.uk").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].0.as_str(), "@b:other.nhs.uk");
        assert_eq!(h[0].2, "join");

        // An outlier is found by id and its auth events are followed; it has no position.
        insert_outlier(
            &s,
            &ev("$out", "m.room.member", Some("@z:h"), &["$p"], "{}"),
        );
        let out = s.events_by_id(&["$out".try_into().unwrap()]).unwrap();
        assert_eq!((out.len(), out[0].pos), (1, None));
        assert_eq!(
            ids(&s.auth_chain(&["$out".try_into().unwrap()]).unwrap()),
            ["$c", "$m", "$p"]
        );

        let hv = s
            .state_key_history("!r:h", "m.room.member", "@a:h")
            .unwrap();
        assert_eq!(hv.len(), 1);
        assert_eq!(hv[0].1, r#"{"membership":"join"}"#);
    }
}
