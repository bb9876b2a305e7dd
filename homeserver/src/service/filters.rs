//! /sync filters: stored per user under small integer ids ("0", "1", …), which never start with
//! `{` and so cannot be mistaken for an inline filter.

use std::sync::Arc;

use ruma::UserId;
use ruma::api::client::filter::FilterDefinition;

use super::blocking;
use crate::error::{Error, Result};
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
