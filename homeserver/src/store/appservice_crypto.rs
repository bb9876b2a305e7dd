//! What encrypted appservices (`org.matrix.msc3202: true`) receive besides events: to-device
//! messages for their users' devices (MSC4203), the device-list stream position they accepted
//! (MSC3202) and the bounds of the transaction in flight (schema v19). One-time key counts are
//! read from `keys.rs`.

use super::StoreResult;
use super::appservice::OpenTxn;

/// The bounds an open transaction fixed for its encryption part: device-list changes up to
/// `device_lists`, to-device messages at positions up to `to_device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoUpto {
    pub device_lists: i64,
    pub to_device: i64,
}

/// A queued to-device message for a device of an appservice's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsToDevice {
    pub user_id: String,
    pub device_id: String,
    pub pos: i64,
    pub sender: String,
    pub event_type: String,
    pub content: String,
}

/// What an accepted transaction settles besides its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CryptoAck {
    /// The new accepted device-list position.
    pub device_lists: i64,
    /// `(user, device, up to position)` of the to-device messages it carried: deleted.
    pub to_device: Vec<(String, String, i64)>,
}

pub trait AppserviceCryptoStore: Send + Sync {
    /// The accepted device-list position, set to `start` the first time.
    fn device_list_pos(&self, appservice_id: &str, start: i64) -> StoreResult<i64>;
    /// The encryption bounds of the open transaction, if it has them.
    fn open_crypto(&self, appservice_id: &str) -> StoreResult<Option<CryptoUpto>>;
    /// Records a transaction with its encryption bounds before it is first sent.
    fn begin_crypto_txn(
        &self,
        appservice_id: &str,
        txn: &OpenTxn,
        upto: CryptoUpto,
    ) -> StoreResult<()>;
    /// The appservice accepted it: its events leave the queue, its to-device messages are
    /// deleted, the device-list position advances and the record goes, in one write.
    fn finish_crypto_txn(
        &self,
        appservice_id: &str,
        upto_pos: i64,
        ack: &CryptoAck,
    ) -> StoreResult<()>;
    /// Users with queued to-device messages (the caller picks the appservice's).
    fn to_device_recipients(&self) -> StoreResult<Vec<String>>;
    /// Queued messages of these users at positions `<= upto`, by position; at most `limit`
    /// rows, never splitting one position (one sendToDevice) across two answers.
    fn to_device_of(
        &self,
        users: &[String],
        upto: i64,
        limit: usize,
    ) -> StoreResult<Vec<AsToDevice>>;
    /// Local users with at least one device that uploaded device keys.
    fn users_with_device_keys(&self) -> StoreResult<Vec<String>>;
}
