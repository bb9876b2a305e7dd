//! Storage seam for remote servers' signing keys (the federation key cache).

use super::StoreResult;

/// One cached public key of a remote server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedKey {
    /// `ed25519:<version>`.
    pub key_id: String,
    /// Unpadded base64.
    pub public_key: String,
    /// Unix ms until which the key may verify requests.
    pub valid_until_ts: i64,
    /// For a key the server lists as old: when it stopped using it.
    pub expired_ts: Option<i64>,
}

/// A verified key response as fetched, kept for the notary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyResponse {
    pub response_json: String,
    pub valid_until_ts: i64,
}

pub trait ServerKeyStore: Send + Sync {
    /// Stores a verified response and its keys (replacing earlier rows of the same key ids).
    fn save_server_keys(
        &self,
        server_name: &str,
        keys: &[CachedKey],
        response: &KeyResponse,
        fetched_ts: i64,
    ) -> StoreResult<()>;
    /// Every cached key of `server_name`.
    fn server_keys(&self, server_name: &str) -> StoreResult<Vec<CachedKey>>;
    /// The latest stored response of `server_name`.
    fn server_key_response(&self, server_name: &str) -> StoreResult<Option<KeyResponse>>;
}
