//! Storage seam for email addresses: validation sessions (`/register/email/requestToken`) and
//! the addresses bound to accounts (`GET /account/3pid`).

use super::StoreResult;

/// One validation session. Secrets are stored as SHA-256 hex only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub sid: String,
    pub client_secret_hash: String,
    pub medium: String,
    pub address: String,
    pub token_hash: String,
    pub send_attempt: u64,
    pub failed_attempts: u32,
    pub created_ts: i64,
    /// The link works until then; once validated, the address must be used until then.
    pub expires_ts: i64,
    pub validated_ts: Option<i64>,
}

/// An address bound to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threepid {
    pub medium: String,
    pub address: String,
    pub validated_ts: i64,
    pub added_ts: i64,
}

pub trait ThreepidStore: Send + Sync {
    /// The account an address is bound to.
    fn threepid_owner(&self, medium: &str, address: &str) -> StoreResult<Option<String>>;
    fn threepids_of(&self, user_id: &str) -> StoreResult<Vec<Threepid>>;
    /// The newest unexpired session for this address and client secret.
    fn current_validation(
        &self,
        medium: &str,
        address: &str,
        client_secret_hash: &str,
        now: i64,
    ) -> StoreResult<Option<Validation>>;
    fn validation(&self, sid: &str) -> StoreResult<Option<Validation>>;
    /// Inserts (or, for an existing sid, replaces) a session; expired sessions are removed in
    /// the same write.
    fn put_validation(&self, v: &Validation, now: i64) -> StoreResult<()>;
    /// Marks the session validated at `ts`, usable until `expires_ts`.
    fn mark_validated(&self, sid: &str, ts: i64, expires_ts: i64) -> StoreResult<()>;
    /// Counts a wrong token; returns the count so far.
    fn count_failed_attempt(&self, sid: &str) -> StoreResult<u32>;
    fn delete_validation(&self, sid: &str) -> StoreResult<()>;
    /// Binds the session's address to `user_id` and consumes the session, in one write.
    /// `Conflict("threepid")` if the address is bound already.
    fn bind_threepid(&self, user_id: &str, v: &Validation, added_ts: i64) -> StoreResult<()>;
}
