//! Storage seam for the OAuth 2.0 device authorization grant (RFC 8628) and for the provider
//! sessions (`sid`) behind Handover sessions.

use ruma::{OwnedDeviceId, OwnedUserId};

use super::StoreResult;

/// A grant just asked for by a device.
#[derive(Debug, Clone)]
pub struct NewDeviceGrant {
    pub device_code_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub device_id: String,
    pub created_ts: i64,
    pub expires_ts: i64,
    pub interval_ms: i64,
}

/// A grant waiting for the user's decision.
#[derive(Debug, Clone)]
pub struct PendingDeviceGrant {
    pub client_id: String,
    pub scope: String,
    pub device_id: OwnedDeviceId,
    pub user_code: String,
}

/// The tokens to store when an approved grant is picked up (hashes only).
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_hash: String,
    pub expires_ts: Option<i64>,
    pub refresh_hash: String,
    pub display_name: Option<String>,
}

/// A provider session (`provider id`, `sid`) a Handover session came from.
pub type UpstreamSession = (String, String);

/// What a device's poll of the token endpoint found (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    Pending,
    /// Polled sooner than the interval: the interval grows by 5 seconds.
    SlowDown,
    Expired,
    Denied,
    /// Approved: the session was created with the given tokens, and the grant is spent.
    Issued {
        user_id: OwnedUserId,
        device_id: OwnedDeviceId,
        scope: String,
    },
    /// Unknown, another client's, or already spent.
    Unknown,
}

pub trait DeviceGrantStore: Send + Sync {
    /// `Conflict("user_code")` when the user code is in use (the caller draws another).
    fn insert_device_grant(&self, grant: &NewDeviceGrant) -> StoreResult<()>;
    /// A pending, unexpired grant by its user code.
    fn pending_device_grant(
        &self,
        user_code: &str,
        now: i64,
    ) -> StoreResult<Option<PendingDeviceGrant>>;
    /// Approves (for `user_id`) or denies (`None`) a pending, unexpired grant; false when it
    /// was no longer pending.
    fn decide_device_grant(
        &self,
        user_code: &str,
        approved_for: Option<(&str, Option<&UpstreamSession>)>,
        now: i64,
    ) -> StoreResult<bool>;
    /// One poll: on an approved grant, creates the session with `tokens` in the same
    /// transaction and spends the grant.
    fn poll_device_grant(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: i64,
        tokens: &IssuedTokens,
    ) -> StoreResult<DevicePoll>;

    /// Records that `device_id` of `user_id` signed in through provider session `upstream`.
    fn record_upstream_session(
        &self,
        upstream: &UpstreamSession,
        user_id: &str,
        device_id: &str,
    ) -> StoreResult<()>;
    /// The sessions that came from provider session (`provider_id`, `sid`).
    fn upstream_session_devices(
        &self,
        provider_id: &str,
        sid: &str,
    ) -> StoreResult<Vec<(OwnedUserId, OwnedDeviceId)>>;
}
