//! Filters. This file: /sync filters stored per user under small integer ids ("0", "1", …), which
//! never start with `{` and so cannot be mistaken for an inline filter. `matching.rs`: does an
//! event or room match a filter (used by /messages, /context, /sync, /search).

mod matching;

use std::sync::Arc;

use ruma::UserId;
use ruma::api::client::filter::FilterDefinition;

pub use self::matching::{event_matches, parse_token, room_matches, room_matches_room_filter};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::store::filters::FilterStore;

pub struct FilterService {
    store: Arc<dyn FilterStore>,
}

impl FilterService {
    pub fn new(store: Arc<dyn FilterStore>) -> Self {
        Self { store }
    }

    /// Stores `filter` for the requester and returns its id.
    pub async fn create(
        &self,
        requester: &UserId,
        user_id: &UserId,
        filter: &FilterDefinition,
    ) -> Result<String> {
        only_self(requester, user_id)?;
        let json = serde_json::to_string(filter).map_err(Error::internal)?;
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let id = blocking(move || Ok(store.create_filter(uid.as_str(), &json)?)).await?;
        Ok(id.to_string())
    }

    /// `GET /user/{userId}/filter/{filterId}`: 403 for another user's filters, 404 if unknown.
    pub async fn get(
        &self,
        requester: &UserId,
        user_id: &UserId,
        filter_id: &str,
    ) -> Result<FilterDefinition> {
        only_self(requester, user_id)?;
        self.get_filter(user_id, filter_id)
            .await?
            .ok_or_else(|| Error::not_found("Unknown filter"))
    }

    /// For /sync: the user's filter with this id, `None` if there is none (or the id is not
    /// one of ours, e.g. not a number).
    pub async fn get_filter(
        &self,
        user_id: &UserId,
        filter_id: &str,
    ) -> Result<Option<FilterDefinition>> {
        let Ok(id) = filter_id.parse::<i64>() else {
            return Ok(None);
        };
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let json = blocking(move || Ok(store.get_filter(uid.as_str(), id)?)).await?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::internal))
            .transpose()
    }
}

fn only_self(requester: &UserId, user_id: &UserId) -> Result<()> {
    if requester != user_id {
        return Err(Error::forbidden("Cannot access filters of other users"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;
    use ruma::user_id;

    use super::*;
    use crate::service::test_services;

    #[tokio::test]
    async fn filter_round_trip_and_errors() {
        let (s, _d) = test_services();
        let alice = user_id!("@alice:localhost");
        let bob = user_id!("@bob:localhost");
        let filter: FilterDefinition =
            serde_json::from_str(r#"{"room":{"timeline":{"limit":7}},"event_fields":["type"]}"#)
                .unwrap();
        let id = s.filters.create(alice, alice, &filter).await.unwrap();
        assert_eq!(id, "0");
        assert_eq!(s.filters.create(alice, alice, &filter).await.unwrap(), "1");

        let back = s.filters.get(alice, alice, &id).await.unwrap();
        assert_eq!(back.room.timeline.limit, Some(7u32.into()));
        assert!(s.filters.get_filter(alice, "1").await.unwrap().is_some());

        let err = s.filters.get(alice, alice, "9").await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));
        assert!(
            s.filters
                .get_filter(alice, "{\"x\":1}")
                .await
                .unwrap()
                .is_none()
        );
        let err = s.filters.get(bob, alice, &id).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let err = s.filters.create(bob, alice, &filter).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        // Filter ids are per user.
        assert!(s.filters.get_filter(bob, "0").await.unwrap().is_none());
    }
}
