//! Storage seam for extended profile fields (spec v1.16: `m.tz` and custom keys). Part of
//! `UserStore` (a supertrait), so the user service reaches them through its one store.

use super::StoreResult;

pub trait ProfileFieldStore: Send + Sync {
    /// The user's extended fields, `(key, value JSON)`, by key.
    fn profile_fields(&self, user_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Sets one field unless the whole profile (display name, avatar and every field, keys and
    /// values in bytes) would then exceed `max_total`; returns whether it was stored. The size
    /// is checked in the writing transaction, so concurrent writes cannot both squeeze in.
    fn set_profile_field(
        &self,
        user_id: &str,
        key: &str,
        value: &str,
        max_total: usize,
    ) -> StoreResult<bool>;
    /// Removes one field (no error if it was not set).
    fn delete_profile_field(&self, user_id: &str, key: &str) -> StoreResult<()>;
}
