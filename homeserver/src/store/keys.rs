//! Storage seam for end-to-end encryption keys: device keys, one-time and fallback keys,
//! cross-signing keys, uploaded signatures, and the device-list change stream. JSON is stored
//! as the client sent it (text); the service layer owns every rule.

use super::StoreResult;

/// What one /keys/upload writes, in one transaction.
#[derive(Debug, Default, Clone)]
pub struct KeyUpload {
    /// The device keys JSON, when new or changed (the service has already compared).
    pub device_keys: Option<String>,
    /// `(algorithm, key id, JSON)`; an identical existing key is ignored, a different one is a
    /// `Conflict("one-time key")`.
    pub one_time_keys: Vec<(String, String, String)>,
    /// `(algorithm, key id, JSON)`: replaces the device's fallback key for that algorithm.
    pub fallback_keys: Vec<(String, String, String)>,
}

/// A claimed key: `(key id with algorithm prefix, JSON)`.
pub type ClaimedKey = (String, String);

/// A stored signature: `(target key, signer user, signer key id, signature)`.
pub type SignatureRow = (String, String, String, String);

pub trait KeyStore: Send + Sync {
    /// Writes the upload; marks the user's device list changed when device keys were written.
    fn upload_keys(&self, user_id: &str, device_id: &str, upload: KeyUpload) -> StoreResult<()>;
    fn device_keys(&self, user_id: &str, device_id: &str) -> StoreResult<Option<String>>;
    /// `(device id, JSON)` for every device of the user with keys.
    fn all_device_keys(&self, user_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// `(algorithm, count)` of unclaimed one-time keys.
    fn one_time_key_counts(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> StoreResult<Vec<(String, u64)>>;
    /// Algorithms with an unused fallback key.
    fn unused_fallback_algorithms(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> StoreResult<Vec<String>>;
    /// Atomically removes one one-time key of `algorithm`; if none is left, returns the
    /// fallback key for it and marks that used.
    fn claim_key(
        &self,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
    ) -> StoreResult<Option<ClaimedKey>>;
    /// `(key type, JSON)`: master, self_signing, user_signing.
    fn cross_signing_keys(&self, user_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Replaces the given cross-signing keys `(key type, public key, JSON)` and marks the
    /// user's device list changed.
    fn set_cross_signing_keys(
        &self,
        user_id: &str,
        keys: Vec<(String, String, String)>,
    ) -> StoreResult<()>;
    /// Every extra signature on keys of `target_user`.
    fn signatures_of(&self, target_user: &str) -> StoreResult<Vec<SignatureRow>>;
    /// Adds signatures on keys of `target_user` and marks that user's device list changed.
    fn add_signatures(&self, target_user: &str, signatures: Vec<SignatureRow>) -> StoreResult<()>;
    /// Marks the user's device list changed at a new stream position.
    fn mark_device_list_changed(&self, user_id: &str) -> StoreResult<i64>;
    /// Those of `user_ids` whose device list changed at a position in `(since, upto]`.
    fn device_lists_changed(
        &self,
        user_ids: &[String],
        since: i64,
        upto: i64,
    ) -> StoreResult<Vec<String>>;
}
