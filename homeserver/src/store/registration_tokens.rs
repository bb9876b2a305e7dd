//! Storage seam for registration tokens made through the admin API (Synapse's
//! `registration_tokens`), and their use by `POST /register`.

use super::StoreResult;

/// A registration token (Synapse's shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationToken {
    pub token: String,
    pub uses_allowed: Option<u64>,
    pub pending: u64,
    pub completed: u64,
    pub expiry_time: Option<i64>,
}

/// A field of a token to change; `None` inside clears the limit.
#[derive(Debug, Clone, Default)]
pub struct TokenUpdate {
    pub uses_allowed: Option<Option<u64>>,
    pub expiry_time: Option<Option<i64>>,
}

pub trait RegistrationTokenStore: Send + Sync {
    fn registration_tokens(&self) -> StoreResult<Vec<RegistrationToken>>;
    fn registration_token(&self, token: &str) -> StoreResult<Option<RegistrationToken>>;
    /// Returns false when the token exists already.
    fn insert_registration_token(&self, t: &RegistrationToken) -> StoreResult<bool>;
    fn update_registration_token(
        &self,
        token: &str,
        u: &TokenUpdate,
    ) -> StoreResult<Option<RegistrationToken>>;
    fn delete_registration_token(&self, token: &str) -> StoreResult<bool>;
    /// Whether the token may be used at `now`: it exists, is not expired, and
    /// `pending + completed < uses_allowed`.
    fn registration_token_usable(&self, token: &str, now: i64) -> StoreResult<bool>;
    /// A registration passed the token stage and still has stages to go: one use is held for
    /// it (`pending + 1`), if the token is usable. False: it is not.
    fn reserve_registration_token(&self, token: &str, now: i64) -> StoreResult<bool>;
    /// A registration finished: `completed + 1`, taking the use it reserved (`pending - 1`), or
    /// else only if the token is usable at `now`, atomically. False: not usable (nothing changed).
    fn complete_registration_token(
        &self,
        token: &str,
        reserved: bool,
        now: i64,
    ) -> StoreResult<bool>;
    /// The account could not be created after all: gives the use back (`completed - 1`).
    fn refund_registration_token(&self, token: &str) -> StoreResult<()>;
}
