//! Account data: per-user JSON blobs, global or per room, private to their owner. Every write
//! takes a stream position (in the store) so /sync can send what changed since a token.

mod tags;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::events::{
    AnyGlobalAccountDataEvent, AnyGlobalAccountDataEventContent, AnyRoomAccountDataEvent,
    AnyRoomAccountDataEventContent,
};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::value::RawValue;

use super::blocking;
use super::notifier::Notifier;
use crate::error::{Error, Result};
use crate::store::account_data::{AccountDataRow, AccountDataStore};

/// Types the server maintains itself; the spec answers 405 `M_BAD_JSON` to clients setting them
/// here (read markers go through /read_markers, push rules through /pushrules).
const SERVER_CONTROLLED: &[&str] = &["m.fully_read", "m.push_rules"];

/// Account data changed in a stream range, shaped for the /sync response.
#[derive(Debug, Default)]
pub struct AccountDataChanges {
    /// Top-level `account_data.events`.
    pub global: Vec<Raw<AnyGlobalAccountDataEvent>>,
    /// Each room's `account_data.events` (includes `m.tag`).
    pub rooms: BTreeMap<OwnedRoomId, Vec<Raw<AnyRoomAccountDataEvent>>>,
}

pub struct AccountDataService {
    store: Arc<dyn AccountDataStore>,
    notifier: Arc<Notifier>,
}

impl AccountDataService {
    pub fn new(store: Arc<dyn AccountDataStore>, notifier: Arc<Notifier>) -> Self {
        Self { store, notifier }
    }

    /// Writes account data the server controls (e.g. `m.fully_read`), skipping the client rules,
    /// and wakes the owner's syncs.
    pub(crate) async fn write(
        &self,
        user_id: &UserId,
        room: &str,
        data_type: &str,
        content: String,
    ) -> Result<()> {
        let store = self.store.clone();
        let (uid, room, ty) = (user_id.to_owned(), room.to_owned(), data_type.to_owned());
        blocking(move || {
            store.set_account_data(uid.as_str(), &room, &ty, &content)?;
            Ok(())
        })
        .await?;
        self.notifier.notify([user_id]);
        Ok(())
    }

    /// A user's global account data of `data_type`, for the server's own decisions (no
    /// requester check: internal callers only).
    pub(crate) async fn read_global(
        &self,
        user_id: &UserId,
        data_type: &str,
    ) -> Result<Option<String>> {
        let store = self.store.clone();
        let (uid, ty) = (user_id.to_owned(), data_type.to_owned());
        blocking(move || Ok(store.get_account_data(uid.as_str(), "", &ty)?)).await
    }

    pub async fn get_global(
        &self,
        requester: &UserId,
        user_id: &UserId,
        data_type: &str,
    ) -> Result<Raw<AnyGlobalAccountDataEventContent>> {
        Ok(Raw::from_json(
            self.get(requester, user_id, "", data_type).await?,
        ))
    }

    pub async fn get_room(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room_id: &RoomId,
        data_type: &str,
    ) -> Result<Raw<AnyRoomAccountDataEventContent>> {
        let raw = self
            .get(requester, user_id, room_id.as_str(), data_type)
            .await?;
        Ok(Raw::from_json(raw))
    }

    pub async fn set_global(
        &self,
        requester: &UserId,
        user_id: &UserId,
        data_type: &str,
        content: &RawValue,
    ) -> Result<()> {
        self.set(requester, user_id, "", data_type, content).await
    }

    pub async fn set_room(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room_id: &RoomId,
        data_type: &str,
        content: &RawValue,
    ) -> Result<()> {
        self.set(requester, user_id, room_id.as_str(), data_type, content)
            .await
    }

    /// For /sync: the user's account data written at positions in `(since_pos, upto_pos]`
    /// (`since_pos = 0`: all of it), as raw rows `(room_id or "", type, content JSON)`.
    pub async fn account_data_since(
        &self,
        user_id: &UserId,
        since_pos: i64,
        upto_pos: i64,
    ) -> Result<Vec<AccountDataRow>> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        blocking(move || Ok(store.account_data_since(uid.as_str(), since_pos, upto_pos)?)).await
    }

    /// For /sync: the same range as ready-made `{"type", "content"}` events.
    pub async fn changes_since(
        &self,
        user_id: &UserId,
        since_pos: i64,
        upto_pos: i64,
    ) -> Result<AccountDataChanges> {
        let mut out = AccountDataChanges::default();
        for (room, ty, content) in self
            .account_data_since(user_id, since_pos, upto_pos)
            .await?
        {
            let event = format!(
                r#"{{"type":{},"content":{content}}}"#,
                serde_json::Value::String(ty)
            );
            let raw = RawValue::from_string(event).map_err(Error::internal)?;
            if room.is_empty() {
                out.global.push(Raw::from_json(raw));
            } else {
                let room = OwnedRoomId::try_from(room).map_err(Error::internal)?;
                out.rooms.entry(room).or_default().push(Raw::from_json(raw));
            }
        }
        Ok(out)
    }

    async fn get(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room: &str,
        data_type: &str,
    ) -> Result<Box<RawValue>> {
        only_self(requester, user_id)?;
        let store = self.store.clone();
        let (uid, room, ty) = (user_id.to_owned(), room.to_owned(), data_type.to_owned());
        let found = blocking(move || Ok(store.get_account_data(uid.as_str(), &room, &ty)?)).await?;
        let content = found.ok_or_else(|| Error::not_found("Account data not found"))?;
        RawValue::from_string(content).map_err(Error::internal)
    }

    async fn set(
        &self,
        requester: &UserId,
        user_id: &UserId,
        room: &str,
        data_type: &str,
        content: &RawValue,
    ) -> Result<()> {
        only_self(requester, user_id)?;
        if SERVER_CONTROLLED.contains(&data_type) {
            return Err(Error::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorKind::BadJson,
                format!("Cannot set {data_type} through this API"),
            ));
        }
        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(content.get())
            .is_err()
        {
            return Err(Error::bad_json("Content must be a JSON object"));
        }
        self.write(user_id, room, data_type, content.get().trim().to_owned())
            .await
    }
}

/// Account data is private: the token must belong to the user named in the path.
fn only_self(requester: &UserId, user_id: &UserId) -> Result<()> {
    if requester != user_id {
        return Err(Error::forbidden(
            "Cannot access account data of other users",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::{room_id, user_id};

    use super::*;
    use crate::service::{test_services, test_services_and_store};

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn set_get_and_permissions() {
        let (s, _d) = test_services();
        let (alice, bob) = (user_id!("@alice:localhost"), user_id!("@bob:localhost"));
        let room = room_id!("!r:localhost");
        let ad = &s.account_data;
        let err = ad.get_global(alice, alice, "org.x").await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));

        ad.set_global(alice, alice, "org.x", &raw(r#"{"a": 1}"#))
            .await
            .unwrap();
        ad.set_room(alice, alice, room, "org.x", &raw(r#"{"r": true}"#))
            .await
            .unwrap();
        let g = ad.get_global(alice, alice, "org.x").await.unwrap();
        assert_eq!(g.json().get(), r#"{"a": 1}"#);
        let r = ad.get_room(alice, alice, room, "org.x").await.unwrap();
        assert_eq!(r.json().get(), r#"{"r": true}"#);

        let err = ad.get_global(bob, alice, "org.x").await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let err = ad
            .set_room(bob, alice, room, "org.x", &raw("{}"))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let err = ad
            .set_global(alice, alice, "org.x", &raw("[1]"))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::BadJson)));
    }

    #[tokio::test]
    async fn server_controlled_types_are_refused_with_405() {
        let (s, _d) = test_services();
        let alice = user_id!("@alice:localhost");
        let room = room_id!("!r:localhost");
        let ad = &s.account_data;
        for res in [
            ad.set_room(
                alice,
                alice,
                room,
                "m.fully_read",
                &raw(r#"{"event_id":"$e"}"#),
            )
            .await,
            ad.set_global(alice, alice, "m.push_rules", &raw("{}"))
                .await,
        ] {
            let Err(Error::Matrix { status, kind, .. }) = res else {
                panic!("expected refusal")
            };
            assert_eq!(
                (status, kind),
                (StatusCode::METHOD_NOT_ALLOWED, ErrorKind::BadJson)
            );
        }
    }

    #[tokio::test]
    async fn changes_since_is_shaped_for_sync() {
        let (s, store, _d) = test_services_and_store();
        let alice = user_id!("@alice:localhost");
        let room = room_id!("!r:localhost");
        let ad = &s.account_data;
        ad.set_global(alice, alice, "org.old", &raw("{}"))
            .await
            .unwrap();
        let all = ad
            .changes_since(alice, 0, store.db.current_pos())
            .await
            .unwrap();
        assert_eq!(all.global.len(), 1);
        assert!(all.rooms.is_empty());

        // A since-token is a stream position: only later writes come back.
        let mark = store.db.current_pos();
        ad.set_global(alice, alice, "org.new", &raw(r#"{"k":"v"}"#))
            .await
            .unwrap();
        ad.set_tag(alice, alice, room, "m.favourite", &Default::default())
            .await
            .unwrap();
        let new = ad
            .changes_since(alice, mark, store.db.current_pos())
            .await
            .unwrap();
        assert_eq!(new.global.len(), 1);
        let ev: serde_json::Value = serde_json::from_str(new.global[0].json().get()).unwrap();
        assert_eq!(
            ev,
            serde_json::json!({"type": "org.new", "content": {"k": "v"}})
        );
        let room_events = &new.rooms[room];
        let ev: serde_json::Value = serde_json::from_str(room_events[0].json().get()).unwrap();
        assert_eq!(
            ev,
            serde_json::json!({"type": "m.tag", "content": {"tags": {"m.favourite": {}}}})
        );
        // The typed views parse too.
        assert!(room_events[0].deserialize().is_ok());
        assert!(new.global[0].deserialize().is_ok());
    }
}
