//! Extended profile fields (spec v1.16): `m.tz` and custom keys, any JSON value. Display name
//! and avatar keep their own paths (`profile.rs`); every other key passes the same policy hook
//! as the display name (`check_profile_update`: the NHS number guard on the value's JSON and,
//! when `[policy] lock_display_names` is on, the admin-only lock), audited on denial.

use std::collections::BTreeMap;

use handover_policy::ProfileUpdate;
use http::StatusCode;
use ruma::UserId;
use ruma::api::error::ErrorKind;
use serde_json::Value;

use super::{Session, UserService};
use crate::error::{Error, Result};
use crate::service::blocking;

/// The spec's bound on a whole profile (keys and values), in bytes.
pub const MAX_PROFILE_BYTES: usize = 64 * 1024;
/// The spec's bound on a key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// Whether `key` is an extended field a user may set: `m.tz`, or a namespaced custom key
/// (`[a-z][a-z0-9_]*` parts joined by dots, at least two) outside the spec's `m.` namespace.
pub fn valid_extended_key(key: &str) -> bool {
    if key == "m.tz" {
        return true;
    }
    let parts: Vec<&str> = key.split('.').collect();
    parts.len() >= 2
        && parts[0] != "m"
        && parts.iter().all(|p| {
            let mut cs = p.chars();
            cs.next().is_some_and(|c| c.is_ascii_lowercase())
                && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

fn check_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::KeyTooLarge,
            format!("Profile keys are at most {MAX_KEY_BYTES} bytes"),
        ));
    }
    if !valid_extended_key(key) {
        return Err(Error::invalid_param(format!(
            "'{key}' is not a profile field: use avatar_url, displayname, m.tz or a namespaced \
             key such as org.example.job_title"
        )));
    }
    Ok(())
}

impl UserService {
    /// A local user's extended fields (no access check: profiles are public, as the name is).
    pub async fn profile_fields(&self, user_id: &UserId) -> Result<BTreeMap<String, Value>> {
        let store = self.store.clone();
        let u = user_id.to_owned();
        let rows = blocking(move || Ok(store.profile_fields(u.as_str())?)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_str(&v).ok()?)))
            .collect())
    }

    /// Sets one extended field of the requester's own profile.
    pub async fn set_profile_field(
        &self,
        session: &Session,
        user_id: &UserId,
        key: &str,
        value: &Value,
    ) -> Result<()> {
        self.check_field_change(session, user_id, key, Some(value))
            .await?;
        if key == "m.tz" && !value.is_string() {
            return Err(Error::bad_json("m.tz must be a string"));
        }
        let json = value.to_string();
        let store = self.store.clone();
        let (u, k) = (user_id.to_owned(), key.to_owned());
        let stored = blocking(move || {
            Ok(store.set_profile_field(u.as_str(), &k, &json, MAX_PROFILE_BYTES)?)
        })
        .await?;
        if !stored {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::ProfileTooLarge,
                format!("The profile would exceed {MAX_PROFILE_BYTES} bytes"),
            ));
        }
        Ok(())
    }

    /// Removes one extended field (not an error if it was not set).
    pub async fn delete_profile_field(
        &self,
        session: &Session,
        user_id: &UserId,
        key: &str,
    ) -> Result<()> {
        self.check_field_change(session, user_id, key, None).await?;
        let store = self.store.clone();
        let (u, k) = (user_id.to_owned(), key.to_owned());
        blocking(move || Ok(store.delete_profile_field(u.as_str(), &k)?)).await
    }

    async fn check_field_change(
        &self,
        session: &Session,
        user_id: &UserId,
        key: &str,
        value: Option<&Value>,
    ) -> Result<()> {
        if session.user_id != user_id {
            return Err(Error::forbidden("You may only change your own profile"));
        }
        self.ensure_not_suspended(user_id)?;
        check_key(key)?;
        let text = value.map(Value::to_string);
        let decision = self.policy.check_profile_update(&ProfileUpdate {
            user_id: user_id.as_str(),
            field: key,
            value: text.as_deref(),
            by_admin: false,
        });
        let actor = user_id.as_str();
        (self.audit)
            .enforce(decision, "check_profile_update", actor, Some(actor))
            .await
    }
}

#[cfg(test)]
#[path = "profile_fields_tests.rs"]
mod tests;
