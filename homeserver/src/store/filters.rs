//! Storage seam for /sync filters: per-user integer ids, the definition kept as JSON text.

use super::StoreResult;

pub trait FilterStore: Send + Sync {
    /// Stores the filter under the user's next free id (0, 1, 2…) and returns that id.
    fn create_filter(&self, user_id: &str, json: &str) -> StoreResult<i64>;
    fn get_filter(&self, user_id: &str, filter_id: i64) -> StoreResult<Option<String>>;
}
