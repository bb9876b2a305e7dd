//! Ending one session (a device and every token of it) on behalf of the OAuth token service:
//! revocation (RFC 7009), a replayed code or a reused refresh token.

use handover_compliance::Outcome;
use ruma::{OwnedDeviceId, UserId};

use super::UserService;
use crate::error::Result;
use crate::service::audit::{action, entry};
use crate::service::blocking;

impl UserService {
    /// Deletes the device (tokens go with it), tells the key service, audits a logout with
    /// `reason`. Already gone: nothing happens but the audit entry.
    pub async fn end_device_session(
        &self,
        user_id: &UserId,
        device_id: OwnedDeviceId,
        reason: &str,
    ) -> Result<()> {
        let store = self.store.clone();
        let (uid, did) = (user_id.to_owned(), device_id.clone());
        blocking(move || Ok(store.delete_devices(uid.as_str(), Some(&[did]))?)).await?;
        self.devices_removed(user_id, vec![device_id.clone()]).await;
        let e = entry(user_id.as_str(), action::LOGOUT, Outcome::Success)
            .detail("device_id", device_id.as_str())
            .detail("reason", reason);
        self.audit.record(e).await
    }

    /// Tells the key service about a device removed by a store call made elsewhere.
    pub async fn device_gone(&self, user_id: &UserId, device_id: OwnedDeviceId) {
        self.devices_removed(user_id, vec![device_id]).await;
    }
}
