//! Storage seam for MSC3814 dehydrated devices: at most one per user, a real device row (no
//! access token) plus the client's opaque `device_data`.

use super::StoreResult;

/// A user's dehydrated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DehydratedDevice {
    pub device_id: String,
    pub device_data: String,
}

pub trait DehydratedDeviceStore: Send + Sync {
    /// In one transaction: deletes the user's previous dehydrated device (its device row, keys
    /// and queued messages), creates the new device row and stores `device_data`. Returns the
    /// replaced device's id. `Conflict("device")` if `device_id` is one of the user's ordinary
    /// devices.
    fn put_dehydrated_device(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        device_data: &str,
    ) -> StoreResult<Option<String>>;
    fn dehydrated_device(&self, user_id: &str) -> StoreResult<Option<DehydratedDevice>>;
    /// Deletes the user's dehydrated device (and its device row); returns its id.
    fn delete_dehydrated_device(&self, user_id: &str) -> StoreResult<Option<String>>;
}
