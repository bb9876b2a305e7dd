//! Storage seam for to-device messages: queued per device at a stream position, deleted once
//! the device has synced past that position.

use super::StoreResult;

/// One message to queue: recipient user, recipient device (`None`: all of the user's
/// devices), content JSON.
pub type Outgoing = (String, Option<String>, String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToDeviceRow {
    pub pos: i64,
    pub sender: String,
    pub event_type: String,
    pub content: String,
}

pub trait ToDeviceStore: Send + Sync {
    /// Queues the messages at one new position, unless the sending device already used
    /// `txn_id` (then `None`). Unknown recipient devices are skipped.
    fn queue_to_device(
        &self,
        sender: &str,
        sender_device: &str,
        txn_id: &str,
        event_type: &str,
        messages: Vec<Outgoing>,
    ) -> StoreResult<Option<i64>>;
    /// Pending messages for the device at positions `<= upto`, oldest first, at most `limit`.
    fn to_device_for(
        &self,
        user_id: &str,
        device_id: &str,
        upto: i64,
        limit: usize,
    ) -> StoreResult<Vec<ToDeviceRow>>;
    /// Deletes the device's messages at positions `<= upto` (acknowledged by a later sync).
    fn ack_to_device(&self, user_id: &str, device_id: &str, upto: i64) -> StoreResult<usize>;
}
