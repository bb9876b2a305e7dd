//! Event filters (`RoomEventFilter`, used by /messages, /context and /sync): does an event match?

use ruma::api::client::filter::{RoomEventFilter, UrlFilter};

use crate::store::rooms::StoredEvent;

fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

pub fn event_matches(f: &RoomEventFilter, ev: &StoredEvent) -> bool {
    if f.not_types.iter().any(|p| type_matches(p, &ev.kind)) {
        return false;
    }
    if let Some(types) = &f.types
        && !types.iter().any(|p| type_matches(p, &ev.kind))
    {
        return false;
    }
    if f.not_senders.contains(&ev.sender) {
        return false;
    }
    if let Some(senders) = &f.senders
        && !senders.contains(&ev.sender)
    {
        return false;
    }
    if let Some(url_filter) = &f.url_filter {
        let want = matches!(url_filter, UrlFilter::EventsWithUrl);
        let has = serde_json::from_str::<serde_json::Value>(&ev.json)
            .ok()
            .is_some_and(|v| v["content"]["url"].is_string());
        if has != want {
            return false;
        }
    }
    true
}

/// Whether the filter admits events of this room at all.
pub fn room_matches(f: &RoomEventFilter, room_id: &ruma::RoomId) -> bool {
    !f.not_rooms.iter().any(|r| r == room_id)
        && f.rooms
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| r == room_id))
}

/// Parses a pagination or sync token (`s123`, `t123` or `123`) into a stream position.
pub fn parse_token(token: &str) -> Option<i64> {
    let digits = token.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let digits = digits.split('_').next()?;
    // Pagination tokens may point into backfilled history, at negative positions.
    digits.parse().ok().filter(|p: &i64| *p > i64::MIN / 2)
}

/// Whether a sync room filter admits the room (its `rooms` / `not_rooms` lists).
pub fn room_matches_room_filter(
    f: &ruma::api::client::filter::RoomFilter,
    room_id: &ruma::RoomId,
) -> bool {
    !f.not_rooms.iter().any(|r| r == room_id)
        && f.rooms
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| r == room_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, sender: &str) -> StoredEvent {
        StoredEvent {
            event_id: "$e".try_into().unwrap(),
            room_id: "!r:x".try_into().unwrap(),
            pos: Some(1),
            sender: sender.try_into().unwrap(),
            kind: kind.into(),
            state_key: None,
            origin_server_ts: 0,
            json: r#"{"content":{"url":"mxc://x/y"}}"#.into(),
            unsigned: None,
            redacted_because: None,
            txn: None,
        }
    }

    #[test]
    fn types_senders_and_urls() {
        let mut f = RoomEventFilter::default();
        assert!(event_matches(&f, &ev("m.room.message", "@a:x")));
        f.types = Some(vec!["m.room.*".into()]);
        assert!(event_matches(&f, &ev("m.room.message", "@a:x")));
        assert!(!event_matches(&f, &ev("m.reaction", "@a:x")));
        f.not_senders = vec!["@a:x".try_into().unwrap()];
        assert!(!event_matches(&f, &ev("m.room.message", "@a:x")));
        let mut g = RoomEventFilter::default();
        g.url_filter = Some(UrlFilter::EventsWithoutUrl);
        assert!(!event_matches(&g, &ev("m.room.message", "@a:x")));
    }

    #[test]
    fn tokens() {
        assert_eq!(parse_token("s42"), Some(42));
        assert_eq!(parse_token("t7"), Some(7));
        assert_eq!(parse_token("9"), Some(9));
        assert_eq!(parse_token("bogus"), None);
    }
}
