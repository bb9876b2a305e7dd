//! Room tags, kept as the room's `m.tag` account data (`{"tags": {name: info}}`) so that they
//! reach clients through /sync like any other room account data.

use ruma::events::tag::{TagInfo, TagName, Tags};
use ruma::{RoomId, UserId};
use serde_json::{Map, Value};

use super::{AccountDataService, only_self};
use crate::error::{Error, Result};
use crate::service::blocking;

const TAG_TYPE: &str = "m.tag";

impl AccountDataService {
    pub async fn get_tags(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room_id: &RoomId,
    ) -> Result<Tags> {
        only_self(requester, user_id)?;
        let store = self.store.clone();
        let (uid, rid) = (user_id.to_owned(), room_id.to_owned());
        let content =
            blocking(move || Ok(store.get_account_data(uid.as_str(), rid.as_str(), TAG_TYPE)?))
                .await?;
        Ok(content.as_deref().map(parse_tags).unwrap_or_default())
    }

    pub async fn set_tag(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room_id: &RoomId,
        tag: &str,
        info: &TagInfo,
    ) -> Result<()> {
        let info = serde_json::to_value(info).map_err(Error::internal)?;
        self.update_tags(requester, user_id, room_id, tag, Some(info))
            .await
    }

    /// Removing a tag the room does not have succeeds and writes nothing.
    pub async fn delete_tag(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room_id: &RoomId,
        tag: &str,
    ) -> Result<()> {
        self.update_tags(requester, user_id, room_id, tag, None)
            .await
    }

    async fn update_tags(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room_id: &RoomId,
        tag: &str,
        info: Option<Value>,
    ) -> Result<()> {
        only_self(requester, user_id)?;
        let store = self.store.clone();
        let (uid, rid, tag) = (user_id.to_owned(), room_id.to_owned(), tag.to_owned());
        blocking(move || {
            let update = Box::new(move |current: Option<&str>| with_tag(current, &tag, info));
            store.update_account_data(uid.as_str(), rid.as_str(), TAG_TYPE, update)?;
            Ok(())
        })
        .await?;
        self.notifier.notify([user_id]);
        Ok(())
    }
}

/// The tags of an `m.tag` content, skipping entries that are not valid tag info (a client may
/// have written anything through the generic account data API).
fn parse_tags(content: &str) -> Tags {
    let Ok(Value::Object(mut content)) = serde_json::from_str::<Value>(content) else {
        return Tags::new();
    };
    let Some(Value::Object(tags)) = content.remove("tags") else {
        return Tags::new();
    };
    tags.into_iter()
        .filter_map(|(name, info)| {
            let info: TagInfo = serde_json::from_value(info).ok()?;
            Some((TagName::from(name), info))
        })
        .collect()
}

/// The new `m.tag` content with `tag` set to `info` (or removed when `None`); `None` if nothing
/// changes. Other keys and other tags are kept as they were.
fn with_tag(current: Option<&str>, tag: &str, info: Option<Value>) -> Option<String> {
    let mut content: Map<String, Value> = current
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let tags = content
        .entry("tags")
        .or_insert_with(|| Value::Object(Map::new()));
    if !tags.is_object() {
        *tags = Value::Object(Map::new());
    }
    let tags = tags.as_object_mut().expect("made an object above");
    match info {
        Some(info) => {
            tags.insert(tag.to_owned(), info);
        }
        None => {
            tags.remove(tag)?;
        }
    }
    Some(Value::Object(content).to_string())
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;
    use ruma::{room_id, user_id};

    use super::*;
    use crate::service::test_services;

    fn tag_info(order: f64) -> TagInfo {
        let mut info = TagInfo::new();
        info.order = Some(order);
        info
    }

    #[tokio::test]
    async fn tags_round_trip_through_account_data() {
        let (s, _d) = test_services();
        let alice = user_id!("@alice:localhost");
        let room = room_id!("!ward:localhost");
        let ad = &s.account_data;
        assert!(ad.get_tags(alice, alice, room).await.unwrap().is_empty());

        ad.set_tag(alice, alice, room, "m.favourite", &tag_info(0.5))
            .await
            .unwrap();
        ad.set_tag(alice, alice, room, "u.handover", &TagInfo::new())
            .await
            .unwrap();
        let tags = ad.get_tags(alice, alice, room).await.unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[&TagName::Favorite].order, Some(0.5));

        // Stored as the room's m.tag account data, readable through the generic API.
        let raw = ad.get_room(alice, alice, room, TAG_TYPE).await.unwrap();
        let content: Value = serde_json::from_str(raw.json().get()).unwrap();
        assert_eq!(
            content,
            serde_json::json!({"tags": {"m.favourite": {"order": 0.5}, "u.handover": {}}})
        );

        ad.delete_tag(alice, alice, room, "m.favourite")
            .await
            .unwrap();
        ad.delete_tag(alice, alice, room, "never.set")
            .await
            .unwrap();
        let tags = ad.get_tags(alice, alice, room).await.unwrap();
        assert_eq!(
            tags.keys().map(|t| t.as_ref()).collect::<Vec<_>>(),
            vec!["u.handover"]
        );
    }

    #[tokio::test]
    async fn tags_are_private() {
        let (s, _d) = test_services();
        let (alice, bob) = (user_id!("@alice:localhost"), user_id!("@bob:localhost"));
        let room = room_id!("!ward:localhost");
        let err = s
            .account_data
            .set_tag(bob, alice, room, "m.favourite", &TagInfo::new())
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let err = s.account_data.get_tags(bob, alice, room).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
    }

    #[test]
    fn odd_tag_content_is_tolerated() {
        assert!(parse_tags("[]").is_empty());
        assert!(parse_tags(r#"{"tags": 3}"#).is_empty());
        let tags = parse_tags(r#"{"tags": {"a.b": {"order": "high"}, "c.d": {}}}"#);
        assert_eq!(tags.len(), 1);
        // Replacing a non-object "tags" keeps the other keys.
        let new = with_tag(
            Some(r#"{"tags": 3, "x": 1}"#),
            "m.lowpriority",
            Some(Value::Null),
        );
        let v: Value = serde_json::from_str(&new.unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"tags": {"m.lowpriority": null}, "x": 1})
        );
    }
}
