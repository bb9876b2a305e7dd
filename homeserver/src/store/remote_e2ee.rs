//! Storage seam for end-to-end encryption data that crosses servers: the cache of remote users'
//! device lists, to-device messages arriving from other servers (delivered once per message id),
//! and the stream id other servers see for a local user's device list.

use super::StoreResult;
use super::to_device::Outgoing;

/// A cached remote device list: the JSON and the stream position taken before it was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDeviceList {
    pub fetched_pos: i64,
    pub json: String,
}

pub trait RemoteE2eeStore: Send + Sync {
    fn cached_device_list(&self, user_id: &str) -> StoreResult<Option<CachedDeviceList>>;
    /// Replaces the user's cached device list.
    fn save_device_list(&self, user_id: &str, fetched_pos: i64, json: &str) -> StoreResult<()>;
    fn drop_device_list(&self, user_id: &str) -> StoreResult<()>;
    /// The latest position at which the user's device list changed (0: never).
    fn device_list_pos(&self, user_id: &str) -> StoreResult<i64>;
    /// Queues to-device messages from another server at one new position, unless
    /// `(origin, message_id)` was already delivered (then `None`). Unknown local devices are
    /// skipped. Ids seen before `forget_before_ts` are forgotten in the same write.
    #[allow(clippy::too_many_arguments)]
    fn queue_remote_to_device(
        &self,
        origin: &str,
        message_id: &str,
        sender: &str,
        event_type: &str,
        messages: Vec<Outgoing>,
        now_ts: i64,
        forget_before_ts: i64,
    ) -> StoreResult<Option<i64>>;
}
